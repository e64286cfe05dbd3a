/* test_fake_glpi.c - the fake GLPI keeps GLPI's formats (sessions, error arrays, sanitised text,
 * searches without "data", bulk creates) and its fault switches do what the tests relying on
 * them expect: the fake is only worth as much as its faithfulness. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chatwoot.h"
#include "harness.h"

#define APP_TOKEN  "app-secret"
#define USER_TOKEN "user-secret"

struct fake {
    pid_t pid;
    int port;
};

static struct fake glpi;
static char session[64];

/* Starts the fake with args (NULL-terminated) and reads the port it announces: 0, or -1. */
static int fake_start(struct fake *f, const char *const *args)
{
    const char *argv[8] = {th_need_env("SY_FAKE_GLPI_BIN")};

    for (size_t i = 0; args && args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    return th_fake_glpi_start(argv, &f->pid, &f->port);
}

/* SIGTERM, then its exit code (-1 when it died otherwise). */
static int fake_stop(struct fake *f)
{
    int st;

    if (f->pid <= 0)
        return -1;
    kill(f->pid, SIGTERM);
    if (waitpid(f->pid, &st, 0) != f->pid)
        return -1;
    f->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One exchange with its headers kept, since Location, Content-Range and Retry-After are part of
 * what the fake promises. */
struct reply {
    long status; /* 0 when no answer came */
    char body[65536];
    size_t len;
    char head[4096];
    size_t hlen;
    json_t *json; /* the body parsed, NULL when empty or not JSON */
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = sz * n;

    if (k > sizeof r->body - 1 - r->len)
        k = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_head(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = sz * n;

    if (k > sizeof r->head - 1 - r->hlen)
        k = sizeof r->head - 1 - r->hlen;
    memcpy(r->head + r->hlen, p, k);
    r->hlen += k;
    r->head[r->hlen] = '\0';
    return sz * n;
}

/* method path [body] to a fake; extra headers NULL-terminated. The reply is the caller's to
 * free with reply_free. */
static struct reply *call_on(int port, const char *method, const char *path,
                             const char *const *headers, const char *body)
{
    struct reply *r = calloc(1, sizeof *r);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    char url[2048];

    assert_non_null(r);
    assert_non_null(c);
    for (size_t i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    h = curl_slist_append(h, "Expect:");
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (r->status && r->len)
        r->json = json_loads(r->body, JSON_DECODE_ANY, NULL);
    return r;
}

static void reply_free(struct reply *r)
{
    if (r) {
        json_decref(r->json);
        free(r);
    }
}

/* An API call on the shared fake with this test's session and the app token. */
static struct reply *api(const char *method, const char *path, const char *body)
{
    char url[1024], st[96];
    const char *h[] = {"App-Token: " APP_TOKEN, st, NULL};

    snprintf(url, sizeof url, "/apirest.php/%s", path);
    snprintf(st, sizeof st, "Session-Token: %s", session);
    return call_on(glpi.port, method, url, h, body);
}

/* The same, asking for decoded text. */
static struct reply *api_raw(const char *method, const char *path, const char *body)
{
    char url[1024], st[96];
    const char *h[] = {"App-Token: " APP_TOKEN, st, "X-GLPI-Sanitized-Content: false", NULL};

    snprintf(url, sizeof url, "/apirest.php/%s", path);
    snprintf(st, sizeof st, "Session-Token: %s", session);
    return call_on(glpi.port, method, url, h, body);
}

/* The value of header name in r, copied to out; false when absent. */
static bool header(const struct reply *r, const char *name, char *out, size_t n)
{
    char key[64];
    const char *p;
    size_t k;

    snprintf(key, sizeof key, "\n%s:", name);
    if (!(p = strcasestr(r->head, key)))
        return false;
    p += strlen(key);
    while (*p == ' ')
        p++;
    k = strcspn(p, "\r\n");
    snprintf(out, n, "%.*s", (int)k, p);
    return true;
}

/* Fails unless r is a GLPI error: that status and ["code", ...]. */
static void expect_error(const struct reply *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("expected %ld %s, got %ld: %s", status, code, r->status, r->body);
    if (!json_is_array(r->json) || json_array_size(r->json) != 2)
        fail_msg("not a GLPI error array: %s", r->body);
    const char *got = json_string_value(json_array_get(r->json, 0));
    if (!got || strcmp(got, code) != 0)
        fail_msg("expected %s in %s", code, r->body);
}

static void control(const char *path, const char *body)
{
    struct reply *r = call_on(glpi.port, "POST", path, NULL, body);

    if (r->status != 200)
        fail_msg("%s: %ld %s", path, r->status, r->body);
    reply_free(r);
}

static json_t *state(void)
{
    struct reply *r = call_on(glpi.port, "GET", "/_fake/state", NULL, NULL);
    json_t *s;

    assert_int_equal(r->status, 200);
    s = json_incref(r->json);
    reply_free(r);
    assert_true(json_is_object(s));
    return s;
}

static long long counter(const char *name)
{
    json_t *s = state();
    long long n = json_integer_value(json_object_get(json_object_get(s, "counters"), name));

    json_decref(s);
    return n;
}

/* A fresh state and a session on it. */
static void fresh(void)
{
    const char *h[] = {"App-Token: " APP_TOKEN, "Authorization: user_token " USER_TOKEN, NULL};
    struct reply *r;

    control("/_fake/reset", "{}");
    r = call_on(glpi.port, "GET", "/apirest.php/initSession", h, NULL);
    assert_int_equal(r->status, 200);
    snprintf(session, sizeof session, "%s",
             json_string_value(json_object_get(r->json, "session_token")));
    reply_free(r);
}

/* Creates one item and returns its id. */
static long long create(const char *itemtype, const char *input)
{
    char path[64], body[4096];
    struct reply *r;
    long long id;

    snprintf(path, sizeof path, "%s/", itemtype);
    snprintf(body, sizeof body, "{\"input\":%s}", input);
    r = api("POST", path, body);
    if (r->status != 201)
        fail_msg("create %s: %ld %s", itemtype, r->status, r->body);
    id = json_integer_value(json_object_get(r->json, "id"));
    assert_true(id > 0);
    reply_free(r);
    return id;
}

/* --- sessions --------------------------------------------------------------------------------- */

static void sessions_open_check_and_close_like_glpi(void **ts)
{
    const char *no_auth[] = {"App-Token: " APP_TOKEN, NULL};
    const char *bad_user[] = {"App-Token: " APP_TOKEN, "Authorization: user_token nope", NULL};
    const char *bad_app[] = {"App-Token: nope", "Authorization: user_token " USER_TOKEN, NULL};
    const char *good[] = {"App-Token: " APP_TOKEN, "Authorization: user_token " USER_TOKEN, NULL};
    struct reply *r;
    char path[128];
    const char *tok;

    (void)ts;
    control("/_fake/reset", "{}");
    r = call_on(glpi.port, "GET", "/apirest.php/initSession", no_auth, NULL);
    expect_error(r, 400, "ERROR_LOGIN_PARAMETERS_MISSING");
    reply_free(r);
    r = call_on(glpi.port, "GET", "/apirest.php/initSession", bad_user, NULL);
    expect_error(r, 401, "ERROR_GLPI_LOGIN_USER_TOKEN");
    reply_free(r);
    r = call_on(glpi.port, "GET", "/apirest.php/initSession", bad_app, NULL);
    expect_error(r, 400, "ERROR_WRONG_APP_TOKEN_PARAMETER");
    reply_free(r);

    r = call_on(glpi.port, "GET", "/apirest.php/initSession", good, NULL);
    assert_int_equal(r->status, 200);
    char type[64] = "";
    assert_true(header(r, "Content-Type", type, sizeof type));
    assert_string_equal(type, "application/json; charset=UTF-8");
    tok = json_string_value(json_object_get(r->json, "session_token"));
    assert_non_null(tok);
    assert_int_equal(strlen(tok), 26);
    assert_int_equal(strspn(tok, "abcdefghijklmnopqrstuvwxyz0123456789"), 26);
    snprintf(session, sizeof session, "%s", tok);
    reply_free(r);

    r = call_on(glpi.port, "GET", "/apirest.php/User/2", no_auth, NULL);
    expect_error(r, 400, "ERROR_SESSION_TOKEN_MISSING");
    reply_free(r);
    const char *bogus[] = {"App-Token: " APP_TOKEN, "Session-Token: abc", NULL};
    r = call_on(glpi.port, "GET", "/apirest.php/User/2", bogus, NULL);
    expect_error(r, 401, "ERROR_SESSION_TOKEN_INVALID");
    reply_free(r);

    /* The session user exists from the start; the token may come in the query. */
    snprintf(path, sizeof path, "/apirest.php/User/2?session_token=%s", session);
    r = call_on(glpi.port, "GET", path, no_auth, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "name")), "glpi");
    reply_free(r);
    assert_int_equal(counter("sessions_live"), 1);

    r = api("GET", "killSession", NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);
    r = api("GET", "User/2", NULL);
    expect_error(r, 401, "ERROR_SESSION_TOKEN_INVALID");
    reply_free(r);
    json_t *s = state();
    json_t *c = json_object_get(s, "counters");
    assert_int_equal(json_integer_value(json_object_get(c, "init_session")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "kill_session")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "sessions_live")), 0);
    json_decref(s);
}

