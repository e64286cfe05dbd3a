/* bench_optimizer.c - how close sy-optimizer's GLPK solve of a clinker scenario comes to CBC,
 * and how fast, on generated scenarios of growing size, against the same model built with PuLP
 * and solved by CBC (tests/bench/optimizer_cbc.py) in the same run.
 *
 * Each instance is a seeded scenario in scenario.h's JSON layout shaped like the public dummy
 * dataset (Dataset_Dummy_Clinker_3MPlan): IUs and GUs, periods, road T1 routes (lot 1, some with
 * a tonnage cap) and rail T2 routes (lots of 3000 t with trip caps), self-arcs, bound records
 * L (road out of an IU), G (rail IU -> GU) and E (one IU -> node pair, any mode), opening stock,
 * min/max closing stock, holding cost 1 per t and an unmet-demand penalty of 10000 per t, with
 * demand about 1/0.61 of capacity as in the dataset. GLPK solves it through the worker's path
 * (op_child_start / op_child_poll / op_child_wait) with mip_gap 0 and SY_BENCH_GLPK_S (default
 * 30) seconds; then the same JSON, written to a file, goes to optimizer_cbc.py with
 * SY_BENCH_CBC_S (default 60) seconds. The target: GLPK's plan within 0.05% of CBC's objective
 * in at most 30 s. "to target" is when GLPK's incumbent first got there (from its progress).
 * Unmet demand at 10000 per t is most of the objective, so 0.05% is many tonnes: "same in t
 * unmet" is the difference GLPK - CBC divided by that penalty.
 *
 * SY_BENCH_SIZES: instances as IUSxGUSxPERIODS, comma-separated (default
 * "5x8x2,10x15x3,20x25x3,40x60x6"; 20x25x3 is the dummy dataset's shape). SY_BENCH_SEED
 * (default 1). SY_BENCH_PYTHON: the interpreter (default: the first of python3, /usr/bin/python3
 * that imports pulp and finds cbc). SY_SOURCE_DIR: where tests/bench/optimizer_cbc.py is.
 * SY_BENCH_DUMP: a folder to keep each scenario's JSON in. SY_BENCH_GLPK_S, SY_BENCH_CBC_S.
 *
 * Exits 0 when every instance ran and the smallest one (which both must prove optimal) agrees
 * to 1e-6 relative, which shows the two models are the same; 1 on any failure or when the
 * model sizes differ; 77 when python3, PuLP or CBC is missing. Missing the target is reported,
 * not a failure. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "optimizer/child.h"
#include "optimizer/scenario.h"
#include "optimizer/solve.h"

#define DEFAULT_SIZES "5x8x2,10x15x3,20x25x3,40x60x6"
#define INSTANCES_MAX 16
#define NODES_MAX     500
#define PERIODS_MAX   24
#define RAIL_LOT      3000.0
#define TARGET_REL    5e-4 /* within 0.05% of CBC's objective */
#define TARGET_S      30.0
#define SANITY_REL    1e-6
#define PENALTY       10000.0 /* unmet demand, per t: most of the objective */
#define TRAJ_MAX      4096
#define OUT_MAX       (1 << 16)

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_optimizer: %s: %s\n", what, why);
    exit(1);
}

/* splitmix64: the same seed gives the same scenarios on every machine. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rng_next() >> 11) / 9007199254740992.0;
}

static int pick(int n)
{
    return (int)(rng_next() % (uint64_t)n);
}

static bool chance(double p)
{
    return uniform(0, 1) < p;
}

struct size {
    int ius, gus, periods;
};

/* One origin-destination pair and the modes it has (the same in every period). */
struct pair {
    int from, to; /* node indexes; IUs are 0..ius-1 */
    bool road, rail;
    double road_cap; /* t per period; < 0: uncapped */
    int rail_trips;  /* trips per period */
    double dist;
};

struct gen {
    struct size sz;
    int nodes;
    char code[NODES_MAX][16];
    double x[NODES_MAX], y[NODES_MAX];
    double opening[NODES_MAX];
    double demand[NODES_MAX][PERIODS_MAX];
    double forced_in[NODES_MAX][PERIODS_MAX]; /* tonnes bound records push into a node */
    struct pair *pairs;
    int npairs;
};

