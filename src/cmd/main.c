/*
 * ferry's entry point: pick the dialect from argv[0], parse, bind every rule's listeners,
 * then (daemon, pidfile, privilege drop) start the workers and run the control loop:
 * signals (exit, reload, stats) and the periodic stats line. The only place that exits.
 */
#include <errno.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/pk_args.h"
#include "cmd/pk_main.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "os/daemon.h"
#include "os/pidfile.h"
#include "os/syslog.h"
#include "relay/kcp.h"
#include "relay/worker.h"

#define EXIT_USAGE 2
#define EXIT_START 1
/* A changed rule rebinds a port its old version is still closing: wait up to 0.5 s. */
#define RELOAD_BIND_TRIES 50
#define RELOAD_BIND_WAIT_US 10000

static const char usage_ferry[] =
"usage: ferry [options] tcp://LISTEN_HOST:PORT tcp://TARGET_HOST:PORT\n"
"       ferry [options] udp://LISTEN_HOST:PORT udp://TARGET_HOST:PORT\n"
"       ferry [options] tcp://LISTEN_HOST:PORT kcp://SERVER:PORT --psk-file KEY   (KCP tunnel client)\n"
"       ferry [options] kcp://LISTEN_HOST:PORT tcp://TARGET_HOST:PORT --psk-file KEY (KCP tunnel server)\n"
"       ferry [options] -c FILE        (one rule per line: LISTEN TARGET [rule options])\n"
"       tcpfwd [-d] [-p PIDFILE] [-b] [-r] [-R] [-6] LOCAL_ADDR:PORT DEST_ADDR:PORT\n"
"       udpfwd LOCAL_ADDR:PORT DEST_ADDR:PORT [-t SECS] [-d] [-o] [-r] [-R] [-H SIZE] [-p PIDFILE]\n"
"       kcptcp-client [-d] [-p PIDFILE] [-r] [-R] [-6] [-S BYTES] [-M MTU] [-K HEX] LOCAL_TCP REMOTE_UDP\n"
"       kcptcp-server [same options] LOCAL_UDP TARGET_TCP\n"
"       ferry --here UDP|ICMP:HOST:ID --there UDP|ICMP:HOST:ID [pkthere options]\n"
"             (pkthere's single-client forwarder and ICMP tunnel; `ferry --help --here` lists its options)\n"
"\n"
"A fast L4 forwarder. IPv6 addresses go in brackets: tcp://[::]:80.\n"
"\n"
"Global options:\n"
"  -c, --config FILE        rules from FILE; SIGHUP reloads it\n"
"  -d, --daemon             run in the background\n"
"  -p, --pidfile FILE       write the pid to FILE (exclusive; a stale file is replaced)\n"
"      --user USER          drop to USER after binding\n"
"      --group GROUP        drop to GROUP after binding (default: USER's group)\n"
"      --workers N          worker threads, each with its own listeners (default: CPUs)\n"
"      --log-level LEVEL    error, warn, info (default) or debug\n"
"      --log-format FORMAT  text (default) or json, on stderr\n"
"      --stats-interval S   print a JSON stats line on stdout every S seconds (SIGUSR1: now)\n"
"      --drain-timeout S    on SIGTERM/SIGINT, let connections finish for S seconds (default 0)\n"
"  -h, --help               this text\n"
"  -V, --version            print the version\n"
"\n"
"Rule options (on the command line: for every rule; in a config line: for that rule):\n"
"      --connect-timeout S  upstream connect timeout per address (default 10)\n"
"      --idle-timeout S     close connections idle for S seconds (default 0 = never)\n"
"      --max-conns N        open connections allowed; more are accepted and closed (65536)\n"
"      --sndbuf BYTES       SO_SNDBUF on both sockets\n"
"      --rcvbuf BYTES       SO_RCVBUF on both sockets\n"
"      --keepalive-idle S   TCP keepalive idle time (default 60)\n"
"      --keepalive-intvl S  TCP keepalive interval (default 10)\n"
"      --keepalive-cnt N    TCP keepalive probes (default 6)\n"
"      --no-keepalive       no TCP keepalive\n"
"  -r, --reuseaddr          SO_REUSEADDR on the listener (always on for TCP)\n"
"  -R, --reuseport          SO_REUSEPORT on the listener (implied by --workers > 1)\n"
"  -6, --v6only             IPV6_V6ONLY on an IPv6 listener\n"
"  -b, --base-addr          target address = target + (original dst port - listen port),\n"
"                           for a port range redirected by nft (portfwd's tcpfwd -b)\n"
"      --no-splice          copy through a buffer instead of splice()\n"
"\n"
"UDP rule options (a session per client address, its own upstream socket):\n"
"  -t, --udp-timeout S      close a session idle for S seconds (default 60)\n"
"      --max-sessions N     sessions per rule; then the least recently active goes (65536)\n"
"  -H, --hash-size N        initial session hash buckets (default: grows as needed)\n"
"      --max-datagram BYTES drop (and count) larger datagrams (default: none are too big)\n"
"\n"
"KCP rule options (tcp:// <-> kcp://: TCP connections as streams in KCP sessions over UDP):\n"
"      --psk-file FILE      32-byte pre-shared key as 64 hex characters: ferry's secure mode\n"
"  -K, --psk HEX            the same key on the command line (portfwd's -K)\n"
"      --secure             insist on secure mode (needs a key)\n"
"      --insecure           allow plain KCP (no key) on a non-loopback address\n"
"      --mode MODE          normal, fast, fast2, fast3 (ferry default) or manual\n"
"      --nodelay N --interval MS --resend N --nc 0|1   manual KCP tuning\n"
"      --mtu BYTES          largest UDP payload (default 1350)\n"
"      --sndwnd N --rcvwnd N  KCP windows in segments (ferry: 1024/1024)\n"
"      --sockbuf BYTES      UDP socket buffers (default 4 MiB)\n"
"      --keepalive S        smux keepalive interval (default 10; a session with no frame for 30 s ends)\n"
"      --streambuf BYTES    per-stream receive window and buffer (default 1 MiB)\n"
"      --max-streams N      streams per session (default 65536); --max-sessions limits sessions\n"
"      --secure-rekey-time S --secure-rekey-packets N --secure-max-skew S   secure mode tuning\n"
"      --kcp-profile kcptun talk to kcptun (client or server); kcptun's own option names:\n"
"      --key K --crypt aes|aes-128|aes-192|salsa20|xor|none --nocomp --datashard N --parityshard N\n"
"      --smuxver 1|2 --acknodelay (kcptun modes are NOT authenticated: obfuscation only)\n"
"\n"
"Signals: TERM/INT/QUIT exit, HUP reloads -c FILE, USR1 prints stats.\n"
"Exit status: 0 clean exit, 1 start-up failure, 2 usage or config error.\n";

