/*
 * A minimal unit-test harness: each test is a function; CHECK* record a failure and
 * keep going, so one run reports every broken case. Output is one "PASS name" or
 * "FAIL name" line per test, which tests/run.sh counts.
 */
#ifndef FERRY_TEST_H
#define FERRY_TEST_H
#include <stdio.h>
#include <string.h>
#include <inttypes.h>
#include <stdint.h>

/* Hex text (two digits per byte, nothing between) to bytes; returns how many were written. */
static inline size_t test_unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; h[0] && h[1] && n < cap; h += 2) {
		unsigned v;

		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* Words of a command line for the argument parsers; no case needs a word with a space. */
#define TEST_WORDS_MAX 80
struct test_words {
	char buf[1024];
	char *w[TEST_WORDS_MAX];
	int n;
};

static inline void test_words_split(struct test_words *ws, const char *text)
{
	char *save = NULL, *tok;

	snprintf(ws->buf, sizeof(ws->buf), "%s", text);
	ws->n = 0;
	for (tok = strtok_r(ws->buf, " ", &save); tok && ws->n < TEST_WORDS_MAX; tok = strtok_r(NULL, " ", &save))
		ws->w[ws->n++] = tok;
}

static int test_failed_;
static int tests_failed_total_;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	test_failed_ = 1; } } while (0)
#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); if (a_ != b_) { \
	fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, a_, #b, b_); \
	test_failed_ = 1; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); if (!a_ || !b_ || strcmp(a_, b_)) { \
	fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	test_failed_ = 1; } } while (0)

#define RUN(fn) do { test_failed_ = 0; fn(); \
	printf("%s %s\n", test_failed_ ? "FAIL" : "PASS", #fn); \
	tests_failed_total_ += test_failed_; } while (0)
#define TEST_EXIT() return tests_failed_total_ ? 1 : 0


/*
 * xorshift64*: the same sequence on every run and every libc, so a failing seed can be
 * replayed. One generator per test program (tests are single-threaded).
 */
static uint64_t test_rng_state = 1;

static inline void test_rng_seed(uint64_t s)
{
	test_rng_state = s ? s : 1;
}

static inline uint64_t test_rng(void)
{
	test_rng_state ^= test_rng_state >> 12;
	test_rng_state ^= test_rng_state << 25;
	test_rng_state ^= test_rng_state >> 27;
	return test_rng_state * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough below n (n > 0) for test workloads. */
static inline uint32_t test_rng_below(uint32_t n)
{
	return (uint32_t)(test_rng() >> 32) % n;
}

#endif
