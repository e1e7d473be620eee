/*
 * cmd/kcptun_args and cmd/kcptun_json: kcptun's own command line and -c JSON config turned
 * into one kcptun-profile rule. Good lines are checked against the whole rule (both endpoints
 * and every KCP option in one text, so an option leaking into a neighbour shows up), bad ones
 * against the exact exit-2 message. The JSON parser is checked on its own as well.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/kcptun_args.h"
#include "cmd/kcptun_json.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The rule as one line: endpoints, then every KCP option the front-end can touch. */
static void describe_rule(const struct rule *r, char *out, size_t len)
{
	const struct kcp_opts *k = &r->o.kcp;

	snprintf(out, len,
		 "%s | p=%d key=%s crypt=%s mode=%d mtu=%u wnd=%u/%u fec=%d/%d nocomp=%d ack=%d nd=%d iv=%d rs=%d nc=%d "
		 "sockbuf=%u smux=%d/%u/%u ka=%u",
		 r->desc, (int)k->profile, k->key, k->crypt, k->mode, k->mtu, k->sndwnd, k->rcvwnd, k->ds, k->ps,
		 k->nocomp, k->acknodelay, k->nodelay, k->interval, k->resend, k->nc, k->sockbuf, k->smuxver,
		 k->smuxbuf, k->streambuf, k->keepalive_s);
}

/* argv words (and a JSON text, or NULL) -> rule, as main.c does; NULL with err on failure. */
static struct rule *kt_build(enum args_dialect dia, const char *line, const char *json, bool v6, struct global_opts *g,
			     char *err)
{
	struct kcptun_cli kc;
	struct rule_opts ro;
	struct test_words ws;
	struct rule *r = NULL;

	global_opts_default(g);
	rule_opts_default(&ro);
	kcptun_cli_init(&kc, dia, &ro);
	test_words_split(&ws, line);
	err[0] = '\0';
	if (kcptun_args_parse(&kc, ws.n, ws.w, g, &ro, err, ARGS_ERR_MAX))
		return NULL;
	if (json && kcptun_config_parse(&kc, "t.json", json, strlen(json), &ro, err, ARGS_ERR_MAX))
		return NULL;
	if (kcptun_rule_build(&kc, v6, &ro, &r, err, ARGS_ERR_MAX))
		return NULL;
	return r;
}

#define C ARGS_KCPTUN_CLIENT
#define S ARGS_KCPTUN_SERVER
/* kcptun's defaults as ferry fills them in: client and server */
#define DEF_C "p=1 key=it's a secrect crypt=aes mode=2 mtu=1350 wnd=128/512 fec=10/3 nocomp=0 ack=0 nd=-1 iv=-1 rs=-1 " \
	      "nc=-1 sockbuf=4194304 smux=1/8388608/4194304 ka=10"
#define DEF_S "p=1 key=it's a secrect crypt=aes mode=2 mtu=1350 wnd=1024/1024 fec=10/3 nocomp=0 ack=0 nd=-1 iv=-1 " \
	      "rs=-1 nc=-1 sockbuf=4194304 smux=1/8388608/4194304 ka=10"

struct kt_case {
	enum args_dialect dia;
	const char *line;
	const char *json;
	const char *want;	/* describe_rule(), or the whole error message */
};

static void kt_check(const struct kt_case *c, size_t n, bool ok)
{
	for (size_t i = 0; i < n; i++) {
		char err[ARGS_ERR_MAX], got[1024];
		struct global_opts g;
		struct rule *r = kt_build(c[i].dia, c[i].line, c[i].json, true, &g, err);

		if (ok) {
			CHECK(r != NULL);
			if (!r) {
				fprintf(stderr, "  case %zu \"%s\": %s\n", i, c[i].line, err);
				continue;
			}
			describe_rule(r, got, sizeof(got));
			CHECK_STR(got, c[i].want);
			if (strcmp(got, c[i].want))
				fprintf(stderr, "  case %zu \"%s\"\n", i, c[i].line);
			rule_unref(r);
		} else {
			CHECK(r == NULL);
			if (r)
				rule_unref(r);
			CHECK_STR(err, c[i].want);
			if (strcmp(err, c[i].want))
				fprintf(stderr, "  case %zu \"%s\"\n", i, c[i].line);
		}
	}
}

