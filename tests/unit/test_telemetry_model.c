/* test_telemetry_model.c - sy-telemetry's model: telemetry.yaml's rules and the errors that name
 * file, line and key; topics to plant, kind, device and metric; JSON and msgpack payloads in
 * every form with every way of giving a time; each reason a reading is rejected, for that
 * reading alone where the message allows; and alert rules' matching, hysteresis and counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "telemetry/model.h"

#define NOW_S  1765000000LL /* 2025-12-06T05:46:40Z */
#define NOW_US (NOW_S * 1000000LL)

static const char model_yaml[] = "mqtt:\n"
                                 "  group: sy-telemetry\n"
                                 "  subscriptions: [\"plants/#\", \"lab/#\"]\n"
                                 "  session_expiry_s: 3600\n"
                                 "limits:\n"
                                 "  max_payload: 4096\n"
                                 "topics:\n"
                                 "  - topic: plants/+/fleet/+/+\n"
                                 "    levels: _/plant/_/device/metric\n"
                                 "    kind: vehicle\n"
                                 "  - topic: plants/+/fleet/+\n"
                                 "    levels: _/plant/_/device\n"
                                 "    kind: vehicle\n"
                                 "  - topic: plants/+/+/+/+\n"
                                 "    levels: _/plant/kind/device/metric\n"
                                 "  - topic: plants/+/+/+\n"
                                 "    levels: _/plant/kind/device\n"
                                 "  - topic: lab/+/json/+\n"
                                 "    levels: _/device/_/metric\n"
                                 "    kind: quality\n"
                                 "    format: json\n"
                                 "  - topic: lab/+/mp/+\n"
                                 "    levels: _/device/_/metric\n"
                                 "    kind: quality\n"
                                 "    format: msgpack\n"
                                 "kinds:\n"
                                 "  line:\n"
                                 "    metrics:\n"
                                 "      rate: {min: 0, max: 500}\n"
                                 "      temperature: {min: -50, max: 1800}\n"
                                 "      running: {min: 0, max: 1}\n"
                                 "  quality:\n"
                                 "    metrics:\n"
                                 "      free_lime: {min: 0, max: 10}\n"
                                 "      sample: {text: true}\n"
                                 "  vehicle:\n"
                                 "    vehicle: true\n"
                                 "    metrics:\n"
                                 "      fuel: {min: 0, max: 100}\n"
                                 "      lat: {min: -90, max: 90}\n"
                                 "      speed: {min: 0}\n"
                                 "      driver: {text: true}\n"
                                 "  free:\n"
                                 "    metrics:\n"
                                 "      x:\n"
                                 "alerts:\n"
                                 "  - name: kiln_overheat\n"
                                 "    kind: line\n"
                                 "    metric: temperature\n"
                                 "    device: \"kiln-*\"\n"
                                 "    above: 1450\n"
                                 "    clear: 1400\n"
                                 "    severity: critical\n"
                                 "  - name: fuel_low\n"
                                 "    kind: vehicle\n"
                                 "    metric: fuel\n"
                                 "    below: 15\n"
                                 "    clear: 20\n"
                                 "    count: 3\n"
                                 "    severity: warning\n"
                                 "  - name: any_hot\n"
                                 "    metric: temperature\n"
                                 "    above: 100\n"
                                 "    severity: info\n";

static struct tm_model *g_model;
static struct tm_reading g_out[TM_READINGS_MAX + 1];

static int setup(void **state)
{
    char err[512] = "";

    (void)state;
    g_model = tm_model_load_mem("test.yaml", model_yaml, err, sizeof err);
    if (!g_model)
        fprintf(stderr, "model: %s\n", err);
    return g_model ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tm_model_free(g_model);
    return 0;
}

static size_t decode_at(const char *topic, const void *p, size_t len, int64_t now)
{
    size_t n = tm_decode(g_model, topic, strlen(topic), p, len, now, g_out, TM_READINGS_MAX + 1);

    assert_true(n >= 1 && n <= TM_READINGS_MAX + 1);
    for (size_t i = 0; i < n; i++) {
        if (!g_out[i].why[0]) {
            assert_true(isfinite(g_out[i].value));
        }
    }
    return n;
}

static size_t decode(const char *topic, const char *json)
{
    return decode_at(topic, json, strlen(json), NOW_US);
}

/* The one entry of a message, which must be good. */
static const struct tm_reading *one_good(const char *topic, const char *json)
{
    size_t n = decode(topic, json);

    if (n != 1 || g_out[0].why[0])
        fail_msg("%s %s: %zu entries, first: '%s'", topic, json, n, g_out[0].why);
    return &g_out[0];
}

/* The one entry of a message, rejected with exactly `why`. */
static void one_rejected(const char *topic, const void *p, size_t len, const char *why)
{
    size_t n = decode_at(topic, p, len, NOW_US);

    if (n != 1 || strcmp(g_out[0].why, why) != 0)
        fail_msg("%s: %zu entries, first: '%s', expected '%s'", topic, n, g_out[0].why, why);
}

static void json_rejected(const char *topic, const char *json, const char *why)
{
    one_rejected(topic, json, strlen(json), why);
}

/* ---- configuration ------------------------------------------------------------------- */

