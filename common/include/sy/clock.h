/* clock.h - the process's two clocks in milliseconds (wall time in microseconds too): monotonic for
 * timeouts, leases and backoff (never jumps), wall for times that leave the process (ticks,
 * timestamps). Condition variables wait on the monotonic clock too: made by sy_cond_init, given
 * deadlines by sy_cond_at. */
#ifndef SY_CLOCK_H
#define SY_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline int64_t sy_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic microseconds, for durations mostly under a millisecond (request and handler times). */
static inline int64_t sy_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Monotonic seconds, for histograms and deadlines kept as fractions of a second. */
static inline double sy_mono_s(void)
{
    return (double)sy_mono_us() / 1e6;
}

static inline int64_t sy_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall time in microseconds, for records that keep sub-millisecond times (sensor readings). */
static inline int64_t sy_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A condition variable whose timed waits run on the monotonic clock, so a wall clock set back
 * does not stretch them. 0 or an errno. */
static inline int sy_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);

    if (rc != 0)
        return rc;
    if ((rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

/* The deadline for pthread_cond_timedwait on a sy_cond_init condition: the monotonic time
 * mono_ms (as from sy_mono_ms() + a wait). */
static inline struct timespec sy_cond_at(int64_t mono_ms)
{
    return (struct timespec){.tv_sec = (time_t)(mono_ms / 1000),
                             .tv_nsec = (long)(mono_ms % 1000) * 1000000L};
}

#endif
