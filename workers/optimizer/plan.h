/* plan.h - a scenario as a mixed-integer program, solved in the calling thread, and its
 * solution read back as a per-period plan.
 *
 * Variables per period t: production P[i,t] in [0, capacity] for IUs; per LogisticsIUGU row
 * either tonnes x (multiplier <= 1; x <= MAX TRIPS * multiplier) or whole lots y (multiplier
 * q > 1, x = q*y, y <= MAX TRIPS); closing stock s[n,t] in [MIN, MAX CLOSE STOCK]; unmet demand
 * u[n,t] in [0, (1 - MIN FULFILLMENT) * demand]. Rows: the node balance
 * s[n,t] = s[n,t-1] + P[n,t] + inflow - outflow - demand + u (s[n,0] = opening stock), and one
 * row per bound record. Objective: production + (freight + handling) * tonnes + holding * stock
 * + penalty * unmet. Self-arcs carry nothing.
 *
 * GLPK aborts the process on a fatal error and is not thread-safe across shared objects: run
 * this in a child (child.h) unless the caller accepts that. */
#ifndef OP_PLAN_H
#define OP_PLAN_H

#include "optimizer/result.h"
#include "optimizer/scenario.h"
#include "optimizer/solve.h"

/* Entries of the constraint matrix a scenario may produce before it is refused. */
#define OP_MATRIX_MAX 20000000

/* Builds and solves sc. r (zeroed by the caller or cleared) receives the status and, when
 * r->has_plan, the plan; the caller clears it (op_result_clear). Returns 0, or -SY_ENOMEM /
 * -SY_ETOOBIG (r->status OP_ERROR with the reason) when the model could not be built; solver
 * outcomes, infeasible included, are statuses, not errors. */
int op_plan_solve(const struct op_scenario *sc, const struct op_options *opt,
                  const struct op_ctl *ctl, struct op_result *r);

#endif
