/*
 * proto/icmp_shim: the worked examples of spec/pkthere.md §3.8 byte for byte (encode and
 * checksum, then decode), encode/decode round trips of every frame kind and opcode in the
 * compact and explicit source forms, one case per malformed-frame reason of §3.2 and their
 * order when a frame has several faults, the Internet checksum over odd-length pieces, the
 * IPv4 header of a raw read, the ICMP Echo header, and the replay window of §3.6 against
 * a plain model (a set of seen sequences and the highest one).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/icmp_shim.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* §3.8's pool generation G and session S */
#define G 0x1122334455667788ULL
#define S 0x0123456789abcde0ULL
#define S_BYTES 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xe0
#define KEY_BYTES 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0x00, 0x00, 0x00, S_BYTES

static struct shim_key key(uint64_t generation, uint32_t ordinal, uint64_t session)
{
	struct shim_key k = { .generation = generation, .ordinal = ordinal, .session = session };

	return k;
}

static void check_key(const struct shim_key *got, const struct shim_key *want)
{
	CHECK(got->generation == want->generation);
	CHECK_EQ(got->ordinal, want->ordinal);
	CHECK(got->session == want->session);
}

/* Every field decode sets, compared; payload by content. */
static void check_frame(const struct shim_frame *got, const struct shim_frame *want)
{
	CHECK_EQ(got->kind, want->kind);
	CHECK_EQ(got->op, want->op);
	CHECK_EQ(got->source_id, want->source_id);
	CHECK(got->session == want->session);
	CHECK_EQ(got->payload_len, want->payload_len);
	if (got->payload_len == want->payload_len && want->payload_len)
		CHECK(!memcmp(got->payload, want->payload, want->payload_len));
	CHECK_EQ(got->reply_id, want->reply_id);
	check_key(&got->key, &want->key);
	check_key(&got->rejected_key, &want->rejected_key);
	CHECK_EQ(got->rejected_kind, want->rejected_kind);
	CHECK_EQ(got->rejected_seq, want->rejected_seq);
	CHECK(got->challenge == want->challenge);
	CHECK(got->receiver_generation == want->receiver_generation);
	CHECK(got->proposed_generation == want->proposed_generation);
	CHECK_EQ(got->accepted_seq, want->accepted_seq);
}

/*
 * One frame of each opcode with every field nonzero and distinct (as decode would return
 * it: session = the routing session of §3.3). Returns how many.
 */
static int control_frames(struct shim_frame *f, uint16_t source)
{
	static const uint8_t ops[] = {
		SHIM_OP_NEGOTIATE, SHIM_OP_NEGOTIATE_ACK, SHIM_OP_RESET_REQUIRED,
		SHIM_OP_CHALLENGE_NEGOTIATE, SHIM_OP_CHALLENGE_ACK, SHIM_OP_GENERATION_ADVANCE,
		SHIM_OP_GENERATION_ADVANCE_ACK, SHIM_OP_SESSION_ACTIVATED,
	};

	for (size_t i = 0; i < N(ops); i++) {
		memset(&f[i], 0, sizeof(f[i]));
		f[i].kind = SHIM_CONTROL;
		f[i].op = ops[i];
		f[i].source_id = source;
		switch (ops[i]) {
		case SHIM_OP_NEGOTIATE:
		case SHIM_OP_NEGOTIATE_ACK:
			f[i].reply_id = 0xfffe;
			f[i].key = key(G, 0x01020304, S);
			break;
		case SHIM_OP_RESET_REQUIRED:
			f[i].rejected_kind = SHIM_REJECTED_NEGOTIATE;
			f[i].rejected_key.session = 0xfedcba9876543210ULL;
			f[i].rejected_seq = 0xbeef;
			f[i].receiver_generation = 0x0a0b0c0d0e0f1011ULL;
			f[i].challenge = 0x8000000000000001ULL;
			break;
		case SHIM_OP_CHALLENGE_NEGOTIATE:
		case SHIM_OP_CHALLENGE_ACK:
			f[i].reply_id = 0x8001;
			f[i].challenge = 0x7766554433221100ULL;
			f[i].receiver_generation = 0x1020304050607080ULL;
			f[i].rejected_kind = SHIM_REJECTED_NEGOTIATE;
			f[i].rejected_key = key(0xa1a2a3a4a5a6a7a8ULL, 7, 0xb1b2b3b4b5b6b7b8ULL);
			f[i].rejected_seq = 0xfffe;
			f[i].key = key(G + 2, 0xffffffff, UINT64_MAX - 1);
			break;
		case SHIM_OP_GENERATION_ADVANCE:
		case SHIM_OP_GENERATION_ADVANCE_ACK:
			f[i].key = key(UINT64_MAX, 33, 1);
			f[i].proposed_generation = 0xc0ffee0000c0ffeeULL;
			break;
		case SHIM_OP_SESSION_ACTIVATED:
			f[i].key = key(G, 4, S + 6);
			f[i].accepted_seq = 0xffff;
			break;
		}
		f[i].session = ops[i] == SHIM_OP_RESET_REQUIRED ? f[i].rejected_key.session : f[i].key.session;
	}
	return (int)N(ops);
}

static size_t control_body_bytes(uint8_t op)
{
	static const size_t len[] = { 0, 24, 24, 29, 63, 63, 30, 30, 24 };

	return op < N(len) ? len[op] : 0;
}

/* ---- worked examples (§3.8) ---- */

/*
 * Builds an ICMP message as a RAW IPv4 sender would: echo header, shim header, payload,
 * checksum over the three pieces stored in the header. Returns its length.
 */
static size_t build_icmp(uint8_t type, uint16_t id, uint16_t seq, const struct shim_frame *f,
			 uint8_t *out, uint16_t *csum)
{
	uint8_t hdr[ICMP_ECHO_HDR_BYTES], shim[SHIM_MAX_BYTES];
	int len;

	icmp_echo_write(hdr, type, id, seq);
	len = shim_encode(f, id, shim, sizeof(shim));
	CHECK(len > 0);
	if (len <= 0)
		return 0;
	{
		struct csum_piece pc[] = {
			{ hdr, sizeof(hdr) }, { shim, (size_t)len }, { f->payload, f->payload_len },
		};

		*csum = inet_csum(pc, (int)N(pc));
	}
	hdr[2] = (uint8_t)(*csum >> 8);
	hdr[3] = (uint8_t)*csum;
	memcpy(out, hdr, sizeof(hdr));
	memcpy(out + sizeof(hdr), shim, (size_t)len);
	if (f->payload_len)
		memcpy(out + sizeof(hdr) + len, f->payload, f->payload_len);
	return sizeof(hdr) + (size_t)len + f->payload_len;
}

/* Encodes f behind an echo header, compares with want byte for byte, then decodes want. */
static void check_example(const uint8_t *want, size_t want_len, uint8_t type, uint16_t id,
			  uint16_t seq, const struct shim_frame *f, uint16_t want_csum)
{
	uint8_t got[ICMP_ECHO_HDR_BYTES + SHIM_MAX_BYTES + 16];
	struct shim_frame d;
	struct icmp_echo e;
	uint16_t csum = 0;
	size_t n = build_icmp(type, id, seq, f, got, &csum);

	CHECK_EQ(csum, want_csum);
	CHECK_EQ(n, want_len);
	CHECK(n == want_len && !memcmp(got, want, n));
	/* the checksum of a message with its checksum in place is 0 */
	{
		struct csum_piece whole = { want, want_len };

		CHECK_EQ(inet_csum(&whole, 1), 0);
	}

	CHECK_EQ(icmp_echo_read(want, want_len, 0, &e), 0);
	CHECK_EQ(e.type, type);
	CHECK_EQ(e.code, 0);
	CHECK_EQ(e.id, id);
	CHECK_EQ(e.seq, seq);
	CHECK_EQ(shim_decode(want + ICMP_ECHO_HDR_BYTES, want_len - ICMP_ECHO_HDR_BYTES, e.id, &d), 0);
	check_frame(&d, f);
	if (f->payload_len)
		CHECK(d.payload == want + want_len - f->payload_len);
}

