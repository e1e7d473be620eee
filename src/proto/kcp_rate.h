/*
 * Delivery-rate congestion control and pacing for KCP (spec/kcp.md §1.9: "a pacing/BBR-style
 * controller is a later, ferry↔ferry-only option"). Sender-side only: nothing on the wire
 * changes, so either peer may use it alone.
 *
 * Why: kcptun's presets switch congestion control off (nc = 1), so a session sends its
 * whole window (up to 1024 segments) at once. Through a bottleneck with a short queue most
 * of that burst is tail-dropped and sent again. This controller follows BBR (v1) in outline:
 * it measures the delivery rate and the minimum round-trip time, sends at that rate (paced
 * by a token bucket) and keeps about two bandwidth-delay products in flight at most.
 * Random loss does not slow it down, which is what KCP is used for.
 *
 * States: STARTUP (pace at 2.89× the measured rate until it stops growing by 25 % for three
 * rounds), DRAIN (pace below the rate until the queue built in STARTUP is gone), PROBE_BW
 * (pace at 1.25×, 0.75×, then 1× for six rounds, over and over), PROBE_RTT (every 10 s
 * without a new minimum RTT: four segments in flight for 200 ms and a round, so the queue
 * empties and the minimum can be measured again).
 *
 * Pure: milliseconds in (u32, wrap-safe), a window and a send budget out. Bytes are counted
 * as they occupy the wire (segment header included); the window is in segments.
 */
#ifndef FERRY_PROTO_KCP_RATE_H
#define FERRY_PROTO_KCP_RATE_H
#include <stdbool.h>
#include <stdint.h>

/* What a segment remembers of the sender's state when it was (last) sent. */
struct kcp_rate_tx {
	uint64_t delivered;		/* bytes delivered before it was sent */
	uint32_t delivered_ms;		/* time of that last delivery */
	uint32_t first_sent_ms;		/* send time of the segment whose delivery started the interval */
	uint32_t sent_ms;
	bool app_limited;		/* the sender had nothing more to send then */
};

#define KCP_RATE_MIN_CWND 4		/* segments; also the window while probing the RTT */

enum kcp_rate_mode { KCP_RATE_STARTUP, KCP_RATE_DRAIN, KCP_RATE_PROBE_BW, KCP_RATE_PROBE_RTT };

struct kcp_rate {
	uint32_t seg_bytes;		/* a full segment on the wire, for windows in segments */
	uint32_t ack_delay_ms;		/* how long the peer may hold an ACK (its flush interval) */
	uint32_t init_cwnd;

	/* delivery accounting */
	uint64_t delivered;
	uint32_t delivered_ms, first_sent_ms;
	uint64_t app_limited_until;	/* 0 = not app-limited */
	uint32_t cp_ms;			/* checkpoint for rate samples on short round trips */
	uint64_t cp_delivered;

	/* deliveries of the ACK batch being processed */
	bool have_sample;
	uint64_t acked_bytes;
	struct kcp_rate_tx newest;

	/* model: max delivery rate over the last 10 rounds, min RTT over the last 10 s */
	struct {
		uint64_t bps;
		uint64_t round;
	} bw[3];
	uint64_t round, next_round_delivered;
	bool round_start;
	uint32_t min_rtt_ms, min_rtt_stamp;
	bool min_rtt_set;

	/* state machine */
	enum kcp_rate_mode mode;
	uint32_t cycle, cycle_stamp;
	uint64_t full_bw;
	uint32_t full_bw_rounds;
	bool round_sampled;		/* this round gave a rate sample of the path */
	bool filled;
	uint64_t round_lost, round_lost_segs;	/* resent in the current round */
	uint64_t round_delivered_at;		/* r->delivered when the round started */
	uint32_t round_max_rtt;			/* largest RTT sample of the round (ms) */
	uint32_t probe_rtt_done_ms;
	bool probe_rtt_timing, probe_rtt_round_done;

	/* outputs */
	uint32_t cwnd;			/* segments */
	uint64_t pacing_bps;		/* bytes per second; 0 = not paced yet */
	int64_t tokens;			/* bytes that may leave now (negative: owed) */
	uint32_t tokens_ms;
	bool tokens_set;
};

/* seg_bytes: bytes a full segment takes (mss + header); ack_delay_ms: the peer's interval. */
void kcp_rate_init(struct kcp_rate *r, uint32_t seg_bytes, uint32_t ack_delay_ms, uint32_t init_cwnd);

/* A segment goes out (first time or again); inflight_segs counts the ones before it. */
void kcp_rate_sent(struct kcp_rate *r, struct kcp_rate_tx *tx, uint32_t now, uint32_t inflight_segs);
/* A segment was acknowledged (by its ACK or by una), with the snapshot of its last send.
 * sample = false when the acknowledgment may be for an earlier copy (a spurious resend):
 * the bytes count as delivered but the snapshot would give a rate far too high. */
void kcp_rate_delivered(struct kcp_rate *r, const struct kcp_rate_tx *tx, uint32_t now, uint32_t bytes,
			bool sample);
/* After a datagram's ACKs: takes the rate sample, the RTT sample (< 0 = none) and moves the
 * state machine. inflight_segs: segments sent and not acknowledged. */
void kcp_rate_ack_end(struct kcp_rate *r, uint32_t now, int32_t rtt_ms, uint32_t inflight_segs);
/* A segment is sent again (it was lost, or its ACK was). */
void kcp_rate_lost(struct kcp_rate *r, uint32_t bytes);
/* The sender ran out of data with room left in the window. */
void kcp_rate_app_limited(struct kcp_rate *r, uint32_t inflight_segs);

/* Segments allowed in flight. */
static inline uint32_t kcp_rate_cwnd(const struct kcp_rate *r)
{
	return r->mode == KCP_RATE_PROBE_RTT && r->cwnd > KCP_RATE_MIN_CWND ? KCP_RATE_MIN_CWND : r->cwnd;
}
/* Refills the pacing budget up to now; the bytes that may leave (INT64_MAX: not paced). A
 * segment may leave while this is positive. */
int64_t kcp_rate_budget(struct kcp_rate *r, uint32_t now);
/* Takes bytes from the budget (every transmission, retransmissions too). */
void kcp_rate_charge(struct kcp_rate *r, uint32_t bytes);
/* ms until the budget allows a segment again (0 = now). */
uint32_t kcp_rate_wait_ms(const struct kcp_rate *r, uint32_t now);

/* Estimated bottleneck rate (bytes/s, 0 = none yet) and minimum RTT (ms), for stats. */
uint64_t kcp_rate_bw(const struct kcp_rate *r);

#endif
