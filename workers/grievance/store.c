/* store.c - a batch of grievance messages into PostgreSQL and the GRM (see store.h and
 * grievance.h). Rows travel to PostgreSQL as one JSON parameter per statement
 * (json_to_recordset), so a batch of submissions costs a handful of statements, not a handful
 * per message. */
#include "grievance/store.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grievance/grm_map.h"
#include "grievance/store_int.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/files.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/msg.h"
#include "sy/mysql.h"
#include "sy/pg.h"
#include "sy/worker.h"

#define PUBLISH_TIMEOUT_MS 5000
#define CUSTOM_MAX         50
#define GRM_PARAMS_MAX     60000 /* placeholders in one upsert (the protocol allows 65535) */
#define GRM_ROWS_MAX       500

/* --- items -------------------------------------------------------------------------------- */

static const char *const kind_types[] = {
    "grievance.user_upsert",   "grievance.submitted",     "grievance.updated",
    "grievance.file_attached", "grievance.status_update", "grm.pull",
};

void gr_verdict(struct gr_item *it, enum sy_verdict v, const char *fmt, ...)
{
    va_list ap;

    if (it->v == SY_REJECT)
        return;
    it->v = v;
    va_start(ap, fmt);
    vsnprintf(it->why, sizeof it->why, fmt, ap);
    va_end(ap);
}

/* --- the store ---------------------------------------------------------------------------- */

struct gr_store *gr_store_new(struct sy_worker *w, const struct grm_map *map, const char *pg_url,
                              const char *mysql_url, const char *files_root, int pull_rounds)
{
    struct gr_store *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    s->w = w;
    s->map = map;
    s->pull_rounds = pull_rounds;
    s->mon_connected = -1;
    s->pg_url = strdup(pg_url);
    s->mysql_url = mysql_url ? strdup(mysql_url) : NULL;
    s->files_root = strdup(files_root);
    if (!s->pg_url || (mysql_url && !s->mysql_url) || !s->files_root) {
        gr_store_free(s);
        return NULL;
    }
    s->stored = sy_counter_get("sy_grievance_messages_stored_total",
                               "grievance messages whose effects PostgreSQL committed", NULL);
    s->pushed = sy_counter_get("sy_grievance_grm_rows_total", "grievance rows written to the GRM",
                               "outcome=\"ok\"");
    s->push_failed = sy_counter_get("sy_grievance_grm_rows_total",
                                    "grievance rows written to the GRM", "outcome=\"failed\"");
    s->pulled = sy_counter_get("sy_grievance_grm_pulled_total",
                               "GRM status changes applied to PostgreSQL", NULL);
    s->conflicts = sy_counter_get("sy_grievance_grm_conflicts_total",
                                  "GRM pulls that found both sides changed", NULL);
    return s;
}

void gr_store_free(struct gr_store *s)
{
    if (!s)
        return;
    sy_pg_destroy(s->pg);
    sy_mysql_destroy(s->my);
    free(s->pg_url);
    free(s->mysql_url);
    free(s->files_root);
    free(s);
}

int gr_pg(struct gr_store *s)
{
    char err[512];

    if (s->pg)
        return 0;
    s->pg = sy_pg_connect(s->pg_url, err, sizeof err);
    if (!s->pg) {
        snprintf(s->pg_err, sizeof s->pg_err, "%s", err);
        return -SY_ECONN;
    }
    return 0;
}

int gr_mysql(struct gr_store *s)
{
    char err[512];

    if (s->my)
        return 0;
    s->my = sy_mysql_connect(s->mysql_url, err, sizeof err);
    if (!s->my) {
        snprintf(s->my_err, sizeof s->my_err, "%s", err);
        return -SY_ECONN;
    }
    return 0;
}

void gr_mysql_drop(struct gr_store *s, int rc)
{
    if (s->my)
        snprintf(s->my_err, sizeof s->my_err, "%s", sy_mysql_error(s->my));
    if (rc == -SY_ECONN || rc == -SY_ETIMEOUT) {
        sy_mysql_destroy(s->my);
        s->my = NULL;
    }
}

