/*
 * proto/kcp (spec/kcp.md §1, test plan §4.1). Two parts:
 *
 * Targeted checks, one behaviour each, driving one session by hand with crafted datagrams
 * and a virtual clock: the §2.11 captures byte for byte, ACK packing and filtering, input
 * validation (§1.1), una, the RTO estimator (§1.7), fast/early/timeout retransmission
 * (§1.6, §1.8), congestion control (§1.9), dead link (§1.12), stream coalescing and message
 * fragments (§1.4), backpressure, window probing (§1.10) and the interval clock (§1.11).
 *
 * A deterministic simulator: two sessions, a virtual clock that jumps to the next event
 * (min of both kcp_check() and the next arrival), and a seeded link per direction with loss,
 * delay + jitter, reordering by k packets, duplication and a rate-limited bounded queue.
 * Every scenario asserts that each side delivers exactly the byte stream the other wrote,
 * that no datagram exceeds the mtu, that every segment is well formed with len ≤ mss, and
 * keeps completion time and retransmissions under bounds recorded from a first run.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kcp.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_OF(a, b) ((a) > (b) ? (a) : (b))

static inline int32_t d32(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* ---- wire helpers ---- */

struct seg {
	uint32_t conv;
	uint8_t cmd, frg;
	uint16_t wnd;
	uint32_t ts, sn, una, len;
	const uint8_t *data;
};

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Appends a segment at p; returns its size. */
static size_t put_seg(uint8_t *p, uint32_t conv, uint8_t cmd, uint8_t frg, uint16_t wnd,
		      uint32_t ts, uint32_t sn, uint32_t una, const void *data, uint32_t len)
{
	wr32(p, conv);
	p[4] = cmd;
	p[5] = frg;
	p[6] = (uint8_t)wnd;
	p[7] = (uint8_t)(wnd >> 8);
	wr32(p + 8, ts);
	wr32(p + 12, sn);
	wr32(p + 16, una);
	wr32(p + 20, len);
	if (len)
		memcpy(p + 24, data, len);
	return 24 + len;
}

/* Splits KCP bytes into segments; -1 if they are not an exact sequence of valid ones. */
static int parse_segs(const uint8_t *p, size_t n, struct seg *out, int max)
{
	int count = 0;

	while (n) {
		struct seg s;

		if (n < 24 || count == max)
			return -1;
		s.conv = kcp_peek_u32(p);
		s.cmd = p[4];
		s.frg = p[5];
		s.wnd = (uint16_t)(p[6] | p[7] << 8);
		s.ts = kcp_peek_u32(p + 8);
		s.sn = kcp_peek_u32(p + 12);
		s.una = kcp_peek_u32(p + 16);
		s.len = kcp_peek_u32(p + 20);
		s.data = p + 24;
		if (s.cmd < KCP_CMD_PUSH || s.cmd > KCP_CMD_WINS || s.len > n - 24)
			return -1;
		if (s.cmd != KCP_CMD_PUSH && s.len)
			return -1;
		out[count++] = s;
		p += 24 + s.len;
		n -= 24 + s.len;
	}
	return count;
}

/* ---- capture: a session whose datagrams are recorded ---- */

#define CAP_MAX 256

struct cap {
	uint32_t reserved;
	uint32_t now;			/* set by the test; stamps each datagram */
	uint32_t n;
	struct {
		uint32_t at, len;
		uint8_t b[KCP_MTU_MAX];
	} d[CAP_MAX];
};

static struct cap cap;

static void cap_out(void *ctx, uint8_t *buf, size_t len)
{
	struct cap *c = ctx;

	CHECK(len <= KCP_MTU_MAX);
	CHECK(len > c->reserved);
	if (c->n == CAP_MAX || len > KCP_MTU_MAX)
		return;
	c->d[c->n].at = c->now;
	c->d[c->n].len = (uint32_t)len;
	memcpy(c->d[c->n].b, buf, len);
	c->n++;
}

/* Segments of captured datagram i (KCP bytes after the headroom). */
static int cap_segs(uint32_t i, struct seg *out, int max)
{
	if (i >= cap.n)
		return -1;
	return parse_segs(cap.d[i].b + cap.reserved, cap.d[i].len - cap.reserved, out, max);
}

static struct kcp_pool *pool;

/* A session with mss 100 (mtu 124, no headroom), windows 32, interval 10, nc 1. */
static void small_params(struct kcp_params *p)
{
	kcp_params_default(p);
	p->mtu = 124;
	p->interval = 10;
	p->nc = 1;
}

static struct kcp *cap_session(uint32_t conv, const struct kcp_params *p)
{
	memset(&cap, 0, sizeof(cap));
	cap.reserved = p->reserved;
	return kcp_new(conv, p, pool, cap_out, &cap);
}

static int input(struct kcp *k, uint32_t now, const uint8_t *p, size_t n)
{
	cap.now = now;
	return kcp_input(k, now, p, n, true);
}

static void flush_at(struct kcp *k, uint32_t now)
{
	cap.now = now;
	kcp_flush(k, now);
}

/* One ACK segment as its own datagram. */
static int input_ack(struct kcp *k, uint32_t now, uint32_t conv, uint32_t sn, uint32_t ts,
		     uint32_t una, uint16_t wnd)
{
	uint8_t d[24];

	put_seg(d, conv, KCP_CMD_ACK, 0, wnd, ts, sn, una, NULL, 0);
	return input(k, now, d, sizeof(d));
}

static void send_bytes(struct kcp *k, size_t n)
{
	static uint8_t zeros[65536];

	CHECK_EQ(kcp_send(k, zeros, n), (long long)n);
}

/* ---- §2.11 captures ---- */

#define CONV_MIN 0x601c7698u

static const uint8_t smux_syn[8] = { 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00 };

/* Minimal profile, datagram 2 after the 20-byte crypt header (nonce + CRC). */
static const uint8_t capture_push_sn1[38] = {
	0x98, 0x76, 0x1c, 0x60, 0x51, 0x00, 0x00, 0x02, 0x3f, 0x04, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00,
	0x01, 0x02, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
};

/* Datagram 3, server → client: ACK sn=1 ts=1087 una=2 wnd=1022. */
static const uint8_t capture_ack_sn1[24] = {
	0x98, 0x76, 0x1c, 0x60, 0x52, 0x00, 0xfe, 0x03, 0x3f, 0x04, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* Default profile, datagram 1 after decryption, the FEC header (8 bytes) removed. */
static const uint8_t capture_default_push[42] = {
	0xf4, 0x0a, 0xe1, 0xc1, 0x51, 0x00, 0x00, 0x02, 0x02, 0x05, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00,
	0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59,
	0x01, 0x0c, 0x00, 0x00, 0x44, 0x39, 0xac, 0x2f,
};

/* kcptun --mode fast, mtu 1350, --crypt none (20 bytes of headroom), the given windows. */
static void kcptun_params(struct kcp_params *p, uint32_t reserved, uint32_t snd_wnd, uint32_t rcv_wnd)
{
	kcp_params_default(p);
	kcp_params_mode(p, KCP_MODE_FAST);
	p->mtu = 1350;
	p->reserved = reserved;
	p->snd_wnd = snd_wnd;
	p->rcv_wnd = rcv_wnd;
}

/* The server of the capture receives PUSH sn=0 and sn=1 and answers with the captured ACK:
 * the ACK for sn=0 is left out (implied by una=2), wnd = 1024 - 2 unread segments. */
static void test_kcp_golden_server_ack_matches_capture(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64], got[64];
	struct seg s[4];

	kcptun_params(&p, 20, 1024, 1024);
	k = cap_session(CONV_MIN, &p);
	CHECK(k);
	if (!k)
		return;
	CHECK_EQ(kcp_mss(k), 1306);
	put_seg(d, CONV_MIN, KCP_CMD_PUSH, 0, 512, 1080, 0, 0, smux_syn, 8);
	CHECK_EQ(input(k, 1085, d, 32), 0);
	CHECK_EQ(input(k, 1088, capture_push_sn1, sizeof(capture_push_sn1)), 0);
	CHECK_EQ(cap.n, 0);	/* no ack_nodelay, nothing in flight: ACKs wait for a flush */
	flush_at(k, 1090);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap.d[0].len, 44);
	CHECK(!memcmp(cap.d[0].b + 20, capture_ack_sn1, 24));
	CHECK_EQ(cap_segs(0, s, 4), 1);

	CHECK_EQ(kcp_readable(k), 22);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), 22);
	CHECK(!memcmp(got, smux_syn, 8));
	CHECK(!memcmp(got + 8, capture_push_sn1 + 24, 14));
	CHECK_EQ(kcp_stats(k)->in_segs, 2);
	CHECK_EQ(kcp_stats(k)->out_segs, 1);
	CHECK_EQ(kcp_stats(k)->out_bytes, 24);
	kcp_free(k);
}

/* The client of the capture: SYN at 1080 (sn=0), "hello\n" at 1087 gives the captured
 * 58-byte datagram (20 bytes of headroom + the 38 captured KCP bytes). */
static void test_kcp_golden_client_push_matches_capture(void)
{
	static const uint8_t psh[14] = { 0x01, 0x02, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00,
					 'h', 'e', 'l', 'l', 'o', '\n' };
	struct kcp_params p;
	struct kcp *k;

	kcptun_params(&p, 20, 128, 512);
	k = cap_session(CONV_MIN, &p);
	if (!k) {
		CHECK(k);
		return;
	}
	CHECK_EQ(kcp_send(k, smux_syn, 8), 8);
	flush_at(k, 1080);
	CHECK_EQ(kcp_send(k, psh, 14), 14);
	flush_at(k, 1087);
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap.d[0].len, 52);
	CHECK_EQ(cap.d[1].len, 58);
	CHECK(!memcmp(cap.d[1].b + 20, capture_push_sn1, sizeof(capture_push_sn1)));
	kcp_free(k);
}

/* Default profile: reserved 28 (crypt 20 + FEC 8); the first PUSH at 1282 ms. */
static void test_kcp_golden_default_profile_push(void)
{
	struct kcp_params p;
	struct kcp *k, *srv;
	uint8_t got[32];

	kcptun_params(&p, 28, 128, 512);
	k = cap_session(0xc1e10af4, &p);
	if (!k) {
		CHECK(k);
		return;
	}
	CHECK_EQ(kcp_mss(k), 1298);
	CHECK_EQ(kcp_send(k, capture_default_push + 24, 18), 18);
	flush_at(k, 1282);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap.d[0].len, 28 + 42);
	CHECK(!memcmp(cap.d[0].b + 28, capture_default_push, 42));
	kcp_free(k);

	kcptun_params(&p, 28, 1024, 1024);
	srv = cap_session(0xc1e10af4, &p);
	CHECK_EQ(input(srv, 1300, capture_default_push, 42), 0);
	CHECK_EQ(kcp_recv(srv, got, sizeof(got)), 18);
	CHECK(!memcmp(got, capture_default_push + 24, 18));
	kcp_free(srv);
}

/* ---- ACK packing (§1.1, §1.6 step 1) ---- */

/* 60 out-of-order PUSHes (sn 1..60, sn 0 missing): 60 ACKs, 58 fit a 1400-byte datagram. */
static void test_kcp_packs_many_acks_per_datagram(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64];
	struct seg s[64];
	int n0, n1;

	kcp_params_default(&p);
	p.rcv_wnd = 128;
	k = cap_session(7, &p);
	for (uint32_t sn = 1; sn <= 60; sn++) {
		size_t n = put_seg(d, 7, KCP_CMD_PUSH, 0, 32, 1000 + sn, sn, 0, "x", 1);

		CHECK_EQ(input(k, 2000, d, n), 0);
	}
	flush_at(k, 2000);
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap.d[0].len, 58 * 24);
	n0 = cap_segs(0, s, 64);
	CHECK_EQ(n0, 58);
	for (int i = 0; i < n0; i++) {
		CHECK_EQ(s[i].cmd, KCP_CMD_ACK);
		CHECK_EQ(s[i].sn, (uint32_t)i + 1);
		CHECK_EQ(s[i].ts, 1001u + (uint32_t)i);
		CHECK_EQ(s[i].una, 0);
		CHECK_EQ(s[i].wnd, 128);	/* nothing in rcv_queue: sn 0 is missing */
	}
	n1 = cap_segs(1, s, 64);
	CHECK_EQ(n1, 2);
	CHECK_EQ(s[1].sn, 60);
	kcp_free(k);
}

