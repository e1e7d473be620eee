/*
 * UDP relay. A listener reads datagrams in batches (recvmmsg); each client address maps
 * to a session whose upstream socket is connected to the target, so the kernel filters
 * stray sources and ICMP errors arrive on that socket. Consecutive datagrams of one
 * session in a batch go out in one sendmmsg. Replies are read in batches from the session
 * socket and sent to the client from the listening socket.
 *
 * Sessions expire after --udp-timeout without traffic (a lazily re-armed timer, not a
 * scan); at --max-sessions the least recently active session makes room, counted as
 * expired if its time was up anyway, else as evicted. Datagrams are never truncated:
 * buffers hold 64 KiB, anything above --max-datagram is dropped and counted.
 *
 * Transparent forwarding (spec/systemd.md §4-§6). --transparent: the session socket is
 * IP_TRANSPARENT and bound to the client's own address and port before it connects, so
 * the target sees the client; the target's replies come back to it only where policy
 * routing delivers them locally. --tproxy: the listener is IP_TRANSPARENT and reports each
 * datagram's original destination (IP_ORIGDSTADDR); a session for a diverted datagram gets
 * a second socket, bound to that destination and connected to the client, that sends the
 * replies (the client sees the address it talked to) and from then on also receives the
 * client's datagrams (the kernel prefers a connected socket, and so does the tproxy rule).
 */
#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/batch.h"
#include "net/endpoint.h"
#include "net/pktinfo.h"
#include "net/sock.h"
#include "relay/sess_table.h"
#include "relay/udp.h"
#include "relay/worker.h"

/* Datagrams per recvmmsg/sendmmsg. */
#define UDP_BATCH 32
/* Batches read per wake-up before other sockets get a turn. */
#define UDP_ROUNDS 8
/* A whole datagram of any size fits (64 KiB; IP limits payloads to 65,527 bytes). */
#define UDP_BUF_BYTES 65536
/* Bucket count the table starts with when -H is not given; it doubles as sessions come. */
#define UDP_HASH_START 256
/* A GRO buffer holds at most 64 datagrams (UDP_MAX_SEGMENTS on older kernels; 128 on new
 * ones, but a 64 KiB buffer of 1-byte segments is capped by the GRO layer's own limits). */
#define UDP_GRO_SEGS 128
#define UDP_SEGS_MAX (UDP_BATCH * UDP_GRO_SEGS)
/* Receive control data: destination address (pktinfo), original destination (tproxy), GRO
 * segment size, drop count. */
#define UDP_CTL_BYTES (PKTINFO_CMSG_BYTES + ORIGDST_CMSG_BYTES + 64)
/* A session's receive buffer: room for a burst of large replies (the default, ~208 KiB,
 * holds only three 64 KiB datagrams). A limit, not an allocation. */
#define UDP_SESSION_RCVBUF_BYTES (1 << 20)

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

struct udp_scratch {
	struct mmsghdr rx[UDP_BATCH];
	struct batch_tx tx;
	struct iovec iov[UDP_BATCH];
	union sess_addr from[UDP_BATCH];
	char ctl[UDP_BATCH][UDP_CTL_BYTES];
	/* the received messages cut into datagrams (GRO may deliver several in one) */
	struct iovec seg[UDP_SEGS_MAX];
	uint8_t seg_msg[UDP_SEGS_MAX];	/* which message each datagram came in */
	char reply_ctl[PKTINFO_CMSG_BYTES];
	char buf[UDP_BATCH][UDP_BUF_BYTES];
};

struct udp_listener {
	struct io io;
	struct list link;
	struct worker *w;
	struct rule *rule;
	struct rule_stats *st;
	struct sess_table tab;
	uint32_t max_dgram;
	sa_family_t family;
	uint32_t rxq_drops;	/* the listener socket's drop count last seen (SO_RXQ_OVFL) */
	uint32_t quota;		/* sessions this worker may hold: its share of --max-sessions */
	uint16_t port;		/* the listening socket's own port (tells diverted datagrams apart) */
	bool pktinfo;		/* bound to a wildcard address: answer from the address hit */
	bool stopped;
};

