/* cmd_optimizer.c - `syctl optimizer load|runs|show|export`: sy-optimizer's datasets and runs
 * in PostgreSQL (migration 0009: optimizer_datasets, optimizer_runs). load reads the public
 * dataset's CSV files and checks them exactly as the worker will (its scenario reader); the
 * others only read. */
#include "syctl.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "optimizer/scenario.h"
#include "sy/config.h"
#include "sy/err.h"
#include "sy/pg.h"

#define CSV_FILE_MAX ((size_t)64 << 20) /* bytes of one sheet's file */
#define CSV_COLS_MAX 64
#define RUNS_LIMIT   100

static const char help[] =
    "Usage: syctl optimizer load DIR [--name NAME]\n"
    "       syctl optimizer runs [--json] [--limit N]\n"
    "       syctl optimizer show RUN [--json]\n"
    "       syctl optimizer export RUN --csv DIR\n"
    "\n"
    "load: reads the public clinker dataset from DIR, one CSV file per sheet named after it\n"
    "(IUGUType.csv, ClinkerCapacity.csv, ProductionCost.csv, ClinkerDemand.csv,\n"
    "LogisticsIUGU.csv, IUGUConstraint.csv, IUGUOpeningStock.csv, HubOpeningStock.csv,\n"
    "IUGUClosingStock.csv; only IUGUType.csv is required), the first row naming the columns;\n"
    "an optional Settings.csv has a header of settings (periods, holding_cost, unmet_penalty)\n"
    "and one row of values. The scenario is checked as sy-optimizer checks it, then stored as\n"
    "NAME (default: DIR's last part; loading a name again replaces it). optimizer.solve names\n"
    "it with data.dataset.\n"
    "runs: the latest runs, newest first. show: one run (options, progress, costs).\n"
    "export: a run's plan as production.csv, shipments.csv, stock.csv, unmet.csv and\n"
    "costs.csv (a model's run: variables.csv) in DIR, created when missing.\n"
    "\n"
    "Options:\n"
    "  --name NAME      the dataset's name: 1 to 64 of A-Z a-z 0-9 _ . -\n"
    "  --json           JSON instead of a table\n"
    "  --limit N        runs listed (default 100)\n"
    "  --csv DIR        where export writes\n"
    "  -h, --help       this help\n";

enum { OPT_NAME, OPT_JSON, OPT_LIMIT, OPT_CSV };
static const struct syctl_optspec specs[] = {
    [OPT_NAME] = {"name", true},
    [OPT_JSON] = {"json", false},
    [OPT_LIMIT] = {"limit", true},
    [OPT_CSV] = {"csv", true},
    {NULL, false},
};

static const char *const sheets[] = {
    "IUGUType",       "ClinkerCapacity",  "ProductionCost",  "ClinkerDemand",    "LogisticsIUGU",
    "IUGUConstraint", "IUGUOpeningStock", "HubOpeningStock", "IUGUClosingStock", NULL,
};

/* Columns whose values are text even when they look like numbers. */
static bool text_column(const char *col)
{
    return strstr(col, "CODE") || strstr(col, "TYPE") || strcmp(col, "IU") == 0 ||
           strcmp(col, "IUGU") == 0 || col[0] == '#';
}

/* --- CSV ------------------------------------------------------------------------------------ */

struct csv {
    char *p, *end;
    size_t line; /* of the record being read, from 1 */
};

/* The next record's fields (RFC 4180: quotes, "" inside quotes, CRLF or LF), cut in place into
 * f[0..*n). 1 for a record, 0 at the end, -1 for too many fields or an unclosed quote. */