/* In-order PUSHes sn 0..9: every ACK but the last is implied by una = 10 (kcp-go). */
static void test_kcp_acks_below_rcv_nxt_are_implied_by_una(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64];
	struct seg s[4];

	kcp_params_default(&p);
	k = cap_session(7, &p);
	for (uint32_t sn = 0; sn < 10; sn++) {
		size_t n = put_seg(d, 7, KCP_CMD_PUSH, 0, 32, 500 + sn, sn, 0, "ab", 2);

		CHECK_EQ(input(k, 600, d, n), 0);
	}
	flush_at(k, 600);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].cmd, KCP_CMD_ACK);
	CHECK_EQ(s[0].sn, 9);
	CHECK_EQ(s[0].ts, 509);
	CHECK_EQ(s[0].una, 10);
	CHECK_EQ(s[0].wnd, 22);
	kcp_free(k);
}

/* A flush emits ACKs, then WINS, then data, in one datagram when they fit. */
static void test_kcp_flush_order_acks_probes_data(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[128];
	size_t n;
	struct seg s[8];

	small_params(&p);
	p.mtu = 400;
	k = cap_session(9, &p);
	send_bytes(k, 50);
	n = put_seg(d, 9, KCP_CMD_PUSH, 0, 32, 77, 0, 0, "hi", 2);
	n += put_seg(d + n, 9, KCP_CMD_WASK, 0, 32, 0, 0, 0, NULL, 0);
	CHECK_EQ(input(k, 100, d, n), 0);
	flush_at(k, 100);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 8), 3);
	CHECK_EQ(s[0].cmd, KCP_CMD_ACK);
	CHECK_EQ(s[0].ts, 77);
	CHECK_EQ(s[1].cmd, KCP_CMD_WINS);
	CHECK_EQ(s[1].wnd, 31);
	CHECK_EQ(s[1].ts, 0);
	CHECK_EQ(s[1].sn, 0);
	CHECK_EQ(s[2].cmd, KCP_CMD_PUSH);
	CHECK_EQ(s[2].len, 50);
	CHECK_EQ(s[2].una, 1);
	CHECK_EQ(s[2].ts, 100);
	kcp_free(k);
}

/* ---- input validation (§1.1) ---- */

static void test_kcp_input_short_datagram_is_rejected(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[24] = { 0 };

	kcp_params_default(&p);
	k = cap_session(0, &p);
	CHECK_EQ(input(k, 0, d, 23), -EBADMSG);
	CHECK_EQ(input(k, 0, d, 0), -EBADMSG);
	CHECK_EQ(kcp_stats(k)->err_short, 2);
	CHECK_EQ(kcp_stats(k)->input_errors, 2);
	CHECK_EQ(kcp_stats(k)->in_segs, 0);
	kcp_free(k);
}

/* A WASK, then a segment of another conv: the WASK stays processed (a WINS is due). */
static void test_kcp_input_conv_mismatch_stops_after_earlier_segments(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[128];
	size_t n;
	struct seg s[4];

	kcp_params_default(&p);
	k = cap_session(5, &p);
	n = put_seg(d, 5, KCP_CMD_WASK, 0, 32, 0, 0, 0, NULL, 0);
	n += put_seg(d + n, 6, KCP_CMD_PUSH, 0, 32, 0, 0, 0, "zz", 2);
	n += put_seg(d + n, 5, KCP_CMD_PUSH, 0, 32, 0, 0, 0, "yy", 2);
	CHECK_EQ(input(k, 10, d, n), -ESTALE);
	CHECK_EQ(kcp_stats(k)->conv_mismatch, 1);
	CHECK_EQ(kcp_stats(k)->input_errors, 0);
	CHECK_EQ(kcp_stats(k)->in_segs, 1);
	CHECK_EQ(kcp_readable(k), 0);	/* the PUSH after the mismatch was not read */
	flush_at(k, 10);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].cmd, KCP_CMD_WINS);
	kcp_free(k);
}

static void test_kcp_input_truncated_segment_stops(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[256];
	size_t n;
	char payload[100] = { 0 };

	kcp_params_default(&p);
	k = cap_session(5, &p);
	n = put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 0, 0, "ok", 2);
	n += put_seg(d + n, 5, KCP_CMD_PUSH, 0, 32, 0, 1, 0, payload, 100);
	CHECK_EQ(input(k, 10, d, n - 50), -EBADMSG);
	CHECK_EQ(kcp_stats(k)->err_truncated, 1);
	CHECK_EQ(kcp_stats(k)->input_errors, 1);
	CHECK_EQ(kcp_readable(k), 2);	/* the first PUSH stays processed */
	kcp_free(k);
}

static void test_kcp_input_unknown_cmd_stops(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[128];
	size_t n;

	kcp_params_default(&p);
	k = cap_session(5, &p);
	n = put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 0, 0, "ok", 2);
	n += put_seg(d + n, 5, 85, 0, 32, 0, 1, 0, NULL, 0);
	n += put_seg(d + n, 5, KCP_CMD_PUSH, 0, 32, 0, 1, 0, "no", 2);
	CHECK_EQ(input(k, 10, d, n), -EPROTO);
	CHECK_EQ(kcp_stats(k)->err_cmd, 1);
	CHECK_EQ(kcp_readable(k), 2);
	put_seg(d, 5, 80, 0, 32, 0, 0, 0, NULL, 0);
	CHECK_EQ(input(k, 10, d, 24), -EPROTO);
	CHECK_EQ(kcp_stats(k)->err_cmd, 2);
	CHECK_EQ(kcp_stats(k)->input_errors, 2);
	kcp_free(k);
}

/* A PUSH longer than a 1500-byte datagram could carry cannot come from a real peer. */
static void test_kcp_input_oversize_push_is_rejected(void)
{
	struct kcp_params p;
	struct kcp *k;
	static uint8_t d[2048], payload[1500];

	kcp_params_default(&p);
	k = cap_session(5, &p);
	put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 0, 0, payload, 1477);
	CHECK_EQ(input(k, 10, d, 24 + 1477), -EBADMSG);
	CHECK_EQ(kcp_stats(k)->err_oversize, 1);
	put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 0, 0, payload, 1476);
	CHECK_EQ(input(k, 10, d, 24 + 1476), 0);
	CHECK_EQ(kcp_readable(k), 1476);
	kcp_free(k);
}

/* 1..23 bytes after the last segment are ignored (the loop needs 24) and counted. */
static void test_kcp_input_trailing_bytes_are_ignored(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64] = { 0 };

	kcp_params_default(&p);
	k = cap_session(5, &p);
	put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 0, 0, "ok", 2);
	CHECK_EQ(input(k, 10, d, 26 + 10), 0);
	CHECK_EQ(kcp_stats(k)->trailing, 1);
	CHECK_EQ(kcp_stats(k)->input_errors, 0);
	CHECK_EQ(kcp_readable(k), 2);
	kcp_free(k);
}

/* sn ≥ rcv_nxt + rcv_wnd: dropped, not ACKed; sn < rcv_nxt: a duplicate, ACKed again. */
static void test_kcp_push_outside_window_dropped_without_ack(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64];
	struct kcp_state st;

	kcp_params_default(&p);
	k = cap_session(5, &p);
	put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 32, 0, "x", 1);
	CHECK_EQ(input(k, 10, d, 25), 0);
	CHECK_EQ(kcp_stats(k)->wnd_drops, 1);
	kcp_inspect(k, &st);
	CHECK_EQ(st.acks, 0);
	put_seg(d, 5, KCP_CMD_PUSH, 0, 32, 0, 31, 0, "x", 1);
	CHECK_EQ(input(k, 10, d, 25), 0);
	CHECK_EQ(input(k, 10, d, 25), 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.acks, 2);
	CHECK_EQ(st.rcv_buf, 1);
	CHECK_EQ(kcp_stats(k)->dup_segs, 1);
	kcp_free(k);
}

/* ---- una, ACK ---- */

static void test_kcp_una_removes_in_flight_segments(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[24];
	struct kcp_state st;

	small_params(&p);
	k = cap_session(3, &p);
	send_bytes(k, 500);
	flush_at(k, 0);
	CHECK_EQ(kcp_waitsnd(k), 5);
	put_seg(d, 3, KCP_CMD_WINS, 0, 32, 0, 0, 3, NULL, 0);
	CHECK_EQ(input(k, 20, d, 24), 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.snd_una, 3);
	CHECK_EQ(st.snd_nxt, 5);
	CHECK_EQ(kcp_waitsnd(k), 2);
	/* una beyond snd_nxt releases everything and no more */
	put_seg(d, 3, KCP_CMD_WINS, 0, 32, 0, 0, 1000, NULL, 0);
	CHECK_EQ(input(k, 30, d, 24), 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.snd_una, 5);
	CHECK_EQ(kcp_waitsnd(k), 0);
	kcp_free(k);
}

/* An ACK releases its segment (never resent) but only una moves snd_una (kcp-go). */
static void test_kcp_acked_segment_is_not_resent(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	struct seg s[8];

	small_params(&p);
	k = cap_session(3, &p);
	send_bytes(k, 300);
	flush_at(k, 0);
	CHECK_EQ(input_ack(k, 10, 3, 1, 0, 0, 32), 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.snd_una, 0);
	CHECK_EQ(kcp_waitsnd(k), 3);
	cap.n = 0;
	flush_at(k, 250);	/* sn 0 (early: a later ACK) and sn 2 (timeout); never sn 1 */
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].sn, 0);
	CHECK_EQ(cap_segs(1, s, 8), 1);
	CHECK_EQ(s[0].sn, 2);
	CHECK_EQ(kcp_stats(k)->early_retrans, 1);
	CHECK_EQ(kcp_stats(k)->lost, 1);
	kcp_free(k);
}

/* ---- RTT and RTO (§1.7) ---- */

/* Sends one segment at t and ACKs it (ts echo) at t + rtt. */
static void rtt_sample(struct kcp *k, uint32_t *t, uint32_t rtt)
{
	struct kcp_state st;

	kcp_inspect(k, &st);
	send_bytes(k, 10);
	flush_at(k, *t);
	CHECK_EQ(input_ack(k, *t + rtt, kcp_conv(k), st.snd_nxt, *t, st.snd_nxt + 1, 32), 0);
	*t += rtt + 1000;
}

/*
 * interval 30, nodelay 0 (minrto 100); >> is a floor shift:
 *   100: srtt 100, rttvar 50                                  rto 100 + max(30, 200) = 300
 *   100: delta 0, srtt 100; rttvar += (0 - 50) >> 2 = -13 → 37       rto 100 + 148 = 248
 *   300: delta 200, srtt += 25 → 125; rttvar += (200 - 37) >> 2 = 40 → 77   rto 433
 *    50: delta -75, srtt += -75 >> 3 = -10 → 115; 50 ≥ 115 - 77, rttvar += (75 - 77) >> 2
 *        = -1 → 76                                           rto 115 + 304 = 419
 *    10: delta -105, srtt += -14 → 101; 10 < 101 - 76: rttvar += (105 - 76) >> 5 = 0
 *                                                            rto 101 + 304 = 405
 * (C's / would give 116/77 at the fourth sample.)
 */
static void test_kcp_rto_follows_kcp_go_estimator(void)
{
	static const struct {
		uint32_t rtt;
		int32_t srtt, rttvar, rto;
	} table[] = {
		{ 100, 100, 50, 300 }, { 100, 100, 37, 248 }, { 300, 125, 77, 433 },
		{ 50, 115, 76, 419 }, { 10, 101, 76, 405 },
	};
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	uint32_t t = 1000;

	small_params(&p);
	p.interval = 30;
	k = cap_session(3, &p);
	CHECK_EQ(kcp_rto(k), 200);
	for (size_t i = 0; i < N(table); i++) {
		rtt_sample(k, &t, table[i].rtt);
		kcp_inspect(k, &st);
		CHECK_EQ(kcp_srtt(k), table[i].srtt);
		CHECK_EQ(st.rttvar, table[i].rttvar);
		CHECK_EQ(kcp_rto(k), table[i].rto);
	}
	kcp_free(k);
}

