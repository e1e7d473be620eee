/*
 * KCP, the reliable ARQ over datagrams (spec/kcp.md §1), as a sans-I/O core: bytes and the
 * current time in, datagrams and delivered bytes out. No sockets, no clock reads; memory
 * per segment comes from a pool that keeps freed segments for reuse, so steady traffic
 * does not call malloc.
 *
 * Wire compatible with kcp-go v5.6.1 (kcptun): little-endian 24-byte segment headers,
 * several segments per datagram, kcp-go's flush order, RTO estimator, early retransmit and
 * window probing. Time is milliseconds as u32 and compared wrap-safe.
 */
#ifndef FERRY_PROTO_KCP_H
#define FERRY_PROTO_KCP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KCP_OVERHEAD 24
#define KCP_CMD_PUSH 81
#define KCP_CMD_ACK 82
#define KCP_CMD_WASK 83
#define KCP_CMD_WINS 84
#define KCP_MTU_MAX 1500

enum kcp_mode { KCP_MODE_NORMAL, KCP_MODE_FAST, KCP_MODE_FAST2, KCP_MODE_FAST3, KCP_MODE_MANUAL };

struct kcp_params {
	uint32_t mtu;		/* largest datagram handed to out(), reserved bytes included */
	uint32_t reserved;	/* headroom kept in front of every datagram for outer headers */
	uint32_t snd_wnd, rcv_wnd;	/* segments */
	uint32_t interval;	/* ms, clamped to [10, 5000] */
	int nodelay;		/* 0, 1 or 2 (§1.7, §1.6 backoff) */
	int resend;		/* fast-resend threshold, 0 = off */
	int nc;			/* 1 = congestion control off (kcp-go's §1.9 window) */
	bool rate;		/* delivery-rate control and pacing instead (kcp_rate.h); nc is ignored */
	bool stream;		/* stream mode (kcptun, ferry) vs message mode */
	bool ack_nodelay;	/* flush ACKs right after input */
	uint32_t dead_link;	/* transmissions of one segment before the link is dead */
};

/* Fills p with the §1.13 preset of mode (windows, mtu and reserved left as they are). */
void kcp_params_mode(struct kcp_params *p, enum kcp_mode m);
/* kcp-go defaults of §1.2 (mtu 1400, windows 32/32, interval 100, stream mode on). */
void kcp_params_default(struct kcp_params *p);

/* A segment pool, one per worker thread (not thread-safe). Segments hold mss bytes. */
struct kcp_pool;
struct kcp_pool *kcp_pool_new(void);
void kcp_pool_free(struct kcp_pool *pool);
/* Segments ever taken from malloc, and freed ones kept for reuse (stats, tests). */
void kcp_pool_counts(const struct kcp_pool *pool, uint64_t *mallocs, uint32_t *cached);

struct kcp;

/* Counters, read by the transport for stats lines. */
struct kcp_stats {
	uint64_t in_segs, out_segs;		/* segments parsed / written */
	uint64_t in_bytes, out_bytes;		/* KCP bytes through input / out() (no headroom) */
	uint64_t retrans;			/* every resend */
	uint64_t fast_retrans, early_retrans, lost;	/* by cause (lost = RTO expiry) */
	uint64_t dup_segs;			/* PUSH already received */
	uint64_t input_errors;			/* datagrams stopped by §1.1 validation */
	uint64_t conv_mismatch;
	/* input_errors by reason (conv_mismatch is counted on its own, not in input_errors) */
	uint64_t err_short;			/* datagram shorter than one header */
	uint64_t err_truncated;			/* a segment's len runs past the datagram */
	uint64_t err_cmd;			/* cmd not in 81..84 */
	uint64_t err_oversize;			/* PUSH longer than any datagram can carry (> 1476) */
	uint64_t trailing;			/* datagrams ending in 1..23 stray bytes (ignored) */
	uint64_t wnd_drops;			/* PUSH at or beyond rcv_nxt + rcv_wnd: no ACK */
	uint64_t nomem_drops;			/* PUSH not stored for want of a segment: no ACK */
	uint64_t ack_overflows;			/* ACK list full: ACKs flushed before the interval */
};

/*
 * Called for every datagram a flush produces. buf[0 .. reserved) is free headroom the
 * callee may write its outer headers into; the KCP segments are buf[reserved .. len).
 * len ≤ mtu. buf is only valid during the call, and the callee must not call back into
 * the same session.
 */
typedef void (*kcp_out_fn)(void *ctx, uint8_t *buf, size_t len);

/* pool may be shared by every session of one thread. Returns NULL without memory or
 * with params out of range (mtu < reserved + 50 or > KCP_MTU_MAX, a zero window). */