static int csv_record(struct csv *c, char **f, size_t *n)
{
    *n = 0;
    if (c->p >= c->end)
        return 0;
    c->line++;
    for (;;) {
        char *out = c->p, *start = c->p;

        if (*n == CSV_COLS_MAX)
            return -1;
        if (c->p < c->end && *c->p == '"') {
            c->p++;
            for (;;) {
                if (c->p >= c->end)
                    return -1;
                if (*c->p == '"') {
                    if (c->p + 1 < c->end && c->p[1] == '"') {
                        *out++ = '"';
                        c->p += 2;
                        continue;
                    }
                    c->p++;
                    break;
                }
                if (*c->p == '\n')
                    c->line++;
                *out++ = *c->p++;
            }
            while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r')
                c->p++; /* junk after the closing quote is dropped */
        } else {
            while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r')
                *out++ = *c->p++;
        }
        char sep = c->p < c->end ? *c->p : '\n';

        f[(*n)++] = start;
        if (sep == ',') {
            *out = '\0';
            c->p++;
            continue;
        }
        if (sep == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
            c->p++;
        *out = '\0';
        c->p++;
        return 1;
    }
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* A cell as JSON: blank is null, a number a number unless the column holds text. */
static json_t *cell(const char *col, char *v)
{
    char *end;
    double d;

    v = trim(v);
    if (!*v)
        return json_null();
    if (!text_column(col)) {
        errno = 0;
        d = strtod(v, &end);
        if (!*end && errno == 0 && isfinite(d))
            return d == floor(d) && fabs(d) < 9e15 ? json_integer((json_int_t)d) : json_real(d);
    }
    return json_string(v);
}

/* Reads DIR/<sheet>.csv into an array of row objects (settings: one object). 0 with *out
 * (NULL when the file is absent), or an exit status after saying why. */
static int read_sheet(const char *dir, const char *sheet, bool settings, json_t **out, size_t *rows)
{
    char path[4200], *text = NULL, *hdr[CSV_COLS_MAX], *f[CSV_COLS_MAX];
    size_t len = 0, nh = 0, n = 0;
    struct csv c;
    json_t *arr = NULL;
    int rc, r;

    *out = NULL;
    *rows = 0;
    snprintf(path, sizeof path, "%s/%s.csv", dir, sheet);
    if ((rc = sy_read_file(path, CSV_FILE_MAX, &text, &len)) != 0) {
        if (rc == -SY_EIO && errno == ENOENT)
            return SYCTL_OK;
        return syctl_fail(rc == -SY_ETOOBIG ? SYCTL_EXIT_INPUT : SYCTL_EXIT_NOTFOUND,
                          "optimizer load: %s: %s", path,
                          rc == -SY_ETOOBIG ? "larger than 64 MiB" : strerror(errno));
    }
    c = (struct csv){.p = text, .end = text + len};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3; /* a spreadsheet's byte-order mark */
    if ((r = csv_record(&c, hdr, &nh)) <= 0) {
        free(text);
        return syctl_fail(SYCTL_EXIT_INPUT, "optimizer load: %s: %s", path,
                          r == 0 ? "empty: the first row names the columns" : "bad header row");
    }
    for (size_t i = 0; i < nh; i++)
        hdr[i] = trim(hdr[i]);
    if (!(arr = settings ? NULL : json_array()) && !settings)
        goto nomem;
    while ((r = csv_record(&c, f, &n)) == 1) {
        json_t *o;
        bool blank = true;

        for (size_t i = 0; i < n; i++)
            blank = blank && !*trim(f[i]);
        if (blank)
            continue; /* an empty line, often the last */
        if (n != nh) {
            json_decref(arr);
            json_decref(*out);
            *out = NULL;
            free(text);
            return syctl_fail(SYCTL_EXIT_INPUT,
                              "optimizer load: %s line %zu: %zu fields, the "
                              "header has %zu",
                              path, c.line, n, nh);
        }
        if (!(o = json_object()))
            goto nomem;
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, hdr[i], cell(settings ? "" : hdr[i], f[i]));
        if (settings) {
            json_decref(*out);
            *out = o;
        } else if (json_array_append_new(arr, o) != 0) {
            goto nomem;
        }
        (*rows)++;
    }
    free(text);
    if (r < 0) {
        json_decref(arr);
        json_decref(*out);
        *out = NULL;
        return syctl_fail(SYCTL_EXIT_INPUT,
                          "optimizer load: %s line %zu: an unclosed quote or more than %d fields",
                          path, c.line, CSV_COLS_MAX);
    }
    if (!settings)
        *out = arr;
    return SYCTL_OK;
nomem:
    free(text);
    json_decref(arr);
    return syctl_fail(SYCTL_EXIT_FAIL, "optimizer load: out of memory");
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("_.-", *s)))
            return false;
    return true;
}

