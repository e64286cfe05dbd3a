/* result.h - what a solve produced: status, objective, bound, gap, and either a scenario's
 * per-period plan with its costs by component or a generic model's variable values; and its
 * JSON form, the body of optimizer.result.
 *
 *   {"status": "optimal", "reason": "", "objective": 1234.5, "bound": 1234.5, "gap": 0,
 *    "seconds": 0.01,
 *    "costs": {"production": 1000, "transport": 200, "holding": 34.5, "penalty": 0},
 *    "plan": [{"period": 1, "production": {"IU_001": 800},
 *              "shipments": [{"row": 0, "from": "IU_001", "to": "GU_001", "mode": "T2",
 *                             "tonnes": 3000, "trips": 1}],
 *              "closing_stock": {"IU_001": 0, "GU_001": 100}, "unmet": {"GU_001": 20}}]}
 *
 * A generic model has "variables": {"name": value, ...} instead of costs and plan. Without a
 * plan (infeasible, error, cancelled before the first) objective, bound and gap are null and
 * costs, plan and variables absent. Shipments and unmet demand list non-zero entries only. */
#ifndef OP_RESULT_H
#define OP_RESULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "optimizer/scenario.h"
#include "optimizer/solve.h"

#define OP_REASON_MAX 256

struct op_costs {
    double production, transport, holding, penalty;
};

struct op_result {
    enum op_status status;
    char reason[OP_REASON_MAX]; /* why, for anything but optimal; "" otherwise */
    bool has_plan;              /* the values below hold a feasible point */
    double objective, bound, gap, seconds;
    struct op_costs costs;
    /* A scenario's plan, [node * nperiods + period] and [route]. */
    size_t nnodes, nperiods, nroutes;
    double *production, *stock, *unmet;
    double *tonnes, *trips;
    /* A generic model's columns. */
    size_t nvars;
    char **var_names;
    double *var_values;
};

/* Frees what the result holds (not r itself) and zeroes it; r may be NULL. */
void op_result_clear(struct op_result *r);

/* The JSON form (new reference) or NULL when out of memory. sc: the scenario solved, or NULL
 * for a generic model. */
json_t *op_result_json(const struct op_result *r, const struct op_scenario *sc);

#endif