struct ferry {
	struct global_opts g;
	struct rule_opts ro;	/* rule options given on the command line */
	enum args_dialect dia;
	struct rule **rules;
	size_t nrules;
	unsigned next_rule_id;
	unsigned nworkers;
	struct worker *workers;
	struct loop *loop;
	struct io sig;
	struct timer stats;
	bool stopping;
};

static unsigned cpu_count(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && (n = CPU_COUNT(&set)) > 0)
		return (unsigned)n;
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static void die_usage(const char *msg)
{
	fprintf(stderr, "ferry: %s\n", msg);
	exit(EXIT_USAGE);
}

/* ---- rules: resolve, bind per worker, hand to workers ---- */

static int rule_prepare(struct ferry *f, struct rule *r, char *err, size_t errlen)
{
	char d[sizeof(r->desc)];
	int rc;

	rc = rule_resolve(r, err, errlen);
	if (rc)
		return rc;
	rc = kcp_rule_check(r, err, errlen);
	if (rc)
		return rc;
	rc = rule_alloc_stats(r, f->nworkers);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	r->id = ++f->next_rule_id;
	snprintf(d, sizeof(d), "rule %u %s", r->id, r->desc);
	memcpy(r->desc, d, sizeof(d));
	kcp_rule_announce(r);
	return 0;
}

static int rule_listen_socket(const struct rule *r, const struct sockaddr *sa, const struct sock_opts *so)
{
	if (r->listen.scheme != EP_TCP)
		return sock_udp_bind(sa, so);
	return sock_tcp_listen(sa, so, RULE_BACKLOG);
}

static void report_bind_error(const struct rule *r, const struct sockaddr *sa, int rc, char *err, size_t errlen)
{
	char a[64];

	sockaddr_format(sa, a, sizeof(a));
	snprintf(err, errlen, "%s: listen on %s: %s", r->desc, a, strerror(-rc));
}