/* Runs sql with one JSON parameter; res may be NULL. */
int gr_exec_json(struct gr_store *s, const char *sql, json_t *rows, struct sy_pg_res **res)
{
    char *text = json_dumps(rows, JSON_COMPACT);
    const char *params[1] = {text};
    int rc;

    if (!text)
        return -SY_ENOMEM;
    rc = sy_pg_exec(s->pg, sql, 1, params, res);
    free(text);
    return rc;
}

void gr_monitor(struct gr_store *s, bool grm_ok, const char *err)
{
    int64_t now = sy_mono_ms();

    s->mon_dirty |= s->mon_connected != (grm_ok ? 1 : 0) || (err && strcmp(s->mon_error, err) != 0);
    s->mon_connected = grm_ok ? 1 : 0;
    if (err)
        snprintf(s->mon_error, sizeof s->mon_error, "%s", err);
    if (grm_ok && now - s->mon_push_ms >= MONITOR_EVERY_MS)
        s->mon_dirty = true;
}

void gr_monitor_flush(struct gr_store *s)
{
    const char *params[2] = {s->mon_connected ? "true" : "false", s->mon_error};
    int64_t now = sy_mono_ms();

    if (!s->mon_dirty || !s->pg)
        return;
    /* Best effort, outside any batch's transaction: the figures are for operators, and hot rows
     * locked until a batch commits would make every batch wait for the one before. */
    if (sy_pg_exec(s->pg,
                   "INSERT INTO system_monitoring (component, name, value)"
                   " VALUES ('grm', 'connected', $1), ('grm', 'last_error', NULLIF($2, ''))"
                   " ON CONFLICT (component, name) DO UPDATE SET value = EXCLUDED.value,"
                   " at = CASE WHEN system_monitoring.value IS DISTINCT FROM EXCLUDED.value"
                   " THEN now() ELSE system_monitoring.at END",
                   2, params, NULL) == 0 &&
        s->mon_connected) {
        (void)sy_pg_exec(s->pg,
                         "INSERT INTO system_monitoring (component, name, value)"
                         " VALUES ('grm', 'last_push', 'ok') ON CONFLICT (component, name)"
                         " DO UPDATE SET value = EXCLUDED.value, at = now()",
                         0, NULL, NULL);
        s->mon_push_ms = now;
    }
    s->mon_dirty = false;
}

/* --- checks ------------------------------------------------------------------------------- */

static bool id_ok(const char *s)
{
    size_t n;

    if (!s)
        return false;
    n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    return n >= 1 && n <= 64 && s[n] == '\0';
}

static bool phone_ok(const char *s)
{
    size_t n;

    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    n = strspn(s + 1, "0123456789");
    return s[1 + n] == '\0' && n >= 7 && n <= 15;
}

static const char *str_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* custom: at most 50 fields whose values are strings, numbers, booleans or null. */
static bool custom_ok(json_t *c, const char **bad)
{
    const char *key;
    json_t *v;

    if (!c)
        return true;
    if (!json_is_object(c) || json_object_size(c) > CUSTOM_MAX) {
        *bad = "custom";
        return false;
    }
    json_object_foreach(c, key, v)
    {
        if (json_is_object(v) || json_is_array(v)) {
            *bad = key;
            return false;
        }
    }
    return true;
}

/* What the schema cannot say: id formats, E.164, custom's shape. A failure rejects the
 * message, naming the field. */
static void check_item(struct gr_item *it)
{
    json_t *d = it->data, *ui = json_object_get(d, "user_info");
    const char *bad = NULL;

    it->gid = str_at(d, "grievance_id");
    if (it->kind != K_USER && it->kind != K_PULL && !id_ok(it->gid)) {
        gr_verdict(it, SY_REJECT, "grievance_id: must be 1..64 of [A-Za-z0-9._-]");
        return;
    }
    if (it->kind == K_USER && !phone_ok(str_at(d, "phone_number")))
        gr_verdict(it, SY_REJECT, "phone_number: not an E.164 number ('+' and 7..15 digits)");
    if (ui && !phone_ok(str_at(ui, "phone_number")))
        gr_verdict(it, SY_REJECT,
                   "user_info.phone_number: not an E.164 number ('+' and 7..15 digits)");
    if (!custom_ok(json_object_get(d, "custom"), &bad))
        gr_verdict(it, SY_REJECT,
                   "custom.%s: must be a string, number, boolean or null "
                   "(at most 50 fields)",
                   bad);
    if (it->kind == K_FILE && !id_ok(str_at(d, "file_id")))
        gr_verdict(it, SY_REJECT, "file_id: must be 1..64 of [A-Za-z0-9._-]");
    if (it->kind == K_SUBMITTED) {
        json_t *f;
        size_t i;

        json_array_foreach(json_object_get(d, "files"), i, f)
        {
            if (!id_ok(str_at(f, "file_id"))) {
                gr_verdict(it, SY_REJECT, "files[%zu].file_id: must be 1..64 of [A-Za-z0-9._-]", i);
                break;
            }
        }
    }
}