static void test_shim_example_a_negotiate(void)
{
	static const uint8_t want[] = {
		0x08, 0x00, 0xe2, 0x05, 0x27, 0x0f, 0x00, 0x00,
		0x00, 0x9c, 0x40,
		0x03, 0x01, 0x9c, 0x41,
		KEY_BYTES,
	};
	struct shim_frame f = {
		.kind = SHIM_CONTROL, .op = SHIM_OP_NEGOTIATE, .source_id = 40000, .session = S,
		.reply_id = 40001, .key = key(G, 0, S),
	};

	CHECK_EQ(sizeof(want), 35);
	check_example(want, sizeof(want), ICMP4_ECHO_REQUEST, 9999, 0, &f, 0xe205);
}

static void test_shim_example_b_negotiate_ack(void)
{
	static const uint8_t want[] = {
		0x00, 0x00, 0x85, 0xc6, 0x9c, 0x41, 0x00, 0x00,
		0x00, 0x1e, 0x61,
		0x03, 0x02, 0x27, 0x0f,
		KEY_BYTES,
	};
	struct shim_frame f = {
		.kind = SHIM_CONTROL, .op = SHIM_OP_NEGOTIATE_ACK, .source_id = 7777, .session = S,
		.reply_id = 9999, .key = key(G, 0, S),
	};

	CHECK_EQ(sizeof(want), 35);
	check_example(want, sizeof(want), ICMP4_ECHO_REPLY, 40001, 0, &f, 0x85c6);
}

static void test_shim_example_c_data_request(void)
{
	static const uint8_t want[] = {
		0x08, 0x00, 0x90, 0x4c, 0x27, 0x0f, 0x00, 0x01,
		0x80, 0x9c, 0x40,
		S_BYTES,
		0x68, 0x69,
	};
	struct shim_frame f = {
		.kind = SHIM_DATA, .source_id = 40000, .session = S,
		.payload = (const uint8_t *)"hi", .payload_len = 2,
	};

	CHECK_EQ(sizeof(want), 21);
	check_example(want, sizeof(want), ICMP4_ECHO_REQUEST, 9999, 1, &f, 0x904c);
}

static void test_shim_example_d_data_reply(void)
{
	static const uint8_t want[] = {
		0x00, 0x00, 0x01, 0x98, 0x9c, 0x41, 0x00, 0x01,
		0x80, 0x1e, 0x61,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xe1,
		0x68, 0x69,
	};
	struct shim_frame f = {
		.kind = SHIM_DATA, .source_id = 7777, .session = S + 1,
		.payload = (const uint8_t *)"hi", .payload_len = 2,
	};

	CHECK_EQ(sizeof(want), 21);
	check_example(want, sizeof(want), ICMP4_ECHO_REPLY, 40001, 1, &f, 0x0198);
}

static void test_shim_example_e_compact_cadence(void)
{
	static const uint8_t want[] = {
		0x08, 0x00, 0xbb, 0x28, 0x12, 0x34, 0x00, 0x05,
		0x14,
		S_BYTES,
	};
	struct shim_frame f = { .kind = SHIM_CADENCE, .source_id = 0x1234, .session = S };

	CHECK_EQ(sizeof(want), 17);
	check_example(want, sizeof(want), ICMP4_ECHO_REQUEST, 0x1234, 5, &f, 0xbb28);
}

/* ---- round trips ---- */

static void round_trip(const struct shim_frame *f, uint16_t echo_id, int compact)
{
	uint8_t buf[SHIM_MAX_BYTES + 8];
	struct shim_frame d;
	size_t hdr = compact ? 1 : 3;
	size_t body = f->kind == SHIM_CONTROL ? control_body_bytes(f->op) : 8;
	int len;

	memset(buf, 0xee, sizeof(buf));
	len = shim_encode(f, echo_id, buf, sizeof(buf));
	CHECK_EQ(len, hdr + body);
	if (len <= 0)
		return;
	CHECK(len <= SHIM_MAX_BYTES);
	if (f->kind != SHIM_CONTROL)
		CHECK(len <= SHIM_DATA_MAX_BYTES);
	CHECK_EQ(buf[len], 0xee);	/* nothing written past the returned length */
	CHECK_EQ(buf[0] & SHIM_FLAG_SRC_EQ_HDR, compact ? SHIM_FLAG_SRC_EQ_HDR : 0);
	if (!compact)
		CHECK_EQ(buf[1] << 8 | buf[2], f->source_id);
	if (f->kind == SHIM_CONTROL) {
		CHECK_EQ(buf[0] & ~SHIM_FLAG_SRC_EQ_HDR, 0);
		CHECK_EQ(buf[hdr], SHIM_CTL_VERSION);
		CHECK_EQ(buf[hdr + 1], f->op);
	}
	CHECK_EQ(shim_decode(buf, (size_t)len, echo_id, &d), 0);
	check_frame(&d, f);
}

static void test_shim_every_opcode_round_trips_compact_and_explicit(void)
{
	struct shim_frame f[8];
	int n = control_frames(f, 0x9c40);

	CHECK_EQ(n, 8);
	for (int i = 0; i < n; i++) {
		round_trip(&f[i], 0x9c40, 1);
		round_trip(&f[i], 0x270f, 0);
		round_trip(&f[i], 0, 0);
	}
}

static void test_shim_rejected_data_kind_round_trips_with_only_a_session(void)
{
	struct shim_frame f[8];

	control_frames(f, 1);
	for (int i = 3; i <= 4; i++) {	/* CHALLENGE_NEGOTIATE, CHALLENGE_ACK */
		f[i].rejected_kind = SHIM_REJECTED_DATA;
		f[i].rejected_key = key(0, 0, UINT64_MAX);
		round_trip(&f[i], 1, 1);
		round_trip(&f[i], 2, 0);
	}
	f[2].rejected_kind = SHIM_REJECTED_DATA;	/* RESET_REQUIRED, receiver generation 0 = none */
	f[2].receiver_generation = 0;
	round_trip(&f[2], 1, 1);
	round_trip(&f[2], 2, 0);
}

static void test_shim_data_and_cadence_round_trip_compact_and_explicit(void)
{
	struct shim_frame d = { .kind = SHIM_DATA, .source_id = 0xffff, .session = UINT64_MAX };
	struct shim_frame c = { .kind = SHIM_CADENCE, .source_id = 1, .session = 1 };
	uint8_t buf[SHIM_MAX_BYTES];

	round_trip(&d, 0xffff, 1);
	round_trip(&d, 0xfffe, 0);
	round_trip(&c, 1, 1);
	round_trip(&c, 0, 0);
	CHECK_EQ(shim_encode(&d, 0xffff, buf, sizeof(buf)), 9);
	CHECK_EQ(buf[0], SHIM_FLAG_DATA | SHIM_FLAG_SRC_EQ_HDR);
	CHECK_EQ(shim_encode(&c, 7, buf, sizeof(buf)), 11);
	CHECK_EQ(buf[0], SHIM_FLAG_CADENCE);
}

