/*
 * Single-client rules as ferry runs them: `udp://L udp://T --single-client` and the two
 * ends of the ICMP tunnel (`udp://L icmp://H:ID`, `icmp://L:ID udp://T`). Each runs on
 * relay/single.c (the same relay the --here/--there front-end drives) with one pair
 * thread of its own next to the workers. This file turns a resolved rule into
 * single_opts, starts and stops the relay, and reports its counters in ferry's stats.
 * pkthere's own behaviour (its log lines, stats JSON, exit 130) stays in pk_main.c.
 */
#ifndef FERRY_CMD_SINGLE_RULE_H
#define FERRY_CMD_SINGLE_RULE_H
#include <stdio.h>

#include "core/loop.h"
#include "relay/rule.h"
#include "relay/single.h"

struct single_rule {
	struct rule *rule;
	struct single *relay;
	struct loop *loop;	/* the control loop; exit_io is in it once started */
	struct io exit_io;	/* readable when the client idled out under --on-timeout exit */
	void (*on_exit)(struct single_rule *sr);
};

/* The relay's options for a resolved rule (exported for the unit test). */
void single_rule_opts(const struct rule *r, struct single_opts *o);
/*
 * Opens the relay's sockets (raw ICMP needs privileges: call before dropping them) and
 * attaches it to r->single. -errno with err naming the rule.
 */
int single_rule_open(struct rule *r, char *err, size_t errlen);
/*
 * Starts the pair thread (signals must already be blocked) and watches the relay's exit
 * request from loop: on_exit runs there when --on-timeout exit fires.
 */
int single_rule_start(struct rule *r, struct loop *loop, void (*on_exit)(struct single_rule *sr));
/* Stops the pair thread, closes the sockets, detaches from r. No-op for other rules. */
void single_rule_stop(struct rule *r);
/* Datagrams, bytes and drops in ferry's rule_stats terms (for the stats line and STATUS=). */
void single_rule_stats(const struct rule *r, struct rule_stats *s);
/* The "single":{...} member of the rule's stats object, with a trailing comma. */
void single_rule_stats_json(FILE *out, const struct rule *r);

#endif