static int load(struct syctl *c, const struct syctl_args *a)
{
    const char *dir, *name;
    char base[256], err[512];
    json_t *sc = json_object(), *counts = json_object();
    struct op_scenario *parsed = NULL;
    struct sy_pg *pg;
    int rc = SYCTL_OK;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE, "optimizer load: expected DIR");
    dir = a->pos[1];
    if (a->set[OPT_NAME]) {
        name = a->val[OPT_NAME];
    } else {
        const char *slash;
        size_t n = strlen(dir);

        while (n > 1 && dir[n - 1] == '/')
            n--;
        snprintf(base, sizeof base, "%.*s", (int)n, dir);
        slash = strrchr(base, '/');
        name = slash ? slash + 1 : base;
    }
    if (!name_ok(name)) {
        rc = syctl_fail(SYCTL_EXIT_USAGE,
                        "optimizer load: name '%.80s': 1 to 64 of A-Z a-z 0-9 _ . - (give --name)",
                        name);
        goto out;
    }
    if (!sc || !counts) {
        rc = syctl_fail(SYCTL_EXIT_FAIL, "optimizer load: out of memory");
        goto out;
    }
    for (size_t i = 0; sheets[i] || i == 9; i++) {
        const char *sheet = sheets[i] ? sheets[i] : "Settings";
        json_t *v = NULL;
        size_t rows = 0;

        if ((rc = read_sheet(dir, sheet, !sheets[i], &v, &rows)) != SYCTL_OK)
            goto out;
        if (v) {
            json_object_set_new(sc, sheet, v);
            json_object_set_new(counts, sheet, json_integer((json_int_t)rows));
        } else if (i == 0) {
            rc = syctl_fail(SYCTL_EXIT_NOTFOUND, "optimizer load: %s/IUGUType.csv: not found", dir);
            goto out;
        }
        if (!sheets[i])
            break;
    }
    if (op_scenario_from_json(sc, &parsed, err, sizeof err) != 0) {
        /* "Sheet[k]: why": row k of the sheet is line k + 2 of its file, without quoted
         * line breaks. */
        char sheet[64];
        unsigned long k;

        if (sscanf(err, "%63[A-Za-z][%lu]", sheet, &k) == 2)
            rc = syctl_fail(SYCTL_EXIT_INPUT, "optimizer load: %s (%s.csv line %lu)", err, sheet,
                            k + 2);
        else
            rc = syctl_fail(SYCTL_EXIT_INPUT, "optimizer load: %s", err);
        goto out;
    }
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        goto out;
    {
        char *text = json_dumps(sc, JSON_COMPACT), *ctext = json_dumps(counts, JSON_COMPACT);
        const char *p[3] = {name, text, ctext};

        if (!text || !ctext) {
            free(text);
            free(ctext);
            rc = syctl_fail(SYCTL_EXIT_FAIL, "optimizer load: out of memory");
            goto out;
        }
        int prc = sy_pg_exec(pg,
                             "INSERT INTO optimizer_datasets (name, scenario, rows)"
                             " VALUES ($1, $2::jsonb, $3::jsonb) ON CONFLICT (name) DO UPDATE"
                             " SET scenario = EXCLUDED.scenario, rows = EXCLUDED.rows,"
                             " loaded_at = now()",
                             3, p, NULL);
        free(text);
        free(ctext);
        if (prc != 0) {
            rc = syctl_fail(prc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                            "optimizer load: %s%s", sy_pg_error(pg),
                            strcmp(sy_pg_sqlstate(pg), "42P01") == 0 ? " (run 'syctl migrate')"
                                                                     : "");
            goto out;
        }
    }
    printf("%s: %zu nodes, %zu periods, %zu routes, %zu bound records\n", name, parsed->nnodes,
           parsed->nperiods, parsed->nroutes, parsed->nrecords);
    rc = SYCTL_OK;
out:
    op_scenario_free(parsed);
    json_decref(sc);
    json_decref(counts);
    return rc;
}

/* --- runs, show ----------------------------------------------------------------------------- */

#define TS(col)                                                                                    \
    "COALESCE(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

static const char sql_runs[] =
    "SELECT run_id, COALESCE(kind, ''), COALESCE(dataset, ''), status, objective::text, gap::text,"
    " round(seconds::numeric, 3)::text, " TS("queued_at") ", " TS(
        "finished_at") ", COALESCE(reason, '')"
                       " FROM optimizer_runs ORDER BY queued_at DESC, run_id LIMIT $1";

