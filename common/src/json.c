/* json.c - exact conversions between jansson values and msgpack. */
#include "sy/json.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "mpscan_int.h"
#include "sy/err.h"
#include "sy/msg.h"

/* --- JSON → msgpack -------------------------------------------------------------------- */

/* The same limits a decoder applies: JSON built in memory has no size of its own to check,
 * and a value that nests past them could never be read back. */
struct pack_ctx {
    msgpack_packer pk;
    size_t items;
};

static int pack_json(struct pack_ctx *c, const json_t *v, unsigned depth)
{
    msgpack_packer *pk = &c->pk;

    switch (json_typeof(v)) {
    case JSON_NULL:
        return msgpack_pack_nil(pk) ? -SY_ENOMEM : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? -SY_ENOMEM : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? -SY_ENOMEM : 0;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        int r = i >= 0 ? msgpack_pack_uint64(pk, (uint64_t)i) : msgpack_pack_int64(pk, i);
        return r ? -SY_ENOMEM : 0;
    }
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v)) ? -SY_ENOMEM : 0;
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (!sy_utf8_valid(json_string_value(v), n))
            return -SY_EINVAL;
        if (msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, json_string_value(v), n))
            return -SY_ENOMEM;
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (depth >= SY_MSG_MAX_DEPTH || n > SY_MSG_MAX_ITEMS - c->items || n > UINT32_MAX)
            return -SY_EINVAL;
        c->items += n;
        if (msgpack_pack_array(pk, n))
            return -SY_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            int rc = pack_json(c, json_array_get(v, i), depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        if (depth >= SY_MSG_MAX_DEPTH || n > SY_MSG_MAX_ITEMS - c->items || n > UINT32_MAX)
            return -SY_EINVAL;
        c->items += n;
        if (msgpack_pack_map(pk, n))
            return -SY_ENOMEM;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            const char *key = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            int rc;
            if (!sy_utf8_valid(key, klen))
                return -SY_EINVAL;
            if (msgpack_pack_str(pk, klen) || msgpack_pack_str_body(pk, key, klen))
                return -SY_ENOMEM;
            rc = pack_json(c, json_object_iter_value(it), depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    }
    return -SY_EINVAL;
}

int sy_json_to_msgpack(const json_t *v, void **out, size_t *len)
{
    struct pack_ctx c = {0};
    msgpack_sbuffer sb;
    int rc = -SY_EINVAL;

    msgpack_sbuffer_init(&sb);
    if (!v || !out || !len)
        goto out;
    *out = NULL;
    *len = 0;
    msgpack_packer_init(&c.pk, &sb, msgpack_sbuffer_write);
    rc = pack_json(&c, v, 0);
    if (rc < 0)
        goto out;
    if (sb.size > SY_MSG_MAX_BYTES) {
        rc = -SY_EINVAL;
        goto out;
    }
    *len = sb.size;
    *out = msgpack_sbuffer_release(&sb);

out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* --- msgpack → JSON -------------------------------------------------------------------- */

#if JSON_INTEGER_IS_LONG_LONG
#define SY_JSON_INT_MAX LLONG_MAX
#else
#define SY_JSON_INT_MAX LONG_MAX
#endif

static char *base64(const void *data, size_t len, size_t *outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    size_t n = 4 * ((len + 2) / 3);
    char *out = malloc(n + 1);
    char *o = out;
    size_t i = 0;

    if (!out)
        return NULL;
    for (; i + 2 < len; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[w >> 18];
        *o++ = tab[(w >> 12) & 63];
        *o++ = tab[(w >> 6) & 63];
        *o++ = tab[w & 63];
    }
    if (i < len) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[w >> 18];
        *o++ = tab[(w >> 12) & 63];
        *o++ = i + 1 < len ? tab[(w >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    *outlen = n;
    return out;
}

static json_t *b64_json(const void *data, size_t len)
{
    size_t n;
    char *s = base64(data, len, &n);
    json_t *j;

    if (!s)
        return NULL;
    j = json_stringn_nocheck(s, n);
    free(s);
    return j;
}

static json_t *to_json(const msgpack_object *o);

/* Adds one entry; a key given twice keeps its first value, as path lookups and schema checks
 * do, so every reader of a message sees the same data. */
static int put(json_t *obj, const char *key, size_t klen, json_t *val)
{
    if (json_object_getn(obj, key, klen)) {
        json_decref(val);
        return 0;
    }
    return json_object_setn_new(obj, key, klen, val);
}

static json_t *map_json(const msgpack_object *o)
{
    json_t *obj = json_object();

    if (!obj)
        return NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        json_t *val = to_json(&o->via.map.ptr[i].val);
        int rc;

        if (!val)
            goto fail;
        if (k->type == MSGPACK_OBJECT_STR) {
            rc = put(obj, k->via.str.ptr, k->via.str.size, val);
        } else {
            /* Any other key becomes its JSON text: 1 → "1", [1,2] → "[1,2]". */
            json_t *kj = to_json(k);
            char *text = kj ? json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            json_decref(kj);
            if (!text) {
                json_decref(val);
                goto fail;
            }
            rc = put(obj, text, strlen(text), val);
            free(text);
        }
        if (rc < 0)
            goto fail;
    }
    return obj;

fail:
    json_decref(obj);
    return NULL;
}

static json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)SY_JSON_INT_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* JSON has no NaN or infinity. */
        if (!isfinite(o->via.f64))
            return json_null();
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        /* The scan has checked the UTF-8, which is what jansson would check again. */
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        json_t *b = b64_json(o->via.bin.ptr, o->via.bin.size);
        return b ? json_pack("{s:o}", "$bin", b) : NULL;
    }
    case MSGPACK_OBJECT_EXT: {
        json_t *b = b64_json(o->via.ext.ptr, o->via.ext.size);
        return b ? json_pack("{s:i,s:o}", "$ext", (int)o->via.ext.type, "data", b) : NULL;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        if (!arr)
            return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (json_array_append_new(arr, to_json(&o->via.array.ptr[i])) < 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP:
        return map_json(o);
    }
    return NULL;
}

json_t *sy_msgpack_to_json(const void *p, size_t len, char *err, size_t errlen)
{
    msgpack_zone zone;
    msgpack_object root;
    size_t off = 0;
    json_t *res = NULL;

    if (errlen)
        err[0] = '\0';
    if (!p && len) {
        snprintf(err, errlen, "invalid argument");
        return NULL;
    }
    if (sy_mpscan(p, len, NULL, NULL, err, errlen) < 0)
        return NULL;
    if (!msgpack_zone_init(&zone, MSGPACK_ZONE_CHUNK_SIZE)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    switch (msgpack_unpack(p, len, &off, &zone, &root)) {
    case MSGPACK_UNPACK_SUCCESS:
        res = to_json(&root);
        if (!res)
            snprintf(err, errlen, "out of memory");
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        snprintf(err, errlen, "out of memory");
        break;
    default:
        snprintf(err, errlen, "msgpack: refused by the decoder");
        break;
    }
    msgpack_zone_destroy(&zone);
    return res;
}

json_t *sy_msg_data_json(const struct sy_msg *msg)
{
    return to_json(sy_msg_data_obj(msg));
}
