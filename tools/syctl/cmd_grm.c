/* cmd_grm.c - `syctl grm status|history`: how sy-grievance's link with the legacy GRM database
 * is doing, from its map file, a connection attempt to the GRM's MySQL server and its ledger in
 * PostgreSQL (migration 0005: sync_history, grm_sync, grm_watermark, tasks,
 * system_monitoring).
 *
 * The map is loaded by grm_map_load, as the worker loads it, so a file syctl refuses is one the
 * worker refuses. Nothing is written anywhere: status and history only read. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grievance/grm_map.h"
#include "sy/err.h"
#include "sy/mysql.h"
#include "sy/pg.h"

#define NEED_STATUS     (SYCTL_NEED_PG | SYCTL_NEED_GRM)
#define NEED_HISTORY    SYCTL_NEED_PG
#define CONNECT_TIMEOUT "3" /* seconds, unless the URL sets its own connect_timeout */
#define RECENT_ERRORS   5
#define HISTORY_DEFAULT 50
#define HISTORY_MAX     1000
#define KEY_WIDTH       17 /* "sync (all time):" and a space */

static const char help[] = "Usage: syctl grm status [--json]\n"
                           "       syctl grm history [--limit N] [--json]\n"
                           "\n"
                           "sy-grievance's copies into the legacy GRM database and the status\n"
                           "changes it pulls back: the integration's state, and its exchanges.\n"
                           "Run 'syctl grm SUBCOMMAND --help' for details.\n";

static const char help_status[] =
    "Usage: syctl grm status [--json]\n"
    "\n"
    "Whether the GRM integration is enabled and which GRM table it writes (from SY_GRM_MAP),\n"
    "whether the GRM's MySQL server answers now (SY_GRM_MYSQL_URL, connect timeout 3 s unless\n"
    "the URL sets connect_timeout), and from the ledger in PostgreSQL: the last push, the\n"
    "watermark of the last pull, the copies still pending, push and pull outcomes over the\n"
    "last 24 hours and all time, tasks by status, the last 5 failed exchanges and the last\n"
    "error the worker reported. An unreachable GRM is reported, not an error (exit 0); an\n"
    "unreachable PostgreSQL prints the rest and exits 69; a bad map file exits 78.\n"
    "\n"
    "Options:\n"
    "  --json           one JSON object: {\"map\", \"enabled\", \"table\", \"connected\",\n"
    "                   \"connect_error\", \"ledger\", \"last_push\": {\"at\", \"reported_at\",\n"
    "                   \"grievance_id\"}, \"last_pull\": {\"updated\", \"key\", \"pulled_at\"},\n"
    "                   \"pending\": {\"count\", \"oldest_changed_at\"}, \"sync\":\n"
    "                   {\"last_24h\", \"all_time\"}: {\"push\", \"pull\"}: {\"ok\", \"failed\",\n"
    "                   \"conflict\", \"skipped\"}, \"tasks\": {\"stored\", \"done\",\n"
    "                   \"rejected\"}, \"recent_errors\": [{\"at\", \"direction\",\n"
    "                   \"grievance_id\", \"detail\"}], \"last_error\": {\"at\", \"text\"}};\n"
    "                   times are RFC 3339 UTC, null for never; the ledger's fields are null\n"
    "                   when it could not be read (\"ledger\": false)\n"
    "  -h, --help       this help\n";

static const char help_history[] =
    "Usage: syctl grm history [--limit N] [--json]\n"
    "\n"
    "The newest exchanges with the GRM (table sync_history), newest first: when, push or\n"
    "pull, the grievance, the outcome (ok, failed, conflict, skipped), the status on our\n"
    "side and on the GRM's, and the detail (a conflict names both values and the winner).\n"
    "\n"
    "Options:\n"
    "  --limit N        how many, 1 to 1000 (default 50)\n"
    "  --json           [{\"at\", \"direction\", \"grievance_id\", \"outcome\", \"pg_status\",\n"
    "                   \"grm_status\", \"detail\"}], null for what is not known\n"
    "  -h, --help       this help\n";

enum { OPT_JSON, OPT_LIMIT };
static const struct syctl_optspec specs[] = {
    [OPT_JSON] = {"json", false},
    [OPT_LIMIT] = {"limit", true},
    {NULL, false},
};

