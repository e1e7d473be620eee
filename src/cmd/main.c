/*
 * ferry's entry point: pick the dialect from argv[0], parse, take the sockets systemd hands
 * over, bind every other rule's listeners, then (daemon, pidfile, privilege drop) start the
 * workers and run the control loop: signals (exit, reload, stats), the periodic stats line,
 * and what the service manager is told (READY, STATUS, watchdog). The only place that exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <unistd.h>

#include "cmd/activate.h"
#include "cmd/args.h"
#include "cmd/kcptun_args.h"
#include "cmd/pk_args.h"
#include "cmd/pk_main.h"
#include "cmd/single_rule.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "os/daemon.h"
#include "os/pidfile.h"
#include "os/syslog.h"
#include "os/systemd.h"
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
"       ferry [options] udp://LISTEN_HOST:PORT icmp://SERVER[:ID[:REPLY_ID]]   (ICMP tunnel client)\n"
"       ferry [options] icmp://LISTEN_HOST[:ID[:REPLY_ID]] udp://TARGET_HOST:PORT (ICMP tunnel server)\n"
"       ferry [options] -c FILE        (one rule per line: LISTEN TARGET [rule options])\n"
"       ferry [options] --systemd TARGET...   (socket activation: one target per inherited socket)\n"
"       ferry [options] fd://NAME udp://TARGET_HOST:PORT   (the inherited sockets named NAME)\n"
"       tcpfwd [-d] [-p PIDFILE] [-b] [-r] [-R] [-6] LOCAL_ADDR:PORT DEST_ADDR:PORT\n"
"       udpfwd LOCAL_ADDR:PORT DEST_ADDR:PORT [-t SECS] [-d] [-o] [-r] [-R] [-H SIZE] [-p PIDFILE]\n"
"       kcptcp-client [-d] [-p PIDFILE] [-r] [-R] [-6] [-S BYTES] [-M MTU] [-K HEX] LOCAL_TCP REMOTE_UDP\n"
"       kcptcp-server [same options] LOCAL_UDP TARGET_TCP\n"
"       kcptun-client -l LOCAL -r SERVER [kcptun options] | -c FILE.json   (kcptun-client -h lists them)\n"
"       kcptun-server -l LISTEN -t TARGET [kcptun options] | -c FILE.json  (kcptun-server -h lists them)\n"
"       ferry --here UDP|ICMP:HOST:ID --there UDP|ICMP:HOST:ID [pkthere options]\n"
"             (pkthere's single-client forwarder and ICMP tunnel; `ferry --help --here` lists its options)\n"
"\n"
"A fast L4 forwarder. IPv6 addresses go in brackets: tcp://[::]:80. An inherited socket\n"
"(systemd socket activation) is fd://NAME (its FileDescriptorName=) or fd://N.\n"
"\n"
"Global options:\n"
"  -c, --config FILE        rules from FILE; SIGHUP reloads it\n"
"  -d, --daemon             run in the background\n"
"  -p, --pidfile FILE       write the pid to FILE (exclusive; a stale file is replaced)\n"
"      --user USER          drop to USER after binding\n"
"      --group GROUP        drop to GROUP after binding (default: USER's group)\n"
"      --workers N          worker threads, each with its own listeners (default: CPUs)\n"
"      --busy-poll USEC     after activity a worker polls without sleeping this long: lower\n"
"                           latency for request/response traffic, for CPU time (default 0 = off)\n"
"      --log-level LEVEL    error, warn, info (default) or debug\n"
"      --log-format FORMAT  text (default) or json, on stderr\n"
"      --stats-interval S   print a JSON stats line on stdout every S seconds (SIGUSR1: now)\n"
"      --drain-timeout S    on SIGTERM/SIGINT, let connections finish for S seconds (default 0)\n"
"      --systemd            the arguments are targets, one per socket systemd hands over, in order:\n"
"                           HOST:PORT, [V6]:PORT or HOST (= the socket's port); a datagram socket\n"
"                           forwards UDP, a stream socket TCP\n"
"      --status-interval S  under systemd: STATUS= with counters every S seconds (default 10, 0 = off)\n"
"      --no-fdstore         under systemd: keep ferry's own listeners out of the fd store\n"
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
"Single-client rules (udp:// to udp:// with --single-client; every rule with an icmp:// endpoint):\n"
"      --single-client      lock to the first client; the next one locks after --idle-timeout\n"
"                           (default 10 s on these rules, 0 = never)\n"
"      --on-timeout drop|exit  when the client idles out: let the next lock (default), or end ferry (status 0)\n"
"      --icmp-sync-pps N    icmp:// target: cadence frames per second for unsolicited replies (default 0)\n"
"      --icmp-handshake-timeout S  ICMP tunnel handshake limit (default: the idle timeout, at most 3600)\n"
"      --max-payload BYTES  = --max-datagram (default: the largest datagram the rule can carry)\n"
"\n"
"Transparent forwarding (tcp:// and udp:// rules; needs CAP_NET_ADMIN and policy routing, see the manual):\n"
"      --transparent        the target sees the client's own address (IP_TRANSPARENT upstream)\n"
"      --tproxy             accept nft-TPROXY'd traffic; replies come from the original destination\n"
"\n"
"KCP rule options (tcp:// <-> kcp://: TCP connections as streams in KCP sessions over UDP):\n"
"      --psk-file FILE      32-byte pre-shared key as 64 hex characters: ferry's secure mode\n"
"  -K, --psk HEX            the same key on the command line (portfwd's -K)\n"
"      --secure             insist on secure mode (needs a key)\n"
"      --insecure           allow plain KCP (no key) on a non-loopback address\n"
"      --mode MODE          normal, fast, fast2, fast3 (ferry default) or manual\n"
"      --nodelay N --interval MS --resend N --nc 0|1   manual KCP tuning\n"
"      --kcp-cc rate|window|off  congestion control of what this end sends (ferry default: rate,\n"
"                           pacing by measured delivery rate; kcptun profile: kcp-go's, from --nc)\n"
"      --mtu BYTES          largest UDP payload (default 1350)\n"
"      --sndwnd N --rcvwnd N  KCP windows in segments (ferry: 1024/1024)\n"
"      --sockbuf BYTES      UDP socket buffers (default 4 MiB)\n"
"      --keepalive S        smux keepalive interval (default 10; a session with no frame for 30 s ends)\n"
"      --streambuf BYTES    per-stream receive window and buffer (default 4 MiB)\n"
"      --smuxbuf BYTES      all streams of a session together (default 8 MiB)\n"
"      --max-streams N      streams per session (default 65536); --max-sessions limits sessions\n"
"      --secure-rekey-time S --secure-rekey-packets N --secure-max-skew S   secure mode tuning\n"
"      --kcp-profile kcptun talk to kcptun (client or server); kcptun's own option names:\n"
"      --key K --crypt aes|aes-128|aes-192|salsa20|xor|none --nocomp --datashard N --parityshard N\n"
"      --smuxver 1|2 --acknodelay (kcptun modes are NOT authenticated: obfuscation only)\n"
"\n"
"Signals: TERM/INT/QUIT exit, HUP reloads -c FILE, USR1 prints stats.\n"
"Exit status: 0 clean exit, 1 start-up failure, 2 usage or config error.\n";

/* kcptun's own command lines (cmd/kcptun_args.c); the option list is kcptun's, in its order */
#define KCPTUN_USAGE_COMMON \
"      --key K           password the cipher key is derived from (default \"it's a secrect\", or $KCPTUN_KEY)\n" \
"      --crypt NAME      aes (default), aes-128, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea,\n" \
"                        xtea, sm4, xor, none: obfuscation only, NOT authenticated (ferry --psk-file is)\n" \
"      --mode MODE       fast3, fast2, fast (default), normal, manual\n"
#define KCPTUN_USAGE_TUNING \
"      --mtu N           largest UDP payload (default 1350)\n" \
"      --sndwnd N --rcvwnd N  KCP windows in packets (client 128/512, server 1024/1024)\n" \
"      --datashard N, --ds N  --parityshard N, --ps N   FEC (default 10 and 3; 0 = off)\n" \
"      --nocomp          no snappy compression\n" \
"      --sockbuf N       UDP socket buffers (default 4194304)\n" \
"      --smuxver 1|2     smux version (default 1)\n" \
"      --smuxbuf N --streambuf N  smux buffers (ferry's defaults: 8 MiB and 4 MiB)\n" \
"      --keepalive S     seconds between smux heartbeats (default 10)\n" \
"      --nodelay N --interval MS --resend N --nc 0|1   KCP tuning (--mode manual only)\n" \
"      --acknodelay      send ACKs at once\n" \
"      --log FILE        append what ferry logs to FILE instead of stderr\n" \
"      --dscp N --quiet --snmpperiod S   accepted, no effect\n" \
"      --tcp, --snmplog, --pprof   not supported by ferry (exit status 2)\n" \
"  -c FILE               kcptun's JSON config; its keys override the command line\n" \
"  -h, --help            this text\n" \
"  -v, --version         print the version\n" \
"Options are written -name or --name, with -name VALUE or -name=VALUE.\n" \
"Exit status: 0 clean exit, 1 start-up failure, 2 usage or config error.\n"

