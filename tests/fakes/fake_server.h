/* fake_server.h - the HTTP plumbing every fake in tests/fakes shares: a libmicrohttpd server on
 * loopback, a thread per connection, request bodies read whole (up to a cap), "port=<n>" on
 * stdout once listening, and a clean stop on SIGTERM or SIGINT. A fake supplies what answers a
 * whole request. */
#ifndef SY_FAKE_SERVER_H
#define SY_FAKE_SERVER_H

#include <jansson.h>
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

/* One-shot faults a test aims at a kind of request, each used up by the first request of that
 * kind after it: it answers an error status, or the request's own answer late. Kinds are a
 * fake's own numbers, indexes into its NULL-terminated names, kind 0 being "any". */
#define FAKE_ONCE_MAX 32
struct fake_once {
    struct {
        int on, status, delay_ms;
    } f[FAKE_ONCE_MAX];
    int n;
};

/* Appends the faults of list, [{"on": <name>, "status": 400-599} or {"on": <name>,
 * "delay_ms": M}, ...] (NULL: none). 0, or -1 with why in err (those before the bad one are
 * kept). */
int fake_once_add(struct fake_once *o, const json_t *list, const char *const *names, char *err,
                  size_t errlen);

/* The first fault aimed at kind k, or at any, or at kind covers (a wider kind whose faults k
 * takes too, as a listing's for its later pages; -1: none), used up: its status, or 0 when it
 * delays the answer instead (*delay_ms raised to its delay); -1 when none is due. */
int fake_once_take(struct fake_once *o, int k, int covers, int *delay_ms);

#endif
