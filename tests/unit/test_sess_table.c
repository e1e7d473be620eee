/*
 * The datagram relay's session table (relay/sess_table.c) against a plain model: an array
 * of client addresses with their last-active time and LRU rank, searched linearly. Random
 * operations with a fixed seed, v4 and v6 keys that differ only in port, family or scope,
 * growth from 16 buckets, LRU order through removals at the head, middle and tail, and the
 * eviction policy udp.c applies at --max-sessions.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/util.h"
#include "relay/sess_table.h"
#include "test.h"

/* A session as udp.c embeds the node. */
struct tsess {
	struct sess_node node;
	int id;
};

static union sess_addr v4(const char *ip, uint16_t port)
{
	union sess_addr a;

	memset(&a, 0, sizeof(a));
	a.in.sin_family = AF_INET;
	a.in.sin_port = htons(port);
	inet_pton(AF_INET, ip, &a.in.sin_addr);
	return a;
}

static union sess_addr v6(const char *ip, uint16_t port, uint32_t scope)
{
	union sess_addr a;

	memset(&a, 0, sizeof(a));
	a.in6.sin6_family = AF_INET6;
	a.in6.sin6_port = htons(port);
	a.in6.sin6_scope_id = scope;
	inet_pton(AF_INET6, ip, &a.in6.sin6_addr);
	return a;
}

static struct tsess *find(const struct sess_table *t, const union sess_addr *a)
{
	struct sess_node *n = sess_table_find(t, &a->sa);

	return n ? container_of(n, struct tsess, node) : NULL;
}

static int oldest_id(const struct sess_table *t)
{
	struct sess_node *n = sess_table_oldest(t);

	return n ? container_of(n, struct tsess, node)->id : -1;
}

/* Ids along the LRU list, most recently active first; returns how many. */
static int lru_ids(const struct sess_table *t, int *ids, int max)
{
	int n = 0;

	for (const struct list *p = t->lru.next; p != &t->lru && n < max; p = p->next)
		ids[n++] = container_of(p, struct tsess, node.lru)->id;
	return n;
}

static uint32_t longest_chain(const struct sess_table *t)
{
	uint32_t best = 0;

	for (uint32_t i = 0; i < t->nbuckets; i++) {
		uint32_t len = 0;

		for (const struct sess_node *n = t->buckets[i]; n; n = n->hnext)
			len++;
		best = MAX(best, len);
	}
	return best;
}

static uint32_t chained_nodes(const struct sess_table *t)
{
	uint32_t total = 0;

	for (uint32_t i = 0; i < t->nbuckets; i++)
		for (const struct sess_node *n = t->buckets[i]; n; n = n->hnext)
			total++;
	return total;
}

/* ---- keys ---- */

static void test_sess_table_same_address_other_port_family_or_scope_is_another_key(void)
{
	struct sess_table t;
	union sess_addr k[] = {
		v4("10.0.0.1", 5000),
		v4("10.0.0.1", 5001),			/* other port */
		v4("10.0.0.2", 5000),			/* other address */
		v6("::ffff:10.0.0.1", 5000, 0),		/* same IPv4 address, v4-mapped: other family */
		v6("fd00::1", 5000, 0),
		v6("fd00::1", 5001, 0),
		v6("fe80::1", 5000, 2),
		v6("fe80::1", 5000, 3),			/* other scope (interface) */
		v4("0.0.0.0", 7),			/* all-zero addresses: only the family */
		v6("::", 7, 0),				/* tells these two apart */
	};
	struct tsess s[ARRAY_SIZE(k)];

	CHECK_EQ(sess_table_init(&t, 16, 1024, 42), 0);
	for (size_t i = 0; i < ARRAY_SIZE(k); i++) {
		CHECK(find(&t, &k[i]) == NULL);
		s[i].id = (int)i;
		CHECK_EQ(sess_table_insert(&t, &s[i].node, &k[i].sa, 100 + i), 0);
	}
	CHECK_EQ(t.count, ARRAY_SIZE(k));
	for (size_t i = 0; i < ARRAY_SIZE(k); i++) {
		CHECK(find(&t, &k[i]) == &s[i]);
		for (size_t j = 0; j < ARRAY_SIZE(k); j++)
			CHECK_EQ(sess_addr_equal(&s[i].node.key, &k[j].sa), i == j);
	}
	sess_table_destroy(&t);
}

