/* test_mysql.c - what the MySQL module decides before any network: identifier quoting, and
 * URLs refused at connect with a line that names the fault and never shows the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sy/err.h"
#include "sy/mysql.h"

static void quote_ident_wraps_in_backticks_and_doubles_them(void **state)
{
    char out[140];
    assert_int_equal(sy_mysql_quote_ident("grievances", out, sizeof out), 0);
    assert_string_equal(out, "`grievances`");
    assert_int_equal(sy_mysql_quote_ident("a`b", out, sizeof out), 0);
    assert_string_equal(out, "`a``b`");
    assert_int_equal(sy_mysql_quote_ident("`", out, sizeof out), 0);
    assert_string_equal(out, "````");
    assert_int_equal(sy_mysql_quote_ident("with space; DROP", out, sizeof out), 0);
    assert_string_equal(out, "`with space; DROP`");
    assert_int_equal(sy_mysql_quote_ident("പരാതി", out, sizeof out), 0);
    assert_string_equal(out, "`പരാതി`");
}

static void quote_ident_refuses_empty_long_names_and_small_buffers(void **state)
{
    char out[200], name[80];
    assert_int_equal(sy_mysql_quote_ident("", out, sizeof out), -SY_EINVAL);
    assert_int_equal(sy_mysql_quote_ident(NULL, out, sizeof out), -SY_EINVAL);
    memset(name, 'x', 64);
    name[64] = '\0';
    assert_int_equal(sy_mysql_quote_ident(name, out, sizeof out), 0); /* 64 bytes: the limit */
    assert_int_equal(strlen(out), 66);
    name[64] = 'x';
    name[65] = '\0';
    assert_int_equal(sy_mysql_quote_ident(name, out, sizeof out), -SY_EINVAL);
    /* "`ab`" needs 5 bytes with its NUL. */
    assert_int_equal(sy_mysql_quote_ident("ab", out, 4), -SY_ETOOBIG);
    assert_int_equal(sy_mysql_quote_ident("ab", out, 5), 0);
    assert_int_equal(sy_mysql_quote_ident("a`", out, 5), -SY_ETOOBIG);
    assert_int_equal(sy_mysql_quote_ident("a`", out, 6), 0);
    assert_string_equal(out, "`a```");
}

/* Connecting to url fails before any network, with an error containing want and never the
 * password "pw-s3cret-x". */
static void assert_refused(const char *url, const char *want)
{
    char err[256] = "";
    assert_null(sy_mysql_connect(url, err, sizeof err));
    if (!strstr(err, want))
        fprintf(stderr, "%s -> %s\n", url, err);
    assert_non_null(strstr(err, want));
    assert_null(strstr(err, "pw-s3cret-x"));
}

static void bad_urls_are_refused_naming_the_fault(void **state)
{
    assert_refused("", "empty");
    assert_refused("postgresql://u:pw-s3cret-x@db/grm", "mysql://");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?frobnicate=1", "unknown option 'frobnicate'");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?read_timeout", "read_timeout");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?read_timeout=0", "read_timeout");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?write_timeout=5s", "write_timeout");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?connect_timeout=99999999", "connect_timeout");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?ssl_mode=maybe", "ssl_mode");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?ssl_mode=disabled&ssl_ca=/ca.pem", "ssl_ca");
    assert_refused("mysql://u:pw-s3cret-x@db/grm?charset=utf8';--", "charset");
    assert_refused("mysql://u:pw-s3cret-x@db:0/grm", "port");
    assert_refused("mysql://u:pw-s3cret-x@db:65536/grm", "port");
    assert_refused("mysql://u:pw-s3cret-x@db:33o6/grm", "port");
    assert_refused("mysql://u:pw-s3cret-x@/grm", "host");
    assert_refused("mysql://u:pw-s3cret-x@[::1/grm", "[");
    assert_refused("mysql://u:pw-s3cret-x%zz@db/grm", "percent");
    assert_refused("mysql://u:pw-s3cret-x@db/gr%00m", "percent");
    assert_refused("mysql://u:pw-s3cret-x@db/grm#frag", "fragment");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quote_ident_wraps_in_backticks_and_doubles_them),
        cmocka_unit_test(quote_ident_refuses_empty_long_names_and_small_buffers),
        cmocka_unit_test(bad_urls_are_refused_naming_the_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
