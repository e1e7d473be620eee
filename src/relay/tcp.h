/*
 * The TCP stream relay: accept, connect upstream, then move bytes both ways with
 * splice() through pooled pipes (or a pooled buffer), propagating half-close and reset.
 */
#ifndef FERRY_RELAY_TCP_H
#define FERRY_RELAY_TCP_H
#include "relay/rule.h"

struct worker;
struct tcp_listener;

/* Takes over fd and the caller's reference on r. */
int tcp_listener_start(struct worker *w, struct rule *r, int fd);
/* Stops accepting for rule r in this worker (its connections finish on their own). */
void tcp_listener_stop_rule(struct worker *w, const struct rule *r);
void tcp_listener_stop_all(struct worker *w);
/* Aborts every connection of the worker (shutdown after the drain time). */
void tcp_conn_close_all(struct worker *w);

#endif
