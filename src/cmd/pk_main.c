/*
 * ferry in pkthere's clothes (spec/pkthere.md §1.4–1.6, §2.1, §2.7–2.8, §4): runs the
 * single-client relay from a pkthere command line, with pkthere's log lines, exit codes
 * and stats JSON. Chosen by main() when an argument is --here or --there.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "cmd/pk_args.h"
#include "cmd/pk_main.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/util.h"
#include "net/endpoint.h"
#include "os/daemon.h"
#include "relay/single.h"

/* Stats lines use this half-life, in samples, for the latency EWMA (§4.2). */
#define PK_EWMA_HALF_LIFE_SAMPLES 200000.0
/* pkthere's exit status for SIGINT/SIGTERM/SIGHUP (§1.5). */
#define PK_EXIT_SIGNAL 130

/* pkthere prints info on stdout and everything else on stderr, "[LEVEL] text". */
static void pk_log_sink(enum log_level level, const char *msg)
{
	static const char *const names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	FILE *f = level == LOG_INFO ? stdout : stderr;

	fprintf(f, "[%s] %s\n", names[level], msg);
	fflush(f);
}

static void pk_side(const struct pk_endpoint *e, struct single_side *s)
{
	s->icmp = e->proto == PK_ICMP;
	s->addr = e->addr;
	s->id = e->id;
	sockaddr_set_port((struct sockaddr *)&s->addr, s->icmp ? 0 : e->id);
}

static void pk_opts(const struct pk_config *c, struct single_opts *o)
{
	memset(o, 0, sizeof(*o));
	pk_side(&c->here, &o->here);
	pk_side(&c->there, &o->there);
	o->here_source_id = c->here_source_id;
	o->here_reply_id = c->here_reply_id;
	o->there_source_id = c->there_source_id;
	o->there_reply_id = c->there_reply_id;
	o->timeout_ms = c->timeout_secs * 1000;
	o->handshake_timeout_ms = c->handshake_timeout_secs * 1000;
	o->on_timeout_exit = c->on_timeout_exit;
	o->max_payload = c->max_payload;
	o->sync_pps = c->icmp_sync_pps;
	o->pool_size = c->pool_size;
	o->workers = c->workers;
	o->single_flow = c->single_flow;
	o->client_unconnected = c->debug_client_unconnected;
	o->upstream_unconnected = c->debug_upstream_unconnected;
	o->kernel_echo_self_handshake = c->debug_kernel_echo_self_handshake;
	o->force_raw_upstream = c->debug_force_raw_wildcard_upstream;
	o->debug_log = c->debug_log;	/* PK_LOG_* and SINGLE_LOG_* have the same bits */
}

/* ---------------- stats (§4.2): keys sorted, as serde_json prints a map ---------------- */

struct kv {
	char key[64];
	char *val;
};

struct kvs {
	struct kv *v;
	size_t n, cap;
};

