#!/bin/bash
# TCP forwarding, operations: command-line errors, help and version, signals and drain, daemon and
# pidfile, SIGHUP reload (add and remove rules under load), privilege drop, workers, stats,
# log format, the tcpfwd compatibility alias, reuseport and start-up failures.
#
#   client C ---- F (ferry) ---- S server        (topology: see lib.sh)
#
# Servers in S, started once: 5000 echo (dual-stack; logs bytes, sha256, end per connection).
# Every ferry runs inside F (even the ones that must fail: a name lookup stays inside it).
. "$(dirname "$0")/lib.sh"

ECHO=5000
TCPFWD=$(dirname "$FERRY")/tcpfwd

# usage_error WORD ARGS...: ferry ARGS must exit 2 with one line on stderr containing WORD
usage_error() {
	local word=$1 rc lines
	shift
	timeout -k 2 5 ip netns exec "$NS_F" "$FERRY" "$@" >/dev/null 2>"$T/usage.err" </dev/null
	rc=$?
	lines=$(grep -c . "$T/usage.err")
	if [ $rc != 2 ] || [ "$lines" != 1 ] || ! grep -qF -- "$word" "$T/usage.err"; then
		echo "  ferry $*: exit $rc, $lines stderr lines, expected 2 and one line naming '$word':"
		head -n 3 "$T/usage.err" | cut -c1-200 | sed 's/^/  | /'
		return 1
	fi
}

cli_errors_exit_2_naming_the_bad_word() {
	local bad=0 s=tcp://$S4:$ECHO
	usage_error "tcp:/x" "tcp:/x" "$s" || bad=$((bad + 1))
	usage_error "tcp://$F4C:65536" "tcp://$F4C:65536" "$s" || bad=$((bad + 1))
	usage_error "tcp://$S4:0" "tcp://$F4C:7100" "tcp://$S4:0" || bad=$((bad + 1))
	usage_error "foo" "foo://1.2.3.4:5" "$s" || bad=$((bad + 1))
	usage_error "target" "tcp://$F4C:7100" || bad=$((bad + 1))
	usage_error "no-such-host.invalid" "tcp://$F4C:7100" "tcp://no-such-host.invalid:80" || bad=$((bad + 1))
	usage_error "--no-such-option" --no-such-option "tcp://$F4C:7100" "$s" || bad=$((bad + 1))
	usage_error "abc" --connect-timeout abc "tcp://$F4C:7100" "$s" || bad=$((bad + 1))
	printf '# one good rule, one bad\ntcp://%s:7100 %s\n\ntcp://%s:0 %s\n' "$F4C" "$s" "$F4C" "$s" >"$T/bad.conf"
	usage_error "tcp://$F4C:0" -c "$T/bad.conf" || bad=$((bad + 1))
	[ $bad = 0 ] || fail "$bad command lines not rejected as usage errors"
	nsx "$NS_F" ss -Hltn | grep -q ':7100 ' && fail "a rejected command line left a listener"
	return 0
}

help_and_version() {
	local out rc
	out=$(timeout 5 ip netns exec "$NS_F" "$FERRY" --help 2>&1)
	rc=$?
	[ $rc = 0 ] || fail "--help exit $rc"
	grep -q -- --connect-timeout <<<"$out" || fail "--help does not mention --connect-timeout"
	out=$(timeout 5 ip netns exec "$NS_F" "$FERRY" -h 2>&1) || fail "-h exit $?"
	out=$(timeout 5 ip netns exec "$NS_F" "$FERRY" --version 2>&1)
	rc=$?
	[ $rc = 0 ] || fail "--version exit $rc"
	grep -qE '[0-9]+\.[0-9]+' <<<"$out" || fail "--version prints no version: $out"
	out=$(timeout 5 ip netns exec "$NS_F" "$FERRY" -V 2>&1) || fail "-V exit $?"
	return 0
}

