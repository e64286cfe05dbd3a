/* scenario.c - the dataset's sheets from JSON into op_scenario, each row checked as it is read,
 * then the checks that need all rows: duplicates, contradicting bound records, records that
 * ask more than their routes can carry. */
#include "optimizer/scenario.h"

#include "sy/err.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* How much of an offending string an error repeats. */
#define SHOWN 40

struct reader {
    struct op_scenario *sc;
    size_t *by_code; /* node indices sorted by code */
    char *err;
    size_t errlen;
};

struct sheet_row {
    const char *sheet;
    size_t i;
    const json_t *row;
};

static const char *const SHEETS[] = {"IUGUType",
                                     "ClinkerCapacity",
                                     "ProductionCost",
                                     "ClinkerDemand",
                                     "LogisticsIUGU",
                                     "IUGUConstraint",
                                     "IUGUOpeningStock",
                                     "HubOpeningStock",
                                     "IUGUClosingStock",
                                     "Settings",
                                     NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static int check_columns(struct reader *rd, const struct sheet_row *sr, const char *const *cols)
{
    const char *key;
    json_t *v;

    if (!json_is_object(sr->row)) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: not an object", sr->sheet, sr->i);
        return -SY_EINVAL;
    }
    json_object_foreach((json_t *)sr->row, key, v)
    {
        if (!in_list(key, cols) && strcmp(key, "# Source") != 0) {
            sy_errf(rd->err, rd->errlen, "%s[%zu]: unknown column '%.*s'", sr->sheet, sr->i, SHOWN,
                    key);
            return -SY_EINVAL;
        }
    }
    return 0;
}

/* A number column. Optional columns leave *v alone when absent or null and set *present. */
static int get_num(struct reader *rd, const struct sheet_row *sr, const char *col, bool required,
                   double *v, bool *present)
{
    const json_t *x = json_object_get(sr->row, col);

    if (present)
        *present = false;
    if (!x || json_is_null(x)) {
        if (!required)
            return 0;
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s is missing", sr->sheet, sr->i, col);
        return -SY_EINVAL;
    }
    if (!json_is_number(x)) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s is not a number", sr->sheet, sr->i, col);
        return -SY_EINVAL;
    }
    double d = json_number_value(x);
    if (!isfinite(d) || d < 0 || d > OP_VALUE_MAX) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s %g is %s", sr->sheet, sr->i, col, d,
                d < 0 ? "negative" : "out of range");
        return -SY_EINVAL;
    }
    *v = d;
    if (present)
        *present = true;
    return 0;
}

static bool code_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > OP_CODE_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* A code column into buf (OP_CODE_MAX + 1 bytes). Optional: absent, null or "" gives "". */
static int get_code(struct reader *rd, const struct sheet_row *sr, const char *col, bool required,
                    char *buf)
{
    const json_t *x = json_object_get(sr->row, col);
    const char *s = json_string_value(x);

    buf[0] = '\0';
    if ((!x || json_is_null(x) || (s && !*s)) && !required)
        return 0;
    if (!x || json_is_null(x)) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s is missing", sr->sheet, sr->i, col);
        return -SY_EINVAL;
    }
    if (!s || !code_ok(s)) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s is not a code (1..%d of A-Z a-z 0-9 _ . -)",
                sr->sheet, sr->i, col, OP_CODE_MAX);
        return -SY_EINVAL;
    }
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

static int cmp_code(const void *a, const void *b, void *ctx)
{
    const struct op_scenario *sc = ctx;

    return strcmp(sc->nodes[*(const size_t *)a].code, sc->nodes[*(const size_t *)b].code);
}

