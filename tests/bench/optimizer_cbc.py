#!/usr/bin/env python3
"""optimizer_cbc.py - the clinker scenario model of workers/optimizer/plan.c, built with PuLP
and solved by CBC: the baseline bench_optimizer compares GLPK against.

    optimizer_cbc.py SCENARIO.json [--time-limit S]   -> one JSON line on stdout:
    {"status": "optimal"|"feasible"|"infeasible"|"unbounded"|"error", "objective": x|null,
     "bound": x|null, "seconds": s, "rows": r, "cols": c, "integers": i, "solver": "..."}

    optimizer_cbc.py --check   -> exit 0 when PuLP can run CBC here, 77 when it cannot

It reads the same JSON (scenario.h's sheets and columns) with the same meaning, and must stay
the same model column for column and row for row:
  - per node n, period t: closing stock s[n,t] in [MIN, MAX CLOSE STOCK] (no row: [0, inf)),
    unmet demand u[n,t] in [0, (1 - MIN FULFILLMENT/100) * demand]; per IU production
    P[i,t] in [0, capacity] (no row: 0);
  - per LogisticsIUGU row that is not a self-arc: whole lots y (integer, QUANTITY MULTIPLIER
    q > 1, tonnes = q*y, y <= MAX TRIPS) or tonnes x (q <= 1, x <= MAX TRIPS * q);
  - rows: node balance s[n,t] - s[n,t-1] - P[n,t] + out - in - u[n,t] = opening(t=1) - demand,
    and per IUGUConstraint the tonnes of the routes it covers (same origin and period, to the
    given IUGU and by the given mode when named) <=, >= or = Value;
  - objective: production cost*P + (freight + handling)*tonnes + holding*s + penalty*u.
The input is the bench's own generated scenario, already accepted by the C reader; this script
does not repeat the reader's checks.
"""
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time


def load_pulp():
    """PuLP and a CBC command it can run, or None. Debian's python3-pulp ships no bundled cbc
    (PULP_CBC_CMD is unavailable); it runs coinor-cbc's /usr/bin/cbc through COIN_CMD."""
    try:
        import pulp
    except ImportError:
        return None, None

    def make(**kw):
        cmd = pulp.PULP_CBC_CMD(msg=False, **kw)
        if cmd.available():
            return cmd
        path = shutil.which("cbc") or "/usr/bin/cbc"
        cmd = pulp.COIN_CMD(path=path, msg=False, **kw)
        return cmd if cmd.available() else None

    return (pulp, make) if make() else (None, None)


def num(v, default):
    return default if v is None else float(v)