/*
 * The slow branch (>> 5) with a large step: four samples of 1000 (rttvar 500, 375, 281,
 * 210; rto 3000, 2500, 2124, 1840), then 10: delta -990, srtt += -124 → 876; 10 < 876 -
 * 210, rttvar += (990 - 210) >> 5 = 24 → 234; rto 876 + 936 = 1812.
 */
static void test_kcp_rto_slow_variance_branch(void)
{
	static const int32_t rto[] = { 3000, 2500, 2124, 1840, 1812 };
	static const uint32_t rtt[] = { 1000, 1000, 1000, 1000, 10 };
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	uint32_t t = 0;

	small_params(&p);
	p.interval = 30;
	k = cap_session(3, &p);
	for (size_t i = 0; i < N(rtt); i++) {
		rtt_sample(k, &t, rtt[i]);
		CHECK_EQ(kcp_rto(k), rto[i]);
	}
	kcp_inspect(k, &st);
	CHECK_EQ(st.srtt, 876);
	CHECK_EQ(st.rttvar, 234);
	kcp_free(k);
}

/* nodelay: min RTO 30; the clamp at both ends; FEC-recovered datagrams give no sample
 * and do not change rmt_wnd. */
static void test_kcp_rto_clamped_and_irregular_input_ignored(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	uint8_t d[24];
	uint32_t t = 100;

	small_params(&p);
	p.nodelay = 1;
	k = cap_session(3, &p);
	rtt_sample(k, &t, 1);		/* srtt 1, rttvar 0: 1 + max(10, 0) = 11 → 30 */
	CHECK_EQ(kcp_rto(k), 30);
	rtt_sample(k, &t, 90000);	/* far above RTO_MAX */
	CHECK_EQ(kcp_rto(k), 60000);

	send_bytes(k, 10);
	flush_at(k, t);
	kcp_inspect(k, &st);
	put_seg(d, 3, KCP_CMD_ACK, 0, 5, t, st.snd_nxt - 1, st.snd_nxt, NULL, 0);
	cap.now = t + 50;
	CHECK_EQ(kcp_input(k, t + 50, d, 24, false), 0);
	CHECK_EQ(kcp_rto(k), 60000);
	kcp_inspect(k, &st);
	CHECK_EQ(st.rmt_wnd, 32);
	CHECK_EQ(st.snd_una, st.snd_nxt);	/* una is applied all the same */
	kcp_free(k);
}

/* ---- retransmission (§1.6, §1.8) ---- */

/* resend 2: sn 0 is resent when the second later ACK arrives, not at the first. New data
 * moved in each flush keeps early retransmit out of the way. */
static void test_kcp_fast_retransmit_after_exactly_resend_acks(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct seg s[8];

	small_params(&p);
	p.resend = 2;
	k = cap_session(3, &p);
	send_bytes(k, 500);
	flush_at(k, 0);
	CHECK_EQ(cap.n, 5);	/* 124-byte datagrams hold one segment each */

	cap.n = 0;
	CHECK_EQ(input_ack(k, 10, 3, 1, 0, 0, 32), 0);
	send_bytes(k, 100);
	flush_at(k, 10);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].sn, 5);
	CHECK_EQ(kcp_stats(k)->fast_retrans, 0);

	cap.n = 0;
	CHECK_EQ(input_ack(k, 20, 3, 2, 0, 0, 32), 0);
	send_bytes(k, 100);
	flush_at(k, 20);
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].sn, 0);
	CHECK_EQ(s[0].ts, 20);
	CHECK_EQ(cap_segs(1, s, 8), 1);
	CHECK_EQ(s[0].sn, 6);
	CHECK_EQ(kcp_stats(k)->fast_retrans, 1);
	CHECK_EQ(kcp_stats(k)->early_retrans, 0);
	CHECK_EQ(kcp_stats(k)->retrans, 1);
	kcp_free(k);
}

/* After a timeout resent sn 0..2 at 200, ACKs of the first copies (ts 0) are old news and
 * do not count; ACKs of the second copies do. */
static void test_kcp_fast_retransmit_ignores_reordered_old_acks(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct seg s[8];
	uint8_t d[48];
	size_t n;

	small_params(&p);
	p.resend = 2;
	k = cap_session(3, &p);
	send_bytes(k, 300);
	flush_at(k, 0);
	flush_at(k, 200);
	CHECK_EQ(kcp_stats(k)->lost, 3);

	n = put_seg(d, 3, KCP_CMD_ACK, 0, 32, 0, 1, 0, NULL, 0);
	n += put_seg(d + n, 3, KCP_CMD_ACK, 0, 32, 0, 2, 0, NULL, 0);
	CHECK_EQ(input(k, 210, d, n), 0);
	cap.n = 0;
	send_bytes(k, 100);
	flush_at(k, 210);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].sn, 3);
	CHECK_EQ(kcp_stats(k)->fast_retrans + kcp_stats(k)->early_retrans, 0);

	n = put_seg(d, 3, KCP_CMD_ACK, 0, 32, 210, 3, 0, NULL, 0);
	n += put_seg(d + n, 3, KCP_CMD_ACK, 0, 32, 200, 2, 0, NULL, 0);
	CHECK_EQ(input(k, 220, d, n), 0);
	cap.n = 0;
	send_bytes(k, 100);
	flush_at(k, 220);
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].sn, 0);
	CHECK_EQ(kcp_stats(k)->fast_retrans, 1);
	kcp_free(k);
}

/* resend 0, tail loss: sn 1 of 0..2 lost; the ACK of sn 2 (una 1) slides the window, the
 * flush that follows moves nothing new, so sn 1 goes out at once (kcp-go early retransmit). */
static void test_kcp_early_retransmit_on_tail_loss_without_fast_resend(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct seg s[8];
	uint8_t d[48];
	size_t n;

	small_params(&p);
	p.resend = 0;
	k = cap_session(3, &p);
	send_bytes(k, 300);
	flush_at(k, 0);
	cap.n = 0;
	n = put_seg(d, 3, KCP_CMD_ACK, 0, 32, 0, 0, 1, NULL, 0);
	n += put_seg(d + n, 3, KCP_CMD_ACK, 0, 32, 0, 2, 1, NULL, 0);
	CHECK_EQ(input(k, 10, d, n), 0);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].cmd, KCP_CMD_PUSH);
	CHECK_EQ(s[0].sn, 1);
	CHECK_EQ(s[0].ts, 10);
	CHECK_EQ(kcp_stats(k)->early_retrans, 1);
	CHECK_EQ(kcp_stats(k)->fast_retrans, 0);
	CHECK_EQ(kcp_stats(k)->retrans, 1);
	kcp_free(k);
}

/* Runs the interval clock from t until `want` datagrams came out; their times in at[]. */
static void run_until_datagrams(struct kcp *k, uint32_t t, uint32_t want, uint32_t *at)
{
	for (int guard = 0; cap.n < want && guard < 100000; guard++) {
		uint32_t before = cap.n;

		cap.now = t;
		kcp_update(k, t);
		for (uint32_t i = before; i < cap.n && i < want; i++)
			at[i] = t;
		t = kcp_check(k, t);
	}
}

/* One segment never ACKed, rx_rto 200: nodelay 0 adds rx_rto per timeout, nodelay 1 half. */
static void test_kcp_timeout_backoff_nodelay_0_and_1(void)
{
	static const uint32_t want0[] = { 0, 200, 600, 1200, 2000, 3000 };
	static const uint32_t want1[] = { 0, 200, 500, 900, 1400, 2000 };
	uint32_t at[6];
	struct kcp_params p;
	struct kcp *k;

	for (int nd = 0; nd <= 1; nd++) {
		const uint32_t *want = nd ? want1 : want0;

		small_params(&p);
		p.nodelay = nd;
		k = cap_session(3, &p);
		send_bytes(k, 10);
		memset(at, 0xff, sizeof(at));
		run_until_datagrams(k, 0, 6, at);
		CHECK_EQ(cap.n, 6);
		for (int i = 0; i < 6; i++)
			CHECK_EQ(at[i], want[i]);
		CHECK_EQ(kcp_stats(k)->lost, 5);
		kcp_free(k);
	}
}

/* ---- congestion control (§1.9), mss 100, nc 0, resend 2 ---- */

/* ACKs the oldest in-flight segment (ts = now) in its own datagram. */
static void cc_ack_head(struct kcp *k, uint32_t now)
{
	struct kcp_state st;

	kcp_inspect(k, &st);
	CHECK_EQ(input_ack(k, now, kcp_conv(k), st.snd_una, now, st.snd_una + 1, 32), 0);
}

/*
 * cwnd starts at 0, so the first flush sends nothing and sets cwnd 1. Slow start below
 * ssthresh 2, then congestion avoidance: incr += mss*mss/incr + mss/16 (= 6), cwnd =
 * ceil(incr/mss) once (cwnd+1)*mss ≤ incr:
 *   ack 1: cwnd 2 incr 200 | ack 2: incr 256 | ack 3: 301 → cwnd 4 | 340 | 375 | 407 | 437
 *   | 465 | 492 | ack 10: 518 → cwnd 6.
 * Then a fast retransmit with 6 in flight: ssthresh 3, cwnd 3 + 2, incr 500; then a
 * timeout: ssthresh max(5/2, 2) = 2, cwnd 1, incr 100.
 */
static void test_kcp_congestion_slow_start_halving_and_timeout(void)
{
	static const struct {
		uint32_t cwnd, incr;
	} steps[] = {
		{ 2, 200 }, { 2, 256 }, { 4, 301 }, { 4, 340 }, { 4, 375 },
		{ 4, 407 }, { 4, 437 }, { 4, 465 }, { 4, 492 }, { 6, 518 },
	};
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	uint32_t t = 1000;
	uint8_t d[48];
	size_t n;

	small_params(&p);
	p.nc = 0;
	p.resend = 2;
	k = cap_session(3, &p);
	send_bytes(k, 100 * 40);
	flush_at(k, t);
	CHECK_EQ(cap.n, 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.cwnd, 1);
	CHECK_EQ(st.incr, 100);
	CHECK_EQ(st.ssthresh, 2);
	t += 10;
	flush_at(k, t);
	CHECK_EQ(cap.n, 1);

	for (size_t i = 0; i < N(steps); i++) {
		t += 10;
		cap.now = t;
		cc_ack_head(k, t);
		kcp_inspect(k, &st);
		CHECK_EQ(st.cwnd, steps[i].cwnd);
		CHECK_EQ(st.incr, steps[i].incr);
		CHECK_EQ(st.snd_nxt - st.snd_una, steps[i].cwnd);	/* the slid window was refilled */
	}
	CHECK_EQ(st.snd_una, 10);
	CHECK_EQ(st.snd_nxt, 16);

	t += 10;
	n = put_seg(d, 3, KCP_CMD_ACK, 0, 32, t, 11, 10, NULL, 0);
	n += put_seg(d + n, 3, KCP_CMD_ACK, 0, 32, t, 12, 10, NULL, 0);
	CHECK_EQ(input(k, t, d, n), 0);
	flush_at(k, t);
	CHECK_EQ(kcp_stats(k)->fast_retrans, 1);
	kcp_inspect(k, &st);
	CHECK_EQ(st.ssthresh, 3);
	CHECK_EQ(st.cwnd, 5);
	CHECK_EQ(st.incr, 500);

	while (kcp_stats(k)->lost == 0 && t < 100000) {
		t = kcp_check(k, t);
		cap.now = t;
		kcp_update(k, t);
	}
	kcp_inspect(k, &st);
	CHECK_EQ(st.ssthresh, 2);
	CHECK_EQ(st.cwnd, 1);
	CHECK_EQ(st.incr, 100);
	kcp_free(k);
}

