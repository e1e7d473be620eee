#!/bin/bash
# Transparent forwarding (spec/systemd.md §4-§6): --transparent (the target sees the
# client's own address; the reply returns through ferry by policy routing), --tproxy (nft
# tproxy diverts traffic for another host to ferry, which answers from that host's address),
# both together, UDP and TCP, IPv4 and IPv6; whole 60,000-byte and empty datagrams through
# a transparent session, --max-datagram on the path a tproxy session's later datagrams take.
#
# Topology (spec §6; ferry runs in R, a router: forwarding on, client and server route
# through it):
#
#   ns C (client)             ns R (router, ferry)                     ns S (server)
#   vc  10.78.1.2/24  ------  rc 10.78.1.1/24   rs 10.78.2.1/24  ---  vs  10.78.2.2/24
#       fd78:1::2/64              fd78:1::1/64      fd78:2::1/64            fd78:2::2/64
#       default via R                                                      default via R
#
# Router rules in R (spec §6, plus the TCP and IPv6 lines):
#   - nft "socket transparent 1": a packet that belongs to one of ferry's transparent
#     sockets (a session socket bound to the client's address, a reply socket bound to an
#     original destination) gets mark 1; "tproxy to :9000": client traffic for port 7000
#     of any address goes to ferry's listener on port 9000, also marked;
#   - ip rule fwmark 1 -> table 100, "local 0.0.0.0/0 dev lo" there: marked packets are
#     delivered to this host (to ferry) instead of being forwarded.
# Without the ip rule the server's replies to the client's address never reach ferry (a
# case shows that).
#
# Servers in S (dual-stack, on [::]): UDP 7001 peer (answers with the sender address it
# saw), UDP 7002 echo; TCP 7001 peer-reply ("ADDR:PORT" of the connecting socket), TCP 7002
# echo. Clients use fixed source ports (456NN) so the address a server saw can be compared.
. "$(dirname "$0")/lib.sh"

# spec §6 addresses (instead of lib.sh's): F = ferry's router R
C4=10.78.1.2 F4C=10.78.1.1 F4S=10.78.2.1 S4=10.78.2.2
C6=fd78:1::2 F6C=fd78:1::1 F6S=fd78:2::1 S6=fd78:2::2
PEER=7001 ECHO=7002 DIVERTED=7000 TPROXY=9000

# ------------------------------------------------------------------ topology

router_topology_up() {
	local ns
	for ns in "$NS_C" "$NS_F" "$NS_S"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip link add vc netns "$NS_C" type veth peer name rc netns "$NS_F" || return 1
	ip link add vs netns "$NS_S" type veth peer name rs netns "$NS_F" || return 1
	ip -n "$NS_C" addr add "$C4/24" dev vc && ip -n "$NS_C" addr add "$C6/64" dev vc nodad &&
		ip -n "$NS_S" addr add "$S4/24" dev vs && ip -n "$NS_S" addr add "$S6/64" dev vs nodad &&
		ip -n "$NS_F" addr add "$F4C/24" dev rc && ip -n "$NS_F" addr add "$F6C/64" dev rc nodad &&
		ip -n "$NS_F" addr add "$F4S/24" dev rs && ip -n "$NS_F" addr add "$F6S/64" dev rs nodad || return 1
	ip -n "$NS_C" link set vc up && ip -n "$NS_S" link set vs up &&
		ip -n "$NS_F" link set rc up && ip -n "$NS_F" link set rs up || return 1
	ip -n "$NS_C" route add default via "$F4C" && ip -n "$NS_C" -6 route add default via "$F6C" &&
		ip -n "$NS_S" route add default via "$F4S" && ip -n "$NS_S" -6 route add default via "$F6S" || return 1
	nsx "$NS_F" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
	wait_link_up "$NS_C" vc && wait_link_up "$NS_F" rc && wait_link_up "$NS_F" rs && wait_link_up "$NS_S" vs
}

# the nft part of the router rules (the table lives in R and goes with it)
router_nft_up() {
	nsx "$NS_F" nft -f - <<-EOF
		table inet fst {
			chain pre {
				type filter hook prerouting priority mangle; policy accept;
				meta l4proto udp socket transparent 1 meta mark set 0x1 accept
				meta l4proto tcp socket transparent 1 meta mark set 0x1 accept
				iifname "rc" udp dport $DIVERTED tproxy ip to :$TPROXY meta mark set 0x1 accept
				iifname "rc" udp dport $DIVERTED tproxy ip6 to :$TPROXY meta mark set 0x1 accept
				iifname "rc" tcp dport $DIVERTED tproxy ip to :$TPROXY meta mark set 0x1 accept
				iifname "rc" tcp dport $DIVERTED tproxy ip6 to :$TPROXY meta mark set 0x1 accept
			}
		}
	EOF
}

