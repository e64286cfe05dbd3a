/* broker.c - a worker's broker (see broker_int.h).
 *
 * rabbitmq-c is not thread-safe and has no heartbeat thread of its own, so exactly one thread
 * (io_main) ever calls into it. It poll()s the socket and an eventfd, and reads frames without
 * blocking; calling into the library at least every TICK_MS is also what keeps heartbeats
 * flowing while handlers run for minutes. Handler threads only see deliveries copied into one
 * malloc'd block each; they hand them back through a lock-free completion stack and wake the
 * I/O thread only for what cannot wait. Acks are multiple-acks over a window of delivery tags,
 * coalesced, because on a quorum queue every ack is a replicated log entry; retries and dead
 * letters are published on a second, confirm-mode channel and the original is settled only
 * once the broker confirmed the copy.
 *
 * Wake-ups are what a fast worker spends its CPU on (measured: a no-op handler on a 2-core
 * machine spent half its time switching threads), hence the batching knobs below. */
#include "broker_int.h"

#include <amqp.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "amqp_int.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/msg.h"
#include "sy/schema.h"
#include "sy/topology.h"
#include "sy/worker.h"

#define CH_CONSUME       1
#define CH_PUBLISH       2
#define FRAMES_PER_ROUND 512  /* then completions get their turn */
#define TICK_MS          250  /* longest sleep: the library is called at least this often */
#define CLOSE_TIMEOUT_MS 2000 /* connection.close at shutdown */
#define BACKOFF_FIRST_MS 100
#define REASON_MAX       1024
#define HDR_STR_MAX      255 /* x-sy-routing-key / x-sy-exchange values taken from headers */
#define ATTEMPTS_MAX     1000000
#define BATCH_CAP        10000
#define SHARE_MAX        32    /* deliveries a single-message handler thread takes at once */
#define FAST_CALL_NS     50000 /* handler calls quicker than this on average are "quick" */
#define SPILL_AFTER_MS   50    /* see spill_due() */
#define COALESCE_MIN     1     /* deliveries in a round that mark a steady stream */
#define COALESCE_US      250   /* then gather the next round this long (see io_run) */
#define VERDICT_RETURN   100   /* internal: taken by a handler thread but never started */
#define ACK_DELAY_MS     10    /* longest wait before a verdict's ack goes out */

/* One delivery, copied out of the library's frames into a single block: the struct, then the
 * body, then the strings. Owned by whoever holds it: the hand-off queue, a handler thread,
 * the completion stack, or an outstanding retry/dead-letter publish. */
struct delivery {
    struct delivery *next;
    uint64_t tag;
    uint64_t gen;     /* connection generation it came from; its tag means nothing in others */
    unsigned attempt; /* x-sy-attempts + 1 */
    int verdict;
    char *reason;                             /* malloc'd; only for RETRY and REJECT */
    long long retry_after_ms;                 /* the handler's floor for the next attempt */
    const char *msg_id, *type, *content_type; /* NULL when absent */
    const char *rk, *ex; /* the routing key and exchange it was first published with */
    unsigned char *body;
    size_t len;
    char data[];
};

/* Delivery tags not yet acked on the wire, ascending; SETTLED ones wait for a multiple ack. */
enum { SLOT_PENDING, SLOT_SETTLED };
struct slot {
    uint64_t tag;
    uint8_t state;
};
struct window {
    struct slot *s;
    size_t head, n, cap;
    size_t settled;
};

/* Publishes on the confirm channel waiting for their confirm, ascending by sequence number. */
enum { OUT_RETRY, OUT_DEAD, OUT_USER, OUT_DONE };
struct outpub {
    uint64_t seq;
    uint8_t kind;
    bool returned;
    void *ptr; /* struct delivery (RETRY, DEAD) or struct pub_req (USER) */
};
struct outq {
    struct outpub *o;
    size_t head, n, cap;
};

/* Content being assembled on one channel (method, header, body frames). */
struct assembly {
    int phase; /* 0: idle, 1: want header, 2: want body */
    bool is_return;
    bool skip; /* read the body but keep nothing */
    bool too_big;
    uint64_t tag;
    uint64_t size, got;
    struct delivery *d;
    char rk[256], ex[256];
};

/* A handler's publish, handed to the I/O thread. Freed by whoever drops the last reference:
 * the waiting caller (which may give up on timeout) or the I/O thread. */
struct pub_req {
    struct pub_req *next;
    pthread_cond_t cv;
    int refs;
    bool done, abandoned;
    int result;
    struct sy_publish p;
    void *body;
    char strs[];
};

struct hthread {
    struct sy_broker *b;
    pthread_t tid;
    unsigned index;
    bool started;
    int init_rc;
    bool init_done;
};

struct sy_broker {
    struct sy_broker_opts o;
    char queue[256];
    char dead_queue[256];
    char conn_name[320];

    /* Handler threads and the hand-off queue (I/O thread -> handlers). */
    struct hthread *threads;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;    /* deliveries queued, or stop */
    pthread_cond_t idle_cv; /* busy dropped to 0 */
    pthread_cond_t start_cv;
    struct delivery *q_head, *q_tail;
    size_t q_len;
    unsigned q_waiters, started;
    atomic_uint busy; /* handler threads holding deliveries (incremented under q_mu) */
    atomic_uint_fast64_t avg_call_ns;
    bool q_stop;

    /* Completions (handlers -> I/O thread) and wake-ups. */
    _Atomic(struct delivery *) done_head;
    atomic_uint done_pending; /* completions pushed since the I/O thread last took them */
    unsigned wake_batch;      /* ACK completions that are worth waking the I/O thread for */
    atomic_int armed;         /* the I/O thread is (about to be) asleep in poll */
    int efd;

    /* Handler publishes. */
    pthread_mutex_t pub_mu;
    struct pub_req *pub_head, *pub_tail;
    atomic_int pub_pending;
    bool io_done; /* under pub_mu: no more requests are taken */

    /* Shutdown. */
    atomic_int stop_req;
    int64_t stop_deadline; /* monotonic ms; written before stop_req */

    /* Readiness, for the health thread (`consuming`: connected, for a publishing-only worker);
     * `connected` also gates handler publishes. */
    bool publish_only; /* the handler runs its own loop: no consumer, no handler threads */
    atomic_int consuming;
    atomic_int connected;
    pthread_mutex_t status_mu;
    char status[300];

    /* Everything below belongs to the I/O thread. */
    pthread_t io_tid;
    bool io_started;
    amqp_connection_state_t conn;
    uint64_t gen;
    bool lost;
    char lost_why[300];
    bool cancel_sent, cancel_ok, blocked;
    char consumer_tag[256];
    uint64_t next_pub_seq;
    struct window win;
    size_t ack_batch;   /* settled tags that trigger a multiple ack at once */
    int64_t ack_due;    /* when the oldest unacked verdict must be acked (0: none) */
    uint64_t block_tag; /* the pending tag that holds settled ones above it, since when */
    int64_t block_since;
    struct outq out;
    struct assembly asm1, asm2;
    struct delivery *fresh_head, *fresh_tail; /* assembled this round, not yet handed over */
    size_t fresh_n;
    uint64_t rng;
    long long in_flight;
    long long stop_in_flight; /* in flight when the grace ran out */

    /* Counts for the worker.stop line (I/O thread only, read after it ended). */
    uint64_t n_consumed, n_acked, n_retried, n_dead, n_published, n_reconnects;

    struct sy_counter *m_consumed, *m_acked, *m_retried, *m_dead, *m_published, *m_reconnects;
    struct sy_gauge *m_in_flight;
    struct sy_histogram *m_handler;
};

/* --- small helpers ------------------------------------------------------------------------- */

static void set_status(struct sy_broker *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_status(struct sy_broker *b, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&b->status_mu);
    va_start(ap, fmt);
    vsnprintf(b->status, sizeof b->status, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&b->status_mu);
}

