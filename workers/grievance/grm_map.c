/* grm_map.c - grm.yaml read and checked once, and the GRM's SQL and row parameters made from
 * it: the upsert of grievances, the pull of changed statuses, and the status words both ways. */
#include "grievance/grm_map.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sy/doc.h"
#include "sy/err.h"
#include "sy/mysql.h"

#define COLUMN_MAX         64 /* bytes of a MySQL identifier */
#define QUOTED_MAX         (2 * COLUMN_MAX + 3)
#define CUSTOM_MAX         64  /* custom fields in one map */
#define VALUE_MAX          256 /* a value's text after ${} expansion, NUL included */
#define PULL_BATCH_DEFAULT 500
#define PULL_BATCH_MAX     10000
#define UPSERT_ROWS_MAX    1000
#define WHY_MAX            512

/* Our fields, in the order the defaults put them in a row, with the default GRM columns (those
 * of schemas/sql/grm-mysql/0001_grm.sql). */
static const struct {
    const char *field, *column;
} our_fields[] = {
    {"user_full_name", "complainant_name"},
    {"user_contact_phone", "contact_phone"},
    {"grievance_details", "grievance_description"},
    {"grievance_location", "location"},
    {"classification_status", "status"},
    {"project_type", "project_type"},
    {"submitted_at", "submitted_at"},
};
#define NFIELDS (sizeof our_fields / sizeof our_fields[0])

/* Our statuses (the CHECK of grievances.status); the defaults map each to itself. */
static const char *const our_statuses[] = {"pending", "submitted", "under_evaluation", "resolved",
                                           "denied"};
#define NSTATUSES (sizeof our_statuses / sizeof our_statuses[0])

static const char *const top_keys[] = {"enabled", "table",  "key",        "updated", "fields",
                                       "custom",  "status", "pull_batch", NULL};

#define STATUS_FIELD "classification_status"
#define KEY_FIELD    "grievance_id"

/* One column of the upsert row. */
struct col {
    char *field;  /* ours: "grievance_id", "user_full_name", "custom.ward_no" */
    char *name;   /* the GRM column, as configured */
    char *quoted; /* `name`, ready for SQL */
    int line;     /* where the file named it (0: a default) */
};

struct grm_map {
    bool enabled;
    size_t pull_batch;
    char *table, *qtable;
    char *updated, *qupdated;
    struct col cols[1 + NFIELDS + CUSTOM_MAX]; /* the key, the mapped fields, the custom ones */
    size_t ncols;
    size_t status_col; /* index of classification_status in cols */
    char *status[NSTATUSES];
};

struct loader {
    const char *path;
    char *err;
    size_t errlen;
};

static int fail(const struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "path:line: why" into the caller's err; always -SY_ECONFIG, for `return fail(...)`. */
static int fail(const struct loader *ld, int line, const char *fmt, ...)
{
    char why[WHY_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    sy_errf(ld->err, ld->errlen, "%s:%d: %s", ld->path, line, why);
    return -SY_ECONFIG;
}

/* A scalar value of `key` (a path for messages: "fields.user_full_name") after ${} expansion.
 * `what` says what was expected when the value is missing, null or not a scalar. */
static int read_value(const struct loader *ld, const struct sy_node *n, const char *key,
                      const char *what, char *out, size_t outsz)
{
    char why[WHY_MAX];
    const char *raw = sy_node_str(n);

    if (!raw || sy_node_is_null(n))
        return fail(ld, sy_node_line(n), "%s: expected %s", key, what);
    if (sy_doc_expand_env(raw, out, outsz, why, sizeof why) != 0)
        return fail(ld, sy_node_line(n), "%s: %s", key, why);
    return 0;
}

/* "'v'" or "'v' (from '${...}')", for messages about a value that may have been expanded. */
static void shown(const struct sy_node *n, const char *val, char *buf, size_t bufsz)
{
    const char *raw = sy_node_str(n);

    if (raw && strcmp(raw, val) != 0)
        snprintf(buf, bufsz, "'%.64s' (from '%.64s')", val, raw);
    else
        snprintf(buf, bufsz, "'%.64s'", val);
}

static int read_bool(const struct loader *ld, const struct sy_node *n, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    char val[VALUE_MAX], show[2 * 64 + 16];
    int rc = read_value(ld, n, key, "true or false", val, sizeof val);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(val, yes[i]) == 0 || strcasecmp(val, no[i]) == 0) {
            *out = strcasecmp(val, yes[i]) == 0;
            return 0;
        }
    }
    shown(n, val, show, sizeof show);
    return fail(ld, sy_node_line(n), "%s: expected true/false, yes/no or on/off, got %s", key,
                show);
}

