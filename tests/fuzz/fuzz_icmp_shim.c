/*
 * libFuzzer target for proto/icmp_shim, whose parsers read whatever a raw ICMP socket
 * receives. One input is read five ways: as a raw IPv4 read (IPv4 header, ICMP, shim), as
 * an ICMPv4 and an ICMPv6 message (echo header, shim), as a bare shim with Echo ID 0, and as
 * a list of sequence numbers for the replay window.
 * Properties: no crash or sanitizer report; errors are the documented codes; an IPv4 read's
 * ICMP message lies inside the input; a decoded frame's payload lies inside its input; a
 * decoded frame re-encodes (source id 0 excepted: it must be refused) to the same bytes when
 * the source form is the same, and always to bytes that decode to the same fields; the
 * checksum does not depend on how the bytes are split into pieces; the replay window gives
 * the verdicts of a plain model (every accepted sequence and the highest).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/icmp_shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, int rc)
{
	fprintf(stderr, "%s (rc %d)\n", what, rc);
	abort();
}

static bool keys_equal(const struct shim_key *a, const struct shim_key *b)
{
	return a->generation == b->generation && a->ordinal == b->ordinal && a->session == b->session;
}

static bool frames_equal(const struct shim_frame *a, const struct shim_frame *b)
{
	return a->kind == b->kind && a->op == b->op && a->source_id == b->source_id &&
	       a->session == b->session && a->payload_len == b->payload_len &&
	       (!a->payload_len || !memcmp(a->payload, b->payload, a->payload_len)) &&
	       a->reply_id == b->reply_id && keys_equal(&a->key, &b->key) &&
	       keys_equal(&a->rejected_key, &b->rejected_key) &&
	       a->rejected_kind == b->rejected_kind && a->rejected_seq == b->rejected_seq &&
	       a->challenge == b->challenge && a->receiver_generation == b->receiver_generation &&
	       a->proposed_generation == b->proposed_generation && a->accepted_seq == b->accepted_seq;
}

/* Encodes f again, compares with the shim header it came from, and decodes the result. */
static void check_reencode(const struct shim_frame *f, const uint8_t *p, size_t n, uint16_t echo_id)
{
	uint8_t hdr[SHIM_MAX_BYTES + 1];
	size_t in_hdr = n - f->payload_len;
	int was_compact = p[0] & SHIM_FLAG_SRC_EQ_HDR;
	int same_form = was_compact || f->source_id != echo_id;
	struct shim_frame g;
	uint8_t *again;
	int len, rc;

	len = shim_encode(f, echo_id, hdr, sizeof(hdr));
	if (f->source_id == 0) {
		if (len != -EINVAL)
			fail("encode accepted source id 0", len);
		return;
	}
	if (len <= 0 || len > SHIM_MAX_BYTES)
		fail("encode refused a decoded frame", len);
	/* the explicit form of a source equal to the Echo ID re-encodes 2 bytes shorter */
	if ((size_t)len != (same_form ? in_hdr : in_hdr - 2))
		fail("re-encoded length", len);
	if (same_form && memcmp(hdr, p, in_hdr))
		fail("re-encoded bytes differ", len);

	again = malloc((size_t)len + f->payload_len + 1);
	if (!again)
		return;
	memcpy(again, hdr, (size_t)len);
	if (f->payload_len)
		memcpy(again + len, f->payload, f->payload_len);
	rc = shim_decode(again, (size_t)len + f->payload_len, echo_id, &g);
	if (rc)
		fail("re-encoded frame does not decode", rc);
	if (!frames_equal(f, &g))
		fail("re-encoded frame decodes to other fields", 0);
	free(again);
}

static void check_shim(const uint8_t *p, size_t n, uint16_t echo_id)
{
	struct shim_frame f;
	int rc = shim_decode(p, n, echo_id, &f);

	if (rc) {
		if (rc > -SHIM_E_EMPTY || rc <= -SHIM_E_COUNT || !strcmp(shim_err_name(rc), "?"))
			fail("undocumented decode error", rc);
		return;
	}
	if (f.kind == SHIM_DATA) {
		if (f.payload < p || f.payload > p + n || f.payload + f.payload_len != p + n)
			fail("payload outside the input", 0);
		if (n - f.payload_len != 9 && n - f.payload_len != 11)
			fail("data shim length", (int)(n - f.payload_len));
	} else {
		if (f.payload_len || n > SHIM_MAX_BYTES)
			fail("non-data frame with payload or too long", (int)n);
	}
	if (f.kind != SHIM_CONTROL && f.session == 0)
		fail("session 0 accepted", 0);
	check_reencode(&f, p, n, echo_id);
}

