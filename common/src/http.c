/* http.c - the HTTP client of the workers' outside services over libcurl (see sy/http.h). */
#include "sy/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sy/err.h"

#define RETRY_AFTER_MAX 3600 /* seconds: a longer wait is a server's mistake, not a plan */

struct sy_http {
    CURL *curl;
    struct sy_http_opts o;
    char agent[64];
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_OK;

static void global_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sy_http *sy_http_new(const struct sy_http_opts *o)
{
    struct sy_http *h;

    pthread_once(&once, global_init);
    if (init_rc != CURLE_OK || !(h = calloc(1, sizeof *h)))
        return NULL;
    if (o)
        h->o = *o;
    if (h->o.connect_timeout_ms <= 0)
        h->o.connect_timeout_ms = 5000;
    if (h->o.timeout_ms <= 0)
        h->o.timeout_ms = 30000;
    if (h->o.body_max == 0)
        h->o.body_max = SY_HTTP_BODY_MAX_DEFAULT;
    snprintf(h->agent, sizeof h->agent, "%s",
             h->o.user_agent ? h->o.user_agent : "switchyard/" SY_VERSION);
    h->o.user_agent = h->agent;
    if (!(h->curl = curl_easy_init())) {
        free(h);
        return NULL;
    }
    return h;
}

void sy_http_destroy(struct sy_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

void sy_http_resp_free(struct sy_http_resp *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->content_type);
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
}

/* --- one exchange ------------------------------------------------------------------------- */

struct sink {
    char *p;
    size_t len, cap, max;
    bool over;
    int retry_after_s;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t add = size * n;

    if (s->len + add > s->max) {
        s->over = true;
        return 0; /* aborts the transfer: nothing past the cap is kept */
    }
    if (s->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *p;

        while (cap < s->len + add + 1)
            cap *= 2;
        if (cap > s->max + 1) /* never more than the cap itself in memory */
            cap = s->max + 1;
        if (!(p = realloc(s->p, cap)))
            return 0;
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, add);
    s->len += add;
    return add;
}

static int retry_after(const char *v)
{
    char *end;
    long s;

    while (*v == ' ' || *v == '\t')
        v++;
    s = strtol(v, &end, 10);
    if (end != v && (*end == '\0' || *end == '\r' || *end == '\n' || *end == ' ')) {
        if (s < 0)
            return -1;
    } else {
        /* An HTTP date: the wait is the time until then. */
        char date[64];
        size_t n = strcspn(v, "\r\n");
        time_t t;

        if (n >= sizeof date)
            return -1;
        memcpy(date, v, n);
        date[n] = '\0';
        if ((t = curl_getdate(date, NULL)) < 0)
            return -1;
        s = (long)(t - time(NULL));
        if (s < 0)
            s = 0;
    }
    return s > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (int)s;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    static const char name[] = "retry-after:";

    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char v[128];
        size_t k = len - (sizeof name - 1);

        if (k >= sizeof v)
            k = sizeof v - 1;
        memcpy(v, data + sizeof name - 1, k);
        v[k] = '\0';
        s->retry_after_s = retry_after(v);
    } else if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue): its own headers count. */
        s->retry_after_s = -1;
    }
    return len;
}

/* The URL for error text: without its query and fragment, where tokens may ride, nor a
 * user:password@ part. */
static void url_for_text(const char *url, char *buf, size_t n)
{
    const char *host = strstr(url, "://"), *at;
    size_t k, scheme = 0;

    if (host) {
        host += 3;
        scheme = (size_t)(host - url);
        k = strcspn(host, "/?#");
        if ((at = memchr(host, '@', k)))
            host = at + 1;
    } else {
        host = url;
    }
    k = strcspn(host, "?#");
    snprintf(buf, n, "%.*s%.*s", (int)scheme, url, (int)(k > 200 ? 200 : k), host);
}

int sy_http_do(struct sy_http *h, const char *method, const char *url, const char *const *headers,
               const void *body, size_t body_len, struct sy_http_resp *r, char *err, size_t errlen)
{
    struct curl_slist *list = NULL, *l;
    struct sink s = {.max = h->o.body_max, .retry_after_s = -1};
    char shown[256], *ct = NULL;
    curl_off_t announced = -1;
    CURLcode cc;
    long status = 0;
    int rc = 0;

    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
    url_for_text(url, shown, sizeof shown);
    if (strncmp(url, "https://", 8) != 0 &&
        !(h->o.insecure_http && strncmp(url, "http://", 7) == 0)) {
        sy_errf(err, errlen, "%s: only https:// URLs are allowed", shown);
        return -SY_EINVAL;
    }
    for (size_t i = 0; headers && headers[i]; i++) {
        if (!(l = curl_slist_append(list, headers[i])))
            goto nomem;
        list = l;
    }
    /* No "Expect: 100-continue" round trip before a body. */
    if (!(l = curl_slist_append(list, "Expect:")))
        goto nomem;
    list = l;

    curl_easy_reset(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, h->o.insecure_http ? "http,https" : "https");
    curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS_STR,
                     h->o.insecure_http ? "http,https" : "https");