static void without_user_tokens_any_token_logs_in_and_sigterm_exits_zero(void **ts)
{
    const char *args[] = {"--port", "0", NULL};
    const char *any[] = {"Authorization: user_token whatever", NULL};
    const char *empty[] = {"Authorization: user_token ", NULL};
    struct fake f = {0};
    struct reply *r;

    (void)ts;
    assert_int_equal(fake_start(&f, args), 0);
    assert_true(f.port > 0);
    r = call_on(f.port, "GET", "/apirest.php/initSession", any, NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);
    r = call_on(f.port, "GET", "/apirest.php/initSession", empty, NULL);
    expect_error(r, 400, "ERROR_LOGIN_PARAMETERS_MISSING");
    reply_free(r);
    assert_int_equal(fake_stop(&f), 0);
}

/* --- items ------------------------------------------------------------------------------------ */

static void created_text_comes_back_encoded_unless_asked_not_to(void **ts)
{
    struct reply *r;
    char loc[128] = "", path[64];
    long long uid, tid;

    (void)ts;
    fresh();
    r = api("POST", "User/",
            "{\"input\":{\"name\":\"o'brien\",\"realname\":\"A & B <c>\",\"firstname\":"
            "\"\\\"Jo\\\"\",\"_useremails\":{\"-1\":\"jo@example.com\"},"
            "\"_default_email\":\"-1\"}}");
    assert_int_equal(r->status, 201);
    uid = json_integer_value(json_object_get(r->json, "id"));
    assert_int_equal(uid, 3);
    assert_string_equal(json_string_value(json_object_get(r->json, "message")), "");
    assert_true(header(r, "Location", loc, sizeof loc));
    assert_non_null(strstr(loc, "/apirest.php/User/3"));
    reply_free(r);

    r = api("GET", "User/3", NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "name")), "o&#39;brien");
    assert_string_equal(json_string_value(json_object_get(r->json, "realname")),
                        "A &#38; B &#60;c&#62;");
    assert_string_equal(json_string_value(json_object_get(r->json, "firstname")), "&#34;Jo&#34;");
    assert_int_equal(json_integer_value(json_object_get(r->json, "id")), 3);
    assert_non_null(json_object_get(r->json, "date_mod"));
    assert_non_null(json_object_get(r->json, "date_creation"));
    reply_free(r);
    r = api_raw("GET", "User/3", NULL);
    assert_string_equal(json_string_value(json_object_get(r->json, "realname")), "A & B <c>");
    reply_free(r);

    /* A second user with the same login is refused, as GLPI's unicity check does. */
    r = api("POST", "User/", "{\"input\":{\"name\":\"o'brien\"}}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);
    r = api("POST", "Contact/", "{\"input\":{\"firstname\":\"no name\"}}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);
    assert_int_equal(create("Contact", "{\"name\":\"Doe\",\"email\":\"d@example.com\"}"), 1);

    tid =
        create("Ticket", "{\"name\":\"Help <now>\",\"content\":\"x\",\"type\":2,"
                         "\"_users_id_requester\":3,\"_users_id_requester_notif\":"
                         "{\"use_notification\":[0],\"alternative_email\":[\"alt@example.com\"]}}");
    assert_int_equal(tid, 1);
    long long tid2 = create("Ticket", "{\"name\":\"by mail\",\"_users_id_requester\":0,"
                                      "\"_users_id_requester_notif\":{\"use_notification\":[1],"
                                      "\"alternative_email\":[\"x@y.z\"]}}");
    long long tid3 =
        create("Ticket", "{\"content\":\"actors\",\"_actors\":{\"requester\":[{\"itemtype\":"
                         "\"User\",\"items_id\":2,\"use_notification\":1,\"alternative_email\":"
                         "\"\"}],\"assign\":[{\"itemtype\":\"Group\",\"items_id\":3}]}}");
    r = api("POST", "Ticket/", "{\"input\":{\"name\":\"\",\"content\":\"\"}}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);

    r = api("GET", "Ticket/1/Ticket_User", NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_array_size(r->json), 1);
    json_t *l = json_array_get(r->json, 0);
    assert_int_equal(json_integer_value(json_object_get(l, "tickets_id")), tid);
    assert_int_equal(json_integer_value(json_object_get(l, "users_id")), 3);
    assert_int_equal(json_integer_value(json_object_get(l, "type")), 1);
    assert_int_equal(json_integer_value(json_object_get(l, "use_notification")), 0);
    assert_string_equal(json_string_value(json_object_get(l, "alternative_email")),
                        "alt@example.com");
    reply_free(r);
    snprintf(path, sizeof path, "Ticket/%lld/Ticket_User", tid2);
    r = api("GET", path, NULL);
    assert_int_equal(json_array_size(r->json), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r->json, 0), "users_id")),
                     0);
    reply_free(r);
    snprintf(path, sizeof path, "Ticket/%lld/Ticket_User", tid3);
    r = api("GET", path, NULL);
    assert_int_equal(json_array_size(r->json), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r->json, 0), "users_id")),
                     2);
    reply_free(r);

    /* Followups: in id order, kept dates, the session user as writer. */
    create("ITILFollowup", "{\"itemtype\":\"Ticket\",\"items_id\":1,\"content\":\"<p>one</p>\","
                           "\"date\":\"2024-05-01 10:00:00\",\"requesttypes_id\":1}");
    create("ITILFollowup", "{\"itemtype\":\"Ticket\",\"items_id\":1,\"content\":\"two\","
                           "\"is_private\":1}");
    r = api("POST", "ITILFollowup/",
            "{\"input\":{\"itemtype\":\"Ticket\",\"items_id\":99,\"content\":\"x\"}}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);
    r = api("POST", "ITILFollowup/",
            "{\"input\":{\"itemtype\":\"Ticket\",\"items_id\":1,\"content\":\"\"}}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);
    r = api_raw("GET", "Ticket/1/ITILFollowup?range=0-9", NULL);
    assert_int_equal(json_array_size(r->json), 2);
    json_t *f0 = json_array_get(r->json, 0);
    assert_string_equal(json_string_value(json_object_get(f0, "content")), "<p>one</p>");
    assert_string_equal(json_string_value(json_object_get(f0, "date")), "2024-05-01 10:00:00");
    assert_int_equal(json_integer_value(json_object_get(f0, "users_id")), 2);
    assert_int_equal(json_integer_value(json_object_get(f0, "is_private")), 0);
    reply_free(r);
    r = api("GET", "Ticket/1/ITILFollowup?range=1-1", NULL);
    assert_int_equal(json_array_size(r->json), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r->json, 0), "content")),
                        "two");
    reply_free(r);

    /* An update answers GLPI's list; a closed ticket takes no followup. */
    r = api("PUT", "Ticket/1", "{\"input\":{\"status\":6}}");
    assert_int_equal(r->status, 200);
    assert_true(json_is_true(json_object_get(json_array_get(r->json, 0), "1")));
    reply_free(r);
    r = api("POST", "ITILFollowup/",
            "{\"input\":{\"itemtype\":\"Ticket\",\"items_id\":1,\"content\":\"late\"}}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);
    r = api("PATCH", "Ticket/99", "{\"input\":{\"status\":2}}");
    expect_error(r, 400, "ERROR_GLPI_UPDATE");
    reply_free(r);

    r = api("GET", "Ticket/99", NULL);
    expect_error(r, 404, "ERROR_ITEM_NOT_FOUND");
    reply_free(r);
    r = api("GET", "Computer/1", NULL);
    expect_error(r, 400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM");
    reply_free(r);
    r = api("GET", "Ticket/1", "{}");
    expect_error(r, 400, "ERROR_JSON_PAYLOAD_FORBIDDEN");
    reply_free(r);
    r = api("POST", "Ticket/", "{\"input\":");
    expect_error(r, 400, "ERROR_JSON_PAYLOAD_INVALID");
    reply_free(r);
    r = api("GET", "Ticket/?range=1-2", NULL);
    assert_int_equal(json_array_size(r->json), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r->json, 0), "id")), 2);
    reply_free(r);

    /* The control view holds every text decoded. */
    json_t *s = state();
    json_t *u = json_array_get(json_object_get(s, "users"), 1);
    assert_string_equal(json_string_value(json_object_get(u, "realname")), "A & B <c>");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(u, "emails"), 0), "email")),
                        "jo@example.com");
    json_t *t1 = json_array_get(json_object_get(s, "tickets"), 0);
    assert_string_equal(json_string_value(json_object_get(t1, "name")), "Help <now>");
    assert_int_equal(json_integer_value(json_object_get(t1, "status")), 6);
    assert_int_equal(json_array_size(json_object_get(t1, "requesters")), 1);
    assert_int_equal(json_array_size(json_object_get(s, "followups")), 2);
    assert_int_equal(json_array_size(json_object_get(s, "contacts")), 1);
    json_decref(s);
}

