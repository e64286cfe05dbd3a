/* lock.c - Redis mutexes that hand out fencing tokens, and the fenced write for Redis data.
 *
 * Keys: sy:lock:<resource> holds the holder's token with a TTL; sy:fence:<resource> is a
 * counter that never expires, so every grant gets a larger number than all grants before it.
 * Each operation is one Lua script, so check and change happen atomically on the server. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_int.h"
#include "sy/clock.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/log.h"

#define LOCK_PREFIX       "sy:lock:"
#define FENCE_PREFIX      "sy:fence:"
#define LOCK_RESOURCE_MAX 200
#define FENCED_KEY_MAX    1000
#define LOCK_TOKEN_BYTES  20
#define LOCK_TTL_MAX_MS   (24 * 3600 * 1000)
#define LOCK_WAIT_MIN_MS  10
#define LOCK_WAIT_SPAN_MS 41 /* sleeps of 10..50 ms */

/* KEYS: lock, fence. ARGV: token, ttl ms. Returns the new fence, or nil when held by someone
 * else. When the lock already carries our own token, the first run of this very call went
 * through but its reply was lost with the connection: hand back the fence it drew instead of
 * reporting "busy" for a lock we hold. */
static const char acquire_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return redis.call('INCR', KEYS[2])\n"
    "end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return tonumber(redis.call('GET', KEYS[2]))\n"
    "end\n"
    "return false\n";

/* KEYS: lock. ARGV: token. 1 when deleted, 0 when the lock is no longer ours. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "return 0\n";

/* KEYS: lock. ARGV: token, ttl ms. 1 when extended, 0 when the lock is no longer ours. */
static const char extend_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                 "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                 "end\n"
                                 "return 0\n";

/* KEYS: key, key..":fence". ARGV: value, fence. 0 when a newer fence already wrote key. */
static const char fenced_set_lua[] = "local cur = tonumber(redis.call('GET', KEYS[2]))\n"
                                     "if cur and cur > tonumber(ARGV[2]) then\n"
                                     "  return 0\n"
                                     "end\n"
                                     "redis.call('SET', KEYS[1], ARGV[1])\n"
                                     "redis.call('SET', KEYS[2], ARGV[2])\n"
                                     "return 1\n";

/* KEYS: fence. ARGV: floor. Raises the counter to floor, never lowers it; returns 1. */
static const char floor_lua[] = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                                "if cur < tonumber(ARGV[1]) then\n"
                                "  redis.call('SET', KEYS[1], ARGV[1])\n"
                                "end\n"
                                "return 1\n";

struct sy_lock {
    uint64_t fence;
    char token[2 * LOCK_TOKEN_BYTES + 1];
    char lock_key[sizeof LOCK_PREFIX + LOCK_RESOURCE_MAX];
    char resource[LOCK_RESOURCE_MAX + 1];
};

static int make_token(char out[2 * LOCK_TOKEN_BYTES + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[LOCK_TOKEN_BYTES];
    int rc = sy_random_bytes(raw, sizeof raw);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0xf];
    }
    out[2 * LOCK_TOKEN_BYTES] = '\0';
    return 0;
}

static bool valid_resource(const char *resource)
{
    return resource && resource[0] && strlen(resource) <= LOCK_RESOURCE_MAX;
}

/* An integer reply, or -SY_EPROTO for anything else. */
static int reply_int(const redisReply *reply, long long *out)
{
    if (reply->type != REDIS_REPLY_INTEGER)
        return -SY_EPROTO;
    *out = reply->integer;
    return 0;
}

