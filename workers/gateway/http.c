/* http.c - the gateway's HTTP server on libmicrohttpd: bodies read under a limit, routing by
 * method and path pattern, JSON answers, one access-log line and metrics per request.
 *
 * libmicrohttpd calls the access handler several times per request: once when the headers
 * are in (the request's state is made then, and an announced body over the limit is refused
 * before a byte of it is read), once per piece of body, and once more when the body is
 * complete, which is when the route runs. The request's state lives until MHD says the
 * request completed, so the access line carries what was really sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/msg.h"

#include "gateway/http.h"

#define GW_HOST_MAX         255
#define GW_RID_MAX          64   /* bytes of a client's X-Request-Id we accept */
#define GW_CONNS_MAX        4096 /* connections served at once, one thread each */
#define GW_THREAD_STACK     (1u << 20)
#define GW_ERRMSG_MAX       512 /* bytes of an error body's message */
#define GW_ALLOW_MAX        128 /* bytes of a 405's Allow header */
#define GW_MAX_BODY_DEFAULT ((size_t)1 << 20)
#define GW_CONNS_DEFAULT    1024
#define GW_TIMEOUT_DEFAULT  30
#define GW_BODY_FIRST       4096  /* first allocation of a body without Content-Length */
#define GW_STOP_WAIT_MS     10000 /* how long a stop waits for requests in progress */

struct gw_server {
    struct MHD_Daemon *mhd;
    int port;
    size_t max_body;
    const struct gw_route *routes;
    size_t nroutes;
    void *ctx;
    struct sy_counter *req_2xx, *req_3xx, *req_4xx, *req_5xx, *req_1xx;
    struct sy_histogram *req_seconds;
    atomic_int in_flight; /* requests between their headers and MHD's completion notice */
};

/* One request, from its headers to MHD's completion notice. */
struct gw_call {
    struct gw_server *srv;
    int64_t start_us;
    char method[16];
    bool method_cut; /* longer than method[]: matches no route */
    char request_id[GW_RID_MAX + 1];
    char peer[INET6_ADDRSTRLEN];
    char *path; /* copy of MHD's (percent-decoded) path: the access log outlives the handler */
    char *body; /* max_body + 1 bytes at most */
    size_t body_len, body_cap;
    uint64_t bytes_in;
    bool too_big;  /* the body passed max_body: the rest is discarded, the answer is 413 */
    bool answered; /* a response was queued */
    int status;    /* of the queued response */
    size_t bytes_out;
    const char *log_note;
};

/* --- Response helpers --------------------------------------------------------------------- */

static void response_clear(struct gw_response *rs)
{
    json_decref(rs->json);
    free(rs->text);
    rs->json = NULL;
    rs->text = NULL;
}

void gw_json(struct gw_response *rs, int status, json_t *body)
{
    response_clear(rs);
    if (!body) {
        /* A json_pack that failed (out of memory, a bad format) must not become an empty 2xx. */
        sy_log_error("http.route", "a route answered %d without a JSON body", status);
        rs->status = 500;
        return;
    }
    rs->status = status;
    rs->json = body;
}

void gw_text(struct gw_response *rs, int status, const char *text)
{
    response_clear(rs);
    rs->text = strdup(text ? text : "");
    rs->status = rs->text ? status : 500;
}

