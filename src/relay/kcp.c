/*
 * TCP over KCP; see kcp.h for the shapes. This file owns the sockets, the sessions and
 * the streams; the protocol work is in proto/ (kcp, smux, snappy framing, secure) and the
 * outer layers in transport/kcp_link.c.
 *
 * A session: one KCP conversation with one peer. Up (TCP -> peer): a stream reads its
 * socket only while KCP accepts writes (kcp_writable, kcp-go's backpressure) and, with smux
 * v2, while the peer's stream window has room; each read becomes one PSH frame. Control
 * frames (SYN, FIN, UPD, NOP) that find KCP full wait in a small per-session queue that is
 * always sent before new data, which keeps every stream's frames in order.
 * Down (peer -> TCP): bytes from kcp_recv go through the snappy reader (kcptun
 * compression) into the smux parser; PSH payload is written straight to the stream's
 * socket, the rest buffered up to --streambuf; when a buffer is full the parser stops and
 * the session waits for that socket (smux v1 head-of-line blocking; with v2 the window we
 * advertise is that buffer, so a well-behaved peer never fills it).
 *
 * Close: without half-close (kcptun, spec §2.7) a stream ends as soon as either side is
 * done; with half-close (ferry to ferry, §3.11) a FIN ends one direction only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "core/log.h"
#include "core/util.h"
#include "net/endpoint.h"
#include "net/sock.h"
#include "proto/kcp.h"
#include "proto/secure.h"
#include "proto/smux.h"
#include "proto/snappy_frame.h"
#include "relay/kcp.h"
#include "relay/sess_table.h"
#include "relay/worker.h"
#include "transport/kcp_link.h"

/* PSH payload per frame: one read of a TCP socket (kcptun uses 4096; smux accepts 65535). */
#define KCP_FRAME_BYTES 8192
/* Bytes taken from KCP per kcp_recv into the session's parse buffer. */
#define KCP_RX_BYTES 65536
/* Datagrams read per wake-up before other events get a turn. */
#define KCP_RX_BATCH 64
/* How long a server keeps a session that no frame arrived on (smux KeepAliveTimeout). */
#define KCP_KEEPALIVE_TIMEOUT_MS SMUX_KEEPALIVE_TIMEOUT_MS
/* Datagrams queued for sendmmsg() per worker (a KCP flush may emit a whole window). */
#define KCP_TXQ_PKTS 64

#define STREAM_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

struct ksess;

/* This worker's state for one kcp rule. */
struct kcp_rule_ctx {
	struct list link;		/* in worker->kcp_rules */
	struct worker *w;
	struct rule *rule;		/* a reference */
	struct rule_stats *st;
	bool server;
	struct io io;			/* server: the UDP socket; client: fd -1 */
	struct list sessions;
	uint32_t nsessions;		/* open (in sessions) */
	uint32_t nalloc;		/* not freed yet: closed ones wait for the end of the loop iteration */
	uint32_t quota;			/* server: this worker's share of --max-sessions (as udp:// rules) */
	struct sess_table table;	/* server, kcptun/plain: sessions by client address */
	struct ksess *cur;		/* client: the session new streams go into */
	struct kcp_link_env env;
	struct kcp_pool *pool;
	struct kcp_params kp;
	bool stopped;
	struct defer gone;
	uint8_t frame[SMUX_HDR_BYTES + KCP_FRAME_BYTES];
	uint8_t *zbuf;			/* snappy output for one frame */
	uint8_t pkt[KCP_LINK_PKT_MAX];
	uint8_t plain[KCP_LINK_PKT_MAX];
	size_t plain_len;
};

struct kstream {
	struct list link;		/* in ksess->streams */
	struct ksess *s;
	uint32_t sid;
	struct io io;
	struct timer ctimer;		/* connect timeout (server), then --idle-timeout */
	uint64_t last_active_ms;
	bool connecting;
	bool readable;			/* edge-triggered: the socket may have data */
	bool tcp_eof;			/* read 0: the TCP side finished sending */
	bool fin_sent, fin_rcvd, shut_wr;
	bool upd_due;
	uint8_t *buf;			/* down: bytes for the TCP side not written yet */
	uint32_t buf_len, buf_off, buf_cap;
	struct smux_flow flow;
	unsigned addr_idx;
	bool dead;			/* closed; freed at the end of the loop iteration */
	struct defer gone;
};

struct ksess {
	struct list link;		/* in ctx->sessions */
	struct kcp_rule_ctx *c;
	struct sess_node node;		/* server, by address */
	bool in_table;
	struct io io;			/* client: its own connected UDP socket */
	struct sockaddr_storage peer;
	char peer_text[64];
	uint32_t conv;
	struct kcp *kcp;
	struct kcp_link wire;
	bool compress;
	struct snappy_enc zenc;
	struct snappy_dec *zdec;
	struct smux_parser parser;
	uint8_t smuxver;
	bool half_close;
	bool established;		/* secure: keys confirmed; others: at once */
	bool stalled;			/* down: a stream's buffer is full */
	bool closing;
	bool saw_refused, saw_foreign;	/* client diagnostics for a failed handshake */
	struct list streams;
	uint32_t nstreams;
	uint64_t buffered;		/* down bytes held in stream buffers (≤ --smuxbuf) */
	uint32_t next_sid;
	uint8_t *ctl;			/* control frames waiting for KCP room */
	size_t ctl_len, ctl_cap;
	uint8_t *rx;
	size_t rx_len, rx_off;
	uint64_t last_rx_ms, last_tx_ms;
	struct timer timer;
	struct defer gone;
	struct kcp_stats reported;	/* what was already added to the rule counters */
	uint64_t reported_fec;
	bool counted;			/* in the rule's kcp_sessions */
	bool stale_conv;		/* input carried another conv (kcp_input said -ESTALE) */
	uint32_t stale_conv_id, stale_sn;
};

static void sess_close(struct ksess *s, const char *why);
static void sess_kick(struct ksess *s);
static void stream_close(struct kstream *st, bool reset);
static void stream_pump_up(struct kstream *st);
static void stream_arm_idle(struct kstream *st);

/* kcptun's snappy framing wraps the smux stream unless --nocomp (spec §2.6). */
static bool kcp_compressed(const struct kcp_opts *k)
{
	return k->profile == KCP_PROFILE_KCPTUN && !k->nocomp;
}

static uint64_t now_ms(const struct kcp_rule_ctx *c)
{
	return loop_now(c->w->loop);
}

/* Rule counters: up = client -> target. The TCP side is the client on a client rule and
 * the target on a server rule. */
static void count_to_tcp(struct kcp_rule_ctx *c, uint64_t n)
{
	if (c->server)
		CTR_ADD(c->st->bytes_up, n);
	else
		CTR_ADD(c->st->bytes_down, n);
}

static void count_from_tcp(struct kcp_rule_ctx *c, uint64_t n)
{
	if (c->server)
		CTR_ADD(c->st->bytes_down, n);
	else
		CTR_ADD(c->st->bytes_up, n);
}

static uint64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- wire output ----
 *
 * A KCP flush emits up to a window of datagrams at once, so they are queued per worker and
 * sent with one sendmmsg() per socket at the end of the loop iteration (or when the queue is
 * full). The queue is emptied before any socket it may name is closed, so a queued datagram
 * can never go out on a reused descriptor.
 */
struct kcp_txq {
	struct defer flush;
	struct loop *loop;
	unsigned n;
	int fd[KCP_TXQ_PKTS];
	struct rule_stats *st[KCP_TXQ_PKTS];
	struct sockaddr_storage to[KCP_TXQ_PKTS];
	struct iovec iov[KCP_TXQ_PKTS];
	struct mmsghdr msg[KCP_TXQ_PKTS];
	uint8_t buf[KCP_TXQ_PKTS][KCP_LINK_PKT_MAX];
};