static const char sql_show[] =
    "SELECT run_id, COALESCE(kind, ''), COALESCE(dataset, ''), status, objective::text, gap::text,"
    " round(seconds::numeric, 3)::text, " TS("queued_at") ", " TS(
        "finished_at") ", COALESCE(reason, ''),"
                       " bound::text, options::text, COALESCE(progress::text, 'null'), "
                       "cancel_requested,"
                       " COALESCE(instance, ''), " TS(
                           "started_at") ", COALESCE(result::text, 'null')"
                                         " FROM optimizer_runs WHERE run_id = $1";

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *num_or_null(const char *s)
{
    return s ? json_real(strtod(s, NULL)) : json_null();
}

/* The columns both queries share, as JSON. */
static json_t *run_json(const struct sy_pg_res *res, int i)
{
#define G(col) sy_pg_res_get(res, i, col)
    return json_pack("{s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "run_id", G(0), "kind",
                     str_or_null(G(1)), "dataset", str_or_null(G(2)), "status", G(3), "objective",
                     num_or_null(G(4)), "gap", num_or_null(G(5)), "seconds", num_or_null(G(6)),
                     "queued", str_or_null(G(7)), "finished", str_or_null(G(8)), "reason",
                     str_or_null(G(9)));
#undef G
}

static int query(struct syctl *c, const char *what, const char *sql, int n, const char **p,
                 struct sy_pg_res **res)
{
    struct sy_pg *pg;
    int rc;

    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    if ((rc = sy_pg_exec(pg, sql, n, p, res)) != 0) {
        sy_pg_res_free(*res);
        *res = NULL;
        if (strcmp(sy_pg_sqlstate(pg), "42P01") == 0)
            return syctl_fail(SYCTL_EXIT_FAIL,
                              "optimizer %s: no optimizer tables yet: run 'syctl migrate'", what);
        return syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                          "optimizer %s: %s", what, sy_pg_error(pg));
    }
    return SYCTL_OK;
}

static int runs(struct syctl *c, const struct syctl_args *a)
{
    unsigned long long limit = RUNS_LIMIT;
    struct sy_pg_res *res = NULL;
    char lim[24];
    const char *p[1] = {lim};
    int rc, rows;

    if (a->npos != 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "optimizer runs: too many arguments");
    if (a->set[OPT_LIMIT] && syctl_parse_uint(a->val[OPT_LIMIT], 1, 100000, &limit) != 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "optimizer runs: --limit: 1 to 100000");
    snprintf(lim, sizeof lim, "%llu", limit);
    if ((rc = query(c, "runs", sql_runs, 1, p, &res)) != SYCTL_OK)
        return rc;
    rows = sy_pg_res_rows(res);
    if (a->set[OPT_JSON]) {
        json_t *arr = json_array();

        for (int i = 0; arr && i < rows; i++)
            if (json_array_append_new(arr, run_json(res, i)) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        sy_pg_res_free(res);
        return syctl_print_json(arr, "optimizer runs");
    }
    printf("%-36s  %-8s  %-12s  %-10s  %-16s  %-10s  %-8s  %-20s  %s\n", "RUN", "KIND", "DATASET",
           "STATUS", "OBJECTIVE", "GAP", "SECONDS", "QUEUED", "REASON");
    for (int i = 0; i < rows; i++) {
#define G(col) sy_pg_res_get(res, i, col)
        printf("%-36s  %-8s  %-12s  %-10s  %-16s  %-10s  %-8s  %-20s  %s\n", G(0),
               *G(1) ? G(1) : "-", *G(2) ? G(2) : "-", G(3), G(4) ? G(4) : "-", G(5) ? G(5) : "-",
               G(6) ? G(6) : "-", G(7), *G(9) ? G(9) : "-");
#undef G
    }
    if (rows == 0)
        printf("(no run yet)\n");
    sy_pg_res_free(res);
    return SYCTL_OK;
}

/* The run's row; SYCTL_EXIT_NOTFOUND when there is none. */
static int get_run(struct syctl *c, const char *what, const char *run, struct sy_pg_res **res)
{
    const char *p[1] = {run};
    int rc = query(c, what, sql_show, 1, p, res);

    if (rc == SYCTL_OK && sy_pg_res_rows(*res) != 1) {
        sy_pg_res_free(*res);
        *res = NULL;
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "optimizer %s: no run '%.100s'", what, run);
    }
    return rc;
}

