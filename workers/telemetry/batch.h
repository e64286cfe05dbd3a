/* batch.h - the readings of a run of spool records, committed together: the messages they came
 * from (borrowed from the spool's mapping until the batch is released), every reading decoded
 * from them, good or rejected, and where in the spool the batch ends. */
#ifndef TELEMETRY_BATCH_H
#define TELEMETRY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/model.h"
#include "telemetry/spool.h"

struct tm_msgref {
    const char *topic;
    size_t topic_len;
    const void *payload;
    size_t len;
    int64_t arrival_us;
    struct tm_spool_pos next; /* the spool position after it */
};

struct tm_batch {
    struct tm_reading *r; /* n readings of cap */
    uint32_t *msg;        /* the message each reading came from (index into m) */
    size_t n, cap;
    struct tm_msgref *m; /* nm messages of mcap */
    size_t nm, mcap;
    size_t good, rejected;   /* readings of each sort */
    struct tm_spool_pos end; /* the spool position after the batch's last message */
};

/* Room for at least `readings` readings (plus one message's worth) and as many messages.
 * 0 or -SY_ENOMEM. */
int tm_batch_init(struct tm_batch *b, size_t readings);
void tm_batch_free(struct tm_batch *b);
void tm_batch_clear(struct tm_batch *b);
/* Decodes one spool record into the batch (its readings, good or rejected). 0, or -SY_ENOMEM
 * when the batch has no room left for a whole message (flush first). */
int tm_batch_add(struct tm_batch *b, const struct tm_model *m, const struct tm_spool_rec *rec);

#endif