static bool find_node(const struct reader *rd, const char *code, size_t *n)
{
    size_t lo = 0, hi = rd->sc->nnodes;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rd->sc->nodes[rd->by_code[mid]].code, code);
        if (c == 0) {
            *n = rd->by_code[mid];
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A node column that must name a node (of type `want` unless want < 0). */
static int get_node(struct reader *rd, const struct sheet_row *sr, const char *col, int want,
                    size_t *n)
{
    char code[OP_CODE_MAX + 1];
    int rc = get_code(rd, sr, col, true, code);

    if (rc < 0)
        return rc;
    if (!find_node(rd, code, n)) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s '%s' is not a node", sr->sheet, sr->i, col, code);
        return -SY_EINVAL;
    }
    if (want >= 0 && rd->sc->nodes[*n].type != (enum op_node_type)want) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s '%s' is not an %s", sr->sheet, sr->i, col, code,
                want == OP_IU ? "IU" : "GU");
        return -SY_EINVAL;
    }
    return 0;
}

static int get_period(struct reader *rd, const struct sheet_row *sr, size_t *t)
{
    const json_t *x = json_object_get(sr->row, "TIME PERIOD");
    json_int_t p = json_integer_value(x);

    if (!json_is_integer(x) || p < 1 || (size_t)p > rd->sc->nperiods) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: TIME PERIOD must be an integer 1..%zu", sr->sheet,
                sr->i, rd->sc->nperiods);
        return -SY_EINVAL;
    }
    *t = (size_t)p - 1;
    return 0;
}

/* The sheet's rows (an empty array when absent). */
static int get_sheet(struct reader *rd, const json_t *j, const char *name, size_t max,
                     const json_t **arr)
{
    /* An absent sheet stays NULL: jansson's array calls treat it as empty. */
    *arr = json_object_get(j, name);
    if (!*arr)
        return 0;
    if (!json_is_array(*arr)) {
        sy_errf(rd->err, rd->errlen, "%s: not an array of rows", name);
        return -SY_EINVAL;
    }
    if (json_array_size(*arr) > max) {
        sy_errf(rd->err, rd->errlen, "%s: %zu rows, at most %zu", name, json_array_size(*arr), max);
        return -SY_ETOOBIG;
    }
    return 0;
}

/* Marks (n, t) seen in `seen`; a second row for it is refused naming both. */
static int once(struct reader *rd, const struct sheet_row *sr, size_t *seen, size_t n, size_t t)
{
    size_t k = n * rd->sc->nperiods + t;

    if (seen[k]) {
        sy_errf(rd->err, rd->errlen, "%s[%zu]: %s period %zu repeats %s[%zu]", sr->sheet, sr->i,
                rd->sc->nodes[n].code, t + 1, sr->sheet, seen[k] - 1);
        return -SY_EINVAL;
    }
    seen[k] = sr->i + 1;
    return 0;
}

static int read_settings(struct reader *rd, const json_t *j, size_t *periods)
{
    const json_t *s = json_object_get(j, "Settings");
    const char *key;
    json_t *v;

    *periods = 0;
    rd->sc->unmet_penalty = 10000;
    rd->sc->holding_cost = 0;
    if (!s)
        return 0;
    if (!json_is_object(s)) {
        sy_errf(rd->err, rd->errlen, "Settings: not an object");
        return -SY_EINVAL;
    }
    json_object_foreach((json_t *)s, key, v)
    {
        double d = json_number_value(v);
        if (strcmp(key, "periods") == 0) {
            json_int_t p = json_integer_value(v);
            if (!json_is_integer(v) || p < 1 || p > OP_PERIODS_MAX) {
                sy_errf(rd->err, rd->errlen, "Settings: periods must be an integer 1..%d",
                        OP_PERIODS_MAX);
                return -SY_EINVAL;
            }
            *periods = (size_t)p;
        } else if (strcmp(key, "holding_cost") == 0 || strcmp(key, "unmet_penalty") == 0) {
            if (!json_is_number(v) || !isfinite(d) || d < 0 || d > OP_VALUE_MAX) {
                sy_errf(rd->err, rd->errlen, "Settings: %s must be a number 0..%g", key,
                        OP_VALUE_MAX);
                return -SY_EINVAL;
            }
            *(key[0] == 'h' ? &rd->sc->holding_cost : &rd->sc->unmet_penalty) = d;
        } else {
            sy_errf(rd->err, rd->errlen, "Settings: unknown key '%.*s'", SHOWN, key);
            return -SY_EINVAL;
        }
    }
    return 0;
}

