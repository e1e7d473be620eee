/* Inherited sockets -> rules; see activate.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/activate.h"
#include "cmd/args.h"

/* How many sockets an error message lists before "...". */
#define ACTIVATE_LIST_MAX 8

static const char *type_scheme(int type)
{
	return type == SOCK_DGRAM ? "udp" : "tcp";
}

void activate_sock_describe(const struct systemd_sock *sk, char *buf, size_t len)
{
	char a[EP_TEXT_MAX];

	if (!sk->family) {
		snprintf(buf, len, "fd %d (%s, not a socket)", sk->fd, sk->name);
		return;
	}
	if (sk->family != AF_INET && sk->family != AF_INET6) {
		snprintf(buf, len, "fd %d (%s, socket family %d)", sk->fd, sk->name, sk->family);
		return;
	}
	sockaddr_format((const struct sockaddr *)&sk->addr, a, sizeof(a));
	snprintf(buf, len, "fd %d (%s, %s %s)", sk->fd, sk->name,
		 sk->type == SOCK_DGRAM ? "udp" : sk->type == SOCK_STREAM ? "tcp" : "?", a);
}

int activate_target_text(const char *word, int type, uint16_t listen_port, char *out, size_t len, char *err,
			 size_t errlen)
{
	const char *scheme = type_scheme(type), *sep = strstr(word, "://");
	size_t colons = 0;
	struct in6_addr a6;

	if (sep) {
		if ((size_t)(sep - word) != strlen(scheme) || strncmp(word, scheme, strlen(scheme))) {
			snprintf(err, errlen, "target \"%s\": the socket is a %s socket, so the target is %s://HOST:PORT "
				 "(or HOST:PORT without a scheme)", word, type == SOCK_DGRAM ? "datagram" : "stream", scheme);
			return -EINVAL;
		}
		snprintf(out, len, "%s", word);
		return 0;
	}
	if (word[0] == '[') {
		const char *close = strchr(word, ']');

		if (close && close[1] == '\0') {
			snprintf(out, len, "%s://%s:%u", scheme, word, listen_port);
			return 0;
		}
		if (close && close[1] == ':') {
			snprintf(out, len, "%s://%s", scheme, word);
			return 0;
		}
		snprintf(err, errlen, "target \"%s\": expected [IPv6 address]:port or [IPv6 address]", word);
		return -EINVAL;
	}
	for (const char *p = word; *p; p++)
		colons += *p == ':';
	if (colons == 0)
		snprintf(out, len, "%s://%s:%u", scheme, word, listen_port);
	else if (colons == 1)
		snprintf(out, len, "%s://%s", scheme, word);
	else if (inet_pton(AF_INET6, word, &a6) == 1)	/* a bare IPv6 address is a host, never host:port */
		snprintf(out, len, "%s://[%s]:%u", scheme, word, listen_port);
	else {
		snprintf(err, errlen, "target \"%s\": an IPv6 address with a port needs brackets, e.g. [::1]:80", word);
		return -EINVAL;
	}
	return 0;
}

/* Sockets from the fd store are ferry's own listeners, not the unit's: they have their own names. */
static bool unit_socket(const struct systemd_sock *sk)
{
	return sk->fd >= 0 && !systemd_is_store_name(sk->name);
}

