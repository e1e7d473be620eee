/*
 * cmd/single_rule: how a resolved single-client rule becomes the options of the relay the
 * --here/--there front-end runs too (spec/pkthere.md §1.2-1.3): which side is ICMP, echo and
 * reply IDs from the URL, the idle and handshake timeouts, the largest datagram.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "cmd/args.h"
#include "cmd/single_rule.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Builds and resolves (numeric addresses only) a rule from LISTEN TARGET and option words. */
static struct rule *resolved(const char *l, const char *t, char *const opts[], int nopts)
{
	struct rule_opts ro;
	struct args_result res;
	struct rule *r = NULL;
	char err[ARGS_ERR_MAX];

	rule_opts_default(&ro);
	if (args_parse(ARGS_FERRY, nopts, opts, NULL, &ro, &res, err, sizeof(err)) ||
	    rule_build(ARGS_FERRY, l, t, &ro, &r, err, sizeof(err)) || rule_resolve(r, err, sizeof(err))) {
		fprintf(stderr, "  setup %s %s: %s\n", l, t, err);
		abort();
	}
	return r;
}

static void test_tunnel_client_end_maps_target_id_and_reply_id_to_there(void)
{
	char *opts[] = { "--icmp-sync-pps", "7", "--idle-timeout", "3" };
	struct rule *r = resolved("udp://127.0.0.1:5000", "icmp://127.0.0.1:9999:40001", opts, N(opts));
	struct single_opts o;

	single_rule_opts(r, &o);
	CHECK(!o.here.icmp);
	CHECK(o.there.icmp);
	CHECK_EQ(o.here.id, 5000);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&o.here.addr)->sin_port), 5000);
	CHECK_EQ(o.there.id, 9999);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&o.there.addr)->sin_port), 0);	/* an echo ID is no port */
	CHECK_EQ(o.there_reply_id, 40001);
	CHECK_EQ(o.there_source_id, SINGLE_ID_UNSET);
	CHECK_EQ(o.here_reply_id, SINGLE_ID_UNSET);
	CHECK_EQ(o.here_source_id, SINGLE_ID_UNSET);
	CHECK_EQ(o.sync_pps, 7);
	CHECK_EQ(o.timeout_ms, 3000);
	CHECK_EQ(o.handshake_timeout_ms, 3000);
	CHECK_EQ(o.max_payload, 65496);
	CHECK_EQ(o.workers, 1);
	CHECK_EQ(o.pool_size, 4);
	CHECK(!o.on_timeout_exit);
	CHECK(!o.single_flow);
	rule_unref(r);
}

static void test_tunnel_server_end_maps_listen_id_and_reply_id_to_here(void)
{
	char *opts[] = { "--on-timeout", "exit", "--max-payload", "1400" };
	struct rule *r = resolved("icmp://[::1]:0:0", "udp://[::1]:53", opts, N(opts));
	struct single_opts o;

	single_rule_opts(r, &o);
	CHECK(o.here.icmp);
	CHECK(!o.there.icmp);
	CHECK_EQ(o.here.id, 0);	/* wildcard-learn, as --here ICMP:[::1]:0 */
	CHECK_EQ(o.here.addr.ss_family, AF_INET6);
	CHECK_EQ(o.here_reply_id, 0);	/* given as 0: wildcard, not "unset" */
	CHECK_EQ(o.there_reply_id, SINGLE_ID_UNSET);
	CHECK_EQ(o.there.id, 53);
	CHECK(o.on_timeout_exit);
	CHECK_EQ(o.timeout_ms, 10000);	/* pkthere's default */
	CHECK_EQ(o.max_payload, 1400);
	rule_unref(r);
}

/* --idle-timeout 0 means "never" for every ferry rule; the relay counts idle time against it. */
static void test_idle_timeout_0_never_lets_the_client_go(void)
{
	char *opts[] = { "--single-client", "--idle-timeout", "0" };
	struct rule *r = resolved("udp://[::1]:5000", "udp://[::1]:53", opts, N(opts));
	struct single_opts o;

	single_rule_opts(r, &o);
	CHECK(!o.here.icmp && !o.there.icmp);
	CHECK_EQ(o.timeout_ms == UINT64_MAX, 1);
	CHECK_EQ(o.handshake_timeout_ms, 10000);
	CHECK_EQ(o.max_payload, 65527);
	CHECK_EQ(o.there_reply_id, SINGLE_ID_UNSET);
	rule_unref(r);
}

int main(void)
{
	RUN(test_tunnel_client_end_maps_target_id_and_reply_id_to_there);
	RUN(test_tunnel_server_end_maps_listen_id_and_reply_id_to_here);
	RUN(test_idle_timeout_0_never_lets_the_client_go);
	TEST_EXIT();
}
