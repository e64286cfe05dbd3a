/* optimizer.c - sy-optimizer's handler: a solve checked, claimed as a run, solved in a child
 * with progress and cancel, its end stored and published; cancels recorded for any replica. */
#include "optimizer/optimizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "optimizer/child.h"
#include "optimizer/model.h"
#include "optimizer/runs.h"
#include "optimizer/scenario.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/pg.h"

#define PUBLISH_TIMEOUT 10000
#define READY_EVERY_MS  5000
#define POLL_MS         200
#define CHECK_EVERY_MS  1000
/* What an optimizer.result may carry before its plan is left out (the runtime refuses messages
 * past SY_MSG_MAX_BYTES / SY_MSG_MAX_ITEMS); the envelope needs a little room. */
#define RESULT_BYTES_MAX (SY_MSG_MAX_BYTES - 64u * 1024u)
#define RESULT_ITEMS_MAX (SY_MSG_MAX_ITEMS - 100u)

struct op_conf {
    long long time_max_ms, mem_mb, progress_ms, stale_ms;
};

#define C_(field) offsetof(struct op_conf, field)
static const struct sy_conf_key op_conf_keys[] = {
    {"SY_OPTIMIZER_TIME_LIMIT_MAX", SY_CONF_MS, "25m", 1000, 86400000, C_(time_max_ms), 0,
     "longest time limit a solve may ask for, and the limit of one that asks for none; a solve "
     "asking for more is rejected. RabbitMQ closes a channel whose delivery stays unacked past "
     "its consumer_timeout (30 min by default): keep this below it, with room for the 5 s the "
     "solver gets to stop"},
    {"SY_OPTIMIZER_MEM_LIMIT_MB", SY_CONF_INT, "2048", 16, 65536, C_(mem_mb), 0,
     "memory of a solver process when the solve's options give none"},
    {"SY_OPTIMIZER_PROGRESS_EVERY", SY_CONF_MS, "2s", 100, 600000, C_(progress_ms), 0,
     "at most one optimizer.progress per run this often"},
    {"SY_OPTIMIZER_STALE", SY_CONF_MS, "30s", 3000, 3600000, C_(stale_ms), 0,
     "a running run whose heartbeat (every second) is older than this lost its worker: a "
     "redelivered solve runs it again"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

struct op_g {
    struct sy_worker *w;
    const struct op_conf *conf;
    const char *pg_url;
    struct sy_pg_probe *ready;
    struct sy_counter *runs[6];
};

struct op_thread {
    struct op_g *g;
    struct sy_pg *pg;
};

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Packs data and publishes it as type with id, waiting for the confirm. */
static int publish_json(struct op_thread *t, const char *type, const char *id, const json_t *data)
{
    void *mp = NULL;
    size_t len = 0;
    int rc = sy_json_to_msgpack(data, &mp, &len);

    if (rc == 0)
        rc = sy_worker_publish(t->g->w, type, id, mp, len, PUBLISH_TIMEOUT, NULL);
    free(mp);
    return rc;
}

/* msgpack elements of v as the runtime counts them (entries of every map and array). */
static size_t items_of(const json_t *v, size_t stop)
{
    size_t n = 0;

    if (json_is_object(v)) {
        const char *k;
        json_t *x;

        n = json_object_size(v);
        json_object_foreach((json_t *)v, k, x)
        {
            if (n > stop)
                break;
            n += items_of(x, stop);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;

        n = json_array_size(v);
        json_array_foreach(v, i, x)
        {
            if (n > stop)
                break;
            n += items_of(x, stop);
        }
    }
    return n;
}

/* optimizer.result for the run: its stored result, the plan left out when it would not fit in
 * one message. */
static int publish_result(struct op_thread *t, const char *run_id, const json_t *result)
{
    char id[SY_MSG_ID_MAX + 1];
    json_t *data = json_deep_copy(result);
    void *mp = NULL;
    size_t len = 0;
    int rc;

    if (!data)
        return -SY_ENOMEM;
    json_object_set_new(data, "run_id", json_string(run_id));
    if (!json_object_get(data, "kind"))
        json_object_set_new(data, "kind", json_string("scenario"));
    rc = sy_json_to_msgpack(data, &mp, &len);
    if (rc == 0 &&
        (len > RESULT_BYTES_MAX || items_of(data, RESULT_ITEMS_MAX) > RESULT_ITEMS_MAX)) {
        json_object_del(data, "plan");
        json_object_del(data, "variables");
        json_object_set_new(data, "plan_omitted", json_true());
        free(mp);
        mp = NULL;
        rc = sy_json_to_msgpack(data, &mp, &len);
    }
    snprintf(id, sizeof id, "optimizer.result:%s", run_id);
    if (rc == 0)
        rc = sy_worker_publish(t->g->w, "optimizer.result", id, mp, len, PUBLISH_TIMEOUT, NULL);
    free(mp);
    json_decref(data);
    return rc;
}

static void publish_progress(struct op_thread *t, const char *run_id, unsigned seq,
                             const struct op_progress *p)
{
    char id[SY_MSG_ID_MAX + 1];
    json_t *d = json_pack("{s:s, s:o, s:o, s:o, s:f, s:i}", "run_id", run_id, "incumbent",
                          num_or_null(p->incumbent), "bound", num_or_null(p->bound), "gap",
                          num_or_null(p->gap), "seconds", p->seconds < 0 ? 0.0 : p->seconds,
                          "nodes", p->nodes < 0 ? 0 : p->nodes);
    int rc;

    if (!d)
        return;
    snprintf(id, sizeof id, "optimizer.progress:%s:%u", run_id, seq);
    if ((rc = publish_json(t, "optimizer.progress", id, d)) != 0)
        sy_log_warn("optimizer.progress", "%s: not published: %s", run_id, sy_strerror(rc));
    json_decref(d);
    if (runs_progress(t->pg, run_id, p) != 0)
        sy_log_warn("optimizer.progress", "%s: not recorded: %s", run_id, sy_pg_error(t->pg));
}

/* The options of the message, checked; the time limit capped, the memory defaulted. As the
 * JSON to record into *json. */
static enum sy_verdict read_options(struct op_thread *t, struct sy_msg *msg, struct op_options *o,
                                    json_t **json)
{
    const struct op_conf *conf = t->g->conf;
    double cap = (double)conf->time_max_ms / 1000.0;
    int64_t mem = 0;
    char err[256];

    *o = (struct op_options){0};
    sy_msg_get_double(msg, "options.time_limit_s", &o->time_limit_s);
    sy_msg_get_double(msg, "options.mip_gap", &o->mip_gap);
    sy_msg_get_bool(msg, "options.lp_only", &o->lp_only);
    sy_msg_get_int(msg, "options.mem_limit_mb", &mem);
    if (o->time_limit_s > cap)
        return sy_msg_fail(msg, SY_REJECT,
                           "options.time_limit_s: %g s is more than this worker's cap of %g s "
                           "(SY_OPTIMIZER_TIME_LIMIT_MAX, below RabbitMQ's consumer ack "
                           "timeout); ask for less",
                           o->time_limit_s, cap);
    if (!(o->time_limit_s > 0))
        o->time_limit_s = cap;
    if (mem < 0 || mem > OP_MEM_LIMIT_MAX_MB)
        return sy_msg_fail(msg, SY_REJECT, "options.mem_limit_mb: must be 0..%d",
                           OP_MEM_LIMIT_MAX_MB);
    o->mem_limit_mb = mem > 0 ? (size_t)mem : (size_t)conf->mem_mb;
    if (op_options_check(o, err, sizeof err) != 0)
        return sy_msg_fail(msg, SY_REJECT, "options.%s", err);
    *json =
        json_pack("{s:f, s:f, s:b, s:I}", "time_limit_s", o->time_limit_s, "mip_gap", o->mip_gap,
                  "lp_only", o->lp_only, "mem_limit_mb", (json_int_t)o->mem_limit_mb);
    if (!*json)
        return sy_msg_fail(msg, SY_RETRY, "out of memory");
    return SY_ACK;
}

/* The result of a run cancelled before its solve started. */
static json_t *cancelled_result(const char *kind)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:n, s:n, s:f}", "kind", kind, "status", "cancelled",
                     "reason", "cancelled before the solve started", "objective", "bound", "gap",
                     "seconds", 0.0);
}

