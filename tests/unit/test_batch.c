/* Which datagrams one UDP GSO send may carry, and batch_send over a socketpair-like loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/batch.h"
#include "test.h"

static void lens(struct iovec *iov, const size_t *l, int n)
{
	static char buf[65536];

	for (int i = 0; i < n; i++) {
		iov[i].iov_base = buf;
		iov[i].iov_len = l[i];
	}
}

static void test_gso_run_takes_equal_sizes_and_a_shorter_last(void)
{
	struct iovec iov[8];
	size_t a[] = { 100, 100, 100, 60, 100 };
	size_t b[] = { 100, 200, 100 };
	size_t c[] = { 1452, 1452 };
	size_t d[] = { 1453, 1453 };
	size_t e[] = { 0, 0 };

	lens(iov, a, 5);
	CHECK_EQ(batch_gso_run(iov, 5), 4);	/* the shorter one ends the run */
	lens(iov, b, 3);
	CHECK_EQ(batch_gso_run(iov, 3), 1);	/* a bigger one cannot join */
	lens(iov, c, 2);
	CHECK_EQ(batch_gso_run(iov, 2), 2);
	lens(iov, d, 2);
	CHECK_EQ(batch_gso_run(iov, 2), 1);	/* above one MTU: no GSO */
	lens(iov, e, 2);
	CHECK_EQ(batch_gso_run(iov, 2), 1);	/* empty datagrams are sent one by one */
}

static void test_gso_run_stops_at_64_segments_and_65507_bytes(void)
{
	static struct iovec iov[BATCH_MAX];
	size_t l[BATCH_MAX];

	for (int i = 0; i < BATCH_MAX; i++)
		l[i] = 10;
	lens(iov, l, BATCH_MAX);
	CHECK_EQ(batch_gso_run(iov, BATCH_MAX), 64);
	for (int i = 0; i < BATCH_MAX; i++)
		l[i] = 1400;
	lens(iov, l, BATCH_MAX);
	CHECK_EQ(batch_gso_run(iov, BATCH_MAX), 46);	/* 46 * 1400 = 64400 <= 65507 < 47 * 1400 */
}

/* Every datagram arrives separately and whole, whichever way batch_send grouped them. */
static void test_batch_send_delivers_each_datagram_whole(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int rx = socket(AF_INET, SOCK_DGRAM, 0), txfd = socket(AF_INET, SOCK_DGRAM, 0);
	static struct batch_tx tx;
	struct iovec iov[10];
	static char data[10][2000];
	size_t l[10] = { 500, 500, 500, 500, 120, 1800, 700, 700, 700, 3 };
	char buf[4096];

	bind(rx, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(rx, (struct sockaddr *)&sa, &len);
	for (int i = 0; i < 10; i++) {
		memset(data[i], 'a' + i, sizeof(data[i]));
		iov[i].iov_base = data[i];
		iov[i].iov_len = l[i];
	}
	CHECK_EQ(batch_send(&tx, txfd, iov, 10, (struct sockaddr *)&sa, sizeof(sa)), 10);
	for (int i = 0; i < 10; i++) {
		ssize_t n = recv(rx, buf, sizeof(buf), MSG_DONTWAIT);

		CHECK_EQ(n, (long long)l[i]);
		CHECK(n > 0 && buf[0] == 'a' + i && buf[n - 1] == 'a' + i);
	}
	CHECK_EQ(recv(rx, buf, sizeof(buf), MSG_DONTWAIT), -1);
	close(rx);
	close(txfd);
}

int main(void)
{
	RUN(test_gso_run_takes_equal_sizes_and_a_shorter_last);
	RUN(test_gso_run_stops_at_64_segments_and_65507_bytes);
	RUN(test_batch_send_delivers_each_datagram_whole);
	TEST_EXIT();
}
