/* it_gateway_http.c - the gateway's HTTP server over loopback with a real HTTP client: routing
 * (literals, parameters, trailing slashes), 404/405/413, whole bodies with NUL bytes, header
 * and query lookups, request ids, error bodies, Retry-After, a route without a status,
 * concurrent clients, and stopping idle, after traffic and with a request in progress. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "gateway/http.h"
#include "sy/metrics.h"

#define MAX_BODY ((size_t)2 << 20)

/* --- Test routes ------------------------------------------------------------------------- */

static atomic_int route_ctx_seen;

static void r_list(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    if (ctx == &route_ctx_seen)
        atomic_fetch_add(&route_ctx_seen, 1);
    gw_json(rs, 200, json_pack("{s:s, s:s}", "route", "list", "path", rq->path));
}

/* Answers the body's length, a checksum of every byte and whether a NUL follows it. */
static void r_create(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    uint32_t h = 2166136261u;

    (void)ctx;
    for (size_t i = 0; i < rq->body_len; i++)
        h = (h ^ (unsigned char)rq->body[i]) * 16777619u;
    gw_json(rs, 201,
            json_pack("{s:I, s:I, s:b}", "len", (json_int_t)rq->body_len, "sum", (json_int_t)h,
                      "nul_after", rq->body[rq->body_len] == '\0'));
}

static void r_item(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    gw_json(rs, 200,
            json_pack("{s:s, s:s, s:I}", "route", "item", "id", rq->params[0], "n",
                      (json_int_t)rq->nparams));
}

static void r_item_put(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    gw_json(rs, 200, json_pack("{s:s}", "route", "item_put"));
    (void)rq;
}

static void r_note(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    gw_json(rs, 200,
            json_pack("{s:s, s:s, s:I}", "id", rq->params[0], "note", rq->params[1], "n",
                      (json_int_t)rq->nparams));
}

static void r_x_bare(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    (void)rq;
    gw_text(rs, 200, "bare");
}

static void r_x_slash(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    (void)rq;
    gw_text(rs, 200, "slash");
}

static void r_lookup(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    const char *h = gw_header(rq, "x-custom-thing");
    const char *q = gw_query(rq, "hub.verify_token");
    const char *m = gw_query(rq, "absent");

    (void)ctx;
    gw_json(rs, 200,
            json_pack("{s:s?, s:s?, s:b, s:s}", "header", h, "query", q, "absent", m == NULL,
                      "request_id", rq->request_id));
}

static void r_invalid(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    gw_error(rs, rq, 422, "invalid", "name", "%s is required", "name");
}

static void r_busy(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    gw_error(rs, rq, 503, "unavailable", NULL, "the broker is away");
    rs->retry_after_s = 7;
    rs->log_note = "broker away";
}

/* Fills a body but never a status: the server must answer 500 and free the body. */
static void r_forgot(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    (void)ctx;
    (void)rq;
    rs->json = json_pack("{s:s}", "half", "done");
}

static void r_slow(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    const char *ms = gw_query(rq, "ms");

    (void)ctx;
    usleep((useconds_t)(ms ? atoi(ms) : 20) * 1000);
    gw_json(rs, 200, json_pack("{s:s}", "route", "slow"));
}

static const struct gw_route routes[] = {
    {"GET", "/api/items/", r_list},
    {"POST", "/api/items/", r_create},
    {"GET", "/api/items/{id}/", r_item},
    {"PUT", "/api/items/{id}/", r_item_put},
    {"GET", "/api/items/{id}/notes/{note}/", r_note},
    {"GET", "/x", r_x_bare},
    {"GET", "/x/", r_x_slash},
    {"GET", "/lookup/", r_lookup},
    {"GET", "/invalid/", r_invalid},
    {"GET", "/busy/", r_busy},
    {"GET", "/forgot/", r_forgot},
    {"GET", "/slow/", r_slow},
};

static struct gw_server *start_server(unsigned max_conns)
{
    char err[256] = "";
    struct gw_server_opts o = {
        .addr = "127.0.0.1:0",
        .max_body = MAX_BODY,
        .max_conns = max_conns,
        .timeout_s = 10,
        .routes = routes,
        .nroutes = sizeof routes / sizeof routes[0],
        .ctx = &route_ctx_seen,
    };
    struct gw_server *s = gw_server_start(&o, err, sizeof err);
    if (!s)
        fprintf(stderr, "gw_server_start: %s\n", err);
    return s;
}