/* Runs the child to its end: progress published, heartbeat and cancel checked. NULL (and the
 * run given back) when the process is stopping; *result otherwise. */
static enum sy_verdict run_child(struct op_thread *t, struct sy_msg *msg, const char *run_id,
                                 const struct op_job *job, const struct op_options *opt,
                                 json_t **result)
{
    const char *inst = sy_worker_instance(t->g->w);
    struct op_child *c = NULL;
    struct op_progress p, last = {0};
    int64_t next_check = sy_mono_ms() + CHECK_EVERY_MS, next_pub = 0;
    bool fresh = false, cancelled = false;
    unsigned seq = 0;
    char err[512];
    int r;

    *result = NULL;
    if (op_child_start(job, opt, &c, err, sizeof err) != 0) {
        runs_release(t->pg, run_id, inst);
        return sy_msg_fail(msg, SY_RETRY, "starting the solver: %s", err);
    }
    for (;;) {
        r = op_child_poll(c, POLL_MS, &p);
        if (r == 2)
            break;
        if (r == 1) {
            last = p;
            fresh = true;
        }
        int64_t now = sy_mono_ms();
        if (fresh && now >= next_pub) {
            publish_progress(t, run_id, ++seq, &last);
            next_pub = now + t->g->conf->progress_ms;
            fresh = false;
        }
        if (sy_worker_stopping(t->g->w)) {
            op_child_destroy(c);
            runs_release(t->pg, run_id, inst);
            return sy_msg_fail(msg, SY_RETRY,
                               "stopping: run %s given back unfinished, for another replica",
                               run_id);
        }
        if (now >= next_check) {
            bool cancel = false;

            if (runs_heartbeat(t->pg, run_id, inst, &cancel) != 0)
                sy_log_warn("optimizer.heartbeat", "%s: %s", run_id, sy_pg_error(t->pg));
            if (cancel && !cancelled) {
                sy_log_info("optimizer.cancel", "%s: cancelling the solve", run_id);
                op_child_cancel(c);
                cancelled = true;
            }
            next_check = now + CHECK_EVERY_MS;
        }
    }
    *result = op_child_wait(c);
    op_child_destroy(c);
    if (!*result) {
        runs_release(t->pg, run_id, inst);
        return sy_msg_fail(msg, SY_RETRY, "out of memory reading the result");
    }
    return SY_ACK;
}

