/*
 * The single-client relay (see single.h; spec/pkthere.md §2 and §3.6–3.7).
 *
 * Per pair: one thread, one loop, a listener socket and an upstream socket. A received
 * batch is handled under the flow's mutex (lock checks, ICMP session state), producing
 * send batches that go out after the mutex is released: ICMP frames with sendmmsg, UDP
 * datagrams through batch_send (UDP GSO for runs of equal sizes, as the general relay).
 * UDP sockets ask for GRO, so one read may carry many datagrams; they are handled one by
 * one. Payload bytes are never copied except when they must wait (the first datagram
 * during an upstream handshake, a reply waiting for a fresh request sequence in sync mode).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "net/batch.h"
#include "net/endpoint.h"
#include "net/sock.h"
#include "relay/single.h"
#include "transport/icmp_sock.h"

/* Datagrams per recvmmsg/sendmmsg call. */
#define SINGLE_BATCH 32
/* A receive buffer holds the largest IP packet, IPv6 header included (§2.5). */
#define SINGLE_BUF_BYTES 65575
/* Listener and upstream socket buffers: bursts must not overflow them. */
#define SINGLE_SOCK_BUF_BYTES (4 << 20)
/* Watchdog period (§2.4). */
#define SINGLE_TICK_MS 1000
/* Cadence timer period is at most this long (§3.6: idle polling capped at 5 ms). */
#define SINGLE_CADENCE_TICK_MAX_MS 5
/* Cadence frames one pair may send per tick at most (bounds the work of one callback). */
#define SINGLE_CADENCE_BURST 64
/* Batches handled per readiness event before yielding to the other socket. */
#define SINGLE_ROUNDS 8
/* packet-dump records printed at most, per stage kind (§4.3 "bounded sampling"). */
#define SINGLE_DUMP_BUDGET 4096
/* Control data of one UDP read: the GRO segment size. */
#define SINGLE_CTL_BYTES 64

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

const char *const single_ctr_names[SC_COUNT] = {
	"icmp_sequence_future", "icmp_sequence_stale", "icmp_sequence_duplicate",
	"handshake_invalid_control", "handshake_stale_ack", "spurious_readiness_events",
	"malformed_packets", "wrong_peer_drops", "wrong_source_drops", "handshake_invalid_drops",
	"replay_drops", "icmp_abuse_budget_drops", "stale_session_drops", "stale_authority_drops",
	"invariant_failures", "ip_missing_header", "ip_invalid_version", "ip_truncated_header",
	"ip_declared_length_invalid", "ip_capture_truncated", "ip_fragmented", "ip_reserved_flag",
	"ip_extension_chain", "ip_routing_unsupported", "ip_jumbogram_unsupported",
	"ip_source_mismatch", "ip_destination_mismatch", "unrelated_ip_protocol", "icmp_malformed",
};

/* The locked client and the ICMP session state; one per pair or one shared (single.h). */
struct single_flow {
	pthread_mutex_t mu;
	bool locked;
	bool pending;		/* ICMP listener: negotiated, no data yet */
	uint64_t pending_since_ms;
	struct sockaddr_storage client;
	uint64_t version;	/* bumped on lock and unlock; pairs resync their sockets */
	uint64_t last_activity_ms;
	struct icmp_ls ls;
	struct icmp_up up;
	uint8_t *held;		/* first datagram while the upstream handshake runs */
	size_t held_len;
	bool have_held;
	uint64_t held_rx_ns;
	uint8_t *held_reply;	/* sync mode: reply waiting for a fresh request sequence */
	size_t held_reply_len;
	bool have_held_reply;
};

struct tx_entry {
	uint8_t hdr[ICMP_SOCK_HDR_MAX];
	struct iovec iov[2];
	struct sockaddr_storage to;
	bool user;
	size_t user_len;
	uint64_t rx_ns;
};

struct txq {
	int fd;
	bool icmp;
	unsigned n;
	struct tx_entry e[SINGLE_BATCH + 4];
	struct mmsghdr m[SINGLE_BATCH + 4];	/* ICMP: one message per frame */
	struct iovec iov[SINGLE_BATCH + 4];	/* UDP: the payloads, for batch_send */
	struct batch_tx btx;			/* UDP: GSO state of this socket */
};

struct single_pair {
	struct single *s;
	unsigned idx;
	struct single_flow *flow;
	pthread_t thread;
	bool started;
	struct loop *loop;
	struct io lio, uio;
	bool poll_listener, poll_upstream;	/* this pair reads the socket */
	int lfd, ufd;
	struct icmp_sock lsock, usock;
	bool l_connected, u_connected;
	uint64_t seen_version;
	struct timer tick, ctl, cadence;
	struct single_stats st;
	uint8_t *bufs;
	struct sockaddr_storage raddr[SINGLE_BATCH];
	struct iovec riov[SINGLE_BATCH];
	struct mmsghdr rmsg[SINGLE_BATCH];
	char rctl[SINGLE_BATCH][SINGLE_CTL_BYTES];
	struct txq to_up, to_cl;
	struct tx_entry *queue_last;
	enum { DIR_C2U, DIR_U2C } cur_dir;
};

struct single {
	struct single_opts o;
	unsigned npairs;
	struct single_pair *pairs;
	struct single_flow *flows;
	unsigned nflows;
	struct icmp_ids ids;
	int exit_fd;
	atomic_bool stopping;
	atomic_uint_fast64_t cadence_next_ns;	/* the global sync budget (§3.6) */
	uint64_t cadence_interval_ns;
	uint16_t up_echo_id, up_source_id, up_reply_id, up_local_id;
	bool up_raw;
	atomic_uint dump_budget;
	/* single-flow with an ICMP listener and several pairs: every pair's raw socket sees every
	 * frame, so the pairs share out clients through this table (§2.2's flow claims): slot i
	 * holds the client (IP + source ID) of pair i. NULL otherwise. */
	struct flow_claim *claims;
	pthread_mutex_t claim_mu;
};

struct flow_claim {
	bool used;
	struct sockaddr_storage ip;
	uint16_t id;
};

/* One sequence for stats lines and packet-dump records, so both streams can be merged (§4.2). */
static atomic_uint_fast64_t single_diag_seq;

uint64_t single_diag_next(void)
{
	return (uint64_t)atomic_fetch_add(&single_diag_seq, 1) + 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t single_now_ms(const struct single_pair *p)
{
	return loop_now(p->loop);
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return same_ip(a, b) && sockaddr_port((const struct sockaddr *)a) ==
				sockaddr_port((const struct sockaddr *)b);
}

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	sockaddr_format((const struct sockaddr *)ss, buf, len);
}

/* ---------------- debug output (§4.3) ---------------- */

static bool dbg(const struct single_pair *p, unsigned what)
{
	return p->s->o.debug_log & what;
}

static void dump_packet(struct single_pair *p, const char *stage, const char *what,
			const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];
	size_t i, show = n < 64 ? n : 64;

	if (!dbg(p, SINGLE_LOG_PACKET_DUMP))
		return;
	if (atomic_fetch_add_explicit(&p->s->dump_budget, 1, memory_order_relaxed) >= SINGLE_DUMP_BUDGET)
		return;
	for (i = 0; i < show; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	hex[2 * show] = 0;
	log_debug("{\"diagnostic_schema\":3,\"diagnostic_sequence\":%" PRIu64
		  ",\"stage\":\"%s\",\"worker_pair\":%u,\"direction\":\"%s\",\"%s\":\"%s\",\"len\":%zu,\"hex\":\"%s\"}",
		  single_diag_next(), stage, p->idx,
		  p->cur_dir == DIR_C2U ? "c2u" : "u2c",
		  !strcmp(stage, "disposition") ? "disposition" : "detail", what, n, hex);
}

static void disposition(struct single_pair *p, const char *what, const uint8_t *b, size_t n)
{
	dump_packet(p, "disposition", what, b, n);
}

/* ---------------- sending ---------------- */

static struct tx_entry *txq_add(struct txq *q, const struct sockaddr_storage *to)
{
	if (q->n == ARRAY_SIZE(q->e))
		return NULL;
	struct tx_entry *e = &q->e[q->n++];
	if (to)
		e->to = *to;
	else
		e->to.ss_family = AF_UNSPEC;
	e->user = false;
	return e;
}

