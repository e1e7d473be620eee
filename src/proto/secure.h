/*
 * ferry secure mode (spec/kcp.md §3): Noise NNpsk0 handshake, key schedule, DATA/CONTROL
 * packets, replay window, rekey by time and by count, cookies under load. A sans-I/O core:
 * bytes and timestamps in, bytes (through secure_io.send) and events out. No sockets, no
 * clock reads, no allocation per packet (contexts and sessions are allocated when created).
 * All cryptography goes through crypto/sodium.h.
 *
 * One struct secure_ctx per rule per worker thread (not thread-safe); one struct
 * secure_sess per peer. The caller (transport/kcp.c) routes datagrams:
 *
 *   type = secure_packet_type(p, n)
 *   type 1 (responder): s = secure_responder_accept(ctx, p, n, src, ...)   new half-open session
 *   types 2..5:         s = secure_ctx_lookup(ctx, p, n); secure_open(s, ...)
 *
 * and calls secure_tick() when secure_next_ms() says so. Every rejected packet is a silent
 * drop counted under one reason in struct secure_stats; nothing is ever sent in answer to a
 * packet that did not authenticate (§3.9).
 *
 * Events are reported synchronously from inside the call that caused them; the event
 * callback may secure_close() the session but must not free it (defer that: check
 * secure_state() after the call).
 */
#ifndef FERRY_PROTO_SECURE_H
#define FERRY_PROTO_SECURE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- wire sizes (§3.3) ---- */

#define SECURE_HDR_BYTES 16		/* DATA/CONTROL header: type, 0(3), receiver index, counter */
#define SECURE_TAG_BYTES 16
#define SECURE_OVERHEAD 32		/* DATA header 16 + tag 16: KCP mtu = --mtu - 32 */
#define SECURE_INIT_BYTES 136
#define SECURE_RESP_BYTES 76
#define SECURE_COOKIE_BYTES 64
#define SECURE_REKEY_INIT_BYTES 40	/* CONTROL plaintexts */
#define SECURE_REKEY_ACK_BYTES 44
#define SECURE_CLOSE_BYTES 2
#define SECURE_PSK_BYTES 32
#define SECURE_MIN_DATAGRAM 128		/* smallest max_datagram a peer may announce */

#define SECURE_F_HALF_CLOSE 1
#define SECURE_F_SMUX_V2 2
#define SECURE_F_KNOWN (SECURE_F_HALF_CLOSE | SECURE_F_SMUX_V2)

enum secure_type { SECURE_T_INIT = 1, SECURE_T_RESP, SECURE_T_COOKIE, SECURE_T_DATA, SECURE_T_CONTROL };
enum secure_ctype { SECURE_C_REKEY_INIT = 1, SECURE_C_REKEY_ACK, SECURE_C_CLOSE };
/* CLOSE reasons on the wire (§3.3) */
enum secure_close_reason {
	SECURE_CLOSE_NORMAL = 0,
	SECURE_CLOSE_LIMIT = 1,
	SECURE_CLOSE_SHUTDOWN = 2,
	SECURE_CLOSE_REKEY_FAILED = 3,
};

/* ---- configuration ---- */

struct secure_cfg {
	uint8_t psk[SECURE_PSK_BYTES];
	uint32_t max_skew_s;		/* 300; 0 = no time check */
	uint32_t rekey_time_ms;		/* 120000; reject = rekey + 60 s */
	uint64_t rekey_packets;		/* 2^60 */
	uint8_t flags;			/* offered (initiator) / acceptable (responder) */
	uint16_t max_datagram;		/* --mtu */
	uint32_t max_half_open, max_sessions;
	uint8_t worker_id;		/* top 8 bits of indices */
	bool responder;			/* allocate the responder tables (replay cache, buckets) */
	uint32_t hs_rate_per_s;		/* per-source msg 1 rate, 10; 0 = no limit (portfwd -L) */
	uint32_t hs_burst;		/* per-source burst, 20 */
	uint32_t replay_cache_entries;	/* msg 1 replay cache size, 65536 */
};

/* Fills cfg with the defaults of §3.8 (psk zero: the caller must set it). */
void secure_cfg_default(struct secure_cfg *cfg);

