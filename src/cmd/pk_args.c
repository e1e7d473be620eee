/*
 * pkthere's command line (spec/pkthere.md §1.1-1.3): a left-to-right scan where every
 * value option takes the next argv element verbatim and syntax errors stop at the first
 * bad word; then the required endpoints, DNS, and the cross-option checks in pkthere's
 * order. Messages are pkthere's, word for word, because its test suite greps them.
 * This file neither prints (except the usage) nor opens sockets; main decides.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmd/pk_args.h"
#include "net/endpoint.h"

/* Defaults and limits of §1.3. */
#define PK_DEFAULT_TIMEOUT_SECS 10
#define PK_DEFAULT_STATS_INTERVAL_MINS 60
#define PK_DEFAULT_MAX_PAYLOAD_BYTES 1500
#define PK_DEFAULT_POOL_SIZE 4
#define PK_MAX_POOL_SIZE 32
#define PK_MAX_WORKERS 256
#define PK_MAX_HANDSHAKE_TIMEOUT_SECS 3600

/*
 * Largest user payload: 65535 - IP header (20 for v4; 0 for v6, whose payload length
 * excludes it) - 8 (UDP or ICMP header) - 11 (largest data shim, ICMP only).
 */
#define PK_MAX_PAYLOAD_UDP4_BYTES 65507
#define PK_MAX_PAYLOAD_UDP6_BYTES 65527
#define PK_MAX_PAYLOAD_ICMP4_BYTES 65496
#define PK_MAX_PAYLOAD_ICMP6_BYTES 65516

/* Maxima of the Rust types pkthere parses into (usize is 64-bit on the targets we build). */
#define PK_U16_MAX UINT64_C(0xffff)
#define PK_U32_MAX UINT64_C(0xffffffff)
#define PK_U64_MAX UINT64_MAX

#define PK_ENDPOINT_SYNTAX "UDP:<host>:<id> or ICMP:<host>:<id>"

enum pk_opt {
	OPT_HERE, OPT_THERE,
	OPT_HERE_SOURCE_ID, OPT_HERE_REPLY_ID, OPT_THERE_SOURCE_ID, OPT_THERE_REPLY_ID,
	OPT_TIMEOUT_SECS, OPT_HANDSHAKE_TIMEOUT_SECS, OPT_ON_TIMEOUT, OPT_STATS_INTERVAL_MINS,
	OPT_MAX_PAYLOAD, OPT_SYNC_PPS, OPT_POOL_SIZE,
	OPT_WORKERS, OPT_WORKER_FLOW_MODE, OPT_RERESOLVE_SECS, OPT_RERESOLVE_MODE,
	OPT_RERESOLVE_ADDRESS_FILE, OPT_USER, OPT_GROUP,
	OPT_DEBUG_CLIENT_UNCONNECTED, OPT_DEBUG_UPSTREAM_UNCONNECTED, OPT_DEBUG_KERNEL_ECHO,
	OPT_DEBUG_FORCE_RAW, OPT_DEBUG_FAST_STATS, OPT_DEBUG_LOG,
	OPT_COUNT,
};

struct pk_opt_def {
	const char *name;
	enum pk_opt id;
	bool has_value;
	bool repeatable;	/* --debug-log and the boolean --debug-* flags */
};