/* Queues a frame (ICMP: header + shim, then the payload; UDP: the payload alone). */
static int queue_frame(struct single_pair *p, struct txq *q, struct icmp_sock *is, bool request,
		       const struct icmp_out *o, const uint8_t *payload, size_t len,
		       const struct sockaddr_storage *to, bool user, uint64_t rx_ns)
{
	struct tx_entry *e = txq_add(q, to);
	int hn = 0;

	if (!e)
		return -ENOBUFS;
	if (q->icmp) {
		hn = icmp_sock_build(is, icmp_sock_echo_type(is, request), o, payload, len, e->hdr);
		if (hn < 0) {
			q->n--;
			return hn;
		}
	}
	e->iov[0].iov_base = e->hdr;
	e->iov[0].iov_len = (size_t)hn;
	e->iov[1].iov_base = (void *)payload;
	e->iov[1].iov_len = len;
	e->user = user;
	e->user_len = len;
	e->rx_ns = rx_ns;
	return 0;
}

static void count_latency(struct single_dir_stats *d, uint64_t rx_ns, uint64_t start_ns, uint64_t done_ns)
{
	uint64_t lat = done_ns - rx_ns, q = start_ns - rx_ns, svc = done_ns - start_ns;

	CTR_ADD(d->latency_ns_sum, lat);
	if (lat > d->latency_ns_max)
		CTR_ADD(d->latency_ns_max, lat - d->latency_ns_max);
	CTR_ADD(d->queue_delay_ns_sum, q);
	if (q > d->queue_delay_ns_max)
		CTR_ADD(d->queue_delay_ns_max, q - d->queue_delay_ns_max);
	CTR_ADD(d->send_service_ns_sum, svc);
	if (svc > d->send_service_ns_max)
		CTR_ADD(d->send_service_ns_max, svc - d->send_service_ns_max);
	if (!lat)
		CTR_ADD(d->zero_resolution_samples, 1);
}

/* The frame at q->e[i] was refused by the kernel: a lost packet, not a dead peer. */
static void txq_count_failed(struct single_pair *p, struct txq *q, unsigned i, int err,
			     struct single_dir_stats *d)
{
	struct tx_entry *e = &q->e[i];

	CTR_ADD(d->errs, 1);
	CTR_ADD(*(e->user ? &d->user_send_errors : &d->control_send_errors), 1);
	if (e->user) {
		LOG_RL(LOG_DEBUG, "worker pair %u: send %s: %s", p->idx,
		       d == &p->st.c2u ? "upstream" : "to client", strerror(err));
		if (dbg(p, SINGLE_LOG_PACKETS))
			log_debug("[handle_send_result] worker pair %u send failed: %s", p->idx, strerror(err));
	}
	e->user = false;
}

/* ICMP frames are header + payload each: one sendmmsg message per frame. */
static void txq_send_icmp(struct single_pair *p, struct txq *q, struct single_dir_stats *d)
{
	unsigned i, sent = 0;

	for (i = 0; i < q->n; i++) {
		struct msghdr *h = &q->m[i].msg_hdr;
		struct tx_entry *e = &q->e[i];
		memset(h, 0, sizeof(*h));
		bool hdr = e->iov[0].iov_len > 0;
		h->msg_iov = hdr ? e->iov : &e->iov[1];
		h->msg_iovlen = hdr ? 2 : 1;
		if (e->to.ss_family != AF_UNSPEC) {
			h->msg_name = &e->to;
			h->msg_namelen = sockaddr_len((struct sockaddr *)&e->to);
		}
	}
	while (sent < q->n) {
		int r = sendmmsg(q->fd, q->m + sent, q->n - sent, MSG_DONTWAIT);
		if (r > 0) {
			sent += (unsigned)r;
			continue;
		}
		/* the first unsent one failed: count it and go on with the rest */
		txq_count_failed(p, q, sent++, errno, d);
	}
}

/* How many entries from q->e[i] on go to the same place (one batch_send call). */
static unsigned txq_run(const struct txq *q, unsigned i)
{
	const struct sockaddr_storage *to = &q->e[i].to;
	unsigned k = 1;

	while (i + k < q->n && k < BATCH_MAX &&
	       (to->ss_family == AF_UNSPEC ? q->e[i + k].to.ss_family == AF_UNSPEC
					   : same_addr(to, &q->e[i + k].to)))
		k++;
	return k;
}

/*
 * UDP payloads to one destination go through batch_send: a run of equal sizes leaves as
 * one UDP GSO send, so the kernel's output path runs once per run instead of per datagram.
 */
static void txq_send_udp(struct single_pair *p, struct txq *q, struct single_dir_stats *d)
{
	unsigned i, sent = 0;

	for (i = 0; i < q->n; i++)
		q->iov[i] = q->e[i].iov[1];
	while (sent < q->n) {
		unsigned k = txq_run(q, sent);
		const struct sockaddr *to = NULL;
		socklen_t tolen = 0;

		if (q->e[sent].to.ss_family != AF_UNSPEC) {
			to = (const struct sockaddr *)&q->e[sent].to;
			tolen = sockaddr_len(to);
		}
		int r = batch_send(&q->btx, q->fd, q->iov + sent, (int)k, to, tolen);
		if (r > 0) {
			sent += (unsigned)r;
			continue;
		}
		/* a refused GSO send lost its whole run: count the first, retry the rest */
		txq_count_failed(p, q, sent++, -r, d);
	}
}

static void txq_flush(struct single_pair *p, struct txq *q, struct single_dir_stats *d)
{
	unsigned i;
	uint64_t start, done;

	if (!q->n)
		return;
	start = now_ns();
	if (q->icmp)
		txq_send_icmp(p, q, d);
	else
		txq_send_udp(p, q, d);
	done = now_ns();
	for (i = 0; i < q->n; i++) {
		struct tx_entry *e = &q->e[i];
		if (!e->user)
			continue;
		CTR_ADD(d->pkts, 1);
		CTR_ADD(d->bytes, e->user_len);
		if (e->user_len > d->bytes_max)
			CTR_ADD(d->bytes_max, e->user_len - d->bytes_max);
		count_latency(d, e->rx_ns, start, done);
		if (dbg(p, SINGLE_LOG_PACKETS))
			log_debug("[handle_send_result] worker pair %u sent %zu bytes %s", p->idx, e->user_len,
				  d == &p->st.c2u ? "upstream" : "to client");
	}
	q->n = 0;
}

/* ---------------- flow lock ---------------- */

static void flow_lock_client(struct single_pair *p, struct single_flow *f,
			     const struct sockaddr_storage *client, bool pending)
{
	char a[64];

	f->locked = true;
	f->pending = pending;
	f->pending_since_ms = single_now_ms(p);
	f->client = *client;
	f->version++;
	f->last_activity_ms = single_now_ms(p);
	fmt_addr(client, a, sizeof(a));
	log_info("Locked to single client %s on worker pair %u", a, p->idx);
}

static void flow_drop_held(struct single_pair *p, struct single_flow *f, const char *why)
{
	if (f->have_held) {
		CTR_ADD(p->st.c2u.admission_drops, 1);
		p->cur_dir = DIR_C2U;
		disposition(p, why, f->held, f->held_len);
	}
	f->have_held = false;
	if (f->have_held_reply)
		CTR_ADD(p->st.u2c.admission_drops, 1);
	f->have_held_reply = false;
}

/* Gives up pair p's claim on its client (the flow was cleared, or never locked). */
static void claim_release(struct single_pair *p)
{
	struct single *s = p->s;

	if (!s->claims)
		return;
	pthread_mutex_lock(&s->claim_mu);
	s->claims[p->idx].used = false;
	pthread_mutex_unlock(&s->claim_mu);
}

static void flow_clear(struct single_pair *p, struct single_flow *f)
{
	claim_release(p);
	flow_drop_held(p, f, "handshake-reset-drop");
	f->locked = false;
	f->pending = false;
	f->version++;
	icmp_ls_unbind(&f->ls);
	icmp_up_reset(&f->up);
	if (dbg(p, SINGLE_LOG_HANDLES))
		log_debug("runtime-trace {\"event\":\"flow-clear-committed\",\"worker_pair\":%u}", p->idx);
}