static int read_size(const struct loader *ld, const struct sy_node *n, const char *key, size_t min,
                     size_t max, size_t *out)
{
    char val[VALUE_MAX], show[2 * 64 + 16], *end = NULL;
    unsigned long long v = 0;
    int rc = read_value(ld, n, key, "a number", val, sizeof val);

    if (rc != 0)
        return rc;
    errno = 0;
    if (val[0] >= '0' && val[0] <= '9')
        v = strtoull(val, &end, 10);
    if (!end || *end != '\0' || errno == ERANGE || v < min || v > max) {
        shown(n, val, show, sizeof show);
        return fail(ld, sy_node_line(n), "%s: expected a whole number from %zu to %zu, got %s", key,
                    min, max, show);
    }
    *out = (size_t)v;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A column name of 1..COLUMN_MAX bytes into *name and its quoted form into *quoted. */
static int read_column(const struct loader *ld, const struct sy_node *n, const char *key,
                       char **name, char **quoted)
{
    char val[VALUE_MAX], q[QUOTED_MAX];
    int rc = read_value(ld, n, key, "a GRM column name", val, sizeof val);

    if (rc != 0)
        return rc;
    if (val[0] == '\0' || strlen(val) > COLUMN_MAX)
        return fail(ld, sy_node_line(n), "%s: a GRM name is 1 to %d bytes, got %zu ('%.80s')", key,
                    COLUMN_MAX, strlen(val), val);
    if (sy_mysql_quote_ident(val, q, sizeof q) != 0)
        return fail(ld, sy_node_line(n), "%s: '%.80s' cannot be a GRM name", key, val);
    *name = strdup(val);
    *quoted = strdup(q);
    return *name && *quoted ? 0 : -SY_ENOMEM;
}

/* A section that is absent or null takes the defaults; otherwise it must be a map. */
static const struct sy_node *section(const struct loader *ld, const struct sy_node *root,
                                     const char *key, const char *what, int *rc)
{
    const struct sy_node *n = sy_node_get(root, key);

    *rc = 0;
    if (!n || (sy_node_kind(n) == SY_NODE_SCALAR && sy_node_is_null(n)))
        return NULL;
    if (sy_node_kind(n) != SY_NODE_MAP)
        *rc = fail(ld, sy_node_line(n), "%s: expected a map of %s", key, what);
    return n;
}

static int add_col(struct grm_map *m, const char *field, const char *name, const char *quoted,
                   int line)
{
    struct col *c = &m->cols[m->ncols++];

    c->field = strdup(field);
    c->name = dup_or_null(name);
    c->quoted = dup_or_null(quoted);
    c->line = line;
    return c->field && c->name && c->quoted ? 0 : -SY_ENOMEM;
}

static int load_fields(const struct loader *ld, struct grm_map *m, const struct sy_node *root)
{
    char key[96], list[256] = "", q[QUOTED_MAX];
    int rc;
    const struct sy_node *sec = section(ld, root, "fields", "our field to a GRM column", &rc);

    if (rc != 0)
        return rc;
    if (!sec) {
        for (size_t i = 0; i < NFIELDS; i++) {
            if ((rc = sy_mysql_quote_ident(our_fields[i].column, q, sizeof q)) != 0 ||
                (rc = add_col(m, our_fields[i].field, our_fields[i].column, q, 0)) != 0)
                return rc;
        }
        return 0;
    }
    for (size_t i = 0, used = 0; i < NFIELDS; i++) {
        int w =
            snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", our_fields[i].field);

        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    for (size_t i = 0; i < sy_node_len(sec); i++) {
        const char *field;
        const struct sy_node *n = sy_node_at(sec, i, &field);
        struct col *c;
        size_t f = 0;

        while (f < NFIELDS && strcmp(field, our_fields[f].field) != 0)
            f++;
        if (f == NFIELDS && strcmp(field, KEY_FIELD) == 0)
            return fail(ld, sy_node_line(n),
                        "fields.%s: grievance_id is always written, to the column named by 'key'",
                        field);
        if (f == NFIELDS)
            return fail(ld, sy_node_line(n), "fields: '%.64s' is not one of our fields (%s)", field,
                        list);
        snprintf(key, sizeof key, "fields.%s", field);
        c = &m->cols[m->ncols++];
        c->line = sy_node_line(n);
        if (!(c->field = strdup(field)))
            return -SY_ENOMEM;
        if ((rc = read_column(ld, n, key, &c->name, &c->quoted)) != 0)
            return rc;
    }
    return 0;
}

/* Custom names: 1..64 of [A-Za-z0-9_]. */
static bool valid_custom_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    }
    return true;
}

