/* Socket set-up helpers: listeners, non-blocking connect, TCP options, original destination,
 * transparent sockets. */
#ifndef FERRY_NET_SOCK_H
#define FERRY_NET_SOCK_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct sock_opts {
	int sndbuf, rcvbuf;		/* 0 = kernel default */
	bool keepalive;
	uint32_t ka_idle_s, ka_intvl_s, ka_cnt;
	bool reuseaddr, reuseport, v6only;
};

/* Bound, listening, non-blocking TCP socket; returns the fd or a negative errno. */
int sock_tcp_listen(const struct sockaddr *sa, const struct sock_opts *o, int backlog);
/* Sets SO_RCVBUF/SO_SNDBUF (name), beyond net.core.[rw]mem_max when allowed (root). */
void sock_set_buf(int fd, int name, int bytes);
/* Bound, non-blocking UDP socket; big default receive buffer (bursts), returns fd or -errno. */
int sock_udp_bind(const struct sockaddr *sa, const struct sock_opts *o);
/* Per-connection options: nodelay, keepalive, buffers (listeners pass them on to accepted sockets). */
void sock_tcp_tune(int fd, const struct sock_opts *o);
/* Only the keepalive part of sock_tcp_tune (four setsockopt calls). */
void sock_tcp_keepalive(int fd, const struct sock_opts *o);
/* Starts a non-blocking connect with nodelay and buffers set, keepalive left to the caller. */
int sock_tcp_connect_nokeepalive(const struct sockaddr *sa, const struct sock_opts *o, int *fd);
/* Closes with an RST instead of a FIN (SO_LINGER 0). */
void sock_close_reset(int fd);
int sock_error(int fd);
/* The address a connection was sent to before an nft/iptables redirect (SO_ORIGINAL_DST). */
int sock_original_dst(int fd, struct sockaddr_storage *out);

/*
 * Transparent sockets (spec/systemd.md §4, §5). IP_TRANSPARENT (IPV6_TRANSPARENT) lets a
 * socket bind to and send from an address that is not the host's, and lets a listener take
 * connections and datagrams an nft tproxy rule hands it. Needs CAP_NET_ADMIN.
 */
int sock_set_transparent(int fd, sa_family_t family);
/* Whether this process may set IP_TRANSPARENT on a socket of family (-EPERM if not). */
int sock_transparent_allowed(sa_family_t family);
/* Makes fd transparent and binds it to src, an address of another host (SO_REUSEADDR:
 * sessions of one client to several targets share its address). */
int sock_bind_transparent(int fd, const struct sockaddr *src);
/*
 * Starts a non-blocking connect to sa from src (spec §4: the target sees src). Binds src's
 * port when it is free for this 4-tuple; else src's address with a port the kernel picks.
 */
int sock_tcp_connect_from(const struct sockaddr *sa, const struct sockaddr *src, const struct sock_opts *o,
			  int *fd);
/* ::ffff:a.b.c.d (an IPv4 peer of a dual-stack socket) becomes a.b.c.d; others stay. */
void sock_addr_unmap(struct sockaddr_storage *ss);
/* a.b.c.d becomes ::ffff:a.b.c.d (for a dual-stack IPv6 socket); others stay. */
void sock_addr_map(struct sockaddr_storage *ss);

#endif