static const struct pk_opt_def pk_opts[] = {
	{ "--here", OPT_HERE, true, false },
	{ "--there", OPT_THERE, true, false },
	{ "--here-source-id", OPT_HERE_SOURCE_ID, true, false },
	{ "--here-reply-id", OPT_HERE_REPLY_ID, true, false },
	{ "--there-source-id", OPT_THERE_SOURCE_ID, true, false },
	{ "--there-reply-id", OPT_THERE_REPLY_ID, true, false },
	{ "--timeout-secs", OPT_TIMEOUT_SECS, true, false },
	{ "--icmp-handshake-timeout-secs", OPT_HANDSHAKE_TIMEOUT_SECS, true, false },
	{ "--on-timeout", OPT_ON_TIMEOUT, true, false },
	{ "--stats-interval-mins", OPT_STATS_INTERVAL_MINS, true, false },
	{ "--max-payload", OPT_MAX_PAYLOAD, true, false },
	{ "--icmp-sync-pps", OPT_SYNC_PPS, true, false },
	{ "--icmp-session-pool-size", OPT_POOL_SIZE, true, false },
	{ "--workers", OPT_WORKERS, true, false },
	{ "--worker-flow-mode", OPT_WORKER_FLOW_MODE, true, false },
	{ "--reresolve-secs", OPT_RERESOLVE_SECS, true, false },
	{ "--reresolve-mode", OPT_RERESOLVE_MODE, true, false },
	{ "--debug-reresolve-address-file", OPT_RERESOLVE_ADDRESS_FILE, true, false },
	{ "--user", OPT_USER, true, false },
	{ "--group", OPT_GROUP, true, false },
	{ "--debug-client-unconnected", OPT_DEBUG_CLIENT_UNCONNECTED, false, true },
	{ "--debug-upstream-unconnected", OPT_DEBUG_UPSTREAM_UNCONNECTED, false, true },
	{ "--debug-icmp-kernel-echo-self-handshake", OPT_DEBUG_KERNEL_ECHO, false, true },
	{ "--debug-force-raw-icmp-wildcard-upstream", OPT_DEBUG_FORCE_RAW, false, true },
	{ "--debug-fast-stats", OPT_DEBUG_FAST_STATS, false, true },
	{ "--debug-log", OPT_DEBUG_LOG, true, true },
};

static const struct {
	const char *word;
	unsigned bit;
} pk_log_words[] = {
	{ "drops", PK_LOG_DROPS },
	{ "handshake", PK_LOG_HANDSHAKE },
	{ "handles", PK_LOG_HANDLES },
	{ "packets", PK_LOG_PACKETS },
	{ "packet-dump", PK_LOG_PACKET_DUMP },
};

static const char *const pk_reresolve_words[] = {
	[PK_RERESOLVE_UPSTREAM] = "upstream",
	[PK_RERESOLVE_LISTEN] = "listen",
	[PK_RERESOLVE_BOTH] = "both",
	[PK_RERESOLVE_NONE] = "none",
};

/* What the scan has seen so far; the config alone cannot say "given" for --icmp-sync-pps 0. */
struct pk_scan {
	struct pk_config *c;
	bool seen[OPT_COUNT];
	const char *host[2];	/* --here, --there host as written (may not fit c->*.host) */
	size_t host_len[2];
	char *err;
	size_t errlen;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 2, 3)))