# policy_routing on|off: marked packets delivered locally (on), or forwarded like any other
policy_routing() {
	local v
	for v in -4 -6; do
		ip -n "$NS_F" $v rule del fwmark 0x1 lookup 100 2>/dev/null
		ip -n "$NS_F" $v route flush table 100 2>/dev/null
	done
	[ "$1" = on ] || return 0
	ip -n "$NS_F" -4 rule add fwmark 0x1 lookup 100 &&
		ip -n "$NS_F" -4 route add local 0.0.0.0/0 dev lo table 100 &&
		ip -n "$NS_F" -6 rule add fwmark 0x1 lookup 100 &&
		ip -n "$NS_F" -6 route add local ::/0 dev lo table 100 || fail "policy routing in R"
}

# ------------------------------------------------------------------ helpers

udp_server() {
	local mode=$1 port=$2 pid
	: >"$T/udp-$port.log"
	nsx "$NS_S" "$PY" "$UDPTOOL" serve "$mode" :: "$port" >>"$T/udp-$port.log" 2>&1 &
	pid=$!
	wait_udp_listen "$NS_S" "$port" $pid
}

# ask VAR HOST PORT SPORT [ARGS...]: one datagram from the client's port SPORT to HOST:PORT;
# the reply must come from HOST:PORT (udptool checks); VAR gets the reply as JSON
ask() {
	local _var=$1 _host=$2 _port=$3 _sport=$4 _out
	shift 4
	_out=$(utool "$NS_C" ask "$_host" "$_port" --sport "$_sport" --tag "t$_sport" --timeout 2 "$@" 2>&1) ||
		fail "datagram from port $_sport to $_host:$_port: $_out"
	printf -v "$_var" '%s' "$_out"
}

# expect_peer JSON WANT: the peer server saw the datagram come from WANT ("ADDR:PORT" or,
# ending in ":", any port of ADDR)
expect_peer() {
	local got
	got=$(json_field "$1" peer)
	case $2 in
	*:) [[ $got == "$2"* ]] ;;
	*) [ "$got" = "$2" ] ;;
	esac || fail "the server saw the datagram from $got, expected $2"
}

# expect_stats KEY=VALUE...: the stats line has exactly these values (retried ~3 s)
expect_stats() {
	local kv keys=() want=() got
	for kv in "$@"; do
		keys+=("${kv%%=*}")
		want+=("${kv#*=}")
	done
	for _ in $(seq 1 10); do
		ferry_stats
		got=$(stat_get "${keys[@]}" 2>&1 | tr '\n' ' ') || fail "stats: $got"
		[ "$got" = "${want[*]} " ] && return 0
		sleep 0.3
	done
	fail "stats ${keys[*]} = $got; expected ${want[*]}"
}

# tcp_peer VAR HOST PORT SPORT: connect from the client's port SPORT (0 = any); VAR gets
# the "ADDR:PORT" the peer-reply server saw
tcp_peer() {
	local _var=$1 _out
	_out=$(tool "$NS_C" read "$2" "$3" --sport "$4" --timeout 5 2>&1) || fail "connect to $2:$3 from port $4: $_out"
	printf -v "$_var" '%s' "$_out"
}

# ------------------------------------------------------------------ UDP --transparent

udp_transparent_ipv4_target_sees_client_and_reply_returns_through_ferry() {
	local out
	policy_routing on
	ferry_up -u "$NS_F" 7000 "udp://$F4C:7000" "udp://$S4:$PEER" --transparent
	ask out "$F4C" 7000 45601
	expect_peer "$out" "$C4:45601"
	# a second datagram: the same session socket (bound to the client's port) carries it
	ask out "$F4C" 7000 45601
	expect_peer "$out" "$C4:45601"
	expect_stats rules.0.sessions=1 rules.0.dgrams_up=2 rules.0.dgrams_down=2
	grep -q 'policy routing delivers them locally' "$FERRY_ERR" ||
		fail "no start-up note about the return path: $(head -c 300 "$FERRY_ERR")"
	ferry_alive
}

