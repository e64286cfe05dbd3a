/* fuzz_envelope.c - libFuzzer target: untrusted bytes through envelope decoding, the schema
 * check, every path getter and both JSON conversions, as a worker and syctl would run them. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/schema.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PATHS    64
#define PATH_MAX_LEN 256

static struct sy_schemas *g_schemas;
static bool g_loaded;
/* Reads of borrowed bytes go here so the compiler cannot drop them. */
static volatile char g_sink;

static void unload(void)
{
    sy_schemas_destroy(g_schemas);
    g_schemas = NULL;
}

/* Schemas come from SY_SCHEMA_DIR, else <SY_SOURCE_DIR>/schemas/messages; with neither the
 * target runs without them. A directory that does not load is a setup error, not a finding:
 * stop loudly. */
static void load_schemas(void)
{
    const char *dir = getenv("SY_SCHEMA_DIR");
    const char *src = getenv("SY_SOURCE_DIR");
    char path[4096], err[1024];

    if (g_loaded)
        return;
    g_loaded = true;
    if (!dir && src) {
        snprintf(path, sizeof path, "%s/schemas/messages", src);
        dir = path;
    }
    if (!dir) {
        fprintf(stderr, "fuzz_envelope: no SY_SCHEMA_DIR or SY_SOURCE_DIR, schemas not checked\n");
        return;
    }
    g_schemas = sy_schemas_load(dir, err, sizeof err);
    if (!g_schemas) {
        fprintf(stderr, "fuzz_envelope: %s\n", err);
        abort();
    }
    atexit(unload);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    load_schemas();
    return 0;
}

/* Paths that exist in this message's data, so the getters walk real structure too. */
struct paths {
    char p[MAX_PATHS][PATH_MAX_LEN];
    size_t n;
};

static void collect(const msgpack_object *o, char *prefix, size_t plen, struct paths *ps)
{
    uint32_t n;

    if (ps->n >= MAX_PATHS)
        return;
    memcpy(ps->p[ps->n++], prefix, plen + 1);
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        n = o->via.array.size < 4 ? o->via.array.size : 4;
        for (uint32_t i = 0; i < n; i++) {
            int w = snprintf(prefix + plen, PATH_MAX_LEN - plen, "%s%u", plen ? "." : "", i);
            if (w > 0 && plen + (size_t)w < PATH_MAX_LEN)
                collect(&o->via.array.ptr[i], prefix, plen + (size_t)w, ps);
            prefix[plen] = '\0';
        }
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        n = o->via.map.size < 8 ? o->via.map.size : 8;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            size_t kl, need;
            if (k->type != MSGPACK_OBJECT_STR)
                continue;
            kl = k->via.str.size;
            need = plen + (plen ? 1 : 0) + kl;
            if (kl == 0 || need >= PATH_MAX_LEN || memchr(k->via.str.ptr, '.', kl) ||
                memchr(k->via.str.ptr, '\0', kl))
                continue;
            if (plen)
                prefix[plen] = '.';
            memcpy(prefix + plen + (plen ? 1 : 0), k->via.str.ptr, kl);
            prefix[need] = '\0';
            collect(&o->via.map.ptr[i].val, prefix, need, ps);
            prefix[plen] = '\0';
        }
    }
}

static void read_path(const struct sy_msg *msg, const char *path)
{
    const char *s;
    const void *p;
    size_t len;
    int64_t i;
    double d;
    bool b;
    char small[4], big[64];

    if (sy_msg_get_str(msg, path, &s, &len) == 0 && len)
        g_sink = s[len - 1];
    if (sy_msg_get_bin(msg, path, &p, &len) == 0 && len)
        g_sink = ((const char *)p)[len - 1];
    (void)sy_msg_copy_str(msg, path, small, sizeof small);
    (void)sy_msg_copy_str(msg, path, big, sizeof big);
    (void)sy_msg_get_int(msg, path, &i);
    (void)sy_msg_get_double(msg, path, &d);
    (void)sy_msg_get_bool(msg, path, &b);
    (void)sy_msg_get_len(msg, path, &len);
    (void)sy_msg_has(msg, path);
}

/* json_equal looks keys up as C strings, so keys holding a NUL would compare unequal to
 * themselves: compare with key lengths. */
static bool json_same(json_t *a, json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        for (void *it = json_object_iter(a); it; it = json_object_iter_next(a, it)) {
            json_t *other =
                json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
            if (!other || !json_same(json_object_iter_value(it), other))
                return false;
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

/* What JSON made of the data must survive another trip through msgpack unchanged. */
static void check_json_round_trip(const struct sy_msg *msg)
{
    json_t *j1 = sy_msg_data_json(msg), *j2;
    void *mp;
    size_t len;
    char err[256];
    char *text;

    if (!j1)
        abort(); /* only allocation can fail, and the fuzzer's inputs are small */
    text = json_dumps(j1, JSON_COMPACT);
    free(text);
    if (sy_json_to_msgpack(j1, &mp, &len) == 0) {
        j2 = sy_msgpack_to_json(mp, len, err, sizeof err);
        if (!j2 || !json_same(j1, j2)) {
            fprintf(stderr, "fuzz_envelope: JSON round trip changed the data (%s)\n",
                    j2 ? "unequal" : err);
            abort();
        }
        json_decref(j2);
        free(mp);
    }
    json_decref(j1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const fixed[] = {"",     "a", "0",   "files.0.file_id",
                                        "a..b", ".", "a.",  "x.0.y",
                                        "00",   "n", "run", "4294967296"};
    struct sy_msg *msg = NULL;
    struct paths *ps;
    char err[512], prefix[PATH_MAX_LEN] = "";
    json_t *j;

    load_schemas();
    /* The raw converter is a decoder of its own (syctl shows dead letters with it). */
    j = sy_msgpack_to_json(data, size, err, sizeof err);
    json_decref(j);

    if (sy_msg_decode(data, size, &msg, err, sizeof err) != 0)
        return 0;
    if (g_schemas)
        (void)sy_schemas_check(g_schemas, msg, err, sizeof err);
    ps = calloc(1, sizeof *ps);
    if (ps) {
        collect(sy_msg_data_obj(msg), prefix, 0, ps);
        for (size_t i = 0; i < ps->n; i++)
            read_path(msg, ps->p[i]);
        free(ps);
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        read_path(msg, fixed[i]);
    check_json_round_trip(msg);
    sy_msg_set_attempt(msg, 2);
    sy_msg_fail(msg, SY_REJECT, "%s: %s", sy_msg_type(msg), err);
    (void)sy_msg_reason(msg);
    sy_msg_destroy(msg);
    return 0;
}