static void txq_flush(struct kcp_txq *q)
{
	unsigned i = 0;

	while (i < q->n) {
		unsigned j = i + 1;
		int sent;

		while (j < q->n && q->fd[j] == q->fd[i])
			j++;
		sent = sendmmsg(q->fd[i], &q->msg[i], j - i, MSG_DONTWAIT);
		if (sent < 0) {
			/* a full buffer or a local filter (EPERM) is a lost datagram: KCP resends (§1.15) */
			CTR_ADD(q->st[i]->drops[DROP_SEND_ERROR], 1);
			sent = 1;
		}
		i += (unsigned)sent;
	}
	q->n = 0;
}

static void txq_on_flush(struct defer *d)
{
	txq_flush(container_of(d, struct kcp_txq, flush));
}

static struct kcp_txq *txq_get(struct worker *w)
{
	struct kcp_txq *q = w->kcp_txq;

	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return NULL;
		q->loop = w->loop;
		for (unsigned i = 0; i < KCP_TXQ_PKTS; i++) {
			q->iov[i].iov_base = q->buf[i];
			q->msg[i].msg_hdr.msg_iov = &q->iov[i];
			q->msg[i].msg_hdr.msg_iovlen = 1;
		}
		w->kcp_txq = q;
	}
	return q;
}

/* Sends what is queued now: before a socket closes. */
static void txq_drain(struct worker *w)
{
	if (w->kcp_txq && w->kcp_txq->n)
		txq_flush(w->kcp_txq);
}

void kcp_worker_cleanup(struct worker *w)
{
	free(w->kcp_txq);
	w->kcp_txq = NULL;
}

static void sess_tx(void *ctx, const uint8_t *pkt, size_t n)
{
	struct ksess *s = ctx;
	struct kcp_rule_ctx *c = s->c;
	struct kcp_txq *q = txq_get(c->w);
	unsigned i;

	if (!q || n > KCP_LINK_PKT_MAX) {
		CTR_ADD(c->st->drops[DROP_SEND_ERROR], 1);
		return;
	}
	if (q->n == KCP_TXQ_PKTS)
		txq_flush(q);
	i = q->n++;
	memcpy(q->buf[i], pkt, n);
	q->iov[i].iov_len = n;
	q->st[i] = c->st;
	if (c->server) {
		socklen_t len = sockaddr_len((const struct sockaddr *)&s->peer);

		q->fd[i] = c->io.fd;
		memcpy(&q->to[i], &s->peer, len);
		q->msg[i].msg_hdr.msg_name = &q->to[i];
		q->msg[i].msg_hdr.msg_namelen = len;
	} else {
		q->fd[i] = s->io.fd;
		q->msg[i].msg_hdr.msg_name = NULL;
		q->msg[i].msg_hdr.msg_namelen = 0;
	}
	loop_defer(c->w->loop, &q->flush, txq_on_flush);
}

static void sess_kcp_out(void *ctx, uint8_t *buf, size_t len)
{
	struct ksess *s = ctx;

	kcp_link_send(&s->wire, (uint32_t)now_ms(s->c), buf, len, sess_tx, s);
}

/* ---- smux output ---- */

static int ctl_append(struct ksess *s, const uint8_t *p, size_t n)
{
	if (s->ctl_len + n > s->ctl_cap) {
		size_t cap = s->ctl_cap ? s->ctl_cap * 2 : 256;
		uint8_t *q;

		while (cap < s->ctl_len + n)
			cap *= 2;
		q = realloc(s->ctl, cap);
		if (!q)
			return -ENOMEM;
		s->ctl = q;
		s->ctl_cap = cap;
	}
	memcpy(s->ctl + s->ctl_len, p, n);
	s->ctl_len += n;
	return 0;
}

/* Hands bytes of the smux stream to KCP, through the snappy writer when compressing. */
static void sess_write(struct ksess *s, const uint8_t *p, size_t n)
{
	if (s->compress) {
		size_t z = snappy_frame_encode(&s->zenc, p, n, s->c->zbuf);

		kcp_send(s->kcp, s->c->zbuf, z);
	} else {
		kcp_send(s->kcp, p, n);
	}
	s->last_tx_ms = now_ms(s->c);
}

static bool sess_can_send(const struct ksess *s)
{
	return s->established && !s->closing && kcp_writable(s->kcp);
}

static void ctl_flush(struct ksess *s)
{
	if (!s->ctl_len || !s->established || !kcp_writable(s->kcp))
		return;
	sess_write(s, s->ctl, s->ctl_len);
	s->ctl_len = 0;
}

/* A frame without payload (or a UPD): goes out now if nothing waits before it. */
static void sess_ctl(struct ksess *s, const uint8_t *frame, size_t n)
{
	if (!s->ctl_len && s->established && kcp_writable(s->kcp)) {
		sess_write(s, frame, n);
		return;
	}
	if (ctl_append(s, frame, n)) {
		/* closing here could free the stream our caller is working on: let the timer do it */
		log_error("%s: %s: out of memory, closing the session", s->c->rule->desc, s->peer_text);
		s->closing = true;
		timer_arm(s->c->w->loop, &s->timer, 0);
	}
}

static void sess_send_cmd(struct ksess *s, uint8_t cmd, uint32_t sid)
{
	uint8_t h[SMUX_HDR_BYTES];

	smux_hdr_write(h, s->smuxver, cmd, 0, sid);
	sess_ctl(s, h, sizeof(h));
}

static void stream_send_upd(struct kstream *st)
{
	uint8_t f[SMUX_HDR_BYTES + SMUX_UPD_BYTES];

	smux_upd_write(f, st->s->smuxver, st->sid, st->flow.consumed, st->flow.window);
	sess_ctl(st->s, f, sizeof(f));
	smux_flow_upd_sent(&st->flow);
}

/* ---- streams ---- */

static struct kstream *stream_find(struct ksess *s, uint32_t sid)
{
	struct list *it;

	list_for_each(it, &s->streams) {
		struct kstream *st = container_of(it, struct kstream, link);

		if (st->sid == sid)
			return st;
	}
	return NULL;
}

static struct kstream *stream_new(struct ksess *s, uint32_t sid, int fd)
{
	struct kstream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->s = s;
	st->sid = sid;
	st->io.fd = fd;
	smux_flow_init(&st->flow, s->c->rule->o.kcp.streambuf);
	list_add(&s->streams, &st->link);
	s->nstreams++;
	s->c->w->nconns++;
	return st;
}

static void stream_release(struct defer *d)
{
	free(container_of(d, struct kstream, gone));
}

/* Closes everything now; the memory waits for the end of the loop iteration because an
 * epoll event for this stream may still be queued in the current batch. */
static void stream_free(struct kstream *st)
{
	struct ksess *s = st->s;
	struct kcp_rule_ctx *c = s->c;

	timer_cancel(c->w->loop, &st->ctimer);
	if (st->io.fd >= 0) {
		loop_del(c->w->loop, &st->io);
		close(st->io.fd);
		st->io.fd = -1;
	}
	list_del(&st->link);
	s->nstreams--;
	s->buffered -= st->buf_len;
	st->buf_len = 0;
	free(st->buf);
	st->buf = NULL;
	st->dead = true;
	CTR_ADD(c->st->closed, 1);
	__atomic_sub_fetch(&c->rule->active, 1, __ATOMIC_RELAXED);
	loop_defer(c->w->loop, &st->gone, stream_release);
	c->w->nconns--;
	/* draining after a stop: a session is done with its last stream */
	if (c->stopped && !s->nstreams && !s->closing)
		timer_arm(c->w->loop, &s->timer, 0);
	worker_conn_gone(c->w);
}

