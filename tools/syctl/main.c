/* main.c - syctl's entry point: dispatch to a command, settings from the environment, and the
 * connections a command opens on demand (each command touches only the services it needs). */
#include "syctl.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sy/amqp.h"
#include "sy/config.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/pg.h"
#include "sy/schema.h"
#include "sy/topology.h"

#ifndef SYCTL_VERSION
#define SYCTL_VERSION "0.0.0"
#endif

/* --- Settings: each table is also the Environment section of --help -------------------------*/

#define CONF_ROW(name, type, def, field, flags, help)                                              \
    {                                                                                              \
        name, type, def, 0, 0, offsetof(struct syctl_conf, field), flags, help                     \
    }

static const struct sy_conf_key conf_base[] = {
    /* syctl speaks for itself in plain lines; the runtime's JSON lines are for debugging. */
    CONF_ROW("SY_LOG_LEVEL", SY_CONF_STR, "error", log_level, 0,
             "runtime JSON log lines on stderr: debug, info, warn or error"),
    {0},
};
static const struct sy_conf_key conf_topology[] = {
    CONF_ROW("SY_TOPOLOGY", SY_CONF_STR, SY_DEFAULT_ROOT "/schemas/topology.yaml", topology, 0,
             "topology file: exchange, workers and their routes"),
    {0},
};
static const struct sy_conf_key conf_schemas[] = {
    CONF_ROW("SY_SCHEMA_DIR", SY_CONF_STR, SY_DEFAULT_ROOT "/schemas/messages", schema_dir, 0,
             "directory of message schemas (<type>.yaml)"),
    {0},
};
static const struct sy_conf_key conf_amqp[] = {
    CONF_ROW("SY_AMQP_URL", SY_CONF_URL, "amqp://guest:guest@127.0.0.1:5672/", amqp_url, 0,
             "RabbitMQ (SY_AMQP_URL_FILE: read it from a file)"),
    {0},
};
static const struct sy_conf_key conf_pg[] = {
    CONF_ROW("SY_PG_URL", SY_CONF_URL, NULL, pg_url, SY_CONF_REQUIRED,
             "PostgreSQL, required (SY_PG_URL_FILE: read it from a file)"),
    CONF_ROW("SY_MIGRATIONS_DIR", SY_CONF_STR, SY_DEFAULT_ROOT "/schemas/sql/postgres",
             migrations_dir, 0, "directory of NNNN_name.sql migrations"),
    {0},
};
static const struct sy_conf_key conf_schedule[] = {
    CONF_ROW("SY_SCHEDULE", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/schedule.yaml", schedule,
             0, "the scheduler's schedule file: jobs, when they tick, what they publish"),
    CONF_ROW("SY_SCHEDULER_GROUP", SY_CONF_STR, "default", scheduler_group, 0,
             "the scheduler group whose ledger to read ([A-Za-z0-9._-], at most 64)"),
    {0},
};

static const struct sy_conf_key conf_grm[] = {
    CONF_ROW("SY_GRM_MAP", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/grm.yaml", grm_map, 0,
             "sy-grievance's GRM map: enabled, table, columns, status values"),
    CONF_ROW("SY_GRM_MYSQL_URL", SY_CONF_URL, NULL, grm_mysql_url, 0,
             "the GRM's MySQL server (SY_GRM_MYSQL_URL_FILE: read it from a file)"),
    {0},
};

static const struct {
    unsigned need;
    const struct sy_conf_key *keys;
} conf_tables[] = {
    {0, conf_base},
    {SYCTL_NEED_TOPOLOGY, conf_topology},
    {SYCTL_NEED_SCHEMAS, conf_schemas},
    {SYCTL_NEED_AMQP, conf_amqp},
    {SYCTL_NEED_PG, conf_pg},
    {SYCTL_NEED_SCHEDULE, conf_schedule},
    {SYCTL_NEED_GRM, conf_grm},
};
#define NTABLES (sizeof(conf_tables) / sizeof(conf_tables[0]))

/* The base table is marked loaded with this bit so `need` stays a set of services. */
#define LOADED_BASE 0x100u

int syctl_load_conf(struct syctl *c, unsigned need)
{
    char err[512];

    for (size_t i = 0; i < NTABLES; i++) {
        unsigned bit = conf_tables[i].need ? conf_tables[i].need : LOADED_BASE;
        if ((conf_tables[i].need && !(need & bit)) || (c->loaded & bit))
            continue;
        int rc = sy_conf_load(conf_tables[i].keys, &c->conf, err, sizeof(err));
        if (rc < 0)
            return syctl_fail(SYCTL_EXIT_CONFIG, "%s", err);
        c->loaded |= bit;
        if (bit == LOADED_BASE) {
            enum sy_log_level lvl;
            if (sy_log_level_parse(c->conf.log_level, &lvl) < 0)
                return syctl_fail(SYCTL_EXIT_CONFIG,
                                  "SY_LOG_LEVEL: expected debug, info, warn or error, got '%s'",
                                  c->conf.log_level);
            char instance[32];
            snprintf(instance, sizeof(instance), "%ld", (long)getpid());
            sy_log_init("syctl", instance, lvl);
        }
    }
    return 0;
}

