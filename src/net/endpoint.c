/* Endpoint text <-> addresses; see endpoint.h. No sockets are opened here. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/endpoint.h"

static const struct {
	const char *name;
	enum ep_scheme scheme;
} schemes[] = {
	{ "tcp", EP_TCP },
	{ "udp", EP_UDP },
	{ "kcp", EP_KCP },
	{ "fd", EP_FD },
};

#define SCHEMES_ACCEPTED "tcp://, udp://, kcp:// or fd://NAME"

const char *endpoint_scheme_name(enum ep_scheme s)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].scheme == s)
			return schemes[i].name;
	return "?";
}

static int parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return -ERANGE;
	*out = (uint16_t)v;
	return 0;
}

static int host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '*';
}

/*
 * The word is longer than EP_HOST_MAX here, so quoting it whole would push the reason out
 * of an EP_ERR_MAX buffer: quote its start instead.
 */
static int host_too_long(const char *word, char *err, size_t errlen)
{
	snprintf(err, errlen, "bad endpoint \"%.48s...\": host name too long (at most %d characters)", word,
		 EP_HOST_MAX - 1);
	return -EINVAL;
}

/* "host:port" / "[v6]:port" -> host, port. Errors name the whole word as the user wrote it. */
static int parse_hostport(const char *word, const char *hp, struct endpoint *ep, char *err, size_t errlen)
{
	const char *colon, *host = hp;
	size_t hlen;
	int rc;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "bad endpoint \"%s\": expected [IPv6 address]:port", word);
			return -EINVAL;
		}
		host = hp + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		struct in6_addr a6;
		char tmp[EP_HOST_MAX];

		if (hlen >= sizeof(tmp))
			return host_too_long(word, err, errlen);
		if (hlen == 0) {
			snprintf(err, errlen, "bad endpoint \"%s\": expected [IPv6 address]:port", word);
			return -EINVAL;
		}
		memcpy(tmp, host, hlen);
		tmp[hlen] = '\0';
		char *pct = strchr(tmp, '%');	/* zone index: fe80::1%eth0 */
		if (pct)
			*pct = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1) {
			snprintf(err, errlen, "bad endpoint \"%s\": \"%.*s\" is not an IPv6 address", word,
				 (int)hlen, host);
			return -EINVAL;
		}
	} else {
		colon = strrchr(hp, ':');
		if (!colon) {
			snprintf(err, errlen, "bad endpoint \"%s\": expected host:port", word);
			return -EINVAL;
		}
		hlen = (size_t)(colon - hp);
		if (memchr(hp, ':', hlen)) {
			snprintf(err, errlen, "bad endpoint \"%s\": an IPv6 address needs brackets, e.g. [::1]:80",
				 word);
			return -EINVAL;
		}
		if (hlen == 0) {
			snprintf(err, errlen, "bad endpoint \"%s\": missing host (use 0.0.0.0 or [::] for any)", word);
			return -EINVAL;
		}
		for (size_t i = 0; i < hlen; i++) {
			if (!host_char_ok(hp[i])) {
				snprintf(err, errlen, "bad endpoint \"%s\": bad character in host name", word);
				return -EINVAL;
			}
		}
	}
	if (hlen >= sizeof(ep->host))
		return host_too_long(word, err, errlen);
	rc = parse_port(colon + 1, &ep->port);
	if (rc) {
		snprintf(err, errlen, "bad port \"%s\" in \"%s\": expected a number from 1 to 65535", colon + 1,
			 word);
		return -EINVAL;
	}
	memcpy(ep->host, host, hlen);
	ep->host[hlen] = '\0';
	return 0;
}

/* An fd name is what systemd accepts as FileDescriptorName= (printable ASCII, no ':'). */
static int fd_name_char_ok(char c)
{
	return c > ' ' && c < 127 && c != ':';
}

/* "fd://NAME" or "fd://N" (N >= 3: 0-2 are stdio, never an inherited socket). */
static int parse_fd(const char *word, const char *sel, struct endpoint *ep, char *err, size_t errlen)
{
	size_t len = strlen(sel);
	bool digits = len > 0;

	if (len == 0) {
		snprintf(err, errlen, "bad endpoint \"%s\": expected fd://NAME (a FileDescriptorName) or fd://NUMBER",
			 word);
		return -EINVAL;
	}
	if (len >= sizeof(ep->host))
		return host_too_long(word, err, errlen);
	for (size_t i = 0; i < len; i++) {
		if (!fd_name_char_ok(sel[i])) {
			snprintf(err, errlen, "bad endpoint \"%s\": an fd name is printable ASCII without ':' or spaces",
				 word);
			return -EINVAL;
		}
		if (sel[i] < '0' || sel[i] > '9')
			digits = false;
	}
	if (digits) {
		if (len > 7 || atoi(sel) < 3) {
			snprintf(err, errlen, "bad endpoint \"%s\": inherited sockets are numbered from 3 (fd://3, fd://4, ...)",
				 word);
			return -EINVAL;
		}
		ep->fd_num = atoi(sel);
	}
	memcpy(ep->host, sel, len + 1);
	return 0;
}

