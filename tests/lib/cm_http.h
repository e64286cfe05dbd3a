/* cm_http.h - checks of th_http replies that fail the running cmocka test (integration tests
 * only: benchmarks do not link cmocka). */
#ifndef SY_TEST_CM_HTTP_H
#define SY_TEST_CM_HTTP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "http.h"

/* The body as JSON (to json_decref); fails the test when it is not JSON. */
static inline json_t *th_reply_json(const struct th_reply *r)
{
    json_error_t e;
    json_t *v = json_loads(r->body, 0, &e);
    if (!v)
        fail_msg("status %ld, body is not JSON: %s", r->status, r->body);
    return v;
}

/* Checks an error answer: its status; the body's error object with that status, a message and
 * a request_id; error.code when code is not NULL; error.field when field is not NULL ("" when
 * the body must name none). Fails the test otherwise. */
static inline void th_expect_error(const struct th_reply *r, long status, const char *code,
                                   const char *field)
{
    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status, r->body);
    json_t *v = th_reply_json(r);
    json_t *e = json_object_get(v, "error");
    if (!json_is_object(e))
        fail_msg("no error object in %s", r->body);
    if (json_integer_value(json_object_get(e, "status")) != status)
        fail_msg("error.status is not %ld in %s", status, r->body);
    const char *got_code = json_string_value(json_object_get(e, "code"));
    if (code && (!got_code || strcmp(got_code, code) != 0))
        fail_msg("error.code is not \"%s\" in %s", code, r->body);
    if (!json_string_value(json_object_get(e, "message")) ||
        !json_string_value(json_object_get(e, "request_id")))
        fail_msg("error.message or error.request_id missing in %s", r->body);
    if (field) {
        const char *got = json_string_value(json_object_get(e, "field"));
        if (strcmp(got ? got : "", field) != 0)
            fail_msg("expected error.field \"%s\" in %s", field, r->body);
    }
    json_decref(v);
}

#endif
