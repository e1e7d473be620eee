/*
 * core/log: level names, the per-call-site rate limit (LOG_RL_LINES_PER_SEC lines per
 * second, then a count of what was muted, reported in the next second), and the text
 * and JSON line formats (stderr captured through a pipe), and the sink that replaces stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "test.h"

static void test_log_level_parse_accepts_the_four_names_only(void)
{
	static const struct {
		const char *s;
		int rc;
		enum log_level level;
	} cases[] = {
		{ "error", 0, LOG_ERROR },
		{ "warn", 0, LOG_WARN },
		{ "info", 0, LOG_INFO },
		{ "debug", 0, LOG_DEBUG },
		{ "", -EINVAL, LOG_INFO },
		{ "warning", -EINVAL, LOG_INFO },
		{ "WARN", -EINVAL, LOG_INFO },
		{ "info ", -EINVAL, LOG_INFO },
		{ "deb", -EINVAL, LOG_INFO },
		{ "3", -EINVAL, LOG_INFO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum log_level level = LOG_INFO;

		CHECK_EQ(log_level_parse(cases[i].s, &level), cases[i].rc);
		CHECK_EQ(level, cases[i].level);
	}
}

static uint64_t coarse_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

/* Sleeps until CLOCK_MONOTONIC_COARSE enters the next second (at most about a second). */
static void wait_next_second(uint64_t sec)
{
	struct timespec ten_ms = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < 150 && coarse_sec() == sec; i++)
		nanosleep(&ten_ms, NULL);
}

static void test_log_ratelimit_passes_lines_per_sec_then_reports_suppressed_next_second(void)
{
	struct log_ratelimit rl;
	unsigned sup = 99, sups[LOG_RL_LINES_PER_SEC + 7];
	int oks[LOG_RL_LINES_PER_SEC + 7];
	uint64_t sec;
	int attempt;

	/* the burst must fit in one second: redo it if it straddled a boundary */
	for (attempt = 0; attempt < 3; attempt++) {
		memset(&rl, 0, sizeof(rl));
		sec = coarse_sec();
		for (int i = 0; i < LOG_RL_LINES_PER_SEC + 7; i++)
			oks[i] = log_ratelimit_pass(&rl, &sups[i]);
		if (coarse_sec() == sec)
			break;
	}
	CHECK(attempt < 3);
	for (int i = 0; i < LOG_RL_LINES_PER_SEC + 7; i++) {
		CHECK_EQ(oks[i], i < LOG_RL_LINES_PER_SEC);
		CHECK_EQ(sups[i], 0);
	}
	CHECK_EQ(rl.printed, LOG_RL_LINES_PER_SEC);
	CHECK_EQ(rl.suppressed, 7);

	wait_next_second(sec);
	CHECK(coarse_sec() != sec);
	CHECK_EQ(log_ratelimit_pass(&rl, &sup), 1);
	CHECK_EQ(sup, 7);
	CHECK_EQ(rl.suppressed, 0);
	/* reported once: the next line of the new second carries no count */
	CHECK_EQ(log_ratelimit_pass(&rl, &sup), 1);
	CHECK_EQ(sup, 0);
}

/* Runs fn with stderr sent to a pipe; returns what it wrote. */
static const char *capture_stderr(void (*fn)(void))
{
	static char buf[4096];
	int fds[2], saved;
	ssize_t n;

	fflush(stderr);
	if (pipe(fds))
		abort();
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	close(fds[1]);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void log_quoted(void)
{
	log_setup(LOG_INFO, 1);
	log_info("say \"hi\"\\%s", "\n\tend");
	log_debug("not shown %d", 1);
	log_setup(LOG_INFO, 0);
}

static void test_log_json_escapes_quotes_backslashes_and_control_characters(void)
{
	const char *out = capture_stderr(log_quoted);
	const char *want = "\",\"level\":\"info\",\"msg\":\"say \\\"hi\\\"\\\\\\u000a\\u0009end\"}\n";
	size_t ol = strlen(out), wl = strlen(want);

	CHECK(strncmp(out, "{\"ts\":\"", 7) == 0);
	CHECK(ol > wl && !strcmp(out + ol - wl, want));
	CHECK(strchr(out, '\n') == out + ol - 1);	/* one line */
	if (ol <= wl || strcmp(out + ol - wl, want))
		fprintf(stderr, "  got: %s", out);
}

static void log_levels(void)
{
	log_setup(LOG_WARN, 0);
	log_info("quiet");
	log_warn("loud %d", 2);
	log_setup(LOG_INFO, 0);
}

static void test_log_text_prints_only_enabled_levels(void)
{
	const char *out = capture_stderr(log_levels);
	const char *want = "Z ferry warn: loud 2\n";
	size_t ol = strlen(out), wl = strlen(want);

	CHECK(ol > wl && !strcmp(out + ol - wl, want));
	CHECK(strstr(out, "quiet") == NULL);
	log_setup(LOG_WARN, 0);
	CHECK(log_enabled(LOG_ERROR));
	CHECK(log_enabled(LOG_WARN));
	CHECK(!log_enabled(LOG_INFO));
	CHECK(!log_enabled(LOG_DEBUG));
	log_setup(LOG_INFO, 0);
}

static void log_long(void)
{
	char big[3000];

	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_setup(LOG_INFO, 1);
	log_info("%s", big);
	log_setup(LOG_INFO, 0);
}

static void test_log_json_truncates_a_long_message_and_stays_one_valid_line(void)
{
	const char *out = capture_stderr(log_long);
	size_t ol = strlen(out);

	CHECK(ol > 100);
	CHECK(ol < 2048);
	CHECK(ol >= 3 && !strcmp(out + ol - 3, "\"}\n"));
	CHECK(strchr(out, '\n') == out + ol - 1);
	/* the escaped body ends on a whole escape, not half of one */
	CHECK(ol >= 5 && !strcmp(out + ol - 5, "\\\"\"}\n"));
}

static int sink_calls;
static enum log_level sink_level;
static char sink_msg[64];

static void sink(enum log_level level, const char *msg)
{
	sink_calls++;
	sink_level = level;
	snprintf(sink_msg, sizeof(sink_msg), "%s", msg);
}

static void log_to_sink(void)
{
	log_set_sink(sink);
	log_setup(LOG_INFO, 1);
	log_warn("port %d busy", 80);
	log_debug("not enabled");
	log_set_sink(NULL);
	log_setup(LOG_INFO, 0);
}

static void test_log_sink_gets_enabled_messages_instead_of_stderr(void)
{
	const char *out;

	sink_calls = 0;
	out = capture_stderr(log_to_sink);
	CHECK_STR(out, "");
	CHECK_EQ(sink_calls, 1);
	CHECK_EQ(sink_level, LOG_WARN);
	CHECK_STR(sink_msg, "port 80 busy");
}

int main(void)
{
	RUN(test_log_level_parse_accepts_the_four_names_only);
	RUN(test_log_ratelimit_passes_lines_per_sec_then_reports_suppressed_next_second);
	RUN(test_log_json_escapes_quotes_backslashes_and_control_characters);
	RUN(test_log_text_prints_only_enabled_levels);
	RUN(test_log_json_truncates_a_long_message_and_stays_one_valid_line);
	RUN(test_log_sink_gets_enabled_messages_instead_of_stderr);
	TEST_EXIT();
}
