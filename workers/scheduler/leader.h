/* leader.h - the scheduler's leader lease: a Redis lock with a fencing token, renewed while it
 * is held. This process judges the lease by its own monotonic clock, from the moment before
 * each grant or renewal was asked for, minus a margin for clock rate: a leader that paused
 * past its lease stops publishing before any other replica can have been granted the lock. */
#ifndef SCHED_LEADER_H
#define SCHED_LEADER_H

#include <stdbool.h>
#include <stdint.h>

struct sy_redis;
struct sched_leader;

/* resource: the lock's name ("scheduler:<group>"); ttl_ms: the lease. NULL on ENOMEM. */
struct sched_leader *sched_leader_new(const char *resource, int ttl_ms);
/* Releases the lease when held (r may be NULL when Redis is gone), frees. Accepts NULL. */
void sched_leader_destroy(struct sched_leader *l, struct sy_redis *r);

/* One step at monotonic time now_ms: a holder renews once a third of the lease passed, anyone
 * else tries to take it. 1 when this process holds a valid lease afterwards, 0 when it does
 * not, -SY_ECONN when Redis could not be asked (a held lease stays valid until it runs out).
 * *gained is set when this step took the lease (a new fence). */
int sched_leader_step(struct sched_leader *l, struct sy_redis *r, int64_t now_ms, bool *gained);
/* True while the lease is held and its safe part has not run out at now_ms. */
bool sched_leader_valid(const struct sched_leader *l, int64_t now_ms);
/* The fencing token of the lease held (0 when none). */
uint64_t sched_leader_fence(const struct sched_leader *l);
/* When sched_leader_step should run next (monotonic ms). */
int64_t sched_leader_due(const struct sched_leader *l);
/* Gives the lease up (release if still ours); the next step may take it again. */
void sched_leader_drop(struct sched_leader *l, struct sy_redis *r);
/* The durable store refused our fence as older than `recorded` (Redis lost its counter):
 * raise the counter past it and give the lease up, so the next grant carries a fence the
 * store accepts. 0 or -SY_ECONN. */
int sched_leader_refence(struct sched_leader *l, struct sy_redis *r, uint64_t recorded);

#endif
