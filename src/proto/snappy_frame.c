/*
 * The Snappy framing format (spec/kcp.md §2.6; google/snappy framing_format.txt).
 *
 * A stream is a sequence of chunks: type(1) ‖ length(3, LE) ‖ body(length). The first chunk
 * is the stream identifier (ff, 6, "sNaPpY"), which may repeat later and must always match.
 * Data chunks (0x00 compressed block, 0x01 stored) start their body with the masked CRC-32C
 * of the uncompressed data and hold at most 65536 uncompressed bytes. Padding (0xfe) and
 * reserved skippable chunks (0x80-0xfd) are skipped unread; reserved unskippable types
 * (0x02-0x7f) end the stream.
 *
 * The reader is a two-state machine that never needs more than one chunk of look-ahead:
 *   header  collect 4 bytes, check type and length against the limits below;
 *   body    copy the body into d->body (or count it off, for skipped chunks); at its end
 *           check it and, for data, make its uncompressed bytes pending.
 * While bytes are pending the reader consumes nothing, so the caller's loop feed ->
 * pending/take bounds the decoded data in flight to one chunk.
 *
 * Not here: when to flush (kcptun flushes after every smux frame: the caller calls
 * snappy_frame_encode() once per frame). libsnappy's compressor allocates its own scratch
 * per call; that is the only allocation on the data path and it is not ours to remove.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "core/crc32.h"
#include "proto/snappy_frame.h"

/* framing_format.txt §3: the CRC is masked so that a CRC over data holding CRCs stays sane */
#define SNAPPY_CRC_MASK_DELTA 0xa282ead8u
/* the stream identifier's body: "sNaPpY" */
#define SNAPPY_ID_BODY_BYTES 6
/* the last reserved unskippable type; 0x80-0xfd are reserved skippable */
#define SNAPPY_CHUNK_UNSKIPPABLE_LAST 0x7f
/* body limits of data chunks: checksum + at most one chunk's worth of data */
#define SNAPPY_STORED_MAX_BODY (SNAPPY_FRAME_CRC_BYTES + SNAPPY_FRAME_MAX_CHUNK)
#define SNAPPY_COMPRESSED_MAX_BODY (SNAPPY_FRAME_CRC_BYTES + SNAPPY_FRAME_MAX_COMPRESSED)

const uint8_t snappy_frame_stream_id[SNAPPY_FRAME_ID_BYTES] = {
	SNAPPY_CHUNK_STREAM_ID, SNAPPY_ID_BODY_BYTES, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y',
};

static void put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t snappy_frame_crc(const uint8_t *p, size_t n)
{
	uint32_t c = crc32c(0, p, n);

	return ((c >> 15) | (c << 17)) + SNAPPY_CRC_MASK_DELTA;
}

/* ---- writer ---- */

size_t snappy_frame_max(size_t n)
{
	size_t chunks = (n + SNAPPY_FRAME_MAX_CHUNK - 1) / SNAPPY_FRAME_MAX_CHUNK;
	size_t first = n < SNAPPY_FRAME_MAX_CHUNK ? n : SNAPPY_FRAME_MAX_CHUNK;
	/* a chunk is compressed in place and may spill this far past its stored size */
	size_t slack = snappy_max_compressed_length(first) - first;

	return SNAPPY_FRAME_ID_BYTES +
	       chunks * (SNAPPY_FRAME_CHUNK_HDR_BYTES + SNAPPY_FRAME_CRC_BYTES) + n + slack;
}

/* One chunk of n <= 65536 bytes at out. Returns its length on the wire. */
static size_t chunk_write(const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t *data = out + SNAPPY_FRAME_CHUNK_HDR_BYTES + SNAPPY_FRAME_CRC_BYTES;
	size_t dlen = snappy_max_compressed_length(n);
	uint8_t type = SNAPPY_CHUNK_COMPRESSED;

	/* the same rule as the Go writer kcptun uses: keep the block only if it saves 1/8 */
	if (snappy_compress((const char *)in, n, (char *)data, &dlen) != SNAPPY_OK ||
	    dlen >= n - n / 8) {
		type = SNAPPY_CHUNK_STORED;
		dlen = n;
		memcpy(data, in, n);
	}
	/* the type byte goes over the top byte of the little-endian length */
	put_u32le(out, (uint32_t)(dlen + SNAPPY_FRAME_CRC_BYTES) << 8 | type);
	put_u32le(out + SNAPPY_FRAME_CHUNK_HDR_BYTES, snappy_frame_crc(in, n));
	return SNAPPY_FRAME_CHUNK_HDR_BYTES + SNAPPY_FRAME_CRC_BYTES + dlen;
}

