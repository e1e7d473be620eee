/*
 * ICMP echo sockets for the tunnel (spec/pkthere.md §3.7): a RAW socket (CAP_NET_RAW; sees
 * every echo on the host, IPv4 reads start with the IP header, we fill the IPv4 checksum)
 * or a DGRAM "ping" socket (gid within net.ipv4.ping_group_range; the kernel owns the
 * echo identifier and the checksum and only hands us echoes carrying that identifier).
 * Frames are built here from an icmp_out (proto/icmp_session.h) into a small header
 * buffer; the user payload is sent from where it lies.
 */
#ifndef FERRY_TRANSPORT_ICMP_SOCK_H
#define FERRY_TRANSPORT_ICMP_SOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "proto/icmp_session.h"

/* Echo header plus the longest shim. */
#define ICMP_SOCK_HDR_MAX (ICMP_ECHO_HDR_BYTES + SHIM_MAX_BYTES)

struct icmp_sock {
	int fd;
	int family;
	bool raw;
	uint16_t local_id;	/* DGRAM: the identifier the kernel gave the socket */
};

/*
 * Opens a RAW (raw = true) or DGRAM ICMP socket of the family of bind_addr, bound to its
 * address (and, for DGRAM, to identifier id; 0 = the kernel picks). Returns 0 or a
 * negative errno (-EACCES for a DGRAM socket outside ping_group_range, -EPERM for RAW
 * without CAP_NET_RAW).
 */
int icmp_sock_open(struct icmp_sock *s, const struct sockaddr *bind_addr, bool raw, uint16_t id);
void icmp_sock_close(struct icmp_sock *s);

/*
 * Builds the echo header and shim of o into hdr (ICMP_SOCK_HDR_MAX bytes) and returns its
 * length; for a RAW IPv4 socket also the checksum over header + shim + payload.
 */
int icmp_sock_build(const struct icmp_sock *s, uint8_t type, const struct icmp_out *o,
		    const uint8_t *payload, size_t len, uint8_t *hdr);

/*
 * Finds the ICMP message in a datagram read from the socket: strips the IPv4 header of a
 * RAW IPv4 read. Returns 0 with *msg and *len set, or -IP_E_* (proto/icmp_shim.h).
 */
int icmp_sock_message(const struct icmp_sock *s, uint8_t *buf, size_t n, uint8_t **msg, size_t *len);

/* The echo types this side sends: requests towards an upstream, replies to a client. */
uint8_t icmp_sock_echo_type(const struct icmp_sock *s, bool request);

#endif
