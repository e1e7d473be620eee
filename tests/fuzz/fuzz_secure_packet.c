/*
 * libFuzzer target for proto/secure's packet paths (spec/kcp.md §4.5): all five packet types
 * into sessions in every state, with a fixed PSK. Per input, fresh contexts are built with
 * deterministic randomness so that one pair of sessions has exactly the §3.13 keys
 * (k_i2r/k_r2i, indices 0x11111111/0x22222222): the input can then carry DATA and CONTROL
 * packets sealed under the right keys, which reach the rekey and close paths, as well as
 * raw bytes, which must all be dropped.
 *
 * Input: records of [op][len][len bytes]. op % 8 picks the target: 0 responder routing
 * (type 1 to secure_responder_accept, others through secure_ctx_lookup), 1 initiator
 * routing, 2 the established initiator, 3 the established responder, 4 an initiator in
 * handshake, 5 a half-open responder, 6 a closed session, 7 "advance time by len × 50 ms,
 * tick everything, seal a keepalive both ways" (no bytes follow). Bit 3 of op seals the bytes as a DATA/CONTROL
 * packet under the pair's keys towards the target (first byte: bit 0 CONTROL, bits 1-7 a
 * counter step) instead of sending them raw. Bit 4 instead forwards the last packet the core
 * sent to the other side (so rekeys, cookies and closes can run to the end).
 *
 * Properties: no crash or sanitizer report; a call that drops a packet increments exactly
 * one drop counter and sends nothing; a call that does not drop increments none;
 * secure_open returns at most the plaintext length; every packet the core sends has a legal
 * type, zero reserved bytes and one of the sizes the core produces; the responder never sends
 * more bytes than it received in msg 1s.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sodium.h"
#include "proto/secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* §3.13 keys of the fixed handshake (tests/vectors/secure_vectors.py) */
static const uint8_t K_I2R[32] = {
	0x27, 0x34, 0x11, 0xa2, 0x0d, 0x40, 0x3f, 0xf9, 0xba, 0x52, 0x9d, 0xf1, 0xd8, 0x01, 0x2e, 0x77,
	0x2b, 0xa2, 0x80, 0xec, 0x3b, 0xee, 0x3a, 0x4f, 0xee, 0x56, 0x40, 0x71, 0x94, 0x7d, 0xc6, 0x64,
};
static const uint8_t K_R2I[32] = {
	0xc0, 0x1d, 0xf1, 0xc8, 0x63, 0x72, 0x3d, 0x21, 0x6a, 0x12, 0xb9, 0xcf, 0xeb, 0xc9, 0xd9, 0xd4,
	0x56, 0x67, 0x7d, 0xce, 0x38, 0xc2, 0x41, 0x29, 0xe4, 0xe7, 0x71, 0x98, 0x88, 0x75, 0x91, 0x11,
};
#define I_INDEX 0x11111111u
#define R_INDEX 0x22222222u
#define CONV 0x33333333u
#define UNIX_MS 1700000000000ULL
#define MAX_EXTRA 8

static void fail(const char *what, long v)
{
	fprintf(stderr, "%s (%ld)\n", what, v);
	abort();
}

/* ---- deterministic randomness: scripted chunks, then xorshift ---- */

static struct {
	uint8_t chunk[2][32];
	size_t len[2];
	int count, next;
	uint64_t x;
} rnd;

static void rnd_hook(void *arg, void *buf, size_t n)
{
	uint8_t *b = buf;

	(void)arg;
	if (rnd.next < rnd.count) {
		memcpy(b, rnd.chunk[rnd.next], n < rnd.len[rnd.next] ? n : rnd.len[rnd.next]);
		rnd.next++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		rnd.x ^= rnd.x >> 12;
		rnd.x ^= rnd.x << 25;
		rnd.x ^= rnd.x >> 27;
		b[i] = (uint8_t)((rnd.x * 0x2545F4914F6CDD1DULL) >> 56);
	}
}

/* The next two draws: an index (4 bytes LE) and a private key first, first + 1, ... */
static void rnd_script(uint32_t index, uint8_t first)
{
	for (int i = 0; i < 4; i++)
		rnd.chunk[0][i] = (uint8_t)(index >> (8 * i));
	rnd.len[0] = 4;
	for (int i = 0; i < 32; i++)
		rnd.chunk[1][i] = (uint8_t)(first + i);
	rnd.len[1] = 32;
	rnd.count = 2;
	rnd.next = 0;
}

