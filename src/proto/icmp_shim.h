/*
 * The ICMP echo tunnel shim of pkthere, control version 3 (spec/pkthere.md §3): the bytes
 * that follow the 8-byte ICMP Echo header. Pure: bytes in, bytes out; no sockets, no
 * clock, no allocation. Also the pieces of ICMP and IPv4 a raw socket hands us (the echo
 * header, the Internet checksum, the IPv4 header in front of a raw IPv4 read) and the
 * per-session replay window (§3.6).
 *
 * All multi-byte fields on the wire are big-endian. Every decode failure is a distinct
 * negative code so the caller can count it by reason; nothing here logs.
 */
#ifndef FERRY_PROTO_ICMP_SHIM_H
#define FERRY_PROTO_ICMP_SHIM_H
#include <stddef.h>
#include <stdint.h>

/* ---- ICMP echo header (RFC 792, RFC 4443) ---- */

#define ICMP_ECHO_HDR_BYTES 8
#define ICMP4_ECHO_REPLY 0
#define ICMP4_ECHO_REQUEST 8
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129

struct icmp_echo {
	uint8_t type;
	uint8_t code;
	uint16_t id;
	uint16_t seq;
};

/* Writes type, code 0, checksum 0, id, seq (the caller or the kernel fills the checksum). */
void icmp_echo_write(uint8_t out[ICMP_ECHO_HDR_BYTES], uint8_t type, uint16_t id, uint16_t seq);

/*
 * Reads an ICMP message. Returns 0 for an Echo Request or Reply of the family (v6 = 0:
 * types 8/0, v6 = 1: types 128/129) with code 0; -ICMP_E_SHORT when n < 8;
 * -ICMP_E_NOT_ECHO for any other type or a nonzero code (e.g. errors, neighbour discovery).
 * The payload (shim) starts at p + 8.
 */
enum { ICMP_E_SHORT = 1, ICMP_E_NOT_ECHO };
int icmp_echo_read(const uint8_t *p, size_t n, int v6, struct icmp_echo *e);

/* Internet checksum (RFC 1071) over several pieces, as if they were one buffer. The
 * pieces may have odd lengths. Returns the value to store in the header (network order
 * bytes: out[2] = ret >> 8, out[3] = ret & 0xff). */
struct csum_piece {
	const void *p;
	size_t n;
};
uint16_t inet_csum(const struct csum_piece *pieces, int npieces);

/*
 * The IPv4 header a raw IPv4 socket puts in front of the ICMP message. On success returns
 * 0 and sets *off / *len to the ICMP message inside p (len from the header's total length,
 * which must fit in n), *src to the source address (network order, as in the packet).
 * Errors, in the order checked, one per pkthere counter (§4.2):
 */
enum ip4_err {
	IP_E_MISSING_HEADER = 1,	/* n < 20 */
	IP_E_INVALID_VERSION,		/* version != 4 */
	IP_E_TRUNCATED_HEADER,		/* IHL < 5 or IHL*4 > n */
	IP_E_DECLARED_LENGTH,		/* total length < IHL*4 */
	IP_E_CAPTURE_TRUNCATED,		/* total length > n */
	IP_E_RESERVED_FLAG,		/* the reserved (evil) bit is set */
	IP_E_FRAGMENTED,		/* MF set or fragment offset != 0 */
	IP_E_UNRELATED_PROTOCOL,	/* protocol != 1 (ICMP) */
};
int ip4_icmp_payload(const uint8_t *p, size_t n, size_t *off, size_t *len, uint32_t *src);

/* ---- the shim (§3.2, §3.3) ---- */

#define SHIM_FLAG_DATA 0x80
#define SHIM_FLAG_SRC_EQ_HDR 0x10
#define SHIM_FLAG_CADENCE 0x04
#define SHIM_CTL_VERSION 3
/* The longest shim: explicit source + CHALLENGE_* body (1 + 2 + 63). */
#define SHIM_MAX_BYTES 66
/* The longest data shim: explicit source + session id (1 + 2 + 8). */
#define SHIM_DATA_MAX_BYTES 11

enum shim_kind {
	SHIM_DATA = 1,
	SHIM_CADENCE,
	SHIM_CONTROL,
};

enum shim_op {
	SHIM_OP_NEGOTIATE = 0x01,
	SHIM_OP_NEGOTIATE_ACK = 0x02,
	SHIM_OP_RESET_REQUIRED = 0x03,
	SHIM_OP_CHALLENGE_NEGOTIATE = 0x04,
	SHIM_OP_CHALLENGE_ACK = 0x05,
	SHIM_OP_GENERATION_ADVANCE = 0x06,
	SHIM_OP_GENERATION_ADVANCE_ACK = 0x07,
	SHIM_OP_SESSION_ACTIVATED = 0x08,
};

