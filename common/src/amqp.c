/* amqp.c - AMQP connection helpers shared with the broker thread (amqp_int.h), and the
 * synchronous confirm-mode client of amqp.h used by tools and tests. */
#include "sy/amqp.h"

#include <amqp_tcp_socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp_int.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/msg.h"

#define PRODUCT          "switchyard"
#define TABLE_JSON_DEPTH 16
/* basic.get bodies are read into memory whole; larger ones are refused (the message stays). */
#define GET_MAX_BYTES (64u * 1024u * 1024u)
/* The sync client reads pending confirms every this many pipelined publishes, so the broker
 * never blocks writing acks to a client that only writes. */
#define DRAIN_EVERY 64

/* --- small helpers --------------------------------------------------------------------- */

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    return tv;
}

/* A library byte string as printf arguments ("%.*s"), safe when it is empty. */
#define BYTES_ARG(x) (int)(x).len, (x).bytes ? (const char *)(x).bytes : ""

static bool bytes_eq(amqp_bytes_t b, const char *s)
{
    size_t n = strlen(s);

    return b.len == n && (n == 0 || memcmp(b.bytes, s, n) == 0);
}

/* --- errors ------------------------------------------------------------------------------ */

int sy_amqp_status_err(int status)
{
    switch (status) {
    case AMQP_STATUS_OK:
        return 0;
    case AMQP_STATUS_NO_MEMORY:
        return -SY_ENOMEM;
    case AMQP_STATUS_TIMEOUT:
        return -SY_ETIMEOUT;
    case AMQP_STATUS_BAD_URL:
    case AMQP_STATUS_INVALID_PARAMETER:
        return -SY_EINVAL;
    case AMQP_STATUS_CONNECTION_CLOSED:
    case AMQP_STATUS_SOCKET_ERROR:
    case AMQP_STATUS_SOCKET_CLOSED:
    case AMQP_STATUS_SOCKET_INUSE:
    case AMQP_STATUS_HEARTBEAT_TIMEOUT:
    case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
    case AMQP_STATUS_TCP_ERROR:
    case AMQP_STATUS_TCP_SOCKETLIB_INIT_ERROR:
        return -SY_ECONN;
    default:
        return -SY_EPROTO;
    }
}

int sy_amqp_code_err(int reply_code)
{
    switch (reply_code) {
    case AMQP_REPLY_SUCCESS:
        return 0;
    case AMQP_CONTENT_TOO_LARGE:
        return -SY_ETOOBIG;
    case AMQP_NO_ROUTE:
    case AMQP_NO_CONSUMERS:
        return -SY_EUNROUTABLE;
    case AMQP_CONNECTION_FORCED:
        return -SY_ECONN;
    case AMQP_NOT_FOUND:
        return -SY_ENOTFOUND;
    case AMQP_RESOURCE_LOCKED:
    case AMQP_RESOURCE_ERROR:
        return -SY_EBUSY;
    case AMQP_INVALID_PATH:
    case AMQP_ACCESS_REFUSED:
    case AMQP_PRECONDITION_FAILED:
    case AMQP_NOT_ALLOWED:
        return -SY_ECONFIG;
    default:
        return -SY_EPROTO;
    }
}

int sy_amqp_answer_close(amqp_connection_state_t c, amqp_channel_t ch, const amqp_method_t *m,
                         const char *what, char *err, size_t errlen)
{
    uint16_t code = 0;
    amqp_bytes_t text = amqp_empty_bytes;

    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *cl = m->decoded;
        amqp_channel_close_ok_t ok = {0};

        code = cl->reply_code;
        text = cl->reply_text;
        amqp_send_method(c, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *cl = m->decoded;
        amqp_connection_close_ok_t ok = {0};

        code = cl->reply_code;
        text = cl->reply_text;
        amqp_send_method(c, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    } else {
        sy_errf(err, errlen, "%s: unexpected method 0x%08x", what, (unsigned)m->id);
        return -SY_EPROTO;
    }
    sy_errf(err, errlen, "%s: %s%.*s", what,
            m->id == AMQP_CONNECTION_CLOSE_METHOD ? "connection closed by the broker: " : "",
            (int)(text.len > 400 ? 400 : text.len), text.bytes ? (const char *)text.bytes : "");
    /* Whatever the broker's reason, a closed connection is a lost one for the caller. */
    if (m->id == AMQP_CONNECTION_CLOSE_METHOD || code == AMQP_REPLY_SUCCESS)
        return -SY_ECONN;
    return sy_amqp_code_err(code);
}

int sy_amqp_reply_check(amqp_connection_state_t c, amqp_channel_t ch, amqp_rpc_reply_t r,
                        const char *what, char *err, size_t errlen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        sy_errf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        return r.library_error ? sy_amqp_status_err(r.library_error) : -SY_EPROTO;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        return sy_amqp_answer_close(c, r.reply.id == AMQP_CONNECTION_CLOSE_METHOD ? 0 : ch,
                                    &r.reply, what, err, errlen);
    default:
        sy_errf(err, errlen, "%s: no reply", what);
        return -SY_EPROTO;
    }
}

/* --- tables ------------------------------------------------------------------------------ */

void sy_amqp_entry_str(amqp_table_entry_t *e, const char *key, const char *val)
{
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_UTF8;
    e->value.value.bytes = amqp_cstring_bytes(val);
}

