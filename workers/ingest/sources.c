/* sources.c - ingest.yaml (see sources.h). */
#include "ingest/sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/connector.h"
#include "sy/doc.h"
#include "sy/err.h"

void sources_free(struct sources *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i]);
    for (size_t i = 0; i < s->n; i++)
        s->src[i].c->unconfigure(s->src[i].conf);
    free(s);
}

/* A kind's section: one named source per entry, configured by its connector. */
static int load_kind(const struct sy_doc *doc, const struct connector *c,
                     const struct sy_node *section, const char *dir, struct sources *s, char *err,
                     size_t errlen)
{
    int rc;

    if (!section || sy_node_is_null(section))
        return 0;
    if (sy_node_kind(section) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s:%d: %s: expected a map of named sources", sy_doc_name(doc),
                sy_node_line(section), c->kind);
        return -SY_ECONFIG;
    }
    for (size_t i = 0; i < sy_node_len(section); i++) {
        const char *name = NULL;
        const struct sy_node *m = sy_node_at(section, i, &name);
        struct in_source *src = &s->src[s->n];
        char key[128];

        snprintf(key, sizeof key, "%s.%s", c->kind, name);
        if (!*name || strlen(name) > 64 ||
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
                strlen(name)) {
            sy_errf(err, errlen, "%s:%d: %s: a name is 1 to 64 of [A-Za-z0-9_-]", sy_doc_name(doc),
                    sy_node_line(m), key);
            return -SY_ECONFIG;
        }
        if (sy_node_kind(m) != SY_NODE_MAP) {
            sy_errf(err, errlen, "%s:%d: %s: expected a map", sy_doc_name(doc), sy_node_line(m),
                    key);
            return -SY_ECONFIG;
        }
        if (s->n == SOURCES_MAX) {
            sy_errf(err, errlen, "%s: more than %d sources", sy_doc_name(doc), SOURCES_MAX);
            return -SY_ECONFIG;
        }
        if ((rc = c->configure(doc, m, key, dir, &src->conf, err, errlen)) != 0)
            return rc;
        snprintf(src->name, sizeof src->name, "%s", name);
        snprintf(src->source, sizeof src->source, "%s:%s", c->kind, name);
        src->c = c;
        s->n++;
    }
    return 0;
}

static int load_limits(const struct sy_doc *doc, const struct sy_node *l, struct sources *s,
                       char *err, size_t errlen)
{
    static const char *const keys[] = {"max_bytes", "types", NULL};
    const struct sy_node *types = sy_node_get(l, "types");
    char why[256];
    int rc;

    s->max_bytes = 25LL * 1024 * 1024;
    if (!l)
        return 0;
    if ((rc = sy_node_check_keys(doc, l, keys, err, errlen)) != 0)
        return rc;
    if (sy_node_get(l, "max_bytes") && sy_node_int(sy_node_get(l, "max_bytes"), 1, 1LL << 32,
                                                   &s->max_bytes, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s: limits.%s", sy_doc_name(doc), why);
        return -SY_ECONFIG;
    }
    if (!types)
        return 0;
    if (sy_node_kind(types) != SY_NODE_SEQ || sy_node_len(types) > SOURCES_TYPES_MAX) {
        sy_errf(err, errlen, "%s:%d: limits.types: expected a list of at most %d types",
                sy_doc_name(doc), sy_node_line(types), SOURCES_TYPES_MAX);
        return -SY_ECONFIG;
    }
    for (size_t i = 0; i < sy_node_len(types); i++) {
        const char *t = sy_node_str(sy_node_at(types, i, NULL));

        if (!t || !strchr(t, '/') || strlen(t) > 255) {
            sy_errf(err, errlen, "%s:%d: limits.types[%zu]: expected type/subtype or type/*",
                    sy_doc_name(doc), sy_node_line(sy_node_at(types, i, NULL)), i);
            return -SY_ECONFIG;
        }
        if (!(s->types[s->ntypes] = strdup(t)))
            return -SY_ENOMEM;
        for (char *p = s->types[s->ntypes]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        s->ntypes++;
    }
    return 0;
}

struct sources *sources_load(const char *path, char *err, size_t errlen)
{
    const char *keys[2 + 8] = {"limits"};
    struct sy_doc *doc = sy_doc_load_file(path, err, errlen);
    const struct sy_node *root = doc ? sy_doc_root(doc) : NULL;
    struct sources *s = NULL;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t k = 1;
    int rc = -SY_ECONFIG;

    if (!doc)
        return NULL;
    for (size_t i = 0; connectors[i] && k < sizeof keys / sizeof *keys - 1; i++)
        keys[k++] = connectors[i]->kind;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (root && sy_node_kind(root) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s: expected a map with limits and sections of sources", path);
        goto out;
    }
    if (root && sy_node_check_keys(doc, root, keys, err, errlen) != 0)
        goto out;
    if (!(s = calloc(1, sizeof *s))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    rc = load_limits(doc, sy_node_get(root, "limits"), s, err, errlen);
    for (size_t i = 0; rc == 0 && connectors[i]; i++)
        rc = load_kind(doc, connectors[i], sy_node_get(root, connectors[i]->kind), dir, s, err,
                       errlen);
out:
    if (rc == -SY_ENOMEM)
        sy_errf(err, errlen, "%s: out of memory", path);
    sy_doc_destroy(doc);
    if (rc != 0) {
        sources_free(s);
        return NULL;
    }
    return s;
}

bool sources_type_ok(const struct sources *s, const char *mime)
{
    if (s->ntypes == 0)
        return true;
    for (size_t i = 0; i < s->ntypes; i++) {
        const char *t = s->types[i];
        size_t n = strlen(t);

        if (n >= 2 && strcmp(t + n - 2, "/*") == 0 ? strncmp(mime, t, n - 1) == 0
                                                   : strcmp(mime, t) == 0)
            return true;
    }
    return false;
}

const struct in_source *sources_find(const struct sources *s, const char *source)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->src[i].source, source) == 0)
            return &s->src[i];
    return NULL;
}
