/* test_gateway_openapi.c - schemas/openapi.yaml held to the gateway it documents: every route
 * of gw_routes is there with its method and nothing else is; every API operation names its
 * credentials, its roles and the answers it can give; and each write's body asks for exactly
 * what its message's schema requires, less what the gateway supplies (the actor, the path's
 * id, a file id it makes). Each checker is also run on small documents that break it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gateway.h"
#include "gateway/http.h"
#include "sy/doc.h"

#define REF_HOPS_MAX 8 /* a $ref leading to a $ref ...: more than this is taken for a loop */
#define NEST_MAX     8 /* objects within objects compared against a message schema */

/* What a checker found, one line per problem. */
struct report {
    int n;
    char text[8192];
};

static void report_add(struct report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report_add(struct report *r, const char *fmt, ...)
{
    size_t used = strlen(r->text);
    va_list ap;

    r->n++;
    if (used + 2 >= sizeof r->text)
        return;
    va_start(ap, fmt);
    vsnprintf(r->text + used, sizeof r->text - used - 1, fmt, ap);
    va_end(ap);
    used = strlen(r->text);
    r->text[used] = '\n';
    r->text[used + 1] = '\0';
}

/* The API's operations as api.h states them: who may call each, and for a write the message
 * it publishes and the field the gateway supplies when the body leaves it out. */
struct api_op {
    const char *method; /* lower-case, as OpenAPI writes it */
    const char *path;
    const char *roles; /* comma-separated */
    const char *type;  /* the message a write publishes; NULL for a read */
    const char *supplied;
};

#define WRITERS "chatbot,agent,admin"
#define READERS "chatbot,agent,admin,readonly"
static const struct api_op API_OPS[] = {
    {"post", "/api/grievances/", WRITERS, "grievance.submitted", NULL},
    {"get", "/api/grievances/{id}/", READERS, NULL, NULL},
    {"put", "/api/grievances/{id}/", WRITERS, "grievance.updated", "grievance_id"},
    {"get", "/api/grievances/{id}/status/", READERS, NULL, NULL},
    {"put", "/api/grievances/{id}/status/", "agent,admin", "grievance.status_update",
     "grievance_id"},
    {"post", "/api/users/", WRITERS, "grievance.user_upsert", NULL},
    {"get", "/api/users/{id}/", READERS, NULL, NULL},
    {"put", "/api/users/{id}/", WRITERS, "grievance.user_upsert", "phone_number"},
    /* The gateway makes a UUID when file_id is absent. */
    {"post", "/api/files/", WRITERS, "grievance.file_attached", "file_id"},
    {"get", "/api/files/{id}/", READERS, NULL, NULL},
};
#define API_NOPS (sizeof API_OPS / sizeof API_OPS[0])

static const char *const METHODS[] = {"get",     "put",  "post",  "delete",
                                      "options", "head", "patch", "trace"};
static const char *const PATH_ITEM_KEYS[] = {"$ref", "summary", "description", "servers",
                                             "parameters"};

static const char *source_dir(void)
{
    const char *d = getenv("SY_SOURCE_DIR");
    return d && *d ? d : ".";
}

static struct sy_doc *load_source_file(const char *rel)
{
    char path[1024], err[512] = "";
    struct sy_doc *doc;

    snprintf(path, sizeof path, "%s/%s", source_dir(), rel);
    doc = sy_doc_load_file(path, err, sizeof err);
    if (!doc)
        fail_msg("%s", err);
    return doc;
}

static struct sy_doc *load_text(const char *text)
{
    char err[512] = "";
    struct sy_doc *doc = sy_doc_load_mem("inline", text, strlen(text), err, sizeof err);

    if (!doc)
        fail_msg("%s", err);
    return doc;
}

static bool is_method(const char *key)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (strcmp(key, METHODS[i]) == 0)
            return true;
    return false;
}

static bool is_path_item_key(const char *key)
{
    if (strncmp(key, "x-", 2) == 0)
        return true;
    for (size_t i = 0; i < sizeof PATH_ITEM_KEYS / sizeof PATH_ITEM_KEYS[0]; i++)
        if (strcmp(key, PATH_ITEM_KEYS[i]) == 0)
            return true;
    return false;
}