#define HEAD                                                                                       \
    "mqtt:\n"                        /* 1 */                                                       \
    "  group: g\n"                   /* 2 */                                                       \
    "  subscriptions: [\"p/#\"]\n"   /* 3 */                                                       \
    "kinds:\n"                       /* 4 */                                                       \
    "  line:\n"                      /* 5 */                                                       \
    "    metrics:\n"                 /* 6 */                                                       \
    "      rate: {min: 0, max: 5}\n" /* 7 */                                                       \
    "      note: {text: true}\n"     /* 8 */
#define TOPICS                                                                                     \
    "topics:\n"                          /* 9 */                                                   \
    "  - topic: p/+/+/+\n"               /* 10 */                                                  \
    "    levels: _/kind/device/metric\n" /* 11 */

static void expect_config_error(const char *yaml, const char *want)
{
    char err[512] = "";
    struct tm_model *m = tm_model_load_mem("t.yaml", yaml, err, sizeof err);

    if (m) {
        tm_model_free(m);
        fail_msg("accepted, expected '%s'", want);
    }
    if (strstr(err, want) != err)
        fail_msg("got '%s', expected it to start with '%s'", err, want);
}

static void config_errors_name_file_line_and_key(void **state)
{
    (void)state;
    expect_config_error(HEAD TOPICS "colour: red\n", "t.yaml:12: unknown key 'colour'");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    above: 4\n"
                                    "    below: 1\n"
                                    "    severity: info\n",
                        "t.yaml:16: alerts[0]: both above and below");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    severity: info\n",
                        "t.yaml:13: alerts[0]: neither above nor below");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    above: 4\n"
                                    "    clear: 4.5\n"
                                    "    severity: info\n",
                        "t.yaml:16: alerts[0].clear: 4.5 is above the raise level 4");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    below: 2\n"
                                    "    clear: 1\n"
                                    "    severity: info\n",
                        "t.yaml:16: alerts[0].clear: 1 is below the raise level 2");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    above: 4\n"
                                    "    severity: Loud!\n",
                        "t.yaml:16: alerts[0].severity: expected 1 to 15 of [a-z0-9_]");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    kind: silo\n"
                                    "    metric: rate\n"
                                    "    above: 4\n"
                                    "    severity: info\n",
                        "t.yaml:14: alerts[0].kind: unknown kind 'silo'");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    kind: line\n"
                                    "    metric: level\n"
                                    "    above: 4\n"
                                    "    severity: info\n",
                        "t.yaml:15: alerts[0].metric: unknown metric 'level' of kind 'line'");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: level\n"
                                    "    above: 4\n"
                                    "    severity: info\n",
                        "t.yaml:14: alerts[0].metric: no kind has a numeric metric 'level'");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    kind: line\n"
                                    "    metric: note\n"
                                    "    above: 4\n"
                                    "    severity: info\n",
                        "t.yaml:15: alerts[0].metric: 'note' is a text metric");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    above: 4\n"
                                    "    count: 0\n"
                                    "    severity: info\n",
                        "t.yaml:16: alerts[0].count: expected an integer from 1");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+/+/+\n"
                             "    levels: _/kind/device/gadget\n",
                        "t.yaml:11: topics[0].levels: unknown level name 'gadget'");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+/+/+\n"
                             "    levels: _/kind/device\n",
                        "t.yaml:11: topics[0].levels: 3 levels for a topic of 4");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+/+\n"
                             "    levels: _/kind/kind\n",
                        "t.yaml:11: topics[0].levels: 'kind' named twice");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+/+\n"
                             "    levels: _/plant/device\n",
                        "t.yaml:10: topics[0]: no kind level and no fixed kind");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+/+\n"
                             "    levels: _/kind/device\n"
                             "    kind: line\n",
                        "t.yaml:12: topics[0].kind: the levels name the kind already");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+\n"
                             "    levels: _/device\n"
                             "    kind: silo\n",
                        "t.yaml:12: topics[0].kind: unknown kind 'silo'");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/#\n"
                             "    levels: _/device\n",
                        "t.yaml:10: topics[0].topic: '#' is not supported");
    expect_config_error(HEAD "topics:\n"
                             "  - topic: p/+\n"
                             "    levels: _/device\n"
                             "    kind: line\n"
                             "    format: xml\n",
                        "t.yaml:13: topics[0].format: expected json, msgpack or auto");
    expect_config_error("mqtt:\n"
                        "  group: g\n"
                        "  subscriptions: [\"p/#\"]\n"
                        "kinds:\n"
                        "  line:\n"
                        "    metrics:\n"
                        "      note: {text: true, max: 5}\n" TOPICS,
                        "t.yaml:7: kinds.line.metrics.note: a text metric has no min or max");
    expect_config_error("mqtt:\n"
                        "  group: g\n"
                        "  subscriptions: [\"p/#\"]\n"
                        "kinds:\n"
                        "  line:\n"
                        "    metrics:\n"
                        "      rate: {min: 5, max: 1}\n" TOPICS,
                        "t.yaml:7: kinds.line.metrics.rate: min 5 is above max 1");
    expect_config_error("mqtt:\n"
                        "  group: g\n"
                        "  subscriptions: [\"p/#\"]\n"
                        "kinds:\n"
                        "  line:\n"
                        "    metrics:\n"
                        "      rate: {min: low}\n" TOPICS,
                        "t.yaml:7: kinds.line.metrics.rate.min: expected a finite number");
    expect_config_error("mqtt:\n"
                        "  group: g\n"
                        "  subscriptions: [\"p/#\"]\n"
                        "kinds:\n"
                        "  line:\n"
                        "    metrics:\n"
                        "      ts: {min: 0}\n" TOPICS,
                        "t.yaml:7: kinds.line.metrics.ts: 'ts' is reserved");
    expect_config_error("mqtt:\n"
                        "  group: g\n"
                        "  subscriptions: [\"p/#/x\"]\n"
                        "kinds:\n",
                        "t.yaml:3: mqtt.subscriptions[0]: expected an MQTT topic filter");
    expect_config_error(HEAD TOPICS "alerts:\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    above: 4\n"
                                    "    severity: info\n"
                                    "  - name: a\n"
                                    "    metric: rate\n"
                                    "    above: 3\n"
                                    "    severity: info\n",
                        "t.yaml:17: alerts[1].name: 'a' is taken by alerts[0]");
}

