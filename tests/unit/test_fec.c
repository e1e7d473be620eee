/*
 * proto/fec: the Reed–Solomon parity rows of spec/kcp.md §2.5 for 1/1, 2/1, 3/2, 4/2 and
 * 10/3; parity of groups captured from Debian's kcptun 20210922 (3/2 and 10/3, --crypt
 * none) rebuilt byte for byte; encode then decode under every erasure pattern of 10/3 and
 * 3/2, in order and shuffled; the seqid wrap; the decoder's duplicate, queue-bound, expiry,
 * late-parity and rebuilt-size rules; FEC off; malformed packets by reason; following a
 * peer with other parameters. Prints encode and rebuild speed (informational).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/fec.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SHARDS 13
#define MAX_DELIVERIES 64

/* ---- captures (spec §2.11 setup, loopback netns): the FEC part of each datagram ---- */

/* kcptun-client --crypt none --nocomp --datashard 3 --parityshard 2 --mtu 120: group 0 */
static const char *const cap_3_2[] = {
	"00000000f100220062d9a4cc51000002bc0600000000000000000000080000000100000003000000",
	"01000000f1005e0062d9a4cc51000002be0600000100000000000000440000000102bc02030000006c696e6520303030"
	"3030206f66207468652066657272792066656320636170747572650a6c696e65203030303031206f6620746865206665"
	"72727920",
	"02000000f1005e0062d9a4cc51000002be06000002000000000000004400000066656320636170747572650a6c696e65"
	"203030303032206f66207468652066657272792066656320636170747572650a6c696e65203030303033206f66207468"
	"65206665",
	"03000000f200220062d9a4cc51000002bc0600000300000000000000080000006667df2263617074191b0b6f4c595e55"
	"1000105f561254070300120d17521f4514171a00050413541613157e191b0b6f4c595e551001105f561354070300120d"
	"17521f45",
	"04000000f200f00062d9a4cc51000002a00600000400000000000000e70000004e53ded05e5b3d25645e143368f6e4de"
	"5d3dbdffb7b1471846dd3262f477a65e263e34dd766cf047d8ec3275645e143368f6e4de5d35bdffb7b7471846dd3262"
	"f477a65e",
};

/* kcptun-client --crypt none --nocomp --datashard 10 --parityshard 3 --mtu 100: group 0 */
static const char *const cap_10_3[] = {
	"00000000f1002200238ef09851000002ce0500000000000000000000080000000100000003000000",
	"01000000f1004a00238ef09851000002cf0500000100000000000000300000000102dc05030000006c696e6520303030"
	"3030206f66207468652066657272792066656320636170747572650a6c696e65",
	"02000000f1004a00238ef09851000002cf050000020000000000000030000000203030303031206f6620746865206665"
	"7272792066656320636170747572650a6c696e65203030303032206f66207468",
	"03000000f1004a00238ef09851000002cf05000003000000000000003000000065206665727279206665632063617074"
	"7572650a6c696e65203030303033206f66207468652066657272792066656320",
	"04000000f1004a00238ef09851000002cf050000040000000000000030000000636170747572650a6c696e6520303030"
	"3034206f66207468652066657272792066656320636170747572650a6c696e65",
	"05000000f1004a00238ef09851000002cf050000050000000000000030000000203030303035206f6620746865206665"
	"7272792066656320636170747572650a6c696e65203030303036206f66207468",
	"06000000f1004a00238ef09851000002cf05000006000000000000003000000065206665727279206665632063617074"
	"7572650a6c696e65203030303037206f66207468652066657272792066656320",
	"07000000f1004a00238ef09851000002cf050000070000000000000030000000636170747572650a6c696e6520303030"
	"3038206f66207468652066657272792066656320636170747572650a6c696e65",
	"08000000f1004a00238ef09851000002cf050000080000000000000030000000203030303039206f6620746865206665"
	"7272792066656320636170747572650a6c696e65203030303130206f66207468",
	"09000000f1004a00238ef09851000002cf05000009000000000000003000000065206665727279206665632063617074"
	"7572650a6c696e65203030303131206f66207468652066657272792066656320",
	"0a000000f2001c00238ef098510000024e0500000a00000000000000590000001c19411012cab42d21b933db1b4b49fc"
	"73ce8a15ff89f515048eaffbe0f0f8f0dab390cdf5e70c4a109119d821b933db",
	"0b000000f200d700238ef09851000002590500000b00000000000000560000001c372e5b129ab42db6658ae3c1fcfe4b"
	"c49150bbfe53b7de3c54aec3d19a492adb8bda17bf83120844fb214eb6658ae3",
	"0c000000f2005900238ef09851000002700500000c00000000000000e0000000b15abf1e212b6dfe90127c3a5ccf85fe"
	"975360d738255f7562fdc24b5150f2a61132c9f4c341ba55ab3db8b190127c3a",
};


/* ---- a recording deliver function ---- */

struct sink {
	int n;
	size_t len[MAX_DELIVERIES];
	bool regular[MAX_DELIVERIES];
	uint8_t b[MAX_DELIVERIES][FEC_MAX_PKT_BYTES];
};