/* RESET_REQUIRED / CHALLENGE_*: what kind of frame was rejected. */
enum shim_rejected_kind {
	SHIM_REJECTED_DATA = 1,
	SHIM_REJECTED_NEGOTIATE = 2,
};

/* SessionKey (20 bytes on the wire): generation u64 != 0, ordinal u32, session u64 (!= 0, != 2^64-1). */
struct shim_key {
	uint64_t generation;
	uint32_t ordinal;
	uint64_t session;
};

/*
 * One decoded (or to-be-encoded) frame. Which fields mean something depends on kind/op:
 *   DATA            session, payload/payload_len
 *   CADENCE         session
 *   NEGOTIATE(_ACK) reply_id, key
 *   RESET_REQUIRED  rejected_kind, rejected_key.session, rejected_seq, receiver_generation, challenge
 *   CHALLENGE_*     reply_id, challenge, receiver_generation, rejected_kind, rejected_key,
 *                   rejected_seq, key (the new key)
 *   GENERATION_*    key (the current key), proposed_generation
 *   SESSION_ACTIVATED key, accepted_seq
 * On decode, session is also set for control frames to the routing session of §3.3
 * (key.session; rejected_key.session for RESET_REQUIRED).
 */
struct shim_frame {
	enum shim_kind kind;
	uint8_t op;
	uint16_t source_id;
	uint64_t session;
	const uint8_t *payload;
	size_t payload_len;
	uint16_t reply_id;
	struct shim_key key;
	struct shim_key rejected_key;
	uint8_t rejected_kind;
	uint16_t rejected_seq;
	uint64_t challenge;
	uint64_t receiver_generation;
	uint64_t proposed_generation;
	uint16_t accepted_seq;
};

/* Decode failures, first that applies (§3.2 "Malformed-frame reasons"). */
enum shim_err {
	SHIM_E_EMPTY = 1,		/* no shim at all (a plain ping) */
	SHIM_E_FLAGS,			/* bits other than 0x80/0x10/0x04 */
	SHIM_E_SHORT,			/* explicit form shorter than 3 bytes */
	SHIM_E_KIND,			/* DATA and CADENCE together, or a cadence body != 8 bytes */
	SHIM_E_VERSION,			/* control version != 3 (or no version byte) */
	SHIM_E_OPCODE,			/* unknown opcode (or no opcode byte) */
	SHIM_E_LENGTH,			/* control body length != the opcode's */
	SHIM_E_SOURCE_ZERO,		/* explicit source id 0 */
	SHIM_E_REPLY_ZERO,		/* reply id 0 in opcodes 1, 2, 4, 5 */
	SHIM_E_BODY_SHORT,		/* data/cadence body < 8 bytes */
	SHIM_E_SESSION_ZERO,		/* session id 0 (or a key's session 2^64-1, or generation 0) */
	SHIM_E_FIELD,			/* any other invalid field (challenge 0, rejected kind, ...) */
	SHIM_E_COUNT
};

/*
 * Decodes the shim in p[0..n) (the ICMP payload) of a frame whose ICMP identifier is
 * echo_id (the compact form takes its source id from it). payload points into p.
 * Returns 0 or -SHIM_E_*.
 */
int shim_decode(const uint8_t *p, size_t n, uint16_t echo_id, struct shim_frame *f);

/*
 * Encodes the shim header of f into out (cap >= SHIM_MAX_BYTES always suffices), choosing
 * the compact form when f->source_id == echo_id. For DATA only the header is written; the
 * caller sends f->payload after it (so user bytes are never copied). Returns the number of
 * bytes written, or -EINVAL for a frame that must not be sent (source id 0, session 0...).
 */
int shim_encode(const struct shim_frame *f, uint16_t echo_id, uint8_t *out, size_t cap);

/* Name of a decode error, for logs and counters ("flags", "short", ...). */
const char *shim_err_name(int err);

/* ---- replay window (§3.6): 2048 sequences, sessions never wrap ---- */

#define SHIM_REPLAY_WINDOW 2048

enum shim_replay_verdict {
	SHIM_REPLAY_OK = 0,		/* accepted and recorded */
	SHIM_REPLAY_DUPLICATE,		/* already seen */
	SHIM_REPLAY_STALE,		/* highest - seq >= SHIM_REPLAY_WINDOW */
};

struct shim_replay {
	int started;
	uint16_t highest;
	uint64_t seen[SHIM_REPLAY_WINDOW / 64];	/* bit (seq % 2048) for seqs in the window */
};

void shim_replay_init(struct shim_replay *w);
/* Checks seq and, when accepted, records it (the first seq of a session sets the window). */
enum shim_replay_verdict shim_replay_admit(struct shim_replay *w, uint16_t seq);

#endif
