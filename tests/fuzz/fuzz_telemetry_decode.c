/* fuzz_telemetry_decode.c - libFuzzer target: untrusted MQTT messages through sy-telemetry's
 * decoder. The first byte picks a topic (each form: metric level, map of metrics, fixed kind,
 * fixed format, unknown, bad names), the second the arrival time, the rest is the payload; every
 * entry must keep model.h's promises. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char model_yaml[] = "mqtt:\n"
                                 "  group: fuzz\n"
                                 "  subscriptions: [\"plants/#\", \"lab/#\"]\n"
                                 "limits:\n"
                                 "  max_payload: 8192\n"
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
                                 "  - topic: lab/+/mp\n"
                                 "    levels: _/device/_\n"
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
                                 "      blaine: {min: 1000}\n"
                                 "      sample: {text: true}\n"
                                 "  vehicle:\n"
                                 "    vehicle: true\n"
                                 "    metrics:\n"
                                 "      fuel: {min: 0, max: 100}\n"
                                 "      lat: {min: -90, max: 90}\n"
                                 "      speed:\n"
                                 "      driver: {text: true}\n";

static const char *const topics[] = {
    "plants/kochi/line/kiln-1/temperature",
    "plants/kochi/line/kiln-1",
    "plants/kochi/fleet/TRK-7/fuel",
    "plants/kochi/fleet/TRK-7/driver",
    "plants/kochi/fleet/TRK-7",
    "lab/xrf-1/json/free_lime",
    "lab/xrf-1/json/sample",
    "lab/xrf-1/mp",
    "plants/kochi/silo/s1/level",
    "plants/kochi/line/kiln 1/rate",
    "plants/kochi/line/kiln-1/nope",
    "other/topic",
};
#define NTOPICS (sizeof topics / sizeof topics[0])

/* 2025-12-06 and a few arrival times that test the clock checks' edges. */
static const int64_t nows[] = {1765000000LL * 1000000, 0, INT64_MAX, INT64_MIN, 1765000000123456LL};
#define NNOWS (sizeof nows / sizeof nows[0])

static struct tm_model *g_model;
static const struct tm_rule *g_rules;
static size_t g_nrules;

static void unload(void)
{
    tm_model_free(g_model);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];

    if (g_model)
        return 0;
    g_model = tm_model_load_mem("fuzz.yaml", model_yaml, err, sizeof err);
    if (!g_model) {
        fprintf(stderr, "fuzz_telemetry_decode: %s\n", err);
        abort();
    }
    g_nrules = tm_model_rules(g_model, &g_rules);
    atexit(unload);
    return 0;
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tm_reading out[TM_READINGS_MAX + 1];
    const char *topic;
    int64_t now;
    size_t n;

    LLVMFuzzerInitialize(NULL, NULL);
    if (size < 2)
        return 0;
    topic = topics[data[0] % NTOPICS];
    now = nows[data[1] % NNOWS];
    /* Poison the output so an unset string or an unset count shows. */
    memset(out, 0xA5, sizeof out);
    n = tm_decode(g_model, topic, strlen(topic), data + 2, size - 2, now, out, TM_READINGS_MAX + 1);
    if (n < 1 || n > TM_READINGS_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        const struct tm_reading *rd = &out[i];

        if (!terminated(rd->plant, sizeof rd->plant) || !terminated(rd->kind, sizeof rd->kind) ||
            !terminated(rd->device, sizeof rd->device) ||
            !terminated(rd->metric, sizeof rd->metric) || !terminated(rd->why, sizeof rd->why))
            abort();
        if (!rd->why[0]) {
            /* a good reading: names, a value or a text, and nothing past the clock limits */
            if (!rd->kind[0] || !rd->device[0] || !rd->metric[0])
                abort();
            if (rd->is_text &&
                (!terminated(rd->text, sizeof rd->text) || strlen(rd->text) > TM_TEXT_MAX))
                abort();
            if (!rd->is_text && !isfinite(rd->value))
                abort();
            if (strcmp(rd->kind, "line") == 0 && strcmp(rd->metric, "temperature") == 0 &&
                (rd->value < -50 || rd->value > 1800))
                abort();
            if (strcmp(rd->metric, "fuel") == 0 && (rd->value < 0 || rd->value > 100))
                abort();
            if (rd->vehicle != (strcmp(rd->kind, "vehicle") == 0))
                abort();
            for (size_t r = 0; r < g_nrules; r++)
                (void)tm_rule_matches(&g_rules[r], rd);
        } else if (tm_rule_matches(&(struct tm_rule){.metric = "x"}, rd)) {
            abort(); /* a rejected reading never matches */
        }
    }
    return 0;
}
