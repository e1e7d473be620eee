/*
 * Sending many datagrams with few syscalls: runs of equal-sized datagrams go out as one
 * UDP GSO send (UDP_SEGMENT: the kernel splits them), everything else through sendmmsg.
 */
#ifndef FERRY_NET_BATCH_H
#define FERRY_NET_BATCH_H
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Datagrams per batch call (and the size of the caller's iovec arrays). */
#define BATCH_MAX 64

struct batch_tx {
	bool gso_off;		/* set when the kernel refused GSO on this socket: don't ask again */
	/* a control message sent with every datagram of the next batch_send (e.g. the source
	 * address as IP_PKTINFO), or NULL */
	const void *extra_cmsg;
	size_t extra_cmsg_len;
	struct mmsghdr msgs[BATCH_MAX];
	char cmsg[128];
};

/*
 * Sends datagrams iov[0..n) on fd, to `to` (NULL on a connected socket). Returns how many
 * went out (the first ones), or -errno when none did; the caller decides about the rest.
 */
int batch_send(struct batch_tx *tx, int fd, struct iovec *iov, int n, const struct sockaddr *to,
	       socklen_t tolen);
/* How many leading datagrams of iov[0..n) one GSO send can carry (1 = none worth it). */
int batch_gso_run(const struct iovec *iov, int n);

#endif