/* The socket can carry rule r (or, r == NULL, any positional target): inet, not a connection. */
static int sock_check(const struct rule *r, const struct systemd_sock *sk, const char *who, char *err, size_t errlen)
{
	char d[EP_TEXT_MAX + SYSTEMD_FDNAME_MAX];

	activate_sock_describe(sk, d, sizeof(d));
	if (!sk->family) {
		snprintf(err, errlen, "%s: inherited fd %d (%s) is not a socket", who, sk->fd, sk->name);
		return -ENOTSOCK;
	}
	if (sk->family != AF_INET && sk->family != AF_INET6) {
		snprintf(err, errlen, "%s: inherited %s is not an IPv4 or IPv6 socket", who, d);
		return -EAFNOSUPPORT;
	}
	if (sk->type != SOCK_DGRAM && sk->type != SOCK_STREAM) {
		snprintf(err, errlen, "%s: inherited %s is neither a datagram nor a stream socket", who, d);
		return -ESOCKTNOSUPPORT;
	}
	if (sk->type == SOCK_STREAM && sk->connected && !sk->listening) {
		snprintf(err, errlen, "%s: inherited %s is a connection (Accept=yes); ferry takes listening sockets "
			 "(Accept=no)", who, d);
		return -EISCONN;
	}
	if (r && (sk->type == SOCK_DGRAM) != (r->target.scheme == EP_UDP)) {
		snprintf(err, errlen, "%s: inherited %s is a %s socket: the target must be %s://", who, d,
			 sk->type == SOCK_DGRAM ? "datagram" : "stream", type_scheme(sk->type));
		return -EPROTOTYPE;
	}
	return 0;
}

int activate_positional(const struct systemd_socks *s, const char *const targets[], size_t ntargets,
			const struct rule_opts *ro, struct rule ***rules, size_t *nrules, char *err, size_t errlen)
{
	char listen[32], text[EP_TEXT_MAX + 16], msg[ARGS_ERR_MAX];
	struct rule **list;
	size_t count = 0, k = 0;
	int rc = 0;

	for (size_t i = 0; i < s->n; i++)
		count += unit_socket(&s->v[i]);
	if (count == 0) {
		snprintf(err, errlen, "--systemd: no inherited sockets (LISTEN_FDS is not set for this process): "
			 "start ferry from a socket unit or under systemd-socket-activate");
		return -ENOENT;
	}
	if (count != ntargets) {
		snprintf(err, errlen, "--systemd: %zu target%s for %zu inherited socket%s: give one target per socket, "
			 "in the order of the socket unit's Listen*= lines", ntargets, ntargets == 1 ? "" : "s", count,
			 count == 1 ? "" : "s");
		return -EINVAL;
	}
	list = calloc(count, sizeof(*list));
	if (!list) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n && !rc; i++) {
		const struct systemd_sock *sk = &s->v[i];

		if (!unit_socket(sk))
			continue;
		rc = sock_check(NULL, sk, "--systemd", err, errlen);
		if (rc)
			break;
		rc = activate_target_text(targets[k], sk->type, sockaddr_port((const struct sockaddr *)&sk->addr),
					  text, sizeof(text), msg, sizeof(msg));
		if (!rc) {
			snprintf(listen, sizeof(listen), "fd://%d", sk->fd);
			rc = rule_build(ARGS_FERRY, listen, text, ro, &list[k], msg, sizeof(msg));
		}
		if (rc)
			snprintf(err, errlen, "--systemd: target %zu for fd %d (%s): %s", k + 1, sk->fd, sk->name, msg);
		k++;
	}
	if (rc) {
		rules_free(list, count);
		return rc;
	}
	*rules = list;
	*nrules = count;
	return 0;
}

/* "fd 3 game, fd 4 voice": what was inherited, for a rule that found nothing. */
static void socks_list(const struct systemd_socks *s, char *buf, size_t len)
{
	size_t used = 0, shown = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n && used < len; i++) {
		if (!unit_socket(&s->v[i]))
			continue;
		if (shown++ == ACTIVATE_LIST_MAX) {
			snprintf(buf + used, len - used, ", ...");
			return;
		}
		used += (size_t)snprintf(buf + used, len - used, "%sfd %d %s", shown > 1 ? ", " : "", s->v[i].fd,
					 s->v[i].name);
	}
}

