/*
 * The pkthere ICMP echo shim, control version 3 (spec/pkthere.md §3): the ICMP Echo header
 * (§3.1), the Internet checksum, the IPv4 header in front of a raw IPv4 read (§3.1, counters
 * of §4.2), the shim flag byte and frame bodies (§3.2, §3.3) and the per-session replay
 * window (§3.6).
 *
 * Pure: every function works on the caller's bytes and structs; no allocation, no clock, no
 * sockets, no state outside its arguments. Not here: which frame to send when, sessions,
 * pools, handshakes (those belong to the relay).
 *
 * Everything read comes from the network, so every read is bounds-checked before it is
 * made, and multi-byte fields are assembled byte by byte (big-endian, no unaligned loads).
 * Decode failures are reported in the order of §3.2's "Malformed-frame reasons" so that a
 * frame with several faults is always counted under the same reason.
 */
#include <errno.h>
#include <string.h>

#include "proto/icmp_shim.h"

/* §3.2: the only flag bits with a meaning; any other bit makes the frame malformed. */
#define SHIM_FLAGS_KNOWN (SHIM_FLAG_DATA | SHIM_FLAG_SRC_EQ_HDR | SHIM_FLAG_CADENCE)
/* §3.2: the explicit form puts a u16 source id after the flag byte. */
#define SHIM_FLAGS_BYTES 1
#define SHIM_SOURCE_BYTES 2
/* §3.2: DATA and CADENCE bodies start with a u64 session id; CADENCE is nothing else. */
#define SHIM_SESSION_BYTES 8
/* §3.3 table: exact control body lengths, counted from the version byte. */
#define SHIM_NEGOTIATE_BODY_BYTES 24
#define SHIM_RESET_BODY_BYTES 29
#define SHIM_CHALLENGE_BODY_BYTES 63
#define SHIM_GENERATION_BODY_BYTES 30
#define SHIM_ACTIVATED_BODY_BYTES 24

/* RFC 791: a header without options, and the fields of the flags/fragment-offset word. */
#define IP4_MIN_HDR_BYTES 20
#define IP4_FLAG_RESERVED 0x8000
#define IP4_FLAG_MORE_FRAGMENTS 0x2000
#define IP4_FRAG_OFFSET_MASK 0x1fff
#define IP4_PROTO_ICMP 1

/* ---- big-endian fields ---- */

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	put_u16(p, (uint16_t)(v >> 16));
	put_u16(p + 2, (uint16_t)v);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

/* §3.3: SessionKey (20 bytes) = generation u64 ‖ ordinal u32 ‖ session u64. */
static void get_key(const uint8_t *p, struct shim_key *k)
{
	k->generation = get_u64(p);
	k->ordinal = get_u32(p + 8);
	k->session = get_u64(p + 12);
}

static void put_key(uint8_t *p, const struct shim_key *k)
{
	put_u64(p, k->generation);
	put_u32(p + 8, k->ordinal);
	put_u64(p + 12, k->session);
}

/* ---- ICMP echo header ---- */

void icmp_echo_write(uint8_t out[ICMP_ECHO_HDR_BYTES], uint8_t type, uint16_t id, uint16_t seq)
{
	out[0] = type;
	out[1] = 0;
	out[2] = 0;
	out[3] = 0;
	put_u16(out + 4, id);
	put_u16(out + 6, seq);
}

int icmp_echo_read(const uint8_t *p, size_t n, int v6, struct icmp_echo *e)
{
	uint8_t request = v6 ? ICMP6_ECHO_REQUEST : ICMP4_ECHO_REQUEST;
	uint8_t reply = v6 ? ICMP6_ECHO_REPLY : ICMP4_ECHO_REPLY;

	if (n < ICMP_ECHO_HDR_BYTES)
		return -ICMP_E_SHORT;
	if ((p[0] != request && p[0] != reply) || p[1] != 0)
		return -ICMP_E_NOT_ECHO;
	e->type = p[0];
	e->code = p[1];
	e->id = get_u16(p + 4);
	e->seq = get_u16(p + 6);
	return 0;
}

