/* cmd_schedule.c - `syctl schedule list|trigger`: the scheduler's jobs as the schedule file and
 * the PostgreSQL ledger see them, and a tick published by hand.
 *
 * The schedule is loaded with the schemas and topology the way sy-scheduler loads it, so a
 * file syctl accepts is one the worker accepts. A manual tick goes through the ledger like a
 * scheduled one: claimed first (once per job and second), published with a broker confirm,
 * then marked; a claim whose publish fails stays pending, and the scheduler's leader publishes
 * it under the same message id. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/ledger.h"
#include "scheduler/schedule.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define NEED_LIST          (SYCTL_NEED_TOPOLOGY | SYCTL_NEED_SCHEMAS | SYCTL_NEED_PG | SYCTL_NEED_SCHEDULE)
#define NEED_TRIGGER       (NEED_LIST | SYCTL_NEED_AMQP)
#define LEDGER_JOBS_MAX    100000u /* ledger rows one list reads */
#define NEXT_SCAN_MAX      10000   /* ticks stepped over while looking for the next one due */
#define PUBLISH_TIMEOUT_MS 10000

static const char help[] =
    "Usage: syctl schedule list [--json]\n"
    "       syctl schedule trigger JOB\n"
    "\n"
    "The jobs of the scheduler's schedule file (SY_SCHEDULE) and what its ledger in\n"
    "PostgreSQL says about them, for the scheduler group SY_SCHEDULER_GROUP. list shows when\n"
    "each job ticks next and last; trigger publishes one tick of a job now.\n"
    "Run 'syctl schedule SUBCOMMAND --help' for details.\n";

static const char help_list[] =
    "Usage: syctl schedule list [--json]\n"
    "\n"
    "One row per job of the schedule file: its name, when it ticks, its next tick (UTC, and\n"
    "how long until it is due, jitter included), the message id of the newest tick the broker\n"
    "confirmed with the scheduler instance that published it and how long ago, when it was\n"
    "last triggered by hand, how many ticks its missed policy dropped, and how many claimed\n"
    "ticks still wait for a confirm (the scheduler's leader publishes those). Then the jobs\n"
    "the ledger still knows that are no longer in the file. The schedule is checked against\n"
    "the schemas and topology as sy-scheduler checks it (exit 78 naming the job at fault).\n"
    "When PostgreSQL cannot be reached, the schedule part is printed and syctl exits 69.\n"
    "\n"
    "Options:\n"
    "  --json           one JSON object: {\"group\", \"schedule\", \"now\", \"ledger\" (false "
    "when\n"
    "                   unreachable), \"jobs\": [{\"name\", \"when\", \"type\", \"next\",\n"
    "                   \"next_due\", \"due_in_s\", \"cursor\", \"last_tick\", \"last_id\",\n"
    "                   \"last_instance\", \"last_published\", \"last_manual\",\n"
    "                   \"last_manual_id\", \"published\", \"dropped\", \"pending\",\n"
    "                   \"pending_oldest\"}], \"removed\": [same fields but the schedule's]};\n"
    "                   times are RFC 3339 UTC or null\n"
    "  -h, --help       this help\n";

static const char help_trigger[] =
    "Usage: syctl schedule trigger JOB\n"
    "\n"
    "Publishes one tick of JOB now, with the job's type and data, outside its schedule: the\n"
    "tick is claimed in the ledger (at most one per job and second), published to the\n"
    "topology's exchange with the job's type as routing key and a broker confirm, then\n"
    "marked published. Its message id is \"<job>@<now as YYYY-MM-DDTHH:MM:SSZ>/manual\"; it\n"
    "is printed. If the publish fails, the claim stays pending and the scheduler's leader\n"
    "publishes it with the same id. Exit 4 when the schedule file has no such job, 1 when it\n"
    "was already triggered within this second or the publish failed.\n"
    "\n"
    "Options:\n"
    "  -h, --help       this help\n";