static void test_shim_data_payload_points_into_the_input(void)
{
	static const uint8_t p[] = { 0x90, S_BYTES, 1, 2, 3 };
	struct shim_frame f;

	CHECK_EQ(shim_decode(p, sizeof(p), 42, &f), 0);
	CHECK_EQ(f.kind, SHIM_DATA);
	CHECK_EQ(f.source_id, 42);
	CHECK(f.session == S);
	CHECK(f.payload == p + 9);
	CHECK_EQ(f.payload_len, 3);
}

static void test_shim_zero_length_data_payload_is_accepted(void)
{
	static const uint8_t compact[] = { 0x90, S_BYTES };
	static const uint8_t explicit_src[] = { 0x80, 0x9c, 0x40, S_BYTES };
	struct shim_frame f;

	CHECK_EQ(shim_decode(compact, sizeof(compact), 9, &f), 0);
	CHECK_EQ(f.kind, SHIM_DATA);
	CHECK_EQ(f.payload_len, 0);
	CHECK(f.payload == compact + sizeof(compact));
	CHECK_EQ(shim_decode(explicit_src, sizeof(explicit_src), 9, &f), 0);
	CHECK_EQ(f.kind, SHIM_DATA);
	CHECK_EQ(f.source_id, 40000);
	CHECK_EQ(f.payload_len, 0);
}

static void test_shim_empty_payload_is_not_a_frame(void)
{
	static const uint8_t ping[] = { 0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00 };
	struct shim_frame f;
	struct icmp_echo e;

	CHECK_EQ(icmp_echo_read(ping, sizeof(ping), 0, &e), 0);
	CHECK_EQ(shim_decode(ping + 8, 0, e.id, &f), -SHIM_E_EMPTY);
	CHECK_EQ(shim_decode(NULL, 0, 0, &f), -SHIM_E_EMPTY);
}

/* A compact frame takes its source id from the Echo ID, even 0: only explicit 0 is malformed. */
static void test_shim_compact_source_may_be_echo_id_zero_but_is_never_sent(void)
{
	static const uint8_t p[] = { 0x14, S_BYTES };
	struct shim_frame f;
	uint8_t buf[SHIM_MAX_BYTES];

	CHECK_EQ(shim_decode(p, sizeof(p), 0, &f), 0);
	CHECK_EQ(f.source_id, 0);
	CHECK_EQ(shim_encode(&f, 0, buf, sizeof(buf)), -EINVAL);
}

static void test_shim_encode_refuses_frames_decode_would_reject(void)
{
	struct shim_frame f[8], bad;
	uint8_t buf[SHIM_MAX_BYTES];
	struct shim_frame data = { .kind = SHIM_DATA, .source_id = 5, .session = S };

	control_frames(f, 5);
	bad = data;
	bad.source_id = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(shim_encode(&bad, 0, buf, sizeof(buf)), -EINVAL);
	bad = data;
	bad.session = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad.kind = SHIM_CADENCE;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = data;
	bad.kind = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad.kind = SHIM_CONTROL + 1;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);

	bad = f[0];
	bad.op = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad.op = 9;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[0];
	bad.reply_id = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[1];
	bad.key.session = UINT64_MAX;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[2];
	bad.challenge = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[3];
	bad.rejected_kind = 3;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[4];
	bad.rejected_kind = SHIM_REJECTED_DATA;	/* with a whole key: generation must be 0 */
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[5];
	bad.proposed_generation = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
	bad = f[7];
	bad.key.generation = 0;
	CHECK_EQ(shim_encode(&bad, 5, buf, sizeof(buf)), -EINVAL);
}

static void test_shim_encode_needs_room_for_the_whole_header(void)
{
	struct shim_frame f[8];
	struct shim_frame data = { .kind = SHIM_DATA, .source_id = 5, .session = S };
	uint8_t buf[SHIM_MAX_BYTES];

	control_frames(f, 5);
	CHECK_EQ(shim_encode(&f[3], 6, buf, 65), -ENOSPC);
	CHECK_EQ(shim_encode(&f[3], 6, buf, 66), 66);
	CHECK_EQ(shim_encode(&f[3], 5, buf, 63), -ENOSPC);
	CHECK_EQ(shim_encode(&f[3], 5, buf, 64), 64);
	CHECK_EQ(shim_encode(&data, 6, buf, 10), -ENOSPC);
	CHECK_EQ(shim_encode(&data, 6, buf, 11), 11);
	CHECK_EQ(shim_encode(&data, 5, buf, 8), -ENOSPC);
	CHECK_EQ(shim_encode(&data, 5, buf, 0), -ENOSPC);
}

/* ---- malformed frames (§3.2), first reason that applies ---- */

static int decode_rc(const uint8_t *p, size_t n, uint16_t echo_id)
{
	struct shim_frame f;

	return shim_decode(p, n, echo_id, &f);
}

/*
 * A valid explicit-form (source 40000, Echo ID 9999) frame of op in out; the body starts at
 * out + 3. Returns its length.
 */
static size_t valid_control(uint8_t op, uint8_t *out)
{
	struct shim_frame f[8];
	int len;

	memset(out, 0, SHIM_MAX_BYTES);
	control_frames(f, 40000);
	len = shim_encode(&f[op - 1], 9999, out, SHIM_MAX_BYTES);
	CHECK_EQ(decode_rc(out, (size_t)len, 9999), 0);
	return (size_t)len;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void test_shim_malformed_reasons_one_case_each(void)
{
	static const uint8_t flags[] = { 0x01, S_BYTES };
	static const uint8_t shrt[] = { 0x80, 0x9c };
	static const uint8_t kind[] = { 0x94, S_BYTES };
	static const uint8_t version[] = { 0x00, 0x9c, 0x40, 0x02, 0x01 };
	static const uint8_t opcode[] = { 0x10, 0x03, 0x09 };
	static const uint8_t body_short[] = { 0x90, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd };
	static const uint8_t session_zero[] = { 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 'x' };
	static const uint8_t source_zero[] = { 0x80, 0x00, 0x00, S_BYTES };
	uint8_t b[SHIM_MAX_BYTES];
	size_t n;

	CHECK_EQ(decode_rc(flags, 0, 1), -SHIM_E_EMPTY);
	CHECK_EQ(decode_rc(flags, sizeof(flags), 1), -SHIM_E_FLAGS);
	CHECK_EQ(decode_rc(shrt, sizeof(shrt), 1), -SHIM_E_SHORT);
	CHECK_EQ(decode_rc(kind, sizeof(kind), 1), -SHIM_E_KIND);
	CHECK_EQ(decode_rc(version, sizeof(version), 1), -SHIM_E_VERSION);
	CHECK_EQ(decode_rc(opcode, sizeof(opcode), 1), -SHIM_E_OPCODE);
	n = valid_control(SHIM_OP_NEGOTIATE, b);
	CHECK_EQ(decode_rc(b, n - 1, 9999), -SHIM_E_LENGTH);
	CHECK_EQ(decode_rc(source_zero, sizeof(source_zero), 1), -SHIM_E_SOURCE_ZERO);
	n = valid_control(SHIM_OP_NEGOTIATE, b);
	b[3 + 2] = b[3 + 3] = 0;
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_REPLY_ZERO);
	CHECK_EQ(decode_rc(body_short, sizeof(body_short), 1), -SHIM_E_BODY_SHORT);
	CHECK_EQ(decode_rc(session_zero, sizeof(session_zero), 1), -SHIM_E_SESSION_ZERO);
	n = valid_control(SHIM_OP_RESET_REQUIRED, b);
	put64(b + 3 + 21, 0);
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_FIELD);
}

