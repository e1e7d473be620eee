/*
 * proto/secure (spec/kcp.md §3, test list §3.13 and §4.2): the reference values of §3.13
 * byte for byte (HMAC/HKDF, the Noise core on the cacophony vector, msg 1/msg 2, keys, DATA,
 * two rekeys, cookie, fingerprint), every negative case as a silent drop under its own counter
 * with no state change, the replay window against a set model, and end-to-end runs of an
 * initiator and a responder over a simulated link (loss, reordering, filters) in virtual time:
 * handshake, wrong PSK, replay of every packet, rekey by count and by time, lost rekey
 * messages, the collision rule, amplification.
 *
 * The constants below are the output of tests/vectors/secure_vectors.py, an independent
 * Python reference (python3-cryptography + hashlib/hmac); regenerate with
 *   /usr/bin/python3 tests/vectors/secure_vectors.py --check
 * Randomness is served by a hook: scripted bytes where a vector needs them, a seeded
 * xorshift otherwise, so every run is the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sodium.h"
#include "proto/secure.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- reference values (secure_vectors.py) ---- */

static const uint8_t v_hmac_00_1f_empty[64] = {
	0x17, 0x80, 0x56, 0xd9, 0x0b, 0xad, 0xbc, 0xe5, 0xe5, 0x33, 0xb4, 0xb4,
	0x35, 0x9a, 0x64, 0xb5, 0x1c, 0xd9, 0x5e, 0x3e, 0xd8, 0x12, 0x62, 0xb6,
	0x21, 0x37, 0xf5, 0xde, 0x78, 0xde, 0x75, 0x23, 0x01, 0x2b, 0x4f, 0x82,
	0x83, 0x99, 0x11, 0xb3, 0x87, 0x70, 0x2b, 0xda, 0x13, 0x15, 0x97, 0xfb,
	0x0a, 0x8f, 0x38, 0x30, 0x48, 0x06, 0xf1, 0x62, 0x18, 0x4a, 0xb1, 0xc2,
	0x29, 0xf5, 0x15, 0xdb,
};
static const uint8_t v_hkdf_ikm0[192] = {
	0x03, 0xbe, 0x09, 0x46, 0xaf, 0xb6, 0x2e, 0x33, 0xdc, 0xc2, 0xe8, 0xcb,
	0x76, 0xdf, 0xad, 0x47, 0x66, 0x3d, 0x28, 0x4d, 0x81, 0xc0, 0xbd, 0xe9,
	0x63, 0xf3, 0x2a, 0x28, 0x3d, 0xed, 0xe2, 0x21, 0xbe, 0x2b, 0x9e, 0x3a,
	0x86, 0xfa, 0x82, 0x93, 0x42, 0x34, 0xd2, 0xa6, 0xed, 0x33, 0x1f, 0xb6,
	0x64, 0xa3, 0xe6, 0x70, 0x25, 0x2b, 0x94, 0x54, 0xda, 0x9e, 0xd2, 0x56,
	0x7b, 0x43, 0x5e, 0x11, 0x84, 0x81, 0xb3, 0x85, 0x94, 0x0e, 0xa1, 0xdd,
	0xc1, 0xe3, 0x72, 0x43, 0xd3, 0x4e, 0x6a, 0x00, 0xd9, 0xe3, 0x5f, 0xe8,
	0x68, 0x44, 0xb7, 0x5b, 0xe2, 0xf9, 0xd0, 0x84, 0xef, 0xcb, 0xf4, 0xa9,
	0xd1, 0x8c, 0x76, 0x46, 0x45, 0xba, 0xf5, 0x26, 0x27, 0x07, 0xef, 0xcb,
	0x49, 0x0c, 0x9d, 0xdf, 0xcc, 0x81, 0xc7, 0x8f, 0xf7, 0x5e, 0x1e, 0x72,
	0x74, 0x28, 0xf0, 0x5b, 0x9f, 0xee, 0x85, 0x7f, 0xac, 0xdb, 0xd8, 0xe7,
	0xa2, 0x51, 0x55, 0x5a, 0x14, 0x05, 0x5d, 0x23, 0xf4, 0xf4, 0x39, 0x95,
	0x04, 0x2f, 0xdf, 0xc8, 0x17, 0x86, 0x35, 0xfd, 0x72, 0xba, 0xc0, 0x39,
	0x32, 0xf5, 0x2c, 0x54, 0xf6, 0x08, 0x73, 0x0b, 0x82, 0xd6, 0x5e, 0xce,
	0x0e, 0xbd, 0x61, 0x0c, 0xa5, 0x89, 0x43, 0xed, 0xaa, 0x3a, 0x99, 0x28,
	0x71, 0x5c, 0xdf, 0xcd, 0x30, 0x9c, 0x4e, 0x57, 0x49, 0xe0, 0x3f, 0x26,
};
static const uint8_t v_hkdf_ikm32[192] = {
	0xc6, 0x8f, 0x24, 0xdf, 0xf0, 0xbf, 0x73, 0x60, 0xa6, 0xf4, 0x67, 0x08,
	0xc3, 0x49, 0x45, 0x3a, 0x7d, 0x51, 0x0b, 0xe3, 0x0e, 0x60, 0x80, 0x9a,
	0xcd, 0xbe, 0xf2, 0x5c, 0xe8, 0x3c, 0x2b, 0x06, 0x9b, 0x9e, 0xc7, 0x76,
	0x07, 0xc2, 0x0f, 0xba, 0x2f, 0xce, 0x90, 0xcd, 0xd3, 0xcd, 0x8e, 0x1e,
	0x00, 0xdb, 0xc1, 0x77, 0x69, 0x01, 0xd3, 0xd6, 0xcc, 0xf9, 0x04, 0x22,
	0xf8, 0x50, 0x4f, 0xff, 0x14, 0x18, 0xe9, 0x9b, 0x2a, 0x19, 0x93, 0x26,
	0x1e, 0x88, 0x9d, 0x0a, 0xe5, 0x31, 0xc9, 0x0a, 0x58, 0x2c, 0x80, 0x7f,
	0xf2, 0x2c, 0xb8, 0xa8, 0xb4, 0x4c, 0xa3, 0x7e, 0xcf, 0x2f, 0x2a, 0x96,
	0x85, 0x21, 0x39, 0x5e, 0x36, 0x76, 0x28, 0xb0, 0xbf, 0xf8, 0xe6, 0xa6,
	0x58, 0xe2, 0x7b, 0xff, 0x08, 0xa4, 0xa3, 0xca, 0xef, 0x51, 0x20, 0xb2,
	0x69, 0x9f, 0x67, 0xcb, 0x29, 0x01, 0x45, 0x0f, 0x82, 0x90, 0x35, 0xc7,
	0x73, 0xbb, 0x36, 0x3e, 0x6f, 0x19, 0x88, 0xae, 0xb9, 0xf5, 0x7a, 0x87,
	0xc4, 0x6e, 0x7e, 0x35, 0xb5, 0x51, 0xf3, 0x47, 0x9f, 0xef, 0x6a, 0x37,
	0x31, 0x31, 0x6b, 0x3a, 0x81, 0x42, 0x1b, 0xc6, 0x7d, 0x00, 0x83, 0x01,
	0xe1, 0xde, 0x30, 0x00, 0x90, 0x51, 0x3c, 0x26, 0x10, 0x3e, 0x08, 0x8a,
	0x2b, 0xa7, 0xe9, 0x73, 0x28, 0x13, 0xb1, 0x48, 0xc9, 0x1e, 0x91, 0x80,
};
static const uint8_t v_hkdf_ikm200[192] = {
	0x9d, 0xea, 0x19, 0xcd, 0x50, 0x95, 0x14, 0xe4, 0xce, 0x69, 0xa0, 0xc7,
	0x68, 0x2a, 0xc9, 0x41, 0xd4, 0x6b, 0x03, 0xd7, 0xc5, 0x20, 0x77, 0x1a,
	0x7b, 0xb2, 0xa1, 0xb1, 0x5e, 0x03, 0xd3, 0x43, 0x34, 0xb1, 0x48, 0x9d,
	0xef, 0x25, 0xe3, 0x97, 0x26, 0x02, 0x1a, 0xc1, 0xf1, 0x6c, 0xf9, 0x8e,
	0xd6, 0xe7, 0x9b, 0xee, 0xcc, 0x69, 0xa2, 0x91, 0x5c, 0x0d, 0x0e, 0xa1,
	0x46, 0x10, 0x9c, 0x80, 0xce, 0x34, 0x27, 0xef, 0xf5, 0xf0, 0x75, 0x46,
	0x5f, 0x9c, 0x0f, 0x5b, 0x3d, 0x4c, 0xd1, 0x14, 0x1f, 0x33, 0xe6, 0x0a,
	0x8c, 0x36, 0xcc, 0x5d, 0x9c, 0x8b, 0xed, 0x13, 0x6b, 0x15, 0xe9, 0x63,
	0x33, 0x77, 0x01, 0xc4, 0x1b, 0xe2, 0x0a, 0x32, 0x67, 0x2c, 0xfd, 0x5d,
	0xe8, 0x50, 0x1c, 0xd3, 0xfa, 0x4b, 0xae, 0x8f, 0x5c, 0xde, 0x7e, 0x24,
	0xa7, 0x35, 0x1d, 0xd6, 0xc7, 0x82, 0x3a, 0xac, 0x83, 0x11, 0x89, 0xc7,
	0x53, 0x00, 0x48, 0xfe, 0x80, 0x69, 0x7a, 0x9e, 0xe1, 0xcf, 0x4a, 0xcc,
	0x7b, 0xb1, 0x8a, 0x6f, 0x79, 0x30, 0xa2, 0x2b, 0x04, 0x82, 0xcf, 0xa9,
	0x3d, 0x4d, 0x77, 0xc7, 0x02, 0xa1, 0x29, 0x86, 0x5a, 0xf2, 0xb4, 0x07,
	0x92, 0x95, 0xdc, 0x22, 0x80, 0x89, 0xcb, 0x4f, 0x47, 0xba, 0xde, 0xaf,
	0x3e, 0xcc, 0xc8, 0xd5, 0x76, 0x9f, 0x81, 0x87, 0xec, 0xe0, 0xac, 0x64,
};
static const uint8_t v_pre_ck[64] = {
	0x28, 0xf7, 0x09, 0xd7, 0xac, 0x54, 0xab, 0xae, 0x5a, 0xa0, 0x9f, 0x73,
	0x57, 0xf8, 0x7d, 0x28, 0x01, 0xea, 0x1f, 0xf9, 0x63, 0xac, 0xf6, 0xd3,
	0xcc, 0xe9, 0x54, 0xe3, 0x0d, 0x62, 0x76, 0xeb, 0xb9, 0x8a, 0x1d, 0x9e,
	0xba, 0x98, 0xa8, 0xae, 0xff, 0x6c, 0x9c, 0x71, 0xad, 0xf2, 0x5f, 0x7e,
	0xd2, 0x36, 0x2f, 0x7a, 0xe4, 0x02, 0x97, 0x68, 0xf9, 0x24, 0x9d, 0x34,
	0x06, 0xa5, 0x94, 0xdc,
};
static const uint8_t v_pre_h[64] = {
	0xcf, 0xa5, 0xb4, 0xfd, 0xfd, 0xa8, 0xc4, 0xcd, 0xf1, 0x64, 0xc1, 0xca,
	0x09, 0x63, 0x92, 0x67, 0x5d, 0xa7, 0xe1, 0x15, 0x28, 0xe2, 0x5f, 0x89,
	0xd3, 0x2c, 0x5a, 0x46, 0x73, 0x40, 0x68, 0x62, 0x89, 0x40, 0x61, 0x67,
	0x29, 0xf4, 0x4a, 0x5f, 0x90, 0xbb, 0x3b, 0x93, 0x05, 0x7f, 0xf8, 0x12,
	0xcc, 0xa7, 0x0d, 0xdd, 0x12, 0x48, 0x85, 0xde, 0x75, 0x19, 0x7a, 0x00,
	0x4f, 0xa3, 0x2f, 0x08,
};
static const uint8_t v_pre_k[32] = {
	0xc1, 0x52, 0x04, 0x7d, 0x21, 0x14, 0x95, 0x32, 0x6f, 0x30, 0xa9, 0x38,
	0xab, 0xc3, 0x85, 0x82, 0x57, 0x67, 0x9e, 0x20, 0xb8, 0xdc, 0x47, 0xa2,
	0xe0, 0x6c, 0x9f, 0xe5, 0x22, 0x7f, 0x68, 0x18,
};
static const uint8_t v_msg1[136] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x35, 0x80, 0x72, 0xd6,
	0x36, 0x58, 0x80, 0xd1, 0xae, 0xea, 0x32, 0x9a, 0xdf, 0x91, 0x21, 0x38,
	0x38, 0x51, 0xed, 0x21, 0xa2, 0x8e, 0x3b, 0x75, 0xe9, 0x65, 0xd0, 0xd2,
	0xcd, 0x16, 0x62, 0x54, 0x9a, 0x43, 0xc8, 0xb8, 0x08, 0x2a, 0x69, 0x51,
	0x14, 0x48, 0x42, 0x65, 0x8a, 0x36, 0xf7, 0x0f, 0x90, 0x94, 0xe3, 0x44,
	0x99, 0x62, 0xae, 0x1f, 0x5b, 0xee, 0xbf, 0xc6, 0x7e, 0x4c, 0x95, 0x51,
	0xa5, 0x3d, 0xa3, 0xb9, 0x57, 0x83, 0x71, 0x3d, 0x0c, 0x04, 0x2c, 0x0b,
	0x28, 0xc4, 0x73, 0x4d, 0xa2, 0x69, 0x8a, 0xf7, 0x4c, 0xcc, 0x81, 0x10,
	0x5d, 0x55, 0x85, 0x16, 0x9d, 0xfa, 0x1e, 0xd8, 0xfc, 0xba, 0xa3, 0xca,
	0xec, 0x78, 0x79, 0xb1, 0x26, 0xdc, 0x15, 0x44, 0x07, 0x48, 0x57, 0xf3,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00,
};
static const uint8_t v_h1[64] = {
	0x04, 0x58, 0xc1, 0xa3, 0xf5, 0x62, 0x25, 0xa0, 0xc2, 0x30, 0xd1, 0xe5,
	0xbc, 0x66, 0x22, 0x7a, 0x2d, 0x47, 0x5e, 0xe3, 0x47, 0x96, 0xd7, 0xd7,
	0xf4, 0xab, 0x51, 0x48, 0x31, 0xff, 0x6c, 0xb1, 0x7c, 0xb6, 0xe2, 0x63,
	0x41, 0x3d, 0x1f, 0xf3, 0xfe, 0x90, 0xc1, 0x71, 0x99, 0x1a, 0x08, 0x4f,
	0x1e, 0x46, 0x14, 0xdf, 0x4b, 0x5a, 0x58, 0xee, 0x41, 0x9f, 0x01, 0xa7,
	0x52, 0x37, 0x0f, 0x14,
};
static const uint8_t v_ck1[64] = {
	0xb5, 0xe1, 0x9b, 0x62, 0x0f, 0x9a, 0x40, 0x2c, 0x95, 0xf1, 0x89, 0x7b,
	0x76, 0x1e, 0x77, 0x70, 0xa8, 0x79, 0xfb, 0xba, 0x7c, 0xa1, 0xdf, 0xd9,
	0x26, 0x76, 0x1d, 0xe3, 0x6e, 0x2b, 0x06, 0xb5, 0x77, 0x6c, 0x06, 0xd7,
	0x46, 0x87, 0xf5, 0x31, 0xb5, 0xcf, 0x78, 0xa9, 0xf5, 0xfc, 0xd4, 0x04,
	0xfa, 0xdd, 0x68, 0xc9, 0xf8, 0x8a, 0xd3, 0x2d, 0x31, 0x5f, 0xfd, 0x47,
	0x2a, 0x9e, 0x89, 0xc6,
};
static const uint8_t v_msg2[76] = {
	0x02, 0x00, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22, 0x11, 0x11, 0x11, 0x11,
	0x79, 0xa6, 0x31, 0xee, 0xde, 0x1b, 0xf9, 0xc9, 0x8f, 0x12, 0x03, 0x2c,
	0xde, 0xad, 0xd0, 0xe7, 0xa0, 0x79, 0x39, 0x8f, 0xc7, 0x86, 0xb8, 0x8c,
	0xc8, 0x46, 0xec, 0x89, 0xaf, 0x85, 0xa5, 0x1a, 0xab, 0xa1, 0x37, 0xb6,
	0x5e, 0x3c, 0xf7, 0x25, 0xdb, 0xa2, 0x32, 0xb1, 0x46, 0x14, 0xb3, 0x3a,
	0x48, 0x65, 0x1a, 0x0a, 0xc5, 0xc7, 0x0c, 0xb3, 0xb7, 0x6c, 0x16, 0xb3,
	0x8f, 0xbd, 0x43, 0xb0,
};
static const uint8_t v_h[64] = {
	0x96, 0xbb, 0x7e, 0xf5, 0x86, 0xe6, 0xd4, 0xed, 0x30, 0x78, 0x55, 0x10,
	0x12, 0xea, 0x53, 0x3a, 0x57, 0x38, 0xb7, 0x21, 0x18, 0x44, 0x5a, 0xc0,
	0x01, 0x29, 0x1c, 0xc0, 0xe9, 0x6e, 0xdd, 0xac, 0x6a, 0x7d, 0x96, 0xe0,
	0x94, 0xc7, 0x6c, 0x3c, 0x93, 0x41, 0x49, 0x96, 0x2e, 0x08, 0x8f, 0xf4,
	0x8f, 0xbe, 0xa4, 0x3d, 0x19, 0x20, 0x9b, 0x0e, 0x45, 0xdc, 0x25, 0x83,
	0x96, 0x6c, 0x7c, 0x3c,
};
static const uint8_t v_k_i2r[32] = {
	0x27, 0x34, 0x11, 0xa2, 0x0d, 0x40, 0x3f, 0xf9, 0xba, 0x52, 0x9d, 0xf1,
	0xd8, 0x01, 0x2e, 0x77, 0x2b, 0xa2, 0x80, 0xec, 0x3b, 0xee, 0x3a, 0x4f,
	0xee, 0x56, 0x40, 0x71, 0x94, 0x7d, 0xc6, 0x64,
};
static const uint8_t v_k_r2i[32] = {
	0xc0, 0x1d, 0xf1, 0xc8, 0x63, 0x72, 0x3d, 0x21, 0x6a, 0x12, 0xb9, 0xcf,
	0xeb, 0xc9, 0xd9, 0xd4, 0x56, 0x67, 0x7d, 0xce, 0x38, 0xc2, 0x41, 0x29,
	0xe4, 0xe7, 0x71, 0x98, 0x88, 0x75, 0x91, 0x11,
};
static const uint8_t v_rk0[64] = {
	0x6f, 0x86, 0x54, 0x6f, 0xfb, 0xbb, 0x50, 0xf2, 0xe6, 0x0d, 0xff, 0x2d,
	0xeb, 0x0f, 0x84, 0x40, 0x0b, 0xa3, 0xc7, 0x6c, 0xbb, 0x6b, 0x50, 0x5f,
	0xa8, 0xc8, 0x14, 0x3f, 0x8a, 0x6b, 0x3a, 0x2e, 0x17, 0x12, 0xd2, 0xc6,
	0x3d, 0x39, 0x00, 0xfc, 0xf7, 0x08, 0x32, 0x7c, 0xb0, 0x06, 0x8f, 0xcc,
	0x72, 0x86, 0x36, 0xf7, 0x16, 0x8a, 0x67, 0x51, 0xa7, 0x87, 0x27, 0x3f,
	0x03, 0x6e, 0xa4, 0x8d,
};
static const uint8_t v_data0[37] = {
	0x04, 0x00, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x8d, 0x03, 0x48, 0x7f, 0x17, 0x10, 0xb8, 0x0d,
	0x70, 0x87, 0x96, 0xa6, 0x61, 0x56, 0xc8, 0xac, 0xa4, 0xa8, 0xb9, 0x1b,
	0x1d,
};
static const uint8_t v_data1[37] = {
	0x04, 0x00, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xbc, 0x4d, 0xb9, 0x61, 0xd6, 0x94, 0x0e, 0x15,
	0x1e, 0x6a, 0xe1, 0xc3, 0x15, 0xf4, 0xcc, 0x0e, 0xd8, 0x57, 0xf1, 0x62,
	0xa1,
};
static const uint8_t v_data2_32[37] = {
	0x04, 0x00, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x98, 0x71, 0x10, 0xb7, 0x23, 0x10, 0x4a, 0x59,
	0x9f, 0x93, 0xb2, 0xd3, 0xca, 0x22, 0x37, 0x70, 0x90, 0xc2, 0xd1, 0x97,
	0x95,
};
static const uint8_t v_a_pub[32] = {
	0x67, 0x5d, 0xd5, 0x74, 0xed, 0x77, 0x89, 0x31, 0x0b, 0x3d, 0x2e, 0x76,
	0x81, 0xf3, 0x79, 0x0b, 0x46, 0x6c, 0x77, 0x3b, 0x15, 0x21, 0xfe, 0xcf,
	0x36, 0x57, 0x79, 0x58, 0x37, 0x1e, 0xa5, 0x2f,
};
static const uint8_t v_b_pub[32] = {
	0x49, 0x3e, 0x82, 0xfc, 0x74, 0x46, 0x4a, 0x59, 0x26, 0x88, 0x17, 0x62,
	0x3d, 0x20, 0x53, 0xc5, 0xeb, 0x8e, 0x2c, 0xc4, 0xa9, 0x88, 0xb4, 0xfe,
	0xe1, 0x79, 0xec, 0x6b, 0x01, 0x0d, 0x53, 0x1d,
};
static const uint8_t v_rk1[64] = {
	0xfd, 0xb7, 0x81, 0xea, 0xef, 0xe9, 0x88, 0xe8, 0xd9, 0xa8, 0xff, 0x5e,
	0xf0, 0x2a, 0x9c, 0x4e, 0x60, 0x00, 0x42, 0x8d, 0xf8, 0xdd, 0x8e, 0x0d,
	0x94, 0x2e, 0x12, 0xb8, 0x7c, 0x3e, 0xf4, 0x0a, 0x33, 0x37, 0xeb, 0xca,
	0x74, 0xb2, 0x18, 0x89, 0x5f, 0xb2, 0xf3, 0xd3, 0x27, 0xbf, 0xac, 0x69,
	0x7e, 0x77, 0x0d, 0x26, 0x23, 0xe1, 0x07, 0xca, 0xe2, 0x43, 0x09, 0x39,
	0xdf, 0xb7, 0x03, 0x9f,
};
static const uint8_t v_k_i2r1[32] = {
	0xf9, 0x57, 0x97, 0x3c, 0x23, 0x6d, 0x5e, 0x0c, 0x1c, 0x6c, 0xb8, 0x43,
	0x62, 0x2c, 0x28, 0x88, 0xae, 0xa1, 0xab, 0x64, 0x87, 0xcf, 0xea, 0xb3,
	0x66, 0x94, 0xa0, 0xde, 0xbb, 0x2e, 0xdc, 0xd3,
};
static const uint8_t v_k_r2i1[32] = {
	0xbf, 0xe9, 0x52, 0x1e, 0x5c, 0x03, 0x44, 0x71, 0x6d, 0x18, 0x66, 0x6a,
	0x2c, 0x2f, 0x03, 0xa0, 0x05, 0xd5, 0x6a, 0x13, 0xf7, 0xbc, 0x11, 0x8d,
	0xee, 0xf5, 0x70, 0x0a, 0x91, 0x65, 0xf7, 0x13,
};
static const uint8_t v_cookie_key[32] = {
	0xaa, 0xb2, 0x87, 0x20, 0xcf, 0x4f, 0xc9, 0x20, 0x0f, 0x76, 0xca, 0xcb,
	0xd4, 0xc8, 0xb7, 0xd6, 0xe4, 0xab, 0x1b, 0xaa, 0xe8, 0xee, 0x43, 0xb4,
	0x92, 0x41, 0x83, 0x34, 0xde, 0xc2, 0xa9, 0x3e,
};
static const uint8_t v_cookie[16] = {
	0x17, 0x1c, 0xc8, 0x0b, 0xe6, 0xa7, 0x60, 0xb2, 0xb9, 0x5a, 0x96, 0x3d,
	0xba, 0x28, 0xcd, 0x43,
};
static const uint8_t v_mac2[16] = {
	0xb4, 0xfd, 0xe8, 0x69, 0x01, 0x93, 0x83, 0xbb, 0xa1, 0x03, 0x11, 0x28,
	0xf2, 0xe1, 0xd5, 0x3d,
};
static const uint8_t v_reply[64] = {
	0x03, 0x00, 0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0xc0, 0xc1, 0xc2, 0xc3,
	0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
	0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xad, 0x9d, 0x70, 0xd5,
	0xa5, 0x24, 0x06, 0xcc, 0xbe, 0x10, 0x48, 0x51, 0xfe, 0x44, 0xaa, 0x37,
	0x1f, 0x68, 0x3d, 0x53, 0x22, 0x9c, 0xff, 0xfc, 0xc3, 0xcb, 0x76, 0x3b,
	0x93, 0x08, 0xb3, 0x4e,
};
static const uint8_t v_fingerprint[8] = {
	0x09, 0x2e, 0xca, 0x4e, 0xe0, 0x2a, 0xbd, 0x2b,
};
static const uint8_t v_hmac32[32] = {
	0x17, 0x80, 0x56, 0xd9, 0x0b, 0xad, 0xbc, 0xe5, 0xe5, 0x33, 0xb4, 0xb4,
	0x35, 0x9a, 0x64, 0xb5, 0x1c, 0xd9, 0x5e, 0x3e, 0xd8, 0x12, 0x62, 0xb6,
	0x21, 0x37, 0xf5, 0xde, 0x78, 0xde, 0x75, 0x23,
};
static const uint8_t v_i2r_confirm[32] = {
	0x04, 0x00, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x48, 0x4b, 0xd1, 0x2b, 0xd0, 0xe1, 0x87, 0xba,
	0x46, 0xb8, 0x6b, 0xeb, 0xd2, 0xd6, 0xfd, 0x16,
};
static const uint8_t v_r2i_hello[37] = {
	0x04, 0x00, 0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xbe, 0xea, 0xf9, 0xf2, 0x92, 0x49, 0x1b, 0x5d,
	0x78, 0xa1, 0x22, 0x12, 0x73, 0x88, 0x59, 0x41, 0x9b, 0x7e, 0x91, 0x30,
	0x63,
};
static const uint8_t v_rekey_init[72] = {
	0x05, 0x00, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x10, 0xe3, 0x01, 0x53, 0x99, 0x67, 0x17, 0x06, 0xc5,
	0xe2, 0x95, 0xda, 0x83, 0x34, 0x92, 0x72, 0x54, 0xf3, 0xa0, 0xdf, 0xab,
	0xc5, 0xb8, 0x64, 0x61, 0x2a, 0x7a, 0x92, 0x4a, 0x78, 0xa0, 0xe6, 0x47,
	0x53, 0xdb, 0x09, 0xe4, 0x19, 0x4c, 0x28, 0x32, 0x40, 0x8c, 0x8b, 0xfa,
	0x7b, 0xa5, 0x13, 0xf7, 0x11, 0x93, 0xe2, 0xd2, 0xe7, 0x23, 0x01, 0x73,
};
static const uint8_t v_rekey_ack[76] = {
	0x05, 0x00, 0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x2a, 0x06, 0xfe, 0x1a, 0xda, 0x04, 0x92, 0x39,
	0x68, 0x64, 0x20, 0x60, 0xd1, 0xda, 0x60, 0x63, 0x54, 0xeb, 0x29, 0x30,
	0x74, 0x17, 0xc1, 0x25, 0xfe, 0xe1, 0xa6, 0x5e, 0xe3, 0x1d, 0x14, 0x31,
	0x0e, 0xf0, 0x8d, 0xee, 0x99, 0xd7, 0xe3, 0xa6, 0xd8, 0x28, 0xc7, 0x94,
	0xd3, 0x8e, 0x2b, 0x95, 0x99, 0x36, 0x4d, 0xbc, 0x06, 0x6f, 0x53, 0xb6,
	0x93, 0x58, 0x32, 0x48,
};
static const uint8_t v_i2r1_confirm[32] = {
	0x04, 0x00, 0x00, 0x00, 0xbb, 0xbb, 0xbb, 0x22, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xdb, 0x5c, 0x6d, 0x3a, 0xc5, 0x4d, 0x8e, 0xa2,
	0xce, 0x01, 0x81, 0x06, 0xe7, 0xef, 0x26, 0x08,
};
static const uint8_t v_i2r1_hello[37] = {
	0x04, 0x00, 0x00, 0x00, 0xbb, 0xbb, 0xbb, 0x22, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xd6, 0x4b, 0x8c, 0x8b, 0x43, 0x27, 0x4b, 0x01,
	0x53, 0x1e, 0xd4, 0x4d, 0xba, 0xaf, 0x4b, 0xd9, 0x70, 0x14, 0xe9, 0x05,
	0x4a,
};
static const uint8_t v_r2i1_hello[37] = {
	0x04, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0x11, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x18, 0xd8, 0x3e, 0x76, 0xda, 0x7d, 0x05, 0x5d,
	0xc8, 0xa2, 0xc7, 0xe3, 0x9f, 0xa5, 0x1c, 0xd5, 0xfb, 0xf6, 0xd4, 0x0c,
	0x33,
};
static const uint8_t v_rk2[64] = {
	0xcc, 0x19, 0x0e, 0x41, 0x99, 0x4d, 0x5c, 0xba, 0x73, 0x0c, 0xd3, 0xb0,
	0x4c, 0x88, 0x06, 0x11, 0xc7, 0x3d, 0xc2, 0x09, 0xfd, 0xae, 0x60, 0x47,
	0x31, 0xf6, 0x33, 0x71, 0xeb, 0xe6, 0xb9, 0x4e, 0x89, 0x7e, 0xa1, 0x6d,
	0x2b, 0xe0, 0x8a, 0x11, 0xde, 0xc3, 0x90, 0x52, 0xfe, 0xfc, 0x95, 0x99,
	0x8e, 0x75, 0xb8, 0x06, 0xfd, 0xcd, 0xe5, 0x8a, 0xf7, 0xe0, 0xaf, 0x82,
	0x81, 0xe3, 0x30, 0x40,
};
static const uint8_t v_k_i2r2[32] = {
	0x35, 0x66, 0x03, 0x79, 0x4f, 0x6d, 0x88, 0x89, 0x8e, 0x51, 0x19, 0x90,
	0x29, 0x82, 0xba, 0xfd, 0x08, 0xb5, 0xfe, 0xc0, 0xe3, 0xbf, 0x12, 0x13,
	0xdf, 0x57, 0x62, 0x0b, 0xf1, 0xca, 0x56, 0x6c,
};
static const uint8_t v_k_r2i2[32] = {
	0x61, 0xfb, 0x2d, 0xf4, 0xf0, 0xd2, 0x83, 0x93, 0x07, 0x9c, 0x5d, 0x7f,
	0x3d, 0x40, 0x1e, 0x6b, 0x73, 0x03, 0xb9, 0x74, 0x03, 0x26, 0x5a, 0x61,
	0x4f, 0x56, 0x90, 0xb5, 0xc3, 0x2e, 0xb5, 0xe2,
};
static const uint8_t v_r2i2_hello[37] = {
	0x04, 0x00, 0x00, 0x00, 0xdd, 0xdd, 0xdd, 0x11, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xcf, 0x6c, 0x30, 0x57, 0x1d, 0x25, 0x97, 0x0c,
	0x42, 0x18, 0xdf, 0xab, 0x23, 0xa5, 0x92, 0xd4, 0x5c, 0x26, 0x63, 0xad,
	0x0a,
};
static const uint8_t v_i2r2_hello[37] = {
	0x04, 0x00, 0x00, 0x00, 0xcc, 0xcc, 0xcc, 0x22, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x3c, 0xf3, 0xf0, 0x44, 0x48, 0xb4, 0x35, 0xf1,
	0xe0, 0xe6, 0x0c, 0xc2, 0x23, 0x6c, 0xf8, 0xc8, 0xb1, 0x3e, 0x43, 0xfe,
	0x15,
};
static const uint8_t v_caco_m1[64] = {
	0xca, 0x35, 0xde, 0xf5, 0xae, 0x56, 0xce, 0xc3, 0x3d, 0xc2, 0x03, 0x67,
	0x31, 0xab, 0x14, 0x89, 0x6b, 0xc4, 0xc7, 0x5d, 0xbb, 0x07, 0xa6, 0x1f,
	0x87, 0x9f, 0x8e, 0x3a, 0xfa, 0x4c, 0x79, 0x44, 0xed, 0x63, 0xdf, 0x2f,
	0x5a, 0x12, 0xae, 0xe1, 0x18, 0x5e, 0xe9, 0xc5, 0x03, 0x05, 0xf2, 0xec,
	0xf1, 0x24, 0x21, 0xdc, 0xb5, 0x3c, 0x04, 0x7a, 0x63, 0xb7, 0x84, 0xcf,
	0x7c, 0x54, 0xa1, 0x05,
};
static const uint8_t v_caco_m2[63] = {
	0x95, 0xeb, 0xc6, 0x0d, 0x2b, 0x1f, 0xa6, 0x72, 0xc1, 0xf4, 0x6a, 0x8a,
	0xa2, 0x65, 0xef, 0x51, 0xbf, 0xe3, 0x8e, 0x7c, 0xcb, 0x39, 0xec, 0x5b,
	0xe3, 0x40, 0x69, 0xf1, 0x44, 0x80, 0x88, 0x43, 0x0e, 0x0f, 0xe7, 0xd5,
	0xc0, 0xc9, 0xb9, 0x2f, 0x74, 0x78, 0x71, 0x6c, 0x88, 0x52, 0xf1, 0xb4,
	0xf3, 0x89, 0xed, 0xb7, 0x5e, 0x3e, 0xbe, 0x54, 0x6f, 0xaf, 0xaf, 0xd5,
	0xb6, 0xf0, 0xf7,
};
static const uint8_t v_caco_h[64] = {
	0xed, 0x5e, 0x96, 0x92, 0xd0, 0xab, 0x50, 0x7b, 0x6c, 0x2b, 0xee, 0xc3,
	0xf5, 0x84, 0xfd, 0x5b, 0x12, 0x78, 0x17, 0xa9, 0xd2, 0x0b, 0x26, 0xcd,
	0x50, 0xaa, 0x72, 0xc5, 0x07, 0x26, 0x0f, 0xa3, 0x1a, 0xa7, 0xd8, 0x8d,
	0xd3, 0x72, 0x33, 0x16, 0x33, 0x8a, 0xf3, 0x7c, 0xe0, 0xb4, 0xcf, 0xb2,
	0x92, 0x3a, 0xeb, 0x84, 0x8b, 0xbf, 0x2b, 0x93, 0x49, 0x11, 0x30, 0x6f,
	0x01, 0xff, 0xc9, 0x63,
};
static const uint8_t v_caco_m3[27] = {
	0x0f, 0xe0, 0x4b, 0x26, 0xdc, 0xfb, 0xb6, 0x9f, 0x8a, 0x6a, 0x94, 0xc6,
	0x1f, 0x1a, 0x26, 0xef, 0x88, 0x76, 0x92, 0x18, 0xd3, 0x2f, 0x5d, 0x17,
	0xc0, 0x68, 0xa6,
};
static const uint8_t v_caco_m4[27] = {
	0x22, 0x39, 0xe0, 0xc5, 0x40, 0xc0, 0x1f, 0x09, 0xeb, 0x1f, 0x4c, 0xc5,
	0x25, 0x8f, 0xd5, 0xac, 0xfe, 0xff, 0xf1, 0x8a, 0x5a, 0x37, 0x73, 0xf2,
	0x1b, 0x7b, 0xfe,
};

