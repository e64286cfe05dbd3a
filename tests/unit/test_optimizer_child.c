/* test_optimizer_child.c - sy-optimizer's solves in a forked child: a scenario and a model
 * come back as result JSON; a long search cancelled keeps its best plan; a GLPK memory limit
 * breached is a clean error and the parent carries on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "op_scenario.h"
#include "optimizer/child.h"
#include "optimizer/scenario.h"
#include "sy/err.h"

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

static struct op_scenario *from_json(json_t *j)
{
    struct op_scenario *sc = NULL;
    char err[512] = "";

    if (op_scenario_from_json(j, &sc, err, sizeof err) != 0)
        fail_msg("scenario: %s", err);
    json_decref(j);
    return sc;
}

static const char *status_of(const json_t *res)
{
    return json_string_value(json_object_get(res, "status"));
}

static void scenario_solved_in_a_child_comes_back_as_json(void **state)
{
    struct op_scenario *sc = from_json(json_loads(
        "{\"IUGUType\": [{\"IUGU CODE\": \"IU_1\", \"PLANT TYPE\": \"IU\"},"
        " {\"IUGU CODE\": \"GU_1\", \"PLANT TYPE\": \"GU\"}],"
        "\"ClinkerCapacity\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"CAPACITY\": 1000}],"
        "\"ProductionCost\": [{\"IU CODE\": \"IU_1\", \"TIME PERIOD\": 1, \"PRODUCTION COST\": "
        "10}],"
        "\"ClinkerDemand\": [{\"IUGU CODE\": \"GU_1\", \"TIME PERIOD\": 1, \"DEMAND\": 600}],"
        "\"LogisticsIUGU\": [{\"FROM IU CODE\": \"IU_1\", \"TO IUGU CODE\": \"GU_1\","
        " \"TRANSPORT CODE\": \"T1\", \"TIME PERIOD\": 1, \"FREIGHT COST\": 3}]}",
        0, NULL));
    struct op_job job = {.scenario = sc};
    struct op_options opt = {.time_limit_s = 10, .mem_limit_mb = 256};
    struct op_child *c;
    char err[256];
    (void)state;

    assert_int_equal(op_child_start(&job, &opt, &c, err, sizeof err), 0);
    json_t *res = op_child_wait(c);
    assert_string_equal(status_of(res), "optimal");
    assert_true(near(json_number_value(json_object_get(res, "objective")), 7800));
    assert_true(
        near(json_number_value(json_object_get(json_object_get(res, "costs"), "transport")), 1800));
    json_t *p1 = json_array_get(json_object_get(res, "plan"), 0);
    assert_true(
        near(json_number_value(json_object_get(json_object_get(p1, "production"), "IU_1")), 600));
    json_decref(res);
    op_child_destroy(c);
    op_scenario_free(sc);
}

static void model_solved_in_a_child_comes_back_as_json(void **state)
{
    static const char lp[] = "Maximize\n obj: 3 x + 5 y\nSubject To\n c1: x <= 4\n c2: 2 y <= 12\n"
                             " c3: 3 x + 2 y <= 18\nEnd\n";
    struct op_job job = {.format = OP_MODEL_LP, .text = lp, .len = strlen(lp)};
    struct op_options opt = {.time_limit_s = 10};
    struct op_child *c;
    char err[256];
    (void)state;

    assert_int_equal(op_child_start(&job, &opt, &c, err, sizeof err), 0);
    json_t *res = op_child_wait(c);
    assert_string_equal(status_of(res), "optimal");
    assert_true(near(json_number_value(json_object_get(res, "objective")), 36));
    assert_true(
        near(json_number_value(json_object_get(json_object_get(res, "variables"), "x")), 2));
    json_decref(res);
    op_child_destroy(c);

    struct op_options bad = {.time_limit_s = -1};
    assert_int_equal(op_child_start(&job, &bad, &c, err, sizeof err), -SY_EINVAL);
    assert_non_null(strstr(err, "time_limit"));
}

/* The shared hard scenario, read. */
static struct op_scenario *hard_instance(int ius, int gus, int periods)
{
    return from_json(th_op_hard_scenario(ius, gus, periods));
}

static void cancelled_search_keeps_its_best_plan(void **state)
{
    struct op_scenario *sc = hard_instance(6, 30, 6);
    struct op_job job = {.scenario = sc};
    struct op_options opt = {.time_limit_s = 120};
    struct op_progress p;
    struct op_child *c;
    char err[256];
    int events = 0, r = 0;
    (void)state;

    assert_int_equal(op_child_start(&job, &opt, &c, err, sizeof err), 0);
    /* Wait for a first incumbent (up to 30 s), then cancel. */
    for (int k = 0; k < 300; k++) {
        r = op_child_poll(c, 100, &p);
        if (r == 2)
            break;
        if (r == 1 && ++events && isfinite(p.incumbent))
            break;
    }
    if (r == 2)
        fail_msg("the search ended before it could be cancelled: make the instance harder");
    assert_int_equal(r, 1);
    assert_true(isfinite(p.incumbent));
    op_child_cancel(c);
    json_t *res = op_child_wait(c);
    assert_string_equal(status_of(res), "cancelled");
    assert_true(json_is_number(json_object_get(res, "objective")));
    assert_true(json_number_value(json_object_get(res, "objective")) <= p.incumbent * (1 + 1e-9));
    assert_int_equal(json_array_size(json_object_get(res, "plan")), 6);
    json_decref(res);
    op_child_destroy(c);
    op_scenario_free(sc);
}

static void memory_limit_breach_is_a_clean_error(void **state)
{
    struct op_scenario *sc = hard_instance(20, 200, 12);
    struct op_job job = {.scenario = sc};
    struct op_options opt = {.time_limit_s = 60, .mem_limit_mb = 2};
    struct op_child *c;
    char err[256];
    (void)state;

    assert_int_equal(op_child_start(&job, &opt, &c, err, sizeof err), 0);
    json_t *res = op_child_wait(c);
    assert_string_equal(status_of(res), "error");
    const char *why = json_string_value(json_object_get(res, "reason"));
    if (!why || !strstr(why, "memory"))
        fail_msg("reason: %s", why ? why : "(none)");
    assert_true(json_is_null(json_object_get(res, "objective")));
    json_decref(res);
    op_child_destroy(c);
    op_scenario_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scenario_solved_in_a_child_comes_back_as_json),
        cmocka_unit_test(model_solved_in_a_child_comes_back_as_json),
        cmocka_unit_test(cancelled_search_keeps_its_best_plan),
        cmocka_unit_test(memory_limit_breach_is_a_clean_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