/* Brings this pair's listener socket in line with the flow (connect after a lock). */
static void pair_sync(struct single_pair *p)
{
	struct single_flow *f = p->flow;
	struct sockaddr_storage client;
	bool locked;

	if (__atomic_load_n(&f->version, __ATOMIC_ACQUIRE) == p->seen_version)
		return;
	pthread_mutex_lock(&f->mu);
	p->seen_version = f->version;
	locked = f->locked;
	client = f->client;
	pthread_mutex_unlock(&f->mu);
	if (p->s->o.here.icmp || p->s->o.client_unconnected || !p->poll_listener)
		return;
	if (locked && !p->l_connected) {
		if (!connect(p->lfd, (struct sockaddr *)&client, sockaddr_len((struct sockaddr *)&client)))
			p->l_connected = true;
		if (dbg(p, SINGLE_LOG_HANDLES))
			log_debug("worker pair %u: listener connected to the locked client", p->idx);
	} else if (!locked && p->l_connected) {
		struct sockaddr un = { .sa_family = AF_UNSPEC };
		(void)connect(p->lfd, &un, sizeof(un));
		p->l_connected = false;
		if (dbg(p, SINGLE_LOG_HANDLES))
			log_debug("worker pair %u: listener disconnected", p->idx);
	}
}

/* ---------------- client -> upstream ---------------- */

static void count_icmp_drop(struct single_pair *p, enum icmp_drop d)
{
	static const enum single_ctr map[ICMP_DROP_COUNT] = {
		[ICMP_DROP_STALE_SESSION] = SC_STALE_SESSION,
		[ICMP_DROP_DUPLICATE] = SC_SEQ_DUPLICATE,
		[ICMP_DROP_STALE_SEQ] = SC_SEQ_STALE,
		[ICMP_DROP_FUTURE_SEQ] = SC_SEQ_FUTURE,
		[ICMP_DROP_INVALID_CONTROL] = SC_HANDSHAKE_INVALID_CONTROL,
		[ICMP_DROP_STALE_ACK] = SC_HANDSHAKE_STALE_ACK,
		[ICMP_DROP_WRONG_SOURCE] = SC_WRONG_SOURCE,
	};
	if (d > ICMP_OK && d < ICMP_DROP_COUNT)
		CTR_ADD(p->st.ctr[map[d]], 1);
	if (d == ICMP_DROP_DUPLICATE || d == ICMP_DROP_STALE_SEQ || d == ICMP_DROP_FUTURE_SEQ)
		CTR_ADD(p->st.ctr[SC_REPLAY_DROPS], 1);
}

static const char *icmp_drop_disposition(enum icmp_drop d)
{
	switch (d) {
	case ICMP_DROP_DUPLICATE:
		return "drop-duplicate";
	case ICMP_DROP_WRONG_SOURCE:
		return "drop-wrong-source";
	case ICMP_DROP_STALE_SESSION:
		return "drop-stale-session";
	default:
		return "drop-sequence";
	}
}

/* Control frames of the upstream handshake that are due now; re-arms the retry timer. */
static void pair_ctl_poll(struct single_pair *p, struct single_flow *f)
{
	struct icmp_out o;
	int r;

	if (!p->s->o.there.icmp)
		return;
	while ((r = icmp_up_poll(&f->up, single_now_ms(p), &o)) == 1) {
		if (dbg(p, SINGLE_LOG_HANDSHAKE))
			log_debug("{\"handshake\":\"send\",\"op\":%u,\"seq\":%u,\"session\":%" PRIu64 ",\"worker_pair\":%u}",
				  o.f.op, o.seq, o.f.key.session, p->idx);
		queue_frame(p, &p->to_up, &p->usock, true, &o, NULL, 0,
			    p->u_connected ? NULL : &p->s->o.there.addr, false, 0);
	}
	if (r == -ETIMEDOUT) {
		flow_drop_held(p, f, "handshake-timeout-drop");
		log_warn("ICMP reply-ID handshake timeout reached (%" PRIu64 "s): dropping locked client on worker pair %u",
			 p->s->o.handshake_timeout_ms / 1000, p->idx);
		flow_clear(p, f);
	}
	uint64_t due = icmp_up_deadline(&f->up);
	if (due != UINT64_MAX)
		timer_arm_at(p->loop, &p->ctl, due);
}

static void to_upstream(struct single_pair *p, struct single_flow *f, const uint8_t *b, size_t n,
			uint64_t rx_ns)
{
	struct icmp_out o;
	int r;

	if (!p->s->o.there.icmp) {
		queue_frame(p, &p->to_up, NULL, true, NULL, b, n,
			    p->u_connected ? NULL : &p->s->o.there.addr, true, rx_ns);
		disposition(p, "forwarded", b, n);
		return;
	}
	r = icmp_up_data(&f->up, single_now_ms(p), &o);
	if (r == 0) {
		o.f.payload = b;
		o.f.payload_len = n;
		queue_frame(p, &p->to_up, &p->usock, true, &o, b, n,
			    p->u_connected ? NULL : &p->s->o.there.addr, true, rx_ns);
		disposition(p, "forwarded", b, n);
		/* near the end of the sequence space this queued the next session's NEGOTIATE */
		if (f->up.ctl_pending && !f->up.ctl_tries)
			pair_ctl_poll(p, f);
		return;
	}
	if (r == -EINPROGRESS) {
		/* hold this one datagram until the NEGOTIATE is acknowledged (§3.6) */
		memcpy(f->held, b, n);
		f->held_len = n;
		f->have_held = true;
		f->held_rx_ns = rx_ns;
		if (dbg(p, SINGLE_LOG_HANDSHAKE))
			log_debug("{\"handshake\":\"start\",\"worker_pair\":%u}", p->idx);
		pair_ctl_poll(p, f);
		return;
	}
	CTR_ADD(p->st.c2u.admission_drops, 1);
	disposition(p, r == -EAGAIN ? "drop-handshake-pending" : "drop-pool-empty", b, n);
	if (r == -ENOSPC)
		pair_ctl_poll(p, f);
}

/* The held datagram goes out once the handshake completed. */
static void flush_held(struct single_pair *p, struct single_flow *f)
{
	struct icmp_out o;

	if (!f->have_held)
		return;
	if (icmp_up_data(&f->up, single_now_ms(p), &o))
		return;
	/* the held buffer is stable until the next handshake; send it from there */
	o.f.payload = f->held;
	o.f.payload_len = f->held_len;
	queue_frame(p, &p->to_up, &p->usock, true, &o, f->held, f->held_len,
		    p->u_connected ? NULL : &p->s->o.there.addr, true, f->held_rx_ns);
	f->have_held = false;
}

static bool oversize(struct single_pair *p, struct single_dir_stats *d, const uint8_t *b, size_t n)
{
	if (n <= p->s->o.max_payload)
		return false;
	CTR_ADD(d->drops_oversize, 1);
	disposition(p, "filtered", b, n);
	if (dbg(p, SINGLE_LOG_DROPS))
		log_debug("dropping oversize payload of %zu bytes (max %zu)", n, p->s->o.max_payload);
	return true;
}

static void c2u_udp(struct single_pair *p, struct single_flow *f, const struct sockaddr_storage *from,
		    const uint8_t *b, size_t n, uint64_t rx_ns)
{
	dump_packet(p, "received", "udp", b, n);
	dump_packet(p, "admission", "udp", b, n);
	if (!f->locked) {
		flow_lock_client(p, f, from, false);
	} else if (!same_addr(from, &f->client)) {
		CTR_ADD(p->st.ctr[SC_WRONG_PEER], 1);
		disposition(p, "drop-wrong-peer", b, n);
		if (dbg(p, SINGLE_LOG_DROPS)) {
			char a[64];
			fmt_addr(from, a, sizeof(a));
			log_debug("dropping packet from unexpected client peer %s", a);
		}
		return;
	}
	if (oversize(p, &p->st.c2u, b, n))
		return;
	f->last_activity_ms = single_now_ms(p);
	to_upstream(p, f, b, n, rx_ns);
}

/* Sends the held sync-mode reply when a fresh request sequence arrived. */
static void flush_held_reply(struct single_pair *p, struct single_flow *f)
{
	struct icmp_out o;

	if (!f->have_held_reply || !icmp_ls_fresh_seq(&f->ls) || icmp_ls_data(&f->ls, &o))
		return;
	queue_frame(p, &p->to_cl, &p->lsock, false, &o, f->held_reply, f->held_reply_len,
		    &f->client, true, now_ns());
	f->have_held_reply = false;
}