enum { OPT_JSON };
static const struct syctl_optspec specs[] = {
    [OPT_JSON] = {"json", false},
    {NULL, false},
};

/* --- Time for people ------------------------------------------------------------------------ */

static void fmt_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "-");
}

/* "4m10s", "2h", "3d5h": the two largest units, a zero second unit left out. */
static void fmt_dur(int64_t s, char *buf, size_t n)
{
    static const struct {
        int64_t secs;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    if (s < 0)
        s = 0;
    if (s == 0) {
        snprintf(buf, n, "0s");
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        if (s < units[i].secs)
            continue;
        long long big = (long long)(s / units[i].secs);
        long long rest = i < 3 ? (long long)(s % units[i].secs / units[i + 1].secs) : 0;
        if (rest)
            snprintf(buf, n, "%lld%c%lld%c", big, units[i].unit, rest, units[i + 1].unit);
        else
            snprintf(buf, n, "%lld%c", big, units[i].unit);
        return;
    }
}

static json_t *time_json(int64_t t)
{
    char buf[32];
    if (t <= 0)
        return json_null();
    fmt_time(t, buf, sizeof buf);
    return json_string(buf);
}

static json_t *text_json(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* --- The schedule and the ledger ------------------------------------------------------------ */

/* Settings, group, schemas, topology and schedule, in that order; each failure is exit 78
 * with the reason (the loader's "path:line: job 'x': why" for the schedule). */
static int load_schedule(struct syctl *c, unsigned need, struct sched_schedule **out)
{
    const struct sy_schemas *schemas;
    const struct sy_topology *topo;
    char err[1024];
    int rc;

    *out = NULL;
    if ((rc = syctl_load_conf(c, need)) != 0)
        return rc;
    if (!sched_ledger_group_ok(c->conf.scheduler_group))
        return syctl_fail(SYCTL_EXIT_CONFIG,
                          "SY_SCHEDULER_GROUP: expected 1 to %d characters of [A-Za-z0-9._-], "
                          "got '%.80s'",
                          SCHED_GROUP_MAX, c->conf.scheduler_group);
    if ((rc = syctl_schemas(c, &schemas)) != 0 || (rc = syctl_topology(c, &topo)) != 0)
        return rc;
    *out = sched_schedule_load(c->conf.schedule, schemas, topo, err, sizeof err);
    if (!*out)
        return syctl_fail(SYCTL_EXIT_CONFIG, "schedule: %s", err);
    return 0;
}

/* The next tick of j that is not due yet at now, and when it is due (tick + jitter): the tick
 * after now, unless an earlier one still waits for its jitter. -1 when there is none. */
static int64_t next_tick(const struct sched_job *j, int64_t now, int64_t *due)
{
    int64_t t = sched_job_next(j, now - (j->jitter_s > 0 ? j->jitter_s : 0));
    for (int i = 0; t >= 0 && i < NEXT_SCAN_MAX; i++) {
        *due = t + sched_job_jitter(j, t);
        if (*due > now)
            return t;
        t = sched_job_next(j, t);
    }
    *due = -1;
    return -1;
}

/* Everything list shows of one job; sched NULL for a job only the ledger knows. */
struct row {
    const struct sched_job *sched;
    const struct sched_ledger_job *led; /* NULL: no ledger row, or no ledger */
    int64_t next, due;
};

static const struct sched_ledger_job *find_ledger(const struct sched_ledger_job *lj, size_t n,
                                                  const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lj[i].state.job, name) == 0)
            return &lj[i];
    }
    return NULL;
}

/* Connects without printing, so list can show the schedule before it says why the ledger is
 * missing. The connection is kept in c (closed by syctl_close). */
static int open_ledger(struct syctl *c, char *err, size_t errlen)
{
    if (!c->pg)
        c->pg = sy_pg_connect(c->conf.pg_url, err, errlen);
    return c->pg ? 0 : -SY_ECONN;
}