/* With nc 1 the window is min(snd_wnd, rmt_wnd) from the first flush. */
static void test_kcp_nocwnd_sends_full_window(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;

	small_params(&p);
	p.snd_wnd = 8;
	k = cap_session(3, &p);
	send_bytes(k, 100 * 20);
	flush_at(k, 0);
	CHECK_EQ(cap.n, 8);
	kcp_inspect(k, &st);
	CHECK_EQ(st.snd_nxt, 8);
	CHECK_EQ(st.snd_queue, 12);
	/* the peer's window shrinks to 3: once sn 0..7 are acknowledged, 3 go out */
	CHECK_EQ(input_ack(k, 10, 3, 7, 0, 8, 3), 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.snd_nxt, 11);
	kcp_free(k);
}

/* ---- dead link (§1.12) ---- */

static void test_kcp_dead_link_after_20_transmissions(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint32_t t = 0, sn = 99;

	small_params(&p);
	p.nodelay = 1;
	k = cap_session(3, &p);
	send_bytes(k, 10);
	for (int guard = 0; cap.n < 19 && guard < 100000; guard++) {
		cap.now = t;
		kcp_update(k, t);
		t = kcp_check(k, t);
	}
	CHECK_EQ(cap.n, 19);
	CHECK(!kcp_is_dead(k, &sn));
	CHECK_EQ(sn, 99);
	for (int guard = 0; cap.n < 20 && guard < 100000; guard++) {
		cap.now = t;
		kcp_update(k, t);
		t = kcp_check(k, t);
	}
	CHECK_EQ(cap.n, 20);
	CHECK(kcp_is_dead(k, &sn));
	CHECK_EQ(sn, 0);
	CHECK(kcp_is_dead(k, NULL));
	kcp_free(k);
}

/* ---- send path (§1.4) ---- */

/* 100 writes of 10 bytes before a flush become one 1000-byte segment. */
static void test_kcp_stream_coalesces_small_writes(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct seg s[4];
	uint8_t b[10];

	kcp_params_default(&p);
	p.nc = 1;
	k = cap_session(3, &p);
	for (int i = 0; i < 100; i++) {
		memset(b, i, sizeof(b));
		CHECK_EQ(kcp_send(k, b, 10), 10);
	}
	CHECK_EQ(kcp_waitsnd(k), 1);
	flush_at(k, 0);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].len, 1000);
	CHECK_EQ(s[0].frg, 0);
	CHECK_EQ(s[0].data[0], 0);
	CHECK_EQ(s[0].data[999], 99);
	kcp_free(k);
}

/* A write tops up the last unsent segment to mss first; sent segments are never touched. */
static void test_kcp_stream_tops_up_last_unsent_segment(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct seg s[4];

	small_params(&p);
	p.mtu = 1000;		/* several segments per datagram */
	k = cap_session(3, &p);
	CHECK_EQ(kcp_mss(k), 976);
	send_bytes(k, 90);
	send_bytes(k, 30);	/* appended to the 90 bytes */
	CHECK_EQ(kcp_waitsnd(k), 1);
	send_bytes(k, 976 - 120 + 5);	/* fills sn 0 to mss, 5 bytes start sn 1 */
	CHECK_EQ(kcp_waitsnd(k), 2);
	flush_at(k, 0);
	CHECK_EQ(cap.n, 2);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].len, 976);
	CHECK_EQ(cap_segs(1, s, 4), 1);
	CHECK_EQ(s[0].len, 5);
	send_bytes(k, 7);	/* sn 1 is in flight: a new segment */
	CHECK_EQ(kcp_waitsnd(k), 3);
	kcp_free(k);
}

/* kcp_send takes the whole buffer while waitsnd < min(snd_wnd, rmt_wnd), else nothing. */
static void test_kcp_send_backpressure_all_or_nothing(void)
{
	struct kcp_params p;
	struct kcp *k;

	small_params(&p);
	p.snd_wnd = 4;
	k = cap_session(3, &p);
	CHECK(kcp_writable(k));
	send_bytes(k, 350);		/* 4 segments */
	CHECK_EQ(kcp_waitsnd(k), 4);
	CHECK(!kcp_writable(k));
	CHECK_EQ(kcp_send(k, (const uint8_t *)"x", 1), 0);
	CHECK_EQ(kcp_waitsnd(k), 4);
	CHECK_EQ(kcp_send(k, (const uint8_t *)"x", 0), 0);
	/* one segment acknowledged by una: writable again, and a big write is taken whole */
	flush_at(k, 0);
	CHECK_EQ(input_ack(k, 10, 3, 0, 0, 1, 32), 0);
	CHECK(kcp_writable(k));
	send_bytes(k, 5000);
	CHECK_EQ(kcp_waitsnd(k), 3 + 50);	/* sn 3 (50 bytes) is in flight: no top-up */
	CHECK(!kcp_writable(k));
	kcp_free(k);
}

/* Message mode: 1 fragment, 255 fragments (frg 254..0), 256 rejected. */
static void test_kcp_message_fragments_1_255_and_256_rejected(void)
{
	static uint8_t big[25600];
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	struct seg s[4];

	small_params(&p);
	p.stream = false;
	p.snd_wnd = 256;
	k = cap_session(3, &p);
	input_ack(k, 0, 3, 0, 0, 0, 300);	/* a peer with a large window */
	CHECK_EQ(kcp_send(k, big, 25501), -EMSGSIZE);
	CHECK_EQ(kcp_waitsnd(k), 0);
	CHECK_EQ(kcp_send(k, big, 25500), 25500);
	CHECK_EQ(kcp_waitsnd(k), 255);
	CHECK_EQ(kcp_send(k, big, 30), 30);	/* no top-up in message mode */
	CHECK_EQ(kcp_waitsnd(k), 256);
	CHECK(!kcp_writable(k));
	flush_at(k, 0);
	CHECK_EQ(cap.n, 256);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].frg, 254);
	CHECK_EQ(cap_segs(254, s, 4), 1);
	CHECK_EQ(s[0].frg, 0);
	CHECK_EQ(cap_segs(255, s, 4), 1);
	CHECK_EQ(s[0].frg, 0);
	CHECK_EQ(s[0].len, 30);
	kcp_inspect(k, &st);
	CHECK_EQ(st.snd_nxt, 256);
	kcp_free(k);
}

/* The receiving side of message mode: whole messages only, -EAGAIN, -EMSGSIZE. */
static void test_kcp_message_recv_whole_messages(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[200], got[400];
	size_t n;

	small_params(&p);
	p.stream = false;
	k = cap_session(3, &p);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), -EAGAIN);
	/* a 3-fragment message arrives out of order: sn 1 (frg 1), sn 2 (frg 0), then sn 0 */
	n = put_seg(d, 3, KCP_CMD_PUSH, 2, 32, 0, 1, 0, "BBBB", 4);
	n += put_seg(d + n, 3, KCP_CMD_PUSH, 1, 32, 0, 2, 0, "CC", 2);
	CHECK_EQ(input(k, 0, d, n), 0);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), -EAGAIN);
	n = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 0, 3, 0, "D", 1);
	CHECK_EQ(input(k, 0, d, n), 0);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), -EAGAIN);
	n = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 0, 4, 0, "EEE", 3);
	CHECK_EQ(input(k, 0, d, n), 0);
	n = put_seg(d, 3, KCP_CMD_PUSH, 3, 32, 0, 0, 0, "AA", 2);
	CHECK_EQ(input(k, 0, d, n), 0);
	/* sn 0..3 form one message (frg 3, 2, 1, 0) */
	CHECK_EQ(kcp_readable(k), 9);
	CHECK_EQ(kcp_recv(k, got, 8), -EMSGSIZE);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), 9);
	CHECK(!memcmp(got, "AABBBBCCD", 9));
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), 3);
	CHECK(!memcmp(got, "EEE", 3));
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), -EAGAIN);
	kcp_free(k);
}

/* Stream reads take any number of bytes across segment boundaries. */
static void test_kcp_stream_recv_partial_reads(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[200], got[16];
	size_t n;

	kcp_params_default(&p);
	k = cap_session(3, &p);
	n = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 0, 0, 0, "abcde", 5);
	n += put_seg(d + n, 3, KCP_CMD_PUSH, 0, 32, 0, 1, 0, "fgh", 3);
	n += put_seg(d + n, 3, KCP_CMD_PUSH, 0, 32, 0, 2, 0, "ijklmn", 6);
	CHECK_EQ(input(k, 0, d, n), 0);
	CHECK_EQ(kcp_readable(k), 14);
	CHECK_EQ(kcp_recv(k, got, 3), 3);
	CHECK(!memcmp(got, "abc", 3));
	CHECK_EQ(kcp_recv(k, got, 4), 4);
	CHECK(!memcmp(got, "defg", 4));
	CHECK_EQ(kcp_readable(k), 7);
	CHECK_EQ(kcp_recv(k, got, 0), 0);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), 7);
	CHECK(!memcmp(got, "hijklmn", 7));
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), 0);
	kcp_free(k);
}

/* An empty PUSH in stream mode advances rcv_nxt without blocking the reader. */
static void test_kcp_stream_empty_push_is_consumed(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	uint8_t d[128], got[8];
	size_t n;

	kcp_params_default(&p);
	k = cap_session(3, &p);
	n = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 0, 0, 0, NULL, 0);
	n += put_seg(d + n, 3, KCP_CMD_PUSH, 0, 32, 0, 1, 0, "ab", 2);
	CHECK_EQ(input(k, 0, d, n), 0);
	kcp_inspect(k, &st);
	CHECK_EQ(st.rcv_nxt, 2);
	CHECK_EQ(st.rcv_queue, 1);
	CHECK_EQ(kcp_readable(k), 2);
	CHECK_EQ(kcp_recv(k, got, sizeof(got)), 2);
	kcp_free(k);
}

/* ---- window (§1.10), ACK timing (§1.5 step 7) ---- */

/* 300 PUSHes between two flushes: the 257th finds the ACK list full and flushes it. */
static void test_kcp_full_ack_list_is_flushed_early(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;
	uint8_t d[32];
	uint32_t acks = 0;
	struct seg s[64];

	kcp_params_default(&p);
	p.rcv_wnd = 512;
	k = cap_session(3, &p);
	for (uint32_t sn = 1; sn <= 300; sn++) {
		put_seg(d, 3, KCP_CMD_PUSH, 0, 32, sn, sn, 0, "p", 1);
		CHECK_EQ(input(k, 0, d, 25), 0);
	}
	CHECK_EQ(kcp_stats(k)->ack_overflows, 1);
	CHECK_EQ(cap.n, 5);	/* 256 ACKs: 4 × 58 + 24 */
	kcp_inspect(k, &st);
	CHECK_EQ(st.acks, 300 - 256);
	flush_at(k, 10);
	for (uint32_t i = 0; i < cap.n; i++) {
		int n = cap_segs(i, s, 64);

		CHECK(n > 0);
		for (int j = 0; j < n; j++)
			CHECK_EQ(s[j].sn, ++acks);
	}
	CHECK_EQ(acks, 300);
	kcp_free(k);
}

/* A reader that drains a full queue tells the peer (WINS) at the next flush. */
static void test_kcp_recv_reopening_window_sends_wins(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64], got[64];
	struct seg s[8];
	int n;

	kcp_params_default(&p);
	p.rcv_wnd = 4;
	k = cap_session(3, &p);
	for (uint32_t sn = 0; sn < 5; sn++) {
		size_t len = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 0, sn, 0, "q", 1);

		CHECK_EQ(input(k, 0, d, len), 0);
	}
	flush_at(k, 0);
	/* sn 0..3 fill the queue, sn 4 waits in rcv_buf; only its ACK is not implied by una */
	CHECK_EQ(cap_segs(0, s, 8), 1);
	CHECK_EQ(s[0].sn, 4);
	CHECK_EQ(s[0].wnd, 0);
	CHECK_EQ(s[0].una, 4);
	CHECK_EQ(kcp_recv(k, got, 1), 1);	/* sn 4 moves up: still full, no WINS */
	cap.n = 0;
	flush_at(k, 10);
	CHECK_EQ(cap.n, 0);
	CHECK_EQ(kcp_recv(k, got, 1), 1);
	flush_at(k, 20);
	CHECK_EQ(cap.n, 1);
	n = cap_segs(0, s, 8);
	CHECK_EQ(n, 1);
	CHECK_EQ(s[0].cmd, KCP_CMD_WINS);
	CHECK_EQ(s[0].wnd, 1);
	CHECK_EQ(s[0].una, 5);
	kcp_free(k);
}

