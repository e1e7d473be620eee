/*
 * TCP stream relay (DESIGN.md "stream relay").
 *
 * Each connection has two sides (client, server) and two directions (up = client ->
 * server, down = server -> client). Sockets are registered once, edge-triggered; a side
 * remembers whether it may be readable/writable, and pump() moves one direction as far
 * as the kernel lets it. A direction holds a pipe (or a buffer, with --no-splice) only
 * while bytes are in flight, so an idle connection costs this struct and two fds.
 *
 * Backpressure: a direction reads again only once everything it read was written, so
 * at most one pipe's worth is ever held per direction.
 * Half-close: EOF on one side becomes shutdown(SHUT_WR) on the other after the data.
 * Reset: a read/write error on one side closes the other with SO_LINGER 0 (RST).
 *
 * --transparent (spec/systemd.md §4): the upstream socket is IP_TRANSPARENT and bound to
 * the client's address (and port, when free) before it connects, so the target sees the
 * client. --tproxy: the listener is IP_TRANSPARENT, so it accepts the connections an nft
 * tproxy rule diverts to it; each accepted socket's local address is the destination the
 * client asked for, and the client talks to that address throughout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "relay/kcp.h"
#include "relay/tcp.h"
#include "relay/worker.h"

/* Connections accepted per listener wake-up before other events get a turn. */
#define TCP_ACCEPT_BATCH 64
/* Copy buffer per moving direction with --no-splice. */
#define TCP_COPY_BUF_BYTES 65536
/*
 * Small messages are copied through a buffer of this size (recv + send, as many syscalls
 * as splice needs, and a short recv() reliably means "drained"); a read that fills it
 * switches the direction to splice() until reads get small again (HAProxy's splice-auto).
 */
#define TCP_SMALL_BUF_BYTES 16384
/*
 * Keepalive on the upstream socket costs four setsockopt() calls. Probes only matter after
 * --keepalive-idle seconds of silence, so they are switched on once a connection has lived
 * this long: short connections (most of a connection-rate load) never pay for them. The
 * client side inherits keepalive from the listener for free.
 */
#define TCP_KEEPALIVE_DEFER_MS 1000
/* How long a listener stays paused when no fd at all can be had. */
#define TCP_ACCEPT_PAUSE_MS 100

#define SIDE_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

struct tcp_listener {
	struct io io;
	struct list link;
	struct worker *w;
	struct rule *rule;
	struct rule_stats *st;
	struct timer pause;
	uint64_t nconns;
	bool stopped;
};

enum conn_state { CONN_CONNECTING, CONN_RELAYING, CONN_CLOSED };

struct side {
	struct io io;
	bool readable, writable;
	bool rdhup;		/* the peer's FIN (or an error) is queued: read until 0 */
	bool fin_only;		/* that was a clean FIN (EPOLLRDHUP), not a hang-up or error */
};

struct dir {
	struct pipe_pair pipe;	/* pipe.rfd >= 0 while held */
	char *buf;		/* copy buffer while held (small messages, or --no-splice) */
	uint32_t buf_cap;
	uint32_t pending;	/* bytes read, not yet written */
	uint32_t buf_off;
	bool bulk;		/* moving bulk data: splice through a pipe */
	bool eof;		/* read side saw EOF */
	bool shut;		/* write side shut down */
};

struct tcp_conn {
	struct side cli, srv;
	struct dir up, down;
	struct tcp_listener *lst;
	struct timer timer;	/* connect timeout, then idle timeout */
	struct defer free_later;
	struct list link;
	uint64_t last_active_ms;
	uint64_t keepalive_at_ms;	/* when to switch keepalive on upstream; 0 = done or off */
	int32_t addr_delta;	/* -b: added to the target address (base-address mode) */
	uint8_t addr_idx;	/* target address being tried */
	uint8_t state;
};

static struct worker *conn_worker(struct tcp_conn *c)
{
	return c->lst->w;
}

/* ---- closing ---- */

