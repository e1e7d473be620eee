/*
 * proto/snappy_frame: the client's stream start captured in spec/kcp.md §2.11 (decoded to
 * the smux SYN, and written byte for byte), the masked CRC-32C, encode -> decode round trips
 * of sizes around the 65536-byte chunk limit with random and compressible data, the stored
 * vs compressed rule (compression must save 1/8), a multi-chunk stream with padding,
 * skippable and repeated identifier chunks decoded from every split and with partial takes,
 * the one-chunk-at-a-time pending rule, and one case per rejection reason, each sticky.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "proto/snappy_frame.h"
#include "test.h"

/* §2.11: stream identifier, a stored chunk of 8 bytes, the smux SYN of stream 3 */
static const uint8_t cap_start[] = {
	0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59,
	0x01, 0x0c, 0x00, 0x00, 0x44, 0x39, 0xac, 0x2f,
	0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
};
static const uint8_t smux_syn[] = { 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00 };

/* ---- building streams by hand ---- */

static size_t put_chunk(uint8_t *out, uint8_t type, const uint8_t *body, size_t len)
{
	out[0] = type;
	out[1] = (uint8_t)len;
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)(len >> 16);
	if (body && len)
		memcpy(out + 4, body, len);
	return 4 + len;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A stored chunk of data with its checksum. */
static size_t put_stored(uint8_t *out, const uint8_t *data, size_t n)
{
	out[0] = SNAPPY_CHUNK_STORED;
	out[1] = (uint8_t)(n + 4);
	out[2] = (uint8_t)((n + 4) >> 8);
	out[3] = (uint8_t)((n + 4) >> 16);
	put_le32(out + 4, snappy_frame_crc(data, n));
	memcpy(out + 8, data, n);
	return 8 + n;
}

/* A compressed chunk of data (whatever it saves) with the checksum of crc_of[0..crc_n). */
static size_t put_compressed(uint8_t *out, const uint8_t *data, size_t n, const uint8_t *crc_of,
			     size_t crc_n)
{
	size_t clen = snappy_max_compressed_length(n);

	CHECK_EQ(snappy_compress((const char *)data, n, (char *)out + 8, &clen), SNAPPY_OK);
	out[0] = SNAPPY_CHUNK_COMPRESSED;
	out[1] = (uint8_t)(clen + 4);
	out[2] = (uint8_t)((clen + 4) >> 8);
	out[3] = (uint8_t)((clen + 4) >> 16);
	put_le32(out + 4, snappy_frame_crc(crc_of, crc_n));
	return 8 + clen;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)test_rng();
}

/* Words from a small vocabulary: compresses well, but not to nothing. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *const words[] = { "kcp ", "smux ", "ferry ", "snappy ", "stream ", "\n" };

	for (size_t i = 0; i < n;) {
		const char *w = words[test_rng_below(6)];

		for (size_t k = 0; w[k] && i < n; k++)
			p[i++] = (uint8_t)w[k];
	}
}

/* ---- decoding with a caller's loop ---- */

enum take_policy { TAKE_ALL, TAKE_RANDOM };

/*
 * Decodes p[0..n) cut at the given points (ncuts of them, ascending) with the caller's
 * loop: feed, take, feed again. Returns 0 and the output in out[0..*outlen), or the feed's
 * error, or -EDEADLK when a feed made no progress with nothing pending.
 */
static int decode_cuts(struct snappy_dec *d, const uint8_t *p, size_t n, const size_t *cuts, int ncuts,
		       enum take_policy take, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t start = 0;

	*outlen = 0;
	for (int c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : n, off = start;

		while (true) {
			const uint8_t *q;
			size_t pend, k;
			ssize_t got = snappy_dec_feed(d, p + off, end - off);

			if (got < 0)
				return (int)got;
			off += (size_t)got;
			pend = snappy_dec_pending(d, &q);
			if (!pend && off == end)
				break;
			if (!pend && !got)
				return -EDEADLK;
			k = take == TAKE_ALL || !pend ? pend : test_rng_below((uint32_t)pend + 1);
			if (*outlen + k > cap)
				return -E2BIG;
			memcpy(out + *outlen, q, k);
			*outlen += k;
			snappy_dec_take(d, k);
		}
		start = end;
	}
	return 0;
}

