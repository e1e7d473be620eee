#!/bin/bash
# TCP forwarding, the data path: isolation, integrity in both directions (splice and buffered
# copy), 200 concurrent connections, half-close, resets both ways, unreachable and blackholed
# targets, IPv4<->IPv6, --max-conns, --idle-timeout, -b base-address mode, idle connections
# without pipes, socket options (buffers, keepalive) and -6.
#
#   client C ---- F (ferry) ---- S server        (topology: see lib.sh)
#
# Servers in S, started once for all cases (tests/tools/tcptool.py serve ...):
#   5000  echo              (dual-stack; logs bytes, sha256 and how each connection ended)
#   5001  reply-after-eof   (reads to EOF, then sends a header and 1 MiB, then closes)
#   5002  reset             (RST after the first data)
#   5098  nothing listening (target down)
#   5099  nothing listening, and SYNs dropped by nft in the blackhole case
#   5200      addr-reply    (sends the address it was reached at; on 10.77.2.10-19 too, for -b)
# Ferry listens on F, one port per case (7001...) so no case reuses another's port.
. "$(dirname "$0")/lib.sh"

ECHO=5000 REPLY=5001 RESET=5002 DOWN=5098 BLACKHOLE=5099 ADDR_REPLY=5200
BASE_NET=${S4%.*}	# the server's /24: -b targets $BASE_NET.10 .. .19 (added to S below)

client_cannot_reach_server_directly() {
	local out
	[ "$(nsx "$NS_F" sysctl -n net.ipv4.ip_forward)" = 0 ] || fail "ip_forward is on in F"
	[ "$(nsx "$NS_F" sysctl -n net.ipv6.conf.all.forwarding)" = 0 ] || fail "IPv6 forwarding is on in F"
	# control: the server is there and answers from F
	out=$(tool "$NS_F" connect "$S4" $ECHO --timeout 2 2>&1) || fail "control: F cannot reach $S4:$ECHO: $out"
	out=$(tool "$NS_F" connect "$S6" $ECHO --timeout 2 2>&1) || fail "control: F cannot reach [$S6]:$ECHO: $out"
	tool "$NS_C" connect "$S4" $ECHO --timeout 2 >/dev/null 2>&1 && fail "C reached $S4:$ECHO without ferry"
	tool "$NS_C" connect "$S6" $ECHO --timeout 2 >/dev/null 2>&1 && fail "C reached [$S6]:$ECHO without ferry"
	tool "$NS_C" connect "$F4S" 22 --timeout 1 >/dev/null 2>&1 && fail "C reached F's server-side address"
	return 0
}

transfer_100mib_both_directions_intact() {
	ferry_up "$NS_F" 7001 "tcp://$F4C:7001" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F4C" 7001 $((100 * MIB))
	echo "  100 MiB each way: $(json_field "$TRANSFER_OUT" secs) s"
	ferry_alive
}

no_splice_transfer_intact() {
	ferry_up "$NS_F" 7002 --no-splice "tcp://$F4C:7002" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F4C" 7002 $((20 * MIB))
	ferry_alive
}

concurrent_200_connections_each_intact() {
	local out
	ferry_up "$NS_F" 7003 "tcp://$F4C:7003" "tcp://$S4:$ECHO"
	out=$(tool "$NS_C" concurrent "$F4C" 7003 --conns 200 --min $((64 << 10)) --max $MIB --timeout 60 2>&1) ||
		fail "$out"
	ferry_alive
}

half_close_client_still_receives_full_reply() {
	local out
	ferry_up "$NS_F" 7004 "tcp://$F4C:7004" "tcp://$S4:$REPLY"
	out=$(tool "$NS_C" halfclose "$F4C" 7004 --send $((256 << 10)) --expect $MIB --timeout 10 2>&1) ||
		fail "$out"
	ferry_alive
}

no_splice_half_close_client_still_receives_full_reply() {
	local out
	ferry_up "$NS_F" 7005 --no-splice "tcp://$F4C:7005" "tcp://$S4:$REPLY"
	out=$(tool "$NS_C" halfclose "$F4C" 7005 --send $((256 << 10)) --expect $MIB --timeout 10 2>&1) ||
		fail "$out"
	ferry_alive
}

