/*
 * cmd/args and cmd/config: the option parser in both dialects (ferry, tcpfwd), the
 * number parsers, rule_build's canonical text, and config files. Each case is a line of
 * words and the options it must produce, written as the list of values that differ
 * from the defaults, so an option that leaks into a neighbour shows up as a diff.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/args.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define ADD(...) (n += (size_t)snprintf(out + n, len > n ? len - n : 0, __VA_ARGS__))

/* Every field of g (may be NULL), ro and res that differs from its default, in a fixed order. */
static void describe(const struct global_opts *g, const struct rule_opts *ro, const struct args_result *res,
		     char *out, size_t len)
{
	struct global_opts gd;
	struct rule_opts d;
	size_t n = 0;

	global_opts_default(&gd);
	rule_opts_default(&d);
	out[0] = '\0';
	if (g) {
		if (g->config_path) ADD(" config=%s", g->config_path);
		if (g->daemonize) ADD(" daemon");
		if (g->pidfile) ADD(" pidfile=%s", g->pidfile);
		if (g->user) ADD(" user=%s", g->user);
		if (g->group) ADD(" group=%s", g->group);
		if (g->workers != gd.workers) ADD(" workers=%u", g->workers);
		if (g->busy_poll_us != gd.busy_poll_us) ADD(" busy-poll=%u", g->busy_poll_us);
		if (g->log_level != gd.log_level) ADD(" log-level=%d", (int)g->log_level);
		if (g->log_json) ADD(" json");
		if (g->stats_interval_ms != gd.stats_interval_ms) ADD(" stats=%u", g->stats_interval_ms);
		if (g->drain_ms != gd.drain_ms) ADD(" drain=%u", g->drain_ms);
		if (g->help) ADD(" help");
		if (g->version) ADD(" version");
	}
	if (ro->connect_timeout_ms != d.connect_timeout_ms) ADD(" ct=%u", ro->connect_timeout_ms);
	if (ro->idle_timeout_ms != d.idle_timeout_ms) ADD(" it=%u", ro->idle_timeout_ms);
	if (ro->max_conns != d.max_conns) ADD(" mc=%u", ro->max_conns);
	if (ro->base_addr) ADD(" base-addr");
	if (ro->no_splice) ADD(" no-splice");
	if (ro->sock.sndbuf != d.sock.sndbuf) ADD(" sndbuf=%d", ro->sock.sndbuf);
	if (ro->sock.rcvbuf != d.sock.rcvbuf) ADD(" rcvbuf=%d", ro->sock.rcvbuf);
	if (ro->sock.keepalive != d.sock.keepalive) ADD(" keepalive=%d", ro->sock.keepalive);
	if (ro->sock.ka_idle_s != d.sock.ka_idle_s) ADD(" ka-idle=%u", ro->sock.ka_idle_s);
	if (ro->sock.ka_intvl_s != d.sock.ka_intvl_s) ADD(" ka-intvl=%u", ro->sock.ka_intvl_s);
	if (ro->sock.ka_cnt != d.sock.ka_cnt) ADD(" ka-cnt=%u", ro->sock.ka_cnt);
	if (ro->sock.reuseaddr) ADD(" reuseaddr");
	if (ro->sock.reuseport) ADD(" reuseport");
	if (ro->sock.v6only) ADD(" v6only");
	if (ro->udp_timeout_ms != d.udp_timeout_ms) ADD(" ut=%u", ro->udp_timeout_ms);
	if (ro->max_sessions != d.max_sessions) ADD(" ms=%u", ro->max_sessions);
	if (ro->hash_size != d.hash_size) ADD(" hs=%u", ro->hash_size);
	if (ro->max_datagram != d.max_datagram) ADD(" md=%u", ro->max_datagram);
	if (ro->single.on) ADD(" single");
	if (ro->single.on_timeout_exit) ADD(" on-timeout=exit");
	if (ro->single.sync_pps) ADD(" sync-pps=%u", ro->single.sync_pps);
	if (ro->single.handshake_timeout_ms) ADD(" hst=%u", ro->single.handshake_timeout_ms);
	for (int i = 0; i < res->npos; i++)
		ADD(" [%s]", res->pos[i]);
	if (n && out[0] == ' ')
		memmove(out, out + 1, strlen(out));
}

struct args_case {
	const char *line;
	const char *want;	/* describe() on success, or a substring of the error */
	int rc;
};

static void args_check(enum args_dialect dia, int rule_line, const struct args_case *c, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct test_words ws;
		struct global_opts g;
		struct rule_opts ro;
		struct args_result res;
		char err[ARGS_ERR_MAX] = "", got[1024];
		int rc;

		global_opts_default(&g);
		rule_opts_default(&ro);
		test_words_split(&ws, c[i].line);
		rc = args_parse(dia, ws.n, ws.w, rule_line ? NULL : &g, &ro, &res, err, sizeof(err));
		CHECK_EQ(rc, c[i].rc);
		if (rc != c[i].rc) {
			fprintf(stderr, "  line \"%s\": err \"%s\"\n", c[i].line, err);
			continue;
		}
		if (rc) {
			CHECK(strstr(err, c[i].want) != NULL);
			if (!strstr(err, c[i].want))
				fprintf(stderr, "  line \"%s\": err \"%s\", want \"%s\"\n", c[i].line, err, c[i].want);
			continue;
		}
		describe(rule_line ? NULL : &g, &ro, &res, got, sizeof(got));
		CHECK_STR(got, c[i].want);
		if (strcmp(got, c[i].want))
			fprintf(stderr, "  line \"%s\"\n", c[i].line);
	}
}

