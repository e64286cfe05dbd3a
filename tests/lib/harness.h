/* harness.h - helpers for integration tests and benchmarks: service URLs, spawning workers,
 * publishing probe work, and reading what the probe worker recorded in Redis. */
#ifndef SY_TEST_HARNESS_H
#define SY_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sy_amqp;
struct sy_topology;
struct redisContext;
struct sy_redis;

/* The value of an environment variable the test needs; exits 77 (skipped) when unset. */
const char *th_need_env(const char *name);
int64_t th_now_ms(void);
/* A loopback TCP port nobody listens on right now (the kernel's pick). */
int th_free_port(void);
void th_sleep_ms(int ms);
/* A random run id (hex) so reruns never see each other's data. */
void th_run_id(char buf[17]);

/* A spawned worker process with its stderr in a log file. */
struct th_proc {
    pid_t pid;
    char log_path[256];
    int exit_status; /* after th_proc_wait: exit code, or 128 + signal */
    bool exited;
};
/* Spawns `bin` with the current environment plus `env` ("K=V", NULL-terminated, may be NULL). */
int th_proc_spawn(struct th_proc *p, const char *bin, const char *const *env);
void th_proc_signal(struct th_proc *p, int sig);
/* Waits up to timeout_ms; 0 when it exited, -1 on timeout. */
int th_proc_wait(struct th_proc *p, int timeout_ms);
/* Prints the tail of the process's log to stderr (for failing tests). */
void th_proc_dump_log(const struct th_proc *p, int max_lines);
/* Kills and reaps if still running. */
void th_proc_cleanup(struct th_proc *p);
/* How many lines of the process's log contain needle (0 when there is no log yet). */
int th_log_count(const struct th_proc *p, const char *needle);

/* Writes text to path, replacing what was there: 0, or -1 with errno set. */
int th_write_file(const char *path, const char *text);
/* Removes path and, for a folder, everything below it (links not followed); best effort. */
void th_rm_tree(const char *path);

/* Runs bin with args (NULL-terminated, argv[1..]) and waits at most timeout_ms: env entries
 * "K=V" set and "K" alone unset a variable in the child only. Its stdout and stderr come back
 * whole in *out and *err (malloc'd, never NULL on success). The exit status, 128 + the signal
 * for a killed child, or -1 (spawn or capture failed, or the timeout passed: then it was
 * killed). */
int th_run(const char *bin, const char *const *args, const char *const *env, int timeout_ms,
           char **out, char **err);

/* A whole file as a NUL-terminated malloc'd string, NULL (errno set) on failure. */
char *th_read_file(const char *path);

/* The reference GRM schema's (src/schemas/sql/grm-mysql/0001_grm.sql) CREATE TABLE of the
 * grievance table, the one holding chatbot_ref, renamed to qtable (already quoted), so a test
 * gets a GRM table of its own. malloc'd; NULL when the file cannot be read or holds no such
 * table. */
char *th_grm_ddl(const char *src, const char *qtable);

/* Connects the sync AMQP client to SY_AMQP_URL (skips without it), loads SY_TOPOLOGY, and
 * declares the topology. Exits the test on failure. */
struct sy_amqp *th_amqp(struct sy_topology **topo);
/* Purges sy.<w>, its retry queues and sy.<w>.dead. */
void th_purge_worker(struct sy_amqp *a, const struct sy_topology *t, const char *worker);
uint32_t th_queue_depth(struct sy_amqp *a, const char *queue);

/* Wraps the MessagePack body mp in an envelope of `type` with id (NULL: a fresh one, copied to
 * id_out[37] when not NULL) and publishes it pipelined (no wait for the confirm). */
int th_publish_body(struct sy_amqp *a, const char *exchange, const char *type, const char *id,
                    const void *mp, size_t mlen, char *id_out);

/* For benchmarks: the fleet's own topology and message schemas (SY_SOURCE_DIR/schemas), set in
 * the environment of this process and the workers it starts; a connection to SY_AMQP_URL named
 * `name` (no heartbeat: it may idle while a worker runs) with worker's queues declared and
 * purged, their names in queue[256] and dead[256]. Exits the program on failure. */
struct sy_amqp *th_fleet_amqp(const char *worker, const char *name, struct sy_topology **topo,
                              char *queue, char *dead);

/* Probe work: packs {run, n, action, sleep_ms?, fail_times?} into an envelope of `type` with a
 * fresh id (copied to id_out[37] when not NULL) and publishes it pipelined (no wait).
 * sleep_ms / fail_times < 0 are left out. */
int th_publish_probe(struct sy_amqp *a, const char *exchange, const char *type, const char *run,
                     int64_t n, const char *action, int64_t sleep_ms, int64_t fail_times,
                     char *id_out);

/* Redis (SY_REDIS_URL; skips without it) and what the probe recorded for a run. */
/* A plain hiredis connection to SY_REDIS_URL, on its database: for looking at keys behind the
 * runtime's back. */
struct redisContext *th_redis(void);
/* The runtime's connection to SY_REDIS_URL (timeout_ms per command). */
struct sy_redis *th_sy_redis(int timeout_ms);
long long th_probe_done_count(struct redisContext *r, const char *run);
bool th_probe_is_done(struct redisContext *r, const char *run, const char *id);
long long th_probe_seen(struct redisContext *r, const char *run, const char *id);
/* Handling times (ms since epoch) of one message, in order; returns how many were found. */
size_t th_probe_times(struct redisContext *r, const char *run, const char *id, int64_t *out,
                      size_t max);

/* Waits until the probe finished at least `want` messages of `run`; the final verdict. */
bool th_probe_wait_done(struct redisContext *r, const char *run, long long want, int timeout_ms);

/* Polls cond every 20 ms until true or timeout; returns the final value. */
bool th_wait_until(bool (*cond)(void *ud), void *ud, int timeout_ms);

#endif
