/* redis_int.h - the Redis connection's command path, shared by redis.c and lock.c (and tests). */
#ifndef SY_REDIS_INT_H
#define SY_REDIS_INT_H

#include "sy/redis.h"

struct redisReply;

/* Runs one command (hiredis redisCommand format: %s and %b arguments only), reconnecting once
 * when the connection was lost before or during the call. On 0, *reply is the server's answer
 * (never an error reply) and the caller frees it with freeReplyObject. Errors: -SY_ECONN
 * (connection lost, refused, or the server cannot serve now: LOADING, READONLY, ...),
 * -SY_ETIMEOUT, -SY_ENOMEM, -SY_EPROTO (an error reply; its text is logged). */
int sy_redis_cmd(struct sy_redis *r, struct redisReply **reply, const char *fmt, ...);

/* The socket of the current connection, or -1. For tests that simulate a lost connection. */
int sy_redis_fd(const struct sy_redis *r);

#endif
