/*
 * libsodium wrappers for secure mode (spec/kcp.md §3.1). Only the pieces secure mode uses,
 * each a few lines over libsodium; HMAC-BLAKE2b and the Noise HKDF are built here on the
 * streaming BLAKE2b API because libsodium 1.0.18 has neither. Not here: any protocol logic,
 * key schedules, state (apart from the test hook for random bytes).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "crypto/sodium.h"

_Static_assert(sizeof(((struct sod_blake2b *)0)->opaque) >= sizeof(crypto_generichash_state),
	       "struct sod_blake2b too small for crypto_generichash_state");
_Static_assert(_Alignof(struct sod_blake2b) >= _Alignof(crypto_generichash_state),
	       "struct sod_blake2b under-aligned");
_Static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == SOD_TAG_BYTES, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == SOD_XNONCE_BYTES, "xnonce size");
_Static_assert(crypto_scalarmult_BYTES == SOD_KEY_BYTES, "x25519 size");
_Static_assert(crypto_shorthash_KEYBYTES == SOD_SHORTHASH_KEY_BYTES, "siphash key size");

/* HMAC pads (RFC 2104) */
#define HMAC_IPAD 0x36
#define HMAC_OPAD 0x5c

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -EIO;

static sod_random_fn random_hook;
static void *random_hook_arg;

static void init_run(void)
{
	init_result = sodium_init() < 0 ? -EIO : 0;
}

int sod_init(void)
{
	pthread_once(&init_once, init_run);
	return init_result;
}

void sod_random(void *buf, size_t n)
{
	if (random_hook)
		random_hook(random_hook_arg, buf, n);
	else
		randombytes_buf(buf, n);
}

void sod_random_set_hook(sod_random_fn fn, void *arg)
{
	random_hook = fn;
	random_hook_arg = arg;
}

void sod_x25519_pub(uint8_t pub[SOD_KEY_BYTES], const uint8_t priv[SOD_KEY_BYTES])
{
	crypto_scalarmult_base(pub, priv);
}

int sod_x25519(uint8_t out[SOD_KEY_BYTES], const uint8_t priv[SOD_KEY_BYTES],
	       const uint8_t pub[SOD_KEY_BYTES])
{
	/* libsodium returns -1 exactly when the shared secret is all zero */
	if (crypto_scalarmult(out, priv, pub) != 0) {
		sodium_memzero(out, SOD_KEY_BYTES);
		return -EINVAL;
	}
	return 0;
}

static void noise_nonce(uint8_t nonce[12], uint64_t ctr)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(ctr >> (8 * i));
}

void sod_aead_seal(uint8_t *out, const uint8_t *pt, size_t n, const uint8_t *ad, size_t adlen,
		   uint64_t ctr, const uint8_t key[SOD_KEY_BYTES])
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

	noise_nonce(nonce, ctr);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, n, ad, adlen, NULL, nonce, key);
}

int sod_aead_open(uint8_t *out, const uint8_t *ct, size_t n, const uint8_t *ad, size_t adlen,
		  uint64_t ctr, const uint8_t key[SOD_KEY_BYTES])
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

	if (n < SOD_TAG_BYTES)
		return -EBADMSG;
	noise_nonce(nonce, ctr);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, n, ad, adlen, nonce, key))
		return -EBADMSG;
	return 0;
}

void sod_xaead_seal(uint8_t *out, const uint8_t *pt, size_t n, const uint8_t *ad, size_t adlen,
		    const uint8_t nonce[SOD_XNONCE_BYTES], const uint8_t key[SOD_KEY_BYTES])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, pt, n, ad, adlen, NULL, nonce, key);
}

int sod_xaead_open(uint8_t *out, const uint8_t *ct, size_t n, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[SOD_XNONCE_BYTES], const uint8_t key[SOD_KEY_BYTES])
{
	if (n < SOD_TAG_BYTES)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, n, ad, adlen, nonce, key))
		return -EBADMSG;
	return 0;
}

