/* schema.c - message schemas: compiled once from YAML into flat tables, then checked against
 * decoded messages without allocating or locking. */
#include "sy/schema.h"

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/msg.h"

#define SCHEMA_MAX_FILES 10000
#define NO_SPEC          UINT32_MAX
/* How much of an offending value a reason quotes. */
#define QUOTE_MAX 64

enum ftype { FT_ANY, FT_STR, FT_INT, FT_FLOAT, FT_BOOL, FT_BIN, FT_MAP, FT_ARRAY, FT_COUNT };
static const char *const ftype_names[FT_COUNT] = {"any",  "str", "int", "float",
                                                  "bool", "bin", "map", "array"};

struct spec {
    enum ftype type;
    bool required, nullable;
    bool has_min, has_max;             /* int and float bounds */
    bool has_min_len, has_max_len;     /* str and bin, in bytes */
    bool has_min_items, has_max_items; /* array */
    int64_t imin, imax;
    double fmin, fmax;
    uint64_t min_len, max_len, min_items, max_items;
    uint32_t enum_first, enum_count;   /* into enums */
    uint32_t field_first, field_count; /* into fields */
    uint32_t items;                    /* spec of each element, or NO_SPEC */
};

/* Strings live in one arena and are named by offset, since the arena grows while loading. */
struct strref {
    size_t off, len;
};

struct field {
    struct strref name;
    uint32_t spec;
};

struct type_schema {
    struct strref name;
    uint32_t versions_first, versions_count;
    uint32_t data;
};

struct sy_schemas {
    struct type_schema *types;
    size_t ntypes, captypes;
    struct spec *specs;
    size_t nspecs, capspecs;
    struct field *fields;
    size_t nfields, capfields;
    struct strref *enums;
    size_t nenums, capenums;
    int *versions;
    size_t nversions, capversions;
    char *arena;
    size_t arena_len, arena_cap;
};

/* --- loading --------------------------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *p;

    if (need <= *cap)
        return 0;
    if (need > UINT32_MAX)
        return -SY_ETOOBIG;
    ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    p = realloc(*arr, ncap * elem);
    if (!p)
        return -SY_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

#define GROW(s, arr, n, cap, add)                                                                  \
    grow((void **)&(s)->arr, &(s)->cap, (s)->n + (add), sizeof *(s)->arr)

static int intern(struct sy_schemas *s, const char *str, struct strref *out)
{
    size_t n = strlen(str);
    int rc = grow((void **)&s->arena, &s->arena_cap, s->arena_len + n + 1, 1);

    if (rc < 0)
        return rc;
    memcpy(s->arena + s->arena_len, str, n + 1);
    *out = (struct strref){.off = s->arena_len, .len = n};
    s->arena_len += n + 1;
    return 0;
}

static const char *str_of(const struct sy_schemas *s, struct strref r)
{
    return s->arena + r.off;
}

/* What a file is being compiled with: the errors name it and the line. */
struct loader {
    struct sy_schemas *s;
    const struct sy_doc *doc;
    const char *name;
    char *err;
    size_t errlen;
};