static int load_custom(const struct loader *ld, struct grm_map *m, const struct sy_node *root)
{
    char key[96], field[80];
    int rc;
    const struct sy_node *sec =
        section(ld, root, "custom", "custom field name to a GRM column", &rc);

    if (rc != 0 || !sec)
        return rc;
    if (sy_node_len(sec) > CUSTOM_MAX)
        return fail(ld, sy_node_line(sec), "custom: at most %d custom fields, got %zu", CUSTOM_MAX,
                    sy_node_len(sec));
    for (size_t i = 0; i < sy_node_len(sec); i++) {
        const char *name;
        const struct sy_node *n = sy_node_at(sec, i, &name);
        struct col *c;

        if (!valid_custom_name(name))
            return fail(ld, sy_node_line(n),
                        "custom: '%.80s' is not a custom field name (1 to 64 of A-Z, a-z, 0-9, _)",
                        name);
        snprintf(key, sizeof key, "custom.%s", name);
        snprintf(field, sizeof field, "custom.%s", name);
        c = &m->cols[m->ncols++];
        c->line = sy_node_line(n);
        if (!(c->field = strdup(field)))
            return -SY_ENOMEM;
        if ((rc = read_column(ld, n, key, &c->name, &c->quoted)) != 0)
            return rc;
    }
    return 0;
}

static int load_status(const struct loader *ld, struct grm_map *m, const struct sy_node *root)
{
    char key[96], val[VALUE_MAX];
    int lines[NSTATUSES] = {0}, rc;
    const struct sy_node *sec = section(ld, root, "status", "our status to the GRM's value", &rc);

    if (rc != 0)
        return rc;
    if (!sec) {
        for (size_t s = 0; s < NSTATUSES; s++)
            if (!(m->status[s] = strdup(our_statuses[s])))
                return -SY_ENOMEM;
        return 0;
    }
    for (size_t i = 0; i < sy_node_len(sec); i++) {
        const char *ours;
        const struct sy_node *n = sy_node_at(sec, i, &ours);
        size_t s = 0;

        while (s < NSTATUSES && strcmp(ours, our_statuses[s]) != 0)
            s++;
        if (s == NSTATUSES)
            return fail(ld, sy_node_line(n),
                        "status: '%.64s' is not one of our statuses (pending, submitted, "
                        "under_evaluation, resolved, denied)",
                        ours);
        snprintf(key, sizeof key, "status.%s", ours);
        if ((rc = read_value(ld, n, key, "the GRM's value for it", val, sizeof val)) != 0)
            return rc;
        if (val[0] == '\0')
            return fail(ld, sy_node_line(n), "status.%s: the GRM's value is empty", ours);
        /* Compared without regard to case, as MySQL's usual collations compare them: two
         * values that differ only in case could not be told apart on the way back. */
        for (size_t o = 0; o < NSTATUSES; o++) {
            if (m->status[o] && strcasecmp(m->status[o], val) == 0)
                return fail(ld, sy_node_line(n),
                            "status.%s: '%.80s' is already the GRM value of %s (line %d); each "
                            "status needs its own",
                            ours, val, our_statuses[o], lines[o]);
        }
        if (!(m->status[s] = strdup(val)))
            return -SY_ENOMEM;
        lines[s] = sy_node_line(n);
    }
    for (size_t s = 0; s < NSTATUSES; s++) {
        if (!m->status[s])
            return fail(ld, sy_node_line(sec), "status: our status '%s' has no GRM value",
                        our_statuses[s]);
    }
    return 0;
}

/* Where the file names a column, for messages: "key", "fields.user_full_name", "custom.x". */
static void col_path(const struct grm_map *m, const struct col *c, char *buf, size_t bufsz)
{
    if (c == &m->cols[0])
        snprintf(buf, bufsz, "key");
    else if (strncmp(c->field, "custom.", 7) == 0)
        snprintf(buf, bufsz, "%s", c->field);
    else
        snprintf(buf, bufsz, "fields.%s%s", c->field, c->line ? "" : " (a default)");
}

/* Every column once (MySQL names are compared without regard to case), the updated column
 * never written, and our status always mapped. */