static int decode_whole(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *outlen, int *reason)
{
	struct snappy_dec *d = snappy_dec_new();
	int rc;

	if (!d)
		return -ENOMEM;
	rc = decode_cuts(d, p, n, NULL, 0, TAKE_ALL, out, cap, outlen);
	if (reason)
		*reason = snappy_dec_reason(d);
	snappy_dec_free(d);
	return rc;
}

/* ---- the capture ---- */

static void test_snappy_captured_start_decodes_to_smux_syn(void)
{
	struct snappy_dec *d = snappy_dec_new();
	const uint8_t *p;

	CHECK(d != NULL);
	if (!d)
		return;
	CHECK_EQ(snappy_dec_feed(d, cap_start, sizeof(cap_start)), sizeof(cap_start));
	CHECK_EQ(snappy_dec_pending(d, &p), 8);
	CHECK(snappy_dec_pending(d, &p) == 8 && !memcmp(p, smux_syn, 8));
	snappy_dec_take(d, 8);
	CHECK_EQ(snappy_dec_pending(d, &p), 0);
	CHECK_EQ(snappy_dec_reason(d), 0);
	snappy_dec_free(d);
}

static void test_snappy_encodes_smux_syn_as_captured(void)
{
	struct snappy_enc e = { 0 };
	uint8_t out[128];

	CHECK_EQ(snappy_frame_max(8), 10 + 8 + 8 + 33);
	CHECK_EQ(snappy_frame_encode(&e, smux_syn, 8, out), sizeof(cap_start));
	CHECK(!memcmp(out, cap_start, sizeof(cap_start)));
	CHECK(e.started);
	/* the identifier only once per stream */
	CHECK_EQ(snappy_frame_encode(&e, smux_syn, 8, out), 16);
	CHECK(!memcmp(out, cap_start + 10, 16));
	/* an empty write writes nothing, not even an identifier */
	e.started = false;
	CHECK_EQ(snappy_frame_encode(&e, smux_syn, 0, out), 0);
	CHECK(!e.started);
}

static void test_snappy_masked_crc32c(void)
{
	CHECK_EQ(snappy_frame_crc(smux_syn, 8), 0x2fac3944u);
	/* crc32c("123456789") = 0xe3069283, rotated right by 15, plus 0xa282ead8 */
	CHECK_EQ(snappy_frame_crc((const uint8_t *)"123456789", 9), 0xc78ab0e5u);
	CHECK_EQ(snappy_frame_crc(smux_syn, 0), 0xa282ead8u);
}

static void test_snappy_stream_id_and_limits(void)
{
	CHECK(!memcmp(snappy_frame_stream_id, cap_start, 10));
	CHECK_EQ(snappy_max_compressed_length(SNAPPY_FRAME_MAX_CHUNK), SNAPPY_FRAME_MAX_COMPRESSED);
}

/* ---- round trips ---- */

enum fill { FILL_RANDOM, FILL_TEXT, FILL_ZEROS };

/* Walks an encoded stream: counts data chunks by type, checks each holds <= 65536 bytes. */
static void chunk_census(const uint8_t *p, size_t n, size_t *stored, size_t *compressed)
{
	size_t off = 10;

	*stored = *compressed = 0;
	CHECK(n >= 10 && !memcmp(p, snappy_frame_stream_id, 10));
	while (off + 4 <= n) {
		size_t len = p[off + 1] | (size_t)p[off + 2] << 8 | (size_t)p[off + 3] << 16;

		if (p[off] == SNAPPY_CHUNK_STORED) {
			(*stored)++;
			CHECK(len - 4 <= SNAPPY_FRAME_MAX_CHUNK);
		} else if (p[off] == SNAPPY_CHUNK_COMPRESSED) {
			(*compressed)++;
		} else {
			CHECK(false);
		}
		off += 4 + len;
	}
	CHECK_EQ(off, n);
}