/* Moves one attachment's base64 into the file store, leaving its sha256 and size in f. */
static void store_file(struct gr_store *s, struct gr_item *it, json_t *f, const char *field)
{
    const char *b64 = str_at(f, "file_data");
    char hex[SY_FILES_HEX_LEN + 1], err[256];
    size_t size = 0;
    int rc;

    rc = sy_files_put_base64(s->files_root, b64, strlen(b64), hex, &size, err, sizeof err);
    if (rc == -SY_EDECODE) {
        gr_verdict(it, SY_REJECT, "%s: not standard base64", field);
        return;
    }
    if (rc != 0) {
        gr_verdict(it, SY_RETRY, "the file store refused %s: %s", field, err);
        return;
    }
    json_object_del(f, "file_data");
    json_object_set_new(f, "sha256", json_string(hex));
    json_object_set_new(f, "size", json_integer((json_int_t)size));
}

static void store_files(struct gr_store *s, struct gr_item *it)
{
    char field[64];
    json_t *f;
    size_t i;

    if (it->kind == K_FILE) {
        store_file(s, it, it->data, "file_data");
        return;
    }
    json_array_foreach(json_object_get(it->data, "files"), i, f)
    {
        snprintf(field, sizeof field, "files[%zu].file_data", i);
        store_file(s, it, f, field);
        if (it->v != SY_ACK)
            return;
    }
}

/* --- PostgreSQL effects ------------------------------------------------------------------- */

static const char sql_tasks_known[] =
    "SELECT task_id, status, result::text FROM tasks"
    " WHERE task_id IN (SELECT json_array_elements_text($1::json))";

/* Marks the items an earlier delivery stored or finished. */
static int load_states(struct gr_store *s, struct gr_item *items, size_t n)
{
    json_t *ids = json_array();
    struct sy_pg_res *res = NULL;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (items[i].kind < K_PULL && items[i].v == SY_ACK)
            json_array_append_new(ids, json_string(items[i].id));
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        return 0;
    }
    rc = gr_exec_json(s, sql_tasks_known, ids, &res);
    json_decref(ids);
    if (rc != 0)
        return rc;
    for (int r = 0; r < sy_pg_res_rows(res); r++) {
        const char *id = sy_pg_res_get(res, r, 0), *st = sy_pg_res_get(res, r, 1);
        const char *result = sy_pg_res_get(res, r, 2);

        for (size_t i = 0; i < n; i++) {
            struct gr_item *it = &items[i];

            if (it->kind >= K_PULL || strcmp(it->id, id) != 0)
                continue;
            if (strcmp(st, "done") == 0) {
                it->state = S_DONE;
            } else if (strcmp(st, "stored") == 0) {
                json_t *done = result ? json_loads(result, 0, NULL) : NULL;

                it->state = S_STORED;
                it->stored = true;
                it->push = it->kind != K_USER && it->kind != K_FILE;
                json_t *a = json_object_get(done, "announce");

                it->announce = json_is_object(a) ? json_incref(a) : NULL;
                json_decref(done);
            }
        }
    }
    sy_pg_res_free(res);
    return 0;
}

static const char sql_users_json[] =
    "INSERT INTO users (phone_number, name)"
    " SELECT phone_number, name FROM json_to_recordset($1::json) AS x(phone_number text, name text)"
    " ON CONFLICT (phone_number) DO UPDATE SET name = EXCLUDED.name, updated_at = now()"
    " WHERE users.name IS DISTINCT FROM EXCLUDED.name";