/* The connection is unusable: the run loop tears it down and reconnects. */
static void mark_lost(struct sy_broker *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mark_lost(struct sy_broker *b, const char *fmt, ...)
{
    va_list ap;

    if (b->lost)
        return;
    b->lost = true;
    va_start(ap, fmt);
    vsnprintf(b->lost_why, sizeof b->lost_why, fmt, ap);
    va_end(ap);
}

static void lib_failed(struct sy_broker *b, const char *what, int status)
{
    mark_lost(b, "%s: %s", what, amqp_error_string2(status));
}

/* xorshift64*: the I/O thread's own generator for retry jitter. */
static double rand_unit(struct sy_broker *b)
{
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (double)((b->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void wake_io(struct sy_broker *b)
{
    uint64_t one = 1;

    if (atomic_exchange(&b->armed, 0) && write(b->efd, &one, sizeof one) < 0) {
        /* A full eventfd counter still wakes the poll: nothing to do. */
    }
}

static void wake_io_always(struct sy_broker *b)
{
    uint64_t one = 1;

    atomic_store(&b->armed, 0);
    if (write(b->efd, &one, sizeof one) < 0) {
        /* see wake_io */
    }
}

/* A library byte string as printf arguments ("%.*s"), safe when it is empty. */
#define BYTES_ARG(x) (int)(x).len, (x).bytes ? (const char *)(x).bytes : ""

/* Copies a short string from the library (always NUL-terminated, cut to fit). */
static void bytes_to(char *dst, size_t sz, amqp_bytes_t src)
{
    size_t n = src.len < sz - 1 ? src.len : sz - 1;

    if (n)
        memcpy(dst, src.bytes, n);
    dst[n] = '\0';
}

static void delivery_free(struct delivery *d)
{
    if (d) {
        free(d->reason);
        free(d);
    }
}

/* Whether handler calls are quick: an average (EWMA) under FAST_CALL_NS. */
static bool handlers_fast(struct sy_broker *b)
{
    return atomic_load_explicit(&b->avg_call_ns, memory_order_relaxed) < FAST_CALL_NS;
}

static void note_call(struct sy_broker *b, double seconds)
{
    uint_fast64_t ns = (uint_fast64_t)(seconds * 1e9), avg;

    avg = atomic_load_explicit(&b->avg_call_ns, memory_order_relaxed);
    avg = avg - avg / 8 + ns / 8; /* racy on purpose: a rough average is all it needs */
    atomic_store_explicit(&b->avg_call_ns, avg, memory_order_relaxed);
}

static const char *verdict_reason(const struct delivery *d)
{
    return d->reason ? d->reason : "";
}

/* --- the tag window ------------------------------------------------------------------------ */

static int win_push(struct window *w, uint64_t tag)
{
    if (w->head + w->n == w->cap) {
        if (w->head > 0) {
            memmove(w->s, w->s + w->head, w->n * sizeof *w->s);
            w->head = 0;
        } else {
            size_t cap = w->cap ? w->cap * 2 : 256;
            struct slot *s = realloc(w->s, cap * sizeof *s);

            if (!s)
                return -SY_ENOMEM;
            w->s = s;
            w->cap = cap;
        }
    }
    w->s[w->head + w->n] = (struct slot){.tag = tag, .state = SLOT_PENDING};
    w->n++;
    return 0;
}

static size_t win_find(const struct window *w, uint64_t tag)
{
    size_t lo = w->head, hi = w->head + w->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (w->s[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->head + w->n && w->s[lo].tag == tag ? lo : SIZE_MAX;
}

static void win_settle(struct window *w, uint64_t tag)
{
    size_t i = win_find(w, tag);

    if (i != SIZE_MAX && w->s[i].state == SLOT_PENDING) {
        w->s[i].state = SLOT_SETTLED;
        w->settled++;
    }
}

/* For a tag settled on the wire on its own (nack, single ack). */
static void win_remove(struct window *w, uint64_t tag)
{
    size_t i = win_find(w, tag);

    if (i == SIZE_MAX)
        return;
    if (w->s[i].state == SLOT_SETTLED)
        w->settled--;
    memmove(w->s + i, w->s + i + 1, (w->head + w->n - i - 1) * sizeof *w->s);
    w->n--;
    if (w->n == 0)
        w->head = 0;
}

/* --- outstanding publishes --------------------------------------------------------------- */

static int out_push(struct outq *q, uint64_t seq, int kind, void *ptr)
{
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->o, q->o + q->head, q->n * sizeof *q->o);
            q->head = 0;
        } else {
            size_t cap = q->cap ? q->cap * 2 : 256;
            struct outpub *o = realloc(q->o, cap * sizeof *o);

            if (!o)
                return -SY_ENOMEM;
            q->o = o;
            q->cap = cap;
        }
    }
    q->o[q->head + q->n] = (struct outpub){.seq = seq, .kind = (uint8_t)kind, .ptr = ptr};
    q->n++;
    return 0;
}

static struct outpub *out_find(struct outq *q, uint64_t seq)
{
    size_t lo = q->head, hi = q->head + q->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (q->o[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < q->head + q->n && q->o[lo].seq == seq ? &q->o[lo] : NULL;
}

/* --- publish requests ---------------------------------------------------------------------- */

/* Drops one reference; call with pub_mu held. */
static void req_release(struct pub_req *r)
{
    if (--r->refs == 0) {
        pthread_cond_destroy(&r->cv);
        free(r->body);
        free(r);
    }
}

static void req_resolve(struct sy_broker *b, struct pub_req *r, int result)
{
    pthread_mutex_lock(&b->pub_mu);
    if (!r->done) {
        r->done = true;
        r->result = result;
        pthread_cond_signal(&r->cv);
    }
    req_release(r);
    pthread_mutex_unlock(&b->pub_mu);
}

/* --- sending ---------------------------------------------------------------------------------- */

/* Sends one message on the confirm channel (mandatory, persistent) with the sequence header
 * added to `entries` (which must have room for one more). Returns its sequence number, or 0
 * when the connection failed. */
static uint64_t send_confirmed(struct sy_broker *b, const char *exchange, const char *rk,
                               const char *msg_id, const char *type, const char *content_type,
                               const char *expiration, amqp_table_entry_t *entries, int n,
                               const void *body, size_t len)
{
    amqp_basic_properties_t props = {0};
    uint64_t seq = b->next_pub_seq;
    int st;

    sy_amqp_entry_int(&entries[n], SY_AMQP_SEQ_HEADER, (int64_t)seq);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.delivery_mode = 2;
    props.headers.num_entries = n + 1;
    props.headers.entries = entries;
    if (msg_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(msg_id);
    }
    if (type) {
        props._flags |= AMQP_BASIC_TYPE_FLAG;
        props.type = amqp_cstring_bytes(type);
    }
    if (content_type) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(content_type);
    }
    if (expiration) {
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = amqp_cstring_bytes(expiration);
    }
    st = amqp_basic_publish(b->conn, CH_PUBLISH, amqp_cstring_bytes(exchange),
                            amqp_cstring_bytes(rk), 1, 0, &props,
                            (amqp_bytes_t){.len = len, .bytes = (void *)body});
    if (st != AMQP_STATUS_OK) {
        lib_failed(b, "basic.publish", st);
        return 0;
    }
    b->next_pub_seq++;
    return seq;
}

static void send_ack(struct sy_broker *b, uint64_t tag, bool multiple)
{
    int st = amqp_basic_ack(b->conn, CH_CONSUME, tag, multiple);

    if (st != AMQP_STATUS_OK)
        lib_failed(b, "basic.ack", st);
}

/* Gives a delivery back to its queue (the broker counts it towards the delivery limit). */
static void send_requeue(struct sy_broker *b, uint64_t tag)
{
    int st = amqp_basic_nack(b->conn, CH_CONSUME, tag, 0, 1);

    if (st != AMQP_STATUS_OK)
        lib_failed(b, "basic.nack", st);
}

static void rfc3339_now(char *buf, size_t sz)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n > 0 && n < sz)
        snprintf(buf + n, sz - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Parks d in a delay queue; it comes back to this worker's queue when its expiration passes. */
static void publish_retry(struct sy_broker *b, struct delivery *d, unsigned next)
{
    const struct sy_topo_worker *tw = b->o.tw;
    amqp_table_entry_t e[5];
    char queue[256], expiration[32], reason[REASON_MAX + 1];
    size_t step = 0;
    long long delay = sy_topo_retry_delay_min(tw, next, d->retry_after_ms, rand_unit(b), &step);
    uint64_t seq;

    sy_topo_retry_name(tw, step, queue, sizeof queue);
    snprintf(expiration, sizeof expiration, "%lld", delay);
    sy_log_redact(verdict_reason(d), reason, sizeof reason);
    sy_amqp_entry_int(&e[0], "x-sy-attempts", d->attempt);
    sy_amqp_entry_str(&e[1], "x-sy-reason", reason);
    sy_amqp_entry_str(&e[2], "x-sy-routing-key", d->rk);
    sy_amqp_entry_str(&e[3], "x-sy-exchange", d->ex);
    seq = send_confirmed(b, "", queue, d->msg_id, d->type, d->content_type, expiration, e, 4,
                         d->body, d->len);
    if (seq == 0 || out_push(&b->out, seq, OUT_RETRY, d) != 0) {
        if (seq != 0)
            mark_lost(b, "out of memory tracking a publish");
        delivery_free(d);
        b->in_flight--;
        return;
    }
    sy_log_set_msg(d->msg_id, d->type);
    sy_log_debug("msg.retry", "attempt %u failed, back in %lld ms: %s", d->attempt, delay, reason);
    sy_log_set_msg(NULL, NULL);
}

/* Moves d to the dead-letter queue with headers saying why, when, where and how often. */
static void publish_dead(struct sy_broker *b, struct delivery *d)
{
    amqp_table_entry_t e[8];
    char reason[REASON_MAX + 1], dead_at[40];
    uint64_t seq;

    sy_log_redact(verdict_reason(d), reason, sizeof reason);
    rfc3339_now(dead_at, sizeof dead_at);
    sy_amqp_entry_str(&e[0], "x-sy-reason", reason);
    sy_amqp_entry_int(&e[1], "x-sy-attempts", d->attempt);
    sy_amqp_entry_str(&e[2], "x-sy-worker", b->o.tw->name);
    sy_amqp_entry_str(&e[3], "x-sy-instance", b->o.instance);
    sy_amqp_entry_str(&e[4], "x-sy-dead-at", dead_at);
    sy_amqp_entry_str(&e[5], "x-sy-routing-key", d->rk);
    sy_amqp_entry_str(&e[6], "x-sy-exchange", d->ex);
    seq = send_confirmed(b, "", b->dead_queue, d->msg_id, d->type, d->content_type, NULL, e, 7,
                         d->body, d->len);
    if (seq == 0 || out_push(&b->out, seq, OUT_DEAD, d) != 0) {
        if (seq != 0)
            mark_lost(b, "out of memory tracking a publish");
        delivery_free(d);
        b->in_flight--;
        return;
    }
    sy_log_set_msg(d->msg_id, d->type);
    sy_log_warn("msg.dead", "dead-lettered after %u attempt(s): %s", d->attempt, reason);
    sy_log_set_msg(NULL, NULL);
}

/* --- confirms ------------------------------------------------------------------------------- */

static void resolve_out(struct sy_broker *b, struct outpub *e, bool nacked)
{
    bool ok = !nacked && !e->returned;

    switch (e->kind) {
    case OUT_RETRY:
    case OUT_DEAD: {
        struct delivery *d = e->ptr;

        if (ok) {
            /* The copy is safe with the broker: now the original may go. */
            win_settle(&b->win, d->tag);
            if (e->kind == OUT_RETRY)
                b->n_retried++;
            else
                b->n_dead++;
        } else {
            sy_log_set_msg(d->msg_id, d->type);
            sy_log_warn("msg.park_failed",
                        "the broker %s the %s copy; the message goes back to "
                        "its queue",
                        e->returned ? "returned" : "refused",
                        e->kind == OUT_RETRY ? "retry" : "dead-letter");
            sy_log_set_msg(NULL, NULL);
            send_requeue(b, d->tag);
            win_remove(&b->win, d->tag);
        }
        delivery_free(d);
        b->in_flight--;
        break;
    }
    case OUT_USER:
        if (ok)
            b->n_published++;
        req_resolve(b, e->ptr, ok ? 0 : e->returned ? -SY_EUNROUTABLE : -SY_ENACK);
        break;
    default:
        break;
    }
    e->kind = OUT_DONE;
}

static void on_confirm(struct sy_broker *b, uint64_t tag, bool multiple, bool nacked)
{
    struct outq *q = &b->out;

    if (multiple) {
        while (q->n > 0 && q->o[q->head].seq <= tag) {
            resolve_out(b, &q->o[q->head], nacked);
            q->head++;
            q->n--;
        }
    } else {
        struct outpub *e = out_find(q, tag);

        if (e)
            resolve_out(b, e, nacked);
        while (q->n > 0 && q->o[q->head].kind == OUT_DONE) {
            q->head++;
            q->n--;
        }
    }
    if (q->n == 0)
        q->head = 0;
}

/* --- acks ----------------------------------------------------------------------------------- */

/* Whether the settled tags stuck above the lowest pending one should be acked singly now:
 * only once that same tag has blocked them for SPILL_AFTER_MS, so that a handler thread that
 * was merely descheduled for a moment does not turn one multiple-ack into hundreds of single
 * ones (each a replicated log entry on a quorum queue). */
static bool spill_due(struct sy_broker *b, int64_t now)
{
    uint64_t tag = b->win.s[b->win.head].tag;

    if (tag != b->block_tag) {
        b->block_tag = tag;
        b->block_since = now;
        return false;
    }
    return now - b->block_since >= SPILL_AFTER_MS;
}

/* One multiple-ack up to the highest tag below which everything is settled; settled tags
 * stuck above a slow one are acked singly once they are more than half the window. On a
 * quorum queue every ack is a replicated log entry, so acks are also coalesced: the multiple
 * ack goes out once a quarter of the window is settled, ACK_DELAY_MS after the oldest
 * unacked verdict, or at once when `force` (draining). */
static void flush_acks(struct sy_broker *b, int64_t now, bool force)
{
    struct window *w = &b->win;
    size_t i = w->head, end = w->head + w->n;
    bool sent = false;

    if (w->settled == 0) {
        b->ack_due = 0;
        return;
    }
    if (b->ack_due == 0)
        b->ack_due = now + ACK_DELAY_MS;
    while (i < end && w->s[i].state == SLOT_SETTLED)
        i++;
    if (i > w->head && (force || now >= b->ack_due || i - w->head >= b->ack_batch)) {
        send_ack(b, w->s[i - 1].tag, true);
        w->settled -= i - w->head;
        w->n -= i - w->head;
        w->head = w->n ? i : 0;
        sent = true;
    }
    if (w->settled > 0 && w->settled > b->o.prefetch / 2 && spill_due(b, now)) {
        size_t keep = w->head;

        end = w->head + w->n;
        for (size_t j = w->head; j < end; j++) {
            if (w->s[j].state == SLOT_SETTLED)
                send_ack(b, w->s[j].tag, false);
            else
                w->s[keep++] = w->s[j];
        }
        w->n = keep - w->head;
        w->settled = 0;
        if (w->n == 0)
            w->head = 0;
        sent = true;
    }
    if (w->settled == 0)
        b->ack_due = 0;
    else if (sent)
        b->ack_due = now + ACK_DELAY_MS;
}

/* --- completions ----------------------------------------------------------------------------- */

static void process_completions(struct sy_broker *b)
{
    struct delivery *list, *rev = NULL;

    atomic_store(&b->done_pending, 0);
    list = atomic_exchange(&b->done_head, NULL);
    const struct sy_topo_worker *tw = b->o.tw;

    while (list) { /* the stack is LIFO: restore completion order */
        struct delivery *next = list->next;

        list->next = rev;
        rev = list;
        list = next;
    }
    for (struct delivery *d = rev, *next; d; d = next) {
        next = d->next;
        d->next = NULL;
        if (d->gen != b->gen || !b->conn || b->lost) {
            /* Its connection is gone, and the broker already put it back in the queue. */
            delivery_free(d);
            b->in_flight--;
            continue;
        }
        if (d->verdict == VERDICT_RETURN) {
            send_requeue(b, d->tag);
            win_remove(&b->win, d->tag);
            delivery_free(d);
            b->in_flight--;
        } else if (d->verdict == SY_ACK) {
            win_settle(&b->win, d->tag);
            b->n_acked++;
            delivery_free(d);
            b->in_flight--;
        } else if (d->verdict == SY_RETRY && d->attempt + 1 <= tw->max_attempts) {
            publish_retry(b, d, d->attempt + 1);
        } else {
            if (d->verdict == SY_RETRY) {
                char *r = NULL;

                if (asprintf(&r, "attempts exhausted (%u): %s", tw->max_attempts,
                             verdict_reason(d)) >= 0) {
                    free(d->reason);
                    d->reason = r;
                }
            }
            publish_dead(b, d);
        }
    }
}

/* --- handler publishes ----------------------------------------------------------------------- */

static void process_pub_requests(struct sy_broker *b)
{
    struct pub_req *list;

    if (!atomic_load(&b->pub_pending))
        return;
    pthread_mutex_lock(&b->pub_mu);
    atomic_store(&b->pub_pending, 0);
    list = b->pub_head;
    b->pub_head = b->pub_tail = NULL;
    pthread_mutex_unlock(&b->pub_mu);

    for (struct pub_req *r = list, *next; r; r = next) {
        amqp_table_entry_t e[1];
        bool abandoned;
        uint64_t seq;

        next = r->next;
        r->next = NULL;
        pthread_mutex_lock(&b->pub_mu);
        abandoned = r->abandoned;
        if (abandoned)
            req_release(r);
        pthread_mutex_unlock(&b->pub_mu);
        if (abandoned)
            continue;
        if (!b->conn || b->lost) {
            req_resolve(b, r, -SY_ECONN);
            continue;
        }
        seq = send_confirmed(b, r->p.exchange, r->p.routing_key, r->p.message_id, r->p.type,
                             "application/msgpack", r->p.expiration, e, 0, r->body, r->p.len);
        if (seq == 0 || out_push(&b->out, seq, OUT_USER, r) != 0) {
            if (seq != 0)
                mark_lost(b, "out of memory tracking a publish");
            req_resolve(b, r, -SY_ECONN);
        }
    }
}

/* Fails every request still queued (not connected, or the broker is going away). */
static void fail_pub_requests(struct sy_broker *b, int result, bool final)
{
    struct pub_req *list;

    pthread_mutex_lock(&b->pub_mu);
    atomic_store(&b->pub_pending, 0);
    list = b->pub_head;
    b->pub_head = b->pub_tail = NULL;
    if (final)
        b->io_done = true;
    for (struct pub_req *r = list, *next; r; r = next) {
        next = r->next;
        if (!r->done) {
            r->done = true;
            r->result = result;
            pthread_cond_signal(&r->cv);
        }
        req_release(r);
    }
    pthread_mutex_unlock(&b->pub_mu);
}

int sy_broker_publish(struct sy_broker *b, const struct sy_publish *p, int timeout_ms)
{
    size_t lex, lrk, lid, lty, lexp;
    struct pub_req *r;
    char *s;
    int64_t deadline = sy_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    struct timespec abs = sy_cond_at(deadline);
    int result;

    if (!p || !p->routing_key || (!p->body && p->len) || p->nheaders)
        return -SY_EINVAL;
    lex = p->exchange ? strlen(p->exchange) + 1 : 1;
    lrk = strlen(p->routing_key) + 1;
    lid = p->message_id ? strlen(p->message_id) + 1 : 0;
    lty = p->type ? strlen(p->type) + 1 : 0;
    lexp = p->expiration ? strlen(p->expiration) + 1 : 0;
    r = calloc(1, sizeof *r + lex + lrk + lid + lty + lexp);
    if (!r)
        return -SY_ENOMEM;
    r->body = malloc(p->len ? p->len : 1);
    if (!r->body || sy_cond_init(&r->cv) != 0) {
        free(r->body);
        free(r);
        return -SY_ENOMEM;
    }
    if (p->len)
        memcpy(r->body, p->body, p->len);
    s = r->strs;
    r->p.exchange = memcpy(s, p->exchange ? p->exchange : "", lex);
    s += lex;
    r->p.routing_key = memcpy(s, p->routing_key, lrk);
    s += lrk;
    if (lid) {
        r->p.message_id = memcpy(s, p->message_id, lid);
        s += lid;
    }
    if (lty) {
        r->p.type = memcpy(s, p->type, lty);
        s += lty;
    }
    if (lexp)
        r->p.expiration = memcpy(s, p->expiration, lexp);
    r->p.len = p->len;
    r->refs = 2;

    pthread_mutex_lock(&b->pub_mu);
    if (b->io_done || !atomic_load(&b->connected)) {
        /* Not connected (or gone): fail now rather than wait for a connection. */
        bool done = b->io_done;

        r->refs = 1;
        req_release(r);
        pthread_mutex_unlock(&b->pub_mu);
        return done ? -SY_ESHUTDOWN : -SY_ECONN;
    }
    if (b->pub_tail)
        b->pub_tail->next = r;
    else
        b->pub_head = r;
    b->pub_tail = r;
    atomic_store(&b->pub_pending, 1);
    wake_io(b);
    while (!r->done) {
        if (pthread_cond_timedwait(&r->cv, &b->pub_mu, &abs) == ETIMEDOUT && !r->done) {
            r->abandoned = true;
            break;
        }
    }
    result = r->done ? r->result : -SY_ETIMEOUT;
    req_release(r);
    pthread_mutex_unlock(&b->pub_mu);
    return result;
}

/* --- frames ---------------------------------------------------------------------------------- */

/* Copies a delivery whose content header just arrived into one block. NULL on ENOMEM. */
static struct delivery *delivery_new(struct sy_broker *b, const struct assembly *a,
                                     const amqp_basic_properties_t *p, size_t size)
{
    amqp_bytes_t mid = {0}, type = {0}, ct = {0}, hrk = {0}, hex = {0};
    bool has_mid = p && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG);
    bool has_type = p && (p->_flags & AMQP_BASIC_TYPE_FLAG);
    bool has_ct = p && (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    const amqp_table_t *h = p && (p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : NULL;
    int64_t attempts = 0;
    size_t lrk, lex, total;
    struct delivery *d;
    char *s;

    if (has_mid)
        mid = p->message_id;
    if (has_type)
        type = p->type;
    if (has_ct)
        ct = p->content_type;
    /* A message back from a delay queue carries where it was first published. */
    if (!sy_amqp_table_str(h, "x-sy-routing-key", &hrk) || hrk.len > HDR_STR_MAX)
        hrk = amqp_cstring_bytes(a->rk);
    if (!sy_amqp_table_str(h, "x-sy-exchange", &hex) || hex.len > HDR_STR_MAX)
        hex = amqp_cstring_bytes(a->ex);
    if (!sy_amqp_table_int(h, "x-sy-attempts", &attempts) || attempts < 0)
        attempts = 0;
    if (attempts > ATTEMPTS_MAX)
        attempts = ATTEMPTS_MAX;
    lrk = hrk.len + 1;
    lex = hex.len + 1;
    total = sizeof *d + size + lrk + lex + (has_mid ? mid.len + 1 : 0) +
            (has_type ? type.len + 1 : 0) + (has_ct ? ct.len + 1 : 0);
    d = malloc(total);
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    d->tag = a->tag;
    d->gen = b->gen;
    d->attempt = (unsigned)attempts + 1;
    d->body = (unsigned char *)d->data;
    d->len = size;
    s = d->data + size;
#define COPY_STR(field, src)                                                                       \
    do {                                                                                           \
        if ((src).len)                                                                             \
            memcpy(s, (src).bytes, (src).len);                                                     \
        s[(src).len] = '\0';                                                                       \
        (field) = s;                                                                               \
        s += (src).len + 1;                                                                        \
    } while (0)
    COPY_STR(d->rk, hrk);
    COPY_STR(d->ex, hex);
    if (has_mid)
        COPY_STR(d->msg_id, mid);
    if (has_type)
        COPY_STR(d->type, type);
    if (has_ct)
        COPY_STR(d->content_type, ct);
#undef COPY_STR
    return d;
}

/* The last frame of a delivery arrived: queue it for the handlers (at the end of the round). */
static void delivery_complete(struct sy_broker *b, struct assembly *a)
{
    struct delivery *d = a->d;
    int st;

    a->d = NULL;
    a->phase = 0;
    if (a->skip) {
        if (a->too_big) {
            /* Nothing can handle it: the queue's own dead-lettering keeps it, with x-death. */
            sy_log_warn("msg.too_big", "a %llu-byte message exceeds %u bytes: rejected to %s",
                        (unsigned long long)a->size, SY_MSG_MAX_BYTES, b->dead_queue);
            st = amqp_basic_reject(b->conn, CH_CONSUME, a->tag, 0);
            if (st != AMQP_STATUS_OK)
                lib_failed(b, "basic.reject", st);
        } else {
            sy_log_error("msg.nomem", "no memory for a %llu-byte message: returned to the queue",
                         (unsigned long long)a->size);
            send_requeue(b, a->tag);
        }
        b->n_consumed++;
        return;
    }
    b->n_consumed++;
    if (b->cancel_sent) {
        /* Shutting down: whatever arrives now goes straight back. */
        send_requeue(b, d->tag);
        delivery_free(d);
        return;
    }
    if (win_push(&b->win, d->tag) != 0) {
        send_requeue(b, d->tag);
        delivery_free(d);
        return;
    }
    b->in_flight++;
    if (b->fresh_tail)
        b->fresh_tail->next = d;
    else
        b->fresh_head = d;
    b->fresh_tail = d;
    b->fresh_n++;
}

static void on_consume_channel(struct sy_broker *b, const amqp_frame_t *f)
{
    struct assembly *a = &b->asm1;

    if (f->frame_type == AMQP_FRAME_METHOD) {
        switch (f->payload.method.id) {
        case AMQP_BASIC_DELIVER_METHOD: {
            const amqp_basic_deliver_t *m = f->payload.method.decoded;

            if (a->phase != 0) {
                mark_lost(b, "protocol: basic.deliver inside another delivery");
                return;
            }
            a->tag = m->delivery_tag;
            bytes_to(a->rk, sizeof a->rk, m->routing_key);
            bytes_to(a->ex, sizeof a->ex, m->exchange);
            a->phase = 1;
            return;
        }
        case AMQP_BASIC_CANCEL_OK_METHOD:
            b->cancel_ok = true;
            return;
        case AMQP_BASIC_CANCEL_METHOD:
            /* The broker cancelled us (queue deleted, node down): start over. */
            mark_lost(b, "the broker cancelled the consumer of %s", b->queue);
            return;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            char why[300];

            sy_amqp_answer_close(b->conn, CH_CONSUME, &f->payload.method, "consume channel", why,
                                 sizeof why);
            mark_lost(b, "%s", why);
            return;
        }
        default:
            return;
        }
    }
    if (f->frame_type == AMQP_FRAME_HEADER) {
        uint64_t size = f->payload.properties.body_size;

        if (a->phase != 1) {
            mark_lost(b, "protocol: content header without a delivery");
            return;
        }
        a->size = size;
        a->got = 0;
        a->skip = a->too_big = false;
        a->d = NULL;
        if (size > SY_MSG_MAX_BYTES) {
            a->skip = a->too_big = true;
        } else {
            a->d = delivery_new(b, a, f->payload.properties.decoded, (size_t)size);
            a->skip = !a->d;
        }
        a->phase = 2;
        if (size == 0)
            delivery_complete(b, a);
        return;
    }
    if (f->frame_type == AMQP_FRAME_BODY) {
        size_t n = f->payload.body_fragment.len;

        if (a->phase != 2 || n > a->size - a->got) {
            mark_lost(b, "protocol: unexpected body frame");
            return;
        }
        if (a->d)
            memcpy(a->d->body + a->got, f->payload.body_fragment.bytes, n);
        a->got += n;
        if (a->got == a->size)
            delivery_complete(b, a);
    }
}

static void on_publish_channel(struct sy_broker *b, const amqp_frame_t *f)
{
    struct assembly *a = &b->asm2;

    if (f->frame_type == AMQP_FRAME_METHOD) {
        switch (f->payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *m = f->payload.method.decoded;

            on_confirm(b, m->delivery_tag, m->multiple, false);
            return;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *m = f->payload.method.decoded;

            on_confirm(b, m->delivery_tag, m->multiple, true);
            return;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            const amqp_basic_return_t *m = f->payload.method.decoded;

            if (a->phase != 0) {
                mark_lost(b, "protocol: basic.return inside another return");
                return;
            }
            sy_log_warn("amqp.returned",
                        "a publish to '%.*s' with routing key '%.*s' was "
                        "returned: %.*s",
                        BYTES_ARG(m->exchange), BYTES_ARG(m->routing_key),
                        BYTES_ARG(m->reply_text));
            a->phase = 1;
            return;
        }
        case AMQP_CHANNEL_CLOSE_METHOD: {
            char why[300];

            sy_amqp_answer_close(b->conn, CH_PUBLISH, &f->payload.method, "publish channel", why,
                                 sizeof why);
            mark_lost(b, "%s", why);
            return;
        }
        default:
            return;
        }
    }
    if (f->frame_type == AMQP_FRAME_HEADER) {
        const amqp_basic_properties_t *p = f->payload.properties.decoded;
        int64_t seq = 0;

        if (a->phase != 1) {
            mark_lost(b, "protocol: content header without a return");
            return;
        }
        if (p && (p->_flags & AMQP_BASIC_HEADERS_FLAG) &&
            sy_amqp_table_int(&p->headers, SY_AMQP_SEQ_HEADER, &seq) && seq > 0) {
            struct outpub *e = out_find(&b->out, (uint64_t)seq);

            if (e)
                e->returned = true; /* its confirm (an ack) follows */
        }
        a->size = f->payload.properties.body_size;
        a->got = 0;
        a->phase = a->size ? 2 : 0;
        return;
    }
    if (f->frame_type == AMQP_FRAME_BODY) {
        if (a->phase != 2) {
            mark_lost(b, "protocol: unexpected body frame");
            return;
        }
        a->got += f->payload.body_fragment.len;
        if (a->got >= a->size)
            a->phase = 0;
    }
}

static void on_frame(struct sy_broker *b, const amqp_frame_t *f)
{
    switch (f->channel) {
    case CH_CONSUME:
        on_consume_channel(b, f);
        return;
    case CH_PUBLISH:
        on_publish_channel(b, f);
        return;
    case 0:
        if (f->frame_type != AMQP_FRAME_METHOD)
            return;
        switch (f->payload.method.id) {
        case AMQP_CONNECTION_CLOSE_METHOD: {
            char why[300];

            sy_amqp_answer_close(b->conn, 0, &f->payload.method, "amqp", why, sizeof why);
            mark_lost(b, "%s", why);
            return;
        }
        case AMQP_CONNECTION_BLOCKED_METHOD: {
            const amqp_connection_blocked_t *m = f->payload.method.decoded;

            b->blocked = true;
            sy_log_warn("amqp.blocked", "the broker blocks publishing: %.*s", BYTES_ARG(m->reason));
            return;
        }
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            if (b->blocked)
                sy_log_info("amqp.unblocked", "the broker accepts publishes again");
            b->blocked = false;
            return;
        default:
            return;
        }
    default:
        return;
    }
}

/* Everything needed was copied out of the frames, so the library's pools can be reused. */
static void release_buffers(struct sy_broker *b)
{
    if (!b->lost && !amqp_frames_enqueued(b->conn))
        amqp_maybe_release_buffers(b->conn);
}

/* Reads what the library has buffered and what the socket holds, without blocking. Sets
 * *more when it stopped with frames left (its budget was used up). */
static void pump_frames(struct sy_broker *b, bool *more)
{
    struct timeval zero = {0, 0};
    amqp_frame_t f;
    int i, st;

    *more = false;
    for (i = 0; i < FRAMES_PER_ROUND && !b->lost; i++) {
        st = amqp_simple_wait_frame_noblock(b->conn, &f, &zero);
        if (st == AMQP_STATUS_TIMEOUT)
            break;
        if (st != AMQP_STATUS_OK) {
            lib_failed(b, "read", st);
            return;
        }
        on_frame(b, &f);
        /* What one read brought in is used up: stop here rather than pay for a read (and a
         * poll) that would find nothing yet; the next round or the poll picks up the rest. */
        if (!amqp_frames_enqueued(b->conn) && !amqp_data_in_buffer(b->conn))
            return release_buffers(b);
    }
    if (i == FRAMES_PER_ROUND)
        *more = true;
    release_buffers(b);
}

/* Hands the deliveries assembled this round to the handler threads, under one lock. */
static void hand_over(struct sy_broker *b)
{
    size_t n = b->fresh_n;

    if (n == 0)
        return;
    pthread_mutex_lock(&b->q_mu);
    if (b->q_tail)
        b->q_tail->next = b->fresh_head;
    else
        b->q_head = b->fresh_head;
    b->q_tail = b->fresh_tail;
    b->q_len += n;
    /* Wake as many idle handlers as there is work for: one per delivery when handler calls
     * are slow, one per share when they are quick (a wake-up costs more than the call). */
    size_t wake = handlers_fast(b) ? (n + SHARE_MAX - 1) / SHARE_MAX : n;
    for (size_t i = 0; i < wake && i < b->q_waiters; i++)
        pthread_cond_signal(&b->q_cv);
    pthread_mutex_unlock(&b->q_mu);
    b->fresh_head = b->fresh_tail = NULL;
    b->fresh_n = 0;
}

static struct delivery *take_queue(struct sy_broker *b, size_t *n)
{
    struct delivery *list;

    pthread_mutex_lock(&b->q_mu);
    list = b->q_head;
    *n = b->q_len;
    b->q_head = b->q_tail = NULL;
    b->q_len = 0;
    pthread_mutex_unlock(&b->q_mu);
    return list;
}

/* At shutdown: what no handler started goes back to the queue now. */
static void return_queued(struct sy_broker *b)
{
    size_t n;
    struct delivery *list = take_queue(b, &n);

    for (struct delivery *d = list, *next; d; d = next) {
        next = d->next;
        if (!b->lost)
            send_requeue(b, d->tag);
        win_remove(&b->win, d->tag);
        delivery_free(d);
        b->in_flight--;
    }
    if (n)
        sy_log_info("worker.drain", "returned %zu unstarted deliveries to %s", n, b->queue);
}

/* --- connection lifecycle ------------------------------------------------------------------ */

static int check_rpc(struct sy_broker *b, amqp_channel_t ch, const char *what, char *err,
                     size_t errlen)
{
    return sy_amqp_reply_check(b->conn, ch, amqp_get_rpc_reply(b->conn), what, err, errlen);
}

static int io_connect(struct sy_broker *b, char *err, size_t errlen)
{
    amqp_basic_consume_ok_t *ok;
    int rc;

    rc = sy_amqp_open(b->o.url, b->conn_name, b->o.heartbeat_s, SY_AMQP_CONNECT_TIMEOUT_MS,
                      &b->conn, err, errlen);
    if (rc != 0)
        return rc;
    amqp_channel_open(b->conn, CH_CONSUME);
    if ((rc = check_rpc(b, CH_CONSUME, "channel.open", err, errlen)) != 0)
        goto fail;
    amqp_channel_open(b->conn, CH_PUBLISH);
    if ((rc = check_rpc(b, CH_PUBLISH, "channel.open", err, errlen)) != 0)
        goto fail;
    rc = sy_amqp_declare_exchange(b->conn, CH_CONSUME, b->o.topo->exchange, err, errlen);
    /* A publishing-only worker declares every worker's queues: what it publishes is kept
     * even while the consumers that declare their own queues have never started. */
    for (size_t i = 0; rc == 0 && i < b->o.topo->nworkers; i++) {
        const struct sy_topo_worker *tw = &b->o.topo->workers[i];

        if (b->publish_only || tw == b->o.tw)
            rc = sy_amqp_declare_worker(b->conn, CH_CONSUME, b->o.topo->exchange, tw, err, errlen);
    }
    if (rc != 0)
        goto fail;
    amqp_confirm_select(b->conn, CH_PUBLISH);
    if ((rc = check_rpc(b, CH_PUBLISH, "confirm.select", err, errlen)) != 0)
        goto fail;
    if (b->publish_only) {
        b->consumer_tag[0] = '\0';
        goto connected;
    }
    amqp_basic_qos(b->conn, CH_CONSUME, 0, (uint16_t)b->o.prefetch, 0);
    if ((rc = check_rpc(b, CH_CONSUME, "basic.qos", err, errlen)) != 0)
        goto fail;
    ok = amqp_basic_consume(b->conn, CH_CONSUME, amqp_cstring_bytes(b->queue), amqp_empty_bytes, 0,
                            0, 0, amqp_empty_table);
    if ((rc = check_rpc(b, CH_CONSUME, "basic.consume", err, errlen)) != 0)
        goto fail;
    snprintf(b->consumer_tag, sizeof b->consumer_tag, "%.*s", BYTES_ARG(ok->consumer_tag));

connected:
    b->lost = false;
    b->lost_why[0] = '\0';
    /* Without a consumer there is nothing to cancel at shutdown. */
    b->cancel_sent = b->cancel_ok = b->publish_only;
    b->blocked = false;
    b->next_pub_seq = 1;
    memset(&b->asm1, 0, sizeof b->asm1);
    memset(&b->asm2, 0, sizeof b->asm2);
    atomic_store(&b->connected, 1);
    atomic_store(&b->consuming, 1);
    return 0;
fail:
    amqp_destroy_connection(b->conn);
    b->conn = NULL;
    return rc;
}

/* Forgets everything tied to the connection. Deliveries it gave us are back in their queue
 * (the broker requeues what was never acked), so late completions are dropped by generation.
 * `graceful`: say goodbye with connection.close first. */
static void io_teardown(struct sy_broker *b, bool graceful)
{
    size_t n;
    struct delivery *list;

    atomic_store(&b->consuming, 0);
    atomic_store(&b->connected, 0);
    b->gen++;
    list = take_queue(b, &n);
    for (struct delivery *d = list, *next; d; d = next) {
        next = d->next;
        delivery_free(d);
        b->in_flight--;
    }
    for (struct delivery *d = b->fresh_head, *next; d; d = next) {
        next = d->next;
        delivery_free(d);
        b->in_flight--;
    }
    b->fresh_head = b->fresh_tail = NULL;
    b->fresh_n = 0;
    for (size_t i = b->out.head; i < b->out.head + b->out.n; i++) {
        struct outpub *e = &b->out.o[i];

        if (e->kind == OUT_RETRY || e->kind == OUT_DEAD) {
            delivery_free(e->ptr);
            b->in_flight--;
        } else if (e->kind == OUT_USER) {
            req_resolve(b, e->ptr, -SY_ECONN);
        }
    }
    b->out.head = b->out.n = 0;
    b->win.head = b->win.n = b->win.settled = 0;
    b->ack_due = 0;
    delivery_free(b->asm1.d);
    memset(&b->asm1, 0, sizeof b->asm1);
    memset(&b->asm2, 0, sizeof b->asm2);
    if (b->conn) {
        if (graceful && !b->lost) {
            struct timeval tv = {CLOSE_TIMEOUT_MS / 1000, (CLOSE_TIMEOUT_MS % 1000) * 1000};

            amqp_set_rpc_timeout(b->conn, &tv);
            amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(b->conn);
        b->conn = NULL;
    }
    if (b->m_in_flight)
        sy_gauge_set(b->m_in_flight, b->in_flight);
}

/* Counts gathered per round go to the metrics once per round. */
static void flush_metrics(struct sy_broker *b, uint64_t *seen)
{
    uint64_t now[6] = {b->n_consumed, b->n_acked,     b->n_retried,
                       b->n_dead,     b->n_published, b->n_reconnects};
    struct sy_counter *c[6] = {b->m_consumed, b->m_acked,     b->m_retried,
                               b->m_dead,     b->m_published, b->m_reconnects};

    for (int i = 0; i < 6; i++) {
        if (now[i] != seen[i]) {
            sy_counter_add(c[i], now[i] - seen[i]);
            seen[i] = now[i];
        }
    }
    sy_gauge_set(b->m_in_flight, b->in_flight);
}

enum run_end { RUN_LOST, RUN_STOPPED, RUN_GRACE };

/* The connected loop: frames, completions, publishes, acks, sleep. */
static enum run_end io_run(struct sy_broker *b, uint64_t *seen)
{
    int fd = amqp_get_sockfd(b->conn);
    bool sock_ready = true, more = false;
    int64_t last_read = 0;
    uint64_t round_msgs = 0;

    for (;;) {
        int64_t now = sy_mono_ms();
        bool stopping = atomic_load(&b->stop_req) != 0;
        int timeout;
        struct pollfd pfd[2];

        if (sock_ready || more || now - last_read >= TICK_MS || amqp_frames_enqueued(b->conn) ||
            amqp_data_in_buffer(b->conn)) {
            uint64_t before = b->n_consumed;

            pump_frames(b, &more);
            last_read = now;
            round_msgs = b->n_consumed - before;
        } else {
            round_msgs = 0;
        }
        if (!b->lost)
            process_completions(b);
        if (!b->lost)
            process_pub_requests(b);
        if (!b->lost && stopping && !b->cancel_sent) {
            amqp_basic_cancel_t m = {.consumer_tag = amqp_cstring_bytes(b->consumer_tag)};
            int st = amqp_send_method(b->conn, CH_CONSUME, AMQP_BASIC_CANCEL_METHOD, &m);

            if (st != AMQP_STATUS_OK)
                lib_failed(b, "basic.cancel", st);
            b->cancel_sent = true;
            atomic_store(&b->consuming, 0);
            set_status(b, "shutting down");
            /* Deliveries assembled this round go back with the queued ones. */
            hand_over(b);
            return_queued(b);
        }
        if (!b->lost)
            flush_acks(b, now, stopping);
        if (!b->lost && !b->cancel_sent)
            hand_over(b);
        flush_metrics(b, seen);
        if (b->lost)
            return RUN_LOST;
        if (stopping) {
            if (b->cancel_ok && b->win.n == 0 && b->out.n == 0)
                return RUN_STOPPED;
            if (now >= b->stop_deadline)
                return RUN_GRACE;
        }

        /* Under a steady stream, let deliveries gather for a moment instead of waking for
         * every few frames: fewer, larger rounds cost the I/O and handler threads far fewer
         * wake-ups, for at most COALESCE_US of latency (like a NIC's interrupt moderation). */
        if (!more && !stopping && round_msgs >= COALESCE_MIN) {
            struct timespec pause = {0, COALESCE_US * 1000};

            nanosleep(&pause, NULL);
            sock_ready = true;
            continue;
        }
        /* With deliveries in flight, verdicts are picked up within ACK_DELAY_MS even when no
         * handler wakes us (see complete()). */
        timeout = more ? 0 : b->in_flight > 0 ? ACK_DELAY_MS : TICK_MS;
        if (timeout > 0 && b->ack_due > 0)
            timeout = b->ack_due - now <= 0
                          ? 0
                          : (int)(b->ack_due - now < timeout ? b->ack_due - now : timeout);
        if (timeout > 0) {
            atomic_store(&b->armed, 1);
            if (atomic_load(&b->done_head) || atomic_load(&b->pub_pending) ||
                (atomic_load(&b->stop_req) && !b->cancel_sent))
                timeout = 0;
            else if (stopping && b->stop_deadline - now < timeout)
                timeout = (int)(b->stop_deadline - now > 0 ? b->stop_deadline - now : 0);
        }
        pfd[0] = (struct pollfd){.fd = fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = b->efd, .events = POLLIN};
        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            mark_lost(b, "poll: %s", strerror(errno));
            return RUN_LOST;
        }
        atomic_store(&b->armed, 0);
        if (pfd[1].revents & POLLIN) {
            uint64_t v;

            if (read(b->efd, &v, sizeof v) < 0) {
                /* EAGAIN: someone else's wake-up was already consumed */
            }
        }
        sock_ready = pfd[0].revents != 0;
    }
}

/* Sleeps up to ms while disconnected, still answering handlers: completions are dropped
 * (their deliveries are back in the queue) and publishes fail with -SY_ECONN. Returns early
 * on a stop request. */
static void io_idle(struct sy_broker *b, long long ms, uint64_t *seen)
{
    int64_t end = sy_mono_ms() + ms;

    for (;;) {
        int64_t left = end - sy_mono_ms();
        struct pollfd pfd = {.fd = b->efd, .events = POLLIN};

        process_completions(b);
        fail_pub_requests(b, -SY_ECONN, false);
        flush_metrics(b, seen);
        if (atomic_load(&b->stop_req) || left <= 0)
            return;
        atomic_store(&b->armed, 1);
        if (atomic_load(&b->done_head) || atomic_load(&b->pub_pending))
            left = 0;
        poll(&pfd, 1, (int)(left > TICK_MS ? TICK_MS : left));
        atomic_store(&b->armed, 0);
        if (pfd.revents & POLLIN) {
            uint64_t v;

            if (read(b->efd, &v, sizeof v) < 0) {
                /* see io_run */
            }
        }
    }
}

static void *io_main(void *arg)
{
    struct sy_broker *b = arg;
    long long backoff = BACKOFF_FIRST_MS;
    uint64_t seen[6] = {0};
    unsigned failures = 0;
    bool connected_once = false;
    char err[512];

    for (;;) {
        enum run_end end;

        if (atomic_load(&b->stop_req))
            break; /* not connected: nothing of ours is left with the broker */
        if (io_connect(b, err, sizeof err) != 0) {
            /* Full jitter on the upper half, so restarted replicas do not reconnect in step. */
            long long delay = backoff / 2 + (long long)(rand_unit(b) * (double)(backoff / 2));

            failures++;
            set_status(b, "not connected: %s", err);
            sy_log_write(SY_LOG_WARN, "amqp.reconnect", -1, err,
                         "connection attempt %u failed; next in %lld ms", failures, delay);
            io_idle(b, delay, seen);
            backoff = backoff * 2 > b->o.reconnect_max_ms ? b->o.reconnect_max_ms : backoff * 2;
            continue;
        }
        if (connected_once) {
            b->n_reconnects++;
            if (failures)
                sy_log_info("amqp.connected",
                            "reconnected after %u failed attempt(s); consuming %s", failures,
                            b->publish_only ? "nothing (publishing only)" : b->queue);
            else
                sy_log_info("amqp.connected", "reconnected; consuming %s",
                            b->publish_only ? "nothing (publishing only)" : b->queue);
        } else if (b->publish_only) {
            sy_log_info("amqp.connected", "connected; publishing only");
        } else {
            sy_log_info("amqp.connected", "consuming %s (prefetch %u)", b->queue, b->o.prefetch);
        }
        connected_once = true;
        failures = 0;
        backoff = BACKOFF_FIRST_MS;
        set_status(b, b->publish_only ? "publishing" : "consuming");

        end = io_run(b, seen);
        if (end == RUN_LOST) {
            set_status(b, "connection lost: %s", b->lost_why);
            if (b->publish_only)
                sy_log_write(SY_LOG_WARN, "amqp.lost", -1, b->lost_why,
                             "connection lost; unconfirmed publishes fail and are retried by "
                             "their callers");
            else
                sy_log_write(SY_LOG_WARN, "amqp.lost", -1, b->lost_why,
                             "connection lost with %lld deliveries in flight; they go back to %s",
                             b->in_flight, b->queue);
            io_teardown(b, false);
            continue;
        }
        if (end == RUN_GRACE)
            sy_log_warn("worker.drain",
                        "shutdown grace of %lld ms passed with %lld deliveries "
                        "in flight; closing (the broker requeues them)",
                        b->o.shutdown_grace_ms, b->in_flight);
        b->stop_in_flight = end == RUN_GRACE ? b->in_flight : 0;
        io_teardown(b, true);
        break;
    }
    fail_pub_requests(b, -SY_ESHUTDOWN, true);
    flush_metrics(b, seen);
    return NULL;
}

/* --- handler threads ------------------------------------------------------------------------ */

static void set_verdict(struct delivery *d, int v, const struct sy_msg *msg)
{
    const char *r = msg ? sy_msg_reason(msg) : "";

    if (v == SY_ACK) {
        d->verdict = SY_ACK;
        return;
    }
    if (v != SY_RETRY && v != SY_REJECT) {
        d->verdict = SY_REJECT;
        if (asprintf(&d->reason, "handler returned an invalid verdict (%d)", v) < 0)
            d->reason = NULL;
        return;
    }
    d->verdict = v;
    d->retry_after_ms = msg && v == SY_RETRY ? sy_msg_retry_after_ms(msg) : 0;
    if (!r || !*r)
        r = v == SY_RETRY ? "retry requested by the handler" : "rejected by the handler";
    d->reason = strndup(r, REASON_MAX);
}

/* Decodes and validates; a message that fails never reaches the handler. */
static struct sy_msg *prepare(struct sy_broker *b, struct delivery *d)
{
    struct sy_msg *msg = NULL;
    char err[512];
    int rc;

    rc = sy_msg_decode(d->body, d->len, &msg, err, sizeof err);
    if (rc != 0) {
        d->verdict = SY_REJECT;
        if (asprintf(&d->reason, "decode: %s", err) < 0)
            d->reason = NULL;
        return NULL;
    }
    rc = sy_schemas_check(b->o.schemas, msg, err, sizeof err);
    if (rc != 0) {
        d->verdict = SY_REJECT;
        if (asprintf(&d->reason, "schema: %s", err) < 0)
            d->reason = NULL;
        sy_msg_destroy(msg);
        return NULL;
    }
    sy_msg_set_attempt(msg, d->attempt);
    return msg;
}

/* Call with q_mu held and the queue not empty. */
static struct delivery *q_pop(struct sy_broker *b)
{
    struct delivery *d = b->q_head;

    b->q_head = d->next;
    if (!b->q_head)
        b->q_tail = NULL; /* never leave it pointing at a delivery a handler now owns */
    b->q_len--;
    d->next = NULL;
    return d;
}

/* Takes up to max deliveries; a batch handler waits up to batch_wait_ms for a batch to fill.
 * 0 when the broker stops. */
static size_t take(struct sy_broker *b, struct delivery **out, size_t max)
{
    const struct sy_handler *h = b->o.handler;
    size_t n = 0;

    pthread_mutex_lock(&b->q_mu);
    while (!b->q_head && !b->q_stop) {
        b->q_waiters++;
        pthread_cond_wait(&b->q_cv, &b->q_mu);
        b->q_waiters--;
    }
    if (max > 1 && h->batch_wait_ms > 0 && b->q_head) {
        struct timespec abs = sy_cond_at(sy_mono_ms() + h->batch_wait_ms);

        for (;;) {
            while (n < max && b->q_head)
                out[n++] = q_pop(b);
            if (n == max || b->q_stop)
                break;
            b->q_waiters++;
            int rc = pthread_cond_timedwait(&b->q_cv, &b->q_mu, &abs);
            b->q_waiters--;
            if (rc == ETIMEDOUT) {
                while (n < max && b->q_head)
                    out[n++] = q_pop(b);
                break;
            }
        }
    } else {
        /* Quick handler calls take a share of the queue at once, so a thread takes the
         * lock and sleeps less often; slow ones take one at a time so every thread works. */
        size_t share = handlers_fast(b) ? max : 1;

        while (n < share && b->q_head)
            out[n++] = q_pop(b);
    }
    if (n)
        atomic_fetch_add(&b->busy, 1);
    /* More left than this thread will come back for soon: pass the wake-up on. */
    if (b->q_head && b->q_waiters > 0 && (!handlers_fast(b) || b->q_len >= SHARE_MAX))
        pthread_cond_signal(&b->q_cv);
    pthread_mutex_unlock(&b->q_mu);
    return n;
}

/* Puts deliveries a thread took but did not start back at the head of the queue. */
static void give_back(struct sy_broker *b, struct delivery **ds, size_t n)
{
    pthread_mutex_lock(&b->q_mu);
    for (size_t i = n; i-- > 0;) {
        ds[i]->next = b->q_head;
        b->q_head = ds[i];
        if (!b->q_tail)
            b->q_tail = ds[i];
        b->q_len++;
    }
    for (size_t i = 0; i < n && i < b->q_waiters; i++)
        pthread_cond_signal(&b->q_cv);
    pthread_mutex_unlock(&b->q_mu);
}

/* Returns handled deliveries to the I/O thread in one push. The I/O thread is woken only for
 * what cannot wait: a retry or dead letter to publish, enough verdicts to ack (so the
 * prefetch window never runs dry), or a drain. Otherwise it finds them on its own within
 * ACK_DELAY_MS, which it never sleeps past while deliveries are in flight. */
static void complete(struct sy_broker *b, struct delivery **ds, size_t n)
{
    struct delivery *first = ds[0], *last = ds[n - 1], *head;
    bool urgent = false;
    unsigned pending;

    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            ds[i]->next = ds[i + 1];
        urgent |= ds[i]->verdict != SY_ACK;
    }
    head = atomic_load(&b->done_head);
    do {
        last->next = head;
    } while (!atomic_compare_exchange_weak(&b->done_head, &head, first));
    pending = atomic_fetch_add(&b->done_pending, (unsigned)n) + (unsigned)n;
    if (urgent || pending >= b->wake_batch || atomic_load(&b->stop_req))
        wake_io(b);
}

/* The thread holds no deliveries any more. */
static void idle_again(struct sy_broker *b)
{
    if (atomic_fetch_sub(&b->busy, 1) == 1 && atomic_load(&b->stop_req)) {
        pthread_mutex_lock(&b->q_mu);
        pthread_cond_broadcast(&b->idle_cv);
        pthread_mutex_unlock(&b->q_mu);
    }
}

static void handle_one(struct sy_broker *b, void *tstate, struct delivery *d)
{
    struct sy_msg *msg = prepare(b, d);
    double t0;
    int v;

    if (!msg)
        return;
    sy_log_set_msg(sy_msg_id(msg), sy_msg_type(msg));
    t0 = sy_mono_s();
    v = b->o.handler->handle(tstate, msg);
    t0 = sy_mono_s() - t0;
    sy_histogram_observe(b->m_handler, t0);
    note_call(b, t0);
    set_verdict(d, v, msg);
    sy_log_set_msg(NULL, NULL);
    sy_msg_destroy(msg);
}

static void handle_batch(struct sy_broker *b, void *tstate, struct delivery **ds, size_t n,
                         struct sy_msg **msgs, size_t *idx)
{
    size_t k = 0;
    double t0;

    for (size_t i = 0; i < n; i++) {
        struct sy_msg *msg = prepare(b, ds[i]);

        if (msg) {
            msgs[k] = msg;
            idx[k++] = i;
        }
    }
    if (k == 0)
        return;
    t0 = sy_mono_s();
    b->o.handler->handle_batch(tstate, msgs, k);
    sy_histogram_observe(b->m_handler, sy_mono_s() - t0);
    for (size_t j = 0; j < k; j++) {
        set_verdict(ds[idx[j]], sy_msg_verdict(msgs[j]), msgs[j]);
        sy_msg_destroy(msgs[j]);
    }
}

static void *handler_main(void *arg)
{
    struct hthread *t = arg;
    struct sy_broker *b = t->b;
    const struct sy_handler *h = b->o.handler;
    size_t max = SHARE_MAX;
    struct delivery **ds = NULL;
    struct sy_msg **msgs = NULL;
    size_t *idx = NULL;
    void *tstate = b->o.hstate;
    int rc = 0;

    if (h->handle_batch) {
        size_t share = b->o.prefetch / (b->o.threads ? b->o.threads : 1);

        max = h->batch_max ? h->batch_max : 1;
        if (max > BATCH_CAP)
            max = BATCH_CAP;
        /* A thread cannot expect more than its share of the prefetch window: waiting for a
         * bigger batch would only wait out batch_wait_ms every time. */
        if (share >= 1 && max > share)
            max = share;
    }
    ds = calloc(max, sizeof *ds);
    msgs = calloc(max, sizeof *msgs);
    idx = calloc(max, sizeof *idx);
    if (!ds || !msgs || !idx)
        rc = -SY_ENOMEM;
    if (rc == 0 && h->thread_init)
        rc = h->thread_init(b->o.hstate, &tstate);

    pthread_mutex_lock(&b->q_mu);
    t->init_rc = rc;
    t->init_done = true;
    b->started++;
    pthread_cond_broadcast(&b->start_cv);
    pthread_mutex_unlock(&b->q_mu);

    if (rc == 0) {
        size_t n;

        while ((n = take(b, ds, max)) > 0) {
            if (h->handle_batch) {
                handle_batch(b, tstate, ds, n, msgs, idx);
                complete(b, ds, n);
            } else {
                /* Each verdict goes back as soon as it is known. Once a drain started, what
                 * this thread took but did not start goes back to the broker; once calls
                 * turned slow, it goes back to the shared queue for idle threads. */
                for (size_t i = 0; i < n; i++) {
                    if (i > 0 && atomic_load(&b->stop_req)) {
                        ds[i]->verdict = VERDICT_RETURN;
                    } else if (i > 0 && !handlers_fast(b)) {
                        give_back(b, ds + i, n - i);
                        break;
                    } else {
                        handle_one(b, tstate, ds[i]);
                    }
                    complete(b, &ds[i], 1);
                }
            }
            idle_again(b);
        }
        if (h->thread_exit)
            h->thread_exit(b->o.hstate, tstate);
    }
    free(ds);
    free(msgs);
    free(idx);
    return NULL;
}

/* --- lifecycle -------------------------------------------------------------------------------- */

struct sy_broker *sy_broker_new(const struct sy_broker_opts *o, char *err, size_t errlen)
{
    struct sy_broker *b = calloc(1, sizeof *b);
    char labels[160];

    if (!b) {
        snprintf(err, errlen, "%s", sy_strerror(-SY_ENOMEM));
        return NULL;
    }
    b->o = *o;
    b->efd = -1;
    if (!o->handler ||
        (!!o->handler->handle + !!o->handler->handle_batch + !!o->handler->run) != 1) {
        snprintf(err, errlen, "the handler must set exactly one of handle, handle_batch and run");
        goto fail;
    }
    b->publish_only = o->handler->run != NULL;
    if (!b->publish_only && !o->tw) {
        snprintf(err, errlen, "a consuming worker needs its entry in the topology");
        goto fail;
    }
    if (o->tw && (sy_topo_queue_name(o->tw, b->queue, sizeof b->queue) != 0 ||
                  sy_topo_dead_name(o->tw, b->dead_queue, sizeof b->dead_queue) != 0)) {
        snprintf(err, errlen, "worker name too long");
        goto fail;
    }
    snprintf(b->conn_name, sizeof b->conn_name, "sy-%s %s", o->handler->name, o->instance);
    b->ack_batch = o->prefetch / 4 ? o->prefetch / 4 : 1;
    b->wake_batch = (unsigned)(b->ack_batch / 2 ? b->ack_batch / 2 : 1);
    b->threads = calloc(o->threads ? o->threads : 1, sizeof *b->threads);
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!b->threads || b->efd < 0) {
        snprintf(err, errlen, "broker: %s", b->efd < 0 ? strerror(errno) : "out of memory");
        goto fail;
    }
    pthread_mutex_init(&b->q_mu, NULL);
    pthread_mutex_init(&b->pub_mu, NULL);
    pthread_mutex_init(&b->status_mu, NULL);
    sy_cond_init(&b->q_cv);
    sy_cond_init(&b->idle_cv);
    sy_cond_init(&b->start_cv);
    atomic_init(&b->done_head, NULL);
    snprintf(b->status, sizeof b->status, "connecting");
    /* Handler calls count as slow until a run of quick ones proves otherwise. */
    atomic_store(&b->avg_call_ns, FAST_CALL_NS * 8);
    if (getrandom(&b->rng, sizeof b->rng, 0) != (ssize_t)sizeof b->rng || b->rng == 0)
        b->rng = (uint64_t)sy_mono_ms() * 0x9E3779B97F4A7C15ULL | 1;

    snprintf(labels, sizeof labels, "worker=\"%s\"", o->handler->name);
    b->m_consumed = sy_counter_get("sy_consumed_total", "Deliveries received", labels);
    b->m_acked = sy_counter_get("sy_acked_total", "Deliveries handled and acked", labels);
    b->m_retried = sy_counter_get("sy_retried_total", "Deliveries parked for a retry", labels);
    b->m_dead = sy_counter_get("sy_dead_lettered_total", "Deliveries dead-lettered", labels);
    b->m_published =
        sy_counter_get("sy_published_total", "Messages published by the handler", labels);
    b->m_reconnects = sy_counter_get("sy_reconnects_total", "AMQP reconnections", labels);
    b->m_in_flight = sy_gauge_get("sy_in_flight", "Deliveries received and not settled", labels);
    b->m_handler = sy_histogram_get("sy_handler_seconds", "Handler call duration", labels);
    return b;
fail:
    if (b->efd >= 0)
        close(b->efd);
    free(b->threads);
    free(b);
    return NULL;
}

void sy_broker_set_state(struct sy_broker *b, void *hstate)
{
    b->o.hstate = hstate;
}

int sy_broker_start_handlers(struct sy_broker *b, char *err, size_t errlen)
{
    unsigned n = b->o.threads ? b->o.threads : 1;
    int rc = 0;

    if (b->publish_only)
        return 0;

    for (unsigned i = 0; i < n; i++) {
        b->threads[i].b = b;
        b->threads[i].index = i;
        int prc = pthread_create(&b->threads[i].tid, NULL, handler_main, &b->threads[i]);

        if (prc != 0) {
            snprintf(err, errlen, "handler thread %u: %s", i, strerror(prc));
            rc = -SY_EINTERNAL;
            break;
        }
        b->threads[i].started = true;
    }
    /* Wait for every started thread's thread_init. */
    pthread_mutex_lock(&b->q_mu);
    for (unsigned i = 0; i < n; i++) {
        while (b->threads[i].started && !b->threads[i].init_done)
            pthread_cond_wait(&b->start_cv, &b->q_mu);
        if (rc == 0 && b->threads[i].started && b->threads[i].init_rc != 0) {
            rc = b->threads[i].init_rc;
            snprintf(err, errlen, "thread_init of handler thread %u failed: %s", i,
                     sy_strerror(rc));
        }
    }
    pthread_mutex_unlock(&b->q_mu);
    return rc;
}

int sy_broker_start(struct sy_broker *b, char *err, size_t errlen)
{
    int rc = pthread_create(&b->io_tid, NULL, io_main, b);

    if (rc != 0) {
        snprintf(err, errlen, "broker thread: %s", strerror(rc));
        return -SY_EINTERNAL;
    }
    b->io_started = true;
    return 0;
}

int sy_broker_ready(struct sy_broker *b, char *why, size_t whylen)
{
    if (atomic_load(&b->consuming))
        return 0;
    pthread_mutex_lock(&b->status_mu);
    snprintf(why, whylen, "amqp: %s", b->status);
    pthread_mutex_unlock(&b->status_mu);
    return -1;
}

void sy_broker_shutdown(struct sy_broker *b, struct sy_broker_stats *st)
{
    int64_t deadline = sy_mono_ms() + b->o.shutdown_grace_ms;
    unsigned n = b->o.threads ? b->o.threads : 1, stuck = 0;
    bool io_alive = false;
    size_t left;

    memset(st, 0, sizeof *st);
    b->stop_deadline = deadline;
    atomic_store(&b->stop_req, 1);
    if (b->io_started) {
        struct timespec abs;

        wake_io_always(b);
        /* The I/O thread ends by itself at the deadline; a library call stuck on a dead
         * socket gets a little longer, then it is left behind. */
        clock_gettime(CLOCK_REALTIME, &abs);
        abs.tv_sec += (time_t)(b->o.shutdown_grace_ms / 1000) + 5;
        io_alive = pthread_timedjoin_np(b->io_tid, NULL, &abs) != 0;
        b->io_started = io_alive;
    } else {
        fail_pub_requests(b, -SY_ESHUTDOWN, true);
    }

    /* Let running handler calls finish within the grace. */
    pthread_mutex_lock(&b->q_mu);
    while (atomic_load(&b->busy) > 0 && sy_mono_ms() < deadline) {
        int64_t until = sy_mono_ms() + 100;
        struct timespec abs = sy_cond_at(until < deadline ? until : deadline);

        pthread_cond_timedwait(&b->idle_cv, &b->q_mu, &abs);
    }
    stuck = atomic_load(&b->busy);
    if (stuck == 0 && !io_alive) {
        b->q_stop = true;
        pthread_cond_broadcast(&b->q_cv);
    }
    pthread_mutex_unlock(&b->q_mu);

    st->consumed = b->n_consumed;
    st->acked = b->n_acked;
    st->retried = b->n_retried;
    st->dead_lettered = b->n_dead;
    st->published = b->n_published;
    st->reconnects = b->n_reconnects;
    st->in_flight = (unsigned)b->stop_in_flight;
    st->stuck = stuck + (io_alive ? 1 : 0);
    if (st->stuck)
        return;

    for (unsigned i = 0; i < n; i++) {
        if (b->threads[i].started)
            pthread_join(b->threads[i].tid, NULL);
        b->threads[i].started = false;
    }
    /* What never reached a handler, or came back after the I/O thread ended. */
    for (struct delivery *d = take_queue(b, &left), *next; d; d = next) {
        next = d->next;
        delivery_free(d);
    }
    for (struct delivery *d = atomic_exchange(&b->done_head, NULL), *next; d; d = next) {
        next = d->next;
        delivery_free(d);
    }
}

void sy_broker_destroy(struct sy_broker *b)
{
    if (!b)
        return;
    free(b->win.s);
    free(b->out.o);
    free(b->threads);
    if (b->efd >= 0)
        close(b->efd);
    pthread_mutex_destroy(&b->q_mu);
    pthread_mutex_destroy(&b->pub_mu);
    pthread_mutex_destroy(&b->status_mu);
    pthread_cond_destroy(&b->q_cv);
    pthread_cond_destroy(&b->idle_cv);
    pthread_cond_destroy(&b->start_cv);
    free(b);
}
