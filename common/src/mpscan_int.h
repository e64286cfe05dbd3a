/* mpscan_int.h - a bounded walk over raw msgpack bytes, run before msgpack-c ever sees them.
 *
 * msgpack-c's unpacker allocates the storage of an array or map from its claimed element count
 * before it reads a single element, so a six-byte body claiming 2^32 elements would make it
 * allocate gigabytes. This walker allocates nothing: it proves that the bytes hold exactly one
 * complete object within the limits, and that every claimed count and length fits in the bytes
 * that remain, so what msgpack-c allocates afterwards is bounded by the body's own size. */
#ifndef SY_MPSCAN_INT_H
#define SY_MPSCAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sy_mpscan_limits {
    size_t max_bytes;
    unsigned max_depth; /* nesting of maps and arrays; at most SY_MSG_MAX_DEPTH */
    size_t max_items;   /* array elements and map entries of all containers together */
};

/* The limits sy_msg_decode applies: SY_MSG_MAX_BYTES, SY_MSG_MAX_DEPTH, SY_MSG_MAX_ITEMS. */
extern const struct sy_mpscan_limits sy_mpscan_default_limits;

struct sy_mpscan_info {
    size_t items;   /* array elements and map entries seen */
    unsigned depth; /* deepest container nesting: 0 for a scalar, 1 for a flat map */
    bool top_map;   /* the object is a map */
};

/* Checks that p[0..len) is exactly one complete msgpack object: no reserved byte (0xc1), no
 * truncation, no trailing bytes, strings valid UTF-8, no ext type but the timestamp (-1) in
 * one of its three sizes, and the limits in lim (NULL: the defaults). Returns 0 and fills
 * info (may be NULL), or -SY_EDECODE with "msgpack: why" in err. */
int sy_mpscan(const void *p, size_t len, const struct sy_mpscan_limits *lim,
              struct sy_mpscan_info *info, char *err, size_t errlen);

/* Whether s[0..len) is valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). */
bool sy_utf8_valid(const char *s, size_t len);

#endif