signals_exit_cleanly_with_connections_open() {
	local sig port=7110 rc cpid
	for sig in TERM INT QUIT; do
		port=$((port + 1))
		ferry_up "$NS_F" $port "tcp://$F4C:$port" "tcp://$S4:$ECHO"
		tool "$NS_C" expect-close "$F4C" $port --ping --max 8 --timeout 5 >"$T/conn.out" 2>&1 &
		cpid=$!
		wait_line "$T/conn.out" '^pinged' $cpid || fail "no connection through ferry: $(cat "$T/conn.out")"
		ferry_stop $sig
		rc=$?
		[ $rc = 0 ] || fail "SIG$sig with a connection open: exit status $rc, expected 0 within 5 s"
		wait_tcp_closed "$NS_F" $port || fail "port $port still listening after SIG$sig"
		wait $cpid || fail "open connection not closed when ferry exited on SIG$sig: $(cat "$T/conn.out")"
	done
}

drain_timeout_lets_transfers_finish() {
	local xpid cpid rc t0 t1 tx out sha
	ferry_up "$NS_F" 7115 --drain-timeout 10 "tcp://$F4C:7115" "tcp://$S4:$ECHO"
	tool "$NS_C" send-hash "$F4C" 7115 --bytes $((3 * MIB)) --rate $((2 * MIB)) --timeout 10 >"$T/xfer.out" 2>&1 &
	xpid=$!
	wait_established "$NS_F" 7115 || fail "the transfer never connected: $(cat "$T/xfer.out")"
	alive $xpid || fail "transfer ended before SIGTERM: $(cat "$T/xfer.out")"
	t0=$(date +%s%N)
	kill -TERM "$FERRY_PID"
	wait_tcp_closed "$NS_F" 7115 || fail "still listening while draining"
	wait $xpid || fail "transfer cut by SIGTERM despite --drain-timeout 10: $(cat "$T/xfer.out")"
	tx=$(date +%s%N)
	out=$(cat "$T/xfer.out")
	sha=$(json_field "$out" sent_sha256)
	server_saw "$sha" $((3 * MIB)) eof
	# no second signal: ferry must leave by itself once the last connection is gone
	ferry_wait_exit 10
	rc=$?
	t1=$(date +%s%N)
	[ $rc = 0 ] || fail "exit status $rc after draining (124: still running 10 s after the last connection closed)"
	[ $(((t1 - tx) / 1000000)) -lt 5000 ] ||
		fail "ferry exited $(((t1 - tx) / 1000000)) ms after the last connection closed ($(((t1 - t0) / 1000000)) ms after SIGTERM)"

	# an idle connection that never ends: ferry gives up after the drain timeout
	ferry_up "$NS_F" 7116 --drain-timeout 1 "tcp://$F4C:7116" "tcp://$S4:$ECHO"
	tool "$NS_C" expect-close "$F4C" 7116 --ping --min 0.8 --max 4 --timeout 5 >"$T/conn.out" 2>&1 &
	cpid=$!
	wait_line "$T/conn.out" '^pinged' $cpid || fail "no connection through ferry: $(cat "$T/conn.out")"
	t0=$(date +%s%N)
	ferry_stop TERM
	rc=$?
	t1=$(date +%s%N)
	[ $rc = 0 ] || fail "exit status $rc after the drain timeout"
	[ $(((t1 - t0) / 1000000)) -ge 800 ] || fail "ferry exited after $(((t1 - t0) / 1000000)) ms, before --drain-timeout 1"
	[ $(((t1 - t0) / 1000000)) -le 3000 ] || fail "ferry exited after $(((t1 - t0) / 1000000)) ms with --drain-timeout 1"
	wait $cpid || fail "idle connection at the end of the drain: $(cat "$T/conn.out")"
}

