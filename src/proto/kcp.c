/*
 * The KCP core (spec/kcp.md §1): segment codec, send/receive queues, ACKs, RTO, fast and
 * early retransmit, congestion window, window probing and the interval clock, behaving as
 * kcp-go v5.6.1 does on the wire so that kcptun is a peer.
 *
 * Not here: sockets, clocks, crypt/FEC headers (transport/kcp_link.c), smux, logging. The
 * caller passes the time in and gets datagrams through its out() callback.
 *
 * Layout. snd_buf holds exactly the sequence numbers [snd_una, snd_nxt) (kcp-go removes
 * segments only through una and merely marks ACKed ones), so it is a ring indexed by
 * sn & mask and an ACKed slot is NULL: an ACK finds its segment in O(1). rcv_buf holds
 * sequence numbers in [rcv_nxt, rcv_nxt + rcv_wnd), also a ring by sn. snd_queue and
 * rcv_queue are lists. Segments come from a per-thread pool of fixed-size buffers.
 *
 * Deliberate differences from kcp-go, none visible to a peer: a datagram cut short by a
 * validation error still gets the post-loop steps (RTT sample, cwnd, window-slid flush) for
 * the segments before the error; kcp_update() also flushes when a retransmission is due
 * between interval ticks (kcp-go schedules its flush at min(interval, earliest resendts)
 * directly); after an early retransmit with resend = 0 cwnd becomes ssthresh (kcp-go adds
 * 0xffffffff there); a full ACK list is flushed early instead of growing; an empty PUSH in
 * stream mode is consumed on arrival (kcp-go's reader would stall on it).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/list.h"
#include "core/util.h"
#include "proto/kcp.h"
#include "proto/kcp_rate.h"

/* §1.3 */
#define KCP_RTO_NDL_MS 30		/* min RTO with nodelay */
#define KCP_RTO_MIN_MS 100		/* min RTO without */
#define KCP_RTO_DEF_MS 200		/* before the first RTT sample */
#define KCP_RTO_MAX_MS 60000
#define KCP_WND_DEF_PKTS 32		/* kcp-go's snd_wnd, rcv_wnd and initial rmt_wnd */
#define KCP_MTU_DEF_BYTES 1400
#define KCP_INTERVAL_DEF_MS 100
#define KCP_INTERVAL_MIN_MS 10
#define KCP_INTERVAL_MAX_MS 5000
#define KCP_DEADLINK_DEF 20
#define KCP_THRESH_INIT_PKTS 2
#define KCP_THRESH_MIN_PKTS 2
#define KCP_PROBE_INIT_MS 7000
#define KCP_PROBE_LIMIT_MS 120000
/* §1.11: a clock that jumped this far from ts_flush resynchronises the interval clock */
#define KCP_RESYNC_MS 10000
#define KCP_RATE_INIT_CWND 32		/* segments sent before the first rate sample */
/* §1.10 probe flags */
#define KCP_ASK_SEND 1
#define KCP_ASK_TELL 2
/* frg is one byte (§1.4) */
#define KCP_FRAG_MAX 255
/* wnd is 16 bits on the wire, so larger windows could not be advertised */
#define KCP_WND_MAX_PKTS 65535
/* kcp_new refuses an mss below this (kcp-go refuses mtu < 50) */
#define KCP_MTU_MIN_BYTES 50
/* the longest payload a datagram of KCP_MTU_MAX bytes can carry: every segment buffer's size */
#define KCP_SEG_CAP_BYTES (KCP_MTU_MAX - KCP_OVERHEAD)
/* freed segments a pool keeps (about 6 MB); beyond that they go back to malloc */
#define KCP_POOL_CACHE_SEGS 4096
/* pending ACKs per session: 256 × 24 bytes fill about 5 datagrams; more are flushed early */
#define KCP_ACKS_MIN 64
#define KCP_ACKS_MAX 256

struct kcp_seg {
	struct list node;	/* snd_queue, rcv_queue or the pool's free list */
	uint32_t sn, ts, resendts, rto, fastack, xmit;
	uint32_t len;
	uint8_t frg;
	struct kcp_rate_tx rtx;		/* rate controller's snapshot of the last send */
	uint8_t data[KCP_SEG_CAP_BYTES];
};

struct kcp_pool {
	struct list free;
	uint32_t nfree;
	uint64_t mallocs;
};

struct kcp_ack {
	uint32_t sn, ts;
};

/* The 24-byte header of §1.1, decoded. */
struct kcp_hdr {
	uint32_t conv;
	uint8_t cmd, frg;
	uint16_t wnd;
	uint32_t ts, sn, una, len;
};

struct kcp {
	uint32_t conv, mtu, reserved, mss;
	uint32_t snd_una, snd_nxt, rcv_nxt;
	uint32_t snd_wnd, rcv_wnd, rmt_wnd, cwnd, incr, ssthresh;
	int32_t rx_srtt, rx_rttvar, rx_rto, rx_minrto;
	uint32_t interval, ts_flush;
	bool updated;
	int nodelay, fastresend, nocwnd;
	bool stream, ack_nodelay;
	uint32_t probe, ts_probe, probe_wait;
	uint32_t dead_link, dead_sn;
	bool dead;
	/* earliest resendts of an unacked segment as of the last flush (a lower bound after
	 * later ACKs, which is safe: check() may only be early) */
	uint32_t resend_min;
	bool resend_pending;
	/* delivery-rate control (params.rate): replaces cwnd/ssthresh when on */
	bool rate_on;
	uint32_t inflight;		/* segments sent and not acknowledged */
	struct kcp_rate rate;

