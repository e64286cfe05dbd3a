/* fuzz_base64.c - libFuzzer target: untrusted text through the base64, base64url and hex
 * decoders. Whatever a decoder accepts must encode back to the same text (each byte string
 * has one accepted spelling), and any bytes must survive encode then decode. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_base64: %s\n", what);
    abort();
}

/* Buffers of exactly the promised sizes, so the sanitizers catch a write past them. */
static void check_decoder(const uint8_t *data, size_t size, bool url)
{
    size_t max = sy_base64_decoded_max(size);
    uint8_t *out = malloc(max ? max : 1);
    if (!out)
        return;
    size_t n = 0;
    if (sy_base64_decode((const char *)data, size, url, out, &n) == 0) {
        if (n > max)
            fail("decoded more than decoded_max");
        char *enc = malloc(sy_base64_encoded_len(n) + 1);
        if (enc) {
            size_t elen = sy_base64_encode(out, n, url, enc);
            /* base64url is written unpadded: the input may carry padding on top. */
            size_t plain = size;
            while (url && plain > 0 && data[plain - 1] == '=')
                plain--;
            if (elen != plain || memcmp(enc, data, elen) != 0)
                fail("accepted text is not the canonical spelling of its bytes");
            free(enc);
        }
    }
    free(out);
}

static void check_encoder(const uint8_t *data, size_t size, bool url)
{
    char *enc = malloc(sy_base64_encoded_len(size) + 1);
    if (!enc)
        return;
    size_t elen = sy_base64_encode(data, size, url, enc);
    if (elen > sy_base64_encoded_len(size) || enc[elen] != '\0')
        fail("encoded past encoded_len");
    size_t max = sy_base64_decoded_max(elen);
    uint8_t *back = malloc(max ? max : 1);
    if (back) {
        size_t n = 0;
        if (sy_base64_decode(enc, elen, url, back, &n) != 0 || n != size ||
            (size && memcmp(back, data, size) != 0))
            fail("encode then decode changed the bytes");
        free(back);
    }
    free(enc);
}

static void check_hex(const uint8_t *data, size_t size)
{
    size_t n = size / 2;
    uint8_t *out = malloc(n ? n : 1);
    if (!out)
        return;
    if (sy_hex_decode((const char *)data, 2 * n, out, n) == 0) {
        char *enc = malloc(2 * n + 1);
        if (enc) {
            sy_hex_encode(out, n, enc);
            for (size_t i = 0; i < 2 * n; i++) {
                char c = (char)data[i];
                if (c >= 'A' && c <= 'F')
                    c = (char)(c - 'A' + 'a');
                if (enc[i] != c)
                    fail("hex decode then encode changed the text");
            }
            free(enc);
        }
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decoder(data, size, false);
    check_decoder(data, size, true);
    check_encoder(data, size, false);
    check_encoder(data, size, true);
    check_hex(data, size);
    return 0;
}