/* --- list ----------------------------------------------------------------------------------- */

static json_t *row_json(const struct row *r, int64_t now)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    const struct sched_job_state *st = r->led ? &r->led->state : NULL;
    json_object_set_new(o, "name", json_string(r->sched ? r->sched->name : st->job));
    if (r->sched) {
        json_object_set_new(o, "when", json_string(r->sched->when));
        json_object_set_new(o, "type", json_string(r->sched->type));
        json_object_set_new(o, "next", time_json(r->next));
        json_object_set_new(o, "next_due", time_json(r->next >= 0 ? r->due : 0));
        json_object_set_new(o, "due_in_s", r->next >= 0 ? json_integer(r->due - now) : json_null());
    }
    json_object_set_new(o, "cursor", time_json(st ? st->cursor : 0));
    json_object_set_new(o, "last_tick", time_json(st ? st->last_tick : 0));
    json_object_set_new(o, "last_id", text_json(st ? st->last_id : NULL));
    json_object_set_new(o, "last_instance", text_json(st ? st->last_instance : NULL));
    json_object_set_new(o, "last_published", time_json(st ? st->last_published : 0));
    json_object_set_new(o, "last_manual", time_json(st ? st->last_manual : 0));
    json_object_set_new(o, "last_manual_id", text_json(r->led ? r->led->last_manual_id : NULL));
    json_object_set_new(o, "published", json_integer(st ? (json_int_t)st->published : 0));
    json_object_set_new(o, "dropped", json_integer(st ? (json_int_t)st->dropped : 0));
    json_object_set_new(o, "pending", json_integer(r->led ? (json_int_t)r->led->pending : 0));
    json_object_set_new(o, "pending_oldest", time_json(r->led ? r->led->pending_oldest : 0));
    return o;
}

static int print_json(const struct syctl *c, const struct row *rows, size_t n,
                      const struct row *gone, size_t ngone, bool ledger, int64_t now)
{
    json_t *root = json_object(), *jobs = json_array(), *removed = json_array();
    int rc = SYCTL_EXIT_FAIL;

    if (!root || !jobs || !removed)
        goto out;
    json_object_set_new(root, "group", json_string(c->conf.scheduler_group));
    json_object_set_new(root, "schedule", json_string(c->conf.schedule));
    json_object_set_new(root, "now", time_json(now));
    json_object_set_new(root, "ledger", json_boolean(ledger));
    json_object_set(root, "jobs", jobs);
    json_object_set(root, "removed", removed);
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(jobs, row_json(&rows[i], now)) < 0)
            goto out;
    }
    for (size_t i = 0; i < ngone; i++) {
        if (json_array_append_new(removed, row_json(&gone[i], now)) < 0)
            goto out;
    }
    if (json_dumpf(root, stdout, JSON_INDENT(2)) < 0)
        goto out;
    printf("\n");
    rc = SYCTL_OK;
out:
    json_decref(removed);
    json_decref(jobs);
    json_decref(root);
    if (rc != SYCTL_OK)
        return syctl_fail(rc, "cannot write JSON");
    return rc;
}

/* The cells of one table row. */
struct cells {
    char next[96], last[SCHED_TICK_ID_MAX + 48], manual[48], dropped[24], pending[24];
};

static void fill_cells(const struct row *r, int64_t now, struct cells *cl)
{
    char t[32], d[32];
    const struct sched_job_state *st = r->led ? &r->led->state : NULL;

    snprintf(cl->next, sizeof cl->next, "-");
    if (r->next >= 0) {
        fmt_time(r->next, t, sizeof t);
        fmt_dur(r->due - now, d, sizeof d);
        snprintf(cl->next, sizeof cl->next, "%s (in %s)", t, d);
    }
    snprintf(cl->last, sizeof cl->last, "-");
    if (st && st->last_id[0]) {
        fmt_dur(now - st->last_published, d, sizeof d);
        snprintf(cl->last, sizeof cl->last, "%s, %s ago", st->last_id, d);
    }
    snprintf(cl->manual, sizeof cl->manual, "-");
    if (st && st->last_manual > 0) {
        fmt_dur(now - st->last_manual, d, sizeof d);
        snprintf(cl->manual, sizeof cl->manual, "%s ago", d);
    }
    snprintf(cl->dropped, sizeof cl->dropped, "%llu", st ? (unsigned long long)st->dropped : 0ULL);
    snprintf(cl->pending, sizeof cl->pending, "%llu",
             r->led ? (unsigned long long)r->led->pending : 0ULL);
}

