/* msg_int.h - the runtime's view into a decoded message: its msgpack objects, for the schema
 * checker and the JSON conversion. Workers never see msgpack-c types. */
#ifndef SY_MSG_INT_H
#define SY_MSG_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "sy/msg.h"

/* The data map of a decoded message (borrowed, valid as long as msg). */
const msgpack_object *sy_msg_data_obj(const struct sy_msg *msg);

/* Follows a dotted path ("files.0.file_id") from obj: map keys are compared with the str keys
 * of the map byte for byte (the first equal key wins), array indices are decimal without
 * leading zeros. An empty path is obj itself. Returns 0 with *out set, -SY_ENOTFOUND when a
 * step does not exist, or -SY_EINVAL for a malformed path (an empty step). */
int sy_mp_lookup(const msgpack_object *obj, const char *path, const msgpack_object **out);

/* The first value of a str key in a map, or NULL. */
const msgpack_object *sy_mp_map_get(const msgpack_object *map, const char *key, size_t keylen);

/* Whether s[0..n) is a message type: words of [a-z0-9_] joined by single dots (an AMQP
 * routing key without wildcards). */
bool sy_msg_type_valid(const char *s, size_t n);

/* Short name of an object's type for reasons: nil, bool, int, float, str, bin, array, map,
 * ext. */
const char *sy_mp_type_name(const msgpack_object *obj);

#endif