size_t snappy_frame_encode(struct snappy_enc *e, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t pos = 0;

	if (!n)
		return 0;
	if (!e->started) {
		memcpy(out, snappy_frame_stream_id, SNAPPY_FRAME_ID_BYTES);
		pos = SNAPPY_FRAME_ID_BYTES;
		e->started = true;
	}
	while (n) {
		size_t k = n < SNAPPY_FRAME_MAX_CHUNK ? n : SNAPPY_FRAME_MAX_CHUNK;

		pos += chunk_write(in, k, out + pos);
		in += k;
		n -= k;
	}
	return pos;
}

/* ---- reader ---- */

struct snappy_dec {
	uint8_t hdr[SNAPPY_FRAME_CHUNK_HDR_BYTES];
	uint8_t have;			/* header bytes collected */
	bool in_body;
	bool seen_id;			/* the stream identifier came first */
	uint8_t type;			/* of the current chunk */
	uint32_t len;			/* its body length */
	uint32_t got;			/* body bytes collected (or skipped) */
	int reason;			/* sticky: SNAPPY_FRAME_E_* once the stream is rejected */
	const uint8_t *pend;		/* decoded bytes not yet taken: in body or out */
	size_t pend_len;
	uint8_t body[SNAPPY_COMPRESSED_MAX_BODY];
	uint8_t out[SNAPPY_FRAME_MAX_CHUNK];
};

struct snappy_dec *snappy_dec_new(void)
{
	return calloc(1, sizeof(struct snappy_dec));
}

void snappy_dec_free(struct snappy_dec *d)
{
	free(d);
}

void snappy_dec_reset(struct snappy_dec *d)
{
	/* everything before the buffers: their contents are never read before being written */
	memset(d, 0, offsetof(struct snappy_dec, body));
}

static bool chunk_skipped(uint8_t type)
{
	return type > SNAPPY_CHUNK_UNSKIPPABLE_LAST && type != SNAPPY_CHUNK_STREAM_ID;
}

/* A whole chunk header is in d->hdr: 0, or the SNAPPY_FRAME_E_* its type or length breaks. */
static int chunk_start(struct snappy_dec *d)
{
	d->type = d->hdr[0];
	d->len = (uint32_t)d->hdr[1] | (uint32_t)d->hdr[2] << 8 | (uint32_t)d->hdr[3] << 16;
	d->got = 0;
	d->have = 0;
	d->in_body = true;
	if (!d->seen_id && d->type != SNAPPY_CHUNK_STREAM_ID)
		return SNAPPY_FRAME_E_NO_ID;
	switch (d->type) {
	case SNAPPY_CHUNK_STREAM_ID:
		return d->len != SNAPPY_ID_BODY_BYTES ? SNAPPY_FRAME_E_BAD_ID : 0;
	case SNAPPY_CHUNK_COMPRESSED:
		if (d->len < SNAPPY_FRAME_CRC_BYTES || d->len > SNAPPY_COMPRESSED_MAX_BODY)
			return SNAPPY_FRAME_E_LENGTH;
		return 0;
	case SNAPPY_CHUNK_STORED:
		if (d->len < SNAPPY_FRAME_CRC_BYTES || d->len > SNAPPY_STORED_MAX_BODY)
			return SNAPPY_FRAME_E_LENGTH;
		return 0;
	default:
		return chunk_skipped(d->type) ? 0 : SNAPPY_FRAME_E_RESERVED;
	}
}

