/*
 * The Snappy framing format (spec/kcp.md §2.6) that kcptun wraps around the whole smux byte
 * stream: a writer that cuts bytes into checksummed chunks (snappy-compressed or stored) and
 * an incremental reader that takes the stream in any split and hands out one chunk's
 * uncompressed bytes at a time. Block (de)compression is libsnappy's; framing and the
 * masked CRC-32C are ours. Pure: allocation only in snappy_dec_new(), no I/O, no clock.
 */
#ifndef FERRY_PROTO_SNAPPY_FRAME_H
#define FERRY_PROTO_SNAPPY_FRAME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SNAPPY_FRAME_MAX_CHUNK 65536		/* uncompressed bytes per chunk */
#define SNAPPY_FRAME_MAX_COMPRESSED 76490	/* snappy_max_compressed_length(65536) */
#define SNAPPY_FRAME_ID_BYTES 10		/* the stream identifier chunk */
#define SNAPPY_FRAME_CHUNK_HDR_BYTES 4		/* type, 3-byte length */
#define SNAPPY_FRAME_CRC_BYTES 4		/* masked CRC-32C in front of the data */

#define SNAPPY_CHUNK_COMPRESSED 0x00
#define SNAPPY_CHUNK_STORED 0x01
#define SNAPPY_CHUNK_PADDING 0xfe
#define SNAPPY_CHUNK_STREAM_ID 0xff

/* ff 06 00 00 "sNaPpY" */
extern const uint8_t snappy_frame_stream_id[SNAPPY_FRAME_ID_BYTES];

/* The masked CRC-32C of p[0..n) that a chunk carries: rotate right by 15, add 0xa282ead8. */
uint32_t snappy_frame_crc(const uint8_t *p, size_t n);

/* ---- writer ---- */

/* The first call with input on a new stream also emits the stream identifier. */
struct snappy_enc {
	bool started;
};

/*
 * The out buffer snappy_frame_encode() needs for n input bytes: identifier, chunk headers,
 * the data stored, and the room libsnappy wants to compress a chunk in place.
 */
size_t snappy_frame_max(size_t n);
/*
 * Encodes in[0..n) (any length, cut into chunks of at most 65536 bytes), each chunk stored
 * when compression saves less than 1/8. out must hold snappy_frame_max(n) bytes and must not
 * overlap in. Returns the bytes written (0 for n = 0: an empty write emits nothing).
 */
size_t snappy_frame_encode(struct snappy_enc *e, const uint8_t *in, size_t n, uint8_t *out);

/* ---- reader ---- */

struct snappy_dec;

/* NULL when out of memory. About 140 KiB: one chunk as read and one decompressed. */
struct snappy_dec *snappy_dec_new(void);
void snappy_dec_free(struct snappy_dec *d);
/* Back to the start of a new stream (expects the identifier again); keeps the buffers. */
void snappy_dec_reset(struct snappy_dec *d);
/*
 * Consumes input until one chunk's uncompressed data is pending (then stops: returns what
 * it consumed) or the input ends; consumes nothing while data is pending. Chunks may be
 * split anywhere. Returns bytes consumed or -EBADMSG (reason: snappy_dec_reason()), sticky.
 */
ssize_t snappy_dec_feed(struct snappy_dec *d, const uint8_t *in, size_t n);
/* Decoded bytes not yet taken (*p valid until the next feed or take). */
size_t snappy_dec_pending(struct snappy_dec *d, const uint8_t **p);
/* Marks n of the pending bytes taken (more than pending = all of them). */
void snappy_dec_take(struct snappy_dec *d, size_t n);

/* Why the stream was rejected: one countable reason each. */
enum snappy_frame_err {
	SNAPPY_FRAME_E_NO_ID = 1,	/* the first chunk is not a stream identifier */
	SNAPPY_FRAME_E_BAD_ID,		/* a stream identifier that is not ff 06 00 00 sNaPpY */
	SNAPPY_FRAME_E_RESERVED,	/* reserved unskippable chunk type 0x02-0x7f */
	SNAPPY_FRAME_E_LENGTH,		/* data chunk shorter than its checksum, or too long */
	SNAPPY_FRAME_E_CORRUPT,		/* libsnappy rejects the block, or it decodes to > 65536 */
	SNAPPY_FRAME_E_CRC,		/* checksum mismatch */
	SNAPPY_FRAME_E_COUNT
};
/* 0 while the stream is fine, else SNAPPY_FRAME_E_*. */
int snappy_dec_reason(const struct snappy_dec *d);
/* "no_id", "bad_id", ... for logs and counter names; "?" for anything else. */
const char *snappy_frame_err_name(int reason);

#endif
