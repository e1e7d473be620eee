/*
 * impair: a seeded, deterministic link impairer for ferry's integration tests and benchmarks.
 *
 * This kernel has no sch_netem, so loss, duplication, reordering, delay and jitter are made
 * in user space. Every random decision comes from a splitmix64 PRNG seeded by --seed, one
 * stream per direction, and each packet takes the same number of draws whatever happens to
 * it: the n-th packet of a direction meets the same fate in every run, so a test that sends
 * the same traffic gets the same summary line.
 *
 *   udp mode   a UDP relay: datagrams from a client to --listen go to --target from one
 *              upstream socket; replies go back to the last client address.
 *   ip mode    for a middle "router" namespace: packets arriving on --in are captured with an
 *              AF_PACKET socket, filtered by --proto, impaired, and re-injected unchanged with
 *              a raw IP socket (header included) addressed to their destination, so the kernel
 *              routes them out as locally sent packets. The test drops the same traffic in the
 *              router's forward chain with nft, so only the tool's copy crosses. One process
 *              handles one direction; run a second one with --in on the other side for the
 *              way back. Left alone (never captured): packets to the router's own addresses
 *              (as they were at start), to link-local, multicast or broadcast addresses, and
 *              every ICMPv6 message but echo request/reply (128/129), so neighbour discovery
 *              keeps working. --proto icmp takes all ICMP for IPv4 (ARP is not IP).
 *
 * Not a general tool: one client in udp mode, no fragmentation or segmentation in ip mode (a
 * TSO/GSO super-packet from a veth sender is too big to re-inject; give the sender's veth
 * `ip link set dev X gso_max_segs 1`). Checksums left for the NIC to fill (veth) are filled in.
 *
 * Example (a tests/net script), a lossy path C -> impair in F -> server in S:
 *
 *   ip netns exec $NS_F build/tools/impair udp --listen 10.77.1.2:7000 \
 *           --target 10.77.2.2:7000 --loss 5 --reorder 5 --dup 2 --seed 7 2>"$T/imp" &
 *   until grep -q 'impair: ready' "$T/imp"; do sleep 0.05; done
 *   ... run the client against 10.77.1.2:7000 ...
 *   kill -TERM $!; wait $!; grep -o 'dropped=[0-9]*' "$T/imp"
 *
 * and in a router namespace M between A (vethMA) and B (vethMB):
 *
 *   nft add table inet imp
 *   nft add chain inet imp fwd '{ type filter hook forward priority 0; }'
 *   nft add rule inet imp fwd icmpv6 type '{ echo-request, echo-reply }' drop
 *   impair ip --in vethMA --proto icmpv6 --loss 5 & impair ip --in vethMB --proto icmpv6 &
 */
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define MAX_QUEUED_PKTS 4096	/* delayed + held packets; more are dropped as overflow */
#define MAX_HELD_PKTS 256	/* per direction; a reorder beyond this is not held */
#define REORDER_HOLD_MS 50	/* a held packet goes out after this even if no gap fills */
#define MAX_PKT_BYTES 65600	/* largest IPv6 packet (40 + 65535) and then some */
#define READ_BATCH_PKTS 64	/* per wake-up and socket, so timers are not starved */
#define SOCK_BUF_BYTES (4 << 20)	/* bursts of a benchmark fit in the socket buffers */
#define MAX_LOCAL_ADDRS 64
#define PROTO_ANY (-1)

enum { DIR_FWD, DIR_REV, NDIRS };	/* udp: client->target, target->client; ip: FWD only */

struct pkt {
	uint64_t due_ns;	/* queued: when to send; held: when to release at the latest */
	uint64_t seq;		/* arrival order: equal due times keep it */
	uint64_t delay_ns[2];	/* one per copy, drawn on arrival */
	int dir, copies, gap_left;
	size_t len;
	unsigned char data[];
};

struct way {			/* one direction's PRNG stream and held (reordered) packets */
	uint64_t rng;
	struct pkt *held[MAX_HELD_PKTS];
	int nheld;
};

struct stats { unsigned long long in, out, dropped, duplicated, reordered, delayed, overflow; };

