#!/bin/bash
# UDP forwarding: integrity and order of 10,000 datagrams of every size, 64 concurrent clients
# kept apart, idle timeout, LRU eviction at --max-sessions, an unreachable target (ICMP errors,
# no busy loop), IPv4<->IPv6, the udpfwd compatibility alias, --workers, datagram size limits
# (--max-datagram), UDP GSO/GRO in both directions, SIGHUP reload (sessions kept, changed rules
# rebound), and the reply source address of a wildcard listener.
#
#   client C ---- F (ferry) ---- S server        (topology: see lib.sh)
#
# Servers in S (tests/tools/udptool.py serve ..., dual-stack, each logs one JSON line per new
# sender address, i.e. per ferry session socket):
#   6000  echo   shared by the cases that only need datagrams back
#   6001  peer   replies with the address it saw the datagram come from, so a client learns
#                the source port of its session's upstream socket
#   60NN  per-case servers, when a case counts the upstream sockets or needs a server that
#         starts late (6005: nothing listens at first)
# Ferry listens on F, one port per case (8001...), so no case reuses another's port.
# A client that must be the "same client" across several datagrams binds a fixed source
# port (41000 + something).
. "$(dirname "$0")/lib.sh"

UDPFWD=$(dirname "$FERRY")/udpfwd
ECHO=6000 PEER=6001

# ------------------------------------------------------------------ helpers

# udp_server MODE PORT [ARGS...]: start a udptool server in S on [::]:PORT; its log (one
# line per new sender) is $T/srv-PORT.log. Servers started inside a case end with it.
udp_server() {
	local mode=$1 port=$2 pid
	shift 2
	: >"$T/srv-$port.log"
	nsx "$NS_S" "$PY" "$UDPTOOL" serve "$mode" :: "$port" "$@" >>"$T/srv-$port.log" 2>&1 &
	pid=$!
	[ "$CASE" = setup ] || track $pid
	wait_udp_listen "$NS_S" "$port" $pid || return 1
}

# peers_seen PORT: how many distinct sender addresses the server on PORT has seen
peers_seen() {
	grep -c '"event": "peer"' "$T/srv-$1.log"
}

# ask VAR NS HOST PORT SPORT TAG [ARGS...]: one datagram from local port SPORT to
# HOST:PORT; the reply must come back from HOST:PORT. VAR gets the reply as JSON (from the
# peer server: "port" is the source port of the session's upstream socket).
ask() {
	local _ask_var=$1 _ask_ns=$2 _ask_host=$3 _ask_port=$4 _ask_sport=$5 _ask_tag=$6 _ask_out
	shift 6
	_ask_out=$(utool "$_ask_ns" ask "$_ask_host" "$_ask_port" --sport "$_ask_sport" --tag "$_ask_tag" \
		--timeout 2 "$@" 2>&1) || fail "datagram '$_ask_tag' from port $_ask_sport to $_ask_host:$_ask_port: $_ask_out"
	printf -v "$_ask_var" '%s' "$_ask_out"
}

# upstream_port VAR NS HOST PORT SPORT TAG: ask the peer server (through ferry) which
# source port this client's session uses upstream
upstream_port() {
	local _up_var=$1 _up_out
	shift
	ask _up_out "$@"
	printf -v "$_up_var" '%s' "$(json_field "$_up_out" port)"
	[ -n "${!_up_var}" ] || fail "no upstream port in the peer server's reply: $_up_out"
}

# expect_stats KEY=VALUE...: the next stats line has exactly these values (retried ~3 s)
# expect_stats_now KEY=VALUE...: the same, once: for counters that must be right by now
expect_stats_now() {
	EXPECT_TRIES=1 expect_stats "$@"
}

expect_stats() {
	local kv keys=() want=() got i
	for kv in "$@"; do
		keys+=("${kv%%=*}")
		want+=("${kv#*=}")
	done
	for i in $(seq 1 "${EXPECT_TRIES:-10}"); do
		ferry_stats
		got=$(stat_get "${keys[@]}" 2>&1 | tr '\n' ' ') || fail "stats: $got"
		[ "$got" = "${want[*]} " ] && return 0
		sleep 0.3
	done
	fail "stats ${keys[*]} = $got; expected ${want[*]} (line: $(grep '"stats"' "$FERRY_OUT" | tail -n1 | cut -c1-600))"
}