/* Uncompresses the block in the body into d->out: 0 or SNAPPY_FRAME_E_CORRUPT. */
static int block_uncompress(struct snappy_dec *d, const uint8_t *p, size_t n, size_t *len)
{
	const char *c = (const char *)p;

	if (snappy_uncompressed_length(c, n, len) != SNAPPY_OK || *len > SNAPPY_FRAME_MAX_CHUNK)
		return SNAPPY_FRAME_E_CORRUPT;
	if (snappy_uncompress(c, n, (char *)d->out, len) != SNAPPY_OK)
		return SNAPPY_FRAME_E_CORRUPT;
	return 0;
}

/* The body of a data chunk is complete: check it, make its data pending. */
static int chunk_data(struct snappy_dec *d)
{
	const uint8_t *data = d->body + SNAPPY_FRAME_CRC_BYTES;
	size_t len = d->len - SNAPPY_FRAME_CRC_BYTES;
	int err;

	if (d->type == SNAPPY_CHUNK_COMPRESSED) {
		err = block_uncompress(d, data, len, &len);
		if (err)
			return err;
		data = d->out;
	}
	if (snappy_frame_crc(data, len) != get_u32le(d->body))
		return SNAPPY_FRAME_E_CRC;
	d->pend = data;
	d->pend_len = len;
	return 0;
}

/* The current chunk's body is complete. */
static int chunk_end(struct snappy_dec *d)
{
	d->in_body = false;
	if (d->type == SNAPPY_CHUNK_STREAM_ID) {
		if (memcmp(d->body, snappy_frame_stream_id + SNAPPY_FRAME_CHUNK_HDR_BYTES,
			   SNAPPY_ID_BODY_BYTES))
			return SNAPPY_FRAME_E_BAD_ID;
		d->seen_id = true;
		return 0;
	}
	if (chunk_skipped(d->type))
		return 0;
	return chunk_data(d);
}

static ssize_t dec_fail(struct snappy_dec *d, int reason)
{
	d->reason = reason;
	return -EBADMSG;
}

ssize_t snappy_dec_feed(struct snappy_dec *d, const uint8_t *in, size_t n)
{
	size_t off = 0, k;
	int err;

	if (d->reason)
		return -EBADMSG;
	while (!d->pend_len) {
		if (!d->in_body) {
			if (off == n)
				break;
			k = SNAPPY_FRAME_CHUNK_HDR_BYTES - d->have;
			if (k > n - off)
				k = n - off;
			memcpy(d->hdr + d->have, in + off, k);
			d->have = (uint8_t)(d->have + k);
			off += k;
			if (d->have < SNAPPY_FRAME_CHUNK_HDR_BYTES)
				break;
			err = chunk_start(d);
			if (err)
				return dec_fail(d, err);
		}
		/* a body may be empty (padding of length 0): finish it even at the end of input */
		k = d->len - d->got;
		if (k > n - off)
			k = n - off;
		if (!chunk_skipped(d->type))
			memcpy(d->body + d->got, in + off, k);
		d->got += (uint32_t)k;
		off += k;
		if (d->got < d->len)
			break;
		err = chunk_end(d);
		if (err)
			return dec_fail(d, err);
	}
	return (ssize_t)off;
}

size_t snappy_dec_pending(struct snappy_dec *d, const uint8_t **p)
{
	*p = d->pend;
	return d->pend_len;
}

void snappy_dec_take(struct snappy_dec *d, size_t n)
{
	if (n > d->pend_len)
		n = d->pend_len;
	if (!n)
		return;
	d->pend += n;
	d->pend_len -= n;
}

int snappy_dec_reason(const struct snappy_dec *d)
{
	return d->reason;
}

const char *snappy_frame_err_name(int reason)
{
	switch (reason) {
	case 0:
		return "ok";
	case SNAPPY_FRAME_E_NO_ID:
		return "no_id";
	case SNAPPY_FRAME_E_BAD_ID:
		return "bad_id";
	case SNAPPY_FRAME_E_RESERVED:
		return "reserved";
	case SNAPPY_FRAME_E_LENGTH:
		return "length";
	case SNAPPY_FRAME_E_CORRUPT:
		return "corrupt";
	case SNAPPY_FRAME_E_CRC:
		return "crc";
	default:
		return "?";
	}
}