static void sink_fn(void *ctx, const uint8_t *kcp, size_t n, bool regular)
{
	struct sink *s = ctx;

	CHECK(n <= FEC_MAX_SHARD_BYTES - 2);
	if (s->n >= MAX_DELIVERIES || n > FEC_MAX_PKT_BYTES)
		return;
	s->len[s->n] = n;
	s->regular[s->n] = regular;
	memcpy(s->b[s->n], kcp, n);
	s->n++;
}

static struct sink sink;

static int feed(struct fec_dec *d, uint32_t now, const uint8_t *p, size_t n)
{
	return fec_dec_input(d, now, p, n, sink_fn, &sink);
}

/* ---- a generated group: ds data packets of random lengths, then ps parity packets ---- */

struct pkt {
	size_t n;
	uint8_t b[FEC_MAX_PKT_BYTES];
};

struct group {
	int ds, ps;
	struct pkt p[MAX_SHARDS];
};

/* KCP bytes of data shard i: byte 0 = i, byte 1 = the group tag, then random. */
static void group_make(struct fec_enc *e, struct group *g, int ds, int ps, uint8_t tag, size_t maxlen)
{
	g->ds = ds;
	g->ps = ps;
	for (int i = 0; i < ds; i++) {
		struct pkt *p = &g->p[i];
		size_t kcp = 2 + test_rng_below((uint32_t)(maxlen - FEC_DATA_HDR_BYTES - 1));

		p->n = FEC_DATA_HDR_BYTES + kcp;
		for (size_t k = FEC_DATA_HDR_BYTES; k < p->n; k++)
			p->b[k] = (uint8_t)test_rng();
		p->b[FEC_DATA_HDR_BYTES] = (uint8_t)i;
		p->b[FEC_DATA_HDR_BYTES + 1] = tag;
		CHECK_EQ(fec_enc_data(e, p->b, p->n), i == ds - 1 ? ps : 0);
	}
	for (int j = 0; j < ps; j++) {
		struct pkt *p = &g->p[ds + j];

		p->n = fec_enc_parity(e, j, p->b, sizeof(p->b));
		CHECK(p->n > FEC_HDR_BYTES);
	}
}