daemon_and_pidfile_lifecycle() {
	local pidf=$T/ferry.pid pid t0 t1 rc stale
	t0=$(date +%s%N)
	timeout 5 ip netns exec "$NS_F" "$FERRY" -d -p "$pidf" "tcp://$F4C:7120" "tcp://$S4:$ECHO" </dev/null >/dev/null 2>"$T/d.err"
	rc=$?
	t1=$(date +%s%N)
	[ $rc = 0 ] || fail "ferry -d exit $rc: $(head -c 300 "$T/d.err")"
	[ $(((t1 - t0) / 1000000)) -lt 2000 ] || fail "ferry -d took $(((t1 - t0) / 1000000)) ms to return"
	for _ in $(seq 1 10); do [ -s "$pidf" ] && break; sleep 0.1; done
	pid=$(cat "$pidf" 2>/dev/null)
	[[ $pid =~ ^[0-9]+$ ]] || fail "pidfile holds '$pid'"
	alive "$pid" || fail "pid $pid from the pidfile is not running"
	[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$FERRY")" ] || fail "pid $pid is $(readlink "/proc/$pid/exe"), not ferry"
	wait_tcp_listen "$NS_F" 7120 || fail "daemon does not listen"
	transfer "$NS_C" "$F4C" 7120 $MIB

	# a pidfile naming a live ferry: refuse to start, with and without -d
	timeout 5 ip netns exec "$NS_F" "$FERRY" -d -p "$pidf" "tcp://$F4C:7121" "tcp://$S4:$ECHO" </dev/null >/dev/null 2>"$T/d2.err"
	rc=$?
	[ $rc = 1 ] || fail "second ferry -d -p on a live pidfile: exit $rc, expected 1"
	timeout 5 ip netns exec "$NS_F" "$FERRY" -p "$pidf" "tcp://$F4C:7122" "tcp://$S4:$ECHO" </dev/null >/dev/null 2>"$T/d3.err"
	rc=$?
	[ $rc = 1 ] || fail "second ferry -p (foreground) on a live pidfile: exit $rc, expected 1"
	[ "$(cat "$pidf" 2>/dev/null)" = "$pid" ] || fail "refused start changed the pidfile to '$(cat "$pidf")'"
	sleep 0.3
	nsx "$NS_F" ss -Hltn | grep -qE ':712[12] ' && fail "refused ferry is listening anyway"
	alive "$pid" || fail "the first daemon died"

	# SIGTERM: the daemon exits and removes its pidfile
	kill -TERM "$pid"
	for _ in $(seq 1 30); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && fail "daemon still running 3 s after SIGTERM"
	for _ in $(seq 1 10); do [ -e "$pidf" ] || break; sleep 0.1; done
	[ -e "$pidf" ] && fail "pidfile not removed after SIGTERM"

	# a stale pidfile (the pid of a process that has exited) is replaced
	sh -c 'exit 0' &
	stale=$!
	wait $stale
	alive "$stale" && fail "stale pid $stale is alive?"
	echo "$stale" >"$pidf"
	timeout 5 ip netns exec "$NS_F" "$FERRY" -d -p "$pidf" "tcp://$F4C:7123" "tcp://$S4:$ECHO" </dev/null >/dev/null 2>"$T/d4.err"
	rc=$?
	[ $rc = 0 ] || fail "ferry -d with a stale pidfile: exit $rc: $(head -c 300 "$T/d4.err")"
	for _ in $(seq 1 10); do [ "$(cat "$pidf")" != "$stale" ] && break; sleep 0.1; done
	pid=$(cat "$pidf")
	[ "$pid" != "$stale" ] || fail "stale pidfile not replaced"
	alive "$pid" || fail "pid $pid from the replaced pidfile is not running"
	wait_tcp_listen "$NS_F" 7123 || fail "daemon started over a stale pidfile does not listen"
	kill -TERM "$pid"
	for _ in $(seq 1 30); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && fail "second daemon still running 3 s after SIGTERM"
	return 0
}

# listener_inodes NS PORT: the socket inodes listening on PORT, sorted, on one line
listener_inodes() {
	nsx "$1" ss -Hltne "sport = :$2" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\n' ' '
}

sighup_adds_rule_while_transfer_continues() {
	local conf=$T/hup.conf xpid out sha ino
	printf '# ferry reload test\n\ntcp://%s:7130 tcp://%s:%s\n' "$F4C" "$S4" $ECHO >"$conf"
	ferry_up "$NS_F" 7130 -c "$conf"
	ino=$(listener_inodes "$NS_F" 7130)
	tool "$NS_C" send-hash "$F4C" 7130 --bytes $((60 * MIB)) --rate $((30 * MIB)) --timeout 30 >"$T/xfer.out" 2>&1 &
	xpid=$!
	wait_established "$NS_F" 7130 || fail "the transfer never connected: $(cat "$T/xfer.out")"
	alive $xpid || fail "the 60 MiB transfer ended before the reload: $(cat "$T/xfer.out")"
	printf '# ferry reload test\n\ntcp://%s:7130 tcp://%s:%s\ntcp://%s:7131 tcp://[%s]:%s --connect-timeout 2   # added\n' \
		"$F4C" "$S4" $ECHO "$F4C" "$S6" $ECHO >"$conf"
	kill -HUP "$FERRY_PID"
	wait_tcp_listen "$NS_F" 7131 "$FERRY_PID" || fail "added rule does not listen after SIGHUP"
	transfer "$NS_C" "$F4C" 7131 $MIB
	alive $xpid || echo "  note: the long transfer finished before the new rule was tested"
	wait $xpid || fail "transfer across the reload: $(cat "$T/xfer.out")"
	out=$(cat "$T/xfer.out")
	sha=$(json_field "$out" sent_sha256)
	server_saw "$sha" $((60 * MIB)) eof
	# the unchanged rule kept its listening sockets and still accepts
	[ "$(listener_inodes "$NS_F" 7130)" = "$ino" ] ||
		fail "unchanged rule's listeners were replaced: $ino -> $(listener_inodes "$NS_F" 7130)"
	transfer "$NS_C" "$F4C" 7130 $MIB
	ferry_alive
}