static void test_sess_table_key_ignores_padding_and_flow_label(void)
{
	struct sess_table t;
	union sess_addr a = v4("192.0.2.7", 53), b = v6("2001:db8::7", 53, 0), q;
	struct tsess sa = { .id = 1 }, sb = { .id = 2 };

	CHECK_EQ(sess_table_init(&t, 16, 16, 7), 0);
	CHECK_EQ(sess_table_insert(&t, &sa.node, &a.sa, 1), 0);
	CHECK_EQ(sess_table_insert(&t, &sb.node, &b.sa, 1), 0);
	/* the kernel's recvfrom() fills sockaddrs; bytes outside the key must not matter */
	q = a;
	memset(q.in.sin_zero, 0xa5, sizeof(q.in.sin_zero));
	CHECK(find(&t, &q) == &sa);
	q = b;
	q.in6.sin6_flowinfo = htonl(0x12345);
	CHECK(find(&t, &q) == &sb);
	sess_table_destroy(&t);
}

static void test_sess_table_insert_rejects_other_families(void)
{
	struct sess_table t;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct tsess s = { .id = 1 };

	CHECK_EQ(sess_table_init(&t, 16, 16, 1), 0);
	CHECK_EQ(sess_table_insert(&t, &s.node, (struct sockaddr *)&un, 1), -EAFNOSUPPORT);
	CHECK_EQ(t.count, 0);
	CHECK(sess_table_oldest(&t) == NULL);
	sess_table_destroy(&t);
}

/* ---- growth ---- */

static void test_sess_table_grows_from_16_buckets_by_doubling_up_to_the_cap(void)
{
	enum { N = 600 };
	struct sess_table t;
	struct tsess *s = calloc(N, sizeof(*s));
	union sess_addr *k = calloc(N, sizeof(*k));
	char ip[32];

	/* any start below 16 is 16; the start is capped by the maximum */
	CHECK_EQ(sess_table_init(&t, 1, 1 << 20, 3), 0);
	CHECK_EQ(t.nbuckets, 16);
	sess_table_destroy(&t);
	CHECK_EQ(sess_table_init(&t, 0, 0, 3), 0);
	CHECK_EQ(t.nbuckets, 16);
	CHECK_EQ(t.max_buckets, 16);
	sess_table_destroy(&t);
	CHECK_EQ(sess_table_init(&t, 100, 1 << 20, 3), 0);
	CHECK_EQ(t.nbuckets, 128);
	sess_table_destroy(&t);
	CHECK_EQ(sess_table_init(&t, 4096, 1000, 3), 0);
	CHECK_EQ(t.max_buckets, 1024);
	CHECK_EQ(t.nbuckets, 1024);
	sess_table_destroy(&t);

	CHECK_EQ(sess_table_init(&t, 16, 256, 3), 0);
	for (int i = 0; i < N; i++) {
		uint32_t before = t.nbuckets;

		if (i % 2)
			snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
		else
			snprintf(ip, sizeof(ip), "fd00::%x", i);
		k[i] = i % 2 ? v4(ip, (uint16_t)(1000 + i)) : v6(ip, (uint16_t)(1000 + i), 0);
		s[i].id = i;
		CHECK_EQ(sess_table_insert(&t, &s[i].node, &k[i].sa, (uint64_t)i), 0);
		/* the table doubles when it holds as many sessions as buckets, until the cap */
		if (i == 16 || i == 32 || i == 64 || i == 128)
			CHECK_EQ(t.nbuckets, before * 2);
		else
			CHECK_EQ(t.nbuckets, before);
		if (i == 16 || i == 32 || i == 64 || i == 128 || i == N - 1) {
			/* every session is still found after a rehash */
			for (int j = 0; j <= i; j++)
				CHECK(find(&t, &k[j]) == &s[j]);
			CHECK_EQ(chained_nodes(&t), i + 1);
		}
	}
	CHECK_EQ(t.nbuckets, 256);
	CHECK_EQ(t.count, N);
	CHECK_EQ(oldest_id(&t), 0);
	sess_table_destroy(&t);
	free(s);
	free(k);
}