static void round_trip(size_t n, enum fill fill)
{
	uint8_t *in = malloc(n + 1), *enc = malloc(snappy_frame_max(n)), *dec = malloc(n + 1);
	struct snappy_enc e = { 0 };
	size_t len, outlen = 0, stored, compressed, chunks = (n + 65535) / 65536;

	if (!in || !enc || !dec) {
		CHECK(false);
		goto out;
	}
	if (fill == FILL_RANDOM)
		fill_random(in, n);
	else if (fill == FILL_TEXT)
		fill_text(in, n);
	else
		memset(in, 0, n);
	len = snappy_frame_encode(&e, in, n, enc);
	CHECK(len <= snappy_frame_max(n));
	if (!n) {
		CHECK_EQ(len, 0);
		goto out;
	}
	chunk_census(enc, len, &stored, &compressed);
	CHECK_EQ(stored + compressed, chunks);
	if (fill == FILL_RANDOM) {
		/* random bytes never compress: every chunk stored, size exact */
		CHECK_EQ(compressed, 0);
		CHECK_EQ(len, 10 + 8 * chunks + n);
	} else if (n >= 100) {
		CHECK_EQ(stored, n % 65536 && n % 65536 < 20 ? 1 : 0);
		CHECK(len < n);
	}
	CHECK_EQ(decode_whole(enc, len, dec, n + 1, &outlen, NULL), 0);
	CHECK_EQ(outlen, n);
	CHECK(!memcmp(dec, in, n));
out:
	free(in);
	free(enc);
	free(dec);
}

static const size_t rt_sizes[] = { 0, 1, 100, 65535, 65536, 65537, 200000 };

static void test_snappy_round_trip_random_data(void)
{
	test_rng_seed(11);
	for (size_t i = 0; i < sizeof(rt_sizes) / sizeof(rt_sizes[0]); i++)
		round_trip(rt_sizes[i], FILL_RANDOM);
}

static void test_snappy_round_trip_compressible_data(void)
{
	test_rng_seed(12);
	for (size_t i = 0; i < sizeof(rt_sizes) / sizeof(rt_sizes[0]); i++) {
		round_trip(rt_sizes[i], FILL_TEXT);
		round_trip(rt_sizes[i], FILL_ZEROS);
	}
}

/* Many small writes on one stream (one per smux frame, as kcptun flushes) decode as one. */
static void test_snappy_many_writes_decode_as_one_stream(void)
{
	static uint8_t in[20000], enc[40000], dec[20000];
	struct snappy_enc e = { 0 };
	size_t len = 0, off = 0, outlen;

	test_rng_seed(13);
	fill_text(in, sizeof(in) / 2);
	fill_random(in + sizeof(in) / 2, sizeof(in) / 2);
	while (off < sizeof(in)) {
		size_t k = 1 + test_rng_below(3000);

		if (k > sizeof(in) - off)
			k = sizeof(in) - off;
		CHECK(len + snappy_frame_max(k) <= sizeof(enc));
		len += snappy_frame_encode(&e, in + off, k, enc + len);
		off += k;
	}
	CHECK(!memcmp(enc, snappy_frame_stream_id, 10));
	CHECK(memcmp(enc + 10, snappy_frame_stream_id, 10));
	CHECK_EQ(decode_whole(enc, len, dec, sizeof(dec), &outlen, NULL), 0);
	CHECK_EQ(outlen, sizeof(in));
	CHECK(!memcmp(dec, in, sizeof(in)));
}

/*
 * 800 bytes: zeros then r random bytes, r = 0..800, so the block grows a byte at a time.
 * The chunk is compressed exactly when the block is shorter than 800 - 100 = 700 bytes,
 * and then carries the block as compressed.
 */
