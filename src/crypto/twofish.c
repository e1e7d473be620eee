/*
 * Twofish encryption, written from the algorithm description of the AES submission
 * ("Twofish: A 128-Bit Block Cipher", 1998, §4): the q0/q1 byte permutations built from
 * 4-bit t-tables, the MDS matrix over GF(2^8) mod x^8+x^6+x^5+x^3+1 (0x169), the RS code
 * over GF(2^8) mod x^8+x^6+x^3+x^2+1 (0x14D), the h function, the key schedule K0..K39,
 * and 16 Feistel rounds with the PHT and the 1-bit rotations. Not here: decryption (the
 * only user, kcptun's CFB-128, never needs it) and any mode of operation.
 *
 * Everything that depends on the key alone is done in twofish_setkey(): q0/q1 are built
 * on the stack there (512 q evaluations, nothing global, so no initialisation order and
 * no locking), and g() is folded with the MDS multiply into four 256-word tables.
 */
#include <errno.h>
#include <string.h>

#include "crypto/twofish.h"

#define TF_MDS_POLY 0x169
#define TF_RS_POLY 0x14d
/* the key schedule evaluates h at 2i·ρ and (2i+1)·ρ, ρ = 2^24 + 2^16 + 2^8 + 1 */
#define TF_RHO 0x01010101u
#define TF_MAX_KEY_WORDS 4	/* k = key bits / 64 */

/* §4.3.5: the 4-bit permutations t0..t3 of q0 and of q1 */
static const uint8_t tf_t[2][4][16] = {
	{
		{ 0x8, 0x1, 0x7, 0xd, 0x6, 0xf, 0x3, 0x2, 0x0, 0xb, 0x5, 0x9, 0xe, 0xc, 0xa, 0x4 },
		{ 0xe, 0xc, 0xb, 0x8, 0x1, 0x2, 0x3, 0x5, 0xf, 0x4, 0xa, 0x6, 0x7, 0x0, 0x9, 0xd },
		{ 0xb, 0xa, 0x5, 0xe, 0x6, 0xd, 0x9, 0x0, 0xc, 0x8, 0xf, 0x3, 0x2, 0x4, 0x7, 0x1 },
		{ 0xd, 0x7, 0xf, 0x4, 0x1, 0x2, 0x6, 0xe, 0x9, 0xb, 0x3, 0x0, 0x8, 0x5, 0xc, 0xa },
	},
	{
		{ 0x2, 0x8, 0xb, 0xd, 0xf, 0x7, 0x6, 0xe, 0x3, 0x1, 0x9, 0x4, 0x0, 0xa, 0xc, 0x5 },
		{ 0x1, 0xe, 0x2, 0xb, 0x4, 0xc, 0x3, 0x7, 0x6, 0xd, 0xa, 0x5, 0xf, 0x9, 0x0, 0x8 },
		{ 0x4, 0xc, 0x7, 0x5, 0x1, 0x6, 0x9, 0xa, 0x0, 0xe, 0xd, 0x8, 0x2, 0xb, 0x3, 0xf },
		{ 0xb, 0x9, 0x5, 0x1, 0xc, 0x3, 0xd, 0xe, 0x6, 0x4, 0x7, 0xf, 0x2, 0x0, 0x8, 0xa },
	},
};

/* §4.2: MDS[row][column] */
static const uint8_t tf_mds[4][4] = {
	{ 0x01, 0xef, 0x5b, 0x5b },
	{ 0x5b, 0xef, 0xef, 0x01 },
	{ 0xef, 0x5b, 0x01, 0xef },
	{ 0xef, 0x01, 0xef, 0x5b },
};

/* §4.3: RS[row][column], applied to 8 key bytes at a time */
static const uint8_t tf_rs[4][8] = {
	{ 0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e },
	{ 0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5 },
	{ 0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19 },
	{ 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03 },
};

/*
 * §4.3.2, h(): which q each byte lane passes through. Stage j (1..4) is followed by an XOR
 * with byte lane of L[j-1]; stages above k are skipped; stage 0 is the final q before the
 * MDS. tf_qsel[lane][stage], 0 = q0, 1 = q1.
 */
static const uint8_t tf_qsel[4][5] = {
	{ 1, 0, 0, 1, 1 },
	{ 0, 0, 1, 1, 0 },
	{ 1, 1, 0, 0, 0 },
	{ 0, 1, 1, 0, 1 },
};

struct tf_q {
	uint8_t q[2][256];
};

static uint32_t rol32(uint32_t v, int n)
{
	return v << n | v >> (32 - n);
}

