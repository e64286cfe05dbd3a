/* dead_info.c - reading why a message was dead-lettered from its headers: the runtime's x-sy-*
 * headers when it rejected the message, the broker's x-death entries when the broker itself
 * dead-lettered it (a quorum queue's delivery limit). */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int int_of(const json_t *obj, const char *key, long long *out)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return 0;
    }
    /* A publisher may have sent the number as text. */
    if (json_is_string(v)) {
        char *end = NULL;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (end && end != json_string_value(v) && *end == '\0') {
            *out = n;
            return 0;
        }
    }
    return -1;
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

/* AMQP timestamps are whole seconds since the epoch. */
static void format_time(const json_t *t, char *dst, size_t dstsz)
{
    if (json_is_string(t)) {
        copy_str(dst, dstsz, json_string_value(t));
        return;
    }
    if (!json_is_integer(t))
        return;
    time_t secs = (time_t)json_integer_value(t);
    struct tm tm;
    if (gmtime_r(&secs, &tm))
        strftime(dst, dstsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void syctl_dead_info(const json_t *headers, struct syctl_dead_info *out)
{
    memset(out, 0, sizeof(*out));
    out->attempts = -1;
    if (!json_is_object(headers))
        return;

    /* x-death lists the most recent dead-lettering first. */
    const json_t *deaths = json_object_get(headers, "x-death");
    const json_t *death = json_is_array(deaths) ? json_array_get(deaths, 0) : NULL;
    if (!json_is_object(death))
        death = NULL;
    /* The runtime stamps x-sy-dead-at when it dead-letters; without it, a death record means
     * the broker moved the message, and any x-sy-reason is left over from an earlier retry. */
    bool by_runtime = str_of(headers, "x-sy-dead-at") != NULL;

    long long n;
    if (int_of(headers, "x-sy-replayed", &n) == 0)
        out->replayed = n;

    if (by_runtime || (!death && !str_of(headers, "x-first-death-reason"))) {
        copy_str(out->reason, sizeof(out->reason), str_of(headers, "x-sy-reason"));
        copy_str(out->dead_at, sizeof(out->dead_at), str_of(headers, "x-sy-dead-at"));
        if (int_of(headers, "x-sy-attempts", &n) == 0)
            out->attempts = n;
    } else {
        const char *why = death ? str_of(death, "reason") : NULL;
        const char *queue = death ? str_of(death, "queue") : NULL;
        if (!why)
            why = str_of(headers, "x-first-death-reason");
        if (!queue)
            queue = str_of(headers, "x-first-death-queue");
        if (queue)
            snprintf(out->reason, sizeof(out->reason), "%s (%s)", why ? why : "", queue);
        else
            copy_str(out->reason, sizeof(out->reason), why);
        if (death)
            format_time(json_object_get(death, "time"), out->dead_at, sizeof(out->dead_at));
        /* attempts stays unknown: x-sy-attempts predates the crash loop, and the
         * x-delivery-count a quorum queue adds counts returns to the dead-letter queue itself
         * (each `dead list` adds one), not the attempts that led here. */
    }

    const char *rk = str_of(headers, "x-sy-routing-key");
    if (!rk && death) {
        const json_t *keys = json_object_get(death, "routing-keys");
        const json_t *k0 = json_is_array(keys) ? json_array_get(keys, 0) : NULL;
        rk = json_is_string(k0) ? json_string_value(k0) : NULL;
    }
    copy_str(out->routing_key, sizeof(out->routing_key), rk);
}
