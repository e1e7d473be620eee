/*
 * net/endpoint: parsing "scheme://host:port" and "host:port", formatting endpoints and
 * socket addresses, base-address port arithmetic, and resolution of numeric addresses
 * (the only names looked up are "localhost" and a ".invalid" one that must fail).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/un.h>

#include "net/endpoint.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *text;
	const char *host;
	unsigned port;
	const char *canon;	/* endpoint_format() of the result */
} valid[] = {
	{ "tcp://1.2.3.4:80", "1.2.3.4", 80, "tcp://1.2.3.4:80" },
	{ "tcp://[::]:80", "::", 80, "tcp://[::]:80" },
	{ "tcp://[::1]:8080", "::1", 8080, "tcp://[::1]:8080" },
	{ "tcp://[fe80::1%eth0]:80", "fe80::1%eth0", 80, "tcp://[fe80::1%eth0]:80" },
	{ "tcp://host.name:1", "host.name", 1, "tcp://host.name:1" },
	{ "tcp://h:65535", "h", 65535, "tcp://h:65535" },
	{ "tcp://0.0.0.0:443", "0.0.0.0", 443, "tcp://0.0.0.0:443" },
	{ "tcp://*:8080", "*", 8080, "tcp://*:8080" },
	{ "tcp://my_host-1.example.org:22", "my_host-1.example.org", 22, "tcp://my_host-1.example.org:22" },
	{ "tcp://h:080", "h", 80, "tcp://h:80" },
	{ "tcp://[::ffff:1.2.3.4]:9", "::ffff:1.2.3.4", 9, "tcp://[::ffff:1.2.3.4]:9" },
	{ "udp://0.0.0.0:53", "0.0.0.0", 53, "udp://0.0.0.0:53" },
	{ "udp://[::1]:5353", "::1", 5353, "udp://[::1]:5353" },
};

static void test_endpoint_parse_accepts_valid_endpoints(void)
{
	for (size_t i = 0; i < N(valid); i++) {
		struct endpoint ep;
		char err[EP_ERR_MAX] = "";
		int rc = endpoint_parse(valid[i].text, &ep, err, sizeof(err));

		CHECK_EQ(rc, 0);
		if (rc) {
			fprintf(stderr, "  input \"%s\": %s\n", valid[i].text, err);
			continue;
		}
		CHECK_EQ(ep.scheme, strncmp(valid[i].text, "udp", 3) ? EP_TCP : EP_UDP);
		CHECK_STR(ep.host, valid[i].host);
		CHECK_EQ(ep.port, valid[i].port);
		CHECK_EQ(ep.naddrs, 0);
	}
}

static void test_endpoint_parse_accepts_host_of_255_characters(void)
{
	char host[256], text[300];
	struct endpoint ep;
	char err[EP_ERR_MAX] = "";

	memset(host, 'a', 255);
	host[255] = '\0';
	snprintf(text, sizeof(text), "tcp://%s:80", host);
	CHECK_EQ(endpoint_parse(text, &ep, err, sizeof(err)), 0);
	CHECK_STR(ep.host, host);
	CHECK_EQ(ep.port, 80);
}

