/* op_scenario.c - scenarios the optimizer's tests share (op_scenario.h). */
#include "op_scenario.h"

#include <stdio.h>

static unsigned lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

json_t *th_op_hard_scenario(int ius, int gus, int periods)
{
    json_t *j = json_object(), *types = json_array(), *cap = json_array(), *cost = json_array(),
           *dem = json_array(), *log = json_array();
    unsigned seed = 7;
    char code[16], from[16];

    for (int i = 0; i < ius + gus; i++) {
        snprintf(code, sizeof code, i < ius ? "IU_%03d" : "GU_%03d", i);
        json_array_append_new(
            types, json_pack("{s:s,s:s}", "IUGU CODE", code, "PLANT TYPE", i < ius ? "IU" : "GU"));
        for (int t = 1; t <= periods; t++) {
            if (i < ius) {
                json_array_append_new(cap,
                                      json_pack("{s:s,s:i,s:i}", "IU CODE", code, "TIME PERIOD", t,
                                                "CAPACITY", 20000 + (int)lcg(&seed) % 20000));
                json_array_append_new(cost,
                                      json_pack("{s:s,s:i,s:i}", "IU CODE", code, "TIME PERIOD", t,
                                                "PRODUCTION COST", 1400 + (int)lcg(&seed) % 800));
                continue;
            }
            json_array_append_new(dem, json_pack("{s:s,s:i,s:i}", "IUGU CODE", code, "TIME PERIOD",
                                                 t, "DEMAND", 500 + (int)lcg(&seed) % 7000));
            for (int k = 0; k < ius; k++) {
                snprintf(from, sizeof from, "IU_%03d", k);
                json_array_append_new(log, json_pack("{s:s,s:s,s:s,s:i,s:i,s:i}", "FROM IU CODE",
                                                     from, "TO IUGU CODE", code, "TRANSPORT CODE",
                                                     "T2", "TIME PERIOD", t, "FREIGHT COST",
                                                     100 + (int)lcg(&seed) % 900,
                                                     "QUANTITY MULTIPLIER", 3000));
            }
        }
    }
    json_object_set_new(j, "IUGUType", types);
    json_object_set_new(j, "ClinkerCapacity", cap);
    json_object_set_new(j, "ProductionCost", cost);
    json_object_set_new(j, "ClinkerDemand", dem);
    json_object_set_new(j, "LogisticsIUGU", log);
    json_object_set_new(j, "Settings",
                        json_pack("{s:f,s:f}", "holding_cost", 37.0, "unmet_penalty", 10000.0));
    return j;
}
