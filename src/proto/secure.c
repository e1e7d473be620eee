/*
 * ferry secure mode (spec/kcp.md §3): the Noise NNpsk0 handshake with retries and cookies
 * (§3.2-§3.4), the key schedule (§3.5), DATA/CONTROL sealing and opening with the replay
 * window (§3.3, §3.6), rekey by time and by count with overlap (§3.7), the limits of §3.8
 * and the DoS rules of §3.9.
 *
 * State machine of a session:
 *
 *   initiator:  HANDSHAKE --msg 2--> ESTABLISHED --CLOSE/limit--> CLOSED
 *                   \--5 attempts, no reply--> FAILED
 *   responder:  (msg 1 accepted) HALF_OPEN --first authenticated DATA/CONTROL--> ESTABLISHED
 *                   \--10 s--> FAILED
 *
 * Keypairs: a session holds at most three, `prev` (receive only), `cur`, `next` (the
 * rekey responder's, receive-enabled until the peer proves it switched). Indices of
 * keypairs and handshake attempts are registered in the context's index map, so a
 * DATA/CONTROL/RESP/COOKIE packet finds its session by the receiver index alone.
 *
 * Pure: no sockets, no clock, no logging; memory is allocated only when a context or a
 * session is created. Every rejected input is a silent drop counted under one reason.
 * Not here: addresses and roaming (the caller updates the peer address when secure_open
 * reports the highest counter), KCP itself, log text.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sodium.h"
#include "proto/kcp.h"
#include "proto/secure.h"

/* ---- §3.8 limits and timers ---- */

#define HANDSHAKE_RETRY_MS 1000		/* first retry; doubles: attempts at 0, 1, 3, 7, 15 s */
#define HANDSHAKE_ATTEMPTS 5
#define HANDSHAKE_LAST_WAIT_MS 1000	/* after the 5th attempt: one more base RTO, fail at 16 s */
#define ATTEMPT_SLOTS 8			/* live attempts: 5 scheduled + resends after a cookie */
#define COOKIE_KEEP_MS 110000		/* initiator keeps a cookie a little less than it lives */
#define HALF_OPEN_TIMEOUT_MS 10000
#define MAX_HALF_OPEN 1024
#define HS_RATE_PER_SRC 10		/* msg 1 per second per source */
#define HS_BURST_PER_SRC 20
#define SRC_BUCKETS 4096		/* direct-mapped per-source buckets (a lost bucket only forgives) */
#define HS_RATE_GLOBAL 1000		/* msg 1/s above which R is "under load": ~1000 DH/s is a few % of a core */
#define HS_BURST_GLOBAL 2000
#define COOKIE_RATE_GLOBAL 1000		/* COOKIE_REPLY/s: bounds reflection of a replayed msg 1 */
#define COOKIE_BURST_GLOBAL 1000
#define MAX_SKEW_S 300
#define NO_SKEW_REPLAY_KEEP_MS 600000	/* replay cache horizon when the time check is off */
#define REPLAY_CACHE_ENTRIES 65536
#define REKEY_AFTER_TIME_MS 120000
#define REJECT_AFTER_EXTRA_MS 60000	/* REJECT_AFTER_TIME is always REKEY_AFTER_TIME + 60 s */
#define RESPONDER_REKEY_DELAY_MS 10000	/* R waits so that I normally rekeys first */
#define REKEY_AFTER_PACKETS (1ULL << 60)
#define REJECT_AFTER_PACKETS (UINT64_MAX - (1ULL << 13))	/* 2^64 - 2^13 - 1 */
#define REKEY_RETRY_MS 1000		/* REKEY_INIT retries: 1, 2, 4, 8, 8, ... s */
#define REKEY_RETRY_MAX_MS 8000
#define PREV_KEY_GRACE_MS 10000
#define COOKIE_SECRET_ROTATE_MS 120000
#define MAX_SESSIONS 4096
#define IDLE_NEXT_MS 3600000		/* secure_next_ms when nothing is due */

/* §3.3 payload layouts */
#define VERSION 1
#define PAYLOAD1_BYTES 64
#define PAYLOAD2_BYTES 16
#define COOKIE_BYTES 16
#define MAC2_OFF 120
#define MSG1_TAG_OFF 104
#define CONTROL_MAX_PLAIN 64		/* longer CONTROL plaintexts cannot be any known ctype */
#define INDEX_SLOTS_RESPONDER 4		/* prev, cur, next, own pending REKEY_INIT index */
#define INDEX_SLOTS_INITIATOR ATTEMPT_SLOTS

static const char NOISE_NAME[] = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b";
static const char PROLOGUE[] = "ferry-secure-v1";
static const char COOKIE_KEY_LABEL[] = "ferry-secure-v1 cookie key";
static const char FINGERPRINT_LABEL[] = "ferry-secure-v1 fingerprint";

/* ---- little-endian fields ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* wrap-safe: t is at or before now */
static bool reached(uint32_t now, uint32_t t)
{
	return (int32_t)(now - t) >= 0;
}

static void earliest(uint32_t *best, uint32_t now, uint32_t t)
{
	if ((int32_t)(t - now) < (int32_t)(*best - now))
		*best = t;
}

/* ---- Noise symmetric state (Noise spec §5.2; §3.2) ---- */

void secure_noise_init(struct secure_noise *ns, const char *name, const uint8_t *prologue, size_t plen)
{
	size_t len = strlen(name);

	memset(ns, 0, sizeof(*ns));
	if (len <= sizeof(ns->h))
		memcpy(ns->h, name, len);
	else
		sod_blake2b(ns->h, sizeof(ns->h), NULL, 0, name, len);
	memcpy(ns->ck, ns->h, sizeof(ns->ck));
	secure_noise_mix_hash(ns, prologue, plen);
}

void secure_noise_mix_hash(struct secure_noise *ns, const uint8_t *p, size_t n)
{
	struct sod_blake2b st;

	sod_blake2b_init(&st, sizeof(ns->h), NULL, 0);
	sod_blake2b_update(&st, ns->h, sizeof(ns->h));
	sod_blake2b_update(&st, p, n);
	sod_blake2b_final(&st, ns->h);
}

void secure_noise_mix_key(struct secure_noise *ns, const uint8_t *ikm, size_t n)
{
	uint8_t t[SOD_HASH_BYTES];

	sod_hkdf(ns->ck, sizeof(ns->ck), ikm, n, ns->ck, t, NULL);
	memcpy(ns->k, t, sizeof(ns->k));
	ns->n = 0;
	ns->has_k = true;
	sod_memzero(t, sizeof(t));
}

void secure_noise_mix_key_and_hash(struct secure_noise *ns, const uint8_t *ikm, size_t n)
{
	uint8_t th[SOD_HASH_BYTES], tk[SOD_HASH_BYTES];

	sod_hkdf(ns->ck, sizeof(ns->ck), ikm, n, ns->ck, th, tk);
	secure_noise_mix_hash(ns, th, sizeof(th));
	memcpy(ns->k, tk, sizeof(ns->k));
	ns->n = 0;
	ns->has_k = true;
	sod_memzero(th, sizeof(th));
	sod_memzero(tk, sizeof(tk));
}

void secure_noise_encrypt_and_hash(struct secure_noise *ns, const uint8_t *pt, size_t n, uint8_t *out)
{
	size_t len = n;

	if (ns->has_k) {
		sod_aead_seal(out, pt, n, ns->h, sizeof(ns->h), ns->n++, ns->k);
		len += SECURE_TAG_BYTES;
	} else {
		memmove(out, pt, n);
	}
	secure_noise_mix_hash(ns, out, len);
}

int secure_noise_decrypt_and_hash(struct secure_noise *ns, const uint8_t *ct, size_t n, uint8_t *out)
{
	if (ns->has_k) {
		if (sod_aead_open(out, ct, n, ns->h, sizeof(ns->h), ns->n, ns->k))
			return -EBADMSG;
		ns->n++;
	} else {
		memmove(out, ct, n);
	}
	secure_noise_mix_hash(ns, ct, n);
	return 0;
}

void secure_noise_split(const struct secure_noise *ns, uint8_t k1[32], uint8_t k2[32])
{
	uint8_t t1[SOD_HASH_BYTES], t2[SOD_HASH_BYTES];

	sod_hkdf(ns->ck, sizeof(ns->ck), NULL, 0, t1, t2, NULL);
	memcpy(k1, t1, 32);
	memcpy(k2, t2, 32);
	sod_memzero(t1, sizeof(t1));
	sod_memzero(t2, sizeof(t2));
}

/* ---- replay window (§3.6, RFC 6479) ---- */

void secure_replay_init(struct secure_replay *w)
{
	memset(w, 0, sizeof(*w));
}

int secure_replay_check(const struct secure_replay *w, uint64_t ctr)
{
	if (!w->any || ctr > w->highest)
		return 0;
	if (w->highest - ctr >= SECURE_REPLAY_WINDOW)
		return -ESTALE;
	if (w->bits[(ctr >> 6) % SECURE_REPLAY_WORDS] >> (ctr & 63) & 1)
		return -EALREADY;
	return 0;
}

