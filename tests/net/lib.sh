# shellcheck shell=bash
# (variables set here are used by the scripts that source this file)
# shellcheck disable=SC2034
# Shared helpers for ferry's integration tests; sourced by tests/net/*.sh (bash, root).
#
# Topology (topology_up), three network namespaces named after this shell's pid:
#
#   ns C (client)              ns F (ferry)                              ns S (server)
#   vc  10.77.1.1/24  -------  vfc 10.77.1.2/24   vfs 10.77.2.1/24  ---  vs  10.77.2.2/24
#       fd77:1::1/64               fd77:1::2/64       fd77:2::1/64            fd77:2::2/64
#
# C and S have only their connected subnet (no routes to each other) and forwarding is off
# in F, so the client reaches the server only through a ferry running in F.
#
# A script defines one function per case and calls `run_case NAME` for each; a case passes
# when its function returns, fails at the first `fail MSG`, and is skipped by `skip REASON`.
# Each case runs in a subshell; afterwards every process it left in C and F (ferry, daemons,
# clients) and every process it registered with `track` is killed. On exit (also on failure
# or a signal) all processes in the namespaces are killed and the namespaces and the
# temporary directory are removed.
#
# Arguments to a script select cases by substring: tests/net/tcp.sh half_close

set -u

NET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FERRY=${FERRY:-$NET_ROOT/build/ferry}
case $FERRY in /*) ;; *) FERRY=$PWD/$FERRY ;; esac
PY=${PYTHON:-/usr/bin/python3}
TCPTOOL=$NET_ROOT/tests/tools/tcptool.py
UDPTOOL=$NET_ROOT/tests/tools/udptool.py

NS_C=ft$$c
NS_F=ft$$f
NS_S=ft$$s
C4=10.77.1.1 F4C=10.77.1.2 F4S=10.77.2.1 S4=10.77.2.2
C6=fd77:1::1 F6C=fd77:1::2 F6S=fd77:2::1 S6=fd77:2::2

MIB=$((1 << 20))
CASE=setup
CASE_ARGS=("$@")
N_PASS=0 N_FAIL=0 N_SKIP=0
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-net.XXXXXX") || exit 1
: >"$T/case.pids"

# ------------------------------------------------------------------ results

# fail MSG: end the current case as failed (prints MSG and the case's ferry stderr)
fail() {
	printf '%s\n' "$*" | paste -sd '|' - | sed 's/|/ | /g' >"$T/reason"
	echo "  $CASE: $*" | sed '2,$s/^/  | /'
	ferry_diag
	exit 1
}

# skip REASON: end the current case as skipped
skip() {
	printf '%s\n' "$*" >"$T/reason"
	exit 77
}

# run_case NAME: run function NAME as one case and print PASS/FAIL/SKIP NAME
run_case() {
	local name=$1 rc want sel=0
	if [ ${#CASE_ARGS[@]} -gt 0 ]; then
		for want in "${CASE_ARGS[@]}"; do
			case $name in *"$want"*) sel=1 ;; esac
		done
		[ $sel = 1 ] || return 0
	fi
	CASE=$name
	: >"$T/reason"
	(set +e; "$name")
	rc=$?
	case_cleanup
	case $rc in
	0) echo "PASS $name"; N_PASS=$((N_PASS + 1)) ;;
	77) echo "SKIP $name: $(head -n1 "$T/reason")"; N_SKIP=$((N_SKIP + 1)) ;;
	*)
		[ -s "$T/reason" ] || echo "case function returned status $rc without a reason" >"$T/reason"
		echo "FAIL $name: $(head -n1 "$T/reason" | cut -c1-300)"
		N_FAIL=$((N_FAIL + 1))
		;;
	esac
}

# finish: last line of every script; exit status says whether any case failed
finish() {
	[ "$N_FAIL" = 0 ]
	exit
}

# setup_fail MSG: the topology could not be built; one FAIL line for the whole script
setup_fail() {
	echo "FAIL $(basename "$0" .sh)-setup: $*"
	exit 1
}

# ------------------------------------------------------------------ processes

# track PID: kill PID when the case ends (for processes outside C and F, e.g. servers in S)
track() {
	echo "$1" >>"$T/case.pids"
}

# alive PID: PID exists and is not a zombie
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

kill_ns_procs() {
	local pids
	pids=$(ip netns pids "$1" 2>/dev/null) || return 0
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
}

case_cleanup() {
	local pid
	while read -r pid; do
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done <"$T/case.pids"
	: >"$T/case.pids"
	kill_ns_procs "$NS_C"
	kill_ns_procs "$NS_F"
	for pid in 1 2 3 4 5 6 7 8 9 10; do
		[ -z "$(ip netns pids "$NS_C" 2>/dev/null; ip netns pids "$NS_F" 2>/dev/null)" ] && break
		sleep 0.1
	done
}

cleanup() {
	local ns
	trap - EXIT INT TERM
	case_cleanup 2>/dev/null
	for ns in "$NS_C" "$NS_F" "$NS_S"; do
		kill_ns_procs "$ns"
	done
	sleep 0.1
	for ns in "$NS_C" "$NS_F" "$NS_S"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ namespaces

nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# tool NS ARGS...: run tcptool in NS, bounded by 90 s whatever its own --timeout says
tool() {
	local ns=$1
	shift
	timeout -k 5 90 ip netns exec "$ns" "$PY" "$TCPTOOL" "$@"
}

# wait_listen -t|-u NS PORT [PID]: wait up to 5 s for a TCP listener (-t) or a bound UDP
# socket (-u) on PORT in NS (gives up early when PID, the process expected to listen, has exited)
wait_listen() {
	local proto=$1 ns=$2 port=$3 pid=${4:-} i
	for i in $(seq 1 50); do
		nsx "$ns" ss -Hl"${proto#-}"n "sport = :$port" 2>/dev/null | grep -q . && return 0
		if [ -n "$pid" ] && ! alive "$pid"; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

wait_tcp_listen() { wait_listen -t "$@"; }
wait_udp_listen() { wait_listen -u "$@"; }

# wait_tcp_closed NS PORT: wait up to 5 s until nothing listens on PORT in NS
wait_tcp_closed() {
	local ns=$1 port=$2 i
	for i in $(seq 1 50); do
		nsx "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
	return 1
}

# wait_established NS PORT: wait up to 5 s for an established TCP connection to local PORT
wait_established() {
	local ns=$1 port=$2 i
	for i in $(seq 1 50); do
		nsx "$ns" ss -Htn state established "sport = :$port" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# wait_line FILE REGEX PID: wait up to 5 s for a line in FILE (written by PID)
wait_line() {
	local i
	for i in $(seq 1 50); do
		grep -qE "$2" "$1" && return 0
		alive "$3" || break
		sleep 0.1
	done
	grep -qE "$2" "$1"
}

wait_link_up() {
	local ns=$1 dev=$2 i
	for i in $(seq 1 50); do
		ip -n "$ns" link show dev "$dev" 2>/dev/null | grep -q 'LOWER_UP' && return 0
		sleep 0.1
	done
	return 1
}

topology_up() {
	local ns
	for ns in "$NS_C" "$NS_F" "$NS_S"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip -n "$NS_C" link add vc type veth peer name vfc netns "$NS_F" || return 1
	ip -n "$NS_F" link add vfs type veth peer name vs netns "$NS_S" || return 1
	ip -n "$NS_C" addr add "$C4/24" dev vc || return 1
	ip -n "$NS_C" addr add "$C6/64" dev vc nodad || return 1
	ip -n "$NS_F" addr add "$F4C/24" dev vfc || return 1
	ip -n "$NS_F" addr add "$F6C/64" dev vfc nodad || return 1
	ip -n "$NS_F" addr add "$F4S/24" dev vfs || return 1
	ip -n "$NS_F" addr add "$F6S/64" dev vfs nodad || return 1
	ip -n "$NS_S" addr add "$S4/24" dev vs || return 1
	ip -n "$NS_S" addr add "$S6/64" dev vs nodad || return 1
	nsx "$NS_F" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 || return 1
	ip -n "$NS_C" link set vc up && ip -n "$NS_F" link set vfc up &&
		ip -n "$NS_F" link set vfs up && ip -n "$NS_S" link set vs up || return 1
	wait_link_up "$NS_C" vc && wait_link_up "$NS_F" vfc &&
		wait_link_up "$NS_F" vfs && wait_link_up "$NS_S" vs
}

# need_root_and_tools: exit the script early (one SKIP or FAIL line) when it cannot run
need_root_and_tools() {
	local name c
	name=$(basename "$0" .sh)
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP $name: needs root"
		exit 0
	fi
	for c in ip nft ss timeout "$PY"; do
		command -v "$c" >/dev/null || { echo "SKIP $name: $c not installed"; exit 0; }
	done
	[ -x "$FERRY" ] || setup_fail "$FERRY not built"
}

# server_start NS MODE HOST PORT... [-- EXTRA ARGS]: start a tcptool server in the
# background, wait until all its ports listen; log in $T/srv-MODE.log
server_start() {
	local ns=$1 mode=$2 host=$3 p pid
	shift 3
	local ports=("$@")
	nsx "$ns" "$PY" "$TCPTOOL" serve "$mode" "$host" "${ports[@]}" >>"$T/srv-$mode.log" 2>&1 &
	pid=$!
	for p in "${ports[@]}"; do
		case $p in --*) break ;; esac
		wait_tcp_listen "$ns" "$p" "$pid" || return 1
	done
	SERVER_PID=$pid
}

# ------------------------------------------------------------------ ferry

FERRY_SEQ=0
FERRY_PID=
FERRY_OUT=
FERRY_ERR=

# ferry_start NS ARGS...: start ferry (or $FERRY_BIN) in NS in the background with the
# default disposition for every signal; stdout in $FERRY_OUT, stderr in $FERRY_ERR
ferry_start() {
	local ns=$1
	shift
	FERRY_SEQ=$((FERRY_SEQ + 1))
	FERRY_OUT=$T/$CASE.ferry$FERRY_SEQ.out
	FERRY_ERR=$T/$CASE.ferry$FERRY_SEQ.err
	echo "$(basename "${FERRY_BIN:-$FERRY}") $*" >"$T/$CASE.ferry$FERRY_SEQ.cmd"
	env --default-signal=INT,QUIT,TERM,HUP,USR1 \
		ip netns exec "$ns" "${FERRY_BIN:-$FERRY}" "$@" >"$FERRY_OUT" 2>"$FERRY_ERR" </dev/null &
	FERRY_PID=$!
}

# ferry_up [-u] NS PORT ARGS...: ferry_start, then fail the case unless PORT listens (TCP;
# with -u: a UDP socket is bound to it) within 5 s
ferry_up() {
	local proto=-t ns port rc
	if [ "$1" = -u ]; then proto=-u; shift; fi
	ns=$1 port=$2
	shift 2
	ferry_start "$ns" "$@"
	wait_listen "$proto" "$ns" "$port" "$FERRY_PID" && return 0
	if ! alive "$FERRY_PID"; then
		wait "$FERRY_PID" 2>/dev/null
		rc=$?
		fail "$(basename "${FERRY_BIN:-$FERRY}") $* exited with status $rc instead of listening on port $port"
	fi
	fail "ferry $* does not listen on port $port after 5 s"
}

# ferry_alive: fail the case if ferry died (crash) while the case ran
ferry_alive() {
	local rc
	alive "$FERRY_PID" && return 0
	wait "$FERRY_PID" 2>/dev/null
	rc=$?
	fail "ferry (pid $FERRY_PID) died during the case with status $rc"
}

# ferry_stop [SIG] [PID]: send SIG (default TERM), wait up to 5 s; returns the exit status,
# 124 if it had to be killed. PID must be a child of this shell.
ferry_stop() {
	local sig=${1:-TERM} pid=${2:-$FERRY_PID} i
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 1 50); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid" 2>/dev/null
}

# ferry_wait_exit SECS [PID]: wait (no signal) up to SECS for ferry to exit; returns its
# exit status, or 124 if it is still running
ferry_wait_exit() {
	local secs=$1 pid=${2:-$FERRY_PID} i
	for i in $(seq 1 $((secs * 10))); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && return 124
	wait "$pid" 2>/dev/null
}

# ferry_diag: show the tail of stderr of every ferry this case started
ferry_diag() {
	local f
	for f in "$T/$CASE".ferry*.err; do
		[ -s "$f" ] || continue
		echo "  --- $(cat "${f%.err}.cmd" 2>/dev/null) (stderr, last lines)"
		tail -n 8 "$f" | cut -c1-300 | sed 's/^/  | /'
	done
}

# ferry_stats: SIGUSR1 to ferry, wait up to 3 s for a new stats line on its stdout
ferry_stats() {
	local before after i
	before=$(grep -c '"stats"' "$FERRY_OUT")
	kill -USR1 "$FERRY_PID" 2>/dev/null || fail "ferry is gone, cannot ask for stats"
	for i in $(seq 1 30); do
		after=$(grep -c '"stats"' "$FERRY_OUT")
		[ "$after" -gt "$before" ] && return 0
		sleep 0.1
	done
	fail "no stats line on stdout within 3 s of SIGUSR1 (stdout: $(tail -c 300 "$FERRY_OUT"))"
}

# stat_get KEY...: values from the last stats line (KEY like rules.0.drops.max_conns)
stat_get() {
	"$PY" "$TCPTOOL" stats "$FERRY_OUT" "$@"
}

# wait_stat KEY OP VALUE: ask for stats (up to ~3 s) until `test VALUE_OF_KEY OP VALUE`
wait_stat() {
	local key=$1 op=$2 want=$3 v i
	for i in 1 2 3 4 5 6 7 8; do
		ferry_stats
		v=$(stat_get "$key" 2>&1) || fail "stats: $v"
		test "$v" "$op" "$want" 2>/dev/null && return 0
		sleep 0.3
	done
	fail "stats $key is $v, expected $op $want (line: $(grep '"stats"' "$FERRY_OUT" | tail -n1 | cut -c1-400))"
}

# ------------------------------------------------------------------ checks

# json_field JSON KEY: one field of a tcptool JSON result line
json_field() {
	"$PY" -c 'import json,sys
for l in sys.argv[1].splitlines():
    if l.startswith("{"):
        print(json.loads(l)[sys.argv[2]]); break' "$1" "$2"
}

# transfer NS HOST PORT BYTES: send-hash through ferry; fail unless the echo matches and
# the echo server logged the same bytes and hash (both directions proved)
transfer() {
	local ns=$1 host=$2 port=$3 bytes=$4 out sha
	out=$(tool "$ns" send-hash "$host" "$port" --bytes "$bytes" --timeout 60 2>&1) ||
		fail "transfer of $bytes bytes via $host:$port: $out"
	sha=$(json_field "$out" sent_sha256)
	server_saw "$sha" "$bytes" eof
	TRANSFER_OUT=$out
}

# server_saw SHA BYTES END: wait up to 3 s for the echo server to log a connection that
# received BYTES bytes with sha256 SHA and ended with END
server_saw() {
	local sha=$1 bytes=$2 end=$3 i
	for i in $(seq 1 30); do
		SERVER_LINE=$(grep -F "\"sha256\": \"$sha\"" "$T/srv-echo.log" | tail -n1)
		[ -n "$SERVER_LINE" ] && break
		sleep 0.1
	done
	[ -n "$SERVER_LINE" ] || fail "echo server never logged a connection with sha256 $sha"
	grep -qF "\"bytes\": $bytes," <<<"$SERVER_LINE" && grep -qF "\"end\": \"$end\"" <<<"$SERVER_LINE" ||
		fail "echo server saw $SERVER_LINE, expected $bytes bytes ending with $end"
}

# utool NS ARGS...: udptool in NS, bounded by 90 s whatever its own --timeout says
utool() {
	local ns=$1
	shift
	timeout -k 5 90 ip netns exec "$ns" "$PY" "$UDPTOOL" "$@"
}

# fam_addrs v4|v6: that family's addresses as clients write them (FC/FS: ferry's client and
# server sides, CL: the client) and inside endpoints (BFC, BSV: ferry's client side and the
# server; LO, ANY: loopback and the wildcard address)
fam_addrs() {
	if [ "$1" = v4 ]; then
		FC=$F4C FS=$F4S CL=$C4 BFC=$F4C BSV=$S4 LO=127.0.0.1 ANY=0.0.0.0
	else
		FC=$F6C FS=$F6S CL=$C6 BFC="[$F6C]" BSV="[$S6]" LO="[::1]" ANY="[::]"
	fi
}
