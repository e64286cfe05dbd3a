/* cmd_dead.c - `syctl dead list|show|replay`: a worker's dead letters, read without removing
 * them, and sent back to the worker's queue on request.
 *
 * Reading uses basic.get without acking: every message taken is held by this connection until
 * it is returned (reject with requeue) or, when replayed, acked after the broker confirmed the
 * copy. If syctl dies half-way, the broker requeues what it held: nothing is lost. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/topology.h"

#define NEED            (SYCTL_NEED_TOPOLOGY | SYCTL_NEED_AMQP)
#define LIST_MAX        10000u /* rows kept in memory by dead list */
#define REPLAY_BATCH    64u    /* republished copies confirmed together */
#define CONFIRM_WAIT_MS 30000

static const char help[] =
    "Usage: syctl dead list WORKER [--limit N] [--json]\n"
    "       syctl dead show WORKER ID [--json]\n"
    "       syctl dead replay WORKER (--id ID | --limit N | --all)\n"
    "\n"
    "The dead letters of a worker are the messages in sy.<worker>.dead: rejected by its\n"
    "handler, failed schema checks, exhausted retries, or moved by the broker past the queue's\n"
    "delivery limit. list and show leave them where they are; replay sends chosen ones back\n"
    "to the worker. Run 'syctl dead SUBCOMMAND --help' for details.\n";

static const char help_list[] =
    "Usage: syctl dead list WORKER [--limit N] [--json]\n"
    "\n"
    "Lists the first N dead letters of sy.<WORKER>.dead without removing them: id, type,\n"
    "reason, attempts, dead-at and the original routing key. The reason is the runtime's\n"
    "x-sy-reason or, when the broker dead-lettered the message itself, the x-death reason\n"
    "(e.g. delivery_limit) and the queue it left. Every message read is returned to the queue.\n"
    "\n"
    "Options:\n"
    "  --limit N        at most N messages, 1 to 10000 (default: 100)\n"
    "  --json           {\"queue\", \"total\", \"messages\": [{\"id\", \"type\", \"reason\",\n"
    "                   \"attempts\", \"dead_at\", \"routing_key\", \"replayed\"}]}\n"
    "  -h, --help       this help\n";

static const char help_show[] =
    "Usage: syctl dead show WORKER ID [--json]\n"
    "\n"
    "Shows the dead letter whose message id (or envelope id) is ID: its headers, and its body\n"
    "decoded from msgpack as JSON; a body that is not msgpack is shown as base64 with a note.\n"
    "The message stays in the queue. Exit 4 when no dead letter has that id.\n"
    "\n"
    "Options:\n"
    "  --json           one JSON object: {\"id\", \"type\", \"reason\", \"attempts\", "
    "\"dead_at\",\n"
    "                   \"routing_key\", \"queue\", \"headers\", \"body\" | \"body_base64\", "
    "\"note\"}\n"
    "  -h, --help       this help\n";

static const char help_replay[] =
    "Usage: syctl dead replay WORKER (--id ID | --limit N | --all)\n"
    "\n"
    "Sends the chosen dead letters of sy.<WORKER>.dead back to the worker's own queue\n"
    "sy.<WORKER> (default exchange), with the same body and message id, all headers dropped\n"
    "except x-sy-replayed (how many times it was replayed), so the worker starts again at\n"
    "attempt 1. Each copy is confirmed by the broker before its dead letter is removed; the\n"
    "dead letters not chosen stay untouched. Prints how many were replayed. If a confirm\n"
    "fails, the dead letters of that batch stay in the queue (a copy may already have been\n"
    "delivered: handlers are idempotent by message id).\n"
    "\n"
    "Options (one of --id, --limit, --all is required):\n"
    "  --id ID          the dead letter(s) with this message id (exit 4 when there is none)\n"
    "  --limit N        at most N (alone: the first N; with --id: at most N copies of ID)\n"
    "  --all            every dead letter of the worker\n"
    "  -h, --help       this help\n";

enum { OPT_LIMIT, OPT_JSON, OPT_ID, OPT_ALL };
static const struct syctl_optspec specs[] = {
    [OPT_LIMIT] = {"limit", true},
    [OPT_JSON] = {"json", false},
    [OPT_ID] = {"id", true},
    [OPT_ALL] = {"all", false},
    {NULL, false},
};

