/* Batched datagram sends; see batch.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "net/batch.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
/* The kernel's UDP_MAX_SEGMENTS is 64 on older kernels (128 since 6.x): stay at 64. */
#define BATCH_GSO_SEGMENTS 64
/* One GSO send is one IP packet before segmentation: payload at most 65,507 bytes (IPv4). */
#define BATCH_GSO_BYTES 65507
/* A segment must fit the path MTU (the kernel says EINVAL otherwise): 1500 - 40 - 8. */
#define BATCH_GSO_SEG_MAX 1452

int batch_gso_run(const struct iovec *iov, int n)
{
	size_t seg = iov[0].iov_len, total = seg;
	int k = 1;

	if (seg == 0 || seg > BATCH_GSO_SEG_MAX)
		return 1;
	/* equal sizes; the last segment may be shorter, and ends the run */
	while (k < n && k < BATCH_GSO_SEGMENTS && iov[k].iov_len <= seg && iov[k].iov_len > 0 &&
	       total + iov[k].iov_len <= BATCH_GSO_BYTES) {
		total += iov[k].iov_len;
		if (iov[k++].iov_len < seg)
			break;
	}
	return k;
}

static int send_gso(struct batch_tx *tx, int fd, struct iovec *iov, int k, const struct sockaddr *to,
		    socklen_t tolen)
{
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = to ? tolen : 0, .msg_iov = iov,
			     .msg_iovlen = (size_t)k, .msg_control = tx->cmsg,
			     .msg_controllen = tx->extra_cmsg_len + CMSG_SPACE(sizeof(uint16_t)) };
	struct cmsghdr *cm;
	uint16_t seg = (uint16_t)iov[0].iov_len;

	/* the caller's control message first, then ours */
	memset(tx->cmsg, 0, mh.msg_controllen);
	if (tx->extra_cmsg_len)
		memcpy(tx->cmsg, tx->extra_cmsg, tx->extra_cmsg_len);
	cm = (struct cmsghdr *)(tx->cmsg + tx->extra_cmsg_len);
	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
	if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
		return k;
	return -errno;
}

static int send_mmsg(struct batch_tx *tx, int fd, struct iovec *iov, int k, const struct sockaddr *to,
		     socklen_t tolen)
{
	int n;

	for (int i = 0; i < k; i++) {
		memset(&tx->msgs[i].msg_hdr, 0, sizeof(tx->msgs[i].msg_hdr));
		tx->msgs[i].msg_hdr.msg_name = (void *)to;
		tx->msgs[i].msg_hdr.msg_namelen = to ? tolen : 0;
		tx->msgs[i].msg_hdr.msg_iov = &iov[i];
		tx->msgs[i].msg_hdr.msg_iovlen = 1;
		tx->msgs[i].msg_hdr.msg_control = (void *)tx->extra_cmsg;
		tx->msgs[i].msg_hdr.msg_controllen = tx->extra_cmsg_len;
	}
	n = sendmmsg(fd, tx->msgs, (unsigned)k, MSG_DONTWAIT);
	return n >= 0 ? n : -errno;
}

int batch_send(struct batch_tx *tx, int fd, struct iovec *iov, int n, const struct sockaddr *to,
	       socklen_t tolen)
{
	int done = 0;

	while (done < n) {
		int k = tx->gso_off ? 1 : batch_gso_run(iov + done, n - done), sent;

		if (k > 1) {
			sent = send_gso(tx, fd, iov + done, k, to, tolen);
			if (sent == -EIO || sent == -ENOPROTOOPT || sent == -EOPNOTSUPP) {
				/* no GSO (checksum offload) on this device: plain batches from now on */
				tx->gso_off = true;
				continue;
			}
			/* a segment above this path's MTU (EINVAL, or EMSGSIZE on newer kernels):
			 * send these plainly, the kernel fragments them as it would anyway */
			if (sent == -EINVAL || sent == -EMSGSIZE)
				sent = send_mmsg(tx, fd, iov + done, k, to, tolen);
		} else {
			/* up to the next run that GSO can take */
			k = 1;
			while (done + k < n && (tx->gso_off || batch_gso_run(iov + done + k, n - done - k) < 2))
				k++;
			sent = send_mmsg(tx, fd, iov + done, k, to, tolen);
		}
		if (sent < 0)
			return done ? done : sent;
		done += sent;
		if (sent < k)
			break;
	}
	return done;
}
