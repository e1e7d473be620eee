/*
 * kcptun's FEC layer (spec/kcp.md §2.5): the packet header, the Reed–Solomon code over
 * GF(2^8), the encoder that adds ps parity packets after every ds data packets and the
 * decoder that rebuilds lost data packets of a group once any ds of its packets arrived.
 * Not here: the crypt header around it (crypto/kcptun_crypt.c) and KCP itself.
 *
 * The code: GF(2^8) with the primitive polynomial 0x11d and generator 2; the
 * (ds+ps) x ds Vandermonde matrix V[r][c] = r^c multiplied by the inverse of its top
 * ds x ds block, so the top is the identity and rows ds.. are the parity coefficients
 * (the Backblaze / klauspost construction kcp-go uses). Multiplication goes through a
 * 64 KiB table built once, one 256-byte row per coefficient.
 *
 * The decoder mirrors kcp-go 5.6.1: an ordered queue of at most 3 groups' worth of packets,
 * duplicates dropped, entries older than 60 s expired from the front, data always passed on
 * at once, missing data rebuilt as soon as a group holds ds packets. Two additions: a short
 * list of finished groups, so late parity is dropped instead of waiting in the queue and
 * being decoded again; and on a flag that contradicts the expected position (the peer uses
 * other ds/ps) the decoder stops rebuilding until it has recognised the peer's pattern,
 * rather than decoding with the wrong matrix.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fec.h"

#define GF_POLY 0x11d
/* §2.5: seqids wrap at the largest multiple of the group size that fits in a u32 */
#define FEC_SEQ_MAX 0xffffffffu
/* enough consecutive (seqid, flag) samples for a data run and a parity run with their edges */
#define FEC_TUNE_SAMPLES (FEC_MAX_SHARDS + 3)
/* finished groups remembered, so late parity of the last few is recognised */
#define FEC_DONE_GROUPS 8

/* ---- GF(2^8) ---- */

static uint8_t gf_exp[510];
static uint8_t gf_log[256];
static uint8_t gf_mul_tab[256][256];
static pthread_once_t gf_once = PTHREAD_ONCE_INIT;

static void gf_init(void)
{
	unsigned x = 1;

	for (int i = 0; i < 255; i++) {
		gf_exp[i] = (uint8_t)x;
		gf_exp[i + 255] = (uint8_t)x;
		gf_log[x] = (uint8_t)i;
		x <<= 1;
		if (x & 0x100)
			x ^= GF_POLY;
	}
	for (int a = 1; a < 256; a++)
		for (int b = 1; b < 256; b++)
			gf_mul_tab[a][b] = gf_exp[gf_log[a] + gf_log[b]];
}

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
	return gf_mul_tab[a][b];
}

static uint8_t gf_inv(uint8_t a)
{
	return gf_exp[255 - gf_log[a]];
}

/* a^n in the field, with 0^0 = 1 as the Vandermonde matrix needs */
static uint8_t gf_pow(uint8_t a, int n)
{
	if (n == 0)
		return 1;
	if (a == 0)
		return 0;
	return gf_exp[(gf_log[a] * n) % 255];
}

/* dst[0..n) ^= c * src[0..n) */
static void gf_mul_add(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c)
{
	const uint8_t *t = gf_mul_tab[c];

	if (c == 0)
		return;
	if (c == 1) {
		for (size_t k = 0; k < n; k++)
			dst[k] ^= src[k];
		return;
	}
	for (size_t k = 0; k < n; k++)
		dst[k] ^= t[src[k]];
}