struct impair {
	int mode_ip;
	double loss, dup, reorder;	/* percent */
	int gap;
	uint64_t delay_ns, jitter_ns, seed, end_ns;
	struct sockaddr_storage listen, target, client;
	socklen_t listen_len, target_len, client_len;
	const char *listen_arg, *target_arg, *in, *out;
	int proto;
	int fd_listen, fd_up, fd_cap, fd_raw4, fd_raw6;
	unsigned char local4[MAX_LOCAL_ADDRS][4], local6[MAX_LOCAL_ADDRS][16];
	int nlocal4, nlocal6;
	struct pkt *heap[MAX_QUEUED_PKTS];
	int nheap, nqueued;
	uint64_t seq;
	struct way way[NDIRS];
	struct stats st;
	int send_warned;
};

static volatile sig_atomic_t stop_signal;
static unsigned char rx_buf[MAX_PKT_BYTES];

static const char usage_text[] =
"usage: impair udp --listen HOST:PORT --target HOST:PORT [impairments]\n"
"       impair ip --in IFACE [--out IFACE] [--proto icmp|icmpv6|udp|tcp|any] [impairments]\n"
"\n"
"udp: relay datagrams from one client at --listen to --target and the replies back.\n"
"ip:  in a router namespace, capture IP packets arriving on --in (AF_PACKET), impair them and\n"
"     re-inject them unchanged with a raw socket to their destination (--out binds the raw\n"
"     sockets to that interface). One process per direction. The forwarded originals must be\n"
"     dropped in the router, e.g. nft ... forward ... meta l4proto icmp drop; for icmpv6 drop\n"
"     only echo-request/echo-reply: only those are taken, neighbour discovery passes.\n"
"     Default --proto any: all IPv4 and IPv6 except ICMPv6 other than echo. A sender's\n"
"     GSO/TSO super-packet is too big to re-send: ip link set dev VETH gso_max_segs 1 on\n"
"     the sending side. Packets to the router's own addresses are left alone.\n"
"\n"
"impairments (per direction, each packet in turn):\n"
"  --loss PCT         drop PCT%% of packets (fractional, e.g. 2.5)\n"
"  --dup PCT          send PCT%% of packets twice\n"
"  --reorder PCT      hold PCT%% of packets back until N more have passed or %d ms\n"
"  --reorder-gap N    that N (default 3)\n"
"  --delay MS         delay every packet by MS ms (fractional)\n"
"  --jitter MS        and by uniform [0, MS] ms more; at most %d packets wait (delayed\n"
"                     or held), more are lost as overflow\n"
"  --seed N           PRNG seed (default 1)\n"
"  --duration SECS    exit after SECS seconds (default: run until SIGTERM/SIGINT)\n"
"\n"
"prints \"impair: ready\" on stderr once set up, and at exit one line\n"
"impair: in=N out=N dropped=N duplicated=N reordered=N delayed=N overflow=N\n";

__attribute__((format(printf, 1, 2)))
_Noreturn static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("impair: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see impair --help)\n", stderr);
	exit(2);
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: tiny, fast, and every 64-bit seed gives a good stream */
static uint64_t rng_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return rng_mix(*s);
}

static double rng_pct(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1p-53 * 100.0;
}

/* ------------------------------------------------------------------ queue */

static int pkt_before(const struct pkt *a, const struct pkt *b)
{
	return a->due_ns != b->due_ns ? a->due_ns < b->due_ns : a->seq < b->seq;
}