/* ---- io: count and keep the last packet, check each one ---- */

static struct {
	int pkts;
	uint64_t bytes;
	uint8_t last[256];
	size_t last_n;
	bool last_from_r;
} tap;

static int role_i, role_r;

static void io_send(void *ctx, const uint8_t *p, size_t n)
{
	if (secure_packet_type(p, n) < 0 || p[1] | p[2] | p[3])
		fail("core sent a malformed packet", (long)n);
	if (n != SECURE_INIT_BYTES && n != SECURE_RESP_BYTES && n != SECURE_COOKIE_BYTES &&
	    n != SECURE_OVERHEAD && n != SECURE_OVERHEAD + SECURE_CLOSE_BYTES &&
	    n != SECURE_OVERHEAD + SECURE_REKEY_INIT_BYTES && n != SECURE_OVERHEAD + SECURE_REKEY_ACK_BYTES)
		fail("core sent a packet of an unexpected size", (long)n);
	tap.pkts++;
	tap.bytes += n;
	memcpy(tap.last, p, n);
	tap.last_n = n;
	tap.last_from_r = ctx == &role_r;
}

static void io_event(void *ctx, const struct secure_event *ev)
{
	(void)ctx;
	if (ev->type < SECURE_EV_HANDSHAKE_OK || ev->type > SECURE_EV_AUTH_FAIL)
		fail("unknown event", ev->type);
}

static const struct secure_io io = { &role_i, io_send, io_event };	/* initiator side */
static const struct secure_io io_r = { &role_r, io_send, io_event };	/* responder side */

static uint64_t drops(const struct secure_stats *st)
{
	return st->bad_len + st->bad_type + st->reserved + st->unknown_index + st->replay + st->too_old +
	       st->auth_fail + st->key_expired + st->conv_mismatch + st->unknown_ctype + st->bad_control +
	       st->not_ready + st->hs_rate + st->hs_auth_fail + st->hs_version + st->hs_index_mismatch +
	       st->hs_bad_mtu + st->hs_skew + st->hs_replay + st->hs_cookie_required + st->hs_cookie_rate +
	       st->hs_half_open_full + st->hs_sessions_full + st->hs_low_order + st->resp_auth_fail +
	       st->resp_mismatch + st->cookie_auth_fail + st->rekey_stale + st->rekey_low_order + st->index_full;
}

/* ---- the world of one input ---- */

enum { S_I_EST, S_R_EST, S_I_HS, S_R_HALF, S_CLOSED, S_N };

static struct {
	struct secure_ctx *ci, *cr;
	struct secure_sess *s[S_N];
	struct secure_sess *extra[MAX_EXTRA];	/* sessions the responder accepted from the input */
	int nextra;
	uint32_t now;
	uint64_t ctr_to_r, ctr_to_i;
	struct sockaddr_in src;
} w;