static const char usage_kcptun_client[] =
"usage: kcptun-client -l LOCAL -r SERVER [options]    (ferry: tcp://LOCAL -> kcp://SERVER, kcptun's wire format)\n"
"       kcptun-client -c client.json [options]\n"
"\n"
"ferry as a drop-in kcptun client: TCP connections to LOCAL become streams in a KCP session\n"
"to a kcptun (or ferry) server at SERVER. \":PORT\" listens on every address.\n"
"\n"
"  -l, --localaddr ADDR  local TCP listen address (default \":12948\")\n"
"  -r, --remoteaddr ADDR kcp server address HOST:PORT (required)\n"
KCPTUN_USAGE_COMMON
"      --conn N --autoexpire S --scavengettl S   accepted, no effect\n"
KCPTUN_USAGE_TUNING;

static const char usage_kcptun_server[] =
"usage: kcptun-server -l LISTEN -t TARGET [options]   (ferry: kcp://LISTEN -> tcp://TARGET, kcptun's wire format)\n"
"       kcptun-server -c server.json [options]\n"
"\n"
"ferry as a drop-in kcptun server: KCP sessions from kcptun (or ferry) clients arrive on UDP\n"
"LISTEN; each stream is connected to TARGET. \":PORT\" listens on every address.\n"
"\n"
"  -l, --listen ADDR     UDP listen address (default \":29900\")\n"
"  -t, --target ADDR     TCP target HOST:PORT (default \"127.0.0.1:12948\"; no unix sockets)\n"
KCPTUN_USAGE_COMMON
KCPTUN_USAGE_TUNING;

