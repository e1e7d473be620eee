/*
 * libFuzzer target for proto/smux, whose parser reads the byte stream a KCP peer sends.
 * Input: byte 0 picks the session (bit 0: smux v1 or v2; bit 1: frame() fails on the third
 * frame), the rest is the stream. It is parsed twice: whole, with a sink that takes
 * everything (the reference), and cut into pieces at points derived from the input, each
 * piece in its own exact-size allocation (ASan catches any read past it), with a sink that
 * sometimes takes nothing or only part, the caller re-feeding what was not consumed.
 * Properties: no crash or sanitizer report; both runs see the same frames in the same order,
 * each after the same payload bytes, the same payload bytes per stream, and end with the
 * same result (and, on success, the same parser state); every frame handed out obeys §2.7
 * (configured version, known cmd, SYN/FIN/NOP empty, UPD only in v2 with 8 bytes, PSH
 * non-empty); data() gets bytes of the open PSH only, from inside the piece, never empty;
 * smux_feed() returns short only when data() took short; errors are sticky.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAILING_FRAME 3

static void fail(const char *what, long v)
{
	fprintf(stderr, "%s (%ld)\n", what, v);
	abort();
}

/* ---- what a run saw ---- */

struct event {
	struct smux_hdr h;
	uint32_t consumed, window;
	size_t data_at;
};

