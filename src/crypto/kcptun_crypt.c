/*
 * kcptun's crypt header and ciphers (spec/kcp.md §2.2, §2.3): key derivation with
 * PBKDF2-HMAC-SHA1, the 16-byte nonce + CRC-32 header, and the transforms kcptun offers
 * over the whole datagram. Not here: which datagrams to send (FEC, KCP) and counting the
 * drops (the caller counts our error codes).
 *
 * Block ciphers run in CFB with full feedback (CFB-128 for 16-byte blocks, CFB-64 for
 * 8-byte ones) from one fixed IV that restarts with every datagram. Encryption is serial
 * by nature and goes through OpenSSL's CFB mode; decryption needs only E(previous
 * ciphertext block) for every block, which we get from one ECB call over the shifted
 * ciphertext, so AES-NI can work on several blocks at once (about 8x faster here than
 * OpenSSL's CFB decryption). TEA and XTEA are not in OpenSSL; they are a few lines each.
 * Twofish is in neither OpenSSL nor libsodium: crypto/twofish.c has the block function, and
 * TEA, XTEA and Twofish share one serial CFB loop here.
 * Blowfish and CAST5 live in OpenSSL 3's legacy provider, loaded into a private library
 * context so the rest of the process keeps the default configuration.
 *
 * The nonce needs no secrecy, only to differ per datagram (it is the first CFB block and
 * so randomises everything after it). It comes from a ChaCha20 keystream keyed once from
 * randombytes_buf and refilled every few KiB: no system call per datagram.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <sodium.h>

#include "core/crc32.h"
#include "crypto/kcptun_crypt.h"
#include "crypto/twofish.h"

/* §2.2 */
#define KC_SALT "kcp-go"
#define KC_PBKDF2_ITERATIONS 4096
/* §2.3: the xor cipher's table is derived from pass with its own salt and 32 iterations */
#define KC_XOR_SALT "sH3CIVoF#rWLtJo6"
#define KC_XOR_ITERATIONS 32
/* §2.3: salsa20 leaves its 8-byte nonce (datagram bytes 0..7) in clear */
#define KC_SALSA_NONCE_BYTES 8

/* 4 KiB of keystream = 256 nonces per refill; a refill costs about a microsecond */
#define KC_RNG_BYTES 4096
/* ECB work area for decryption; a multiple of every block size, plus the IV block */
#define KC_SCRATCH_BYTES 4096
#define KC_MAX_BLOCK_BYTES 16

/* §2.3: the fixed CFB IV of every block cipher (8-byte ciphers use the first 8 bytes) */
static const uint8_t kc_iv[KC_MAX_BLOCK_BYTES] = {
	0xa7, 0x73, 0x4f, 0x9c, 0x12, 0xac, 0x1b, 0x01,
	0xa4, 0x15, 0xf2, 0xc1, 0xfc, 0x78, 0xe6, 0x6b,
};

enum kc_kind {
	KC_NONE,
	KC_EVP,			/* OpenSSL: CFB to encrypt, ECB keystream to decrypt */
	KC_TEA,
	KC_XTEA,
	KC_TWOFISH,
	KC_SALSA20,
	KC_XOR,
};

struct kc_cipher {
	const char *name;
	enum kc_kind kind;
	const char *cfb;	/* OpenSSL algorithm names */
	const char *ecb;
	uint8_t key_bytes;	/* prefix of pass */
	uint8_t block_bytes;
};

