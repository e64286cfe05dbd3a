/* it_telemetry.c - sy-telemetry end to end against the stack's Mosquitto, PostgreSQL, Redis and
 * RabbitMQ:
 *  - topic levels name plant, kind, device and metric; JSON and msgpack payloads, single values
 *    and maps; text metrics of a vehicle; the newest values land in Redis;
 *  - bad readings (out of range, unknown kind or metric, a time far ahead, an unknown topic, a
 *    payload that is neither JSON nor msgpack) are stored as rejects with their reason, and the
 *    good readings of the same message are kept;
 *  - the same readings published again store nothing twice;
 *  - two replicas share the stream: each takes part of it, nothing is stored or counted twice;
 *  - SIGKILLs while readings arrive lose none (the spool replays them on start);
 *  - an alert with hysteresis raises and clears once for a value hovering around its limits, a
 *    count rule needs its readings in a row, and both are published on RabbitMQ;
 *  - Mosquitto stopped and started again: the worker is not ready meanwhile, connects and
 *    subscribes again by itself, and stores what comes after.
 * Isolation on shared services: the run's own topic prefix, shared-subscription group, plant
 * names, client ids and spool folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm_worker.h"
#include "harness.h"
#include "http.h"
#include "mqtt.h"
#include "sy/amqp.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define START_MAX_MS 20000
#define WAIT_MS      60000
#define REPLICAS     2

struct worker {
    struct th_proc proc;
    bool running;
    int port;
    char client[64];
};

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    struct redisContext *redis;
    char run[17];
    char prefix[32], group[32], dir[1200], conf[1300], spool[1300];
    char queue[256], dead[256];
    struct worker w[REPLICAS];
    struct th_mqtt_pub *pub;
    const char *mqtt;
};

static char *config_text(const struct fixture *f)
{
    static char text[4096];

    snprintf(text, sizeof text,
             "mqtt:\n"
             "  group: %s\n"
             "  subscriptions: [\"%s/#\"]\n"
             "  session_expiry_s: 3600\n"
             "limits: {max_payload: 4096, max_future_s: 300, max_age_s: 86400}\n"
             "topics:\n"
             "  - topic: %s/+/fleet/+/+\n"
             "    levels: _/plant/_/device/metric\n"
             "    kind: vehicle\n"
             "  - topic: %s/+/fleet/+\n"
             "    levels: _/plant/_/device\n"
             "    kind: vehicle\n"
             "  - topic: %s/+/+/+/+\n"
             "    levels: _/plant/kind/device/metric\n"
             "  - topic: %s/+/+/+\n"
             "    levels: _/plant/kind/device\n"
             "kinds:\n"
             "  line:\n"
             "    metrics:\n"
             "      rate: {min: 0, max: 500}\n"
             "      temperature: {min: -50, max: 1800}\n"
             "      running: {min: 0, max: 1}\n"
             "  silo:\n"
             "    metrics:\n"
             "      level: {min: 0, max: 100}\n"
             "  vehicle:\n"
             "    vehicle: true\n"
             "    metrics:\n"
             "      lat: {min: -90, max: 90}\n"
             "      lon: {min: -180, max: 180}\n"
             "      fuel: {min: 0, max: 100}\n"
             "      driver: {text: true}\n"
             "alerts:\n"
             "  - name: kiln_hot\n"
             "    kind: line\n"
             "    metric: temperature\n"
             "    device: \"kiln-*\"\n"
             "    above: 1500\n"
             "    clear: 1450\n"
             "    severity: critical\n"
             "  - name: fuel_low\n"
             "    kind: vehicle\n"
             "    metric: fuel\n"
             "    below: 10\n"
             "    clear: 15\n"
             "    count: 3\n"
             "    severity: warning\n",
             f->group, f->prefix, f->prefix, f->prefix, f->prefix, f->prefix);
    return text;
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *build = th_need_env("SY_BUILD_DIR");
    char err[512] = "", path[1200];

    assert_non_null(f);
    f->mqtt = th_need_env("SY_MQTT_URL");
    th_need_env("SY_TELEMETRY_BIN");
    th_run_id(f->run);
    snprintf(f->prefix, sizeof f->prefix, "t%s", f->run);
    snprintf(f->group, sizeof f->group, "g%s", f->run);
    /* The fleet's schemas and topology: sy.alerts catches the alerts, unconsumed. */
    f->amqp = th_fleet_amqp("alerts", "it-telemetry", &f->topo, f->queue, f->dead);
    if (!(f->pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err)))
        fail_msg("pg: %s", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", th_need_env("SY_SOURCE_DIR"));
    if (sy_pg_migrate(f->pg, path, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    f->redis = th_redis();
    snprintf(path, sizeof path, "%s/Testing", build);
    mkdir(path, 0755);
    snprintf(f->dir, sizeof f->dir, "%.1000s/Testing/it-telemetry-%s", build, f->run);
    if (mkdir(f->dir, 0755) != 0)
        fail_msg("mkdir %s: %s", f->dir, strerror(errno));
    snprintf(f->conf, sizeof f->conf, "%s/telemetry.yaml", f->dir);
    snprintf(f->spool, sizeof f->spool, "%s/spool", f->dir);
    assert_int_equal(th_write_file(f->conf, config_text(f)), 0);
    for (int i = 0; i < REPLICAS; i++)
        snprintf(f->w[i].client, sizeof f->w[i].client, "it-telemetry-%s-%d", f->run, i);
    snprintf(path, sizeof path, "it-telemetry-pub-%s", f->run);
    if (!(f->pub = th_mqtt_pub_new(f->mqtt, path, 500)))
        fail_msg("no MQTT publisher on %s", f->mqtt);
    *state = f;
    return 0;
}

static void exec_sql(struct fixture *f, const char *sql, const char *param)
{
    if (sy_pg_exec(f->pg, sql, param ? 1 : 0, param ? &param : NULL, NULL) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    char like[64];

    for (int i = 0; i < REPLICAS; i++) {
        th_stop(&f->w[i].proc, &f->w[i].running);
        th_mqtt_drop_session(f->mqtt, f->w[i].client);
    }
    th_mqtt_pub_free(f->pub);
    snprintf(like, sizeof like, "%%%s", f->run);
    exec_sql(f,
             "DELETE FROM telemetry_points WHERE series IN"
             " (SELECT id FROM telemetry_series WHERE plant LIKE $1)",
             like);
    exec_sql(f, "DELETE FROM telemetry_series WHERE plant LIKE $1", like);
    exec_sql(f, "DELETE FROM telemetry_alerts WHERE plant LIKE $1", like);
    exec_sql(f, "DELETE FROM telemetry_alert_state WHERE plant LIKE $1", like);
    snprintf(like, sizeof like, "%s/%%", f->prefix);
    exec_sql(f, "DELETE FROM telemetry_rejects WHERE topic LIKE $1", like);
    snprintf(like, sizeof like, "it-telemetry-%s-%%", f->run);
    exec_sql(f, "DELETE FROM telemetry_spool WHERE client_id LIKE $1", like);
    th_purge_worker(f->amqp, f->topo, "alerts");
    sy_pg_destroy(f->pg);
    sy_amqp_destroy(f->amqp);
    sy_topology_destroy(f->topo);
    redisFree(f->redis);
    free(f);
    return 0;
}

/* --- the worker ------------------------------------------------------------------------------ */

/* Starts replica i; with leave, a SIGTERM makes it leave the group for good. */
static void start_as(struct fixture *f, int i, bool leave)
{
    struct worker *w = &f->w[i];
    char addr[64], inst[96], conf[1400], client[100], spool[1400];
    const char *env[] = {addr,
                         inst,
                         conf,
                         client,
                         spool,
                         "SY_LOG_LEVEL=info",
                         "SY_TELEMETRY_BATCH_WAIT=50ms",
                         leave ? "SY_TELEMETRY_LEAVE_ON_STOP=1" : NULL,
                         NULL};

    w->port = th_free_port();
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", w->port);
    snprintf(inst, sizeof inst, "SY_INSTANCE=%s", w->client);
    snprintf(conf, sizeof conf, "SY_TELEMETRY_CONFIG=%s", f->conf);
    snprintf(client, sizeof client, "SY_TELEMETRY_CLIENT_ID=%s", w->client);
    snprintf(spool, sizeof spool, "SY_TELEMETRY_SPOOL_DIR=%s", f->spool);
    assert_int_equal(th_proc_spawn(&w->proc, th_need_env("SY_TELEMETRY_BIN"), env), 0);
    w->running = true;
    th_wait_answer(&w->proc, &w->running, "sy-telemetry", w->port, "/readyz", 200, START_MAX_MS);
}

static void start(struct fixture *f, int i)
{
    start_as(f, i, false);
}

static void stop(struct fixture *f, int i)
{
    assert_int_equal(th_stop(&f->w[i].proc, &f->w[i].running), 0);
}

/* A counter of the worker's /metrics (the sum over its label sets). */
static long long metric(struct fixture *f, int i, const char *name)
{
    return th_metric(f->w[i].port, name);
}

/* --- publishing and counting ----------------------------------------------------------------- */

static void publish(struct fixture *f, const char *topic_tail, const void *payload, size_t len)
{
    char topic[256];

    snprintf(topic, sizeof topic, "%s/%s", f->prefix, topic_tail);
    if (th_mqtt_pub_send(f->pub, topic, payload, len, 1) != 0)
        fail_msg("publishing to %s failed", topic);
}

static void publishf(struct fixture *f, const char *topic_tail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void publishf(struct fixture *f, const char *topic_tail, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    publish(f, topic_tail, body, (size_t)n);
}

static void flush_pub(struct fixture *f)
{
    if (th_mqtt_pub_flush(f->pub, 60000) != 0)
        fail_msg("the broker did not acknowledge every publish");
}

static long long count(struct fixture *f, const char *sql, const char *param)
{
    struct sy_pg_res *res = NULL;
    long long n;

    if (sy_pg_exec(f->pg, sql, param ? 1 : 0, param ? &param : NULL, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    n = sy_pg_res_rows(res) && sy_pg_res_get(res, 0, 0) ? atoll(sy_pg_res_get(res, 0, 0)) : 0;
    sy_pg_res_free(res);
    return n;
}

static long long readings_of(struct fixture *f, const char *plant)
{
    return count(f, "SELECT count(*) FROM telemetry_readings WHERE plant = $1", plant);
}

/* Waits until plant has want readings, then that it keeps exactly that many. */
static void wait_readings(struct fixture *f, const char *plant, long long want)
{
    int64_t end = th_now_ms() + WAIT_MS;
    long long n;

    while ((n = readings_of(f, plant)) < want && th_now_ms() < end)
        th_sleep_ms(100);
    th_sleep_ms(500);
    n = readings_of(f, plant);
    if (n != want) {
        struct sy_pg_res *res = NULL;

        for (int i = 0; i < REPLICAS; i++)
            if (f->w[i].running)
                th_proc_dump_log(&f->w[i].proc, 20);
        if (n < 50 && sy_pg_exec(f->pg,
                                 "SELECT device || '/' || metric FROM telemetry_readings"
                                 " WHERE plant = $1 UNION ALL SELECT 'rejected: ' || reason"
                                 " FROM telemetry_rejects WHERE topic LIKE '%/' || $1 || '/%'",
                                 1, &plant, &res) == 0)
            for (int i = 0; i < sy_pg_res_rows(res); i++)
                print_message("  %s\n", sy_pg_res_get(res, i, 0));
        sy_pg_res_free(res);
        fail_msg("plant %s: %lld readings stored, expected %lld", plant, n, want);
    }
}

static void plant_name(const struct fixture *f, const char *what, char *out, size_t n)
{
    snprintf(out, n, "%s%s", what, f->run);
}

/* Text of the one value of sql over $1 (empty when none). */
static void text_of(struct fixture *f, const char *sql, const char *param, char *out, size_t n)
{
    struct sy_pg_res *res = NULL;

    if (sy_pg_exec(f->pg, sql, 1, &param, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    snprintf(out, n, "%s",
             sy_pg_res_rows(res) == 1 && sy_pg_res_get(res, 0, 0) ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
}

static void expect_reading(struct fixture *f, const char *plant, const char *device,
                           const char *metric, const char *want)
{
    char sql[300], got[200];
    const char *params[3] = {plant, device, metric};
    struct sy_pg_res *res = NULL;

    snprintf(sql, sizeof sql,
             "SELECT COALESCE(value::text, text) FROM telemetry_readings"
             " WHERE plant = $1 AND device = $2 AND metric = $3 ORDER BY ts DESC LIMIT 1");
    if (sy_pg_exec(f->pg, sql, 3, params, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    snprintf(got, sizeof got, "%s", sy_pg_res_rows(res) == 1 ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
    if (strcmp(got, want) != 0)
        fail_msg("%s/%s/%s: '%s', expected '%s'", plant, device, metric, got, want);
}

static void expect_reject(struct fixture *f, const char *reason_part)
{
    char like[200], topics[40];
    const char *params[2] = {like, topics};
    struct sy_pg_res *res = NULL;
    bool found;

    snprintf(like, sizeof like, "%%%s%%", reason_part);
    snprintf(topics, sizeof topics, "%s/%%", f->prefix);
    if (sy_pg_exec(f->pg, "SELECT 1 FROM telemetry_rejects WHERE reason LIKE $1 AND topic LIKE $2",
                   2, params, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    found = sy_pg_res_rows(res) > 0;
    sy_pg_res_free(res);
    if (!found)
        fail_msg("no reject with reason like '%s'", reason_part);
}

static long long rejects_of(struct fixture *f)
{
    char like[40];

    snprintf(like, sizeof like, "%s/%%", f->prefix);
    return count(f, "SELECT count(*) FROM telemetry_rejects WHERE topic LIKE $1", like);
}

/* --- tests ----------------------------------------------------------------------------------- */

static void topics_payloads_and_rejects_land_where_they_belong(void **state)
{
    struct fixture *f = *state;
    char plant[40], topic[128], field[64];
    long long now = (long long)(th_now_ms() / 1000);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    redisReply *rep;

    plant_name(f, "map", plant, sizeof plant);
    start(f, 0);
    /* A map of metrics, one of them out of range: the other two are kept. */
    snprintf(topic, sizeof topic, "%s/line/kiln-1", plant);
    publishf(f, topic, "{\"ts\": %lld.25, \"rate\": 212.5, \"temperature\": 1402, \"running\": 1}",
             now);
    snprintf(topic, sizeof topic, "%s/line/mill-2", plant);
    publishf(f, topic, "{\"ts\": %lld, \"rate\": 900, \"temperature\": 95}", now);
    /* A single value with the metric in the topic, in msgpack: {"value": 63.5, "ts": ms}. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "value", 5);
    msgpack_pack_double(&pk, 63.5);
    msgpack_pack_str_with_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, now * 1000 + 500);
    snprintf(topic, sizeof topic, "%s/silo/silo-3/level", plant);
    publish(f, topic, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    /* A vehicle: position and fuel in one map, the driver as text on its own topic. */
    snprintf(topic, sizeof topic, "%s/fleet/truck-7", plant);
    publishf(f, topic, "{\"ts\": %lld, \"lat\": 9.9312, \"lon\": 76.2673, \"fuel\": 41}", now);
    snprintf(topic, sizeof topic, "%s/fleet/truck-7/driver", plant);
    publishf(f, topic, "{\"ts\": %lld, \"value\": \"Anil Kumar\"}", now);
    /* Bad ones: an unknown kind, an unknown metric, a time far ahead, an unknown topic, not
     * JSON or msgpack. */
    snprintf(topic, sizeof topic, "%s/boiler/b-1/pressure", plant);
    publishf(f, topic, "%s", "12.5");
    snprintf(topic, sizeof topic, "%s/silo/silo-3/humidity", plant);
    publishf(f, topic, "%s", "40");
    snprintf(topic, sizeof topic, "%s/silo/silo-4/level", plant);
    publishf(f, topic, "{\"ts\": %lld, \"value\": 50}", now + 86400);
    publishf(f, "just/two", "%s", "1");
    snprintf(topic, sizeof topic, "%s/silo/silo-5/level", plant);
    publish(f, topic, "{not json", 9);
    flush_pub(f);

    /* kiln-1: rate, temperature, running; mill-2: temperature; silo-3: level; truck-7: lat,
     * lon, fuel, driver. */
    wait_readings(f, plant, 9);
    expect_reading(f, plant, "kiln-1", "rate", "212.5");
    expect_reading(f, plant, "mill-2", "temperature", "95");
    expect_reading(f, plant, "silo-3", "level", "63.5");
    expect_reading(f, plant, "truck-7", "lat", "9.9312");
    expect_reading(f, plant, "truck-7", "driver", "Anil Kumar");
    text_of(f,
            "SELECT to_char(ts AT TIME ZONE 'UTC', 'SS.MS') FROM telemetry_readings"
            " WHERE plant = $1 AND device = 'silo-3'",
            plant, field, sizeof field);
    assert_string_equal(field + 3, "500"); /* the payload's milliseconds, not arrival time */
    text_of(f,
            "SELECT kind FROM telemetry_readings WHERE plant = $1 AND device = 'truck-7' LIMIT 1",
            plant, field, sizeof field);
    assert_string_equal(field, "vehicle");

    /* Six rejects, each with its reason; the worker counted them. */
    for (int64_t end = th_now_ms() + 10000; rejects_of(f) < 6 && th_now_ms() < end;)
        th_sleep_ms(100);
    assert_int_equal(rejects_of(f), 6);
    expect_reject(f, "rate 900 above max 500");
    expect_reject(f, "unknown kind 'boiler'");
    expect_reject(f, "unknown metric 'humidity'");
    expect_reject(f, "in the future");
    expect_reject(f, "unknown topic");
    assert_int_equal(metric(f, 0, "sy_telemetry_readings_total{outcome=\"rejected\"}"), 6);

    /* Redis: the newest values per device, the vehicle's whole state, the kind's device set. */
    rep = redisCommand(f->redis, "HGET telemetry:latest:%s:truck-7 driver", plant);
    assert_non_null(rep);
    assert_string_equal(rep->str ? rep->str : "", "Anil Kumar");
    freeReplyObject(rep);
    rep = redisCommand(f->redis, "HGET telemetry:latest:%s:truck-7 fuel", plant);
    assert_string_equal(rep->str ? rep->str : "", "41");
    freeReplyObject(rep);
    snprintf(field, sizeof field, "%s:truck-7", plant);
    rep = redisCommand(f->redis, "SISMEMBER telemetry:devices:vehicle %s", field);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    stop(f, 0);
}

static void the_same_readings_again_store_nothing_twice(void **state)
{
    struct fixture *f = *state;
    char plant[40], topic[128];
    long long ts = th_now_ms() - 3600000;

    plant_name(f, "dup", plant, sizeof plant);
    start(f, 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 300; i++) {
            snprintf(topic, sizeof topic, "%s/line/line-%d", plant, i % 10);
            publishf(f, topic, "{\"ts\": %lld, \"rate\": %d, \"temperature\": 80}", ts + i * 1000LL,
                     i % 400);
        }
        flush_pub(f);
        wait_readings(f, plant, 600);
    }
    /* Stored once, and the second round counted as duplicates. */
    assert_int_equal(metric(f, 0, "sy_telemetry_readings_total{outcome=\"duplicate\"}"), 600);
    stop(f, 0);
}

static void two_replicas_share_the_stream_and_count_nothing_twice(void **state)
{
    struct fixture *f = *state;
    char plant[40], topic[128];
    long long base = th_now_ms() - 3600000, a, b;

    plant_name(f, "two", plant, sizeof plant);
    start(f, 0);
    start_as(f, 1, true); /* it goes away for good afterwards */
    for (int i = 0; i < 4000; i++) {
        snprintf(topic, sizeof topic, "%s/line/line-%d", plant, i % 50);
        publishf(f, topic, "{\"ts\": %lld, \"rate\": 100, \"temperature\": 90}", base + i);
    }
    flush_pub(f);
    wait_readings(f, plant, 8000);
    a = metric(f, 0, "sy_telemetry_messages_total");
    b = metric(f, 1, "sy_telemetry_messages_total");
    print_message("replica messages: %lld and %lld\n", a, b);
    assert_true(a > 0 && b > 0);
    assert_int_equal(a + b, 4000);
    assert_int_equal(metric(f, 0, "sy_telemetry_readings_total{outcome=\"stored\"}") +
                         metric(f, 1, "sy_telemetry_readings_total{outcome=\"stored\"}"),
                     8000);
    stop(f, 0);
    stop(f, 1);
    assert_int_equal(th_log_count(&f->w[1].proc, "mqtt.leave"), 1);
}

static void sigkills_while_readings_arrive_lose_none(void **state)
{
    struct fixture *f = *state;
    char plant[40], topic[128];
    const int n = 30000;
    long long ts = th_now_ms() - 3600000, kills = 0;

    plant_name(f, "kill", plant, sizeof plant);
    start(f, 0);
    for (int i = 0; i < n; i++) {
        snprintf(topic, sizeof topic, "%s/line/line-%d", plant, i % 100);
        publishf(f, topic, "{\"ts\": %lld, \"rate\": 10, \"temperature\": 20}", ts + i);
        if (i > 0 && i % 7000 == 0) {
            th_proc_signal(&f->w[0].proc, SIGKILL);
            th_proc_wait(&f->w[0].proc, 5000);
            f->w[0].running = false;
            kills++;
            start(f, 0);
        }
    }
    flush_pub(f);
    wait_readings(f, plant, 2LL * n);
    print_message("%lld SIGKILLs, %d readings published, all stored once\n", kills, 2 * n);
    assert_int_equal(count(f,
                           "SELECT count(*) FROM (SELECT DISTINCT device, metric, ts FROM"
                           " telemetry_readings WHERE plant = $1) d",
                           plant),
                     2LL * n);
    stop(f, 0);
}

static void alerts_raise_and_clear_once_and_are_published(void **state)
{
    struct fixture *f = *state;
    char plant[40], topic[128], key[64];
    /* Around kiln_hot's limits (raise above 1500, clear below 1450): raise at 1510, nothing
     * while between, clear at 1440, nothing after. */
    static const int temps[] = {1490, 1510, 1480, 1505, 1460, 1499, 1440, 1449, 1455, 1470};
    /* fuel_low: below 10 three times in a row raises; above 15 three times clears. */
    static const int fuel[] = {9, 8, 12, 9, 8, 7, 6, 20, 21, 14, 22, 23, 24};
    long long ts = th_now_ms() - 3600000;
    size_t got = 0, critical = 0, warning = 0;
    struct th_got msgs[16];

    plant_name(f, "alert", plant, sizeof plant);
    start(f, 0);
    for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) {
        snprintf(topic, sizeof topic, "%s/line/kiln-9/temperature", plant);
        publishf(f, topic, "{\"ts\": %lld, \"value\": %d}", ts + (long long)i * 1000, temps[i]);
    }
    for (size_t i = 0; i < sizeof fuel / sizeof fuel[0]; i++) {
        snprintf(topic, sizeof topic, "%s/fleet/truck-1/fuel", plant);
        publishf(f, topic, "{\"ts\": %lld, \"value\": %d}", ts + (long long)i * 1000, fuel[i]);
    }
    flush_pub(f);
    wait_readings(f, plant, 23);
    assert_int_equal(count(f,
                           "SELECT count(*) FROM telemetry_alerts WHERE plant = $1 AND"
                           " rule = 'kiln_hot'",
                           plant),
                     2);
    text_of(f,
            "SELECT string_agg(state || ':' || value, ',' ORDER BY ts) FROM telemetry_alerts"
            " WHERE plant = $1 AND rule = 'kiln_hot'",
            plant, key, sizeof key);
    assert_string_equal(key, "raised:1510,cleared:1440");
    text_of(f,
            "SELECT string_agg(state || ':' || value, ',' ORDER BY ts) FROM telemetry_alerts"
            " WHERE plant = $1 AND rule = 'fuel_low'",
            plant, key, sizeof key);
    assert_string_equal(key, "raised:7,cleared:24");

    /* Published on RabbitMQ, each once, and marked so. */
    for (int64_t end = th_now_ms() + 20000; got < 4 && th_now_ms() < end; th_sleep_ms(200))
        th_drain(f->amqp, f->queue, msgs, 16, &got);
    for (size_t i = 0; i < got; i++) {
        const char *type = json_string_value(json_object_get(msgs[i].env, "type"));
        json_t *d = json_object_get(msgs[i].env, "data");

        if (strcmp(json_string_value(json_object_get(d, "plant")), plant) != 0)
            continue;
        critical += strcmp(type, "telemetry.alert.critical") == 0;
        warning += strcmp(type, "telemetry.alert.warning") == 0;
    }
    for (size_t i = 0; i < got; i++) {
        free(msgs[i].id);
        json_decref(msgs[i].env);
    }
    assert_int_equal(critical, 2);
    assert_int_equal(warning, 2);
    assert_int_equal(count(f,
                           "SELECT count(*) FROM telemetry_alerts WHERE plant = $1 AND"
                           " published_at IS NULL",
                           plant),
                     0);
    stop(f, 0);
}

static int fleet_svc(const char *verb, const char *service)
{
    char cmd[1400];

    snprintf(cmd, sizeof cmd, "'%s' svc %s %s >&2", th_need_env("SY_FLEET"), verb, service);
    return system(cmd);
}

/* Answers of the worker's /readyz (0 when it does not answer). */
static long readyz(struct fixture *f, int i)
{
    struct th_reply r = th_http(f->w[i].port, "GET", "/readyz", NULL, NULL);
    long status = r.status;

    th_reply_free(&r);
    return status;
}

static void the_broker_restarting_loses_nothing(void **state)
{
    struct fixture *f = *state;
    char plant[40], topic[128], name[96];
    long long ts = th_now_ms() - 3600000;
    int64_t end;

    if (!getenv("SY_FLEET") || !*getenv("SY_FLEET")) {
        fprintf(stderr, "skipped: SY_FLEET is not set (run through ./fleet test)\n");
        skip();
    }
    plant_name(f, "restart", plant, sizeof plant);
    start(f, 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(topic, sizeof topic, "%s/line/line-%d", plant, i % 20);
        publishf(f, topic, "{\"ts\": %lld, \"rate\": 1, \"temperature\": 2}", ts + i);
    }
    flush_pub(f);
    th_mqtt_pub_free(f->pub);
    f->pub = NULL;
    /* Mosquitto stops (saving its sessions) and comes back: the worker is not ready meanwhile,
     * then connects again by itself and subscribes again. */
    assert_int_equal(fleet_svc("stop", "mosquitto"), 0);
    for (end = th_now_ms() + 10000; readyz(f, 0) == 200 && th_now_ms() < end;)
        th_sleep_ms(100);
    assert_int_not_equal(readyz(f, 0), 200);
    th_sleep_ms(2000);
    assert_int_equal(fleet_svc("start", "mosquitto"), 0);
    for (end = th_now_ms() + 60000; readyz(f, 0) != 200 && th_now_ms() < end;)
        th_sleep_ms(100);
    assert_int_equal(readyz(f, 0), 200);
    snprintf(name, sizeof name, "it-telemetry-pub2-%s", f->run);
    if (!(f->pub = th_mqtt_pub_new(f->mqtt, name, 500)))
        fail_msg("no MQTT publisher after the restart");
    for (int i = 1000; i < 2000; i++) {
        snprintf(topic, sizeof topic, "%s/line/line-%d", plant, i % 20);
        publishf(f, topic, "{\"ts\": %lld, \"rate\": 1, \"temperature\": 2}", ts + i);
    }
    flush_pub(f);
    wait_readings(f, plant, 4000);
    assert_true(th_log_count(&f->w[0].proc, "mqtt.connected") >= 2);
    stop(f, 0);
}

/* A failed test leaves its workers running: the next one starts its own. */
static int stop_workers(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < REPLICAS; i++)
        th_stop(&f->w[i].proc, &f->w[i].running);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(topics_payloads_and_rejects_land_where_they_belong, stop_workers),
        cmocka_unit_test_teardown(the_same_readings_again_store_nothing_twice, stop_workers),
        cmocka_unit_test_teardown(two_replicas_share_the_stream_and_count_nothing_twice,
                                  stop_workers),
        cmocka_unit_test_teardown(sigkills_while_readings_arrive_lose_none, stop_workers),
        cmocka_unit_test_teardown(alerts_raise_and_clear_once_and_are_published, stop_workers),
        cmocka_unit_test_teardown(the_broker_restarting_loses_nothing, stop_workers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
