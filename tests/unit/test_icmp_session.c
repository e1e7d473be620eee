/*
 * proto/icmp_session: an upstream (icmp_up) and a listener (icmp_ls) driven against each
 * other through a link simulated in memory. Every frame goes through the codec on the way:
 * icmp_echo_write + shim_encode into bytes on one side, icmp_echo_read + shim_decode on the
 * other, with the time passed in. Covers the handshake and its retry back-off (§3.3), the
 * S / S+1 session pair and kernel-echo reflection (§3.4), the replay window, the
 * request/response sequence pairing and sync mode (§3.6), the wrong-source check, the
 * RESET_REQUIRED / CHALLENGE exchange after a listener restart, the roll-over to a reserve
 * session at the end of the 16-bit sequence space, and a seeded lossy, duplicating and
 * reordering link.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/icmp_session.h"
#include "test.h"

/* The IDs of spec §3.5's example: A = upstream, B = listener (explicit source forms). */
#define LISTEN_ID 9999
#define UP_SOURCE 40000
#define UP_REPLY 40001
#define LS_SOURCE 7777
/* A DGRAM upstream: the kernel ID is echo, source and reply ID at once (compact forms). */
#define DGRAM_ID 0x1234

/* The icmp_ids seed; the first flow takes generation G and session S = G + 1 (§3.4). */
#define G 0x1122334455667788ULL
#define S (G + 1)
#define HANDSHAKE_TIMEOUT_MS 2000
#define T0 1000
#define PAYLOAD_MAX_BYTES 64
#define WIRE_MAX_BYTES (ICMP_ECHO_HDR_BYTES + SHIM_MAX_BYTES + PAYLOAD_MAX_BYTES)

/* ---- the link: frames as bytes ---- */

struct wire {
	size_t n;
	uint8_t b[WIRE_MAX_BYTES];
};

/* Encodes o as an Echo of the given type: header, shim, then the DATA payload. */
static void wire_put(struct wire *w, const struct icmp_out *o, uint8_t type)
{
	int n;

	icmp_echo_write(w->b, type, o->echo_id, o->seq);
	n = shim_encode(&o->f, o->echo_id, w->b + ICMP_ECHO_HDR_BYTES, sizeof(w->b) - ICMP_ECHO_HDR_BYTES);
	CHECK(n > 0);
	w->n = ICMP_ECHO_HDR_BYTES + (size_t)(n > 0 ? n : 0);
	if (o->f.kind == SHIM_DATA && o->f.payload_len) {
		CHECK(o->f.payload_len <= PAYLOAD_MAX_BYTES);
		if (o->f.payload_len > PAYLOAD_MAX_BYTES)
			return;
		memcpy(w->b + w->n, o->f.payload, o->f.payload_len);
		w->n += o->f.payload_len;
	}
}

/* What the kernel of the listener's host does to an Echo Request: the same bytes as a Reply. */
static struct wire reflect(const struct wire *w)
{
	struct wire r = *w;

	r.b[0] = ICMP4_ECHO_REPLY;
	return r;
}

/* Rewrites the Echo sequence of a frame in flight. */
static void wire_set_seq(struct wire *w, uint16_t seq)
{
	w->b[6] = (uint8_t)(seq >> 8);
	w->b[7] = (uint8_t)seq;
}

/* A frame as one side sees it after the codec, and what the session layer made of it. */
struct rx {
	enum icmp_action act;
	enum icmp_drop drop;
	struct icmp_echo e;
	struct shim_frame f;	/* payload points into the wire it came from */
	bool answered;		/* listener only: it wants ans sent back */
	struct icmp_out ans;
	struct wire ans_wire;
};

static bool wire_get(const struct wire *w, uint8_t type, struct rx *r)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->act = ICMP_ACT_DROP;
	r->drop = ICMP_DROP_COUNT;
	err = icmp_echo_read(w->b, w->n, 0, &r->e);
	CHECK_EQ(err, 0);
	if (err)
		return false;
	CHECK_EQ(r->e.type, type);
	err = shim_decode(w->b + ICMP_ECHO_HDR_BYTES, w->n - ICMP_ECHO_HDR_BYTES, r->e.id, &r->f);
	CHECK_EQ(err, 0);
	return err == 0;
}

/* ---- the two ends ---- */

struct pair {
	struct icmp_ids ids;
	struct icmp_up up;
	struct icmp_ls ls;
	uint64_t now;
};

static void ls_setup(struct icmp_ls *l, uint64_t seed)
{
	icmp_ls_init(l);
	l->listen_id = LISTEN_ID;
	l->source_id = LS_SOURCE;
	l->handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
	l->challenge_seed = seed;
}

/* In place: icmp_up keeps pointers to p->ids and into itself. */
static void pair_init(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	p->ids.next = G;
	icmp_up_init(&p->up, &p->ids);
	p->up.echo_id = LISTEN_ID;
	p->up.source_id = UP_SOURCE;
	p->up.reply_id = UP_REPLY;
	p->up.handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
	ls_setup(&p->ls, 42);
	p->now = T0;
}

/* A DGRAM upstream against a wildcard listener: one ID everywhere, compact frames. */
static void pair_init_dgram(struct pair *p)
{
	pair_init(p);
	p->up.echo_id = p->up.source_id = p->up.reply_id = DGRAM_ID;
	p->ls.listen_id = 0;
	p->ls.source_id = 0;
}

static struct rx to_ls_at(struct icmp_ls *l, uint64_t now, const struct wire *w)
{
	struct rx r;

	if (!wire_get(w, ICMP4_ECHO_REQUEST, &r))
		return r;
	r.act = icmp_ls_input(l, now, &r.e, &r.f, &r.drop, &r.answered, &r.ans);
	if (r.act != ICMP_ACT_DROP)
		CHECK_EQ(r.drop, ICMP_OK);
	if (r.answered)
		wire_put(&r.ans_wire, &r.ans, ICMP4_ECHO_REPLY);
	return r;
}

static struct rx to_ls(struct pair *p, const struct wire *w)
{
	return to_ls_at(&p->ls, p->now, w);
}

static struct rx to_up(struct pair *p, const struct wire *w)
{
	struct rx r;

	if (!wire_get(w, ICMP4_ECHO_REPLY, &r))
		return r;
	r.act = icmp_up_input(&p->up, p->now, &r.e, &r.f, &r.drop);
	if (r.act != ICMP_ACT_DROP)
		CHECK_EQ(r.drop, ICMP_OK);
	return r;
}

/* The upstream sends a user datagram: 0 and the frame in w, or icmp_up_data's error. */
static int up_send(struct pair *p, const void *payload, size_t len, struct wire *w, struct icmp_out *o)
{
	struct icmp_out tmp;
	int err;

	if (!o)
		o = &tmp;
	w->n = 0;
	err = icmp_up_data(&p->up, p->now, o);
	if (err)
		return err;
	o->f.payload = payload;
	o->f.payload_len = len;
	wire_put(w, o, ICMP4_ECHO_REQUEST);
	return 0;
}

static int up_cadence(struct pair *p, struct wire *w, struct icmp_out *o)
{
	struct icmp_out tmp;
	int err;

	if (!o)
		o = &tmp;
	w->n = 0;
	err = icmp_up_cadence(&p->up, o);
	if (!err)
		wire_put(w, o, ICMP4_ECHO_REQUEST);
	return err;
}

static int up_poll(struct pair *p, struct wire *w, struct icmp_out *o)
{
	struct icmp_out tmp;
	int r;

	if (!o)
		o = &tmp;
	w->n = 0;
	r = icmp_up_poll(&p->up, p->now, o);
	if (r == 1)
		wire_put(w, o, ICMP4_ECHO_REQUEST);
	return r;
}

/* The listener sends a datagram from its upstream back to the peer. */
static int ls_send(struct pair *p, const void *payload, size_t len, struct wire *w, struct icmp_out *o)
{
	struct icmp_out tmp;
	int err;

	if (!o)
		o = &tmp;
	w->n = 0;
	err = icmp_ls_data(&p->ls, o);
	if (err)
		return err;
	o->f.payload = payload;
	o->f.payload_len = len;
	wire_put(w, o, ICMP4_ECHO_REPLY);
	return 0;
}