/* Messages this connection took and must hand back (settle needs the message itself: it
 * knows which channel the delivery tag belongs to). Bounded by count and body bytes. */
struct held {
    struct sy_amqp_msg **msgs;
    size_t n, cap, bytes;
};

static bool held_full(const struct held *h)
{
    return h->n >= SYCTL_SCAN_MAX || h->bytes >= SYCTL_HOLD_BYTES;
}

/* Takes m over. When that fails, m is returned to its queue and freed, and the failure is
 * reported: either way the caller no longer owns m. */
static int held_add(struct sy_amqp *amqp, struct held *h, struct sy_amqp_msg *m)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 256;
        struct sy_amqp_msg **nm = realloc(h->msgs, ncap * sizeof(*nm));
        if (!nm) {
            sy_amqp_settle(amqp, m, 0, 1);
            sy_amqp_msg_free(m);
            return syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
        }
        h->msgs = nm;
        h->cap = ncap;
    }
    h->msgs[h->n++] = m;
    h->bytes += m->len;
    return 0;
}

/* Acks, or returns (requeue), and frees everything in h; the first error is returned, the
 * rest still tried. */
static int held_settle(struct sy_amqp *amqp, struct held *h, int ack)
{
    int first = 0;

    for (size_t i = 0; i < h->n; i++) {
        int rc = sy_amqp_settle(amqp, h->msgs[i], ack, !ack);
        if (rc < 0 && !first)
            first = rc;
        sy_amqp_msg_free(h->msgs[i]);
    }
    h->n = 0;
    h->bytes = 0;
    return first;
}

static void held_free(struct sy_amqp *amqp, struct held *h)
{
    if (h->n)
        held_settle(amqp, h, 0);
    free(h->msgs);
    memset(h, 0, sizeof(*h));
}

static int return_error(struct sy_amqp *amqp, const char *dead, int err)
{
    return syctl_fail(syctl_exit_for(err),
                      "returning dead letters to %s: %s: %s (the broker requeues them when "
                      "this connection closes)",
                      dead, sy_strerror(err), sy_amqp_error(amqp));
}

static void note_bound(const struct held *h, const char *dead)
{
    fprintf(stderr,
            "syctl: note: stopped reading %s after %zu messages (%zu bytes held); the rest "
            "were not looked at\n",
            dead, h->n, h->bytes);
}

/* What one dead letter is, as far as its properties, headers and envelope tell. */
struct letter {
    char id[SY_MSG_ID_MAX + 1];
    char type[SY_MSG_TYPE_MAX + 1];
    struct syctl_dead_info info;
};

static void describe(const struct sy_amqp_msg *m, struct letter *l)
{
    struct sy_msg *msg = NULL;
    char err[256];

    memset(l, 0, sizeof(*l));
    if (sy_msg_decode(m->body, m->len, &msg, err, sizeof(err)) == 0) {
        snprintf(l->id, sizeof(l->id), "%s", sy_msg_id(msg));
        snprintf(l->type, sizeof(l->type), "%s", sy_msg_type(msg));
    }
    /* message_id is what the runtime and the broker go by; the envelope id is a fallback. */
    if (m->message_id && *m->message_id)
        snprintf(l->id, sizeof(l->id), "%s", m->message_id);
    syctl_dead_info(m->headers, &l->info);
    if (!l->info.routing_key[0] && m->routing_key)
        snprintf(l->info.routing_key, sizeof(l->info.routing_key), "%s", m->routing_key);
    sy_msg_destroy(msg);
}

static bool id_matches(const struct sy_amqp_msg *m, const char *id)
{
    struct letter l;

    if (m->message_id && *m->message_id)
        return strcmp(m->message_id, id) == 0;
    describe(m, &l);
    return strcmp(l.id, id) == 0;
}

/* Resolves WORKER to its queues and checks the dead-letter queue exists: a basic.get on a
 * missing queue would look like an empty one. */