static int count_ip_error(struct single_pair *p, int err)
{
	static const enum single_ctr map[] = {
		[IP_E_MISSING_HEADER] = SC_IP_MISSING_HEADER,
		[IP_E_INVALID_VERSION] = SC_IP_INVALID_VERSION,
		[IP_E_TRUNCATED_HEADER] = SC_IP_TRUNCATED_HEADER,
		[IP_E_DECLARED_LENGTH] = SC_IP_DECLARED_LENGTH,
		[IP_E_CAPTURE_TRUNCATED] = SC_IP_CAPTURE_TRUNCATED,
		[IP_E_RESERVED_FLAG] = SC_IP_RESERVED_FLAG,
		[IP_E_FRAGMENTED] = SC_IP_FRAGMENTED,
		[IP_E_UNRELATED_PROTOCOL] = SC_UNRELATED_PROTOCOL,
	};
	err = -err;
	if (err > 0 && (size_t)err < ARRAY_SIZE(map))
		CTR_ADD(p->st.ctr[map[err]], 1);
	return err;
}

/*
 * Parses a received ICMP datagram down to the shim. Returns 0 with e and fr set, 1 for
 * traffic that is not ours to count (other echo IDs, plain pings), -1 for a counted drop.
 */
static int parse_icmp(struct single_pair *p, struct icmp_sock *is, unsigned i, uint16_t want_id,
		      struct icmp_echo *e, struct shim_frame *fr)
{
	uint8_t *msg;
	size_t len;
	int err;

	err = icmp_sock_message(is, p->riov[i].iov_base, p->rmsg[i].msg_len, &msg, &len);
	if (err) {
		count_ip_error(p, err);
		return -1;
	}
	if (icmp_echo_read(msg, len, is->family == AF_INET6, e)) {
		CTR_ADD(p->st.ctr[SC_ICMP_MALFORMED], 1);
		return -1;
	}
	if (want_id && e->id != want_id)
		return 1;
	dump_packet(p, "received", "icmp", msg, len);
	err = shim_decode(msg + ICMP_ECHO_HDR_BYTES, len - ICMP_ECHO_HDR_BYTES, e->id, fr);
	if (err == -SHIM_E_EMPTY)
		return 1;
	if (err) {
		CTR_ADD(p->st.ctr[SC_MALFORMED], 1);
		disposition(p, "drop-malformed", msg, len);
		if (dbg(p, SINGLE_LOG_DROPS))
			log_debug("dropping malformed ICMP frame (%s)", shim_err_name(err));
		return -1;
	}
	dump_packet(p, "admission", fr->kind == SHIM_DATA ? "data" : fr->kind == SHIM_CADENCE ? "cadence" : "control",
		    msg, len);
	return 0;
}

enum claim_result { CLAIM_MINE, CLAIM_NEW, CLAIM_OTHER, CLAIM_NONE_FREE };

/* Who serves the client (IP + source ID) of a frame: this pair already, this pair from now on
 * (it had no client), another pair, or nobody (every pair has a client of its own). */
static enum claim_result claim_client(struct single_pair *p, const struct sockaddr_storage *from, uint16_t id)
{
	struct single *s = p->s;
	enum claim_result r = CLAIM_NONE_FREE;
	bool free_slot = false;

	pthread_mutex_lock(&s->claim_mu);
	for (unsigned k = 0; k < s->npairs; k++) {
		struct flow_claim *c = &s->claims[k];

		if (!c->used)
			free_slot = true;
		else if (c->id == id && same_ip(&c->ip, from))
			r = k == p->idx ? CLAIM_MINE : CLAIM_OTHER;
	}
	if (r == CLAIM_NONE_FREE && !s->claims[p->idx].used) {
		s->claims[p->idx] = (struct flow_claim){ .used = true, .ip = *from, .id = id };
		r = CLAIM_NEW;
	} else if (r == CLAIM_NONE_FREE && free_slot) {
		r = CLAIM_OTHER;	/* a pair without a client takes it from its own copy */
	}
	pthread_mutex_unlock(&s->claim_mu);
	return r;
}

/* One parsed frame on the listener. */
static void c2u_icmp_frame(struct single_pair *p, struct single_flow *f, unsigned i, uint64_t rx_ns,
			   const struct icmp_echo *e, const struct shim_frame *fr)
{
	const struct sockaddr_storage *from = &p->raddr[i];
	struct icmp_out reply;
	enum icmp_drop drop;
	enum icmp_action a;
	bool want_reply;

	if (f->locked && !same_ip(from, &f->client)) {
		CTR_ADD(p->st.ctr[SC_WRONG_PEER], 1);
		disposition(p, "drop-wrong-peer", fr->payload, fr->payload_len);
		if (dbg(p, SINGLE_LOG_DROPS)) {
			char ab[64];
			fmt_addr(from, ab, sizeof(ab));
			log_debug("dropping packet from unexpected client peer %s", ab);
		}
		return;
	}
	a = icmp_ls_input(&f->ls, single_now_ms(p), e, fr, &drop, &want_reply, &reply);
	if (want_reply)
		queue_frame(p, &p->to_cl, &p->lsock, false, &reply, NULL, 0, from, false, 0);
	if (f->ls.bound && !f->locked)
		flow_lock_client(p, f, from, true);
	switch (a) {
	case ICMP_ACT_DROP:
		count_icmp_drop(p, drop);
		disposition(p, icmp_drop_disposition(drop), fr->payload, fr->payload_len);
		if (drop == ICMP_DROP_WRONG_SOURCE && dbg(p, SINGLE_LOG_DROPS)) {
			char ab[64];
			fmt_addr(from, ab, sizeof(ab));
			log_debug("dropping ICMP packet from client peer %s because source endpoint ID mismatches the locked flow", ab);
		}
		return;
	case ICMP_ACT_CONSUMED:
		disposition(p, fr->kind == SHIM_CADENCE ? "consume-cadence" : "consume-session-control", NULL, 0);
		flush_held_reply(p, f);
		return;
	case ICMP_ACT_DELIVER:
	case ICMP_ACT_READY:
		break;
	}
	f->pending = false;
	if (oversize(p, &p->st.c2u, fr->payload, fr->payload_len))
		return;
	f->last_activity_ms = single_now_ms(p);
	to_upstream(p, f, fr->payload, fr->payload_len, rx_ns);
	flush_held_reply(p, f);
}

static void c2u_icmp(struct single_pair *p, struct single_flow *f, unsigned i, uint64_t rx_ns)
{
	struct icmp_echo e;
	struct shim_frame fr;
	enum claim_result c;

	if (parse_icmp(p, &p->lsock, i, f->ls.listen_id, &e, &fr))
		return;
	if (!p->s->claims) {
		c2u_icmp_frame(p, f, i, rx_ns, &e, &fr);
		return;
	}
	c = claim_client(p, &p->raddr[i], e.id);
	if (c == CLAIM_OTHER || (c == CLAIM_NONE_FREE && p->idx > 0))
		return;		/* another pair's copy of the frame is the one that counts */
	c2u_icmp_frame(p, f, i, rx_ns, &e, &fr);
	if (c == CLAIM_NEW && !f->locked)
		claim_release(p);	/* the frame did not start a flow: let the client go again */
}

/* ---------------- upstream -> client ---------------- */

static void to_client(struct single_pair *p, struct single_flow *f, const uint8_t *b, size_t n,
		      uint64_t rx_ns)
{
	struct icmp_out o;

	if (!f->locked) {
		CTR_ADD(p->st.u2c.admission_drops, 1);
		disposition(p, "drop-no-client", b, n);
		return;
	}
	if (oversize(p, &p->st.u2c, b, n))
		return;
	f->last_activity_ms = single_now_ms(p);
	if (!p->s->o.here.icmp) {
		queue_frame(p, &p->to_cl, NULL, false, NULL, b, n, p->l_connected ? NULL : &f->client,
			    true, rx_ns);
		disposition(p, "forwarded", b, n);
		return;
	}
	switch (icmp_ls_data(&f->ls, &o)) {
	case 0:
		queue_frame(p, &p->to_cl, &p->lsock, false, &o, b, n, &f->client, true, rx_ns);
		disposition(p, "forwarded", b, n);
		return;
	case -EAGAIN:
		/* sync mode: the newest reply waits for the next request sequence */
		if (f->have_held_reply) {
			CTR_ADD(p->st.u2c.admission_drops, 1);
			disposition(p, "drop-sync-replaced", f->held_reply, f->held_reply_len);
		}
		memcpy(f->held_reply, b, n);
		f->held_reply_len = n;
		f->have_held_reply = true;
		return;
	default:
		CTR_ADD(p->st.u2c.admission_drops, 1);
		disposition(p, "drop-no-session", b, n);
	}
}

