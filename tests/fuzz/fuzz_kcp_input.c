/*
 * libFuzzer target for proto/kcp: the segment parser and the state machine behind it.
 *
 * One input is a small program. The first 10 bytes choose the parameters (stream or message
 * mode, nodelay, resend, nc, ack_nodelay, windows, mtu, reserved, interval, dead_link, rate
 * control) and the start time; the rest is a list of steps on two live sessions A and B:
 *   A writes; a datagram A sent is delivered to B, dropped or duplicated (any order);
 *   a datagram B sent is delivered to A, dropped or duplicated; arbitrary bytes are fed to A
 *   as a datagram (optionally with the session's conv written into each header, so the
 *   fuzzer gets past the conv check); time moves (small steps, check()-driven, big jumps
 *   through the 10 s resync and the u32 wrap); either side reads or flushes.
 * B only ever gets A's real datagrams, so whatever A is told, B must deliver a prefix of
 * what A was given, byte for byte (and in message mode the same messages).
 * Checked after every step, for both sessions: snd_una ≤ snd_nxt ≤ snd_una + snd_wnd
 * (wrap-safe), waitsnd = queued + in flight and never more segments than were written,
 * rcv_queue and rcv_buf within rcv_wnd, readable bytes within what rcv_queue can hold, the
 * error and retransmission counters add up, check() within [now, now + interval]; for every
 * datagram out() produces: len ≤ mtu, headroom present, only well-formed segments of the
 * session's conv with len ≤ mss, PUSH sn within [snd_una, snd_nxt), una = rcv_nxt.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kcp.h"
#include "proto/kcp_rate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONV 0x601c7698u
#define QUEUE_MAX 32
#define MSG_MAX 4096

static void fail(const char *what, long long v)
{
	fprintf(stderr, "%s (%lld)\n", what, v);
	abort();
}

static int32_t d32(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static uint8_t stream_byte(uint64_t i)
{
	return (uint8_t)((i * 0x9E3779B97F4A7C15ULL) >> 56);
}

struct dgram {
	uint32_t len;
	uint8_t b[KCP_MTU_MAX];
};

struct side {
	struct kcp *k;
	struct kcp_params p;
	uint32_t mss;
	struct dgram q[QUEUE_MAX];	/* datagrams sent, not yet delivered to the other side */
	uint32_t nq;
	uint64_t created;		/* upper bound on segments ever queued by kcp_send */
};

static struct {
	const uint8_t *p;
	size_t n;
} in;

static struct side A, B;
static uint32_t now;
static uint64_t a_written, b_read;
/* message mode: lengths of A's messages, and how many B delivered */
static uint32_t msg_len[MSG_MAX];
static uint32_t msg_sent, msg_read;

static uint32_t take(unsigned bytes)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (in.n) {
			v |= *in.p++;
			in.n--;
		}
	}
	return v;
}

static void check_datagram(struct side *s, const uint8_t *buf, size_t len)
{
	struct kcp_state st;
	const uint8_t *p = buf + s->p.reserved;
	size_t n = len - s->p.reserved;

	if (len > s->p.mtu || len <= s->p.reserved)
		fail("datagram size", (long long)len);
	kcp_inspect(s->k, &st);
	while (n) {
		uint32_t seg_len, sn;
		uint8_t cmd;

		if (n < KCP_OVERHEAD)
			fail("partial segment header", (long long)n);
		cmd = p[4];
		sn = kcp_peek_sn(p);
		seg_len = kcp_peek_u32(p + 20);
		if (kcp_peek_conv(p) != CONV)
			fail("conv", kcp_peek_conv(p));
		if (cmd < KCP_CMD_PUSH || cmd > KCP_CMD_WINS)
			fail("cmd", cmd);
		if (seg_len > n - KCP_OVERHEAD || seg_len > s->mss)
			fail("segment len", seg_len);
		if (cmd != KCP_CMD_PUSH && (seg_len || p[5]))
			fail("control segment with payload or frg", seg_len);
		if (s->p.stream && p[5])
			fail("frg in stream mode", p[5]);
		if (kcp_peek_u32(p + 16) != st.rcv_nxt)
			fail("una != rcv_nxt", kcp_peek_u32(p + 16));
		if (cmd == KCP_CMD_PUSH && (d32(sn, st.snd_una) < 0 || d32(sn, st.snd_nxt) >= 0))
			fail("PUSH outside [snd_una, snd_nxt)", sn);
		p += KCP_OVERHEAD + seg_len;
		n -= KCP_OVERHEAD + seg_len;
	}
}

