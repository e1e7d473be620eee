/* Option tables and the parser shared by argv and config lines; see args.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cmd/args.h"
#include "proto/kcp.h"
#include "proto/secure.h"

/* Longest accepted time option: a day is plenty for any timeout. */
#define ARGS_MAX_SECONDS_MS (86400u * 1000u)
#define ARGS_MAX_WORKERS 256
#define ARGS_MAX_BUF_BYTES (1u << 30)
/* STATUS= to systemd: the seed's cadence (spec/systemd.md §3). */
#define ARGS_STATUS_INTERVAL_MS 10000
/* --icmp-sync-pps: a microsecond between cadence frames is already far above any real link. */
#define ARGS_MAX_SYNC_PPS 1000000

enum opt_id {
	O_CONFIG, O_DAEMON, O_PIDFILE, O_USER, O_GROUP, O_WORKERS, O_BUSY_POLL, O_LOG_LEVEL, O_LOG_FORMAT,
	O_STATS, O_DRAIN, O_HELP, O_VERSION, O_SYSTEMD, O_STATUS_INTERVAL, O_NO_FDSTORE,
	O_CONNECT_TIMEOUT, O_IDLE_TIMEOUT, O_MAX_CONNS, O_SNDBUF, O_RCVBUF, O_KA_IDLE, O_KA_INTVL,
	O_KA_CNT, O_NO_KA, O_REUSEADDR, O_REUSEPORT, O_V6ONLY, O_BASE_ADDR, O_NO_SPLICE,
	O_UDP_TIMEOUT, O_MAX_SESSIONS, O_HASH_SIZE, O_MAX_DATAGRAM,
	/* kcp:// (spec/kcp.md §2.8, §3.12) */
	O_KCP_PROFILE, O_SECURE, O_INSECURE, O_PSK, O_PSK_FILE, O_KCP_MODE, O_MTU, O_SNDWND, O_RCVWND,
	O_NODELAY, O_INTERVAL, O_RESEND, O_NC, O_KCP_CC, O_ACKNODELAY, O_SOCKBUF, O_KEEPALIVE, O_STREAMBUF,
	O_MAX_STREAMS, O_KEY, O_CRYPT, O_NOCOMP, O_DS, O_PS, O_SMUXVER, O_SKEW, O_REKEY_TIME,
	O_REKEY_PACKETS, O_KCPTUN_IGNORED, O_KCPTUN_IGNORED_ARG, O_PORTFWD_STEALTH,
	O_TRANSPARENT, O_TPROXY, O_SMUXBUF,
	/* single-client rules and the ICMP tunnel (spec/pkthere.md §2) */
	O_SINGLE_CLIENT, O_ON_TIMEOUT, O_ICMP_SYNC_PPS, O_ICMP_HANDSHAKE_TIMEOUT,
};

struct opt_def {
	const char *name;	/* long name without "--", or NULL */
	char letter;		/* short option, or 0 */
	bool has_arg;
	bool global;		/* only on the command line, not in a rule line */
	enum opt_id id;
};

static const struct opt_def ferry_opts[] = {
	{ "config", 'c', true, true, O_CONFIG },
	{ "daemon", 'd', false, true, O_DAEMON },
	{ "pidfile", 'p', true, true, O_PIDFILE },
	{ "user", 0, true, true, O_USER },
	{ "group", 0, true, true, O_GROUP },
	{ "workers", 0, true, true, O_WORKERS },
	{ "busy-poll", 0, true, true, O_BUSY_POLL },
	{ "log-level", 0, true, true, O_LOG_LEVEL },
	{ "log-format", 0, true, true, O_LOG_FORMAT },
	{ "stats-interval", 0, true, true, O_STATS },
	{ "drain-timeout", 0, true, true, O_DRAIN },
	{ "help", 'h', false, true, O_HELP },
	{ "version", 'V', false, true, O_VERSION },
	{ "systemd", 0, false, true, O_SYSTEMD },
	{ "status-interval", 0, true, true, O_STATUS_INTERVAL },
	{ "no-fdstore", 0, false, true, O_NO_FDSTORE },
	{ "connect-timeout", 0, true, false, O_CONNECT_TIMEOUT },
	{ "idle-timeout", 0, true, false, O_IDLE_TIMEOUT },
	{ "max-conns", 0, true, false, O_MAX_CONNS },
	{ "sndbuf", 0, true, false, O_SNDBUF },
	{ "rcvbuf", 0, true, false, O_RCVBUF },
	{ "keepalive-idle", 0, true, false, O_KA_IDLE },
	{ "keepalive-intvl", 0, true, false, O_KA_INTVL },
	{ "keepalive-cnt", 0, true, false, O_KA_CNT },
	{ "no-keepalive", 0, false, false, O_NO_KA },
	{ "reuseaddr", 'r', false, false, O_REUSEADDR },
	{ "reuseport", 'R', false, false, O_REUSEPORT },
	{ "v6only", '6', false, false, O_V6ONLY },
	{ "base-addr", 'b', false, false, O_BASE_ADDR },
	{ "no-splice", 0, false, false, O_NO_SPLICE },
	{ "udp-timeout", 't', true, false, O_UDP_TIMEOUT },
	{ "max-sessions", 0, true, false, O_MAX_SESSIONS },
	{ "hash-size", 'H', true, false, O_HASH_SIZE },
	{ "max-datagram", 0, true, false, O_MAX_DATAGRAM },
	{ "transparent", 0, false, false, O_TRANSPARENT },
	{ "tproxy", 0, false, false, O_TPROXY },
	{ "single-client", 0, false, false, O_SINGLE_CLIENT },
	{ "on-timeout", 0, true, false, O_ON_TIMEOUT },
	{ "icmp-sync-pps", 0, true, false, O_ICMP_SYNC_PPS },
	{ "icmp-handshake-timeout", 0, true, false, O_ICMP_HANDSHAKE_TIMEOUT },
	{ "max-payload", 0, true, false, O_MAX_DATAGRAM },	/* pkthere's name */
	{ "kcp-profile", 0, true, false, O_KCP_PROFILE },
	{ "secure", 0, false, false, O_SECURE },
	{ "insecure", 0, false, false, O_INSECURE },
	{ "psk", 'K', true, false, O_PSK },
	{ "psk-file", 0, true, false, O_PSK_FILE },
	{ "kcp-mode", 0, true, false, O_KCP_MODE },
	{ "mode", 0, true, false, O_KCP_MODE },
	{ "mtu", 0, true, false, O_MTU },
	{ "sndwnd", 0, true, false, O_SNDWND },
	{ "rcvwnd", 0, true, false, O_RCVWND },
	{ "nodelay", 0, true, false, O_NODELAY },
	{ "interval", 0, true, false, O_INTERVAL },
	{ "resend", 0, true, false, O_RESEND },
	{ "nc", 0, true, false, O_NC },
	{ "kcp-cc", 0, true, false, O_KCP_CC },
	{ "acknodelay", 0, false, false, O_ACKNODELAY },
	{ "sockbuf", 0, true, false, O_SOCKBUF },
	{ "keepalive", 0, true, false, O_KEEPALIVE },
	{ "streambuf", 0, true, false, O_STREAMBUF },
	{ "max-streams", 0, true, false, O_MAX_STREAMS },
	{ "key", 0, true, false, O_KEY },
	{ "crypt", 0, true, false, O_CRYPT },
	{ "nocomp", 0, false, false, O_NOCOMP },
	{ "datashard", 0, true, false, O_DS },
	{ "ds", 0, true, false, O_DS },
	{ "parityshard", 0, true, false, O_PS },
	{ "ps", 0, true, false, O_PS },
	{ "smuxver", 0, true, false, O_SMUXVER },
	{ "secure-max-skew", 0, true, false, O_SKEW },
	{ "secure-rekey-time", 0, true, false, O_REKEY_TIME },
	{ "secure-rekey-packets", 0, true, false, O_REKEY_PACKETS },
	/* kcptun options with no effect here (accepted so kcptun command lines work) */
	{ "smuxbuf", 0, true, false, O_SMUXBUF },
	{ "dscp", 0, true, false, O_KCPTUN_IGNORED_ARG },
	{ "conn", 0, true, false, O_KCPTUN_IGNORED_ARG },
	{ "autoexpire", 0, true, false, O_KCPTUN_IGNORED_ARG },
	{ "scavengettl", 0, true, false, O_KCPTUN_IGNORED_ARG },
	{ "quiet", 0, false, false, O_KCPTUN_IGNORED },
	{ NULL, 0, false, false, 0 },
};