static void test_shim_every_undefined_flag_bit_is_malformed(void)
{
	static const uint8_t bits[] = { 0x01, 0x02, 0x08, 0x20, 0x40 };
	uint8_t p[] = { 0, S_BYTES };

	for (size_t i = 0; i < N(bits); i++) {
		p[0] = SHIM_FLAG_DATA | SHIM_FLAG_SRC_EQ_HDR | bits[i];
		CHECK_EQ(decode_rc(p, sizeof(p), 1), -SHIM_E_FLAGS);
		p[0] = bits[i];
		CHECK_EQ(decode_rc(p, 1, 1), -SHIM_E_FLAGS);
	}
}

static void test_shim_explicit_form_needs_three_bytes(void)
{
	static const uint8_t one[] = { 0x80 };
	static const uint8_t two_cadence[] = { 0x04, 0x00 };
	static const uint8_t two_both[] = { 0x84, 0x00 };	/* SHORT comes before KIND */
	static const uint8_t three_data[] = { 0x80, 0x00, 0x01 };

	CHECK_EQ(decode_rc(one, sizeof(one), 1), -SHIM_E_SHORT);
	CHECK_EQ(decode_rc(two_cadence, sizeof(two_cadence), 1), -SHIM_E_SHORT);
	CHECK_EQ(decode_rc(two_both, sizeof(two_both), 1), -SHIM_E_SHORT);
	CHECK_EQ(decode_rc(three_data, sizeof(three_data), 1), -SHIM_E_BODY_SHORT);
}

/* A cadence body is exactly 8 bytes; shorter or longer is the KIND reason, not BODY_SHORT. */
static void test_shim_cadence_of_wrong_length_is_kind(void)
{
	uint8_t p[] = { 0x14, S_BYTES, 0x00 };
	uint8_t x[] = { 0x04, 0x00, 0x00, S_BYTES };	/* explicit source 0 too: KIND first */

	CHECK_EQ(decode_rc(p, sizeof(p), 1), -SHIM_E_KIND);
	CHECK_EQ(decode_rc(p, sizeof(p) - 1, 1), 0);
	CHECK_EQ(decode_rc(p, sizeof(p) - 2, 1), -SHIM_E_KIND);
	CHECK_EQ(decode_rc(p, 1, 1), -SHIM_E_KIND);
	CHECK_EQ(decode_rc(x, sizeof(x) - 1, 1), -SHIM_E_KIND);
	CHECK_EQ(decode_rc(x, sizeof(x), 1), -SHIM_E_SOURCE_ZERO);
	p[0] = 0x94;
	CHECK_EQ(decode_rc(p, sizeof(p) - 1, 1), -SHIM_E_KIND);
}

static void test_shim_control_without_version_or_opcode_byte(void)
{
	static const uint8_t compact_none[] = { 0x10 };
	static const uint8_t explicit_none[] = { 0x00, 0x9c, 0x40 };
	static const uint8_t version_only[] = { 0x10, 0x03 };
	static const uint8_t wrong_version_only[] = { 0x10, 0x04 };
	uint8_t b[SHIM_MAX_BYTES];
	size_t n;

	CHECK_EQ(decode_rc(compact_none, sizeof(compact_none), 1), -SHIM_E_VERSION);
	CHECK_EQ(decode_rc(explicit_none, sizeof(explicit_none), 1), -SHIM_E_VERSION);
	CHECK_EQ(decode_rc(version_only, sizeof(version_only), 1), -SHIM_E_OPCODE);
	CHECK_EQ(decode_rc(wrong_version_only, sizeof(wrong_version_only), 1), -SHIM_E_VERSION);
	for (int v = 0; v < 256; v++) {
		n = valid_control(SHIM_OP_CHALLENGE_ACK, b);
		b[3] = (uint8_t)v;
		CHECK_EQ(decode_rc(b, n, 9999), v == 3 ? 0 : -SHIM_E_VERSION);
	}
}

static void test_shim_unknown_opcodes_are_malformed(void)
{
	uint8_t b[SHIM_MAX_BYTES];
	size_t n = valid_control(SHIM_OP_NEGOTIATE, b);

	for (int op = 0; op < 256; op++) {
		b[4] = (uint8_t)op;
		if (op >= SHIM_OP_NEGOTIATE && op <= SHIM_OP_SESSION_ACTIVATED)
			CHECK_EQ(decode_rc(b, 3 + control_body_bytes((uint8_t)op), 9999) != -SHIM_E_OPCODE, 1);
		else
			CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_OPCODE);
	}
}

static void test_shim_control_body_length_is_exact_per_opcode(void)
{
	uint8_t b[SHIM_MAX_BYTES + 1];

	for (uint8_t op = SHIM_OP_NEGOTIATE; op <= SHIM_OP_SESSION_ACTIVATED; op++) {
		size_t n = valid_control(op, b);

		CHECK_EQ(n, 3 + control_body_bytes(op));
		b[n] = 0;
		CHECK_EQ(decode_rc(b, n + 1, 9999), -SHIM_E_LENGTH);
		CHECK_EQ(decode_rc(b, n - 1, 9999), -SHIM_E_LENGTH);
		CHECK_EQ(decode_rc(b, 5, 9999), -SHIM_E_LENGTH);	/* version and opcode only */
		CHECK_EQ(decode_rc(b, n, 9999), 0);
	}
}

static void test_shim_explicit_source_zero_in_every_kind(void)
{
	uint8_t b[SHIM_MAX_BYTES];
	static const uint8_t cadence[] = { 0x04, 0x00, 0x00, S_BYTES };

	CHECK_EQ(decode_rc(cadence, sizeof(cadence), 1), -SHIM_E_SOURCE_ZERO);
	for (uint8_t op = SHIM_OP_NEGOTIATE; op <= SHIM_OP_SESSION_ACTIVATED; op++) {
		size_t n = valid_control(op, b);

		b[1] = b[2] = 0;
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_SOURCE_ZERO);
	}
}

static void test_shim_reply_zero_only_in_opcodes_1_2_4_5(void)
{
	uint8_t b[SHIM_MAX_BYTES];

	for (uint8_t op = SHIM_OP_NEGOTIATE; op <= SHIM_OP_SESSION_ACTIVATED; op++) {
		size_t n = valid_control(op, b);
		int has_reply = op == 1 || op == 2 || op == 4 || op == 5;

		if (!has_reply)
			continue;
		b[3 + 2] = b[3 + 3] = 0;
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_REPLY_ZERO);
	}
}

/* Patches 8 bytes at body offset off of a valid op frame and expects err. */
static void check_patched(uint8_t op, size_t off, uint64_t v, int err)
{
	uint8_t b[SHIM_MAX_BYTES];
	size_t n = valid_control(op, b);

	put64(b + 3 + off, v);
	CHECK_EQ(decode_rc(b, n, 9999), err);
}