static void test_kcp_ack_nodelay_flushes_acks_after_input(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64];
	struct seg s[4];
	size_t n;

	kcp_params_default(&p);
	p.ack_nodelay = true;
	k = cap_session(3, &p);
	send_bytes(k, 10);	/* queued, must not go out with the ACK-only flush */
	n = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 55, 0, 0, "z", 1);
	CHECK_EQ(input(k, 60, d, n), 0);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].cmd, KCP_CMD_ACK);
	CHECK_EQ(s[0].ts, 55);
	CHECK_EQ(kcp_waitsnd(k), 1);
	kcp_free(k);
}

/* When una slides the window, input flushes at once: pending ACKs and new data together. */
static void test_kcp_window_slide_flushes_after_input(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[64];
	struct seg s[4];
	size_t n;

	small_params(&p);
	p.mtu = 400;
	k = cap_session(3, &p);
	send_bytes(k, 20);
	flush_at(k, 0);
	send_bytes(k, 20);	/* queued: no flush follows */
	cap.n = 0;
	n = put_seg(d, 3, KCP_CMD_PUSH, 0, 32, 5, 0, 1, "r", 1);
	CHECK_EQ(input(k, 30, d, n), 0);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap_segs(0, s, 4), 2);
	CHECK_EQ(s[0].cmd, KCP_CMD_ACK);
	CHECK_EQ(s[1].cmd, KCP_CMD_PUSH);
	CHECK_EQ(s[1].sn, 1);
	CHECK_EQ(s[1].una, 1);
	kcp_free(k);
}

/* WASK in, WINS out with our free window. */
static void test_kcp_wask_is_answered_with_wins(void)
{
	struct kcp_params p;
	struct kcp *k;
	uint8_t d[24];
	struct seg s[4];

	kcp_params_default(&p);
	p.rcv_wnd = 300;
	k = cap_session(3, &p);
	put_seg(d, 3, KCP_CMD_WASK, 0, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(input(k, 0, d, 24), 0);
	CHECK(!kcp_writable(k));	/* the WASK said wnd 0 */
	flush_at(k, 5);
	CHECK_EQ(cap_segs(0, s, 4), 1);
	CHECK_EQ(s[0].cmd, KCP_CMD_WINS);
	CHECK_EQ(s[0].wnd, 300);
	cap.n = 0;
	flush_at(k, 10);
	CHECK_EQ(cap.n, 0);	/* probe flags are cleared */
	kcp_free(k);
}

/* ---- interval clock (§1.11) ---- */

static void test_kcp_update_and_check_follow_the_interval(void)
{
	struct kcp_params p;
	struct kcp *k;
	struct kcp_state st;

	small_params(&p);
	p.interval = 7;		/* clamped to 10 */
	k = cap_session(3, &p);
	CHECK_EQ(kcp_check(k, 500), 500);	/* never updated */
	kcp_update(k, 500);
	kcp_inspect(k, &st);
	CHECK_EQ(st.ts_flush, 510);
	CHECK_EQ(kcp_check(k, 503), 510);
	CHECK_EQ(kcp_check(k, 510), 510);
	kcp_update(k, 517);
	kcp_inspect(k, &st);
	CHECK_EQ(st.ts_flush, 520);
	kcp_update(k, 545);	/* late: ts_flush + interval still behind → now + interval */
	kcp_inspect(k, &st);
	CHECK_EQ(st.ts_flush, 555);
	/* a jump of ≥ 10 s either way resynchronises */
	CHECK_EQ(kcp_check(k, 545u - 10000u), 545u - 10000u);
	kcp_update(k, 60000);
	kcp_inspect(k, &st);
	CHECK_EQ(st.ts_flush, 60010);
	/* a resend due before the next tick: check says when, update flushes then */
	send_bytes(k, 10);
	cap.now = 60005;
	kcp_flush(k, 60005);	/* rto 200: due at 60205 */
	CHECK_EQ(kcp_check(k, 60008), 60010);
	kcp_update(k, 60200);	/* tick (ts_flush → 60210) */
	CHECK_EQ(kcp_check(k, 60201), 60205);
	cap.n = 0;
	cap.now = 60205;
	kcp_update(k, 60205);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(kcp_check(k, 60205), 60210);
	kcp_free(k);
}

/* ---- presets and parameters ---- */

static void test_kcp_params_presets_and_limits(void)
{
	struct kcp_params p;
	struct kcp *k;

	kcp_params_default(&p);
	CHECK_EQ(p.mtu, 1400);
	CHECK_EQ(p.snd_wnd, 32);
	CHECK_EQ(p.rcv_wnd, 32);
	CHECK_EQ(p.interval, 100);
	CHECK(p.stream);
	CHECK_EQ(p.dead_link, 20);
	kcp_params_mode(&p, KCP_MODE_NORMAL);
	CHECK(p.nodelay == 0 && p.interval == 40 && p.resend == 2 && p.nc == 1);
	kcp_params_mode(&p, KCP_MODE_FAST);
	CHECK(p.nodelay == 0 && p.interval == 30 && p.resend == 2 && p.nc == 1);
	kcp_params_mode(&p, KCP_MODE_FAST2);
	CHECK(p.nodelay == 1 && p.interval == 20 && p.resend == 2 && p.nc == 1);
	kcp_params_mode(&p, KCP_MODE_FAST3);
	CHECK(p.nodelay == 1 && p.interval == 10 && p.resend == 2 && p.nc == 1);
	kcp_params_mode(&p, KCP_MODE_MANUAL);
	CHECK(p.nodelay == 0 && p.interval == 50 && p.resend == 0 && p.nc == 0);
	CHECK_EQ(p.mtu, 1400);

	kcp_params_default(&p);
	p.mtu = 1350;
	p.reserved = 28;
	k = kcp_new(1, &p, pool, cap_out, &cap);
	CHECK(k);
	CHECK_EQ(kcp_mss(k), 1298);
	CHECK_EQ(kcp_conv(k), 1);
	kcp_free(k);
	p.mtu = 1501;
	CHECK(!kcp_new(1, &p, pool, cap_out, &cap));
	p.mtu = 77;	/* reserved 28 + 50 needed */
	CHECK(!kcp_new(1, &p, pool, cap_out, &cap));
	p.mtu = 78;
	k = kcp_new(1, &p, pool, cap_out, &cap);
	CHECK(k);
	CHECK_EQ(kcp_mss(k), 26);
	kcp_free(k);
	p.reserved = 100;
	CHECK(!kcp_new(1, &p, pool, cap_out, &cap));
	kcp_params_default(&p);
	p.snd_wnd = 0;
	CHECK(!kcp_new(1, &p, pool, cap_out, &cap));
	p.snd_wnd = 32;
	p.rcv_wnd = 65536;
	CHECK(!kcp_new(1, &p, pool, cap_out, &cap));
	p.rcv_wnd = 32;
	CHECK(!kcp_new(1, &p, NULL, cap_out, &cap));
	CHECK(!kcp_new(1, &p, pool, NULL, &cap));
}

/* ================= simulator (§4.1) ================= */

struct link_cfg {
	uint32_t loss_pm;		/* per mille */
	uint32_t delay_ms, jitter_ms;	/* arrival = delay ± jitter */
	uint32_t reorder_pm, reorder_k;	/* hold a packet back until k more went by */
	uint32_t dup_pm;
	uint32_t rate_bpms;		/* bytes per ms, 0 = unlimited */
	uint32_t queue_bytes;		/* tail drop beyond this backlog */
};

struct pkt {
	uint32_t at;
	uint64_t seq;
	uint32_t len;
	uint8_t data[];
};

#define HELD_MAX 64
#define HOLD_TIMEOUT_MS 200

struct link {
	struct link_cfg cfg;
	struct pkt **heap;
	uint32_t n, cap;
	uint64_t seq;
	uint64_t backlog_us;		/* transmission time of what waits in the queue */
	uint32_t backlog_at;
	struct {
		struct pkt *p;
		uint32_t left, deadline;
	} held[HELD_MAX];
	uint32_t nheld;
	uint64_t sent, lost, dups, queue_drops;
};

static bool pkt_before(const struct pkt *a, const struct pkt *b)
{
	return d32(a->at, b->at) < 0 || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(struct link *l, struct pkt *p)
{
	uint32_t i;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->heap = realloc(l->heap, l->cap * sizeof(*l->heap));
		if (!l->heap)
			abort();
	}
	p->seq = l->seq++;
	i = l->n++;
	while (i && pkt_before(p, l->heap[(i - 1) / 2])) {
		l->heap[i] = l->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	l->heap[i] = p;
}

static struct pkt *heap_pop(struct link *l)
{
	struct pkt *top = l->heap[0], *last = l->heap[--l->n];
	uint32_t i = 0;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= l->n)
			break;
		if (c + 1 < l->n && pkt_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!pkt_before(l->heap[c], last))
			break;
		l->heap[i] = l->heap[c];
		i = c;
	}
	if (l->n)
		l->heap[i] = last;
	return top;
}

static bool chance(uint32_t pm)
{
	return pm && test_rng_below(1000) < pm;
}

static void link_release_held(struct link *l, uint32_t i, uint32_t at)
{
	l->held[i].p->at = at;
	heap_push(l, l->held[i].p);
	l->held[i] = l->held[--l->nheld];
}

static void link_send(struct link *l, uint32_t now, const uint8_t *data, size_t len)
{
	const struct link_cfg *c = &l->cfg;
	int copies;

	l->sent++;
	if (chance(c->loss_pm)) {
		l->lost++;
		return;
	}
	copies = chance(c->dup_pm) ? 2 : 1;
	l->dups += (uint64_t)copies - 1;
	for (int i = 0; i < copies; i++) {
		uint32_t depart = now, at;
		struct pkt *p;

		if (c->rate_bpms) {
			/* the backlog is kept in µs: at 6 bytes/µs a packet takes a fraction of a ms */
			uint64_t gone = (uint64_t)(uint32_t)(now - l->backlog_at) * 1000;

			l->backlog_us = l->backlog_us > gone ? l->backlog_us - gone : 0;
			l->backlog_at = now;
			if (l->backlog_us * c->rate_bpms / 1000 + len > c->queue_bytes) {
				l->queue_drops++;
				continue;
			}
			l->backlog_us += ((uint64_t)len * 1000 + c->rate_bpms - 1) / c->rate_bpms;
			depart = now + (uint32_t)((l->backlog_us + 999) / 1000);
		}
		at = depart + c->delay_ms - c->jitter_ms;
		if (c->jitter_ms)
			at += test_rng_below(2 * c->jitter_ms + 1);
		p = malloc(sizeof(*p) + len);
		if (!p)
			abort();
		p->len = (uint32_t)len;
		memcpy(p->data, data, len);
		if (l->nheld < HELD_MAX && chance(c->reorder_pm)) {
			l->held[l->nheld].p = p;
			l->held[l->nheld].left = c->reorder_k;
			l->held[l->nheld].deadline = now + HOLD_TIMEOUT_MS;
			l->nheld++;
			continue;
		}
		p->at = at;
		heap_push(l, p);
		for (uint32_t h = 0; h < l->nheld;) {
			if (--l->held[h].left == 0)
				link_release_held(l, h, at + 1);
			else
				h++;
		}
	}
}

static void link_free(struct link *l)
{
	while (l->n)
		free(heap_pop(l));
	for (uint32_t i = 0; i < l->nheld; i++)
		free(l->held[i].p);
	free(l->heap);
	memset(l, 0, sizeof(*l));
}

