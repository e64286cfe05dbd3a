/* solve.h - what every solve shares: options, the status a solve ends in, progress reports
 * while it runs, and the cancel flag it honours. */
#ifndef OP_SOLVE_H
#define OP_SOLVE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

enum op_status {
    OP_OPTIMAL,    /* proven optimal (within the solver's tolerances) */
    OP_FEASIBLE,   /* a plan, optimality not proven: time limit or the asked gap reached */
    OP_INFEASIBLE, /* no plan satisfies the hard constraints */
    OP_UNBOUNDED,  /* generic models only: the objective has no finite optimum */
    OP_CANCELLED,  /* stopped on request; a plan when one was found before */
    OP_ERROR       /* bad model text, solver failure, memory or wall-clock limit; see reason */
};

/* "optimal", "feasible", "infeasible", "unbounded", "cancelled", "error". */
const char *op_status_name(enum op_status s);
/* 0, or -SY_EINVAL for a name not in that list. */
int op_status_from_name(const char *name, enum op_status *s);

#define OP_TIME_LIMIT_MAX_S 86400.0
#define OP_MEM_LIMIT_MAX_MB 65536

struct op_options {
    double time_limit_s; /* 0: none (the child still needs one: see child.h) */
    double mip_gap;      /* relative gap at which the search stops; 0: prove optimality */
    bool lp_only;        /* solve the LP relaxation: trips may be fractional */
    size_t mem_limit_mb; /* child solves only; 0: none */
};

/* 0, or -SY_EINVAL naming the option in err. */
int op_options_check(const struct op_options *o, char *err, size_t errlen);

struct op_progress {
    double incumbent; /* objective of the best plan so far; NAN before the first */
    double bound;     /* best bound on the optimum; NAN when unknown */
    double gap;       /* relative, as GLPK computes it; NAN without incumbent */
    double seconds;   /* since the search started */
    int nodes;        /* branch-and-bound nodes so far */
};

/* How a caller steers a solve in its own thread. All fields optional. */
struct op_ctl {
    volatile sig_atomic_t *cancel; /* non-zero: stop at the next chance, keeping the best plan */
    void (*progress)(const struct op_progress *p, void *arg); /* p is borrowed */
    void *arg;
    int progress_ms; /* at most one report per this many ms, plus one per new incumbent */
};

#endif
