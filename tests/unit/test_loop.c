/*
 * core/loop: the timer heap against a simple model (random arm / re-arm / cancel), re-arm
 * ordering, timers armed from timer callbacks, deferred callbacks, fd readiness, waiting.
 * Deadlines are set in the past (relative to loop_now()) so that one loop_once(l, 0)
 * fires them all without the test sleeping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"
#include "core/util.h"
#include "test.h"

static struct loop *new_loop(void)
{
	struct loop *l = NULL;

	if (loop_new(&l)) {
		fprintf(stderr, "  setup: loop_new failed\n");
		abort();
	}
	return l;
}

/* ---- firing log shared by the timer tests ---- */

#define MODEL_TIMERS 64
#define FIRED_MAX 4096

struct tt {
	struct timer t;
	int id;
};

static int fired[FIRED_MAX];
static int nfired;

static void on_record(struct timer *t)
{
	struct tt *x = container_of(t, struct tt, t);

	if (nfired < FIRED_MAX)
		fired[nfired++] = x->id;
}

/*
 * Random arm / re-arm / cancel on MODEL_TIMERS timers, checked against a model (armed
 * flag + deadline per timer). Every so often the loop runs: exactly the armed timers
 * with a deadline <= now must fire, in non-decreasing deadline order, and nothing else.
 */
static int model_run(uint64_t seed, int ops)
{
	struct loop *l = new_loop();
	struct tt tt[MODEL_TIMERS];
	int armed[MODEL_TIMERS] = { 0 };
	uint64_t when[MODEL_TIMERS] = { 0 };
	size_t count = 0;
	int bad = 0;

	test_rng_seed(seed);
	for (int i = 0; i < MODEL_TIMERS; i++) {
		timer_init(&tt[i].t, on_record);
		tt[i].id = i;
	}
	for (int op = 0; op < ops && !bad; op++) {
		int i = (int)(test_rng() % MODEL_TIMERS);
		uint64_t r = test_rng() % 100, now = loop_now(l);

		if (r < 55) {
			/* due (past, with many ties) or far in the future */
			uint64_t w = test_rng() % 4 ? now - 1 - test_rng() % 50 : now + 1000000 + test_rng() % 50;

			CHECK_EQ(timer_arm_at(l, &tt[i].t, w), 0);
			count += !armed[i];
			armed[i] = 1;
			when[i] = w;
		} else if (r < 85) {
			timer_cancel(l, &tt[i].t);
			count -= armed[i];
			armed[i] = 0;
		} else {
			uint64_t due = 0;

			nfired = 0;
			CHECK_EQ(loop_once(l, 0), 0);
			now = loop_now(l);
			for (int k = 0; k < MODEL_TIMERS; k++)
				due += armed[k] && when[k] <= now;
			CHECK_EQ(nfired, due);
			for (int k = 0; k < nfired; k++) {
				int id = fired[k];

				CHECK(armed[id] && when[id] <= now);
				if (k > 0)
					CHECK(when[fired[k - 1]] <= when[id]);
				armed[id] = 0;	/* a second firing would now fail the check above */
				count--;
			}
			bad |= test_failed_;
		}
		CHECK_EQ(loop_timer_count(l), count);
		for (int k = 0; k < MODEL_TIMERS; k++)
			CHECK_EQ(timer_armed(&tt[k].t), armed[k]);
		bad |= test_failed_;
	}
	for (int k = 0; k < MODEL_TIMERS; k++)
		timer_cancel(l, &tt[k].t);
	CHECK_EQ(loop_timer_count(l), 0);
	loop_free(l);
	if (bad)
		fprintf(stderr, "  seed %llu\n", (unsigned long long)seed);
	return bad;
}

static void test_timers_fire_in_deadline_order_matching_a_model(void)
{
	for (uint64_t seed = 1; seed <= 20; seed++)
		if (model_run(seed * 0x9e3779b97f4a7c15ull, 3000))
			break;
}

static void test_timer_rearm_earlier_and_later_reorders_it(void)
{
	struct loop *l = new_loop();
	struct tt a = { .id = 0 }, b = { .id = 1 }, c = { .id = 2 };
	uint64_t now = loop_now(l);

	timer_init(&a.t, on_record);
	timer_init(&b.t, on_record);
	timer_init(&c.t, on_record);
	timer_arm_at(l, &a.t, now - 30);
	timer_arm_at(l, &b.t, now - 20);
	timer_arm_at(l, &c.t, now - 10);
	timer_arm_at(l, &c.t, now - 40);	/* earlier: c moves to the front */
	timer_arm_at(l, &a.t, now - 5);		/* later: a moves to the back */
	CHECK_EQ(c.t.when_ms, now - 40);
	CHECK_EQ(loop_timer_count(l), 3);
	nfired = 0;
	loop_once(l, 0);
	CHECK_EQ(nfired, 3);
	CHECK_EQ(fired[0], 2);
	CHECK_EQ(fired[1], 1);
	CHECK_EQ(fired[2], 0);

	/* re-armed into the future: it does not fire, and stays counted once */
	timer_arm_at(l, &a.t, now - 1);
	timer_arm_at(l, &a.t, now + 1000000);
	CHECK_EQ(loop_timer_count(l), 1);
	nfired = 0;
	loop_once(l, 0);
	CHECK_EQ(nfired, 0);
	CHECK(timer_armed(&a.t));
	timer_cancel(l, &a.t);
	loop_free(l);
}

