/*
 * A per-worker pool of non-blocking pipes for splice(). A connection takes a pipe only
 * while bytes are in flight and gives it back as soon as the pipe is empty, so idle
 * connections hold none (HAProxy's pipe pool, the same idea).
 */
#ifndef FERRY_RELAY_PIPE_POOL_H
#define FERRY_RELAY_PIPE_POOL_H
#include <stddef.h>

/* Pipes kept for reuse per worker; beyond this, returned pipes are closed. */
#define PIPE_POOL_KEEP 256
/*
 * Capacity asked for each pipe: 4x the default 64 KiB, so bulk data moves 256 KiB per
 * pair of splice() calls. Pages are taken only while data sits in a pipe; an empty pipe in
 * the pool holds none. Where the kernel refuses (per-user pipe limits) a pipe keeps its
 * default size.
 */
#define PIPE_POOL_PIPE_BYTES (256 * 1024)

struct pipe_pair {
	int rfd, wfd;
};

struct pipe_pool {
	struct pipe_pair free[PIPE_POOL_KEEP];
	size_t nfree;
	size_t in_use;
	size_t pipe_bytes;	/* what every pipe handed out can hold (the smallest seen) */
};

void pipe_pool_init(struct pipe_pool *pp);
/* Takes a pipe; returns 0 or a negative errno (e.g. -EMFILE). */
int pipe_pool_get(struct pipe_pool *pp, struct pipe_pair *out);
/* Gives back an empty pipe. */
void pipe_pool_put(struct pipe_pool *pp, struct pipe_pair p);
/* Closes a pipe that may still hold data (connection aborted). */
void pipe_pool_discard(struct pipe_pool *pp, struct pipe_pair p);
void pipe_pool_destroy(struct pipe_pool *pp);

#endif