static int load_err(struct loader *l, const struct sy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int load_err(struct loader *l, const struct sy_node *n, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s:%d: %s", l->name, n ? sy_node_line(n) : 1, why);
    return -SY_ECONFIG;
}

/* sy_node_* readers say "line N: key: why"; a schema error says "file:N: key: why". */
static int node_err(struct loader *l, const struct sy_node *n, const char *sub)
{
    int line = 0, used = 0;

    if (sscanf(sub, "line %d:%n", &line, &used) == 1 && used > 0)
        snprintf(l->err, l->errlen, "%s:%d:%s", l->name, line, sub + used);
    else
        snprintf(l->err, l->errlen, "%s:%d: %s", l->name, n ? sy_node_line(n) : 1, sub);
    return -SY_ECONFIG;
}

static int nomem(struct loader *l, int rc)
{
    if (rc == -SY_ENOMEM)
        snprintf(l->err, l->errlen, "%s: out of memory", l->name);
    else
        snprintf(l->err, l->errlen, "%s: too many schema entries", l->name);
    return rc;
}

static int read_bool(struct loader *l, const struct sy_node *n, bool *out)
{
    char sub[256];

    if (!n)
        return 0;
    if (sy_node_bool(n, out, sub, sizeof sub) < 0)
        return node_err(l, n, sub);
    return 0;
}

static int read_count(struct loader *l, const struct sy_node *n, bool *has, uint64_t *out)
{
    char sub[256];
    long long v;

    if (!n)
        return 0;
    if (sy_node_int(n, 0, LLONG_MAX, &v, sub, sizeof sub) < 0)
        return node_err(l, n, sub);
    *has = true;
    *out = (uint64_t)v;
    return 0;
}

static int type_of(struct loader *l, const struct sy_node *n, enum ftype *out)
{
    const char *t = sy_node_str(n);

    for (int i = 0; t && i < FT_COUNT; i++) {
        if (strcmp(t, ftype_names[i]) == 0) {
            *out = (enum ftype)i;
            return 0;
        }
    }
    return load_err(l, n, "type: '%.64s' is not one of str, int, float, bool, bin, map, array, any",
                    t ? t : "(not a scalar)");
}

static int compile_spec(struct loader *l, const struct sy_node *n, bool is_data, uint32_t *out);

/* Keys a field spec may have only for some types, with the types that take them. */
struct restricted {
    const char *key;
    unsigned types; /* bit per enum ftype */
    const char *which;
};

#define BIT(t) (1u << (t))
static const struct restricted restricted_keys[] = {
    {"enum", BIT(FT_STR), "str"},
    {"min", BIT(FT_INT) | BIT(FT_FLOAT), "int and float"},
    {"max", BIT(FT_INT) | BIT(FT_FLOAT), "int and float"},
    {"min_len", BIT(FT_STR) | BIT(FT_BIN), "str and bin"},
    {"max_len", BIT(FT_STR) | BIT(FT_BIN), "str and bin"},
    {"fields", BIT(FT_MAP), "map"},
    {"items", BIT(FT_ARRAY), "array"},
    {"min_items", BIT(FT_ARRAY), "array"},
    {"max_items", BIT(FT_ARRAY), "array"},
};

static int compile_bounds(struct loader *l, const struct sy_node *n, struct spec *sp)
{
    const struct sy_node *lo = sy_node_get(n, "min"), *hi = sy_node_get(n, "max");
    char sub[256];
    int rc;

    if (sp->type == FT_INT) {
        long long v;
        if (lo) {
            if (sy_node_int(lo, LLONG_MIN, LLONG_MAX, &v, sub, sizeof sub) < 0)
                return node_err(l, lo, sub);
            sp->has_min = true;
            sp->imin = v;
        }
        if (hi) {
            if (sy_node_int(hi, LLONG_MIN, LLONG_MAX, &v, sub, sizeof sub) < 0)
                return node_err(l, hi, sub);
            sp->has_max = true;
            sp->imax = v;
        }
        if (sp->has_min && sp->has_max && sp->imin > sp->imax)
            return load_err(l, hi, "max %" PRId64 " is less than min %" PRId64, sp->imax, sp->imin);
    } else if (sp->type == FT_FLOAT) {
        if (lo) {
            if (sy_node_double(lo, &sp->fmin, sub, sizeof sub) < 0)
                return node_err(l, lo, sub);
            sp->has_min = true;
        }
        if (hi) {
            if (sy_node_double(hi, &sp->fmax, sub, sizeof sub) < 0)
                return node_err(l, hi, sub);
            sp->has_max = true;
        }
        if (sp->has_min && sp->has_max && sp->fmin > sp->fmax)
            return load_err(l, hi, "max %g is less than min %g", sp->fmax, sp->fmin);
    }
    rc = read_count(l, sy_node_get(n, "min_len"), &sp->has_min_len, &sp->min_len);
    if (rc == 0)
        rc = read_count(l, sy_node_get(n, "max_len"), &sp->has_max_len, &sp->max_len);
    if (rc == 0)
        rc = read_count(l, sy_node_get(n, "min_items"), &sp->has_min_items, &sp->min_items);
    if (rc == 0)
        rc = read_count(l, sy_node_get(n, "max_items"), &sp->has_max_items, &sp->max_items);
    if (rc < 0)
        return rc;
    if (sp->has_min_len && sp->has_max_len && sp->min_len > sp->max_len)
        return load_err(l, sy_node_get(n, "max_len"),
                        "max_len %" PRIu64 " is less than min_len %" PRIu64, sp->max_len,
                        sp->min_len);
    if (sp->has_min_items && sp->has_max_items && sp->min_items > sp->max_items)
        return load_err(l, sy_node_get(n, "max_items"),
                        "max_items %" PRIu64 " is less than min_items %" PRIu64, sp->max_items,
                        sp->min_items);
    return 0;
}

static int compile_enum(struct loader *l, const struct sy_node *e, uint32_t idx)
{
    struct sy_schemas *s = l->s;
    size_t n = sy_node_len(e);
    uint32_t first;
    int rc;

    if (sy_node_kind(e) != SY_NODE_SEQ || n == 0)
        return load_err(l, e, "enum: expected a non-empty list of strings");
    rc = GROW(s, enums, nenums, capenums, n);
    if (rc < 0)
        return nomem(l, rc);
    first = (uint32_t)s->nenums;
    for (size_t i = 0; i < n; i++) {
        const struct sy_node *v = sy_node_at(e, i, NULL);
        if (sy_node_kind(v) != SY_NODE_SCALAR || sy_node_is_null(v))
            return load_err(l, v, "enum: expected a non-empty list of strings");
        rc = intern(s, sy_node_str(v), &s->enums[s->nenums]);
        if (rc < 0)
            return nomem(l, rc);
        s->nenums++;
    }
    s->specs[idx].enum_first = first;
    s->specs[idx].enum_count = (uint32_t)n;
    return 0;
}

static int compile_fields(struct loader *l, const struct sy_node *f, uint32_t idx)
{
    struct sy_schemas *s = l->s;
    size_t n = sy_node_len(f);
    uint32_t first;
    int rc;

    if (sy_node_kind(f) != SY_NODE_MAP)
        return load_err(l, f, "fields: expected a map of field specs");
    /* A map's fields are one contiguous run; nested maps append theirs after it. */
    rc = GROW(s, fields, nfields, capfields, n);
    if (rc < 0)
        return nomem(l, rc);
    first = (uint32_t)s->nfields;
    s->nfields += n;
    s->specs[idx].field_first = first;
    s->specs[idx].field_count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const char *key;
        const struct sy_node *v = sy_node_at(f, i, &key);
        uint32_t child;

        rc = intern(s, key, &s->fields[first + i].name);
        if (rc < 0)
            return nomem(l, rc);
        rc = compile_spec(l, v, false, &child);
        if (rc < 0)
            return rc;
        s->fields[first + i].spec = child;
    }
    return 0;
}