/* Gauss–Jordan: m (n x n, destroyed) → inv. Returns 0, or -EINVAL when m is singular. */
static int gf_invert(uint8_t *m, uint8_t *inv, int n)
{
	memset(inv, 0, (size_t)n * (size_t)n);
	for (int i = 0; i < n; i++)
		inv[i * n + i] = 1;
	for (int c = 0; c < n; c++) {
		int p = c;
		uint8_t f;

		while (p < n && !m[p * n + c])
			p++;
		if (p == n)
			return -EINVAL;
		if (p != c) {
			for (int k = 0; k < n; k++) {
				uint8_t t = m[p * n + k];

				m[p * n + k] = m[c * n + k];
				m[c * n + k] = t;
				t = inv[p * n + k];
				inv[p * n + k] = inv[c * n + k];
				inv[c * n + k] = t;
			}
		}
		f = gf_inv(m[c * n + c]);
		for (int k = 0; k < n; k++) {
			m[c * n + k] = gf_mul(m[c * n + k], f);
			inv[c * n + k] = gf_mul(inv[c * n + k], f);
		}
		for (int r = 0; r < n; r++) {
			f = m[r * n + c];
			if (r == c || !f)
				continue;
			gf_mul_add(m + r * n, m + c * n, (size_t)n, f);
			gf_mul_add(inv + r * n, inv + c * n, (size_t)n, f);
		}
	}
	return 0;
}

/* Parity rows (ps x ds) = V[ds..ds+ps) x inverse(V[0..ds)); work holds 2 * ds * ds bytes. */
static int rs_rows(int ds, int ps, uint8_t *rows, uint8_t *work)
{
	uint8_t *top = work, *inv = work + ds * ds;

	for (int r = 0; r < ds; r++)
		for (int c = 0; c < ds; c++)
			top[r * ds + c] = gf_pow((uint8_t)r, c);
	if (gf_invert(top, inv, ds))
		return -EINVAL;
	for (int j = 0; j < ps; j++) {
		for (int c = 0; c < ds; c++) {
			uint8_t acc = 0;

			for (int k = 0; k < ds; k++)
				acc ^= gf_mul(gf_pow((uint8_t)(ds + j), k), inv[k * ds + c]);
			rows[j * ds + c] = acc;
		}
	}
	return 0;
}

static bool params_ok(int ds, int ps)
{
	return ds >= 1 && ps >= 1 && ds + ps <= FEC_MAX_SHARDS;
}

int fec_rs_parity_rows(int ds, int ps, uint8_t *rows)
{
	uint8_t *work;
	int err;

	if (!params_ok(ds, ps))
		return -EINVAL;
	pthread_once(&gf_once, gf_init);
	work = malloc(2 * (size_t)ds * (size_t)ds);
	if (!work)
		return -ENOMEM;
	err = rs_rows(ds, ps, rows, work);
	free(work);
	return err;
}

static uint32_t paws_of(int shard)
{
	return FEC_SEQ_MAX / (uint32_t)shard * (uint32_t)shard;
}

/* ---- header ---- */

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

bool fec_is_fec(const uint8_t *p, size_t n)
{
	uint16_t flag;

	if (n < FEC_HDR_BYTES)
		return false;
	flag = get_le16(p + 4);
	return flag == FEC_FLAG_DATA || flag == FEC_FLAG_PARITY;
}

const char *fec_err_name(int err)
{
	static const char *const names[FEC_E_COUNT] = {
		[FEC_E_SHORT] = "short",
		[FEC_E_LONG] = "too long",
		[FEC_E_FLAG] = "flag",
		[FEC_E_SIZE] = "size",
		[FEC_E_DUP] = "duplicate",
	};

	if (err < 0)
		err = -err;
	return err > 0 && err < FEC_E_COUNT ? names[err] : "?";
}

/* ---- encoder ---- */

struct fec_enc {
	int ds, ps;
	uint32_t paws;
	uint32_t next;			/* seqid of the next packet */
	int count;			/* data shards in the current group */
	size_t max_len;			/* longest of them */
	bool ready;			/* a finished group's parity can be read */
	uint32_t parity_seqid;		/* seqid of its parity packet 0 */
	size_t parity_len;		/* its parity length */
	uint8_t *rows;			/* ps x ds */
	uint16_t *len;			/* ds */
	uint8_t *shards;		/* ds x FEC_MAX_SHARD_BYTES */
};

struct fec_enc *fec_enc_new(int ds, int ps)
{
	struct fec_enc *e;
	uint8_t *work = NULL;

