/* http.c - a small HTTP client for tests and benchmarks (http.h). */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct th_reply *r = ud;
    size_t add = size * n;
    char *grown = realloc(r->body, r->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, p, add);
    r->len += add;
    grown[r->len] = '\0';
    r->body = grown;
    return add;
}

static size_t on_head(char *p, size_t size, size_t n, void *ud)
{
    struct th_reply *r = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        r->retry_after = atoi(p + 12);
    return len;
}

struct th_reply th_http(int port, const char *method, const char *path, const char *const *headers,
                        const char *body)
{
    struct th_reply r = {.retry_after = -1};
    char url[2048];
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    if (!c)
        goto out;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (curl_easy_perform(c) != CURLE_OK)
        r.status = 0;
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body)
        r.body = strdup("");
    return r;
}

void th_reply_free(struct th_reply *r)
{
    free(r->body);
    r->body = NULL;
}

long long th_metric(int port, const char *name)
{
    struct th_reply r = th_http(port, "GET", "/metrics", NULL, NULL);
    size_t n = strlen(name);
    long long sum = r.status == 200 ? 0 : -1;

    for (const char *line = r.body; r.status == 200 && line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '{'))
            sum += strtoll(strchr(line + n, ' ') ? strchr(line + n, ' ') + 1 : "0", NULL, 10);
    th_reply_free(&r);
    return sum;
}