static const char sql_grievances_json[] =
    "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(grievance_id text,"
    "   phone_number text, project_type text, description text, location text, custom jsonb,"
    "   message_id text, actor text)),"
    " ins AS (INSERT INTO grievances (grievance_id, phone_number, project_type, description,"
    "   location, custom)"
    "   SELECT grievance_id, phone_number, project_type, description, location,"
    "          COALESCE(custom, '{}'::jsonb) FROM x"
    "   ON CONFLICT (grievance_id) DO NOTHING RETURNING grievance_id),"
    " h AS (INSERT INTO status_history (grievance_id, status, created_by, message_id)"
    "   SELECT x.grievance_id, 'submitted', x.actor, x.message_id FROM x JOIN ins USING"
    "   (grievance_id) ON CONFLICT (message_id) DO NOTHING)"
    " SELECT grievance_id FROM ins";

static const char sql_files_json[] =
    "INSERT INTO file_attachments (file_id, grievance_id, file_type, file_name, size, sha256)"
    " SELECT file_id, grievance_id, file_type, file_name, size, sha256"
    " FROM json_to_recordset($1::json) AS x(file_id text, grievance_id text, file_type text,"
    "   file_name text, size bigint, sha256 text)"
    " ON CONFLICT (file_id) DO NOTHING";

static int by_key(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "k")),
                  json_string_value(json_object_get(*(json_t *const *)b, "k")));
}

/* Rows sorted by their "k" (then dropped), so concurrent batches lock in one order. */
static json_t *sorted(json_t *rows)
{
    size_t n = json_array_size(rows);
    json_t **v = malloc((n ? n : 1) * sizeof *v), *out = json_array();

    if (!v || !out) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(rows, i);
    qsort(v, n, sizeof *v, by_key);
    for (size_t i = 0; i < n; i++) {
        json_object_del(v[i], "k");
        json_array_append(out, v[i]);
    }
    free(v);
    return out;
}

/* Adds row under key k, replacing an earlier row of the same key (the later message wins). */
static void put_row(json_t *by, const char *k, json_t *row)
{
    json_object_set_new(row, "k", json_string(k));
    json_object_set_new(by, k, row);
}

static json_t *values_of(json_t *by)
{
    json_t *rows = json_array(), *v, *out;
    const char *k;

    json_object_foreach(by, k, v) json_array_append(rows, v);
    out = sorted(rows);
    json_decref(rows);
    return out;
}

/* The submissions among items, all at once: users, grievances (first submission of an id
 * wins, later ones change nothing), their history rows and their attachments. */
static int apply_submitted(struct gr_store *s, struct gr_item **its, size_t k)
{
    json_t *users = json_object(), *grievances = json_object(), *files = json_object();
    json_t *u = NULL, *g = NULL, *f = NULL;
    int rc = -SY_ENOMEM;

    for (size_t i = 0; i < k; i++) {
        json_t *d = its[i]->data, *ui = json_object_get(d, "user_info"), *x;
        const char *phone = str_at(ui, "phone_number");
        size_t j;

        put_row(users, phone,
                json_pack("{s:s, s:s}", "phone_number", phone, "name", str_at(ui, "name")));
        if (!json_object_get(grievances, its[i]->gid))
            put_row(
                grievances, its[i]->gid,
                json_pack("{s:s, s:s, s:O, s:O, s:O?, s:O?, s:s, s:O}", "grievance_id", its[i]->gid,
                          "phone_number", phone, "project_type", json_object_get(d, "project_type"),
                          "description", json_object_get(d, "description"), "location",
                          json_object_get(d, "location"), "custom", json_object_get(d, "custom"),
                          "message_id", its[i]->id, "actor", json_object_get(d, "actor")));
        json_array_foreach(json_object_get(d, "files"), j, x)
        {
            if (!json_object_get(files, str_at(x, "file_id")))
                put_row(files, str_at(x, "file_id"),
                        json_pack("{s:O, s:s, s:O, s:O?, s:O, s:O}", "file_id",
                                  json_object_get(x, "file_id"), "grievance_id", its[i]->gid,
                                  "file_type", json_object_get(x, "file_type"), "file_name",
                                  json_object_get(x, "file_name"), "size",
                                  json_object_get(x, "size"), "sha256",
                                  json_object_get(x, "sha256")));
        }
    }
    if (!(u = values_of(users)) || !(g = values_of(grievances)) || !(f = values_of(files)))
        goto out;
    rc = gr_exec_json(s, sql_users_json, u, NULL);
    if (rc == 0)
        rc = gr_exec_json(s, sql_grievances_json, g, NULL);
    if (rc == 0 && json_array_size(f) > 0)
        rc = gr_exec_json(s, sql_files_json, f, NULL);
    if (rc == 0)
        for (size_t i = 0; i < k; i++) {
            its[i]->stored = true;
            its[i]->push = true;
        }
out:
    json_decref(users);
    json_decref(grievances);
    json_decref(files);
    json_decref(u);
    json_decref(g);
    json_decref(f);
    return rc;
}