static int compile_spec(struct loader *l, const struct sy_node *n, bool is_data, uint32_t *out)
{
    static const char *const field_keys[] = {
        "type", "required", "nullable", "description", "min_len",   "max_len",   "min",
        "max",  "enum",     "fields",   "items",       "min_items", "max_items", NULL};
    static const char *const data_keys[] = {"type", "fields", "description", NULL};
    struct sy_schemas *s = l->s;
    const struct sy_node *t, *sub;
    struct spec sp = {.items = NO_SPEC};
    uint32_t idx;
    int rc;

    if (!n || sy_node_kind(n) != SY_NODE_MAP)
        return load_err(l, n, "expected a field spec (a map with at least a type)");
    rc = sy_node_check_keys(l->doc, n, is_data ? data_keys : field_keys, l->err, l->errlen);
    if (rc < 0)
        return rc;
    t = sy_node_get(n, "type");
    if (is_data) {
        sp.type = FT_MAP;
        if (t && (!sy_node_str(t) || strcmp(sy_node_str(t), "map") != 0))
            return load_err(l, t, "type: data is always a map");
    } else {
        if (!t)
            return load_err(l, n, "type: missing");
        rc = type_of(l, t, &sp.type);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof restricted_keys / sizeof restricted_keys[0]; i++) {
        const struct restricted *r = &restricted_keys[i];
        const struct sy_node *v = sy_node_get(n, r->key);
        if (v && !(r->types & BIT(sp.type)))
            return load_err(l, v, "%s is only for %s (this field is %s)", r->key, r->which,
                            ftype_names[sp.type]);
    }
    if (sy_node_get(n, "description") &&
        sy_node_kind(sy_node_get(n, "description")) != SY_NODE_SCALAR)
        return load_err(l, sy_node_get(n, "description"), "description: expected text");
    rc = read_bool(l, sy_node_get(n, "required"), &sp.required);
    if (rc == 0)
        rc = read_bool(l, sy_node_get(n, "nullable"), &sp.nullable);
    if (rc == 0)
        rc = compile_bounds(l, n, &sp);
    if (rc < 0)
        return rc;

    rc = GROW(s, specs, nspecs, capspecs, 1);
    if (rc < 0)
        return nomem(l, rc);
    idx = (uint32_t)s->nspecs++;
    s->specs[idx] = sp;
    /* Children may grow the tables: from here on the spec is reached by index only. */
    sub = sy_node_get(n, "enum");
    if (sub && (rc = compile_enum(l, sub, idx)) < 0)
        return rc;
    sub = sy_node_get(n, "fields");
    if (sub && (rc = compile_fields(l, sub, idx)) < 0)
        return rc;
    sub = sy_node_get(n, "items");
    if (sub) {
        uint32_t child;
        rc = compile_spec(l, sub, false, &child);
        if (rc < 0)
            return rc;
        s->specs[idx].items = child;
    }
    *out = idx;
    return 0;
}

