/* solve_int.h - the GLPK driver plan.c and model.c share: one solve of a built problem with
 * the options, progress and cancel of solve.h, and GLPK's terminal output kept for errors. */
#ifndef OP_SOLVE_INT_H
#define OP_SOLVE_INT_H

#include <stdbool.h>

#include "optimizer/result.h"
#include "optimizer/solve.h"

struct glp_prob;

/* Solves P (MIP search, or simplex when opt->lp_only or P has no integer column). Fills r's
 * status, reason, has_plan, objective, bound, gap and seconds; *mip tells which solution
 * op_solve_col reads. Never fails itself: problems become status OP_ERROR. */
void op_solve_prob(struct glp_prob *P, const struct op_options *opt, const struct op_ctl *ctl,
                   struct op_result *r, bool *mip);

/* Column j's value in the solution op_solve_prob kept. */
double op_solve_col(struct glp_prob *P, bool mip, int j);

/* Routes GLPK's terminal output of this thread into a buffer (nothing reaches stdout). */
void op_glpk_capture(void);
/* The last non-empty line GLPK printed in this thread ("" if none), trailing newline removed. */
const char *op_glpk_last_line(void);
/* After a fatal error: GLPK's message (not its "Error detected in file" line), and whether the
 * error came from the named source file (env/alloc.c: out of memory or over glp_mem_limit). */
const char *op_glpk_error_line(void);
bool op_glpk_error_in(const char *file);

#endif
