/* crypto.c - SHA-256 and HMAC-SHA256 through GnuTLS; the encodings and the constant-time
 * comparison are written here, so their strictness is ours rather than a library's. */
#include "sy/crypto.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/types.h>

#include "sy/err.h"
#include "sy/log.h"
#include "text_int.h"

/* GnuTLS is handed this instead of NULL for empty input, so no library path ever sees NULL. */
static const uint8_t empty[1];

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const void *nonnull(const void *p)
{
    return p ? p : empty;
}

/* See the header: a digest that was not computed must never be used as one. */
static void crypto_failed(const char *what, int gerr)
{
    sy_log_write(SY_LOG_ERROR, "crypto.failed", -1, gnutls_strerror(gerr), "%s failed", what);
    abort();
}

void sy_sha256(const void *data, size_t len, uint8_t out[SY_SHA256_LEN])
{
    int gerr = gnutls_hash_fast(GNUTLS_DIG_SHA256, nonnull(data), len, out);
    if (gerr < 0)
        crypto_failed("SHA-256", gerr);
}

void sy_sha256_init(struct sy_sha256_ctx *ctx)
{
    gnutls_hash_hd_t h;
    int gerr = gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
    if (gerr < 0)
        crypto_failed("SHA-256 init", gerr);
    ctx->impl = h;
}

void sy_sha256_update(struct sy_sha256_ctx *ctx, const void *data, size_t len)
{
    int gerr = gnutls_hash((gnutls_hash_hd_t)ctx->impl, nonnull(data), len);
    if (gerr < 0)
        crypto_failed("SHA-256 update", gerr);
}

void sy_sha256_final(struct sy_sha256_ctx *ctx, uint8_t out[SY_SHA256_LEN])
{
    /* deinit writes the digest and frees the handle in one call. */
    gnutls_hash_deinit((gnutls_hash_hd_t)ctx->impl, out);
    ctx->impl = NULL;
}

void sy_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[SY_SHA256_LEN])
{
    int gerr = gnutls_hmac_fast(GNUTLS_MAC_SHA256, nonnull(key), key_len, nonnull(data), len, out);
    if (gerr < 0)
        crypto_failed("HMAC-SHA256", gerr);
}

void sy_hmac_sha256_2(const void *key, size_t key_len, const void *a, size_t a_len, const void *b,
                      size_t b_len, uint8_t out[SY_SHA256_LEN])
{
    gnutls_hmac_hd_t h;
    int gerr = gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, nonnull(key), key_len);
    if (gerr < 0)
        crypto_failed("HMAC-SHA256 init", gerr);
    gerr = gnutls_hmac(h, nonnull(a), a_len);
    if (gerr >= 0)
        gerr = gnutls_hmac(h, nonnull(b), b_len);
    /* deinit writes the MAC and frees h in one call: on failure it is still freed, then we stop. */
    gnutls_hmac_deinit(h, out);
    if (gerr < 0)
        crypto_failed("HMAC-SHA256 update", gerr);
}

bool sy_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *pa = a;
    const volatile uint8_t *pb = b;
    /* Every byte is visited and folded in; volatile keeps the compiler from turning the loop
     * into memcmp or stopping at the first difference. */
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(pa[i] ^ pb[i]);
    return diff == 0;
}

int sy_random_bytes(void *buf, size_t len)
{
    if (!buf && len > 0)
        return -SY_EINVAL;
    uint8_t *p = buf;
    while (len > 0) {
        /* getrandom returns at most 32 MiB - 1 per call and may be interrupted: loop. */
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -SY_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void sy_hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *in = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int sy_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len)
{
    if ((!hex && hex_len > 0) || (!out && out_len > 0))
        return -SY_EINVAL;
    if (out_len > SIZE_MAX / 2 || hex_len != 2 * out_len)
        return -SY_EDECODE;
    for (size_t i = 0; i < out_len; i++) {
        int hi = sy__hexval(hex[2 * i]);
        int lo = sy__hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -SY_EDECODE;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

size_t sy_base64_encoded_len(size_t len)
{
    size_t groups = len / 3 + (len % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        return SIZE_MAX - 1;
    return groups * 4;
}

size_t sy_base64_decoded_max(size_t in_len)
{
    /* A last group of 2 characters carries 1 byte, of 3 carries 2; 1 alone carries none. */
    return in_len / 4 * 3 + (in_len % 4) * 3 / 4;
}

size_t sy_base64_encode(const void *data, size_t len, bool url, char *out)
{
    const char *alpha = url ? b64_url : b64_std;
    const uint8_t *in = data;
    size_t o = 0, i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 0x3f];
        out[o++] = alpha[(v >> 6) & 0x3f];
        out[o++] = alpha[v & 0x3f];
    }
    size_t rest = len - i;
    if (rest > 0) {
        uint32_t v = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 0x3f];
        if (rest == 2)
            out[o++] = alpha[(v >> 6) & 0x3f];
        if (!url) {
            if (rest == 1)
                out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return o;
}

/* The 6-bit value of one character of the chosen alphabet, or -1 ('=' included: padding is
 * handled by the caller, and anywhere else it is an error). */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int sy_base64_decode(const char *in, size_t in_len, bool url, uint8_t *out, size_t *out_len)
{
    if (!out_len || (!in && in_len > 0) || (!out && sy_base64_decoded_max(in_len) > 0))
        return -SY_EINVAL;
    size_t n = in_len;
    size_t pad = 0;
    if (n > 0 && in[n - 1] == '=')
        pad = n > 1 && in[n - 2] == '=' ? 2 : 1;
    /* Padded text comes in whole groups of four (so one '=' leaves a last group of 3, two leave
     * 2); base64 is always padded. A third '=' or one in the middle is caught below as a
     * character outside the alphabet. */
    if ((pad > 0 || !url) && n % 4 != 0)
        return -SY_EDECODE;
    n -= pad;
    size_t rest = n % 4;
    if (rest == 1)
        return -SY_EDECODE;

    size_t o = 0, i = 0;
    for (; n - i >= 4; i += 4) {
        int a = b64_value((unsigned char)in[i], url);
        int b = b64_value((unsigned char)in[i + 1], url);
        int c = b64_value((unsigned char)in[i + 2], url);
        int d = b64_value((unsigned char)in[i + 3], url);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            return -SY_EDECODE;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rest > 0) {
        int a = b64_value((unsigned char)in[i], url);
        int b = b64_value((unsigned char)in[i + 1], url);
        int c = rest == 3 ? b64_value((unsigned char)in[i + 2], url) : 0;
        if (a < 0 || b < 0 || c < 0)
            return -SY_EDECODE;
        /* Bits past the last whole byte must be zero, else two texts would decode alike. */
        if ((rest == 2 && (b & 0x0f) != 0) || (rest == 3 && (c & 0x03) != 0))
            return -SY_EDECODE;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        out[o++] = (uint8_t)(v >> 16);
        if (rest == 3)
            out[o++] = (uint8_t)(v >> 8);
    }
    *out_len = o;
    return 0;
}