static void production_file_loads(void **state)
{
    char path[1200], err[512] = "";
    const char *const *subs;
    const struct tm_rule *rules;
    struct tm_model *m;

    (void)state;
    snprintf(path, sizeof path, "%s/deploy/config/telemetry.yaml", th_need_env("SY_SOURCE_DIR"));
    m = tm_model_load(path, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_string_equal(tm_model_group(m), "sy-telemetry");
    assert_int_equal(tm_model_subscriptions(m, &subs), 1);
    assert_string_equal(subs[0], "plants/#");
    assert_int_equal(tm_model_session_expiry_s(m), 604800);
    assert_int_equal(tm_model_max_payload(m), 65536);
    assert_true(tm_model_rules(m, &rules) >= 5);
    /* A fleet map and a quality value go where the file says. */
    {
        static const char fleet[] = "{\"lat\": 9.93, \"lon\": 76.26, \"fuel\": 40, "
                                    "\"driver\": \"Anil\", \"ts\": 1765000000}";
        struct tm_reading out[TM_READINGS_MAX + 1];
        const char *t1 = "plants/kochi/fleet/TRK-12", *t2 = "plants/kochi/quality/lab-1/free_lime";
        size_t n = tm_decode(m, t1, strlen(t1), fleet, strlen(fleet), NOW_US, out, 65);

        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(out[i].why, "");
            assert_string_equal(out[i].kind, "vehicle");
            assert_true(out[i].vehicle);
        }
        n = tm_decode(m, t2, strlen(t2), "1.4", 3, NOW_US, out, 65);
        assert_int_equal(n, 1);
        assert_string_equal(out[0].why, "");
        assert_string_equal(out[0].kind, "quality");
    }
    tm_model_free(m);
}

static void model_accessors_give_the_file(void **state)
{
    const char *const *subs;
    const struct tm_rule *r;

    (void)state;
    assert_string_equal(tm_model_group(g_model), "sy-telemetry");
    assert_int_equal(tm_model_subscriptions(g_model, &subs), 2);
    assert_string_equal(subs[1], "lab/#");
    assert_int_equal(tm_model_session_expiry_s(g_model), 3600);
    assert_int_equal(tm_model_max_payload(g_model), 4096);
    assert_int_equal(tm_model_rules(g_model, &r), 3);
    assert_string_equal(r[0].name, "kiln_overheat");
    assert_true(r[0].above);
    assert_true(r[0].raise == 1450 && r[0].clear == 1400 && r[0].count == 1);
    assert_string_equal(r[0].device, "kiln-*");
    assert_string_equal(r[0].severity, "critical");
    assert_false(r[1].above);
    assert_true(r[1].raise == 15 && r[1].clear == 20 && r[1].count == 3);
    assert_string_equal(r[2].kind, "");
    assert_true(r[2].clear == r[2].raise);
}

/* ---- topics ----------------------------------------------------------------------------- */

static void every_topic_form_names_plant_kind_device_metric(void **state)
{
    const struct tm_reading *rd;
    size_t n;

    (void)state;
    rd = one_good("plants/kochi/line/kiln-1/temperature", "1432.5");
    assert_string_equal(rd->plant, "kochi");
    assert_string_equal(rd->kind, "line");
    assert_string_equal(rd->device, "kiln-1");
    assert_string_equal(rd->metric, "temperature");
    assert_true(rd->value == 1432.5);
    assert_false(rd->vehicle);
    assert_false(rd->is_text);
    assert_true(rd->ts_us == NOW_US);

    /* the fixed kind: vehicle, though no level names it */
    rd = one_good("plants/kochi/fleet/TRK-12/fuel", "55");
    assert_string_equal(rd->kind, "vehicle");
    assert_string_equal(rd->device, "TRK-12");
    assert_string_equal(rd->metric, "fuel");
    assert_true(rd->vehicle);

    n = decode("plants/kochi/fleet/TRK-12", "{\"fuel\": 50, \"lat\": 9.9}");
    assert_int_equal(n, 2);
    assert_string_equal(g_out[0].kind, "vehicle");
    assert_string_equal(g_out[0].metric, "fuel");
    assert_string_equal(g_out[1].metric, "lat");

    n = decode("plants/kochi/line/mill-2", "{\"rate\": 120, \"temperature\": 95}");
    assert_int_equal(n, 2);
    assert_string_equal(g_out[0].kind, "line");
    assert_string_equal(g_out[0].device, "mill-2");
    assert_string_equal(g_out[1].why, "");

    /* no plant level */
    rd = one_good("lab/xrf-1/json/free_lime", "1.2");
    assert_string_equal(rd->plant, "");
    assert_string_equal(rd->kind, "quality");
    assert_string_equal(rd->device, "xrf-1");
}

