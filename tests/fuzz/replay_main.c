/* replay_main.c - runs a fuzz target over every file of a corpus directory: how ctest and
 * builds without libFuzzer (gcc) exercise the targets. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Bigger than any seed should be; a larger file is a mistake in the corpus. */
#define REPLAY_MAX_INPUT (64u * 1024u * 1024u)

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a whole file into a buffer of exactly its size, so the sanitizers catch any read past
 * the end of an input. */
static int read_input(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf = NULL;
    int rc = -1;

    if (!f)
        return -1;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT)
        goto out;
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf)
        goto out;
    if (st.st_size && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto out;
    *out = buf;
    *len = (size_t)st.st_size;
    buf = NULL;
    rc = 0;

out:
    free(buf);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;

        if (snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name) >= (int)sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **p = realloc(names, ncap * sizeof *names);
            if (!p)
                goto out;
            names = p;
            cap = ncap;
        }
        names[n] = strdup(path);
        if (!names[n])
            goto out;
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "%s: no inputs\n", argv[1]);
        goto out;
    }
    qsort(names, n, sizeof *names, cmp_names);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;

        if (read_input(names[i], &buf, &len) != 0) {
            fprintf(stderr, "%s: cannot read\n", names[i]);
            goto out;
        }
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
    }
    printf("replayed %zu inputs\n", n);
    rc = 0;

out:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