struct ferry {
	struct global_opts g;
	const char **targets;	/* --systemd T1 ... Tn: one per inherited socket */
	size_t ntargets;
	struct systemd_socks socks;	/* inherited; open for the whole run, rules get dup()s */
	bool fdstore;		/* own listeners go to systemd's fd store (kept across restarts) */
	struct timer status;	/* STATUS= to systemd */
	struct timer watchdog;	/* WATCHDOG=1, from this loop only: a stuck loop stops the pings */
	uint64_t watchdog_ms;
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
	systemd_notify_failure(EINVAL, msg);
	exit(EXIT_USAGE);
}

/* A start-up failure after parsing: one line, and the reason for systemd (exit status 1). */
static int start_failed(int err, const char *msg)
{
	fprintf(stderr, "ferry: %s\n", msg);
	systemd_notify_failure(err, msg);
	return EXIT_START;
}

/* ---- rules: resolve, bind per worker, hand to workers ---- */

/*
 * An inherited datagram socket is served by worker 0 alone: every datagram of a client must
 * reach the one worker that holds its session, and workers sharing one socket would each get
 * some of them. An inherited stream socket is shared (each connection stands alone).
 */
static unsigned rule_worker_count(const struct ferry *f, const struct rule *r)
{
	/* a single-client rule runs on its own pair thread: one set of counters (unused) */
	return rule_single(r) || (r->listen.scheme == EP_FD && rule_datagram(r)) ? 1 : f->nworkers;
}

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
	rc = rule_alloc_stats(r, rule_worker_count(f, r));
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