static void test_timer_arm_counts_from_loop_now(void)
{
	struct loop *l = new_loop();
	struct timer t;

	timer_init(&t, on_record);
	CHECK(!timer_armed(&t));
	CHECK_EQ(timer_arm(l, &t, 250), 0);
	CHECK(timer_armed(&t));
	CHECK_EQ(t.when_ms, loop_now(l) + 250);
	timer_cancel(l, &t);
	CHECK(!timer_armed(&t));
	timer_cancel(l, &t);	/* twice is harmless */
	CHECK_EQ(loop_timer_count(l), 0);
	loop_free(l);
}

static void test_loop_timer_count_tracks_arm_rearm_cancel_and_fire(void)
{
	struct loop *l = new_loop();
	struct tt t[3];
	uint64_t now = loop_now(l);

	for (int i = 0; i < 3; i++) {
		timer_init(&t[i].t, on_record);
		t[i].id = i;
	}
	CHECK_EQ(loop_timer_count(l), 0);
	timer_arm_at(l, &t[0].t, now - 1);
	timer_arm_at(l, &t[1].t, now + 1000000);
	timer_arm_at(l, &t[2].t, now + 2000000);
	CHECK_EQ(loop_timer_count(l), 3);
	timer_arm_at(l, &t[2].t, now + 3000000);
	CHECK_EQ(loop_timer_count(l), 3);
	timer_cancel(l, &t[1].t);
	CHECK_EQ(loop_timer_count(l), 2);
	nfired = 0;
	loop_once(l, 0);
	CHECK_EQ(nfired, 1);
	CHECK_EQ(loop_timer_count(l), 1);
	timer_cancel(l, &t[2].t);
	CHECK_EQ(loop_timer_count(l), 0);
	loop_free(l);
}

/* ---- timers armed or cancelled by timer callbacks ---- */

static struct loop *cb_loop;
static int rearm_calls, rearm_limit;

static void on_rearm_now(struct timer *t)
{
	if (++rearm_calls < rearm_limit)
		timer_arm(cb_loop, t, 0);
}

/* loop.c: "A timer armed by a callback for 'now' waits for the next iteration: no starvation." */
static void test_timer_rearmed_for_now_by_its_callback_waits_for_next_iteration(void)
{
	struct timer t;

	cb_loop = new_loop();
	timer_init(&t, on_rearm_now);
	rearm_calls = 0;
	rearm_limit = 1000;
	timer_arm_at(cb_loop, &t, loop_now(cb_loop) - 1);
	CHECK_EQ(loop_once(cb_loop, 0), 0);
	CHECK_EQ(rearm_calls, 1);
	CHECK(timer_armed(&t));
	CHECK_EQ(loop_once(cb_loop, 100), 0);
	CHECK_EQ(rearm_calls, 2);
	timer_cancel(cb_loop, &t);
	loop_free(cb_loop);
}

static struct tt *victim;

static void on_cancel_victim(struct timer *t)
{
	on_record(t);
	timer_cancel(cb_loop, &victim->t);
}

static void test_timer_cancelled_by_an_earlier_due_timer_never_fires(void)
{
	struct tt a = { .id = 0 }, b = { .id = 1 }, c = { .id = 2 };
	uint64_t now;

	cb_loop = new_loop();
	now = loop_now(cb_loop);
	timer_init(&a.t, on_cancel_victim);
	timer_init(&b.t, on_record);
	timer_init(&c.t, on_record);
	victim = &b;
	timer_arm_at(cb_loop, &a.t, now - 3);
	timer_arm_at(cb_loop, &b.t, now - 2);
	timer_arm_at(cb_loop, &c.t, now - 1);
	nfired = 0;
	loop_once(cb_loop, 0);
	CHECK_EQ(nfired, 2);
	CHECK_EQ(fired[0], 0);
	CHECK_EQ(fired[1], 2);
	CHECK(!timer_armed(&b.t));
	CHECK_EQ(loop_timer_count(cb_loop), 0);
	loop_free(cb_loop);
}

/* ---- deferred callbacks and fds ---- */

struct probe {
	struct io io;
	struct defer d;
	struct timer t;
	int io_calls, defer_calls, defer_calls_seen_by_timer;
	uint32_t events;
};