int syctl_topology(struct syctl *c, const struct sy_topology **out)
{
    char err[512];
    int rc = syctl_load_conf(c, SYCTL_NEED_TOPOLOGY);

    if (rc)
        return rc;
    if (!c->topo) {
        c->topo = sy_topology_load(c->conf.topology, err, sizeof(err));
        if (!c->topo)
            return syctl_fail(SYCTL_EXIT_CONFIG, "topology: %s", err);
    }
    *out = c->topo;
    return 0;
}

int syctl_schemas(struct syctl *c, const struct sy_schemas **out)
{
    char err[512];
    int rc = syctl_load_conf(c, SYCTL_NEED_SCHEMAS);

    if (rc)
        return rc;
    if (!c->schemas) {
        c->schemas = sy_schemas_load(c->conf.schema_dir, err, sizeof(err));
        if (!c->schemas)
            return syctl_fail(SYCTL_EXIT_CONFIG, "schemas: %s", err);
    }
    *out = c->schemas;
    return 0;
}

int syctl_amqp(struct syctl *c, struct sy_amqp **out)
{
    char err[512], name[64];
    int rc = syctl_load_conf(c, SYCTL_NEED_AMQP);

    if (rc)
        return rc;
    if (!c->amqp) {
        snprintf(name, sizeof(name), "syctl %s", c->command ? c->command : "");
        /* Heartbeats catch a broker that vanished while a long scan waits on it. */
        c->amqp = sy_amqp_connect(c->conf.amqp_url, name, 30, err, sizeof(err));
        if (!c->amqp)
            return syctl_fail(SYCTL_EXIT_UNAVAIL, "cannot connect to RabbitMQ: %s", err);
    }
    *out = c->amqp;
    return 0;
}

int syctl_amqp_reopen(struct syctl *c, struct sy_amqp **out)
{
    sy_amqp_destroy(c->amqp);
    c->amqp = NULL;
    return syctl_amqp(c, out);
}

int syctl_pg(struct syctl *c, struct sy_pg **out)
{
    char err[512];
    int rc = syctl_load_conf(c, SYCTL_NEED_PG);

    if (rc)
        return rc;
    if (!c->pg) {
        c->pg = sy_pg_connect(c->conf.pg_url, err, sizeof(err));
        if (!c->pg)
            return syctl_fail(SYCTL_EXIT_UNAVAIL, "cannot connect to PostgreSQL: %s", err);
    }
    *out = c->pg;
    return 0;
}

int syctl_worker(struct syctl *c, const char *name, const struct sy_topo_worker **out)
{
    const struct sy_topology *t = NULL;
    int rc = syctl_topology(c, &t);

    if (rc)
        return rc;
    *out = sy_topology_worker(t, name);
    if (*out)
        return 0;

    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < t->nworkers && used < sizeof(known); i++) {
        int n =
            snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", t->workers[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return syctl_fail(SYCTL_EXIT_NOTFOUND, "no worker '%s' in the topology (known: %s)", name,
                      known);
}

void syctl_close(struct syctl *c)
{
    sy_amqp_destroy(c->amqp);
    sy_pg_destroy(c->pg);
    sy_schemas_destroy(c->schemas);
    sy_topology_destroy(c->topo);
    for (size_t i = 0; i < NTABLES; i++)
        sy_conf_free(conf_tables[i].keys, &c->conf);
    memset(c, 0, sizeof(*c));
}

/* --- Help --------------------------------------------------------------------------------- */

static const char exit_codes[] =
    "Exit codes:\n"
    "  0   success\n"
    "  1   operation failed (broker nack, publish not confirmed, database error)\n"
    "  2   usage error (unknown command or option, missing argument)\n"
    "  3   invalid input (bad JSON, schema violation, unknown type, unreadable input file)\n"
    "  4   not found (no such worker, message id or queue; no queue bound for a type)\n"
    "  69  a service is unreachable (RabbitMQ, PostgreSQL)\n"
    "  78  bad configuration (environment, topology, schema or schedule files)\n"
    "Errors go to stderr as one line starting with 'syctl: '; data goes to stdout.\n";