static void heap_push(struct impair *im, struct pkt *p)
{
	int i = im->nheap++;

	while (i > 0 && pkt_before(p, im->heap[(i - 1) / 2])) {
		im->heap[i] = im->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	im->heap[i] = p;
}

static struct pkt *heap_pop(struct impair *im)
{
	struct pkt *top = im->heap[0], *last = im->heap[--im->nheap];
	int i = 0, c;

	while ((c = 2 * i + 1) < im->nheap) {
		if (c + 1 < im->nheap && pkt_before(im->heap[c + 1], im->heap[c]))
			c++;
		if (!pkt_before(im->heap[c], last))
			break;
		im->heap[i] = im->heap[c];
		i = c;
	}
	if (im->nheap)
		im->heap[i] = last;
	return top;
}

static struct pkt *pkt_new(struct impair *im, int dir, const unsigned char *data, size_t len)
{
	struct pkt *p;

	if (im->nqueued >= MAX_QUEUED_PKTS || !(p = malloc(sizeof(*p) + len))) {
		im->st.overflow++;
		return NULL;
	}
	memset(p, 0, sizeof(*p));
	p->dir = dir;
	p->seq = im->seq++;
	p->len = len;
	memcpy(p->data, data, len);
	im->nqueued++;
	return p;
}

static void pkt_free(struct impair *im, struct pkt *p)
{
	im->nqueued--;
	free(p);
}

/* ------------------------------------------------------------------ output */

static void impair_send(struct impair *im, int dir, const unsigned char *data, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	ssize_t n = -1;

	if (!im->mode_ip && dir == DIR_FWD) {
		n = send(im->fd_up, data, len, 0);
	} else if (!im->mode_ip) {
		if (!im->client_len)
			return;
		n = sendto(im->fd_listen, data, len, 0, (struct sockaddr *)&im->client,
			   im->client_len);
	} else if (data[0] >> 4 == 4) {
		memcpy(&sin.sin_addr, data + 16, 4);
		n = sendto(im->fd_raw4, data, len, 0, (struct sockaddr *)&sin, sizeof(sin));
	} else {
		memcpy(&sin6.sin6_addr, data + 24, 16);
		n = sendto(im->fd_raw6, data, len, 0, (struct sockaddr *)&sin6, sizeof(sin6));
	}
	if (n >= 0) {
		im->st.out++;
	} else if (!im->send_warned++) {
		fprintf(stderr, "impair: send %zu bytes: %s%s (warned once)\n", len, strerror(errno),
			errno == EMSGSIZE ? " (a GSO packet? see --help)" : "");
	}
}

/* send one copy now, or queue it when a delay is configured */
static void impair_emit(struct impair *im, int dir, const unsigned char *data, size_t len,
			uint64_t delay_ns)
{
	struct pkt *p;

	if (!im->delay_ns && !im->jitter_ns) {
		impair_send(im, dir, data, len);
		return;
	}
	p = pkt_new(im, dir, data, len);
	if (!p)
		return;
	p->due_ns = now_ns() + delay_ns;
	heap_push(im, p);
	im->st.delayed++;
}

static void impair_release(struct impair *im, struct pkt *p)
{
	for (int c = 0; c < p->copies; c++)
		impair_emit(im, p->dir, p->data, p->len, p->delay_ns[c]);
	pkt_free(im, p);
}

static void way_unhold(struct impair *im, struct way *w, int i)
{
	struct pkt *p = w->held[i];

	memmove(&w->held[i], &w->held[i + 1], (size_t)(w->nheld - i - 1) * sizeof(w->held[0]));
	w->nheld--;
	impair_release(im, p);
}

/* one more packet passed: the first n held packets move one step closer to release */
static void way_count(struct impair *im, struct way *w, int n)
{
	for (int i = 0; i < n;) {
		if (--w->held[i]->gap_left <= 0) {
			way_unhold(im, w, i);
			n--;
		} else {
			i++;
		}
	}
}

/* the fate of one arriving packet: the draws come first so the stream never depends on it */
static void impair_input(struct impair *im, int dir, const unsigned char *data, size_t len)
{
	struct way *w = &im->way[dir];
	double u_loss = rng_pct(&w->rng), u_dup = rng_pct(&w->rng), u_reorder = rng_pct(&w->rng);
	uint64_t delay[2];
	int copies = 1, nheld = w->nheld;
	struct pkt *p;

	for (int c = 0; c < 2; c++) {
		uint64_t r = rng_next(&w->rng);

		delay[c] = im->delay_ns + (im->jitter_ns ? r % (im->jitter_ns + 1) : 0);
	}
	im->st.in++;
	if (u_loss < im->loss) {
		im->st.dropped++;
		return;
	}
	if (u_dup < im->dup) {
		copies = 2;
		im->st.duplicated++;
	}
	if (u_reorder < im->reorder && w->nheld < MAX_HELD_PKTS) {
		p = pkt_new(im, dir, data, len);	/* NULL: lost as overflow */
		if (p) {
			p->copies = copies;
			p->gap_left = im->gap;
			p->due_ns = now_ns() + REORDER_HOLD_MS * 1000000ull;
			memcpy(p->delay_ns, delay, sizeof(delay));
			w->held[w->nheld++] = p;
			im->st.reordered++;
		}
	} else {
		for (int c = 0; c < copies; c++)
			impair_emit(im, dir, data, len, delay[c]);
	}
	way_count(im, w, nheld);
}

static void impair_run_timers(struct impair *im, uint64_t now)
{
	for (int d = 0; d < NDIRS; d++) {
		struct way *w = &im->way[d];

		for (int i = 0; i < w->nheld;) {
			if (w->held[i]->due_ns <= now)
				way_unhold(im, w, i);
			else
				i++;
		}
	}
	while (im->nheap && im->heap[0]->due_ns <= now) {
		struct pkt *p = heap_pop(im);

		impair_send(im, p->dir, p->data, p->len);
		pkt_free(im, p);
	}
}

static uint64_t impair_next_due(const struct impair *im)
{
	uint64_t due = im->end_ns ? im->end_ns : UINT64_MAX;

	if (im->nheap && im->heap[0]->due_ns < due)
		due = im->heap[0]->due_ns;
	for (int d = 0; d < NDIRS; d++)
		for (int i = 0; i < im->way[d].nheld; i++)
			if (im->way[d].held[i]->due_ns < due)
				due = im->way[d].held[i]->due_ns;
	return due;
}

/* ------------------------------------------------------------------ udp mode */

static int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 2], *end;
	const char *colon = strrchr(s, ':');
	size_t hlen = colon ? (size_t)(colon - s) : 0;
	unsigned long port;

	if (!colon || hlen + 1 > sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*sin6);
			return 0;
		}
	}
	return -EINVAL;
}