static int compile_file(struct loader *l, const char *base)
{
    static const char *const top_keys[] = {"type", "versions", "description", "data", NULL};
    struct sy_schemas *s = l->s;
    const struct sy_node *root = sy_doc_root(l->doc), *t, *vers, *data;
    struct type_schema ts = {.data = NO_SPEC};
    size_t baselen = strlen(base) - strlen(".yaml");
    const char *tname;
    size_t nv;
    int rc;

    if (!root || sy_node_kind(root) != SY_NODE_MAP)
        return load_err(l, root, "expected a map with type, versions and data");
    rc = sy_node_check_keys(l->doc, root, top_keys, l->err, l->errlen);
    if (rc < 0)
        return rc;

    t = sy_node_get(root, "type");
    tname = sy_node_str(t);
    if (!t)
        return load_err(l, root, "type: missing");
    if (!tname || sy_node_is_null(t))
        return load_err(l, t, "type: expected the message type");
    if (strlen(tname) != baselen || strncmp(tname, base, baselen) != 0)
        return load_err(l, t, "type '%.128s' does not match the file name (expected '%.*s')", tname,
                        (int)baselen, base);
    if (baselen > SY_MSG_TYPE_MAX || !sy_msg_type_valid(tname, baselen))
        return load_err(l, t,
                        "type '%.128s' is not a routing key (words of a-z, 0-9 and _ "
                        "joined by dots)",
                        tname);

    vers = sy_node_get(root, "versions");
    nv = sy_node_len(vers);
    if (!vers)
        return load_err(l, root, "versions: missing");
    if (sy_node_kind(vers) != SY_NODE_SEQ || nv == 0)
        return load_err(l, vers, "versions: expected a non-empty list of integers >= 1");
    rc = GROW(s, versions, nversions, capversions, nv);
    if (rc < 0)
        return nomem(l, rc);
    ts.versions_first = (uint32_t)s->nversions;
    ts.versions_count = (uint32_t)nv;
    for (size_t i = 0; i < nv; i++) {
        const struct sy_node *v = sy_node_at(vers, i, NULL);
        char sub[256];
        long long x;
        if (sy_node_int(v, 1, INT_MAX, &x, sub, sizeof sub) < 0)
            return node_err(l, v, sub);
        s->versions[s->nversions++] = (int)x;
    }

    {
        const struct sy_node *d = sy_node_get(root, "description");
        if (d && sy_node_kind(d) != SY_NODE_SCALAR)
            return load_err(l, d, "description: expected text");
    }

    data = sy_node_get(root, "data");
    if (data && !sy_node_is_null(data)) {
        rc = compile_spec(l, data, true, &ts.data);
        if (rc < 0)
            return rc;
    }

    rc = GROW(s, types, ntypes, captypes, 1);
    if (rc == 0)
        rc = intern(s, tname, &ts.name);
    if (rc < 0)
        return nomem(l, rc);
    s->types[s->ntypes++] = ts;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *n)
{
    size_t len = strlen(n);

    return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".yaml") == 0;
}

