#!/bin/bash
# pkthere-compatible mode (ferry --here PROTO:host:id --there PROTO:host:id): the behaviour
# checklist of spec/pkthere.md §5.2-5.6 run against real namespaces. Case names start with the
# checklist line they prove (int_N: §5.2 item N, icmp_N: §5.3, wm_N: §5.4, lc_N: §5.5,
# stress_N: §5.6); exit_* are the exit codes of §1.5, impair_* the tunnel on a bad path.
#
#   client C ---- F ---- S          (topology: see lib.sh; forwarding off in F)
#
#   UDP->UDP      ferry in F:  --here UDP:F:port --there UDP:S:echo           client in C
#   tunnel        ferry A in F: --here UDP:F:port --there ICMP:S:0 (ping socket)
#                 ferry B in S: --here ICMP:0.0.0.0:0 --there UDP:127.0.0.1:echo
#   RAW chain     node1 in C --ICMP--> node2 in F --ICMP--> node3 in S --> echo in S
#
# and, for the impairment cases only, a routed path of its own:
#
#   ns IA (client, ferry A) ---- ns IR (router: impair ip + nft) ---- ns IB (ferry B, echo)
#   10.77.5.1  fd77:5::1        10.77.5.2 / 10.77.6.1               10.77.6.2  fd77:6::2
#
# Echo servers are the inline pk.py (below): dual-stack, they count what they receive and
# write the counts to a file. Every ferry runs with --user nobody (root without --user is
# fatal in this mode) and --debug-fast-stats (a stats line each second on stdout); a case that
# needs exact totals stops ferry with SIGTERM, which prints a last stats line, and reads that.
# S and F ignore echo requests (their kernels would answer the tunnel's requests too; harmless
# but wasteful); ping sockets are allowed in C, F and IA (net.ipv4.ping_group_range).
#
#   tests/net/pkthere.sh [SUBSTRING...]     only the cases whose name contains one of them
. "$(dirname "$0")/lib.sh"

IMPAIR=${IMPAIR:-$NET_ROOT/build/tools/impair}
PK=$T/pk.py
NS_IA=ft$$ia NS_IR=ft$$ir NS_IB=ft$$ib
IA4=10.77.5.1 IRA4=10.77.5.2 IRB4=10.77.6.1 IB4=10.77.6.2
IA6=fd77:5::1 IRA6=fd77:5::2 IRB6=fd77:6::1 IB6=fd77:6::2
EXTRA_NS="$NS_IA $NS_IR $NS_IB"

# ------------------------------------------------------------------ pk.py

cat >"$PK" <<'PYEOF'
"""pk.py: echo server, clients, an ICMP sniffer and the stats reader of tests/net/pkthere.sh.
Clients exit 0 when what they prove holds (one JSON line on stdout), 1 with a reason on stderr."""
import argparse, hashlib, json, os, random, signal, socket, struct, sys, time

BUF = 32 << 20


def die(msg):
    print("pk: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def bigbuf(s):
    for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, BUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, BUF)


def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def norm(a):
    h = a[0][7:] if a[0].startswith("::ffff:") and "." in a[0] else a[0]
    return (socket.inet_pton(fam(h), h), a[1])


def client(host, sport=0):
    s = socket.socket(fam(host), socket.SOCK_DGRAM)
    bigbuf(s)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if fam(host) == socket.AF_INET6 else "0.0.0.0", sport))
    return s


def recv(s, until):
    left = until - time.monotonic()
    if left <= 0:
        return None, None
    s.settimeout(left)
    try:
        return s.recvfrom(70000)
    except socket.timeout:
        return None, None


