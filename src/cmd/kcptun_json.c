/*
 * kcptun's JSON config: see kcptun_json.h. The grammar is RFC 8259's, cut down to one
 * object of scalars; every error names the line and column (in bytes) where it was found.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/kcptun_json.h"

struct kj {
	const char *p, *end;
	const char *line_start;
	unsigned line;
	char *err;
	size_t errlen;
};

static int kj_fail_at(struct kj *s, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Tokens never span lines (a raw newline in a string is an error), so at is on s->line. */
static int kj_fail_at(struct kj *s, const char *at, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(s->err, s->errlen, "%u:%u: %s", s->line, (unsigned)(at - s->line_start) + 1, msg);
	return -EINVAL;
}

/* What stands at s->p, for a message: 'x', byte 0x01 or end of file. */
static const char *kj_what(const struct kj *s, char *buf, size_t len)
{
	unsigned char c;

	if (s->p == s->end)
		return "end of file";
	c = (unsigned char)*s->p;
	if (c > ' ' && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "byte 0x%02x", c);
	return buf;
}

static void kj_skip_ws(struct kj *s)
{
	for (; s->p < s->end; s->p++) {
		if (*s->p == '\n') {
			s->line++;
			s->line_start = s->p + 1;
		} else if (*s->p != ' ' && *s->p != '\t' && *s->p != '\r') {
			break;
		}
	}
}

static int kj_hex4(const char *p, const char *end, uint32_t *out)
{
	uint32_t v = 0;

	if (end - p < 4)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* "\uXXXX", and for a high surrogate the "\uXXXX" of its low half: one code point. */
static int kj_escape_u(struct kj *s, const char *what, uint32_t *cp)
{
	const char *at = s->p;	/* on the backslash */
	uint32_t lo;

	if (kj_hex4(s->p + 2, s->end, cp))
		return kj_fail_at(s, at, "bad \\u escape in %s: expected 4 hex digits", what);
	s->p += 6;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return kj_fail_at(s, at, "lone low surrogate \\u%04x in %s", *cp, what);
	if (*cp >= 0xd800 && *cp <= 0xdbff) {
		if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || kj_hex4(s->p + 2, s->end, &lo) ||
		    lo < 0xdc00 || lo > 0xdfff)
			return kj_fail_at(s, at, "high surrogate \\u%04x in %s without its low half", *cp, what);
		*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
		s->p += 6;
	}
	if (*cp == 0)
		return kj_fail_at(s, at, "\\u0000 (a NUL byte) is not allowed in %s", what);
	return 0;
}

/* One escape at s->p (a backslash) -> code point. */
static int kj_escape(struct kj *s, const char *what, uint32_t *cp)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;

	if (s->p + 1 == s->end)
		return kj_fail_at(s, s->p, "unterminated %s", what);
	if (s->p[1] == 'u')
		return kj_escape_u(s, what, cp);
	hit = s->p[1] ? strchr(from, s->p[1]) : NULL;
	if (!hit)
		return kj_fail_at(s, s->p, "bad escape in %s: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", what);
	*cp = (unsigned char)to[hit - from];
	s->p += 2;
	return 0;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Length of the valid UTF-8 sequence (2 to 4 bytes) at p, or 0: no overlong forms, no
 * surrogates, nothing above U+10FFFF (RFC 3629 table 3-7).
 */