static void test_shim_session_zero_cases(void)
{
	static const uint8_t cadence[] = { 0x14, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t data_explicit[] = { 0x80, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0 };

	CHECK_EQ(decode_rc(cadence, sizeof(cadence), 1), -SHIM_E_SESSION_ZERO);
	CHECK_EQ(decode_rc(data_explicit, sizeof(data_explicit), 1), -SHIM_E_SESSION_ZERO);
	/* NEGOTIATE(_ACK): key at 4: generation 0, session 0, session 2^64-1 */
	for (uint8_t op = SHIM_OP_NEGOTIATE; op <= SHIM_OP_NEGOTIATE_ACK; op++) {
		check_patched(op, 4, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 4 + 12, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 4 + 12, UINT64_MAX, -SHIM_E_SESSION_ZERO);
		check_patched(op, 4 + 12, UINT64_MAX - 1, 0);
	}
	/* RESET_REQUIRED: rejected session at 3; receiver generation 0 is "none", fine */
	check_patched(SHIM_OP_RESET_REQUIRED, 3, 0, -SHIM_E_SESSION_ZERO);
	check_patched(SHIM_OP_RESET_REQUIRED, 13, 0, 0);
	/* CHALLENGE_*: new key at 43, rejected (Negotiate) key at 21 */
	for (uint8_t op = SHIM_OP_CHALLENGE_NEGOTIATE; op <= SHIM_OP_CHALLENGE_ACK; op++) {
		check_patched(op, 43, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 43 + 12, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 43 + 12, UINT64_MAX, -SHIM_E_SESSION_ZERO);
		check_patched(op, 21, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 21 + 12, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 21 + 12, UINT64_MAX, -SHIM_E_SESSION_ZERO);
		check_patched(op, 12, 0, 0);	/* receiver generation 0 = none */
	}
	/* GENERATION_*: current key at 2; SESSION_ACTIVATED: key at 2 */
	for (uint8_t op = SHIM_OP_GENERATION_ADVANCE; op <= SHIM_OP_SESSION_ACTIVATED; op++) {
		check_patched(op, 2, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 2 + 12, 0, -SHIM_E_SESSION_ZERO);
		check_patched(op, 2 + 12, UINT64_MAX, -SHIM_E_SESSION_ZERO);
	}
}

static void test_shim_field_cases(void)
{
	uint8_t b[SHIM_MAX_BYTES];
	size_t n;

	/* RESET_REQUIRED: rejected kind at 2 must be 1 or 2; challenge at 21 != 0 */
	check_patched(SHIM_OP_RESET_REQUIRED, 21, 0, -SHIM_E_FIELD);
	for (int k = 0; k < 256; k++) {
		n = valid_control(SHIM_OP_RESET_REQUIRED, b);
		b[3 + 2] = (uint8_t)k;
		CHECK_EQ(decode_rc(b, n, 9999), k == 1 || k == 2 ? 0 : -SHIM_E_FIELD);
	}
	for (uint8_t op = SHIM_OP_CHALLENGE_NEGOTIATE; op <= SHIM_OP_CHALLENGE_ACK; op++) {
		/* challenge at 4 */
		check_patched(op, 4, 0, -SHIM_E_FIELD);
		/* rejected kind at 20 */
		n = valid_control(op, b);
		b[3 + 20] = 0;
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_FIELD);
		b[3 + 20] = 3;
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_FIELD);
		/* kind Data: the rejected key's generation and ordinal must be 0 */
		n = valid_control(op, b);
		b[3 + 20] = SHIM_REJECTED_DATA;
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_FIELD);
		put64(b + 3 + 21, 0);
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_FIELD);	/* ordinal still 7 */
		b[3 + 21 + 11] = 0;
		CHECK_EQ(decode_rc(b, n, 9999), 0);
		b[3 + 21 + 8] = 1;	/* an ordinal alone is enough */
		CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_FIELD);
	}
	for (uint8_t op = SHIM_OP_GENERATION_ADVANCE; op <= SHIM_OP_GENERATION_ADVANCE_ACK; op++)
		check_patched(op, 22, 0, -SHIM_E_FIELD);
}

/* When a frame has several faults, the reason reported is the earliest of §3.2's list. */
static void test_shim_first_reason_wins(void)
{
	static const uint8_t flags_and_short[] = { 0x81 };
	static const uint8_t source_zero_and_body_short[] = { 0x80, 0x00, 0x00, 0x01 };
	uint8_t b[SHIM_MAX_BYTES];
	size_t n;

	CHECK_EQ(decode_rc(flags_and_short, sizeof(flags_and_short), 1), -SHIM_E_FLAGS);
	CHECK_EQ(decode_rc(source_zero_and_body_short, sizeof(source_zero_and_body_short), 1),
		 -SHIM_E_SOURCE_ZERO);
	/* explicit source 0 with a wrong version, opcode or length: those come first */
	n = valid_control(SHIM_OP_NEGOTIATE, b);
	b[1] = b[2] = 0;
	b[3] = 2;
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_VERSION);
	b[3] = 3;
	b[4] = 0x42;
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_OPCODE);
	b[4] = SHIM_OP_NEGOTIATE;
	CHECK_EQ(decode_rc(b, n - 1, 9999), -SHIM_E_LENGTH);
	/* source 0 before reply 0 before a bad key */
	b[3 + 2] = b[3 + 3] = 0;
	put64(b + 3 + 4, 0);
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_SOURCE_ZERO);
	b[2] = 1;
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_REPLY_ZERO);
	b[3 + 3] = 1;
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_SESSION_ZERO);
	/* a bad session before a bad field */
	n = valid_control(SHIM_OP_RESET_REQUIRED, b);
	put64(b + 3 + 3, 0);
	put64(b + 3 + 21, 0);
	b[3 + 2] = 9;
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_SESSION_ZERO);
	n = valid_control(SHIM_OP_CHALLENGE_NEGOTIATE, b);
	put64(b + 3 + 4, 0);
	put64(b + 3 + 43 + 12, 0);
	CHECK_EQ(decode_rc(b, n, 9999), -SHIM_E_SESSION_ZERO);
}

static void test_shim_err_names_are_distinct(void)
{
	const char *names[SHIM_E_COUNT];

	CHECK_STR(shim_err_name(-SHIM_E_EMPTY), "empty");
	CHECK_STR(shim_err_name(-SHIM_E_FLAGS), "flags");
	CHECK_STR(shim_err_name(SHIM_E_SHORT), "short");
	CHECK_STR(shim_err_name(-SHIM_E_SESSION_ZERO), "session_zero");
	CHECK_STR(shim_err_name(-SHIM_E_FIELD), "field");
	CHECK_STR(shim_err_name(0), "ok");
	CHECK_STR(shim_err_name(-SHIM_E_COUNT), "?");
	CHECK_STR(shim_err_name(1000), "?");
	for (int i = 1; i < SHIM_E_COUNT; i++) {
		names[i] = shim_err_name(-i);
		CHECK(strcmp(names[i], "?") != 0);
		CHECK_STR(shim_err_name(i), names[i]);
		for (int j = 1; j < i; j++)
			CHECK(strcmp(names[i], names[j]) != 0);
	}
}

/* ---- Internet checksum ---- */

static void test_inet_csum_rfc1071_example_and_edges(void)
{
	/* RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d */
	static const uint8_t rfc[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	static const uint8_t ones[] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t odd[] = { 0x12, 0x34, 0x56 };
	struct csum_piece pc = { rfc, sizeof(rfc) };

	CHECK_EQ(inet_csum(&pc, 1), 0x220d);
	CHECK_EQ(inet_csum(&pc, 0), 0xffff);
	pc.n = 0;
	CHECK_EQ(inet_csum(&pc, 1), 0xffff);
	pc.p = ones;
	pc.n = sizeof(ones);
	CHECK_EQ(inet_csum(&pc, 1), 0x0000);
	/* ffff + ffff + 0001 = 1ffff: folding once leaves a carry that must be folded again */
	{
		static const uint8_t carry[] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x01 };

		pc.p = carry;
		pc.n = sizeof(carry);
		CHECK_EQ(inet_csum(&pc, 1), 0xfffe);
	}
	/* an odd trailing byte is the high half of a word padded with zero */
	pc.p = odd;
	pc.n = sizeof(odd);
	CHECK_EQ(inet_csum(&pc, 1), (uint16_t)~(0x1234 + 0x5600));
}

