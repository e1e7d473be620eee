/*
 * TCP over KCP (spec/kcp.md): the stream relay between TCP connections and smux streams
 * inside KCP sessions over UDP.
 *
 *   client rule  tcp://L kcp://S : each accepted TCP connection becomes a stream in this
 *                worker's KCP session to S (opened on the first connection, re-opened with a
 *                new conv after it dies);
 *   server rule  kcp://L tcp://T : KCP sessions from many clients on one UDP socket per
 *                worker; each stream a client opens becomes a TCP connection to T.
 *
 * The layers: TCP bytes <-> smux frames <-> [snappy framing] <-> KCP <-> link (kcptun crypt
 * and FEC, or the secure channel, or nothing) <-> UDP.
 */
#ifndef FERRY_RELAY_KCP_H
#define FERRY_RELAY_KCP_H
#include <stddef.h>

#include "relay/rule.h"

struct worker;

/* Start-up checks that need resolved addresses (plain KCP off loopback, cipher names). */
int kcp_rule_check(const struct rule *r, char *err, size_t errlen);
/* Logs what a user must know about a kcp rule at start-up (PSK fingerprint, no authentication). */
void kcp_rule_announce(const struct rule *r);

/* Server: takes over the bound UDP socket fd and the caller's reference on r. */
int kcp_listener_start(struct worker *w, struct rule *r, int fd);
/* Client: tcp.c hands over an accepted connection of a tcp -> kcp rule (counted in r->active). */
void kcp_client_accept(struct worker *w, struct rule *r, int fd);
void kcp_stop_rule(struct worker *w, const struct rule *r);
/* Stops listening; sessions keep running until kcp_close_all(). */
void kcp_stop_all(struct worker *w);
void kcp_close_all(struct worker *w);
/* Frees the worker's KCP send queue (after its loop ended). */
void kcp_worker_cleanup(struct worker *w);

#endif