static int pk_fail(struct pk_scan *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, st->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void pk_config_default(struct pk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->here_source_id = PK_ID_UNSET;
	c->here_reply_id = PK_ID_UNSET;
	c->there_source_id = PK_ID_UNSET;
	c->there_reply_id = PK_ID_UNSET;
	c->timeout_secs = PK_DEFAULT_TIMEOUT_SECS;
	c->handshake_timeout_secs = PK_DEFAULT_TIMEOUT_SECS;
	c->stats_interval_mins = PK_DEFAULT_STATS_INTERVAL_MINS;
	c->max_payload = PK_DEFAULT_MAX_PAYLOAD_BYTES;
	c->pool_size = PK_DEFAULT_POOL_SIZE;
	c->workers = 1;
	c->reresolve_mode = PK_RERESOLVE_UPSTREAM;
}

/*
 * Rust's FromStr for an unsigned integer: an optional '+', then decimal digits only,
 * checked left to right. Returns NULL, or the text Rust's ParseIntError displays.
 */
static const char *pk_uint_parse(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return "cannot parse integer from empty string";
	if (*s == '+' && s[1])
		s++;
	for (; *s; s++) {
		unsigned d = (unsigned)(unsigned char)*s - '0';

		if (d > 9)
			return "invalid digit found in string";
		if (v > (max - d) / 10)
			return "number too large to fit in target type";
		v = v * 10 + d;
	}
	*out = v;
	return NULL;
}

static int pk_number(struct pk_scan *st, const char *flag, const char *value, uint64_t max, uint64_t *out)
{
	const char *why = pk_uint_parse(value, max, out);

	if (why)
		return pk_fail(st, "invalid %s: %s", flag, why);
	return 0;
}

/* §1.2: PROTO:HOST:ID, IPv6 hosts bracketed (brackets kept), ID a decimal u16. */
static int pk_endpoint_parse(struct pk_scan *st, const char *flag, const char *s, int side)
{
	struct pk_endpoint *ep = side ? &st->c->there : &st->c->here;
	const char *colon = strchr(s, ':'), *rest, *id, *why;
	size_t host_len;
	uint64_t v;

	if (colon && colon - s == 3 && !strncasecmp(s, "udp", 3))
		ep->proto = PK_UDP;
	else if (colon && colon - s == 4 && !strncasecmp(s, "icmp", 4))
		ep->proto = PK_ICMP;
	else
		return pk_fail(st, "%s must be " PK_ENDPOINT_SYNTAX " (got '%s')", flag, s);
	rest = colon + 1;
	if (!*rest)
		return pk_fail(st, "%s requires a non-empty host", flag);

	if (*rest == '[') {
		const char *close = strchr(rest, ']');

		if (!close)
			return pk_fail(st, "%s invalid IPv6 address: missing closing ']' (got '%s')", flag, s);
		host_len = (size_t)(close + 1 - rest);
		if (close[1] != ':')
			return pk_fail(st, "%s must be " PK_ENDPOINT_SYNTAX, flag);
		id = close + 2;
	} else if (strstr(rest, "::")) {
		if (ep->proto == PK_ICMP)
			return pk_fail(st, "%s ICMP IPv6 addresses must use brackets", flag);
		return pk_fail(st, "%s IPv6 addresses must use brackets", flag);
	} else {
		colon = strchr(rest, ':');
		if (!colon)
			return pk_fail(st, "%s must be " PK_ENDPOINT_SYNTAX, flag);
		host_len = (size_t)(colon - rest);
		id = colon + 1;
	}
	if (!host_len || !*id || strchr(id, ':'))
		return pk_fail(st, "%s must contain exactly one endpoint ID in " PK_ENDPOINT_SYNTAX, flag);
	why = pk_uint_parse(id, PK_U16_MAX, &v);
	if (why)
		return pk_fail(st, "invalid %s endpoint ID: %s", flag, why);

	ep->id = (uint16_t)v;
	st->host[side] = rest;
	st->host_len[side] = host_len;
	/* Too long for ep->host means too long for DNS too; resolution reports it. */
	if (host_len < sizeof(ep->host))
		snprintf(ep->host, sizeof(ep->host), "%.*s", (int)host_len, rest);
	else
		ep->host[0] = '\0';
	return 0;
}

static int pk_id_option(struct pk_scan *st, const char *flag, const char *value, int32_t *out)
{
	uint64_t v;
	int err = pk_number(st, flag, value, PK_U16_MAX, &v);

	if (!err)
		*out = (int32_t)v;
	return err;
}

static int pk_word_index(const char *value, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(value, words[i]))
			return (int)i;
	return -1;
}

static int pk_debug_log(struct pk_scan *st, const char *value)
{
	for (size_t i = 0; i < N(pk_log_words); i++) {
		if (!strcmp(value, pk_log_words[i].word)) {
			st->c->debug_log |= pk_log_words[i].bit;
			return 0;
		}
	}
	return pk_fail(st, "--debug-log expects exactly one of drops, handshake, handles, packets, or "
		       "packet-dump per flag occurrence (got '%s')", value);
}