udp_transparent_ipv6_target_sees_client_and_reply_returns_through_ferry() {
	local out
	policy_routing on
	ferry_up -u "$NS_F" 7000 "udp://[$F6C]:7000" "udp://[$S6]:$PEER" --transparent
	ask out "$F6C" 7000 45602
	expect_peer "$out" "[$C6]:45602"
	expect_stats rules.0.sessions=1 rules.0.dgrams_down=1
	ferry_alive
}

# 60,000 bytes travel as IP fragments both ways, through nft's socket match (defragmented
# first) and the session socket bound to the client's address; an empty datagram too
udp_transparent_datagrams_of_60000_and_0_bytes_pass_whole() {
	local out
	policy_routing on
	ferry_up -u "$NS_F" 7000 "udp://$F4C:7000" "udp://$S4:$ECHO" --transparent
	ask out "$F4C" 7000 45603 --size 60000
	ask out "$F4C" 7000 45603 --size 65507
	ask out "$F4C" 7000 45603 --size 0 --tag ""
	expect_stats rules.0.dgrams_up=3 rules.0.dgrams_down=3 rules.0.bytes_up=125507 rules.0.bytes_down=125507 \
		rules.0.drops.oversize=0
	grep -qF "\"peer\": \"$C4:45603\"" "$T/udp-$ECHO.log" ||
		fail "the echo server did not see the client's address: $(tail -n 3 "$T/udp-$ECHO.log")"
	ferry_stop TERM
	ferry_up -u "$NS_F" 7000 "udp://[$F6C]:7000" "udp://[$S6]:$ECHO" --transparent
	ask out "$F6C" 7000 45603 --size 60000
	ask out "$F6C" 7000 45603 --size 65527
	ferry_alive
}

# the control: without the ip rule the server's reply to the client's address is not
# delivered to ferry, and not forwarded to the client either: it belongs to ferry's
# session socket (UDP early demux finds it), and Linux never forwards such a packet
udp_transparent_without_policy_routing_reply_is_lost() {
	local out
	policy_routing off
	ferry_up -u "$NS_F" 7000 "udp://$F4C:7000" "udp://$S4:$PEER" --transparent
	out=$(utool "$NS_C" ask "$F4C" 7000 --sport 45604 --timeout 2 --expect-none 2>&1) ||
		fail "a reply came back without policy routing: $out"
	grep -qF "\"peer\": \"$C4:45604\"" "$T/udp-$PEER.log" || fail "the datagram did not reach the server"
	expect_stats rules.0.dgrams_up=1 rules.0.dgrams_down=0
	ferry_alive
}

udp_transparent_needs_the_same_family_on_both_sides() {
	ferry_start "$NS_F" "udp://[$F6C]:7000" "udp://$S4:$PEER" --transparent
	wait_line "$FERRY_ERR" 'transparent: the target has no IPv6 address' "$FERRY_PID" ||
		fail "no error about the address families: $(head -c 300 "$FERRY_ERR")"
}

# ------------------------------------------------------------------ UDP --tproxy

# the client talks to the server's address, port 7000 (nothing listens there): the tproxy
# rule hands the datagrams to ferry, which answers from exactly that address and port
udp_tproxy_ipv4_replies_from_the_original_destination() {
	local out p1
	policy_routing on
	ferry_up -u "$NS_F" $TPROXY "udp://0.0.0.0:$TPROXY" "udp://$S4:$PEER" --tproxy --max-datagram 1000
	ask out "$S4" $DIVERTED 45611
	expect_peer "$out" "$F4S:"
	p1=$(json_field "$out" port)
	# later datagrams reach the session's socket at the original destination (the tproxy
	# rule prefers it): the same session, the same upstream port
	ask out "$S4" $DIVERTED 45611 --size 1000
	[ "$(json_field "$out" port)" = "$p1" ] || fail "second datagram left from port $(json_field "$out" port), not $p1"
	nsx "$NS_F" ss -Huan "src = $S4:$DIVERTED and dst = $C4:45611" | grep -q . ||
		fail "no session socket at $S4:$DIVERTED connected to the client: $(nsx "$NS_F" ss -Huan | tr '\n' ';')"
	# and --max-datagram holds on that path too
	out=$(utool "$NS_C" ask "$S4" $DIVERTED --sport 45611 --size 1001 --timeout 1 --expect-none 2>&1) ||
		fail "1001 bytes with --max-datagram 1000: $out"
	# a datagram sent to ferry's own address is answered from there
	ask out "$F4C" $TPROXY 45612
	expect_stats rules.0.sessions=2 rules.0.dgrams_up=3 rules.0.dgrams_down=3 rules.0.drops.oversize=1
	ferry_alive
}

