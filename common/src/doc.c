/* doc.c - YAML documents as read-only trees, built from libyaml's event parser. */
#include "sy/doc.h"

#include "sy/config.h"
#include "sy/err.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* A key as kept for lookup: maps answer sy_node_get by binary search over these. */
struct key_ref {
    const char *key;
    size_t idx;
};

struct sy_node {
    enum sy_node_kind kind;
    int line;
    bool plain; /* scalar written without quotes */
    const struct sy_node *parent;
    size_t index; /* position in the parent, for error paths */
    char *str;    /* scalar text */
    size_t len;   /* entries of a map or sequence */
    size_t cap;
    struct sy_node **vals; /* elements, or map values */
    char **keys;           /* map keys, parallel to vals */
    int *key_lines;
    struct key_ref *sorted; /* map keys sorted, built when the map is complete */
};

struct sy_doc {
    char *name;
    struct sy_node *root;
};

/* What the builder keeps per open map or sequence. */
struct frame {
    struct sy_node *node;
    char *key; /* a map's key waiting for its value */
    int key_line;
};

struct builder {
    const char *name;
    char *err;
    size_t errlen;
    struct sy_node *root;
    struct frame stack[SY_DOC_MAX_DEPTH];
    size_t depth;
    size_t nodes;
};

static void node_free(struct sy_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->len; i++) {
        node_free(n->vals[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->vals);
    free(n->keys);
    free(n->key_lines);
    free(n->sorted);
    free(n->str);
    free(n);
}

static struct sy_node *node_new(struct builder *b, enum sy_node_kind kind, int line)
{
    struct sy_node *n;

    if (b->nodes >= SY_DOC_MAX_NODES) {
        sy_errf(b->err, b->errlen, "%s:%d: too many nodes (limit %u)", b->name, line,
                SY_DOC_MAX_NODES);
        return NULL;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        sy_errf(b->err, b->errlen, "%s:%d: out of memory", b->name, line);
        return NULL;
    }
    b->nodes++;
    n->kind = kind;
    n->line = line;
    return n;
}

/* Appends `child` (and, for a map, `key`, whose ownership moves on success) to `parent`. */
static int node_append(struct builder *b, struct sy_node *parent, char *key, int key_line,
                       struct sy_node *child)
{
    if (parent->len == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct sy_node **vals = realloc(parent->vals, cap * sizeof(*vals));

        if (!vals)
            goto nomem;
        parent->vals = vals;
        if (parent->kind == SY_NODE_MAP) {
            char **keys = realloc(parent->keys, cap * sizeof(*keys));

            if (!keys)
                goto nomem;
            parent->keys = keys;
            int *lines = realloc(parent->key_lines, cap * sizeof(*lines));

            if (!lines)
                goto nomem;
            parent->key_lines = lines;
        }
        parent->cap = cap;
    }
    if (parent->kind == SY_NODE_MAP) {
        parent->keys[parent->len] = key;
        parent->key_lines[parent->len] = key_line;
    }
    child->parent = parent;
    child->index = parent->len;
    parent->vals[parent->len++] = child;
    return 0;

nomem:
    sy_errf(b->err, b->errlen, "%s:%d: out of memory", b->name, child->line);
    return -SY_ENOMEM;
}

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Builds the lookup index of a complete map, and refuses it when a key repeats: the error
 * names the earliest repetition in document order. */
static int map_finish(struct builder *b, struct sy_node *map)
{
    size_t dup = SIZE_MAX, first = 0;

    if (map->len == 0)
        return 0;
    map->sorted = malloc(map->len * sizeof(*map->sorted));
    if (!map->sorted) {
        sy_errf(b->err, b->errlen, "%s:%d: out of memory", b->name, map->line);
        return -SY_ENOMEM;
    }
    for (size_t i = 0; i < map->len; i++)
        map->sorted[i] = (struct key_ref){map->keys[i], i};
    qsort(map->sorted, map->len, sizeof(*map->sorted), key_ref_cmp);
    for (size_t i = 1; i < map->len; i++) {
        if (strcmp(map->sorted[i].key, map->sorted[i - 1].key) == 0 && map->sorted[i].idx < dup) {
            /* Equal keys sort by position, so the group's first entry precedes this one. */
            size_t g = i - 1;

            while (g > 0 && strcmp(map->sorted[g - 1].key, map->sorted[i].key) == 0)
                g--;
            dup = map->sorted[i].idx;
            first = map->sorted[g].idx;
        }
    }
    if (dup != SIZE_MAX) {
        sy_errf(b->err, b->errlen, "%s:%d: duplicate key '%.64s' (first at line %d)", b->name,
                map->key_lines[dup], map->keys[dup], map->key_lines[first]);
        return -SY_ECONFIG;
    }
    return 0;
}

/* Places a finished scalar, or a new map or sequence, where the document expects it next. */
static int attach(struct builder *b, struct sy_node *n)
{
    struct frame *top;
    int rc;

    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    top = &b->stack[b->depth - 1];
    if (top->node->kind == SY_NODE_SEQ)
        return node_append(b, top->node, NULL, 0, n);
    rc = node_append(b, top->node, top->key, top->key_line, n);
    if (rc == 0)
        top->key = NULL;
    return rc;
}

/* True when the next node of the open map is a key rather than a value. */
static bool expecting_key(const struct builder *b)
{
    const struct frame *top;

    if (b->depth == 0)
        return false;
    top = &b->stack[b->depth - 1];
    return top->node->kind == SY_NODE_MAP && !top->key;
}

static bool plain_null(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev, int line)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    struct sy_node *n;

    if (ev->data.scalar.anchor) {
        sy_errf(b->err, b->errlen, "%s:%d: anchors (&%.64s) are not supported", b->name, line,
                (const char *)ev->data.scalar.anchor);
        return -SY_ECONFIG;
    }
    if (memchr(text, '\0', len)) {
        sy_errf(b->err, b->errlen, "%s:%d: NUL character in a scalar", b->name, line);
        return -SY_ECONFIG;
    }
    if (expecting_key(b)) {
        struct frame *top = &b->stack[b->depth - 1];

        /* A key counts against the node limit like any other scalar. */
        if (b->nodes >= SY_DOC_MAX_NODES) {
            sy_errf(b->err, b->errlen, "%s:%d: too many nodes (limit %u)", b->name, line,
                    SY_DOC_MAX_NODES);
            return -SY_ETOOBIG;
        }
        top->key = strndup(text, len);
        if (!top->key) {
            sy_errf(b->err, b->errlen, "%s:%d: out of memory", b->name, line);
            return -SY_ENOMEM;
        }
        top->key_line = line;
        b->nodes++;
        return 0;
    }
    n = node_new(b, SY_NODE_SCALAR, line);
    if (!n)
        return -SY_ETOOBIG;
    n->str = strndup(text, len);
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!n->str) {
        free(n);
        sy_errf(b->err, b->errlen, "%s:%d: out of memory", b->name, line);
        return -SY_ENOMEM;
    }
    if (attach(b, n) != 0) {
        node_free(n);
        return -SY_ENOMEM;
    }
    return 0;
}