void sy_amqp_entry_int(amqp_table_entry_t *e, const char *key, int64_t v)
{
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_I64;
    e->value.value.i64 = v;
}

static void entry_bool(amqp_table_entry_t *e, const char *key, bool v)
{
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e->value.value.boolean = v;
}

int sy_amqp_entries_from(const struct sy_header *h, size_t n, amqp_table_entry_t *entries,
                         size_t max)
{
    if (n > max)
        return -SY_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].key || (h[i].kind == SY_HDR_STR && !h[i].str))
            return -SY_EINVAL;
        if (h[i].kind == SY_HDR_STR)
            sy_amqp_entry_str(&entries[i], h[i].key, h[i].str);
        else
            sy_amqp_entry_int(&entries[i], h[i].key, h[i].i);
    }
    return 0;
}

static const amqp_field_value_t *table_find(const amqp_table_t *t, const char *key)
{
    for (int i = 0; t && i < t->num_entries; i++) {
        if (bytes_eq(t->entries[i].key, key))
            return &t->entries[i].value;
    }
    return NULL;
}

bool sy_amqp_table_str(const amqp_table_t *t, const char *key, amqp_bytes_t *out)
{
    const amqp_field_value_t *v = table_find(t, key);

    if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
        return false;
    *out = v->value.bytes;
    return true;
}

bool sy_amqp_table_int(const amqp_table_t *t, const char *key, int64_t *out)
{
    const amqp_field_value_t *v = table_find(t, key);

    if (!v)
        return false;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        *out = v->value.i8;
        return true;
    case AMQP_FIELD_KIND_U8:
        *out = v->value.u8;
        return true;
    case AMQP_FIELD_KIND_I16:
        *out = v->value.i16;
        return true;
    case AMQP_FIELD_KIND_U16:
        *out = v->value.u16;
        return true;
    case AMQP_FIELD_KIND_I32:
        *out = v->value.i32;
        return true;
    case AMQP_FIELD_KIND_U32:
        *out = v->value.u32;
        return true;
    case AMQP_FIELD_KIND_I64:
        *out = v->value.i64;
        return true;
    case AMQP_FIELD_KIND_U64:
        if (v->value.u64 > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->value.u64;
        return true;
    case AMQP_FIELD_KIND_UTF8: {
        char buf[24], *end = NULL;
        size_t n = v->value.bytes.len;

        if (n == 0 || n >= sizeof buf)
            return false;
        memcpy(buf, v->value.bytes.bytes, n);
        buf[n] = '\0';
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        if (errno || !end || *end != '\0')
            return false;
        *out = x;
        return true;
    }
    default:
        return false;
    }
}