static int apply_user(struct gr_store *s, struct gr_item *it)
{
    json_t *rows =
        json_pack("[{s:O, s:O}]", "phone_number", json_object_get(it->data, "phone_number"), "name",
                  json_object_get(it->data, "name"));
    int rc = gr_exec_json(s, sql_users_json, rows, NULL);

    json_decref(rows);
    return rc;
}

static const char sql_update[] =
    "WITH p AS (SELECT $2::jsonb AS j),"
    " u AS (INSERT INTO users (phone_number, name)"
    "   SELECT j->'user_info'->>'phone_number', j->'user_info'->>'name' FROM p"
    "   WHERE j ? 'user_info' AND j->'user_info' ? 'name'"
    "   ON CONFLICT (phone_number) DO UPDATE SET name = EXCLUDED.name, updated_at = now()"
    "   WHERE users.name IS DISTINCT FROM EXCLUDED.name)"
    " UPDATE grievances g SET"
    "  phone_number = COALESCE(p.j->'user_info'->>'phone_number', g.phone_number),"
    "  project_type = COALESCE(p.j->>'project_type', g.project_type),"
    "  description = COALESCE(p.j->>'description', g.description),"
    "  location = CASE WHEN p.j ? 'location' THEN p.j->>'location' ELSE g.location END,"
    "  custom = CASE WHEN p.j ? 'custom' THEN (g.custom || jsonb_strip_nulls(p.j->'custom'))"
    "    - ARRAY(SELECT key FROM jsonb_each(p.j->'custom') WHERE value = 'null'::jsonb)"
    "    ELSE g.custom END,"
    "  updated_at = now()"
    " FROM p WHERE g.grievance_id = $1";

/* A change of details. The grievance (and a new user it names without a name) must exist. */
static int apply_updated(struct gr_store *s, struct gr_item *it)
{
    char *patch = json_dumps(it->data, JSON_COMPACT);
    const char *params[2] = {it->gid, patch};
    struct sy_pg_res *res = NULL;
    int rc;

    if (!patch)
        return -SY_ENOMEM;
    rc = sy_pg_exec(s->pg, sql_update, 2, params, &res);
    free(patch);
    if (rc == -SY_EDBDATA && strcmp(sy_pg_sqlstate(s->pg), "23503") == 0) {
        gr_verdict(it, SY_RETRY, "user %s is not stored yet",
                   str_at(json_object_get(it->data, "user_info"), "phone_number"));
        rc = 1;
    } else if (rc == 0 && sy_pg_res_affected(res) == 0) {
        gr_verdict(it, SY_RETRY, "grievance %s is not stored yet", it->gid);
        rc = 1;
    } else if (rc == 0) {
        it->push = true;
    }
    sy_pg_res_free(res);
    return rc;
}

static int apply_file(struct gr_store *s, struct gr_item *it)
{
    json_t *rows = json_pack(
        "[{s:O, s:s, s:O, s:O?, s:O, s:O}]", "file_id", json_object_get(it->data, "file_id"),
        "grievance_id", it->gid, "file_type", json_object_get(it->data, "file_type"), "file_name",
        json_object_get(it->data, "file_name"), "size", json_object_get(it->data, "size"), "sha256",
        json_object_get(it->data, "sha256"));
    int rc = gr_exec_json(s, sql_files_json, rows, NULL);

    json_decref(rows);
    if (rc == -SY_EDBDATA && strcmp(sy_pg_sqlstate(s->pg), "23503") == 0) {
        gr_verdict(it, SY_RETRY, "grievance %s is not stored yet", it->gid);
        return 1;
    }
    return rc;
}