struct udp_sess {
	struct io io;		/* upstream socket, connected to the target */
	struct sess_node node;	/* key = client address */
	struct udp_listener *lst;
	struct worker *w;	/* outlives lst when the last session of a stopped listener goes */
	struct timer timer;
	struct defer free_later;
	struct local_addr local;	/* where the client sent to (wildcard or --tproxy listeners) */
	uint32_t rxq_drops;	/* the session socket's drop count last seen (SO_RXQ_OVFL) */
	/* --tproxy, diverted datagrams: bound to the original destination, connected to the
	 * client; replies leave here, later client datagrams arrive here. fd -1 otherwise. */
	struct io down;
	uint32_t down_rxq_drops;
	bool closed;
};

static struct udp_scratch *scratch_get(struct worker *w)
{
	if (!w->udp_scratch) {
		struct udp_scratch *s = calloc(1, sizeof(*s));

		if (!s)
			return NULL;
		for (int i = 0; i < UDP_BATCH; i++) {
			s->iov[i].iov_base = s->buf[i];
			s->iov[i].iov_len = UDP_BUF_BYTES;
		}
		w->udp_scratch = s;
	}
	return w->udp_scratch;
}

void udp_worker_cleanup(struct worker *w)
{
	free(w->udp_scratch);
	w->udp_scratch = NULL;
}

/* ---- receiving ---- */

/* Prepares sc->rx for one recvmmsg; with from, sender addresses are wanted too. */
static void rx_prepare(struct udp_scratch *sc, bool from)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		struct msghdr *mh = &sc->rx[i].msg_hdr;

		sc->iov[i].iov_len = UDP_BUF_BYTES;
		memset(mh, 0, sizeof(*mh));
		if (from) {
			mh->msg_name = &sc->from[i];
			mh->msg_namelen = sizeof(sc->from[i]);
		}
		mh->msg_iov = &sc->iov[i];
		mh->msg_iovlen = 1;
		mh->msg_control = sc->ctl[i];
		mh->msg_controllen = sizeof(sc->ctl[i]);
	}
}

/* The GRO segment size of a message (0: one datagram), and the socket's drop count. */
static unsigned rx_control(const struct msghdr *mh, uint32_t *drops)
{
	unsigned seg = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;

			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			seg = v > 0 ? (unsigned)v : 0;
		} else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
			memcpy(drops, CMSG_DATA(cm), sizeof(*drops));
		}
	}
	return seg;
}

/*
 * Cuts the n received messages into datagrams (sc->seg), dropping and counting those
 * above --max-datagram or truncated. A GRO message is several datagrams of its segment
 * size, the last one shorter. Returns the number of datagrams.
 */
static int rx_split(struct udp_listener *l, struct udp_scratch *sc, int n, uint32_t *rxq_drops)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		const struct msghdr *mh = &sc->rx[i].msg_hdr;
		uint32_t drops = *rxq_drops;
		unsigned len = sc->rx[i].msg_len, seg = rx_control(mh, &drops);
		char *p = sc->iov[i].iov_base;

		if (drops != *rxq_drops) {
			/* the kernel's running count for this socket (wraps at 2^32) */
			CTR_ADD(l->st->drops[DROP_RCVBUF], (uint64_t)(uint32_t)(drops - *rxq_drops));
			*rxq_drops = drops;
		}

		if (mh->msg_flags & MSG_TRUNC) {
			CTR_ADD(l->st->drops[DROP_OVERSIZE], 1);
			continue;
		}
		if (!seg || seg > len)
			seg = len;
		for (unsigned off = 0; off < len || (len == 0 && off == 0); off += seg) {
			unsigned part = MIN(seg, len - off);

			if (part > l->max_dgram) {
				CTR_ADD(l->st->drops[DROP_OVERSIZE], 1);
			} else if (k < UDP_SEGS_MAX) {
				sc->seg[k].iov_base = p + off;
				sc->seg[k].iov_len = part;
				sc->seg_msg[k++] = (uint8_t)i;
			}
			if (len == 0)
				break;
		}
	}
	return k;
}

/* Asks for coalesced receives where the kernel offers UDP GRO (harmless where it does not)
 * and for the count of datagrams dropped on a full receive buffer. */
