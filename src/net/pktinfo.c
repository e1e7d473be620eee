/* IP_PKTINFO / IPV6_PKTINFO; see pktinfo.h. */
#include <errno.h>
#include <string.h>

#include "net/pktinfo.h"

bool sockaddr_is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

int pktinfo_enable(int fd, sa_family_t family)
{
	int one = 1;

	if (family == AF_INET6) {
		/* a dual-stack socket reports IPv4 destinations as v4-mapped IPv6 here too */
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) ? -errno : 0;
	}
	return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) ? -errno : 0;
}

bool pktinfo_parse(const struct msghdr *mh, struct local_addr *out)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			out->family = AF_INET;
			out->v4 = pi.ipi_addr;
			return true;
		}
		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			out->family = AF_INET6;
			out->v6 = pi.ipi6_addr;
			return true;
		}
	}
	return false;
}

size_t pktinfo_build(const struct local_addr *la, sa_family_t family, void *buf, size_t cap)
{
	struct msghdr mh = { .msg_control = buf, .msg_controllen = cap };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(buf, 0, cap);
	if (family == AF_INET6 && la->family == AF_INET6 && cap >= CMSG_SPACE(sizeof(struct in6_pktinfo))) {
		struct in6_pktinfo pi = { .ipi6_addr = la->v6 };

		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	if (family == AF_INET && la->family == AF_INET && cap >= CMSG_SPACE(sizeof(struct in_pktinfo))) {
		struct in_pktinfo pi = { .ipi_spec_dst = la->v4 };

		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	return 0;
}

#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR IP_RECVORIGDSTADDR
#endif
#ifndef IPV6_ORIGDSTADDR
#define IPV6_ORIGDSTADDR IPV6_RECVORIGDSTADDR
#endif

int origdst_enable(int fd, sa_family_t family)
{
	int one = 1;

	if (family == AF_INET6) {
		if (setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one)))
			return -errno;
		/* IPv4 datagrams on a dual-stack socket report through the IPv4 option; fails
		 * harmlessly on an IPv6-only socket */
		setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
		return 0;
	}
	return setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one)) ? -errno : 0;
}

bool origdst_parse(const struct msghdr *mh, struct sockaddr_storage *out)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		size_t len = 0;

		if (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_ORIGDSTADDR)
			len = sizeof(struct sockaddr_in);
		else if (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_ORIGDSTADDR)
			len = sizeof(struct sockaddr_in6);
		if (len && cm->cmsg_len >= CMSG_LEN(len)) {
			memset(out, 0, sizeof(*out));
			memcpy(out, CMSG_DATA(cm), len);
			return true;
		}
	}
	return false;
}