# one dual-stack listener for both families; IPv6 clients to an IPv4 target
udp_tproxy_dual_stack_listener_ipv6_client_to_ipv4_target() {
	local out
	policy_routing on
	ferry_up -u "$NS_F" $TPROXY "udp://[::]:$TPROXY" "udp://$S4:$PEER" --tproxy
	ask out "$S6" $DIVERTED 45613
	expect_peer "$out" "$F4S:"
	ask out "$S6" $DIVERTED 45613 --size 5000
	ask out "$S4" $DIVERTED 45614
	expect_peer "$out" "$F4S:"
	ask out "$S4" $DIVERTED 45614 --size 5000
	expect_stats rules.0.sessions=2 rules.0.dgrams_up=4 rules.0.dgrams_down=4
	ferry_alive
}

# spec §6, third result: the server sees the client, its reply is caught by "socket
# transparent 1" and goes out from the original destination
udp_tproxy_and_transparent_ipv4() {
	local out
	policy_routing on
	ferry_up -u "$NS_F" $TPROXY "udp://0.0.0.0:$TPROXY" "udp://$S4:$PEER" --tproxy --transparent
	ask out "$S4" $DIVERTED 45615
	expect_peer "$out" "$C4:45615"
	ask out "$S4" $DIVERTED 45615 --size 20000
	expect_peer "$out" "$C4:45615"
	expect_stats rules.0.sessions=1 rules.0.dgrams_up=2 rules.0.dgrams_down=2
	ferry_alive
}

udp_tproxy_and_transparent_ipv6() {
	local out
	policy_routing on
	ferry_up -u "$NS_F" $TPROXY "udp://[::]:$TPROXY" "udp://[$S6]:$PEER" --tproxy --transparent
	ask out "$S6" $DIVERTED 45616
	expect_peer "$out" "[$C6]:45616"
	ask out "$S6" $DIVERTED 45616 --size 20000
	expect_stats rules.0.sessions=1 rules.0.dgrams_up=2 rules.0.dgrams_down=2
	ferry_alive
}

# ------------------------------------------------------------------ TCP

tcp_transparent_target_sees_client_ipv4_and_ipv6() {
	local got
	policy_routing on
	ferry_up "$NS_F" 7000 "tcp://$F4C:7000" "tcp://$S4:$PEER" --transparent
	tcp_peer got "$F4C" 7000 45621
	[ "$got" = "$C4:45621" ] || fail "the server saw $got, expected $C4:45621"
	ferry_stop TERM
	ferry_up "$NS_F" 7000 "tcp://[$F6C]:7000" "tcp://[$S6]:$PEER" --transparent
	tcp_peer got "$F6C" 7000 45622
	[ "$got" = "[$C6]:45622" ] || fail "the server saw $got, expected [$C6]:45622"
	ferry_alive
}

# bulk data both ways over a connection from the client's address
tcp_transparent_transfer_both_ways() {
	policy_routing on
	ferry_up "$NS_F" 7000 "tcp://$F4C:7000" "tcp://$S4:$ECHO" --transparent
	transfer "$NS_C" "$F4C" 7000 $((4 * MIB + 7))
	grep -qF "\"peer\": \"::ffff:$C4\"" <<<"$SERVER_LINE" || fail "the echo server did not see the client: $SERVER_LINE"
	ferry_alive
}

# without the return path the server's SYN-ACK goes to the client, which knows no such
# connection: the upstream connect fails and is counted, ferry lives on
tcp_transparent_without_policy_routing_fails_cleanly() {
	local out
	policy_routing off
	ferry_up "$NS_F" 7000 --connect-timeout 1 "tcp://$F4C:7000" "tcp://$S4:$PEER" --transparent
	out=$(tool "$NS_C" expect-close "$F4C" 7000 --max 3 --timeout 5 2>&1) || fail "$out"
	wait_stat rules.0.failed -ge 1
	ferry_alive
}

