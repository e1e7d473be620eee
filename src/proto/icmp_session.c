/*
 * ICMP tunnel sessions (spec/pkthere.md §3.3–3.6): the negotiation, sequence and replay
 * rules of both ends, with no I/O. See icmp_session.h for the two roles.
 */
#include <errno.h>
#include <string.h>

#include "proto/icmp_session.h"

uint64_t icmp_ids_take(struct icmp_ids *ids, unsigned n)
{
	/* IDs are nonzero and a session's S + 1 must exist, so skip the wrap-around. */
	if (ids->next == 0 || ids->next > UINT64_MAX - n - 1)
		ids->next = 1;
	uint64_t v = ids->next;
	ids->next += n;
	return v;
}

static bool key_eq(const struct shim_key *a, const struct shim_key *b)
{
	return a->generation == b->generation && a->ordinal == b->ordinal && a->session == b->session;
}

/* ---------------- upstream side ---------------- */

static void tx_new(struct icmp_ids *ids, struct icmp_tx *tx, uint64_t generation, uint32_t ordinal)
{
	memset(tx, 0, sizeof(*tx));
	tx->key.generation = generation;
	tx->key.ordinal = ordinal;
	tx->key.session = icmp_ids_take(ids, 2);	/* S for us, S + 1 for the replies */
	shim_replay_init(&tx->rx);
}

void icmp_up_init(struct icmp_up *u, struct icmp_ids *ids)
{
	memset(u, 0, sizeof(*u));
	u->ids = ids;
}

void icmp_up_reset(struct icmp_up *u)
{
	u->state = ICMP_UP_IDLE;
	u->have_prev = false;
	u->next_pending = u->next_ready = false;
	u->ctl_pending = false;
}

static void up_queue_ctl(struct icmp_up *u, uint64_t now_ms, struct icmp_tx *tx)
{
	u->ctl.echo_id = u->echo_id;
	u->ctl.f.kind = SHIM_CONTROL;
	u->ctl.f.source_id = u->source_id;
	u->ctl.f.reply_id = u->reply_id;
	u->ctl.f.key = tx->key;
	u->ctl_tx = tx;
	u->ctl_pending = true;
	u->ctl_started_ms = now_ms;
	u->ctl_due_ms = now_ms;
	u->ctl_tries = 0;
}

static void up_negotiate(struct icmp_up *u, uint64_t now_ms, struct icmp_tx *tx)
{
	memset(&u->ctl.f, 0, sizeof(u->ctl.f));
	u->ctl.f.op = SHIM_OP_NEGOTIATE;
	up_queue_ctl(u, now_ms, tx);
}

static void up_start(struct icmp_up *u, uint64_t now_ms)
{
	tx_new(u->ids, &u->cur, icmp_ids_take(u->ids, 1), 0);
	u->have_prev = false;
	u->next_pending = u->next_ready = false;
	u->state = ICMP_UP_NEGOTIATING;
	up_negotiate(u, now_ms, &u->cur);
}

/* Starts negotiating a reserve session, same generation, next ordinal (§3.4), unless one is under way. */
static void up_reserve(struct icmp_up *u, uint64_t now_ms)
{
	if (u->next_pending || u->next_ready || u->ctl_pending)
		return;
	tx_new(u->ids, &u->next, u->cur.key.generation, u->cur.key.ordinal + 1);
	u->next_pending = true;
	up_negotiate(u, now_ms, &u->next);
}

/* Takes the next request sequence of the active session, rolling over when it runs out. */
static int up_take_seq(struct icmp_up *u, uint64_t now_ms, uint16_t *seq)
{
	if (u->cur.next_seq >= ICMP_SEQS_PER_SESSION) {
		if (!u->next_ready) {
			/* the reserve may have timed out: without a new one the stall never ends */
			up_reserve(u, now_ms);
			u->pool_empty_stalls++;
			return -ENOSPC;
		}
		u->prev = u->cur;
		u->have_prev = true;
		u->cur = u->next;
		u->next_ready = false;
		u->handoffs++;
	}
	*seq = (uint16_t)u->cur.next_seq++;
	u->cur.last_seq = *seq;
	u->cur.sent_any = true;
	if (ICMP_SEQS_PER_SESSION - u->cur.next_seq <= ICMP_ROLLOVER_HEADROOM_SEQS)
		up_reserve(u, now_ms);
	return 0;
}