static void rx_options(int fd)
{
	int one = 1;

	setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
}

/* ---- sessions ---- */

static void sess_free(struct defer *d)
{
	struct udp_sess *s = container_of(d, struct udp_sess, free_later);
	struct worker *w = s->w;

	free(s);
	worker_conn_gone(w);
}

static void listener_free_if_done(struct udp_listener *l);

static void sess_close(struct udp_sess *s)
{
	struct udp_listener *l = s->lst;
	struct worker *w = l->w;

	if (s->closed)
		return;
	s->closed = true;
	timer_cancel(w->loop, &s->timer);
	close(s->io.fd);	/* also takes it out of epoll: the fd is never dup'ed */
	if (s->down.fd >= 0)
		close(s->down.fd);
	sess_table_remove(&l->tab, &s->node);
	w->nconns--;
	__atomic_sub_fetch(&l->rule->active, 1, __ATOMIC_RELAXED);
	CTR_ADD(l->st->closed, 1);
	loop_defer(w->loop, &s->free_later, sess_free);
	listener_free_if_done(l);
}

static void on_sess_timer(struct timer *t)
{
	struct udp_sess *s = container_of(t, struct udp_sess, timer);
	struct udp_listener *l = s->lst;
	uint32_t idle = l->rule->o.udp_timeout_ms;
	uint64_t now = loop_now(l->w->loop);

	/* activity only stamps last_ms; the deadline is checked (and moved) here */
	if (now - s->node.last_ms < idle) {
		timer_arm_at(l->w->loop, t, s->node.last_ms + idle);
		return;
	}
	CTR_ADD(l->st->sess_expired, 1);
	sess_close(s);
}

/* where: "receive", "reply"; peer: who sent the ICMP error ("target", "client") */
static void count_recv_error(struct udp_listener *l, int err, const char *where, const char *peer)
{
	if (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN) {
		CTR_ADD(l->st->drops[DROP_ICMP_ERROR], 1);
		LOG_RL(LOG_WARN, "%s: %s: ICMP error from the %s: %s", l->rule->desc, where, peer, strerror(err));
	} else if (err != EAGAIN && err != EINTR) {
		LOG_RL(LOG_WARN, "%s: %s: %s", l->rule->desc, where, strerror(err));
	}
}

/*
 * Sends iov[0..n) on fd (to `to`, or connected when NULL) and counts what went out. A
 * queued ICMP error fails one send and is cleared by it: counted, and the send retried
 * once. Any other refusal (EAGAIN: buffer full; EPERM: an egress filter) loses that
 * datagram, counted as a send error.
 */
static void relay_batch(struct udp_listener *l, int fd, struct iovec *iov, int n, const struct sockaddr *to,
			uint64_t *dgrams, uint64_t *bytes)
{
	struct udp_scratch *sc = l->w->udp_scratch;
	socklen_t tolen = to ? sockaddr_len(to) : 0;
	int done = 0, sent = 0;
	bool retried = false;
	uint64_t b = 0;

	while (done < n) {
		int k = batch_send(&sc->tx, fd, iov + done, n - done, to, tolen);

		if (k > 0) {
			for (int i = done; i < done + k; i++)
				b += iov[i].iov_len;
			done += k;
			sent += k;
			continue;
		}
		if (k == -ECONNREFUSED && !retried) {
			retried = true;
			CTR_ADD(l->st->drops[DROP_ICMP_ERROR], 1);
			continue;
		}
		CTR_ADD(l->st->drops[DROP_SEND_ERROR], 1);
		LOG_RL(LOG_DEBUG, "%s: send: %s", l->rule->desc, strerror(-k));
		done++;
	}
	CTR_ADD(*dgrams, (uint64_t)sent);
	CTR_ADD(*bytes, b);
}

/* Sends the k replies in sc->seg to the client: from the listener, from the address the
 * client sent to, or (--tproxy, diverted) from the socket at the original destination. */
