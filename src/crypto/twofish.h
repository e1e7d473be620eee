/*
 * Twofish (Schneier, Kelsey, Whiting, Wagner, Hall, Ferguson; AES submission, 1998), the
 * forward direction only: kcptun's --crypt twofish runs it in CFB-128 (spec/kcp.md §2.3),
 * where decryption also encrypts. Keys of 16, 24 and 32 bytes; kcptun uses 32.
 *
 * Key setup expands the key-dependent S-boxes and the MDS multiply into four 256-word
 * tables, so a round costs eight table lookups and no GF arithmetic. The
 * tables make this file's timing depend on the data (like any table-driven Twofish); that
 * is acceptable for kcptun's obfuscation-grade modes and must not be reused for secrets
 * that matter.
 */
#ifndef FERRY_CRYPTO_TWOFISH_H
#define FERRY_CRYPTO_TWOFISH_H
#include <stddef.h>
#include <stdint.h>

#define TWOFISH_BLOCK_BYTES 16
#define TWOFISH_ROUNDS 16
#define TWOFISH_SUBKEYS (8 + 2 * TWOFISH_ROUNDS)	/* K0..K39: whitening + 2 per round */

struct twofish_key {
	uint32_t k[TWOFISH_SUBKEYS];
	uint32_t s[4][256];	/* g() = s[0][b0] ^ s[1][b1] ^ s[2][b2] ^ s[3][b3] */
};

/* key_bytes 16, 24 or 32: 0, else -EINVAL. */
int twofish_setkey(struct twofish_key *tk, const uint8_t *key, size_t key_bytes);
/* One block; in and out may be the same buffer. */
void twofish_encrypt(const struct twofish_key *tk, const uint8_t in[TWOFISH_BLOCK_BYTES],
		     uint8_t out[TWOFISH_BLOCK_BYTES]);

#endif