static void u2c_udp(struct single_pair *p, struct single_flow *f, const struct sockaddr_storage *from,
		    const uint8_t *b, size_t n, uint64_t rx_ns)
{
	dump_packet(p, "received", "udp", b, n);
	dump_packet(p, "admission", "udp", b, n);
	if (!p->u_connected && !same_addr(from, &p->s->o.there.addr)) {
		CTR_ADD(p->st.ctr[SC_WRONG_PEER], 1);
		disposition(p, "drop-wrong-peer", b, n);
		if (dbg(p, SINGLE_LOG_DROPS)) {
			char a[64];
			fmt_addr(from, a, sizeof(a));
			log_debug("dropping packet from unexpected upstream peer %s", a);
		}
		return;
	}
	to_client(p, f, b, n, rx_ns);
}

static void u2c_icmp(struct single_pair *p, struct single_flow *f, unsigned i, uint64_t rx_ns)
{
	struct icmp_echo e;
	struct shim_frame fr;
	enum icmp_drop drop;

	/* a ping socket only ever sees its own identifier; a raw one sees every echo */
	if (parse_icmp(p, &p->usock, i, p->usock.raw ? f->up.reply_id : 0, &e, &fr))
		return;
	if (!same_ip(&p->raddr[i], &p->s->o.there.addr)) {
		CTR_ADD(p->st.ctr[SC_IP_SOURCE_MISMATCH], 1);
		return;
	}
	switch (icmp_up_input(&f->up, single_now_ms(p), &e, &fr, &drop)) {
	case ICMP_ACT_DROP:
		count_icmp_drop(p, drop);
		disposition(p, icmp_drop_disposition(drop), fr.payload, fr.payload_len);
		return;
	case ICMP_ACT_READY:
		if (dbg(p, SINGLE_LOG_HANDSHAKE))
			log_debug("{\"handshake\":\"ack\",\"session\":%" PRIu64 ",\"worker_pair\":%u}",
				  f->up.cur.key.session, p->idx);
		disposition(p, "consume-session-control", NULL, 0);
		flush_held(p, f);
		return;
	case ICMP_ACT_CONSUMED:
		disposition(p, fr.kind == SHIM_CADENCE ? "consume-cadence" : "consume-session-control", NULL, 0);
		pair_ctl_poll(p, f);
		return;
	case ICMP_ACT_DELIVER:
		to_client(p, f, fr.payload, fr.payload_len, rx_ns);
		return;
	}
}

/* ---------------- readiness ---------------- */

static int pair_recv(struct single_pair *p, int fd, bool udp, struct single_dir_stats *d)
{
	unsigned i;

	for (i = 0; i < SINGLE_BATCH; i++) {
		p->riov[i].iov_base = p->bufs + (size_t)i * SINGLE_BUF_BYTES;
		p->riov[i].iov_len = SINGLE_BUF_BYTES;
		memset(&p->rmsg[i].msg_hdr, 0, sizeof(p->rmsg[i].msg_hdr));
		p->rmsg[i].msg_hdr.msg_iov = &p->riov[i];
		p->rmsg[i].msg_hdr.msg_iovlen = 1;
		p->rmsg[i].msg_hdr.msg_name = &p->raddr[i];
		p->rmsg[i].msg_hdr.msg_namelen = sizeof(p->raddr[i]);
		if (udp) {
			p->rmsg[i].msg_hdr.msg_control = p->rctl[i];
			p->rmsg[i].msg_hdr.msg_controllen = sizeof(p->rctl[i]);
		}
	}
	int n = recvmmsg(fd, p->rmsg, SINGLE_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		/* e.g. ECONNREFUSED from an ICMP port unreachable: counted, not fatal (§2.6) */
		CTR_ADD(d->errs, 1);
		CTR_ADD(d->receive_errors, 1);
		return 0;
	}
	return n;
}

/* The GRO segment size of a UDP read (0: one datagram). */
static size_t gro_segment(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			return v > 0 ? (size_t)v : 0;
		}
	}
	return 0;
}

/*
 * Sends what is queued when a queue might not take the frames of one more datagram (a GRO
 * read carries many datagrams). The flow's mutex is not held across the syscalls.
 */
static void pair_make_room(struct single_pair *p, struct single_flow *f)
{
	if (p->to_up.n < SINGLE_BATCH && p->to_cl.n < SINGLE_BATCH)
		return;
	pthread_mutex_unlock(&f->mu);
	txq_flush(p, &p->to_up, &p->st.c2u);
	txq_flush(p, &p->to_cl, &p->st.u2c);
	pthread_mutex_lock(&f->mu);
}

/* One UDP read: several datagrams of the segment size (the last may be shorter) under GRO. */
static void pair_udp_read(struct single_pair *p, struct single_flow *f, unsigned i, bool from_listener,
			  uint64_t rx_ns)
{
	const uint8_t *b = p->riov[i].iov_base;
	size_t len = p->rmsg[i].msg_len, seg = gro_segment(&p->rmsg[i].msg_hdr), off = 0;

	if (!seg || seg > len)
		seg = len;
	do {
		size_t part = MIN(seg, len - off);

		pair_make_room(p, f);
		if (from_listener)
			c2u_udp(p, f, &p->raddr[i], b + off, part, rx_ns);
		else
			u2c_udp(p, f, &p->raddr[i], b + off, part, rx_ns);
		off += part;
	} while (off < len);
}

static void pair_on_readable(struct single_pair *p, bool from_listener)
{
	struct single_flow *f = p->flow;
	struct single_dir_stats *d = from_listener ? &p->st.c2u : &p->st.u2c;
	int fd = from_listener ? p->lfd : p->ufd;
	bool udp = from_listener ? !p->s->o.here.icmp : !p->s->o.there.icmp;

	for (int round = 0; round < SINGLE_ROUNDS; round++) {
		int n = pair_recv(p, fd, udp, d);
		if (n <= 0) {
			if (n == 0 && round == 0)
				CTR_ADD(p->st.ctr[SC_SPURIOUS_READINESS], 1);
			break;
		}
		uint64_t rx_ns = now_ns();
		p->cur_dir = from_listener ? DIR_C2U : DIR_U2C;
		pthread_mutex_lock(&f->mu);
		for (int i = 0; i < n; i++) {
			if (udp)
				pair_udp_read(p, f, (unsigned)i, from_listener, rx_ns);
			else if (from_listener)
				c2u_icmp(p, f, (unsigned)i, rx_ns);
			else
				u2c_icmp(p, f, (unsigned)i, rx_ns);
		}
		pthread_mutex_unlock(&f->mu);
		txq_flush(p, &p->to_up, &p->st.c2u);
		txq_flush(p, &p->to_cl, &p->st.u2c);
		pair_sync(p);
		if (n < SINGLE_BATCH)
			break;
	}
}

static void pair_on_listener(struct io *io, uint32_t events)
{
	pair_on_readable(container_of(io, struct single_pair, lio), true);
}

static void pair_on_upstream(struct io *io, uint32_t events)
{
	pair_on_readable(container_of(io, struct single_pair, uio), false);
}

/* ---------------- timers ---------------- */

static void pair_exit(struct single_pair *p)
{
	uint64_t one = 1;

	atomic_store(&p->s->stopping, true);
	if (write(p->s->exit_fd, &one, sizeof(one)) < 0)
		log_error("worker pair %u: cannot signal exit: %s", p->idx, strerror(errno));
}

/* The watchdog (§2.4): idle timeout, and pending ICMP client locks that never completed. */
static void pair_on_tick(struct timer *t)
{
	struct single_pair *p = container_of(t, struct single_pair, tick);
	struct single_flow *f = p->flow;
	uint64_t now = single_now_ms(p);
	const struct single_opts *o = &p->s->o;

	timer_arm(p->loop, &p->tick, SINGLE_TICK_MS);
	/* in shared-flow only pair 0 watches the one flow */
	if (!o->single_flow && p->idx != 0) {
		pair_sync(p);
		return;
	}
	pthread_mutex_lock(&f->mu);
	if (f->locked && f->pending && now - f->pending_since_ms >= o->handshake_timeout_ms) {
		char a[64];
		fmt_addr(&f->client, a, sizeof(a));
		log_warn("ICMP client negotiation timeout reached (%" PRIu64 "s): clearing pending flow %s on worker pair %u",
			 o->handshake_timeout_ms / 1000, a, p->idx);
		flow_clear(p, f);
	} else if (f->locked && !f->pending && now - f->last_activity_ms >= o->timeout_ms) {
		if (o->on_timeout_exit) {
			log_warn("Idle timeout reached (%" PRIu64 "s): exiting cleanly", o->timeout_ms / 1000);
			pthread_mutex_unlock(&f->mu);
			pair_exit(p);
			return;
		}
		log_warn("Idle timeout reached (%" PRIu64 "s): dropping locked client on worker pair %u",
			 o->timeout_ms / 1000, p->idx);
		flow_clear(p, f);
	}
	pthread_mutex_unlock(&f->mu);
	pair_sync(p);
}