struct kcp *kcp_new(uint32_t conv, const struct kcp_params *p, struct kcp_pool *pool,
		    kcp_out_fn out, void *out_ctx);
void kcp_free(struct kcp *k);

uint32_t kcp_conv(const struct kcp *k);
uint32_t kcp_mss(const struct kcp *k);

/*
 * Feeds one datagram (the KCP bytes only, outer layers removed). regular = false for
 * segments recovered by FEC (no rmt_wnd update, no RTT sample). May flush (call out())
 * when the send window slid or ACKs are due with ack_nodelay, as kcp-go does.
 * Returns 0, or -EBADMSG/-EPROTO when validation stopped (segments before the error stay
 * processed), -ESTALE on a conv mismatch.
 */
int kcp_input(struct kcp *k, uint32_t now, const uint8_t *data, size_t len, bool regular);

/*
 * Appends to the send queue. kcp-go's backpressure: accepts the whole buffer when
 * kcp_writable() and nothing otherwise. Returns len, 0, or -EMSGSIZE (message mode,
 * more than 255 fragments) / -ENOMEM.
 */
int kcp_send(struct kcp *k, const uint8_t *buf, size_t len);
/* waitsnd < min(snd_wnd, rmt_wnd): the application may write. */
bool kcp_writable(const struct kcp *k);
/* Segments queued or in flight (snd_queue + snd_buf). */
uint32_t kcp_waitsnd(const struct kcp *k);

/*
 * Stream mode: copies up to cap in-order bytes, returns the count (0 when none).
 * Message mode: one whole message, -EAGAIN when none is complete, -EMSGSIZE when cap is
 * too small. Reading may reopen a full window and schedule a WINS (§1.10).
 */
int kcp_recv(struct kcp *k, uint8_t *buf, size_t cap);
/* Bytes (stream mode) ready for kcp_recv. */
size_t kcp_readable(const struct kcp *k);

/* Runs the interval clock (§1.11) and flushes when due. */
void kcp_update(struct kcp *k, uint32_t now);
/* Flushes now: ACKs, probes, new and due segments. */
void kcp_flush(struct kcp *k, uint32_t now);
/* Ends rate control (params.rate) for good: later flushes send what the windows allow at
 * once. For last words before a session closes. */
void kcp_unpace(struct kcp *k);
/* When kcp_update must next run (≥ now, ≤ now + interval). */
uint32_t kcp_check(const struct kcp *k, uint32_t now);

/* A segment was sent dead_link times (§1.12); sn of that segment in *sn if not NULL. */
bool kcp_is_dead(const struct kcp *k, uint32_t *sn);
const struct kcp_stats *kcp_stats(const struct kcp *k);
/* Rate control's bottleneck estimate in bytes/s (0: none yet, or rate control off). */
uint64_t kcp_rate_estimate(const struct kcp *k);
/* Smoothed RTT and current RTO in ms, for stats. */
int32_t kcp_srtt(const struct kcp *k);
int32_t kcp_rto(const struct kcp *k);

/* A snapshot of the §1.2 state, for stats, tests and fuzz invariants. */
struct kcp_state {
	uint32_t snd_una, snd_nxt, rcv_nxt;
	uint32_t rmt_wnd, cwnd, ssthresh, incr;
	uint32_t snd_queue, snd_buf, rcv_buf, rcv_queue, acks;	/* entries (snd_buf: snd_nxt - snd_una) */
	uint32_t ts_flush, ts_probe, probe_wait, probe;
	int32_t srtt, rttvar, rto;
	/* rate control (params.rate): window in segments, segments in flight, bottleneck
	 * estimate (bytes/s), pacing rate (bytes/s), min RTT (ms), state (enum kcp_rate_mode) */
	uint32_t rate_cwnd, inflight;
	uint64_t rate_bw, pacing_bps;
	uint32_t min_rtt, rate_mode;
};
void kcp_inspect(const struct kcp *k, struct kcp_state *st);

/* Test only (§4.1 "sn near 2^32"): starts the numbering of a fresh session at snd_nxt and
 * expects the peer's at rcv_nxt. -EBUSY once anything was queued, sent or received. */
int kcp_test_set_sn(struct kcp *k, uint32_t snd_nxt, uint32_t rcv_nxt);

/* Header fields a listener reads before a session exists (§2.4). n ≥ 24 required. */
static inline uint32_t kcp_peek_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint32_t kcp_peek_conv(const uint8_t *p) { return kcp_peek_u32(p); }
static inline uint32_t kcp_peek_sn(const uint8_t *p) { return kcp_peek_u32(p + 12); }

#endif