/* Ends a stream: tells the peer (unless it already knows) and closes the socket. */
static void stream_close(struct kstream *st, bool reset)
{
	if (!st->fin_sent && !st->s->closing) {
		st->fin_sent = true;
		sess_send_cmd(st->s, SMUX_CMD_FIN, st->sid);
	}
	if (reset && st->io.fd >= 0) {
		loop_del(st->s->c->w->loop, &st->io);
		sock_close_reset(st->io.fd);
		st->io.fd = -1;
	}
	stream_free(st);
}

/* Whether the stream is over: both FINs with half-close, either one without (kcptun), and
 * everything that arrived written out. */
static bool stream_done(const struct kstream *st)
{
	if (st->buf_len)
		return false;
	if (!st->s->half_close)
		return st->fin_rcvd || st->fin_sent;
	return st->fin_sent && st->fin_rcvd;
}

/*
 * After a FIN went either way or the buffer drained: once the peer's data is out, end our
 * write side (peer's FIN), and close the stream when it is over. True if st was freed.
 */
static bool stream_settle(struct kstream *st)
{
	if (st->buf_len || st->connecting)
		return false;
	if (st->fin_rcvd && !st->shut_wr && st->io.fd >= 0) {
		shutdown(st->io.fd, SHUT_WR);
		st->shut_wr = true;
	}
	if (!stream_done(st))
		return false;
	stream_close(st, false);
	return true;
}

/* Writes buffered down bytes to the TCP side; true if the stream was closed (freed). */
static bool stream_flush(struct kstream *st)
{
	struct kcp_rule_ctx *c = st->s->c;

	while (st->buf_len) {
		ssize_t w = send(st->io.fd, st->buf + st->buf_off, st->buf_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return false;
			stream_close(st, true);
			return true;
		}
		st->buf_off += (uint32_t)w;
		st->buf_len -= (uint32_t)w;
		st->s->buffered -= (uint64_t)w;
		st->last_active_ms = now_ms(c);
		count_to_tcp(c, (uint64_t)w);
		if (smux_flow_on_read(&st->flow, (uint32_t)w))
			st->upd_due = true;
	}
	st->buf_off = 0;
	if (st->buf_cap > KCP_FRAME_BYTES) {
		/* an idle stream does not keep a big buffer */
		free(st->buf);
		st->buf = NULL;
		st->buf_cap = 0;
	}
	if (st->upd_due && st->s->smuxver == 2) {
		st->upd_due = false;
		stream_send_upd(st);
	}
	return stream_settle(st);
}

/* Up: reads the TCP side into PSH frames while KCP and the peer's window take them. */
static void stream_pump_up(struct kstream *st)
{
	struct ksess *s = st->s;
	struct kcp_rule_ctx *c = s->c;
	bool wrote = false;

	while (st->readable && !st->tcp_eof && !st->fin_sent && !st->connecting && !s->ctl_len &&
	       sess_can_send(s)) {
		size_t room = KCP_FRAME_BYTES;
		ssize_t n;

		if (s->smuxver == 2) {
			uint32_t r = smux_flow_send_room(&st->flow);

			if (!r)
				break;
			room = MIN(room, (size_t)r);
		}
		n = recv(st->io.fd, c->frame + SMUX_HDR_BYTES, room, MSG_DONTWAIT);
		if (n > 0) {
			smux_hdr_write(c->frame, s->smuxver, SMUX_CMD_PSH, (uint16_t)n, st->sid);
			sess_write(s, c->frame, SMUX_HDR_BYTES + (size_t)n);
			smux_flow_on_written(&st->flow, (uint32_t)n);
			count_from_tcp(c, (uint64_t)n);
			st->last_active_ms = now_ms(c);
			wrote = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			st->readable = false;
			break;
		}
		/* EOF, or an error (reset): the peer learns with a FIN (smux has no reset) */
		st->tcp_eof = true;
		st->fin_sent = true;
		sess_send_cmd(s, SMUX_CMD_FIN, st->sid);
		if (n < 0)
			stream_close(st, true);
		else
			stream_settle(st);	/* kcptun: over once what arrived is written out */
		break;
	}
	if (wrote)
		kcp_flush(s->kcp, (uint32_t)now_ms(c));
}

static void stream_on_io(struct io *io, uint32_t ev)
{
	struct kstream *st = container_of(io, struct kstream, io);
	struct ksess *s = st->s;

	if (st->dead)
		return;
	if (st->connecting) {
		int err = sock_error(io->fd);

		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			char a[64];

			sockaddr_format((const struct sockaddr *)&s->c->rule->target.addrs[st->addr_idx], a, sizeof(a));
			LOG_RL(LOG_WARN, "%s: stream %u: connect %s: %s", s->c->rule->desc, st->sid, a,
			       strerror(err ? err : ECONNREFUSED));
			CTR_ADD(s->c->st->drops[DROP_CONNECT_FAILED], 1);
			CTR_ADD(s->c->st->failed, 1);
			stream_close(st, true);
			return;
		}
		if (!(ev & EPOLLOUT))
			return;
		st->connecting = false;
		timer_cancel(s->c->w->loop, &st->ctimer);
		sock_tcp_keepalive(io->fd, &s->c->rule->o.sock);
		st->last_active_ms = now_ms(s->c);
		stream_arm_idle(st);
	}
	if (ev & EPOLLOUT) {
		if (st->buf_len ? stream_flush(st) : stream_settle(st))
			goto kick;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		st->readable = true;
		stream_pump_up(st);
	}
kick:
	if (s->stalled)
		sess_kick(s);
}

/* --idle-timeout: the deadline moves with traffic, checked when the timer fires. */
static void stream_arm_idle(struct kstream *st)
{
	uint32_t idle = st->s->c->rule->o.idle_timeout_ms;

	if (idle)
		timer_arm_at(st->s->c->w->loop, &st->ctimer, st->last_active_ms + idle);
}

static void stream_on_timer(struct timer *t)
{
	struct kstream *st = container_of(t, struct kstream, ctimer);
	struct kcp_rule_ctx *c = st->s->c;
	uint32_t idle = c->rule->o.idle_timeout_ms;

	if (st->connecting) {
		LOG_RL(LOG_WARN, "%s: stream %u: connect timed out", c->rule->desc, st->sid);
		CTR_ADD(c->st->drops[DROP_CONNECT_TIMEOUT], 1);
		CTR_ADD(c->st->failed, 1);
		stream_close(st, true);
		return;
	}
	if (idle && now_ms(c) - st->last_active_ms >= idle) {
		log_debug("%s: stream %u: closing after --idle-timeout", c->rule->desc, st->sid);
		stream_close(st, false);
		return;
	}
	stream_arm_idle(st);
}

/* Server: the peer opened stream sid; connect it to the target. */
static void stream_open_upstream(struct ksess *s, uint32_t sid)
{
	struct kcp_rule_ctx *c = s->c;
	struct rule *r = c->rule;
	struct kstream *st;
	int fd, err;

	CTR_ADD(c->st->accepted, 1);
	if (s->nstreams >= r->o.kcp.max_streams ||
	    __atomic_add_fetch(&r->active, 1, __ATOMIC_RELAXED) > r->o.max_conns) {
		if (s->nstreams < r->o.kcp.max_streams)
			__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
		CTR_ADD(c->st->drops[s->nstreams >= r->o.kcp.max_streams ? DROP_MAX_STREAMS : DROP_MAX_CONNS], 1);
		CTR_ADD(c->st->closed, 1);
		LOG_RL(LOG_WARN, "%s: %s: stream %u refused: limit reached", r->desc, s->peer_text, sid);
		sess_send_cmd(s, SMUX_CMD_FIN, sid);
		return;
	}
	err = sock_tcp_connect_nokeepalive((const struct sockaddr *)&r->target.addrs[0], &r->o.sock, &fd);
	if (err) {
		__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
		CTR_ADD(c->st->drops[err == -EMFILE || err == -ENFILE ? DROP_NO_FDS : DROP_CONNECT_FAILED], 1);
		CTR_ADD(c->st->failed, 1);
		CTR_ADD(c->st->closed, 1);
		LOG_RL(LOG_WARN, "%s: stream %u: connect: %s", r->desc, sid, strerror(-err));
		sess_send_cmd(s, SMUX_CMD_FIN, sid);
		return;
	}
	st = stream_new(s, sid, fd);
	if (!st) {
		close(fd);
		__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
		CTR_ADD(c->st->drops[DROP_NO_MEMORY], 1);
		CTR_ADD(c->st->closed, 1);
		sess_send_cmd(s, SMUX_CMD_FIN, sid);
		return;
	}
	st->connecting = true;
	st->io.cb = stream_on_io;
	timer_init(&st->ctimer, stream_on_timer);
	timer_arm(c->w->loop, &st->ctimer, r->o.connect_timeout_ms);
	if (loop_add(c->w->loop, &st->io, STREAM_EVENTS))
		stream_close(st, true);
}