static void pair_on_ctl(struct timer *t)
{
	struct single_pair *p = container_of(t, struct single_pair, ctl);

	pthread_mutex_lock(&p->flow->mu);
	pair_ctl_poll(p, p->flow);
	pthread_mutex_unlock(&p->flow->mu);
	txq_flush(p, &p->to_up, &p->st.c2u);
	pair_sync(p);
}

/* Claims one slot of the process-wide cadence budget (§3.6: one global token bucket). */
static bool cadence_claim(struct single *s, uint64_t now)
{
	uint_fast64_t next = atomic_load_explicit(&s->cadence_next_ns, memory_order_relaxed);

	if (now < next)
		return false;
	/* after a pause the bucket does not let a backlog out at once */
	uint64_t base = next + s->cadence_interval_ns < now ? now : next;
	return atomic_compare_exchange_strong(&s->cadence_next_ns, &next, base + s->cadence_interval_ns);
}

static void pair_on_cadence(struct timer *t)
{
	struct single_pair *p = container_of(t, struct single_pair, cadence);
	struct single *s = p->s;
	struct single_flow *f = p->flow;
	uint64_t tick = s->cadence_interval_ns / 1000000u;
	struct icmp_out o;

	tick = tick < 1 ? 1 : tick > SINGLE_CADENCE_TICK_MAX_MS ? SINGLE_CADENCE_TICK_MAX_MS : tick;
	timer_arm(p->loop, &p->cadence, tick);
	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < SINGLE_CADENCE_BURST && f->locked && cadence_claim(s, now_ns()); i++) {
		if (icmp_up_cadence(&f->up, &o))
			break;
		queue_frame(p, &p->to_up, &p->usock, true, &o, NULL, 0,
			    p->u_connected ? NULL : &s->o.there.addr, false, 0);
	}
	if (f->up.ctl_pending && !f->up.ctl_tries)
		pair_ctl_poll(p, f);	/* cadence may have used up the space: the next session */
	pthread_mutex_unlock(&f->mu);
	txq_flush(p, &p->to_up, &p->st.c2u);
}

/* ---------------- set-up ---------------- */

static int udp_open(const struct sockaddr_storage *addr, bool reuseport, char *err, size_t errlen,
		    const char *what)
{
	int fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	sock_set_buf(fd, SO_RCVBUF, SINGLE_SOCK_BUF_BYTES);
	sock_set_buf(fd, SO_SNDBUF, SINGLE_SOCK_BUF_BYTES);
	/* coalesced reads where the kernel offers UDP GRO: pair_udp_read splits them */
	(void)setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, sockaddr_len((const struct sockaddr *)addr)))
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s socket setup failed: %s", what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void wildcard_of(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	sockaddr_set_port((struct sockaddr *)ss, port);
}

static uint16_t random_id(void)
{
	uint16_t v = 0;

	while (!v && getrandom(&v, sizeof(v), 0) == sizeof(v))
		;
	return v ? v : 0x4654;
}

/* Connects a pair's new upstream socket to the target, unless --debug-upstream-unconnected. */
static int upstream_connect(struct single *s, struct single_pair *p, char *err, size_t errlen)
{
	const struct sockaddr *to = (const struct sockaddr *)&s->o.there.addr;

	if (s->o.upstream_unconnected)
		return 0;
	if (connect(p->ufd, to, sockaddr_len(to))) {
		int e = errno;
		snprintf(err, errlen, "upstream socket setup failed: connect: %s", strerror(e));
		return -e;
	}
	p->u_connected = true;
	return 0;
}

/* Opens the ICMP upstream of one pair and realizes the IDs (§3.5, §3.7). */
static int open_icmp_upstream(struct single *s, struct single_pair *p, char *err, size_t errlen)
{
	const struct single_opts *o = &s->o;
	uint16_t d = o->there.id;
	int32_t sid = o->there_source_id, rid = o->there_reply_id;
	bool disjoint = d && ((sid > 0 && sid != d) || (rid > 0 && rid != d));
	bool raw = disjoint || o->force_raw_upstream;
	struct sockaddr_storage any;
	int r;

	wildcard_of(o->there.addr.ss_family, 0, &any);
	r = icmp_sock_open(&p->usock, (struct sockaddr *)&any, raw, d);
	if (!raw && (r == -EACCES || r == -EPERM || r == -EPROTONOSUPPORT)) {
		/* outside net.ipv4.ping_group_range: fall back to a raw socket (§3.7) */
		raw = true;
		r = icmp_sock_open(&p->usock, (struct sockaddr *)&any, true, d);
	}
	if (r) {
		snprintf(err, errlen, "upstream socket setup failed: %s (an ICMP upstream needs a ping socket, "
			 "allowed by sysctl net.ipv4.ping_group_range for this group, or CAP_NET_RAW for a raw socket)",
			 strerror(-r));
		return r;
	}
	if (!raw) {
		uint16_t l = p->usock.local_id;
		if ((sid > 0 && sid != l) || (rid > 0 && rid != l)) {
			snprintf(err, errlen, "ICMP upstream requested independent ids but socket type DGRAM cannot "
				 "preserve disjoint ICMP ids; use a raw-capable deployment");
			return -EINVAL;
		}
		s->up_echo_id = s->up_source_id = s->up_reply_id = s->up_local_id = l;
	} else {
		uint16_t local = sid > 0 ? (uint16_t)sid : d ? d : random_id();
		s->up_echo_id = d ? d : local;
		s->up_local_id = local;
		s->up_source_id = sid > 0 ? (uint16_t)sid : local;
		s->up_reply_id = rid > 0 ? (uint16_t)rid : local;
	}
	s->up_raw = raw;
	p->ufd = p->usock.fd;
	return upstream_connect(s, p, err, errlen);
}

static int open_udp_upstream(struct single *s, struct single_pair *p, char *err, size_t errlen)
{
	const struct single_opts *o = &s->o;
	struct sockaddr_storage local;
	int32_t sid = o->there_source_id;

	/* --there-source-id binds the local port; with several pairs they share it */
	wildcard_of(o->there.addr.ss_family, sid > 0 ? (uint16_t)sid : 0, &local);
	p->ufd = udp_open(&local, sid > 0 && o->workers > 1, err, errlen, "upstream");
	if (p->ufd < 0)
		return -EINVAL;
	return upstream_connect(s, p, err, errlen);
}

static int open_listener(struct single *s, struct single_pair *p, char *err, size_t errlen)
{
	const struct single_opts *o = &s->o;
	int r;

	if (o->here.icmp) {
		r = icmp_sock_open(&p->lsock, (const struct sockaddr *)&o->here.addr, true, 0);
		if (r) {
			snprintf(err, errlen, "listener socket setup failed: %s (an ICMP listener needs a raw socket: "
				 "run as root with --user, or with CAP_NET_RAW)", strerror(-r));
			return r;
		}
		p->lfd = p->lsock.fd;
		return 0;
	}
	struct sockaddr_storage addr = o->here.addr;
	if (p->idx > 0) {
		/* ":0" asked for one ephemeral port: every pair shares the one pair 0 got */
		socklen_t len = sizeof(addr);
		getsockname(s->pairs[0].lfd, (struct sockaddr *)&addr, &len);
	}
	p->lfd = udp_open(&addr, o->workers > 1, err, errlen, "listener");
	return p->lfd < 0 ? -EINVAL : 0;
}

static void flow_init(struct single *s, struct single_flow *f)
{
	const struct single_opts *o = &s->o;

	pthread_mutex_init(&f->mu, NULL);
	icmp_ls_init(&f->ls);
	f->ls.listen_id = o->here.icmp ? o->here.id : 0;
	f->ls.source_id = o->here_source_id > 0 ? (uint16_t)o->here_source_id : 0;
	f->ls.reply_id = o->here_reply_id > 0 ? (uint16_t)o->here_reply_id : 0;
	f->ls.handshake_timeout_ms = o->handshake_timeout_ms;
	if (getrandom(&f->ls.challenge_seed, sizeof(f->ls.challenge_seed), 0) != sizeof(f->ls.challenge_seed))
		f->ls.challenge_seed = (uint64_t)now_ns();
	icmp_up_init(&f->up, &s->ids);
	f->up.echo_id = s->up_echo_id;
	f->up.source_id = s->up_source_id;
	f->up.reply_id = s->up_reply_id;
	f->up.handshake_timeout_ms = o->handshake_timeout_ms;
	f->up.sync_pps = o->sync_pps;
	f->up.accept_kernel_echo = o->kernel_echo_self_handshake;
}