struct sy_schemas *sy_schemas_load(const char *dir, char *err, size_t errlen)
{
    struct sy_schemas *s = NULL;
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    DIR *d = NULL;
    struct dirent *de;
    bool ok = false;

    if (errlen)
        err[0] = '\0';
    if (!dir) {
        snprintf(err, errlen, "no schema directory given");
        return NULL;
    }
    d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open the schema directory", dir);
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    while ((de = readdir(d)) != NULL) {
        if (!is_yaml_name(de->d_name))
            continue;
        if (nnames >= SCHEMA_MAX_FILES) {
            snprintf(err, errlen, "%s: more than %d schema files", dir, SCHEMA_MAX_FILES);
            goto out;
        }
        if (grow((void **)&names, &cap, nnames + 1, sizeof *names) < 0)
            goto nomem;
        names[nnames] = strdup(de->d_name);
        if (!names[nnames])
            goto nomem;
        nnames++;
    }
    /* readdir's order is the file system's: sort so every replica loads the same way. */
    if (nnames)
        qsort(names, nnames, sizeof *names, cmp_names);
    for (size_t i = 0; i < nnames; i++) {
        char path[4096];
        struct sy_doc *doc;
        struct loader l = {.s = s, .name = path, .err = err, .errlen = errlen};
        int rc;

        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            snprintf(err, errlen, "%s: path too long", names[i]);
            goto out;
        }
        doc = sy_doc_load_file(path, err, errlen);
        if (!doc)
            goto out;
        l.doc = doc;
        rc = compile_file(&l, names[i]);
        sy_doc_destroy(doc);
        if (rc < 0)
            goto out;
    }
    ok = true;
    goto out;

nomem:
    snprintf(err, errlen, "%s: out of memory loading schemas", dir);
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    if (!ok) {
        sy_schemas_destroy(s);
        return NULL;
    }
    return s;
}

void sy_schemas_destroy(struct sy_schemas *s)
{
    if (!s)
        return;
    free(s->types);
    free(s->specs);
    free(s->fields);
    free(s->enums);
    free(s->versions);
    free(s->arena);
    free(s);
}

size_t sy_schemas_count(const struct sy_schemas *s)
{
    return s ? s->ntypes : 0;
}

