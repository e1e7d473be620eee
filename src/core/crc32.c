/* Slicing-by-1 CRC-32 and CRC-32C: a 256-entry table per polynomial (reflected form). */
#include "core/crc32.h"

#include <pthread.h>

static uint32_t tab_ieee[256], tab_c[256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_fill(uint32_t *t, uint32_t poly)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
		t[i] = c;
	}
}

static void tab_init(void)
{
	tab_fill(tab_ieee, 0xedb88320u);
	tab_fill(tab_c, 0x82f63b78u);
}

static uint32_t crc_run(const uint32_t *t, uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = t[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t crc32_ieee(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&tab_once, tab_init);
	return crc_run(tab_ieee, crc, p, n);
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&tab_once, tab_init);
	return crc_run(tab_c, crc, p, n);
}
