/*
 * libFuzzer target for the DATA replay window of proto/secure (spec/kcp.md §3.6), differential
 * against a plain model: the set of accepted counters and the highest one. A counter is
 * accepted when it is above the highest, or within SECURE_REPLAY_WINDOW below it and not seen
 * yet. The input is read as a program of counters: byte b selects how the next counter is
 * made (absolute u64, a forward jump, a small step back, a repeat of an earlier one), so both
 * dense reordering and huge jumps (up to 2^64 − 1) are exercised.
 * Properties: check() agrees with the model for every counter; check() changes nothing (a
 * second check gives the same verdict); mark() reports "new highest" exactly when the model
 * does.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEN 8192

static struct {
	uint64_t seen[MAX_SEEN];
	size_t nseen;
	bool any;
	uint64_t highest;
} model;

static bool model_seen(uint64_t c)
{
	for (size_t i = 0; i < model.nseen; i++)
		if (model.seen[i] == c)
			return true;
	return false;
}

static int model_verdict(uint64_t c)
{
	if (!model.any || c > model.highest)
		return 0;
	if (model.highest - c >= SECURE_REPLAY_WINDOW)
		return -ESTALE;
	return model_seen(c) ? -EALREADY : 0;
}

static uint64_t rd64(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secure_replay w;
	uint64_t ctr = 0;
	size_t off = 0;

	memset(&model, 0, sizeof(model));
	secure_replay_init(&w);
	while (off < size && model.nseen < MAX_SEEN) {
		uint8_t op = data[off++];
		size_t left = size - off;
		int got, want;

		switch (op >> 6) {
		case 0:		/* small step back or forward around the highest */
			ctr = model.highest + (uint64_t)(int64_t)((int)(op & 0x3f) - 32) * 67;
			break;
		case 1:		/* forward jump of up to 2^16 */
			ctr = model.highest + rd64(data + off, left < 2 ? left : 2);
			off += left < 2 ? left : 2;
			break;
		case 2:		/* absolute counter */
			ctr = rd64(data + off, left < 8 ? left : 8);
			off += left < 8 ? left : 8;
			break;
		default:	/* an earlier accepted one again */
			if (model.nseen)
				ctr = model.seen[(op & 0x3f) % model.nseen];
			break;
		}
		got = secure_replay_check(&w, ctr);
		want = model_verdict(ctr);
		if (got != want || secure_replay_check(&w, ctr) != got) {
			fprintf(stderr, "counter %llu: window %d, model %d (highest %llu)\n", (unsigned long long)ctr, got,
				want, (unsigned long long)model.highest);
			abort();
		}
		if (!got) {
			bool top = secure_replay_mark(&w, ctr);

			if (top != (!model.any || ctr > model.highest))
				abort();
			if (!model.any || ctr > model.highest)
				model.highest = ctr;
			model.any = true;
			model.seen[model.nseen++] = ctr;
			if (secure_replay_check(&w, ctr) != -EALREADY && secure_replay_check(&w, ctr) != -ESTALE)
				abort();
		}
	}
	return 0;
}