/* Whether seq (a sequence of scalars) holds s. */
static bool seq_has(const struct sy_node *seq, const char *s)
{
    if (sy_node_kind(seq) != SY_NODE_SEQ)
        return false;
    for (size_t i = 0; i < sy_node_len(seq); i++) {
        const char *v = sy_node_str(sy_node_at(seq, i, NULL));
        if (v && strcmp(v, s) == 0)
            return true;
    }
    return false;
}

/* Whether the comma-separated list holds s. */
static bool list_has(const char *list, const char *s)
{
    size_t n = strlen(s);

    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, s, n) == 0)
            return true;
        p += len;
        if (*p)
            p++;
    }
    return false;
}

/* n itself, or what its local "$ref" ("#/components/schemas/X", followed further when that is
 * a reference too) points at. NULL with a report for a reference that is not local, does not
 * lead anywhere, or loops. */
static const struct sy_node *resolve(const struct sy_node *root, const struct sy_node *n,
                                     struct report *r)
{
    for (int hop = 0; hop <= REF_HOPS_MAX; hop++) {
        const char *ref = sy_node_str(sy_node_get(n, "$ref"));
        const struct sy_node *at = root;
        char buf[512];

        if (!ref)
            return n;
        if (strncmp(ref, "#/", 2) != 0 || strchr(ref, '~') || strlen(ref) >= sizeof buf) {
            report_add(r, "$ref '%s': only plain local references are used here", ref);
            return NULL;
        }
        snprintf(buf, sizeof buf, "%s", ref + 2);
        for (char *save = NULL, *seg = strtok_r(buf, "/", &save); seg && at;
             seg = strtok_r(NULL, "/", &save))
            at = sy_node_get(at, seg);
        if (!at) {
            report_add(r, "$ref '%s' leads nowhere", ref);
            return NULL;
        }
        n = at;
    }
    report_add(r, "a $ref chain longer than %d (a loop?)", REF_HOPS_MAX);
    return NULL;
}

static const struct sy_node *operation(const struct sy_node *root, const char *path,
                                       const char *method)
{
    const struct sy_node *op = sy_node_get(sy_node_get(sy_node_get(root, "paths"), path), method);
    return sy_node_kind(op) == SY_NODE_MAP ? op : NULL;
}

/* (a) Every route is documented at its pattern, with its method as a lower-case key. */
static void check_routes_documented(const struct sy_node *root, const struct gw_route *routes,
                                    size_t nroutes, struct report *r)
{
    if (sy_node_kind(sy_node_get(root, "paths")) != SY_NODE_MAP) {
        report_add(r, "no paths map");
        return;
    }
    for (size_t i = 0; i < nroutes; i++) {
        char method[16];
        size_t j = 0;

        for (; routes[i].method[j] && j + 1 < sizeof method; j++)
            method[j] = (char)(routes[i].method[j] | 0x20);
        method[j] = '\0';
        if (!operation(root, routes[i].pattern, method))
            report_add(r, "%s %s is served but not documented", routes[i].method,
                       routes[i].pattern);
    }
}

/* (b) Every operation documented is a route the gateway serves. */
static void check_nothing_extra(const struct sy_node *root, const struct gw_route *routes,
                                size_t nroutes, struct report *r)
{
    const struct sy_node *paths = sy_node_get(root, "paths");

    for (size_t i = 0; i < sy_node_len(paths); i++) {
        const char *path = NULL;
        const struct sy_node *item = sy_node_at(paths, i, &path);

        if (sy_node_kind(item) != SY_NODE_MAP) {
            report_add(r, "%s: expected a path item", path);
            continue;
        }
        for (size_t j = 0; j < sy_node_len(item); j++) {
            const char *key = NULL;
            bool served = false;

            sy_node_at(item, j, &key);
            if (!is_method(key)) {
                if (!is_path_item_key(key))
                    report_add(r, "%s: '%s' is neither a lower-case method nor a path item field",
                               path, key);
                continue;
            }
            for (size_t k = 0; k < nroutes && !served; k++)
                served =
                    strcmp(routes[k].pattern, path) == 0 && strcasecmp(routes[k].method, key) == 0;
            if (!served)
                report_add(r, "%s %s is documented but not served", key, path);
        }
    }
}

