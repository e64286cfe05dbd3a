/* topology.h - exchanges, queues and bindings as data (schemas/topology.yaml).
 *
 *   exchange: sy.events
 *   defaults:
 *     delivery_limit: 20            # quorum-queue x-delivery-limit: crash loops end in .dead
 *     retry: {max_attempts: 8, delays: [1s, 5s, 30s, 2m, 10m, 1h], jitter: 0.2}
 *   workers:
 *     grievance:
 *       routes: [grievance.#, grm.pull]
 *       retry: {max_attempts: 5}     # overrides the defaults key by key
 *
 * Per worker w the runtime declares: quorum queue sy.<w> bound to its routes on the exchange;
 * one quorum delay queue sy.<w>.retry.<i> per delay step, whose expired messages dead-letter
 * (at-least-once) back to sy.<w> only; and the quorum dead-letter queue sy.<w>.dead, which also
 * receives what exceeds the delivery limit. */
#ifndef SY_TOPOLOGY_H
#define SY_TOPOLOGY_H

#include <stddef.h>

#define SY_TOPO_MAX_DELAYS 16

struct sy_topo_worker {
    char *name;
    char **routes; /* NULL-terminated */
    size_t nroutes;
    long long delivery_limit;
    unsigned max_attempts;                   /* handler attempts before dead-lettering */
    long long delays_ms[SY_TOPO_MAX_DELAYS]; /* retry ladder; attempt n uses step min(n-1, last) */
    size_t ndelays;
    double jitter; /* 0..1: delay is multiplied by 1 + U(0, jitter) */
};

struct sy_topology {
    char *exchange;
    struct sy_topo_worker *workers;
    size_t nworkers;
};

/* Loads and checks a topology file; NULL with "file:line: why" in err. */
struct sy_topology *sy_topology_load(const char *path, char *err, size_t errlen);
void sy_topology_destroy(struct sy_topology *t);
const struct sy_topo_worker *sy_topology_worker(const struct sy_topology *t, const char *name);

/* Queue names: "sy.<w>", "sy.<w>.dead", "sy.<w>.retry.<step>". 0 or -SY_ETOOBIG. */
int sy_topo_queue_name(const struct sy_topo_worker *w, char *buf, size_t bufsz);
int sy_topo_dead_name(const struct sy_topo_worker *w, char *buf, size_t bufsz);
int sy_topo_retry_name(const struct sy_topo_worker *w, size_t step, char *buf, size_t bufsz);

/* The delay before attempt `next_attempt` (2 = first retry): the ladder step times
 * (1 + jitter * u), u uniform in [0,1) given by the caller, so the broker never returns a
 * message before its step's delay. Also gives the step index used. */
long long sy_topo_retry_delay(const struct sy_topo_worker *w, unsigned next_attempt, double u,
                              size_t *step);
/* The same, on the first step from that one on whose delay is at least min_ms (the last step
 * when none is): for a server that said when to come back. */
long long sy_topo_retry_delay_min(const struct sy_topo_worker *w, unsigned next_attempt,
                                  long long min_ms, double u, size_t *step);

#endif
