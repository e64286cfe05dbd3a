/* test_glpi_hooks.c - sy-glpi's pieces that need no service: the checks of a hook's settings
 * before syctl stores them (http:// only to this machine), and the mutexes' lease, which must
 * outlast the longest GLPI call whatever SY_GLPI_TIMEOUT says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "glpi/hooks.h"
#include "glpi/mirror.h"
#include "sy/err.h"

static int check(const char *url, bool allow_http, char *err, size_t errlen)
{
    struct glpi_hook h = {
        .id = "h1", .api_url = (char *)url, .user_token = "tok", .ticket_type = 1};

    h.allow_http = allow_http;
    err[0] = '\0';
    return glpi_hook_check(&h, err, errlen);
}

static void test_https_is_taken_and_http_only_when_allowed(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(check("https://glpi.example.org/apirest.php", false, err, sizeof err), 0);
    assert_int_equal(check("http://127.0.0.1:8080/apirest.php", false, err, sizeof err),
                     -SY_EINVAL);
    assert_non_null(strstr(err, "api_url"));
    assert_int_equal(check("http://127.0.0.1:8080/apirest.php", true, err, sizeof err), 0);
}

static void test_allow_http_takes_loopback_hosts_alone(void **state)
{
    static const char *const near[] = {
        "http://127.0.0.1/apirest.php",      "http://127.0.0.1:39001/apirest.php",
        "http://127.45.6.7:80/apirest.php",  "http://localhost:8080/apirest.php",
        "http://LOCALHOST/glpi/apirest.php", "http://[::1]:8080/apirest.php",
        "http://[::1]/apirest.php",
    };
    static const char *const far[] = {
        "http://glpi.example.org/apirest.php",
        "http://10.0.0.5:8080/apirest.php",
        "http://128.0.0.1/apirest.php",
        "http://127.0.0.1.example.org/apirest.php",
        "http://localhost.example.org/apirest.php",
        "http://[::2]/apirest.php",
        "http://[::ffff:10.0.0.1]/apirest.php",
        "http://user@127.0.0.1/apirest.php",
        "http://127.0.0.1@glpi.example.org/apirest.php",
        "http:///apirest.php",
        "http://[::1/apirest.php",
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof near / sizeof *near; i++)
        if (check(near[i], true, err, sizeof err) != 0)
            fail_msg("%s refused: %s", near[i], err);
    for (size_t i = 0; i < sizeof far / sizeof *far; i++) {
        if (check(far[i], true, err, sizeof err) != -SY_EINVAL)
            fail_msg("%s taken with --allow-http", far[i]);
        if (!strstr(err, "api_url"))
            fail_msg("%s: the reason does not name api_url: %s", far[i], err);
    }
}

/* A call may take three exchanges of SY_GLPI_TIMEOUT each (the call, an initSession after a
 * 401, the call again): the lease it runs under is longer, for every timeout the setting takes
 * (1 s to 300 s), so no other replica can take the mutex while a POST is in flight. */
static void test_lock_lease_outlasts_the_longest_call_for_every_timeout(void **state)
{
    (void)state;
    for (long long t = 1000; t <= 300000; t += 1000) {
        long long ttl = gl_lock_ttl_ms(t);

        if (ttl < 3 * t + 5000)
            fail_msg("timeout %lld ms: lease %lld ms", t, ttl);
    }
    /* The old fixed lease was 60 s: the largest timeout needs far more. */
    assert_true(gl_lock_ttl_ms(300000) > 900000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_is_taken_and_http_only_when_allowed),
        cmocka_unit_test(test_allow_http_takes_loopback_hosts_alone),
        cmocka_unit_test(test_lock_lease_outlasts_the_longest_call_for_every_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
