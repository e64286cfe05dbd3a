/* plan.c - a scenario into GLPK columns and rows (see plan.h for the formulation), and the
 * solution back into production, shipments, stock, unmet demand and costs by component. */
#include "optimizer/plan.h"

#include "optimizer/solve_int.h"
#include "sy/err.h"

#include <glpk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The constraint matrix as triplets, 1-based like GLPK's arrays. */
struct triplets {
    int *ia, *ja;
    double *ar;
    size_t n, cap;
};

static int put(struct triplets *m, int i, int j, double v)
{
    if (m->n + 1 >= m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        if (cap > OP_MATRIX_MAX + 1)
            cap = OP_MATRIX_MAX + 1;
        if (m->n + 1 >= cap)
            return -SY_ETOOBIG;
        int *ia = realloc(m->ia, cap * sizeof *ia);
        if (ia)
            m->ia = ia;
        int *ja = realloc(m->ja, cap * sizeof *ja);
        if (ja)
            m->ja = ja;
        double *ar = realloc(m->ar, cap * sizeof *ar);
        if (ar)
            m->ar = ar;
        if (!ia || !ja || !ar)
            return -SY_ENOMEM;
        m->cap = cap;
    }
    m->n++;
    m->ia[m->n] = i;
    m->ja[m->n] = j;
    m->ar[m->n] = v;
    return 0;
}

/* Column numbers, 0 where there is none. */
struct cols {
    int *prod, *stock, *unmet; /* [n * T + t] */
    int *ship;                 /* [route] */
    bool *lots;                /* [route]: the column counts lots, not tonnes */
};

static bool is_lot(const struct op_route *r)
{
    return r->lot > 1;
}

static void set_bounds(glp_prob *P, int j, double lo, double hi)
{
    glp_set_col_bnds(P, j, isinf(hi) ? GLP_LO : lo == hi ? GLP_FX : GLP_DB, lo, isinf(hi) ? 0 : hi);
}

static void add_columns(glp_prob *P, const struct op_scenario *sc, struct cols *c)
{
    size_t T = sc->nperiods;

    for (size_t n = 0; n < sc->nnodes; n++)
        for (size_t t = 0; t < T; t++) {
            const struct op_node_period *p = op_np(sc, n, t);
            size_t k = n * T + t;
            if (sc->nodes[n].type == OP_IU) {
                c->prod[k] = glp_add_cols(P, 1);
                set_bounds(P, c->prod[k], 0, p->capacity);
                glp_set_obj_coef(P, c->prod[k], p->cost);
            }
            c->stock[k] = glp_add_cols(P, 1);
            set_bounds(P, c->stock[k], p->min_close, p->max_close);
            glp_set_obj_coef(P, c->stock[k], sc->holding_cost);
            c->unmet[k] = glp_add_cols(P, 1);
            set_bounds(P, c->unmet[k], 0, (1 - p->min_fill) * p->demand);
            glp_set_obj_coef(P, c->unmet[k], sc->unmet_penalty);
        }
    for (size_t i = 0; i < sc->nroutes; i++) {
        const struct op_route *r = &sc->routes[i];
        if (r->from == r->to)
            continue;
        int j = c->ship[i] = glp_add_cols(P, 1);
        c->lots[i] = is_lot(r);
        double per_t = r->freight + r->handling;
        if (c->lots[i]) {
            glp_set_col_kind(P, j, GLP_IV);
            set_bounds(P, j, 0, r->max_trips < 0 ? INFINITY : r->max_trips);
            glp_set_obj_coef(P, j, per_t * r->lot);
        } else {
            set_bounds(P, j, 0, r->max_trips < 0 ? INFINITY : r->max_trips * r->lot);
            glp_set_obj_coef(P, j, per_t);
        }
    }
}

/* Tonnes one unit of route i's column carries. */
static double per_unit(const struct op_scenario *sc, const struct cols *c, size_t i)
{
    return c->lots[i] ? sc->routes[i].lot : 1;
}

static int add_balance_rows(glp_prob *P, const struct op_scenario *sc, const struct cols *c,
                            struct triplets *m)
{
    size_t T = sc->nperiods;
    int first = glp_add_rows(P, (int)(sc->nnodes * T)), rc = 0;

    /* Row of (n, t): first + n * T + t. Each column enters a row once: a stock column in its
     * own period's row and the next one's, a route in its origin's and destination's rows. */
    for (size_t n = 0; n < sc->nnodes && rc == 0; n++)
        for (size_t t = 0; t < T && rc == 0; t++) {
            const struct op_node_period *p = op_np(sc, n, t);
            size_t k = n * T + t;
            int row = first + (int)k;
            double rhs = (t == 0 ? sc->nodes[n].opening : 0) - p->demand;
            glp_set_row_bnds(P, row, GLP_FX, rhs, rhs);
            if ((rc = put(m, row, c->stock[k], 1)) < 0 ||
                (t > 0 && (rc = put(m, row, c->stock[k - 1], -1)) < 0) ||
                (c->prod[k] && (rc = put(m, row, c->prod[k], -1)) < 0))
                break;
            rc = put(m, row, c->unmet[k], -1);
        }
    for (size_t i = 0; i < sc->nroutes && rc == 0; i++) {
        const struct op_route *r = &sc->routes[i];
        if (!c->ship[i])
            continue;
        double q = per_unit(sc, c, i);
        if ((rc = put(m, first + (int)(r->from * T + r->period), c->ship[i], q)) < 0)
            break;
        rc = put(m, first + (int)(r->to * T + r->period), c->ship[i], -q);
    }
    return rc;
}