static void test_sess_table_spreads_one_host_many_ports(void)
{
	enum { N = 1024 };
	struct sess_table t;
	struct tsess *s = calloc(N, sizeof(*s));
	union sess_addr k;

	/* one NATed host with consecutive source ports: the keyed hash must still spread them */
	CHECK_EQ(sess_table_init(&t, N, N, 0x5eed), 0);
	for (int i = 0; i < N; i++) {
		k = v4("198.51.100.1", (uint16_t)(40000 + i));
		CHECK_EQ(sess_table_insert(&t, &s[i].node, &k.sa, 0), 0);
	}
	CHECK(longest_chain(&t) <= 10);
	sess_table_destroy(&t);
	free(s);
}

/* ---- LRU ---- */

static void test_sess_table_oldest_is_the_least_recently_touched(void)
{
	struct sess_table t;
	union sess_addr k[3] = { v4("10.0.0.1", 1), v4("10.0.0.2", 1), v6("fd00::3", 1, 0) };
	struct tsess s[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };

	CHECK_EQ(sess_table_init(&t, 16, 16, 9), 0);
	CHECK(sess_table_oldest(&t) == NULL);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(sess_table_insert(&t, &s[i].node, &k[i].sa, 10 + (uint64_t)i), 0);
	CHECK_EQ(oldest_id(&t), 0);
	sess_table_touch(&t, &s[0].node, 20);
	CHECK_EQ(s[0].node.last_ms, 20);
	CHECK_EQ(oldest_id(&t), 1);
	/* touching the most recent one changes nothing but its time */
	sess_table_touch(&t, &s[0].node, 21);
	CHECK_EQ(s[0].node.last_ms, 21);
	CHECK_EQ(oldest_id(&t), 1);
	sess_table_touch(&t, &s[2].node, 22);
	CHECK_EQ(oldest_id(&t), 1);
	sess_table_touch(&t, &s[1].node, 23);
	CHECK_EQ(oldest_id(&t), 0);
	/* LRU order is touch order even when the clock did not move */
	sess_table_touch(&t, &s[0].node, 23);
	CHECK_EQ(oldest_id(&t), 2);
	sess_table_destroy(&t);
}

static void test_sess_table_remove_head_middle_and_tail_of_lru(void)
{
	struct sess_table t;
	struct tsess s[6];
	union sess_addr k[6];
	int ids[8], n;

	/* one host, six ports, inserted 0..5: the LRU is 5 4 3 2 1 0 */
	CHECK_EQ(sess_table_init(&t, 16, 16, 11), 0);
	for (int i = 0; i < 6; i++) {
		k[i] = v4("10.9.9.9", (uint16_t)(7000 + i));
		s[i].id = i;
		CHECK_EQ(sess_table_insert(&t, &s[i].node, &k[i].sa, (uint64_t)i), 0);
	}
	/* LRU, most recent first: 5 4 3 2 1 0 */
	n = lru_ids(&t, ids, 8);
	CHECK_EQ(n, 6);
	CHECK(n == 6 && ids[0] == 5 && ids[1] == 4 && ids[2] == 3 && ids[3] == 2 && ids[4] == 1 && ids[5] == 0);

	sess_table_remove(&t, &s[3].node);	/* middle */
	sess_table_remove(&t, &s[5].node);	/* head: most recent */
	sess_table_remove(&t, &s[0].node);	/* tail: the oldest */
	CHECK_EQ(t.count, 3);
	n = lru_ids(&t, ids, 8);
	CHECK(n == 3 && ids[0] == 4 && ids[1] == 2 && ids[2] == 1);
	CHECK_EQ(oldest_id(&t), 1);
	CHECK(find(&t, &k[0]) == NULL && find(&t, &k[3]) == NULL && find(&t, &k[5]) == NULL);
	CHECK(find(&t, &k[1]) == &s[1] && find(&t, &k[2]) == &s[2] && find(&t, &k[4]) == &s[4]);
	CHECK_EQ(chained_nodes(&t), 3);

	/* a removed session can come back (same key, new node) as the most recent */
	CHECK_EQ(sess_table_insert(&t, &s[0].node, &k[0].sa, 50), 0);
	n = lru_ids(&t, ids, 8);
	CHECK(n == 4 && ids[0] == 0 && ids[3] == 1);
	/* remove everything, oldest first, as listener_stop does */
	for (int left = 4; left; left--)
		sess_table_remove(&t, sess_table_oldest(&t));
	CHECK_EQ(t.count, 0);
	CHECK(sess_table_oldest(&t) == NULL);
	CHECK_EQ(chained_nodes(&t), 0);
	sess_table_destroy(&t);
}

