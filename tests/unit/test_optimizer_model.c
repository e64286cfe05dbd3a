/* test_optimizer_model.c - sy-optimizer's generic models: textbook LP and MIP instances with
 * known optima in CPLEX LP, fixed MPS and free MPS (and fixed falling back to free), values by
 * name, infeasible and unbounded models, and text GLPK refuses reported with its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optimizer/model.h"
#include "optimizer/result.h"

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

static double value(const struct op_result *r, const char *name)
{
    for (size_t j = 0; j < r->nvars; j++)
        if (strcmp(r->var_names[j], name) == 0)
            return r->var_values[j];
    fail_msg("no variable %s", name);
    return NAN;
}

static void solve(enum op_model_format f, const char *text, struct op_result *r)
{
    struct op_options opt = {.time_limit_s = 10};

    memset(r, 0, sizeof *r);
    op_model_solve(f, text, strlen(text), &opt, NULL, r);
}

/* Hillier & Lieberman's Wyndor Glass: max 3x + 5y, x <= 4, 2y <= 12, 3x + 2y <= 18: 36 at
 * (2, 6). */
static const char WYNDOR_LP[] = "\\ Wyndor Glass\n"
                                "Maximize\n obj: 3 x + 5 y\n"
                                "Subject To\n plant1: x <= 4\n plant2: 2 y <= 12\n"
                                " plant3: 3 x + 2 y <= 18\n"
                                "End\n";

static void wyndor_lp_in_cplex_format_is_optimal_at_36(void **state)
{
    struct op_result r;
    (void)state;

    solve(OP_MODEL_LP, WYNDOR_LP, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_true(near(r.objective, 36));
    assert_true(near(value(&r, "x"), 2) && near(value(&r, "y"), 6));
    json_t *j = op_result_json(&r, NULL);
    assert_true(near(json_number_value(json_object_get(json_object_get(j, "variables"), "y")), 6));
    json_decref(j);
    op_result_clear(&r);
}

/* A line of fixed MPS: fields at columns 2, 5, 15, 25, 40, 50. */
static void mps_line(char *buf, size_t n, const char *f1, const char *f2, const char *f3,
                     const char *f4, const char *f5, const char *f6)
{
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, " %-2s %-8s  %-8s  %12s   %-8s  %12s\n", f1, f2, f3, f4, f5, f6);
}

/* Binary knapsack max 8a + 11b + 6c + 4d, 5a + 7b + 4c + 3d <= 14: 21 (b, c, d), LP bound 22.
 * MPS minimises: -21. */
static void knapsack_in_fixed_mps_is_optimal_at_21(void **state)
{
    char text[2048] = "NAME          KNAP\nROWS\n N  COST\n L  CAP\nCOLUMNS\n";
    static const char *const cols[][3] = {
        {"A", "-8", "5"}, {"B", "-11", "7"}, {"C", "-6", "4"}, {"D", "-4", "3"}};
    struct op_result r;
    (void)state;

    mps_line(text, sizeof text, "", "MARKER", "'MARKER'", "", "'INTORG'", "");
    for (int i = 0; i < 4; i++)
        mps_line(text, sizeof text, "", cols[i][0], "COST", cols[i][1], "CAP", cols[i][2]);
    mps_line(text, sizeof text, "", "MARKER", "'MARKER'", "", "'INTEND'", "");
    strcat(text, "RHS\n");
    mps_line(text, sizeof text, "", "RHS", "CAP", "14", "", "");
    strcat(text, "BOUNDS\n");
    for (int i = 0; i < 4; i++)
        mps_line(text, sizeof text, "UP", "BND", cols[i][0], "1", "", "");
    strcat(text, "ENDATA\n");

    solve(OP_MODEL_MPS, text, &r);
    if (r.status != OP_OPTIMAL)
        fail_msg("status %s: %s\n%s", op_status_name(r.status), r.reason, text);
    assert_true(near(r.objective, -21));
    assert_true(near(value(&r, "A"), 0) && near(value(&r, "B"), 1));
    assert_true(near(value(&r, "C"), 1) && near(value(&r, "D"), 1));
    op_result_clear(&r);
}

