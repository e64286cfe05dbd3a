/* it_lock.c - Redis mutexes with fencing tokens against a real Redis (SY_REDIS_URL), and the
 * PostgreSQL side of fencing (SY_PG_URL): one holder at a time, and a holder whose lease ran
 * out is refused everywhere it tries to write. */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "redis_int.h"
#include "sy/err.h"
#include "sy/pg.h"
#include "sy/redis.h"

static char run[17];

static void resource_name(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "it_lock:%s:%s", run, what);
}

static long long raw_int(redisContext *c, const char *fmt, const char *arg)
{
    redisReply *rep = redisCommand(c, fmt, arg);
    long long v = LLONG_MIN;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* GET key into buf ("" when absent). */
static void raw_get(redisContext *c, const char *key, char *buf, size_t len)
{
    redisReply *rep = redisCommand(c, "GET %s", key);
    buf[0] = '\0';
    if (rep && rep->type == REDIS_REPLY_STRING)
        snprintf(buf, len, "%s", rep->str);
    freeReplyObject(rep);
}

static void try_busy_release_and_token(void **state)
{
    char res[128], key[160], token[128];
    resource_name(res, sizeof res, "basic");
    snprintf(key, sizeof key, "sy:lock:%s", res);
    struct sy_redis *a = th_sy_redis(2000), *b = th_sy_redis(2000);
    redisContext *raw = th_redis();

    struct sy_lock *la = NULL, *lb = NULL;
    assert_int_equal(sy_lock_try(a, res, 5000, &la), 0);
    assert_non_null(la);
    assert_string_equal(sy_lock_resource(la), res);
    assert_int_equal(sy_lock_fence(la), 1); /* a fresh resource starts its fences at 1 */

    /* The stored value is the token: 20 random bytes as 40 hex digits, with the TTL set. */
    raw_get(raw, key, token, sizeof token);
    assert_int_equal(strlen(token), 40);
    assert_int_equal(strspn(token, "0123456789abcdef"), 40);
    long long pttl = raw_int(raw, "PTTL %s", key);
    assert_true(pttl > 0 && pttl <= 5000);

    assert_int_equal(sy_lock_try(b, res, 5000, &lb), -SY_EBUSY);
    assert_null(lb);
    assert_int_equal(sy_lock_release(a, la), 0);
    assert_int_equal(raw_int(raw, "EXISTS %s", key), 0);

    assert_int_equal(sy_lock_try(b, res, 5000, &lb), 0);
    assert_int_equal(sy_lock_fence(lb), 2);
    /* A second token for the same resource differs from the first. */
    char token2[128];
    raw_get(raw, key, token2, sizeof token2);
    assert_string_not_equal(token, token2);
    assert_int_equal(sy_lock_release(b, lb), 0);
    assert_int_equal(sy_lock_release(b, NULL), 0);

    assert_int_equal(sy_lock_try(a, "", 1000, &la), -SY_EINVAL);
    assert_int_equal(sy_lock_try(a, res, 0, &la), -SY_EINVAL);
    redisFree(raw);
    sy_redis_destroy(a);
    sy_redis_destroy(b);
}

static void acquire_waits_at_most_wait_ms_and_takes_an_expired_lock(void **state)
{
    char res[128];
    resource_name(res, sizeof res, "wait");
    struct sy_redis *a = th_sy_redis(2000), *b = th_sy_redis(2000);
    struct sy_lock *la = NULL, *lb = NULL;

    assert_int_equal(sy_lock_try(a, res, 10000, &la), 0);
    int64_t t0 = th_now_ms();
    assert_int_equal(sy_lock_acquire(b, res, 1000, 300, &lb), -SY_EBUSY);
    int64_t waited = th_now_ms() - t0;
    assert_true(waited >= 300 && waited < 1500);
    assert_int_equal(sy_lock_release(a, la), 0);

    /* A holder that never releases: its lease runs out and the waiter gets the lock. */
    assert_int_equal(sy_lock_try(a, res, 200, &la), 0);
    t0 = th_now_ms();
    assert_int_equal(sy_lock_acquire(b, res, 1000, 3000, &lb), 0);
    waited = th_now_ms() - t0;
    assert_true(waited >= 150 && waited < 1500);
    assert_true(sy_lock_fence(lb) > sy_lock_fence(la));
    assert_int_equal(sy_lock_release(b, lb), 0);
    assert_int_equal(sy_lock_release(a, la), -SY_ESTALE);
    sy_redis_destroy(a);
    sy_redis_destroy(b);
}

/* --- One holder at a time -------------------------------------------------------------- */

#define HOLDERS 8
#define ROUNDS  200

struct contention {
    const char *resource;
    char occupancy_key[160];
    atomic_uint_fast64_t last_fence;
    atomic_int overlaps;     /* INCR of the occupancy key inside the section was not 1 */
    atomic_int out_of_order; /* a fence not larger than the one granted before it */
    atomic_int errors;       /* acquire or release failed */
    atomic_int sections;
};

static void *holder_main(void *arg)
{
    struct contention *c = arg;
    char err[256];
    struct sy_redis *r = sy_redis_connect(getenv("SY_REDIS_URL"), 5000, err, sizeof err);
    redisContext *raw = th_redis();
    if (!r) {
        atomic_fetch_add(&c->errors, ROUNDS);
        goto out;
    }
    for (int i = 0; i < ROUNDS; i++) {
        struct sy_lock *l = NULL;
        int rc = sy_lock_acquire(r, c->resource, 2000, 60000, &l);
        if (rc) {
            fprintf(stderr, "acquire: %s\n", sy_strerror(rc));
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        if (raw_int(raw, "INCR %s", c->occupancy_key) != 1)
            atomic_fetch_add(&c->overlaps, 1);
        uint64_t prev = atomic_exchange(&c->last_fence, sy_lock_fence(l));
        if (sy_lock_fence(l) <= prev)
            atomic_fetch_add(&c->out_of_order, 1);
        atomic_fetch_add(&c->sections, 1);
        if (raw_int(raw, "DECR %s", c->occupancy_key) != 0)
            atomic_fetch_add(&c->overlaps, 1);
        if (sy_lock_release(r, l) != 0)
            atomic_fetch_add(&c->errors, 1);
        /* Step aside briefly so the lock really changes hands between threads. */
        th_sleep_ms(1);
    }
out:
    redisFree(raw);
    sy_redis_destroy(r);
    return NULL;
}

static void lock_never_has_two_holders(void **state)
{
    char res[128];
    resource_name(res, sizeof res, "contended");
    struct contention c = {.resource = res};
    snprintf(c.occupancy_key, sizeof c.occupancy_key, "%s:occupancy", res);
    pthread_t tid[HOLDERS];
    for (int i = 0; i < HOLDERS; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, holder_main, &c), 0);
    for (int i = 0; i < HOLDERS; i++)
        pthread_join(tid[i], NULL);

    assert_int_equal(atomic_load(&c.errors), 0);
    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(atomic_load(&c.out_of_order), 0);
    assert_int_equal(atomic_load(&c.sections), HOLDERS * ROUNDS);
    /* One fence per grant and no other: the counter ends at exactly the number of grants. */
    assert_int_equal(atomic_load(&c.last_fence), HOLDERS * ROUNDS);

    redisContext *raw = th_redis();
    redisReply *rep = redisCommand(raw, "DEL %s sy:fence:%s", c.occupancy_key, res);
    freeReplyObject(rep);
    redisFree(raw);
}

/* --- A holder whose lease ran out ------------------------------------------------------- */

static void stale_holder_is_refused_by_redis(void **state)
{
    char res[128], data_key[160], lock_key[160], value[64];
    resource_name(res, sizeof res, "stale");
    snprintf(data_key, sizeof data_key, "%s:data", res);
    snprintf(lock_key, sizeof lock_key, "sy:lock:%s", res);
    struct sy_redis *a = th_sy_redis(2000), *b = th_sy_redis(2000), *c = th_sy_redis(2000);
    redisContext *raw = th_redis();
    struct sy_lock *la = NULL, *lb = NULL, *lc = NULL;

    assert_int_equal(sy_lock_try(a, res, 150, &la), 0);
    th_sleep_ms(300); /* a's process "pauses" past its lease */
    assert_int_equal(sy_lock_try(b, res, 10000, &lb), 0);
    assert_true(sy_lock_fence(lb) > sy_lock_fence(la));

    assert_int_equal(sy_redis_fenced_set(b, data_key, "from-b", sy_lock_fence(lb)), 0);
    assert_int_equal(sy_redis_fenced_set(a, data_key, "from-a", sy_lock_fence(la)), -SY_ESTALE);
    raw_get(raw, data_key, value, sizeof value);
    assert_string_equal(value, "from-b");

    assert_int_equal(sy_lock_extend(a, la, 10000), -SY_ESTALE);
    assert_int_equal(sy_lock_release(a, la), -SY_ESTALE);
    /* a's release did not free b's lock. */
    assert_int_equal(raw_int(raw, "EXISTS %s", lock_key), 1);
    assert_int_equal(sy_lock_try(c, res, 1000, &lc), -SY_EBUSY);

    assert_int_equal(sy_lock_extend(b, lb, 10000), 0);
    long long pttl = raw_int(raw, "PTTL %s", lock_key);
    assert_true(pttl > 9000 && pttl <= 10000);
    assert_int_equal(sy_lock_release(b, lb), 0);
    assert_int_equal(sy_lock_try(c, res, 1000, &lc), 0);
    assert_int_equal(sy_lock_release(c, lc), 0);

    redisFree(raw);
    sy_redis_destroy(a);
    sy_redis_destroy(b);
    sy_redis_destroy(c);
}

static void fenced_set_accepts_equal_and_newer_fences_only(void **state)
{
    char key[128], value[64];
    resource_name(key, sizeof key, "fenced");
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();
    assert_int_equal(sy_redis_fenced_set(r, key, "five", 5), 0);
    assert_int_equal(sy_redis_fenced_set(r, key, "four", 4), -SY_ESTALE);
    assert_int_equal(sy_redis_fenced_set(r, key, "five again", 5), 0);
    assert_int_equal(sy_redis_fenced_set(r, key, "six", 6), 0);
    raw_get(raw, key, value, sizeof value);
    assert_string_equal(value, "six");
    char fence_key[160];
    snprintf(fence_key, sizeof fence_key, "%s:fence", key);
    raw_get(raw, fence_key, value, sizeof value);
    assert_string_equal(value, "6");
    assert_int_equal(sy_redis_fenced_set(r, key, "zero", 0), -SY_EINVAL);
    redisFree(raw);
    sy_redis_destroy(r);
}

static void stale_holder_is_refused_by_postgres(void **state)
{
    const char *pg_url = getenv("SY_PG_URL");
    const char *src = getenv("SY_SOURCE_DIR");
    if (!pg_url || !*pg_url || !src || !*src) {
        fprintf(stderr, "skipped: SY_PG_URL or SY_SOURCE_DIR is not set\n");
        skip();
    }
    char err[512] = "", dir[1024], res[128];
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", src);
    resource_name(res, sizeof res, "pgstale");
    struct sy_pg *pga = sy_pg_connect(pg_url, err, sizeof err);
    if (!pga)
        fprintf(stderr, "sy_pg_connect: %s\n", err);
    assert_non_null(pga);
    struct sy_pg *pgb = sy_pg_connect(pg_url, err, sizeof err);
    assert_non_null(pgb);
    int rc = sy_pg_migrate(pga, dir, NULL, NULL, err, sizeof err);
    if (rc)
        fprintf(stderr, "sy_pg_migrate: %s\n", err);
    assert_int_equal(rc, 0);

    struct sy_redis *a = th_sy_redis(2000), *b = th_sy_redis(2000);
    struct sy_lock *la = NULL, *lb = NULL;
    assert_int_equal(sy_lock_try(a, res, 150, &la), 0);
    th_sleep_ms(300);
    assert_int_equal(sy_lock_try(b, res, 10000, &lb), 0);

    /* b writes under its lock: fence check and (here, no) guarded write in one transaction. */
    assert_int_equal(sy_pg_begin(pgb), 0);
    assert_int_equal(sy_pg_fence(pgb, res, sy_lock_fence(lb)), 0);
    assert_int_equal(sy_pg_commit(pgb), 0);

    assert_int_equal(sy_pg_begin(pga), 0);
    assert_int_equal(sy_pg_fence(pga, res, sy_lock_fence(la)), -SY_ESTALE);
    assert_int_equal(sy_pg_rollback(pga), 0);

    /* The newer holder may write again with the same fence. */
    assert_int_equal(sy_pg_fence(pgb, res, sy_lock_fence(lb)), 0);

    struct sy_pg_res *out = NULL;
    const char *params[] = {res};
    assert_int_equal(
        sy_pg_exec(pgb, "SELECT fence FROM sy_fences WHERE resource = $1", 1, params, &out), 0);
    assert_int_equal(sy_pg_res_rows(out), 1);
    assert_int_equal(strtoull(sy_pg_res_get(out, 0, 0), NULL, 10), sy_lock_fence(lb));
    sy_pg_res_free(out);
    assert_int_equal(sy_pg_exec(pgb, "DELETE FROM sy_fences WHERE resource = $1", 1, params, NULL),
                     0);

    assert_int_equal(sy_lock_release(a, la), -SY_ESTALE);
    assert_int_equal(sy_lock_release(b, lb), 0);
    sy_redis_destroy(a);
    sy_redis_destroy(b);
    sy_pg_destroy(pga);
    sy_pg_destroy(pgb);
}

/* Redis lost its data (a restart without persistence): the fence counter starts again at 1,
 * below what PostgreSQL recorded. Raising the floor past the record restores fencing. */
static void fence_floor_recovers_a_counter_redis_lost(void **state)
{
    (void)state;
    const char *pg_url = getenv("SY_PG_URL");
    const char *src = getenv("SY_SOURCE_DIR");
    if (!pg_url || !*pg_url || !src || !*src) {
        fprintf(stderr, "skipped: SY_PG_URL or SY_SOURCE_DIR is not set\n");
        skip();
    }
    char err[512] = "", dir[1024], res[128], key[256];
    snprintf(dir, sizeof dir, "%s/schemas/sql/postgres", src);
    resource_name(res, sizeof res, "floor");
    struct sy_pg *pg = sy_pg_connect(pg_url, err, sizeof err);
    assert_non_null(pg);
    assert_int_equal(sy_pg_migrate(pg, dir, NULL, NULL, err, sizeof err), 0);
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();
    struct sy_lock *l = NULL;

    /* Fences 1..5 were handed out; the holder of 5 wrote. */
    snprintf(key, sizeof key, "sy:fence:%s", res);
    redisReply *rep = redisCommand(raw, "SET %s 4", key);
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(sy_lock_try(r, res, 10000, &l), 0);
    assert_int_equal(sy_lock_fence(l), 5);
    assert_int_equal(sy_pg_fence(pg, res, sy_lock_fence(l)), 0);
    assert_int_equal(sy_lock_release(r, l), 0);

    /* Redis forgets everything. */
    rep = redisCommand(raw, "DEL %s", key);
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(sy_lock_try(r, res, 10000, &l), 0);
    assert_int_equal(sy_lock_fence(l), 1);
    assert_int_equal(sy_pg_fence(pg, res, sy_lock_fence(l)), -SY_ESTALE);

    /* Raise the floor to the record, take the lock again: accepted. */
    assert_int_equal(sy_lock_fence_floor(r, res, 5), 0);
    assert_int_equal(sy_lock_release(r, l), 0);
    assert_int_equal(sy_lock_try(r, res, 10000, &l), 0);
    assert_int_equal(sy_lock_fence(l), 6);
    assert_int_equal(sy_pg_fence(pg, res, sy_lock_fence(l)), 0);

    /* A floor below the counter changes nothing. */
    assert_int_equal(sy_lock_fence_floor(r, res, 2), 0);
    char now[32];
    raw_get(raw, key, now, sizeof now);
    assert_string_equal(now, "6");
    assert_int_equal(sy_lock_release(r, l), 0);

    const char *params[] = {res};
    assert_int_equal(sy_pg_exec(pg, "DELETE FROM sy_fences WHERE resource = $1", 1, params, NULL),
                     0);
    rep = redisCommand(raw, "DEL %s", key);
    freeReplyObject(rep);
    redisFree(raw);
    sy_redis_destroy(r);
    sy_pg_destroy(pg);
}

/* --- Connection trouble ----------------------------------------------------------------- */

static void lost_connection_is_reconnected_once(void **state)
{
    char res[128];
    resource_name(res, sizeof res, "reconnect");
    struct sy_redis *r = th_sy_redis(2000);
    redisContext *raw = th_redis();
    assert_int_equal(sy_redis_ping(r), 0);

    /* The server drops us (as on a restart or a failover): the next command reconnects. */
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(sy_redis_fd(r), (struct sockaddr *)&sa, &len), 0);
    char addr[64], ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    snprintf(addr, sizeof addr, "%s:%d", ip, ntohs(sa.sin_port));
    redisReply *rep = redisCommand(raw, "CLIENT KILL ADDR %s SKIPME yes", addr);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER); /* the filter form counts the kills */
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    int old_fd_port = ntohs(sa.sin_port);

    struct sy_lock *l = NULL;
    assert_int_equal(sy_lock_try(r, res, 5000, &l), 0);
    assert_int_equal(sy_lock_fence(l), 1);
    len = sizeof sa;
    assert_int_equal(getsockname(sy_redis_fd(r), (struct sockaddr *)&sa, &len), 0);
    assert_int_not_equal(ntohs(sa.sin_port), old_fd_port); /* a new connection */
    assert_int_equal(sy_lock_release(r, l), 0);

    /* Our own socket dies: same story. */
    shutdown(sy_redis_fd(r), SHUT_RDWR);
    assert_int_equal(sy_redis_ping(r), 0);
    redisFree(raw);
    sy_redis_destroy(r);
}

