#!/bin/bash
# TCP over KCP (spec/kcp.md): ferry's secure mode end to end, the portfwd front-ends, limits,
# impaired links, and wire interoperability with Debian's kcptun in both directions.
#
#   ns C: TCP client, ferry (or kcptun) client  tcp://127.0.0.1:P -> kcp://F4C:Q
#   ns F: ferry (or kcptun) server              kcp://F4C:Q       -> tcp://S4:ECHO
#   ns S: tcptool servers (echo, reply-after-eof)
#
# Impaired cases put tests/tools/impair (udp mode, seeded) in F between the two: the client
# talks to F4C:Q+1000, impair adds delay/loss and forwards to the server on 127.0.0.1:Q.
. "$(dirname "$0")/lib.sh"

ECHO=5000 REPLY=5001
IMPAIR=${IMPAIR:-$NET_ROOT/build/tools/impair}
PSK=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
PSK2=ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

psk_file() {
	printf '%s\n' "${2:-$PSK}" >"$1"
	chmod 600 "$1"
}

# tunnel_up PORT [SERVER_ARGS -- CLIENT_ARGS]: a ferry server in F on F4C:PORT and a ferry
# client in C on 127.0.0.1:PORT, both with the arguments given (default: secure with $PSK)
tunnel_up() {
	local port=$1 sargs=() cargs=() side=s
	shift
	for a in "$@"; do
		if [ "$a" = -- ]; then side=c; continue; fi
		if [ $side = s ]; then sargs+=("$a"); else cargs+=("$a"); fi
	done
	[ $# -eq 0 ] && { psk_file "$T/psk"; sargs=(--psk-file "$T/psk"); cargs=(--psk-file "$T/psk"); }
	[ ${#cargs[@]} -eq 0 ] && cargs=("${sargs[@]}")
	ferry_up -u "$NS_F" "$port" --workers 1 "${sargs[@]}" "kcp://$F4C:$port" "tcp://$S4:${TARGET:-$ECHO}"
	SRV_PID=$FERRY_PID SRV_OUT=$FERRY_OUT SRV_ERR=$FERRY_ERR
	ferry_up "$NS_C" "$port" --workers 1 "${cargs[@]}" "tcp://127.0.0.1:$port" "kcp://${KCP_HOST:-$F4C}:${KCP_PORT:-$port}"
}

secure_transfer_32mib_intact() {
	local v
	tunnel_up 7101
	transfer "$NS_C" 127.0.0.1 7101 $((32 * MIB))
	echo "  32 MiB each way: $(json_field "$TRANSFER_OUT" secs) s"
	grep -q 'secure: handshake ok conv=' "$FERRY_ERR" || fail "client did not log the handshake"
	grep -q 'secure: psk fingerprint 6d' "$FERRY_ERR" || grep -q 'secure: psk fingerprint' "$FERRY_ERR" ||
		fail "no psk fingerprint line"
	# rate control (the default between ferries) measured the path: its estimate is in the stats
	ferry_stats
	v=$(stat_get rules.0.kcp.rate_mbps 2>&1) || fail "stats: $v"
	awk -v v="$v" 'BEGIN { exit !(v > 1) }' || fail "rate control estimate is $v Mbit/s"
	echo "  rate control's estimate: $v Mbit/s"
	ferry_alive
}

concurrent_100_streams_each_intact() {
	local out
	tunnel_up 7102
	out=$(tool "$NS_C" concurrent 127.0.0.1 7102 --conns 100 --min $((16 << 10)) --max $((256 << 10)) \
		--timeout 60 2>&1) || fail "$out"
	ferry_alive
}

half_close_through_tunnel() {
	local out
	TARGET=$REPLY tunnel_up 7103
	out=$(tool "$NS_C" halfclose 127.0.0.1 7103 --send $((256 << 10)) --expect $MIB --timeout 20 2>&1) ||
		fail "$out"
	ferry_alive
}

# the client names the PSK problem in one line; the server never answers (nothing but
# authenticated peers get a byte back, §3.9)
wrong_psk_fails_clearly_and_server_stays_silent() {
	local out i sent
	psk_file "$T/psk" "$PSK"
	psk_file "$T/psk2" "$PSK2"
	nsx "$NS_F" nft add table inet kcpt &&
		nsx "$NS_F" nft add chain inet kcpt out '{ type filter hook output priority 0; }' &&
		nsx "$NS_F" nft add rule inet kcpt out udp sport 7104 counter || fail "nft counter"
	tunnel_up 7104 --psk-file "$T/psk" -- --psk-file "$T/psk2"
	tool "$NS_C" connect 127.0.0.1 7104 --timeout 1 >/dev/null 2>&1 &
	for i in $(seq 1 220); do
		grep -q 'secure handshake: no authenticated reply after 5 attempts' "$FERRY_ERR" && break
		sleep 0.1
	done
	grep -q "rule 1 kcp://$F4C:7104: secure handshake: no authenticated reply after 5 attempts (15 s): the PSK differs" \
		"$FERRY_ERR" || fail "no clear PSK error within 22 s: $(tail -n 3 "$FERRY_ERR")"
	sent=$(nsx "$NS_F" nft list table inet kcpt | grep -o 'packets [0-9]*' | head -n1)
	nsx "$NS_F" nft delete table inet kcpt
	[ "$sent" = "packets 0" ] || fail "server sent $sent to an unauthenticated client"
	alive "$SRV_PID" || fail "server died"
}

plain_kcp_refused_off_loopback_without_insecure() {
	local out rc
	out=$(timeout 5 ip netns exec "$NS_F" "$FERRY" "kcp://$F4C:7105" "tcp://$S4:$ECHO" 2>&1)
	rc=$?
	[ $rc = 2 ] || fail "exit status $rc, expected 2: $out"
	grep -q 'no pre-shared key: refusing to accept unauthenticated KCP on a non-loopback address' <<<"$out" ||
		fail "unexpected message: $out"
	tunnel_up 7105 --insecure -- 
	transfer "$NS_C" 127.0.0.1 7105 $((4 * MIB))
}

portfwd_aliases_with_K() {
	ln -sf "$FERRY" "$T/kcptcp-server"
	ln -sf "$FERRY" "$T/kcptcp-client"
	FERRY_BIN=$T/kcptcp-server ferry_up -u "$NS_F" 7106 "$F4C:7106" "$S4:$ECHO" -K $PSK
	FERRY_BIN=$T/kcptcp-client ferry_up "$NS_C" 7106 -M 1200 "127.0.0.1:7106" "$F4C:7106" -K $PSK
	transfer "$NS_C" 127.0.0.1 7106 $((8 * MIB))
	grep -q 'secure: handshake ok' "$FERRY_ERR" || fail "kcptcp-client did not use the secure handshake"
}

# rekey by count with data flowing both ways: many epoch switches, nothing lost
rekey_by_count_keeps_stream_intact() {
	local n
	psk_file "$T/psk"
	tunnel_up 7107 --psk-file "$T/psk" --secure-rekey-packets 1000 --secure-rekey-time 2
	transfer "$NS_C" 127.0.0.1 7107 $((48 * MIB))
	n=$(grep -c 'secure: epoch switch' "$FERRY_ERR")
	[ "$n" -ge 10 ] || fail "only $n epoch switches logged by the client"
	ferry_alive
}

# 50 ms RTT (25 ms each way) and LOSS % loss on both directions of the UDP path
lossy() {
	local loss=$1 port=$2 out
	[ -x "$IMPAIR" ] || skip "$IMPAIR not built"
	psk_file "$T/psk"
	ferry_up -u "$NS_F" "$port" --workers 1 --psk-file "$T/psk" "kcp://127.0.0.1:$port" "tcp://$S4:$ECHO"
	nsx "$NS_F" "$IMPAIR" udp --listen "$F4C:$((port + 1000))" --target "127.0.0.1:$port" --delay 25 \
		--loss "$loss" --seed "$port" 2>"$T/impair-$port.log" &
	for i in $(seq 1 50); do grep -q 'impair: ready' "$T/impair-$port.log" && break; sleep 0.1; done
	KCP_PORT=$((port + 1000)) ferry_up "$NS_C" "$port" --workers 1 --psk-file "$T/psk" \
		"tcp://127.0.0.1:$port" "kcp://$F4C:$((port + 1000))"
	transfer "$NS_C" 127.0.0.1 "$port" $((32 * MIB))
	echo "  loss $loss %, RTT 50 ms: 32 MiB each way in $(json_field "$TRANSFER_OUT" secs) s"
	ferry_alive
}
lossy_0pct_50ms_32mib_intact() { lossy 0 7110; }
lossy_1pct_50ms_32mib_intact() { lossy 1 7111; }
lossy_5pct_50ms_32mib_intact() { lossy 5 7112; }
lossy_20pct_50ms_32mib_intact() { lossy 20 7113; }

# ---- kcptun interop (Debian's kcptun 20210922) ----

kcptun_or_skip() {
	command -v kcptun-server >/dev/null && command -v kcptun-client >/dev/null || skip "kcptun not installed"
	# make install puts ferry's own kcptun-client/-server symlinks on PATH: those are not kcptun
	kcptun-client -v 2>&1 | grep -q '^kcptun version' && kcptun-server -v 2>&1 | grep -q '^kcptun version' ||
		skip "kcptun-client/kcptun-server on PATH are not kcptun ($(command -v kcptun-server))"
}

# kcptun_case PORT DIRECTION ARGS...: DIRECTION "ferry-client" = ferry client -> kcptun-server,
# "ferry-server" = kcptun-client -> ferry server; ARGS are kcptun's flags (both sides)
kcptun_case() {
	local port=$1 dir=$2 out pid
	shift 2
	kcptun_or_skip
	if [ "$dir" = ferry-client ]; then
		nsx "$NS_F" kcptun-server -l "$F4C:$port" -t "$S4:$ECHO" "$@" >"$T/kcptun-$port.log" 2>&1 &
		pid=$!
		wait_udp_listen "$NS_F" "$port" "$pid" || fail "kcptun-server does not start: $(tail -n 3 "$T/kcptun-$port.log")"
		ferry_up "$NS_C" "$port" --workers 1 --kcp-profile kcptun "$@" "tcp://127.0.0.1:$port" "kcp://$F4C:$port"
	else
		ferry_up -u "$NS_F" "$port" --workers 1 --kcp-profile kcptun "$@" "kcp://$F4C:$port" "tcp://$S4:$ECHO"
		nsx "$NS_C" kcptun-client -l "127.0.0.1:$port" -r "$F4C:$port" "$@" >"$T/kcptun-$port.log" 2>&1 &
		pid=$!
		wait_tcp_listen "$NS_C" "$port" "$pid" || fail "kcptun-client does not start: $(tail -n 3 "$T/kcptun-$port.log")"
	fi
	# kcptun's smux has no half-close: the client closes once the whole echo is back
	out=$(tool "$NS_C" send-hash 127.0.0.1 "$port" --bytes $((4 * MIB)) --no-half-close --timeout 60 2>&1) ||
		fail "4 MiB echo: $out"
	out=$(tool "$NS_C" concurrent 127.0.0.1 "$port" --conns 8 --min $((16 << 10)) --max $((256 << 10)) \
		--no-half-close --timeout 60 2>&1) || fail "8 concurrent streams: $out"
	grep -qi 'invalid protocol' "$T/kcptun-$port.log" && fail "kcptun logged a protocol error"
	ferry_alive
}
MINIMAL=(--key test --crypt none --nocomp --datashard 0 --parityshard 0 --mode fast)
kcptun_minimal_v1_ferry_client() { kcptun_case 7201 ferry-client "${MINIMAL[@]}" --smuxver 1; }
kcptun_minimal_v1_ferry_server() { kcptun_case 7202 ferry-server "${MINIMAL[@]}" --smuxver 1; }
kcptun_minimal_v2_ferry_client() { kcptun_case 7203 ferry-client "${MINIMAL[@]}" --smuxver 2; }
kcptun_minimal_v2_ferry_server() { kcptun_case 7204 ferry-server "${MINIMAL[@]}" --smuxver 2; }
kcptun_salsa20_ferry_client() { kcptun_case 7205 ferry-client --key test --crypt salsa20 --nocomp --datashard 0 --parityshard 0; }
kcptun_salsa20_ferry_server() { kcptun_case 7206 ferry-server --key test --crypt salsa20 --nocomp --datashard 0 --parityshard 0; }
# twofish is ferry's own code (crypto/twofish.c), not a library's: both directions
kcptun_twofish_ferry_client() { kcptun_case 7216 ferry-client --key test --crypt twofish --nocomp --datashard 0 --parityshard 0; }
kcptun_twofish_ferry_server() { kcptun_case 7217 ferry-server --key test --crypt twofish --nocomp --datashard 0 --parityshard 0; }
kcptun_xor_fast3_ferry_client() { kcptun_case 7207 ferry-client --key test --crypt xor --nocomp --datashard 0 --parityshard 0 --mode fast3; }
kcptun_default_profile_ferry_client() { kcptun_case 7208 ferry-client --key test; }
kcptun_default_profile_ferry_server() { kcptun_case 7209 ferry-server --key test; }
kcptun_aes128_fec_ferry_server() { kcptun_case 7210 ferry-server --key test --crypt aes-128 --nocomp --smuxver 2; }

# --max-streams: a stream beyond the limit is refused (FIN -> the client's connection closes)
max_streams_refuses_the_extra_stream() {
	local out
	psk_file "$T/psk"
	tunnel_up 7120 --psk-file "$T/psk" --max-streams 2 -- --psk-file "$T/psk"
	tool "$NS_C" hold 127.0.0.1 7120 --secs 20 >/dev/null 2>&1 &
	tool "$NS_C" hold 127.0.0.1 7120 --secs 20 >/dev/null 2>&1 &
	sleep 1
	out=$(tool "$NS_C" expect-close 127.0.0.1 7120 --timeout 5 --max 3 2>&1) || fail "third stream not closed: $out"
	FERRY_OUT=$SRV_OUT FERRY_PID=$SRV_PID wait_stat rules.0.drops.max_streams -eq 1
}

# the server goes away: the client's session dies (dead link: a segment sent 20 times),
# and the next connection opens a new session with a new conv once the server is back
dead_link_then_new_session() {
	local conv1 conv2 i
	psk_file "$T/psk"
	tunnel_up 7121
	transfer "$NS_C" 127.0.0.1 7121 $((1 * MIB))
	conv1=$(grep -o 'handshake ok conv=[0-9a-f]*' "$FERRY_ERR" | head -n1)
	ferry_stop KILL "$SRV_PID"
	tool "$NS_C" send-hash 127.0.0.1 7121 --bytes $((1 * MIB)) --timeout 40 >/dev/null 2>&1 &
	for i in $(seq 1 400); do
		grep -q 'dead link' "$FERRY_ERR" && break
		sleep 0.1
	done
	grep -q "kcp conv=${conv1#handshake ok conv=}: dead link (sn=[0-9]* sent 20 times)" "$FERRY_ERR" ||
		fail "no dead-link line within 40 s: $(tail -n 3 "$FERRY_ERR")"
	ferry_start "$NS_F" --workers 1 --psk-file "$T/psk" "kcp://$F4C:7121" "tcp://$S4:$ECHO"
	wait_udp_listen "$NS_F" 7121 "$FERRY_PID" || fail "server restart"
	FERRY_PID=$(pgrep -f "tcp://127.0.0.1:7121" | head -n1)
	FERRY_ERR=$(ls "$T/$CASE".ferry2.err)
	transfer "$NS_C" 127.0.0.1 7121 $((1 * MIB))
	conv2=$(grep -o 'handshake ok conv=[0-9a-f]*' "$FERRY_ERR" | tail -n1)
	[ -n "$conv2" ] && [ "$conv2" != "$conv1" ] || fail "no new session after the restart ($conv1 / $conv2)"
}

# kcptun's default profile (FEC 10/3) with 10 % loss on the way into ferry's server: the
# Reed-Solomon decoder rebuilds lost datagrams (counted), the stream stays intact
kcptun_fec_recovers_losses() {
	local out
	kcptun_or_skip
	nsx "$NS_F" nft add table inet kcpl &&
		nsx "$NS_F" nft add chain inet kcpl pre '{ type filter hook prerouting priority 0; }' &&
		nsx "$NS_F" nft add rule inet kcpl pre udp dport 7211 numgen random mod 100 '<' 10 drop ||
		fail "nft loss rule"
	ferry_up -u "$NS_F" 7211 --workers 1 --kcp-profile kcptun --key test "kcp://$F4C:7211" "tcp://$S4:$ECHO"
	nsx "$NS_C" kcptun-client -l 127.0.0.1:7211 -r "$F4C:7211" --key test >"$T/kcptun-7211.log" 2>&1 &
	wait_tcp_listen "$NS_C" 7211 $! || fail "kcptun-client does not start"
	out=$(tool "$NS_C" send-hash 127.0.0.1 7211 --bytes $((4 * MIB)) --no-half-close --timeout 60 2>&1) ||
		fail "4 MiB echo at 10 % loss: $out"
	wait_stat rules.0.kcp.fec_recovered -gt 0
	nsx "$NS_F" nft delete table inet kcpl
	ferry_alive
}

# capture NS IFACE PORT SECS FILE: UDP payloads to PORT arriving on IFACE, one hex line each
capture() {
	nsx "$1" "$PY" - "$2" "$3" "$4" "$5" <<-'PYEOF' &
	import socket, struct, sys, time
	iface, port, secs, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
	s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
	s.bind((iface, 0))
	s.settimeout(0.2)
	end, got = time.monotonic() + secs, []
	while time.monotonic() < end and len(got) < 2000:
	    try:
	        f = s.recv(65535)
	    except socket.timeout:
	        continue
	    ip = f[14:]
	    if len(ip) < 28 or ip[9] != 17:
	        continue
	    ihl = (ip[0] & 15) * 4
	    if struct.unpack("!H", ip[ihl + 2:ihl + 4])[0] == port:
	        got.append(ip[ihl + 8:].hex())
	open(out, "w").write("\n".join(got) + "\n")
	PYEOF
	CAPTURE_PID=$!
}

# replay HOSTPORT SRCPORT FILE: send every captured payload again from SRCPORT, then 200
# random msg-1-sized datagrams (type byte 1)
replay() {
	nsx "$NS_C" "$PY" - "$1" "$2" "$3" <<-'PYEOF'
	import os, socket, sys, time
	host, port = sys.argv[1].rsplit(":", 1)
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("0.0.0.0", int(sys.argv[2])))
	for line in open(sys.argv[3]):
	    if line.strip():
	        s.sendto(bytes.fromhex(line.strip()), (host, int(port)))
	for _ in range(200):
	    s.sendto(b"\x01\x00\x00\x00" + os.urandom(132), (host, int(port)))
	    time.sleep(0.001)
	PYEOF
}

# §3.9: captured handshake and data packets replayed (from another port, after the real
# client is gone) and a flood of junk msg 1 get no answer at all; the counters say why
replayed_and_junk_packets_get_no_answer() {
	local n
	psk_file "$T/psk"
	tunnel_up 7130
	capture "$NS_F" vfc 7130 4 "$T/cap"
	sleep 0.3
	transfer "$NS_C" 127.0.0.1 7130 $((1 * MIB))
	wait "$CAPTURE_PID"
	n=$(grep -c . "$T/cap")
	[ "$n" -ge 10 ] || fail "captured only $n packets"
	grep -q '^01' "$T/cap" || fail "no handshake packet captured"
	ferry_stop KILL "$FERRY_PID"
	nsx "$NS_F" nft add table inet kcpr &&
		nsx "$NS_F" nft add chain inet kcpr out '{ type filter hook output priority 0; }' &&
		nsx "$NS_F" nft add rule inet kcpr out udp sport 7130 udp dport 7999 counter || fail "nft counter"
	replay "$F4C:7130" 7999 "$T/cap"
	sleep 1
	n=$(nsx "$NS_F" nft list table inet kcpr | grep -o 'packets [0-9]*' | head -n1)
	nsx "$NS_F" nft delete table inet kcpr
	[ "$n" = "packets 0" ] || fail "the server answered replayed or junk packets: $n"
	FERRY_OUT=$SRV_OUT FERRY_PID=$SRV_PID wait_stat rules.0.drops.unauthenticated -ge 200
	alive "$SRV_PID" || fail "server died"
}

# --idle-timeout on the client rule: a stream without traffic ends (FIN both ways)
idle_stream_closes_after_idle_timeout() {
	local out
	psk_file "$T/psk"
	tunnel_up 7122 --psk-file "$T/psk" -- --psk-file "$T/psk" --idle-timeout 1
	out=$(tool "$NS_C" expect-close 127.0.0.1 7122 --ping --min 0.8 --max 3 --timeout 5 2>&1) ||
		fail "idle stream: $out"
	transfer "$NS_C" 127.0.0.1 7122 $((1 * MIB))
}

# drop_rekey NS on|off: drop secure CONTROL packets of REKEY size (type byte 5, UDP payload 72
# or 76 bytes) on ingress in NS
drop_rekey() {
	if [ "$2" = on ]; then
		nsx "$1" nft add table inet kcpk &&
			nsx "$1" nft add chain inet kcpk pre '{ type filter hook prerouting priority 0; }' &&
			nsx "$1" nft add rule inet kcpk pre udp length '{ 80, 84 }' @th,64,8 0x05 counter drop
	else
		nsx "$1" nft delete table inet kcpk
	fi
}

# §3.7: rekey messages lost for 30 s cost retries, not the session; lost for longer than
# the 60 s margin, the session closes (reason 3) with the documented line
rekey_lost_30s_survives_70s_closes() {
	local conv n
	psk_file "$T/psk"
	tunnel_up 7140 --psk-file "$T/psk" --secure-rekey-time 2
	transfer "$NS_C" 127.0.0.1 7140 $((1 * MIB))
	conv=$(grep -o 'handshake ok conv=[0-9a-f]*' "$FERRY_ERR" | head -n1)
	drop_rekey "$NS_C" on && drop_rekey "$NS_F" on || fail "nft rekey drop rule"
	sleep 30
	drop_rekey "$NS_C" off; drop_rekey "$NS_F" off
	transfer "$NS_C" 127.0.0.1 7140 $((1 * MIB))
	[ "$(grep -c 'handshake ok conv=' "$FERRY_ERR")" = 1 ] || fail "a new handshake happened: the session did not survive"
	n=$(grep -c 'secure: epoch switch' "$FERRY_ERR")
	sleep 3
	[ "$(grep -c 'secure: epoch switch' "$FERRY_ERR")" -gt "$n" ] || fail "no epoch switch after the drops ended"
	drop_rekey "$NS_C" on && drop_rekey "$NS_F" on || fail "nft rekey drop rule"
	for n in $(seq 1 750); do
		grep -q "secure: rekey did not complete in 60 s, closing ${conv#handshake ok }" "$FERRY_ERR" "$SRV_ERR" && break
		sleep 0.1
	done
	drop_rekey "$NS_C" off; drop_rekey "$NS_F" off
	grep -q "secure: rekey did not complete in 60 s, closing ${conv#handshake ok }" "$FERRY_ERR" "$SRV_ERR" ||
		fail "session not closed after 75 s of lost rekeys"
	transfer "$NS_C" 127.0.0.1 7140 $((1 * MIB))
}

# SIGTERM with --drain-timeout on the server: the running stream finishes, then ferry exits 0
server_drains_streams_on_sigterm() {
	local out rc
	psk_file "$T/psk"
	tunnel_up 7150 --psk-file "$T/psk" --drain-timeout 20 -- --psk-file "$T/psk"
	tool "$NS_C" send-hash 127.0.0.1 7150 --bytes $((3 * MIB)) --rate $((1 * MIB)) --timeout 30 >"$T/drain.out" 2>&1 &
	out=$!
	sleep 1
	kill -TERM "$SRV_PID"
	wait "$out" || fail "transfer during the drain: $(cat "$T/drain.out")"
	ferry_wait_exit 10 "$SRV_PID"
	rc=$?
	[ "$rc" = 0 ] || fail "server exit status $rc after the drain"
}

# one server, several client ferries (one session each); --max-sessions refuses the one too many
many_clients_per_server_and_max_sessions() {
	local p pids=() out
	psk_file "$T/psk"
	ferry_up -u "$NS_F" 7160 --workers 1 --psk-file "$T/psk" --max-sessions 2 "kcp://$F4C:7160" "tcp://$S4:$ECHO"
	SRV_PID=$FERRY_PID SRV_OUT=$FERRY_OUT
	for p in 7161 7162 7163; do
		ferry_up "$NS_C" "$p" --workers 1 --psk-file "$T/psk" "tcp://127.0.0.1:$p" "kcp://$F4C:7160"
	done
	for p in 7161 7162; do
		tool "$NS_C" send-hash 127.0.0.1 "$p" --bytes $((4 * MIB)) --timeout 60 >"$T/many-$p.out" 2>&1 &
		pids+=($!)
	done
	for p in 0 1; do
		wait "${pids[$p]}" || fail "client $p: $(cat "$T/many-$((7161 + p)).out")"
	done
	tool "$NS_C" connect 127.0.0.1 7163 --timeout 2 >/dev/null 2>&1 &
	FERRY_OUT=$SRV_OUT FERRY_PID=$SRV_PID wait_stat rules.0.drops.no_session -ge 1
	FERRY_OUT=$SRV_OUT FERRY_PID=$SRV_PID wait_stat rules.0.kcp.sessions -eq 2
}

# ---- kcptun's own command line: ferry installed as kcptun-client / kcptun-server ----

# kcptun_alias NAME: a symlink NAME -> ferry in $T (argv[0] picks the dialect)
kcptun_alias() {
	ln -sf "$FERRY" "$T/$1"
}

# ferry as kcptun-client with kcptun's flags only (single and double dashes, ":PORT", --log)
# against Debian's kcptun-server in its default profile (aes, FEC 10/3, snappy)
kcptun_cli_client_default_profile() {
	local out
	kcptun_or_skip
	kcptun_alias kcptun-client
	nsx "$NS_F" kcptun-server -l "$F4C:7220" -t "$S4:$ECHO" --key test >"$T/kcptun-7220.log" 2>&1 &
	wait_udp_listen "$NS_F" 7220 $! || fail "kcptun-server does not start: $(tail -n 3 "$T/kcptun-7220.log")"
	FERRY_BIN=$T/kcptun-client ferry_up "$NS_C" 7220 -l :7220 -r "$F4C:7220" -key=test --conn 1 \
		--log "$T/client-7220.log"
	out=$(tool "$NS_C" send-hash 127.0.0.1 7220 --bytes $((4 * MIB)) --no-half-close --timeout 60 2>&1) ||
		fail "4 MiB echo: $out"
	# ":PORT" is kcptun's every address: IPv6 reaches the same (dual-stack) listener
	out=$(tool "$NS_C" send-hash ::1 7220 --bytes $((64 << 10)) --no-half-close --timeout 20 2>&1) ||
		fail "64 KiB echo over ::1: $out"
	grep -qi 'invalid protocol' "$T/kcptun-7220.log" && fail "kcptun logged a protocol error"
	grep -q 'kcp://10.77.1.2:7220: listening' "$T/client-7220.log" || fail "--log: no start-up lines in the file"
	[ -s "$FERRY_ERR" ] && fail "--log: ferry still wrote to stderr: $(head -n 2 "$FERRY_ERR")"
	ferry_alive
}

# ferry as kcptun-server -c server.json against Debian's kcptun-client -c client.json; the
# JSON overrides the command line's -l, and sets a key, cipher, smux v2 and no compression
# that must all match kcptun's for the stream to pass
kcptun_cli_server_json_config() {
	local out common
	kcptun_or_skip
	kcptun_alias kcptun-server
	common='"key": "json key", "crypt": "aes-128", "mode": "fast3", "mtu": 1400, "datashard": 10,
	  "parityshard": 3, "dscp": 46, "nocomp": true, "acknodelay": false, "smuxver": 2, "keepalive": 10,
	  "quiet": false, "tcp": false'
	printf '{\n  "listen": ":7221", "target": "%s:%s", "sndwnd": 2048, "rcvwnd": 2048, "pprof": false,\n  %s\n}\n' \
		"$S4" "$ECHO" "$common" >"$T/server.json"
	printf '{\n  "localaddr": "127.0.0.1:7221", "remoteaddr": "%s:7221",\n  %s\n}\n' "$F4C" "$common" >"$T/client.json"
	FERRY_BIN=$T/kcptun-server ferry_up -u "$NS_F" 7221 -l 127.0.0.1:7299 -c "$T/server.json"
	nsx "$NS_C" kcptun-client -c "$T/client.json" >"$T/kcptun-7221.log" 2>&1 &
	wait_tcp_listen "$NS_C" 7221 $! || fail "kcptun-client does not start: $(tail -n 3 "$T/kcptun-7221.log")"
	out=$(tool "$NS_C" send-hash 127.0.0.1 7221 --bytes $((4 * MIB)) --no-half-close --timeout 60 2>&1) ||
		fail "4 MiB echo: $out"
	grep -qi 'invalid protocol' "$T/kcptun-7221.log" && fail "kcptun logged a protocol error"
	ferry_alive
}

# usage_exit STATUS WANT CMD...: CMD exits with STATUS and prints a line containing WANT
usage_exit() {
	local want_rc=$1 want=$2 out rc
	shift 2
	out=$(timeout 5 ip netns exec "$NS_C" "$@" 2>&1)
	rc=$?
	[ "$rc" = "$want_rc" ] || fail "$(basename "$1") ${*:2}: exit status $rc, expected $want_rc: $out"
	grep -qF -- "$want" <<<"$out" || fail "$(basename "$1") ${*:2}: expected \"$want\" in: $out"
}

kcptun_cli_bad_options_exit_2() {
	kcptun_alias kcptun-client
	kcptun_alias kcptun-server
	printf '{\n  "listen": ":7222",\n  "target": {"host": "x"}\n}\n' >"$T/nested.json"
	usage_exit 2 "ferry: --tcp (kcptun's TCP emulation) is not supported by ferry" "$T/kcptun-client" -r 10.0.0.1:1 --tcp
	usage_exit 2 "ferry: --snmplog is not supported by ferry" "$T/kcptun-server" --snmplog /tmp/snmp.log
	usage_exit 2 "ferry: -pprof (Go's profiler) is not supported by ferry" "$T/kcptun-server" -pprof
	usage_exit 2 'ferry: unknown option "--bogus" for kcptun-client (see kcptun-client -h)' "$T/kcptun-client" --bogus 1
	usage_exit 2 'ferry: unknown option "-t" for kcptun-client' "$T/kcptun-client" -r 10.0.0.1:1 -t 10.0.0.2:22
	usage_exit 2 "ferry: missing -r/--remoteaddr SERVER:PORT" "$T/kcptun-client" -l :7222
	usage_exit 2 "ferry: $T/nested.json:3:13: \"target\": nested objects are not allowed" "$T/kcptun-server" -c "$T/nested.json"
	usage_exit 2 "ferry: cannot open config \"$T/missing.json\"" "$T/kcptun-server" -c "$T/missing.json"
	usage_exit 0 "usage: kcptun-server -l LISTEN -t TARGET" "$T/kcptun-server" -h
	usage_exit 0 "ferry " "$T/kcptun-client" -v
}

need_root_and_tools
topology_up || setup_fail "could not build namespaces"
server_start "$NS_S" echo :: $ECHO || setup_fail "echo server"
server_start "$NS_S" reply-after-eof :: $REPLY || setup_fail "reply-after-eof server"

run_case secure_transfer_32mib_intact
run_case concurrent_100_streams_each_intact
run_case half_close_through_tunnel
run_case wrong_psk_fails_clearly_and_server_stays_silent
run_case plain_kcp_refused_off_loopback_without_insecure
run_case portfwd_aliases_with_K
run_case rekey_by_count_keeps_stream_intact
run_case lossy_0pct_50ms_32mib_intact
run_case lossy_1pct_50ms_32mib_intact
run_case lossy_5pct_50ms_32mib_intact
run_case lossy_20pct_50ms_32mib_intact
run_case kcptun_minimal_v1_ferry_client
run_case kcptun_minimal_v1_ferry_server
run_case kcptun_minimal_v2_ferry_client
run_case kcptun_minimal_v2_ferry_server
run_case kcptun_salsa20_ferry_client
run_case kcptun_salsa20_ferry_server
run_case kcptun_twofish_ferry_client
run_case kcptun_twofish_ferry_server
run_case kcptun_xor_fast3_ferry_client
run_case kcptun_default_profile_ferry_client
run_case kcptun_default_profile_ferry_server
run_case kcptun_aes128_fec_ferry_server
run_case kcptun_fec_recovers_losses
run_case max_streams_refuses_the_extra_stream
run_case dead_link_then_new_session
run_case idle_stream_closes_after_idle_timeout
run_case replayed_and_junk_packets_get_no_answer
run_case many_clients_per_server_and_max_sessions
run_case server_drains_streams_on_sigterm
run_case rekey_lost_30s_survives_70s_closes
run_case kcptun_cli_client_default_profile
run_case kcptun_cli_server_json_config
run_case kcptun_cli_bad_options_exit_2
finish