/* ---- smux input ---- */

static int on_frame(void *ctx, const struct smux_hdr *h, uint32_t consumed, uint32_t window)
{
	struct ksess *s = ctx;
	struct kstream *st;

	switch (h->cmd) {
	case SMUX_CMD_SYN:
		if (s->c->server && !stream_find(s, h->sid))
			stream_open_upstream(s, h->sid);
		return 0;
	case SMUX_CMD_FIN:
		st = stream_find(s, h->sid);
		if (st && !st->fin_rcvd) {
			st->fin_rcvd = true;
			if (!s->half_close && !st->fin_sent) {
				/* kcptun: the far side closed the whole stream; answer in kind */
				st->fin_sent = true;
				sess_send_cmd(s, SMUX_CMD_FIN, st->sid);
			}
			stream_settle(st);
		}
		return 0;
	case SMUX_CMD_UPD:
		st = stream_find(s, h->sid);
		if (!st)
			return 0;
		if (smux_flow_on_upd(&st->flow, consumed, window))
			return -EPROTO;
		stream_pump_up(st);
		return 0;
	default:	/* PSH header, NOP */
		return 0;
	}
}

static size_t on_data(void *ctx, uint32_t sid, const uint8_t *p, size_t n)
{
	struct ksess *s = ctx;
	struct kstream *st = stream_find(s, sid);
	size_t took = 0;

	if (!st || st->fin_rcvd || st->shut_wr || st->io.fd < 0)
		return n;	/* a stream we closed: its data is discarded (§2.7) */
	if (!st->buf_len && !st->connecting) {
		ssize_t w = send(st->io.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			stream_close(st, true);
			return n;
		}
		if (w > 0) {
			took = (size_t)w;
			st->last_active_ms = now_ms(s->c);
			count_to_tcp(s->c, (uint64_t)w);
			if (smux_flow_on_read(&st->flow, (uint32_t)w) && s->smuxver == 2)
				stream_send_upd(st);
		}
	}
	if (took < n) {
		const struct kcp_opts *k = &s->c->rule->o.kcp;
		uint32_t cap = k->streambuf;
		size_t space, want = n - took;

		if (st->buf_off && st->buf_len) {
			memmove(st->buf, st->buf + st->buf_off, st->buf_len);
			st->buf_off = 0;
		} else if (!st->buf_len) {
			st->buf_off = 0;
		}
		space = cap > st->buf_len ? cap - st->buf_len : 0;
		space = MIN(space, k->smuxbuf > s->buffered ? k->smuxbuf - s->buffered : 0);
		want = MIN(want, space);
		if (st->buf_len + want > st->buf_cap) {
			uint32_t ncap = st->buf_cap ? st->buf_cap : 16384;
			uint8_t *q;

			while (ncap < st->buf_len + want)
				ncap *= 2;
			ncap = MIN(ncap, MAX(cap, 16384u));
			q = realloc(st->buf, ncap);
			if (!q)
				return took;
			st->buf = q;
			st->buf_cap = ncap;
		}
		memcpy(st->buf + st->buf_len, p + took, want);
		st->buf_len += (uint32_t)want;
		s->buffered += want;
		took += want;
	}
	if (took < n)
		s->stalled = true;
	return took;
}

static const struct smux_handler smux_cb = { .frame = on_frame, .data = on_data };

/* Down: everything KCP has in order goes through the parser, as far as streams take it. */
static void sess_pump_down(struct ksess *s)
{
	struct kcp_rule_ctx *c = s->c;
	struct smux_handler h = smux_cb;

	h.ctx = s;
	s->stalled = false;
	while (!s->closing) {
		const uint8_t *p;
		size_t n;
		ssize_t took;

		if (s->compress && (n = snappy_dec_pending(s->zdec, &p)) > 0) {
			took = smux_feed(&s->parser, &h, p, n);
			if (took < 0)
				goto proto;
			snappy_dec_take(s->zdec, (size_t)took);
			if ((size_t)took < n)
				return;	/* a stream is full */
			s->last_rx_ms = now_ms(c);
			continue;
		}
		if (s->rx_off == s->rx_len) {
			int got = kcp_recv(s->kcp, s->rx, KCP_RX_BYTES);

			if (got <= 0)
				return;
			s->rx_len = (size_t)got;
			s->rx_off = 0;
		}
		if (s->compress) {
			took = snappy_dec_feed(s->zdec, s->rx + s->rx_off, s->rx_len - s->rx_off);
			if (took < 0) {
				LOG_RL(LOG_WARN, "%s: %s: bad snappy stream (is --nocomp the same on both sides?)",
				       c->rule->desc, s->peer_text);
				CTR_ADD(c->st->drops[DROP_PROTOCOL], 1);
				sess_close(s, "compression error");
				return;
			}
			s->rx_off += (size_t)took;
			continue;
		}
		took = smux_feed(&s->parser, &h, s->rx + s->rx_off, s->rx_len - s->rx_off);
		if (took < 0)
			goto proto;
		s->last_rx_ms = now_ms(c);
		s->rx_off += (size_t)took;
		if (s->rx_off < s->rx_len)
			return;
	}
	return;
proto:
	LOG_RL(LOG_WARN, "%s: %s: smux protocol error (%s; are --smuxver and --nocomp the same on both sides?)",
	       c->rule->desc, s->peer_text, smux_err_name(smux_parser_reason(&s->parser)));
	CTR_ADD(c->st->drops[DROP_PROTOCOL], 1);
	sess_close(s, "protocol error");
}

/* ---- session timers and life ---- */

static void sess_report(struct ksess *s)
{
	const struct kcp_stats *k = kcp_stats(s->kcp);
	struct rule_stats *rs = s->c->st;
	uint64_t rate = kcp_rate_estimate(s->kcp);

	CTR_ADD(rs->kcp_retrans, k->retrans - s->reported.retrans);
	CTR_ADD(rs->kcp_fast_retrans, k->fast_retrans - s->reported.fast_retrans);
	CTR_ADD(rs->kcp_lost, k->lost - s->reported.lost);
	CTR_ADD(rs->kcp_out_segs, k->out_segs - s->reported.out_segs);
	CTR_ADD(rs->kcp_fec_recovered, s->wire.st.fec_recovered - s->reported_fec);
	s->reported_fec = s->wire.st.fec_recovered;
	if (kcp_srtt(s->kcp) > 0)
		__atomic_store_n(&rs->kcp_srtt_ms, (uint32_t)kcp_srtt(s->kcp), __ATOMIC_RELAXED);
	if (rate)
		__atomic_store_n(&rs->kcp_rate_bps, rate, __ATOMIC_RELAXED);
	s->reported = *k;
}

