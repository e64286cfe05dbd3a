/* http.h - the gateway's HTTP server (libmicrohttpd underneath, never named outside http.c):
 * each request is read whole under a size limit, routed by method and path pattern, and
 * answered with JSON; one access-log line per request, without secrets. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <jansson.h>
#include <stddef.h>

#define GW_PATH_PARAMS_MAX 4
#define GW_PARAM_MAX       128 /* bytes of one path parameter */

/* A request, borrowed by the route for the duration of the call. */
struct gw_request {
    const char *method;                     /* "GET", "POST", "PUT", ... */
    const char *path;                       /* without the query string */
    const char *params[GW_PATH_PARAMS_MAX]; /* what each "{name}" of the pattern matched */
    size_t nparams;
    const char *body; /* the whole body, NUL-terminated (may hold NULs before it) */
    size_t body_len;
    const char *request_id; /* for logs and error bodies */
    void *conn;             /* the server's; for gw_header and gw_query */
};

/* A header (case-insensitive name) or a query argument, NULL when absent. Borrowed. */
const char *gw_header(const struct gw_request *rq, const char *name);
const char *gw_query(const struct gw_request *rq, const char *name);

/* What the route answers. The server frees it after sending. */
struct gw_response {
    int status;
    json_t *json;         /* owned: serialised as application/json; or */
    char *text;           /* owned: sent as text/plain (e.g. a webhook challenge) */
    int retry_after_s;    /* > 0: a Retry-After header */
    const char *log_note; /* static text for the access log ("duplicate delivery") */
};

/* Helpers that fill a response. gw_error's body: {"error": {"status": 4xx, "code": "...",
 * "message": "...", "field": "..." (when field is not NULL), "request_id": "..."}}.
 * Each replaces (and frees) a body the response already held. gw_json given NULL (a failed
 * json_pack) sets 500; gw_text copies text; messages are cut at 511 bytes. */
void gw_json(struct gw_response *rs, int status, json_t *body /* owned */);
void gw_text(struct gw_response *rs, int status, const char *text);
void gw_error(struct gw_response *rs, const struct gw_request *rq, int status, const char *code,
              const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A route: method and pattern ("/api/grievances/{id}/status/": literal segments and {name}
 * segments, each matching one non-empty segment of at most GW_PARAM_MAX bytes). A path that
 * matches a pattern but not its method gets 405 with Allow; no pattern at all, 404.
 * Segments lie between slashes, so a trailing slash is significant: "/x/" and "/x" are two
 * different paths, and the API's patterns end in '/'. The path is percent-decoded before it
 * is matched. Routes are tried in order; the first whose pattern and method match runs.
 * HEAD and OPTIONS are ordinary methods: they need routes of their own. A route that leaves
 * rs->status outside 100..599 gets 500 (and a log line); its body is freed unsent. */
typedef void (*gw_route_fn)(void *ctx, const struct gw_request *rq, struct gw_response *rs);
struct gw_route {
    const char *method;
    const char *pattern;
    gw_route_fn fn;
};

/* A body announced (Content-Length) over max_body gets 413 before it is read. A chunked body
 * that passes max_body is dropped as it arrives and answered 413 at its end; one still
 * coming at twice max_body has its connection closed without an answer. */
struct gw_server_opts {
    const char *addr;   /* host:port, [v6]:port or :port (port 0: any free port) */
    size_t max_body;    /* larger bodies get 413; 0: 1 MiB */
    unsigned max_conns; /* connections served at once, a thread each (more are closed at
                         * once); 0: 1024, at most 4096 */
    unsigned timeout_s; /* idle connection timeout; 0: 30 s */
    const struct gw_route *routes;
    size_t nroutes;
    void *ctx; /* passed to every route */
};

struct gw_server;
/* Starts serving; NULL with err on failure (bad address, port taken, a route without method,
 * function or leading '/', or with more than GW_PATH_PARAMS_MAX parameters). routes and ctx
 * are borrowed until gw_server_stop. Each request gets an "http.access" log line (method,
 * path without its query, status, bytes in and out, request id, peer, log_note; never headers
 * or bodies) and counts in sy_http_requests_total{code="2xx"...} and sy_http_request_seconds.
 * The request id is the client's X-Request-Id when it is 1..64 bytes of [A-Za-z0-9._-], else
 * a fresh UUID; it is echoed in the X-Request-Id response header. */
struct gw_server *gw_server_start(const struct gw_server_opts *o, char *err, size_t errlen);
/* The port actually bound (useful after port 0); -1 for NULL. */
int gw_server_port(const struct gw_server *s);
/* Stops accepting, lets requests in progress finish (for at most 10 s), closes idle
 * connections, frees. Accepts NULL. */
void gw_server_stop(struct gw_server *s);

#endif