/* portfwd's kcptcp-client/-server (spec/kcp.md §3.12): its letters mapped onto kcp:// options. */
static const struct opt_def kcptcp_opts[] = {
	{ NULL, 'd', false, true, O_DAEMON },
	{ NULL, 'p', true, true, O_PIDFILE },
	{ NULL, 'r', false, false, O_REUSEADDR },
	{ NULL, 'R', false, false, O_REUSEPORT },
	{ NULL, '6', false, false, O_V6ONLY },
	{ NULL, 'S', true, false, O_SOCKBUF },
	{ NULL, 'M', true, false, O_MTU },
	{ NULL, 'K', true, false, O_PSK },
	{ NULL, 'A', true, false, O_NODELAY },
	{ NULL, 'I', true, false, O_INTERVAL },
	{ NULL, 'X', true, false, O_RESEND },
	{ NULL, 'C', true, false, O_NC },
	{ NULL, 'w', true, false, O_SNDWND },
	{ NULL, 'W', true, false, O_RCVWND },
	{ NULL, 'N', false, false, O_KCPTUN_IGNORED },	/* TCP_NODELAY: always on */
	{ NULL, 'L', false, false, O_KCPTUN_IGNORED },
	{ NULL, 'Y', true, false, O_KCPTUN_IGNORED_ARG },
	{ NULL, 'Z', true, false, O_KCPTUN_IGNORED_ARG },
	{ NULL, 'g', false, false, O_PORTFWD_STEALTH },
	{ NULL, 'G', false, false, O_PORTFWD_STEALTH },
	{ NULL, 'P', false, false, O_PORTFWD_STEALTH },
	{ NULL, 'j', false, false, O_PORTFWD_STEALTH },
	{ NULL, 'h', false, true, O_HELP },
	{ NULL, 0, false, false, 0 },
};

/* portfwd's tcpfwd: exactly its letters (README of portfwd), plus our long options. */
static const struct opt_def tcpfwd_opts[] = {
	{ NULL, 'd', false, true, O_DAEMON },
	{ NULL, 'p', true, true, O_PIDFILE },
	{ NULL, 'b', false, false, O_BASE_ADDR },
	{ NULL, 'r', false, false, O_REUSEADDR },
	{ NULL, 'R', false, false, O_REUSEPORT },
	{ NULL, '6', false, false, O_V6ONLY },
	{ NULL, 'h', false, true, O_HELP },
	{ NULL, 0, false, false, 0 },
};

/* portfwd's udpfwd: note -o (not -6) for IPV6_V6ONLY, -t timeout, -H hash size. */
static const struct opt_def udpfwd_opts[] = {
	{ NULL, 't', true, false, O_UDP_TIMEOUT },
	{ NULL, 'd', false, true, O_DAEMON },
	{ NULL, 'o', false, false, O_V6ONLY },
	{ NULL, 'r', false, false, O_REUSEADDR },
	{ NULL, 'R', false, false, O_REUSEPORT },
	{ NULL, 'H', true, false, O_HASH_SIZE },
	{ NULL, 'p', true, true, O_PIDFILE },
	{ NULL, 'h', false, true, O_HELP },
	{ NULL, 0, false, false, 0 },
};

