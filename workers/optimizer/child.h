/* child.h - one solve in a forked child process: GLPK's fatal errors, memory exhaustion and
 * hangs stay there. The parent reads progress, may cancel, and always gets a result JSON
 * (result.h's layout) back, built by the child or, when the child died, by the parent.
 *
 * Pipe frames, child to parent: one type byte ('P' progress, 'R' result), a 4-byte big-endian
 * length, then that many bytes of JSON. Progress is {"incumbent", "bound", "gap", "seconds",
 * "nodes"} (null when unknown), written only when the pipe has room (a slow reader loses
 * progress, never blocks the solve); the result frame is written last, completely.
 *
 * fork() without exec: the child touches only GLPK, jansson, malloc (fork-safe in glibc) and
 * the pipe, then _exit()s; it never logs or uses the caller's connections. */
#ifndef OP_CHILD_H
#define OP_CHILD_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "optimizer/model.h"
#include "optimizer/scenario.h"
#include "optimizer/solve.h"

#define OP_CHILD_GRACE_S     5.0    /* past the time limit (or a cancel) before SIGKILL */
#define OP_CHILD_DEFAULT_S   3600.0 /* time limit when the options give none */
#define OP_CHILD_RESULT_MAX  ((size_t)64 << 20)
#define OP_CHILD_AS_SLACK_MB 64 /* address space above the limit for code and stacks */

/* What to solve: a scenario, or model text (scenario NULL). Borrowed until op_child_start
 * returns (the child has its own copy). */
struct op_job {
    const struct op_scenario *scenario;
    enum op_model_format format;
    const char *text;
    size_t len;
};

struct op_child;

/* Forks the solver. opt->mem_limit_mb caps GLPK's allocator and (except under
 * AddressSanitizer, whose shadow memory needs the address space) RLIMIT_AS. 0 and *out (free
 * with op_child_destroy), or -SY_EINVAL (bad options, message in err) / -SY_EIO. */
int op_child_start(const struct op_job *job, const struct op_options *opt, struct op_child **out,
                   char *err, size_t errlen);

pid_t op_child_pid(const struct op_child *c);

/* Waits up to timeout_ms (-1: until something happens) for the next event. Returns 1 with *p
 * filled for progress, 2 once the solve is over (call op_child_wait), 0 on timeout. Enforces
 * the wall-clock bound: time limit + grace, or cancel + grace, then SIGKILL. */
int op_child_poll(struct op_child *c, int timeout_ms, struct op_progress *p);

/* Asks the child to stop at the search's next callback, keeping its best plan so far. */
void op_child_cancel(struct op_child *c);

/* Waits for the end (progress discarded) and returns the result JSON (new reference; NULL only
 * when out of memory). A child that died or was killed yields {"status": "error" (or
 * "cancelled" after op_child_cancel), "reason": why}. */
json_t *op_child_wait(struct op_child *c);

/* Kills a child still running, reaps it, frees c. NULL is fine. */
void op_child_destroy(struct op_child *c);

#endif
