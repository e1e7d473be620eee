/*
 * smux v1/v2 (spec/kcp.md §2.7): the frame header, the incremental parser and the v2
 * per-stream flow-control arithmetic.
 *
 * The parser is a two-state machine over the byte stream:
 *   header   collect 8 bytes (they may arrive one at a time), check them, then
 *            SYN/FIN/NOP -> frame(), back to header;
 *            PSH length 0 -> ignored, back to header;
 *            PSH         -> frame(), payload;
 *            UPD         -> payload (its 8 bytes collected, then frame() with them decoded);
 *   payload  hand PSH bytes to data() as they come; data() may take fewer, which stops the
 *            feed where it did, so the caller can retry the rest later (backpressure).
 * Any protocol error is fatal for the session and sticky. The offending header stays in
 * ps->hdr, which is how smux_parser_reason() tells the reasons apart afterwards.
 *
 * Not here: the stream table, SYN/FIN semantics, keepalive timers (relay/kcp.c).
 * Pure: no allocation, no clock, no I/O. Multi-byte fields are little-endian, assembled
 * byte by byte.
 */
#include <errno.h>
#include <string.h>

#include "proto/smux.h"

static void put_u16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
	put_u16le(p, (uint16_t)v);
	put_u16le(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get_u16le(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)get_u16le(p) | (uint32_t)get_u16le(p + 2) << 16;
}

void smux_hdr_write(uint8_t out[SMUX_HDR_BYTES], uint8_t ver, uint8_t cmd, uint16_t len, uint32_t sid)
{
	out[0] = ver;
	out[1] = cmd;
	put_u16le(out + 2, len);
	put_u32le(out + 4, sid);
}

void smux_upd_write(uint8_t out[SMUX_HDR_BYTES + SMUX_UPD_BYTES], uint8_t ver, uint32_t sid,
		    uint32_t consumed, uint32_t window)
{
	smux_hdr_write(out, ver, SMUX_CMD_UPD, SMUX_UPD_BYTES, sid);
	put_u32le(out + SMUX_HDR_BYTES, consumed);
	put_u32le(out + SMUX_HDR_BYTES + 4, window);
}

/* ---- parser ---- */

void smux_parser_init(struct smux_parser *ps, uint8_t ver)
{
	memset(ps, 0, sizeof(*ps));
	ps->ver = ver;
}

/* §2.7's rules for a header, in the order checked: 0 or the SMUX_E_* it breaks. */
static int hdr_check(const struct smux_parser *ps, const struct smux_hdr *h)
{
	if (h->ver != ps->ver)
		return SMUX_E_VERSION;
	switch (h->cmd) {
	case SMUX_CMD_SYN:
	case SMUX_CMD_FIN:
	case SMUX_CMD_NOP:
		return h->len ? SMUX_E_PAYLOAD : 0;
	case SMUX_CMD_PSH:
		return 0;
	case SMUX_CMD_UPD:
		if (ps->ver == 1)
			return SMUX_E_UPD_V1;
		return h->len != SMUX_UPD_BYTES ? SMUX_E_UPD_LENGTH : 0;
	default:
		return SMUX_E_CMD;
	}
}

static void hdr_read(const uint8_t p[SMUX_HDR_BYTES], struct smux_hdr *h)
{
	h->ver = p[0];
	h->cmd = p[1];
	h->len = get_u16le(p + 2);
	h->sid = get_u32le(p + 4);
}

static int parser_fail(struct smux_parser *ps, int err)
{
	ps->error = err;
	return err;
}

/* A whole header is in ps->hdr: check it and decide what follows. */
static int on_header(struct smux_parser *ps, const struct smux_handler *h)
{
	hdr_read(ps->hdr, &ps->cur);
	ps->have = 0;
	if (hdr_check(ps, &ps->cur))
		return -EPROTO;
	switch (ps->cur.cmd) {
	case SMUX_CMD_PSH:
		if (!ps->cur.len)
			return 0;
		ps->in_payload = true;
		ps->left = ps->cur.len;
		return h->frame(h->ctx, &ps->cur, 0, 0);
	case SMUX_CMD_UPD:
		ps->in_payload = true;
		ps->left = SMUX_UPD_BYTES;
		return 0;
	default:
		return h->frame(h->ctx, &ps->cur, 0, 0);
	}
}

