/*
 * Logging: four levels, text or JSON lines on stderr. One write(2) per message so lines
 * from several threads never interleave. LOG_RL() rate-limits a call site (per thread)
 * for anything a remote peer can trigger, and reports how many lines it suppressed.
 */
#ifndef FERRY_CORE_LOG_H
#define FERRY_CORE_LOG_H
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Lines per second a rate-limited call site may print before it is muted for the second. */
#define LOG_RL_LINES_PER_SEC 5

struct log_ratelimit {
	uint64_t window_s;
	unsigned printed;
	unsigned suppressed;
};

void log_setup(enum log_level level, int json);
/* Sends every line to sink(level, message) instead of stderr, e.g. syslog for a daemon. */
void log_set_sink(void (*sink)(enum log_level level, const char *msg));
int log_level_parse(const char *s, enum log_level *out);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns 1 when the call site may print now; *suppressed receives the muted count to report. */
int log_ratelimit_pass(struct log_ratelimit *rl, unsigned *suppressed);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#define LOG_RL(level, fmt, ...) do { \
	static __thread struct log_ratelimit rl_; \
	unsigned sup_; \
	if (log_enabled(level) && log_ratelimit_pass(&rl_, &sup_)) { \
		if (sup_) \
			log_msg(level, fmt " (%u similar messages suppressed)", ##__VA_ARGS__, sup_); \
		else \
			log_msg(level, fmt, ##__VA_ARGS__); \
	} \
} while (0)

#endif