static void first_match_wins(void **state)
{
    (void)state;
    /* plants/+/+/+/+ would match too, with kind "fleet" (unknown): the vehicle topic is first. */
    assert_string_equal(one_good("plants/a/fleet/v1/speed", "12")->kind, "vehicle");
}

static void plus_matches_exactly_one_level_and_literals_as_written(void **state)
{
    (void)state;
    json_rejected("plants/a/line/kiln-1/temperature/extra", "1", "unknown topic");
    json_rejected("plants/a/line", "1", "unknown topic");
    json_rejected("plant/a/line/kiln-1/temperature", "1", "unknown topic");
    json_rejected("Plants/a/line/kiln-1/temperature", "1", "unknown topic");
    json_rejected("lab/xrf-1/jsonx/free_lime", "1", "unknown topic");
    json_rejected("", "1", "unknown topic");
    json_rejected("/", "1", "unknown topic");
    /* '+' matches an empty level, whose name is then refused */
    json_rejected("plants/a/line//rate", "1", "device: empty name");
    assert_string_equal(g_out[0].kind, "line");
    assert_string_equal(g_out[0].metric, "");
}

/* ---- payloads --------------------------------------------------------------------------- */

static void json_value_forms(void **state)
{
    const struct tm_reading *rd;

    (void)state;
    rd = one_good("plants/a/line/k/rate", "  42 \n");
    assert_true(rd->value == 42);
    rd = one_good("plants/a/line/k/rate", "{\"value\": 12.25, \"ts\": 1764999990}");
    assert_true(rd->value == 12.25);
    assert_true(rd->ts_us == (NOW_S - 10) * 1000000LL);
    rd = one_good("plants/a/line/k/running", "true");
    assert_true(rd->value == 1);
    rd = one_good("plants/a/line/k/running", "false");
    assert_true(rd->value == 0);
    rd = one_good("plants/a/fleet/v/driver", "\"Anil K\"");
    assert_true(rd->is_text);
    assert_string_equal(rd->text, "Anil K");
    rd = one_good("plants/a/fleet/v/driver", "{\"value\": \"ശ്രീ\", \"time\": 1764999999000}");
    assert_string_equal(rd->text, "ശ്രീ");
    assert_true(rd->ts_us == (NOW_S - 1) * 1000000LL);
    rd = one_good("plants/a/free/d/x", "-1e300");
    assert_true(rd->value == -1e300);
}

static void json_map_of_metrics_with_text_and_time(void **state)
{
    size_t n;

    (void)state;
    n = decode("plants/a/fleet/TRK-1", "{\"timestamp\": \"2025-12-06T05:46:00Z\", \"fuel\": 30.5, "
                                       "\"driver\": \"Ravi\", \"speed\": 64}");
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(g_out[i].why, "");
        assert_true(g_out[i].ts_us == (NOW_S - 40) * 1000000LL);
        assert_string_equal(g_out[i].device, "TRK-1");
    }
    assert_true(g_out[0].value == 30.5 && !g_out[0].is_text);
    assert_true(g_out[1].is_text);
    assert_string_equal(g_out[1].text, "Ravi");
    assert_true(g_out[2].value == 64);
}

