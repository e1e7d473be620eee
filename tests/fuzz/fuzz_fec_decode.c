/*
 * libFuzzer target for proto/fec's decoder (spec/kcp.md §2.5), two ways.
 *
 * Byte 0 < 0x80 — raw packets: byte 0 picks the decoder's ds/ps (including FEC off), then
 * records of [time step (1 byte, x 500 ms)] [length (2 bytes LE, mod 1600)] [bytes]. Every
 * packet goes into one decoder. Properties: no crash or sanitizer report; errors are the
 * documented ones; regular deliveries lie inside their packet, rebuilt ones fit a shard;
 * regular deliveries = data_in, rebuilt = recovered.
 *
 * Byte 0 >= 0x80 — a lossy channel: bytes 1..2 give ds (1..12) and ps (1..8), byte 3 where
 * the sequence starts (near the seqid wrap or at 0), then one byte per data packet: its
 * length (bits 0..6, x 3, and 127 means the longest) and whether it is lost (bit 7);
 * parity losses come from the following bytes. Packets of each group (at most MAX_GROUPS
 * groups) go through encoder and decoder in order.
 * Property (differential against the definition of an erasure code): every data packet of a
 * group that lost at most ps packets comes out with its bytes, and nothing else comes out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DS 12
#define MAX_PS 8
/* keeps the sanitizer build at a few hundred inputs per second */
#define MAX_GROUPS 40

static void fail(const char *what, long v)
{
	fprintf(stderr, "%s (%ld)\n", what, v);
	abort();
}

/* ---- raw packets ---- */

static const int params[][2] = { { 0, 0 }, { 1, 1 }, { 3, 2 }, { 10, 3 }, { 2, 4 }, { 5, 0 } };

struct raw_ctx {
	const uint8_t *p;
	size_t n;
	uint64_t regular, rebuilt;
};

static void raw_deliver(void *ctx, const uint8_t *kcp, size_t n, bool regular)
{
	struct raw_ctx *r = ctx;

	if (regular) {
		if (kcp < r->p + FEC_DATA_HDR_BYTES || kcp + n > r->p + r->n)
			fail("regular delivery outside the packet", (long)n);
		r->regular++;
	} else {
		if (n > FEC_MAX_SHARD_BYTES - 2)
			fail("rebuilt delivery longer than a shard", (long)n);
		r->rebuilt++;
	}
}

static void fuzz_raw(const uint8_t *data, size_t size)
{
	const int *pr = params[data[0] % (sizeof(params) / sizeof(params[0]))];
	struct fec_dec *d = fec_dec_new(pr[0], pr[1]);
	struct raw_ctx r = { 0 };
	const struct fec_stats *st;
	uint32_t now = 0xffff0000u;	/* the clock wraps during long inputs */
	size_t off = 1;

	if (!d)
		fail("fec_dec_new", pr[0]);
	while (off + 3 <= size) {
		size_t n = (size_t)(data[off + 1] | data[off + 2] << 8) % 1600;
		int rc;

		now += (uint32_t)data[off] * 500;
		off += 3;
		if (n > size - off)
			n = size - off;
		r.p = data + off;
		r.n = n;
		rc = fec_dec_input(d, now, data + off, n, raw_deliver, &r);
		if (rc > 0 || rc <= -FEC_E_COUNT)
			fail("undocumented error", rc);
		off += n;
	}
	st = fec_dec_stats(d);
	if (st->data_in != r.regular || st->recovered != r.rebuilt)
		fail("stats differ from what was delivered", (long)st->recovered);
	fec_dec_free(d);
}

/* ---- a lossy channel ---- */

struct chan_ctx {
	int ds;
	uint8_t tag;
	unsigned got;			/* data positions delivered */
	uint8_t kcp[MAX_DS][FEC_MAX_PKT_BYTES];
	size_t len[MAX_DS];
};

static void chan_deliver(void *ctx, const uint8_t *kcp, size_t n, bool regular)
{
	struct chan_ctx *c = ctx;
	int i = n >= 2 ? kcp[0] : -1;

	if (i < 0 || i >= c->ds || kcp[1] != c->tag)
		fail("delivery from no packet of the group", (long)n);
	if (n != c->len[i] || memcmp(kcp, c->kcp[i], n))
		fail("delivered bytes differ", i);
	c->got |= 1u << i;
}

static void fuzz_channel(const uint8_t *data, size_t size)
{
	static struct chan_ctx c;
	static uint8_t pkt[MAX_DS + MAX_PS][FEC_MAX_PKT_BYTES];
	size_t plen[MAX_DS + MAX_PS];
	int ds, ps;
	struct fec_enc *e;
	struct fec_dec *d;
	size_t off = 4;

	if (size < 4)
		return;
	ds = 1 + data[1] % MAX_DS;
	ps = 1 + data[2] % MAX_PS;
	e = fec_enc_new(ds, ps);
	d = fec_dec_new(ds, ps);
	if (!e || !d)
		fail("new", ds);
	if (data[3] & 1)
		fec_enc_set_next_seqid(e, 0xffffffffu - (uint32_t)(ds + ps) * (data[3] >> 1));
	c.ds = ds;
	for (uint8_t tag = 0; off + (size_t)(ds + ps) <= size && tag < MAX_GROUPS; tag++) {
		unsigned lost = 0, want;
		int nlost = 0;

		c.tag = tag;
		c.got = 0;
		for (int i = 0; i < ds + ps; i++) {
			uint8_t b = data[off++];

			if (b & 0x80) {
				lost |= 1u << i;
				nlost++;
			}
			if (i >= ds)
				continue;
			c.len[i] = (b & 0x7f) == 0x7f ? FEC_MAX_PKT_BYTES - FEC_DATA_HDR_BYTES : 2 + (size_t)(b & 0x7f) * 3;
			for (size_t k = 2; k < c.len[i]; k++)
				c.kcp[i][k] = (uint8_t)(k * 31 + (size_t)i * 7 + tag);
			c.kcp[i][0] = (uint8_t)i;
			c.kcp[i][1] = tag;
			plen[i] = FEC_DATA_HDR_BYTES + c.len[i];
			memcpy(pkt[i] + FEC_DATA_HDR_BYTES, c.kcp[i], c.len[i]);
			if (fec_enc_data(e, pkt[i], plen[i]) != (i == ds - 1 ? ps : 0))
				fail("fec_enc_data", i);
		}
		for (int j = 0; j < ps; j++) {
			plen[ds + j] = fec_enc_parity(e, j, pkt[ds + j], sizeof(pkt[ds + j]));
			if (!plen[ds + j])
				fail("fec_enc_parity", j);
		}
		for (int i = 0; i < ds + ps; i++)
			if (!(lost >> i & 1) && fec_dec_input(d, 1000, pkt[i], plen[i], chan_deliver, &c))
				fail("fec_dec_input refused an encoder packet", i);
		want = nlost <= ps ? (1u << ds) - 1 : ~lost & ((1u << ds) - 1);
		if (c.got != want)
			fail("delivered set differs from what the code can give", (long)c.got);
	}
	fec_enc_free(e);
	fec_dec_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] < 0x80)
		fuzz_raw(data, size);
	else
		fuzz_channel(data, size);
	return 0;
}
