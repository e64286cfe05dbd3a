/* amqp.h - a synchronous AMQP 0-9-1 client for tools and tests (syctl, benchmarks): one
 * connection, one confirm-mode channel, used from one thread. Workers do not use it directly:
 * their connection belongs to the runtime's broker thread. */
#ifndef SY_AMQP_H
#define SY_AMQP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sy_amqp;
struct sy_topology;

enum sy_hdr_kind { SY_HDR_STR, SY_HDR_INT };
struct sy_header {
    const char *key;
    enum sy_hdr_kind kind;
    const char *str;
    int64_t i;
};

struct sy_publish {
    const char *exchange; /* "" for the default exchange */
    const char *routing_key;
    const void *body;
    size_t len;
    const char *message_id; /* copied to the AMQP message_id property; may be NULL */
    const char *type;       /* AMQP type property; may be NULL */
    const char *expiration; /* per-message TTL in ms as text; may be NULL */
    const struct sy_header *headers;
    size_t nheaders;
};

/* Connects (amqp://user:pass@host:port/vhost; an empty vhost, as in "amqp://h:5672/", means
 * "/") and opens channel 1 in confirm mode. heartbeat_s 0 disables heartbeats; they are only
 * answered while a call runs, so keep an idle client's heartbeat long or off. The password is
 * registered for log redaction. NULL with the reason in err (password never included).
 * When the broker closes the channel (a failed passive declare, a publish to a missing
 * exchange), the call fails with the broker's reply in sy_amqp_error() and the next call
 * opens a fresh channel; after a connection close every call fails with -SY_ECONN. */
struct sy_amqp *sy_amqp_connect(const char *url, const char *conn_name, int heartbeat_s, char *err,
                                size_t errlen);
void sy_amqp_destroy(struct sy_amqp *a);
/* The last error text of this connection (broker reply text or library error). */
const char *sy_amqp_error(const struct sy_amqp *a);

/* Declares the exchange and, for `worker` (or every worker when NULL), its work, delay and
 * dead-letter queues and bindings. Idempotent. */
int sy_amqp_declare(struct sy_amqp *a, const struct sy_topology *t, const char *worker);

/* Publishes mandatory and persistent, and waits for the broker's confirm. Returns 0,
 * -SY_ENACK, -SY_EUNROUTABLE (no queue bound), -SY_ENOTFOUND (no such exchange), -SY_ECONN or
 * -SY_ETIMEOUT. Every publish carries the header "x-sy-seq" (its confirm sequence number on
 * this channel): a basic.return is matched to its publish by it. At most 32 headers of the
 * caller's. */
int sy_amqp_publish(struct sy_amqp *a, const struct sy_publish *p, int timeout_ms);
/* Pipelined: sends without waiting; sy_amqp_wait_confirms then waits until every message
 * sent so far is confirmed, and fails if any was nacked or returned. */
int sy_amqp_publish_nowait(struct sy_amqp *a, const struct sy_publish *p);
int sy_amqp_wait_confirms(struct sy_amqp *a, int timeout_ms);

/* Message and consumer counts of a queue (passive declare). -SY_ENOTFOUND if absent. */
int sy_amqp_queue_info(struct sy_amqp *a, const char *queue, uint32_t *messages,
                       uint32_t *consumers);
int sy_amqp_queue_purge(struct sy_amqp *a, const char *queue, uint32_t *purged);
int sy_amqp_queue_delete(struct sy_amqp *a, const char *queue);

/* One message taken with basic.get (not acked until sy_amqp_settle; bodies over 64 MiB are
 * refused with -SY_ETOOBIG and left in the queue). */
struct sy_amqp_msg {
    uint64_t delivery_tag;
    char *routing_key;
    char *exchange;
    char *message_id; /* NULL if absent */
    void *body;
    size_t len;
    json_t *headers; /* headers table as JSON (object, possibly empty); x-death included */
    int redelivered;
};
/* -SY_ENOTFOUND when the queue is empty. */
int sy_amqp_get(struct sy_amqp *a, const char *queue, struct sy_amqp_msg **out);
/* ack (requeue ignored), or reject (requeue or not) when ack == 0. -SY_ECONN when the channel
 * the message came from was closed since: the broker has requeued it already. */
int sy_amqp_settle(struct sy_amqp *a, const struct sy_amqp_msg *m, int ack, int requeue);
void sy_amqp_msg_free(struct sy_amqp_msg *m);

#endif