static const struct {
	const char *text;
	const char *reason;	/* besides the word itself, the message must say this */
} invalid[] = {
	{ "tcp:/x", "expected scheme://host:port (tcp://" },
	{ "", "expected scheme://host:port" },
	{ "1.2.3.4:80", "expected scheme://host:port" },
	{ "foo://1.2.3.4:5", "unknown scheme \"foo\"" },
	{ "://1.2.3.4:5", "unknown scheme \"\"" },
	{ "tcp://1.2.3.4:0", "bad port \"0\"" },
	{ "tcp://1.2.3.4:65536", "bad port \"65536\"" },
	{ "tcp://1.2.3.4:123456", "bad port \"123456\"" },
	{ "tcp://h:8a", "bad port \"8a\"" },
	{ "tcp://h:-1", "bad port \"-1\"" },
	{ "tcp://h:+80", "bad port \"+80\"" },
	{ "tcp://h:", "bad port \"\"" },
	{ "tcp://h:80 ", "bad port \"80 \"" },
	{ "tcp://1.2.3.4", "expected host:port" },
	{ "tcp://", "expected host:port" },
	{ "tcp://::1:80", "an IPv6 address needs brackets" },
	{ "tcp://[::1]80", "expected [IPv6 address]:port" },
	{ "tcp://[::1", "expected [IPv6 address]:port" },
	{ "tcp://[]:80", "expected [IPv6 address]:port" },
	{ "tcp://[zz]:80", "\"zz\" is not an IPv6 address" },
	{ "tcp://[1.2.3.4]:80", "\"1.2.3.4\" is not an IPv6 address" },
	{ "tcp://[::1]:0", "bad port \"0\"" },
	{ "tcp://:80", "missing host" },
	{ "tcp://h st:80", "bad character in host name" },
	{ "tcp://h/x:80", "bad character in host name" },
	/* icmp://HOST[:ID[:REPLY_ID]]: IDs are 0..65535, IPv6 in brackets */
	{ "icmp://", "missing host" },
	{ "icmp://:7", "missing host" },
	{ "icmp://h:", "bad echo ID \"\"" },
	{ "icmp://h:65536", "bad echo ID \"65536\" in \"icmp://h:65536\": expected a number from 0 to 65535" },
	{ "icmp://h:123456", "bad echo ID \"123456\"" },
	{ "icmp://h:-1", "bad echo ID \"-1\"" },
	{ "icmp://h:7a", "bad echo ID \"7a\"" },
	{ "icmp://h:7:", "bad reply ID \"\"" },
	{ "icmp://h:7:70000", "bad reply ID \"70000\"" },
	{ "icmp://h:7:x", "bad reply ID \"x\"" },
	{ "icmp://h::7", "an IPv6 address needs brackets" },
	{ "icmp://::1", "an IPv6 address needs brackets" },
	{ "icmp://fe80::1:7", "an IPv6 address needs brackets" },
	{ "icmp://1:2:3:4", "an IPv6 address needs brackets" },
	{ "icmp://[::1]:7:8:9", "bad reply ID \"8:9\"" },
	{ "icmp://[::1]7", "expected icmp://HOST[:ID[:REPLY_ID]]" },
	{ "icmp://[::1", "expected icmp://[IPv6 address][:ID[:REPLY_ID]]" },
	{ "icmp://[]:7", "expected icmp://[IPv6 address][:ID[:REPLY_ID]]" },
	{ "icmp://[zz]:7", "\"zz\" is not an IPv6 address" },
	{ "icmp://h st:7", "bad character in host name" },
	{ "icmpx://h:7", "unknown scheme \"icmpx\"" },
};

/* icmp:// carries echo IDs, not ports: 0 (or none) is "dynamic", REPLY_ID is optional. */
static const struct {
	const char *text;
	const char *host;
	unsigned id;
	int reply_id;		/* -1 = not given */
	const char *canon;
} valid_icmp[] = {
	{ "icmp://10.0.0.2:7000", "10.0.0.2", 7000, -1, "icmp://10.0.0.2:7000" },
	{ "icmp://10.0.0.2", "10.0.0.2", 0, -1, "icmp://10.0.0.2:0" },
	{ "icmp://10.0.0.2:0", "10.0.0.2", 0, -1, "icmp://10.0.0.2:0" },
	{ "icmp://0.0.0.0:65535", "0.0.0.0", 65535, -1, "icmp://0.0.0.0:65535" },
	{ "icmp://h:9999:40001", "h", 9999, 40001, "icmp://h:9999:40001" },
	{ "icmp://h:9999:0", "h", 9999, 0, "icmp://h:9999:0" },
	{ "icmp://h:0:5", "h", 0, 5, "icmp://h:0:5" },
	{ "icmp://h:007", "h", 7, -1, "icmp://h:7" },
	{ "icmp://[::1]", "::1", 0, -1, "icmp://[::1]:0" },
	{ "icmp://[::]:7000", "::", 7000, -1, "icmp://[::]:7000" },
	{ "icmp://[2001:db8::1]:1:2", "2001:db8::1", 1, 2, "icmp://[2001:db8::1]:1:2" },
	{ "icmp://[fe80::1%eth0]:3", "fe80::1%eth0", 3, -1, "icmp://[fe80::1%eth0]:3" },
	{ "icmp://tunnel.example.org:7000", "tunnel.example.org", 7000, -1, "icmp://tunnel.example.org:7000" },
};