	struct list snd_queue;
	uint32_t nsnd_queue;
	struct kcp_seg **snd_buf;	/* [sn & snd_mask], sn in [snd_una, snd_nxt); NULL = ACKed */
	uint32_t snd_mask;
	struct kcp_seg **rcv_buf;	/* [sn & rcv_mask], sn in [rcv_nxt, rcv_nxt + rcv_wnd) */
	uint32_t rcv_mask, nrcv_buf;
	struct list rcv_queue;
	uint32_t nrcv_queue;
	uint32_t rcv_off;		/* bytes of the head of rcv_queue already read (stream mode) */
	size_t rcv_bytes;		/* unread payload bytes in rcv_queue */
	struct kcp_ack *acks;
	uint32_t nacks, acks_cap;

	struct kcp_pool *pool;
	kcp_out_fn out;
	void *out_ctx;
	uint8_t *buf;			/* mtu bytes: reserved headroom, then segments */
	uint32_t pos;			/* end of the datagram being built */
	struct kcp_stats stats;
};

static inline int32_t diff32(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* Floor division by 2^s: the arithmetic shift §1.7 asks for, without relying on how the
 * compiler shifts negative numbers. */
static int32_t shr_floor(int32_t v, unsigned s)
{
	int64_t d = (int64_t)1 << s;
	int64_t q = (int64_t)v / d;

	if ((int64_t)v % d && v < 0)
		q--;
	return (int32_t)q;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static void list_add_tail(struct list *h, struct list *n)
{
	list_add(h->prev, n);
}

static struct kcp_seg *seg_of(struct list *n)
{
	return container_of(n, struct kcp_seg, node);
}

/* ---- segment pool ---- */

struct kcp_pool *kcp_pool_new(void)
{
	struct kcp_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	list_init(&pool->free);
	return pool;
}

void kcp_pool_free(struct kcp_pool *pool)
{
	struct list *pos, *tmp;

	if (!pool)
		return;
	list_for_each_safe(pos, tmp, &pool->free)
		free(seg_of(pos));
	free(pool);
}

void kcp_pool_counts(const struct kcp_pool *pool, uint64_t *mallocs, uint32_t *cached)
{
	*mallocs = pool->mallocs;
	*cached = pool->nfree;
}

static struct kcp_seg *seg_get(struct kcp_pool *pool)
{
	struct kcp_seg *s;

	if (!list_empty(&pool->free)) {
		s = seg_of(pool->free.next);
		list_del(&s->node);
		pool->nfree--;
	} else {
		s = malloc(sizeof(*s));
		if (!s)
			return NULL;
		pool->mallocs++;
		list_init(&s->node);
	}
	s->sn = s->ts = s->resendts = s->rto = s->fastack = s->xmit = s->len = 0;
	s->frg = 0;
	return s;
}

/* s must not be on a list (list_del first). */
static void seg_put(struct kcp_pool *pool, struct kcp_seg *s)
{
	if (pool->nfree >= KCP_POOL_CACHE_SEGS) {
		free(s);
		return;
	}
	list_add(&pool->free, &s->node);
	pool->nfree++;
}

static void seg_list_put(struct kcp_pool *pool, struct list *h)
{
	while (!list_empty(h)) {
		struct kcp_seg *s = seg_of(h->next);

		list_del(&s->node);
		seg_put(pool, s);
	}
}

/* ---- parameters ---- */

void kcp_params_default(struct kcp_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mtu = KCP_MTU_DEF_BYTES;
	p->snd_wnd = KCP_WND_DEF_PKTS;
	p->rcv_wnd = KCP_WND_DEF_PKTS;
	p->interval = KCP_INTERVAL_DEF_MS;
	p->stream = true;
	p->dead_link = KCP_DEADLINK_DEF;
}

/* §1.13; manual = kcptun's defaults for --nodelay/--interval/--resend/--nc. */
void kcp_params_mode(struct kcp_params *p, enum kcp_mode m)
{
	static const struct {
		int nodelay, interval, resend, nc;
	} preset[] = {
		[KCP_MODE_NORMAL] = { 0, 40, 2, 1 },
		[KCP_MODE_FAST] = { 0, 30, 2, 1 },
		[KCP_MODE_FAST2] = { 1, 20, 2, 1 },
		[KCP_MODE_FAST3] = { 1, 10, 2, 1 },
		[KCP_MODE_MANUAL] = { 0, 50, 0, 0 },
	};

	if ((unsigned)m >= ARRAY_SIZE(preset))
		m = KCP_MODE_FAST;
	p->nodelay = preset[m].nodelay;
	p->interval = (uint32_t)preset[m].interval;
	p->resend = preset[m].resend;
	p->nc = preset[m].nc;
}

static bool params_valid(const struct kcp_params *p)
{
	if (p->mtu > KCP_MTU_MAX || p->reserved > p->mtu ||
	    p->mtu - p->reserved < KCP_MTU_MIN_BYTES)
		return false;
	if (!p->snd_wnd || !p->rcv_wnd || p->snd_wnd > KCP_WND_MAX_PKTS ||
	    p->rcv_wnd > KCP_WND_MAX_PKTS)
		return false;
	return p->nodelay >= 0 && p->resend >= 0 && p->dead_link > 0;
}

/* ---- session ---- */

struct kcp *kcp_new(uint32_t conv, const struct kcp_params *p, struct kcp_pool *pool,
		    kcp_out_fn out, void *out_ctx)
{
	struct kcp *k;
	uint32_t snd_slots, rcv_slots;

	if (!p || !pool || !out || !params_valid(p))
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	snd_slots = pow2_at_least(p->snd_wnd);
	rcv_slots = pow2_at_least(p->rcv_wnd);
	k->acks_cap = MIN(MAX(p->rcv_wnd, KCP_ACKS_MIN), KCP_ACKS_MAX);
	k->buf = malloc(p->mtu);
	k->snd_buf = calloc(snd_slots, sizeof(*k->snd_buf));
	k->rcv_buf = calloc(rcv_slots, sizeof(*k->rcv_buf));
	k->acks = calloc(k->acks_cap, sizeof(*k->acks));
	if (!k->buf || !k->snd_buf || !k->rcv_buf || !k->acks)
		goto fail;

	k->conv = conv;
	k->mtu = p->mtu;
	k->reserved = p->reserved;
	k->mss = p->mtu - KCP_OVERHEAD - p->reserved;
	k->snd_wnd = p->snd_wnd;
	k->rcv_wnd = p->rcv_wnd;
	k->rmt_wnd = KCP_WND_DEF_PKTS;
	k->ssthresh = KCP_THRESH_INIT_PKTS;
	k->rx_rto = KCP_RTO_DEF_MS;
	k->rx_minrto = p->nodelay ? KCP_RTO_NDL_MS : KCP_RTO_MIN_MS;
	k->interval = MIN(MAX(p->interval, KCP_INTERVAL_MIN_MS), KCP_INTERVAL_MAX_MS);
	k->ts_flush = k->interval;
	k->nodelay = p->nodelay;
	k->fastresend = p->resend;
	k->nocwnd = p->nc;
	k->rate_on = p->rate;
	k->stream = p->stream;
	k->ack_nodelay = p->ack_nodelay;
	k->dead_link = p->dead_link;
	k->snd_mask = snd_slots - 1;
	k->rcv_mask = rcv_slots - 1;
	list_init(&k->snd_queue);
	list_init(&k->rcv_queue);
	k->pool = pool;
	k->out = out;
	k->out_ctx = out_ctx;
	k->pos = k->reserved;
	if (k->rate_on)
		kcp_rate_init(&k->rate, k->mss + KCP_OVERHEAD, k->interval, KCP_RATE_INIT_CWND);
	return k;

fail:
	free(k->acks);
	free(k->rcv_buf);
	free(k->snd_buf);
	free(k->buf);
	free(k);
	return NULL;
}

void kcp_free(struct kcp *k)
{
	if (!k)
		return;
	seg_list_put(k->pool, &k->snd_queue);
	seg_list_put(k->pool, &k->rcv_queue);
	for (uint32_t i = 0; i <= k->snd_mask; i++)
		if (k->snd_buf[i])
			seg_put(k->pool, k->snd_buf[i]);
	for (uint32_t i = 0; i <= k->rcv_mask; i++)
		if (k->rcv_buf[i])
			seg_put(k->pool, k->rcv_buf[i]);
	free(k->acks);
	free(k->rcv_buf);
	free(k->snd_buf);
	free(k->buf);
	free(k);
}

uint32_t kcp_conv(const struct kcp *k)
{
	return k->conv;
}

uint32_t kcp_mss(const struct kcp *k)
{
	return k->mss;
}

/* ---- wire format (§1.1, little-endian) ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void hdr_write(uint8_t *p, const struct kcp_hdr *h)
{
	put_u32(p, h->conv);
	p[4] = h->cmd;
	p[5] = h->frg;
	put_u16(p + 6, h->wnd);
	put_u32(p + 8, h->ts);
	put_u32(p + 12, h->sn);
	put_u32(p + 16, h->una);
	put_u32(p + 20, h->len);
}

static void hdr_read(const uint8_t *p, struct kcp_hdr *h)
{
	h->conv = kcp_peek_u32(p);
	h->cmd = p[4];
	h->frg = p[5];
	h->wnd = (uint16_t)(p[6] | p[7] << 8);
	h->ts = kcp_peek_u32(p + 8);
	h->sn = kcp_peek_u32(p + 12);
	h->una = kcp_peek_u32(p + 16);
	h->len = kcp_peek_u32(p + 20);
}

/* ---- output buffer ---- */

static void out_emit(struct kcp *k)
{
	if (k->pos > k->reserved) {
		k->out(k->out_ctx, k->buf, k->pos);
		k->stats.out_bytes += k->pos - k->reserved;
	}
	k->pos = k->reserved;
}

/* Appends one segment, emitting the datagram first if the segment would not fit (§1.1). */
static void out_segment(struct kcp *k, const struct kcp_hdr *h, const uint8_t *payload)
{
	if (k->pos + KCP_OVERHEAD + h->len > k->mtu)
		out_emit(k);
	hdr_write(k->buf + k->pos, h);
	if (h->len)
		memcpy(k->buf + k->pos + KCP_OVERHEAD, payload, h->len);
	k->pos += KCP_OVERHEAD + h->len;
	k->stats.out_segs++;
}

/* wnd of §1.1: the free part of our receive window. */
static uint16_t wnd_unused(const struct kcp *k)
{
	return k->nrcv_queue < k->rcv_wnd ? (uint16_t)(k->rcv_wnd - k->nrcv_queue) : 0;
}

/* ---- flush (§1.6) ---- */

/* Step 1: every pending ACK; those below rcv_nxt are implied by una except the last. */
static void flush_acks(struct kcp *k, struct kcp_hdr *h)
{
	h->cmd = KCP_CMD_ACK;
	for (uint32_t i = 0; i < k->nacks; i++) {
		if (diff32(k->acks[i].sn, k->rcv_nxt) < 0 && i + 1 < k->nacks)
			continue;
		h->sn = k->acks[i].sn;
		h->ts = k->acks[i].ts;
		out_segment(k, h, NULL);
	}
	k->nacks = 0;
}

/* Step 2, §1.10: schedule a WASK while the peer advertises a zero window. */
static void probe_schedule(struct kcp *k, uint32_t now)
{
	if (k->rmt_wnd) {
		k->ts_probe = 0;
		k->probe_wait = 0;
		return;
	}
	if (!k->probe_wait) {
		k->probe_wait = KCP_PROBE_INIT_MS;
		k->ts_probe = now + k->probe_wait;
	} else if (diff32(now, k->ts_probe) >= 0) {
		k->probe_wait = MAX(k->probe_wait, KCP_PROBE_INIT_MS);
		k->probe_wait += k->probe_wait / 2;
		k->probe_wait = MIN(k->probe_wait, KCP_PROBE_LIMIT_MS);
		k->ts_probe = now + k->probe_wait;
		k->probe |= KCP_ASK_SEND;
	}
}

static void flush_probes(struct kcp *k, struct kcp_hdr *h)
{
	h->ts = 0;
	h->sn = 0;
	if (k->probe & KCP_ASK_SEND) {
		h->cmd = KCP_CMD_WASK;
		out_segment(k, h, NULL);
	}
	if (k->probe & KCP_ASK_TELL) {
		h->cmd = KCP_CMD_WINS;
		out_segment(k, h, NULL);
	}
	k->probe = 0;
}

/* Step 3: number queued segments while snd_nxt < snd_una + cwnd and, with rate control,
 * while fewer than its window are in flight and the pacing budget lasts. Returns how many. */
static uint32_t queue_to_buf(struct kcp *k, uint32_t now, uint32_t cwnd)
{
	uint32_t moved = 0, in_flight_max = k->rate_on ? kcp_rate_cwnd(&k->rate) : UINT32_MAX;
	int64_t budget = k->rate_on ? kcp_rate_budget(&k->rate, now) : INT64_MAX;

	while (!list_empty(&k->snd_queue) && diff32(k->snd_nxt, k->snd_una + cwnd) < 0 &&
	       k->inflight < in_flight_max && budget > 0) {
		struct kcp_seg *s = seg_of(k->snd_queue.next);

		list_del(&s->node);
		k->nsnd_queue--;
		s->sn = k->snd_nxt++;
		s->xmit = 0;
		s->fastack = 0;
		k->snd_buf[s->sn & k->snd_mask] = s;
		moved++;
		if (k->rate_on) {
			k->inflight++;
			budget -= (int64_t)s->len + KCP_OVERHEAD;
		}
	}
	return moved;
}

struct flush_counts {
	uint32_t fast, early, lost;
};

/* Step 4: which segment goes out now, kcp-go's order. */
static bool seg_due(struct kcp *k, struct kcp_seg *s, uint32_t now, uint32_t moved,
		    struct flush_counts *c)
{
	uint32_t resent = k->fastresend > 0 ? (uint32_t)k->fastresend : UINT32_MAX;

	if (s->xmit == 0) {
		s->rto = (uint32_t)k->rx_rto;
	} else if (s->fastack >= resent) {
		s->fastack = 0;
		s->rto = (uint32_t)k->rx_rto;
		c->fast++;
	} else if (s->fastack > 0 && moved == 0) {
		s->fastack = 0;
		s->rto = (uint32_t)k->rx_rto;
		c->early++;
	} else if (diff32(now, s->resendts) >= 0) {
		s->rto += k->nodelay ? (uint32_t)k->rx_rto / 2 : (uint32_t)k->rx_rto;
		s->fastack = 0;
		c->lost++;
	} else {
		return false;
	}
	s->resendts = now + s->rto;
	return true;
}

static void flush_data(struct kcp *k, struct kcp_hdr *h, uint32_t now, uint32_t moved,
		       uint32_t inflight_before, struct flush_counts *c)
{
	k->resend_pending = false;
	h->cmd = KCP_CMD_PUSH;
	for (uint32_t sn = k->snd_una; sn != k->snd_nxt; sn++) {
		struct kcp_seg *s = k->snd_buf[sn & k->snd_mask];

		if (!s)
			continue;
		if (seg_due(k, s, now, moved, c)) {
			s->xmit++;
			s->ts = now;
			h->frg = s->frg;
			h->ts = now;
			h->sn = s->sn;
			h->len = s->len;
			out_segment(k, h, s->data);
			if (k->rate_on) {
				if (s->xmit > 1)
					kcp_rate_lost(&k->rate, s->len + KCP_OVERHEAD);
				kcp_rate_sent(&k->rate, &s->rtx, now, inflight_before);
				kcp_rate_charge(&k->rate, s->len + KCP_OVERHEAD);
				inflight_before = 1;
			}
			if (s->xmit >= k->dead_link && !k->dead) {
				k->dead = true;
				k->dead_sn = s->sn;
			}
		}
		if (!k->resend_pending || diff32(s->resendts, k->resend_min) < 0)
			k->resend_min = s->resendts;
		k->resend_pending = true;
	}
	h->frg = 0;
	h->len = 0;
}

/* Step 6, §1.9: the congestion window reacts to this flush's retransmissions. */
static void flush_congestion(struct kcp *k, uint32_t cwnd, const struct flush_counts *c)
{
	if (k->nocwnd || k->rate_on)
		return;
	if (c->fast || c->early) {
		k->ssthresh = MAX((k->snd_nxt - k->snd_una) / 2, KCP_THRESH_MIN_PKTS);
		k->cwnd = k->ssthresh + (uint32_t)k->fastresend;
		k->incr = k->cwnd * k->mss;
	}
	if (c->lost) {
		k->ssthresh = MAX(cwnd / 2, KCP_THRESH_MIN_PKTS);
		k->cwnd = 1;
		k->incr = k->mss;
	}
	if (k->cwnd < 1) {
		k->cwnd = 1;
		k->incr = k->mss;
	}
}

static void flush(struct kcp *k, uint32_t now, bool ack_only)
{
	struct kcp_hdr h = {
		.conv = k->conv,
		.wnd = wnd_unused(k),
		.una = k->rcv_nxt,
	};
	struct flush_counts c = { 0, 0, 0 };
	uint32_t cwnd, moved, inflight_before = k->inflight;

	k->pos = k->reserved;
	flush_acks(k, &h);
	if (ack_only) {
		out_emit(k);
		return;
	}
	probe_schedule(k, now);
	flush_probes(k, &h);

	cwnd = MIN(k->snd_wnd, k->rmt_wnd);
	if (!k->nocwnd && !k->rate_on)
		cwnd = MIN(cwnd, k->cwnd);
	moved = queue_to_buf(k, now, cwnd);
	flush_data(k, &h, now, moved, inflight_before, &c);
	out_emit(k);

	k->stats.fast_retrans += c.fast;
	k->stats.early_retrans += c.early;
	k->stats.lost += c.lost;
	k->stats.retrans += c.fast + c.early + c.lost;
	flush_congestion(k, cwnd, &c);
}

void kcp_flush(struct kcp *k, uint32_t now)
{
	flush(k, now, false);
}

void kcp_unpace(struct kcp *k)
{
	k->rate_on = false;
}

/* ---- input (§1.5) ---- */

/*
 * An in-flight segment was acknowledged: the rate controller learns, the slot is freed.
 * sure: the acknowledgment is known to be for the last transmission (an ACK echoes the ts
 * of the copy it acknowledges; una does not say), so its snapshot may give a rate sample.
 */
static void seg_acked(struct kcp *k, struct kcp_seg **slot, uint32_t now, bool sure)
{
	if (k->rate_on) {
		kcp_rate_delivered(&k->rate, &(*slot)->rtx, now, (*slot)->len + KCP_OVERHEAD,
				   sure || (*slot)->xmit == 1);
		k->inflight--;
	}
	seg_put(k->pool, *slot);
	*slot = NULL;
}

/* Drops every in-flight segment below una. Returns how many slots were released. */
static uint32_t input_una(struct kcp *k, uint32_t now, uint32_t una)
{
	uint32_t n = 0;

	while (diff32(una, k->snd_una) > 0 && k->snd_una != k->snd_nxt) {
		struct kcp_seg **slot = &k->snd_buf[k->snd_una & k->snd_mask];

		if (*slot)
			seg_acked(k, slot, now, false);
		k->snd_una++;
		n++;
	}
	return n;
}

static bool in_flight(const struct kcp *k, uint32_t sn)
{
	return diff32(sn, k->snd_una) >= 0 && diff32(sn, k->snd_nxt) < 0;
}

/* ACK: release the segment; count it as a later ACK for older segments sent no later than
 * the acknowledged copy (§1.8: the ts guard ignores reordered old ACKs). */
static void input_ack(struct kcp *k, uint32_t now, const struct kcp_hdr *h)
{
	struct kcp_seg **slot;

	if (!in_flight(k, h->sn))
		return;
	slot = &k->snd_buf[h->sn & k->snd_mask];
	if (*slot)
		seg_acked(k, slot, now, (*slot)->ts == h->ts);
	for (uint32_t sn = k->snd_una; sn != h->sn; sn++) {
		struct kcp_seg *s = k->snd_buf[sn & k->snd_mask];

		if (s && diff32(s->ts, h->ts) <= 0)
			s->fastack++;
	}
}

static void ack_push(struct kcp *k, uint32_t now, uint32_t sn, uint32_t ts)
{
	if (k->nacks == k->acks_cap) {
		k->stats.ack_overflows++;
		flush(k, now, true);
	}
	k->acks[k->nacks].sn = sn;
	k->acks[k->nacks].ts = ts;
	k->nacks++;
}

/*
 * Moves the in-order run at rcv_nxt from rcv_buf to rcv_queue while the queue has room.
 * An empty PUSH in stream mode carries nothing to read (kcp-go never sends one), so it is
 * consumed here rather than left to block the head of the queue.
 */
static void rcv_buf_to_queue(struct kcp *k)
{
	while (k->nrcv_queue < k->rcv_wnd) {
		struct kcp_seg **slot = &k->rcv_buf[k->rcv_nxt & k->rcv_mask];
		struct kcp_seg *s = *slot;

		if (!s || s->sn != k->rcv_nxt)
			break;
		*slot = NULL;
		k->nrcv_buf--;
		if (k->stream && !s->len) {
			seg_put(k->pool, s);
			k->rcv_nxt++;
			continue;
		}
		list_add_tail(&k->rcv_queue, &s->node);
		k->nrcv_queue++;
		k->rcv_bytes += s->len;
		k->rcv_nxt++;
	}
}

static void input_push(struct kcp *k, uint32_t now, const struct kcp_hdr *h, const uint8_t *payload)
{
	struct kcp_seg **slot;
	struct kcp_seg *s;

	if (diff32(h->sn, k->rcv_nxt + k->rcv_wnd) >= 0) {
		k->stats.wnd_drops++;
		return;
	}
	slot = &k->rcv_buf[h->sn & k->rcv_mask];
	if (diff32(h->sn, k->rcv_nxt) < 0 || *slot) {
		k->stats.dup_segs++;
		ack_push(k, now, h->sn, h->ts);
		return;
	}
	s = seg_get(k->pool);
	if (!s) {
		k->stats.nomem_drops++;
		return;
	}
	s->sn = h->sn;
	s->ts = h->ts;
	s->frg = h->frg;
	s->len = h->len;
	memcpy(s->data, payload, h->len);
	*slot = s;
	k->nrcv_buf++;
	ack_push(k, now, h->sn, h->ts);
	rcv_buf_to_queue(k);
}

/* §1.7, kcp-go's estimator. */
static void rtt_update(struct kcp *k, int32_t rtt)
{
	int64_t rto;

	if (k->rx_srtt == 0) {
		k->rx_srtt = rtt;
		k->rx_rttvar = shr_floor(rtt, 1);
	} else {
		int32_t delta = rtt - k->rx_srtt;

		k->rx_srtt += shr_floor(delta, 3);
		if (delta < 0)
			delta = -delta;
		if (rtt < k->rx_srtt - k->rx_rttvar)
			k->rx_rttvar += shr_floor(delta - k->rx_rttvar, 5);
		else
			k->rx_rttvar += shr_floor(delta - k->rx_rttvar, 2);
	}
	rto = (int64_t)k->rx_srtt + MAX((int64_t)k->interval, (int64_t)k->rx_rttvar * 4);
	/* rate control probes with a queue of up to a quarter RTT, and the peer holds ACKs for
	 * up to its interval: a timeout inside that margin would resend what is only queued */
	if (k->rate_on)
		rto += k->interval + k->rx_srtt / 4;
	k->rx_rto = (int32_t)MIN(MAX(rto, (int64_t)k->rx_minrto), (int64_t)KCP_RTO_MAX_MS);
}

/* §1.9: the window slid; slow start below ssthresh, congestion avoidance above. */
static void cwnd_grow(struct kcp *k)
{
	uint32_t mss = k->mss;

	if (k->cwnd >= k->rmt_wnd)
		return;
	if (k->cwnd < k->ssthresh) {
		k->cwnd++;
		k->incr += mss;
	} else {
		if (k->incr < mss)
			k->incr = mss;
		k->incr += mss * mss / k->incr + mss / 16;
		if ((k->cwnd + 1) * mss <= k->incr)
			k->cwnd = (k->incr + mss - 1) / mss;
	}
	if (k->cwnd > k->rmt_wnd) {
		k->cwnd = k->rmt_wnd;
		k->incr = k->rmt_wnd * mss;
	}
}

/* Validates one header against the bytes left (§1.1). 0 or the error to stop with. */
static int input_check(struct kcp *k, const struct kcp_hdr *h, size_t left)
{
	if (h->conv != k->conv) {
		k->stats.conv_mismatch++;
		return -ESTALE;
	}
	if (h->len > left - KCP_OVERHEAD) {
		k->stats.err_truncated++;
		k->stats.input_errors++;
		return -EBADMSG;
	}
	if (h->cmd < KCP_CMD_PUSH || h->cmd > KCP_CMD_WINS) {
		k->stats.err_cmd++;
		k->stats.input_errors++;
		return -EPROTO;
	}
	if (h->cmd == KCP_CMD_PUSH && h->len > KCP_SEG_CAP_BYTES) {
		k->stats.err_oversize++;
		k->stats.input_errors++;
		return -EBADMSG;
	}
	return 0;
}

int kcp_input(struct kcp *k, uint32_t now, const uint8_t *data, size_t len, bool regular)
{
	uint32_t una_before = k->snd_una, latest_ts = 0;
	int32_t rtt;
	bool slid = false, acked = false;
	int err = 0;

	k->stats.in_bytes += len;
	if (len < KCP_OVERHEAD) {
		k->stats.err_short++;
		k->stats.input_errors++;
		return -EBADMSG;
	}
	while (len >= KCP_OVERHEAD) {
		struct kcp_hdr h;

		hdr_read(data, &h);
		err = input_check(k, &h, len);
		if (err)
			break;
		k->stats.in_segs++;
		if (regular)
			k->rmt_wnd = h.wnd;
		if (input_una(k, now, h.una))
			slid = true;
		switch (h.cmd) {
		case KCP_CMD_ACK:
			input_ack(k, now, &h);
			acked = true;
			latest_ts = h.ts;
			break;
		case KCP_CMD_PUSH:
			input_push(k, now, &h, data + KCP_OVERHEAD);
			break;
		case KCP_CMD_WASK:
			k->probe |= KCP_ASK_TELL;
			break;
		default:	/* WINS: the window update above is all */
			break;
		}
		data += KCP_OVERHEAD + h.len;
		len -= KCP_OVERHEAD + h.len;
	}
	if (!err && len)
		k->stats.trailing++;

	rtt = acked && regular && diff32(now, latest_ts) >= 0 ? diff32(now, latest_ts) : -1;
	if (rtt >= 0)
		rtt_update(k, rtt);
	if (k->rate_on && (rtt >= 0 || k->rate.have_sample))
		kcp_rate_ack_end(&k->rate, now, rtt, k->inflight);
	if (!k->nocwnd && diff32(k->snd_una, una_before) > 0)
		cwnd_grow(k);
	if (slid)
		flush(k, now, false);
	else if (k->ack_nodelay && k->nacks)
		flush(k, now, true);
	return err;
}

/* ---- send (§1.4) ---- */

/* Cuts buf into mss-sized segments on a private list; frg counts down in message mode. */
static int segs_make(struct kcp *k, struct list *out, const uint8_t *buf, size_t len, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		size_t size = MIN(len, (size_t)k->mss);
		struct kcp_seg *s = seg_get(k->pool);

		if (!s) {
			seg_list_put(k->pool, out);
			return -ENOMEM;
		}
		if (size)
			memcpy(s->data, buf, size);
		s->len = (uint32_t)size;
		s->frg = k->stream ? 0 : (uint8_t)(n - 1 - i);
		list_add_tail(out, &s->node);
		buf += size;
		len -= size;
	}
	return 0;
}

static void segs_queue(struct kcp *k, struct list *segs, uint32_t n)
{
	while (!list_empty(segs)) {
		struct list *node = segs->next;

		list_del(node);
		list_add_tail(&k->snd_queue, node);
	}
	k->nsnd_queue += n;
}

int kcp_send(struct kcp *k, const uint8_t *buf, size_t len)
{
	struct kcp_seg *last = NULL;
	uint32_t topped = 0, n;
	size_t rest = len, nsegs;
	struct list segs;
	int err;

	if (!len || !kcp_writable(k))
		return 0;
	if (len > INT_MAX)
		return -EMSGSIZE;
	if (k->stream && !list_empty(&k->snd_queue)) {
		last = seg_of(k->snd_queue.prev);
		topped = (uint32_t)MIN(rest, (size_t)(k->mss - MIN(last->len, k->mss)));
		rest -= topped;
	}
	nsegs = (rest + k->mss - 1) / k->mss;
	if (!k->stream && nsegs > KCP_FRAG_MAX)
		return -EMSGSIZE;
	n = (uint32_t)nsegs;
	list_init(&segs);
	err = segs_make(k, &segs, buf + topped, rest, n);
	if (err)
		return err;
	if (topped) {
		memcpy(last->data + last->len, buf, topped);
		last->len += topped;
	}
	segs_queue(k, &segs, n);
	return (int)len;
}

bool kcp_writable(const struct kcp *k)
{
	return kcp_waitsnd(k) < MIN(k->snd_wnd, k->rmt_wnd);
}

uint32_t kcp_waitsnd(const struct kcp *k)
{
	return k->nsnd_queue + (k->snd_nxt - k->snd_una);
}

/* ---- receive (§1.4, §1.10) ---- */

static void rcv_queue_pop(struct kcp *k)
{
	struct kcp_seg *s = seg_of(k->rcv_queue.next);

	list_del(&s->node);
	k->nrcv_queue--;
	seg_put(k->pool, s);
}

static int recv_stream(struct kcp *k, uint8_t *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap && !list_empty(&k->rcv_queue)) {
		struct kcp_seg *s = seg_of(k->rcv_queue.next);
		size_t take = MIN((size_t)(s->len - k->rcv_off), cap - n);

		memcpy(buf + n, s->data + k->rcv_off, take);
		n += take;
		k->rcv_off += (uint32_t)take;
		k->rcv_bytes -= take;
		if (k->rcv_off == s->len) {
			k->rcv_off = 0;
			rcv_queue_pop(k);
		}
	}
	return (int)n;
}