# a rule whose options change is removed and added again on the same port: the new one
# must get the port even though the old listener is still closing (default: 2 workers)
sighup_changed_rule_keeps_its_port() {
	local conf=$T/hup3.conf i
	printf 'tcp://%s:7150 tcp://%s:%s\n' "$F4C" "$S4" $ECHO >"$conf"
	ferry_up "$NS_F" 7150 --workers 2 -c "$conf"
	for i in 1 2 3 4 5; do
		printf 'tcp://%s:7150 tcp://%s:%s --idle-timeout %s\n' "$F4C" "$S4" $ECHO $((30 + i)) >"$conf"
		kill -HUP "$FERRY_PID"
		sleep 0.3
		transfer "$NS_C" "$F4C" 7150 $((64 << 10))
	done
	grep -q "in use" "$FERRY_ERR" && fail "a reload lost the port: $(grep 'in use' "$FERRY_ERR" | head -n1)"
	ferry_alive
}

sighup_removes_rule_and_drains() {
	local conf=$T/hup2.conf xpid out sha
	printf 'tcp://%s:7140 tcp://%s:%s\ntcp://%s:7141 tcp://%s:%s\n' "$F4C" "$S4" $ECHO "$F4C" "$S4" $ECHO >"$conf"
	ferry_up "$NS_F" 7140 -c "$conf"
	wait_tcp_listen "$NS_F" 7141 || fail "second rule does not listen"
	tool "$NS_C" send-hash "$F4C" 7140 --bytes $((30 * MIB)) --rate $((20 * MIB)) --timeout 30 >"$T/xfer.out" 2>&1 &
	xpid=$!
	wait_established "$NS_F" 7140 || fail "the transfer never connected: $(cat "$T/xfer.out")"
	alive $xpid || fail "the 30 MiB transfer ended before the reload: $(cat "$T/xfer.out")"
	printf 'tcp://%s:7141 tcp://%s:%s\n' "$F4C" "$S4" $ECHO >"$conf"
	kill -HUP "$FERRY_PID"
	wait_tcp_closed "$NS_F" 7140 || fail "removed rule still listening 5 s after SIGHUP"
	tool "$NS_C" connect "$F4C" 7140 --timeout 2 >/dev/null 2>&1 && fail "removed rule still accepts"
	transfer "$NS_C" "$F4C" 7141 $MIB
	wait $xpid || fail "connection on the removed rule did not drain intact: $(cat "$T/xfer.out")"
	out=$(cat "$T/xfer.out")
	sha=$(json_field "$out" sent_sha256)
	server_saw "$sha" $((30 * MIB)) eof
	ferry_alive
}

