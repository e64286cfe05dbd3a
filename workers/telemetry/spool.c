/* spool.c - the spool of spool.h: numbered segment files (<16 hex digits>.seg), each mapped
 * shared, holding records back to back:
 *
 *   u32 size      whole record, 8-byte aligned; 0 = nothing (yet), 0xffffffff = segment ends
 *   u32 check     FNV-1a of the rest of the record
 *   i64 arrival_us
 *   u16 topic_len, u16 flags (1 = dup), u32 payload_len
 *   topic, payload, padding
 *
 * The size word is stored last, so a reader (or the next process) sees a record whole or not
 * at all. */
#include "telemetry/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"

#define HDR       24u
#define END_MARK  0xffffffffu
#define SEGS_MAX  4096
#define FLAG_DUP  1u
#define TORN_SCAN (2u << 20) /* bytes cleared after a torn record: more than one record holds */
#define SEG_MIN   (1u << 20)

struct seg {
    uint64_t no;
    size_t size;
    char *base;
};

struct tm_spool {
    char dir[PATH_MAX];
    int lockfd;
    char id[TM_SPOOL_ID_LEN + 1];
    size_t seg_bytes, max_segs;

    pthread_mutex_t mu;
    pthread_cond_t data, space;
    struct seg segs[SEGS_MAX]; /* oldest first; under mu */
    size_t nsegs;

    /* the appender's own */
    char *wbase;
    size_t wsize;
    uint64_t wno, woff;
    /* the reader's own */
    char *rbase;
    size_t rsize;
    uint64_t rno;

    atomic_bool reader_waiting;
    atomic_uint_least64_t appended, bytes;
};

static uint32_t fnv1a(const void *p, size_t n, uint32_t h)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static uint32_t load_size(const char *p)
{
    return atomic_load((const _Atomic uint32_t *)(const void *)p);
}

static void store_size(char *p, uint32_t v)
{
    atomic_store((_Atomic uint32_t *)(void *)p, v);
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Whether the record at off of a segment of size is whole; its size in *size. */
static bool record_ok(const char *base, size_t size, uint64_t off, uint32_t *rsize)
{
    uint32_t n = load_size(base + off), check;
    uint16_t tl;
    uint32_t pl;

    *rsize = n;
    if (n == 0 || n == END_MARK || n < HDR || n % 8 || off + n > size)
        return false;
    memcpy(&check, base + off + 4, 4);
    memcpy(&tl, base + off + 16, 2);
    memcpy(&pl, base + off + 20, 4);
    if ((size_t)HDR + tl + pl > n)
        return false;
    return fnv1a(base + off + 8, HDR - 8 + (size_t)tl + pl, 2166136261u) == check;
}

static void seg_path(const struct tm_spool *s, uint64_t no, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%016llx.seg", s->dir, (unsigned long long)no);
}

static int map_file(const char *path, bool create, size_t size, struct seg *out, char *err,
                    size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
    struct stat st;
    int rc;

    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -SY_EIO;
    }
    if (create && (rc = posix_fallocate(fd, 0, (off_t)size)) != 0) {
        snprintf(err, errlen, "%s: cannot reserve %zu bytes: %s", path, size, strerror(rc));
        close(fd);
        unlink(path);
        return -SY_EIO;
    }
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)SEG_MIN || st.st_size % 8) {
        snprintf(err, errlen, "%s: not a spool segment (size %lld)", path, (long long)st.st_size);
        close(fd);
        return -SY_EIO;
    }
    out->size = (size_t)st.st_size;
    out->base = mmap(NULL, out->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (out->base == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        out->base = NULL;
        return -SY_EIO;
    }
    return 0;
}

/* The end of the whole records from the start of seg; a torn record there is cleared. */
static uint64_t seg_end(const struct seg *g)
{
    uint64_t off = 0;
    uint32_t n = 0;

    while (off + HDR <= g->size && record_ok(g->base, g->size, off, &n))
        off += n;
    if (off + 4 <= g->size && n == END_MARK)
        return off;
    if (off < g->size) {
        size_t span = g->size - off < TORN_SCAN ? g->size - off : TORN_SCAN;
        bool dirty = false;

        for (size_t i = 0; i < span && !dirty; i++)
            dirty = g->base[off + i] != 0;
        if (dirty) {
            sy_log_warn("telemetry.spool", "segment %llu: cut a torn record at offset %llu",
                        (unsigned long long)g->no, (unsigned long long)off);
            memset(g->base + off, 0, span);
        }
    }
    return off;
}

