/*
 * The UDP relay driven in-process on loopback: a worker's loop is stepped by hand and a
 * test socket plays the target, so sessions, counters and reply addresses can be checked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/batch.h"
#include "relay/udp.h"
#include "relay/worker.h"
#include "test.h"

struct fixture {
	struct worker w;
	struct rule *rule;
	int target;		/* stands for the target: the test answers by hand */
	uint16_t listen_port;
};

static int udp_socket_on(const char *ip, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	inet_pton(AF_INET, ip, &sa.sin_addr);
	sa.sin_port = htons(*port);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void fixture_up(struct fixture *f, const char *listen_ip, const struct rule_opts *ro)
{
	struct sockaddr_in *a;
	uint16_t tport = 0;
	int lfd;

	CHECK_EQ(worker_init(&f->w, 0), 0);
	f->target = udp_socket_on("127.0.0.1", &tport);
	f->listen_port = 0;
	lfd = udp_socket_on(listen_ip, &f->listen_port);
	f->rule = calloc(1, sizeof(*f->rule));
	f->rule->o = *ro;
	f->rule->refs = 2;
	snprintf(f->rule->desc, sizeof(f->rule->desc), "udp test rule");
	f->rule->listen.scheme = EP_UDP;
	f->rule->listen.port = f->listen_port;
	f->rule->listen.naddrs = 1;
	a = (struct sockaddr_in *)&f->rule->listen.addrs[0];
	a->sin_family = AF_INET;
	inet_pton(AF_INET, listen_ip, &a->sin_addr);
	a->sin_port = htons(f->listen_port);
	f->rule->target.scheme = EP_UDP;
	f->rule->target.port = tport;
	f->rule->target.naddrs = 1;
	a = (struct sockaddr_in *)&f->rule->target.addrs[0];
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = htons(tport);
	CHECK_EQ(rule_alloc_stats(f->rule, 1), 0);
	CHECK_EQ(udp_listener_start(&f->w, f->rule, lfd), 0);
}

static void fixture_down(struct fixture *f)
{
	udp_listener_stop_all(&f->w);
	loop_once(f->w.loop, 0);
	close(f->target);
	rule_unref(f->rule);
	worker_destroy(&f->w);
}

static void spin(struct fixture *f, int rounds)
{
	for (int i = 0; i < rounds; i++)
		loop_once(f->w.loop, 2);
}

static int client(void)
{
	return socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
}

static void send_to(int fd, const char *ip, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &sa.sin_addr);
	CHECK_EQ(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)), (long long)len);
}

/* The target answers every datagram waiting for it; returns how many, and the last source port. */
static int target_echo(struct fixture *f, uint16_t *src_port)
{
	static char buf[65536];
	struct sockaddr_in from;
	int n = 0;

	for (;;) {
		socklen_t len = sizeof(from);
		ssize_t r = recvfrom(f->target, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);

		if (r < 0)
			return n;
		sendto(f->target, buf, (size_t)r, 0, (struct sockaddr *)&from, len);
		if (src_port)
			*src_port = ntohs(from.sin_port);
		n++;
	}
}

static ssize_t recv_reply(int fd, char *buf, size_t cap, struct sockaddr_in *from)
{
	socklen_t len = sizeof(*from);

	return recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &len);
}

static void test_udp_reply_leaves_from_the_address_the_client_sent_to(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in from;
	char buf[64], ip[INET_ADDRSTRLEN];
	int c = client();

	rule_opts_default(&ro);
	fixture_up(&f, "0.0.0.0", &ro);
	/* 127.0.0.5 is local too, but a reply routed to 127.0.0.1 would leave from 127.0.0.1 */
	send_to(c, "127.0.0.5", f.listen_port, "ping", 4);
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, NULL), 1);
	spin(&f, 3);
	CHECK_EQ(recv_reply(c, buf, sizeof(buf), &from), 4);
	inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
	CHECK_STR(ip, "127.0.0.5");
	CHECK_EQ(ntohs(from.sin_port), f.listen_port);
	close(c);
	fixture_down(&f);
}

static void test_udp_largest_datagram_passes_whole_and_oversize_is_counted(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in from;
	static char big[65507], back[65536];
	int c = client(), sndbuf = 1 << 20;

	setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	rule_opts_default(&ro);
	fixture_up(&f, "127.0.0.1", &ro);
	send_to(c, "127.0.0.1", f.listen_port, big, sizeof(big));
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, NULL), 1);
	spin(&f, 3);
	CHECK_EQ(recv_reply(c, back, sizeof(back), &from), (long long)sizeof(big));
	CHECK(!memcmp(big, back, sizeof(big)));
	fixture_down(&f);

	ro.max_datagram = 1000;
	fixture_up(&f, "127.0.0.1", &ro);
	send_to(c, "127.0.0.1", f.listen_port, big, 1001);
	send_to(c, "127.0.0.1", f.listen_port, big, 1000);
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, NULL), 1);	/* only the 1000-byte one */
	CHECK_EQ(f.rule->stats[0].drops[DROP_OVERSIZE], 1);
	CHECK_EQ(f.rule->stats[0].dgrams_up, 1);
	close(c);
	fixture_down(&f);
}