static void endpoint_init(struct endpoint *ep, enum ep_scheme scheme)
{
	memset(ep, 0, sizeof(*ep));
	ep->scheme = scheme;
	ep->fd_num = -1;
	ep->fd = -1;
}

int endpoint_parse_bare(const char *text, enum ep_scheme scheme, struct endpoint *ep, char *err, size_t errlen)
{
	endpoint_init(ep, scheme);
	return parse_hostport(text, text, ep, err, errlen);
}

int endpoint_parse(const char *text, struct endpoint *ep, char *err, size_t errlen)
{
	const char *sep = strstr(text, "://");
	size_t slen;

	endpoint_init(ep, 0);
	if (!sep) {
		snprintf(err, errlen, "bad endpoint \"%s\": expected scheme://host:port (%s)", text,
			 SCHEMES_ACCEPTED);
		return -EINVAL;
	}
	slen = (size_t)(sep - text);
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == slen && !strncmp(text, schemes[i].name, slen)) {
			ep->scheme = schemes[i].scheme;
			if (ep->scheme == EP_FD)
				return parse_fd(text, sep + 3, ep, err, errlen);
			return parse_hostport(text, sep + 3, ep, err, errlen);
		}
	}
	snprintf(err, errlen, "unknown scheme \"%.*s\" in \"%s\": expected %s", (int)(slen < 32 ? slen : 32), text,
		 text, SCHEMES_ACCEPTED);
	return -EINVAL;
}

int endpoint_resolve(struct endpoint *ep, int passive, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = ep->scheme != EP_TCP ? SOCK_DGRAM : SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port[8], text[EP_TEXT_MAX];
	const char *host = ep->host;
	int rc;

	if (ep->scheme == EP_FD)
		return 0;
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	if (!strcmp(host, "*"))
		host = NULL;
	snprintf(port, sizeof(port), "%u", ep->port);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		endpoint_format(ep, text, sizeof(text));
		snprintf(err, errlen, "cannot resolve \"%s\" in \"%s\": %s", ep->host, text, gai_strerror(rc));
		return -ENOENT;
	}
	ep->naddrs = 0;
	for (ai = res; ai && ep->naddrs < EP_ADDRS_MAX; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memcpy(&ep->addrs[ep->naddrs++], ai->ai_addr, ai->ai_addrlen);
	}
	freeaddrinfo(res);
	if (!ep->naddrs) {
		snprintf(err, errlen, "cannot resolve \"%s\": no IPv4 or IPv6 address", ep->host);
		return -ENOENT;
	}
	return 0;
}

void endpoint_format(const struct endpoint *ep, char *buf, size_t len)
{
	const char *fmt = strchr(ep->host, ':') ? "%s://[%s]:%u" : "%s://%s:%u";

	if (ep->scheme == EP_FD) {
		snprintf(buf, len, "fd://%s", ep->host);
		return;
	}
	snprintf(buf, len, fmt, endpoint_scheme_name(ep->scheme), ep->host, ep->port);
}

socklen_t sockaddr_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

uint16_t sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

void sockaddr_set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(port);
}

void sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, sockaddr_port(sa));
	} else if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, sockaddr_port(sa));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
}

int base_addr_apply(struct sockaddr *target, uint16_t listen_port, uint16_t orig_port)
{
	uint32_t *word, base;
	int64_t sum;

	if (target->sa_family == AF_INET6)
		word = &((struct sockaddr_in6 *)target)->sin6_addr.s6_addr32[3];
	else
		word = &((struct sockaddr_in *)target)->sin_addr.s_addr;
	base = ntohl(*word);
	sum = (int64_t)base + ((int64_t)orig_port - (int64_t)listen_port);
	if (sum < 0 || sum > UINT32_MAX)
		return -ERANGE;
	*word = htonl((uint32_t)sum);
	return 0;
}