static const char *const directions[] = {"push", "pull"};
static const char *const outcomes[] = {"ok", "failed", "conflict", "skipped"};
static const char *const task_states[] = {"stored", "done", "rejected"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* --- JSON helpers --------------------------------------------------------------------------- */

static json_t *text_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Sets o[key] = v (taking v); non-zero when either is missing or jansson fails. */
static int put(json_t *o, const char *key, json_t *v)
{
    return !o || json_object_set_new(o, key, v) != 0;
}

static json_int_t count_of(const char *s)
{
    return s ? (json_int_t)strtoll(s, NULL, 10) : 0;
}

/* o[a][b][c] as an integer, 0 when absent. */
static json_int_t count_at(const json_t *o, const char *a, const char *b, const char *c)
{
    return json_integer_value(json_object_get(json_object_get(json_object_get(o, a), b), c));
}

/* --- The GRM's MySQL server ----------------------------------------------------------------- */

static bool has_option(const char *query, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return true;
    }
    return false;
}

/* Connects and pings once. An operator asking for the status should not wait the driver's
 * default 5 s per attempt for a GRM that is away, hence the shorter timeout. */
static bool grm_connected(const char *url, char *err, size_t errlen)
{
    const char *q = strchr(url, '?');
    struct sy_mysql *my = NULL;
    char *full = NULL;
    bool ok = false;

    if (q && has_option(q + 1, "connect_timeout")) {
        full = strdup(url);
    } else {
        size_t n = strlen(url) + sizeof("?connect_timeout=" CONNECT_TIMEOUT);
        full = malloc(n);
        if (full)
            snprintf(full, n, "%s%cconnect_timeout=" CONNECT_TIMEOUT, url, q ? '&' : '?');
    }
    if (!full) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    my = sy_mysql_connect(full, err, errlen);
    if (my) {
        int rc = sy_mysql_ping(my);
        if (rc == 0)
            ok = true;
        else
            snprintf(err, errlen, "ping: %s: %s", sy_strerror(rc), sy_mysql_error(my));
    }
    sy_mysql_destroy(my);
    free(full);
    return ok;
}

/* --- The ledger ----------------------------------------------------------------------------- */

static const char sql_sync[] =
    "SELECT " TIME_SQL("max(pushed_at)") ", count(*) FILTER (WHERE pending), " TIME_SQL(
        "min(changed_at) FILTER (WHERE pending)") " FROM grm_sync";

static const char sql_monitor[] = "SELECT name, value, " TIME_SQL(
    "at") " FROM system_monitoring"
          " WHERE component = 'grm' AND name IN ('last_push', 'last_error')";

static const char sql_watermark[] =
    "SELECT updated, key, " TIME_SQL("pulled_at") " FROM grm_watermark WHERE name = $1";

static const char sql_outcomes[] = "SELECT direction, outcome, count(*),"
                                   " count(*) FILTER (WHERE at > now() - interval '24 hours')"
                                   " FROM sync_history GROUP BY direction, outcome";

static const char sql_tasks[] = "SELECT status, count(*) FROM tasks GROUP BY status";

static const char sql_errors[] =
    "SELECT " TIME_SQL("at") ", direction, grievance_id, detail FROM sync_history"
                             " WHERE outcome = 'failed' ORDER BY at DESC, id DESC LIMIT 5";

/* One query of the ledger; on failure its error in err and the result freed. */
static int query(struct sy_pg *pg, const char *sql, int nparams, const char *const *params,
                 struct sy_pg_res **res, char *err, size_t errlen)
{
    int rc = sy_pg_exec(pg, sql, nparams, params, res);

    if (rc < 0) {
        snprintf(err, errlen, "%s", sy_pg_error(pg) ? sy_pg_error(pg) : sy_strerror(rc));
        sy_pg_res_free(*res);
        *res = NULL;
    }
    return rc;
}

