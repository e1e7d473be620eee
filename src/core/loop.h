/*
 * The event loop: one per thread. epoll for file descriptors, a binary min-heap of
 * timers, and a list of deferred callbacks run at the end of each iteration (so a
 * callback can retire an object the rest of the batch may still name, as in Redis' ae).
 * The monotonic clock is read once per iteration; loop_now() returns that reading.
 */
#ifndef FERRY_CORE_LOOP_H
#define FERRY_CORE_LOOP_H
#include <stddef.h>
#include <stdint.h>

struct loop;
struct io;

typedef void (*io_cb)(struct io *io, uint32_t events);

/* Embed in the object that owns the fd; recover the object with container_of(). */
struct io {
	int fd;
	io_cb cb;
};

struct timer;
typedef void (*timer_cb)(struct timer *t);

struct timer {
	uint64_t when_ms;
	size_t heap_idx;	/* 0 = not armed; else index + 1 */
	timer_cb cb;
};

struct defer;
typedef void (*defer_cb)(struct defer *d);

struct defer {
	struct defer *next;
	defer_cb cb;
	int queued;
};

int loop_new(struct loop **out);
void loop_free(struct loop *l);
uint64_t loop_now(const struct loop *l);

int loop_add(struct loop *l, struct io *io, uint32_t events);
int loop_mod(struct loop *l, struct io *io, uint32_t events);
void loop_del(struct loop *l, struct io *io);

void timer_init(struct timer *t, timer_cb cb);
/* Arms (or re-arms) t to fire at now + after_ms. */
int timer_arm(struct loop *l, struct timer *t, uint64_t after_ms);
int timer_arm_at(struct loop *l, struct timer *t, uint64_t when_ms);
void timer_cancel(struct loop *l, struct timer *t);
static inline int timer_armed(const struct timer *t) { return t->heap_idx != 0; }

/* Runs d->cb once at the end of the current iteration; queuing twice is a no-op. */
void loop_defer(struct loop *l, struct defer *d, defer_cb cb);

/* After an iteration that handled events, poll without sleeping for usec µs (0 = off). */
void loop_set_busy_poll(struct loop *l, uint32_t usec);

/* Runs until loop_stop(); returns 0, or a negative errno if epoll failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* One iteration waiting at most max_wait_ms (-1: until an event or timer). For tests. */
int loop_once(struct loop *l, int max_wait_ms);
size_t loop_timer_count(const struct loop *l);

#endif