/* A reply the listener never made: DATA on session, from LS_SOURCE to UP_REPLY, with seq. */
static void ls_forge(struct wire *w, uint64_t session, uint16_t seq)
{
	struct icmp_out o;

	memset(&o, 0, sizeof(o));
	o.f.kind = SHIM_DATA;
	o.f.source_id = LS_SOURCE;
	o.f.session = session;
	o.f.payload = (const uint8_t *)"forged";
	o.f.payload_len = 6;
	o.echo_id = UP_REPLY;
	o.seq = seq;
	wire_put(w, &o, ICMP4_ECHO_REPLY);
}

/* NEGOTIATE -> NEGOTIATE_ACK over the link, no loss. */
static void handshake(struct pair *p)
{
	struct wire w;
	struct rx r, a;

	CHECK_EQ(up_send(p, "", 0, &w, NULL), -EINPROGRESS);
	CHECK_EQ(up_poll(p, &w, NULL), 1);
	r = to_ls(p, &w);
	CHECK_EQ(r.act, ICMP_ACT_CONSUMED);
	CHECK(r.answered);
	a = to_up(p, &r.ans_wire);
	CHECK_EQ(a.act, ICMP_ACT_READY);
	CHECK_EQ(p->up.state, ICMP_UP_READY);
}

/* Numbered payloads: 4-byte number, a tag for the direction, then bytes derived from both. */
static size_t payload_make(uint8_t *b, uint32_t n, uint8_t tag)
{
	size_t len = 5 + n % 40;

	b[0] = (uint8_t)(n >> 24);
	b[1] = (uint8_t)(n >> 16);
	b[2] = (uint8_t)(n >> 8);
	b[3] = (uint8_t)n;
	b[4] = tag;
	for (size_t i = 5; i < len; i++)
		b[i] = (uint8_t)(n * 31u + i * 7u + tag);
	return len;
}

/* True when f carries payload number *n of that tag, byte for byte. */
static bool payload_check(const struct shim_frame *f, uint8_t tag, uint32_t *n)
{
	uint8_t want[PAYLOAD_MAX_BYTES];

	if (f->payload_len < 5)
		return false;
	*n = (uint32_t)f->payload[0] << 24 | (uint32_t)f->payload[1] << 16 |
	     (uint32_t)f->payload[2] << 8 | f->payload[3];
	return payload_make(want, *n, tag) == f->payload_len && !memcmp(want, f->payload, f->payload_len);
}

static void check_key(const struct shim_key *k, uint64_t generation, uint32_t ordinal, uint64_t session)
{
	CHECK(k->generation == generation);
	CHECK_EQ(k->ordinal, ordinal);
	CHECK(k->session == session);
}

/* ---- handshake ---- */

static void test_handshake_negotiates_g_plus_1_then_data_flows_on_s_and_s_plus_1(void)
{
	struct pair p;
	struct icmp_out o;
	struct wire w, d, rw;
	struct rx r, a;

	pair_init(&p);
	CHECK_EQ(up_send(&p, "held", 4, &w, NULL), -EINPROGRESS);
	CHECK_EQ(p.up.state, ICMP_UP_NEGOTIATING);
	CHECK(icmp_up_deadline(&p.up) == T0);

	CHECK_EQ(up_poll(&p, &w, &o), 1);
	CHECK_EQ(o.f.kind, SHIM_CONTROL);
	CHECK_EQ(o.f.op, SHIM_OP_NEGOTIATE);
	CHECK_EQ(o.seq, 0);
	CHECK_EQ(o.echo_id, LISTEN_ID);
	CHECK_EQ(o.f.source_id, UP_SOURCE);
	CHECK_EQ(o.f.reply_id, UP_REPLY);
	check_key(&o.f.key, G, 0, S);
	CHECK_EQ(w.n, 35);	/* §3.8 (a): 8 + explicit NEGOTIATE 27 */
	CHECK(icmp_up_deadline(&p.up) == T0 + ICMP_RETRY_FIRST_MS);
	CHECK_EQ(icmp_up_poll(&p.up, p.now, &o), 0);	/* the retry is not due yet */

	r = to_ls(&p, &w);
	CHECK_EQ(r.act, ICMP_ACT_CONSUMED);
	CHECK(r.answered);
	CHECK_EQ(r.ans.f.op, SHIM_OP_NEGOTIATE_ACK);
	CHECK_EQ(r.ans.seq, 0);
	CHECK_EQ(r.ans.echo_id, UP_REPLY);	/* the up's reply ID */
	CHECK_EQ(r.ans.f.reply_id, LISTEN_ID);	/* the listener's listen ID */
	CHECK_EQ(r.ans.f.source_id, LS_SOURCE);
	check_key(&r.ans.f.key, G, 0, S);
	CHECK_EQ(r.ans_wire.n, 35);
	CHECK(p.ls.bound);
	CHECK_EQ(p.ls.peer_source, UP_SOURCE);

	a = to_up(&p, &r.ans_wire);
	CHECK_EQ(a.act, ICMP_ACT_READY);
	CHECK_EQ(p.up.state, ICMP_UP_READY);
	CHECK_EQ(p.up.negotiations_completed, 1);
	CHECK(icmp_up_deadline(&p.up) == UINT64_MAX);
	CHECK_EQ(up_poll(&p, &w, NULL), 0);

	/* the held datagram: DATA seq 1 on S */
	CHECK_EQ(up_send(&p, "hi", 2, &d, &o), 0);
	CHECK_EQ(o.f.kind, SHIM_DATA);
	CHECK(o.f.session == S);
	CHECK_EQ(o.seq, 1);
	CHECK_EQ(o.echo_id, LISTEN_ID);
	CHECK_EQ(o.f.source_id, UP_SOURCE);
	CHECK_EQ(d.n, 21);	/* §3.8 (c) */
	r = to_ls(&p, &d);
	CHECK_EQ(r.act, ICMP_ACT_DELIVER);
	CHECK(!r.answered);
	CHECK_EQ(r.f.payload_len, 2);
	CHECK(r.f.payload_len == 2 && !memcmp(r.f.payload, "hi", 2));

	/* the reply: DATA seq 1 on S + 1 */
	CHECK_EQ(ls_send(&p, "yo!", 3, &rw, &o), 0);
	CHECK_EQ(o.f.kind, SHIM_DATA);
	CHECK(o.f.session == S + 1);
	CHECK_EQ(o.seq, 1);
	CHECK_EQ(o.echo_id, UP_REPLY);
	CHECK_EQ(o.f.source_id, LS_SOURCE);
	a = to_up(&p, &rw);
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(a.f.payload_len == 3 && !memcmp(a.f.payload, "yo!", 3));

	/* sequences go on once per request */
	CHECK_EQ(up_send(&p, "x", 1, &d, &o), 0);
	CHECK_EQ(o.seq, 2);
	CHECK(o.f.session == S);
}

static void test_handshake_of_a_dgram_upstream_uses_compact_frames_and_learned_ids(void)
{
	struct pair p;
	struct icmp_out o;
	struct wire w, d;
	struct rx r, a;

	pair_init_dgram(&p);
	CHECK_EQ(up_send(&p, "", 0, &w, NULL), -EINPROGRESS);
	CHECK_EQ(up_poll(&p, &w, &o), 1);
	CHECK_EQ(w.n, 8 + 25);
	r = to_ls(&p, &w);
	CHECK(r.answered);
	/* a wildcard listener: its source and advertised reply ID are the learned Echo ID (§3.5) */
	CHECK_EQ(r.ans.echo_id, DGRAM_ID);
	CHECK_EQ(r.ans.f.reply_id, DGRAM_ID);
	CHECK_EQ(r.ans.f.source_id, DGRAM_ID);
	CHECK_EQ(r.ans_wire.n, 8 + 25);
	a = to_up(&p, &r.ans_wire);
	CHECK_EQ(a.act, ICMP_ACT_READY);
	CHECK_EQ(up_send(&p, "ab", 2, &d, NULL), 0);
	CHECK_EQ(d.n, 8 + 9 + 2);
	r = to_ls(&p, &d);
	CHECK_EQ(r.act, ICMP_ACT_DELIVER);
	CHECK_EQ(ls_send(&p, "cd", 2, &d, NULL), 0);
	a = to_up(&p, &d);
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(a.f.payload_len == 2 && !memcmp(a.f.payload, "cd", 2));
}

/* ---- retries ---- */

