/* fuzz_tzif.c - libFuzzer target: untrusted bytes through the TZif reader and its POSIX TZ
 * footer parser, and every zone it accepts through offset and change queries and the cron
 * search, checking the promises tz.h makes (bounded offsets, changes that are changes). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "scheduler/cron.h"
#include "scheduler/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_offset(const struct sched_tz *tz, int64_t t)
{
    int32_t off = sched_tz_offset(tz, t);

    if (off <= -SCHED_TZ_OFFSET_LIMIT || off >= SCHED_TZ_OFFSET_LIMIT)
        abort();
}

/* Walks a few changes from t: each is later, and the offset really differs across it. */
static void walk(const struct sched_tz *tz, int64_t t)
{
    for (int i = 0; i < 8; i++) {
        int64_t n = sched_tz_next_change(tz, t);

        check_offset(tz, t);
        if (n <= t)
            abort();
        if (n == INT64_MAX)
            return;
        if (sched_tz_offset(tz, n) == sched_tz_offset(tz, n - 1) ||
            sched_tz_offset(tz, n - 1) != sched_tz_offset(tz, t))
            abort();
        t = n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t instants[] = {INT64_MIN,  -4260211200, -1,         0,
                                       1711846800, 2147483647,  4102444800, INT64_MAX - 1};
    static const char *const exprs[] = {"30 2 * * *", "*/7 * * * *", "0 0 29 2 *"};
    struct sched_tz *tz;
    char err[256];

    tz = sched_tz_load_mem("Fuzz/Zone", data, size, err, sizeof(err));
    if (!tz)
        return 0;
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++)
        walk(tz, instants[i]);
    for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        struct sched_cron c;

        if (sched_cron_parse(exprs[i], &c, err, sizeof(err)) != 0)
            abort();
        for (size_t k = 2; k < 7; k++) {
            int64_t after = instants[k], t = sched_cron_next(&c, tz, after);

            if (t != -1 && (t <= after || t - after > (int64_t)1827 * 86400))
                abort();
        }
    }
    sched_tz_destroy(tz);
    return 0;
}
