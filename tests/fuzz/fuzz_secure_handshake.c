/*
 * libFuzzer target for the secure handshake (spec/kcp.md §3.3, §3.4, §4.5): msg 1, msg 2 and
 * COOKIE_REPLY built with the right keys from fields the input chooses, so that the deep
 * checks (version, index copies, conv echo, flags, mtu, clock skew, replay cache, low-order
 * points, cookies under load) are reached instead of stopping at the AEAD.
 *
 * data[0] % 3 picks the message:
 *   0  msg 1 into a responder (optionally under load, where it needs a cookie first): the
 *      outcome is compared with a predicate written from §3.4; an accepted msg 1's msg 2 must
 *      decrypt, with the Noise core driven by hand, to the payload §3.3 prescribes;
 *   1  msg 2 into an initiator whose msg 1 is the §3.13 one: established exactly when the
 *      predicate says so, and then its key confirmation opens under the hand-derived k_i2r;
 *   2  COOKIE_REPLY into that initiator: accepted exactly with the right AAD and index, and
 *      the resent msg 1 carries mac2 = BLAKE2b-128(cookie, msg 1[0:120]).
 * Optionally one byte of the built message is changed afterwards: any change outside mac2
 * must make it rejected.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sodium.h"
#include "proto/secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define I_INDEX 0x11111111u
#define CONV 0x33333333u
#define UNIX_MS 1700000000000ULL
#define NOISE_NAME "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b"
#define PROLOGUE "ferry-secure-v1"

static const uint8_t LOW_ORDER[4][32] = {
	{ 0 },
	{ 1 },
	{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
	  0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
	{ 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
	  0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
};

static uint8_t psk[32], wrong_psk[32];

static void fail(const char *what, long v)
{
	fprintf(stderr, "%s (%ld)\n", what, v);
	abort();
}

/* ---- input cursor: missing bytes read as zero ---- */

struct cur {
	const uint8_t *p;
	size_t n, off;
};

static uint8_t take8(struct cur *c)
{
	return c->off < c->n ? c->p[c->off++] : 0;
}

static void take(struct cur *c, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = take8(c);
}

