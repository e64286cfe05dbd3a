/* api.c - the grievance REST API (see api.h): each write is checked field by field and
 * published for sy-grievance; each read is one PostgreSQL statement that builds its JSON. */
#include "gateway/api.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth.h"
#include "gateway/gateway.h"
#include "gateway/pgpool.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/msg.h"
#include "sy/pg.h"

#define READERS (GW_ROLES_ALL)
#define WRITERS (GW_ROLE_CHATBOT | GW_ROLE_AGENT | GW_ROLE_ADMIN)
#define STAFF   (GW_ROLE_AGENT | GW_ROLE_ADMIN)

#define RETRY_AFTER_S  5
#define PATH_MAX_      128 /* bytes of a field's JSON path in an error */
#define CUSTOM_MAX     50  /* fields in "custom" */
#define CUSTOM_KEY_MAX 64
#define CUSTOM_STR_MAX 1000

/* --- field checks ------------------------------------------------------------------------- */

static bool id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* 1..max of [A-Za-z0-9._-]. */
static bool token_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (n == max || !id_char(s[n]))
            return false;
    return n > 0;
}

int gw_api_id_ok(const char *s)
{
    return s && token_ok(s, GW_API_ID_MAX);
}

int gw_api_phone_ok(const char *s)
{
    size_t n = 0;

    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    for (s++; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n >= 7 && n <= 15;
}

static int status_ok(const char *s)
{
    static const char *const statuses[] = {"pending", "submitted", "under_evaluation", "resolved",
                                           "denied"};

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(s, statuses[i]) == 0)
            return 1;
    return 0;
}

/* "type/subtype", each a token of RFC 9110's characters (parameters are not taken). */
static int mime_ok(const char *s)
{
    static const char tchar[] = "!#$&^_.+-";
    int slash = 0;
    size_t run = 0;

    for (; *s; s++) {
        if (*s == '/') {
            if (slash++ || run == 0)
                return 0;
            run = 0;
        } else if (id_char(*s) || (*s && strchr(tchar, *s))) {
            run++;
        } else {
            return 0;
        }
    }
    return slash == 1 && run > 0;
}

/* A file's name, not a path: no slashes and no control characters. */
static int file_name_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/' || *s == '\\')
            return 0;
    return 1;
}

/* Standard base64, padded, nothing else (no line breaks). */
static int base64_ok(const char *s)
{
    size_t len = strlen(s), n = 0;
    uint8_t *buf;
    int rc;

    if (len == 0 || len % 4 != 0)
        return 0;
    buf = malloc(sy_base64_decoded_max(len));
    if (!buf)
        return 0;
    rc = sy_base64_decode(s, len, false, buf, &n);
    free(buf);
    return rc == 0;
}

enum ftype {
    F_STR,      /* a string of min..max bytes passing ok */
    F_STR_NULL, /* the same, or null */
    F_OBJ,      /* an object of the fields in sub */
    F_ARR,      /* min..max objects, each of the fields in sub */
    F_CUSTOM,   /* an object of scalars (a site's own fields) */
};

struct field {
    const char *name;
    enum ftype type;
    bool required;
    size_t min, max;
    int (*ok)(const char *s);
    const char *must; /* what ok wants, for the error: "must be <must>" */
    const struct field *sub;
};

#define STR(n, req, lo, hi)                                                                        \
    {                                                                                              \
        n, F_STR, req, lo, hi, NULL, NULL, NULL                                                    \
    }
#define STRC(n, req, lo, hi, f, m)                                                                 \
    {                                                                                              \
        n, F_STR, req, lo, hi, f, m, NULL                                                          \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, F_STR, false, 0, 0, NULL, NULL, NULL                                                 \
    }