void global_opts_default(struct global_opts *g)
{
	memset(g, 0, sizeof(*g));
	g->log_level = LOG_INFO;
	g->status_interval_ms = ARGS_STATUS_INTERVAL_MS;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 19)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_seconds_ms(const char *s, uint32_t max_ms, uint32_t *out)
{
	uint64_t ms = 0;
	int frac_digits = 0;
	bool dot = false, digit = false;

	for (const char *p = s; *p; p++) {
		if (*p == '.' && !dot) {
			dot = true;
			continue;
		}
		if (*p < '0' || *p > '9')
			return -EINVAL;
		digit = true;
		if (dot) {
			if (frac_digits == 3)
				continue;	/* below a millisecond: ignored */
			frac_digits++;
		}
		ms = ms * 10 + (uint64_t)(*p - '0');
		if (ms > (uint64_t)max_ms * 1000)
			return -ERANGE;
	}
	if (!digit)
		return -EINVAL;
	for (; frac_digits < 3; frac_digits++)
		ms *= 10;
	if (ms > max_ms)
		return -ERANGE;
	*out = (uint32_t)ms;
	return 0;
}

static const struct opt_def *opt_find_long(const struct opt_def *t, const char *name, size_t len)
{
	for (; t->name || t->letter; t++)
		if (t->name && strlen(t->name) == len && !strncmp(t->name, name, len))
			return t;
	return NULL;
}

static const struct opt_def *opt_find_short(const struct opt_def *t, char c)
{
	for (; t->name || t->letter; t++)
		if (t->letter == c)
			return t;
	return NULL;
}

static void opt_label(const struct opt_def *d, char *buf, size_t len)
{
	if (d->name)
		snprintf(buf, len, "--%s", d->name);
	else
		snprintf(buf, len, "-%c", d->letter);
}

static int bad_value(char *err, size_t errlen, const struct opt_def *d, const char *v, const char *want)
{
	char label[40];

	opt_label(d, label, sizeof(label));
	snprintf(err, errlen, "bad value \"%s\" for %s: expected %s", v, label, want);
	return -EINVAL;
}

static int set_uint32(const char *v, uint64_t min, uint64_t max, uint32_t *out)
{
	uint64_t x;
	int rc = parse_uint(v, min, max, &x);

	if (!rc)
		*out = (uint32_t)x;
	return rc;
}

static int set_int(const char *v, int min, int max, int *out)
{
	uint64_t x;
	int rc = parse_uint(v, (uint64_t)min, (uint64_t)max, &x);

	if (!rc)
		*out = (int)x;
	return rc;
}

static int psk_load_file(const char *path, struct kcp_opts *k, char *err, size_t errlen)
{
	char text[256];
	struct stat st;
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp) {
		snprintf(err, errlen, "--psk-file %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077))
		log_warn("--psk-file %s: readable by group or others (mode %03o); chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
	fclose(fp);
	if (secure_psk_parse(text, k->psk)) {
		explicit_bzero(text, sizeof(text));
		snprintf(err, errlen, "--psk-file %s: expected 64 hex characters (a 32-byte key, not all zero)", path);
		return -EINVAL;
	}
	explicit_bzero(text, sizeof(text));
	k->psk_set = true;
	return 0;
}

static const char *const kcp_mode_names[] = { "normal", "fast", "fast2", "fast3", "manual" };
static const char *const kcp_cc_names[] = { [KCP_CC_RATE] = "rate", [KCP_CC_WINDOW] = "window", [KCP_CC_OFF] = "off" };

/* The kcp:// options. */
static int kcp_opt_apply(const struct opt_def *d, const char *v, struct kcp_opts *k, char *err, size_t errlen)
{
	uint32_t u;

	switch (d->id) {
	case O_KCP_PROFILE:
		if (strcmp(v, "ferry") && strcmp(v, "kcptun"))
			return bad_value(err, errlen, d, v, "ferry or kcptun");
		k->profile = !strcmp(v, "kcptun") ? KCP_PROFILE_KCPTUN : KCP_PROFILE_FERRY;
		return 0;
	case O_SECURE: k->secure = true; return 0;
	case O_INSECURE: k->insecure = true; return 0;
	case O_PSK:
		if (secure_psk_parse(v, k->psk))
			return bad_value(err, errlen, d, "...", "64 hex characters (a 32-byte key, not all zero)");
		k->psk_set = true;
		return 0;
	case O_PSK_FILE: return psk_load_file(v, k, err, errlen);
	case O_KCP_MODE:
		for (int m = 0; m < 5; m++)
			if (!strcmp(v, kcp_mode_names[m])) {
				k->mode = m + 1;
				return 0;
			}
		return bad_value(err, errlen, d, v, "normal, fast, fast2, fast3 or manual");
	case O_MTU:
		if (set_uint32(v, 300, 1500, &k->mtu))
			return bad_value(err, errlen, d, v, "bytes from 300 to 1500");
		return 0;
	case O_SNDWND:
	case O_RCVWND:
		if (set_uint32(v, 1, 65535, &u))
			return bad_value(err, errlen, d, v, "segments from 1 to 65535");
		*(d->id == O_SNDWND ? &k->sndwnd : &k->rcvwnd) = u;
		return 0;
	case O_NODELAY:
		if (set_int(v, 0, 2, &k->nodelay))
			return bad_value(err, errlen, d, v, "0, 1 or 2");
		return 0;
	case O_INTERVAL:
		if (set_int(v, 10, 5000, &k->interval))
			return bad_value(err, errlen, d, v, "milliseconds from 10 to 5000");
		return 0;
	case O_RESEND:
		if (set_int(v, 0, 255, &k->resend))
			return bad_value(err, errlen, d, v, "a count from 0 (off) to 255");
		return 0;
	case O_NC:
		if (set_int(v, 0, 1, &k->nc))
			return bad_value(err, errlen, d, v, "0 (congestion control on) or 1 (off)");
		return 0;
	case O_KCP_CC:
		for (int c = KCP_CC_RATE; c <= KCP_CC_OFF; c++)
			if (!strcmp(v, kcp_cc_names[c])) {
				k->cc = c;
				return 0;
			}
		return bad_value(err, errlen, d, v, "rate, window or off");
	case O_ACKNODELAY: k->acknodelay = true; return 0;
	case O_SOCKBUF:
		if (set_uint32(v, 1024, ARGS_MAX_BUF_BYTES, &k->sockbuf))
			return bad_value(err, errlen, d, v, "bytes from 1024 to 1073741824");
		return 0;
	case O_KEEPALIVE:
		if (set_uint32(v, 1, 3600, &k->keepalive_s))
			return bad_value(err, errlen, d, v, "seconds from 1 to 3600");
		return 0;
	case O_STREAMBUF:
		if (set_uint32(v, 4096, 1u << 26, &k->streambuf))
			return bad_value(err, errlen, d, v, "bytes from 4096 to 67108864");
		return 0;
	case O_SMUXBUF:
		if (set_uint32(v, 4096, 1u << 28, &k->smuxbuf))
			return bad_value(err, errlen, d, v, "bytes from 4096 to 268435456");
		return 0;
	case O_MAX_STREAMS:
		if (set_uint32(v, 1, 1000000, &k->max_streams))
			return bad_value(err, errlen, d, v, "a number from 1 to 1000000");
		return 0;
	case O_KEY:
		if (strlen(v) >= sizeof(k->key))
			return bad_value(err, errlen, d, "...", "at most 127 bytes");
		snprintf(k->key, sizeof(k->key), "%s", v);
		k->key_set = true;
		return 0;
	case O_CRYPT:
		if (strlen(v) >= sizeof(k->crypt))
			return bad_value(err, errlen, d, v, "a kcptun cipher name such as aes, salsa20, xor or none");
		snprintf(k->crypt, sizeof(k->crypt), "%s", v);
		return 0;
	case O_NOCOMP: k->nocomp = true; return 0;
	case O_DS:
	case O_PS:
		if (set_int(v, 0, 255, d->id == O_DS ? &k->ds : &k->ps))
			return bad_value(err, errlen, d, v, "shards from 0 (FEC off) to 255");
		return 0;
	case O_SMUXVER:
		if (set_int(v, 1, 2, &k->smuxver))
			return bad_value(err, errlen, d, v, "1 or 2");
		return 0;
	case O_SKEW:
		if (set_uint32(v, 0, 86400, &k->max_skew_s))
			return bad_value(err, errlen, d, v, "seconds (0 = no clock check)");
		return 0;
	case O_REKEY_TIME:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &u) || u < 1000)
			return bad_value(err, errlen, d, v, "seconds, at least 1");
		k->rekey_time_ms = u;
		return 0;
	case O_REKEY_PACKETS: {
		uint64_t x;

		if (parse_uint(v, 16, 1ull << 60, &x))
			return bad_value(err, errlen, d, v, "a packet count from 16 to 2^60");
		k->rekey_packets = x;
		return 0;
	}
	case O_KCPTUN_IGNORED:
	case O_KCPTUN_IGNORED_ARG:
		return 0;
	case O_PORTFWD_STEALTH:
		log_warn("kcptcp: -%c (portfwd stealth option) is accepted and ignored", d->letter);
		return 0;
	default:
		break;
	}
	snprintf(err, errlen, "internal: unhandled option");
	return -EINVAL;
}