int sy_lock_try(struct sy_redis *r, const char *resource, int ttl_ms, struct sy_lock **out)
{
    if (!r || !out || !valid_resource(resource) || ttl_ms <= 0 || ttl_ms > LOCK_TTL_MAX_MS)
        return -SY_EINVAL;
    *out = NULL;

    struct sy_lock *l = calloc(1, sizeof *l);
    if (!l)
        return -SY_ENOMEM;
    redisReply *reply = NULL;
    char fence_key[sizeof FENCE_PREFIX + LOCK_RESOURCE_MAX];
    char ttl[16];
    snprintf(l->resource, sizeof l->resource, "%s", resource);
    snprintf(l->lock_key, sizeof l->lock_key, LOCK_PREFIX "%s", resource);
    snprintf(fence_key, sizeof fence_key, FENCE_PREFIX "%s", resource);
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    int rc = make_token(l->token);
    if (rc)
        goto out;

    rc = sy_redis_cmd(r, &reply, "EVAL %s 2 %s %s %s %s", acquire_lua, l->lock_key, fence_key,
                      l->token, ttl);
    if (rc)
        goto out;
    if (reply->type == REDIS_REPLY_NIL) {
        rc = -SY_EBUSY;
        goto out;
    }
    long long fence;
    rc = reply_int(reply, &fence);
    if (rc == 0 && fence <= 0)
        rc = -SY_EPROTO;
    if (rc)
        goto out;
    l->fence = (uint64_t)fence;
    *out = l;
    l = NULL;
out:
    if (reply)
        freeReplyObject(reply);
    free(l);
    return rc;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int sy_lock_acquire(struct sy_redis *r, const char *resource, int ttl_ms, int wait_ms,
                    struct sy_lock **out)
{
    if (wait_ms < 0)
        return -SY_EINVAL;
    int64_t start = sy_mono_ms();
    int rc;
    for (;;) {
        rc = sy_lock_try(r, resource, ttl_ms, out);
        if (rc != -SY_EBUSY)
            return rc;
        int64_t left = start + wait_ms - sy_mono_ms();
        if (left <= 0)
            return -SY_EBUSY;
        /* Random sleeps keep competing waiters from retrying in lockstep. */
        uint32_t u = 0;
        rc = sy_random_bytes(&u, sizeof u);
        if (rc)
            return rc;
        int64_t pause = LOCK_WAIT_MIN_MS + (int64_t)(u % LOCK_WAIT_SPAN_MS);
        sleep_ms(pause < left ? pause : left);
    }
}

/* The reply of a script that answers 1 when the caller's token or fence still holds: 0, or
 * -SY_ESTALE. Frees the reply. */
static int ours_or_stale(redisReply *reply)
{
    long long v;
    int rc = reply_int(reply, &v);
    freeReplyObject(reply);
    if (rc)
        return rc;
    return v == 1 ? 0 : -SY_ESTALE;
}

static int lock_script(struct sy_redis *r, const struct sy_lock *l, const char *lua,
                       const char *ttl)
{
    redisReply *reply = NULL;
    int rc = ttl ? sy_redis_cmd(r, &reply, "EVAL %s 1 %s %s %s", lua, l->lock_key, l->token, ttl)
                 : sy_redis_cmd(r, &reply, "EVAL %s 1 %s %s", lua, l->lock_key, l->token);
    return rc ? rc : ours_or_stale(reply);
}

int sy_lock_extend(struct sy_redis *r, struct sy_lock *l, int ttl_ms)
{
    if (!r || !l || ttl_ms <= 0 || ttl_ms > LOCK_TTL_MAX_MS)
        return -SY_EINVAL;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    return lock_script(r, l, extend_lua, ttl);
}

int sy_lock_release(struct sy_redis *r, struct sy_lock *l)
{
    if (!l)
        return 0;
    int rc = r ? lock_script(r, l, release_lua, NULL) : -SY_EINVAL;
    if (rc == -SY_ESTALE)
        sy_log_warn("lock.lost", "lock on '%s' (fence %llu) had expired before its release",
                    l->resource, (unsigned long long)l->fence);
    free(l);
    return rc;
}

int sy_lock_fence_floor(struct sy_redis *r, const char *resource, uint64_t floor)
{
    if (!r || !valid_resource(resource) || floor > (UINT64_C(1) << 53))
        return -SY_EINVAL;
    char fence_key[sizeof FENCE_PREFIX + LOCK_RESOURCE_MAX];
    char floor_txt[24];
    snprintf(fence_key, sizeof fence_key, FENCE_PREFIX "%s", resource);
    snprintf(floor_txt, sizeof floor_txt, "%llu", (unsigned long long)floor);
    redisReply *reply = NULL;
    int rc = sy_redis_cmd(r, &reply, "EVAL %s 1 %s %s", floor_lua, fence_key, floor_txt);
    return rc ? rc : ours_or_stale(reply);
}

uint64_t sy_lock_fence(const struct sy_lock *l)
{
    return l ? l->fence : 0;
}

const char *sy_lock_resource(const struct sy_lock *l)
{
    return l ? l->resource : NULL;
}

int sy_redis_fenced_set(struct sy_redis *r, const char *key, const char *value, uint64_t fence)
{
    if (!r || !key || !key[0] || !value || strlen(key) > FENCED_KEY_MAX)
        return -SY_EINVAL;
    /* Lua numbers are doubles: fences beyond 2^53 would compare inexactly. */
    if (fence == 0 || fence > (UINT64_C(1) << 53))
        return -SY_EINVAL;
    char fence_key[FENCED_KEY_MAX + sizeof ":fence"];
    char fence_txt[24];
    snprintf(fence_key, sizeof fence_key, "%s:fence", key);
    snprintf(fence_txt, sizeof fence_txt, "%llu", (unsigned long long)fence);
    redisReply *reply = NULL;
    int rc = sy_redis_cmd(r, &reply, "EVAL %s 2 %s %s %s %s", fenced_set_lua, key, fence_key, value,
                          fence_txt);
    return rc ? rc : ours_or_stale(reply);
}