static const struct type_schema *find_type(const struct sy_schemas *s, const char *type)
{
    size_t lo = 0, hi = s ? s->ntypes : 0;

    /* Files were loaded in name order, and a type is its file's name. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(str_of(s, s->types[mid].name), type);
        if (c == 0)
            return &s->types[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int sy_schemas_has(const struct sy_schemas *s, const char *type)
{
    return type && find_type(s, type) != NULL;
}

/* --- checking -------------------------------------------------------------------------- */

/* Everything a check needs lives on the caller's stack: no allocation, no shared state. The
 * path to the value being checked is kept as steps and only spelled out when a check fails,
 * so a valid message costs no formatting at all. */
struct step {
    const char *name; /* a map key (NUL-terminated, from the schema), or NULL for an index */
    uint32_t index;
};

struct checker {
    const struct sy_schemas *s;
    char *err;
    size_t errlen;
    struct step steps[SY_MSG_MAX_DEPTH + 2];
    size_t depth;
    char path[512];
};

/* Enters a step and returns the depth to pop back to. Steps past the message depth limit (which
 * a decoded message cannot reach) are not recorded. */
static size_t push(struct checker *c, const char *name, uint32_t index)
{
    size_t mark = c->depth;

    if (c->depth < sizeof c->steps / sizeof c->steps[0]) {
        c->steps[c->depth].name = name;
        c->steps[c->depth].index = index;
        c->depth++;
    }
    return mark;
}

static void pop(struct checker *c, size_t mark)
{
    c->depth = mark;
}

/* Spells out the current path ("data.files.2.file_type") into c->path. */
static const char *path_text(struct checker *c)
{
    size_t used = 0;

    c->path[0] = '\0';
    for (size_t i = 0; i < c->depth && used < sizeof c->path - 1; i++) {
        const struct step *st = &c->steps[i];
        int w = st->name ? snprintf(c->path + used, sizeof c->path - used, "%s%s", i ? "." : "",
                                    st->name)
                         : snprintf(c->path + used, sizeof c->path - used, ".%" PRIu32, st->index);
        if (w < 0)
            break;
        used = used + (size_t)w < sizeof c->path ? used + (size_t)w : sizeof c->path - 1;
    }
    return c->path;
}

static int bad(struct checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct checker *c, const char *fmt, ...)
{
    char why[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", path_text(c), why);
    return -SY_ESCHEMA;
}

/* How many bytes of s to quote so the quote stays short and valid UTF-8. */
static int quote_len(const char *s, size_t len)
{
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;

    while (n < len && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

static int check_enum(struct checker *c, const struct spec *sp, const char *v, size_t len)
{
    const struct sy_schemas *s = c->s;
    size_t used;
    int w;

    for (uint32_t i = 0; i < sp->enum_count; i++) {
        struct strref e = s->enums[sp->enum_first + i];
        if (e.len == len && memcmp(str_of(s, e), v, len) == 0)
            return 0;
    }
    w = snprintf(c->err, c->errlen, "%s: '%.*s%s' is not one of ", path_text(c), quote_len(v, len),
                 v, len > QUOTE_MAX ? "..." : "");
    used = w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < sp->enum_count && used < c->errlen; i++) {
        w = snprintf(c->err + used, c->errlen - used, "%s%s", i ? ", " : "",
                     str_of(s, s->enums[sp->enum_first + i]));
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return -SY_ESCHEMA;
}

static int check_len(struct checker *c, const struct spec *sp, size_t len)
{
    if (sp->has_min_len && len < sp->min_len)
        return bad(c, "%zu bytes, at least %" PRIu64, len, sp->min_len);
    if (sp->has_max_len && len > sp->max_len)
        return bad(c, "%zu bytes, at most %" PRIu64, len, sp->max_len);
    return 0;
}

static int check_value(struct checker *c, uint32_t idx, const msgpack_object *o);

static int check_map(struct checker *c, const struct spec *sp, const msgpack_object *o)
{
    const struct sy_schemas *s = c->s;

    for (uint32_t i = 0; i < sp->field_count; i++) {
        const struct field *f = &s->fields[sp->field_first + i];
        const struct spec *fs = &s->specs[f->spec];
        const msgpack_object *v = sy_mp_map_get(o, str_of(s, f->name), f->name.len);
        size_t mark = push(c, str_of(s, f->name), 0);
        int rc = 0;

        if (!v) {
            if (fs->required)
                rc = bad(c, "required");
        } else if (v->type == MSGPACK_OBJECT_NIL && !fs->nullable && fs->required) {
            rc = bad(c, "required, got nil");
        } else {
            rc = check_value(c, f->spec, v);
        }
        pop(c, mark);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check_array(struct checker *c, const struct spec *sp, const msgpack_object *o)
{
    uint32_t n = o->via.array.size;

    if (sp->has_min_items && n < sp->min_items)
        return bad(c, "%" PRIu32 " items, at least %" PRIu64, n, sp->min_items);
    if (sp->has_max_items && n > sp->max_items)
        return bad(c, "%" PRIu32 " items, at most %" PRIu64, n, sp->max_items);
    if (sp->items == NO_SPEC)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t mark = push(c, NULL, i);
        int rc = check_value(c, sp->items, &o->via.array.ptr[i]);
        pop(c, mark);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check_int(struct checker *c, const struct spec *sp, const msgpack_object *o)
{
    int64_t v;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return bad(c, "%" PRIu64 " does not fit a 64-bit signed int", o->via.u64);
        v = (int64_t)o->via.u64;
    } else {
        v = o->via.i64;
    }
    if (sp->has_min && v < sp->imin)
        return bad(c, "%" PRId64 ", at least %" PRId64, v, sp->imin);
    if (sp->has_max && v > sp->imax)
        return bad(c, "%" PRId64 ", at most %" PRId64, v, sp->imax);
    return 0;
}

static int check_float(struct checker *c, const struct spec *sp, const msgpack_object *o)
{
    double v;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = (double)o->via.i64;
    else
        v = o->via.f64;
    /* Written so that NaN fails any bound. */
    if (sp->has_min && !(v >= sp->fmin))
        return bad(c, "%g, at least %g", v, sp->fmin);
    if (sp->has_max && !(v <= sp->fmax))
        return bad(c, "%g, at most %g", v, sp->fmax);
    return 0;
}

static bool type_matches(enum ftype t, msgpack_object_type ot)
{
    bool is_int = ot == MSGPACK_OBJECT_POSITIVE_INTEGER || ot == MSGPACK_OBJECT_NEGATIVE_INTEGER;

    switch (t) {
    case FT_ANY:
        return true;
    case FT_STR:
        return ot == MSGPACK_OBJECT_STR;
    case FT_INT:
        return is_int;
    case FT_FLOAT:
        return is_int || ot == MSGPACK_OBJECT_FLOAT32 || ot == MSGPACK_OBJECT_FLOAT64;
    case FT_BOOL:
        return ot == MSGPACK_OBJECT_BOOLEAN;
    case FT_BIN:
        return ot == MSGPACK_OBJECT_BIN;
    case FT_MAP:
        return ot == MSGPACK_OBJECT_MAP;
    case FT_ARRAY:
        return ot == MSGPACK_OBJECT_ARRAY;
    case FT_COUNT:
        break;
    }
    return false;
}

static int check_value(struct checker *c, uint32_t idx, const msgpack_object *o)
{
    const struct spec *sp = &c->s->specs[idx];
    int rc;

    if (o->type == MSGPACK_OBJECT_NIL && (sp->nullable || sp->type == FT_ANY))
        return 0;
    if (!type_matches(sp->type, o->type))
        return bad(c, "expected %s, got %s", ftype_names[sp->type], sy_mp_type_name(o));
    switch (sp->type) {
    case FT_STR:
        rc = check_len(c, sp, o->via.str.size);
        if (rc == 0 && sp->enum_count)
            rc = check_enum(c, sp, o->via.str.ptr, o->via.str.size);
        return rc;
    case FT_BIN:
        return check_len(c, sp, o->via.bin.size);
    case FT_INT:
        return check_int(c, sp, o);
    case FT_FLOAT:
        return check_float(c, sp, o);
    case FT_MAP:
        return check_map(c, sp, o);
    case FT_ARRAY:
        return check_array(c, sp, o);
    default:
        return 0;
    }
}

static void versions_text(const struct sy_schemas *s, const struct type_schema *t, char *buf,
                          size_t sz)
{
    size_t used = 0;

    buf[0] = '\0';
    for (uint32_t i = 0; i < t->versions_count && used < sz; i++) {
        int w = snprintf(buf + used, sz - used, "%s%d", i ? ", " : "",
                         s->versions[t->versions_first + i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int sy_schemas_check(const struct sy_schemas *s, const struct sy_msg *msg, char *err, size_t errlen)
{
    struct checker c = {.s = s, .err = err, .errlen = errlen};
    const struct type_schema *t;
    const char *type;
    bool accepted = false;
    int v;

    if (errlen)
        err[0] = '\0';
    if (!s || !msg) {
        snprintf(err, errlen, "invalid argument");
        return -SY_EINVAL;
    }
    type = sy_msg_type(msg);
    t = find_type(s, type);
    if (!t) {
        snprintf(err, errlen, "unknown type '%s'", type);
        return -SY_ESCHEMA;
    }
    v = sy_msg_version(msg);
    for (uint32_t i = 0; i < t->versions_count; i++)
        accepted = accepted || s->versions[t->versions_first + i] == v;
    if (!accepted) {
        char list[128];
        versions_text(s, t, list, sizeof list);
        snprintf(err, errlen, "version %d not accepted for '%s' (accepts %s)", v, type, list);
        return -SY_ESCHEMA;
    }
    if (t->data == NO_SPEC)
        return 0;
    push(&c, "data", 0);
    return check_value(&c, t->data, sy_msg_data_obj(msg));
}