static uint32_t ror32(uint32_t v, int n)
{
	return v >> n | v << (32 - n);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint8_t lane(uint32_t w, int i)
{
	return (uint8_t)(w >> (8 * i));
}

/* Multiplication in GF(2^8) modulo the 9-bit polynomial poly. */
static uint8_t gf_mul(uint8_t a, uint8_t b, unsigned poly)
{
	unsigned x = a, r = 0;

	for (; b; b >>= 1) {
		if (b & 1)
			r ^= x;
		x <<= 1;
		if (x & 0x100)
			x ^= poly;
	}
	return (uint8_t)r;
}

static uint8_t ror4(uint8_t v)
{
	return (uint8_t)((v >> 1 | v << 3) & 0xf);
}

/* §4.3.5: one q permutation from its four t-tables, on the two nibbles of x. */
static uint8_t tf_q_eval(const uint8_t t[4][16], uint8_t x)
{
	uint8_t a = x >> 4, b = x & 0xf, a1, b1;

	a1 = a ^ b;
	b1 = (a ^ ror4(b) ^ (uint8_t)(8 * a)) & 0xf;
	a = t[0][a1];
	b = t[1][b1];
	a1 = a ^ b;
	b1 = (a ^ ror4(b) ^ (uint8_t)(8 * a)) & 0xf;
	return (uint8_t)(t[3][b1] << 4 | t[2][a1]);
}

static void tf_q_build(struct tf_q *q)
{
	for (int n = 0; n < 2; n++)
		for (int x = 0; x < 256; x++)
			q->q[n][x] = tf_q_eval(tf_t[n], (uint8_t)x);
}

/* Lane i of h(): x through the q chain keyed by the lane-i bytes of L[0..k). */
static uint8_t tf_chain(const struct tf_q *q, int i, uint8_t x, const uint32_t *l, int k)
{
	for (int j = k; j >= 1; j--)
		x = q->q[tf_qsel[i][j]][x] ^ lane(l[j - 1], i);
	return q->q[tf_qsel[i][0]][x];
}

/* Column i of the MDS matrix times y, as the word it adds to h()'s output. */
static uint32_t tf_mds_column(int i, uint8_t y)
{
	uint32_t z = 0;

	for (int row = 0; row < 4; row++)
		z |= (uint32_t)gf_mul(tf_mds[row][i], y, TF_MDS_POLY) << (8 * row);
	return z;
}

/* §4.3.2 */
static uint32_t tf_h(const struct tf_q *q, uint32_t x, const uint32_t *l, int k)
{
	uint32_t z = 0;

	for (int i = 0; i < 4; i++)
		z ^= tf_mds_column(i, tf_chain(q, i, lane(x, i), l, k));
	return z;
}

/* §4.3: one S-box key word from 8 key bytes through the RS code. */
static uint32_t tf_rs_word(const uint8_t m[8])
{
	uint32_t s = 0;

	for (int row = 0; row < 4; row++) {
		uint8_t v = 0;

		for (int col = 0; col < 8; col++)
			v ^= gf_mul(tf_rs[row][col], m[col], TF_RS_POLY);
		s |= (uint32_t)v << (8 * row);
	}
	return s;
}

int twofish_setkey(struct twofish_key *tk, const uint8_t *key, size_t key_bytes)
{
	uint32_t me[TF_MAX_KEY_WORDS], mo[TF_MAX_KEY_WORDS], sv[TF_MAX_KEY_WORDS];
	struct tf_q q;
	int k;

	if (key_bytes != 16 && key_bytes != 24 && key_bytes != 32)
		return -EINVAL;
	k = (int)(key_bytes / 8);
	tf_q_build(&q);
	for (int i = 0; i < k; i++) {
		me[i] = get_le32(key + 8 * i);
		mo[i] = get_le32(key + 8 * i + 4);
		/* g() takes the S words in reverse order: S = (S_k-1, ..., S_0) */
		sv[k - 1 - i] = tf_rs_word(key + 8 * i);
	}
	for (uint32_t i = 0; i < TWOFISH_SUBKEYS / 2; i++) {
		uint32_t a = tf_h(&q, 2 * i * TF_RHO, me, k);
		uint32_t b = rol32(tf_h(&q, (2 * i + 1) * TF_RHO, mo, k), 8);

		tk->k[2 * i] = a + b;
		tk->k[2 * i + 1] = rol32(a + 2 * b, 9);
	}
	for (int i = 0; i < 4; i++)
		for (int x = 0; x < 256; x++)
			tk->s[i][x] = tf_mds_column(i, tf_chain(&q, i, (uint8_t)x, sv, k));
	memset(me, 0, sizeof(me));
	memset(mo, 0, sizeof(mo));
	memset(sv, 0, sizeof(sv));
	return 0;
}

static uint32_t tf_g0(const struct twofish_key *tk, uint32_t x)
{
	return tk->s[0][lane(x, 0)] ^ tk->s[1][lane(x, 1)] ^ tk->s[2][lane(x, 2)] ^ tk->s[3][lane(x, 3)];
}

/* g(ROL(x, 8)) without the rotation */
static uint32_t tf_g1(const struct twofish_key *tk, uint32_t x)
{
	return tk->s[0][lane(x, 3)] ^ tk->s[1][lane(x, 0)] ^ tk->s[2][lane(x, 1)] ^ tk->s[3][lane(x, 2)];
}

/*
 * §4.1. Two rounds per iteration, the second on the other half, so the words never swap;
 * after the 16th round the halves are where the final "undo the last swap" wants them.
 */
void twofish_encrypt(const struct twofish_key *tk, const uint8_t in[TWOFISH_BLOCK_BYTES],
		     uint8_t out[TWOFISH_BLOCK_BYTES])
{
	uint32_t r0 = get_le32(in) ^ tk->k[0], r1 = get_le32(in + 4) ^ tk->k[1];
	uint32_t r2 = get_le32(in + 8) ^ tk->k[2], r3 = get_le32(in + 12) ^ tk->k[3];
	const uint32_t *rk = tk->k + 8;

	for (int r = 0; r < TWOFISH_ROUNDS; r += 2, rk += 4) {
		uint32_t t0 = tf_g0(tk, r0), t1 = tf_g1(tk, r1);

		r2 = ror32(r2 ^ (t0 + t1 + rk[0]), 1);
		r3 = rol32(r3, 1) ^ (t0 + 2 * t1 + rk[1]);
		t0 = tf_g0(tk, r2);
		t1 = tf_g1(tk, r3);
		r0 = ror32(r0 ^ (t0 + t1 + rk[2]), 1);
		r1 = rol32(r1, 1) ^ (t0 + 2 * t1 + rk[3]);
	}
	put_le32(out, r2 ^ tk->k[4]);
	put_le32(out + 4, r3 ^ tk->k[5]);
	put_le32(out + 8, r0 ^ tk->k[6]);
	put_le32(out + 12, r1 ^ tk->k[7]);
}
