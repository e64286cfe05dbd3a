/* fake_server.h - the HTTP plumbing every fake in tests/fakes shares: a libmicrohttpd server on
 * loopback, a thread per connection, request bodies read whole (up to a cap), "port=<n>" on
 * stdout once listening, and a clean stop on SIGTERM or SIGINT. A fake supplies what answers a
 * whole request. */
#ifndef SY_FAKE_SERVER_H
#define SY_FAKE_SERVER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* A request's body, read whole. */
struct req {
    char *body; /* NUL-terminated; NULL when there was none */
    size_t len;
    bool too_big;
};

/* Answers one whole request. *delay_ms: how long the queued answer is then held back (a slow
 * server), outside whatever lock route took, so other requests go on meanwhile. */
typedef enum MHD_Result (*fake_route)(struct MHD_Connection *c, const char *url, const char *method,
                                      struct req *rq, int *delay_ms);
/* The answer to a body over the cap. */
typedef enum MHD_Result (*fake_too_big)(struct MHD_Connection *c);

/* Serves on 127.0.0.1:*port (0: a port the kernel picks, then written back to *port before
 * "port=<n>" is printed) until SIGTERM or SIGINT. 0 after a clean stop, 1 when it could not
 * listen (name says who, on stderr). */
int fake_serve(const char *name, int *port, size_t body_max, fake_route route,
               fake_too_big too_big);

#endif
