/*
 * The TCP relay driven in-process on loopback: a worker's loop is stepped by hand, so
 * the test can look at what the relay holds (pipes, connections) between steps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "relay/tcp.h"
#include "relay/worker.h"
#include "test.h"

struct fixture {
	struct worker w;
	struct rule *rule;
	int upstream;		/* listening socket standing for the target */
	uint16_t listen_port;
};

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	listen(fd, 16);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void fixture_up(struct fixture *f, const struct rule_opts *ro)
{
	struct sockaddr_in *t;
	uint16_t up_port;
	int lfd;

	CHECK_EQ(worker_init(&f->w, 0), 0);
	f->upstream = listen_any(&up_port);
	lfd = listen_any(&f->listen_port);
	f->rule = calloc(1, sizeof(*f->rule));
	f->rule->o = *ro;
	f->rule->refs = 2;	/* ours + the listener's */
	snprintf(f->rule->desc, sizeof(f->rule->desc), "test rule");
	f->rule->listen.port = f->listen_port;
	f->rule->target.port = up_port;
	f->rule->target.naddrs = 1;
	t = (struct sockaddr_in *)&f->rule->target.addrs[0];
	t->sin_family = AF_INET;
	t->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->sin_port = htons(up_port);
	CHECK_EQ(rule_alloc_stats(f->rule, 1), 0);
	CHECK_EQ(tcp_listener_start(&f->w, f->rule, lfd), 0);
}

static void fixture_down(struct fixture *f)
{
	tcp_listener_stop_all(&f->w);
	tcp_conn_close_all(&f->w);
	loop_once(f->w.loop, 0);
	close(f->upstream);
	rule_unref(f->rule);
	worker_destroy(&f->w);
}

static void spin(struct fixture *f, int rounds)
{
	for (int i = 0; i < rounds; i++)
		loop_once(f->w.loop, 5);
}

/* Client connects; returns client fd and (via *srv) the upstream side the relay opened. */
static int connect_pair(struct fixture *f, int *srv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(f->listen_port) };
	int c = socket(AF_INET, SOCK_STREAM, 0);

	CHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*srv = -1;
	for (int i = 0; i < 200 && *srv < 0; i++) {
		spin(f, 1);
		*srv = accept(f->upstream, NULL, NULL);
	}
	CHECK(*srv >= 0);
	spin(f, 3);
	return c;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Reads what is there within the spins; returns bytes read, -1 on error (errno kept). */
