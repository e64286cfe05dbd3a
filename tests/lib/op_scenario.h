/* op_scenario.h - scenarios the optimizer's tests share, in the layout of
 * workers/optimizer/scenario.h. */
#ifndef SY_TEST_OP_SCENARIO_H
#define SY_TEST_OP_SCENARIO_H

#include <jansson.h>

/* IUs ship to GUs only by rail in lots of 3000 t, against demands that are not multiples of a
 * lot, and stock costs to hold: thousands of integer trips, a search GLPK needs long to close
 * (seconds for 12 x 30 x 6), so a cancel or a time limit meets it running. The same every time
 * (a fixed seed). A new reference. */
json_t *th_op_hard_scenario(int ius, int gus, int periods);

#endif
