/*
 * kcptun's outer packet (spec/kcp.md §2.2, §2.3): a 16-byte random nonce and the CRC-32 of
 * the rest, then one of kcptun's ciphers over the whole datagram. This is obfuscation, not
 * security: nothing is authenticated (CRC-32 is not a MAC) and nothing stops replays.
 *
 * One object per key and cipher; it is not thread-safe (it keeps a nonce generator and
 * cipher contexts), so each worker thread creates its own. Sealing and opening never
 * allocate and never make a system call.
 */
#ifndef FERRY_CRYPTO_KCPTUN_CRYPT_H
#define FERRY_CRYPTO_KCPTUN_CRYPT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KCPTUN_CRYPT_HDR 20		/* nonce 16 + CRC-32 4 */
#define KCPTUN_CRYPT_NONCE_BYTES 16
#define KCPTUN_CRYPT_PASS_BYTES 32	/* PBKDF2 output, §2.2 */
/* kcp-go's mtuLimit: the xor cipher's table covers this many bytes, larger datagrams keep the rest clear */
#define KCPTUN_CRYPT_XOR_TABLE_BYTES 1500

struct kcptun_crypt;

/*
 * name = the --crypt value, key = the --key text (UTF-8 bytes). Accepted: aes (default of
 * kcptun), aes-128, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, sm4, xor,
 * none, and "null", which Debian's kcptun 20210922 takes as aes (kcptun_crypt_null_is_aes()
 * then says so, for a warning). Returns 0, -EINVAL for an unknown name, -ENOTSUP for a
 * cipher this libcrypto cannot do (blowfish and cast5 without OpenSSL's legacy provider),
 * -ENOMEM.
 */
int kcptun_crypt_new(const char *name, const char *key, struct kcptun_crypt **out);
void kcptun_crypt_free(struct kcptun_crypt *c);

/* The accepted --crypt names, comma separated, for an error message. */
const char *kcptun_crypt_names(void);
/* The cipher actually used ("aes" for "null"). */
const char *kcptun_crypt_name(const struct kcptun_crypt *c);
/* True when the object was made for "null": kcptun 20210922 means aes, newer kcptun means no header. */
bool kcptun_crypt_null_is_aes(const struct kcptun_crypt *c);

/*
 * buf[0..n), n >= KCPTUN_CRYPT_HDR: bytes 0..19 are headroom for the header, the payload
 * follows. Writes a random nonce and the CRC of bytes 20..n, then transforms the whole
 * datagram in place. A buffer shorter than the header is left alone.
 */
void kcptun_crypt_seal(struct kcptun_crypt *c, uint8_t *buf, size_t n);
/* The same with a given nonce instead of a random one (test vectors). */
void kcptun_crypt_seal_nonce(struct kcptun_crypt *c, uint8_t *buf, size_t n,
			     const uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES]);

/*
 * In place: decrypt, check the CRC. Returns 0 (the payload is at buf + 20, n - 20 bytes),
 * -EMSGSIZE when n < 20 (nothing is touched), -EBADMSG on a CRC mismatch (wrong key or
 * cipher, or junk; buf then holds garbage).
 */
int kcptun_crypt_open(struct kcptun_crypt *c, uint8_t *buf, size_t n);

/* §2.2: PBKDF2-HMAC-SHA1(key, "kcp-go", 4096) → 32 bytes. Returns 0 or -ENOMEM/-EINVAL. */
int kcptun_crypt_derive(const char *key, uint8_t pass[KCPTUN_CRYPT_PASS_BYTES]);

#endif