static void test_snappy_stores_unless_compression_saves_an_eighth(void)
{
	static uint8_t in[800], enc[2048], block[2048];
	int seen_stored = 0, seen_compressed = 0, bad = 0;
	bool saw_699 = false, saw_700 = false;

	test_rng_seed(14);
	fill_random(in, sizeof(in));
	for (size_t r = 0; r <= sizeof(in); r++) {
		static uint8_t buf[800];
		struct snappy_enc e = { 0 };
		size_t clen = sizeof(block), len, body;

		memset(buf, 0, sizeof(buf) - r);
		memcpy(buf + sizeof(buf) - r, in, r);
		CHECK_EQ(snappy_compress((const char *)buf, sizeof(buf), (char *)block, &clen), SNAPPY_OK);
		len = snappy_frame_encode(&e, buf, sizeof(buf), enc);
		body = enc[11] | (size_t)enc[12] << 8 | (size_t)enc[13] << 16;
		if (clen < 700) {
			seen_compressed++;
			saw_699 |= clen == 699;
			if (enc[10] != SNAPPY_CHUNK_COMPRESSED || body != clen + 4 || len != 18 + clen ||
			    memcmp(enc + 18, block, clen))
				bad++;
		} else {
			seen_stored++;
			saw_700 |= clen == 700;
			if (enc[10] != SNAPPY_CHUNK_STORED || body != 804 || len != 818 ||
			    memcmp(enc + 18, buf, 800))
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK(seen_stored > 10);
	CHECK(seen_compressed > 10);
	/* the sweep crossed the boundary one byte at a time */
	CHECK(saw_699);
	CHECK(saw_700);
}

/* ---- pending: one chunk at a time ---- */

static bool pending_is(struct snappy_dec *d, const char *want, size_t n)
{
	const uint8_t *p;

	return snappy_dec_pending(d, &p) == n && (!n || !memcmp(p, want, n));
}

static void test_snappy_feed_stops_at_each_chunk_until_taken(void)
{
	static uint8_t s[256];
	struct snappy_dec *d = snappy_dec_new();
	const uint8_t *p;
	size_t n = 0, first, second;

	if (!d)
		return;
	memcpy(s, snappy_frame_stream_id, 10);
	n = 10;
	n += first = put_stored(s + n, (const uint8_t *)"first", 5);
	n += second = put_stored(s + n, (const uint8_t *)"second!", 7);
	n += put_stored(s + n, (const uint8_t *)"3", 1);
	CHECK_EQ(snappy_dec_feed(d, s, n), 10 + first);
	CHECK(pending_is(d, "first", 5));
	/* nothing consumed while data is pending */
	CHECK_EQ(snappy_dec_feed(d, s + 10 + first, n - 10 - first), 0);
	snappy_dec_take(d, 2);
	CHECK(pending_is(d, "rst", 3));
	CHECK_EQ(snappy_dec_feed(d, s + 10 + first, n - 10 - first), 0);
	/* taking more than pending takes what is there */
	snappy_dec_take(d, 100);
	CHECK_EQ(snappy_dec_pending(d, &p), 0);
	CHECK_EQ(snappy_dec_feed(d, s + 10 + first, n - 10 - first), second);
	CHECK(pending_is(d, "second!", 7));
	snappy_dec_take(d, 7);
	CHECK_EQ(snappy_dec_feed(d, s + 10 + first + second, n - 10 - first - second), 9);
	CHECK_EQ(snappy_dec_pending(d, &p), 1);
	snappy_dec_free(d);
}

/* ---- a stream with every kind of chunk, in every split ---- */

static size_t mixed_stream(uint8_t *s, uint8_t *want, size_t *wantlen)
{
	static uint8_t a[300], b[1500], c[40];
	static const uint8_t skip[3] = { 0xde, 0xad, 0x00 };
	size_t n = 0;

	test_rng_seed(15);
	fill_random(a, sizeof(a));
	fill_text(b, sizeof(b));
	fill_random(c, sizeof(c));
	memcpy(s, snappy_frame_stream_id, 10);
	n = 10;
	n += put_stored(s + n, a, sizeof(a));
	n += put_compressed(s + n, b, sizeof(b), b, sizeof(b));
	n += put_chunk(s + n, SNAPPY_CHUNK_PADDING, NULL, 0);
	memset(s + n + 4, 0, 5);
	n += put_chunk(s + n, SNAPPY_CHUNK_PADDING, NULL, 5);
	n += put_chunk(s + n, 0x80, skip, 3);
	n += put_stored(s + n, c, 0);
	memcpy(s + n, snappy_frame_stream_id, 10);
	n += 10;
	n += put_chunk(s + n, 0xfd, skip, 0);
	n += put_stored(s + n, c, sizeof(c));
	n += put_compressed(s + n, c, 0, c, 0);
	memcpy(want, a, sizeof(a));
	memcpy(want + sizeof(a), b, sizeof(b));
	memcpy(want + sizeof(a) + sizeof(b), c, sizeof(c));
	*wantlen = sizeof(a) + sizeof(b) + sizeof(c);
	return n;
}

static void test_snappy_mixed_stream_decodes_whole(void)
{
	static uint8_t s[4096], want[2048], got[2048];
	size_t n, wantlen, gotlen;

	n = mixed_stream(s, want, &wantlen);
	CHECK_EQ(decode_whole(s, n, got, sizeof(got), &gotlen, NULL), 0);
	CHECK_EQ(gotlen, 1840);
	CHECK(!memcmp(got, want, wantlen));
}

static void test_snappy_mixed_stream_decodes_from_every_cut_point(void)
{
	static uint8_t s[4096], want[2048], got[2048];
	struct snappy_dec *d;
	size_t n, wantlen, gotlen;
	int bad = 0;

	n = mixed_stream(s, want, &wantlen);
	for (size_t cut = 0; cut <= n; cut++) {
		d = snappy_dec_new();
		if (!d)
			return;
		if (decode_cuts(d, s, n, &cut, 1, TAKE_ALL, got, sizeof(got), &gotlen) ||
		    gotlen != wantlen || memcmp(got, want, wantlen))
			bad++;
		snappy_dec_free(d);
	}
	CHECK_EQ(bad, 0);
}

static void test_snappy_mixed_stream_decodes_in_one_byte_pieces(void)
{
	static uint8_t s[4096], want[2048], got[2048];
	static size_t cuts[4096];
	struct snappy_dec *d = snappy_dec_new();
	size_t n, wantlen, gotlen;

	if (!d)
		return;
	n = mixed_stream(s, want, &wantlen);
	for (size_t i = 0; i < n; i++)
		cuts[i] = i + 1;
	CHECK_EQ(decode_cuts(d, s, n, cuts, (int)n - 1, TAKE_ALL, got, sizeof(got), &gotlen), 0);
	CHECK_EQ(gotlen, wantlen);
	CHECK(!memcmp(got, want, wantlen));
	snappy_dec_free(d);
}

/* Two 65536-byte chunks and a short one, in random pieces, taken in random amounts. */
static void test_snappy_large_stream_in_random_pieces_and_takes(void)
{
	static uint8_t in[140000], enc[160000], got[140000];
	static size_t cuts[4096];
	struct snappy_enc e = { 0 };
	size_t len, gotlen;
	int bad = 0;

	test_rng_seed(16);
	fill_text(in, 70000);
	fill_random(in + 70000, sizeof(in) - 70000);
	CHECK(snappy_frame_max(sizeof(in)) <= sizeof(enc));
	len = snappy_frame_encode(&e, in, sizeof(in), enc);
	for (int round = 0; round < 20; round++) {
		struct snappy_dec *d = snappy_dec_new();
		size_t at = 0;
		int ncuts = 0;

		if (!d)
			return;
		while (ncuts < 4096) {
			at += 1 + test_rng_below(round < 10 ? 64 : 20000);
			if (at >= len)
				break;
			cuts[ncuts++] = at;
		}
		if (decode_cuts(d, enc, len, cuts, ncuts, round % 2 ? TAKE_RANDOM : TAKE_ALL, got,
				sizeof(got), &gotlen) ||
		    gotlen != sizeof(in) || memcmp(got, in, sizeof(in)))
			bad++;
		snappy_dec_free(d);
	}
	CHECK_EQ(bad, 0);
}

static void test_snappy_padding_and_skippable_chunks_are_skipped(void)
{
	static uint8_t s[80000], got[16];
	size_t n = 0, gotlen;

	memcpy(s, snappy_frame_stream_id, 10);
	n = 10;
	n += put_chunk(s + n, SNAPPY_CHUNK_PADDING, NULL, 0);
	memset(s + n + 4, 0xaa, 10);
	n += put_chunk(s + n, SNAPPY_CHUNK_PADDING, NULL, 10);
	/* a skippable chunk longer than any data chunk: skipped, not buffered */
	memset(s + n + 4, 0x55, 70000);
	n += put_chunk(s + n, 0xfd, NULL, 70000);
	n += put_chunk(s + n, 0x80, (const uint8_t *)"xyz", 3);
	n += put_stored(s + n, (const uint8_t *)"abc", 3);
	n += put_chunk(s + n, 0xc0, NULL, 0);
	CHECK_EQ(decode_whole(s, n, got, sizeof(got), &gotlen, NULL), 0);
	CHECK_EQ(gotlen, 3);
	CHECK(!memcmp(got, "abc", 3));
}

/* ---- rejections ---- */

/* Decodes s whole: must fail with reason; then the same decoder refuses a valid stream. */
static void check_rejected(const uint8_t *s, size_t n, int reason, size_t want_out)
{
	static uint8_t got[140000];
	struct snappy_dec *d = snappy_dec_new();
	size_t gotlen;

	if (!d)
		return;
	CHECK_EQ(decode_cuts(d, s, n, NULL, 0, TAKE_ALL, got, sizeof(got), &gotlen), -EBADMSG);
	CHECK_EQ(snappy_dec_reason(d), reason);
	CHECK_EQ(gotlen, want_out);
	CHECK_EQ(snappy_dec_feed(d, cap_start, sizeof(cap_start)), -EBADMSG);
	CHECK_EQ(snappy_dec_reason(d), reason);
	snappy_dec_free(d);
}

static void test_snappy_rejects_stream_without_identifier(void)
{
	uint8_t s[32];

	put_stored(s, smux_syn, 8);
	check_rejected(s, 16, SNAPPY_FRAME_E_NO_ID, 0);
	/* padding first is not an identifier either */
	put_chunk(s, SNAPPY_CHUNK_PADDING, NULL, 0);
	check_rejected(s, 4, SNAPPY_FRAME_E_NO_ID, 0);
}

static void test_snappy_rejects_bad_identifier(void)
{
	uint8_t s[64];

	memcpy(s, cap_start, sizeof(cap_start));
	s[9] = 'X';
	check_rejected(s, sizeof(cap_start), SNAPPY_FRAME_E_BAD_ID, 0);
	/* right body, wrong length */
	put_chunk(s, SNAPPY_CHUNK_STREAM_ID, (const uint8_t *)"sNaPpYY", 7);
	check_rejected(s, 11, SNAPPY_FRAME_E_BAD_ID, 0);
	/* a repeated identifier must match too; the chunk before it is delivered */
	memcpy(s, cap_start, sizeof(cap_start));
	memcpy(s + sizeof(cap_start), snappy_frame_stream_id, 10);
	s[sizeof(cap_start) + 4] = 'S';
	check_rejected(s, sizeof(cap_start) + 10, SNAPPY_FRAME_E_BAD_ID, 8);
}

static void test_snappy_rejects_reserved_unskippable_types(void)
{
	uint8_t s[32];

	memcpy(s, snappy_frame_stream_id, 10);
	put_chunk(s + 10, 0x02, NULL, 0);
	check_rejected(s, 14, SNAPPY_FRAME_E_RESERVED, 0);
	put_chunk(s + 10, 0x7f, (const uint8_t *)"abcd", 4);
	check_rejected(s, 18, SNAPPY_FRAME_E_RESERVED, 0);
}

static void test_snappy_rejects_checksum_mismatch(void)
{
	static uint8_t s[4096], text[1000];
	size_t n;

	/* stored: a flipped data bit, then a flipped checksum bit */
	memcpy(s, cap_start, sizeof(cap_start));
	s[25] ^= 0x01;
	check_rejected(s, sizeof(cap_start), SNAPPY_FRAME_E_CRC, 0);
	memcpy(s, cap_start, sizeof(cap_start));
	s[17] ^= 0x80;
	check_rejected(s, sizeof(cap_start), SNAPPY_FRAME_E_CRC, 0);
	/* compressed: the checksum is over the uncompressed bytes, not the block */
	test_rng_seed(17);
	fill_text(text, sizeof(text));
	memcpy(s, snappy_frame_stream_id, 10);
	n = 10 + put_compressed(s + 10, text, sizeof(text), s + 18, 20);
	check_rejected(s, n, SNAPPY_FRAME_E_CRC, 0);
	/* the unmasked CRC-32C is not accepted either */
	memcpy(s, cap_start, sizeof(cap_start));
	put_le32(s + 14, 0xa7364694u);
	check_rejected(s, sizeof(cap_start), SNAPPY_FRAME_E_CRC, 0);
}

static void test_snappy_rejects_corrupt_block(void)
{
	static uint8_t s[200000], zeros[65537];
	uint8_t bad[16];
	size_t n;

	memset(bad, 0xff, sizeof(bad));
	memcpy(s, snappy_frame_stream_id, 10);
	n = 10 + put_chunk(s + 10, SNAPPY_CHUNK_COMPRESSED, bad, sizeof(bad));
	check_rejected(s, n, SNAPPY_FRAME_E_CORRUPT, 0);
	/* a valid block of 65537 bytes: one more than a chunk may hold */
	memset(zeros, 0, sizeof(zeros));
	n = 10 + put_compressed(s + 10, zeros, sizeof(zeros), zeros, sizeof(zeros));
	check_rejected(s, n, SNAPPY_FRAME_E_CORRUPT, 0);
	/* a block cut short by one byte */
	n = 10 + put_compressed(s + 10, zeros, 1000, zeros, 1000);
	put_chunk(s + 10, SNAPPY_CHUNK_COMPRESSED, NULL, n - 10 - 4 - 1);
	check_rejected(s, n - 1, SNAPPY_FRAME_E_CORRUPT, 0);
}

/* Over-long chunks are refused from the header alone, before their body arrives. */
static void test_snappy_rejects_chunk_lengths_out_of_bounds(void)
{
	uint8_t s[32];
	struct snappy_dec *d;

	memcpy(s, snappy_frame_stream_id, 10);
	put_chunk(s + 10, SNAPPY_CHUNK_STORED, NULL, 4 + 65536 + 1);
	check_rejected(s, 14, SNAPPY_FRAME_E_LENGTH, 0);
	put_chunk(s + 10, SNAPPY_CHUNK_COMPRESSED, NULL, 4 + SNAPPY_FRAME_MAX_COMPRESSED + 1);
	check_rejected(s, 14, SNAPPY_FRAME_E_LENGTH, 0);
	put_chunk(s + 10, SNAPPY_CHUNK_STORED, NULL, 3);
	check_rejected(s, 14, SNAPPY_FRAME_E_LENGTH, 0);
	put_chunk(s + 10, SNAPPY_CHUNK_COMPRESSED, NULL, 0);
	check_rejected(s, 14, SNAPPY_FRAME_E_LENGTH, 0);
	put_chunk(s + 10, SNAPPY_CHUNK_STORED, NULL, 0xffffff);
	check_rejected(s, 14, SNAPPY_FRAME_E_LENGTH, 0);

	/* the largest allowed lengths pass the header check */
	d = snappy_dec_new();
	if (!d)
		return;
	put_chunk(s + 10, SNAPPY_CHUNK_STORED, NULL, 4 + 65536);
	put_chunk(s + 14, SNAPPY_CHUNK_COMPRESSED, NULL, 4 + SNAPPY_FRAME_MAX_COMPRESSED);
	CHECK_EQ(snappy_dec_feed(d, s, 14), 14);
	CHECK_EQ(snappy_dec_reason(d), 0);
	snappy_dec_free(d);
	d = snappy_dec_new();
	if (!d)
		return;
	CHECK_EQ(snappy_dec_feed(d, s, 10), 10);
	CHECK_EQ(snappy_dec_feed(d, s + 14, 4), 4);
	CHECK_EQ(snappy_dec_reason(d), 0);
	snappy_dec_free(d);
}

/* After reset the decoder forgets an error and a half-read chunk, and wants an identifier. */
static void test_snappy_reset_starts_a_new_stream(void)
{
	struct snappy_dec *d = snappy_dec_new();

	if (!d)
		return;
	CHECK_EQ(snappy_dec_feed(d, cap_start + 10, 16), -EBADMSG);
	CHECK_EQ(snappy_dec_reason(d), SNAPPY_FRAME_E_NO_ID);
	snappy_dec_reset(d);
	CHECK_EQ(snappy_dec_reason(d), 0);
	CHECK_EQ(snappy_dec_feed(d, cap_start, 20), 20);
	snappy_dec_reset(d);
	CHECK_EQ(snappy_dec_feed(d, cap_start, sizeof(cap_start)), sizeof(cap_start));
	CHECK(pending_is(d, (const char *)smux_syn, 8));
	snappy_dec_reset(d);
	CHECK(pending_is(d, "", 0));
	CHECK_EQ(snappy_dec_feed(d, cap_start + 10, 16), -EBADMSG);
	snappy_dec_free(d);
}

static void test_snappy_err_names(void)
{
	CHECK_STR(snappy_frame_err_name(0), "ok");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_NO_ID), "no_id");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_BAD_ID), "bad_id");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_RESERVED), "reserved");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_LENGTH), "length");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_CORRUPT), "corrupt");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_CRC), "crc");
	CHECK_STR(snappy_frame_err_name(SNAPPY_FRAME_E_COUNT), "?");
}