user_group_drop_privileges_on_all_threads() {
	local uid gid f bad="" n=0
	uid=$(id -u nobody) || skip "no user nobody"
	gid=$(getent group nogroup | cut -d: -f3)
	[ -n "$gid" ] || skip "no group nogroup"
	ferry_up "$NS_F" 80 --user nobody --group nogroup --workers 2 "tcp://$F4C:80" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F4C" 80 $MIB
	for f in /proc/"$FERRY_PID"/task/*/status; do
		n=$((n + 1))
		grep -qE "^Uid:[[:space:]]+${uid}[[:space:]]+${uid}[[:space:]]+${uid}[[:space:]]+${uid}\$" "$f" &&
			grep -qE "^Gid:[[:space:]]+${gid}[[:space:]]+${gid}[[:space:]]+${gid}[[:space:]]+${gid}\$" "$f" ||
			bad="$bad ${f%/status}: $(grep -E '^(Uid|Gid)' "$f" | tr '\n\t' '  ')"
		grep -qE '^Groups:.*\b0\b' "$f" && bad="$bad ${f%/status}: still in group 0 ($(grep ^Groups "$f"))"
	done
	[ $n -ge 3 ] || fail "only $n threads with --workers 2"
	[ -z "$bad" ] || fail "threads not running as $uid/$gid:$bad"
}

workers_2_serve_50_connections() {
	local out n
	ferry_up "$NS_F" 7150 --workers 2 "tcp://$F4C:7150" "tcp://$S4:$ECHO"
	out=$(tool "$NS_C" concurrent "$F4C" 7150 --conns 50 --min $((16 << 10)) --max $((256 << 10)) --timeout 30 2>&1) ||
		fail "$out"
	n=$(ls /proc/"$FERRY_PID"/task | wc -l)
	[ "$n" -ge 3 ] || fail "$n threads with --workers 2, expected >= 3"
	ferry_alive
}

stats_count_connections_and_bytes() {
	local v ts hold_pid
	ferry_up "$NS_F" 7160 "tcp://$F4C:7160" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F4C" 7160 $MIB
	transfer "$NS_C" "$F4C" 7160 $MIB
	transfer "$NS_C" "$F4C" 7160 $MIB
	wait_stat rules.0.active -eq 0
	v=$(stat_get rules.0.rule rules.0.listen rules.0.target rules.0.accepted rules.0.failed \
		rules.0.bytes_up rules.0.bytes_down | tr '\n' ' ')
	[ "$v" = "1 \"tcp://$F4C:7160\" \"tcp://$S4:$ECHO\" 3 0 $((3 * MIB)) $((3 * MIB)) " ] ||
		fail "stats rule,listen,target,accepted,failed,bytes_up,bytes_down = $v; expected 1 tcp://$F4C:7160 tcp://$S4:$ECHO 3 0 $((3 * MIB)) $((3 * MIB))"
	ts=$(stat_get ts)
	"$PY" -c 'import sys,time; t=float(sys.argv[1]); sys.exit(abs(t-time.time()) > 60 or "." not in sys.argv[1])' "$ts" ||
		fail "stats ts $ts is not the current unix time as a float"
	tool "$NS_C" hold "$F4C" 7160 --conns 2 --secs 30 --timeout 5 >"$T/hold.out" 2>&1 &
	hold_pid=$!
	wait_line "$T/hold.out" '^held 2' $hold_pid || fail "could not hold 2 connections: $(cat "$T/hold.out")"
	wait_stat rules.0.active -eq 2
	wait_stat rules.0.accepted -eq 5
	return 0
}

stats_interval_prints_periodic_lines() {
	local out
	ferry_up "$NS_F" 7170 --stats-interval 1 "tcp://$F4C:7170" "tcp://$S4:$ECHO"
	sleep 3.4
	out=$("$PY" - "$FERRY_OUT" <<-'EOF' 2>&1
		import json, sys
		lines = [l for l in open(sys.argv[1]) if l.strip()]
		if not 2 <= len(lines) <= 5:
		    sys.exit(f"{len(lines)} stdout lines in 3.4 s with --stats-interval 1")
		for l in lines:
		    o = json.loads(l)
		    assert o["type"] == "stats" and isinstance(o["ts"], float), l
		    assert o["rules"][0]["listen"] == "tcp://10.77.1.2:7170", l
		    assert set(o["rules"][0]["drops"]) >= {"max_conns", "no_fds", "connect_timeout", "connect_failed", "base_addr"}, l
	EOF
	) || fail "periodic stats: $(tail -n 3 <<<"$out")"
	ferry_alive
}

log_format_json_lines_parse() {
	local out
	ferry_up "$NS_F" 7180 --log-format json --log-level debug "tcp://$F4C:7180" "tcp://$S4:$ECHO"
	transfer "$NS_C" "$F4C" 7180 $((64 << 10))
	ferry_stop TERM
	[ -s "$FERRY_ERR" ] || fail "--log-level debug logged nothing for a connection"
	out=$("$PY" - "$FERRY_ERR" <<-'EOF' 2>&1
		import json, sys
		for l in open(sys.argv[1]):
		    if l.strip():
		        json.loads(l)
	EOF
	) || fail "stderr line is not JSON with --log-format json: $(tail -n 2 <<<"$out")"
}

tcpfwd_alias_accepts_portfwd_options() {
	local out
	[ -x "$TCPFWD" ] || fail "$TCPFWD missing (make should create the symlink)"
	FERRY_BIN=$TCPFWD ferry_up "$NS_F" 7190 -r -R "$F4C:7190" "$S4:$ECHO"
	transfer "$NS_C" "$F4C" 7190 $MIB
	FERRY_BIN=$TCPFWD ferry_up "$NS_F" 7191 "$F4C:7191" "$S4:$ECHO" -r -R
	transfer "$NS_C" "$F4C" 7191 $MIB
	FERRY_BIN=$TCPFWD ferry_up "$NS_F" 7192 -6 "[$F6C]:7192" "[$S6]:$ECHO"
	transfer "$NS_C" "$F6C" 7192 $MIB
	out=$(timeout 5 ip netns exec "$NS_F" "$TCPFWD" -h 2>&1) || fail "tcpfwd -h exit $?: $out"
}

# several workers use SO_REUSEPORT internally; that must not let a second instance in
second_instance_with_workers_is_refused() {
	local rc
	ferry_up "$NS_F" 7220 --workers 2 "tcp://$F4C:7220" "tcp://$S4:$ECHO"
	timeout 5 ip netns exec "$NS_F" "$FERRY" --workers 2 "tcp://$F4C:7220" "tcp://$S4:$ECHO" \
		</dev/null >/dev/null 2>"$T/second.err"
	rc=$?
	[ $rc = 1 ] || fail "second ferry --workers 2 on a taken port: exit $rc, expected 1"
	grep -q "in use" "$T/second.err" || fail "no 'in use' in: $(head -n2 "$T/second.err")"
	transfer "$NS_C" "$F4C" 7220 $MIB
}

reuseport_lets_two_instances_share_a_port() {
	local first
	ferry_up "$NS_F" 7200 -R "tcp://$F4C:7200" "tcp://$S4:$ECHO"
	first=$FERRY_PID
	ferry_start "$NS_F" -R "tcp://$F4C:7200" "tcp://$S4:$ECHO"
	sleep 0.5
	alive "$FERRY_PID" || fail "second ferry -R on the same port exited"
	alive "$first" || fail "first ferry -R exited"
	ferry_stop TERM "$first"
	transfer "$NS_C" "$F4C" 7200 $MIB
}

bind_failure_exits_1() {
	local rc spid
	timeout 5 ip netns exec "$NS_F" "$FERRY" "tcp://10.99.99.99:7210" "tcp://$S4:$ECHO" </dev/null >/dev/null 2>"$T/b.err"
	rc=$?
	[ $rc = 1 ] || fail "listen on an address F does not have: exit $rc, expected 1"
	grep -q 10.99.99.99 "$T/b.err" || fail "bind error does not name the address: $(head -n2 "$T/b.err")"
	server_start "$NS_F" echo "$F4C" 7211 || fail "helper listener"
	spid=$SERVER_PID
	track $spid
	timeout 5 ip netns exec "$NS_F" "$FERRY" "tcp://$F4C:7211" "tcp://$S4:$ECHO" </dev/null >/dev/null 2>"$T/b2.err"
	rc=$?
	[ $rc = 1 ] || fail "listen on a port in use: exit $rc, expected 1"
	return 0
}

need_root_and_tools
topology_up || setup_fail "could not build namespaces"
server_start "$NS_S" echo :: $ECHO || setup_fail "echo server"

run_case cli_errors_exit_2_naming_the_bad_word
run_case help_and_version
run_case signals_exit_cleanly_with_connections_open
run_case drain_timeout_lets_transfers_finish
run_case daemon_and_pidfile_lifecycle
run_case sighup_adds_rule_while_transfer_continues
run_case sighup_changed_rule_keeps_its_port
run_case sighup_removes_rule_and_drains
run_case user_group_drop_privileges_on_all_threads
run_case workers_2_serve_50_connections
run_case stats_count_connections_and_bytes
run_case stats_interval_prints_periodic_lines
run_case log_format_json_lines_parse
run_case tcpfwd_alias_accepts_portfwd_options
run_case second_instance_with_workers_is_refused
run_case reuseport_lets_two_instances_share_a_port
run_case bind_failure_exits_1
finish