static void dir_release(struct worker *w, struct dir *d, bool discard)
{
	if (d->pipe.rfd >= 0) {
		if (discard || d->pending)
			pipe_pool_discard(&w->pipes, d->pipe);
		else
			pipe_pool_put(&w->pipes, d->pipe);
		d->pipe.rfd = d->pipe.wfd = -1;
	}
	free(d->buf);
	d->buf = NULL;
}

static void listener_free(struct tcp_listener *l)
{
	list_del(&l->link);
	rule_unref(l->rule);
	free(l);
}

static void conn_free(struct defer *d)
{
	struct tcp_conn *c = container_of(d, struct tcp_conn, free_later);
	struct tcp_listener *l = c->lst;
	struct worker *w = l->w;

	free(c);
	if (--l->nconns == 0 && l->stopped)
		listener_free(l);
	worker_conn_gone(w);
}

static void side_close(struct worker *w, struct side *s, bool reset)
{
	if (s->io.fd < 0)
		return;
	/* close() takes the fd out of epoll (it is never dup'ed): no EPOLL_CTL_DEL needed */
	if (reset)
		sock_close_reset(s->io.fd);
	else
		close(s->io.fd);
	s->io.fd = -1;
}

/* Closes both sides; reset = send RST (SO_LINGER 0) rather than FIN. */
static void conn_close(struct tcp_conn *c, bool reset)
{
	struct worker *w = conn_worker(c);

	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	timer_cancel(w->loop, &c->timer);
	side_close(w, &c->cli, reset);
	side_close(w, &c->srv, reset);
	dir_release(w, &c->up, true);
	dir_release(w, &c->down, true);
	list_del(&c->link);
	w->nconns--;
	__atomic_sub_fetch(&c->lst->rule->active, 1, __ATOMIC_RELAXED);
	CTR_ADD(c->lst->st->closed, 1);
	loop_defer(w->loop, &c->free_later, conn_free);
}

/* ---- moving bytes ---- */

static int dir_acquire(struct tcp_conn *c, struct dir *d)
{
	struct worker *w = conn_worker(c);
	bool no_splice = c->lst->rule->o.no_splice;

	if (d->bulk && !no_splice)
		return d->pipe.rfd < 0 ? pipe_pool_get(&w->pipes, &d->pipe) : 0;
	if (!d->buf) {
		d->buf_cap = no_splice ? TCP_COPY_BUF_BYTES : TCP_SMALL_BUF_BYTES;
		d->buf = malloc(d->buf_cap);
		if (!d->buf)
			return -ENOMEM;
	}
	return 0;
}

static size_t dir_capacity(struct tcp_conn *c, const struct dir *d)
{
	return d->buf ? d->buf_cap : conn_worker(c)->pipes.pipe_bytes;
}