/* The single-client rule options (spec/pkthere.md §1.3, under ferry's names). */
static int single_opt_apply(const struct opt_def *d, const char *v, struct single_rule_opts *so, char *err,
			    size_t errlen)
{
	switch (d->id) {
	case O_SINGLE_CLIENT: so->on = true; return 0;
	case O_ON_TIMEOUT:
		if (strcmp(v, "drop") && strcmp(v, "exit"))
			return bad_value(err, errlen, d, v, "drop or exit");
		so->on_timeout_exit = !strcmp(v, "exit");
		return 0;
	case O_ICMP_SYNC_PPS:
		if (set_uint32(v, 0, ARGS_MAX_SYNC_PPS, &so->sync_pps))
			return bad_value(err, errlen, d, v, "packets per second from 0 (off) to 1000000");
		return 0;
	case O_ICMP_HANDSHAKE_TIMEOUT:
		if (parse_seconds_ms(v, RULE_SINGLE_HANDSHAKE_MAX_MS, &so->handshake_timeout_ms) ||
		    !so->handshake_timeout_ms)
			return bad_value(err, errlen, d, v, "seconds greater than 0, at most 3600");
		return 0;
	default:
		break;
	}
	snprintf(err, errlen, "internal: unhandled option");
	return -EINVAL;
}

