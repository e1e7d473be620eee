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
	if (!pp->pipe_bytes) {
		int sz = fcntl(fds[0], F_GETPIPE_SZ);

		pp->pipe_bytes = sz > 0 ? (size_t)sz : 65536;
	}
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