static int on_start(struct builder *b, enum sy_node_kind kind, const yaml_char_t *anchor, int line)
{
    struct sy_node *n;

    if (anchor) {
        sy_errf(b->err, b->errlen, "%s:%d: anchors (&%.64s) are not supported", b->name, line,
                (const char *)anchor);
        return -SY_ECONFIG;
    }
    if (expecting_key(b)) {
        sy_errf(b->err, b->errlen, "%s:%d: a map key must be a scalar", b->name, line);
        return -SY_ECONFIG;
    }
    if (b->depth == SY_DOC_MAX_DEPTH) {
        sy_errf(b->err, b->errlen, "%s:%d: nested deeper than %d levels", b->name, line,
                SY_DOC_MAX_DEPTH);
        return -SY_ETOOBIG;
    }
    n = node_new(b, kind, line);
    if (!n)
        return -SY_ETOOBIG;
    if (attach(b, n) != 0) {
        node_free(n);
        return -SY_ENOMEM;
    }
    b->stack[b->depth++] = (struct frame){.node = n};
    return 0;
}

static int on_end(struct builder *b)
{
    struct frame *top = &b->stack[b->depth - 1];
    int rc = 0;

    if (top->node->kind == SY_NODE_MAP)
        rc = map_finish(b, top->node);
    b->depth--;
    return rc;
}

/* Line of a reader error, which libyaml reports as a byte offset only. */
static int line_at(const char *text, size_t len, size_t offset)
{
    int line = 1;

    for (size_t i = 0; i < offset && i < len; i++)
        line += text[i] == '\n';
    return line;
}

