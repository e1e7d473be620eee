/*
 * ICMP echo sockets (see icmp_sock.h). Socket set-up and the per-frame header build; the
 * relay does the batching.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <linux/icmp.h>

#include "net/sock.h"
#include "transport/icmp_sock.h"

/* Tunnel bursts must not overflow the socket: same size as the UDP relay's listeners. */
#define ICMP_SOCK_BUF_BYTES (4 << 20)

static void icmp_sock_filter(int fd, int family)
{
	/* A raw socket otherwise gets every ICMP message of the host; we only want echoes. */
	if (family == AF_INET) {
		struct icmp_filter f = { ~((1u << ICMP4_ECHO_REQUEST) | (1u << ICMP4_ECHO_REPLY)) };
		(void)setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof(f));
	} else {
		struct icmp6_filter f;
		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REQUEST, &f);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
		(void)setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
	}
}

int icmp_sock_open(struct icmp_sock *s, const struct sockaddr *bind_addr, bool raw, uint16_t id)
{
	int family = bind_addr->sa_family;
	int proto = family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	struct sockaddr_storage ss;
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int err;

	memset(s, 0, sizeof(*s));
	s->fd = socket(family, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (s->fd < 0)
		return -errno;
	s->family = family;
	s->raw = raw;
	sock_set_buf(s->fd, SO_RCVBUF, ICMP_SOCK_BUF_BYTES);
	sock_set_buf(s->fd, SO_SNDBUF, ICMP_SOCK_BUF_BYTES);
	if (raw)
		icmp_sock_filter(s->fd, family);
	memcpy(&ss, bind_addr, len);
	/* the "port" of a ping socket is its echo identifier; raw sockets have none */
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = raw ? 0 : htons(id);
	else
		((struct sockaddr_in *)&ss)->sin_port = raw ? 0 : htons(id);
	if (bind(s->fd, (struct sockaddr *)&ss, len))
		goto fail;
	if (!raw) {
		if (getsockname(s->fd, (struct sockaddr *)&ss, &len))
			goto fail;
		s->local_id = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
fail:
	err = -errno;
	close(s->fd);
	s->fd = -1;
	return err;
}

void icmp_sock_close(struct icmp_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

uint8_t icmp_sock_echo_type(const struct icmp_sock *s, bool request)
{
	if (s->family == AF_INET6)
		return request ? ICMP6_ECHO_REQUEST : ICMP6_ECHO_REPLY;
	return request ? ICMP4_ECHO_REQUEST : ICMP4_ECHO_REPLY;
}

int icmp_sock_build(const struct icmp_sock *s, uint8_t type, const struct icmp_out *o,
		    const uint8_t *payload, size_t len, uint8_t *hdr)
{
	int n;

	icmp_echo_write(hdr, type, o->echo_id, o->seq);
	n = shim_encode(&o->f, o->echo_id, hdr + ICMP_ECHO_HDR_BYTES, SHIM_MAX_BYTES);
	if (n < 0)
		return n;
	n += ICMP_ECHO_HDR_BYTES;
	/* IPv6 raw sockets and all ping sockets get the checksum from the kernel */
	if (s->raw && s->family == AF_INET) {
		struct csum_piece pieces[2] = { { hdr, (size_t)n }, { payload, len } };
		uint16_t c = inet_csum(pieces, 2);
		hdr[2] = (uint8_t)(c >> 8);
		hdr[3] = (uint8_t)c;
	}
	return n;
}

int icmp_sock_message(const struct icmp_sock *s, uint8_t *buf, size_t n, uint8_t **msg, size_t *len)
{
	size_t off;
	uint32_t src;
	int err;

	if (!s->raw || s->family == AF_INET6) {
		*msg = buf;
		*len = n;
		return 0;
	}
	err = ip4_icmp_payload(buf, n, &off, len, &src);
	if (err)
		return err;
	*msg = buf + off;
	return 0;
}