static int read_id(struct tm_spool *s, char *err, size_t errlen)
{
    char path[PATH_MAX + 16], buf[TM_SPOOL_ID_LEN + 2];
    int fd;
    ssize_t n;

    snprintf(path, sizeof path, "%s/spool.id", s->dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, buf, sizeof buf);
        close(fd);
        if (n >= TM_SPOOL_ID_LEN) {
            memcpy(s->id, buf, TM_SPOOL_ID_LEN);
            s->id[TM_SPOOL_ID_LEN] = '\0';
            return 0;
        }
    }
    unsigned char raw[TM_SPOOL_ID_LEN / 2];

    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        return -SY_EIO;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        write(fd, s->id, TM_SPOOL_ID_LEN) != TM_SPOOL_ID_LEN || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -SY_EIO;
    }
    close(fd);
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const struct seg *)a)->no, y = ((const struct seg *)b)->no;

    return x < y ? -1 : x > y;
}

static int load_segments(struct tm_spool *s, char *err, size_t errlen)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    char path[PATH_MAX + 32];
    int rc = 0;

    if (!d) {
        snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
        return -SY_EIO;
    }
    while ((e = readdir(d))) {
        char *end;
        unsigned long long no;

        if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".seg") != 0)
            continue;
        no = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16 || no == 0)
            continue;
        if (s->nsegs == SEGS_MAX) {
            snprintf(err, errlen, "%s: more than %d segments", s->dir, SEGS_MAX);
            rc = -SY_EIO;
            break;
        }
        s->segs[s->nsegs].no = no;
        seg_path(s, no, path, sizeof path);
        if ((rc = map_file(path, false, 0, &s->segs[s->nsegs], err, errlen)) != 0)
            break;
        s->nsegs++;
    }
    closedir(d);
    if (rc == 0)
        qsort(s->segs, s->nsegs, sizeof s->segs[0], cmp_seg);
    return rc;
}

static int add_segment(struct tm_spool *s, uint64_t no, char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    struct seg g = {.no = no};
    int rc;

    seg_path(s, no, path, sizeof path);
    if ((rc = map_file(path, true, s->seg_bytes, &g, err, errlen)) != 0)
        return rc;
    s->segs[s->nsegs++] = g;
    atomic_fetch_add(&s->bytes, g.size);
    return 0;
}

static int mkdirs(const char *dir)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s", dir);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *q = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

