/* sched_test.h - helpers the scheduler's unit tests share: UTC instants from calendar fields,
 * zones from the system's zoneinfo (TZDIR honoured), and a seeded pseudo-random sequence.
 * Include after <cmocka.h>. */
#ifndef SCHED_TEST_H
#define SCHED_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/tz.h"

#define ZONEINFO_DEFAULT "/usr/share/zoneinfo"

static inline int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};

    return (int64_t)timegm(&tm);
}

/* xorshift64: the same sequence for the same seed on every run. */
static inline uint64_t xorshift64(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static inline const char *zoneinfo_dir(void)
{
    const char *dir = getenv("TZDIR");

    return dir && *dir ? dir : ZONEINFO_DEFAULT;
}

static inline bool have_zone(const char *name)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), name);
    return access(path, R_OK) == 0;
}

/* The zone, or the test fails with the loader's reason. */
static inline struct sched_tz *load_zone(const char *name)
{
    char err[256] = "";
    struct sched_tz *tz = sched_tz_load(name, err, sizeof(err));

    if (!tz)
        fail_msg("%s: %s", name, err);
    return tz;
}

#endif