/* Reads from src into d; returns bytes, 0 on EOF, or -errno. */
static ssize_t dir_fill(struct tcp_conn *c, struct dir *d, int src)
{
	ssize_t n;

	if (d->buf) {
		n = recv(src, d->buf, d->buf_cap, 0);
		d->buf_off = 0;
	} else {
		n = splice(src, NULL, d->pipe.wfd, NULL, dir_capacity(c, d),
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	}
	return n < 0 ? -errno : n;
}

static ssize_t dir_flush(struct dir *d, int dst)
{
	ssize_t n;

	if (d->buf)
		n = send(dst, d->buf + d->buf_off, d->pending, MSG_NOSIGNAL);
	else
		n = splice(d->pipe.rfd, NULL, dst, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0 && d->buf)
		d->buf_off += (uint32_t)n;
	return n < 0 ? -errno : n;
}

/*
 * Moves direction d from side s to side t until the kernel says EAGAIN on one end.
 * Returns 0, or -errno for an error that must reset the connection.
 */
static int pump(struct tcp_conn *c, struct dir *d, const struct dir *other, struct side *s, struct side *t,
		uint64_t *bytes)
{
	struct worker *w = conn_worker(c);
	ssize_t n;

	for (;;) {
		if (d->pending) {
			if (!t->writable)
				return 0;
			n = dir_flush(d, t->io.fd);
			if (n < 0) {
				if (n == -EAGAIN) {
					t->writable = false;
					return 0;
				}
				return (int)n;
			}
			d->pending -= (uint32_t)n;
			CTR_ADD(*bytes, (uint64_t)n);
			c->last_active_ms = loop_now(w->loop);
			if (d->pending) {
				/* the socket took less than offered: its buffer is full */
				t->writable = false;
				return 0;
			}
			dir_release(w, d, false);
		}
		if (d->eof) {
			if (!d->shut) {
				d->shut = true;
				/* the last direction to finish: close() right after sends the FIN */
				if (!other->shut && shutdown(t->io.fd, SHUT_WR) && errno != ENOTCONN)
					return -errno;
			}
			return 0;
		}
		if (!s->readable)
			return 0;
		int err = dir_acquire(c, d);

		if (err)
			return err;
		n = dir_fill(c, d, s->io.fd);
		if (n < 0) {
			if (n == -EAGAIN) {
				s->readable = false;
				dir_release(w, d, false);
				return 0;
			}
			return (int)n;
		}
		if (n == 0) {
			d->eof = true;
			s->readable = false;
			dir_release(w, d, false);
			continue;
		}
		d->pending = (uint32_t)n;
		if (!d->buf) {
			/* splice() may stop early (a pipe holds a limited number of skb pieces), so
			 * a short splice proves nothing: read on until EAGAIN. Small reads go back
			 * to the copy buffer. */
			if (n < TCP_SMALL_BUF_BYTES)
				d->bulk = false;
			continue;
		}
		if ((size_t)n == d->buf_cap) {
			d->bulk = !c->lst->rule->o.no_splice;
			continue;
		}
		/* A short recv() drained the socket: skip the read that would say EAGAIN; new
		 * data raises a fresh edge. A queued FIN raises none, but a FIN comes after all
		 * the data, so a short read then means the stream has ended; after a hang-up or
		 * error, read on to learn which. */
		if (!s->rdhup) {
			s->readable = false;
		} else if (s->fin_only) {
			s->readable = false;
			d->eof = true;
		}
	}
}

static void conn_pump(struct tcp_conn *c)
{
	struct rule_stats *st = c->lst->st;
	int err;

	err = pump(c, &c->up, &c->down, &c->cli, &c->srv, &st->bytes_up);
	if (!err)
		err = pump(c, &c->down, &c->up, &c->srv, &c->cli, &st->bytes_down);
	if (err) {
		if (err == -ENOMEM || err == -EMFILE || err == -ENFILE) {
			CTR_ADD(st->drops[err == -ENOMEM ? DROP_NO_MEMORY : DROP_NO_FDS], 1);
			LOG_RL(LOG_WARN, "%s: no %s for a pipe: connection reset", c->lst->rule->desc,
			       err == -ENOMEM ? "memory" : "fds");
		} else
			log_debug("%s: connection reset: %s", c->lst->rule->desc, strerror(-err));
		conn_close(c, true);
		return;
	}
	if (c->up.shut && c->down.shut)
		conn_close(c, false);
}

static void side_mark(struct side *s, uint32_t ev)
{
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->readable = true;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		s->fin_only = !s->rdhup || s->fin_only;
		s->rdhup = true;
	}
	if (ev & (EPOLLHUP | EPOLLERR))
		s->fin_only = false;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		s->writable = true;
}

static void side_event(struct tcp_conn *c, struct side *s, uint32_t ev)
{
	side_mark(s, ev);
	if (ev & EPOLLERR) {
		int e = sock_error(s->io.fd);

		if (e) {
			log_debug("%s: socket error: %s", c->lst->rule->desc, strerror(e));
			conn_close(c, true);
			return;
		}
	}
	conn_pump(c);
}

/* ---- connecting ---- */