static void test_kcptun_command_lines_build_one_rule(void)
{
	static const struct kt_case cases[] = {
		{ C, "-l 127.0.0.1:2000 -r 10.0.0.1:29900", NULL, "tcp://127.0.0.1:2000 -> kcp://10.0.0.1:29900 | " DEF_C },
		/* ":PORT" (and the default ":12948") listen on every address, dual-stack */
		{ C, "-r 10.0.0.1:29900", NULL, "tcp://[::]:12948 -> kcp://10.0.0.1:29900 | " DEF_C },
		{ C, "--localaddr=:1 --remoteaddr=[fd00::1]:2", NULL, "tcp://[::]:1 -> kcp://[fd00::1]:2 | " DEF_C },
		{ S, "", NULL, "kcp://[::]:29900 -> tcp://127.0.0.1:12948 | " DEF_S },
		{ S, "--listen 10.0.0.1:4000 --target=:22", NULL, "kcp://10.0.0.1:4000 -> tcp://localhost:22 | " DEF_S },
		/* single and double dashes, -name=value, Go's boolean spellings */
		{ C, "-r h:1 -key=k --crypt none -mode=fast3 -nocomp -ds 0 --ps=0 -smuxver 2 --acknodelay=true",
		  NULL, "tcp://[::]:12948 -> kcp://h:1 | p=1 key=k crypt=none mode=4 mtu=1350 wnd=128/512 fec=0/0 "
		  "nocomp=1 ack=1 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=4194304 smux=2/8388608/4194304 ka=10" },
		{ C, "-r h:1 -nocomp -nocomp=false --acknodelay=1 --acknodelay=F", NULL, "tcp://[::]:12948 -> kcp://h:1 | " DEF_C },
		{ S, "--mtu 1400 --sndwnd 2048 --rcvwnd 4096 --datashard 20 --parityshard 5 --sockbuf 16777217 "
		  "--smuxbuf 16777217 --streambuf 2097152 --keepalive 20 --key=x=y", NULL,
		  "kcp://[::]:29900 -> tcp://127.0.0.1:12948 | p=1 key=x=y crypt=aes mode=2 mtu=1400 wnd=2048/4096 "
		  "fec=20/5 nocomp=0 ack=0 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=16777217 smux=1/16777217/2097152 ka=20" },
		/* manual mode keeps the KCP tuning; a preset overrides it, as in kcptun */
		{ C, "-r h:1 --mode manual --nodelay 1 --interval 20 --resend 2 --nc 1", NULL,
		  "tcp://[::]:12948 -> kcp://h:1 | p=1 key=it's a secrect crypt=aes mode=5 mtu=1350 wnd=128/512 fec=10/3 "
		  "nocomp=0 ack=0 nd=1 iv=20 rs=2 nc=1 sockbuf=4194304 smux=1/8388608/4194304 ka=10" },
		{ C, "-r h:1 --mode fast2 --nodelay 0 --interval 99 --resend 5 --nc 0", NULL,
		  "tcp://[::]:12948 -> kcp://h:1 | p=1 key=it's a secrect crypt=aes mode=3 mtu=1350 wnd=128/512 fec=10/3 "
		  "nocomp=0 ack=0 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=4194304 smux=1/8388608/4194304 ka=10" },
		/* accepted without effect; the unsupported ones switched off */
		{ C, "-r h:1 --dscp 46 --conn 2 --autoexpire 60 --scavengettl 600 --quiet --snmpperiod 60 --tcp=false "
		  "--snmplog= -pprof=0 --", NULL, "tcp://[::]:12948 -> kcp://h:1 | " DEF_C },
		{ S, "--dscp 46 --quiet --log=", NULL, "kcp://[::]:29900 -> tcp://127.0.0.1:12948 | " DEF_S },
	};

	kt_check(cases, N(cases), true);
}