static void paused_server_times_out_then_recovers(void **state)
{
    char res[128];
    resource_name(res, sizeof res, "timeout");
    struct sy_redis *r = th_sy_redis(100);
    redisContext *raw = th_redis();
    /* Writes (scripts count as writes) wait on the server for 400 ms; reads go on. */
    redisReply *rep = redisCommand(raw, "CLIENT PAUSE 400 WRITE");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    struct sy_lock *l = NULL;
    assert_int_equal(sy_lock_try(r, res, 5000, &l), -SY_ETIMEOUT);
    assert_null(l);
    th_sleep_ms(500);
    /* The timed-out connection was dropped; the next call reconnects and works. The paused
     * script may have run after all: the fence counter then moved on, and the lock it set
     * carries a token nobody holds, so it is simply waited out. */
    int rc = sy_lock_acquire(r, res, 5000, 8000, &l);
    assert_int_equal(rc, 0);
    assert_true(sy_lock_fence(l) >= 1);
    assert_int_equal(sy_lock_release(r, l), 0);
    redisFree(raw);
    sy_redis_destroy(r);
}

static void connect_errors_name_the_problem_not_the_password(void **state)
{
    char err[256];
    assert_null(sy_redis_connect("http://127.0.0.1:6379", 1000, err, sizeof err));
    assert_non_null(strstr(err, "redis://"));
    assert_null(sy_redis_connect("redis://127.0.0.1:99999/0", 1000, err, sizeof err));
    assert_non_null(strstr(err, "port"));
    assert_null(sy_redis_connect("redis://127.0.0.1:6379/abc", 1000, err, sizeof err));
    assert_non_null(strstr(err, "database"));

    /* Port 1 on loopback: nothing listens, the connection is refused. */
    assert_null(sy_redis_connect("redis://:s3cret-pass@127.0.0.1:1/0", 1000, err, sizeof err));
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_null(strstr(err, "s3cret-pass"));

    /* A password the server does not accept: AUTH is refused, and the error says so. */
    char url[512];
    const char *base = th_need_env("SY_REDIS_URL");
    const char *hostpart = strstr(base, "://");
    assert_non_null(hostpart);
    hostpart += 3;
    if (strchr(hostpart, '@'))
        hostpart = strchr(hostpart, '@') + 1;
    snprintf(url, sizeof url, "redis://:wr0ng-pass%%40x@%s", hostpart);
    assert_null(sy_redis_connect(url, 1000, err, sizeof err));
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "wr0ng-pass"));
}

int main(void)
{
    th_need_env("SY_REDIS_URL");
    /* hiredis writes with write(2): a socket the peer closed must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    th_run_id(run);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(try_busy_release_and_token),
        cmocka_unit_test(acquire_waits_at_most_wait_ms_and_takes_an_expired_lock),
        cmocka_unit_test(lock_never_has_two_holders),
        cmocka_unit_test(stale_holder_is_refused_by_redis),
        cmocka_unit_test(fenced_set_accepts_equal_and_newer_fences_only),
        cmocka_unit_test(stale_holder_is_refused_by_postgres),
        cmocka_unit_test(fence_floor_recovers_a_counter_redis_lost),
        cmocka_unit_test(lost_connection_is_reconnected_once),
        cmocka_unit_test(paused_server_times_out_then_recovers),
        cmocka_unit_test(connect_errors_name_the_problem_not_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
