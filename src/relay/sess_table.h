/*
 * The datagram relay's session table: sessions keyed by the client's address, in a
 * chained hash that grows by doubling up to a cap, plus an LRU list (most recently
 * active first) so that eviction takes the least recently active session in O(1).
 * Pure bookkeeping: no sockets, no clock; the caller passes "now".
 */
#ifndef FERRY_RELAY_SESS_TABLE_H
#define FERRY_RELAY_SESS_TABLE_H
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/list.h"

union sess_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Embed in the session; recover it with container_of(). */
struct sess_node {
	struct sess_node *hnext;
	struct list lru;
	uint64_t last_ms;
	union sess_addr key;
	uint32_t hash;
};

struct sess_table {
	struct sess_node **buckets;
	uint32_t nbuckets;	/* power of two */
	uint32_t max_buckets;
	uint32_t count;
	uint64_t seed;
	struct list lru;	/* head = most recently active */
};

/* Table of initial_buckets (rounded up to a power of two), growing up to max_buckets. */
int sess_table_init(struct sess_table *t, uint32_t initial_buckets, uint32_t max_buckets, uint64_t seed);
void sess_table_destroy(struct sess_table *t);
int sess_addr_equal(const union sess_addr *k, const struct sockaddr *sa);
struct sess_node *sess_table_find(const struct sess_table *t, const struct sockaddr *sa);
/* Adds n keyed by sa as the most recently active; the caller made sure sa is not present. */
int sess_table_insert(struct sess_table *t, struct sess_node *n, const struct sockaddr *sa, uint64_t now_ms);
void sess_table_remove(struct sess_table *t, struct sess_node *n);
/* Marks n active now: it becomes the most recently active. */
void sess_table_touch(struct sess_table *t, struct sess_node *n, uint64_t now_ms);
/* The least recently active session, or NULL. */
struct sess_node *sess_table_oldest(const struct sess_table *t);

#endif
