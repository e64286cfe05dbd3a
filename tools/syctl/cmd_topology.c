/* cmd_topology.c - `syctl topology apply|show`: declare (or just print) the exchange, every
 * worker's queues and their bindings, from the topology file. */
#include "syctl.h"

#include <stdio.h>
#include <string.h>

#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/topology.h"

#define NEED_APPLY (SYCTL_NEED_TOPOLOGY | SYCTL_NEED_AMQP)
#define NEED_SHOW  SYCTL_NEED_TOPOLOGY

static const char help[] =
    "Usage: syctl topology apply [--worker W]\n"
    "       syctl topology show [--worker W]\n"
    "\n"
    "apply declares the exchange and, for every worker of the topology (or only W), its work\n"
    "queue sy.<w> bound to the worker's routes, its retry delay queues sy.<w>.retry.<i> and its\n"
    "dead-letter queue sy.<w>.dead, then prints what was declared. Declaring is idempotent:\n"
    "running it again changes nothing. show prints the same without contacting the broker.\n"
    "\n"
    "Options:\n"
    "  --worker W       only this worker's queues (the exchange is always included)\n"
    "  -h, --help       this help\n";

static const char help_apply[] =
    "Usage: syctl topology apply [--worker W]\n"
    "\n"
    "Declares the exchange and, for every worker of the topology (or only W), its work queue\n"
    "sy.<w> bound to the worker's routes, its retry delay queues sy.<w>.retry.<i> and its\n"
    "dead-letter queue sy.<w>.dead; prints what was declared. Idempotent.\n"
    "\n"
    "Options:\n"
    "  --worker W       only this worker's queues (the exchange is always included)\n"
    "  -h, --help       this help\n";

static const char help_show[] =
    "Usage: syctl topology show [--worker W]\n"
    "\n"
    "Prints what 'syctl topology apply' would declare, without contacting the broker.\n"
    "\n"
    "Options:\n"
    "  --worker W       only this worker\n"
    "  -h, --help       this help\n";

enum { OPT_WORKER };
static const struct syctl_optspec specs[] = {
    [OPT_WORKER] = {"worker", true},
    {NULL, false},
};

static void format_ms(long long ms, char *buf, size_t bufsz)
{
    if (ms > 0 && ms % 3600000 == 0)
        snprintf(buf, bufsz, "%lldh", ms / 3600000);
    else if (ms > 0 && ms % 60000 == 0)
        snprintf(buf, bufsz, "%lldm", ms / 60000);
    else if (ms > 0 && ms % 1000 == 0)
        snprintf(buf, bufsz, "%llds", ms / 1000);
    else
        snprintf(buf, bufsz, "%lldms", ms);
}

static int print_worker(const struct sy_topo_worker *w, const char *prefix)
{
    char q[256], name[256], delay[32];

    if (sy_topo_queue_name(w, q, sizeof(q)) < 0)
        return syctl_fail(SYCTL_EXIT_CONFIG, "worker '%s': name too long", w->name);
    printf("%squeue %s (quorum, delivery limit %lld, max attempts %u), bound to", prefix, q,
           w->delivery_limit, w->max_attempts);
    for (size_t i = 0; i < w->nroutes; i++)
        printf("%s %s", i ? "," : "", w->routes[i]);
    printf("\n");
    for (size_t i = 0; i < w->ndelays; i++) {
        if (sy_topo_retry_name(w, i, name, sizeof(name)) < 0)
            return syctl_fail(SYCTL_EXIT_CONFIG, "worker '%s': name too long", w->name);
        format_ms(w->delays_ms[i], delay, sizeof(delay));
        printf("%squeue %s (retry step %zu: %s, then back to %s)\n", prefix, name, i + 1, delay, q);
    }
    if (sy_topo_dead_name(w, name, sizeof(name)) < 0)
        return syctl_fail(SYCTL_EXIT_CONFIG, "worker '%s': name too long", w->name);
    printf("%squeue %s (dead letters)\n", prefix, name);
    return 0;
}

int syctl_cmd_topology(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];
    const struct sy_topology *t;
    const struct sy_topo_worker *only = NULL;
    struct sy_amqp *amqp;
    int rc;

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "topology: %s (see 'syctl topology --help')", err);
    const char *sub = a.npos ? a.pos[0] : NULL;
    bool apply = sub && strcmp(sub, "apply") == 0;
    bool show = sub && strcmp(sub, "show") == 0;
    if (a.help) {
        syctl_help(apply ? help_apply : show ? help_show : help, show ? NEED_SHOW : NEED_APPLY);
        return SYCTL_OK;
    }
    if (!sub)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "topology: expected 'apply' or 'show' (see 'syctl topology --help')");
    if (!apply && !show)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "topology: unknown subcommand '%s' (see 'syctl topology --help')", sub);
    if (a.npos > 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "topology %s: unexpected argument '%s'", sub, a.pos[1]);

    if ((rc = syctl_topology(c, &t)) != 0)
        return rc;
    if (a.val[OPT_WORKER] && (rc = syctl_worker(c, a.val[OPT_WORKER], &only)) != 0)
        return rc;
    if (apply) {
        if ((rc = syctl_amqp(c, &amqp)) != 0)
            return rc;
        rc = sy_amqp_declare(amqp, t, only ? only->name : NULL);
        if (rc < 0) {
            const char *why = sy_amqp_error(amqp);
            /* A queue that exists with other arguments: the topology file and the broker
             * disagree, which no retry fixes. */
            int code =
                why && strstr(why, "PRECONDITION_FAILED") ? SYCTL_EXIT_CONFIG : syctl_exit_for(rc);
            return syctl_fail(code, "declaring the topology failed: %s: %s", sy_strerror(rc),
                              why ? why : "");
        }
    }

    const char *prefix = apply ? "declared " : "";
    printf("%sexchange %s (topic)\n", prefix, t->exchange);
    for (size_t i = 0; i < t->nworkers; i++) {
        if (only && &t->workers[i] != only)
            continue;
        if ((rc = print_worker(&t->workers[i], prefix)) != 0)
            return rc;
    }
    return SYCTL_OK;
}