#define T0 1000u			/* monotonic ms at the start of each test */
#define UNIX_MS 1700000000000ULL	/* §3.13 unix_time_ms */
#define CONV 0x33333333u
#define I_INDEX 0x11111111u
#define R_INDEX 0x22222222u

static bool reached_t(uint32_t now, uint32_t t)
{
	return (int32_t)(now - t) >= 0;
}

/* ---- randomness: scripted chunks first, then a seeded xorshift ---- */

static struct {
	uint8_t pool[4096];
	size_t used;
	const uint8_t *chunk[64];
	size_t len[64];
	int count, next, mismatch;
	uint64_t x;
} rnd;

static void rnd_hook(void *arg, void *buf, size_t n)
{
	uint8_t *b = buf;

	(void)arg;
	if (rnd.next < rnd.count) {
		if (rnd.len[rnd.next] != n)
			rnd.mismatch++;
		memcpy(b, rnd.chunk[rnd.next], rnd.len[rnd.next] < n ? rnd.len[rnd.next] : n);
		rnd.next++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		rnd.x ^= rnd.x >> 12;
		rnd.x ^= rnd.x << 25;
		rnd.x ^= rnd.x >> 27;
		b[i] = (uint8_t)((rnd.x * 0x2545F4914F6CDD1DULL) >> 56);
	}
}

static void rnd_reset(uint64_t seed)
{
	memset(&rnd, 0, sizeof(rnd));
	rnd.x = seed ? seed : 1;
}

