/*
 * libFuzzer target for kcptun's JSON config (cmd/kcptun_json.c, cmd/kcptun_args.c): the input
 * is a config file's bytes. Properties:
 *  - no crash, leak or sanitizer report; every failure writes a terminated message;
 *  - every value handed out is consistent: keys are printable ASCII, strings have no NUL and
 *    fit KCPTUN_JSON_STR_MAX, a number's integer value equals strtoll of its text, and
 *    "integer" is set exactly when the literal has no fraction or exponent;
 *  - round trip: the members re-encoded as JSON parse again to the same members;
 *  - applying the file as kcptun-client's and kcptun-server's config, and building the rule
 *    when that succeeds, fails only with a message (no DNS is done);
 *  - the same for the input split into words as a kcptun-client / kcptun-server command line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/kcptun_args.h"
#include "cmd/kcptun_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_WORDS_MAX 64

struct member {
	size_t key, text;	/* offsets into the arena */
	enum kcptun_json_type type;
	bool integer, fits, b;
	int64_t i;
};

struct record {
	struct member *m;
	size_t n, cap;
	char *arena;
	size_t used, arena_cap;
	size_t cmp;		/* second pass: next member to compare */
};

static size_t arena_put(struct record *r, const char *s)
{
	size_t len = strlen(s) + 1, at = r->used;

	if (r->used + len > r->arena_cap)
		abort();	/* decoded text is never longer than the input */
	memcpy(r->arena + at, s, len);
	r->used += len;
	return at;
}

static void check_value(const char *key, const struct kcptun_json_value *v)
{
	char *end;
	long long x;

	for (const char *k = key; *k; k++)
		if (*k < 0x20 || *k > 0x7e)
			abort();
	if (strlen(key) >= KCPTUN_JSON_STR_MAX || strlen(v->text) >= KCPTUN_JSON_STR_MAX || !v->line || !v->col)
		abort();
	if (v->type != KCPTUN_JSON_NUMBER)
		return;
	if (v->integer != !strpbrk(v->text, ".eE"))
		abort();
	if (!v->integer)
		return;
	errno = 0;
	x = strtoll(v->text, &end, 10);
	if (*end || (v->fits ? (errno || x != v->i) : errno != ERANGE))
		abort();
}

static int record_member(void *ctx, const char *key, const struct kcptun_json_value *v, char *err, size_t errlen)
{
	struct record *r = ctx;
	struct member *m;

	check_value(key, v);
	if (r->n == r->cap)
		abort();
	m = &r->m[r->n++];
	m->key = arena_put(r, key);
	m->text = arena_put(r, v->text);
	m->type = v->type;
	m->integer = v->integer;
	m->fits = v->fits;
	m->i = v->i;
	m->b = v->b;
	return 0;
}

static int compare_member(void *ctx, const char *key, const struct kcptun_json_value *v, char *err, size_t errlen)
{
	struct record *r = ctx;
	const struct member *m;

	if (r->cmp == r->n)
		abort();
	m = &r->m[r->cmp++];
	if (strcmp(key, r->arena + m->key) || strcmp(v->text, r->arena + m->text) || v->type != m->type ||
	    v->integer != m->integer || v->fits != m->fits || (m->fits && v->i != m->i) || v->b != m->b)
		abort();
	return 0;
}

/* JSON string syntax for s: the escapes a control character needs, everything else raw. */
static size_t encode_string(char *out, const char *s)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') {
			out[n++] = '\\';
			out[n++] = *s;
		} else if ((unsigned char)*s < 0x20) {
			n += (size_t)sprintf(out + n, "\\u%04x", (unsigned char)*s);
		} else {
			out[n++] = *s;
		}
	}
	out[n++] = '"';
	return n;
}