static void out(void *ctx, uint8_t *buf, size_t len)
{
	struct side *s = ctx;

	check_datagram(s, buf, len);
	if (s->nq == QUEUE_MAX) {	/* a full queue loses its oldest datagram */
		memmove(&s->q[0], &s->q[1], sizeof(s->q[0]) * (QUEUE_MAX - 1));
		s->nq--;
	}
	s->q[s->nq].len = (uint32_t)(len - s->p.reserved);
	memcpy(s->q[s->nq].b, buf + s->p.reserved, len - s->p.reserved);
	s->nq++;
}

static void check_side(struct side *s)
{
	const struct kcp_stats *stats;
	struct kcp_state st;
	uint32_t next;

	kcp_inspect(s->k, &st);
	if (d32(st.snd_nxt, st.snd_una) < 0 || st.snd_nxt - st.snd_una > s->p.snd_wnd)
		fail("snd_una/snd_nxt", (long long)(st.snd_nxt - st.snd_una));
	if (kcp_waitsnd(s->k) != st.snd_queue + st.snd_buf)
		fail("waitsnd", kcp_waitsnd(s->k));
	if (s->p.rate && (st.inflight > st.snd_buf || st.rate_cwnd < KCP_RATE_MIN_CWND))
		fail("rate control: inflight or window", (long long)st.inflight);
	if (kcp_waitsnd(s->k) > s->created)
		fail("waitsnd above what was written", kcp_waitsnd(s->k));
	if (st.rcv_queue > s->p.rcv_wnd || st.rcv_buf > s->p.rcv_wnd)
		fail("receive queues", st.rcv_queue);
	if (st.cwnd > 0xffff || st.rto < 30 || st.rto > 60000)
		fail("cwnd/rto", st.rto);
	if (kcp_readable(s->k) > (size_t)st.rcv_queue * (KCP_MTU_MAX - KCP_OVERHEAD))
		fail("readable bytes", (long long)kcp_readable(s->k));
	stats = kcp_stats(s->k);
	if (stats->input_errors != stats->err_short + stats->err_truncated + stats->err_cmd +
				   stats->err_oversize ||
	    stats->retrans != stats->fast_retrans + stats->early_retrans + stats->lost)
		fail("counters", (long long)stats->input_errors);
	next = kcp_check(s->k, now);
	if (d32(next, now) < 0 || d32(next, now) > (int32_t)s->p.interval)
		fail("check() outside [now, now + interval]", d32(next, now));
}

/* Delivers, drops or duplicates one queued datagram of `from` to `to`. */
static void deliver(struct side *from, struct side *to)
{
	uint32_t sel = take(1), i;
	int rc;

	if (!from->nq)
		return;
	i = (sel & 0x3f) % from->nq;
	if ((sel >> 6) != 3) {
		rc = kcp_input(to->k, now, from->q[i].b, from->q[i].len, (sel >> 6) != 2);
		if (rc)
			fail("a real datagram was rejected", rc);
	}
	if ((sel >> 6) == 1)	/* duplicate: keep it for another delivery */
		return;
	from->nq--;
	memmove(&from->q[i], &from->q[i + 1], sizeof(from->q[0]) * (from->nq - i));
}

static void a_send(void)
{
	static uint8_t buf[8192];
	uint32_t len = take(2) % sizeof(buf) + 1;
	int rc;

	for (uint32_t i = 0; i < len; i++)
		buf[i] = stream_byte(a_written + i);
	if (!A.p.stream && msg_sent == MSG_MAX)
		return;
	rc = kcp_send(A.k, buf, len);
	if (rc == -EMSGSIZE && !A.p.stream && len > 255 * A.mss)
		return;
	if (rc == 0 && !kcp_writable(A.k))
		return;
	if (rc != (int)len)
		fail("kcp_send", rc);
	a_written += len;
	A.created += len / A.mss + 1;
	if (!A.p.stream)
		msg_len[msg_sent++] = len;
}

static void b_recv(void)
{
	static uint8_t buf[255 * KCP_MTU_MAX];
	uint32_t cap = take(2) + 1;
	int n = kcp_recv(B.k, buf, cap);

	if (!B.p.stream) {
		if (n == -EAGAIN || n == -EMSGSIZE)
			return;
		if (n < 0 || msg_read == msg_sent || (uint32_t)n != msg_len[msg_read])
			fail("message boundary", n);
		msg_read++;
	} else if (n < 0 || (uint32_t)n > cap) {
		fail("stream read", n);
	}
	for (int i = 0; i < n; i++)
		if (buf[i] != stream_byte(b_read + (uint64_t)i))
			fail("B delivered bytes A never wrote", (long long)(b_read + (uint64_t)i));
	b_read += (uint64_t)n;
	if (b_read > a_written)
		fail("B delivered more than A wrote", (long long)b_read);
}

