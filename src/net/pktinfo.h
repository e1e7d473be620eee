/*
 * Which local address a datagram was sent to (IP_PKTINFO / IPV6_PKTINFO), so that a
 * socket bound to a wildcard address can answer from exactly that address: a client
 * drops replies that come from another address of a multi-homed host. Also the original
 * destination address and port of a datagram an nft tproxy rule diverted to a socket
 * (IP_ORIGDSTADDR / IPV6_ORIGDSTADDR, spec/systemd.md §5).
 */
#ifndef FERRY_NET_PKTINFO_H
#define FERRY_NET_PKTINFO_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Room for the receive control data and for one send control message. */
#define PKTINFO_CMSG_BYTES 64
/* Room for one received original destination (a sockaddr_in6 in a cmsg). */
#define ORIGDST_CMSG_BYTES CMSG_SPACE(sizeof(struct sockaddr_in6))

struct local_addr {
	sa_family_t family;	/* 0 = unknown */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

/* True when sa is 0.0.0.0 or ::, where the kernel would pick a reply source by route. */
bool sockaddr_is_wildcard(const struct sockaddr *sa);
/* Asks the kernel for the destination address of each datagram received on fd. */
int pktinfo_enable(int fd, sa_family_t family);
/* Reads the destination address from received control data; false if there is none. */
bool pktinfo_parse(const struct msghdr *mh, struct local_addr *out);
/* Writes one control message that makes a send leave from la, for a socket of family;
 * returns its length. */
size_t pktinfo_build(const struct local_addr *la, sa_family_t family, void *buf, size_t cap);

/* Asks the kernel for the original destination of each datagram received on fd (also of
 * IPv4 datagrams on a dual-stack IPv6 socket). Works on a bound socket. */
int origdst_enable(int fd, sa_family_t family);
/* Reads the original destination (address and port) from received control data. */
bool origdst_parse(const struct msghdr *mh, struct sockaddr_storage *out);

#endif
