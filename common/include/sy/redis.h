/* redis.h - a Redis connection, "set if absent" and delete, and mutexes with fencing tokens on
 * top of it. */
#ifndef SY_REDIS_H
#define SY_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct sy_redis; /* one connection; use from one thread at a time */

/* redis://[:password@]host[:port][/db]; timeout applies to connect and each command. */
struct sy_redis *sy_redis_connect(const char *url, int timeout_ms, char *err, size_t errlen);
void sy_redis_destroy(struct sy_redis *r);
/* PING: 0 or -SY_ECONN. Reconnects once when the connection was lost. */
int sy_redis_ping(struct sy_redis *r);

/* n commands sent in one write and their n answers read after: command i is argc[i] arguments,
 * taken in turn from the flat argv/argvlen. 0 when every answer came and none was an error;
 * -SY_EPROTO when some were (all answers are read; *errors, when not NULL, counts them and the
 * first is logged); -SY_ECONN / -SY_ETIMEOUT when the connection failed, after which nothing is
 * known of which commands ran: send only commands that may run twice. At most 100000 commands. */
int sy_redis_pipeline(struct sy_redis *r, size_t n, const int *argc, const char *const *argv,
                      const size_t *argvlen, size_t *errors);

/* SCRIPT LOAD: the script's SHA-1 (40 hex digits and a NUL) for EVALSHA. 0, or the errors of
 * the connection; -SY_EPROTO when Redis refused the script. */
int sy_redis_script_load(struct sy_redis *r, const char *script, char sha[41]);

/* Keys of the two calls below: 1 to 1000 bytes; values: at most 64 KiB, no NUL. Errors:
 * -SY_EINVAL for arguments outside those limits, else those of the connection (-SY_ECONN,
 * -SY_ETIMEOUT, -SY_EPROTO, -SY_ENOMEM). */
/* SET key value NX with a lifetime of ttl_ms (1 ms and up): 1 when this call set it, 0 when
 * the key already held another value. A command whose answer was lost with the connection is
 * sent again; so that its own first run is not reported as "existed", a key already holding
 * exactly `value` also answers 1. When it matters who set it (a dedup claim), give each caller
 * a value of its own, such as a random token. */
int sy_redis_set_nx(struct sy_redis *r, const char *key, const char *value, int ttl_ms);
/* DEL key: 0 whether or not it existed. */
int sy_redis_del(struct sy_redis *r, const char *key);

/* A held mutex. Acquire: SET key token NX PX ttl and INCR of the resource's fence counter in
 * one script, so a fencing token is handed out only with the lock. Tokens are 20 random bytes
 * from the kernel, hex-encoded. */
struct sy_lock;

/* Tries once. 0 and *out on success, -SY_EBUSY when held by someone else, -SY_ECONN. */
int sy_lock_try(struct sy_redis *r, const char *resource, int ttl_ms, struct sy_lock **out);
/* Retries with jittered sleeps until wait_ms passed; -SY_EBUSY then. */
int sy_lock_acquire(struct sy_redis *r, const char *resource, int ttl_ms, int wait_ms,
                    struct sy_lock **out);
/* Extends the lease to ttl_ms from now, only if still ours: 0 or -SY_ESTALE (lost). */
int sy_lock_extend(struct sy_redis *r, struct sy_lock *l, int ttl_ms);
/* Releases (compare-and-delete) and frees l. 0, or -SY_ESTALE if it was no longer ours (it is
 * freed either way). Accepts NULL. */
int sy_lock_release(struct sy_redis *r, struct sy_lock *l);
/* The fencing token: strictly increasing per resource across all holders. Code that writes
 * under the lock passes it on so the store can refuse writes from an older holder. */
uint64_t sy_lock_fence(const struct sy_lock *l);
const char *sy_lock_resource(const struct sy_lock *l);
/* Raises the resource's fence counter to at least `floor` (never lowers it). Redis keeps the
 * counter only as long as its data survives: a holder whose fence a durable store refused as
 * older than one it recorded (sy_pg_fence) raises the counter past that record, releases and
 * acquires again, and so gets a fence the store accepts. 0, -SY_EINVAL, -SY_ECONN. */
int sy_lock_fence_floor(struct sy_redis *r, const char *resource, uint64_t floor);

/* Redis-side guarded write for data kept in Redis: SET key value only if `fence` is not older
 * than the newest fence that wrote key before (kept in key's companion "<key>:fence").
 * 0 or -SY_ESTALE. */
int sy_redis_fenced_set(struct sy_redis *r, const char *key, const char *value, uint64_t fence);

#endif