static json_t *row(json_t *arr, json_t *obj)
{
    if (json_array_append_new(arr, obj) < 0)
        die("generate", "out of memory");
    return obj;
}

static json_t *sheet(json_t *sc, const char *name)
{
    json_t *arr = json_array();
    if (!arr || json_object_set_new(sc, name, arr) < 0)
        die("generate", "out of memory");
    return arr;
}

static double whole(double v)
{
    return round(v);
}

static void add_pair(struct gen *g, int from, int to)
{
    for (int k = 0; k < g->npairs; k++)
        if (g->pairs[k].from == from && g->pairs[k].to == to)
            return;
    struct pair *p = &g->pairs[g->npairs++];
    p->from = from;
    p->to = to;
    p->dist = hypot(g->x[from] - g->x[to], g->y[from] - g->y[to]);
    /* As in the dataset, mostly rail (T2 rows outnumber T1 about 2.6 to 1). */
    p->rail = chance(0.85);
    p->road = !p->rail || chance(0.3);
    p->road_cap = chance(0.6) ? whole(uniform(5000, 40000)) : -1;
    p->rail_trips = 4 + pick(30);
}

/* The nearest `near` IUs to node n, one of them at random. */
static int near_iu(const struct gen *g, int n, int near, int avoid)
{
    int best[8], nb = 0;
    for (int k = 0; k < near && k < 8; k++) {
        int bi = -1;
        double bd = INFINITY;
        for (int i = 0; i < g->sz.ius; i++) {
            bool taken = i == avoid;
            for (int m = 0; m < nb; m++)
                taken = taken || best[m] == i;
            double d = hypot(g->x[i] - g->x[n], g->y[i] - g->y[n]);
            if (!taken && d < bd)
                bd = d, bi = i;
        }
        if (bi < 0)
            break;
        best[nb++] = bi;
    }
    return nb ? best[pick(nb)] : -1;
}

static json_t *record(json_t *recs, const struct gen *g, int iu, const char *mode, int to, int t,
                      const char *sense, double value)
{
    return row(recs, json_pack("{s:s, s:s?, s:s?, s:i, s:s, s:s, s:f}", "IU CODE", g->code[iu],
                               "TRANSPORT CODE", mode, "IUGU CODE", to < 0 ? NULL : g->code[to],
                               "TIME PERIOD", t + 1, "BOUND TYPEID", sense, "VALUE TYPEID", "C",
                               "Value", value));
}