static void test_up_retries_negotiate_with_backoff_then_times_out_to_idle(void)
{
	static const unsigned gaps[] = { 10, 20, 40, 80, 160, 320, 500, 500 };
	struct pair p;
	struct icmp_out o;
	struct wire w, first;
	uint64_t at = T0;

	pair_init(&p);
	CHECK_EQ(up_send(&p, "", 0, &w, NULL), -EINPROGRESS);
	CHECK_EQ(up_poll(&p, &first, &o), 1);
	CHECK_EQ(o.seq, 0);
	for (unsigned i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		at += gaps[i];
		CHECK(icmp_up_deadline(&p.up) == at);
		p.now = at - 1;
		CHECK_EQ(up_poll(&p, &w, NULL), 0);
		p.now = at;
		CHECK_EQ(up_poll(&p, &w, &o), 1);
		CHECK_EQ(o.f.op, SHIM_OP_NEGOTIATE);
		CHECK_EQ(o.seq, i + 1);
		check_key(&o.f.key, G, 0, S);
		CHECK_EQ(up_poll(&p, &w, NULL), 0);
	}
	CHECK_EQ(p.up.retry_attempts, 8);
	/* the next retry (+500) would be after the handshake timeout, which comes first */
	CHECK(icmp_up_deadline(&p.up) == T0 + HANDSHAKE_TIMEOUT_MS);
	p.now = T0 + HANDSHAKE_TIMEOUT_MS - 1;
	CHECK_EQ(up_poll(&p, &w, NULL), 0);
	p.now = T0 + HANDSHAKE_TIMEOUT_MS;
	CHECK_EQ(up_poll(&p, &w, NULL), -ETIMEDOUT);
	CHECK_EQ(p.up.state, ICMP_UP_IDLE);
	CHECK(icmp_up_deadline(&p.up) == UINT64_MAX);
	CHECK_EQ(up_poll(&p, &w, NULL), 0);

	/* an ACK of the abandoned handshake arriving now is stale */
	struct rx r = to_ls(&p, &first);
	CHECK(r.answered);
	struct wire old_ack = r.ans_wire;
	struct rx a = to_up(&p, &old_ack);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_ACK);
	CHECK_EQ(p.up.state, ICMP_UP_IDLE);

	/* the next datagram starts over: new generation and session, seq 0 */
	CHECK_EQ(up_send(&p, "", 0, &w, NULL), -EINPROGRESS);
	CHECK_EQ(up_poll(&p, &w, &o), 1);
	CHECK_EQ(o.seq, 0);
	check_key(&o.f.key, G + 3, 0, G + 4);
	/* and the old ACK does not complete the new handshake either */
	a = to_up(&p, &old_ack);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_ACK);
	CHECK_EQ(p.up.state, ICMP_UP_NEGOTIATING);
}

static void test_up_data_while_negotiating_is_eagain_and_takes_no_sequence(void)
{
	struct pair p;
	struct icmp_out o;
	struct wire w, x;

	pair_init(&p);
	CHECK_EQ(up_send(&p, "", 0, &x, NULL), -EINPROGRESS);
	CHECK_EQ(up_send(&p, "", 0, &x, NULL), -EAGAIN);
	CHECK_EQ(up_poll(&p, &w, &o), 1);
	CHECK_EQ(o.seq, 0);
	CHECK_EQ(up_send(&p, "", 0, &x, NULL), -EAGAIN);
	CHECK_EQ(up_send(&p, "", 0, &x, NULL), -EAGAIN);
	CHECK_EQ(icmp_up_cadence(&p.up, &o), -EAGAIN);
	struct rx r = to_ls(&p, &w);
	CHECK_EQ(to_up(&p, &r.ans_wire).act, ICMP_ACT_READY);
	CHECK_EQ(up_send(&p, "", 0, &w, &o), 0);
	CHECK_EQ(o.seq, 1);
}

/* ---- replay window, both directions ---- */

#define REPLAY_FRAMES 2100

struct replay_ctx {
	struct pair *p;
	struct wire *w;		/* w[seq] */
	uint8_t tag;
	bool to_listener;
	unsigned delivered;
};

/* Frame w[seq] arrives; its payload must be number seq. */
static enum icmp_action replay_deliver(struct replay_ctx *c, unsigned seq, enum icmp_drop *drop)
{
	struct rx r = c->to_listener ? to_ls(c->p, &c->w[seq]) : to_up(c->p, &c->w[seq]);
	uint32_t n;

	CHECK_EQ(r.e.seq, seq);
	*drop = r.drop;
	if (r.act == ICMP_ACT_DELIVER) {
		CHECK(payload_check(&r.f, c->tag, &n));
		CHECK_EQ(n, seq);
		c->delivered++;
	}
	return r.act;
}

/*
 * Delivery order shared by both directions: in order with a duplicate of 5, 6..8 reversed,
 * 10 and 11 held back until 2058 is the highest (11 is 2047 behind: admitted; 10 is 2048
 * behind: stale), and a duplicate of the last one.
 */
static void replay_pattern(struct replay_ctx *ctx)
{
	enum icmp_drop drop;
	unsigned s;

	for (s = 1; s <= 5; s++)
		CHECK_EQ(replay_deliver(ctx, s, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, 5, &drop), ICMP_ACT_DROP);
	CHECK_EQ(drop, ICMP_DROP_DUPLICATE);
	CHECK_EQ(replay_deliver(ctx, 8, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, 7, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, 6, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, 7, &drop), ICMP_ACT_DROP);
	CHECK_EQ(drop, ICMP_DROP_DUPLICATE);
	CHECK_EQ(replay_deliver(ctx, 9, &drop), ICMP_ACT_DELIVER);
	for (s = 12; s <= 2058; s++)
		CHECK_EQ(replay_deliver(ctx, s, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, 11, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, 10, &drop), ICMP_ACT_DROP);
	CHECK_EQ(drop, ICMP_DROP_STALE_SEQ);
	for (s = 2059; s <= REPLAY_FRAMES; s++)
		CHECK_EQ(replay_deliver(ctx, s, &drop), ICMP_ACT_DELIVER);
	CHECK_EQ(replay_deliver(ctx, REPLAY_FRAMES, &drop), ICMP_ACT_DROP);
	CHECK_EQ(drop, ICMP_DROP_DUPLICATE);
}

static void test_ls_admits_each_request_once_within_the_replay_window(void)
{
	static struct wire w[REPLAY_FRAMES + 1];
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct pair p;
	struct icmp_out o;

	pair_init(&p);
	handshake(&p);
	for (unsigned s = 1; s <= REPLAY_FRAMES; s++) {
		CHECK_EQ(up_send(&p, buf, payload_make(buf, s, 'q'), &w[s], &o), 0);
		CHECK_EQ(o.seq, s);
	}
	struct replay_ctx c = { .p = &p, .w = w, .tag = 'q', .to_listener = true };
	replay_pattern(&c);
	CHECK_EQ(c.delivered, REPLAY_FRAMES - 1);
}

static void test_up_admits_each_reply_once_within_the_replay_window(void)
{
	static struct wire w[REPLAY_FRAMES + 1];
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct pair p;
	struct icmp_out o;
	struct wire d;

	pair_init(&p);
	handshake(&p);
	/* one reply per request, each under its request's sequence */
	for (unsigned s = 1; s <= REPLAY_FRAMES; s++) {
		CHECK_EQ(up_send(&p, buf, payload_make(buf, s, 'q'), &d, NULL), 0);
		CHECK_EQ(to_ls(&p, &d).act, ICMP_ACT_DELIVER);
		CHECK_EQ(ls_send(&p, buf, payload_make(buf, s, 'r'), &w[s], &o), 0);
		CHECK_EQ(o.seq, s);
	}
	struct replay_ctx c = { .p = &p, .w = w, .tag = 'r', .to_listener = false };
	replay_pattern(&c);
	CHECK_EQ(c.delivered, REPLAY_FRAMES - 1);
}

/* ---- kernel echo (§3.4, §3.7) ---- */

static void test_up_drops_its_own_frames_reflected_by_a_kernel_echo(void)
{
	struct pair p;
	struct wire w, d, c;
	struct rx r, a;

	pair_init_dgram(&p);
	CHECK_EQ(up_send(&p, "", 0, &w, NULL), -EINPROGRESS);
	CHECK_EQ(up_poll(&p, &w, NULL), 1);
	struct wire echoed = reflect(&w);
	a = to_up(&p, &echoed);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_INVALID_CONTROL);	/* a NEGOTIATE is never an answer */
	CHECK_EQ(p.up.state, ICMP_UP_NEGOTIATING);

	r = to_ls(&p, &w);
	CHECK_EQ(to_up(&p, &r.ans_wire).act, ICMP_ACT_READY);

	CHECK_EQ(up_send(&p, "ping", 4, &d, NULL), 0);
	echoed = reflect(&d);
	a = to_up(&p, &echoed);
	CHECK(a.f.session == S);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_SESSION);
	CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	echoed = reflect(&c);
	a = to_up(&p, &echoed);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_SESSION);

	/* the genuine reply to the same request still gets through */
	CHECK_EQ(to_ls(&p, &d).act, ICMP_ACT_DELIVER);
	CHECK_EQ(ls_send(&p, "pong", 4, &d, NULL), 0);
	a = to_up(&p, &d);
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(a.f.payload_len == 4 && !memcmp(a.f.payload, "pong", 4));
}

