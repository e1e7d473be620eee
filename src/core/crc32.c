/*
 * Slicing-by-8 CRC-32 and CRC-32C (reflected forms): eight 256-entry tables per polynomial,
 * eight input bytes per step. The tables are built once, before main() runs threads.
 */
#include "core/crc32.h"

#include <string.h>

static uint32_t tab_ieee[8][256], tab_c[8][256];

static void tab_fill(uint32_t t[8][256], uint32_t poly)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
		t[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
}

__attribute__((constructor)) static void crc32_tables(void)
{
	tab_fill(tab_ieee, 0xedb88320u);
	tab_fill(tab_c, 0x82f63b78u);
}

static uint32_t crc_run(const uint32_t t[8][256], uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n >= 8) {
		uint32_t a, b;

		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
		a = __builtin_bswap32(a);
		b = __builtin_bswap32(b);
#endif
		a ^= crc;
		crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^
		      t[3][b & 0xff] ^ t[2][(b >> 8) & 0xff] ^ t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t crc32_ieee(uint32_t crc, const void *p, size_t n)
{
	return crc_run(tab_ieee, crc, p, n);
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
	return crc_run(tab_c, crc, p, n);
}