static int conn_connect_next(struct tcp_conn *c);

/* The address to connect to: the rule's, moved by the base-address delta (checked at accept). */
static void conn_target_addr(const struct tcp_conn *c, struct sockaddr_storage *sa)
{
	const struct rule *r = c->lst->rule;

	if (r->o.base_addr)
		base_addr_apply((struct sockaddr *)sa, r->listen.port, (uint16_t)(r->listen.port + c->addr_delta));
}

static void conn_fail(struct tcp_conn *c, enum rule_drop why, int err)
{
	struct tcp_listener *l = c->lst;
	const struct endpoint *t = &l->rule->target;
	struct sockaddr_storage sa = t->addrs[MIN(c->addr_idx, t->naddrs - 1)];
	char addr[64];

	conn_target_addr(c, &sa);
	sockaddr_format((struct sockaddr *)&sa, addr, sizeof(addr));
	CTR_ADD(l->st->failed, 1);
	CTR_ADD(l->st->drops[why], 1);
	LOG_RL(LOG_WARN, "%s: connect %s: %s", l->rule->desc, addr,
	       why == DROP_CONNECT_TIMEOUT ? "timed out" : strerror(err));
	conn_close(c, true);
}

/* Relaying: the timer serves the deferred keepalive and the idle timeout, whichever is first. */
static void conn_arm_timer(struct tcp_conn *c)
{
	struct worker *w = conn_worker(c);
	uint32_t idle = c->lst->rule->o.idle_timeout_ms;
	uint64_t when = c->keepalive_at_ms ? c->keepalive_at_ms : UINT64_MAX;

	if (idle)
		when = MIN(when, c->last_active_ms + idle);
	if (when == UINT64_MAX)
		timer_cancel(w->loop, &c->timer);
	else
		timer_arm_at(w->loop, &c->timer, when);
}

static void conn_connected(struct tcp_conn *c)
{
	struct worker *w = conn_worker(c);
	const struct rule_opts *o = &c->lst->rule->o;

	c->state = CONN_RELAYING;
	c->last_active_ms = loop_now(w->loop);
	c->keepalive_at_ms = o->sock.keepalive ? c->last_active_ms + TCP_KEEPALIVE_DEFER_MS : 0;
	conn_arm_timer(c);
	conn_pump(c);
}

static void on_srv(struct io *io, uint32_t ev)
{
	struct side *s = container_of(io, struct side, io);
	struct tcp_conn *c = container_of(s, struct tcp_conn, srv);

	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_CONNECTING) {
		/* writable without an error means connected: no SO_ERROR query needed */
		int e = ev & (EPOLLERR | EPOLLHUP) ? sock_error(io->fd) : 0;

		if (!e && !(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (e || (ev & (EPOLLERR | EPOLLHUP))) {
			side_close(conn_worker(c), &c->srv, false);
			c->addr_idx++;
			int err = conn_connect_next(c);

			if (err)
				conn_fail(c, err == -EMFILE || err == -ENFILE ? DROP_NO_FDS : DROP_CONNECT_FAILED,
					  e ? e : -err);
			return;
		}
		side_mark(s, ev);
		conn_connected(c);
		return;
	}
	side_event(c, s, ev);
}

static void on_cli(struct io *io, uint32_t ev)
{
	struct side *s = container_of(io, struct side, io);
	struct tcp_conn *c = container_of(s, struct tcp_conn, cli);

	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_CONNECTING) {
		/* remember readiness; data waits until the upstream is connected */
		side_mark(s, ev);
		if ((ev & EPOLLERR) && sock_error(io->fd))
			conn_close(c, true);
		return;
	}
	side_event(c, s, ev);
}

