/* tz.h - time zones read from the system's TZif files, independent of the process's TZ: the
 * offset from UTC in effect at any instant, past the file's table through its POSIX rule. */
#ifndef SCHED_TZ_H
#define SCHED_TZ_H

#include <stddef.h>
#include <stdint.h>

struct sched_tz;

/* Every loaded zone keeps two promises, so callers can bound searches and buffers: each
 * offset is strictly within SCHED_TZ_OFFSET_LIMIT seconds of UTC (26 hours, RFC 8536's
 * bound), and the offset changes at most SCHED_TZ_MAX_CHANGES_4D times within any four days
 * (a file that changes it more often is refused; no zone on record comes close). */
#define SCHED_TZ_OFFSET_LIMIT   (26 * 3600)
#define SCHED_TZ_MAX_CHANGES_4D 16

/* Loads zone `name` ("Asia/Kolkata", "Europe/Berlin", "UTC") from $TZDIR, else
 * /usr/share/zoneinfo. "UTC" (and "Etc/UTC") work without any file. A name that is empty,
 * absolute, holds "..", or characters other than [A-Za-z0-9/_+-], or whose file is missing or
 * malformed, gives NULL with the reason in err. Files are read under a size limit. */
struct sched_tz *sched_tz_load(const char *name, char *err, size_t errlen);

/* The same from the bytes of a TZif file (versions 1 to 4; a v2+ file is read through its
 * 64-bit data and footer rule), with `name` only a label. Zones with leap-second records
 * ("right/...") are refused: their clocks are not Unix time. */
struct sched_tz *sched_tz_load_mem(const char *name, const void *data, size_t len, char *err,
                                   size_t errlen);
void sched_tz_destroy(struct sched_tz *tz); /* accepts NULL */
const char *sched_tz_name(const struct sched_tz *tz);

/* Seconds east of UTC in effect at instant t (Unix seconds): local time = t + offset. */
int32_t sched_tz_offset(const struct sched_tz *tz, int64_t t);

/* The first instant > t at which the offset changes, or INT64_MAX when it never does again.
 * Lets callers find DST gaps and overlaps without scanning. */
int64_t sched_tz_next_change(const struct sched_tz *tz, int64_t t);

#endif