static void up_frame(struct icmp_up *u, struct icmp_out *o, enum shim_kind kind)
{
	memset(&o->f, 0, sizeof(o->f));
	o->f.kind = kind;
	o->f.source_id = u->source_id;
	o->f.session = u->cur.key.session;
	o->echo_id = u->echo_id;
}

int icmp_up_data(struct icmp_up *u, uint64_t now_ms, struct icmp_out *o)
{
	int err;

	if (u->state == ICMP_UP_IDLE) {
		up_start(u, now_ms);
		return -EINPROGRESS;
	}
	if (u->state != ICMP_UP_READY)
		return -EAGAIN;
	up_frame(u, o, SHIM_DATA);
	err = up_take_seq(u, now_ms, &o->seq);
	o->f.session = u->cur.key.session;	/* may have rolled over */
	return err;
}

int icmp_up_cadence(struct icmp_up *u, struct icmp_out *o)
{
	if (u->state != ICMP_UP_READY)
		return -EAGAIN;
	up_frame(u, o, SHIM_CADENCE);
	/*
	 * No clock here: a reserve negotiation this starts gets its time from its first
	 * icmp_up_poll (see there), so pass a placeholder.
	 */
	int err = up_take_seq(u, u->ctl_started_ms, &o->seq);
	o->f.session = u->cur.key.session;
	return err;
}

int icmp_up_poll(struct icmp_up *u, uint64_t now_ms, struct icmp_out *o)
{
	if (!u->ctl_pending)
		return 0;
	/* the handshake timeout runs from the first send (icmp_up_cadence queues without a clock) */
	if (u->ctl_tries == 0)
		u->ctl_started_ms = u->ctl_due_ms = now_ms;
	if (now_ms - u->ctl_started_ms >= u->handshake_timeout_ms) {
		u->ctl_pending = false;
		if (u->ctl_tx == &u->next) {
			/* the reserve did not come up; the active session carries on */
			u->next_pending = false;
			return 0;
		}
		u->state = ICMP_UP_IDLE;
		return -ETIMEDOUT;
	}
	if (now_ms < u->ctl_due_ms)
		return 0;
	if (u->ctl_tx->next_seq >= ICMP_SEQS_PER_SESSION)
		return 0;
	*o = u->ctl;
	o->seq = (uint16_t)u->ctl_tx->next_seq++;
	u->ctl_tx->last_seq = o->seq;
	u->ctl_tx->sent_any = true;
	u->ctl_tries++;
	if (u->ctl_tries > 1)
		u->retry_attempts++;
	uint64_t backoff = (uint64_t)ICMP_RETRY_FIRST_MS << (u->ctl_tries < 7 ? u->ctl_tries - 1 : 6);
	u->ctl_due_ms = now_ms + (backoff < ICMP_RETRY_MAX_MS ? backoff : ICMP_RETRY_MAX_MS);
	return 1;
}

uint64_t icmp_up_deadline(const struct icmp_up *u)
{
	if (!u->ctl_pending)
		return UINT64_MAX;
	uint64_t give_up = u->ctl_started_ms + u->handshake_timeout_ms;
	return u->ctl_due_ms < give_up ? u->ctl_due_ms : give_up;
}

/* The session our peer answers on: S + 1, or S itself when we test against kernel echo. */
static uint64_t up_reply_session(const struct icmp_up *u, const struct icmp_tx *tx)
{
	return u->accept_kernel_echo ? tx->key.session : tx->key.session + 1;
}

