/*
 * epoll loop with a timer heap and deferred callbacks; see loop.h. Not thread-safe:
 * each worker owns its loop; other threads reach it only through an fd it polls.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"

/* Events handled per epoll_wait(); more are picked up on the next iteration. */
#define LOOP_EVENTS_PER_WAIT 256
#define LOOP_HEAP_INITIAL 64

struct loop {
	int epfd;
	int stop;
	uint64_t now_ms;
	struct timer **heap;
	size_t heap_len, heap_cap;
	struct defer *deferred;
	int in_timers;		/* loop_run_timers() is calling timer callbacks */
	uint64_t busy_ns;	/* loop_set_busy_poll(): spin this long after activity */
	uint64_t spin_until_ns;	/* poll without sleeping until then */
};

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	l->now_ms = clock_now_ms();
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->heap);
	free(l);
}

uint64_t loop_now(const struct loop *l)
{
	return l->now_ms;
}

static int loop_ctl(struct loop *l, int op, struct io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(l->epfd, op, io->fd, &ev) ? -errno : 0;
}

int loop_add(struct loop *l, struct io *io, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_ADD, io, events);
}

int loop_mod(struct loop *l, struct io *io, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_MOD, io, events);
}

void loop_del(struct loop *l, struct io *io)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

/* ---- timer heap: heap[i]->heap_idx == i + 1 ---- */

static void heap_set(struct loop *l, size_t i, struct timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (l->heap[parent]->when_ms <= t->when_ms)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && l->heap[c + 1]->when_ms < l->heap[c]->when_ms)
			c++;
		if (t->when_ms <= l->heap[c]->when_ms)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void timer_init(struct timer *t, timer_cb cb)
{
	t->when_ms = 0;
	t->heap_idx = 0;
	t->cb = cb;
}

int timer_arm_at(struct loop *l, struct timer *t, uint64_t when_ms)
{
	/* due already and armed by a timer callback: make it wait for the next iteration */
	if (l->in_timers && when_ms <= l->now_ms)
		when_ms = l->now_ms + 1;
	if (t->heap_idx) {
		uint64_t old = t->when_ms;

		t->when_ms = when_ms;
		if (when_ms < old)
			heap_up(l, t->heap_idx - 1);
		else
			heap_down(l, t->heap_idx - 1);
		return 0;
	}
	if (l->heap_len == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : LOOP_HEAP_INITIAL;
		struct timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->heap_cap = cap;
	}
	t->when_ms = when_ms;
	heap_set(l, l->heap_len++, t);
	heap_up(l, l->heap_len - 1);
	return 0;
}

int timer_arm(struct loop *l, struct timer *t, uint64_t after_ms)
{
	return timer_arm_at(l, t, l->now_ms + after_ms);
}

void timer_cancel(struct loop *l, struct timer *t)
{
	size_t i;
	struct timer *last;

	if (!t->heap_idx)
		return;
	i = t->heap_idx - 1;
	t->heap_idx = 0;
	last = l->heap[--l->heap_len];
	if (i == l->heap_len)
		return;
	heap_set(l, i, last);
	if (i > 0 && l->heap[(i - 1) / 2]->when_ms > last->when_ms)
		heap_up(l, i);
	else
		heap_down(l, i);
}

size_t loop_timer_count(const struct loop *l)
{
	return l->heap_len;
}

void loop_defer(struct loop *l, struct defer *d, defer_cb cb)
{
	if (d->queued)
		return;
	d->queued = 1;
	d->cb = cb;
	d->next = l->deferred;
	l->deferred = d;
}

static void loop_run_timers(struct loop *l)
{
	/* A timer armed by a callback for "now" waits for the next iteration: no starvation. */
	uint64_t now = l->now_ms;

	l->in_timers = 1;
	while (l->heap_len && l->heap[0]->when_ms <= now) {
		struct timer *t = l->heap[0];

		timer_cancel(l, t);
		t->cb(t);
	}
	l->in_timers = 0;
}

static void loop_run_deferred(struct loop *l)
{
	while (l->deferred) {
		struct defer *d = l->deferred;

		l->deferred = d->next;
		d->queued = 0;
		d->cb(d);
	}
}

/*
 * Busy polling: right after activity, ask epoll without sleeping until the spin window
 * (loop_set_busy_poll) or the wait ends. A thread that sleeps in epoll_wait() pays a
 * wake-up on the next packet (tens of µs on a VM); a request/response flow whose next
 * packet comes within the window pays none. Returns the events found, 0 when the window
 * closed without any.
 */
static int loop_spin(struct loop *l, struct epoll_event *evs, int timeout_ms)
{
	uint64_t now = clock_now_ns(), until = l->spin_until_ns;

	if (now >= until)
		return 0;
	if (timeout_ms > 0 && until > now + (uint64_t)timeout_ms * 1000000u)
		until = now + (uint64_t)timeout_ms * 1000000u;
	while (now < until) {
		int n = epoll_wait(l->epfd, evs, LOOP_EVENTS_PER_WAIT, 0);

		if (n)
			return n;
		now = clock_now_ns();
	}
	return 0;
}

void loop_set_busy_poll(struct loop *l, uint32_t usec)
{
	l->busy_ns = (uint64_t)usec * 1000u;
}

int loop_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event evs[LOOP_EVENTS_PER_WAIT];
	int timeout = max_wait_ms, n;
	uint64_t now_ns;

	if (l->deferred)
		timeout = 0;
	else if (l->heap_len) {
		uint64_t when = l->heap[0]->when_ms;
		int until = when > l->now_ms ? (int)((when - l->now_ms) < (1u << 30) ? (when - l->now_ms) : (1u << 30)) : 0;

		if (timeout < 0 || until < timeout)
			timeout = until;
	}
	n = timeout && l->busy_ns ? loop_spin(l, evs, timeout) : 0;
	if (!n)
		n = epoll_wait(l->epfd, evs, LOOP_EVENTS_PER_WAIT, timeout);
	if (n < 0 && errno != EINTR)
		return -errno;
	now_ns = clock_now_ns();
	l->now_ms = now_ns / 1000000u;
	if (n > 0 && l->busy_ns)
		l->spin_until_ns = now_ns + l->busy_ns;
	for (int i = 0; i < n; i++) {
		struct io *io = evs[i].data.ptr;

		io->cb(io, evs[i].events);
	}
	loop_run_timers(l);
	loop_run_deferred(l);
	return 0;
}

int loop_run(struct loop *l)
{
	l->stop = 0;
	while (!l->stop) {
		int err = loop_once(l, -1);

		if (err)
			return err;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}
