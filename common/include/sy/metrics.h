/* metrics.h - process metrics in Prometheus text format, and the health endpoints. */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Counters are process-wide, lock-free, and never freed. Names follow Prometheus rules
 * ("sy_consumed_total"); `labels` is a fixed label set such as worker="grievance" or NULL.
 * Registering the same name and labels twice returns the same counter. */
struct sy_counter;
struct sy_counter *sy_counter_get(const char *name, const char *help, const char *labels);
void sy_counter_add(struct sy_counter *c, uint64_t n);

struct sy_gauge;
struct sy_gauge *sy_gauge_get(const char *name, const char *help, const char *labels);
void sy_gauge_set(struct sy_gauge *g, int64_t v);
void sy_gauge_add(struct sy_gauge *g, int64_t delta);

/* A latency histogram with fixed buckets from 0.5 ms to 60 s (seconds in the output). */
struct sy_histogram;
struct sy_histogram *sy_histogram_get(const char *name, const char *help, const char *labels);
void sy_histogram_observe(struct sy_histogram *h, double seconds);

/* Everything registered, in text exposition format 0.0.4, into a malloc'd string. */
char *sy_metrics_render(void);

/* The health server: GET /healthz (200 while the process runs its loop), /readyz (200 when
 * ready() returns 0, else 503 with the reason), /metrics. Binds addr "host:port" (port 0 =
 * any free port). Returns NULL with err on failure. */
struct sy_health;
typedef int (*sy_ready_fn)(void *ud, char *why, size_t whylen);
struct sy_health *sy_health_start(const char *addr, sy_ready_fn ready, void *ud, char *err,
                                  size_t errlen);
/* The port actually bound. */
int sy_health_port(const struct sy_health *h);
void sy_health_stop(struct sy_health *h);

#endif
