/*
 * cmd/pk_args: pkthere's command line. One row per parsing item of the CLI checklist in
 * spec/pkthere.md §5.1 (named cli_NN_...), then rows for the rules of §1.1-1.3 that the
 * checklist does not reach (Rust number parsing, endpoint syntax, validation order).
 * A failing row asserts the result code and a substring of the message; a passing row
 * asserts every config field that differs from pkthere's defaults, so a value that lands
 * in the wrong field shows up as a diff. Hosts are numeric so nothing needs DNS, except
 * the one *.invalid name that must fail to resolve.
 */
#include <arpa/inet.h>
#include <stdlib.h>

#include "cmd/pk_args.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define WORDS_MAX 40

/* The base topologies most rows add options to, and how describe() prints them. */
#define UDP4 "--here UDP:127.0.0.1:1 --there UDP:127.0.0.1:53 "
#define UDP4_D "here=UDP:127.0.0.1:1(127.0.0.1:1) there=UDP:127.0.0.1:53(127.0.0.1:53)"
#define RUN4 "--here UDP:127.0.0.1:0 --there UDP:127.0.0.1:9 "
#define RUN4_D "here=UDP:127.0.0.1:0(127.0.0.1:0) there=UDP:127.0.0.1:9(127.0.0.1:9)"
#define ICMP4 "--here UDP:127.0.0.1:1 --there ICMP:127.0.0.1:0 "
#define ICMP4_D "here=UDP:127.0.0.1:1(127.0.0.1:1) there=ICMP:127.0.0.1:0(127.0.0.1:0)"

enum { OK = PK_PARSE_OK, HELP = PK_PARSE_HELP, USAGE = PK_PARSE_USAGE_ERROR, RESOLVE = PK_PARSE_RESOLVE_ERROR };

struct words {
	char buf[1024];
	char *w[WORDS_MAX];
	int n;
};

/* argv for "ferry <text>": split on spaces; the word "" stands for an empty argument. */
static void words_split(struct words *ws, const char *text)
{
	char *save = NULL, *tok;

	snprintf(ws->buf, sizeof(ws->buf), "%s", text);
	ws->w[0] = "ferry";
	ws->n = 1;
	for (tok = strtok_r(ws->buf, " ", &save); tok && ws->n < WORDS_MAX; tok = strtok_r(NULL, " ", &save))
		ws->w[ws->n++] = strcmp(tok, "\"\"") ? tok : tok + 2;
}

#define ADD(...) (n += (size_t)snprintf(out + n, len > n ? len - n : 0, __VA_ARGS__))

static void endpoint_describe(const char *side, const struct pk_endpoint *ep, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	size_t n = strlen(out);

	if (ep->addr.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ep->addr;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
		ADD("%s=%s:%s:%u(%s:%u) ", side, ep->proto == PK_UDP ? "UDP" : "ICMP", ep->host, ep->id, ip, port);
	} else {
		const struct sockaddr_in6 *a = (const void *)&ep->addr;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
		ADD("%s=%s:%s:%u([%s]:%u) ", side, ep->proto == PK_UDP ? "UDP" : "ICMP", ep->host, ep->id, ip, port);
	}
}

/* Both endpoints, then every field that differs from pkthere's defaults (§1.3), in a fixed order. */
static void describe(const struct pk_config *c, char *out, size_t len)
{
	static const char *const modes[] = { "upstream", "listen", "both", "none" };
	static const char *const logs[] = { "drops", "handshake", "handles", "packets", "packet-dump" };
	size_t n;

	out[0] = '\0';
	endpoint_describe("here", &c->here, out, len);
	endpoint_describe("there", &c->there, out, len);
	n = strlen(out);
	if (c->here_source_id != PK_ID_UNSET) ADD("here-source-id=%d ", (int)c->here_source_id);
	if (c->here_reply_id != PK_ID_UNSET) ADD("here-reply-id=%d ", (int)c->here_reply_id);
	if (c->there_source_id != PK_ID_UNSET) ADD("there-source-id=%d ", (int)c->there_source_id);
	if (c->there_reply_id != PK_ID_UNSET) ADD("there-reply-id=%d ", (int)c->there_reply_id);
	if (c->timeout_secs != 10) ADD("timeout=%llu ", (unsigned long long)c->timeout_secs);
	if (c->handshake_timeout_secs != 10) ADD("handshake=%llu ", (unsigned long long)c->handshake_timeout_secs);
	if (c->on_timeout_exit) ADD("exit ");
	if (c->stats_interval_mins != 60) ADD("stats=%u ", (unsigned)c->stats_interval_mins);
	if (c->max_payload != 1500) ADD("max-payload=%zu ", c->max_payload);
	if (c->icmp_sync_pps != 0) ADD("sync=%u ", (unsigned)c->icmp_sync_pps);
	if (c->pool_size != 4) ADD("pool=%u ", c->pool_size);
	if (c->workers != 1) ADD("workers=%u ", c->workers);
	if (c->single_flow) ADD("single-flow ");
	if (c->reresolve_secs != 0) ADD("reresolve=%llu ", (unsigned long long)c->reresolve_secs);
	if (c->reresolve_mode != PK_RERESOLVE_UPSTREAM) ADD("mode=%s ", modes[c->reresolve_mode]);
	if (c->reresolve_address_file) ADD("address-file=%s ", c->reresolve_address_file);
	if (c->user) ADD("user=%s ", c->user);
	if (c->group) ADD("group=%s ", c->group);
	if (c->debug_client_unconnected) ADD("client-unconnected ");
	if (c->debug_upstream_unconnected) ADD("upstream-unconnected ");
	if (c->debug_kernel_echo_self_handshake) ADD("kernel-echo ");
	if (c->debug_force_raw_wildcard_upstream) ADD("force-raw ");
	if (c->debug_fast_stats) ADD("fast-stats ");
	for (size_t i = 0; i < N(logs); i++)
		if (c->debug_log & (1u << i))
			ADD("log=%s ", logs[i]);
	if (n && out[n - 1] == ' ')
		out[n - 1] = '\0';
}

