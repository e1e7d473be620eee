/*
 * The UDP datagram relay (DESIGN.md "datagram relay"): one session per client address,
 * each with its own connected upstream socket; replies leave from the listening socket.
 */
#ifndef FERRY_RELAY_UDP_H
#define FERRY_RELAY_UDP_H
#include "relay/rule.h"

struct worker;

/* Takes over fd (a bound UDP socket) and the caller's reference on r. */
int udp_listener_start(struct worker *w, struct rule *r, int fd);
void udp_listener_stop_rule(struct worker *w, const struct rule *r);
void udp_listener_stop_all(struct worker *w);
/* Frees the worker's batch buffers (after all UDP listeners are gone). */
void udp_worker_cleanup(struct worker *w);

#endif