static void error_vfill(struct gw_response *rs, const char *request_id, int status,
                        const char *code, const char *field, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static void error_vfill(struct gw_response *rs, const char *request_id, int status,
                        const char *code, const char *field, const char *fmt, va_list ap)
{
    char msg[GW_ERRMSG_MAX];

    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *err = json_pack("{s:i, s:s, s:s}", "status", status, "code", code ? code : "error",
                            "message", msg);
    if (err && field)
        json_object_set_new(err, "field", json_string(field));
    if (err)
        json_object_set_new(err, "request_id", json_string(request_id ? request_id : ""));
    response_clear(rs);
    rs->status = status;
    rs->json = err ? json_pack("{s:o}", "error", err) : NULL;
}

void gw_error(struct gw_response *rs, const struct gw_request *rq, int status, const char *code,
              const char *field, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vfill(rs, rq ? rq->request_id : NULL, status, code, field, fmt, ap);
    va_end(ap);
}

static void server_error(struct gw_response *rs, const char *request_id, int status,
                         const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void server_error(struct gw_response *rs, const char *request_id, int status,
                         const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vfill(rs, request_id, status, code, NULL, fmt, ap);
    va_end(ap);
}

/* --- Requests ----------------------------------------------------------------------------- */

const char *gw_header(const struct gw_request *rq, const char *name)
{
    if (!rq || !rq->conn || !name)
        return NULL;
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *gw_query(const struct gw_request *rq, const char *name)
{
    if (!rq || !rq->conn || !name)
        return NULL;
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* A client's request id is echoed into logs and headers: only a short token of safe bytes. */
static bool request_id_sane(const char *s)
{
    size_t n = 0;

    if (!s || !*s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= GW_RID_MAX)
            return false;
    }
    return true;
}

static void peer_of(struct MHD_Connection *conn, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    snprintf(out, outlen, "-");
    if (!ci || !ci->client_addr)
        return;
    socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in);
    if (getnameinfo(ci->client_addr, len, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(out, outlen, "-");
}

/* Appends a piece of body; past max_body the request is marked too big and the rest dropped.
 * The buffer grows geometrically but never past max_body + 1 (the NUL). */
static int body_append(struct gw_call *c, const char *data, size_t len)
{
    size_t max = c->srv->max_body;

    c->bytes_in += len;
    if (c->too_big)
        return 0;
    if (len > max - c->body_len) {
        c->too_big = true;
        free(c->body);
        c->body = NULL;
        c->body_len = c->body_cap = 0;
        return 0;
    }
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : GW_BODY_FIRST;
        while (cap < c->body_len + len + 1)
            cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
        if (cap > max + 1)
            cap = max + 1;
        char *nb = realloc(c->body, cap);
        if (!nb)
            return -SY_ENOMEM;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

/* --- Routing ------------------------------------------------------------------------------ */

/* Matches path against pattern segment by segment. Segments are what lies between slashes,
 * so "/x/" ends in an empty segment that "/x" lacks: the two are different paths, and the
 * API's patterns say which one they mean. A literal segment matches itself; "{name}" matches
 * one non-empty segment of at most GW_PARAM_MAX bytes, copied into params. */
static bool route_match(const char *pattern, const char *path,
                        char params[GW_PATH_PARAMS_MAX][GW_PARAM_MAX + 1], size_t *nparams)
{
    const char *p = pattern, *u = path;

    *nparams = 0;
    if (*p != '/' || *u != '/')
        return false;
    for (;;) {
        p++;
        u++;
        size_t plen = strcspn(p, "/"), ulen = strcspn(u, "/");
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (ulen == 0 || ulen > GW_PARAM_MAX || *nparams >= GW_PATH_PARAMS_MAX)
                return false;
            memcpy(params[*nparams], u, ulen);
            params[*nparams][ulen] = '\0';
            (*nparams)++;
        } else if (plen != ulen || memcmp(p, u, plen) != 0) {
            return false;
        }
        p += plen;
        u += ulen;
        if (*p == '\0' || *u == '\0')
            return *p == '\0' && *u == '\0';
    }
}

static int pattern_check(const struct gw_route *r, char *err, size_t errlen)
{
    size_t nparams = 0;

    if (!r->method || !*r->method || strlen(r->method) >= sizeof((struct gw_call *)0)->method ||
        !r->pattern || r->pattern[0] != '/' || !r->fn) {
        sy_errf(err, errlen,
                "http route '%.64s %.128s': needs a method, a pattern starting "
                "with '/' and a function",
                r->method ? r->method : "", r->pattern ? r->pattern : "");
        return -SY_EINVAL;
    }
    for (const char *s = r->pattern; *s; s++)
        if (*s == '{')
            nparams++;
    if (nparams > GW_PATH_PARAMS_MAX) {
        sy_errf(err, errlen, "http route '%.128s': more than %d parameters", r->pattern,
                GW_PATH_PARAMS_MAX);
        return -SY_EINVAL;
    }
    return 0;
}

/* Adds method to a 405's Allow list ("GET, POST") unless it is there already. */
static void allow_add(char *allow, size_t allowlen, const char *method)
{
    size_t mlen = strlen(method), used = strlen(allow);

    for (const char *a = allow; *a;) {
        size_t n = strcspn(a, ",");
        if (n == mlen && memcmp(a, method, mlen) == 0)
            return;
        a += n;
        if (*a)
            a += 2; /* ", " */
    }
    if (used + mlen + 3 <= allowlen)
        snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", method);
}

/* Runs the route for the request, or fills a 404/405/413; the response is always set. */
static void dispatch(struct gw_call *c, struct MHD_Connection *conn, struct gw_response *rs,
                     char *allow, size_t allowlen)
{
    struct gw_server *srv = c->srv;
    char params[GW_PATH_PARAMS_MAX][GW_PARAM_MAX + 1];
    size_t nparams = 0;
    const struct gw_route *hit = NULL;
    bool path_known = false;

    allow[0] = '\0';
    if (c->too_big) {
        server_error(rs, c->request_id, 413, "body_too_large",
                     "the request body is larger than %zu bytes", srv->max_body);
        return;
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct gw_route *r = &srv->routes[i];
        if (!route_match(r->pattern, c->path, params, &nparams))
            continue;
        path_known = true;
        if (!c->method_cut && strcmp(r->method, c->method) == 0) {
            hit = r;
            break;
        }
        allow_add(allow, allowlen, r->method);
    }
    if (!hit) {
        if (path_known)
            server_error(rs, c->request_id, 405, "method_not_allowed", "%s is not allowed here",
                         c->method);
        else
            server_error(rs, c->request_id, 404, "not_found", "no such resource");
        return;
    }
    allow[0] = '\0';

    struct gw_request rq = {
        .method = c->method,
        .path = c->path,
        .nparams = nparams,
        .body = c->body ? c->body : "",
        .body_len = c->body_len,
        .request_id = c->request_id,
        .conn = conn,
    };
    for (size_t i = 0; i < nparams; i++)
        rq.params[i] = params[i];
    hit->fn(srv->ctx, &rq, rs);
    if (rs->status < 100 || rs->status > 599) {
        sy_log_error("http.route", "route %s %s answered status %d; sending 500", hit->method,
                     hit->pattern, rs->status);
        server_error(rs, c->request_id, 500, "internal", "the server could not answer");
    }
}

/* Serialises rs and queues it on the connection. Frees rs's body either way. */
static enum MHD_Result send_response(struct gw_call *c, struct MHD_Connection *conn,
                                     struct gw_response *rs, const char *allow)
{
    char *body = NULL;
    size_t len = 0;
    const char *ctype = NULL;
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret = MHD_NO;

    if (rs->json) {
        body = json_dumps(rs->json, JSON_COMPACT | JSON_ENCODE_ANY);
        ctype = "application/json";
        if (!body) {
            sy_log_error("http.route", "cannot serialise the response of %s %s", c->method,
                         c->path);
            rs->status = 500;
            ctype = NULL;
        }
    } else if (rs->text) {
        body = rs->text;
        rs->text = NULL;
        ctype = "text/plain; charset=utf-8";
    }
    len = body ? strlen(body) : 0;
    resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!resp) {
        free(body);
        goto out;
    }
    body = NULL; /* the response owns it now */
    if ((ctype && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        MHD_add_response_header(resp, "X-Request-Id", c->request_id) != MHD_YES)
        goto out;
    if (allow && *allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)
        goto out;
    if (rs->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rs->retry_after_s);
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra) != MHD_YES)
            goto out;
    }
    ret = MHD_queue_response(conn, (unsigned)rs->status, resp);
    if (ret == MHD_YES) {
        c->answered = true;
        c->status = rs->status;
        c->bytes_out = len;
        c->log_note = rs->log_note;
    }
out:
    MHD_destroy_response(resp);
    response_clear(rs);
    return ret;
}

/* --- libmicrohttpd callbacks -------------------------------------------------------------- */

static struct gw_call *call_new(struct gw_server *srv, struct MHD_Connection *conn, const char *url,
                                const char *method)
{
    struct gw_call *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->srv = srv;
    c->start_us = sy_mono_us();
    c->method_cut = snprintf(c->method, sizeof c->method, "%s", method) >= (int)sizeof c->method;
    c->path = strdup(url);
    if (!c->path) {
        free(c);
        return NULL;
    }
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (request_id_sane(rid))
        snprintf(c->request_id, sizeof c->request_id, "%s", rid);
    else
        sy_uuid4(c->request_id);
    peer_of(conn, c->peer, sizeof c->peer);
    atomic_fetch_add(&srv->in_flight, 1);
    return c;
}

static void call_free(struct gw_call *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->body);
    free(c);
}