/* The horizon when Settings does not give it: the largest integer TIME PERIOD of any sheet
 * (rows with a bad one are refused later, when read). */
static size_t largest_period(const json_t *j)
{
    size_t t = 0;

    for (const char *const *s = SHEETS; *s; s++) {
        const json_t *arr = json_object_get(j, *s), *row;
        size_t i;
        if (!json_is_array(arr))
            continue;
        json_array_foreach(arr, i, row)
        {
            json_int_t p = json_integer_value(json_object_get(row, "TIME PERIOD"));
            if (p > 0 && p <= OP_PERIODS_MAX && (size_t)p > t)
                t = (size_t)p;
        }
    }
    return t;
}

static int read_nodes(struct reader *rd, const json_t *j)
{
    static const char *const cols[] = {"IUGU CODE", "PLANT TYPE", NULL};
    const json_t *arr;
    struct op_scenario *sc = rd->sc;
    int rc = get_sheet(rd, j, "IUGUType", OP_NODES_MAX, &arr);

    if (rc < 0)
        return rc;
    if (json_array_size(arr) == 0) {
        sy_errf(rd->err, rd->errlen, "IUGUType: no nodes");
        return -SY_EINVAL;
    }
    sc->nnodes = json_array_size(arr);
    sc->nodes = calloc(sc->nnodes, sizeof *sc->nodes);
    rd->by_code = calloc(sc->nnodes, sizeof *rd->by_code);
    if (!sc->nodes || !rd->by_code)
        return -SY_ENOMEM;
    for (size_t i = 0; i < sc->nnodes; i++) {
        struct sheet_row sr = {"IUGUType", i, json_array_get(arr, i)};
        if ((rc = check_columns(rd, &sr, cols)) < 0 ||
            (rc = get_code(rd, &sr, "IUGU CODE", true, sc->nodes[i].code)) < 0)
            return rc;
        const char *type = json_string_value(json_object_get(sr.row, "PLANT TYPE"));
        if (!type || (strcmp(type, "IU") != 0 && strcmp(type, "GU") != 0)) {
            sy_errf(rd->err, rd->errlen, "IUGUType[%zu]: PLANT TYPE must be IU or GU", i);
            return -SY_EINVAL;
        }
        sc->nodes[i].type = type[0] == 'I' ? OP_IU : OP_GU;
        rd->by_code[i] = i;
    }
    qsort_r(rd->by_code, sc->nnodes, sizeof *rd->by_code, cmp_code, sc);
    for (size_t k = 1; k < sc->nnodes; k++)
        if (strcmp(sc->nodes[rd->by_code[k]].code, sc->nodes[rd->by_code[k - 1]].code) == 0) {
            size_t a = rd->by_code[k - 1], b = rd->by_code[k];
            sy_errf(rd->err, rd->errlen, "IUGUType[%zu]: '%s' repeats IUGUType[%zu]", a > b ? a : b,
                    sc->nodes[a].code, a < b ? a : b);
            return -SY_EINVAL;
        }
    return 0;
}

/* ClinkerCapacity, ProductionCost, ClinkerDemand and IUGUClosingStock: one row per node and
 * period. */
enum np_sheet { NP_CAPACITY, NP_COST, NP_DEMAND, NP_CLOSING };

