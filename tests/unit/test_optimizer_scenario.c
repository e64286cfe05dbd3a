/* test_optimizer_scenario.c - sy-optimizer's scenario reader: a well-formed scenario in the
 * dataset's sheet and column names comes through with its defaults, and every fault is refused
 * naming the sheet, the row and why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optimizer/scenario.h"
#include "sy/err.h"

#define BASE_NODES                                                                                 \
    "\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"                            \
    "{\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\", \"# Source\": \"x\"}]"
#define CAP "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 100}]"
#define COST                                                                                       \
    "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": 5}]"
#define ROUTE(to, mode, extra)                                                                     \
    "{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"" to "\", \"TRANSPORT CODE\": \"" mode       \
    "\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 2" extra "}"

/* Reads text; returns the reader's code with its message in err. */
static int read_text(const char *text, struct op_scenario **sc, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);

    if (!j)
        fail_msg("test JSON: %s at %d: %s", jerr.text, jerr.position, text);
    int rc = op_scenario_from_json(j, sc, err, errlen);
    json_decref(j);
    return rc;
}

static void refused(const char *text, const char *want)
{
    struct op_scenario *sc = NULL;
    char err[512] = "";

    assert_int_not_equal(read_text(text, &sc, err, sizeof err), 0);
    assert_null(sc);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void well_formed_scenario_reads_with_defaults(void **state)
{
    struct op_scenario *sc = NULL;
    char err[512] = "";
    (void)state;

    int rc = read_text(
        "{" BASE_NODES "," CAP "," COST ","
        "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 2, "
        "\"DEMAND\": 60,"
        " \"MIN FULFILLMENT (%)\": 50}],"
        "\"LogisticsIUGU\": [" ROUTE("GU_1", "T2",
                                     ", \"QUANTITY MULTIPLIER\": 30, \"MAX TRIPS\": "
                                     "2") "," ROUTE("IU_1", "T1", "") "],"
                                                                      "\"IUGUOpeningStock\": "
                                                                      "[{\"IUGU CODE\": \"GU_1\", "
                                                                      "\"OPENING STOCK\": 7}],"
                                                                      "\"HubOpeningStock\": "
                                                                      "[{\"IU\": \"IU_1\", "
                                                                      "\"IUGU\": \"GU_1\", "
                                                                      "\"Opening Stock\": 3}],"
                                                                      "\"IUGUClosingStock\": "
                                                                      "[{\"IUGU CODE\": \"GU_1\", "
                                                                      "\"TIME PERIOD\": 1,"
                                                                      " \"MIN CLOSE STOCK\": 1, "
                                                                      "\"MAX CLOSE STOCK\": null}],"
                                                                      "\"IUGUConstraint\": [{\"IU "
                                                                      "CODE\": \"IU_1\", "
                                                                      "\"TRANSPORT CODE\": \"T2\", "
                                                                      "\"IUGU CODE\": "
                                                                      "null, \"TIME PERIOD\": 1, "
                                                                      "\"BOUND TYPEID\": \"G\", "
                                                                      "\"VALUE TYPEID\": \"C\", "
                                                                      "\"Value\": 60}]}",
        &sc, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(sc->nnodes, 2);
    assert_int_equal(sc->nperiods, 2); /* the largest TIME PERIOD named */
    assert_int_equal(sc->nroutes, 2);
    assert_int_equal(sc->nrecords, 1);
    assert_true(sc->nodes[0].type == OP_IU && sc->nodes[1].type == OP_GU);
    assert_true(sc->nodes[1].opening == 10); /* IUGUOpeningStock + HubOpeningStock */
    assert_true(op_np(sc, 0, 0)->capacity == 100 && op_np(sc, 0, 0)->cost == 5);
    assert_true(op_np(sc, 0, 1)->capacity == 0); /* no row: no capacity */
    assert_true(op_np(sc, 1, 1)->demand == 60 && op_np(sc, 1, 1)->min_fill == 0.5);
    assert_true(op_np(sc, 1, 0)->min_close == 1 && isinf(op_np(sc, 1, 0)->max_close));
    assert_true(sc->routes[0].lot == 30 && sc->routes[0].max_trips == 2);
    assert_true(sc->routes[1].lot == 1 && sc->routes[1].max_trips < 0);
    assert_true(sc->records[0].any_to && strcmp(sc->records[0].mode, "T2") == 0);
    assert_true(sc->unmet_penalty == 10000 && sc->holding_cost == 0);
    op_scenario_free(sc);
}

static void route_to_unknown_node_is_refused_naming_the_row(void **state)
{
    (void)state;
    refused("{" BASE_NODES
            ",\"LogisticsIUGU\": [" ROUTE("GU_1", "T1", "") "," ROUTE("GU9", "T1", "") "]}",
            "LogisticsIUGU[1]: TO IUGU CODE 'GU9' is not a node");
}

static void negative_capacity_is_refused(void **state)
{
    (void)state;
    refused("{" BASE_NODES ",\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1,"
            " \"CAPACITY\": -5}]}",
            "ClinkerCapacity[0]: CAPACITY -5 is negative");
}

static void capacity_at_a_gu_or_without_cost_is_refused(void **state)
{
    (void)state;
    refused("{" BASE_NODES ",\"ClinkerCapacity\": [{\"IU CODE\": \"GU_1\", \"TIME PERIOD\": 1,"
            " \"CAPACITY\": 5}]}",
            "ClinkerCapacity[0]: IU CODE 'GU_1' is not an IU");
    refused("{" BASE_NODES "," CAP "}", "ClinkerCapacity[0]: IU_1 period 1 has no ProductionCost");
}

static void contradicting_bound_records_are_refused(void **state)
{
    (void)state;
    refused("{" BASE_NODES ",\"LogisticsIUGU\": [" ROUTE(
                "GU_1", "T1", "") "],"
                                  "\"IUGUConstraint\": ["
                                  "{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": "
                                  "\"L\", \"Value\": 800},"
                                  "{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": "
                                  "\"G\", \"Value\": 900}]}",
            "IUGUConstraint[1]: G 900 above L 800 of IUGUConstraint[0] for the same item");
    refused("{" BASE_NODES ",\"LogisticsIUGU\": [" ROUTE(
                "GU_1", "T1", "") "],"
                                  "\"IUGUConstraint\": ["
                                  "{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": "
                                  "\"E\", \"Value\": 5},"
                                  "{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": "
                                  "\"E\", \"Value\": 6}]}",
            "E 6 above E 5");
    /* Different items may differ: road and all modes. */
    struct op_scenario *sc = NULL;
    char err[256];
    assert_int_equal(
        read_text("{" BASE_NODES ",\"LogisticsIUGU\": [" ROUTE(
                      "GU_1", "T1",
                      "") "],"
                          "\"IUGUConstraint\": [{\"IU CODE\": \"IU_1\", \"TRANSPORT CODE\": \"T1\","
                          " \"TIME PERIOD\": 1, \"BOUND TYPEID\": \"L\", \"Value\": 800},"
                          "{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"BOUND TYPEID\": \"G\", "
                          "\"Value\": "
                          "900}]}",
                  &sc, err, sizeof err),
        0);
    op_scenario_free(sc);
}

static void record_beyond_its_routes_is_refused(void **state)
{
    (void)state;
    refused(
        "{" BASE_NODES ",\"LogisticsIUGU\": [" ROUTE(
            "GU_1", "T2",
            ", \"QUANTITY MULTIPLIER\": 300,"
            " \"MAX TRIPS\": 2") "],"
                                 "\"IUGUConstraint\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1,"
                                 " \"BOUND TYPEID\": \"G\", \"Value\": 900}]}",
        "IUGUConstraint[0]: G 900 but its routes' MAX TRIPS carry at most 600");
    refused("{" BASE_NODES ",\"LogisticsIUGU\": [" ROUTE(
                "GU_1", "T1",
                "") "],"
                    "\"IUGUConstraint\": [{\"IU CODE\": \"IU_1\", \"TRANSPORT CODE\": \"T2\","
                    " \"TIME PERIOD\": 1, \"BOUND TYPEID\": \"E\", \"Value\": 1}]}",
            "IUGUConstraint[0]: E 1 matches no LogisticsIUGU row");
}

static void closing_stock_max_below_min_is_refused(void **state)
{
    (void)state;
    refused("{" BASE_NODES ",\"IUGUClosingStock\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1,"
            " \"MIN CLOSE STOCK\": 50, \"MAX CLOSE STOCK\": 10}]}",
            "IUGUClosingStock[0]: MAX CLOSE STOCK 10 below MIN CLOSE STOCK 50 for GU_1 period 1");
}

static void duplicates_unknown_names_and_bad_values_are_refused(void **state)
{
    (void)state;
    refused("{" BASE_NODES
            ",\"LogisticsIUGU\": [" ROUTE("GU_1", "T1", "") "," ROUTE("GU_1", "T1", "") "]}",
            "LogisticsIUGU[1]: IU_1 to GU_1 by T1 in period 1 repeats LogisticsIUGU[0]");
    refused("{" BASE_NODES ",\"ClinkerDemands\": []}", "scenario: unknown sheet 'ClinkerDemands'");
    refused("{" BASE_NODES ",\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1,"
            " \"DEMAN\": 5}]}",
            "ClinkerDemand[0]: unknown column 'DEMAN'");
    refused("{" BASE_NODES ",\"Settings\": {\"periods\": 2},"
            "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 0,"
            " \"DEMAND\": 5}]}",
            "ClinkerDemand[0]: TIME PERIOD must be an integer 1..");
    refused("{" BASE_NODES ",\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1,"
            " \"DEMAND\": \"5\"}]}",
            "ClinkerDemand[0]: DEMAND is not a number");
    refused("{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"
            "{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"GU\"}], \"Settings\": {\"periods\": 1}}",
            "IUGUType[1]: 'IU_1' repeats IUGUType[0]");
    refused("{" BASE_NODES ",\"IUGUConstraint\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1,"
            " \"BOUND TYPEID\": \"X\", \"Value\": 1}]}",
            "IUGUConstraint[0]: BOUND TYPEID must be L, G or E");
    refused("{" BASE_NODES ",\"Settings\": {\"periods\": 1, \"unmet_penalty\": -1}}",
            "Settings: unmet_penalty must be a number");
    refused("{" BASE_NODES "}", "no TIME PERIOD anywhere");
}

static void sizes_past_the_limits_are_refused(void **state)
{
    json_t *j = json_object(), *nodes = json_array();
    struct op_scenario *sc = NULL;
    char err[256] = "";
    (void)state;

    for (int i = 0; i <= OP_NODES_MAX; i++) {
        char code[16];
        snprintf(code, sizeof code, "N%d", i);
        json_array_append_new(nodes, json_pack("{s:s,s:s}", "IUGU CODE", code, "PLANT TYPE", "GU"));
    }
    json_object_set_new(j, "IUGUType", nodes);
    assert_int_equal(op_scenario_from_json(j, &sc, err, sizeof err), -SY_ETOOBIG);
    assert_non_null(strstr(err, "IUGUType: 2001 rows, at most 2000"));
    json_decref(j);
    refused("{" BASE_NODES ",\"Settings\": {\"periods\": 121}}",
            "periods must be an integer 1..120");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_scenario_reads_with_defaults),
        cmocka_unit_test(route_to_unknown_node_is_refused_naming_the_row),
        cmocka_unit_test(negative_capacity_is_refused),
        cmocka_unit_test(capacity_at_a_gu_or_without_cost_is_refused),
        cmocka_unit_test(contradicting_bound_records_are_refused),
        cmocka_unit_test(record_beyond_its_routes_is_refused),
        cmocka_unit_test(closing_stock_max_below_min_is_refused),
        cmocka_unit_test(duplicates_unknown_names_and_bad_values_are_refused),
        cmocka_unit_test(sizes_past_the_limits_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