/* Which data shards of g the sink holds (bit i), each checked against the original. */
static unsigned sink_data_mask(const struct group *g, uint8_t tag, int *rebuilt)
{
	unsigned mask = 0;

	*rebuilt = 0;
	for (int k = 0; k < sink.n; k++) {
		int i = sink.len[k] >= 2 ? sink.b[k][0] : -1;

		if (i < 0 || i >= g->ds || sink.b[k][1] != tag) {
			CHECK(!"delivery from no shard of the group");
			continue;
		}
		CHECK_EQ(sink.len[k], g->p[i].n - FEC_DATA_HDR_BYTES);
		CHECK(!memcmp(sink.b[k], g->p[i].b + FEC_DATA_HDR_BYTES, sink.len[k]));
		mask |= 1u << i;
		*rebuilt += !sink.regular[k];
	}
	return mask;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* ---- the code ---- */

static void check_rows(int ds, int ps, const uint8_t *want)
{
	uint8_t rows[MAX_SHARDS * MAX_SHARDS];

	memset(rows, 0xee, sizeof(rows));
	CHECK_EQ(fec_rs_parity_rows(ds, ps, rows), 0);
	for (int i = 0; i < ds * ps; i++)
		if (rows[i] != want[i]) {
			fprintf(stderr, "  %d/%d: coefficient %d is %u, expected %u\n", ds, ps, i, rows[i], want[i]);
			CHECK(0);
		}
}

static void test_fec_parity_rows_match_spec(void)
{
	static const uint8_t r1_1[] = { 1 };
	static const uint8_t r2_1[] = { 3, 2 };
	static const uint8_t r3_2[] = { 1, 1, 1, 15, 8, 6 };
	static const uint8_t r4_2[] = { 27, 28, 18, 20, 28, 27, 20, 18 };
	static const uint8_t r10_3[] = {
		129, 150, 175, 184, 210, 196, 254, 232, 3, 2,
		150, 129, 184, 175, 196, 210, 232, 254, 2, 3,
		191, 214, 98, 10, 6, 111, 223, 183, 5, 4,
	};

	check_rows(1, 1, r1_1);
	check_rows(2, 1, r2_1);
	check_rows(3, 2, r3_2);
	check_rows(4, 2, r4_2);
	check_rows(10, 3, r10_3);
	CHECK_EQ(fec_rs_parity_rows(0, 1, (uint8_t[1]){ 0 }), -EINVAL);
}

/* Re-encodes the captured data packets; the parity must be kcptun's, byte for byte. */
static void check_capture_parity(const char *const *cap, int ds, int ps)
{
	struct fec_enc *e = fec_enc_new(ds, ps);
	struct pkt in, mine;

	CHECK(e != NULL);
	if (!e)
		return;
	for (int i = 0; i < ds; i++) {
		in.n = test_unhex(cap[i], in.b, sizeof(in.b));
		mine = in;
		memset(mine.b, 0xaa, FEC_DATA_HDR_BYTES);
		CHECK_EQ(fec_enc_data(e, mine.b, mine.n), i == ds - 1 ? ps : 0);
		CHECK(!memcmp(mine.b, in.b, in.n));
	}
	for (int j = 0; j < ps; j++) {
		in.n = test_unhex(cap[ds + j], in.b, sizeof(in.b));
		mine.n = fec_enc_parity(e, j, mine.b, sizeof(mine.b));
		CHECK_EQ(mine.n, in.n);
		CHECK(mine.n == in.n && !memcmp(mine.b, in.b, in.n));
	}
	fec_enc_free(e);
}

static void test_fec_encoder_reproduces_kcptun_parity(void)
{
	check_capture_parity(cap_3_2, 3, 2);
	check_capture_parity(cap_10_3, 10, 3);
}

/* Loses each captured data packet in turn: the decoder rebuilds it from kcptun's parity. */
static void check_capture_rebuild(const char *const *cap, int ds, int ps)
{
	for (int lost = 0; lost < ds; lost++) {
		struct fec_dec *d = fec_dec_new(ds, ps);
		struct pkt lost_pkt;

		lost_pkt.n = test_unhex(cap[lost], lost_pkt.b, sizeof(lost_pkt.b));
		memset(&sink, 0, sizeof(sink));
		for (int i = 0; i < ds + ps; i++) {
			struct pkt p;

			if (i == lost)
				continue;
			p.n = test_unhex(cap[i], p.b, sizeof(p.b));
			CHECK_EQ(feed(d, 1000, p.b, p.n), 0);
		}
		CHECK_EQ(sink.n, ds);
		CHECK(!sink.regular[ds - 1]);
		CHECK_EQ(sink.len[ds - 1], lost_pkt.n - FEC_DATA_HDR_BYTES);
		CHECK(!memcmp(sink.b[ds - 1], lost_pkt.b + FEC_DATA_HDR_BYTES, lost_pkt.n - FEC_DATA_HDR_BYTES));
		CHECK_EQ(fec_dec_stats(d)->recovered, 1);
		CHECK_EQ(fec_dec_stats(d)->late, ps - 1);
		fec_dec_free(d);
	}
}

static void test_fec_decoder_rebuilds_kcptun_packets(void)
{
	check_capture_rebuild(cap_3_2, 3, 2);
	check_capture_rebuild(cap_10_3, 10, 3);
}

static void test_fec_is_fec_reads_the_flag_at_offset_4(void)
{
	uint8_t p[8] = { 0, 0, 0, 0, 0xf1, 0x00, 0, 0 };

	CHECK(fec_is_fec(p, 6));
	p[4] = 0xf2;
	CHECK(fec_is_fec(p, 8));
	CHECK(!fec_is_fec(p, 5));
	p[5] = 0x01;
	CHECK(!fec_is_fec(p, 8));
	/* bare KCP: cmd 81..84 and frg at offset 4..5 */
	p[4] = 81;
	p[5] = 0;
	CHECK(!fec_is_fec(p, 8));
}

/* ---- encoder ---- */

static void test_fec_encoder_headers_and_seqids(void)
{
	struct fec_enc *e = fec_enc_new(3, 2);
	uint8_t pkt[64], par[64];

	memset(pkt, 0x55, sizeof(pkt));
	CHECK_EQ(fec_enc_data(e, pkt, 20), 0);
	CHECK_EQ(get_le32(pkt), 0);
	CHECK_EQ(get_le16(pkt + 4), 0xf1);
	CHECK_EQ(get_le16(pkt + 6), 14);
	CHECK_EQ(fec_enc_parity(e, 0, par, sizeof(par)), 0);	/* no group ready */
	CHECK_EQ(fec_enc_data(e, pkt, 30), 0);
	CHECK_EQ(get_le32(pkt), 1);
	CHECK_EQ(fec_enc_data(e, pkt, 9), 2);
	CHECK_EQ(get_le32(pkt), 2);
	CHECK_EQ(get_le16(pkt + 6), 3);
	/* parity as long as the longest shard (30 - 6) */
	CHECK_EQ(fec_enc_parity(e, 0, par, sizeof(par)), 6 + 24);
	CHECK_EQ(get_le32(par), 3);
	CHECK_EQ(get_le16(par + 4), 0xf2);
	CHECK_EQ(fec_enc_parity(e, 1, par, sizeof(par)), 30);
	CHECK_EQ(get_le32(par), 4);
	CHECK_EQ(fec_enc_parity(e, 2, par, sizeof(par)), 0);
	CHECK_EQ(fec_enc_parity(e, -1, par, sizeof(par)), 0);
	CHECK_EQ(fec_enc_parity(e, 1, par, 29), 0);
	CHECK_EQ(fec_enc_data(e, pkt, 20), 0);
	CHECK_EQ(get_le32(pkt), 5);
	CHECK_EQ(fec_enc_parity(e, 0, par, sizeof(par)), 0);	/* a new group started */
	fec_enc_free(e);
}

static void test_fec_encoder_rejects_bad_sizes_and_params(void)
{
	struct fec_enc *e = fec_enc_new(2, 1);
	uint8_t pkt[FEC_MAX_PKT_BYTES + 1];

	memset(pkt, 0x77, sizeof(pkt));
	CHECK_EQ(fec_enc_data(e, pkt, 7), -EINVAL);
	CHECK_EQ(fec_enc_data(e, pkt, FEC_MAX_PKT_BYTES + 1), -EMSGSIZE);
	CHECK_EQ(pkt[0], 0x77);
	CHECK_EQ(fec_enc_data(e, pkt, 8), 0);		/* empty KCP part: size = 2 */
	CHECK_EQ(get_le16(pkt + 6), 2);
	CHECK_EQ(fec_enc_data(e, pkt, FEC_MAX_PKT_BYTES), 1);
	CHECK_EQ(get_le16(pkt + 6), FEC_MAX_PKT_BYTES - 6);
	fec_enc_free(e);

	CHECK(fec_enc_new(0, 1) == NULL);
	CHECK(fec_enc_new(1, 0) == NULL);
	CHECK(fec_enc_new(255, 1) == NULL);
	CHECK(fec_enc_new(-1, 3) == NULL);
	e = fec_enc_new(254, 1);
	CHECK(e != NULL);
	fec_enc_free(e);
	e = fec_enc_new(1, 254);
	CHECK(e != NULL);
	fec_enc_free(e);
}

/* §2.5: paws = floor(0xffffffff / shardSize) * shardSize; the last group ends at paws - 1. */
static void check_wrap(int ds, int ps, uint32_t paws)
{
	struct fec_enc *e = fec_enc_new(ds, ps);
	struct fec_dec *d = fec_dec_new(ds, ps);
	uint32_t shard = (uint32_t)(ds + ps);
	struct group g;
	int rebuilt;

	fec_enc_set_next_seqid(e, paws - shard);
	for (int grp = 0; grp < 2; grp++) {
		group_make(e, &g, ds, ps, (uint8_t)grp, 200);
		for (int i = 0; i < ds + ps; i++)
			CHECK_EQ(get_le32(g.p[i].b), grp ? (uint32_t)i : paws - shard + (uint32_t)i);
		/* the decoder rebuilds data shard 0 of the groups on both sides of the wrap */
		memset(&sink, 0, sizeof(sink));
		for (int i = 1; i < ds + ps; i++)
			CHECK_EQ(feed(d, 5, g.p[i].b, g.p[i].n), 0);
		CHECK_EQ(sink_data_mask(&g, (uint8_t)grp, &rebuilt), (1u << ds) - 1);
		CHECK_EQ(rebuilt, 1);
	}
	CHECK_EQ(fec_dec_stats(d)->mismatch, 0);
	fec_enc_free(e);
	fec_dec_free(d);
}

static void test_fec_seqid_wraps_at_a_group_boundary(void)
{
	check_wrap(10, 3, 4294967287u);	/* 330382099 * 13 */
	check_wrap(3, 2, 4294967295u);	/* 858993459 * 5: seqid 0xffffffff is never used */
	check_wrap(1, 1, 4294967294u);
}

/* ---- every erasure pattern ---- */

static int popcount(unsigned x)
{
	int n = 0;

	for (; x; x &= x - 1)
		n++;
	return n;
}

static void check_every_erasure(int ds, int ps)
{
	int shard = ds + ps;
	struct fec_enc *e = fec_enc_new(ds, ps);
	struct group g;

	test_rng_seed((uint64_t)ds * 1000 + (uint64_t)ps);
	group_make(e, &g, ds, ps, 0x5a, 1400);
	for (unsigned mask = 0; mask < 1u << shard; mask++) {
		int lost = popcount(mask), lost_data = popcount(mask & ((1u << ds) - 1)), rebuilt;
		unsigned have_data = ~mask & ((1u << ds) - 1), all_data = (1u << ds) - 1;
		int order[MAX_SHARDS], n = 0;
		struct fec_dec *d;

		/* in order: every data shard once, rebuilt exactly when lost */
		d = fec_dec_new(ds, ps);
		memset(&sink, 0, sizeof(sink));
		for (int i = 0; i < shard; i++)
			if (!(mask >> i & 1))
				CHECK_EQ(feed(d, 0, g.p[i].b, g.p[i].n), 0);
		if (lost <= ps) {
			CHECK_EQ(sink_data_mask(&g, 0x5a, &rebuilt), all_data);
			CHECK_EQ(sink.n, ds);
			CHECK_EQ(rebuilt, lost_data);
			CHECK_EQ(fec_dec_stats(d)->recovered, lost_data);
			CHECK_EQ(fec_dec_stats(d)->late, ps - lost);
		} else {
			CHECK_EQ(sink_data_mask(&g, 0x5a, &rebuilt), have_data);
			CHECK_EQ(rebuilt, 0);
		}
		fec_dec_free(d);

		/* shuffled: the same data, possibly twice (an original after its rebuilt copy) */
		for (int i = 0; i < shard; i++)
			if (!(mask >> i & 1))
				order[n++] = i;
		for (int i = n - 1; i > 0; i--) {
			int j = (int)test_rng_below((uint32_t)i + 1), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		d = fec_dec_new(ds, ps);
		memset(&sink, 0, sizeof(sink));
		for (int i = 0; i < n; i++)
			CHECK_EQ(feed(d, 0, g.p[order[i]].b, g.p[order[i]].n), 0);
		CHECK_EQ(sink_data_mask(&g, 0x5a, &rebuilt), lost <= ps ? all_data : have_data);
		if (lost > ps)
			CHECK_EQ(rebuilt, 0);
		fec_dec_free(d);
		if (test_failed_)
			break;
	}
	fec_enc_free(e);
}

static void test_fec_recovers_every_erasure_pattern_10_3(void)
{
	check_every_erasure(10, 3);
}

static void test_fec_recovers_every_erasure_pattern_3_2(void)
{
	check_every_erasure(3, 2);
}

/* ---- decoder rules ---- */

static void test_fec_decoder_drops_duplicates(void)
{
	struct fec_enc *e = fec_enc_new(3, 2);
	struct fec_dec *d = fec_dec_new(3, 2);
	struct group g;

	group_make(e, &g, 3, 2, 1, 100);
	memset(&sink, 0, sizeof(sink));
	CHECK_EQ(feed(d, 0, g.p[0].b, g.p[0].n), 0);
	CHECK_EQ(feed(d, 0, g.p[0].b, g.p[0].n), -FEC_E_DUP);
	CHECK_EQ(feed(d, 0, g.p[3].b, g.p[3].n), 0);
	CHECK_EQ(feed(d, 0, g.p[3].b, g.p[3].n), -FEC_E_DUP);
	CHECK_EQ(sink.n, 1);
	CHECK_EQ(fec_dec_stats(d)->err[FEC_E_DUP], 2);
	CHECK_EQ(fec_dec_stats(d)->data_in, 1);
	CHECK_EQ(fec_dec_stats(d)->parity_in, 1);
	/* a third distinct packet completes the group: shards 1 and 2 are rebuilt */
	CHECK_EQ(feed(d, 0, g.p[4].b, g.p[4].n), 0);
	CHECK_EQ(sink.n, 3);
	CHECK_EQ(fec_dec_stats(d)->recovered, 2);
	fec_enc_free(e);
	fec_dec_free(d);
}

static void test_fec_decoder_drops_late_parity_of_a_finished_group(void)
{
	struct fec_enc *e = fec_enc_new(3, 2);
	struct fec_dec *d = fec_dec_new(3, 2);
	struct group g;

	group_make(e, &g, 3, 2, 1, 100);
	memset(&sink, 0, sizeof(sink));
	for (int i = 0; i < 5; i++)
		CHECK_EQ(feed(d, 0, g.p[i].b, g.p[i].n), 0);
	CHECK_EQ(sink.n, 3);
	CHECK_EQ(fec_dec_stats(d)->late, 2);
	CHECK_EQ(fec_dec_stats(d)->parity_in, 0);
	/* a data packet of the finished group still reaches KCP (it may be the original of a rebuilt one) */
	CHECK_EQ(feed(d, 0, g.p[1].b, g.p[1].n), 0);
	CHECK_EQ(sink.n, 4);
	CHECK(sink.regular[3]);
	fec_enc_free(e);
	fec_dec_free(d);
}

/*
 * Group A gets ds - 1 packets (one data lost). Then 3 * shard packets of groups far ahead,
 * one each: A falls out of the bounded queue, and its last parity rebuilds nothing. Without
 * the flood the same parity rebuilds the lost packet.
 */
static void check_queue_bound(bool flood)
{
	struct fec_enc *e = fec_enc_new(3, 2);
	struct fec_dec *d = fec_dec_new(3, 2);
	struct group a, far;

	group_make(e, &a, 3, 2, 1, 100);
	memset(&sink, 0, sizeof(sink));
	CHECK_EQ(feed(d, 0, a.p[0].b, a.p[0].n), 0);
	CHECK_EQ(feed(d, 0, a.p[1].b, a.p[1].n), 0);
	if (flood) {
		for (int i = 0; i < 3 * 5; i++) {
			group_make(e, &far, 3, 2, 2, 100);
			CHECK_EQ(feed(d, 0, far.p[3].b, far.p[3].n), 0);
		}
	}
	CHECK_EQ(feed(d, 0, a.p[3].b, a.p[3].n), 0);
	CHECK_EQ(fec_dec_stats(d)->recovered, flood ? 0 : 1);
	CHECK_EQ(fec_dec_stats(d)->unrecoverable, flood ? 2 : 0);
	fec_enc_free(e);
	fec_dec_free(d);
}

static void test_fec_decoder_queue_holds_three_groups(void)
{
	check_queue_bound(false);
	check_queue_bound(true);
}

/* Entries older than 60 s are dropped: at exactly 60 000 ms the group is still whole. */
static void check_expiry(uint32_t t0, uint32_t later, bool expect_rebuilt)
{
	struct fec_enc *e = fec_enc_new(3, 2);
	struct fec_dec *d = fec_dec_new(3, 2);
	struct group g;

	group_make(e, &g, 3, 2, 1, 100);
	memset(&sink, 0, sizeof(sink));
	CHECK_EQ(feed(d, t0, g.p[0].b, g.p[0].n), 0);
	CHECK_EQ(feed(d, t0, g.p[1].b, g.p[1].n), 0);
	CHECK_EQ(feed(d, t0 + later, g.p[4].b, g.p[4].n), 0);
	CHECK_EQ(fec_dec_stats(d)->recovered, expect_rebuilt);
	CHECK_EQ(fec_dec_stats(d)->expired, expect_rebuilt ? 0 : 2);
	fec_enc_free(e);
	fec_dec_free(d);
}

static void test_fec_decoder_expires_entries_after_60_s(void)
{
	check_expiry(1000, 60000, true);
	check_expiry(1000, 60001, false);
	check_expiry(0xfffff000u, 60001, false);	/* across the wrap of the ms clock */
	check_expiry(0xfffff000u, 59999, true);
}

/* ds = ps = 1: parity is a copy of the data shard, so any shard can be made up. */
static void test_fec_decoder_rejects_rebuilt_shards_with_bad_size(void)
{
	struct fec_dec *d = fec_dec_new(1, 1);
	/* seqid 1 (parity of group 0), shard: size u16 then bytes */
	uint8_t small[] = { 1, 0, 0, 0, 0xf2, 0, 1, 0, 0xaa, 0xbb };
	uint8_t big[] = { 3, 0, 0, 0, 0xf2, 0, 5, 0, 0xaa, 0xbb };
	uint8_t exact[] = { 5, 0, 0, 0, 0xf2, 0, 4, 0, 0xaa, 0xbb };
	uint8_t empty[] = { 7, 0, 0, 0, 0xf2, 0, 2, 0, 0xaa, 0xbb };

	memset(&sink, 0, sizeof(sink));
	CHECK_EQ(feed(d, 0, small, sizeof(small)), 0);	/* size 1 < 2 */
	CHECK_EQ(feed(d, 0, big, sizeof(big)), 0);	/* size 5 > shard length 4 */
	CHECK_EQ(fec_dec_stats(d)->recovered_bad, 2);
	CHECK_EQ(sink.n, 0);
	CHECK_EQ(feed(d, 0, exact, sizeof(exact)), 0);	/* size 4 = length: 2 KCP bytes */
	CHECK_EQ(feed(d, 0, empty, sizeof(empty)), 0);	/* size 2: nothing for KCP, still delivered */
	CHECK_EQ(sink.n, 2);
	CHECK_EQ(sink.len[0], 2);
	CHECK(!sink.regular[0]);
	CHECK_EQ(sink.b[0][0], 0xaa);
	CHECK_EQ(sink.b[0][1], 0xbb);
	CHECK_EQ(sink.len[1], 0);
	CHECK_EQ(fec_dec_stats(d)->recovered, 2);
	fec_dec_free(d);
}

static void test_fec_decoder_rejects_malformed_packets_by_reason(void)
{
	struct fec_dec *d = fec_dec_new(10, 3);
	uint8_t p[FEC_MAX_PKT_BYTES + 1];

	memset(p, 0, sizeof(p));
	p[4] = 0xf1;
	p[6] = 2;
	memset(&sink, 0, sizeof(sink));
	CHECK_EQ(feed(d, 0, p, 7), -FEC_E_SHORT);
	CHECK_EQ(feed(d, 0, p, FEC_MAX_PKT_BYTES + 1), -FEC_E_LONG);
	p[4] = 0xf3;
	CHECK_EQ(feed(d, 0, p, 8), -FEC_E_FLAG);
	p[4] = 0xf1;
	p[5] = 0x01;
	CHECK_EQ(feed(d, 0, p, 8), -FEC_E_FLAG);
	p[5] = 0;
	p[6] = 1;
	CHECK_EQ(feed(d, 0, p, 8), -FEC_E_SIZE);		/* size < 2 */
	p[6] = 5;
	CHECK_EQ(feed(d, 0, p, 10), -FEC_E_SIZE);		/* 6 + 5 > 10 */
	CHECK_EQ(sink.n, 0);
	CHECK_EQ(fec_dec_stats(d)->err[FEC_E_SHORT], 1);
	CHECK_EQ(fec_dec_stats(d)->err[FEC_E_LONG], 1);
	CHECK_EQ(fec_dec_stats(d)->err[FEC_E_FLAG], 2);
	CHECK_EQ(fec_dec_stats(d)->err[FEC_E_SIZE], 2);
	/* size counts what KCP gets; trailing bytes are not delivered */
	p[6] = 4;
	p[8] = 0x11;
	p[9] = 0x22;
	p[10] = 0x33;
	CHECK_EQ(feed(d, 0, p, 11), 0);
	CHECK_EQ(sink.n, 1);
	CHECK_EQ(sink.len[0], 2);
	CHECK(sink.regular[0]);
	CHECK_STR(fec_err_name(-FEC_E_DUP), "duplicate");
	CHECK_STR(fec_err_name(0), "?");
	fec_dec_free(d);
}

static void test_fec_off_passes_data_and_drops_parity(void)
{
	struct fec_dec *d = fec_dec_new(0, 0);
	struct fec_dec *half = fec_dec_new(10, 0);
	struct fec_enc *e = fec_enc_new(3, 2);
	struct group g;
	int ds, ps;

	CHECK(d != NULL && half != NULL);
	group_make(e, &g, 3, 2, 9, 300);
	memset(&sink, 0, sizeof(sink));
	for (int i = 1; i < 5; i++)
		CHECK_EQ(feed(d, 0, g.p[i].b, g.p[i].n), 0);
	CHECK_EQ(sink.n, 2);
	CHECK(sink.regular[0] && sink.regular[1]);
	CHECK_EQ(fec_dec_stats(d)->parity_ignored, 2);
	CHECK_EQ(fec_dec_stats(d)->recovered, 0);
	/* without a queue there is nothing to compare with: a repeat goes to KCP again */
	CHECK_EQ(feed(d, 0, g.p[1].b, g.p[1].n), 0);
	CHECK_EQ(sink.n, 3);
	fec_dec_params(d, &ds, &ps);
	CHECK_EQ(ds, 0);
	CHECK_EQ(ps, 0);
	CHECK_EQ(feed(half, 0, g.p[3].b, g.p[3].n), 0);
	CHECK_EQ(fec_dec_stats(half)->parity_ignored, 1);
	CHECK(fec_dec_new(200, 56) == NULL);
	CHECK(fec_dec_new(-1, 3) == NULL);
	fec_enc_free(e);
	fec_dec_free(d);
	fec_dec_free(half);
}

/*
 * A decoder set for 10/3 receiving a 3/2 peer: the first parity at a data position (seqid 3)
 * raises the mismatch; the pattern needs two whole runs between edges (data 5..7 between
 * parity 3..4 and 8, as kcp-go's detector does) and is recognised at seqid 8. From then on
 * lost data is rebuilt. Nothing is ever rebuilt with the wrong matrix.
 */
static void test_fec_decoder_follows_a_peer_with_other_params(void)
{
	struct fec_enc *e = fec_enc_new(3, 2);
	struct fec_dec *d = fec_dec_new(10, 3);
	struct group g;
	int ds, ps, rebuilt;

	for (int grp = 0; grp < 6; grp++) {
		group_make(e, &g, 3, 2, (uint8_t)grp, 200);
		memset(&sink, 0, sizeof(sink));
		for (int i = 0; i < 5; i++)
			if (grp < 3 || i != 1)
				CHECK_EQ(feed(d, 0, g.p[i].b, g.p[i].n), 0);
		CHECK_EQ(sink_data_mask(&g, (uint8_t)grp, &rebuilt), 7u);
		CHECK_EQ(rebuilt, grp >= 3);
		fec_dec_params(d, &ds, &ps);
		CHECK_EQ(ds, grp ? 3 : 0);
		CHECK_EQ(ps, grp ? 2 : 0);
	}
	CHECK_EQ(fec_dec_stats(d)->retuned, 1);
	CHECK_EQ(fec_dec_stats(d)->recovered, 3);
	CHECK_EQ(fec_dec_stats(d)->recovered_bad, 0);
	/* parity at seqids 3, 4 and 8, all at 10/3 data positions */
	CHECK_EQ(fec_dec_stats(d)->mismatch, 3);
	fec_enc_free(e);
	fec_dec_free(d);
}

/* The other way: 10/3 does not fit a decoder built for 3/2; data still flows, nothing is rebuilt. */
static void test_fec_decoder_refuses_params_larger_than_built_for(void)
{
	struct fec_enc *e = fec_enc_new(10, 3);
	struct fec_dec *d = fec_dec_new(3, 2);
	struct group g;
	int ds, ps, rebuilt;

	for (int grp = 0; grp < 4; grp++) {
		group_make(e, &g, 10, 3, (uint8_t)grp, 200);
		memset(&sink, 0, sizeof(sink));
		for (int i = 0; i < 13; i++)
			if (grp < 2 || i != 4)
				CHECK_EQ(feed(d, 0, g.p[i].b, g.p[i].n), 0);
		CHECK_EQ(sink_data_mask(&g, (uint8_t)grp, &rebuilt), grp < 2 ? 0x3ffu : 0x3ffu & ~(1u << 4));
		CHECK_EQ(rebuilt, 0);
	}
	fec_dec_params(d, &ds, &ps);
	CHECK_EQ(ds, 0);
	CHECK_EQ(ps, 0);
	/* recognised at seqid 23 (and 26), refused each time */
	CHECK_EQ(fec_dec_stats(d)->tune_refused, 2);
	CHECK_EQ(fec_dec_stats(d)->recovered, 0);
	fec_enc_free(e);
	fec_dec_free(d);
}

/* A long stream with random loss and reordering inside each group, across the seqid wrap. */
static void test_fec_stream_with_loss_recovers_every_group_with_at_most_ps_lost(void)
{
	struct fec_enc *e = fec_enc_new(10, 3);
	struct fec_dec *d = fec_dec_new(10, 3);
	struct group g;
	int groups_ok = 0, groups_short = 0;

	test_rng_seed(77);
	fec_enc_set_next_seqid(e, 4294967287u - 13 * 20);
	for (int grp = 0; grp < 60; grp++) {
		unsigned lost = 0;
		int rebuilt;

		group_make(e, &g, 10, 3, (uint8_t)grp, 1400);
		for (int i = 0; i < 13; i++)
			if (test_rng_below(100) < 12)
				lost |= 1u << i;
		memset(&sink, 0, sizeof(sink));
		for (int i = 0; i < 13; i++)
			if (!(lost >> i & 1))
				CHECK_EQ(feed(d, (uint32_t)grp * 10, g.p[i].b, g.p[i].n), 0);
		if (popcount(lost) <= 3) {
			CHECK_EQ(sink_data_mask(&g, (uint8_t)grp, &rebuilt), 0x3ffu);
			groups_ok++;
		} else {
			CHECK_EQ(sink_data_mask(&g, (uint8_t)grp, &rebuilt), ~lost & 0x3ffu);
			groups_short++;
		}
	}
	CHECK(groups_ok > 30 && groups_short > 0);
	CHECK_EQ(fec_dec_stats(d)->mismatch, 0);
	fec_enc_free(e);
	fec_dec_free(d);
}

/* ---- speed (informational) ---- */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void null_fn(void *ctx, const uint8_t *kcp, size_t n, bool regular)
{
	(*(size_t *)ctx) += n;
}

static void test_fec_speed(void)
{
	struct fec_enc *e = fec_enc_new(10, 3);
	static struct pkt p[13];
	double t0 = now_s(), t;
	size_t bytes = 0, got = 0;
	long groups = 0;

	for (int i = 0; i < 13; i++) {
		p[i].n = 1400;
		for (size_t k = 0; k < p[i].n; k++)
			p[i].b[k] = (uint8_t)(k * 7 + (size_t)i);
	}
	do {
		for (int i = 0; i < 10; i++) {
			fec_enc_data(e, p[i].b, p[i].n);
			bytes += p[i].n;
		}
		for (int j = 0; j < 3; j++)
			fec_enc_parity(e, j, p[10 + j].b, sizeof(p[10 + j].b));
		groups++;
	} while ((t = now_s() - t0) < 0.2);
	printf("  info: fec 10/3 encode, 1400-byte packets: %.0f MB/s of data\n", (double)bytes / t / 1e6);

	/* rebuild 3 lost data packets per group from the 7 others and 3 parity */
	{
		struct fec_dec *d = fec_dec_new(10, 3);
		uint32_t seq = 0;

		bytes = 0;
		groups = 0;
		t0 = now_s();
		do {
			for (int i = 0; i < 13; i++) {
				uint8_t *b = p[i].b;

				b[0] = (uint8_t)seq;
				b[1] = (uint8_t)(seq >> 8);
				b[2] = (uint8_t)(seq >> 16);
				b[3] = (uint8_t)(seq >> 24);
				seq++;
				if (i < 3)
					continue;
				fec_dec_input(d, 0, b, p[i].n, null_fn, &got);
			}
			bytes += 10 * 1400;
			groups++;
		} while ((t = now_s() - t0) < 0.2);
		CHECK_EQ(fec_dec_stats(d)->recovered, 3 * groups);
		printf("  info: fec 10/3 decode with 3 data lost per group: %.0f MB/s of data\n",
		       (double)bytes / t / 1e6);
		fec_dec_free(d);
	}
	fec_enc_free(e);
}

int main(void)
{
	RUN(test_fec_parity_rows_match_spec);
	RUN(test_fec_encoder_reproduces_kcptun_parity);
	RUN(test_fec_decoder_rebuilds_kcptun_packets);
	RUN(test_fec_is_fec_reads_the_flag_at_offset_4);
	RUN(test_fec_encoder_headers_and_seqids);
	RUN(test_fec_encoder_rejects_bad_sizes_and_params);
	RUN(test_fec_seqid_wraps_at_a_group_boundary);
	RUN(test_fec_recovers_every_erasure_pattern_10_3);
	RUN(test_fec_recovers_every_erasure_pattern_3_2);
	RUN(test_fec_decoder_drops_duplicates);
	RUN(test_fec_decoder_drops_late_parity_of_a_finished_group);
	RUN(test_fec_decoder_queue_holds_three_groups);
	RUN(test_fec_decoder_expires_entries_after_60_s);
	RUN(test_fec_decoder_rejects_rebuilt_shards_with_bad_size);
	RUN(test_fec_decoder_rejects_malformed_packets_by_reason);
	RUN(test_fec_off_passes_data_and_drops_parity);
	RUN(test_fec_decoder_follows_a_peer_with_other_params);
	RUN(test_fec_decoder_refuses_params_larger_than_built_for);
	RUN(test_fec_stream_with_loss_recovers_every_group_with_at_most_ps_lost);
	RUN(test_fec_speed);
	TEST_EXIT();
}