/* msgpack bytes built with msgpack-c's own packer. */
struct mp_buf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void mp_begin(struct mp_buf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void mp_str(struct mp_buf *b, const char *s)
{
    msgpack_pack_str(&b->pk, strlen(s));
    msgpack_pack_str_body(&b->pk, s, strlen(s));
}

static size_t mp_decode(struct mp_buf *b, const char *topic)
{
    size_t n = decode_at(topic, b->sb.data, b->sb.size, NOW_US);

    msgpack_sbuffer_destroy(&b->sb);
    return n;
}

static void msgpack_value_forms(void **state)
{
    struct mp_buf b;
    size_t n;

    (void)state;
    mp_begin(&b);
    msgpack_pack_double(&b.pk, 1450.5);
    assert_int_equal(mp_decode(&b, "plants/a/line/kiln-1/temperature"), 1);
    assert_string_equal(g_out[0].why, "");
    assert_true(g_out[0].value == 1450.5);

    mp_begin(&b);
    msgpack_pack_float(&b.pk, 2.5f);
    assert_int_equal(mp_decode(&b, "lab/x/mp/free_lime"), 1);
    assert_true(g_out[0].value == 2.5 && !g_out[0].why[0]);

    mp_begin(&b);
    msgpack_pack_int(&b.pk, -40);
    assert_int_equal(mp_decode(&b, "plants/a/line/k/temperature"), 1);
    assert_true(g_out[0].value == -40 && !g_out[0].why[0]);

    mp_begin(&b);
    msgpack_pack_true(&b.pk);
    mp_decode(&b, "plants/a/line/k/running");
    assert_true(g_out[0].value == 1 && !g_out[0].why[0]);

    mp_begin(&b);
    msgpack_pack_map(&b.pk, 2);
    mp_str(&b, "value");
    msgpack_pack_uint16(&b.pk, 300);
    mp_str(&b, "ts");
    msgpack_pack_int64(&b.pk, (NOW_S - 5) * 1000000LL);
    assert_int_equal(mp_decode(&b, "plants/a/line/k/rate"), 1);
    assert_string_equal(g_out[0].why, "");
    assert_true(g_out[0].value == 300 && g_out[0].ts_us == (NOW_S - 5) * 1000000LL);

    mp_begin(&b);
    msgpack_pack_map(&b.pk, 4);
    mp_str(&b, "fuel");
    msgpack_pack_uint8(&b.pk, 80);
    mp_str(&b, "driver");
    mp_str(&b, "Meera");
    mp_str(&b, "ts");
    msgpack_pack_double(&b.pk, (double)NOW_S - 0.5);
    mp_str(&b, "lat");
    msgpack_pack_double(&b.pk, 9.95);
    n = mp_decode(&b, "plants/a/fleet/TRK-2");
    assert_int_equal(n, 3);
    assert_true(g_out[0].value == 80 && !g_out[0].why[0]);
    assert_string_equal(g_out[1].text, "Meera");
    assert_true(g_out[2].value == 9.95 && !g_out[2].why[0]);
    for (size_t i = 0; i < n; i++)
        assert_true(g_out[i].ts_us == NOW_US - 500000);

    /* a topic fixed to msgpack takes a leading '1' byte (0x31) as the integer 49 */
    mp_begin(&b);
    msgpack_pack_fix_uint8(&b.pk, 0x31);
    mp_decode(&b, "lab/x/mp/free_lime");
    assert_string_equal(g_out[0].why, "free_lime 49 above max 10");
}

static void timestamps_in_every_unit_and_rfc3339(void **state)
{
    static const struct {
        const char *ts;
        int64_t us;
    } cases[] = {
        {"1765000000", NOW_US},
        {"1764999999.25", NOW_US - 750000},
        {"1765000000123", NOW_US + 123000},
        {"1765000000123456", NOW_US + 123456},
        {"\"2025-12-06T05:46:40Z\"", NOW_US},
        {"\"2025-12-06T05:46:40.5z\"", NOW_US + 500000},
        {"\"2025-12-06t05:46:40.1234567Z\"", NOW_US + 123456},
        {"\"2025-12-06 11:16:40+05:30\"", NOW_US},
        {"\"2025-12-06T00:46:40.000001-05:00\"", NOW_US + 1},
    };
    char json[128];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tm_reading *rd;

        snprintf(json, sizeof json, "{\"value\": 1, \"ts\": %s}", cases[i].ts);
        rd = one_good("plants/a/line/k/rate", json);
        if (rd->ts_us != cases[i].us)
            fail_msg("%s: %lld, expected %lld", cases[i].ts, (long long)rd->ts_us,
                     (long long)cases[i].us);
    }
    /* none: the arrival time */
    assert_true(one_good("plants/a/line/k/rate", "{\"value\": 1}")->ts_us == NOW_US);
    /* a leap day and a leap second */
    {
        const char *leap = "{\"value\": 1, \"ts\": \"2024-02-29T23:59:60Z\"}";

        assert_true(decode_at("plants/a/line/k/rate", leap, strlen(leap), 1709251200LL * 1000000) ==
                    1);
    }
    assert_string_equal(g_out[0].why, "");
    assert_true(g_out[0].ts_us == 1709251200LL * 1000000);
}

static void bad_timestamps_are_rejected(void **state)
{
    static const char *const bad[] = {
        "\"2025-13-06T05:46:40Z\"",
        "\"2025-02-29T05:46:40Z\"",
        "\"2025-12-06T24:00:00Z\"",
        "\"2025-12-06T05:46:40\"",
        "\"2025-12-06T05:46:40+0530\"",
        "\"2025-12-06T05:46:40.Z\"",
        "\"2025-12-06\"",
        "\"1765000000\"",
        "true",
        "null",
        "[1]",
        "1e20",
    };
    char json[128];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "{\"value\": 1, \"ts\": %s}", bad[i]);
        json_rejected("plants/a/line/k/rate", json, "ts: not a time (Unix s, ms, us or RFC 3339)");
    }
    json_rejected("plants/a/line/k/rate", "{\"value\": 1, \"timestamp\": \"soon\"}",
                  "timestamp: not a time (Unix s, ms, us or RFC 3339)");
    json_rejected("plants/a/line/k/rate", "{\"value\": 1, \"ts\": 1765000900}",
                  "timestamp 900 s in the future");
    /* within the allowance */
    one_good("plants/a/line/k/rate", "{\"value\": 1, \"ts\": 1765000300}");
    json_rejected("plants/a/line/k/rate", "{\"value\": 1, \"ts\": 1764395199}",
                  "timestamp older than 604800 s");
    one_good("plants/a/line/k/rate", "{\"value\": 1, \"ts\": 1764395200}");
}

/* ---- validation ------------------------------------------------------------------------- */

