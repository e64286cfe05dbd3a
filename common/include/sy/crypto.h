/* crypto.h - hashes, message authentication and encodings for webhook signatures, API keys
 * and tokens: SHA-256, HMAC-SHA256, a comparison whose time does not depend on the data, and
 * hex / base64 / base64url. */
#ifndef SY_CRYPTO_H
#define SY_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_SHA256_LEN 32

/* The digests cannot fail short of a broken crypto library; if GnuTLS ever refuses, the process
 * aborts rather than hand back bytes that are not the digest (a zero MAC would verify a forged
 * signature of zeros). Data and keys may be NULL when their length is 0. */
void sy_sha256(const void *data, size_t len, uint8_t out[SY_SHA256_LEN]);
void sy_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[SY_SHA256_LEN]);
/* The same HMAC over two pieces, as if concatenated (Chatwoot signs "<timestamp>.<body>"). */
void sy_hmac_sha256_2(const void *key, size_t key_len, const void *a, size_t a_len, const void *b,
                      size_t b_len, uint8_t out[SY_SHA256_LEN]);
/* SHA-256 of data that arrives in pieces: init, any number of updates (data may be NULL when
 * len is 0), then final, which writes the digest and releases what init took. Call final exactly
 * once per init, on error paths too. The fields are the runtime's; they fail as sy_sha256 does. */
struct sy_sha256_ctx {
    void *impl;
};
void sy_sha256_init(struct sy_sha256_ctx *ctx);
void sy_sha256_update(struct sy_sha256_ctx *ctx, const void *data, size_t len);
void sy_sha256_final(struct sy_sha256_ctx *ctx, uint8_t out[SY_SHA256_LEN]);
/* True when a and b are equal; takes the same time whatever their content (it depends on len
 * only, so compare digests of a fixed length, never secrets of a guessable one). */
bool sy_ct_equal(const void *a, const void *b, size_t len);
/* Fills buf with len bytes from the kernel's random source: 0, -SY_EINVAL (buf NULL with len
 * above 0) or -SY_EIO. */
int sy_random_bytes(void *buf, size_t len);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void sy_hex_encode(const void *data, size_t len, char *out);
/* Decodes exactly 2 * out_len hex digits (either case) of hex: 0, or -SY_EDECODE (another
 * length, or a character that is not a hex digit; out is then unspecified), -SY_EINVAL for a
 * NULL pointer with a length above 0. */
int sy_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len);

/* Base64 (RFC 4648 section 4, padded) or base64url (section 5, padding optional).
 * encode: out holds sy_base64_encoded_len(len) + 1 bytes; returns the length written (the
 * text is NUL-terminated). Base64 is written padded; base64url without padding, as JWTs and
 * URLs carry it.
 * decode: out holds sy_base64_decoded_max(in_len) bytes; whitespace, characters outside the
 * alphabet, bad padding and non-zero trailing bits are refused with -SY_EDECODE; else 0 and
 * *out_len. So every byte string has exactly one accepted spelling per alphabet (two for
 * base64url: with and without padding). -SY_EINVAL for a NULL pointer with a length above 0. */
/* 4 * ceil(len / 3): the padded length, an upper bound for base64url; saturates at
 * SIZE_MAX - 1 for lengths no buffer can have. */
size_t sy_base64_encoded_len(size_t len);
/* The most bytes in_len characters can decode to (exact for unpadded input). */
size_t sy_base64_decoded_max(size_t in_len);
size_t sy_base64_encode(const void *data, size_t len, bool url, char *out);
int sy_base64_decode(const char *in, size_t in_len, bool url, uint8_t *out, size_t *out_len);

#endif