static struct probe *probe;

static void on_defer(struct defer *d)
{
	struct probe *p = container_of(d, struct probe, d);

	p->defer_calls++;
	CHECK(!d->queued);
}

static void on_io_defer_twice(struct io *io, uint32_t events)
{
	struct probe *p = container_of(io, struct probe, io);
	uint64_t v;

	p->io_calls++;
	p->events = events;
	if (read(io->fd, &v, sizeof(v)) != sizeof(v))
		CHECK(0);
	loop_defer(cb_loop, &p->d, on_defer);
	loop_defer(cb_loop, &p->d, on_defer);
	CHECK(p->d.queued);
}

static void on_timer_peek(struct timer *t)
{
	struct probe *p = container_of(t, struct probe, t);

	p->defer_calls_seen_by_timer = p->defer_calls;
}

static void test_loop_defer_runs_once_at_end_of_iteration_even_when_queued_twice(void)
{
	struct probe p = { 0 };
	uint64_t one = 1;

	cb_loop = new_loop();
	probe = &p;
	p.io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p.io.cb = on_io_defer_twice;
	CHECK_EQ(loop_add(cb_loop, &p.io, EPOLLIN), 0);
	timer_init(&p.t, on_timer_peek);
	timer_arm_at(cb_loop, &p.t, loop_now(cb_loop) - 1);
	p.defer_calls_seen_by_timer = -1;
	CHECK_EQ(write(p.io.fd, &one, sizeof(one)), sizeof(one));

	CHECK_EQ(loop_once(cb_loop, 1000), 0);
	CHECK_EQ(p.io_calls, 1);
	CHECK_EQ(p.defer_calls_seen_by_timer, 0);	/* timers of the same iteration ran first */
	CHECK_EQ(p.defer_calls, 1);
	CHECK(!p.d.queued);

	CHECK_EQ(loop_once(cb_loop, 0), 0);
	CHECK_EQ(p.io_calls, 1);
	CHECK_EQ(p.defer_calls, 1);

	/* once it has run it can be queued again */
	CHECK_EQ(write(p.io.fd, &one, sizeof(one)), sizeof(one));
	CHECK_EQ(loop_once(cb_loop, 1000), 0);
	CHECK_EQ(p.io_calls, 2);
	CHECK_EQ(p.defer_calls, 2);
	loop_del(cb_loop, &p.io);
	close(p.io.fd);
	loop_free(cb_loop);
}

static void on_io_count(struct io *io, uint32_t events)
{
	struct probe *p = container_of(io, struct probe, io);

	p->io_calls++;
	p->events = events;
}

static void test_loop_once_calls_io_callback_only_while_fd_is_readable(void)
{
	struct probe p = { 0 };
	int fds[2];

	cb_loop = new_loop();
	CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	p.io.fd = fds[0];
	p.io.cb = on_io_count;
	CHECK_EQ(loop_add(cb_loop, &p.io, EPOLLIN), 0);
	CHECK_EQ(loop_add(cb_loop, &p.io, EPOLLIN), -EEXIST);

	CHECK_EQ(loop_once(cb_loop, 0), 0);
	CHECK_EQ(p.io_calls, 0);

	CHECK_EQ(write(fds[1], "x", 1), 1);
	CHECK_EQ(loop_once(cb_loop, 1000), 0);
	CHECK_EQ(p.io_calls, 1);
	CHECK_EQ(p.events, EPOLLIN);

	/* level-triggered: still readable, called again; not after loop_del */
	CHECK_EQ(loop_once(cb_loop, 0), 0);
	CHECK_EQ(p.io_calls, 2);
	CHECK_EQ(loop_mod(cb_loop, &p.io, 0), 0);
	CHECK_EQ(loop_once(cb_loop, 0), 0);
	CHECK_EQ(p.io_calls, 2);
	CHECK_EQ(loop_mod(cb_loop, &p.io, EPOLLIN), 0);
	loop_del(cb_loop, &p.io);
	CHECK_EQ(loop_once(cb_loop, 0), 0);
	CHECK_EQ(p.io_calls, 2);

	/* the writer closing shows as EPOLLHUP */
	CHECK_EQ(loop_add(cb_loop, &p.io, EPOLLIN), 0);
	close(fds[1]);
	CHECK_EQ(loop_once(cb_loop, 1000), 0);
	CHECK_EQ(p.io_calls, 3);
	CHECK_EQ(p.events, EPOLLIN | EPOLLHUP);
	loop_del(cb_loop, &p.io);
	close(fds[0]);
	loop_free(cb_loop);
}

