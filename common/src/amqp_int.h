/* amqp_int.h - what the sync client (amqp.c) and the broker thread (broker.c) share: opening a
 * connection, declaring the topology, turning broker and library failures into SY_E codes
 * with readable text, and building or reading header tables. Private to the runtime. */
#ifndef SY_AMQP_INT_H
#define SY_AMQP_INT_H

#include <amqp.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sy/amqp.h"
#include "sy/topology.h"

#define SY_AMQP_FRAME_MAX          131072
#define SY_AMQP_CONNECT_TIMEOUT_MS 5000  /* TCP connect and login, each */
#define SY_AMQP_RPC_TIMEOUT_MS     30000 /* a synchronous method's reply */
/* Every publish carries its confirm sequence number in this header, so a basic.return (which
 * has no sequence number of its own) is matched to exactly one publish. */
#define SY_AMQP_SEQ_HEADER "x-sy-seq"
/* Headers of one publish: the caller's plus the sequence header. */
#define SY_AMQP_MAX_HEADERS 32

/* Connects to `url` (amqp://user:pass@host:port/vhost; an empty vhost means "/") and logs in
 * with frame_max 131072, the given heartbeat, and client properties naming the connection
 * `conn_name`. The URL's password is registered for log redaction and never appears in err.
 * On success *out owns the connection (amqp_destroy_connection). */
int sy_amqp_open(const char *url, const char *conn_name, int heartbeat_s, int timeout_ms,
                 amqp_connection_state_t *out, char *err, size_t errlen);

/* A library status (AMQP_STATUS_*) as an SY code: timeouts, socket and heartbeat failures
 * are -SY_ETIMEOUT / -SY_ECONN, the rest -SY_EPROTO or -SY_ENOMEM. */
int sy_amqp_status_err(int status);
/* An AMQP reply code (404, 406, 320, ...) as an SY code. */
int sy_amqp_code_err(int reply_code);

/* Answers a channel.close (channel ch) or connection.close (channel 0) method with its
 * close-ok and writes "what: <reply text>" into err. Returns -SY_ECONN for a connection.close
 * (the connection is gone, whatever the reason), else the SY code of the reply code. */
int sy_amqp_answer_close(amqp_connection_state_t c, amqp_channel_t ch, const amqp_method_t *m,
                         const char *what, char *err, size_t errlen);
/* The outcome of a synchronous method: 0, or the SY code with "what: why" in err. A server
 * close is answered (close-ok) first. */
int sy_amqp_reply_check(amqp_connection_state_t c, amqp_channel_t ch, amqp_rpc_reply_t r,
                        const char *what, char *err, size_t errlen);

/* Declares the topic exchange (durable) on channel ch. */
int sy_amqp_declare_exchange(amqp_connection_state_t c, amqp_channel_t ch, const char *exchange,
                             char *err, size_t errlen);
/* Declares worker w's quorum queues (work, one delay queue per retry step, dead letters) and
 * binds its work queue to each route on `exchange`. Idempotent. */
int sy_amqp_declare_worker(amqp_connection_state_t c, amqp_channel_t ch, const char *exchange,
                           const struct sy_topo_worker *w, char *err, size_t errlen);

/* Table entries pointing at the caller's strings (nothing is copied). */
void sy_amqp_entry_str(amqp_table_entry_t *e, const char *key, const char *val);
void sy_amqp_entry_int(amqp_table_entry_t *e, const char *key, int64_t v);
/* Fills entries[] from the public header list (at most max). -SY_ETOOBIG when they do not
 * fit, -SY_EINVAL for a NULL key or string. */
int sy_amqp_entries_from(const struct sy_header *h, size_t n, amqp_table_entry_t *entries,
                         size_t max);

/* Lookups in a received table: a string (longstr or bytes) or an integer of any width (a
 * numeric string is accepted too, as some tools send numbers as text). */
bool sy_amqp_table_str(const amqp_table_t *t, const char *key, amqp_bytes_t *out);
bool sy_amqp_table_int(const amqp_table_t *t, const char *key, int64_t *out);
/* The table as a JSON object: every field kind, nested tables and arrays (x-death), bytes
 * and non-UTF-8 strings as {"$bin": base64}, timestamps as integers (seconds), decimals as
 * reals. NULL on allocation failure. */
json_t *sy_amqp_table_to_json(const amqp_table_t *t);

#endif