static int add_record_rows(glp_prob *P, const struct op_scenario *sc, const struct cols *c,
                           struct triplets *m)
{
    size_t T = sc->nperiods, buckets = sc->nnodes * T;
    size_t *start = calloc(buckets + 1, sizeof *start), *idx = calloc(sc->nroutes + 1, sizeof *idx);
    int rc = 0;

    if (!start || !idx) {
        rc = -SY_ENOMEM;
        goto out;
    }
    /* Routes bucketed by (origin, period): a record reads only its own bucket. */
    for (size_t i = 0; i < sc->nroutes; i++)
        start[sc->routes[i].from * T + sc->routes[i].period + 1]++;
    for (size_t b = 0; b < buckets; b++)
        start[b + 1] += start[b];
    for (size_t i = 0; i < sc->nroutes; i++) {
        size_t b = sc->routes[i].from * T + sc->routes[i].period;
        idx[start[b]++] = i;
    }
    for (size_t b = buckets; b > 0; b--)
        start[b] = start[b - 1];
    start[0] = 0;
    if (sc->nrecords)
        glp_add_rows(P, (int)sc->nrecords);
    for (size_t k = 0; k < sc->nrecords; k++) {
        const struct op_record *rec = &sc->records[k];
        int row = (int)(sc->nnodes * T + k + 1);
        int type = rec->sense == 'L' ? GLP_UP : rec->sense == 'G' ? GLP_LO : GLP_FX;
        glp_set_row_bnds(P, row, type, rec->value, rec->value);
        size_t b = rec->iu * T + rec->period;
        for (size_t x = start[b]; x < start[b + 1]; x++) {
            size_t i = idx[x];
            if (!c->ship[i] || !op_record_covers(rec, &sc->routes[i]))
                continue;
            if ((rc = put(m, row, c->ship[i], per_unit(sc, c, i))) < 0)
                goto out;
        }
    }
out:
    free(start);
    free(idx);
    return rc;
}

static int alloc_result(struct op_result *r, const struct op_scenario *sc)
{
    size_t cells = sc->nnodes * sc->nperiods;

    r->nnodes = sc->nnodes;
    r->nperiods = sc->nperiods;
    r->nroutes = sc->nroutes;
    r->production = calloc(cells, sizeof *r->production);
    r->stock = calloc(cells, sizeof *r->stock);
    r->unmet = calloc(cells, sizeof *r->unmet);
    r->tonnes = calloc(sc->nroutes + 1, sizeof *r->tonnes);
    r->trips = calloc(sc->nroutes + 1, sizeof *r->trips);
    return r->production && r->stock && r->unmet && r->tonnes && r->trips ? 0 : -SY_ENOMEM;
}

/* Values below GLPK's tolerances are printed as the zero they are. */
static double clean(double v)
{
    return fabs(v) < 1e-9 ? 0 : v;
}

static void extract(glp_prob *P, bool mip, const struct op_scenario *sc, const struct cols *c,
                    struct op_result *r)
{
    size_t cells = sc->nnodes * sc->nperiods;

    memset(&r->costs, 0, sizeof r->costs);
    for (size_t k = 0; k < cells; k++) {
        const struct op_node_period *p = &sc->np[k];
        if (c->prod[k]) {
            r->production[k] = clean(op_solve_col(P, mip, c->prod[k]));
            r->costs.production += p->cost * r->production[k];
        }
        r->stock[k] = clean(op_solve_col(P, mip, c->stock[k]));
        r->unmet[k] = clean(op_solve_col(P, mip, c->unmet[k]));
        r->costs.holding += sc->holding_cost * r->stock[k];
        r->costs.penalty += sc->unmet_penalty * r->unmet[k];
    }
    for (size_t i = 0; i < sc->nroutes; i++) {
        const struct op_route *rt = &sc->routes[i];
        if (!c->ship[i])
            continue;
        double v = clean(op_solve_col(P, mip, c->ship[i]));
        r->tonnes[i] = v * per_unit(sc, c, i);
        r->trips[i] = c->lots[i] ? v : r->tonnes[i] / rt->lot;
        r->costs.transport += (rt->freight + rt->handling) * r->tonnes[i];
    }
}

int op_plan_solve(const struct op_scenario *sc, const struct op_options *opt,
                  const struct op_ctl *ctl, struct op_result *r)
{
    size_t cells = sc->nnodes * sc->nperiods;
    struct cols c = {calloc(cells, sizeof(int)), calloc(cells, sizeof(int)),
                     calloc(cells, sizeof(int)), calloc(sc->nroutes + 1, sizeof(int)),
                     calloc(sc->nroutes + 1, sizeof(bool))};
    struct triplets m = {0};
    glp_prob *P = NULL;
    bool mip;
    int rc;

    if (!c.prod || !c.stock || !c.unmet || !c.ship || !c.lots || (rc = alloc_result(r, sc)) < 0) {
        rc = -SY_ENOMEM;
        goto out;
    }
    P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    add_columns(P, sc, &c);
    if ((rc = add_balance_rows(P, sc, &c, &m)) < 0 || (rc = add_record_rows(P, sc, &c, &m)) < 0)
        goto out;
    glp_load_matrix(P, (int)m.n, m.ia, m.ja, m.ar);
    op_solve_prob(P, opt, ctl, r, &mip);
    if (r->has_plan)
        extract(P, mip, sc, &c, r);
out:
    if (rc < 0) {
        r->status = OP_ERROR;
        r->has_plan = false;
        snprintf(r->reason, sizeof r->reason, "building the model: %s", sy_strerror(rc));
    }
    if (P)
        glp_delete_prob(P);
    free(m.ia);
    free(m.ja);
    free(m.ar);
    free(c.prod);
    free(c.stock);
    free(c.unmet);
    free(c.ship);
    free(c.lots);
    return rc;
}
