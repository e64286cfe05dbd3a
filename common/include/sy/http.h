/* http.h - an HTTP client for the services workers call (GLPI, Microsoft Graph, Maximo,
 * WhatsApp): libcurl underneath, never named outside http.c. Every call has a timeout and a
 * cap on the answer's size; answers are classified for the handler's verdict, honouring
 * Retry-After. One struct sy_http per thread; it keeps its connections alive between calls,
 * except for POSTs, which get a connection of their own: libcurl silently sends a request
 * again when a reused connection died before the answer, and a create would be made twice.
 *
 * Verdict rule (sy_http_verdict): transport failures, timeouts, 408, 429 and 5xx are
 * retriable (RETRY, after Retry-After when the server gave one); other 4xx are the request's
 * fault (REJECT); 2xx and 3xx are answers. */
#ifndef SY_HTTP_H
#define SY_HTTP_H

#include <jansson.h>
#include <stddef.h>

#define SY_HTTP_BODY_MAX_DEFAULT (16u * 1024u * 1024u)

struct sy_http;

struct sy_http_opts {
    long connect_timeout_ms; /* 0: 5 s */
    long timeout_ms;         /* the whole exchange; 0: 30 s */
    size_t body_max;         /* larger answers fail with -SY_ETOOBIG; 0: 16 MiB */
    const char *user_agent;  /* NULL: "switchyard/<version>" */
    int insecure_http;       /* 0: only https:// URLs; 1: http:// too (tests, loopback) */
};

/* o may be NULL: the defaults. NULL when libcurl cannot start or memory is short. */
struct sy_http *sy_http_new(const struct sy_http_opts *o);
/* Closes its connections; accepts NULL. */
void sy_http_destroy(struct sy_http *h);

struct sy_http_resp {
    long status; /* 0 when no answer came */
    char *body;  /* NUL-terminated (may hold NULs before it); owned */
    size_t len;
    int retry_after_s;  /* from Retry-After (seconds or an HTTP date), -1 when absent */
    char *content_type; /* owned, NULL when absent */
};
/* Frees what r owns and zeroes it (retry_after_s -1): safe on a zeroed or already-freed resp. */
void sy_http_resp_free(struct sy_http_resp *r);

/* One request. headers: NULL-terminated "Name: value" strings, may be NULL (their values are
 * never logged). body may be NULL. 0 with *r filled when an answer came, whatever its status
 * (a 3xx is returned, not followed); otherwise *r is zeroed and the code says why:
 * -SY_ECONN (no connection, connection lost, empty reply), -SY_ETIMEOUT, -SY_ETOOBIG (answer
 * over body_max), -SY_EINVAL (a URL that is not https:// unless insecure_http: no request is
 * made), -SY_ENOMEM, with the reason in err. err holds no header value and no URL query. */
int sy_http_do(struct sy_http *h, const char *method, const char *url, const char *const *headers,
               const void *body, size_t body_len, struct sy_http_resp *r, char *err, size_t errlen);

/* sy_http_do with a JSON body (may be NULL; sent as application/json) and a JSON answer:
 * *json_out gets the parsed answer (NULL for an empty body or one that is not JSON: the
 * caller decides whether that is an error). */
int sy_http_json(struct sy_http *h, const char *method, const char *url, const char *const *headers,
                 const json_t *body, struct sy_http_resp *r, json_t **json_out, char *err,
                 size_t errlen);

/* The verdict the rule above gives an outcome: rc from sy_http_do, and r when rc is 0.
 * 0 = an answer to use (2xx, 3xx), 1 = retry (then *delay_s: Retry-After, or -1), 2 = the
 * request's fault (other 4xx, -SY_EINVAL, -SY_ETOOBIG). */
int sy_http_verdict(int rc, const struct sy_http_resp *r, int *delay_s);

/* Percent-encodes s for a query string value into a new string (caller frees); NULL when
 * memory is short. */
char *sy_http_escape(const char *s);

#endif