static uint32_t take32(struct cur *c)
{
	uint8_t b[4];

	take(c, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- randomness: deterministic per input ---- */

static struct {
	uint8_t script[2][32];
	size_t len[2];
	int count, next;
	uint64_t x;
} rnd;

static void rnd_hook(void *arg, void *buf, size_t n)
{
	uint8_t *b = buf;

	(void)arg;
	if (rnd.next < rnd.count) {
		memcpy(b, rnd.script[rnd.next], n < rnd.len[rnd.next] ? n : rnd.len[rnd.next]);
		rnd.next++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		rnd.x ^= rnd.x >> 12;
		rnd.x ^= rnd.x << 25;
		rnd.x ^= rnd.x >> 27;
		b[i] = (uint8_t)((rnd.x * 0x2545F4914F6CDD1DULL) >> 56);
	}
}

/* ---- io keeping the packets of one call ---- */

static struct {
	int n;
	uint8_t pkt[4][160];
	size_t len[4];
} out;

static void io_send(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	if (out.n < 4 && n <= sizeof(out.pkt[0])) {
		memcpy(out.pkt[out.n], p, n);
		out.len[out.n] = n;
	}
	out.n++;
}

static const struct secure_io io = { NULL, io_send, NULL };

/* ---- ephemerals the input picks ---- */

struct eph {
	bool known;		/* we hold the private key */
	uint8_t priv[32], pub[32];
};

static void eph_pick(struct cur *c, struct eph *e)
{
	uint8_t sel = take8(c);

	memset(e, 0, sizeof(*e));
	if (sel < 248) {
		for (int i = 0; i < 32; i++)
			e->priv[i] = (uint8_t)(sel * 7 + i + 1);
		sod_x25519_pub(e->pub, e->priv);
		e->known = true;
	} else if (sel < 252) {
		memcpy(e->pub, LOW_ORDER[sel - 248], 32);
	} else {
		take(c, e->pub, 32);
	}
}

/* X25519 with a clamped scalar gives zero exactly for the small-order points. */
static bool low_order(const uint8_t pub[32])
{
	uint8_t k[32], dh[32];

	memset(k, 0x55, sizeof(k));
	return sod_x25519(dh, k, pub) != 0;
}

static void noise_start(struct secure_noise *ns, const uint8_t *key)
{
	secure_noise_init(ns, NOISE_NAME, (const uint8_t *)PROLOGUE, strlen(PROLOGUE));
	secure_noise_mix_key_and_hash(ns, key, 32);
}

static void noise_e(struct secure_noise *ns, const uint8_t pub[32])
{
	secure_noise_mix_hash(ns, pub, 32);
	secure_noise_mix_key(ns, pub, 32);
}

static struct secure_cfg base_cfg(bool responder)
{
	struct secure_cfg cfg;

	secure_cfg_default(&cfg);
	memcpy(cfg.psk, psk, 32);
	cfg.responder = responder;
	cfg.worker_id = responder ? 0x22 : 0x11;
	cfg.max_sessions = 16;
	cfg.replay_cache_entries = 64;
	cfg.hs_rate_per_s = 0;
	return cfg;
}

/* ---- mode 0: msg 1 into a responder ---- */

static struct secure_sess *accept_msg1(struct secure_ctx *c, const uint8_t *m, const struct sockaddr_in *src,
				       uint64_t unix_ms)
{
	return secure_responder_accept(c, m, SECURE_INIT_BYTES, (const struct sockaddr *)src, sizeof(*src), 1000,
				       unix_ms, &io);
}

static void fuzz_msg1(struct cur *c)
{
	struct secure_cfg cfg = base_cfg(true), icfg = base_cfg(false);
	struct secure_ctx *cr, *ci = NULL;
	struct secure_sess *s = NULL, *pre[2] = { NULL, NULL }, *prei[2] = { NULL, NULL };
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(4000), .sin_addr = { htonl(0xc0000201) } };
	struct secure_noise ns, after1;
	struct eph e;
	uint8_t m[SECURE_INIT_BYTES], pl[64], flags_in;
	uint32_t index;
	uint8_t opts, pos, xr;
	bool load, wrong, expect;
	int64_t skew;
	uint64_t t;

	eph_pick(c, &e);
	index = take32(c);
	take(c, pl, sizeof(pl));
	opts = take8(c);
	pos = take8(c);
	xr = take8(c);
	load = opts & 1;
	wrong = opts >> 1 & 1;
	if (opts >> 2 & 1) {
		/* most inputs: a time near now, so the other checks are reached */
		int16_t off = (int16_t)(pl[12] | pl[13] << 8);

		t = UNIX_MS + (uint64_t)(int64_t)off * 1000 + pl[14];
		for (int i = 0; i < 8; i++)
			pl[12 + i] = (uint8_t)(t >> (8 * i));
	}
	if (opts >> 3 & 1)
		put32(pl + 4, index);		/* a matching copy */
	if (opts >> 4 & 1)
		pl[0] = 1;
	if (opts >> 5 & 1) {
		pl[20] = 0x46;			/* mtu 1350 */
		pl[21] = 0x05;
	}

	if (load) {
		cfg.max_half_open = 3;
		icfg.max_half_open = 3;
	}
	cr = secure_ctx_new(&cfg);
	if (load) {
		/* two half-open sessions: 2 × 2 > 3 */
		ci = secure_ctx_new(&icfg);
		for (int k = 0; k < 2; k++) {
			out.n = 0;
			prei[k] = secure_initiator_new(ci, 0, 1000, UNIX_MS, &io);
			pre[k] = accept_msg1(cr, out.pkt[0], &src, UNIX_MS);
			if (!pre[k])
				fail("load setup", k);
		}
	}

	/* build msg 1 */
	memset(m, 0, sizeof(m));
	m[0] = SECURE_T_INIT;
	put32(m + 4, index);
	memcpy(m + 8, e.pub, 32);
	noise_start(&ns, wrong ? wrong_psk : psk);
	noise_e(&ns, e.pub);
	secure_noise_encrypt_and_hash(&ns, pl, sizeof(pl), m + 40);
	after1 = ns;
	flags_in = pl[1];

	skew = (int64_t)(UNIX_MS - ((uint64_t)le32(pl + 12) | (uint64_t)le32(pl + 16) << 32));
	expect = !wrong && pl[0] == 1 && le32(pl + 4) == index && index && (pl[20] | pl[21] << 8) >= 128 &&
		 skew <= 300000 && skew >= -300000 && !low_order(e.pub);

	if (xr) {
		m[pos % SECURE_INIT_BYTES] ^= xr;
		if (pos % SECURE_INIT_BYTES < 120)
			expect = false;
	}

	out.n = 0;
	s = accept_msg1(cr, m, &src, UNIX_MS);
	if (load && expect) {
		/* first a COOKIE_REPLY, then the same msg 1 with its mac2 is accepted */
		uint8_t cookie_key[32], cookie[16];
		const uint8_t *r = out.pkt[0];

		if (s || out.n != 1 || out.len[0] != SECURE_COOKIE_BYTES)
			fail("under load a good msg 1 must get exactly a COOKIE_REPLY", out.n);
		sod_blake2b(cookie_key, 32, psk, 32, "ferry-secure-v1 cookie key", 26);
		if (sod_xaead_open(cookie, r + 32, 32, m + 104, 16, r + 8, cookie_key))
			fail("COOKIE_REPLY does not open", 0);
		if (le32(r + 4) != index)
			fail("COOKIE_REPLY index", 0);
		sod_blake2b(m + 120, 16, cookie, 16, m, 120);
		out.n = 0;
		s = accept_msg1(cr, m, &src, UNIX_MS);
	}
	if (!!s != expect)
		fail(expect ? "a good msg 1 was refused" : "a bad msg 1 was accepted", (long)skew);
	if (s) {
		uint8_t dh[32], p2[16];
		const uint8_t *r = out.pkt[0];

		if (out.n != 1 || out.len[0] != SECURE_RESP_BYTES || r[0] != SECURE_T_RESP || le32(r + 8) != index)
			fail("msg 2 shape", out.n);
		if (secure_state(s) != SECURE_HALF_OPEN || secure_conv(s) != le32(pl + 8) ||
		    secure_flags(s) != (flags_in & 3))
			fail("half-open session fields", 0);
		if (e.known) {
			ns = after1;
			noise_e(&ns, r + 12);
			if (sod_x25519(dh, e.priv, r + 12))
				fail("responder ephemeral of low order", 0);
			secure_noise_mix_key(&ns, dh, 32);
			if (secure_noise_decrypt_and_hash(&ns, r + 44, 32, p2))
				fail("msg 2 does not decrypt", 0);
			if (p2[0] != 1 || p2[1] != (flags_in & 3) || memcmp(p2 + 4, r + 4, 4) ||
			    le32(p2 + 8) != le32(pl + 8) || (p2[12] | p2[13] << 8) != 1350 || p2[2] | p2[3] | p2[14] | p2[15])
				fail("payload2 fields", 0);
		}
		/* the same msg 1 again is a replay */
		out.n = 0;
		if (accept_msg1(cr, m, &src, UNIX_MS) || out.n)
			fail("replayed msg 1", out.n);
	} else if (!load && out.n) {
		fail("a refused msg 1 got an answer", out.n);
	}
	if (secure_ctx_stats(cr)->hs_bytes_out > secure_ctx_stats(cr)->hs_bytes_in)
		fail("amplification", 0);
	secure_sess_free(s);
	for (int k = 0; k < 2; k++) {
		secure_sess_free(pre[k]);
		secure_sess_free(prei[k]);
	}
	secure_ctx_free(cr);
	secure_ctx_free(ci);
}

/* ---- modes 1 and 2: the §3.13 initiator ---- */

static struct secure_sess *vector_initiator(struct secure_ctx **ci, struct secure_noise *after1, uint8_t ei[32])
{
	struct secure_cfg cfg = base_cfg(false);
	struct secure_sess *s;

	*ci = secure_ctx_new(&cfg);
	for (int i = 0; i < 4; i++)
		rnd.script[0][i] = (uint8_t)(I_INDEX >> (8 * i));
	rnd.len[0] = 4;
	for (int i = 0; i < 32; i++)
		ei[i] = rnd.script[1][i] = (uint8_t)(0x20 + i);
	rnd.len[1] = 32;
	rnd.count = 2;
	rnd.next = 0;
	out.n = 0;
	s = secure_initiator_new(*ci, CONV, 1000, UNIX_MS, &io);
	if (!s || out.n != 1)
		fail("vector initiator", 0);
	/* the initiator's state after msg 1, rebuilt by hand */
	noise_start(after1, psk);
	noise_e(after1, out.pkt[0] + 8);
	{
		uint8_t pl[64];

		if (secure_noise_decrypt_and_hash(after1, out.pkt[0] + 40, 80, pl))
			fail("own msg 1 does not decrypt", 0);
	}
	return s;
}

static void fuzz_msg2(struct cur *c)
{
	struct secure_ctx *ci;
	struct secure_noise ns;
	struct secure_sess *s;
	struct eph e;
	uint8_t ei[32], m[SECURE_RESP_BYTES], p2[16], dh[32], plain[64];
	uint32_t sender, receiver;
	uint8_t rsel, pos, xr;
	bool expect;
	int rc;

	s = vector_initiator(&ci, &ns, ei);
	eph_pick(c, &e);
	sender = take32(c);
	rsel = take8(c);
	receiver = rsel & 1 ? take32(c) : I_INDEX;
	take(c, p2, sizeof(p2));
	pos = take8(c);
	xr = take8(c);
	if (rsel >> 1 & 1)
		put32(p2 + 4, sender);
	if (rsel >> 2 & 1)
		put32(p2 + 8, CONV);
	if (rsel >> 3 & 1)
		p2[0] = 1;
	if (rsel >> 4 & 1)
		p2[1] &= 3;

	memset(m, 0, sizeof(m));
	m[0] = SECURE_T_RESP;
	put32(m + 4, sender);
	put32(m + 8, receiver);
	memcpy(m + 12, e.pub, 32);
	noise_e(&ns, e.pub);
	/* ee from our side of the table: we hold e_i */
	if (sod_x25519(dh, ei, e.pub))
		memset(dh, 0, sizeof(dh));
	secure_noise_mix_key(&ns, dh, 32);
	secure_noise_encrypt_and_hash(&ns, p2, sizeof(p2), m + 44);

	expect = receiver == I_INDEX && !low_order(e.pub) && p2[0] == 1 && le32(p2 + 4) == sender && sender &&
		 le32(p2 + 8) == CONV && !(p2[1] & ~3) && (p2[12] | p2[13] << 8) >= 128;
	if (xr) {
		m[pos % SECURE_RESP_BYTES] ^= xr;
		expect = false;
	}
	out.n = 0;
	if (secure_ctx_lookup(ci, m, sizeof(m)) == s) {
		rc = secure_open(s, 1001, m, sizeof(m), plain, sizeof(plain), NULL);
		if ((rc == 0) != expect)
			fail(expect ? "a good msg 2 was refused" : "a bad msg 2 was accepted", rc);
	} else if (expect) {
		fail("lookup of a good msg 2", 0);
	}
	if ((secure_state(s) == SECURE_ESTABLISHED) != expect)
		fail("state after msg 2", secure_state(s));
	if (expect) {
		uint8_t t1[64], t2[64], t3[64];
		const uint8_t *d = out.pkt[0];

		/* key confirmation: empty DATA under k_i2r, counter 0, to R's index */
		sod_hkdf(ns.ck, 64, NULL, 0, t1, t2, t3);
		if (out.n != 1 || out.len[0] != SECURE_OVERHEAD || d[0] != SECURE_T_DATA || le32(d + 4) != sender ||
		    sod_aead_open(plain, d + 16, 16, d, 16, 0, t1))
			fail("key confirmation", out.n);
		if (secure_flags(s) != p2[1] ||
		    secure_max_datagram(s) != ((p2[12] | p2[13] << 8) < 1350 ? (p2[12] | p2[13] << 8) : 1350))
			fail("agreed flags or mtu", 0);
	} else if (out.n) {
		fail("a refused msg 2 sent something", out.n);
	}
	secure_sess_free(s);
	secure_ctx_free(ci);
}

static void fuzz_cookie(struct cur *c)
{
	struct secure_ctx *ci;
	struct secure_noise ns;
	struct secure_sess *s;
	uint8_t ei[32], m[SECURE_COOKIE_BYTES], aad[16], cookie[16], key[32], plain[64], mac2[16];
	uint8_t sel, pos, xr;
	uint32_t receiver;
	bool expect;
	int rc;

	s = vector_initiator(&ci, &ns, ei);
	memcpy(aad, out.pkt[0] + 104, 16);
	sel = take8(c);
	if (sel & 1)
		take(c, aad, 16);
	receiver = sel >> 1 & 1 ? take32(c) : I_INDEX;
	memset(m, 0, sizeof(m));
	m[0] = SECURE_T_COOKIE;
	put32(m + 4, receiver);
	take(c, m + 8, 24);
	take(c, cookie, 16);
	pos = take8(c);
	xr = take8(c);
	sod_blake2b(key, 32, psk, 32, "ferry-secure-v1 cookie key", 26);
	sod_xaead_seal(m + 32, cookie, 16, aad, 16, m + 8, key);
	expect = !memcmp(aad, out.pkt[0] + 104, 16) && receiver == I_INDEX;
	if (xr) {
		m[pos % SECURE_COOKIE_BYTES] ^= xr;
		expect = false;
	}
	out.n = 0;
	rc = secure_ctx_lookup(ci, m, sizeof(m)) == s ? secure_open(s, 1001, m, sizeof(m), plain, sizeof(plain), NULL)
						       : -ENOENT;
	if ((rc == 0) != expect)
		fail(expect ? "a good COOKIE_REPLY was refused" : "a bad COOKIE_REPLY was accepted", rc);
	if (expect) {
		const uint8_t *m1 = out.pkt[0];

		if (out.n != 1 || out.len[0] != SECURE_INIT_BYTES)
			fail("no msg 1 resent after the cookie", out.n);
		sod_blake2b(mac2, 16, cookie, 16, m1, 120);
		if (memcmp(mac2, m1 + 120, 16))
			fail("mac2 of the resent msg 1", 0);
		/* the same reply again, and a reply for the resent attempt: neither is answered */
		out.n = 0;
		if (secure_open(s, 1002, m, sizeof(m), plain, sizeof(plain), NULL) >= 0 || out.n)
			fail("a second COOKIE_REPLY for one attempt was answered", out.n);
	} else if (out.n) {
		fail("a refused COOKIE_REPLY sent something", out.n);
	}
	secure_sess_free(s);
	secure_ctx_free(ci);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct cur c = { data, size, 1 };

	if (!ready) {
		for (int i = 0; i < 32; i++) {
			psk[i] = (uint8_t)i;
			wrong_psk[i] = (uint8_t)(i + 1);
		}
		sod_random_set_hook(rnd_hook, NULL);
		ready = true;
	}
	if (!size)
		return 0;
	memset(&rnd, 0, sizeof(rnd));
	rnd.x = 0x2545F4914F6CDD1DULL;
	switch (data[0] % 3) {
	case 0:
		fuzz_msg1(&c);
		break;
	case 1:
		fuzz_msg2(&c);
		break;
	default:
		fuzz_cookie(&c);
		break;
	}
	return 0;
}
