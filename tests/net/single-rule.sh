#!/bin/bash
# Single-client rules and the ICMP tunnel as ferry rules (URL endpoints and the config file):
# `udp://L icmp://H:ID[:REPLY_ID]` (tunnel client end), `icmp://L:ID udp://T` (tunnel server
# end), `udp://L udp://T --single-client`. Case names start with the brief's letter:
#   a_*  the tunnel by URL rules, ferry to ferry, v4 and v6, UDP echoed back intact
#   b_*  config files mixing a tcp rule with tunnel ends; URL rules against the --here/--there
#        front-end, both ways round (the two front-ends speak the same wire format)
#   c_*  the single-client lock (a second client waits for --idle-timeout) and --on-timeout exit
#   d_*  SIGHUP adds and removes an icmp rule while a tcp transfer goes on
#   e_*  invalid pairs and options exit 2 naming the bad word
#
#   client C ---- F ---- S          (topology: see lib.sh; forwarding off in F)
#
#   tunnel      ferry A in F: udp://F:port icmp://S:ID         client in C
#               ferry B in S: icmp://any:ID udp://loopback:6300 (UDP echo server in S)
#   TCP rules   F:port -> S:6400 (tcptool echo server in S)
#
# S and F ignore echo requests (their kernels would answer the tunnel's requests too); ping
# sockets are allowed in F, so a tunnel client end gets a ping socket as pkthere's would.
#
#   tests/net/single-rule.sh [SUBSTRING...]     only the cases whose name contains one of them
. "$(dirname "$0")/lib.sh"

UECHO=6300 ECHO=6400
SNIFF=$T/sniff.py

# a raw ICMP socket printing one JSON line per echo message seen: its type and identifier
cat >"$SNIFF" <<'PYEOF'
import json, socket, struct, sys, time
v6 = sys.argv[1] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.settimeout(0.1)
end = time.monotonic() + float(sys.argv[2])
print(json.dumps({"ready": True}), flush=True)
while time.monotonic() < end:
    try:
        data = s.recv(70000)
    except socket.timeout:
        continue
    if not v6:
        data = data[(data[0] & 15) * 4:]
    if len(data) >= 8 and data[0] in (0, 8, 128, 129):
        print(json.dumps({"type": data[0], "id": struct.unpack_from("!H", data, 4)[0]}), flush=True)
PYEOF

# ------------------------------------------------------------------ helpers

# up NAME NS ARGS...: start ferry in NS and wait (5 s) for its "ferry VERSION: N rules" line,
# which comes once every rule runs; NAME_PID, NAME_OUT, NAME_ERR name it afterwards
up() {
	local name=$1 ns=$2 rc
	shift 2
	ferry_start "$ns" "$@"
	track "$FERRY_PID"
	printf -v "${name}_PID" '%s' "$FERRY_PID"
	printf -v "${name}_OUT" '%s' "$FERRY_OUT"
	printf -v "${name}_ERR" '%s' "$FERRY_ERR"
	wait_line "$FERRY_ERR" 'ferry [0-9.]+: [0-9]+ rules?, ' "$FERRY_PID" && return 0
	if ! alive "$FERRY_PID"; then
		wait "$FERRY_PID"
		rc=$?
		fail "ferry $* exited with status $rc at start: $(tail -n 2 "$FERRY_ERR" | cut -c1-200)"
	fi
	fail "ferry $* did not start its rules within 5 s"
}

# pk_up NAME NS ARGS...: the --here/--there front-end (as root it needs --user), waiting for
# the end of its startup log
pk_up() {
	local name=$1 ns=$2
	shift 2
	ferry_start "$ns" "$@" --user nobody
	track "$FERRY_PID"
	printf -v "${name}_PID" '%s' "$FERRY_PID"
	printf -v "${name}_OUT" '%s' "$FERRY_OUT"
	printf -v "${name}_ERR" '%s' "$FERRY_ERR"
	wait_line "$FERRY_OUT" '^\[INFO\] Re-resolve every' "$FERRY_PID" ||
		fail "ferry $* (--here/--there) printed no startup log: $(tail -n 2 "$FERRY_ERR" | cut -c1-200)"
}

