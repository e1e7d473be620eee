/*
 * smux v1/v2 (spec/kcp.md §2.7), the stream multiplexer kcptun runs inside one KCP session:
 * the 8-byte frame header, an incremental parser that takes the KCP byte stream in any
 * split and hands out frames (PSH payloads piece by piece, so nothing is copied twice), and
 * the v2 per-stream flow-control arithmetic. Pure: no sockets, no clock, no allocation.
 * The stream table and the keepalive timers belong to the caller (relay/kcp.c).
 */
#ifndef FERRY_PROTO_SMUX_H
#define FERRY_PROTO_SMUX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SMUX_HDR_BYTES 8
#define SMUX_UPD_BYTES 8		/* UPD payload: consumed u32, window u32 */
#define SMUX_MAX_PAYLOAD 65535
#define SMUX_CMD_SYN 0
#define SMUX_CMD_FIN 1
#define SMUX_CMD_PSH 2
#define SMUX_CMD_NOP 3
#define SMUX_CMD_UPD 4			/* v2 only */
#define SMUX_V2_INITIAL_WINDOW 262144	/* peer window assumed until its first UPD */
#define SMUX_KEEPALIVE_MS 10000		/* kcptun --keepalive 10 */
#define SMUX_KEEPALIVE_TIMEOUT_MS 30000	/* smux KeepAliveTimeout */

struct smux_hdr {
	uint8_t ver;
	uint8_t cmd;
	uint16_t len;
	uint32_t sid;
};

/* Writes the 8-byte header (little-endian length and sid). */
void smux_hdr_write(uint8_t out[SMUX_HDR_BYTES], uint8_t ver, uint8_t cmd, uint16_t len, uint32_t sid);
/* Writes a whole UPD frame (header + consumed + window), 16 bytes. */
void smux_upd_write(uint8_t out[SMUX_HDR_BYTES + SMUX_UPD_BYTES], uint8_t ver, uint32_t sid,
		    uint32_t consumed, uint32_t window);

/*
 * What the parser hands out. frame() gets every frame but PSH payload bytes: SYN, FIN, NOP
 * (length 0), UPD (consumed/window decoded; 0 for the others), and the PSH header itself
 * before its payload. data() gets PSH payload pieces for h->sid in order; it returns how
 * many it took (0..n) — fewer than n stops smux_feed() there, and the next call resumes
 * with the bytes not taken. frame() returns 0, or a negative value that stops the session.
 */
struct smux_handler {
	void *ctx;
	int (*frame)(void *ctx, const struct smux_hdr *h, uint32_t consumed, uint32_t window);
	size_t (*data)(void *ctx, uint32_t sid, const uint8_t *p, size_t n);
};

struct smux_parser {
	uint8_t ver;			/* the configured version: every frame must carry it */
	uint8_t hdr[SMUX_HDR_BYTES];
	uint8_t upd[SMUX_UPD_BYTES];
	uint8_t have;			/* header (or UPD payload) bytes collected */
	bool in_payload;
	struct smux_hdr cur;
	uint32_t left;			/* payload bytes of cur still to come */
	int error;			/* sticky: once set every feed fails */
};

void smux_parser_init(struct smux_parser *ps, uint8_t ver);
/*
 * Consumes bytes of the stream. Returns the number consumed (< n only when data() took
 * fewer bytes than offered), or -EPROTO on a fatal protocol error:
 * a version other than the configured one, an unknown cmd, UPD in v1, a UPD whose length
 * is not 8, a SYN/FIN/NOP with a payload. A negative return of frame() is passed through.
 * Either error is sticky: every later call returns it again without reading.
 * PSH of length 0 is ignored.
 */
ssize_t smux_feed(struct smux_parser *ps, const struct smux_handler *h, const uint8_t *p, size_t n);

/*
 * Why smux_feed() failed, one countable reason each (the feed itself returns -EPROTO for all
 * protocol errors): 0 while it has not failed, else SMUX_E_*. Read from the offending header
 * the parser keeps, so it costs nothing until asked.
 */
enum smux_err {
	SMUX_E_VERSION = 1,		/* ver != the configured version */
	SMUX_E_CMD,			/* cmd > 4 */
	SMUX_E_UPD_V1,			/* UPD on a v1 session */
	SMUX_E_UPD_LENGTH,		/* UPD whose length is not 8 */
	SMUX_E_PAYLOAD,			/* SYN, FIN or NOP with a non-zero length */
	SMUX_E_HANDLER,			/* frame() returned a negative value */
	SMUX_E_COUNT
};
int smux_parser_reason(const struct smux_parser *ps);
/* "version", "cmd", ... for logs and counter names; "?" for anything else. */
const char *smux_err_name(int reason);

/*
 * v2 flow control of one stream (§2.7), all counters mod 2^32.
 * Send side: written = bytes sent in PSH frames; the peer's last UPD gives peer_consumed
 * and peer_window. Receive side: consumed = bytes the application took; window = ours.
 */
struct smux_flow {
	uint32_t written, peer_consumed, peer_window;
	uint32_t consumed, consumed_at_upd, window;
	bool upd_sent;
};

void smux_flow_init(struct smux_flow *f, uint32_t our_window);
/* Bytes that may be sent now: peer_window - (written - peer_consumed), 0 if none. */
uint32_t smux_flow_send_room(const struct smux_flow *f);
void smux_flow_on_written(struct smux_flow *f, uint32_t n);
/* A UPD arrived: -EPROTO when it claims more consumed than was written. */
int smux_flow_on_upd(struct smux_flow *f, uint32_t consumed, uint32_t window);
/* The application read n bytes: true when a UPD must go out now (first read, then every
 * half window of reads); the caller sends smux_upd_write(..., f->consumed, f->window) and
 * calls smux_flow_upd_sent(). */
bool smux_flow_on_read(struct smux_flow *f, uint32_t n);
void smux_flow_upd_sent(struct smux_flow *f);

#endif