static int check_columns(const struct loader *ld, struct grm_map *m, int root_line)
{
    char here[96], there[96];
    bool status = false;

    for (size_t i = 0; i < m->ncols; i++) {
        const struct col *c = &m->cols[i];
        int line = c->line ? c->line : root_line;

        if (strcmp(c->field, STATUS_FIELD) == 0) {
            status = true;
            m->status_col = i;
        }
        col_path(m, c, here, sizeof here);
        if (strcasecmp(c->name, m->updated) == 0)
            return fail(ld, line, "%s: '%s' is the updated column, which the GRM sets itself", here,
                        c->name);
        for (size_t o = 0; o < i; o++) {
            if (strcasecmp(c->name, m->cols[o].name) == 0) {
                col_path(m, &m->cols[o], there, sizeof there);
                return fail(ld, line, "%s: column '%s' is already written for %s", here, c->name,
                            there);
            }
        }
    }
    if (!status)
        return fail(ld, root_line, "fields: classification_status must be mapped to a GRM column");
    return 0;
}

static int load_root(const struct loader *ld, struct grm_map *m, const struct sy_doc *doc)
{
    const struct sy_node *root = sy_doc_root(doc), *n;
    char *key = NULL, *qkey = NULL;
    int rc, line;

    if (!root || sy_node_kind(root) != SY_NODE_MAP)
        return fail(ld, root ? sy_node_line(root) : 1,
                    "expected a map with table, key and updated (the GRM's table and columns)");
    line = sy_node_line(root);
    if ((rc = sy_node_check_keys(doc, root, top_keys, ld->err, ld->errlen)) != 0)
        return rc;

    m->enabled = true;
    if ((n = sy_node_get(root, "enabled")) && (rc = read_bool(ld, n, "enabled", &m->enabled)) != 0)
        return rc;
    m->pull_batch = PULL_BATCH_DEFAULT;
    if ((n = sy_node_get(root, "pull_batch")) &&
        (rc = read_size(ld, n, "pull_batch", 1, PULL_BATCH_MAX, &m->pull_batch)) != 0)
        return rc;

    if (!(n = sy_node_get(root, "table")))
        return fail(ld, line, "table: missing (the GRM table grievances are written to)");
    if ((rc = read_column(ld, n, "table", &m->table, &m->qtable)) != 0)
        return rc;
    if (!(n = sy_node_get(root, "key")))
        return fail(ld, line, "key: missing (the GRM column holding our grievance_id)");
    if ((rc = read_column(ld, n, "key", &key, &qkey)) == 0)
        rc = add_col(m, KEY_FIELD, key, qkey, sy_node_line(n));
    free(key);
    free(qkey);
    if (rc != 0)
        return rc;
    if (!(n = sy_node_get(root, "updated")))
        return fail(ld, line, "updated: missing (the GRM column set whenever a row changes)");
    if ((rc = read_column(ld, n, "updated", &m->updated, &m->qupdated)) != 0)
        return rc;

    if ((rc = load_fields(ld, m, root)) != 0 || (rc = load_custom(ld, m, root)) != 0 ||
        (rc = check_columns(ld, m, line)) != 0)
        return rc;
    return load_status(ld, m, root);
}

struct grm_map *grm_map_load(const char *path, char *err, size_t errlen)
{
    struct loader ld = {.path = path, .err = err, .errlen = errlen};
    struct grm_map *m = NULL;
    struct sy_doc *doc = sy_doc_load_file(path, err, errlen);
    int rc;

    if (!doc)
        return NULL;
    if (!(m = calloc(1, sizeof *m))) {
        sy_errf(err, errlen, "%s: %s", path, sy_strerror(-SY_ENOMEM));
        goto out;
    }
    rc = load_root(&ld, m, doc);
    if (rc == -SY_ENOMEM)
        sy_errf(err, errlen, "%s: %s", path, sy_strerror(rc));
    if (rc != 0) {
        grm_map_free(m);
        m = NULL;
    }
out:
    sy_doc_destroy(doc);
    return m;
}

void grm_map_free(struct grm_map *m)
{
    if (!m)
        return;
    free(m->table);
    free(m->qtable);
    free(m->updated);
    free(m->qupdated);
    for (size_t i = 0; i < m->ncols; i++) {
        free(m->cols[i].field);
        free(m->cols[i].name);
        free(m->cols[i].quoted);
    }
    for (size_t s = 0; s < NSTATUSES; s++)
        free(m->status[s]);
    free(m);
}

bool grm_map_enabled(const struct grm_map *m)
{
    return m && m->enabled;
}

size_t grm_map_pull_batch(const struct grm_map *m)
{
    return m ? m->pull_batch : 0;
}

