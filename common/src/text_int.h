/* text_int.h - small text helpers shared by runtime modules (not part of the public API). */
#ifndef SY_TEXT_INT_H
#define SY_TEXT_INT_H

/* The value of one hexadecimal digit, or -1. */
static inline int sy__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