static int read_np_row(struct reader *rd, const struct sheet_row *sr, enum np_sheet which,
                       size_t *seen)
{
    static const char *const cols[][5] = {
        {"IU CODE", "TIME PERIOD", "CAPACITY", NULL},
        {"IU CODE", "TIME PERIOD", "PRODUCTION COST", NULL},
        {"IUGU CODE", "TIME PERIOD", "DEMAND", "MIN FULFILLMENT (%)", NULL},
        {"IUGU CODE", "TIME PERIOD", "MIN CLOSE STOCK", "MAX CLOSE STOCK", NULL}};
    size_t n, t;
    bool have;
    int rc;

    if ((rc = check_columns(rd, sr, cols[which])) < 0 ||
        (rc = get_node(rd, sr, cols[which][0], which <= NP_COST ? OP_IU : -1, &n)) < 0 ||
        (rc = get_period(rd, sr, &t)) < 0 || (rc = once(rd, sr, seen, n, t)) < 0)
        return rc;
    struct op_node_period *p = op_np(rd->sc, n, t);
    switch (which) {
    case NP_CAPACITY:
        return get_num(rd, sr, "CAPACITY", true, &p->capacity, NULL);
    case NP_COST:
        return get_num(rd, sr, "PRODUCTION COST", true, &p->cost, NULL);
    case NP_DEMAND:
        if ((rc = get_num(rd, sr, "DEMAND", true, &p->demand, NULL)) < 0 ||
            (rc = get_num(rd, sr, "MIN FULFILLMENT (%)", false, &p->min_fill, &have)) < 0)
            return rc;
        if (have && p->min_fill > 100) {
            sy_errf(rd->err, rd->errlen, "%s[%zu]: MIN FULFILLMENT (%%) %g above 100", sr->sheet,
                    sr->i, p->min_fill);
            return -SY_EINVAL;
        }
        p->min_fill /= 100;
        return 0;
    case NP_CLOSING:
        if ((rc = get_num(rd, sr, "MIN CLOSE STOCK", false, &p->min_close, NULL)) < 0 ||
            (rc = get_num(rd, sr, "MAX CLOSE STOCK", false, &p->max_close, NULL)) < 0)
            return rc;
        if (p->max_close < p->min_close) {
            sy_errf(rd->err, rd->errlen,
                    "%s[%zu]: MAX CLOSE STOCK %g below MIN CLOSE STOCK %g for %s period %zu",
                    sr->sheet, sr->i, p->max_close, p->min_close, rd->sc->nodes[n].code, t + 1);
            return -SY_EINVAL;
        }
        return 0;
    }
    return 0;
}

static int read_np_sheets(struct reader *rd, const json_t *j)
{
    static const char *const names[] = {"ClinkerCapacity", "ProductionCost", "ClinkerDemand",
                                        "IUGUClosingStock"};
    struct op_scenario *sc = rd->sc;
    size_t cells = sc->nnodes * sc->nperiods;
    size_t *seen[4] = {NULL};
    int rc = 0;

    for (int w = 0; w < 4; w++)
        if (!(seen[w] = calloc(cells, sizeof **seen))) {
            rc = -SY_ENOMEM;
            goto out;
        }
    for (int w = 0; w < 4 && rc == 0; w++) {
        const json_t *arr;
        if ((rc = get_sheet(rd, j, names[w], OP_ROWS_MAX, &arr)) < 0)
            goto out;
        for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++) {
            struct sheet_row sr = {names[w], i, json_array_get(arr, i)};
            rc = read_np_row(rd, &sr, (enum np_sheet)w, seen[w]);
        }
    }
    if (rc < 0)
        goto out;
    /* Capacity without a cost would be free clinker: refuse rather than guess. */
    for (size_t n = 0; n < sc->nnodes; n++)
        for (size_t t = 0; t < sc->nperiods; t++) {
            size_t k = n * sc->nperiods + t;
            if (seen[NP_CAPACITY][k] && sc->np[k].capacity > 0 && !seen[NP_COST][k]) {
                sy_errf(rd->err, rd->errlen,
                        "ClinkerCapacity[%zu]: %s period %zu has no ProductionCost row",
                        seen[NP_CAPACITY][k] - 1, sc->nodes[n].code, t + 1);
                rc = -SY_EINVAL;
                goto out;
            }
        }
out:
    for (int w = 0; w < 4; w++)
        free(seen[w]);
    return rc;
}