/* Applies one option. v is its argument (or NULL). */
static int opt_apply(const struct opt_def *d, const char *v, struct global_opts *g, struct rule_opts *ro,
		     char *err, size_t errlen)
{
	uint32_t u;

	switch (d->id) {
	case O_CONFIG: g->config_path = v; return 0;
	case O_DAEMON: g->daemonize = true; return 0;
	case O_PIDFILE: g->pidfile = v; return 0;
	case O_USER: g->user = v; return 0;
	case O_GROUP: g->group = v; return 0;
	case O_HELP: g->help = true; return 0;
	case O_SYSTEMD: g->systemd = true; return 0;
	case O_NO_FDSTORE: g->no_fdstore = true; return 0;
	case O_STATUS_INTERVAL:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &g->status_interval_ms) ||
		    (g->status_interval_ms && g->status_interval_ms < 100))
			return bad_value(err, errlen, d, v, "seconds (0 = off, at least 0.1)");
		return 0;
	case O_VERSION: g->version = true; return 0;
	case O_WORKERS:
		if (set_uint32(v, 1, ARGS_MAX_WORKERS, &g->workers))
			return bad_value(err, errlen, d, v, "a number of threads from 1 to 256");
		return 0;
	case O_BUSY_POLL:
		if (set_uint32(v, 0, 10000, &g->busy_poll_us))
			return bad_value(err, errlen, d, v, "microseconds from 0 (off) to 10000");
		return 0;
	case O_LOG_LEVEL:
		if (log_level_parse(v, &g->log_level))
			return bad_value(err, errlen, d, v, "error, warn, info or debug");
		return 0;
	case O_LOG_FORMAT:
		if (strcmp(v, "text") && strcmp(v, "json"))
			return bad_value(err, errlen, d, v, "text or json");
		g->log_json = !strcmp(v, "json");
		return 0;
	case O_STATS:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &g->stats_interval_ms) ||
		    (g->stats_interval_ms && g->stats_interval_ms < 100))
			return bad_value(err, errlen, d, v, "seconds (0 = off, at least 0.1)");
		return 0;
	case O_DRAIN:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &g->drain_ms))
			return bad_value(err, errlen, d, v, "seconds");
		return 0;
	case O_CONNECT_TIMEOUT:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &u) || u == 0)
			return bad_value(err, errlen, d, v, "seconds greater than 0, e.g. 10 or 0.5");
		ro->connect_timeout_ms = u;
		return 0;
	case O_IDLE_TIMEOUT:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &ro->idle_timeout_ms))
			return bad_value(err, errlen, d, v, "seconds (0 = off)");
		ro->idle_timeout_set = true;
		return 0;
	case O_MAX_CONNS:
		if (set_uint32(v, 1, 10000000, &ro->max_conns))
			return bad_value(err, errlen, d, v, "a number from 1 to 10000000");
		return 0;
	case O_SNDBUF:
	case O_RCVBUF:
		if (set_uint32(v, 1024, ARGS_MAX_BUF_BYTES, &u))
			return bad_value(err, errlen, d, v, "bytes from 1024 to 1073741824");
		if (d->id == O_SNDBUF)
			ro->sock.sndbuf = (int)u;
		else
			ro->sock.rcvbuf = (int)u;
		return 0;
	case O_KA_IDLE:
		if (set_uint32(v, 1, 32767, &ro->sock.ka_idle_s))
			return bad_value(err, errlen, d, v, "seconds from 1 to 32767");
		return 0;
	case O_KA_INTVL:
		if (set_uint32(v, 1, 32767, &ro->sock.ka_intvl_s))
			return bad_value(err, errlen, d, v, "seconds from 1 to 32767");
		return 0;
	case O_KA_CNT:
		if (set_uint32(v, 1, 127, &ro->sock.ka_cnt))
			return bad_value(err, errlen, d, v, "a count from 1 to 127");
		return 0;
	case O_NO_KA: ro->sock.keepalive = false; return 0;
	case O_REUSEADDR: ro->sock.reuseaddr = true; return 0;
	case O_REUSEPORT: ro->sock.reuseport = true; return 0;
	case O_V6ONLY: ro->sock.v6only = true; return 0;
	case O_BASE_ADDR: ro->base_addr = true; return 0;
	case O_NO_SPLICE: ro->no_splice = true; return 0;
	case O_UDP_TIMEOUT:
		if (parse_seconds_ms(v, ARGS_MAX_SECONDS_MS, &u) || u == 0)
			return bad_value(err, errlen, d, v, "seconds greater than 0");
		ro->udp_timeout_ms = u;
		return 0;
	case O_MAX_SESSIONS:
		if (set_uint32(v, 1, 10000000, &ro->max_sessions))
			return bad_value(err, errlen, d, v, "a number from 1 to 10000000");
		return 0;
	case O_HASH_SIZE:
		if (set_uint32(v, 1, 1u << 24, &ro->hash_size))
			return bad_value(err, errlen, d, v, "a bucket count from 1 to 16777216");
		return 0;
	case O_MAX_DATAGRAM:
		if (set_uint32(v, 1, RULE_MAX_DATAGRAM_V6, &ro->max_datagram))
			return bad_value(err, errlen, d, v, "bytes from 1 to 65527");
		return 0;
	case O_TRANSPARENT: ro->transparent = true; return 0;
	case O_TPROXY: ro->tproxy = true; return 0;
	case O_SINGLE_CLIENT:
	case O_ON_TIMEOUT:
	case O_ICMP_SYNC_PPS:
	case O_ICMP_HANDSHAKE_TIMEOUT:
		return single_opt_apply(d, v, &ro->single, err, errlen);
	default:
		return kcp_opt_apply(d, v, &ro->kcp, err, errlen);
	}
	snprintf(err, errlen, "internal: unhandled option");
	return -EINVAL;
}

static int opt_check_scope(const struct opt_def *d, struct global_opts *g, char *err, size_t errlen)
{
	char label[40];

	if (d->global && !g) {
		opt_label(d, label, sizeof(label));
		snprintf(err, errlen, "option %s is not allowed in a rule line (give it on the command line)", label);
		return -EINVAL;
	}
	return 0;
}

int args_apply_long(const char *name, const char *v, struct global_opts *g, struct rule_opts *ro, char *err,
		    size_t errlen)
{
	const struct opt_def *d = opt_find_long(ferry_opts, name, strlen(name));
	int rc;

	if (!d) {
		snprintf(err, errlen, "internal: no option --%s", name);
		return -EINVAL;
	}
	rc = opt_check_scope(d, g, err, errlen);
	if (rc)
		return rc;
	return opt_apply(d, d->has_arg ? v : NULL, g, ro, err, errlen);
}

int args_parse(enum args_dialect dia, int n, char *const words[], struct global_opts *g, struct rule_opts *ro,
	       struct args_result *res, char *err, size_t errlen)
{
	const struct opt_def *table = dia == ARGS_TCPFWD ? tcpfwd_opts : dia == ARGS_UDPFWD ? udpfwd_opts :
				      dia == ARGS_KCPTCP_CLIENT || dia == ARGS_KCPTCP_SERVER ? kcptcp_opts : ferry_opts;
	bool only_pos = false;
	int rc;