/* Points r at socket sk: address, type, and a description and canonical text of its own. */
static void attach_one(struct rule *r, const struct systemd_sock *sk)
{
	char l[EP_TEXT_MAX], t[EP_TEXT_MAX], a[EP_TEXT_MAX];
	size_t used;

	r->listen.fd = sk->fd;
	r->listen.fd_type = sk->type;
	memcpy(&r->listen.addrs[0], &sk->addr, sizeof(sk->addr));
	r->listen.naddrs = 1;
	r->listen.port = sockaddr_port((const struct sockaddr *)&sk->addr);
	endpoint_format(&r->listen, l, sizeof(l));
	endpoint_format(&r->target, t, sizeof(t));
	sockaddr_format((const struct sockaddr *)&sk->addr, a, sizeof(a));
	if (r->listen.fd_num >= 0)
		snprintf(r->desc, sizeof(r->desc), "%s (%s %s) -> %s", l, sk->name, a, t);
	else
		snprintf(r->desc, sizeof(r->desc), "%s (fd %d %s) -> %s", l, sk->fd, a, t);
	/* the same selector on another socket is another rule, across reloads too */
	used = strlen(r->canon);
	snprintf(r->canon + used, sizeof(r->canon) - used, " fd=%d", sk->fd);
}

static int rule_clone(const struct rule *r, struct rule **out)
{
	struct rule *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	memcpy(c, r, sizeof(*c));
	c->refs = 1;
	c->stats = NULL;
	*out = c;
	return 0;
}

/* Inserts c into *rules at position at (the array grows by one). */
static int rules_insert(struct rule ***rules, size_t *n, size_t at, struct rule *c)
{
	struct rule **grown = realloc(*rules, (*n + 1) * sizeof(**rules));

	if (!grown)
		return -ENOMEM;
	memmove(grown + at + 1, grown + at, (*n - at) * sizeof(*grown));
	grown[at] = c;
	*rules = grown;
	(*n)++;
	return 0;
}

int activate_attach(const struct systemd_socks *s, unsigned *used, struct rule ***rules, size_t *nrules,
		    char *err, size_t errlen)
{
	for (size_t i = 0; i < *nrules; i++) {
		struct rule *r = (*rules)[i], *proto;
		char list[256], who[sizeof(r->desc) + 8];
		size_t found = 0;
		int rc;

		if (r->listen.scheme != EP_FD || r->listen.fd >= 0)
			continue;
		proto = r;
		for (size_t k = 0; k < s->n; k++) {
			const struct systemd_sock *sk = &s->v[k];
			struct rule *c = proto;

			if (!systemd_sock_matches(sk, proto->listen.host, proto->listen.fd_num))
				continue;
			snprintf(who, sizeof(who), "rule %s", proto->desc);
			rc = sock_check(proto, sk, who, err, errlen);
			if (!rc && used[k]) {
				snprintf(err, errlen, "rule %s: inherited fd %d (%s) is already taken by another rule", proto->desc,
					 sk->fd, sk->name);
				rc = -EBUSY;
			}
			if (rc)
				return rc;
			if (found) {
				/* a second socket of the name: a rule of its own right after the last one */
				if (rule_clone(proto, &c) || rules_insert(rules, nrules, i + found, c)) {
					free(c != proto ? c : NULL);
					snprintf(err, errlen, "out of memory");
					return -ENOMEM;
				}
			}
			used[k]++;
			found++;
			/* proto keeps its selector text until the last clone is made */
			if (c != proto)
				attach_one(c, sk);
		}
		if (!found) {
			socks_list(s, list, sizeof(list));
			if (proto->listen.fd_num >= 0)
				snprintf(err, errlen, "rule %s: no inherited socket with fd %d (%s)", proto->desc,
					 proto->listen.fd_num, list[0] ? list : "none were inherited: LISTEN_FDS is not set");
			else
				snprintf(err, errlen, "rule %s: no inherited socket named \"%s\" (%s)", proto->desc,
					 proto->listen.host, list[0] ? list : "none were inherited: LISTEN_FDS is not set");
			return -ENOENT;
		}
		/* the first match goes to the rule itself */
		for (size_t k = 0; k < s->n; k++) {
			if (systemd_sock_matches(&s->v[k], proto->listen.host, proto->listen.fd_num)) {
				attach_one(proto, &s->v[k]);
				break;
			}
		}
		i += found - 1;
	}
	return 0;
}