/* Range checks that pkthere makes while scanning, before the duplicate check. */
static int pk_sized_option(struct pk_scan *st, enum pk_opt id, const char *flag, const char *value)
{
	struct pk_config *c = st->c;
	uint64_t v;
	int err = pk_number(st, flag, value, PK_U64_MAX, &v);

	if (err)
		return err;
	switch (id) {
	case OPT_MAX_PAYLOAD:
		if (v > PK_MAX_PAYLOAD_UDP6_BYTES)
			return pk_fail(st, "--max-payload must be <= %d (requested %llu)",
				       PK_MAX_PAYLOAD_UDP6_BYTES, (unsigned long long)v);
		c->max_payload = (size_t)v;
		return 0;
	case OPT_POOL_SIZE:
		if (v < 1 || v > PK_MAX_POOL_SIZE)
			return pk_fail(st, "--icmp-session-pool-size must be between 1 and %d", PK_MAX_POOL_SIZE);
		c->pool_size = (unsigned)v;
		return 0;
	default:	/* OPT_WORKERS */
		if (v < 1 || v > PK_MAX_WORKERS)
			return pk_fail(st, "--workers must be between 1 and %d", PK_MAX_WORKERS);
		c->workers = (unsigned)v;
		return 0;
	}
}

/* Validates one option's value and stores it; the duplicate check comes after, as in pkthere. */
static int pk_opt_apply(struct pk_scan *st, const struct pk_opt_def *o, const char *value)
{
	static const char *const flow_words[] = { "shared-flow", "single-flow" };
	struct pk_config *c = st->c;
	uint64_t v = 0;
	int err, i;

	switch (o->id) {
	case OPT_HERE:
		return pk_endpoint_parse(st, o->name, value, 0);
	case OPT_THERE:
		return pk_endpoint_parse(st, o->name, value, 1);
	case OPT_HERE_SOURCE_ID:
		return pk_id_option(st, o->name, value, &c->here_source_id);
	case OPT_HERE_REPLY_ID:
		return pk_id_option(st, o->name, value, &c->here_reply_id);
	case OPT_THERE_SOURCE_ID:
		return pk_id_option(st, o->name, value, &c->there_source_id);
	case OPT_THERE_REPLY_ID:
		return pk_id_option(st, o->name, value, &c->there_reply_id);
	case OPT_TIMEOUT_SECS:
		return pk_number(st, o->name, value, PK_U64_MAX, &c->timeout_secs);
	case OPT_HANDSHAKE_TIMEOUT_SECS:
		return pk_number(st, o->name, value, PK_U64_MAX, &c->handshake_timeout_secs);
	case OPT_RERESOLVE_SECS:
		return pk_number(st, o->name, value, PK_U64_MAX, &c->reresolve_secs);
	case OPT_STATS_INTERVAL_MINS:
		err = pk_number(st, o->name, value, PK_U32_MAX, &v);
		c->stats_interval_mins = (uint32_t)v;
		return err;
	case OPT_SYNC_PPS:
		err = pk_number(st, o->name, value, PK_U32_MAX, &v);
		c->icmp_sync_pps = (uint32_t)v;
		return err;
	case OPT_MAX_PAYLOAD:
	case OPT_POOL_SIZE:
	case OPT_WORKERS:
		return pk_sized_option(st, o->id, o->name, value);
	case OPT_ON_TIMEOUT:
		/* case-sensitive, unlike the other word options */
		if (strcmp(value, "drop") && strcmp(value, "exit"))
			return pk_fail(st, "--on-timeout must be drop|exit");
		c->on_timeout_exit = !strcmp(value, "exit");
		return 0;
	case OPT_WORKER_FLOW_MODE:
		i = pk_word_index(value, flow_words, N(flow_words));
		if (i < 0)
			return pk_fail(st, "--worker-flow-mode must be shared-flow|single-flow (got '%s')", value);
		c->single_flow = i == 1;
		return 0;
	case OPT_RERESOLVE_MODE:
		i = pk_word_index(value, pk_reresolve_words, N(pk_reresolve_words));
		if (i < 0)
			return pk_fail(st, "--reresolve-mode must be upstream|listen|both|none (got '%s')", value);
		c->reresolve_mode = (enum pk_reresolve_mode)i;
		return 0;
	case OPT_RERESOLVE_ADDRESS_FILE:
		c->reresolve_address_file = value;
		return 0;
	case OPT_USER:
		c->user = value;
		return 0;
	case OPT_GROUP:
		c->group = value;
		return 0;
	case OPT_DEBUG_CLIENT_UNCONNECTED:
		c->debug_client_unconnected = true;
		return 0;
	case OPT_DEBUG_UPSTREAM_UNCONNECTED:
		c->debug_upstream_unconnected = true;
		return 0;
	case OPT_DEBUG_KERNEL_ECHO:
		c->debug_kernel_echo_self_handshake = true;
		return 0;
	case OPT_DEBUG_FORCE_RAW:
		c->debug_force_raw_wildcard_upstream = true;
		return 0;
	case OPT_DEBUG_FAST_STATS:
		c->debug_fast_stats = true;
		return 0;
	case OPT_DEBUG_LOG:
		return pk_debug_log(st, value);
	case OPT_COUNT:
		break;
	}
	return -EINVAL;
}

