/* jwt.c - JSON Web Tokens for tests (jwt.h). */
#include "jwt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sy/crypto.h"

int th_make_jwt(char *out, size_t outsz, const char *claims, const void *key, size_t key_len)
{
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    uint8_t mac[SY_SHA256_LEN];
    char sig[64]; /* 43 characters of unpadded base64url */
    size_t n;

    if (outsz <=
        8 + sy_base64_encoded_len(strlen(hdr)) + sy_base64_encoded_len(strlen(claims)) + 44)
        return -1;
    n = sy_base64_encode(hdr, strlen(hdr), true, out);
    out[n++] = '.';
    n += sy_base64_encode(claims, strlen(claims), true, out + n);
    sy_hmac_sha256(key, key_len, out, n, mac);
    sy_base64_encode(mac, sizeof mac, true, sig);
    snprintf(out + n, outsz - n, ".%s", sig);
    return 0;
}
