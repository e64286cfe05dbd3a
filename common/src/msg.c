/* msg.c - the message envelope: decoding under limits, path access into data, encoding, and
 * the verdict a handler leaves on a message. */
#include "sy/msg.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "msg_int.h"
#include "mpscan_int.h"
#include "sy/err.h"

#define SY_MSG_REASON_MAX 1024

struct sy_msg {
    char *body; /* our copy: msgpack-c's str and bin objects point into it */
    size_t len;
    msgpack_zone zone;
    bool zone_ready;
    msgpack_object root;
    const msgpack_object *data;

    int version;
    int64_t ts_ms;
    char id[SY_MSG_ID_MAX + 1];
    char type[SY_MSG_TYPE_MAX + 1];
    char source[SY_MSG_SOURCE_MAX + 1];

    unsigned attempt;
    enum sy_verdict verdict;
    char reason[SY_MSG_REASON_MAX];
    long long retry_after_ms;
};

/* --- msgpack object helpers (msg_int.h) ------------------------------------------------ */

const char *sy_mp_type_name(const msgpack_object *obj)
{
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

const msgpack_object *sy_mp_map_get(const msgpack_object *map, const char *key, size_t keylen)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == keylen &&
            (keylen == 0 || memcmp(k->via.str.ptr, key, keylen) == 0))
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* An array index: decimal digits, no sign, no leading zero. */
static bool parse_index(const char *s, size_t n, uint32_t size, uint32_t *idx)
{
    uint64_t v = 0;

    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v >= size)
            return false;
    }
    *idx = (uint32_t)v;
    return true;
}

int sy_mp_lookup(const msgpack_object *obj, const char *path, const msgpack_object **out)
{
    const msgpack_object *cur = obj;
    const char *p = path ? path : "";

    if (*p == '\0') {
        *out = cur;
        return 0;
    }
    /* A malformed path is the caller's bug whatever the data holds: say so first. */
    for (const char *q = p;; q++) {
        if ((*q == '.' || *q == '\0') && (q == p || q[-1] == '.'))
            return -SY_EINVAL;
        if (*q == '\0')
            break;
    }
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);

        if (cur->type == MSGPACK_OBJECT_MAP) {
            cur = sy_mp_map_get(cur, p, n);
            if (!cur)
                return -SY_ENOTFOUND;
        } else if (cur->type == MSGPACK_OBJECT_ARRAY) {
            uint32_t idx;
            if (!parse_index(p, n, cur->via.array.size, &idx))
                return -SY_ENOTFOUND;
            cur = &cur->via.array.ptr[idx];
        } else {
            return -SY_ENOTFOUND;
        }
        if (!dot)
            break;
        p = dot + 1;
    }
    *out = cur;
    return 0;
}

const msgpack_object *sy_msg_data_obj(const struct sy_msg *msg)
{
    return msg->data;
}

/* --- decoding -------------------------------------------------------------------------- */

bool sy_msg_type_valid(const char *s, size_t n)
{
    bool word = false;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
            word = true;
        } else if (c == '.' && word) {
            word = false;
        } else {
            return false;
        }
    }
    return word;
}

enum { F_V, F_ID, F_TYPE, F_TS, F_SOURCE, F_DATA, F_COUNT };
static const char *const field_names[F_COUNT] = {"v", "id", "type", "ts", "source", "data"};

static int envelope_str(const msgpack_object *o, const char *name, size_t max, char *dst, char *err,
                        size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        snprintf(err, errlen, "envelope.%s: expected a string, got %s", name, sy_mp_type_name(o));
        return -SY_ESCHEMA;
    }
    if (o->via.str.size == 0) {
        snprintf(err, errlen, "envelope.%s: empty", name);
        return -SY_ESCHEMA;
    }
    if (o->via.str.size > max) {
        snprintf(err, errlen, "envelope.%s: %" PRIu32 " bytes, at most %zu", name, o->via.str.size,
                 max);
        return -SY_ESCHEMA;
    }
    if (memchr(o->via.str.ptr, '\0', o->via.str.size)) {
        snprintf(err, errlen, "envelope.%s: contains a NUL byte", name);
        return -SY_ESCHEMA;
    }
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return 0;
}