static int read_opening(struct reader *rd, const json_t *j)
{
    static const char *const cols[] = {"IUGU CODE", "OPENING STOCK", NULL};
    static const char *const hub_cols[] = {"IU", "IUGU", "Opening Stock", NULL};
    const json_t *arr;
    size_t *seen = NULL;
    int rc;

    if ((rc = get_sheet(rd, j, "IUGUOpeningStock", OP_NODES_MAX, &arr)) < 0)
        goto out;
    if (!(seen = calloc(rd->sc->nnodes, sizeof *seen))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct sheet_row sr = {"IUGUOpeningStock", i, json_array_get(arr, i)};
        size_t n;
        double v;
        if ((rc = check_columns(rd, &sr, cols)) < 0 ||
            (rc = get_node(rd, &sr, "IUGU CODE", -1, &n)) < 0 ||
            (rc = get_num(rd, &sr, "OPENING STOCK", true, &v, NULL)) < 0)
            goto out;
        if (seen[n]) {
            sy_errf(rd->err, rd->errlen, "IUGUOpeningStock[%zu]: %s repeats IUGUOpeningStock[%zu]",
                    i, rd->sc->nodes[n].code, seen[n] - 1);
            rc = -SY_EINVAL;
            goto out;
        }
        seen[n] = i + 1;
        rd->sc->nodes[n].opening += v;
    }
    if ((rc = get_sheet(rd, j, "HubOpeningStock", OP_ROWS_MAX, &arr)) < 0)
        goto out;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct sheet_row sr = {"HubOpeningStock", i, json_array_get(arr, i)};
        size_t iu, n;
        double v;
        if ((rc = check_columns(rd, &sr, hub_cols)) < 0 ||
            (rc = get_node(rd, &sr, "IU", OP_IU, &iu)) < 0 ||
            (rc = get_node(rd, &sr, "IUGU", -1, &n)) < 0 ||
            (rc = get_num(rd, &sr, "Opening Stock", true, &v, NULL)) < 0)
            goto out;
        rd->sc->nodes[n].opening += v;
    }
out:
    free(seen);
    return rc;
}

static int read_route(struct reader *rd, const struct sheet_row *sr, struct op_route *r)
{
    static const char *const cols[] = {"FROM IU CODE",        "TO IUGU CODE", "TRANSPORT CODE",
                                       "TIME PERIOD",         "FREIGHT COST", "HANDLING COST",
                                       "QUANTITY MULTIPLIER", "MAX TRIPS",    NULL};
    bool capped;
    int rc;

    r->row = sr->i;
    r->lot = 1;
    r->max_trips = -1;
    if ((rc = check_columns(rd, sr, cols)) < 0 ||
        (rc = get_node(rd, sr, "FROM IU CODE", -1, &r->from)) < 0 ||
        (rc = get_node(rd, sr, "TO IUGU CODE", -1, &r->to)) < 0 ||
        (rc = get_code(rd, sr, "TRANSPORT CODE", true, r->mode)) < 0 ||
        (rc = get_period(rd, sr, &r->period)) < 0 ||
        (rc = get_num(rd, sr, "FREIGHT COST", true, &r->freight, NULL)) < 0 ||
        (rc = get_num(rd, sr, "HANDLING COST", false, &r->handling, NULL)) < 0 ||
        (rc = get_num(rd, sr, "QUANTITY MULTIPLIER", false, &r->lot, NULL)) < 0 ||
        (rc = get_num(rd, sr, "MAX TRIPS", false, &r->max_trips, &capped)) < 0)
        return rc;
    if (r->lot <= 0) {
        sy_errf(rd->err, rd->errlen, "LogisticsIUGU[%zu]: QUANTITY MULTIPLIER must be above 0",
                sr->i);
        return -SY_EINVAL;
    }
    if (capped && r->max_trips != floor(r->max_trips)) {
        sy_errf(rd->err, rd->errlen, "LogisticsIUGU[%zu]: MAX TRIPS %g is not a whole number",
                sr->i, r->max_trips);
        return -SY_EINVAL;
    }
    return 0;
}