static void test_endpoint_parse_accepts_icmp_endpoints_with_ids(void)
{
	for (size_t i = 0; i < N(valid_icmp); i++) {
		struct endpoint ep, again;
		char err[EP_ERR_MAX] = "", text[EP_TEXT_MAX];
		int rc = endpoint_parse(valid_icmp[i].text, &ep, err, sizeof(err));

		CHECK_EQ(rc, 0);
		if (rc) {
			fprintf(stderr, "  input \"%s\": %s\n", valid_icmp[i].text, err);
			continue;
		}
		CHECK_EQ(ep.scheme, EP_ICMP);
		CHECK_STR(ep.host, valid_icmp[i].host);
		CHECK_EQ(ep.port, valid_icmp[i].id);
		CHECK_EQ(ep.reply_id, valid_icmp[i].reply_id);
		endpoint_format(&ep, text, sizeof(text));
		CHECK_STR(text, valid_icmp[i].canon);
		CHECK_EQ(endpoint_parse(text, &again, err, sizeof(err)), 0);
		CHECK_EQ(again.port, ep.port);
		CHECK_EQ(again.reply_id, ep.reply_id);
	}
}

/* Other schemes have no reply ID: the field must not leak into them. */
static void test_endpoint_parse_leaves_reply_id_unset_outside_icmp(void)
{
	struct endpoint ep;
	char err[EP_ERR_MAX] = "";

	CHECK_EQ(endpoint_parse("udp://1.2.3.4:53", &ep, err, sizeof(err)), 0);
	CHECK_EQ(ep.reply_id, -1);
	CHECK_STR(endpoint_scheme_name(EP_ICMP), "icmp");
}

static void test_endpoint_resolve_icmp_gives_addresses_without_port(void)
{
	struct endpoint ep;
	char err[EP_ERR_MAX] = "", buf[64];

	CHECK_EQ(endpoint_parse("icmp://[::1]:7000", &ep, err, sizeof(err)), 0);
	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), 0);
	CHECK_EQ(ep.naddrs, 1);
	sockaddr_format((struct sockaddr *)&ep.addrs[0], buf, sizeof(buf));
	CHECK_STR(buf, "[::1]:0");
	CHECK_EQ(ep.port, 7000);
}

static void test_endpoint_parse_rejects_invalid_endpoints_naming_the_word(void)
{
	for (size_t i = 0; i < N(invalid); i++) {
		struct endpoint ep;
		char err[EP_ERR_MAX] = "";
		char word[EP_TEXT_MAX + 2];
		int rc = endpoint_parse(invalid[i].text, &ep, err, sizeof(err));

		snprintf(word, sizeof(word), "\"%s\"", invalid[i].text);
		CHECK_EQ(rc, -EINVAL);
		CHECK(strstr(err, word) != NULL);
		CHECK(strstr(err, invalid[i].reason) != NULL);
		if (rc != -EINVAL || !strstr(err, word) || !strstr(err, invalid[i].reason))
			fprintf(stderr, "  input %s: rc %d, err \"%s\"\n", word, rc, err);
	}
}