static void user_emails_are_added_changed_and_removed_by_key(void **ts)
{
    struct reply *r;
    long long uid;

    (void)ts;
    fresh();
    uid = create("User", "{\"name\":\"jane\",\"_useremails\":{\"-1\":\"a@example.com\"},"
                         "\"_default_email\":\"-1\"}");
    r = api("GET", "User/3/UserEmail", NULL);
    assert_int_equal(json_array_size(r->json), 1);
    json_t *e = json_array_get(r->json, 0);
    long long eid = json_integer_value(json_object_get(e, "id"));
    assert_int_equal(json_integer_value(json_object_get(e, "users_id")), uid);
    assert_int_equal(json_integer_value(json_object_get(e, "is_default")), 1);
    reply_free(r);

    char body[256];
    snprintf(body, sizeof body,
             "{\"input\":{\"_useremails\":{\"%lld\":\"b@example.com\",\"-1\":\"c@example.com\"}}}",
             eid);
    r = api("PUT", "User/3", body);
    assert_int_equal(r->status, 200);
    reply_free(r);
    r = api("GET", "User/3/UserEmail", NULL);
    assert_int_equal(json_array_size(r->json), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r->json, 0), "email")),
                        "b@example.com");
    reply_free(r);
    snprintf(body, sizeof body, "{\"input\":{\"_useremails\":{\"%lld\":\"\"}}}", eid);
    r = api("PUT", "User/3", body);
    reply_free(r);
    r = api("GET", "User/3/UserEmail", NULL);
    assert_int_equal(json_array_size(r->json), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r->json, 0), "email")),
                        "c@example.com");
    reply_free(r);
}