static void need_responses(const struct sy_node *responses, const char *const *codes,
                           const char *method, const char *path, struct report *r)
{
    for (; *codes; codes++)
        if (!sy_node_get(responses, *codes))
            report_add(r, "%s %s: response %s is not documented", method, path, *codes);
}

/* Every security requirement offers at least one scheme, each of them defined. */
static void check_security(const struct sy_node *root, const struct sy_node *sec,
                           const char *method, const char *path, struct report *r)
{
    const struct sy_node *schemes = sy_node_get(sy_node_get(root, "components"), "securitySchemes");

    if (sy_node_kind(sec) != SY_NODE_SEQ || sy_node_len(sec) == 0) {
        report_add(r, "%s %s: no security requirement", method, path);
        return;
    }
    for (size_t i = 0; i < sy_node_len(sec); i++) {
        const struct sy_node *req = sy_node_at(sec, i, NULL);

        if (sy_node_kind(req) != SY_NODE_MAP || sy_node_len(req) == 0) {
            report_add(r, "%s %s: security[%zu] lets a caller in without credentials", method, path,
                       i);
            continue;
        }
        for (size_t j = 0; j < sy_node_len(req); j++) {
            const char *name = NULL;

            sy_node_at(req, j, &name);
            if (!sy_node_get(schemes, name))
                report_add(r, "%s %s: security scheme '%s' is not defined", method, path, name);
        }
    }
}

/* (c) Every /api/ operation asks for credentials, names its roles (as api.h assigns them) in
 * x-roles and in its description, and documents 401 and 403; writes 202, 400 and 503, reads
 * 200 and 404. Every 503 in the document announces Retry-After. */
static void check_operations(const struct sy_node *root, const struct api_op *ops, size_t nops,
                             struct report *r)
{
    static const char *const for_all[] = {"401", "403", NULL};
    static const char *const for_writes[] = {"202", "400", "503", NULL};
    static const char *const for_reads[] = {"200", "404", NULL};
    const struct sy_node *paths = sy_node_get(root, "paths");

    for (size_t i = 0; i < sy_node_len(paths); i++) {
        const char *path = NULL;
        const struct sy_node *item = sy_node_at(paths, i, &path);
        bool api = strncmp(path, "/api/", 5) == 0;

        for (size_t j = 0; j < sy_node_len(item); j++) {
            const char *method = NULL;
            const struct sy_node *op = sy_node_at(item, j, &method);
            const struct sy_node *responses = sy_node_get(op, "responses"), *roles, *sec;
            const struct sy_node *unavailable;
            const struct api_op *want = NULL;
            const char *desc;

            if (!is_method(method))
                continue;
            unavailable = resolve(root, sy_node_get(responses, "503"), r);
            if (unavailable && !sy_node_get(sy_node_get(unavailable, "headers"), "Retry-After"))
                report_add(r, "%s %s: its 503 does not announce Retry-After", method, path);
            if (!api)
                continue;
            sec = sy_node_get(op, "security");
            check_security(root, sec ? sec : sy_node_get(root, "security"), method, path, r);
            need_responses(responses, for_all, method, path, r);
            if (strcmp(method, "post") == 0 || strcmp(method, "put") == 0)
                need_responses(responses, for_writes, method, path, r);
            else if (strcmp(method, "get") == 0)
                need_responses(responses, for_reads, method, path, r);

            for (size_t k = 0; k < nops && !want; k++)
                if (strcmp(ops[k].method, method) == 0 && strcmp(ops[k].path, path) == 0)
                    want = &ops[k];
            if (!want) {
                report_add(r, "%s %s: not in this test's table of API operations", method, path);
                continue;
            }
            roles = sy_node_get(op, "x-roles");
            desc = sy_node_str(sy_node_get(op, "description"));
            if (sy_node_kind(roles) != SY_NODE_SEQ || sy_node_len(roles) == 0) {
                report_add(r, "%s %s: no x-roles list", method, path);
                continue;
            }
            for (size_t k = 0; k < sy_node_len(roles); k++) {
                const char *role = sy_node_str(sy_node_at(roles, k, NULL));
                if (!role || !list_has(want->roles, role))
                    report_add(r, "%s %s: x-roles names '%s', which api.h does not allow", method,
                               path, role ? role : "(not a scalar)");
            }
            for (const char *p = want->roles; *p;) {
                char role[32];
                size_t len = strcspn(p, ",");

                snprintf(role, sizeof role, "%.*s", (int)len, p);
                if (!seq_has(roles, role))
                    report_add(r, "%s %s: x-roles leaves out '%s'", method, path, role);
                if (!desc || !strstr(desc, role))
                    report_add(r, "%s %s: the description does not name role '%s'", method, path,
                               role);
                p += len;
                if (*p)
                    p++;
            }
        }
    }
}