	if (!params_ok(ds, ps))
		return NULL;
	pthread_once(&gf_once, gf_init);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ds = ds;
	e->ps = ps;
	e->paws = paws_of(ds + ps);
	e->rows = malloc((size_t)ps * (size_t)ds);
	e->len = calloc((size_t)ds, sizeof(*e->len));
	e->shards = malloc((size_t)ds * FEC_MAX_SHARD_BYTES);
	work = malloc(2 * (size_t)ds * (size_t)ds);
	if (!e->rows || !e->len || !e->shards || !work)
		goto fail;
	if (rs_rows(ds, ps, e->rows, work))
		goto fail;
	free(work);
	return e;

fail:
	free(work);
	fec_enc_free(e);
	return NULL;
}

void fec_enc_free(struct fec_enc *e)
{
	if (!e)
		return;
	free(e->rows);
	free(e->len);
	free(e->shards);
	free(e);
}

void fec_enc_set_next_seqid(struct fec_enc *e, uint32_t seqid)
{
	uint32_t shard = (uint32_t)(e->ds + e->ps);

	seqid %= e->paws;
	e->next = seqid - seqid % shard;
	e->count = 0;
	e->max_len = 0;
	e->ready = false;
}

int fec_enc_data(struct fec_enc *e, uint8_t *pkt, size_t n)
{
	size_t len;

	if (n < FEC_DATA_HDR_BYTES)
		return -EINVAL;
	if (n > FEC_MAX_PKT_BYTES)
		return -EMSGSIZE;
	len = n - FEC_HDR_BYTES;
	e->ready = false;
	put_le32(pkt, e->next);
	put_le16(pkt + 4, FEC_FLAG_DATA);
	put_le16(pkt + FEC_HDR_BYTES, (uint16_t)len);
	e->next = (e->next + 1) % e->paws;

	memcpy(e->shards + (size_t)e->count * FEC_MAX_SHARD_BYTES, pkt + FEC_HDR_BYTES, len);
	e->len[e->count++] = (uint16_t)len;
	if (len > e->max_len)
		e->max_len = len;
	if (e->count < e->ds)
		return 0;

	/* parity takes the next ps seqids; the group ends at or before the wrap point */
	e->parity_seqid = e->next;
	e->next = (uint32_t)(((uint64_t)e->next + (uint64_t)e->ps) % e->paws);
	e->parity_len = e->max_len;
	e->count = 0;
	e->max_len = 0;
	e->ready = true;
	return e->ps;
}

size_t fec_enc_parity(struct fec_enc *e, int i, uint8_t *out, size_t cap)
{
	const uint8_t *coef = e->rows + (size_t)i * (size_t)e->ds;
	uint8_t *p = out + FEC_HDR_BYTES;

	if (!e->ready || i < 0 || i >= e->ps || cap < FEC_HDR_BYTES + e->parity_len)
		return 0;
	put_le32(out, e->parity_seqid + (uint32_t)i);
	put_le16(out + 4, FEC_FLAG_PARITY);
	/* shorter shards count as zero-padded: their missing tail adds nothing */
	memset(p, 0, e->parity_len);
	for (int k = 0; k < e->ds; k++)
		gf_mul_add(p, e->shards + (size_t)k * FEC_MAX_SHARD_BYTES, e->len[k], coef[k]);
	return FEC_HDR_BYTES + e->parity_len;
}

/* ---- decoder ---- */

struct fec_slot {
	uint32_t seqid;
	uint32_t ts;			/* now_ms when queued */
	uint16_t len;			/* shard bytes (packet minus the 6-byte header) */
	bool data;
	uint8_t *shard;
};

struct fec_sample {
	uint32_t seqid;
	uint8_t flag;			/* 0: empty */
};

struct fec_dec {
	int cap;			/* ds + ps the storage is sized for; 0: FEC off */
	int ds, ps, shard;		/* in use (0 with FEC off) */
	uint32_t paws;
	int limit;			/* queue bound: FEC_QUEUE_GROUPS * shard */
	bool suspect;			/* a flag contradicted its position: ds/ps unknown */