static void sess_arm(struct ksess *s)
{
	struct kcp_rule_ctx *c = s->c;
	uint64_t now = now_ms(c);
	uint32_t now32 = (uint32_t)now;
	uint64_t next = now + (uint32_t)(kcp_check(s->kcp, now32) - now32);
	uint64_t ka = s->last_tx_ms + c->rule->o.kcp.keepalive_s * 1000ull;

	if (s->established)
		next = MIN(next, ka);
	if (s->wire.sec) {
		uint32_t sn = secure_next_ms(s->wire.sec, now32);

		next = MIN(next, now + (uint32_t)(sn - now32));
	}
	timer_arm_at(c->w->loop, &s->timer, MAX(next, now));
}

static void sess_on_timer(struct timer *t)
{
	struct ksess *s = container_of(t, struct ksess, timer);
	struct kcp_rule_ctx *c = s->c;
	uint64_t now = now_ms(c);
	uint32_t sn;

	/* draining: a session without streams goes once the peer has everything (rate
	 * control may still hold echoed data, FINs or a CLOSE in KCP's queue) */
	if (s->closing || (c->stopped && !s->nstreams && !kcp_waitsnd(s->kcp))) {
		sess_close(s, NULL);
		return;
	}
	if (s->wire.sec) {
		secure_tick(s->wire.sec, (uint32_t)now, unix_ms());
		if (s->closing)
			return;
		if (secure_state(s->wire.sec) >= SECURE_FAILED) {
			sess_close(s, NULL);
			return;
		}
	}
	if (s->established && now - s->last_rx_ms > KCP_KEEPALIVE_TIMEOUT_MS && !s->stalled) {
		CTR_ADD(c->st->drops[DROP_DEAD_LINK], 1);
		sess_close(s, "no frame from the peer for 30 s (keepalive timeout)");
		return;
	}
	if (s->established && now >= s->last_tx_ms + c->rule->o.kcp.keepalive_s * 1000ull)
		sess_send_cmd(s, SMUX_CMD_NOP, 0);
	if (s->established)
		kcp_update(s->kcp, (uint32_t)now);
	if (kcp_is_dead(s->kcp, &sn)) {
		log_warn("%s: kcp conv=%08x: dead link (sn=%u sent %u times)", c->rule->desc, s->conv, sn,
			 c->kp.dead_link);
		CTR_ADD(c->st->drops[DROP_DEAD_LINK], 1);
		sess_close(s, NULL);
		return;
	}
	sess_report(s);
	sess_arm(s);
}

/* After input or room in KCP: move what can move, then reschedule. */
static void sess_kick(struct ksess *s)
{
	struct list *it, *tmp;

	if (s->closing)
		return;
	sess_pump_down(s);
	if (s->closing)
		return;
	ctl_flush(s);
	list_for_each_safe(it, tmp, &s->streams) {
		struct kstream *st = container_of(it, struct kstream, link);

		if (!sess_can_send(s) || s->ctl_len)
			break;
		if (st->readable)
			stream_pump_up(st);
	}
	if (!s->closing)
		sess_arm(s);
}

static void ctx_maybe_free(struct kcp_rule_ctx *c);

/*
 * Runs at the end of the loop iteration that closed the session, when no callback can
 * still be inside its KCP or secure state. The rule context lives until its last
 * session is freed.
 */
static void sess_free(struct defer *d)
{
	struct ksess *s = container_of(d, struct ksess, gone);
	struct kcp_rule_ctx *c = s->c;
	struct worker *w = c->w;

	if (s->wire.sec)
		secure_sess_free(s->wire.sec);
	kcp_link_destroy(&s->wire);
	if (s->kcp)
		kcp_free(s->kcp);
	if (s->zdec)
		snappy_dec_free(s->zdec);
	free(s->ctl);
	free(s->rx);
	free(s);
	c->nalloc--;
	w->nconns--;
	ctx_maybe_free(c);
	worker_conn_gone(w);
}

/* why != NULL: logged at info. Streams are reset: their peers cannot be told more. */
static void sess_close(struct ksess *s, const char *why)
{
	struct kcp_rule_ctx *c = s->c;
	struct list *it, *tmp;

	if (s->gone.queued)
		return;
	/* last words (FINs, a CLOSE) go out before the socket closes */
	if (s->established && !s->closing) {
		ctl_flush(s);
		kcp_unpace(s->kcp);	/* there is no later for paced segments */
		kcp_flush(s->kcp, (uint32_t)now_ms(c));
	}
	s->closing = true;
	if (why)
		log_info("%s: session %s conv=%08x closed: %s", c->rule->desc, s->peer_text, s->conv, why);
	list_for_each_safe(it, tmp, &s->streams)
		stream_close(container_of(it, struct kstream, link), true);
	if (s->wire.sec && secure_state(s->wire.sec) == SECURE_ESTABLISHED)
		secure_close(s->wire.sec, 0);
	sess_report(s);
	timer_cancel(c->w->loop, &s->timer);
	if (s->io.fd >= 0) {
		txq_drain(c->w);
		loop_del(c->w->loop, &s->io);
		close(s->io.fd);
		s->io.fd = -1;
	}
	if (s->in_table)
		sess_table_remove(&c->table, &s->node);
	s->in_table = false;
	if (c->cur == s)
		c->cur = NULL;
	list_del(&s->link);
	c->nsessions--;
	if (s->counted)
		CTR_ADD(c->st->kcp_sessions_closed, 1);
	loop_defer(c->w->loop, &s->gone, sess_free);
}

/* ---- secure channel events ---- */

static void sess_sec_event(void *ctx, const struct secure_event *ev)
{
	struct ksess *s = ctx;
	struct kcp_rule_ctx *c = s->c;
	const struct kcp_opts *k = &c->rule->o.kcp;

	switch (ev->type) {
	case SECURE_EV_HANDSHAKE_OK:
		if (s->established)
			break;
		s->established = true;
		s->half_close = (secure_flags(s->wire.sec) & SECURE_F_HALF_CLOSE) != 0;
		s->smuxver = (secure_flags(s->wire.sec) & SECURE_F_SMUX_V2) ? 2 : 1;
		smux_parser_init(&s->parser, s->smuxver);
		s->last_rx_ms = s->last_tx_ms = now_ms(c);
		log_info("secure: handshake ok conv=%08x peer=%s", s->conv, s->peer_text);
		break;
	case SECURE_EV_HANDSHAKE_FAILED: {
		char ep[EP_TEXT_MAX];

		if (ev->reason != SECURE_HS_NO_REPLY) {
			sess_close(s, NULL);	/* responder: the initiator never confirmed */
			break;
		}
		endpoint_format(&c->rule->target, ep, sizeof(ep));
		if (s->saw_refused)
			log_error("rule %u %s: secure handshake: nothing listens on UDP %u", c->rule->id, ep,
				  c->rule->target.port);
		else if (s->saw_foreign)
			log_error("rule %u %s: secure handshake: the server is not speaking ferry secure (kcptun or portfwd?)",
				  c->rule->id, ep);
		else
			log_error("rule %u %s: secure handshake: no authenticated reply after 5 attempts (15 s): the PSK "
				  "differs from the server's (compare 'psk fingerprint' lines), the clocks differ by more "
				  "than %u s, or the server is not running ferry --secure", c->rule->id, ep, k->max_skew_s);
		CTR_ADD(c->st->drops[DROP_DEAD_LINK], 1);
		sess_close(s, NULL);
		break;
	}
	case SECURE_EV_REKEY_START:
		log_info("secure: rekey start epoch=%u reason=%s", ev->epoch,
			 ev->reason == SECURE_REKEY_PACKETS ? "packets" : "time");
		break;
	case SECURE_EV_RECV_REKEY_INIT:
		log_info("secure: recv REKEY_INIT epoch=%u", ev->epoch);
		break;
	case SECURE_EV_RECV_REKEY_ACK:
		log_info("secure: recv REKEY_ACK epoch=%u", ev->epoch);
		break;
	case SECURE_EV_EPOCH_SWITCH:
		log_info("secure: epoch switch %u->%u", ev->epoch, ev->epoch_to);
		break;
	case SECURE_EV_CLOSED:
		/* what KCP already holds in order was sent before the CLOSE: streams whose FIN is
		 * in there end cleanly instead of being reset */
		if (ev->by_peer)
			sess_pump_down(s);
		if (ev->reason == SECURE_CLOSE_REKEY_FAILED && !ev->by_peer)
			log_warn("secure: rekey did not complete in 60 s, closing conv=%08x", s->conv);
		sess_close(s, ev->by_peer ? "closed by the peer" : NULL);
		break;
	default:
		break;
	}
}

