/*
 * crypto/twofish: known answers from the Twofish AES submission. The single-block vectors
 * are those of the paper's appendix ("Twofish: A 128-Bit Block Cipher", 1998, test vectors
 * for the zero key and the 0123…/FEDC… keys); the iterated chains are the ecb_tbl.txt table
 * of the submission package (I=1..49 per key size; the I=49 values below are also the ones
 * other Twofish implementations' test suites quote): start with key = 0 and plaintext = 0,
 * then 48 times key = (plaintext ‖ key) truncated to the key size and plaintext = the
 * ciphertext just produced; the 49th ciphertext is checked. The
 * chain runs 49 key setups over keys that depend on every earlier output, so one wrong
 * table entry, lane or rotation anywhere shows up.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "crypto/twofish.h"
#include "test.h"


static bool block_is(const uint8_t block[TWOFISH_BLOCK_BYTES], const char *hex)
{
	uint8_t want[TWOFISH_BLOCK_BYTES];

	return test_unhex(hex, want, sizeof(want)) == sizeof(want) && !memcmp(block, want, sizeof(want));
}

static void check_vector(const char *key_hex, const char *pt_hex, const char *ct_hex)
{
	struct twofish_key tk;
	uint8_t key[32], block[TWOFISH_BLOCK_BYTES];
	size_t key_bytes = test_unhex(key_hex, key, sizeof(key));

	CHECK_EQ(test_unhex(pt_hex, block, sizeof(block)), TWOFISH_BLOCK_BYTES);
	CHECK_EQ(twofish_setkey(&tk, key, key_bytes), 0);
	twofish_encrypt(&tk, block, block);
	if (!block_is(block, ct_hex)) {
		fprintf(stderr, "  key %s: expected %s\n", key_hex, ct_hex);
		CHECK(0);
	}
}

static void test_twofish_paper_vectors(void)
{
	check_vector("00000000000000000000000000000000", "00000000000000000000000000000000",
		     "9F589F5CF6122C32B6BFEC2F2AE8C35A");
	check_vector("0000000000000000000000000000000000000000000000000000000000000000",
		     "00000000000000000000000000000000", "57FF739D4DC92C1BD7FC01700CC8216F");
	check_vector("0123456789ABCDEFFEDCBA98765432100011223344556677", "00000000000000000000000000000000",
		     "CFD1D2E5A9BE9CDF501F13B892BD2248");
	check_vector("0123456789ABCDEFFEDCBA987654321000112233445566778899AABBCCDDEEFF",
		     "00000000000000000000000000000000", "37527BE0052334B89F0CFCCAE87CFA20");
}

/* ecb_tbl.txt, I=2 and I=3 of KEYSIZE=256: the first steps of the chain below */
static void test_twofish_ecb_tbl_first_steps(void)
{
	check_vector("0000000000000000000000000000000000000000000000000000000000000000",
		     "57FF739D4DC92C1BD7FC01700CC8216F", "D43BB7556EA32E46F2A282B7D45B4E0D");
	check_vector("57FF739D4DC92C1BD7FC01700CC8216F00000000000000000000000000000000",
		     "D43BB7556EA32E46F2A282B7D45B4E0D", "90AFE91BB288544F2C32DC239B2635E6");
}

static void ecb_tbl_chain(size_t key_bytes, const char *want_i49)
{
	uint8_t key[32] = { 0 }, pt[TWOFISH_BLOCK_BYTES] = { 0 }, ct[TWOFISH_BLOCK_BYTES];
	struct twofish_key tk;

	for (int i = 1; i <= 49; i++) {
		CHECK_EQ(twofish_setkey(&tk, key, key_bytes), 0);
		twofish_encrypt(&tk, pt, ct);
		memmove(key + TWOFISH_BLOCK_BYTES, key, key_bytes - TWOFISH_BLOCK_BYTES);
		memcpy(key, pt, TWOFISH_BLOCK_BYTES);
		memcpy(pt, ct, TWOFISH_BLOCK_BYTES);
	}
	if (!block_is(ct, want_i49)) {
		fprintf(stderr, "  %zu-byte keys: I=49 should be %s\n", key_bytes, want_i49);
		CHECK(0);
	}
}

static void test_twofish_ecb_tbl_chain_ends_at_published_i49(void)
{
	ecb_tbl_chain(16, "5D9D4EEFFA9151575524F115815A12E0");
	ecb_tbl_chain(24, "E75449212BEEF9F4A390BD860A640941");
	ecb_tbl_chain(32, "37FE26FF1CF66175F5DDF4C33B97A205");
}

static void test_twofish_encrypts_in_place(void)
{
	static const uint8_t key[32] = { 1, 2, 3 };
	uint8_t a[TWOFISH_BLOCK_BYTES] = { 9, 8, 7 }, b[TWOFISH_BLOCK_BYTES];
	struct twofish_key tk;

	CHECK_EQ(twofish_setkey(&tk, key, sizeof(key)), 0);
	twofish_encrypt(&tk, a, b);
	twofish_encrypt(&tk, a, a);
	CHECK(!memcmp(a, b, sizeof(a)));
}

static void test_twofish_rejects_other_key_sizes(void)
{
	static const uint8_t key[33];
	struct twofish_key tk;

	CHECK_EQ(twofish_setkey(&tk, key, 0), -EINVAL);
	CHECK_EQ(twofish_setkey(&tk, key, 8), -EINVAL);
	CHECK_EQ(twofish_setkey(&tk, key, 20), -EINVAL);
	CHECK_EQ(twofish_setkey(&tk, key, 33), -EINVAL);
}

int main(void)
{
	RUN(test_twofish_paper_vectors);
	RUN(test_twofish_ecb_tbl_first_steps);
	RUN(test_twofish_ecb_tbl_chain_ends_at_published_i49);
	RUN(test_twofish_encrypts_in_place);
	RUN(test_twofish_rejects_other_key_sizes);
	TEST_EXIT();
}