	int nq;				/* queued entries, order[0..nq) sorted by seqid */
	uint16_t *order;
	int nfree;
	uint16_t *free_slots;
	struct fec_slot *slots;		/* FEC_QUEUE_GROUPS * cap + 1 */
	uint8_t *storage;

	uint32_t done[FEC_DONE_GROUPS];	/* first seqids of finished groups */
	int ndone, done_pos;

	struct fec_sample *tune;	/* FEC_TUNE_SAMPLES, indexed by seqid */

	uint8_t *rows;			/* ps x ds, room for cap x cap */
	uint8_t *mat;			/* 2 x cap x cap: decoding matrix, or rs_rows' work */
	uint8_t *inv;			/* cap x cap: its inverse */
	int16_t *present;		/* cap: slot of each group position, or -1 */
	uint8_t *out;			/* a rebuilt shard */

	struct fec_stats st;
};

static void dec_queue_clear(struct fec_dec *d)
{
	int nslots = FEC_QUEUE_GROUPS * d->cap + 1;

	d->nq = 0;
	d->nfree = nslots;
	for (int i = 0; i < nslots; i++)
		d->free_slots[i] = (uint16_t)(nslots - 1 - i);
	d->ndone = 0;
	d->done_pos = 0;
}

/* Switches to ds/ps (already checked against cap); the queue starts empty. */
static int dec_set_params(struct fec_dec *d, int ds, int ps)
{
	if (rs_rows(ds, ps, d->rows, d->mat))
		return -EINVAL;
	d->ds = ds;
	d->ps = ps;
	d->shard = ds + ps;
	d->paws = paws_of(d->shard);
	d->limit = FEC_QUEUE_GROUPS * d->shard;
	d->suspect = false;
	dec_queue_clear(d);
	return 0;
}

struct fec_dec *fec_dec_new(int ds, int ps)
{
	struct fec_dec *d;
	size_t nslots, cap2;

	if (ds < 0 || ps < 0 || ds + ps > FEC_MAX_SHARDS)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	if (!ds || !ps)
		return d;
	pthread_once(&gf_once, gf_init);
	d->cap = ds + ps;
	nslots = FEC_QUEUE_GROUPS * (size_t)d->cap + 1;
	cap2 = (size_t)d->cap * (size_t)d->cap;
	d->order = calloc(nslots, sizeof(*d->order));
	d->free_slots = calloc(nslots, sizeof(*d->free_slots));
	d->slots = calloc(nslots, sizeof(*d->slots));
	d->storage = malloc(nslots * FEC_MAX_SHARD_BYTES);
	d->rows = malloc(cap2);
	d->mat = malloc(2 * cap2);
	d->inv = malloc(cap2);
	d->present = calloc((size_t)d->cap, sizeof(*d->present));
	d->out = malloc(FEC_MAX_SHARD_BYTES);
	d->tune = calloc(FEC_TUNE_SAMPLES, sizeof(*d->tune));
	if (!d->order || !d->free_slots || !d->slots || !d->storage || !d->rows || !d->mat || !d->inv ||
	    !d->present || !d->out || !d->tune)
		goto fail;
	for (size_t i = 0; i < nslots; i++)
		d->slots[i].shard = d->storage + i * FEC_MAX_SHARD_BYTES;
	if (dec_set_params(d, ds, ps))
		goto fail;
	return d;

fail:
	fec_dec_free(d);
	return NULL;
}

void fec_dec_free(struct fec_dec *d)
{
	if (!d)
		return;
	free(d->order);
	free(d->free_slots);
	free(d->slots);
	free(d->storage);
	free(d->rows);
	free(d->mat);
	free(d->inv);
	free(d->present);
	free(d->out);
	free(d->tune);
	free(d);
}

const struct fec_stats *fec_dec_stats(const struct fec_dec *d)
{
	return &d->st;
}