def parse_sizes(spec):
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def cmd_echo(a):
    """Echo server on [::]:PORT (dual-stack) counting datagrams; counts in --stats."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    bigbuf(s)
    s.bind(("::", a.port))
    st = {"rx": 0, "rx_bytes": 0, "tx": 0, "tx_errors": 0}

    def dump(*_):
        tmp = a.stats + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(st) + "\n")
        os.replace(tmp, a.stats)

    def stop(*_):
        dump()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    dump()
    s.settimeout(0.05)
    dirty = False
    while True:
        try:
            data, addr = s.recvfrom(70000)
        except socket.timeout:
            if dirty:
                dump()
                dirty = False
            continue
        st["rx"] += 1
        st["rx_bytes"] += len(data)
        dirty = True
        if data.startswith(b"noreply"):
            continue
        try:
            s.sendto(data, addr)
            st["tx"] += 1
        except OSError:
            st["tx_errors"] += 1


def cmd_ordered(a):
    """Datagrams of the sizes in --sizes (each in turn, --count in all) from port --sport with
    up to --window in flight (the first alone: over ICMP it waits for the handshake, and what
    comes meanwhile is dropped); every reply must be the next datagram sent, byte for byte,
    from HOST:PORT; nothing may follow the last."""
    sizes = parse_sizes(a.sizes)
    rng = random.Random(a.seed)
    if a.shuffle:
        rng.shuffle(sizes)
    count = a.count or len(sizes)
    s = client(a.host, a.sport)
    dst, want = (a.host, a.port), norm((a.host, a.port))
    sent, got, total, inflight = 0, 0, 0, []
    deadline = time.monotonic() + a.timeout
    while got < count:
        while sent < count and len(inflight) < (a.window if got else 1):
            p = rng.randbytes(sizes[sent % len(sizes)])
            s.sendto(p, dst)
            inflight.append(p)
            sent += 1
        data, frm = recv(s, min(deadline, time.monotonic() + a.reply_timeout))
        if data is None:
            die(f"datagram {got} ({len(inflight[0])} bytes): no reply ({got} of {count} came back)")
        if norm(frm) != want:
            die(f"reply {got} came from {frm}, expected {dst}")
        if data != inflight[0]:
            die(f"reply {got}: {len(data)} bytes, expected datagram {got} of {len(inflight[0])} bytes "
                f"(same bytes: {data == inflight[0]}; matches a later one: {data in inflight[1:]})")
        total += len(inflight.pop(0))
        got += 1
    data, frm = recv(s, time.monotonic() + a.linger)
    if data is not None:
        die(f"extra datagram of {len(data)} bytes after the last reply")
    print(json.dumps({"count": got, "bytes": total, "sport": s.getsockname()[1]}))


HDR = struct.Struct("!4sIH8s")	# magic, sequence number, body length, sha256(body)[:8]


def numbered(rng, seq, size):
    body = rng.randbytes(max(0, size - HDR.size))
    return HDR.pack(b"PKN1", seq, len(body), hashlib.sha256(body).digest()[:8]) + body


def check_numbered(data):
    if len(data) < HDR.size:
        return None
    magic, seq, n, h = HDR.unpack_from(data)
    body = data[HDR.size:]
    if magic != b"PKN1" or n != len(body) or hashlib.sha256(body).digest()[:8] != h:
        return None
    return seq


def cmd_numbered(a):
    """--count numbered datagrams (--min..--max bytes, random bodies with their hash) with up
    to --window in flight; one that has no reply within --rto counts as lost. Fails on a
    corrupted reply, a sequence number received twice or never sent, a reply from elsewhere,
    or fewer than --min-pct percent back."""
    rng = random.Random(a.seed)
    s = client(a.host, a.sport)
    dst, want = (a.host, a.port), norm((a.host, a.port))
    sent_at, got = {}, set()
    dups = corrupt = unknown = 0
    nsent = 0
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        waiting = [q for q, t in sent_at.items() if q not in got and now - t < a.rto]
        # the first alone: over ICMP it waits for the handshake, and what comes meanwhile is dropped
        while nsent < a.count and len(waiting) < (a.window if got else 1):
            s.sendto(numbered(rng, nsent, rng.randint(a.min, a.max)), dst)
            sent_at[nsent] = time.monotonic()
            waiting.append(nsent)
            nsent += 1
        if nsent == a.count and not waiting:
            break
        data, frm = recv(s, min(deadline, time.monotonic() + 0.05))
        while data is not None:
            if norm(frm) != want:
                die(f"reply from {frm}, expected {dst}")
            q = check_numbered(data)
            if q is None:
                corrupt += 1
            elif q not in sent_at:
                unknown += 1
            elif q in got:
                dups += 1
            else:
                got.add(q)
            s.setblocking(False)
            try:
                data, frm = s.recvfrom(70000)
            except BlockingIOError:
                data = None
            s.setblocking(True)
    # late duplicates and stragglers
    end = time.monotonic() + a.linger
    while True:
        data, frm = recv(s, end)
        if data is None:
            break
        q = check_numbered(data)
        if q is None:
            corrupt += 1
        elif q in got:
            dups += 1
        elif q in sent_at:
            got.add(q)
        else:
            unknown += 1
    pct = 100.0 * len(got) / max(1, nsent)
    out = {"sent": nsent, "received": len(got), "pct": round(pct, 1), "duplicates": dups,
           "corrupt": corrupt, "unknown": unknown, "sport": s.getsockname()[1]}
    print(json.dumps(out), flush=True)
    if nsent < a.count:
        die(f"only {nsent} of {a.count} sent before the deadline")
    if dups or corrupt or unknown:
        die(f"{dups} duplicated, {corrupt} corrupted, {unknown} never-sent replies")
    if pct < a.min_pct:
        die(f"only {pct:.1f}% came back (at least {a.min_pct}% expected)")


def cmd_burst(a):
    """--count numbered datagrams of --size bytes as fast as the socket takes them, then read
    replies until --quiet seconds pass without one; no reply may be corrupted or repeated."""
    rng = random.Random(a.seed)
    s = client(a.host, a.sport)
    dst = (a.host, a.port)
    sent = 0
    t0 = time.monotonic()
    while sent < a.count:
        try:
            s.sendto(numbered(rng, sent, a.size), dst)
            sent += 1
        except (BlockingIOError, OSError) as e:
            if time.monotonic() - t0 > a.timeout:
                die(f"send: {e}")
            time.sleep(0.001)
    send_secs = time.monotonic() - t0
    got, dups, corrupt = set(), 0, 0
    while True:
        data, _ = recv(s, time.monotonic() + a.quiet)
        if data is None:
            break
        q = check_numbered(data)
        if q is None or q >= sent:
            corrupt += 1
        elif q in got:
            dups += 1
        else:
            got.add(q)
    print(json.dumps({"sent": sent, "received": len(got), "duplicates": dups, "corrupt": corrupt,
                      "send_secs": round(send_secs, 3)}))
    if dups or corrupt:
        die(f"{dups} duplicated and {corrupt} corrupted replies")


def cmd_multi(a):
    """Clients on distinct source ports (--base + k*100 + attempt): each in turn must get an
    answer to a hello (a client that gets none tries its next port, --tries in all), then
    --rounds rounds in which every client sends one datagram and each must get exactly its
    own back. With --extra, one more client must get no answer at all (and nobody its)."""
    dst, want = (a.host, a.port), norm((a.host, a.port))
    rng = random.Random(a.seed)
    socks = []
    t0 = time.monotonic()
    tries = 0
    for k in range(a.clients):
        for t in range(a.tries):
            tries += 1
            s = client(a.host, a.base + 100 * k + t)
            hello = b"hello %d %d" % (k, t)
            s.sendto(hello, dst)
            data, frm = recv(s, time.monotonic() + a.hello_timeout)
            if data == hello and norm(frm) == want:
                socks.append(s)
                break
            s.close()
        else:
            die(f"client {k} got no answer from {a.tries} source ports")
    t1 = time.monotonic()
    for r in range(a.rounds):
        mine = []
        for k, s in enumerate(socks):
            p = b"c%d r%d " % (k, r) + rng.randbytes(rng.randint(1, 1200))
            s.sendto(p, dst)
            mine.append(p)
        for k, s in enumerate(socks):
            data, frm = recv(s, time.monotonic() + a.reply_timeout)
            if data is None:
                die(f"client {k} (port {s.getsockname()[1]}): no reply in round {r}")
            if norm(frm) != want:
                die(f"client {k}: reply from {frm}")
            if data != mine[k]:
                die(f"client {k} round {r}: got {data[:12]!r}..., not its own datagram")
    extra = None
    if a.extra:
        e = client(a.host, a.base + 100 * a.clients)
        e.sendto(b"extra client", dst)
        data, _ = recv(e, time.monotonic() + 0.5)
        if data is not None:
            die(f"the extra client got an answer: {data[:20]!r}")
        extra = e.getsockname()[1]
    for k, s in enumerate(socks):
        data, _ = recv(s, time.monotonic() + 0.1)
        if data is not None:
            die(f"client {k} got an extra datagram {data[:20]!r}")
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks], "hellos": tries, "rounds": a.rounds,
                      "extra": extra, "secs": [round(t1 - t0, 2), round(time.monotonic() - t1, 2)]}))


def cmd_sniff(a):
    """Prints one JSON line per ICMP echo seen by a raw socket: type, id, seq, shim flags and
    the shim source ID (explicit, or the echo id in the compact form)."""
    v6 = a.family == 6
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    end = time.monotonic() + a.secs
    print(json.dumps({"ready": True}), flush=True)
    while True:
        data, _ = recv(s, end)
        if data is None:
            return
        if not v6:
            data = data[(data[0] & 15) * 4:]
        if len(data) < 9 or data[0] not in (0, 8, 128, 129):
            continue
        typ, ident, seq, flags = data[0], struct.unpack_from("!H", data, 4)[0], struct.unpack_from("!H", data, 6)[0], data[8]
        src = ident if flags & 0x10 else (struct.unpack_from("!H", data, 9)[0] if len(data) >= 11 else None)
        print(json.dumps({"type": typ, "id": ident, "seq": seq, "flags": flags, "src": src}), flush=True)


def cmd_stats(a):
    """Values of KEYs (dotted paths, list indexes as numbers) from the last stats line of FILE:
    one per line, strings bare, booleans true/false."""
    line = None
    with open(a.file, errors="replace") as f:
        for l in f:
            if l.startswith("[INFO] {"):
                line = l
    if line is None:
        die(f"no stats line in {a.file}")
    try:
        d = json.loads(line[7:])
    except ValueError as e:
        die(f"stats line is not JSON ({e}): ...{line[-80:].strip()}")
    for k in a.keys:
        v = d
        for part in k.split("."):
            try:
                v = v[int(part)] if isinstance(v, list) else v[part]
            except (KeyError, IndexError, ValueError, TypeError):
                die(f"no {k} in the stats line")
        print(v if isinstance(v, str) else json.dumps(v))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("echo")
    c.add_argument("port", type=int)
    c.add_argument("--stats", required=True)
    c.set_defaults(fn=cmd_echo)

    def cl(name, fn):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--sport", type=int, default=0)
        c.add_argument("--seed", type=int, default=1)
        c.add_argument("--timeout", type=float, default=30)
        c.set_defaults(fn=fn)
        return c
    c = cl("ordered", cmd_ordered)
    c.add_argument("--sizes", default="1-1400")
    c.add_argument("--count", type=int, default=0)
    c.add_argument("--shuffle", action="store_true")
    c.add_argument("--window", type=int, default=1)
    c.add_argument("--reply-timeout", type=float, default=2)
    c.add_argument("--linger", type=float, default=0.2)
    c = cl("numbered", cmd_numbered)
    c.add_argument("--count", type=int, default=2000)
    c.add_argument("--min", type=int, default=HDR.size)
    c.add_argument("--max", type=int, default=1200)
    c.add_argument("--window", type=int, default=16)
    c.add_argument("--rto", type=float, default=0.5)
    c.add_argument("--linger", type=float, default=0.7)
    c.add_argument("--min-pct", type=float, default=80)
    c = cl("burst", cmd_burst)
    c.add_argument("--count", type=int, default=20000)
    c.add_argument("--size", type=int, default=100)
    c.add_argument("--quiet", type=float, default=1.0)
    c = cl("multi", cmd_multi)
    c.add_argument("--clients", type=int, default=2)
    c.add_argument("--base", type=int, default=42000)
    c.add_argument("--tries", type=int, default=12)
    c.add_argument("--hello-timeout", type=float, default=0.4)
    c.add_argument("--rounds", type=int, default=50)
    c.add_argument("--reply-timeout", type=float, default=2)
    c.add_argument("--extra", action="store_true")
    c = sub.add_parser("sniff")
    c.add_argument("--family", type=int, default=4)
    c.add_argument("--secs", type=float, default=10)
    c.set_defaults(fn=cmd_sniff)
    c = sub.add_parser("stats")
    c.add_argument("file")
    c.add_argument("keys", nargs="+")
    c.set_defaults(fn=cmd_stats)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
PYEOF

# ------------------------------------------------------------------ helpers

# pk NS ARGS...: run pk.py in NS, bounded by 90 s whatever its own --timeout says
pk() {
	local ns=$1
	shift
	timeout -k 5 90 ip netns exec "$ns" "$PY" "$PK" "$@"
}

# the processes of S and of the impairment namespaces end with the case too (lib.sh's
# case_cleanup covers C and F)
eval "lib_case_cleanup() $(declare -f case_cleanup | sed 1d)"
case_cleanup() {
	local ns
	for ns in "$NS_S" $EXTRA_NS; do
		kill_ns_procs "$ns"
	done
	lib_case_cleanup
}

pk_cleanup() {
	local ns
	for ns in $EXTRA_NS; do
		kill_ns_procs "$ns"
	done
	sleep 0.1
	for ns in $EXTRA_NS; do
		ip netns del "$ns" 2>/dev/null
	done
	cleanup
}
trap pk_cleanup EXIT

# echo_server NS PORT: start pk.py echo on [::]:PORT in NS (its counts go to
# $T/echo-PORT.json); the next pk_up or echo_ready waits until it listens
ECHO_PENDING=()
echo_server() {
	local ns=$1 port=$2
	rm -f "$T/echo-$port.json"
	nsx "$ns" "$PY" "$PK" echo "$port" --stats "$T/echo-$port.json" >>"$T/echo-$port.log" 2>&1 &
	ECHO_PENDING+=("$ns $port $!")
}

# echo_ready: fail unless the echo servers started since the last call listen within 5 s
echo_ready() {
	local e
	for e in "${ECHO_PENDING[@]}"; do
		# shellcheck disable=SC2086
		wait_udp_listen $e || fail "echo server ${e% *} does not start"
	done
	ECHO_PENDING=()
}

# echo_count PORT KEY: rx, rx_bytes or tx of the echo server on PORT (it writes them after
# 50 ms without a datagram: this waits 0.2 s)
echo_count() {
	sleep 0.2
	"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/echo-$1.json" "$2"
}

# pk_up NAME NS ARGS...: start ferry in pkthere mode in NS (with --user nobody
# --debug-fast-stats) and wait for the end of its startup log; NAME_PID, NAME_OUT and
# NAME_ERR name the process and its stdout and stderr
pk_up() {
	local name=$1 ns=$2 i rc
	shift 2
	ferry_start "$ns" "$@" --user nobody --debug-fast-stats
	for i in $(seq 1 50); do
		grep -qs '^\[INFO\] Re-resolve every' "$FERRY_OUT" && break
		alive "$FERRY_PID" || break
		sleep 0.1
	done
	printf -v "${name}_PID" '%s' "$FERRY_PID"
	printf -v "${name}_OUT" '%s' "$FERRY_OUT"
	printf -v "${name}_ERR" '%s' "$FERRY_ERR"
	if grep -qs '^\[INFO\] Re-resolve every' "$FERRY_OUT"; then
		echo_ready
		return 0
	fi
	if ! alive "$FERRY_PID"; then
		wait "$FERRY_PID"
		rc=$?
		fail "ferry $* exited with status $rc at start: $(tail -n 2 "$FERRY_ERR" | cut -c1-200)"
	fi
	fail "ferry $* printed no startup log within 5 s"
}

# pk_alive NAME: fail if that ferry has exited
pk_alive() {
	local pid_var=${1}_PID rc
	alive "${!pid_var}" && return 0
	wait "${!pid_var}"
	rc=$?
	fail "ferry $1 (pid ${!pid_var}) died during the case with status $rc"
}

# pk_stop [-SIG] NAME...: stop those ferries (default SIGTERM, all at once), which must exit
# with 130 and print a last stats line; the case then reads its totals from that line.
# (ferry notices the stop at its next 1 s watchdog tick: stopping them together saves time)
pk_stop() {
	local sig=TERM name pid_var rc
	case $1 in -*) sig=${1#-}; shift ;; esac
	for name in "$@"; do
		pid_var=${name}_PID
		kill -"$sig" "${!pid_var}" 2>/dev/null
	done
	for name in "$@"; do
		pid_var=${name}_PID
		ferry_stop "$sig" "${!pid_var}"
		rc=$?
		[ "$rc" = 130 ] || fail "ferry $name exited with status $rc on SIG$sig, expected 130"
	done
}

# pk_stat FILE KEY...: values from the last stats line of FILE (a ferry's stdout)
pk_stat() {
	"$PY" "$PK" stats "$@"
}

# pk_check FILE KEY=VALUE...: the last stats line of FILE has these values (0 or 1, quiet)
pk_check() {
	local file=$1 kv keys=() want=() got
	shift
	for kv in "$@"; do
		keys+=("${kv%%=*}")
		want+=("${kv#*=}")
	done
	got=$(pk_stat "$file" "${keys[@]}" 2>&1 | tr '\n' ' ')
	PK_GOT=$got
	[ "$got" = "${want[*]} " ]
}

# pk_expect FILE KEY=VALUE...: fail unless the last stats line of FILE has these values
pk_expect() {
	local file=$1
	shift
	pk_check "$file" "$@" && return 0
	fail "stats ${*%%=*}: got $PK_GOT; expected $* ($(basename "$file"))"
}

# pk_wait FILE KEY=VALUE...: wait up to 5 s (5 stats lines) until the last line has them
# (for a ferry that must go on running; otherwise pk_stop and pk_expect are quicker)
pk_wait() {
	local file=$1 i
	shift
	for i in $(seq 1 50); do
		pk_check "$file" "$@" && return 0
		sleep 0.1
	done
	fail "stats after 5 s: got $PK_GOT; expected $* ($(basename "$file"))"
}

# wait_grep FILE REGEX [SECS]: wait up to SECS (default 5) for a line matching REGEX
wait_grep() {
	local i
	for i in $(seq 1 $((${3:-5} * 10))); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ask_tag SPORT SIZE: the text a datagram of ask/ask_none starts with (none below 8 bytes)
ask_tag() {
	[ "$2" -ge 8 ] && echo "p$1-"
}

# ask NS HOST PORT SPORT SIZE: one datagram of SIZE bytes from SPORT, echoed back intact
ask() {
	local out
	out=$(utool "$1" ask "$2" "$3" --sport "$4" --size "$5" --tag "$(ask_tag "$4" "$5")" --timeout 2 2>&1) ||
		fail "$5 bytes from port $4 to $2:$3: $out"
}

# ask_none NS HOST PORT SPORT SIZE: the same datagram, and no answer within 0.3 s
ask_none() {
	local out
	out=$(utool "$1" ask "$2" "$3" --sport "$4" --size "$5" --tag "$(ask_tag "$4" "$5")" --timeout 0.3 --expect-none 2>&1) ||
		fail "$5 bytes from port $4 to $2:$3 (expected no answer): $out"
}

# in_parallel CMD...: run each CMD (a function and its arguments, as one string) in a
# subshell of its own, all at once; the case fails if one of them does (their ferries' files
# are kept apart by FERRY_SEQ)
in_parallel() {
	local cmd i=0 pids=() pid rc=0
	for cmd in "$@"; do
		i=$((i + 1))
		(
			# shellcheck disable=SC2034
			FERRY_SEQ=$((i * 10))
			eval "$cmd"
		) &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || rc=1
	done
	if [ "$rc" != 0 ]; then
		[ -s "$T/reason" ] || echo "one of $* failed" >"$T/reason"
		exit 1
	fi
}

# ------------------------------------------------------------------ §5.2 UDP -> UDP

# 2: a payload up to --max-payload passes intact, one byte more is dropped and counted, in
# both directions; the largest datagram of the family passes with the family's maximum
max_payload() {
	local f=$1 maxp=$2 port=$3 out
	fam_addrs "$f"
	echo_server "$NS_S" $((port + 100))
	utool "$NS_S" serve peer :: $((port + 200)) --pad 1001 >/dev/null 2>&1 &
	wait_udp_listen "$NS_S" $((port + 200)) || fail "peer server"
	pk_up P "$NS_F" --here "UDP:$BFC:$port" --there "UDP:$BSV:$((port + 100))" --max-payload 1000
	# the limit holds on the way back too: this server answers 1001 bytes to 10
	pk_up R "$NS_F" --here "UDP:$BFC:$((port + 1))" --there "UDP:$BSV:$((port + 200))" --max-payload 1000
	# the family's largest datagram, with the family's largest --max-payload
	pk_up M "$NS_F" --here "UDP:$BFC:$((port + 2))" --there "UDP:$BSV:$((port + 100))" --max-payload "$maxp"
	ask "$NS_C" "$FC" "$port" 41020 1000
	ask_none "$NS_C" "$FC" "$port" 41020 1001
	ask "$NS_C" "$FC" "$port" 41020 999
	ask_none "$NS_C" "$FC" $((port + 1)) 41021 10
	ask "$NS_C" "$FC" $((port + 2)) 41022 "$maxp"
	pk_stop P R M
	pk_expect "$P_OUT" c2u_pkts=2 u2c_pkts=2 c2u_bytes=1999 u2c_bytes=1999 c2u_drops_oversize=1 u2c_drops_oversize=0
	pk_expect "$R_OUT" c2u_pkts=1 u2c_pkts=0 c2u_drops_oversize=0 u2c_drops_oversize=1
	pk_expect "$M_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes="$maxp" u2c_bytes="$maxp" c2u_drops_oversize=0
	[ "$(echo_count $((port + 100)) rx)" = 3 ] || fail "the echo server got $(echo_count $((port + 100)) rx) datagrams, expected 3"
}
int_2_max_payload_forwarded_and_dropped_v4() { max_payload v4 65507 9020; }
int_2_max_payload_forwarded_and_dropped_v6() { max_payload v6 65527 9025; }

# 3, 4: a round trip of datagrams of many sizes; exact packet and byte counts both ways; the
# socket modes the flags ask for show in the startup log and the stats
round_trip() {
	local f=$1 port=$2 cu=$3 uu=$4 out bytes flags=() lmode=connected umode=connected lwhy=default uwhy=default
	fam_addrs "$f"
	[ "$cu" = 1 ] && flags+=(--debug-client-unconnected) lmode=unconnected lwhy=debug
	[ "$uu" = 1 ] && flags+=(--debug-upstream-unconnected) umode=unconnected uwhy=debug
	echo_server "$NS_S" $((port + 100))
	pk_up P "$NS_F" --here "UDP:$BFC:$port" --there "UDP:$BSV:$((port + 100))" "${flags[@]}"
	grep -qF "[INFO] Client socket mode after lock: $lmode ($lwhy)" "$P_OUT" ||
		fail "no 'Client socket mode after lock: $lmode ($lwhy)' line: $(grep 'socket mode' "$P_OUT")"
	grep -qF "[INFO] Upstream socket mode: $umode ($uwhy)" "$P_OUT" ||
		fail "no 'Upstream socket mode: $umode ($uwhy)' line: $(grep 'socket mode' "$P_OUT")"
	out=$(pk "$NS_C" ordered "$FC" "$port" --sizes 0-1400 --count 60 --shuffle --window 4 --timeout 20 2>&1) ||
		fail "round trip: $out"
	bytes=$(json_field "$out" bytes)
	[ "$lmode" = connected ] && lmode=true || lmode=false
	[ "$umode" = connected ] && umode=true || umode=false
	pk_stop P
	pk_expect "$P_OUT" c2u_pkts=60 u2c_pkts=60 c2u_bytes="$bytes" u2c_bytes="$bytes" c2u_errs=0 u2c_errs=0 \
		wrong_peer_drops=0 locked=true worker_flows.0.listener_connected=$lmode \
		worker_flows.0.upstream_connected=$umode worker_flows.0.client_sock_type=DGRAM \
		worker_flows.0.upstream_sock_type=DGRAM
	[ "$(echo_count $((port + 100)) rx)" = 60 ] || fail "the echo server got $(echo_count $((port + 100)) rx) datagrams, expected 60"
}
int_3_round_trip_v4() { round_trip v4 9030 0 0; }
int_3_round_trip_v6() { round_trip v6 9031 0 0; }
# the three combinations of --debug-client-unconnected and --debug-upstream-unconnected at once
int_4_round_trip_forced_unconnected_combinations_v4() {
	in_parallel "round_trip v4 9040 1 0" "round_trip v4 9041 0 1" "round_trip v4 9042 1 1"
}
int_4_round_trip_forced_unconnected_combinations_v6() {
	in_parallel "round_trip v6 9043 1 0" "round_trip v6 9044 0 1" "round_trip v6 9045 1 1"
}

# 5, 6: client 1 locks, goes idle; after the timeout ferry logs the drop, and client 2 (another
# port) locks and is forwarded; before that, client 2 gets nothing
relock_after_timeout() {
	local f=$1 port=$2 flags=("${@:3}") key c1=$((32000 + $2)) c2=$((33000 + $2))
	fam_addrs "$f"
	echo_server "$NS_S" $((port + 100))
	pk_up P "$NS_F" --here "UDP:$BFC:$port" --there "UDP:$BSV:$((port + 100))" --timeout-secs 1 "${flags[@]}"
	ask "$NS_C" "$FC" "$port" $c1 100
	ask_none "$NS_C" "$FC" "$port" $c2 100
	wait_grep "$P_ERR" 'Idle timeout reached \(1s\): dropping locked client on worker pair 0' 5 ||
		fail "no 'Idle timeout reached (1s): dropping locked client' within 5 s"
	ask "$NS_C" "$FC" "$port" $c2 200
	ask "$NS_C" "$FC" "$port" $c2 300
	[ "$f" = v4 ] && key="UDP:$CL:$c2" || key="UDP:[$CL]:$c2"
	pk_stop P
	pk_expect "$P_OUT" c2u_pkts=3 u2c_pkts=3 c2u_bytes=600 u2c_bytes=600 "worker_flows.0.flow_key=$key" locked=true
}
# (IPv4 and IPv6 at once)
int_5_relock_after_timeout_drop() {
	in_parallel "relock_after_timeout v4 9050" "relock_after_timeout v6 9051"
}
int_6_relock_after_timeout_drop_unconnected() {
	in_parallel "relock_after_timeout v4 9060 --debug-client-unconnected --debug-upstream-unconnected" \
		"relock_after_timeout v6 9061 --debug-client-unconnected --debug-upstream-unconnected"
}

# 7, 8: the upstream port is closed: the client's datagrams fail upstream (ICMP port
# unreachable: errors counted on a connected socket), the flow still times out, and once the
# server is up a new client is forwarded
relock_after_errors() {
	local f=$1 port=$2 connected=$3 i errs out
	shift 3
	fam_addrs "$f"
	pk_up P "$NS_F" --here "UDP:$BFC:$port" --there "UDP:$BSV:$((port + 100))" --timeout-secs 1 "$@"
	# ten datagrams in 0.2 s, so the flow cannot time out in between
	out=$(utool "$NS_C" blast "$FC" "$port" --sport $((32000 + port)) --size 50 --rate 50 --secs 0.2 2>&1) ||
		fail "blast: $out"
	pk_alive P
	if [ "$connected" = 1 ]; then
		errs=0
		for i in $(seq 1 30); do
			errs=$(pk_stat "$P_OUT" c2u_errs u2c_errs 2>/dev/null | paste -sd+ | sed 's/^$/0/')
			[ $((errs)) -gt 0 ] && break
			sleep 0.1
		done
		[ $((errs)) -gt 0 ] || fail "no send/receive error counted for a closed upstream port ($(pk_stat "$P_OUT" c2u_errs c2u_user_send_errors u2c_errs u2c_receive_errors | tr '\n' ' '))"
	fi
	wait_grep "$P_ERR" 'Idle timeout reached \(1s\): dropping locked client' 5 ||
		fail "no 'Idle timeout reached (1s): dropping locked client' within 5 s of the last datagram"
	echo_server "$NS_S" $((port + 100))
	echo_ready
	ask "$NS_C" "$FC" "$port" $((33000 + port)) 123
	pk_stop P
	# the new client locked (logged; the final stats line may already show it timed out
	# again: 1 s is short on a busy machine)
	grep -q "Locked to single client .*:$((33000 + port)) " "$P_OUT" ||
		fail "the second client did not lock: $(grep 'Locked to' "$P_OUT" | tr '\n' ' ')"
	pk_expect "$P_OUT" u2c_pkts=1 u2c_bytes=123
}
int_7_relock_after_forward_errors() {
	in_parallel "relock_after_errors v4 9070 1" "relock_after_errors v6 9071 1"
}
int_8_relock_after_forward_errors_unconnected() {
	in_parallel "relock_after_errors v4 9080 0 --debug-client-unconnected --debug-upstream-unconnected" \
		"relock_after_errors v6 9081 0 --debug-client-unconnected --debug-upstream-unconnected"
}

# 9: with an unconnected listener a second client reaches ferry and is dropped (counted, drop
# log) while the locked client goes on; with an unconnected upstream socket (bound to a known
# port by --there-source-id) a stranger's datagram to it is dropped the same way
wrong_peer() {
	local f=$1 port=$2 c1=$((32000 + $2)) c2=$((33000 + $2)) c3=$((34000 + $2))
	fam_addrs "$f"
	echo_server "$NS_S" $((port + 100))
	pk_up P "$NS_F" --here "UDP:$BFC:$port" --there "UDP:$BSV:$((port + 100))" --debug-client-unconnected \
		--debug-upstream-unconnected --there-source-id $((port + 200)) --debug-log drops
	ask "$NS_C" "$FC" "$port" $c1 10
	ask_none "$NS_C" "$FC" "$port" $c2 20
	ask "$NS_C" "$FC" "$port" $c1 30
	wait_grep "$P_ERR" "dropping packet from unexpected client peer .*:$c2" 2 ||
		fail "no 'dropping packet from unexpected client peer ...:$c2' on stderr"
	# a stranger in S writes to ferry's upstream socket
	ask_none "$NS_S" "$FS" $((port + 200)) $c3 40
	wait_grep "$P_ERR" "dropping packet from unexpected upstream peer .*:$c3" 2 ||
		fail "no 'dropping packet from unexpected upstream peer ...:$c3' on stderr"
	ask "$NS_C" "$FC" "$port" $c1 50
	pk_stop P
	pk_expect "$P_OUT" wrong_peer_drops=2 c2u_pkts=3 u2c_pkts=3 c2u_bytes=90 u2c_bytes=90
}
int_9_wrong_peer_dropped_locked_client_works() {
	in_parallel "wrong_peer v4 9090" "wrong_peer v6 9091"
}

# ------------------------------------------------------------------ §1.5 exit codes

exit_0_on_timeout_exit_only_after_a_client_locked() {
	local rc t0 t1
	echo_server "$NS_S" 9200
	pk_up P "$NS_F" --here "UDP:$F4C:9100" --there "UDP:$S4:9200" --timeout-secs 1 --on-timeout exit
	grep -qF '[INFO] Timeout: 1s, on-timeout: Exit' "$P_OUT" || fail "no 'Timeout: 1s, on-timeout: Exit' line"
	# no client yet: no timeout, no exit
	sleep 1.6
	pk_alive P
	ask "$NS_C" "$F4C" 9100 41100 64
	t0=$(date +%s%N)
	ferry_wait_exit 5 "$P_PID"
	rc=$?
	t1=$(date +%s%N)
	[ "$rc" = 0 ] || fail "exit status $rc after the idle timeout with --on-timeout exit, expected 0"
	[ $(((t1 - t0) / 1000000)) -ge 700 ] || fail "exited $(((t1 - t0) / 1000000)) ms after the client, before the 1 s timeout"
	grep -qF '[WARN] Idle timeout reached (1s): exiting cleanly' "$P_ERR" ||
		fail "no 'Idle timeout reached (1s): exiting cleanly' on stderr"
	pk_expect "$P_OUT" c2u_pkts=1 u2c_pkts=1
}

exit_130_on_sigterm_sigint_sighup() {
	local sig out
	pk_up TERM "$NS_F" --here "UDP:$F4C:9110" --there "UDP:$S4:9210"
	pk_up INT "$NS_F" --here "UDP:$F4C:9111" --there "UDP:$S4:9210"
	pk_up HUP "$NS_F" --here "UDP:$F4C:9112" --there "UDP:$S4:9210"
	for sig in TERM INT HUP; do
		out=${sig}_PID
		kill -"$sig" "${!out}"
	done
	for sig in TERM INT HUP; do
		out=${sig}_PID
		ferry_wait_exit 5 "${!out}"
		out=$?
		[ "$out" = 130 ] || fail "exit status $out on SIG$sig, expected 130"
		out=${sig}_OUT
		grep -qE '^\[INFO\] Exiting, uptime [0-9]+ seconds' "${!out}" || fail "SIG$sig: no 'Exiting, uptime' line"
		tail -n 1 "${!out}" | grep -q '^\[INFO\] {' || fail "SIG$sig: the last stdout line is not a stats line"
		pk_expect "${!out}" locked=false c2u_pkts=0
	done
}

exit_1_on_startup_errors() {
	local out rc
	# listener address not in the namespace
	out=$(timeout 10 ip netns exec "$NS_F" "$FERRY" --here UDP:10.99.99.99:9120 --there "UDP:$S4:9220" --user nobody 2>&1)
	rc=$?
	[ "$rc" = 1 ] || fail "bind on a foreign address: exit status $rc, expected 1 ($out)"
	grep -q 'listener socket setup failed' <<<"$out" || fail "bind on a foreign address: $out"
	# root without --user
	out=$(timeout 10 ip netns exec "$NS_F" "$FERRY" --here "UDP:$F4C:9121" --there "UDP:$S4:9220" 2>&1)
	rc=$?
	[ "$rc" = 1 ] || fail "root without --user: exit status $rc, expected 1 ($out)"
	grep -q 'must specify --user when running as root' <<<"$out" || fail "root without --user: $out"
	# listener address = upstream address
	out=$(timeout 10 ip netns exec "$NS_F" "$FERRY" --here "UDP:$F4C:9122" --there "UDP:$F4C:9122" --user nobody 2>&1)
	rc=$?
	[ "$rc" = 1 ] || fail "listener = upstream: exit status $rc, expected 1 ($out)"
	grep -q 'Port conflict' <<<"$out" || fail "listener = upstream: $out"
}

exit_2_on_cli_errors() {
	local out rc args
	for args in "--here UDP:$F4C:9130" "--here UDP:$F4C:9130 --there UDP:$S4:0" \
		"--here UDP:$F4C:9130 --there UDP:$S4:9230 --max-payload 65508" \
		"--here UDP:$F4C:9130 --there UDP:$S4:9230 --icmp-sync-pps 10" \
		"--here UDP:$F4C:9130 --there UDP:$S4:9230 --here-id 0"; do
		# shellcheck disable=SC2086
		out=$(timeout 10 ip netns exec "$NS_F" "$FERRY" $args --user nobody 2>&1)
		rc=$?
		[ "$rc" = 2 ] || fail "ferry $args: exit status $rc, expected 2 ($(head -n1 <<<"$out"))"
		head -n 1 <<<"$out" | grep -q '^\[ERROR\] ' || fail "ferry $args: no [ERROR] line first: $(head -n1 <<<"$out")"
	done
}

# ------------------------------------------------------------------ §5.3 ICMP

# tunnel_up FAMILY PORT [A ARGS...] [-- B ARGS...]: echo server in S on PORT+100, ferry B in
# S (--here ICMP:any:0 --there UDP:loopback:PORT+100), ferry A in F (--here UDP:F:PORT --there
# ICMP:S:0, a ping socket)
tunnel_up() {
	local f=$1 port=$2 a_args=() b_args=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do a_args+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	b_args=("$@")
	fam_addrs "$f"
	echo_server "$NS_S" $((port + 100))
	pk_up B "$NS_S" --here "ICMP:$ANY:0" --there "UDP:$LO:$((port + 100))" "${b_args[@]}"
	pk_up A "$NS_F" --here "UDP:$BFC:$port" --there "ICMP:$BSV:0" "${a_args[@]}"
}

tunnel_sizes() {
	local f=$1 port=$2 out bytes
	tunnel_up "$f" "$port"
	# every size from 0 to 1400 once, in random order; the first waits for the handshake
	out=$(pk "$NS_C" ordered "$FC" "$port" --sizes 0-1400 --shuffle --window 4 --timeout 40 2>&1) ||
		fail "tunnel round trip: $out"
	bytes=$(json_field "$out" bytes)
	pk_stop A B
	pk_expect "$A_OUT" c2u_pkts=1401 u2c_pkts=1401 c2u_bytes="$bytes" u2c_bytes="$bytes" \
		icmp_sequence_duplicate=0 malformed_packets=0 worker_flows.0.upstream_proto=ICMP \
		worker_flows.0.upstream_sock_type=DGRAM
	pk_expect "$B_OUT" c2u_pkts=1401 u2c_pkts=1401 c2u_bytes="$bytes" u2c_bytes="$bytes" \
		worker_flows.0.client_proto=ICMP worker_flows.0.client_sock_type=RAW
	[ "$(echo_count $((port + 100)) rx)" = 1401 ] || fail "the echo server got $(echo_count $((port + 100)) rx) datagrams, expected 1401"
}
icmp_tunnel_sizes_0_to_1400_intact_v4() { tunnel_sizes v4 9300; }
icmp_tunnel_sizes_0_to_1400_intact_v6() { tunnel_sizes v6 9301; }

# 3: an empty datagram is a datagram: it crosses the tunnel both ways, counted with 0 bytes
zero_length() {
	local f=$1 port=$2 out
	tunnel_up "$f" "$port"
	out=$(pk "$NS_C" ordered "$FC" "$port" --sizes 0 --count 1 --timeout 10 2>&1) || fail "empty datagram: $out"
	pk_stop A B
	pk_expect "$A_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes=0 u2c_bytes=0
	pk_expect "$B_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes=0 u2c_bytes=0
	[ "$(echo_count $((port + 100)) rx)" = 1 ] || fail "the echo server got $(echo_count $((port + 100)) rx) datagrams, expected 1"
}
icmp_3_zero_length_datagram_v4() { zero_length v4 9310; }
icmp_3_zero_length_datagram_v6() { zero_length v6 9311; }

# 1: sync mode through a real ferry listener: one datagram, one reply; cadence frames flow
# and are consumed by the listener, never counted as user packets
icmp_1_sync_mode_round_trip() {
	local out n
	tunnel_up v4 9320 --icmp-sync-pps 20 -- --debug-log packet-dump
	grep -qF '[INFO] ICMP sync pace: global total best-effort target 20 packet(s)/s shared across all workers and flows' "$A_OUT" ||
		fail "no 'ICMP sync pace' startup line"
	out=$(pk "$NS_C" ordered "$F4C" 9320 --sizes 77 --count 1 --timeout 10 2>&1) || fail "sync round trip: $out"
	sleep 1
	n=$(grep -c '"disposition":"consume-cadence"' "$B_ERR")
	[ "$n" -ge 10 ] || fail "listener consumed $n cadence frames in 1 s at 20 pps"
	pk_stop A B
	pk_expect "$A_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes=77 u2c_bytes=77
	pk_expect "$B_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes=77 u2c_bytes=77
}

# 1 as the checklist has it: no listener, the kernel of C answers the echo requests and
# --debug-icmp-kernel-echo-self-handshake lets the ping socket take those answers
icmp_1_sync_mode_kernel_echo_self_handshake() {
	local out
	[ "$(nsx "$NS_C" sysctl -n net.ipv4.icmp_echo_ignore_all)" = 0 ] || fail "C ignores echo requests"
	pk_up A "$NS_F" --here "UDP:$F4S:9330" --there "ICMP:$C4:0" --icmp-sync-pps 20 \
		--debug-icmp-kernel-echo-self-handshake
	out=$(pk "$NS_S" ordered "$F4S" 9330 --sizes 33 --count 1 --timeout 10 2>&1) || fail "kernel echo round trip: $out"
	pk_stop A
	pk_expect "$A_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes=33 u2c_bytes=33 worker_flows.0.upstream_sock_type=DGRAM
}

# 2: cadence keeps flowing but is not activity: --on-timeout exit ends ferry A with status 0
# after the timeout; still exactly one user packet each way
icmp_2_sync_cadence_does_not_prevent_timeout_exit() {
	local out rc n t0 t1
	tunnel_up v4 9340 --icmp-sync-pps 20 --timeout-secs 2 --on-timeout exit -- --debug-log packet-dump
	out=$(pk "$NS_C" ordered "$F4C" 9340 --sizes 12 --count 1 --timeout 10 2>&1) || fail "sync round trip: $out"
	t0=$(date +%s%N)
	ferry_wait_exit 6 "$A_PID"
	rc=$?
	t1=$(date +%s%N)
	[ "$rc" = 0 ] || fail "ferry A: exit status $rc 6 s after the last datagram (timeout 2 s), expected 0"
	[ $(((t1 - t0) / 1000000)) -ge 1500 ] || fail "ferry A exited $(((t1 - t0) / 1000000)) ms after the datagram, before the 2 s timeout"
	n=$(grep -c '"disposition":"consume-cadence"' "$B_ERR")
	[ "$n" -ge 20 ] || fail "the listener saw only $n cadence frames while ferry A waited for its timeout"
	grep -qF 'Idle timeout reached (2s): exiting cleanly' "$A_ERR" || fail "no 'Idle timeout reached (2s): exiting cleanly'"
	pk_expect "$A_OUT" c2u_pkts=1 u2c_pkts=1 c2u_bytes=12 u2c_bytes=12
}

# 4: node1 in C (UDP -> ICMP to id 1101) -> node2 in F (ICMP listener 1101, source 1202; ICMP
# upstream to 1303 with source and reply id 1202, sync 5 pps) -> node3 in S (ICMP listener
# 1303, source 1404) -> echo; the payload returns intact; node2 and node3 use raw sockets
icmp_4_three_node_raw_chain() {
	local out
	echo_server "$NS_S" 9450
	pk_up N3 "$NS_S" --here ICMP:0.0.0.0:1303 --here-source-id 1404 --there UDP:127.0.0.1:9450
	pk_up N2 "$NS_F" --here ICMP:0.0.0.0:1101 --here-source-id 1202 --there "ICMP:$S4:1303" \
		--there-source-id 1202 --there-reply-id 1202 --icmp-sync-pps 5
	pk_up N1 "$NS_C" --here UDP:127.0.0.1:9350 --there "ICMP:$F4C:1101"
	out=$(pk "$NS_C" ordered 127.0.0.1 9350 --sizes 100,0,1400,7 --window 1 --timeout 20 --reply-timeout 5 2>&1) ||
		fail "three-node chain: $out"
	pk_stop N1 N2 N3
	pk_expect "$N2_OUT" worker_flows.0.client_sock_type=RAW worker_flows.0.upstream_sock_type=RAW c2u_pkts=4 u2c_pkts=4
	pk_expect "$N3_OUT" worker_flows.0.client_sock_type=RAW c2u_pkts=4 u2c_pkts=4 c2u_bytes=1507
	pk_expect "$N1_OUT" c2u_pkts=4 u2c_pkts=4 c2u_bytes=1507 u2c_bytes=1507
}

# 5: A (--there ICMP:S:9999, source 40000, reply 40001: a raw socket) and B (listener 9999,
# source 7777): a round trip works and the wire shows the four IDs: A->B echo id 9999 with
# explicit source 40000, B->A echo id 40001 with explicit source 7777
icmp_5_independent_ids() {
	local out
	echo_server "$NS_S" 9460
	nsx "$NS_S" "$PY" "$PK" sniff --family 4 --secs 15 >"$T/sniff-s.log" 2>&1 &
	nsx "$NS_F" "$PY" "$PK" sniff --family 4 --secs 15 >"$T/sniff-f.log" 2>&1 &
	wait_grep "$T/sniff-s.log" ready 5 || fail "the sniffer in S does not start"
	wait_grep "$T/sniff-f.log" ready 5 || fail "the sniffer in F does not start"
	pk_up B "$NS_S" --here ICMP:0.0.0.0:9999 --here-source-id 7777 --there UDP:127.0.0.1:9460
	pk_up A "$NS_F" --here "UDP:$F4C:9360" --there "ICMP:$S4:9999" --there-source-id 40000 --there-reply-id 40001
	grep -qF 'local id 40000, remote id 9999, source id 40000, reply id 40001, RAW socket' "$A_OUT" ||
		fail "A's startup line: $(grep 'ICMP upstream mode' "$A_OUT")"
	out=$(pk "$NS_C" ordered "$F4C" 9360 --sizes 1-300 --count 20 --window 2 --timeout 10 2>&1) || fail "round trip: $out"
	pk_stop A B
	pk_expect "$A_OUT" worker_flows.0.upstream_sock_type=RAW u2c_pkts=20
	pk_expect "$B_OUT" worker_flows.0.client_sock_type=RAW "worker_flows.0.flow_key=ICMP:$F4S:0 source 40000 id 9999"
	# requests seen in S, replies seen in F (flags: 0x80 data, 0x10 compact source)
	"$PY" - "$T/sniff-s.log" "$T/sniff-f.log" 2>"$T/ids.err" <<-'EOF' || fail "IDs on the wire: $(tail -n1 "$T/ids.err")"
	import json, sys
	def frames(path, typ):
	    return [d for d in map(json.loads, open(path)) if d.get("type") == typ]
	req, rep = frames(sys.argv[1], 8), frames(sys.argv[2], 0)
	bad = [d for d in req if d["id"] == 9999 and (d["src"] != 40000 or d["flags"] & 0x10)]
	bad += [d for d in rep if d["id"] == 40001 and (d["src"] != 7777 or d["flags"] & 0x10)]
	nreq = len([d for d in req if d["id"] == 9999])
	nrep = len([d for d in rep if d["id"] == 40001])
	if bad or nreq < 21 or nrep < 21:
	    sys.exit(f"{nreq} requests to id 9999, {nrep} replies to id 40001, wrong ones: {bad[:3]}")
	EOF
}

# 6: a raw listener locked to source 1111 (target listen id 4141) drops a second sender from
# the same host with source 2222, counts it, logs why, and keeps serving the first
icmp_6_locked_raw_listener_drops_stray_source() {
	local out
	echo_server "$NS_S" 9470
	pk_up B "$NS_S" --here ICMP:0.0.0.0:4141 --there UDP:127.0.0.1:9470 --debug-log drops
	pk_up A "$NS_F" --here "UDP:$F4C:9370" --there "ICMP:$S4:4141" --there-source-id 1111 --there-reply-id 1111
	out=$(pk "$NS_C" ordered "$F4C" 9370 --sport 41370 --sizes 50 --count 3 --timeout 10 2>&1) || fail "legit flow: $out"
	pk_up X "$NS_F" --here "UDP:$F4C:9371" --there "ICMP:$S4:4141" --there-source-id 2222 --there-reply-id 2222
	ask_none "$NS_C" "$F4C" 9371 41371 60
	wait_grep "$B_ERR" 'because source endpoint ID mismatches the locked flow|unexpected client peer' 3 ||
		fail "no drop log line for the stray sender on the listener"
	out=$(pk "$NS_C" ordered "$F4C" 9370 --sport 41370 --sizes 70 --count 3 --timeout 10 2>&1) ||
		fail "legit flow after the stray sender: $out"
	pk_alive B
	pk_wait "$B_OUT" c2u_pkts=6 u2c_pkts=6 c2u_bytes=360 "worker_flows.0.flow_key=ICMP:$F4S:0 source 1111 id 4141"
	out=$(($(pk_stat "$B_OUT" wrong_source_drops) + $(pk_stat "$B_OUT" wrong_peer_drops)))
	[ "$out" -gt 0 ] || fail "the listener counted no wrong_source_drops/wrong_peer_drops"
	pk_expect "$X_OUT" u2c_pkts=0
	[ "$(echo_count 9470 rx)" = 6 ] || fail "the echo server got $(echo_count 9470 rx) datagrams, expected 6"
}

# ------------------------------------------------------------------ §5.4 worker modes

# 1: shared-flow with two worker pairs: the one locked flow shows on both pairs
shared_flow() {
	local f=$1 port=$2 out key
	fam_addrs "$f"
	echo_server "$NS_S" $((port + 100))
	pk_up P "$NS_F" --here "UDP:$BFC:$port" --there "UDP:$BSV:$((port + 100))" --workers 2
	grep -qF 'Worker flow mode: shared-flow' "$P_OUT" || fail "no shared-flow startup line"
	out=$(pk "$NS_C" ordered "$FC" "$port" --sport 41500 --sizes 1-1000 --count 100 --window 8 --timeout 20 2>&1) ||
		fail "shared-flow round trip: $out"
	[ "$f" = v4 ] && key="UDP:$CL:41500" || key="UDP:[$CL]:41500"
	pk_stop P
	pk_expect "$P_OUT" c2u_pkts=100 u2c_pkts=100 locked=true worker_flows.0.locked=true worker_flows.1.locked=true \
		"worker_flows.0.flow_key=$key" "worker_flows.1.flow_key=$key"
}
wm_1_shared_flow_publishes_the_flow_to_all_pairs_v4() { shared_flow v4 9500; }
wm_1_shared_flow_publishes_the_flow_to_all_pairs_v6() { shared_flow v6 9501; }

# 2, 3: single-flow with N pairs: N clients each lock a pair of their own and get only their
# own datagrams back; one more finds every pair taken and gets nothing. With a connected
# listener the kernel hands a new client to a pair that is still free; unconnected, the
# reuse-port hash decides, and a client whose hello is not answered (its pair is taken) tries
# its next source port
single_flow() {
	local port=$1 n=$2 out keys want i
	shift 2
	echo_server "$NS_S" $((port + 100))
	pk_up P "$NS_F" --here "UDP:$F4C:$port" --there "UDP:$S4:$((port + 100))" --workers "$n" \
		--worker-flow-mode single-flow "$@"
	out=$(pk "$NS_C" multi "$F4C" "$port" --clients "$n" --tries 25 --hello-timeout 0.25 --rounds 50 --extra \
		--timeout 40 2>&1) || fail "$out"
	echo "  $out"
	pk_stop P
	pk_expect "$P_OUT" locked_worker_pairs="$n" c2u_pkts=$((51 * n)) u2c_pkts=$((51 * n))
	keys=$(for i in $(seq 0 $((n - 1))); do pk_stat "$P_OUT" "worker_flows.$i.flow_key"; done | sort | tr '\n' ' ')
	want=$("$PY" -c 'import json,sys; print(" ".join(sorted("UDP:%s:%d" % (sys.argv[2], p) for p in json.loads(sys.argv[1])["ports"])) + " ")' "$out" "$C4")
	[ "$keys" = "$want" ] || fail "pairs locked to $keys; expected the clients $want"
}
wm_2_single_flow_spreads_clients() { single_flow 9510 4; }

# single-flow with an ICMP listener and 2 pairs: each pair's raw socket sees every frame, the
# claim table gives each tunnel client a pair of its own; both are served while both are locked
icmp_single_flow() {
	local f=$1 port=$2 out keys
	fam_addrs "$f"
	echo_server "$NS_S" $((port + 100))
	pk_up B "$NS_S" --here "ICMP:$ANY:0" --there "UDP:$LO:$((port + 100))" --workers 2 \
		--worker-flow-mode single-flow
	pk_up A "$NS_F" --here "UDP:$BFC:$port" --there "ICMP:$BSV:0"
	pk_up P "$NS_F" --here "UDP:$BFC:$((port + 1))" --there "ICMP:$BSV:0"
	out=$(pk "$NS_C" ordered "$FC" "$port" --sizes 1-200 --window 4 --timeout 30 2>&1) || fail "client 1: $out"
	out=$(pk "$NS_C" ordered "$FC" $((port + 1)) --sizes 1-200 --window 4 --timeout 30 2>&1) || fail "client 2: $out"
	pk_stop A P B
	pk_expect "$B_OUT" locked_worker_pairs=2 c2u_pkts=400 u2c_pkts=400 icmp_sequence_duplicate=0
	keys=$(for i in 0 1; do pk_stat "$B_OUT" "worker_flows.$i.flow_key"; done | sort -u | wc -l)
	[ "$keys" = 2 ] || fail "both pairs locked to the same flow: $(pk_stat "$B_OUT" worker_flows.0.flow_key)"
}
wm_2_single_flow_icmp_listener_gives_each_tunnel_client_a_pair_v4() { icmp_single_flow v4 9530; }
wm_2_single_flow_icmp_listener_gives_each_tunnel_client_a_pair_v6() { icmp_single_flow v6 9531; }
wm_3_single_flow_spreads_clients_unconnected() {
	single_flow 9520 2 --debug-client-unconnected --debug-upstream-unconnected
}

# ------------------------------------------------------------------ §5.5 lifecycle

# 1: with --max-payload 10 a 5-byte datagram ends "forwarded" (both ways), a 20-byte one
# "filtered"
lc_1_max_payload_dispositions() {
	echo_server "$NS_S" 9600
	pk_up P "$NS_F" --here "UDP:$F4C:9560" --there "UDP:$S4:9600" --max-payload 10 --debug-log packet-dump
	ask "$NS_C" "$F4C" 9560 41560 5
	ask_none "$NS_C" "$F4C" 9560 41560 20
	pk_stop P
	"$PY" - "$P_ERR" 2>"$T/lc.err" <<-'EOF' || fail "packet-dump: $(tail -n1 "$T/lc.err")"
	import json, sys
	recs = [json.loads(l[8:]) for l in open(sys.argv[1]) if l.startswith("[DEBUG] {")]
	disp = [(r.get("direction"), r.get("len"), r.get("disposition")) for r in recs if r.get("stage") == "disposition"]
	want = [("c2u", 5, "forwarded"), ("u2c", 5, "forwarded"), ("c2u", 20, "filtered")]
	if disp != want:
	    sys.exit(f"dispositions {disp}, expected {want}")
	EOF
	pk_expect "$P_OUT" c2u_pkts=1 u2c_pkts=1 c2u_drops_oversize=1
}

# 1 (the rest of it): every packet has a received and an admission record before exactly one
# terminal disposition, all in diagnostic_sequence order
lc_1_every_packet_admission_then_one_disposition() {
	echo_server "$NS_S" 9610
	pk_up P "$NS_F" --here "UDP:$F4C:9570" --there "UDP:$S4:9610" --max-payload 10 --debug-log packet-dump
	ask "$NS_C" "$F4C" 9570 41570 5
	ask_none "$NS_C" "$F4C" 9570 41570 20
	pk_stop P
	"$PY" - "$P_ERR" >"$T/lc.err" 2>&1 <<-'EOF' || fail "packet-dump records: $(tail -n1 "$T/lc.err")"
	import json, sys
	recs = [json.loads(l[8:]) for l in open(sys.argv[1]) if l.startswith("[DEBUG] {")]
	seqs = [r["diagnostic_sequence"] for r in recs]
	if seqs != sorted(seqs):
	    sys.exit(f"diagnostic_sequence out of order: {seqs}")
	# per packet (direction), the stages in order
	stages = [(r.get("direction"), r.get("stage")) for r in recs]
	want = [("c2u", "received"), ("c2u", "admission"), ("c2u", "disposition"),
	        ("u2c", "received"), ("u2c", "admission"), ("u2c", "disposition"),
	        ("c2u", "received"), ("c2u", "admission"), ("c2u", "disposition")]
	if stages != want:
	    sys.exit(f"stages {stages}, expected {want}")
	EOF
}

# ------------------------------------------------------------------ §5.6 stress

# 1: 20000 datagrams at once through UDP -> UDP: ferry survives, and its counts agree with
# the echo server's and the client's
stress_1_v4_burst() {
	local out rx tx got
	echo_server "$NS_S" 9700
	pk_up P "$NS_F" --here "UDP:$F4C:9650" --there "UDP:$S4:9700"
	out=$(pk "$NS_C" burst "$F4C" 9650 --count 20000 --size 100 --quiet 0.8 --timeout 60 2>&1) || fail "burst: $out"
	pk_alive P
	got=$(json_field "$out" received)
	rx=$(echo_count 9700 rx)
	tx=$(echo_count 9700 tx)
	echo "  burst: $out; echo server got $rx"
	pk_stop P
	pk_expect "$P_OUT" c2u_pkts="$rx" c2u_bytes=$((rx * 100)) u2c_pkts="$got"
	[ "$tx" -ge "$got" ] || fail "the client got $got replies, the server sent only $tx"
	[ "$got" -ge 10000 ] || fail "only $got of 20000 came back"
}

# 5: a client that keeps sending keeps its flow although no reply ever comes (the upstream
# port is closed): no idle timeout, no relock
stress_5_sending_keeps_the_flow_alive() {
	local out
	pk_up P "$NS_F" --here "UDP:$F4C:9660" --there "UDP:$S4:9710" --timeout-secs 1
	# one datagram every 0.25 s for 2.6 s: idle twice the timeout in total, never in a row
	out=$(utool "$NS_C" blast "$F4C" 9660 --sport 41660 --size 10 --rate 4 --secs 2.6 2>&1) || fail "blast: $out"
	pk_alive P
	# the stats line of the last second: still locked to the one client
	pk_expect "$P_OUT" locked=true "worker_flows.0.flow_key=UDP:$C4:41660"
	grep -q 'Idle timeout' "$P_ERR" && fail "idle timeout while the client kept sending: $(grep 'Idle timeout' "$P_ERR")"
	[ "$(grep -c 'Locked to single client' "$P_OUT")" = 1 ] || fail "the flow was relocked: $(grep 'Locked to' "$P_OUT")"
	pk_stop P
	pk_expect "$P_OUT" c2u_pkts="$(json_field "$out" sent)"
}

# ------------------------------------------------------------------ the tunnel on a bad path

impair_topology_up() {
	local ns
	for ns in $EXTRA_NS; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip -n "$NS_IA" link add va type veth peer name vra netns "$NS_IR" || return 1
	ip -n "$NS_IR" link add vrb type veth peer name vb netns "$NS_IB" || return 1
	ip -n "$NS_IA" addr add "$IA4/24" dev va && ip -n "$NS_IA" addr add "$IA6/64" dev va nodad &&
		ip -n "$NS_IR" addr add "$IRA4/24" dev vra && ip -n "$NS_IR" addr add "$IRA6/64" dev vra nodad &&
		ip -n "$NS_IR" addr add "$IRB4/24" dev vrb && ip -n "$NS_IR" addr add "$IRB6/64" dev vrb nodad &&
		ip -n "$NS_IB" addr add "$IB4/24" dev vb && ip -n "$NS_IB" addr add "$IB6/64" dev vb nodad || return 1
	ip -n "$NS_IA" link set va up && ip -n "$NS_IR" link set vra up &&
		ip -n "$NS_IR" link set vrb up && ip -n "$NS_IB" link set vb up || return 1
	ip -n "$NS_IA" route add default via "$IRA4" && ip -n "$NS_IA" -6 route add default via "$IRA6" &&
		ip -n "$NS_IB" route add default via "$IRB4" && ip -n "$NS_IB" -6 route add default via "$IRB6" || return 1
	nsx "$NS_IR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
	nsx "$NS_IA" sysctl -qw net.ipv4.ping_group_range="0 2147483647" || return 1
	nsx "$NS_IB" sysctl -qw net.ipv4.icmp_echo_ignore_all=1 net.ipv6.icmp.echo_ignore_all=1 || return 1
	wait_link_up "$NS_IA" va && wait_link_up "$NS_IR" vra && wait_link_up "$NS_IR" vrb && wait_link_up "$NS_IB" vb
}

# 2000 numbered datagrams through A (in IA) -> ICMP -> B (in IB) -> echo, across a router
# that reorders and duplicates echo requests and replies (impair ip, both directions), with
# 5% of them lost on arrival at each end (nft numgen): nothing may arrive twice or
# corrupted, and most must arrive
impair_tunnel() {
	local f=$1 port=$2 proto l4 out dst lo bhere i ns pids=()
	[ -x "$IMPAIR" ] || skip "$IMPAIR not built (make build/tools/impair)"
	if [ "$f" = v4 ]; then
		proto=icmp l4="icmp type { echo-request, echo-reply }" dst=$IB4 lo=127.0.0.1 bhere=0.0.0.0
	else
		proto=icmpv6 l4="icmpv6 type { echo-request, echo-reply }" dst="[$IB6]" lo="[::1]" bhere="[::]"
	fi
	nsx "$NS_IR" nft -f - <<-EOF || fail "nft in the router"
	table inet pkimp
	delete table inet pkimp
	table inet pkimp {
		chain impfwd { type filter hook forward priority 0; $l4 drop; }
	}
	EOF
	for ns in "$NS_IA" "$NS_IB"; do
		nsx "$ns" nft -f - <<-EOF || fail "nft loss rule in $ns"
		table inet pkloss
		delete table inet pkloss
		table inet pkloss {
			chain losspre { type filter hook prerouting priority -300; $l4 numgen random mod 100 < 5 counter drop; }
		}
		EOF
	done
	for i in vra vrb; do
		ip netns exec "$NS_IR" "$IMPAIR" ip --in "$i" --proto "$proto" --reorder 10 --reorder-gap 3 --dup 5 \
			--seed "$port" 2>"$T/impair-$i.log" &
		pids+=($!)
	done
	for i in vra vrb; do
		wait_grep "$T/impair-$i.log" 'impair: ready' 5 || fail "impair --in $i does not start: $(head -n 3 "$T/impair-$i.log")"
	done
	echo_server "$NS_IB" $((port + 100))
	pk_up B "$NS_IB" --here "ICMP:$bhere:0" --there "UDP:$lo:$((port + 100))"
	pk_up A "$NS_IA" --here "UDP:$lo:$port" --there "ICMP:$dst:0"
	out=$(pk "$NS_IA" numbered "${lo//[\[\]]/}" "$port" --count 2000 --min 18 --max 1200 --window 32 --rto 0.25 \
		--min-pct 80 --seed "$port" --timeout 60 2>&1) || fail "$out"
	echo "  $f: $(head -n1 <<<"$out")"
	pk_alive A
	pk_alive B
	pk_stop A B
	pk_expect "$A_OUT" u2c_pkts="$(json_field "$out" received)" malformed_packets=0
	[ "$(pk_stat "$B_OUT" c2u_pkts)" = "$(echo_count $((port + 100)) rx)" ] ||
		fail "B forwarded $(pk_stat "$B_OUT" c2u_pkts) datagrams, the echo server got $(echo_count $((port + 100)) rx)"
	kill -TERM "${pids[@]}" 2>/dev/null
	wait "${pids[@]}" 2>/dev/null
	echo "  $f: impair (requests) $(grep -ho 'in=.*' "$T/impair-vra.log" | tail -n1)"
	echo "  $f: impair (replies)  $(grep -ho 'in=.*' "$T/impair-vrb.log" | tail -n1)"
	echo "  $f: A dropped $(pk_stat "$A_OUT" icmp_sequence_duplicate) duplicate replies, B $(pk_stat "$B_OUT" icmp_sequence_duplicate) duplicate requests"
}
impair_tunnel_loss_reorder_dup_v4() { impair_tunnel v4 9800; }
impair_tunnel_loss_reorder_dup_v6() { impair_tunnel v6 9801; }

# ------------------------------------------------------------------ main

need_root_and_tools
topology_up || setup_fail "could not build namespaces"
impair_topology_up || setup_fail "could not build the impairment namespaces"
nsx "$NS_S" sysctl -qw net.ipv4.icmp_echo_ignore_all=1 net.ipv6.icmp.echo_ignore_all=1 || setup_fail "sysctl in S"
nsx "$NS_F" sysctl -qw net.ipv4.icmp_echo_ignore_all=1 net.ipv6.icmp.echo_ignore_all=1 || setup_fail "sysctl in F"
for ns in "$NS_C" "$NS_F"; do
	nsx "$ns" sysctl -qw net.ipv4.ping_group_range="0 2147483647" || setup_fail "sysctl in $ns"
done

run_case int_2_max_payload_forwarded_and_dropped_v4
run_case int_2_max_payload_forwarded_and_dropped_v6
run_case int_3_round_trip_v4
run_case int_3_round_trip_v6
run_case int_4_round_trip_forced_unconnected_combinations_v4
run_case int_4_round_trip_forced_unconnected_combinations_v6
run_case int_5_relock_after_timeout_drop
run_case int_6_relock_after_timeout_drop_unconnected
run_case int_7_relock_after_forward_errors
run_case int_8_relock_after_forward_errors_unconnected
run_case int_9_wrong_peer_dropped_locked_client_works
run_case exit_0_on_timeout_exit_only_after_a_client_locked
run_case exit_130_on_sigterm_sigint_sighup
run_case exit_1_on_startup_errors
run_case exit_2_on_cli_errors
run_case icmp_tunnel_sizes_0_to_1400_intact_v4
run_case icmp_tunnel_sizes_0_to_1400_intact_v6
run_case icmp_1_sync_mode_round_trip
run_case icmp_1_sync_mode_kernel_echo_self_handshake
run_case icmp_2_sync_cadence_does_not_prevent_timeout_exit
run_case icmp_3_zero_length_datagram_v4
run_case icmp_3_zero_length_datagram_v6
run_case icmp_4_three_node_raw_chain
run_case icmp_5_independent_ids
run_case icmp_6_locked_raw_listener_drops_stray_source
run_case wm_1_shared_flow_publishes_the_flow_to_all_pairs_v4
run_case wm_1_shared_flow_publishes_the_flow_to_all_pairs_v6
run_case wm_2_single_flow_spreads_clients
run_case wm_2_single_flow_icmp_listener_gives_each_tunnel_client_a_pair_v4
run_case wm_2_single_flow_icmp_listener_gives_each_tunnel_client_a_pair_v6
run_case wm_3_single_flow_spreads_clients_unconnected
run_case lc_1_max_payload_dispositions
run_case lc_1_every_packet_admission_then_one_disposition
run_case stress_1_v4_burst
run_case stress_5_sending_keeps_the_flow_alive
run_case impair_tunnel_loss_reorder_dup_v4
run_case impair_tunnel_loss_reorder_dup_v6
finish