/* §2.3 table; the order is the one kcptun's --help prints */
static const struct kc_cipher kc_ciphers[] = {
	{ "aes", KC_EVP, "AES-256-CFB", "AES-256-ECB", 32, 16 },
	{ "aes-128", KC_EVP, "AES-128-CFB", "AES-128-ECB", 16, 16 },
	{ "aes-192", KC_EVP, "AES-192-CFB", "AES-192-ECB", 24, 16 },
	{ "salsa20", KC_SALSA20, NULL, NULL, 32, 0 },
	{ "blowfish", KC_EVP, "BF-CFB", "BF-ECB", 32, 8 },
	{ "twofish", KC_TWOFISH, NULL, NULL, 32, 16 },
	{ "cast5", KC_EVP, "CAST5-CFB", "CAST5-ECB", 16, 8 },
	{ "3des", KC_EVP, "DES-EDE3-CFB", "DES-EDE3-ECB", 24, 8 },
	{ "tea", KC_TEA, NULL, NULL, 16, 8 },
	{ "xtea", KC_XTEA, NULL, NULL, 16, 8 },
	{ "xor", KC_XOR, NULL, NULL, 32, 0 },
	{ "sm4", KC_EVP, "SM4-CFB", "SM4-ECB", 16, 16 },
	{ "none", KC_NONE, NULL, NULL, 0, 0 },
};

struct kcptun_crypt {
	const struct kc_cipher *cipher;
	bool null_is_aes;

	EVP_CIPHER_CTX *cfb;			/* KC_EVP: encrypts */
	EVP_CIPHER_CTX *ecb;			/* KC_EVP: keystream for decryption */
	uint32_t tea_key[4];			/* KC_TEA, KC_XTEA */
	struct twofish_key twofish;		/* KC_TWOFISH: subkeys and key-dependent S-boxes */
	uint8_t salsa_key[crypto_stream_salsa20_KEYBYTES];
	uint8_t *xor_table;			/* KC_XOR: KCPTUN_CRYPT_XOR_TABLE_BYTES */

	uint8_t rng_key[crypto_stream_chacha20_KEYBYTES];
	uint64_t rng_counter;			/* ChaCha20 nonce of the next refill */
	size_t rng_pos;
	uint8_t rng_buf[KC_RNG_BYTES];

	uint8_t scratch[KC_MAX_BLOCK_BYTES + KC_SCRATCH_BYTES];
};

/* ---- OpenSSL library context with the legacy provider (Blowfish, CAST5) ---- */

static OSSL_LIB_CTX *kc_libctx;
static pthread_once_t kc_libctx_once = PTHREAD_ONCE_INIT;

static void kc_libctx_init(void)
{
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

	if (!ctx)
		return;
	if (!OSSL_PROVIDER_load(ctx, "default")) {
		OSSL_LIB_CTX_free(ctx);
		ERR_clear_error();
		return;
	}
	/* optional: without it blowfish and cast5 are reported as not supported */
	OSSL_PROVIDER_load(ctx, "legacy");
	ERR_clear_error();
	kc_libctx = ctx;
}

/* ---- names ---- */

const char *kcptun_crypt_names(void)
{
	return "aes, aes-128, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, sm4, xor, none, null";
}

const char *kcptun_crypt_name(const struct kcptun_crypt *c)
{
	return c->cipher->name;
}

bool kcptun_crypt_null_is_aes(const struct kcptun_crypt *c)
{
	return c->null_is_aes;
}

static const struct kc_cipher *kc_cipher_find(const char *name)
{
	for (size_t i = 0; i < sizeof(kc_ciphers) / sizeof(kc_ciphers[0]); i++)
		if (!strcmp(kc_ciphers[i].name, name))
			return &kc_ciphers[i];
	return NULL;
}

/* ---- key derivation ---- */

int kcptun_crypt_derive(const char *key, uint8_t pass[KCPTUN_CRYPT_PASS_BYTES])
{
	size_t len = strlen(key);

	if (len > INT_MAX)
		return -EINVAL;
	if (!PKCS5_PBKDF2_HMAC_SHA1(key, (int)len, (const unsigned char *)KC_SALT, (int)strlen(KC_SALT),
				    KC_PBKDF2_ITERATIONS, KCPTUN_CRYPT_PASS_BYTES, pass)) {
		ERR_clear_error();
		return -ENOMEM;
	}
	return 0;
}

/* ---- TEA and XTEA (big-endian words, as Go's x/crypto packages kcp-go uses) ---- */