static const char sql_status[] =
    "WITH o AS (SELECT grievance_id, status AS old, phone_number FROM grievances"
    "   WHERE grievance_id = $1 FOR UPDATE),"
    " g AS (UPDATE grievances SET status = $2, updated_at = now() FROM o"
    "   WHERE grievances.grievance_id = o.grievance_id RETURNING o.old, o.phone_number),"
    " h AS (INSERT INTO status_history (grievance_id, status, notes, created_by, message_id)"
    "   SELECT $1, $2, $3, $4, $5 FROM g ON CONFLICT (message_id) DO NOTHING)"
    " SELECT old, phone_number, to_char(now() AT TIME ZONE 'UTC',"
    "   'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM g";

static int apply_status(struct gr_store *s, struct gr_item *it)
{
    const char *status = str_at(it->data, "status"), *notes = str_at(it->data, "notes");
    const char *actor = str_at(it->data, "actor");
    const char *params[5] = {it->gid, status, notes, actor, it->id};
    struct sy_pg_res *res = NULL;
    int rc;

    rc = sy_pg_exec(s->pg, sql_status, 5, params, &res);
    if (rc == 0 && sy_pg_res_rows(res) == 0) {
        gr_verdict(it, SY_RETRY, "grievance %s is not stored yet", it->gid);
        rc = 1;
    } else if (rc == 0) {
        it->announce = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s}", "grievance_id", it->gid,
                                 "status", status, "previous_status", sy_pg_res_get(res, 0, 0),
                                 "phone_number", sy_pg_res_get(res, 0, 1), "notes", notes,
                                 "changed_by", actor, "at", sy_pg_res_get(res, 0, 2));
        rc = it->announce ? 0 : -SY_ENOMEM;
        it->push = true;
    }
    sy_pg_res_free(res);
    return rc;
}

/* One message's effects under a savepoint: data PostgreSQL refuses rejects it alone. 0 when
 * the batch may go on (whatever this item's verdict), else the error that ends it. */
static int apply_one(struct gr_store *s, struct gr_item *it)
{
    int rc;

    if ((rc = sy_pg_exec(s->pg, "SAVEPOINT one", 0, NULL, NULL)) != 0)
        return rc;
    switch (it->kind) {
    case K_USER:
        rc = apply_user(s, it);
        break;
    case K_SUBMITTED:
        rc = apply_submitted(s, &it, 1);
        break;
    case K_UPDATED:
        rc = apply_updated(s, it);
        break;
    case K_FILE:
        rc = apply_file(s, it);
        break;
    case K_STATUS:
        rc = apply_status(s, it);
        break;
    default:
        break;
    }
    if (rc == 0) {
        it->stored = true;
        return sy_pg_exec(s->pg, "RELEASE SAVEPOINT one", 0, NULL, NULL);
    }
    if (rc == -SY_EDBDATA)
        gr_verdict(it, SY_REJECT, "PostgreSQL refused it: %s", sy_pg_error(s->pg));
    else if (rc != 1)
        return rc; /* the store itself failed: the whole batch waits */
    it->push = false;
    json_decref(it->announce);
    it->announce = NULL;
    rc = sy_pg_exec(s->pg, "ROLLBACK TO SAVEPOINT one", 0, NULL, NULL);
    return rc == 0 ? sy_pg_exec(s->pg, "RELEASE SAVEPOINT one", 0, NULL, NULL) : rc;
}

/* The effects of every new item, kind by kind (users first, status changes last, so a batch
 * holding a submission and its first status change applies them in that order). fast: the
 * submissions together in one go; else each under its own savepoint. */
static int apply_all(struct gr_store *s, struct gr_item *items, size_t n, bool fast)
{
    struct gr_item **subs = malloc((n ? n : 1) * sizeof *subs);
    size_t k = 0;
    int rc = 0;

    if (!subs)
        return -SY_ENOMEM;
    for (int kind = K_USER; kind < K_PULL && rc == 0; kind++) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct gr_item *it = &items[i];

            if ((int)it->kind != kind || it->state != S_NEW || it->v != SY_ACK)
                continue;
            if (kind == K_SUBMITTED && fast)
                subs[k++] = it;
            else
                rc = apply_one(s, it);
        }
        if (kind == K_SUBMITTED && k > 0 && rc == 0)
            rc = apply_submitted(s, subs, k);
    }
    free(subs);
    return rc;
}

/* --- the ledger ---------------------------------------------------------------------------- */

