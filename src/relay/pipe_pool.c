/* Pipe pool; see pipe_pool.h. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "relay/pipe_pool.h"

void pipe_pool_init(struct pipe_pool *pp)
{
	pp->nfree = 0;
	pp->in_use = 0;
	pp->pipe_bytes = 0;
}

int pipe_pool_get(struct pipe_pool *pp, struct pipe_pair *out)
{
	int fds[2];

	if (pp->nfree) {
		*out = pp->free[--pp->nfree];
		pp->in_use++;
		return 0;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	int sz = fcntl(fds[0], F_SETPIPE_SZ, PIPE_POOL_PIPE_BYTES);

	if (sz <= 0)
		sz = fcntl(fds[0], F_GETPIPE_SZ);
	if (sz <= 0)
		sz = 4096;
	if (!pp->pipe_bytes || (size_t)sz < pp->pipe_bytes)
		pp->pipe_bytes = (size_t)sz;
	out->rfd = fds[0];
	out->wfd = fds[1];
	pp->in_use++;
	return 0;
}

void pipe_pool_discard(struct pipe_pool *pp, struct pipe_pair p)
{
	close(p.rfd);
	close(p.wfd);
	pp->in_use--;
}

void pipe_pool_put(struct pipe_pool *pp, struct pipe_pair p)
{
	if (pp->nfree == PIPE_POOL_KEEP) {
		pipe_pool_discard(pp, p);
		return;
	}
	pp->free[pp->nfree++] = p;
	pp->in_use--;
}

void pipe_pool_destroy(struct pipe_pool *pp)
{
	while (pp->nfree) {
		struct pipe_pair p = pp->free[--pp->nfree];

		close(p.rfd);
		close(p.wfd);
	}
}