/* ---- counters: one per reason a remote peer's bytes are rejected, plus outcomes ---- */

struct secure_stats {
	/* any packet */
	uint64_t bad_len;		/* length wrong for the type (or shorter than a header) */
	uint64_t bad_type;		/* first byte not 1..5, or a type this side never receives */
	uint64_t reserved;		/* bytes 1..3 not zero */
	uint64_t unknown_index;		/* receiver index of no live keypair or attempt */
	/* DATA / CONTROL */
	uint64_t replay;		/* counter already seen */
	uint64_t too_old;		/* counter below the replay window */
	uint64_t auth_fail;		/* AEAD open failed */
	uint64_t key_expired;		/* keypair older than REJECT_AFTER_TIME, or counter limit */
	uint64_t conv_mismatch;		/* a decrypted KCP segment of another conv */
	uint64_t unknown_ctype;
	uint64_t bad_control;		/* known ctype, wrong length or reserved bytes */
	uint64_t not_ready;		/* packet for a session that cannot take it (state, role) */
	/* msg 1 at the responder (§3.4 order) */
	uint64_t hs_rate;		/* per-source token bucket empty */
	uint64_t hs_auth_fail;		/* payload1 did not decrypt: wrong PSK or corrupted */
	uint64_t hs_version;
	uint64_t hs_index_mismatch;	/* cleartext index copy differs */
	uint64_t hs_bad_mtu;		/* max_datagram below SECURE_MIN_DATAGRAM */
	uint64_t hs_skew;
	uint64_t hs_replay;		/* ephemeral already seen */
	uint64_t hs_cookie_required;	/* under load without a valid mac2: COOKIE_REPLY sent */
	uint64_t hs_cookie_rate;	/* ... and no COOKIE_REPLY either (global cookie rate) */
	uint64_t hs_half_open_full;
	uint64_t hs_sessions_full;
	uint64_t hs_low_order;		/* X25519 result all zero */
	/* msg 2 / COOKIE_REPLY at the initiator */
	uint64_t resp_auth_fail;
	uint64_t resp_mismatch;		/* version, index or conv echo wrong, bad mtu */
	uint64_t cookie_auth_fail;
	/* rekey */
	uint64_t rekey_stale;		/* INIT/ACK not under the current keypair, or echo mismatch */
	uint64_t rekey_collision;	/* our own INIT wins (we are the original initiator) */
	uint64_t rekey_low_order;
	uint64_t index_full;		/* no free index for a REKEY_ACK: A retries (local limit, not the peer) */
	/* outcomes */
	uint64_t handshakes_ok;
	uint64_t handshakes_failed;	/* initiator gave up, or a half-open session timed out */
	uint64_t rekeys;		/* epoch switches */
	uint64_t cookies_sent;
	uint64_t msg2_sent;
	uint64_t closes_sent, closes_received;
	uint64_t hs_bytes_in, hs_bytes_out;	/* responder: msg 1 bytes received / replies sent */
	uint64_t half_open, sessions;	/* current counts (gauges) */
};

/* ---- events ---- */

enum secure_event_type {
	SECURE_EV_HANDSHAKE_OK = 1,	/* conv, channel_id */
	SECURE_EV_HANDSHAKE_FAILED,	/* reason: SECURE_HS_*; attempts */
	SECURE_EV_REKEY_START,		/* epoch (the one being made), reason: SECURE_REKEY_* */
	SECURE_EV_RECV_REKEY_INIT,	/* epoch */
	SECURE_EV_RECV_REKEY_ACK,	/* epoch */
	SECURE_EV_EPOCH_SWITCH,		/* epoch -> epoch_to */
	SECURE_EV_CLOSED,		/* reason: wire code (enum secure_close_reason); by_peer */
	SECURE_EV_AUTH_REJECT,		/* responder: authenticated msg 1 refused; src, skew_ms, replay */
	SECURE_EV_AUTH_FAIL,		/* responder: msg 1 did not authenticate (debug); src */
};
enum secure_rekey_reason { SECURE_REKEY_TIME = 1, SECURE_REKEY_PACKETS };
enum secure_hs_fail { SECURE_HS_NO_REPLY = 1, SECURE_HS_HALF_OPEN_TIMEOUT };