static const char sql_tasks_json[] =
    "INSERT INTO tasks (task_id, task_name, status, result, error)"
    " SELECT task_id, task_name, status, result, error FROM json_to_recordset($1::json)"
    "   AS x(task_id text, task_name text, status text, result jsonb, error text)"
    " ON CONFLICT (task_id) DO UPDATE SET status = EXCLUDED.status, result = EXCLUDED.result,"
    "   error = EXCLUDED.error, retry_count = tasks.retry_count + 1, updated_at = now()";

/* A task row per item that got somewhere: stored (GRM copy or announcement due), done, or
 * rejected with its reason. */
static int record_tasks(struct gr_store *s, struct gr_item *items, size_t n)
{
    json_t *rows = json_array();
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        struct gr_item *it = &items[i];
        const char *status;

        if (it->kind >= K_PULL || it->state == S_DONE)
            continue;
        if (it->v == SY_REJECT)
            status = "rejected";
        else if (!it->stored)
            continue; /* nothing happened: its retry starts afresh */
        else if (it->v == SY_RETRY || it->announce)
            status = "stored";
        else
            status = "done";
        json_array_append_new(rows,
                              json_pack("{s:s, s:s, s:s, s:{s:s?, s:O*}, s:s?}", "task_id", it->id,
                                        "task_name", kind_types[it->kind], "status", status,
                                        "result", "grievance_id", it->gid, "announce", it->announce,
                                        "error", it->v == SY_ACK ? NULL : it->why));
    }
    if (json_array_size(rows) > 0)
        rc = gr_exec_json(s, sql_tasks_json, rows, NULL);
    json_decref(rows);
    return rc;
}

/* --- announcements ------------------------------------------------------------------------ */

/* Announces every status change PostgreSQL now holds, whether or not the GRM took its copy:
 * the citizen hears of it once it is recorded. A task left for a retry (its GRM copy) forgets
 * its announcement, so the retry does not make it again. */
static void announce(struct gr_store *s, struct gr_item *items, size_t n)
{
    json_t *done = json_array(), *said = json_array();

    for (size_t i = 0; i < n; i++) {
        struct gr_item *it = &items[i];
        char id[SY_MSG_ID_MAX + 1];
        void *mp = NULL;
        size_t len = 0;
        int rc = 0;

        if (!it->announce || !it->stored || it->v == SY_REJECT)
            continue;
        snprintf(id, sizeof id, "status:%.*s", SY_MSG_ID_MAX - 7, it->id);
        if (s->w && (rc = sy_json_to_msgpack(it->announce, &mp, &len)) == 0)
            rc = sy_worker_publish(s->w, "grievance.status_changed", id, mp, len,
                                   PUBLISH_TIMEOUT_MS, NULL);
        free(mp);
        if (rc != 0)
            gr_verdict(it, sy_err_retriable(rc) ? SY_RETRY : SY_REJECT,
                       "grievance.status_changed not published: %s", sy_strerror(rc));
        else
            json_array_append_new(it->v == SY_ACK ? done : said, json_string(it->id));
    }
    /* If these fail, the tasks still say stored with their announcement: a redelivery makes
     * it again under the same id, which consumers drop. */
    if (json_array_size(done) > 0 &&
        gr_exec_json(s,
                     "UPDATE tasks SET status = 'done', updated_at = now()"
                     " WHERE task_id IN (SELECT json_array_elements_text($1::json))",
                     done, NULL) != 0)
        sy_log_write(SY_LOG_WARN, "grievance.ledger", -1, sy_pg_error(s->pg),
                     "could not mark %zu announced task(s) done", json_array_size(done));
    if (json_array_size(said) > 0 &&
        gr_exec_json(s,
                     "UPDATE tasks SET result = result - 'announce', updated_at = now()"
                     " WHERE task_id IN (SELECT json_array_elements_text($1::json))",
                     said, NULL) != 0)
        sy_log_write(SY_LOG_WARN, "grievance.ledger", -1, sy_pg_error(s->pg),
                     "could not record %zu announcement(s) made", json_array_size(said));
    json_decref(done);
    json_decref(said);
}

/* --- the batch ---------------------------------------------------------------------------- */