static void test_inet_csum_pieces_of_odd_lengths_equal_one_buffer(void)
{
	uint8_t buf[301];
	struct csum_piece pc[12];

	test_rng_seed(7);
	for (int round = 0; round < 2000; round++) {
		size_t n = test_rng_below(sizeof(buf) + 1), off = 0;
		int np = 0;
		struct csum_piece whole = { buf, n };

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)test_rng_below(256);
		while (np < (int)N(pc) - 1 && off < n) {
			size_t len = test_rng_below(8) == 0 ? 0 : test_rng_below((uint32_t)(n - off) + 1);

			pc[np].p = buf + off;
			pc[np++].n = len;
			off += len;
		}
		pc[np].p = buf + off;
		pc[np++].n = n - off;
		CHECK_EQ(inet_csum(pc, np), inet_csum(&whole, 1));
	}
	/* the hand-picked worst case: every piece one byte long */
	for (size_t i = 0; i < N(pc); i++) {
		pc[i].p = buf + i;
		pc[i].n = 1;
	}
	{
		struct csum_piece whole = { buf, N(pc) };

		CHECK_EQ(inet_csum(pc, (int)N(pc)), inet_csum(&whole, 1));
	}
}

/* RFC 1071 taken literally: big-endian 16-bit words, one byte at a time. */
static uint16_t csum_model(const uint8_t *p, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += i % 2 ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The word-at-a-time sum agrees with the model at every length and start alignment. */
static void test_inet_csum_matches_bytewise_model(void)
{
	static uint8_t buf[1600 + 8];
	struct csum_piece pc[3];

	test_rng_seed(11);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)test_rng_below(256);
	for (size_t n = 0; n <= 1600; n += n < 80 ? 1 : 37) {
		for (size_t align = 0; align < 8; align++) {
			const uint8_t *p = buf + align;
			size_t cut1 = test_rng_below((uint32_t)n + 1), cut2 = cut1 + test_rng_below((uint32_t)(n - cut1) + 1);

			pc[0] = (struct csum_piece){ p, n };
			CHECK_EQ(inet_csum(pc, 1), csum_model(p, n));
			pc[0] = (struct csum_piece){ p, cut1 };
			pc[1] = (struct csum_piece){ p + cut1, cut2 - cut1 };
			pc[2] = (struct csum_piece){ p + cut2, n - cut2 };
			CHECK_EQ(inet_csum(pc, 3), csum_model(p, n));
		}
	}
	/* all ones: every 32-bit load is 0xffffffff, the carries must all be folded back */
	memset(buf, 0xff, sizeof(buf));
	pc[0] = (struct csum_piece){ buf, 1501 };
	CHECK_EQ(inet_csum(pc, 1), csum_model(buf, 1501));
}

/* ---- ICMP echo header ---- */

static void test_icmp_echo_write_sets_type_id_seq_and_zero_checksum(void)
{
	uint8_t h[ICMP_ECHO_HDR_BYTES];

	memset(h, 0xaa, sizeof(h));
	icmp_echo_write(h, ICMP6_ECHO_REPLY, 0xabcd, 0x0102);
	CHECK_EQ(h[0], 129);
	CHECK_EQ(h[1], 0);
	CHECK_EQ(h[2], 0);
	CHECK_EQ(h[3], 0);
	CHECK_EQ(h[4], 0xab);
	CHECK_EQ(h[5], 0xcd);
	CHECK_EQ(h[6], 0x01);
	CHECK_EQ(h[7], 0x02);
}

static void test_icmp_echo_read_accepts_only_echo_of_the_family(void)
{
	uint8_t h[ICMP_ECHO_HDR_BYTES + 1] = { 0, 0, 0x12, 0x34, 0xab, 0xcd, 0xff, 0xfe, 0x55 };
	struct icmp_echo e;

	for (int t = 0; t < 256; t++) {
		h[0] = (uint8_t)t;
		memset(&e, 0, sizeof(e));
		CHECK_EQ(icmp_echo_read(h, sizeof(h), 0, &e), t == 0 || t == 8 ? 0 : -ICMP_E_NOT_ECHO);
		if (t == 0 || t == 8) {
			CHECK_EQ(e.type, t);
			CHECK_EQ(e.code, 0);
			CHECK_EQ(e.id, 0xabcd);
			CHECK_EQ(e.seq, 0xfffe);
		}
		memset(&e, 0, sizeof(e));
		CHECK_EQ(icmp_echo_read(h, sizeof(h), 1, &e), t == 128 || t == 129 ? 0 : -ICMP_E_NOT_ECHO);
		if (t == 128 || t == 129) {
			CHECK_EQ(e.type, t);
			CHECK_EQ(e.id, 0xabcd);
			CHECK_EQ(e.seq, 0xfffe);
		}
	}
}

static void test_icmp_echo_read_rejects_nonzero_code_errors_and_short(void)
{
	uint8_t h[ICMP_ECHO_HDR_BYTES] = { ICMP4_ECHO_REQUEST, 1, 0, 0, 0, 1, 0, 2 };
	static const uint8_t unreach[] = { 3, 3, 0, 0, 0, 0, 0, 0, 0x45 };
	static const uint8_t ndp[] = { 135, 0, 0, 0, 0, 0, 0, 0 };
	struct icmp_echo e;

	CHECK_EQ(icmp_echo_read(h, sizeof(h), 0, &e), -ICMP_E_NOT_ECHO);
	h[0] = ICMP6_ECHO_REPLY;
	CHECK_EQ(icmp_echo_read(h, sizeof(h), 1, &e), -ICMP_E_NOT_ECHO);
	h[1] = 0;
	CHECK_EQ(icmp_echo_read(h, sizeof(h), 1, &e), 0);	/* exactly 8 bytes: no shim, but echo */
	CHECK_EQ(icmp_echo_read(h, sizeof(h) - 1, 1, &e), -ICMP_E_SHORT);
	CHECK_EQ(icmp_echo_read(h, 0, 0, &e), -ICMP_E_SHORT);
	CHECK_EQ(icmp_echo_read(unreach, sizeof(unreach), 0, &e), -ICMP_E_NOT_ECHO);
	CHECK_EQ(icmp_echo_read(ndp, sizeof(ndp), 1, &e), -ICMP_E_NOT_ECHO);
	/* short wins over type: a 7-byte Echo is short, a 7-byte unreachable too */
	CHECK_EQ(icmp_echo_read(unreach, 7, 0, &e), -ICMP_E_SHORT);
}

/* ---- IPv4 header of a raw read ---- */

/* An IPv4 header (ihl words) + icmp_len bytes of ICMP, from 192.0.2.1 to 198.51.100.2. */
static size_t ip4_packet(uint8_t *p, unsigned ihl, size_t icmp_len)
{
	size_t total = ihl * 4 + icmp_len;

	memset(p, 0, total);
	p[0] = (uint8_t)(0x40 | ihl);
	p[2] = (uint8_t)(total >> 8);
	p[3] = (uint8_t)total;
	p[4] = 0x12;
	p[5] = 0x34;
	p[6] = 0x40;	/* DF: allowed */
	p[8] = 64;
	p[9] = 1;
	p[12] = 192, p[13] = 0, p[14] = 2, p[15] = 1;
	p[16] = 198, p[17] = 51, p[18] = 100, p[19] = 2;
	for (size_t i = 0; i < icmp_len; i++)
		p[ihl * 4 + i] = (uint8_t)(0xa0 + i);
	return total;
}

static void test_ip4_icmp_payload_plain_header(void)
{
	uint8_t p[64];
	size_t n = ip4_packet(p, 5, 17), off = 99, len = 99;
	uint32_t src = 0;
	static const uint8_t want_src[] = { 192, 0, 2, 1 };

	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), 0);
	CHECK_EQ(off, 20);
	CHECK_EQ(len, 17);
	CHECK(!memcmp(&src, want_src, 4));
	CHECK_EQ(p[off], 0xa0);
	/* bytes after the declared total length (link padding) are not part of the message */
	CHECK_EQ(ip4_icmp_payload(p, n + 5, &off, &len, &src), 0);
	CHECK_EQ(len, 17);
	/* a header alone carries an empty ICMP message; icmp_echo_read then says short */
	n = ip4_packet(p, 5, 0);
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), 0);
	CHECK_EQ(off, 20);
	CHECK_EQ(len, 0);
}

