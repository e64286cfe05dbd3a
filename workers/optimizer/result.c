/* result.c - a solve's result freed, and written as the JSON result.h shows. */
#include "optimizer/result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void op_result_clear(struct op_result *r)
{
    if (!r)
        return;
    free(r->production);
    free(r->stock);
    free(r->unmet);
    free(r->tonnes);
    free(r->trips);
    for (size_t i = 0; r->var_names && i < r->nvars; i++)
        free(r->var_names[i]);
    free(r->var_names);
    free(r->var_values);
    memset(r, 0, sizeof *r);
}

/* A number, or null for NAN and infinities (JSON has neither). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Sets obj[key] = v, stealing v; false when either is missing. */
static bool set(json_t *obj, const char *key, json_t *v)
{
    return v && json_object_set_new(obj, key, v) == 0;
}

static bool append(json_t *arr, json_t *v)
{
    return v && json_array_append_new(arr, v) == 0;
}

static json_t *shipment(const struct op_result *r, const struct op_scenario *sc, size_t i)
{
    const struct op_route *rt = &sc->routes[i];
    json_t *o = json_object();

    if (o && set(o, "row", json_integer((json_int_t)rt->row)) &&
        set(o, "from", json_string(sc->nodes[rt->from].code)) &&
        set(o, "to", json_string(sc->nodes[rt->to].code)) &&
        set(o, "mode", json_string(rt->mode)) && set(o, "tonnes", num(r->tonnes[i])) &&
        set(o, "trips", num(r->trips[i])))
        return o;
    json_decref(o);
    return NULL;
}

static json_t *period(const struct op_result *r, const struct op_scenario *sc, size_t t)
{
    json_t *o = json_object(), *prod = json_object(), *ships = json_array(), *stock = json_object(),
           *unmet = json_object();
    bool ok = o && prod && ships && stock && unmet;

    for (size_t n = 0; ok && n < sc->nnodes; n++) {
        size_t k = n * sc->nperiods + t;
        const char *code = sc->nodes[n].code;
        if (sc->nodes[n].type == OP_IU)
            ok = set(prod, code, num(r->production[k]));
        ok = ok && set(stock, code, num(r->stock[k]));
        if (ok && r->unmet[k] != 0)
            ok = set(unmet, code, num(r->unmet[k]));
    }
    for (size_t i = 0; ok && i < sc->nroutes; i++)
        if (sc->routes[i].period == t && r->tonnes[i] != 0)
            ok = append(ships, shipment(r, sc, i));
    ok = ok && set(o, "period", json_integer((json_int_t)t + 1));
    ok = ok && set(o, "production", json_incref(prod)) && set(o, "shipments", json_incref(ships)) &&
         set(o, "closing_stock", json_incref(stock)) && set(o, "unmet", json_incref(unmet));
    json_decref(prod);
    json_decref(ships);
    json_decref(stock);
    json_decref(unmet);
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}

static bool add_plan(json_t *o, const struct op_result *r, const struct op_scenario *sc)
{
    json_t *costs = json_object(), *plan = json_array();
    bool ok = costs && plan && set(costs, "production", num(r->costs.production)) &&
              set(costs, "transport", num(r->costs.transport)) &&
              set(costs, "holding", num(r->costs.holding)) &&
              set(costs, "penalty", num(r->costs.penalty));

    for (size_t t = 0; ok && t < sc->nperiods; t++)
        ok = append(plan, period(r, sc, t));
    ok = ok && set(o, "costs", json_incref(costs)) && set(o, "plan", json_incref(plan));
    json_decref(costs);
    json_decref(plan);
    return ok;
}

static bool add_variables(json_t *o, const struct op_result *r)
{
    json_t *vars = json_object();
    bool ok = vars != NULL;

    for (size_t j = 0; ok && j < r->nvars; j++)
        ok = set(vars, r->var_names[j], num(r->var_values[j]));
    ok = ok && set(o, "variables", json_incref(vars));
    json_decref(vars);
    return ok;
}

json_t *op_result_json(const struct op_result *r, const struct op_scenario *sc)
{
    json_t *o = json_object();
    bool ok = o && set(o, "status", json_string(op_status_name(r->status))) &&
              set(o, "reason", json_string(r->reason)) &&
              set(o, "objective", r->has_plan ? num(r->objective) : json_null()) &&
              set(o, "bound", r->has_plan ? num(r->bound) : json_null()) &&
              set(o, "gap", r->has_plan ? num(r->gap) : json_null()) &&
              set(o, "seconds", num(r->seconds));

    if (ok && r->has_plan && sc && r->production)
        ok = add_plan(o, r, sc);
    else if (ok && r->has_plan && r->var_names)
        ok = add_variables(o, r);
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}