struct pk_case {
	const char *name;
	const char *line;	/* argv after argv[0] */
	int rc;
	const char *want;	/* describe() when OK, else a substring of err ("" for HELP) */
};

static const struct pk_case pk_cases[] = {
	/* §5.1, one row (or more) per checklist item about parsing */
	{ "cli_01_missing_here", "--there UDP:127.0.0.1:53", USAGE,
	  "missing required flag: --here UDP:<host>:<id>|ICMP:<host>:<id>" },
	{ "cli_02_missing_there", "--here UDP:127.0.0.1:12345", USAGE,
	  "missing required flag: --there UDP:<host>:<id>|ICMP:<host>:<id>" },
	{ "cli_03_duplicate_here", "--here UDP:127.0.0.1:1 --here UDP:127.0.0.1:2 --there UDP:127.0.0.1:53", USAGE,
	  "--here specified multiple times" },
	{ "cli_04_duplicate_there", "--here UDP:127.0.0.1:1 --there UDP:127.0.0.1:53 --there UDP:127.0.0.1:54", USAGE,
	  "--there specified multiple times" },
	{ "cli_05_duplicate_timeout_secs", UDP4 "--timeout-secs 5 --timeout-secs 10", USAGE,
	  "--timeout-secs specified multiple times" },
	{ "cli_05_duplicate_handshake_timeout", UDP4 "--icmp-handshake-timeout-secs 5 --icmp-handshake-timeout-secs 10",
	  USAGE, "--icmp-handshake-timeout-secs specified multiple times" },
	{ "cli_06_on_timeout_nope", UDP4 "--on-timeout nope", USAGE, "--on-timeout must be drop|exit" },
	{ "cli_07_max_payload_not_a_number", UDP4 "--max-payload notanumber", USAGE,
	  "invalid --max-payload: invalid digit found in string" },
	{ "cli_08_reresolve_mode_bogus", UDP4 "--reresolve-mode invalid", USAGE,
	  "--reresolve-mode must be upstream|listen|both|none (got 'invalid')" },
	{ "cli_10_here_bad_protocol", "--here XYZ:127.0.0.1:abc --there UDP:127.0.0.1:53", USAGE,
	  "--here must be UDP:<host>:<id> or ICMP:<host>:<id> (got 'XYZ:127.0.0.1:abc')" },
	{ "cli_11_there_without_id", "--here UDP:127.0.0.1:1 --there UDP:not-an-addr", USAGE,
	  "--there must be UDP:<host>:<id> or ICMP:<host>:<id>" },
	{ "cli_12_there_udp_port0", "--here UDP:127.0.0.1:1 --there UDP:127.0.0.1:0", USAGE,
	  "--there UDP:host:0 is invalid: UDP upstream requires a fixed remote destination port" },
	{ "cli_13_there_udp6_port0", "--here UDP:[::1]:1 --there UDP:[::1]:0", USAGE,
	  "--there UDP:host:0 is invalid: UDP upstream requires a fixed remote destination port" },
	{ "cli_14_udp6_both_port0_is_a_parse_error", "--here UDP:[::1]:0 --there UDP:[::1]:0", USAGE,
	  "--there UDP:host:0 is invalid" },
	{ "cli_15_debug_log_foo", UDP4 "--debug-log foo", USAGE,
	  "--debug-log expects exactly one of drops, handshake, handles, packets, or packet-dump per flag "
	  "occurrence (got 'foo')" },
	{ "cli_16_debug_log_comma_list", UDP4 "--debug-log drops,handles", USAGE,
	  "exactly one of drops, handshake, handles, packets, or packet-dump per flag occurrence (got 'drops,handles')" },
	{ "cli_17_kernel_echo_with_udp_upstream", UDP4 "--debug-icmp-kernel-echo-self-handshake", USAGE,
	  "--debug-icmp-kernel-echo-self-handshake requires --there ICMP:<host>:<id>" },
	{ "cli_18_force_raw_with_udp_upstream", UDP4 "--debug-force-raw-icmp-wildcard-upstream", USAGE,
	  "--debug-force-raw-icmp-wildcard-upstream requires wildcard --there ICMP:<host>:0" },
	{ "cli_18_force_raw_with_fixed_icmp_id", "--here UDP:127.0.0.1:1 --there ICMP:127.0.0.1:7 "
	  "--debug-force-raw-icmp-wildcard-upstream", USAGE,
	  "--debug-force-raw-icmp-wildcard-upstream requires wildcard --there ICMP:<host>:0" },
	{ "cli_18_force_raw_with_nonzero_reply_id", ICMP4 "--there-reply-id 5 --debug-force-raw-icmp-wildcard-upstream",
	  USAGE, "--debug-force-raw-icmp-wildcard-upstream requires wildcard --there ICMP:<host>:0" },
	{ "cli_19_debug_is_unknown", UDP4 "--debug invalid-option", USAGE, "unknown arg: --debug" },
	{ "cli_19_sync_pps_with_udp_upstream", UDP4 "--icmp-sync-pps 10", USAGE,
	  "--icmp-sync-pps requires --there ICMP:<host>:<id>" },
	{ "cli_19_workers_0", UDP4 "--workers 0", USAGE, "--workers must be between 1 and 256" },
	{ "cli_19_workers_257", UDP4 "--workers 257", USAGE, "--workers must be between 1 and 256" },
	{ "cli_19_max_payload_65508_v4_udp", UDP4 "--max-payload 65508", USAGE,
	  "--max-payload 65508 exceeds the maximum supported by the selected protocols and address families (65507)" },
	{ "cli_22_sync_pps_0_with_udp_upstream", RUN4 "--icmp-sync-pps 0", USAGE,
	  "--icmp-sync-pps requires --there ICMP:<host>:<id>" },
	{ "cli_24_worker_flow_mode_bogus", UDP4 "--worker-flow-mode linux-bpf", USAGE,
	  "--worker-flow-mode must be shared-flow|single-flow (got 'linux-bpf')" },
	{ "cli_26_debug_invalid_option", RUN4 "--debug-invalid-option", USAGE, "unknown arg: --debug-invalid-option" },
	{ "cli_31_max_payload_65497_v4_icmp", ICMP4 "--max-payload 65497", USAGE,
	  "--max-payload 65497 exceeds the maximum supported by the selected protocols and address families (65496)" },
	{ "cli_33_max_payload_65497_mixed_v4_v6_icmp", "--here UDP:127.0.0.1:1 --there ICMP:[::1]:0 --max-payload 65497",
	  USAGE, "address families (65496)" },
	{ "cli_34_duplicate_sync_pps", ICMP4 "--icmp-sync-pps 1 --icmp-sync-pps 2", USAGE,
	  "--icmp-sync-pps specified multiple times" },
	{ "cli_35_pool_size_0", ICMP4 "--icmp-session-pool-size 0", USAGE,
	  "--icmp-session-pool-size must be between 1 and 32" },
	{ "cli_35_pool_size_33", ICMP4 "--icmp-session-pool-size 33", USAGE,
	  "--icmp-session-pool-size must be between 1 and 32" },
	{ "cli_35_pool_size_range_checked_while_scanning", UDP4 "--icmp-session-pool-size 33", USAGE,
	  "--icmp-session-pool-size must be between 1 and 32" },
	{ "cli_36_handshake_timeout_3601", ICMP4 "--icmp-handshake-timeout-secs 3601", USAGE,
	  "--icmp-handshake-timeout-secs must be <= 3600" },
	{ "cli_36_handshake_timeout_defaults_to_timeout_4000", ICMP4 "--timeout-secs 4000", USAGE,
	  "--icmp-handshake-timeout-secs must be <= 3600" },
	{ "cli_37_pool_size_with_udp_only", UDP4 "--icmp-session-pool-size 4", USAGE,
	  "--icmp-session-pool-size requires an ICMP listener or upstream" },
	{ "cli_38_icmp_ipv6_without_brackets", "--here ICMP:::1:1234 --there UDP:127.0.0.1:53", USAGE,
	  "--here ICMP IPv6 addresses must use brackets" },
	{ "cli_38_udp_ipv6_without_brackets", "--here UDP:127.0.0.1:1 --there UDP:::1:53", USAGE,
	  "--there IPv6 addresses must use brackets" },
	{ "cli_38_more_than_one_endpoint_id", "--here ICMP:[::1]:1:2:3:4 --there UDP:127.0.0.1:53", USAGE,
	  "--here must contain exactly one endpoint ID in UDP:<host>:<id> or ICMP:<host>:<id>" },
	{ "cli_39_here_id_removed", UDP4 "--here-id 0", USAGE, "unknown arg: --here-id" },
	{ "cli_39_there_id_removed", UDP4 "--there-id 9", USAGE, "unknown arg: --there-id" },
	{ "cli_40_duplicate_reresolve_mode", UDP4 "--reresolve-mode both --reresolve-mode none", USAGE,
	  "--reresolve-mode specified multiple times" },
	{ "cli_40_duplicate_user", UDP4 "--user a --user b", USAGE, "--user specified multiple times" },
	{ "cli_41_user_without_value", UDP4 "--user", USAGE, "--user requires a value" },

	/* §5.1 "runs" items: the parse succeeds and fills the config */
	{ "cli_09_reresolve_mode_upstream", RUN4 "--reresolve-secs 1 --reresolve-mode upstream --timeout-secs 1 --on-timeout exit",
	  OK, RUN4_D " timeout=1 handshake=1 exit reresolve=1" },
	{ "cli_09_reresolve_mode_listen", RUN4 "--reresolve-secs 1 --reresolve-mode listen --timeout-secs 1 --on-timeout exit",
	  OK, RUN4_D " timeout=1 handshake=1 exit reresolve=1 mode=listen" },
	{ "cli_09_reresolve_mode_both", RUN4 "--reresolve-secs 1 --reresolve-mode both --timeout-secs 1 --on-timeout exit",
	  OK, RUN4_D " timeout=1 handshake=1 exit reresolve=1 mode=both" },
	{ "cli_09_reresolve_mode_none", RUN4 "--reresolve-secs 1 --reresolve-mode none --timeout-secs 1 --on-timeout exit",
	  OK, RUN4_D " timeout=1 handshake=1 exit reresolve=1 mode=none" },
	{ "cli_20_all_debug_flags", RUN4 "--debug-client-unconnected --debug-upstream-unconnected --debug-fast-stats "
	  "--debug-log drops --debug-log handles --debug-log handshake --debug-log packet-dump "
	  "--icmp-handshake-timeout-secs 2", OK,
	  RUN4_D " handshake=2 client-unconnected upstream-unconnected fast-stats "
	  "log=drops log=handshake log=handles log=packet-dump" },
	{ "cli_21_minimal_udp", RUN4, OK, RUN4_D },
	{ "cli_23_shared_flow", RUN4 "--worker-flow-mode shared-flow", OK, RUN4_D },
	{ "cli_23_single_flow", RUN4 "--worker-flow-mode single-flow", OK, RUN4_D " single-flow" },
	{ "cli_32_ipv6_udp_max_payload_65527", "--here UDP:[::1]:0 --there UDP:[::1]:9 --max-payload 65527", OK,
	  "here=UDP:[::1]:0([::1]:0) there=UDP:[::1]:9([::1]:9) max-payload=65527" },

	/* §1.1: scanning */
	{ "help_short", "-h", HELP, "" },
	{ "help_before_anything_else", "--help --bogus", HELP, "" },
	{ "help_without_endpoints", "--here UDP:127.0.0.1:1 -h", HELP, "" },
	{ "error_before_help_wins", "--bogus --help", USAGE, "unknown arg: --bogus" },
	{ "no_equals_form", "--here=UDP:127.0.0.1:1 --there UDP:127.0.0.1:53", USAGE,
	  "unknown arg: --here=UDP:127.0.0.1:1" },
	{ "positional_is_unknown", UDP4 "extra", USAGE, "unknown arg: extra" },
	{ "no_arguments", "", USAGE, "missing required flag: --here" },
	{ "value_taken_verbatim_even_if_option_like", "--user --here --here UDP:127.0.0.1:1 --there UDP:127.0.0.1:53",
	  OK, UDP4_D " user=--here" },
	{ "value_taken_verbatim_so_next_word_is_unknown", "--here UDP:127.0.0.1:1 --group --there UDP:127.0.0.1:53",
	  USAGE, "unknown arg: UDP:127.0.0.1:53" },
	{ "missing_value_of_debug_log", UDP4 "--debug-log", USAGE, "--debug-log requires a value" },
	{ "missing_value_of_here", "--there UDP:127.0.0.1:53 --here", USAGE, "--here requires a value" },
	{ "value_checked_before_duplicate", UDP4 "--workers 2 --workers 0", USAGE, "--workers must be between 1 and 256" },
	{ "duplicate_workers", UDP4 "--workers 2 --workers 3", USAGE, "--workers specified multiple times" },
	{ "duplicate_group", UDP4 "--group a --group a", USAGE, "--group specified multiple times" },
	{ "duplicate_address_file", UDP4 "--debug-reresolve-address-file a --debug-reresolve-address-file b", USAGE,
	  "--debug-reresolve-address-file specified multiple times" },
	{ "debug_flags_and_debug_log_repeat", UDP4 "--debug-log drops --debug-log drops --debug-fast-stats "
	  "--debug-fast-stats --debug-log packets", OK, UDP4_D " fast-stats log=drops log=packets" },
	{ "debug_log_is_case_sensitive", UDP4 "--debug-log DROPS", USAGE, "(got 'DROPS')" },
	{ "on_timeout_is_case_sensitive", UDP4 "--on-timeout EXIT", USAGE, "--on-timeout must be drop|exit" },
	{ "word_options_ignore_case", UDP4 "--worker-flow-mode Single-Flow --reresolve-mode BOTH", OK,
	  UDP4_D " single-flow mode=both" },
	{ "strings_stored", UDP4 "--user nobody --group nogroup --debug-reresolve-address-file /tmp/a.json", OK,
	  UDP4_D " address-file=/tmp/a.json user=nobody group=nogroup" },
	{ "syntax_error_before_missing_endpoint", "--there UDP:127.0.0.1:53 --timeout-secs x", USAGE,
	  "invalid --timeout-secs: invalid digit found in string" },

	/* §1.1: numbers parse like Rust's unsigned FromStr */
	{ "number_empty", UDP4 "--max-payload \"\"", USAGE, "invalid --max-payload: cannot parse integer from empty string" },
	{ "number_negative", UDP4 "--timeout-secs -1", USAGE, "invalid --timeout-secs: invalid digit found in string" },
	{ "number_hex", UDP4 "--there-source-id 0x10", USAGE, "invalid --there-source-id: invalid digit found in string" },
	{ "number_lone_plus", UDP4 "--workers +", USAGE, "invalid --workers: invalid digit found in string" },
	{ "number_plus_sign_accepted_as_in_rust", UDP4 "--workers +4", OK, UDP4_D " workers=4" },
	{ "number_u16_overflow", UDP4 "--there-source-id 65536", USAGE,
	  "invalid --there-source-id: number too large to fit in target type" },
	{ "number_u32_max", UDP4 "--stats-interval-mins 4294967295", OK, UDP4_D " stats=4294967295" },
	{ "number_u32_overflow", UDP4 "--stats-interval-mins 4294967296", USAGE,
	  "invalid --stats-interval-mins: number too large to fit in target type" },
	{ "number_u64_max", UDP4 "--reresolve-secs 18446744073709551615", OK, UDP4_D " reresolve=18446744073709551615" },
	{ "number_u64_overflow", UDP4 "--reresolve-secs 18446744073709551616", USAGE,
	  "invalid --reresolve-secs: number too large to fit in target type" },
	{ "number_leading_zeros", UDP4 "--timeout-secs 0007", OK, UDP4_D " timeout=7 handshake=7" },
	{ "timeout_0_accepted", UDP4 "--timeout-secs 0", OK, UDP4_D " timeout=0 handshake=0" },

	/* §1.2: endpoint syntax */
	{ "endpoint_protocol_ignores_case", "--here udp:[::1]:53 --there IcMp:[::1]:7", OK,
	  "here=UDP:[::1]:53([::1]:53) there=ICMP:[::1]:7([::1]:7)" },
	{ "endpoint_without_colon", "--here UDP --there UDP:127.0.0.1:53", USAGE,
	  "--here must be UDP:<host>:<id> or ICMP:<host>:<id> (got 'UDP')" },
	{ "endpoint_empty_host", "--here UDP: --there UDP:127.0.0.1:53", USAGE, "--here requires a non-empty host" },
	{ "endpoint_empty_host_before_id", "--here UDP::53 --there UDP:127.0.0.1:53", USAGE,
	  "--here must contain exactly one endpoint ID" },
	{ "endpoint_empty_id", "--here UDP:127.0.0.1: --there UDP:127.0.0.1:53", USAGE,
	  "--here must contain exactly one endpoint ID" },
	{ "endpoint_bracket_empty_id", "--here UDP:[::1]: --there UDP:127.0.0.1:53", USAGE,
	  "--here must contain exactly one endpoint ID" },
	{ "endpoint_missing_closing_bracket", "--here ICMP:[::1:5 --there UDP:127.0.0.1:53", USAGE,
	  "--here invalid IPv6 address: missing closing ']'" },
	{ "endpoint_no_colon_after_bracket", "--here UDP:[::1]53 --there UDP:127.0.0.1:53", USAGE,
	  "--here must be UDP:<host>:<id> or ICMP:<host>:<id>" },
	{ "endpoint_id_too_large", "--here UDP:127.0.0.1:65536 --there UDP:127.0.0.1:53", USAGE,
	  "invalid --here endpoint ID: number too large to fit in target type" },
	{ "endpoint_id_not_a_number", "--here UDP:127.0.0.1:1 --there UDP:127.0.0.1:dns", USAGE,
	  "invalid --there endpoint ID: invalid digit found in string" },
	{ "endpoint_id_65535", "--here UDP:127.0.0.1:65535 --there UDP:127.0.0.1:53", OK,
	  "here=UDP:127.0.0.1:65535(127.0.0.1:65535) there=UDP:127.0.0.1:53(127.0.0.1:53)" },
	{ "resolve_failure", "--here UDP:127.0.0.1:1 --there UDP:no-such-host.invalid:53", RESOLVE,
	  "--there: failed to resolve no-such-host.invalid:53: failed to lookup address information: " },
	{ "resolve_after_presence_check", "--there UDP:no-such-host.invalid:53", USAGE, "missing required flag: --here" },
	{ "resolve_before_protocol_checks", "--here UDP:127.0.0.1:1 --there UDP:no-such-host.invalid:0", RESOLVE,
	  "--there: failed to resolve no-such-host.invalid:0" },
	{ "resolve_empty_brackets", "--here UDP:[]:1 --there UDP:127.0.0.1:53", RESOLVE, "--here: failed to resolve []:1" },

	/* §1.3: protocol-specific checks and their order */
	{ "udp_listener_rejects_here_source_id", UDP4 "--here-source-id 1", USAGE,
	  "UDP listeners use the --here UDP:<host>:<port> endpoint ID only; --here-source-id/--here-reply-id are ICMP-only" },
	{ "udp_listener_rejects_here_reply_id_0", UDP4 "--here-reply-id 0", USAGE, "are ICMP-only" },
	{ "udp_upstream_rejects_there_reply_id", UDP4 "--there-reply-id 0", USAGE,
	  "UDP upstreams do not support --there-reply-id" },
	{ "udp_upstream_takes_there_source_id", UDP4 "--there-source-id 4000", OK, UDP4_D " there-source-id=4000" },
	{ "order_listener_ids_before_reply_id", UDP4 "--there-reply-id 1 --here-source-id 1", USAGE, "are ICMP-only" },
	{ "order_reply_id_before_sync_pps", UDP4 "--icmp-sync-pps 1 --there-reply-id 1", USAGE,
	  "UDP upstreams do not support --there-reply-id" },
	{ "order_sync_pps_before_pool_size", UDP4 "--icmp-session-pool-size 4 --icmp-sync-pps 1", USAGE,
	  "--icmp-sync-pps requires" },
	{ "order_pool_size_before_kernel_echo", UDP4 "--debug-icmp-kernel-echo-self-handshake --icmp-session-pool-size 4",
	  USAGE, "--icmp-session-pool-size requires" },
	{ "order_kernel_echo_before_force_raw", UDP4 "--debug-force-raw-icmp-wildcard-upstream "
	  "--debug-icmp-kernel-echo-self-handshake", USAGE, "--debug-icmp-kernel-echo-self-handshake requires" },
	{ "order_force_raw_before_udp_port0", "--here UDP:127.0.0.1:1 --there UDP:127.0.0.1:0 "
	  "--debug-force-raw-icmp-wildcard-upstream", USAGE, "--debug-force-raw-icmp-wildcard-upstream requires" },
	{ "order_udp_port0_before_handshake", "--here UDP:127.0.0.1:1 --there UDP:127.0.0.1:0 "
	  "--icmp-handshake-timeout-secs 3601", USAGE, "--there UDP:host:0 is invalid" },
	{ "order_handshake_before_max_payload", ICMP4 "--max-payload 65500 --icmp-handshake-timeout-secs 3601", USAGE,
	  "--icmp-handshake-timeout-secs must be <= 3600" },
	{ "max_payload_absolute_limit_while_scanning", "--max-payload 65528", USAGE,
	  "--max-payload must be <= 65527 (requested 65528)" },
	{ "max_payload_v6_icmp_limit", "--here ICMP:[::1]:0 --there UDP:[::1]:53 --max-payload 65517", USAGE,
	  "address families (65516)" },
	{ "max_payload_v6_icmp_at_limit", "--here ICMP:[::1]:0 --there UDP:[::1]:53 --max-payload 65516", OK,
	  "here=ICMP:[::1]:0([::1]:0) there=UDP:[::1]:53([::1]:53) max-payload=65516" },
	{ "max_payload_v4_udp_at_limit", UDP4 "--max-payload 65507", OK, UDP4_D " max-payload=65507" },
	{ "handshake_3600_from_timeout", UDP4 "--timeout-secs 3600", OK, UDP4_D " timeout=3600 handshake=3600" },
	{ "handshake_given_overrides_long_timeout", UDP4 "--timeout-secs 4000 --icmp-handshake-timeout-secs 5", OK,
	  UDP4_D " timeout=4000 handshake=5" },
	{ "icmp_listener_ids", "--here ICMP:0.0.0.0:0 --there UDP:127.0.0.1:53 --here-source-id 7 --here-reply-id 0", OK,
	  "here=ICMP:0.0.0.0:0(0.0.0.0:0) there=UDP:127.0.0.1:53(127.0.0.1:53) here-source-id=7 here-reply-id=0" },
	{ "icmp_upstream_everything", ICMP4 "--there-source-id 5 --there-reply-id 0 --icmp-sync-pps 7 "
	  "--icmp-session-pool-size 32 --workers 256 --max-payload 65496 --debug-force-raw-icmp-wildcard-upstream "
	  "--debug-icmp-kernel-echo-self-handshake --stats-interval-mins 0", OK,
	  ICMP4_D " there-source-id=5 there-reply-id=0 stats=0 max-payload=65496 sync=7 pool=32 workers=256 "
	  "kernel-echo force-raw" },
	{ "pool_size_with_icmp_listener_only", "--here ICMP:127.0.0.1:9 --there UDP:127.0.0.1:53 --icmp-session-pool-size 1",
	  OK, "here=ICMP:127.0.0.1:9(127.0.0.1:9) there=UDP:127.0.0.1:53(127.0.0.1:53) pool=1" },
	{ "sync_pps_0_with_icmp_upstream", ICMP4 "--icmp-sync-pps 0", OK, ICMP4_D },
};