/* A non-negative int that fits `max`, for v and ts. */
static int envelope_int(const msgpack_object *o, const char *name, int64_t min, int64_t max,
                        int64_t *out, char *err, size_t errlen)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < min) {
            snprintf(err, errlen, "envelope.%s: %" PRId64 ", at least %" PRId64, name, o->via.i64,
                     min);
            return -SY_ESCHEMA;
        }
        *out = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(err, errlen, "envelope.%s: expected an integer, got %s", name, sy_mp_type_name(o));
        return -SY_ESCHEMA;
    }
    if (o->via.u64 > (uint64_t)max) {
        snprintf(err, errlen, "envelope.%s: %" PRIu64 ", at most %" PRId64, name, o->via.u64, max);
        return -SY_ESCHEMA;
    }
    if ((int64_t)o->via.u64 < min) {
        snprintf(err, errlen, "envelope.%s: %" PRIu64 ", at least %" PRId64, name, o->via.u64, min);
        return -SY_ESCHEMA;
    }
    *out = (int64_t)o->via.u64;
    return 0;
}

static int check_envelope(struct sy_msg *msg, char *err, size_t errlen)
{
    const msgpack_object *f[F_COUNT] = {0};
    const msgpack_object *root = &msg->root;
    int64_t v;
    int rc;

    if (root->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "envelope: expected a map, got %s", sy_mp_type_name(root));
        return -SY_ESCHEMA;
    }
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        for (int j = 0; j < F_COUNT; j++) {
            size_t n = strlen(field_names[j]);
            if (k->via.str.size != n || memcmp(k->via.str.ptr, field_names[j], n) != 0)
                continue;
            /* Two values for one field would let two readers disagree on what was sent. */
            if (f[j]) {
                snprintf(err, errlen, "envelope.%s: given twice", field_names[j]);
                return -SY_ESCHEMA;
            }
            f[j] = &root->via.map.ptr[i].val;
        }
    }
    for (int j = 0; j < F_COUNT; j++) {
        if (!f[j]) {
            snprintf(err, errlen, "envelope.%s: missing", field_names[j]);
            return -SY_ESCHEMA;
        }
    }
    rc = envelope_int(f[F_V], "v", 1, INT_MAX, &v, err, errlen);
    if (rc < 0)
        return rc;
    msg->version = (int)v;
    rc = envelope_str(f[F_ID], "id", SY_MSG_ID_MAX, msg->id, err, errlen);
    if (rc < 0)
        return rc;
    rc = envelope_str(f[F_TYPE], "type", SY_MSG_TYPE_MAX, msg->type, err, errlen);
    if (rc < 0)
        return rc;
    if (!sy_msg_type_valid(msg->type, strlen(msg->type))) {
        snprintf(err, errlen,
                 "envelope.type: not a routing key (words of a-z, 0-9 and _ joined by dots)");
        return -SY_ESCHEMA;
    }
    rc = envelope_int(f[F_TS], "ts", 0, INT64_MAX, &msg->ts_ms, err, errlen);
    if (rc < 0)
        return rc;
    rc = envelope_str(f[F_SOURCE], "source", SY_MSG_SOURCE_MAX, msg->source, err, errlen);
    if (rc < 0)
        return rc;
    if (f[F_DATA]->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "envelope.data: expected a map, got %s", sy_mp_type_name(f[F_DATA]));
        return -SY_ESCHEMA;
    }
    msg->data = f[F_DATA];
    return 0;
}

int sy_msg_decode(const void *body, size_t len, struct sy_msg **out, char *err, size_t errlen)
{
    struct sy_msg *msg = NULL;
    msgpack_unpack_return ur;
    size_t off = 0;
    int rc;

    if (errlen)
        err[0] = '\0';
    if (!out || (!body && len)) {
        snprintf(err, errlen, "invalid argument");
        return -SY_EINVAL;
    }
    *out = NULL;
    /* Nothing is allocated from the body's sizes before the scan has vouched for them. */
    rc = sy_mpscan(body, len, NULL, NULL, err, errlen);
    if (rc < 0)
        return rc;
    rc = -SY_ENOMEM;
    msg = calloc(1, sizeof *msg);
    if (!msg)
        goto out;
    msg->body = malloc(len);
    if (!msg->body)
        goto out;
    memcpy(msg->body, body, len);
    msg->len = len;
    msg->attempt = 1;
    msg->verdict = SY_ACK;
    if (!msgpack_zone_init(&msg->zone, MSGPACK_ZONE_CHUNK_SIZE))
        goto out;
    msg->zone_ready = true;
    ur = msgpack_unpack(msg->body, len, &off, &msg->zone, &msg->root);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        goto out;
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(err, errlen, "msgpack: refused by the decoder (%d)", (int)ur);
        rc = -SY_EDECODE;
        goto out;
    }
    rc = check_envelope(msg, err, errlen);
    if (rc < 0)
        goto out;
    *out = msg;
    msg = NULL;