static void whole_message_rejections(void **state)
{
    char big[4200];
    struct mp_buf b;

    (void)state;
    json_rejected("plants/a/silo/s1/level", "1", "unknown kind 'silo'");
    assert_string_equal(g_out[0].kind, "silo");
    assert_string_equal(g_out[0].device, "s1");
    json_rejected("plants/a/line/k/level", "1", "unknown metric 'level' of kind 'line'");
    json_rejected("plants/a/line/k\x01/rate", "1",
                  "device: name with characters outside [A-Za-z0-9_.:-]");
    json_rejected("plants/a b/line/k/rate", "1",
                  "plant: name with characters outside [A-Za-z0-9_.:-]");
    json_rejected("plants/a/line/k/rate$", "1",
                  "metric: name with characters outside [A-Za-z0-9_.:-]");
    json_rejected("plants/a/line/"
                  "d123456789012345678901234567890123456789012345678901234567890123/rate",
                  "1", "device: name longer than 63 bytes");
    memset(big, ' ', sizeof big);
    big[0] = '1';
    one_rejected("plants/a/line/k/rate", big, sizeof big, "payload larger than 4096 bytes");
    one_rejected("plants/a/line/k/rate", "", 0, "empty payload");
    one_rejected("plants/a/line/k/rate", "\xc1\x00", 2, "payload is neither JSON nor msgpack");
    json_rejected("plants/a/line/k/rate", "12 13",
                  "payload is neither JSON nor msgpack (JSON: end of file expected near '13')");
    json_rejected("plants/a/line/k", "{\"rate\": 1, \"rate\": 2}",
                  "payload is neither JSON nor msgpack (JSON: duplicate object key near "
                  "'\"rate\"')");
    json_rejected("lab/x/json/free_lime", "\x92\x01\x02",
                  "invalid JSON at byte 0: unable to decode byte 0x92");
    json_rejected("lab/x/mp/free_lime", "{}", "invalid msgpack");
    json_rejected("plants/a/line/k", "5", "payload: expected a map of metrics");
    json_rejected("plants/a/line/k", "{\"ts\": 1765000000}", "payload: no metrics");

    /* msgpack truncated, and trailing bytes */
    mp_begin(&b);
    msgpack_pack_map(&b.pk, 2);
    mp_str(&b, "rate");
    msgpack_pack_int(&b.pk, 1);
    one_rejected("plants/a/line/k", b.sb.data, b.sb.size, "payload is neither JSON nor msgpack");
    msgpack_sbuffer_destroy(&b.sb);
    one_rejected("lab/x/mp/free_lime", "\x01\x02", 2, "invalid msgpack");
    /* an array header claiming 4 billion entries allocates nothing and is refused */
    one_rejected("plants/a/line/k/rate", "\xdd\xff\xff\xff\xff", 5,
                 "payload is neither JSON nor msgpack");
}

static void more_than_the_limit_of_metrics_rejects_the_message(void **state)
{
    char json[4096];
    size_t used = 0, n;

    (void)state;
    used += (size_t)snprintf(json + used, sizeof json - used, "{");
    for (int i = 0; i < TM_READINGS_MAX; i++)
        used += (size_t)snprintf(json + used, sizeof json - used, "%s\"m%d\": 1", i ? ", " : "", i);
    snprintf(json + used, sizeof json - used, ", \"ts\": 1765000000}");
    n = decode("plants/a/free/d", json);
    assert_int_equal(n, TM_READINGS_MAX); /* 64 readings, each an unknown metric */
    assert_string_equal(g_out[0].why, "unknown metric 'm0' of kind 'free'");
    snprintf(json + used, sizeof json - used, ", \"x\": 2}");
    json_rejected("plants/a/free/d", json, "more than 64 metrics");
}

static void bad_values_are_rejected_naming_the_metric(void **state)
{
    char text[200];
    struct mp_buf b;

    (void)state;
    json_rejected("plants/a/line/k/temperature", "2100", "temperature 2100 above max 1800");
    json_rejected("plants/a/line/k/temperature", "-51.5", "temperature -51.5 below min -50");
    json_rejected("plants/a/line/k/rate", "\"12\"", "rate: not a number");
    json_rejected("plants/a/line/k/rate", "null", "rate: no value (null)");
    json_rejected("plants/a/line/k/rate", "[1]", "rate: a map or array is not a value");
    json_rejected("plants/a/line/k/rate", "{\"value\": {\"v\": 1}}",
                  "rate: a map or array is not a value");
    json_rejected("plants/a/line/k/rate", "{\"ts\": 1765000000}", "rate: no value");
    json_rejected("plants/a/line/k/rate", "{\"value\": 1, \"unit\": \"t/h\"}",
                  "rate: unexpected key 'unit' (value, ts)");
    json_rejected("plants/a/fleet/v/driver", "12", "driver: not text");
    json_rejected("plants/a/fleet/v/driver", "\"tab\\there\"", "driver: control character in text");
    json_rejected("plants/a/fleet/v/driver", "\"\\u0085\"", "driver: control character in text");
    memset(text, 'a', sizeof text);
    text[0] = '"';
    snprintf(text + 129, sizeof text - 129, "\"");
    json_rejected("plants/a/fleet/v/driver", text, "driver: text longer than 127 bytes");
    text[128] = '"';
    text[129] = '\0';
    assert_int_equal(strlen(one_good("plants/a/fleet/v/driver", text)->text), 127);

    /* msgpack can carry what JSON cannot */
    mp_begin(&b);
    msgpack_pack_double(&b.pk, NAN);
    mp_decode(&b, "plants/a/line/k/rate");
    assert_string_equal(g_out[0].why, "rate: not a finite number");
    mp_begin(&b);
    msgpack_pack_double(&b.pk, -INFINITY);
    mp_decode(&b, "plants/a/free/d/x");
    assert_string_equal(g_out[0].why, "x: not a finite number");
    one_rejected("plants/a/fleet/v/driver", "\xa3\x41\xff\x42", 4, "driver: invalid UTF-8");
    one_rejected("plants/a/fleet/v/driver", "\xa4\xed\xa0\x80\x41", 5, "driver: invalid UTF-8");
    one_rejected("plants/a/fleet/v/driver", "\xa2\xc0\xaf", 3, "driver: invalid UTF-8");
    one_rejected("plants/a/fleet/v/driver", "\xa2\x41\x00", 3, "driver: control character in text");
    one_rejected("plants/a/line/k/rate", "\xd4\x01\x02", 3, "rate: not a number");
}