static void sess_reply(struct udp_listener *l, struct udp_sess *s, struct udp_scratch *sc, int k)
{
	if (s->down.fd >= 0) {
		relay_batch(l, s->down.fd, sc->seg, k, NULL, &l->st->dgrams_down, &l->st->bytes_down);
		return;
	}
	if (s->local.family) {
		sc->tx.extra_cmsg = sc->reply_ctl;
		sc->tx.extra_cmsg_len = pktinfo_build(&s->local, l->family, sc->reply_ctl, sizeof(sc->reply_ctl));
	}
	relay_batch(l, l->io.fd, sc->seg, k, &s->node.key.sa, &l->st->dgrams_down, &l->st->bytes_down);
	sc->tx.extra_cmsg = NULL;
	sc->tx.extra_cmsg_len = 0;
}

/*
 * Reads a session's socket in batches: the upstream socket (replies, to the client) or a
 * --tproxy session's reply socket (the client's later datagrams, to the target).
 */
static void sess_drain(struct udp_sess *s, int fd, bool to_target)
{
	struct udp_listener *l = s->lst;
	struct udp_scratch *sc = l->w->udp_scratch;

	if (s->closed)
		return;
	for (int round = 0; round < UDP_ROUNDS; round++) {
		int n, k;

		rx_prepare(sc, false);
		n = recvmmsg(fd, sc->rx, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0)
				count_recv_error(l, errno, to_target ? "receive" : "reply",
						 to_target ? "client" : "target");
			return;
		}
		k = rx_split(l, sc, n, to_target ? &s->down_rxq_drops : &s->rxq_drops);
		sess_table_touch(&l->tab, &s->node, loop_now(l->w->loop));
		if (to_target)
			relay_batch(l, s->io.fd, sc->seg, k, NULL, &l->st->dgrams_up, &l->st->bytes_up);
		else
			sess_reply(l, s, sc, k);
		if (n < UDP_BATCH)
			return;
	}
}

/* Replies: target -> session socket -> listener socket (or the tproxy one) -> client. */
static void on_sess_readable(struct io *io, uint32_t events)
{
	struct udp_sess *s = container_of(io, struct udp_sess, io);

	sess_drain(s, io->fd, false);
}

/*
 * --transparent: binds the session socket to the client's address and port (spec §4), or,
 * when that port is taken on this host without SO_REUSEADDR (a client on this host), to
 * the client's address with a port of the kernel's choosing.
 */
static int sess_bind_client(int fd, const struct sockaddr_storage *client)
{
	struct sockaddr_storage any_port = *client;
	int err = sock_bind_transparent(fd, (const struct sockaddr *)client);

	if (err != -EADDRINUSE)
		return err;
	sockaddr_set_port((struct sockaddr *)&any_port, 0);
	return bind(fd, (struct sockaddr *)&any_port, sockaddr_len((struct sockaddr *)&any_port)) ? -errno : 0;
}

/* The session's upstream socket, connected to the first target address that takes it. */
static int sess_socket(struct udp_listener *l, const struct sockaddr *client, int *out)
{
	const struct rule *r = l->rule;
	struct sockaddr_storage from = { .ss_family = AF_UNSPEC };
	int err = -EHOSTUNREACH;

	if (r->o.transparent) {
		memcpy(&from, client, sockaddr_len(client));
		/* an IPv4 client of a dual-stack listener speaks IPv4 to an IPv4 target */
		sock_addr_unmap(&from);
		err = -EAFNOSUPPORT;
	}
	for (unsigned i = 0; i < r->target.naddrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&r->target.addrs[i];
		int fd;

		if (r->o.transparent && sa->sa_family != from.ss_family)
			continue;
		fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (r->o.sock.sndbuf)
			sock_set_buf(fd, SO_SNDBUF, r->o.sock.sndbuf);
		sock_set_buf(fd, SO_RCVBUF, r->o.sock.rcvbuf ? r->o.sock.rcvbuf : UDP_SESSION_RCVBUF_BYTES);
		err = r->o.transparent ? sess_bind_client(fd, &from) : 0;
		if (!err && connect(fd, sa, sockaddr_len(sa)) == 0) {
			rx_options(fd);
			*out = fd;
			return 0;
		}
		if (!err)
			err = -errno;
		close(fd);
	}
	return err;
}