static const struct args_case ferry_cases[] = {
	{ "tcp://a:1 tcp://b:2", "[tcp://a:1] [tcp://b:2]", 0 },
	{ "", "", 0 },
	{ "-d -p /run/f.pid tcp://a:1 tcp://b:2", "daemon pidfile=/run/f.pid [tcp://a:1] [tcp://b:2]", 0 },
	{ "-dr tcp://a:1 tcp://b:2", "daemon reuseaddr [tcp://a:1] [tcp://b:2]", 0 },
	{ "-rd6bR", "daemon base-addr reuseaddr reuseport v6only", 0 },
	{ "-pFILE", "pidfile=FILE", 0 },
	{ "-dpFILE", "daemon pidfile=FILE", 0 },
	{ "-pd", "pidfile=d", 0 },
	{ "-c /etc/ferry.conf", "config=/etc/ferry.conf", 0 },
	{ "--config=x.conf --daemon", "config=x.conf daemon", 0 },
	{ "--pidfile=/x", "pidfile=/x", 0 },
	{ "--pidfile /x", "pidfile=/x", 0 },
	{ "--pidfile=a=b", "pidfile=a=b", 0 },
	{ "--user nobody --group=nogroup", "user=nobody group=nogroup", 0 },
	{ "--workers 4", "workers=4", 0 },
	{ "--workers=256", "workers=256", 0 },
	{ "--busy-poll 50", "busy-poll=50", 0 },
	{ "--busy-poll 0", "", 0 },
	{ "--log-level debug", "log-level=3", 0 },
	{ "--log-level=error", "log-level=0", 0 },
	{ "--log-format json", "json", 0 },
	{ "--log-format json --log-format text", "", 0 },
	{ "--stats-interval 1.5", "stats=1500", 0 },
	{ "--stats-interval 0.1", "stats=100", 0 },
	{ "--stats-interval 0", "", 0 },
	{ "--drain-timeout 2", "drain=2000", 0 },
	{ "--drain-timeout=0.25", "drain=250", 0 },
	{ "-h", "help", 0 },
	{ "--help", "help", 0 },
	{ "-V", "version", 0 },
	{ "--version", "version", 0 },
	{ "--connect-timeout=0.5", "ct=500", 0 },
	{ "--connect-timeout 86400", "ct=86400000", 0 },
	{ "--idle-timeout 30 --max-conns 100", "it=30000 mc=100", 0 },
	{ "--idle-timeout 0", "", 0 },
	{ "--max-conns 5 --max-conns 7", "mc=7", 0 },
	{ "--max-conns 10000000", "mc=10000000", 0 },
	{ "--sndbuf 65536 --rcvbuf=1024", "sndbuf=65536 rcvbuf=1024", 0 },
	{ "--sndbuf 1073741824", "sndbuf=1073741824", 0 },
	{ "--keepalive-idle 5 --keepalive-intvl 2 --keepalive-cnt 3", "ka-idle=5 ka-intvl=2 ka-cnt=3", 0 },
	{ "--keepalive-idle 32767 --keepalive-cnt 127", "ka-idle=32767 ka-cnt=127", 0 },
	{ "--no-keepalive", "keepalive=0", 0 },
	{ "-6 -b -R --no-splice", "base-addr no-splice reuseport v6only", 0 },
	{ "--reuseaddr --reuseport --v6only --base-addr", "base-addr reuseaddr reuseport v6only", 0 },
	{ "--udp-timeout 30 --max-sessions 10 --hash-size 64 --max-datagram 1500", "ut=30000 ms=10 hs=64 md=1500", 0 },
	{ "-t 0.5 -H 16777216 --max-datagram=65527", "ut=500 hs=16777216 md=65527", 0 },
	{ "-t5", "ut=5000", 0 },
	/* options may follow positionals; "--" ends options; "-" alone is a word */
	{ "tcp://a:1 -d tcp://b:2", "daemon [tcp://a:1] [tcp://b:2]", 0 },
	{ "tcp://a:1 tcp://b:2 --reuseport", "reuseport [tcp://a:1] [tcp://b:2]", 0 },
	{ "-d -- -r --x", "daemon [-r] [--x]", 0 },
	{ "-- --", "[--]", 0 },
	{ "- tcp://b:2", "[-] [tcp://b:2]", 0 },
	/* errors name the bad word */
	{ "--bogus", "unknown option \"--bogus\"", -EINVAL },
	{ "--bogus=1", "unknown option \"--bogus=1\"", -EINVAL },
	{ "--", "", 0 },
	{ "---", "unknown option \"---\"", -EINVAL },
	{ "-x", "unknown option \"-x\" in \"-x\"", -EINVAL },
	{ "-dx", "unknown option \"-x\" in \"-dx\"", -EINVAL },
	{ "-p", "option \"-p\" needs a value", -EINVAL },
	{ "-dp", "option \"-p\" needs a value", -EINVAL },
	{ "--pidfile", "option \"--pidfile\" needs a value", -EINVAL },
	{ "--daemon=yes", "option \"--daemon\" takes no value", -EINVAL },
	{ "--no-keepalive=", "option \"--no-keepalive\" takes no value", -EINVAL },
	{ "a b c", "unexpected argument \"c\": a rule is LISTEN TARGET", -EINVAL },
	{ "a -- b c", "unexpected argument \"c\"", -EINVAL },
	{ "--workers 0", "bad value \"0\" for --workers: expected a number of threads from 1 to 256", -EINVAL },
	{ "--workers 257", "bad value \"257\" for --workers", -EINVAL },
	{ "--workers=-1", "bad value \"-1\" for --workers", -EINVAL },
	{ "--busy-poll 10001", "bad value \"10001\" for --busy-poll: expected microseconds from 0 (off) to 10000", -EINVAL },
	{ "--log-level loud", "bad value \"loud\" for --log-level: expected error, warn, info or debug", -EINVAL },
	{ "--log-level INFO", "bad value \"INFO\" for --log-level", -EINVAL },
	{ "--log-format xml", "bad value \"xml\" for --log-format: expected text or json", -EINVAL },
	{ "--stats-interval 0.05", "bad value \"0.05\" for --stats-interval", -EINVAL },
	{ "--stats-interval 86400.001", "bad value \"86400.001\" for --stats-interval", -EINVAL },
	{ "--drain-timeout abc", "bad value \"abc\" for --drain-timeout: expected seconds", -EINVAL },
	{ "--connect-timeout 0", "bad value \"0\" for --connect-timeout", -EINVAL },
	{ "--connect-timeout=0.0001", "bad value \"0.0001\" for --connect-timeout", -EINVAL },
	{ "--connect-timeout 86400.001", "bad value \"86400.001\" for --connect-timeout", -EINVAL },
	{ "--idle-timeout -1", "bad value \"-1\" for --idle-timeout", -EINVAL },
	{ "--max-conns 0", "bad value \"0\" for --max-conns", -EINVAL },
	{ "--max-conns 10000001", "bad value \"10000001\" for --max-conns", -EINVAL },
	{ "--sndbuf 1023", "bad value \"1023\" for --sndbuf: expected bytes from 1024 to 1073741824", -EINVAL },
	{ "--rcvbuf 1073741825", "bad value \"1073741825\" for --rcvbuf", -EINVAL },
	{ "--keepalive-idle 32768", "bad value \"32768\" for --keepalive-idle", -EINVAL },
	{ "--keepalive-intvl 0", "bad value \"0\" for --keepalive-intvl", -EINVAL },
	{ "--keepalive-cnt 128", "bad value \"128\" for --keepalive-cnt: expected a count from 1 to 127", -EINVAL },
	{ "--udp-timeout 0", "bad value \"0\" for --udp-timeout: expected seconds greater than 0", -EINVAL },
	{ "--max-sessions 0", "bad value \"0\" for --max-sessions", -EINVAL },
	{ "--hash-size 16777217", "bad value \"16777217\" for --hash-size", -EINVAL },
	{ "--max-datagram 65528", "bad value \"65528\" for --max-datagram: expected bytes from 1 to 65527", -EINVAL },
	{ "-t", "option \"-t\" needs a value", -EINVAL },
	/* single-client rules (spec/pkthere.md §1.3 under ferry's names) */
	{ "--single-client --on-timeout exit", "single on-timeout=exit", 0 },
	{ "--on-timeout exit --on-timeout drop", "", 0 },
	{ "--icmp-sync-pps 20 --icmp-handshake-timeout 2.5", "sync-pps=20 hst=2500", 0 },
	{ "--icmp-sync-pps 0 --icmp-handshake-timeout 3600", "hst=3600000", 0 },
	{ "--max-payload 1400", "md=1400", 0 },
	{ "--on-timeout Exit", "bad value \"Exit\" for --on-timeout: expected drop or exit", -EINVAL },
	{ "--on-timeout", "option \"--on-timeout\" needs a value", -EINVAL },
	{ "--single-client=1", "option \"--single-client\" takes no value", -EINVAL },
	{ "--icmp-sync-pps 1000001", "bad value \"1000001\" for --icmp-sync-pps", -EINVAL },
	{ "--icmp-handshake-timeout 3600.001", "bad value \"3600.001\" for --icmp-handshake-timeout: expected seconds greater than 0, at most 3600", -EINVAL },
	{ "--icmp-handshake-timeout 0", "bad value \"0\" for --icmp-handshake-timeout", -EINVAL },
	{ "--max-payload 65528", "bad value \"65528\" for --max-payload: expected bytes from 1 to 65527", -EINVAL },
};

static void test_args_parse_ferry_dialect(void)
{
	args_check(ARGS_FERRY, 0, ferry_cases, N(ferry_cases));
}