/* The host limit makes the word at least 256 characters: the reason must still fit in EP_ERR_MAX. */
static void test_endpoint_parse_rejects_too_long_host_saying_why(void)
{
	char text[400];
	struct endpoint ep;
	char err[EP_ERR_MAX] = "";

	memcpy(text, "tcp://", 6);
	memset(text + 6, 'a', 300);
	strcpy(text + 306, ":80");
	CHECK_EQ(endpoint_parse(text, &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bad endpoint \"tcp://aaaa") != NULL);
	CHECK(strstr(err, "host name too long (at most 255 characters)") != NULL);

	memset(text + 6, 'a', 256);
	strcpy(text + 262, ":80");
	CHECK_EQ(endpoint_parse(text, &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "host name too long (at most 255 characters)") != NULL);

	/* an IPv6 literal with a long zone index */
	strcpy(text, "tcp://[fe80::1%");
	memset(text + 15, 'e', 300);
	strcpy(text + 315, "]:80");
	CHECK_EQ(endpoint_parse(text, &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bad endpoint \"tcp://[fe80::1%eee") != NULL);
	CHECK(strstr(err, "host name too long (at most 255 characters)") != NULL);
}

static void test_endpoint_parse_truncates_error_to_errlen(void)
{
	struct endpoint ep;
	char err[16];

	memset(err, 'x', sizeof(err));
	CHECK_EQ(endpoint_parse("tcp://h:0", &ep, err, sizeof(err)), -EINVAL);
	CHECK_EQ(strlen(err), sizeof(err) - 1);
}

static void test_endpoint_parse_bare_uses_the_given_scheme(void)
{
	static const struct {
		const char *text;
		const char *host;
		unsigned port;
	} ok[] = {
		{ "1.2.3.4:80", "1.2.3.4", 80 },
		{ "0.0.0.0:1", "0.0.0.0", 1 },
		{ "[::1]:65535", "::1", 65535 },
		{ "[fe80::1%lo]:22", "fe80::1%lo", 22 },
		{ "example.org:443", "example.org", 443 },
	};
	static const struct {
		const char *text;
		const char *reason;
	} bad[] = {
		{ ":65536", "missing host" },
		{ "1.2.3.4:65536", "bad port \"65536\"" },
		{ "1.2.3.4", "expected host:port" },
		{ "", "expected host:port" },
		{ "::1:80", "needs brackets" },
		{ "tcp://1.2.3.4:80", "needs brackets" },
		{ "[::1]80", "expected [IPv6 address]:port" },
	};

	for (size_t i = 0; i < N(ok); i++) {
		struct endpoint ep;
		char err[EP_ERR_MAX] = "";

		CHECK_EQ(endpoint_parse_bare(ok[i].text, EP_TCP, &ep, err, sizeof(err)), 0);
		CHECK_EQ(ep.scheme, EP_TCP);
		CHECK_STR(ep.host, ok[i].host);
		CHECK_EQ(ep.port, ok[i].port);
	}
	for (size_t i = 0; i < N(bad); i++) {
		struct endpoint ep;
		char err[EP_ERR_MAX] = "", word[64];

		snprintf(word, sizeof(word), "\"%s\"", bad[i].text);
		CHECK_EQ(endpoint_parse_bare(bad[i].text, EP_TCP, &ep, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, word) != NULL);
		CHECK(strstr(err, bad[i].reason) != NULL);
	}
}

static void test_endpoint_format_round_trips_through_parse(void)
{
	for (size_t i = 0; i < N(valid); i++) {
		struct endpoint ep, again;
		char err[EP_ERR_MAX] = "", text[EP_TEXT_MAX];

		CHECK_EQ(endpoint_parse(valid[i].text, &ep, err, sizeof(err)), 0);
		endpoint_format(&ep, text, sizeof(text));
		CHECK_STR(text, valid[i].canon);
		CHECK_EQ(endpoint_parse(text, &again, err, sizeof(err)), 0);
		CHECK_STR(again.host, ep.host);
		CHECK_EQ(again.port, ep.port);
		CHECK_EQ(again.scheme, ep.scheme);
	}
}