struct secure_sess;

struct secure_event {
	enum secure_event_type type;
	struct secure_sess *sess;	/* NULL for AUTH_* */
	uint32_t conv;
	uint32_t epoch, epoch_to;
	int reason;
	bool by_peer;
	uint32_t attempts;
	uint64_t channel_id;		/* HANDSHAKE_OK: first 8 bytes of the final h, big-endian */
	int64_t skew_ms;		/* AUTH_REJECT: local unix ms - peer's unix ms */
	bool replay;
	const struct sockaddr *src;
	socklen_t srclen;
};

/*
 * Packets the core originates (msg 1 and its retries, msg 2, COOKIE_REPLY, REKEY_INIT/ACK,
 * CLOSE, the empty DATA key confirmation) go out through send(); events through event()
 * (may be NULL). pkt is only valid during the call.
 */
struct secure_io {
	void *ctx;
	void (*send)(void *ctx, const uint8_t *pkt, size_t n);
	void (*event)(void *ctx, const struct secure_event *ev);
};

/* ---- context ---- */

struct secure_ctx;

/* NULL without memory or with an invalid cfg (all-zero PSK, max_datagram < SECURE_MIN_DATAGRAM). */
struct secure_ctx *secure_ctx_new(const struct secure_cfg *cfg);
void secure_ctx_free(struct secure_ctx *c);
const struct secure_stats *secure_ctx_stats(const struct secure_ctx *c);

/* 1..5 for a packet whose first byte names a type and whose length fits it; -EBADMSG otherwise. */
int secure_packet_type(const uint8_t *p, size_t n);

/* ---- sessions ---- */

enum secure_state { SECURE_HANDSHAKE, SECURE_HALF_OPEN, SECURE_ESTABLISHED, SECURE_FAILED, SECURE_CLOSED };

/*
 * Initiator: allocates the session, sends msg 1 (retries from secure_tick). conv 0 = pick a
 * random non-zero conv. NULL without memory or at max_sessions.
 */
struct secure_sess *secure_initiator_new(struct secure_ctx *c, uint32_t conv, uint32_t now_ms,
					  uint64_t unix_ms, const struct secure_io *io);

/*
 * Responder, for a type-1 packet from src: all §3.4 checks; on success a new half-open
 * session whose msg 2 was sent through io->send (the caller routes it to src). NULL =
 * dropped and counted (a COOKIE_REPLY may have been sent through io->send). src bytes
 * (IP ‖ port BE) feed the cookie and the token bucket.
 */
struct secure_sess *secure_responder_accept(struct secure_ctx *c, const uint8_t *pkt, size_t n,
					     const struct sockaddr *src, socklen_t srclen, uint32_t now_ms,
					     uint64_t unix_ms, const struct secure_io *io);

/* Types 2..5: the session owning the receiver index, or NULL (counted). */
struct secure_sess *secure_ctx_lookup(struct secure_ctx *c, const uint8_t *p, size_t n);

/*
 * Opens one packet for this session. > 0: plain[0..ret) is a KCP datagram to feed; 0:
 * consumed (handshake, control, keepalive/confirmation); < 0: dropped and counted.
 * *highest (may be NULL) is set when the packet authenticated with the highest counter so far
 * of its keypair (responder roaming, §3.6). plain needs n − 32 bytes.
 */
int secure_open(struct secure_sess *s, uint32_t now_ms, const uint8_t *pkt, size_t n, uint8_t *plain,
		size_t cap, bool *highest);

/*
 * Seals one KCP datagram: writes n + 32 bytes to out (out may not overlap plain). -EAGAIN
 * before the session can send (handshake, half-open), -EPIPE after it failed or closed,
 * -ENOBUFS when cap < n + 32. May start a rekey (count or time trigger).
 */
int secure_seal(struct secure_sess *s, uint32_t now_ms, const uint8_t *plain, size_t n, uint8_t *out,
		size_t cap);