/* --- A small client ------------------------------------------------------------------------ */

struct reply {
    long status;
    char head[8192];
    size_t head_len;
    char *body;
    size_t body_len;
    json_t *json;
};

static size_t on_head(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t len = sz * n;

    if (r->head_len + len < sizeof r->head) {
        memcpy(r->head + r->head_len, p, len);
        r->head_len += len;
        r->head[r->head_len] = '\0';
    }
    return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t len = sz * n;
    char *nb = realloc(r->body, r->body_len + len + 1);

    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->body_len, p, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

/* A body sent with chunked transfer encoding: `left` bytes of 'z'. */
struct chunked_src {
    size_t left;
};

static size_t on_read(char *p, size_t sz, size_t n, void *ud)
{
    struct chunked_src *src = ud;
    size_t len = sz * n;

    if (len > src->left)
        len = src->left;
    memset(p, 'z', len);
    src->left -= len;
    return len;
}

static void reply_free(struct reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* The value of a response header (case-insensitive name) into out, or NULL. */
static const char *reply_header(const struct reply *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);

    for (const char *line = r->head; *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = llen - (size_t)(v - line);
            if (vlen >= outlen)
                vlen = outlen - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        line += llen + (eol ? 2 : 0);
    }
    return NULL;
}

/* One request on a fresh connection. chunked_len > 0 sends that many bytes chunked instead of
 * body. Returns the curl result; the reply's JSON is parsed when the body is JSON. */
static CURLcode http_req(int port, const char *method, const char *path_query,
                         const char *const *headers, const void *body, size_t body_len,
                         size_t chunked_len, struct reply *r)
{
    char url[1024];
    struct curl_slist *hl = NULL;
    struct chunked_src src = {.left = chunked_len};

    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path_query);
    CURL *c = curl_easy_init();
    if (!c)
        return CURLE_FAILED_INIT;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    if (chunked_len > 0) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    if (r->body)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    return rc;
}

static CURLcode http_get(int port, const char *path_query, struct reply *r)
{
    return http_req(port, "GET", path_query, NULL, NULL, 0, 0, r);
}

