/* connector.c - the connectors sy-ingest knows, and what they hand back (see connector.h). */
#include "ingest/connector.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"

const struct connector *const connectors[] = {&connector_email, &connector_maximo,
                                              &connector_whatsapp, &connector_sharepoint, NULL};

const struct connector *connector_find(const char *kind)
{
    for (size_t i = 0; connectors[i]; i++)
        if (strcmp(connectors[i]->kind, kind) == 0)
            return connectors[i];
    return NULL;
}

int in_keep(const struct in_env *env, char *err, size_t errlen)
{
    int rc = env && env->keep ? env->keep(env->ctx) : 0;

    if (rc < 0)
        snprintf(err, errlen, "the poll's lock was lost while listing");
    return rc;
}

void in_fetched_clear(struct in_fetched *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ndocs; i++) {
        free(f->docs[i].filename);
        free(f->docs[i].mime);
        free(f->docs[i].data);
    }
    free(f->docs);
    free(f->title);
    free(f->body);
    free(f->source_time);
    json_decref(f->meta);
    memset(f, 0, sizeof *f);
}

void in_listed_free(struct in_listed *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].item);
        json_decref(items[i].cursor);
    }
    free(items);
}

/* The length of the UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;

    if (!k || k > n || (k == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return k;
}

/* A copy of a file name that document.ingested can carry: valid UTF-8 (else NULL, and *bad
 * set), control characters made '_', cut to IN_FILENAME_MAX bytes on a character's start,
 * keeping an extension of up to 16 bytes. */
static char *filename_copy(const char *name, bool *bad)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t n = strlen(name), k, cut, ext = 0;
    const char *dot = strrchr(name, '.');
    char *out;

    *bad = false;
    for (size_t i = 0; i < n; i += k) {
        if (!(k = utf8_char(s + i, n - i))) {
            *bad = true;
            return NULL;
        }
    }
    if (n <= IN_FILENAME_MAX) {
        cut = n;
        goto copy;
    }
    if (dot && dot != name && strlen(dot) <= 16 && !strchr(dot, ' '))
        ext = strlen(dot);
    /* The name's start, to the last whole character that leaves room for the extension. */
    for (cut = 0; cut < n;) {
        k = utf8_char(s + cut, n - cut);
        if (cut + k + ext > IN_FILENAME_MAX)
            break;
        cut += k;
    }
copy:
    if (!(out = malloc(cut + ext + 1)))
        return NULL;
    memcpy(out, name, cut);
    memcpy(out + cut, name + n - ext, ext);
    out[cut + ext] = '\0';
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '_';
    return out;
}

/* Whether mime is a type/subtype of at most IN_MIME_MAX printable bytes. */
static bool mime_ok(const char *mime)
{
    size_t n = strlen(mime);
    const char *slash = strchr(mime, '/');

    if (n < 3 || n > IN_MIME_MAX || !slash || slash == mime || !slash[1] || strchr(slash + 1, '/'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)mime[i]) || strchr("\"\\;,", mime[i]))
            return false;
    return true;
}

int in_fetched_add(struct in_fetched *f, const char *filename, const char *mime,
                   unsigned char *data, size_t len)
{
    struct in_doc *d = realloc(f->docs, (f->ndocs + 1) * sizeof *d);
    bool bad = false;

    if (!d)
        return -SY_ENOMEM;
    f->docs = d;
    d = &f->docs[f->ndocs];
    memset(d, 0, sizeof *d);
    if (!mime || !mime_ok(mime))
        mime = "application/octet-stream";
    if ((filename && !(d->filename = filename_copy(filename, &bad)) && !bad) ||
        !(d->mime = strdup(mime))) {
        free(d->filename);
        return -SY_ENOMEM;
    }
    d->data = data;
    d->len = len;
    f->ndocs++;
    return 0;
}
