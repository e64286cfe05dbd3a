/* test_optimizer_plan.c - sy-optimizer's model on instances small enough to solve by hand: the
 * exact optimum, the plan behind it and its costs by component; integer rail lots against the
 * LP relaxation; a trip cap forcing road; stock carried between periods; demand beyond capacity
 * left unmet at the penalty; and bound records the plan cannot honour reported infeasible. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "optimizer/plan.h"
#include "optimizer/result.h"
#include "optimizer/scenario.h"

static struct op_scenario *scenario(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    struct op_scenario *sc = NULL;
    char err[512] = "";

    if (!j)
        fail_msg("test JSON: %s at %d", jerr.text, jerr.position);
    if (op_scenario_from_json(j, &sc, err, sizeof err) != 0)
        fail_msg("scenario: %s", err);
    json_decref(j);
    return sc;
}

static void solve(const struct op_scenario *sc, bool lp_only, struct op_result *r)
{
    struct op_options opt = {.time_limit_s = 30, .lp_only = lp_only};

    memset(r, 0, sizeof *r);
    assert_int_equal(op_plan_solve(sc, &opt, NULL, r), 0);
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}
#define assert_near(a, b) assert_true(near((a), (b)))

/* Index of the route row `row`. */
static size_t route(const struct op_scenario *sc, size_t row)
{
    for (size_t i = 0; i < sc->nroutes; i++)
        if (sc->routes[i].row == row)
            return i;
    fail_msg("no route row %zu", row);
    return 0;
}

/* 1 IU, 1 GU, 1 period: produce 600 at 10, ship by road at 2 + 1 handling: 7800. */
static void one_plant_one_grinder_one_period_is_optimal_at_7800(void **state)
{
    struct op_scenario *sc = scenario(
        "{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"
        " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}],"
        "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 1000}],"
        "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": "
        "10}],"
        "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 600}],"
        "\"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 2, \"HANDLING COST\": "
        "1}]}");
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_true(r.has_plan);
    assert_near(r.objective, 7800);
    assert_near(r.bound, 7800);
    assert_near(r.production[0], 600);
    assert_near(r.tonnes[0], 600);
    assert_near(r.costs.production, 6000);
    assert_near(r.costs.transport, 1800);
    assert_near(r.costs.holding + r.costs.penalty, 0);
    json_t *j = op_result_json(&r, sc);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "optimal");
    json_t *p1 = json_array_get(json_object_get(j, "plan"), 0);
    assert_near(json_number_value(json_object_get(json_object_get(p1, "production"), "IU_1")), 600);
    json_t *ship = json_array_get(json_object_get(p1, "shipments"), 0);
    assert_string_equal(json_string_value(json_object_get(ship, "to")), "GU_1");
    assert_near(json_number_value(json_object_get(ship, "tonnes")), 600);
    json_decref(j);
    op_result_clear(&r);
    op_scenario_free(sc);
}

/* Two IUs, two GUs, two periods. GU_1 needs 4000 a period: rail from IU_A in lots of 3000 at
 * 10/t but at most one trip, the rest by road at 30/t; GU_2 needs 2000 by road from IU_B
 * (120 + 20) rather than IU_A (100 + 50). Per period 3000*110 + 1000*130 + 2000*140 = 740000. */
