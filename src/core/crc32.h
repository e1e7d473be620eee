/*
 * CRC-32 (IEEE 802.3, zlib's crc32: kcptun's outer header, spec/kcp.md §2.3) and CRC-32C
 * (Castagnoli: snappy framing, §2.6). Table driven, one table each, built at first use.
 */
#ifndef FERRY_CORE_CRC32_H
#define FERRY_CORE_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* crc = 0 to start; pass the previous result to continue over several pieces. */
uint32_t crc32_ieee(uint32_t crc, const void *p, size_t n);
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