	res->npos = 0;
	for (int i = 0; i < n; i++) {
		const char *w = words[i];
		const struct opt_def *d;

		if (only_pos || w[0] != '-' || w[1] == '\0') {
			if (res->npos == ARGS_POS_MAX) {
				snprintf(err, errlen, "too many arguments at \"%s\" (at most %d)", w, ARGS_POS_MAX);
				return -EINVAL;
			}
			res->pos[res->npos++] = w;
			continue;
		}
		if (!strcmp(w, "--")) {
			only_pos = true;
			continue;
		}
		if (w[1] == '-') {
			const char *name = w + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const char *v = eq ? eq + 1 : NULL;

			/* long options are ferry's in every dialect: only the letters differ */
			d = opt_find_long(ferry_opts, name, len);
			if (!d) {
				snprintf(err, errlen, "unknown option \"%s\" (see --help)", w);
				return -EINVAL;
			}
			rc = opt_check_scope(d, g, err, errlen);
			if (rc)
				return rc;
			if (d->has_arg && !v) {
				if (i + 1 == n) {
					snprintf(err, errlen, "option \"%s\" needs a value", w);
					return -EINVAL;
				}
				v = words[++i];
			} else if (!d->has_arg && v) {
				snprintf(err, errlen, "option \"--%s\" takes no value", d->name);
				return -EINVAL;
			}
			rc = opt_apply(d, v, g, ro, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		/* short options, possibly bundled: -dr, -p FILE, -pFILE */
		for (const char *p = w + 1; *p; p++) {
			d = opt_find_short(table, *p);
			if (!d) {
				snprintf(err, errlen, "unknown option \"-%c\" in \"%s\" (see --help)", *p, w);
				return -EINVAL;
			}
			rc = opt_check_scope(d, g, err, errlen);
			if (rc)
				return rc;
			if (d->has_arg) {
				const char *v = p[1] ? p + 1 : NULL;

				if (!v) {
					if (i + 1 == n) {
						snprintf(err, errlen, "option \"-%c\" needs a value", *p);
						return -EINVAL;
					}
					v = words[++i];
				}
				rc = opt_apply(d, v, g, ro, err, errlen);
				if (rc)
					return rc;
				break;
			}
			rc = opt_apply(d, NULL, g, ro, err, errlen);
			if (rc)
				return rc;
		}
	}
	/* --systemd may come after the targets: only now is it known how many are allowed */
	if (res->npos > 2 && !(g && g->systemd)) {
		snprintf(err, errlen, "unexpected argument \"%s\": a rule is LISTEN TARGET", res->pos[2]);
		return -EINVAL;
	}
	return 0;
}

static void rule_canon(struct rule *r)
{
	char l[EP_TEXT_MAX], t[EP_TEXT_MAX];
	const struct rule_opts *o = &r->o;

	endpoint_format(&r->listen, l, sizeof(l));
	endpoint_format(&r->target, t, sizeof(t));
	snprintf(r->desc, sizeof(r->desc), "%s -> %s", l, t);
	snprintf(r->canon, sizeof(r->canon),
		 "%s %s ct=%u it=%u mc=%u b=%d ns=%d sb=%d rb=%d ka=%d/%u/%u/%u ra=%d rp=%d v6=%d ut=%u ms=%u hs=%u md=%u "
		 "tr=%d tp=%d",
		 l, t, o->connect_timeout_ms, o->idle_timeout_ms, o->max_conns, o->base_addr, o->no_splice,
		 o->sock.sndbuf, o->sock.rcvbuf, o->sock.keepalive, o->sock.ka_idle_s, o->sock.ka_intvl_s,
		 o->sock.ka_cnt, o->sock.reuseaddr, o->sock.reuseport, o->sock.v6only, o->udp_timeout_ms,
		 o->max_sessions, o->hash_size, o->max_datagram, o->transparent, o->tproxy);
	if (r->listen.scheme == EP_KCP || r->target.scheme == EP_KCP) {
		const struct kcp_opts *k = &o->kcp;
		size_t used = strlen(r->canon);
		uint64_t psk_sum = 0;

		/* the key itself stays out of the text; a changed key still changes the rule */
		for (int i = 0; i < 32; i++)
			psk_sum = psk_sum * 131 + k->psk[i];
		snprintf(r->canon + used, sizeof(r->canon) - used,
			 " kcp=%d/%d/%d/%016llx/%d/%u/%u/%u/%d/%d/%d/%d/%d/%d/%u/%u/%u/%u/%s/%s/%d/%d/%d/%d/%u/%u/%llu",
			 k->profile, k->secure, k->insecure, (unsigned long long)psk_sum, k->mode, k->mtu, k->sndwnd,
			 k->rcvwnd, k->nodelay, k->interval, k->resend, k->nc, k->cc, k->acknodelay, k->sockbuf, k->keepalive_s,
			 k->streambuf + k->smuxbuf, k->max_streams, k->crypt, k->key, k->nocomp, k->ds, k->ps, k->smuxver, k->max_skew_s,
			 k->rekey_time_ms, (unsigned long long)k->rekey_packets);
	}
	if (o->single.on) {
		size_t used = strlen(r->canon);

		snprintf(r->canon + used, sizeof(r->canon) - used, " single=%d/%u/%u", o->single.on_timeout_exit,
			 o->single.sync_pps, o->single.handshake_timeout_ms);
	}
}

static bool schemes_pair(enum ep_scheme l, enum ep_scheme t)
{
	if (l == EP_FD)
		return t == EP_UDP || t == EP_TCP;
	/* the two ends of the ICMP tunnel; ICMP to ICMP (a relay hop) has no rule form */
	if (l == EP_ICMP || t == EP_ICMP)
		return (l == EP_UDP && t == EP_ICMP) || (l == EP_ICMP && t == EP_UDP);
	return l == t ? l != EP_KCP : (l == EP_TCP && t == EP_KCP) || (l == EP_KCP && t == EP_TCP);
}

static bool kcp_opts_touched(const struct kcp_opts *k)
{
	struct rule_opts d;

	rule_opts_default(&d);
	return memcmp(k, &d.kcp, sizeof(*k)) != 0;
}

/*
 * Checks the kcp:// options of a rule and fills in what the profile decides: kcptun's
 * defaults (spec/kcp.md §2.8, §1.13: mode fast, aes, FEC 10/3, compression, smux v1,
 * windows 128/512 as client and 1024/1024 as server) or ferry's (fast3, 1024/1024, smux
 * v2; secure when a PSK is given). Windows, mtu and the rest are validated here so that a
 * bad combination is a start-up error naming the option.
 */
static int kcp_opts_finish(struct rule *r, char *err, size_t errlen)
{
	struct kcp_opts *k = &r->o.kcp;
	bool server = r->listen.scheme == EP_KCP, kcptun = k->profile == KCP_PROFILE_KCPTUN;

	if (r->listen.scheme != EP_KCP && r->target.scheme != EP_KCP) {
		if (kcp_opts_touched(k)) {
			snprintf(err, errlen, "KCP options (--psk, --mode, --key, ...) are for rules with a kcp:// endpoint");
			return -EINVAL;
		}
		return 0;
	}
	if (r->o.base_addr) {
		snprintf(err, errlen, "--base-addr is for tcp:// to tcp:// rules only");
		return -EINVAL;
	}
	if (kcptun && (k->psk_set || k->secure)) {
		snprintf(err, errlen, "--psk/--secure select ferry's secure mode, which kcptun does not speak: "
			 "drop them or use --kcp-profile ferry");
		return -EINVAL;
	}
	if (!kcptun && (k->key_set || k->crypt[0] || k->nocomp || k->ds >= 0 || k->ps >= 0 || k->smuxver)) {
		snprintf(err, errlen, "--key, --crypt, --nocomp, --datashard, --parityshard and --smuxver are kcptun's "
			 "options: add --kcp-profile kcptun");
		return -EINVAL;
	}
	if (k->secure && !k->psk_set) {
		snprintf(err, errlen, "--secure needs a pre-shared key: --psk-file FILE or -K HEX (64 hex characters)");
		return -EINVAL;
	}
	k->secure = k->psk_set;
	if (!k->mode)
		k->mode = (kcptun ? KCP_MODE_FAST : KCP_MODE_FAST3) + 1;
	/* ferry↔ferry paces by delivery rate; the kcptun profile and an explicit --nc keep
	 * kcp-go's behaviour (presets: off; manual mode: --nc, default 0 = window). Sender-side
	 * only: either end may choose on its own. */
	if (!k->cc && k->nc >= 0)
		k->cc = k->nc ? KCP_CC_OFF : KCP_CC_WINDOW;
	else if (!k->cc && kcptun)
		k->cc = k->mode == KCP_MODE_MANUAL + 1 ? KCP_CC_WINDOW : KCP_CC_OFF;
	else if (!k->cc)
		k->cc = KCP_CC_RATE;
	if (!k->mtu)
		k->mtu = 1350;
	if (!k->sndwnd)
		k->sndwnd = kcptun && !server ? 128 : 1024;
	if (!k->rcvwnd)
		k->rcvwnd = kcptun && !server ? 512 : 1024;
	if (!k->keepalive_s)
		k->keepalive_s = 10;
	/* 4 MiB: a smaller v2 window caps one stream below what KCP carries at 50 ms RTT
	 * (1 MiB gave 70 Mbit/s, docs/PERFORMANCE.md); memory is only used while a TCP side is
	 * slower than the tunnel, and all streams of a session share --smuxbuf */
	if (!k->streambuf)
		k->streambuf = 4u << 20;
	if (!k->smuxbuf)
		k->smuxbuf = 8u << 20;
	if (!k->max_streams)
		k->max_streams = 65536;
	if (!k->sockbuf)
		k->sockbuf = 4u << 20;
	if (kcptun) {
		if (!k->crypt[0])
			snprintf(k->crypt, sizeof(k->crypt), "aes");
		if (!k->key_set) {
			const char *env = getenv("KCPTUN_KEY");

			snprintf(k->key, sizeof(k->key), "%s", env ? env : "it's a secrect");
		}
		if (k->ds < 0)
			k->ds = 10;
		if (k->ps < 0)
			k->ps = 3;
		if (!k->ds || !k->ps)
			k->ds = k->ps = 0;
		if (k->ds + k->ps > 255) {
			snprintf(err, errlen, "--datashard + --parityshard must be at most 255");
			return -EINVAL;
		}
		if (!k->smuxver)
			k->smuxver = 1;
	} else {
		k->smuxver = 2;
		k->ds = k->ps = 0;
	}
	if (!k->rekey_time_ms)
		k->rekey_time_ms = 120000;
	if (!k->rekey_packets)
		k->rekey_packets = 1ull << 60;
	return 0;
}

/* The multi-client udp:// options a single-client rule has no use for. */
static bool udp_session_opts_touched(const struct rule_opts *o)
{
	struct rule_opts d;

	rule_opts_default(&d);
	return o->udp_timeout_ms != d.udp_timeout_ms || o->max_sessions != d.max_sessions || o->hash_size != d.hash_size;
}

/*
 * Single-client rules (spec/pkthere.md §2): udp:// to udp:// with --single-client, or a
 * tunnel end (udp:// to icmp://, icmp:// to udp://). Checks their options and fills in
 * pkthere's defaults: idle timeout 10 s, handshake timeout = the idle timeout (at most
 * 3600 s; 10 s when the idle timeout is off).
 */
static int single_opts_finish(struct rule *r, char *err, size_t errlen)
{
	struct rule_opts *o = &r->o;
	struct single_rule_opts *so = &o->single;
	bool icmp = r->listen.scheme == EP_ICMP || r->target.scheme == EP_ICMP;

	if (icmp)
		so->on = true;
	if (!so->on) {
		if (so->on_timeout_exit || so->sync_pps || so->handshake_timeout_ms) {
			snprintf(err, errlen, "--on-timeout, --icmp-sync-pps and --icmp-handshake-timeout are for single-client "
				 "rules (--single-client, or an icmp:// endpoint)");
			return -EINVAL;
		}
		return 0;
	}
	if (!icmp && (r->listen.scheme != EP_UDP || r->target.scheme != EP_UDP)) {
		snprintf(err, errlen, "--single-client is for udp:// to udp:// rules (an icmp:// endpoint implies it)");
		return -EINVAL;
	}
	if (so->sync_pps && r->target.scheme != EP_ICMP) {
		snprintf(err, errlen, "--icmp-sync-pps is for rules with an icmp:// target (the tunnel's client end)");
		return -EINVAL;
	}
	if (so->handshake_timeout_ms && !icmp) {
		snprintf(err, errlen, "--icmp-handshake-timeout is for rules with an icmp:// endpoint");
		return -EINVAL;
	}
	if (o->transparent || o->tproxy || o->base_addr || o->no_splice) {
		snprintf(err, errlen, "%s is not for single-client rules", o->transparent ? "--transparent" :
			 o->tproxy ? "--tproxy" : o->base_addr ? "--base-addr" : "--no-splice");
		return -EINVAL;
	}
	if (udp_session_opts_touched(o)) {
		snprintf(err, errlen, "--udp-timeout, --max-sessions and --hash-size are for multi-client udp:// rules; "
			 "a single-client rule lets its client go after --idle-timeout");
		return -EINVAL;
	}
	if (!o->idle_timeout_set)
		o->idle_timeout_ms = RULE_SINGLE_TIMEOUT_MS;
	if (!so->handshake_timeout_ms)
		so->handshake_timeout_ms = !o->idle_timeout_ms ? RULE_SINGLE_TIMEOUT_MS :
					   o->idle_timeout_ms < RULE_SINGLE_HANDSHAKE_MAX_MS ? o->idle_timeout_ms :
					   RULE_SINGLE_HANDSHAKE_MAX_MS;
	return 0;
}

int rule_build(enum args_dialect dia, const char *listen, const char *target, const struct rule_opts *ro,
	       struct rule **out, char *err, size_t errlen)
{
	struct rule *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (dia != ARGS_FERRY) {
		bool kcp_server = dia == ARGS_KCPTCP_SERVER || dia == ARGS_KCPTUN_SERVER;
		bool kcp_client = dia == ARGS_KCPTCP_CLIENT || dia == ARGS_KCPTUN_CLIENT;
		enum ep_scheme ls = dia == ARGS_UDPFWD ? EP_UDP : kcp_server ? EP_KCP : EP_TCP;
		enum ep_scheme ts = dia == ARGS_UDPFWD ? EP_UDP : kcp_client ? EP_KCP : EP_TCP;

		rc = endpoint_parse_bare(listen, ls, &r->listen, err, errlen);
		if (!rc)
			rc = endpoint_parse_bare(target, ts, &r->target, err, errlen);
	} else {
		rc = endpoint_parse(listen, &r->listen, err, errlen);
		if (!rc)
			rc = endpoint_parse(target, &r->target, err, errlen);
	}
	if (!rc && r->target.scheme == EP_FD) {
		snprintf(err, errlen, "fd:// in \"%s\" is an inherited listening socket, not a target: write it first "
			 "(fd://NAME udp://HOST:PORT)", target);
		rc = -EINVAL;
	}
	if (!rc && !schemes_pair(r->listen.scheme, r->target.scheme)) {
		snprintf(err, errlen, "cannot forward %s:// to %s:// in \"%s %s\": use tcp:// to tcp://, udp:// to udp://, "
			 "tcp:// to kcp:// or kcp:// to tcp:// (fd:// to udp:// or tcp://; udp:// to icmp:// or icmp:// to udp://)", endpoint_scheme_name(r->listen.scheme),
			 endpoint_scheme_name(r->target.scheme), listen, target);
		rc = -EINVAL;
	}
	if (!rc && (ro->transparent || ro->tproxy) && (r->listen.scheme == EP_KCP || r->target.scheme == EP_KCP)) {
		snprintf(err, errlen, "%s is for tcp:// and udp:// rules only", ro->transparent ? "--transparent" : "--tproxy");
		rc = -EINVAL;
	}
	if (!rc && rule_datagram(r) && (ro->base_addr || ro->no_splice)) {
		snprintf(err, errlen, "%s is for tcp:// rules only", ro->base_addr ? "--base-addr" : "--no-splice");
		rc = -EINVAL;
	}
	r->o = *ro;
	if (!rc)
		rc = kcp_opts_finish(r, err, errlen);
	if (!rc)
		rc = single_opts_finish(r, err, errlen);
	if (rc) {
		free(r);
		return rc;
	}
	r->refs = 1;
	rule_canon(r);
	*out = r;
	return 0;
}

int rule_resolve(struct rule *r, char *err, size_t errlen)
{
	/* an fd:// listener has the inherited socket's address, set when it was attached */
	int rc = endpoint_resolve(&r->listen, 1, err, errlen);

	if (!rc)
		rc = endpoint_resolve(&r->target, 0, err, errlen);
	/* the limit depends on the families, known only now (pkthere checks it after DNS too) */
	if (!rc && rule_single(r) && r->o.max_datagram > rule_single_max_datagram(r)) {
		snprintf(err, errlen, "%s: --max-datagram %u is more than the largest datagram this rule can carry (%u)",
			 r->desc, r->o.max_datagram, rule_single_max_datagram(r));
		rc = -EINVAL;
	}
	return rc;
}

void rules_free(struct rule **rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rules[i])
			rule_unref(rules[i]);
	free(rules);
}