static void test_sess_table_remove_from_long_bucket_chains(void)
{
	enum { N = 200 };
	struct sess_table t;
	struct tsess *s = calloc(N, sizeof(*s));
	union sess_addr *k = calloc(N, sizeof(*k));
	bool *in = calloc(N, sizeof(*in));
	int order[N];

	/* 200 sessions in 16 buckets: chains of ~12, removals hit their heads, middles, tails */
	CHECK_EQ(sess_table_init(&t, 16, 16, 99), 0);
	test_rng_seed(77);
	for (int i = 0; i < N; i++) {
		k[i] = i % 3 ? v4("172.16.0.1", (uint16_t)(2000 + i)) : v6("fd00:aa::1", (uint16_t)(2000 + i), 0);
		s[i].id = i;
		in[i] = true;
		order[i] = i;
		CHECK_EQ(sess_table_insert(&t, &s[i].node, &k[i].sa, (uint64_t)i), 0);
	}
	CHECK_EQ(t.nbuckets, 16);
	for (int i = N - 1; i > 0; i--) {
		int j = (int)test_rng_below((uint32_t)i + 1), tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (int r = 0; r < N; r++) {
		int victim = order[r];

		sess_table_remove(&t, &s[victim].node);
		in[victim] = false;
		if (r % 20 == 0 || r == N - 1) {
			for (int i = 0; i < N; i++)
				CHECK(find(&t, &k[i]) == (in[i] ? &s[i] : NULL));
			CHECK_EQ(chained_nodes(&t), t.count);
		}
	}
	CHECK_EQ(t.count, 0);
	sess_table_destroy(&t);
	free(s);
	free(k);
	free(in);
}

/* ---- random operations against the model ---- */

struct model_entry {
	bool present;
	uint64_t last_ms;
	uint64_t rank;		/* higher = more recently active */
};

/* The model's least recently active present entry, or -1. */
static int model_oldest(const struct model_entry *m, int n)
{
	int best = -1;

	for (int i = 0; i < n; i++)
		if (m[i].present && (best < 0 || m[i].rank < m[best].rank))
			best = i;
	return best;
}

static int model_count(const struct model_entry *m, int n)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += m[i].present;
	return c;
}

/*
 * Candidate keys: 64 addresses x 4 ports, half IPv4 and half IPv6, and for every IPv4 key
 * its v4-mapped IPv6 twin among them, so near-identical keys are always in play.
 */
static int make_keys(union sess_addr *k, int max)
{
	char ip[64];
	int n = 0;

	for (int a = 0; a < 32 && n + 12 <= max; a++) {
		for (int p = 0; p < 4; p++) {
			uint16_t port = (uint16_t)(9000 + p);

			snprintf(ip, sizeof(ip), "10.20.%d.%d", a, a * 7 % 256);
			k[n++] = v4(ip, port);
			snprintf(ip, sizeof(ip), "::ffff:10.20.%d.%d", a, a * 7 % 256);
			k[n++] = v6(ip, port, 0);
			snprintf(ip, sizeof(ip), "2001:db8:%x::%x", a, a * 13);
			k[n++] = v6(ip, port, 0);
		}
	}
	return n;
}