/* ---- inherited sockets (socket activation) and the fd store ---- */

/*
 * fd:// rules: every worker serving the rule gets its own dup() of the inherited socket. The
 * original stays open for the whole run, so a rule that is removed closes only its copies
 * (systemd's socket keeps its port) and a reload can serve the socket again.
 */
static int rule_dup_inherited(const struct rule *r, int *fds, char *err, size_t errlen)
{
	int fd = r->listen.fd, accepting = 0;
	socklen_t len = sizeof(accepting);

	/* a bound stream socket that nobody put into listening state yet (systemd always does) */
	if (r->listen.fd_type == SOCK_STREAM && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 &&
	    !accepting && listen(fd, RULE_BACKLOG)) {
		int rc = -errno;

		snprintf(err, errlen, "%s: listen on inherited fd %d: %s", r->desc, fd, strerror(-rc));
		return rc;
	}
	for (unsigned w = 0; w < r->nworkers; w++) {
		fds[w] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (fds[w] < 0) {
			int rc = -errno;

			snprintf(err, errlen, "%s: dup of inherited fd %d: %s", r->desc, fd, strerror(-rc));
			while (w--)
				close(fds[w]);
			return rc;
		}
	}
	return 0;
}

/*
 * A rule's own listeners kept by systemd across a restart come back as inherited fds named
 * after the rule: take them instead of binding (the port never closes, queued datagrams and
 * connections are not lost). Only a full set (one per worker) is taken.
 */
static bool rule_adopt_stored(struct ferry *f, struct rule *r, int *fds)
{
	char name[SYSTEMD_STORE_NAME_MAX];
	unsigned n = 0;

	if (r->listen.scheme == EP_FD)
		return false;
	systemd_store_name(r->canon, name, sizeof(name));
	for (size_t k = 0; k < f->socks.n; k++)
		n += f->socks.v[k].fd >= 0 && !strcmp(f->socks.v[k].name, name);
	if (!n || n != r->nworkers)
		return false;
	n = 0;
	for (size_t k = 0; k < f->socks.n; k++) {
		if (f->socks.v[k].fd >= 0 && !strcmp(f->socks.v[k].name, name)) {
			fds[n++] = f->socks.v[k].fd;
			f->socks.v[k].fd = -1;	/* the workers own it now */
		}
	}
	log_info("%s: %u listening socket%s kept by systemd across the restart (fd store %s)", r->desc, n,
		 n == 1 ? "" : "s", name);
	return true;
}

/* Hands the rule's own listeners to systemd's fd store (FileDescriptorStoreMax=). */
static void rule_store(const struct ferry *f, const struct rule *r, const int *fds)
{
	char name[SYSTEMD_STORE_NAME_MAX];
	int rc;

	if (!f->fdstore || r->listen.scheme == EP_FD)
		return;
	systemd_store_name(r->canon, name, sizeof(name));
	for (unsigned w = 0; w < r->nworkers; w++) {
		rc = systemd_fdstore_add(fds[w], name);
		if (rc) {
			log_warn("%s: fd store: %s", r->desc, strerror(-rc));
			return;
		}
	}
	log_debug("%s: listeners in the fd store as %s", r->desc, name);
}