# use NAME: the ferry that ferry_stats, stat_get and wait_stat talk to
use() {
	local v=${1}_PID o=${1}_OUT
	FERRY_PID=${!v} FERRY_OUT=${!o}
}

# stats_is NAME KEY=VALUE...: ask that ferry for a stats line; it must have these values
stats_is() {
	local kv got
	use "$1"
	shift
	ferry_stats
	for kv in "$@"; do
		got=$(stat_get "${kv%%=*}" 2>&1) || fail "stats: $got"
		got=${got//\"/}	# strings come quoted (JSON)
		[ "$got" = "${kv#*=}" ] || fail "stats ${kv%%=*} is $got, expected ${kv#*=} ($(basename "$FERRY_OUT"))"
	done
}

# stop NAME...: SIGTERM; each must exit 0 within 5 s
stop() {
	local name v rc
	for name in "$@"; do
		v=${name}_PID
		kill -TERM "${!v}" 2>/dev/null
	done
	for name in "$@"; do
		v=${name}_PID
		ferry_stop TERM "${!v}"
		rc=$?
		[ "$rc" = 0 ] || fail "ferry $name exited with status $rc on SIGTERM, expected 0"
	done
}

# stream NS HOST PORT COUNT: COUNT datagrams of 0..1400 bytes, one at a time (the first waits
# for the tunnel's handshake), each echoed back intact and in order; STREAM_BYTES = their sum
stream() {
	local out
	out=$(utool "$1" stream "$2" "$3" --count "$4" --min 0 --max 1400 --window 1 --timeout 40 2>&1) ||
		fail "$4 datagrams through $2:$3: $out"
	STREAM_BYTES=$(json_field "$out" bytes)
}

# ask NS HOST PORT SPORT SIZE: one datagram from local port SPORT, echoed back within 2 s
ask() {
	local out
	out=$(utool "$1" ask "$2" "$3" --sport "$4" --size "$5" --tag "from $4" --timeout 2 2>&1) ||
		fail "$5 bytes from port $4 to $2:$3: $out"
}

# ask_none NS HOST PORT SPORT SIZE: the same datagram, and no answer within 0.5 s
ask_none() {
	local out
	out=$(utool "$1" ask "$2" "$3" --sport "$4" --size "$5" --tag "from $4" --timeout 0.5 --expect-none 2>&1) ||
		fail "$5 bytes from port $4 to $2:$3 (expected no answer): $out"
}

# udp_gone NS PORT: wait up to 5 s until no UDP socket is bound to PORT in NS
udp_gone() {
	local i
	for i in $(seq 1 50); do
		nsx "$1" ss -Huan "sport = :$2" 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
	return 1
}

# (lib.sh ends the processes in C and F with each case; a ferry or sniffer started in S is
# tracked, so that it ends too while the echo servers of S stay for the next case)

# ------------------------------------------------------------------ a: the tunnel by URL rules

# tunnel FAMILY PORT A_TARGET B_LISTEN: ferry B (server end) in S, ferry A (client end) in F,
# 300 datagrams of 0..1400 bytes through them; both count every datagram and byte
tunnel() {
	local f=$1 port=$2 a_target=$3 b_listen=$4
	fam_addrs "$f"
	up B "$NS_S" "$b_listen" "udp://$LO:$UECHO" --stats-interval 0
	up A "$NS_F" "udp://$BFC:$port" "$a_target" --log-level info
	stream "$NS_C" "$FC" "$port" 300
	stats_is A rules.0.dgrams_up=300 rules.0.dgrams_down=300 rules.0.bytes_up="$STREAM_BYTES" \
		rules.0.bytes_down="$STREAM_BYTES" rules.0.single.locked=true rules.0.single.malformed=0 \
		rules.0.drops.oversize=0 rules.0.drops.send_error=0
	stats_is B rules.0.dgrams_up=300 rules.0.dgrams_down=300 rules.0.bytes_up="$STREAM_BYTES" \
		rules.0.single.locked=true rules.0.single.duplicates=0
	stop A B
}
# fixed echo ID on both ends (A: a ping socket with that ID; B: a raw listener for it)
a_tunnel_url_rules_fixed_id_v4() { tunnel v4 7100 "icmp://$S4:7001" "icmp://0.0.0.0:7001"; }
a_tunnel_url_rules_fixed_id_v6() { tunnel v6 7101 "icmp://[$S6]:7002" "icmp://[::]:7002"; }
# ID 0 (or none): A takes its ping socket's ID, B learns the first peer's
a_tunnel_url_rules_dynamic_ids_v4() { tunnel v4 7102 "icmp://$S4" "icmp://0.0.0.0:0"; }
a_tunnel_url_rules_dynamic_ids_v6() { tunnel v6 7103 "icmp://[$S6]:0" "icmp://[::]"; }

# sniff NAME NS FAMILY: a raw ICMP sniffer in NS for 20 s, its lines in $T/NAME.sniff
sniff() {
	local pid
	ip netns exec "$2" "$PY" "$SNIFF" "$3" 20 >"$T/$1.sniff" 2>&1 &
	pid=$!
	track $pid
	wait_line "$T/$1.sniff" ready $pid || fail "sniffer in $2 did not start"
}

# REPLY_ID in the client end's URL is pkthere's --there-reply-id: B must send its echo
# replies to that ID (a sniffer in F sees them arrive), while A's requests go to the echo ID
# (a sniffer in S sees them arrive); a raw socket sees what comes in, not what goes out
a_tunnel_reply_id_is_the_id_replies_come_to() {
	local port=7104 n
	sniff F "$NS_F" 4
	sniff S "$NS_S" 4
	up B "$NS_S" "icmp://0.0.0.0:7004" "udp://127.0.0.1:$UECHO"
	up A "$NS_F" "udp://$F4C:$port" "icmp://$S4:7004:7204"
	stream "$NS_C" "$F4C" "$port" 20
	sleep 0.3
	n=$(grep -c '"type": 0, "id": 7204' "$T/F.sniff")
	[ "$n" -ge 20 ] || fail "$n echo replies to ID 7204 arrived in F, expected at least 20 ($(sort "$T/F.sniff" | uniq -c | head -n 5 | tr '\n' ' '))"
	grep -q '"type": 0, "id": 7004' "$T/F.sniff" && fail "an echo reply came back to the request ID 7004"
	n=$(grep -c '"type": 8, "id": 7004' "$T/S.sniff")
	[ "$n" -ge 20 ] || fail "$n echo requests to ID 7004 arrived in S, expected at least 20"
	stop A B
}

# ------------------------------------------------------------------ b: config files, front-ends

# one ferry, one config: a tcp rule and both tunnel ends (the tunnel runs over F's loopback):
# the TCP transfer and the datagrams cross side by side
b_config_tcp_rule_and_both_tunnel_ends_in_one_ferry() {
	local conf=$T/b1.conf
	cat >"$conf" <<-EOF
	# a tcp rule and an ICMP tunnel, both of its ends here
	tcp://$F4C:7110 tcp://$S4:$ECHO
	udp://$F4C:7111 icmp://127.0.0.1:7010 --icmp-sync-pps 5
	icmp://127.0.0.1:7010 udp://$S4:$UECHO --idle-timeout 30
	EOF
	up F "$NS_F" -c "$conf"
	transfer "$NS_C" "$F4C" 7110 $((4 * MIB))
	stream "$NS_C" "$F4C" 7111 200
	transfer "$NS_C" "$F4C" 7110 $MIB
	stats_is F rules.0.accepted=2 rules.1.dgrams_up=200 rules.1.dgrams_down=200 rules.2.dgrams_up=200 \
		rules.2.dgrams_down=200 rules.1.bytes_up="$STREAM_BYTES" rules.2.bytes_down="$STREAM_BYTES"
	stop F
}

# the client end as a URL rule in a config file, the server end as `ferry --here ICMP:...`
url_client_to_pkthere_server() {
	local f=$1 port=$2 id=$3 conf=$T/b-$1.conf
	fam_addrs "$f"
	printf 'tcp://%s:%s tcp://%s:%s\nudp://%s:%s icmp://%s:%s\n' "$BFC" $((port + 50)) "$BSV" $ECHO \
		"$BFC" "$port" "$BSV" "$id" >"$conf"
	pk_up B "$NS_S" --here "ICMP:$ANY:$id" --there "UDP:$LO:$UECHO"
	up A "$NS_F" -c "$conf"
	stream "$NS_C" "$FC" "$port" 200
	transfer "$NS_C" "$FC" $((port + 50)) $MIB
	stats_is A rules.1.dgrams_up=200 rules.1.dgrams_down=200 rules.1.bytes_down="$STREAM_BYTES"
	grep -q '^\[INFO\] Locked to single client' "$B_OUT" || fail "the --here/--there server end never locked"
	stop A
}
b_url_client_end_to_pkthere_server_end_v4() { url_client_to_pkthere_server v4 7120 7020; }
b_url_client_end_to_pkthere_server_end_v6() { url_client_to_pkthere_server v6 7121 7021; }

# the other way round: `ferry --here UDP --there ICMP` against a URL rule's server end
b_pkthere_client_end_to_url_server_end_v4() {
	fam_addrs v4
	up B "$NS_S" "icmp://0.0.0.0:7022" "udp://127.0.0.1:$UECHO"
	pk_up A "$NS_F" --here "UDP:$F4C:7122" --there "ICMP:$S4:7022"
	stream "$NS_C" "$F4C" 7122 200
	stats_is B rules.0.dgrams_up=200 rules.0.dgrams_down=200 rules.0.bytes_up="$STREAM_BYTES"
	stop B
}

# ------------------------------------------------------------------ c: the lock

# client 1 locks; client 2 (another port) gets nothing while client 1 keeps talking, and
# gets through once client 1 has been idle for --idle-timeout; then client 1 is the stranger
c_single_client_lock_second_client_waits_for_idle_timeout() {
	local c1=41130 c2=41131
	up F "$NS_F" "udp://$F4C:7130" "udp://$S4:$UECHO" --single-client --idle-timeout 1.5
	ask "$NS_C" "$F4C" 7130 $c1 100
	ask_none "$NS_C" "$F4C" 7130 $c2 100
	ask "$NS_C" "$F4C" 7130 $c1 200
	ask_none "$NS_C" "$F4C" 7130 $c2 100
	stats_is F rules.0.single.locked=true rules.0.single.client="$C4:$c1" rules.0.dgrams_up=2
	wait_line "$F_ERR" 'Idle timeout reached' "$F_PID" || fail "no idle timeout logged 5 s after client 1 stopped"
	ask "$NS_C" "$F4C" 7130 $c2 300
	ask_none "$NS_C" "$F4C" 7130 $c1 100
	stats_is F rules.0.single.client="$C4:$c2" rules.0.dgrams_up=3 rules.0.dgrams_down=3 rules.0.bytes_up=600
	stop F
}

# the same over the tunnel (the lock of its client end), IPv6
c_single_client_lock_on_a_tunnel_v6() {
	local c1=41132 c2=41133
	fam_addrs v6
	up B "$NS_S" "icmp://[::]:7032" "udp://[::1]:$UECHO"
	up A "$NS_F" "udp://[$F6C]:7132" "icmp://[$S6]:7032" --idle-timeout 1
	ask "$NS_C" "$F6C" 7132 $c1 100
	ask_none "$NS_C" "$F6C" 7132 $c2 100
	wait_line "$A_ERR" 'Idle timeout reached' "$A_PID" || fail "no idle timeout logged on the client end"
	ask "$NS_C" "$F6C" 7132 $c2 300
	stats_is A rules.0.single.client="[$C6]:$c2" rules.0.dgrams_up=2 rules.0.dgrams_down=2
	stop A B
}

# --on-timeout exit: nothing happens before a client locks; once it idles out, ferry exits 0
# (with a tcp rule beside it, which goes too)
c_on_timeout_exit_ends_ferry_with_status_0() {
	local conf=$T/c.conf rc t0 t1
	printf 'tcp://%s:7141 tcp://%s:%s\nudp://%s:7140 udp://%s:%s --single-client --idle-timeout 1 --on-timeout exit\n' \
		"$F4C" "$S4" $ECHO "$F4C" "$S4" $UECHO >"$conf"
	up F "$NS_F" -c "$conf"
	sleep 1.6
	alive "$F_PID" || fail "ferry exited before any client locked"
	transfer "$NS_C" "$F4C" 7141 $MIB
	ask "$NS_C" "$F4C" 7140 41140 64
	t0=$(date +%s%N)
	ferry_wait_exit 5 "$F_PID"
	rc=$?
	t1=$(date +%s%N)
	[ "$rc" = 0 ] || fail "exit status $rc after the idle timeout with --on-timeout exit, expected 0"
	[ $(((t1 - t0) / 1000000)) -ge 700 ] || fail "exited $(((t1 - t0) / 1000000)) ms after the client, before the 1 s timeout"
	grep -q 'idle timeout with --on-timeout exit' "$F_ERR" || fail "no log line saying why ferry exits"
}

# ------------------------------------------------------------------ d: reload

# a tcp transfer runs through rule 1 while SIGHUP adds the tunnel's client end (B in S is
# the server end), a second SIGHUP adds a tcp rule (the tunnel rule is unchanged: same lock,
# same counters), a third removes the tunnel rule (its port closes); the transfer ends intact
d_sighup_adds_and_removes_icmp_rule_while_tcp_transfer_continues() {
	local conf=$T/d.conf xpid out sha tcp1 tun tcp2
	tcp1="tcp://$F4C:7150 tcp://$S4:$ECHO"
	tun="udp://$F4C:7151 icmp://$S4:7050"
	tcp2="tcp://$F4C:7152 tcp://$S4:$ECHO"
	up B "$NS_S" "icmp://0.0.0.0:7050" "udp://127.0.0.1:$UECHO"
	printf '%s\n' "$tcp1" >"$conf"
	up F "$NS_F" -c "$conf"
	tool "$NS_C" send-hash "$F4C" 7150 --bytes $((48 * MIB)) --rate $((8 * MIB)) --timeout 40 >"$T/xfer.out" 2>&1 &
	xpid=$!
	wait_established "$NS_F" 7150 || fail "the transfer never connected: $(cat "$T/xfer.out")"
	printf '%s\n%s\n' "$tcp1" "$tun" >"$conf"
	kill -HUP "$F_PID"
	wait_udp_listen "$NS_F" 7151 "$F_PID" || fail "the added icmp rule does not listen after SIGHUP"
	stream "$NS_C" "$F4C" 7151 100
	stats_is F rules.1.dgrams_up=100 rules.1.single.locked=true
	printf '%s\n%s\n%s\n' "$tcp1" "$tun" "$tcp2" >"$conf"
	kill -HUP "$F_PID"
	wait_tcp_listen "$NS_F" 7152 "$F_PID" || fail "the added tcp rule does not listen after SIGHUP"
	transfer "$NS_C" "$F4C" 7152 $MIB
	# unchanged: the lock and the counters went on (a restarted rule would start from 0)
	stats_is F rules.1.dgrams_up=100 rules.1.single.locked=true
	printf '%s\n%s\n' "$tcp1" "$tcp2" >"$conf"
	kill -HUP "$F_PID"
	udp_gone "$NS_F" 7151 || fail "the removed icmp rule's port is still bound 5 s after SIGHUP"
	alive $xpid || fail "the 48 MiB transfer ended before the last reload: $(cat "$T/xfer.out")"
	wait $xpid || fail "transfer across the reloads: $(cat "$T/xfer.out")"
	out=$(cat "$T/xfer.out")
	sha=$(json_field "$out" sent_sha256)
	server_saw "$sha" $((48 * MIB)) eof
	grep -q 'reload failed' "$F_ERR" && fail "a reload failed: $(grep 'reload failed' "$F_ERR" | head -n1)"
	ferry_alive
	stop F
}

# ------------------------------------------------------------------ e: errors

e_invalid_pairs_and_options_exit_2() {
	local out rc args conf=$T/e.conf
	local -a bad=(
		"tcp://$F4C:7160 icmp://$S4:1|cannot forward tcp:// to icmp://"
		"icmp://$F4C:1 icmp://$S4:2|cannot forward icmp:// to icmp://"
		"icmp://$F4C:1 tcp://$S4:2|cannot forward icmp:// to tcp://"
		"udp://$F4C:7160 icmp://$S4:65536|bad echo ID \"65536\""
		"udp://$F4C:7160 icmp://$S4:1:x|bad reply ID \"x\""
		"udp://$F4C:7160 icmp://::1|an IPv6 address needs brackets"
		"tcp://$F4C:7160 tcp://$S4:1 --single-client|--single-client is for udp:// to udp://"
		"udp://$F4C:7160 udp://$S4:1 --on-timeout exit|--on-timeout, --icmp-sync-pps"
		"icmp://0.0.0.0:1 udp://$S4:1 --icmp-sync-pps 5|--icmp-sync-pps is for rules with an icmp:// target"
		"udp://$F4C:7160 icmp://$S4:1 --on-timeout never|bad value \"never\" for --on-timeout"
		"udp://$F4C:7160 icmp://$S4:1 --max-payload 65497|--max-datagram 65497 is more than the largest"
	)
	for args in "${bad[@]}"; do
		# shellcheck disable=SC2086
		out=$(timeout 10 ip netns exec "$NS_F" "$FERRY" ${args%%|*} 2>&1)
		rc=$?
		[ "$rc" = 2 ] || fail "ferry ${args%%|*}: exit status $rc, expected 2 ($(head -n1 <<<"$out"))"
		grep -qF -- "${args#*|}" <<<"$out" || fail "ferry ${args%%|*}: no '${args#*|}' in: $(head -n1 <<<"$out")"
	done
	printf 'tcp://%s:7161 tcp://%s:%s\nicmp://0.0.0.0:7 tcp://%s:%s\n' "$F4C" "$S4" $ECHO "$S4" $ECHO >"$conf"
	out=$(timeout 10 ip netns exec "$NS_F" "$FERRY" -c "$conf" 2>&1)
	rc=$?
	[ "$rc" = 2 ] || fail "config with icmp:// to tcp://: exit status $rc, expected 2 ($out)"
	grep -qF "$conf:2: cannot forward icmp:// to tcp://" <<<"$out" || fail "config error does not name file:line: $out"
}

# ------------------------------------------------------------------ main

need_root_and_tools
id nobody >/dev/null 2>&1 || { echo "SKIP single-rule: no user nobody (the --here/--there cases need one)"; exit 0; }
topology_up || setup_fail "could not build namespaces"
for ns in "$NS_S" "$NS_F"; do
	nsx "$ns" sysctl -qw net.ipv4.icmp_echo_ignore_all=1 net.ipv6.icmp.echo_ignore_all=1 || setup_fail "sysctl in $ns"
done
nsx "$NS_F" sysctl -qw net.ipv4.ping_group_range="0 2147483647" || setup_fail "sysctl ping_group_range in F"
server_start "$NS_S" echo :: $ECHO || setup_fail "tcp echo server"
nsx "$NS_S" "$PY" "$UDPTOOL" serve echo :: $UECHO >"$T/uecho.log" 2>&1 &
wait_udp_listen "$NS_S" $UECHO $! || setup_fail "udp echo server"

run_case a_tunnel_url_rules_fixed_id_v4
run_case a_tunnel_url_rules_fixed_id_v6
run_case a_tunnel_url_rules_dynamic_ids_v4
run_case a_tunnel_url_rules_dynamic_ids_v6
run_case a_tunnel_reply_id_is_the_id_replies_come_to
run_case b_config_tcp_rule_and_both_tunnel_ends_in_one_ferry
run_case b_url_client_end_to_pkthere_server_end_v4
run_case b_url_client_end_to_pkthere_server_end_v6
run_case b_pkthere_client_end_to_url_server_end_v4
run_case c_single_client_lock_second_client_waits_for_idle_timeout
run_case c_single_client_lock_on_a_tunnel_v6
run_case c_on_timeout_exit_ends_ferry_with_status_0
run_case d_sighup_adds_and_removes_icmp_rule_while_tcp_transfer_continues
run_case e_invalid_pairs_and_options_exit_2
finish