/* The size of the whole message at the head of rcv_queue, or -EAGAIN (kcp-go PeekSize). */
static int peek_message(const struct kcp *k)
{
	const struct list *pos;
	const struct kcp_seg *head;
	size_t size = 0;

	if (list_empty(&k->rcv_queue))
		return -EAGAIN;
	head = seg_of(k->rcv_queue.next);
	if (head->frg == 0)
		return (int)head->len;
	if (k->nrcv_queue < (uint32_t)head->frg + 1)
		return -EAGAIN;
	for (pos = k->rcv_queue.next; pos != &k->rcv_queue; pos = pos->next) {
		const struct kcp_seg *s = seg_of((struct list *)pos);

		size += s->len;
		if (s->frg == 0)
			break;
	}
	return (int)size;
}

static int recv_message(struct kcp *k, uint8_t *buf, size_t cap)
{
	int size = peek_message(k);
	size_t n = 0;

	if (size < 0)
		return size;
	if ((size_t)size > cap)
		return -EMSGSIZE;
	while (!list_empty(&k->rcv_queue)) {
		struct kcp_seg *s = seg_of(k->rcv_queue.next);
		uint8_t frg = s->frg;

		memcpy(buf + n, s->data, s->len);
		n += s->len;
		k->rcv_bytes -= s->len;
		rcv_queue_pop(k);
		if (frg == 0)
			break;
	}
	return (int)n;
}