static void bulk_create_answers_201_207_or_400_with_each_item(void **ts)
{
    struct reply *r;

    (void)ts;
    fresh();
    r = api("POST", "Contact/", "{\"input\":[{\"name\":\"a\"},{\"name\":\"b\"}]}");
    assert_int_equal(r->status, 201);
    assert_int_equal(json_array_size(r->json), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r->json, 1), "id")), 2);
    reply_free(r);
    r = api("POST", "Contact/", "{\"input\":[{\"name\":\"c\"},{\"firstname\":\"d\"}]}");
    expect_error(r, 207, "ERROR_GLPI_PARTIAL_ADD");
    json_t *items = json_array_get(r->json, 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "id")), 3);
    assert_true(json_is_false(json_object_get(json_array_get(items, 1), "id")));
    reply_free(r);
    r = api("POST", "Contact/", "{\"input\":[{\"firstname\":\"e\"}]}");
    expect_error(r, 400, "ERROR_GLPI_ADD");
    assert_true(json_is_array(json_array_get(r->json, 1)));
    reply_free(r);
}

/* --- search ----------------------------------------------------------------------------------- */

static void search_follows_glpi_columns_anchors_and_empty_results(void **ts)
{
    struct reply *r;
    char cr[64];

    (void)ts;
    fresh();
    create("User",
           "{\"name\":\"jane\",\"phone\":\"+331\",\"_useremails\":{\"-1\":\"j@example.com\","
           "\"-2\":\"jane@work.example\"},\"_default_email\":\"-1\"}");
    create("User", "{\"name\":\"john\",\"_useremails\":{\"-1\":\"john@example.com\"}}");
    create("User", "{\"name\":\"j_n%x\"}");

    /* Literal brackets, as curl -g sends them. */
    r = api("GET",
            "search/User?criteria[0][field]=5&criteria[0][searchtype]=contains&"
            "criteria[0][value]=^j@example.com$&forcedisplay[0]=6&range=0-49",
            NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 1);
    assert_int_equal(json_integer_value(json_object_get(r->json, "count")), 1);
    assert_string_equal(json_string_value(json_object_get(r->json, "content-range")), "0-0/1");
    assert_true(header(r, "Content-Range", cr, sizeof cr));
    assert_string_equal(cr, "0-0/1");
    json_t *row = json_array_get(json_object_get(r->json, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "1")), "jane");
    assert_int_equal(json_integer_value(json_object_get(row, "2")), 3);
    assert_string_equal(json_string_value(json_object_get(row, "6")), "+331");
    /* Two addresses: the column is a list. */
    assert_true(json_is_array(json_object_get(row, "5")));
    assert_int_equal(json_array_size(json_object_get(row, "5")), 2);
    reply_free(r);

    /* Percent-encoded brackets, as the worker sends them; one address is a plain string. */
    r = api("GET",
            "search/User?criteria%5B0%5D%5Bfield%5D=5&criteria%5B0%5D%5Bsearchtype%5D=contains"
            "&criteria%5B0%5D%5Bvalue%5D=%5Ejohn%40example.com%24&forcedisplay%5B0%5D=2",
            NULL);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 1);
    row = json_array_get(json_object_get(r->json, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "5")), "john@example.com");
    reply_free(r);

    /* ^$ is empty: the users without a phone (glpi, john, j_n%x). */
    r = api("GET",
            "search/User?criteria[0][field]=6&criteria[0][searchtype]=contains&"
            "criteria[0][value]=^$",
            NULL);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 3);
    reply_free(r);

    /* _ and % stay wildcards, as in GLPI: "^J_N" finds jane besides j_n%x, so clients must
     * check what they get. */
    r = api("GET",
            "search/User?criteria[0][field]=1&criteria[0][searchtype]=contains&"
            "criteria[0][value]=^J_N",
            NULL);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 2);
    reply_free(r);
    r = api("GET",
            "search/User?criteria[0][field]=1&criteria[0][searchtype]=equals&"
            "criteria[0][value]=j_n%25x",
            NULL);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 1);
    reply_free(r);
    r = api("GET",
            "search/User?criteria[0][field]=1&criteria[0][searchtype]=contains&"
            "criteria[0][value]=^jane$&criteria[1][link]=OR&criteria[1][field]=1&"
            "criteria[1][searchtype]=contains&criteria[1][value]=^john$",
            NULL);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 2);
    reply_free(r);

    /* A page smaller than the total is a 206; a start past the total a 400. */
    r = api("GET", "search/User?range=0-1", NULL);
    assert_int_equal(r->status, 206);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 4);
    assert_int_equal(json_integer_value(json_object_get(r->json, "count")), 2);
    reply_free(r);
    r = api("GET", "search/User?range=10-20", NULL);
    expect_error(r, 400, "ERROR_RANGE_EXCEED_TOTAL");
    reply_free(r);

    /* Nothing found: no data key and no Content-Range, as GLPI. */
    r = api("GET",
            "search/Contact?criteria[0][field]=6&criteria[0][searchtype]=contains&"
            "criteria[0][value]=^nobody@example.com$",
            NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 0);
    assert_null(json_object_get(r->json, "data"));
    assert_false(header(r, "Content-Range", cr, sizeof cr));
    reply_free(r);

    r = api("GET", "search/Ticket?criteria[0][field]=777&criteria[0][value]=x", NULL);
    expect_error(r, 400, "ERROR");
    assert_string_equal(json_string_value(json_array_get(r->json, 1)),
                        "Bad field ID in search criteria");
    reply_free(r);
    assert_int_equal(counter("searches"), 10);
}