#define ID_MUST     "1..64 of [A-Za-z0-9._-]"
#define PHONE_MUST  "an E.164 number: '+' and 7..15 digits, the first not 0"
#define STATUS_MUST "one of pending, submitted, under_evaluation, resolved, denied"
#define MIME_MUST   "a MIME type such as application/pdf"
#define NAME_MUST   "a file name without slashes or control characters"
#define B64_MUST    "standard base64 with padding"

static int id_ok(const char *s)
{
    return gw_api_id_ok(s);
}

static const struct field user_info_fields[] = {
    STRC("phone_number", true, 8, 16, gw_api_phone_ok, PHONE_MUST),
    STR("name", true, 1, 200),
    END,
};

static const struct field file_fields[] = {
    STRC("file_id", true, 1, GW_API_ID_MAX, id_ok, ID_MUST),
    STRC("file_type", true, 1, 127, mime_ok, MIME_MUST),
    STRC("file_name", false, 1, 255, file_name_ok, NAME_MUST),
    STRC("file_data", true, 4, SIZE_MAX, base64_ok, B64_MUST),
    END,
};

static const struct field grievance_create_fields[] = {
    STRC("grievance_id", true, 1, GW_API_ID_MAX, id_ok, ID_MUST),
    {"user_info", F_OBJ, true, 0, 0, NULL, NULL, user_info_fields},
    STR("project_type", true, 1, 100),
    STR("description", true, 1, 16000),
    STR("location", false, 0, 500),
    {"custom", F_CUSTOM, false, 0, 0, NULL, NULL, NULL},
    {"files", F_ARR, false, 0, GW_API_FILES_MAX, NULL, NULL, file_fields},
    END,
};

static const struct field user_ref_fields[] = {
    STRC("phone_number", true, 8, 16, gw_api_phone_ok, PHONE_MUST),
    STR("name", false, 1, 200),
    END,
};

static const struct field grievance_update_fields[] = {
    STRC("grievance_id", false, 1, GW_API_ID_MAX, id_ok, ID_MUST),
    {"user_info", F_OBJ, false, 0, 0, NULL, NULL, user_ref_fields},
    STR("project_type", false, 1, 100),
    STR("description", false, 1, 16000),
    {"location", F_STR_NULL, false, 0, 500, NULL, NULL, NULL},
    {"custom", F_CUSTOM, false, 0, 0, NULL, NULL, NULL},
    END,
};

static const struct field status_update_fields[] = {
    STRC("grievance_id", false, 1, GW_API_ID_MAX, id_ok, ID_MUST),
    STRC("status", true, 1, 32, status_ok, STATUS_MUST),
    STR("notes", false, 0, 4000),
    END,
};

static const struct field user_create_fields[] = {
    STRC("phone_number", true, 8, 16, gw_api_phone_ok, PHONE_MUST),
    STR("name", true, 1, 200),
    END,
};

static const struct field user_update_fields[] = {
    STRC("phone_number", false, 8, 16, gw_api_phone_ok, PHONE_MUST),
    STR("name", true, 1, 200),
    END,
};

static const struct field file_create_fields[] = {
    STRC("file_id", false, 1, GW_API_ID_MAX, id_ok, ID_MUST),
    STRC("grievance_id", true, 1, GW_API_ID_MAX, id_ok, ID_MUST),
    STRC("file_type", true, 1, 127, mime_ok, MIME_MUST),
    STRC("file_name", false, 1, 255, file_name_ok, NAME_MUST),
    STRC("file_data", true, 4, SIZE_MAX, base64_ok, B64_MUST),
    END,
};

/* out = prefix.name, or name alone; a path too long for an error is cut short (ours are
 * far shorter: the deepest is "files[9].file_data"). */
static void join_path(char *out, const char *prefix, const char *name)
{
    int n = prefix[0] ? snprintf(out, PATH_MAX_, "%s.%s", prefix, name)
                      : snprintf(out, PATH_MAX_, "%s", name);

    if (n < 0)
        out[0] = '\0';
}

