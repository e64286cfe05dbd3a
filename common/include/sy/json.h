/* json.h - conversion between jansson values and msgpack, for syctl and for handlers that
 * build or read message data as JSON. */
#ifndef SY_JSON_H
#define SY_JSON_H

#include <jansson.h>
#include <stddef.h>

struct sy_msg;

/* Packs a JSON value as msgpack (objects → maps, integers → ints, reals → float64, strings →
 * str). Result malloc'd into *out. 0 or -SY_ENOMEM / -SY_EINVAL. */
int sy_json_to_msgpack(const json_t *v, void **out, size_t *len);

/* Unpacks msgpack into JSON (bin → {"$bin": base64}, ext → {"$ext": type, "data": base64},
 * non-string map keys → their JSON text). Limits as sy_msg_decode. NULL with err on failure;
 * the caller owns the result (json_decref). */
json_t *sy_msgpack_to_json(const void *p, size_t len, char *err, size_t errlen);

/* The message's data map as JSON (new reference), or NULL on allocation failure. */
json_t *sy_msg_data_json(const struct sy_msg *msg);

#endif