static enum icmp_action up_admit(struct icmp_up *u, struct icmp_tx *tx, uint16_t seq,
				 enum icmp_drop *drop)
{
	if (u->sync_pps) {
		/* catch-up window = clamp(N/4, 8, 1024) (§3.6) */
		uint32_t window = u->sync_pps / 4;
		window = window < 8 ? 8 : window > 1024 ? 1024 : window;
		if (!tx->sent_any || seq > tx->last_seq) {
			*drop = ICMP_DROP_FUTURE_SEQ;
			return ICMP_ACT_DROP;
		}
		if ((uint32_t)(tx->last_seq - seq) > window) {
			*drop = ICMP_DROP_STALE_SEQ;
			return ICMP_ACT_DROP;
		}
	}
	switch (shim_replay_admit(&tx->rx, seq)) {
	case SHIM_REPLAY_OK:
		return ICMP_ACT_DELIVER;
	case SHIM_REPLAY_DUPLICATE:
		*drop = ICMP_DROP_DUPLICATE;
		return ICMP_ACT_DROP;
	default:
		*drop = ICMP_DROP_STALE_SEQ;
		return ICMP_ACT_DROP;
	}
}

static struct icmp_tx *up_tx_for_reply(struct icmp_up *u, uint64_t session)
{
	if (u->state == ICMP_UP_READY && session == up_reply_session(u, &u->cur))
		return &u->cur;
	if (u->have_prev && session == up_reply_session(u, &u->prev))
		return &u->prev;
	return NULL;
}

static enum icmp_action up_on_ack(struct icmp_up *u, const struct shim_frame *f, enum icmp_drop *drop)
{
	if (!u->ctl_pending || u->ctl.f.op != SHIM_OP_NEGOTIATE || !key_eq(&f->key, &u->ctl.f.key)) {
		*drop = ICMP_DROP_STALE_ACK;
		return ICMP_ACT_DROP;
	}
	u->ctl_pending = false;
	u->negotiations_completed++;
	if (u->ctl_tx == &u->next) {
		u->next_pending = false;
		u->next_ready = true;
		return ICMP_ACT_CONSUMED;
	}
	u->state = ICMP_UP_READY;
	return ICMP_ACT_READY;
}

/* RESET_REQUIRED: the listener lost our session; prove we are the same client (§3.3). */
static enum icmp_action up_on_reset(struct icmp_up *u, uint64_t now_ms, const struct shim_frame *f,
				    enum icmp_drop *drop)
{
	bool ours = f->rejected_key.session == u->cur.key.session ||
		    (u->have_prev && f->rejected_key.session == u->prev.key.session);
	if (!ours || u->state == ICMP_UP_IDLE ||
	    (u->ctl_pending && u->ctl.f.op == SHIM_OP_CHALLENGE_NEGOTIATE &&
	     u->ctl.f.challenge == f->challenge)) {
		u->resets_ignored++;
		*drop = ICMP_DROP_INVALID_CONTROL;
		return ICMP_ACT_DROP;
	}
	/* a rejected NEGOTIATE is named by its whole key, rejected DATA by its session alone */
	struct shim_key rejected = { 0, 0, f->rejected_key.session };
	if (f->rejected_kind == SHIM_REJECTED_NEGOTIATE)
		rejected = f->rejected_key.session == u->cur.key.session ? u->cur.key : u->prev.key;
	u->resets_accepted++;
	u->prev = u->cur;
	u->have_prev = true;
	u->next_pending = u->next_ready = false;
	tx_new(u->ids, &u->cur, icmp_ids_take(u->ids, 1), 0);
	u->state = ICMP_UP_NEGOTIATING;
	memset(&u->ctl.f, 0, sizeof(u->ctl.f));
	u->ctl.f.op = SHIM_OP_CHALLENGE_NEGOTIATE;
	u->ctl.f.challenge = f->challenge;
	u->ctl.f.receiver_generation = f->receiver_generation;
	u->ctl.f.rejected_kind = f->rejected_kind;
	u->ctl.f.rejected_key = rejected;
	u->ctl.f.rejected_seq = f->rejected_seq;
	up_queue_ctl(u, now_ms, &u->cur);
	return ICMP_ACT_CONSUMED;
}