/* --- faults ----------------------------------------------------------------------------------- */

static void expired_sessions_answer_401_and_a_new_login_works(void **ts)
{
    struct reply *r;

    (void)ts;
    fresh();
    control("/_fake/faults", "{\"expire_sessions\": true}");
    r = api("GET", "User/2", NULL);
    expect_error(r, 401, "ERROR_SESSION_TOKEN_INVALID");
    reply_free(r);
    assert_int_equal(counter("sessions_live"), 0);
    fresh();
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);
}

static void induced_failures_and_throttling_count_down(void **ts)
{
    struct reply *r;
    char ra[16];

    (void)ts;
    fresh();
    control("/_fake/faults", "{\"fail_500\": 2}");
    for (int i = 0; i < 2; i++) {
        r = api("GET", "User/2", NULL);
        expect_error(r, 500, "ERROR");
        assert_string_equal(json_string_value(json_array_get(r->json, 1)), "fake: induced failure");
        reply_free(r);
    }
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);

    control("/_fake/faults", "{\"fail_429\": 1, \"retry_after\": 7}");
    /* A login is never refused by the switches, so clients can always start over. */
    const char *h[] = {"App-Token: " APP_TOKEN, "Authorization: user_token " USER_TOKEN, NULL};
    r = call_on(glpi.port, "GET", "/apirest.php/initSession", h, NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);
    r = api("GET", "User/2", NULL);
    expect_error(r, 429, "ERROR");
    assert_string_equal(json_string_value(json_array_get(r->json, 1)), "fake: too many requests");
    assert_true(header(r, "Retry-After", ra, sizeof ra));
    assert_string_equal(ra, "7");
    reply_free(r);
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);

    control("/_fake/faults", "{\"fail_rate\": 1.0, \"fail_status\": 503}");
    r = api("GET", "User/2", NULL);
    expect_error(r, 503, "ERROR");
    reply_free(r);
    control("/_fake/faults", "{\"fail_rate\": 0}");
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);

    /* A reset clears the switches too. */
    control("/_fake/faults", "{\"fail_500\": 5}");
    fresh();
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    reply_free(r);
}