static int width(int w, const char *s)
{
    int l = (int)strlen(s);
    return l > w ? l : w;
}

static void print_table(const struct syctl *c, const struct row *rows, size_t n,
                        const struct row *gone, size_t ngone, bool ledger, int64_t now)
{
    struct cells cl;
    int wj = 3, ww = 4, wn = 4, wl = 4, wb = 2, wm = 6;

    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        fill_cells(r, now, &cl);
        wj = width(wj, r->sched->name);
        ww = width(ww, r->sched->when);
        wn = width(wn, cl.next);
        wl = width(wl, cl.last);
        wm = width(wm, cl.manual);
        wb =
            width(wb, r->led && r->led->state.last_instance[0] ? r->led->state.last_instance : "-");
    }
    printf("group %s, schedule %s\n", c->conf.scheduler_group, c->conf.schedule);
    if (n == 0)
        printf("no jobs in the schedule\n");
    else if (!ledger)
        printf("%-*s  %-*s  %s\n", wj, "JOB", ww, "WHEN", "NEXT");
    else
        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %7s  %7s\n", wj, "JOB", ww, "WHEN", wn, "NEXT",
               wl, "LAST", wb, "BY", wm, "MANUAL", "DROPPED", "PENDING");
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        fill_cells(r, now, &cl);
        if (!ledger) {
            printf("%-*s  %-*s  %s\n", wj, r->sched->name, ww, r->sched->when, cl.next);
            continue;
        }
        const char *by =
            r->led && r->led->state.last_instance[0] ? r->led->state.last_instance : "-";
        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %7s  %7s\n", wj, r->sched->name, ww,
               r->sched->when, wn, cl.next, wl, cl.last, wb, by, wm, cl.manual, cl.dropped,
               cl.pending);
    }
    for (size_t i = 0; ledger && i < n; i++) {
        const struct sched_ledger_job *lj = rows[i].led;
        if (!lj || lj->pending == 0)
            continue;
        char t[32];
        fmt_time(lj->pending_oldest, t, sizeof t);
        printf("%s: %llu claimed tick(s) not confirmed yet, the oldest %s; the scheduler's "
               "leader publishes them\n",
               lj->state.job, (unsigned long long)lj->pending, t);
    }
    if (ngone == 0)
        return;
    printf("\nIn the ledger but no longer in the schedule:\n");
    for (size_t i = 0; i < ngone; i++) {
        const struct sched_ledger_job *lj = gone[i].led;
        fill_cells(&gone[i], now, &cl);
        printf("  %s  last %s  pending %llu%s\n", lj->state.job, cl.last,
               (unsigned long long)lj->pending,
               lj->pending ? " (the scheduler's leader publishes them)" : "");
    }
}

