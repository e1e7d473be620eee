/*
 * Delivery-rate congestion control and pacing for KCP; see kcp_rate.h for the why and the
 * states. The rate sample follows the delivery-rate estimation draft (draft-cheng-iccrg-
 * delivery-rate-estimation): each transmission remembers how much had been delivered and
 * when, so the ACK of the newest segment in a batch yields delivered bytes over the longer
 * of the send and ACK intervals.
 */
#include "proto/kcp_rate.h"

#include <string.h>

#define GAIN_UNIT 256
#define GAIN_HIGH 739			/* 2.885 = 2/ln 2: doubles the rate every round */
#define GAIN_DRAIN 89			/* 1/2.885 */
#define GAIN_CWND 512			/* 2 BDP in flight at most in PROBE_BW */
#define BW_WINDOW_ROUNDS 10
#define MIN_RTT_WINDOW_MS 10000
#define PROBE_RTT_MS 200
#define FULL_BW_ROUNDS 3		/* rounds without 25 % growth: the pipe is full */
#define PACE_BURST_MS 2			/* budget kept while idle or between late wake-ups */
#define CWND_MAX (1u << 20)
#define LOSSY_ROUND_SEGS 8
#define SAMPLE_MIN_MS 10		/* shorter rate samples come from the checkpoint */

static const uint16_t cycle_gain[8] = { 320, 192, 256, 256, 256, 256, 256, 256 };