static const struct pk_opt_def *pk_opt_find(const char *arg)
{
	for (size_t i = 0; i < N(pk_opts); i++)
		if (!strcmp(arg, pk_opts[i].name))
			return &pk_opts[i];
	return NULL;
}

/*
 * getaddrinfo on ep->host without its brackets; the first answer, whatever its family,
 * with the ID as port. Used at start and by --reresolve-secs.
 */
static int pk_resolve(struct pk_endpoint *ep, const char *flag, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM }, *res;
	char name[sizeof(ep->host)];
	size_t len = strlen(ep->host);
	int rc;

	if (ep->host[0] == '[' && len >= 2)
		snprintf(name, sizeof(name), "%.*s", (int)len - 2, ep->host + 1);
	else
		snprintf(name, sizeof(name), "%s", ep->host);
	rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s: failed to resolve %s:%u: failed to lookup address information: %s",
			 flag, ep->host, ep->id, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EINVAL;
	}
	memset(&ep->addr, 0, sizeof(ep->addr));
	memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
	sockaddr_set_port((struct sockaddr *)&ep->addr, ep->id);
	freeaddrinfo(res);
	return 0;
}

static int pk_endpoint_resolve(struct pk_scan *st, const char *flag, int side)
{
	struct pk_endpoint *ep = side ? &st->c->there : &st->c->here;
	size_t len = st->host_len[side];

	/* ep->host stayed empty for a name this long (pk_endpoint_parse); DNS would refuse it anyway */
	if (len >= sizeof(ep->host))
		return pk_fail(st, "%s: failed to resolve %.*s:%u: host name longer than %zu bytes",
			       flag, (int)len, st->host[side], ep->id, sizeof(ep->host) - 1);
	return pk_resolve(ep, flag, st->err, st->errlen);
}

/* The cross-option checks, in pkthere's order (§1.3 "Order of validation"). */
static int pk_protocol_check(struct pk_scan *st)
{
	const struct pk_config *c = st->c;
	bool here_udp = c->here.proto == PK_UDP, there_udp = c->there.proto == PK_UDP;

	if (here_udp && (st->seen[OPT_HERE_SOURCE_ID] || st->seen[OPT_HERE_REPLY_ID]))
		return pk_fail(st, "UDP listeners use the --here UDP:<host>:<port> endpoint ID only; "
			       "--here-source-id/--here-reply-id are ICMP-only");
	if (there_udp && st->seen[OPT_THERE_REPLY_ID])
		return pk_fail(st, "UDP upstreams do not support --there-reply-id");
	if (st->seen[OPT_SYNC_PPS] && there_udp)
		return pk_fail(st, "--icmp-sync-pps requires --there ICMP:<host>:<id>");
	if (st->seen[OPT_POOL_SIZE] && here_udp && there_udp)
		return pk_fail(st, "--icmp-session-pool-size requires an ICMP listener or upstream");
	if (c->debug_kernel_echo_self_handshake && there_udp)
		return pk_fail(st, "--debug-icmp-kernel-echo-self-handshake requires --there ICMP:<host>:<id>");
	if (c->debug_force_raw_wildcard_upstream && (there_udp || c->there.id != 0 || c->there_reply_id > 0))
		return pk_fail(st, "--debug-force-raw-icmp-wildcard-upstream requires wildcard --there ICMP:<host>:0");
	if (there_udp && c->there.id == 0)
		return pk_fail(st, "--there UDP:host:0 is invalid: UDP upstream requires a fixed remote destination port");
	return 0;
}