static void rnd_push(const void *p, size_t n)
{
	memcpy(rnd.pool + rnd.used, p, n);
	rnd.chunk[rnd.count] = rnd.pool + rnd.used;
	rnd.len[rnd.count++] = n;
	rnd.used += n;
}

static void rnd_push_range(uint8_t first, size_t n)
{
	uint8_t b[64];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(first + i);
	rnd_push(b, n);
}

/* An index as the 4 random bytes idx_alloc() reads (LE; the top byte is the worker id anyway). */
static void rnd_push_index(uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	rnd_push(b, 4);
}

static bool rnd_all_used(void)
{
	return rnd.next == rnd.count && !rnd.mismatch;
}

/* ---- capture io ---- */

#define CAP_PKTS 64
struct cap {
	int npkts, total;
	uint8_t pkt[CAP_PKTS][256];
	size_t len[CAP_PKTS];
	uint64_t bytes;
	int nev;
	struct secure_event ev[64];
};

static void cap_send(void *ctx, const uint8_t *p, size_t n)
{
	struct cap *c = ctx;

	c->total++;
	c->bytes += n;
	if (c->npkts < CAP_PKTS && n <= sizeof(c->pkt[0])) {
		memcpy(c->pkt[c->npkts], p, n);
		c->len[c->npkts++] = n;
	}
}

static void cap_event(void *ctx, const struct secure_event *ev)
{
	struct cap *c = ctx;

	if (c->nev < (int)N(c->ev)) {
		c->ev[c->nev] = *ev;
		c->ev[c->nev].src = NULL;
		c->nev++;
	}
}

static struct secure_io cap_io(struct cap *c)
{
	struct secure_io io = { c, cap_send, cap_event };

	memset(c, 0, sizeof(*c));
	return io;
}

static int cap_count_events(const struct cap *c, enum secure_event_type t)
{
	int n = 0;

	for (int i = 0; i < c->nev; i++)
		n += c->ev[i].type == t;
	return n;
}

static const struct secure_event *cap_find_event(const struct cap *c, enum secure_event_type t)
{
	for (int i = c->nev - 1; i >= 0; i--)
		if (c->ev[i].type == t)
			return &c->ev[i];
	return NULL;
}

/* ---- configuration and helpers ---- */

