/* syctl.h - the operator's command line: exit codes, option parsing, settings, connections and
 * the entry point of each command. Every command returns the process exit status. */
#ifndef SYCTL_H
#define SYCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses scripts rely on; documented in every --help and in README.md. The values of
 * 69 and 78 are sysexits' EX_UNAVAILABLE and EX_CONFIG, which service managers understand. */
enum syctl_exit {
    SYCTL_OK = 0,
    SYCTL_EXIT_FAIL = 1,     /* operation failed: broker nack, database error */
    SYCTL_EXIT_USAGE = 2,    /* unknown command or option, missing argument */
    SYCTL_EXIT_INPUT = 3,    /* bad JSON, schema violation, unknown type */
    SYCTL_EXIT_NOTFOUND = 4, /* no such worker, message id, queue, file */
    SYCTL_EXIT_UNAVAIL = 69, /* a service unreachable */
    SYCTL_EXIT_CONFIG = 78,  /* bad configuration */
};

/* Limits on what an operator hands us or what we scan on their behalf. */
#define SYCTL_INPUT_MAX  (8u * 1024u * 1024u)   /* JSON given to publish */
#define SYCTL_SCAN_MAX   100000u                /* dead letters held at once by one command */
#define SYCTL_HOLD_BYTES (256u * 1024u * 1024u) /* and the bytes of their bodies */
#define SYCTL_LIST_LIMIT 100u                   /* default --limit of dead list */

/* --- Options ------------------------------------------------------------------------------ */

#define SYCTL_MAX_POS  8
#define SYCTL_MAX_OPTS 16

/* One option a command accepts: "--name VALUE" or "--name=VALUE" when has_arg, else a flag.
 * A table ends with a row whose name is NULL. --help and -h are always accepted. */
struct syctl_optspec {
    const char *name;
    bool has_arg;
};

struct syctl_args {
    const char *pos[SYCTL_MAX_POS]; /* positional arguments, borrowed from argv */
    size_t npos;
    const char *val[SYCTL_MAX_OPTS]; /* value of option i (borrowed), or NULL */
    bool set[SYCTL_MAX_OPTS];        /* whether option i was given */
    bool help;
};

/* Parses argv[0..argc) (argv[0] is the first word after the command) against specs. "--" ends
 * the options; "-" alone is positional (it means stdin). 0, or -SY_EINVAL with the reason
 * ("unknown option '--x'", "option '--id' needs a value", "too many arguments") in err. */
int syctl_args_parse(int argc, char **argv, const struct syctl_optspec *specs, struct syctl_args *a,
                     char *err, size_t errlen);

/* A decimal integer within [min, max], nothing else. 0 or -SY_EINVAL. */
int syctl_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                     unsigned long long *out);

/* The text an argument stands for: "@path" a file, "-" or "@-" stdin, anything else itself.
 * At most max bytes; NUL-terminated malloc'd copy into *out (caller frees). 0, -SY_EIO or
 * -SY_ETOOBIG with the reason in err. */
int syctl_read_input(const char *arg, size_t max, char **out, size_t *len, char *err,
                     size_t errlen);

/* The exit status for a runtime error code (negative SY_E...). */
int syctl_exit_for(int err);

/* Writes "syctl: <text>" as one line to stderr (newlines folded, secrets redacted) and returns
 * code, so callers can `return syctl_fail(SYCTL_EXIT_INPUT, "...")`. */
int syctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes j (consumed; NULL stands for a failure to build it) as one line of compact JSON to
 * stdout: SYCTL_OK, or syctl_fail's "<what>: cannot write the output". */
int syctl_print_json(json_t *j, const char *what);

/* Standard base64 of len bytes into a malloc'd NUL-terminated string, or NULL. */
char *syctl_base64(const void *p, size_t len);

/* --- Settings and connections ------------------------------------------------------------- */

/* Which settings (and services) a command uses: selects the environment rows it loads and
 * the ones its --help lists. */
