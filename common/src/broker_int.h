/* broker_int.h - a worker's broker: one I/O thread that owns the AMQP connection (consume,
 * acks, confirms, retries, dead letters, reconnects), a pool of handler threads, and the
 * queues between them. Used by worker.c only. */
#ifndef SY_BROKER_INT_H
#define SY_BROKER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sy/amqp.h"

struct sy_broker;
struct sy_handler;
struct sy_schemas;
struct sy_topology;
struct sy_topo_worker;

/* Everything is borrowed and must outlive the broker. */
struct sy_broker_opts {
    const char *url;
    const char *instance;
    const struct sy_topology *topo;
    const struct sy_topo_worker *tw; /* this worker in topo */
    const struct sy_schemas *schemas;
    const struct sy_handler *handler;
    void *hstate;                /* what the handler's init returned (or set later) */
    unsigned prefetch;           /* basic.qos, and the hand-off queue's capacity */
    unsigned threads;            /* handler threads */
    int heartbeat_s;             /* 0: no heartbeats */
    long long reconnect_max_ms;  /* backoff cap */
    long long shutdown_grace_ms; /* bound on the drain after SIGTERM */
};

/* What the process did, for the worker.stop line. */
struct sy_broker_stats {
    uint64_t consumed, acked, retried, dead_lettered, published, reconnects;
    unsigned in_flight; /* deliveries unsettled when the grace ran out (0 on a clean drain) */
    unsigned stuck;     /* handler calls still running then */
};

/* Allocates the broker (no thread runs yet). NULL with err on failure. */
struct sy_broker *sy_broker_new(const struct sy_broker_opts *o, char *err, size_t errlen);
/* The handler's state, once its init produced it (before the threads start). */
void sy_broker_set_state(struct sy_broker *b, void *hstate);
/* Starts the handler threads; each runs the handler's thread_init first. Fails (err names
 * the thread) when any thread_init fails; the threads that started are stopped by
 * sy_broker_shutdown. */
int sy_broker_start_handlers(struct sy_broker *b, char *err, size_t errlen);
/* Starts the I/O thread: connect, declare this worker's topology, consume; reconnects with
 * backoff on its own from then on. */
int sy_broker_start(struct sy_broker *b, char *err, size_t errlen);

/* 0 when connected and consuming, else -1 with the reason in why. Any thread. */
int sy_broker_ready(struct sy_broker *b, char *why, size_t whylen);

/* Publishes through the I/O thread (confirm channel, mandatory, persistent) and waits for the
 * broker's answer: 0, -SY_ENACK, -SY_EUNROUTABLE, -SY_ETIMEOUT, -SY_ECONN (not connected, or
 * lost before the confirm) or -SY_ESHUTDOWN. Any thread except the I/O thread. */
int sy_broker_publish(struct sy_broker *b, const struct sy_publish *p, int timeout_ms);

/* Drains and stops: cancels the consumer, returns deliveries no handler started, lets running
 * handlers finish and settles their verdicts, closes the connection, then stops the handler
 * threads (thread_exit runs in each). Bounded by the shutdown grace: past it the connection
 * is closed anyway and stats->stuck tells how many handler calls are still running (their
 * threads are then left alone, and the caller must not destroy the broker). */
void sy_broker_shutdown(struct sy_broker *b, struct sy_broker_stats *stats);
/* Frees the broker after a shutdown that left nothing stuck (or one that never started). */
void sy_broker_destroy(struct sy_broker *b);

#endif