static void test_sess_table_random_ops_match_model(void)
{
	enum { KEYS = 384, OPS = 50000 };
	static union sess_addr k[KEYS];
	static struct tsess s[KEYS];
	static struct model_entry m[KEYS];
	struct sess_table t;
	uint64_t now = 1000, rank = 0;
	int nkeys = make_keys(k, KEYS), bad = 0, max_count = 0;

	CHECK_EQ(nkeys, KEYS);
	memset(m, 0, sizeof(m));
	CHECK_EQ(sess_table_init(&t, 16, 4096, 0xfe77), 0);
	test_rng_seed(20240607);
	for (int op = 0; op < OPS && bad < 5; op++) {
		int i = (int)test_rng_below((uint32_t)nkeys), o;
		uint32_t what = test_rng_below(100);
		struct tsess *got = find(&t, &k[i]);

		now += test_rng_below(3);	/* often the same millisecond: order must come from touches */
		if (got != (m[i].present ? &s[i] : NULL)) {
			fprintf(stderr, "  op %d: find(key %d) = %p, model says %s\n", op, i, (void *)got,
				m[i].present ? "present" : "absent");
			bad++;
		}
		/* inserts outnumber removals for a while, then the reverse: the table fills and drains */
		bool filling = (op / 10000) % 2 == 0;

		if (what < (filling ? 45u : 20u)) {
			if (!m[i].present) {
				s[i].id = i;
				CHECK_EQ(sess_table_insert(&t, &s[i].node, &k[i].sa, now), 0);
				m[i] = (struct model_entry){ true, now, ++rank };
			}
		} else if (what < 70) {
			if (m[i].present) {
				sess_table_touch(&t, &s[i].node, now);
				m[i].last_ms = now;
				m[i].rank = ++rank;
			}
		} else if (what < (filling ? 85u : 98u)) {
			if (m[i].present) {
				sess_table_remove(&t, &s[i].node);
				m[i].present = false;
			}
		} else {
			/* remove the oldest, as eviction does */
			struct sess_node *n = sess_table_oldest(&t);

			o = model_oldest(m, nkeys);
			CHECK((n == NULL) == (o < 0));
			if (n && o >= 0) {
				int id = container_of(n, struct tsess, node)->id;

				CHECK_EQ(id, o);
				sess_table_remove(&t, n);
				m[id].present = false;
			}
		}
		o = model_oldest(m, nkeys);
		if (oldest_id(&t) != o || (int)t.count != model_count(m, nkeys) ||
		    (o >= 0 && s[o].node.last_ms != m[o].last_ms)) {
			fprintf(stderr, "  op %d: oldest %d count %u, model oldest %d count %d\n", op, oldest_id(&t),
				t.count, o, model_count(m, nkeys));
			bad++;
		}
		max_count = MAX(max_count, (int)t.count);
	}
	CHECK_EQ(bad, 0);
	/* the run really filled the table past several doublings and drained it again */
	CHECK(max_count > 200);
	CHECK(t.nbuckets >= 256);
	for (int i = 0; i < nkeys; i++) {
		CHECK(find(&t, &k[i]) == (m[i].present ? &s[i] : NULL));
		if (m[i].present)
			CHECK_EQ(s[i].node.last_ms, m[i].last_ms);
	}
	CHECK_EQ(chained_nodes(&t), t.count);
	sess_table_destroy(&t);
}

/* ---- the eviction policy of udp.c (sess_make_room) ---- */

struct relay_sim {
	struct sess_table t;
	struct tsess s[64];
	uint32_t max_sessions;
	uint64_t timeout_ms;
	uint64_t expired, evicted, opened;
	int last_closed;	/* id of the session the last datagram closed, or -1 */
};

/*
 * One client datagram as udp.c handles it: an existing session is touched; a new client at
 * --max-sessions first closes the least recently active session, counted as expired when
 * its idle time was up anyway, else as evicted.
 */
static void sim_datagram(struct relay_sim *r, const union sess_addr *k, int id, uint64_t now)
{
	struct sess_node *n = sess_table_find(&r->t, &k->sa);

	r->last_closed = -1;
	if (!n) {
		if (r->t.count >= r->max_sessions) {
			struct sess_node *old = sess_table_oldest(&r->t);

			if (now - old->last_ms >= r->timeout_ms)
				r->expired++;
			else
				r->evicted++;
			r->last_closed = container_of(old, struct tsess, node)->id;
			sess_table_remove(&r->t, old);
		}
		r->s[id].id = id;
		sess_table_insert(&r->t, &r->s[id].node, &k->sa, now);
		r->opened++;
		n = &r->s[id].node;
	}
	sess_table_touch(&r->t, n, now);
}