static int open_worker(struct syctl *c, const char *name, char *queue, char *dead, size_t qsz,
                       uint32_t *depth, struct sy_amqp **amqp)
{
    const struct sy_topo_worker *w;
    uint32_t consumers;
    int rc;

    if ((rc = syctl_worker(c, name, &w)) != 0)
        return rc;
    if (sy_topo_queue_name(w, queue, qsz) < 0 || sy_topo_dead_name(w, dead, qsz) < 0)
        return syctl_fail(SYCTL_EXIT_CONFIG, "worker '%s': name too long", name);
    if ((rc = syctl_amqp(c, amqp)) != 0)
        return rc;
    rc = sy_amqp_queue_info(*amqp, dead, depth, &consumers);
    if (rc == -SY_ENOTFOUND)
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "queue %s does not exist (is the topology applied?)",
                          dead);
    if (rc < 0)
        return syctl_fail(syctl_exit_for(rc), "queue %s: %s: %s", dead, sy_strerror(rc),
                          sy_amqp_error(*amqp));
    return 0;
}

static int get_error(struct sy_amqp *amqp, const char *queue, int err)
{
    return syctl_fail(syctl_exit_for(err), "reading %s: %s: %s", queue, sy_strerror(err),
                      sy_amqp_error(amqp));
}

/* The next dead letter while the held bound allows: SYCTL_OK with *out set, SYCTL_OK with *out
 * NULL when the queue is empty or the bound was reached (said on stderr), or an exit code
 * already reported. */
static int next_letter(struct sy_amqp *amqp, const char *dead, const struct held *h,
                       struct sy_amqp_msg **out)
{
    *out = NULL;
    if (held_full(h)) {
        note_bound(h, dead);
        return SYCTL_OK;
    }
    int rc = sy_amqp_get(amqp, dead, out);
    if (rc == -SY_ENOTFOUND)
        return SYCTL_OK;
    if (rc < 0)
        return get_error(amqp, dead, rc);
    return SYCTL_OK;
}

static json_t *attempts_json(long long attempts)
{
    return attempts >= 0 ? json_integer(attempts) : json_null();
}

static json_t *letter_json(const struct letter *l)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "id", l->id[0] ? json_string(l->id) : json_null());
    json_object_set_new(o, "type", l->type[0] ? json_string(l->type) : json_null());
    json_object_set_new(o, "reason", json_string(l->info.reason));
    json_object_set_new(o, "attempts", attempts_json(l->info.attempts));
    json_object_set_new(o, "dead_at",
                        l->info.dead_at[0] ? json_string(l->info.dead_at) : json_null());
    json_object_set_new(o, "routing_key", json_string(l->info.routing_key));
    json_object_set_new(o, "replayed", json_integer(l->info.replayed));
    return o;
}

