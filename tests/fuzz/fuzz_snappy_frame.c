/*
 * libFuzzer target for proto/snappy_frame, whose reader takes the (decrypted, FEC-repaired)
 * KCP byte stream of a peer. One input is used twice:
 *  1. as a framed stream: decoded whole with everything taken (the reference), and cut into
 *     pieces at points derived from the input, each piece in its own exact-size allocation
 *     (ASan catches any read past it), with the decoded bytes taken in random amounts;
 *  2. as data: encoded in writes of input-derived sizes (each into an exact-size buffer of
 *     snappy_frame_max() bytes), sometimes repeated past 65536 bytes to make several chunks,
 *     then decoded in pieces.
 * Properties: no crash or sanitizer report; in 1 both runs give the same bytes (length and
 * CRC-32 of the output, which may be far larger than the input) and the same result and
 * reason, errors are -EBADMSG with a documented reason and sticky, pending never exceeds one
 * chunk, a feed with nothing pending makes progress; in 2 the output fits snappy_frame_max(),
 * starts with the stream identifier once, and decodes to exactly the input.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "proto/snappy_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* round trips grown past a chunk: long enough for two full chunks and a short one */
#define BIG_INPUT_BYTES 140000

static void fail(const char *what, long v)
{
	fprintf(stderr, "%s (%ld)\n", what, v);
	abort();
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* What a decode produced: the output's length and CRC, or a copy when out is set. */
struct sink {
	size_t len;
	uint32_t crc;
	uint8_t *out;
	size_t cap;
};

static void sink_put(struct sink *k, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	if (k->out) {
		if (k->len + n > k->cap)
			fail("decoded more than was encoded", (long)(k->len + n));
		memcpy(k->out + k->len, p, n);
	} else {
		k->crc = crc32_ieee(k->crc, p, n);
	}
	k->len += n;
}

/* Takes some (rng) or all of what is pending into k. */
static void take(struct snappy_dec *d, struct sink *k, uint64_t *rng)
{
	const uint8_t *p;
	size_t pend = snappy_dec_pending(d, &p), n = pend;

	if (pend > SNAPPY_FRAME_MAX_CHUNK)
		fail("more than one chunk pending", (long)pend);
	if (rng && pend) {
		uint64_t x = rng_next(rng);

		n = x & 1 ? pend : (size_t)(x >> 32) % (pend + 1);
	}
	sink_put(k, p, n);
	snappy_dec_take(d, n);
}

/*
 * Feeds p[0..n) in pieces (rng: random sizes, each copied to an exact-size buffer, pending
 * bytes taken in random amounts; NULL: one piece, in place, everything taken), then drains
 * what is still pending. Returns 0 or the feed's error.
 */
static int decode(struct snappy_dec *d, const uint8_t *p, size_t n, uint64_t *rng, struct sink *k)
{
	size_t start = 0;

	while (start < n) {
		size_t len = n - start, off = 0;
		const uint8_t *piece = p + start;
		uint8_t *copy = NULL;

		if (rng) {
			uint64_t x = rng_next(rng);

			len = 1 + (size_t)(x >> 40) % (x & 2 ? 8 : 3000);
			if (len > n - start)
				len = n - start;
			copy = malloc(len);
			if (!copy)
				return 0;
			memcpy(copy, piece, len);
			piece = copy;
		}
		while (off < len) {
			const uint8_t *q;
			size_t pend = snappy_dec_pending(d, &q);
			ssize_t got = snappy_dec_feed(d, piece + off, len - off);

			if (got < 0) {
				free(copy);
				return (int)got;
			}
			if ((size_t)got > len - off)
				fail("consumed more than fed", (long)got);
			if (pend && got)
				fail("consumed while data was pending", (long)got);
			if (!pend && !got)
				fail("no progress with nothing pending", (long)(len - off));
			off += (size_t)got;
			take(d, k, rng);
		}
		free(copy);
		start += len;
	}
	take(d, k, NULL);
	return 0;
}

static void check_error(struct snappy_dec *d, int rc)
{
	int reason = snappy_dec_reason(d);

	if (!rc) {
		if (reason)
			fail("reason without an error", reason);
		return;
	}
	if (rc != -EBADMSG)
		fail("undocumented error", rc);
	if (reason < SNAPPY_FRAME_E_NO_ID || reason >= SNAPPY_FRAME_E_COUNT ||
	    !strcmp(snappy_frame_err_name(reason), "?"))
		fail("undocumented reason", reason);
	if (snappy_dec_feed(d, (const uint8_t *)"\xff\x06\x00\x00sNaPpY", 10) != -EBADMSG)
		fail("error not sticky", 0);
}

/* Decoders live across inputs (a fresh 140 KiB calloc per input halves the speed). */
static struct snappy_dec *ref, *cut;

static void check_decoder(const uint8_t *p, size_t n, uint64_t seed)
{
	struct sink k_ref = { 0 }, k_cut = { 0 };
	int rc_ref, rc_cut;

	snappy_dec_reset(ref);
	snappy_dec_reset(cut);
	rc_ref = decode(ref, p, n, NULL, &k_ref);
	check_error(ref, rc_ref);
	rc_cut = decode(cut, p, n, &seed, &k_cut);
	check_error(cut, rc_cut);
	if (rc_ref != rc_cut || snappy_dec_reason(ref) != snappy_dec_reason(cut))
		fail("result differs between splits", snappy_dec_reason(cut));
	if (k_ref.len != k_cut.len || k_ref.crc != k_cut.crc)
		fail("output differs between splits", (long)k_cut.len);
}

/* Encodes in[0..n) in writes of random sizes into one stream; returns its length or 0. */
static size_t encode(const uint8_t *in, size_t n, uint8_t *stream, uint64_t *rng)
{
	struct snappy_enc e = { 0 };
	size_t off = 0, len = 0;

	while (off < n) {
		uint64_t x = rng_next(rng);
		size_t k = x & 1 ? n - off : 1 + (size_t)(x >> 40) % (x & 2 ? 100 : 70000);
		size_t max, w;
		uint8_t *out;

		if (k > n - off)
			k = n - off;
		max = snappy_frame_max(k);
		out = malloc(max);
		if (!out)
			return 0;
		w = snappy_frame_encode(&e, in + off, k, out);
		if (w > max || w < (len ? 0 : SNAPPY_FRAME_ID_BYTES) +
					 8 * ((k + SNAPPY_FRAME_MAX_CHUNK - 1) / SNAPPY_FRAME_MAX_CHUNK))
			fail("encoded length out of bounds", (long)w);
		if ((len == 0) != !memcmp(out, snappy_frame_stream_id, SNAPPY_FRAME_ID_BYTES))
			fail("stream identifier missing or repeated", (long)len);
		memcpy(stream + len, out, w);
		free(out);
		len += w;
		off += k;
	}
	return len;
}

static void check_round_trip(const uint8_t *p, size_t n, uint64_t seed, bool big)
{
	size_t len = big ? BIG_INPUT_BYTES : n, enc_len;
	uint8_t *in = malloc(len + 1), *stream = NULL, *out = malloc(len + 1);
	struct snappy_dec *d = ref;
	struct sink k = { 0 };
	uint64_t rng = seed;

	/* at worst every byte is its own stored chunk: identifier + 8 + 1 per byte */
	stream = malloc(SNAPPY_FRAME_ID_BYTES + 9 * len);
	snappy_dec_reset(d);
	if (!in || !out || !stream || !n)
		goto out;
	for (size_t i = 0; i < len; i += n)
		memcpy(in + i, p, len - i < n ? len - i : n);
	enc_len = encode(in, len, stream, &rng);
	if (!enc_len)
		goto out;
	k.out = out;
	k.cap = len;
	if (decode(d, stream, enc_len, &rng, &k))
		fail("encoded stream rejected", snappy_dec_reason(d));
	if (k.len != len || memcmp(out, in, len))
		fail("round trip differs", (long)k.len);
out:
	free(in);
	free(out);
	free(stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = 0xcbf29ce484222325ULL;

	if (!ref)
		ref = snappy_dec_new();
	if (!cut)
		cut = snappy_dec_new();
	if (!ref || !cut)
		return 0;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ULL;
	seed |= 1;
	check_decoder(data, size, seed);
	check_round_trip(data, size, seed, false);
	if ((seed >> 8) % 32 == 0)
		check_round_trip(data, size, seed, true);
	return 0;
}