static void test_loop_once_sleeps_until_the_next_timer(void)
{
	struct loop *l = new_loop();
	struct tt t = { .id = 7 };
	uint64_t start = clock_now_ms(), before = loop_now(l);

	timer_init(&t.t, on_record);
	timer_arm(l, &t.t, 30);
	nfired = 0;
	CHECK_EQ(loop_once(l, -1), 0);
	CHECK_EQ(nfired, 1);
	CHECK(clock_now_ms() - start >= 30);
	CHECK(loop_now(l) >= before + 30);
	CHECK(clock_now_ms() - start < 1000);
	loop_free(l);
}

static uint64_t thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * --busy-poll: after an iteration with events the loop polls without sleeping for the
 * window (the thread burns CPU for it), sees an event written meanwhile at once, never
 * runs a timer late, and does not spin when nothing happened.
 */
static void test_loop_busy_poll_spins_only_after_activity(void)
{
	struct probe p = { 0 };
	struct tt t = { .id = 9 };
	uint64_t cpu, start;
	int fds[2];

	cb_loop = new_loop();
	CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	p.io.fd = fds[0];
	p.io.cb = on_io_count;
	CHECK_EQ(loop_add(cb_loop, &p.io, EPOLLIN), 0);
	timer_init(&t.t, on_record);

	/* off: an idle wait sleeps (almost no CPU) */
	CHECK_EQ(write(fds[1], "x", 1), 1);
	CHECK_EQ(loop_once(cb_loop, 100), 0);
	CHECK_EQ(read(fds[0], &(char){ 0 }, 1), 1);
	cpu = thread_cpu_us();
	CHECK_EQ(loop_once(cb_loop, 40), 0);
	CHECK(thread_cpu_us() - cpu < 10000);

	/* on (30 ms): activity, then a 20 ms wait is spent polling */
	loop_set_busy_poll(cb_loop, 30000);
	CHECK_EQ(write(fds[1], "x", 1), 1);
	CHECK_EQ(loop_once(cb_loop, 100), 0);
	CHECK_EQ(read(fds[0], &(char){ 0 }, 1), 1);
	cpu = thread_cpu_us();
	start = clock_now_ms();
	CHECK_EQ(loop_once(cb_loop, 20), 0);
	CHECK(clock_now_ms() - start >= 19);
	CHECK(thread_cpu_us() - cpu >= 5000);	/* a sleeping wait uses well under 1 ms */

	/* a timer due inside the window still fires on time */
	CHECK_EQ(write(fds[1], "x", 1), 1);
	CHECK_EQ(loop_once(cb_loop, 100), 0);
	CHECK_EQ(read(fds[0], &(char){ 0 }, 1), 1);
	timer_arm(cb_loop, &t.t, 5);
	nfired = 0;
	start = clock_now_ms();
	CHECK_EQ(loop_once(cb_loop, -1), 0);
	if (!nfired)
		CHECK_EQ(loop_once(cb_loop, -1), 0);
	CHECK_EQ(nfired, 1);
	CHECK(clock_now_ms() - start <= 25);	/* not at the end of the 30 ms window */

	/* the window has passed with no event: the next wait sleeps again */
	usleep(40000);
	CHECK_EQ(loop_once(cb_loop, 0), 0);
	cpu = thread_cpu_us();
	CHECK_EQ(loop_once(cb_loop, 40), 0);
	CHECK(thread_cpu_us() - cpu < 10000);

	loop_del(cb_loop, &p.io);
	close(fds[0]);
	close(fds[1]);
	loop_free(cb_loop);
}

static void on_stop(struct timer *t)
{
	on_record(t);
	loop_stop(cb_loop);
}

static void test_loop_run_returns_after_loop_stop(void)
{
	struct tt t = { .id = 3 };

	cb_loop = new_loop();
	timer_init(&t.t, on_stop);
	timer_arm(cb_loop, &t.t, 1);
	nfired = 0;
	CHECK_EQ(loop_run(cb_loop), 0);
	CHECK_EQ(nfired, 1);
	loop_free(cb_loop);
}

int main(void)
{
	RUN(test_timers_fire_in_deadline_order_matching_a_model);
	RUN(test_timer_rearm_earlier_and_later_reorders_it);
	RUN(test_timer_arm_counts_from_loop_now);
	RUN(test_loop_timer_count_tracks_arm_rearm_cancel_and_fire);
	RUN(test_timer_rearmed_for_now_by_its_callback_waits_for_next_iteration);
	RUN(test_timer_cancelled_by_an_earlier_due_timer_never_fires);
	RUN(test_loop_defer_runs_once_at_end_of_iteration_even_when_queued_twice);
	RUN(test_loop_once_calls_io_callback_only_while_fd_is_readable);
	RUN(test_loop_once_sleeps_until_the_next_timer);
	RUN(test_loop_run_returns_after_loop_stop);
	RUN(test_loop_busy_poll_spins_only_after_activity);
	TEST_EXIT();
}
