/* sources.c - ingest.yaml (see sources.h). */
#include "ingest/sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/config.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/log.h"

#define VALUE_MAX  2048
#define SECRET_MAX 4096

void sources_free(struct sources *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i]);
    for (size_t i = 0; i < s->nemail; i++) {
        free(s->email[i].url);
        free(s->email[i].user);
        if (s->email[i].password) {
            explicit_bzero(s->email[i].password, strlen(s->email[i].password));
            free(s->email[i].password);
        }
    }
    free(s);
}

/* A scalar with ${...} expanded, malloc'd into *out. */
static int text(const struct sy_doc *doc, const struct sy_node *n, const char *key, char **out,
                char *err, size_t errlen)
{
    const char *s = sy_node_str(n);
    char buf[VALUE_MAX], why[256];

    *out = NULL;
    if (!s || sy_node_is_null(n)) {
        sy_errf(err, errlen, "%s:%d: %s: expected text", sy_doc_name(doc), sy_node_line(n), key);
        return -SY_ECONFIG;
    }
    if (sy_doc_expand_env(s, buf, sizeof buf, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s:%d: %s: %s", sy_doc_name(doc), sy_node_line(n), key, why);
        return -SY_ECONFIG;
    }
    if (!(*out = strdup(buf)))
        return -SY_ENOMEM;
    return 0;
}

/* The mailbox password: from the variable password_env names, or the file password_file names
 * (relative to the settings file), first line only. */
static int password(const struct sy_doc *doc, const struct sy_node *m, const char *dir,
                    const char *key, char **out, char *err, size_t errlen)
{
    const struct sy_node *env = sy_node_get(m, "password_env"),
                         *file = sy_node_get(m, "password_file");
    char *name = NULL;
    int rc;

    *out = NULL;
    if ((env && file) || (!env && !file)) {
        sy_errf(err, errlen, "%s:%d: %s: give one of password_env and password_file",
                sy_doc_name(doc), sy_node_line(m), key);
        return -SY_ECONFIG;
    }
    if ((rc = text(doc, env ? env : file, key, &name, err, errlen)) != 0)
        return rc;
    if (env) {
        const char *v = getenv(name);

        if (!v || !*v) {
            sy_errf(err, errlen, "%s:%d: %s.password_env: %s is not set", sy_doc_name(doc),
                    sy_node_line(env), key, name);
            rc = -SY_ECONFIG;
        } else if (!(*out = strdup(v))) {
            rc = -SY_ENOMEM;
        }
    } else {
        char path[VALUE_MAX + 4200], line[SECRET_MAX];
        FILE *f;

        if (name[0] == '/')
            snprintf(path, sizeof path, "%s", name);
        else
            snprintf(path, sizeof path, "%s/%s", dir, name);
        if (!(f = fopen(path, "r")) || !fgets(line, sizeof line, f)) {
            sy_errf(err, errlen, "%s:%d: %s.password_file: cannot read %s", sy_doc_name(doc),
                    sy_node_line(file), key, path);
            rc = -SY_ECONFIG;
        } else {
            line[strcspn(line, "\r\n")] = '\0';
            if (!line[0]) {
                sy_errf(err, errlen, "%s:%d: %s.password_file: %s is empty", sy_doc_name(doc),
                        sy_node_line(file), key, path);
                rc = -SY_ECONFIG;
            } else if (!(*out = strdup(line))) {
                rc = -SY_ENOMEM;
            }
            explicit_bzero(line, sizeof line);
        }
        if (f)
            fclose(f);
    }
    free(name);
    if (*out)
        sy_log_add_secret(*out);
    return rc;
}

static int load_email(const struct sy_doc *doc, const struct sy_node *email, const char *dir,
                      struct sources *s, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "url", "user", "password_env", "password_file", "allow_plain", "batch", NULL};
    int rc;

    if (!email || sy_node_is_null(email))
        return 0;
    if (sy_node_kind(email) != SY_NODE_MAP || sy_node_len(email) > SOURCES_EMAIL_MAX) {
        sy_errf(err, errlen, "%s:%d: email: expected a map of at most %d mailboxes",
                sy_doc_name(doc), sy_node_line(email), SOURCES_EMAIL_MAX);
        return -SY_ECONFIG;
    }
    for (size_t i = 0; i < sy_node_len(email); i++) {
        const char *name = NULL;
        const struct sy_node *m = sy_node_at(email, i, &name);
        struct email_source *e = &s->email[s->nemail];
        char key[128], why[256], *flag = NULL;
        long long batch = 200;

        snprintf(key, sizeof key, "email.%s", name);
        if (strlen(name) > 64 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789_-") != strlen(name)) {
            sy_errf(err, errlen, "%s:%d: %s: a name is 1 to 64 of [A-Za-z0-9_-]", sy_doc_name(doc),
                    sy_node_line(m), key);
            return -SY_ECONFIG;
        }
        if (sy_node_kind(m) != SY_NODE_MAP) {
            sy_errf(err, errlen, "%s:%d: %s: expected a map", sy_doc_name(doc), sy_node_line(m),
                    key);
            return -SY_ECONFIG;
        }
        if ((rc = sy_node_check_keys(doc, m, keys, err, errlen)) != 0)
            return rc;
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->source, sizeof e->source, "email:%s", name);
        s->nemail++;
        if ((rc = text(doc, sy_node_get(m, "url"), key, &e->url, err, errlen)) != 0 ||
            (rc = text(doc, sy_node_get(m, "user"), key, &e->user, err, errlen)) != 0 ||
            (rc = password(doc, m, dir, key, &e->password, err, errlen)) != 0)
            return rc;
        if (sy_node_get(m, "allow_plain")) {
            if ((rc = text(doc, sy_node_get(m, "allow_plain"), key, &flag, err, errlen)) != 0)
                return rc;
            e->allow_plain = strcmp(flag, "true") == 0 || strcmp(flag, "yes") == 0;
            if (!e->allow_plain && strcmp(flag, "false") != 0 && strcmp(flag, "no") != 0) {
                sy_errf(err, errlen, "%s:%d: %s.allow_plain: expected true or false",
                        sy_doc_name(doc), sy_node_line(sy_node_get(m, "allow_plain")), key);
                free(flag);
                return -SY_ECONFIG;
            }
            free(flag);
        }
        if (sy_node_get(m, "batch") &&
            sy_node_int(sy_node_get(m, "batch"), 1, 10000, &batch, why, sizeof why) != 0) {
            sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
            return -SY_ECONFIG;
        }
        e->batch = (long)batch;
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
    static const char *const keys[] = {"limits", "email", NULL};
    struct sy_doc *doc = sy_doc_load_file(path, err, errlen);
    const struct sy_node *root = doc ? sy_doc_root(doc) : NULL;
    struct sources *s = NULL;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int rc = -SY_ECONFIG;

    if (!doc)
        return NULL;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (root && (sy_node_kind(root) != SY_NODE_MAP ||
                 sy_node_check_keys(doc, root, keys, err, errlen) != 0)) {
        if (sy_node_kind(root) != SY_NODE_MAP)
            sy_errf(err, errlen, "%s: expected a map with limits and email", path);
        goto out;
    }
    if (!(s = calloc(1, sizeof *s))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    if ((rc = load_limits(doc, sy_node_get(root, "limits"), s, err, errlen)) == 0)
        rc = load_email(doc, sy_node_get(root, "email"), dir, s, err, errlen);
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

const struct email_source *sources_email(const struct sources *s, const char *source)
{
    for (size_t i = 0; i < s->nemail; i++)
        if (strcmp(s->email[i].source, source) == 0)
            return &s->email[i];
    return NULL;
}