static const struct args_case tcpfwd_cases[] = {
	{ "0.0.0.0:80 10.0.0.2:80", "[0.0.0.0:80] [10.0.0.2:80]", 0 },
	{ "-d -p /run/t.pid -b -r -R -6 a:1 b:2", "daemon pidfile=/run/t.pid base-addr reuseaddr reuseport v6only [a:1] [b:2]", 0 },
	{ "-dbrR6 a:1 b:2", "daemon base-addr reuseaddr reuseport v6only [a:1] [b:2]", 0 },
	{ "-p/run/x a:1 b:2", "pidfile=/run/x [a:1] [b:2]", 0 },
	{ "a:1 -r b:2 -d", "daemon reuseaddr [a:1] [b:2]", 0 },
	{ "-h", "help", 0 },
	/* portfwd's letters only: ferry's other short options are unknown here */
	{ "-c f", "unknown option \"-c\" in \"-c\"", -EINVAL },
	{ "-V", "unknown option \"-V\" in \"-V\"", -EINVAL },
	{ "-dV", "unknown option \"-V\" in \"-dV\"", -EINVAL },
	{ "-p", "option \"-p\" needs a value", -EINVAL },
	{ "a:1 b:2 c:3", "unexpected argument \"c:3\"", -EINVAL },
	/* ferry's long options are accepted too (the table's comment, and errors say "see --help") */
	{ "--help", "help", 0 },
	{ "--version", "version", 0 },
	{ "--log-level debug --max-conns 10 a:1 b:2", "log-level=3 mc=10 [a:1] [b:2]", 0 },
	{ "--reuseport --pidfile=/x", "pidfile=/x reuseport", 0 },
	{ "--bogus", "unknown option \"--bogus\"", -EINVAL },
	{ "-t 5", "unknown option \"-t\" in \"-t\"", -EINVAL },
	{ "-o", "unknown option \"-o\" in \"-o\"", -EINVAL },
};

static void test_args_parse_tcpfwd_dialect(void)
{
	args_check(ARGS_TCPFWD, 0, tcpfwd_cases, N(tcpfwd_cases));
}

/* portfwd's udpfwd puts options after the addresses; -o is its IPV6_V6ONLY */
static const struct args_case udpfwd_cases[] = {
	{ "0.0.0.0:53 10.0.0.2:53", "[0.0.0.0:53] [10.0.0.2:53]", 0 },
	{ "0.0.0.0:53 10.0.0.2:53 -t 30 -d -o -r -R -H 1024 -p /run/u.pid",
	  "daemon pidfile=/run/u.pid reuseaddr reuseport v6only ut=30000 hs=1024 [0.0.0.0:53] [10.0.0.2:53]", 0 },
	{ "-dorR -t5 -H64 a:1 b:2", "daemon reuseaddr reuseport v6only ut=5000 hs=64 [a:1] [b:2]", 0 },
	{ "-h", "help", 0 },
	{ "--max-sessions 7 --help", "help ms=7", 0 },
	{ "-6", "unknown option \"-6\" in \"-6\"", -EINVAL },
	{ "-b", "unknown option \"-b\" in \"-b\"", -EINVAL },
	{ "-c f", "unknown option \"-c\" in \"-c\"", -EINVAL },
	{ "-t 0", "bad value \"0\" for -t: expected seconds greater than 0", -EINVAL },
	{ "-H 0", "bad value \"0\" for -H: expected a bucket count from 1 to 16777216", -EINVAL },
	{ "-H", "option \"-H\" needs a value", -EINVAL },
	{ "a:1 b:2 c:3", "unexpected argument \"c:3\"", -EINVAL },
};

static void test_args_parse_udpfwd_dialect(void)
{
	args_check(ARGS_UDPFWD, 0, udpfwd_cases, N(udpfwd_cases));
}

static const struct args_case rule_line_cases[] = {
	{ "tcp://a:1 tcp://b:2 --max-conns 3 -r", "mc=3 reuseaddr [tcp://a:1] [tcp://b:2]", 0 },
	{ "tcp://a:1 tcp://b:2 -6bR --no-splice", "base-addr no-splice reuseport v6only [tcp://a:1] [tcp://b:2]", 0 },
	{ "tcp://a:1 tcp://b:2 -d", "option --daemon is not allowed in a rule line (give it on the command line)", -EINVAL },
	{ "-rd", "option --daemon is not allowed in a rule line", -EINVAL },
	{ "--pidfile x", "option --pidfile is not allowed in a rule line", -EINVAL },
	{ "--log-level=debug", "option --log-level is not allowed in a rule line", -EINVAL },
	{ "-c x", "option --config is not allowed in a rule line", -EINVAL },
	{ "--workers 2", "option --workers is not allowed in a rule line", -EINVAL },
	{ "-h", "option --help is not allowed in a rule line", -EINVAL },
	{ "udp://a:1 udp://b:2 -t 10 --max-sessions 5", "ut=10000 ms=5 [udp://a:1] [udp://b:2]", 0 },
	{ "udp://a:1 icmp://b:7 --icmp-sync-pps 5 --on-timeout exit", "on-timeout=exit sync-pps=5 [udp://a:1] [icmp://b:7]", 0 },
};

static void test_args_parse_rejects_global_options_in_a_rule_line(void)
{
	args_check(ARGS_FERRY, 1, rule_line_cases, N(rule_line_cases));
}