/* Retries, rekey by time, expiry of old keys, hard limits. */
void secure_tick(struct secure_sess *s, uint32_t now_ms, uint64_t unix_ms);
/* When secure_tick must next run (wrap-safe ≥ now_ms; now_ms + 1 h when nothing is due). */
uint32_t secure_next_ms(const struct secure_sess *s, uint32_t now_ms);

enum secure_state secure_state(const struct secure_sess *s);
uint32_t secure_conv(const struct secure_sess *s);
uint8_t secure_flags(const struct secure_sess *s);		/* agreed flags */
uint16_t secure_max_datagram(const struct secure_sess *s);	/* min(ours, peer's) once known */
uint32_t secure_epoch(const struct secure_sess *s);		/* sending epoch, 0 after the handshake */
bool secure_is_initiator(const struct secure_sess *s);
/* Replace the io (e.g. after the caller allocated its per-peer state) and a user pointer. */
void secure_sess_set_io(struct secure_sess *s, const struct secure_io *io);
void secure_sess_set_user(struct secure_sess *s, void *user);
void *secure_sess_user(const struct secure_sess *s);

/* Sends CLOSE(reason) if established, erases keys, state CLOSED (no event). */
void secure_close(struct secure_sess *s, int reason);
/* Erases keys, removes indices, frees. NULL is fine. */
void secure_sess_free(struct secure_sess *s);

/* ---- PSK (§3.10) ---- */

/* Exactly 64 hex chars (surrounding whitespace/newline allowed), not all-zero. 0 or -EINVAL. */
int secure_psk_parse(const char *text, uint8_t psk[SECURE_PSK_BYTES]);
/* First 8 bytes of BLAKE2b-256(key = PSK, "ferry-secure-v1 fingerprint") as 16 hex chars. */
void secure_psk_fingerprint(const uint8_t psk[SECURE_PSK_BYTES], char out[17]);

/* ---- pieces exposed for tests and fuzzers ---- */

/* Replay window of §3.6: 4096 bits as 64 words used as a ring, effective window 4032. */
#define SECURE_REPLAY_WORDS 64
#define SECURE_REPLAY_WINDOW ((SECURE_REPLAY_WORDS - 1) * 64)
struct secure_replay {
	uint64_t highest;		/* highest accepted counter, when any */
	bool any;
	uint64_t bits[SECURE_REPLAY_WORDS];
};
void secure_replay_init(struct secure_replay *w);
/* 0 = may be opened; -ESTALE below the window; -EALREADY already marked. Changes nothing. */
int secure_replay_check(const struct secure_replay *w, uint64_t ctr);
/* Marks ctr (after the AEAD authenticated it; check first). true when it is the new highest. */
bool secure_replay_mark(struct secure_replay *w, uint64_t ctr);

/* The generic Noise symmetric state (Noise spec §5.2) with BLAKE2b and ChaChaPoly. */
struct secure_noise {
	uint8_t ck[64], h[64], k[32];
	uint64_t n;
	bool has_k;
};
void secure_noise_init(struct secure_noise *ns, const char *name, const uint8_t *prologue, size_t plen);
void secure_noise_mix_hash(struct secure_noise *ns, const uint8_t *p, size_t n);
void secure_noise_mix_key(struct secure_noise *ns, const uint8_t *ikm, size_t n);
void secure_noise_mix_key_and_hash(struct secure_noise *ns, const uint8_t *ikm, size_t n);
/* out gets n + 16 bytes (n bytes when no key yet). */
void secure_noise_encrypt_and_hash(struct secure_noise *ns, const uint8_t *pt, size_t n, uint8_t *out);
/* n includes the tag; out gets n − 16 bytes. 0 or -EBADMSG (state unchanged then). */
int secure_noise_decrypt_and_hash(struct secure_noise *ns, const uint8_t *ct, size_t n, uint8_t *out);
/* Noise Split(): k1 = first 32 bytes of output 1, k2 of output 2. */
void secure_noise_split(const struct secure_noise *ns, uint8_t k1[32], uint8_t k2[32]);

/* Test-only: jump the send counter of the current keypair (hard-limit tests). */
void secure_test_set_send_counter(struct secure_sess *s, uint64_t ctr);

#endif