static const uint8_t PSK[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static struct secure_cfg cfg_for(bool responder)
{
	struct secure_cfg cfg;

	secure_cfg_default(&cfg);
	memcpy(cfg.psk, PSK, sizeof(PSK));
	cfg.flags = 3;
	cfg.max_datagram = 1350;
	cfg.responder = responder;
	cfg.worker_id = responder ? 0x22 : 0x11;
	return cfg;
}

static struct sockaddr_in src_addr(uint32_t ip, uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(ip);
	a.sin_port = htons(port);
	return a;
}

#define SRC_IP 0xc0000201u	/* 192.0.2.1 */
#define SRC_PORT 4000

static uint64_t drops(const struct secure_stats *st)
{
	return st->bad_len + st->bad_type + st->reserved + st->unknown_index + st->replay + st->too_old +
	       st->auth_fail + st->key_expired + st->conv_mismatch + st->unknown_ctype + st->bad_control +
	       st->not_ready + st->hs_rate + st->hs_auth_fail + st->hs_version + st->hs_index_mismatch +
	       st->hs_bad_mtu + st->hs_skew + st->hs_replay + st->hs_cookie_required + st->hs_cookie_rate +
	       st->hs_half_open_full + st->hs_sessions_full + st->hs_low_order + st->resp_auth_fail +
	       st->resp_mismatch + st->cookie_auth_fail + st->rekey_stale + st->rekey_low_order + st->index_full;
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A KCP-shaped datagram: one PUSH segment with conv, sn and len payload bytes. */
static size_t kcp_dgram(uint8_t *out, uint32_t conv, uint32_t sn, size_t len)
{
	memset(out, 0, 24);
	put32le(out, conv);
	out[4] = 81;
	put32le(out + 12, sn);
	put32le(out + 20, (uint32_t)len);
	for (size_t i = 0; i < len; i++)
		out[24 + i] = (uint8_t)(sn + i);
	return 24 + len;
}

/* Seals a DATA/CONTROL packet by hand (the test knows the keys of the vector handshake). */
static size_t hand_seal(uint8_t *out, uint8_t type, const uint8_t key[32], uint32_t rindex, uint64_t ctr,
			const uint8_t *pt, size_t n)
{
	memset(out, 0, 16);
	out[0] = type;
	put32le(out + 4, rindex);
	put64le(out + 8, ctr);
	sod_aead_seal(out + 16, pt, n, out, 16, ctr, key);
	return n + 32;
}

/*
 * msg 1 built with the Noise core by hand (negative cases): e_pub as given (need not be a
 * valid key), payload fields as given; mac2 zero.
 */
struct m1_fields {
	uint8_t version, flags;
	uint32_t index, index_copy, conv;
	uint64_t unix_ms;
	uint16_t mtu;
	const uint8_t *psk;
	const uint8_t *e_pub;
};

static void craft_msg1(uint8_t out[136], const struct m1_fields *f)
{
	struct secure_noise ns;
	uint8_t pl[64] = { 0 };

	memset(out, 0, 136);
	out[0] = 1;
	put32le(out + 4, f->index);
	memcpy(out + 8, f->e_pub, 32);
	secure_noise_init(&ns, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b", (const uint8_t *)"ferry-secure-v1", 15);
	secure_noise_mix_key_and_hash(&ns, f->psk, 32);
	secure_noise_mix_hash(&ns, out + 8, 32);
	secure_noise_mix_key(&ns, out + 8, 32);
	pl[0] = f->version;
	pl[1] = f->flags;
	put32le(pl + 4, f->index_copy);
	put32le(pl + 8, f->conv);
	put64le(pl + 12, f->unix_ms);
	pl[20] = (uint8_t)f->mtu;
	pl[21] = (uint8_t)(f->mtu >> 8);
	secure_noise_encrypt_and_hash(&ns, pl, sizeof(pl), out + 40);
}

static struct m1_fields m1_default(const uint8_t *e_pub)
{
	struct m1_fields f = { .version = 1, .flags = 3, .index = 0x11000001, .index_copy = 0x11000001,
			       .conv = CONV, .unix_ms = UNIX_MS, .mtu = 1350, .psk = PSK, .e_pub = e_pub };

	return f;
}

static void fresh_e_pub(uint8_t pub[32])
{
	uint8_t priv[32];

	sod_random(priv, sizeof(priv));
	sod_x25519_pub(pub, priv);
}

/* ---- the §3.13 pair: I and R with the fixed inputs ---- */

static struct {
	struct secure_ctx *ci, *cr;
	struct secure_sess *i, *r;
	struct cap capi, capr;
	struct secure_io ioi, ior;
	struct sockaddr_in src;
} V;

static void vpair_free(void)
{
	secure_sess_free(V.i);
	secure_sess_free(V.r);
	secure_ctx_free(V.ci);
	secure_ctx_free(V.cr);
	memset(&V, 0, sizeof(V));
}

/* Sets up I and R of §3.13; with establish, runs msg 2 and I's key confirmation. */
static void vpair_setup(bool establish, struct secure_cfg *ci_cfg, struct secure_cfg *cr_cfg)
{
	struct secure_cfg a = cfg_for(false), b = cfg_for(true);
	uint8_t plain[256];

	vpair_free();
	rnd_reset(42);
	V.ci = secure_ctx_new(ci_cfg ? ci_cfg : &a);
	V.cr = secure_ctx_new(cr_cfg ? cr_cfg : &b);
	V.ioi = cap_io(&V.capi);
	V.ior = cap_io(&V.capr);
	V.src = src_addr(SRC_IP, SRC_PORT);
	rnd_push_index(I_INDEX);
	rnd_push_range(0x20, 32);
	V.i = secure_initiator_new(V.ci, CONV, T0, UNIX_MS, &V.ioi);
	rnd_push_index(R_INDEX);
	rnd_push_range(0x40, 32);
	V.r = secure_responder_accept(V.cr, V.capi.pkt[0], V.capi.len[0], (struct sockaddr *)&V.src, sizeof(V.src),
				      T0, UNIX_MS, &V.ior);
	if (!establish || !V.i || !V.r)
		return;
	secure_open(V.i, T0 + 1, V.capr.pkt[0], V.capr.len[0], plain, sizeof(plain), NULL);
	secure_open(V.r, T0 + 2, V.capi.pkt[1], V.capi.len[1], plain, sizeof(plain), NULL);
}

/* ---- primitives ---- */

static void test_hmac_blake2b_matches_reference(void)
{
	uint8_t key[32], out[64];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	sod_hmac(out, key, sizeof(key), "", 0);
	CHECK(!memcmp(out, v_hmac_00_1f_empty, 64));
	CHECK(!memcmp(out, v_hmac32, 32));
}

static void test_hkdf_one_two_three_outputs_match_reference(void)
{
	const uint8_t *want[3] = { v_hkdf_ikm0, v_hkdf_ikm32, v_hkdf_ikm200 };
	const size_t lens[3] = { 0, 32, 200 };
	uint8_t ck[64], ikm[200], o1[64], o2[64], o3[64];

	for (int i = 0; i < 64; i++)
		ck[i] = (uint8_t)i;
	for (int i = 0; i < 200; i++)
		ikm[i] = (uint8_t)(0xff - i);
	for (int k = 0; k < 3; k++) {
		memset(o1, 0, 64);
		sod_hkdf(ck, 64, ikm, lens[k], o1, NULL, NULL);
		CHECK(!memcmp(o1, want[k], 64));
		memset(o2, 0, 64);
		sod_hkdf(ck, 64, ikm, lens[k], o1, o2, NULL);
		CHECK(!memcmp(o1, want[k], 64) && !memcmp(o2, want[k] + 64, 64));
		memset(o3, 0, 64);
		sod_hkdf(ck, 64, ikm, lens[k], o1, o2, o3);
		CHECK(!memcmp(o1, want[k], 64) && !memcmp(o2, want[k] + 64, 64) && !memcmp(o3, want[k] + 128, 64));
	}
	/* outputs may alias the chaining key (the Noise core relies on it) */
	memcpy(o1, ck, 64);
	sod_hkdf(o1, 64, ikm, 32, o1, o2, o3);
	CHECK(!memcmp(o1, v_hkdf_ikm32, 64) && !memcmp(o3, v_hkdf_ikm32 + 128, 64));
}

static void test_psk_fingerprint_matches_reference(void)
{
	char fp[17], want[17];

	for (int i = 0; i < 8; i++)
		snprintf(want + 2 * i, 3, "%02x", v_fingerprint[i]);
	secure_psk_fingerprint(PSK, fp);
	CHECK_STR(fp, want);
	CHECK_STR(fp, "092eca4ee02abd2b");
}

static void test_psk_parse_accepts_64_hex_with_surrounding_space_only(void)
{
	static const char good[] = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
	char buf[200];
	uint8_t psk[32];

	memset(psk, 0xee, sizeof(psk));
	CHECK_EQ(secure_psk_parse(good, psk), 0);
	CHECK(!memcmp(psk, PSK, 32));
	snprintf(buf, sizeof(buf), " \t%s\r\n", good);
	memset(psk, 0xee, sizeof(psk));
	CHECK_EQ(secure_psk_parse(buf, psk), 0);
	CHECK(!memcmp(psk, PSK, 32));

	memset(psk, 0xee, sizeof(psk));
	snprintf(buf, sizeof(buf), "%.63s", good);
	CHECK_EQ(secure_psk_parse(buf, psk), -EINVAL);
	snprintf(buf, sizeof(buf), "%s0", good);
	CHECK_EQ(secure_psk_parse(buf, psk), -EINVAL);
	snprintf(buf, sizeof(buf), "%.32s %s", good, good + 32);
	CHECK_EQ(secure_psk_parse(buf, psk), -EINVAL);
	snprintf(buf, sizeof(buf), "%.10sg%s", good, good + 11);
	CHECK_EQ(secure_psk_parse(buf, psk), -EINVAL);
	snprintf(buf, sizeof(buf), "0x%.62s", good);
	CHECK_EQ(secure_psk_parse(buf, psk), -EINVAL);
	CHECK_EQ(secure_psk_parse("", psk), -EINVAL);
	CHECK_EQ(secure_psk_parse("\n", psk), -EINVAL);
	CHECK_EQ(secure_psk_parse("0000000000000000000000000000000000000000000000000000000000000000", psk),
		 -EINVAL);
	/* a refused text leaves the output alone */
	for (int i = 0; i < 32; i++)
		CHECK_EQ(psk[i], 0xee);
}

/* ---- Noise core ---- */

static const uint8_t *hexbytes(const char *hex, uint8_t *out)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return out;
}

/* The published cacophony vector for Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b, through the generic core. */
static void test_noise_core_reproduces_cacophony_nnpsk0(void)
{
	struct secure_noise ini, res;
	uint8_t prologue[9], psk[32], ei[32], er[32], p1[16], p2[15], p3[11], p4[11];
	uint8_t m1[64], m2[63], dh[32], out[64], k1[32], k2[32], r1[32], r2[32], ct[32];

	hexbytes("4a6f686e2047616c74", prologue);
	hexbytes("54686973206973206d7920417573747269616e20706572737065637469766521", psk);
	hexbytes("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a", ei);
	hexbytes("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b", er);
	hexbytes("4c756477696720766f6e204d69736573", p1);
	hexbytes("4d757272617920526f746862617264", p2);
	hexbytes("462e20412e20486179656b", p3);
	hexbytes("4361726c204d656e676572", p4);

	secure_noise_init(&ini, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b", prologue, sizeof(prologue));
	secure_noise_init(&res, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b", prologue, sizeof(prologue));
	/* -> psk, e */
	secure_noise_mix_key_and_hash(&ini, psk, 32);
	sod_x25519_pub(m1, ei);
	secure_noise_mix_hash(&ini, m1, 32);
	secure_noise_mix_key(&ini, m1, 32);
	secure_noise_encrypt_and_hash(&ini, p1, sizeof(p1), m1 + 32);
	CHECK(!memcmp(m1, v_caco_m1, sizeof(m1)));
	secure_noise_mix_key_and_hash(&res, psk, 32);
	secure_noise_mix_hash(&res, m1, 32);
	secure_noise_mix_key(&res, m1, 32);
	CHECK_EQ(secure_noise_decrypt_and_hash(&res, m1 + 32, 32, out), 0);
	CHECK(!memcmp(out, p1, sizeof(p1)));
	/* <- e, ee */
	sod_x25519_pub(m2, er);
	secure_noise_mix_hash(&res, m2, 32);
	secure_noise_mix_key(&res, m2, 32);
	CHECK_EQ(sod_x25519(dh, er, m1), 0);
	secure_noise_mix_key(&res, dh, 32);
	secure_noise_encrypt_and_hash(&res, p2, sizeof(p2), m2 + 32);
	CHECK(!memcmp(m2, v_caco_m2, sizeof(m2)));
	secure_noise_mix_hash(&ini, m2, 32);
	secure_noise_mix_key(&ini, m2, 32);
	CHECK_EQ(sod_x25519(dh, ei, m2), 0);
	secure_noise_mix_key(&ini, dh, 32);
	CHECK_EQ(secure_noise_decrypt_and_hash(&ini, m2 + 32, 31, out), 0);
	CHECK(!memcmp(out, p2, sizeof(p2)));
	CHECK(!memcmp(ini.h, v_caco_h, 64));
	CHECK(!memcmp(res.h, v_caco_h, 64));
	/* transport messages, AD empty, nonce 0 each way */
	secure_noise_split(&ini, k1, k2);
	secure_noise_split(&res, r1, r2);
	CHECK(!memcmp(k1, r1, 32) && !memcmp(k2, r2, 32));
	sod_aead_seal(ct, p3, sizeof(p3), NULL, 0, 0, k1);
	CHECK(!memcmp(ct, v_caco_m3, sizeof(v_caco_m3)));
	sod_aead_seal(ct, p4, sizeof(p4), NULL, 0, 0, k2);
	CHECK(!memcmp(ct, v_caco_m4, sizeof(v_caco_m4)));
	/* a flipped tag fails and leaves the state as it was */
	{
		struct secure_noise copy = res;
		uint8_t bad[32];

		memcpy(bad, m1 + 32, 32);
		bad[31] ^= 1;
		secure_noise_init(&res, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b", prologue, sizeof(prologue));
		secure_noise_mix_key_and_hash(&res, psk, 32);
		secure_noise_mix_hash(&res, m1, 32);
		secure_noise_mix_key(&res, m1, 32);
		copy = res;
		CHECK_EQ(secure_noise_decrypt_and_hash(&res, bad, 32, out), -EBADMSG);
		CHECK(!memcmp(&copy, &res, sizeof(res)));
	}
}

/* §3.13 item 2 through the Noise core alone: state after prologue+psk, after msg 1, keys. */
static void test_noise_core_reproduces_ferry_handshake_state(void)
{
	struct secure_noise ns;
	uint8_t ei[32], er[32], e_pub[32], dh[32], pl1[64] = { 0 }, pl2[16] = { 0 }, ct1[80], ct2[32];
	uint8_t t1[64], t2[64], t3[64];

	for (int i = 0; i < 32; i++) {
		ei[i] = (uint8_t)(0x20 + i);
		er[i] = (uint8_t)(0x40 + i);
	}
	secure_noise_init(&ns, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b", (const uint8_t *)"ferry-secure-v1", 15);
	secure_noise_mix_key_and_hash(&ns, PSK, 32);
	CHECK(!memcmp(ns.ck, v_pre_ck, 64) && !memcmp(ns.h, v_pre_h, 64) && !memcmp(ns.k, v_pre_k, 32));
	sod_x25519_pub(e_pub, ei);
	CHECK(!memcmp(e_pub, v_msg1 + 8, 32));
	secure_noise_mix_hash(&ns, e_pub, 32);
	secure_noise_mix_key(&ns, e_pub, 32);
	pl1[0] = 1;
	pl1[1] = 3;
	put32le(pl1 + 4, I_INDEX);
	put32le(pl1 + 8, CONV);
	put64le(pl1 + 12, UNIX_MS);
	pl1[20] = 1350 & 0xff;
	pl1[21] = 1350 >> 8;
	secure_noise_encrypt_and_hash(&ns, pl1, 64, ct1);
	CHECK(!memcmp(ct1, v_msg1 + 40, 80));
	CHECK(!memcmp(ns.h, v_h1, 64) && !memcmp(ns.ck, v_ck1, 64));
	sod_x25519_pub(e_pub, er);
	secure_noise_mix_hash(&ns, e_pub, 32);
	secure_noise_mix_key(&ns, e_pub, 32);
	CHECK_EQ(sod_x25519(dh, er, v_msg1 + 8), 0);
	secure_noise_mix_key(&ns, dh, 32);
	pl2[0] = 1;
	pl2[1] = 3;
	put32le(pl2 + 4, R_INDEX);
	put32le(pl2 + 8, CONV);
	pl2[12] = 1350 & 0xff;
	pl2[13] = 1350 >> 8;
	secure_noise_encrypt_and_hash(&ns, pl2, 16, ct2);
	CHECK(!memcmp(ct2, v_msg2 + 44, 32));
	CHECK(!memcmp(ns.h, v_h, 64));
	sod_hkdf(ns.ck, 64, NULL, 0, t1, t2, t3);
	CHECK(!memcmp(t1, v_k_i2r, 32) && !memcmp(t2, v_k_r2i, 32) && !memcmp(t3, v_rk0, 64));
}

/* §3.13 item 4 (and the second rekey) as formulas: HKDF(rk, dh ‖ A.e ‖ B.e, 3). */
static void test_rekey_derivation_matches_reference(void)
{
	uint8_t a[32], b[32], a_pub[32], b_pub[32], dh[32], ikm[96], rk1[64], u1[64], u2[64];

	for (int i = 0; i < 32; i++) {
		a[i] = (uint8_t)(0x60 + i);
		b[i] = (uint8_t)(0x80 + i);
	}
	sod_x25519_pub(a_pub, a);
	sod_x25519_pub(b_pub, b);
	CHECK(!memcmp(a_pub, v_a_pub, 32) && !memcmp(b_pub, v_b_pub, 32));
	CHECK_EQ(sod_x25519(dh, b, a_pub), 0);
	memcpy(ikm, dh, 32);
	memcpy(ikm + 32, a_pub, 32);
	memcpy(ikm + 64, b_pub, 32);
	sod_hkdf(v_rk0, 64, ikm, 96, rk1, u1, u2);
	CHECK(!memcmp(rk1, v_rk1, 64) && !memcmp(u1, v_k_i2r1, 32) && !memcmp(u2, v_k_r2i1, 32));

	/* second rekey, A = R (a = 0xc0..), B = I (b = 0xe0..): R's public key first, keys by original roles */
	for (int i = 0; i < 32; i++) {
		a[i] = (uint8_t)(0xc0 + i);
		b[i] = (uint8_t)(0xe0 + i);
	}
	sod_x25519_pub(a_pub, a);
	sod_x25519_pub(b_pub, b);
	CHECK_EQ(sod_x25519(dh, a, b_pub), 0);
	memcpy(ikm, dh, 32);
	memcpy(ikm + 32, a_pub, 32);
	memcpy(ikm + 64, b_pub, 32);
	sod_hkdf(v_rk1, 64, ikm, 96, rk1, u1, u2);
	CHECK(!memcmp(rk1, v_rk2, 64) && !memcmp(u1, v_k_i2r2, 32) && !memcmp(u2, v_k_r2i2, 32));
}

/* §3.13 items 5: cookie key, cookie of 192.0.2.1:4000, mac2 of msg 1, by formula. */
static void test_cookie_formulas_match_reference(void)
{
	uint8_t key[32], secret[32], src[6] = { 192, 0, 2, 1, 4000 >> 8, 4000 & 0xff }, cookie[16], mac2[16];

	for (int i = 0; i < 32; i++)
		secret[i] = (uint8_t)(0xa0 + i);
	sod_blake2b(key, 32, PSK, 32, "ferry-secure-v1 cookie key", 26);
	CHECK(!memcmp(key, v_cookie_key, 32));
	sod_blake2b(cookie, 16, secret, 32, src, sizeof(src));
	CHECK(!memcmp(cookie, v_cookie, 16));
	sod_blake2b(mac2, 16, cookie, 16, v_msg1, 120);
	CHECK(!memcmp(mac2, v_mac2, 16));
}

/* ---- sessions on the §3.13 inputs ---- */

static void test_session_msg1_msg2_and_keys_match_reference(void)
{
	uint8_t plain[256];
	const struct secure_event *ev;
	uint64_t chan = 0;

	for (int i = 0; i < 8; i++)
		chan = chan << 8 | v_h[i];
	vpair_setup(false, NULL, NULL);
	CHECK(V.ci && V.cr && V.i && V.r);
	if (!V.i || !V.r)
		return;
	CHECK_EQ(V.capi.npkts, 1);
	CHECK_EQ(V.capi.len[0], 136);
	CHECK(!memcmp(V.capi.pkt[0], v_msg1, 136));
	CHECK_EQ(V.capr.npkts, 1);
	CHECK_EQ(V.capr.len[0], 76);
	CHECK(!memcmp(V.capr.pkt[0], v_msg2, 76));
	CHECK_EQ(secure_state(V.i), SECURE_HANDSHAKE);
	CHECK_EQ(secure_state(V.r), SECURE_HALF_OPEN);
	CHECK_EQ(secure_conv(V.r), CONV);
	CHECK_EQ(secure_flags(V.r), 3);
	CHECK_EQ(secure_ctx_stats(V.cr)->half_open, 1);

	/* msg 2 at I: established, key confirmation = empty DATA under k_i2r, counter 0 */
	CHECK(secure_ctx_lookup(V.ci, V.capr.pkt[0], 76) == V.i);
	CHECK_EQ(secure_open(V.i, T0 + 1, V.capr.pkt[0], 76, plain, sizeof(plain), NULL), 0);
	CHECK_EQ(secure_state(V.i), SECURE_ESTABLISHED);
	CHECK_EQ(secure_flags(V.i), 3);
	CHECK_EQ(secure_max_datagram(V.i), 1350);
	ev = cap_find_event(&V.capi, SECURE_EV_HANDSHAKE_OK);
	CHECK(ev && ev->channel_id == chan && ev->conv == CONV);
	CHECK_EQ(V.capi.npkts, 2);
	CHECK_EQ(V.capi.len[1], sizeof(v_i2r_confirm));
	CHECK(!memcmp(V.capi.pkt[1], v_i2r_confirm, sizeof(v_i2r_confirm)));

	/* R: half-open until the confirmation; then its own DATA under k_r2i */
	CHECK_EQ(secure_seal(V.r, T0 + 1, (const uint8_t *)"hello", 5, plain, sizeof(plain)), -EAGAIN);
	CHECK(secure_ctx_lookup(V.cr, V.capi.pkt[1], V.capi.len[1]) == V.r);
	CHECK_EQ(secure_open(V.r, T0 + 2, V.capi.pkt[1], V.capi.len[1], plain, sizeof(plain), NULL), 0);
	CHECK_EQ(secure_state(V.r), SECURE_ESTABLISHED);
	CHECK_EQ(secure_ctx_stats(V.cr)->half_open, 0);
	ev = cap_find_event(&V.capr, SECURE_EV_HANDSHAKE_OK);
	CHECK(ev && ev->channel_id == chan);
	CHECK_EQ(secure_seal(V.r, T0 + 3, (const uint8_t *)"hello", 5, plain, sizeof(plain)), 37);
	CHECK(!memcmp(plain, v_r2i_hello, 37));
	{
		uint8_t got[64];

		CHECK_EQ(secure_open(V.i, T0 + 4, v_r2i_hello, 37, got, sizeof(got), NULL), 5);
		CHECK(!memcmp(got, "hello", 5));
	}
	CHECK(rnd_all_used());
	CHECK_EQ(drops(secure_ctx_stats(V.ci)), 0);
	CHECK_EQ(drops(secure_ctx_stats(V.cr)), 0);
	vpair_free();
}

/* §3.13 item 3: DATA for counters 0, 1, 2^32 (nonce 00000000 ‖ counter LE64). */
static void test_session_data_counters_0_1_2pow32_match_reference(void)
{
	uint8_t pkt[64], got[64];
	bool hi = false;

	vpair_setup(true, NULL, NULL);
	if (!V.i || !V.r)
		return;
	secure_test_set_send_counter(V.i, 1);
	CHECK_EQ(secure_seal(V.i, T0 + 5, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_data1, 37));
	secure_test_set_send_counter(V.i, 1ULL << 32);
	CHECK_EQ(secure_seal(V.i, T0 + 5, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_data2_32, 37));
	/* counter 0 again only to compare bytes: a nonce reuse no real path can make */
	secure_test_set_send_counter(V.i, 0);
	CHECK_EQ(secure_seal(V.i, T0 + 5, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_data0, 37));

	CHECK_EQ(secure_open(V.r, T0 + 6, v_data1, 37, got, sizeof(got), &hi), 5);
	CHECK(hi);
	CHECK(!memcmp(got, "hello", 5));
	CHECK_EQ(secure_open(V.r, T0 + 6, v_data2_32, 37, got, sizeof(got), &hi), 5);
	CHECK(hi);
	/* counter 0 was the key confirmation: a replay now */
	CHECK_EQ(secure_open(V.r, T0 + 6, v_data0, 37, got, sizeof(got), &hi), -ESTALE);
	CHECK_EQ(secure_ctx_stats(V.cr)->too_old, 1);
	vpair_free();
}

/* §3.13 item 4 through two sessions: rekey by count with A = I, then with A = R. */
static void test_session_two_rekeys_match_reference(void)
{
	uint8_t pkt[128], got[64];
	const struct secure_event *ev;

	vpair_setup(true, NULL, NULL);
	if (!V.i || !V.r)
		return;
	CHECK_EQ(secure_seal(V.r, T0 + 3, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_r2i_hello, 37));

	/* rekey 1: I's count trigger at 2^60 sends REKEY_INIT before the DATA that crossed it */
	V.capi.npkts = V.capr.npkts = 0;
	secure_test_set_send_counter(V.i, 1ULL << 60);
	rnd_push_index(0x11aaaaaa);
	rnd_push_range(0x60, 32);
	CHECK_EQ(secure_seal(V.i, T0 + 10, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK_EQ(V.capi.npkts, 1);
	CHECK_EQ(V.capi.len[0], 72);
	CHECK(!memcmp(V.capi.pkt[0], v_rekey_init, 72));
	ev = cap_find_event(&V.capi, SECURE_EV_REKEY_START);
	CHECK(ev && ev->epoch == 1 && ev->reason == SECURE_REKEY_PACKETS);
	rnd_push_index(0x22bbbbbb);
	rnd_push_range(0x80, 32);
	CHECK_EQ(secure_open(V.r, T0 + 11, V.capi.pkt[0], 72, got, sizeof(got), NULL), 0);
	ev = cap_find_event(&V.capr, SECURE_EV_RECV_REKEY_INIT);
	CHECK(ev && ev->epoch == 1);
	CHECK_EQ(V.capr.npkts, 1);
	CHECK_EQ(V.capr.len[0], 76);
	CHECK(!memcmp(V.capr.pkt[0], v_rekey_ack, 76));
	/* data under the old keys still flows both ways */
	CHECK_EQ(secure_open(V.r, T0 + 11, pkt, 37, got, sizeof(got), NULL), 5);
	CHECK_EQ(secure_open(V.i, T0 + 12, V.capr.pkt[0], 76, got, sizeof(got), NULL), 0);
	ev = cap_find_event(&V.capi, SECURE_EV_EPOCH_SWITCH);
	CHECK(ev && ev->epoch == 0 && ev->epoch_to == 1);
	CHECK_EQ(secure_epoch(V.i), 1);
	CHECK_EQ(V.capi.npkts, 2);
	CHECK(!memcmp(V.capi.pkt[1], v_i2r1_confirm, sizeof(v_i2r1_confirm)));
	CHECK_EQ(secure_seal(V.i, T0 + 13, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_i2r1_hello, 37));
	CHECK_EQ(secure_epoch(V.r), 0);
	CHECK_EQ(secure_open(V.r, T0 + 14, V.capi.pkt[1], V.capi.len[1], got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_epoch(V.r), 1);
	CHECK_EQ(cap_count_events(&V.capr, SECURE_EV_EPOCH_SWITCH), 1);
	CHECK_EQ(secure_open(V.r, T0 + 14, v_i2r1_hello, 37, got, sizeof(got), NULL), 5);
	CHECK_EQ(secure_seal(V.r, T0 + 15, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_r2i1_hello, 37));
	CHECK_EQ(secure_open(V.i, T0 + 16, pkt, 37, got, sizeof(got), NULL), 5);

	/* rekey 2: R's count trigger; HKDF(rk_1, dh ‖ R.e ‖ I.e); keys by the original roles */
	V.capi.npkts = V.capr.npkts = 0;
	secure_test_set_send_counter(V.r, 1ULL << 60);
	rnd_push_index(0x22cccccc);
	rnd_push_range(0xc0, 32);
	CHECK_EQ(secure_seal(V.r, T0 + 20, (const uint8_t *)"x", 1, pkt, sizeof(pkt)), 33);
	CHECK_EQ(V.capr.npkts, 1);
	rnd_push_index(0x11dddddd);
	rnd_push_range(0xe0, 32);
	CHECK_EQ(secure_open(V.i, T0 + 21, V.capr.pkt[0], V.capr.len[0], got, sizeof(got), NULL), 0);
	CHECK_EQ(V.capi.npkts, 1);
	CHECK_EQ(secure_open(V.r, T0 + 22, V.capi.pkt[0], V.capi.len[0], got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_epoch(V.r), 2);
	CHECK_EQ(V.capr.npkts, 2);	/* INIT, confirmation */
	CHECK_EQ(secure_seal(V.r, T0 + 23, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_r2i2_hello, 37));
	CHECK_EQ(secure_open(V.i, T0 + 24, V.capr.pkt[1], V.capr.len[1], got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_epoch(V.i), 2);
	CHECK_EQ(secure_open(V.i, T0 + 24, pkt, 37, got, sizeof(got), NULL), 5);
	CHECK_EQ(secure_seal(V.i, T0 + 25, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	CHECK(!memcmp(pkt, v_i2r2_hello, 37));
	CHECK_EQ(secure_open(V.r, T0 + 26, pkt, 37, got, sizeof(got), NULL), 5);
	CHECK(rnd_all_used());
	CHECK_EQ(secure_ctx_stats(V.ci)->rekeys, 2);
	CHECK_EQ(secure_ctx_stats(V.cr)->rekeys, 2);
	CHECK_EQ(drops(secure_ctx_stats(V.ci)), 0);
	CHECK_EQ(drops(secure_ctx_stats(V.cr)), 0);
	vpair_free();
}

/*
 * §3.7 steps 1-2: the ACK is lost; A retries its INIT (same a, same index) after 1, 2, 4, 8, 8 s;
 * B answers a duplicate with the same ACK, so both still derive the reference keys.
 */
static void test_rekey_ack_lost_init_retried_and_answered_with_same_ack(void)
{
	uint8_t pkt[128], got[64], ack[76];
	uint32_t retries[6], at = T0 + 10;
	int n = 0;

	vpair_setup(true, NULL, NULL);
	if (!V.i || !V.r)
		return;
	CHECK_EQ(secure_seal(V.r, T0 + 3, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	V.capi.npkts = V.capr.npkts = 0;
	secure_test_set_send_counter(V.i, 1ULL << 60);
	rnd_push_index(0x11aaaaaa);
	rnd_push_range(0x60, 32);
	CHECK_EQ(secure_seal(V.i, at, (const uint8_t *)"hello", 5, pkt, sizeof(pkt)), 37);
	rnd_push_index(0x22bbbbbb);
	rnd_push_range(0x80, 32);
	CHECK_EQ(secure_open(V.r, at + 1, V.capi.pkt[0], 72, got, sizeof(got), NULL), 0);
	CHECK(!memcmp(V.capr.pkt[0], v_rekey_ack, 76));
	/* that ACK is lost; I retries on its timer */
	CHECK_EQ(secure_next_ms(V.i, at + 1), at + 1000);
	for (uint32_t now = at + 1; now <= at + 24000; now++) {
		if (reached_t(now, secure_next_ms(V.i, now))) {
			int before = V.capi.npkts;

			secure_tick(V.i, now, UNIX_MS + now);
			if (V.capi.npkts > before && n < 6)
				retries[n++] = now - at;
		}
	}
	CHECK_EQ(n, 5);
	CHECK_EQ(retries[0], 1000);
	CHECK_EQ(retries[1], 3000);
	CHECK_EQ(retries[2], 7000);
	CHECK_EQ(retries[3], 15000);
	CHECK_EQ(retries[4], 23000);
	CHECK_EQ(V.capi.npkts, 6);
	for (int k = 1; k < 6; k++) {
		CHECK_EQ(V.capi.len[k], 72);
		CHECK(memcmp(V.capi.pkt[k] + 8, V.capi.pkt[0] + 8, 8));	/* new counter each time */
	}
	/* a retry reaches R: the same ACK plaintext again (no new ephemeral drawn) */
	V.capr.npkts = 0;
	CHECK_EQ(secure_open(V.r, at + 24001, V.capi.pkt[3], 72, got, sizeof(got), NULL), 0);
	CHECK_EQ(V.capr.npkts, 1);
	CHECK_EQ(V.capr.len[0], 76);
	memcpy(ack, V.capr.pkt[0], 76);
	CHECK(sod_aead_open(got, ack + 16, 60, ack, 16, get32le(ack + 8) | (uint64_t)get32le(ack + 12) << 32,
			    v_k_r2i) == 0);
	CHECK(!memcmp(got, "\x02\x00\x00\x00", 4));
	CHECK_EQ(get32le(got + 4), 0x22bbbbbb);
	CHECK_EQ(get32le(got + 8), 0x11aaaaaa);
	CHECK(!memcmp(got + 12, v_b_pub, 32));
	CHECK(rnd_all_used());
	CHECK_EQ(cap_count_events(&V.capr, SECURE_EV_RECV_REKEY_INIT), 1);
	/* I switches and both sides use the reference keys */
	V.capi.npkts = 0;
	CHECK_EQ(secure_open(V.i, at + 24002, ack, 76, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_epoch(V.i), 1);
	CHECK(!memcmp(V.capi.pkt[0], v_i2r1_confirm, sizeof(v_i2r1_confirm)));
	CHECK_EQ(secure_open(V.r, at + 24003, V.capi.pkt[0], 32, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_epoch(V.r), 1);
	/* the other retries arrive late: stale (under R's previous keypair) or replays, no answer */
	V.capr.npkts = 0;
	CHECK(secure_open(V.r, at + 24004, V.capi.pkt[0], 32, got, sizeof(got), NULL) < 0);
	CHECK_EQ(V.capr.npkts, 0);
	vpair_free();
}

/* §3.13 item 5 through the sessions: COOKIE_REPLY bytes, the initiator's mac2, cookie mode. */
static void test_session_cookie_reply_matches_reference_and_unlocks_handshake(void)
{
	struct secure_cfg rcfg = cfg_for(true), icfg = cfg_for(false);
	struct secure_ctx *ci, *cr, *co;
	struct secure_sess *i, *o[2], *h[2], *s;
	struct cap capi, capr, capo;
	struct secure_io ioi = cap_io(&capi), ior = cap_io(&capr), ioo = cap_io(&capo);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT), other = src_addr(SRC_IP, SRC_PORT + 1);
	uint8_t got[64], mac2[16], bad[64], m1b[136];

	rnd_reset(43);
	rcfg.max_half_open = 3;
	rcfg.hs_rate_per_s = 0;
	ci = secure_ctx_new(&icfg);
	cr = secure_ctx_new(&rcfg);
	co = secure_ctx_new(&icfg);
	/* two half-open sessions put R under load (2 × 2 > 3) */
	for (int k = 0; k < 2; k++) {
		capo.npkts = 0;
		o[k] = secure_initiator_new(co, 0, T0, UNIX_MS, &ioo);
		h[k] = secure_responder_accept(cr, capo.pkt[0], 136, (struct sockaddr *)&src, sizeof(src), T0,
					       UNIX_MS, &ior);
		CHECK(h[k] != NULL);
	}
	CHECK_EQ(secure_ctx_stats(cr)->half_open, 2);
	CHECK_EQ(secure_ctx_stats(cr)->cookies_sent, 0);

	rnd_push_index(I_INDEX);
	rnd_push_range(0x20, 32);
	i = secure_initiator_new(ci, CONV, T0, UNIX_MS, &ioi);
	CHECK(!memcmp(capi.pkt[0], v_msg1, 136));
	capr.npkts = 0;
	rnd_push_range(0xa0, 32);	/* cookie_secret */
	rnd_push_range(0xc0, 24);	/* COOKIE_REPLY nonce */
	CHECK(secure_responder_accept(cr, v_msg1, 136, (struct sockaddr *)&src, sizeof(src), T0 + 1, UNIX_MS,
				      &ior) == NULL);
	CHECK_EQ(secure_ctx_stats(cr)->hs_cookie_required, 1);
	CHECK_EQ(capr.npkts, 1);
	CHECK_EQ(capr.len[0], 64);
	CHECK(!memcmp(capr.pkt[0], v_reply, 64));
	CHECK(rnd_all_used());

	/* I: a corrupted reply is dropped; the real one stores the cookie and resends at once */
	memcpy(bad, v_reply, 64);
	bad[40] ^= 0x10;
	CHECK(secure_ctx_lookup(ci, bad, 64) == i);
	CHECK_EQ(secure_open(i, T0 + 2, bad, 64, got, sizeof(got), NULL), -EBADMSG);
	CHECK_EQ(secure_ctx_stats(ci)->cookie_auth_fail, 1);
	CHECK_EQ(capi.npkts, 1);
	CHECK_EQ(secure_open(i, T0 + 2, v_reply, 64, got, sizeof(got), NULL), 0);
	CHECK_EQ(capi.npkts, 2);
	memcpy(m1b, capi.pkt[1], 136);
	sod_blake2b(mac2, 16, v_cookie, 16, m1b, 120);
	CHECK(!memcmp(m1b + 120, mac2, 16));
	CHECK(memcmp(m1b + 8, v_msg1 + 8, 32));		/* fresh ephemeral */
	/* the same reply twice: that attempt was answered already */
	CHECK_EQ(secure_open(i, T0 + 2, v_reply, 64, got, sizeof(got), NULL), -EALREADY);
	CHECK_EQ(capi.npkts, 2);
	/* the cookie is bound to the source address and port */
	capr.npkts = 0;
	CHECK(secure_responder_accept(cr, m1b, 136, (struct sockaddr *)&other, sizeof(other), T0 + 3, UNIX_MS,
				      &ior) == NULL);
	CHECK_EQ(secure_ctx_stats(cr)->hs_cookie_required, 2);
	CHECK_EQ(capr.len[0], 64);
	/* from the right source R accepts it although under load */
	capr.npkts = 0;
	s = secure_responder_accept(cr, m1b, 136, (struct sockaddr *)&src, sizeof(src), T0 + 3, UNIX_MS, &ior);
	CHECK(s != NULL);
	CHECK_EQ(capr.npkts, 1);
	CHECK_EQ(capr.len[0], 76);
	CHECK_EQ(secure_open(i, T0 + 4, capr.pkt[0], 76, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(i), SECURE_ESTABLISHED);
	/* replies are always smaller than what they answer */
	CHECK(secure_ctx_stats(cr)->hs_bytes_out < secure_ctx_stats(cr)->hs_bytes_in);
	secure_sess_free(s);
	secure_sess_free(i);
	for (int k = 0; k < 2; k++) {
		secure_sess_free(o[k]);
		secure_sess_free(h[k]);
	}
	secure_ctx_free(ci);
	secure_ctx_free(cr);
	secure_ctx_free(co);
}

/* ---- negative cases (§3.13 item 7): each a silent drop under its counter, no state change ---- */

static void test_msg1_every_bit_flip_dropped_silently_by_reason(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_stats before;
	uint8_t m[136];
	int mac2_accepted = 0;

	cfg.hs_rate_per_s = 0;
	vpair_free();
	V.cr = secure_ctx_new(&cfg);
	V.ior = cap_io(&V.capr);
	V.src = src_addr(SRC_IP, SRC_PORT);
	for (int bit = 0; bit < 120 * 8; bit++) {
		struct secure_sess *s;
		const struct secure_stats *st = secure_ctx_stats(V.cr);
		uint64_t *field;
		int byte = bit / 8;

		memcpy(m, v_msg1, 136);
		m[byte] ^= (uint8_t)(1 << (bit % 8));
		before = *st;
		s = secure_responder_accept(V.cr, m, 136, (struct sockaddr *)&V.src, sizeof(V.src), T0, UNIX_MS, &V.ior);
		CHECK(s == NULL);
		secure_sess_free(s);
		if (byte == 0)
			field = &before.bad_type;
		else if (byte < 4)
			field = &before.reserved;
		else if (byte < 8)
			field = &before.hs_index_mismatch;
		else
			field = &before.hs_auth_fail;
		(*field)++;
		before.hs_bytes_in += 136;
		CHECK(!memcmp(&before, st, sizeof(before)));
	}
	/* mac2 sits outside the AEAD (§3.3): ignored while R is not under load */
	for (int bit = 120 * 8; bit < 136 * 8; bit += 8) {
		struct secure_sess *s;

		memcpy(m, v_msg1, 136);
		m[bit / 8] ^= 1;
		s = secure_responder_accept(V.cr, m, 136, (struct sockaddr *)&V.src, sizeof(V.src), T0, UNIX_MS, &V.ior);
		mac2_accepted += s != NULL;
		secure_sess_free(s);
	}
	/* the first was accepted; the rest are replays of the same ephemeral */
	CHECK_EQ(mac2_accepted, 1);
	CHECK_EQ(secure_ctx_stats(V.cr)->hs_replay, 15);
	CHECK_EQ(V.capr.total, 1);
	vpair_free();
}

static void test_msg1_flips_leave_no_state_original_still_accepted(void)
{
	struct secure_cfg cfg = cfg_for(true);
	uint8_t m[136];
	struct secure_sess *s;

	cfg.hs_rate_per_s = 0;
	vpair_free();
	V.cr = secure_ctx_new(&cfg);
	V.ior = cap_io(&V.capr);
	V.src = src_addr(SRC_IP, SRC_PORT);
	for (int bit = 0; bit < 120 * 8; bit += 3) {
		memcpy(m, v_msg1, 136);
		m[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		CHECK(secure_responder_accept(V.cr, m, 136, (struct sockaddr *)&V.src, sizeof(V.src), T0, UNIX_MS,
					      &V.ior) == NULL);
	}
	CHECK_EQ(V.capr.total, 0);
	CHECK_EQ(secure_ctx_stats(V.cr)->sessions, 0);
	s = secure_responder_accept(V.cr, v_msg1, 136, (struct sockaddr *)&V.src, sizeof(V.src), T0, UNIX_MS, &V.ior);
	CHECK(s != NULL);
	CHECK_EQ(V.capr.total, 1);
	secure_sess_free(s);
	vpair_free();
}

static void test_msg2_every_bit_flip_dropped_then_original_completes(void)
{
	uint8_t m[76], got[64];

	vpair_setup(false, NULL, NULL);
	if (!V.i || !V.r)
		return;
	V.capi.npkts = V.capi.total = 0;
	for (int bit = 0; bit < 76 * 8; bit++) {
		const struct secure_stats *st = secure_ctx_stats(V.ci);
		struct secure_stats before = *st;
		struct secure_sess *s;
		int byte = bit / 8;

		memcpy(m, v_msg2, 76);
		m[byte] ^= (uint8_t)(1 << (bit % 8));
		s = secure_ctx_lookup(V.ci, m, 76);
		if (s)
			CHECK(secure_open(s, T0 + 1, m, 76, got, sizeof(got), NULL) < 0);
		CHECK_EQ(drops(st), drops(&before) + 1);
		if (byte >= 1 && byte < 4)
			CHECK_EQ(st->reserved, before.reserved + 1);
		else if (byte >= 4 && byte < 8)
			CHECK_EQ(st->resp_mismatch, before.resp_mismatch + 1);
		else if (byte >= 8 && byte < 12)
			CHECK_EQ(st->unknown_index, before.unknown_index + 1);
		else if (byte >= 12)
			CHECK_EQ(st->resp_auth_fail, before.resp_auth_fail + 1);
		CHECK_EQ(secure_state(V.i), SECURE_HANDSHAKE);
	}
	CHECK_EQ(V.capi.total, 0);
	CHECK_EQ(secure_open(V.i, T0 + 1, v_msg2, 76, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(V.i), SECURE_ESTABLISHED);
	CHECK(!memcmp(V.capi.pkt[0], v_i2r_confirm, sizeof(v_i2r_confirm)));
	vpair_free();
}

static void test_data_every_bit_flip_dropped_then_original_opens(void)
{
	uint8_t d[128], pkt[128], got[128];
	size_t n, dn = kcp_dgram(d, CONV, 7, 20);

	vpair_setup(true, NULL, NULL);
	if (!V.i || !V.r)
		return;
	n = (size_t)secure_seal(V.i, T0 + 5, d, dn, pkt, sizeof(pkt));
	CHECK_EQ(n, dn + 32);
	V.capr.npkts = V.capr.total = 0;
	for (size_t bit = 0; bit < n * 8; bit++) {
		const struct secure_stats *st = secure_ctx_stats(V.cr);
		struct secure_stats before = *st;
		struct secure_sess *s;
		uint8_t m[128];
		size_t byte = bit / 8;

		memcpy(m, pkt, n);
		m[byte] ^= (uint8_t)(1 << (bit % 8));
		s = secure_ctx_lookup(V.cr, m, n);
		if (s)
			CHECK(secure_open(s, T0 + 6, m, n, got, sizeof(got), NULL) < 0);
		CHECK_EQ(drops(st), drops(&before) + 1);
		if (byte >= 1 && byte < 4)
			CHECK_EQ(st->reserved, before.reserved + 1);
		else if (byte >= 4 && byte < 8)
			CHECK_EQ(st->unknown_index, before.unknown_index + 1);
		else if (byte >= 16)
			CHECK_EQ(st->auth_fail, before.auth_fail + 1);
		else if (byte >= 8)	/* a changed counter may hit the window before the AEAD */
			CHECK_EQ(st->auth_fail + st->replay + st->too_old,
				 before.auth_fail + before.replay + before.too_old + 1);
	}
	CHECK_EQ(V.capr.total, 0);
	CHECK_EQ(secure_open(V.r, T0 + 7, pkt, n, got, sizeof(got), NULL), (int)dn);
	CHECK(!memcmp(got, d, dn));
	vpair_free();
}

static void test_wrong_psk_msg1_is_hs_auth_fail_and_silent(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c;
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	const struct secure_event *ev;

	cfg.psk[0] ^= 1;
	c = secure_ctx_new(&cfg);
	CHECK(secure_responder_accept(c, v_msg1, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io) == NULL);
	CHECK_EQ(secure_ctx_stats(c)->hs_auth_fail, 1);
	CHECK_EQ(drops(secure_ctx_stats(c)), 1);
	CHECK_EQ(cap.total, 0);
	ev = cap_find_event(&cap, SECURE_EV_AUTH_FAIL);
	CHECK(ev != NULL);
	secure_ctx_free(c);
}

static void test_lengths_truncated_and_extended_are_bad_len(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c = secure_ctx_new(&cfg);
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	uint8_t big[200] = { 0 }, got[128];

	memcpy(big, v_msg1, 136);
	CHECK(secure_responder_accept(c, big, 135, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io) == NULL);
	CHECK(secure_responder_accept(c, big, 137, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io) == NULL);
	CHECK(secure_responder_accept(c, big, 0, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io) == NULL);
	CHECK_EQ(secure_ctx_stats(c)->bad_len, 3);
	CHECK_EQ(cap.total, 0);
	secure_ctx_free(c);

	CHECK_EQ(secure_packet_type(v_msg1, 136), 1);
	CHECK_EQ(secure_packet_type(v_msg1, 135), -EBADMSG);
	CHECK_EQ(secure_packet_type(v_msg2, 76), 2);
	CHECK_EQ(secure_packet_type(v_msg2, 77), -EBADMSG);
	CHECK_EQ(secure_packet_type(v_reply, 64), 3);
	CHECK_EQ(secure_packet_type(v_reply, 63), -EBADMSG);
	CHECK_EQ(secure_packet_type(v_data0, 32), 4);
	CHECK_EQ(secure_packet_type(v_data0, 31), -EBADMSG);
	CHECK_EQ(secure_packet_type(v_data0, 0), -EBADMSG);

	vpair_setup(false, NULL, NULL);
	if (!V.i)
		return;
	memcpy(big, v_msg2, 76);
	CHECK(secure_open(V.i, T0 + 1, big, 75, got, sizeof(got), NULL) < 0);
	CHECK(secure_open(V.i, T0 + 1, big, 77, got, sizeof(got), NULL) < 0);
	CHECK_EQ(secure_ctx_stats(V.ci)->bad_len, 2);
	CHECK_EQ(secure_state(V.i), SECURE_HANDSHAKE);
	CHECK_EQ(secure_open(V.i, T0 + 1, v_msg2, 76, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_open(V.r, T0 + 2, V.capi.pkt[1], V.capi.len[1], got, sizeof(got), NULL), 0);
	/* DATA: shorter than a header, one byte short (tag), one byte long */
	memcpy(big, v_data1, 37);
	CHECK(secure_open(V.r, T0 + 3, big, 31, got, sizeof(got), NULL) < 0);
	CHECK_EQ(secure_ctx_stats(V.cr)->bad_len, 1);
	CHECK(secure_open(V.r, T0 + 3, big, 36, got, sizeof(got), NULL) < 0);
	CHECK(secure_open(V.r, T0 + 3, big, 38, got, sizeof(got), NULL) < 0);
	CHECK_EQ(secure_ctx_stats(V.cr)->auth_fail, 2);
	/* a plaintext larger than the caller's buffer */
	CHECK_EQ(secure_open(V.r, T0 + 3, v_data1, 37, got, 4, NULL), -ENOBUFS);
	CHECK_EQ(secure_open(V.r, T0 + 3, v_data1, 37, got, 5, NULL), 5);
	vpair_free();
}

static void test_reserved_bytes_dropped_for_every_type(void)
{
	uint8_t m[136], got[64];

	vpair_setup(false, NULL, NULL);
	if (!V.i)
		return;
	for (int b = 1; b < 4; b++) {
		memcpy(m, v_msg2, 76);
		m[b] = 0x80;
		CHECK(secure_open(V.i, T0 + 1, m, 76, got, sizeof(got), NULL) == -EBADMSG);
		memcpy(m, v_reply, 64);
		m[b] = 1;
		CHECK(secure_open(V.i, T0 + 1, m, 64, got, sizeof(got), NULL) == -EBADMSG);
	}
	CHECK_EQ(secure_ctx_stats(V.ci)->reserved, 6);
	CHECK_EQ(secure_open(V.i, T0 + 1, v_msg2, 76, got, sizeof(got), NULL), 0);
	vpair_free();
}

static void test_stale_timestamp_and_skew_boundary(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c;
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	const struct secure_event *ev;
	struct secure_sess *s;

	cfg.hs_rate_per_s = 0;
	c = secure_ctx_new(&cfg);
	/* 300 s + 1 ms late, and early */
	CHECK(secure_responder_accept(c, v_msg1, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS + 300001, &io) == NULL);
	CHECK(secure_responder_accept(c, v_msg1, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS - 300001, &io) == NULL);
	CHECK_EQ(secure_ctx_stats(c)->hs_skew, 2);
	CHECK_EQ(cap.total, 0);
	ev = cap_find_event(&cap, SECURE_EV_AUTH_REJECT);
	CHECK(ev && ev->skew_ms == -300001 && !ev->replay);
	/* exactly 300 s is inside */
	s = secure_responder_accept(c, v_msg1, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS + 300000, &io);
	CHECK(s != NULL);
	secure_sess_free(s);
	secure_ctx_free(c);

	/* max_skew 0 switches the check off */
	cfg.max_skew_s = 0;
	c = secure_ctx_new(&cfg);
	s = secure_responder_accept(c, v_msg1, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS + 86400000, &io);
	CHECK(s != NULL);
	secure_sess_free(s);
	secure_ctx_free(c);
}

static void test_replayed_msg1_dropped_and_never_touches_session(void)
{
	uint8_t got[64];
	const struct secure_event *ev;

	vpair_setup(true, NULL, NULL);
	if (!V.r)
		return;
	V.capr.npkts = V.capr.total = 0;
	CHECK(secure_responder_accept(V.cr, v_msg1, 136, (struct sockaddr *)&V.src, sizeof(V.src), T0 + 100,
				      UNIX_MS + 100, &V.ior) == NULL);
	CHECK_EQ(secure_ctx_stats(V.cr)->hs_replay, 1);
	CHECK_EQ(V.capr.total, 0);
	ev = cap_find_event(&V.capr, SECURE_EV_AUTH_REJECT);
	CHECK(ev && ev->replay && ev->skew_ms == 100);
	CHECK_EQ(secure_state(V.r), SECURE_ESTABLISHED);
	CHECK_EQ(secure_open(V.r, T0 + 101, v_data1, 37, got, sizeof(got), NULL), 5);
	/* a replayed msg 2 at an established initiator */
	CHECK(secure_ctx_lookup(V.ci, v_msg2, 76) == V.i);
	CHECK_EQ(secure_open(V.i, T0 + 101, v_msg2, 76, got, sizeof(got), NULL), -ENOTCONN);
	CHECK_EQ(secure_ctx_stats(V.ci)->not_ready, 1);
	vpair_free();
}

static void test_replayed_and_too_old_data_dropped(void)
{
	uint8_t d[64], pkt[128], old[128], got[128];
	size_t dn = kcp_dgram(d, CONV, 1, 8);
	int n;

	vpair_setup(true, NULL, NULL);
	if (!V.i || !V.r)
		return;
	n = secure_seal(V.i, T0 + 5, d, dn, old, sizeof(old));
	CHECK_EQ(n, (int)dn + 32);
	CHECK_EQ(secure_open(V.r, T0 + 6, old, (size_t)n, got, sizeof(got), NULL), (int)dn);
	CHECK_EQ(secure_open(V.r, T0 + 6, old, (size_t)n, got, sizeof(got), NULL), -EALREADY);
	CHECK_EQ(secure_ctx_stats(V.cr)->replay, 1);
	/* counter 2 (not yet seen), then 2 + 4032 makes it fall out of the window */
	n = secure_seal(V.i, T0 + 5, d, dn, old, sizeof(old));
	secure_test_set_send_counter(V.i, 2 + SECURE_REPLAY_WINDOW);
	CHECK_EQ(secure_seal(V.i, T0 + 5, d, dn, pkt, sizeof(pkt)), n);
	CHECK_EQ(secure_open(V.r, T0 + 6, pkt, (size_t)n, got, sizeof(got), NULL), (int)dn);
	CHECK_EQ(secure_open(V.r, T0 + 6, old, (size_t)n, got, sizeof(got), NULL), -ESTALE);
	CHECK_EQ(secure_ctx_stats(V.cr)->too_old, 1);
	CHECK_EQ(secure_ctx_stats(V.cr)->auth_fail, 0);
	vpair_free();
}

static void test_unknown_index_dropped_at_lookup(void)
{
	uint8_t m[64];

	vpair_setup(true, NULL, NULL);
	memcpy(m, v_data1, 37);
	put32le(m + 4, 0x22123456);
	CHECK(secure_ctx_lookup(V.cr, m, 37) == NULL);
	put32le(m + 4, 0);
	CHECK(secure_ctx_lookup(V.cr, m, 37) == NULL);
	CHECK_EQ(secure_ctx_stats(V.cr)->unknown_index, 2);
	CHECK(secure_ctx_lookup(V.cr, m, 7) == NULL);
	CHECK_EQ(secure_ctx_stats(V.cr)->bad_len, 1);
	m[0] = 9;
	CHECK(secure_ctx_lookup(V.cr, m, 37) == NULL);
	m[0] = 1;
	CHECK(secure_ctx_lookup(V.cr, m, 37) == NULL);
	CHECK_EQ(secure_ctx_stats(V.cr)->bad_type, 2);
	vpair_free();
}

static void test_data_with_other_conv_is_conv_mismatch(void)
{
	uint8_t d[128], pkt[200], got[200];
	size_t dn;
	int n;

	vpair_setup(true, NULL, NULL);
	if (!V.i || !V.r)
		return;
	/* second segment of the datagram has another conv */
	dn = kcp_dgram(d, CONV, 1, 4);
	dn += kcp_dgram(d + dn, CONV + 1, 2, 4);
	n = secure_seal(V.i, T0 + 5, d, dn, pkt, sizeof(pkt));
	CHECK_EQ(secure_open(V.r, T0 + 6, pkt, (size_t)n, got, sizeof(got), NULL), -EPROTO);
	CHECK_EQ(secure_ctx_stats(V.cr)->conv_mismatch, 1);
	/* all segments right: delivered */
	dn = kcp_dgram(d, CONV, 1, 4);
	dn += kcp_dgram(d + dn, CONV, 2, 4);
	n = secure_seal(V.i, T0 + 5, d, dn, pkt, sizeof(pkt));
	CHECK_EQ(secure_open(V.r, T0 + 6, pkt, (size_t)n, got, sizeof(got), NULL), (int)dn);
	vpair_free();
}

static void test_low_order_points_dropped_in_msg1_msg2_and_rekey(void)
{
	static const uint8_t zero[32], one[32] = { 1 };
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c;
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	struct m1_fields f;
	uint8_t m[136], pl[64], pkt[128], got[64];
	const uint8_t *pts[2] = { zero, one };

	cfg.hs_rate_per_s = 0;
	c = secure_ctx_new(&cfg);
	for (int i = 0; i < 2; i++) {
		f = m1_default(pts[i]);
		craft_msg1(m, &f);
		CHECK(secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io) == NULL);
	}
	CHECK_EQ(secure_ctx_stats(c)->hs_low_order, 2);
	CHECK_EQ(secure_ctx_stats(c)->sessions, 0);
	CHECK_EQ(cap.total, 0);
	secure_ctx_free(c);

	/* msg 2 with e_r = 0 at the initiator */
	vpair_setup(false, NULL, NULL);
	memcpy(m, v_msg2, 76);
	memset(m + 12, 0, 32);
	CHECK(secure_open(V.i, T0 + 1, m, 76, got, sizeof(got), NULL) < 0);
	CHECK_EQ(secure_ctx_stats(V.ci)->hs_low_order, 1);
	CHECK_EQ(secure_state(V.i), SECURE_HANDSHAKE);
	CHECK_EQ(secure_open(V.i, T0 + 1, v_msg2, 76, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_open(V.r, T0 + 2, V.capi.pkt[1], V.capi.len[1], got, sizeof(got), NULL), 0);

	/* a REKEY_INIT with a = 0, sealed by hand under k_i2r */
	memset(pl, 0, sizeof(pl));
	pl[0] = SECURE_C_REKEY_INIT;
	put32le(pl + 4, 0x11abcdef);
	V.capr.npkts = V.capr.total = 0;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, 5, pl, 40);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 72, got, sizeof(got), NULL), -EINVAL);
	CHECK_EQ(secure_ctx_stats(V.cr)->rekey_low_order, 1);
	CHECK_EQ(V.capr.total, 0);
	CHECK_EQ(secure_epoch(V.r), 0);
	(void)f;
	vpair_free();
}

static void test_control_unknown_ctype_and_bad_lengths(void)
{
	uint8_t pl[64] = { 0 }, pkt[128], got[64];
	uint64_t ctr = 10;

	vpair_setup(true, NULL, NULL);
	if (!V.r)
		return;
	V.capr.npkts = V.capr.total = 0;
	pl[0] = 0x04;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 2);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 34, got, sizeof(got), NULL), -EPROTO);
	CHECK_EQ(secure_ctx_stats(V.cr)->unknown_ctype, 1);
	pl[0] = SECURE_C_CLOSE;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 3);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 35, got, sizeof(got), NULL), -EBADMSG);
	pl[0] = SECURE_C_REKEY_INIT;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 39);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 71, got, sizeof(got), NULL), -EBADMSG);
	pl[0] = SECURE_C_REKEY_ACK;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 44);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 76, got, sizeof(got), NULL), -ESTALE);
	CHECK_EQ(secure_ctx_stats(V.cr)->rekey_stale, 1);
	pl[0] = SECURE_C_REKEY_INIT;
	pl[2] = 1;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 40);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 72, got, sizeof(got), NULL), -EBADMSG);
	CHECK_EQ(secure_ctx_stats(V.cr)->bad_control, 3);
	/* empty CONTROL and one longer than any ctype */
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 0);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 32, got, sizeof(got), NULL), -EBADMSG);
	CHECK_EQ(secure_ctx_stats(V.cr)->bad_control, 4);
	CHECK_EQ(V.capr.total, 0);
	CHECK_EQ(secure_state(V.r), SECURE_ESTABLISHED);
	/* a proper CLOSE from I */
	pl[0] = SECURE_C_CLOSE;
	pl[1] = SECURE_CLOSE_SHUTDOWN;
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, ctr++, pl, 2);
	CHECK_EQ(secure_open(V.r, T0 + 4, pkt, 34, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(V.r), SECURE_CLOSED);
	{
		const struct secure_event *ev = cap_find_event(&V.capr, SECURE_EV_CLOSED);

		CHECK(ev && ev->by_peer && ev->reason == SECURE_CLOSE_SHUTDOWN);
	}
	CHECK_EQ(secure_seal(V.r, T0 + 5, pl, 1, pkt, sizeof(pkt)), -EPIPE);
	/* a closed session drops everything */
	CHECK(secure_open(V.r, T0 + 5, v_data1, 37, got, sizeof(got), NULL) < 0);
	CHECK_EQ(secure_ctx_stats(V.cr)->not_ready, 1);
	vpair_free();
}