static void test_parse_seconds_ms_reads_decimal_seconds(void)
{
	static const struct {
		const char *s;
		uint32_t max;
		int rc;
		uint32_t ms;
	} cases[] = {
		{ "10", 86400000, 0, 10000 },
		{ "0.5", 86400000, 0, 500 },
		{ "1.2345", 86400000, 0, 1234 },
		{ "1.", 86400000, 0, 1000 },
		{ ".5", 86400000, 0, 500 },
		{ "0", 86400000, 0, 0 },
		{ "0.001", 86400000, 0, 1 },
		{ "0.0009", 86400000, 0, 0 },
		{ "007.25", 86400000, 0, 7250 },
		{ "86400", 86400000, 0, 86400000 },
		{ "86400.0009", 86400000, 0, 86400000 },
		{ "86400.001", 86400000, -ERANGE, 0 },
		{ "86401", 86400000, -ERANGE, 0 },
		{ "4294967.295", UINT32_MAX, 0, UINT32_MAX },
		{ "4294967.296", UINT32_MAX, -ERANGE, 0 },
		{ "99999999999999999999999999", UINT32_MAX, -ERANGE, 0 },
		{ "0.000000000000000000000001", 86400000, 0, 0 },
		{ "", 86400000, -EINVAL, 0 },
		{ ".", 86400000, -EINVAL, 0 },
		{ "1..2", 86400000, -EINVAL, 0 },
		{ "1.2.", 86400000, -EINVAL, 0 },
		{ "-1", 86400000, -EINVAL, 0 },
		{ "+1", 86400000, -EINVAL, 0 },
		{ "abc", 86400000, -EINVAL, 0 },
		{ "1e3", 86400000, -EINVAL, 0 },
		{ " 1", 86400000, -EINVAL, 0 },
		{ "1s", 86400000, -EINVAL, 0 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		uint32_t out = 777;
		int rc = parse_seconds_ms(cases[i].s, cases[i].max, &out);

		CHECK_EQ(rc, cases[i].rc);
		CHECK_EQ(out, rc ? 777 : cases[i].ms);
		if (rc != cases[i].rc)
			fprintf(stderr, "  input \"%s\"\n", cases[i].s);
	}
}

static void test_parse_uint_checks_digits_and_range(void)
{
	static const struct {
		const char *s;
		uint64_t min, max;
		int rc;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -ERANGE, 0 },
		{ "0", 1, 10, -ERANGE, 0 },
		{ "1", 1, 1, 0, 1 },
		{ "007", 0, 10, 0, 7 },
		{ "4294967296", 0, UINT64_MAX, 0, 4294967296ull },
		{ "9999999999999999999", 0, UINT64_MAX, 0, 9999999999999999999ull },
		{ "18446744073709551615", 0, UINT64_MAX, -EINVAL, 0 },	/* more than 19 digits */
		{ "", 0, 10, -EINVAL, 0 },
		{ "-1", 0, 10, -EINVAL, 0 },
		{ "+1", 0, 10, -EINVAL, 0 },
		{ " 1", 0, 10, -EINVAL, 0 },
		{ "1 ", 0, 10, -EINVAL, 0 },
		{ "0x10", 0, 100, -EINVAL, 0 },
		{ "1.0", 0, 10, -EINVAL, 0 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		uint64_t out = 777;
		int rc = parse_uint(cases[i].s, cases[i].min, cases[i].max, &out);

		CHECK_EQ(rc, cases[i].rc);
		if (rc)
			CHECK_EQ(out, 777);
		else
			CHECK(out == cases[i].v);
		if (rc != cases[i].rc)
			fprintf(stderr, "  input \"%s\"\n", cases[i].s);
	}
}

static struct rule *build(enum args_dialect dia, const char *l, const char *t, const struct rule_opts *ro)
{
	struct rule *r = NULL;
	char err[ARGS_ERR_MAX];

	if (rule_build(dia, l, t, ro, &r, err, sizeof(err))) {
		fprintf(stderr, "  setup: %s\n", err);
		abort();
	}
	return r;
}

static void test_rule_build_parses_endpoints_and_copies_options(void)
{
	struct rule_opts ro;
	struct rule *r;

	rule_opts_default(&ro);
	ro.max_conns = 9;
	r = build(ARGS_FERRY, "tcp://0.0.0.0:80", "tcp://[::1]:8080", &ro);
	CHECK_STR(r->listen.host, "0.0.0.0");
	CHECK_EQ(r->listen.port, 80);
	CHECK_STR(r->target.host, "::1");
	CHECK_EQ(r->target.port, 8080);
	CHECK_EQ(r->o.max_conns, 9);
	CHECK_EQ(r->refs, 1);
	CHECK_STR(r->desc, "tcp://0.0.0.0:80 -> tcp://[::1]:8080");
	rule_unref(r);

	r = build(ARGS_TCPFWD, "0.0.0.0:80", "10.0.0.2:8080", &ro);
	CHECK_STR(r->desc, "tcp://0.0.0.0:80 -> tcp://10.0.0.2:8080");
	CHECK_EQ(r->listen.scheme, EP_TCP);
	CHECK_EQ(r->target.scheme, EP_TCP);
	rule_unref(r);

	r = build(ARGS_UDPFWD, "0.0.0.0:53", "[::1]:5353", &ro);
	CHECK_STR(r->desc, "udp://0.0.0.0:53 -> udp://[::1]:5353");
	CHECK_EQ(r->listen.scheme, EP_UDP);
	CHECK_EQ(r->target.scheme, EP_UDP);
	rule_unref(r);

	r = build(ARGS_FERRY, "udp://[::]:53", "udp://h:53", &ro);
	CHECK_STR(r->desc, "udp://[::]:53 -> udp://h:53");
	rule_unref(r);
}

static void test_rule_build_gives_equal_rules_equal_canon(void)
{
	struct rule_opts ro;
	struct rule *a, *b, *c;

	rule_opts_default(&ro);
	a = build(ARGS_FERRY, "tcp://0.0.0.0:80", "tcp://h:8080", &ro);
	b = build(ARGS_FERRY, "tcp://0.0.0.0:80", "tcp://h:8080", &ro);
	c = build(ARGS_TCPFWD, "0.0.0.0:0080", "h:8080", &ro);	/* same rule, other spelling */
	CHECK_STR(a->canon, b->canon);
	CHECK_STR(a->canon, c->canon);
	rule_unref(a);
	rule_unref(b);
	rule_unref(c);

	a = build(ARGS_FERRY, "udp://0.0.0.0:80", "udp://h:8080", &ro);
	b = build(ARGS_UDPFWD, "0.0.0.0:80", "h:8080", &ro);
	c = build(ARGS_FERRY, "tcp://0.0.0.0:80", "tcp://h:8080", &ro);
	CHECK_STR(a->canon, b->canon);
	CHECK(strcmp(a->canon, c->canon) != 0);	/* same addresses, other protocol */
	rule_unref(a);
	rule_unref(b);
	rule_unref(c);
}

static void test_rule_build_gives_different_canon_when_anything_differs(void)
{
	struct rule_opts base, ro;
	struct rule *ref, *r;
	char ref_canon[sizeof(ref->canon)];

	rule_opts_default(&base);
	ref = build(ARGS_FERRY, "tcp://0.0.0.0:80", "tcp://h:8080", &base);
	snprintf(ref_canon, sizeof(ref_canon), "%s", ref->canon);
	rule_unref(ref);
	for (int i = 0; i < 20; i++) {
		const char *l = "tcp://0.0.0.0:80", *t = "tcp://h:8080";

		ro = base;
		switch (i) {
		case 0: ro.connect_timeout_ms++; break;
		case 1: ro.idle_timeout_ms = 1000; break;
		case 2: ro.max_conns--; break;
		case 3: ro.base_addr = true; break;
		case 4: ro.no_splice = true; break;
		case 5: ro.sock.sndbuf = 4096; break;
		case 6: ro.sock.rcvbuf = 4096; break;
		case 7: ro.sock.keepalive = false; break;
		case 8: ro.sock.ka_idle_s++; break;
		case 9: ro.sock.ka_intvl_s++; break;
		case 10: ro.sock.ka_cnt++; break;
		case 11: ro.sock.reuseaddr = true; break;
		case 12: ro.sock.reuseport = true; break;
		case 13: ro.sock.v6only = true; break;
		case 14: l = "tcp://0.0.0.0:81"; break;
		case 15: t = "tcp://[::1]:8080"; break;
		case 16: ro.udp_timeout_ms++; break;
		case 17: ro.max_sessions++; break;
		case 18: ro.hash_size = 64; break;
		case 19: ro.max_datagram = 1500; break;
		}
		r = build(ARGS_FERRY, l, t, &ro);
		CHECK(strcmp(r->canon, ref_canon) != 0);
		if (!strcmp(r->canon, ref_canon))
			fprintf(stderr, "  change %d left canon \"%s\"\n", i, r->canon);
		rule_unref(r);
	}
}

static void test_rule_build_reports_the_bad_endpoint(void)
{
	static const struct {
		enum args_dialect dia;
		const char *listen, *target, *err;
	} cases[] = {
		{ ARGS_FERRY, "tcp:/0.0.0.0:80", "tcp://h:1", "bad endpoint \"tcp:/0.0.0.0:80\": expected scheme://host:port" },
		{ ARGS_FERRY, "tcp://0.0.0.0:80", "tcp://h:0", "bad port \"0\" in \"tcp://h:0\"" },
		{ ARGS_FERRY, "sctp://0.0.0.0:80", "tcp://h:1", "unknown scheme \"sctp\" in \"sctp://0.0.0.0:80\"" },
		{ ARGS_FERRY, "0.0.0.0:80", "h:1", "bad endpoint \"0.0.0.0:80\": expected scheme://host:port" },
		{ ARGS_TCPFWD, "0.0.0.0", "h:1", "bad endpoint \"0.0.0.0\": expected host:port" },
		{ ARGS_TCPFWD, "0.0.0.0:80", "::1:80", "bad endpoint \"::1:80\": an IPv6 address needs brackets" },
		{ ARGS_UDPFWD, "0.0.0.0:53", "h:0", "bad port \"0\" in \"h:0\"" },
		{ ARGS_FERRY, "tcp://0.0.0.0:80", "udp://h:1",
		  "cannot forward tcp:// to udp:// in \"tcp://0.0.0.0:80 udp://h:1\": use tcp:// to tcp://, udp:// to udp://, "
		  "tcp:// to kcp:// or kcp:// to tcp://" },
		{ ARGS_FERRY, "kcp://0.0.0.0:80", "kcp://h:1", "cannot forward kcp:// to kcp://" },
		{ ARGS_FERRY, "udp://0.0.0.0:80", "kcp://h:1", "cannot forward udp:// to kcp://" },
		{ ARGS_FERRY, "udp://0.0.0.0:80", "tcp://h:1", "cannot forward udp:// to tcp:// in" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		static struct rule untouched;
		struct rule_opts ro;
		struct rule *r = &untouched;
		char err[ARGS_ERR_MAX] = "";

		rule_opts_default(&ro);
		CHECK_EQ(rule_build(cases[i].dia, cases[i].listen, cases[i].target, &ro, &r, err, sizeof(err)), -EINVAL);
		CHECK(r == &untouched);
		CHECK(strstr(err, cases[i].err) == err);
		if (strstr(err, cases[i].err) != err)
			fprintf(stderr, "  err \"%s\", want \"%s\"\n", err, cases[i].err);
	}
}

/* ---- config files ---- */

static int parse_cfg(const char *text, const struct rule_opts *defaults, struct rule ***rules, size_t *n, char *err,
		     size_t errlen)
{
	*rules = NULL;
	*n = 0;
	return config_parse("f.conf", text, defaults, rules, n, err, errlen);
}

static void test_rule_build_rejects_tcp_only_options_on_udp_rules(void)
{
	struct rule_opts ro;
	struct rule *r = NULL;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&ro);
	ro.base_addr = true;
	CHECK_EQ(rule_build(ARGS_FERRY, "udp://a:1", "udp://b:2", &ro, &r, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--base-addr is for tcp:// rules only");
	rule_opts_default(&ro);
	ro.no_splice = true;
	CHECK_EQ(rule_build(ARGS_UDPFWD, "a:1", "b:2", &ro, &r, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--no-splice is for tcp:// rules only");
	CHECK(r == NULL);
}

/* kcp:// rules: profile defaults by role, option checks, portfwd's kcptcp letters */
static struct rule *build_kcp(enum args_dialect dia, const char *l, const char *t, const char *opts, char *err)
{
	struct rule_opts ro;
	struct global_opts g;
	struct args_result res;
	struct test_words ws;
	struct rule *r = NULL;

	rule_opts_default(&ro);
	global_opts_default(&g);
	test_words_split(&ws, opts);
	err[0] = '\0';
	if (args_parse(dia, ws.n, ws.w, &g, &ro, &res, err, ARGS_ERR_MAX))
		return NULL;
	if (rule_build(dia, l, t, &ro, &r, err, ARGS_ERR_MAX))
		return NULL;
	return r;
}

static void test_kcp_rules_take_the_profile_defaults_of_their_role(void)
{
	char err[ARGS_ERR_MAX];
	struct rule *r;

	r = build_kcp(ARGS_FERRY, "tcp://127.0.0.1:1", "kcp://h:2", "--kcp-profile kcptun", err);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ(r->o.kcp.sndwnd, 128);
		CHECK_EQ(r->o.kcp.rcvwnd, 512);
		CHECK_STR(r->o.kcp.crypt, "aes");
		CHECK_STR(r->o.kcp.key, "it's a secrect");
		CHECK_EQ(r->o.kcp.ds, 10);
		CHECK_EQ(r->o.kcp.ps, 3);
		CHECK_EQ(r->o.kcp.smuxver, 1);
		CHECK_EQ(r->o.kcp.mode, 2);	/* fast */
		CHECK_EQ(r->o.kcp.mtu, 1350);
		CHECK(!r->o.kcp.secure);
		rule_unref(r);
	}
	r = build_kcp(ARGS_FERRY, "kcp://0.0.0.0:1", "tcp://h:2", "--kcp-profile kcptun --datashard 0 --crypt none", err);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ(r->o.kcp.sndwnd, 1024);
		CHECK_EQ(r->o.kcp.rcvwnd, 1024);
		CHECK_EQ(r->o.kcp.ds, 0);
		CHECK_EQ(r->o.kcp.ps, 0);	/* FEC is off if either count is 0 */
		rule_unref(r);
	}
	r = build_kcp(ARGS_FERRY, "kcp://0.0.0.0:1", "tcp://h:2",
		      "-K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", err);
	CHECK(r != NULL);
	if (r) {
		CHECK(r->o.kcp.secure);
		CHECK_EQ(r->o.kcp.psk[31], 0x1f);
		CHECK_EQ(r->o.kcp.mode, 4);	/* fast3 */
		CHECK_EQ(r->o.kcp.smuxver, 2);
		rule_unref(r);
	}
}

/* --kcp-cc: rate control between ferries; kcp-go's behaviour for kcptun and for --nc */
static void test_kcp_congestion_control_defaults(void)
{
	static const struct {
		const char *opts;
		int cc;
	} cases[] = {
		{ "--insecure", KCP_CC_RATE },
		{ "--insecure --mode normal", KCP_CC_RATE },
		{ "--insecure --nc 1", KCP_CC_OFF },
		{ "--insecure --nc 0", KCP_CC_WINDOW },
		{ "--insecure --kcp-cc off", KCP_CC_OFF },
		{ "--insecure --kcp-cc window --nc 1", KCP_CC_WINDOW },	/* the explicit choice wins */
		{ "--kcp-profile kcptun", KCP_CC_OFF },
		{ "--kcp-profile kcptun --mode manual", KCP_CC_WINDOW },	/* kcptun's --nc default 0 */
		{ "--kcp-profile kcptun --mode manual --nc 1", KCP_CC_OFF },
		{ "--kcp-profile kcptun --kcp-cc rate", KCP_CC_RATE },
	};
	char err[ARGS_ERR_MAX];
	struct rule *r, *r2;

	for (size_t i = 0; i < N(cases); i++) {
		r = build_kcp(ARGS_FERRY, "tcp://127.0.0.1:1", "kcp://h:2", cases[i].opts, err);
		CHECK(r != NULL);
		if (!r) {
			fprintf(stderr, "  case %zu: %s\n", i, err);
			continue;
		}
		CHECK_EQ(r->o.kcp.cc, cases[i].cc);
		rule_unref(r);
	}
	r = build_kcp(ARGS_FERRY, "tcp://127.0.0.1:1", "kcp://h:2", "--kcp-cc pacing", err);
	CHECK(r == NULL);
	CHECK_STR(err, "bad value \"pacing\" for --kcp-cc: expected rate, window or off");
	/* a changed choice is a changed rule (reload restarts it) */
	r = build_kcp(ARGS_FERRY, "tcp://127.0.0.1:1", "kcp://h:2", "--insecure", err);
	r2 = build_kcp(ARGS_FERRY, "tcp://127.0.0.1:1", "kcp://h:2", "--insecure --kcp-cc off", err);
	CHECK(r && r2 && strcmp(r->canon, r2->canon));
	if (r)
		rule_unref(r);
	if (r2)
		rule_unref(r2);
}

static void test_kcp_options_are_checked(void)
{
	static const struct {
		const char *l, *t, *opts, *err;
	} cases[] = {
		{ "tcp://a:1", "tcp://b:2", "--mode fast", "KCP options (--psk, --mode, --key, ...) are for rules with a kcp://" },
		{ "tcp://a:1", "kcp://b:2", "--key x", "--key, --crypt, --nocomp, --datashard, --parityshard and --smuxver are kcptun's" },
		{ "tcp://a:1", "kcp://b:2", "--kcp-profile kcptun -K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		  "--psk/--secure select ferry's secure mode" },
		{ "tcp://a:1", "kcp://b:2", "--secure", "--secure needs a pre-shared key" },
		{ "tcp://a:1", "kcp://b:2", "-K 0011", "bad value \"...\" for --psk: expected 64 hex characters" },
		{ "tcp://a:1", "kcp://b:2", "--mode turbo", "bad value \"turbo\" for --mode: expected normal, fast, fast2, fast3 or manual" },
		{ "tcp://a:1", "kcp://b:2", "--mtu 1501", "bad value \"1501\" for --mtu" },
		{ "tcp://a:1", "kcp://b:2", "--kcp-profile kcptun --smuxver 3", "bad value \"3\" for --smuxver: expected 1 or 2" },
		{ "tcp://a:1", "kcp://b:2", "--kcp-profile kcptun --ds 200 --ps 100", "--datashard + --parityshard must be at most 255" },
		{ "kcp://a:1", "tcp://b:2", "-b", "--base-addr is for tcp:// to tcp:// rules only" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char err[ARGS_ERR_MAX];
		struct rule *r = build_kcp(ARGS_FERRY, cases[i].l, cases[i].t, cases[i].opts, err);

		CHECK(r == NULL);
		if (r)
			rule_unref(r);
		CHECK(strstr(err, cases[i].err) == err);
		if (strstr(err, cases[i].err) != err)
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
	}
}

static void test_kcptcp_dialects_map_portfwd_letters(void)
{
	char err[ARGS_ERR_MAX];
	struct rule *r;

	r = build_kcp(ARGS_KCPTCP_CLIENT, "127.0.0.1:2022", "[::1]:4000",
		      "-M 1200 -S 65536 -A 0 -I 20 -X 3 -C 0 -w 64 -W 256 -N -K "
		      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", err);
	CHECK(r != NULL);
	if (!r) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_EQ(r->listen.scheme, EP_TCP);
	CHECK_EQ(r->target.scheme, EP_KCP);
	CHECK_EQ(r->target.port, 4000);
	CHECK_EQ(r->o.kcp.mtu, 1200);
	CHECK_EQ(r->o.kcp.sockbuf, 65536);
	CHECK_EQ(r->o.kcp.nodelay, 0);
	CHECK_EQ(r->o.kcp.interval, 20);
	CHECK_EQ(r->o.kcp.resend, 3);
	CHECK_EQ(r->o.kcp.nc, 0);
	CHECK_EQ(r->o.kcp.sndwnd, 64);
	CHECK_EQ(r->o.kcp.rcvwnd, 256);
	CHECK(r->o.kcp.secure);
	rule_unref(r);
	r = build_kcp(ARGS_KCPTCP_SERVER, "0.0.0.0:4000", "127.0.0.1:22", "-q", err);
	CHECK(r == NULL);
	CHECK_STR(err, "unknown option \"-q\" in \"-q\" (see --help)");
	r = build_kcp(ARGS_KCPTCP_SERVER, "0.0.0.0:4000", "127.0.0.1:22", "-r -R -6", err);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ(r->listen.scheme, EP_KCP);
		CHECK_EQ(r->target.scheme, EP_TCP);
		CHECK(!r->o.kcp.secure);
		rule_unref(r);
	}
}

/* ---- single-client rules and the ICMP tunnel ---- */

static struct rule *build_line(const char *l, const char *t, const char *opts, char *err)
{
	return build_kcp(ARGS_FERRY, l, t, opts, err);	/* (any rule: args_parse then rule_build) */
}

static void test_single_client_rules_take_pkthere_defaults(void)
{
	static const struct {
		const char *l, *t, *opts;
		uint32_t idle_ms, handshake_ms;
		int exit;
	} cases[] = {
		{ "udp://0.0.0.0:5000", "icmp://10.0.0.2:7000", "", 10000, 10000, 0 },
		{ "icmp://0.0.0.0:7000", "udp://127.0.0.1:53", "", 10000, 10000, 0 },
		{ "udp://0.0.0.0:5000", "udp://h:53", "--single-client", 10000, 10000, 0 },
		{ "udp://0.0.0.0:5000", "icmp://h", "--idle-timeout 2.5", 2500, 2500, 0 },
		{ "udp://0.0.0.0:5000", "icmp://h", "--idle-timeout 0", 0, 10000, 0 },
		{ "udp://0.0.0.0:5000", "icmp://h", "--idle-timeout 4000", 4000000, 3600000, 0 },
		{ "udp://0.0.0.0:5000", "icmp://h", "--idle-timeout 60 --icmp-handshake-timeout 3", 60000, 3000, 0 },
		{ "icmp://[::]:0", "udp://[::1]:53", "--on-timeout exit", 10000, 10000, 1 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char err[ARGS_ERR_MAX];
		struct rule *r = build_line(cases[i].l, cases[i].t, cases[i].opts, err);

		CHECK(r != NULL);
		if (!r) {
			fprintf(stderr, "  case %zu: %s\n", i, err);
			continue;
		}
		CHECK(rule_single(r));
		CHECK(!rule_single(r) || r->o.single.on);
		CHECK_EQ(r->o.idle_timeout_ms, cases[i].idle_ms);
		CHECK_EQ(r->o.single.handshake_timeout_ms, cases[i].handshake_ms);
		CHECK_EQ(r->o.single.on_timeout_exit, cases[i].exit);
		rule_unref(r);
	}
}

static void test_rules_without_icmp_or_single_client_stay_multi_client(void)
{
	char err[ARGS_ERR_MAX];
	struct rule *r = build_line("udp://0.0.0.0:53", "udp://h:53", "--idle-timeout 3", err);

	CHECK(r != NULL);
	if (r) {
		CHECK(!rule_single(r));
		CHECK_EQ(r->o.idle_timeout_ms, 3000);
		CHECK_EQ(r->o.single.handshake_timeout_ms, 0);
		rule_unref(r);
	}
	r = build_line("tcp://0.0.0.0:80", "tcp://h:80", "", err);
	CHECK(r != NULL);
	if (r) {
		CHECK(!rule_single(r));
		CHECK_EQ(r->o.idle_timeout_ms, 0);
		rule_unref(r);
	}
}

static void test_icmp_pairs_and_single_client_options_are_checked(void)
{
	static const struct {
		const char *l, *t, *opts, *err;
	} cases[] = {
		{ "tcp://a:1", "icmp://b:2", "", "cannot forward tcp:// to icmp:// in \"tcp://a:1 icmp://b:2\"" },
		{ "icmp://a:1", "tcp://b:2", "", "cannot forward icmp:// to tcp://" },
		{ "icmp://a:1", "icmp://b:2", "", "cannot forward icmp:// to icmp://" },
		{ "icmp://a:1", "kcp://b:2", "", "cannot forward icmp:// to kcp://" },
		{ "kcp://a:1", "icmp://b:2", "", "cannot forward kcp:// to icmp://" },
		{ "fd://game", "icmp://b:2", "", "cannot forward fd:// to icmp://" },
		{ "udp://a:1", "icmp://b:2", "", NULL },
		{ "tcp://a:1", "tcp://b:2", "--single-client", "--single-client is for udp:// to udp:// rules" },
		{ "fd://game", "udp://b:2", "--single-client", "--single-client is for udp:// to udp:// rules" },
		{ "tcp://a:1", "kcp://b:2", "--single-client --insecure", "--single-client is for udp:// to udp://" },
		{ "udp://a:1", "udp://b:2", "--on-timeout exit", "--on-timeout, --icmp-sync-pps and --icmp-handshake-timeout are "
		  "for single-client rules (--single-client, or an icmp:// endpoint)" },
		{ "udp://a:1", "udp://b:2", "--icmp-sync-pps 3", "--on-timeout, --icmp-sync-pps" },
		{ "tcp://a:1", "tcp://b:2", "--icmp-handshake-timeout 3", "--on-timeout, --icmp-sync-pps" },
		{ "icmp://a:1", "udp://b:2", "--icmp-sync-pps 3", "--icmp-sync-pps is for rules with an icmp:// target" },
		{ "udp://a:1", "udp://b:2", "--single-client --icmp-sync-pps 3", "--icmp-sync-pps is for rules with an icmp:// target" },
		{ "udp://a:1", "udp://b:2", "--single-client --icmp-handshake-timeout 3",
		  "--icmp-handshake-timeout is for rules with an icmp:// endpoint" },
		{ "udp://a:1", "icmp://b:2", "--tproxy", "--tproxy is not for single-client rules" },
		{ "icmp://a:1", "udp://b:2", "--transparent", "--transparent is not for single-client rules" },
		{ "udp://a:1", "udp://b:2", "--single-client -b", "--base-addr is for tcp:// rules only" },
		{ "icmp://a:1", "udp://b:2", "--no-splice", "--no-splice is not for single-client rules" },
		{ "udp://a:1", "icmp://b:2", "-t 5", "--udp-timeout, --max-sessions and --hash-size are for multi-client" },
		{ "udp://a:1", "udp://b:2", "--single-client --max-sessions 2", "--udp-timeout, --max-sessions" },
		{ "udp://a:1", "icmp://b:2", "--psk-file /nonexistent/x", "--psk-file /nonexistent/x: " },
		{ "udp://a:1", "icmp://b:2", "--mode fast", "KCP options (--psk, --mode, --key, ...) are for rules with a kcp://" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char err[ARGS_ERR_MAX];
		struct rule *r = build_line(cases[i].l, cases[i].t, cases[i].opts, err);

		if (!cases[i].err) {
			CHECK(r != NULL);
			if (r)
				rule_unref(r);
			continue;
		}
		CHECK(r == NULL);
		if (r)
			rule_unref(r);
		CHECK(strstr(err, cases[i].err) == err);
		if (strstr(err, cases[i].err) != err)
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
	}
}

/* A changed single-client option or reply ID is another rule: SIGHUP restarts it. */
static void test_single_client_canon_changes_with_its_options(void)
{
	static const struct {
		const char *l, *t, *opts;
	} cases[] = {
		{ "udp://0.0.0.0:5000", "icmp://h:7", "" },
		{ "udp://0.0.0.0:5000", "icmp://h:7:8", "" },
		{ "udp://0.0.0.0:5000", "icmp://h:8", "" },
		{ "udp://0.0.0.0:5000", "icmp://h:7", "--on-timeout exit" },
		{ "udp://0.0.0.0:5000", "icmp://h:7", "--icmp-sync-pps 1" },
		{ "udp://0.0.0.0:5000", "icmp://h:7", "--icmp-handshake-timeout 9" },
		{ "udp://0.0.0.0:5000", "icmp://h:7", "--idle-timeout 11" },
		{ "udp://0.0.0.0:5000", "icmp://h:7", "--max-payload 1400" },
		{ "udp://0.0.0.0:5000", "udp://h:7", "" },
		{ "udp://0.0.0.0:5000", "udp://h:7", "--single-client" },
	};
	char canon[N(cases)][1024];

	for (size_t i = 0; i < N(cases); i++) {
		char err[ARGS_ERR_MAX];
		struct rule *r = build_line(cases[i].l, cases[i].t, cases[i].opts, err);

		canon[i][0] = '\0';
		CHECK(r != NULL);
		if (!r)
			continue;
		snprintf(canon[i], sizeof(canon[i]), "%s", r->canon);
		rule_unref(r);
		for (size_t j = 0; j < i; j++) {
			CHECK(strcmp(canon[i], canon[j]) != 0);
			if (!strcmp(canon[i], canon[j]))
				fprintf(stderr, "  cases %zu and %zu: same canon \"%s\"\n", j, i, canon[i]);
		}
	}
	/* the default idle timeout written out is the same rule */
	{
		char err[ARGS_ERR_MAX];
		struct rule *a = build_line("udp://0.0.0.0:5000", "icmp://h:7", "", err);
		struct rule *b = build_line("udp://0.0.0.0:5000", "icmp://h:7", "--idle-timeout 10 --on-timeout drop", err);

		CHECK(a && b);
		if (a && b)
			CHECK_STR(a->canon, b->canon);
		if (a)
			rule_unref(a);
		if (b)
			rule_unref(b);
	}
}

/* The largest datagram depends on the families (known after DNS): checked by rule_resolve. */
static void test_rule_resolve_checks_max_datagram_of_single_client_rules(void)
{
	static const struct {
		const char *l, *t, *opts;
		int rc;
		uint32_t limit;
	} cases[] = {
		{ "udp://127.0.0.1:5000", "icmp://127.0.0.1:7", "--max-payload 65496", 0, 65496 },
		{ "udp://127.0.0.1:5000", "icmp://127.0.0.1:7", "--max-payload 65497", -EINVAL, 65496 },
		{ "udp://[::1]:5000", "icmp://[::1]:7", "--max-payload 65516", 0, 65516 },
		{ "udp://[::1]:5000", "icmp://[::1]:7", "--max-payload 65517", -EINVAL, 65516 },
		{ "udp://[::1]:5000", "icmp://127.0.0.1:7", "--max-payload 65497", -EINVAL, 65496 },
		{ "udp://127.0.0.1:5000", "udp://127.0.0.1:53", "--single-client --max-payload 65508", -EINVAL, 65507 },
		{ "udp://[::1]:5000", "udp://[::1]:53", "--single-client --max-payload 65527", 0, 65527 },
		{ "icmp://127.0.0.1", "udp://127.0.0.1:53", "", 0, 65496 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		char err[ARGS_ERR_MAX];
		struct rule *r = build_line(cases[i].l, cases[i].t, cases[i].opts, err);

		CHECK(r != NULL);
		if (!r)
			continue;
		err[0] = '\0';
		CHECK_EQ(rule_resolve(r, err, sizeof(err)), cases[i].rc);
		CHECK_EQ(rule_single_max_datagram(r), cases[i].limit);
		if (cases[i].rc)
			CHECK(strstr(err, "is more than the largest datagram this rule can carry") != NULL);
		rule_unref(r);
	}
}

static void test_config_parse_mixes_tcp_and_tunnel_rules(void)
{
	const char *text =
		"tcp://0.0.0.0:80 tcp://h:8080\n"
		"udp://0.0.0.0:5000 icmp://10.0.0.2:7000:7001 --icmp-sync-pps 5\n"
		"icmp://0.0.0.0:7000 udp://127.0.0.1:53 --idle-timeout 30 --on-timeout exit\n"
		"udp://0.0.0.0:5001 udp://h:53 --single-client\n";
	struct rule_opts d;
	struct rule **rules;
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&d);
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(n, 4);
	if (n == 4) {
		CHECK(!rule_single(rules[0]));
		CHECK(rule_single(rules[1]));
		CHECK_STR(rules[1]->desc, "udp://0.0.0.0:5000 -> icmp://10.0.0.2:7000:7001");
		CHECK_EQ(rules[1]->target.reply_id, 7001);
		CHECK_EQ(rules[1]->o.single.sync_pps, 5);
		CHECK(rule_single(rules[2]));
		CHECK_EQ(rules[2]->o.idle_timeout_ms, 30000);
		CHECK(rules[2]->o.single.on_timeout_exit);
		CHECK(rule_single(rules[3]));
	}
	rules_free(rules, n);
	CHECK_EQ(parse_cfg("tcp://a:1 tcp://b:2\nicmp://a:1 tcp://b:2\n", &d, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "f.conf:2: cannot forward icmp:// to tcp://") == err);
}

static void test_config_parse_skips_comments_and_blank_lines(void)
{
	const char *text =
		"# ferry rules\n"
		"\n"
		"   \t\n"
		"  # indented comment\n"
		"tcp://0.0.0.0:80 tcp://h:8080   # web\n"
		"\ttcp://0.0.0.0:443\ttcp://h:8443\r\n"
		"tcp://[::]:22 tcp://h:22 #a word starting with # ends the line";
	struct rule_opts d;
	struct rule **rules;
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&d);
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_STR(rules[0]->desc, "tcp://0.0.0.0:80 -> tcp://h:8080");
		CHECK_STR(rules[1]->desc, "tcp://0.0.0.0:443 -> tcp://h:8443");
		CHECK_STR(rules[2]->desc, "tcp://[::]:22 -> tcp://h:22");
	}
	rules_free(rules, n);
}

static void test_config_parse_line_options_override_defaults_for_that_line(void)
{
	const char *text =
		"tcp://0.0.0.0:1 tcp://h:1 --max-conns 5 --idle-timeout 2.5\n"
		"tcp://0.0.0.0:2 tcp://h:2\n"
		"--no-splice tcp://0.0.0.0:3 -r tcp://h:3\n";
	struct rule_opts d;
	struct rule **rules;
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&d);
	d.max_conns = 100;
	d.sock.reuseport = true;
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_EQ(rules[0]->o.max_conns, 5);
		CHECK_EQ(rules[0]->o.idle_timeout_ms, 2500);
		CHECK_EQ(rules[0]->o.sock.reuseport, true);
		CHECK_EQ(rules[1]->o.max_conns, 100);
		CHECK_EQ(rules[1]->o.idle_timeout_ms, 0);
		CHECK_EQ(rules[1]->o.no_splice, false);
		CHECK_EQ(rules[2]->o.no_splice, true);
		CHECK_EQ(rules[2]->o.sock.reuseaddr, true);
		CHECK_EQ(rules[2]->o.max_conns, 100);
	}
	CHECK_EQ(d.max_conns, 100);
	CHECK_EQ(d.no_splice, false);
	rules_free(rules, n);
}

static void test_config_parse_errors_name_file_and_line(void)
{
	static const struct {
		const char *text;
		const char *err;	/* the whole message */
	} cases[] = {
		{ "tcp://a:1 tcp://b:2\n# x\ntcp://a:0 tcp://b:2\n",
		  "f.conf:3: bad port \"0\" in \"tcp://a:0\": expected a number from 1 to 65535" },
		{ "tcp://a:1\n", "f.conf:1: missing target: a rule is LISTEN TARGET [options]" },
		{ "\n--max-conns 5\n", "f.conf:2: missing listen and target endpoints: a rule is LISTEN TARGET [options]" },
		{ "tcp://a:1 tcp://b:2 tcp://c:3", "f.conf:1: unexpected argument \"tcp://c:3\": a rule is LISTEN TARGET" },
		{ "tcp://a:1 tcp://b:2 -d",
		  "f.conf:1: option --daemon is not allowed in a rule line (give it on the command line)" },
		{ "tcp://a:1 tcp://b:2 --max-conns", "f.conf:1: option \"--max-conns\" needs a value" },
		{ "tcp://a:1 tcp://b:2 --max-conns x",
		  "f.conf:1: bad value \"x\" for --max-conns: expected a number from 1 to 10000000" },
		{ "tcp://a:1#x tcp://b:2",
		  "f.conf:1: bad port \"1#x\" in \"tcp://a:1#x\": expected a number from 1 to 65535" },
		{ "tcp://a:1 tcp://b:2\ntcp://c:1 tcp://b:2\ntcp://a:01 tcp://d:4\n",
		  "f.conf:3: tcp://a:1 is already the listen address of rule 1" },
		{ "", "f.conf: no rules (one per line: LISTEN TARGET [options])" },
		{ "\n\n# only comments\n   \n", "f.conf: no rules (one per line: LISTEN TARGET [options])" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct rule_opts d;
		struct rule **rules;
		size_t n;
		char err[ARGS_ERR_MAX] = "";

		rule_opts_default(&d);
		CHECK_EQ(parse_cfg(cases[i].text, &d, &rules, &n, err, sizeof(err)), -EINVAL);
		CHECK_STR(err, cases[i].err);
		CHECK(rules == NULL);
		CHECK_EQ(n, 0);
	}
}

static void test_config_parse_allows_64_words_and_rejects_65(void)
{
	char text[512];
	size_t len;
	struct rule_opts d;
	struct rule **rules;
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&d);
	len = (size_t)snprintf(text, sizeof(text), "tcp://a:1 tcp://b:2");
	for (int i = 0; i < 62; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, " -r");
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 1);
	rules_free(rules, n);

	snprintf(text + len, sizeof(text) - len, " -R");
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "f.conf:1: too many words (at most 64)");
}

static void test_config_parse_allows_the_same_port_for_other_protocol_or_host(void)
{
	const char *text =
		"tcp://0.0.0.0:53 tcp://h:53\n"
		"udp://0.0.0.0:53 udp://h:53\n"
		"tcp://127.0.0.1:53 tcp://h:53\n";
	struct rule_opts d;
	struct rule **rules;
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&d);
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 3);
	rules_free(rules, n);
}