static enum pk_parse_result pk_args_finish(struct pk_scan *st)
{
	struct pk_config *c = st->c;
	size_t limit;

	if (!st->seen[OPT_HERE]) {
		pk_fail(st, "missing required flag: --here UDP:<host>:<id>|ICMP:<host>:<id>");
		return PK_PARSE_USAGE_ERROR;
	}
	if (!st->seen[OPT_THERE]) {
		pk_fail(st, "missing required flag: --there UDP:<host>:<id>|ICMP:<host>:<id>");
		return PK_PARSE_USAGE_ERROR;
	}
	if (pk_endpoint_resolve(st, "--here", 0) || pk_endpoint_resolve(st, "--there", 1))
		return PK_PARSE_RESOLVE_ERROR;
	if (pk_protocol_check(st))
		return PK_PARSE_USAGE_ERROR;
	if (!st->seen[OPT_HANDSHAKE_TIMEOUT_SECS])
		c->handshake_timeout_secs = c->timeout_secs;
	if (c->handshake_timeout_secs > PK_MAX_HANDSHAKE_TIMEOUT_SECS) {
		pk_fail(st, "--icmp-handshake-timeout-secs must be <= %d", PK_MAX_HANDSHAKE_TIMEOUT_SECS);
		return PK_PARSE_USAGE_ERROR;
	}
	limit = pk_max_payload_limit(c);
	if (c->max_payload > limit) {
		pk_fail(st, "--max-payload %zu exceeds the maximum supported by the selected protocols and "
			"address families (%zu)", c->max_payload, limit);
		return PK_PARSE_USAGE_ERROR;
	}
	return PK_PARSE_OK;
}

enum pk_parse_result pk_args_parse(int argc, char **argv, struct pk_config *c, char *err, size_t errlen)
{
	struct pk_scan st = { .c = c, .err = err, .errlen = errlen };

	pk_config_default(c);
	if (errlen)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const struct pk_opt_def *o = pk_opt_find(argv[i]);
		const char *value = NULL;

		if (!o) {
			if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
				return PK_PARSE_HELP;
			pk_fail(&st, "unknown arg: %s", argv[i]);
			return PK_PARSE_USAGE_ERROR;
		}
		if (o->has_value) {
			if (i + 1 >= argc) {
				pk_fail(&st, "%s requires a value", o->name);
				return PK_PARSE_USAGE_ERROR;
			}
			value = argv[++i];
		}
		if (pk_opt_apply(&st, o, value))
			return PK_PARSE_USAGE_ERROR;
		if (st.seen[o->id] && !o->repeatable) {
			pk_fail(&st, "%s specified multiple times", o->name);
			return PK_PARSE_USAGE_ERROR;
		}
		st.seen[o->id] = true;
	}
	return pk_args_finish(&st);
}

bool pk_args_wanted(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--here") || !strcmp(argv[i], "--there"))
			return true;
	return false;
}

size_t pk_max_payload_limit(const struct pk_config *c)
{
	bool v4 = c->here.addr.ss_family == AF_INET || c->there.addr.ss_family == AF_INET;
	bool icmp = c->here.proto == PK_ICMP || c->there.proto == PK_ICMP;

	if (v4)
		return icmp ? PK_MAX_PAYLOAD_ICMP4_BYTES : PK_MAX_PAYLOAD_UDP4_BYTES;
	return icmp ? PK_MAX_PAYLOAD_ICMP6_BYTES : PK_MAX_PAYLOAD_UDP6_BYTES;
}

