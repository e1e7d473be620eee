/*
 * proto/kcp_rate: the delivery-rate controller on its own, driven by a fluid model of one
 * bottleneck (RATE bytes per ms, a FIFO queue, a fixed propagation delay) so that every
 * number below can be worked out by hand. test_kcp.c runs it inside KCP on the simulator.
 */
#include <stdint.h>
#include <string.h>

#include "proto/kcp_rate.h"
#include "test.h"

#define SEG 1000u		/* bytes per segment in these tests */
#define PIPE_MAX 8192
#define ACK_EVERY 10		/* ms: the receiver's flush interval, also the controller's ack_delay */

struct inflight {
	struct kcp_rate_tx tx;
	uint32_t arrive;	/* when its ACK is back */
	bool lost;
};

/* A path: bottleneck rate (bytes/ms), queue limit (bytes), round-trip propagation (ms). */
struct path {
	uint32_t rate, queue_max, rtt;
	uint64_t backlog;		/* bytes queued at the bottleneck as of backlog_at */
	uint32_t backlog_at;
	struct inflight seg[PIPE_MAX];
	uint32_t head, tail;
	uint32_t lose_every;		/* random-like loss: every n-th segment (0 = none) */
	uint32_t sent, drops;
	uint64_t acked_bytes;
};

static struct kcp_rate r;
static struct path P;

static uint32_t pipe_n(void)
{
	return P.tail - P.head;
}

/* A segment (new or resent) leaves the sender at now: it joins the bottleneck's queue, or
 * is dropped when the queue is full (or by the loss pattern). */
static void path_send(uint32_t now, struct inflight *s)
{
	uint64_t drained = (uint64_t)(now - P.backlog_at) * P.rate;
	bool full;

	P.backlog = P.backlog > drained ? P.backlog - drained : 0;
	P.backlog_at = now;
	kcp_rate_sent(&r, &s->tx, now, pipe_n());
	kcp_rate_charge(&r, SEG);
	P.sent++;
	full = P.backlog + SEG > P.queue_max;
	P.drops += full;
	s->lost = full || (P.lose_every && P.sent % P.lose_every == 0);
	if (!full)
		P.backlog += SEG;
	/* leaves the bottleneck once the queue ahead of it is sent; a loss is noticed (as
	 * KCP's fast retransmit would) about one round trip later */
	s->arrive = now + (uint32_t)((P.backlog + P.rate - 1) / P.rate) + P.rtt;
	/* the receiver sends its ACKs every ACK_EVERY ms (KCP's flush interval) */
	s->arrive += (ACK_EVERY - s->arrive % ACK_EVERY) % ACK_EVERY;
	P.tail++;
}

/* ACKs due at now; a lost segment is resent at once (to the tail of the pipe). Returns the
 * RTT of the last one acknowledged, or -1. */
static int32_t path_ack(uint32_t now)
{
	int32_t rtt = -1;

	while (P.head != P.tail && P.seg[P.head % PIPE_MAX].arrive <= now) {
		struct inflight *s = &P.seg[P.head % PIPE_MAX];

		P.head++;
		if (s->lost) {
			kcp_rate_lost(&r, SEG);
			P.seg[P.tail % PIPE_MAX] = *s;
			path_send(now, &P.seg[P.tail % PIPE_MAX]);
			continue;
		}
		kcp_rate_delivered(&r, &s->tx, now, SEG, true);
		rtt = (int32_t)(now - s->tx.sent_ms);
		P.acked_bytes += SEG;
	}
	if (rtt >= 0 || r.have_sample)
		kcp_rate_ack_end(&r, now, rtt, pipe_n());
	return rtt;
}

/* Runs the sender with unlimited data from `from` to `to` (ms). */
static void run(uint32_t from, uint32_t to, bool app_limited_half)
{
	for (uint32_t t = from; t < to; t++) {
		int64_t budget;

		path_ack(t);
		if (app_limited_half && (t / 1000) % 2) {
			if (pipe_n() < kcp_rate_cwnd(&r))
				kcp_rate_app_limited(&r, pipe_n());
			continue;
		}
		budget = kcp_rate_budget(&r, t);
		while (pipe_n() < kcp_rate_cwnd(&r) && budget > 0 && pipe_n() < PIPE_MAX - 1) {
			path_send(t, &P.seg[P.tail % PIPE_MAX]);
			budget -= SEG;
		}
	}
}

static void setup(uint32_t rate, uint32_t queue_max, uint32_t rtt)
{
	memset(&P, 0, sizeof(P));
	P.rate = rate;
	P.queue_max = queue_max;
	P.rtt = rtt;
	kcp_rate_init(&r, SEG, ACK_EVERY, 32);
}

/* 10 MB/s, 40 ms: STARTUP finds the rate within a few percent and leaves for PROBE_BW. */
static void test_rate_finds_bottleneck_and_settles(void)
{
	uint64_t before;

	setup(10000, 200000, 40);
	run(0, 3000, false);
	CHECK_EQ(r.mode, KCP_RATE_PROBE_BW);
	CHECK(r.filled);
	CHECK(kcp_rate_bw(&r) >= 9500000 && kcp_rate_bw(&r) <= 10500000);
	CHECK(r.min_rtt_ms >= 41 && r.min_rtt_ms <= 43);	/* + 1 ms to send + the ACK's wait */
	/* steady state: the link stays busy, the queue short */
	before = P.acked_bytes;
	P.drops = P.sent = 0;
	run(3000, 5000, false);
	CHECK(P.acked_bytes - before >= 2000 * 10000 * 95 / 100);
	CHECK(P.drops * 200 < P.sent);		/* the 1.25× probe may tip a few over */
	/* about 2 BDP + the ACK delay allowance: 2*400 + 100 + 3 segments */
	CHECK(kcp_rate_cwnd(&r) >= 850 && kcp_rate_cwnd(&r) <= 950);
}