/* Collects UPD payload bytes from p; frame() once all 8 are in. Returns bytes used or < 0. */
static ssize_t on_upd_bytes(struct smux_parser *ps, const struct smux_handler *h,
			    const uint8_t *p, size_t n)
{
	size_t k = SMUX_UPD_BYTES - ps->have;
	int err;

	if (k > n)
		k = n;
	memcpy(ps->upd + ps->have, p, k);
	ps->have = (uint8_t)(ps->have + k);
	ps->left -= (uint32_t)k;
	if (ps->have < SMUX_UPD_BYTES)
		return (ssize_t)k;
	ps->have = 0;
	ps->in_payload = false;
	err = h->frame(h->ctx, &ps->cur, get_u32le(ps->upd), get_u32le(ps->upd + 4));
	return err < 0 ? err : (ssize_t)k;
}

ssize_t smux_feed(struct smux_parser *ps, const struct smux_handler *h, const uint8_t *p, size_t n)
{
	size_t off = 0;

	if (ps->error)
		return ps->error;
	while (off < n) {
		if (!ps->in_payload) {
			size_t k = SMUX_HDR_BYTES - ps->have;
			int err;

			if (k > n - off)
				k = n - off;
			memcpy(ps->hdr + ps->have, p + off, k);
			ps->have = (uint8_t)(ps->have + k);
			off += k;
			if (ps->have < SMUX_HDR_BYTES)
				break;
			err = on_header(ps, h);
			if (err < 0)
				return parser_fail(ps, err);
		} else if (ps->cur.cmd == SMUX_CMD_UPD) {
			ssize_t used = on_upd_bytes(ps, h, p + off, n - off);

			if (used < 0)
				return parser_fail(ps, (int)used);
			off += (size_t)used;
		} else {
			size_t offer = n - off, took;

			if (offer > ps->left)
				offer = ps->left;
			took = h->data(h->ctx, ps->cur.sid, p + off, offer);
			/* a handler claiming more than it was offered took what was offered */
			if (took > offer)
				took = offer;
			off += took;
			ps->left -= (uint32_t)took;
			if (!ps->left)
				ps->in_payload = false;
			if (took < offer)
				break;
		}
	}
	return (ssize_t)off;
}

int smux_parser_reason(const struct smux_parser *ps)
{
	struct smux_hdr h;
	int reason;

	if (!ps->error)
		return 0;
	hdr_read(ps->hdr, &h);
	reason = hdr_check(ps, &h);
	return reason ? reason : SMUX_E_HANDLER;
}

const char *smux_err_name(int reason)
{
	switch (reason) {
	case 0:
		return "ok";
	case SMUX_E_VERSION:
		return "version";
	case SMUX_E_CMD:
		return "cmd";
	case SMUX_E_UPD_V1:
		return "upd_v1";
	case SMUX_E_UPD_LENGTH:
		return "upd_length";
	case SMUX_E_PAYLOAD:
		return "payload";
	case SMUX_E_HANDLER:
		return "handler";
	default:
		return "?";
	}
}

/* ---- v2 flow control (§2.7; counters mod 2^32 as smux keeps them) ---- */

void smux_flow_init(struct smux_flow *f, uint32_t our_window)
{
	memset(f, 0, sizeof(*f));
	f->peer_window = SMUX_V2_INITIAL_WINDOW;
	f->window = our_window;
}

static uint32_t flow_inflight(const struct smux_flow *f)
{
	return f->written - f->peer_consumed;
}

uint32_t smux_flow_send_room(const struct smux_flow *f)
{
	uint32_t inflight = flow_inflight(f);

	return inflight < f->peer_window ? f->peer_window - inflight : 0;
}

void smux_flow_on_written(struct smux_flow *f, uint32_t n)
{
	f->written += n;
}

/*
 * smux computes inflight = int32(written - consumed) and fails the stream when it is
 * negative: a peer claiming to have consumed bytes we never sent, seen through the wrap.
 */
int smux_flow_on_upd(struct smux_flow *f, uint32_t consumed, uint32_t window)
{
	if (f->written - consumed > (uint32_t)INT32_MAX)
		return -EPROTO;
	f->peer_consumed = consumed;
	f->peer_window = window;
	return 0;
}

bool smux_flow_on_read(struct smux_flow *f, uint32_t n)
{
	if (!n)
		return false;
	f->consumed += n;
	return !f->upd_sent || f->consumed - f->consumed_at_upd >= f->window / 2;
}

void smux_flow_upd_sent(struct smux_flow *f)
{
	f->upd_sent = true;
	f->consumed_at_upd = f->consumed;
}