static void test_ip4_icmp_payload_skips_options(void)
{
	uint8_t p[128];
	size_t n = ip4_packet(p, 6, 9), off, len;
	uint32_t src;

	p[20] = 0x94;	/* router alert option bytes, skipped unread */
	p[21] = 0x04;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), 0);
	CHECK_EQ(off, 24);
	CHECK_EQ(len, 9);
	n = ip4_packet(p, 15, 8);
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), 0);
	CHECK_EQ(off, 60);
	CHECK_EQ(len, 8);
}

static void test_ip4_icmp_payload_each_error(void)
{
	uint8_t p[128];
	size_t n, off, len;
	uint32_t src;

	n = ip4_packet(p, 5, 8);
	CHECK_EQ(ip4_icmp_payload(p, 19, &off, &len, &src), -IP_E_MISSING_HEADER);
	CHECK_EQ(ip4_icmp_payload(p, 0, &off, &len, &src), -IP_E_MISSING_HEADER);
	p[0] = 0x65;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_INVALID_VERSION);
	CHECK_EQ(ip4_icmp_payload(p, 19, &off, &len, &src), -IP_E_MISSING_HEADER);
	p[0] = 0x44;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_TRUNCATED_HEADER);
	p[0] = 0x40;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_TRUNCATED_HEADER);
	p[0] = 0x47;	/* 28-byte header in a 28-byte read is fine as far as IHL goes */
	CHECK_EQ(ip4_icmp_payload(p, 27, &off, &len, &src), -IP_E_TRUNCATED_HEADER);
	CHECK_EQ(ip4_icmp_payload(p, 28, &off, &len, &src), 0);

	n = ip4_packet(p, 5, 8);
	p[2] = 0, p[3] = 19;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_DECLARED_LENGTH);
	p[3] = 0;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_DECLARED_LENGTH);
	p[3] = (uint8_t)(n + 1);
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_CAPTURE_TRUNCATED);
	p[2] = 0xff, p[3] = 0xff;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_CAPTURE_TRUNCATED);

	n = ip4_packet(p, 5, 8);
	p[6] = 0x80;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_RESERVED_FLAG);
	p[6] = 0xa0;	/* reserved and MF: reserved is checked first */
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_RESERVED_FLAG);
	p[6] = 0x20;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_FRAGMENTED);
	p[6] = 0x40, p[7] = 0x01;	/* last fragment: offset 8 bytes */
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_FRAGMENTED);
	p[6] = 0x1f, p[7] = 0x00;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_FRAGMENTED);
	p[6] = 0x40, p[7] = 0x00;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), 0);

	p[9] = 58;	/* ICMPv6 in an IPv4 header is still not ICMP */
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_UNRELATED_PROTOCOL);
	p[9] = 17;
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_UNRELATED_PROTOCOL);
	p[6] = 0x20;	/* fragmented UDP: fragmented first */
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), -IP_E_FRAGMENTED);
}

/* The worked example (c) as a raw IPv4 socket delivers it. */
static void test_ip4_then_echo_then_shim_of_a_raw_read(void)
{
	static const uint8_t icmp[] = {
		0x08, 0x00, 0x90, 0x4c, 0x27, 0x0f, 0x00, 0x01,
		0x80, 0x9c, 0x40, S_BYTES, 0x68, 0x69,
	};
	uint8_t p[64];
	size_t n = ip4_packet(p, 5, sizeof(icmp)), off, len;
	uint32_t src;
	struct icmp_echo e;
	struct shim_frame f;

	memcpy(p + 20, icmp, sizeof(icmp));
	CHECK_EQ(ip4_icmp_payload(p, n, &off, &len, &src), 0);
	CHECK_EQ(icmp_echo_read(p + off, len, 0, &e), 0);
	CHECK_EQ(e.id, 9999);
	CHECK_EQ(e.seq, 1);
	CHECK_EQ(shim_decode(p + off + 8, len - 8, e.id, &f), 0);
	CHECK_EQ(f.kind, SHIM_DATA);
	CHECK_EQ(f.source_id, 40000);
	CHECK(f.session == S);
	CHECK_EQ(f.payload_len, 2);
	CHECK(!memcmp(f.payload, "hi", 2));
}

/* ---- replay window (§3.6) ---- */

static void test_replay_in_order_then_duplicates(void)
{
	struct shim_replay w;

	shim_replay_init(&w);
	for (int s = 0; s < 5000; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_OK);
	CHECK_EQ(w.highest, 4999);
	CHECK_EQ(shim_replay_admit(&w, 4999), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 4000), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 4999 - 2047), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 4999 - 2048), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_STALE);
	CHECK_EQ(w.highest, 4999);
}

static void test_replay_first_sequence_starts_the_window(void)
{
	struct shim_replay w;

	shim_replay_init(&w);
	CHECK_EQ(w.started, 0);
	CHECK_EQ(shim_replay_admit(&w, 5000), SHIM_REPLAY_OK);
	CHECK_EQ(w.started, 1);
	CHECK_EQ(w.highest, 5000);
	CHECK_EQ(shim_replay_admit(&w, 5000), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 5000 - 2048), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 5000 - 2047), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 4999), SHIM_REPLAY_OK);

	/* a first sequence of 0 is a sequence like any other */
	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 1), SHIM_REPLAY_OK);

	/* init forgets a used window */
	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 1), SHIM_REPLAY_OK);
	CHECK_EQ(w.highest, 1);
}

static void test_replay_reorder_within_window(void)
{
	struct shim_replay w;

	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 10), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 5), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 5), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 12), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 11), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_OK);
	CHECK_EQ(w.highest, 12);
	for (int s = 0; s <= 12; s++) {
		int seen = s == 0 || s == 5 || s >= 10;

		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), seen ? SHIM_REPLAY_DUPLICATE : SHIM_REPLAY_OK);
	}
	for (int s = 0; s <= 12; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_DUPLICATE);
}

static void test_replay_stale_at_exactly_2048_behind(void)
{
	struct shim_replay w;

	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 3000), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 3000 - 2048), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 3000 - 2049), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 3000 - 2047), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 3000 - 2047), SHIM_REPLAY_DUPLICATE);
	/* one step forward and the oldest sequence falls out */
	CHECK_EQ(shim_replay_admit(&w, 3001), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 3000 - 2047), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 3001 - 2047), SHIM_REPLAY_OK);
}

/* Bit positions are seq % 2048: a new sequence must not inherit an old one's bit. */
static void test_replay_slide_clears_bits_of_sequences_left_behind(void)
{
	struct shim_replay w;

	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 4), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 10), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 20), SHIM_REPLAY_OK);
	/* slide by 2040 (< 2048): the window is now 13..2060 */
	CHECK_EQ(shim_replay_admit(&w, 2060), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 20), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 10), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 4), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 2052), SHIM_REPLAY_OK);	/* bit of 4 */
	CHECK_EQ(shim_replay_admit(&w, 2058), SHIM_REPLAY_OK);	/* bit of 10 */
	CHECK_EQ(shim_replay_admit(&w, 21), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 2060), SHIM_REPLAY_DUPLICATE);

	/* slide by more than 2048: everything before is gone, nothing inherited */
	shim_replay_init(&w);
	for (int s = 100; s < 100 + 2048; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 100 + 2047 + 3000), SHIM_REPLAY_OK);
	for (int s = 100 + 2047 + 3000 - 2047; s < 100 + 2047 + 3000; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 100 + 2047), SHIM_REPLAY_STALE);

	/* slide by exactly 2048: the old highest is just out of the window */
	shim_replay_init(&w);
	for (int s = 0; s < 64; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)(2 * s)), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 126 + 2048), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 126), SHIM_REPLAY_STALE);
	for (int s = 127; s < 126 + 2048; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_OK);

	/* slide by 2047: only the old highest stays in the window */
	shim_replay_init(&w);
	for (int s = 0; s < 64; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)(2 * s)), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 126 + 2047), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 125), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 126), SHIM_REPLAY_DUPLICATE);
	for (int s = 127; s < 126 + 2047; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_OK);
}

