/* scenario.h - a clinker supply-chain scenario (plants, capacities, demand, routes, stock
 * bounds, bound records) read from JSON whose keys are the public dataset's sheet and column
 * names, checked strictly before any model is built.
 *
 * One key per sheet, each an array of row objects; a row's keys are the sheet's column names.
 * Rows are numbered from 0 in errors ("LogisticsIUGU[3]: ..."). Unknown sheets or columns are
 * refused (a misspelt column must not silently become "blank"); "# Source" is accepted.
 *
 *   {"IUGUType": [{"IUGU CODE": "IU_001", "PLANT TYPE": "IU"},
 *                 {"IUGU CODE": "GU_001", "PLANT TYPE": "GU"}],
 *    "ClinkerCapacity": [{"IU CODE": "IU_001", "TIME PERIOD": 1, "CAPACITY": 1000}],
 *    "ProductionCost":  [{"IU CODE": "IU_001", "TIME PERIOD": 1, "PRODUCTION COST": 1500}],
 *    "ClinkerDemand":   [{"IUGU CODE": "GU_001", "TIME PERIOD": 1, "DEMAND": 800,
 *                         "MIN FULFILLMENT (%)": null}],
 *    "LogisticsIUGU":   [{"FROM IU CODE": "IU_001", "TO IUGU CODE": "GU_001",
 *                         "TRANSPORT CODE": "T2", "TIME PERIOD": 1, "FREIGHT COST": 200,
 *                         "HANDLING COST": 10, "QUANTITY MULTIPLIER": 3000, "MAX TRIPS": 2}],
 *    "IUGUConstraint":  [{"IU CODE": "IU_001", "TRANSPORT CODE": "T1", "IUGU CODE": null,
 *                         "TIME PERIOD": 1, "BOUND TYPEID": "L", "VALUE TYPEID": "C",
 *                         "Value": 500}],
 *    "IUGUOpeningStock": [{"IUGU CODE": "GU_001", "OPENING STOCK": 100}],
 *    "HubOpeningStock":  [{"IU": "IU_001", "IUGU": "GU_001", "Opening Stock": 50}],
 *    "IUGUClosingStock": [{"IUGU CODE": "GU_001", "TIME PERIOD": 1, "MIN CLOSE STOCK": 0,
 *                          "MAX CLOSE STOCK": null}],
 *    "Settings": {"periods": 1, "holding_cost": 1, "unmet_penalty": 10000}}
 *
 * Meaning, where the dataset leaves it open:
 * - IUGUType is required; every other sheet is optional. A missing capacity row is capacity 0;
 *   an IU and period with capacity > 0 needs a ProductionCost row. Missing demand is 0, missing
 *   opening stock 0, a missing closing-stock row is [0, unbounded).
 * - TIME PERIOD counts from 1; the horizon is Settings.periods, else the largest period named.
 * - A LogisticsIUGU row is one arc in one period. QUANTITY MULTIPLIER (default 1) is the lot:
 *   above 1, shipments are whole lots (trips); MAX TRIPS (not in the public data) caps them, and
 *   on a multiplier-1 route caps the tonnes. Self-arcs (FROM = TO) are accepted and ignored:
 *   the dataset uses them for an IU's own consumption, which the node balance already covers.
 * - IUGUConstraint: the sum of shipments in TIME PERIOD out of IU CODE, narrowed to TRANSPORT
 *   CODE and IUGU CODE when given, is <= (L), >= (G) or = (E) Value. VALUE TYPEID must be C.
 * - HubOpeningStock adds its stock to the IUGU's opening stock.
 * - Demand may go unmet at Settings.unmet_penalty per t (default 10000), except the MIN
 *   FULFILLMENT (%) share; holding cost is Settings.holding_cost per t of closing stock
 *   (default 0). Bound records and closing-stock bounds are hard: a plan that cannot honour
 *   them is infeasible, while missing capacity alone never is.
 * - Values are JSON numbers (null or absent where optional), finite, >= 0, <= OP_VALUE_MAX.
 *
 * Checks that refuse the scenario: unknown node codes, wrong plant types, duplicates, negative
 * or out-of-range numbers, MAX below MIN closing stock, and bound records that contradict one
 * another (same item) or the trip caps of the routes they cover. */
#ifndef OP_SCENARIO_H
#define OP_SCENARIO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OP_CODE_MAX    32     /* node and transport codes: [A-Za-z0-9_.-] */
#define OP_NODES_MAX   2000   /* IUGUType rows */
#define OP_PERIODS_MAX 120    /* TIME PERIOD 1..OP_PERIODS_MAX */
#define OP_ROUTES_MAX  50000  /* LogisticsIUGU rows */
#define OP_RECORDS_MAX 20000  /* IUGUConstraint rows */
#define OP_ROWS_MAX    250000 /* rows of any other sheet */
#define OP_VALUE_MAX   1e12

enum op_node_type { OP_IU, OP_GU };

struct op_node {
    char code[OP_CODE_MAX + 1];
    enum op_node_type type;
    double opening; /* opening stock, t */
};

/* Per node and period, at [node * nperiods + period]. */
struct op_node_period {
    double capacity;  /* IUs only */
    double cost;      /* production cost per t */
    double demand;    /* t */
    double min_fill;  /* 0..1 of demand that must be met */
    double min_close; /* closing stock bounds; max_close is INFINITY when blank */
    double max_close;
};

struct op_route {
    size_t row; /* LogisticsIUGU row */
    size_t from, to;
    char mode[OP_CODE_MAX + 1];
    size_t period; /* from 0 */
    double freight, handling;
    double lot;       /* QUANTITY MULTIPLIER */
    double max_trips; /* < 0: no cap */
};

struct op_record {
    size_t row; /* IUGUConstraint row */
    size_t iu;
    bool any_to;
    size_t to;
    char mode[OP_CODE_MAX + 1]; /* "" = any mode */
    size_t period;
    char sense; /* 'L' (<=), 'G' (>=), 'E' (=) */
    double value;
};

struct op_scenario {
    size_t nnodes, nperiods, nroutes, nrecords;
    struct op_node *nodes;
    struct op_node_period *np;
    struct op_route *routes;
    struct op_record *records;
    double holding_cost;
    double unmet_penalty;
};

/* Reads and checks a scenario. On success *out is the caller's (op_scenario_free). On the first
 * fault returns -SY_EINVAL (or -SY_ETOOBIG past a limit, -SY_ENOMEM) with "Sheet[row]: why" in
 * err, e.g. "LogisticsIUGU[3]: TO IUGU CODE 'GU9' is not a node". */
int op_scenario_from_json(const json_t *j, struct op_scenario **out, char *err, size_t errlen);

void op_scenario_free(struct op_scenario *sc);

/* The entry of node n in period t. */
static inline struct op_node_period *op_np(const struct op_scenario *sc, size_t n, size_t t)
{
    return &sc->np[n * sc->nperiods + t];
}

/* Whether route r is one of the shipments record rec sums. */
bool op_record_covers(const struct op_record *rec, const struct op_route *r);

#endif