static void test_kcptun_bad_command_lines_name_the_word(void)
{
	static const struct kt_case cases[] = {
		{ C, "", NULL, "missing -r/--remoteaddr SERVER:PORT (kcptun's default \"vps:29900\" is only a placeholder)" },
		{ C, "-r h:1 --tcp", NULL, "--tcp (kcptun's TCP emulation) is not supported by ferry: ferry sends KCP over UDP only" },
		{ S, "-tcp=true", NULL, "-tcp (kcptun's TCP emulation) is not supported by ferry: ferry sends KCP over UDP only" },
		{ S, "--snmplog /tmp/snmp.log", NULL,
		  "--snmplog is not supported by ferry (ferry --stats-interval S prints counters as JSON lines)" },
		{ S, "--pprof", NULL, "--pprof (Go's profiler) is not supported by ferry" },
		{ C, "-r h:1 --foo", NULL, "unknown option \"--foo\" for kcptun-client (see kcptun-client -h)" },
		{ C, "-r h:1 -x=1", NULL, "unknown option \"-x\" for kcptun-client (see kcptun-client -h)" },
		{ S, "--conn 2", NULL, "unknown option \"--conn\" for kcptun-server (see kcptun-server -h)" },
		{ C, "-r h:1 -t h:2", NULL, "unknown option \"-t\" for kcptun-client (see kcptun-client -h)" },
		{ S, "--localaddr :1", NULL, "unknown option \"--localaddr\" for kcptun-server (see kcptun-server -h)" },
		{ C, "-r h:1 extra", NULL, "unexpected argument \"extra\": kcptun-client takes options only (-l LOCAL -r SERVER ...)" },
		{ S, "-- x", NULL, "unexpected argument \"x\": kcptun-server takes options only (-l LISTEN -t TARGET ...)" },
		{ S, "-- -mtu 1400", NULL,
		  "unexpected argument \"-mtu\": kcptun-server takes options only (-l LISTEN -t TARGET ...)" },
		{ S, "-t=", NULL, "bad endpoint \"\": expected host:port" },
		{ C, "-r", NULL, "option -r needs a value" },
		{ C, "-r h:1 -nocomp=maybe", NULL, "bad value \"maybe\" for -nocomp: expected true or false" },
		{ C, "-r h:1 -mtu 0x10", NULL, "bad value \"0x10\" for -mtu: expected a decimal integer" },
		{ C, "-r h:1 -mtu 01200", NULL, "bad value \"01200\" for -mtu: expected a decimal integer" },
		{ C, "-r h:1 --snmpperiod x", NULL, "bad value \"x\" for --snmpperiod: expected a decimal integer" },
		{ C, "-r h:1 ---mtu 1", NULL, "bad option syntax \"---mtu\"" },
		{ C, "-r h:1 -=1", NULL, "bad option syntax \"-=1\"" },
		{ C, "-r h:1 --mtu 2000", NULL, "bad value \"2000\" for --mtu: expected bytes from 300 to 1500" },
		{ C, "-r h:1 --mtu -1", NULL, "bad value \"-1\" for --mtu: expected bytes from 300 to 1500" },
		{ C, "-r h:1 --mode turbo", NULL, "bad value \"turbo\" for --mode: expected normal, fast, fast2, fast3 or manual" },
		{ C, "-r h:1 --smuxver 3", NULL, "bad value \"3\" for --smuxver: expected 1 or 2" },
		{ C, "-r h:1 --ds 200 --ps 100", NULL, "--datashard + --parityshard must be at most 255" },
		{ S, "-t /run/ssh.sock", NULL, "target \"/run/ssh.sock\": unix socket targets are not supported by ferry; give HOST:PORT" },
		{ C, "-l 1.2.3.4 -r h:1", NULL, "bad endpoint \"1.2.3.4\": expected host:port" },
		{ C, "-r h:0", NULL, "bad port \"0\" in \"h:0\": expected a number from 1 to 65535" },
	};

	kt_check(cases, N(cases), false);
}

static void test_kcptun_help_and_version(void)
{
	static const struct {
		enum args_dialect dia;
		const char *line;
		bool help, version;
	} cases[] = {
		{ C, "-h", true, false }, { C, "--help", true, false }, { S, "help", true, false },
		{ S, "h", true, false }, { C, "-v", false, true }, { S, "--version", false, true },
		{ C, "-help=false -v=true", false, true },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct kcptun_cli kc;
		struct global_opts g;
		struct rule_opts ro;
		struct test_words ws;
		char err[ARGS_ERR_MAX] = "";

		global_opts_default(&g);
		rule_opts_default(&ro);
		kcptun_cli_init(&kc, cases[i].dia, &ro);
		test_words_split(&ws, cases[i].line);
		CHECK_EQ(kcptun_args_parse(&kc, ws.n, ws.w, &g, &ro, err, sizeof(err)), 0);
		CHECK_EQ(g.help, cases[i].help);
		CHECK_EQ(g.version, cases[i].version);
	}
}