static char *base64(const void *p, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        size_t rem = len - i;

        if (rem > 1)
            v |= (unsigned)s[i + 1] << 8;
        if (rem > 2)
            v |= s[i + 2];
        *o++ = tbl[(v >> 18) & 63];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = rem > 1 ? tbl[(v >> 6) & 63] : '=';
        *o++ = rem > 2 ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static json_t *bin_json(amqp_bytes_t b)
{
    char *enc = base64(b.bytes, b.len);
    json_t *v = enc ? json_pack("{s:s}", "$bin", enc) : NULL;

    free(enc);
    return v;
}

static json_t *table_json(const amqp_table_t *t, int depth);

static json_t *value_json(const amqp_field_value_t *v, int depth)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
        return json_boolean(v->value.boolean);
    case AMQP_FIELD_KIND_I8:
        return json_integer(v->value.i8);
    case AMQP_FIELD_KIND_U8:
        return json_integer(v->value.u8);
    case AMQP_FIELD_KIND_I16:
        return json_integer(v->value.i16);
    case AMQP_FIELD_KIND_U16:
        return json_integer(v->value.u16);
    case AMQP_FIELD_KIND_I32:
        return json_integer(v->value.i32);
    case AMQP_FIELD_KIND_U32:
        return json_integer(v->value.u32);
    case AMQP_FIELD_KIND_I64:
        return json_integer(v->value.i64);
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        if (v->value.u64 > (uint64_t)INT64_MAX)
            return json_real((double)v->value.u64);
        return json_integer((json_int_t)v->value.u64);
    case AMQP_FIELD_KIND_F32:
        return json_real(v->value.f32);
    case AMQP_FIELD_KIND_F64:
        return json_real(v->value.f64);
    case AMQP_FIELD_KIND_DECIMAL: {
        double x = (double)v->value.decimal.value;

        for (unsigned i = 0; i < v->value.decimal.decimals && i < 32; i++)
            x /= 10.0;
        return json_real(x);
    }
    case AMQP_FIELD_KIND_UTF8: {
        json_t *s =
            json_stringn(v->value.bytes.bytes ? v->value.bytes.bytes : "", v->value.bytes.len);

        return s ? s : bin_json(v->value.bytes); /* not UTF-8 after all */
    }
    case AMQP_FIELD_KIND_BYTES:
        return bin_json(v->value.bytes);
    case AMQP_FIELD_KIND_ARRAY: {
        json_t *a = json_array();

        if (!a || depth >= TABLE_JSON_DEPTH)
            return a;
        for (int i = 0; i < v->value.array.num_entries; i++) {
            if (json_array_append_new(a, value_json(&v->value.array.entries[i], depth + 1))) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case AMQP_FIELD_KIND_TABLE:
        return table_json(&v->value.table, depth + 1);
    case AMQP_FIELD_KIND_VOID:
    default:
        return json_null();
    }
}

static json_t *table_json(const amqp_table_t *t, int depth)
{
    json_t *o = json_object();

    if (!o || depth >= TABLE_JSON_DEPTH)
        return o;
    for (int i = 0; t && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        json_t *v = value_json(&e->value, depth);

        if (!v) {
            json_decref(o);
            return NULL;
        }
        /* A key that is not UTF-8 is dropped rather than failing the whole table. */
        json_object_setn_new(o, e->key.bytes ? e->key.bytes : "", e->key.len, v);
    }
    return o;
}

json_t *sy_amqp_table_to_json(const amqp_table_t *t)
{
    return table_json(t, 0);
}

/* --- connecting ----------------------------------------------------------------------------- */

int sy_amqp_open(const char *url, const char *conn_name, int heartbeat_s, int timeout_ms,
                 amqp_connection_state_t *out, char *err, size_t errlen)
{
    struct amqp_connection_info ci;
    amqp_connection_state_t c = NULL;
    amqp_socket_t *sock;
    char *copy = NULL;
    struct timeval tv = ms_to_tv(timeout_ms > 0 ? timeout_ms : SY_AMQP_CONNECT_TIMEOUT_MS);
    struct timeval rpc = ms_to_tv(SY_AMQP_RPC_TIMEOUT_MS);
    amqp_table_entry_t caps[4], props[3];
    amqp_table_t caps_table = {.num_entries = 4, .entries = caps};
    amqp_table_t props_table = {.num_entries = 3, .entries = props};
    int rc, st;

    *out = NULL;
    if (!url) {
        sy_errf(err, errlen, "no AMQP URL");
        return -SY_EINVAL;
    }
    copy = strdup(url); /* amqp_parse_url writes into its input */
    if (!copy) {
        sy_errf(err, errlen, "%s", sy_strerror(-SY_ENOMEM));
        return -SY_ENOMEM;
    }
    /* Never echo the URL: it carries the password. */
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        sy_errf(err, errlen, "invalid AMQP URL (expected amqp://user:password@host:port/vhost)");
        rc = -SY_ECONFIG;
        goto out;
    }
    if (ci.password && *ci.password)
        sy_log_add_secret(ci.password);
    if (ci.ssl) {
        sy_errf(err, errlen, "amqps:// is not supported; use amqp://");
        rc = -SY_ECONFIG;
        goto out;
    }

    c = amqp_new_connection();
    sock = c ? amqp_tcp_socket_new(c) : NULL;
    if (!sock) {
        sy_errf(err, errlen, "%s", sy_strerror(-SY_ENOMEM));
        rc = -SY_ENOMEM;
        goto out;
    }
    amqp_set_handshake_timeout(c, &tv);
    amqp_set_rpc_timeout(c, &rpc);
    st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        sy_errf(err, errlen, "connect %s:%d: %s", ci.host, ci.port, amqp_error_string2(st));
        rc = sy_amqp_status_err(st);
        if (rc == -SY_EPROTO)
            rc = -SY_ECONN;
        goto out;
    }

    entry_bool(&caps[0], "publisher_confirms", true);
    entry_bool(&caps[1], "consumer_cancel_notify", true);
    entry_bool(&caps[2], "connection.blocked", true);
    entry_bool(&caps[3], "basic.nack", true);
    sy_amqp_entry_str(&props[0], "connection_name", conn_name ? conn_name : PRODUCT);
    sy_amqp_entry_str(&props[1], "product", PRODUCT);
    props[2].key = amqp_cstring_bytes("capabilities");
    props[2].value.kind = AMQP_FIELD_KIND_TABLE;
    props[2].value.value.table = caps_table;

    rc = sy_amqp_reply_check(
        c, 0,
        amqp_login_with_properties(c, ci.vhost && *ci.vhost ? ci.vhost : "/", 0, SY_AMQP_FRAME_MAX,
                                   heartbeat_s > 0 ? heartbeat_s : 0, &props_table,
                                   AMQP_SASL_METHOD_PLAIN, ci.user, ci.password ? ci.password : ""),
        "login", err, errlen);
    if (rc != 0) {
        if (rc == -SY_EPROTO)
            rc = -SY_ECONN;
        goto out;
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (c)
        amqp_destroy_connection(c);
    free(copy);
    return rc;
}

/* --- topology -------------------------------------------------------------------------------- */

int sy_amqp_declare_exchange(amqp_connection_state_t c, amqp_channel_t ch, const char *exchange,
                             char *err, size_t errlen)
{
    char what[300];

    amqp_exchange_declare(c, ch, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, 1, 0,
                          0, amqp_empty_table);
    snprintf(what, sizeof what, "exchange.declare %s", exchange);
    return sy_amqp_reply_check(c, ch, amqp_get_rpc_reply(c), what, err, errlen);
}

static int declare_queue(amqp_connection_state_t c, amqp_channel_t ch, const char *queue,
                         amqp_table_entry_t *args, int nargs, char *err, size_t errlen)
{
    amqp_table_t t = {.num_entries = nargs, .entries = args};
    char what[300];

    amqp_queue_declare(c, ch, amqp_cstring_bytes(queue), 0, 1, 0, 0, t);
    snprintf(what, sizeof what, "queue.declare %s", queue);
    return sy_amqp_reply_check(c, ch, amqp_get_rpc_reply(c), what, err, errlen);
}