static void test_up_accepting_kernel_echo_handshakes_and_delivers_reflections(void)
{
	struct pair p;
	struct wire w, d, c;
	struct rx a;

	pair_init_dgram(&p);
	p.up.accept_kernel_echo = true;
	CHECK_EQ(up_send(&p, "", 0, &w, NULL), -EINPROGRESS);
	CHECK_EQ(up_poll(&p, &w, NULL), 1);
	struct wire echoed = reflect(&w);
	a = to_up(&p, &echoed);
	CHECK_EQ(a.act, ICMP_ACT_READY);
	CHECK_EQ(p.up.state, ICMP_UP_READY);

	CHECK_EQ(up_send(&p, "ping", 4, &d, NULL), 0);
	echoed = reflect(&d);
	a = to_up(&p, &echoed);
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(a.f.payload_len == 4 && !memcmp(a.f.payload, "ping", 4));
	a = to_up(&p, &echoed);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_DUPLICATE);
	CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	echoed = reflect(&c);
	CHECK_EQ(to_up(&p, &echoed).act, ICMP_ACT_CONSUMED);
}

/* ---- request/response pairing (§3.6) ---- */

static void test_ls_answers_n_requests_with_n_distinct_sequences(void)
{
	enum { N_REQ = 5 };
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct pair p;
	struct icmp_out o;
	struct wire d, rw[N_REQ + 1];

	pair_init(&p);
	handshake(&p);
	CHECK_EQ(ls_send(&p, "x", 1, &d, NULL), -EAGAIN);	/* no request sequence yet */
	for (unsigned i = 1; i <= N_REQ; i++) {
		CHECK_EQ(up_send(&p, buf, payload_make(buf, i, 'q'), &d, NULL), 0);
		CHECK_EQ(to_ls(&p, &d).act, ICMP_ACT_DELIVER);
	}
	CHECK(icmp_ls_fresh_seq(&p.ls));
	for (unsigned i = 0; i <= N_REQ; i++) {
		CHECK_EQ(ls_send(&p, buf, payload_make(buf, 100 + i, 'r'), &rw[i], &o), 0);
		/* oldest first, then pkthere's rule: the newest again */
		CHECK_EQ(o.seq, i < N_REQ ? i + 1 : N_REQ);
	}
	CHECK(!icmp_ls_fresh_seq(&p.ls));
	for (unsigned i = 0; i < N_REQ; i++) {
		uint32_t n;
		struct rx a = to_up(&p, &rw[i]);
		CHECK_EQ(a.act, ICMP_ACT_DELIVER);
		CHECK(payload_check(&a.f, 'r', &n));
		CHECK_EQ(n, 100 + i);
	}
	struct rx a = to_up(&p, &rw[N_REQ]);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_DUPLICATE);
}

static void test_unbound_ls_has_no_session_to_reply_on(void)
{
	struct pair p;
	struct wire d;

	pair_init(&p);
	CHECK_EQ(ls_send(&p, "x", 1, &d, NULL), -ENOTCONN);
}

/* ---- sync mode (§3.6) ---- */

static void test_ls_in_sync_mode_holds_replies_until_a_fresh_sequence(void)
{
	struct pair p;
	struct icmp_out o;
	struct wire c, d;
	struct rx r;

	pair_init(&p);
	handshake(&p);
	CHECK_EQ(up_cadence(&p, &c, &o), 0);
	CHECK_EQ(o.f.kind, SHIM_CADENCE);
	CHECK_EQ(o.seq, 1);
	CHECK(o.f.session == S);
	r = to_ls(&p, &c);
	CHECK_EQ(r.act, ICMP_ACT_CONSUMED);
	CHECK(!r.answered);
	CHECK(p.ls.sync);
	CHECK(icmp_ls_fresh_seq(&p.ls));
	CHECK_EQ(ls_send(&p, "a", 1, &d, &o), 0);
	CHECK_EQ(o.seq, 1);
	CHECK(!icmp_ls_fresh_seq(&p.ls));
	CHECK_EQ(ls_send(&p, "b", 1, &d, NULL), -EAGAIN);

	/* two cadence frames: the reply takes the newest, the older one is passed over */
	CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	CHECK_EQ(to_ls(&p, &c).act, ICMP_ACT_CONSUMED);
	CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	CHECK_EQ(to_ls(&p, &c).act, ICMP_ACT_CONSUMED);
	CHECK(icmp_ls_fresh_seq(&p.ls));
	CHECK_EQ(ls_send(&p, "b", 1, &d, &o), 0);
	CHECK_EQ(o.seq, 3);
	CHECK_EQ(ls_send(&p, "c", 1, &d, NULL), -EAGAIN);

	/* a DATA request supplies a sequence too */
	CHECK_EQ(up_send(&p, "q", 1, &c, NULL), 0);
	CHECK_EQ(to_ls(&p, &c).act, ICMP_ACT_DELIVER);
	CHECK(icmp_ls_fresh_seq(&p.ls));
	CHECK_EQ(ls_send(&p, "c", 1, &d, &o), 0);
	CHECK_EQ(o.seq, 4);
	struct rx a = to_up(&p, &d);
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
}

static void test_up_in_sync_mode_drops_future_and_behind_window_replies(void)
{
	struct pair p;
	struct wire c, r74, r75, r100, future;
	struct rx a;

	pair_init(&p);
	p.up.sync_pps = 100;	/* catch-up window 25 */
	handshake(&p);
	for (unsigned s = 1; s <= 100; s++) {
		CHECK_EQ(up_cadence(&p, &c, NULL), 0);
		CHECK_EQ(to_ls(&p, &c).act, ICMP_ACT_CONSUMED);
		if (s == 74)
			CHECK_EQ(ls_send(&p, "74", 2, &r74, NULL), 0);
		if (s == 75)
			CHECK_EQ(ls_send(&p, "75", 2, &r75, NULL), 0);
	}
	CHECK_EQ(ls_send(&p, "100", 3, &r100, NULL), 0);
	future = r100;
	wire_set_seq(&future, 101);

	a = to_up(&p, &future);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_FUTURE_SEQ);
	CHECK_EQ(to_up(&p, &r100).act, ICMP_ACT_DELIVER);
	a = to_up(&p, &r75);	/* 25 behind: within */
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(a.f.payload_len == 2 && !memcmp(a.f.payload, "75", 2));
	a = to_up(&p, &r74);	/* 26 behind */
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_SEQ);

	/* once request 101 went out, the same frame is no longer from the future */
	CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	CHECK_EQ(to_up(&p, &future).act, ICMP_ACT_DELIVER);
}

/* The catch-up window is clamp(N/4, 8, 1024): lag == window is admitted, one more is stale. */
static void check_catch_up_window(uint32_t pps, unsigned window)
{
	struct pair p;
	struct wire c, w;
	struct rx a;
	unsigned last = window + 20;

	pair_init(&p);
	p.up.sync_pps = pps;
	handshake(&p);
	for (unsigned s = 1; s <= last; s++)
		CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	ls_forge(&w, S + 1, (uint16_t)(last - window - 1));
	a = to_up(&p, &w);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_SEQ);
	ls_forge(&w, S + 1, (uint16_t)(last - window));
	CHECK_EQ(to_up(&p, &w).act, ICMP_ACT_DELIVER);
	ls_forge(&w, S + 1, (uint16_t)last);
	CHECK_EQ(to_up(&p, &w).act, ICMP_ACT_DELIVER);
	ls_forge(&w, S + 1, (uint16_t)(last + 1));
	a = to_up(&p, &w);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_FUTURE_SEQ);
}

static void test_up_catch_up_window_is_clamped_quarter_of_pps(void)
{
	check_catch_up_window(1, 8);
	check_catch_up_window(40, 10);
	check_catch_up_window(4000, 1000);
	check_catch_up_window(100000, 1024);
}