/* POSTs a control call and returns its JSON answer's "id". */
static long long control_id(const char *path, const char *body)
{
    struct reply *r = call_on(glpi.port, "POST", path, NULL, body);
    long long id;

    if (r->status != 200)
        fail_msg("%s: %ld %s", path, r->status, r->body);
    id = json_integer_value(json_object_get(r->json, "id"));
    reply_free(r);
    return id;
}

static void followups_refused_by_content_or_on_a_closed_ticket(void **ts)
{
    struct reply *r;
    char body[256];

    (void)ts;
    fresh();
    long long tid = create("Ticket", "{\"name\": \"t\", \"content\": \"c\"}");

    control("/_fake/faults", "{\"refuse_content\": \"forbidden words\"}");
    snprintf(body, sizeof body,
             "{\"input\": {\"itemtype\": \"Ticket\", \"items_id\": %lld, \"content\": "
             "\"some forbidden words here\"}}",
             tid);
    r = api("POST", "ITILFollowup/", body);
    expect_error(r, 400, "ERROR_GLPI_ADD");
    assert_string_equal(json_string_value(json_array_get(r->json, 1)),
                        "A rule refused the followup");
    reply_free(r);
    /* Other content goes through. */
    snprintf(body, sizeof body,
             "{\"itemtype\": \"Ticket\", \"items_id\": %lld, \"content\": "
             "\"fine\"}",
             tid);
    create("ITILFollowup", body);
    control("/_fake/faults", "{\"refuse_content\": \"\"}");
    snprintf(body, sizeof body,
             "{\"itemtype\": \"Ticket\", \"items_id\": %lld, \"content\": \"forbidden words\"}",
             tid);
    create("ITILFollowup", body);

    /* A ticket closed in GLPI takes no followup. */
    snprintf(body, sizeof body,
             "{\"itemtype\": \"Ticket\", \"id\": %lld, \"input\": {\"status\": 6}}", tid);
    assert_int_equal(control_id("/_fake/update", body), tid);
    snprintf(body, sizeof body,
             "{\"input\": {\"itemtype\": \"Ticket\", \"items_id\": %lld, \"content\": "
             "\"late\"}}",
             tid);
    r = api("POST", "ITILFollowup/", body);
    expect_error(r, 400, "ERROR_GLPI_ADD");
    reply_free(r);
    json_t *st = state();
    assert_int_equal(json_array_size(json_object_get(st, "followups")), 2);
    json_decref(st);
}