/* True when the request announces a body larger than max_body. MHD has already refused a
 * Content-Length that is not a number. */
static bool announced_too_big(struct MHD_Connection *conn, size_t max_body)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long n = strtoull(cl, &end, 10);
    return errno == ERANGE || n > max_body;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct gw_server *srv = cls;
    struct gw_call *c = *con_cls;
    struct gw_response rs = {0};
    char allow[GW_ALLOW_MAX];

    (void)version;
    if (!c) {
        c = call_new(srv, conn, url, method);
        if (!c)
            return MHD_NO; /* out of memory: MHD closes the connection */
        *con_cls = c;
        if (announced_too_big(conn, srv->max_body)) {
            /* Refused before reading: MHD sends no 100 Continue and closes afterwards. */
            c->too_big = true;
            server_error(&rs, c->request_id, 413, "body_too_large",
                         "the request body is larger than %zu bytes", srv->max_body);
            return send_response(c, conn, &rs, NULL);
        }
        return MHD_YES;
    }
    if (c->answered) {
        /* Answered early (413): whatever body still comes is dropped. */
        c->bytes_in += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (body_append(c, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        if (c->too_big && c->bytes_in - srv->max_body > srv->max_body) {
            /* MHD takes no answer in the middle of a body, so an over-long chunked body is
             * drained to answer 413 at its end; a client still sending at twice the limit is
             * cut off instead, so it cannot hold a thread for as long as it likes. */
            c->log_note = "body far over the limit, connection closed";
            return MHD_NO;
        }
        return MHD_YES;
    }
    dispatch(c, conn, &rs, allow, sizeof allow);
    return send_response(c, conn, &rs, allow);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct gw_server *srv = cls;
    struct gw_call *c = *con_cls;

    (void)conn;
    if (!c)
        return;
    *con_cls = NULL;
    double ms = (double)(sy_mono_us() - c->start_us) / 1000.0;
    int status = c->answered ? c->status : 0;
    const char *note = c->log_note                                  ? c->log_note
                       : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                       : c->answered ? "connection closed while answering"
                                     : "connection closed before an answer";
    /* The path without its query (queries may carry tokens), never headers or bodies. */
    sy_log_write(status >= 500 || status == 0 ? SY_LOG_WARN : SY_LOG_INFO, "http.access", ms, NULL,
                 "%s %s %d in=%llu out=%zu request_id=%s peer=%s%s%s", c->method, c->path, status,
                 (unsigned long long)c->bytes_in, c->bytes_out, c->request_id, c->peer,
                 *note ? " note=" : "", note);
    if (c->answered) {
        struct sy_counter *k = status >= 500   ? srv->req_5xx
                               : status >= 400 ? srv->req_4xx
                               : status >= 300 ? srv->req_3xx
                               : status >= 200 ? srv->req_2xx
                                               : srv->req_1xx;
        sy_counter_add(k, 1);
        sy_histogram_observe(srv->req_seconds, ms / 1000.0);
    }
    call_free(c);
    atomic_fetch_sub(&srv->in_flight, 1);
}

/* MHD's own complaints (a socket error, a refused connection), as log lines. The format
 * comes from the library, whose logger type carries no format attribute. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    sy_log_warn("http.server", "%s", line);
}

/* --- Server ------------------------------------------------------------------------------- */

/* "host:port", "[v6]:port" or ":port" (all interfaces), resolved to one numeric address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char host[GW_HOST_MAX + 1];

    if (!colon || !colon[1]) {
        sy_errf(err, errlen, "http address '%.64s' is not host:port", addr ? addr : "");
        return -SY_EINVAL;
    }
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen > GW_HOST_MAX) {
        sy_errf(err, errlen, "http address: host longer than %d bytes", GW_HOST_MAX);
        return -SY_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 0 || port > 65535) {
        sy_errf(err, errlen, "http address '%.64s': port must be 0..65535", addr);
        return -SY_EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0 || !res) {
        sy_errf(err, errlen, "http address '%.64s': %s", addr, gai_strerror(gai));
        return -SY_EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

struct gw_server *gw_server_start(const struct gw_server_opts *o, char *err, size_t errlen)
{
    struct gw_server *srv = NULL;
    struct sockaddr_storage ss = {0};

    if (!o || (!o->routes && o->nroutes > 0)) {
        sy_errf(err, errlen, "http server: no options");
        return NULL;
    }
    for (size_t i = 0; i < o->nroutes; i++)
        if (pattern_check(&o->routes[i], err, errlen) != 0)
            return NULL;
    if (parse_addr(o->addr, &ss, err, errlen) != 0)
        return NULL;
    srv = calloc(1, sizeof *srv);
    if (!srv) {
        sy_errf(err, errlen, "http server: out of memory");
        return NULL;
    }
    srv->max_body = o->max_body ? o->max_body : GW_MAX_BODY_DEFAULT;
    srv->routes = o->routes;
    srv->nroutes = o->nroutes;
    srv->ctx = o->ctx;
    srv->req_1xx = sy_counter_get("sy_http_requests_total", "HTTP requests answered, by class",
                                  "code=\"1xx\"");
    srv->req_2xx = sy_counter_get("sy_http_requests_total", "HTTP requests answered, by class",
                                  "code=\"2xx\"");
    srv->req_3xx = sy_counter_get("sy_http_requests_total", "HTTP requests answered, by class",
                                  "code=\"3xx\"");
    srv->req_4xx = sy_counter_get("sy_http_requests_total", "HTTP requests answered, by class",
                                  "code=\"4xx\"");
    srv->req_5xx = sy_counter_get("sy_http_requests_total", "HTTP requests answered, by class",
                                  "code=\"5xx\"");
    srv->req_seconds =
        sy_histogram_get("sy_http_request_seconds", "HTTP request duration in seconds", NULL);

    unsigned conns = o->max_conns ? o->max_conns : GW_CONNS_DEFAULT;
    if (conns > GW_CONNS_MAX)
        conns = GW_CONNS_MAX;
    /* A thread per connection: a route blocks while its publish waits for the broker, and
     * with a pool the connections a thread holds would all wait behind that one (a pool also
     * spreads connections unevenly over its threads). A connection beyond the limit is
     * closed as soon as it is accepted. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(o->timeout_s ? o->timeout_s : GW_TIMEOUT_DEFAULT), MHD_OPTION_CONNECTION_LIMIT,
        conns, MHD_OPTION_THREAD_STACK_SIZE, (size_t)GW_THREAD_STACK, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_END);
    if (!srv->mhd) {
        sy_errf(err, errlen, "http server: cannot listen on %.64s (address in use or not local)",
                o->addr);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    return srv;
}

int gw_server_port(const struct gw_server *s)
{
    return s ? s->port : -1;
}

void gw_server_stop(struct gw_server *s)
{
    if (!s)
        return;
    /* Quiescing closes the door to new connections. MHD_stop_daemon would close the open ones
     * at once, dropping an answer a route is still producing (a publish waiting for the
     * broker's confirm), so requests in progress get a bounded while to finish first; idle
     * keep-alive connections hold no request and do not delay the stop. The listening socket
     * is ours to close once quiesced. */
    MHD_socket lsock = MHD_quiesce_daemon(s->mhd);
    int64_t deadline = sy_mono_ms() + GW_STOP_WAIT_MS;
    while (atomic_load(&s->in_flight) > 0 && sy_mono_ms() < deadline)
        usleep(10 * 1000);
    MHD_stop_daemon(s->mhd);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    free(s);
}