/* ---- session creation ---- */

static struct ksess *sess_new(struct kcp_rule_ctx *c, uint32_t conv, const struct sockaddr *peer)
{
	struct ksess *s = calloc(1, sizeof(*s));
	const struct kcp_opts *k = &c->rule->o.kcp;

	if (!s)
		return NULL;
	s->c = c;
	s->io.fd = -1;
	s->conv = conv;
	memcpy(&s->peer, peer, sockaddr_len(peer));
	sockaddr_format(peer, s->peer_text, sizeof(s->peer_text));
	list_init(&s->streams);
	timer_init(&s->timer, sess_on_timer);
	s->rx = malloc(KCP_RX_BYTES);
	s->kcp = kcp_new(conv, &c->kp, c->pool, sess_kcp_out, s);
	if (!s->rx || !s->kcp || kcp_link_init(&s->wire, &c->env))
		goto fail;
	s->smuxver = (uint8_t)k->smuxver;
	s->half_close = k->profile == KCP_PROFILE_FERRY;
	s->compress = kcp_compressed(k);
	if (s->compress && !(s->zdec = snappy_dec_new()))
		goto fail;
	smux_parser_init(&s->parser, s->smuxver);
	s->next_sid = c->server ? 2 : 3;	/* smux: client odd from 3, server even (§2.7) */
	s->established = c->env.kind != KCP_LINK_SECURE;
	s->last_rx_ms = s->last_tx_ms = now_ms(c);
	list_add(&c->sessions, &s->link);
	c->nsessions++;
	c->nalloc++;
	c->w->nconns++;
	return s;

fail:
	kcp_link_destroy(&s->wire);
	if (s->kcp)
		kcp_free(s->kcp);
	free(s->rx);
	free(s);
	return NULL;
}

static void sess_count(struct ksess *s)
{
	s->counted = true;
	CTR_ADD(s->c->st->kcp_sessions, 1);
}

static uint32_t random_conv(void)
{
	uint32_t v = 0;

	while (!v && getrandom(&v, sizeof(v), 0) == sizeof(v))
		;
	return v ? v : (uint32_t)unix_ms() | 1;
}

static void sess_deliver(void *ctx, const uint8_t *kcp, size_t n, bool regular)
{
	struct ksess *s = ctx;
	struct kcp_rule_ctx *c = s->c;

	if (kcp_input(s->kcp, (uint32_t)now_ms(c), kcp, n, regular) == -ESTALE && regular && !s->wire.sec &&
	    n <= sizeof(c->plain) && !s->stale_conv) {
		s->stale_conv = true;
		s->stale_conv_id = kcp_peek_conv(kcp);
		s->stale_sn = kcp_peek_sn(kcp);
		memcpy(c->plain, kcp, n);
		c->plain_len = n;
	}
}

/* One packet from the peer of an existing session. */
static void sess_input(struct ksess *s, uint8_t *pkt, size_t n, bool *highest)
{
	struct kcp_rule_ctx *c = s->c;

	if (s->wire.sec) {
		int got = secure_open(s->wire.sec, (uint32_t)now_ms(c), pkt, n, c->plain, sizeof(c->plain), highest);

		if (got < 0) {
			CTR_ADD(c->st->drops[DROP_UNAUTH], 1);
			return;
		}
		if (!s->established && secure_state(s->wire.sec) == SECURE_ESTABLISHED)
			sess_sec_event(s, &(struct secure_event){ .type = SECURE_EV_HANDSHAKE_OK, .sess = s->wire.sec });
		if (got > 0)
			sess_deliver(s, c->plain, (size_t)got, true);
		return;
	}
	if (kcp_link_recv(&s->wire, (uint32_t)now_ms(c), pkt, n, sess_deliver, s))
		CTR_ADD(c->st->drops[DROP_UNAUTH], 1);
}

/* ---- client ---- */

static void client_on_io(struct io *io, uint32_t ev)
{
	struct ksess *s = container_of(io, struct ksess, io);
	struct kcp_rule_ctx *c = s->c;

	for (int i = 0; i < KCP_RX_BATCH && !s->closing; i++) {
		ssize_t n = recv(io->fd, c->pkt, sizeof(c->pkt), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == ECONNREFUSED) {
				s->saw_refused = true;
				continue;
			}
			break;
		}
		if (s->wire.sec && secure_packet_type(c->pkt, (size_t)n) < 0)
			s->saw_foreign = true;
		sess_input(s, c->pkt, (size_t)n, NULL);
	}
	sess_kick(s);
}

static struct ksess *client_session(struct kcp_rule_ctx *c)
{
	struct rule *r = c->rule;
	const struct sockaddr *sa = (const struct sockaddr *)&r->target.addrs[0];
	struct ksess *s;
	int fd;

	if (c->cur && !c->cur->closing)
		return c->cur;
	s = sess_new(c, random_conv(), sa);
	if (!s)
		return NULL;
	fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, sa, sockaddr_len(sa)) < 0) {
		LOG_RL(LOG_ERROR, "%s: UDP socket to %s: %s", r->desc, s->peer_text, strerror(errno));
		if (fd >= 0)
			close(fd);
		sess_close(s, NULL);
		return NULL;
	}
	sock_set_buf(fd, SO_RCVBUF, (int)r->o.kcp.sockbuf);
	sock_set_buf(fd, SO_SNDBUF, (int)r->o.kcp.sockbuf);
	s->io.fd = fd;
	s->io.cb = client_on_io;
	if (loop_add(c->w->loop, &s->io, EPOLLIN)) {
		sess_close(s, NULL);
		return NULL;
	}
	if (c->env.kind == KCP_LINK_SECURE) {
		struct secure_io sio = { .ctx = s, .send = sess_tx, .event = sess_sec_event };

		s->wire.sec = secure_initiator_new(c->env.sec, s->conv, (uint32_t)now_ms(c), unix_ms(), &sio);
		if (!s->wire.sec) {
			sess_close(s, "secure handshake: out of memory or too many sessions");
			return NULL;
		}
		secure_sess_set_user(s->wire.sec, s);
	}
	log_debug("%s: new session conv=%08x to %s", r->desc, s->conv, s->peer_text);
	sess_count(s);
	c->cur = s;
	sess_arm(s);
	return s;
}

/* ---- per-worker rule context ---- */

static void ctx_free(struct kcp_rule_ctx *c)
{
	txq_drain(c->w);	/* queued entries point at this rule's counters */
	list_del(&c->link);
	if (c->io.fd >= 0) {
		loop_del(c->w->loop, &c->io);
		close(c->io.fd);
	}
	if (c->server)
		sess_table_destroy(&c->table);
	kcp_link_env_destroy(&c->env);
	if (c->pool)
		kcp_pool_free(c->pool);
	free(c->zbuf);
	rule_unref(c->rule);
	free(c);
}

