/*
 * Session state of the ICMP echo tunnel (spec/pkthere.md §3.3–3.6), for both ends, without
 * I/O: the caller passes decoded frames and the time in, and gets back what to send and
 * what to deliver. Two roles:
 *
 *   icmp_up  the side with "--there ICMP:…": sends Echo Requests. Negotiates a transmit
 *            session S (NEGOTIATE -> NEGOTIATE_ACK, retried with back-off), numbers its
 *            requests 0,1,2,… once per session, accepts replies only on session S+1 through
 *            a replay window, rolls over to a fresh session before the 16-bit sequence space
 *            runs out, and answers RESET_REQUIRED with CHALLENGE_NEGOTIATE.
 *   icmp_ls  the side with "--here ICMP:…": answers NEGOTIATE / CHALLENGE / GENERATION
 *            locally, admits DATA and CADENCE of the negotiated session through a replay
 *            window, remembers the newest request sequence to answer with, and asks an
 *            unknown sender to re-negotiate (RESET_REQUIRED, rate-limited).
 *
 * Which IP address is locked is the relay's business; these objects deal in echo IDs,
 * source IDs, session IDs and sequences.
 */
#ifndef FERRY_PROTO_ICMP_SESSION_H
#define FERRY_PROTO_ICMP_SESSION_H
#include <stdbool.h>
#include <stdint.h>
#include "proto/icmp_shim.h"

/* Retransmit back-off for pending control frames: 10 ms × 2^(n-1), capped (§3.3). */
#define ICMP_RETRY_FIRST_MS 10
#define ICMP_RETRY_MAX_MS 500
/* Start negotiating the next transmit session this many sequences before the space ends. */
#define ICMP_ROLLOVER_HEADROOM_SEQS 4096
/* Sequence numbers per transmit session: 0..65535, each used once. */
#define ICMP_SEQS_PER_SESSION 65536u
/* A listener answers an unknown session at most this often per peer. */
#define ICMP_RESET_INTERVAL_MS 100

/* Why an incoming frame was not delivered; one counter each in the stats (§4.2). */
enum icmp_drop {
	ICMP_OK = 0,
	ICMP_DROP_STALE_SESSION,	/* stale_session_drops */
	ICMP_DROP_DUPLICATE,		/* icmp_sequence_duplicate */
	ICMP_DROP_STALE_SEQ,		/* icmp_sequence_stale */
	ICMP_DROP_FUTURE_SEQ,		/* icmp_sequence_future */
	ICMP_DROP_INVALID_CONTROL,	/* handshake_invalid_control */
	ICMP_DROP_STALE_ACK,		/* handshake_stale_ack */
	ICMP_DROP_WRONG_SOURCE,		/* wrong_source_drops */
	ICMP_DROP_COUNT
};

/* What the caller must do with an incoming frame. */
enum icmp_action {
	ICMP_ACT_DROP = 0,	/* count *drop */
	ICMP_ACT_DELIVER,	/* DATA payload goes to the other side of the relay */
	ICMP_ACT_CONSUMED,	/* a control or cadence frame was used up here */
	ICMP_ACT_READY,		/* upstream: the handshake completed; send what was held */
};

/* A frame to send: the shim frame plus the echo header fields. */
struct icmp_out {
	struct shim_frame f;
	uint16_t echo_id;
	uint16_t seq;
};

/* Session and generation IDs: a counter seeded from 8 random bytes, handed out in order. */
struct icmp_ids {
	uint64_t next;
};
uint64_t icmp_ids_take(struct icmp_ids *ids, unsigned n);

/* ---------------- upstream side ---------------- */

enum icmp_up_state {
	ICMP_UP_IDLE = 0,	/* no session; the first user datagram starts one */
	ICMP_UP_NEGOTIATING,	/* NEGOTIATE (or CHALLENGE_NEGOTIATE) sent, waiting for its ACK */
	ICMP_UP_READY,
};

struct icmp_tx {
	struct shim_key key;
	uint32_t next_seq;	/* next sequence to use; ICMP_SEQS_PER_SESSION = exhausted */
	uint16_t last_seq;	/* newest sequence sent (sync admission) */
	bool sent_any;
	struct shim_replay rx;	/* replies on key.session + 1 */
};

struct icmp_up {
	/* configuration */
	uint16_t echo_id;	/* Echo ID of our requests (the remote listen ID) */
	uint16_t source_id;	/* our logical source ID (nonzero) */
	uint16_t reply_id;	/* the Echo ID replies must carry (nonzero) */
	uint64_t handshake_timeout_ms;
	uint32_t sync_pps;	/* 0 = no sync: no catch-up window check */
	bool accept_kernel_echo;	/* --debug-icmp-kernel-echo-self-handshake */
	struct icmp_ids *ids;

	enum icmp_up_state state;
	struct icmp_tx cur;	/* the active transmit session (or the one being negotiated) */
	struct icmp_tx prev;	/* the previous one, still admitting late replies */
	bool have_prev;
	struct icmp_tx next;	/* reserve session being negotiated for roll-over */
	bool next_pending, next_ready;
	/* the pending control frame and its retry schedule */
	struct icmp_out ctl;
	struct icmp_tx *ctl_tx;	/* session whose sequence the retries consume */
	bool ctl_pending;
	uint64_t ctl_started_ms, ctl_due_ms;
	unsigned ctl_tries;
	/* counters kept here because only this object sees them */
	uint64_t handoffs, pool_empty_stalls, negotiations_completed, retry_attempts;
	uint64_t resets_accepted, resets_ignored;
};

