/* it_mqtt_lib.c - the MQTT helpers of the tests (tests/lib/mqtt.h) against the stack's Mosquitto
 * (SY_MQTT_URL): a session made by th_mqtt_session() keeps every QoS 1 message published while
 * nobody is connected, and hands all of them, once each, to the next client with its id;
 * th_mqtt_drop_session() throws away what was queued; a publish the broker refuses is reported,
 * not lost. The stack's Mosquitto queues without limit (max_queued_messages 0): with its default
 * of 1000 the first test fails at 1000. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bare_consumer.h"
#include "harness.h"
#include "mqtt.h"

#define QUEUED 2000

static char run[17];
static const char *url;

/* The names of one test: a client id, the shared filter it subscribes and the topic root. */
struct names {
    char id[64], filter[128], root[96];
};

static void names_of(struct names *n, const char *what)
{
    snprintf(n->id, sizeof n->id, "it-mqtt-%s-%s", run, what);
    snprintf(n->root, sizeof n->root, "it/%s/%s", run, what);
    snprintf(n->filter, sizeof n->filter, "$share/it%s/%s/#", run, n->root);
}

/* Publishes count QoS 1 messages "<i>" to <root>/dev/<i % 50> and waits for every PUBACK. */
static void publish(const struct names *n, int count)
{
    char pid[80], topic[160], body[32];
    snprintf(pid, sizeof pid, "%s-pub", n->id);
    struct th_mqtt_pub *p = th_mqtt_pub_new(url, pid, 256);
    assert_non_null(p);
    double t0 = th_mono_s();
    for (int i = 0; i < count; i++) {
        snprintf(topic, sizeof topic, "%s/dev/%d", n->root, i % 50);
        int len = snprintf(body, sizeof body, "%d", i);
        assert_int_equal(th_mqtt_pub_send(p, topic, body, (size_t)len, 1), 0);
    }
    assert_int_equal(th_mqtt_pub_flush(p, 30000), 0);
    double s = th_mono_s() - t0;
    assert_int_equal(th_mqtt_pub_acked(p), count);
    assert_int_equal(th_mqtt_pub_failed(p), 0);
    fprintf(stderr, "it_mqtt_lib: published %d QoS 1 messages in %.3f s (%.0f/s)\n", count, s,
            count / s);
    th_mqtt_pub_free(p);
}

static void session_keeps_every_message_published_while_nobody_is_connected(void **state)
{
    (void)state;
    struct names n;
    names_of(&n, "queue");
    assert_int_equal(th_mqtt_session(url, n.id, n.filter, 600), 0);
    publish(&n, QUEUED);

    /* The same client id resumes the session without subscribing again. */
    struct th_mqtt_sub *s = th_mqtt_sub_new(url, n.id, NULL);
    assert_non_null(s);
    size_t got = th_mqtt_sub_wait(s, QUEUED, 30000);
    if (got < QUEUED)
        fprintf(stderr,
                "it_mqtt_lib: %zu of %d queued messages arrived (a broker keeping only "
                "1000 per session has max_queued_messages at its default)\n",
                got, QUEUED);
    assert_int_equal(got, QUEUED);
    /* Nothing more comes: each message once. */
    assert_int_equal(th_mqtt_sub_wait(s, QUEUED + 1, 500), QUEUED);
    unsigned char *seen = calloc(QUEUED, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < QUEUED; i++) {
        const struct th_mqtt_msg *m = th_mqtt_sub_get(s, i);
        char *end = NULL;
        long v = strtol(m->payload, &end, 10);
        char topic[160];
        assert_true(end && *end == '\0' && v >= 0 && v < QUEUED);
        snprintf(topic, sizeof topic, "%s/dev/%ld", n.root, v % 50);
        assert_string_equal(m->topic, topic);
        assert_int_equal(m->qos, 1);
        assert_false(m->retained);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
    }
    free(seen);
    assert_false(th_mqtt_sub_lost(s));
    th_mqtt_sub_free(s);
    assert_int_equal(th_mqtt_drop_session(url, n.id), 0);
}

static void drop_session_throws_away_what_was_queued(void **state)
{
    (void)state;
    struct names n;
    names_of(&n, "drop");
    assert_int_equal(th_mqtt_session(url, n.id, n.filter, 600), 0);
    publish(&n, 100);
    assert_int_equal(th_mqtt_drop_session(url, n.id), 0);
    /* No session, so no subscription either: a message published now is not kept. */
    publish(&n, 10);

    struct th_mqtt_sub *s = th_mqtt_sub_new(url, n.id, NULL);
    assert_non_null(s);
    assert_int_equal(th_mqtt_sub_wait(s, 1, 1000), 0);
    th_mqtt_sub_free(s);
}

static void subscriber_receives_a_retained_message_on_subscribing(void **state)
{
    (void)state;
    struct names n;
    char pid[80], topic[160];
    names_of(&n, "retain");
    snprintf(pid, sizeof pid, "%s-pub", n.id);
    snprintf(topic, sizeof topic, "%s/state", n.root);
    struct th_mqtt_pub *p = th_mqtt_pub_new(url, pid, 4);
    assert_non_null(p);
    assert_int_equal(th_mqtt_pub_retain(p, topic, "on", 2, 1), 0);
    assert_int_equal(th_mqtt_pub_flush(p, 10000), 0);

    /* Retained messages only come to a subscription without $share. */
    char filter[128];
    snprintf(filter, sizeof filter, "%s/#", n.root);
    struct th_mqtt_sub *s = th_mqtt_sub_new(url, n.id, filter);
    assert_non_null(s);
    assert_int_equal(th_mqtt_sub_wait(s, 1, 10000), 1);
    const struct th_mqtt_msg *m = th_mqtt_sub_get(s, 0);
    assert_string_equal(m->topic, topic);
    assert_int_equal(m->len, 2);
    assert_memory_equal(m->payload, "on", 2);
    assert_true(m->retained);
    th_mqtt_sub_free(s);
    /* An empty retained message clears it. */
    assert_int_equal(th_mqtt_pub_retain(p, topic, NULL, 0, 1), 0);
    assert_int_equal(th_mqtt_pub_flush(p, 10000), 0);
    th_mqtt_pub_free(p);
}

static void publish_the_broker_refuses_is_reported_by_flush(void **state)
{
    (void)state;
    struct names n;
    char pid[80], topic[160];
    names_of(&n, "refused");
    snprintf(pid, sizeof pid, "%s-pub", n.id);
    struct th_mqtt_pub *p = th_mqtt_pub_new(url, pid, 16);
    assert_non_null(p);
    /* A wildcard is no topic to publish to: refused by the client or the broker, it must show. */
    snprintf(topic, sizeof topic, "%s/+/bad", n.root);
    th_mqtt_pub_send(p, topic, "x", 1, 1);
    assert_int_equal(th_mqtt_pub_flush(p, 5000), -1);
    assert_true(th_mqtt_pub_failed(p) >= 1);
    assert_int_equal(th_mqtt_pub_acked(p), 0);
    th_mqtt_pub_free(p);
}

int main(void)
{
    url = th_need_env("SY_MQTT_URL");
    th_run_id(run);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_keeps_every_message_published_while_nobody_is_connected),
        cmocka_unit_test(drop_session_throws_away_what_was_queued),
        cmocka_unit_test(subscriber_receives_a_retained_message_on_subscribing),
        cmocka_unit_test(publish_the_broker_refuses_is_reported_by_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