/* urfave/cli's EnvVar: $KCPTUN_KEY replaces the default, an explicit --key (or "key") wins */
static void test_kcptun_key_env_replaces_only_the_default(void)
{
	char err[ARGS_ERR_MAX];
	struct global_opts g;
	struct rule *r;

	setenv("KCPTUN_KEY", "from-env", 1);
	r = kt_build(C, "-r h:1", NULL, true, &g, err);
	CHECK(r && !strcmp(r->o.kcp.key, "from-env"));
	if (r)
		rule_unref(r);
	r = kt_build(C, "-r h:1 --key given", NULL, true, &g, err);
	CHECK(r && !strcmp(r->o.kcp.key, "given"));
	if (r)
		rule_unref(r);
	r = kt_build(S, "", "{\"key\": \"from-json\"}", true, &g, err);
	CHECK(r && !strcmp(r->o.kcp.key, "from-json"));
	if (r)
		rule_unref(r);
	unsetenv("KCPTUN_KEY");
}

/* without IPv6 on the host, ":PORT" listens on 0.0.0.0 */
static void test_kcptun_any_address_without_ipv6(void)
{
	char err[ARGS_ERR_MAX];
	struct global_opts g;
	struct rule *r = kt_build(S, "-l :4000", NULL, false, &g, err);

	CHECK(r != NULL);
	if (r) {
		CHECK_STR(r->desc, "kcp://0.0.0.0:4000 -> tcp://127.0.0.1:12948");
		rule_unref(r);
	}
}

/* Debian's kcptun example files, verbatim apart from the addresses */
static const char local_json[] =
	"{\n\t\"localaddr\": \":2000\",\n\t\"remoteaddr\": \"11.22.33.44:2000\",\n\t\"key\": \"PASSWORD\",\n"
	"\t\"crypt\": \"aes-128\",\n\t\"mode\": \"fast3\",\n\t\"mtu\": 1400,\n\t\"sndwnd\": 128,\n\t\"rcvwnd\": 1024,\n"
	"\t\"datashard\": 10,\n\t\"parityshard\": 3,\n\t\"dscp\": 46,\n\t\"nocomp\": true,\n\t\"acknodelay\": false,\n"
	"\t\"nodelay\": 1,\n\t\"interval\": 40,\n\t\"resend\": 2,\n\t\"nc\": 1,\n\t\"sockbuf\": 16777217,\n"
	"\t\"smuxver\": 1,\n\t\"smuxbuf\": 16777217,\n\t\"streambuf\": 2097152,\n\t\"keepalive\": 10,\n"
	"\t\"autoexpire\": 1800,\n\t\"quiet\": false,\n\t\"tcp\": false\n}\n";
static const char server_json[] =
	"{\n        \"listen\": \":2000\",\n        \"target\": \"127.0.0.1:9999\",\n        \"key\": \"PASSWORD\",\n"
	"        \"crypt\": \"aes-128\",\n        \"mode\": \"fast3\",\n        \"mtu\": 1400,\n        \"sndwnd\": 2048,\n"
	"        \"rcvwnd\": 2048,\n        \"datashard\": 10,\n        \"parityshard\": 3,\n        \"dscp\": 46,\n"
	"        \"nocomp\": true,\n        \"acknodelay\": false,\n        \"nodelay\": 1,\n        \"interval\": 40,\n"
	"        \"resend\": 2,\n        \"nc\": 1,\n        \"sockbuf\": 16777217,\n        \"smuxver\": 1,\n"
	"        \"smuxbuf\": 16777217,\n        \"streambuf\": 2097152,\n        \"keepalive\": 10,\n"
	"        \"pprof\":false,\n        \"quiet\":false,\n        \"tcp\":false\n}\n";