static int pair_alloc(struct single_pair *p)
{
	p->bufs = malloc((size_t)SINGLE_BATCH * SINGLE_BUF_BYTES);
	return p->bufs ? 0 : -ENOMEM;
}

int single_open(const struct single_opts *o, struct single **out, char *err, size_t errlen)
{
	struct single *s = calloc(1, sizeof(*s));
	unsigned i;
	int r = -ENOMEM;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->o = *o;
	s->exit_fd = -1;
	s->npairs = o->workers ? o->workers : 1;
	if (o->here.icmp && o->single_flow && s->npairs > 1) {
		s->claims = calloc(s->npairs, sizeof(*s->claims));
		if (!s->claims) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		pthread_mutex_init(&s->claim_mu, NULL);
	}
	if (getrandom(&s->ids.next, sizeof(s->ids.next), 0) != sizeof(s->ids.next))
		s->ids.next = now_ns();
	s->pairs = calloc(s->npairs, sizeof(*s->pairs));
	s->nflows = o->single_flow ? s->npairs : 1;
	s->flows = calloc(s->nflows, sizeof(*s->flows));
	s->exit_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!s->pairs || !s->flows || s->exit_fd < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		p->s = s;
		p->idx = i;
		p->lfd = p->ufd = -1;
		p->lsock.fd = p->usock.fd = -1;
	}
	for (i = 0; i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		/* an ICMP side in shared-flow is one socket, read by pair 0 (one transport identity) */
		bool own_l = !(o->here.icmp && !o->single_flow && i > 0);
		bool own_u = !(o->there.icmp && !o->single_flow && i > 0);
		if (own_l && (r = open_listener(s, p, err, errlen)))
			goto fail;
		if (!own_l)
			p->lfd = s->pairs[0].lfd, p->lsock = s->pairs[0].lsock;
		p->poll_listener = own_l;
		if (i == 0 && !o->here.icmp && !o->there.icmp) {
			struct sockaddr_storage la;
			socklen_t len = sizeof(la);
			getsockname(p->lfd, (struct sockaddr *)&la, &len);
			if (same_addr(&la, &o->there.addr)) {
				char a[64], b[64];
				fmt_addr(&la, a, sizeof(a));
				fmt_addr(&o->there.addr, b, sizeof(b));
				snprintf(err, errlen, "Port conflict: listener address %s is identical to upstream "
					 "destination address %s; they must be different to avoid loops", a, b);
				r = -EINVAL;
				goto fail;
			}
		}
		if (own_u) {
			r = o->there.icmp ? open_icmp_upstream(s, p, err, errlen) : open_udp_upstream(s, p, err, errlen);
			if (r)
				goto fail;
		} else {
			p->ufd = s->pairs[0].ufd;
			p->usock = s->pairs[0].usock;
			p->u_connected = s->pairs[0].u_connected;
		}
		p->poll_upstream = own_u;
		if ((r = pair_alloc(p))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		p->to_up.fd = p->ufd;
		p->to_up.icmp = o->there.icmp;
		p->to_cl.fd = p->lfd;
		p->to_cl.icmp = o->here.icmp;
	}
	for (i = 0; i < s->nflows; i++) {
		struct single_flow *f = &s->flows[i];
		flow_init(s, f);
		f->held = malloc(SINGLE_BUF_BYTES);
		f->held_reply = malloc(SINGLE_BUF_BYTES);
		if (!f->held || !f->held_reply) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto fail;
		}
	}
	for (i = 0; i < s->npairs; i++)
		s->pairs[i].flow = &s->flows[o->single_flow ? i : 0];
	if (o->sync_pps)
		s->cadence_interval_ns = 1000000000u / o->sync_pps ? 1000000000u / o->sync_pps : 1;
	*out = s;
	return 0;
fail:
	single_free(s);
	return r ? r : -EINVAL;
}

static void *pair_main(void *arg)
{
	struct single_pair *p = arg;

	loop_run(p->loop);
	return NULL;
}

int single_start(struct single *s)
{
	unsigned i;
	int r;

	for (i = 0; i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		if ((r = loop_new(&p->loop)))
			return r;
		p->lio.fd = p->lfd;
		p->lio.cb = pair_on_listener;
		p->uio.fd = p->ufd;
		p->uio.cb = pair_on_upstream;
		if (p->poll_listener && (r = loop_add(p->loop, &p->lio, EPOLLIN)))
			return r;
		if (p->poll_upstream && (r = loop_add(p->loop, &p->uio, EPOLLIN)))
			return r;
		timer_init(&p->tick, pair_on_tick);
		timer_init(&p->ctl, pair_on_ctl);
		timer_init(&p->cadence, pair_on_cadence);
		timer_arm(p->loop, &p->tick, SINGLE_TICK_MS);
		if (s->o.sync_pps && s->o.there.icmp && (s->o.single_flow || i == 0))
			timer_arm(p->loop, &p->cadence, 1);
	}
	for (i = 0; i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		if ((r = pthread_create(&p->thread, NULL, pair_main, p)))
			return -r;
		p->started = true;
	}
	return 0;
}

void single_stop(struct single *s)
{
	unsigned i;

	/* a pair sees the stop at its next watchdog tick: tell them all before waiting for one */
	for (i = 0; i < s->npairs; i++)
		if (s->pairs[i].started)
			loop_stop(s->pairs[i].loop);
	for (i = 0; i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		if (!p->started)
			continue;
		pthread_join(p->thread, NULL);
		p->started = false;
	}
}

void single_free(struct single *s)
{
	unsigned i;

	if (!s)
		return;
	single_stop(s);
	for (i = 0; s->pairs && i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		if (p->poll_listener && p->lfd >= 0)
			close(p->lfd);
		if (p->poll_upstream && p->ufd >= 0)
			close(p->ufd);
		if (p->loop)
			loop_free(p->loop);
		free(p->bufs);
	}
	for (i = 0; s->flows && i < s->nflows; i++) {
		free(s->flows[i].held);
		free(s->flows[i].held_reply);
	}
	if (s->exit_fd >= 0)
		close(s->exit_fd);
	free(s->pairs);
	free(s->flows);
	if (s->claims)
		pthread_mutex_destroy(&s->claim_mu);
	free(s->claims);
	free(s);
}

int single_set_upstream(struct single *s, const struct sockaddr_storage *addr)
{
	unsigned i;
	int r = 1;

	if (same_addr(addr, &s->o.there.addr))
		return 0;
	/* the data path reads the address under its flow's mutex: hold them all */
	for (i = 0; i < s->nflows; i++)
		pthread_mutex_lock(&s->flows[i].mu);
	s->o.there.addr = *addr;
	if (s->o.there.icmp)
		sockaddr_set_port((struct sockaddr *)&s->o.there.addr, 0);
	for (i = 0; i < s->npairs; i++) {
		struct single_pair *p = &s->pairs[i];
		if (p->poll_upstream && p->u_connected &&
		    connect(p->ufd, (const struct sockaddr *)&s->o.there.addr,
			    sockaddr_len((const struct sockaddr *)&s->o.there.addr)))
			r = -errno;
	}
	for (i = 0; i < s->nflows; i++)
		pthread_mutex_unlock(&s->flows[i].mu);
	return r;
}

int single_exit_fd(const struct single *s)
{
	return s->exit_fd;
}

unsigned single_pairs(const struct single *s)
{
	return s->npairs;
}

static void dir_sum(struct single_dir_stats *a, const struct single_dir_stats *b)
{
	a->pkts += CTR_GET(b->pkts);
	a->bytes += CTR_GET(b->bytes);
	a->bytes_max = MAX(a->bytes_max, CTR_GET(b->bytes_max));
	a->drops_oversize += CTR_GET(b->drops_oversize);
	a->latency_ns_sum += CTR_GET(b->latency_ns_sum);
	a->latency_ns_max = MAX(a->latency_ns_max, CTR_GET(b->latency_ns_max));
	a->queue_delay_ns_sum += CTR_GET(b->queue_delay_ns_sum);
	a->queue_delay_ns_max = MAX(a->queue_delay_ns_max, CTR_GET(b->queue_delay_ns_max));
	a->send_service_ns_sum += CTR_GET(b->send_service_ns_sum);
	a->send_service_ns_max = MAX(a->send_service_ns_max, CTR_GET(b->send_service_ns_max));
	a->errs += CTR_GET(b->errs);
	a->receive_errors += CTR_GET(b->receive_errors);
	a->user_send_errors += CTR_GET(b->user_send_errors);
	a->control_send_errors += CTR_GET(b->control_send_errors);
	a->admission_drops += CTR_GET(b->admission_drops);
	a->zero_resolution_samples += CTR_GET(b->zero_resolution_samples);
}