/* log a failed set-up step as "impair: WHAT ARG: error"; returns -errno */
static int setup_fail(const char *what, const char *arg)
{
	int err = errno;

	fprintf(stderr, "impair: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(err));
	return -err;
}

static void sock_bufs(int fd)
{
	int size = SOCK_BUF_BYTES;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int udp_open(struct impair *im)
{
	im->fd_listen = socket(im->listen.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (im->fd_listen < 0 || bind(im->fd_listen, (struct sockaddr *)&im->listen, im->listen_len))
		return setup_fail("listen", im->listen_arg);
	im->fd_up = socket(im->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (im->fd_up < 0 || connect(im->fd_up, (struct sockaddr *)&im->target, im->target_len))
		return setup_fail("target", im->target_arg);
	sock_bufs(im->fd_listen);
	sock_bufs(im->fd_up);
	return 0;
}

static void udp_read(struct impair *im, int dir)
{
	for (int i = 0; i < READ_BATCH_PKTS; i++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t n;

		if (dir == DIR_FWD)
			n = recvfrom(im->fd_listen, rx_buf, sizeof(rx_buf), 0,
				     (struct sockaddr *)&from, &from_len);
		else
			n = recv(im->fd_up, rx_buf, sizeof(rx_buf), 0);
		if (n < 0)
			return;	/* EAGAIN, or ECONNREFUSED from a closed target */
		if (dir == DIR_FWD) {
			im->client = from;
			im->client_len = from_len;
		}
		impair_input(im, dir, rx_buf, (size_t)n);
	}
}

/* ------------------------------------------------------------------ ip mode */

/* the router's own addresses: packets to them are its own business, not to be re-sent */
static int ip_load_local(struct impair *im)
{
	struct ifaddrs *ifa, *a;

	if (getifaddrs(&ifa))
		return setup_fail("getifaddrs", NULL);
	for (a = ifa; a; a = a->ifa_next) {
		const struct sockaddr *sa = a->ifa_addr;

		if (sa && sa->sa_family == AF_INET && im->nlocal4 < MAX_LOCAL_ADDRS)
			memcpy(im->local4[im->nlocal4++], &((const struct sockaddr_in *)sa)->sin_addr, 4);
		if (sa && sa->sa_family == AF_INET6 && im->nlocal6 < MAX_LOCAL_ADDRS)
			memcpy(im->local6[im->nlocal6++], &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
	freeifaddrs(ifa);
	return 0;
}

static int ip_open(struct impair *im)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	socklen_t outlen = im->out ? (socklen_t)strlen(im->out) : 0;
	int one = 1;

	sll.sll_ifindex = (int)if_nametoindex(im->in);
	if (!sll.sll_ifindex)
		return setup_fail("interface", im->in);
	/* protocol 0 until bound: nothing from other interfaces is queued meanwhile */
	im->fd_cap = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (im->fd_cap < 0 || bind(im->fd_cap, (struct sockaddr *)&sll, sizeof(sll)))
		return setup_fail("capture on", im->in);
	setsockopt(im->fd_cap, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	setsockopt(im->fd_cap, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one));
	sock_bufs(im->fd_cap);
	im->fd_raw4 = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	im->fd_raw6 = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW);
	if (im->fd_raw4 < 0 || im->fd_raw6 < 0 ||
	    setsockopt(im->fd_raw6, IPPROTO_IPV6, IPV6_HDRINCL, &one, sizeof(one)))
		return setup_fail("raw socket", NULL);
	if (im->out && (setsockopt(im->fd_raw4, SOL_SOCKET, SO_BINDTODEVICE, im->out, outlen) ||
			setsockopt(im->fd_raw6, SOL_SOCKET, SO_BINDTODEVICE, im->out, outlen)))
		return setup_fail("interface", im->out);
	return ip_load_local(im);
}

static int ip_is_local(const struct impair *im, const unsigned char *dst, int v6)
{
	for (int i = 0; i < (v6 ? im->nlocal6 : im->nlocal4); i++)
		if (!memcmp(dst, v6 ? im->local6[i] : im->local4[i], v6 ? 16 : 4))
			return 1;
	return 0;
}

/*
 * Whether IP packet p is one to impair. Trims *len to the IP length (a link may pad) and
 * gives the transport header's offset and protocol.
 */
static int ip_wanted(const struct impair *im, const unsigned char *p, size_t *len,
		     size_t *l4off, int *proto)
{
	size_t tot, off;
	int nxt;

	if (*len >= 20 && p[0] >> 4 == 4) {
		off = (size_t)(p[0] & 15) * 4;
		tot = (size_t)p[2] << 8 | p[3];
		if (off < 20 || tot < off || tot > *len || ip_is_local(im, p + 16, 0))
			return 0;
		*len = tot;
		*l4off = off;
		*proto = p[9];
		return im->proto == PROTO_ANY || *proto == im->proto;
	}
	if (*len < 40 || p[0] >> 4 != 6)
		return 0;
	tot = 40 + ((size_t)p[4] << 8 | p[5]);
	if (tot > *len || (p[24] == 0xfe && (p[25] & 0xc0) == 0x80) || ip_is_local(im, p + 24, 1))
		return 0;
	/* skip hop-by-hop, routing and destination options headers */
	for (nxt = p[6], off = 40; (nxt == 0 || nxt == 43 || nxt == 60) && off + 8 <= tot;) {
		nxt = p[off];
		off += ((size_t)p[off + 1] + 1) * 8;
	}
	if (nxt == IPPROTO_ICMPV6 && (off >= tot || (p[off] != 128 && p[off] != 129)))
		return 0;
	*len = tot;
	*l4off = off;
	*proto = nxt;
	return im->proto == PROTO_ANY || nxt == im->proto;
}

static uint64_t csum_add(uint64_t sum, const unsigned char *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += (uint64_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint64_t)p[0] << 8;
	return sum;
}

/*
 * A veth sender leaves the transport checksum to the "hardware" (TP_STATUS_CSUMNOTREADY):
 * the packet on the wire would be correct, the captured bytes are not. Fill it in.
 */
static void ip_fill_csum(unsigned char *p, size_t len, size_t l4off, int proto)
{
	int v6 = p[0] >> 4 == 6;
	size_t at = l4off + (proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2);
	uint64_t sum;

	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6) ||
	    at + 2 > len)
		return;
	p[at] = p[at + 1] = 0;
	sum = csum_add((uint64_t)proto + (len - l4off), v6 ? p + 8 : p + 12, v6 ? 32 : 8);
	sum = csum_add(sum, p + l4off, len - l4off);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	if (!sum && proto == IPPROTO_UDP)
		sum = 0xffff;
	p[at] = (unsigned char)(sum >> 8);
	p[at + 1] = (unsigned char)sum;
}

static void ip_read(struct impair *im)
{
	for (int i = 0; i < READ_BATCH_PKTS; i++) {
		struct sockaddr_ll sll;
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		} ctl;
		struct iovec iov = { .iov_base = rx_buf, .iov_len = sizeof(rx_buf) };
		struct msghdr mh = {
			.msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = &iov,
			.msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl),
		};
		struct cmsghdr *c;
		unsigned status = 0;
		size_t len, l4off;
		int proto;
		ssize_t n = recvmsg(im->fd_cap, &mh, 0);

		if (n < 0)
			return;
		len = (size_t)n;
		if (sll.sll_pkttype != PACKET_HOST || (mh.msg_flags & MSG_TRUNC) ||
		    (sll.sll_protocol != htons(ETH_P_IP) && sll.sll_protocol != htons(ETH_P_IPV6)) ||
		    !ip_wanted(im, rx_buf, &len, &l4off, &proto))
			continue;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
				status = ((struct tpacket_auxdata *)CMSG_DATA(c))->tp_status;
		if (status & TP_STATUS_CSUMNOTREADY)
			ip_fill_csum(rx_buf, len, l4off, proto);
		impair_input(im, DIR_FWD, rx_buf, len);
	}
}