const char *grm_status_to_grm(const struct grm_map *m, const char *ours)
{
    for (size_t s = 0; m && ours && s < NSTATUSES; s++)
        if (strcmp(ours, our_statuses[s]) == 0)
            return m->status[s];
    return NULL;
}

const char *grm_status_from_grm(const struct grm_map *m, const char *theirs)
{
    for (size_t s = 0; m && theirs && s < NSTATUSES; s++)
        if (strcasecmp(theirs, m->status[s]) == 0)
            return our_statuses[s];
    return NULL;
}

size_t grm_map_ncols(const struct grm_map *m)
{
    return m ? m->ncols : 0;
}

int grm_map_row(const struct grm_map *m, grm_lookup_fn lookup, void *ud, const char **params,
                char *err, size_t errlen)
{
    for (size_t i = 0; i < m->ncols; i++) {
        const char *v = lookup(ud, m->cols[i].field);

        if (i == 0 && !v) {
            sy_errf(err, errlen, "%s: missing", KEY_FIELD);
            return -1;
        }
        if (i == m->status_col) {
            const char *theirs = grm_status_to_grm(m, v);

            if (!theirs) {
                if (v)
                    sy_errf(err, errlen, "%s: '%.64s' has no GRM value in the status map",
                            STATUS_FIELD, v);
                else
                    sy_errf(err, errlen, "%s: missing", STATUS_FIELD);
                return -1;
            }
            v = theirs;
        }
        params[i] = v;
    }
    return 0;
}

/* SQL text grown piece by piece; a failed allocation is remembered and reported at the end. */
struct sql {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct sql *s, const char *text)
{
    size_t n = strlen(text);

    if (s->oom)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        char *p;

        while (cap < s->len + n + 1)
            cap *= 2;
        if (!(p = realloc(s->p, cap))) {
            s->oom = true;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, text, n + 1);
    s->len += n;
}

static char *done(struct sql *s)
{
    if (s->oom) {
        free(s->p);
        return NULL;
    }
    return s->p;
}

char *grm_map_upsert_sql(const struct grm_map *m, size_t nrows)
{
    struct sql s = {0};

    if (!m || nrows < 1 || nrows > UPSERT_ROWS_MAX)
        return NULL;
    put(&s, "INSERT INTO ");
    put(&s, m->qtable);
    put(&s, " (");
    for (size_t i = 0; i < m->ncols; i++) {
        put(&s, i ? ", " : "");
        put(&s, m->cols[i].quoted);
    }
    put(&s, ") VALUES ");
    for (size_t r = 0; r < nrows; r++) {
        put(&s, r ? ", (" : "(");
        for (size_t i = 0; i < m->ncols; i++)
            put(&s, i ? ", ?" : "?");
        put(&s, ")");
    }
    put(&s, " ON DUPLICATE KEY UPDATE ");
    for (size_t i = 1; i < m->ncols; i++) {
        put(&s, i > 1 ? ", " : "");
        put(&s, m->cols[i].quoted);
        put(&s, "=VALUES(");
        put(&s, m->cols[i].quoted);
        put(&s, ")");
    }
    return done(&s);
}

char *grm_map_pull_sql(const struct grm_map *m)
{
    struct sql s = {0};
    char limit[32];
    const char *key, *upd;

    if (!m)
        return NULL;
    key = m->cols[0].quoted;
    upd = m->qupdated;
    snprintf(limit, sizeof limit, "%zu", m->pull_batch);
    put(&s, "SELECT ");
    put(&s, key);
    put(&s, ", DATE_FORMAT(");
    put(&s, upd);
    put(&s, ", '%Y-%m-%d %H:%i:%s.%f'), ");
    put(&s, m->cols[m->status_col].quoted);
    put(&s, " FROM ");
    put(&s, m->qtable);
    put(&s, " WHERE ");
    put(&s, upd);
    put(&s, " > ? OR (");
    put(&s, upd);
    put(&s, " = ? AND ");
    put(&s, key);
    put(&s, " > ?) ORDER BY ");
    put(&s, upd);
    put(&s, ", ");
    put(&s, key);
    put(&s, " LIMIT ");
    put(&s, limit);
    return done(&s);
}

const char *grm_map_table(const struct grm_map *m)
{
    return m ? m->table : NULL;
}

const char *grm_map_column(const struct grm_map *m, const char *field)
{
    for (size_t i = 0; m && field && i < m->ncols; i++)
        if (strcmp(field, m->cols[i].field) == 0)
            return m->cols[i].name;
    return NULL;
}
