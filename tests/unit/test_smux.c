/*
 * proto/smux: the frame bytes of spec/kcp.md §2.11 (SYN and PSH "hello\n" of stream 3, the
 * UPD kcptun-client sends after reading it) written and parsed, the same stream parsed in
 * every split (every cut point, 1-byte pieces, random pieces) giving the same frames and
 * bytes, backpressure through data() (nothing or part taken, resumed without loss), each
 * fatal protocol error with its reason and stickiness, and the v2 flow-control arithmetic
 * including the wrap of the u32 counters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smux.h"
#include "test.h"

/* ---- a handler that records everything it is given ---- */

#define REC_MAX_EVENTS 64
#define REC_MAX_DATA 200000

struct event {
	struct smux_hdr h;
	uint32_t consumed, window;
	size_t data_at;			/* data bytes received before this frame */
};

enum take_policy {
	TAKE_ALL,
	TAKE_NONE,
	TAKE_UP_TO_LIMIT,		/* at most rec->limit bytes per call */
	TAKE_RANDOM,			/* 0..n, often all */
	TAKE_OVERCLAIM,			/* takes n, says n + 100 */
};

struct rec {
	struct event ev[REC_MAX_EVENTS];
	int nev;
	uint8_t data[REC_MAX_DATA];
	uint32_t data_sid[REC_MAX_DATA];
	size_t ndata;
	int frame_rc;			/* what frame() returns */
	enum take_policy take;
	size_t limit;
	int data_calls;
	bool bad_call;			/* data() with nothing, or for a stream that has no PSH open */
	uint32_t psh_sid;
	uint32_t psh_left;
};

static int rec_frame(void *ctx, const struct smux_hdr *h, uint32_t consumed, uint32_t window)
{
	struct rec *r = ctx;

	if (r->nev < REC_MAX_EVENTS) {
		r->ev[r->nev].h = *h;
		r->ev[r->nev].consumed = consumed;
		r->ev[r->nev].window = window;
		r->ev[r->nev].data_at = r->ndata;
	}
	r->nev++;
	if (h->cmd == SMUX_CMD_PSH) {
		r->psh_sid = h->sid;
		r->psh_left = h->len;
	}
	return r->frame_rc;
}

static size_t rec_data(void *ctx, uint32_t sid, const uint8_t *p, size_t n)
{
	struct rec *r = ctx;
	size_t take = n;

	r->data_calls++;
	if (!n || sid != r->psh_sid || n > r->psh_left)
		r->bad_call = true;
	switch (r->take) {
	case TAKE_ALL:
		break;
	case TAKE_NONE:
		take = 0;
		break;
	case TAKE_UP_TO_LIMIT:
		take = n < r->limit ? n : r->limit;
		break;
	case TAKE_RANDOM:
		take = test_rng_below(3) ? n : test_rng_below((uint32_t)n + 1);
		break;
	case TAKE_OVERCLAIM:
		break;
	}
	if (r->ndata + take > REC_MAX_DATA) {
		r->bad_call = true;
		return 0;
	}
	memcpy(r->data + r->ndata, p, take);
	for (size_t i = 0; i < take; i++)
		r->data_sid[r->ndata + i] = sid;
	r->ndata += take;
	r->psh_left -= (uint32_t)take;
	return r->take == TAKE_OVERCLAIM ? take + 100 : take;
}

static struct rec *rec_new(void)
{
	return calloc(1, sizeof(struct rec));
}

static struct smux_handler handler(struct rec *r)
{
	struct smux_handler h = { .ctx = r, .frame = rec_frame, .data = rec_data };

	return h;
}

static bool hdr_eq(const struct smux_hdr *a, const struct smux_hdr *b)
{
	return a->ver == b->ver && a->cmd == b->cmd && a->len == b->len && a->sid == b->sid;
}

/* Same frames in the same order, each after the same data, and the same data per stream. */
static bool rec_eq(const struct rec *a, const struct rec *b)
{
	if (a->nev != b->nev || a->ndata != b->ndata || a->bad_call || b->bad_call)
		return false;
	for (int i = 0; i < a->nev && i < REC_MAX_EVENTS; i++) {
		const struct event *x = &a->ev[i], *y = &b->ev[i];

		if (!hdr_eq(&x->h, &y->h) || x->consumed != y->consumed || x->window != y->window ||
		    x->data_at != y->data_at)
			return false;
	}
	return !memcmp(a->data, b->data, a->ndata) &&
	       !memcmp(a->data_sid, b->data_sid, a->ndata * sizeof(a->data_sid[0]));
}