static int schedule_list(struct syctl *c, const struct syctl_args *a)
{
    struct sched_schedule *s = NULL;
    struct sched_ledger_job *lj = NULL;
    struct row *rows = NULL, *gone = NULL;
    size_t nlj = 0, ngone = 0;
    char err[512] = "";
    bool ledger = false;
    int ledger_rc = 0, rc;

    if (a->npos != 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "schedule list: unexpected argument '%s'", a->pos[1]);
    if ((rc = load_schedule(c, NEED_LIST, &s)) != 0)
        goto out;
    int64_t now = (int64_t)time(NULL);

    ledger_rc = open_ledger(c, err, sizeof err);
    if (ledger_rc == 0) {
        ledger_rc = sched_ledger_jobs(c->pg, c->conf.scheduler_group, &lj, &nlj, LEDGER_JOBS_MAX);
        if (ledger_rc < 0)
            snprintf(err, sizeof err, "%s", sy_pg_error(c->pg));
    }
    ledger = ledger_rc == 0;

    rows = calloc(s->njobs ? s->njobs : 1, sizeof *rows);
    gone = calloc(nlj ? nlj : 1, sizeof *gone);
    if (!rows || !gone) {
        rc = syctl_fail(SYCTL_EXIT_FAIL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s->njobs; i++) {
        rows[i].sched = &s->jobs[i];
        rows[i].led = find_ledger(lj, nlj, s->jobs[i].name);
        rows[i].next = next_tick(&s->jobs[i], now, &rows[i].due);
    }
    for (size_t i = 0; i < nlj; i++) {
        if (!sched_schedule_find(s, lj[i].state.job))
            gone[ngone++] = (struct row){.led = &lj[i], .next = -1, .due = -1};
    }

    if (a->set[OPT_JSON]) {
        rc = print_json(c, rows, s->njobs, gone, ngone, ledger, now);
        if (rc)
            goto out;
    } else {
        print_table(c, rows, s->njobs, gone, ngone, ledger, now);
    }
    if (ledger_rc == -SY_ECONN)
        rc = syctl_fail(SYCTL_EXIT_UNAVAIL, "the ledger is unreachable: %s", err);
    else if (ledger_rc < 0)
        rc = syctl_fail(SYCTL_EXIT_FAIL,
                        "the ledger cannot be read: %s (is the database migrated? see 'syctl "
                        "migrate')",
                        err);
    else if (nlj == LEDGER_JOBS_MAX)
        fprintf(stderr, "syctl: note: only the first %u jobs of the ledger were read\n",
                LEDGER_JOBS_MAX);
out:
    free(gone);
    free(rows);
    free(lj);
    sched_schedule_destroy(s);
    return rc;
}

/* --- trigger -------------------------------------------------------------------------------- */

static int unknown_job(const struct sched_schedule *s, const char *name)
{
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < s->njobs && used < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", s->jobs[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return syctl_fail(SYCTL_EXIT_NOTFOUND, "no job '%.100s' in %s (known: %s)", name, s->path,
                      s->njobs ? known : "none");
}

static int publish_failed(struct sy_amqp *amqp, int err, const char *id, const char *exchange)
{
    const char *why = sy_amqp_error(amqp);
    int code = err == -SY_EUNROUTABLE || err == -SY_ENOTFOUND ? SYCTL_EXIT_NOTFOUND
               : err == -SY_ECONN                             ? SYCTL_EXIT_UNAVAIL
                                                              : SYCTL_EXIT_FAIL;
    return syctl_fail(code,
                      "publish of %s to '%s' not confirmed: %s%s%s; the tick stays claimed and "
                      "the scheduler's leader publishes it with the same id",
                      id, exchange, sy_strerror(err), why && *why ? ": " : "", why ? why : "");
}