static void round_trip(struct record *r, size_t size)
{
	/* a member's re-encoding is at most 6x its decoded length plus 4 bytes of syntax */
	char *out = malloc(6 * size + 16), err[256];
	size_t n = 0;

	if (!out)
		return;
	out[n++] = '{';
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			out[n++] = ',';
		n += encode_string(out + n, r->arena + r->m[i].key);
		out[n++] = ':';
		if (r->m[i].type == KCPTUN_JSON_STRING)
			n += encode_string(out + n, r->arena + r->m[i].text);
		else
			n += (size_t)sprintf(out + n, "%s", r->arena + r->m[i].text);
	}
	out[n++] = '}';
	r->cmp = 0;
	if (n <= KCPTUN_JSON_MAX_BYTES) {
		if (kcptun_json_parse(out, n, compare_member, r, err, sizeof(err)) || r->cmp != r->n)
			abort();
	}
	free(out);
}

static void check_err(int rc, const char *err, size_t errlen)
{
	if (rc >= 0 || !memchr(err, '\0', errlen) || !err[0])
		abort();
}

/* The file as kcptun-client's or kcptun-server's -c config, then the rule. */
static void apply_config(enum args_dialect dia, const char *text, size_t size)
{
	struct kcptun_cli kc;
	struct rule_opts ro;
	struct rule *rule = NULL;
	char err[ARGS_ERR_MAX];
	int rc;

	rule_opts_default(&ro);
	kcptun_cli_init(&kc, dia, &ro);
	memset(err, 'x', sizeof(err));
	rc = kcptun_config_parse(&kc, "fuzz.json", text, size, &ro, err, sizeof(err));
	if (rc) {
		check_err(rc, err, sizeof(err));
		if (strncmp(err, "fuzz.json:", 10))
			abort();
		return;
	}
	memset(err, 'x', sizeof(err));
	rc = kcptun_rule_build(&kc, true, &ro, &rule, err, sizeof(err));
	if (rc) {
		check_err(rc, err, sizeof(err));
		return;
	}
	if (!rule || rule->o.kcp.profile != KCP_PROFILE_KCPTUN)
		abort();
	rule_unref(rule);
}

/* The input as kcptun's argv: options, then the rule. */
static void apply_args(enum args_dialect dia, int nw, char **words)
{
	struct kcptun_cli kc;
	struct global_opts g;
	struct rule_opts ro;
	struct rule *rule = NULL;
	char err[ARGS_ERR_MAX];
	int rc;

	global_opts_default(&g);
	rule_opts_default(&ro);
	kcptun_cli_init(&kc, dia, &ro);
	memset(err, 'x', sizeof(err));
	rc = kcptun_args_parse(&kc, nw, words, &g, &ro, err, sizeof(err));
	if (!rc) {
		memset(err, 'x', sizeof(err));
		rc = kcptun_rule_build(&kc, false, &ro, &rule, err, sizeof(err));
	}
	if (rc) {
		check_err(rc, err, sizeof(err));
		return;
	}
	rule_unref(rule);
}

static void fuzz_words(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *words[FUZZ_WORDS_MAX], *save = NULL, *tok;
	int nw = 0;

	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (tok = strtok_r(buf, " \t\r\n", &save); tok && nw < FUZZ_WORDS_MAX; tok = strtok_r(NULL, " \t\r\n", &save))
		words[nw++] = tok;
	apply_args(ARGS_KCPTUN_CLIENT, nw, words);
	apply_args(ARGS_KCPTUN_SERVER, nw, words);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record r = { 0 };
	const char *text = (const char *)data;
	char err[256];
	int rc;

	/* beyond the limit the parser only says so; a little past it is enough to check that */
	if (size > KCPTUN_JSON_MAX_BYTES + 16)
		return 0;
	r.cap = size / 4 + 1;	/* the shortest member, "":0, is 4 bytes with its comma */
	r.m = calloc(r.cap, sizeof(*r.m));
	r.arena_cap = 2 * size + 2;
	r.arena = malloc(r.arena_cap);
	if (!r.m || !r.arena)
		goto out;
	memset(err, 'x', sizeof(err));
	rc = kcptun_json_parse(text, size, record_member, &r, err, sizeof(err));
	if (rc)
		check_err(rc, err, sizeof(err));
	else
		round_trip(&r, size);
	apply_config(ARGS_KCPTUN_CLIENT, text, size);
	apply_config(ARGS_KCPTUN_SERVER, text, size);
	fuzz_words(data, size);
out:
	free(r.m);
	free(r.arena);
	return 0;
}