int sy_amqp_declare_worker(amqp_connection_state_t c, amqp_channel_t ch, const char *exchange,
                           const struct sy_topo_worker *w, char *err, size_t errlen)
{
    char work[256], dead[256], retry[256], what[600];
    amqp_table_entry_t args[6];
    int rc;

    if (sy_topo_queue_name(w, work, sizeof work) != 0 ||
        sy_topo_dead_name(w, dead, sizeof dead) != 0) {
        sy_errf(err, errlen, "worker name too long");
        return -SY_ETOOBIG;
    }

    /* Dead letters: kept until someone looks at them; nothing dead-letters out of here. */
    sy_amqp_entry_str(&args[0], "x-queue-type", "quorum");
    if ((rc = declare_queue(c, ch, dead, args, 1, err, errlen)) != 0)
        return rc;

    /* Delay queues: messages carry their own expiration, so these arguments never depend on
     * the ladder. Expired messages go back to the work queue only (at-least-once, which the
     * broker only does with reject-publish overflow). */
    sy_amqp_entry_str(&args[1], "x-dead-letter-exchange", "");
    sy_amqp_entry_str(&args[2], "x-dead-letter-routing-key", work);
    sy_amqp_entry_str(&args[3], "x-dead-letter-strategy", "at-least-once");
    sy_amqp_entry_str(&args[4], "x-overflow", "reject-publish");
    for (size_t i = 0; i < w->ndelays; i++) {
        if (sy_topo_retry_name(w, i, retry, sizeof retry) != 0) {
            sy_errf(err, errlen, "worker name too long");
            return -SY_ETOOBIG;
        }
        if ((rc = declare_queue(c, ch, retry, args, 5, err, errlen)) != 0)
            return rc;
    }

    /* The work queue: what exceeds the delivery limit (a message that keeps killing its
     * worker) and broker-side rejects go to the dead-letter queue. */
    sy_amqp_entry_str(&args[2], "x-dead-letter-routing-key", dead);
    sy_amqp_entry_int(&args[5], "x-delivery-limit", w->delivery_limit);
    if ((rc = declare_queue(c, ch, work, args, 6, err, errlen)) != 0)
        return rc;

    for (size_t i = 0; i < w->nroutes; i++) {
        amqp_queue_bind(c, ch, amqp_cstring_bytes(work), amqp_cstring_bytes(exchange),
                        amqp_cstring_bytes(w->routes[i]), amqp_empty_table);
        snprintf(what, sizeof what, "queue.bind %s %s %s", work, exchange, w->routes[i]);
        if ((rc = sy_amqp_reply_check(c, ch, amqp_get_rpc_reply(c), what, err, errlen)) != 0)
            return rc;
    }
    return 0;
}

/* --- the synchronous client ---------------------------------------------------------------- */

enum { SEQ_DONE = 0, SEQ_PENDING, SEQ_RETURNED };

struct sy_amqp {
    amqp_connection_state_t conn;
    amqp_channel_t ch;
    bool chan_open;
    bool dead;           /* the connection is gone: every call fails with -SY_ECONN */
    uint64_t chan_epoch; /* bumped when the channel is reopened: older delivery tags are void */
    /* Unconfirmed publishes: state of each sequence number in [base, next_seq), in a ring. */
    uint64_t next_seq, base;
    uint8_t *ring;
    size_t ring_cap;   /* power of two */
    int nowait_err;    /* first failure of a pipelined publish since the last wait */
    uint64_t sync_seq; /* the publish sy_amqp_publish waits for (0: none) */
    int sync_result;
    bool sync_done;
    unsigned since_drain; /* publishes since incoming frames were last read */
    char err[512];
};

/* basic.get messages carry the channel epoch they were taken on. */
struct got_msg {
    struct sy_amqp_msg pub;
    uint64_t epoch;
};

static void resolve_one(struct sy_amqp *a, uint64_t seq, int result)
{
    uint8_t *st = &a->ring[seq & (a->ring_cap - 1)];

    if (*st == SEQ_DONE)
        return;
    if (result == 0 && *st == SEQ_RETURNED)
        result = -SY_EUNROUTABLE;
    *st = SEQ_DONE;
    if (seq == a->sync_seq) {
        a->sync_result = result;
        a->sync_done = true;
    } else if (result != 0 && a->nowait_err == 0) {
        a->nowait_err = result;
    }
}

static void advance_base(struct sy_amqp *a)
{
    while (a->base < a->next_seq && a->ring[a->base & (a->ring_cap - 1)] == SEQ_DONE)
        a->base++;
}

/* A basic.ack or basic.nack from the broker: `tag` alone, or everything up to it. */
static void on_confirm(struct sy_amqp *a, uint64_t tag, bool multiple, int result)
{
    if (tag >= a->next_seq || tag < a->base)
        return;
    if (multiple) {
        for (uint64_t s = a->base; s <= tag; s++)
            resolve_one(a, s, result);
    } else {
        resolve_one(a, tag, result);
    }
    advance_base(a);
}