static void rule_unstore(const struct ferry *f, const struct rule *r)
{
	char name[SYSTEMD_STORE_NAME_MAX];

	if (!f->fdstore || r->listen.scheme == EP_FD)
		return;
	systemd_store_name(r->canon, name, sizeof(name));
	systemd_fdstore_remove(name);
}

/*
 * Fd store entries that no rule takes whole (the rule changed or went away, or the number of
 * workers did): closed and removed from the store, so that their ports can be bound again.
 * Returns whether any went (the store lets go asynchronously: binds then retry briefly).
 */
static bool stored_drop_unused(struct ferry *f)
{
	bool dropped = false;

	for (size_t k = 0; k < f->socks.n; k++) {
		struct systemd_sock *sk = &f->socks.v[k];
		const struct rule *owner = NULL;
		char name[SYSTEMD_STORE_NAME_MAX];
		unsigned n = 0;

		if (sk->fd < 0 || !systemd_is_store_name(sk->name))
			continue;
		for (size_t i = 0; i < f->nrules && !owner; i++) {
			systemd_store_name(f->rules[i]->canon, name, sizeof(name));
			if (!strcmp(name, sk->name))
				owner = f->rules[i];
		}
		for (size_t j = 0; j < f->socks.n; j++)
			n += f->socks.v[j].fd >= 0 && !strcmp(f->socks.v[j].name, sk->name);
		if (owner && n == owner->nworkers)
			continue;
		log_info("fd store: %s (fd %d) is no rule's listener now: released", sk->name, sk->fd);
		if (systemd_notify_wanted())
			systemd_fdstore_remove(sk->name);
		systemd_sock_drop(&f->socks, k);
		dropped = true;
	}
	return dropped;
}

/*
 * Attaches the fd:// rules of a rule set to the inherited sockets; at start-up also warns
 * about sockets no rule takes (kept open: closing one would silently drop its port).
 */
static int rules_attach(struct ferry *f, struct rule ***rules, size_t *n, bool startup, char *err, size_t errlen)
{
	unsigned *used = calloc(f->socks.n ? f->socks.n : 1, sizeof(*used));
	char d[EP_TEXT_MAX + SYSTEMD_FDNAME_MAX];
	int rc;

	if (!used) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = activate_attach(&f->socks, used, rules, n, err, errlen);
	for (size_t k = 0; !rc && startup && k < f->socks.n; k++) {
		const struct systemd_sock *sk = &f->socks.v[k];

		if (used[k] || sk->fd < 0 || systemd_is_store_name(sk->name))
			continue;
		activate_sock_describe(sk, d, sizeof(d));
		log_warn("inherited %s: no rule uses it; kept open, its traffic is not forwarded", d);
	}
	free(used);
	return rc;
}

/* The rule's listeners, one per worker serving it: inherited, kept by the fd store, or bound. */
static int rule_open(struct ferry *f, struct rule *r, int *fds, int bind_tries, char *err, size_t errlen)
{
	int rc;

	if (rule_single(r))
		return single_rule_open(r, err, errlen);
	if (r->listen.scheme == EP_FD)
		return rule_dup_inherited(r, fds, err, errlen);
	if (rule_adopt_stored(f, r, fds))
		return 0;
	/* a port just given up (an old rule's listener, a store entry) may take a moment to free */
	for (int tries = 0;; tries++) {
		rc = rule_bind(f, r, fds, err, errlen);
		if (rc != -EADDRINUSE || tries >= bind_tries)
			break;
		usleep(RELOAD_BIND_WAIT_US);
	}
	if (!rc)
		rule_store(f, r, fds);
	return rc;
}

/* --on-timeout exit: the rule's client idled out, and ferry ends as after SIGTERM (status 0). */
static void on_single_exit(struct single_rule *sr)
{
	log_info("%s: idle timeout with --on-timeout exit: shutting down", sr->rule->desc);
	loop_stop(sr->loop);
}