/* One side: a session, the link it sends on, and a byte-stream application. */
struct ep {
	struct sim *sim;
	struct kcp *k;
	struct link *tx;
	int id;
	uint32_t mtu, reserved, mss, conv;
	uint64_t tx_total, tx_done, rx_done;
	uint32_t chunk_max;
	uint32_t resume_at;		/* relative ms; reading paused before it */
	bool paused;
	/* wire checks on every datagram out() hands over */
	uint64_t datagrams, bad_datagrams, bad_segs, input_errors, mismatches;
	uint32_t max_len;
	uint32_t nwask, nwins, nwins_open;
	uint32_t wask_at[32];
	uint32_t first_wins_open_at;
};

struct sim {
	uint32_t start, now;
	struct ep ep[2];
	struct link link[2];		/* link[i]: ep[i] → ep[1 - i] */
	uint32_t first_wnd0_at;		/* ep[0] heard wnd 0 (relative) */
	bool saw_wnd0;
};

/* The byte at offset i of the stream side `id` writes. */
static uint8_t stream_byte(int id, uint64_t i)
{
	uint64_t x = (i + 0x1234567ULL * (uint64_t)(id + 1)) * 0x9E3779B97F4A7C15ULL;

	return (uint8_t)(x >> 56);
}

static void ep_out(void *ctx, uint8_t *buf, size_t len)
{
	struct ep *e = ctx;
	struct seg s[80];
	int n;

	e->datagrams++;
	if (len > e->mtu || len <= e->reserved) {
		e->bad_datagrams++;
		return;
	}
	e->max_len = (uint32_t)MAX_OF(e->max_len, len);
	n = parse_segs(buf + e->reserved, len - e->reserved, s, 80);
	if (n < 1) {
		e->bad_datagrams++;
		return;
	}
	for (int i = 0; i < n; i++) {
		if (s[i].conv != e->conv || s[i].len > e->mss || (s[i].cmd != KCP_CMD_PUSH && s[i].frg))
			e->bad_segs++;
		if (s[i].cmd == KCP_CMD_WASK && e->nwask < N(e->wask_at))
			e->wask_at[e->nwask++] = e->sim->now - e->sim->start;
		if (s[i].cmd == KCP_CMD_WINS) {
			e->nwins++;
			if (s[i].wnd && !e->nwins_open++)
				e->first_wins_open_at = e->sim->now - e->sim->start;
		}
		if (e->id == 1 && s[i].wnd == 0 && !e->sim->saw_wnd0) {
			e->sim->saw_wnd0 = true;
			e->sim->first_wnd0_at = e->sim->now - e->sim->start;
		}
	}
	link_send(e->tx, e->sim->now, buf + e->reserved, len - e->reserved);
}

static void ep_write(struct ep *e)
{
	static uint8_t b[8192];
	bool wrote = false;

	while (e->tx_done < e->tx_total && kcp_writable(e->k)) {
		uint32_t n = 1 + test_rng_below(e->chunk_max);

		if (n > e->tx_total - e->tx_done)
			n = (uint32_t)(e->tx_total - e->tx_done);
		for (uint32_t i = 0; i < n; i++)
			b[i] = stream_byte(e->id, e->tx_done + i);
		if (kcp_send(e->k, b, n) != (int)n) {
			e->mismatches++;
			return;
		}
		e->tx_done += n;
		wrote = true;
	}
	if (wrote)	/* kcp-go flushes after a write when write delay is off */
		kcp_flush(e->k, e->sim->now);
}

static void ep_read(struct ep *e)
{
	static uint8_t b[65536];
	int n;

	if (e->paused) {
		if (d32(e->sim->now - e->sim->start, e->resume_at) < 0)
			return;
		e->paused = false;
	}
	/* random read sizes exercise reads across and inside segments */
	while ((n = kcp_recv(e->k, b, 1 + test_rng_below(sizeof(b)))) > 0) {
		for (int i = 0; i < n; i++)
			if (b[i] != stream_byte(1 - e->id, e->rx_done + (uint64_t)i))
				e->mismatches++;
		e->rx_done += (uint64_t)n;
	}
	if (n < 0)
		e->mismatches++;
}

struct scenario {
	const char *name;
	enum kcp_mode mode;
	uint32_t snd_wnd, rcv_wnd, mtu, reserved;
	struct link_cfg link;		/* both directions */
	uint64_t bytes[2];		/* ep[0] → ep[1], ep[1] → ep[0] */
	uint32_t chunk_max;
	uint32_t start;			/* virtual clock at the start */
	uint32_t sn0, sn1;		/* initial snd_nxt of each side (sn near 2^32) */
	uint32_t resume_at;		/* ep[1] does not read before this (relative ms) */
	uint32_t limit_ms;		/* give up after this much virtual time */
	uint64_t seed;
	bool rate;			/* delivery-rate control and pacing (kcp_rate.h) */
};

struct result {
	bool done;
	uint32_t time_ms;
	uint64_t retrans, datagrams, bad, mismatches, input_errors, stalls;
	uint64_t link_lost, link_dups, queue_drops;
	uint32_t max_len;
};

static struct sim sim;

static void sim_setup(const struct scenario *sc)
{
	struct kcp_params p;

	memset(&sim, 0, sizeof(sim));
	test_rng_seed(sc->seed);
	sim.start = sim.now = sc->start;
	kcp_params_default(&p);
	kcp_params_mode(&p, sc->mode);
	p.mtu = sc->mtu ? sc->mtu : 1350;
	p.reserved = sc->reserved;
	p.snd_wnd = sc->snd_wnd;
	p.rcv_wnd = sc->rcv_wnd;
	p.rate = sc->rate;
	for (int i = 0; i < 2; i++) {
		struct ep *e = &sim.ep[i];

		sim.link[i].cfg = sc->link;
		e->sim = &sim;
		e->id = i;
		e->tx = &sim.link[i];
		e->conv = 0xc0ffee00;
		e->mtu = p.mtu;
		e->reserved = p.reserved;
		e->mss = p.mtu - KCP_OVERHEAD - p.reserved;
		e->tx_total = sc->bytes[i];
		e->chunk_max = sc->chunk_max ? sc->chunk_max : 4096;
		e->k = kcp_new(e->conv, &p, pool, ep_out, e);
		if (!e->k)
			abort();
	}
	if (sc->sn0 || sc->sn1) {
		CHECK_EQ(kcp_test_set_sn(sim.ep[0].k, sc->sn0, sc->sn1), 0);
		CHECK_EQ(kcp_test_set_sn(sim.ep[1].k, sc->sn1, sc->sn0), 0);
	}
	sim.ep[1].resume_at = sc->resume_at;
	sim.ep[1].paused = sc->resume_at != 0;
}

static void sim_teardown(void)
{
	for (int i = 0; i < 2; i++) {
		kcp_free(sim.ep[i].k);
		link_free(&sim.link[i]);
	}
}

static uint32_t earliest(uint32_t a, uint32_t b)
{
	return d32(b, a) < 0 ? b : a;
}

/* Delivers everything due at sim.now, in arrival order, on both links. */
static void sim_deliver(void)
{
	for (int i = 0; i < 2; i++) {
		struct link *l = &sim.link[i];
		struct ep *dst = &sim.ep[1 - i];

		for (uint32_t h = 0; h < l->nheld;) {
			if (d32(sim.now, l->held[h].deadline) >= 0)
				link_release_held(l, h, sim.now + l->cfg.delay_ms);
			else
				h++;
		}
		while (l->n && d32(l->heap[0]->at, sim.now) <= 0) {
			struct pkt *p = heap_pop(l);

			if (kcp_input(dst->k, sim.now, p->data, p->len, true))
				dst->input_errors++;
			free(p);
		}
	}
}

static bool sim_done(void)
{
	for (int i = 0; i < 2; i++)
		if (sim.ep[i].rx_done < sim.ep[1 - i].tx_total)
			return false;
	return true;
}

/* The next time anything happens: a session's check(), an arrival, a hold timeout, the
 * reader's resume time. */
static uint32_t sim_next(void)
{
	uint32_t next = kcp_check(sim.ep[0].k, sim.now);

	next = earliest(next, kcp_check(sim.ep[1].k, sim.now));
	for (int i = 0; i < 2; i++) {
		struct link *l = &sim.link[i];

		if (l->n)
			next = earliest(next, d32(l->heap[0]->at, sim.now) > 0 ? l->heap[0]->at : sim.now);
		for (uint32_t h = 0; h < l->nheld; h++)
			next = earliest(next, l->held[h].deadline);
	}
	if (sim.ep[1].paused)
		next = earliest(next, sim.start + sim.ep[1].resume_at);
	return d32(next, sim.now) < 0 ? sim.now : next;
}

static void sim_run(const struct scenario *sc, struct result *r)
{
	uint32_t same = 0;

	sim_setup(sc);
	memset(r, 0, sizeof(*r));
	for (;;) {
		uint32_t next;

		sim_deliver();
		for (int i = 0; i < 2; i++) {
			ep_write(&sim.ep[i]);
			ep_read(&sim.ep[i]);
		}
		for (int i = 0; i < 2; i++)
			kcp_update(sim.ep[i].k, sim.now);
		if (sim_done()) {
			r->done = true;
			break;
		}
		if ((uint32_t)(sim.now - sim.start) > sc->limit_ms)
			break;
		next = sim_next();
		/* check() == now right after update() would mean update() ignored a due flush */
		if (next == sim.now) {
			if (++same > 4) {
				r->stalls++;
				next = sim.now + 1;
			}
		} else {
			same = 0;
		}
		sim.now = next;
	}
	r->time_ms = sim.now - sim.start;
	for (int i = 0; i < 2; i++) {
		struct ep *e = &sim.ep[i];

		r->retrans += kcp_stats(e->k)->retrans;
		r->datagrams += e->datagrams;
		r->bad += e->bad_datagrams + e->bad_segs;
		r->mismatches += e->mismatches;
		r->input_errors += e->input_errors;
		r->link_lost += sim.link[i].lost;
		r->link_dups += sim.link[i].dups;
		r->queue_drops += sim.link[i].queue_drops;
		r->max_len = MAX_OF(r->max_len, e->max_len);
	}
	printf("  # %-15s %6u ms %7llu datagrams %6llu retrans (link lost %llu, dup %llu, queue drops %llu)\n",
	       sc->name, r->time_ms, (unsigned long long)r->datagrams,
	       (unsigned long long)r->retrans, (unsigned long long)r->link_lost,
	       (unsigned long long)r->link_dups, (unsigned long long)r->queue_drops);
}

/*
 * Runs a scenario and checks §4.1's invariants plus the recorded bounds: completion time
 * and retransmissions of the first run (printed as "# name ...") plus about 30 %, so a
 * change that makes recovery slower or noisier fails here.
 */
static void run_scenario(const struct scenario *sc, uint32_t max_ms, uint64_t max_retrans,
			 struct result *out)
{
	struct result r;

	sim_run(sc, &r);
	if (out)
		*out = r;
	CHECK(r.done);
	CHECK_EQ(sim.ep[1].rx_done, sc->bytes[0]);
	CHECK_EQ(sim.ep[0].rx_done, sc->bytes[1]);
	CHECK_EQ(r.mismatches, 0);
	CHECK_EQ(r.bad, 0);
	CHECK_EQ(r.input_errors, 0);
	CHECK_EQ(r.stalls, 0);
	CHECK(r.max_len <= (sc->mtu ? sc->mtu : 1350));
	CHECK(r.time_ms <= max_ms);
	CHECK(r.retrans <= max_retrans);
	sim_teardown();
}

#define KB 1024u
#define MB (1024u * 1024u)

static struct scenario base(const char *name, enum kcp_mode mode, uint32_t loss_pm, uint64_t bytes)
{
	struct scenario sc = {
		.name = name,
		.mode = mode,
		.snd_wnd = 256,
		.rcv_wnd = 256,
		.reserved = 20,
		.link = { .loss_pm = loss_pm, .delay_ms = 20 },
		.bytes = { bytes, 0 },
		.limit_ms = 600000,
		.seed = 0x5eed0000u + loss_pm,
	};

	return sc;
}

static void test_kcp_sim_loss_0(void)
{
	struct scenario sc = base("loss 0%", KCP_MODE_FAST, 0, 2 * MB);

	run_scenario(&sc, 600, 0, NULL);
}