/* optimizer.solve and optimizer.solve_model. */
static enum sy_verdict solve(struct op_thread *t, struct sy_msg *msg, bool model)
{
    const char *kind = model ? "model" : "scenario", *inst = sy_worker_instance(t->g->w);
    char run_id[RUNS_ID_MAX + 2], dataset[80] = "", fmtname[16], err[512];
    struct op_scenario *sc = NULL;
    struct op_job job = {0};
    struct op_options opt;
    json_t *opts = NULL, *data = NULL, *result = NULL;
    enum runs_claim claim;
    enum sy_verdict v;
    bool cancel = false;
    int rc;

    if (sy_msg_has(msg, "run_id")) {
        if (sy_msg_copy_str(msg, "run_id", run_id, sizeof run_id) != 0 || !runs_id_ok(run_id))
            return sy_msg_fail(msg, SY_REJECT, "data.run_id: 1 to %d of A-Z a-z 0-9 _ . : @ -",
                               RUNS_ID_MAX);
    } else if (snprintf(run_id, sizeof run_id, "%s", sy_msg_id(msg)) >= (int)sizeof run_id ||
               !runs_id_ok(run_id)) {
        return sy_msg_fail(msg, SY_REJECT,
                           "data.run_id: absent, and the message id is no run id (1 to %d of "
                           "A-Z a-z 0-9 _ . : @ -): give one",
                           RUNS_ID_MAX);
    }
    if ((v = read_options(t, msg, &opt, &opts)) != SY_ACK)
        return v;