static void test_endpoint_format_of_bare_endpoint_adds_scheme(void)
{
	struct endpoint ep;
	char err[EP_ERR_MAX] = "", text[EP_TEXT_MAX];

	CHECK_EQ(endpoint_parse_bare("[::1]:53", EP_TCP, &ep, err, sizeof(err)), 0);
	endpoint_format(&ep, text, sizeof(text));
	CHECK_STR(text, "tcp://[::1]:53");
	CHECK_EQ(endpoint_parse_bare("1.2.3.4:53", EP_UDP, &ep, err, sizeof(err)), 0);
	endpoint_format(&ep, text, sizeof(text));
	CHECK_STR(text, "udp://1.2.3.4:53");
	CHECK_STR(endpoint_scheme_name(EP_TCP), "tcp");
	CHECK_STR(endpoint_scheme_name(EP_UDP), "udp");
	CHECK_STR(endpoint_scheme_name((enum ep_scheme)99), "?");
}

static void test_sockaddr_format_prints_ipv4_and_bracketed_ipv6(void)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char buf[80];

	inet_pton(AF_INET, "10.1.2.3", &a4.sin_addr);
	sockaddr_format((struct sockaddr *)&a4, buf, sizeof(buf));
	CHECK_STR(buf, "10.1.2.3:8080");
	CHECK_EQ(sockaddr_len((struct sockaddr *)&a4), sizeof(struct sockaddr_in));
	CHECK_EQ(sockaddr_port((struct sockaddr *)&a4), 8080);

	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	sockaddr_format((struct sockaddr *)&a6, buf, sizeof(buf));
	CHECK_STR(buf, "[::1]:443");
	CHECK_EQ(sockaddr_len((struct sockaddr *)&a6), sizeof(struct sockaddr_in6));
	CHECK_EQ(sockaddr_port((struct sockaddr *)&a6), 443);

	inet_pton(AF_INET6, "2001:db8::ffff:1.2.3.4", &a6.sin6_addr);
	a6.sin6_port = htons(65535);
	sockaddr_format((struct sockaddr *)&a6, buf, sizeof(buf));
	CHECK_STR(buf, "[2001:db8::ffff:102:304]:65535");

	inet_pton(AF_INET6, "::ffff:1.2.3.4", &a6.sin6_addr);
	sockaddr_format((struct sockaddr *)&a6, buf, sizeof(buf));
	CHECK_STR(buf, "[::ffff:1.2.3.4]:65535");

	sockaddr_format((struct sockaddr *)&un, buf, sizeof(buf));
	CHECK_STR(buf, "(family 1)");
}

static void test_sockaddr_set_port_writes_network_order_for_both_families(void)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

	sockaddr_set_port((struct sockaddr *)&a4, 0x1234);
	CHECK_EQ(a4.sin_port, htons(0x1234));
	CHECK_EQ(sockaddr_port((struct sockaddr *)&a4), 0x1234);
	sockaddr_set_port((struct sockaddr *)&a6, 65535);
	CHECK_EQ(a6.sin6_port, htons(65535));
	CHECK_EQ(sockaddr_port((struct sockaddr *)&a6), 65535);
}

/* base_addr_apply() on "addr:port" text; returns its result and the address after it. */
static int base_addr(const char *target, uint16_t listen_port, uint16_t orig_port, char *out, size_t len)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	char host[64];
	const char *colon = strrchr(target, ':');
	int rc;

	snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
	if (host[0] == '[') {
		host[strlen(host) - 1] = '\0';
		a6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, host + 1, &a6->sin6_addr);
	} else {
		a4->sin_family = AF_INET;
		inet_pton(AF_INET, host, &a4->sin_addr);
	}
	sockaddr_set_port((struct sockaddr *)&ss, (uint16_t)atoi(colon + 1));
	rc = base_addr_apply((struct sockaddr *)&ss, listen_port, orig_port);
	sockaddr_format((struct sockaddr *)&ss, out, len);
	return rc;
}