static void test_kcptun_json_applies_over_the_command_line(void)
{
	static const struct kt_case cases[] = {
		{ C, "-l 127.0.0.1:1 -r 1.1.1.1:1 -mtu 1200 --nocomp --key cli", local_json,
		  "tcp://[::]:2000 -> kcp://11.22.33.44:2000 | p=1 key=PASSWORD crypt=aes-128 mode=4 mtu=1400 wnd=128/1024 "
		  "fec=10/3 nocomp=1 ack=0 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=16777217 smux=1/16777217/2097152 ka=10" },
		{ S, "", server_json,
		  "kcp://[::]:2000 -> tcp://127.0.0.1:9999 | p=1 key=PASSWORD crypt=aes-128 mode=4 mtu=1400 wnd=2048/2048 "
		  "fec=10/3 nocomp=1 ack=0 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=16777217 smux=1/16777217/2097152 ka=10" },
		/* an absent key or null keeps the command line's value; false switches a flag off */
		{ C, "-r 1.1.1.1:1 -mtu 1200 -nocomp --mode manual --interval 20", "{\"mtu\": null, \"nocomp\": false}",
		  "tcp://[::]:12948 -> kcp://1.1.1.1:1 | p=1 key=it's a secrect crypt=aes mode=5 mtu=1200 wnd=128/512 "
		  "fec=10/3 nocomp=0 ack=0 nd=-1 iv=20 rs=-1 nc=-1 sockbuf=4194304 smux=1/8388608/4194304 ka=10" },
		/* keys match case-insensitively, as Go's encoding/json does */
		{ C, "", "{\"RemoteAddr\": \"h:1\", \"MTU\": 1300, \"Log\": \"\"}",
		  "tcp://[::]:12948 -> kcp://h:1 | p=1 key=it's a secrect crypt=aes mode=2 mtu=1300 wnd=128/512 fec=10/3 "
		  "nocomp=0 ack=0 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=4194304 smux=1/8388608/4194304 ka=10" },
		{ S, "-l :1", "{}", "kcp://[::]:1 -> tcp://127.0.0.1:12948 | " DEF_S },
		{ C, "-r h:1", "{\"key\": \"p\\u00e4ss \\\"w\\\"\"}",
		  "tcp://[::]:12948 -> kcp://h:1 | p=1 key=p\xc3\xa4ss \"w\" crypt=aes mode=2 mtu=1350 wnd=128/512 "
		  "fec=10/3 nocomp=0 ack=0 nd=-1 iv=-1 rs=-1 nc=-1 sockbuf=4194304 smux=1/8388608/4194304 ka=10" },
	};

	kt_check(cases, N(cases), true);
}

static void test_kcptun_json_errors_name_file_line_and_key(void)
{
	static const struct kt_case cases[] = {
		{ C, "-r h:1", "{\"mtu\": \"1400\"}", "t.json:1:2: \"mtu\" must be an integer, not \"1400\"" },
		{ C, "-r h:1", "{\"mtu\": 1400.0}", "t.json:1:2: \"mtu\" must be an integer, not 1400.0" },
		{ C, "-r h:1", "{\"mtu\": 1e3}", "t.json:1:2: \"mtu\" must be an integer, not 1e3" },
		{ C, "-r h:1", "{\"mtu\": 99999999999999999999}", "t.json:1:2: \"mtu\": 99999999999999999999 is out of range" },
		{ C, "-r h:1", "{\"mtu\": -1}", "t.json:1:2: bad value \"-1\" for --mtu: expected bytes from 300 to 1500" },
		{ C, "-r h:1", "{\"sndwnd\": 70000}", "t.json:1:2: bad value \"70000\" for --sndwnd: expected segments from 1 to 65535" },
		{ C, "-r h:1", "{\"nocomp\": 1}", "t.json:1:2: \"nocomp\" must be true or false, not 1" },
		{ C, "-r h:1", "{\"key\": true}", "t.json:1:2: \"key\" must be a string, not true" },
		{ C, "-r h:1", "{\n  \"mtu\": 1300,\n  \"MTU\": 1400\n}", "t.json:3:3: duplicate key \"MTU\" (first at 2:3)" },
		{ C, "-r h:1", "{\"listen\": \":1\"}", "t.json:1:2: unknown key \"listen\" for kcptun-client" },
		{ S, "", "{\"localaddr\": \":1\"}", "t.json:1:2: unknown key \"localaddr\" for kcptun-server" },
		{ C, "-r h:1", "{\"c\": \"x.json\"}", "t.json:1:2: unknown key \"c\" for kcptun-client" },
		{ C, "-r h:1", "{\"ds\": 1}", "t.json:1:2: unknown key \"ds\" for kcptun-client" },
		{ C, "-r h:1", "{\"tcp\": true}",
		  "t.json:1:2: \"tcp\" (kcptun's TCP emulation) is not supported by ferry: ferry sends KCP over UDP only" },
		{ S, "", "{\"snmplog\": \"x\"}",
		  "t.json:1:2: \"snmplog\" is not supported by ferry (ferry --stats-interval S prints counters as JSON lines)" },
		{ C, "-r h:1", "{\"quiet\": {\"a\": 1}}",
		  "t.json:1:11: \"quiet\": nested objects are not allowed: kcptun's options are strings, numbers and booleans" },
		{ C, "-r h:1", "{\"mtu\": 1400,}", "t.json:1:14: expected a key in double quotes, found '}'" },
		{ C, "", "{\"mtu\": 1400}", "missing -r/--remoteaddr SERVER:PORT (kcptun's default \"vps:29900\" is only a placeholder)" },
		{ S, "", "{\"target\": \"/run/s\"}", "target \"/run/s\": unix socket targets are not supported by ferry; give HOST:PORT" },
	};

	kt_check(cases, N(cases), false);
}