int main(void)
{
	RUN(test_snappy_captured_start_decodes_to_smux_syn);
	RUN(test_snappy_encodes_smux_syn_as_captured);
	RUN(test_snappy_masked_crc32c);
	RUN(test_snappy_stream_id_and_limits);
	RUN(test_snappy_round_trip_random_data);
	RUN(test_snappy_round_trip_compressible_data);
	RUN(test_snappy_many_writes_decode_as_one_stream);
	RUN(test_snappy_stores_unless_compression_saves_an_eighth);
	RUN(test_snappy_feed_stops_at_each_chunk_until_taken);
	RUN(test_snappy_mixed_stream_decodes_whole);
	RUN(test_snappy_mixed_stream_decodes_from_every_cut_point);
	RUN(test_snappy_mixed_stream_decodes_in_one_byte_pieces);
	RUN(test_snappy_large_stream_in_random_pieces_and_takes);
	RUN(test_snappy_padding_and_skippable_chunks_are_skipped);
	RUN(test_snappy_rejects_stream_without_identifier);
	RUN(test_snappy_rejects_bad_identifier);
	RUN(test_snappy_rejects_reserved_unskippable_types);
	RUN(test_snappy_rejects_checksum_mismatch);
	RUN(test_snappy_rejects_corrupt_block);
	RUN(test_snappy_rejects_chunk_lengths_out_of_bounds);
	RUN(test_snappy_reset_starts_a_new_stream);
	RUN(test_snappy_err_names);
	TEST_EXIT();
}
