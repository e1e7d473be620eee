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
	{ "icmp", EP_ICMP },
};

#define SCHEMES_ACCEPTED "tcp://, udp://, kcp://, icmp:// or fd://NAME"

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

/*
 * Checks the host part of word: an IPv6 literal (as written inside brackets, zone index
 * allowed) or a name / IPv4 address. The caller has checked that it is not empty.
 */
static int check_host(const char *word, const char *host, size_t hlen, bool bracketed, char *err, size_t errlen)
{
	if (hlen >= EP_HOST_MAX)
		return host_too_long(word, err, errlen);
	if (bracketed) {
		struct in6_addr a6;
		char tmp[EP_HOST_MAX];
		char *pct;

		memcpy(tmp, host, hlen);
		tmp[hlen] = '\0';
		pct = strchr(tmp, '%');	/* zone index: fe80::1%eth0 */
		if (pct)
			*pct = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1) {
			snprintf(err, errlen, "bad endpoint \"%s\": \"%.*s\" is not an IPv6 address", word,
				 (int)hlen, host);
			return -EINVAL;
		}
		return 0;
	}
	for (size_t i = 0; i < hlen; i++) {
		if (!host_char_ok(host[i])) {
			snprintf(err, errlen, "bad endpoint \"%s\": bad character in host name", word);
			return -EINVAL;
		}
	}
	return 0;
}

/* "host:port" / "[v6]:port" -> host, port. Errors name the whole word as the user wrote it. */
static int parse_hostport(const char *word, const char *hp, struct endpoint *ep, char *err, size_t errlen)
{
	const char *colon, *host = hp;
	size_t hlen;
	int rc;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');

		if (!close || close[1] != ':' || close == hp + 1) {
			snprintf(err, errlen, "bad endpoint \"%s\": expected [IPv6 address]:port", word);
			return -EINVAL;
		}
		host = hp + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
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
	}
	rc = check_host(word, host, hlen, hp[0] == '[', err, errlen);
	if (rc)
		return rc;
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

/* An echo ID: decimal, 0 to 65535 (unlike a port, 0 is a value: "dynamic"). */
static int parse_echo_id(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -ERANGE;
	*out = (uint16_t)v;
	return 0;
}

#define ICMP_FORM "icmp://HOST[:ID[:REPLY_ID]]"

/* ":ID[:REPLY_ID]" or "" after an icmp:// host (spec/pkthere.md §1.2: IDs are decimal u16). */
static int parse_icmp_ids(const char *word, const char *ids, struct endpoint *ep, char *err, size_t errlen)
{
	const char *reply;
	size_t idlen;
	uint16_t rid;

	if (!*ids)
		return 0;
	if (*ids != ':') {
		snprintf(err, errlen, "bad endpoint \"%s\": expected " ICMP_FORM, word);
		return -EINVAL;
	}
	ids++;
	reply = strchr(ids, ':');
	idlen = reply ? (size_t)(reply - ids) : strlen(ids);
	if (parse_echo_id(ids, idlen, &ep->port)) {
		snprintf(err, errlen, "bad echo ID \"%.*s\" in \"%s\": expected a number from 0 to 65535 (0 = dynamic)",
			 (int)idlen, ids, word);
		return -EINVAL;
	}
	if (!reply)
		return 0;
	if (parse_echo_id(reply + 1, strlen(reply + 1), &rid)) {
		snprintf(err, errlen, "bad reply ID \"%s\" in \"%s\": expected a number from 0 to 65535 (" ICMP_FORM ")",
			 reply + 1, word);
		return -EINVAL;
	}
	ep->reply_id = rid;
	return 0;
}

/* "icmp://host", "icmp://host:id", "icmp://host:id:reply_id", IPv6 in brackets. */
static int parse_icmp(const char *word, const char *hp, struct endpoint *ep, char *err, size_t errlen)
{
	const char *host = hp, *ids;
	size_t hlen;
	int rc;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');

		if (!close || close == hp + 1) {
			snprintf(err, errlen, "bad endpoint \"%s\": expected icmp://[IPv6 address][:ID[:REPLY_ID]]", word);
			return -EINVAL;
		}
		host = hp + 1;
		hlen = (size_t)(close - host);
		ids = close + 1;
	} else {
		const char *colon = strchr(hp, ':');

		/* more than host:id:reply_id, or "::", can only be an IPv6 address */
		if (strstr(hp, "::") || (colon && (colon = strchr(colon + 1, ':')) && strchr(colon + 1, ':'))) {
			snprintf(err, errlen, "bad endpoint \"%s\": an IPv6 address needs brackets, e.g. icmp://[::1]:7000",
				 word);
			return -EINVAL;
		}
		hlen = strcspn(hp, ":");
		ids = hp + hlen;
		if (hlen == 0) {
			snprintf(err, errlen, "bad endpoint \"%s\": missing host (use 0.0.0.0 or [::] for any)", word);
			return -EINVAL;
		}
	}
	rc = check_host(word, host, hlen, hp[0] == '[', err, errlen);
	if (!rc)
		rc = parse_icmp_ids(word, ids, ep, err, errlen);
	if (rc)
		return rc;
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
	ep->reply_id = -1;
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
			if (ep->scheme == EP_ICMP)
				return parse_icmp(text, sep + 3, ep, err, errlen);
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
	/* an icmp:// endpoint's number is an echo ID, not a port: its addresses carry none */
	snprintf(port, sizeof(port), "%u", ep->scheme == EP_ICMP ? 0 : ep->port);
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

	size_t n;

	if (ep->scheme == EP_FD) {
		snprintf(buf, len, "fd://%s", ep->host);
		return;
	}
	snprintf(buf, len, fmt, endpoint_scheme_name(ep->scheme), ep->host, ep->port);
	n = strlen(buf);
	if (ep->scheme == EP_ICMP && ep->reply_id >= 0 && n < len)
		snprintf(buf + n, len - n, ":%d", (int)ep->reply_id);
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