#define TWO_BY_TWO(cap)                                                                            \
    "{\"IUGUType\": [{\"IUGU CODE\": \"IU_A\", \"PLANT TYPE\": \"IU\"},"                           \
    " {\"IUGU CODE\": \"IU_B\", \"PLANT TYPE\": \"IU\"},"                                          \
    " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}, {\"IUGU CODE\": \"GU_2\", \"PLANT "       \
    "TYPE\": "                                                                                     \
    "\"GU\"}],"                                                                                    \
    "\"ClinkerCapacity\": ["                                                                       \
    " {\"IU CODE\": \"IU_A\", \"TIME PERIOD\": 1, \"CAPACITY\": 10000},"                           \
    " {\"IU CODE\": \"IU_A\", \"TIME PERIOD\": 2, \"CAPACITY\": 10000},"                           \
    " {\"IU CODE\": \"IU_B\", \"TIME PERIOD\": 1, \"CAPACITY\": 10000},"                           \
    " {\"IU CODE\": \"IU_B\", \"TIME PERIOD\": 2, \"CAPACITY\": 10000}],"                          \
    "\"ProductionCost\": ["                                                                        \
    " {\"IU CODE\": \"IU_A\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": 100},"                      \
    " {\"IU CODE\": \"IU_A\", \"TIME PERIOD\": 2, \"PRODUCTION COST\": 100},"                      \
    " {\"IU CODE\": \"IU_B\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": 120},"                      \
    " {\"IU CODE\": \"IU_B\", \"TIME PERIOD\": 2, \"PRODUCTION COST\": 120}],"                     \
    "\"ClinkerDemand\": ["                                                                         \
    " {\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 4000},"                            \
    " {\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 2, \"DEMAND\": 4000},"                            \
    " {\"IUGU CODE\": \"GU_2\", \"TIME PERIOD\": 1, \"DEMAND\": 2000},"                            \
    " {\"IUGU CODE\": \"GU_2\", \"TIME PERIOD\": 2, \"DEMAND\": 2000}],"                           \
    "\"LogisticsIUGU\": [" ROUTES(1) "," ROUTES(2) "],"                                            \
                                                   "\"Settings\": {\"holding_cost\": 1}}"
#define ROUTES(t)                                                                                  \
    "{\"FROM IU CODE\": \"IU_A\", \"TO IUGU CODE\": \"GU_1\", \"TRANSPORT CODE\": \"T2\","         \
    " \"TIME PERIOD\": " #t                                                                        \
    ", \"FREIGHT COST\": 10, \"QUANTITY MULTIPLIER\": 3000, \"MAX TRIPS\": "                       \
    "1},"                                                                                          \
    "{\"FROM IU CODE\": \"IU_A\", \"TO IUGU CODE\": \"GU_1\", \"TRANSPORT CODE\": \"T1\","         \
    " \"TIME PERIOD\": " #t ", \"FREIGHT COST\": 30},"                                             \
    "{\"FROM IU CODE\": \"IU_B\", \"TO IUGU CODE\": \"GU_2\", \"TRANSPORT CODE\": \"T1\","         \
    " \"TIME PERIOD\": " #t ", \"FREIGHT COST\": 20},"                                             \
    "{\"FROM IU CODE\": \"IU_A\", \"TO IUGU CODE\": \"GU_2\", \"TRANSPORT CODE\": \"T1\","         \
    " \"TIME PERIOD\": " #t ", \"FREIGHT COST\": 50}"

static void rail_lots_with_a_trip_cap_send_the_rest_by_road(void **state)
{
    struct op_scenario *sc = scenario(TWO_BY_TWO(1));
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_near(r.objective, 1480000);
    for (size_t t = 0; t < 2; t++) {
        size_t base = t * 4;
        assert_near(r.trips[route(sc, base)], 1);
        assert_near(r.tonnes[route(sc, base)], 3000);
        assert_near(r.tonnes[route(sc, base + 1)], 1000);
        assert_near(r.tonnes[route(sc, base + 2)], 2000);
        assert_near(r.tonnes[route(sc, base + 3)], 0);
    }
    assert_near(r.costs.production, 2 * (4000 * 100 + 2000 * 120));
    assert_near(r.costs.transport, 2 * (3000 * 10 + 1000 * 30 + 2000 * 20));
    op_result_clear(&r);
    op_scenario_free(sc);
}

/* GU_1 needs 4000 and only rail reaches it, in lots of 3000: two lots (6000 made at 100,
 * carried at 10, 2000 left in stock at 1/t) = 662000 beat one lot and 1000 unmet at 1000/t.
 * The LP relaxation ships 4/3 of a lot: 440000. */
static void integer_lots_cost_more_than_the_lp_relaxation(void **state)
{
    struct op_scenario *sc = scenario(
        "{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"
        " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}],"
        "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 9000}],"
        "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": "
        "100}],"
        "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 4000}],"
        "\"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T2\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 10,"
        " \"QUANTITY MULTIPLIER\": 3000}],"
        "\"Settings\": {\"holding_cost\": 1, \"unmet_penalty\": 1000}}");
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_near(r.objective, 662000);
    assert_near(r.trips[0], 2);
    assert_near(r.stock[1], 2000);
    assert_near(r.costs.holding, 2000);
    op_result_clear(&r);

    solve(sc, true, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_near(r.objective, 440000);
    assert_near(r.trips[0], 4.0 / 3);
    op_result_clear(&r);
    op_scenario_free(sc);
}

/* Nothing can be made in period 2: period 1 makes 900 (400 + 500) at 10, ships it at 1, and
 * 500 waits a period at 2/t: 9000 + 900 + 1000 = 10900. */
static void stock_carries_demand_into_a_period_without_capacity(void **state)
{
    struct op_scenario *sc = scenario(
        "{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"
        " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}],"
        "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 1000}],"
        "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": "
        "10}],"
        "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 400},"
        " {\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 2, \"DEMAND\": 500}],"
        "\"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 1},"
        " {\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 2, \"FREIGHT COST\": 1}],"
        "\"Settings\": {\"holding_cost\": 2}}");
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_near(r.objective, 10900);
    assert_near(r.production[0], 900);
    assert_near(r.production[1], 0);
    assert_near(r.stock[0] + r.stock[2], 500); /* at the IU or the GU: same cost */
    assert_near(r.stock[1] + r.stock[3], 0);
    assert_near(r.costs.holding, 1000);
    op_result_clear(&r);
    op_scenario_free(sc);
}

#define SHORT_OF_CAPACITY(records)                                                                 \
    "{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"                           \
    " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}],"                                         \
    "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 500}],"       \
    "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": 10}],"  \
    "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 800}],"         \
    "\"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","                 \
    " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 1}]," records              \
    "\"Settings\": {\"unmet_penalty\": 1000}}"