static void fail_pending(struct sy_amqp *a, int result)
{
    for (uint64_t s = a->base; s < a->next_seq; s++)
        resolve_one(a, s, result);
    a->base = a->next_seq;
}

/* The channel is gone (closed by the broker or the connection lost). */
static int lose_channel(struct sy_amqp *a, int rc, bool connection)
{
    fail_pending(a, rc);
    a->chan_open = false;
    if (connection)
        a->dead = true;
    return rc;
}

static int ring_reserve(struct sy_amqp *a)
{
    size_t used = (size_t)(a->next_seq - a->base);
    uint8_t *nr;
    size_t cap;

    if (used < a->ring_cap)
        return 0;
    cap = a->ring_cap ? a->ring_cap * 2 : 1024;
    nr = calloc(cap, 1);
    if (!nr)
        return -SY_ENOMEM;
    for (uint64_t s = a->base; s < a->next_seq; s++)
        nr[s & (cap - 1)] = a->ring[s & (a->ring_cap - 1)];
    free(a->ring);
    a->ring = nr;
    a->ring_cap = cap;
    return 0;
}

/* Waits for the next frame until deadline (monotonic ms; 0 = poll once). 0, -SY_ETIMEOUT, or
 * -SY_ECONN when the connection is gone. */
static int next_frame(struct sy_amqp *a, int64_t deadline, amqp_frame_t *f)
{
    int64_t left = deadline > 0 ? deadline - sy_mono_ms() : 0;
    struct timeval tv = ms_to_tv(left > 0 ? (int)(left > 3600000 ? 3600000 : left) : 0);
    int st = amqp_simple_wait_frame_noblock(a->conn, f, &tv);

    if (st == AMQP_STATUS_OK)
        return 0;
    if (st == AMQP_STATUS_TIMEOUT)
        return -SY_ETIMEOUT;
    sy_errf(a->err, sizeof a->err, "connection lost: %s", amqp_error_string2(st));
    return lose_channel(a, -SY_ECONN, true);
}

static int handle_frame(struct sy_amqp *a, const amqp_frame_t *f);

/* Reads the content (header and body frames) that follows a basic.return or basic.get-ok on
 * our channel. The header's headers table is handed to `on_header`; the body is copied into
 * *body when wanted (NULL: skipped) and must be at most max bytes. */
static int read_content(struct sy_amqp *a, size_t max,
                        void (*on_header)(void *, const amqp_basic_properties_t *), void *ud,
                        void **body, size_t *len)
{
    int64_t deadline = sy_mono_ms() + SY_AMQP_RPC_TIMEOUT_MS;
    uint64_t size = 0, got = 0;
    char *buf = NULL;
    amqp_frame_t f;
    int rc;

    /* Frames queued while the method's reply was awaited (confirms, an earlier return with
     * its own content) come first: they are handled on the way. */
    for (;;) {
        rc = next_frame(a, deadline, &f);
        if (rc != 0)
            goto fail;
        if (f.frame_type == AMQP_FRAME_HEARTBEAT)
            continue;
        if (f.frame_type != AMQP_FRAME_METHOD)
            break;
        if ((rc = handle_frame(a, &f)) != 0)
            goto fail;
    }
    if (f.channel != a->ch || f.frame_type != AMQP_FRAME_HEADER) {
        sy_errf(a->err, sizeof a->err, "expected a content header, got frame type %d",
                f.frame_type);
        rc = -SY_EPROTO;
        goto fail;
    }
    size = f.payload.properties.body_size;
    if (on_header)
        on_header(ud, f.payload.properties.decoded);
    if (body) {
        if (size > max) {
            sy_errf(a->err, sizeof a->err, "message body of %llu bytes exceeds %zu",
                    (unsigned long long)size, max);
            rc = -SY_ETOOBIG;
            body = NULL; /* still read (and drop) the frames to keep the stream in step */
        } else {
            buf = malloc(size ? size : 1);
            if (!buf) {
                rc = -SY_ENOMEM;
                body = NULL;
            }
        }
    }
    while (got < size) {
        int r = next_frame(a, deadline, &f);

        if (r != 0) {
            rc = r;
            goto fail;
        }
        if (f.frame_type == AMQP_FRAME_HEARTBEAT)
            continue;
        if (f.channel != a->ch || f.frame_type != AMQP_FRAME_BODY ||
            f.payload.body_fragment.len > size - got) {
            sy_errf(a->err, sizeof a->err, "malformed message body frames");
            rc = -SY_EPROTO;
            goto fail;
        }
        if (buf && body)
            memcpy(buf + got, f.payload.body_fragment.bytes, f.payload.body_fragment.len);
        got += f.payload.body_fragment.len;
    }
    if (rc != 0)
        goto fail;
    if (body) {
        *body = buf;
        *len = (size_t)size;
        buf = NULL;
    }
    return 0;
fail:
    free(buf);
    if (rc == -SY_EPROTO)
        return lose_channel(a, rc, true);
    return rc;
}

static void on_return_header(void *ud, const amqp_basic_properties_t *p)
{
    int64_t *seq = ud;

    if (p && (p->_flags & AMQP_BASIC_HEADERS_FLAG))
        sy_amqp_table_int(&p->headers, SY_AMQP_SEQ_HEADER, seq);
}

/* Handles one frame that is not the reply of a synchronous method. Returns 0, or the error
 * that closed the channel or connection. */