server_reset_reaches_client_as_reset() {
	local out
	ferry_up "$NS_F" 7006 "tcp://$F4C:7006" "tcp://$S4:$RESET"
	out=$(tool "$NS_C" expect-reset "$F4C" 7006 --timeout 5 2>&1) || fail "$out"
	ferry_alive
}

client_reset_reaches_server_as_reset() {
	local sha
	ferry_up "$NS_F" 7007 "tcp://$F4C:7007" "tcp://$S4:$ECHO"
	sha=$(tool "$NS_C" send-reset "$F4C" 7007 --timeout 5 2>&1) || fail "send-reset: $sha"
	server_saw "$sha" 32 reset
	ferry_alive
}

target_down_closes_client_promptly_and_counts() {
	local out failed cf
	ferry_up "$NS_F" 7008 "tcp://$F4C:7008" "tcp://$S4:$DOWN"
	out=$(tool "$NS_C" expect-close "$F4C" 7008 --max 2 --timeout 5 2>&1) || fail "$out"
	for _ in 1 2 3 4 5; do
		ferry_stats
		failed=$(stat_get rules.0.failed 2>&1) || fail "stats: $failed"
		cf=$(stat_get rules.0.drops.connect_failed 2>&1) || fail "stats: $cf"
		[ "$failed" -ge 1 ] 2>/dev/null || [ "$cf" -ge 1 ] 2>/dev/null && return 0
		sleep 0.3
	done
	fail "refused upstream connect not counted: failed=$failed drops.connect_failed=$cf"
}

connect_timeout_to_blackholed_target() {
	local out n
	nsx "$NS_S" nft -f - <<-EOF || fail "nft blackhole rule"
		table inet ft_blackhole {
			chain input {
				type filter hook input priority 0; policy accept;
				tcp dport $BLACKHOLE counter drop
			}
		}
	EOF
	ferry_up "$NS_F" 7009 --connect-timeout 1 "tcp://$F4C:7009" "tcp://$S4:$BLACKHOLE"
	out=$(tool "$NS_C" expect-close "$F4C" 7009 --min 0.8 --max 3 --timeout 6 2>&1) || fail "$out"
	n=$(nsx "$NS_S" nft list table inet ft_blackhole | grep -o 'packets [0-9]*' | head -n1)
	[ "${n#packets }" -ge 1 ] 2>/dev/null || fail "no SYN reached the blackhole rule ($n)"
	wait_stat rules.0.drops.connect_timeout -ge 1
	nsx "$NS_S" nft delete table inet ft_blackhole
	return 0
}

ipv6_listener_to_ipv4_target() {
	ferry_up "$NS_F" 7010 "tcp://[$F6C]:7010" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F6C" 7010 $((2 * MIB + 11))
	grep -qF "\"peer\": \"::ffff:$F4S\"" <<<"$SERVER_LINE" || fail "server did not see an IPv4 peer: $SERVER_LINE"
}

ipv4_listener_to_ipv6_target() {
	ferry_up "$NS_F" 7011 "tcp://$F4C:7011" "tcp://[$S6]:$ECHO"
	transfer "$NS_C" "$F4C" 7011 $((2 * MIB + 13))
	grep -qF "\"peer\": \"$F6S\"" <<<"$SERVER_LINE" || fail "server did not see an IPv6 peer: $SERVER_LINE"
}

max_conns_closes_the_extra_connection() {
	local out hold_pid
	ferry_up "$NS_F" 7012 --max-conns 5 "tcp://$F4C:7012" "tcp://$S4:$ECHO"
	tool "$NS_C" hold "$F4C" 7012 --conns 5 --secs 3 --timeout 5 >"$T/hold.out" 2>&1 &
	hold_pid=$!
	wait_line "$T/hold.out" '^held 5' $hold_pid || fail "could not hold 5 connections: $(cat "$T/hold.out")"
	out=$(tool "$NS_C" expect-close "$F4C" 7012 --max 1 --timeout 5 2>&1) || fail "6th connection: $out"
	wait_stat rules.0.drops.max_conns -ge 1
	wait $hold_pid || fail "the 5 held connections did not survive: $(cat "$T/hold.out")"
	# the slots come back when the held connections close
	wait_stat rules.0.active -eq 0
	transfer "$NS_C" "$F4C" 7012 $((64 << 10))
}