static void test_up_without_sync_admits_old_replies_by_the_replay_window_only(void)
{
	struct pair p;
	struct wire c, w;

	pair_init(&p);
	handshake(&p);
	for (unsigned s = 1; s <= 100; s++)
		CHECK_EQ(up_cadence(&p, &c, NULL), 0);
	ls_forge(&w, S + 1, 100);
	CHECK_EQ(to_up(&p, &w).act, ICMP_ACT_DELIVER);
	ls_forge(&w, S + 1, 2);
	CHECK_EQ(to_up(&p, &w).act, ICMP_ACT_DELIVER);
	ls_forge(&w, S + 1, 200);	/* no "future" check without sync */
	CHECK_EQ(to_up(&p, &w).act, ICMP_ACT_DELIVER);
}

/* ---- wrong source ---- */

static void test_bound_ls_drops_frames_of_another_source(void)
{
	struct icmp_ids ids2 = { .next = 0x5000 };
	struct icmp_up other;
	struct icmp_out o;
	struct pair p;
	struct wire w;
	struct rx r;

	pair_init(&p);
	handshake(&p);

	icmp_up_init(&other, &ids2);
	other.echo_id = LISTEN_ID;
	other.source_id = UP_SOURCE + 2;
	other.reply_id = UP_REPLY + 2;
	other.handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
	CHECK_EQ(icmp_up_data(&other, p.now, &o), -EINPROGRESS);
	CHECK_EQ(icmp_up_poll(&other, p.now, &o), 1);
	wire_put(&w, &o, ICMP4_ECHO_REQUEST);
	r = to_ls(&p, &w);
	CHECK_EQ(r.act, ICMP_ACT_DROP);
	CHECK_EQ(r.drop, ICMP_DROP_WRONG_SOURCE);
	CHECK(!r.answered);

	/* DATA of the bound session, but from another source */
	CHECK_EQ(icmp_up_data(&p.up, p.now, &o), 0);
	o.f.payload = (const uint8_t *)"x";
	o.f.payload_len = 1;
	o.f.source_id = UP_SOURCE + 2;
	wire_put(&w, &o, ICMP4_ECHO_REQUEST);
	r = to_ls(&p, &w);
	CHECK_EQ(r.act, ICMP_ACT_DROP);
	CHECK_EQ(r.drop, ICMP_DROP_WRONG_SOURCE);
	CHECK(!r.answered);

	/* the bound peer is untouched */
	CHECK_EQ(p.ls.peer_source, UP_SOURCE);
	CHECK_EQ(p.ls.peer_reply, UP_REPLY);
	CHECK_EQ(up_send(&p, "y", 1, &w, NULL), 0);
	CHECK_EQ(to_ls(&p, &w).act, ICMP_ACT_DELIVER);
}

/* ---- listener restart: RESET_REQUIRED / CHALLENGE (§3.3) ---- */

static void test_restarted_ls_resets_and_up_renegotiates_with_the_challenge(void)
{
	struct pair p;
	struct icmp_out o;
	struct wire d, cn, bad;
	struct rx r, a;

	pair_init(&p);
	handshake(&p);
	CHECK_EQ(up_send(&p, "one", 3, &d, NULL), 0);
	CHECK_EQ(to_ls(&p, &d).act, ICMP_ACT_DELIVER);

	/* the listener restarts: everything it knew is gone */
	ls_setup(&p.ls, 4242);
	p.now += 50;
	CHECK_EQ(up_send(&p, "two", 3, &d, NULL), 0);
	r = to_ls(&p, &d);
	CHECK_EQ(r.act, ICMP_ACT_DROP);
	CHECK_EQ(r.drop, ICMP_DROP_STALE_SESSION);
	CHECK(r.answered);
	CHECK_EQ(r.ans.f.op, SHIM_OP_RESET_REQUIRED);
	CHECK_EQ(r.ans.echo_id, UP_SOURCE);	/* no reply route known: the sender's source ID */
	CHECK_EQ(r.ans.f.source_id, LS_SOURCE);
	CHECK_EQ(r.ans.seq, 2);
	CHECK_EQ(r.ans.f.rejected_kind, SHIM_REJECTED_DATA);
	CHECK(r.ans.f.rejected_key.session == S);
	CHECK_EQ(r.ans.f.rejected_seq, 2);
	CHECK(r.ans.f.receiver_generation == 0);
	CHECK(r.ans.f.challenge != 0);
	uint64_t challenge = r.ans.f.challenge;
	CHECK(!p.ls.bound);

	a = to_up(&p, &r.ans_wire);
	CHECK_EQ(a.act, ICMP_ACT_CONSUMED);
	CHECK_EQ(p.up.state, ICMP_UP_NEGOTIATING);
	CHECK_EQ(p.up.resets_accepted, 1);
	CHECK_EQ(up_send(&p, "x", 1, &d, NULL), -EAGAIN);
	/* the same RESET again is not a second reason to start over */
	a = to_up(&p, &r.ans_wire);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_INVALID_CONTROL);

	CHECK_EQ(up_poll(&p, &cn, &o), 1);
	CHECK_EQ(o.f.op, SHIM_OP_CHALLENGE_NEGOTIATE);
	CHECK_EQ(o.seq, 0);
	CHECK_EQ(o.echo_id, LISTEN_ID);
	CHECK_EQ(o.f.reply_id, UP_REPLY);
	CHECK(o.f.challenge == challenge);
	CHECK(o.f.receiver_generation == 0);
	CHECK_EQ(o.f.rejected_kind, SHIM_REJECTED_DATA);
	check_key(&o.f.rejected_key, 0, 0, S);
	CHECK_EQ(o.f.rejected_seq, 2);
	check_key(&o.f.key, G + 3, 0, G + 4);
	CHECK_EQ(cn.n, 8 + 66);

	/* a wrong challenge proves nothing */
	o.f.challenge = challenge ^ 1;
	wire_put(&bad, &o, ICMP4_ECHO_REQUEST);
	r = to_ls(&p, &bad);
	CHECK_EQ(r.act, ICMP_ACT_DROP);
	CHECK_EQ(r.drop, ICMP_DROP_INVALID_CONTROL);
	CHECK(!r.answered);
	CHECK(!p.ls.bound);

	r = to_ls(&p, &cn);
	CHECK_EQ(r.act, ICMP_ACT_CONSUMED);
	CHECK(r.answered);
	CHECK_EQ(r.ans.f.op, SHIM_OP_CHALLENGE_ACK);
	CHECK_EQ(r.ans.echo_id, UP_REPLY);
	CHECK_EQ(r.ans.seq, 0);
	CHECK_EQ(r.ans.f.reply_id, LISTEN_ID);
	CHECK(r.ans.f.challenge == challenge);
	CHECK_EQ(r.ans.f.rejected_kind, SHIM_REJECTED_DATA);
	check_key(&r.ans.f.rejected_key, 0, 0, S);
	CHECK_EQ(r.ans.f.rejected_seq, 2);
	check_key(&r.ans.f.key, G + 3, 0, G + 4);
	CHECK(p.ls.bound);

	/* the right challenge with another key acknowledges nothing we asked for */
	o = r.ans;
	o.f.key.session += 2;
	wire_put(&bad, &o, ICMP4_ECHO_REPLY);
	a = to_up(&p, &bad);
	CHECK_EQ(a.act, ICMP_ACT_DROP);
	CHECK_EQ(a.drop, ICMP_DROP_STALE_ACK);
	CHECK_EQ(p.up.state, ICMP_UP_NEGOTIATING);

	a = to_up(&p, &r.ans_wire);
	CHECK_EQ(a.act, ICMP_ACT_READY);
	CHECK_EQ(p.up.state, ICMP_UP_READY);
	CHECK(icmp_up_deadline(&p.up) == UINT64_MAX);

	CHECK_EQ(up_send(&p, "three", 5, &d, &o), 0);
	CHECK(o.f.session == G + 4);
	CHECK_EQ(o.seq, 1);
	r = to_ls(&p, &d);
	CHECK_EQ(r.act, ICMP_ACT_DELIVER);
	CHECK(r.f.payload_len == 5 && !memcmp(r.f.payload, "three", 5));
	CHECK_EQ(ls_send(&p, "four", 4, &d, &o), 0);
	CHECK(o.f.session == G + 5);
	a = to_up(&p, &d);
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(a.f.payload_len == 4 && !memcmp(a.f.payload, "four", 4));
}