static void parser_error(struct builder *b, const yaml_parser_t *p, const char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : "cannot parse";

    if (p->error == YAML_READER_ERROR) {
        sy_errf(b->err, b->errlen, "%s:%d: %s", b->name, line_at(text, len, p->problem_offset),
                problem);
    } else if (p->error == YAML_MEMORY_ERROR) {
        sy_errf(b->err, b->errlen, "%s: out of memory", b->name);
    } else if (p->context) {
        sy_errf(b->err, b->errlen, "%s:%d: %s (%s started at line %d)", b->name,
                (int)p->problem_mark.line + 1, problem, p->context, (int)p->context_mark.line + 1);
    } else {
        sy_errf(b->err, b->errlen, "%s:%d: %s", b->name, (int)p->problem_mark.line + 1, problem);
    }
}

struct sy_doc *sy_doc_load_mem(const char *name, const char *text, size_t len, char *err,
                               size_t errlen)
{
    struct builder b = {.name = name ? name : "(yaml)", .err = err, .errlen = errlen};
    struct sy_doc *doc = NULL;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool parser_ready = false, done = false;
    int documents = 0, rc = 0;

    if (!text && len > 0) {
        sy_errf(err, errlen, "%s: no text", b.name);
        goto out;
    }
    if (len > SY_DOC_MAX_BYTES) {
        sy_errf(err, errlen, "%s: larger than %u bytes", b.name, SY_DOC_MAX_BYTES);
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        sy_errf(err, errlen, "%s: out of memory", b.name);
        goto out;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), len);

    while (!done && rc == 0) {
        int line;

        if (!yaml_parser_parse(&parser, &ev)) {
            parser_error(&b, &parser, text, len);
            rc = -SY_ECONFIG;
            break;
        }
        line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                sy_errf(err, errlen, "%s:%d: only one document is allowed", b.name, line);
                rc = -SY_ECONFIG;
            }
            break;
        case YAML_ALIAS_EVENT:
            sy_errf(err, errlen, "%s:%d: aliases (*%.64s) are not supported", b.name, line,
                    (const char *)ev.data.alias.anchor);
            rc = -SY_ECONFIG;
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&b, &ev, line);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(&b, SY_NODE_MAP, ev.data.mapping_start.anchor, line);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(&b, SY_NODE_SEQ, ev.data.sequence_start.anchor, line);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            rc = on_end(&b);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    if (rc != 0)
        goto out;

    doc = calloc(1, sizeof(*doc));
    if (doc)
        doc->name = strdup(b.name);
    if (!doc || !doc->name) {
        free(doc);
        doc = NULL;
        sy_errf(err, errlen, "%s: out of memory", b.name);
        goto out;
    }
    if (b.root && b.root->kind == SY_NODE_SCALAR && sy_node_is_null(b.root)) {
        node_free(b.root);
        b.root = NULL;
    }
    doc->root = b.root;
    b.root = NULL;

out:
    for (size_t i = 0; i < b.depth; i++)
        free(b.stack[i].key);
    node_free(b.root);
    if (parser_ready)
        yaml_parser_delete(&parser);
    return doc;
}

struct sy_doc *sy_doc_load_file(const char *path, char *err, size_t errlen)
{
    struct sy_doc *doc = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = sy_read_file(path, SY_DOC_MAX_BYTES, &text, &len);
    if (rc == -SY_ETOOBIG) {
        sy_errf(err, errlen, "%s: larger than %u bytes", path, SY_DOC_MAX_BYTES);
        goto out;
    }
    if (rc != 0) {
        sy_errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    doc = sy_doc_load_mem(path, text, len, err, errlen);

out:
    free(text);
    return doc;
}

void sy_doc_destroy(struct sy_doc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->name);
    free(doc);
}

const struct sy_node *sy_doc_root(const struct sy_doc *doc)
{
    return doc ? doc->root : NULL;
}

const char *sy_doc_name(const struct sy_doc *doc)
{
    return doc ? doc->name : NULL;
}

enum sy_node_kind sy_node_kind(const struct sy_node *n)
{
    return n ? n->kind : SY_NODE_SCALAR;
}

int sy_node_line(const struct sy_node *n)
{
    return n ? n->line : 0;
}