static void test_kcp_sim_loss_1(void)
{
	struct scenario sc = base("loss 1%", KCP_MODE_FAST, 10, 2 * MB);

	run_scenario(&sc, 900, 40, NULL);
}

static void test_kcp_sim_loss_5(void)
{
	struct scenario sc = base("loss 5%", KCP_MODE_FAST, 50, 2 * MB);

	run_scenario(&sc, 1100, 250, NULL);
}

static void test_kcp_sim_loss_20(void)
{
	struct scenario sc = base("loss 20%", KCP_MODE_FAST2, 200, 1 * MB);

	run_scenario(&sc, 900, 750, NULL);
}

static void test_kcp_sim_loss_50(void)
{
	struct scenario sc = base("loss 50%", KCP_MODE_FAST3, 500, 512 * KB);

	sc.snd_wnd = sc.rcv_wnd = 128;
	run_scenario(&sc, 3000, 1500, NULL);
}

/* 25 % of packets held back by up to 10 others (k = 10), 1 % loss. */
static void test_kcp_sim_reorder(void)
{
	struct scenario sc = base("reorder", KCP_MODE_FAST, 10, 2 * MB);

	sc.link.reorder_pm = 250;
	sc.link.reorder_k = 10;
	run_scenario(&sc, 800, 420, NULL);
}

static void test_kcp_sim_duplication(void)
{
	struct scenario sc = base("dup 5%", KCP_MODE_FAST, 10, 2 * MB);

	sc.link.dup_pm = 50;
	run_scenario(&sc, 900, 40, NULL);
}

/* 60 ± 50 ms per packet: heavy reordering by delay alone. */
static void test_kcp_sim_jitter(void)
{
	struct scenario sc = base("jitter", KCP_MODE_FAST, 10, 2 * MB);

	sc.link.delay_ms = 60;
	sc.link.jitter_ms = 50;
	run_scenario(&sc, 1900, 2100, NULL);
}

/* 2 MB/s (16 Mbit/s) with a 64 KB queue: the window overruns the queue, tail drops. */
static void test_kcp_sim_bandwidth_bounded_queue(void)
{
	struct scenario sc = base("rate+queue", KCP_MODE_FAST, 0, 2 * MB);
	struct result r;

	sc.link.rate_bpms = 2000;
	sc.link.queue_bytes = 64 * KB;
	run_scenario(&sc, 4200, 3600, &r);
	CHECK(r.queue_drops > 0);
}

/*
 * The benchmark's path (bench/kcp.sh): 50 Mbit/s, a 20 ms tail-drop queue, 50 ms RTT, fast3
 * with kcptun's 1024-segment windows. Without congestion control (nc = 1) every window
 * overruns the queue; the rate controller keeps the queue short and the link busy.
 */
static struct scenario bench_path(const char *name, uint32_t loss_pm, bool rate)
{
	struct scenario sc = base(name, KCP_MODE_FAST3, loss_pm, 24 * MB);

	sc.snd_wnd = sc.rcv_wnd = 1024;
	sc.chunk_max = 8192;
	sc.link.delay_ms = 25;
	sc.link.rate_bpms = 6250;
	sc.link.queue_bytes = 125000;
	sc.rate = rate;
	return sc;
}

/* Runs the same path without (nc = 1) and with rate control; goodput in Mbit/s of each. */
static void compare(struct scenario *off, struct scenario *on, double *mbit_off, double *mbit_on,
		    struct result *r_off, struct result *r_on)
{
	double mbit = (double)off->bytes[0] * 8 / 1e6;

	run_scenario(off, 60000, UINT64_MAX, r_off);
	run_scenario(on, 60000, UINT64_MAX, r_on);
	*mbit_off = mbit / r_off->time_ms * 1000;
	*mbit_on = mbit / r_on->time_ms * 1000;
	printf("  # goodput nc=1 %.1f Mbit/s, rate %.1f Mbit/s\n", *mbit_off, *mbit_on);
}

/* 50 Mbit/s bottleneck, 0 % loss: near line rate with a tenth of the tail drops. */
static void test_kcp_rate_fills_bottleneck_without_tail_drops(void)
{
	struct scenario off = bench_path("50M nc=1", 0, false), on = bench_path("50M rate", 0, true);
	struct result a, b;
	double m_off, m_on;

	compare(&off, &on, &m_off, &m_on, &a, &b);
	CHECK(m_on >= 42.0);			/* of 50, KCP headers included */
	CHECK(m_on >= 1.5 * m_off);
	CHECK(b.queue_drops * 10 < a.queue_drops);
	CHECK(b.retrans * 10 < a.retrans);
}

/* The same at 5 % random loss each way: loss is not taken for congestion. */
static void test_kcp_rate_ignores_random_loss(void)
{
	struct scenario off = bench_path("50M 5% nc=1", 50, false), on = bench_path("50M 5% rate", 50, true);
	struct result a, b;
	double m_off, m_on;

	compare(&off, &on, &m_off, &m_on, &a, &b);
	CHECK(m_on >= 36.0);
	CHECK(m_on >= 1.5 * m_off);
}

/* No bottleneck at all: the ramp-up costs little against sending the window at once. */
static void test_kcp_rate_without_bottleneck_ramps_up(void)
{
	struct scenario off = bench_path("nolimit nc=1", 0, false), on = bench_path("nolimit rate", 0, true);
	struct result a, b;
	double m_off, m_on;

	off.link.rate_bpms = on.link.rate_bpms = 0;
	compare(&off, &on, &m_off, &m_on, &a, &b);
	CHECK(m_on >= 0.6 * m_off);
	CHECK_EQ(b.retrans, 0);
}

/* 1 Gbit/s with a 2 ms RTT (a ms clock cannot time one round trip well) and 256 KB of queue. */
static void test_kcp_rate_short_rtt_fast_link(void)
{
	struct scenario off = bench_path("lan nc=1", 0, false), on = bench_path("lan rate", 0, true);
	struct result a, b;
	double m_off, m_on;

	off.link.rate_bpms = on.link.rate_bpms = 125000;
	off.link.queue_bytes = on.link.queue_bytes = 256 * KB;
	off.link.delay_ms = on.link.delay_ms = 1;
	compare(&off, &on, &m_off, &m_on, &a, &b);
	CHECK(m_on >= 2 * m_off);
	CHECK(b.queue_drops * 4 < a.queue_drops);
}

/*
 * Both ways at once on a 0 ms link, as an echo through the tunnel on one host: round trips
 * shorter than the ms clock must not end STARTUP with an estimate far below the link.
 */
static void test_kcp_rate_echo_on_a_zero_rtt_link(void)
{
	struct scenario sc = bench_path("echo 0ms rate", 0, true);
	struct result r;

	sc.bytes[0] = sc.bytes[1] = 16 * MB;
	sc.link.delay_ms = 0;
	sc.link.rate_bpms = 125000;
	sc.link.queue_bytes = 256 * KB;
	run_scenario(&sc, 60000, UINT64_MAX, &r);
	/* 2 × 16 MB over two 1 Gbit/s directions: 134 ms at line rate */
	CHECK(r.time_ms <= 600);
}

/* Both directions at once at 5 % loss (ACKs and data share datagrams). */
static void test_kcp_sim_bidirectional(void)
{
	struct scenario sc = base("bidirectional", KCP_MODE_FAST, 50, MB);

	sc.bytes[1] = MB;
	run_scenario(&sc, 550, 110, NULL);
}

/* The larger transfer: fast3, kcptun server windows, 20 % loss each way. */
static void test_kcp_sim_fast3_20_percent_loss_large(void)
{
	struct scenario sc = base("fast3 20% 100MB", KCP_MODE_FAST3, 200, 100 * MB);

	sc.snd_wnd = sc.rcv_wnd = 1024;
	sc.chunk_max = 8192;
	run_scenario(&sc, 18500, 55000, NULL);
}

/* The clock wraps through 2^32 mid-transfer. */
static void test_kcp_sim_clock_wraps(void)
{
	struct scenario sc = base("clock wrap", KCP_MODE_FAST, 50, MB);

	sc.start = 0xffffffffu - 100;
	sc.bytes[1] = 256 * KB;
	run_scenario(&sc, 600, 220, NULL);
	CHECK(sim.now < sc.start);	/* it did wrap */
}

/* Sequence numbers wrap through 2^32 mid-transfer, with reordering. */
static void test_kcp_sim_sn_wraps(void)
{
	struct scenario sc = base("sn wrap", KCP_MODE_FAST, 50, MB);
	struct kcp_state st;
	struct result r;

	sc.sn0 = 0xffffff00u;
	sc.sn1 = 0xfffffff0u;
	sc.bytes[1] = 256 * KB;
	sc.link.reorder_pm = 100;
	sc.link.reorder_k = 5;
	sim_run(&sc, &r);
	CHECK(r.done);
	CHECK_EQ(r.mismatches, 0);
	CHECK_EQ(r.bad, 0);
	kcp_inspect(sim.ep[0].k, &st);
	CHECK(st.snd_nxt > 100 && st.snd_nxt < 0x1000);	/* wrapped */
	{
		uint32_t sent0 = st.snd_nxt;

		kcp_inspect(sim.ep[1].k, &st);
		CHECK_EQ(st.rcv_nxt, sent0);
		CHECK(st.snd_nxt > 10 && st.snd_nxt < 0x1000);
	}
	CHECK(r.time_ms <= 950);
	CHECK(r.retrans <= 360);
	sim_teardown();
}

/*
 * Zero window: the receiver does not read for 480 s. The sender hears wnd 0, probes after
 * 7 s, then every 10.5, 15.75, 23.6, 35.4, 53.2, 79.7, 119.6 s, then every 120 s (each
 * probe_wait += probe_wait / 2, capped); each WASK is answered by a WINS (wnd 0). When the
 * reader resumes, its next flush sends a WINS with an open window and the transfer ends.
 */
static void test_kcp_sim_zero_window_probe_and_resume(void)
{
	static const uint32_t gaps[] = { 10500, 15750, 23625, 35437, 53155, 79732, 119598, 120000 };
	struct scenario sc = base("zero window", KCP_MODE_FAST3, 0, 512 * KB);
	struct result r;
	struct ep *a, *b;
	uint32_t interval = 10;

	sc.snd_wnd = sc.rcv_wnd = 32;
	sc.link.delay_ms = 5;
	sc.resume_at = 480000;
	sim_run(&sc, &r);
	a = &sim.ep[0];
	b = &sim.ep[1];
	CHECK(r.done);
	CHECK_EQ(r.mismatches, 0);
	CHECK_EQ(r.bad, 0);
	CHECK(sim.saw_wnd0);
	CHECK_EQ(a->nwask, 1 + N(gaps));
	/* the sender starts its probe clock at its first flush after hearing wnd 0 */
	CHECK(a->wask_at[0] >= sim.first_wnd0_at + sc.link.delay_ms + 7000);
	CHECK(a->wask_at[0] <= sim.first_wnd0_at + sc.link.delay_ms + 7000 + interval);
	for (size_t i = 0; i < N(gaps) && i + 1 < a->nwask; i++) {
		uint32_t gap = a->wask_at[i + 1] - a->wask_at[i];

		CHECK(gap >= gaps[i] && gap <= gaps[i] + interval);
	}
	CHECK(b->nwins >= a->nwask);	/* every probe answered (plus the reopening) */
	CHECK_EQ(a->nwins, 0);
	CHECK(b->nwins_open >= 1);
	CHECK(b->first_wins_open_at >= sc.resume_at);
	CHECK(b->first_wins_open_at <= sc.resume_at + interval);
	CHECK(r.time_ms < sc.resume_at + 2000);
	sim_teardown();
}

/* ---- message mode through the simulator ---- */

