/* Session table; see sess_table.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "relay/sess_table.h"

#define SESS_TABLE_MIN_BUCKETS 16

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = SESS_TABLE_MIN_BUCKETS;

	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Keyed hash of (family, port, address): the seed keeps clients from aiming at one bucket. */
static uint32_t addr_hash(const struct sess_table *t, const struct sockaddr *sa)
{
	uint64_t h = t->seed;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		uint64_t w[2];

		memcpy(w, &a->sin6_addr, sizeof(w));
		h = mix64(h ^ w[0]);
		h = mix64(h ^ w[1]);
		h = mix64(h ^ ((uint64_t)a->sin6_port << 32 | a->sin6_scope_id));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		h = mix64(h ^ ((uint64_t)a->sin_addr.s_addr << 16 | a->sin_port));
	}
	return (uint32_t)h;
}

int sess_addr_equal(const union sess_addr *k, const struct sockaddr *sa)
{
	if (k->sa.sa_family != sa->sa_family)
		return 0;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		return k->in6.sin6_port == a->sin6_port && k->in6.sin6_scope_id == a->sin6_scope_id &&
		       !memcmp(&k->in6.sin6_addr, &a->sin6_addr, sizeof(a->sin6_addr));
	}
	const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

	return k->in.sin_port == a->sin_port && k->in.sin_addr.s_addr == a->sin_addr.s_addr;
}

int sess_table_init(struct sess_table *t, uint32_t initial_buckets, uint32_t max_buckets, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->max_buckets = pow2_at_least(max_buckets);
	t->nbuckets = MIN(pow2_at_least(initial_buckets), t->max_buckets);
	t->seed = seed;
	list_init(&t->lru);
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -ENOMEM;
}

void sess_table_destroy(struct sess_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
}

struct sess_node *sess_table_find(const struct sess_table *t, const struct sockaddr *sa)
{
	uint32_t h = addr_hash(t, sa);

	for (struct sess_node *n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->hnext)
		if (n->hash == h && sess_addr_equal(&n->key, sa))
			return n;
	return NULL;
}

/* Doubles the bucket array; on allocation failure the table just stays denser. */
static void sess_table_grow(struct sess_table *t)
{
	uint32_t nb = t->nbuckets * 2;
	struct sess_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		struct sess_node *n = t->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

int sess_table_insert(struct sess_table *t, struct sess_node *n, const struct sockaddr *sa, uint64_t now_ms)
{
	uint32_t i;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (t->count >= t->nbuckets && t->nbuckets < t->max_buckets)
		sess_table_grow(t);
	memset(&n->key, 0, sizeof(n->key));
	memcpy(&n->key, sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	n->hash = addr_hash(t, sa);
	n->last_ms = now_ms;
	i = n->hash & (t->nbuckets - 1);
	n->hnext = t->buckets[i];
	t->buckets[i] = n;
	list_add(&t->lru, &n->lru);
	t->count++;
	return 0;
}

void sess_table_remove(struct sess_table *t, struct sess_node *n)
{
	struct sess_node **pp = &t->buckets[n->hash & (t->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			n->hnext = NULL;
			list_del(&n->lru);
			t->count--;
			return;
		}
	}
}

void sess_table_touch(struct sess_table *t, struct sess_node *n, uint64_t now_ms)
{
	n->last_ms = now_ms;
	if (t->lru.next != &n->lru) {
		list_del(&n->lru);
		list_add(&t->lru, &n->lru);
	}
}

struct sess_node *sess_table_oldest(const struct sess_table *t)
{
	if (list_empty(&t->lru))
		return NULL;
	return container_of(t->lru.prev, struct sess_node, lru);
}