static int dump_json(json_t *v)
{
    if (!v || json_dumpf(v, stdout, JSON_INDENT(2)) < 0)
        return syctl_fail(SYCTL_EXIT_FAIL, "cannot write JSON");
    printf("\n");
    return SYCTL_OK;
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static void print_list(const struct letter *rows, size_t n)
{
    int wid = 2, wtype = 4, wat = 7;

    for (size_t i = 0; i < n; i++) {
        int a = (int)strlen(rows[i].id), b = (int)strlen(rows[i].type),
            d = (int)strlen(rows[i].info.dead_at);
        wid = a > wid ? a : wid;
        wtype = b > wtype ? b : wtype;
        wat = d > wat ? d : wat;
    }
    printf("%-*s  %-*s  %8s  %-*s  %-24s  %s\n", wid, "ID", wtype, "TYPE", "ATTEMPTS", wat,
           "DEAD-AT", "ROUTING-KEY", "REASON");
    for (size_t i = 0; i < n; i++) {
        const struct letter *l = &rows[i];
        char attempts[24] = "-";
        if (l->info.attempts >= 0)
            snprintf(attempts, sizeof(attempts), "%lld", l->info.attempts);
        printf("%-*s  %-*s  %8s  %-*s  %-24s  %s\n", wid, or_dash(l->id), wtype, or_dash(l->type),
               attempts, wat, or_dash(l->info.dead_at), or_dash(l->info.routing_key),
               or_dash(l->info.reason));
    }
}

static int dead_list(struct syctl *c, const struct syctl_args *a)
{
    char queue[256], dead[256];
    unsigned long long limit = SYCTL_LIST_LIMIT;
    struct held held = {0};
    struct letter *rows = NULL;
    struct sy_amqp *amqp = NULL;
    uint32_t depth = 0;
    size_t n = 0;
    json_t *root = NULL, *arr = NULL;
    int rc;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "dead list: expected WORKER (see 'syctl dead list --help')");
    if (a->set[OPT_ID] || a->set[OPT_ALL])
        return syctl_fail(SYCTL_EXIT_USAGE, "dead list: --id and --all belong to replay");
    if (a->val[OPT_LIMIT] && syctl_parse_uint(a->val[OPT_LIMIT], 1, LIST_MAX, &limit) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "dead list: --limit: expected 1 to %u, got '%s'",
                          LIST_MAX, a->val[OPT_LIMIT]);
    if ((rc = open_worker(c, a->pos[1], queue, dead, sizeof(queue), &depth, &amqp)) != 0)
        return rc;

    rows = calloc((size_t)limit, sizeof(*rows));
    if (!rows) {
        rc = syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
        goto out;
    }
    while (n < limit) {
        struct sy_amqp_msg *m;
        if ((rc = next_letter(amqp, dead, &held, &m)) != SYCTL_OK)
            goto out;
        if (!m)
            break;
        describe(m, &rows[n++]);
        if ((rc = held_add(amqp, &held, m)) != 0)
            goto out;
    }
    /* Hand everything back before printing: a slow reader of our output holds nothing. */
    rc = held_settle(amqp, &held, 0);
    if (rc < 0) {
        rc = return_error(amqp, dead, rc);
        goto out;
    }

    if (a->set[OPT_JSON]) {
        root = json_object();
        arr = json_array();
        if (!root || !arr) {
            rc = syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
            goto out;
        }
        json_object_set_new(root, "queue", json_string(dead));
        json_object_set_new(root, "total", json_integer(depth > n ? depth : (json_int_t)n));
        json_object_set(root, "messages", arr);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, letter_json(&rows[i]));
        rc = dump_json(root);
    } else {
        if (n)
            print_list(rows, n);
        else
            printf("no dead letters in %s\n", dead);
        if (depth > n)
            printf("(%zu of %u dead letters in %s; see --limit)\n", n, depth, dead);
        rc = SYCTL_OK;
    }
out:
    held_free(amqp, &held);
    json_decref(arr);
    json_decref(root);
    free(rows);
    return rc;
}