static void a_bad_metric_in_a_map_rejects_only_its_reading(void **state)
{
    struct mp_buf b;
    size_t n;

    (void)state;
    n = decode("plants/a/line/kiln-1", "{\"rate\": 120, \"temperature\": 9000, \"level\": 3, "
                                       "\"running\": \"yes\", \"bad name\": 1, "
                                       "\"efficiency\": [1, {\"a\": 2}], \"ts\": 1765000000}");
    assert_int_equal(n, 6);
    assert_string_equal(g_out[0].why, "");
    assert_true(g_out[0].value == 120);
    assert_string_equal(g_out[1].why, "temperature 9000 above max 1800");
    assert_string_equal(g_out[1].metric, "temperature");
    assert_string_equal(g_out[2].why, "unknown metric 'level' of kind 'line'");
    assert_string_equal(g_out[2].metric, "level");
    assert_string_equal(g_out[3].why, "running: not a number");
    assert_string_equal(g_out[4].why, "metric: name with characters outside [A-Za-z0-9_.:-]");
    assert_string_equal(g_out[4].metric, "");
    assert_string_equal(g_out[5].why, "unknown metric 'efficiency' of kind 'line'");

    /* msgpack: nested values skipped whole, a non-text key, a metric given twice */
    mp_begin(&b);
    msgpack_pack_map(&b.pk, 5);
    mp_str(&b, "fuel");
    msgpack_pack_map(&b.pk, 1);
    mp_str(&b, "deep");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_int(&b.pk, 1);
    msgpack_pack_nil(&b.pk);
    msgpack_pack_int(&b.pk, 7);
    msgpack_pack_int(&b.pk, 1);
    mp_str(&b, "lat");
    msgpack_pack_double(&b.pk, 10.5);
    mp_str(&b, "lat");
    msgpack_pack_double(&b.pk, 10.6);
    mp_str(&b, "speed");
    msgpack_pack_int(&b.pk, 30);
    n = mp_decode(&b, "plants/a/fleet/TRK-3");
    assert_int_equal(n, 5);
    assert_string_equal(g_out[0].why, "fuel: a map or array is not a value");
    assert_string_equal(g_out[1].why, "a metric name that is not text");
    assert_string_equal(g_out[2].why, "");
    assert_true(g_out[2].value == 10.5);
    assert_string_equal(g_out[3].why, "lat: given twice");
    assert_string_equal(g_out[4].why, "");
    assert_true(g_out[4].vehicle);
}

static void a_small_output_array_is_never_overrun(void **state)
{
    struct tm_reading out[3];
    const char *t = "plants/a/line/k", *p = "{\"rate\": 1, \"temperature\": 2, \"running\": 1, "
                                            "\"rate2\": 1}";
    size_t n;

    (void)state;
    n = tm_decode(g_model, t, strlen(t), p, strlen(p), NOW_US, out, 3);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].why, "more than 3 metrics");
    assert_int_equal(tm_decode(g_model, t, strlen(t), p, strlen(p), NOW_US, out, 0), 0);
}

/* ---- alerts ----------------------------------------------------------------------------- */

static void rules_match_kind_metric_and_device_glob(void **state)
{
    const struct tm_rule *r;

    (void)state;
    tm_model_rules(g_model, &r);
    one_good("plants/a/line/kiln-1/temperature", "1500");
    assert_true(tm_rule_matches(&r[0], &g_out[0]));
    assert_true(tm_rule_matches(&r[2], &g_out[0])); /* any kind */
    assert_false(tm_rule_matches(&r[1], &g_out[0]));
    one_good("plants/a/line/mill-1/temperature", "1500");
    assert_false(tm_rule_matches(&r[0], &g_out[0])); /* device glob */
    assert_true(tm_rule_matches(&r[2], &g_out[0]));
    one_good("plants/a/line/kiln-1/rate", "10");
    assert_false(tm_rule_matches(&r[0], &g_out[0])); /* metric */
    json_rejected("plants/a/line/kiln-1/temperature", "2000", "temperature 2000 above max 1800");
    assert_false(tm_rule_matches(&r[0], &g_out[0])); /* rejected */
    one_good("plants/a/fleet/v/fuel", "5");
    assert_true(tm_rule_matches(&r[1], &g_out[0]));
    one_good("plants/a/fleet/v/driver", "\"x\"");
    strcpy(g_out[0].metric, "fuel"); /* even named like one, a text reading never matches */
    assert_false(tm_rule_matches(&r[1], &g_out[0]));
}