static void test_ls_rate_limits_reset_required_and_reuses_its_challenge(void)
{
	struct pair p;
	struct icmp_ls fresh;
	struct wire d;
	struct rx r;

	pair_init(&p);
	handshake(&p);
	ls_setup(&fresh, 7);
	CHECK_EQ(up_send(&p, "a", 1, &d, NULL), 0);
	r = to_ls_at(&fresh, T0 + 1000, &d);
	CHECK(r.answered);
	uint64_t challenge = r.ans.f.challenge;

	r = to_ls_at(&fresh, T0 + 1000 + ICMP_RESET_INTERVAL_MS - 1, &d);
	CHECK_EQ(r.act, ICMP_ACT_DROP);
	CHECK_EQ(r.drop, ICMP_DROP_STALE_SESSION);
	CHECK(!r.answered);
	CHECK_EQ(fresh.resets_rate_limited, 1);

	r = to_ls_at(&fresh, T0 + 1000 + ICMP_RESET_INTERVAL_MS, &d);
	CHECK(r.answered);
	CHECK_EQ(r.ans.f.op, SHIM_OP_RESET_REQUIRED);
	CHECK(r.ans.f.challenge == challenge);	/* still pending */
	CHECK_EQ(fresh.challenges_created, 1);
	CHECK_EQ(fresh.challenges_reused, 1);
}

/* ---- roll-over to a reserve session (§3.4) ---- */

/* The sequence after which the upstream starts negotiating its reserve session. */
#define RESERVE_AFTER_SEQ (ICMP_SEQS_PER_SESSION - ICMP_ROLLOVER_HEADROOM_SEQS - 1)

struct roll {
	struct pair p;
	uint32_t sent, delivered, replies, reserve_negotiates;
	bool withhold_reserve_ack;
	struct wire held_data, held_reply;	/* the last frames of S, delivered late */
	bool have_held_data, have_held_reply;
	uint16_t activated_seq;
	unsigned activated;
};

/* Control frames the upstream has due go to the listener; its answers come back. */
static void roll_pump_control(struct roll *t)
{
	struct icmp_out o;
	struct wire w;

	while (up_poll(&t->p, &w, &o) == 1) {
		if (o.f.key.ordinal == 1) {
			t->reserve_negotiates++;
			if (t->withhold_reserve_ack)
				continue;
		}
		struct rx r = to_ls(&t->p, &w);
		CHECK_EQ(r.act, ICMP_ACT_CONSUMED);
		CHECK(r.answered);
		struct rx a = to_up(&t->p, &r.ans_wire);
		CHECK(a.act == ICMP_ACT_CONSUMED || a.act == ICMP_ACT_READY);
	}
}

/* The listener takes DATA frame d and answers it with reply number n. */
static void roll_listener(struct roll *t, const struct wire *d, bool reply, bool hold_reply)
{
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct rx r = to_ls(&t->p, d);
	uint32_t n = 0;

	CHECK_EQ(r.act, ICMP_ACT_DELIVER);
	if (r.act != ICMP_ACT_DELIVER)
		return;
	CHECK(payload_check(&r.f, 'q', &n));
	t->delivered++;
	if (r.answered) {
		CHECK_EQ(r.ans.f.op, SHIM_OP_SESSION_ACTIVATED);
		t->activated++;
		t->activated_seq = r.ans.f.accepted_seq;
		check_key(&r.ans.f.key, G, 1, G + 3);
		CHECK_EQ(r.ans.seq, r.e.seq);
		CHECK_EQ(to_up(&t->p, &r.ans_wire).act, ICMP_ACT_CONSUMED);
	}
	if (!reply)
		return;
	struct wire rw;
	CHECK_EQ(ls_send(&t->p, buf, payload_make(buf, n, 'r'), &rw, NULL), 0);
	if (hold_reply) {
		t->held_reply = rw;
		t->have_held_reply = true;
		return;
	}
	struct rx a = to_up(&t->p, &rw);
	uint32_t m;
	CHECK_EQ(a.act, ICMP_ACT_DELIVER);
	CHECK(payload_check(&a.f, 'r', &m));
	CHECK_EQ(m, n);
	t->replies++;
}

/* Sends the upstream's data until seq `until` of the first session has been delivered. */
static void roll_until(struct roll *t, uint32_t until)
{
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct icmp_out o;
	struct wire d;

	while (t->sent < until) {
		int err = up_send(&t->p, buf, payload_make(buf, t->sent + 1, 'q'), &d, &o);
		CHECK_EQ(err, 0);
		if (err)
			return;
		t->sent++;
		CHECK(o.f.session == S);
		CHECK_EQ(o.seq, t->sent);
		roll_pump_control(t);
		/* the reserve is negotiated once, right after the sequence that leaves the headroom */
		CHECK_EQ(t->reserve_negotiates, o.seq >= RESERVE_AFTER_SEQ);
		roll_listener(t, &d, true, false);
	}
}

static void roll_init(struct roll *t)
{
	memset(t, 0, sizeof(*t));
	pair_init(&t->p);
	handshake(&t->p);
}

static void test_up_rolls_over_to_a_reserve_session_without_losing_frames(void)
{
	static struct roll t;
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct icmp_out o;
	struct wire d;

	roll_init(&t);
	/* the first session up to the sequence before the roll-over point, each frame answered */
	roll_until(&t, RESERVE_AFTER_SEQ - 1);
	CHECK_EQ(t.reserve_negotiates, 0);
	CHECK(!t.p.up.next_ready);
	CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
	CHECK_EQ(o.seq, RESERVE_AFTER_SEQ);
	CHECK(icmp_up_deadline(&t.p.up) == t.p.now);	/* the reserve NEGOTIATE is due */
	{
		struct wire n;
		CHECK_EQ(up_poll(&t.p, &n, &o), 1);
		CHECK_EQ(o.f.op, SHIM_OP_NEGOTIATE);
		CHECK_EQ(o.seq, 0);	/* seq 0 of the reserve session */
		CHECK_EQ(o.echo_id, LISTEN_ID);
		check_key(&o.f.key, G, 1, G + 3);
		struct rx r = to_ls(&t.p, &n);
		CHECK_EQ(r.act, ICMP_ACT_CONSUMED);
		CHECK(r.answered);
		CHECK_EQ(r.ans.f.op, SHIM_OP_NEGOTIATE_ACK);
		check_key(&r.ans.f.key, G, 1, G + 3);
		CHECK_EQ(r.ans.seq, 0);
		CHECK_EQ(to_up(&t.p, &r.ans_wire).act, ICMP_ACT_CONSUMED);
		CHECK(t.p.up.next_ready);
		CHECK_EQ(t.p.up.state, ICMP_UP_READY);
		CHECK(t.p.ls.cur.key.session == S);	/* the listener still receives on S */
	}
	roll_listener(&t, &d, true, false);
	t.reserve_negotiates = 1;

	/* up to seq 65533 as usual; 65534 arrives late; the reply to 65535 is held */
	while (t.sent < ICMP_SEQS_PER_SESSION - 3) {
		CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
		roll_pump_control(&t);
		roll_listener(&t, &d, true, false);
	}
	CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &t.held_data, &o), 0);
	CHECK_EQ(o.seq, 65534);
	CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
	CHECK_EQ(o.seq, 65535);
	CHECK(o.f.session == S);
	roll_listener(&t, &d, true, true);
	CHECK_EQ(t.p.up.handoffs, 0);

	/* the space is used up: the next frame goes out on the reserve */
	CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
	CHECK(o.f.session == G + 3);
	CHECK_EQ(o.seq, 1);
	CHECK_EQ(t.p.up.handoffs, 1);
	CHECK_EQ(t.p.up.pool_empty_stalls, 0);
	roll_listener(&t, &d, true, false);
	CHECK_EQ(t.activated, 1);
	CHECK_EQ(t.activated_seq, 1);
	CHECK(t.p.ls.cur.key.session == G + 3);

	/* the late request of S and the late reply on S + 1 are still admitted */
	roll_listener(&t, &t.held_data, false, false);
	{
		uint32_t m;
		struct rx a = to_up(&t.p, &t.held_reply);
		CHECK(a.f.session == S + 1);
		CHECK_EQ(a.act, ICMP_ACT_DELIVER);
		CHECK(payload_check(&a.f, 'r', &m));
		CHECK_EQ(m, ICMP_SEQS_PER_SESSION - 1);
		t.replies++;
	}

	/* and the new session carries on, replies on S' + 1 */
	for (unsigned i = 0; i < 100; i++) {
		struct icmp_out ro;
		struct wire rw;
		CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
		CHECK(o.f.session == G + 3);
		CHECK_EQ(o.seq, 2 + i);
		roll_pump_control(&t);
		struct rx r = to_ls(&t.p, &d);
		CHECK_EQ(r.act, ICMP_ACT_DELIVER);
		CHECK(!r.answered);
		t.delivered++;
		CHECK_EQ(ls_send(&t.p, buf, payload_make(buf, t.sent, 'r'), &rw, &ro), 0);
		CHECK(ro.f.session == G + 4);
		CHECK_EQ(ro.seq, 2 + i);
		CHECK_EQ(to_up(&t.p, &rw).act, ICMP_ACT_DELIVER);
		t.replies++;
	}
	CHECK_EQ(t.sent, ICMP_SEQS_PER_SESSION - 1 + 1 + 100);
	CHECK_EQ(t.delivered, t.sent);
	/* every request answered except the late one, whose sequence pairing is gone */
	CHECK_EQ(t.replies, t.sent - 1);
	CHECK_EQ(t.reserve_negotiates, 1);
	CHECK_EQ(t.p.up.handoffs, 1);
}

