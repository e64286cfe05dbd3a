/* model.h - what sy-telemetry knows about the plant (deploy/config/telemetry.yaml): which MQTT
 * topics it reads, how a topic's levels name the plant, kind, device and metric, which kinds and
 * metrics exist with their ranges, and the alert rules; and the decoder that turns one MQTT
 * message into readings, each good or rejected with its reason.
 *
 *   mqtt:
 *     group: sy-telemetry          # shared subscription group: $share/<group>/<filter>
 *     subscriptions: ["plants/#"]  # filters, subscribed at QoS 1
 *     session_expiry_s: 604800     # how long the broker keeps a stopped replica's session
 *   limits:
 *     max_payload: 65536           # bytes of one message
 *     max_future_s: 300            # a reading stamped further ahead is rejected
 *     max_age_s: 604800            # and one older than this
 *   topics:                        # first match wins; '+' one level, literal levels as written
 *     - topic: plants/+/fleet/+/+
 *       levels: _/plant/_/device/metric   # plant, kind, device, metric, or _ (skip)
 *       kind: vehicle                     # a fixed kind when no level names it
 *       format: auto                      # json | msgpack | auto
 *     - topic: plants/+/+/+/+
 *       levels: _/plant/kind/device/metric
 *     - topic: plants/+/+/+               # no metric level: the payload is a map of metrics
 *       levels: _/plant/kind/device
 *   kinds:
 *     line:
 *       metrics:
 *         rate: {min: 0, max: 500}        # numeric; min and max optional
 *         temperature: {min: -50, max: 1800}
 *     vehicle:
 *       vehicle: true                     # its last state is kept per vehicle as well
 *       metrics:
 *         lat: {min: -90, max: 90}
 *         driver: {text: true}            # a text metric (at most TM_TEXT_MAX bytes)
 *   alerts:
 *     - name: kiln_overheat
 *       kind: line                        # optional: any kind
 *       metric: temperature
 *       device: "kiln-*"                  # optional glob over the device name: any device
 *       above: 1450                       # or below: X (exactly one of the two)
 *       clear: 1400                       # optional (default: the raise level)
 *       count: 1                          # optional: consecutive readings to raise, and to clear
 *       severity: critical                # [a-z0-9_]{1,15}: routing key telemetry.alert.<severity>
 *
 * Payloads: JSON or msgpack (format auto: JSON when the first byte is '{', '[', '"', '-', a
 * digit or white space, msgpack otherwise). With a metric level: a bare value (21.5, or text for
 * a text metric) or a map {"value": v, "ts": t}. Without one: a map of metric names to values,
 * with an optional "ts". A time ("ts", "time" or "timestamp") is Unix seconds (fractions
 * allowed), milliseconds or microseconds told apart by size, or RFC 3339 text; without one the
 * reading takes the message's arrival time. Booleans are 1 and 0. */
#ifndef TELEMETRY_MODEL_H
#define TELEMETRY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TM_NAME_MAX     63  /* bytes of a plant, kind, device, metric or rule name */
#define TM_TEXT_MAX     127 /* bytes of a text metric's value */
#define TM_WHY_MAX      159 /* bytes of a reject reason */
#define TM_READINGS_MAX 64  /* metrics in one message; more and the whole message is rejected */
#define TM_TOPIC_MAX    512 /* bytes of a topic that is looked at */

struct tm_model;

struct tm_reading {
    char plant[TM_NAME_MAX + 1]; /* "" when the topic has no plant level */
    char kind[TM_NAME_MAX + 1];
    char device[TM_NAME_MAX + 1];
    char metric[TM_NAME_MAX + 1];
    int64_t ts_us; /* the reading's time, microseconds since the Unix epoch */
    double value;  /* numeric metrics */
    bool is_text;  /* a text metric: the value is in text */
    bool vehicle;  /* the kind keeps a per-vehicle state */
    char text[TM_TEXT_MAX + 1];
    char why[TM_WHY_MAX + 1]; /* "" for a good reading, else why it is rejected */
};

/* NULL with "file:line: why" in err when the file is unreadable or breaks the rules above. */
struct tm_model *tm_model_load(const char *path, char *err, size_t errlen);
struct tm_model *tm_model_load_mem(const char *name, const char *yaml, char *err, size_t errlen);
void tm_model_free(struct tm_model *m); /* accepts NULL */

const char *tm_model_group(const struct tm_model *m);
/* The subscription filters (without the $share prefix); *filters is borrowed. */
size_t tm_model_subscriptions(const struct tm_model *m, const char *const **filters);
long long tm_model_session_expiry_s(const struct tm_model *m);
size_t tm_model_max_payload(const struct tm_model *m);

/* Decodes one MQTT message that arrived at now_us into out[0..return) (max entries, at least
 * TM_READINGS_MAX + 1 so a whole message fits). Every entry is a reading, good (why == "") or
 * rejected with its reason and with the names as far as they were known. A message that does not
 * yield readings at all (unknown topic, a payload that is neither JSON nor msgpack, too large,
 * too many metrics) is one rejected entry. Never fails otherwise; thread-safe (m is read only). */
size_t tm_decode(const struct tm_model *m, const char *topic, size_t topic_len, const void *payload,
                 size_t len, int64_t now_us, struct tm_reading *out, size_t max);

/* --- alerts ------------------------------------------------------------------------------- */

struct tm_rule {
    char name[TM_NAME_MAX + 1];
    char kind[TM_NAME_MAX + 1]; /* "" = any kind */
    char metric[TM_NAME_MAX + 1];
    char device[TM_NAME_MAX + 1]; /* fnmatch(3) glob over the device name; "" = any */
    bool above;                   /* a breach is value > raise; else value < raise */
    double raise, clear;          /* above: clear <= raise; below: clear >= raise */
    int count;                    /* >= 1 */
    char severity[16];
};

/* The rules in file order; *rules is borrowed. */
size_t tm_model_rules(const struct tm_model *m, const struct tm_rule **rules);
/* Whether rule r watches reading rd (a good, numeric one of its kind, metric and device). */
bool tm_rule_matches(const struct tm_rule *r, const struct tm_reading *rd);

/* The state of one rule for one device. */
struct tm_alert_state {
    bool active;        /* raised and not cleared */
    int streak;         /* consecutive readings towards the next change */
    int64_t last_ts_us; /* newest reading looked at (0: none) */
};

enum tm_step { TM_STEP_NONE, TM_STEP_RAISE, TM_STEP_CLEAR };

/* Feeds one reading to the rule's state. A reading not newer than s->last_ts_us changes nothing
 * (redelivered or late). Inactive: a breach adds to the streak and raises at `count` in a row;
 * anything else resets it. Active: a value back past `clear` (above: value < clear; below:
 * value > clear) adds to the streak and clears at `count` in a row; anything else resets it. So
 * a value hovering between clear and raise never flaps. */
enum tm_step tm_rule_step(const struct tm_rule *r, struct tm_alert_state *s, double value,
                          int64_t ts_us);

#endif