bool secure_replay_mark(struct secure_replay *w, uint64_t ctr)
{
	bool highest = !w->any || ctr > w->highest;

	if (highest) {
		/* clear the words after the old highest's word, up to the new one's */
		uint64_t from = w->highest >> 6, words = (ctr >> 6) - from;

		if (!w->any || words > SECURE_REPLAY_WORDS)
			words = SECURE_REPLAY_WORDS;
		for (uint64_t i = 1; i <= words; i++)
			w->bits[(from + i) % SECURE_REPLAY_WORDS] = 0;
		w->highest = ctr;
		w->any = true;
	}
	w->bits[(ctr >> 6) % SECURE_REPLAY_WORDS] |= 1ULL << (ctr & 63);
	return highest;
}

/* ---- context tables ---- */

/* index → session; linear probing, backward-shift deletion, index 0 = empty */
struct idx_slot {
	uint32_t index;
	struct secure_sess *sess;
};

/* msg 1 replay cache: a FIFO ring (ordered by time) plus a hash of ring positions */
struct rc_entry {
	uint8_t hash[16];
	uint32_t t_ms;
};

struct bucket {
	uint64_t milli;			/* tokens × 1000 */
	uint32_t last_ms;
	bool started;
};

struct src_bucket {
	uint64_t tag;
	struct bucket b;
};

struct secure_ctx {
	struct secure_cfg cfg;
	struct secure_stats stats;
	struct secure_noise pre;	/* after MixHash(prologue), MixKeyAndHash(psk): §3.9 cost rule */
	uint8_t cookie_key[32];
	uint32_t reject_time_ms;

	struct idx_slot *idx;
	uint32_t idx_mask, idx_count;

	/* responder only */
	struct rc_entry *rc_ring;
	uint32_t *rc_tab;
	uint32_t rc_cap, rc_mask, rc_head, rc_count;
	struct src_bucket *src;
	uint8_t src_key[SOD_SHORTHASH_KEY_BYTES];
	struct bucket hs_global, cookie_global;
	uint8_t cookie_secret[32], cookie_prev[32];
	bool cookie_have, cookie_prev_have;
	uint32_t cookie_born_ms;
};

/* ---- sessions ---- */

struct keypair {
	bool live;
	bool rx_any;
	uint32_t local_index, remote_index;
	uint32_t epoch;
	uint32_t born_ms;
	uint64_t send_ctr;
	uint8_t send_key[32], recv_key[32];
	struct secure_replay rx;
};

struct attempt {
	bool live;
	bool cookie_answered;
	uint32_t index;
	uint8_t e_priv[32];
	uint8_t tag[SECURE_TAG_BYTES];	/* msg 1's AEAD tag: the COOKIE_REPLY's AAD */
	struct secure_noise ns;		/* state after msg 1 */
};

struct secure_sess {
	struct secure_ctx *ctx;
	struct secure_io io;
	void *user;
	enum secure_state state;
	bool initiator;
	bool locked;			/* mlock succeeded */
	bool counted_half_open;
	uint32_t conv;
	uint8_t flags;
	uint16_t max_datagram;
	uint32_t born_ms;
	uint64_t channel_id;
	/* wall clock, extrapolated between the calls that pass it */
	uint64_t unix_ms;
	uint32_t unix_at_ms;

	/*
	 * Handshake attempts (initiator, until msg 2) and keypairs (from msg 2 on) are never
	 * live together: sharing the memory keeps a session within one page (one mlock).
	 */
	bool have_kp;			/* kp[] is the live member */
	union {
		struct attempt att[ATTEMPT_SLOTS];
		struct keypair kp[3];
	};

	/* initiator handshake */
	uint32_t attempts;		/* scheduled attempts sent */
	uint32_t retry_at_ms, retry_wait_ms;
	uint8_t cookie[COOKIE_BYTES];
	bool has_cookie;
	uint32_t cookie_ms;

	/* keys */
	struct keypair *prev, *cur, *next;
	uint8_t rk[SOD_HASH_BYTES];		/* committed rekey root */
	uint8_t next_rk[SOD_HASH_BYTES];	/* B: root that goes with `next`, committed on the switch */
	bool prev_erase_armed, prev_await_rx;
	uint32_t prev_erase_ms;

	/* rekey as A (we sent REKEY_INIT) */
	bool rk_pending;
	int rk_reason;
	uint32_t a_index;
	uint8_t a_priv[32], a_pub[32];
	uint32_t rk_retry_ms, rk_wait_ms;

	/* rekey as B: the INIT answered last, and its ACK (a duplicate INIT gets the same one) */
	bool ack_valid;
	uint32_t ack_init_index;
	uint8_t ack_init_e[32];
	uint8_t ack_plain[SECURE_REKEY_ACK_BYTES];
};

#define STAT(c, field) ((c)->stats.field++)

/* ---- index map ---- */

static uint32_t idx_home(const struct secure_ctx *c, uint32_t index)
{
	return (index * 0x9e3779b1u) >> 7 & c->idx_mask;
}

static struct idx_slot *idx_find(struct secure_ctx *c, uint32_t index)
{
	if (!index)
		return NULL;
	for (uint32_t i = idx_home(c, index);; i = (i + 1) & c->idx_mask) {
		if (c->idx[i].index == index)
			return &c->idx[i];
		if (!c->idx[i].index)
			return NULL;
	}
}

static int idx_insert(struct secure_ctx *c, uint32_t index, struct secure_sess *s)
{
	uint32_t i;

	if (!index)
		return -EINVAL;
	if (c->idx_count >= (c->idx_mask + 1) / 2)
		return -ENOSPC;
	for (i = idx_home(c, index); c->idx[i].index; i = (i + 1) & c->idx_mask)
		if (c->idx[i].index == index)
			return -EEXIST;
	c->idx[i].index = index;
	c->idx[i].sess = s;
	c->idx_count++;
	return 0;
}

/* Unregisters index if s owns it (a stale value never unhooks another session). */
static void idx_remove(struct secure_ctx *c, uint32_t index, const struct secure_sess *s)
{
	struct idx_slot *slot = idx_find(c, index);
	uint32_t i, j;

	if (!slot || slot->sess != s)
		return;
	i = (uint32_t)(slot - c->idx);
	for (j = (i + 1) & c->idx_mask; c->idx[j].index; j = (j + 1) & c->idx_mask) {
		uint32_t k = idx_home(c, c->idx[j].index);

		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			c->idx[i] = c->idx[j];
			i = j;
		}
	}
	c->idx[i].index = 0;
	c->idx[i].sess = NULL;
	c->idx_count--;
}

/* A random non-zero index whose top 8 bits name this worker, registered to s; 0 if none. */
static uint32_t idx_alloc(struct secure_ctx *c, struct secure_sess *s)
{
	for (int tries = 0; tries < 32; tries++) {
		uint8_t b[4];
		uint32_t index;
		int err;

		sod_random(b, sizeof(b));
		index = (uint32_t)c->cfg.worker_id << 24 | (get32(b) & 0xffffffu);
		err = idx_insert(c, index, s);
		if (!err)
			return index;
		if (err == -ENOSPC)
			return 0;
	}
	return 0;
}

/* ---- msg 1 replay cache ---- */

static uint32_t rc_home(const struct secure_ctx *c, const uint8_t hash[16])
{
	return get32(hash) & c->rc_mask;
}

static bool rc_contains(const struct secure_ctx *c, const uint8_t hash[16])
{
	for (uint32_t i = rc_home(c, hash); c->rc_tab[i]; i = (i + 1) & c->rc_mask)
		if (!memcmp(c->rc_ring[c->rc_tab[i] - 1].hash, hash, 16))
			return true;
	return false;
}

static void rc_drop_oldest(struct secure_ctx *c)
{
	uint32_t pos = c->rc_head, i, j;

	for (i = rc_home(c, c->rc_ring[pos].hash); c->rc_tab[i] != pos + 1; i = (i + 1) & c->rc_mask)
		;
	for (j = (i + 1) & c->rc_mask; c->rc_tab[j]; j = (j + 1) & c->rc_mask) {
		uint32_t k = rc_home(c, c->rc_ring[c->rc_tab[j] - 1].hash);

		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			c->rc_tab[i] = c->rc_tab[j];
			i = j;
		}
	}
	c->rc_tab[i] = 0;
	c->rc_head = (c->rc_head + 1) % c->rc_cap;
	c->rc_count--;
}

static uint32_t rc_keep_ms(const struct secure_ctx *c)
{
	return c->cfg.max_skew_s ? 2 * c->cfg.max_skew_s * 1000 : NO_SKEW_REPLAY_KEEP_MS;
}

static void rc_expire(struct secure_ctx *c, uint32_t now)
{
	while (c->rc_count && now - c->rc_ring[c->rc_head].t_ms >= rc_keep_ms(c))
		rc_drop_oldest(c);
}

static void rc_insert(struct secure_ctx *c, const uint8_t hash[16], uint32_t now)
{
	uint32_t pos, i;

	if (c->rc_count == c->rc_cap)
		rc_drop_oldest(c);
	pos = (c->rc_head + c->rc_count) % c->rc_cap;
	memcpy(c->rc_ring[pos].hash, hash, 16);
	c->rc_ring[pos].t_ms = now;
	for (i = rc_home(c, hash); c->rc_tab[i]; i = (i + 1) & c->rc_mask)
		;
	c->rc_tab[i] = pos + 1;
	c->rc_count++;
}

/* ---- token buckets ---- */

