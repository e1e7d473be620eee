/*
 * A rule: LISTEN TARGET [options]. Parsed once by cmd/, then shared read-only by every
 * worker. Counters live per worker (one writer each) and are summed for stats.
 */
#ifndef FERRY_RELAY_RULE_H
#define FERRY_RELAY_RULE_H
#include <stdbool.h>
#include <stdint.h>

#include "net/endpoint.h"
#include "net/sock.h"

/* Defaults of the rule options (issue 3; portfwd's tcpfwd values where it has one). */
#define RULE_CONNECT_TIMEOUT_MS 10000
#define RULE_MAX_CONNS 65536
#define RULE_KA_IDLE_S 60
#define RULE_KA_INTVL_S 10
#define RULE_KA_CNT 6
#define RULE_BACKLOG 4096
/* UDP: portfwd udpfwd's idle timeout; sessions allowed per rule (issue 4). */
#define RULE_UDP_TIMEOUT_MS 60000
#define RULE_MAX_SESSIONS 65536
/* The largest UDP payload over IPv4 (65535 - 8 - 20); IPv6 allows 65527. */
#define RULE_MAX_DATAGRAM_V4 65507
#define RULE_MAX_DATAGRAM_V6 65527
/* Through the ICMP tunnel, 11 bytes less: the largest data shim (spec/pkthere.md §1.3). */
#define RULE_MAX_DATAGRAM_ICMP_V4 65496
#define RULE_MAX_DATAGRAM_ICMP_V6 65516
/* Single-client rules: pkthere's --timeout-secs default; its handshake timeout limit. */
#define RULE_SINGLE_TIMEOUT_MS 10000
#define RULE_SINGLE_HANDSHAKE_MAX_MS 3600000

/*
 * kcp:// options (spec/kcp.md §1.13, §2.8, §3.12). Zero means "the profile's default",
 * filled in by kcp_opts_finish() once the rule's role (client or server) is known.
 */
enum kcp_profile { KCP_PROFILE_FERRY, KCP_PROFILE_KCPTUN };
/* --kcp-cc: delivery-rate control with pacing (proto/kcp_rate.h), kcp-go's window (nc 0),
 * none (nc 1); 0 = the profile's default */
enum kcp_cc { KCP_CC_RATE = 1, KCP_CC_WINDOW, KCP_CC_OFF };

struct kcp_opts {
	enum kcp_profile profile;
	bool secure, insecure;		/* ferry profile: PSK channel / plain KCP off loopback */
	bool psk_set;
	uint8_t psk[32];
	int mode;			/* enum kcp_mode + 1; 0 = profile default */
	uint32_t mtu, sndwnd, rcvwnd;
	int nodelay, interval, resend, nc;	/* manual mode; -1 = preset */
	int cc;				/* enum kcp_cc */
	bool acknodelay;
	uint32_t sockbuf;
	uint32_t keepalive_s;		/* smux NOP interval */
	uint32_t streambuf;		/* per-stream receive window (v2) and buffer cap */
	uint32_t smuxbuf;		/* all streams of a session together (bounds memory per peer) */
	uint32_t max_streams;		/* per session */
	/* kcptun profile */
	char crypt[16];
	char key[128];
	bool key_set, nocomp;
	int ds, ps;			/* -1 = default 10/3 */
	int smuxver;			/* 0 = default */
	/* secure mode */
	uint32_t max_skew_s;
	uint32_t rekey_time_ms;
	uint64_t rekey_packets;
};

/*
 * Single-client rules (spec/pkthere.md §2): udp:// to udp:// with --single-client, and every
 * rule with an icmp:// endpoint (rule_build sets on). They time out with --idle-timeout.
 */
struct single_rule_opts {
	bool on;
	bool on_timeout_exit;		/* --on-timeout exit: ferry exits 0 when the client idles out */
	uint32_t sync_pps;		/* --icmp-sync-pps; 0 = off */
	uint32_t handshake_timeout_ms;	/* --icmp-handshake-timeout; 0 = from the idle timeout */
};