tcp_tproxy_connection_for_another_host_accepted() {
	local got
	policy_routing on
	ferry_up "$NS_F" $TPROXY "tcp://[::]:$TPROXY" "tcp://$S4:$PEER" --tproxy
	tcp_peer got "$S4" $DIVERTED 0
	[[ $got == "$F4S:"* ]] || fail "IPv4 client: the server saw $got, expected ferry's $F4S"
	tcp_peer got "$S6" $DIVERTED 0
	[[ $got == "$F4S:"* ]] || fail "IPv6 client: the server saw $got, expected ferry's $F4S"
	ferry_stop TERM
	ferry_up "$NS_F" $TPROXY "tcp://[::]:$TPROXY" "tcp://$S4:$ECHO" --tproxy
	transfer "$NS_C" "$S4" $DIVERTED $((2 * MIB + 3))
	ferry_alive
}

tcp_tproxy_and_transparent_ipv4_and_ipv6() {
	local got
	policy_routing on
	ferry_up "$NS_F" $TPROXY "tcp://0.0.0.0:$TPROXY" "tcp://$S4:$PEER" --tproxy --transparent
	tcp_peer got "$S4" $DIVERTED 45623
	[ "$got" = "$C4:45623" ] || fail "the server saw $got, expected $C4:45623"
	ferry_stop TERM
	ferry_up "$NS_F" $TPROXY "tcp://[::]:$TPROXY" "tcp://[$S6]:$PEER" --tproxy --transparent -6
	tcp_peer got "$S6" $DIVERTED 45624
	[ "$got" = "[$C6]:45624" ] || fail "the server saw $got, expected [$C6]:45624"
	ferry_alive
}

# without IP_TRANSPARENT on the listener the tproxy rule finds no socket: the control for
# the --tproxy cases
tcp_tproxy_off_connection_for_another_host_refused() {
	local out
	policy_routing on
	ferry_up "$NS_F" $TPROXY "tcp://0.0.0.0:$TPROXY" "tcp://$S4:$PEER"
	out=$(tool "$NS_C" read "$S4" $DIVERTED --timeout 3 2>&1) && fail "connected without --tproxy: $out"
	return 0
}

# --user drops every capability: a transparent rule then says why it cannot start
transparent_rules_without_cap_net_admin_say_why() {
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	ferry_start "$NS_F" "udp://0.0.0.0:$TPROXY" "udp://$S4:$PEER" --tproxy --user nobody
	wait_line "$FERRY_ERR" 'tproxy: IP_TRANSPARENT.*needs CAP_NET_ADMIN' "$FERRY_PID" ||
		fail "no error naming CAP_NET_ADMIN for --tproxy: $(head -c 400 "$FERRY_ERR")"
	ferry_stop TERM
	ferry_start "$NS_F" "tcp://$F4C:7000" "tcp://$S4:$PEER" --transparent --user nobody
	wait_line "$FERRY_ERR" 'transparent: IP_TRANSPARENT.*needs CAP_NET_ADMIN' "$FERRY_PID" ||
		fail "no error naming CAP_NET_ADMIN for --transparent: $(head -c 400 "$FERRY_ERR")"
}

need_root_and_tools
router_topology_up || setup_fail "could not build namespaces"
router_nft_up 2>"$T/nft.err" || {
	echo "SKIP $(basename "$0" .sh): nft tproxy/socket not available: $(head -n 1 "$T/nft.err")"
	exit 0
}
udp_server peer $PEER || setup_fail "UDP peer server"
udp_server echo $ECHO || setup_fail "UDP echo server"
server_start "$NS_S" peer-reply :: $PEER || setup_fail "TCP peer-reply server"
server_start "$NS_S" echo :: $ECHO || setup_fail "TCP echo server"

run_case udp_transparent_ipv4_target_sees_client_and_reply_returns_through_ferry
run_case udp_transparent_ipv6_target_sees_client_and_reply_returns_through_ferry
run_case udp_transparent_datagrams_of_60000_and_0_bytes_pass_whole
run_case udp_transparent_without_policy_routing_reply_is_lost
run_case udp_transparent_needs_the_same_family_on_both_sides
run_case udp_tproxy_ipv4_replies_from_the_original_destination
run_case udp_tproxy_dual_stack_listener_ipv6_client_to_ipv4_target
run_case udp_tproxy_and_transparent_ipv4
run_case udp_tproxy_and_transparent_ipv6
run_case tcp_transparent_target_sees_client_ipv4_and_ipv6
run_case tcp_transparent_transfer_both_ways
run_case tcp_transparent_without_policy_routing_fails_cleanly
run_case tcp_tproxy_connection_for_another_host_accepted
run_case tcp_tproxy_and_transparent_ipv4_and_ipv6
run_case tcp_tproxy_off_connection_for_another_host_refused
run_case transparent_rules_without_cap_net_admin_say_why
finish