static void kv_add(struct kvs *k, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void kv_add(struct kvs *k, const char *key, const char *fmt, ...)
{
	va_list ap;

	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 128;
		struct kv *v = realloc(k->v, cap * sizeof(*v));
		if (!v)
			return;
		k->v = v;
		k->cap = cap;
	}
	snprintf(k->v[k->n].key, sizeof(k->v[k->n].key), "%s", key);
	va_start(ap, fmt);
	if (vasprintf(&k->v[k->n].val, fmt, ap) < 0)
		k->v[k->n].val = NULL;
	va_end(ap);
	if (k->v[k->n].val)
		k->n++;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

/* Prints {"k":v,...} sorted by key into f and frees the values. */
static void kv_print(struct kvs *k, FILE *f)
{
	qsort(k->v, k->n, sizeof(*k->v), kv_cmp);
	fputc('{', f);
	for (size_t i = 0; i < k->n; i++) {
		fprintf(f, "%s\"%s\":%s", i ? "," : "", k->v[i].key, k->v[i].val);
		free(k->v[i].val);
	}
	fputc('}', f);
	free(k->v);
	k->v = NULL;
	k->n = k->cap = 0;
}

struct pk_ewma {
	uint64_t pkts, lat_sum;
	double value;
	bool have;
};

static void kv_dir(struct kvs *k, const char *d, const struct single_dir_stats *s, struct pk_ewma *ew)
{
	char key[64];
#define DKEY(name) (snprintf(key, sizeof(key), "%s_%s", d, name), key)
	kv_add(k, DKEY("pkts"), "%" PRIu64, s->pkts);
	kv_add(k, DKEY("bytes"), "%" PRIu64, s->bytes);
	kv_add(k, DKEY("bytes_exact"), "\"%" PRIu64 "\"", s->bytes);
	kv_add(k, DKEY("bytes_max"), "%" PRIu64, s->bytes_max);
	kv_add(k, DKEY("drops_oversize"), "%" PRIu64, s->drops_oversize);
	kv_add(k, DKEY("latency_ns_sum"), "%" PRIu64, s->latency_ns_sum);
	kv_add(k, DKEY("latency_ns_sum_exact"), "\"%" PRIu64 "\"", s->latency_ns_sum);
	kv_add(k, DKEY("latency_ns_max"), "%" PRIu64, s->latency_ns_max);
	kv_add(k, DKEY("queue_delay_ns_sum"), "%" PRIu64, s->queue_delay_ns_sum);
	kv_add(k, DKEY("queue_delay_ns_sum_exact"), "\"%" PRIu64 "\"", s->queue_delay_ns_sum);
	kv_add(k, DKEY("queue_delay_ns_max"), "%" PRIu64, s->queue_delay_ns_max);
	kv_add(k, DKEY("send_service_ns_sum"), "%" PRIu64, s->send_service_ns_sum);
	kv_add(k, DKEY("send_service_ns_sum_exact"), "\"%" PRIu64 "\"", s->send_service_ns_sum);
	kv_add(k, DKEY("send_service_ns_max"), "%" PRIu64, s->send_service_ns_max);
	if (s->pkts) {
		kv_add(k, DKEY("latency_ns_avg"), "%" PRIu64, s->latency_ns_sum / s->pkts);
		kv_add(k, DKEY("queue_delay_ns_avg"), "%" PRIu64, s->queue_delay_ns_sum / s->pkts);
		kv_add(k, DKEY("send_service_ns_avg"), "%" PRIu64, s->send_service_ns_sum / s->pkts);
	} else {
		kv_add(k, DKEY("latency_ns_avg"), "null");
		kv_add(k, DKEY("queue_delay_ns_avg"), "null");
		kv_add(k, DKEY("send_service_ns_avg"), "null");
	}
	/* the interval's mean latency folds into the EWMA with weight by sample count */
	uint64_t dp = s->pkts - ew->pkts;
	if (dp) {
		double mean = (double)(s->latency_ns_sum - ew->lat_sum) / (double)dp;
		double keep = pow(0.5, (double)dp / PK_EWMA_HALF_LIFE_SAMPLES);
		ew->value = ew->have ? keep * ew->value + (1 - keep) * mean : mean;
		ew->have = true;
	}
	ew->pkts = s->pkts;
	ew->lat_sum = s->latency_ns_sum;
	if (ew->have)
		kv_add(k, DKEY("interval_mean_latency_ns_ewma"), "%" PRIu64, (uint64_t)ew->value);
	else
		kv_add(k, DKEY("interval_mean_latency_ns_ewma"), "null");
	kv_add(k, DKEY("errs"), "%" PRIu64, s->errs);
	kv_add(k, DKEY("zero_resolution_samples"), "%" PRIu64, s->zero_resolution_samples);
	kv_add(k, DKEY("receive_errors"), "%" PRIu64, s->receive_errors);
	kv_add(k, DKEY("user_send_errors"), "%" PRIu64, s->user_send_errors);
	kv_add(k, DKEY("control_send_errors"), "%" PRIu64, s->control_send_errors);
	kv_add(k, DKEY("admission_drops"), "%" PRIu64, s->admission_drops);
	kv_add(k, DKEY("topology_errors"), "%" PRIu64, (uint64_t)0);
#undef DKEY
}

static char *u64_or_null(uint64_t v, char *buf, size_t len)
{
	if (v)
		snprintf(buf, len, "%" PRIu64, v);
	else
		snprintf(buf, len, "null");
	return buf;
}

static char *json_str(const char *s, char *buf, size_t len)
{
	/* addresses and fixed words only: nothing to escape */
	if (!s || !*s)
		snprintf(buf, len, "null");
	else
		snprintf(buf, len, "\"%s\"", s);
	return buf;
}

static void kv_flow(struct kvs *k, const struct single_pair_view *v, unsigned i, const struct pk_config *c)
{
	char b1[160], b2[160];

	kv_add(k, "worker_pair", "%u", i);
	kv_add(k, "locked", "%s", v->locked ? "true" : "false");
	kv_add(k, "client_proto", "\"%s\"", v->client_icmp ? "ICMP" : "UDP");
	kv_add(k, "client_sock_type", "\"%s\"", v->client_raw ? "RAW" : "DGRAM");
	kv_add(k, "upstream_proto", "\"%s\"", v->upstream_icmp ? "ICMP" : "UDP");
	kv_add(k, "upstream_sock_type", "\"%s\"", v->upstream_raw ? "RAW" : "DGRAM");
	kv_add(k, "listener_connected", "%s", v->listener_connected ? "true" : "false");
	kv_add(k, "upstream_connected", "%s", v->upstream_connected ? "true" : "false");
	kv_add(k, "listener_lifecycle", "\"%s\"", v->locked ? "locked" : "waiting");
	kv_add(k, "flow_key", "%s", json_str(v->flow_key, b1, sizeof(b1)));
	if (v->locked) {
		kv_add(k, "listener_flow_inbound", "\"%s -> %s\"", v->client, v->listener_local);
		kv_add(k, "listener_flow_outbound", "\"%s -> %s\"", v->listener_local, v->client);
		kv_add(k, "upstream_flow_inbound", "\"%s -> %s\"", v->upstream_remote, v->upstream_local);
		kv_add(k, "upstream_flow_outbound", "\"%s -> %s\"", v->upstream_local, v->upstream_remote);
	} else {
		kv_add(k, "listener_flow_inbound", "null");
		kv_add(k, "listener_flow_outbound", "null");
		kv_add(k, "upstream_flow_inbound", "null");
		kv_add(k, "upstream_flow_outbound", "null");
	}
	kv_add(k, "listener_local_filter", "\"%s\"", v->listener_local);
	kv_add(k, "upstream_local_filter", "\"%s\"", v->upstream_local);
	kv_add(k, "upstream_remote_filter", "\"%s\"", v->upstream_remote);
	kv_add(k, "upstream_peer_mode", "\"%s\"", v->upstream_connected ? "connected" : "unconnected");
	kv_add(k, "listen_socket_evidence",
	       "{\"domain\":\"%s\",\"generation\":0,\"process_id\":%d,\"role\":\"listener\",\"socket_slot\":%u}",
	       c->here.addr.ss_family == AF_INET6 ? "ipv6" : "ipv4", (int)getpid(), i);
	kv_add(k, "upstream_socket_evidence",
	       "{\"domain\":\"%s\",\"generation\":0,\"process_id\":%d,\"role\":\"upstream\",\"socket_slot\":%u}",
	       c->there.addr.ss_family == AF_INET6 ? "ipv6" : "ipv4", (int)getpid(), i);
	kv_add(k, "icmp_active_session_count", "%u", (v->icmp_client_rx_session ? 1u : 0u) + (v->icmp_up_tx_session ? 1u : 0u));
	kv_add(k, "icmp_client_transmit_session_id", "%s", u64_or_null(v->icmp_client_tx_session, b1, sizeof(b1)));
	kv_add(k, "icmp_client_receive_session_id", "%s", u64_or_null(v->icmp_client_rx_session, b1, sizeof(b1)));
	kv_add(k, "icmp_upstream_transmit_session_id", "%s", u64_or_null(v->icmp_up_tx_session, b1, sizeof(b1)));
	kv_add(k, "icmp_upstream_receive_session_id", "%s", u64_or_null(v->icmp_up_rx_session, b2, sizeof(b2)));
	kv_add(k, "icmp_negotiated_ready_session_count", "%u", v->icmp_ready_sessions);
	kv_add(k, "icmp_negotiating_session_count", "%u", v->icmp_negotiating_sessions);
	kv_add(k, "icmp_draining_session_count", "%u", v->icmp_draining_sessions);
	kv_add(k, "icmp_session_pool_target", "%u", (c->here.proto == PK_ICMP || c->there.proto == PK_ICMP) ? c->pool_size : 0);
	kv_add(k, "icmp_candidate_retry_attempts", "%" PRIu64, v->icmp_retry_attempts);
	kv_add(k, "icmp_candidate_expirations", "0");
	kv_add(k, "icmp_candidate_negotiations_completed", "%" PRIu64, v->icmp_negotiations_completed);
	kv_add(k, "icmp_estimated_reserve_packets", "null");
	kv_add(k, "icmp_reserve_accounting_incomplete", "false");
	kv_add(k, "icmp_reserve_accounting_invariant_failure", "false");
	kv_add(k, "icmp_normal_session_handoffs", "%" PRIu64, v->icmp_handoffs);
	kv_add(k, "icmp_pool_empty_stalls", "%" PRIu64, v->icmp_pool_empty_stalls);
	kv_add(k, "icmp_stale_session_evictions", "0");
	kv_add(k, "icmp_sparse_retirement_exhaustions", "0");
	kv_add(k, "icmp_generation_rollovers", "0");
	kv_add(k, "icmp_maintenance_wake_failures", "0");
	kv_add(k, "icmp_reset_challenges_created", "%" PRIu64, v->icmp_challenges_created);
	kv_add(k, "icmp_reset_challenges_reused", "%" PRIu64, v->icmp_challenges_reused);
	kv_add(k, "icmp_reset_challenges_consumed", "%" PRIu64, v->icmp_challenges_consumed);
	kv_add(k, "icmp_reset_challenges_expired", "0");
	kv_add(k, "icmp_reset_responses_rate_limited", "%" PRIu64, v->icmp_resets_rate_limited);
	kv_add(k, "icmp_reset_responses_accepted", "%" PRIu64, v->icmp_resets_accepted);
	kv_add(k, "icmp_reset_responses_ignored", "%" PRIu64, v->icmp_resets_ignored);
	kv_add(k, "icmp_candidate_negotiation_latency_ns_total", "\"0\"");
	kv_add(k, "icmp_candidate_negotiation_latency_ns_average", "null");
}

static void pk_stats_line(struct single *s, const struct pk_config *c, uint64_t uptime_s,
			  struct pk_ewma ew[2])
{
	struct single_stats st;
	struct kvs k = { 0 };
	char *flows = NULL, *line = NULL;
	size_t flows_len = 0, line_len = 0;
	unsigned locked = 0, i;
	FILE *fl;

	single_stats_sum(s, &st);
	fl = open_memstream(&flows, &flows_len);
	if (!fl)
		return;
	fputc('[', fl);
	for (i = 0; i < single_pairs(s); i++) {
		struct kvs fk = { 0 };
		struct single_pair_view v;
		single_pair_view(s, i, &v);
		locked += v.locked;
		kv_flow(&fk, &v, i, c);
		if (i)
			fputc(',', fl);
		kv_print(&fk, fl);
	}
	fputc(']', fl);
	fclose(fl);

	kv_add(&k, "stats_schema", "3");
	kv_add(&k, "diagnostic_schema", "3");
	kv_add(&k, "diagnostic_sequence", "%" PRIu64, single_diag_next());
	kv_add(&k, "stats_final_flush_incomplete", "false");
	kv_add(&k, "stats_accounting_overflowed", "false");
	kv_add(&k, "uptime_s", "%" PRIu64, uptime_s);
	kv_add(&k, "locked", "%s", locked ? "true" : "false");
	kv_add(&k, "locked_worker_pairs", "%u", locked);
	kv_dir(&k, "c2u", &st.c2u, &ew[0]);
	kv_dir(&k, "u2c", &st.u2c, &ew[1]);
	for (i = 0; i < SC_COUNT; i++)
		kv_add(&k, single_ctr_names[i], "%" PRIu64, st.ctr[i]);
	kv_add(&k, "worker_flows", "%s", flows ? flows : "[]");
	free(flows);
	fl = open_memstream(&line, &line_len);
	if (!fl)
		return;
	kv_print(&k, fl);
	fclose(fl);
	/* straight to the sink: log_msg() would cut the line at its 1 KiB buffer */
	pk_log_sink(LOG_INFO, line);
	free(line);
}

/* ---------------- start-up ---------------- */

static void pk_describe_line(const char *text, void *arg)
{
	(void)arg;
	log_info("%s", text);
}

static int pk_drop_privileges(const struct pk_config *c)
{
	char err[256];

	if (geteuid() != 0) {
		if (c->user || c->group)
			log_warn("--user/--group specified but process is not running as root; ignoring");
		return 0;
	}
	if (!c->user) {
		fprintf(stderr, "Error: must specify --user when running as root\n");
		return -EPERM;
	}
	if (privdrop(c->user, c->group, err, sizeof(err))) {
		fprintf(stderr, "Error: %s\n", err);
		return -EPERM;
	}
	log_info("Dropped privileges to user '%s' (uid=%u, gid=%u)", c->user, (unsigned)getuid(), (unsigned)getgid());
	return 0;
}

/* Re-resolves the upstream name (§2.7); a changed address is applied to every pair. */
static void pk_reresolve(struct single *s, const struct pk_config *c)
{
	struct pk_config fresh = *c;
	char err[256];

	if (c->reresolve_mode == PK_RERESOLVE_NONE)
		return;
	if (pk_args_resolve_again(&fresh, err, sizeof(err))) {
		log_warn("re-resolve failed: %s", err);
		return;
	}
	if (c->reresolve_mode != PK_RERESOLVE_LISTEN) {
		struct single_side there;
		pk_side(&fresh.there, &there);
		if (single_set_upstream(s, &there.addr) == 1)
			log_info("Re-resolved upstream %s to a new address; upstream sockets reconnected", c->there.host);
	}
	if (c->reresolve_mode != PK_RERESOLVE_UPSTREAM &&
	    memcmp(&fresh.here.addr, &c->here.addr, sizeof(fresh.here.addr)))
		log_warn("listener host %s now resolves elsewhere; ferry keeps the socket it bound at start",
			 c->here.host);
}

int pk_main(int argc, char **argv)
{
	struct pk_config c;
	struct single_opts o;
	struct single *s;
	char err[512];
	sigset_t sigs;
	int sfd, rc = 0;

	switch (pk_args_parse(argc, argv, &c, err, sizeof(err))) {
	case PK_PARSE_OK:
		break;
	case PK_PARSE_HELP:
		pk_args_usage(stderr, argv[0]);
		return 0;
	case PK_PARSE_USAGE_ERROR:
		fprintf(stderr, "[ERROR] %s\n", err);
		pk_args_usage(stderr, argv[0]);
		return 2;
	case PK_PARSE_RESOLVE_ERROR:
		fprintf(stderr, "[ERROR] %s\n", err);
		return 2;
	}
	log_setup(c.debug_log ? LOG_DEBUG : LOG_INFO, 0);
	log_set_sink(pk_log_sink);
	signal(SIGPIPE, SIG_IGN);
	pk_opts(&c, &o);
	if (single_open(&o, &s, err, sizeof(err))) {
		fprintf(stderr, "Error: %s\n", err);
		return 1;
	}
	if (pk_drop_privileges(&c)) {
		single_free(s);
		return 1;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || single_start(s)) {
		fprintf(stderr, "Error: cannot start worker threads: %s\n", strerror(errno));
		single_free(s);
		return 1;
	}
	single_describe(s, pk_describe_line, NULL);
	log_info("Re-resolve every: %" PRIu64 "s (0=disabled)", c.reresolve_secs);

	uint64_t start = clock_now_ms();
	uint64_t stats_ms = c.debug_fast_stats ? 1000 : (uint64_t)c.stats_interval_mins * 60000;
	uint64_t next_stats = stats_ms ? start + stats_ms : UINT64_MAX;
	uint64_t next_resolve = c.reresolve_secs ? start + c.reresolve_secs * 1000 : UINT64_MAX;
	struct pk_ewma ew[2] = { 0 };
	struct pollfd pf[2] = { { sfd, POLLIN, 0 }, { single_exit_fd(s), POLLIN, 0 } };

	for (;;) {
		uint64_t now = clock_now_ms();
		uint64_t wake = next_stats < next_resolve ? next_stats : next_resolve;
		int wait = wake == UINT64_MAX ? -1 : wake <= now ? 0 : (int)MIN(wake - now, 60000u);
		if (poll(pf, 2, wait) < 0 && errno != EINTR)
			break;
		now = clock_now_ms();
		if (pf[0].revents) {
			rc = PK_EXIT_SIGNAL;
			break;
		}
		if (pf[1].revents) {
			rc = 0;
			break;
		}
		if (now >= next_stats) {
			pk_stats_line(s, &c, (now - start) / 1000, ew);
			next_stats += stats_ms;
		}
		if (now >= next_resolve) {
			pk_reresolve(s, &c);
			next_resolve = now + c.reresolve_secs * 1000;
		}
	}
	single_stop(s);
	log_info("Exiting, uptime %" PRIu64 " seconds", (clock_now_ms() - start) / 1000);
	if (stats_ms)
		pk_stats_line(s, &c, (clock_now_ms() - start) / 1000, ew);
	single_free(s);
	close(sfd);
	return rc;
}