static void control_creates_people_glpi_already_has(void **ts)
{
    struct reply *r;

    (void)ts;
    fresh();
    long long uid =
        control_id("/_fake/create", "{\"itemtype\": \"User\", \"input\": {\"name\": \"staff1\","
                                    " \"_useremails\": {\"-1\": \"joann@x.org\"}}}");
    long long cid = control_id("/_fake/create", "{\"itemtype\": \"Contact\", \"input\": "
                                                "{\"name\": \"Doe\", \"phone\": \"+33100\"}}");
    assert_true(uid > 2);
    assert_true(cid > 0);
    /* Found through the API like any other. */
    r = api("GET",
            "search/User?criteria[0][field]=5&criteria[0][searchtype]=contains"
            "&criteria[0][value]=^joann@x.org$&forcedisplay[0]=2&range=0-9",
            NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_integer_value(json_object_get(r->json, "totalcount")), 1);
    reply_free(r);
    /* Bad control calls are 400, and nothing is stored. */
    r = call_on(glpi.port, "POST", "/_fake/create", NULL,
                "{\"itemtype\": \"Nope\", \"input\": {}}");
    assert_int_equal(r->status, 400);
    reply_free(r);
    r = call_on(glpi.port, "POST", "/_fake/update", NULL,
                "{\"itemtype\": \"User\", \"id\": 999, \"input\": {}}");
    assert_int_equal(r->status, 400);
    reply_free(r);
}