static int show(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    json_t *j, *result;
    int rc;

    if (a->npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE, "optimizer show: expected RUN");
    if ((rc = get_run(c, "show", a->pos[1], &res)) != SYCTL_OK)
        return rc;
#define G(col) sy_pg_res_get(res, 0, col)
    j = run_json(res, 0);
    result = json_loads(G(16), JSON_DECODE_ANY, NULL);
    if (j) {
        json_object_set_new(j, "bound", num_or_null(G(10)));
        json_object_set_new(j, "options", json_loads(G(11), 0, NULL));
        json_object_set_new(j, "progress", json_loads(G(12), JSON_DECODE_ANY, NULL));
        json_object_set_new(j, "cancel_requested", json_boolean(strcmp(G(13), "t") == 0));
        json_object_set_new(j, "instance", str_or_null(G(14)));
        json_object_set_new(j, "started", str_or_null(G(15)));
    }
    if (a->set[OPT_JSON]) {
        if (j)
            json_object_set(j, "result", result ? result : json_null());
        json_decref(result);
        sy_pg_res_free(res);
        return syctl_print_json(j, "optimizer show");
    }
    printf("run        %s\nkind       %s\ndataset    %s\nstatus     %s%s%s\n", G(0),
           *G(1) ? G(1) : "-", *G(2) ? G(2) : "-", G(3), *G(9) ? ": " : "", G(9));
    printf("objective  %s\nbound      %s\ngap        %s\nseconds    %s\n", G(4) ? G(4) : "-",
           G(10) ? G(10) : "-", G(5) ? G(5) : "-", G(6) ? G(6) : "-");
    printf("queued     %s\nstarted    %s\nfinished   %s\ninstance   %s\n", G(7),
           *G(15) ? G(15) : "-", *G(8) ? G(8) : "-", *G(14) ? G(14) : "-");
    printf("cancel     %s\noptions    %s\nprogress   %s\n",
           strcmp(G(13), "t") == 0 ? "requested" : "no", G(11), G(12));
#undef G
    json_t *costs = json_object_get(result, "costs"), *plan = json_object_get(result, "plan"),
           *vars = json_object_get(result, "variables");
    if (costs) {
        const char *k;
        json_t *v;

        printf("costs     ");
        json_object_foreach(costs, k, v) printf(" %s=%.17g", k, json_number_value(v));
        putchar('\n');
    }
    if (plan)
        printf("plan       %zu periods ('syctl optimizer export %s --csv DIR')\n",
               json_array_size(plan), a->pos[1]);
    if (vars)
        printf("variables  %zu ('syctl optimizer export %s --csv DIR')\n", json_object_size(vars),
               a->pos[1]);
    json_decref(result);
    json_decref(j);
    sy_pg_res_free(res);
    return SYCTL_OK;
}