struct run {
	uint8_t ver;
	bool fail_frame;
	struct event *ev;
	size_t nev, ev_cap;
	uint8_t *data;
	uint32_t *dsid;
	size_t ndata, data_cap;
	/* the open PSH */
	bool psh_open;
	uint32_t psh_sid, psh_left;
	/* the piece being fed, and the sink's behaviour */
	const uint8_t *piece;
	size_t piece_len;
	bool partial;			/* sink may take less */
	bool took_short;		/* it did, in this feed */
	uint64_t rng;
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void check_frame(const struct run *r, const struct smux_hdr *h)
{
	if (h->ver != r->ver)
		fail("frame of another version", h->ver);
	switch (h->cmd) {
	case SMUX_CMD_SYN:
	case SMUX_CMD_FIN:
	case SMUX_CMD_NOP:
		if (h->len)
			fail("SYN/FIN/NOP with a payload", h->len);
		break;
	case SMUX_CMD_PSH:
		if (!h->len)
			fail("empty PSH handed out", 0);
		break;
	case SMUX_CMD_UPD:
		if (r->ver != 2 || h->len != SMUX_UPD_BYTES)
			fail("UPD in v1 or of wrong length", h->len);
		break;
	default:
		fail("unknown cmd handed out", h->cmd);
	}
	if (r->psh_open)
		fail("frame before the PSH payload ended", r->psh_left);
}

static int on_frame(void *ctx, const struct smux_hdr *h, uint32_t consumed, uint32_t window)
{
	struct run *r = ctx;
	struct event *e;

	check_frame(r, h);
	if (h->cmd != SMUX_CMD_UPD && (consumed || window))
		fail("consumed/window set outside UPD", consumed);
	if (r->nev == r->ev_cap)
		fail("more frames than the input can hold", (long)r->nev);
	e = &r->ev[r->nev++];
	e->h = *h;
	e->consumed = consumed;
	e->window = window;
	e->data_at = r->ndata;
	if (h->cmd == SMUX_CMD_PSH) {
		r->psh_open = true;
		r->psh_sid = h->sid;
		r->psh_left = h->len;
	}
	return r->fail_frame && r->nev == FAILING_FRAME ? -ECANCELED : 0;
}

static size_t on_data(void *ctx, uint32_t sid, const uint8_t *p, size_t n)
{
	struct run *r = ctx;
	size_t take = n;

	if (!n || !r->psh_open || sid != r->psh_sid || n > r->psh_left)
		fail("data() outside an open PSH", (long)n);
	if (p < r->piece || p + n > r->piece + r->piece_len)
		fail("data() bytes outside the piece fed", (long)n);
	if (r->partial) {
		uint64_t x = rng_next(&r->rng);

		if (x % 4 == 0)
			take = 0;
		else if (x % 4 == 1)
			take = (size_t)(x >> 32) % n;
	}
	if (take < n)
		r->took_short = true;
	if (r->ndata + take > r->data_cap)
		fail("more payload than the input holds", (long)r->ndata);
	memcpy(r->data + r->ndata, p, take);
	for (size_t i = 0; i < take; i++)
		r->dsid[r->ndata + i] = sid;
	r->ndata += take;
	r->psh_left -= (uint32_t)take;
	if (!r->psh_left)
		r->psh_open = false;
	return take;
}

static bool run_init(struct run *r, uint8_t sel, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->ver = sel & 1 ? 2 : 1;
	r->fail_frame = sel & 2;
	r->ev_cap = n / SMUX_HDR_BYTES + 1;
	r->data_cap = n + 1;
	r->ev = malloc(r->ev_cap * sizeof(*r->ev));
	r->data = malloc(r->data_cap);
	r->dsid = malloc(r->data_cap * sizeof(*r->dsid));
	return r->ev && r->data && r->dsid;
}

static void run_free(struct run *r)
{
	free(r->ev);
	free(r->data);
	free(r->dsid);
}

static void compare(const struct run *a, const struct run *b)
{
	if (a->nev != b->nev)
		fail("frame count differs between splits", (long)a->nev - (long)b->nev);
	for (size_t i = 0; i < a->nev; i++) {
		const struct event *x = &a->ev[i], *y = &b->ev[i];

		if (x->h.ver != y->h.ver || x->h.cmd != y->h.cmd || x->h.len != y->h.len ||
		    x->h.sid != y->h.sid || x->consumed != y->consumed || x->window != y->window ||
		    x->data_at != y->data_at)
			fail("frame differs between splits", (long)i);
	}
	if (a->ndata != b->ndata || memcmp(a->data, b->data, a->ndata) ||
	    memcmp(a->dsid, b->dsid, a->ndata * sizeof(*a->dsid)))
		fail("payload differs between splits", (long)a->ndata);
}

/* Feeds p[0..n) from an exact-size copy until consumed or failed. Returns 0 or the error. */
static ssize_t feed_piece(struct smux_parser *ps, const struct smux_handler *h, struct run *r,
			  const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	size_t off = 0;
	int stalls = 0;
	ssize_t ret = 0;

	if (!copy)
		return 0;
	memcpy(copy, p, n);
	r->piece = copy;
	r->piece_len = n;
	while (off < n) {
		ssize_t got;

		r->took_short = false;
		got = smux_feed(ps, h, copy + off, n - off);
		if (got < 0) {
			ret = got;
			break;
		}
		if ((size_t)got > n - off)
			fail("consumed more than fed", (long)got);
		if ((size_t)got < n - off && !r->took_short)
			fail("short feed without a short take", (long)got);
		off += (size_t)got;
		/* a sink that keeps refusing would stall the test, not the parser */
		r->partial = ++stalls < 64 && (r->rng & 1);
	}
	r->partial = true;
	free(copy);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run ref = { 0 }, cut = { 0 };
	struct smux_parser ps_ref, ps_cut;
	struct smux_handler h_ref = { .ctx = &ref, .frame = on_frame, .data = on_data };
	struct smux_handler h_cut = { .ctx = &cut, .frame = on_frame, .data = on_data };
	const uint8_t *s;
	uint64_t seed = 0xcbf29ce484222325ULL;
	ssize_t rc_ref, rc_cut = 0;
	size_t n, off = 0;

	if (!size)
		return 0;
	s = data + 1;
	n = size - 1;
	if (!run_init(&ref, data[0], n) || !run_init(&cut, data[0], n))
		goto out;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ULL;
	cut.rng = seed | 1;

	smux_parser_init(&ps_ref, ref.ver);
	ref.piece = s;
	ref.piece_len = n;
	rc_ref = smux_feed(&ps_ref, &h_ref, s, n);
	if (rc_ref >= 0 && (size_t)rc_ref != n)
		fail("whole feed with a greedy sink stopped short", (long)rc_ref);
	if (rc_ref < 0 && rc_ref != -EPROTO && rc_ref != -ECANCELED)
		fail("undocumented error", (long)rc_ref);
	if ((rc_ref == -EPROTO) != (smux_parser_reason(&ps_ref) >= SMUX_E_VERSION &&
				     smux_parser_reason(&ps_ref) < SMUX_E_HANDLER))
		fail("protocol error without its reason", smux_parser_reason(&ps_ref));
	if (rc_ref == -ECANCELED && smux_parser_reason(&ps_ref) != SMUX_E_HANDLER)
		fail("handler error without its reason", smux_parser_reason(&ps_ref));
	if (rc_ref < 0 && smux_feed(&ps_ref, &h_ref, s, n) != rc_ref)
		fail("error not sticky", (long)rc_ref);

	smux_parser_init(&ps_cut, cut.ver);
	cut.partial = true;
	while (off < n && !rc_cut) {
		uint64_t x = rng_next(&cut.rng);
		size_t k = 1 + (size_t)(x >> 40) % (x & 1 ? 16 : 4096);

		if (k > n - off)
			k = n - off;
		rc_cut = feed_piece(&ps_cut, &h_cut, &cut, s + off, k);
		off += k;
	}
	if (rc_cut != (rc_ref < 0 ? rc_ref : 0))
		fail("result differs between splits", (long)rc_cut);
	if (smux_parser_reason(&ps_cut) != smux_parser_reason(&ps_ref))
		fail("reason differs between splits", smux_parser_reason(&ps_cut));
	compare(&ref, &cut);
	if (!rc_ref && (ps_ref.have != ps_cut.have || ps_ref.in_payload != ps_cut.in_payload ||
			ps_ref.left != ps_cut.left || memcmp(ps_ref.hdr, ps_cut.hdr, ps_ref.have)))
		fail("parser state differs between splits", ps_ref.have);
out:
	run_free(&ref);
	run_free(&cut);
	return 0;
}