idle_timeout_closes_idle_connection() {
	local out
	ferry_up "$NS_F" 7013 --idle-timeout 1 "tcp://$F4C:7013" "tcp://$S4:$ECHO"
	out=$(tool "$NS_C" expect-close "$F4C" 7013 --ping --min 0.8 --max 3 --timeout 6 2>&1) || fail "$out"
	# a connection that keeps moving data outlives the idle timeout
	out=$(tool "$NS_C" send-hash "$F4C" 7013 --bytes $((5 * MIB / 2)) --rate $MIB --timeout 10 2>&1) ||
		fail "busy connection for 2.5 s with --idle-timeout 1: $out"
	ferry_alive
}

# portfwd's -b: a block of target addresses maps onto a block of redirected ports; the
# offset (original destination port - listen port) is added to the target address.
base_addr_maps_redirected_ports_to_target_addresses() {
	local p got want
	nsx "$NS_F" nft -f - <<-EOF || fail "nft redirect rule"
		table ip ft_redirect {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
				tcp dport 20001-20009 redirect to :20000
			}
		}
	EOF
	# origdport 20000..20009 - 20000 = 0..9, added to the base $BASE_NET.10 => .10 .. .19
	ferry_up "$NS_F" 20000 -b "tcp://0.0.0.0:20000" "tcp://$BASE_NET.10:$ADDR_REPLY"
	for p in 20000 20004 20009; do
		want=$BASE_NET.$((10 + p - 20000))
		got=$(tool "$NS_C" read "$F4C" $p --timeout 5 2>&1) ||
			fail "client port $p (redirected to 20000) did not reach $want:$ADDR_REPLY: $got"
		[ "$got" = "$want" ] || fail "client port $p reached '$got', expected $want"
	done
	nsx "$NS_F" nft delete table ip ft_redirect
	ferry_alive
}

# the offset would carry the address past 255.255.255.255: that connection fails, counted
base_addr_overflow_fails_only_that_connection() {
	nsx "$NS_F" nft -f - <<-EOF || fail "nft redirect rule"
		table ip ft_redirect2 {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
				tcp dport 20101-20102 redirect to :20100
			}
		}
	EOF
	ferry_up "$NS_F" 20100 -b "tcp://0.0.0.0:20100" "tcp://255.255.255.254:$ADDR_REPLY"
	tool "$NS_C" expect-close "$F4C" 20102 --min 0 --max 2 >/dev/null 2>&1 ||
		fail "a connection whose target overflowed was not closed at once"
	wait_stat rules.0.drops.base_addr -ge 1
	nsx "$NS_F" nft delete table ip ft_redirect2
	ferry_alive
}

idle_connections_hold_no_pipes() {
	local hold_pid pipes
	ferry_up "$NS_F" 7014 --workers 1 "tcp://$F4C:7014" "tcp://$S4:$ECHO"
	tool "$NS_C" hold "$F4C" 7014 --conns 100 --secs 4 --timeout 5 >"$T/hold.out" 2>&1 &
	hold_pid=$!
	wait_line "$T/hold.out" '^held 100' $hold_pid || fail "could not hold 100 connections: $(cat "$T/hold.out")"
	# every connection moved data once; idle now, none may keep a pipe (a pool may keep a few)
	pipes=$(find /proc/"$FERRY_PID"/fd -lname 'pipe:*' | wc -l)
	[ "$pipes" -lt 100 ] || fail "$pipes pipe fds for 100 idle connections"
	wait $hold_pid || fail "held connections broke: $(cat "$T/hold.out")"
}

# sock_line NS FILTER: ss -tnmo lines (one per socket) matching an ss FILTER
sock_lines() {
	nsx "$1" ss -Htnmo state established "$2" 2>/dev/null | tr -s ' '
}