const char *sy_node_str(const struct sy_node *n)
{
    return n && n->kind == SY_NODE_SCALAR ? n->str : NULL;
}

bool sy_node_plain(const struct sy_node *n)
{
    return n && n->kind == SY_NODE_SCALAR && n->plain;
}

bool sy_node_is_null(const struct sy_node *n)
{
    if (!n)
        return true;
    return n->kind == SY_NODE_SCALAR && n->plain && plain_null(n->str);
}

size_t sy_node_len(const struct sy_node *n)
{
    return n && n->kind != SY_NODE_SCALAR ? n->len : 0;
}

const struct sy_node *sy_node_at(const struct sy_node *n, size_t i, const char **key)
{
    if (key)
        *key = NULL;
    if (!n || n->kind == SY_NODE_SCALAR || i >= n->len)
        return NULL;
    if (key && n->kind == SY_NODE_MAP)
        *key = n->keys[i];
    return n->vals[i];
}

const struct sy_node *sy_node_get(const struct sy_node *map, const char *key)
{
    size_t lo = 0, hi;

    if (!map || map->kind != SY_NODE_MAP || !key || !map->sorted)
        return NULL;
    /* First match by position: keys are unique once a document loaded, but stay exact. */
    hi = map->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(map->sorted[mid].key, key);

        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < map->len && strcmp(map->sorted[lo].key, key) == 0)
        return map->vals[map->sorted[lo].idx];
    return NULL;
}