/* The scenario JSON (new reference) of one size and seed. */
static json_t *generate(struct size sz, uint64_t seed)
{
    struct gen *g = calloc(1, sizeof *g);
    json_t *sc = json_object();
    int T = sz.periods;

    if (!g || !sc)
        die("generate", "out of memory");
    rng_state = seed * 1000003u + (uint64_t)(sz.ius * 10007 + sz.gus * 101 + sz.periods);
    g->sz = sz;
    g->nodes = sz.ius + sz.gus;
    g->pairs = calloc((size_t)g->nodes * 6, sizeof *g->pairs);
    if (!g->pairs)
        die("generate", "out of memory");

    json_t *types = sheet(sc, "IUGUType");
    double cap_total = 0, demand_total = 0;
    for (int n = 0; n < g->nodes; n++) {
        bool iu = n < sz.ius;
        snprintf(g->code[n], sizeof g->code[n], "%s_%03d", iu ? "IU" : "GU",
                 iu ? n + 1 : n - sz.ius + 1);
        g->x[n] = uniform(0, 1000);
        g->y[n] = uniform(0, 1000);
        g->opening[n] = whole(uniform(10000, 80000));
        /* Many IUs only produce: then their whole output leaves in whole rail lots. */
        bool consumes = !iu || chance(0.4);
        for (int t = 0; t < T; t++)
            demand_total += g->demand[n][t] = !consumes ? 0
                                              : iu      ? uniform(40000, 150000)
                                                        : uniform(80000, 300000);
        row(types,
            json_pack("{s:s, s:s}", "IUGU CODE", g->code[n], "PLANT TYPE", iu ? "IU" : "GU"));
    }

    json_t *capacity = sheet(sc, "ClinkerCapacity"), *cost = sheet(sc, "ProductionCost");
    for (int i = 0; i < sz.ius; i++)
        for (int t = 0; t < T; t++) {
            double c = whole(uniform(150000, 450000));
            cap_total += c;
            row(capacity, json_pack("{s:s, s:i, s:f}", "IU CODE", g->code[i], "TIME PERIOD", t + 1,
                                    "CAPACITY", c));
            row(cost, json_pack("{s:s, s:i, s:f}", "IU CODE", g->code[i], "TIME PERIOD", t + 1,
                                "PRODUCTION COST", whole(uniform(1410, 2275))));
        }
    /* The dataset covers about 61% of demand: scale demand to capacity / 0.61. */
    double scale = cap_total / 0.61 / demand_total;
    json_t *demand = sheet(sc, "ClinkerDemand");
    for (int n = 0; n < g->nodes; n++)
        for (int t = 0; t < T; t++) {
            g->demand[n][t] = whole(g->demand[n][t] * scale);
            row(demand, json_pack("{s:s, s:i, s:f, s:n}", "IUGU CODE", g->code[n], "TIME PERIOD",
                                  t + 1, "DEMAND", g->demand[n][t], "MIN FULFILLMENT (%)"));
        }

    /* Routes: each GU from 2-4 of its 6 nearest IUs, some IUs to one other IU. */
    for (int n = sz.ius; n < g->nodes; n++) {
        int k = 2 + pick(4);
        for (int m = 0; m < k; m++)
            add_pair(g, near_iu(g, n, 6, -1), n);
    }
    for (int i = 0; i < sz.ius; i++)
        if (sz.ius > 1 && chance(0.3))
            add_pair(g, i, near_iu(g, i, 4, i));
    json_t *routes = sheet(sc, "LogisticsIUGU");
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < sz.ius; i++) /* self-arcs, as in the dataset: carry nothing */
            row(routes,
                json_pack("{s:s, s:s, s:s, s:i, s:f, s:f, s:f}", "FROM IU CODE", g->code[i],
                          "TO IUGU CODE", g->code[i], "TRANSPORT CODE", "T1", "TIME PERIOD", t + 1,
                          "FREIGHT COST", 0.0, "HANDLING COST", 0.0, "QUANTITY MULTIPLIER", 1.0));
        for (int k = 0; k < g->npairs; k++) {
            const struct pair *p = &g->pairs[k];
            if (p->road) {
                json_t *r = row(
                    routes,
                    json_pack("{s:s, s:s, s:s, s:i, s:f, s:f, s:f}", "FROM IU CODE",
                              g->code[p->from], "TO IUGU CODE", g->code[p->to], "TRANSPORT CODE",
                              "T1", "TIME PERIOD", t + 1, "FREIGHT COST",
                              whole((100 + 0.9 * p->dist) * uniform(0.95, 1.05)), "HANDLING COST",
                              whole(uniform(10, 30)), "QUANTITY MULTIPLIER", 1.0));
                if (p->road_cap >= 0)
                    json_object_set_new(r, "MAX TRIPS", json_real(p->road_cap));
            }
            if (p->rail)
                row(routes, json_pack("{s:s, s:s, s:s, s:i, s:f, s:f, s:f, s:i}", "FROM IU CODE",
                                      g->code[p->from], "TO IUGU CODE", g->code[p->to],
                                      "TRANSPORT CODE", "T2", "TIME PERIOD", t + 1, "FREIGHT COST",
                                      whole((150 + 0.5 * p->dist) * uniform(0.95, 1.05)),
                                      "HANDLING COST", whole(uniform(40, 80)),
                                      "QUANTITY MULTIPLIER", RAIL_LOT, "MAX TRIPS", p->rail_trips));
        }
    }

    /* Bound records, about 1.25 per IU and period as in the dataset: a road cap (L) on some IUs,
     * a rail commitment (G, whole lots) on some pairs, an exact tonnage (E) on some road pairs.
     * At most one G and one E per IU and period, so forced flows stay small beside capacity. */
    json_t *recs = sheet(sc, "IUGUConstraint");
    for (int t = 0; t < T; t++)
        for (int i = 0; i < sz.ius; i++) {
            if (chance(0.5))
                record(recs, g, i, "T1", -1, t, "L", whole(uniform(40000, 120000)));
            int cand[64], nc = 0;
            for (int k = 0; k < g->npairs && nc < 64; k++)
                if (g->pairs[k].from == i)
                    cand[nc++] = k;
            if (!nc)
                continue;
            const struct pair *p = &g->pairs[cand[pick(nc)]];
            if (p->rail && chance(0.6)) {
                int lots = 1 + pick(p->rail_trips < 4 ? p->rail_trips : 4);
                record(recs, g, i, "T2", p->to, t, "G", lots * RAIL_LOT);
                g->forced_in[p->to][t] += lots * RAIL_LOT;
            }
            const struct pair *q = &g->pairs[cand[pick(nc)]];
            if (q != p && q->road && chance(0.2)) {
                /* Within what the pair carries, road cap and rail trips together. */
                double carry = (q->road_cap < 0 ? INFINITY : q->road_cap) +
                               (q->rail ? q->rail_trips * RAIL_LOT : 0);
                double v = whole(uniform(0.25, 1) * fmin(20000, carry));
                record(recs, g, i, NULL, q->to, t, "E", v);
                g->forced_in[q->to][t] += v;
            }
        }

    /* Stock: min closing at or below opening, and a max only on nodes whose forced inflow never
     * exceeds their demand, so keeping the opening stock in every period is always a plan (a
     * node sheds stock only through demand or routes, and may have neither). */
    json_t *open = sheet(sc, "IUGUOpeningStock"), *close = sheet(sc, "IUGUClosingStock");
    for (int n = 0; n < g->nodes; n++) {
        row(open, json_pack("{s:s, s:f}", "IUGU CODE", g->code[n], "OPENING STOCK", g->opening[n]));
        double lo = whole(g->opening[n] * uniform(0.2, 0.6));
        bool capped = chance(0.6);
        for (int t = 0; t < T; t++)
            capped = capped && g->forced_in[n][t] <= g->demand[n][t];
        for (int t = 0; t < T; t++) {
            json_t *hi =
                capped ? json_real(whole(g->opening[n] + uniform(0.02, 0.1) * g->demand[n][t]))
                       : NULL;
            row(close, json_pack("{s:s, s:i, s:f, s:o*}", "IUGU CODE", g->code[n], "TIME PERIOD",
                                 t + 1, "MIN CLOSE STOCK", lo, "MAX CLOSE STOCK", hi));
        }
    }
    json_object_set_new(
        sc, "Settings",
        json_pack("{s:i, s:f, s:f}", "periods", T, "holding_cost", 1.0, "unmet_penalty", PENALTY));
    free(g->pairs);
    free(g);
    return sc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv, returns its exit status (-1: not run) and its stdout in out (NUL-terminated). */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int fd[2];
    size_t n = 0;

    out[0] = '\0';
    if (pipe(fd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(fd[1], 1);
        if (devnull >= 0)
            dup2(devnull, 0);
        close(fd[0]);
        close(fd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    for (;;) {
        ssize_t r = read(fd[0], out + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n + 1 >= cap)
            break;
    }
    out[n] = '\0';
    close(fd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The interpreter that can run the CBC side, or NULL. */
static const char *find_python(const char *script)
{
    static const char *const candidates[] = {"python3", "/usr/bin/python3"};
    const char *env = getenv("SY_BENCH_PYTHON");
    char out[256];

    for (size_t k = 0; k < (env ? 1 : 2); k++) {
        const char *py = env ? env : candidates[k];
        char *argv[] = {(char *)py, (char *)script, "--check", NULL};
        if (run_capture(argv, out, sizeof out) == 0)
            return py;
    }
    return NULL;
}

struct outcome {
    /* sizes */
    size_t rows, cols, ints, routes, records;
    /* GLPK */
    char status[16];
    double obj, bound, gap, solve_s, wall_s;
    double traj_s[TRAJ_MAX], traj_obj[TRAJ_MAX]; /* incumbents as they came */
    int ntraj;
    /* CBC */
    char cbc_status[16];
    double cbc_obj, cbc_bound, cbc_s;
    size_t cbc_rows, cbc_cols, cbc_ints;
};

static double num_or_nan(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void model_size(const struct op_scenario *sc, struct outcome *o)
{
    size_t T = sc->nperiods, ius = 0;

    for (size_t n = 0; n < sc->nnodes; n++)
        ius += sc->nodes[n].type == OP_IU;
    o->rows = sc->nnodes * T + sc->nrecords;
    o->cols = ius * T + 2 * sc->nnodes * T;
    for (size_t i = 0; i < sc->nroutes; i++)
        if (sc->routes[i].from != sc->routes[i].to) {
            o->cols++;
            o->ints += sc->routes[i].lot > 1;
        }
    o->routes = sc->nroutes;
    o->records = sc->nrecords;
}

static void solve_glpk(const struct op_scenario *sc, double limit, struct outcome *o)
{
    struct op_job job = {.scenario = sc};
    struct op_options opt = {.time_limit_s = limit, .mip_gap = 0};
    struct op_child *c = NULL;
    char err[256];
    double t0 = now_s();

    if (op_child_start(&job, &opt, &c, err, sizeof err) < 0)
        die("op_child_start", err);
    for (;;) {
        struct op_progress p;
        int rc = op_child_poll(c, 1000, &p);
        if (rc == 2)
            break;
        if (rc == 1 && !isnan(p.incumbent) && o->ntraj < TRAJ_MAX &&
            (o->ntraj == 0 || p.incumbent < o->traj_obj[o->ntraj - 1])) {
            o->traj_s[o->ntraj] = now_s() - t0;
            o->traj_obj[o->ntraj++] = p.incumbent;
        }
    }
    json_t *r = op_child_wait(c);
    o->wall_s = now_s() - t0;
    op_child_destroy(c);
    if (!r)
        die("op_child_wait", "out of memory");
    snprintf(o->status, sizeof o->status, "%s", json_string_value(json_object_get(r, "status")));
    o->obj = num_or_nan(r, "objective");
    o->bound = num_or_nan(r, "bound");
    o->gap = num_or_nan(r, "gap");
    o->solve_s = num_or_nan(r, "seconds");
    const char *reason = json_string_value(json_object_get(r, "reason"));
    if (isnan(o->obj))
        fprintf(stderr, "bench_optimizer: GLPK: %s: %s\n", o->status, reason ? reason : "");
    /* The final plan is the last incumbent, whether or not its report got through. */
    if (!isnan(o->obj) && o->ntraj < TRAJ_MAX &&
        (o->ntraj == 0 || o->obj < o->traj_obj[o->ntraj - 1])) {
        o->traj_s[o->ntraj] = o->wall_s;
        o->traj_obj[o->ntraj++] = o->obj;
    }
    json_decref(r);
}

static void solve_cbc(const char *py, const char *script, const char *file, double limit,
                      struct outcome *o)
{
    char lim[32], *out = malloc(OUT_MAX);

    if (!out)
        die("cbc", "out of memory");
    snprintf(lim, sizeof lim, "%g", limit);
    char *argv[] = {(char *)py, (char *)script, (char *)file, "--time-limit", lim, NULL};
    int rc = run_capture(argv, out, OUT_MAX);
    /* The JSON is the last line. */
    char *line = out, *nl;
    while ((nl = strchr(line, '\n')) && nl[1])
        line = nl + 1;
    json_error_t jerr;
    json_t *r = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
    if (rc != 0 || !r) {
        fprintf(stderr, "bench_optimizer: optimizer_cbc.py exited %d: %s\n", rc, out);
        unlink(file);
        exit(rc == 77 ? 77 : 1);
    }
    snprintf(o->cbc_status, sizeof o->cbc_status, "%s",
             json_string_value(json_object_get(r, "status")));
    o->cbc_obj = num_or_nan(r, "objective");
    o->cbc_bound = num_or_nan(r, "bound");
    o->cbc_s = num_or_nan(r, "seconds");
    o->cbc_rows = (size_t)json_integer_value(json_object_get(r, "rows"));
    o->cbc_cols = (size_t)json_integer_value(json_object_get(r, "cols"));
    o->cbc_ints = (size_t)json_integer_value(json_object_get(r, "integers"));
    json_decref(r);
    free(out);
}

static double rel_diff(double a, double b)
{
    return (a - b) / fmax(fabs(b), 1e-9);
}

/* When GLPK's incumbent first came within TARGET_REL of CBC's objective, or NAN. */
static double time_to_target(const struct outcome *o)
{
    for (int k = 0; k < o->ntraj; k++)
        if (rel_diff(o->traj_obj[k], o->cbc_obj) <= TARGET_REL)
            return o->traj_s[k];
    return NAN;
}

static bool target_met(const struct outcome *o)
{
    double t = time_to_target(o);
    return !isnan(t) && t <= TARGET_S;
}

static int parse_sizes(const char *spec, struct size *sz)
{
    int n = 0;
    const char *p = spec;

    while (*p && n < INSTANCES_MAX) {
        int used = 0;
        if (sscanf(p, "%dx%dx%d%n", &sz[n].ius, &sz[n].gus, &sz[n].periods, &used) != 3 ||
            sz[n].ius < 1 || sz[n].gus < 0 || sz[n].periods < 1 ||
            sz[n].ius + sz[n].gus > NODES_MAX || sz[n].periods > PERIODS_MAX)
            die("SY_BENCH_SIZES", "want IUSxGUSxPERIODS,... (nodes <= 500, periods <= 24)");
        n++;
        p += used;
        if (*p == ',')
            p++;
        else if (*p)
            die("SY_BENCH_SIZES", "want IUSxGUSxPERIODS,...");
    }
    return n;
}

static double env_num(const char *name, double def)
{
    const char *v = getenv(name);
    return v && *v ? strtod(v, NULL) : def;
}

int main(void)
{
    const char *src = getenv("SY_SOURCE_DIR");
    const char *spec = getenv("SY_BENCH_SIZES");
    uint64_t seed = (uint64_t)env_num("SY_BENCH_SEED", 1);
    double glpk_s = env_num("SY_BENCH_GLPK_S", TARGET_S);
    double cbc_s = env_num("SY_BENCH_CBC_S", 60);
    struct size sz[INSTANCES_MAX];
    static struct outcome out[INSTANCES_MAX];
    char script[4096], file[] = "/tmp/bench_optimizer_XXXXXX";
    bool failed = false;

    if (!src) {
        fprintf(stderr, "bench_optimizer: SY_SOURCE_DIR is not set\n");
        return 77;
    }
    snprintf(script, sizeof script, "%s/tests/bench/optimizer_cbc.py", src);
    const char *py = find_python(script);
    if (!py) {
        fprintf(stderr, "bench_optimizer: no python3 with PuLP and CBC (python3-pulp, "
                        "coinor-cbc)\n");
        return 77;
    }
    int n = parse_sizes(spec && *spec ? spec : DEFAULT_SIZES, sz);
    int fd = mkstemp(file);
    if (fd < 0)
        die("mkstemp", strerror(errno));
    close(fd);

    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = NAN;
        fclose(la);
    }
    printf("bench_optimizer: seed %llu, GLPK %g s (mip_gap 0), CBC %g s via %s, load %.2f %.2f "
           "%.2f, %ld cores\n",
           (unsigned long long)seed, glpk_s, cbc_s, py, load[0], load[1], load[2],
           sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);

    int smallest = 0;
    for (int k = 0; k < n; k++) {
        struct outcome *o = &out[k];
        json_t *j = generate(sz[k], seed);
        struct op_scenario *sc = NULL;
        char err[256];
        if (op_scenario_from_json(j, &sc, err, sizeof err) < 0)
            die("generated scenario refused", err);
        if (json_dump_file(j, file, JSON_COMPACT) < 0)
            die("writing the scenario", file);
        const char *dump = getenv("SY_BENCH_DUMP");
        if (dump && *dump) {
            char path[4096];
            snprintf(path, sizeof path, "%s/bench_optimizer_%dx%dx%d_seed%llu.json", dump,
                     sz[k].ius, sz[k].gus, sz[k].periods, (unsigned long long)seed);
            if (json_dump_file(j, path, JSON_INDENT(1)) < 0)
                die("SY_BENCH_DUMP", path);
        }
        model_size(sc, o);
        if (o->cols < out[smallest].cols)
            smallest = k;
        solve_glpk(sc, glpk_s, o);
        solve_cbc(py, script, file, cbc_s, o);
        printf("  %dx%dx%d: %zu routes, %zu records; GLPK %s %.10g (bound %.10g) in %.2f s, "
               "%d incumbents, first %.10g at %.2f s; CBC %s %.10g (bound %.10g) in %.2f s\n",
               sz[k].ius, sz[k].gus, sz[k].periods, o->routes, o->records, o->status, o->obj,
               o->bound, o->wall_s, o->ntraj, o->ntraj ? o->traj_obj[0] : NAN,
               o->ntraj ? o->traj_s[0] : NAN, o->cbc_status, o->cbc_obj, o->cbc_bound, o->cbc_s);
        fflush(stdout);
        if (o->rows != o->cbc_rows || o->cols != o->cbc_cols || o->ints != o->cbc_ints) {
            fprintf(stderr,
                    "bench_optimizer: %dx%dx%d: GLPK model %zux%zux%zu, PuLP model %zux%zux%zu\n",
                    sz[k].ius, sz[k].gus, sz[k].periods, o->rows, o->cols, o->ints, o->cbc_rows,
                    o->cbc_cols, o->cbc_ints);
            failed = true;
        }
        if (isnan(o->obj) || isnan(o->cbc_obj))
            failed = true;
        op_scenario_free(sc);
        json_decref(j);
    }
    unlink(file);

    printf("\n| instance | rows×cols×int | GLPK status | GLPK objective | GLPK gap | GLPK s | "
           "to target s | CBC status | CBC objective | CBC s | GLPK vs CBC | same in t unmet | "
           "target |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < n; k++) {
        const struct outcome *o = &out[k];
        double tt = time_to_target(o);
        char ttbuf[32];
        if (isnan(tt))
            snprintf(ttbuf, sizeof ttbuf, "-");
        else
            snprintf(ttbuf, sizeof ttbuf, "%.1f", tt);
        printf("| %dx%dx%d | %zu×%zu×%zu | %s | %.6e | %.4f%% | %.1f | %s | %s | %.6e | %.1f | "
               "%+.4f%% | %+.0f | %s |\n",
               sz[k].ius, sz[k].gus, sz[k].periods, o->rows, o->cols, o->ints, o->status, o->obj,
               100 * o->gap, o->wall_s, ttbuf, o->cbc_status, o->cbc_obj, o->cbc_s,
               100 * rel_diff(o->obj, o->cbc_obj), (o->obj - o->cbc_obj) / PENALTY,
               target_met(o) ? "met" : "missed");
    }

    const struct outcome *s = &out[smallest];
    double d = fabs(rel_diff(s->obj, s->cbc_obj));
    bool proven = strcmp(s->status, "optimal") == 0 && strcmp(s->cbc_status, "optimal") == 0;
    printf("\nsanity (%dx%dx%d, both optimal, same objective to %g): %s (%.3g relative)\n",
           sz[smallest].ius, sz[smallest].gus, sz[smallest].periods, SANITY_REL,
           proven && d <= SANITY_REL ? "ok" : "FAILED", d);
    if (!proven || !(d <= SANITY_REL))
        failed = true;
    return failed ? 1 : 0;
}
