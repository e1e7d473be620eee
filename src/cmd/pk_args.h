/*
 * pkthere's command line (spec/pkthere.md §1): "ferry --here PROTO:host:id --there
 * PROTO:host:id [options]". Parses and validates in pkthere's order and with its
 * messages, resolves both hosts (first getaddrinfo result), and fills a pk_config the
 * single-client relay runs from. Nothing here opens a socket.
 */
#ifndef FERRY_CMD_PK_ARGS_H
#define FERRY_CMD_PK_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

enum pk_proto {
	PK_UDP = 1,
	PK_ICMP,
};

struct pk_endpoint {
	enum pk_proto proto;
	char host[256];			/* as written, IPv6 brackets kept (pkthere's filter strings) */
	uint16_t id;			/* UDP port or ICMP echo identifier; 0 = dynamic/wildcard */
	struct sockaddr_storage addr;	/* first resolution result; port = id */
};

enum pk_reresolve_mode {
	PK_RERESOLVE_UPSTREAM = 0,
	PK_RERESOLVE_LISTEN,
	PK_RERESOLVE_BOTH,
	PK_RERESOLVE_NONE,
};

/* --debug-log categories, a bit each. */
enum {
	PK_LOG_DROPS = 1 << 0,
	PK_LOG_HANDSHAKE = 1 << 1,
	PK_LOG_HANDLES = 1 << 2,
	PK_LOG_PACKETS = 1 << 3,
	PK_LOG_PACKET_DUMP = 1 << 4,
};

/* An ID option the user did not give is PK_ID_UNSET; 0 means wildcard/generated. */
#define PK_ID_UNSET (-1)

struct pk_config {
	struct pk_endpoint here, there;
	int32_t here_source_id, here_reply_id, there_source_id, there_reply_id;
	uint64_t timeout_secs;			/* default 10 */
	uint64_t handshake_timeout_secs;	/* default = timeout_secs; <= 3600 */
	bool on_timeout_exit;			/* default drop */
	uint32_t stats_interval_mins;		/* default 60; 0 = off */
	size_t max_payload;			/* default 1500 */
	uint32_t icmp_sync_pps;			/* default 0 = off */
	unsigned pool_size;			/* default 4, 1..32 */
	unsigned workers;			/* default 1, 1..256 */
	bool single_flow;			/* default shared-flow */
	uint64_t reresolve_secs;		/* default 0 = off */
	enum pk_reresolve_mode reresolve_mode;	/* default upstream */
	const char *reresolve_address_file;
	const char *user, *group;
	bool debug_client_unconnected;
	bool debug_upstream_unconnected;
	bool debug_kernel_echo_self_handshake;
	bool debug_force_raw_wildcard_upstream;
	bool debug_fast_stats;
	unsigned debug_log;			/* PK_LOG_* */
};

/* True when argv looks like pkthere's (an argument is exactly --here or --there). */
bool pk_args_wanted(int argc, char **argv);

enum pk_parse_result {
	PK_PARSE_OK = 0,
	PK_PARSE_HELP,		/* -h/--help: print usage, exit 0 */
	PK_PARSE_USAGE_ERROR,	/* print "[ERROR] <err>" then the usage, exit 2 */
	PK_PARSE_RESOLVE_ERROR,	/* print "[ERROR] <err>" without usage, exit 2 */
};

/*
 * Parses argv[1..argc) into c (defaults first). err receives the message without the
 * "[ERROR] " prefix, exactly pkthere's wording.
 */
enum pk_parse_result pk_args_parse(int argc, char **argv, struct pk_config *c, char *err, size_t errlen);

/* The usage text, every line prefixed "[ERROR] " as pkthere prints it (to stderr). */
void pk_args_usage(FILE *f, const char *argv0);

/* Resolves both hosts again (--reresolve-secs): 0, or -EINVAL with err set. */
int pk_args_resolve_again(struct pk_config *c, char *err, size_t errlen);

/* Largest --max-payload for these endpoints (65496 / 65507 / 65516 / 65527, §1.3). */
size_t pk_max_payload_limit(const struct pk_config *c);

#endif