#define TEA_DELTA 0x9e3779b9u
/* kcp-go asks for 16 TEA rounds, i.e. 8 cycles of two half-rounds (§2.3) */
#define TEA_CYCLES 8
#define XTEA_CYCLES 32

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void tea_encrypt_block(const uint32_t k[4], const uint8_t in[8], uint8_t out[8])
{
	uint32_t v0 = get_be32(in), v1 = get_be32(in + 4), sum = 0;

	for (int i = 0; i < TEA_CYCLES; i++) {
		sum += TEA_DELTA;
		v0 += ((v1 << 4) + k[0]) ^ (v1 + sum) ^ ((v1 >> 5) + k[1]);
		v1 += ((v0 << 4) + k[2]) ^ (v0 + sum) ^ ((v0 >> 5) + k[3]);
	}
	put_be32(out, v0);
	put_be32(out + 4, v1);
}

static void xtea_encrypt_block(const uint32_t k[4], const uint8_t in[8], uint8_t out[8])
{
	uint32_t v0 = get_be32(in), v1 = get_be32(in + 4), sum = 0;

	for (int i = 0; i < XTEA_CYCLES; i++) {
		v0 += (((v1 << 4) ^ (v1 >> 5)) + v1) ^ (sum + k[sum & 3]);
		sum += TEA_DELTA;
		v1 += (((v0 << 4) ^ (v0 >> 5)) + v0) ^ (sum + k[(sum >> 11) & 3]);
	}
	put_be32(out, v0);
	put_be32(out + 4, v1);
}

static void own_encrypt_block(const struct kcptun_crypt *c, const uint8_t *in, uint8_t *out)
{
	switch (c->cipher->kind) {
	case KC_TEA:
		tea_encrypt_block(c->tea_key, in, out);
		break;
	case KC_XTEA:
		xtea_encrypt_block(c->tea_key, in, out);
		break;
	case KC_TWOFISH:
		twofish_encrypt(&c->twofish, in, out);
		break;
	default:
		break;
	}
}

/*
 * Full-feedback CFB (CFB-64 or CFB-128, the cipher's block size) over one of our own
 * block functions; the register restarts at the IV and a short last block takes the
 * keystream's prefix.
 */
static void cfb_own(const struct kcptun_crypt *c, uint8_t *buf, size_t n, bool decrypt)
{
	size_t bs = c->cipher->block_bytes;
	uint8_t reg[KC_MAX_BLOCK_BYTES], ks[KC_MAX_BLOCK_BYTES];

	memcpy(reg, kc_iv, bs);
	for (size_t off = 0; off < n; off += bs) {
		size_t m = n - off < bs ? n - off : bs;

		own_encrypt_block(c, reg, ks);
		if (decrypt)
			memcpy(reg, buf + off, m);
		for (size_t i = 0; i < m; i++)
			buf[off + i] ^= ks[i];
		if (!decrypt)
			memcpy(reg, buf + off, m);
	}
}

/* ---- OpenSSL block ciphers ---- */

static EVP_CIPHER_CTX *evp_ctx_new(const char *alg, const uint8_t *key, int key_bytes, const uint8_t *iv)
{
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(kc_libctx, alg, NULL);
	EVP_CIPHER_CTX *ctx = NULL;

	if (!cipher)
		goto fail;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		goto fail;
	/* Blowfish takes variable key lengths: set ours (32) before the key goes in */
	if (!EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, 1, NULL) ||
	    !EVP_CIPHER_CTX_set_key_length(ctx, key_bytes) ||
	    !EVP_CipherInit_ex2(ctx, NULL, key, iv, 1, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(ctx, 0))
		goto fail;
	EVP_CIPHER_free(cipher);
	return ctx;

fail:
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(cipher);
	ERR_clear_error();
	return NULL;
}

static int evp_setup(struct kcptun_crypt *c, const uint8_t *pass)
{
	const struct kc_cipher *ci = c->cipher;

	pthread_once(&kc_libctx_once, kc_libctx_init);
	if (!kc_libctx)
		return -ENOTSUP;
	c->cfb = evp_ctx_new(ci->cfb, pass, ci->key_bytes, kc_iv);
	c->ecb = evp_ctx_new(ci->ecb, pass, ci->key_bytes, NULL);
	if (!c->cfb || !c->ecb)
		return -ENOTSUP;
	return 0;
}