static void check_icmp(const uint8_t *p, size_t n, int v6)
{
	struct icmp_echo e;
	int rc = icmp_echo_read(p, n, v6, &e);

	if (rc == -ICMP_E_SHORT || rc == -ICMP_E_NOT_ECHO)
		return;
	if (rc)
		fail("undocumented icmp_echo_read error", rc);
	if (e.code != 0 || (v6 ? e.type != ICMP6_ECHO_REQUEST && e.type != ICMP6_ECHO_REPLY
			       : e.type != ICMP4_ECHO_REQUEST && e.type != ICMP4_ECHO_REPLY))
		fail("non-echo accepted", e.type);
	check_shim(p + ICMP_ECHO_HDR_BYTES, n - ICMP_ECHO_HDR_BYTES, e.id);
}

static void check_ip4(const uint8_t *p, size_t n)
{
	size_t off = 0, len = 0;
	uint32_t src;
	int rc = ip4_icmp_payload(p, n, &off, &len, &src);

	if (rc) {
		if (rc > -IP_E_MISSING_HEADER || rc < -IP_E_UNRELATED_PROTOCOL)
			fail("undocumented ip4 error", rc);
		return;
	}
	if (off < 20 || off > 60 || off % 4 || off + len > n || memcmp(&src, p + 12, 4))
		fail("ip4 message outside the read", (int)off);
	check_icmp(p + off, len, 0);
}

/* The checksum of the input in three pieces of input-chosen (often odd) lengths. */
static void check_csum(const uint8_t *p, size_t n)
{
	struct csum_piece whole = { p, n }, pc[3];
	size_t a = n ? p[0] % (n + 1) : 0, b = n > a ? a + p[n - 1] % (n - a + 1) : a;

	pc[0].p = p;
	pc[0].n = a;
	pc[1].p = p + a;
	pc[1].n = b - a;
	pc[2].p = p + b;
	pc[2].n = n - b;
	if (inet_csum(pc, 3) != inet_csum(&whole, 1))
		fail("checksum depends on the pieces", (int)a);
}

/* ---- replay window against a model ---- */

static struct {
	bool started;
	uint16_t highest;
	uint8_t seen[65536 / 8];
} model;

static enum shim_replay_verdict model_admit(uint16_t seq)
{
	bool seen = model.seen[seq / 8] >> (seq % 8) & 1;

	if (model.started && seq <= model.highest) {
		if (model.highest - seq >= SHIM_REPLAY_WINDOW)
			return SHIM_REPLAY_STALE;
		if (seen)
			return SHIM_REPLAY_DUPLICATE;
	}
	if (!model.started || seq > model.highest)
		model.highest = seq;
	model.started = true;
	model.seen[seq / 8] |= (uint8_t)(1 << (seq % 8));
	return SHIM_REPLAY_OK;
}

static void replay_admit_both(struct shim_replay *w, uint16_t seq)
{
	enum shim_replay_verdict got = shim_replay_admit(w, seq), want = model_admit(seq);

	if (got != want) {
		fprintf(stderr, "replay seq %u: got %d, model %d (highest %u)\n", seq, got, want,
			model.highest);
		abort();
	}
}

/* Pairs of bytes as absolute sequences, then single bytes as signed steps of up to ±2176. */
static void check_replay(const uint8_t *p, size_t n)
{
	struct shim_replay w;

	memset(&model, 0, sizeof(model));
	shim_replay_init(&w);
	for (size_t i = 0; i + 1 < n; i += 2)
		replay_admit_both(&w, (uint16_t)(p[i] << 8 | p[i + 1]));

	memset(&model, 0, sizeof(model));
	shim_replay_init(&w);
	for (size_t i = 0; i < n; i++) {
		long seq = (long)model.highest + (long)(int8_t)p[i] * 17;

		replay_admit_both(&w, (uint16_t)(seq < 0 ? 0 : seq > 65535 ? 65535 : seq));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_ip4(data, size);
	check_icmp(data, size, 0);
	check_icmp(data, size, 1);
	check_shim(data, size, 0);
	check_csum(data, size);
	check_replay(data, size);
	return 0;
}
