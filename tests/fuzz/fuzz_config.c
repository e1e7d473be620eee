/*
 * libFuzzer target for the config file and option parsers (cmd/config.c, cmd/args.c):
 * config_parse of the input as text, then args_parse of the input split into words, in
 * every dialect, with and without global options allowed, and rule_build when it gives
 * two positionals. Properties: no crash, leak or sanitizer report; every failure writes
 * a terminated message; config_parse returns at least one rule or an error. No DNS.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs longer than this only repeat what shorter ones reach, more slowly. */
#define FUZZ_INPUT_MAX (64 * 1024)
#define FUZZ_WORDS_MAX 128

static void check_err(int rc, const char *err, size_t errlen)
{
	if (rc >= 0 || !memchr(err, '\0', errlen) || !err[0]) {
		fprintf(stderr, "failure without a message: rc %d\n", rc);
		abort();
	}
}

static void fuzz_config(const char *text)
{
	struct rule_opts defaults;
	struct rule **rules = NULL;
	size_t n = 0;
	char err[ARGS_ERR_MAX];
	int rc;

	rule_opts_default(&defaults);
	memset(err, 'x', sizeof(err));
	rc = config_parse("fuzz.conf", text, &defaults, &rules, &n, err, sizeof(err));
	if (rc) {
		check_err(rc, err, sizeof(err));
		if (rules || n)
			abort();
		return;
	}
	if (!rules || n == 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!rules[i] || rules[i]->refs != 1)
			abort();
	rules_free(rules, n);
}

static void fuzz_args(enum args_dialect dia, int rule_line, int nw, char **words)
{
	struct global_opts g;
	struct rule_opts ro;
	struct args_result res;
	struct rule *r = NULL;
	char err[ARGS_ERR_MAX];
	int rc;

	global_opts_default(&g);
	rule_opts_default(&ro);
	memset(err, 'x', sizeof(err));
	rc = args_parse(dia, nw, words, rule_line ? NULL : &g, &ro, &res, err, sizeof(err));
	if (rc) {
		check_err(rc, err, sizeof(err));
		return;
	}
	if (res.npos < 0 || res.npos > ARGS_POS_MAX)
		abort();
	if (res.npos < 2)
		return;
	memset(err, 'x', sizeof(err));
	rc = rule_build(dia, res.pos[0], res.pos[1], &ro, &r, err, sizeof(err));
	if (rc) {
		check_err(rc, err, sizeof(err));
		return;
	}
	rule_unref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *words_buf, *words[FUZZ_WORDS_MAX], *save = NULL, *tok;
	int nw = 0;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	text = malloc(size + 1);
	words_buf = malloc(size + 1);
	if (!text || !words_buf)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	memcpy(words_buf, text, size + 1);

	fuzz_config(text);

	for (tok = strtok_r(words_buf, " \t\r\n", &save); tok && nw < FUZZ_WORDS_MAX;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		words[nw++] = tok;
	fuzz_args(ARGS_FERRY, 0, nw, words);
	fuzz_args(ARGS_FERRY, 1, nw, words);
	fuzz_args(ARGS_TCPFWD, 0, nw, words);
	fuzz_args(ARGS_UDPFWD, 0, nw, words);
out:
	free(words_buf);
	free(text);
	return 0;
}