static int show_one(const struct sy_amqp_msg *m, const char *dead, bool as_json)
{
    struct letter l;
    char err[256];
    json_t *body = sy_msgpack_to_json(m->body, m->len, err, sizeof(err));
    char *b64 = NULL;
    char note[400] = "";
    int rc = SYCTL_OK;

    describe(m, &l);
    if (!body) {
        b64 = syctl_base64(m->body, m->len);
        if (!b64) {
            rc = syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
            goto out;
        }
        snprintf(note, sizeof(note), "the body (%zu bytes) is not msgpack (%s); shown as base64",
                 m->len, err);
    }
    if (as_json) {
        json_t *o = letter_json(&l);
        if (!o) {
            rc = syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
            goto out;
        }
        json_object_set_new(o, "queue", json_string(dead));
        json_object_set_new(o, "headers", m->headers ? json_incref(m->headers) : json_object());
        if (body) {
            json_object_set(o, "body", body);
        } else {
            json_object_set_new(o, "body_base64", json_string(b64));
            json_object_set_new(o, "note", json_string(note));
        }
        rc = dump_json(o);
        json_decref(o);
        goto out;
    }
    printf("id:           %s\n", or_dash(l.id));
    printf("type:         %s\n", or_dash(l.type));
    printf("reason:       %s\n", or_dash(l.info.reason));
    if (l.info.attempts >= 0)
        printf("attempts:     %lld\n", l.info.attempts);
    else
        printf("attempts:     -\n");
    printf("dead-at:      %s\n", or_dash(l.info.dead_at));
    printf("routing-key:  %s\n", or_dash(l.info.routing_key));
    if (l.info.replayed)
        printf("replayed:     %lld\n", l.info.replayed);
    printf("queue:        %s\n", dead);
    printf("headers:\n");
    if (m->headers)
        json_dumpf(m->headers, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    else
        printf("{}");
    printf("\n");
    if (body) {
        printf("body (msgpack, %zu bytes, as JSON):\n", m->len);
        json_dumpf(body, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        printf("body: note: %s\n%s\n", note, b64);
    }
out:
    free(b64);
    json_decref(body);
    return rc;
}

static int dead_show(struct syctl *c, const struct syctl_args *a)
{
    char queue[256], dead[256];
    struct held held = {0};
    struct sy_amqp *amqp = NULL;
    struct sy_amqp_msg *found = NULL;
    uint32_t depth = 0;
    size_t scanned = 0;
    int rc;

    if (a->npos != 3)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "dead show: expected WORKER and ID (see 'syctl dead show --help')");
    if (a->set[OPT_ID] || a->set[OPT_ALL] || a->set[OPT_LIMIT])
        return syctl_fail(SYCTL_EXIT_USAGE, "dead show: takes only WORKER, ID and --json");
    const char *id = a->pos[2];
    if ((rc = open_worker(c, a->pos[1], queue, dead, sizeof(queue), &depth, &amqp)) != 0)
        return rc;

    while (!found) {
        struct sy_amqp_msg *m;
        if ((rc = next_letter(amqp, dead, &held, &m)) != SYCTL_OK)
            goto out;
        if (!m)
            break;
        scanned++;
        if (id_matches(m, id))
            found = m;
        else if ((rc = held_add(amqp, &held, m)) != 0)
            goto out;
    }
    /* Everything goes back, the one shown included, in the order it was taken. */
    rc = held_settle(amqp, &held, 0);
    if (rc == 0 && found)
        rc = sy_amqp_settle(amqp, found, 0, 1);
    if (rc < 0) {
        rc = return_error(amqp, dead, rc);
        goto out;
    }
    if (!found) {
        rc = syctl_fail(SYCTL_EXIT_NOTFOUND, "no dead letter with id '%s' in %s (%zu scanned)", id,
                        dead, scanned);
        goto out;
    }
    rc = show_one(found, dead, a->set[OPT_JSON]);
out:
    held_free(amqp, &held);
    sy_amqp_msg_free(found);
    return rc;
}

struct replay {
    struct sy_amqp *amqp;
    const char *queue, *dead;
    struct held batch; /* dead copies whose republished copy awaits its confirm */
    size_t replayed;
};

/* Waits for the confirms of the batch, then removes the dead copies. */
static int replay_flush(struct replay *r)
{
    if (!r->batch.n)
        return 0;
    int rc = sy_amqp_wait_confirms(r->amqp, CONFIRM_WAIT_MS);
    if (rc < 0) {
        const char *why = sy_amqp_error(r->amqp);
        held_settle(r->amqp, &r->batch, 0);
        return syctl_fail(rc == -SY_EUNROUTABLE ? SYCTL_EXIT_NOTFOUND : SYCTL_EXIT_FAIL,
                          "replay to %s not confirmed: %s%s%s; %zu replayed before, the rest "
                          "stay in %s",
                          r->queue, sy_strerror(rc), why && *why ? ": " : "", why ? why : "",
                          r->replayed, r->dead);
    }
    size_t n = r->batch.n;
    rc = held_settle(r->amqp, &r->batch, 1);
    if (rc < 0)
        return syctl_fail(syctl_exit_for(rc),
                          "%s: the copies were confirmed but removing the dead letters failed "
                          "(%s): they may be replayed twice",
                          r->dead, sy_strerror(rc));
    r->replayed += n;
    return 0;
}

/* Publishes the copy of m and takes m over (into the batch awaiting confirms). */
static int replay_one(struct replay *r, struct sy_amqp_msg *m)
{
    struct letter l;
    describe(m, &l);
    const struct sy_header hdr = {
        .key = "x-sy-replayed", .kind = SY_HDR_INT, .i = l.info.replayed + 1};
    const struct sy_publish p = {
        .exchange = "",
        .routing_key = r->queue,
        .body = m->body,
        .len = m->len,
        .message_id = m->message_id ? m->message_id : (l.id[0] ? l.id : NULL),
        .type = l.type[0] ? l.type : NULL,
        .headers = &hdr,
        .nheaders = 1,
    };
    int rc = sy_amqp_publish_nowait(r->amqp, &p);
    if (rc < 0) {
        rc = syctl_fail(syctl_exit_for(rc), "replay of %s to %s failed: %s: %s", or_dash(l.id),
                        r->queue, sy_strerror(rc), sy_amqp_error(r->amqp));
        sy_amqp_settle(r->amqp, m, 0, 1);
        sy_amqp_msg_free(m);
        return rc;
    }
    return held_add(r->amqp, &r->batch, m);
}

static int dead_replay(struct syctl *c, const struct syctl_args *a)
{
    char queue[256], dead[256];
    unsigned long long limit = 0;
    struct held held = {0};
    struct replay r = {0};
    uint32_t depth = 0, consumers = 0;
    size_t scanned = 0, chosen = 0;
    const char *id = a->val[OPT_ID];
    bool all = a->set[OPT_ALL];
    int rc;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "dead replay: expected WORKER (see 'syctl dead replay --help')");
    if (!id && !all && !a->val[OPT_LIMIT])
        return syctl_fail(SYCTL_EXIT_USAGE, "dead replay: say which: --id ID, --limit N or --all");
    if (all && (id || a->val[OPT_LIMIT]))
        return syctl_fail(SYCTL_EXIT_USAGE, "dead replay: --all excludes --id and --limit");
    if (a->set[OPT_JSON])
        return syctl_fail(SYCTL_EXIT_USAGE, "dead replay: --json belongs to list and show");
    if (a->val[OPT_LIMIT] && syctl_parse_uint(a->val[OPT_LIMIT], 1, SYCTL_SCAN_MAX, &limit) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "dead replay: --limit: expected 1 to %u, got '%s'",
                          SYCTL_SCAN_MAX, a->val[OPT_LIMIT]);
    if ((rc = open_worker(c, a->pos[1], queue, dead, sizeof(queue), &depth, &r.amqp)) != 0)
        return rc;
    rc = sy_amqp_queue_info(r.amqp, queue, &depth, &consumers);
    if (rc == -SY_ENOTFOUND)
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "queue %s does not exist (is the topology applied?)",
                          queue);
    if (rc < 0)
        return syctl_fail(syctl_exit_for(rc), "queue %s: %s: %s", queue, sy_strerror(rc),
                          sy_amqp_error(r.amqp));
    r.queue = queue;
    r.dead = dead;

    for (;;) {
        if (limit && chosen >= limit)
            break;
        struct sy_amqp_msg *m;
        if ((rc = next_letter(r.amqp, dead, &held, &m)) != SYCTL_OK)
            goto out;
        if (!m)
            break;
        scanned++;
        if (id && !id_matches(m, id)) {
            if ((rc = held_add(r.amqp, &held, m)) != 0)
                goto out;
            continue;
        }
        chosen++;
        if ((rc = replay_one(&r, m)) != 0)
            goto out;
        if (r.batch.n >= REPLAY_BATCH && (rc = replay_flush(&r)) != 0)
            goto out;
    }
    if ((rc = replay_flush(&r)) != 0)
        goto out;
    rc = held_settle(r.amqp, &held, 0);
    if (rc < 0) {
        rc = return_error(r.amqp, dead, rc);
        goto out;
    }
    if (id && chosen == 0) {
        rc = syctl_fail(SYCTL_EXIT_NOTFOUND, "no dead letter with id '%s' in %s (%zu scanned)", id,
                        dead, scanned);
        goto out;
    }
    printf("replayed %zu dead letter%s from %s to %s\n", r.replayed, r.replayed == 1 ? "" : "s",
           dead, queue);
    rc = SYCTL_OK;
out:
    held_free(r.amqp, &r.batch);
    held_free(r.amqp, &held);
    return rc;
}

int syctl_cmd_dead(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "dead: %s (see 'syctl dead --help')", err);
    const char *sub = a.npos ? a.pos[0] : "";
    int (*run)(struct syctl *, const struct syctl_args *) = NULL;
    const char *text = help;
    if (strcmp(sub, "list") == 0) {
        run = dead_list;
        text = help_list;
    } else if (strcmp(sub, "show") == 0) {
        run = dead_show;
        text = help_show;
    } else if (strcmp(sub, "replay") == 0) {
        run = dead_replay;
        text = help_replay;
    }
    if (a.help) {
        syctl_help(text, NEED);
        return SYCTL_OK;
    }
    if (!a.npos)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "dead: expected list, show or replay (see 'syctl dead --help')");
    if (!run)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "dead: unknown subcommand '%s' (see 'syctl dead --help')", sub);
    return run(c, &a);
}
