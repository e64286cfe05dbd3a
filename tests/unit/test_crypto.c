/* test_crypto.c - SHA-256 (whole and in pieces) and HMAC-SHA256 against the published vectors, the
 * constant-time comparison, randomness, and hex / base64 / base64url: known texts both ways, every
 * refused spelling, buffer bounds, and round trips of random data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/crypto.h"
#include "sy/err.h"

/* Lower-case hex of a digest, for comparing with the vectors as printed. */
static void digest_hex(const uint8_t d[SY_SHA256_LEN], char out[2 * SY_SHA256_LEN + 1])
{
    sy_hex_encode(d, SY_SHA256_LEN, out);
}

static void assert_sha256(const void *data, size_t len, const char *want)
{
    uint8_t d[SY_SHA256_LEN];
    char hex[2 * SY_SHA256_LEN + 1];
    sy_sha256(data, len, d);
    digest_hex(d, hex);
    assert_string_equal(hex, want);
}

static void sha256_matches_fips_180_2_vectors(void **state)
{
    (void)state;
    assert_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_sha256(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_sha256(m448, strlen(m448),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t n = 1000000;
    char *million = malloc(n);
    assert_non_null(million);
    memset(million, 'a', n);
    assert_sha256(million, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

struct hmac_case {
    uint8_t key_byte; /* the key is key_len copies of it, unless key_text is set */
    size_t key_len;
    const char *key_text;
    uint8_t data_byte; /* likewise for the data */
    size_t data_len;
    const char *data_text;
    const char *want; /* hex; test case 5 is truncated to 128 bits */
};

static void hmac_sha256_matches_rfc_4231_cases_1_to_7(void **state)
{
    (void)state;
    static const struct hmac_case cases[] = {
        {0x0b, 20, NULL, 0, 0, "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {0, 0, "Jefe", 0, 0, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {0xaa, 20, NULL, 0xdd, 50, NULL,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {0, 25, NULL, 0xcd, 50, NULL, /* key 0x01..0x19, filled below */
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {0x0c, 20, NULL, 0, 0, "Test With Truncation", "a3b6167473100ee06e0c796c2955552b"},
        {0xaa, 131, NULL, 0, 0, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {0xaa, 131, NULL, 0, 0,
         "This is a test using a larger than block-size key and a larger than block-size data. "
         "The key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct hmac_case *hc = &cases[c];
        uint8_t key[131], data[50], d[SY_SHA256_LEN];
        char hex[2 * SY_SHA256_LEN + 1];
        const void *k = key, *m = data;
        size_t klen = hc->key_len, mlen = hc->data_len;
        if (hc->key_text) {
            k = hc->key_text;
            klen = strlen(hc->key_text);
        } else if (c == 3) {
            for (size_t i = 0; i < klen; i++)
                key[i] = (uint8_t)(i + 1);
        } else {
            memset(key, hc->key_byte, klen);
        }
        if (hc->data_text) {
            m = hc->data_text;
            mlen = strlen(hc->data_text);
        } else {
            memset(data, hc->data_byte, mlen);
        }
        sy_hmac_sha256(k, klen, m, mlen, d);
        digest_hex(d, hex);
        /* Case 5 publishes only the first 128 bits. */
        assert_memory_equal(hex, hc->want, strlen(hc->want));

        /* The two-piece form over every split of the same data gives the same MAC. */
        for (size_t cut = 0; cut <= mlen; cut++) {
            uint8_t d2[SY_SHA256_LEN];
            sy_hmac_sha256_2(k, klen, m, cut, (const uint8_t *)m + cut, mlen - cut, d2);
            assert_memory_equal(d, d2, SY_SHA256_LEN);
        }
    }
}

static void hmac_of_two_pieces_equals_hmac_of_their_concatenation(void **state)
{
    (void)state;
    const char *key = "webhook-secret";
    const char *ts = "1700000000";
    const char *body = "{\"event\":\"message_created\",\"id\":42}";
    char joined[128];
    snprintf(joined, sizeof joined, "%s.%s", ts, body);
    char first[16];
    snprintf(first, sizeof first, "%s.", ts);
    uint8_t whole[SY_SHA256_LEN], pieces[SY_SHA256_LEN];
    sy_hmac_sha256(key, strlen(key), joined, strlen(joined), whole);
    sy_hmac_sha256_2(key, strlen(key), first, strlen(first), body, strlen(body), pieces);
    assert_memory_equal(whole, pieces, SY_SHA256_LEN);
    /* Empty pieces (NULL with length 0) are nothing, not an error. */
    sy_hmac_sha256_2(key, strlen(key), NULL, 0, joined, strlen(joined), pieces);
    assert_memory_equal(whole, pieces, SY_SHA256_LEN);
    sy_hmac_sha256_2(key, strlen(key), joined, strlen(joined), NULL, 0, pieces);
    assert_memory_equal(whole, pieces, SY_SHA256_LEN);
    /* A different key or a moved boundary character changes the MAC. */
    sy_hmac_sha256_2("other", 5, first, strlen(first), body, strlen(body), pieces);
    assert_memory_not_equal(whole, pieces, SY_SHA256_LEN);
    sy_hmac_sha256_2(key, strlen(key), ts, strlen(ts), body, strlen(body), pieces);
    assert_memory_not_equal(whole, pieces, SY_SHA256_LEN);
}

static void ct_equal_compares_every_byte(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 7 + 3);
    memcpy(b, a, sizeof a);
    assert_true(sy_ct_equal(a, b, sizeof a));
    assert_true(sy_ct_equal(a, b, 0));
    assert_true(sy_ct_equal(NULL, NULL, 0));
    for (size_t i = 0; i < sizeof a; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_false(sy_ct_equal(a, b, sizeof a));
            /* Only the first len bytes count. */
            assert_true(sy_ct_equal(a, b, i));
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(sy_ct_equal(a, b, sizeof a));
}

static void random_bytes_fill_and_differ(void **state)
{
    (void)state;
    uint8_t a[32], b[32], zero[32] = {0};
    assert_int_equal(sy_random_bytes(a, sizeof a), 0);
    assert_int_equal(sy_random_bytes(b, sizeof b), 0);
    /* 2^-256 chances of a false failure. */
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(sy_random_bytes(NULL, 0), 0);
    assert_int_equal(sy_random_bytes(NULL, 1), -SY_EINVAL);
}

static void hex_round_trips_and_refuses_bad_text(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof bytes + 1];
    sy_hex_encode(bytes, sizeof bytes, hex);
    assert_string_equal(hex, "00017f80abff");
    uint8_t back[sizeof bytes];
    assert_int_equal(sy_hex_decode(hex, strlen(hex), back, sizeof back), 0);
    assert_memory_equal(back, bytes, sizeof bytes);
    assert_int_equal(sy_hex_decode("00017F80ABFF", 12, back, sizeof back), 0);
    assert_memory_equal(back, bytes, sizeof bytes);
    char empty[1] = "x";
    sy_hex_encode(NULL, 0, empty);
    assert_string_equal(empty, "");
    assert_int_equal(sy_hex_decode("", 0, back, 0), 0);

    /* Odd length, wrong length for the output, non-hex characters, an embedded NUL. */
    assert_int_equal(sy_hex_decode("abc", 3, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("abc", 3, back, 2), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("abcd", 4, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("ab", 2, back, 2), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("0g", 2, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("g0", 2, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode(" 0", 2, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("0x", 2, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("0\0", 2, back, 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode("abcd", SIZE_MAX, back, SIZE_MAX / 2 + 1), -SY_EDECODE);
    assert_int_equal(sy_hex_decode(NULL, 2, back, 1), -SY_EINVAL);
    assert_int_equal(sy_hex_decode("ab", 2, NULL, 1), -SY_EINVAL);
}

/* Decodes text (its strlen) into an exactly sized heap buffer, so ASan sees any write past
 * sy_base64_decoded_max. Returns the decoder's result; the bytes go to out. */
static int decode(const char *text, bool url, uint8_t *out, size_t *out_len)
{
    size_t len = strlen(text);
    size_t max = sy_base64_decoded_max(len);
    uint8_t *buf = malloc(max ? max : 1);
    assert_non_null(buf);
    size_t n = 0;
    int rc = sy_base64_decode(text, len, url, buf, &n);
    if (rc == 0) {
        assert_true(n <= max);
        memcpy(out, buf, n);
        *out_len = n;
    }
    free(buf);
    return rc;
}

static void base64_matches_rfc_4648_section_10_both_ways(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n = 99;
        size_t len = strlen(plain[i]);
        assert_int_equal(sy_base64_encode(plain[i], len, false, enc), strlen(std[i]));
        assert_string_equal(enc, std[i]);
        assert_int_equal(sy_base64_encode(plain[i], len, true, enc), strlen(url[i]));
        assert_string_equal(enc, url[i]);

        assert_int_equal(decode(std[i], false, dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, plain[i], len);
        /* base64url takes the text with and without its padding. */
        n = 99;
        assert_int_equal(decode(std[i], true, dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, plain[i], len);
        n = 99;
        assert_int_equal(decode(url[i], true, dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, plain[i], len);
    }
}

static void base64url_uses_its_own_alphabet(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf, 0xfb, 0xf0};
    char enc[16];
    uint8_t dec[16];
    size_t n = 0;
    assert_int_equal(sy_base64_encode(bytes, sizeof bytes, false, enc), 8);
    assert_string_equal(enc, "+/+/+/A=");
    assert_int_equal(sy_base64_encode(bytes, sizeof bytes, true, enc), 7);
    assert_string_equal(enc, "-_-_-_A");
    assert_int_equal(decode("+/+/+/A=", false, dec, &n), 0);
    assert_int_equal(n, sizeof bytes);
    assert_memory_equal(dec, bytes, sizeof bytes);
    assert_int_equal(decode("-_-_-_A", true, dec, &n), 0);
    assert_memory_equal(dec, bytes, sizeof bytes);
    assert_int_equal(decode("-_-_-_A=", true, dec, &n), 0);
    assert_memory_equal(dec, bytes, sizeof bytes);
    /* Each alphabet refuses the other's two characters. */
    assert_int_equal(decode("-_-_-_A=", false, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("+/+/+/A", true, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("+AAA", true, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("/AAA", true, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("-AAA", false, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("_AAA", false, dec, &n), -SY_EDECODE);
}

static void base64_refuses_every_bad_spelling(void **state)
{
    (void)state;
    /* Refused by both alphabets. */
    static const char *const both[] = {
        "Zm9v!A==", "Zm9v\xc3\xa9", "Zm9v.",    "Zm9v*AAA", /* bad characters */
        "Zg=",      "Zg===",        "Z===",     "====",
        "=",        "==",           "Zm8==",   /* bad padding */
        "Zm9vY===", "Zm9v=",        "Zm9vYg=", /* more bad padding */
        "Zg==Zg==", "Z=9v",         "Zm=v",     "=m9v",
        "Zm9v=AAA", "Zg==AAAA", /* '=' in the middle */
        "Zh==",     "Zm9=",         "Zm9vYh==", "Zm9vYmF=",
        "AB==",     "AAB=", /* non-zero trailing bits */
        "Zm9v\n",   " Zm9v",        "Zm 9v",    "Zm9v\r\n",
        "Zm9v\t",   "Zm\n9v",       "Zg==\n", /* whitespace */
        "Z",        "Zm9vY",                  /* a lone last character */
    };
    uint8_t dec[16];
    size_t n = 12345;
    for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
        if (decode(both[i], false, dec, &n) != -SY_EDECODE ||
            decode(both[i], true, dec, &n) != -SY_EDECODE)
            fail_msg("accepted \"%s\"", both[i]);
    }
    /* Unpadded text is base64url only, and its trailing bits must be zero too. */
    assert_int_equal(decode("Zg", false, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("Zm8", false, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("Zh", true, dec, &n), -SY_EDECODE);
    assert_int_equal(decode("Zm9", true, dec, &n), -SY_EDECODE);
    assert_int_equal(n, 12345); /* untouched on failure */

    /* An embedded NUL is a character outside the alphabet, not the end of the text. */
    assert_int_equal(sy_base64_decode("Zm9v\0AAA", 8, false, dec, &n), -SY_EDECODE);
    assert_int_equal(sy_base64_decode("Zm\0v", 4, true, dec, &n), -SY_EDECODE);
    /* Pointers. */
    assert_int_equal(sy_base64_decode(NULL, 4, false, dec, &n), -SY_EINVAL);
    assert_int_equal(sy_base64_decode("Zm9v", 4, false, NULL, &n), -SY_EINVAL);
    assert_int_equal(sy_base64_decode("Zm9v", 4, false, dec, NULL), -SY_EINVAL);
    assert_int_equal(sy_base64_decode(NULL, 0, false, NULL, &n), 0);
    assert_int_equal(n, 0);
}

static void base64_lengths_bound_what_is_written(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 64; len++) {
        size_t padded = (len + 2) / 3 * 4;
        size_t unpadded = (len * 4 + 2) / 3;
        assert_int_equal(sy_base64_encoded_len(len), padded);
        /* The decoder's bound is exact for unpadded text and holds for padded text. */
        assert_int_equal(sy_base64_decoded_max(unpadded), len);
        assert_true(sy_base64_decoded_max(padded) >= len);
        assert_true(sy_base64_decoded_max(padded) <= len + 2);
    }
    assert_int_equal(sy_base64_decoded_max(0), 0);
    assert_int_equal(sy_base64_decoded_max(1), 0);
    assert_int_equal(sy_base64_decoded_max(5), 3);
    assert_int_equal(sy_base64_decoded_max(SIZE_MAX), SIZE_MAX / 4 * 3 + 2);
    /* No wrap-around for lengths no buffer can have: the +1 for the NUL still fits. */
    assert_int_equal(sy_base64_encoded_len(SIZE_MAX), SIZE_MAX - 1);
    assert_int_equal(sy_base64_encoded_len(SIZE_MAX / 4 * 3), SIZE_MAX / 4 * 4);
}

/* xorshift64: reproducible "random" lengths and bytes. */
static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_data_round_trips_through_every_encoding(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int iter = 0; iter < 400; iter++) {
        size_t len = (size_t)(next(&seed) % 1001);
        uint8_t *data = malloc(len ? len : 1);
        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)next(&seed);

        for (int url = 0; url <= 1; url++) {
            size_t cap = sy_base64_encoded_len(len) + 1;
            char *enc = malloc(cap);
            assert_non_null(enc);
            size_t elen = sy_base64_encode(data, len, url, enc);
            assert_int_equal(strlen(enc), elen);
            assert_true(elen < cap);
            size_t max = sy_base64_decoded_max(elen);
            uint8_t *dec = malloc(max ? max : 1);
            assert_non_null(dec);
            size_t n = 0;
            assert_int_equal(sy_base64_decode(enc, elen, url, dec, &n), 0);
            assert_int_equal(n, len);
            if (len)
                assert_memory_equal(dec, data, len);
            /* Flipping one character to another of the alphabet decodes differently or not
             * at all, never to the same bytes. */
            if (elen > 0) {
                size_t at = (size_t)(next(&seed) % elen);
                if (enc[at] != '=') {
                    enc[at] = enc[at] == 'A' ? 'B' : 'A';
                    if (sy_base64_decode(enc, elen, url, dec, &n) == 0 && len)
                        assert_memory_not_equal(dec, data, len);
                }
            }
            free(dec);
            free(enc);
        }

        char *hex = malloc(2 * len + 1);
        uint8_t *back = malloc(len ? len : 1);
        assert_non_null(hex);
        assert_non_null(back);
        sy_hex_encode(data, len, hex);
        assert_int_equal(strlen(hex), 2 * len);
        assert_int_equal(sy_hex_decode(hex, 2 * len, back, len), 0);
        if (len)
            assert_memory_equal(back, data, len);
        free(back);
        free(hex);
        free(data);
    }
}

static void sha256_in_pieces_equals_sha256_in_one_call(void **state)
{
    (void)state;
    /* The FIPS "abc" vector fed a byte at a time, with empty updates between. */
    struct sy_sha256_ctx ctx;
    uint8_t d[SY_SHA256_LEN];
    char hex[2 * SY_SHA256_LEN + 1];
    sy_sha256_init(&ctx);
    sy_sha256_update(&ctx, NULL, 0);
    const char *abc = "abc";
    for (int i = 0; i < 3; i++) {
        sy_sha256_update(&ctx, abc + i, 1);
        sy_sha256_update(&ctx, "", 0);
    }
    sy_sha256_final(&ctx, d);
    digest_hex(d, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    /* Nothing at all is the digest of the empty string. */
    sy_sha256_init(&ctx);
    sy_sha256_final(&ctx, d);
    digest_hex(d, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* Random data cut at random places, across the 64-byte block size and far beyond it. */
    uint64_t seed = 0x2545f4914f6cdd1du;
    size_t len = 200000;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)next(&seed);
    for (int iter = 0; iter < 50; iter++) {
        size_t n = (size_t)(next(&seed) % (len + 1));
        uint8_t want[SY_SHA256_LEN];
        sy_sha256(data, n, want);
        sy_sha256_init(&ctx);
        size_t off = 0;
        while (off < n) {
            size_t piece = (size_t)(next(&seed) % (iter % 2 ? 130 : 70000));
            if (piece > n - off)
                piece = n - off;
            sy_sha256_update(&ctx, data + off, piece);
            off += piece;
        }
        sy_sha256_final(&ctx, d);
        assert_memory_equal(d, want, SY_SHA256_LEN);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_fips_180_2_vectors),
        cmocka_unit_test(hmac_sha256_matches_rfc_4231_cases_1_to_7),
        cmocka_unit_test(hmac_of_two_pieces_equals_hmac_of_their_concatenation),
        cmocka_unit_test(ct_equal_compares_every_byte),
        cmocka_unit_test(random_bytes_fill_and_differ),
        cmocka_unit_test(hex_round_trips_and_refuses_bad_text),
        cmocka_unit_test(base64_matches_rfc_4648_section_10_both_ways),
        cmocka_unit_test(base64url_uses_its_own_alphabet),
        cmocka_unit_test(base64_refuses_every_bad_spelling),
        cmocka_unit_test(base64_lengths_bound_what_is_written),
        cmocka_unit_test(random_data_round_trips_through_every_encoding),
        cmocka_unit_test(sha256_in_pieces_equals_sha256_in_one_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
