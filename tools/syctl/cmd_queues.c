/* cmd_queues.c - `syctl queues`: how much work waits where, per worker of the topology. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/topology.h"

#define NEED (SYCTL_NEED_TOPOLOGY | SYCTL_NEED_AMQP)

static const char help[] =
    "Usage: syctl queues [--worker W] [--json]\n"
    "\n"
    "For every worker of the topology (or only W): the messages ready in its work queue\n"
    "sy.<w> and that queue's consumers, the messages waiting in its retry delay queues\n"
    "sy.<w>.retry.<i> together, and the messages in its dead-letter queue sy.<w>.dead.\n"
    "Counts are of ready messages (deliveries a consumer holds unacked are not included).\n"
    "A queue that was never declared shows as '-' (null in JSON).\n"
    "\n"
    "Options:\n"
    "  --worker W       only this worker\n"
    "  --json           one JSON object instead of a table:\n"
    "                   {\"exchange\": ..., \"workers\": [{\"worker\", \"queue\", \"messages\",\n"
    "                   \"consumers\", \"retry\", \"dead\"}, ...]}\n"
    "  -h, --help       this help\n";

enum { OPT_WORKER, OPT_JSON };
static const struct syctl_optspec specs[] = {
    [OPT_WORKER] = {"worker", true},
    [OPT_JSON] = {"json", false},
    {NULL, false},
};

struct qstat {
    bool present;
    unsigned long long messages, consumers;
};

struct wstat {
    const char *worker;
    char queue[256];
    struct qstat work, retry, dead;
};

/* A passive declare of a missing queue makes the broker close the channel, so the connection
 * is renewed before the next question. */
static int stat_queue(struct syctl *c, const char *queue, struct qstat *out)
{
    struct sy_amqp *amqp;
    uint32_t messages = 0, consumers = 0;
    int rc = syctl_amqp(c, &amqp);

    if (rc)
        return rc;
    rc = sy_amqp_queue_info(amqp, queue, &messages, &consumers);
    if (rc == -SY_ENOTFOUND) {
        out->present = false;
        return syctl_amqp_reopen(c, &amqp);
    }
    if (rc < 0)
        return syctl_fail(syctl_exit_for(rc), "queue %s: %s: %s", queue, sy_strerror(rc),
                          sy_amqp_error(amqp));
    out->present = true;
    out->messages = messages;
    out->consumers = consumers;
    return 0;
}

static int stat_worker(struct syctl *c, const struct sy_topo_worker *w, struct wstat *ws)
{
    char name[256];
    int rc;

    memset(ws, 0, sizeof(*ws));
    ws->worker = w->name;
    if (sy_topo_queue_name(w, ws->queue, sizeof(ws->queue)) < 0 ||
        sy_topo_dead_name(w, name, sizeof(name)) < 0)
        return syctl_fail(SYCTL_EXIT_CONFIG, "worker '%s': name too long", w->name);
    if ((rc = stat_queue(c, ws->queue, &ws->work)) != 0 ||
        (rc = stat_queue(c, name, &ws->dead)) != 0)
        return rc;
    for (size_t i = 0; i < w->ndelays; i++) {
        struct qstat q;
        if (sy_topo_retry_name(w, i, name, sizeof(name)) < 0)
            return syctl_fail(SYCTL_EXIT_CONFIG, "worker '%s': name too long", w->name);
        if ((rc = stat_queue(c, name, &q)) != 0)
            return rc;
        if (q.present) {
            ws->retry.present = true;
            ws->retry.messages += q.messages;
        }
    }
    return 0;
}

static json_t *count_json(const struct qstat *q, unsigned long long v)
{
    return q->present ? json_integer((json_int_t)v) : json_null();
}

static int print_json(const char *exchange, const struct wstat *ws, size_t n)
{
    json_t *root = json_object(), *workers = json_array();
    int rc = SYCTL_EXIT_FAIL;

    if (!root || !workers)
        goto out;
    json_object_set_new(root, "exchange", json_string(exchange));
    json_object_set(root, "workers", workers);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (!o)
            goto out;
        json_object_set_new(o, "worker", json_string(ws[i].worker));
        json_object_set_new(o, "queue", json_string(ws[i].queue));
        json_object_set_new(o, "messages", count_json(&ws[i].work, ws[i].work.messages));
        json_object_set_new(o, "consumers", count_json(&ws[i].work, ws[i].work.consumers));
        json_object_set_new(o, "retry", count_json(&ws[i].retry, ws[i].retry.messages));
        json_object_set_new(o, "dead", count_json(&ws[i].dead, ws[i].dead.messages));
        json_array_append_new(workers, o);
    }
    if (json_dumpf(root, stdout, JSON_INDENT(2)) < 0)
        goto out;
    printf("\n");
    rc = SYCTL_OK;
out:
    json_decref(workers);
    json_decref(root);
    if (rc != SYCTL_OK)
        return syctl_fail(rc, "cannot write JSON");
    return rc;
}

static void cell(const struct qstat *q, unsigned long long v, int width)
{
    if (q->present)
        printf(" %*llu", width, v);
    else
        printf(" %*s", width, "-");
}

static void print_table(const struct wstat *ws, size_t n)
{
    int wn = 6, qn = 5;

    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(ws[i].worker), lq = (int)strlen(ws[i].queue);
        wn = l > wn ? l : wn;
        qn = lq > qn ? lq : qn;
    }
    printf("%-*s %-*s %10s %9s %8s %8s\n", wn, "WORKER", qn, "QUEUE", "MESSAGES", "CONSUMERS",
           "RETRY", "DEAD");
    for (size_t i = 0; i < n; i++) {
        printf("%-*s %-*s", wn, ws[i].worker, qn, ws[i].queue);
        cell(&ws[i].work, ws[i].work.messages, 10);
        cell(&ws[i].work, ws[i].work.consumers, 9);
        cell(&ws[i].retry, ws[i].retry.messages, 8);
        cell(&ws[i].dead, ws[i].dead.messages, 8);
        printf("\n");
    }
}

int syctl_cmd_queues(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];
    const struct sy_topology *t;
    const struct sy_topo_worker *only = NULL;
    struct wstat *ws = NULL;
    size_t n = 0;
    int rc;

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "queues: %s (see 'syctl queues --help')", err);
    if (a.help) {
        syctl_help(help, NEED);
        return SYCTL_OK;
    }
    if (a.npos)
        return syctl_fail(SYCTL_EXIT_USAGE, "queues: unexpected argument '%s'", a.pos[0]);
    if ((rc = syctl_topology(c, &t)) != 0)
        return rc;
    if (a.val[OPT_WORKER] && (rc = syctl_worker(c, a.val[OPT_WORKER], &only)) != 0)
        return rc;

    ws = calloc(t->nworkers ? t->nworkers : 1, sizeof(*ws));
    if (!ws)
        return syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < t->nworkers; i++) {
        if (only && &t->workers[i] != only)
            continue;
        if ((rc = stat_worker(c, &t->workers[i], &ws[n])) != 0)
            goto out;
        n++;
    }
    if (a.set[OPT_JSON]) {
        rc = print_json(t->exchange, ws, n);
    } else {
        print_table(ws, n);
        rc = SYCTL_OK;
    }
out:
    free(ws);
    return rc;
}