static void hysteresis_raises_once_and_clears_once(void **state)
{
    const struct tm_rule *r;
    struct tm_alert_state s = {0};
    static const double hover[] = {1420, 1449, 1410, 1401, 1449.9, 1430};
    int64_t ts = NOW_US;
    int raised = 0, cleared = 0;

    (void)state;
    tm_model_rules(g_model, &r);
    assert_int_equal(tm_rule_step(&r[0], &s, 1440, ts += 1000), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[0], &s, 1450, ts += 1000), TM_STEP_NONE); /* not above */
    assert_int_equal(tm_rule_step(&r[0], &s, 1460, ts += 1000), TM_STEP_RAISE);
    assert_true(s.active);
    for (int k = 0; k < 5; k++) {
        for (size_t i = 0; i < sizeof hover / sizeof hover[0]; i++) {
            enum tm_step st = tm_rule_step(&r[0], &s, hover[i] + (k % 2 ? 20 : 0), ts += 1000);

            raised += st == TM_STEP_RAISE;
            cleared += st == TM_STEP_CLEAR;
        }
    }
    assert_int_equal(raised, 0);
    assert_int_equal(cleared, 0);
    assert_int_equal(tm_rule_step(&r[0], &s, 1400, ts += 1000), TM_STEP_NONE); /* not below */
    assert_int_equal(tm_rule_step(&r[0], &s, 1399, ts += 1000), TM_STEP_CLEAR);
    assert_false(s.active);
    for (size_t i = 0; i < sizeof hover / sizeof hover[0]; i++)
        assert_int_equal(tm_rule_step(&r[0], &s, hover[i], ts += 1000), TM_STEP_NONE);
}

static void count_needs_consecutive_readings_both_ways(void **state)
{
    const struct tm_rule *r;
    struct tm_alert_state s = {0};
    int64_t ts = NOW_US;

    (void)state;
    tm_model_rules(g_model, &r); /* fuel_low: below 15, clear 20, count 3 */
    assert_int_equal(tm_rule_step(&r[1], &s, 10, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 10, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 16, ts += 1), TM_STEP_NONE); /* streak broken */
    assert_int_equal(tm_rule_step(&r[1], &s, 10, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 14.9, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 3, ts += 1), TM_STEP_RAISE);
    assert_int_equal(tm_rule_step(&r[1], &s, 2, ts += 1), TM_STEP_NONE); /* raised once */
    assert_int_equal(tm_rule_step(&r[1], &s, 25, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 25, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 18, ts += 1), TM_STEP_NONE); /* below clear */
    assert_int_equal(tm_rule_step(&r[1], &s, 21, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 21, ts += 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 21, ts += 1), TM_STEP_CLEAR);
    assert_false(s.active);
}

static void late_and_duplicate_readings_change_nothing(void **state)
{
    const struct tm_rule *r;
    struct tm_alert_state s = {0};

    (void)state;
    tm_model_rules(g_model, &r);
    assert_int_equal(tm_rule_step(&r[1], &s, 10, NOW_US), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 10, NOW_US), TM_STEP_NONE);     /* duplicate */
    assert_int_equal(tm_rule_step(&r[1], &s, 10, NOW_US - 5), TM_STEP_NONE); /* late */
    assert_int_equal(s.streak, 1);
    assert_true(s.last_ts_us == NOW_US);
    assert_int_equal(tm_rule_step(&r[1], &s, 10, NOW_US + 1), TM_STEP_NONE);
    assert_int_equal(tm_rule_step(&r[1], &s, 10, NOW_US + 2), TM_STEP_RAISE);
    /* a late good value cannot clear it */
    assert_int_equal(tm_rule_step(&r[1], &s, 50, NOW_US - 10), TM_STEP_NONE);
    assert_true(s.active && s.streak == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_errors_name_file_line_and_key),
        cmocka_unit_test(production_file_loads),
        cmocka_unit_test(model_accessors_give_the_file),
        cmocka_unit_test(every_topic_form_names_plant_kind_device_metric),
        cmocka_unit_test(first_match_wins),
        cmocka_unit_test(plus_matches_exactly_one_level_and_literals_as_written),
        cmocka_unit_test(json_value_forms),
        cmocka_unit_test(json_map_of_metrics_with_text_and_time),
        cmocka_unit_test(msgpack_value_forms),
        cmocka_unit_test(timestamps_in_every_unit_and_rfc3339),
        cmocka_unit_test(bad_timestamps_are_rejected),
        cmocka_unit_test(whole_message_rejections),
        cmocka_unit_test(more_than_the_limit_of_metrics_rejects_the_message),
        cmocka_unit_test(bad_values_are_rejected_naming_the_metric),
        cmocka_unit_test(a_bad_metric_in_a_map_rejects_only_its_reading),
        cmocka_unit_test(a_small_output_array_is_never_overrun),
        cmocka_unit_test(rules_match_kind_metric_and_device_glob),
        cmocka_unit_test(hysteresis_raises_once_and_clears_once),
        cmocka_unit_test(count_needs_consecutive_readings_both_ways),
        cmocka_unit_test(late_and_duplicate_readings_change_nothing),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