static void test_pk_args_cases(void)
{
	for (size_t i = 0; i < N(pk_cases); i++) {
		const struct pk_case *k = &pk_cases[i];
		struct words ws;
		struct pk_config c;
		char err[512] = "x", got[1024];
		int rc;

		words_split(&ws, k->line);
		rc = (int)pk_args_parse(ws.n, ws.w, &c, err, sizeof(err));
		CHECK_EQ(rc, k->rc);
		if (rc != k->rc) {
			fprintf(stderr, "  %s: \"%s\": err \"%s\"\n", k->name, k->line, err);
			continue;
		}
		if (rc == OK) {
			describe(&c, got, sizeof(got));
			CHECK_STR(got, k->want);
			CHECK_STR(err, "");
			if (strcmp(got, k->want))
				fprintf(stderr, "  %s: \"%s\"\n", k->name, k->line);
		} else if (!strstr(err, k->want)) {
			CHECK(strstr(err, k->want) != NULL);
			fprintf(stderr, "  %s: err \"%s\", want \"%s\"\n", k->name, err, k->want);
		}
	}
}

/* The minimal run (checklist 21) holds exactly pkthere's defaults of §1.3. */
static void test_pk_args_defaults(void)
{
	char *argv[] = { "ferry", "--here", "UDP:127.0.0.1:0", "--there", "UDP:127.0.0.1:9", NULL };
	const struct sockaddr_in *there;
	struct pk_config c;
	char err[256];

	CHECK_EQ(pk_args_parse(5, argv, &c, err, sizeof(err)), PK_PARSE_OK);
	CHECK_EQ(c.here.proto, PK_UDP);
	CHECK_STR(c.here.host, "127.0.0.1");
	CHECK_EQ(c.here.id, 0);
	CHECK_EQ(c.there.proto, PK_UDP);
	CHECK_EQ(c.there.id, 9);
	CHECK_EQ(c.there.addr.ss_family, AF_INET);
	there = (const struct sockaddr_in *)&c.there.addr;
	CHECK_EQ(ntohs(there->sin_port), 9);
	CHECK_EQ(ntohl(there->sin_addr.s_addr), 0x7f000001);
	CHECK_EQ(c.here_source_id, PK_ID_UNSET);
	CHECK_EQ(c.here_reply_id, PK_ID_UNSET);
	CHECK_EQ(c.there_source_id, PK_ID_UNSET);
	CHECK_EQ(c.there_reply_id, PK_ID_UNSET);
	CHECK_EQ(c.timeout_secs, 10);
	CHECK_EQ(c.handshake_timeout_secs, 10);
	CHECK_EQ(c.on_timeout_exit, 0);
	CHECK_EQ(c.stats_interval_mins, 60);
	CHECK_EQ(c.max_payload, 1500);
	CHECK_EQ(c.icmp_sync_pps, 0);
	CHECK_EQ(c.pool_size, 4);
	CHECK_EQ(c.workers, 1);
	CHECK_EQ(c.single_flow, 0);
	CHECK_EQ(c.reresolve_secs, 0);
	CHECK_EQ(c.reresolve_mode, PK_RERESOLVE_UPSTREAM);
	CHECK(c.reresolve_address_file == NULL);
	CHECK(c.user == NULL);
	CHECK(c.group == NULL);
	CHECK_EQ(c.debug_client_unconnected + c.debug_upstream_unconnected + c.debug_kernel_echo_self_handshake +
		 c.debug_force_raw_wildcard_upstream + c.debug_fast_stats, 0);
	CHECK_EQ(c.debug_log, 0);
}