out:
    if (rc == -SY_ENOMEM)
        snprintf(err, errlen, "out of memory");
    sy_msg_destroy(msg);
    return rc;
}

void sy_msg_destroy(struct sy_msg *msg)
{
    if (!msg)
        return;
    if (msg->zone_ready)
        msgpack_zone_destroy(&msg->zone);
    free(msg->body);
    free(msg);
}

int sy_msg_version(const struct sy_msg *msg)
{
    return msg->version;
}

const char *sy_msg_id(const struct sy_msg *msg)
{
    return msg->id;
}

const char *sy_msg_type(const struct sy_msg *msg)
{
    return msg->type;
}

const char *sy_msg_source(const struct sy_msg *msg)
{
    return msg->source;
}

int64_t sy_msg_ts_ms(const struct sy_msg *msg)
{
    return msg->ts_ms;
}

unsigned sy_msg_attempt(const struct sy_msg *msg)
{
    return msg->attempt;
}

void sy_msg_set_attempt(struct sy_msg *msg, unsigned attempt)
{
    msg->attempt = attempt;
}

const void *sy_msg_body(const struct sy_msg *msg, size_t *len)
{
    if (len)
        *len = msg->len;
    return msg->body;
}

/* --- path access ----------------------------------------------------------------------- */

static int get(const struct sy_msg *msg, const char *path, const msgpack_object **o)
{
    int rc = sy_mp_lookup(msg->data, path, o);

    if (rc == 0 && (*o)->type == MSGPACK_OBJECT_NIL)
        rc = -SY_ENOTFOUND;
    return rc;
}

int sy_msg_get_str(const struct sy_msg *msg, const char *path, const char **s, size_t *len)
{
    const msgpack_object *o;
    int rc = get(msg, path, &o);

    if (rc < 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_STR)
        return -SY_EINVAL;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int sy_msg_copy_str(const struct sy_msg *msg, const char *path, char *buf, size_t bufsz)
{
    const char *s;
    size_t len;
    int rc = sy_msg_get_str(msg, path, &s, &len);

    if (bufsz)
        buf[0] = '\0';
    if (rc < 0)
        return rc;
    /* A C string cut short at an embedded NUL would silently mean something else. */
    if (len && memchr(s, '\0', len))
        return -SY_EINVAL;
    if (len >= bufsz)
        return -SY_ETOOBIG;
    if (len)
        memcpy(buf, s, len);
    buf[len] = '\0';
    return 0;
}

int sy_msg_get_int(const struct sy_msg *msg, const char *path, int64_t *out)
{
    const msgpack_object *o;
    int rc = get(msg, path, &o);

    if (rc < 0)
        return rc;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    return -SY_EINVAL;
}

int sy_msg_get_double(const struct sy_msg *msg, const char *path, double *out)
{
    const msgpack_object *o;
    int rc = get(msg, path, &o);

    if (rc < 0)
        return rc;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        return 0;
    default:
        return -SY_EINVAL;
    }
}