static bool bucket_take(struct bucket *b, uint32_t now, uint32_t rate_per_s, uint32_t burst)
{
	uint64_t cap = (uint64_t)burst * 1000;

	if (!b->started) {
		b->started = true;
		b->milli = cap;
	} else if ((int32_t)(now - b->last_ms) > 0) {
		b->milli += (uint64_t)(now - b->last_ms) * rate_per_s;
		if (b->milli > cap)
			b->milli = cap;
	}
	b->last_ms = now;
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

/* IP ‖ port (BE) of src into out (up to 18 bytes); 0 bytes for other families. */
static size_t src_bytes(const struct sockaddr *src, socklen_t len, uint8_t out[18])
{
	if (src && src->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;

		memcpy(out, &a->sin_addr, 4);
		memcpy(out + 4, &a->sin_port, 2);
		return 6;
	}
	if (src && src->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;

		memcpy(out, &a->sin6_addr, 16);
		memcpy(out + 16, &a->sin6_port, 2);
		return 18;
	}
	return 0;
}

static bool src_take(struct secure_ctx *c, const uint8_t *sb, size_t sn, uint32_t now)
{
	uint64_t tag;
	struct src_bucket *e;

	if (!c->cfg.hs_rate_per_s)
		return true;
	tag = sod_shorthash(c->src_key, sb, sn);
	e = &c->src[tag % SRC_BUCKETS];
	if (e->tag != tag) {
		e->tag = tag;
		e->b.started = false;
	}
	return bucket_take(&e->b, now, c->cfg.hs_rate_per_s, c->cfg.hs_burst);
}

/* ---- cookies (§3.3 type 3, §3.4 step 2) ---- */

static void cookie_rotate(struct secure_ctx *c, uint32_t now)
{
	if (c->cookie_have && now - c->cookie_born_ms < COOKIE_SECRET_ROTATE_MS)
		return;
	if (c->cookie_have && now - c->cookie_born_ms < 2 * COOKIE_SECRET_ROTATE_MS) {
		memcpy(c->cookie_prev, c->cookie_secret, sizeof(c->cookie_prev));
		c->cookie_prev_have = true;
	} else {
		c->cookie_prev_have = false;
	}
	sod_random(c->cookie_secret, sizeof(c->cookie_secret));
	c->cookie_have = true;
	c->cookie_born_ms = now;
}

static void cookie_make(const uint8_t secret[32], const uint8_t *sb, size_t sn, uint8_t cookie[COOKIE_BYTES])
{
	sod_blake2b(cookie, COOKIE_BYTES, secret, 32, sb, sn);
}

static void mac2_make(const uint8_t cookie[COOKIE_BYTES], const uint8_t *msg1, uint8_t mac2[16])
{
	sod_blake2b(mac2, 16, cookie, COOKIE_BYTES, msg1, MAC2_OFF);
}

static bool mac2_valid_with(const uint8_t secret[32], const uint8_t *sb, size_t sn, const uint8_t *msg1)
{
	uint8_t cookie[COOKIE_BYTES], mac2[16];
	bool ok;

	cookie_make(secret, sb, sn, cookie);
	mac2_make(cookie, msg1, mac2);
	ok = sod_equal(mac2, msg1 + MAC2_OFF, 16);
	sod_memzero(cookie, sizeof(cookie));
	return ok;
}

static bool mac2_valid(const struct secure_ctx *c, const uint8_t *sb, size_t sn, const uint8_t *msg1)
{
	return (c->cookie_have && mac2_valid_with(c->cookie_secret, sb, sn, msg1)) ||
	       (c->cookie_prev_have && mac2_valid_with(c->cookie_prev, sb, sn, msg1));
}

static void cookie_reply_send(struct secure_ctx *c, const uint8_t *msg1, const uint8_t *sb, size_t sn,
			      const struct secure_io *io)
{
	uint8_t pkt[SECURE_COOKIE_BYTES], cookie[COOKIE_BYTES];

	pkt[0] = SECURE_T_COOKIE;
	pkt[1] = pkt[2] = pkt[3] = 0;
	memcpy(pkt + 4, msg1 + 4, 4);
	sod_random(pkt + 8, SOD_XNONCE_BYTES);
	cookie_make(c->cookie_secret, sb, sn, cookie);
	sod_xaead_seal(pkt + 32, cookie, sizeof(cookie), msg1 + MSG1_TAG_OFF, SECURE_TAG_BYTES, pkt + 8,
		       c->cookie_key);
	sod_memzero(cookie, sizeof(cookie));
	STAT(c, cookies_sent);
	c->stats.hs_bytes_out += sizeof(pkt);
	io->send(io->ctx, pkt, sizeof(pkt));
}

/* ---- context ---- */

void secure_cfg_default(struct secure_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_skew_s = MAX_SKEW_S;
	cfg->rekey_time_ms = REKEY_AFTER_TIME_MS;
	cfg->rekey_packets = REKEY_AFTER_PACKETS;
	cfg->flags = SECURE_F_KNOWN;
	cfg->max_datagram = 1350;
	cfg->max_half_open = MAX_HALF_OPEN;
	cfg->max_sessions = MAX_SESSIONS;
	cfg->hs_rate_per_s = HS_RATE_PER_SRC;
	cfg->hs_burst = HS_BURST_PER_SRC;
	cfg->replay_cache_entries = REPLAY_CACHE_ENTRIES;
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 16;

	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return !acc;
}

struct secure_ctx *secure_ctx_new(const struct secure_cfg *cfg)
{
	struct secure_ctx *c;
	uint32_t slots;

	if (sod_init() || all_zero(cfg->psk, sizeof(cfg->psk)) || cfg->max_datagram < SECURE_MIN_DATAGRAM ||
	    !cfg->max_sessions || !cfg->rekey_time_ms || !cfg->rekey_packets ||
	    cfg->rekey_time_ms > UINT32_MAX / 2 - REJECT_AFTER_EXTRA_MS ||
	    (cfg->responder && (!cfg->replay_cache_entries || !cfg->max_half_open)))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->reject_time_ms = cfg->rekey_time_ms + REJECT_AFTER_EXTRA_MS;
	if (cfg->hs_rate_per_s && !c->cfg.hs_burst)
		c->cfg.hs_burst = 1;

	slots = pow2_at_least((uint64_t)cfg->max_sessions *
			      (cfg->responder ? INDEX_SLOTS_RESPONDER : INDEX_SLOTS_INITIATOR) * 2);
	c->idx_mask = slots - 1;
	c->idx = calloc(slots, sizeof(*c->idx));
	if (!c->idx)
		goto fail;

	if (cfg->responder) {
		c->rc_cap = cfg->replay_cache_entries;
		c->rc_mask = pow2_at_least((uint64_t)c->rc_cap * 2) - 1;
		c->rc_ring = calloc(c->rc_cap, sizeof(*c->rc_ring));
		c->rc_tab = calloc((size_t)c->rc_mask + 1, sizeof(*c->rc_tab));
		c->src = calloc(SRC_BUCKETS, sizeof(*c->src));
		if (!c->rc_ring || !c->rc_tab || !c->src)
			goto fail;
		sod_random(c->src_key, sizeof(c->src_key));
	}

	secure_noise_init(&c->pre, NOISE_NAME, (const uint8_t *)PROLOGUE, strlen(PROLOGUE));
	secure_noise_mix_key_and_hash(&c->pre, cfg->psk, sizeof(cfg->psk));
	sod_blake2b(c->cookie_key, sizeof(c->cookie_key), cfg->psk, sizeof(cfg->psk), COOKIE_KEY_LABEL,
		    strlen(COOKIE_KEY_LABEL));
	return c;

fail:
	secure_ctx_free(c);
	return NULL;
}

void secure_ctx_free(struct secure_ctx *c)
{
	if (!c)
		return;
	free(c->idx);
	free(c->rc_ring);
	free(c->rc_tab);
	free(c->src);
	sod_memzero(c, sizeof(*c));
	free(c);
}

const struct secure_stats *secure_ctx_stats(const struct secure_ctx *c)
{
	return &c->stats;
}

int secure_packet_type(const uint8_t *p, size_t n)
{
	if (!n)
		return -EBADMSG;
	switch (p[0]) {
	case SECURE_T_INIT:
		return n == SECURE_INIT_BYTES ? SECURE_T_INIT : -EBADMSG;
	case SECURE_T_RESP:
		return n == SECURE_RESP_BYTES ? SECURE_T_RESP : -EBADMSG;
	case SECURE_T_COOKIE:
		return n == SECURE_COOKIE_BYTES ? SECURE_T_COOKIE : -EBADMSG;
	case SECURE_T_DATA:
	case SECURE_T_CONTROL:
		return n >= SECURE_OVERHEAD ? p[0] : -EBADMSG;
	default:
		return -EBADMSG;
	}
}

/* ---- session helpers ---- */

static void emit(struct secure_sess *s, struct secure_event *ev)
{
	ev->sess = s;
	ev->conv = s->conv;
	if (s->io.event)
		s->io.event(s->io.ctx, ev);
}

static uint64_t unix_now(const struct secure_sess *s, uint32_t now)
{
	return s->unix_ms + (uint64_t)(int64_t)(int32_t)(now - s->unix_at_ms);
}

static struct secure_sess *sess_alloc(struct secure_ctx *c, uint32_t now, const struct secure_io *io)
{
	struct secure_sess *s;
	size_t size = (sizeof(*s) + 4095) & ~(size_t)4095;

	if (c->stats.sessions >= c->cfg.max_sessions)
		return NULL;
	/* own pages, so that mlock/munlock of one session never touches another's */
	s = aligned_alloc(4096, size);
	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->locked = !sod_mlock(s, sizeof(*s));
	s->ctx = c;
	s->io = *io;
	s->born_ms = now;
	c->stats.sessions++;
	return s;
}

static struct keypair *kp_free_slot(struct secure_sess *s)
{
	for (int i = 0; i < 3; i++)
		if (!s->kp[i].live)
			return &s->kp[i];
	return NULL;
}

static void kp_erase(struct secure_sess *s, struct keypair *kp)
{
	if (!kp || !kp->live)
		return;
	idx_remove(s->ctx, kp->local_index, s);
	sod_memzero(kp, sizeof(*kp));
}

/* Installs a keypair from two 32-byte direction keys (k_i2r, k_r2i) by the original roles. */
static struct keypair *kp_install(struct secure_sess *s, uint32_t local, uint32_t remote, uint32_t epoch,
				  const uint8_t *k_i2r, const uint8_t *k_r2i, uint32_t now)
{
	struct keypair *kp;

	assert(s->have_kp);
	kp = kp_free_slot(s);
	assert(kp);
	memset(kp, 0, sizeof(*kp));
	kp->live = true;
	kp->local_index = local;
	kp->remote_index = remote;
	kp->epoch = epoch;
	kp->born_ms = now;
	memcpy(kp->send_key, s->initiator ? k_i2r : k_r2i, 32);
	memcpy(kp->recv_key, s->initiator ? k_r2i : k_i2r, 32);
	secure_replay_init(&kp->rx);
	return kp;
}

static void attempt_erase(struct secure_sess *s, struct attempt *a, bool keep_index)
{
	if (!a->live)
		return;
	if (!keep_index)
		idx_remove(s->ctx, a->index, s);
	sod_memzero(a, sizeof(*a));
}

static void attempts_erase(struct secure_sess *s, uint32_t keep_index)
{
	for (int i = 0; i < ATTEMPT_SLOTS; i++)
		attempt_erase(s, &s->att[i], s->att[i].index == keep_index);
}

static void rekey_pending_erase(struct secure_sess *s)
{
	if (!s->rk_pending)
		return;
	idx_remove(s->ctx, s->a_index, s);
	sod_memzero(s->a_priv, sizeof(s->a_priv));
	sod_memzero(s->a_pub, sizeof(s->a_pub));
	s->a_index = 0;
	s->rk_pending = false;
}

static void half_open_done(struct secure_sess *s)
{
	if (s->counted_half_open) {
		s->counted_half_open = false;
		s->ctx->stats.half_open--;
	}
}

/* Erases every key, keeps the indices registered (late packets find a closed session). */
static void keys_erase(struct secure_sess *s)
{
	if (s->have_kp) {
		for (int i = 0; i < 3; i++) {
			if (s->kp[i].live) {
				uint32_t index = s->kp[i].local_index;

				sod_memzero(&s->kp[i], sizeof(s->kp[i]));
				s->kp[i].local_index = index;	/* for secure_sess_free */
			}
		}
	} else {
		for (int i = 0; i < ATTEMPT_SLOTS; i++) {
			sod_memzero(s->att[i].e_priv, sizeof(s->att[i].e_priv));
			sod_memzero(&s->att[i].ns, sizeof(s->att[i].ns));
		}
	}
	s->prev = s->cur = s->next = NULL;
	sod_memzero(s->rk, sizeof(s->rk));
	sod_memzero(s->next_rk, sizeof(s->next_rk));
	rekey_pending_erase(s);
	sod_memzero(s->ack_plain, sizeof(s->ack_plain));
	s->ack_valid = false;
	s->prev_erase_armed = s->prev_await_rx = false;
}

/* Seals plain into a DATA/CONTROL packet under kp; out gets n + 32 bytes. */
static size_t packet_seal(struct keypair *kp, uint8_t type, const uint8_t *plain, size_t n, uint8_t *out)
{
	uint64_t ctr = kp->send_ctr++;

	/* a (key, nonce) pair is never used twice: the counter only grows, and stops short of the top */
	assert(ctr < REJECT_AFTER_PACKETS);
	out[0] = type;
	out[1] = out[2] = out[3] = 0;
	put32(out + 4, kp->remote_index);
	put64(out + 8, ctr);
	sod_aead_seal(out + SECURE_HDR_BYTES, plain, n, out, SECURE_HDR_BYTES, ctr, kp->send_key);
	return n + SECURE_OVERHEAD;
}

static bool kp_can_send(const struct secure_sess *s, const struct keypair *kp, uint32_t now)
{
	return kp && kp->send_ctr < REJECT_AFTER_PACKETS && now - kp->born_ms < s->ctx->reject_time_ms;
}

static void send_sealed(struct secure_sess *s, struct keypair *kp, uint8_t type, const uint8_t *plain, size_t n)
{
	uint8_t pkt[SECURE_OVERHEAD + CONTROL_MAX_PLAIN];

	assert(n <= CONTROL_MAX_PLAIN);
	s->io.send(s->io.ctx, pkt, packet_seal(kp, type, plain, n, pkt));
}

/* CLOSE is sent even under a key past its age limit: one last packet, the counter allows it. */
static void send_close(struct secure_sess *s, uint8_t reason)
{
	uint8_t plain[SECURE_CLOSE_BYTES] = { SECURE_C_CLOSE, reason };

	if (s->state != SECURE_ESTABLISHED || !s->cur || s->cur->send_ctr >= REJECT_AFTER_PACKETS)
		return;
	send_sealed(s, s->cur, SECURE_T_CONTROL, plain, sizeof(plain));
	STAT(s->ctx, closes_sent);
}

static void sess_closed(struct secure_sess *s, int reason, bool by_peer)
{
	struct secure_event ev = { .type = SECURE_EV_CLOSED, .reason = reason, .by_peer = by_peer };

	s->state = SECURE_CLOSED;
	half_open_done(s);
	keys_erase(s);
	emit(s, &ev);
}

/* §3.7.7: the hard limits, with no newer keypair to move to. */
static void hard_close(struct secure_sess *s)
{
	send_close(s, SECURE_CLOSE_REKEY_FAILED);
	sess_closed(s, SECURE_CLOSE_REKEY_FAILED, false);
}

static void epoch_switch_event(struct secure_sess *s, uint32_t from, uint32_t to)
{
	struct secure_event ev = { .type = SECURE_EV_EPOCH_SWITCH, .epoch = from, .epoch_to = to };

	STAT(s->ctx, rekeys);
	emit(s, &ev);
}

/* ---- initiator handshake (§3.4) ---- */

/*
 * Attempts fill the slots in the order they were sent, so slot 0 holds the oldest live one;
 * when every slot is live the oldest gives way.
 */
static void attempts_compact(struct secure_sess *s)
{
	struct attempt tmp[ATTEMPT_SLOTS];
	int n = 0;

	for (int i = 0; i < ATTEMPT_SLOTS; i++)
		if (s->att[i].live)
			tmp[n++] = s->att[i];
	memset(s->att, 0, sizeof(s->att));
	memcpy(s->att, tmp, (size_t)n * sizeof(tmp[0]));
	sod_memzero(tmp, sizeof(tmp));
}

static struct attempt *attempt_slot(struct secure_sess *s)
{
	int i;

	attempts_compact(s);
	if (s->att[ATTEMPT_SLOTS - 1].live) {
		attempt_erase(s, &s->att[0], false);
		attempts_compact(s);
	}
	for (i = 0; s->att[i].live; i++)
		;
	return &s->att[i];
}

/* Builds and sends one msg 1 with a fresh ephemeral and index (§3.3 type 1). NULL: no index. */
static struct attempt *attempt_new(struct secure_sess *s, uint32_t now)
{
	struct secure_ctx *c = s->ctx;
	struct attempt *a = attempt_slot(s);
	uint8_t pkt[SECURE_INIT_BYTES], pl[PAYLOAD1_BYTES] = { 0 };
	uint32_t index = idx_alloc(c, s);

	if (!index)
		return NULL;
	a->live = true;
	a->index = index;
	sod_random(a->e_priv, sizeof(a->e_priv));

	pkt[0] = SECURE_T_INIT;
	pkt[1] = pkt[2] = pkt[3] = 0;
	put32(pkt + 4, index);
	sod_x25519_pub(pkt + 8, a->e_priv);

	a->ns = c->pre;
	secure_noise_mix_hash(&a->ns, pkt + 8, 32);
	secure_noise_mix_key(&a->ns, pkt + 8, 32);
	pl[0] = VERSION;
	pl[1] = c->cfg.flags & SECURE_F_KNOWN;
	put32(pl + 4, index);
	put32(pl + 8, s->conv);
	put64(pl + 12, unix_now(s, now));
	put16(pl + 20, c->cfg.max_datagram);
	secure_noise_encrypt_and_hash(&a->ns, pl, sizeof(pl), pkt + 40);
	memcpy(a->tag, pkt + MSG1_TAG_OFF, sizeof(a->tag));

	if (s->has_cookie && now - s->cookie_ms < COOKIE_KEEP_MS)
		mac2_make(s->cookie, pkt, pkt + MAC2_OFF);
	else
		memset(pkt + MAC2_OFF, 0, 16);
	s->io.send(s->io.ctx, pkt, sizeof(pkt));
	return a;
}

struct secure_sess *secure_initiator_new(struct secure_ctx *c, uint32_t conv, uint32_t now_ms,
					  uint64_t unix_ms, const struct secure_io *io)
{
	struct secure_sess *s = sess_alloc(c, now_ms, io);
	uint8_t b[4];

	if (!s)
		return NULL;
	s->initiator = true;
	s->state = SECURE_HANDSHAKE;
	s->unix_ms = unix_ms;
	s->unix_at_ms = now_ms;
	while (!conv) {
		sod_random(b, sizeof(b));
		conv = get32(b);
	}
	s->conv = conv;
	s->max_datagram = c->cfg.max_datagram;
	if (!attempt_new(s, now_ms)) {
		secure_sess_free(s);
		return NULL;
	}
	s->attempts = 1;
	s->retry_wait_ms = HANDSHAKE_RETRY_MS;
	s->retry_at_ms = now_ms + HANDSHAKE_RETRY_MS;
	return s;
}

static struct attempt *attempt_find(struct secure_sess *s, uint32_t index)
{
	for (int i = 0; i < ATTEMPT_SLOTS; i++)
		if (s->att[i].live && s->att[i].index == index)
			return &s->att[i];
	return NULL;
}

static void handshake_tick(struct secure_sess *s, uint32_t now)
{
	struct secure_event ev = { .type = SECURE_EV_HANDSHAKE_FAILED, .reason = SECURE_HS_NO_REPLY };

	if (s->has_cookie && now - s->cookie_ms >= COOKIE_KEEP_MS) {
		sod_memzero(s->cookie, sizeof(s->cookie));
		s->has_cookie = false;
	}
	if (!reached(now, s->retry_at_ms))
		return;
	if (s->attempts < HANDSHAKE_ATTEMPTS) {
		attempt_new(s, now);
		s->attempts++;
		if (s->attempts < HANDSHAKE_ATTEMPTS) {
			s->retry_wait_ms *= 2;
			s->retry_at_ms = now + s->retry_wait_ms;
		} else {
			s->retry_at_ms = now + HANDSHAKE_LAST_WAIT_MS;
		}
		return;
	}
	s->state = SECURE_FAILED;
	attempts_erase(s, 0);
	STAT(s->ctx, handshakes_failed);
	ev.attempts = s->attempts;
	emit(s, &ev);
}

/* §3.4 initiator step 3 */
static int cookie_reply_open(struct secure_sess *s, uint32_t now, const uint8_t *p)
{
	struct secure_ctx *c = s->ctx;
	struct attempt *a = attempt_find(s, get32(p + 4));
	uint8_t cookie[COOKIE_BYTES];

	if (!a) {
		STAT(c, unknown_index);
		return -ENOENT;
	}
	if (a->cookie_answered) {
		STAT(c, not_ready);
		return -EALREADY;
	}
	if (sod_xaead_open(cookie, p + 32, COOKIE_BYTES + SECURE_TAG_BYTES, a->tag, sizeof(a->tag), p + 8,
			   c->cookie_key)) {
		STAT(c, cookie_auth_fail);
		return -EBADMSG;
	}
	memcpy(s->cookie, cookie, sizeof(cookie));
	sod_memzero(cookie, sizeof(cookie));
	s->has_cookie = true;
	s->cookie_ms = now;
	a->cookie_answered = true;
	/* resend at once with mac2; the retry schedule stays as it was. A cookie for the
	 * resent attempt is not answered again, so cookies never cause a loop. */
	a = attempt_new(s, now);
	if (a)
		a->cookie_answered = true;
	return 0;
}

/* §3.4 initiator step 4 */
static int resp_open(struct secure_sess *s, uint32_t now, const uint8_t *p)
{
	struct secure_ctx *c = s->ctx;
	struct attempt *a = attempt_find(s, get32(p + 8));
	struct secure_noise ns;
	uint8_t dh[32], pl[PAYLOAD2_BYTES], k_i2r[SOD_HASH_BYTES], k_r2i[SOD_HASH_BYTES];
	struct secure_event ev = { .type = SECURE_EV_HANDSHAKE_OK };
	uint32_t index;
	uint16_t mtu;
	int err = 0;

	if (!a) {
		STAT(c, unknown_index);
		return -ENOENT;
	}
	ns = a->ns;
	secure_noise_mix_hash(&ns, p + 12, 32);
	secure_noise_mix_key(&ns, p + 12, 32);
	if (sod_x25519(dh, a->e_priv, p + 12)) {
		STAT(c, hs_low_order);
		err = -EINVAL;
		goto out;
	}
	secure_noise_mix_key(&ns, dh, sizeof(dh));
	if (secure_noise_decrypt_and_hash(&ns, p + 44, PAYLOAD2_BYTES + SECURE_TAG_BYTES, pl)) {
		STAT(c, resp_auth_fail);
		err = -EBADMSG;
		goto out;
	}
	mtu = get16(pl + 12);
	if (pl[0] != VERSION || memcmp(pl + 4, p + 4, 4) || get32(pl + 8) != s->conv ||
	    (pl[1] & ~(c->cfg.flags & SECURE_F_KNOWN)) || mtu < SECURE_MIN_DATAGRAM || !get32(p + 4)) {
		STAT(c, resp_mismatch);
		err = -EPROTO;
		goto out;
	}

	/* §3.5: (t1, t2, t3) = HKDF(ck, "", 3) */
	sod_hkdf(ns.ck, sizeof(ns.ck), NULL, 0, k_i2r, k_r2i, s->rk);
	/* the attempts give their memory to the keypairs; the winner's index stays registered */
	index = a->index;
	attempts_erase(s, index);
	memset(s->att, 0, sizeof(s->att));
	s->have_kp = true;
	s->cur = kp_install(s, index, get32(p + 4), 0, k_i2r, k_r2i, now);
	s->flags = pl[1];
	if (mtu < s->max_datagram)
		s->max_datagram = mtu;
	for (int i = 0; i < 8; i++)
		s->channel_id = s->channel_id << 8 | ns.h[i];
	s->state = SECURE_ESTABLISHED;
	STAT(c, handshakes_ok);
	ev.channel_id = s->channel_id;
	emit(s, &ev);
	/* key confirmation for R (and it lets R's half-open session become established) */
	if (s->state == SECURE_ESTABLISHED)
		send_sealed(s, s->cur, SECURE_T_DATA, NULL, 0);
out:
	sod_memzero(&ns, sizeof(ns));
	sod_memzero(dh, sizeof(dh));
	sod_memzero(k_i2r, sizeof(k_i2r));
	sod_memzero(k_r2i, sizeof(k_r2i));
	sod_memzero(pl, sizeof(pl));
	return err;
}

/* ---- responder handshake (§3.4) ---- */

static void auth_event(struct secure_ctx *c, const struct secure_io *io, struct secure_event *ev,
		       const struct sockaddr *src, socklen_t srclen)
{
	ev->src = src;
	ev->srclen = srclen;
	if (io->event)
		io->event(io->ctx, ev);
}

static bool under_load(struct secure_ctx *c, uint32_t now)
{
	bool load = (uint64_t)c->stats.half_open * 2 > c->cfg.max_half_open;

	/* the global bucket must be drawn from on every msg 1, loaded or not */
	if (!bucket_take(&c->hs_global, now, HS_RATE_GLOBAL, HS_BURST_GLOBAL))
		load = true;
	if (c->rc_count == c->rc_cap)
		load = true;
	return load;
}

/* Steps 5: the half-open session and msg 2. ns is the state after msg 1; pl its payload. */
static struct secure_sess *responder_session(struct secure_ctx *c, struct secure_noise *ns, const uint8_t *msg1,
					     const uint8_t *pl, uint32_t now, const struct secure_io *io)
{
	struct secure_sess *s;
	uint8_t pkt[SECURE_RESP_BYTES], e_priv[32], dh[32], p2[PAYLOAD2_BYTES] = { 0 };
	uint8_t k_i2r[SOD_HASH_BYTES], k_r2i[SOD_HASH_BYTES];
	uint32_t index;
	uint16_t mtu = get16(pl + 20);

	if (c->stats.half_open >= c->cfg.max_half_open) {
		STAT(c, hs_half_open_full);
		return NULL;
	}
	s = sess_alloc(c, now, io);
	if (!s) {
		STAT(c, hs_sessions_full);
		return NULL;
	}
	index = idx_alloc(c, s);
	if (!index) {
		STAT(c, hs_sessions_full);
		secure_sess_free(s);
		return NULL;
	}
	sod_random(e_priv, sizeof(e_priv));
	pkt[0] = SECURE_T_RESP;
	pkt[1] = pkt[2] = pkt[3] = 0;
	put32(pkt + 4, index);
	memcpy(pkt + 8, msg1 + 4, 4);
	sod_x25519_pub(pkt + 12, e_priv);
	secure_noise_mix_hash(ns, pkt + 12, 32);
	secure_noise_mix_key(ns, pkt + 12, 32);
	if (sod_x25519(dh, e_priv, msg1 + 8)) {
		STAT(c, hs_low_order);
		idx_remove(c, index, s);
		secure_sess_free(s);
		s = NULL;
		goto out;
	}
	secure_noise_mix_key(ns, dh, sizeof(dh));
	p2[0] = VERSION;
	p2[1] = pl[1] & c->cfg.flags & SECURE_F_KNOWN;
	put32(p2 + 4, index);
	memcpy(p2 + 8, pl + 8, 4);
	put16(p2 + 12, c->cfg.max_datagram);
	secure_noise_encrypt_and_hash(ns, p2, sizeof(p2), pkt + 44);

	s->state = SECURE_HALF_OPEN;
	s->have_kp = true;
	s->conv = get32(pl + 8);
	s->flags = p2[1];
	s->max_datagram = mtu < c->cfg.max_datagram ? mtu : c->cfg.max_datagram;
	sod_hkdf(ns->ck, sizeof(ns->ck), NULL, 0, k_i2r, k_r2i, s->rk);
	s->cur = kp_install(s, index, get32(msg1 + 4), 0, k_i2r, k_r2i, now);
	for (int i = 0; i < 8; i++)
		s->channel_id = s->channel_id << 8 | ns->h[i];
	s->counted_half_open = true;
	c->stats.half_open++;
	STAT(c, msg2_sent);
	c->stats.hs_bytes_out += sizeof(pkt);
	io->send(io->ctx, pkt, sizeof(pkt));
out:
	sod_memzero(e_priv, sizeof(e_priv));
	sod_memzero(dh, sizeof(dh));
	sod_memzero(k_i2r, sizeof(k_i2r));
	sod_memzero(k_r2i, sizeof(k_r2i));
	return s;
}

struct secure_sess *secure_responder_accept(struct secure_ctx *c, const uint8_t *pkt, size_t n,
					     const struct sockaddr *src, socklen_t srclen, uint32_t now_ms,
					     uint64_t unix_ms, const struct secure_io *io)
{
	struct secure_noise ns;
	struct secure_event ev = { .type = SECURE_EV_AUTH_REJECT };
	struct secure_sess *s = NULL;
	uint8_t sb[18], pl[PAYLOAD1_BYTES], ehash[16];
	size_t sn = src_bytes(src, srclen, sb);
	bool load, mac2_ok = true;
	int64_t skew;

	if (!c->cfg.responder) {
		STAT(c, bad_type);
		return NULL;
	}
	c->stats.hs_bytes_in += n;
	/* step 1 */
	if (n != SECURE_INIT_BYTES) {
		STAT(c, bad_len);
		return NULL;
	}
	if (pkt[0] != SECURE_T_INIT) {
		STAT(c, bad_type);
		return NULL;
	}
	if (pkt[1] | pkt[2] | pkt[3]) {
		STAT(c, reserved);
		return NULL;
	}
	if (!src_take(c, sb, sn, now_ms)) {
		STAT(c, hs_rate);
		return NULL;
	}
	/* step 2: decide, check mac2 later (only a PSK holder's fresh msg 1 gets a cookie) */
	rc_expire(c, now_ms);
	load = under_load(c, now_ms);
	if (load) {
		cookie_rotate(c, now_ms);
		mac2_ok = mac2_valid(c, sb, sn, pkt);
	}
	/* step 3 */
	ns = c->pre;
	secure_noise_mix_hash(&ns, pkt + 8, 32);
	secure_noise_mix_key(&ns, pkt + 8, 32);
	if (secure_noise_decrypt_and_hash(&ns, pkt + 40, PAYLOAD1_BYTES + SECURE_TAG_BYTES, pl)) {
		STAT(c, hs_auth_fail);
		ev.type = SECURE_EV_AUTH_FAIL;
		auth_event(c, io, &ev, src, srclen);
		goto out;
	}
	/* step 4 */
	if (pl[0] != VERSION) {
		STAT(c, hs_version);
		goto out;
	}
	if (memcmp(pl + 4, pkt + 4, 4) || !get32(pkt + 4)) {
		STAT(c, hs_index_mismatch);
		goto out;
	}
	if (get16(pl + 20) < SECURE_MIN_DATAGRAM) {
		STAT(c, hs_bad_mtu);
		goto out;
	}
	skew = (int64_t)(unix_ms - get64(pl + 12));
	if (c->cfg.max_skew_s && (skew > (int64_t)c->cfg.max_skew_s * 1000 || skew < -(int64_t)c->cfg.max_skew_s * 1000)) {
		STAT(c, hs_skew);
		ev.skew_ms = skew;
		auth_event(c, io, &ev, src, srclen);
		goto out;
	}
	sod_blake2b(ehash, sizeof(ehash), NULL, 0, pkt + 8, 32);
	if (rc_contains(c, ehash)) {
		STAT(c, hs_replay);
		ev.skew_ms = skew;
		ev.replay = true;
		auth_event(c, io, &ev, src, srclen);
		goto out;
	}
	if (!mac2_ok) {
		if (bucket_take(&c->cookie_global, now_ms, COOKIE_RATE_GLOBAL, COOKIE_BURST_GLOBAL)) {
			STAT(c, hs_cookie_required);
			cookie_reply_send(c, pkt, sb, sn, io);
		} else {
			STAT(c, hs_cookie_rate);
		}
		goto out;
	}
	rc_insert(c, ehash, now_ms);
	/* step 5 */
	s = responder_session(c, &ns, pkt, pl, now_ms, io);
	if (s) {
		s->unix_ms = unix_ms;
		s->unix_at_ms = now_ms;
	}
out:
	sod_memzero(&ns, sizeof(ns));
	sod_memzero(pl, sizeof(pl));
	return s;
}

struct secure_sess *secure_ctx_lookup(struct secure_ctx *c, const uint8_t *p, size_t n)
{
	struct idx_slot *slot;
	uint32_t index;

	if (n < 8) {
		STAT(c, bad_len);
		return NULL;
	}
	switch (p[0]) {
	case SECURE_T_RESP:
		if (n < 12) {
			STAT(c, bad_len);
			return NULL;
		}
		index = get32(p + 8);
		break;
	case SECURE_T_COOKIE:
	case SECURE_T_DATA:
	case SECURE_T_CONTROL:
		index = get32(p + 4);
		break;
	default:
		STAT(c, bad_type);
		return NULL;
	}
	slot = idx_find(c, index);
	if (!slot) {
		STAT(c, unknown_index);
		return NULL;
	}
	return slot->sess;
}

/* ---- rekey (§3.7) ---- */

static void rekey_send_init(struct secure_sess *s)
{
	uint8_t plain[SECURE_REKEY_INIT_BYTES] = { SECURE_C_REKEY_INIT };

	put32(plain + 4, s->a_index);
	memcpy(plain + 8, s->a_pub, 32);
	send_sealed(s, s->cur, SECURE_T_CONTROL, plain, sizeof(plain));
}

static void rekey_start(struct secure_sess *s, uint32_t now, int reason)
{
	struct secure_event ev = { .type = SECURE_EV_REKEY_START, .reason = reason };

	s->a_index = idx_alloc(s->ctx, s);
	if (!s->a_index)
		return;		/* the index map is full: try again on the next trigger */
	sod_random(s->a_priv, sizeof(s->a_priv));
	sod_x25519_pub(s->a_pub, s->a_priv);
	s->rk_pending = true;
	s->rk_reason = reason;
	s->rk_wait_ms = REKEY_RETRY_MS;
	s->rk_retry_ms = now + REKEY_RETRY_MS;
	ev.epoch = s->cur->epoch + 1;
	emit(s, &ev);
	if (s->state == SECURE_ESTABLISHED)	/* the callback may have closed it */
		rekey_send_init(s);
}

static uint32_t rekey_due_ms(const struct secure_sess *s)
{
	return s->cur->born_ms + s->ctx->cfg.rekey_time_ms + (s->initiator ? 0 : RESPONDER_REKEY_DELAY_MS);
}

/* §3.7 triggers: time (I; R 10 s later) or count (either side); one rekey at a time. */
static void rekey_maybe(struct secure_sess *s, uint32_t now)
{
	if (s->state != SECURE_ESTABLISHED || s->rk_pending || s->next || !s->cur)
		return;
	if (s->cur->send_ctr >= s->ctx->cfg.rekey_packets)
		rekey_start(s, now, SECURE_REKEY_PACKETS);
	else if (reached(now, rekey_due_ms(s)))
		rekey_start(s, now, SECURE_REKEY_TIME);
}

/* (rk', k_i2r', k_r2i') = HKDF(rk, dh ‖ A.e ‖ B.e, 3) */
static void rekey_derive(const uint8_t rk[SOD_HASH_BYTES], const uint8_t dh[32], const uint8_t a_pub[32],
			 const uint8_t b_pub[32], uint8_t rk_out[SOD_HASH_BYTES], uint8_t u1[SOD_HASH_BYTES],
			 uint8_t u2[SOD_HASH_BYTES])
{
	uint8_t ikm[96];

	memcpy(ikm, dh, 32);
	memcpy(ikm + 32, a_pub, 32);
	memcpy(ikm + 64, b_pub, 32);
	sod_hkdf(rk, SOD_HASH_BYTES, ikm, sizeof(ikm), rk_out, u1, u2);
	sod_memzero(ikm, sizeof(ikm));
}

/* B on REKEY_INIT (§3.7 steps 2 and 6) */
static int rekey_init_recv(struct secure_sess *s, struct keypair *kp, const uint8_t *pl, uint32_t now)
{
	struct secure_ctx *c = s->ctx;
	struct secure_event ev = { .type = SECURE_EV_RECV_REKEY_INIT };
	uint32_t a_index = get32(pl + 4);
	const uint8_t *a_pub = pl + 8;
	uint8_t b_priv[32], b_pub[32], dh[32], u1[SOD_HASH_BYTES], u2[SOD_HASH_BYTES];
	uint32_t b_index;
	int err = 0;

	if (kp != s->cur) {
		STAT(c, rekey_stale);
		return -ESTALE;
	}
	if (s->rk_pending) {
		/* collision: the original initiator's INIT wins */
		STAT(c, rekey_collision);
		if (s->initiator)
			return 0;
		rekey_pending_erase(s);
	}
	if (s->ack_valid && s->next && s->ack_init_index == a_index && sod_equal(s->ack_init_e, a_pub, 32)) {
		send_sealed(s, s->cur, SECURE_T_CONTROL, s->ack_plain, sizeof(s->ack_plain));
		return 0;
	}
	b_index = idx_alloc(c, s);
	if (!b_index) {
		STAT(c, index_full);
		return -ENOSPC;	/* A retries */
	}
	sod_random(b_priv, sizeof(b_priv));
	sod_x25519_pub(b_pub, b_priv);
	if (sod_x25519(dh, b_priv, a_pub)) {
		STAT(c, rekey_low_order);
		idx_remove(c, b_index, s);
		err = -EINVAL;
		goto out;
	}
	/* a different INIT replaces an unconfirmed next (its root was never committed) */
	kp_erase(s, s->next);
	s->next = NULL;
	ev.epoch = kp->epoch + 1;
	emit(s, &ev);
	if (s->state != SECURE_ESTABLISHED) {
		idx_remove(c, b_index, s);
		goto out;
	}
	rekey_derive(s->rk, dh, a_pub, b_pub, s->next_rk, u1, u2);
	s->next = kp_install(s, b_index, a_index, kp->epoch + 1, u1, u2, now);

	memset(s->ack_plain, 0, sizeof(s->ack_plain));
	s->ack_plain[0] = SECURE_C_REKEY_ACK;
	put32(s->ack_plain + 4, b_index);
	put32(s->ack_plain + 8, a_index);
	memcpy(s->ack_plain + 12, b_pub, 32);
	s->ack_valid = true;
	s->ack_init_index = a_index;
	memcpy(s->ack_init_e, a_pub, 32);
	send_sealed(s, s->cur, SECURE_T_CONTROL, s->ack_plain, sizeof(s->ack_plain));
out:
	sod_memzero(b_priv, sizeof(b_priv));
	sod_memzero(dh, sizeof(dh));
	sod_memzero(u1, sizeof(u1));
	sod_memzero(u2, sizeof(u2));
	return err;
}

/* A on REKEY_ACK (§3.7 step 3) */
static int rekey_ack_recv(struct secure_sess *s, struct keypair *kp, const uint8_t *pl, uint32_t now)
{
	struct secure_ctx *c = s->ctx;
	struct secure_event ev = { .type = SECURE_EV_RECV_REKEY_ACK };
	uint8_t dh[32], u1[SOD_HASH_BYTES], u2[SOD_HASH_BYTES];
	uint32_t from;

	if (kp != s->cur || !s->rk_pending || get32(pl + 8) != s->a_index) {
		STAT(c, rekey_stale);
		return -ESTALE;
	}
	ev.epoch = kp->epoch + 1;
	emit(s, &ev);
	if (s->state != SECURE_ESTABLISHED)
		return 0;
	if (sod_x25519(dh, s->a_priv, pl + 12)) {
		STAT(c, rekey_low_order);
		return -EINVAL;
	}
	rekey_derive(s->rk, dh, s->a_pub, pl + 12, s->rk, u1, u2);
	from = s->cur->epoch;
	kp_erase(s, s->prev);
	s->prev = s->cur;
	s->cur = kp_install(s, s->a_index, get32(pl + 4), from + 1, u1, u2, now);
	/* the index now belongs to cur: forget it as pending without unregistering it */
	s->a_index = 0;
	s->rk_pending = false;
	sod_memzero(s->a_priv, sizeof(s->a_priv));
	sod_memzero(s->a_pub, sizeof(s->a_pub));
	sod_memzero(dh, sizeof(dh));
	sod_memzero(u1, sizeof(u1));
	sod_memzero(u2, sizeof(u2));
	s->prev_erase_armed = false;
	s->prev_await_rx = true;
	epoch_switch_event(s, from, from + 1);
	if (s->state == SECURE_ESTABLISHED)
		send_sealed(s, s->cur, SECURE_T_DATA, NULL, 0);
	return 0;
}

/* B: the first authenticated packet under next proves A switched (§3.7 step 4). */
static void next_confirm(struct secure_sess *s, uint32_t now)
{
	uint32_t from = s->cur->epoch;

	kp_erase(s, s->prev);
	s->prev = s->cur;
	s->cur = s->next;
	s->next = NULL;
	memcpy(s->rk, s->next_rk, sizeof(s->rk));
	sod_memzero(s->next_rk, sizeof(s->next_rk));
	s->ack_valid = false;
	s->prev_erase_armed = true;
	s->prev_await_rx = false;
	s->prev_erase_ms = now + PREV_KEY_GRACE_MS;
	epoch_switch_event(s, from, s->cur->epoch);
}

/* ---- DATA / CONTROL ---- */

static int control_recv(struct secure_sess *s, struct keypair *kp, const uint8_t *pl, size_t n, uint32_t now)
{
	struct secure_ctx *c = s->ctx;

	switch (pl[0]) {
	case SECURE_C_REKEY_INIT:
		if (n != SECURE_REKEY_INIT_BYTES || pl[1] | pl[2] | pl[3])
			break;
		return rekey_init_recv(s, kp, pl, now);
	case SECURE_C_REKEY_ACK:
		if (n != SECURE_REKEY_ACK_BYTES || pl[1] | pl[2] | pl[3])
			break;
		return rekey_ack_recv(s, kp, pl, now);
	case SECURE_C_CLOSE:
		if (n != SECURE_CLOSE_BYTES)
			break;
		STAT(c, closes_received);
		sess_closed(s, pl[1], true);
		return 0;
	default:
		STAT(c, unknown_ctype);
		return -EPROTO;
	}
	STAT(c, bad_control);
	return -EBADMSG;
}

/* §3.3: every segment's conv must be the session's (segments that do not fit are KCP's problem) */
static bool conv_ok(const struct secure_sess *s, const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (n - off >= KCP_OVERHEAD) {
		uint32_t len = get32(p + off + 20);

		if (kcp_peek_conv(p + off) != s->conv)
			return false;
		if (len > n - off - KCP_OVERHEAD)
			break;
		off += KCP_OVERHEAD + len;
	}
	return true;
}

static struct keypair *kp_by_index(struct secure_sess *s, uint32_t index)
{
	struct keypair *order[3] = { s->cur, s->next, s->prev };

	for (int i = 0; i < 3; i++)
		if (order[i] && order[i]->local_index == index)
			return order[i];
	return NULL;
}

static int transport_open(struct secure_sess *s, uint32_t now, const uint8_t *pkt, size_t n, uint8_t *plain,
			  size_t cap, bool *highest)
{
	struct secure_ctx *c = s->ctx;
	struct keypair *kp;
	uint8_t ctl[CONTROL_MAX_PLAIN], *out;
	uint64_t ctr = get64(pkt + 8);
	size_t len = n - SECURE_OVERHEAD;
	bool top;
	int err;

	if (s->state != SECURE_ESTABLISHED && s->state != SECURE_HALF_OPEN) {
		STAT(c, not_ready);
		return -ENOTCONN;
	}
	kp = kp_by_index(s, get32(pkt + 4));
	if (!kp) {
		STAT(c, unknown_index);
		return -ENOENT;
	}
	if (now - kp->born_ms >= c->reject_time_ms || ctr >= REJECT_AFTER_PACKETS) {
		STAT(c, key_expired);
		return -EKEYEXPIRED;
	}
	err = secure_replay_check(&kp->rx, ctr);
	if (err) {
		if (err == -EALREADY)
			STAT(c, replay);
		else
			STAT(c, too_old);
		return err;
	}
	if (pkt[0] == SECURE_T_CONTROL) {
		if (len > sizeof(ctl) || !len) {
			STAT(c, bad_control);
			return -EBADMSG;
		}
		out = ctl;
	} else {
		if (len > cap) {
			STAT(c, bad_len);
			return -ENOBUFS;
		}
		out = plain;
	}
	if (sod_aead_open(out, pkt + SECURE_HDR_BYTES, n - SECURE_HDR_BYTES, pkt, SECURE_HDR_BYTES, ctr,
			  kp->recv_key)) {
		STAT(c, auth_fail);
		return -EBADMSG;
	}
	top = secure_replay_mark(&kp->rx, ctr);
	if (highest)
		*highest = top;
	kp->rx_any = true;

	/* who the packet proves something about */
	if (kp == s->next) {
		next_confirm(s, now);
	} else if (kp == s->cur && s->prev_await_rx) {
		s->prev_await_rx = false;
		s->prev_erase_armed = true;
		s->prev_erase_ms = now + PREV_KEY_GRACE_MS;
	}
	if (s->state == SECURE_HALF_OPEN && kp == s->cur) {
		struct secure_event ev = { .type = SECURE_EV_HANDSHAKE_OK, .channel_id = s->channel_id };

		s->state = SECURE_ESTABLISHED;
		half_open_done(s);
		STAT(c, handshakes_ok);
		emit(s, &ev);
	}
	if (s->state != SECURE_ESTABLISHED)	/* an event callback closed it */
		return 0;

	if (pkt[0] == SECURE_T_CONTROL) {
		err = control_recv(s, kp, ctl, len, now);
		sod_memzero(ctl, sizeof(ctl));
		return err;
	}
	if (!len)
		return 0;
	if (!conv_ok(s, plain, len)) {
		STAT(c, conv_mismatch);
		return -EPROTO;
	}
	return (int)len;
}

int secure_open(struct secure_sess *s, uint32_t now_ms, const uint8_t *pkt, size_t n, uint8_t *plain,
		size_t cap, bool *highest)
{
	struct secure_ctx *c = s->ctx;

	if (highest)
		*highest = false;
	if (secure_packet_type(pkt, n) < 0) {
		if (n && pkt[0] >= SECURE_T_INIT && pkt[0] <= SECURE_T_CONTROL)
			STAT(c, bad_len);
		else
			STAT(c, bad_type);
		return -EBADMSG;
	}
	if (pkt[1] | pkt[2] | pkt[3]) {
		STAT(c, reserved);
		return -EBADMSG;
	}
	if (n - SECURE_OVERHEAD > (size_t)INT32_MAX) {
		STAT(c, bad_len);
		return -EBADMSG;
	}
	switch (pkt[0]) {
	case SECURE_T_RESP:
	case SECURE_T_COOKIE:
		if (!s->initiator || s->state != SECURE_HANDSHAKE) {
			STAT(c, not_ready);
			return -ENOTCONN;
		}
		return pkt[0] == SECURE_T_RESP ? resp_open(s, now_ms, pkt) : cookie_reply_open(s, now_ms, pkt);
	case SECURE_T_DATA:
	case SECURE_T_CONTROL:
		return transport_open(s, now_ms, pkt, n, plain, cap, highest);
	default:
		/* msg 1 goes to secure_responder_accept, never to a session */
		STAT(c, bad_type);
		return -EBADMSG;
	}
}

int secure_seal(struct secure_sess *s, uint32_t now_ms, const uint8_t *plain, size_t n, uint8_t *out, size_t cap)
{
	if (s->state == SECURE_HANDSHAKE || s->state == SECURE_HALF_OPEN)
		return -EAGAIN;
	if (s->state != SECURE_ESTABLISHED)
		return -EPIPE;
	if (cap < SECURE_OVERHEAD || n > cap - SECURE_OVERHEAD || n > (size_t)INT32_MAX - SECURE_OVERHEAD)
		return -ENOBUFS;
	rekey_maybe(s, now_ms);
	if (s->state != SECURE_ESTABLISHED)	/* closed by an event callback */
		return -EPIPE;
	if (!kp_can_send(s, s->cur, now_ms)) {
		secure_tick(s, now_ms, unix_now(s, now_ms));
		if (s->state != SECURE_ESTABLISHED)
			return -EPIPE;
	}
	return (int)packet_seal(s->cur, SECURE_T_DATA, plain, n, out);
}

/* ---- timers ---- */

static void established_tick(struct secure_sess *s, uint32_t now)
{
	struct secure_ctx *c = s->ctx;

	/* previous keys: after the grace, and at their reject age at the latest */
	if (s->prev && ((s->prev_erase_armed && reached(now, s->prev_erase_ms)) ||
			now - s->prev->born_ms >= c->reject_time_ms)) {
		kp_erase(s, s->prev);
		s->prev = NULL;
		s->prev_erase_armed = s->prev_await_rx = false;
	}
	/* hard limits (§3.7.7): move to a newer keypair if there is one, else close */
	if (!kp_can_send(s, s->cur, now)) {
		if (!s->next) {
			hard_close(s);
			return;
		}
		kp_erase(s, s->prev);
		kp_erase(s, s->cur);
		s->prev = NULL;
		s->cur = s->next;
		s->next = NULL;
		memcpy(s->rk, s->next_rk, sizeof(s->rk));
		sod_memzero(s->next_rk, sizeof(s->next_rk));
		s->ack_valid = false;
		epoch_switch_event(s, s->cur->epoch - 1, s->cur->epoch);
	}
	if (s->rk_pending && reached(now, s->rk_retry_ms)) {
		rekey_send_init(s);
		s->rk_wait_ms = s->rk_wait_ms * 2 > REKEY_RETRY_MAX_MS ? REKEY_RETRY_MAX_MS : s->rk_wait_ms * 2;
		s->rk_retry_ms = now + s->rk_wait_ms;
	}
	rekey_maybe(s, now);
}

void secure_tick(struct secure_sess *s, uint32_t now_ms, uint64_t unix_ms)
{
	struct secure_event ev = { .type = SECURE_EV_HANDSHAKE_FAILED, .reason = SECURE_HS_HALF_OPEN_TIMEOUT };

	s->unix_ms = unix_ms;
	s->unix_at_ms = now_ms;
	switch (s->state) {
	case SECURE_HANDSHAKE:
		handshake_tick(s, now_ms);
		break;
	case SECURE_HALF_OPEN:
		if (now_ms - s->born_ms >= HALF_OPEN_TIMEOUT_MS) {
			s->state = SECURE_FAILED;
			half_open_done(s);
			keys_erase(s);
			STAT(s->ctx, handshakes_failed);
			emit(s, &ev);
		}
		break;
	case SECURE_ESTABLISHED:
		established_tick(s, now_ms);
		break;
	default:
		break;
	}
}

uint32_t secure_next_ms(const struct secure_sess *s, uint32_t now_ms)
{
	const struct secure_ctx *c = s->ctx;
	uint32_t best = now_ms + IDLE_NEXT_MS;

	switch (s->state) {
	case SECURE_HANDSHAKE:
		earliest(&best, now_ms, s->retry_at_ms);
		if (s->has_cookie)
			earliest(&best, now_ms, s->cookie_ms + COOKIE_KEEP_MS);
		break;
	case SECURE_HALF_OPEN:
		earliest(&best, now_ms, s->born_ms + HALF_OPEN_TIMEOUT_MS);
		break;
	case SECURE_ESTABLISHED:
		earliest(&best, now_ms, s->cur->born_ms + c->reject_time_ms);
		if (s->prev) {
			earliest(&best, now_ms, s->prev->born_ms + c->reject_time_ms);
			if (s->prev_erase_armed)
				earliest(&best, now_ms, s->prev_erase_ms);
		}
		if (s->rk_pending)
			earliest(&best, now_ms, s->rk_retry_ms);
		else if (!s->next)
			earliest(&best, now_ms, rekey_due_ms(s));
		break;
	default:
		break;
	}
	/* a deadline already passed is due now */
	if ((int32_t)(best - now_ms) < 0)
		best = now_ms;
	return best;
}

/* ---- accessors, close, free ---- */

enum secure_state secure_state(const struct secure_sess *s)
{
	return s->state;
}

uint32_t secure_conv(const struct secure_sess *s)
{
	return s->conv;
}

uint8_t secure_flags(const struct secure_sess *s)
{
	return s->flags;
}

uint16_t secure_max_datagram(const struct secure_sess *s)
{
	return s->max_datagram;
}

uint32_t secure_epoch(const struct secure_sess *s)
{
	return s->cur ? s->cur->epoch : 0;
}

bool secure_is_initiator(const struct secure_sess *s)
{
	return s->initiator;
}

void secure_sess_set_io(struct secure_sess *s, const struct secure_io *io)
{
	s->io = *io;
}

void secure_sess_set_user(struct secure_sess *s, void *user)
{
	s->user = user;
}

void *secure_sess_user(const struct secure_sess *s)
{
	return s->user;
}

void secure_close(struct secure_sess *s, int reason)
{
	if (s->state == SECURE_CLOSED || s->state == SECURE_FAILED)
		return;
	send_close(s, (uint8_t)reason);
	s->state = SECURE_CLOSED;
	half_open_done(s);
	keys_erase(s);
}

void secure_sess_free(struct secure_sess *s)
{
	struct secure_ctx *c;

	if (!s)
		return;
	c = s->ctx;
	half_open_done(s);
	if (s->have_kp) {
		for (int i = 0; i < 3; i++)
			if (s->kp[i].local_index)
				idx_remove(c, s->kp[i].local_index, s);
	} else {
		for (int i = 0; i < ATTEMPT_SLOTS; i++)
			if (s->att[i].live)
				idx_remove(c, s->att[i].index, s);
	}
	if (s->rk_pending)
		idx_remove(c, s->a_index, s);
	c->stats.sessions--;
	if (s->locked)
		sod_munlock(s, sizeof(*s));
	else
		sod_memzero(s, sizeof(*s));
	free(s);
}

void secure_test_set_send_counter(struct secure_sess *s, uint64_t ctr)
{
	if (s->cur)
		s->cur->send_ctr = ctr;
}

/* ---- PSK (§3.10) ---- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

int secure_psk_parse(const char *text, uint8_t psk[SECURE_PSK_BYTES])
{
	uint8_t key[SECURE_PSK_BYTES];
	const char *p = text;
	int err = -EINVAL;

	while (is_space(*p))
		p++;
	for (int i = 0; i < SECURE_PSK_BYTES; i++) {
		int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);

		if (hi < 0 || lo < 0)
			goto out;
		key[i] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	while (is_space(*p))
		p++;
	if (*p || all_zero(key, sizeof(key)))
		goto out;
	memcpy(psk, key, sizeof(key));
	err = 0;
out:
	sod_memzero(key, sizeof(key));
	return err;
}

void secure_psk_fingerprint(const uint8_t psk[SECURE_PSK_BYTES], char out[17])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t h[32];

	sod_blake2b(h, sizeof(h), psk, SECURE_PSK_BYTES, FINGERPRINT_LABEL, strlen(FINGERPRINT_LABEL));
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[16] = '\0';
}