/* Drives the first session to its last sequence with the reserve's ACK withheld. */
static void roll_to_exhaustion_unacked(struct roll *t)
{
	roll_init(t);
	t->withhold_reserve_ack = true;
	roll_until(t, ICMP_SEQS_PER_SESSION - 1);
	CHECK_EQ(t->reserve_negotiates, 1);
	CHECK(!t->p.up.next_ready);
	CHECK(t->p.up.next_pending);
}

static void test_up_stalls_with_enospc_until_the_reserve_is_acked(void)
{
	static struct roll t;
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct icmp_out o;
	struct wire d, n;

	roll_to_exhaustion_unacked(&t);
	CHECK_EQ(up_send(&t.p, "x", 1, &d, NULL), -ENOSPC);
	CHECK_EQ(t.p.up.pool_empty_stalls, 1);
	CHECK_EQ(icmp_up_cadence(&t.p.up, &o), -ENOSPC);
	CHECK_EQ(up_send(&t.p, "x", 1, &d, NULL), -ENOSPC);
	CHECK_EQ(t.p.up.pool_empty_stalls, 3);
	CHECK_EQ(t.p.up.handoffs, 0);

	/* the retry of the reserve NEGOTIATE is answered this time */
	t.p.now += ICMP_RETRY_FIRST_MS;
	CHECK_EQ(up_poll(&t.p, &n, &o), 1);
	CHECK_EQ(o.seq, 1);
	check_key(&o.f.key, G, 1, G + 3);
	struct rx r = to_ls(&t.p, &n);
	CHECK(r.answered);
	CHECK_EQ(r.ans.seq, 1);
	CHECK_EQ(to_up(&t.p, &r.ans_wire).act, ICMP_ACT_CONSUMED);
	CHECK(t.p.up.next_ready);

	CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
	CHECK(o.f.session == G + 3);
	CHECK_EQ(o.seq, 2);	/* 0 and 1 went to the NEGOTIATE and its retry */
	CHECK_EQ(t.p.up.handoffs, 1);
	t.withhold_reserve_ack = false;
	roll_listener(&t, &d, true, false);
	CHECK_EQ(t.activated, 1);
	CHECK_EQ(t.activated_seq, 2);
	CHECK_EQ(t.delivered, t.sent);
	CHECK_EQ(t.replies, t.sent);
}

/*
 * When the reserve's handshake times out after the sequence space ran out, the upstream must
 * start another reserve negotiation; otherwise nothing ever ends the stall (§3.4: "stalls ...
 * until one is negotiated").
 */
static void test_up_negotiates_a_new_reserve_when_the_stalled_one_timed_out(void)
{
	static struct roll t;
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct icmp_out o;
	struct wire d, n;
	uint64_t start;
	int r = 0;

	roll_to_exhaustion_unacked(&t);
	start = t.p.now;
	CHECK_EQ(up_send(&t.p, "x", 1, &d, NULL), -ENOSPC);
	/* the retries go unanswered until the reserve's handshake times out */
	for (t.p.now = start; t.p.now <= start + HANDSHAKE_TIMEOUT_MS; t.p.now++)
		while ((r = up_poll(&t.p, &n, &o)) == 1)
			check_key(&o.f.key, G, 1, G + 3);
	CHECK_EQ(r, 0);
	CHECK(!t.p.up.next_pending);
	CHECK_EQ(t.p.up.state, ICMP_UP_READY);	/* the active session is not given up */

	/* still stalled, but a fresh reserve is on its way and ends the stall */
	CHECK_EQ(up_send(&t.p, "x", 1, &d, NULL), -ENOSPC);
	r = up_poll(&t.p, &n, &o);
	CHECK_EQ(r, 1);
	if (r != 1)
		return;	/* stalled for good */
	CHECK_EQ(o.f.op, SHIM_OP_NEGOTIATE);
	CHECK_EQ(o.seq, 0);
	CHECK(o.f.key.generation == G);
	CHECK(o.f.key.ordinal >= 1);
	CHECK(o.f.key.session == G + 5);
	struct rx rr = to_ls(&t.p, &n);
	CHECK(rr.answered);
	CHECK_EQ(to_up(&t.p, &rr.ans_wire).act, ICMP_ACT_CONSUMED);
	CHECK_EQ(up_send(&t.p, buf, payload_make(buf, ++t.sent, 'q'), &d, &o), 0);
	CHECK(o.f.session == G + 5);
	CHECK_EQ(t.p.up.handoffs, 1);
	struct rx l = to_ls(&t.p, &d);
	CHECK_EQ(l.act, ICMP_ACT_DELIVER);
	CHECK(l.answered);
	CHECK_EQ(l.ans.f.op, SHIM_OP_SESSION_ACTIVATED);
	CHECK(l.ans.f.key.session == G + 5);
}

/*
 * In sync mode a flow with no user data uses up its sequences on CADENCE alone; its reserve
 * session must be negotiated like one started by data (§3.4: reserve NEGOTIATEs appeared with
 * very high --icmp-sync-pps), not time out before its first send.
 */
static void test_up_cadence_alone_negotiates_the_reserve_session(void)
{
	struct pair p;
	struct icmp_out o;
	struct wire c, n;

	pair_init(&p);
	p.up.sync_pps = 100000;
	handshake(&p);
	/* an hour later, cadence frames up to the roll-over point */
	p.now = T0 + 3600 * 1000;
	for (uint32_t s = 1; s <= RESERVE_AFTER_SEQ; s++) {
		CHECK_EQ(up_cadence(&p, &c, &o), 0);
		if (o.seq != s)
			break;
	}
	CHECK_EQ(o.seq, RESERVE_AFTER_SEQ);
	int r = up_poll(&p, &n, &o);
	CHECK_EQ(r, 1);
	if (r != 1)
		return;	/* the reserve timed out before it was ever sent */
	CHECK_EQ(o.f.op, SHIM_OP_NEGOTIATE);
	CHECK_EQ(o.seq, 0);
	check_key(&o.f.key, G, 1, G + 3);
	struct rx l = to_ls(&p, &n);
	CHECK(l.answered);
	CHECK_EQ(to_up(&p, &l.ans_wire).act, ICMP_ACT_CONSUMED);
	CHECK(p.up.next_ready);
}

/* ---- a lossy, duplicating, reordering link ---- */

#define RAND_PAYLOADS 20000
#define LINK_MAX 64

struct link {
	struct wire q[LINK_MAX];
	unsigned n;
	unsigned loss_pct, dup_pct, swap_pct;
};

/* Puts a frame on the link; returns false when the link lost it (no copy got through). */
static bool link_push(struct link *l, const struct wire *w)
{
	if (test_rng_below(100) < l->loss_pct)
		return false;
	CHECK(l->n < LINK_MAX);
	if (l->n < LINK_MAX)
		l->q[l->n++] = *w;
	if (test_rng_below(100) < l->dup_pct && l->n < LINK_MAX)
		l->q[l->n++] = *w;
	return true;
}

