/*
 * libFuzzer target for kcptun's outer layers (spec/kcp.md §2.3, §2.5): what a kcptun UDP
 * socket receives goes through crypto/kcptun_crypt (nonce, CRC, cipher) and then, if the
 * flag says so, the FEC header into proto/fec. Byte 0 of the input picks the cipher (key
 * "test"), the rest is the datagram.
 * Properties: no crash or sanitizer report; open returns 0, -EBADMSG, or -EMSGSIZE exactly
 * when the datagram is shorter than 20 bytes; a datagram that opens, sealed again with the
 * nonce it decrypted to, gives back the input bytes; a datagram that opens and carries FEC
 * goes into a 10/3 decoder whose deliveries stay inside the packet (regular) or under the
 * shard size (rebuilt); and the input taken as a payload survives seal → open unchanged
 * (and goes into the decoder the same way when it looks like FEC).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/kcptun_crypt.h"
#include "proto/fec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DATAGRAM 65535

/* appended, never inserted: byte 0 of the corpus files indexes this list */
static const char *const ciphers[] = {
	"aes", "aes-128", "aes-192", "salsa20", "blowfish", "cast5", "3des", "tea", "xtea", "xor", "sm4", "none",
	"twofish",
};
#define NCIPHERS (sizeof(ciphers) / sizeof(ciphers[0]))

static struct kcptun_crypt *objs[NCIPHERS];
static uint8_t buf[KCPTUN_CRYPT_HDR + MAX_DATAGRAM], again[KCPTUN_CRYPT_HDR + MAX_DATAGRAM];

static void fail(const char *what, long v)
{
	fprintf(stderr, "%s (%ld)\n", what, v);
	abort();
}

static struct kcptun_crypt *cipher_obj(size_t i)
{
	if (!objs[i] && kcptun_crypt_new(ciphers[i], "test", &objs[i]))
		fail("kcptun_crypt_new", (long)i);
	return objs[i];
}

struct fec_pkt {
	const uint8_t *p;
	size_t n;
};

static void deliver(void *ctx, const uint8_t *kcp, size_t n, bool regular)
{
	const struct fec_pkt *pkt = ctx;

	if (regular && (kcp < pkt->p + FEC_DATA_HDR_BYTES || kcp + n > pkt->p + pkt->n))
		fail("regular delivery outside the packet", (long)n);
	if (n > FEC_MAX_SHARD_BYTES - 2)
		fail("delivery longer than a shard", (long)n);
}

static void check_fec(const uint8_t *p, size_t n)
{
	struct fec_dec *d = fec_dec_new(10, 3);
	struct fec_pkt pkt = { p, n };
	int rc;

	if (!d)
		fail("fec_dec_new", 0);
	rc = fec_dec_input(d, 1000, p, n, deliver, &pkt);
	if (rc > 0 || rc <= -FEC_E_COUNT)
		fail("undocumented fec error", rc);
	fec_dec_free(d);
}

static void check_open(struct kcptun_crypt *c, const uint8_t *d, size_t n)
{
	int rc;

	memcpy(buf, d, n);
	rc = kcptun_crypt_open(c, buf, n);
	if (n < KCPTUN_CRYPT_HDR) {
		if (rc != -EMSGSIZE || memcmp(buf, d, n))
			fail("short datagram", rc);
		return;
	}
	if (rc == -EBADMSG)
		return;
	if (rc)
		fail("undocumented open error", rc);
	memcpy(again, buf, n);
	kcptun_crypt_seal_nonce(c, again, n, buf);
	if (memcmp(again, d, n))
		fail("sealing the opened datagram does not give it back", (long)n);
	if (fec_is_fec(buf + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR))
		check_fec(buf + KCPTUN_CRYPT_HDR, n - KCPTUN_CRYPT_HDR);
}

static void check_round_trip(struct kcptun_crypt *c, const uint8_t *d, size_t n)
{
	uint8_t nonce[KCPTUN_CRYPT_NONCE_BYTES] = { 0 };

	memcpy(nonce, d, n < sizeof(nonce) ? n : sizeof(nonce));
	memcpy(buf + KCPTUN_CRYPT_HDR, d, n);
	kcptun_crypt_seal_nonce(c, buf, KCPTUN_CRYPT_HDR + n, nonce);
	if (kcptun_crypt_open(c, buf, KCPTUN_CRYPT_HDR + n))
		fail("sealed payload does not open", (long)n);
	if (memcmp(buf + KCPTUN_CRYPT_HDR, d, n) || memcmp(buf, nonce, sizeof(nonce)))
		fail("payload changed by seal/open", (long)n);
	/* a valid CRC is hard to guess: this is how arbitrary FEC headers get past the crypt layer */
	if (fec_is_fec(buf + KCPTUN_CRYPT_HDR, n))
		check_fec(buf + KCPTUN_CRYPT_HDR, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kcptun_crypt *c;

	if (size < 1 || size - 1 > MAX_DATAGRAM)
		return 0;
	c = cipher_obj(data[0] % NCIPHERS);
	check_open(c, data + 1, size - 1);
	check_round_trip(c, data + 1, size - 1);
	return 0;
}