static void rule_dispatch(struct ferry *f, struct rule *r, int *fds)
{
	if (rule_single(r)) {
		int rc = single_rule_start(r, f->loop, on_single_exit);

		if (rc) {
			log_error("%s: cannot start: %s", r->desc, strerror(-rc));
			single_rule_stop(r);
		}
		return;
	}
	for (unsigned w = 0; w < r->nworkers; w++) {
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
	if (rule_single(r)) {
		single_rule_stop(r);
		log_info("%s: removed; its client is let go", r->desc);
		return;
	}
	for (unsigned w = 0; w < f->nworkers; w++) {
		struct worker_cmd *c = calloc(1, sizeof(*c));

		if (!c)
			continue;
		c->type = WCMD_DEL_RULE;
		c->rule = r;
		rule_ref(r);
		worker_send(&f->workers[w], c);
	}
	rule_unstore(f, r);
	log_info("%s: removed; %s", r->desc, rule_datagram(r) || r->listen.scheme == EP_KCP ?
		 "its sessions are closed" : "open connections drain");
}

/* ---- stats ---- */

/* A single-client rule's counters live in its relay, every other rule's in the workers. */
static void rule_counters(const struct rule *r, struct rule_stats *s)
{
	if (rule_single(r))
		single_rule_stats(r, s);
	else
		rule_stats_sum(r, s);
}

/* One rule's counters as a JSON object; UDP rules count sessions and datagrams, single-client
 * rules say whether (and to whom) they are locked. */
static void stats_rule(FILE *out, const struct rule *r)
{
	struct rule_stats s;
	char l[EP_TEXT_MAX], t[EP_TEXT_MAX];

	rule_counters(r, &s);
	endpoint_format(&r->listen, l, sizeof(l));
	endpoint_format(&r->target, t, sizeof(t));
	fprintf(out, "{\"rule\":%u,\"listen\":\"%s\",\"target\":\"%s\",", r->id, l, t);
	if (rule_single(r)) {
		single_rule_stats_json(out, r);
		fprintf(out, "\"dgrams_up\":%llu,\"dgrams_down\":%llu,", (unsigned long long)s.dgrams_up,
			(unsigned long long)s.dgrams_down);
	} else if (rule_datagram(r))
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
			"\"lost\":%llu,\"out_segs\":%llu,\"loss_pct\":%.2f,\"srtt_ms\":%u,\"rate_mbps\":%.1f,"
			"\"fec_recovered\":%llu},",
			(unsigned long long)s.kcp_sessions, (unsigned long long)(s.kcp_sessions - s.kcp_sessions_closed),
			(unsigned long long)s.kcp_retrans, (unsigned long long)s.kcp_fast_retrans,
			(unsigned long long)s.kcp_lost, (unsigned long long)s.kcp_out_segs,
			s.kcp_out_segs ? 100.0 * (double)s.kcp_retrans / (double)s.kcp_out_segs : 0.0, s.kcp_srtt_ms,
			(double)s.kcp_rate_bps * 8 / 1e6, (unsigned long long)s.kcp_fec_recovered);
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

/* ---- the service manager: STATUS and watchdog (spec/systemd.md §3) ---- */

/* "fwd 12345 dgrams, 2 sessions, 0 errors": counters since start, summed over the rules
 * (sessions = UDP sessions and TCP connections open now; errors = every drop counter). */
static void status_text(const struct ferry *f, char *buf, size_t len)
{
	unsigned long long dgrams = 0, active = 0, errors = 0;

	for (size_t i = 0; i < f->nrules; i++) {
		struct rule_stats s;

		rule_counters(f->rules[i], &s);
		dgrams += s.dgrams_up + s.dgrams_down;
		active += s.accepted - s.closed;
		for (int d = 0; d < DROP__COUNT; d++)
			errors += s.drops[d];
	}
	snprintf(buf, len, "fwd %llu dgrams, %llu sessions, %llu errors", dgrams, active, errors);
}

static void notify_ready(const struct ferry *f)
{
	char st[128];

	status_text(f, st, sizeof(st));
	systemd_notify_ready(st);
}

static void on_status_timer(struct timer *t)
{
	struct ferry *f = container_of(t, struct ferry, status);
	char st[128];

	status_text(f, st, sizeof(st));
	systemd_notify_status(st);
	timer_arm(f->loop, t, f->g.status_interval_ms);
}

static void on_watchdog_timer(struct timer *t)
{
	struct ferry *f = container_of(t, struct ferry, watchdog);

	systemd_notify_watchdog();
	timer_arm(f->loop, t, f->watchdog_ms);
}

/* Watchdog pings at half of WatchdogSec=, STATUS= every --status-interval, under systemd only. */
static void notify_timers_start(struct ferry *f)
{
	uint64_t usec = systemd_watchdog_usec();

	timer_init(&f->status, on_status_timer);
	timer_init(&f->watchdog, on_watchdog_timer);
	if (usec) {
		f->watchdog_ms = MAX(usec / 2000, 1);
		timer_arm(f->loop, &f->watchdog, f->watchdog_ms);
		log_info("systemd watchdog: %llu ms, pinging every %llu ms", (unsigned long long)(usec / 1000),
			 (unsigned long long)f->watchdog_ms);
	}
	if (systemd_notify_wanted() && f->g.status_interval_ms)
		timer_arm(f->loop, &f->status, f->g.status_interval_ms);
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
	if (!rc) {
		rc = rules_attach(f, &next, &nnext, false, err, sizeof(err));
		if (rc)
			rules_free(next, nnext);
	}
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
		if (!rc)
			rc = rule_open(f, r, fds[i], RELOAD_BIND_TRIES, err, sizeof(err));
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
			if (f->stopping) {
				log_info("SIGHUP while shutting down: ignored");
				break;
			}
			systemd_notify_reloading();
			reload(f);
			notify_ready(f);
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
			systemd_notify_stopping();
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

/* kcptun's ":PORT" is every address: [::] dual-stack, unless this host has no IPv6 at all. */
static bool ipv6_available(void)
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* kcptun's --log FILE: everything ferry writes to stderr is appended to FILE instead. */
static void stderr_to_file(const char *path)
{
	char msg[ARGS_ERR_MAX];
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);

	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;

		snprintf(msg, sizeof(msg), "--log %s: %s", path, strerror(e));
		exit(start_failed(e, msg));
	}
	close(fd);
}