static void ctx_release(struct defer *d)
{
	struct kcp_rule_ctx *c = container_of(d, struct kcp_rule_ctx, gone);
	struct worker *w = c->w;

	if (c->stopped && !c->nalloc) {
		ctx_free(c);
		worker_conn_gone(w);
	}
}

/* A stopped context goes once its last session is freed, at the end of a loop iteration
 * (an event for its socket may be queued in the current batch). */
static void ctx_maybe_free(struct kcp_rule_ctx *c)
{
	if (c->stopped && !c->nalloc)
		loop_defer(c->w->loop, &c->gone, ctx_release);
}

static struct kcp_rule_ctx *ctx_find(struct worker *w, const struct rule *r)
{
	struct list *it;

	list_for_each(it, &w->kcp_rules) {
		struct kcp_rule_ctx *c = container_of(it, struct kcp_rule_ctx, link);

		if (c->rule == r && !c->stopped)
			return c;
	}
	return NULL;
}

static void params_from_opts(struct kcp_params *p, const struct kcp_opts *k, uint32_t reserved)
{
	kcp_params_default(p);
	kcp_params_mode(p, (enum kcp_mode)(k->mode - 1));
	if (k->nodelay >= 0)
		p->nodelay = k->nodelay;
	if (k->interval >= 0)
		p->interval = (uint32_t)k->interval;
	if (k->resend >= 0)
		p->resend = k->resend;
	p->nc = k->cc != KCP_CC_WINDOW;
	p->rate = k->cc == KCP_CC_RATE;
	p->mtu = k->mtu;
	p->reserved = reserved;
	p->snd_wnd = k->sndwnd;
	p->rcv_wnd = k->rcvwnd;
	p->stream = true;
	p->ack_nodelay = k->acknodelay;
}

static struct kcp_rule_ctx *ctx_new(struct worker *w, struct rule *r, bool server)
{
	struct kcp_rule_ctx *c = calloc(1, sizeof(*c));
	char err[256];

	if (!c)
		return NULL;
	c->w = w;
	c->rule = r;
	c->st = &r->stats[w->id];
	c->server = server;
	c->io.fd = -1;
	c->quota = MAX(r->o.max_sessions / r->nworkers, 1u);
	list_init(&c->sessions);
	if (kcp_link_env_init(&c->env, &r->o.kcp, server, w->id, err, sizeof(err))) {
		log_error("%s: %s", r->desc, err);
		free(c);
		return NULL;
	}
	params_from_opts(&c->kp, &r->o.kcp, kcp_link_reserved(&c->env));
	c->pool = kcp_pool_new();
	/* snappy output for one frame: only kcptun's compression writes through it */
	if (kcp_compressed(&r->o.kcp))
		c->zbuf = malloc(snappy_frame_max(SMUX_HDR_BYTES + KCP_FRAME_BYTES + SMUX_UPD_BYTES + 4096));
	if (!c->pool || (kcp_compressed(&r->o.kcp) && !c->zbuf) ||
	    (server && sess_table_init(&c->table, 64, 1u << 20, (uint64_t)(uintptr_t)c ^ unix_ms()))) {
		kcp_link_env_destroy(&c->env);
		if (c->pool)
			kcp_pool_free(c->pool);
		free(c->zbuf);
		free(c);
		return NULL;
	}
	rule_ref(r);
	list_add(&w->kcp_rules, &c->link);
	return c;
}

void kcp_client_accept(struct worker *w, struct rule *r, int fd)
{
	struct kcp_rule_ctx *c = ctx_find(w, r);
	struct rule_stats *rs = &r->stats[w->id];
	struct ksess *s;
	struct kstream *st;
	uint8_t h[SMUX_HDR_BYTES];

	if (!c)
		c = ctx_new(w, r, false);
	s = c ? client_session(c) : NULL;
	if (!s || s->nstreams >= r->o.kcp.max_streams || s->next_sid > UINT32_MAX - 2) {
		CTR_ADD(rs->drops[s ? DROP_MAX_STREAMS : DROP_NO_MEMORY], 1);
		goto refuse;
	}
	st = stream_new(s, s->next_sid, fd);
	if (!st)
		goto refuse;
	s->next_sid += 2;
	st->io.cb = stream_on_io;
	timer_init(&st->ctimer, stream_on_timer);
	st->last_active_ms = now_ms(c);
	stream_arm_idle(st);
	/* the SYN goes first; data may follow at once (smux has no SYN-ACK) */
	smux_hdr_write(h, s->smuxver, SMUX_CMD_SYN, 0, st->sid);
	sess_ctl(s, h, sizeof(h));
	if (loop_add(w->loop, &st->io, STREAM_EVENTS)) {
		stream_close(st, true);
		return;
	}
	sess_kick(s);
	return;

refuse:
	CTR_ADD(rs->closed, 1);
	__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
	sock_close_reset(fd);
}

/* ---- server ---- */

static struct ksess *server_accept_plain(struct kcp_rule_ctx *c, const struct sockaddr *from, uint32_t conv)
{
	struct ksess *s;

	if (c->stopped)
		return NULL;
	if (c->nsessions >= c->quota) {
		CTR_ADD(c->st->drops[DROP_NO_SESSION], 1);
		LOG_RL(LOG_WARN, "%s: --max-sessions %u reached, new session refused", c->rule->desc,
		       c->rule->o.max_sessions);
		return NULL;
	}
	s = sess_new(c, conv, from);
	if (!s)
		return NULL;
	sess_count(s);
	if (sess_table_insert(&c->table, &s->node, from, now_ms(c)) == 0)
		s->in_table = true;
	log_debug("%s: new session conv=%08x from %s", c->rule->desc, conv, s->peer_text);
	return s;
}

/*
 * kcptun/plain: sessions by source address, with kcp-go's conv rules (§2.4): a datagram
 * with another conv replaces the session only when it starts a conversation (sn 0: the
 * client restarted on the same port); otherwise it is ignored.
 */
static void server_input_plain(struct kcp_rule_ctx *c, const struct sockaddr *from, uint8_t *pkt, size_t n)
{
	struct sess_node *node = sess_table_find(&c->table, from);
	struct ksess *s = node ? container_of(node, struct ksess, node) : NULL;
	uint32_t conv, sn;
	int rc;

	if (!s) {
		rc = kcp_link_peek(&c->env, pkt, n, &conv, &sn);
		if (rc) {
			if (rc == -EBADMSG)
				CTR_ADD(c->st->drops[DROP_UNAUTH], 1);
			return;
		}
		s = server_accept_plain(c, from, conv);
		if (!s)
			return;
	}
	s->stale_conv = false;
	sess_input(s, pkt, n, NULL);
	if (s->stale_conv && s->stale_sn == 0) {
		/* the packet was decoded in place: the new session takes its KCP bytes */
		struct ksess *old = s;

		uint32_t conv_new = old->stale_conv_id;

		sess_close(old, "replaced by a new conversation from the same address");
		s = server_accept_plain(c, from, conv_new);
		if (!s)
			return;
		kcp_input(s->kcp, (uint32_t)now_ms(c), c->plain, c->plain_len, true);
	}
	sess_kick(s);
}

struct reply_to {
	struct kcp_rule_ctx *c;
	const struct sockaddr *to;
};

/* msg 2 or a COOKIE_REPLY, before a session exists: straight back to the source. */
static void reply_tx(void *ctx, const uint8_t *pkt, size_t n)
{
	struct reply_to *r = ctx;

	if (sendto(r->c->io.fd, pkt, n, MSG_DONTWAIT, r->to, sockaddr_len(r->to)) < 0)
		CTR_ADD(r->c->st->drops[DROP_SEND_ERROR], 1);
}