struct tm_spool *tm_spool_open(const char *dir, size_t seg_bytes, size_t max_bytes, char *err,
                               size_t errlen)
{
    struct tm_spool *s;
    char path[PATH_MAX + 16];

    if (!dir || !dir[0] || strlen(dir) >= PATH_MAX - 32 || seg_bytes < SEG_MIN ||
        seg_bytes % 4096 || seg_bytes > (size_t)UINT32_MAX || max_bytes < 2 * seg_bytes) {
        snprintf(err, errlen,
                 "spool: a directory, segments of at least 1 MiB (4 KiB multiple, "
                 "below 4 GiB) and room for two of them");
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->lockfd = -1;
    s->seg_bytes = seg_bytes;
    s->max_segs = max_bytes / seg_bytes < SEGS_MAX ? max_bytes / seg_bytes : SEGS_MAX;
    pthread_mutex_init(&s->mu, NULL);
    sy_cond_init(&s->data);
    sy_cond_init(&s->space);
    if (mkdirs(dir) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    if ((s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s: %s", dir,
                 errno == EWOULDBLOCK ? "another process uses this spool" : strerror(errno));
        goto fail;
    }
    if (read_id(s, err, errlen) != 0 || load_segments(s, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < s->nsegs; i++) {
        uint64_t end = seg_end(&s->segs[i]);

        atomic_fetch_add(&s->bytes, s->segs[i].size);
        if (i + 1 < s->nsegs) {
            /* The process died between making the next segment and closing this one. */
            if (end + 4 <= s->segs[i].size && load_size(s->segs[i].base + end) != END_MARK)
                store_size(s->segs[i].base + end, END_MARK);
        } else {
            s->woff = end;
        }
    }
    if (s->nsegs == 0 || s->woff + HDR + 8 > s->segs[s->nsegs - 1].size) {
        uint64_t no = s->nsegs ? s->segs[s->nsegs - 1].no + 1 : 1;

        if (s->nsegs && s->woff + 4 <= s->segs[s->nsegs - 1].size)
            store_size(s->segs[s->nsegs - 1].base + s->woff, END_MARK);
        if (add_segment(s, no, err, errlen) != 0)
            goto fail;
        s->woff = 0;
    }
    s->wbase = s->segs[s->nsegs - 1].base;
    s->wsize = s->segs[s->nsegs - 1].size;
    s->wno = s->segs[s->nsegs - 1].no;
    return s;
fail:
    tm_spool_close(s);
    return NULL;
}

void tm_spool_close(struct tm_spool *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nsegs; i++)
        munmap(s->segs[i].base, s->segs[i].size);
    if (s->lockfd >= 0)
        close(s->lockfd);
    pthread_cond_destroy(&s->data);
    pthread_cond_destroy(&s->space);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const char *tm_spool_id(const struct tm_spool *s)
{
    return s->id;
}

struct tm_spool_pos tm_spool_first(const struct tm_spool *s)
{
    struct tm_spool_pos p;

    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    p.seg = s->segs[0].no;
    p.off = 0;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return p;
}

bool tm_spool_holds(const struct tm_spool *s, struct tm_spool_pos pos)
{
    bool in = false;

    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    for (size_t i = 0; i < s->nsegs && !in; i++)
        in = s->segs[i].no == pos.seg && pos.off + 4 <= s->segs[i].size && pos.off % 8 == 0;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return in;
}

/* Closes the appender's segment and starts the next, waiting for room. */
static int next_segment(struct tm_spool *s)
{
    char err[PATH_MAX + 128];
    bool said = false;
    int rc;

    pthread_mutex_lock(&s->mu);
    while (s->nsegs >= s->max_segs) {
        if (!said) {
            sy_log_warn("telemetry.spool",
                        "spool %s is full (%zu segments): waiting for the "
                        "database before taking more messages",
                        s->dir, s->nsegs);
            said = true;
        }
        pthread_cond_wait(&s->space, &s->mu);
    }
    rc = add_segment(s, s->wno + 1, err, sizeof err);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        sy_log_error("telemetry.spool", "%s", err);
        return rc;
    }
    store_size(s->wbase + s->woff, END_MARK);
    pthread_mutex_lock(&s->mu);
    s->wbase = s->segs[s->nsegs - 1].base;
    s->wsize = s->segs[s->nsegs - 1].size;
    s->wno = s->segs[s->nsegs - 1].no;
    s->woff = 0;
    pthread_cond_broadcast(&s->data);
    pthread_mutex_unlock(&s->mu);
    if (said)
        sy_log_info("telemetry.spool", "spool %s has room again", s->dir);
    return 0;
}

int tm_spool_append(struct tm_spool *s, const char *topic, size_t topic_len, const void *payload,
                    size_t len, int64_t arrival_us, bool dup)
{
    size_t need = align8(HDR + topic_len + len);
    uint16_t tl = (uint16_t)topic_len, flags = dup ? FLAG_DUP : 0;
    uint32_t pl = (uint32_t)len, check;
    char *p;
    int rc;

    if (topic_len > UINT16_MAX || need + 8 > s->seg_bytes)
        return -SY_ETOOBIG;
    if (s->woff + need + 8 > s->wsize && (rc = next_segment(s)) != 0)
        return rc;
    p = s->wbase + s->woff;
    memcpy(p + 8, &arrival_us, 8);
    memcpy(p + 16, &tl, 2);
    memcpy(p + 18, &flags, 2);
    memcpy(p + 20, &pl, 4);
    memcpy(p + HDR, topic, topic_len);
    if (len)
        memcpy(p + HDR + topic_len, payload, len);
    check = fnv1a(p + 8, HDR - 8 + topic_len + len, 2166136261u);
    memcpy(p + 4, &check, 4);
    store_size(p, (uint32_t)need); /* last: the record is whole from here on */
    s->woff += need;
    atomic_fetch_add(&s->appended, 1);
    if (atomic_load(&s->reader_waiting)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->data);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

/* The reader's mapping of segment no, or NULL when it is gone (or not made yet). */
static const struct seg *reader_seg(struct tm_spool *s, uint64_t no, size_t *size)
{
    const struct seg *g = NULL;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nsegs && !g; i++)
        if (s->segs[i].no == no)
            g = &s->segs[i];
    if (g) {
        s->rbase = g->base;
        s->rno = no;
        *size = g->size;
    }
    pthread_mutex_unlock(&s->mu);
    return g;
}

static bool newer_segment(struct tm_spool *s, uint64_t no)
{
    bool newer;

    pthread_mutex_lock(&s->mu);
    newer = s->nsegs && s->segs[s->nsegs - 1].no > no;
    pthread_mutex_unlock(&s->mu);
    return newer;
}

int tm_spool_read(struct tm_spool *s, struct tm_spool_pos pos, struct tm_spool_rec *rec,
                  int wait_ms)
{
    bool waited = false;

    for (;;) {
        uint32_t n;

        if ((s->rno != pos.seg || !s->rbase) && !reader_seg(s, pos.seg, &s->rsize))
            return 0;
        if (pos.off + 4 > s->rsize)
            return 0;
        n = load_size(s->rbase + pos.off);
        if (n == END_MARK) {
            pos.seg++;
            pos.off = 0;
            continue;
        }
        if (n == 0) {
            struct timespec until;

            if (waited || wait_ms <= 0)
                return 0;
            until = sy_cond_at(sy_mono_ms() + wait_ms);
            pthread_mutex_lock(&s->mu);
            atomic_store(&s->reader_waiting, true);
            if (load_size(s->rbase + pos.off) == 0)
                pthread_cond_timedwait(&s->data, &s->mu, &until);
            atomic_store(&s->reader_waiting, false);
            pthread_mutex_unlock(&s->mu);
            waited = true;
            continue;
        }
        if (!record_ok(s->rbase, s->rsize, pos.off, &n)) {
            sy_log_error("telemetry.spool",
                         "segment %llu: bad record at offset %llu, skipping "
                         "the rest of the segment",
                         (unsigned long long)pos.seg, (unsigned long long)pos.off);
            if (!newer_segment(s, pos.seg))
                return 0;
            pos.seg++;
            pos.off = 0;
            continue;
        }
        const char *p = s->rbase + pos.off;
        uint16_t tl, flags;
        uint32_t pl;

        memcpy(&rec->arrival_us, p + 8, 8);
        memcpy(&tl, p + 16, 2);
        memcpy(&flags, p + 18, 2);
        memcpy(&pl, p + 20, 4);
        rec->topic = p + HDR;
        rec->topic_len = tl;
        rec->payload = p + HDR + tl;
        rec->len = pl;
        rec->dup = flags & FLAG_DUP;
        rec->at = pos;
        rec->next = (struct tm_spool_pos){pos.seg, pos.off + n};
        return 1;
    }
}

void tm_spool_release(struct tm_spool *s, struct tm_spool_pos pos)
{
    char path[PATH_MAX + 32];
    size_t gone = 0;

    pthread_mutex_lock(&s->mu);
    while (gone < s->nsegs - 1 && s->segs[gone].no < pos.seg) {
        munmap(s->segs[gone].base, s->segs[gone].size);
        seg_path(s, s->segs[gone].no, path, sizeof path);
        unlink(path);
        atomic_fetch_sub(&s->bytes, s->segs[gone].size);
        gone++;
    }
    if (gone) {
        memmove(s->segs, s->segs + gone, (s->nsegs - gone) * sizeof s->segs[0]);
        s->nsegs -= gone;
        pthread_cond_broadcast(&s->space);
    }
    pthread_mutex_unlock(&s->mu);
}

uint64_t tm_spool_bytes(const struct tm_spool *s)
{
    return atomic_load(&s->bytes);
}

uint64_t tm_spool_appended(const struct tm_spool *s)
{
    return atomic_load(&s->appended);
}
