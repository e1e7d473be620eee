/*
 * Thin wrappers over libsodium 1.0.18 for ferry secure mode (spec/kcp.md §3.1): X25519,
 * ChaCha20-Poly1305-IETF with the Noise nonce layout, XChaCha20-Poly1305 (cookies only),
 * BLAKE2b (plain, keyed, any output length 16..64, streaming), HMAC-BLAKE2b and the Noise
 * HKDF built on streaming BLAKE2b (1.0.18 has neither), random bytes with a test hook,
 * SipHash for hash tables, constant-time compare, memzero and mlock.
 *
 * This file and sodium.c are the only place that includes <sodium.h>; everything above
 * works with plain byte arrays. Nothing here allocates.
 */
#ifndef FERRY_CRYPTO_SODIUM_H
#define FERRY_CRYPTO_SODIUM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOD_KEY_BYTES 32	/* X25519 keys, ChaCha20-Poly1305 keys */
#define SOD_TAG_BYTES 16	/* Poly1305 */
#define SOD_XNONCE_BYTES 24	/* XChaCha20-Poly1305 */
#define SOD_HASH_BYTES 64	/* BLAKE2b-512, HMAC-BLAKE2b, HKDF outputs */
#define SOD_HMAC_BLOCK_BYTES 128
#define SOD_SHORTHASH_KEY_BYTES 16

/* sodium_init() once per process (thread-safe). 0, or -EIO when libsodium cannot start. */
int sod_init(void);

/*
 * Random bytes from the kernel CSPRNG. Tests and fuzzers may install a hook that serves
 * them instead (deterministic ephemerals and indices); NULL restores the CSPRNG. The hook
 * is process-wide: set it before any worker thread runs, never in production.
 */
typedef void (*sod_random_fn)(void *arg, void *buf, size_t n);
void sod_random(void *buf, size_t n);
void sod_random_set_hook(sod_random_fn fn, void *arg);

/* X25519: pub = priv·G. */
void sod_x25519_pub(uint8_t pub[SOD_KEY_BYTES], const uint8_t priv[SOD_KEY_BYTES]);
/* out = priv·pub; -EINVAL when the result is all zero (low-order point), out zeroed then. */
int sod_x25519(uint8_t out[SOD_KEY_BYTES], const uint8_t priv[SOD_KEY_BYTES],
	       const uint8_t pub[SOD_KEY_BYTES]);

/*
 * ChaCha20-Poly1305-IETF with nonce = 4 zero bytes ‖ ctr as u64 LE (Noise, §3.2/§3.3).
 * seal writes n + 16 bytes to out (out may equal pt); open reads n ≥ 16 bytes (tag last),
 * writes n − 16 to out (out may equal ct) and returns 0 or -EBADMSG.
 */
void sod_aead_seal(uint8_t *out, const uint8_t *pt, size_t n, const uint8_t *ad, size_t adlen,
		   uint64_t ctr, const uint8_t key[SOD_KEY_BYTES]);
int sod_aead_open(uint8_t *out, const uint8_t *ct, size_t n, const uint8_t *ad, size_t adlen,
		  uint64_t ctr, const uint8_t key[SOD_KEY_BYTES]);

/* XChaCha20-Poly1305-IETF, same conventions, 24-byte nonce. */
void sod_xaead_seal(uint8_t *out, const uint8_t *pt, size_t n, const uint8_t *ad, size_t adlen,
		    const uint8_t nonce[SOD_XNONCE_BYTES], const uint8_t key[SOD_KEY_BYTES]);
int sod_xaead_open(uint8_t *out, const uint8_t *ct, size_t n, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[SOD_XNONCE_BYTES], const uint8_t key[SOD_KEY_BYTES]);

/*
 * BLAKE2b with outlen 16..64 and an optional key (keylen 0, or 16..64). Streaming state is
 * opaque storage large enough for libsodium's (checked at compile time in sodium.c).
 */
void sod_blake2b(uint8_t *out, size_t outlen, const void *key, size_t keylen, const void *msg, size_t n);
struct sod_blake2b {
	_Alignas(64) unsigned char opaque[384];
	size_t outlen;
};
void sod_blake2b_init(struct sod_blake2b *st, size_t outlen, const void *key, size_t keylen);
void sod_blake2b_update(struct sod_blake2b *st, const void *p, size_t n);
void sod_blake2b_final(struct sod_blake2b *st, uint8_t *out);

/* HMAC-BLAKE2b (block 128, output 64; longer keys are hashed first, as RFC 2104 says). */
void sod_hmac(uint8_t out[SOD_HASH_BYTES], const void *key, size_t keylen, const void *msg, size_t n);

/*
 * Noise HKDF(ck, ikm): temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01); o2 = HMAC(temp, o1 ‖ 0x02);
 * o3 = HMAC(temp, o2 ‖ 0x03). Each output is 64 bytes; o2 and o3 may be NULL (fewer outputs).
 * Outputs may alias ck or ikm.
 */
void sod_hkdf(const uint8_t *ck, size_t cklen, const void *ikm, size_t n, uint8_t *o1, uint8_t *o2,
	      uint8_t *o3);

/* SipHash-2-4 of msg: for hash tables keyed by data a peer chooses. */
uint64_t sod_shorthash(const uint8_t key[SOD_SHORTHASH_KEY_BYTES], const void *msg, size_t n);

/* Constant-time equality of n bytes. */
bool sod_equal(const void *a, const void *b, size_t n);
/* Zeroes memory in a way the compiler cannot drop. */
void sod_memzero(void *p, size_t n);
/* Keeps key material out of swap and core dumps; best effort (0 or -errno). munlock also zeroes. */
int sod_mlock(void *p, size_t n);
void sod_munlock(void *p, size_t n);

#endif