/* Routes ordered by origin, period, destination, mode: duplicates side by side, and a record's
 * routes one contiguous run. */
static int cmp_route(const void *pa, const void *pb, void *ctx)
{
    const struct op_scenario *sc = ctx;
    const struct op_route *a = &sc->routes[*(const size_t *)pa];
    const struct op_route *b = &sc->routes[*(const size_t *)pb];

    if (a->from != b->from)
        return a->from < b->from ? -1 : 1;
    if (a->period != b->period)
        return a->period < b->period ? -1 : 1;
    if (a->to != b->to)
        return a->to < b->to ? -1 : 1;
    return strcmp(a->mode, b->mode);
}

static int read_routes(struct reader *rd, const json_t *j, size_t **order)
{
    struct op_scenario *sc = rd->sc;
    const json_t *arr;
    int rc = get_sheet(rd, j, "LogisticsIUGU", OP_ROUTES_MAX, &arr);

    if (rc < 0)
        return rc;
    sc->nroutes = json_array_size(arr);
    sc->routes = calloc(sc->nroutes + 1, sizeof *sc->routes);
    *order = calloc(sc->nroutes + 1, sizeof **order);
    if (!sc->routes || !*order)
        return -SY_ENOMEM;
    for (size_t i = 0; i < sc->nroutes; i++) {
        struct sheet_row sr = {"LogisticsIUGU", i, json_array_get(arr, i)};
        if ((rc = read_route(rd, &sr, &sc->routes[i])) < 0)
            return rc;
        (*order)[i] = i;
    }
    qsort_r(*order, sc->nroutes, sizeof **order, cmp_route, sc);
    for (size_t k = 1; k < sc->nroutes; k++)
        if (cmp_route(&(*order)[k - 1], &(*order)[k], sc) == 0) {
            size_t a = (*order)[k - 1], b = (*order)[k];
            const struct op_route *r = &sc->routes[a];
            sy_errf(rd->err, rd->errlen,
                    "LogisticsIUGU[%zu]: %s to %s by %s in period %zu repeats "
                    "LogisticsIUGU[%zu]",
                    a > b ? a : b, sc->nodes[r->from].code, sc->nodes[r->to].code, r->mode,
                    r->period + 1, a < b ? a : b);
            return -SY_EINVAL;
        }
    return 0;
}

bool op_record_covers(const struct op_record *rec, const struct op_route *r)
{
    return r->from == rec->iu && r->period == rec->period && r->from != r->to &&
           (rec->any_to || r->to == rec->to) && (!rec->mode[0] || strcmp(rec->mode, r->mode) == 0);
}

static int read_record(struct reader *rd, const struct sheet_row *sr, struct op_record *rec)
{
    static const char *const cols[] = {"IU CODE",      "TRANSPORT CODE", "IUGU CODE", "TIME PERIOD",
                                       "BOUND TYPEID", "VALUE TYPEID",   "Value",     NULL};
    char to[OP_CODE_MAX + 1];
    int rc;

    rec->row = sr->i;
    if ((rc = check_columns(rd, sr, cols)) < 0 ||
        (rc = get_node(rd, sr, "IU CODE", -1, &rec->iu)) < 0 ||
        (rc = get_code(rd, sr, "TRANSPORT CODE", false, rec->mode)) < 0 ||
        (rc = get_code(rd, sr, "IUGU CODE", false, to)) < 0 ||
        (rc = get_period(rd, sr, &rec->period)) < 0 ||
        (rc = get_num(rd, sr, "Value", true, &rec->value, NULL)) < 0)
        return rc;
    rec->any_to = !to[0];
    if (to[0] && (rc = get_node(rd, sr, "IUGU CODE", -1, &rec->to)) < 0)
        return rc;
    const char *bt = json_string_value(json_object_get(sr->row, "BOUND TYPEID"));
    if (!bt || strlen(bt) != 1 || !strchr("LGE", bt[0])) {
        sy_errf(rd->err, rd->errlen, "IUGUConstraint[%zu]: BOUND TYPEID must be L, G or E", sr->i);
        return -SY_EINVAL;
    }
    rec->sense = bt[0];
    const json_t *vt = json_object_get(sr->row, "VALUE TYPEID");
    if (vt && !json_is_null(vt) &&
        !(json_is_string(vt) && strcmp(json_string_value(vt), "C") == 0)) {
        sy_errf(rd->err, rd->errlen, "IUGUConstraint[%zu]: VALUE TYPEID must be C (tonnes)", sr->i);
        return -SY_EINVAL;
    }
    return 0;
}