/* IPv6 hosts keep their brackets in host (pkthere's filter strings) but resolve without them. */
static void test_pk_args_ipv6_host_keeps_brackets(void)
{
	char *argv[] = { "ferry", "--here", "ICMP:[::1]:4660", "--there", "UDP:[::1]:53", NULL };
	const struct sockaddr_in6 *here;
	struct pk_config c;
	char err[256];

	CHECK_EQ(pk_args_parse(5, argv, &c, err, sizeof(err)), PK_PARSE_OK);
	CHECK_STR(c.here.host, "[::1]");
	CHECK_EQ(c.here.proto, PK_ICMP);
	CHECK_EQ(c.here.id, 4660);
	CHECK_EQ(c.here.addr.ss_family, AF_INET6);
	here = (const struct sockaddr_in6 *)&c.here.addr;
	CHECK_EQ(ntohs(here->sin6_port), 4660);
	CHECK(IN6_IS_ADDR_LOOPBACK(&here->sin6_addr));
}

/* A host too long for pk_endpoint.host is a resolution failure, not an overflow. */
static void test_pk_args_long_host_fails_to_resolve(void)
{
	char here[400], *argv[] = { "ferry", "--here", here, "--there", "UDP:127.0.0.1:53", NULL };
	struct pk_config c;
	char err[1024];

	memset(here, 'a', sizeof(here) - 1);
	here[sizeof(here) - 1] = '\0';
	memcpy(here, "UDP:", 4);
	memcpy(here + sizeof(here) - 4, ":80", 3);
	CHECK_EQ(pk_args_parse(5, argv, &c, err, sizeof(err)), PK_PARSE_RESOLVE_ERROR);
	CHECK(strstr(err, "--here: failed to resolve aaaa") != NULL);
	CHECK(strstr(err, "a:80: host name longer than 255 bytes") != NULL);
}