/* A 400 naming field, whose message reads "<field>: <why>". Returns -1. */
static int bad(struct gw_response *rs, const struct gw_request *rq, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(struct gw_response *rs, const struct gw_request *rq, const char *field,
               const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    gw_error(rs, rq, 400, "invalid", field, "%s: %s", field, why);
    return -1;
}

static int check_fields(const struct gw_request *rq, struct gw_response *rs, json_t *obj,
                        const struct field *fields, const char *prefix);

static int check_custom(const struct gw_request *rq, struct gw_response *rs, json_t *v,
                        const char *path)
{
    char sub[PATH_MAX_];
    const char *key;
    json_t *x;

    if (!json_is_object(v))
        return bad(rs, rq, path, "must be an object");
    if (json_object_size(v) > CUSTOM_MAX)
        return bad(rs, rq, path, "at most 50 fields");
    json_object_foreach(v, key, x)
    {
        join_path(sub, path, key);
        if (!token_ok(key, CUSTOM_KEY_MAX))
            return bad(rs, rq, sub, "names are 1..64 of [A-Za-z0-9._-]");
        if (json_is_object(x) || json_is_array(x))
            return bad(rs, rq, sub, "must be a string, number, boolean or null");
        if (json_is_string(x) && json_string_length(x) > CUSTOM_STR_MAX)
            return bad(rs, rq, sub, "at most 1000 bytes");
    }
    return 0;
}

static int check_string(const struct gw_request *rq, struct gw_response *rs, json_t *v,
                        const struct field *f, const char *path)
{
    size_t len;
    char range[64];

    if (!json_is_string(v))
        return bad(rs, rq, path, "must be a string");
    len = json_string_length(v);
    if (len < f->min || len > f->max || strlen(json_string_value(v)) != len) {
        if (f->max == SIZE_MAX)
            snprintf(range, sizeof range, "at least %zu", f->min);
        else
            snprintf(range, sizeof range, "%zu..%zu", f->min, f->max);
        return bad(rs, rq, path, "must be %s bytes without NUL", range);
    }
    if (f->ok && !f->ok(json_string_value(v)))
        return bad(rs, rq, path, "must be %s", f->must);
    return 0;
}

static int check_value(const struct gw_request *rq, struct gw_response *rs, json_t *v,
                       const struct field *f, const char *path)
{
    char item[PATH_MAX_];
    size_t i;
    json_t *x;

    switch (f->type) {
    case F_STR_NULL:
        if (json_is_null(v))
            return 0;
        /* fall through */
    case F_STR:
        return check_string(rq, rs, v, f, path);
    case F_OBJ:
        if (!json_is_object(v))
            return bad(rs, rq, path, "must be an object");
        return check_fields(rq, rs, v, f->sub, path);
    case F_ARR:
        if (!json_is_array(v))
            return bad(rs, rq, path, "must be an array");
        if (json_array_size(v) < f->min || json_array_size(v) > f->max)
            return bad(rs, rq, path, "must hold %zu..%zu items", f->min, f->max);
        json_array_foreach(v, i, x)
        {
            if (snprintf(item, sizeof item, "%s[%zu]", path, i) < 0)
                item[0] = '\0';
            if (!json_is_object(x))
                return bad(rs, rq, item, "must be an object");
            if (check_fields(rq, rs, x, f->sub, item) != 0)
                return -1;
        }
        return 0;
    case F_CUSTOM:
        return check_custom(rq, rs, v, path);
    }
    return -1;
}

/* Checks obj against fields: each known field well-formed, the required ones present, no
 * other. 0, or -1 with a 400 in rs naming the field by its JSON path under prefix. */
static int check_fields(const struct gw_request *rq, struct gw_response *rs, json_t *obj,
                        const struct field *fields, const char *prefix)
{
    char path[PATH_MAX_];
    const char *key;
    json_t *v;

    for (const struct field *f = fields; f->name; f++) {
        join_path(path, prefix, f->name);
        v = json_object_get(obj, f->name);
        if (!v) {
            if (f->required)
                return bad(rs, rq, path, "required");
            continue;
        }
        if (check_value(rq, rs, v, f, path) != 0)
            return -1;
    }
    json_object_foreach(obj, key, v)
    {
        const struct field *f = fields;

        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name) {
            /* A key of any length and bytes: keep the path short and printable. */
            join_path(path, prefix, token_ok(key, 64) ? key : "?");
            return bad(rs, rq, path, "unknown field");
        }
    }
    return 0;
}

