/* mqtt.h - MQTT v5 helpers for integration tests and benchmarks (paho's asynchronous client):
 * persistent sessions made and dropped, a fast windowed QoS 1 publisher, and a small subscriber
 * that keeps what it receives. Workers never use this: they go through sy_common.
 *
 * url is what paho takes ("tcp://127.0.0.1:1883", SY_MQTT_URL). Every function waits for the
 * broker's answer (at most TH_MQTT_TIMEOUT_MS for a connect, subscribe or disconnect) and prints
 * why it failed to stderr, prefixed "th_mqtt:". */
#ifndef SY_TEST_MQTT_H
#define SY_TEST_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#define TH_MQTT_TIMEOUT_MS 10000

/* Connects client_id with clean start off and a Session Expiry Interval of expiry_s, subscribes
 * filter (a "$share/<group>/..." filter too) at QoS 1 and disconnects normally, keeping the
 * session: from then on the broker queues every QoS 1 message matching filter for client_id
 * until a client connects with that id (or the session expires). 0, or -1 on failure. */
int th_mqtt_session(const char *url, const char *client_id, const char *filter, long long expiry_s);

/* Connects client_id with clean start on and a Session Expiry Interval of 0, then disconnects:
 * the broker forgets its session, subscriptions and queued messages. 0 or -1. */
int th_mqtt_drop_session(const char *url, const char *client_id);

/* --- publisher ------------------------------------------------------------------------------ */

/* A connected MQTT v5 publisher (clean start, no session kept) that keeps up to `window`
 * (1..65535) QoS 1 publishes unacknowledged at once. NULL on failure. Not thread-safe: one
 * thread sends. */
struct th_mqtt_pub;
struct th_mqtt_pub *th_mqtt_pub_new(const char *url, const char *client_id, int window);

/* Hands one message (topic and payload copied) to the client and returns without waiting for the
 * broker, unless `window` publishes are in flight already: then it waits for one to be
 * acknowledged (at most TH_MQTT_TIMEOUT_MS). qos 0, 1 or 2. 0, or -1 when the message was not
 * accepted (a bad argument, a lost connection, the window never freeing up); a publish the
 * broker refuses later is counted in th_mqtt_pub_failed() and reported by th_mqtt_pub_flush(). */
int th_mqtt_pub_send(struct th_mqtt_pub *p, const char *topic, const void *payload, size_t len,
                     int qos);

/* The same with the retain flag set: the broker keeps the message for later subscribers (an
 * empty payload removes what it kept). */
int th_mqtt_pub_retain(struct th_mqtt_pub *p, const char *topic, const void *payload, size_t len,
                       int qos);

/* Waits until every publish sent so far is acknowledged (QoS 0: written). 0 when all were, and no
 * publish of this publisher ever failed; -1 when one failed or timeout_ms passed first. */
int th_mqtt_pub_flush(struct th_mqtt_pub *p, int timeout_ms);

/* Publishes acknowledged by the broker, and those that failed (refused, lost or not accepted). */
long long th_mqtt_pub_acked(struct th_mqtt_pub *p);
long long th_mqtt_pub_failed(struct th_mqtt_pub *p);

/* Disconnects (waiting up to TH_MQTT_TIMEOUT_MS for publishes in flight) and frees; accepts
 * NULL. */
void th_mqtt_pub_free(struct th_mqtt_pub *p);

/* --- subscriber ----------------------------------------------------------------------------- */

/* One message a subscriber received; owned by the subscriber, valid until th_mqtt_sub_free. */
struct th_mqtt_msg {
    char *topic;
    char *payload; /* len bytes, followed by a NUL for convenience */
    size_t len;
    int qos;
    bool retained;
    bool dup; /* the broker marked it a redelivery */
};

/* Connects client_id with clean start off and a Session Expiry Interval of 0, so it resumes the
 * session the id has (receiving what the broker queued for it) and the session ends when the
 * subscriber is freed; then subscribes filter at QoS 1 unless filter is NULL. Every message is
 * kept, in arrival order. NULL on failure. */
struct th_mqtt_sub;
struct th_mqtt_sub *th_mqtt_sub_new(const char *url, const char *client_id, const char *filter);

/* Waits until at least n messages arrived or timeout_ms passed; returns how many arrived. */
size_t th_mqtt_sub_wait(struct th_mqtt_sub *s, size_t n, int timeout_ms);
/* How many arrived so far; message i (< count) of them, borrowed. */
size_t th_mqtt_sub_count(struct th_mqtt_sub *s);
const struct th_mqtt_msg *th_mqtt_sub_get(struct th_mqtt_sub *s, size_t i);
/* Whether the broker dropped the connection after th_mqtt_sub_new succeeded. */
bool th_mqtt_sub_lost(struct th_mqtt_sub *s);

/* Disconnects normally and frees every message; accepts NULL. */
void th_mqtt_sub_free(struct th_mqtt_sub *s);

#endif