static void test_kcptun_config_load_reads_a_file_with_a_size_limit(void)
{
	char dir[] = "/tmp/ferry-kt-XXXXXX", path[64], err[ARGS_ERR_MAX];
	struct kcptun_cli kc;
	struct rule_opts ro;
	char *big;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/c.json", dir);
	rule_opts_default(&ro);
	kcptun_cli_init(&kc, S, &ro);
	kc.config_path = path;
	CHECK_EQ(kcptun_config_load(&kc, &ro, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "cannot open config \"") == err);

	/* exactly the limit is read; one byte more is refused */
	big = malloc(KCPTUN_JSON_MAX_BYTES + 1);
	memset(big, ' ', KCPTUN_JSON_MAX_BYTES + 1);
	memcpy(big, "{\"mtu\": 1234}", 13);
	f = fopen(path, "w");
	fwrite(big, 1, KCPTUN_JSON_MAX_BYTES, f);
	fclose(f);
	CHECK_EQ(kcptun_config_load(&kc, &ro, err, sizeof(err)), 0);
	CHECK_EQ(ro.kcp.mtu, 1234);
	f = fopen(path, "w");
	fwrite(big, 1, KCPTUN_JSON_MAX_BYTES + 1, f);
	fclose(f);
	CHECK_EQ(kcptun_config_load(&kc, &ro, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, ":1:1: larger than 65536 bytes: not a kcptun config") != NULL);
	CHECK(strstr(err, path) == err);
	free(big);
	unlink(path);
	rmdir(dir);
}

/* ---- the JSON parser alone ---- */

struct collect {
	char out[1024];
	size_t n;
};

static int collect_member(void *ctx, const char *key, const struct kcptun_json_value *v, char *err, size_t errlen)
{
	struct collect *c = ctx;
	static const char type[] = { [KCPTUN_JSON_STRING] = 's', [KCPTUN_JSON_NUMBER] = 'n', [KCPTUN_JSON_BOOL] = 'b',
				     [KCPTUN_JSON_NULL] = 'z' };

	if (!strcmp(key, "reject")) {
		snprintf(err, errlen, "no thanks");
		return -EINVAL;
	}
	c->n += (size_t)snprintf(c->out + c->n, sizeof(c->out) - c->n, "%s%s@%u:%u=%c:%s", c->n ? " " : "", key, v->line,
				 v->col, type[v->type], v->text);
	if (v->type == KCPTUN_JSON_NUMBER)
		c->n += (size_t)snprintf(c->out + c->n, sizeof(c->out) - c->n, v->fits ? "(%lld)" : v->integer ? "(big)" :
					 "(real)", (long long)v->i);
	return 0;
}

static void test_kcptun_json_parser_accepts_flat_objects(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "{}", "" },
		{ " \r\n\t{ }\n", "" },
		{ "{\"a\":\"x\",\"b\" : 1 ,\n \"c\":true,\"d\":false,\"e\":null}",
		  "a@1:2=s:x b@1:10=n:1(1) c@2:2=b:true d@2:11=b:false e@2:21=z:null" },
		{ "{\"n\":-0,\"m\":9223372036854775807,\"o\":-9223372036854775808}",
		  "n@1:2=n:-0(0) m@1:9=n:9223372036854775807(9223372036854775807) "
		  "o@1:33=n:-9223372036854775808(-9223372036854775808)" },
		{ "{\"n\":9223372036854775808,\"m\":-9223372036854775809,\"o\":184467440737095516160}",
		  "n@1:2=n:9223372036854775808(big) m@1:26=n:-9223372036854775809(big) o@1:51=n:184467440737095516160(big)" },
		{ "{\"n\":1.5,\"m\":1e3,\"o\":-2.5E+10,\"p\":0e-1}",
		  "n@1:2=n:1.5(real) m@1:10=n:1e3(real) o@1:18=n:-2.5E+10(real) p@1:31=n:0e-1(real)" },
		/* escapes, including a surrogate pair, and raw UTF-8 passed through */
		{ "{\"k\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u20AC\xc3\xa4\"}",
		  "k@1:2=s:a\"b\\c/d\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa4" },
		/* duplicates are the caller's business: both reach the callback */
		{ "{\"a\":1,\"a\":2}", "a@1:2=n:1(1) a@1:8=n:2(2)" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct collect c = { .n = 0 };
		char err[256] = "";

		c.out[0] = '\0';
		CHECK_EQ(kcptun_json_parse(cases[i].text, strlen(cases[i].text), collect_member, &c, err, sizeof(err)), 0);
		if (err[0])
			fprintf(stderr, "  case %zu: %s\n", i, err);
		CHECK_STR(c.out, cases[i].want);
	}
}