/* A short err buffer truncates the message; nothing is written past it. */
static void test_pk_args_short_err_buffer(void)
{
	char *argv[] = { "ferry", "--bogus", NULL };
	struct pk_config c;
	char err[8 + 1] = "ZZZZZZZZZ";

	CHECK_EQ(pk_args_parse(2, argv, &c, err, 8), PK_PARSE_USAGE_ERROR);
	CHECK_STR(err, "unknown");
	CHECK_EQ(err[8], 'Z');
}

/* Checklist 25: every help phrase is there, and every line carries pkthere's "[ERROR] " prefix. */
static void test_pk_args_usage_text(void)
{
	static const char *const phrases[] = {
		"--workers", "--here UDP:host:0", "--there UDP:host:port", "--there-source-id",
		"--here ICMP:host:D", "--here-source-id", "--here-reply-id", "--there ICMP:host:D",
		"--there-reply-id", "--icmp-sync-pps", "--icmp-handshake-timeout-secs", "--reresolve-mode",
		"--debug-reresolve-address-file", "--debug-client-unconnected", "--debug-upstream-unconnected",
		"--debug-icmp-kernel-echo-self-handshake",
	};
	/* and every option the parser accepts */
	static const char *const options[] = {
		"--timeout-secs", "--on-timeout drop|exit", "--stats-interval-mins", "--max-payload",
		"--icmp-session-pool-size", "--worker-flow-mode", "--reresolve-secs", "--user", "--group",
		"--debug-force-raw-icmp-wildcard-upstream", "--debug-fast-stats", "--debug-log", "-h, --help",
	};
	static const char first[] = "[ERROR] Usage: ferry --here <protocol:host:id> --there <protocol:host:id>\n";
	char *text = NULL, *line, *save = NULL;
	size_t size = 0;
	int lines = 0;
	FILE *f = open_memstream(&text, &size);

	CHECK(f != NULL);
	if (!f)
		return;
	pk_args_usage(f, "ferry");
	fclose(f);
	CHECK(strncmp(text, first, strlen(first)) == 0);
	for (size_t i = 0; i < N(phrases); i++) {
		CHECK(strcasestr(text, phrases[i]) != NULL);
		if (!strcasestr(text, phrases[i]))
			fprintf(stderr, "  usage lacks \"%s\"\n", phrases[i]);
	}
	for (size_t i = 0; i < N(options); i++) {
		CHECK(strstr(text, options[i]) != NULL);
		if (!strstr(text, options[i]))
			fprintf(stderr, "  usage lacks \"%s\"\n", options[i]);
	}
	CHECK(size > 0 && text[size - 1] == '\n');
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
		CHECK(strncmp(line, "[ERROR] ", 8) == 0);
		CHECK(line[strlen(line) - 1] != ' ');
	}
	CHECK(lines > 30);
	free(text);
}

