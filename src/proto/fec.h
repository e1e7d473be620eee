/*
 * kcptun's FEC layer (spec/kcp.md §2.5): a 6-byte header (seqid, flag) in front of every
 * packet, data packets carrying the KCP bytes after a 2-byte size, and Reed–Solomon parity
 * packets after every ds data packets. Pure: no clock (the caller passes now_ms), no
 * sockets, no logging, no allocation after creation.
 *
 * Byte order on the wire is little-endian. The Reed–Solomon code is the one of
 * klauspost/reedsolomon that kcp-go uses (GF(2^8) with 0x11d, Vandermonde matrix times the
 * inverse of its top square), not Cauchy or ISA-L's matrix.
 */
#ifndef FERRY_PROTO_FEC_H
#define FERRY_PROTO_FEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEC_HDR_BYTES 6			/* seqid u32 + flag u16 */
#define FEC_DATA_HDR_BYTES 8		/* + size u16 */
#define FEC_FLAG_DATA 0xf1
#define FEC_FLAG_PARITY 0xf2
/* ds + ps at most (one Vandermonde row per shard position) */
#define FEC_MAX_SHARDS 255
/* kcp-go's mtuLimit: no kcptun packet is longer, so neither coder keeps longer shards */
#define FEC_MAX_PKT_BYTES 1500
#define FEC_MAX_SHARD_BYTES (FEC_MAX_PKT_BYTES - FEC_HDR_BYTES)
/* §2.5: decoder queue entries older than this are dropped */
#define FEC_EXPIRE_MS 60000
/* §2.5: the decoder keeps at most this many groups' worth of packets */
#define FEC_QUEUE_GROUPS 3

/* The u16 at offset 4 is 0xf1 or 0xf2 (never a KCP cmd|frg there, §2.5); n >= 6. */
bool fec_is_fec(const uint8_t *p, size_t n);

/* ---- encoder ---- */

struct fec_enc;

/* NULL if ds < 1, ps < 1, ds + ps > FEC_MAX_SHARDS, or out of memory. */
struct fec_enc *fec_enc_new(int ds, int ps);
void fec_enc_free(struct fec_enc *e);

/*
 * pkt[0..n): FEC_DATA_HDR_BYTES of header room, then the KCP bytes. Fills seqid, flag and
 * size, keeps a copy of the shard (bytes 6..n). Returns the number of parity packets now
 * ready: ps after every ds-th data packet, else 0; -EINVAL if n < 8, -EMSGSIZE if
 * n > FEC_MAX_PKT_BYTES (pkt untouched in both cases).
 */
int fec_enc_data(struct fec_enc *e, uint8_t *pkt, size_t n);

/*
 * Writes parity packet i (0..ps-1) of the group just completed: header + parity bytes,
 * as long as the longest data shard of the group. Returns its length, or 0 when no group
 * is ready (the next fec_enc_data starts a new one), i is out of range or cap is too small.
 */
size_t fec_enc_parity(struct fec_enc *e, int i, uint8_t *out, size_t cap);

/* Tests: the seqid the next data packet gets (a group start, below the wrap point). */
void fec_enc_set_next_seqid(struct fec_enc *e, uint32_t seqid);

/* ---- decoder ---- */

struct fec_dec;

/*
 * ds, ps: what we expect from the peer (our own --datashard/--parityshard). If either is
 * 0, FEC is off locally: data packets are delivered, parity is dropped, nothing is
 * stored. Otherwise the decoder keeps FEC_QUEUE_GROUPS * (ds + ps) packets and follows
 * the peer if its flags show other parameters (auto-detection as kcp-go, limited to
 * ds' + ps' <= ds + ps, the storage sized here). NULL if ds + ps > FEC_MAX_SHARDS or no memory.
 */
struct fec_dec *fec_dec_new(int ds, int ps);
void fec_dec_free(struct fec_dec *d);

/* regular = false for a rebuilt shard: KCP must not take rmt_wnd or an RTT sample from it. */
typedef void (*fec_deliver_fn)(void *ctx, const uint8_t *kcp, size_t n, bool regular);

/* Reasons fec_dec_input rejects a packet (returned negated); nothing of it is delivered. */
enum fec_err {
	FEC_E_SHORT = 1,	/* shorter than 8 bytes */
	FEC_E_LONG,		/* longer than FEC_MAX_PKT_BYTES */
	FEC_E_FLAG,		/* flag neither 0xf1 nor 0xf2 */
	FEC_E_SIZE,		/* data packet with size < 2 or 6 + size > length */
	FEC_E_DUP,		/* seqid already queued */
	FEC_E_COUNT
};
const char *fec_err_name(int err);

/*
 * One FEC packet p[0..n) (starting at its seqid). Data packets are delivered at once
 * (bytes [8, 6 + size), regular = true); when a group becomes recoverable the missing data
 * shards are rebuilt and delivered with regular = false. now_ms drives the expiry.
 * fn must not call back into this decoder. Returns 0 or -FEC_E_*.
 */
int fec_dec_input(struct fec_dec *d, uint32_t now_ms, const uint8_t *p, size_t n, fec_deliver_fn fn,
		  void *ctx);

struct fec_stats {
	uint64_t data_in;		/* data packets delivered */
	uint64_t parity_in;		/* parity packets queued */
	uint64_t recovered;		/* data shards rebuilt and delivered */
	uint64_t recovered_bad;		/* rebuilt shards whose size was < 2 or > their length */
	uint64_t unrecoverable;		/* data packets pushed out of a full queue before their group completed */
	uint64_t expired;		/* queue entries dropped after FEC_EXPIRE_MS */
	uint64_t late;			/* parity for a group already complete (dropped) */
	uint64_t parity_ignored;	/* parity while FEC is off or the peer's parameters are unknown */
	uint64_t mismatch;		/* flag disagrees with the position: the peer uses other ds/ps */
	uint64_t retuned;		/* parameters changed to the detected ones */
	uint64_t tune_refused;		/* detected parameters larger than the decoder was built for */
	uint64_t err[FEC_E_COUNT];	/* rejected packets by reason (index = -return) */
};
const struct fec_stats *fec_dec_stats(const struct fec_dec *d);

/* The parameters in use; 0/0 while unknown (FEC off, or a mismatch not yet resolved). */
void fec_dec_params(const struct fec_dec *d, int *ds, int *ps);

/* ---- the code itself, for tests ---- */

/* The ps parity rows (ps * ds coefficients, row-major) of the code. 0 or -EINVAL/-ENOMEM. */
int fec_rs_parity_rows(int ds, int ps, uint8_t *rows);

#endif