static size_t utf8_valid(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* The string at s->p (on its opening quote), decoded into buf[0..cap) and terminated. */
static int kj_string(struct kj *s, char *buf, size_t cap, const char *what)
{
	const char *open = s->p;
	size_t n = 0;

	s->p++;
	for (;;) {
		const char *at = s->p;
		char tmp[4];
		size_t len;
		uint32_t cp;
		int rc;

		if (at == s->end)
			return kj_fail_at(s, open, "unterminated %s", what);
		if (*at == '"')
			break;
		if ((unsigned char)*at < 0x20)
			return kj_fail_at(s, at, "control character 0x%02x in %s (write it as an escape, e.g. \\n)",
					  (unsigned char)*at, what);
		if (*at == '\\') {
			rc = kj_escape(s, what, &cp);
			if (rc)
				return rc;
			len = utf8_put(cp, tmp);
		} else if ((unsigned char)*at < 0x80) {
			tmp[0] = *at;
			len = 1;
			s->p++;
		} else {
			len = utf8_valid((const unsigned char *)at, (const unsigned char *)s->end);
			if (!len)
				return kj_fail_at(s, at, "invalid UTF-8 in %s", what);
			memcpy(tmp, at, len);
			s->p += len;
		}
		if (n + len >= cap)
			return kj_fail_at(s, open, "%s longer than %zu bytes", what, cap - 1);
		memcpy(buf + n, tmp, len);
		n += len;
	}
	s->p++;
	buf[n] = '\0';
	return 0;
}

static bool is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at s->p; the literal is copied to buf. */
static int kj_number(struct kj *s, struct kcptun_json_value *v, char *buf, size_t cap)
{
	const char *q = s->p;
	uint64_t mag = 0;
	bool neg = false, big = false;

	if (*q == '-') {
		neg = true;
		q++;
	}
	if (!is_digit(q, s->end))
		return kj_fail_at(s, q, "expected a digit after '-'");
	if (*q == '0' && is_digit(q + 1, s->end))
		return kj_fail_at(s, q, "a number cannot start with 0 (leading zeros are not JSON)");
	for (; is_digit(q, s->end); q++) {
		unsigned d = (unsigned)(*q - '0');

		if (mag > (UINT64_MAX - d) / 10)
			big = true;
		else
			mag = mag * 10 + d;
	}
	v->integer = true;
	if (q < s->end && *q == '.') {
		v->integer = false;
		if (!is_digit(++q, s->end))
			return kj_fail_at(s, q, "expected a digit after '.'");
		while (is_digit(q, s->end))
			q++;
	}
	if (q < s->end && (*q == 'e' || *q == 'E')) {
		v->integer = false;
		if (++q < s->end && (*q == '+' || *q == '-'))
			q++;
		if (!is_digit(q, s->end))
			return kj_fail_at(s, q, "expected a digit in the exponent");
		while (is_digit(q, s->end))
			q++;
	}
	if ((size_t)(q - s->p) >= cap)
		return kj_fail_at(s, s->p, "number longer than %zu characters", cap - 1);
	memcpy(buf, s->p, (size_t)(q - s->p));
	buf[q - s->p] = '\0';
	v->fits = v->integer && !big && mag <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
	if (v->fits)
		v->i = neg ? (mag > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
	v->type = KCPTUN_JSON_NUMBER;
	s->p = q;
	return 0;
}

static bool kj_word(struct kj *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
		return false;
	s->p += n;
	return true;
}

/* The value of key at s->p, into v (strings and numbers decoded into buf). */
static int kj_value(struct kj *s, const char *key, struct kcptun_json_value *v, char *buf, size_t cap)
{
	char what[32];

	memset(v, 0, sizeof(*v));
	v->text = buf;
	if (s->p == s->end)
		return kj_fail_at(s, s->p, "missing the value of \"%s\"", key);
	if (*s->p == '"') {
		v->type = KCPTUN_JSON_STRING;
		return kj_string(s, buf, cap, "string");
	}
	if (*s->p == '{' || *s->p == '[')
		return kj_fail_at(s, s->p, "\"%s\": nested %s are not allowed: kcptun's options are strings, numbers "
				  "and booleans", key, *s->p == '{' ? "objects" : "arrays");
	if (*s->p == '-' || is_digit(s->p, s->end))
		return kj_number(s, v, buf, cap);
	v->b = kj_word(s, "true");
	if (v->b || kj_word(s, "false")) {
		v->type = KCPTUN_JSON_BOOL;
		v->text = v->b ? "true" : "false";
		return 0;
	}
	if (kj_word(s, "null")) {
		v->type = KCPTUN_JSON_NULL;
		v->text = "null";
		return 0;
	}
	return kj_fail_at(s, s->p, "expected the value of \"%s\" (a string, number, true, false or null), found %s",
			  key, kj_what(s, what, sizeof(what)));
}

/* kcptun's keys are plain words; anything else cannot match one, and must print safely. */
static int kj_key_check(struct kj *s, const char *at, const char *key)
{
	for (const char *k = key; *k; k++)
		if ((unsigned char)*k < 0x20 || (unsigned char)*k > 0x7e)
			return kj_fail_at(s, at, "a key with a control or non-ASCII character cannot be a kcptun option");
	return 0;
}

/* One "key": value pair at s->p, handed to cb. */
static int kj_member(struct kj *s, kcptun_json_cb cb, void *ctx)
{
	char key[KCPTUN_JSON_STR_MAX], val[KCPTUN_JSON_STR_MAX], what[32], msg[384];
	struct kcptun_json_value v;
	const char *at = s->p;
	unsigned line = s->line, col = (unsigned)(at - s->line_start) + 1;
	int rc;

	if (s->p == s->end || *s->p != '"')
		return kj_fail_at(s, s->p, "expected a key in double quotes, found %s", kj_what(s, what, sizeof(what)));
	rc = kj_string(s, key, sizeof(key), "key");
	if (!rc)
		rc = kj_key_check(s, at, key);
	if (rc)
		return rc;
	kj_skip_ws(s);
	if (s->p == s->end || *s->p != ':')
		return kj_fail_at(s, s->p, "expected ':' after \"%s\", found %s", key, kj_what(s, what, sizeof(what)));
	s->p++;
	kj_skip_ws(s);
	rc = kj_value(s, key, &v, val, sizeof(val));
	if (rc)
		return rc;
	v.line = line;
	v.col = col;
	msg[0] = '\0';
	kj_skip_ws(s);
	if (s->p == s->end || (*s->p != ',' && *s->p != '}'))
		return kj_fail_at(s, s->p, "expected ',' or '}' after the value of \"%s\", found %s", key,
				  kj_what(s, what, sizeof(what)));
	rc = cb(ctx, key, &v, msg, sizeof(msg));
	if (rc)
		snprintf(s->err, s->errlen, "%u:%u: %s", line, col, msg[0] ? msg : "rejected");
	return rc;
}

int kcptun_json_parse(const char *text, size_t len, kcptun_json_cb cb, void *ctx, char *err, size_t errlen)
{
	struct kj s = { .p = text, .end = text + len, .line_start = text, .line = 1, .err = err, .errlen = errlen };
	char what[32];
	int rc;

	if (len > KCPTUN_JSON_MAX_BYTES)
		return kj_fail_at(&s, text, "larger than %d bytes: not a kcptun config", KCPTUN_JSON_MAX_BYTES);
	kj_skip_ws(&s);
	if (s.p == s.end)
		return kj_fail_at(&s, s.p, "empty: expected a JSON object { \"key\": value, ... }");
	if (*s.p != '{')
		return kj_fail_at(&s, s.p, "expected '{' (a kcptun config is one JSON object), found %s",
				  kj_what(&s, what, sizeof(what)));
	s.p++;
	kj_skip_ws(&s);
	if (s.p < s.end && *s.p == '}') {
		s.p++;
	} else {
		for (;;) {
			rc = kj_member(&s, cb, ctx);
			if (rc)
				return rc;
			/* kj_member left s.p on ',' or '}' */
			if (*s.p++ == '}')
				break;
			kj_skip_ws(&s);
		}
	}
	kj_skip_ws(&s);
	if (s.p != s.end)
		return kj_fail_at(&s, s.p, "unexpected %s after the closing '}'", kj_what(&s, what, sizeof(what)));
	return 0;
}