static int handle_frame(struct sy_amqp *a, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0; /* heartbeats; stray content cannot happen outside read_content */
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *m = f->payload.method.decoded;

        on_confirm(a, m->delivery_tag, m->multiple, 0);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *m = f->payload.method.decoded;

        sy_errf(a->err, sizeof a->err, "the broker refused a message (basic.nack)");
        on_confirm(a, m->delivery_tag, m->multiple, -SY_ENACK);
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *m = f->payload.method.decoded;
        int64_t seq = 0;
        int rc;

        sy_errf(a->err, sizeof a->err, "returned: %.*s (exchange '%.*s', routing key '%.*s')",
                BYTES_ARG(m->reply_text), BYTES_ARG(m->exchange), BYTES_ARG(m->routing_key));
        rc = read_content(a, 0, on_return_header, &seq, NULL, NULL);
        if (rc != 0)
            return rc;
        /* The confirm (an ack) follows; the mark turns it into -SY_EUNROUTABLE. */
        if (seq >= (int64_t)a->base && (uint64_t)seq < a->next_seq &&
            a->ring[(uint64_t)seq & (a->ring_cap - 1)] == SEQ_PENDING)
            a->ring[(uint64_t)seq & (a->ring_cap - 1)] = SEQ_RETURNED;
        return 0;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        int rc = sy_amqp_answer_close(a->conn, f->channel, &f->payload.method, "channel closed",
                                      a->err, sizeof a->err);
        return lose_channel(a, rc, false);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        int rc = sy_amqp_answer_close(a->conn, 0, &f->payload.method, "connection closed", a->err,
                                      sizeof a->err);
        return lose_channel(a, rc, true);
    }
    default:
        return 0;
    }
}

/* Reads whatever already arrived (confirms, returns, closes) without blocking. */
static int drain(struct sy_amqp *a)
{
    amqp_frame_t f;
    int rc;

    a->since_drain = 0;
    for (;;) {
        if (a->dead)
            return -SY_ECONN;
        rc = next_frame(a, 0, &f);
        if (rc == -SY_ETIMEOUT)
            break;
        if (rc != 0)
            return rc;
        if ((rc = handle_frame(a, &f)) != 0)
            return rc;
    }
    if (!amqp_frames_enqueued(a->conn))
        amqp_maybe_release_buffers(a->conn);
    return 0;
}

/* Opens the channel in confirm mode if it is not open (first use, or after the broker closed
 * it). */
static int ensure_channel(struct sy_amqp *a)
{
    int rc;

    if (a->dead) {
        return -SY_ECONN;
    }
    if (a->chan_open)
        return 0;
    amqp_channel_open(a->conn, a->ch);
    rc = sy_amqp_reply_check(a->conn, a->ch, amqp_get_rpc_reply(a->conn), "channel.open", a->err,
                             sizeof a->err);
    if (rc == 0) {
        amqp_confirm_select(a->conn, a->ch);
        rc = sy_amqp_reply_check(a->conn, a->ch, amqp_get_rpc_reply(a->conn), "confirm.select",
                                 a->err, sizeof a->err);
    }
    if (rc != 0) {
        if (rc == -SY_ECONN || rc == -SY_ETIMEOUT || rc == -SY_EPROTO)
            a->dead = true;
        return rc;
    }
    a->chan_open = true;
    a->chan_epoch++;
    a->next_seq = a->base = 1;
    return 0;
}

/* After a synchronous method: its failure closed the channel or the connection. */
static int rpc_done(struct sy_amqp *a, amqp_rpc_reply_t r, const char *what)
{
    int rc = sy_amqp_reply_check(a->conn, a->ch, r, what, a->err, sizeof a->err);

    if (rc == 0)
        return drain(a);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION)
        return lose_channel(a, rc, r.reply.id == AMQP_CONNECTION_CLOSE_METHOD);
    /* A library failure (timeout, socket) leaves the connection unusable. */
    return lose_channel(a, rc == -SY_ETIMEOUT ? -SY_ETIMEOUT : -SY_ECONN, true);
}

struct sy_amqp *sy_amqp_connect(const char *url, const char *conn_name, int heartbeat_s, char *err,
                                size_t errlen)
{
    struct sy_amqp *a = calloc(1, sizeof *a);

    if (!a) {
        sy_errf(err, errlen, "%s", sy_strerror(-SY_ENOMEM));
        return NULL;
    }
    a->ch = 1;
    if (sy_amqp_open(url, conn_name, heartbeat_s, SY_AMQP_CONNECT_TIMEOUT_MS, &a->conn, err,
                     errlen) != 0)
        goto fail;
    if (ensure_channel(a) != 0) {
        sy_errf(err, errlen, "%s", a->err);
        goto fail;
    }
    return a;
fail:
    sy_amqp_destroy(a);
    return NULL;
}

