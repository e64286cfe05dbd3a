/* batch.c - collecting decoded readings for one commit (batch.h). */
#include "telemetry/batch.h"

#include <stdlib.h>

#include "sy/err.h"

int tm_batch_init(struct tm_batch *b, size_t readings)
{
    *b = (struct tm_batch){0};
    b->cap = readings + TM_READINGS_MAX + 1;
    b->mcap = readings + 1;
    b->r = malloc(b->cap * sizeof *b->r);
    b->msg = malloc(b->cap * sizeof *b->msg);
    b->m = malloc(b->mcap * sizeof *b->m);
    if (!b->r || !b->msg || !b->m) {
        tm_batch_free(b);
        return -SY_ENOMEM;
    }
    return 0;
}

void tm_batch_free(struct tm_batch *b)
{
    free(b->r);
    free(b->msg);
    free(b->m);
    *b = (struct tm_batch){0};
}

void tm_batch_clear(struct tm_batch *b)
{
    b->n = b->nm = b->good = b->rejected = 0;
}

int tm_batch_add(struct tm_batch *b, const struct tm_model *m, const struct tm_spool_rec *rec)
{
    size_t got;

    if (b->nm == b->mcap || b->cap - b->n < TM_READINGS_MAX + 1)
        return -SY_ENOMEM;
    b->m[b->nm] = (struct tm_msgref){.topic = rec->topic,
                                     .topic_len = rec->topic_len,
                                     .payload = rec->payload,
                                     .len = rec->len,
                                     .arrival_us = rec->arrival_us,
                                     .next = rec->next};
    got = tm_decode(m, rec->topic, rec->topic_len, rec->payload, rec->len, rec->arrival_us,
                    b->r + b->n, b->cap - b->n);
    for (size_t i = 0; i < got; i++) {
        b->msg[b->n + i] = (uint32_t)b->nm;
        if (b->r[b->n + i].why[0])
            b->rejected++;
        else
            b->good++;
    }
    b->n += got;
    b->nm++;
    b->end = rec->next;
    return 0;
}
