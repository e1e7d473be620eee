#!/bin/bash
# systemd socket activation and sd_notify without systemd as PID 1 (spec/systemd.md §7, §10):
# sockets handed in by systemd-socket-activate (datagram and stream, by position with
# --systemd and by name with fd://NAME), the start-up errors (count mismatch, a missing name, a
# socket of the wrong type, a non-socket fd: exit status 2 and one line), and what ferry tells a
# fake NOTIFY_SOCKET: READY=1 once the listeners are up, STATUS= with live counters, RELOADING=1
# on SIGHUP, STOPPING=1 on SIGTERM, WATCHDOG=1 at half of WATCHDOG_USEC; and the fd store: a
# restart under a small stand-in service manager keeps ferry's own listening sockets.
#
#   client C ---- F (ferry) ---- S server        (topology: see lib.sh)
#
# systemd-socket-activate runs in F and execs ferry in its own process once the first datagram
# or connection arrives (that trigger is delivered to ferry, not lost). It makes sockets of one
# type per run (-d: datagram), so a case that needs both nests two of them: the outer one's
# stream socket comes first (fd 3), the inner one's datagram sockets after it.
#
# Servers in S (udptool, one JSON line per new sender, with the tag of its first datagram):
#   6000, 6001, 7002  udp peer servers (reply with the address they saw)
#   6100              tcp echo server
# Ferry's ports in F: 7000-7002 + 8080 positional, 7100-7102 by name, 72xx errors, 7300 notify,
# 7350 watchdog, 7400 fd store.
. "$(dirname "$0")/lib.sh"

ACTIVATE=$(command -v systemd-socket-activate)

# ------------------------------------------------------------------ helpers

# udp_server MODE PORT: a udptool server in S on [::]:PORT, log $T/srv-PORT.log
udp_server() {
	local mode=$1 port=$2 pid
	: >"$T/srv-$port.log"
	nsx "$NS_S" "$PY" "$UDPTOOL" serve "$mode" :: "$port" >>"$T/srv-$port.log" 2>&1 &
	pid=$!
	wait_udp_listen "$NS_S" "$port" $pid
}

# ask_via HOST PORT TAG SERVER_PORT: one datagram from C through ferry; the peer server on
# SERVER_PORT (and no other) must have logged TAG
ask_via() {
	local host=$1 port=$2 tag=$3 srv=$4 out p
	out=$(utool "$NS_C" ask "$host" "$port" --tag "$tag" --timeout 3 2>&1) ||
		fail "datagram '$tag' to $host:$port: $out"
	grep -qF "\"tag\": \"$tag\"" "$T/srv-$srv.log" || fail "'$tag' sent to $host:$port did not reach the server on port $srv"
	for p in 6000 6001 7002; do
		[ "$p" = "$srv" ] && continue
		! grep -qF "\"tag\": \"$tag\"" "$T/srv-$p.log" || fail "'$tag' sent to $host:$port reached port $p, not $srv"
	done
}

# poke_udp HOST PORT: one datagram from C, no answer awaited (wakes systemd-socket-activate)
poke_udp() {
	nsx "$NS_C" "$PY" -c 'import socket,sys
h=sys.argv[1]; s=socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"poke", (h, int(sys.argv[2])))' "$1" "$2"
}

# poke_tcp HOST PORT: open a connection from C and close it
poke_tcp() {
	nsx "$NS_C" "$PY" -c 'import socket,sys
s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); s.close()' "$1" "$2" 2>/dev/null
}

# activate_up PORT ARGS...: start systemd-socket-activate ARGS in F as the case's "ferry"; fail
# unless it listens on UDP PORT (or TCP PORT with -t) within 5 s
activate_up() {
	local proto=-u
	if [ "$1" = -t ]; then proto=-t; shift; fi
	local port=$1
	shift
	FERRY_BIN=$ACTIVATE ferry_start "$NS_F" "$@"
	wait_listen "$proto" "$NS_F" "$port" "$FERRY_PID" || fail "systemd-socket-activate $* does not listen on $port"
}

# wait_exec: wait up to 5 s until systemd-socket-activate has exec'ed ferry (its process
# name changes to ferry's)
wait_exec() {
	local i comm
	comm=$(basename "$FERRY" | cut -c1-15)
	for i in $(seq 1 50); do
		[ "$(cat "/proc/$FERRY_PID/comm" 2>/dev/null)" = "$comm" ] && return 0
		alive "$FERRY_PID" || break
		sleep 0.1
	done
	fail "systemd-socket-activate did not exec ferry (stderr: $(tail -n 3 "$FERRY_ERR" | tr '\n' ' '))"
}

