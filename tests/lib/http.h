/* http.h - a small HTTP client for tests and benchmarks: one request to a loopback port over
 * libcurl, its status, body and Retry-After. (Failing checks of replies are in cm_http.h.) */
#ifndef SY_TEST_HTTP_H
#define SY_TEST_HTTP_H

#include <stddef.h>

struct th_reply {
    long status; /* 0 when no answer came (refused, timed out) */
    char *body;  /* NUL-terminated, never NULL; th_reply_free frees it */
    size_t len;
    int retry_after; /* seconds, -1 when absent */
};

/* One request to 127.0.0.1:port, within 20 s. The path (with its query) is sent as written
 * ("/../", "%2B"), never tidied by curl. headers: "Name: value", NULL-terminated, may be NULL;
 * body: sent whole when not NULL. Content-Type: application/json goes with every request and
 * "Expect: 100-continue" with none. */
struct th_reply th_http(int port, const char *method, const char *path, const char *const *headers,
                        const char *body);
/* Frees the body; the reply may be freed again. */
void th_reply_free(struct th_reply *r);

/* The sum of a worker's /metrics lines for name on port: name is a metric ("x_total", every
 * label set counted) or one series of it ("x_total{outcome=\"stored\"}"). -1 when /metrics does
 * not answer 200. */
long long th_metric(int port, const char *name);

#endif
