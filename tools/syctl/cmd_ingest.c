/* cmd_ingest.c - `syctl ingest status`: how each of sy-ingest's sources is doing, from its
 * ledger in PostgreSQL (migration 0007: ingest_sources, document_items, documents). Only reads. */
#include "syctl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/pg.h"

#define SOURCES_MAX 1000

static const char help[] =
    "Usage: syctl ingest status [--json]\n"
    "\n"
    "Each source sy-ingest has polled (\"email:inbox\", ...): when it was last polled and last\n"
    "polled without an error, its cursor (a mailbox's UIDVALIDITY and last UID listed), the\n"
    "items it listed and what became of them (stored as new documents, duplicates of stored\n"
    "bytes, rejected: too large, of a refused type, or gone), the documents it brought, and\n"
    "its last error.\n"
    "\n"
    "Options:\n"
    "  --json           [{\"source\", \"last_poll\", \"last_ok\", \"cursor\", \"listed\",\n"
    "                   \"stored\", \"duplicates\", \"rejected\", \"documents\", "
    "\"last_error\"}];\n"
    "                   times are RFC 3339 UTC, null for never\n"
    "  -h, --help       this help\n";

enum { OPT_JSON };
static const struct syctl_optspec specs[] = {
    [OPT_JSON] = {"json", false},
    {NULL, false},
};

static const char sql_status[] =
    "SELECT s.source,"
    " COALESCE(to_char(s.last_poll_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
    " COALESCE(to_char(s.last_ok_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
    " s.cursor::text, s.listed, s.stored, s.duplicates, s.rejected,"
    " (SELECT count(*) FROM documents d WHERE d.source = s.source), COALESCE(s.last_error, '')"
    " FROM ingest_sources s ORDER BY s.source";

static json_t *time_or_null(const char *s)
{
    return *s ? json_string(s) : json_null();
}

static int status(struct syctl *c, const struct syctl_args *a)
{
    struct sy_pg_res *res = NULL;
    struct sy_pg *pg;
    int rc, rows;

    if (a->npos != 1)
        return syctl_fail(SYCTL_EXIT_USAGE, "ingest status: too many arguments");
    if ((rc = syctl_load_conf(c, SYCTL_NEED_PG)) != 0 || (rc = syctl_pg(c, &pg)) != 0)
        return rc;
    if ((rc = sy_pg_exec(pg, sql_status, 0, NULL, &res)) != 0) {
        sy_pg_res_free(res);
        if (strcmp(sy_pg_sqlstate(pg), "42P01") == 0)
            return syctl_fail(SYCTL_EXIT_FAIL,
                              "ingest status: no ingest tables yet: run 'syctl migrate'");
        return syctl_fail(rc == -SY_ECONN ? SYCTL_EXIT_UNAVAIL : SYCTL_EXIT_FAIL,
                          "ingest status: %s", sy_pg_error(pg));
    }
    rows = sy_pg_res_rows(res);
    if (a->set[OPT_JSON]) {
        json_t *arr = json_array();

        for (int i = 0; arr && i < rows && i < SOURCES_MAX; i++) {
#define G(col) sy_pg_res_get(res, i, col)
            json_t *o =
                json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "source", G(0),
                          "last_poll", time_or_null(G(1)), "last_ok", time_or_null(G(2)), "cursor",
                          json_loads(G(3), 0, NULL), "listed", (json_int_t)atoll(G(4)), "stored",
                          (json_int_t)atoll(G(5)), "duplicates", (json_int_t)atoll(G(6)),
                          "rejected", (json_int_t)atoll(G(7)), "documents", (json_int_t)atoll(G(8)),
                          "last_error", *G(9) ? json_string(G(9)) : json_null());
#undef G
            if (!o || json_array_append_new(arr, o) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        sy_pg_res_free(res);
        return syctl_print_json(arr, "ingest status");
    }
    printf("%-24s  %-20s  %-20s  %-30s  %s\n", "SOURCE", "LAST POLL", "LAST OK", "CURSOR",
           "LISTED/STORED/DUP/REJ  DOCUMENTS  LAST ERROR");
    for (int i = 0; i < rows && i < SOURCES_MAX; i++) {
        char counts[96];

        snprintf(counts, sizeof counts, "%s/%s/%s/%s", sy_pg_res_get(res, i, 4),
                 sy_pg_res_get(res, i, 5), sy_pg_res_get(res, i, 6), sy_pg_res_get(res, i, 7));
        printf("%-24s  %-20s  %-20s  %-30s  %-21s  %-9s  %s\n", sy_pg_res_get(res, i, 0),
               *sy_pg_res_get(res, i, 1) ? sy_pg_res_get(res, i, 1) : "never",
               *sy_pg_res_get(res, i, 2) ? sy_pg_res_get(res, i, 2) : "never",
               sy_pg_res_get(res, i, 3), counts, sy_pg_res_get(res, i, 8),
               *sy_pg_res_get(res, i, 9) ? sy_pg_res_get(res, i, 9) : "-");
    }
    if (rows == 0)
        printf("(no source polled yet)\n");
    sy_pg_res_free(res);
    return SYCTL_OK;
}

int syctl_cmd_ingest(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[512];

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "ingest: %s (see 'syctl ingest --help')", err);
    if (a.help) {
        syctl_help(help, SYCTL_NEED_PG);
        return SYCTL_OK;
    }
    if (!a.npos || strcmp(a.pos[0], "status") != 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "ingest: expected status (see 'syctl ingest --help')");
    return status(c, &a);
}