/* --- export --------------------------------------------------------------------------------- */

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_put(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static FILE *open_out(const char *dir, const char *file, const char *header, char *path, size_t len)
{
    FILE *f;

    snprintf(path, len, "%s/%s", dir, file);
    if ((f = fopen(path, "w")))
        fprintf(f, "%s\n", header);
    return f;
}

/* Writes one CSV per part of the plan; 0 or -1 with the file in path. */
static int write_plan(const char *dir, const json_t *result, char *path, size_t len)
{
    FILE *fp = NULL, *fs = NULL, *fk = NULL, *fu = NULL, *fc = NULL;
    const json_t *per;
    size_t i;
    int rc = -1;

    if (!(fp = open_out(dir, "production.csv", "period,iu,tonnes", path, len)) ||
        !(fs = open_out(dir, "shipments.csv", "period,row,from,to,mode,tonnes,trips", path, len)) ||
        !(fk = open_out(dir, "stock.csv", "period,node,closing_stock", path, len)) ||
        !(fu = open_out(dir, "unmet.csv", "period,node,unmet", path, len)) ||
        !(fc = open_out(dir, "costs.csv", "component,cost", path, len)))
        goto out;
    json_array_foreach(json_object_get(result, "plan"), i, per)
    {
        long long t = json_integer_value(json_object_get(per, "period"));
        const char *k;
        json_t *v;
        size_t j;

        json_object_foreach(json_object_get(per, "production"), k, v)
        {
            fprintf(fp, "%lld,", t);
            csv_put(fp, k);
            fprintf(fp, ",%.17g\n", json_number_value(v));
        }
        json_array_foreach(json_object_get(per, "shipments"), j, v)
        {
            const json_t *trips = json_object_get(v, "trips");

            fprintf(fs, "%lld,%lld,", t, (long long)json_integer_value(json_object_get(v, "row")));
            csv_put(fs, json_string_value(json_object_get(v, "from")));
            fputc(',', fs);
            csv_put(fs, json_string_value(json_object_get(v, "to")));
            fputc(',', fs);
            csv_put(fs, json_string_value(json_object_get(v, "mode")));
            fprintf(fs, ",%.17g,", json_number_value(json_object_get(v, "tonnes")));
            if (json_is_number(trips))
                fprintf(fs, "%.17g", json_number_value(trips));
            fputc('\n', fs);
        }
        json_object_foreach(json_object_get(per, "closing_stock"), k, v)
        {
            fprintf(fk, "%lld,", t);
            csv_put(fk, k);
            fprintf(fk, ",%.17g\n", json_number_value(v));
        }
        json_object_foreach(json_object_get(per, "unmet"), k, v)
        {
            fprintf(fu, "%lld,", t);
            csv_put(fu, k);
            fprintf(fu, ",%.17g\n", json_number_value(v));
        }
    }
    {
        const char *k;
        json_t *v;

        json_object_foreach(json_object_get(result, "costs"), k, v)
            fprintf(fc, "%s,%.17g\n", k, json_number_value(v));
    }
    rc = 0;
out:;
    FILE *all[5] = {fp, fs, fk, fu, fc};
    for (int n = 0; n < 5; n++) {
        if (!all[n])
            continue;
        bool bad = ferror(all[n]) != 0;

        if ((fclose(all[n]) != 0 || bad) && rc == 0)
            rc = -1;
    }
    return rc;
}

static int write_vars(const char *dir, const json_t *result, char *path, size_t len)
{
    FILE *f = open_out(dir, "variables.csv", "name,value", path, len);
    const char *k;
    json_t *v;

    if (!f)
        return -1;
    json_object_foreach(json_object_get(result, "variables"), k, v)
    {
        csv_put(f, k);
        fprintf(f, ",%.17g\n", json_number_value(v));
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int export(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    const char *dir = a->val[OPT_CSV];
    char path[4200];
    json_t *result;
    int rc;

    if (a->npos != 2 || !a->set[OPT_CSV])
        return syctl_fail(SYCTL_EXIT_USAGE, "optimizer export: expected RUN --csv DIR");
    if ((rc = get_run(c, "export", a->pos[1], &res)) != SYCTL_OK)
        return rc;
    result = json_loads(sy_pg_res_get(res, 0, 16), JSON_DECODE_ANY, NULL);
    sy_pg_res_free(res);
    if (!json_object_get(result, "plan") && !json_object_get(result, "variables")) {
        const char *st = json_string_value(json_object_get(result, "status"));

        json_decref(result);
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "optimizer export: run '%.100s' has no plan (%s)",
                          a->pos[1], st ? st : "not finished");
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        json_decref(result);
        return syctl_fail(SYCTL_EXIT_FAIL, "optimizer export: %s: %s", dir, strerror(errno));
    }
    rc = json_object_get(result, "plan") ? write_plan(dir, result, path, sizeof path)
                                         : write_vars(dir, result, path, sizeof path);
    json_decref(result);
    if (rc != 0)
        return syctl_fail(SYCTL_EXIT_FAIL, "optimizer export: %s: %s", path, strerror(errno));
    printf("%s\n", dir);
    return SYCTL_OK;
}

int syctl_cmd_optimizer(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "optimizer: %s (see 'syctl optimizer --help')", err);
    if (a.help) {
        syctl_help(help, SYCTL_NEED_PG);
        return SYCTL_OK;
    }
    if (a.npos && strcmp(a.pos[0], "load") == 0)
        return load(c, &a);
    if (a.npos && strcmp(a.pos[0], "runs") == 0)
        return runs(c, &a);
    if (a.npos && strcmp(a.pos[0], "show") == 0)
        return show(c, &a);
    if (a.npos && strcmp(a.pos[0], "export") == 0)
        return export(c, &a);
    return syctl_fail(SYCTL_EXIT_USAGE,
                      "optimizer: expected load, runs, show or export (see 'syctl optimizer "
                      "--help')");
}