/* Opens one listener per worker; on success fds[] holds them. */
static int rule_bind(struct ferry *f, struct rule *r, int *fds, char *err, size_t errlen)
{
	struct sock_opts so = r->o.sock;
	const struct sockaddr *sa = (const struct sockaddr *)&r->listen.addrs[0];

	if (f->nworkers > 1 && !so.reuseport) {
		/* Several workers need SO_REUSEPORT, which would also let a second ferry share
		 * the port silently: first make sure nobody holds it (-R says sharing is wanted). */
		int probe = rule_listen_socket(r, sa, &so);

		if (probe < 0) {
			report_bind_error(r, sa, probe, err, errlen);
			return probe;
		}
		close(probe);
		so.reuseport = true;
	}
	for (unsigned w = 0; w < f->nworkers; w++) {
		fds[w] = rule_listen_socket(r, sa, &so);
		if (fds[w] < 0) {
			int rc = fds[w];

			report_bind_error(r, sa, rc, err, errlen);
			while (w--)
				close(fds[w]);
			return rc;
		}
	}
	return 0;
}

static void rule_dispatch(struct ferry *f, struct rule *r, int *fds)
{
	for (unsigned w = 0; w < f->nworkers; w++) {
		struct worker_cmd *c = calloc(1, sizeof(*c));

		if (!c) {
			log_error("%s: out of memory starting worker %u", r->desc, w);
			close(fds[w]);
			continue;
		}
		c->type = WCMD_ADD_LISTENER;
		c->rule = r;
		c->fd = fds[w];
		rule_ref(r);
		worker_send(&f->workers[w], c);
	}
	log_info("%s: listening", r->desc);
}

static void rule_retire(struct ferry *f, struct rule *r)
{
	for (unsigned w = 0; w < f->nworkers; w++) {
		struct worker_cmd *c = calloc(1, sizeof(*c));

		if (!c)
			continue;
		c->type = WCMD_DEL_RULE;
		c->rule = r;
		rule_ref(r);
		worker_send(&f->workers[w], c);
	}
	log_info("%s: removed; %s", r->desc,
		 r->listen.scheme != EP_TCP ? "its sessions are closed" : "open connections drain");
}

/* ---- stats ---- */

/* One rule's counters as a JSON object; UDP rules count sessions and datagrams. */
static void stats_rule(FILE *out, const struct rule *r)
{
	struct rule_stats s;
	char l[EP_TEXT_MAX], t[EP_TEXT_MAX];

	rule_stats_sum(r, &s);
	endpoint_format(&r->listen, l, sizeof(l));
	endpoint_format(&r->target, t, sizeof(t));
	fprintf(out, "{\"rule\":%u,\"listen\":\"%s\",\"target\":\"%s\",", r->id, l, t);
	if (r->listen.scheme == EP_UDP)
		fprintf(out, "\"sessions\":%llu,\"active\":%llu,\"expired\":%llu,\"evicted\":%llu,"
			"\"dgrams_up\":%llu,\"dgrams_down\":%llu,", (unsigned long long)s.accepted,
			(unsigned long long)(s.accepted - s.closed), (unsigned long long)s.sess_expired,
			(unsigned long long)s.sess_evicted, (unsigned long long)s.dgrams_up,
			(unsigned long long)s.dgrams_down);
	else
		fprintf(out, "\"accepted\":%llu,\"active\":%llu,\"failed\":%llu,", (unsigned long long)s.accepted,
			(unsigned long long)(s.accepted - s.closed), (unsigned long long)s.failed);
	if (r->listen.scheme == EP_KCP || r->target.scheme == EP_KCP)
		fprintf(out, "\"kcp\":{\"sessions\":%llu,\"active\":%llu,\"retrans\":%llu,\"fast_retrans\":%llu,"
			"\"lost\":%llu,\"out_segs\":%llu,\"loss_pct\":%.2f,\"srtt_ms\":%u,\"fec_recovered\":%llu},",
			(unsigned long long)s.kcp_sessions, (unsigned long long)(s.kcp_sessions - s.kcp_sessions_closed),
			(unsigned long long)s.kcp_retrans, (unsigned long long)s.kcp_fast_retrans,
			(unsigned long long)s.kcp_lost, (unsigned long long)s.kcp_out_segs,
			s.kcp_out_segs ? 100.0 * (double)s.kcp_retrans / (double)s.kcp_out_segs : 0.0, s.kcp_srtt_ms,
			(unsigned long long)s.kcp_fec_recovered);
	fprintf(out, "\"bytes_up\":%llu,\"bytes_down\":%llu,\"drops\":{", (unsigned long long)s.bytes_up,
		(unsigned long long)s.bytes_down);
	for (int d = 0; d < DROP__COUNT; d++)
		fprintf(out, "%s\"%s\":%llu", d ? "," : "", rule_drop_names[d], (unsigned long long)s.drops[d]);
	fputs("}}", out);
}