static inline int32_t diff32(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

void kcp_rate_init(struct kcp_rate *r, uint32_t seg_bytes, uint32_t ack_delay_ms, uint32_t init_cwnd)
{
	memset(r, 0, sizeof(*r));
	r->seg_bytes = seg_bytes ? seg_bytes : 1;
	r->ack_delay_ms = ack_delay_ms;
	r->init_cwnd = init_cwnd > KCP_RATE_MIN_CWND ? init_cwnd : KCP_RATE_MIN_CWND;
	r->cwnd = r->init_cwnd;
	r->mode = KCP_RATE_STARTUP;
}

uint64_t kcp_rate_bw(const struct kcp_rate *r)
{
	return r->bw[0].bps;
}

void kcp_rate_sent(struct kcp_rate *r, struct kcp_rate_tx *tx, uint32_t now, uint32_t inflight_segs)
{
	/* after an idle spell the next interval starts now, not at the last delivery */
	if (!inflight_segs) {
		/* the checkpoint only after a real pause: on a short path the pipe empties
		 * every round trip */
		if (diff32(now, r->delivered_ms) >= SAMPLE_MIN_MS) {
			r->cp_ms = now;
			r->cp_delivered = r->delivered;
		}
		r->first_sent_ms = r->delivered_ms = now;
	}
	tx->delivered = r->delivered;
	tx->delivered_ms = r->delivered_ms;
	tx->first_sent_ms = r->first_sent_ms;
	tx->sent_ms = now;
	tx->app_limited = r->app_limited_until != 0;
}

void kcp_rate_delivered(struct kcp_rate *r, const struct kcp_rate_tx *tx, uint32_t now, uint32_t bytes,
			bool sample)
{
	r->delivered += bytes;
	r->delivered_ms = now;
	r->acked_bytes += bytes;
	if (r->app_limited_until && r->delivered > r->app_limited_until)
		r->app_limited_until = 0;
	/* the newest transmission acknowledged in this batch carries the sample */
	if (sample && (!r->have_sample || tx->delivered >= r->newest.delivered)) {
		r->newest = *tx;
		r->have_sample = true;
		r->first_sent_ms = tx->sent_ms;
	}
}

void kcp_rate_lost(struct kcp_rate *r, uint32_t bytes)
{
	r->round_lost += bytes;
	r->round_lost_segs++;
}

void kcp_rate_app_limited(struct kcp_rate *r, uint32_t inflight_segs)
{
	r->app_limited_until = r->delivered + (uint64_t)inflight_segs * r->seg_bytes;
	if (!r->app_limited_until)
		r->app_limited_until = 1;
}

/* Windowed maximum over BW_WINDOW_ROUNDS, kept as the best, second and third best samples of
 * successive sub-windows (Kathleen Nichols' filter) so that an old maximum ages out. */
static void bw_filter(struct kcp_rate *r, uint64_t bps)
{
	uint64_t t = r->round;
	int i;

	if (bps >= r->bw[0].bps || t - r->bw[2].round > BW_WINDOW_ROUNDS) {
		for (i = 0; i < 3; i++) {
			r->bw[i].bps = bps;
			r->bw[i].round = t;
		}
		return;
	}
	if (bps >= r->bw[1].bps) {
		r->bw[1].bps = r->bw[2].bps = bps;
		r->bw[1].round = r->bw[2].round = t;
	} else if (bps >= r->bw[2].bps) {
		r->bw[2].bps = bps;
		r->bw[2].round = t;
	}
	if (t - r->bw[0].round > BW_WINDOW_ROUNDS) {
		r->bw[0] = r->bw[1];
		r->bw[1] = r->bw[2];
		r->bw[2].bps = bps;
		r->bw[2].round = t;
		if (t - r->bw[0].round > BW_WINDOW_ROUNDS) {
			r->bw[0] = r->bw[1];
			r->bw[1] = r->bw[2];
		}
	} else if (r->bw[1].round == r->bw[0].round && t - r->bw[1].round > BW_WINDOW_ROUNDS / 4) {
		r->bw[1].bps = r->bw[2].bps = bps;
		r->bw[1].round = r->bw[2].round = t;
	} else if (r->bw[2].round == r->bw[1].round && t - r->bw[2].round > BW_WINDOW_ROUNDS / 2) {
		r->bw[2].bps = bps;
		r->bw[2].round = t;
	}
}

/* Takes the batch's rate sample (none when too short to trust). */
static void take_sample(struct kcp_rate *r, uint32_t now)
{
	const struct kcp_rate_tx *tx = &r->newest;
	int32_t snd, ack, interval;
	uint64_t bps;

	r->round_start = false;
	if (!r->have_sample)
		return;
	if (tx->delivered >= r->next_round_delivered) {
		r->next_round_delivered = r->delivered;
		r->round++;
		r->round_start = true;
	}
	snd = diff32(tx->sent_ms, tx->first_sent_ms);
	ack = diff32(now, tx->delivered_ms);
	interval = snd > ack ? snd : ack;
	/* shorter than a round trip: ACK compression, not the path's rate */
	if (interval <= 0 || (r->min_rtt_set && (uint32_t)interval < r->min_rtt_ms))
		return;
	if (interval >= SAMPLE_MIN_MS) {
		bps = (r->delivered - tx->delivered) * 1000 / (uint32_t)interval;
	} else {
		/* a round trip of a few ms is too short for a ms clock (±1 ms is ±50 % at
		 * 2 ms): count what was delivered since a checkpoint SAMPLE_MIN_MS old */
		int32_t span = diff32(now, r->cp_ms);

		if (span < SAMPLE_MIN_MS)
			return;
		bps = (r->delivered - r->cp_delivered) * 1000 / (uint32_t)span;
		r->cp_ms = now;
		r->cp_delivered = r->delivered;
	}
	if (!tx->app_limited || bps >= r->bw[0].bps)
		bw_filter(r, bps);
	if (!tx->app_limited)
		r->round_sampled = true;
}

/* Bytes in flight that keep the pipe full: gain × rate × min RTT, plus the peer's ACK delay. */
static uint32_t target_cwnd(const struct kcp_rate *r, uint32_t gain)
{
	uint64_t bw = r->bw[0].bps, rtt = r->min_rtt_ms ? r->min_rtt_ms : 1, segs;

	if (!bw || !r->min_rtt_set)
		return r->init_cwnd;
	segs = (bw * rtt * gain / GAIN_UNIT + bw * r->ack_delay_ms) / 1000 / r->seg_bytes + 3;
	return segs > CWND_MAX ? CWND_MAX : (uint32_t)segs;
}

static void enter_probe_bw(struct kcp_rate *r, uint32_t now)
{
	r->mode = KCP_RATE_PROBE_BW;
	r->cycle = 2;		/* cruise first: the queue was just drained */
	r->cycle_stamp = now;
}

static void update_min_rtt(struct kcp_rate *r, uint32_t now, int32_t rtt_ms, uint32_t inflight)
{
	bool expired = r->min_rtt_set && diff32(now, r->min_rtt_stamp) > MIN_RTT_WINDOW_MS;

	if (rtt_ms > 0 && (uint32_t)rtt_ms > r->round_max_rtt)
		r->round_max_rtt = (uint32_t)rtt_ms;
	if (rtt_ms >= 0 && (!r->min_rtt_set || (uint32_t)rtt_ms <= r->min_rtt_ms || expired)) {
		r->min_rtt_ms = (uint32_t)rtt_ms;
		r->min_rtt_stamp = now;
		r->min_rtt_set = true;
	}
	if (expired && r->mode != KCP_RATE_PROBE_RTT) {
		r->mode = KCP_RATE_PROBE_RTT;
		r->probe_rtt_timing = false;
	}
	if (r->mode != KCP_RATE_PROBE_RTT)
		return;
	if (!r->probe_rtt_timing) {
		if (inflight <= KCP_RATE_MIN_CWND) {
			r->probe_rtt_timing = true;
			r->probe_rtt_round_done = false;
			r->probe_rtt_done_ms = now + PROBE_RTT_MS;
			r->next_round_delivered = r->delivered;
		}
		return;
	}
	if (r->round_start)
		r->probe_rtt_round_done = true;
	if (r->probe_rtt_round_done && diff32(now, r->probe_rtt_done_ms) >= 0) {
		r->min_rtt_stamp = now;
		if (r->filled)
			enter_probe_bw(r, now);
		else
			r->mode = KCP_RATE_STARTUP;
	}
}

/*
 * A round that overflowed the bottleneck's queue: more than 2 % resent (at least 8
 * segments; BBRv2's rule) while the RTT rose by a fifth over the minimum (beyond the peer's
 * ACK delay). KCP links often lose packets at random; without a queue there is no rise, and
 * STARTUP goes on.
 */
static bool round_overflowed(struct kcp_rate *r)
{
	uint64_t delivered = r->delivered - r->round_delivered_at;
	bool lossy = r->round_lost_segs >= LOSSY_ROUND_SEGS && r->round_lost * 50 > delivered;
	bool queued = r->min_rtt_set &&
		      r->round_max_rtt >= r->min_rtt_ms + r->min_rtt_ms / 5 + r->ack_delay_ms;

	r->round_lost = r->round_lost_segs = 0;
	r->round_delivered_at = r->delivered;
	r->round_max_rtt = 0;
	return lossy && queued;
}

static void update_mode(struct kcp_rate *r, uint32_t now, uint32_t inflight)
{
	if (r->round_start && round_overflowed(r) && r->mode == KCP_RATE_STARTUP && r->bw[0].bps)
		r->filled = true;
	/* a round counts towards "no more growth" only if it measured the path */
	if (!r->filled && r->round_start && r->round_sampled) {
		r->round_sampled = false;
		if (r->bw[0].bps >= r->full_bw * 5 / 4) {
			r->full_bw = r->bw[0].bps;
			r->full_bw_rounds = 0;
		} else if (++r->full_bw_rounds >= FULL_BW_ROUNDS) {
			r->filled = true;
		}
	}
	if (r->mode == KCP_RATE_STARTUP && r->filled)
		r->mode = KCP_RATE_DRAIN;
	if (r->mode == KCP_RATE_DRAIN && inflight <= target_cwnd(r, GAIN_UNIT))
		enter_probe_bw(r, now);
	if (r->mode == KCP_RATE_PROBE_BW) {
		/* a phase lasts a round trip, and at least two rate samples long: shorter
		 * probes would be averaged away */
		uint32_t phase = r->min_rtt_ms > 2 * SAMPLE_MIN_MS ? r->min_rtt_ms : 2 * SAMPLE_MIN_MS;
		bool drained = cycle_gain[r->cycle] < GAIN_UNIT && inflight <= target_cwnd(r, GAIN_UNIT);

		if (diff32(now, r->cycle_stamp) > (int32_t)phase || drained) {
			r->cycle = (r->cycle + 1) % 8;
			r->cycle_stamp = now;
		}
	}
}

static void set_outputs(struct kcp_rate *r, uint32_t acked_segs)
{
	uint32_t pgain = GAIN_HIGH, cgain = GAIN_HIGH, target;
	uint64_t bw = r->bw[0].bps;

	switch (r->mode) {
	case KCP_RATE_STARTUP: break;
	case KCP_RATE_DRAIN: pgain = GAIN_DRAIN; break;
	case KCP_RATE_PROBE_BW: pgain = cycle_gain[r->cycle]; cgain = GAIN_CWND; break;
	case KCP_RATE_PROBE_RTT: pgain = GAIN_UNIT; cgain = GAIN_CWND; break;
	}
	/* before the first rate sample: the initial window per round trip */
	if (!bw && r->min_rtt_set)
		bw = (uint64_t)r->init_cwnd * r->seg_bytes * 1000 / (r->min_rtt_ms ? r->min_rtt_ms : 1);
	if (bw)
		r->pacing_bps = bw * pgain / GAIN_UNIT * 99 / 100;

	target = target_cwnd(r, cgain);
	if (r->filled) {
		r->cwnd += acked_segs;
		if (r->cwnd > target)
			r->cwnd = target;
	} else if (!r->bw[0].bps || r->cwnd < target || r->delivered < (uint64_t)r->init_cwnd * r->seg_bytes) {
		r->cwnd += acked_segs;
	}
	if (r->cwnd < KCP_RATE_MIN_CWND)
		r->cwnd = KCP_RATE_MIN_CWND;
	if (r->cwnd > CWND_MAX)
		r->cwnd = CWND_MAX;
}

void kcp_rate_ack_end(struct kcp_rate *r, uint32_t now, int32_t rtt_ms, uint32_t inflight_segs)
{
	uint32_t acked_segs = (uint32_t)((r->acked_bytes + r->seg_bytes - 1) / r->seg_bytes);
	take_sample(r, now);
	update_min_rtt(r, now, rtt_ms, inflight_segs);
	update_mode(r, now, inflight_segs);
	set_outputs(r, acked_segs);
	r->have_sample = false;
	r->acked_bytes = 0;
}

/* ---- pacing: a token bucket refilled at pacing_bps ---- */

static int64_t budget_cap(const struct kcp_rate *r)
{
	int64_t cap = (int64_t)(r->pacing_bps * PACE_BURST_MS / 1000);

	return cap > 2 * (int64_t)r->seg_bytes ? cap : 2 * (int64_t)r->seg_bytes;
}

static int64_t tokens_at(const struct kcp_rate *r, uint32_t now)
{
	int32_t dt = diff32(now, r->tokens_ms);
	int64_t t = r->tokens, cap = budget_cap(r);

	if (!r->tokens_set)
		return cap;
	if (dt > 0)
		t += (int64_t)(r->pacing_bps * (uint32_t)dt / 1000);
	return t > cap ? cap : t;
}

int64_t kcp_rate_budget(struct kcp_rate *r, uint32_t now)
{
	if (!r->pacing_bps)
		return INT64_MAX;
	r->tokens = tokens_at(r, now);
	r->tokens_ms = now;
	r->tokens_set = true;
	return r->tokens;
}

void kcp_rate_charge(struct kcp_rate *r, uint32_t bytes)
{
	if (r->pacing_bps && r->tokens_set)
		r->tokens -= bytes;
}

uint32_t kcp_rate_wait_ms(const struct kcp_rate *r, uint32_t now)
{
	int64_t t;
	uint64_t ms;

	if (!r->pacing_bps)
		return 0;
	t = tokens_at(r, now);
	if (t > 0)
		return 0;
	ms = ((uint64_t)(1 - t) * 1000 + r->pacing_bps - 1) / r->pacing_bps;
	return ms > 1000 ? 1000 : (uint32_t)ms;
}