    if (model) {
        enum op_model_format f;
        const char *text;
        size_t len;

        if (sy_msg_copy_str(msg, "format", fmtname, sizeof fmtname) != 0 ||
            op_model_format_from_name(fmtname, &f) != 0) {
            v = sy_msg_fail(msg, SY_REJECT, "data.format: mps, free_mps or lp");
            goto out;
        }
        if (sy_msg_get_str(msg, "text", &text, &len) != 0 || len == 0) {
            v = sy_msg_fail(msg, SY_REJECT, "data.text: required, the model");
            goto out;
        }
        job = (struct op_job){.format = f, .text = text, .len = len};
    } else {
        const json_t *j;
        bool has_ds = sy_msg_has(msg, "dataset");

        if (!(data = sy_msg_data_json(msg))) {
            v = sy_msg_fail(msg, SY_RETRY, "out of memory");
            goto out;
        }
        j = json_object_get(data, "scenario");
        if ((j != NULL) == has_ds) {
            v = sy_msg_fail(msg, SY_REJECT, "data.scenario, data.dataset: exactly one is required");
            goto out;
        }
        if (has_ds) {
            json_t *ds = NULL;

            if (sy_msg_copy_str(msg, "dataset", dataset, sizeof dataset) != 0) {
                v = sy_msg_fail(msg, SY_REJECT, "data.dataset: at most 64 characters");
                goto out;
            }
            rc = runs_dataset(t->pg, dataset, &ds);
            if (rc == -SY_ENOTFOUND) {
                v = sy_msg_fail(msg, SY_REJECT,
                                "data.dataset: '%s' is not loaded (syctl optimizer load)", dataset);
                goto out;
            }
            if (rc != 0) {
                v = sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
                goto out;
            }
            json_object_set_new(data, "scenario", ds);
            j = ds;
        }
        if ((rc = op_scenario_from_json(j, &sc, err, sizeof err)) != 0) {
            v = sy_msg_fail(msg, rc == -SY_ENOMEM ? SY_RETRY : SY_REJECT, "%s%s: %s",
                            has_ds ? "dataset " : "data.scenario", dataset, err);
            goto out;
        }
        job.scenario = sc;
    }

    rc = runs_claim(t->pg, run_id, kind, dataset[0] ? dataset : NULL, opts, inst,
                    t->g->conf->stale_ms / 1000, &claim, &cancel, &result);
    if (rc != 0) {
        v = sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
        goto out;
    }
    if (claim == RUNS_BUSY) {
        sy_msg_retry_after(msg, t->g->conf->stale_ms);
        v = sy_msg_fail(msg, SY_RETRY, "run %s: another replica is solving it", run_id);
        goto out;
    }
    if (claim == RUNS_DONE) {
        sy_log_info("optimizer.done", "%s: ended before; its result is published again", run_id);
        goto publish;
    }
    if (cancel) {
        result = cancelled_result(kind);
    } else {
        sy_log_info("optimizer.solve", "%s: solving a %s (time limit %g s, %zu MB)", run_id, kind,
                    opt.time_limit_s, opt.mem_limit_mb);
        if ((v = run_child(t, msg, run_id, &job, &opt, &result)) != SY_ACK)
            goto out;
        json_object_set_new(result, "kind", json_string(kind));
    }
    if (!result) {
        runs_release(t->pg, run_id, inst);
        v = sy_msg_fail(msg, SY_RETRY, "out of memory");
        goto out;
    }
    if (runs_finish(t->pg, run_id, inst, result) != 0) {
        /* The redelivery solves it again: nothing was recorded. */
        runs_release(t->pg, run_id, inst);
        v = sy_msg_fail(msg, SY_RETRY, "PostgreSQL: storing the result: %s", sy_pg_error(t->pg));
        goto out;
    }
    {
        const char *st = json_string_value(json_object_get(result, "status"));
        enum op_status s;

        if (st && op_status_from_name(st, &s) == 0)
            sy_counter_add(t->g->runs[s], 1);
        sy_log_info("optimizer.end", "%s: %s", run_id, st ? st : "?");
    }
publish:
    if ((rc = publish_result(t, run_id, result)) != 0)
        v = sy_msg_fail(msg, SY_RETRY, "publishing optimizer.result: %s", sy_strerror(rc));
    else
        v = SY_ACK;
out:
    json_decref(result);
    json_decref(opts);
    json_decref(data);
    op_scenario_free(sc);
    return v;
}

