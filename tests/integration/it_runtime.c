/* it_runtime.c - the worker runtime against a real RabbitMQ and Redis: publish → handle →
 * ack, RETRY timing, attempts exhausted, REJECT / schema-invalid / non-msgpack bodies dead-
 * lettered with their reason and never handed to the handler. */
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
#include "sy/msg.h"
#include "sy/topology.h"

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    redisContext *redis;
    struct th_proc worker;
    char run[17];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->amqp = th_amqp(&f->topo);
    f->redis = th_redis();
    th_purge_worker(f->amqp, f->topo, "probe");
    th_run_id(f->run);
    const char *env[] = {"SY_HANDLER_THREADS=4", "SY_PREFETCH=64", NULL};
    assert_int_equal(th_proc_spawn(&f->worker, th_need_env("SY_PROBE_BIN"), env), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    th_proc_signal(&f->worker, SIGTERM);
    if (th_proc_wait(&f->worker, 20000) != 0 || f->worker.exit_status != 0)
        th_proc_dump_log(&f->worker, 40);
    th_proc_cleanup(&f->worker);
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    redisFree(f->redis);
    free(f);
    return 0;
}

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

static void test_published_messages_are_handled_once_and_acked(void **state)
{
    struct fixture *f = *state;
    enum { N = 500 };
    static char ids[N][37];
    for (int i = 0; i < N; i++)
        assert_int_equal(
            th_publish_probe(f->amqp, "sy.events", "probe.work", f->run, i, "ack", -1, -1, ids[i]),
            0);
    assert_int_equal(sy_amqp_wait_confirms(f->amqp, 10000), 0);
    assert_true(th_probe_wait_done(f->redis, f->run, N, 30000));
    for (int i = 0; i < N; i++)
        assert_int_equal(th_probe_seen(f->redis, f->run, ids[i]), 1);
    th_sleep_ms(300); /* acks are sent after the handler returns */
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe"), 0);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe.dead"), 0);
}

static void test_retry_comes_back_after_its_delay_and_not_earlier(void **state)
{
    struct fixture *f = *state;
    char id[37];
    /* Fails twice, then succeeds: three handlings, separated by the 1 s and 2 s steps. */
    assert_int_equal(
        th_publish_probe(f->amqp, "sy.events", "probe.work", f->run, 1, "retry", -1, 2, id), 0);
    assert_int_equal(sy_amqp_wait_confirms(f->amqp, 10000), 0);
    assert_true(th_probe_wait_done(f->redis, f->run, 1, 20000));
    int64_t t[8];
    size_t n = th_probe_times(f->redis, f->run, id, t, 8);
    assert_int_equal(n, 3);
    int64_t gap1 = t[1] - t[0], gap2 = t[2] - t[1];
    fprintf(stderr, "retry gaps: %lld ms, %lld ms\n", (long long)gap1, (long long)gap2);
    /* Never earlier than the step; later by at most the jitter (20%) plus scheduling slack. */
    assert_true(gap1 >= 1000);
    assert_true(gap1 <= 1200 + 1500);
    assert_true(gap2 >= 2000);
    assert_true(gap2 <= 2400 + 1500);
    assert_int_equal(th_queue_depth(f->amqp, "sy.probe.dead"), 0);
}

/* Takes the one dead letter and returns its reason header (caller frees), checking its id. */
static char *take_dead(struct fixture *f, const char *want_id, json_t **headers_out)
{
    struct sy_amqp_msg *m = NULL;
    assert_int_equal(sy_amqp_get(f->amqp, "sy.probe.dead", &m), 0);
    if (want_id) {
        assert_non_null(m->message_id);
        assert_string_equal(m->message_id, want_id);
    }
    const char *reason = json_string_value(json_object_get(m->headers, "x-sy-reason"));
    assert_non_null(reason);
    char *copy = strdup(reason);
    if (headers_out)
        *headers_out = json_incref(m->headers);
    assert_int_equal(sy_amqp_settle(f->amqp, m, 1, 0), 0);
    sy_amqp_msg_free(m);
    return copy;
}

