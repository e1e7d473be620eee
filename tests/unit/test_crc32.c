/*
 * core/crc32: the standard check values of CRC-32 (IEEE, zlib's crc32) and CRC-32C
 * (Castagnoli), the iSCSI test patterns of RFC 3720 §B.4 for CRC-32C, and that a CRC run
 * over pieces (the previous result passed on) equals the CRC of the whole buffer.
 */
#include <stdint.h>
#include <string.h>

#include "core/crc32.h"
#include "test.h"

static const char check_input[] = "123456789";

static void test_crc32_ieee_check_value(void)
{
	CHECK_EQ(crc32_ieee(0, check_input, 9), 0xcbf43926u);
	CHECK_EQ(crc32_ieee(0, "The quick brown fox jumps over the lazy dog", 43), 0x414fa339u);
	CHECK_EQ(crc32_ieee(0, "a", 1), 0xe8b7be43u);
}

static void test_crc32c_check_value(void)
{
	CHECK_EQ(crc32c(0, check_input, 9), 0xe3069283u);
	CHECK_EQ(crc32c(0, "a", 1), 0xc1d04330u);
}

/* RFC 3720 §B.4: 32 bytes of zeros, of ones, incrementing and decrementing. */
static void test_crc32c_rfc3720_patterns(void)
{
	uint8_t b[32];

	memset(b, 0, sizeof(b));
	CHECK_EQ(crc32c(0, b, sizeof(b)), 0x8a9136aau);
	memset(b, 0xff, sizeof(b));
	CHECK_EQ(crc32c(0, b, sizeof(b)), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	CHECK_EQ(crc32c(0, b, sizeof(b)), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	CHECK_EQ(crc32c(0, b, sizeof(b)), 0x113fdb5cu);
	/* and the same zeros through CRC-32, to show the two tables differ */
	memset(b, 0, sizeof(b));
	CHECK_EQ(crc32_ieee(0, b, sizeof(b)), 0x190a55adu);
}

static void test_crc_of_nothing_is_the_start_value(void)
{
	CHECK_EQ(crc32_ieee(0, "", 0), 0);
	CHECK_EQ(crc32c(0, "", 0), 0);
	CHECK_EQ(crc32_ieee(0xcbf43926u, "", 0), 0xcbf43926u);
	CHECK_EQ(crc32c(0xe3069283u, "", 0), 0xe3069283u);
}

static void test_crc_check_value_split_at_every_byte(void)
{
	for (size_t i = 0; i <= 9; i++) {
		uint32_t a = crc32_ieee(crc32_ieee(0, check_input, i), check_input + i, 9 - i);
		uint32_t c = crc32c(crc32c(0, check_input, i), check_input + i, 9 - i);

		CHECK_EQ(a, 0xcbf43926u);
		CHECK_EQ(c, 0xe3069283u);
	}
}

/* A random buffer in random pieces (empty pieces included) gives the whole-buffer CRC. */
static void test_crc_random_pieces_equal_whole(void)
{
	uint8_t b[4096];
	uint32_t whole_ieee, whole_c;

	test_rng_seed(32);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)test_rng();
	whole_ieee = crc32_ieee(0, b, sizeof(b));
	whole_c = crc32c(0, b, sizeof(b));
	CHECK(whole_ieee != whole_c);
	for (int round = 0; round < 200; round++) {
		uint32_t ieee = 0, c = 0;
		size_t off = 0;

		while (off < sizeof(b)) {
			size_t k = test_rng_below(300);

			if (k > sizeof(b) - off)
				k = sizeof(b) - off;
			ieee = crc32_ieee(ieee, b + off, k);
			c = crc32c(c, b + off, k);
			off += k;
		}
		CHECK_EQ(ieee, whole_ieee);
		CHECK_EQ(c, whole_c);
	}
}

int main(void)
{
	RUN(test_crc32_ieee_check_value);
	RUN(test_crc32c_check_value);
	RUN(test_crc32c_rfc3720_patterns);
	RUN(test_crc_of_nothing_is_the_start_value);
	RUN(test_crc_check_value_split_at_every_byte);
	RUN(test_crc_random_pieces_equal_whole);
	TEST_EXIT();
}
