/* cmd_migrate.c - `syctl migrate`: apply the PostgreSQL migrations not applied yet. */
#include "syctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sy/err.h"
#include "sy/pg.h"

#define NEED SYCTL_NEED_PG

static const char help[] =
    "Usage: syctl migrate [--dir DIR]\n"
    "\n"
    "Applies, in order, every NNNN_name.sql of the migrations directory that the database\n"
    "(SY_PG_URL) has not recorded in sy_migrations yet, each in its own transaction, under an\n"
    "advisory lock so concurrent runs wait for each other. Prints the name of each migration\n"
    "applied, or 'up to date'. Running it again is harmless.\n"
    "\n"
    "Options:\n"
    "  --dir DIR        the migrations directory (default: SY_MIGRATIONS_DIR)\n"
    "  -h, --help       this help\n";

enum { OPT_DIR };
static const struct syctl_optspec specs[] = {
    [OPT_DIR] = {"dir", true},
    {NULL, false},
};

static void applied(const char *name, void *ud)
{
    size_t *n = ud;
    printf("applied %s\n", name);
    /* Show progress as it happens: a long migration should not look like a hang. */
    fflush(stdout);
    (*n)++;
}

int syctl_cmd_migrate(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[1024];
    struct sy_pg *pg;
    struct stat st;
    size_t n = 0;
    int rc;

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "migrate: %s (see 'syctl migrate --help')", err);
    if (a.help) {
        syctl_help(help, NEED);
        return SYCTL_OK;
    }
    if (a.npos)
        return syctl_fail(SYCTL_EXIT_USAGE, "migrate: unexpected argument '%s'", a.pos[0]);
    if ((rc = syctl_load_conf(c, NEED)) != 0)
        return rc;
    const char *dir = a.val[OPT_DIR] ? a.val[OPT_DIR] : c->conf.migrations_dir;
    /* Checked before connecting, so a typo does not cost a database round trip. */
    int serr = stat(dir, &st) < 0 ? errno : 0;
    if (serr || !S_ISDIR(st.st_mode))
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "migrations directory %s: %s", dir,
                          serr ? strerror(serr) : "not a directory");
    if ((rc = syctl_pg(c, &pg)) != 0)
        return rc;
    rc = sy_pg_migrate(pg, dir, applied, &n, err, sizeof(err));
    if (rc < 0)
        return syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                          "migration failed: %s (%zu applied before it)", err, n);
    if (n == 0)
        printf("up to date\n");
    return SYCTL_OK;
}
