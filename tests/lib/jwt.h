/* jwt.h - JSON Web Tokens for tests: what a caller of the gateway presents as a bearer. */
#ifndef SY_TEST_JWT_H
#define SY_TEST_JWT_H

#include <stddef.h>

/* An HS256 token over claims (a JSON text), signed with key, into out. 0, or -1 when out
 * cannot hold it. */
int th_make_jwt(char *out, size_t outsz, const char *claims, const void *key, size_t key_len);

#endif