/* Our own wording; pkthere's tests only look for the option spellings (spec §5.1 item 25). */
static const char *const pk_usage_lines[] = {
	"Relays one client's datagrams between the --here listener and the --there upstream.",
	"protocol is UDP or ICMP in any case; an IPv6 host goes in brackets, e.g. UDP:[::1]:53.",
	"Endpoints:",
	"  --here UDP:host:0            listen on a UDP port chosen by the kernel",
	"  --here UDP:host:port         listen on this UDP port",
	"  --here ICMP:host:D           accept tunnel Echo Requests sent to echo id D (0: learn the first peer's id)",
	"  --there UDP:host:port        send to this fixed UDP port (port 0 is refused)",
	"  --there ICMP:host:D          tunnel to the peer listening on echo id D (0: use the kernel's ping socket id)",
	"Endpoint ids (0 means wildcard or generated):",
	"  --here-source-id S           ICMP listener: source id written in the frames it sends (default: listen id)",
	"  --here-reply-id R            ICMP listener: id it tells the client to reply to (default: listen id)",
	"  --there-source-id S          UDP upstream: local port to bind; ICMP upstream: source id carried in frames",
	"  --there-reply-id R           ICMP upstream: local id the peer must send replies to, announced at handshake",
	"Timers:",
	"  --timeout-secs N             idle time before the locked client is released (default: 10)",
	"  --icmp-handshake-timeout-secs N",
	"                               how long an ICMP id handshake may take, at most 3600 (default: --timeout-secs)",
	"  --on-timeout drop|exit       on idle timeout wait for a new client, or exit with status 0 (default: drop)",
	"  --stats-interval-mins N      print JSON counters every N minutes, 0 for never (default: 60)",
	"Sizes and pacing:",
	"  --max-payload N              largest datagram relayed, in bytes (default: 1500)",
	"  --icmp-sync-pps N            ICMP upstream: sync requests per second, shared by all workers (default: 0, off)",
	"  --icmp-session-pool-size N   ICMP: sessions kept ready per direction, 1 to 32 (default: 4)",
	"Threads:",
	"  --workers N                  listener/upstream thread pairs, 1 to 256 (default: 1)",
	"  --worker-flow-mode MODE      shared-flow (default): the pairs share one locked client;",
	"                               single-flow: each pair locks its own client and keeps its own ICMP sync state",
	"Re-resolution:",
	"  --reresolve-secs N           look the host names up again every N seconds, 0 for never (default: 0)",
	"  --reresolve-mode MODE        which side to look up again: upstream, listen, both or none (default: upstream)",
	"Privileges:",
	"  --user NAME                  run as this user once the sockets are open (required when started as root)",
	"  --group NAME                 run as this group once the sockets are open",
	"Debugging and tests:",
	"  --debug-reresolve-address-file PATH",
	"                               take re-resolution answers from this JSON file instead of DNS",
	"  --debug-client-unconnected   leave the listener socket unconnected after the client locks",
	"  --debug-upstream-unconnected leave the upstream socket unconnected and address every send",
	"  --debug-icmp-kernel-echo-self-handshake",
	"                               let an ICMP upstream complete its handshake on the kernel's own Echo Replies",
	"  --debug-force-raw-icmp-wildcard-upstream",
	"                               use a raw socket for --there ICMP:host:0",
	"  --debug-fast-stats           print counters every second",
	"  --debug-log WHAT             one of drops, handshake, handles, packets, packet-dump; repeat for more",
	"  -h, --help                   print this text and exit",
};

void pk_args_usage(FILE *f, const char *argv0)
{
	fprintf(f, "[ERROR] Usage: %s --here <protocol:host:id> --there <protocol:host:id>\n", argv0);
	for (size_t i = 0; i < N(pk_usage_lines); i++)
		fprintf(f, "[ERROR] %s\n", pk_usage_lines[i]);
}

int pk_args_resolve_again(struct pk_config *c, char *err, size_t errlen)
{
	int r = pk_resolve(&c->here, "--here", err, errlen);

	return r ? r : pk_resolve(&c->there, "--there", err, errlen);
}