static void test_base_addr_apply_offsets_target_address_by_distance_from_listen_port(void)
{
	static const struct {
		const char *target;
		uint16_t listen, orig;
		const char *want;
	} cases[] = {
		{ "10.0.0.1:80", 1000, 1000, "10.0.0.1:80" },
		{ "10.0.0.1:80", 1000, 1005, "10.0.0.6:80" },		/* the port stays */
		{ "10.0.0.1:80", 1000, 995, "9.255.255.252:80" },	/* borrows across octets */
		{ "10.0.0.250:80", 1000, 1010, "10.0.1.4:80" },		/* carries across octets */
		{ "10.0.0.1:80", 1, 65535, "10.0.255.255:80" },
		{ "10.1.0.0:80", 65535, 1, "10.0.0.2:80" },
		{ "255.255.255.254:9", 1000, 1001, "255.255.255.255:9" },	/* upper bound exactly */
		{ "0.0.0.1:9", 1000, 999, "0.0.0.0:9" },			/* lower bound exactly */
		{ "[2001:db8::1]:443", 8000, 8016, "[2001:db8::11]:443" },
		{ "[2001:db8::1:0]:443", 8000, 7999, "[2001:db8::ffff]:443" },
		{ "[2001:db8::fffe:ffff]:443", 1, 2, "[2001:db8::ffff:0]:443" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char out[INET6_ADDRSTRLEN + 16];

		CHECK_EQ(base_addr(cases[i].target, cases[i].listen, cases[i].orig, out, sizeof(out)), 0);
		CHECK_STR(out, cases[i].want);
	}
}

static void test_base_addr_apply_rejects_leaving_the_32_bit_block_and_keeps_the_address(void)
{
	static const struct {
		const char *target;
		uint16_t listen, orig;
	} cases[] = {
		{ "255.255.255.255:9", 1000, 1001 },	/* top + 1 */
		{ "0.0.0.0:9", 1000, 999 },		/* bottom - 1 */
		{ "255.255.255.0:9", 1, 65535 },	/* far above */
		{ "0.0.1.0:9", 65535, 1 },		/* far below */
		/* IPv6: only the low 32 bits move; no carry into the rest of the address */
		{ "[2001:db8::ffff:ffff]:443", 1000, 1001 },
		{ "[2001:db8::1:0:0]:443", 1000, 999 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char out[INET6_ADDRSTRLEN + 16], want[INET6_ADDRSTRLEN + 16];

		CHECK_EQ(base_addr(cases[i].target, cases[i].listen, cases[i].orig, out, sizeof(out)), -ERANGE);
		base_addr(cases[i].target, 1, 1, want, sizeof(want));
		CHECK_STR(out, want);
	}
}

static struct endpoint parsed(const char *text)
{
	struct endpoint ep;
	char err[EP_ERR_MAX];

	if (endpoint_parse(text, &ep, err, sizeof(err))) {
		fprintf(stderr, "  setup: %s\n", err);
		abort();
	}
	return ep;
}

static void test_endpoint_resolve_numeric_ipv4(void)
{
	struct endpoint ep = parsed("tcp://127.0.0.1:8080");
	char err[EP_ERR_MAX] = "", buf[64];

	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), 0);
	CHECK_EQ(ep.naddrs, 1);
	CHECK_EQ(ep.addrs[0].ss_family, AF_INET);
	sockaddr_format((struct sockaddr *)&ep.addrs[0], buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.1:8080");
}

static void test_endpoint_resolve_udp_gives_one_address_per_host_address(void)
{
	struct endpoint ep = parsed("udp://127.0.0.1:53");
	char err[EP_ERR_MAX] = "", buf[64];

	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), 0);
	CHECK_EQ(ep.naddrs, 1);
	sockaddr_format((struct sockaddr *)&ep.addrs[0], buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.1:53");
}

static void test_endpoint_resolve_numeric_ipv6(void)
{
	struct endpoint ep = parsed("tcp://[::1]:443");
	char err[EP_ERR_MAX] = "", buf[64];

	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), 0);
	CHECK_EQ(ep.naddrs, 1);
	CHECK_EQ(ep.addrs[0].ss_family, AF_INET6);
	sockaddr_format((struct sockaddr *)&ep.addrs[0], buf, sizeof(buf));
	CHECK_STR(buf, "[::1]:443");
}