static size_t limit_for(int here_family, enum pk_proto here_proto, int there_family, enum pk_proto there_proto)
{
	struct pk_config c;

	memset(&c, 0, sizeof(c));
	c.here.addr.ss_family = (sa_family_t)here_family;
	c.here.proto = here_proto;
	c.there.addr.ss_family = (sa_family_t)there_family;
	c.there.proto = there_proto;
	return pk_max_payload_limit(&c);
}

static void test_pk_max_payload_limit(void)
{
	CHECK_EQ(limit_for(AF_INET, PK_UDP, AF_INET, PK_UDP), 65507);
	CHECK_EQ(limit_for(AF_INET, PK_UDP, AF_INET, PK_ICMP), 65496);
	CHECK_EQ(limit_for(AF_INET, PK_ICMP, AF_INET, PK_UDP), 65496);
	CHECK_EQ(limit_for(AF_INET6, PK_UDP, AF_INET6, PK_UDP), 65527);
	CHECK_EQ(limit_for(AF_INET6, PK_ICMP, AF_INET6, PK_UDP), 65516);
	CHECK_EQ(limit_for(AF_INET6, PK_UDP, AF_INET6, PK_ICMP), 65516);
	/* mixed families count as IPv4 */
	CHECK_EQ(limit_for(AF_INET, PK_UDP, AF_INET6, PK_UDP), 65507);
	CHECK_EQ(limit_for(AF_INET6, PK_UDP, AF_INET, PK_UDP), 65507);
	CHECK_EQ(limit_for(AF_INET, PK_UDP, AF_INET6, PK_ICMP), 65496);
	CHECK_EQ(limit_for(AF_INET6, PK_ICMP, AF_INET, PK_ICMP), 65496);
}