static void world_build(void)
{
	struct secure_cfg a, b;
	uint8_t m[256], plain[64];
	size_t mn;

	memset(&w, 0, sizeof(w));
	memset(&rnd, 0, sizeof(rnd));
	rnd.x = 0x9e3779b97f4a7c15ULL;
	w.now = 1000;
	w.src.sin_family = AF_INET;
	w.src.sin_addr.s_addr = htonl(0xc0000201);
	w.src.sin_port = htons(4000);
	secure_cfg_default(&a);
	for (int i = 0; i < 32; i++)
		a.psk[i] = (uint8_t)i;
	a.max_sessions = 16;
	b = a;
	a.worker_id = 0x11;
	b.worker_id = 0x22;
	b.responder = true;
	b.replay_cache_entries = 64;
	b.max_half_open = 8;
	w.ci = secure_ctx_new(&a);
	w.cr = secure_ctx_new(&b);
	if (!w.ci || !w.cr)
		fail("ctx_new", 0);

	/* the §3.13 pair, established (key confirmation delivered) */
	rnd_script(I_INDEX, 0x20);
	w.s[S_I_EST] = secure_initiator_new(w.ci, CONV, w.now, UNIX_MS, &io);
	mn = tap.last_n;
	memcpy(m, tap.last, mn);
	rnd_script(R_INDEX, 0x40);
	w.s[S_R_EST] = secure_responder_accept(w.cr, m, mn, (struct sockaddr *)&w.src, sizeof(w.src), w.now, UNIX_MS,
					       &io_r);
	if (!w.s[S_I_EST] || !w.s[S_R_EST])
		fail("vector pair", 0);
	mn = tap.last_n;
	memcpy(m, tap.last, mn);
	secure_open(w.s[S_I_EST], w.now, m, mn, plain, sizeof(plain), NULL);
	mn = tap.last_n;
	memcpy(m, tap.last, mn);
	secure_open(w.s[S_R_EST], w.now, m, mn, plain, sizeof(plain), NULL);
	if (secure_state(w.s[S_I_EST]) != SECURE_ESTABLISHED || secure_state(w.s[S_R_EST]) != SECURE_ESTABLISHED)
		fail("vector pair not established", 0);
	w.ctr_to_r = w.ctr_to_i = 100;

	/* an initiator in handshake whose msg 1 made a half-open responder session */
	w.s[S_I_HS] = secure_initiator_new(w.ci, 0, w.now, UNIX_MS, &io);
	mn = tap.last_n;
	memcpy(m, tap.last, mn);
	w.s[S_R_HALF] = secure_responder_accept(w.cr, m, mn, (struct sockaddr *)&w.src, sizeof(w.src), w.now,
						UNIX_MS, &io_r);
	/* a closed one */
	w.s[S_CLOSED] = secure_initiator_new(w.ci, 0, w.now, UNIX_MS, &io);
	if (!w.s[S_I_HS] || !w.s[S_R_HALF] || !w.s[S_CLOSED])
		fail("world sessions", 0);
	secure_close(w.s[S_CLOSED], SECURE_CLOSE_NORMAL);
}

static void world_free(void)
{
	for (int k = 0; k < S_N; k++)
		secure_sess_free(w.s[k]);
	for (int k = 0; k < w.nextra; k++)
		secure_sess_free(w.extra[k]);
	if (secure_ctx_stats(w.ci)->sessions || secure_ctx_stats(w.cr)->sessions ||
	    secure_ctx_stats(w.cr)->half_open)
		fail("session gauges not back to zero", 0);
	secure_ctx_free(w.ci);
	secure_ctx_free(w.cr);
}

/* ---- one packet into one target, with the drop-accounting check ---- */

static void check_open(struct secure_ctx *c, struct secure_sess *s, const uint8_t *p, size_t n)
{
	uint8_t plain[300];
	uint64_t d0 = drops(secure_ctx_stats(c));
	int pk0 = tap.pkts, rc;

	rc = secure_open(s, w.now, p, n, plain, sizeof(plain), NULL);
	if (rc > 0 && (n < SECURE_OVERHEAD || (size_t)rc != n - SECURE_OVERHEAD || p[0] != SECURE_T_DATA))
		fail("secure_open returned a wrong length", rc);
	if (rc < 0 && (tap.pkts != pk0 || drops(secure_ctx_stats(c)) != d0 + 1))
		fail("a drop sent something or was not counted exactly once", rc);
	if (rc >= 0 && drops(secure_ctx_stats(c)) != d0)
		fail("a consumed packet counted a drop", rc);
}

static void route(struct secure_ctx *c, bool responder, const uint8_t *p, size_t n)
{
	uint64_t d0 = drops(secure_ctx_stats(c));
	int pk0 = tap.pkts;
	struct secure_sess *s;

	if (responder && n && p[0] == SECURE_T_INIT) {
		s = secure_responder_accept(c, p, n, (struct sockaddr *)&w.src, sizeof(w.src), w.now, UNIX_MS + w.now,
					    &io_r);
		if (!s && drops(secure_ctx_stats(c)) != d0 + 1)
			fail("a refused msg 1 was not counted exactly once", 0);
		if (s && (drops(secure_ctx_stats(c)) != d0 || tap.pkts != pk0 + 1 || tap.last_n != SECURE_RESP_BYTES))
			fail("an accepted msg 1 did not get exactly one msg 2", tap.pkts - pk0);
		if (!s && tap.pkts > pk0 + 1)
			fail("more than one reply to a msg 1", tap.pkts - pk0);
		if (s && w.nextra < MAX_EXTRA)
			w.extra[w.nextra++] = s;
		else
			secure_sess_free(s);
		return;
	}
	s = secure_ctx_lookup(c, p, n);
	if (!s) {
		if (drops(secure_ctx_stats(c)) != d0 + 1)
			fail("a failed lookup was not counted exactly once", 0);
		return;
	}
	check_open(c, s, p, n);
}