#else
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS,
                     h->o.insecure_http ? (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)
                                        : (long)CURLPROTO_HTTPS);
    curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS,
                     h->o.insecure_http ? (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)
                                        : (long)CURLPROTO_HTTPS);
#endif
    /* A 3xx is an answer for the caller: following it could carry the headers (tokens) to
     * another host. */
    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, h->o.timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, h->o.user_agent);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &s);
    /* Refuses an answer whose Content-Length already says it is too big; on_body catches the
     * ones that do not say (chunked). */
    curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->o.body_max);
    curl_easy_setopt(h->curl, CURLOPT_ACCEPT_ENCODING, "");
    /* libcurl sends a request again, unasked, when the kept-alive connection it went out on
     * died before any answer: for a POST that may make what it creates twice. So a POST gets
     * a connection of its own; the others reuse one. */
    curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT, strcmp(method, "POST") == 0 ? 1L : 0L);
    if (strcmp(method, "GET") == 0 && !body) {
        curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)(body ? body_len : 0));
        }
    }

    cc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
    if (cc == CURLE_OK) {
        char *t = NULL;

        curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &t);
        if (t && !(ct = strdup(t)))
            goto nomem;
    }
    curl_slist_free_all(list);
    list = NULL;
    if (s.over || cc == CURLE_FILESIZE_EXCEEDED ||
        (cc != CURLE_OK && announced >= 0 && (size_t)announced > h->o.body_max)) {
        sy_errf(err, errlen, "%s %s: the answer is larger than %zu bytes", method, shown,
                h->o.body_max);
        rc = -SY_ETOOBIG;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        sy_errf(err, errlen, "%s %s: no answer within %ld ms", method, shown, h->o.timeout_ms);
        rc = -SY_ETIMEOUT;
    } else if (cc == CURLE_WRITE_ERROR || cc == CURLE_OUT_OF_MEMORY) {
        goto nomem;
    } else if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT) {
        sy_errf(err, errlen, "%s %s: %s", method, shown, curl_easy_strerror(cc));
        rc = -SY_EINVAL;
    } else if (cc != CURLE_OK) {
        sy_errf(err, errlen, "%s %s: %s", method, shown, curl_easy_strerror(cc));
        rc = -SY_ECONN;
    }
    if (rc != 0) {
        free(s.p);
        free(ct);
        return rc;
    }
    if (!s.p && !(s.p = malloc(1)))
        goto nomem;
    s.p[s.len] = '\0';
    r->status = status;
    r->body = s.p;
    r->len = s.len;
    r->retry_after_s = s.retry_after_s;
    r->content_type = ct;
    return 0;
nomem:
    curl_slist_free_all(list);
    free(s.p);
    free(ct);
    sy_errf(err, errlen, "%s %s: out of memory", method, shown);
    return -SY_ENOMEM;
}

int sy_http_json(struct sy_http *h, const char *method, const char *url, const char *const *headers,
                 const json_t *body, struct sy_http_resp *r, json_t **json_out, char *err,
                 size_t errlen)
{
    const char **all = NULL;
    char *text = NULL;
    size_t n = 0, given = 0;
    int rc = -SY_ENOMEM;

    *json_out = NULL;
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
    while (headers && headers[given])
        given++;
    if (!(all = calloc(given + 3, sizeof *all)))
        goto nomem;
    all[n++] = "Accept: application/json";
    if (body)
        all[n++] = "Content-Type: application/json";
    for (size_t i = 0; i < given; i++)
        all[n++] = headers[i];
    all[n] = NULL;
    if (body && !(text = json_dumps(body, JSON_COMPACT)))
        goto nomem;
    rc = sy_http_do(h, method, url, all, text, text ? strlen(text) : 0, r, err, errlen);
    free(text);
    free(all);
    if (rc == 0 && r->len > 0)
        *json_out = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    return rc;
nomem:
    free(all);
    sy_errf(err, errlen, "out of memory");
    return rc;
}

int sy_http_verdict(int rc, const struct sy_http_resp *r, int *delay_s)
{
    *delay_s = -1;
    if (rc == -SY_EINVAL || rc == -SY_ETOOBIG)
        return 2;
    if (rc != 0)
        return 1;
    if (r->status >= 200 && r->status < 400)
        return 0;
    if (r->status == 408 || r->status == 429 || r->status >= 500 || r->status == 0) {
        *delay_s = r->retry_after_s;
        return 1;
    }
    return 2;
}

char *sy_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *p = out;

    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}