/* Client datagrams that arrive on a --tproxy session's reply socket: session -> target. */
static void on_down_readable(struct io *io, uint32_t events)
{
	struct udp_sess *s = container_of(io, struct udp_sess, down);

	sess_drain(s, io->fd, true);
}

/*
 * --tproxy (spec §5): where a new session's replies leave from. A datagram sent to the
 * listener itself is answered from the listener, from the address it was sent to; one an
 * nft tproxy rule diverted here gets a socket of its own, bound to the original
 * destination and connected to the client. Returns that socket, -1 for none, or -errno.
 */
static int sess_tproxy_socket(struct udp_listener *l, struct udp_sess *s, const struct sockaddr *client,
			      const struct msghdr *mh)
{
	struct sockaddr_storage dst;
	int fd, err;

	if (!origdst_parse(mh, &dst))
		return -1;
	if (l->family == AF_INET6)
		sock_addr_map(&dst);	/* an IPv4 client of a dual-stack listener */
	if (sockaddr_port((struct sockaddr *)&dst) == l->port) {
		const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)&dst;
		const struct sockaddr_in *d4 = (const struct sockaddr_in *)&dst;

		s->local.family = dst.ss_family;
		if (dst.ss_family == AF_INET6)
			s->local.v6 = d6->sin6_addr;
		else
			s->local.v4 = d4->sin_addr;
		return -1;
	}
	fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (dst.ss_family == AF_INET6) {
		int off = 0;

		/* v4-mapped addresses need a dual-stack socket, whatever the sysctl default */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	}
	err = sock_bind_transparent(fd, (struct sockaddr *)&dst);
	if (!err && connect(fd, client, sockaddr_len(client)))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	sock_set_buf(fd, SO_RCVBUF, l->rule->o.sock.rcvbuf ? l->rule->o.sock.rcvbuf : UDP_SESSION_RCVBUF_BYTES);
	rx_options(fd);
	return fd;
}

/*
 * Makes room when this worker holds its share of --max-sessions: its least recently
 * active session goes. Each worker owns its sessions (a client stays on one worker), so
 * the limit is split between them instead of being shared under a lock.
 */
static bool sess_make_room(struct udp_listener *l)
{
	struct rule *r = l->rule;
	struct sess_node *old;

	if (l->tab.count < l->quota)
		return true;
	old = sess_table_oldest(&l->tab);
	if (!old)
		return false;
	if (loop_now(l->w->loop) - old->last_ms >= r->o.udp_timeout_ms)
		CTR_ADD(l->st->sess_expired, 1);
	else
		CTR_ADD(l->st->sess_evicted, 1);
	sess_close(container_of(old, struct udp_sess, node));
	return true;
}

static struct udp_sess *sess_open(struct udp_listener *l, const struct sockaddr *client, const struct msghdr *mh)
{
	struct worker *w = l->w;
	struct udp_sess *s;
	int fd = -1, down = -1, err;

	if (!sess_make_room(l)) {
		CTR_ADD(l->st->drops[DROP_NO_SESSION], 1);
		LOG_RL(LOG_WARN, "%s: --max-sessions %u reached, datagram dropped", l->rule->desc,
		       l->rule->o.max_sessions);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		CTR_ADD(l->st->drops[DROP_NO_MEMORY], 1);
		return NULL;
	}
	err = sess_socket(l, client, &fd);
	if (err) {
		free(s);
		CTR_ADD(l->st->drops[err == -EMFILE || err == -ENFILE ? DROP_NO_FDS : DROP_NO_SESSION], 1);
		LOG_RL(LOG_WARN, "%s: upstream socket: %s", l->rule->desc, strerror(-err));
		return NULL;
	}
	if (l->rule->o.tproxy) {
		down = sess_tproxy_socket(l, s, client, mh);
		if (down < -1) {
			close(fd);
			free(s);
			CTR_ADD(l->st->drops[down == -EMFILE || down == -ENFILE ? DROP_NO_FDS : DROP_NO_SESSION], 1);
			LOG_RL(LOG_WARN, "%s: socket at the original destination: %s", l->rule->desc, strerror(-down));
			return NULL;
		}
	}
	s->lst = l;
	s->w = w;
	if (l->pktinfo)
		pktinfo_parse(mh, &s->local);
	s->io.fd = fd;
	s->io.cb = on_sess_readable;
	s->down.fd = down;
	s->down.cb = on_down_readable;
	timer_init(&s->timer, on_sess_timer);
	if (sess_table_insert(&l->tab, &s->node, client, loop_now(w->loop)) ||
	    loop_add(w->loop, &s->io, EPOLLIN) || (down >= 0 && loop_add(w->loop, &s->down, EPOLLIN))) {
		if (s->node.lru.next)
			sess_table_remove(&l->tab, &s->node);
		close(fd);	/* also leaves epoll */
		if (down >= 0)
			close(down);
		free(s);
		CTR_ADD(l->st->drops[DROP_NO_SESSION], 1);
		return NULL;
	}
	timer_arm(w->loop, &s->timer, l->rule->o.udp_timeout_ms);
	__atomic_add_fetch(&l->rule->active, 1, __ATOMIC_RELAXED);
	CTR_ADD(l->st->accepted, 1);
	w->nconns++;
	return s;
}

