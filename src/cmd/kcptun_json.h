/*
 * kcptun's JSON config file (kcptun-client -c FILE): a strict parser for the one flat
 * object kcptun reads, whose values are strings, numbers, booleans or null. Pure: text in,
 * one callback per key out, no I/O and no allocation. What the keys mean is kcptun_args.c's.
 *
 * Stricter than Go's encoding/json on purpose: a nested object or array, a string that is not
 * valid UTF-8 or holds a NUL, and anything after the closing brace are errors, so that a
 * config ferry reads is never one it silently misreads.
 */
#ifndef FERRY_CMD_KCPTUN_JSON_H
#define FERRY_CMD_KCPTUN_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* kcptun's configs are a few hundred bytes; a larger file is not one. */
#define KCPTUN_JSON_MAX_BYTES (64 * 1024)
/* Longest decoded key or string value, NUL included (ferry's --key takes 127 bytes). */
#define KCPTUN_JSON_STR_MAX 512

enum kcptun_json_type { KCPTUN_JSON_STRING, KCPTUN_JSON_NUMBER, KCPTUN_JSON_BOOL, KCPTUN_JSON_NULL };

struct kcptun_json_value {
	enum kcptun_json_type type;
	/* string: decoded, NUL-terminated; number: the literal as written; bool, null: the word */
	const char *text;
	bool integer;		/* number without fraction or exponent */
	bool fits;		/* ... and within int64: then i holds it */
	int64_t i;
	bool b;
	unsigned line, col;	/* of the key, 1-based (col counts bytes) */
};

/*
 * Called once per key, in file order (duplicates included: the caller decides). Returns 0
 * or a negative errno with a message in err; the parser prefixes it with "LINE:COL: ".
 */
typedef int (*kcptun_json_cb)(void *ctx, const char *key, const struct kcptun_json_value *v, char *err,
			      size_t errlen);

/* Parses text[0..len). Returns 0, or -EINVAL with "LINE:COL: message" in err. */
int kcptun_json_parse(const char *text, size_t len, kcptun_json_cb cb, void *ctx, char *err, size_t errlen);

#endif
