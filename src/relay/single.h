/*
 * The single-client relay (pkthere's model, spec/pkthere.md §2): one listener (UDP or the
 * ICMP tunnel) locks to the first client that sends, one upstream (UDP or ICMP tunnel)
 * carries its datagrams, replies leave from the listener socket. Idle timeout drops the
 * client (the next one locks) or ends the process.
 *
 * Worker pairs: each pair is one thread with its own loop, listener socket and upstream
 * socket. The locked flow and its ICMP session state live in a flow object: one per pair
 * (single-flow) or one for all pairs (shared-flow). A pair takes the flow's mutex once per
 * received batch, never per packet; with one worker it is never contended.
 */
#ifndef FERRY_RELAY_SINGLE_H
#define FERRY_RELAY_SINGLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SINGLE_ID_UNSET (-1)

struct single_side {
	bool icmp;
	struct sockaddr_storage addr;	/* port = UDP port (ICMP: unused) */
	uint16_t id;			/* UDP port or ICMP echo identifier */
};

struct single_opts {
	struct single_side here, there;
	int32_t here_source_id, here_reply_id, there_source_id, there_reply_id;
	uint64_t timeout_ms;
	uint64_t handshake_timeout_ms;
	bool on_timeout_exit;
	size_t max_payload;
	uint32_t sync_pps;
	unsigned pool_size;
	unsigned workers;
	bool single_flow;
	bool client_unconnected;
	bool upstream_unconnected;
	bool kernel_echo_self_handshake;
	bool force_raw_upstream;
	unsigned debug_log;		/* SINGLE_LOG_* */
};

enum {
	SINGLE_LOG_DROPS = 1 << 0,
	SINGLE_LOG_HANDSHAKE = 1 << 1,
	SINGLE_LOG_HANDLES = 1 << 2,
	SINGLE_LOG_PACKETS = 1 << 3,
	SINGLE_LOG_PACKET_DUMP = 1 << 4,
};

/* One direction's counters (c2u or u2c), §4.2. Written by one pair, read by the stats. */
struct single_dir_stats {
	uint64_t pkts, bytes, bytes_max, drops_oversize;
	uint64_t latency_ns_sum, latency_ns_max;
	uint64_t queue_delay_ns_sum, queue_delay_ns_max;
	uint64_t send_service_ns_sum, send_service_ns_max;
	uint64_t errs, receive_errors, user_send_errors, control_send_errors, admission_drops;
	uint64_t zero_resolution_samples;
};

/* Error counters of §4.2, in the order of the spec's list. */
enum single_ctr {
	SC_SEQ_FUTURE, SC_SEQ_STALE, SC_SEQ_DUPLICATE, SC_HANDSHAKE_INVALID_CONTROL,
	SC_HANDSHAKE_STALE_ACK, SC_SPURIOUS_READINESS, SC_MALFORMED, SC_WRONG_PEER,
	SC_WRONG_SOURCE, SC_HANDSHAKE_INVALID_DROPS, SC_REPLAY_DROPS, SC_ABUSE_BUDGET,
	SC_STALE_SESSION, SC_STALE_AUTHORITY, SC_INVARIANT, SC_IP_MISSING_HEADER,
	SC_IP_INVALID_VERSION, SC_IP_TRUNCATED_HEADER, SC_IP_DECLARED_LENGTH,
	SC_IP_CAPTURE_TRUNCATED, SC_IP_FRAGMENTED, SC_IP_RESERVED_FLAG, SC_IP_EXTENSION_CHAIN,
	SC_IP_ROUTING_UNSUPPORTED, SC_IP_JUMBOGRAM, SC_IP_SOURCE_MISMATCH,
	SC_IP_DESTINATION_MISMATCH, SC_UNRELATED_PROTOCOL, SC_ICMP_MALFORMED,
	SC_COUNT
};
extern const char *const single_ctr_names[SC_COUNT];

struct single_stats {
	struct single_dir_stats c2u, u2c;
	uint64_t ctr[SC_COUNT];
};

/* What the stats printer sees of one pair. */
struct single_pair_view {
	bool locked;
	bool client_icmp, upstream_icmp;
	bool client_raw, upstream_raw;
	bool listener_connected, upstream_connected;
	char flow_key[128];
	char client[64];		/* the locked client's address, "" when not locked */
	char listener_local[64], upstream_local[64], upstream_remote[64];
	uint64_t icmp_client_tx_session, icmp_client_rx_session;	/* 0 = none */
	uint64_t icmp_up_tx_session, icmp_up_rx_session;
	uint64_t icmp_handoffs, icmp_pool_empty_stalls, icmp_negotiations_completed;
	uint64_t icmp_retry_attempts, icmp_resets_accepted, icmp_resets_ignored;
	uint64_t icmp_challenges_created, icmp_challenges_reused, icmp_challenges_consumed;
	uint64_t icmp_resets_rate_limited;
	unsigned icmp_ready_sessions, icmp_negotiating_sessions, icmp_draining_sessions;
};

struct single;

/*
 * Opens every socket (listener first, then upstream; pair 0 first) and realizes the IDs.
 * On failure returns a negative errno with one line in err (pkthere's wording).
 */
int single_open(const struct single_opts *o, struct single **out, char *err, size_t errlen);
/* Startup log lines describing the realized sockets (§1.6), one call per line. */
void single_describe(const struct single *s, void (*line)(const char *text, void *arg), void *arg);
/* Starts one thread per pair. */
int single_start(struct single *s);
/*
 * Stops the pairs and joins them. Returns 0, or 1 when a pair asked the process to end
 * (idle timeout with on-timeout exit).
 */
void single_stop(struct single *s);
void single_free(struct single *s);
/* An eventfd that becomes readable when a pair wants the process to exit (timeout exit). */
int single_exit_fd(const struct single *s);

unsigned single_pairs(const struct single *s);
/* The next diagnostic_sequence number, shared by stats lines and packet-dump records. */
uint64_t single_diag_next(void);
/*
 * Points every pair's upstream at addr (re-resolve, §2.7): connected sockets connect
 * again. Returns 1 when the address changed, 0 when it is the same, or a negative errno.
 */
int single_set_upstream(struct single *s, const struct sockaddr_storage *addr);
/* Sums the counters of every pair into st. */
void single_stats_sum(const struct single *s, struct single_stats *st);
void single_pair_view(struct single *s, unsigned i, struct single_pair_view *v);

#endif