static void a_recv(void)
{
	static uint8_t buf[255 * KCP_MTU_MAX];
	int n = kcp_recv(A.k, buf, take(2) + 1);

	if (n < 0 && n != -EAGAIN && n != -EMSGSIZE)
		fail("A read", n);
}

/* Arbitrary bytes into A; with the conv fix-up, every header the walk finds gets CONV. */
static void a_raw(void)
{
	static uint8_t buf[2048];
	uint32_t flags = take(1), len = take(2) % sizeof(buf);
	int rc;

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)take(1);
	if (flags & 1) {
		for (uint32_t off = 0; off + KCP_OVERHEAD <= len;) {
			uint32_t seg_len = kcp_peek_u32(buf + off + 20);

			buf[off] = (uint8_t)CONV;
			buf[off + 1] = (uint8_t)(CONV >> 8);
			buf[off + 2] = (uint8_t)(CONV >> 16);
			buf[off + 3] = (uint8_t)(CONV >> 24);
			if (seg_len > len)
				break;
			off += KCP_OVERHEAD + seg_len;
		}
	}
	rc = kcp_input(A.k, now, buf, len, !(flags & 2));
	if (rc && rc != -EBADMSG && rc != -EPROTO && rc != -ESTALE)
		fail("undocumented kcp_input result", rc);
}

static bool setup(struct kcp_pool *pool)
{
	uint32_t b0 = take(1), wa = take(1), wb = take(1), mtu = take(1), reserved = take(1);
	uint32_t interval = take(1), dead = take(1);
	struct kcp_params p;

	kcp_params_default(&p);
	p.stream = !(b0 & 1);
	p.nc = (b0 >> 1) & 1;
	p.ack_nodelay = (b0 >> 2) & 1;
	p.nodelay = (int)((b0 >> 3) & 3) % 3;
	p.resend = (int)(b0 >> 5);
	p.reserved = reserved % 41;
	p.mtu = p.reserved + 50 + (mtu * 6) % (KCP_MTU_MAX - p.reserved - 49);
	p.interval = 10 + interval % 90;
	p.dead_link = 1 + dead % 30;
	p.rate = (dead >> 7) & 1;
	p.snd_wnd = 1 + wa % 64;
	p.rcv_wnd = 1 + wb % 64;
	A.p = p;
	p.snd_wnd = 1 + wb % 64;
	p.rcv_wnd = 1 + wa % 64;
	B.p = p;
	A.k = kcp_new(CONV, &A.p, pool, out, &A);
	B.k = kcp_new(CONV, &B.p, pool, out, &B);
	if (!A.k || !B.k)
		fail("kcp_new refused valid parameters", (long long)A.p.mtu);
	A.mss = kcp_mss(A.k);
	B.mss = kcp_mss(B.k);
	now = take(3) << 8;	/* anywhere, the u32 wrap included */
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kcp_pool *pool = kcp_pool_new();

	if (!pool)
		return 0;
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	a_written = b_read = 0;
	msg_sent = msg_read = 0;
	in.p = data;
	in.n = size;
	setup(pool);
	while (in.n) {
		switch (take(1) % 11) {
		case 0:
			a_send();
			break;
		case 1:
			deliver(&A, &B);
			break;
		case 2:
			deliver(&B, &A);
			break;
		case 3:
			a_raw();
			break;
		case 4:
			now += take(1) * 4;
			kcp_update(A.k, now);
			kcp_update(B.k, now);
			break;
		case 5:
			now = kcp_check(A.k, now);
			kcp_update(A.k, now);
			now = kcp_check(B.k, now);
			kcp_update(B.k, now);
			break;
		case 6:
			b_recv();
			break;
		case 7:
			a_recv();
			break;
		case 8:
			kcp_flush(take(1) & 1 ? A.k : B.k, now);
			break;
		case 9:
			now += take(4);
			break;
		default:
			now += 5000 + take(1) * 50;
			kcp_update(A.k, now);
			kcp_update(B.k, now);
			break;
		}
		check_side(&A);
		check_side(&B);
	}
	kcp_free(A.k);
	kcp_free(B.k);
	kcp_pool_free(pool);
	return 0;
}