static void test_msg1_payload_checks_version_index_mtu(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c;
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	uint8_t e[32], m[136];
	struct m1_fields f;
	struct secure_sess *s;

	cfg.hs_rate_per_s = 0;
	c = secure_ctx_new(&cfg);
	fresh_e_pub(e);
	f = m1_default(e);
	f.version = 2;
	craft_msg1(m, &f);
	CHECK(!secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io));
	CHECK_EQ(secure_ctx_stats(c)->hs_version, 1);
	f = m1_default(e);
	f.index_copy ^= 1;
	craft_msg1(m, &f);
	CHECK(!secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io));
	f = m1_default(e);
	f.index = f.index_copy = 0;
	craft_msg1(m, &f);
	CHECK(!secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io));
	CHECK_EQ(secure_ctx_stats(c)->hs_index_mismatch, 2);
	f = m1_default(e);
	f.mtu = SECURE_MIN_DATAGRAM - 1;
	craft_msg1(m, &f);
	CHECK(!secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io));
	CHECK_EQ(secure_ctx_stats(c)->hs_bad_mtu, 1);
	CHECK_EQ(cap.total, 0);
	/* unknown flag bits are not offered back; the mtu is the smaller one */
	f = m1_default(e);
	f.flags = 0xff;
	f.mtu = 1200;
	craft_msg1(m, &f);
	s = secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ(secure_flags(s), 3);
		CHECK_EQ(secure_max_datagram(s), 1200);
		CHECK_EQ(cap.total, 1);
		CHECK_EQ(cap.pkt[0][0], SECURE_T_RESP);
	}
	secure_sess_free(s);
	secure_ctx_free(c);
}