static void test_kcptun_json_parser_rejects_malformed_text(void)
{
	static const struct {
		const char *text;
		size_t len;	/* 0 = strlen */
		const char *want;
	} cases[] = {
		{ "", 0, "1:1: empty: expected a JSON object { \"key\": value, ... }" },
		{ " \n ", 0, "2:2: empty: expected a JSON object { \"key\": value, ... }" },
		{ "[]", 0, "1:1: expected '{' (a kcptun config is one JSON object), found '['" },
		{ "\xef\xbb\xbf{}", 0, "1:1: expected '{' (a kcptun config is one JSON object), found byte 0xef" },
		{ "{", 0, "1:2: expected a key in double quotes, found end of file" },
		{ "{\"a\":1,}", 0, "1:8: expected a key in double quotes, found '}'" },
		{ "{a:1}", 0, "1:2: expected a key in double quotes, found 'a'" },
		{ "{\"a\" 1}", 0, "1:6: expected ':' after \"a\", found '1'" },
		{ "{\"a\":}", 0, "1:6: expected the value of \"a\" (a string, number, true, false or null), found '}'" },
		{ "{\"a\":", 0, "1:6: missing the value of \"a\"" },
		{ "{\"a\":1 \"b\":2}", 0, "1:8: expected ',' or '}' after the value of \"a\", found '\"'" },
		{ "{\"a\":1", 0, "1:7: expected ',' or '}' after the value of \"a\", found end of file" },
		{ "{\"a\":12abc}", 0, "1:8: expected ',' or '}' after the value of \"a\", found 'a'" },
		{ "{\"a\":truex}", 0, "1:10: expected ',' or '}' after the value of \"a\", found 'x'" },
		{ "{\"a\":tru}", 0, "1:6: expected the value of \"a\" (a string, number, true, false or null), found 't'" },
		{ "{\"a\":'x'}", 0, "1:6: expected the value of \"a\" (a string, number, true, false or null), found '''" },
		{ "{\"a\":{\"b\":1}}", 0,
		  "1:6: \"a\": nested objects are not allowed: kcptun's options are strings, numbers and booleans" },
		{ "{\"a\":[1]}", 0,
		  "1:6: \"a\": nested arrays are not allowed: kcptun's options are strings, numbers and booleans" },
		{ "{\"a\":01}", 0, "1:6: a number cannot start with 0 (leading zeros are not JSON)" },
		{ "{\"a\":-}", 0, "1:7: expected a digit after '-'" },
		{ "{\"a\":+1}", 0, "1:6: expected the value of \"a\" (a string, number, true, false or null), found '+'" },
		{ "{\"a\":.5}", 0, "1:6: expected the value of \"a\" (a string, number, true, false or null), found '.'" },
		{ "{\"a\":1.}", 0, "1:8: expected a digit after '.'" },
		{ "{\"a\":1e}", 0, "1:8: expected a digit in the exponent" },
		{ "{\"a\":\"x", 0, "1:6: unterminated string" },
		{ "{\"a", 0, "1:2: unterminated key" },
		{ "{\"a\":\"x\\", 0, "1:8: unterminated string" },
		{ "{\"a\":\"\\x\"}", 0, "1:7: bad escape in string: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX" },
		{ "{\"a\":\"\\u12\"}", 0, "1:7: bad \\u escape in string: expected 4 hex digits" },
		{ "{\"a\":\"\\u12g4\"}", 0, "1:7: bad \\u escape in string: expected 4 hex digits" },
		{ "{\"a\":\"\\ud800\"}", 0, "1:7: high surrogate \\ud800 in string without its low half" },
		{ "{\"a\":\"\\ud800\\u0041\"}", 0, "1:7: high surrogate \\ud800 in string without its low half" },
		{ "{\"a\":\"\\udc00\"}", 0, "1:7: lone low surrogate \\udc00 in string" },
		{ "{\"a\":\"\\u0000\"}", 0, "1:7: \\u0000 (a NUL byte) is not allowed in string" },
		{ "{\"a\":\"x\ny\"}", 0, "1:8: control character 0x0a in string (write it as an escape, e.g. \\n)" },
		{ "{\"a\":\"\xff\"}", 0, "1:7: invalid UTF-8 in string" },
		{ "{\"a\":\"\xc0\x80\"}", 0, "1:7: invalid UTF-8 in string" },		/* overlong NUL */
		{ "{\"a\":\"\xed\xa0\x80\"}", 0, "1:7: invalid UTF-8 in string" },	/* a surrogate */
		{ "{\"a\":\"\xf4\x90\x80\x80\"}", 0, "1:7: invalid UTF-8 in string" },	/* above U+10FFFF */
		{ "{\"a\":\"\xe2\x82\"}", 0, "1:7: invalid UTF-8 in string" },		/* cut short */
		{ "{\"a\\u0001\":1}", 0, "1:2: a key with a control or non-ASCII character cannot be a kcptun option" },
		{ "{\"\xc3\xa4\":1}", 0, "1:2: a key with a control or non-ASCII character cannot be a kcptun option" },
		{ "{\0}", 3, "1:2: expected a key in double quotes, found byte 0x00" },
		{ "{\"a\":1} x", 0, "1:9: unexpected 'x' after the closing '}'" },
		{ "{\"a\":1}\n\n  }", 0, "3:3: unexpected '}' after the closing '}'" },
		{ "{\n  \"a\": 1,\n  \"b\" 2\n}", 0, "3:7: expected ':' after \"b\", found '2'" },
		{ "{\"a\":1, \"reject\":2}", 0, "1:9: no thanks" },
		{ "{ // kcptun\n}", 0, "1:3: expected a key in double quotes, found '/'" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct collect c = { .n = 0 };
		char err[256] = "";
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);

		CHECK_EQ(kcptun_json_parse(cases[i].text, len, collect_member, &c, err, sizeof(err)), -EINVAL);
		CHECK_STR(err, cases[i].want);
		if (strcmp(err, cases[i].want))
			fprintf(stderr, "  case %zu\n", i);
	}
}