#define SYCTL_NEED_TOPOLOGY 0x1u
#define SYCTL_NEED_SCHEMAS  0x2u
#define SYCTL_NEED_AMQP     0x4u
#define SYCTL_NEED_PG       0x8u
#define SYCTL_NEED_SCHEDULE 0x10u /* the scheduler's schedule file and group */
#define SYCTL_NEED_GRM      0x20u /* sy-grievance's GRM map and the GRM's MySQL server */

struct syctl_conf {
    char *log_level;
    char *topology;
    char *schema_dir;
    char *amqp_url;
    char *pg_url;
    char *migrations_dir;
    char *schedule;
    char *scheduler_group;
    char *grm_map;
    char *grm_mysql_url;
};

struct sy_amqp;
struct sy_pg;
struct sy_topology;
struct sy_topo_worker;
struct sy_schemas;

/* What one run of syctl holds; everything is opened on demand and closed by syctl_close. */
struct syctl {
    const char *command; /* for the AMQP connection name */
    struct syctl_conf conf;
    unsigned loaded; /* SYCTL_NEED_* rows loaded into conf */
    struct sy_topology *topo;
    struct sy_schemas *schemas;
    struct sy_amqp *amqp;
    struct sy_pg *pg;
};

/* Each returns 0 or an exit status after printing the reason (syctl_fail). */
int syctl_load_conf(struct syctl *c, unsigned need);
int syctl_topology(struct syctl *c, const struct sy_topology **out);
int syctl_schemas(struct syctl *c, const struct sy_schemas **out);
int syctl_amqp(struct syctl *c, struct sy_amqp **out);
/* Drops the AMQP connection and opens a new one: after the broker closed the channel (a
 * passive declare of a missing queue does that). */
int syctl_amqp_reopen(struct syctl *c, struct sy_amqp **out);
int syctl_pg(struct syctl *c, struct sy_pg **out);
/* The named worker of the topology, or SYCTL_EXIT_NOTFOUND naming the known ones. */
int syctl_worker(struct syctl *c, const char *name, const struct sy_topo_worker **out);
void syctl_close(struct syctl *c);

/* --- Help --------------------------------------------------------------------------------- */

/* Prints `text` (usage, description, options), then the environment rows of `need` and the
 * exit codes, to stdout. */
void syctl_help(const char *text, unsigned need);

/* --- Commands: argv[0] is the command's name ---------------------------------------------- */

int syctl_cmd_publish(struct syctl *c, int argc, char **argv);
int syctl_cmd_topology(struct syctl *c, int argc, char **argv);
int syctl_cmd_queues(struct syctl *c, int argc, char **argv);
int syctl_cmd_dead(struct syctl *c, int argc, char **argv);
int syctl_cmd_migrate(struct syctl *c, int argc, char **argv);
int syctl_cmd_schedule(struct syctl *c, int argc, char **argv);
int syctl_cmd_apikey(struct syctl *c, int argc, char **argv);
int syctl_cmd_grm(struct syctl *c, int argc, char **argv);
int syctl_cmd_glpi(struct syctl *c, int argc, char **argv);
int syctl_cmd_ingest(struct syctl *c, int argc, char **argv);
int syctl_cmd_optimizer(struct syctl *c, int argc, char **argv);

/* --- Dead letters: what their headers say ------------------------------------------------- */

/* Why, when and after how many attempts a message was dead-lettered, from the runtime's
 * x-sy-* headers or, for the broker's own dead-lettering (delivery limit), from x-death.
 * Strings are "" when unknown; attempts is -1 when unknown. */
struct syctl_dead_info {
    char reason[1024];
    char dead_at[40];
    char routing_key[256];
    long long attempts;
    long long replayed; /* x-sy-replayed of the dead copy, 0 if never replayed */
};
void syctl_dead_info(const json_t *headers, struct syctl_dead_info *out);

#endif