static enum icmp_action up_on_challenge_ack(struct icmp_up *u, const struct shim_frame *f,
					    enum icmp_drop *drop)
{
	if (!u->ctl_pending || u->ctl.f.op != SHIM_OP_CHALLENGE_NEGOTIATE ||
	    !key_eq(&f->key, &u->ctl.f.key) || f->challenge != u->ctl.f.challenge) {
		*drop = ICMP_DROP_STALE_ACK;
		return ICMP_ACT_DROP;
	}
	u->ctl_pending = false;
	u->negotiations_completed++;
	u->state = ICMP_UP_READY;
	return ICMP_ACT_READY;
}

static enum icmp_action up_on_control(struct icmp_up *u, uint64_t now_ms, const struct shim_frame *f,
				      enum icmp_drop *drop)
{
	switch (f->op) {
	case SHIM_OP_NEGOTIATE:
		/* only our own NEGOTIATE reflected by a kernel echo, in the self-handshake test mode */
		if (!u->accept_kernel_echo)
			break;
		/* fall through */
	case SHIM_OP_NEGOTIATE_ACK:
		return up_on_ack(u, f, drop);
	case SHIM_OP_RESET_REQUIRED:
		return up_on_reset(u, now_ms, f, drop);
	case SHIM_OP_CHALLENGE_ACK:
		return up_on_challenge_ack(u, f, drop);
	case SHIM_OP_SESSION_ACTIVATED:
		if (key_eq(&f->key, &u->cur.key))
			return ICMP_ACT_CONSUMED;
		*drop = ICMP_DROP_STALE_SESSION;
		return ICMP_ACT_DROP;
	case SHIM_OP_GENERATION_ADVANCE_ACK:
		return ICMP_ACT_CONSUMED;
	}
	*drop = ICMP_DROP_INVALID_CONTROL;
	return ICMP_ACT_DROP;
}

enum icmp_action icmp_up_input(struct icmp_up *u, uint64_t now_ms, const struct icmp_echo *e,
			       const struct shim_frame *f, enum icmp_drop *drop)
{
	struct icmp_tx *tx;

	*drop = ICMP_OK;
	if (f->kind == SHIM_CONTROL)
		return up_on_control(u, now_ms, f, drop);
	tx = up_tx_for_reply(u, f->session);
	if (!tx) {
		*drop = ICMP_DROP_STALE_SESSION;
		return ICMP_ACT_DROP;
	}
	enum icmp_action a = up_admit(u, tx, e->seq, drop);
	if (a == ICMP_ACT_DELIVER && f->kind == SHIM_CADENCE)
		return ICMP_ACT_CONSUMED;
	return a;
}

/* ---------------- listener side ---------------- */

void icmp_ls_init(struct icmp_ls *l)
{
	memset(l, 0, sizeof(*l));
}

void icmp_ls_unbind(struct icmp_ls *l)
{
	l->bound = false;
	l->cur.active = l->prev.active = false;
	for (int i = 0; i < ICMP_LS_CANDIDATES; i++)
		l->cand[i].active = false;
	l->have_seq = false;
	l->fresh_count = 0;
	l->sync = false;
}

uint16_t icmp_ls_source_id(const struct icmp_ls *l)
{
	if (l->source_id)
		return l->source_id;
	return l->listen_id ? l->listen_id : l->peer_echo;
}

static uint16_t ls_advertised_reply(const struct icmp_ls *l)
{
	if (l->reply_id)
		return l->reply_id;
	return l->listen_id ? l->listen_id : l->peer_echo;
}

static void rx_start(struct icmp_rx *rx, const struct shim_key *key)
{
	rx->key = *key;
	rx->active = true;
	shim_replay_init(&rx->w);
}