/* Sends datagrams [first, end) of sc->seg, all from one client, to its session. */
static void flush_run(struct udp_listener *l, struct udp_sess *s, int first, int end)
{
	struct udp_scratch *sc = l->w->udp_scratch;

	relay_batch(l, s->io.fd, sc->seg + first, end - first, NULL, &l->st->dgrams_up, &l->st->bytes_up);
}

/* Client datagrams: listener -> session -> target. */
static void on_listener_readable(struct io *io, uint32_t events)
{
	struct udp_listener *l = container_of(io, struct udp_listener, io);
	struct udp_scratch *sc = l->w->udp_scratch;
	uint64_t now = loop_now(l->w->loop);

	for (int round = 0; round < UDP_ROUNDS && !l->stopped; round++) {
		struct udp_sess *run = NULL;
		int n, k, run_start = 0;

		rx_prepare(sc, true);
		n = recvmmsg(io->fd, sc->rx, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0)
				count_recv_error(l, errno, "receive", "target");
			return;
		}
		k = rx_split(l, sc, n, &l->rxq_drops);
		for (int j = 0; j < k; j++) {
			int i = sc->seg_msg[j];
			const struct sockaddr *from = &sc->from[i].sa;
			struct sess_node *node;
			struct udp_sess *s;

			if (run && sess_addr_equal(&run->node.key, from))
				continue;	/* same client as the previous datagram: one batch */
			if (run)
				flush_run(l, run, run_start, j);
			run = NULL;
			/* opening may evict a session: every earlier run is flushed already */
			node = sess_table_find(&l->tab, from);
			s = node ? container_of(node, struct udp_sess, node) : sess_open(l, from, &sc->rx[i].msg_hdr);
			if (!s)
				continue;
			sess_table_touch(&l->tab, &s->node, now);
			run = s;
			run_start = j;
		}
		if (run)
			flush_run(l, run, run_start, k);
		if (n < UDP_BATCH)
			return;
	}
}

/* ---- listeners ---- */

/*
 * --transparent and --tproxy at the start of a rule: checks what would otherwise fail for
 * every session, and prepares the listening socket (the options work on a bound socket,
 * so inherited ones too). Logs why it fails.
 */