# expect_usage_error REGEX: ferry must exit with status 2 within 5 s, with exactly one
# "ferry: " line on stderr, matching REGEX
expect_usage_error() {
	local rc lines
	ferry_wait_exit 5
	rc=$?
	[ "$rc" = 2 ] || fail "exit status $rc, expected 2 (stderr: $(tr '\n' ' ' <"$FERRY_ERR" | cut -c1-400))"
	lines=$(grep -c '^ferry: ' "$FERRY_ERR")
	[ "$lines" = 1 ] || fail "$lines 'ferry:' lines on stderr, expected 1: $(cat "$FERRY_ERR")"
	grep -qE "^ferry: $1" "$FERRY_ERR" || fail "stderr does not match '$1': $(grep '^ferry: ' "$FERRY_ERR")"
}

# The fake service manager end of NOTIFY_SOCKET: an AF_UNIX datagram socket with SO_PASSCRED.
# Logs one JSON line per message: monotonic time, sender pid (SCM_CREDENTIALS), text, number of
# fds (SCM_RIGHTS, closed at once). With a third argument HOST:PORT, a READY=1 message also
# records whether a UDP socket could still be bound there (it must not: ferry holds it).
NOTIFY_PY='
import array, json, os, socket, struct, sys, time
path, log = sys.argv[1], open(sys.argv[2], "a")
check = sys.argv[3] if len(sys.argv) > 3 else ""
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
while True:
    msg, anc, _, _ = s.recvmsg(8192, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    rec = {"t": time.monotonic(), "pid": None, "msg": msg.decode(errors="replace"), "nfds": 0}
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            rec["pid"] = struct.unpack("iII", data[:12])[0]
        elif level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i", data[:len(data) - len(data) % 4])
            rec["nfds"] = len(fds)
            for fd in fds:
                os.close(fd)
    if check and "READY=1" in rec["msg"].split("\n"):
        host, port = check.rsplit(":", 1)
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((host, int(port)))
            rec["port_free"] = True
        except OSError:
            rec["port_free"] = False
        t.close()
    log.write(json.dumps(rec) + "\n")
    log.flush()
'

# notify_listen [HOST:PORT]: start the fake notify socket in F; exports NOTIFY_SOCKET, log in
# $NOTIFY_LOG
notify_listen() {
	local i
	export NOTIFY_SOCKET=$T/$CASE.notify
	NOTIFY_LOG=$T/$CASE.notify.log
	: >"$NOTIFY_LOG"
	(ip netns exec "$NS_F" "$PY" -c "$NOTIFY_PY" "$NOTIFY_SOCKET" "$NOTIFY_LOG" "$@" &)
	for i in $(seq 1 50); do
		[ -S "$NOTIFY_SOCKET" ] && return 0
		sleep 0.1
	done
	fail "the fake notify socket did not appear"
}

# notify_count REGEX: messages so far with a line matching REGEX
notify_count() {
	"$PY" -c 'import json, re, sys
print(sum(1 for l in open(sys.argv[1]) if any(re.fullmatch(sys.argv[2], x) for x in json.loads(l)["msg"].split("\n"))))' \
		"$NOTIFY_LOG" "$1"
}

# wait_notify REGEX [N] [SECS]: wait until N (default 1) messages have a line matching REGEX
wait_notify() {
	local want=${2:-1} secs=${3:-5} i
	for i in $(seq 1 $((secs * 10))); do
		[ "$(notify_count "$1")" -ge "$want" ] && return 0
		sleep 0.1
	done
	fail "no $want message(s) with a line '$1' on the notify socket within $secs s (got: $(cut -c1-2000 "$NOTIFY_LOG" | tr '\n' ' '))"
}

# notify_field REGEX FIELD: FIELD of the first message with a line matching REGEX
notify_field() {
	"$PY" -c 'import json, re, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if any(re.fullmatch(sys.argv[2], x) for x in r["msg"].split("\n")):
        print(r.get(sys.argv[3])); break' "$NOTIFY_LOG" "$1" "$2"
}

# ------------------------------------------------------------------ cases

# Two datagram sockets (one IPv6) and one stream socket, targets by position; a bare host is
# the listening socket's port. Traffic through each reaches its own target, with 2 workers.
positional_two_datagram_and_one_stream_socket_each_reach_their_target() {
	activate_up -t 8080 -l "$F4C:8080" -- "$ACTIVATE" -d -l "$F4C:7000" -l "[$F6C]:7002" --fdname=web:game:voice \
		"$FERRY" --workers 2 --systemd "$S4:6100" "$S4:6000" "$S4"
	# the TCP connection wakes the outer activator (and then the inner one): it is the trigger
	transfer "$NS_C" "$F4C" 8080 300000
	wait_exec
	ask_via "$F4C" 7000 pos-game 6000
	ask_via "$F6C" 7002 pos-voice 7002
	ask_via "$F4C" 7000 pos-game-2 6000
	transfer "$NS_C" "$F4C" 8080 1000
	grep -qF 'fd://3 (web '"$F4C"':8080) -> tcp://'"$S4"':6100: listening' "$FERRY_ERR" ||
		fail "no 'listening' line for the stream socket: $(grep rule "$FERRY_ERR")"
	grep -qF 'fd://5 (voice ['"$F6C"']:7002) -> udp://'"$S4"':7002: listening' "$FERRY_ERR" ||
		fail "the bare target did not take the listening port 7002: $(grep rule "$FERRY_ERR")"
	ferry_alive
	ferry_stop TERM || fail "ferry exited with status $? on SIGTERM"
}

# The seed's command line, unchanged: datagram sockets only, as systemd-socket-activate -d
# makes them (spec §7).
positional_seed_command_line() {
	activate_up 7001 -d -l "$F4C:7001" -l "[$F6C]:7001" "$FERRY" --systemd "$S4:6001" "[$S6]:6000"
	ask_via "$F4C" 7001 seed-a 6001
	wait_exec
	ask_via "$F6C" 7001 seed-b 6000
}

# fd://NAME in a config file: two sockets named game (v4 and v6) become two rules with one
# target, voice goes to an IPv6 target, an extra socket nobody names is a warning and stays open;
# SIGHUP keeps the rules and their sockets.
by_name_in_config_file() {
	local conf=$T/byname.conf inode_before inode_after
	printf '%s\n' "# sockets come from the socket unit, by FileDescriptorName=" \
		"fd://voice udp://[$S6]:6001" "fd://game udp://$S4:6000 --udp-timeout 30" >"$conf"
	activate_up 7100 -d -l "$F4C:7100" -l "[$F6C]:7100" -l "$F4C:7101" -l "$F4C:7102" \
		--fdname=game:game:voice:extra "$FERRY" --workers 2 -c "$conf"
	ask_via "$F4C" 7100 name-game4 6000
	wait_exec
	ask_via "$F6C" 7100 name-game6 6000
	ask_via "$F4C" 7101 name-voice 6001
	grep -qE 'rule 2 fd://game \(fd 3 '"$F4C"':7100\)' "$FERRY_ERR" &&
		grep -qE 'rule 3 fd://game \(fd 4 \['"$F6C"'\]:7100\)' "$FERRY_ERR" ||
		fail "expected rules 2 and 3 for the two sockets named game: $(grep rule "$FERRY_ERR")"
	grep -qF "inherited fd 6 (extra, udp $F4C:7102): no rule uses it; kept open" "$FERRY_ERR" ||
		fail "no warning about the unused socket: $(grep -i warn "$FERRY_ERR")"
	nsx "$NS_F" ss -Hlun "sport = :7102" | grep -q . || fail "the unused socket was closed"
	inode_before=$(nsx "$NS_F" ss -Hlune "sport = :7100" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\n' ' ')
	kill -HUP "$FERRY_PID"
	wait_line "$FERRY_ERR" "reloaded $conf: 3 rules" "$FERRY_PID" || fail "no reload line: $(tail -n 3 "$FERRY_ERR")"
	grep -q "removed" "$FERRY_ERR" && fail "reload removed an unchanged rule: $(grep removed "$FERRY_ERR")"
	inode_after=$(nsx "$NS_F" ss -Hlune "sport = :7100" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\n' ' ')
	[ "$inode_before" = "$inode_after" ] || fail "sockets changed across the reload: $inode_before -> $inode_after"
	ask_via "$F6C" 7100 name-game6-after-hup 6000
	ferry_alive
}

# The issue's command line: one rule, fd://NAME on the command line, no --systemd.
by_name_on_the_command_line() {
	activate_up 7103 -d -l "$F4C:7103" -l "$F4C:7104" --fdname=game "$FERRY" "fd://game" "udp://$S4:6001"
	ask_via "$F4C" 7104 cmdline-b 6001
	wait_exec
	ask_via "$F4C" 7103 cmdline-a 6001
}

errors_count_mismatch_names_both_counts() {
	activate_up 7200 -d -l "$F4C:7200" -l "$F4C:7201" "$FERRY" --systemd "$S4:6000"
	poke_udp "$F4C" 7200
	expect_usage_error '--systemd: 1 target for 2 inherited sockets: give one target per socket'
}

errors_rule_naming_a_missing_socket() {
	activate_up 7202 -d -l "$F4C:7202" --fdname=game "$FERRY" fd://nope "udp://$S4:6000"
	poke_udp "$F4C" 7202
	expect_usage_error 'rule fd://nope -> udp://'"$S4"':6000: no inherited socket named "nope" \(fd 3 game\)'
}

errors_stream_socket_for_a_udp_target() {
	activate_up -t 7203 -l "$F4C:7203" --fdname=web "$FERRY" fd://web "udp://$S4:6000"
	poke_tcp "$F4C" 7203
	expect_usage_error 'rule fd://web -> udp://'"$S4"':6000: inherited fd 3 \(web, tcp '"$F4C"':7203\) is a stream socket: the target must be tcp://'
}

errors_non_socket_fd() {
	# a stand-in for the service manager that passes /dev/null as fd 3
	FERRY_BIN=$PY ferry_start "$NS_F" -c 'import os, sys
os.dup2(os.open("/dev/null", os.O_RDONLY), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="junk")
os.execv(sys.argv[1], sys.argv[1:])' "$FERRY" --systemd "$S4:6000"
	expect_usage_error '--systemd: inherited fd 3 \(junk\) is not a socket'
}

errors_no_inherited_sockets() {
	ferry_start "$NS_F" --systemd "$S4:6000"
	expect_usage_error '--systemd: no inherited sockets \(LISTEN_FDS is not set'
}

# READY=1 after the listener is bound, from ferry's pid; STATUS= every --status-interval with
# live counters; SIGHUP: RELOADING=1 (+ MONOTONIC_USEC) then READY=1; SIGTERM: STOPPING=1.
notify_ready_status_reload_stopping() {
	local conf=$T/notify.conf ready_pid port_free st
	echo "udp://$F4C:7300 udp://$S4:6000" >"$conf"
	notify_listen "$F4C:7300"
	ferry_start "$NS_F" --status-interval 0.3 --no-fdstore -c "$conf"
	wait_notify 'READY=1'
	ready_pid=$(notify_field 'READY=1' pid)
	port_free=$(notify_field 'READY=1' port_free)
	[ "$ready_pid" = "$FERRY_PID" ] || fail "READY=1 came from pid $ready_pid, ferry is $FERRY_PID"
	[ "$port_free" = False ] || fail "at READY=1 the listening port 7300 could still be bound (port_free=$port_free)"
	[ "$(notify_count 'STATUS=fwd 0 dgrams, 0 sessions, 0 errors')" -ge 1 ] || fail "no initial STATUS with zero counters"
	ask_via "$F4C" 7300 notify-1 6000
	wait_notify 'STATUS=fwd 2 dgrams, 1 sessions, 0 errors' 1 3
	st=$(notify_count 'STATUS=fwd [0-9]+ dgrams, [0-9]+ sessions, [0-9]+ errors')
	sleep 1.5
	st=$(($(notify_count 'STATUS=fwd [0-9]+ dgrams, [0-9]+ sessions, [0-9]+ errors') - st))
	[ "$st" -ge 3 ] && [ "$st" -le 7 ] || fail "$st STATUS messages in 1.5 s with --status-interval 0.3, expected ~5"
	kill -HUP "$FERRY_PID"
	wait_notify 'RELOADING=1'
	[ "$(notify_count 'MONOTONIC_USEC=[0-9]+')" = 1 ] || fail "RELOADING=1 without MONOTONIC_USEC"
	wait_notify 'READY=1' 2
	[ "$(notify_count 'STOPPING=1')" = 0 ] || fail "STOPPING=1 before any signal"
	ferry_stop TERM || fail "ferry exited with status $? on SIGTERM"
	wait_notify 'STOPPING=1'
}

# WATCHDOG_USEC=1000000 (WatchdogSec=1s): WATCHDOG=1 every 0.5 s +- 10 %, from the activated
# process, with READY=1 first.
notify_watchdog_pings_at_half_the_interval() {
	local out
	notify_listen
	FERRY_BIN=env ferry_start "$NS_F" WATCHDOG_USEC=1000000 "$ACTIVATE" -E NOTIFY_SOCKET -E WATCHDOG_USEC -d \
		-l "$F4C:7350" "$FERRY" --systemd "$S4:6000"
	wait_listen -u "$NS_F" 7350 "$FERRY_PID" || fail "systemd-socket-activate does not listen"
	[ -s "$NOTIFY_LOG" ] && fail "a notify message before ferry started: $(cat "$NOTIFY_LOG")"
	ask_via "$F4C" 7350 watchdog 6000
	wait_notify 'READY=1'
	[ "$(notify_field 'READY=1' pid)" = "$FERRY_PID" ] || fail "READY=1 not from ferry's pid $FERRY_PID"
	sleep 3.2
	out=$("$PY" -c 'import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
ready = next(r["t"] for r in rs if "READY=1" in r["msg"].split("\n"))
ts = [r["t"] for r in rs if r["msg"] == "WATCHDOG=1"]
gaps = [b - a for a, b in zip(ts, ts[1:])]
first = ts[0] - ready if ts else -1
ok = len(ts) >= 6 and all(0.45 <= g <= 0.55 for g in gaps) and 0.4 <= first <= 0.6
print("ok" if ok else "bad", len(ts), "pings, first after %.3f s, gaps" % first, " ".join("%.3f" % g for g in gaps))' "$NOTIFY_LOG")
	case $out in ok*) ;; *) fail "watchdog: $out" ;; esac
	ferry_stop TERM || fail "ferry exited with status $? on SIGTERM"
	wait_notify 'STOPPING=1'
}

# A stand-in service manager with an fd store (FileDescriptorStoreMax=): it starts ferry with
# NOTIFY_SOCKET, keeps the fds sent with FDSTORE=1 (and drops them on FDSTOREREMOVE=1), and on
# SIGUSR2 restarts ferry: SIGTERM, 1.5 s with no ferry at all, then a new ferry with the stored
# fds as LISTEN_FDS and their names in LISTEN_FDNAMES. Log: one JSON line per event.
FDLAUNCH_PY='
import array, json, os, signal, socket, subprocess, sys, time
path, log, argv = sys.argv[1], open(sys.argv[2], "a"), sys.argv[3:]
def note(**kw):
    log.write(json.dumps(kw) + "\n"); log.flush()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
store = []  # (name, fd)
def start():
    fds = [fd for _, fd in store]
    names = ":".join(n for n, _ in store)
    def child():
        for i, fd in enumerate(fds):
            os.dup2(fd, 100 + i)
        for i in range(len(fds)):
            os.dup2(100 + i, 3 + i)
            os.set_inheritable(3 + i, True)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    if fds:
        env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=names)
    # LISTEN_PID is the pid that execs ferry: that of the shell, kept by exec
    p = subprocess.Popen(["/bin/sh", "-c", "LISTEN_PID=$$ exec \"$@\"", "sh"] + argv, preexec_fn=child,
                         close_fds=False, env=env)
    note(event="start", pid=p.pid, nfds=len(fds), names=names)
    return p
restart = [False]
signal.signal(signal.SIGUSR2, lambda *a: restart.__setitem__(0, True))
p = start()
s.settimeout(0.1)
while True:
    if restart[0]:
        restart[0] = False
        p.terminate(); rc = p.wait(); note(event="exit", status=rc)
        time.sleep(1.5)
        p = start()
    try:
        msg, anc, _, _ = s.recvmsg(8192, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    except socket.timeout:
        continue
    except InterruptedError:
        continue
    fds = []
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = list(array.array("i", data[:len(data) - len(data) % 4]))
    lines = msg.decode().split("\n")
    name = next((l[7:] for l in lines if l.startswith("FDNAME=")), "stored")
    if "FDSTORE=1" in lines:
        store += [(name, fd) for fd in fds]
    elif "FDSTOREREMOVE=1" in lines:
        for n, fd in [x for x in store if x[0] == name]:
            os.close(fd)
        store = [x for x in store if x[0] != name]
    else:
        for fd in fds:
            os.close(fd)
    note(event="msg", msg=msg.decode(), nfds=len(fds), stored=len(store))
'

# Ferry's own listeners (2 workers: 2 SO_REUSEPORT sockets) go to the fd store and come back
# after a restart: the same sockets (inodes) serve again, and a datagram sent while no ferry
# ran was queued in them and is answered.
fdstore_restart_keeps_the_listening_sockets() {
	local log=$T/fdlaunch.log inodes_before inodes_after out i
	: >"$log"
	# not through nsx: $! must be the launcher itself (it gets SIGUSR2), not a subshell
	ip netns exec "$NS_F" "$PY" -c "$FDLAUNCH_PY" "$T/fdlaunch.sock" "$log" "$FERRY" --workers 2 \
		"udp://$F4C:7400" "udp://$S4:6000" 2>"$T/$CASE.ferry.err" &
	LAUNCHER=$!
	FERRY_ERR=$T/$CASE.ferry.err
	echo "fdlaunch ferry --workers 2 udp://$F4C:7400 udp://$S4:6000" >"${FERRY_ERR%.err}.cmd"
	wait_udp_listen "$NS_F" 7400 "$LAUNCHER" || fail "ferry does not listen on 7400 under the launcher"
	for i in $(seq 1 50); do
		[ "$(grep -c '"FDSTORE=1' "$log")" = 2 ] && break
		sleep 0.1
	done
	out=$(grep '"FDSTORE=1' "$log")
	[ "$(grep -c '"nfds": 1' <<<"$out")" = 2 ] || fail "expected 2 FDSTORE=1 messages with one fd each: $out"
	grep -qE '"FDSTORE=1\\nFDNAME=l-[0-9a-f]{16}"' <<<"$out" || fail "FDSTORE without an l-<hash> name: $out"
	ask_via "$F4C" 7400 store-1 6000
	inodes_before=$(nsx "$NS_F" ss -Hlune "sport = :7400" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\n' ' ')
	kill -USR2 "$LAUNCHER"
	for i in $(seq 1 50); do
		grep -q '"event": "exit"' "$log" && break
		sleep 0.1
	done
	grep -q '"event": "exit", "status": 0' "$log" || fail "ferry did not exit 0 on the restart: $(grep exit "$log")"
	# no ferry runs now: this datagram waits in the stored socket
	out=$(utool "$NS_C" ask "$F4C" 7400 --tag store-while-down --timeout 6 2>&1) ||
		fail "the datagram sent while ferry was down got no answer: $out"
	grep -q '"event": "start".*"nfds": 2' "$log" || fail "the second ferry did not get the 2 stored fds: $(grep start "$log")"
	grep -qF "2 listening sockets kept by systemd across the restart" "$FERRY_ERR" ||
		fail "no 'kept across the restart' line: $(tail -n 5 "$FERRY_ERR")"
	inodes_after=$(nsx "$NS_F" ss -Hlune "sport = :7400" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\n' ' ')
	[ "$inodes_before" = "$inodes_after" ] || fail "listening sockets changed: $inodes_before -> $inodes_after"
	[ "$(grep -c '"FDSTORE=1' "$log")" = 2 ] || fail "the second ferry stored its adopted sockets again"
	ask_via "$F4C" 7400 store-2 6000
}

# ------------------------------------------------------------------ main

need_root_and_tools
[ -n "$ACTIVATE" ] || { echo "SKIP systemd: systemd-socket-activate not installed (package systemd)"; exit 0; }
topology_up || setup_fail "could not build namespaces"
for p in 6000 6001 7002; do
	udp_server peer $p || setup_fail "udp peer server on $p"
done
server_start "$NS_S" echo :: 6100 || setup_fail "tcp echo server"

run_case positional_two_datagram_and_one_stream_socket_each_reach_their_target
run_case positional_seed_command_line
run_case by_name_in_config_file
run_case by_name_on_the_command_line
run_case errors_count_mismatch_names_both_counts
run_case errors_rule_naming_a_missing_socket
run_case errors_stream_socket_for_a_udp_target
run_case errors_non_socket_fd
run_case errors_no_inherited_sockets
run_case notify_ready_status_reload_stopping
run_case notify_watchdog_pings_at_half_the_interval
run_case fdstore_restart_keeps_the_listening_sockets
finish
