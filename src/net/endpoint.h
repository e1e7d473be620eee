/*
 * Endpoints: "scheme://host:port" text, parsed (syntax only, no I/O) and then resolved
 * to a list of socket addresses. Also the formatting of addresses for logs and stats.
 */
#ifndef FERRY_NET_ENDPOINT_H
#define FERRY_NET_ENDPOINT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EP_HOST_MAX 256
/* Addresses kept from resolution; connect tries them in order. */
#define EP_ADDRS_MAX 8
/* Long enough for "[v6addr%scope]:65535" and "scheme://" + a host name. */
#define EP_TEXT_MAX (EP_HOST_MAX + 32)
#define EP_ERR_MAX 256

enum ep_scheme {
	EP_TCP = 1,
	EP_UDP,
	EP_KCP,		/* TCP streams over KCP over UDP (spec/kcp.md) */
	EP_FD,		/* listen only: an inherited socket, fd://NAME or fd://N (spec/systemd.md §2) */
	EP_ICMP,	/* the ICMP echo tunnel of pkthere (spec/pkthere.md §3): icmp://HOST[:ID[:REPLY_ID]] */
};

struct endpoint {
	enum ep_scheme scheme;
	char host[EP_HOST_MAX];	/* as written, brackets removed */
	uint16_t port;
	unsigned naddrs;
	struct sockaddr_storage addrs[EP_ADDRS_MAX];
	/*
	 * fd:// only. host holds the selector as written (a FileDescriptorName, or the number);
	 * fd_num is that number for fd://N, else -1. Once attached to an inherited socket,
	 * fd is that socket (-1 before), fd_type its SOCK_DGRAM/SOCK_STREAM, addrs[0] and port
	 * its local address.
	 */
	int fd_num;
	int fd;
	int fd_type;
	/*
	 * icmp:// only. port holds the echo ID (0 = dynamic: a listener learns the first peer's,
	 * a target uses its ping socket's); reply_id is REPLY_ID, or -1 when not given. As a
	 * listener REPLY_ID is the ID the client is told to send replies to (pkthere's
	 * --here-reply-id), as a target the local ID announced to the peer (--there-reply-id).
	 */
	int32_t reply_id;
};

/*
 * Parses "tcp://host:port" (IPv6 literal in brackets), "fd://NAME" / "fd://N", or
 * "icmp://host[:id[:reply_id]]". On error returns -EINVAL and writes one line into err
 * naming the bad word and what is accepted.
 */
int endpoint_parse(const char *text, struct endpoint *ep, char *err, size_t errlen);
/* Parses "host:port" with the scheme given (portfwd's argument style). */
int endpoint_parse_bare(const char *text, enum ep_scheme scheme, struct endpoint *ep, char *err, size_t errlen);
/* Resolves ep->host into ep->addrs; passive = for bind (wildcard allowed). An fd://
 * endpoint has nothing to resolve: its address comes from the inherited socket. */
int endpoint_resolve(struct endpoint *ep, int passive, char *err, size_t errlen);
/* "tcp://host:port" as the user wrote it (canonical brackets); "fd://NAME";
 * "icmp://host:id" with ":reply_id" when one was given. */
void endpoint_format(const struct endpoint *ep, char *buf, size_t len);
/* "1.2.3.4:80" or "[::1]:80". */
void sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);
socklen_t sockaddr_len(const struct sockaddr *sa);
uint16_t sockaddr_port(const struct sockaddr *sa);
void sockaddr_set_port(struct sockaddr *sa, uint16_t port);
const char *endpoint_scheme_name(enum ep_scheme s);

/*
 * Base-address mode (portfwd's tcpfwd -b): a block of target addresses maps 1:1 onto a
 * block of redirected ports. The target address is the configured one plus (original
 * destination port - listen port), added to the IPv4 address or to the low 32 bits of an
 * IPv6 address; the port stays. Returns -ERANGE when the sum leaves those 32 bits.
 */
int base_addr_apply(struct sockaddr *target, uint16_t listen_port, uint16_t orig_port);

#endif