static void test_config_parse_counts_rules_up_to_4096(void)
{
	char *text = malloc(4097 * 40);
	size_t len = 0, end4096 = 0;
	struct rule_opts d;
	struct rule **rules;
	size_t n;
	char err[ARGS_ERR_MAX] = "";

	rule_opts_default(&d);
	for (int i = 1; i <= 4097; i++) {
		len += (size_t)sprintf(text + len, "tcp://a:%d tcp://b:2\n", i);
		if (i == 4096)
			end4096 = len;
	}
	text[end4096] = '\0';
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 4096);
	if (n == 4096) {
		CHECK_EQ(rules[0]->listen.port, 1);
		CHECK_EQ(rules[4095]->listen.port, 4096);
	}
	rules_free(rules, n);

	text[end4096] = 't';
	CHECK_EQ(parse_cfg(text, &d, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "f.conf:4097: too many rules (at most 4096)");
	free(text);
}

static void test_config_load_reads_a_file_and_rejects_nul_bytes(void)
{
	char dir[] = "/tmp/ferry-test-args-XXXXXX", path[64], err[ARGS_ERR_MAX] = "";
	struct rule_opts d;
	struct rule **rules = NULL;
	size_t n = 0;
	FILE *f;

	rule_opts_default(&d);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/r.conf", dir);

	f = fopen(path, "w");
	fputs("tcp://a:1 tcp://b:2\ntcp://a:3 tcp://b:4 --max-conns 2\n", f);
	fclose(f);
	CHECK_EQ(config_load(path, &d, &rules, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 2);
	rules_free(rules, n);

	f = fopen(path, "w");
	fwrite("tcp://a:1 tcp://b:2\n\0x\n", 1, 23, f);
	fclose(f);
	CHECK_EQ(config_load(path, &d, &rules, &n, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "contains a NUL byte") != NULL);
	CHECK(strstr(err, path) != NULL);

	unlink(path);
	CHECK_EQ(config_load(path, &d, &rules, &n, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "cannot open config \"") == err);
	CHECK(strstr(err, path) != NULL);
	rmdir(dir);
}

int main(void)
{
	RUN(test_args_parse_ferry_dialect);
	RUN(test_args_parse_tcpfwd_dialect);
	RUN(test_args_parse_udpfwd_dialect);
	RUN(test_args_parse_rejects_global_options_in_a_rule_line);
	RUN(test_parse_seconds_ms_reads_decimal_seconds);
	RUN(test_parse_uint_checks_digits_and_range);
	RUN(test_rule_build_parses_endpoints_and_copies_options);
	RUN(test_rule_build_gives_equal_rules_equal_canon);
	RUN(test_rule_build_gives_different_canon_when_anything_differs);
	RUN(test_rule_build_reports_the_bad_endpoint);
	RUN(test_rule_build_rejects_tcp_only_options_on_udp_rules);
	RUN(test_kcp_rules_take_the_profile_defaults_of_their_role);
	RUN(test_kcp_congestion_control_defaults);
	RUN(test_kcp_options_are_checked);
	RUN(test_kcptcp_dialects_map_portfwd_letters);
	RUN(test_single_client_rules_take_pkthere_defaults);
	RUN(test_rules_without_icmp_or_single_client_stay_multi_client);
	RUN(test_icmp_pairs_and_single_client_options_are_checked);
	RUN(test_single_client_canon_changes_with_its_options);
	RUN(test_rule_resolve_checks_max_datagram_of_single_client_rules);
	RUN(test_config_parse_mixes_tcp_and_tunnel_rules);
	RUN(test_config_parse_skips_comments_and_blank_lines);
	RUN(test_config_parse_line_options_override_defaults_for_that_line);
	RUN(test_config_parse_errors_name_file_and_line);
	RUN(test_config_parse_allows_64_words_and_rejects_65);
	RUN(test_config_parse_allows_the_same_port_for_other_protocol_or_host);
	RUN(test_config_parse_counts_rules_up_to_4096);
	RUN(test_config_load_reads_a_file_and_rejects_nul_bytes);
	TEST_EXIT();
}
