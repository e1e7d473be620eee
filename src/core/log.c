/* Log lines to stderr as text or JSON; see log.h. Not responsible for where stderr goes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define LOG_LINE_BYTES 1024

static enum log_level log_level_cur = LOG_INFO;
static int log_json;
static void (*log_sink)(enum log_level level, const char *msg);

void log_set_sink(void (*sink)(enum log_level level, const char *msg))
{
	log_sink = sink;
}
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(enum log_level level, int json)
{
	log_level_cur = level;
	log_json = json;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_enabled(enum log_level level)
{
	return level <= log_level_cur;
}

/* Copies s into out as the body of a JSON string; returns bytes written. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_BYTES], line[LOG_LINE_BYTES * 2], ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int saved = errno, n;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_sink) {
		log_sink(level, msg);
		errno = saved;
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		char esc[LOG_LINE_BYTES * 2 - 128];

		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line), "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
			     ts, (long)tv.tv_usec / 1000, level_names[level], esc);
	} else {
		n = snprintf(line, sizeof(line), "%s.%03ldZ ferry %s: %s\n", ts, (long)tv.tv_usec / 1000,
			     level_names[level], msg);
	}
	if (n > (int)sizeof(line) - 1) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

int log_ratelimit_pass(struct log_ratelimit *rl, unsigned *suppressed)
{
	struct timespec now;
	uint64_t sec;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	sec = (uint64_t)now.tv_sec;
	*suppressed = 0;
	if (sec != rl->window_s) {
		*suppressed = rl->suppressed;
		rl->window_s = sec;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= LOG_RL_LINES_PER_SEC) {
		rl->suppressed++;
		return 0;
	}
	rl->printed++;
	return 1;
}
