/* it_resilience.c - nothing is lost when things go wrong: a worker SIGKILLed in the middle of
 * a batch, RabbitMQ restarted under load, and SIGTERM draining in-flight work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sy/amqp.h"
#include "sy/topology.h"

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    redisContext *redis;
    char run[17];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->amqp = th_amqp(&f->topo);
    f->redis = th_redis();
    th_purge_worker(f->amqp, f->topo, "probe");
    th_purge_worker(f->amqp, f->topo, "probe_batch");
    th_run_id(f->run);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    redisFree(f->redis);
    free(f);
    return 0;
}

static void publish_many(struct fixture *f, const char *type, int n, const char *action,
                         int64_t sleep_ms, char (*ids)[37])
{
    for (int i = 0; i < n; i++)
        assert_int_equal(th_publish_probe(f->amqp, "sy.events", type, f->run, i, action, sleep_ms,
                                          -1, ids ? ids[i] : NULL),
                         0);
    assert_int_equal(sy_amqp_wait_confirms(f->amqp, 30000), 0);
}

static void assert_all_done(struct fixture *f, char (*ids)[37], int n)
{
    int missing = 0;
    for (int i = 0; i < n; i++)
        if (!th_probe_is_done(f->redis, f->run, ids[i]))
            missing++;
    assert_int_equal(missing, 0);
}

static void test_sigkill_mid_batch_loses_nothing(void **state)
{
    struct fixture *f = *state;
    enum { N = 3000 };
    static char ids[N][37];
    publish_many(f, "probebatch.work", N, "sleep", 2, ids);

    const char *env[] = {"SY_PROBE_WORKER=probe_batch", "SY_PROBE_BATCH=1", "SY_PROBE_BATCH_MAX=50",
                         "SY_HANDLER_THREADS=2",        "SY_PREFETCH=200",  NULL};
    struct th_proc w;
    assert_int_equal(th_proc_spawn(&w, th_need_env("SY_PROBE_BIN"), env), 0);
    assert_true(th_probe_wait_done(f->redis, f->run, N / 5, 60000));
    th_proc_signal(&w, SIGKILL); /* batches are in flight: each message sleeps 2 ms */
    assert_int_equal(th_proc_wait(&w, 10000), 0);
    long long before = th_probe_done_count(f->redis, f->run);
    fprintf(stderr, "killed with %lld of %d done\n", before, N);
    assert_true(before < N);

    assert_int_equal(th_proc_spawn(&w, th_need_env("SY_PROBE_BIN"), env), 0);
    bool ok = th_probe_wait_done(f->redis, f->run, N, 120000);
    if (!ok)
        th_proc_dump_log(&w, 40);
    th_proc_signal(&w, SIGTERM);
    assert_int_equal(th_proc_wait(&w, 30000), 0);
    assert_true(ok);
    assert_int_equal(w.exit_status, 0);
    assert_all_done(f, ids, N);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe_batch"), 0);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe_batch.dead"), 0);
}

static int fleet_svc(const char *verb)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' svc %s rabbitmq >&2", th_need_env("SY_FLEET"), verb);
    return system(cmd);
}

static void test_rabbitmq_restart_under_load_reconnects_and_finishes(void **state)
{
    struct fixture *f = *state;
    enum { N = 4000 };
    static char ids[N][37];
    publish_many(f, "probe.work", N, "sleep", 1, ids);
    th_need_env("SY_FLEET");

    const char *env[] = {"SY_HANDLER_THREADS=4", "SY_PREFETCH=100", "SY_RECONNECT_MAX=2000", NULL};
    struct th_proc w;
    assert_int_equal(th_proc_spawn(&w, th_need_env("SY_PROBE_BIN"), env), 0);
    assert_true(th_probe_wait_done(f->redis, f->run, N / 8, 60000));
    /* The test's own connection dies with the broker; reconnect after. */
    sy_amqp_destroy(f->amqp);
    f->amqp = NULL;
    assert_int_equal(fleet_svc("restart"), 0);
    struct sy_topology *again = NULL;
    f->amqp = th_amqp(&again);
    sy_topology_destroy(again);

    bool ok = th_probe_wait_done(f->redis, f->run, N, 120000);
    if (!ok)
        th_proc_dump_log(&w, 60);
    th_proc_signal(&w, SIGTERM);
    assert_int_equal(th_proc_wait(&w, 30000), 0);
    assert_true(ok);
    assert_int_equal(w.exit_status, 0);
    assert_all_done(f, ids, N);
    th_sleep_ms(200);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe"), 0);
}