static void test_sess_table_full_table_evicts_least_recently_active(void)
{
	struct relay_sim r = { .max_sessions = 4, .timeout_ms = 60000 };
	union sess_addr a = v4("10.0.0.1", 1001), b = v4("10.0.0.1", 1002), c = v4("10.0.0.1", 1003),
			d = v6("fd00::1", 1004, 0), e = v6("fd00::1", 1005, 0);

	CHECK_EQ(sess_table_init(&r.t, 16, 4, 5), 0);
	/* A, B, C, D fill the table; A speaks again; E arrives: B is the least recently active */
	sim_datagram(&r, &a, 0, 100);
	sim_datagram(&r, &b, 1, 200);
	sim_datagram(&r, &c, 2, 300);
	sim_datagram(&r, &d, 3, 400);
	sim_datagram(&r, &a, 0, 500);
	CHECK_EQ(r.last_closed, -1);
	sim_datagram(&r, &e, 4, 600);
	CHECK_EQ(r.last_closed, 1);
	CHECK_EQ(r.evicted, 1);
	CHECK_EQ(r.expired, 0);
	CHECK_EQ(r.t.count, 4);
	CHECK(find(&r.t, &a) == &r.s[0]);
	CHECK(find(&r.t, &b) == NULL);
	/* B comes back: a new session, and now C (untouched since 300) goes */
	sim_datagram(&r, &b, 1, 700);
	CHECK_EQ(r.last_closed, 2);
	CHECK_EQ(r.evicted, 2);
	CHECK_EQ(r.opened, 6);
	/* an oldest session idle for the whole timeout is counted as expired, not evicted */
	sim_datagram(&r, &c, 2, 400 + 60000);
	CHECK_EQ(r.last_closed, 3);
	CHECK_EQ(r.expired, 1);
	CHECK_EQ(r.evicted, 2);
	sess_table_destroy(&r.t);
}

static void test_sess_table_eviction_random_traffic_matches_model(void)
{
	enum { CLIENTS = 24, MAXS = 8, DGRAMS = 20000 };
	struct relay_sim r = { .max_sessions = MAXS, .timeout_ms = 30 };
	union sess_addr k[CLIENTS];
	struct model_entry m[CLIENTS];
	uint64_t now = 0, rank = 0, expired = 0, evicted = 0;
	char ip[64];
	int bad = 0;

	for (int i = 0; i < CLIENTS; i++) {
		snprintf(ip, sizeof(ip), i % 2 ? "10.3.0.%d" : "fd00:3::%d", i / 4 + 1);
		k[i] = i % 2 ? v4(ip, (uint16_t)(5000 + i % 4)) : v6(ip, (uint16_t)(5000 + i % 4), 0);
	}
	memset(m, 0, sizeof(m));
	CHECK_EQ(sess_table_init(&r.t, 16, MAXS, 8), 0);
	test_rng_seed(4242);
	for (int d = 0; d < DGRAMS && bad < 5; d++) {
		/* a few busy clients and many occasional ones */
		int i = test_rng_below(4) ? (int)test_rng_below(6) : (int)test_rng_below(CLIENTS), want_closed = -1;

		now += test_rng_below(4);
		if (!m[i].present && model_count(m, CLIENTS) >= MAXS) {
			want_closed = model_oldest(m, CLIENTS);
			if (now - m[want_closed].last_ms >= r.timeout_ms)
				expired++;
			else
				evicted++;
			m[want_closed].present = false;
		}
		m[i] = (struct model_entry){ true, now, ++rank };
		sim_datagram(&r, &k[i], i, now);
		if (r.last_closed != want_closed || r.evicted != evicted || r.expired != expired ||
		    (int)r.t.count != model_count(m, CLIENTS)) {
			fprintf(stderr, "  datagram %d from %d: closed %d (model %d), evicted %llu/%llu expired %llu/%llu\n",
				d, i, r.last_closed, want_closed, (unsigned long long)r.evicted,
				(unsigned long long)evicted, (unsigned long long)r.expired, (unsigned long long)expired);
			bad++;
		}
	}
	CHECK_EQ(bad, 0);
	/* both ways of closing happened, and the table never went over the limit */
	CHECK(evicted > 100);
	CHECK(expired > 100);
	CHECK_EQ(r.t.count, MAXS);
	sess_table_destroy(&r.t);
}

int main(void)
{
	RUN(test_sess_table_same_address_other_port_family_or_scope_is_another_key);
	RUN(test_sess_table_key_ignores_padding_and_flow_label);
	RUN(test_sess_table_insert_rejects_other_families);
	RUN(test_sess_table_grows_from_16_buckets_by_doubling_up_to_the_cap);
	RUN(test_sess_table_spreads_one_host_many_ports);
	RUN(test_sess_table_oldest_is_the_least_recently_touched);
	RUN(test_sess_table_remove_head_middle_and_tail_of_lru);
	RUN(test_sess_table_remove_from_long_bucket_chains);
	RUN(test_sess_table_random_ops_match_model);
	RUN(test_sess_table_full_table_evicts_least_recently_active);
	RUN(test_sess_table_eviction_random_traffic_matches_model);
	TEST_EXIT();
}