static void on_conn_timer(struct timer *t)
{
	struct tcp_conn *c = container_of(t, struct tcp_conn, timer);
	struct worker *w = conn_worker(c);
	uint32_t idle = c->lst->rule->o.idle_timeout_ms;

	if (c->state == CONN_CONNECTING) {
		side_close(w, &c->srv, true);
		c->addr_idx++;
		if (conn_connect_next(c))
			conn_fail(c, DROP_CONNECT_TIMEOUT, ETIMEDOUT);
		return;
	}
	if (c->keepalive_at_ms && loop_now(w->loop) >= c->keepalive_at_ms) {
		sock_tcp_keepalive(c->srv.io.fd, &c->lst->rule->o.sock);
		c->keepalive_at_ms = 0;
	}
	/* the idle deadline moves with traffic; check it here instead of re-arming per byte */
	if (idle && loop_now(w->loop) - c->last_active_ms >= idle) {
		log_debug("%s: closing idle connection", c->lst->rule->desc);
		conn_close(c, false);
		return;
	}
	conn_arm_timer(c);
}

/* --transparent: the client's address, as the upstream socket binds it (IPv4 clients of a
 * dual-stack listener unmapped). */
static int conn_client_addr(const struct tcp_conn *c, struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);

	if (getpeername(c->cli.io.fd, (struct sockaddr *)out, &len))
		return -errno;
	sock_addr_unmap(out);
	return 0;
}

/* Tries the next target address; returns 0 while an attempt is under way. */
static int conn_connect_next(struct tcp_conn *c)
{
	struct tcp_listener *l = c->lst;
	struct worker *w = l->w;
	const struct rule *r = l->rule;
	struct sockaddr_storage client;
	int err = -ECONNREFUSED;

	if (r->o.transparent) {
		err = conn_client_addr(c, &client);
		if (err)
			return err;
		err = -EAFNOSUPPORT;
	}
	while (c->addr_idx < r->target.naddrs) {
		struct sockaddr_storage sa = r->target.addrs[c->addr_idx];
		int fd;

		conn_target_addr(c, &sa);
		if (!r->o.transparent)
			err = sock_tcp_connect_nokeepalive((struct sockaddr *)&sa, &r->o.sock, &fd);
		else if (sa.ss_family == client.ss_family)
			err = sock_tcp_connect_from((struct sockaddr *)&sa, (struct sockaddr *)&client, &r->o.sock, &fd);
		else
			err = -EAFNOSUPPORT;	/* the client's address cannot talk to this one */
		if (!err) {
			c->srv.io.fd = fd;
			c->srv.readable = c->srv.writable = false;
			err = loop_add(w->loop, &c->srv.io, SIDE_EVENTS);
			if (!err) {
				timer_arm(w->loop, &c->timer, r->o.connect_timeout_ms);
				return 0;
			}
			side_close(w, &c->srv, false);
		}
		if (err == -EMFILE || err == -ENFILE || err == -ENOMEM)
			break;
		c->addr_idx++;
	}
	return err;
}

/* ---- accepting ---- */

/* Base-address mode (-b): how far the original destination port is from the listen port;
 * -ERANGE if that moves any target address out of range. */
static int conn_addr_delta(struct tcp_listener *l, int fd, int32_t *delta)
{
	const struct rule *r = l->rule;
	struct sockaddr_storage orig;
	uint16_t port;
	int err;

	*delta = 0;
	if (!r->o.base_addr)
		return 0;
	err = sock_original_dst(fd, &orig);
	if (err)
		return err;
	port = sockaddr_port((struct sockaddr *)&orig);
	for (unsigned i = 0; i < r->target.naddrs; i++) {
		struct sockaddr_storage sa = r->target.addrs[i];

		err = base_addr_apply((struct sockaddr *)&sa, r->listen.port, port);
		if (err)
			return err;
	}
	*delta = (int32_t)port - (int32_t)r->listen.port;
	return 0;
}