static void reply_event(void *ctx, const struct secure_event *ev)
{
	struct reply_to *r = ctx;
	char a[64];

	sockaddr_format(r->to, a, sizeof(a));
	if (ev->type == SECURE_EV_AUTH_FAIL) {
		LOG_RL(LOG_DEBUG, "secure: handshake from %s failed authentication", a);
		return;
	}
	if (ev->type != SECURE_EV_AUTH_REJECT)
		return;
	if (ev->replay)
		LOG_RL(LOG_WARN, "%s: secure: replayed handshake from %s refused", r->c->rule->desc, a);
	else
		LOG_RL(LOG_WARN, "%s: secure: handshake from %s refused: clocks differ by %lld ms (--secure-max-skew)",
		       r->c->rule->desc, a, (long long)ev->skew_ms);
}

static void server_accept_secure(struct kcp_rule_ctx *c, const struct sockaddr *from, uint8_t *pkt, size_t n)
{
	struct reply_to rt = { c, from };
	struct secure_io tmp = { .ctx = &rt, .send = reply_tx, .event = reply_event };
	struct secure_sess *ss;
	struct ksess *s;

	if (c->stopped)
		return;
	if (c->nsessions >= c->quota) {
		CTR_ADD(c->st->drops[DROP_NO_SESSION], 1);
		return;
	}
	ss = secure_responder_accept(c->env.sec, pkt, n, from, sockaddr_len(from), (uint32_t)now_ms(c), unix_ms(),
				     &tmp);
	if (!ss) {
		CTR_ADD(c->st->drops[DROP_UNAUTH], 1);
		return;
	}
	s = sess_new(c, secure_conv(ss), from);
	if (!s) {
		secure_sess_free(ss);
		return;
	}
	s->wire.sec = ss;
	secure_sess_set_user(ss, s);
	secure_sess_set_io(ss, &(struct secure_io){ .ctx = s, .send = sess_tx, .event = sess_sec_event });
	sess_count(s);
	sess_arm(s);
}

static void server_input_secure(struct kcp_rule_ctx *c, const struct sockaddr *from, uint8_t *pkt, size_t n)
{
	int type = secure_packet_type(pkt, n);
	struct secure_sess *ss;
	struct ksess *s;
	bool highest = false;

	if (type == SECURE_T_INIT) {
		server_accept_secure(c, from, pkt, n);
		return;
	}
	ss = type > 0 ? secure_ctx_lookup(c->env.sec, pkt, n) : NULL;
	if (!ss || !(s = secure_sess_user(ss)) || s->closing) {
		CTR_ADD(c->st->drops[DROP_UNAUTH], 1);
		return;
	}
	sess_input(s, pkt, n, &highest);
	if (s->closing)
		return;
	/* roaming (§3.6): the newest authenticated packet says where the client is now */
	if (highest && memcmp(&s->peer, from, sockaddr_len(from))) {
		memcpy(&s->peer, from, sockaddr_len(from));
		sockaddr_format(from, s->peer_text, sizeof(s->peer_text));
	}
	sess_kick(s);
}

static void server_on_io(struct io *io, uint32_t ev)
{
	struct kcp_rule_ctx *c = container_of(io, struct kcp_rule_ctx, io);

	for (int i = 0; i < KCP_RX_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(io->fd, c->pkt, sizeof(c->pkt), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

		if (n < 0)
			break;
		if (c->env.kind == KCP_LINK_SECURE)
			server_input_secure(c, (struct sockaddr *)&from, c->pkt, (size_t)n);
		else
			server_input_plain(c, (struct sockaddr *)&from, c->pkt, (size_t)n);
	}
}

int kcp_listener_start(struct worker *w, struct rule *r, int fd)
{
	struct kcp_rule_ctx *c = ctx_new(w, r, true);
	int err;

	if (!c) {
		close(fd);
		rule_unref(r);
		return -ENOMEM;
	}
	rule_unref(r);	/* ctx_new took its own reference */
	sock_set_buf(fd, SO_RCVBUF, (int)r->o.kcp.sockbuf);
	sock_set_buf(fd, SO_SNDBUF, (int)r->o.kcp.sockbuf);
	c->io.fd = fd;
	c->io.cb = server_on_io;
	err = loop_add(w->loop, &c->io, EPOLLIN);
	if (err) {
		c->stopped = true;
		ctx_maybe_free(c);
	}
	return err;
}

/* ---- stop ---- */

/* No new sessions from now on. A server keeps its socket for the sessions it has (they
 * drain, or kcp_close_all() ends them); the socket closes with the context. */
static void ctx_stop(struct kcp_rule_ctx *c)
{
	struct list *it, *tmp;

	c->stopped = true;
	list_for_each_safe(it, tmp, &c->sessions) {
		struct ksess *s = container_of(it, struct ksess, link);

		if (!s->nstreams)
			timer_arm(c->w->loop, &s->timer, 0);	/* closes once KCP is idle */
	}
}

/* Closes every session of c; c itself goes once they are freed. */
static void ctx_close(struct kcp_rule_ctx *c)
{
	ctx_stop(c);
	while (!list_empty(&c->sessions))
		sess_close(container_of(c->sessions.next, struct ksess, link), NULL);
	ctx_maybe_free(c);
}

void kcp_stop_rule(struct worker *w, const struct rule *r)
{
	struct list *it, *tmp;

	/* a removed rule's sessions go at once, as UDP sessions do */
	list_for_each_safe(it, tmp, &w->kcp_rules) {
		struct kcp_rule_ctx *c = container_of(it, struct kcp_rule_ctx, link);

		if (c->rule == r)
			ctx_close(c);
	}
}

void kcp_stop_all(struct worker *w)
{
	struct list *it, *tmp;

	list_for_each_safe(it, tmp, &w->kcp_rules) {
		struct kcp_rule_ctx *c = container_of(it, struct kcp_rule_ctx, link);

		ctx_stop(c);
		ctx_maybe_free(c);
	}
}

void kcp_close_all(struct worker *w)
{
	struct list *it, *tmp;

	list_for_each_safe(it, tmp, &w->kcp_rules)
		ctx_close(container_of(it, struct kcp_rule_ctx, link));
}

/* ---- start-up ---- */

static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

int kcp_rule_check(const struct rule *r, char *err, size_t errlen)
{
	const struct kcp_opts *k = &r->o.kcp;
	struct kcp_link_env env;
	int rc;

	if (r->listen.scheme != EP_KCP && r->target.scheme != EP_KCP)
		return 0;
	if (r->listen.scheme == EP_KCP && k->profile == KCP_PROFILE_FERRY && !k->secure && !k->insecure) {
		for (unsigned i = 0; i < r->listen.naddrs; i++)
			if (!addr_is_loopback(&r->listen.addrs[i])) {
				snprintf(err, errlen, "%s: no pre-shared key: refusing to accept unauthenticated KCP on a "
					 "non-loopback address; give --psk-file FILE (or -K HEX), or --insecure", r->desc);
				return -EINVAL;
			}
	}
	rc = kcp_link_env_init(&env, k, r->listen.scheme == EP_KCP, 0, err, errlen);
	if (!rc)
		kcp_link_env_destroy(&env);
	return rc;
}

void kcp_rule_announce(const struct rule *r)
{
	const struct kcp_opts *k = &r->o.kcp;

	if (r->listen.scheme != EP_KCP && r->target.scheme != EP_KCP)
		return;
	if (k->secure) {
		char fp[17];

		secure_psk_fingerprint(k->psk, fp);
		log_info("%s: secure: psk fingerprint %s", r->desc, fp);
	} else if (k->profile == KCP_PROFILE_KCPTUN) {
		log_warn("%s: kcp: kcptun-compatible mode is not authenticated; use --secure for ferry-to-ferry links",
			 r->desc);
	} else {
		log_warn("%s: kcp: no pre-shared key: the tunnel is neither encrypted nor authenticated", r->desc);
	}
}
