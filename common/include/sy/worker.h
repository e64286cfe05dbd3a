/* worker.h - the handler interface: a worker is a table of callbacks; the runtime owns
 * connections, decoding, validation, threads, acks, retries, health and shutdown. */
#ifndef SY_WORKER_H
#define SY_WORKER_H

#include <stddef.h>

#include "sy/config.h"
#include "sy/msg.h"

struct sy_worker; /* the running process; borrowed by callbacks */
struct sy_schemas;
struct sy_topology;

struct sy_handler {
    const char *name; /* the worker's name in the topology: consumes queue sy.<name> */

    /* Optional settings of this worker, loaded from the environment before init. */
    const struct sy_conf_key *conf;
    size_t conf_size; /* size of the struct the rows point into */

    /* Called once before consuming; *state is passed to every other callback. Non-zero
     * stops the process (exit code 78) after logging. */
    int (*init)(struct sy_worker *w, void **state);
    /* Optional, once per handler thread: *tstate is what handle/handle_batch then receive
     * (state itself when thread_init is NULL). */
    int (*thread_init)(void *state, void **tstate);
    void (*thread_exit)(void *state, void *tstate);

    /* One message: return a verdict (use sy_msg_fail to give a reason). The message is
     * borrowed for the call. Exactly one of handle / handle_batch is set. */
    enum sy_verdict (*handle)(void *tstate, struct sy_msg *msg);
    /* Up to batch_max messages (at least one); set each verdict with sy_msg_fail (unset =
     * ACK). The runtime waits at most batch_wait_ms for a batch to fill. Without SY_PREFETCH
     * the prefetch window is sized for a full batch per handler thread (at most 2000); a
     * batch never waits for more than its thread's share of the window. */
    void (*handle_batch)(void *tstate, struct sy_msg **msgs, size_t n);
    unsigned batch_max;
    unsigned batch_wait_ms;

    /* Instead of handle/handle_batch, for a worker that consumes no queue but publishes from
     * a loop of its own (a scheduler, an HTTP front door, an MQTT bridge): run is called once
     * in a thread of its own after init, while the broker connection is made, and must return
     * soon after sy_worker_stopping() turns true (sy_worker_sleep wakes then). A non-zero
     * return stops the process with exit code 1. Such a worker needs no topology entry; its
     * connection declares every worker's queues, so whatever it publishes has a queue. */
    int (*run)(void *state);

    /* Optional readiness of the handler's own stores for /readyz: 0 = ready. Called from the
     * health thread. */
    int (*ready)(void *state);
    /* Optional; always called when init succeeded, after every handler thread stopped. */
    void (*exit)(void *state);
};

/* Runs the worker: loads settings, logs, schemas and topology, serves health, consumes until
 * SIGTERM/SIGINT, drains, and returns the process exit code (0 on a clean stop, 78 on bad
 * configuration, 1 on a fatal error). */
int sy_worker_main(const struct sy_handler *h, int argc, char **argv);

/* The handler's settings struct as loaded from its conf table (NULL without one). */
const void *sy_worker_conf(const struct sy_worker *w);
const char *sy_worker_name(const struct sy_worker *w);
const char *sy_worker_instance(const struct sy_worker *w);
/* The message schemas and the topology the process loaded (for checking configuration that
 * names message types at start). */
const struct sy_schemas *sy_worker_schemas(const struct sy_worker *w);
const struct sy_topology *sy_worker_topology(const struct sy_worker *w);
/* Common connection settings (NULL when unset): "amqp", "redis", "pg", "mysql", "mqtt". */
const char *sy_worker_url(const struct sy_worker *w, const char *which);

/* Publishes a message of `type` whose data is a packed msgpack map, and waits until the broker
 * confirmed it (or timeout_ms passed). The runtime validates it against its schema first
 * (-SY_ESCHEMA). `id` NULL means a fresh id; the id used is copied into id_out[SY_MSG_ID_MAX+1]
 * when id_out is not NULL. Callable from handler threads and from init. */
int sy_worker_publish(struct sy_worker *w, const char *type, const char *id,
                      const void *data_msgpack, size_t data_len, int timeout_ms, char *id_out);

/* True once SIGTERM/SIGINT was received: long handlers should finish early. */
int sy_worker_stopping(const struct sy_worker *w);
/* Sleeps up to ms, waking at once when the process is told to stop: 0 after the full sleep,
 * 1 when stopping. Any thread. */
int sy_worker_sleep(struct sy_worker *w, long long ms);

#endif
