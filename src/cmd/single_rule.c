/* Single-client rules on relay/single.c; see single_rule.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cmd/single_rule.h"
#include "core/log.h"
#include "core/util.h"
#include "net/endpoint.h"

/* pkthere's default ready-session pool per transmit leg (spec/pkthere.md §1.3). */
#define SINGLE_RULE_POOL_SIZE 4

static void single_rule_side(const struct endpoint *ep, struct single_side *s)
{
	s->icmp = ep->scheme == EP_ICMP;
	s->addr = ep->addrs[0];	/* the first answer, whatever its family, as pkthere */
	s->id = ep->port;	/* UDP port, or echo ID (0 = dynamic) */
	sockaddr_set_port((struct sockaddr *)&s->addr, s->icmp ? 0 : ep->port);
}

void single_rule_opts(const struct rule *r, struct single_opts *o)
{
	memset(o, 0, sizeof(*o));
	single_rule_side(&r->listen, &o->here);
	single_rule_side(&r->target, &o->there);
	/* the URL carries the reply IDs; source IDs are the realized local ones */
	o->here_source_id = SINGLE_ID_UNSET;
	o->there_source_id = SINGLE_ID_UNSET;
	o->here_reply_id = o->here.icmp ? r->listen.reply_id : SINGLE_ID_UNSET;
	o->there_reply_id = o->there.icmp ? r->target.reply_id : SINGLE_ID_UNSET;
	/* --idle-timeout 0 is "never", as for every other rule */
	o->timeout_ms = r->o.idle_timeout_ms ? r->o.idle_timeout_ms : UINT64_MAX;
	o->handshake_timeout_ms = r->o.single.handshake_timeout_ms;
	o->on_timeout_exit = r->o.single.on_timeout_exit;
	o->max_payload = r->o.max_datagram ? r->o.max_datagram : rule_single_max_datagram(r);
	o->sync_pps = r->o.single.sync_pps;
	o->pool_size = SINGLE_RULE_POOL_SIZE;
	o->workers = 1;
}

int single_rule_open(struct rule *r, char *err, size_t errlen)
{
	struct single_rule *sr = calloc(1, sizeof(*sr));
	struct single_opts o;
	char why[256];
	int rc;

	if (!sr) {
		snprintf(err, errlen, "%s: out of memory", r->desc);
		return -ENOMEM;
	}
	single_rule_opts(r, &o);
	rc = single_open(&o, &sr->relay, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: %s", r->desc, why);
		free(sr);
		return rc;
	}
	sr->rule = r;
	sr->exit_io.fd = -1;
	r->single = sr;
	return 0;
}

static void single_rule_on_exit(struct io *io, uint32_t events)
{
	struct single_rule *sr = container_of(io, struct single_rule, exit_io);
	uint64_t n;

	if (read(io->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("%s: exit request: %s", sr->rule->desc, strerror(errno));
	sr->on_exit(sr);
}

/* One line with the rule's idle policy and, for a tunnel client end, which socket it got. */
static void single_rule_announce(const struct single_rule *sr)
{
	const struct rule *r = sr->rule;
	struct single_pair_view v;
	char idle[32];

	single_pair_view(sr->relay, 0, &v);
	if (r->o.idle_timeout_ms)
		snprintf(idle, sizeof(idle), "%.3g s", r->o.idle_timeout_ms / 1000.0);
	else
		snprintf(idle, sizeof(idle), "never");
	log_info("%s: single client, idle timeout %s, then %s%s", r->desc, idle,
		 r->o.single.on_timeout_exit ? "ferry exits" : "the next client locks",
		 !v.upstream_icmp ? "" : v.upstream_raw ? "; ICMP upstream on a raw socket" :
		 "; ICMP upstream on a ping socket");
}

int single_rule_start(struct rule *r, struct loop *loop, void (*on_exit)(struct single_rule *sr))
{
	struct single_rule *sr = r->single;
	int rc;

	sr->loop = loop;
	sr->on_exit = on_exit;
	sr->exit_io.fd = single_exit_fd(sr->relay);
	sr->exit_io.cb = single_rule_on_exit;
	rc = loop_add(loop, &sr->exit_io, EPOLLIN);
	if (rc) {
		sr->exit_io.fd = -1;
		return rc;
	}
	rc = single_start(sr->relay);
	if (rc)
		return rc;
	single_rule_announce(sr);
	return 0;
}

void single_rule_stop(struct rule *r)
{
	struct single_rule *sr = r->single;

	if (!sr)
		return;
	if (sr->exit_io.fd >= 0)
		loop_del(sr->loop, &sr->exit_io);
	single_free(sr->relay);	/* joins the pair thread, closes its sockets */
	free(sr);
	r->single = NULL;
}

void single_rule_stats(const struct rule *r, struct rule_stats *s)
{
	struct single_stats st;

	memset(s, 0, sizeof(*s));
	if (!r->single)
		return;
	single_stats_sum(r->single->relay, &st);
	s->dgrams_up = st.c2u.pkts;
	s->dgrams_down = st.u2c.pkts;
	s->bytes_up = st.c2u.bytes;
	s->bytes_down = st.u2c.bytes;
	s->drops[DROP_OVERSIZE] = st.c2u.drops_oversize + st.u2c.drops_oversize;
	s->drops[DROP_SEND_ERROR] = st.c2u.user_send_errors + st.u2c.user_send_errors + st.c2u.control_send_errors +
				    st.u2c.control_send_errors;
}

void single_rule_stats_json(FILE *out, const struct rule *r)
{
	struct single_pair_view v = { 0 };
	struct single_stats st = { 0 };

	if (r->single) {
		single_stats_sum(r->single->relay, &st);
		single_pair_view(r->single->relay, 0, &v);
	}
	fprintf(out, "\"single\":{\"locked\":%s,", v.locked ? "true" : "false");
	if (v.locked)
		fprintf(out, "\"client\":\"%s\",", v.client);
	else
		fputs("\"client\":null,", out);
	fprintf(out, "\"wrong_peer\":%" PRIu64 ",\"wrong_source\":%" PRIu64 ",\"malformed\":%" PRIu64
		",\"duplicates\":%" PRIu64 ",\"receive_errors\":%" PRIu64 "},",
		st.ctr[SC_WRONG_PEER], st.ctr[SC_WRONG_SOURCE], st.ctr[SC_MALFORMED] + st.ctr[SC_ICMP_MALFORMED],
		st.ctr[SC_SEQ_DUPLICATE], st.c2u.receive_errors + st.u2c.receive_errors);
}