/* IP_TRANSPARENT needs CAP_NET_ADMIN; without it the transparent tests have nothing to test. */
static int transparent_allowed(void)
{
	if (sock_transparent_allowed(AF_INET) == 0)
		return 1;
	fprintf(stderr, "  (skipped: IP_TRANSPARENT not allowed, needs CAP_NET_ADMIN)\n");
	return 0;
}

/* A client socket bound to 127.0.0.1 that lets another socket share its port (or not). */
static int client_bound(int reuseaddr, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = client();

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr));
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* --transparent: the target sees the client's address and port, and its reply (to that
 * address) is taken by the session socket, not by the client, and relayed from the listener. */
static void test_udp_transparent_target_sees_client_port_and_reply_goes_through_session(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in from;
	char buf[64];
	uint16_t cport, seen = 0;
	int c;

	if (!transparent_allowed())
		return;
	c = client_bound(1, &cport);
	rule_opts_default(&ro);
	ro.transparent = true;
	fixture_up(&f, "127.0.0.1", &ro);
	send_to(c, "127.0.0.1", f.listen_port, "ping", 4);
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, &seen), 1);
	CHECK_EQ(seen, cport);
	spin(&f, 3);
	CHECK_EQ(recv_reply(c, buf, sizeof(buf), &from), 4);
	CHECK_EQ(ntohs(from.sin_port), f.listen_port);
	CHECK_EQ(f.rule->stats[0].dgrams_down, 1);
	close(c);
	fixture_down(&f);
}

/* A client on this host holds its port for itself: the session takes the client's address
 * with another port instead of failing. */
static void test_udp_transparent_takes_another_port_when_the_client_holds_its_own(void)
{
	struct fixture f;
	struct rule_opts ro;
	uint16_t cport, seen = 0;
	int c;

	if (!transparent_allowed())
		return;
	c = client_bound(0, &cport);
	rule_opts_default(&ro);
	ro.transparent = true;
	fixture_up(&f, "127.0.0.1", &ro);
	send_to(c, "127.0.0.1", f.listen_port, "ping", 4);
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, &seen), 1);
	CHECK(seen != 0 && seen != cport);
	CHECK_EQ(f.rule->stats[0].accepted, 1);
	close(c);
	fixture_down(&f);
}

/* --tproxy: a datagram sent to the listener's own port (not diverted) is answered from the
 * address it was sent to, known from its original destination rather than IP_PKTINFO. */
static void test_udp_tproxy_listener_answers_direct_datagrams_from_their_destination(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in from;
	char buf[64], ip[INET_ADDRSTRLEN];
	int c = client();

	if (!transparent_allowed()) {
		close(c);
		return;
	}
	rule_opts_default(&ro);
	ro.tproxy = true;
	fixture_up(&f, "0.0.0.0", &ro);
	send_to(c, "127.0.0.6", f.listen_port, "ping", 4);
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, NULL), 1);
	spin(&f, 3);
	CHECK_EQ(recv_reply(c, buf, sizeof(buf), &from), 4);
	inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
	CHECK_STR(ip, "127.0.0.6");
	CHECK_EQ(ntohs(from.sin_port), f.listen_port);
	close(c);
	fixture_down(&f);
}

/* At --max-sessions the least recently active session goes, not the oldest created. */
static void test_udp_max_sessions_evicts_least_recently_active(void)
{
	struct fixture f;
	struct rule_opts ro;
	int c[4];
	uint16_t port_a1 = 0, port_a2 = 0, port_b1 = 0, port_b2 = 0, p;

	rule_opts_default(&ro);
	ro.max_sessions = 3;
	fixture_up(&f, "127.0.0.1", &ro);
	for (int i = 0; i < 4; i++)
		c[i] = client();
	send_to(c[0], "127.0.0.1", f.listen_port, "a", 1);	/* A */
	spin(&f, 2);
	target_echo(&f, &port_a1);
	send_to(c[1], "127.0.0.1", f.listen_port, "b", 1);	/* B */
	spin(&f, 2);
	target_echo(&f, &port_b1);
	send_to(c[2], "127.0.0.1", f.listen_port, "c", 1);	/* C */
	spin(&f, 2);
	send_to(c[0], "127.0.0.1", f.listen_port, "a", 1);	/* A again: B is now the least recent */
	spin(&f, 2);
	target_echo(&f, &port_a2);
	CHECK_EQ(port_a2, port_a1);
	send_to(c[3], "127.0.0.1", f.listen_port, "d", 1);	/* D: one must go */
	spin(&f, 2);
	target_echo(&f, &p);
	CHECK_EQ(f.rule->stats[0].sess_evicted, 1);
	CHECK_EQ(f.w.nconns, 3);
	send_to(c[0], "127.0.0.1", f.listen_port, "a", 1);	/* A kept its session (its socket) */
	spin(&f, 2);
	target_echo(&f, &p);
	CHECK_EQ(p, port_a1);
	send_to(c[1], "127.0.0.1", f.listen_port, "b", 1);	/* B was evicted: a new socket */
	spin(&f, 2);
	target_echo(&f, &port_b2);
	CHECK(port_b2 != port_b1);
	for (int i = 0; i < 4; i++)
		close(c[i]);
	fixture_down(&f);
}