/* Serial CFB through OpenSSL, IV restarted for this datagram. */
static void evp_encrypt(struct kcptun_crypt *c, uint8_t *buf, size_t n)
{
	int outl;

	EVP_CipherInit_ex2(c->cfb, NULL, NULL, kc_iv, -1, NULL);
	while (n) {
		int m = n > INT_MAX ? INT_MAX : (int)n;

		EVP_CipherUpdate(c->cfb, buf, &outl, buf, m);
		buf += m;
		n -= (size_t)m;
	}
}

/*
 * CFB decryption: P[i] = C[i] ^ E(C[i-1]), C[-1] = IV. E of every previous block at once
 * with ECB over IV ‖ C[0..], a chunk at a time; the last ciphertext block of a chunk is
 * kept before it is overwritten, as it feeds the next chunk.
 */
static void evp_decrypt(struct kcptun_crypt *c, uint8_t *buf, size_t n)
{
	size_t bs = c->cipher->block_bytes;
	uint8_t *s = c->scratch, prev[KC_MAX_BLOCK_BYTES];
	int outl;

	memcpy(prev, kc_iv, bs);
	for (size_t off = 0; off < n;) {
		size_t m = n - off < KC_SCRATCH_BYTES ? n - off : KC_SCRATCH_BYTES;
		size_t nb = (m + bs - 1) / bs;

		memcpy(s, prev, bs);
		memcpy(s + bs, buf + off, (nb - 1) * bs);
		/* a chunk that is not the last is whole blocks (KC_SCRATCH_BYTES % bs == 0) */
		if (off + m < n)
			memcpy(prev, buf + off + m - bs, bs);
		EVP_EncryptUpdate(c->ecb, s, &outl, s, (int)(nb * bs));
		for (size_t i = 0; i < m; i++)
			buf[off + i] ^= s[i];
		off += m;
	}
}

/* ---- setup ---- */

static int xor_setup(struct kcptun_crypt *c, const uint8_t *pass)
{
	c->xor_table = malloc(KCPTUN_CRYPT_XOR_TABLE_BYTES);
	if (!c->xor_table)
		return -ENOMEM;
	if (!PKCS5_PBKDF2_HMAC_SHA1((const char *)pass, KCPTUN_CRYPT_PASS_BYTES, (const unsigned char *)KC_XOR_SALT,
				    (int)strlen(KC_XOR_SALT), KC_XOR_ITERATIONS, KCPTUN_CRYPT_XOR_TABLE_BYTES,
				    c->xor_table)) {
		ERR_clear_error();
		return -ENOMEM;
	}
	return 0;
}

static int cipher_setup(struct kcptun_crypt *c, const uint8_t *pass)
{
	switch (c->cipher->kind) {
	case KC_EVP:
		return evp_setup(c, pass);
	case KC_TEA:
	case KC_XTEA:
		for (int i = 0; i < 4; i++)
			c->tea_key[i] = get_be32(pass + 4 * i);
		return 0;
	case KC_TWOFISH:
		return twofish_setkey(&c->twofish, pass, c->cipher->key_bytes);
	case KC_SALSA20:
		memcpy(c->salsa_key, pass, sizeof(c->salsa_key));
		return 0;
	case KC_XOR:
		return xor_setup(c, pass);
	case KC_NONE:
		return 0;
	}
	return -ENOTSUP;
}

int kcptun_crypt_new(const char *name, const char *key, struct kcptun_crypt **out)
{
	const struct kc_cipher *ci;
	bool null_is_aes = !strcmp(name, "null");
	uint8_t pass[KCPTUN_CRYPT_PASS_BYTES];
	struct kcptun_crypt *c;
	int err;

	*out = NULL;
	ci = kc_cipher_find(null_is_aes ? "aes" : name);
	if (!ci)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cipher = ci;
	c->null_is_aes = null_is_aes;
	randombytes_buf(c->rng_key, sizeof(c->rng_key));
	c->rng_pos = KC_RNG_BYTES;

	err = kcptun_crypt_derive(key, pass);
	if (err)
		goto fail;
	err = cipher_setup(c, pass);
	sodium_memzero(pass, sizeof(pass));
	if (err)
		goto fail;
	*out = c;
	return 0;

fail:
	kcptun_crypt_free(c);
	return err;
}