void syctl_help(const char *text, unsigned need)
{
    fputs(text, stdout);
    fputs("\nEnvironment:\n", stdout);
    for (size_t i = 0; i < NTABLES; i++) {
        if (conf_tables[i].need && !(need & conf_tables[i].need))
            continue;
        for (const struct sy_conf_key *k = conf_tables[i].keys; k->name; k++) {
            printf("  %-18s %s\n", k->name, k->help);
            if (k->def) {
                char def[512];
                sy_log_redact(k->def, def, sizeof(def));
                printf("  %-18s default: %s\n", "", def);
            }
        }
    }
    fputs("\n", stdout);
    fputs(exit_codes, stdout);
}

static const char main_help[] =
    "Usage: syctl COMMAND [ARGS...]\n"
    "       syctl --help | --version\n"
    "\n"
    "The operator's command line for Switchyard: publish messages, declare the topology,\n"
    "inspect queues and dead letters, replay them, migrate the database, look at and\n"
    "trigger the scheduler's jobs, and see how the GRM integration is doing.\n"
    "\n"
    "Commands:\n"
    "  publish TYPE JSON|@FILE|-      validate a message against its schema, publish it with\n"
    "                                 a broker confirm, print its id\n"
    "  topology apply [--worker W]    declare the exchange, queues and bindings\n"
    "  queues [--json]                depth and consumers of every worker's queues\n"
    "  dead list|show|replay WORKER   inspect a worker's dead letters, send them back\n"
    "  migrate [--dir DIR]            apply the PostgreSQL migrations not applied yet\n"
    "  schedule list|trigger JOB      the scheduler's jobs, their next and last ticks; publish\n"
    "                                 one tick of a job now\n"
    "  apikey create|list|revoke      the gateway's REST API keys: make one (shown once),\n"
    "                                 list them, revoke one\n"
    "  grm status|history             sy-grievance's link with the legacy GRM database: its\n"
    "                                 state, and its latest exchanges\n"
    "  glpi hook add|list|remove      the GLPI settings of Chatwoot hooks that sy-glpi\n"
    "                                 mirrors\n"
    "  ingest status                  sy-ingest's sources: last poll, cursor, counts, last\n"
    "                                 error\n"
    "  optimizer load|runs|show|export\n"
    "                                 sy-optimizer: load a dataset from CSV files, list runs,\n"
    "                                 show one, export its plan as CSV\n"
    "\n"
    "Run 'syctl help COMMAND' or 'syctl COMMAND --help' for its arguments and options.\n";

static const struct {
    const char *name;
    int (*run)(struct syctl *c, int argc, char **argv);
} commands[] = {
    {"publish", syctl_cmd_publish},     {"topology", syctl_cmd_topology},
    {"queues", syctl_cmd_queues},       {"dead", syctl_cmd_dead},
    {"migrate", syctl_cmd_migrate},     {"schedule", syctl_cmd_schedule},
    {"apikey", syctl_cmd_apikey},       {"grm", syctl_cmd_grm},
    {"glpi", syctl_cmd_glpi},           {"ingest", syctl_cmd_ingest},
    {"optimizer", syctl_cmd_optimizer},
};

static int run(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_help, stderr);
        return SYCTL_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    char *help_argv[4] = {NULL};
    if (strcmp(cmd, "help") == 0 && argc > 2) {
        /* "syctl help dead list" is "syctl dead list --help". */
        if (argc > 4)
            return syctl_fail(SYCTL_EXIT_USAGE, "help: too many arguments");
        help_argv[0] = argv[0];
        help_argv[1] = argv[2];
        help_argv[2] = argc > 3 ? argv[3] : "--help";
        help_argv[3] = argc > 3 ? "--help" : NULL;
        argv = help_argv;
        argc = argc > 3 ? 4 : 3;
        cmd = argv[1];
    } else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        syctl_help(main_help, ~0u);
        return SYCTL_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("syctl %s\n", SYCTL_VERSION);
        return SYCTL_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            struct syctl c = {.command = cmd};
            int rc = commands[i].run(&c, argc - 1, argv + 1);
            syctl_close(&c);
            return rc;
        }
    }
    if (cmd[0] == '-')
        return syctl_fail(SYCTL_EXIT_USAGE, "unknown option '%s' (see 'syctl --help')", cmd);
    return syctl_fail(SYCTL_EXIT_USAGE, "unknown command '%s' (see 'syctl --help')", cmd);
}

int main(int argc, char **argv)
{
    int rc = run(argc, argv);

    /* A full disk or a closed pipe must not look like success to a script. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == SYCTL_OK)
            rc = syctl_fail(SYCTL_EXIT_FAIL, "cannot write the output");
    }
    return rc;
}