/* Writes the path of n from the root ("workers.probe.routes[1]") into buf. */
static void node_path(const struct sy_node *n, char *buf, size_t sz)
{
    const struct sy_node *chain[SY_DOC_MAX_DEPTH + 1];
    size_t depth = 0, used = 0;

    buf[0] = '\0';
    for (const struct sy_node *p = n; p && p->parent && depth < SY_DOC_MAX_DEPTH + 1; p = p->parent)
        chain[depth++] = p;
    if (depth == 0) {
        snprintf(buf, sz, "(document)");
        return;
    }
    while (depth-- > 0 && used < sz) {
        const struct sy_node *p = chain[depth];
        int w;

        if (p->parent->kind == SY_NODE_MAP)
            w = snprintf(buf + used, sz - used, "%s%s", used ? "." : "", p->parent->keys[p->index]);
        else
            w = snprintf(buf + used, sz - used, "[%zu]", p->index);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static const char *kind_name(enum sy_node_kind k)
{
    return k == SY_NODE_MAP ? "a map" : k == SY_NODE_SEQ ? "a sequence" : "a scalar";
}

/* Common prologue of the typed readers: the node must be a non-null scalar. */
static int scalar_for(const struct sy_node *n, const char *what, char *err, size_t errlen)
{
    char path[256];

    if (!n) {
        sy_errf(err, errlen, "missing %s", what);
        return -SY_EINVAL;
    }
    if (n->kind != SY_NODE_SCALAR || sy_node_is_null(n)) {
        node_path(n, path, sizeof(path));
        sy_errf(err, errlen, "line %d: %s: expected %s, got %s", n->line, path, what,
                n->kind == SY_NODE_SCALAR ? "nothing" : kind_name(n->kind));
        return -SY_EINVAL;
    }
    return 0;
}

static bool is_decimal(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

int sy_node_int(const struct sy_node *n, long long min, long long max, long long *out, char *err,
                size_t errlen)
{
    char path[256];
    long long v;
    int rc = scalar_for(n, "an integer", err, errlen);

    if (rc)
        return rc;
    node_path(n, path, sizeof(path));
    errno = 0;
    v = is_decimal(n->str) ? strtoll(n->str, NULL, 10) : 0;
    if (!is_decimal(n->str) || errno == ERANGE || v < min || v > max) {
        if (min == LLONG_MIN && max == LLONG_MAX)
            sy_errf(err, errlen, "line %d: %s: expected an integer, got '%.64s'", n->line, path,
                    n->str);
        else
            sy_errf(err, errlen, "line %d: %s: expected an integer from %lld to %lld, got '%.64s'",
                    n->line, path, min, max, n->str);
        return -SY_EINVAL;
    }
    *out = v;
    return 0;
}

int sy_node_double(const struct sy_node *n, double *out, char *err, size_t errlen)
{
    char path[256], *end = NULL;
    double v;
    int rc = scalar_for(n, "a number", err, errlen);

    if (rc)
        return rc;
    errno = 0;
    /* strtod would skip leading spaces; the whole text must be the number. */
    v = (n->str[0] == ' ' || n->str[0] == '\t') ? 0 : strtod(n->str, &end);
    if (!end || end == n->str || *end != '\0' || !isfinite(v) ||
        (errno == ERANGE && fabs(v) > 1.0)) {
        node_path(n, path, sizeof(path));
        sy_errf(err, errlen, "line %d: %s: expected a finite number, got '%.64s'", n->line, path,
                n->str);
        return -SY_EINVAL;
    }
    *out = v;
    return 0;
}

int sy_node_bool(const struct sy_node *n, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    char path[256];
    int rc = scalar_for(n, "a boolean", err, errlen);

    if (rc)
        return rc;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(n->str, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(n->str, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    node_path(n, path, sizeof(path));
    sy_errf(err, errlen, "line %d: %s: expected true/false, yes/no or on/off, got '%.64s'", n->line,
            path, n->str);
    return -SY_EINVAL;
}

int sy_node_check_keys(const struct sy_doc *doc, const struct sy_node *map,
                       const char *const *allowed, char *err, size_t errlen)
{
    const char *name = doc && doc->name ? doc->name : "(yaml)";
    char list[512];

    if (!map)
        return 0;
    if (map->kind != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s:%d: expected a map, got %s", name, map->line,
                kind_name(map->kind));
        return -SY_ECONFIG;
    }
    for (size_t i = 0; i < map->len; i++) {
        size_t used = 0;
        bool known = false;

        for (size_t a = 0; allowed && allowed[a]; a++) {
            if (strcmp(map->keys[i], allowed[a]) == 0) {
                known = true;
                break;
            }
        }
        if (known)
            continue;
        list[0] = '\0';
        for (size_t a = 0; allowed && allowed[a] && used < sizeof(list); a++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", a ? ", " : "", allowed[a]);

            if (w < 0)
                break;
            used += (size_t)w;
        }
        sy_errf(err, errlen, "%s:%d: unknown key '%.64s' (allowed: %s)", name, map->key_lines[i],
                map->keys[i], list[0] ? list : "none");
        return -SY_ECONFIG;
    }
    return 0;
}

static bool var_char(char c, bool first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

int sy_doc_expand_env(const char *in, char *out, size_t outsz, char *why, size_t whylen)
{
    char name[SY_DOC_VAR_NAME_MAX + 1];
    size_t o = 0;

    if (outsz == 0) {
        sy_errf(why, whylen, "no room for the value");
        return -SY_ECONFIG;
    }
    for (const char *p = in; *p;) {
        const char *piece = p;
        size_t plen = 1;

        if (p[0] == '$' && p[1] == '{') {
            const char *q = p + 2, *def = NULL, *val;
            size_t nlen, dlen = 0;

            while (var_char(*q, q == p + 2))
                q++;
            nlen = (size_t)(q - (p + 2));
            if (nlen == 0 || nlen > SY_DOC_VAR_NAME_MAX) {
                sy_errf(why, whylen,
                        "'${' must be followed by a variable name ([A-Za-z_][A-Za-z0-9_]*, at "
                        "most %d characters)",
                        SY_DOC_VAR_NAME_MAX);
                return -SY_ECONFIG;
            }
            memcpy(name, p + 2, nlen);
            name[nlen] = '\0';
            if (q[0] == ':' && q[1] == '-') {
                const char *end = strchr(q + 2, '}');

                if (end) {
                    def = q + 2;
                    dlen = (size_t)(end - def);
                    q = end;
                }
            }
            if (*q != '}') {
                sy_errf(why, whylen, "'${%s' is not closed (expected '}' or ':-default}')", name);
                return -SY_ECONFIG;
            }
            val = getenv(name);
            if (val && !(def && *val == '\0')) {
                piece = val;
                plen = strlen(val);
            } else if (def) {
                piece = def;
                plen = dlen;
            } else {
                sy_errf(why, whylen, "environment variable %s is not set (and has no default)",
                        name);
                return -SY_ECONFIG;
            }
            p = q + 1;
        } else {
            p++;
        }
        if (plen >= outsz - o) {
            sy_errf(why, whylen, "longer than %zu bytes after expansion", outsz - 1);
            return -SY_ECONFIG;
        }
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = '\0';
    return 0;
}