/* --- requests ----------------------------------------------------------------------------- */

struct call {
    struct gw *g;
    const struct gw_request *rq;
    struct gw_response *rs;
    struct gw_principal who;
    char actor[GW_API_ACTOR_MAX + 1];
};

/* Authenticates for roles; 0, or the error is in rs. */
static int begin(struct call *c, void *ctx, const struct gw_request *rq, struct gw_response *rs,
                 unsigned roles)
{
    c->g = ctx;
    c->rq = rq;
    c->rs = rs;
    if (gw_auth_check(c->g->auth, rq, roles, rs, &c->who) != 0)
        return -1;
    if (c->who.subject[0])
        snprintf(c->actor, sizeof c->actor, "%s:%s", c->who.kind, c->who.subject);
    else
        snprintf(c->actor, sizeof c->actor, "%s", c->who.kind);
    return 0;
}

/* The body as a JSON object checked against fields, or NULL with a 400 in rs. */
static json_t *read_body(struct call *c, const struct field *fields)
{
    json_error_t e;
    json_t *body;

    if (c->rq->body_len == 0) {
        gw_error(c->rs, c->rq, 400, "invalid", NULL, "a JSON object is required as the body");
        return NULL;
    }
    body = json_loadb(c->rq->body, c->rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!body) {
        gw_error(c->rs, c->rq, 400, "invalid", NULL, "malformed JSON at line %d column %d: %s",
                 e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        gw_error(c->rs, c->rq, 400, "invalid", NULL, "the body must be a JSON object");
    } else if (check_fields(c->rq, c->rs, body, fields, "") == 0) {
        return body;
    }
    json_decref(body);
    return NULL;
}

/* What a path's {id} stands for: its check, and the field an error names. */
struct path_kind {
    int (*ok)(const char *s);
    const char *field;
    const char *must;
};
static const struct path_kind grievance_path = {id_ok, "grievance_id", ID_MUST};
static const struct path_kind user_path = {gw_api_phone_ok, "phone_number", PHONE_MUST};
static const struct path_kind file_path = {id_ok, "file_id", ID_MUST};

/* The path's id if it is one of kind k, else NULL and a 400 naming k's field. */
static const char *path_id(struct call *c, const struct path_kind *k)
{
    const char *id = c->rq->nparams > 0 ? c->rq->params[0] : NULL;

    if (!id || !k->ok(id)) {
        gw_error(c->rs, c->rq, 400, "invalid", k->field, "%s in the path: must be %s", k->field,
                 k->must);
        return NULL;
    }
    return id;
}

/* The body's copy of the path's id: absent, or equal to it. Then data carries the path's. */
static int same_id(struct call *c, json_t *body, const char *field, const char *id)
{
    json_t *v = json_object_get(body, field);

    if (v && strcmp(json_string_value(v), id) != 0) {
        gw_error(c->rs, c->rq, 400, "invalid", field, "%s: differs from the id in the path", field);
        return -1;
    }
    return json_object_set_new(body, field, json_string(id)) == 0 ? 0 : -1;
}

/* Publishes data (owned) as type with the actor added, and names the resource in the 202. */
static void publish(struct call *c, const char *type, json_t *data, const char *id_field,
                    const char *id)
{
    const char *key = gw_header(c->rq, "Idempotency-Key");
    char msg_id[5 + 2 * SY_SHA256_LEN + 1];
    uint8_t digest[SY_SHA256_LEN];
    const char *use = NULL;

    if (key) {
        size_t tl = strlen(type) + 1, al = strlen(c->actor) + 1, kl = strlen(key);
        char *buf;

        if (!token_ok(key, GW_API_IDEM_MAX)) {
            gw_error(c->rs, c->rq, 400, "invalid", "Idempotency-Key",
                     "Idempotency-Key: must be 1..64 of [A-Za-z0-9._-]");
            goto out;
        }
        if (!(buf = malloc(tl + al + kl))) {
            gw_error(c->rs, c->rq, 500, "internal", NULL, "out of memory");
            goto out;
        }
        memcpy(buf, type, tl);
        memcpy(buf + tl, c->actor, al);
        memcpy(buf + tl + al, key, kl);
        sy_sha256(buf, tl + al + kl, digest);
        free(buf);
        memcpy(msg_id, "idem:", 5);
        sy_hex_encode(digest, sizeof digest, msg_id + 5);
        use = msg_id;
    }
    if (json_object_set_new(data, "actor", json_string(c->actor)) != 0) {
        gw_error(c->rs, c->rq, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (gw_publish(c->g, c->rq, c->rs, type, use, data) == 0 &&
        json_object_set_new(c->rs->json, id_field, json_string(id)) != 0)
        gw_error(c->rs, c->rq, 500, "internal", NULL, "out of memory");
out:
    json_decref(data);
}

/* --- writes ------------------------------------------------------------------------------- */

void gw_api_grievance_create(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    struct call c;
    json_t *body, *files, *f;
    size_t i, j;
    char field[PATH_MAX_];

    if (begin(&c, ctx, rq, rs, WRITERS) != 0 || !(body = read_body(&c, grievance_create_fields)))
        return;
    files = json_object_get(body, "files");
    json_array_foreach(files, i, f)
    {
        for (j = 0; j < i; j++)
            if (json_equal(json_object_get(f, "file_id"),
                           json_object_get(json_array_get(files, j), "file_id")))
                break;
        if (j < i) {
            snprintf(field, sizeof field, "files[%zu].file_id", i);
            gw_error(rs, rq, 400, "invalid", field, "%s: repeats files[%zu].file_id", field, j);
            json_decref(body);
            return;
        }
    }
    publish(&c, "grievance.submitted", body, "grievance_id",
            json_string_value(json_object_get(body, "grievance_id")));
}

/* A change to the resource the path names: the body checked against fields (and by extra,
 * when given), the path's id put in it, published as type. */
static void write_at(void *ctx, const struct gw_request *rq, struct gw_response *rs, unsigned roles,
                     const struct path_kind *k, const struct field *fields,
                     int (*extra)(struct call *c, json_t *body), const char *type)
{
    struct call c;
    const char *id;
    json_t *body;

    if (begin(&c, ctx, rq, rs, roles) != 0 || !(id = path_id(&c, k)) ||
        !(body = read_body(&c, fields)))
        return;
    if ((extra && extra(&c, body) != 0) || same_id(&c, body, k->field, id) != 0) {
        json_decref(body);
        return;
    }
    publish(&c, type, body, k->field, id);
}

/* An update must change something; the status has a route of its own. */
static int changes_something(struct call *c, json_t *body)
{
    static const char *const changeable[] = {"user_info", "project_type", "description", "location",
                                             "custom"};

    for (size_t i = 0; i < sizeof changeable / sizeof changeable[0]; i++)
        if (json_object_get(body, changeable[i]))
            return 0;
    gw_error(c->rs, c->rq, 400, "invalid", NULL,
             "nothing to change: send user_info, project_type, description, location or custom "
             "(the status has a route of its own)");
    return -1;
}

void gw_api_grievance_update(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    write_at(ctx, rq, rs, WRITERS, &grievance_path, grievance_update_fields, changes_something,
             "grievance.updated");
}

void gw_api_status_update(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    write_at(ctx, rq, rs, STAFF, &grievance_path, status_update_fields, NULL,
             "grievance.status_update");
}

void gw_api_user_create(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    struct call c;
    json_t *body;

    if (begin(&c, ctx, rq, rs, WRITERS) != 0 || !(body = read_body(&c, user_create_fields)))
        return;
    publish(&c, "grievance.user_upsert", body, "phone_number",
            json_string_value(json_object_get(body, "phone_number")));
}

void gw_api_user_update(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    write_at(ctx, rq, rs, WRITERS, &user_path, user_update_fields, NULL, "grievance.user_upsert");
}

void gw_api_file_create(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    struct call c;
    json_t *body;
    char fresh[37];

    if (begin(&c, ctx, rq, rs, WRITERS) != 0 || !(body = read_body(&c, file_create_fields)))
        return;
    if (!json_object_get(body, "file_id")) {
        sy_uuid4(fresh);
        if (json_object_set_new(body, "file_id", json_string(fresh)) != 0) {
            gw_error(rs, rq, 500, "internal", NULL, "out of memory");
            json_decref(body);
            return;
        }
    }
    publish(&c, "grievance.file_attached", body, "file_id",
            json_string_value(json_object_get(body, "file_id")));
}

/* --- reads -------------------------------------------------------------------------------- */

/* An ISO 8601 UTC timestamp of a timestamptz column, independent of the session's zone. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static const char sql_grievance[] =
    "SELECT json_build_object("
    " 'grievance_id', g.grievance_id,"
    " 'user_info', json_build_object('phone_number', u.phone_number, 'name', u.name),"
    " 'project_type', g.project_type, 'description', g.description, 'location', g.location,"
    " 'status', g.status, 'custom', g.custom,"
    " 'created_at', " TS("g.created_at") ", 'updated_at', " TS(
        "g.updated_at") ","
                        " 'files', COALESCE((SELECT json_agg(json_build_object("
                        "   'file_id', f.file_id, 'file_type', f.file_type, 'file_name', "
                        "f.file_name,"
                        "   'size', f.size, 'sha256', f.sha256, 'created_at', " TS(
                            "f.created_at") ")"
                                            "   ORDER BY f.created_at, f.file_id)"
                                            "  FROM (SELECT * FROM file_attachments WHERE "
                                            "grievance_id = g.grievance_id"
                                            "        ORDER BY created_at, file_id LIMIT 100) f), "
                                            "'[]'::json))"
                                            " FROM grievances g JOIN users u ON u.phone_number = "
                                            "g.phone_number"
                                            " WHERE g.grievance_id = $1";

static const char sql_status[] =
    "SELECT json_build_object("
    " 'grievance_id', g.grievance_id, 'status', g.status,"
    " 'updated_at', " TS(
        "g.updated_at") ","
                        " 'history', COALESCE((SELECT json_agg(json_build_object("
                        "   'status', h.status, 'notes', h.notes, 'created_by', h.created_by,"
                        "   'at', " TS(
                            "h.at") ") ORDER BY h.at DESC, h.id DESC)"
                                    "  FROM (SELECT * FROM status_history WHERE grievance_id = "
                                    "g.grievance_id"
                                    "        ORDER BY at DESC, id DESC LIMIT 100) h), '[]'::json))"
                                    " FROM grievances g WHERE g.grievance_id = $1";

static const char sql_user[] =
    "SELECT json_build_object("
    " 'phone_number', u.phone_number, 'name', u.name,"
    " 'created_at', " TS("u.created_at") ", 'updated_at', " TS(
        "u.updated_at") ","
                        " 'grievance_ids', COALESCE((SELECT json_agg(x.grievance_id ORDER BY "
                        "x.created_at DESC,"
                        "   x.grievance_id)"
                        "  FROM (SELECT grievance_id, created_at FROM grievances WHERE "
                        "phone_number = u.phone_number"
                        "        ORDER BY created_at DESC, grievance_id LIMIT 100) x), '[]'::json))"
                        " FROM users u WHERE u.phone_number = $1";

static const char sql_file[] =
    "SELECT json_build_object("
    " 'file_id', file_id, 'grievance_id', grievance_id, 'file_type', file_type,"
    " 'file_name', file_name, 'size', size, 'sha256', sha256,"
    " 'created_at', " TS("created_at") ")"
                                       " FROM file_attachments WHERE file_id = $1";

/* Runs one of the statements above for id and answers its JSON, 404 naming what, or 503. */
static void read_one(struct call *c, const char *sql, const char *id, const char *what)
{
    const char *params[1] = {id};
    struct sy_pg_res *res = NULL;
    struct sy_pg *pg;
    const char *text;
    json_t *doc;
    int rc;

    if (!c->g->pg) {
        gw_error(c->rs, c->rq, 503, "unavailable", NULL,
                 "reads need PostgreSQL, and this gateway has no SY_PG_URL");
        c->rs->retry_after_s = RETRY_AFTER_S;
        return;
    }
    if (!(pg = gw_pg_take(c->g->pg))) {
        gw_error(c->rs, c->rq, 503, "unavailable", NULL, "the grievance database is unreachable");
        c->rs->retry_after_s = RETRY_AFTER_S;
        return;
    }
    rc = sy_pg_exec(pg, sql, 1, params, &res);
    if (rc != 0) {
        const char *state = sy_pg_sqlstate(pg);

        if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0) {
            sy_log_write(SY_LOG_ERROR, "gateway.api", -1, sy_pg_error(pg),
                         "the grievance tables are missing or old: run syctl migrate");
            gw_error(c->rs, c->rq, 503, "unavailable", NULL,
                     "the grievance tables are not in the database yet: run syctl migrate");
            c->rs->retry_after_s = RETRY_AFTER_S;
        } else if (rc == -SY_ECONN || rc == -SY_EDB) {
            gw_error(c->rs, c->rq, 503, "unavailable", NULL,
                     "the grievance database did not answer: %s", sy_strerror(rc));
            c->rs->retry_after_s = RETRY_AFTER_S;
        } else {
            sy_log_write(SY_LOG_ERROR, "gateway.api", -1, sy_pg_error(pg), "%s read failed", what);
            gw_error(c->rs, c->rq, 500, "internal", NULL, "the %s could not be read", what);
        }
        goto out;
    }
    if (sy_pg_res_rows(res) != 1 || !(text = sy_pg_res_get(res, 0, 0))) {
        gw_error(c->rs, c->rq, 404, "not_found", NULL,
                 "no %s %s (one accepted moments ago may still be on its way)", what, id);
        goto out;
    }
    doc = json_loads(text, 0, NULL);
    if (doc)
        gw_json(c->rs, 200, doc);
    else
        gw_error(c->rs, c->rq, 500, "internal", NULL, "the %s could not be read", what);
out:
    sy_pg_res_free(res);
    gw_pg_put(c->g->pg, pg, rc);
}

/* A read of the row the path names. */
static void read_at(void *ctx, const struct gw_request *rq, struct gw_response *rs,
                    const struct path_kind *k, const char *sql, const char *what)
{
    struct call c;
    const char *id;

    if (begin(&c, ctx, rq, rs, READERS) == 0 && (id = path_id(&c, k)))
        read_one(&c, sql, id, what);
}

void gw_api_grievance_get(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    read_at(ctx, rq, rs, &grievance_path, sql_grievance, "grievance");
}

void gw_api_status_get(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    read_at(ctx, rq, rs, &grievance_path, sql_status, "grievance");
}

void gw_api_user_get(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    read_at(ctx, rq, rs, &user_path, sql_user, "user");
}

void gw_api_file_get(void *ctx, const struct gw_request *rq, struct gw_response *rs)
{
    read_at(ctx, rq, rs, &file_path, sql_file, "file");
}