/* §3.4 step 1: 10/s, burst 20 per source; other sources unaffected. */
static void test_per_source_token_bucket(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c = secure_ctx_new(&cfg);
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in a = src_addr(SRC_IP, SRC_PORT), b = src_addr(SRC_IP + 1, SRC_PORT);
	uint8_t junk[136];

	memset(junk, 0x5a, sizeof(junk));
	junk[0] = 1;
	junk[1] = junk[2] = junk[3] = 0;
	for (int i = 0; i < 25; i++)
		secure_responder_accept(c, junk, 136, (struct sockaddr *)&a, sizeof(a), T0, UNIX_MS, &io);
	CHECK_EQ(secure_ctx_stats(c)->hs_auth_fail, 20);
	CHECK_EQ(secure_ctx_stats(c)->hs_rate, 5);
	secure_responder_accept(c, junk, 136, (struct sockaddr *)&b, sizeof(b), T0, UNIX_MS, &io);
	CHECK_EQ(secure_ctx_stats(c)->hs_auth_fail, 21);
	/* 100 ms later one more token */
	secure_responder_accept(c, junk, 136, (struct sockaddr *)&a, sizeof(a), T0 + 100, UNIX_MS, &io);
	secure_responder_accept(c, junk, 136, (struct sockaddr *)&a, sizeof(a), T0 + 100, UNIX_MS, &io);
	CHECK_EQ(secure_ctx_stats(c)->hs_auth_fail, 22);
	CHECK_EQ(secure_ctx_stats(c)->hs_rate, 6);
	CHECK_EQ(cap.total, 0);
	secure_ctx_free(c);
}

/* A full msg 1 replay cache puts R in cookie mode (§3.4 step 4). */
static void test_full_replay_cache_requires_cookie(void)
{
	struct secure_cfg cfg = cfg_for(true);
	struct secure_ctx *c;
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	struct secure_sess *s[4];
	uint8_t e[32], m[136];
	struct m1_fields f;

	cfg.hs_rate_per_s = 0;
	cfg.replay_cache_entries = 3;
	c = secure_ctx_new(&cfg);
	for (int i = 0; i < 3; i++) {
		fresh_e_pub(e);
		f = m1_default(e);
		craft_msg1(m, &f);
		s[i] = secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io);
		CHECK(s[i] != NULL);
	}
	fresh_e_pub(e);
	f = m1_default(e);
	craft_msg1(m, &f);
	cap.npkts = 0;
	s[3] = secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io);
	CHECK(s[3] == NULL);
	CHECK_EQ(secure_ctx_stats(c)->hs_cookie_required, 1);
	CHECK_EQ(cap.npkts, 1);
	CHECK_EQ(cap.len[0], SECURE_COOKIE_BYTES);
	/* 600 s later (2 × max_skew) the cache has drained: no cookie needed */
	for (int i = 0; i < 3; i++)
		secure_sess_free(s[i]);
	fresh_e_pub(e);
	f = m1_default(e);
	f.unix_ms = UNIX_MS + 600000;
	craft_msg1(m, &f);
	s[3] = secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0 + 600000,
				       UNIX_MS + 600000, &io);
	CHECK(s[3] != NULL);
	secure_sess_free(s[3]);
	secure_ctx_free(c);
}

static void test_half_open_limit_and_timeout(void)
{
	struct secure_cfg cfg = cfg_for(true), icfg = cfg_for(false);
	struct secure_ctx *c, *ci;
	struct cap cap, capi;
	struct secure_io io = cap_io(&cap), ioi = cap_io(&capi);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	struct secure_sess *s[3], *i3[3];
	const struct secure_event *ev;

	cfg.hs_rate_per_s = 0;
	cfg.max_half_open = 2;
	c = secure_ctx_new(&cfg);
	ci = secure_ctx_new(&icfg);
	/* cookie mode would start at 2 × 2 > 2: give each msg 1 a valid mac2 by asking once */
	for (int k = 0; k < 3; k++) {
		capi.npkts = 0;
		i3[k] = secure_initiator_new(ci, 0, T0, UNIX_MS, &ioi);
		s[k] = secure_responder_accept(c, capi.pkt[0], 136, (struct sockaddr *)&src, sizeof(src), T0, UNIX_MS, &io);
		if (!s[k] && cap.npkts && cap.pkt[cap.npkts - 1][0] == SECURE_T_COOKIE) {
			uint8_t got[64];

			secure_open(i3[k], T0, cap.pkt[cap.npkts - 1], 64, got, sizeof(got), NULL);
			s[k] = secure_responder_accept(c, capi.pkt[capi.npkts - 1], 136, (struct sockaddr *)&src,
						       sizeof(src), T0, UNIX_MS, &io);
		}
	}
	CHECK(s[0] && s[1] && !s[2]);
	CHECK_EQ(secure_ctx_stats(c)->hs_half_open_full, 1);
	CHECK_EQ(secure_ctx_stats(c)->half_open, 2);
	CHECK_EQ(secure_next_ms(s[0], T0), T0 + 10000);
	secure_tick(s[0], T0 + 9999, UNIX_MS);
	CHECK_EQ(secure_state(s[0]), SECURE_HALF_OPEN);
	secure_tick(s[0], T0 + 10000, UNIX_MS);
	CHECK_EQ(secure_state(s[0]), SECURE_FAILED);
	ev = cap_find_event(&cap, SECURE_EV_HANDSHAKE_FAILED);
	CHECK(ev && ev->reason == SECURE_HS_HALF_OPEN_TIMEOUT);
	CHECK_EQ(secure_ctx_stats(c)->half_open, 1);
	secure_sess_free(s[0]);
	secure_sess_free(s[1]);
	CHECK_EQ(secure_ctx_stats(c)->half_open, 0);
	CHECK_EQ(secure_ctx_stats(c)->sessions, 0);
	for (int k = 0; k < 3; k++)
		secure_sess_free(i3[k]);
	secure_ctx_free(c);
	secure_ctx_free(ci);
}

static void test_seal_refuses_before_established_and_small_buffers(void)
{
	uint8_t out[64];

	vpair_setup(false, NULL, NULL);
	if (!V.i || !V.r)
		return;
	CHECK_EQ(secure_seal(V.i, T0, (const uint8_t *)"x", 1, out, sizeof(out)), -EAGAIN);
	CHECK_EQ(secure_seal(V.r, T0, (const uint8_t *)"x", 1, out, sizeof(out)), -EAGAIN);
	CHECK_EQ(secure_next_ms(V.i, T0), T0 + 1000);
	secure_open(V.i, T0 + 1, V.capr.pkt[0], 76, out, sizeof(out), NULL);
	CHECK_EQ(secure_seal(V.i, T0 + 2, (const uint8_t *)"x", 1, out, 32), -ENOBUFS);
	CHECK_EQ(secure_seal(V.i, T0 + 2, (const uint8_t *)"x", 1, out, 33), 33);
	CHECK_EQ(secure_seal(V.i, T0 + 2, NULL, 0, out, 32), 32);
	/* closing sends CLOSE under the current keys; R sees the reason */
	V.capi.npkts = 0;
	secure_close(V.i, SECURE_CLOSE_NORMAL);
	CHECK_EQ(secure_state(V.i), SECURE_CLOSED);
	CHECK_EQ(V.capi.npkts, 1);
	CHECK_EQ(V.capi.len[0], 34);
	CHECK_EQ(secure_seal(V.i, T0 + 3, (const uint8_t *)"x", 1, out, sizeof(out)), -EPIPE);
	CHECK_EQ(secure_open(V.r, T0 + 4, V.capi.pkt[0], 34, out, sizeof(out), NULL), 0);
	CHECK_EQ(secure_state(V.r), SECURE_CLOSED);
	vpair_free();
}

/* ---- replay window table (§3.13 item 8) against a set model ---- */

#define MODEL_MAX 20000
static struct {
	bool seen[MODEL_MAX];
	bool any;
	uint64_t highest;
} model;

static int model_check_mark(uint64_t ctr)
{
	if (model.any && ctr <= model.highest) {
		if (model.highest - ctr >= SECURE_REPLAY_WINDOW)
			return -ESTALE;
		if (model.seen[ctr])
			return -EALREADY;
	}
	if (!model.any || ctr > model.highest)
		model.highest = ctr;
	model.any = true;
	model.seen[ctr] = true;
	return 0;
}

/* Feeds seq to a window and the model; returns how many were accepted; counts disagreements. */
static int replay_run(const uint32_t *seq, size_t n, int *disagree)
{
	struct secure_replay w;
	int accepted = 0;

	secure_replay_init(&w);
	memset(&model, 0, sizeof(model));
	for (size_t i = 0; i < n; i++) {
		int got = secure_replay_check(&w, seq[i]), want;
		uint64_t before = model.highest;
		bool had = model.any;

		if (!got) {
			bool top = secure_replay_mark(&w, seq[i]);

			if (top != (!had || seq[i] > before))
				(*disagree)++;
			accepted++;
		}
		want = model_check_mark(seq[i]);
		if (got != want)
			(*disagree)++;
	}
	return accepted;
}

static uint32_t seqbuf[2 * MODEL_MAX];

