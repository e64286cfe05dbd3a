/* mqtt.h - an MQTT v5 consumer (paho's asynchronous client hidden): QoS 1 subscriptions in a
 * persistent session under a fixed client id, reconnecting and subscribing again by itself.
 *
 * When a message is acknowledged: paho sends the PUBACK right after on_message returns, and
 * sends it anyway for a message it had to queue in memory (on_message busy, or not connected
 * yet). This consumer never lets paho queue: on_message is always called on paho's receiving
 * thread, before the acknowledgement, and what it keeps before returning is all that survives a
 * crash of the process. A message not acknowledged when the process dies comes again from the
 * broker's session (with dup set). */
#ifndef SY_MQTT_H
#define SY_MQTT_H

#include <stdbool.h>
#include <stddef.h>

struct sy_mqtt;

struct sy_mqtt_opts {
    /* tcp://, mqtt:// (plain), ssl://, mqtts:// (TLS, system CAs); user:password@ optional.
     * Its password is registered for log redaction. */
    const char *url;
    const char *client_id;      /* fixed per replica: the broker keeps its session under it */
    const char *const *filters; /* subscribed at QoS 1, e.g. "$share/group/plants/#" */
    size_t nfilters;
    long long session_expiry_s; /* how long the broker keeps the session while disconnected */
    int receive_max;            /* QoS 1 messages in flight from the broker (1..65535) */
    int keepalive_s;            /* 0: 30 */
    /* Every message, on paho's receiving thread, one at a time; topic and payload are borrowed
     * for the call. Keep what must survive before returning, and return soon. */
    void (*on_message)(void *ud, const char *topic, size_t topic_len, const void *payload,
                       size_t len, bool dup);
    void *ud;
};

/* Starts connecting in the background and returns at once: a broker that is not there yet is
 * tried again every few seconds, a lost connection is made again, and every (re)connection
 * subscribes the filters again. NULL with the reason in err for bad options. */
struct sy_mqtt *sy_mqtt_start(const struct sy_mqtt_opts *o, char *err, size_t errlen);
/* True while connected with every filter subscribed. Any thread. */
bool sy_mqtt_ready(const struct sy_mqtt *m);
/* Connections made so far (1 after the first). Any thread. */
unsigned long sy_mqtt_connections(const struct sy_mqtt *m);
/* Disconnects, keeping the session (the broker queues for it), and frees m. After it returns
 * on_message is not called again. Accepts NULL. */
void sy_mqtt_stop(struct sy_mqtt *m);
/* Leaves for good: unsubscribes, takes what the broker still sends (the session's queue and the
 * messages in flight) until nothing came for quiet_ms (at most max_ms in all), then disconnects
 * ending the session, and frees m. For a replica that will not come back: a member of a shared
 * subscription keeps getting its share while disconnected, queued in its session until that
 * expires. Accepts NULL. */
void sy_mqtt_leave(struct sy_mqtt *m, int quiet_ms, int max_ms);

#endif