void sy_amqp_destroy(struct sy_amqp *a)
{
    if (!a)
        return;
    if (a->conn) {
        if (!a->dead) {
            struct timeval tv = ms_to_tv(2000);

            amqp_set_rpc_timeout(a->conn, &tv);
            amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(a->conn);
    }
    free(a->ring);
    free(a);
}

const char *sy_amqp_error(const struct sy_amqp *a)
{
    return a ? a->err : "no connection";
}

int sy_amqp_declare(struct sy_amqp *a, const struct sy_topology *t, const char *worker)
{
    int rc;

    if ((rc = ensure_channel(a)) != 0)
        return rc;
    if (worker && !sy_topology_worker(t, worker)) {
        sy_errf(a->err, sizeof a->err, "no worker '%s' in the topology", worker);
        return -SY_ENOTFOUND;
    }
    rc = sy_amqp_declare_exchange(a->conn, a->ch, t->exchange, a->err, sizeof a->err);
    for (size_t i = 0; rc == 0 && i < t->nworkers; i++) {
        if (worker && strcmp(worker, t->workers[i].name) != 0)
            continue;
        rc = sy_amqp_declare_worker(a->conn, a->ch, t->exchange, &t->workers[i], a->err,
                                    sizeof a->err);
    }
    if (rc != 0) {
        /* The failing method's reply was already answered; the channel or connection is
         * gone with it unless the library itself failed. */
        bool conn_gone = rc == -SY_ECONN || rc == -SY_ETIMEOUT || rc == -SY_EPROTO;

        return lose_channel(a, rc, conn_gone);
    }
    return drain(a);
}

/* Sends one publish on the confirm channel and records its sequence number. */
static int send_publish(struct sy_amqp *a, const struct sy_publish *p, uint64_t *seq_out)
{
    amqp_table_entry_t entries[SY_AMQP_MAX_HEADERS + 1];
    amqp_basic_properties_t props = {0};
    uint64_t seq;
    int rc, st;

    if (!p || !p->routing_key || (!p->body && p->len)) {
        sy_errf(a->err, sizeof a->err, "publish: missing routing key or body");
        return -SY_EINVAL;
    }
    if ((rc = ensure_channel(a)) != 0)
        return rc;
    if (++a->since_drain >= DRAIN_EVERY && (rc = drain(a)) != 0)
        return rc;
    if ((rc = ensure_channel(a)) != 0) /* the drain may have seen the channel closed */
        return rc;
    if ((rc = ring_reserve(a)) != 0)
        return rc;
    rc = sy_amqp_entries_from(p->headers, p->nheaders, entries, SY_AMQP_MAX_HEADERS);
    if (rc != 0) {
        sy_errf(a->err, sizeof a->err, "publish: bad or too many headers");
        return rc;
    }
    seq = a->next_seq;
    sy_amqp_entry_int(&entries[p->nheaders], SY_AMQP_SEQ_HEADER, (int64_t)seq);

    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.delivery_mode = 2; /* persistent */
    props.headers.num_entries = (int)p->nheaders + 1;
    props.headers.entries = entries;
    if (p->message_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(p->message_id);
    }
    if (p->type) {
        props._flags |= AMQP_BASIC_TYPE_FLAG;
        props.type = amqp_cstring_bytes(p->type);
    }
    if (p->expiration) {
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = amqp_cstring_bytes(p->expiration);
    }
    st = amqp_basic_publish(a->conn, a->ch, amqp_cstring_bytes(p->exchange ? p->exchange : ""),
                            amqp_cstring_bytes(p->routing_key), 1, 0, &props,
                            (amqp_bytes_t){.len = p->len, .bytes = (void *)p->body});
    if (st != AMQP_STATUS_OK) {
        sy_errf(a->err, sizeof a->err, "publish: %s", amqp_error_string2(st));
        return lose_channel(a, -SY_ECONN, true);
    }
    a->ring[seq & (a->ring_cap - 1)] = SEQ_PENDING;
    a->next_seq++;
    *seq_out = seq;
    return 0;
}

int sy_amqp_publish_nowait(struct sy_amqp *a, const struct sy_publish *p)
{
    uint64_t seq;

    return send_publish(a, p, &seq);
}

int sy_amqp_publish(struct sy_amqp *a, const struct sy_publish *p, int timeout_ms)
{
    int64_t deadline = sy_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    uint64_t seq;
    amqp_frame_t f;
    int rc = send_publish(a, p, &seq);

    if (rc != 0)
        return rc;
    a->sync_seq = seq;
    a->sync_done = false;
    while (!a->sync_done) {
        rc = next_frame(a, deadline, &f);
        if (rc == 0)
            rc = handle_frame(a, &f);
        if (rc != 0 && !a->sync_done) {
            if (rc == -SY_ETIMEOUT)
                sy_errf(a->err, sizeof a->err, "no confirm within %d ms", timeout_ms);
            a->sync_seq = 0;
            return rc;
        }
    }
    a->sync_seq = 0;
    return a->sync_result;
}

int sy_amqp_wait_confirms(struct sy_amqp *a, int timeout_ms)
{
    int64_t deadline = sy_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    amqp_frame_t f;
    int rc;

    while (a->base < a->next_seq) {
        rc = next_frame(a, deadline, &f);
        if (rc == 0)
            rc = handle_frame(a, &f);
        if (rc == -SY_ETIMEOUT) {
            sy_errf(a->err, sizeof a->err, "%llu publishes unconfirmed after %d ms",
                    (unsigned long long)(a->next_seq - a->base), timeout_ms);
            return rc;
        }
        if (rc != 0)
            break; /* the channel or connection died: pending publishes were failed */
    }
    rc = a->nowait_err;
    a->nowait_err = 0;
    return rc;
}

int sy_amqp_queue_info(struct sy_amqp *a, const char *queue, uint32_t *messages,
                       uint32_t *consumers)
{
    amqp_queue_declare_ok_t *ok;
    char what[300];
    int rc;

    if ((rc = ensure_channel(a)) != 0)
        return rc;
    ok =
        amqp_queue_declare(a->conn, a->ch, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    snprintf(what, sizeof what, "queue %s", queue);
    if (ok) {
        if (messages)
            *messages = ok->message_count;
        if (consumers)
            *consumers = ok->consumer_count;
    }
    return rpc_done(a, amqp_get_rpc_reply(a->conn), what);
}

int sy_amqp_queue_purge(struct sy_amqp *a, const char *queue, uint32_t *purged)
{
    amqp_queue_purge_ok_t *ok;
    char what[300];
    int rc;

    if ((rc = ensure_channel(a)) != 0)
        return rc;
    ok = amqp_queue_purge(a->conn, a->ch, amqp_cstring_bytes(queue));
    if (ok && purged)
        *purged = ok->message_count;
    snprintf(what, sizeof what, "queue.purge %s", queue);
    return rpc_done(a, amqp_get_rpc_reply(a->conn), what);
}

int sy_amqp_queue_delete(struct sy_amqp *a, const char *queue)
{
    char what[300];
    int rc;

    if ((rc = ensure_channel(a)) != 0)
        return rc;
    amqp_queue_delete(a->conn, a->ch, amqp_cstring_bytes(queue), 0, 0);
    snprintf(what, sizeof what, "queue.delete %s", queue);
    return rpc_done(a, amqp_get_rpc_reply(a->conn), what);
}

static char *bytes_dup(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);

    if (s) {
        if (b.len)
            memcpy(s, b.bytes, b.len);
        s[b.len] = '\0';
    }
    return s;
}

struct get_header {
    struct sy_amqp_msg *m;
    bool nomem;
};

static void on_get_header(void *ud, const amqp_basic_properties_t *p)
{
    struct get_header *g = ud;

    if (p && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)) {
        g->m->message_id = bytes_dup(p->message_id);
        g->nomem |= !g->m->message_id;
    }
    g->m->headers =
        sy_amqp_table_to_json(p && (p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : NULL);
    g->nomem |= !g->m->headers;
}

int sy_amqp_get(struct sy_amqp *a, const char *queue, struct sy_amqp_msg **out)
{
    struct got_msg *g = NULL;
    struct get_header gh;
    amqp_rpc_reply_t r;
    char what[300];
    int rc;

    *out = NULL;
    if ((rc = ensure_channel(a)) != 0)
        return rc;
    snprintf(what, sizeof what, "basic.get %s", queue);
    r = amqp_basic_get(a->conn, a->ch, amqp_cstring_bytes(queue), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return rpc_done(a, r, what);
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
        sy_errf(a->err, sizeof a->err, "%s: queue is empty", what);
        rc = drain(a);
        return rc ? rc : -SY_ENOTFOUND;
    }
    const amqp_basic_get_ok_t *ok = r.reply.decoded;
    g = calloc(1, sizeof *g);
    if (!g) {
        rc = -SY_ENOMEM;
        goto out;
    }
    g->epoch = a->chan_epoch;
    g->pub.delivery_tag = ok->delivery_tag;
    g->pub.redelivered = ok->redelivered;
    g->pub.routing_key = bytes_dup(ok->routing_key);
    g->pub.exchange = bytes_dup(ok->exchange);
    gh.m = &g->pub;
    gh.nomem = !g->pub.routing_key || !g->pub.exchange;
    rc = read_content(a, GET_MAX_BYTES, on_get_header, &gh, &g->pub.body, &g->pub.len);
    if (rc == 0 && gh.nomem)
        rc = -SY_ENOMEM;
    if (rc == 0)
        rc = drain(a);
out:
    if (rc != 0) {
        /* A message we cannot return to the caller goes back to its queue. */
        if (g && !a->dead && a->chan_open)
            amqp_basic_reject(a->conn, a->ch, g->pub.delivery_tag, 1);
        sy_amqp_msg_free(g ? &g->pub : NULL);
        return rc;
    }
    *out = &g->pub;
    return 0;
}

int sy_amqp_settle(struct sy_amqp *a, const struct sy_amqp_msg *m, int ack, int requeue)
{
    const struct got_msg *g = (const struct got_msg *)m;
    int st;

    if (a->dead)
        return -SY_ECONN;
    if (!a->chan_open || g->epoch != a->chan_epoch) {
        sy_errf(a->err, sizeof a->err,
                "the channel this message came from was closed; it went back to its queue");
        return -SY_ECONN;
    }
    if (ack)
        st = amqp_basic_ack(a->conn, a->ch, m->delivery_tag, 0);
    else
        st = amqp_basic_reject(a->conn, a->ch, m->delivery_tag, requeue ? 1 : 0);
    if (st != AMQP_STATUS_OK) {
        sy_errf(a->err, sizeof a->err, "settle: %s", amqp_error_string2(st));
        return lose_channel(a, -SY_ECONN, true);
    }
    return drain(a);
}

void sy_amqp_msg_free(struct sy_amqp_msg *m)
{
    if (!m)
        return;
    free(m->routing_key);
    free(m->exchange);
    free(m->message_id);
    free(m->body);
    json_decref(m->headers);
    free((struct got_msg *)m);
}