static int cmp_record(const void *pa, const void *pb, void *ctx)
{
    const struct op_scenario *sc = ctx;
    const struct op_record *a = &sc->records[*(const size_t *)pa];
    const struct op_record *b = &sc->records[*(const size_t *)pb];

    if (a->iu != b->iu)
        return a->iu < b->iu ? -1 : 1;
    if (a->period != b->period)
        return a->period < b->period ? -1 : 1;
    if (a->any_to != b->any_to)
        return a->any_to ? -1 : 1;
    if (!a->any_to && a->to != b->to)
        return a->to < b->to ? -1 : 1;
    return strcmp(a->mode, b->mode);
}

/* Records of one item (same origin, period, destination, mode) must leave a value that all of
 * them accept. */
static int check_record_groups(struct reader *rd, size_t *order)
{
    struct op_scenario *sc = rd->sc;

    qsort_r(order, sc->nrecords, sizeof *order, cmp_record, sc);
    for (size_t k = 0; k < sc->nrecords;) {
        size_t end = k, lo_row = SIZE_MAX, hi_row = SIZE_MAX;
        double lo = 0, hi = INFINITY;
        while (end < sc->nrecords && cmp_record(&order[k], &order[end], sc) == 0) {
            const struct op_record *r = &sc->records[order[end]];
            if (r->sense != 'L' && (lo_row == SIZE_MAX || r->value > lo))
                lo = r->value, lo_row = r->row;
            if (r->sense != 'G' && (hi_row == SIZE_MAX || r->value < hi))
                hi = r->value, hi_row = r->row;
            end++;
        }
        if (lo_row != SIZE_MAX && hi_row != SIZE_MAX && lo > hi * (1 + 1e-9) + 1e-9) {
            const struct op_record *a = &sc->records[lo_row], *b = &sc->records[hi_row];
            sy_errf(rd->err, rd->errlen,
                    "IUGUConstraint[%zu]: %c %g above %c %g of IUGUConstraint[%zu] for the same "
                    "item",
                    a->row, a->sense, lo, b->sense, hi, b->row);
            return -SY_EINVAL;
        }
        k = end;
    }
    return 0;
}

/* A record that asks for shipments (G or E above 0) needs routes that can carry them. */
static int check_record_reach(struct reader *rd, const size_t *route_order)
{
    struct op_scenario *sc = rd->sc;

    for (size_t i = 0; i < sc->nrecords; i++) {
        const struct op_record *rec = &sc->records[i];
        if (rec->sense == 'L' || rec->value <= 0)
            continue;
        /* First route of (iu, period) in route_order. */
        size_t lo = 0, hi = sc->nroutes, n = 0;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const struct op_route *r = &sc->routes[route_order[mid]];
            if (r->from < rec->iu || (r->from == rec->iu && r->period < rec->period))
                lo = mid + 1;
            else
                hi = mid;
        }
        double carry = 0;
        for (size_t k = lo; k < sc->nroutes; k++) {
            const struct op_route *r = &sc->routes[route_order[k]];
            if (r->from != rec->iu || r->period != rec->period)
                break;
            if (!op_record_covers(rec, r))
                continue;
            n++;
            carry += r->max_trips < 0 ? INFINITY : r->max_trips * r->lot;
        }
        if (n == 0) {
            sy_errf(rd->err, rd->errlen, "IUGUConstraint[%zu]: %c %g matches no LogisticsIUGU row",
                    rec->row, rec->sense, rec->value);
            return -SY_EINVAL;
        }
        if (carry < rec->value * (1 - 1e-9)) {
            sy_errf(rd->err, rd->errlen,
                    "IUGUConstraint[%zu]: %c %g but its routes' MAX TRIPS carry at most %g",
                    rec->row, rec->sense, rec->value, carry);
            return -SY_EINVAL;
        }
    }
    return 0;
}