static void test_replay_sequences_up_to_65535(void)
{
	struct shim_replay w;

	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 65000), SHIM_REPLAY_OK);
	for (int s = 65001; s <= 65535; s++)
		CHECK_EQ(shim_replay_admit(&w, (uint16_t)s), SHIM_REPLAY_OK);
	CHECK_EQ(w.highest, 65535);
	CHECK_EQ(shim_replay_admit(&w, 65535), SHIM_REPLAY_DUPLICATE);
	CHECK_EQ(shim_replay_admit(&w, 65535 - 2047), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 65535 - 2048), SHIM_REPLAY_STALE);
	/* no wrap: 0 after 65535 is far behind, not just ahead */
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 1), SHIM_REPLAY_STALE);

	shim_replay_init(&w);
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 65535), SHIM_REPLAY_OK);
	CHECK_EQ(shim_replay_admit(&w, 0), SHIM_REPLAY_STALE);
	CHECK_EQ(shim_replay_admit(&w, 65535 - 1), SHIM_REPLAY_OK);
}

/* The model: every accepted sequence, and the highest; seqs outside the window are stale. */
struct replay_model {
	bool started;
	uint16_t highest;
	bool seen[65536];
};

static enum shim_replay_verdict model_admit(struct replay_model *m, uint16_t seq)
{
	if (m->started && seq <= m->highest) {
		if (m->highest - seq >= SHIM_REPLAY_WINDOW)
			return SHIM_REPLAY_STALE;
		if (m->seen[seq])
			return SHIM_REPLAY_DUPLICATE;
	}
	if (!m->started || seq > m->highest)
		m->highest = seq;
	m->started = true;
	m->seen[seq] = true;
	return SHIM_REPLAY_OK;
}

static uint16_t clamp_seq(long v)
{
	return (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
}

static void test_replay_random_traffic_matches_model(void)
{
	static const uint64_t seeds[] = { 1, 2, 42, 0xfeedface, 20260725 };
	static struct replay_model m;
	struct shim_replay w;

	for (size_t si = 0; si < N(seeds); si++) {
		long mismatches = 0, counts[3] = { 0, 0, 0 };

		test_rng_seed(seeds[si]);
		memset(&m, 0, sizeof(m));
		shim_replay_init(&w);
		for (int i = 0; i < 200000; i++) {
			uint32_t mode = test_rng_below(100);
			long h = m.highest, s;
			enum shim_replay_verdict want, got;

			if (mode < 40)			/* mostly forward, a little ahead */
				s = h + 1 + test_rng_below(3);
			else if (mode < 75)		/* late or repeated, around the window edge */
				s = h - (long)test_rng_below(2200);
			else if (mode < 85)		/* a small jump ahead */
				s = h + (long)test_rng_below(2100);
			else if (mode < 88)		/* a big jump ahead */
				s = h + 2000 + (long)test_rng_below(6000);
			else if (mode < 98)		/* a recent one again */
				s = h - (long)test_rng_below(16);
			else				/* anywhere */
				s = test_rng_below(65536);
			want = model_admit(&m, clamp_seq(s));
			got = shim_replay_admit(&w, clamp_seq(s));
			if (got != want && mismatches++ < 5)
				fprintf(stderr, "  seed %" PRIu64 " step %d seq %u: got %d, model %d\n",
					seeds[si], i, clamp_seq(s), got, want);
			counts[want]++;
			/* a session ends at 65535: start another one */
			if (m.highest == 65535 && test_rng_below(50) == 0) {
				memset(&m, 0, sizeof(m));
				shim_replay_init(&w);
			}
		}
		CHECK_EQ(mismatches, 0);
		/* the generator reaches every verdict often, or the test proves little */
		CHECK(counts[SHIM_REPLAY_OK] > 10000);
		CHECK(counts[SHIM_REPLAY_DUPLICATE] > 10000);
		CHECK(counts[SHIM_REPLAY_STALE] > 1000);
	}
}

int main(void)
{
	RUN(test_shim_example_a_negotiate);
	RUN(test_shim_example_b_negotiate_ack);
	RUN(test_shim_example_c_data_request);
	RUN(test_shim_example_d_data_reply);
	RUN(test_shim_example_e_compact_cadence);
	RUN(test_shim_every_opcode_round_trips_compact_and_explicit);
	RUN(test_shim_rejected_data_kind_round_trips_with_only_a_session);
	RUN(test_shim_data_and_cadence_round_trip_compact_and_explicit);
	RUN(test_shim_data_payload_points_into_the_input);
	RUN(test_shim_zero_length_data_payload_is_accepted);
	RUN(test_shim_empty_payload_is_not_a_frame);
	RUN(test_shim_compact_source_may_be_echo_id_zero_but_is_never_sent);
	RUN(test_shim_encode_refuses_frames_decode_would_reject);
	RUN(test_shim_encode_needs_room_for_the_whole_header);
	RUN(test_shim_malformed_reasons_one_case_each);
	RUN(test_shim_every_undefined_flag_bit_is_malformed);
	RUN(test_shim_explicit_form_needs_three_bytes);
	RUN(test_shim_cadence_of_wrong_length_is_kind);
	RUN(test_shim_control_without_version_or_opcode_byte);
	RUN(test_shim_unknown_opcodes_are_malformed);
	RUN(test_shim_control_body_length_is_exact_per_opcode);
	RUN(test_shim_explicit_source_zero_in_every_kind);
	RUN(test_shim_reply_zero_only_in_opcodes_1_2_4_5);
	RUN(test_shim_session_zero_cases);
	RUN(test_shim_field_cases);
	RUN(test_shim_first_reason_wins);
	RUN(test_shim_err_names_are_distinct);
	RUN(test_inet_csum_rfc1071_example_and_edges);
	RUN(test_inet_csum_pieces_of_odd_lengths_equal_one_buffer);
	RUN(test_inet_csum_matches_bytewise_model);
	RUN(test_icmp_echo_write_sets_type_id_seq_and_zero_checksum);
	RUN(test_icmp_echo_read_accepts_only_echo_of_the_family);
	RUN(test_icmp_echo_read_rejects_nonzero_code_errors_and_short);
	RUN(test_ip4_icmp_payload_plain_header);
	RUN(test_ip4_icmp_payload_skips_options);
	RUN(test_ip4_icmp_payload_each_error);
	RUN(test_ip4_then_echo_then_shim_of_a_raw_read);
	RUN(test_replay_in_order_then_duplicates);
	RUN(test_replay_first_sequence_starts_the_window);
	RUN(test_replay_reorder_within_window);
	RUN(test_replay_stale_at_exactly_2048_behind);
	RUN(test_replay_slide_clears_bits_of_sequences_left_behind);
	RUN(test_replay_sequences_up_to_65535);
	RUN(test_replay_random_traffic_matches_model);
	TEST_EXIT();
}