static void lost_replies_still_commit_the_create(void **ts)
{
    struct reply *r;

    (void)ts;
    fresh();
    control("/_fake/faults", "{\"lost_reply\": 1, \"lost_reply_mode\": \"close\"}");
    r = api("POST", "Contact/", "{\"input\":{\"name\":\"closed\"}}");
    assert_int_equal(r->status, 0);
    reply_free(r);
    control("/_fake/faults", "{\"lost_reply\": 1, \"lost_reply_mode\": \"empty200\"}");
    r = api("POST", "Contact/", "{\"input\":{\"name\":\"empty\"}}");
    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, 0);
    reply_free(r);
    /* Spent: the next create is answered. */
    assert_int_equal(create("Contact", "{\"name\":\"third\"}"), 3);

    json_t *s = state();
    json_t *c = json_object_get(s, "contacts");
    assert_int_equal(json_array_size(c), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "name")), "closed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 1), "name")), "empty");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "counters"), "creates")),
                     3);
    json_decref(s);

    /* Aimed at one itemtype: other creates are answered meanwhile. */
    control("/_fake/faults", "{\"lost_reply\": 1, \"lost_reply_mode\": \"close\", "
                             "\"lost_reply_itemtype\": \"Ticket\"}");
    assert_int_equal(create("Contact", "{\"name\":\"fourth\"}"), 4);
    r = api("POST", "Ticket/", "{\"input\":{\"name\":\"t\",\"content\":\"c\"}}");
    assert_int_equal(r->status, 0);
    reply_free(r);
    s = state();
    assert_int_equal(json_array_size(json_object_get(s, "tickets")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s, "counters"), "lost_replies")), 3);
    json_decref(s);
}

static void delay_holds_every_api_answer_back(void **ts)
{
    struct reply *r;
    int64_t t0;

    (void)ts;
    fresh();
    control("/_fake/faults", "{\"delay_ms\": 300}");
    t0 = th_now_ms();
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    assert_true(th_now_ms() - t0 >= 300);
    reply_free(r);
    control("/_fake/faults", "{\"delay_ms\": 0}");
    t0 = th_now_ms();
    r = api("GET", "User/2", NULL);
    assert_int_equal(r->status, 200);
    assert_true(th_now_ms() - t0 < 300);
    reply_free(r);
}

static int setup(void **ts)
{
    const char *args[] = {"--app-token", APP_TOKEN, "--user-token", USER_TOKEN, NULL};

    (void)ts;
    th_need_env("SY_FAKE_GLPI_BIN");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return fake_start(&glpi, args);
}

static int teardown(void **ts)
{
    (void)ts;
    int rc = fake_stop(&glpi);

    curl_global_cleanup();
    if (rc != 0)
        fprintf(stderr, "fake-glpi exited with %d on SIGTERM\n", rc);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sessions_open_check_and_close_like_glpi),
        cmocka_unit_test(without_user_tokens_any_token_logs_in_and_sigterm_exits_zero),
        cmocka_unit_test(created_text_comes_back_encoded_unless_asked_not_to),
        cmocka_unit_test(user_emails_are_added_changed_and_removed_by_key),
        cmocka_unit_test(bulk_create_answers_201_207_or_400_with_each_item),
        cmocka_unit_test(search_follows_glpi_columns_anchors_and_empty_results),
        cmocka_unit_test(expired_sessions_answer_401_and_a_new_login_works),
        cmocka_unit_test(induced_failures_and_throttling_count_down),
        cmocka_unit_test(followups_refused_by_content_or_on_a_closed_ticket),
        cmocka_unit_test(control_creates_people_glpi_already_has),
        cmocka_unit_test(lost_replies_still_commit_the_create),
        cmocka_unit_test(delay_holds_every_api_answer_back),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
