/* it_publisher.c - a publishing-only worker (a handler with `run` instead of handle) against a
 * real RabbitMQ: it needs no topology entry, declares every worker's queues, publishes with
 * confirms from its own loop, stops cleanly on SIGTERM, and exits 1 when its loop fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/topology.h"

#define COUNT 50

struct depth_cond {
    struct sy_amqp *amqp;
    const char *queue;
    uint32_t want;
};

static bool depth_reached(void *ud)
{
    struct depth_cond *c = ud;
    return th_queue_depth(c->amqp, c->queue) >= c->want;
}

static void publishes_without_a_queue_of_its_own_and_stops_on_sigterm(void **state)
{
    (void)state;
    struct sy_topology *topo = NULL;
    struct sy_amqp *a = th_amqp(&topo);
    char run[17], env_run[64];
    struct th_proc p;

    th_run_id(run);
    /* Its connection declares every worker's queues: take one away first. */
    sy_amqp_queue_delete(a, "sy.probe_batch");
    th_purge_worker(a, topo, "probe");
    snprintf(env_run, sizeof env_run, "SY_PROBE_RUN=%s", run);
    const char *env[] = {"SY_PROBE_PUBLISH=50", env_run, NULL};
    assert_int_equal(th_proc_spawn(&p, th_need_env("SY_PROBE_BIN"), env), 0);

    struct depth_cond c = {a, "sy.probe", COUNT};
    if (!th_wait_until(depth_reached, &c, 20000))
        th_proc_dump_log(&p, 40);
    assert_int_equal(th_queue_depth(a, "sy.probe"), COUNT);
    uint32_t n = 0, consumers = 0;
    assert_int_equal(sy_amqp_queue_info(a, "sy.probe_batch", &n, &consumers), 0);

    /* Every message once, with the id the loop gave it, as the envelope and the AMQP
     * message_id both say. */
    bool seen[COUNT] = {false};
    for (int i = 0; i < COUNT; i++) {
        struct sy_amqp_msg *m = NULL;
        struct sy_msg *msg = NULL;
        char err[256];
        assert_int_equal(sy_amqp_get(a, "sy.probe", &m), 0);
        assert_int_equal(sy_msg_decode(m->body, m->len, &msg, err, sizeof err), 0);
        assert_non_null(m->message_id);
        assert_string_equal(m->message_id, sy_msg_id(msg));
        size_t rl = strlen(run);
        assert_int_equal(strncmp(sy_msg_id(msg), run, rl), 0);
        long k = strtol(sy_msg_id(msg) + rl + 1, NULL, 10);
        assert_true(k >= 0 && k < COUNT);
        assert_false(seen[k]);
        seen[k] = true;
        assert_string_equal(sy_msg_source(msg), "publisher");
        assert_int_equal(sy_amqp_settle(a, m, 1, 0), 0);
        sy_amqp_msg_free(m);
        sy_msg_destroy(msg);
    }

    th_proc_signal(&p, SIGTERM);
    assert_int_equal(th_proc_wait(&p, 10000), 0);
    if (p.exit_status != 0)
        th_proc_dump_log(&p, 40);
    assert_int_equal(p.exit_status, 0);
    th_proc_cleanup(&p);
    sy_amqp_destroy(a);
    sy_topology_destroy(topo);
}

static void a_failing_loop_stops_the_process_with_exit_1(void **state)
{
    (void)state;
    struct th_proc p;
    const char *env[] = {"SY_PROBE_PUBLISH=0", "SY_PROBE_RUN_FAIL=1", NULL};

    assert_int_equal(th_proc_spawn(&p, th_need_env("SY_PROBE_BIN"), env), 0);
    assert_int_equal(th_proc_wait(&p, 20000), 0);
    if (p.exit_status != 1)
        th_proc_dump_log(&p, 40);
    assert_int_equal(p.exit_status, 1);
    th_proc_cleanup(&p);
}

int main(void)
{
    th_need_env("SY_AMQP_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publishes_without_a_queue_of_its_own_and_stops_on_sigterm),
        cmocka_unit_test(a_failing_loop_stops_the_process_with_exit_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