static ssize_t drain(struct fixture *f, int fd, char *buf, size_t cap, int rounds)
{
	size_t got = 0;

	set_nonblock(fd);
	for (int i = 0; i < rounds && got < cap; i++) {
		ssize_t n = recv(fd, buf + got, cap - got, 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno != EAGAIN)
				return -1;
			spin(f, 1);
			continue;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void test_tcp_idle_connection_holds_no_pipe(void)
{
	struct fixture f;
	struct rule_opts ro;
	char buf[4096];
	int c, s;

	rule_opts_default(&ro);
	fixture_up(&f, &ro);
	c = connect_pair(&f, &s);
	CHECK_EQ(send(c, "hello", 5, 0), 5);
	CHECK_EQ(drain(&f, s, buf, 5, 100), 5);
	CHECK_EQ(send(s, "world!", 6, 0), 6);
	CHECK_EQ(drain(&f, c, buf, 6, 100), 6);
	spin(&f, 3);
	CHECK_EQ(f.w.nconns, 1);
	CHECK_EQ(f.w.pipes.in_use, 0);
	CHECK_EQ(f.rule->stats[0].bytes_up, 5);
	CHECK_EQ(f.rule->stats[0].bytes_down, 6);
	close(c);
	close(s);
	spin(&f, 5);
	CHECK_EQ(f.w.nconns, 0);
	fixture_down(&f);
}

static void test_tcp_backpressure_holds_at_most_one_pipe_per_direction(void)
{
	struct fixture f;
	struct rule_opts ro;
	static char big[1 << 20];
	size_t sent = 0, rcvd = 0;
	int c, s, sndbuf = 16384;

	rule_opts_default(&ro);
	fixture_up(&f, &ro);
	c = connect_pair(&f, &s);
	set_nonblock(c);
	/* the target never reads: the client must be stopped by a full window, not by ferry buffering */
	for (int i = 0; i < 400; i++) {
		ssize_t n = send(c, big, sizeof(big), 0);

		if (n > 0)
			sent += (size_t)n;
		spin(&f, 1);
		CHECK(f.w.pipes.in_use <= 1);
	}
	CHECK(sent < sizeof(big) * 64);	/* bounded by socket buffers, not unbounded */
	CHECK(f.rule->stats[0].bytes_up < sent + 1);
	/* now the target reads everything: all bytes arrive, and the pipe is given back */
	set_nonblock(s);
	setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	shutdown(c, SHUT_WR);
	for (int i = 0; i < 20000; i++) {
		ssize_t n = recv(s, big, sizeof(big), 0);

		if (n == 0)
			break;
		if (n > 0)
			rcvd += (size_t)n;
		spin(&f, 1);
	}
	CHECK_EQ(rcvd, sent);
	CHECK_EQ(f.w.pipes.in_use, 0);
	close(c);
	close(s);
	fixture_down(&f);
}

static void test_tcp_half_close_keeps_other_direction(void)
{
	struct fixture f;
	struct rule_opts ro;
	char buf[64];
	int c, s;

	rule_opts_default(&ro);
	fixture_up(&f, &ro);
	c = connect_pair(&f, &s);
	CHECK_EQ(send(c, "req", 3, 0), 3);
	shutdown(c, SHUT_WR);
	spin(&f, 5);
	/* the target sees the data, then EOF */
	CHECK_EQ(drain(&f, s, buf, sizeof(buf), 100), 3);
	/* and can still answer */
	CHECK_EQ(send(s, "reply", 5, 0), 5);
	close(s);
	CHECK_EQ(drain(&f, c, buf, sizeof(buf), 100), 5);
	spin(&f, 5);
	CHECK_EQ(f.w.nconns, 0);
	close(c);
	fixture_down(&f);
}

static void test_tcp_reset_propagates_to_client(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct linger lg = { 1, 0 };
	char buf[64];
	int c, s;

	rule_opts_default(&ro);
	fixture_up(&f, &ro);
	c = connect_pair(&f, &s);
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(s);
	spin(&f, 5);
	errno = 0;
	CHECK_EQ(drain(&f, c, buf, sizeof(buf), 50), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(f.w.nconns, 0);
	close(c);
	fixture_down(&f);
}

static void test_tcp_max_conns_refuses_beyond_limit(void)
{
	struct fixture f;
	struct rule_opts ro;
	char buf[8];
	int c1, s1, c2;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	rule_opts_default(&ro);
	ro.max_conns = 1;
	fixture_up(&f, &ro);
	c1 = connect_pair(&f, &s1);
	sa.sin_port = htons(f.listen_port);
	c2 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(c2, (struct sockaddr *)&sa, sizeof(sa)), 0);
	spin(&f, 5);
	CHECK_EQ(drain(&f, c2, buf, sizeof(buf), 50), -1);	/* reset at once */
	CHECK_EQ(f.rule->stats[0].drops[DROP_MAX_CONNS], 1);
	CHECK_EQ(f.w.nconns, 1);
	close(c1);
	close(s1);
	close(c2);
	fixture_down(&f);
}

static void test_tcp_target_refused_counts_connect_failed(void)
{
	struct fixture f;
	struct rule_opts ro;
	char buf[8];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int c;

	rule_opts_default(&ro);
	fixture_up(&f, &ro);
	close(f.upstream);
	f.upstream = socket(AF_INET, SOCK_STREAM, 0);	/* nothing listens on the target port now */
	sa.sin_port = htons(f.listen_port);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	spin(&f, 10);
	CHECK_EQ(drain(&f, c, buf, sizeof(buf), 50), -1);
	CHECK_EQ(f.rule->stats[0].drops[DROP_CONNECT_FAILED], 1);
	CHECK_EQ(f.rule->stats[0].failed, 1);
	CHECK_EQ(f.w.nconns, 0);
	close(c);
	fixture_down(&f);
}

/*
 * --transparent: connects a client from 127.0.0.1 (sharing its port when reuseaddr) and
 * returns the port the target saw the relay's connection come from (0 if none came).
 */
static uint16_t transparent_peer_port(int reuseaddr, uint16_t *cport)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, peer;
	socklen_t len = sizeof(sa);
	char buf[4];
	int c = socket(AF_INET, SOCK_STREAM, 0), srv = -1;

	rule_opts_default(&ro);
	ro.transparent = true;
	fixture_up(&f, &ro);
	setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr));
	CHECK_EQ(bind(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(c, (struct sockaddr *)&sa, &len);
	*cport = ntohs(sa.sin_port);
	sa.sin_port = htons(f.listen_port);
	CHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	for (int i = 0; i < 200 && srv < 0; i++) {
		spin(&f, 1);
		len = sizeof(peer);
		srv = accept(f.upstream, (struct sockaddr *)&peer, &len);
	}
	CHECK(srv >= 0);
	if (srv < 0) {
		close(c);
		fixture_down(&f);
		return 0;
	}
	CHECK_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	/* and the connection carries data */
	CHECK_EQ(send(c, "up", 2, 0), 2);
	CHECK_EQ(drain(&f, srv, buf, 2, 50), 2);
	close(srv);
	close(c);
	fixture_down(&f);
	return ntohs(peer.sin_port);
}

static void test_tcp_transparent_target_sees_client_address_and_port(void)
{
	uint16_t cport;

	if (sock_transparent_allowed(AF_INET)) {
		fprintf(stderr, "  (skipped: IP_TRANSPARENT not allowed, needs CAP_NET_ADMIN)\n");
		return;
	}
	CHECK_EQ(transparent_peer_port(1, &cport), cport);
}

/* A client on this host holds its port for itself: the client's address, another port. */
static void test_tcp_transparent_takes_another_port_when_the_client_holds_its_own(void)
{
	uint16_t cport, seen;

	if (sock_transparent_allowed(AF_INET)) {
		fprintf(stderr, "  (skipped: IP_TRANSPARENT not allowed, needs CAP_NET_ADMIN)\n");
		return;
	}
	seen = transparent_peer_port(0, &cport);
	CHECK(seen != 0 && seen != cport);
}

/* Out of fds: pending clients are accepted and reset one by one, counted, and the loop
 * then sleeps instead of spinning on a listener it cannot serve. */
static void test_tcp_emfile_sheds_connections_without_spinning(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct rlimit old, low;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int cl[5], maxfd = 0;
	char buf[8];
	uint64_t t0, t1;

	rule_opts_default(&ro);
	fixture_up(&f, &ro);
	sa.sin_port = htons(f.listen_port);
	for (int i = 0; i < 5; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM, 0);
		maxfd = cl[i] > maxfd ? cl[i] : maxfd;
	}
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = (rlim_t)maxfd + 1;	/* no fd above the ones already open */
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(connect(cl[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	spin(&f, 20);
	for (int i = 0; i < 5; i++) {
		errno = 0;
		CHECK_EQ(drain(&f, cl[i], buf, sizeof(buf), 20), -1);
		CHECK_EQ(errno, ECONNRESET);
	}
	CHECK_EQ(f.rule->stats[0].drops[DROP_NO_FDS], 5);
	CHECK(f.w.reserve_fd >= 0);
	t0 = clock_now_ms();
	loop_once(f.w.loop, 100);
	t1 = clock_now_ms();
	CHECK(t1 - t0 >= 90);	/* nothing to do: the loop waited, it did not spin */
	setrlimit(RLIMIT_NOFILE, &old);
	for (int i = 0; i < 5; i++)
		close(cl[i]);
	fixture_down(&f);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_tcp_idle_connection_holds_no_pipe);
	RUN(test_tcp_backpressure_holds_at_most_one_pipe_per_direction);
	RUN(test_tcp_half_close_keeps_other_direction);
	RUN(test_tcp_reset_propagates_to_client);
	RUN(test_tcp_max_conns_refuses_beyond_limit);
	RUN(test_tcp_target_refused_counts_connect_failed);
	RUN(test_tcp_emfile_sheds_connections_without_spinning);
	RUN(test_tcp_transparent_target_sees_client_address_and_port);
	RUN(test_tcp_transparent_takes_another_port_when_the_client_holds_its_own);
	TEST_EXIT();
}
