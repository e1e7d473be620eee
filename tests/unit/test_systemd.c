/*
 * Socket activation without systemd: inherited sockets described by hand (as os/systemd.c
 * probes them) are mapped to rules by cmd/activate.c: the positional --systemd form, fd://NAME
 * and fd://N rules, and every start-up error the user can meet. Also the fd:// endpoint
 * syntax, --systemd on the command line and the fd store names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "cmd/activate.h"
#include "cmd/args.h"
#include "net/endpoint.h"
#include "os/systemd.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct systemd_sock sock_at(int fd, const char *name, int type, const char *ip, unsigned port)
{
	struct systemd_sock sk;

	memset(&sk, 0, sizeof(sk));
	sk.fd = fd;
	snprintf(sk.name, sizeof(sk.name), "%s", name);
	sk.type = type;
	sk.listening = type == SOCK_STREAM;
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sk.addr;

		sk.family = AF_INET6;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&sk.addr;

		sk.family = AF_INET;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &a->sin_addr);
	}
	return sk;
}

/* game, game (v6), voice (datagram) and web (stream): a typical socket unit set */
static struct systemd_sock unit[4];
static struct systemd_socks socks = { unit, 4 };

static void unit_reset(void)
{
	unit[0] = sock_at(3, "game", SOCK_DGRAM, "0.0.0.0", 27000);
	unit[1] = sock_at(4, "game", SOCK_DGRAM, "::", 27000);
	unit[2] = sock_at(5, "voice", SOCK_DGRAM, "10.0.0.1", 27003);
	unit[3] = sock_at(6, "web", SOCK_STREAM, "10.0.0.1", 8080);
	socks.v = unit;
	socks.n = 4;
}

static struct rule *rule_of(const char *listen, const char *target)
{
	struct rule_opts ro;
	struct rule *r = NULL;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&ro);
	if (rule_build(ARGS_FERRY, listen, target, &ro, &r, err, sizeof(err)))
		fprintf(stderr, "  rule_build(%s, %s): %s\n", listen, target, err);
	return r;
}

/* Attaches the rules given as "LISTEN TARGET" pairs; returns rc, the rules in *out. */
static int attach(const char *const pairs[][2], size_t n, struct rule ***out, size_t *nout, unsigned *used,
		  char *err, size_t errlen)
{
	struct rule **rules = calloc(n, sizeof(*rules));

	for (size_t i = 0; i < n; i++)
		rules[i] = rule_of(pairs[i][0], pairs[i][1]);
	*nout = n;
	memset(used, 0, socks.n * sizeof(*used));
	*out = rules;
	return activate_attach(&socks, used, out, nout, err, errlen);
}

/* ---- target words ---- */