static void test_endpoint_resolve_keeps_ipv6_zone_as_scope_id(void)
{
	struct endpoint ep = parsed("tcp://[fe80::1%lo]:22");
	char err[EP_ERR_MAX] = "";
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ep.addrs[0];

	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), 0);
	CHECK_EQ(ep.naddrs, 1);
	CHECK_EQ(a6->sin6_family, AF_INET6);
	CHECK_EQ(a6->sin6_scope_id, if_nametoindex("lo"));
	CHECK_EQ(ntohs(a6->sin6_port), 22);
}

static void test_endpoint_resolve_passive_star_gives_wildcard_addresses(void)
{
	struct endpoint ep = parsed("tcp://*:9000");
	char err[EP_ERR_MAX] = "", buf[64];
	int v4 = 0;

	CHECK_EQ(endpoint_resolve(&ep, 1, err, sizeof(err)), 0);
	CHECK(ep.naddrs >= 1);
	for (unsigned i = 0; i < ep.naddrs; i++) {
		sockaddr_format((struct sockaddr *)&ep.addrs[i], buf, sizeof(buf));
		if (ep.addrs[i].ss_family == AF_INET) {
			CHECK_STR(buf, "0.0.0.0:9000");
			v4++;
		} else {
			CHECK_STR(buf, "[::]:9000");
		}
	}
	CHECK_EQ(v4, 1);
}

static void test_endpoint_resolve_localhost_gives_loopback_addresses(void)
{
	struct endpoint ep = parsed("tcp://localhost:7");
	char err[EP_ERR_MAX] = "";

	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), 0);
	CHECK(ep.naddrs >= 1);
	for (unsigned i = 0; i < ep.naddrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&ep.addrs[i];

		if (sa->sa_family == AF_INET)
			CHECK_EQ(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24, 127);
		else
			CHECK(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr));
		CHECK_EQ(sockaddr_port(sa), 7);
	}
}

static void test_endpoint_resolve_unknown_name_fails_naming_it(void)
{
	struct endpoint ep = parsed("tcp://no-such-host.invalid:80");
	char err[EP_ERR_MAX] = "";

	CHECK_EQ(endpoint_resolve(&ep, 0, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "cannot resolve \"no-such-host.invalid\" in \"tcp://no-such-host.invalid:80\": ") ==
	      err);
	CHECK_EQ(ep.naddrs, 0);
}

int main(void)
{
	RUN(test_endpoint_parse_accepts_valid_endpoints);
	RUN(test_endpoint_parse_accepts_host_of_255_characters);
	RUN(test_endpoint_parse_accepts_icmp_endpoints_with_ids);
	RUN(test_endpoint_parse_leaves_reply_id_unset_outside_icmp);
	RUN(test_endpoint_resolve_icmp_gives_addresses_without_port);
	RUN(test_endpoint_parse_rejects_invalid_endpoints_naming_the_word);
	RUN(test_endpoint_parse_rejects_too_long_host_saying_why);
	RUN(test_endpoint_parse_truncates_error_to_errlen);
	RUN(test_endpoint_parse_bare_uses_the_given_scheme);
	RUN(test_endpoint_format_round_trips_through_parse);
	RUN(test_endpoint_format_of_bare_endpoint_adds_scheme);
	RUN(test_sockaddr_format_prints_ipv4_and_bracketed_ipv6);
	RUN(test_sockaddr_set_port_writes_network_order_for_both_families);
	RUN(test_base_addr_apply_offsets_target_address_by_distance_from_listen_port);
	RUN(test_base_addr_apply_rejects_leaving_the_32_bit_block_and_keeps_the_address);
	RUN(test_endpoint_resolve_numeric_ipv4);
	RUN(test_endpoint_resolve_udp_gives_one_address_per_host_address);
	RUN(test_endpoint_resolve_numeric_ipv6);
	RUN(test_endpoint_resolve_keeps_ipv6_zone_as_scope_id);
	RUN(test_endpoint_resolve_passive_star_gives_wildcard_addresses);
	RUN(test_endpoint_resolve_localhost_gives_loopback_addresses);
	RUN(test_endpoint_resolve_unknown_name_fails_naming_it);
	TEST_EXIT();
}
