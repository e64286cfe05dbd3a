/* latest.h - the newest value of every metric of every device in Redis, for dashboards:
 *
 *   telemetry:latest:<plant>:<device>   hash: <metric> -> value, <metric>:ts -> µs since epoch,
 *                                       kind -> the device's kind
 *   telemetry:devices:<kind>            set of "<plant>:<device>" (vehicles: kind "vehicle")
 *
 * A vehicle's hash thus holds its last position (lat, lon), fuel, load, driver and route. Only a
 * newer reading replaces a value (a script compares the times), so replicas sharing the stream
 * and late or redelivered readings never put an older value back. One script call per device
 * per batch, all pipelined. Redis holds what may be lost: the history is PostgreSQL's. */
#ifndef TELEMETRY_LATEST_H
#define TELEMETRY_LATEST_H

#include <stddef.h>

#include "telemetry/batch.h"

struct sy_redis;

/* The script's SHA-1 once loaded into the Redis the writes go to (sha[0] == '\0': not yet). */
struct tm_latest {
    char sha[41];
};

/* 0 with *devices (hashes written), or a negative error from the connection. The script is
 * loaded when l says it is not, and again when Redis lost it (a restart). */
int tm_latest_write(struct tm_latest *l, struct sy_redis *r, const struct tm_batch *b,
                    size_t *devices);

#endif