/* The same knapsack in free MPS, with names too long for fixed columns: "mps" falls back to the
 * free reader. */
static const char KNAP_FREE[] = "NAME KNAPSACK_FREE\nROWS\n N COST\n L CAPACITY_ROW\nCOLUMNS\n"
                                " MARKER 'MARKER' 'INTORG'\n"
                                " ITEM_ALPHA COST -8 CAPACITY_ROW 5\n"
                                " ITEM_BRAVO COST -11 CAPACITY_ROW 7\n"
                                " ITEM_CHARLIE COST -6 CAPACITY_ROW 4\n"
                                " ITEM_DELTA COST -4 CAPACITY_ROW 3\n"
                                " MARKER 'MARKER' 'INTEND'\n"
                                "RHS\n RHS CAPACITY_ROW 14\nBOUNDS\n"
                                " BV BND ITEM_ALPHA\n BV BND ITEM_BRAVO\n BV BND ITEM_CHARLIE\n"
                                " BV BND ITEM_DELTA\nENDATA\n";

static void knapsack_in_free_mps_is_optimal_and_fixed_falls_back_to_free(void **state)
{
    struct op_result r;
    (void)state;

    solve(OP_MODEL_FREE_MPS, KNAP_FREE, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_true(near(r.objective, -21));
    assert_true(near(value(&r, "ITEM_ALPHA"), 0));
    op_result_clear(&r);
    solve(OP_MODEL_MPS, KNAP_FREE, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_true(near(r.objective, -21));
    op_result_clear(&r);

    struct op_options lp = {.time_limit_s = 10, .lp_only = true};
    memset(&r, 0, sizeof r);
    op_model_solve(OP_MODEL_FREE_MPS, KNAP_FREE, strlen(KNAP_FREE), &lp, NULL, &r);
    assert_int_equal(r.status, OP_OPTIMAL);
    assert_true(near(r.objective, -22)); /* B, C, D and 0 of A: LP bound */
    op_result_clear(&r);
}

static void infeasible_and_unbounded_models_say_so(void **state)
{
    struct op_result r;
    (void)state;

    solve(OP_MODEL_LP, "Minimize\n obj: x\nSubject To\n c1: x >= 2\n c2: x <= 1\nEnd\n", &r);
    assert_int_equal(r.status, OP_INFEASIBLE);
    assert_false(r.has_plan);
    op_result_clear(&r);
    solve(OP_MODEL_LP, "Maximize\n obj: x\nSubject To\n c1: x - y <= 1\nGenerals\n x\nEnd\n", &r);
    assert_int_equal(r.status, OP_UNBOUNDED);
    op_result_clear(&r);
    solve(OP_MODEL_LP, "Maximize\n obj: x\nSubject To\n c1: x - y <= 1\nEnd\n", &r);
    assert_int_equal(r.status, OP_UNBOUNDED);
    op_result_clear(&r);
}

static void text_glpk_refuses_is_an_error_with_its_line(void **state)
{
    struct op_result r;
    (void)state;

    solve(OP_MODEL_LP, "Maximize\n obj: 3 x + 5 y\nSubject To\n c1: x +* y <= 4\nEnd\n", &r);
    assert_int_equal(r.status, OP_ERROR);
    if (!strstr(r.reason, "model text refused: line 4"))
        fail_msg("reason: %s", r.reason);
    assert_null(strstr(r.reason, "sy-optimizer-")); /* not the temporary file's name */
    op_result_clear(&r);
    solve(OP_MODEL_MPS, "NAME X\nROWS\n Q  COST\nENDATA\n", &r);
    assert_int_equal(r.status, OP_ERROR);
    op_result_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wyndor_lp_in_cplex_format_is_optimal_at_36),
        cmocka_unit_test(knapsack_in_fixed_mps_is_optimal_at_21),
        cmocka_unit_test(knapsack_in_free_mps_is_optimal_and_fixed_falls_back_to_free),
        cmocka_unit_test(infeasible_and_unbounded_models_say_so),
        cmocka_unit_test(text_glpk_refuses_is_an_error_with_its_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