void fec_dec_params(const struct fec_dec *d, int *ds, int *ps)
{
	bool known = d->shard && !d->suspect;

	*ds = known ? d->ds : 0;
	*ps = known ? d->ps : 0;
}

/* Removes order[first .. first+count) from the queue. */
static void dec_remove(struct fec_dec *d, int first, int count)
{
	for (int i = first; i < first + count; i++)
		d->free_slots[d->nfree++] = d->order[i];
	memmove(d->order + first, d->order + first + count, (size_t)(d->nq - first - count) * sizeof(*d->order));
	d->nq -= count;
}

static struct fec_slot *dec_at(struct fec_dec *d, int i)
{
	return &d->slots[d->order[i]];
}

static void dec_expire(struct fec_dec *d, uint32_t now_ms)
{
	int n = 0;

	while (n < d->nq && (int32_t)(now_ms - dec_at(d, n)->ts) > FEC_EXPIRE_MS)
		n++;
	if (n) {
		dec_remove(d, 0, n);
		d->st.expired += (uint64_t)n;
	}
}

static bool dec_group_done(const struct fec_dec *d, uint32_t base)
{
	for (int i = 0; i < d->ndone; i++)
		if (d->done[i] == base)
			return true;
	return false;
}

static void dec_mark_done(struct fec_dec *d, uint32_t base)
{
	d->done[d->done_pos] = base;
	d->done_pos = (d->done_pos + 1) % FEC_DONE_GROUPS;
	if (d->ndone < FEC_DONE_GROUPS)
		d->ndone++;
}

/*
 * Where seqid goes in the ordered queue (searching from the back: packets mostly arrive in
 * order), or -1 when it is already there.
 */
static int dec_insert_pos(struct fec_dec *d, uint32_t seqid)
{
	for (int i = d->nq - 1; i >= 0; i--) {
		int32_t diff = (int32_t)(seqid - dec_at(d, i)->seqid);

		if (diff == 0)
			return -1;
		if (diff > 0)
			return i + 1;
	}
	return 0;
}

static void dec_insert(struct fec_dec *d, int pos, uint32_t now_ms, uint32_t seqid, const uint8_t *p, size_t n,
		       bool data)
{
	uint16_t idx = d->free_slots[--d->nfree];
	struct fec_slot *s = &d->slots[idx];

	s->seqid = seqid;
	s->ts = now_ms;
	s->len = (uint16_t)(n - FEC_HDR_BYTES);
	s->data = data;
	memcpy(s->shard, p + FEC_HDR_BYTES, s->len);
	memmove(d->order + pos + 1, d->order + pos, (size_t)(d->nq - pos) * sizeof(*d->order));
	d->order[pos] = idx;
	d->nq++;
}

/*
 * Rebuilds the missing data shards of a group from the ds packets picked (present data
 * first, then parity) and delivers each valid one.
 */
static void dec_rebuild(struct fec_dec *d, fec_deliver_fn fn, void *ctx)
{
	int ds = d->ds, npick = 0, pick[FEC_MAX_SHARDS];
	size_t maxlen = 0;

	/* data positions come first, so present data is picked before parity */
	for (int pos = 0; pos < d->shard; pos++) {
		if (d->present[pos] < 0)
			continue;
		if (npick < ds)
			pick[npick++] = pos;
		/* kcp-go pads every shard of the group to the longest one, picked or not */
		if (d->slots[d->present[pos]].len > maxlen)
			maxlen = d->slots[d->present[pos]].len;
	}

	for (int k = 0; k < ds; k++) {
		uint8_t *row = d->mat + k * ds;

		if (pick[k] < ds) {
			memset(row, 0, (size_t)ds);
			row[pick[k]] = 1;
		} else {
			memcpy(row, d->rows + (pick[k] - ds) * ds, (size_t)ds);
		}
	}
	if (gf_invert(d->mat, d->inv, ds)) {
		d->st.unrecoverable++;
		return;
	}
	for (int m = 0; m < ds; m++) {
		uint16_t size;

		if (d->present[m] >= 0)
			continue;
		memset(d->out, 0, maxlen);
		for (int k = 0; k < ds; k++) {
			const struct fec_slot *s = &d->slots[d->present[pick[k]]];

			gf_mul_add(d->out, s->shard, s->len, d->inv[m * ds + k]);
		}
		size = get_le16(d->out);
		if (size < 2 || size > maxlen) {
			d->st.recovered_bad++;
			continue;
		}
		d->st.recovered++;
		fn(ctx, d->out + 2, size - 2u, false);
	}
}