/* ------------------------------------------------------------------ main */

static double arg_num(const char *opt, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= max))
		usage_error("bad --%s \"%s\": expected a number from 0 to %g", opt, s, max);
	return v;
}

static void impair_parse(struct impair *im, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, 0, 'l' }, { "target", required_argument, 0, 't' },
		{ "in", required_argument, 0, 'i' }, { "out", required_argument, 0, 'o' },
		{ "proto", required_argument, 0, 'p' }, { "loss", required_argument, 0, 'L' },
		{ "dup", required_argument, 0, 'D' }, { "reorder", required_argument, 0, 'R' },
		{ "reorder-gap", required_argument, 0, 'G' }, { "delay", required_argument, 0, 'd' },
		{ "jitter", required_argument, 0, 'j' }, { "seed", required_argument, 0, 's' },
		{ "duration", required_argument, 0, 'T' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	static const struct { const char *name; int proto; } protos[] = {
		{ "icmp", IPPROTO_ICMP }, { "icmpv6", IPPROTO_ICMPV6 }, { "udp", IPPROTO_UDP },
		{ "tcp", IPPROTO_TCP }, { "any", PROTO_ANY },
	};
	const char *listen = NULL, *target = NULL, *proto = NULL;
	char **av = argv + 1, *end;
	int ac = argc - 1, c, i;

	if (argc < 2)
		usage_error("missing mode: expected udp or ip");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		printf(usage_text, REORDER_HOLD_MS, MAX_QUEUED_PKTS);
		exit(0);
	}
	if (strcmp(argv[1], "udp") && strcmp(argv[1], "ip"))
		usage_error("bad mode \"%s\": expected udp or ip", argv[1]);
	im->mode_ip = !strcmp(argv[1], "ip");
	opterr = 0;
	while ((c = getopt_long(ac, av, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 't': target = optarg; break;
		case 'i': im->in = optarg; break;
		case 'o': im->out = optarg; break;
		case 'p': proto = optarg; break;
		case 'L': im->loss = arg_num("loss", optarg, 100); break;
		case 'D': im->dup = arg_num("dup", optarg, 100); break;
		case 'R': im->reorder = arg_num("reorder", optarg, 100); break;
		case 'G': im->gap = (int)arg_num("reorder-gap", optarg, MAX_QUEUED_PKTS); break;
		case 'd': im->delay_ns = (uint64_t)(arg_num("delay", optarg, 3600e3) * 1e6); break;
		case 'j': im->jitter_ns = (uint64_t)(arg_num("jitter", optarg, 3600e3) * 1e6); break;
		case 'T': im->end_ns = (uint64_t)(arg_num("duration", optarg, 1e6) * 1e9); break;
		case 's':
			errno = 0;
			im->seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end)
				usage_error("bad --seed \"%s\": expected an unsigned integer", optarg);
			break;
		case 'h':
			printf(usage_text, REORDER_HOLD_MS, MAX_QUEUED_PKTS);
			exit(0);
		case ':':
			usage_error("%s needs a value", av[optind - 1]);
		default:
			usage_error("bad option \"%s\"", av[optind - 1]);
		}
	}
	if (optind < ac)
		usage_error("unexpected argument \"%s\"", av[optind]);
	if (im->mode_ip) {
		if (!im->in || listen || target)
			usage_error("ip mode takes --in IFACE [--out IFACE] [--proto P], not --listen/--target");
		for (i = 0; proto && i < (int)(sizeof(protos) / sizeof(protos[0])); i++)
			if (!strcmp(proto, protos[i].name))
				break;
		if (proto && i == (int)(sizeof(protos) / sizeof(protos[0])))
			usage_error("bad --proto \"%s\": expected icmp, icmpv6, udp, tcp or any", proto);
		im->proto = proto ? protos[i].proto : PROTO_ANY;
		return;
	}
	if (!listen || !target || im->in || im->out || proto)
		usage_error("udp mode takes --listen HOST:PORT --target HOST:PORT, not --in/--out/--proto");
	im->listen_arg = listen;
	im->target_arg = target;
	if (addr_parse(listen, &im->listen, &im->listen_len))
		usage_error("bad --listen \"%s\": expected IPv4:PORT or [IPv6]:PORT", listen);
	if (addr_parse(target, &im->target, &im->target_len))
		usage_error("bad --target \"%s\": expected IPv4:PORT or [IPv6]:PORT", target);
}