socket_options_apply_to_both_sockets() {
	local hold_pid cli srv n
	ferry_up "$NS_F" 7015 --sndbuf 65536 --rcvbuf 65536 --keepalive-idle 30 \
		"tcp://$F4C:7015" "tcp://$S4:$ECHO"
	tool "$NS_C" hold "$F4C" 7015 --conns 1 --secs 3 --timeout 5 >"$T/hold.out" 2>&1 &
	hold_pid=$!
	wait_line "$T/hold.out" '^held' $hold_pid || fail "no connection: $(cat "$T/hold.out")"
	sleep 1.5	# keepalive on the upstream side is switched on after the first second
	cli=$(sock_lines "$NS_F" "sport = :7015")
	srv=$(sock_lines "$NS_F" "dport = :$ECHO")
	for n in cli srv; do
		# the kernel doubles SO_SNDBUF/SO_RCVBUF: 65536 shows as 131072
		grep -q 'rb131072' <<<"${!n}" && grep -q 'tb131072' <<<"${!n}" ||
			fail "$n socket without --sndbuf/--rcvbuf 65536: ${!n}"
		grep -qE 'timer:\(keepalive,([0-9]|[12][0-9]|30)sec' <<<"${!n}" ||
			fail "$n socket without keepalive at <= 30 s: ${!n}"
	done
	wait $hold_pid
	ferry_stop TERM
	ferry_up "$NS_F" 7016 --no-keepalive "tcp://$F4C:7016" "tcp://$S4:$ECHO"
	tool "$NS_C" hold "$F4C" 7016 --conns 1 --secs 2 --timeout 5 >"$T/hold.out" 2>&1 &
	wait_line "$T/hold.out" '^held' $! || fail "no connection: $(cat "$T/hold.out")"
	cli=$(sock_lines "$NS_F" "sport = :7016")
	srv=$(sock_lines "$NS_F" "dport = :$ECHO")
	[ -n "$cli" ] && [ -n "$srv" ] || fail "ferry's sockets not found with ss"
	grep -q keepalive <<<"$cli$srv" && fail "keepalive on with --no-keepalive: $cli / $srv"
	return 0
}

v6only_listener_refuses_ipv4() {
	ferry_up "$NS_F" 7017 "tcp://[::]:7017" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F4C" 7017 $((64 << 10))
	ferry_stop TERM
	ferry_up "$NS_F" 7018 -6 "tcp://[::]:7018" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F6C" 7018 $((64 << 10))
	tool "$NS_C" connect "$F4C" 7018 --timeout 2 >/dev/null 2>&1 && fail "-6 listener on [::] accepted IPv4"
	return 0
}

need_root_and_tools
topology_up || setup_fail "could not build namespaces"
server_start "$NS_S" echo :: $ECHO || setup_fail "echo server"
server_start "$NS_S" reply-after-eof :: $REPLY || setup_fail "reply-after-eof server"
server_start "$NS_S" reset :: $RESET || setup_fail "reset server"
for i in $(seq 10 19); do nsx "$NS_S" ip addr add "$BASE_NET.$i/24" dev vs || setup_fail "address $BASE_NET.$i"; done
server_start "$NS_S" addr-reply 0.0.0.0 $ADDR_REPLY || setup_fail "addr-reply server"

run_case client_cannot_reach_server_directly
run_case transfer_100mib_both_directions_intact
run_case no_splice_transfer_intact
run_case concurrent_200_connections_each_intact
run_case half_close_client_still_receives_full_reply
run_case no_splice_half_close_client_still_receives_full_reply
run_case server_reset_reaches_client_as_reset
run_case client_reset_reaches_server_as_reset
run_case target_down_closes_client_promptly_and_counts
run_case connect_timeout_to_blackholed_target
run_case ipv6_listener_to_ipv4_target
run_case ipv4_listener_to_ipv6_target
run_case max_conns_closes_the_extra_connection
run_case idle_timeout_closes_idle_connection
run_case base_addr_maps_redirected_ports_to_target_addresses
run_case base_addr_overflow_fails_only_that_connection
run_case idle_connections_hold_no_pipes
run_case socket_options_apply_to_both_sockets
run_case v6only_listener_refuses_ipv4
finish