/*
 * After inserting at pos: finish the group of that packet once it holds ds distinct
 * positions. (The queue order is wrap-safe, not total, so a peer choosing seqids 2^31
 * apart could get one seqid queued twice; positions are counted, not entries.)
 */
static void dec_try_group(struct fec_dec *d, int pos, fec_deliver_fn fn, void *ctx)
{
	uint32_t seqid = dec_at(d, pos)->seqid;
	uint32_t base = seqid - seqid % (uint32_t)d->shard;
	int first = pos, last = pos, npresent = 0, ndata = 0;

	while (first > 0 && dec_at(d, first - 1)->seqid - base < (uint32_t)d->shard)
		first--;
	while (last + 1 < d->nq && dec_at(d, last + 1)->seqid - base < (uint32_t)d->shard)
		last++;
	if (last - first + 1 < d->ds)
		return;

	for (int k = 0; k < d->shard; k++)
		d->present[k] = -1;
	for (int i = first; i <= last; i++) {
		uint32_t at = dec_at(d, i)->seqid - base;

		if (d->present[at] >= 0)
			continue;
		d->present[at] = (int16_t)d->order[i];
		npresent++;
		ndata += at < (uint32_t)d->ds;
	}
	if (npresent < d->ds)
		return;
	if (ndata < d->ds)
		dec_rebuild(d, fn, ctx);
	dec_remove(d, first, last - first + 1);
	dec_mark_done(d, base);
}

/* ---- auto-detection of the peer's ds/ps ---- */

static void tune_sample(struct fec_dec *d, uint32_t seqid, uint8_t flag)
{
	struct fec_sample *t = &d->tune[seqid % FEC_TUNE_SAMPLES];

	t->seqid = seqid;
	t->flag = flag;
}

static uint8_t tune_get(const struct fec_dec *d, uint32_t seqid)
{
	const struct fec_sample *t = &d->tune[seqid % FEC_TUNE_SAMPLES];

	return t->seqid == seqid ? t->flag : 0;
}

/*
 * Looks back from seqid (the first packet of a new run) for two whole runs of consecutive
 * seqids, one data and one parity, bounded by packets of the other kind: their lengths are
 * the peer's ds and ps if the data run starts a group.
 */
static bool tune_detect(const struct fec_dec *d, uint32_t seqid, int *ds, int *ps)
{
	uint8_t f0 = tune_get(d, seqid), f1 = tune_get(d, seqid - 1);
	uint32_t s = seqid - 1, len1 = 0, len2 = 0, data_start, shard;

	if (!f0 || !f1 || f0 == f1)
		return false;
	while (tune_get(d, s) == f1 && len1 < FEC_MAX_SHARDS) {
		len1++;
		s--;
	}
	while (tune_get(d, s) == f0 && len2 < FEC_MAX_SHARDS) {
		len2++;
		s--;
	}
	if (!len2 || tune_get(d, s) != f1)
		return false;
	shard = len1 + len2;
	/* run 2 starts at s + 1, run 1 right after it */
	data_start = f1 == FEC_FLAG_DATA ? s + 1 + len2 : s + 1;
	if (shard > FEC_MAX_SHARDS || data_start % shard)
		return false;
	*ds = (int)(f1 == FEC_FLAG_DATA ? len1 : len2);
	*ps = (int)(shard - (uint32_t)*ds);
	return true;
}

/*
 * Checks the packet's flag against the parameters in use; on a contradiction, or while one
 * is unresolved, looks for the peer's pattern. Returns true when the packet may be queued.
 */
