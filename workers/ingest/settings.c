/* settings.c - a source's entry of ingest.yaml (see settings.h). */
#include "ingest/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/doc.h"
#include "sy/err.h"
#include "sy/log.h"

static int node_text(const struct sy_doc *doc, const struct sy_node *n, const char *key,
                     const char *field, char **out, char *err, size_t errlen)
{
    const char *s = sy_node_str(n);
    char buf[SETTING_MAX], why[256];

    *out = NULL;
    if (!s || sy_node_is_null(n)) {
        sy_errf(err, errlen, "%s:%d: %s.%s: expected text", sy_doc_name(doc), sy_node_line(n), key,
                field);
        return -SY_ECONFIG;
    }
    if (sy_doc_expand_env(s, buf, sizeof buf, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s:%d: %s.%s: %s", sy_doc_name(doc), sy_node_line(n), key, field,
                why);
        return -SY_ECONFIG;
    }
    return (*out = strdup(buf)) ? 0 : -SY_ENOMEM;
}

int setting_text(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                 const char *field, bool required, char **out, char *err, size_t errlen)
{
    const struct sy_node *n = sy_node_get(m, field);

    *out = NULL;
    if (!n && !required)
        return 0;
    if (!n) {
        sy_errf(err, errlen, "%s:%d: %s.%s: required", sy_doc_name(doc), sy_node_line(m), key,
                field);
        return -SY_ECONFIG;
    }
    return node_text(doc, n, key, field, out, err, errlen);
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int setting_secret(const struct sy_doc *doc, const struct sy_node *m, const char *dir,
                   const char *key, const char *name, char **out, char *err, size_t errlen)
{
    char env_key[64], file_key[64], line[SECRET_MAX], *what = NULL;
    const struct sy_node *env, *file;
    const char *v = NULL;
    int rc;

    *out = NULL;
    line[0] = '\0';
    snprintf(env_key, sizeof env_key, "%s_env", name);
    snprintf(file_key, sizeof file_key, "%s_file", name);
    env = sy_node_get(m, env_key);
    file = sy_node_get(m, file_key);
    if (!env == !file) {
        sy_errf(err, errlen, "%s:%d: %s: give one of %s and %s", sy_doc_name(doc), sy_node_line(m),
                key, env_key, file_key);
        return -SY_ECONFIG;
    }
    if ((rc = node_text(doc, env ? env : file, key, env ? env_key : file_key, &what, err,
                        errlen)) != 0)
        return rc;
    if (env) {
        v = getenv(what);
    } else {
        char path[SETTING_MAX + 4200];
        FILE *f;

        snprintf(path, sizeof path, "%s%s%s", what[0] == '/' ? "" : dir, what[0] == '/' ? "" : "/",
                 what);
        if ((f = fopen(path, "r")) && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            v = line;
        }
        if (f)
            fclose(f);
    }
    if (!v || !*v || strlen(v) >= SECRET_MAX - 1 || has_control(v)) {
        sy_errf(err, errlen, "%s:%d: %s.%s: no usable %s in %s", sy_doc_name(doc),
                sy_node_line(env ? env : file), key, env ? env_key : file_key, name, what);
        rc = -SY_ECONFIG;
    } else if (!(*out = strdup(v))) {
        rc = -SY_ENOMEM;
    } else {
        sy_log_add_secret(*out);
    }
    explicit_bzero(line, sizeof line);
    free(what);
    return rc;
}

void setting_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int setting_bool(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                 const char *field, bool *out, char *err, size_t errlen)
{
    char *v = NULL;
    int rc = setting_text(doc, m, key, field, false, &v, err, errlen);

    if (rc != 0 || !v)
        return rc;
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
        *out = true;
    } else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
        *out = false;
    } else {
        sy_errf(err, errlen, "%s:%d: %s.%s: expected true or false", sy_doc_name(doc),
                sy_node_line(sy_node_get(m, field)), key, field);
        rc = -SY_ECONFIG;
    }
    free(v);
    return rc;
}