# rcvbuf_errors NS: datagrams the kernel dropped in NS because a UDP socket's receive
# buffer was full (IPv4 + IPv6)
rcvbuf_errors() {
	nsx "$1" awk '$1 ~ /^Udp6?:$/ && $2 ~ /^[0-9]+$/ { for (i = 2; i <= NF; i++) if (h[$1, i] == "RcvbufErrors") n += $i; next }
		$1 ~ /^Udp:$/ { for (i = 2; i <= NF; i++) h[$1, i] = $i }
		$1 == "Udp6RcvbufErrors" { n += $2 }
		END { print n + 0 }' /proc/net/snmp /proc/net/snmp6
}

# worker_wakeups: "TID voluntary-context-switches" for every ferry thread but the main one,
# sorted by TID (a worker sleeps in epoll_wait: each wake-up for traffic is one switch)
worker_wakeups() {
	local f tid
	for f in /proc/"$FERRY_PID"/task/*/status; do
		tid=$(basename "$(dirname "$f")")
		[ "$tid" = "$FERRY_PID" ] && continue
		echo "$tid $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$f")"
	done | sort
}

# listener_inodes PORT: inodes of ferry's sockets bound to UDP PORT in F, sorted, one line
listener_inodes() {
	nsx "$NS_F" ss -Hlune "sport = :$1" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\n' ' '
}

# wait_line_in FILE REGEX: wait up to 5 s for a line matching REGEX in FILE
wait_line_in() {
	local i
	for i in $(seq 1 50); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# udp_out_datagrams NS: UDP sends in NS so far (a GSO send counts once)
udp_out_datagrams() {
	nsx "$1" awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ { n += $5 }
		$1 == "Udp6OutDatagrams" { n += $2 }
		END { print n + 0 }' /proc/net/snmp /proc/net/snmp6
}

# cpu_ticks PID: user + system time of the whole process (all threads), in clock ticks
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# ------------------------------------------------------------------ cases

client_cannot_reach_server_directly() {
	local out
	[ "$(nsx "$NS_F" sysctl -n net.ipv4.ip_forward)" = 0 ] || fail "ip_forward is on in F"
	# control: the servers answer from F
	ask out "$NS_F" "$S4" $ECHO 0 control
	ask out "$NS_F" "$S6" $PEER 0 control
	utool "$NS_C" ask "$S4" $ECHO --timeout 1 --expect-none >/dev/null 2>&1 ||
		fail "C got a reply from $S4:$ECHO without ferry"
	utool "$NS_C" ask "$S6" $ECHO --timeout 1 --expect-none >/dev/null 2>&1 ||
		fail "C got a reply from [$S6]:$ECHO without ferry"
}

# 1
stream_10000_datagrams_of_every_size_intact_in_order() {
	local out bytes
	ferry_up -u "$NS_F" 8001 "udp://$F4C:8001" "udp://$S4:$ECHO"
	# two in flight: order is tested, and two datagrams of any size fit a default socket
	# buffer (208 KiB); four do not: see the next case
	out=$(utool "$NS_C" stream "$F4C" 8001 --count 10000 --min 1 --max 65507 --window 2 \
		--seed 1 --timeout 60 2>&1) || fail "$out"
	bytes=$(json_field "$out" bytes)
	echo "  10000 datagrams, $((bytes / MIB)) MiB each way: $(json_field "$out" secs) s"
	expect_stats rules.0.sessions=1 rules.0.active=1 rules.0.dgrams_up=10000 rules.0.dgrams_down=10000 \
		rules.0.bytes_up="$bytes" rules.0.bytes_down="$bytes" rules.0.drops.oversize=0 \
		rules.0.drops.send_error=0 rules.0.drops.no_session=0
	ferry_alive
}

# 1b: the target answers four large datagrams at once (a client had four in flight); they
# arrive on the session socket before ferry can read it, and must all reach the client.
# Client and server sockets have 8 MiB buffers, ferry's listener 4 MiB: a loss here is the
# session socket's.
burst_of_4_large_replies_is_not_lost() {
	local out before after
	ferry_up -u "$NS_F" 8013 "udp://$F4C:8013" "udp://$S4:$ECHO"
	before=$(rcvbuf_errors "$NS_F")
	out=$(utool "$NS_C" stream "$F4C" 8013 --count 1000 --min 32768 --max 65507 --window 4 \
		--seed 3 --timeout 60 2>&1) || {
		after=$(rcvbuf_errors "$NS_F")
		ferry_stats
		fail "$out" "the kernel in F dropped $((after - before)) datagrams for full UDP receive buffers;" \
			"ferry counted drops $(stat_get rules.0.drops 2>&1)"
	}
	ferry_alive
}

# 2
clients_64_each_get_only_their_own_replies_from_the_listen_address() {
	local out
	udp_server echo 6002 || fail "echo server on 6002"
	ferry_up -u "$NS_F" 8002 "udp://$F4C:8002" "udp://$S4:6002"
	out=$(utool "$NS_C" clients "$F4C" 8002 --clients 64 --count 16 --min 1 --max 16384 --timeout 30 2>&1) ||
		fail "$out"
	[ "$(peers_seen 6002)" = 64 ] || fail "the server saw $(peers_seen 6002) upstream sockets for 64 clients"
	expect_stats rules.0.sessions=64 rules.0.active=64 rules.0.dgrams_up=1024 rules.0.dgrams_down=1024
	ferry_alive
}

# 3
idle_timeout_expires_session_and_next_datagram_opens_a_new_one() {
	local p1 p1b p2
	ferry_up -u "$NS_F" 8003 -t 1 "udp://$F4C:8003" "udp://$S4:$PEER"
	upstream_port p1 "$NS_C" "$F4C" 8003 41003 first
	# control: while the session lives, the same client keeps its upstream socket
	upstream_port p1b "$NS_C" "$F4C" 8003 41003 again
	[ "$p1" = "$p1b" ] || fail "a live session changed upstream port: $p1 -> $p1b"
	sleep 0.6
	expect_stats_now rules.0.sessions=1 rules.0.active=1 rules.0.expired=0
	sleep 0.9
	expect_stats_now rules.0.sessions=1 rules.0.active=0 rules.0.expired=1 rules.0.evicted=0
	upstream_port p2 "$NS_C" "$F4C" 8003 41003 after-expiry
	[ "$p2" != "$p1" ] || fail "after expiry the server still sees upstream port $p1 (no new socket)"
	expect_stats rules.0.sessions=2 rules.0.active=1 rules.0.expired=1
	ferry_alive
}

# 4 (one worker: one session table, so the rule's LRU is that table's)
max_sessions_evicts_the_least_recently_active() {
	local pa pb pc pd pe pa3 pb2 out
	ferry_up -u "$NS_F" 8004 --workers 1 --max-sessions 4 "udp://$F4C:8004" "udp://$S4:$PEER"
	upstream_port pa "$NS_C" "$F4C" 8004 41041 A1
	upstream_port pb "$NS_C" "$F4C" 8004 41042 B1
	upstream_port pc "$NS_C" "$F4C" 8004 41043 C1
	upstream_port pd "$NS_C" "$F4C" 8004 41044 D1
	# A speaks again, and gets no answer: a client's datagram alone makes it active (a reply
	# would also refresh the session and hide a forgotten touch on the way up)
	ask out "$NS_C" "$F4C" 8004 41041 noreply-A2 --timeout 0.5 --expect-none
	expect_stats rules.0.sessions=4 rules.0.active=4 rules.0.evicted=0 rules.0.dgrams_up=5
	upstream_port pe "$NS_C" "$F4C" 8004 41045 E1
	[ "$(printf '%s\n' "$pa" "$pb" "$pc" "$pd" "$pe" | sort -u | wc -l)" = 5 ] ||
		fail "five clients share upstream ports: $pa $pb $pc $pd $pe"
	expect_stats rules.0.sessions=5 rules.0.active=4 rules.0.evicted=1 rules.0.expired=0
	# A spoke after B: A keeps its session, B lost it
	upstream_port pa3 "$NS_C" "$F4C" 8004 41041 A3
	[ "$pa3" = "$pa" ] || fail "A (recently active) was evicted: upstream port $pa -> $pa3"
	upstream_port pb2 "$NS_C" "$F4C" 8004 41042 B2
	[ "$pb2" != "$pb" ] || fail "B (least recently active) kept upstream port $pb: not evicted"
	# B's return took C's place (C is now the least recently active)
	expect_stats rules.0.sessions=6 rules.0.active=4 rules.0.evicted=2 rules.0.expired=0
	ferry_alive
}

# 4b: --max-sessions is a limit of the rule, and --workers 2 (the default on a 2-CPU host)
# must not change which session makes room. Twelve clients arrive one after another with a
# limit of 4: each newcomer must be served (no no_session drop) and must push out the least
# recently active session of the rule, so the last four clients keep their sessions. Each
# worker has its own table; evicting the oldest of the receiving worker's table instead
# passes this by chance with a probability of well under 1%.
# each worker owns its sessions (no lock between workers): --max-sessions is split between
# them, and a worker makes room by closing its own least recently active session
max_sessions_with_2_workers_splits_the_limit_and_evicts_per_worker() {
	local i p active
	local -a ports
	ferry_up -u "$NS_F" 8014 --workers 2 --max-sessions 4 "udp://$F4C:8014" "udp://$S4:$PEER"
	for i in $(seq 1 12); do
		upstream_port p "$NS_C" "$F4C" 8014 $((41400 + i)) "client$i"
		ports[i]=$p
	done
	ferry_stats
	active=$(stat_get rules.0.active) || fail "stats: $active"
	# 2 per worker; 3 only if the kernel's hash put a single one of 12 clients on a worker
	[ "$active" -le 4 ] && [ "$active" -ge 3 ] || fail "active sessions $active, expected 4 (2 per worker)"
	expect_stats rules.0.sessions=12 rules.0.evicted=$((12 - active)) rules.0.drops.no_session=0
	# the most recent client is the most recent of its worker: it kept its session
	upstream_port p "$NS_C" "$F4C" 8014 41412 "client12-again"
	[ "$p" = "${ports[12]}" ] || fail "the most recent client lost its session: upstream port ${ports[12]} -> $p"
	ferry_alive
}

# 5
closed_target_port_costs_no_cpu_and_session_resumes() {
	local out hz t0 t1 used limit
	hz=$(getconf CLK_TCK)
	ferry_up -u "$NS_F" 8005 "udp://$F4C:8005" "udp://$S4:6005"
	[ -z "$(nsx "$NS_S" ss -Hlun "sport = :6005")" ] || fail "something listens on $S4:6005"
	out=$(utool "$NS_C" blast "$F4C" 8005 --sport 41005 --rate 200 --secs 2 2>&1) || fail "blast: $out"
	t0=$(cpu_ticks "$FERRY_PID")
	sleep 2
	t1=$(cpu_ticks "$FERRY_PID")
	used=$((t1 - t0)) limit=$((hz * 2 * 5 / 100))
	[ "$used" -lt "$limit" ] ||
		fail "ferry used $used ticks of CPU in 2 idle s after ICMP errors (limit $limit, $hz/s): busy loop?"
	ferry_alive
	wait_stat rules.0.drops.icmp_error -ge 1
	expect_stats rules.0.sessions=1 rules.0.active=1
	udp_server echo 6005 || fail "echo server on 6005"
	ask out "$NS_C" "$F4C" 8005 41005 after-server-start --size 500
	expect_stats rules.0.sessions=1 rules.0.active=1 rules.0.dgrams_down=1
	ferry_alive
}

# 6
ipv6_client_to_ipv4_target() {
	local out
	udp_server echo 6006 || fail "echo server on 6006"
	ferry_up -u "$NS_F" 8006 "udp://[$F6C]:8006" "udp://$S4:6006"
	out=$(utool "$NS_C" stream "$F6C" 8006 --count 300 --min 1 --max 65507 --window 2 --timeout 30 2>&1) || fail "$out"
	grep -qF "\"peer\": \"$F4S:" "$T/srv-6006.log" ||
		fail "server did not see ferry's IPv4 address: $(head -n 3 "$T/srv-6006.log")"
	expect_stats rules.0.sessions=1 rules.0.dgrams_down=300
	ferry_alive
}

ipv4_client_to_ipv6_target() {
	local out
	udp_server echo 6016 || fail "echo server on 6016"
	ferry_up -u "$NS_F" 8016 "udp://$F4C:8016" "udp://[$S6]:6016"
	out=$(utool "$NS_C" stream "$F4C" 8016 --count 300 --min 1 --max 65507 --window 2 --timeout 30 2>&1) || fail "$out"
	grep -qF "\"peer\": \"[$F6S]:" "$T/srv-6016.log" ||
		fail "server did not see ferry's IPv6 address: $(head -n 3 "$T/srv-6016.log")"
	expect_stats rules.0.sessions=1 rules.0.dgrams_down=300
	ferry_alive
}

# 7
udpfwd_alias_accepts_portfwd_options() {
	local out p1 p1b p2 rc bad
	[ -x "$UDPFWD" ] || fail "$UDPFWD missing (make should create the symlink)"
	# portfwd's command line, options after the addresses; -t 1 is honoured as in case 3
	FERRY_BIN=$UDPFWD ferry_up -u "$NS_F" 8007 "$F4C:8007" "$S4:$PEER" -t 1 -H 128 -r -R
	upstream_port p1 "$NS_C" "$F4C" 8007 41007 first
	upstream_port p1b "$NS_C" "$F4C" 8007 41007 again
	[ "$p1" = "$p1b" ] || fail "udpfwd: a live session changed upstream port: $p1 -> $p1b"
	sleep 0.6
	expect_stats_now rules.0.expired=0 rules.0.active=1
	sleep 0.9
	expect_stats_now rules.0.expired=1 rules.0.active=0
	upstream_port p2 "$NS_C" "$F4C" 8007 41007 after-expiry
	[ "$p2" != "$p1" ] || fail "udpfwd -t 1: session not renewed after 1.5 s idle (port $p1)"
	ferry_stop TERM || fail "udpfwd did not exit cleanly on SIGTERM"
	# the brief's command line, options before and after: forwards (echo, 20 KB)
	FERRY_BIN=$UDPFWD ferry_up -u "$NS_F" 8017 -t 5 "$F4C:8017" "$S4:$ECHO" -H 128 -r -R
	ask out "$NS_C" "$F4C" 8017 0 udpfwd --size 20000
	ferry_stop TERM || fail "udpfwd did not exit cleanly on SIGTERM"
	# -H takes a value and checks it: a bucket count of 0 or "x" is a usage error naming -H
	for bad in 0 x; do
		out=$(timeout -k 2 5 ip netns exec "$NS_F" "$UDPFWD" "$F4C:8027" "$S4:$ECHO" -H $bad 2>&1 </dev/null)
		rc=$?
		[ $rc = 2 ] && grep -qF -- "-H" <<<"$out" || fail "udpfwd -H $bad: exit $rc, '$out'; expected 2 naming -H"
	done
	out=$(timeout -k 2 5 ip netns exec "$NS_F" "$UDPFWD" "$F4C:8027" "$S4:$ECHO" -t 0 2>&1 </dev/null)
	rc=$?
	[ $rc = 2 ] && grep -qF -- "-t" <<<"$out" || fail "udpfwd -t 0: exit $rc, '$out'; expected 2 naming -t"
	# -o: IPV6_V6ONLY on a wildcard IPv6 listener: IPv6 clients only
	FERRY_BIN=$UDPFWD ferry_up -u "$NS_F" 8037 "[::]:8037" "$S4:$ECHO" -o
	ask out "$NS_C" "$F6C" 8037 0 v6-client --size 1000
	utool "$NS_C" ask "$F4C" 8037 --timeout 1 --expect-none >/dev/null 2>&1 ||
		fail "udpfwd -o on [::]: an IPv4 client was forwarded"
	ferry_stop TERM || fail "udpfwd did not exit cleanly on SIGTERM"
	# control: without -o the same listener is dual-stack (IPv4 clients as v4-mapped keys)
	FERRY_BIN=$UDPFWD ferry_up -u "$NS_F" 8047 "[::]:8047" "$S4:$ECHO"
	ask out "$NS_C" "$F4C" 8047 0 v4-client --size 1000
	ask out "$NS_C" "$F6C" 8047 0 v6-client --size 1000
	ferry_alive
}

# 8
workers_2_spread_32_sessions_without_duplicates() {
	local out n
	udp_server echo 6008 || fail "echo server on 6008"
	ferry_up -u "$NS_F" 8008 --workers 2 "udp://$F4C:8008" "udp://$S4:6008"
	n=$(nsx "$NS_F" ss -Hlun "sport = :8008" | wc -l)
	[ "$n" = 2 ] || fail "$n sockets bound to 8008 with --workers 2, expected 2 (one per worker)"
	worker_wakeups >"$T/wakeups.before"
	out=$(utool "$NS_C" clients "$F4C" 8008 --clients 32 --count 16 --min 1 --max 16384 --timeout 30 2>&1) ||
		fail "$out"
	worker_wakeups >"$T/wakeups.after"
	# both workers served clients: each woke up for datagrams (one worker alone gets all 32
	# clients' 4-tuples with a probability of 2^-31)
	n=$(join "$T/wakeups.before" "$T/wakeups.after" | awk '$3 - $2 >= 20' | wc -l)
	[ "$n" -ge 2 ] || fail "only $n ferry threads woke up 20+ times for 512 datagrams with --workers 2:" \
		"$(join "$T/wakeups.before" "$T/wakeups.after" | tr '\n' ';')"
	[ "$(peers_seen 6008)" = 32 ] || fail "the server saw $(peers_seen 6008) upstream sockets for 32 clients"
	expect_stats rules.0.sessions=32 rules.0.active=32 rules.0.dgrams_up=512 rules.0.dgrams_down=512
	ferry_alive
}

# 9
datagram_sizes_pass_whole_and_max_datagram_drops_larger() {
	local out
	ferry_up -u "$NS_F" 8009 "udp://$F4C:8009" "udp://$S4:$ECHO"
	ask out "$NS_C" "$F4C" 8009 0 big --size 60000
	ask out "$NS_C" "$F4C" 8009 0 max-v4 --size 65507
	ask out "$NS_C" "$F4C" 8009 0 "" --size 0
	expect_stats rules.0.dgrams_up=3 rules.0.dgrams_down=3 rules.0.bytes_up=125507 rules.0.drops.oversize=0
	ferry_stop TERM
	# IPv6 carries 20 bytes more
	ferry_up -u "$NS_F" 8019 "udp://[$F6C]:8019" "udp://[$S6]:$ECHO"
	ask out "$NS_C" "$F6C" 8019 0 max-v6 --size 65527
	ferry_stop TERM
	# --max-datagram 1000: 1000 bytes pass, 1001 are dropped and counted, nothing truncated
	ferry_up -u "$NS_F" 8029 --max-datagram 1000 "udp://$F4C:8029" "udp://$S4:$ECHO"
	ask out "$NS_C" "$F4C" 8029 0 limit --size 1000
	out=$(utool "$NS_C" ask "$F4C" 8029 --size 1001 --timeout 1 --expect-none 2>&1) ||
		fail "1001 bytes with --max-datagram 1000: $out"
	expect_stats rules.0.dgrams_up=1 rules.0.dgrams_down=1 rules.0.drops.oversize=1
	ferry_stop TERM
	# the limit holds for replies too: the server answers 1001 bytes to a small datagram
	udp_server peer 6009 --pad 1001 || fail "peer server on 6009"
	ferry_up -u "$NS_F" 8039 --max-datagram 1000 "udp://$F4C:8039" "udp://$S4:6009"
	out=$(utool "$NS_C" ask "$F4C" 8039 --size 10 --timeout 1 --expect-none 2>&1) ||
		fail "1001-byte reply with --max-datagram 1000: $out"
	[ "$(peers_seen 6009)" = 1 ] || fail "the small datagram did not reach the server"
	expect_stats rules.0.dgrams_up=1 rules.0.dgrams_down=0 rules.0.drops.oversize=1
	ferry_alive
}

# 9b: ferry sends runs of equal-sized datagrams as one UDP GSO send (the kernel cuts them
# at the segment size; the last may be shorter). Bursts of 32 in flight make such runs in
# both directions; every datagram must still arrive whole, alone and in order: same sizes
# (1 byte, the largest GSO segment, one byte above it), a shorter last one, IPv6, a wildcard
# listener (the source address rides along as IP_PKTINFO), and a client link whose MTU is
# too small for the segments (the kernel refuses GSO; ferry must send them plainly).
equal_sized_bursts_keep_datagram_boundaries() {
	local out bad="" sizes before after mtu_out
	ip -n "$NS_F" addr add 10.77.1.3/24 dev vfc 2>/dev/null
	ferry_up -u "$NS_F" 8030 "udp://$F4C:8030" "udp://$S4:$ECHO"
	before=$(udp_out_datagrams "$NS_F")
	for sizes in 1 1452 1473 1000,1000,1000,1000,400 1200,1200,1200,7; do
		out=$(utool "$NS_C" stream "$F4C" 8030 --sizes $sizes --count 1000 --window 32 --timeout 30 2>&1) ||
			bad="$bad | sizes $sizes: $out"
	done
	after=$(udp_out_datagrams "$NS_F")
	echo "  ferry relayed 10000 datagrams with $((after - before)) UDP sends (fewer: GSO was used)"
	ferry_stop TERM
	ferry_up -u "$NS_F" 8031 "udp://[$F6C]:8031" "udp://[$S6]:$ECHO"
	out=$(utool "$NS_C" stream "$F6C" 8031 --sizes 1452,1452,1452,100 --count 1000 --window 32 --timeout 30 2>&1) ||
		bad="$bad | IPv6: $out"
	ferry_stop TERM
	ferry_up -u "$NS_F" 8032 "udp://0.0.0.0:8032" "udp://$S4:$ECHO"
	out=$(utool "$NS_C" stream 10.77.1.3 8032 --sizes 1400 --count 1000 --window 32 --timeout 30 2>&1) ||
		bad="$bad | wildcard listener, second address: $out"
	# the client link at MTU 1280: 1452-byte segments no longer fit
	ip -n "$NS_F" link set vfc mtu 1280 && ip -n "$NS_C" link set vc mtu 1280 || bad="$bad | cannot set MTU"
	mtu_out=$(utool "$NS_C" stream "$F4C" 8032 --sizes 1452 --count 1000 --window 32 --timeout 30 2>&1) ||
		bad="$bad | MTU 1280: $mtu_out"
	ip -n "$NS_F" link set vfc mtu 1500
	ip -n "$NS_C" link set vc mtu 1500
	[ -z "$bad" ] || fail "bursts of equal-sized datagrams:$bad"
	ferry_alive
}

# 9c: clients and servers that send with UDP GSO themselves (QUIC stacks do): ferry reads
# such a send as one coalesced buffer (UDP GRO) and must hand on each datagram alone, with
# its own size, in order, in both directions; empty datagrams are datagrams too.
gso_senders_datagrams_relayed_one_by_one() {
	local out bad="" sizes
	udp_server echo 6033 --gso || fail "GSO echo server on 6033"
	ferry_up -u "$NS_F" 8033 "udp://$F4C:8033" "udp://$S4:6033"
	for sizes in 1200 1000,1000,1000,300 1 1452 0,5,0; do
		out=$(utool "$NS_C" stream "$F4C" 8033 --gso --sizes $sizes --count 1000 --window 32 --timeout 30 2>&1) ||
			bad="$bad | sizes $sizes: $out"
	done
	[ -z "$bad" ] || fail "GSO senders:$bad"
	expect_stats rules.0.sessions=5 rules.0.dgrams_up=5000 rules.0.dgrams_down=5000 rules.0.drops.oversize=0 \
		rules.0.drops.send_error=0
	ferry_alive
}

# 10
sighup_keeps_sessions_of_unchanged_rule_and_starts_new_rule() {
	local conf=$T/udp-hup.conf p1 p1b p2 ino
	printf '# udp reload test\nudp://%s:8010 udp://%s:%s\n' "$F4C" "$S4" $PEER >"$conf"
	ferry_up -u "$NS_F" 8010 -c "$conf"
	ino=$(listener_inodes 8010)
	upstream_port p1 "$NS_C" "$F4C" 8010 41010 before-reload
	printf '# udp reload test\nudp://%s:8010 udp://%s:%s\nudp://%s:8011 udp://[%s]:%s -t 5   # added\n' \
		"$F4C" "$S4" $PEER "$F4C" "$S6" $PEER >"$conf"
	kill -HUP "$FERRY_PID"
	wait_udp_listen "$NS_F" 8011 "$FERRY_PID" || fail "added rule does not bind 8011 after SIGHUP"
	upstream_port p1b "$NS_C" "$F4C" 8010 41010 after-reload
	[ "$p1b" = "$p1" ] || fail "unchanged rule lost its session: upstream port $p1 -> $p1b"
	[ "$(listener_inodes 8010)" = "$ino" ] || fail "unchanged rule's sockets were replaced: $ino -> $(listener_inodes 8010)"
	upstream_port p2 "$NS_C" "$F4C" 8011 41011 new-rule
	expect_stats rules.0.listen="\"udp://$F4C:8010\"" rules.0.sessions=1 rules.0.active=1 rules.0.dgrams_up=2 \
		rules.1.listen="\"udp://$F4C:8011\"" rules.1.sessions=1
	ferry_alive
}

# A rule whose options change is a new rule on the same port: the old one must let go of
# the port (and its sessions) and the new one bind it, without a gap the user has to fix.
sighup_changed_udp_rule_rebinds_its_port() {
	local conf=$T/udp-hup2.conf p1 p2 out
	printf 'udp://%s:8018 udp://%s:%s -t 30\n' "$F4C" "$S4" $PEER >"$conf"
	ferry_up -u "$NS_F" 8018 -c "$conf"
	upstream_port p1 "$NS_C" "$F4C" 8018 41018 before-change
	# sessions on both workers: closing them is work the old rule must finish first
	out=$(utool "$NS_C" clients "$F4C" 8018 --clients 64 --count 1 --max 100 --any-reply --timeout 10 2>&1) || fail "$out"
	printf 'udp://%s:8018 udp://%s:%s -t 20\n' "$F4C" "$S4" $PEER >"$conf"
	kill -HUP "$FERRY_PID"
	wait_line_in "$FERRY_ERR" 'reloaded ' || fail "no log line about the reload within 5 s"
	sleep 0.2
	grep -q 'error' "$FERRY_ERR" && fail "reload of a changed rule failed: $(grep error "$FERRY_ERR" | tail -n 1)"
	upstream_port p2 "$NS_C" "$F4C" 8018 41018 after-change
	[ "$p2" != "$p1" ] || fail "the changed rule kept the old rule's session (upstream port $p1)"
	expect_stats rules.0.sessions=1 rules.0.dgrams_up=1
	ferry_alive
}

# Replies leave from the listening socket: with a wildcard listener on a host with several
# addresses the client must still see the address it sent to, or a connected client socket
# (and every NAT on the way) drops the reply.
wildcard_listener_replies_from_the_address_the_client_used() {
	local out bad="" dst
	ip -n "$NS_F" addr add 10.77.1.3/24 dev vfc 2>/dev/null
	ip -n "$NS_F" addr add fd77:1::3/64 dev vfc nodad 2>/dev/null
	ferry_up -u "$NS_F" 8012 "udp://0.0.0.0:8012" "udp://$S4:$ECHO"
	for dst in "$F4C" 10.77.1.3; do
		out=$(utool "$NS_C" ask "$dst" 8012 --size 100 --timeout 2 2>&1) || bad="$bad | 0.0.0.0:8012 asked at $dst: $out"
	done
	ferry_stop TERM
	ferry_up -u "$NS_F" 8022 "udp://[::]:8022" "udp://$S4:$ECHO"
	for dst in "$F6C" fd77:1::3 "$F4C" 10.77.1.3; do
		out=$(utool "$NS_C" ask "$dst" 8022 --size 100 --timeout 2 2>&1) || bad="$bad | [::]:8022 asked at $dst: $out"
	done
	[ -z "$bad" ] || fail "replies from the wrong address:$bad"
	ferry_alive
}

need_root_and_tools
topology_up || setup_fail "could not build namespaces"
udp_server echo $ECHO || setup_fail "echo server"
udp_server peer $PEER || setup_fail "peer server"

run_case client_cannot_reach_server_directly
run_case stream_10000_datagrams_of_every_size_intact_in_order
run_case burst_of_4_large_replies_is_not_lost
run_case clients_64_each_get_only_their_own_replies_from_the_listen_address
run_case idle_timeout_expires_session_and_next_datagram_opens_a_new_one
run_case max_sessions_evicts_the_least_recently_active
run_case max_sessions_with_2_workers_splits_the_limit_and_evicts_per_worker
run_case closed_target_port_costs_no_cpu_and_session_resumes
run_case ipv6_client_to_ipv4_target
run_case ipv4_client_to_ipv6_target
run_case udpfwd_alias_accepts_portfwd_options
run_case workers_2_spread_32_sessions_without_duplicates
run_case datagram_sizes_pass_whole_and_max_datagram_drops_larger
run_case equal_sized_bursts_keep_datagram_boundaries
run_case gso_senders_datagrams_relayed_one_by_one
run_case sighup_keeps_sessions_of_unchanged_rule_and_starts_new_rule
run_case sighup_changed_udp_rule_rebinds_its_port
run_case wildcard_listener_replies_from_the_address_the_client_used
finish