void sod_blake2b(uint8_t *out, size_t outlen, const void *key, size_t keylen, const void *msg, size_t n)
{
	crypto_generichash(out, outlen, msg, n, key, keylen);
}

void sod_blake2b_init(struct sod_blake2b *st, size_t outlen, const void *key, size_t keylen)
{
	st->outlen = outlen;
	crypto_generichash_init((crypto_generichash_state *)st->opaque, key, keylen, outlen);
}

void sod_blake2b_update(struct sod_blake2b *st, const void *p, size_t n)
{
	crypto_generichash_update((crypto_generichash_state *)st->opaque, p, n);
}

void sod_blake2b_final(struct sod_blake2b *st, uint8_t *out)
{
	crypto_generichash_final((crypto_generichash_state *)st->opaque, out, st->outlen);
	sodium_memzero(st->opaque, sizeof(st->opaque));
}

void sod_hmac(uint8_t out[SOD_HASH_BYTES], const void *key, size_t keylen, const void *msg, size_t n)
{
	uint8_t k0[SOD_HMAC_BLOCK_BYTES] = { 0 }, pad[SOD_HMAC_BLOCK_BYTES], inner[SOD_HASH_BYTES];
	struct sod_blake2b st;

	if (keylen > SOD_HMAC_BLOCK_BYTES)
		sod_blake2b(k0, SOD_HASH_BYTES, NULL, 0, key, keylen);
	else if (keylen)
		memcpy(k0, key, keylen);

	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k0[i] ^ HMAC_IPAD;
	sod_blake2b_init(&st, SOD_HASH_BYTES, NULL, 0);
	sod_blake2b_update(&st, pad, sizeof(pad));
	sod_blake2b_update(&st, msg, n);
	sod_blake2b_final(&st, inner);

	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k0[i] ^ HMAC_OPAD;
	sod_blake2b_init(&st, SOD_HASH_BYTES, NULL, 0);
	sod_blake2b_update(&st, pad, sizeof(pad));
	sod_blake2b_update(&st, inner, sizeof(inner));
	sod_blake2b_final(&st, out);

	sodium_memzero(k0, sizeof(k0));
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

void sod_hkdf(const uint8_t *ck, size_t cklen, const void *ikm, size_t n, uint8_t *o1, uint8_t *o2,
	      uint8_t *o3)
{
	uint8_t temp[SOD_HASH_BYTES], t[3][SOD_HASH_BYTES + 1];

	sod_hmac(temp, ck, cklen, ikm, n);
	t[0][0] = 0x01;
	sod_hmac(t[0], temp, sizeof(temp), t[0], 1);
	if (o2) {
		t[0][SOD_HASH_BYTES] = 0x02;
		sod_hmac(t[1], temp, sizeof(temp), t[0], SOD_HASH_BYTES + 1);
	}
	if (o2 && o3) {
		t[1][SOD_HASH_BYTES] = 0x03;
		sod_hmac(t[2], temp, sizeof(temp), t[1], SOD_HASH_BYTES + 1);
	}
	/* copied last, so the outputs may alias the inputs */
	memcpy(o1, t[0], SOD_HASH_BYTES);
	if (o2)
		memcpy(o2, t[1], SOD_HASH_BYTES);
	if (o2 && o3)
		memcpy(o3, t[2], SOD_HASH_BYTES);
	sodium_memzero(temp, sizeof(temp));
	sodium_memzero(t, sizeof(t));
}

uint64_t sod_shorthash(const uint8_t key[SOD_SHORTHASH_KEY_BYTES], const void *msg, size_t n)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, msg, n, key);
	for (size_t i = 0; i < sizeof(h); i++)
		v |= (uint64_t)h[i] << (8 * i);
	return v;
}

bool sod_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void sod_memzero(void *p, size_t n)
{
	sodium_memzero(p, n);
}

int sod_mlock(void *p, size_t n)
{
	return sodium_mlock(p, n) ? -errno : 0;
}

void sod_munlock(void *p, size_t n)
{
	sodium_munlock(p, n);
}