/* The OpenAPI type of a message schema's field type. */
static const char *openapi_type(const char *t)
{
    static const char *const map[][2] = {
        {"str", "string"}, {"int", "integer"}, {"float", "number"}, {"bool", "boolean"},
        {"map", "object"}, {"array", "array"}, {"bin", "string"},
    };

    for (size_t i = 0; t && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(t, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A message's boolean flag ("required", "nullable"); absent is false. */
static bool flag(const struct sy_node *n, const char *key)
{
    const struct sy_node *v = sy_node_get(n, key);
    char err[128];
    bool b = false;

    return v && sy_node_bool(v, &b, err, sizeof err) == 0 && b;
}

static void compare_object(const struct sy_node *root, const struct sy_node *fields,
                           const struct sy_node *schema, const char *supplied, const char *where,
                           int depth, struct report *r);

/* One field of a message against the body's property of the same name. */
static void compare_field(const struct sy_node *root, const struct sy_node *f,
                          const struct sy_node *prop, const char *where, int depth,
                          struct report *r)
{
    static const char *const limits[][2] = {
        {"min_len", "minLength"},
        {"max_len", "maxLength"},
        {"max_items", "maxItems"},
    };
    const char *mtype = sy_node_str(sy_node_get(f, "type"));
    const char *want = openapi_type(mtype), *got = sy_node_str(sy_node_get(prop, "type"));
    const struct sy_node *menum = sy_node_get(f, "enum"), *denum = sy_node_get(prop, "enum");

    if (!want || !same_text(want, got)) {
        report_add(r, "%s: type %s in the body, %s in the message", where, got ? got : "(none)",
                   mtype ? mtype : "(none)");
        return;
    }
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        const char *m = sy_node_str(sy_node_get(f, limits[i][0]));
        const char *d = sy_node_str(sy_node_get(prop, limits[i][1]));

        if (!same_text(m, d))
            report_add(r, "%s: %s %s in the body, %s %s in the message", where, limits[i][1],
                       d ? d : "(none)", limits[i][0], m ? m : "(none)");
    }
    if (flag(f, "nullable") != flag(prop, "nullable"))
        report_add(r, "%s: nullable differs from the message", where);
    if (sy_node_len(menum) != sy_node_len(denum))
        report_add(r, "%s: the enum differs from the message's", where);
    for (size_t i = 0; i < sy_node_len(menum); i++) {
        const char *v = sy_node_str(sy_node_at(menum, i, NULL));
        if (!v || !seq_has(denum, v))
            report_add(r, "%s: enum leaves out '%s'", where, v ? v : "(not a scalar)");
    }
    if (strcmp(want, "object") == 0 && sy_node_get(f, "fields"))
        compare_object(root, sy_node_get(f, "fields"), prop, NULL, where, depth + 1, r);
    if (strcmp(want, "array") == 0) {
        const struct sy_node *items = sy_node_get(f, "items");
        const struct sy_node *ditems = resolve(root, sy_node_get(prop, "items"), r);
        char iwhere[256];

        snprintf(iwhere, sizeof iwhere, "%s[]", where);
        if (!ditems)
            report_add(r, "%s: no items", where);
        else if (items)
            compare_field(root, items, ditems, iwhere, depth + 1, r);
    }
}

/* An object schema against a message's fields: the same properties ("actor" aside, which the
 * gateway adds), unknown ones refused, and required exactly where the message requires a field
 * the client must give (supplied names the one the gateway can fill in). */
static void compare_object(const struct sy_node *root, const struct sy_node *fields,
                           const struct sy_node *schema, const char *supplied, const char *where,
                           int depth, struct report *r)
{
    const struct sy_node *props, *required, *extra;

    if (depth > NEST_MAX) {
        report_add(r, "%s: nested too deep", where);
        return;
    }
    if (!(schema = resolve(root, schema, r)))
        return;
    props = sy_node_get(schema, "properties");
    required = sy_node_get(schema, "required");
    extra = sy_node_get(schema, "additionalProperties");
    if (!same_text(sy_node_str(sy_node_get(schema, "type")), "object"))
        report_add(r, "%s: not an object schema", where);
    if (!same_text(sy_node_str(extra), "false"))
        report_add(r, "%s: additionalProperties is not false, but unknown fields are refused",
                   where);
    for (size_t i = 0; i < sy_node_len(fields); i++) {
        const char *name = NULL;
        const struct sy_node *f = sy_node_at(fields, i, &name), *prop;
        bool must = flag(f, "required") && !(supplied && strcmp(name, supplied) == 0);
        char fwhere[256];

        if (strcmp(name, "actor") == 0)
            continue;
        snprintf(fwhere, sizeof fwhere, "%s.%s", where, name);
        if (must && !seq_has(required, name))
            report_add(r, "%s: optional in the body but required in the message", fwhere);
        else if (!must && seq_has(required, name))
            report_add(r, "%s: required in the body but not needed from the client", fwhere);
        prop = resolve(root, sy_node_get(props, name), r);
        if (!prop)
            report_add(r, "%s: a field of the message missing from the body", fwhere);
        else
            compare_field(root, f, prop, fwhere, depth, r);
    }
    for (size_t i = 0; i < sy_node_len(props); i++) {
        const char *name = NULL;

        sy_node_at(props, i, &name);
        if (strcmp(name, "actor") == 0 || !sy_node_get(fields, name))
            report_add(r, "%s.%s: in the body but not a field the message takes", where, name);
    }
    for (size_t i = 0; i < sy_node_len(required); i++) {
        const char *name = sy_node_str(sy_node_at(required, i, NULL));
        if (!name || !sy_node_get(props, name))
            report_add(r, "%s: requires '%s', which is not among its properties", where,
                       name ? name : "(not a scalar)");
    }
}

/* (d) Each write's JSON body against the data fields of the message it becomes. */
static void check_bodies(const struct sy_node *root, const struct api_op *ops, size_t nops,
                         struct report *r)
{
    for (size_t i = 0; i < nops; i++) {
        const struct sy_node *op = operation(root, ops[i].path, ops[i].method), *body, *schema;
        struct sy_doc *msg;
        char rel[256], where[256];

        if (!ops[i].type)
            continue;
        snprintf(where, sizeof where, "%s %s body", ops[i].method, ops[i].path);
        if (!op) {
            report_add(r, "%s: no such operation", where);
            continue;
        }
        body = resolve(root, sy_node_get(op, "requestBody"), r);
        if (!body) {
            report_add(r, "%s: no requestBody", where);
            continue;
        }
        if (!flag(body, "required"))
            report_add(r, "%s: the body is not marked required", where);
        schema =
            sy_node_get(sy_node_get(sy_node_get(body, "content"), "application/json"), "schema");
        if (!schema) {
            report_add(r, "%s: no application/json schema", where);
            continue;
        }
        snprintf(rel, sizeof rel, "schemas/messages/%s.yaml", ops[i].type);
        msg = load_source_file(rel);
        compare_object(root, sy_node_get(sy_node_get(sy_doc_root(msg), "data"), "fields"), schema,
                       ops[i].supplied, where, 0, r);
        sy_doc_destroy(msg);
    }
}

/* --- the real document -------------------------------------------------------------------- */

static void assert_clean(const struct report *r)
{
    if (r->n != 0)
        fail_msg("%d problem(s):\n%s", r->n, r->text);
}

static void every_route_is_documented_with_its_method(void **state)
{
    struct sy_doc *doc = load_source_file("schemas/openapi.yaml");
    struct report r = {0};

    (void)state;
    assert_true(gw_nroutes > 0);
    check_routes_documented(sy_doc_root(doc), gw_routes, gw_nroutes, &r);
    assert_clean(&r);
    sy_doc_destroy(doc);
}

static void nothing_is_documented_that_is_not_served(void **state)
{
    struct sy_doc *doc = load_source_file("schemas/openapi.yaml");
    struct report r = {0};

    (void)state;
    check_nothing_extra(sy_doc_root(doc), gw_routes, gw_nroutes, &r);
    assert_clean(&r);
    sy_doc_destroy(doc);
}

static void api_operations_need_credentials_and_document_their_answers(void **state)
{
    struct sy_doc *doc = load_source_file("schemas/openapi.yaml");
    struct report r = {0};
    size_t napi = 0;

    (void)state;
    /* The table above covers the API routes exactly, so its roles and messages are checked
     * for every one of them. */
    for (size_t i = 0; i < gw_nroutes; i++)
        if (strncmp(gw_routes[i].pattern, "/api/", 5) == 0)
            napi++;
    assert_int_equal(napi, API_NOPS);
    check_operations(sy_doc_root(doc), API_OPS, API_NOPS, &r);
    assert_clean(&r);
    sy_doc_destroy(doc);
}

static void write_bodies_mirror_their_message_schemas(void **state)
{
    struct sy_doc *doc = load_source_file("schemas/openapi.yaml");
    struct report r = {0};

    (void)state;
    check_bodies(sy_doc_root(doc), API_OPS, API_NOPS, &r);
    assert_clean(&r);
    sy_doc_destroy(doc);
}

/* --- the checkers catch what they are for ------------------------------------------------- */

static const struct gw_route FAKE_ROUTES[] = {
    {"GET", "/a/", NULL},
    {"POST", "/a/", NULL},
};

static void a_route_left_out_or_a_path_not_served_is_reported(void **state)
{
    struct sy_doc *doc = load_text("paths:\n"
                                   "  /a/:\n"
                                   "    get: {}\n"
                                   "    parameters: []\n"
                                   "  /c/:\n"
                                   "    put: {}\n"
                                   "    Get: {}\n");
    struct report r = {0};

    (void)state;
    check_routes_documented(sy_doc_root(doc), FAKE_ROUTES, 2, &r);
    assert_int_equal(r.n, 1);
    assert_non_null(strstr(r.text, "POST /a/ is served but not documented"));

    memset(&r, 0, sizeof r);
    check_nothing_extra(sy_doc_root(doc), FAKE_ROUTES, 2, &r);
    assert_int_equal(r.n, 2);
    assert_non_null(strstr(r.text, "put /c/ is documented but not served"));
    assert_non_null(strstr(r.text, "'Get' is neither"));
    sy_doc_destroy(doc);
}

static void missing_answers_credentials_and_roles_are_reported(void **state)
{
    static const struct api_op ops[] = {
        {"post", "/api/x/", "agent,admin", "grievance.user_upsert", NULL},
        {"get", "/api/x/{id}/", READERS, NULL, NULL},
    };
    struct sy_doc *doc =
        load_text("paths:\n"
                  "  /api/x/:\n"
                  "    post:\n"
                  "      description: 'Roles: agent.'\n"
                  "      x-roles: [agent, chatbot]\n"
                  "      security: [{Key: []}]\n"
                  "      responses:\n"
                  "        '202': {}\n"
                  "        '400': {}\n"
                  "        '401': {}\n"
                  "        '503': {$ref: '#/components/responses/Busy'}\n"
                  "  /api/x/{id}/:\n"
                  "    get:\n"
                  "      description: 'Roles: chatbot, agent, admin, readonly.'\n"
                  "      x-roles: [chatbot, agent, admin, readonly]\n"
                  "      security: [{Key: []}, {}]\n"
                  "      responses: {'200': {}, '401': {}, '403': {}, '404': {}}\n"
                  "  /api/y/:\n"
                  "    get:\n"
                  "      responses: {'200': {}, '401': {}, '403': {}, '404': {}}\n"
                  "components:\n"
                  "  securitySchemes: {Key: {type: apiKey, in: header, name: X-API-Key}}\n"
                  "  responses: {Busy: {description: busy}}\n");
    struct report r = {0};

    (void)state;
    check_operations(sy_doc_root(doc), ops, 2, &r);
    assert_non_null(strstr(r.text, "post /api/x/: response 403 is not documented"));
    assert_non_null(strstr(r.text, "post /api/x/: its 503 does not announce Retry-After"));
    assert_non_null(strstr(r.text, "x-roles names 'chatbot'"));
    assert_non_null(strstr(r.text, "x-roles leaves out 'admin'"));
    assert_non_null(strstr(r.text, "does not name role 'admin'"));
    assert_non_null(strstr(r.text, "get /api/x/{id}/: security[1] lets a caller in"));
    assert_non_null(strstr(r.text, "get /api/y/: no security requirement"));
    assert_non_null(strstr(r.text, "get /api/y/: not in this test's table"));
    assert_int_equal(r.n, 8);
    sy_doc_destroy(doc);
}

static void a_body_that_drifts_from_its_message_is_reported(void **state)
{
    static const struct api_op ops[] = {
        {"post", "/api/users/", WRITERS, "grievance.user_upsert", NULL},
        {"put", "/api/users/{id}/", WRITERS, "grievance.user_upsert", "phone_number"},
    };
    /* POST: phone_number not required, name too long, an extra field, unknown fields let in.
     * PUT: phone_number required although the path gives it, and a reference outside. */
    struct sy_doc *doc = load_text("paths:\n"
                                   "  /api/users/:\n"
                                   "    post:\n"
                                   "      requestBody:\n"
                                   "        required: true\n"
                                   "        content:\n"
                                   "          application/json:\n"
                                   "            schema: {$ref: '#/components/schemas/U'}\n"
                                   "  /api/users/{id}/:\n"
                                   "    put:\n"
                                   "      requestBody:\n"
                                   "        required: true\n"
                                   "        content:\n"
                                   "          application/json:\n"
                                   "            schema:\n"
                                   "              type: object\n"
                                   "              additionalProperties: false\n"
                                   "              required: [phone_number, name]\n"
                                   "              properties:\n"
                                   "                phone_number: {$ref: 'other.yaml#/P'}\n"
                                   "                name: {type: string, minLength: 1,"
                                   " maxLength: 200}\n"
                                   "components:\n"
                                   "  schemas:\n"
                                   "    U:\n"
                                   "      type: object\n"
                                   "      required: [name]\n"
                                   "      properties:\n"
                                   "        phone_number: {type: string, minLength: 8,"
                                   " maxLength: 16}\n"
                                   "        name: {type: string, minLength: 1, maxLength: 300}\n"
                                   "        nick: {type: string}\n");
    struct report r = {0};

    (void)state;
    check_bodies(sy_doc_root(doc), ops, 2, &r);
    assert_non_null(strstr(r.text, "post /api/users/ body: additionalProperties is not false"));
    assert_non_null(strstr(r.text, "post /api/users/ body.phone_number: optional in the body "
                                   "but required in the message"));
    assert_non_null(strstr(r.text, "post /api/users/ body.name: maxLength 300 in the body"));
    assert_non_null(strstr(r.text, "post /api/users/ body.nick: in the body but not a field"));
    assert_non_null(strstr(r.text, "put /api/users/{id}/ body.phone_number: required in the body "
                                   "but not needed from the client"));
    assert_non_null(strstr(r.text, "$ref 'other.yaml#/P': only plain local references"));
    assert_int_equal(r.n, 7); /* the foreign $ref also leaves phone_number without a schema */
    sy_doc_destroy(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_route_is_documented_with_its_method),
        cmocka_unit_test(nothing_is_documented_that_is_not_served),
        cmocka_unit_test(api_operations_need_credentials_and_document_their_answers),
        cmocka_unit_test(write_bodies_mirror_their_message_schemas),
        cmocka_unit_test(a_route_left_out_or_a_path_not_served_is_reported),
        cmocka_unit_test(missing_answers_credentials_and_roles_are_reported),
        cmocka_unit_test(a_body_that_drifts_from_its_message_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
