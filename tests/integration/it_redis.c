/* it_redis.c - "set if absent" and delete against a real Redis (SY_REDIS_URL): a key is set
 * once, its lifetime is honoured, delete is idempotent, a lost connection is invisible to the
 * caller, and arguments outside the limits are refused before anything is sent. */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "harness.h"
#include "redis_int.h"
#include "sy/err.h"
#include "sy/redis.h"

static char run[17];

static void key_name(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "it_redis:%s:%s", run, what);
}

static long long raw_int(redisContext *c, const char *cmd, const char *key)
{
    redisReply *rep = redisCommand(c, "%s %s", cmd, key);
    long long v = LLONG_MIN;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static void raw_get(redisContext *c, const char *key, char *buf, size_t len)
{
    redisReply *rep = redisCommand(c, "GET %s", key);
    buf[0] = '\0';
    if (rep && rep->type == REDIS_REPLY_STRING)
        snprintf(buf, len, "%s", rep->str);
    freeReplyObject(rep);
}

static void set_nx_sets_once_then_reports_the_key_existed(void **state)
{
    char key[128], got[64];
    key_name(key, sizeof key, "once");
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();

    assert_int_equal(sy_redis_set_nx(r, key, "first", 60000), 1);
    assert_int_equal(sy_redis_set_nx(r, key, "second", 60000), 0);
    raw_get(raw, key, got, sizeof got);
    assert_string_equal(got, "first");
    /* The lifetime was set with the value, and a refused call did not reset it. */
    long long pttl = raw_int(raw, "PTTL", key);
    assert_true(pttl > 0 && pttl <= 60000);
    /* The value the key already holds counts as set (a resend after a lost answer). */
    assert_int_equal(sy_redis_set_nx(r, key, "first", 60000), 1);
    raw_get(raw, key, got, sizeof got);
    assert_string_equal(got, "first");

    assert_int_equal(sy_redis_del(r, key), 0);
    redisFree(raw);
    sy_redis_destroy(r);
}

static void set_nx_key_is_gone_after_its_lifetime(void **state)
{
    char key[128];
    key_name(key, sizeof key, "ttl");
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();

    assert_int_equal(sy_redis_set_nx(r, key, "a", 300), 1);
    assert_int_equal(sy_redis_set_nx(r, key, "b", 300), 0);
    assert_int_equal(raw_int(raw, "EXISTS", key), 1);
    th_sleep_ms(500);
    assert_int_equal(raw_int(raw, "EXISTS", key), 0);
    assert_int_equal(sy_redis_set_nx(r, key, "b", 300), 1);

    assert_int_equal(sy_redis_del(r, key), 0);
    redisFree(raw);
    sy_redis_destroy(r);
}

static void del_removes_the_key_and_ignores_a_missing_one(void **state)
{
    char key[128];
    key_name(key, sizeof key, "del");
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();

    assert_int_equal(sy_redis_set_nx(r, key, "x", 60000), 1);
    assert_int_equal(sy_redis_del(r, key), 0);
    assert_int_equal(raw_int(raw, "EXISTS", key), 0);
    assert_int_equal(sy_redis_del(r, key), 0);
    /* Deleted means absent: the next set_nx wins, whatever its value. */
    assert_int_equal(sy_redis_set_nx(r, key, "y", 60000), 1);
    assert_int_equal(sy_redis_del(r, key), 0);

    redisFree(raw);
    sy_redis_destroy(r);
}

static void lost_connection_is_reconnected_for_set_nx(void **state)
{
    char key[128];
    key_name(key, sizeof key, "reconnect");
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();

    /* The server drops our connection; the caller only sees the answer. */
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(sy_redis_fd(r), (struct sockaddr *)&sa, &len), 0);
    char addr[64], ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    snprintf(addr, sizeof addr, "%s:%d", ip, ntohs(sa.sin_port));
    redisReply *rep = redisCommand(raw, "CLIENT KILL ADDR %s SKIPME yes", addr);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);

    assert_int_equal(sy_redis_set_nx(r, key, "v", 60000), 1);
    assert_int_equal(sy_redis_set_nx(r, key, "w", 60000), 0);
    assert_int_equal(sy_redis_del(r, key), 0);
    redisFree(raw);
    sy_redis_destroy(r);
}

static void arguments_outside_the_limits_are_refused(void **state)
{
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();
    char key[128];
    key_name(key, sizeof key, "limits");

    /* Keys: 1 to 1000 bytes. */
    char *long_key = malloc(1002);
    assert_non_null(long_key);
    int n = snprintf(long_key, 1002, "%s:", key);
    memset(long_key + n, 'k', (size_t)(1001 - n));
    long_key[1001] = '\0';
    assert_int_equal(sy_redis_set_nx(r, long_key, "v", 1000), -SY_EINVAL);
    assert_int_equal(sy_redis_del(r, long_key), -SY_EINVAL);
    assert_int_equal(raw_int(raw, "EXISTS", long_key), 0);
    long_key[1000] = '\0';
    assert_int_equal(sy_redis_set_nx(r, long_key, "v", 60000), 1);
    assert_int_equal(sy_redis_del(r, long_key), 0);
    free(long_key);

    assert_int_equal(sy_redis_set_nx(NULL, key, "v", 1000), -SY_EINVAL);
    assert_int_equal(sy_redis_set_nx(r, NULL, "v", 1000), -SY_EINVAL);
    assert_int_equal(sy_redis_set_nx(r, "", "v", 1000), -SY_EINVAL);
    assert_int_equal(sy_redis_set_nx(r, key, NULL, 1000), -SY_EINVAL);
    assert_int_equal(sy_redis_set_nx(r, key, "v", 0), -SY_EINVAL);
    assert_int_equal(sy_redis_set_nx(r, key, "v", -5), -SY_EINVAL);
    assert_int_equal(sy_redis_del(NULL, key), -SY_EINVAL);
    assert_int_equal(sy_redis_del(r, NULL), -SY_EINVAL);
    assert_int_equal(sy_redis_del(r, ""), -SY_EINVAL);

    /* Values: at most 64 KiB. */
    size_t max = 64 * 1024;
    char *value = malloc(max + 2);
    assert_non_null(value);
    memset(value, 'v', max + 1);
    value[max + 1] = '\0';
    assert_int_equal(sy_redis_set_nx(r, key, value, 60000), -SY_EINVAL);
    assert_int_equal(raw_int(raw, "EXISTS", key), 0);
    value[max] = '\0';
    assert_int_equal(sy_redis_set_nx(r, key, value, 60000), 1);
    assert_int_equal(raw_int(raw, "STRLEN", key), (long long)max);
    assert_int_equal(sy_redis_del(r, key), 0);
    free(value);

    redisFree(raw);
    sy_redis_destroy(r);
}

int main(void)
{
    th_need_env("SY_REDIS_URL");
    /* hiredis writes with write(2): a socket the server closed must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    th_run_id(run);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_nx_sets_once_then_reports_the_key_existed),
        cmocka_unit_test(set_nx_key_is_gone_after_its_lifetime),
        cmocka_unit_test(del_removes_the_key_and_ignores_a_missing_one),
        cmocka_unit_test(lost_connection_is_reconnected_for_set_nx),
        cmocka_unit_test(arguments_outside_the_limits_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