static const char *jstr(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static struct gw_server *srv;
static int port;

static int group_setup(void **state)
{
    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    srv = start_server(16);
    if (!srv)
        return -1;
    port = gw_server_port(srv);
    return port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    gw_server_stop(srv); /* after all the traffic of the tests below */
    curl_global_cleanup();
    return 0;
}

/* --- Tests --------------------------------------------------------------------------------- */

static void test_literal_route_and_ctx(void **state)
{
    struct reply r;
    char v[128];

    (void)state;
    int before = atomic_load(&route_ctx_seen);
    assert_int_equal(http_get(port, "/api/items/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "route"), "list");
    assert_string_equal(jstr(r.json, "path"), "/api/items/");
    assert_int_equal(atomic_load(&route_ctx_seen), before + 1);
    assert_non_null(reply_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_non_null(reply_header(&r, "Cache-Control", v, sizeof v));
    assert_string_equal(v, "no-store");
    /* Compact JSON: no space after separators. */
    assert_null(strstr(r.body, ": "));
    assert_null(strstr(r.body, ", "));
    reply_free(&r);
}

static void test_params_captured(void **state)
{
    struct reply r;

    (void)state;
    assert_int_equal(http_get(port, "/api/items/abc-42/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "id"), "abc-42");
    assert_int_equal(json_integer_value(json_object_get(r.json, "n")), 1);
    reply_free(&r);

    assert_int_equal(http_get(port, "/api/items/7/notes/n%201/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "id"), "7");
    assert_string_equal(jstr(r.json, "note"), "n 1"); /* percent-decoded */
    assert_int_equal(json_integer_value(json_object_get(r.json, "n")), 2);
    reply_free(&r);

    /* A parameter of exactly GW_PARAM_MAX bytes matches; one byte more does not. */
    char path[GW_PARAM_MAX + 64], id[GW_PARAM_MAX + 2];
    memset(id, 'a', GW_PARAM_MAX);
    id[GW_PARAM_MAX] = '\0';
    snprintf(path, sizeof path, "/api/items/%s/", id);
    assert_int_equal(http_get(port, path, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(strlen(jstr(r.json, "id")), GW_PARAM_MAX);
    reply_free(&r);
    id[GW_PARAM_MAX] = 'a';
    id[GW_PARAM_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/api/items/%s/", id);
    assert_int_equal(http_get(port, path, &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    reply_free(&r);

    /* An empty segment never matches a parameter. */
    assert_int_equal(http_get(port, "/api/items//", &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    reply_free(&r);
}

static void test_trailing_slash_is_significant(void **state)
{
    struct reply r;
    char v[128];

    (void)state;
    assert_int_equal(http_get(port, "/x", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "bare");
    assert_non_null(reply_header(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/plain"));
    reply_free(&r);
    assert_int_equal(http_get(port, "/x/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "slash");
    reply_free(&r);
    /* The API's patterns end in '/': the path without it is another, unknown path. */
    assert_int_equal(http_get(port, "/api/items", &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    assert_int_equal(http_get(port, "/api/items/5", &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    reply_free(&r);
}

static void test_404_and_error_shape(void **state)
{
    struct reply r;
    char v[128];
    const char *hdr[] = {"X-Request-Id: rid-404.test_A", NULL};

    (void)state;
    assert_int_equal(http_req(port, "GET", "/nowhere/", hdr, NULL, 0, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    json_t *e = json_object_get(r.json, "error");
    assert_non_null(e);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 404);
    assert_string_equal(jstr(e, "code"), "not_found");
    assert_non_null(jstr(e, "message"));
    assert_string_equal(jstr(e, "request_id"), "rid-404.test_A");
    assert_null(json_object_get(e, "field"));
    assert_int_equal(json_object_size(e), 4);
    assert_non_null(reply_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    reply_free(&r);

    assert_int_equal(http_req(port, "GET", "/invalid/", hdr, NULL, 0, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 422);
    e = json_object_get(r.json, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 422);
    assert_string_equal(jstr(e, "code"), "invalid");
    assert_string_equal(jstr(e, "message"), "name is required");
    assert_string_equal(jstr(e, "field"), "name");
    assert_string_equal(jstr(e, "request_id"), "rid-404.test_A");
    assert_int_equal(json_object_size(e), 5);
    assert_non_null(reply_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_equal(v, "rid-404.test_A");
    reply_free(&r);
}

static void test_405_lists_allowed_methods(void **state)
{
    struct reply r;
    char v[128];

    (void)state;
    assert_int_equal(http_req(port, "DELETE", "/api/items/9/", NULL, NULL, 0, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 405);
    assert_non_null(reply_header(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "GET, PUT");
    assert_string_equal(jstr(json_object_get(r.json, "error"), "code"), "method_not_allowed");
    reply_free(&r);

    /* OPTIONS is not special: no route for it, so 405 too. */
    assert_int_equal(http_req(port, "OPTIONS", "/api/items/", NULL, NULL, 0, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 405);
    assert_non_null(reply_header(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "GET, POST");
    reply_free(&r);

    /* A 404 carries no Allow. */
    assert_int_equal(http_req(port, "DELETE", "/nowhere/", NULL, NULL, 0, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    assert_null(reply_header(&r, "Allow", v, sizeof v));
    reply_free(&r);
}

static void test_body_arrives_whole_with_nuls(void **state)
{
    struct reply r;
    size_t len = (size_t)1 << 20;
    unsigned char *body = malloc(len);
    uint32_t h = 2166136261u;

    (void)state;
    assert_non_null(body);
    for (size_t i = 0; i < len; i++) {
        body[i] = (unsigned char)(i % 7 == 0 ? 0 : (i * 31) & 0xff);
        h = (h ^ body[i]) * 16777619u;
    }
    assert_int_equal(http_req(port, "POST", "/api/items/", NULL, body, len, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), len);
    assert_int_equal(json_integer_value(json_object_get(r.json, "sum")), h);
    assert_true(json_is_true(json_object_get(r.json, "nul_after")));
    reply_free(&r);

    /* Exactly the limit is accepted, chunked. */
    assert_int_equal(http_req(port, "POST", "/api/items/", NULL, NULL, 0, MAX_BODY, &r), CURLE_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), MAX_BODY);
    reply_free(&r);

    /* No body at all: an empty, NUL-terminated one. */
    assert_int_equal(http_req(port, "POST", "/api/items/", NULL, "", 0, 0, &r), CURLE_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), 0);
    assert_true(json_is_true(json_object_get(r.json, "nul_after")));
    reply_free(&r);
    free(body);
}

/* Sends only the headers of a request announcing a body over the limit: the 413 must come
 * without a byte of the body sent. */
static void test_413_content_length_before_reading(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "POST /api/items/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     MAX_BODY + 1);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") && strstr(buf, "}}"))
            break;
    }
    buf[len] = '\0';
    close(fd);
    int status = 0;
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &status), 1);
    assert_int_equal(status, 413);
    assert_non_null(strstr(buf, "\"code\":\"body_too_large\""));

    /* And through a client that sends the body as well. */
    struct reply r;
    size_t big = MAX_BODY + 1;
    char *body = calloc(1, big);
    assert_non_null(body);
    CURLcode rc = http_req(port, "POST", "/api/items/", NULL, body, big, 0, &r);
    assert_true(rc == CURLE_OK || rc == CURLE_SEND_ERROR);
    assert_int_equal(r.status, 413);
    reply_free(&r);
    free(body);
}

static void test_413_chunked_over_limit(void **state)
{
    struct reply r;

    (void)state;
    CURLcode rc = http_req(port, "POST", "/api/items/", NULL, NULL, 0, MAX_BODY + 1, &r);
    assert_true(rc == CURLE_OK || rc == CURLE_SEND_ERROR);
    assert_int_equal(r.status, 413);
    assert_string_equal(jstr(json_object_get(r.json, "error"), "code"), "body_too_large");
    reply_free(&r);

    /* Up to twice the limit the rest is drained and answered 413 ... */
    rc = http_req(port, "POST", "/api/items/", NULL, NULL, 0, 2 * MAX_BODY, &r);
    assert_true(rc == CURLE_OK || rc == CURLE_SEND_ERROR);
    assert_int_equal(r.status, 413);
    reply_free(&r);

    /* ... past that the connection is cut without an answer. */
    rc = http_req(port, "POST", "/api/items/", NULL, NULL, 0, 8 * MAX_BODY, &r);
    assert_int_not_equal(rc, CURLE_OK);
    assert_true(r.status < 200); /* none, or only the interim 100 Continue */
    reply_free(&r);

    /* The server still answers afterwards. */
    assert_int_equal(http_get(port, "/api/items/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void test_header_and_query_lookups(void **state)
{
    struct reply r;
    const char *hdr[] = {"X-CUSTOM-Thing: value 1", NULL};

    (void)state;
    assert_int_equal(
        http_req(port, "GET", "/lookup/?hub.verify_token=s3cr3t&x=1", hdr, NULL, 0, 0, &r),
        CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "header"), "value 1");
    assert_string_equal(jstr(r.json, "query"), "s3cr3t");
    assert_true(json_is_true(json_object_get(r.json, "absent")));
    reply_free(&r);

    assert_int_equal(http_get(port, "/lookup/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(json_object_get(r.json, "header")));
    assert_true(json_is_null(json_object_get(r.json, "query")));
    reply_free(&r);
}

static bool looks_like_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

static void test_request_id_echoed_or_generated(void **state)
{
    struct reply r;
    char v[128], first[128];

    (void)state;
    const char *sane[] = {"X-Request-Id: Abc.def_123-XYZ", NULL};
    assert_int_equal(http_req(port, "GET", "/lookup/", sane, NULL, 0, 0, &r), CURLE_OK);
    assert_non_null(reply_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_equal(v, "Abc.def_123-XYZ");
    assert_string_equal(jstr(r.json, "request_id"), "Abc.def_123-XYZ");
    reply_free(&r);

    /* Absent, with a forbidden byte, or longer than 64: a fresh uuid each time. */
    assert_int_equal(http_get(port, "/lookup/", &r), CURLE_OK);
    assert_non_null(reply_header(&r, "X-Request-Id", first, sizeof first));
    assert_true(looks_like_uuid(first));
    assert_string_equal(jstr(r.json, "request_id"), first);
    reply_free(&r);

    const char *bad[] = {"X-Request-Id: abc def\"<x>", NULL};
    assert_int_equal(http_req(port, "GET", "/lookup/", bad, NULL, 0, 0, &r), CURLE_OK);
    assert_non_null(reply_header(&r, "X-Request-Id", v, sizeof v));
    assert_true(looks_like_uuid(v));
    assert_string_not_equal(v, first);
    reply_free(&r);

    char longid[128] = "X-Request-Id: ";
    size_t off = strlen(longid);
    memset(longid + off, 'a', 65);
    longid[off + 65] = '\0';
    const char *too_long[] = {longid, NULL};
    assert_int_equal(http_req(port, "GET", "/lookup/", too_long, NULL, 0, 0, &r), CURLE_OK);
    assert_non_null(reply_header(&r, "X-Request-Id", v, sizeof v));
    assert_true(looks_like_uuid(v));
    reply_free(&r);

    longid[off + 64] = '\0'; /* exactly 64 is kept */
    assert_int_equal(http_req(port, "GET", "/lookup/", too_long, NULL, 0, 0, &r), CURLE_OK);
    assert_non_null(reply_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_equal(v, longid + off);
    reply_free(&r);
}

static void test_retry_after(void **state)
{
    struct reply r;
    char v[64];

    (void)state;
    assert_int_equal(http_get(port, "/busy/", &r), CURLE_OK);
    assert_int_equal(r.status, 503);
    assert_non_null(reply_header(&r, "Retry-After", v, sizeof v));
    assert_string_equal(v, "7");
    assert_string_equal(jstr(json_object_get(r.json, "error"), "code"), "unavailable");
    reply_free(&r);

    assert_int_equal(http_get(port, "/api/items/", &r), CURLE_OK);
    assert_null(reply_header(&r, "Retry-After", v, sizeof v));
    reply_free(&r);
}

static void test_route_without_status_is_500(void **state)
{
    struct reply r;

    (void)state;
    assert_int_equal(http_get(port, "/forgot/", &r), CURLE_OK);
    assert_int_equal(r.status, 500);
    json_t *e = json_object_get(r.json, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 500);
    assert_string_equal(jstr(e, "code"), "internal");
    assert_null(json_object_get(r.json, "half"));
    reply_free(&r);
}

/* Reads what the server logs while fn runs, until `until` has appeared or 3 s passed. */
static void capture_log(void (*fn)(void), const char *until, char *out, size_t outlen)
{
    int p[2];
    size_t len = 0;

    assert_int_equal(pipe(p), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fn();
    out[0] = '\0';
    for (int i = 0; i < 300 && !strstr(out, until); i++) {
        ssize_t got = read(p[0], out + len, outlen - 1 - len);
        if (got > 0) {
            len += (size_t)got;
            out[len] = '\0';
        } else {
            usleep(10 * 1000);
        }
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
}

static void send_secretive_requests(void)
{
    struct reply r;
    const char *hdr[] = {"X-Request-Id: log-test-1", "X-Custom-Thing: hdr-secret-value",
                         "Authorization: Bearer auth-secret-value", NULL};
    const char *busy[] = {"X-Request-Id: log-test-2", NULL};

    http_req(port, "POST", "/api/items/?hub.verify_token=query-secret-value", hdr,
             "body-secret-value", 17, 0, &r);
    reply_free(&r);
    http_req(port, "GET", "/busy/", busy, NULL, 0, 0, &r);
    reply_free(&r);
}

static void test_access_log_without_query_headers_or_body(void **state)
{
    char log[16384];

    (void)state;
    capture_log(send_secretive_requests, "log-test-2", log, sizeof log);
    char *line = strstr(log, "request_id=log-test-1");
    assert_non_null(line);
    while (line > log && line[-1] != '\n')
        line--;
    assert_non_null(strstr(line, "\"event\":\"http.access\""));
    assert_non_null(strstr(line, "\"duration_ms\":"));
    assert_non_null(strstr(line, "POST /api/items/ 201 in=17 out="));
    assert_non_null(strstr(line, "peer=127.0.0.1"));
    assert_null(strstr(log, "secret-value"));
    assert_null(strstr(log, "verify_token"));
    char *busy = strstr(log, "request_id=log-test-2");
    assert_non_null(busy);
    assert_non_null(strstr(busy, "note=broker away"));
    assert_non_null(strstr(log, "GET /busy/ 503"));
}

struct client_arg {
    int ok;
};

static void *client_thread(void *p)
{
    struct client_arg *a = p;

    for (int i = 0; i < 10; i++) {
        struct reply r;
        if (http_get(port, i % 2 ? "/slow/?ms=20" : "/api/items/3/", &r) == CURLE_OK &&
            r.status == 200 && r.json)
            a->ok++;
        reply_free(&r);
    }
    return NULL;
}

static void test_50_concurrent_requests(void **state)
{
    pthread_t t[5];
    struct client_arg a[5] = {{0}};

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &a[i]), 0);
    int total = 0;
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
        total += a[i].ok;
    }
    assert_int_equal(total, 50);
}

static void test_metrics_counted(void **state)
{
    (void)state;
    char *m = sy_metrics_render();
    assert_non_null(m);
    assert_non_null(strstr(m, "sy_http_requests_total{code=\"2xx\"}"));
    assert_non_null(strstr(m, "sy_http_requests_total{code=\"4xx\"}"));
    assert_non_null(strstr(m, "sy_http_requests_total{code=\"5xx\"}"));
    assert_non_null(strstr(m, "sy_http_request_seconds"));
    free(m);
}

static void test_stop_idle(void **state)
{
    (void)state;
    struct gw_server *s = start_server(2);
    assert_non_null(s);
    assert_true(gw_server_port(s) > 0);
    gw_server_stop(s);
    gw_server_stop(NULL);
}

struct slow_arg {
    int port;
    long status;
};

static void *slow_client(void *p)
{
    struct slow_arg *a = p;
    struct reply r;

    if (http_get(a->port, "/slow/?ms=300", &r) == CURLE_OK)
        a->status = r.status;
    reply_free(&r);
    return NULL;
}

/* A stop lets the request in progress answer, and the port is free afterwards. */
static void test_stop_waits_for_request_in_progress(void **state)
{
    pthread_t t;

    (void)state;
    struct gw_server *s = start_server(2);
    assert_non_null(s);
    struct slow_arg a = {.port = gw_server_port(s)};
    struct reply r;
    assert_int_equal(http_get(a.port, "/api/items/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(pthread_create(&t, NULL, slow_client, &a), 0);
    usleep(100 * 1000);
    gw_server_stop(s);
    pthread_join(t, NULL);
    assert_int_equal(a.status, 200);
    assert_int_not_equal(http_get(a.port, "/api/items/", &r), CURLE_OK);
    reply_free(&r);
}

static void test_bad_address_and_taken_port(void **state)
{
    char err[256] = "";
    char addr[64];

    (void)state;
    struct gw_server_opts o = {.addr = "nonsense", .routes = routes, .nroutes = 1};
    assert_null(gw_server_start(&o, err, sizeof err));
    assert_true(err[0] != '\0');
    o.addr = "127.0.0.1:70000";
    err[0] = '\0';
    assert_null(gw_server_start(&o, err, sizeof err));
    assert_true(err[0] != '\0');
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    o.addr = addr;
    err[0] = '\0';
    assert_null(gw_server_start(&o, err, sizeof err));
    assert_true(err[0] != '\0');
    static const struct gw_route bad[] = {{"GET", "no-slash", r_list}};
    o.addr = "127.0.0.1:0";
    o.routes = bad;
    err[0] = '\0';
    assert_null(gw_server_start(&o, err, sizeof err));
    assert_true(err[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_route_and_ctx),
        cmocka_unit_test(test_params_captured),
        cmocka_unit_test(test_trailing_slash_is_significant),
        cmocka_unit_test(test_404_and_error_shape),
        cmocka_unit_test(test_405_lists_allowed_methods),
        cmocka_unit_test(test_body_arrives_whole_with_nuls),
        cmocka_unit_test(test_413_content_length_before_reading),
        cmocka_unit_test(test_413_chunked_over_limit),
        cmocka_unit_test(test_header_and_query_lookups),
        cmocka_unit_test(test_request_id_echoed_or_generated),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_route_without_status_is_500),
        cmocka_unit_test(test_access_log_without_query_headers_or_body),
        cmocka_unit_test(test_50_concurrent_requests),
        cmocka_unit_test(test_metrics_counted),
        cmocka_unit_test(test_stop_idle),
        cmocka_unit_test(test_stop_waits_for_request_in_progress),
        cmocka_unit_test(test_bad_address_and_taken_port),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