static void test_pk_args_wanted(void)
{
	char *pk[] = { "ferry", "--here", "UDP:127.0.0.1:1", NULL };
	char *pk_there[] = { "ferry", "--timeout-secs", "5", "--there", "UDP:127.0.0.1:1", NULL };
	char *ferry[] = { "ferry", "tcp://0.0.0.0:80", "tcp://10.0.0.2:80", NULL };
	char *prefix_only[] = { "ferry", "--here-source-id", "1", "--there-reply-id", "2", NULL };
	char *equals[] = { "ferry", "--here=UDP:127.0.0.1:1", NULL };
	char *argv0_only[] = { "--here", NULL };

	CHECK(pk_args_wanted(3, pk));
	CHECK(pk_args_wanted(5, pk_there));
	CHECK(!pk_args_wanted(3, ferry));
	CHECK(!pk_args_wanted(5, prefix_only));
	CHECK(!pk_args_wanted(2, equals));
	CHECK(!pk_args_wanted(1, argv0_only));
	CHECK(!pk_args_wanted(0, NULL));
}

int main(void)
{
	RUN(test_pk_args_cases);
	RUN(test_pk_args_defaults);
	RUN(test_pk_args_ipv6_host_keeps_brackets);
	RUN(test_pk_args_long_host_fails_to_resolve);
	RUN(test_pk_args_short_err_buffer);
	RUN(test_pk_args_usage_text);
	RUN(test_pk_max_payload_limit);
	RUN(test_pk_args_wanted);
	TEST_EXIT();
}