static void all_retry(struct gr_item *items, size_t n, int rc, const char *what, const char *detail)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].kind < K_PULL && items[i].state != S_DONE)
            gr_verdict(&items[i], SY_RETRY, "%s: %s (%s)", what, sy_strerror(rc), detail);
}

static void reset(struct gr_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct gr_item *it = &items[i];

        if (it->state == S_NEW) {
            it->stored = it->push = false;
            json_decref(it->announce);
            it->announce = NULL;
            if (it->v0 == SY_ACK) {
                it->v = SY_ACK;
                it->why[0] = '\0';
            }
        }
    }
}

/* One attempt at the batch in one transaction. */
static int run(struct gr_store *s, struct gr_item *items, size_t n, bool fast)
{
    int rc;

    if ((rc = sy_pg_begin(s->pg)) != 0)
        return rc;
    if ((rc = apply_all(s, items, n, fast)) == 0)
        rc = gr_push(s, items, n);
    if (rc == 0)
        rc = record_tasks(s, items, n);
    if (rc == 0)
        rc = sy_pg_commit(s->pg);
    if (rc != 0)
        sy_pg_rollback(s->pg);
    return rc;
}

void gr_store_batch(struct gr_store *s, struct sy_msg **msgs, size_t n)
{
    struct gr_item *items = calloc(n ? n : 1, sizeof *items);
    int rc;

    if (!items) {
        for (size_t i = 0; i < n; i++)
            sy_msg_fail(msgs[i], SY_RETRY, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct gr_item *it = &items[i];
        int k = 0;

        it->msg = msgs[i];
        it->id = sy_msg_id(msgs[i]);
        /* A message in the batch twice (a redelivery meeting its original): the first does
         * the work, the other is acked with nothing to do. */
        for (size_t j = 0; j < i && it->kind != K_OTHER; j++)
            if (strcmp(items[j].id, it->id) == 0)
                it->kind = K_OTHER;
        if (it->kind == K_OTHER)
            continue;
        while (k < K_OTHER && strcmp(kind_types[k], sy_msg_type(msgs[i])) != 0)
            k++;
        it->kind = (enum gr_kind)k;
        if (k == K_OTHER) {
            gr_verdict(it, SY_REJECT,
                       "sy-grievance does not handle %s (a binding left from an older topology?)",
                       sy_msg_type(msgs[i]));
            continue;
        }
        if (it->kind == K_PULL)
            continue;
        if (!(it->data = sy_msg_data_json(msgs[i])))
            gr_verdict(it, SY_RETRY, "out of memory");
        else
            check_item(it);
    }

    if ((rc = gr_pg(s)) != 0) {
        all_retry(items, n, rc, "PostgreSQL is unreachable", s->pg_err);
        goto verdicts;
    }
    if ((rc = load_states(s, items, n)) != 0) {
        all_retry(items, n, rc, "PostgreSQL", sy_pg_error(s->pg));
        goto verdicts;
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].state == S_NEW && items[i].v == SY_ACK &&
            (items[i].kind == K_SUBMITTED || items[i].kind == K_FILE))
            store_files(s, &items[i]);
    for (size_t i = 0; i < n; i++)
        items[i].v0 = items[i].v;

    rc = run(s, items, n, true);
    if (rc == -SY_EDBDATA) {
        /* Somebody's data broke a statement for all: find whose, one savepoint each. */
        sy_log_write(SY_LOG_WARN, "grievance.batch", -1, sy_pg_error(s->pg),
                     "a batch of %zu was refused as a whole; applying it message by message", n);
        reset(items, n);
        rc = run(s, items, n, false);
    }
    if (rc != 0) {
        all_retry(items, n, rc, "PostgreSQL", sy_pg_error(s->pg));
        if (rc == -SY_ECONN) {
            sy_pg_destroy(s->pg);
            s->pg = NULL;
        }
        goto verdicts;
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].stored && items[i].state == S_NEW)
            sy_counter_add(s->stored, 1);
    announce(s, items, n);
    gr_monitor_flush(s);

verdicts:
    for (size_t i = 0; i < n; i++) {
        struct gr_item *it = &items[i];

        if (it->kind == K_PULL)
            gr_pull(s, it->msg);
        else if (it->v != SY_ACK)
            sy_msg_fail(it->msg, it->v, "%s", it->why);
        json_decref(it->data);
        json_decref(it->announce);
    }
    free(items);
}