int sy_msg_get_bool(const struct sy_msg *msg, const char *path, bool *out)
{
    const msgpack_object *o;
    int rc = get(msg, path, &o);

    if (rc < 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -SY_EINVAL;
    *out = o->via.boolean;
    return 0;
}

int sy_msg_get_bin(const struct sy_msg *msg, const char *path, const void **p, size_t *len)
{
    const msgpack_object *o;
    int rc = get(msg, path, &o);

    if (rc < 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_BIN)
        return -SY_EINVAL;
    *p = o->via.bin.ptr;
    *len = o->via.bin.size;
    return 0;
}

int sy_msg_get_len(const struct sy_msg *msg, const char *path, size_t *len)
{
    const msgpack_object *o;
    int rc = get(msg, path, &o);

    if (rc < 0)
        return rc;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        *len = o->via.array.size;
    else if (o->type == MSGPACK_OBJECT_MAP)
        *len = o->via.map.size;
    else
        return -SY_EINVAL;
    return 0;
}

bool sy_msg_has(const struct sy_msg *msg, const char *path)
{
    const msgpack_object *o;

    return get(msg, path, &o) == 0;
}

/* --- encoding -------------------------------------------------------------------------- */

void sy_uuid4(char buf[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t got = 0;
    char *p = buf;

    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            /* Without the kernel's randomness ids could repeat, and ids are idempotency keys:
             * refusing to go on is the lesser harm. */
            if (errno == EINTR)
                continue;
            abort();
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0x0f];
    }
    *p = '\0';
}

static bool str_ok(const char *s, size_t max)
{
    size_t n;

    if (!s)
        return false;
    n = strlen(s);
    return n > 0 && n <= max && sy_utf8_valid(s, n);
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

int sy_msg_encode(const char *type, const char *id, const char *source, int64_t ts_ms,
                  const void *data_msgpack, size_t data_len, void **out, size_t *out_len)
{
    /* The data goes one level down and shares the item budget with the six envelope fields,
     * so what we produce always decodes. */
    const struct sy_mpscan_limits lim = {
        .max_bytes = SY_MSG_MAX_BYTES,
        .max_depth = SY_MSG_MAX_DEPTH - 1,
        .max_items = SY_MSG_MAX_ITEMS - F_COUNT,
    };
    struct sy_mpscan_info info;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char fresh[37];
    char why[16];
    int rc = -SY_EINVAL;

    msgpack_sbuffer_init(&sb);
    if (!out || !out_len || !data_msgpack)
        goto out;
    *out = NULL;
    *out_len = 0;
    if (!str_ok(type, SY_MSG_TYPE_MAX) || !sy_msg_type_valid(type, strlen(type)) ||
        !str_ok(source, SY_MSG_SOURCE_MAX) || (id && !str_ok(id, SY_MSG_ID_MAX)) || ts_ms < 0)
        goto out;
    if (sy_mpscan(data_msgpack, data_len, &lim, &info, why, sizeof why) < 0 || !info.top_map)
        goto out;
    if (!id) {
        sy_uuid4(fresh);
        id = fresh;
    }
    if (ts_ms == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }
    rc = -SY_ENOMEM;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, F_COUNT) != 0 || pack_str(&pk, "v") != 0 ||
        msgpack_pack_uint32(&pk, 1) != 0 || pack_str(&pk, "id") != 0 || pack_str(&pk, id) != 0 ||
        pack_str(&pk, "type") != 0 || pack_str(&pk, type) != 0 || pack_str(&pk, "ts") != 0 ||
        msgpack_pack_int64(&pk, ts_ms) != 0 || pack_str(&pk, "source") != 0 ||
        pack_str(&pk, source) != 0 || pack_str(&pk, "data") != 0 ||
        msgpack_sbuffer_write(&sb, data_msgpack, data_len) != 0)
        goto out;
    if (sb.size > SY_MSG_MAX_BYTES) {
        rc = -SY_EINVAL;
        goto out;
    }
    *out_len = sb.size;
    *out = msgpack_sbuffer_release(&sb);
    rc = 0;

out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* --- verdicts -------------------------------------------------------------------------- */

enum sy_verdict sy_msg_fail(struct sy_msg *msg, enum sy_verdict v, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg->reason, sizeof msg->reason, fmt, ap);
    va_end(ap);
    msg->verdict = v;
    return v;
}

enum sy_verdict sy_msg_verdict(const struct sy_msg *msg)
{
    return msg->verdict;
}

const char *sy_msg_reason(const struct sy_msg *msg)
{
    return msg->reason;
}

void sy_msg_retry_after(struct sy_msg *msg, long long ms)
{
    msg->retry_after_ms = ms > 0 ? ms : 0;
}

long long sy_msg_retry_after_ms(const struct sy_msg *msg)
{
    return msg->retry_after_ms;
}

void sy_msg_set_verdict(struct sy_msg *msg, enum sy_verdict v)
{
    msg->verdict = v;
}