static void stats_print(struct ferry *f)
{
	struct timeval tv;
	char *line = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&line, &len);

	if (!out)
		return;
	gettimeofday(&tv, NULL);
	fprintf(out, "{\"type\":\"stats\",\"ts\":%ld.%03ld,\"rules\":[", (long)tv.tv_sec, (long)tv.tv_usec / 1000);
	for (size_t i = 0; i < f->nrules; i++) {
		if (i)
			fputc(',', out);
		stats_rule(out, f->rules[i]);
	}
	fputs("]}\n", out);
	if (fclose(out) == 0)
		fwrite(line, 1, len, stdout);
	free(line);
	fflush(stdout);
}

static void on_stats_timer(struct timer *t)
{
	struct ferry *f = container_of(t, struct ferry, stats);

	stats_print(f);
	timer_arm(f->loop, t, f->g.stats_interval_ms);
}

/* ---- reload ---- */

static struct rule *rules_find(struct rule **rules, size_t n, const char *canon)
{
	for (size_t i = 0; i < n; i++)
		if (rules[i] && !strcmp(rules[i]->canon, canon))
			return rules[i];
	return NULL;
}

static void reload(struct ferry *f)
{
	char err[ARGS_ERR_MAX];
	struct rule **next;
	size_t nnext;
	int **fds;
	int rc;

	if (!f->g.config_path) {
		log_warn("SIGHUP: no config file (-c) to reload");
		return;
	}
	rc = config_load(f->g.config_path, &f->ro, &next, &nnext, err, sizeof(err));
	if (rc) {
		log_error("reload failed, keeping the running rules: %s", err);
		return;
	}
	fds = calloc(nnext, sizeof(*fds));
	if (!fds) {
		rules_free(next, nnext);
		return;
	}
	/* keep unchanged rules as they are (same object, same sockets, same connections) */
	for (size_t i = 0; i < nnext; i++) {
		struct rule *old = rules_find(f->rules, f->nrules, next[i]->canon);

		if (old) {
			rule_unref(next[i]);
			next[i] = old;
			rule_ref(old);
		}
	}
	/* stop rules that are gone first, so that a changed rule can rebind its port */
	for (size_t i = 0; i < f->nrules; i++)
		if (!rules_find(next, nnext, f->rules[i]->canon))
			rule_retire(f, f->rules[i]);
	for (size_t i = 0; i < nnext; i++) {
		struct rule *r = next[i];

		if (r->id)
			continue;
		fds[i] = calloc(f->nworkers, sizeof(int));
		rc = fds[i] ? rule_prepare(f, r, err, sizeof(err)) : -ENOMEM;
		/* the old listener may still be open in a worker for a moment: retry briefly */
		for (int tries = 0; rc == 0; tries++) {
			rc = rule_bind(f, r, fds[i], err, sizeof(err));
			if (rc != -EADDRINUSE || tries == RELOAD_BIND_TRIES)
				break;
			rc = 0;
			usleep(RELOAD_BIND_WAIT_US);
		}
		if (rc) {
			log_error("reload: %s", err);
			free(fds[i]);
			fds[i] = NULL;
			continue;
		}
		rule_dispatch(f, r, fds[i]);
	}
	/* rules that failed to start are dropped from the set */
	size_t kept = 0;

	for (size_t i = 0; i < nnext; i++) {
		if (next[i]->id && (fds[i] || rules_find(f->rules, f->nrules, next[i]->canon)))
			next[kept++] = next[i];
		else
			rule_unref(next[i]);
		free(fds[i]);
	}
	free(fds);
	rules_free(f->rules, f->nrules);
	f->rules = next;
	f->nrules = kept;
	log_info("reloaded %s: %zu rules", f->g.config_path, kept);
}

/* ---- shutdown ---- */

static void workers_stop(struct ferry *f, uint32_t drain_ms)
{
	for (unsigned w = 0; w < f->nworkers; w++) {
		struct worker_cmd *c = calloc(1, sizeof(*c));

		if (c) {
			c->type = WCMD_STOP;
			c->drain_ms = drain_ms;
			worker_send(&f->workers[w], c);
		}
	}
}