static void test_replay_window_matches_set_model(void)
{
	int bad = 0, n;

	/* in order: all 10001 */
	for (uint32_t i = 0; i <= 10000; i++)
		seqbuf[i] = i;
	CHECK_EQ(replay_run(seqbuf, 10001, &bad), 10001);
	/* every one twice in a row: the second always refused */
	for (uint32_t i = 0; i <= 10000; i++)
		seqbuf[2 * i] = seqbuf[2 * i + 1] = i;
	CHECK_EQ(replay_run(seqbuf, 20002, &bad), 10001);
	/* reverse: 10000 and the 4031 below it */
	for (uint32_t i = 0; i <= 10000; i++)
		seqbuf[i] = 10000 - i;
	CHECK_EQ(replay_run(seqbuf, 10001, &bad), SECURE_REPLAY_WINDOW);
	/* jump by 5000: 0..99, 5100, then 0..5099 again: only 1069..5099 not seen yet and in window */
	n = 0;
	for (uint32_t i = 0; i < 100; i++)
		seqbuf[n++] = i;
	seqbuf[n++] = 5100;
	for (uint32_t i = 0; i < 5100; i++)
		seqbuf[n++] = i;
	CHECK_EQ(replay_run(seqbuf, (size_t)n, &bad), 100 + 1 + (5100 - (5100 - SECURE_REPLAY_WINDOW + 1)));
	/* random permutation of 0..10000 with 0.1 % duplicates */
	test_rng_seed(6479);
	for (uint32_t i = 0; i <= 10000; i++)
		seqbuf[i] = i;
	for (uint32_t i = 10000; i > 0; i--) {
		uint32_t j = test_rng_below(i + 1), t = seqbuf[i];

		seqbuf[i] = seqbuf[j];
		seqbuf[j] = t;
	}
	n = 10001;
	for (int k = 0; k < 10; k++) {
		uint32_t at = test_rng_below((uint32_t)n);

		memmove(seqbuf + at + 1, seqbuf + at, (size_t)(n - (int)at) * sizeof(seqbuf[0]));
		seqbuf[at] = seqbuf[test_rng_below((uint32_t)n)];
		n++;
	}
	CHECK(replay_run(seqbuf, (size_t)n, &bad) > 0);
	/* shuffled within blocks of 2048 (KCP-like reordering): every counter accepted once, dups refused */
	for (uint32_t i = 0; i <= 10000; i++)
		seqbuf[i] = i;
	for (uint32_t base = 0; base <= 10000; base += 2048) {
		uint32_t len = base + 2048 <= 10001 ? 2048 : 10001 - base;

		for (uint32_t i = len - 1; i > 0; i--) {
			uint32_t j = test_rng_below(i + 1), t = seqbuf[base + i];

			seqbuf[base + i] = seqbuf[base + j];
			seqbuf[base + j] = t;
		}
	}
	seqbuf[10001] = seqbuf[5000];
	seqbuf[10002] = seqbuf[9999];
	CHECK_EQ(replay_run(seqbuf, 10003, &bad), 10001);
	/* counters near 2^64 never wrap the window arithmetic */
	{
		struct secure_replay w;

		secure_replay_init(&w);
		CHECK(secure_replay_mark(&w, UINT64_MAX - 10));
		CHECK_EQ(secure_replay_check(&w, UINT64_MAX - 10), -EALREADY);
		CHECK_EQ(secure_replay_check(&w, 0), -ESTALE);
		CHECK_EQ(secure_replay_check(&w, UINT64_MAX - 11), 0);
		CHECK_EQ(secure_replay_check(&w, UINT64_MAX), 0);
		/* the very top counter: the window must not wrap to "nothing seen" */
		CHECK(secure_replay_mark(&w, UINT64_MAX));
		CHECK_EQ(secure_replay_check(&w, UINT64_MAX), -EALREADY);
		CHECK_EQ(secure_replay_check(&w, UINT64_MAX - 10), -EALREADY);
		CHECK_EQ(secure_replay_check(&w, UINT64_MAX - 11), 0);
		CHECK_EQ(secure_replay_check(&w, 5), -ESTALE);
	}
	CHECK_EQ(bad, 0);
}

/* ---- end to end over a simulated link ---- */

#define LINK_MAX 4096
#define APP_PAYLOAD 40
#define APP_PKT (24 + APP_PAYLOAD + 32)
#define MAX_RS 16

struct lpkt {
	uint32_t due, seq;
	int to_r;
	uint16_t n;
	uint8_t d[160];
};

struct side {
	uint32_t sent, delivered, dup, bad;
	uint32_t next_send_ms, gap_ms, limit;
	uint8_t seen[8192];
	uint32_t last_index, stale_index_ok;	/* receiver indices seen, and packets under a superseded one */
	uint32_t indices[256];
	int nindices;
	int ev[16];
	int close_reason, closed_by_peer;
	uint32_t closed_at, last_delivered_at;
	int hs_fail_reason;
	uint32_t hs_failed_at;
};

static struct net {
	struct lpkt q[LINK_MAX];
	int nq;
	uint32_t seq, now;
	int loss_pct[2], jitter_ms[2];
	uint32_t delay_ms;
	bool drop_rekey_msgs;
	uint32_t lost[2], lost_app[2], filtered[2], pkts[2];
	uint64_t bytes[2];		/* [1]: to R, [0]: from R */
	uint64_t r_in_before_auth, r_out_before_auth;
	bool r_authenticated;
	uint32_t count_len[2][256];	/* packets by length class, per direction (len / 1, capped) */
	/* capture of everything delivered, for the replay test */
	bool capture;
	int ncap;
	struct lpkt cap[3000];

	struct secure_ctx *ci, *cr;
	struct secure_sess *i, *r[MAX_RS];
	int nr;
	struct side s[2];		/* [1]: I (data to R), [0]: R */
	struct secure_io ioi, ior;
} *net;

static void net_enqueue(int to_r, const uint8_t *p, size_t n)
{
	struct lpkt *q;
	int dir = to_r ? 1 : 0;

	net->pkts[dir]++;
	net->bytes[dir] += n;
	net->count_len[dir][n < 255 ? n : 255]++;
	if (!to_r && !net->r_authenticated)
		net->r_out_before_auth += n;
	if (net->drop_rekey_msgs && p[0] == SECURE_T_CONTROL && (n == 72 || n == 76)) {
		net->filtered[dir]++;
		return;
	}
	if (net->loss_pct[dir] && (int)test_rng_below(100) < net->loss_pct[dir]) {
		net->lost[dir]++;
		if (n == APP_PKT)
			net->lost_app[dir]++;
		return;
	}
	if (net->nq >= LINK_MAX || n > sizeof(net->q[0].d)) {
		net->lost[dir]++;
		return;
	}
	q = &net->q[net->nq++];
	q->to_r = to_r;
	q->n = (uint16_t)n;
	memcpy(q->d, p, n);
	q->seq = net->seq++;
	q->due = net->now + net->delay_ms + (net->jitter_ms[dir] ? test_rng_below((uint32_t)net->jitter_ms[dir] + 1) : 0);
}

static void send_from_i(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	net_enqueue(1, p, n);
}

static void send_from_r(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	net_enqueue(0, p, n);
}

static void net_event(struct side *sd, const struct secure_event *ev)
{
	if (ev->type < 16)
		sd->ev[ev->type]++;
	if (ev->type == SECURE_EV_CLOSED) {
		sd->close_reason = ev->reason;
		sd->closed_by_peer = ev->by_peer;
		sd->closed_at = net->now;
	}
	if (ev->type == SECURE_EV_HANDSHAKE_FAILED) {
		sd->hs_fail_reason = ev->reason;
		sd->hs_failed_at = net->now;
	}
}

static void event_i(void *ctx, const struct secure_event *ev)
{
	(void)ctx;
	net_event(&net->s[1], ev);
}

static void event_r(void *ctx, const struct secure_event *ev)
{
	(void)ctx;
	if (ev->type == SECURE_EV_HANDSHAKE_OK)
		net->r_authenticated = true;
	net_event(&net->s[0], ev);
}

static void net_new(uint64_t seed, struct secure_cfg *ci_cfg, struct secure_cfg *cr_cfg)
{
	struct secure_cfg a = cfg_for(false), b = cfg_for(true);

	rnd_reset(seed);
	test_rng_seed(seed);
	net = calloc(1, sizeof(*net));
	net->now = T0;
	net->delay_ms = 10;
	net->ci = secure_ctx_new(ci_cfg ? ci_cfg : &a);
	net->cr = secure_ctx_new(cr_cfg ? cr_cfg : &b);
	net->ioi = (struct secure_io){ NULL, send_from_i, event_i };
	net->ior = (struct secure_io){ NULL, send_from_r, event_r };
	for (int d = 0; d < 2; d++) {
		net->s[d].gap_ms = 5;
		net->s[d].limit = 0;
	}
}

static void net_free(void)
{
	secure_sess_free(net->i);
	for (int k = 0; k < net->nr; k++)
		secure_sess_free(net->r[k]);
	secure_ctx_free(net->ci);
	secure_ctx_free(net->cr);
	free(net);
	net = NULL;
}

static struct secure_sess *net_r_established(void)
{
	for (int k = 0; k < net->nr; k++)
		if (secure_state(net->r[k]) == SECURE_ESTABLISHED)
			return net->r[k];
	return NULL;
}

/* The application: a KCP-shaped datagram with sn = per-direction sequence number. */
static void app_recv(struct side *sd, const uint8_t *pkt, const uint8_t *p, int n)
{
	uint32_t sn, index = get32le(pkt + 4);
	bool known = false;

	if (n != 24 + APP_PAYLOAD || get32le(p) != CONV) {
		sd->bad++;
		return;
	}
	sn = get32le(p + 12);
	if (sn >= sizeof(sd->seen) * 8) {
		sd->bad++;
		return;
	}
	if (sd->seen[sn / 8] >> (sn % 8) & 1) {
		sd->dup++;
		return;
	}
	sd->seen[sn / 8] |= (uint8_t)(1 << (sn % 8));
	sd->delivered++;
	sd->last_delivered_at = net->now;
	/* a packet under a receiver index older than one already seen crossed a key switch */
	for (int k = 0; k < sd->nindices; k++) {
		if (sd->indices[k] == index) {
			known = true;
			if (k != sd->nindices - 1)
				sd->stale_index_ok++;
		}
	}
	if (!known && sd->nindices < (int)N(sd->indices))
		sd->indices[sd->nindices++] = index;
}

static void deliver(const struct lpkt *q)
{
	uint8_t plain[256];
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	struct secure_sess *s;
	int rc;

	if (q->to_r) {
		if (!net->r_authenticated)
			net->r_in_before_auth += q->n;
		if (q->d[0] == SECURE_T_INIT) {
			s = secure_responder_accept(net->cr, q->d, q->n, (struct sockaddr *)&src, sizeof(src), net->now,
						    UNIX_MS + net->now, &net->ior);
			if (s && net->nr < MAX_RS)
				net->r[net->nr++] = s;
			else
				secure_sess_free(s);
			return;
		}
		s = secure_ctx_lookup(net->cr, q->d, q->n);
		if (!s)
			return;
		rc = secure_open(s, net->now, q->d, q->n, plain, sizeof(plain), NULL);
		if (rc > 0)
			app_recv(&net->s[0], q->d, plain, rc);
		return;
	}
	s = secure_ctx_lookup(net->ci, q->d, q->n);
	if (!s)
		return;
	rc = secure_open(s, net->now, q->d, q->n, plain, sizeof(plain), NULL);
	if (rc > 0)
		app_recv(&net->s[1], q->d, plain, rc);
}

static void deliver_due(void)
{
	for (;;) {
		int best = -1;

		for (int k = 0; k < net->nq; k++)
			if (reached_t(net->now, net->q[k].due) &&
			    (best < 0 || net->q[k].due < net->q[best].due ||
			     (net->q[k].due == net->q[best].due && net->q[k].seq < net->q[best].seq)))
				best = k;
		if (best < 0)
			return;
		{
			struct lpkt q = net->q[best];

			net->q[best] = net->q[--net->nq];
			if (net->capture && net->ncap < (int)N(net->cap))
				net->cap[net->ncap++] = q;
			deliver(&q);
		}
	}
}

static void app_send_now(struct side *sd, struct secure_sess *s, bool force)
{
	uint8_t d[128], pkt[256];
	int rc;

	if (!s || secure_state(s) != SECURE_ESTABLISHED || (sd->limit && sd->sent >= sd->limit) ||
	    (!force && !reached_t(net->now, sd->next_send_ms)))
		return;
	kcp_dgram(d, CONV, sd->sent, APP_PAYLOAD);
	rc = secure_seal(s, net->now, d, 24 + APP_PAYLOAD, pkt, sizeof(pkt));
	if (rc < 0)
		return;
	sd->sent++;
	sd->next_send_ms = net->now + sd->gap_ms;
	if (s == net->i)
		net_enqueue(1, pkt, (size_t)rc);
	else
		net_enqueue(0, pkt, (size_t)rc);
}

static void app_send(struct side *sd, struct secure_sess *s)
{
	app_send_now(sd, s, false);
}

static void tick_if_due(struct secure_sess *s)
{
	enum secure_state st = secure_state(s);

	if ((st == SECURE_HANDSHAKE || st == SECURE_HALF_OPEN || st == SECURE_ESTABLISHED) &&
	    reached_t(net->now, secure_next_ms(s, net->now)))
		secure_tick(s, net->now, UNIX_MS + net->now);
}

/* Runs the virtual clock in 1 ms steps to until_ms; timers fire only when secure_next_ms says. */
static void net_run(uint32_t until_ms)
{
	while (net->now != until_ms) {
		net->now++;
		deliver_due();
		app_send(&net->s[1], net->i);
		app_send(&net->s[0], net_r_established());
		if (net->i)
			tick_if_due(net->i);
		for (int k = 0; k < net->nr; k++) {
			tick_if_due(net->r[k]);
			if (secure_state(net->r[k]) == SECURE_FAILED) {
				secure_sess_free(net->r[k]);
				net->r[k--] = net->r[--net->nr];
			}
		}
	}
}

static void net_start(void)
{
	net->i = secure_initiator_new(net->ci, CONV, net->now, UNIX_MS + net->now, &net->ioi);
}

static void test_e2e_handshake_under_loss_and_reorder_then_data_both_ways(void)
{
	const struct secure_stats *si, *sr;

	net_new(11, NULL, NULL);
	net->loss_pct[0] = net->loss_pct[1] = 30;
	net->jitter_ms[0] = net->jitter_ms[1] = 20;
	net->s[0].limit = net->s[1].limit = 400;
	net_start();
	net_run(T0 + 30000);
	si = secure_ctx_stats(net->ci);
	sr = secure_ctx_stats(net->cr);
	CHECK_EQ(secure_state(net->i), SECURE_ESTABLISHED);
	CHECK(net_r_established() != NULL);
	CHECK_EQ(net->s[1].sent, 400);
	CHECK_EQ(net->s[0].sent, 400);
	/* every datagram the link did not lose arrived once, intact */
	CHECK_EQ(net->s[0].delivered + net->lost_app[1], 400);
	CHECK_EQ(net->s[1].delivered + net->lost_app[0], 400);
	CHECK(net->lost_app[0] > 50 && net->lost_app[1] > 50);
	CHECK_EQ(net->s[0].dup + net->s[1].dup + net->s[0].bad + net->s[1].bad, 0);
	CHECK_EQ(si->auth_fail + sr->auth_fail + si->conv_mismatch + sr->conv_mismatch, 0);
	CHECK_EQ(si->handshakes_ok, 1);
	CHECK_EQ(sr->handshakes_ok, 1);
	/* amplification: before R authenticated its peer it sent less than it received */
	CHECK(net->r_out_before_auth > 0);
	CHECK(net->r_out_before_auth < net->r_in_before_auth);
	CHECK(sr->hs_bytes_out < sr->hs_bytes_in);
	CHECK_EQ(sr->msg2_sent * 136, sr->hs_bytes_in);
	net_free();
}

static void test_e2e_wrong_psk_initiator_fails_after_5_attempts_responder_silent(void)
{
	struct secure_cfg b = cfg_for(true);

	b.psk[31] ^= 0x80;
	net_new(12, NULL, &b);
	net_start();
	net_run(T0 + 20000);
	CHECK_EQ(secure_state(net->i), SECURE_FAILED);
	CHECK_EQ(net->s[1].ev[SECURE_EV_HANDSHAKE_FAILED], 1);
	CHECK_EQ(net->s[1].hs_fail_reason, SECURE_HS_NO_REPLY);
	CHECK_EQ(net->s[1].hs_failed_at, T0 + 16000);
	CHECK_EQ(net->pkts[1], 5);
	CHECK_EQ(net->count_len[1][136], 5);
	CHECK_EQ(net->pkts[0], 0);
	CHECK_EQ(net->bytes[0], 0);
	CHECK_EQ(secure_ctx_stats(net->cr)->hs_auth_fail, 5);
	CHECK_EQ(secure_ctx_stats(net->ci)->handshakes_failed, 1);
	/* nothing more is scheduled for a failed session */
	CHECK_EQ(secure_next_ms(net->i, net->now), net->now + 3600000);
	net_free();
}

/* The retry schedule of §3.4: attempts at 0, 1, 3, 7, 15 s, each with a fresh e and index. */
static void test_initiator_retry_schedule_fresh_ephemeral_each_attempt(void)
{
	struct secure_cfg a = cfg_for(false);
	struct secure_ctx *c = secure_ctx_new(&a);
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	struct secure_sess *s = secure_initiator_new(c, CONV, T0, UNIX_MS, &io);
	uint32_t want[5] = { T0, T0 + 1000, T0 + 3000, T0 + 7000, T0 + 15000 }, sent_at[5] = { 0 };
	int k = 1;

	sent_at[0] = T0;
	for (uint32_t now = T0 + 1; now <= T0 + 17000; now++) {
		if (reached_t(now, secure_next_ms(s, now))) {
			int before = cap.npkts;

			secure_tick(s, now, UNIX_MS + (now - T0));
			if (cap.npkts > before && k < 5)
				sent_at[k++] = now;
		}
	}
	CHECK_EQ(cap.npkts, 5);
	for (int j = 0; j < 5; j++)
		CHECK_EQ(sent_at[j], want[j]);
	for (int j = 1; j < 5; j++) {
		CHECK(memcmp(cap.pkt[j] + 8, cap.pkt[j - 1] + 8, 32));	/* e_i */
		CHECK(memcmp(cap.pkt[j] + 4, cap.pkt[j - 1] + 4, 4));	/* index */
	}
	CHECK_EQ(secure_state(s), SECURE_FAILED);
	secure_sess_free(s);
	CHECK_EQ(secure_ctx_stats(c)->sessions, 0);
	secure_ctx_free(c);
}