void single_stats_sum(const struct single *s, struct single_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < s->npairs; i++) {
		const struct single_pair *p = &s->pairs[i];
		dir_sum(&st->c2u, &p->st.c2u);
		dir_sum(&st->u2c, &p->st.u2c);
		for (int c = 0; c < SC_COUNT; c++)
			st->ctr[c] += CTR_GET(p->st.ctr[c]);
	}
}

static void local_of(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl))
		snprintf(buf, len, "?");
	else
		fmt_addr(&ss, buf, len);
}

void single_pair_view(struct single *s, unsigned i, struct single_pair_view *v)
{
	struct single_pair *p = &s->pairs[i];
	struct single_flow *f = p->flow;

	memset(v, 0, sizeof(*v));
	v->client_icmp = s->o.here.icmp;
	v->upstream_icmp = s->o.there.icmp;
	v->client_raw = s->o.here.icmp;
	v->upstream_raw = s->o.there.icmp && p->usock.raw;
	v->listener_connected = p->l_connected;
	v->upstream_connected = p->u_connected;
	local_of(p->lfd, v->listener_local, sizeof(v->listener_local));
	local_of(p->ufd, v->upstream_local, sizeof(v->upstream_local));
	fmt_addr(&s->o.there.addr, v->upstream_remote, sizeof(v->upstream_remote));
	pthread_mutex_lock(&f->mu);
	v->locked = f->locked;
	if (f->locked) {
		fmt_addr(&f->client, v->client, sizeof(v->client));
		if (s->o.here.icmp)
			snprintf(v->flow_key, sizeof(v->flow_key), "ICMP:%s source %u id %u", v->client,
				 f->ls.peer_source, f->ls.peer_echo);
		else
			snprintf(v->flow_key, sizeof(v->flow_key), "UDP:%s", v->client);
	}
	if (s->o.here.icmp && f->ls.bound) {
		v->icmp_client_rx_session = f->ls.cur.key.session;
		v->icmp_client_tx_session = f->ls.cur.key.session + 1;
	}
	if (s->o.there.icmp && f->up.state == ICMP_UP_READY) {
		v->icmp_up_tx_session = f->up.cur.key.session;
		v->icmp_up_rx_session = f->up.cur.key.session + 1;
		v->icmp_ready_sessions = 1 + (f->up.next_ready ? 1 : 0);
	}
	v->icmp_negotiating_sessions = (f->up.state == ICMP_UP_NEGOTIATING) + f->up.next_pending;
	v->icmp_draining_sessions = f->up.have_prev + f->ls.prev.active;
	v->icmp_handoffs = f->up.handoffs;
	v->icmp_pool_empty_stalls = f->up.pool_empty_stalls;
	v->icmp_negotiations_completed = f->up.negotiations_completed;
	v->icmp_retry_attempts = f->up.retry_attempts;
	v->icmp_resets_accepted = f->up.resets_accepted;
	v->icmp_resets_ignored = f->up.resets_ignored;
	v->icmp_challenges_created = f->ls.challenges_created;
	v->icmp_challenges_reused = f->ls.challenges_reused;
	v->icmp_challenges_consumed = f->ls.challenges_consumed;
	v->icmp_resets_rate_limited = f->ls.resets_rate_limited;
	pthread_mutex_unlock(&f->mu);
}

static void describe_line(void (*line)(const char *, void *), void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void describe_line(void (*line)(const char *, void *), void *arg, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	line(buf, arg);
}

void single_describe(const struct single *s, void (*line)(const char *text, void *arg), void *arg)
{
	const struct single_opts *o = &s->o;
	char l[64], r[64];
	const char *lp = o->here.icmp ? "ICMP" : "UDP", *rp = o->there.icmp ? "ICMP" : "UDP";

	local_of(s->pairs[0].lfd, l, sizeof(l));
	if (o->here.icmp) {
		/* the filter of an ICMP listener is address:listen id */
		struct sockaddr_storage ss = o->here.addr;
		sockaddr_set_port((struct sockaddr *)&ss, o->here.id);
		fmt_addr(&ss, l, sizeof(l));
	}
	{
		struct sockaddr_storage ss = o->there.addr;
		if (o->there.icmp)
			sockaddr_set_port((struct sockaddr *)&ss, s->up_echo_id);
		fmt_addr(&ss, r, sizeof(r));
	}
	describe_line(line, arg, "Listening on %s:%s, forwarding to upstream %s:%s; waiting for first client", lp, l, rp, r);
	describe_line(line, arg, "Timeout: %" PRIu64 "s, on-timeout: %s", o->timeout_ms / 1000,
		      o->on_timeout_exit ? "Exit" : "Drop");
	describe_line(line, arg, "ICMP reply-ID handshake timeout: %" PRIu64 "s", o->handshake_timeout_ms / 1000);
	if (o->here.icmp || o->there.icmp)
		describe_line(line, arg, "ICMP ready session pool target: %u per transmit leg", o->pool_size);
	describe_line(line, arg, "Workers: %u", s->npairs);
	describe_line(line, arg, "Listener worker socket policy: distribution=%s, reuse_address=false, reuse_port=%s",
		      s->npairs == 1 ? "single-socket" : o->here.icmp ? "shared-state" : "kernel-flow-affinity",
		      s->npairs > 1 && !o->here.icmp ? "true" : "false");
	if (o->single_flow) {
		describe_line(line, arg, "Worker flow mode: single-flow (worker-pair-local locked flows and worker-pair-local ICMP sync state)");
		if (s->npairs == 1)
			describe_line(line, arg, "single-flow with --workers 1 is valid but has no distribution benefit; flow ownership behaves like shared-flow");
	} else {
		describe_line(line, arg, "Worker flow mode: shared-flow (one global locked flow shared across worker pairs)");
	}
	if (!o->here.icmp && o->here.id == 0)
		describe_line(line, arg, "UDP listener bind: dynamic local port requested with --here UDP:host:0");
	if (o->here.icmp) {
		char req[32];
		if (o->here_reply_id == SINGLE_ID_UNSET)
			snprintf(req, sizeof(req), "Default");
		else if (o->here_reply_id == 0)
			snprintf(req, sizeof(req), "Wildcard");
		else
			snprintf(req, sizeof(req), "Fixed(%d)", o->here_reply_id);
		if (o->here.id == 0)
			describe_line(line, arg, "ICMP listener mode: wildcard-learn (listen id %u, requested client reply id %s)",
				      o->here.id, req);
		else
			describe_line(line, arg, "ICMP listener mode: fixed-id (listen id %u, requested client reply id %s)",
				      o->here.id, req);
	}
	if (!o->there.icmp)
		describe_line(line, arg, "UDP upstream destination: fixed remote port %u", o->there.id);
	else if (o->there.id == 0)
		describe_line(line, arg, "ICMP upstream mode: dynamic/wildcard local reply id (--there ICMP:host:0 advertises "
			      "the realized ping-socket id) (local id %u, remote id %u)", s->up_local_id, s->up_echo_id);
	else
		describe_line(line, arg, "ICMP upstream mode: fixed remote peer/listener id (local id %u, remote id %u, "
			      "source id %u, reply id %u, %s socket)", s->up_local_id, s->up_echo_id, s->up_source_id,
			      s->up_reply_id, s->up_raw ? "RAW" : "DGRAM");
	describe_line(line, arg, "Client socket mode after lock: %s",
		      o->here.icmp ? "unconnected (policy)" : o->client_unconnected ? "unconnected (debug)" : "connected (default)");
	describe_line(line, arg, "Upstream socket mode: %s",
		      o->upstream_unconnected ? "unconnected (debug)" : "connected (default)");
	if (o->sync_pps && o->there.icmp)
		describe_line(line, arg, "ICMP sync pace: global total best-effort target %u packet(s)/s shared across all "
			      "workers and flows", o->sync_pps);
}