struct rule_opts {
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms;	/* 0 = off */
	bool idle_timeout_set;	/* given: single-client rules have a default of their own */
	uint32_t max_conns;
	bool base_addr;
	bool no_splice;
	struct sock_opts sock;
	/* udp:// */
	uint32_t udp_timeout_ms;
	uint32_t max_sessions;
	uint32_t hash_size;	/* initial buckets; 0 = sized for max_sessions */
	uint32_t max_datagram;	/* 0 = the protocol's maximum */
	bool transparent;	/* upstream leg from the client's own address (IP_TRANSPARENT, spec/systemd.md §4) */
	bool tproxy;		/* listener takes nft-TPROXY'd traffic; replies from the original destination (§5) */
	struct kcp_opts kcp;
	struct single_rule_opts single;
};

enum rule_drop {
	DROP_MAX_CONNS,
	DROP_NO_FDS,
	DROP_CONNECT_TIMEOUT,
	DROP_CONNECT_FAILED,
	DROP_BASE_ADDR,
	DROP_NO_MEMORY,
	DROP_OVERSIZE,		/* udp: datagram above --max-datagram */
	DROP_NO_SESSION,	/* udp: no session slot (or no socket) for a new client */
	DROP_SEND_ERROR,	/* udp: the kernel refused a send (buffer full, EPERM from a filter) */
	DROP_ICMP_ERROR,	/* udp: ICMP error from the target (port/host unreachable) */
	DROP_RCVBUF,		/* udp: the kernel dropped datagrams, a socket's receive buffer was full */
	DROP_MAX_STREAMS,	/* kcp: a session already carries --max-streams streams */
	DROP_UNAUTH,		/* kcp: packet failed authentication / CRC / framing (silently dropped) */
	DROP_PROTOCOL,		/* kcp: smux or KCP protocol error closed a session */
	DROP_DEAD_LINK,		/* kcp: a session died (dead link, keepalive timeout, handshake failed) */
	DROP__COUNT
};

/* One cache line or more per worker so that writers never share a line. */
struct rule_stats {
	uint64_t accepted;
	uint64_t closed;
	uint64_t failed;
	uint64_t bytes_up;	/* client -> target */
	uint64_t bytes_down;	/* target -> client */
	uint64_t dgrams_up, dgrams_down;
	uint64_t sess_expired, sess_evicted;	/* udp; sessions created = accepted */
	uint64_t kcp_sessions, kcp_sessions_closed;
	uint64_t kcp_retrans, kcp_fast_retrans, kcp_lost;
	uint64_t kcp_out_segs, kcp_fec_recovered;
	uint32_t kcp_srtt_ms;	/* of the last session that reported */
	uint64_t kcp_rate_bps;	/* its rate control's bottleneck estimate (bytes/s), 0 = none */
	uint64_t drops[DROP__COUNT];
} __attribute__((aligned(64)));

struct single_rule;

struct rule {
	unsigned id;
	char canon[1024];	/* normalized text; equal text = same rule across reloads */
	char desc[2 * EP_TEXT_MAX + 16];	/* "rule 1 tcp://a:1 -> tcp://b:2" for logs */
	struct endpoint listen, target;
	struct rule_opts o;
	uint32_t active;	/* open connections over all workers (atomic) */
	int refs;		/* atomic: the rule set + every worker listener holding it */
	unsigned nworkers;
	struct rule_stats *stats;	/* [nworkers] */
	struct single_rule *single;	/* a running single-client rule's relay (cmd/single_rule.c), or NULL */
};

extern const char *const rule_drop_names[DROP__COUNT];

/* Whether the rule's listener carries datagrams (udp://, or fd:// with a udp:// target:
 * an inherited datagram socket) rather than TCP connections. */
static inline bool rule_datagram(const struct rule *r)
{
	return r->listen.scheme == EP_UDP || (r->listen.scheme == EP_FD && r->target.scheme == EP_UDP);
}

/* A single-client rule runs on relay/single.c's pair thread, not on the workers. */
static inline bool rule_single(const struct rule *r)
{
	return r->o.single.on;
}

void rule_opts_default(struct rule_opts *o);
/* The largest datagram a resolved single-client rule can carry (its protocols and families). */
uint32_t rule_single_max_datagram(const struct rule *r);
int rule_alloc_stats(struct rule *r, unsigned nworkers);
void rule_ref(struct rule *r);
void rule_unref(struct rule *r);
/* Sums the per-worker counters. */
void rule_stats_sum(const struct rule *r, struct rule_stats *out);

#endif