/* Capacity 500 for a demand of 800: 5000 + 500 + 300 unmet at 1000 = 305500. */
static void demand_beyond_capacity_goes_unmet_at_the_penalty(void **state)
{
    struct op_scenario *sc = scenario(SHORT_OF_CAPACITY(""));
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_near(r.objective, 305500);
    assert_near(r.unmet[1], 300);
    assert_near(r.costs.penalty, 300000);
    op_result_clear(&r);
    op_scenario_free(sc);
}

/* An E record asks 800 t out of an IU that can make 500: demand may go unmet, a bound record
 * may not, so the solve reports infeasible (and no plan). */
static void bound_record_beyond_capacity_is_reported_infeasible(void **state)
{
    struct op_scenario *sc = scenario(SHORT_OF_CAPACITY(
        "\"IUGUConstraint\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": \"E\","
        " \"VALUE TYPEID\": \"C\", \"Value\": 800}],"));
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_INFEASIBLE);
    assert_false(r.has_plan);
    json_t *j = op_result_json(&r, sc);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "infeasible");
    assert_true(json_is_null(json_object_get(j, "objective")));
    assert_null(json_object_get(j, "plan"));
    json_decref(j);
    op_result_clear(&r);
    op_scenario_free(sc);
}

/* A G record forces 200 of the 600 onto the dearer mode: 6000 + 400*3 + 200*5 = 8200. */
static void g_record_forces_shipments_onto_a_mode(void **state)
{
    struct op_scenario *sc = scenario(
        "{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"
        " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}],"
        "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 1000}],"
        "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": "
        "10}],"
        "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 600}],"
        "\"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 3},"
        " {\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T2\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 5},"
        " {\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"IU_1\","
        " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 0}],"
        "\"IUGUConstraint\": [{\"IU CODE\": \"IU_1\", \"TRANSPORT CODE\": \"T2\", \"IUGU CODE\": "
        "\"GU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": \"G\", \"Value\": 200}]}");
    struct op_result r;
    (void)state;

    solve(sc, false, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_near(r.objective, 8200);
    assert_near(r.tonnes[0], 400);
    assert_near(r.tonnes[1], 200);
    assert_near(r.tonnes[2], 0); /* the self-arc carries nothing */
    op_result_clear(&r);
    op_scenario_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_plant_one_grinder_one_period_is_optimal_at_7800),
        cmocka_unit_test(rail_lots_with_a_trip_cap_send_the_rest_by_road),
        cmocka_unit_test(integer_lots_cost_more_than_the_lp_relaxation),
        cmocka_unit_test(stock_carries_demand_into_a_period_without_capacity),
        cmocka_unit_test(demand_beyond_capacity_goes_unmet_at_the_penalty),
        cmocka_unit_test(bound_record_beyond_capacity_is_reported_infeasible),
        cmocka_unit_test(g_record_forces_shipments_onto_a_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