static enum sy_verdict cancel(struct op_thread *t, struct sy_msg *msg)
{
    char run_id[RUNS_ID_MAX + 2];

    if (sy_msg_copy_str(msg, "run_id", run_id, sizeof run_id) != 0 || !runs_id_ok(run_id))
        return sy_msg_fail(msg, SY_REJECT, "data.run_id: 1 to %d of A-Z a-z 0-9 _ . : @ -",
                           RUNS_ID_MAX);
    if (runs_cancel(t->pg, run_id) != 0)
        return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
    sy_log_info("optimizer.cancel", "%s: cancel asked", run_id);
    return SY_ACK;
}

static enum sy_verdict op_handle(void *tstate, struct sy_msg *msg)
{
    struct op_thread *t = tstate;
    const char *type = sy_msg_type(msg);
    char err[256];

    if (!t->pg && !(t->pg = sy_pg_connect(t->g->pg_url, err, sizeof err)))
        return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", err);
    if (strcmp(type, "optimizer.solve") == 0)
        return solve(t, msg, false);
    if (strcmp(type, "optimizer.solve_model") == 0)
        return solve(t, msg, true);
    if (strcmp(type, "optimizer.cancel") == 0)
        return cancel(t, msg);
    return sy_msg_fail(msg, SY_REJECT, "type %s: not one sy-optimizer handles", type);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static void op_exit(void *state)
{
    struct op_g *g = state;

    if (!g)
        return;
    sy_pg_probe_free(g->ready);
    free(g);
}

static int op_init(struct sy_worker *w, void **state)
{
    struct op_g *g = calloc(1, sizeof *g);

    if (!g)
        return -SY_ENOMEM;
    g->w = w;
    g->conf = sy_worker_conf(w);
    if (!(g->pg_url = sy_worker_url(w, "pg"))) {
        sy_log_error("worker.config", "SY_PG_URL: required (runs and datasets live in PostgreSQL)");
        op_exit(g);
        return -SY_ECONFIG;
    }
    if (!(g->ready = sy_pg_probe_new(g->pg_url, READY_EVERY_MS))) {
        op_exit(g);
        return -SY_ENOMEM;
    }
    for (int s = OP_OPTIMAL; s <= OP_ERROR; s++) {
        char labels[64];

        snprintf(labels, sizeof labels, "status=\"%s\"", op_status_name((enum op_status)s));
        g->runs[s] = sy_counter_get("sy_optimizer_runs_total", "runs ended, by status", labels);
    }
    sy_log_info("optimizer.start", "time limit cap %lld ms, default memory %lld MB",
                g->conf->time_max_ms, g->conf->mem_mb);
    *state = g;
    return 0;
}

static int op_thread_init(void *state, void **tstate)
{
    struct op_thread *t = calloc(1, sizeof *t);

    if (!t)
        return -SY_ENOMEM;
    t->g = state;
    *tstate = t;
    return 0;
}

static void op_thread_exit(void *state, void *tstate)
{
    struct op_thread *t = tstate;

    (void)state;
    sy_pg_destroy(t->pg);
    free(t);
}

static int op_ready(void *state)
{
    return sy_pg_probe_check(((struct op_g *)state)->ready);
}

const struct sy_handler optimizer_handler = {
    .name = "optimizer",
    .conf = op_conf_keys,
    .conf_size = sizeof(struct op_conf),
    .init = op_init,
    .thread_init = op_thread_init,
    .thread_exit = op_thread_exit,
    .handle = op_handle,
    .ready = op_ready,
    .exit = op_exit,
};