int kcp_recv(struct kcp *k, uint8_t *buf, size_t cap)
{
	bool was_full = k->nrcv_queue >= k->rcv_wnd;
	int n;

	cap = MIN(cap, (size_t)INT_MAX);
	n = k->stream ? recv_stream(k, buf, cap) : recv_message(k, buf, cap);
	rcv_buf_to_queue(k);
	if (was_full && k->nrcv_queue < k->rcv_wnd)
		k->probe |= KCP_ASK_TELL;
	return n;
}

size_t kcp_readable(const struct kcp *k)
{
	int size;

	if (k->stream)
		return k->rcv_bytes;
	size = peek_message(k);
	return size > 0 ? (size_t)size : 0;
}

/* ---- interval clock (§1.11) ---- */

static bool resend_due(const struct kcp *k, uint32_t now)
{
	return k->resend_pending && diff32(now, k->resend_min) >= 0;
}

/* Rate control holds queued segments that the windows would let go: ms until the pacing
 * budget lets the next one leave (0 = now), or -1 when nothing waits on pacing. */
static int32_t pace_wait(const struct kcp *k, uint32_t now)
{
	if (!k->rate_on || list_empty(&k->snd_queue) ||
	    diff32(k->snd_nxt, k->snd_una + MIN(k->snd_wnd, k->rmt_wnd)) >= 0 ||
	    k->inflight >= kcp_rate_cwnd(&k->rate))
		return -1;
	return (int32_t)kcp_rate_wait_ms(&k->rate, now);
}