static void ls_bind(struct icmp_ls *l, const struct icmp_echo *e, const struct shim_frame *f)
{
	icmp_ls_unbind(l);
	l->bound = true;
	l->peer_source = f->source_id;
	l->peer_reply = f->reply_id;
	l->peer_echo = e->id;
	l->generation = f->key.generation;
	rx_start(&l->cur, &f->key);
}

/* An answer to the frame that came in: Echo Reply, same sequence (§3.6). */
static void ls_reply(const struct icmp_ls *l, const struct icmp_echo *e, uint16_t to_id,
		     struct icmp_out *o, uint8_t op)
{
	memset(&o->f, 0, sizeof(o->f));
	o->f.kind = SHIM_CONTROL;
	o->f.op = op;
	o->f.source_id = icmp_ls_source_id(l);
	o->echo_id = to_id;
	o->seq = e->seq;
}

static uint64_t ls_random(struct icmp_ls *l)
{
	/* splitmix64: challenges only need to be unguessable by a blind sender */
	uint64_t z = (l->challenge_seed += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

/* RESET_REQUIRED for a frame of a session we do not know (rate-limited per peer). */
static bool ls_reset(struct icmp_ls *l, uint64_t now_ms, const struct icmp_echo *e,
		     const struct shim_frame *f, struct icmp_out *o)
{
	if (l->last_reset_ms && now_ms - l->last_reset_ms < ICMP_RESET_INTERVAL_MS) {
		l->resets_rate_limited++;
		return false;
	}
	l->last_reset_ms = now_ms;
	if (l->challenge && now_ms < l->challenge_until_ms) {
		l->challenges_reused++;
	} else {
		l->challenge = ls_random(l);
		l->challenges_created++;
	}
	l->challenge_until_ms = now_ms + l->handshake_timeout_ms;
	/* no reply route known for an unknown sender: answer to its source ID */
	ls_reply(l, e, l->bound ? l->peer_reply : f->source_id, o, SHIM_OP_RESET_REQUIRED);
	if (!l->bound && !l->source_id && !l->listen_id)
		o->f.source_id = e->id;
	o->f.rejected_kind = f->kind == SHIM_CONTROL ? SHIM_REJECTED_NEGOTIATE : SHIM_REJECTED_DATA;
	o->f.rejected_key.session = f->session;
	o->f.rejected_seq = e->seq;
	o->f.receiver_generation = l->bound ? l->generation : 0;
	o->f.challenge = l->challenge;
	return true;
}

static void ls_note_seq(struct icmp_ls *l, uint16_t seq)
{
	if (!l->have_seq || seq > l->req_seq)
		l->req_seq = seq;
	l->have_seq = true;
	if (l->fresh_count == ICMP_LS_FRESH_SEQS) {
		l->fresh_head = (l->fresh_head + 1) % ICMP_LS_FRESH_SEQS;
		l->fresh_count--;
	}
	l->fresh[(l->fresh_head + l->fresh_count) % ICMP_LS_FRESH_SEQS] = seq;
	l->fresh_count++;
}

static enum icmp_action ls_admit(struct icmp_rx *rx, uint16_t seq, enum icmp_drop *drop)
{
	switch (shim_replay_admit(&rx->w, seq)) {
	case SHIM_REPLAY_OK:
		return ICMP_ACT_DELIVER;
	case SHIM_REPLAY_DUPLICATE:
		*drop = ICMP_DROP_DUPLICATE;
		return ICMP_ACT_DROP;
	default:
		*drop = ICMP_DROP_STALE_SEQ;
		return ICMP_ACT_DROP;
	}
}

static enum icmp_action ls_on_data(struct icmp_ls *l, uint64_t now_ms, const struct icmp_echo *e,
				   const struct shim_frame *f, enum icmp_drop *drop, bool *reply,
				   struct icmp_out *o)
{
	enum icmp_action a;

	if (l->bound && l->cur.active && f->session == l->cur.key.session) {
		a = ls_admit(&l->cur, e->seq, drop);
		if (a != ICMP_ACT_DELIVER)
			return a;
		ls_note_seq(l, e->seq);
		if (f->kind == SHIM_CADENCE) {
			l->sync = true;
			return ICMP_ACT_CONSUMED;
		}
		return ICMP_ACT_DELIVER;
	}
	if (l->bound && l->prev.active && f->session == l->prev.key.session) {
		a = ls_admit(&l->prev, e->seq, drop);
		return a == ICMP_ACT_DELIVER && f->kind == SHIM_CADENCE ? ICMP_ACT_CONSUMED : a;
	}
	for (int i = 0; l->bound && i < ICMP_LS_CANDIDATES; i++) {
		if (!l->cand[i].active || f->session != l->cand[i].key.session)
			continue;
		/* the peer moved to a reserve session: it becomes the active one */
		l->prev = l->cur;
		l->cur = l->cand[i];
		l->cand[i].active = false;
		l->have_seq = false;
		l->fresh_count = 0;
		a = ls_admit(&l->cur, e->seq, drop);
		if (a != ICMP_ACT_DELIVER)
			return a;
		ls_note_seq(l, e->seq);
		ls_reply(l, e, l->peer_reply, o, SHIM_OP_SESSION_ACTIVATED);
		o->f.key = l->cur.key;
		o->f.accepted_seq = e->seq;
		*reply = true;
		return f->kind == SHIM_CADENCE ? ICMP_ACT_CONSUMED : ICMP_ACT_DELIVER;
	}
	*drop = ICMP_DROP_STALE_SESSION;
	*reply = ls_reset(l, now_ms, e, f, o);
	return ICMP_ACT_DROP;
}

/* NEGOTIATE: a new client, a restarted one (new generation), a retransmit, or a reserve. */
static enum icmp_action ls_on_negotiate(struct icmp_ls *l, const struct icmp_echo *e,
					const struct shim_frame *f, bool *reply, struct icmp_out *o)
{
	bool same_gen = l->bound && f->key.generation == l->generation;

	if (!same_gen) {
		ls_bind(l, e, f);
	} else if (!key_eq(&f->key, &l->cur.key) && !(l->prev.active && key_eq(&f->key, &l->prev.key))) {
		int free_slot = -1, i;
		for (i = 0; i < ICMP_LS_CANDIDATES; i++) {
			if (l->cand[i].active && key_eq(&l->cand[i].key, &f->key))
				break;
			if (!l->cand[i].active && free_slot < 0)
				free_slot = i;
		}
		if (i == ICMP_LS_CANDIDATES) {
			/* all slots busy: the oldest candidate gives way */
			i = free_slot >= 0 ? free_slot : 0;
			rx_start(&l->cand[i], &f->key);
		}
	}
	l->peer_reply = f->reply_id;
	ls_reply(l, e, l->peer_reply, o, SHIM_OP_NEGOTIATE_ACK);
	o->f.reply_id = ls_advertised_reply(l);
	o->f.key = f->key;
	*reply = true;
	return ICMP_ACT_CONSUMED;
}

static enum icmp_action ls_on_challenge(struct icmp_ls *l, uint64_t now_ms, const struct icmp_echo *e,
					const struct shim_frame *f, enum icmp_drop *drop, bool *reply,
					struct icmp_out *o)
{
	if (!l->challenge || f->challenge != l->challenge || now_ms >= l->challenge_until_ms) {
		*drop = ICMP_DROP_INVALID_CONTROL;
		return ICMP_ACT_DROP;
	}
	if (!l->bound || !key_eq(&f->key, &l->cur.key))
		ls_bind(l, e, f);
	l->peer_reply = f->reply_id;
	l->challenges_consumed++;
	ls_reply(l, e, l->peer_reply, o, SHIM_OP_CHALLENGE_ACK);
	o->f.reply_id = ls_advertised_reply(l);
	o->f.challenge = f->challenge;
	o->f.receiver_generation = f->receiver_generation;
	o->f.rejected_kind = f->rejected_kind;
	o->f.rejected_key = f->rejected_key;
	o->f.rejected_seq = f->rejected_seq;
	o->f.key = f->key;
	*reply = true;
	return ICMP_ACT_CONSUMED;
}

static enum icmp_action ls_on_generation(struct icmp_ls *l, const struct icmp_echo *e,
					 const struct shim_frame *f, enum icmp_drop *drop, bool *reply,
					 struct icmp_out *o)
{
	if (!l->bound || !key_eq(&f->key, &l->cur.key)) {
		*drop = ICMP_DROP_STALE_SESSION;
		return ICMP_ACT_DROP;
	}
	l->generation = f->proposed_generation;
	ls_reply(l, e, l->peer_reply, o, SHIM_OP_GENERATION_ADVANCE_ACK);
	o->f.key = f->key;
	o->f.proposed_generation = f->proposed_generation;
	*reply = true;
	return ICMP_ACT_CONSUMED;
}

enum icmp_action icmp_ls_input(struct icmp_ls *l, uint64_t now_ms, const struct icmp_echo *e,
			       const struct shim_frame *f, enum icmp_drop *drop, bool *reply,
			       struct icmp_out *o)
{
	*drop = ICMP_OK;
	*reply = false;
	/* a locked flow belongs to one source ID; a new generation from it is a restart */
	if (l->bound && f->source_id != l->peer_source) {
		*drop = ICMP_DROP_WRONG_SOURCE;
		return ICMP_ACT_DROP;
	}
	if (f->kind != SHIM_CONTROL)
		return ls_on_data(l, now_ms, e, f, drop, reply, o);
	switch (f->op) {
	case SHIM_OP_NEGOTIATE:
		return ls_on_negotiate(l, e, f, reply, o);
	case SHIM_OP_CHALLENGE_NEGOTIATE:
		return ls_on_challenge(l, now_ms, e, f, drop, reply, o);
	case SHIM_OP_GENERATION_ADVANCE:
		return ls_on_generation(l, e, f, drop, reply, o);
	}
	*drop = ICMP_DROP_INVALID_CONTROL;
	return ICMP_ACT_DROP;
}

bool icmp_ls_fresh_seq(const struct icmp_ls *l)
{
	return l->fresh_count > 0;
}

/* Picks the request sequence a reply travels under (see struct icmp_ls). */
static int ls_pick_seq(struct icmp_ls *l, uint16_t *seq)
{
	while (l->fresh_count) {
		uint16_t s;
		if (l->sync) {
			s = l->fresh[(l->fresh_head + l->fresh_count - 1) % ICMP_LS_FRESH_SEQS];
			l->fresh_count = 0;	/* older ones are behind the peer's catch-up window */
		} else {
			s = l->fresh[l->fresh_head];
			l->fresh_head = (l->fresh_head + 1) % ICMP_LS_FRESH_SEQS;
			l->fresh_count--;
			if ((unsigned)(l->req_seq - s) >= SHIM_REPLAY_WINDOW / 2)
				continue;
		}
		*seq = s;
		return 0;
	}
	if (l->sync || !l->have_seq)
		return -EAGAIN;
	*seq = l->req_seq;	/* pkthere's rule: the newest request sequence, again */
	return 0;
}

int icmp_ls_data(struct icmp_ls *l, struct icmp_out *o)
{
	if (!l->bound || !l->cur.active)
		return -ENOTCONN;
	if (ls_pick_seq(l, &o->seq))
		return -EAGAIN;
	memset(&o->f, 0, sizeof(o->f));
	o->f.kind = SHIM_DATA;
	o->f.source_id = icmp_ls_source_id(l);
	o->f.session = l->cur.key.session + 1;
	o->echo_id = l->peer_reply;
	return 0;
}
