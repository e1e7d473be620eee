/* Rule lifetime and counters; see rule.h. Parsing lives in cmd/args.c. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "relay/rule.h"

const char *const rule_drop_names[DROP__COUNT] = {
	[DROP_MAX_CONNS] = "max_conns",
	[DROP_NO_FDS] = "no_fds",
	[DROP_CONNECT_TIMEOUT] = "connect_timeout",
	[DROP_CONNECT_FAILED] = "connect_failed",
	[DROP_BASE_ADDR] = "base_addr",
	[DROP_NO_MEMORY] = "no_memory",
	[DROP_OVERSIZE] = "oversize",
	[DROP_NO_SESSION] = "no_session",
	[DROP_SEND_ERROR] = "send_error",
	[DROP_ICMP_ERROR] = "icmp_error",
	[DROP_RCVBUF] = "rcvbuf_full",
	[DROP_MAX_STREAMS] = "max_streams",
	[DROP_UNAUTH] = "unauthenticated",
	[DROP_PROTOCOL] = "protocol_error",
	[DROP_DEAD_LINK] = "dead_link",
};

void rule_opts_default(struct rule_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = RULE_CONNECT_TIMEOUT_MS;
	o->max_conns = RULE_MAX_CONNS;
	o->sock.keepalive = true;
	o->sock.ka_idle_s = RULE_KA_IDLE_S;
	o->sock.ka_intvl_s = RULE_KA_INTVL_S;
	o->sock.ka_cnt = RULE_KA_CNT;
	o->udp_timeout_ms = RULE_UDP_TIMEOUT_MS;
	o->max_sessions = RULE_MAX_SESSIONS;
	o->kcp.nodelay = o->kcp.interval = o->kcp.resend = o->kcp.nc = -1;
	o->kcp.ds = o->kcp.ps = -1;
	o->kcp.max_skew_s = 300;
}

uint32_t rule_single_max_datagram(const struct rule *r)
{
	bool icmp = r->listen.scheme == EP_ICMP || r->target.scheme == EP_ICMP;
	bool v4 = r->listen.addrs[0].ss_family == AF_INET || r->target.addrs[0].ss_family == AF_INET;

	/* one IPv4 side makes the tunnel's limit the IPv4 one, as in pkthere */
	if (v4)
		return icmp ? RULE_MAX_DATAGRAM_ICMP_V4 : RULE_MAX_DATAGRAM_V4;
	return icmp ? RULE_MAX_DATAGRAM_ICMP_V6 : RULE_MAX_DATAGRAM_V6;
}

int rule_alloc_stats(struct rule *r, unsigned nworkers)
{
	r->stats = aligned_alloc(64, sizeof(*r->stats) * nworkers);
	if (!r->stats)
		return -ENOMEM;
	memset(r->stats, 0, sizeof(*r->stats) * nworkers);
	r->nworkers = nworkers;
	return 0;
}

void rule_ref(struct rule *r)
{
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
}

void rule_unref(struct rule *r)
{
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(r->stats);
		free(r);
	}
}

void rule_stats_sum(const struct rule *r, struct rule_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < r->nworkers; w++) {
		const struct rule_stats *s = &r->stats[w];

		out->accepted += CTR_GET(s->accepted);
		out->closed += CTR_GET(s->closed);
		out->failed += CTR_GET(s->failed);
		out->bytes_up += CTR_GET(s->bytes_up);
		out->bytes_down += CTR_GET(s->bytes_down);
		out->dgrams_up += CTR_GET(s->dgrams_up);
		out->dgrams_down += CTR_GET(s->dgrams_down);
		out->sess_expired += CTR_GET(s->sess_expired);
		out->sess_evicted += CTR_GET(s->sess_evicted);
		out->kcp_sessions += CTR_GET(s->kcp_sessions);
		out->kcp_sessions_closed += CTR_GET(s->kcp_sessions_closed);
		out->kcp_retrans += CTR_GET(s->kcp_retrans);
		out->kcp_fast_retrans += CTR_GET(s->kcp_fast_retrans);
		out->kcp_lost += CTR_GET(s->kcp_lost);
		out->kcp_out_segs += CTR_GET(s->kcp_out_segs);
		out->kcp_fec_recovered += CTR_GET(s->kcp_fec_recovered);
		if (CTR_GET(s->kcp_srtt_ms))
			out->kcp_srtt_ms = CTR_GET(s->kcp_srtt_ms);
		if (CTR_GET(s->kcp_rate_bps))
			out->kcp_rate_bps = CTR_GET(s->kcp_rate_bps);
		for (int d = 0; d < DROP__COUNT; d++)
			out->drops[d] += CTR_GET(s->drops[d]);
	}
}