void kcp_update(struct kcp *k, uint32_t now)
{
	int32_t slap;

	if (!k->updated) {
		k->updated = true;
		k->ts_flush = now;
	}
	slap = diff32(now, k->ts_flush);
	if (slap >= KCP_RESYNC_MS || slap < -KCP_RESYNC_MS) {
		k->ts_flush = now;
		slap = 0;
	}
	if (slap >= 0) {
		k->ts_flush += k->interval;
		if (diff32(now, k->ts_flush) >= 0)
			k->ts_flush = now + k->interval;
		flush(k, now, false);
	} else if (resend_due(k, now) || pace_wait(k, now) == 0) {
		flush(k, now, false);
	}
	/*
	 * App-limited: on the clock (not right after input, before the application had its turn)
	 * nothing waits to be sent although window and rate would let it go, so rate samples
	 * from now on measure the application, not the path.
	 */
	if (k->rate_on && list_empty(&k->snd_queue) && k->inflight < kcp_rate_cwnd(&k->rate) &&
	    diff32(k->snd_nxt, k->snd_una + MIN(k->snd_wnd, k->rmt_wnd)) < 0)
		kcp_rate_app_limited(&k->rate, k->inflight);
}

uint32_t kcp_check(const struct kcp *k, uint32_t now)
{
	int32_t slap, wait, pace = pace_wait(k, now);

	if (!k->updated)
		return now;
	slap = diff32(now, k->ts_flush);
	if (slap >= 0 || slap < -KCP_RESYNC_MS || resend_due(k, now) || pace == 0)
		return now;
	wait = -slap;
	if (k->resend_pending)
		wait = MIN(wait, diff32(k->resend_min, now));
	if (pace > 0)
		wait = MIN(wait, pace);
	wait = MIN(wait, (int32_t)k->interval);
	return now + (uint32_t)wait;
}

