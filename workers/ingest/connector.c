/* connector.c - the connectors sy-ingest knows, and what they hand back (see connector.h). */
#include "ingest/connector.h"

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

int in_fetched_add(struct in_fetched *f, const char *filename, const char *mime,
                   unsigned char *data, size_t len)
{
    struct in_doc *d = realloc(f->docs, (f->ndocs + 1) * sizeof *d);

    if (!d)
        return -SY_ENOMEM;
    f->docs = d;
    d = &f->docs[f->ndocs];
    memset(d, 0, sizeof *d);
    if ((filename && !(d->filename = strdup(filename))) || !(d->mime = strdup(mime))) {
        free(d->filename);
        return -SY_ENOMEM;
    }
    d->data = data;
    d->len = len;
    f->ndocs++;
    return 0;
}