void icmp_up_init(struct icmp_up *u, struct icmp_ids *ids);
/* Forgets the session (idle timeout): the next datagram negotiates again. */
void icmp_up_reset(struct icmp_up *u);
/*
 * A user datagram wants to go out. Returns 0 with o filled as a DATA frame (the caller
 * sets o->f.payload); -EINPROGRESS when it just started a handshake (the caller holds the
 * datagram and calls icmp_up_poll to get the NEGOTIATE); -EAGAIN while a handshake is
 * pending (drop: drop-handshake-pending); -ENOSPC when the sequence space is used up and
 * no next session is ready yet (a stall).
 */
int icmp_up_data(struct icmp_up *u, uint64_t now_ms, struct icmp_out *o);
/* A CADENCE frame for the active session; -EAGAIN when not ready. */
int icmp_up_cadence(struct icmp_up *u, struct icmp_out *o);
/*
 * Control frames due now (first sends and retries). Returns 1 with o filled (call again),
 * 0 when nothing is due, -ETIMEDOUT when the handshake outlived its timeout (the caller
 * drops the held datagram; the state is IDLE again).
 */
int icmp_up_poll(struct icmp_up *u, uint64_t now_ms, struct icmp_out *o);
/* When icmp_up_poll wants to be called next; UINT64_MAX when never. */
uint64_t icmp_up_deadline(const struct icmp_up *u);
/* An incoming frame with Echo header e. *drop is set for ICMP_ACT_DROP. */
enum icmp_action icmp_up_input(struct icmp_up *u, uint64_t now_ms, const struct icmp_echo *e,
			       const struct shim_frame *f, enum icmp_drop *drop);

/* ---------------- listener side ---------------- */

struct icmp_rx {
	struct shim_key key;	/* the peer's transmit session S; we reply on S + 1 */
	struct shim_replay w;
	bool active;
};

#define ICMP_LS_CANDIDATES 4
/* Unanswered request sequences kept; older ones would fall out of the peer's window. */
#define ICMP_LS_FRESH_SEQS 1024

struct icmp_ls {
	/* configuration */
	uint16_t listen_id;	/* 0 = learn from the first NEGOTIATE */
	uint16_t source_id;	/* 0 = the (learned) listen ID */
	uint16_t reply_id;	/* advertised in ACKs; 0 = the (learned) listen ID */
	uint64_t challenge_seed;	/* PRNG state for RESET_REQUIRED challenges */

	/* the peer (valid while bound) */
	bool bound;
	uint16_t peer_source;	/* the client's source ID */
	uint16_t peer_reply;	/* Echo ID our frames to it carry */
	uint16_t peer_echo;	/* Echo ID it sends to (the learned listen ID) */
	uint64_t generation;
	struct icmp_rx cur, prev;
	struct icmp_rx cand[ICMP_LS_CANDIDATES];	/* reserve sessions negotiated, not used yet */
	/*
	 * Sequences for replies. pkthere answers with the newest request sequence, so a second
	 * reply before the next request reuses it and the peer drops it as a duplicate. We
	 * keep the admitted request sequences not yet answered and use each once (oldest
	 * first, newest first in sync mode); only when none is left do we fall back to
	 * pkthere's reuse of the newest. Same wire rules, no lost replies for request/response.
	 */
	uint16_t req_seq;	/* newest admitted request sequence on cur */
	bool have_seq;
	uint16_t fresh[ICMP_LS_FRESH_SEQS];
	unsigned fresh_head, fresh_count;
	bool sync;		/* the peer sends CADENCE: hold replies for fresh sequences */
	/* reset challenge outstanding */
	uint64_t challenge;
	uint64_t challenge_until_ms;
	uint64_t last_reset_ms;
	uint64_t challenges_created, challenges_reused, challenges_consumed, resets_rate_limited;
	uint64_t handshake_timeout_ms;
};

void icmp_ls_init(struct icmp_ls *l);
/* Forgets the peer (idle timeout / relock). */
void icmp_ls_unbind(struct icmp_ls *l);
/* The source and reply IDs this listener uses towards its (learned) peer. */
uint16_t icmp_ls_source_id(const struct icmp_ls *l);
/*
 * An incoming frame. The relay passes only frames from the locked client's IP while the
 * listener is bound, and frames from anyone while it is not. Returns the action; when *reply is set the caller sends
 * reply_out (an ACK or a RESET_REQUIRED) back to the sender's IP.
 */
enum icmp_action icmp_ls_input(struct icmp_ls *l, uint64_t now_ms,
			       const struct icmp_echo *e, const struct shim_frame *f,
			       enum icmp_drop *drop, bool *reply, struct icmp_out *reply_out);
/*
 * A datagram from the upstream goes to the peer: returns 0 with o filled (DATA on S+1,
 * newest request sequence), -EAGAIN in sync mode when no fresh sequence is available
 * (hold it; icmp_ls_fresh_seq says when one is), -ENOTCONN when no session exists.
 */
int icmp_ls_data(struct icmp_ls *l, struct icmp_out *o);
bool icmp_ls_fresh_seq(const struct icmp_ls *l);

#endif