/* ---- state ---- */

bool kcp_is_dead(const struct kcp *k, uint32_t *sn)
{
	if (k->dead && sn)
		*sn = k->dead_sn;
	return k->dead;
}

const struct kcp_stats *kcp_stats(const struct kcp *k)
{
	return &k->stats;
}

uint64_t kcp_rate_estimate(const struct kcp *k)
{
	return k->rate_on ? kcp_rate_bw(&k->rate) : 0;
}

int32_t kcp_srtt(const struct kcp *k)
{
	return k->rx_srtt;
}

int32_t kcp_rto(const struct kcp *k)
{
	return k->rx_rto;
}

void kcp_inspect(const struct kcp *k, struct kcp_state *st)
{
	st->snd_una = k->snd_una;
	st->snd_nxt = k->snd_nxt;
	st->rcv_nxt = k->rcv_nxt;
	st->rmt_wnd = k->rmt_wnd;
	st->cwnd = k->cwnd;
	st->ssthresh = k->ssthresh;
	st->incr = k->incr;
	st->snd_queue = k->nsnd_queue;
	st->snd_buf = k->snd_nxt - k->snd_una;
	st->rcv_buf = k->nrcv_buf;
	st->rcv_queue = k->nrcv_queue;
	st->acks = k->nacks;
	st->ts_flush = k->ts_flush;
	st->ts_probe = k->ts_probe;
	st->probe_wait = k->probe_wait;
	st->probe = k->probe;
	st->srtt = k->rx_srtt;
	st->rttvar = k->rx_rttvar;
	st->rto = k->rx_rto;
	st->inflight = k->inflight;
	st->rate_cwnd = st->min_rtt = st->rate_mode = 0;
	st->rate_bw = st->pacing_bps = 0;
	if (k->rate_on) {
		st->rate_cwnd = kcp_rate_cwnd(&k->rate);
		st->rate_bw = kcp_rate_bw(&k->rate);
		st->pacing_bps = k->rate.pacing_bps;
		st->min_rtt = k->rate.min_rtt_ms;
		st->rate_mode = k->rate.mode;
	}
}

int kcp_test_set_sn(struct kcp *k, uint32_t snd_nxt, uint32_t rcv_nxt)
{
	if (k->nsnd_queue || k->snd_una != k->snd_nxt || k->nrcv_buf || k->nrcv_queue || k->nacks)
		return -EBUSY;
	k->snd_una = k->snd_nxt = snd_nxt;
	k->rcv_nxt = rcv_nxt;
	return 0;
}