/* 1 fragment, 255 fragments, and 256 refused; messages arrive whole over a lossy link. */
static void test_kcp_sim_message_mode(void)
{
	static uint8_t msg[255 * 100], got[255 * 100 + 1];
	struct kcp_params p;
	struct ep *a, *b;
	int n, phase = 0;
	struct scenario sc = base("message", KCP_MODE_FAST, 50, 0);

	sim_setup(&sc);
	/* replace the stream sessions with message-mode ones, mss 100 */
	kcp_free(sim.ep[0].k);
	kcp_free(sim.ep[1].k);
	kcp_params_default(&p);
	kcp_params_mode(&p, KCP_MODE_FAST);
	p.mtu = 124;
	p.stream = false;
	p.snd_wnd = p.rcv_wnd = 256;
	a = &sim.ep[0];
	b = &sim.ep[1];
	for (int i = 0; i < 2; i++) {
		sim.ep[i].mtu = 124;
		sim.ep[i].reserved = 0;
		sim.ep[i].mss = 100;
		sim.ep[i].k = kcp_new(sim.ep[i].conv, &p, pool, ep_out, &sim.ep[i]);
	}
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + i / 251);
	CHECK_EQ(kcp_send(a->k, msg, 50), 50);
	/* phase 0: the 1-fragment message in flight; 1: waiting to send the 255-fragment one
	 * (the peer's window must be known and free); 2: it is in flight; 3: received */
	for (int step = 0; step < 200000 && phase < 3; step++) {
		sim_deliver();
		if (phase == 1 && kcp_waitsnd(a->k) == 0 && kcp_writable(a->k)) {
			CHECK_EQ(kcp_send(a->k, msg, sizeof(msg) + 1), -EMSGSIZE);
			CHECK_EQ(kcp_send(a->k, msg, sizeof(msg)), (int)sizeof(msg));
			kcp_flush(a->k, sim.now);
			phase = 2;
		}
		while ((n = kcp_recv(b->k, got, sizeof(got))) > 0) {
			if (phase == 0) {
				CHECK_EQ(n, 50);
				CHECK(!memcmp(got, msg, 50));
				phase = 1;
			} else {
				CHECK_EQ(phase, 2);
				CHECK_EQ(n, (int)sizeof(msg));
				CHECK(!memcmp(got, msg, sizeof(msg)));
				phase = 3;
			}
		}
		CHECK_EQ(n, -EAGAIN);
		kcp_update(a->k, sim.now);
		kcp_update(b->k, sim.now);
		sim.now = sim_next();
	}
	CHECK_EQ(phase, 3);
	CHECK_EQ(a->bad_segs + b->bad_segs + a->bad_datagrams + b->bad_datagrams, 0);
	sim_teardown();
}

/* The second of two identical transfers through one pool takes no segment from malloc. */
static void test_kcp_pool_steady_traffic_does_not_malloc(void)
{
	struct scenario sc = base("pool reuse", KCP_MODE_FAST, 50, 512 * KB);
	struct kcp_pool *saved = pool;
	uint64_t mallocs1, mallocs2;
	uint32_t cached;
	struct result r;

	pool = kcp_pool_new();
	sim_run(&sc, &r);
	CHECK(r.done);
	sim_teardown();
	kcp_pool_counts(pool, &mallocs1, &cached);
	CHECK(mallocs1 > 0);
	CHECK_EQ(cached, mallocs1);	/* every segment came back */
	sim_run(&sc, &r);
	CHECK(r.done);
	sim_teardown();
	kcp_pool_counts(pool, &mallocs2, &cached);
	CHECK_EQ(mallocs2, mallocs1);
	kcp_pool_free(pool);
	pool = saved;
}

/* ---- check() is never late: a twin driven by check() sends exactly what a twin updated
 * every millisecond sends, at the same times ---- */

#define TWIN_MAX 20000

struct twin_log {
	uint32_t n;
	uint32_t hash[TWIN_MAX];
	uint32_t at[TWIN_MAX];
};

static struct twin_log twin_log[2];
static uint32_t twin_now;

static uint32_t fnv(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void twin_record(struct twin_log *l, const uint8_t *buf, size_t len)
{
	if (l->n < TWIN_MAX) {
		l->hash[l->n] = fnv(buf, len);
		l->at[l->n] = twin_now;
		l->n++;
	}
}

static void twin_out_a(void *ctx, uint8_t *buf, size_t len)
{
	twin_record(&twin_log[0], buf, len);
	link_send(&sim.link[0], twin_now, buf, len);
}

static void twin_out_b(void *ctx, uint8_t *buf, size_t len)
{
	twin_record(&twin_log[1], buf, len);
}

static void twin_out_peer(void *ctx, uint8_t *buf, size_t len)
{
	link_send(&sim.link[1], twin_now, buf, len);
}

static void test_kcp_check_never_later_than_next_flush(void)
{
	static uint8_t b[16384];
	struct kcp_params p;
	struct kcp *a, *bb, *peer;
	uint32_t b_next, t0 = 1000;
	uint64_t written = 0, total = 300 * KB;
	uint32_t bad_check = 0, writable_differs = 0;
	int n;

	memset(&sim, 0, sizeof(sim));
	memset(twin_log, 0, sizeof(twin_log));
	test_rng_seed(77);
	for (int i = 0; i < 2; i++)
		sim.link[i].cfg = (struct link_cfg){ .loss_pm = 250, .delay_ms = 15, .jitter_ms = 10 };
	kcp_params_default(&p);
	kcp_params_mode(&p, KCP_MODE_FAST2);
	p.mtu = 1200;
	p.snd_wnd = p.rcv_wnd = 64;
	a = kcp_new(1, &p, pool, twin_out_a, NULL);
	bb = kcp_new(1, &p, pool, twin_out_b, NULL);
	peer = kcp_new(1, &p, pool, twin_out_peer, NULL);
	b_next = t0;
	for (twin_now = t0; twin_now < t0 + 60000 && written < total; twin_now++) {
		while (sim.link[1].n && d32(sim.link[1].heap[0]->at, twin_now) <= 0) {
			struct pkt *pk = heap_pop(&sim.link[1]);

			kcp_input(a, twin_now, pk->data, pk->len, true);
			kcp_input(bb, twin_now, pk->data, pk->len, true);
			free(pk);
			b_next = kcp_check(bb, twin_now);
		}
		while (sim.link[0].n && d32(sim.link[0].heap[0]->at, twin_now) <= 0) {
			struct pkt *pk = heap_pop(&sim.link[0]);

			kcp_input(peer, twin_now, pk->data, pk->len, true);
			free(pk);
		}
		if (kcp_writable(a) != kcp_writable(bb))
			writable_differs++;
		/* bursts with pauses: tail losses only a timeout recovers */
		if (kcp_writable(a) && written < total && (twin_now - t0) % 700 < 200) {
			uint32_t len = 1 + test_rng_below(sizeof(b));

			if (len > total - written)
				len = (uint32_t)(total - written);

			kcp_send(a, b, len);
			kcp_send(bb, b, len);
			written += len;
			kcp_flush(a, twin_now);
			kcp_flush(bb, twin_now);
			b_next = kcp_check(bb, twin_now);
		}
		while ((n = kcp_recv(peer, b, sizeof(b))) > 0)
			;
		kcp_update(a, twin_now);
		kcp_update(peer, twin_now);
		if (d32(twin_now, b_next) >= 0) {
			kcp_update(bb, twin_now);
			b_next = kcp_check(bb, twin_now);
			if (d32(b_next, twin_now) <= 0 || d32(b_next, twin_now) > 20)
				bad_check++;
		}
	}
	CHECK_EQ(written, total);
	CHECK_EQ(writable_differs, 0);
	CHECK_EQ(bad_check, 0);
	CHECK(twin_log[0].n > 200);
	CHECK_EQ(twin_log[1].n, twin_log[0].n);
	for (uint32_t i = 0; i < twin_log[0].n && i < twin_log[1].n; i++) {
		if (twin_log[0].at[i] != twin_log[1].at[i] || twin_log[0].hash[i] != twin_log[1].hash[i]) {
			CHECK_EQ(twin_log[1].at[i], twin_log[0].at[i]);
			CHECK_EQ(twin_log[1].hash[i], twin_log[0].hash[i]);
			break;
		}
	}
	CHECK(kcp_stats(a)->lost >= 5);	/* timeouts happened between ticks */
	kcp_free(a);
	kcp_free(bb);
	kcp_free(peer);
	link_free(&sim.link[0]);
	link_free(&sim.link[1]);
}

int main(void)
{
	pool = kcp_pool_new();
	if (!pool)
		return 1;
	RUN(test_kcp_golden_server_ack_matches_capture);
	RUN(test_kcp_golden_client_push_matches_capture);
	RUN(test_kcp_golden_default_profile_push);
	RUN(test_kcp_packs_many_acks_per_datagram);
	RUN(test_kcp_acks_below_rcv_nxt_are_implied_by_una);
	RUN(test_kcp_flush_order_acks_probes_data);
	RUN(test_kcp_input_short_datagram_is_rejected);
	RUN(test_kcp_input_conv_mismatch_stops_after_earlier_segments);
	RUN(test_kcp_input_truncated_segment_stops);
	RUN(test_kcp_input_unknown_cmd_stops);
	RUN(test_kcp_input_oversize_push_is_rejected);
	RUN(test_kcp_input_trailing_bytes_are_ignored);
	RUN(test_kcp_push_outside_window_dropped_without_ack);
	RUN(test_kcp_una_removes_in_flight_segments);
	RUN(test_kcp_acked_segment_is_not_resent);
	RUN(test_kcp_rto_follows_kcp_go_estimator);
	RUN(test_kcp_rto_slow_variance_branch);
	RUN(test_kcp_rto_clamped_and_irregular_input_ignored);
	RUN(test_kcp_fast_retransmit_after_exactly_resend_acks);
	RUN(test_kcp_fast_retransmit_ignores_reordered_old_acks);
	RUN(test_kcp_early_retransmit_on_tail_loss_without_fast_resend);
	RUN(test_kcp_timeout_backoff_nodelay_0_and_1);
	RUN(test_kcp_congestion_slow_start_halving_and_timeout);
	RUN(test_kcp_nocwnd_sends_full_window);
	RUN(test_kcp_dead_link_after_20_transmissions);
	RUN(test_kcp_stream_coalesces_small_writes);
	RUN(test_kcp_stream_tops_up_last_unsent_segment);
	RUN(test_kcp_send_backpressure_all_or_nothing);
	RUN(test_kcp_message_fragments_1_255_and_256_rejected);
	RUN(test_kcp_message_recv_whole_messages);
	RUN(test_kcp_stream_recv_partial_reads);
	RUN(test_kcp_stream_empty_push_is_consumed);
	RUN(test_kcp_full_ack_list_is_flushed_early);
	RUN(test_kcp_recv_reopening_window_sends_wins);
	RUN(test_kcp_ack_nodelay_flushes_acks_after_input);
	RUN(test_kcp_window_slide_flushes_after_input);
	RUN(test_kcp_wask_is_answered_with_wins);
	RUN(test_kcp_update_and_check_follow_the_interval);
	RUN(test_kcp_params_presets_and_limits);
	RUN(test_kcp_check_never_later_than_next_flush);
	RUN(test_kcp_pool_steady_traffic_does_not_malloc);
	RUN(test_kcp_sim_loss_0);
	RUN(test_kcp_sim_loss_1);
	RUN(test_kcp_sim_loss_5);
	RUN(test_kcp_sim_loss_20);
	RUN(test_kcp_sim_loss_50);
	RUN(test_kcp_sim_reorder);
	RUN(test_kcp_sim_duplication);
	RUN(test_kcp_sim_jitter);
	RUN(test_kcp_sim_bandwidth_bounded_queue);
	RUN(test_kcp_sim_bidirectional);
	RUN(test_kcp_rate_fills_bottleneck_without_tail_drops);
	RUN(test_kcp_rate_ignores_random_loss);
	RUN(test_kcp_rate_without_bottleneck_ramps_up);
	RUN(test_kcp_rate_short_rtt_fast_link);
	RUN(test_kcp_rate_echo_on_a_zero_rtt_link);
	RUN(test_kcp_sim_fast3_20_percent_loss_large);
	RUN(test_kcp_sim_clock_wraps);
	RUN(test_kcp_sim_sn_wraps);
	RUN(test_kcp_sim_zero_window_probe_and_resume);
	RUN(test_kcp_sim_message_mode);
	kcp_pool_free(pool);
	TEST_EXIT();
}