static void test_kcptun_json_parser_limits_string_and_file_size(void)
{
	char text[KCPTUN_JSON_STR_MAX + 32], err[256];
	struct collect c = { .n = 0 };
	char *big;

	/* the longest string fits; one byte more does not */
	memset(text, 0, sizeof(text));
	memcpy(text, "{\"k\":\"", 6);
	memset(text + 6, 'x', KCPTUN_JSON_STR_MAX - 1);
	memcpy(text + 6 + KCPTUN_JSON_STR_MAX - 1, "\"}", 3);
	CHECK_EQ(kcptun_json_parse(text, strlen(text), collect_member, &c, err, sizeof(err)), 0);
	memset(text + 6, 'x', KCPTUN_JSON_STR_MAX);
	memcpy(text + 6 + KCPTUN_JSON_STR_MAX, "\"}", 3);
	CHECK_EQ(kcptun_json_parse(text, strlen(text), collect_member, &c, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "1:6: string longer than 511 bytes");

	big = malloc(KCPTUN_JSON_MAX_BYTES + 1);
	memset(big, ' ', KCPTUN_JSON_MAX_BYTES + 1);
	big[0] = '{';
	big[KCPTUN_JSON_MAX_BYTES - 1] = '}';
	CHECK_EQ(kcptun_json_parse(big, KCPTUN_JSON_MAX_BYTES, collect_member, &c, err, sizeof(err)), 0);
	CHECK_EQ(kcptun_json_parse(big, KCPTUN_JSON_MAX_BYTES + 1, collect_member, &c, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "1:1: larger than 65536 bytes: not a kcptun config");
	free(big);
}

int main(void)
{
	unsetenv("KCPTUN_KEY");
	RUN(test_kcptun_command_lines_build_one_rule);
	RUN(test_kcptun_bad_command_lines_name_the_word);
	RUN(test_kcptun_help_and_version);
	RUN(test_kcptun_key_env_replaces_only_the_default);
	RUN(test_kcptun_any_address_without_ipv6);
	RUN(test_kcptun_json_applies_over_the_command_line);
	RUN(test_kcptun_json_errors_name_file_line_and_key);
	RUN(test_kcptun_config_load_reads_a_file_with_a_size_limit);
	RUN(test_kcptun_json_parser_accepts_flat_objects);
	RUN(test_kcptun_json_parser_rejects_malformed_text);
	RUN(test_kcptun_json_parser_limits_string_and_file_size);
	TEST_EXIT();
}