/* The pacing budget refills at the pacing rate and keeps at most 2 ms of it. */
static void test_rate_budget_refills_and_caps(void)
{
	int64_t b;

	setup(10000, 200000, 40);
	run(0, 3000, false);
	CHECK(r.pacing_bps > 0);
	b = kcp_rate_budget(&r, 3000);
	kcp_rate_charge(&r, (uint32_t)b + 5 * SEG);	/* owe five segments */
	CHECK(kcp_rate_budget(&r, 3000) <= -5 * (int64_t)SEG);
	CHECK(kcp_rate_wait_ms(&r, 3000) >= 1);
	/* 100 ms later the budget is full again, capped at 2 ms of the pacing rate */
	b = kcp_rate_budget(&r, 3100);
	CHECK_EQ(b, (int64_t)(r.pacing_bps * 2 / 1000));
	CHECK_EQ(kcp_rate_wait_ms(&r, 3100), 0);
}

/* Every 20th segment lost at random, no queue: STARTUP does not take that for a full pipe. */
static void test_rate_random_loss_keeps_startup_going(void)
{
	setup(10000, 4000000, 40);
	P.lose_every = 20;
	run(0, 3000, false);
	CHECK(kcp_rate_bw(&r) >= 9000000);
	CHECK_EQ(r.mode, KCP_RATE_PROBE_BW);
}

/* A 25 ms queue overflows in STARTUP: the loss together with the RTT rise ends STARTUP in
 * that round. A 4 ms queue cannot be told from random loss by the RTT: STARTUP runs until
 * the rate stops growing (three more rounds), and drops about three times as much. */
static void test_rate_overflow_ends_startup(void)
{
	uint32_t deep, shallow;

	setup(10000, 250000, 40);
	run(0, 3000, false);
	deep = P.drops;
	CHECK(r.filled);
	CHECK(kcp_rate_bw(&r) >= 9500000 && kcp_rate_bw(&r) <= 10500000);
	setup(10000, 40000, 40);
	run(0, 3000, false);
	shallow = P.drops;
	CHECK(r.filled);
	CHECK(kcp_rate_bw(&r) >= 9500000 && kcp_rate_bw(&r) <= 10500000);
	printf("  # startup drops: 25 ms queue %u, 4 ms queue %u\n", deep, shallow);
	CHECK(deep < 1200);
	CHECK(shallow > 2 * deep);
}

/* After 10 s without a new minimum RTT: PROBE_RTT holds 4 segments for 200 ms and a round,
 * then PROBE_BW again with the window restored. */
static void test_rate_probe_rtt_every_10_s(void)
{
	uint32_t t, stamp, min_before, seen_at = 0, left_at = 0;

	setup(10000, 400000, 40);
	run(0, 3000, false);
	/* pretend an earlier, lower minimum: no sample reaches it any more */
	min_before = r.min_rtt_ms;
	r.min_rtt_ms = 30;
	stamp = r.min_rtt_stamp;
	for (t = 3000; t < 16000 && !left_at; t++) {
		run(t, t + 1, false);
		if (!seen_at && r.mode == KCP_RATE_PROBE_RTT)
			seen_at = t;
		if (seen_at && !left_at && r.mode != KCP_RATE_PROBE_RTT)
			left_at = t;
		if (seen_at && !left_at)
			CHECK(kcp_rate_cwnd(&r) == KCP_RATE_MIN_CWND);
	}
	CHECK(seen_at >= stamp + 10000 && seen_at <= stamp + 10100);
	CHECK(left_at >= seen_at + 200 && left_at <= seen_at + 400);
	CHECK_EQ(r.mode, KCP_RATE_PROBE_BW);
	CHECK_EQ(r.min_rtt_ms, min_before);	/* measured again on the empty queue */
	CHECK(kcp_rate_cwnd(&r) > 800);
}

/* Half of the time the application has nothing to send: those samples never lower the
 * estimate, and an old maximum ages out only after 10 rounds of real samples. */
static void test_rate_app_limited_samples_do_not_lower_estimate(void)
{
	setup(10000, 200000, 40);
	run(0, 3000, false);
	run(3000, 9000, true);
	CHECK(kcp_rate_bw(&r) >= 9500000);
}

/* The bottleneck halves: within 10 rounds and some the estimate follows it down. */
static void test_rate_follows_a_slower_path(void)
{
	setup(10000, 200000, 40);
	run(0, 3000, false);
	P.rate = 5000;
	run(3000, 4500, false);
	CHECK(kcp_rate_bw(&r) <= 5500000);
	CHECK(kcp_rate_bw(&r) >= 4500000);
}

int main(void)
{
	RUN(test_rate_finds_bottleneck_and_settles);
	RUN(test_rate_budget_refills_and_caps);
	RUN(test_rate_random_loss_keeps_startup_going);
	RUN(test_rate_overflow_ends_startup);
	RUN(test_rate_probe_rtt_every_10_s);
	RUN(test_rate_app_limited_samples_do_not_lower_estimate);
	RUN(test_rate_follows_a_slower_path);
	TEST_EXIT();
}