void kcptun_crypt_free(struct kcptun_crypt *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->cfb);
	EVP_CIPHER_CTX_free(c->ecb);
	if (c->xor_table) {
		sodium_memzero(c->xor_table, KCPTUN_CRYPT_XOR_TABLE_BYTES);
		free(c->xor_table);
	}
	sodium_memzero(c, sizeof(*c));
	free(c);
}

/* ---- per datagram ---- */

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void xor_table_apply(const struct kcptun_crypt *c, uint8_t *buf, size_t n)
{
	size_t m = n < KCPTUN_CRYPT_XOR_TABLE_BYTES ? n : KCPTUN_CRYPT_XOR_TABLE_BYTES;

	for (size_t i = 0; i < m; i++)
		buf[i] ^= c->xor_table[i];
}

static void transform(struct kcptun_crypt *c, uint8_t *buf, size_t n, bool decrypt)
{
	switch (c->cipher->kind) {
	case KC_EVP:
		if (decrypt)
			evp_decrypt(c, buf, n);
		else
			evp_encrypt(c, buf, n);
		break;
	case KC_TEA:
	case KC_XTEA:
	case KC_TWOFISH:
		cfb_own(c, buf, n, decrypt);
		break;
	case KC_SALSA20:
		crypto_stream_salsa20_xor(buf + KC_SALSA_NONCE_BYTES, buf + KC_SALSA_NONCE_BYTES,
					  n - KC_SALSA_NONCE_BYTES, buf, c->salsa_key);
		break;
	case KC_XOR:
		xor_table_apply(c, buf, n);
		break;
	case KC_NONE:
		break;
	}
}

static void nonce_next(struct kcptun_crypt *c, uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES])
{
	if (c->rng_pos + KCPTUN_CRYPT_NONCE_BYTES > KC_RNG_BYTES) {
		uint8_t iv[crypto_stream_chacha20_NONCEBYTES] = { 0 };

		for (size_t i = 0; i < sizeof(iv) && i < 8; i++)
			iv[i] = (uint8_t)(c->rng_counter >> (8 * i));
		c->rng_counter++;
		crypto_stream_chacha20(c->rng_buf, KC_RNG_BYTES, iv, c->rng_key);
		c->rng_pos = 0;
	}
	memcpy(nonce, c->rng_buf + c->rng_pos, KCPTUN_CRYPT_NONCE_BYTES);
	c->rng_pos += KCPTUN_CRYPT_NONCE_BYTES;
}

void kcptun_crypt_seal_nonce(struct kcptun_crypt *c, uint8_t *buf, size_t n,
			     const uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES])
{
	if (n < KCPTUN_CRYPT_HDR)
		return;
	memcpy(buf, nonce, KCPTUN_CRYPT_NONCE_BYTES);
	put_le32(buf + KCPTUN_CRYPT_NONCE_BYTES, crc32_ieee(0, buf + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR));
	transform(c, buf, n, false);
}

void kcptun_crypt_seal(struct kcptun_crypt *c, uint8_t *buf, size_t n)
{
	uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES];

	if (n < KCPTUN_CRYPT_HDR)
		return;
	nonce_next(c, nonce);
	kcptun_crypt_seal_nonce(c, buf, n, nonce);
}

int kcptun_crypt_open(struct kcptun_crypt *c, uint8_t *buf, size_t n)
{
	if (n < KCPTUN_CRYPT_HDR)
		return -EMSGSIZE;
	transform(c, buf, n, true);
	if (get_le32(buf + KCPTUN_CRYPT_NONCE_BYTES) != crc32_ieee(0, buf + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR))
		return -EBADMSG;
	return 0;
}