static bool dec_check_params(struct fec_dec *d, uint32_t seqid, uint8_t flag)
{
	bool want_data = seqid % (uint32_t)d->shard < (uint32_t)d->ds;
	int ds, ps;

	tune_sample(d, seqid, flag);
	if (want_data != (flag == FEC_FLAG_DATA) || seqid >= d->paws) {
		d->st.mismatch++;
		d->suspect = true;
	}
	if (!d->suspect)
		return true;
	if (!tune_detect(d, seqid, &ds, &ps))
		return false;
	if (ds + ps > d->cap) {
		d->st.tune_refused++;
		return false;
	}
	if (ds == d->ds && ps == d->ps) {
		d->suspect = false;
	} else {
		if (dec_set_params(d, ds, ps))
			return false;
		d->st.retuned++;
	}
	want_data = seqid % (uint32_t)d->shard < (uint32_t)d->ds;
	return want_data == (flag == FEC_FLAG_DATA) && seqid < d->paws;
}

/* ---- input ---- */

static int dec_reject(struct fec_dec *d, int err)
{
	d->st.err[err]++;
	return -err;
}

static void dec_deliver_data(struct fec_dec *d, const uint8_t *p, uint16_t size, fec_deliver_fn fn, void *ctx)
{
	d->st.data_in++;
	fn(ctx, p + FEC_DATA_HDR_BYTES, size - 2u, true);
}

/* FEC on: queue the packet, deliver it if data, and finish its group when it can be. */
static int dec_queue(struct fec_dec *d, uint32_t now_ms, const uint8_t *p, size_t n, uint16_t size,
		     fec_deliver_fn fn, void *ctx)
{
	uint32_t seqid = get_le32(p);
	bool data = size != 0;
	int pos;

	if (!dec_check_params(d, seqid, data ? FEC_FLAG_DATA : FEC_FLAG_PARITY)) {
		if (data)
			dec_deliver_data(d, p, size, fn, ctx);
		else
			d->st.parity_ignored++;
		return 0;
	}
	if (dec_group_done(d, seqid - seqid % (uint32_t)d->shard)) {
		/* data may be the original of a shard we rebuilt: KCP drops what it has */
		if (data)
			dec_deliver_data(d, p, size, fn, ctx);
		else
			d->st.late++;
		return 0;
	}
	pos = dec_insert_pos(d, seqid);
	if (pos < 0)
		return dec_reject(d, FEC_E_DUP);
	if (data)
		dec_deliver_data(d, p, size, fn, ctx);
	else
		d->st.parity_in++;
	dec_insert(d, pos, now_ms, seqid, p, n, data);
	dec_try_group(d, pos, fn, ctx);
	if (d->nq > d->limit) {
		if (dec_at(d, 0)->data)
			d->st.unrecoverable++;
		dec_remove(d, 0, 1);
	}
	return 0;
}

int fec_dec_input(struct fec_dec *d, uint32_t now_ms, const uint8_t *p, size_t n, fec_deliver_fn fn,
		  void *ctx)
{
	uint16_t flag, size = 0;

	if (n < FEC_DATA_HDR_BYTES)
		return dec_reject(d, FEC_E_SHORT);
	if (n > FEC_MAX_PKT_BYTES)
		return dec_reject(d, FEC_E_LONG);
	flag = get_le16(p + 4);
	if (flag != FEC_FLAG_DATA && flag != FEC_FLAG_PARITY)
		return dec_reject(d, FEC_E_FLAG);
	if (flag == FEC_FLAG_DATA) {
		size = get_le16(p + FEC_HDR_BYTES);
		if (size < 2 || FEC_HDR_BYTES + (size_t)size > n)
			return dec_reject(d, FEC_E_SIZE);
	}
	if (d->cap) {
		dec_expire(d, now_ms);
		return dec_queue(d, now_ms, p, n, size, fn, ctx);
	}
	/* FEC off here: data goes on, parity is of no use */
	if (size)
		dec_deliver_data(d, p, size, fn, ctx);
	else
		d->st.parity_ignored++;
	return 0;
}