static int schedule_trigger(struct syctl *c, const struct syctl_args *a)
{
    struct sched_schedule *s = NULL;
    const struct sy_topology *topo;
    struct sy_pg *pg;
    struct sy_amqp *amqp;
    void *body = NULL;
    size_t body_len = 0;
    char id[SCHED_TICK_ID_MAX + 1], instance[SCHED_INSTANCE_MAX + 1], host[64] = "localhost";
    int rc;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "schedule trigger: expected %s (see 'syctl schedule "
                          "trigger --help')",
                          a->npos < 2 ? "JOB" : "one JOB");
    if (a->set[OPT_JSON])
        return syctl_fail(SYCTL_EXIT_USAGE, "schedule trigger: unknown option '--json'");
    if ((rc = load_schedule(c, NEED_TRIGGER, &s)) != 0)
        goto out;
    const struct sched_job *j = sched_schedule_find(s, a->pos[1]);
    if (!j) {
        rc = unknown_job(s, a->pos[1]);
        goto out;
    }
    /* Both services before the claim: an unreachable broker must not leave a claim behind. */
    if ((rc = syctl_topology(c, &topo)) != 0 || (rc = syctl_pg(c, &pg)) != 0 ||
        (rc = syctl_amqp(c, &amqp)) != 0)
        goto out;

    gethostname(host, sizeof host - 1);
    snprintf(instance, sizeof instance, "syctl:%s-%ld", host, (long)getpid());
    int64_t now = (int64_t)time(NULL);
    rc = sched_ledger_claim_manual(pg, c->conf.scheduler_group, j, now, instance, id);
    if (rc == -SY_EEXISTS) {
        sched_tick_id(j->name, now, 1, id, sizeof id);
        rc = syctl_fail(SYCTL_EXIT_FAIL,
                        "job '%s' was already triggered within this second (%s); nothing was "
                        "published now",
                        j->name, id);
        goto out;
    }
    if (rc < 0) {
        rc = syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                        "cannot claim a tick of '%s' in the ledger: %s: %s (is the database "
                        "migrated? see 'syctl migrate')",
                        j->name, sy_strerror(rc), sy_pg_error(pg));
        goto out;
    }

    rc = sy_msg_encode(j->type, id, "syctl", 0, j->data, j->data_len, &body, &body_len);
    if (rc < 0) {
        rc = syctl_fail(SYCTL_EXIT_FAIL,
                        "cannot build the message of %s: %s; the tick stays claimed and the "
                        "scheduler's leader publishes it",
                        id, sy_strerror(rc));
        goto out;
    }
    const struct sy_publish p = {
        .exchange = topo->exchange,
        .routing_key = j->type,
        .body = body,
        .len = body_len,
        .message_id = id,
        .type = j->type,
    };
    rc = sy_amqp_publish(amqp, &p, PUBLISH_TIMEOUT_MS);
    if (rc < 0) {
        rc = publish_failed(amqp, rc, id, topo->exchange);
        goto out;
    }
    /* Confirmed: the id is the caller's from here on, whatever the ledger says next. */
    printf("%s\n", id);
    rc = sched_ledger_published(pg, c->conf.scheduler_group, j->name, now, 1, 0, instance);
    if (rc == -SY_ESTALE) {
        /* A leader took the claim over while it was in flight; the leader marks it. */
        rc = SYCTL_OK;
    } else if (rc < 0) {
        rc = syctl_fail(SYCTL_EXIT_FAIL,
                        "%s was published but could not be marked in the ledger: %s: %s; the "
                        "scheduler's leader publishes it again with the same id",
                        id, sy_strerror(rc), sy_pg_error(pg));
    } else {
        rc = SYCTL_OK;
    }
out:
    free(body);
    sched_schedule_destroy(s);
    return rc;
}

int syctl_cmd_schedule(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "schedule: %s (see 'syctl schedule --help')", err);
    const char *sub = a.npos ? a.pos[0] : "";
    int (*run)(struct syctl *, const struct syctl_args *) = NULL;
    const char *text = help;
    unsigned need = NEED_TRIGGER;
    if (strcmp(sub, "list") == 0) {
        run = schedule_list;
        text = help_list;
        need = NEED_LIST;
    } else if (strcmp(sub, "trigger") == 0) {
        run = schedule_trigger;
        text = help_trigger;
    }
    if (a.help) {
        syctl_help(text, need);
        return SYCTL_OK;
    }
    if (!a.npos)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "schedule: expected list or trigger (see 'syctl schedule --help')");
    if (!run)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "schedule: unknown subcommand '%s' (see 'syctl schedule --help')", sub);
    return run(c, &a);
}
