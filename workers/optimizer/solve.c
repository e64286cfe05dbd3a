/* solve.c - one GLPK solve: glp_intopt with presolve, a callback that reports progress and
 * stops on cancel, and the return code read together with the solution status (a zero return
 * does not mean optimal, and a time limit may still leave a plan). */
#include "optimizer/solve_int.h"

#include "sy/err.h"

#include <float.h>
#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_ 256

static _Thread_local char last_line[LINE_MAX_];
static _Thread_local char prev_line[LINE_MAX_];
static _Thread_local char partial[LINE_MAX_];

static const char *const STATUS_NAMES[] = {"optimal",   "feasible",  "infeasible",
                                           "unbounded", "cancelled", "error"};

const char *op_status_name(enum op_status s)
{
    return (unsigned)s <= OP_ERROR ? STATUS_NAMES[s] : "error";
}

int op_status_from_name(const char *name, enum op_status *s)
{
    for (int i = 0; i <= OP_ERROR; i++)
        if (name && strcmp(name, STATUS_NAMES[i]) == 0) {
            *s = (enum op_status)i;
            return 0;
        }
    return -SY_EINVAL;
}

int op_options_check(const struct op_options *o, char *err, size_t errlen)
{
    if (!isfinite(o->time_limit_s) || o->time_limit_s < 0 ||
        o->time_limit_s > OP_TIME_LIMIT_MAX_S) {
        sy_errf(err, errlen, "time_limit: must be 0..%g s", OP_TIME_LIMIT_MAX_S);
        return -SY_EINVAL;
    }
    if (!isfinite(o->mip_gap) || o->mip_gap < 0 || o->mip_gap >= 1) {
        sy_errf(err, errlen, "mip_gap: must be at least 0 and below 1");
        return -SY_EINVAL;
    }
    if (o->mem_limit_mb > OP_MEM_LIMIT_MAX_MB) {
        sy_errf(err, errlen, "mem_limit: at most %d MB", OP_MEM_LIMIT_MAX_MB);
        return -SY_EINVAL;
    }
    return 0;
}

/* GLPK prints in pieces; whole lines are kept, the last non-empty one remembered. */
static int on_term(void *info, const char *s)
{
    (void)info;
    for (; *s; s++) {
        size_t n = strlen(partial);
        if (*s == '\n') {
            if (n) {
                memcpy(prev_line, last_line, sizeof prev_line);
                memcpy(last_line, partial, n + 1);
            }
            partial[0] = '\0';
        } else if (n + 1 < sizeof partial) {
            partial[n] = *s;
            partial[n + 1] = '\0';
        }
    }
    return 1; /* handled: nothing goes to stdout */
}

void op_glpk_capture(void)
{
    last_line[0] = prev_line[0] = partial[0] = '\0';
    glp_term_hook(on_term, NULL);
}

const char *op_glpk_last_line(void)
{
    return last_line[0] ? last_line : partial;
}

const char *op_glpk_error_line(void)
{
    /* A fatal error prints its message, then "Error detected in file F at line N". */
    if (strncmp(last_line, "Error detected in file", 22) == 0 && prev_line[0])
        return prev_line;
    return op_glpk_last_line();
}

bool op_glpk_error_in(const char *file)
{
    return strncmp(last_line, "Error detected in file", 22) == 0 && strstr(last_line, file);
}

static int ms_of(double s)
{
    return s <= 0 || s * 1000 >= INT_MAX ? INT_MAX : (int)(s * 1000);
}

struct search {
    const struct op_ctl *ctl;
    double t0;      /* glp_time() at the start, ms */
    double last_ms; /* last progress report */
    double bound;   /* best bound seen in the tree; NAN before */
    bool cancelled;
};

static void on_tree(glp_tree *T, void *info)
{
    struct search *s = info;
    const struct op_ctl *ctl = s->ctl;
    int reason = glp_ios_reason(T);

    if (ctl->cancel && *ctl->cancel) {
        s->cancelled = true;
        glp_ios_terminate(T);
        return;
    }
    if (reason != GLP_ISELECT && reason != GLP_IBINGO)
        return;
    int best = glp_ios_best_node(T);
    if (best)
        s->bound = glp_ios_node_bound(T, best);
    if (!ctl->progress)
        return;
    double now = glp_time();
    if (reason != GLP_IBINGO && now - s->last_ms < ctl->progress_ms)
        return;
    s->last_ms = now;

    glp_prob *P = glp_ios_get_prob(T);
    bool have = glp_mip_status(P) == GLP_FEAS || glp_mip_status(P) == GLP_OPT;
    struct op_progress p = {.incumbent = have ? glp_mip_obj_val(P) : NAN,
                            .bound = s->bound,
                            .gap = have ? glp_ios_mip_gap(T) : NAN,
                            .seconds = glp_difftime(now, s->t0)}; /* seconds, not ms */
    int active, current, total;
    glp_ios_tree_size(T, &active, &current, &total);
    p.nodes = total;
    ctl->progress(&p, ctl->arg);
}

static void set_reason(struct op_result *r, const char *what)
{
    const char *line = op_glpk_last_line();

    snprintf(r->reason, sizeof r->reason, "%.60s%s%.180s", what, line[0] ? ": " : "", line);
}