/* ---- Internet checksum (RFC 1071) ---- */

/*
 * The one's-complement sum of p[0..n) taken as 16-bit words in host byte order, folded to
 * 16 bits. RFC 1071 §2(B): the sum is byte-order independent, so the words can be loaded as
 * they lie, four bytes at a time; the caller swaps the result into network order once. A
 * 64-bit accumulator of 32-bit loads cannot overflow for any IP-sized buffer.
 */
static uint16_t csum_fold_host(const uint8_t *p, size_t n)
{
	uint64_t sum = 0;
	uint32_t w32;
	uint16_t w16;

	for (; n >= 4; p += 4, n -= 4) {
		memcpy(&w32, p, sizeof(w32));
		sum += w32;
	}
	if (n >= 2) {
		memcpy(&w16, p, sizeof(w16));
		sum += w16;
		p += 2;
		n -= 2;
	}
	if (n) {
		/* an odd last byte is the first byte of a word padded with zero */
		uint8_t last[2] = { p[0], 0 };
		memcpy(&w16, last, sizeof(w16));
		sum += w16;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint16_t swap16(uint16_t v)
{
	return (uint16_t)(v << 8 | v >> 8);
}

uint16_t inet_csum(const struct csum_piece *pieces, int npieces)
{
	const uint16_t one = 1;
	uint32_t sum = 0;
	size_t off = 0;

	for (int i = 0; i < npieces; i++) {
		uint16_t part = csum_fold_host(pieces[i].p, pieces[i].n);

		/* a piece that starts at an odd offset pairs its bytes the other way round */
		sum += off & 1 ? swap16(part) : part;
		off += pieces[i].n;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	/* the sum of host-order words is the network-order sum with its bytes swapped */
	if (*(const uint8_t *)&one)
		sum = swap16((uint16_t)sum);
	return (uint16_t)~sum;
}

/* ---- IPv4 header of a raw read ---- */

int ip4_icmp_payload(const uint8_t *p, size_t n, size_t *off, size_t *len, uint32_t *src)
{
	size_t ihl_bytes, total;
	uint16_t frag;

	if (n < IP4_MIN_HDR_BYTES)
		return -IP_E_MISSING_HEADER;
	if (p[0] >> 4 != 4)
		return -IP_E_INVALID_VERSION;
	ihl_bytes = (size_t)(p[0] & 0x0f) * 4;
	if (ihl_bytes < IP4_MIN_HDR_BYTES || ihl_bytes > n)
		return -IP_E_TRUNCATED_HEADER;
	total = get_u16(p + 2);
	if (total < ihl_bytes)
		return -IP_E_DECLARED_LENGTH;
	if (total > n)
		return -IP_E_CAPTURE_TRUNCATED;
	frag = get_u16(p + 6);
	if (frag & IP4_FLAG_RESERVED)
		return -IP_E_RESERVED_FLAG;
	if (frag & (IP4_FLAG_MORE_FRAGMENTS | IP4_FRAG_OFFSET_MASK))
		return -IP_E_FRAGMENTED;
	if (p[9] != IP4_PROTO_ICMP)
		return -IP_E_UNRELATED_PROTOCOL;
	*off = ihl_bytes;
	*len = total - ihl_bytes;
	memcpy(src, p + 12, sizeof(*src));
	return 0;
}

/* ---- control bodies (§3.3), offsets from the version byte ---- */

/* The exact body length of an opcode, 0 for an unknown one. */
static size_t op_body_bytes(uint8_t op)
{
	switch (op) {
	case SHIM_OP_NEGOTIATE:
	case SHIM_OP_NEGOTIATE_ACK:
		return SHIM_NEGOTIATE_BODY_BYTES;
	case SHIM_OP_RESET_REQUIRED:
		return SHIM_RESET_BODY_BYTES;
	case SHIM_OP_CHALLENGE_NEGOTIATE:
	case SHIM_OP_CHALLENGE_ACK:
		return SHIM_CHALLENGE_BODY_BYTES;
	case SHIM_OP_GENERATION_ADVANCE:
	case SHIM_OP_GENERATION_ADVANCE_ACK:
		return SHIM_GENERATION_BODY_BYTES;
	case SHIM_OP_SESSION_ACTIVATED:
		return SHIM_ACTIVATED_BODY_BYTES;
	}
	return 0;
}

/* A SessionKey: generation != 0, session != 0 and != 2^64-1 (session + 1 must exist). */
static int key_check(const struct shim_key *k)
{
	if (k->generation == 0 || k->session == 0 || k->session == UINT64_MAX)
		return -SHIM_E_SESSION_ZERO;
	return 0;
}

static int rejected_kind_valid(uint8_t kind)
{
	return kind == SHIM_REJECTED_DATA || kind == SHIM_REJECTED_NEGOTIATE;
}

/* NEGOTIATE / NEGOTIATE_ACK: 2:2 reply_id, 4:20 key. */
static void negotiate_read(const uint8_t *b, struct shim_frame *f)
{
	f->reply_id = get_u16(b + 2);
	get_key(b + 4, &f->key);
	f->session = f->key.session;
}

static void negotiate_write(const struct shim_frame *f, uint8_t *b)
{
	put_u16(b + 2, f->reply_id);
	put_key(b + 4, &f->key);
}

static int negotiate_check(const struct shim_frame *f)
{
	if (f->reply_id == 0)
		return -SHIM_E_REPLY_ZERO;
	return key_check(&f->key);
}

/*
 * RESET_REQUIRED: 2:1 rejected_kind, 3:8 rejected session, 11:2 rejected_seq,
 * 13:8 receiver_generation (0 = none), 21:8 challenge.
 */
static void reset_read(const uint8_t *b, struct shim_frame *f)
{
	f->rejected_kind = b[2];
	f->rejected_key.session = get_u64(b + 3);
	f->rejected_seq = get_u16(b + 11);
	f->receiver_generation = get_u64(b + 13);
	f->challenge = get_u64(b + 21);
	f->session = f->rejected_key.session;
}

static void reset_write(const struct shim_frame *f, uint8_t *b)
{
	b[2] = f->rejected_kind;
	put_u64(b + 3, f->rejected_key.session);
	put_u16(b + 11, f->rejected_seq);
	put_u64(b + 13, f->receiver_generation);
	put_u64(b + 21, f->challenge);
}

static int reset_check(const struct shim_frame *f)
{
	if (f->rejected_key.session == 0)
		return -SHIM_E_SESSION_ZERO;
	if (!rejected_kind_valid(f->rejected_kind) || f->challenge == 0)
		return -SHIM_E_FIELD;
	return 0;
}

/*
 * CHALLENGE_NEGOTIATE / CHALLENGE_ACK: 2:2 reply_id, 4:8 challenge, 12:8 receiver_generation,
 * 20:1 rejected_kind, 21:20 rejected key, 41:2 rejected_seq, 43:20 new key.
 */
static void challenge_read(const uint8_t *b, struct shim_frame *f)
{
	f->reply_id = get_u16(b + 2);
	f->challenge = get_u64(b + 4);
	f->receiver_generation = get_u64(b + 12);
	f->rejected_kind = b[20];
	get_key(b + 21, &f->rejected_key);
	f->rejected_seq = get_u16(b + 41);
	get_key(b + 43, &f->key);
	f->session = f->key.session;
}

static void challenge_write(const struct shim_frame *f, uint8_t *b)
{
	put_u16(b + 2, f->reply_id);
	put_u64(b + 4, f->challenge);
	put_u64(b + 12, f->receiver_generation);
	b[20] = f->rejected_kind;
	put_key(b + 21, &f->rejected_key);
	put_u16(b + 41, f->rejected_seq);
	put_key(b + 43, &f->key);
}

/*
 * A rejected Negotiate names a whole SessionKey (it came from a valid NEGOTIATE); a rejected
 * Data frame names only its session id, with generation and ordinal 0.
 */
static int challenge_check(const struct shim_frame *f)
{
	const struct shim_key *rk = &f->rejected_key;
	int err;

	if (f->reply_id == 0)
		return -SHIM_E_REPLY_ZERO;
	err = key_check(&f->key);
	if (err)
		return err;
	if (rk->session == 0)
		return -SHIM_E_SESSION_ZERO;
	if (f->rejected_kind == SHIM_REJECTED_NEGOTIATE) {
		err = key_check(rk);
		if (err)
			return err;
	}
	if (f->challenge == 0 || !rejected_kind_valid(f->rejected_kind))
		return -SHIM_E_FIELD;
	if (f->rejected_kind == SHIM_REJECTED_DATA && (rk->generation != 0 || rk->ordinal != 0))
		return -SHIM_E_FIELD;
	return 0;
}

/* GENERATION_ADVANCE / GENERATION_ADVANCE_ACK: 2:20 current key, 22:8 proposed generation. */
static void generation_read(const uint8_t *b, struct shim_frame *f)
{
	get_key(b + 2, &f->key);
	f->proposed_generation = get_u64(b + 22);
	f->session = f->key.session;
}

static void generation_write(const struct shim_frame *f, uint8_t *b)
{
	put_key(b + 2, &f->key);
	put_u64(b + 22, f->proposed_generation);
}

static int generation_check(const struct shim_frame *f)
{
	int err = key_check(&f->key);

	if (err)
		return err;
	if (f->proposed_generation == 0)
		return -SHIM_E_FIELD;
	return 0;
}

/* SESSION_ACTIVATED: 2:20 key, 22:2 accepted_seq. */
static void activated_read(const uint8_t *b, struct shim_frame *f)
{
	get_key(b + 2, &f->key);
	f->accepted_seq = get_u16(b + 22);
	f->session = f->key.session;
}

static void activated_write(const struct shim_frame *f, uint8_t *b)
{
	put_key(b + 2, &f->key);
	put_u16(b + 22, f->accepted_seq);
}

static int activated_check(const struct shim_frame *f)
{
	return key_check(&f->key);
}

/* The body of a known opcode, whose length the caller has checked. */
static void control_read(const uint8_t *b, struct shim_frame *f)
{
	switch (f->op) {
	case SHIM_OP_NEGOTIATE:
	case SHIM_OP_NEGOTIATE_ACK:
		negotiate_read(b, f);
		break;
	case SHIM_OP_RESET_REQUIRED:
		reset_read(b, f);
		break;
	case SHIM_OP_CHALLENGE_NEGOTIATE:
	case SHIM_OP_CHALLENGE_ACK:
		challenge_read(b, f);
		break;
	case SHIM_OP_GENERATION_ADVANCE:
	case SHIM_OP_GENERATION_ADVANCE_ACK:
		generation_read(b, f);
		break;
	case SHIM_OP_SESSION_ACTIVATED:
		activated_read(b, f);
		break;
	}
}

static void control_write(const struct shim_frame *f, uint8_t *b)
{
	b[0] = SHIM_CTL_VERSION;
	b[1] = f->op;
	switch (f->op) {
	case SHIM_OP_NEGOTIATE:
	case SHIM_OP_NEGOTIATE_ACK:
		negotiate_write(f, b);
		break;
	case SHIM_OP_RESET_REQUIRED:
		reset_write(f, b);
		break;
	case SHIM_OP_CHALLENGE_NEGOTIATE:
	case SHIM_OP_CHALLENGE_ACK:
		challenge_write(f, b);
		break;
	case SHIM_OP_GENERATION_ADVANCE:
	case SHIM_OP_GENERATION_ADVANCE_ACK:
		generation_write(f, b);
		break;
	case SHIM_OP_SESSION_ACTIVATED:
		activated_write(f, b);
		break;
	}
}

/* The field checks after the source id: reply id, then session ids/keys, then the rest. */
static int control_check(const struct shim_frame *f)
{
	switch (f->op) {
	case SHIM_OP_NEGOTIATE:
	case SHIM_OP_NEGOTIATE_ACK:
		return negotiate_check(f);
	case SHIM_OP_RESET_REQUIRED:
		return reset_check(f);
	case SHIM_OP_CHALLENGE_NEGOTIATE:
	case SHIM_OP_CHALLENGE_ACK:
		return challenge_check(f);
	case SHIM_OP_GENERATION_ADVANCE:
	case SHIM_OP_GENERATION_ADVANCE_ACK:
		return generation_check(f);
	case SHIM_OP_SESSION_ACTIVATED:
		return activated_check(f);
	}
	return -SHIM_E_OPCODE;
}

/* ---- shim decode (§3.2) ---- */

/* b[0..n) follows the flag byte and source field; explicit_src: the source field is present. */
static int data_decode(const uint8_t *b, size_t n, int explicit_src, struct shim_frame *f)
{
	f->kind = SHIM_DATA;
	if (explicit_src && f->source_id == 0)
		return -SHIM_E_SOURCE_ZERO;
	if (n < SHIM_SESSION_BYTES)
		return -SHIM_E_BODY_SHORT;
	f->session = get_u64(b);
	if (f->session == 0)
		return -SHIM_E_SESSION_ZERO;
	f->payload = b + SHIM_SESSION_BYTES;
	f->payload_len = n - SHIM_SESSION_BYTES;
	return 0;
}

static int cadence_decode(const uint8_t *b, size_t n, int explicit_src, struct shim_frame *f)
{
	f->kind = SHIM_CADENCE;
	if (n != SHIM_SESSION_BYTES)
		return -SHIM_E_KIND;
	if (explicit_src && f->source_id == 0)
		return -SHIM_E_SOURCE_ZERO;
	f->session = get_u64(b);
	if (f->session == 0)
		return -SHIM_E_SESSION_ZERO;
	return 0;
}

static int control_decode(const uint8_t *b, size_t n, int explicit_src, struct shim_frame *f)
{
	f->kind = SHIM_CONTROL;
	if (n < 1 || b[0] != SHIM_CTL_VERSION)
		return -SHIM_E_VERSION;
	if (n < 2 || op_body_bytes(b[1]) == 0)
		return -SHIM_E_OPCODE;
	f->op = b[1];
	if (n != op_body_bytes(f->op))
		return -SHIM_E_LENGTH;
	if (explicit_src && f->source_id == 0)
		return -SHIM_E_SOURCE_ZERO;
	control_read(b, f);
	return control_check(f);
}

int shim_decode(const uint8_t *p, size_t n, uint16_t echo_id, struct shim_frame *f)
{
	uint8_t flags;
	size_t hdr = SHIM_FLAGS_BYTES;
	int explicit_src;

	memset(f, 0, sizeof(*f));
	if (n == 0)
		return -SHIM_E_EMPTY;
	flags = p[0];
	if (flags & ~SHIM_FLAGS_KNOWN)
		return -SHIM_E_FLAGS;
	explicit_src = !(flags & SHIM_FLAG_SRC_EQ_HDR);
	if (explicit_src) {
		if (n < SHIM_FLAGS_BYTES + SHIM_SOURCE_BYTES)
			return -SHIM_E_SHORT;
		f->source_id = get_u16(p + 1);
		hdr += SHIM_SOURCE_BYTES;
	} else {
		f->source_id = echo_id;
	}
	if ((flags & SHIM_FLAG_DATA) && (flags & SHIM_FLAG_CADENCE))
		return -SHIM_E_KIND;
	if (flags & SHIM_FLAG_DATA)
		return data_decode(p + hdr, n - hdr, explicit_src, f);
	if (flags & SHIM_FLAG_CADENCE)
		return cadence_decode(p + hdr, n - hdr, explicit_src, f);
	return control_decode(p + hdr, n - hdr, explicit_src, f);
}

/* ---- shim encode ---- */

int shim_encode(const struct shim_frame *f, uint16_t echo_id, uint8_t *out, size_t cap)
{
	int compact = f->source_id == echo_id;
	size_t hdr = compact ? SHIM_FLAGS_BYTES : SHIM_FLAGS_BYTES + SHIM_SOURCE_BYTES;
	size_t body;
	uint8_t flags;

	/* §3.3: every frame carries a nonzero source id; what decode refuses is never sent */
	if (f->source_id == 0)
		return -EINVAL;
	switch (f->kind) {
	case SHIM_DATA:
	case SHIM_CADENCE:
		if (f->session == 0)
			return -EINVAL;
		flags = f->kind == SHIM_DATA ? SHIM_FLAG_DATA : SHIM_FLAG_CADENCE;
		body = SHIM_SESSION_BYTES;
		break;
	case SHIM_CONTROL:
		if (control_check(f))
			return -EINVAL;
		flags = 0;
		body = op_body_bytes(f->op);
		break;
	default:
		return -EINVAL;
	}
	if (cap < hdr + body)
		return -ENOSPC;
	out[0] = flags | (compact ? SHIM_FLAG_SRC_EQ_HDR : 0);
	if (!compact)
		put_u16(out + 1, f->source_id);
	if (f->kind == SHIM_CONTROL)
		control_write(f, out + hdr);
	else
		put_u64(out + hdr, f->session);
	return (int)(hdr + body);
}

const char *shim_err_name(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "ok";
	case SHIM_E_EMPTY:
		return "empty";
	case SHIM_E_FLAGS:
		return "flags";
	case SHIM_E_SHORT:
		return "short";
	case SHIM_E_KIND:
		return "kind";
	case SHIM_E_VERSION:
		return "version";
	case SHIM_E_OPCODE:
		return "opcode";
	case SHIM_E_LENGTH:
		return "length";
	case SHIM_E_SOURCE_ZERO:
		return "source_zero";
	case SHIM_E_REPLY_ZERO:
		return "reply_zero";
	case SHIM_E_BODY_SHORT:
		return "body_short";
	case SHIM_E_SESSION_ZERO:
		return "session_zero";
	case SHIM_E_FIELD:
		return "field";
	}
	return "?";
}

/* ---- replay window (§3.6) ---- */

static int replay_test(const struct shim_replay *w, uint16_t seq)
{
	unsigned bit = seq % SHIM_REPLAY_WINDOW;

	return (w->seen[bit / 64] >> (bit % 64)) & 1;
}

static void replay_set(struct shim_replay *w, uint16_t seq)
{
	unsigned bit = seq % SHIM_REPLAY_WINDOW;

	w->seen[bit / 64] |= (uint64_t)1 << (bit % 64);
}

/*
 * Forgets the bits of the count (< SHIM_REPLAY_WINDOW) sequences after w->highest: their
 * positions held sequences that fall out of the window when highest moves past them.
 */
static void replay_clear_after_highest(struct shim_replay *w, unsigned count)
{
	unsigned bit = (w->highest + 1u) % SHIM_REPLAY_WINDOW;

	while (count) {
		unsigned shift = bit % 64, take = 64 - shift;
		uint64_t mask;

		if (take > count)
			take = count;
		mask = take == 64 ? ~(uint64_t)0 : (((uint64_t)1 << take) - 1) << shift;
		w->seen[bit / 64] &= ~mask;
		bit = (bit + take) % SHIM_REPLAY_WINDOW;
		count -= take;
	}
}

void shim_replay_init(struct shim_replay *w)
{
	memset(w, 0, sizeof(*w));
}

enum shim_replay_verdict shim_replay_admit(struct shim_replay *w, uint16_t seq)
{
	if (!w->started) {
		shim_replay_init(w);
		w->started = 1;
		w->highest = seq;
		replay_set(w, seq);
		return SHIM_REPLAY_OK;
	}
	if (seq > w->highest) {
		unsigned ahead = (unsigned)(seq - w->highest);

		if (ahead >= SHIM_REPLAY_WINDOW)
			memset(w->seen, 0, sizeof(w->seen));
		else
			replay_clear_after_highest(w, ahead);
		w->highest = seq;
		replay_set(w, seq);
		return SHIM_REPLAY_OK;
	}
	if ((unsigned)(w->highest - seq) >= SHIM_REPLAY_WINDOW)
		return SHIM_REPLAY_STALE;
	if (replay_test(w, seq))
		return SHIM_REPLAY_DUPLICATE;
	replay_set(w, seq);
	return SHIM_REPLAY_OK;
}
