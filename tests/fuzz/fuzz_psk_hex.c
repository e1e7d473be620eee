/*
 * libFuzzer target for secure_psk_parse (spec/kcp.md §3.10), the parser of -K and --psk-file:
 * differential against a model written from the spec text: optional surrounding whitespace,
 * exactly 64 hex digits (either case), nothing else, and not all zero. The input is one
 * NUL-terminated text (bytes after an embedded NUL are ignored, as the C API sees them).
 * Properties: same verdict as the model; on success the key equals the model's decoding and
 * the fingerprint is 16 lowercase hex digits that depend only on the key; on failure the
 * output buffer is left untouched.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The model: trim, then 64 hex digits exactly, then not all zero. */
static int model(const char *s, uint8_t key[32])
{
	size_t b = 0, e = strlen(s);
	uint8_t any = 0;

	while (b < e && space(s[b]))
		b++;
	while (e > b && space(s[e - 1]))
		e--;
	if (e - b != 64)
		return -EINVAL;
	for (size_t i = 0; i < 32; i++) {
		int hi = hexv(s[b + 2 * i]), lo = hexv(s[b + 2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[i] = (uint8_t)(hi << 4 | lo);
		any |= key[i];
	}
	return any ? 0 : -EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	uint8_t got[32], want[32];
	char fp[17], fp2[17];
	int rc, mrc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(got, 0xa5, sizeof(got));
	rc = secure_psk_parse(text, got);
	mrc = model(text, want);
	if (rc != mrc) {
		fprintf(stderr, "parse %d, model %d\n", rc, mrc);
		abort();
	}
	if (rc) {
		for (int i = 0; i < 32; i++)
			if (got[i] != 0xa5)
				abort();
	} else {
		if (memcmp(got, want, 32))
			abort();
		secure_psk_fingerprint(got, fp);
		secure_psk_fingerprint(want, fp2);
		if (strlen(fp) != 16 || strcmp(fp, fp2) || strspn(fp, "0123456789abcdef") != 16)
			abort();
	}
	free(text);
	return 0;
}