/* DATA/CONTROL sealed under the pair's current handshake keys towards I or R. */
static size_t seal_to(bool to_r, const uint8_t *d, size_t n, uint8_t *out)
{
	uint64_t *ctr = to_r ? &w.ctr_to_r : &w.ctr_to_i;
	uint8_t type = n && (d[0] & 1) ? SECURE_T_CONTROL : SECURE_T_DATA;
	int step = n ? (d[0] >> 1) - 8 : 1;	/* mostly forward, sometimes back (replays, old counters) */
	uint64_t c;

	*ctr += (uint64_t)(int64_t)step;
	c = *ctr;
	if (n) {
		d++;
		n--;
	}
	memset(out, 0, SECURE_HDR_BYTES);
	out[0] = type;
	for (int i = 0; i < 4; i++)
		out[4 + i] = (uint8_t)((to_r ? R_INDEX : I_INDEX) >> (8 * i));
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(c >> (8 * i));
	sod_aead_seal(out + SECURE_HDR_BYTES, d, n, out, SECURE_HDR_BYTES, c, to_r ? K_I2R : K_R2I);
	return n + SECURE_OVERHEAD;
}

static void tick_all(void)
{
	for (int k = 0; k < S_N; k++)
		secure_tick(w.s[k], w.now, UNIX_MS + w.now);
	for (int k = 0; k < w.nextra; k++)
		secure_tick(w.extra[k], w.now, UNIX_MS + w.now);
}

static void seal_both(const uint8_t *p, size_t n)
{
	uint8_t out[300];
	int rc;

	for (int k = 0; k < 2; k++) {
		rc = secure_seal(w.s[k], w.now, p, n, out, sizeof(out));
		if (rc >= 0 && (size_t)rc != n + SECURE_OVERHEAD)
			fail("seal length", rc);
		if (rc < 0 && rc != -EAGAIN && rc != -EPIPE && rc != -ENOBUFS)
			fail("seal error", rc);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool hooked;
	size_t off = 0;

	if (!hooked) {
		sod_random_set_hook(rnd_hook, NULL);
		hooked = true;
	}
	memset(&tap, 0, sizeof(tap));
	world_build();
	while (off + 2 <= size) {
		uint8_t op = data[off], len = data[off + 1];
		const uint8_t *p = data + off + 2;
		uint8_t sealed[300];
		size_t n = size - off - 2 < len ? size - off - 2 : len;
		int target = op & 7;
		bool seal = op >> 3 & 1;
		uint64_t r_in = secure_ctx_stats(w.cr)->hs_bytes_in;

		if (target == 7 && !(op & 0x10)) {
			off += 2;
			w.now += (uint32_t)len * 50;
			tick_all();
			seal_both(NULL, 0);
			continue;
		}
		off += 2 + n;
		if (op & 0x10) {
			uint8_t fwd[256];
			size_t fn = tap.last_n;
			bool from_r = tap.last_from_r;

			if (!fn)
				continue;
			memcpy(fwd, tap.last, fn);
			route(from_r ? w.ci : w.cr, !from_r, fwd, fn);
			continue;
		}
		if (seal) {
			bool to_r = target == 0 || target == 3 || target == 5;

			n = seal_to(to_r, p, n, sealed);
			p = sealed;
		}
		switch (target) {
		case 0:
			route(w.cr, true, p, n);
			break;
		case 1:
			route(w.ci, false, p, n);
			break;
		case 2:
			check_open(w.ci, w.s[S_I_EST], p, n);
			break;
		case 3:
			check_open(w.cr, w.s[S_R_EST], p, n);
			break;
		case 4:
			check_open(w.ci, w.s[S_I_HS], p, n);
			break;
		case 5:
			check_open(w.cr, w.s[S_R_HALF], p, n);
			break;
		default:
			check_open(w.ci, w.s[S_CLOSED], p, n);
			break;
		}
		if (secure_ctx_stats(w.cr)->hs_bytes_out > secure_ctx_stats(w.cr)->hs_bytes_in)
			fail("responder sent more than it received", (long)r_in);
	}
	world_free();
	return 0;
}