static void conn_start(struct tcp_listener *l, int fd)
{
	struct worker *w = l->w;
	struct rule *r = l->rule;
	struct tcp_conn *c;
	int32_t delta;
	int err;

	CTR_ADD(l->st->accepted, 1);
	if (__atomic_add_fetch(&r->active, 1, __ATOMIC_RELAXED) > r->o.max_conns) {
		__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
		CTR_ADD(l->st->drops[DROP_MAX_CONNS], 1);
		CTR_ADD(l->st->closed, 1);
		LOG_RL(LOG_WARN, "%s: --max-conns %u reached, connection refused", r->desc, r->o.max_conns);
		sock_close_reset(fd);
		return;
	}
	if (r->target.scheme == EP_KCP) {
		kcp_client_accept(w, r, fd);
		return;
	}
	err = conn_addr_delta(l, fd, &delta);
	if (err) {
		__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
		CTR_ADD(l->st->drops[DROP_BASE_ADDR], 1);
		CTR_ADD(l->st->failed, 1);
		CTR_ADD(l->st->closed, 1);
		LOG_RL(LOG_WARN, "%s: base-address mode: %s", r->desc,
		       err == -ERANGE ? "target address out of range" : strerror(-err));
		sock_close_reset(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		__atomic_sub_fetch(&r->active, 1, __ATOMIC_RELAXED);
		CTR_ADD(l->st->drops[DROP_NO_MEMORY], 1);
		CTR_ADD(l->st->closed, 1);
		sock_close_reset(fd);
		return;
	}
	c->lst = l;
	c->state = CONN_CONNECTING;
	c->cli.io.fd = fd;
	c->cli.io.cb = on_cli;
	c->srv.io.fd = -1;
	c->srv.io.cb = on_srv;
	c->up.pipe.rfd = c->up.pipe.wfd = -1;
	c->down.pipe.rfd = c->down.pipe.wfd = -1;
	timer_init(&c->timer, on_conn_timer);
	c->addr_delta = delta;
	list_add(&w->conns, &c->link);
	w->nconns++;
	l->nconns++;
	/* no sock_tcp_tune(fd): the accepted socket inherited the listener's options */
	err = loop_add(w->loop, &c->cli.io, SIDE_EVENTS);
	if (!err)
		err = conn_connect_next(c);
	if (err)
		conn_fail(c, err == -EMFILE || err == -ENFILE ? DROP_NO_FDS : DROP_CONNECT_FAILED, -err);
}

/* Out of fds: spend the reserve fd to accept and close one connection, so the kernel's
 * queue drains instead of the listener waking us forever (the libev/"reserve fd" trick). */
static void listener_shed(struct tcp_listener *l, int err)
{
	struct worker *w = l->w;
	int fd;

	CTR_ADD(l->st->drops[DROP_NO_FDS], 1);
	LOG_RL(LOG_ERROR, "%s: accept: %s; closing new connections until fds are free", l->rule->desc,
	       strerror(-err));
	if (w->reserve_fd >= 0) {
		close(w->reserve_fd);
		w->reserve_fd = -1;
		fd = accept4(l->io.fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			sock_close_reset(fd);
	}
	if (worker_reserve_fd(w) || w->reserve_fd < 0) {
		/* not even the reserve: stop polling the listener for a moment */
		loop_del(w->loop, &l->io);
		timer_arm(w->loop, &l->pause, TCP_ACCEPT_PAUSE_MS);
	}
}

static void on_accept(struct io *io, uint32_t ev)
{
	struct tcp_listener *l = container_of(io, struct tcp_listener, io);

	for (int i = 0; i < TCP_ACCEPT_BATCH && !l->stopped; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			int err = -errno;

			if (err == -EAGAIN || err == -EINTR)
				return;
			if (err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM) {
				listener_shed(l, err);
				return;
			}
			/* ECONNABORTED and friends: that client is gone, keep accepting */
			LOG_RL(LOG_DEBUG, "%s: accept: %s", l->rule->desc, strerror(-err));
			continue;
		}
		conn_start(l, fd);
	}
}

static void on_listener_pause_end(struct timer *t)
{
	struct tcp_listener *l = container_of(t, struct tcp_listener, pause);

	if (!l->stopped && loop_add(l->w->loop, &l->io, EPOLLIN))
		timer_arm(l->w->loop, t, TCP_ACCEPT_PAUSE_MS);
}

/*
 * --transparent and --tproxy at the start of a rule: checks what would otherwise fail for
 * every connection and makes the listener transparent (works on a bound, even listening,
 * socket: the tproxy rule looks at the flag per packet). Logs why it fails.
 */
static int listener_transparent_setup(struct worker *w, const struct rule *r, int fd)
{
	struct sockaddr_storage self;
	socklen_t len = sizeof(self);
	sa_family_t family;
	int err;

	if (!r->o.transparent && !r->o.tproxy)
		return 0;
	/* the socket's own family: an inherited one (fd://) included */
	if (getsockname(fd, (struct sockaddr *)&self, &len))
		return -errno;
	family = self.ss_family;

	if (r->o.transparent) {
		bool same_family = false;

		for (unsigned i = 0; i < r->target.naddrs; i++)
			same_family |= r->target.addrs[i].ss_family == family;
		if (!same_family) {
			log_error("%s: --transparent: the target has no %s address; the client's address can only be "
				  "used towards a target of its own family", r->desc, family == AF_INET6 ? "IPv6" : "IPv4");
			return -EAFNOSUPPORT;
		}
		err = sock_transparent_allowed(family);
		if (err) {
			log_error("%s: --transparent: IP_TRANSPARENT: %s (needs CAP_NET_ADMIN)", r->desc, strerror(-err));
			return err;
		}
		if (w->id == 0)
			log_info("%s: --transparent: the target's replies reach ferry only if they pass this host "
				 "and policy routing delivers them locally (docs/MANUAL.md, \"Transparent forwarding\")", r->desc);
	}
	if (r->o.tproxy) {
		err = sock_set_transparent(fd, family);
		if (err) {
			log_error("%s: --tproxy: IP_TRANSPARENT on the listening socket: %s%s", r->desc, strerror(-err),
				  err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
			return err;
		}
	}
	return 0;
}

int tcp_listener_start(struct worker *w, struct rule *r, int fd)
{
	struct tcp_listener *l = calloc(1, sizeof(*l));
	int err;

	if (!l) {
		err = -ENOMEM;
		goto fail;
	}
	err = listener_transparent_setup(w, r, fd);
	if (err)
		goto fail;
	l->w = w;
	l->rule = r;
	l->st = &r->stats[w->id];
	l->io.fd = fd;
	l->io.cb = on_accept;
	timer_init(&l->pause, on_listener_pause_end);
	err = loop_add(w->loop, &l->io, EPOLLIN);
	if (err)
		goto fail;
	list_add(&w->listeners, &l->link);
	return 0;

fail:
	free(l);
	close(fd);
	rule_unref(r);
	return err;
}

static void listener_stop(struct tcp_listener *l)
{
	struct worker *w = l->w;

	if (l->stopped)
		return;
	l->stopped = true;
	timer_cancel(w->loop, &l->pause);
	loop_del(w->loop, &l->io);
	close(l->io.fd);
	l->io.fd = -1;
	if (l->nconns == 0)
		listener_free(l);
}

void tcp_listener_stop_rule(struct worker *w, const struct rule *r)
{
	struct list *pos, *tmp;

	list_for_each_safe(pos, tmp, &w->listeners) {
		struct tcp_listener *l = container_of(pos, struct tcp_listener, link);

		if (l->rule == r)
			listener_stop(l);
	}
}

void tcp_listener_stop_all(struct worker *w)
{
	struct list *pos, *tmp;

	list_for_each_safe(pos, tmp, &w->listeners)
		listener_stop(container_of(pos, struct tcp_listener, link));
}

void tcp_conn_close_all(struct worker *w)
{
	struct list *pos, *tmp;

	/* cut short, not finished: a reset tells the peer so, where a FIN would look complete */
	list_for_each_safe(pos, tmp, &w->conns)
		conn_close(container_of(pos, struct tcp_conn, link), true);
}
