/* mpscan.c - a bounded, allocation-free validity walk over raw msgpack bytes. */
#include "mpscan_int.h"

#include <stdio.h>

#include "sy/err.h"
#include "sy/msg.h"

const struct sy_mpscan_limits sy_mpscan_default_limits = {
    .max_bytes = SY_MSG_MAX_BYTES,
    .max_depth = SY_MSG_MAX_DEPTH,
    .max_items = SY_MSG_MAX_ITEMS,
};

bool sy_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, overlong lead (c0, c1) or past U+10FFFF */
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* One object header at p[0..left): how many header bytes it takes, how many payload bytes
 * follow it (str, bin, ext), and how many child objects it opens (arrays, maps). */
struct head {
    size_t hdr;
    uint64_t payload;
    uint64_t count;   /* elements, or entries for a map */
    uint64_t objects; /* child objects to read: count, or 2 * count for a map */
    bool container;
    bool map;
    bool str;
    bool ext;
};

static int parse_head(const unsigned char *p, size_t left, struct head *h, char *why, size_t whylen)
{
    unsigned char b = p[0];
    size_t lenbytes = 0;

    *h = (struct head){.hdr = 1};
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
        h->container = true;
        h->map = (b & 0xf0) == 0x80;
        h->count = b & 0x0f;
        goto counted;
    }
    if ((b & 0xe0) == 0xa0) {
        h->str = true;
        h->payload = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xc1:
        snprintf(why, whylen, "reserved byte 0xc1");
        return -1;
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
        lenbytes = (size_t)1 << (b - 0xc4);
        break;
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, then a type byte */
        lenbytes = (size_t)1 << (b - 0xc7);
        h->ext = true;
        break;
    case 0xca:
        h->hdr = 5;
        return 0;
    case 0xcb:
        h->hdr = 9;
        return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        h->hdr = 1 + ((size_t)1 << (b - 0xcc));
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        h->hdr = 1 + ((size_t)1 << (b - 0xd0));
        return 0;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext 1/2/4/8/16 */
        h->ext = true;
        h->hdr = 2;
        h->payload = (uint64_t)1 << (b - 0xd4);
        break;
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */
        lenbytes = (size_t)1 << (b - 0xd9);
        h->str = true;
        break;
    case 0xdc:
    case 0xdd: /* array 16/32 */
    case 0xde:
    case 0xdf: /* map 16/32 */
        h->container = true;
        h->map = b >= 0xde;
        h->hdr = 1 + ((b & 1) ? 4 : 2);
        if (left < h->hdr)
            goto truncated;
        h->count = be(p + 1, h->hdr - 1);
        goto counted;
    default:
        break;
    }
    if (lenbytes) {
        h->hdr = 1 + lenbytes + (h->ext ? 1 : 0);
        if (left < h->hdr)
            goto truncated;
        h->payload = be(p + 1, lenbytes);
    }
    if (left < h->hdr)
        goto truncated;
    return 0;

counted:
    h->objects = h->map ? 2 * h->count : h->count;
    return 0;

truncated:
    snprintf(why, whylen, "truncated header (0x%02x)", b);
    return -1;
}

/* The timestamp extension: 4 bytes of seconds, 8 bytes of 30-bit nanoseconds and 34-bit
 * seconds, or 12 bytes of 32-bit nanoseconds and 64-bit seconds. */
static bool timestamp_valid(const unsigned char *data, uint64_t size)
{
    if (size == 4)
        return true;
    if (size == 8)
        return (be(data, 8) >> 34) < 1000000000u;
    if (size == 12)
        return be(data, 4) < 1000000000u;
    return false;
}

int sy_mpscan(const void *buf, size_t len, const struct sy_mpscan_limits *lim,
              struct sy_mpscan_info *info, char *err, size_t errlen)
{
    const unsigned char *p = buf;
    /* pending[d]: objects still to read inside the d-th open container (0 = top level). */
    uint64_t pending[SY_MSG_MAX_DEPTH + 1];
    unsigned max_depth;
    unsigned open = 0, deepest = 0;
    size_t pos = 0, start = 0, items = 0;
    bool top_map = false;
    char why[160];

    if (!lim)
        lim = &sy_mpscan_default_limits;
    max_depth = lim->max_depth < SY_MSG_MAX_DEPTH ? lim->max_depth : SY_MSG_MAX_DEPTH;
    if (len == 0) {
        snprintf(err, errlen, "msgpack: empty body");
        return -SY_EDECODE;
    }
    if (len > lim->max_bytes) {
        snprintf(err, errlen, "msgpack: %zu bytes, at most %zu", len, lim->max_bytes);
        return -SY_EDECODE;
    }
    pending[0] = 1;
    for (;;) {
        struct head h;
        size_t left;

        while (pending[open] == 0) {
            if (open == 0)
                goto done;
            open--;
        }
        pending[open]--;
        start = pos;
        if (pos >= len) {
            snprintf(why, sizeof why, "truncated: another object expected");
            goto fail;
        }
        left = len - pos;
        if (parse_head(p + pos, left, &h, why, sizeof why) < 0)
            goto fail;
        if (h.hdr > left) {
            snprintf(why, sizeof why, "truncated value (0x%02x)", p[pos]);
            goto fail;
        }
        if (pos == 0)
            top_map = h.map;
        if (h.payload > left - h.hdr) {
            snprintf(why, sizeof why, "length %llu claims more than the %zu bytes left",
                     (unsigned long long)h.payload, left - h.hdr);
            goto fail;
        }
        if (h.ext) {
            int8_t type = (int8_t)p[pos + h.hdr - 1];
            if (type != -1) {
                snprintf(why, sizeof why, "ext type %d not accepted (only timestamps, -1)", type);
                goto fail;
            }
            if (!timestamp_valid(p + pos + h.hdr, h.payload)) {
                snprintf(why, sizeof why, "malformed timestamp of %llu bytes",
                         (unsigned long long)h.payload);
                goto fail;
            }
        }
        if (h.str && !sy_utf8_valid((const char *)p + pos + h.hdr, (size_t)h.payload)) {
            snprintf(why, sizeof why, "string is not valid UTF-8");
            goto fail;
        }
        pos += h.hdr + (size_t)h.payload;
        if (!h.container)
            continue;
        if (open + 1 > max_depth) {
            snprintf(why, sizeof why, "nested deeper than %u", max_depth);
            goto fail;
        }
        /* Every child object takes at least one byte, so a count the rest of the body cannot
         * hold is a lie, whatever the limits. */
        if (h.objects > len - pos) {
            snprintf(why, sizeof why, "%s of %llu %s claims more than the %zu bytes left",
                     h.map ? "map" : "array", (unsigned long long)h.count,
                     h.map ? "entries" : "elements", len - pos);
            goto fail;
        }
        if (h.count > lim->max_items - items) {
            snprintf(why, sizeof why, "more than %zu items", lim->max_items);
            goto fail;
        }
        items += (size_t)h.count;
        open++;
        if (open > deepest)
            deepest = open;
        pending[open] = h.objects;
    }

done:
    if (pos != len) {
        snprintf(err, errlen, "msgpack: %zu trailing bytes after the object", len - pos);
        return -SY_EDECODE;
    }
    if (info)
        *info = (struct sy_mpscan_info){.items = items, .depth = deepest, .top_map = top_map};
    return 0;

fail:
    snprintf(err, errlen, "msgpack: at byte %zu: %s", start, why);
    return -SY_EDECODE;
}