/* {"push": {"ok": 0, ...}, "pull": {...}} with every count zero. */
static json_t *zero_outcomes(void)
{
    json_t *o = json_object();
    int bad = 0;

    for (size_t d = 0; d < NELEM(directions); d++) {
        json_t *by = json_object();
        for (size_t i = 0; i < NELEM(outcomes); i++)
            bad |= put(by, outcomes[i], json_integer(0));
        bad |= put(o, directions[d], by);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Adds the ledger's figures to st. 0, or a negative SY_E code with the reason in err. */
static int read_ledger(struct sy_pg *pg, const char *table, json_t *st, char *err, size_t errlen)
{
    struct sy_pg_res *res = NULL;
    const char *params[1] = {table};
    json_t *push = NULL, *pull = NULL, *pending = NULL, *day = NULL, *all = NULL, *sync = NULL,
           *tasks = NULL, *errors = NULL, *last_error = json_null();
    int rc, bad = 0;

    if ((rc = query(pg, sql_sync, 0, NULL, &res, err, errlen)) < 0)
        goto out;
    push = json_object();
    bad |= put(push, "at", text_or_null(sy_pg_res_get(res, 0, 0)));
    bad |= put(push, "reported_at", json_null());
    bad |= put(push, "grievance_id", json_null());
    pending = json_object();
    bad |= put(pending, "count", json_integer(count_of(sy_pg_res_get(res, 0, 1))));
    bad |= put(pending, "oldest_changed_at", text_or_null(sy_pg_res_get(res, 0, 2)));
    sy_pg_res_free(res);

    if ((rc = query(pg, sql_monitor, 0, NULL, &res, err, errlen)) < 0)
        goto out;
    for (int i = 0; i < sy_pg_res_rows(res); i++) {
        const char *name = sy_pg_res_get(res, i, 0), *value = sy_pg_res_get(res, i, 1),
                   *at = sy_pg_res_get(res, i, 2);
        if (strcmp(name, "last_push") == 0) {
            bad |= put(push, "reported_at", text_or_null(at));
            bad |= put(push, "grievance_id", text_or_null(value));
        } else {
            json_decref(last_error);
            last_error = json_object();
            bad |= put(last_error, "at", text_or_null(at));
            bad |= put(last_error, "text", text_or_null(value));
        }
    }
    sy_pg_res_free(res);

    if ((rc = query(pg, sql_watermark, 1, params, &res, err, errlen)) < 0)
        goto out;
    pull = json_null();
    if (sy_pg_res_rows(res) == 1) {
        json_decref(pull);
        pull = json_object();
        bad |= put(pull, "updated", text_or_null(sy_pg_res_get(res, 0, 0)));
        bad |= put(pull, "key", text_or_null(sy_pg_res_get(res, 0, 1)));
        bad |= put(pull, "pulled_at", text_or_null(sy_pg_res_get(res, 0, 2)));
    }
    sy_pg_res_free(res);

    if ((rc = query(pg, sql_outcomes, 0, NULL, &res, err, errlen)) < 0)
        goto out;
    day = zero_outcomes();
    all = zero_outcomes();
    for (int i = 0; day && all && i < sy_pg_res_rows(res); i++) {
        const char *dir = sy_pg_res_get(res, i, 0), *outcome = sy_pg_res_get(res, i, 1);
        /* The table's CHECKs keep both to the known words; anything else is not ours. */
        json_t *d_all = json_object_get(all, dir), *d_day = json_object_get(day, dir);
        if (!d_all || !json_object_get(d_all, outcome))
            continue;
        bad |= put(d_all, outcome, json_integer(count_of(sy_pg_res_get(res, i, 2))));
        bad |= put(d_day, outcome, json_integer(count_of(sy_pg_res_get(res, i, 3))));
    }
    sy_pg_res_free(res);
    sync = json_object();
    bad |= put(sync, "last_24h", day);
    bad |= put(sync, "all_time", all);
    day = all = NULL;

    if ((rc = query(pg, sql_tasks, 0, NULL, &res, err, errlen)) < 0)
        goto out;
    tasks = json_object();
    for (size_t i = 0; i < NELEM(task_states); i++)
        bad |= put(tasks, task_states[i], json_integer(0));
    for (int i = 0; i < sy_pg_res_rows(res); i++) {
        const char *status = sy_pg_res_get(res, i, 0);
        if (tasks && json_object_get(tasks, status))
            bad |= put(tasks, status, json_integer(count_of(sy_pg_res_get(res, i, 1))));
    }
    sy_pg_res_free(res);

    if ((rc = query(pg, sql_errors, 0, NULL, &res, err, errlen)) < 0)
        goto out;
    errors = json_array();
    for (int i = 0; errors && i < sy_pg_res_rows(res); i++) {
        json_t *e = json_object();
        bad |= put(e, "at", text_or_null(sy_pg_res_get(res, i, 0)));
        bad |= put(e, "direction", text_or_null(sy_pg_res_get(res, i, 1)));
        bad |= put(e, "grievance_id", text_or_null(sy_pg_res_get(res, i, 2)));
        bad |= put(e, "detail", text_or_null(sy_pg_res_get(res, i, 3)));
        bad |= !e || json_array_append_new(errors, e) != 0;
    }
    sy_pg_res_free(res);

    bad |= put(st, "last_push", push);
    bad |= put(st, "last_pull", pull);
    bad |= put(st, "pending", pending);
    bad |= put(st, "sync", sync);
    bad |= put(st, "tasks", tasks);
    bad |= put(st, "recent_errors", errors);
    bad |= put(st, "last_error", last_error);
    push = pull = pending = sync = tasks = errors = last_error = NULL;
    if (bad) {
        snprintf(err, errlen, "out of memory");
        rc = -SY_ENOMEM;
    }
out:
    json_decref(push);
    json_decref(pull);
    json_decref(pending);
    json_decref(day);
    json_decref(all);
    json_decref(sync);
    json_decref(tasks);
    json_decref(errors);
    json_decref(last_error);
    return rc;
}

/* The ledger's fields as null: what --json says when PostgreSQL could not be read. */
static int no_ledger(json_t *st)
{
    static const char *const keys[] = {"last_push", "last_pull",     "pending",   "sync",
                                       "tasks",     "recent_errors", "last_error"};
    int bad = 0;

    for (size_t i = 0; i < NELEM(keys); i++)
        bad |= put(st, keys[i], json_null());
    return bad;
}

/* --- Human output --------------------------------------------------------------------------- */

/* Text from the database or a server on one line: control characters become spaces. */
static void print_clean(const char *s)
{
    for (; s && *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static void key(const char *k)
{
    printf("%-*s", KEY_WIDTH, k);
}

static void print_outcomes(const json_t *sync, const char *span)
{
    for (size_t d = 0; d < NELEM(directions); d++) {
        printf("%s%s", d ? "; " : "", directions[d]);
        for (size_t i = 0; i < NELEM(outcomes); i++)
            printf("%s %s %lld", i ? "," : "", outcomes[i],
                   (long long)count_at(sync, span, directions[d], outcomes[i]));
    }
    putchar('\n');
}

static void print_config(const json_t *st)
{
    key("map:");
    printf("%s\n", str_or(st, "map", "-"));
    key("enabled:");
    printf("%s\n", json_is_true(json_object_get(st, "enabled")) ? "yes" : "no");
    key("table:");
    printf("%s\n", str_or(st, "table", "-"));
    key("connected:");
    if (json_is_true(json_object_get(st, "connected"))) {
        printf("yes\n");
    } else {
        printf("no: ");
        print_clean(str_or(st, "connect_error", "?"));
        putchar('\n');
    }
}

static void print_ledger(const json_t *st)
{
    const json_t *push = json_object_get(st, "last_push"), *pull = json_object_get(st, "last_pull"),
                 *pending = json_object_get(st, "pending"), *sync = json_object_get(st, "sync"),
                 *tasks = json_object_get(st, "tasks"), *last = json_object_get(st, "last_error"),
                 *errors = json_object_get(st, "recent_errors");

    key("last push:");
    printf("%s", str_or(push, "at", "never"));
    if (json_string_value(json_object_get(push, "reported_at")))
        printf(" (reported: %s at %s)", str_or(push, "grievance_id", "-"),
               str_or(push, "reported_at", "-"));
    putchar('\n');
    key("last pull:");
    if (json_is_object(pull))
        printf("%s, watermark %s, key %s\n", str_or(pull, "pulled_at", "-"),
               str_or(pull, "updated", "-"), str_or(pull, "key", "-"));
    else
        printf("never\n");
    key("pending copies:");
    json_int_t n = json_integer_value(json_object_get(pending, "count"));
    if (n > 0)
        printf("%lld, the oldest changed %s\n", (long long)n,
               str_or(pending, "oldest_changed_at", "-"));
    else
        printf("0\n");
    key("sync (24 h):");
    print_outcomes(sync, "last_24h");
    key("sync (all time):");
    print_outcomes(sync, "all_time");
    key("tasks:");
    for (size_t i = 0; i < NELEM(task_states); i++)
        printf("%s%s %lld", i ? ", " : "", task_states[i],
               (long long)json_integer_value(json_object_get(tasks, task_states[i])));
    putchar('\n');
    key("last error:");
    if (json_is_object(last)) {
        printf("%s: ", str_or(last, "at", "-"));
        print_clean(str_or(last, "text", ""));
        putchar('\n');
    } else {
        printf("none\n");
    }
    if (json_array_size(errors) == 0) {
        key("recent failures:");
        printf("none\n");
    } else {
        printf("recent failures:\n");
    }
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e)
    {
        printf("  %s  %s  %s  ", str_or(e, "at", "-"), str_or(e, "direction", "-"),
               str_or(e, "grievance_id", "-"));
        print_clean(str_or(e, "detail", ""));
        putchar('\n');
    }
}

/* --- status --------------------------------------------------------------------------------- */

static int grm_status(struct syctl *c, const struct syctl_args *a)
{
    struct grm_map *map = NULL;
    json_t *st = NULL;
    char err[512] = "", my_err[512] = "";
    int rc, ledger_rc = 0, bad = 0;

    if (a->npos != 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "grm status: unexpected argument '%.100s'", a->pos[1]);
    if (a->set[OPT_LIMIT])
        return syctl_fail(SYCTL_EXIT_USAGE, "grm status: unknown option '--limit'");
    if ((rc = syctl_load_conf(c, NEED_STATUS)) != 0)
        return rc;
    map = grm_map_load(c->conf.grm_map, err, sizeof err);
    if (!map)
        return syctl_fail(SYCTL_EXIT_CONFIG, "SY_GRM_MAP: %s", err);

    bool connected = false;
    if (!c->conf.grm_mysql_url)
        snprintf(my_err, sizeof my_err, "SY_GRM_MYSQL_URL is not set");
    else
        connected = grm_connected(c->conf.grm_mysql_url, my_err, sizeof my_err);

    st = json_object();
    bad |= put(st, "map", json_string(c->conf.grm_map));
    bad |= put(st, "enabled", json_boolean(grm_map_enabled(map)));
    bad |= put(st, "table", json_string(grm_map_table(map)));
    bad |= put(st, "connected", json_boolean(connected));
    bad |= put(st, "connect_error", connected ? json_null() : json_string(my_err));
    bad |= put(st, "ledger", json_false()); /* set true once read, keeping the key's place */

    if (!c->pg)
        c->pg = sy_pg_connect(c->conf.pg_url, err, sizeof err);
    ledger_rc = c->pg ? read_ledger(c->pg, grm_map_table(map), st, err, sizeof err) : -SY_ECONN;
    bad |= put(st, "ledger", json_boolean(ledger_rc == 0));
    if (ledger_rc < 0)
        bad |= no_ledger(st);
    if (bad) {
        rc = syctl_fail(SYCTL_EXIT_FAIL, "grm status: out of memory");
        goto out;
    }

    if (a->set[OPT_JSON]) {
        if (json_dumpf(st, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            rc = syctl_fail(SYCTL_EXIT_FAIL, "grm status: cannot write the output");
            goto out;
        }
        putchar('\n');
    } else {
        print_config(st);
        if (ledger_rc == 0)
            print_ledger(st);
    }
    if (ledger_rc == -SY_ECONN)
        rc = syctl_fail(SYCTL_EXIT_UNAVAIL, "the ledger in PostgreSQL is unreachable: %s", err);
    else if (ledger_rc < 0)
        rc = syctl_fail(SYCTL_EXIT_FAIL,
                        "the ledger cannot be read: %s (is the database migrated? see 'syctl "
                        "migrate')",
                        err);
    else
        rc = SYCTL_OK;
out:
    json_decref(st);
    grm_map_free(map);
    return rc;
}

/* --- history -------------------------------------------------------------------------------- */

static const char sql_history[] =
    "SELECT " TIME_SQL("at") ", direction, grievance_id, outcome, pg_status, grm_status, detail"
                             " FROM sync_history ORDER BY at DESC, id DESC LIMIT $1";

static const char *const history_cols[] = {"at",        "direction",  "grievance_id", "outcome",
                                           "pg_status", "grm_status", "detail"};
static const char *const history_heads[] = {"AT", "DIR", "GRIEVANCE", "OUTCOME",
                                            "PG", "GRM", "DETAIL"};

static int history_json(const struct sy_pg_res *res)
{
    json_t *arr = json_array();
    int bad = !arr;

    for (int i = 0; !bad && i < sy_pg_res_rows(res); i++) {
        json_t *o = json_object();
        for (size_t k = 0; k < NELEM(history_cols); k++)
            bad |= put(o, history_cols[k], text_or_null(sy_pg_res_get(res, i, (int)k)));
        bad |= !o || json_array_append_new(arr, o) != 0;
    }
    if (!bad)
        bad = json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0;
    json_decref(arr);
    if (bad)
        return syctl_fail(SYCTL_EXIT_FAIL, "grm history: cannot write the output");
    putchar('\n');
    return SYCTL_OK;
}

static void history_table(const struct sy_pg_res *res)
{
    /* Every column but the last (detail) padded to its widest cell. */
    int w[NELEM(history_cols)] = {0};
    int rows = sy_pg_res_rows(res);

    for (size_t k = 0; k + 1 < NELEM(history_cols); k++) {
        w[k] = (int)strlen(history_heads[k]);
        for (int i = 0; i < rows; i++) {
            const char *s = sy_pg_res_get(res, i, (int)k);
            int l = s ? (int)strlen(s) : 1;
            w[k] = l > w[k] ? l : w[k];
        }
    }
    for (size_t k = 0; k + 1 < NELEM(history_cols); k++)
        printf("%-*s  ", w[k], history_heads[k]);
    printf("%s\n", history_heads[NELEM(history_cols) - 1]);
    for (int i = 0; i < rows; i++) {
        for (size_t k = 0; k + 1 < NELEM(history_cols); k++) {
            const char *s = sy_pg_res_get(res, i, (int)k);
            printf("%-*s  ", w[k], s ? s : "-");
        }
        const char *detail = sy_pg_res_get(res, i, (int)NELEM(history_cols) - 1);
        print_clean(detail ? detail : "-");
        putchar('\n');
    }
}

static int grm_history(struct syctl *c, const struct syctl_args *a)
{
    unsigned long long limit = HISTORY_DEFAULT;
    struct sy_pg_res *res = NULL;
    struct sy_pg *pg;
    char limit_text[24];
    int rc;

    if (a->npos != 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "grm history: unexpected argument '%.100s'", a->pos[1]);
    if (a->set[OPT_LIMIT] && syctl_parse_uint(a->val[OPT_LIMIT], 1, HISTORY_MAX, &limit) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "grm history: --limit: expected 1 to %d, got '%.40s'",
                          HISTORY_MAX, a->val[OPT_LIMIT]);
    if ((rc = syctl_load_conf(c, NEED_HISTORY)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    snprintf(limit_text, sizeof limit_text, "%llu", limit);
    const char *params[1] = {limit_text};
    rc = sy_pg_exec(pg, sql_history, 1, params, &res);
    if (rc < 0) {
        rc = syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                        "grm history: %s (is the database migrated? see 'syctl migrate')",
                        sy_pg_error(pg) ? sy_pg_error(pg) : sy_strerror(rc));
        goto out;
    }
    if (a->set[OPT_JSON])
        rc = history_json(res);
    else
        history_table(res);
out:
    sy_pg_res_free(res);
    return rc;
}

int syctl_cmd_grm(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "grm: %s (see 'syctl grm --help')", err);
    const char *sub = a.npos ? a.pos[0] : "";
    int (*run)(struct syctl *, const struct syctl_args *) = NULL;
    const char *text = help;
    unsigned need = NEED_STATUS;
    if (strcmp(sub, "status") == 0) {
        run = grm_status;
        text = help_status;
    } else if (strcmp(sub, "history") == 0) {
        run = grm_history;
        text = help_history;
        need = NEED_HISTORY;
    }
    if (a.help) {
        syctl_help(text, need);
        return SYCTL_OK;
    }
    if (!a.npos)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "grm: expected status or history (see 'syctl grm --help')");
    if (!run)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "grm: unknown subcommand '%.100s' (see 'syctl grm --help')", sub);
    return run(c, &a);
}