/* kcptun-client / kcptun-server: kcptun's options and -c JSON, one kcptun-profile rule. */
static void kcptun_parse_or_die(struct ferry *f, int argc, char **argv)
{
	char err[ARGS_ERR_MAX];
	struct kcptun_cli kc;

	kcptun_cli_init(&kc, f->dia, &f->ro);
	if (kcptun_args_parse(&kc, argc - 1, argv + 1, &f->g, &f->ro, err, sizeof(err)))
		die_usage(err);
	if (f->g.help) {
		fputs(f->dia == ARGS_KCPTUN_SERVER ? usage_kcptun_server : usage_kcptun_client, stdout);
		exit(0);
	}
	if (f->g.version) {
		printf("ferry %s\n", FERRY_VERSION);
		exit(0);
	}
	if (kc.config_path && kcptun_config_load(&kc, &f->ro, err, sizeof(err)))
		die_usage(err);
	f->rules = calloc(1, sizeof(*f->rules));
	if (!f->rules)
		die_usage("out of memory");
	f->nrules = 1;
	if (kcptun_rule_build(&kc, ipv6_available(), &f->ro, &f->rules[0], err, sizeof(err)))
		die_usage(err);
	if (kc.log_path[0])
		stderr_to_file(kc.log_path);
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
	else if (!strcmp(prog, "kcptun-client"))
		f->dia = ARGS_KCPTUN_CLIENT;
	else if (!strcmp(prog, "kcptun-server"))
		f->dia = ARGS_KCPTUN_SERVER;
	if (f->dia == ARGS_KCPTUN_CLIENT || f->dia == ARGS_KCPTUN_SERVER) {
		kcptun_parse_or_die(f, argc, argv);
		return;
	}
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
	if (f->g.systemd && f->dia != ARGS_FERRY)
		die_usage("--systemd is for ferry's own command line (ferry --systemd TARGET...)");
	if (f->g.config_path) {
		if (res.npos)
			die_usage(f->g.systemd ? "give either --systemd TARGET... or -c FILE, not both" :
				  "give either a rule (LISTEN TARGET) or -c FILE, not both");
		if (config_load(f->g.config_path, &f->ro, &f->rules, &f->nrules, err, sizeof(err)))
			die_usage(err);
		return;
	}
	if (f->g.systemd) {
		/* the rules come with the inherited sockets (main) */
		if (res.npos == 0)
			die_usage("--systemd: missing targets: ferry --systemd HOST:PORT... (one per inherited socket, "
				  "in order), or -c FILE with fd:// rules");
		f->targets = malloc((size_t)res.npos * sizeof(*f->targets));
		if (!f->targets)
			die_usage("out of memory");
		memcpy(f->targets, res.pos, (size_t)res.npos * sizeof(*f->targets));
		f->ntargets = (size_t)res.npos;
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
	int **fds, bind_tries;
	sigset_t sigs;
	int rc;

	if (pk_args_wanted(argc, argv))
		return pk_main(argc, argv);
	parse_or_die(&f, argc, argv);
	log_setup(f.g.log_level, f.g.log_json);
	f.nworkers = f.g.workers ? f.g.workers : cpu_count();

	/* sockets from systemd (socket units, fd store): a rule naming a missing one, a count
	 * mismatch or a socket of the wrong kind is a usage error (exit 2) */
	rc = systemd_socks_take(&f.socks);
	if (rc) {
		snprintf(err, sizeof(err), "inherited sockets (LISTEN_FDS): %s", strerror(-rc));
		return start_failed(rc, err);
	}
	if (f.ntargets && activate_positional(&f.socks, f.targets, f.ntargets, &f.ro, &f.rules, &f.nrules, err,
					      sizeof(err)))
		die_usage(err);
	if (rules_attach(&f, &f.rules, &f.nrules, true, err, sizeof(err)))
		die_usage(err);
	f.fdstore = !f.g.no_fdstore && systemd_fdstore_wanted();

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
	bind_tries = stored_drop_unused(&f) ? RELOAD_BIND_TRIES : 0;
	fds = calloc(f.nrules, sizeof(*fds));
	for (size_t i = 0; fds && i < f.nrules; i++) {
		fds[i] = calloc(f.nworkers, sizeof(int));
		if (!fds[i])
			return start_failed(ENOMEM, "out of memory");
		rc = rule_open(&f, f.rules[i], fds[i], bind_tries, err, sizeof(err));
		if (rc)
			return start_failed(rc, err);
	}
	if (!fds)
		return start_failed(ENOMEM, "out of memory");
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
		if (!rc) {
			loop_set_busy_poll(f.workers[w].loop, f.g.busy_poll_us);
			rc = worker_start(&f.workers[w]);
		}
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
	notify_timers_start(&f);
	notify_ready(&f);
	daemon_ready(0);
	if (f.g.daemonize)
		syslog_start();

	rc = loop_run(f.loop);
	if (rc)
		log_error("control loop: %s", strerror(-rc));
	shutdown_workers(&f);
	for (size_t i = 0; i < f.nrules; i++)
		single_rule_stop(f.rules[i]);
	free(f.workers);
	rules_free(f.rules, f.nrules);
	systemd_socks_free(&f.socks);
	free(f.targets);
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
