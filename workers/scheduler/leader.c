/* leader.c - the leader lease on top of the runtime's fenced Redis locks. */
#include "leader.h"

#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/log.h"
#include "sy/redis.h"

#define RESOURCE_MAX 200
#define RETRY_MIN_MS 250  /* followers ask at most this often ... */
#define RETRY_MAX_MS 1000 /* ... and at least this often */

struct sched_leader {
    char resource[RESOURCE_MAX + 1];
    int ttl_ms;
    struct sy_lock *lock;
    int64_t valid_until; /* monotonic ms; meaningful while lock != NULL */
    int64_t due;         /* next step */
    uint64_t rng;
};

static int64_t margin_ms(int ttl_ms)
{
    /* Redis expires keys by its own clock; allow for the two clocks running at different
     * rates and for the request's own time on the wire (measured from before it was sent). */
    int64_t m = ttl_ms / 10;
    return m < 100 ? 100 : m;
}

static int64_t follower_wait(struct sched_leader *l)
{
    int64_t span = l->ttl_ms / 4 < RETRY_MAX_MS ? l->ttl_ms / 4 : RETRY_MAX_MS;

    if (span < RETRY_MIN_MS)
        span = RETRY_MIN_MS;
    /* xorshift: followers spread their attempts instead of asking in step. */
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return span / 2 + (int64_t)(l->rng % (uint64_t)(span / 2 + 1));
}

struct sched_leader *sched_leader_new(const char *resource, int ttl_ms)
{
    struct sched_leader *l;

    if (!resource || strlen(resource) > RESOURCE_MAX || ttl_ms < 1000)
        return NULL;
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    strcpy(l->resource, resource);
    l->ttl_ms = ttl_ms;
    l->rng = (uint64_t)(uintptr_t)l ^ 0x9E3779B97F4A7C15ULL;
    return l;
}

void sched_leader_drop(struct sched_leader *l, struct sy_redis *r)
{
    if (!l || !l->lock)
        return;
    if (r)
        sy_lock_release(r, l->lock);
    else
        free(l->lock); /* expires on its own */
    l->lock = NULL;
    l->due = 0;
}

void sched_leader_destroy(struct sched_leader *l, struct sy_redis *r)
{
    if (!l)
        return;
    sched_leader_drop(l, r);
    free(l);
}

bool sched_leader_valid(const struct sched_leader *l, int64_t now_ms)
{
    return l && l->lock && now_ms < l->valid_until;
}

uint64_t sched_leader_fence(const struct sched_leader *l)
{
    return l && l->lock ? sy_lock_fence(l->lock) : 0;
}

int64_t sched_leader_due(const struct sched_leader *l)
{
    return l ? l->due : 0;
}

int sched_leader_step(struct sched_leader *l, struct sy_redis *r, int64_t now_ms, bool *gained)
{
    int rc;

    *gained = false;
    if (l->lock) {
        if (now_ms >= l->valid_until) {
            /* Too late to renew safely: someone else may hold it by now. */
            sy_log_warn("scheduler.lease", "lease (fence %llu) ran out before it was renewed",
                        (unsigned long long)sy_lock_fence(l->lock));
            sched_leader_drop(l, r);
        } else if (now_ms < l->due) {
            return 1;
        } else {
            rc = sy_lock_extend(r, l->lock, l->ttl_ms);
            if (rc == 0) {
                l->valid_until = now_ms + l->ttl_ms - margin_ms(l->ttl_ms);
                l->due = now_ms + l->ttl_ms / 3;
                return 1;
            }
            if (rc != -SY_ESTALE) {
                /* Redis did not answer: keep the lease while it lasts, ask again soon. */
                l->due = now_ms + RETRY_MIN_MS;
                return -SY_ECONN;
            }
            sy_log_warn("scheduler.lease", "lease (fence %llu) was lost to another replica",
                        (unsigned long long)sy_lock_fence(l->lock));
            free(l->lock); /* not ours any more: nothing to release */
            l->lock = NULL;
        }
    }
    if (now_ms < l->due)
        return 0;
    rc = sy_lock_try(r, l->resource, l->ttl_ms, &l->lock);
    if (rc == 0) {
        l->valid_until = now_ms + l->ttl_ms - margin_ms(l->ttl_ms);
        l->due = now_ms + l->ttl_ms / 3;
        *gained = true;
        return 1;
    }
    l->lock = NULL;
    l->due = now_ms + follower_wait(l);
    return rc == -SY_EBUSY ? 0 : -SY_ECONN;
}

int sched_leader_refence(struct sched_leader *l, struct sy_redis *r, uint64_t recorded)
{
    int rc = sy_lock_fence_floor(r, l->resource, recorded);

    sched_leader_drop(l, r);
    return rc == 0 ? 0 : -SY_ECONN;
}