static bool workers_finished(const struct ferry *f)
{
	for (unsigned w = 0; w < f->nworkers; w++)
		if (!__atomic_load_n(&f->workers[w].finished, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

/* Stop accepting, let connections drain; a second signal ends the drain at once. */
static void shutdown_workers(struct ferry *f)
{
	f->stopping = true;
	workers_stop(f, f->g.drain_ms);
	while (!workers_finished(f))
		loop_once(f->loop, 50);
	for (unsigned w = 0; w < f->nworkers; w++) {
		worker_join(&f->workers[w]);
		worker_destroy(&f->workers[w]);
	}
}

/* ---- signals ---- */

static void on_signal(struct io *io, uint32_t events)
{
	struct ferry *f = container_of(io, struct ferry, sig);
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			if (f->stopping)
				log_info("SIGHUP while shutting down: ignored");
			else
				reload(f);
			break;
		case SIGUSR1:
			stats_print(f);
			break;
		default:
			if (f->stopping) {
				log_info("signal %d again: closing connections now", (int)si.ssi_signo);
				workers_stop(f, 0);
				break;
			}
			log_info("signal %d: shutting down", (int)si.ssi_signo);
			loop_stop(f->loop);
			return;
		}
	}
}

static int signals_setup(struct ferry *f, sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	/* blocked before any thread starts, so that workers inherit the mask */
	if (pthread_sigmask(SIG_BLOCK, set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	f->sig.fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (f->sig.fd < 0)
		return -errno;
	f->sig.cb = on_signal;
	return loop_add(f->loop, &f->sig, EPOLLIN);
}

/* ---- start-up ---- */

/* -d changes to "/": paths given relative to the start directory must not move with it. */
static void make_absolute(const char **path)
{
	char cwd[4096], *abs;

	if (!*path || (*path)[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return;
	if (asprintf(&abs, "%s/%s", cwd, *path) > 0)
		*path = abs;	/* lives as long as the process */
}

static void parse_or_die(struct ferry *f, int argc, char **argv)
{
	char err[ARGS_ERR_MAX];
	struct args_result res;
	const char *prog = basename(argv[0]);

	global_opts_default(&f->g);
	rule_opts_default(&f->ro);
	f->dia = ARGS_FERRY;
	if (!strcmp(prog, "tcpfwd"))
		f->dia = ARGS_TCPFWD;
	else if (!strcmp(prog, "udpfwd"))
		f->dia = ARGS_UDPFWD;
	else if (!strcmp(prog, "kcptcp-client"))
		f->dia = ARGS_KCPTCP_CLIENT;
	else if (!strcmp(prog, "kcptcp-server"))
		f->dia = ARGS_KCPTCP_SERVER;
	if (args_parse(f->dia, argc - 1, argv + 1, &f->g, &f->ro, &res, err, sizeof(err)))
		die_usage(err);
	if (f->g.help) {
		fputs(usage_ferry, stdout);
		exit(0);
	}
	if (f->g.version) {
		printf("ferry %s\n", FERRY_VERSION);
		exit(0);
	}
	make_absolute(&f->g.config_path);
	make_absolute(&f->g.pidfile);
	if (f->g.config_path) {
		if (res.npos)
			die_usage("give either a rule (LISTEN TARGET) or -c FILE, not both");
		if (config_load(f->g.config_path, &f->ro, &f->rules, &f->nrules, err, sizeof(err)))
			die_usage(err);
		return;
	}
	if (res.npos == 0)
		die_usage("missing rule: ferry [options] tcp://LISTEN_HOST:PORT tcp://TARGET_HOST:PORT (see --help)");
	if (res.npos == 1) {
		snprintf(err, sizeof(err), "missing target after \"%s\": a rule is LISTEN TARGET", res.pos[0]);
		die_usage(err);
	}
	f->rules = calloc(1, sizeof(*f->rules));
	if (!f->rules)
		die_usage("out of memory");
	f->nrules = 1;
	if (rule_build(f->dia, res.pos[0], res.pos[1], &f->ro, &f->rules[0], err, sizeof(err)))
		die_usage(err);
}

int main(int argc, char **argv)
{
	struct ferry f = { 0 };
	char err[ARGS_ERR_MAX];
	int **fds;
	sigset_t sigs;
	int rc;

	if (pk_args_wanted(argc, argv))
		return pk_main(argc, argv);
	parse_or_die(&f, argc, argv);
	log_setup(f.g.log_level, f.g.log_json);
	f.nworkers = f.g.workers ? f.g.workers : cpu_count();

	/* resolve everything first: a bad name is a usage error (exit 2) */
	for (size_t i = 0; i < f.nrules; i++)
		if (rule_prepare(&f, f.rules[i], err, sizeof(err)))
			die_usage(err);
	/* refuse early, before binding anything, when another instance owns the pidfile */
	if (f.g.pidfile) {
		pid_t owner;

		if (pidfile_read(f.g.pidfile, &owner) == 0 && owner != getpid() &&
		    (kill(owner, 0) == 0 || errno == EPERM)) {
			fprintf(stderr, "ferry: pidfile %s: already running as pid %ld\n", f.g.pidfile, (long)owner);
			return EXIT_START;
		}
	}
	fds = calloc(f.nrules, sizeof(*fds));
	for (size_t i = 0; fds && i < f.nrules; i++) {
		fds[i] = calloc(f.nworkers, sizeof(int));
		if (!fds[i] || rule_bind(&f, f.rules[i], fds[i], err, sizeof(err))) {
			fprintf(stderr, "ferry: %s\n", fds[i] ? err : "out of memory");
			return EXIT_START;
		}
	}
	if (!fds) {
		fprintf(stderr, "ferry: out of memory\n");
		return EXIT_START;
	}
	if (f.g.daemonize && (rc = daemon_start())) {
		fprintf(stderr, "ferry: daemonize: %s\n", strerror(-rc));
		return EXIT_START;
	}
	if (f.g.pidfile) {
		pid_t owner = 0;

		rc = pidfile_create(f.g.pidfile, &owner);
		if (rc == -EEXIST) {
			fprintf(stderr, "ferry: pidfile %s: already running as pid %ld\n", f.g.pidfile, (long)owner);
			return EXIT_START;
		}
		if (rc) {
			fprintf(stderr, "ferry: pidfile %s: %s\n", f.g.pidfile, strerror(-rc));
			return EXIT_START;
		}
	}
	if ((f.g.user || f.g.group) && privdrop(f.g.user, f.g.group, err, sizeof(err))) {
		fprintf(stderr, "ferry: privilege drop: %s\n", err);
		goto fail_pidfile;
	}
	if ((rc = loop_new(&f.loop)) || (rc = signals_setup(&f, &sigs))) {
		fprintf(stderr, "ferry: start-up: %s\n", strerror(-rc));
		goto fail_pidfile;
	}
	f.workers = calloc(f.nworkers, sizeof(*f.workers));
	for (unsigned w = 0; f.workers && w < f.nworkers; w++) {
		rc = worker_init(&f.workers[w], w);
		if (!rc)
			rc = worker_start(&f.workers[w]);
		if (rc) {
			fprintf(stderr, "ferry: worker %u: %s\n", w, strerror(-rc));
			goto fail_pidfile;
		}
	}
	if (!f.workers)
		goto fail_pidfile;
	for (size_t i = 0; i < f.nrules; i++) {
		rule_dispatch(&f, f.rules[i], fds[i]);
		free(fds[i]);
	}
	free(fds);
	timer_init(&f.stats, on_stats_timer);
	if (f.g.stats_interval_ms)
		timer_arm(f.loop, &f.stats, f.g.stats_interval_ms);
	log_info("ferry %s: %zu rule%s, %u worker%s", FERRY_VERSION, f.nrules, f.nrules == 1 ? "" : "s",
		 f.nworkers, f.nworkers == 1 ? "" : "s");
	daemon_ready(0);
	if (f.g.daemonize)
		syslog_start();

	rc = loop_run(f.loop);
	if (rc)
		log_error("control loop: %s", strerror(-rc));
	shutdown_workers(&f);
	free(f.workers);
	rules_free(f.rules, f.nrules);
	close(f.sig.fd);
	loop_free(f.loop);
	if (f.g.pidfile && (rc = pidfile_remove(f.g.pidfile)))
		log_warn("pidfile %s: not removed: %s", f.g.pidfile, strerror(-rc));
	return 0;

fail_pidfile:
	if (f.g.pidfile)
		pidfile_remove(f.g.pidfile);
	return EXIT_START;
}