static void test_target_word_forms_take_the_scheme_from_the_socket_type(void)
{
	static const struct {
		const char *word;
		int type;
		const char *want;
	} cases[] = {
		{ "172.16.28.240:27000", SOCK_DGRAM, "udp://172.16.28.240:27000" },
		{ "172.16.28.240", SOCK_DGRAM, "udp://172.16.28.240:7002" },
		{ "backend.example", SOCK_STREAM, "tcp://backend.example:7002" },
		{ "[fd00::2]:53", SOCK_DGRAM, "udp://[fd00::2]:53" },
		{ "[fd00::2]", SOCK_DGRAM, "udp://[fd00::2]:7002" },
		{ "fd00::2", SOCK_STREAM, "tcp://[fd00::2]:7002" },
		{ "udp://10.0.0.2:99", SOCK_DGRAM, "udp://10.0.0.2:99" },
		{ "tcp://10.0.0.2:99", SOCK_STREAM, "tcp://10.0.0.2:99" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char out[EP_TEXT_MAX], err[256] = "";

		CHECK_EQ(activate_target_text(cases[i].word, cases[i].type, 7002, out, sizeof(out), err, sizeof(err)), 0);
		CHECK_STR(out, cases[i].want);
	}
}

static void test_target_word_errors_name_the_word(void)
{
	static const struct {
		const char *word;
		int type;
		const char *want;
	} cases[] = {
		{ "tcp://10.0.0.2:99", SOCK_DGRAM, "target \"tcp://10.0.0.2:99\": the socket is a datagram socket, so the target is udp://" },
		{ "udp://10.0.0.2:99", SOCK_STREAM, "target \"udp://10.0.0.2:99\": the socket is a stream socket" },
		{ "[fd00::2", SOCK_DGRAM, "target \"[fd00::2\": expected [IPv6 address]:port" },
		{ "fd00::zz:80", SOCK_DGRAM, "target \"fd00::zz:80\": an IPv6 address with a port needs brackets" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char out[EP_TEXT_MAX], err[256] = "";

		CHECK_EQ(activate_target_text(cases[i].word, cases[i].type, 7002, out, sizeof(out), err, sizeof(err)),
			 -EINVAL);
		CHECK(strstr(err, cases[i].want) == err);
		if (strstr(err, cases[i].want) != err)
			fprintf(stderr, "  err \"%s\", want \"%s\"\n", err, cases[i].want);
	}
}

/* ---- positional form ---- */

static void test_positional_maps_socket_i_to_target_i_in_order(void)
{
	const char *targets[] = { "172.16.28.240:27000", "172.16.28.240", "[fd00::9]:1", "10.0.0.2" };
	unsigned used[4];
	struct rule **rules = NULL;
	struct rule_opts ro;
	size_t n = 0;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	rule_opts_default(&ro);
	ro.transparent = true;
	CHECK_EQ(activate_positional(&socks, targets, 4, &ro, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 4);
	if (n != 4) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	memset(used, 0, sizeof(used));
	CHECK_EQ(activate_attach(&socks, used, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 4);
	CHECK_STR(rules[0]->desc, "fd://3 (game 0.0.0.0:27000) -> udp://172.16.28.240:27000");
	CHECK_STR(rules[1]->desc, "fd://4 (game [::]:27000) -> udp://172.16.28.240:27000");
	CHECK_STR(rules[2]->desc, "fd://5 (voice 10.0.0.1:27003) -> udp://[fd00::9]:1");
	CHECK_STR(rules[3]->desc, "fd://6 (web 10.0.0.1:8080) -> tcp://10.0.0.2:8080");
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(rules[i]->listen.fd, 3 + i);
		CHECK_EQ(used[i], 1);
		CHECK(rules[i]->o.transparent);
	}
	CHECK(rule_datagram(rules[0]));
	CHECK(rule_datagram(rules[2]));
	CHECK(!rule_datagram(rules[3]));
	CHECK_EQ(rules[3]->listen.fd_type, SOCK_STREAM);
	CHECK_EQ(rules[1]->listen.addrs[0].ss_family, AF_INET6);
	CHECK_EQ(rules[1]->listen.port, 27000);
	rules_free(rules, n);
}

static void test_positional_count_mismatch_names_both_counts(void)
{
	const char *targets[] = { "10.0.0.2:1", "10.0.0.2:2", "10.0.0.2:3" };
	struct rule **rules = NULL;
	struct rule_opts ro;
	size_t n = 0;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	rule_opts_default(&ro);
	CHECK_EQ(activate_positional(&socks, targets, 3, &ro, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--systemd: 3 targets for 4 inherited sockets: give one target per socket, in the order of "
		  "the socket unit's Listen*= lines");
	socks.n = 1;
	CHECK_EQ(activate_positional(&socks, targets, 3, &ro, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--systemd: 3 targets for 1 inherited socket:") == err);
	socks.n = 0;
	CHECK_EQ(activate_positional(&socks, targets, 1, &ro, &rules, &n, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "--systemd: no inherited sockets (LISTEN_FDS is not set") == err);
	CHECK(rules == NULL);
}

static void test_positional_ignores_fd_store_entries(void)
{
	struct systemd_sock v[3];
	struct systemd_socks s = { v, 3 };
	const char *targets[] = { "10.0.0.2:1", "10.0.0.2:2" };
	struct rule **rules = NULL;
	struct rule_opts ro;
	size_t n = 0;
	char err[ARGS_ERR_MAX] = "", name[SYSTEMD_STORE_NAME_MAX];

	systemd_store_name("udp://0.0.0.0:9 udp://h:1 ...", name, sizeof(name));
	v[0] = sock_at(3, "a", SOCK_DGRAM, "10.0.0.1", 1);
	v[1] = sock_at(4, name, SOCK_DGRAM, "10.0.0.1", 9);
	v[2] = sock_at(5, "b", SOCK_DGRAM, "10.0.0.1", 2);
	rule_opts_default(&ro);
	CHECK_EQ(activate_positional(&s, targets, 2, &ro, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_STR(rules[0]->listen.host, "3");
		CHECK_STR(rules[1]->listen.host, "5");
	}
	rules_free(rules, n);
}

static void test_positional_rejects_a_non_socket_and_a_connection(void)
{
	const char *targets[] = { "10.0.0.2:1", "10.0.0.2:2", "10.0.0.2:3", "10.0.0.2:4" };
	struct rule **rules = NULL;
	struct rule_opts ro;
	size_t n = 0;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	rule_opts_default(&ro);
	unit[1].family = 0;
	CHECK_EQ(activate_positional(&socks, targets, 4, &ro, &rules, &n, err, sizeof(err)), -ENOTSOCK);
	CHECK_STR(err, "--systemd: inherited fd 4 (game) is not a socket");
	unit_reset();
	unit[2].family = AF_UNIX;
	CHECK_EQ(activate_positional(&socks, targets, 4, &ro, &rules, &n, err, sizeof(err)), -EAFNOSUPPORT);
	CHECK(strstr(err, "--systemd: inherited fd 5 (voice, socket family 1) is not an IPv4 or IPv6 socket") == err);
	unit_reset();
	unit[3].listening = false;
	unit[3].connected = true;
	CHECK_EQ(activate_positional(&socks, targets, 4, &ro, &rules, &n, err, sizeof(err)), -EISCONN);
	CHECK(strstr(err, "--systemd: inherited fd 6 (web, tcp 10.0.0.1:8080) is a connection (Accept=yes)") == err);
	CHECK(rules == NULL);
}

static void test_positional_bad_target_names_its_position_and_socket(void)
{
	const char *targets[] = { "10.0.0.2:1", "10.0.0.2:0", "10.0.0.2:3", "10.0.0.2:4" };
	struct rule **rules = NULL;
	struct rule_opts ro;
	size_t n = 0;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	rule_opts_default(&ro);
	CHECK_EQ(activate_positional(&socks, targets, 4, &ro, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--systemd: target 2 for fd 4 (game): bad port \"0\"") == err);
	if (strstr(err, "--systemd: target 2 for fd 4 (game): bad port \"0\"") != err)
		fprintf(stderr, "  err \"%s\"\n", err);
}

/* ---- fd:// rules ---- */

static void test_fd_name_on_two_sockets_becomes_two_rules(void)
{
	const char *pairs[][2] = {
		{ "fd://voice", "udp://10.0.0.2:5" },
		{ "fd://game", "udp://172.16.28.240:27000" },
		{ "fd://web", "tcp://10.0.0.2:80" },
	};
	struct rule **rules;
	unsigned used[4];
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	CHECK_EQ(attach(pairs, 3, &rules, &n, used, err, sizeof(err)), 0);
	CHECK_EQ(n, 4);
	if (n != 4) {
		fprintf(stderr, "  %s\n", err);
		rules_free(rules, n);
		return;
	}
	CHECK_STR(rules[0]->desc, "fd://voice (fd 5 10.0.0.1:27003) -> udp://10.0.0.2:5");
	CHECK_STR(rules[1]->desc, "fd://game (fd 3 0.0.0.0:27000) -> udp://172.16.28.240:27000");
	CHECK_STR(rules[2]->desc, "fd://game (fd 4 [::]:27000) -> udp://172.16.28.240:27000");
	CHECK_STR(rules[3]->desc, "fd://web (fd 6 10.0.0.1:8080) -> tcp://10.0.0.2:80");
	CHECK_EQ(rules[1]->listen.fd, 3);
	CHECK_EQ(rules[2]->listen.fd, 4);
	CHECK_EQ(rules[2]->refs, 1);
	/* different sockets, different rules: reload keeps each by its canonical text */
	CHECK(strcmp(rules[1]->canon, rules[2]->canon) != 0);
	CHECK(strstr(rules[2]->canon, " fd=4") != NULL);
	CHECK_EQ(used[0], 1);
	CHECK_EQ(used[1], 1);
	CHECK_EQ(used[2], 1);
	CHECK_EQ(used[3], 1);
	rules_free(rules, n);
}

static void test_fd_number_selects_one_socket_and_leaves_others_unused(void)
{
	const char *pairs[][2] = { { "fd://4", "udp://10.0.0.2:5" } };
	struct rule **rules;
	unsigned used[4];
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	CHECK_EQ(attach(pairs, 1, &rules, &n, used, err, sizeof(err)), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(rules[0]->listen.fd, 4);
	CHECK_STR(rules[0]->desc, "fd://4 (game [::]:27000) -> udp://10.0.0.2:5");
	CHECK_EQ(used[0], 0);
	CHECK_EQ(used[1], 1);
	CHECK_EQ(used[3], 0);
	rules_free(rules, n);
}

static void test_fd_rule_errors_name_the_rule_and_the_reason(void)
{
	static const struct {
		const char *listen, *target, *want;
		int rc;
	} cases[] = {
		{ "fd://nope", "udp://10.0.0.2:5",
		  "rule fd://nope -> udp://10.0.0.2:5: no inherited socket named \"nope\" (fd 3 game, fd 4 game, fd 5 voice, fd 6 web)",
		  -ENOENT },
		{ "fd://9", "udp://10.0.0.2:5", "rule fd://9 -> udp://10.0.0.2:5: no inherited socket with fd 9 (fd 3 game,", -ENOENT },
		{ "fd://web", "udp://10.0.0.2:5",
		  "rule fd://web -> udp://10.0.0.2:5: inherited fd 6 (web, tcp 10.0.0.1:8080) is a stream socket: the target must be tcp://",
		  -EPROTOTYPE },
		{ "fd://voice", "tcp://10.0.0.2:5",
		  "rule fd://voice -> tcp://10.0.0.2:5: inherited fd 5 (voice, udp 10.0.0.1:27003) is a datagram socket: the target "
		  "must be udp://", -EPROTOTYPE },
	};

	for (size_t i = 0; i < N(cases); i++) {
		const char *pairs[][2] = { { cases[i].listen, cases[i].target } };
		struct rule **rules;
		unsigned used[4];
		size_t n;
		char err[ARGS_ERR_MAX] = "";

		unit_reset();
		CHECK_EQ(attach(pairs, 1, &rules, &n, used, err, sizeof(err)), cases[i].rc);
		CHECK(strstr(err, cases[i].want) == err);
		if (strstr(err, cases[i].want) != err)
			fprintf(stderr, "  err \"%s\"\n  want \"%s\"\n", err, cases[i].want);
		rules_free(rules, n);
	}
}

static void test_fd_socket_taken_by_two_rules_is_an_error(void)
{
	const char *pairs[][2] = { { "fd://voice", "udp://10.0.0.2:5" }, { "fd://5", "udp://10.0.0.2:6" } };
	struct rule **rules;
	unsigned used[4];
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	unit_reset();
	CHECK_EQ(attach(pairs, 2, &rules, &n, used, err, sizeof(err)), -EBUSY);
	CHECK_STR(err, "rule fd://5 -> udp://10.0.0.2:6: inherited fd 5 (voice) is already taken by another rule");
	rules_free(rules, n);
}

static void test_fd_rule_without_inherited_sockets_says_none_came(void)
{
	const char *pairs[][2] = { { "fd://game", "udp://10.0.0.2:5" } };
	struct rule **rules;
	unsigned used[1];
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	socks.n = 0;
	CHECK_EQ(attach(pairs, 1, &rules, &n, used, err, sizeof(err)), -ENOENT);
	CHECK_STR(err, "rule fd://game -> udp://10.0.0.2:5: no inherited socket named \"game\" (none were inherited: "
		  "LISTEN_FDS is not set)");
	rules_free(rules, n);
}

/* ---- syntax: fd:// endpoints, --systemd ---- */

static void test_fd_endpoint_syntax(void)
{
	struct endpoint ep;
	char err[EP_ERR_MAX] = "", text[EP_TEXT_MAX];

	CHECK_EQ(endpoint_parse("fd://game", &ep, err, sizeof(err)), 0);
	CHECK_EQ(ep.scheme, EP_FD);
	CHECK_STR(ep.host, "game");
	CHECK_EQ(ep.fd_num, -1);
	CHECK_EQ(ep.fd, -1);
	endpoint_format(&ep, text, sizeof(text));
	CHECK_STR(text, "fd://game");
	CHECK_EQ(endpoint_parse("fd://ferry-game.socket", &ep, err, sizeof(err)), 0);
	CHECK_EQ(endpoint_parse("fd://7", &ep, err, sizeof(err)), 0);
	CHECK_EQ(ep.fd_num, 7);
	CHECK_EQ(endpoint_resolve(&ep, 1, err, sizeof(err)), 0);
	CHECK_EQ(ep.naddrs, 0);
	CHECK_EQ(endpoint_parse("fd://", &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bad endpoint \"fd://\": expected fd://NAME") == err);
	CHECK_EQ(endpoint_parse("fd://2", &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "inherited sockets are numbered from 3") != NULL);
	CHECK_EQ(endpoint_parse("fd://a:b", &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "printable ASCII without ':'") != NULL);
}

static void test_fd_rule_pairs(void)
{
	static const struct {
		const char *listen, *target, *err;
	} bad[] = {
		{ "fd://game", "kcp://h:1", "cannot forward fd:// to kcp://" },
		{ "udp://0.0.0.0:1", "fd://game", "fd:// in \"fd://game\" is an inherited listening socket, not a target" },
		{ "fd://game", "fd://x", "fd:// in \"fd://x\" is an inherited listening socket" },
	};
	struct rule_opts ro;
	struct rule *r = NULL;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&ro);
	CHECK_EQ(rule_build(ARGS_FERRY, "fd://game", "udp://h:1", &ro, &r, err, sizeof(err)), 0);
	CHECK(r && rule_datagram(r));
	CHECK_STR(r ? r->desc : NULL, "fd://game -> udp://h:1");
	if (r)
		rule_unref(r);
	CHECK_EQ(rule_build(ARGS_FERRY, "fd://web", "tcp://h:1", &ro, &r, err, sizeof(err)), 0);
	CHECK(r && !rule_datagram(r));
	if (r)
		rule_unref(r);
	ro.base_addr = true;
	CHECK_EQ(rule_build(ARGS_FERRY, "fd://game", "udp://h:1", &ro, &r, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--base-addr is for tcp:// rules only");
	rule_opts_default(&ro);
	for (size_t i = 0; i < N(bad); i++) {
		CHECK_EQ(rule_build(ARGS_FERRY, bad[i].listen, bad[i].target, &ro, &r, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, bad[i].err) == err);
		if (strstr(err, bad[i].err) != err)
			fprintf(stderr, "  err \"%s\", want \"%s\"\n", err, bad[i].err);
	}
}

static void test_systemd_option_allows_many_targets(void)
{
	char *words[] = { "10.0.0.2:1", "--transparent", "10.0.0.2:2", "[::1]:3", "--systemd", "--status-interval",
			  "0.5" };
	struct global_opts g;
	struct rule_opts ro;
	struct args_result res;
	char err[ARGS_ERR_MAX] = "";

	global_opts_default(&g);
	rule_opts_default(&ro);
	CHECK_EQ(g.status_interval_ms, 10000);
	CHECK_EQ(args_parse(ARGS_FERRY, 7, words, &g, &ro, &res, err, sizeof(err)), 0);
	CHECK(g.systemd);
	CHECK(ro.transparent);
	CHECK_EQ(g.status_interval_ms, 500);
	CHECK_EQ(res.npos, 3);
	CHECK_STR(res.pos[2], "[::1]:3");
	/* without --systemd a third word is still an error */
	global_opts_default(&g);
	CHECK_EQ(args_parse(ARGS_FERRY, 4, words, &g, &ro, &res, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "unexpected argument \"[::1]:3\": a rule is LISTEN TARGET");
	/* nor in a config line */
	CHECK_EQ(args_parse(ARGS_FERRY, 4, words, NULL, &ro, &res, err, sizeof(err)), -EINVAL);
	CHECK_EQ(args_parse(ARGS_FERRY, 5, words, NULL, &ro, &res, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "option --systemd is not allowed in a rule line") == err);
}

/* ---- fd store names ---- */

static void test_store_names_are_stable_and_recognised(void)
{
	char a[SYSTEMD_STORE_NAME_MAX], b[SYSTEMD_STORE_NAME_MAX], c[SYSTEMD_STORE_NAME_MAX];
	struct systemd_sock sk = sock_at(3, "game", SOCK_DGRAM, "0.0.0.0", 1);

	systemd_store_name("udp://0.0.0.0:7000 udp://10.0.0.2:7000 ct=1", a, sizeof(a));
	systemd_store_name("udp://0.0.0.0:7000 udp://10.0.0.2:7000 ct=1", b, sizeof(b));
	systemd_store_name("udp://0.0.0.0:7000 udp://10.0.0.2:7001 ct=1", c, sizeof(c));
	CHECK_STR(a, b);
	CHECK(strcmp(a, c) != 0);
	CHECK_EQ(strlen(a), 18);
	CHECK(systemd_is_store_name(a));
	/* FNV-1a 64 of the empty text is its offset basis */
	systemd_store_name("", a, sizeof(a));
	CHECK_STR(a, "l-cbf29ce484222325");
	CHECK(!systemd_is_store_name("l-cbf29ce48422232"));
	CHECK(!systemd_is_store_name("l-cbf29ce48422232X"));
	CHECK(!systemd_is_store_name("game"));
	CHECK(systemd_sock_matches(&sk, "game", -1));
	CHECK(!systemd_sock_matches(&sk, "gam", -1));
	CHECK(systemd_sock_matches(&sk, "3", 3));
	CHECK(!systemd_sock_matches(&sk, "4", 4));
	sk.fd = -1;	/* handed over or dropped */
	CHECK(!systemd_sock_matches(&sk, "game", -1));
}

int main(void)
{
	RUN(test_target_word_forms_take_the_scheme_from_the_socket_type);
	RUN(test_target_word_errors_name_the_word);
	RUN(test_positional_maps_socket_i_to_target_i_in_order);
	RUN(test_positional_count_mismatch_names_both_counts);
	RUN(test_positional_ignores_fd_store_entries);
	RUN(test_positional_rejects_a_non_socket_and_a_connection);
	RUN(test_positional_bad_target_names_its_position_and_socket);
	RUN(test_fd_name_on_two_sockets_becomes_two_rules);
	RUN(test_fd_number_selects_one_socket_and_leaves_others_unused);
	RUN(test_fd_rule_errors_name_the_rule_and_the_reason);
	RUN(test_fd_socket_taken_by_two_rules_is_an_error);
	RUN(test_fd_rule_without_inherited_sockets_says_none_came);
	RUN(test_fd_endpoint_syntax);
	RUN(test_fd_rule_pairs);
	RUN(test_systemd_option_allows_many_targets);
	RUN(test_store_names_are_stable_and_recognised);
	TEST_EXIT();
}