static void solve_lp(glp_prob *P, const struct op_options *opt, struct op_result *r)
{
    glp_smcp sm;

    glp_init_smcp(&sm);
    sm.msg_lev = GLP_MSG_ERR;
    sm.presolve = GLP_ON; /* no warm start here, and it catches infeasibility early */
    sm.tm_lim = ms_of(opt->time_limit_s);
    int rc = glp_simplex(P, &sm);
    int st = rc == 0 || rc == GLP_ETMLIM ? glp_get_status(P) : GLP_UNDEF;

    if (rc == 0 && st == GLP_OPT) {
        r->status = OP_OPTIMAL;
    } else if (rc == GLP_ENOPFS || st == GLP_NOFEAS) {
        r->status = OP_INFEASIBLE;
        snprintf(r->reason, sizeof r->reason, "the LP has no feasible solution");
    } else if (rc == GLP_ENODFS || st == GLP_UNBND) {
        r->status = OP_UNBOUNDED;
        snprintf(r->reason, sizeof r->reason, "the LP has no dual feasible solution (unbounded)");
    } else if (rc == GLP_ETMLIM && st == GLP_FEAS) {
        r->status = OP_FEASIBLE;
        snprintf(r->reason, sizeof r->reason, "time limit reached before the LP optimum");
    } else if (rc == GLP_ETMLIM) {
        r->status = OP_ERROR;
        snprintf(r->reason, sizeof r->reason, "time limit reached before a feasible point");
    } else {
        r->status = OP_ERROR;
        char what[64];
        snprintf(what, sizeof what, "simplex failed (code %d, status %d)", rc, st);
        set_reason(r, what);
    }
    r->has_plan = r->status == OP_OPTIMAL || r->status == OP_FEASIBLE;
    if (r->has_plan) {
        r->objective = glp_get_obj_val(P);
        r->bound = r->status == OP_OPTIMAL ? r->objective : NAN;
        r->gap = r->status == OP_OPTIMAL ? 0 : NAN;
    }
}

static void solve_mip(glp_prob *P, const struct op_options *opt, const struct op_ctl *ctl,
                      struct op_result *r)
{
    static const struct op_ctl none;
    struct search s = {.ctl = ctl ? ctl : &none, .t0 = glp_time(), .bound = NAN};
    glp_iocp io;

    s.last_ms = s.t0;
    glp_init_iocp(&io);
    io.msg_lev = GLP_MSG_ERR;
    io.presolve = GLP_ON; /* else glp_intopt wants an optimal LP basis first (GLP_EROOT) */
    io.tm_lim = ms_of(opt->time_limit_s);
    io.mip_gap = opt->mip_gap;
    io.br_tech = GLP_BR_PCH;
    io.cb_func = on_tree;
    io.cb_info = &s;
    int rc = glp_intopt(P, &io);
    int st = glp_mip_status(P);
    bool point = st == GLP_OPT || st == GLP_FEAS;
    bool stopped = rc == GLP_ETMLIM || rc == GLP_EMIPGAP || rc == GLP_ESTOP;

    if ((rc == 0 || stopped) && st == GLP_OPT) {
        r->status = OP_OPTIMAL;
    } else if (rc == GLP_ESTOP || s.cancelled) {
        r->status = OP_CANCELLED;
        snprintf(r->reason, sizeof r->reason, "cancelled%s",
                 point ? "; the best plan found so far" : " before any plan was found");
    } else if (rc == GLP_ENOPFS || (rc == 0 && st == GLP_NOFEAS)) {
        r->status = OP_INFEASIBLE;
        snprintf(r->reason, sizeof r->reason, "no plan satisfies the constraints");
    } else if (rc == GLP_ENODFS) {
        r->status = OP_UNBOUNDED;
        snprintf(r->reason, sizeof r->reason, "the LP relaxation is unbounded");
    } else if (stopped && point) {
        r->status = OP_FEASIBLE;
        snprintf(r->reason, sizeof r->reason, "%s",
                 rc == GLP_EMIPGAP ? "relative gap within mip_gap" : "time limit reached");
    } else if (rc == 0 && st == GLP_FEAS) {
        r->status = OP_FEASIBLE; /* the search ended within tol_obj of the bound */
    } else if (rc == GLP_ETMLIM) {
        r->status = OP_ERROR;
        snprintf(r->reason, sizeof r->reason, "time limit reached before any plan was found");
    } else {
        r->status = OP_ERROR;
        char what[64];
        snprintf(what, sizeof what, "branch-and-cut failed (code %d, status %d)", rc, st);
        set_reason(r, what);
    }
    r->has_plan = point && r->status != OP_INFEASIBLE && r->status != OP_ERROR;
    if (r->has_plan) {
        r->objective = glp_mip_obj_val(P);
        r->bound = st == GLP_OPT ? r->objective : s.bound; /* NAN: the tree never had one */
        r->gap = isnan(r->bound)
                     ? NAN
                     : fabs(r->objective - r->bound) / (fabs(r->objective) + DBL_EPSILON);
    }
}

void op_solve_prob(glp_prob *P, const struct op_options *opt, const struct op_ctl *ctl,
                   struct op_result *r, bool *mip)
{
    double t0 = glp_time();

    r->objective = r->bound = r->gap = NAN;
    r->reason[0] = '\0';
    *mip = !opt->lp_only && glp_get_num_int(P) > 0;
    if (*mip)
        solve_mip(P, opt, ctl, r);
    else
        solve_lp(P, opt, r);
    r->seconds = glp_difftime(glp_time(), t0);
}

double op_solve_col(glp_prob *P, bool mip, int j)
{
    return mip ? glp_mip_col_val(P, j) : glp_get_col_prim(P, j);
}