/*
 * Feeds p[0..n) as one piece, calling smux_feed() again on what it did not consume (as a
 * caller does once the sink drains). Returns 0, or the error; *calls counts the feeds.
 */
static ssize_t feed_piece(struct smux_parser *ps, struct rec *r, const uint8_t *p, size_t n, int *calls)
{
	struct smux_handler h = handler(r);
	size_t off = 0;
	int stuck = 0;

	while (off < n) {
		ssize_t got = smux_feed(ps, &h, p + off, n - off);

		if (calls)
			(*calls)++;
		if (got < 0)
			return got;
		if ((size_t)got > n - off)
			return -E2BIG;
		off += (size_t)got;
		/* a policy that never takes anything would spin: give up, the caller checks */
		if (!got && ++stuck > 1000)
			return -EAGAIN;
	}
	return 0;
}

/* ---- the stream used by the split tests ---- */

static size_t put_frame(uint8_t *out, uint8_t ver, uint8_t cmd, uint32_t sid, const uint8_t *payload,
			uint16_t len)
{
	smux_hdr_write(out, ver, cmd, len, sid);
	if (len)
		memcpy(out + SMUX_HDR_BYTES, payload, len);
	return SMUX_HDR_BYTES + (size_t)len;
}

/*
 * v2: SYN 3, PSH 3 "hello\n", UPD 3, SYN 5, PSH 5 (psh_len bytes), PSH 3 of length 0,
 * NOP, PSH 3 (1 byte), PSH 5 (300 bytes), FIN 3, UPD 5, FIN 5. Returns its length.
 */
static size_t test_stream(uint8_t *out, uint16_t psh_len)
{
	static uint8_t payload[SMUX_MAX_PAYLOAD];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + i / 256);
	n += put_frame(out + n, 2, SMUX_CMD_SYN, 3, NULL, 0);
	n += put_frame(out + n, 2, SMUX_CMD_PSH, 3, (const uint8_t *)"hello\n", 6);
	smux_upd_write(out + n, 2, 3, 6, 0x00200000);
	n += SMUX_HDR_BYTES + SMUX_UPD_BYTES;
	n += put_frame(out + n, 2, SMUX_CMD_SYN, 5, NULL, 0);
	n += put_frame(out + n, 2, SMUX_CMD_PSH, 5, payload, psh_len);
	n += put_frame(out + n, 2, SMUX_CMD_PSH, 3, NULL, 0);
	n += put_frame(out + n, 2, SMUX_CMD_NOP, 0, NULL, 0);
	n += put_frame(out + n, 2, SMUX_CMD_PSH, 3, payload + 1000, 1);
	n += put_frame(out + n, 2, SMUX_CMD_PSH, 5, payload + 2000, 300);
	n += put_frame(out + n, 2, SMUX_CMD_FIN, 3, NULL, 0);
	smux_upd_write(out + n, 2, 5, 0xfffffff0, 0x10000);
	n += SMUX_HDR_BYTES + SMUX_UPD_BYTES;
	n += put_frame(out + n, 2, SMUX_CMD_FIN, 5, NULL, 0);
	return n;
}

/* The stream fed whole, everything taken. */
static struct rec *reference(const uint8_t *p, size_t n)
{
	struct rec *r = rec_new();
	struct smux_parser ps;
	struct smux_handler h = handler(r);

	smux_parser_init(&ps, 2);
	CHECK_EQ(smux_feed(&ps, &h, p, n), (ssize_t)n);
	return r;
}

/* ---- golden bytes (§2.11) ---- */

static const uint8_t cap_syn[] = { 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00 };
static const uint8_t cap_psh[] = {
	0x01, 0x02, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o', '\n',
};
static const uint8_t cap_upd[] = {
	0x02, 0x04, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00,
	0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00,
};

