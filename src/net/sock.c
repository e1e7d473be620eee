/* Socket set-up; see sock.h. Nothing here runs per packet. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "net/endpoint.h"
#include "net/sock.h"

/* from <linux/netfilter_ipv4.h> / <linux/netfilter_ipv6/ip6_tables.h>, which clash with glibc */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static int setopt_int(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) ? -errno : 0;
}

int sock_tcp_listen(const struct sockaddr *sa, const struct sock_opts *o, int backlog)
{
	int fd, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted forwarder must be able to rebind while old connections sit in TIME_WAIT. */
	err = setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err && o->reuseport)
		err = setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!err && sa->sa_family == AF_INET6)
		err = setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only);
	/* accepted sockets inherit nodelay, keepalive and buffer sizes from the listener:
	 * set them once here instead of on every accepted connection */
	if (!err)
		sock_tcp_tune(fd, o);
	if (!err && bind(fd, sa, sockaddr_len(sa)))
		err = -errno;
	if (!err && listen(fd, backlog))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* A listener that serves many clients needs room for bursts; 4 MiB, as far as allowed. */
#define SOCK_UDP_RCVBUF_BYTES (4 << 20)

void sock_set_buf(int fd, int name, int bytes)
{
	int force_name = name == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;

	/* as root, go beyond net.core.[rw]mem_max; otherwise take what the sysctl allows */
	if (setopt_int(fd, SOL_SOCKET, force_name, bytes))
		setopt_int(fd, SOL_SOCKET, name, bytes);
}

int sock_udp_bind(const struct sockaddr *sa, const struct sock_opts *o)
{
	int fd, err = 0;

	fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (o->reuseaddr)
		err = setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err && o->reuseport)
		err = setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!err && sa->sa_family == AF_INET6)
		err = setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only);
	if (!err) {
		sock_set_buf(fd, SO_RCVBUF, o->rcvbuf ? o->rcvbuf : SOCK_UDP_RCVBUF_BYTES);
		if (o->sndbuf)
			sock_set_buf(fd, SO_SNDBUF, o->sndbuf);
	}
	if (!err && bind(fd, sa, sockaddr_len(sa)))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

void sock_tcp_keepalive(int fd, const struct sock_opts *o)
{
	if (o->keepalive) {
		setopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
		setopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)o->ka_idle_s);
		setopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)o->ka_intvl_s);
		setopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)o->ka_cnt);
	}
}

static void sock_tcp_tune_nokeepalive(int fd, const struct sock_opts *o)
{
	/* Errors are ignored on purpose: a missing tuning knob must not drop a connection. */
	setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (o->sndbuf)
		setopt_int(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf);
	if (o->rcvbuf)
		setopt_int(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf);
}

void sock_tcp_tune(int fd, const struct sock_opts *o)
{
	sock_tcp_tune_nokeepalive(fd, o);
	sock_tcp_keepalive(fd, o);
}

int sock_tcp_connect_nokeepalive(const struct sockaddr *sa, const struct sock_opts *o, int *out)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*out = -1;
	if (fd < 0)
		return -errno;
	sock_tcp_tune_nokeepalive(fd, o);
	if (connect(fd, sa, sockaddr_len(sa)) && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

void sock_close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len))
		return errno;
	return e;
}

int sock_original_dst(int fd, struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);

	if (getsockname(fd, (struct sockaddr *)&local, &llen))
		return -errno;
	memset(out, 0, sizeof(*out));
	if (local.ss_family == AF_INET6) {
		if (!getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len))
			return 0;
		/* a v4 client on a dual-stack socket: fall through to the IPv4 table */
	}
	len = sizeof(struct sockaddr_in);
	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len))
		return -errno;
	return 0;
}

/* ---- transparent sockets ---- */

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int sock_set_transparent(int fd, sa_family_t family)
{
	if (family == AF_INET6)
		return setopt_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
	return setopt_int(fd, SOL_IP, IP_TRANSPARENT, 1);
}

int sock_transparent_allowed(sa_family_t family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	err = sock_set_transparent(fd, family);
	close(fd);
	return err;
}

int sock_bind_transparent(int fd, const struct sockaddr *src)
{
	int err = sock_set_transparent(fd, src->sa_family);

	if (!err)
		err = setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err && bind(fd, src, sockaddr_len(src)))
		err = -errno;
	return err;
}

static int tcp_connect_from(const struct sockaddr *sa, const struct sockaddr *src, const struct sock_opts *o,
			    bool any_port, int *out)
{
	struct sockaddr_storage from;
	int fd, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(&from, src, sockaddr_len(src));
	if (any_port) {
		sockaddr_set_port((struct sockaddr *)&from, 0);
		/* the port is chosen at connect(), unique for the 4-tuple, not at bind() */
		setopt_int(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
	}
	sock_tcp_tune_nokeepalive(fd, o);
	err = sock_bind_transparent(fd, (struct sockaddr *)&from);
	if (!err && connect(fd, sa, sockaddr_len(sa)) && errno != EINPROGRESS)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

int sock_tcp_connect_from(const struct sockaddr *sa, const struct sockaddr *src, const struct sock_opts *o, int *out)
{
	int err;

	*out = -1;
	err = tcp_connect_from(sa, src, o, false, out);
	/* the client's port is taken on that address already (the client itself, when it runs
	 * on this host, or an earlier connection to the same target still in TIME_WAIT) */
	if (err == -EADDRINUSE || err == -EADDRNOTAVAIL)
		err = tcp_connect_from(sa, src, o, true, out);
	return err;
}

void sock_addr_unmap(struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

void sock_addr_map(struct sockaddr_storage *ss)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };

	if (ss->ss_family != AF_INET)
		return;
	s6.sin6_port = s4->sin_port;
	s6.sin6_addr.s6_addr[10] = 0xff;
	s6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&s6.sin6_addr.s6_addr[12], &s4->sin_addr, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s6, sizeof(s6));
}