static int listener_transparent_setup(struct udp_listener *l, int fd)
{
	const struct rule *r = l->rule;
	struct sockaddr_storage self;
	socklen_t len = sizeof(self);
	int err;

	if (r->o.transparent) {
		bool same_family = false;

		for (unsigned i = 0; i < r->target.naddrs; i++)
			same_family |= r->target.addrs[i].ss_family == l->family;
		if (!same_family) {
			log_error("%s: --transparent: the target has no %s address; the client's address can only be "
				  "used towards a target of its own family", r->desc, l->family == AF_INET6 ? "IPv6" : "IPv4");
			return -EAFNOSUPPORT;
		}
		err = sock_transparent_allowed(l->family);
		if (err) {
			log_error("%s: --transparent: IP_TRANSPARENT: %s (needs CAP_NET_ADMIN)", r->desc, strerror(-err));
			return err;
		}
		if (l->w->id == 0)
			log_info("%s: --transparent: the target's replies reach ferry only if they pass this host "
				 "and policy routing delivers them locally (docs/MANUAL.md, \"Transparent forwarding\")", r->desc);
	}
	if (!r->o.tproxy)
		return 0;
	if (getsockname(fd, (struct sockaddr *)&self, &len))
		return -errno;
	l->port = sockaddr_port((struct sockaddr *)&self);
	err = sock_set_transparent(fd, l->family);
	if (!err)
		err = origdst_enable(fd, l->family);
	if (err)
		log_error("%s: --tproxy: IP_TRANSPARENT / IP_RECVORIGDSTADDR on the listening socket: %s%s", r->desc,
			  strerror(-err), err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
	return err;
}

static void listener_free_if_done(struct udp_listener *l)
{
	if (!l->stopped || l->tab.count)
		return;
	list_del(&l->link);
	close(l->io.fd);
	sess_table_destroy(&l->tab);
	rule_unref(l->rule);
	free(l);
}

int udp_listener_start(struct worker *w, struct rule *r, int fd)
{
	struct udp_listener *l = NULL;
	uint32_t max_buckets = r->o.max_sessions, start;
	uint64_t seed = 0;
	int err = -ENOMEM;

	if (!scratch_get(w))
		goto fail;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto fail;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)(uintptr_t)l ^ loop_now(w->loop);
	start = r->o.hash_size ? r->o.hash_size : UDP_HASH_START;
	if (r->o.hash_size > max_buckets)
		max_buckets = r->o.hash_size;
	err = sess_table_init(&l->tab, start, max_buckets, seed);
	if (err)
		goto fail;
	l->w = w;
	l->rule = r;
	l->st = &r->stats[w->id];
	l->max_dgram = r->o.max_datagram ? r->o.max_datagram : UDP_BUF_BYTES - 1;
	l->quota = MAX(r->o.max_sessions / r->nworkers, 1u);
	l->io.fd = fd;
	l->io.cb = on_listener_readable;
	rx_options(fd);
	l->family = r->listen.addrs[0].ss_family;
	err = listener_transparent_setup(l, fd);
	if (err)
		goto fail_table;
	/* with --tproxy the original destination tells where to answer from */
	if (!r->o.tproxy && sockaddr_is_wildcard((const struct sockaddr *)&r->listen.addrs[0])) {
		err = pktinfo_enable(fd, l->family);
		if (err)
			goto fail_table;
		l->pktinfo = true;
	}
	err = loop_add(w->loop, &l->io, EPOLLIN);
	if (err)
		goto fail_table;
	list_add(&w->udp_listeners, &l->link);
	return 0;

fail_table:
	sess_table_destroy(&l->tab);
fail:
	free(l);
	close(fd);
	rule_unref(r);
	return err;
}

static void listener_stop(struct udp_listener *l, bool close_sessions)
{
	struct worker *w = l->w;

	if (!l->stopped) {
		l->stopped = true;
		loop_del(w->loop, &l->io);
	}
	if (close_sessions && l->tab.count) {
		/* the last sess_close() frees l: count down instead of looking at l again */
		for (uint32_t left = l->tab.count; left; left--)
			sess_close(container_of(sess_table_oldest(&l->tab), struct udp_sess, node));
		return;
	}
	listener_free_if_done(l);
}

void udp_listener_stop_rule(struct worker *w, const struct rule *r)
{
	struct list *pos, *tmp;

	list_for_each_safe(pos, tmp, &w->udp_listeners) {
		struct udp_listener *l = container_of(pos, struct udp_listener, link);

		/* sessions go with their rule: a socket left in the SO_REUSEPORT group would
		 * still be handed datagrams that nobody reads */
		if (l->rule == r)
			listener_stop(l, true);
	}
}

void udp_listener_stop_all(struct worker *w)
{
	struct list *pos, *tmp;

	list_for_each_safe(pos, tmp, &w->udp_listeners)
		listener_stop(container_of(pos, struct udp_listener, link), true);
}