static void test_sigterm_drains_in_flight_work_and_exits_zero(void **state)
{
    struct fixture *f = *state;
    enum { N = 40 };
    static char ids[N][37];
    publish_many(f, "probe.work", N, "sleep", 800, ids);

    const char *env[] = {"SY_HANDLER_THREADS=4", "SY_PREFETCH=10", "SY_SHUTDOWN_GRACE=20s", NULL};
    struct th_proc w;
    assert_int_equal(th_proc_spawn(&w, th_need_env("SY_PROBE_BIN"), env), 0);
    /* Wait until the first four are being handled (each takes 800 ms). */
    th_sleep_ms(1200);
    int64_t t0 = th_now_ms();
    th_proc_signal(&w, SIGTERM);
    assert_int_equal(th_proc_wait(&w, 25000), 0);
    int64_t took = th_now_ms() - t0;
    fprintf(stderr, "drained and exited in %lld ms\n", (long long)took);
    assert_int_equal(w.exit_status, 0);
    assert_true(took < 20000);
    /* Whatever was started was finished; the rest waits in the queue, none is lost. */
    long long done = th_probe_done_count(f->redis, f->run);
    assert_true(done >= 4);
    int started_not_done = 0;
    for (int i = 0; i < N; i++)
        if (th_probe_seen(f->redis, f->run, ids[i]) > 0 &&
            !th_probe_is_done(f->redis, f->run, ids[i]))
            started_not_done++;
    assert_int_equal(started_not_done, 0);
    th_sleep_ms(300);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe"), N - done);

    /* A new worker finishes the rest. */
    const char *fast[] = {"SY_HANDLER_THREADS=8", "SY_PREFETCH=50", NULL};
    assert_int_equal(th_proc_spawn(&w, th_need_env("SY_PROBE_BIN"), fast), 0);
    bool ok = th_probe_wait_done(f->redis, f->run, N, 60000);
    th_proc_signal(&w, SIGTERM);
    th_proc_wait(&w, 30000);
    assert_true(ok);
    assert_all_done(f, ids, N);
}

static void test_message_that_crashes_the_worker_ends_in_dead_letters(void **state)
{
    struct fixture *f = *state;
    char id[37];
    assert_int_equal(
        th_publish_probe(f->amqp, "sy.events", "probe.work", f->run, 0, "crash", -1, -1, id), 0);
    assert_int_equal(sy_amqp_wait_confirms(f->amqp, 10000), 0);
    /* The test topology's delivery limit is 5: each start takes the message and dies on it;
     * after the limit the broker dead-letters it instead of handing it out again. */
    const char *env[] = {"SY_PREFETCH=1", "ASAN_OPTIONS=handle_abort=0", NULL};
    int starts = 0;
    while (th_queue_depth(f->amqp, "sy.probe.dead") == 0 && starts < 10) {
        struct th_proc w;
        assert_int_equal(th_proc_spawn(&w, th_need_env("SY_PROBE_BIN"), env), 0);
        starts++;
        if (th_proc_wait(&w, 5000) != 0) { /* nothing left to crash on */
            th_proc_signal(&w, SIGTERM);
            assert_int_equal(th_proc_wait(&w, 30000), 0);
        }
        th_sleep_ms(100);
    }
    fprintf(stderr, "dead-lettered after %d crashing starts\n", starts);
    assert_true(starts >= 5);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe.dead"), 1);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe"), 0);
    struct sy_amqp_msg *m = NULL;
    assert_int_equal(sy_amqp_get(f->amqp, "sy.probe.dead", &m), 0);
    assert_string_equal(m->message_id, id);
    json_t *death = json_array_get(json_object_get(m->headers, "x-death"), 0);
    assert_non_null(death);
    assert_string_equal(json_string_value(json_object_get(death, "reason")), "delivery_limit");
    assert_int_equal(sy_amqp_settle(f->amqp, m, 1, 0), 0);
    sy_amqp_msg_free(m);
    assert_int_equal(th_probe_seen(f->redis, f->run, id), 0); /* it crashed before recording */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_mid_batch_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_drains_in_flight_work_and_exits_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_message_that_crashes_the_worker_ends_in_dead_letters,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rabbitmq_restart_under_load_reconnects_and_finishes,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