static void test_retries_exhausted_land_in_dead_letter_queue(void **state)
{
    struct fixture *f = *state;
    char id[37];
    assert_int_equal(
        th_publish_probe(f->amqp, "sy.events", "probe.work", f->run, 2, "retry", -1, 99, id), 0);
    assert_int_equal(sy_amqp_wait_confirms(f->amqp, 10000), 0);
    struct depth_cond c = {f->amqp, "sy.probe.dead", 1};
    /* max_attempts 4: handlings at 0, +1, +2, +4 s (plus jitter), then dead. */
    assert_true(th_wait_until(depth_reached, &c, 30000));
    json_t *h = NULL;
    char *reason = take_dead(f, id, &h);
    assert_non_null(strstr(reason, "attempts exhausted"));
    assert_non_null(strstr(reason, "probe retry"));
    assert_int_equal(json_integer_value(json_object_get(h, "x-sy-attempts")), 4);
    assert_string_equal(json_string_value(json_object_get(h, "x-sy-worker")), "probe");
    assert_string_equal(json_string_value(json_object_get(h, "x-sy-routing-key")), "probe.work");
    assert_non_null(json_object_get(h, "x-sy-dead-at"));
    json_decref(h);
    free(reason);
    assert_int_equal(th_probe_seen(f->redis, f->run, id), 4);
}

static void test_rejected_message_is_dead_lettered_with_reason(void **state)
{
    struct fixture *f = *state;
    char id[37];
    assert_int_equal(
        th_publish_probe(f->amqp, "sy.events", "probe.work", f->run, 3, "reject", -1, -1, id), 0);
    assert_int_equal(sy_amqp_wait_confirms(f->amqp, 10000), 0);
    struct depth_cond c = {f->amqp, "sy.probe.dead", 1};
    assert_true(th_wait_until(depth_reached, &c, 15000));
    char *reason = take_dead(f, id, NULL);
    assert_string_equal(reason, "probe reject");
    free(reason);
    assert_int_equal(th_probe_seen(f->redis, f->run, id), 1);
}

static void test_schema_invalid_message_never_reaches_the_handler(void **state)
{
    struct fixture *f = *state;
    /* n is a string where the schema wants an int. */
    char data[128];
    int dlen = snprintf(data, sizeof data, "\x82\xa3run\xb0%s\xa1n\xa1x", f->run);
    void *body = NULL;
    size_t len = 0;
    assert_int_equal(
        sy_msg_encode("probe.work", "schema-bad-1", "sy-test", 0, data, (size_t)dlen, &body, &len),
        0);
    struct sy_publish p = {.exchange = "sy.events",
                           .routing_key = "probe.work",
                           .body = body,
                           .len = len,
                           .message_id = "schema-bad-1"};
    assert_int_equal(sy_amqp_publish(f->amqp, &p, 10000), 0);
    free(body);
    struct depth_cond c = {f->amqp, "sy.probe.dead", 1};
    assert_true(th_wait_until(depth_reached, &c, 15000));
    char *reason = take_dead(f, "schema-bad-1", NULL);
    assert_non_null(strstr(reason, "schema"));
    assert_non_null(strstr(reason, "data.n"));
    free(reason);
    assert_int_equal(th_probe_seen(f->redis, f->run, "schema-bad-1"), 0);
}

static void test_non_msgpack_body_is_dead_lettered(void **state)
{
    struct fixture *f = *state;
    const char *text = "{\"this\": \"is json, not msgpack\"}";
    struct sy_publish p = {.exchange = "sy.events",
                           .routing_key = "probe.work",
                           .body = text,
                           .len = strlen(text),
                           .message_id = "not-msgpack-1"};
    assert_int_equal(sy_amqp_publish(f->amqp, &p, 10000), 0);
    struct depth_cond c = {f->amqp, "sy.probe.dead", 1};
    assert_true(th_wait_until(depth_reached, &c, 15000));
    char *reason = take_dead(f, "not-msgpack-1", NULL);
    assert_non_null(strstr(reason, "decode"));
    free(reason);
}

static void test_unknown_version_is_dead_lettered(void **state)
{
    struct fixture *f = *state;
    /* A hand-packed envelope with v = 7. */
    char body[256];
    int n = snprintf(body, sizeof body,
                     "\x86\xa1v\x07\xa2id\xa5v7-id\xa4type\xaaprobe.work\xa2ts\x01\xa6source"
                     "\xa4test\xa4"
                     "data\x82\xa3run\xb0%s\xa1n\x01",
                     f->run);
    struct sy_publish p = {.exchange = "sy.events",
                           .routing_key = "probe.work",
                           .body = body,
                           .len = (size_t)n,
                           .message_id = "v7-id"};
    assert_int_equal(sy_amqp_publish(f->amqp, &p, 10000), 0);
    struct depth_cond c = {f->amqp, "sy.probe.dead", 1};
    assert_true(th_wait_until(depth_reached, &c, 15000));
    char *reason = take_dead(f, "v7-id", NULL);
    assert_non_null(strstr(reason, "version"));
    free(reason);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_published_messages_are_handled_once_and_acked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_comes_back_after_its_delay_and_not_earlier,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted_land_in_dead_letter_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rejected_message_is_dead_lettered_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_schema_invalid_message_never_reaches_the_handler,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_msgpack_body_is_dead_lettered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_version_is_dead_lettered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