static void test_smux_writes_captured_frames(void)
{
	uint8_t b[SMUX_HDR_BYTES + SMUX_UPD_BYTES];
	static const uint8_t fin[] = { 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00 };
	static const uint8_t nop[] = { 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t wide[] = { 0x02, 0x02, 0xfe, 0xff, 0x01, 0x02, 0x03, 0x04 };

	smux_hdr_write(b, 1, SMUX_CMD_SYN, 0, 3);
	CHECK(!memcmp(b, cap_syn, 8));
	smux_hdr_write(b, 1, SMUX_CMD_PSH, 6, 3);
	CHECK(!memcmp(b, cap_psh, 8));
	smux_hdr_write(b, 1, SMUX_CMD_FIN, 0, 3);
	CHECK(!memcmp(b, fin, 8));
	smux_hdr_write(b, 2, SMUX_CMD_NOP, 0, 0);
	CHECK(!memcmp(b, nop, 8));
	/* both fields little-endian */
	smux_hdr_write(b, 2, SMUX_CMD_PSH, 0xfffe, 0x04030201);
	CHECK(!memcmp(b, wide, 8));
	smux_upd_write(b, 2, 3, 6, 0x00200000);
	CHECK(!memcmp(b, cap_upd, sizeof(cap_upd)));
}

static void test_smux_parses_captured_syn_and_psh(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;
	uint8_t b[sizeof(cap_syn) + sizeof(cap_psh)];

	memcpy(b, cap_syn, sizeof(cap_syn));
	memcpy(b + sizeof(cap_syn), cap_psh, sizeof(cap_psh));
	smux_parser_init(&ps, 1);
	CHECK_EQ(smux_feed(&ps, &h, b, sizeof(b)), sizeof(b));
	CHECK_EQ(r->nev, 2);
	CHECK_EQ(r->ev[0].h.ver, 1);
	CHECK_EQ(r->ev[0].h.cmd, SMUX_CMD_SYN);
	CHECK_EQ(r->ev[0].h.len, 0);
	CHECK_EQ(r->ev[0].h.sid, 3);
	CHECK_EQ(r->ev[1].h.cmd, SMUX_CMD_PSH);
	CHECK_EQ(r->ev[1].h.len, 6);
	CHECK_EQ(r->ev[1].h.sid, 3);
	CHECK_EQ(r->ev[1].data_at, 0);
	CHECK_EQ(r->ndata, 6);
	CHECK(!memcmp(r->data, "hello\n", 6));
	CHECK_EQ(r->data_sid[0], 3);
	CHECK_EQ(r->data_sid[5], 3);
	CHECK_EQ(r->data_calls, 1);
	CHECK(!r->bad_call);
	CHECK_EQ(smux_parser_reason(&ps), 0);
	free(r);
}

static void test_smux_parses_captured_upd_v2(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;

	smux_parser_init(&ps, 2);
	CHECK_EQ(smux_feed(&ps, &h, cap_upd, sizeof(cap_upd)), sizeof(cap_upd));
	CHECK_EQ(r->nev, 1);
	CHECK_EQ(r->ev[0].h.ver, 2);
	CHECK_EQ(r->ev[0].h.cmd, SMUX_CMD_UPD);
	CHECK_EQ(r->ev[0].h.len, 8);
	CHECK_EQ(r->ev[0].h.sid, 3);
	CHECK_EQ(r->ev[0].consumed, 6);
	CHECK_EQ(r->ev[0].window, 0x00200000);
	CHECK_EQ(r->data_calls, 0);
	free(r);
}

static void test_smux_parses_fin_and_nop(void)
{
	static const uint8_t b[] = {
		0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
	};
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;

	smux_parser_init(&ps, 1);
	CHECK_EQ(smux_feed(&ps, &h, b, sizeof(b)), sizeof(b));
	CHECK_EQ(r->nev, 2);
	CHECK_EQ(r->ev[0].h.cmd, SMUX_CMD_NOP);
	CHECK_EQ(r->ev[0].h.sid, 0);
	CHECK_EQ(r->ev[1].h.cmd, SMUX_CMD_FIN);
	CHECK_EQ(r->ev[1].h.sid, 0xffffffffu);
	free(r);
}

/* ---- splits ---- */

/* The reference's content, so the split tests compare against known values too. */
static void test_smux_reference_stream_frames(void)
{
	static uint8_t s[4096];
	size_t n = test_stream(s, 2500);
	struct rec *r = reference(s, n);

	CHECK_EQ(n, 12 * 8 + 2 * 8 + 6 + 2500 + 1 + 300);
	CHECK_EQ(r->nev, 11);		/* the PSH of length 0 is not among them */
	CHECK_EQ(r->ndata, 6 + 2500 + 1 + 300);
	CHECK_EQ(r->ev[2].h.cmd, SMUX_CMD_UPD);
	CHECK_EQ(r->ev[2].consumed, 6);
	CHECK_EQ(r->ev[2].data_at, 6);
	CHECK_EQ(r->ev[4].h.cmd, SMUX_CMD_PSH);
	CHECK_EQ(r->ev[4].h.len, 2500);
	CHECK_EQ(r->ev[5].h.cmd, SMUX_CMD_NOP);
	CHECK_EQ(r->ev[5].data_at, 6 + 2500);
	CHECK_EQ(r->ev[9].h.cmd, SMUX_CMD_UPD);
	CHECK_EQ(r->ev[9].consumed, 0xfffffff0u);
	CHECK_EQ(r->ev[9].window, 0x10000);
	CHECK_EQ(r->ev[10].h.cmd, SMUX_CMD_FIN);
	CHECK_EQ(r->ev[10].h.sid, 5);
	CHECK_EQ(r->data_sid[6 + 2500], 3);
	CHECK_EQ(r->data[6 + 2500], (uint8_t)(1000 * 7 + 1000 / 256));
	free(r);
}

static void test_smux_same_frames_for_every_cut_point(void)
{
	static uint8_t s[4096];
	size_t n = test_stream(s, 2500);
	struct rec *want = reference(s, n);
	struct rec *r = rec_new();
	int bad = 0;

	for (size_t cut = 0; cut <= n; cut++) {
		struct smux_parser ps;

		memset(r, 0, sizeof(*r));
		smux_parser_init(&ps, 2);
		if (feed_piece(&ps, r, s, cut, NULL) || feed_piece(&ps, r, s + cut, n - cut, NULL) ||
		    !rec_eq(r, want) || ps.have || ps.in_payload)
			bad++;
	}
	CHECK_EQ(bad, 0);
	free(r);
	free(want);
}

static void test_smux_same_frames_in_one_byte_pieces(void)
{
	static uint8_t s[4096];
	size_t n = test_stream(s, 2500);
	struct rec *want = reference(s, n);
	struct rec *r = rec_new();
	struct smux_parser ps;
	int bad = 0;

	smux_parser_init(&ps, 2);
	for (size_t i = 0; i < n; i++)
		if (feed_piece(&ps, r, s + i, 1, NULL))
			bad++;
	CHECK_EQ(bad, 0);
	CHECK(rec_eq(r, want));
	/* one data() call per payload byte */
	CHECK_EQ(r->data_calls, 6 + 2500 + 1 + 300);
	free(r);
	free(want);
}

/* A 65535-byte PSH in random pieces, with data() taking random amounts. */
static void test_smux_same_frames_in_random_pieces_and_takes(void)
{
	static uint8_t s[SMUX_MAX_PAYLOAD + 1024];
	size_t n = test_stream(s, SMUX_MAX_PAYLOAD);
	struct rec *want = reference(s, n);
	struct rec *r = rec_new();
	int bad = 0;

	test_rng_seed(7);
	for (int round = 0; round < 50; round++) {
		struct smux_parser ps;
		size_t off = 0;

		memset(r, 0, sizeof(*r));
		r->take = round % 2 ? TAKE_RANDOM : TAKE_ALL;
		smux_parser_init(&ps, 2);
		while (off < n) {
			size_t k = 1 + test_rng_below(round < 25 ? 20 : 5000);

			if (k > n - off)
				k = n - off;
			if (feed_piece(&ps, r, s + off, k, NULL))
				bad++;
			off += k;
		}
		if (!rec_eq(r, want))
			bad++;
	}
	CHECK_EQ(bad, 0);
	free(r);
	free(want);
}

/* ---- backpressure ---- */

static void test_smux_data_taking_nothing_stops_after_the_header(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;
	uint8_t b[sizeof(cap_syn) + sizeof(cap_psh)];

	memcpy(b, cap_syn, sizeof(cap_syn));
	memcpy(b + sizeof(cap_syn), cap_psh, sizeof(cap_psh));
	smux_parser_init(&ps, 1);
	r->take = TAKE_NONE;
	/* SYN and the PSH header consumed, the payload not */
	CHECK_EQ(smux_feed(&ps, &h, b, sizeof(b)), 16);
	CHECK_EQ(r->nev, 2);
	CHECK_EQ(r->ndata, 0);
	/* still full: nothing consumed, no frame repeated */
	CHECK_EQ(smux_feed(&ps, &h, b + 16, 6), 0);
	CHECK_EQ(r->nev, 2);
	CHECK_EQ(r->data_calls, 2);
	/* drained: the same bytes resume */
	r->take = TAKE_ALL;
	CHECK_EQ(smux_feed(&ps, &h, b + 16, 6), 6);
	CHECK_EQ(r->nev, 2);
	CHECK_EQ(r->ndata, 6);
	CHECK(!memcmp(r->data, "hello\n", 6));
	CHECK(!r->bad_call);
	free(r);
}

static void test_smux_data_taking_part_returns_exact_count_and_resumes(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;
	uint8_t b[64];
	size_t n = 0;
	ssize_t got;

	n += put_frame(b + n, 1, SMUX_CMD_PSH, 9, (const uint8_t *)"abcdefghij", 10);
	n += put_frame(b + n, 1, SMUX_CMD_FIN, 9, NULL, 0);
	smux_parser_init(&ps, 1);
	r->take = TAKE_UP_TO_LIMIT;
	r->limit = 4;
	got = smux_feed(&ps, &h, b, n);
	CHECK_EQ(got, 8 + 4);
	CHECK_EQ(ps.left, 6);
	got = smux_feed(&ps, &h, b + 12, n - 12);
	CHECK_EQ(got, 4);
	r->limit = 100;
	got = smux_feed(&ps, &h, b + 16, n - 16);
	CHECK_EQ(got, n - 16);
	CHECK_EQ(r->nev, 2);
	CHECK_EQ(r->ev[1].h.cmd, SMUX_CMD_FIN);
	CHECK_EQ(r->ev[1].data_at, 10);
	CHECK_EQ(r->ndata, 10);
	CHECK(!memcmp(r->data, "abcdefghij", 10));
	CHECK_EQ(r->data_calls, 3);
	CHECK(!r->bad_call);
	free(r);
}

/* The whole test stream with a sink taking at most 3 bytes a call: same as the reference. */
static void test_smux_slow_sink_gets_the_same_bytes(void)
{
	static uint8_t s[4096];
	size_t n = test_stream(s, 2500);
	struct rec *want = reference(s, n);
	struct rec *r = rec_new();
	struct smux_parser ps;
	int calls = 0;

	smux_parser_init(&ps, 2);
	r->take = TAKE_UP_TO_LIMIT;
	r->limit = 3;
	CHECK_EQ(feed_piece(&ps, r, s, n, &calls), 0);
	CHECK(rec_eq(r, want));
	/* 2500 payload bytes alone need ceil(2500 / 3) calls */
	CHECK(calls >= 834);
	free(r);
	free(want);
}

/* A sink claiming more than it was offered took what it was offered, no more. */
static void test_smux_data_claiming_more_than_offered_takes_the_offer(void)
{
	static uint8_t s[4096];
	size_t n = test_stream(s, 2500);
	struct rec *want = reference(s, n);
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;

	smux_parser_init(&ps, 2);
	r->take = TAKE_OVERCLAIM;
	CHECK_EQ(smux_feed(&ps, &h, s, 100), 100);
	CHECK_EQ(smux_feed(&ps, &h, s + 100, n - 100), n - 100);
	CHECK(rec_eq(r, want));
	free(r);
	free(want);
}

/* ---- protocol errors ---- */

/* Feeds b to a fresh parser of version ver: returns the feed's result, reason in *reason. */
static ssize_t feed_fresh(uint8_t ver, const uint8_t *b, size_t n, int *reason, struct rec *r)
{
	struct smux_handler h = handler(r);
	struct smux_parser ps;
	ssize_t got;

	smux_parser_init(&ps, ver);
	got = smux_feed(&ps, &h, b, n);
	*reason = smux_parser_reason(&ps);
	/* sticky: a valid SYN afterwards fails the same way and reaches no handler */
	if (got < 0) {
		int nev = r->nev;
		uint8_t syn[8];

		smux_hdr_write(syn, ver, SMUX_CMD_SYN, 0, 3);
		CHECK_EQ(smux_feed(&ps, &h, syn, sizeof(syn)), got);
		CHECK_EQ(r->nev, nev);
		CHECK_EQ(smux_parser_reason(&ps), *reason);
	}
	return got;
}

static void check_rejected(uint8_t ver, uint8_t fver, uint8_t cmd, uint16_t len, int want_reason)
{
	struct rec *r = rec_new();
	uint8_t b[16 + 8];
	int reason = -1;

	/* a valid SYN first: delivered before the bad header ends the session */
	smux_hdr_write(b, ver, SMUX_CMD_SYN, 0, 1);
	smux_hdr_write(b + 8, fver, cmd, len, 3);
	memset(b + 16, 0, 8);
	CHECK_EQ(feed_fresh(ver, b, sizeof(b), &reason, r), -EPROTO);
	CHECK_EQ(reason, want_reason);
	CHECK_EQ(r->nev, 1);
	CHECK_EQ(r->data_calls, 0);
	free(r);
}

static void test_smux_version_mismatch_is_fatal(void)
{
	check_rejected(1, 2, SMUX_CMD_SYN, 0, SMUX_E_VERSION);
	check_rejected(2, 1, SMUX_CMD_PSH, 4, SMUX_E_VERSION);
	check_rejected(1, 0, SMUX_CMD_NOP, 0, SMUX_E_VERSION);
	check_rejected(2, 0xff, SMUX_CMD_UPD, 8, SMUX_E_VERSION);
}

static void test_smux_unknown_cmd_is_fatal(void)
{
	check_rejected(1, 1, 5, 0, SMUX_E_CMD);
	check_rejected(2, 2, 5, 0, SMUX_E_CMD);
	check_rejected(2, 2, 0xff, 8, SMUX_E_CMD);
}

static void test_smux_upd_in_v1_is_fatal(void)
{
	check_rejected(1, 1, SMUX_CMD_UPD, 8, SMUX_E_UPD_V1);
}

static void test_smux_upd_of_wrong_length_is_fatal(void)
{
	check_rejected(2, 2, SMUX_CMD_UPD, 0, SMUX_E_UPD_LENGTH);
	check_rejected(2, 2, SMUX_CMD_UPD, 7, SMUX_E_UPD_LENGTH);
	check_rejected(2, 2, SMUX_CMD_UPD, 9, SMUX_E_UPD_LENGTH);
	check_rejected(2, 2, SMUX_CMD_UPD, 16, SMUX_E_UPD_LENGTH);
}

static void test_smux_syn_fin_nop_with_payload_are_fatal(void)
{
	check_rejected(1, 1, SMUX_CMD_SYN, 1, SMUX_E_PAYLOAD);
	check_rejected(2, 2, SMUX_CMD_SYN, 6, SMUX_E_PAYLOAD);
	check_rejected(1, 1, SMUX_CMD_FIN, 1, SMUX_E_PAYLOAD);
	check_rejected(2, 2, SMUX_CMD_NOP, 0xffff, SMUX_E_PAYLOAD);
}

/* The bad header is judged as soon as its 8 bytes are in, before any payload. */
static void test_smux_bad_header_fails_on_its_last_byte(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;
	uint8_t b[8];

	smux_hdr_write(b, 1, SMUX_CMD_SYN, 4, 3);
	smux_parser_init(&ps, 1);
	CHECK_EQ(smux_feed(&ps, &h, b, 7), 7);
	CHECK_EQ(smux_parser_reason(&ps), 0);
	CHECK_EQ(smux_feed(&ps, &h, b + 7, 1), -EPROTO);
	CHECK_EQ(smux_parser_reason(&ps), SMUX_E_PAYLOAD);
	CHECK_EQ(r->nev, 0);
	free(r);
}

static void test_smux_frame_error_is_passed_through_and_sticky(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;

	smux_parser_init(&ps, 1);
	r->frame_rc = -ECONNRESET;
	CHECK_EQ(smux_feed(&ps, &h, cap_psh, sizeof(cap_psh)), -ECONNRESET);
	CHECK_EQ(r->nev, 1);
	CHECK_EQ(r->data_calls, 0);
	CHECK_EQ(smux_parser_reason(&ps), SMUX_E_HANDLER);
	r->frame_rc = 0;
	CHECK_EQ(smux_feed(&ps, &h, cap_syn, sizeof(cap_syn)), -ECONNRESET);
	CHECK_EQ(r->nev, 1);

	/* the same for the frame() of a UPD, called once its payload is complete */
	memset(r, 0, sizeof(*r));
	smux_parser_init(&ps, 2);
	r->frame_rc = -ENOSPC;
	CHECK_EQ(smux_feed(&ps, &h, cap_upd, 12), 12);
	CHECK_EQ(r->nev, 0);
	CHECK_EQ(smux_feed(&ps, &h, cap_upd + 12, 4), -ENOSPC);
	CHECK_EQ(r->nev, 1);
	CHECK_EQ(r->ev[0].window, 0x00200000);
	CHECK_EQ(smux_parser_reason(&ps), SMUX_E_HANDLER);
	free(r);
}

static void test_smux_psh_of_length_zero_is_ignored(void)
{
	struct rec *r = rec_new();
	struct smux_handler h = handler(r);
	struct smux_parser ps;
	uint8_t b[16];

	smux_hdr_write(b, 1, SMUX_CMD_PSH, 0, 3);
	smux_hdr_write(b + 8, 1, SMUX_CMD_SYN, 0, 5);
	smux_parser_init(&ps, 1);
	CHECK_EQ(smux_feed(&ps, &h, b, sizeof(b)), sizeof(b));
	CHECK_EQ(r->nev, 1);
	CHECK_EQ(r->ev[0].h.cmd, SMUX_CMD_SYN);
	CHECK_EQ(r->ev[0].h.sid, 5);
	CHECK_EQ(r->data_calls, 0);
	CHECK_EQ(smux_parser_reason(&ps), 0);
	free(r);
}

static void test_smux_err_names(void)
{
	CHECK_STR(smux_err_name(0), "ok");
	CHECK_STR(smux_err_name(SMUX_E_VERSION), "version");
	CHECK_STR(smux_err_name(SMUX_E_CMD), "cmd");
	CHECK_STR(smux_err_name(SMUX_E_UPD_V1), "upd_v1");
	CHECK_STR(smux_err_name(SMUX_E_UPD_LENGTH), "upd_length");
	CHECK_STR(smux_err_name(SMUX_E_PAYLOAD), "payload");
	CHECK_STR(smux_err_name(SMUX_E_HANDLER), "handler");
	CHECK_STR(smux_err_name(SMUX_E_COUNT), "?");
}

/* ---- v2 flow control ---- */

static void test_flow_initial_window_is_262144(void)
{
	struct smux_flow f;

	smux_flow_init(&f, 2 * 1024 * 1024);
	CHECK_EQ(f.peer_window, 262144);
	CHECK_EQ(f.window, 2 * 1024 * 1024);
	CHECK_EQ(smux_flow_send_room(&f), 262144);
	smux_flow_on_written(&f, 1000);
	CHECK_EQ(smux_flow_send_room(&f), 261144);
	smux_flow_on_written(&f, 261144);
	CHECK_EQ(smux_flow_send_room(&f), 0);
	/* a sender that overshoots (a whole frame past the room) still sees 0, not a wrap */
	smux_flow_on_written(&f, 4096);
	CHECK_EQ(smux_flow_send_room(&f), 0);
}

static void test_flow_upd_opens_the_window(void)
{
	struct smux_flow f;

	smux_flow_init(&f, 65536);
	smux_flow_on_written(&f, 6);
	CHECK_EQ(smux_flow_on_upd(&f, 6, 0x00200000), 0);
	CHECK_EQ(f.peer_consumed, 6);
	CHECK_EQ(smux_flow_send_room(&f), 0x00200000);
	smux_flow_on_written(&f, 100000);
	CHECK_EQ(smux_flow_send_room(&f), 0x00200000 - 100000);
	/* a smaller window than in flight: no room, not an error */
	CHECK_EQ(smux_flow_on_upd(&f, 50006, 1000), 0);
	CHECK_EQ(smux_flow_send_room(&f), 0);
	/* everything consumed, exactly written */
	CHECK_EQ(smux_flow_on_upd(&f, 100006, 1000), 0);
	CHECK_EQ(smux_flow_send_room(&f), 1000);
}

static void test_flow_upd_consuming_more_than_written_is_fatal(void)
{
	struct smux_flow f;

	smux_flow_init(&f, 65536);
	smux_flow_on_written(&f, 100);
	CHECK_EQ(smux_flow_on_upd(&f, 101, 5000), -EPROTO);
	/* the bad UPD changed nothing */
	CHECK_EQ(f.peer_consumed, 0);
	CHECK_EQ(f.peer_window, 262144);
	CHECK_EQ(smux_flow_send_room(&f), 262144 - 100);
	CHECK_EQ(smux_flow_on_upd(&f, 100, 5000), 0);
}

static void test_flow_counters_wrap_past_2_pow_32(void)
{
	struct smux_flow f;

	smux_flow_init(&f, 65536);
	f.written = 0xffffff00u;
	f.peer_consumed = 0xffffff00u;
	CHECK_EQ(smux_flow_send_room(&f), 262144);
	smux_flow_on_written(&f, 0x200);
	CHECK_EQ(f.written, 0x100);
	CHECK_EQ(smux_flow_send_room(&f), 262144 - 0x200);
	/* consumed before the wrap, then after it */
	CHECK_EQ(smux_flow_on_upd(&f, 0xffffff80u, 262144), 0);
	CHECK_EQ(smux_flow_send_room(&f), 262144 - 0x180);
	CHECK_EQ(smux_flow_on_upd(&f, 0x50, 262144), 0);
	CHECK_EQ(smux_flow_send_room(&f), 262144 - 0xb0);
	/* one past written, across the wrap */
	CHECK_EQ(smux_flow_on_upd(&f, 0x101, 262144), -EPROTO);
	CHECK_EQ(f.peer_consumed, 0x50);
	/* a UPD from far behind (more than 2^31 in flight) reads as "ahead": refused like smux */
	CHECK_EQ(smux_flow_on_upd(&f, 0x100 + 0x80000000u, 262144), -EPROTO);
	CHECK_EQ(smux_flow_on_upd(&f, 0x100 + 0x80000001u, 262144), 0);
	CHECK_EQ(smux_flow_send_room(&f), 0);
}

static void test_flow_read_asks_upd_first_then_every_half_window(void)
{
	struct smux_flow f;

	smux_flow_init(&f, 0x00200000);
	CHECK(!smux_flow_on_read(&f, 0));
	CHECK(smux_flow_on_read(&f, 6));
	CHECK_EQ(f.consumed, 6);
	smux_flow_upd_sent(&f);
	CHECK_EQ(f.consumed_at_upd, 6);
	CHECK(!smux_flow_on_read(&f, 0x00100000 - 1));
	CHECK(smux_flow_on_read(&f, 1));
	CHECK_EQ(f.consumed, 0x00100000 + 6);
	smux_flow_upd_sent(&f);
	CHECK(!smux_flow_on_read(&f, 1000));
	/* not sent yet: asks again on the next read */
	CHECK(smux_flow_on_read(&f, 0x00100000));
	CHECK(smux_flow_on_read(&f, 1));
	smux_flow_upd_sent(&f);
	CHECK(!smux_flow_on_read(&f, 1));
}

static void test_flow_read_counter_wraps(void)
{
	struct smux_flow f;

	smux_flow_init(&f, 1000);
	f.upd_sent = true;
	f.consumed = 0xfffffe00u;
	f.consumed_at_upd = 0xfffffe00u;
	CHECK(!smux_flow_on_read(&f, 499));
	CHECK(smux_flow_on_read(&f, 0x200 - 499));
	CHECK_EQ(f.consumed, 0);
	smux_flow_upd_sent(&f);
	CHECK(!smux_flow_on_read(&f, 499));
	CHECK(smux_flow_on_read(&f, 1));
	CHECK_EQ(f.consumed, 500);
}

int main(void)
{
	RUN(test_smux_writes_captured_frames);
	RUN(test_smux_parses_captured_syn_and_psh);
	RUN(test_smux_parses_captured_upd_v2);
	RUN(test_smux_parses_fin_and_nop);
	RUN(test_smux_reference_stream_frames);
	RUN(test_smux_same_frames_for_every_cut_point);
	RUN(test_smux_same_frames_in_one_byte_pieces);
	RUN(test_smux_same_frames_in_random_pieces_and_takes);
	RUN(test_smux_data_taking_nothing_stops_after_the_header);
	RUN(test_smux_data_taking_part_returns_exact_count_and_resumes);
	RUN(test_smux_slow_sink_gets_the_same_bytes);
	RUN(test_smux_data_claiming_more_than_offered_takes_the_offer);
	RUN(test_smux_version_mismatch_is_fatal);
	RUN(test_smux_unknown_cmd_is_fatal);
	RUN(test_smux_upd_in_v1_is_fatal);
	RUN(test_smux_upd_of_wrong_length_is_fatal);
	RUN(test_smux_syn_fin_nop_with_payload_are_fatal);
	RUN(test_smux_bad_header_fails_on_its_last_byte);
	RUN(test_smux_frame_error_is_passed_through_and_sticky);
	RUN(test_smux_psh_of_length_zero_is_ignored);
	RUN(test_smux_err_names);
	RUN(test_flow_initial_window_is_262144);
	RUN(test_flow_upd_opens_the_window);
	RUN(test_flow_upd_consuming_more_than_written_is_fatal);
	RUN(test_flow_counters_wrap_past_2_pow_32);
	RUN(test_flow_read_asks_upd_first_then_every_half_window);
	RUN(test_flow_read_counter_wraps);
	TEST_EXIT();
}