static void test_udp_idle_session_expires_by_timer(void)
{
	struct fixture f;
	struct rule_opts ro;
	int c = client();

	rule_opts_default(&ro);
	ro.udp_timeout_ms = 50;
	fixture_up(&f, "127.0.0.1", &ro);
	send_to(c, "127.0.0.1", f.listen_port, "x", 1);
	spin(&f, 2);
	CHECK_EQ(f.w.nconns, 1);
	for (int i = 0; i < 50 && f.w.nconns; i++)
		loop_once(f.w.loop, 10);
	CHECK_EQ(f.w.nconns, 0);
	CHECK_EQ(f.rule->stats[0].sess_expired, 1);
	CHECK_EQ(loop_timer_count(f.w.loop), 0);
	close(c);
	fixture_down(&f);
}

/* The target's port is closed: the ICMP error is counted, the session stays and works on. */
static void test_udp_icmp_error_is_counted_and_session_survives(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in from;
	char buf[16];
	uint16_t tport;
	int c = client();

	rule_opts_default(&ro);
	fixture_up(&f, "127.0.0.1", &ro);
	tport = f.rule->target.port;
	close(f.target);	/* port unreachable from now on */
	send_to(c, "127.0.0.1", f.listen_port, "1", 1);
	spin(&f, 3);
	send_to(c, "127.0.0.1", f.listen_port, "2", 1);
	spin(&f, 3);
	CHECK(f.rule->stats[0].drops[DROP_ICMP_ERROR] >= 1);
	CHECK_EQ(f.w.nconns, 1);
	f.target = udp_socket_on("127.0.0.1", &tport);	/* the target comes back */
	send_to(c, "127.0.0.1", f.listen_port, "3", 1);
	spin(&f, 3);
	CHECK_EQ(target_echo(&f, NULL), 1);
	spin(&f, 3);
	CHECK_EQ(recv_reply(c, buf, sizeof(buf), &from), 1);
	CHECK_EQ(buf[0], '3');
	close(c);
	fixture_down(&f);
}

/*
 * A GSO burst from the client reaches ferry's GRO-enabled socket as one coalesced message
 * on loopback; it must leave as the same separate datagrams, not as one big one.
 */
static void test_udp_coalesced_receive_is_forwarded_as_separate_datagrams(void)
{
	struct fixture f;
	struct rule_opts ro;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static struct batch_tx tx;
	static char data[10][100], buf[65536];
	struct iovec iov[10];
	int c = client(), got = 0;

	rule_opts_default(&ro);
	fixture_up(&f, "127.0.0.1", &ro);
	sa.sin_port = htons(f.listen_port);
	for (int i = 0; i < 10; i++) {
		memset(data[i], '0' + i, sizeof(data[i]));
		iov[i].iov_base = data[i];
		iov[i].iov_len = i == 9 ? 40 : sizeof(data[i]);	/* a shorter last segment */
	}
	CHECK_EQ(batch_send(&tx, c, iov, 10, (struct sockaddr *)&sa, sizeof(sa)), 10);
	spin(&f, 3);
	for (;;) {
		ssize_t n = recv(f.target, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0)
			break;
		CHECK_EQ(n, got == 9 ? 40 : 100);
		CHECK_EQ(buf[0], '0' + got);
		got++;
	}
	CHECK_EQ(got, 10);
	CHECK_EQ(f.rule->stats[0].dgrams_up, 10);
	close(c);
	fixture_down(&f);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_udp_reply_leaves_from_the_address_the_client_sent_to);
	RUN(test_udp_largest_datagram_passes_whole_and_oversize_is_counted);
	RUN(test_udp_max_sessions_evicts_least_recently_active);
	RUN(test_udp_idle_session_expires_by_timer);
	RUN(test_udp_icmp_error_is_counted_and_session_survives);
	RUN(test_udp_coalesced_receive_is_forwarded_as_separate_datagrams);
	RUN(test_udp_transparent_target_sees_client_port_and_reply_goes_through_session);
	RUN(test_udp_transparent_takes_another_port_when_the_client_holds_its_own);
	RUN(test_udp_tproxy_listener_answers_direct_datagrams_from_their_destination);
	TEST_EXIT();
}