/* A late msg 2 for an earlier attempt still completes the handshake. */
static void test_late_msg2_for_earlier_attempt_completes(void)
{
	struct secure_cfg a = cfg_for(false), b = cfg_for(true);
	struct secure_ctx *ci = secure_ctx_new(&a), *cr = secure_ctx_new(&b);
	struct cap capi, capr;
	struct secure_io ioi = cap_io(&capi), ior = cap_io(&capr);
	struct sockaddr_in src = src_addr(SRC_IP, SRC_PORT);
	struct secure_sess *i = secure_initiator_new(ci, CONV, T0, UNIX_MS, &ioi), *r;
	uint8_t got[64];

	secure_tick(i, T0 + 1000, UNIX_MS + 1000);
	secure_tick(i, T0 + 3000, UNIX_MS + 3000);
	CHECK_EQ(capi.npkts, 3);
	r = secure_responder_accept(cr, capi.pkt[0], 136, (struct sockaddr *)&src, sizeof(src), T0 + 3001,
				    UNIX_MS + 3001, &ior);
	CHECK(r != NULL);
	CHECK(secure_ctx_lookup(ci, capr.pkt[0], 76) == i);
	CHECK_EQ(secure_open(i, T0 + 3002, capr.pkt[0], 76, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(i), SECURE_ESTABLISHED);
	/* the other attempts' indices are gone */
	{
		uint8_t fake[76];

		memcpy(fake, capr.pkt[0], 76);
		memcpy(fake + 8, capi.pkt[1] + 4, 4);
		CHECK(secure_ctx_lookup(ci, fake, 76) == NULL);
	}
	CHECK_EQ(secure_open(r, T0 + 3003, capi.pkt[3], capi.len[3], got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(r), SECURE_ESTABLISHED);
	secure_sess_free(i);
	secure_sess_free(r);
	secure_ctx_free(ci);
	secure_ctx_free(cr);
}

static void test_e2e_replay_of_every_captured_packet_is_dropped(void)
{
	struct secure_cfg a = cfg_for(false), b = cfg_for(true);
	uint64_t drops_before, pkts_before[2];
	uint32_t delivered_before[2];
	int replayed = 0;

	a.rekey_packets = 60;
	b.rekey_packets = 1ULL << 60;
	net_new(13, &a, &b);
	net->capture = true;
	net->s[0].limit = net->s[1].limit = 150;
	net->s[0].gap_ms = net->s[1].gap_ms = 3;
	net_start();
	net_run(T0 + 3000);
	CHECK(net->s[1].ev[SECURE_EV_EPOCH_SWITCH] >= 2);
	CHECK_EQ(net->s[0].delivered, 150);
	CHECK_EQ(net->s[1].delivered, 150);
	drops_before = drops(secure_ctx_stats(net->ci)) + drops(secure_ctx_stats(net->cr));
	pkts_before[0] = net->pkts[0];
	pkts_before[1] = net->pkts[1];
	delivered_before[0] = net->s[0].delivered;
	delivered_before[1] = net->s[1].delivered;
	net->capture = false;
	for (int k = 0; k < net->ncap; k++) {
		deliver(&net->cap[k]);
		replayed++;
	}
	CHECK(replayed > 300);
	CHECK_EQ(drops(secure_ctx_stats(net->ci)) + drops(secure_ctx_stats(net->cr)), drops_before + (uint64_t)replayed);
	CHECK_EQ(net->pkts[0], pkts_before[0]);
	CHECK_EQ(net->pkts[1], pkts_before[1]);
	CHECK_EQ(net->s[0].delivered, delivered_before[0]);
	CHECK_EQ(net->s[1].delivered, delivered_before[1]);
	CHECK_EQ(secure_state(net->i), SECURE_ESTABLISHED);
	CHECK(net_r_established() != NULL);
	CHECK_EQ(net->nr, 1);
	net_free();
}

static void test_e2e_rekey_by_count_both_directions_no_packet_lost(void)
{
	struct secure_cfg a = cfg_for(false), b = cfg_for(true);
	const struct secure_stats *si, *sr;
	struct secure_sess *r;

	a.rekey_packets = b.rekey_packets = 100;
	net_new(14, &a, &b);
	net->delay_ms = 3;
	net->jitter_ms[0] = net->jitter_ms[1] = 6;	/* reorders across every switch */
	net->s[0].gap_ms = net->s[1].gap_ms = 1;
	net->s[0].limit = net->s[1].limit = 3000;
	net_start();
	net_run(T0 + 4000);
	si = secure_ctx_stats(net->ci);
	sr = secure_ctx_stats(net->cr);
	r = net_r_established();
	CHECK(r != NULL);
	CHECK_EQ(net->s[1].sent, 3000);
	CHECK_EQ(net->s[0].sent, 3000);
	CHECK_EQ(net->s[0].delivered, 3000);
	CHECK_EQ(net->s[1].delivered, 3000);
	CHECK_EQ(net->s[0].dup + net->s[1].dup + net->s[0].bad + net->s[1].bad, 0);
	CHECK(si->rekeys >= 10);
	CHECK(sr->rekeys >= 10);
	CHECK_EQ(si->rekeys, sr->rekeys);
	if (r)
		CHECK_EQ(secure_epoch(net->i), secure_epoch(r));
	/* old-key packets reordered across a switch were accepted */
	CHECK(net->s[0].stale_index_ok > 0);
	CHECK(net->s[1].stale_index_ok > 0);
	/*
	 * Both sides trigger on count, so INITs collide (§3.7.6). The losing INIT may arrive after
	 * the winner's ACK overtook it (reordering): dropped as stale, never more than collisions.
	 */
	CHECK(si->rekey_collision + sr->rekey_collision > 0);
	CHECK(si->rekey_stale + sr->rekey_stale <= si->rekey_collision + sr->rekey_collision);
	CHECK_EQ(drops(si) + drops(sr) - si->rekey_stale - sr->rekey_stale, 0);
	net_free();
}

static void test_e2e_rekey_by_time_initiator_goes_first(void)
{
	net_new(15, NULL, NULL);
	net->s[0].gap_ms = net->s[1].gap_ms = 500;
	net->s[0].limit = net->s[1].limit = 590;
	net_start();
	net_run(T0 + 300000);
	CHECK_EQ(secure_state(net->i), SECURE_ESTABLISHED);
	CHECK(net_r_established() != NULL);
	CHECK_EQ(net->s[1].ev[SECURE_EV_REKEY_START], 2);	/* at ~120 s and ~240 s */
	CHECK_EQ(net->s[0].ev[SECURE_EV_REKEY_START], 0);
	CHECK_EQ(net->s[0].ev[SECURE_EV_RECV_REKEY_INIT], 2);
	CHECK_EQ(net->s[1].ev[SECURE_EV_RECV_REKEY_ACK], 2);
	CHECK_EQ(net->s[0].ev[SECURE_EV_EPOCH_SWITCH], 2);
	CHECK_EQ(net->s[1].ev[SECURE_EV_EPOCH_SWITCH], 2);
	CHECK_EQ(net->s[0].delivered, net->s[1].sent);
	CHECK_EQ(net->s[1].delivered, net->s[0].sent);
	CHECK_EQ(drops(secure_ctx_stats(net->ci)) + drops(secure_ctx_stats(net->cr)), 0);
	net_free();
}

static void test_e2e_rekey_messages_dropped_session_survives_then_closes_reason_3(void)
{
	uint32_t est;

	net_new(16, NULL, NULL);
	net->drop_rekey_msgs = true;
	net->s[0].gap_ms = net->s[1].gap_ms = 1000;
	net_start();
	net_run(T0 + 100);
	CHECK_EQ(secure_state(net->i), SECURE_ESTABLISHED);
	est = T0 + 20;		/* msg 2 arrives after one RTT */
	net_run(est + 179000);
	CHECK_EQ(secure_state(net->i), SECURE_ESTABLISHED);
	CHECK(net_r_established() != NULL);
	CHECK(net->s[1].ev[SECURE_EV_REKEY_START] == 1);
	CHECK(net->s[0].ev[SECURE_EV_REKEY_START] == 1);
	CHECK(net->filtered[1] >= 5 && net->filtered[0] >= 4);
	CHECK(net->s[0].last_delivered_at >= est + 178000);
	CHECK(net->s[1].last_delivered_at >= est + 178000);
	net_run(est + 181000);
	CHECK_EQ(secure_state(net->i), SECURE_CLOSED);
	CHECK_EQ(net->s[1].close_reason, SECURE_CLOSE_REKEY_FAILED);
	CHECK_EQ(net->s[0].close_reason, SECURE_CLOSE_REKEY_FAILED);
	/* each side sent its CLOSE(3), although its key had reached the age limit */
	CHECK_EQ(net->count_len[0][34], 1);
	CHECK_EQ(net->count_len[1][34], 1);
	CHECK(net->s[0].closed_at >= est + 179900 && net->s[0].closed_at <= est + 180100);
	CHECK(net->s[1].closed_at >= est + 179900 && net->s[1].closed_at <= est + 180100);
	CHECK_EQ(secure_ctx_stats(net->ci)->rekeys + secure_ctx_stats(net->cr)->rekeys, 0);
	net_free();
}

/* §3.7.6: both send REKEY_INIT at once; the original initiator's wins, one switch, no retries from R. */
static void test_e2e_rekey_collision_original_initiator_wins(void)
{
	struct secure_sess *r;
	uint32_t r_inits_before;

	net_new(17, NULL, NULL);
	net->s[0].gap_ms = net->s[1].gap_ms = 50;
	net_start();
	net_run(T0 + 500);
	r = net_r_established();
	CHECK(r != NULL);
	if (!r) {
		net_free();
		return;
	}
	/* both cross the count threshold in the same millisecond */
	secure_test_set_send_counter(net->i, 1ULL << 60);
	secure_test_set_send_counter(r, 1ULL << 60);
	app_send_now(&net->s[1], net->i, true);
	app_send_now(&net->s[0], r, true);
	net_run(T0 + 600);
	CHECK_EQ(net->s[1].ev[SECURE_EV_REKEY_START], 1);
	CHECK_EQ(net->s[0].ev[SECURE_EV_REKEY_START], 1);
	CHECK_EQ(secure_ctx_stats(net->ci)->rekey_collision, 1);
	CHECK_EQ(secure_ctx_stats(net->cr)->rekey_collision, 1);
	CHECK_EQ(net->s[0].ev[SECURE_EV_EPOCH_SWITCH], 1);
	CHECK_EQ(net->s[1].ev[SECURE_EV_EPOCH_SWITCH], 1);
	CHECK_EQ(secure_epoch(net->i), 1);
	CHECK_EQ(secure_epoch(r), 1);
	r_inits_before = net->count_len[0][72];
	net->s[0].limit = net->s[0].sent + 100;
	net->s[1].limit = net->s[1].sent + 100;
	net_run(T0 + 30000);
	CHECK_EQ(net->count_len[0][72], r_inits_before);
	CHECK_EQ(secure_epoch(net->i), 1);
	CHECK_EQ(net->s[0].delivered, net->s[1].sent);
	CHECK_EQ(net->s[1].delivered, net->s[0].sent);
	CHECK_EQ(drops(secure_ctx_stats(net->ci)) + drops(secure_ctx_stats(net->cr)), 0);
	net_free();
}

/* Amplification under junk: random 136-byte datagrams get no answer at all. */
static void test_e2e_random_msg1_flood_gets_no_reply(void)
{
	struct secure_cfg b = cfg_for(true);
	struct secure_ctx *c;
	struct cap cap;
	struct secure_io io = cap_io(&cap);
	uint8_t m[136];

	b.hs_rate_per_s = 0;
	c = secure_ctx_new(&b);
	test_rng_seed(18);
	for (int k = 0; k < 3000; k++) {
		struct sockaddr_in src = src_addr(0x0a000000u + (uint32_t)k, (uint16_t)(1000 + k));

		for (int j = 0; j < 136; j++)
			m[j] = (uint8_t)test_rng();
		m[0] = 1;
		m[1] = m[2] = m[3] = 0;
		CHECK(secure_responder_accept(c, m, 136, (struct sockaddr *)&src, sizeof(src), T0 + (uint32_t)k / 3,
					      UNIX_MS, &io) == NULL);
	}
	CHECK_EQ(cap.total, 0);
	CHECK_EQ(secure_ctx_stats(c)->hs_auth_fail, 3000);
	CHECK_EQ(secure_ctx_stats(c)->sessions, 0);
	secure_ctx_free(c);
}

/* An event callback may close its session (not free it): nothing is sent or used after that. */
static struct secure_sess *closing_sess;
static int closing_sent;

static void closing_send(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
	closing_sent++;
}

static void closing_event(void *ctx, const struct secure_event *ev)
{
	(void)ctx;
	if (closing_sess && (ev->type == SECURE_EV_HANDSHAKE_OK || ev->type == SECURE_EV_RECV_REKEY_INIT ||
			     ev->type == SECURE_EV_REKEY_START))
		secure_close(closing_sess, SECURE_CLOSE_LIMIT);
}

static void test_event_callback_may_close_session(void)
{
	struct secure_io cio = { NULL, closing_send, closing_event };
	uint8_t got[64], pkt[128], pl[40] = { SECURE_C_REKEY_INIT };

	/* R closes on HANDSHAKE_OK while opening the key confirmation */
	vpair_setup(false, NULL, NULL);
	secure_open(V.i, T0 + 1, V.capr.pkt[0], 76, got, sizeof(got), NULL);
	secure_sess_set_io(V.r, &cio);
	closing_sess = V.r;
	closing_sent = 0;
	CHECK_EQ(secure_open(V.r, T0 + 2, V.capi.pkt[1], V.capi.len[1], got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(V.r), SECURE_CLOSED);
	CHECK_EQ(closing_sent, 1);	/* its CLOSE */

	/* R closes on RECV_REKEY_INIT: no ACK follows */
	vpair_setup(true, NULL, NULL);
	secure_sess_set_io(V.r, &cio);
	closing_sess = V.r;
	closing_sent = 0;
	put32le(pl + 4, 0x11abcdef);
	memcpy(pl + 8, v_a_pub, 32);
	hand_seal(pkt, SECURE_T_CONTROL, v_k_i2r, R_INDEX, 9, pl, 40);
	CHECK_EQ(secure_open(V.r, T0 + 3, pkt, 72, got, sizeof(got), NULL), 0);
	CHECK_EQ(secure_state(V.r), SECURE_CLOSED);
	CHECK_EQ(closing_sent, 1);

	/* I closes on REKEY_START: no INIT follows, the seal reports the closed session */
	vpair_setup(true, NULL, NULL);
	secure_sess_set_io(V.i, &cio);
	closing_sess = V.i;
	closing_sent = 0;
	secure_test_set_send_counter(V.i, 1ULL << 60);
	CHECK_EQ(secure_seal(V.i, T0 + 3, (const uint8_t *)"x", 1, pkt, sizeof(pkt)), -EPIPE);
	CHECK_EQ(secure_state(V.i), SECURE_CLOSED);
	CHECK_EQ(closing_sent, 1);
	closing_sess = NULL;
	vpair_free();
}

/* Secure_ctx_new refuses what could never work. */
static void test_ctx_new_rejects_zero_psk_and_tiny_mtu(void)
{
	struct secure_cfg cfg = cfg_for(true);

	memset(cfg.psk, 0, 32);
	CHECK(secure_ctx_new(&cfg) == NULL);
	cfg = cfg_for(false);
	cfg.max_datagram = SECURE_MIN_DATAGRAM - 1;
	CHECK(secure_ctx_new(&cfg) == NULL);
}

int main(void)
{
	sod_random_set_hook(rnd_hook, NULL);
	rnd_reset(1);

	RUN(test_hmac_blake2b_matches_reference);
	RUN(test_hkdf_one_two_three_outputs_match_reference);
	RUN(test_psk_fingerprint_matches_reference);
	RUN(test_psk_parse_accepts_64_hex_with_surrounding_space_only);
	RUN(test_noise_core_reproduces_cacophony_nnpsk0);
	RUN(test_noise_core_reproduces_ferry_handshake_state);
	RUN(test_rekey_derivation_matches_reference);
	RUN(test_cookie_formulas_match_reference);
	RUN(test_session_msg1_msg2_and_keys_match_reference);
	RUN(test_session_data_counters_0_1_2pow32_match_reference);
	RUN(test_session_two_rekeys_match_reference);
	RUN(test_rekey_ack_lost_init_retried_and_answered_with_same_ack);
	RUN(test_session_cookie_reply_matches_reference_and_unlocks_handshake);
	RUN(test_msg1_every_bit_flip_dropped_silently_by_reason);
	RUN(test_msg1_flips_leave_no_state_original_still_accepted);
	RUN(test_msg2_every_bit_flip_dropped_then_original_completes);
	RUN(test_data_every_bit_flip_dropped_then_original_opens);
	RUN(test_wrong_psk_msg1_is_hs_auth_fail_and_silent);
	RUN(test_lengths_truncated_and_extended_are_bad_len);
	RUN(test_reserved_bytes_dropped_for_every_type);
	RUN(test_stale_timestamp_and_skew_boundary);
	RUN(test_replayed_msg1_dropped_and_never_touches_session);
	RUN(test_replayed_and_too_old_data_dropped);
	RUN(test_unknown_index_dropped_at_lookup);
	RUN(test_data_with_other_conv_is_conv_mismatch);
	RUN(test_low_order_points_dropped_in_msg1_msg2_and_rekey);
	RUN(test_control_unknown_ctype_and_bad_lengths);
	RUN(test_msg1_payload_checks_version_index_mtu);
	RUN(test_per_source_token_bucket);
	RUN(test_full_replay_cache_requires_cookie);
	RUN(test_half_open_limit_and_timeout);
	RUN(test_seal_refuses_before_established_and_small_buffers);
	RUN(test_replay_window_matches_set_model);
	RUN(test_initiator_retry_schedule_fresh_ephemeral_each_attempt);
	RUN(test_late_msg2_for_earlier_attempt_completes);
	RUN(test_e2e_handshake_under_loss_and_reorder_then_data_both_ways);
	RUN(test_e2e_wrong_psk_initiator_fails_after_5_attempts_responder_silent);
	RUN(test_e2e_replay_of_every_captured_packet_is_dropped);
	RUN(test_e2e_rekey_by_count_both_directions_no_packet_lost);
	RUN(test_e2e_rekey_by_time_initiator_goes_first);
	RUN(test_e2e_rekey_messages_dropped_session_survives_then_closes_reason_3);
	RUN(test_e2e_rekey_collision_original_initiator_wins);
	RUN(test_e2e_random_msg1_flood_gets_no_reply);
	RUN(test_event_callback_may_close_session);
	RUN(test_ctx_new_rejects_zero_psk_and_tiny_mtu);
	vpair_free();
	TEST_EXIT();
}
