/* bare_consumer.h - the baseline benchmarks measure a worker against: a hand-written
 * librabbitmq consumer draining a queue as fast as the broker delivers. */
#ifndef SY_TEST_BARE_CONSUMER_H
#define SY_TEST_BARE_CONSUMER_H

#include <sys/types.h>

/* Seconds on the monotonic clock. */
double th_mono_s(void);
/* User plus system CPU seconds process pid has used so far (0 when it cannot be read). */
double th_cpu_s(pid_t pid);
/* A figure of /proc/<pid>/status in kB ("VmHWM": the peak resident size), -1 when unknown. */
long th_status_kb(pid_t pid, const char *key);

/* Connects to url, consumes queue with prefetch 1000 and acks every 250 messages (multiple),
 * until n messages arrived. Returns the seconds from connecting to the last ack; *cpu is the
 * CPU seconds this process spent meanwhile. Exits the program when the broker fails it. */
double th_bare_drain(const char *url, const char *queue, long n, double *cpu);

#endif