static int read_records(struct reader *rd, const json_t *j, const size_t *route_order)
{
    struct op_scenario *sc = rd->sc;
    size_t *order = NULL;
    const json_t *arr;
    int rc = get_sheet(rd, j, "IUGUConstraint", OP_RECORDS_MAX, &arr);

    if (rc < 0)
        goto out;
    sc->nrecords = json_array_size(arr);
    sc->records = calloc(sc->nrecords + 1, sizeof *sc->records);
    order = calloc(sc->nrecords + 1, sizeof *order);
    if (!sc->records || !order) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < sc->nrecords; i++) {
        struct sheet_row sr = {"IUGUConstraint", i, json_array_get(arr, i)};
        if ((rc = read_record(rd, &sr, &sc->records[i])) < 0)
            goto out;
        order[i] = i;
    }
    if ((rc = check_record_groups(rd, order)) < 0)
        goto out;
    rc = check_record_reach(rd, route_order);
out:
    free(order);
    return rc;
}

static int check_top_level(struct reader *rd, const json_t *j)
{
    const char *key;
    json_t *v;

    if (!json_is_object(j)) {
        sy_errf(rd->err, rd->errlen, "scenario: not an object");
        return -SY_EINVAL;
    }
    json_object_foreach((json_t *)j, key, v)
    {
        if (!in_list(key, SHEETS)) {
            sy_errf(rd->err, rd->errlen, "scenario: unknown sheet '%.*s'", SHOWN, key);
            return -SY_EINVAL;
        }
    }
    return 0;
}

int op_scenario_from_json(const json_t *j, struct op_scenario **out, char *err, size_t errlen)
{
    struct op_scenario *sc = calloc(1, sizeof *sc);
    struct reader rd = {sc, NULL, err, errlen};
    size_t *route_order = NULL, periods;
    int rc;

    *out = NULL;
    if (!sc) {
        rc = -SY_ENOMEM;
        goto out;
    }
    if ((rc = check_top_level(&rd, j)) < 0 || (rc = read_settings(&rd, j, &periods)) < 0 ||
        (rc = read_nodes(&rd, j)) < 0)
        goto out;
    sc->nperiods = periods ? periods : largest_period(j);
    if (sc->nperiods == 0) {
        sy_errf(err, errlen, "scenario: no TIME PERIOD anywhere and no Settings.periods");
        rc = -SY_EINVAL;
        goto out;
    }
    if (!(sc->np = calloc(sc->nnodes * sc->nperiods, sizeof *sc->np))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < sc->nnodes * sc->nperiods; k++)
        sc->np[k].max_close = INFINITY;
    if ((rc = read_np_sheets(&rd, j)) < 0 || (rc = read_opening(&rd, j)) < 0 ||
        (rc = read_routes(&rd, j, &route_order)) < 0 ||
        (rc = read_records(&rd, j, route_order)) < 0)
        goto out;
    *out = sc;
    sc = NULL;
out:
    if (rc == -SY_ENOMEM)
        sy_errf(err, errlen, "scenario: out of memory");
    free(route_order);
    free(rd.by_code);
    op_scenario_free(sc);
    return rc;
}

void op_scenario_free(struct op_scenario *sc)
{
    if (!sc)
        return;
    free(sc->nodes);
    free(sc->np);
    free(sc->routes);
    free(sc->records);
    free(sc);
}