/* Takes what is on the link now, neighbours swapped at random. */
static unsigned link_take(struct link *l, struct wire *out)
{
	unsigned n = l->n;

	memcpy(out, l->q, n * sizeof(*out));
	l->n = 0;
	for (unsigned i = 0; i + 1 < n; i++) {
		if (test_rng_below(100) < l->swap_pct) {
			struct wire tmp = out[i];
			out[i] = out[i + 1];
			out[i + 1] = tmp;
			i++;
		}
	}
	return n;
}

struct lossy {
	struct pair p;
	struct link to_ls, to_up;
	struct wire batch[LINK_MAX];
	/* per payload number: 0 = not sent, 1 = on the link, 2 = lost by the link, 3 = delivered */
	uint8_t req[RAND_PAYLOADS + 1], rep[RAND_PAYLOADS + 1];
	uint32_t held;		/* the payload waiting for the handshake, 0 = none */
	unsigned handshakes, timeouts, req_delivered, rep_delivered, eagain;
	unsigned dup_drops, other_drops;
};

static void lossy_send_req(struct lossy *t, uint32_t n)
{
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct wire w;
	int err = up_send(&t->p, buf, payload_make(buf, n, 'q'), &w, NULL);

	if (err == -EINPROGRESS) {
		t->held = n;
		return;
	}
	if (err) {
		CHECK_EQ(err, -EAGAIN);
		t->eagain++;
		return;
	}
	t->req[n] = link_push(&t->to_ls, &w) ? 1 : 2;
}

static void lossy_at_listener(struct lossy *t, const struct wire *w)
{
	uint8_t buf[PAYLOAD_MAX_BYTES];
	struct rx r = to_ls(&t->p, w);
	struct wire rw;
	uint32_t n;

	if (r.answered)
		link_push(&t->to_up, &r.ans_wire);
	if (r.act == ICMP_ACT_DROP) {
		CHECK_EQ(r.drop, ICMP_DROP_DUPLICATE);
		t->dup_drops++;
		return;
	}
	if (r.act != ICMP_ACT_DELIVER)
		return;
	CHECK(payload_check(&r.f, 'q', &n));
	CHECK(n >= 1 && n <= RAND_PAYLOADS);
	if (n < 1 || n > RAND_PAYLOADS)
		return;
	CHECK_EQ(t->req[n], 1);	/* sent, not lost, and not delivered before */
	t->req[n] = 3;
	t->req_delivered++;
	CHECK_EQ(ls_send(&t->p, buf, payload_make(buf, n, 'r'), &rw, NULL), 0);
	t->rep[n] = link_push(&t->to_up, &rw) ? 1 : 2;
}

static void lossy_at_upstream(struct lossy *t, const struct wire *w)
{
	struct rx a = to_up(&t->p, w);
	uint32_t n;

	switch (a.act) {
	case ICMP_ACT_READY:
		t->handshakes++;
		if (t->held) {
			uint32_t h = t->held;
			t->held = 0;
			lossy_send_req(t, h);
		}
		return;
	case ICMP_ACT_DELIVER:
		CHECK(payload_check(&a.f, 'r', &n));
		CHECK(n >= 1 && n <= RAND_PAYLOADS);
		if (n < 1 || n > RAND_PAYLOADS)
			return;
		CHECK_EQ(t->rep[n], 1);
		t->rep[n] = 3;
		t->rep_delivered++;
		return;
	case ICMP_ACT_DROP:
		/* duplicated frames, and ACKs of NEGOTIATE retries after the first one */
		if (a.drop == ICMP_DROP_DUPLICATE)
			t->dup_drops++;
		else
			t->other_drops++;
		CHECK(a.drop == ICMP_DROP_DUPLICATE || a.drop == ICMP_DROP_STALE_ACK);
		return;
	default:
		return;
	}
}

static void lossy_run(uint64_t seed, bool dgram)
{
	static struct lossy t;
	struct wire w;
	uint32_t next = 1;
	int r;

	memset(&t, 0, sizeof(t));
	if (dgram)
		pair_init_dgram(&t.p);
	else
		pair_init(&t.p);
	test_rng_seed(seed);
	t.to_ls.loss_pct = t.to_up.loss_pct = 10;
	t.to_ls.dup_pct = t.to_up.dup_pct = 10;
	t.to_ls.swap_pct = t.to_up.swap_pct = 10;

	for (unsigned step = 0; step < RAND_PAYLOADS + 1000; step++) {
		t.p.now++;
		/* one to three payloads per millisecond, while there are some */
		for (unsigned k = test_rng_below(3); next <= RAND_PAYLOADS && k < 3; k++)
			lossy_send_req(&t, next++);
		while ((r = up_poll(&t.p, &w, NULL)) == 1)
			link_push(&t.to_ls, &w);
		if (r == -ETIMEDOUT) {
			t.timeouts++;
			t.held = 0;
		}
		unsigned n = link_take(&t.to_ls, t.batch);
		for (unsigned i = 0; i < n; i++)
			lossy_at_listener(&t, &t.batch[i]);
		n = link_take(&t.to_up, t.batch);
		for (unsigned i = 0; i < n; i++)
			lossy_at_upstream(&t, &t.batch[i]);
	}
	CHECK_EQ(next, RAND_PAYLOADS + 1);
	CHECK(t.handshakes >= 1);
	CHECK_EQ(t.timeouts, 0);
	CHECK_EQ(t.held, 0);
	/* every frame the link did not lose arrived, exactly once, intact */
	unsigned sent = 0, lost = 0, rsent = 0, rlost = 0;
	for (uint32_t i = 1; i <= RAND_PAYLOADS; i++) {
		CHECK(t.req[i] != 1);
		CHECK(t.rep[i] != 1);
		sent += t.req[i] >= 2;
		lost += t.req[i] == 2;
		rsent += t.rep[i] >= 2;
		rlost += t.rep[i] == 2;
	}
	CHECK_EQ(t.req_delivered, sent - lost);
	CHECK_EQ(t.rep_delivered, rsent - rlost);
	CHECK_EQ(rsent, t.req_delivered);
	/* the link was as bad as intended, and still almost everything went through */
	CHECK(lost > RAND_PAYLOADS / 20 && lost < RAND_PAYLOADS / 5);
	CHECK(t.dup_drops > RAND_PAYLOADS / 20);
	CHECK(t.req_delivered > RAND_PAYLOADS * 8 / 10);
	CHECK(t.rep_delivered > RAND_PAYLOADS * 7 / 10);
}

static void test_lossy_link_delivers_every_surviving_payload_once_and_intact(void)
{
	static const uint64_t seeds[] = { 1, 2, 0xdeadbeef, 20240601, 77777 };

	for (unsigned i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		lossy_run(seeds[i], false);
		lossy_run(seeds[i], true);
	}
}

int main(void)
{
	RUN(test_handshake_negotiates_g_plus_1_then_data_flows_on_s_and_s_plus_1);
	RUN(test_handshake_of_a_dgram_upstream_uses_compact_frames_and_learned_ids);
	RUN(test_up_retries_negotiate_with_backoff_then_times_out_to_idle);
	RUN(test_up_data_while_negotiating_is_eagain_and_takes_no_sequence);
	RUN(test_ls_admits_each_request_once_within_the_replay_window);
	RUN(test_up_admits_each_reply_once_within_the_replay_window);
	RUN(test_up_drops_its_own_frames_reflected_by_a_kernel_echo);
	RUN(test_up_accepting_kernel_echo_handshakes_and_delivers_reflections);
	RUN(test_ls_answers_n_requests_with_n_distinct_sequences);
	RUN(test_unbound_ls_has_no_session_to_reply_on);
	RUN(test_ls_in_sync_mode_holds_replies_until_a_fresh_sequence);
	RUN(test_up_in_sync_mode_drops_future_and_behind_window_replies);
	RUN(test_up_catch_up_window_is_clamped_quarter_of_pps);
	RUN(test_up_without_sync_admits_old_replies_by_the_replay_window_only);
	RUN(test_bound_ls_drops_frames_of_another_source);
	RUN(test_restarted_ls_resets_and_up_renegotiates_with_the_challenge);
	RUN(test_ls_rate_limits_reset_required_and_reuses_its_challenge);
	RUN(test_up_rolls_over_to_a_reserve_session_without_losing_frames);
	RUN(test_up_stalls_with_enospc_until_the_reserve_is_acked);
	RUN(test_up_negotiates_a_new_reserve_when_the_stalled_one_timed_out);
	RUN(test_up_cadence_alone_negotiates_the_reserve_session);
	RUN(test_lossy_link_delivers_every_surviving_payload_once_and_intact);
	TEST_EXIT();
}