int main(int argc, char **argv)
{
	static struct impair im = { .gap = 3, .seed = 1, .fd_listen = -1, .fd_up = -1,
				    .fd_cap = -1, .fd_raw4 = -1, .fd_raw6 = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, unblocked;
	struct pollfd pfd[2];
	int nfd = 0;

	impair_parse(&im, argc, argv);
	for (int d = 0; d < NDIRS; d++)
		im.way[d].rng = rng_mix(im.seed * 2 + (uint64_t)d);	/* independent streams */
	if (im.mode_ip ? ip_open(&im) : udp_open(&im))
		return 1;
	pfd[nfd++] = (struct pollfd){ .fd = im.mode_ip ? im.fd_cap : im.fd_listen, .events = POLLIN };
	if (!im.mode_ip)
		pfd[nfd++] = (struct pollfd){ .fd = im.fd_up, .events = POLLIN };

	/* signals are only taken inside ppoll, so none is lost between checks */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (im.end_ns)
		im.end_ns += now_ns();
	fprintf(stderr, "impair: ready\n");

	while (!stop_signal) {
		uint64_t now = now_ns(), due;
		struct timespec ts;

		impair_run_timers(&im, now);
		if (im.end_ns && now >= im.end_ns)
			break;
		due = impair_next_due(&im);
		if (due != UINT64_MAX) {
			due = due > now ? due - now : 0;
			ts.tv_sec = (time_t)(due / 1000000000u);
			ts.tv_nsec = (long)(due % 1000000000u);
		}
		if (ppoll(pfd, (nfds_t)nfd, due == UINT64_MAX ? NULL : &ts, &unblocked) <= 0)
			continue;
		if (pfd[0].revents && im.mode_ip)
			ip_read(&im);
		else if (pfd[0].revents)
			udp_read(&im, DIR_FWD);
		if (nfd > 1 && pfd[1].revents)
			udp_read(&im, DIR_REV);
	}
	fprintf(stderr, "impair: in=%llu out=%llu dropped=%llu duplicated=%llu reordered=%llu "
		"delayed=%llu overflow=%llu\n", im.st.in, im.st.out, im.st.dropped,
		im.st.duplicated, im.st.reordered, im.st.delayed, im.st.overflow);
	return 0;
}