def build(pulp, sc):
    nodes = [r["IUGU CODE"] for r in sc["IUGUType"]]
    is_iu = {r["IUGU CODE"]: r["PLANT TYPE"] == "IU" for r in sc["IUGUType"]}
    settings = sc.get("Settings", {})
    T = settings.get("periods")
    if T is None:  # the largest TIME PERIOD named anywhere, as scenario.c does
        T = max(int(r["TIME PERIOD"]) for sheet in sc.values() if isinstance(sheet, list)
                for r in sheet if "TIME PERIOD" in r)
    holding = float(settings.get("holding_cost", 0))
    penalty = float(settings.get("unmet_penalty", 10000))
    periods = range(1, T + 1)

    cap = {(r["IU CODE"], r["TIME PERIOD"]): float(r["CAPACITY"])
           for r in sc.get("ClinkerCapacity", [])}
    cost = {(r["IU CODE"], r["TIME PERIOD"]): float(r["PRODUCTION COST"])
            for r in sc.get("ProductionCost", [])}
    demand, min_fill = {}, {}
    for r in sc.get("ClinkerDemand", []):
        k = (r["IUGU CODE"], r["TIME PERIOD"])
        demand[k] = float(r["DEMAND"])
        min_fill[k] = num(r.get("MIN FULFILLMENT (%)"), 0) / 100
    close = {(r["IUGU CODE"], r["TIME PERIOD"]):
             (num(r.get("MIN CLOSE STOCK"), 0), num(r.get("MAX CLOSE STOCK"), math.inf))
             for r in sc.get("IUGUClosingStock", [])}
    opening = {n: 0.0 for n in nodes}
    for r in sc.get("IUGUOpeningStock", []):
        opening[r["IUGU CODE"]] += float(r["OPENING STOCK"])
    for r in sc.get("HubOpeningStock", []):  # a hub's stock adds to the IUGU's
        opening[r["IUGU"]] += float(r["Opening Stock"])

    m = pulp.LpProblem("clinker", pulp.LpMinimize)
    obj = []
    P, s, u = {}, {}, {}
    for n in nodes:
        for t in periods:
            k = (n, t)
            if is_iu[n]:
                P[k] = pulp.LpVariable(f"P_{n}_{t}", 0, cap.get(k, 0.0))
                obj.append(cost.get(k, 0.0) * P[k])
            lo, hi = close.get(k, (0.0, math.inf))
            s[k] = pulp.LpVariable(f"s_{n}_{t}", lo, None if math.isinf(hi) else hi)
            obj.append(holding * s[k])
            u[k] = pulp.LpVariable(f"u_{n}_{t}", 0, (1 - min_fill.get(k, 0.0)) * demand.get(k, 0.0))
            obj.append(penalty * u[k])

    # Routes: tonnes as an expression, q*y for lots, x otherwise. Self-arcs carry nothing.
    routes = []  # (from, to, mode, period, tonnes expression)
    for i, r in enumerate(sc.get("LogisticsIUGU", [])):
        a, b, mode, t = r["FROM IU CODE"], r["TO IUGU CODE"], r["TRANSPORT CODE"], r["TIME PERIOD"]
        if a == b:
            continue
        q = num(r.get("QUANTITY MULTIPLIER"), 1)
        trips = r.get("MAX TRIPS")
        per_t = float(r["FREIGHT COST"]) + num(r.get("HANDLING COST"), 0)
        if q > 1:
            y = pulp.LpVariable(f"y_{i}", 0, None if trips is None else float(trips), pulp.LpInteger)
            tonnes = q * y
        else:
            tonnes = pulp.LpVariable(f"x_{i}", 0, None if trips is None else float(trips) * q)
        obj.append(per_t * tonnes)
        routes.append((a, b, mode, t, tonnes))
    m += pulp.lpSum(obj)

    out = {k: [] for k in s}
    inflow = {k: [] for k in s}
    for a, b, _, t, tonnes in routes:
        out[(a, t)].append(tonnes)
        inflow[(b, t)].append(tonnes)
    for n in nodes:
        for t in periods:
            k = (n, t)
            lhs = s[k] - u[k] + pulp.lpSum(out[k]) - pulp.lpSum(inflow[k])
            if t > 1:
                lhs -= s[(n, t - 1)]
            if k in P:
                lhs -= P[k]
            rhs = (opening[n] if t == 1 else 0.0) - demand.get(k, 0.0)
            m += lhs == rhs, f"bal_{n}_{t}"

    # Bound records: tonnes out of IU CODE in TIME PERIOD, narrowed to IUGU CODE and mode.
    for j, r in enumerate(sc.get("IUGUConstraint", [])):
        iu, t, to, mode = r["IU CODE"], r["TIME PERIOD"], r.get("IUGU CODE"), r.get("TRANSPORT CODE")
        e = pulp.lpSum(x for a, b, md, tt, x in routes
                       if a == iu and tt == t and (to is None or b == to)
                       and (mode is None or md == mode))
        v = float(r["Value"])
        sense = r["BOUND TYPEID"]
        m += (e <= v if sense == "L" else e >= v if sense == "G" else e == v), f"rec_{j}"
    return m


def cbc_bound(log):
    """The best bound from CBC's closing summary ("Lower bound:" / "Objective value:")."""
    for key in ("Lower bound:", "Objective value:"):
        hit = re.search(re.escape(key) + r"\s+(-?[0-9.eE+-]+)", log)
        if hit:
            return float(hit.group(1))
    return None


def main():
    pulp, make = load_pulp()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if pulp else 77)
    if len(sys.argv) < 2:
        sys.exit("usage: optimizer_cbc.py SCENARIO.json [--time-limit S] | --check")
    limit = 60.0
    if "--time-limit" in sys.argv:
        limit = float(sys.argv[sys.argv.index("--time-limit") + 1])
    if not pulp:
        print(json.dumps({"status": "error", "reason": "PuLP or CBC missing"}))
        sys.exit(77)
    with open(sys.argv[1], encoding="utf-8") as f:
        sc = json.load(f)
    m = build(pulp, sc)
    fd, log_path = tempfile.mkstemp(suffix=".log")
    os.close(fd)
    t0 = time.monotonic()
    try:
        m.solve(make(timeLimit=limit, logPath=log_path))
        with open(log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
    finally:
        os.unlink(log_path)
    seconds = time.monotonic() - t0
    sol = m.sol_status
    status = {pulp.LpSolutionOptimal: "optimal", pulp.LpSolutionIntegerFeasible: "feasible",
              pulp.LpSolutionInfeasible: "infeasible", pulp.LpSolutionUnbounded: "unbounded"}.get(
                  sol, "error")
    have = status in ("optimal", "feasible")
    nint = sum(1 for v in m.variables() if v.cat == pulp.LpInteger)
    print(json.dumps({"status": status, "objective": pulp.value(m.objective) if have else None,
                      "bound": cbc_bound(log) if have else None, "seconds": round(seconds, 3),
                      "rows": len(m.constraints), "cols": len(m.variables()), "integers": nint,
                      "solver": "cbc"}))


if __name__ == "__main__":
    main()
