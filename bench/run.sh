#!/usr/bin/env bash
# ferry's benchmark (`make bench`): ferry side by side with the kernel (nftables DNAT, plain
# routing) and other L4 forwarders (haproxy, nginx, socat, rinetd, redir), same machine, same run.
# Run as root. Installs missing Debian packages (deps.sh), creates the namespaces if needed
# (netns.sh), builds the C load tools into build/bench-tools/, and for every forwarder in
# forwarders.sh and every test below starts the forwarder in fw, measures from fc against servers
# in fs, stops it. Results: $OUT/{raw.jsonl,results.md,results.json,results.csv,meta.json,logs/};
# at the end the compact table (lib/compact.py) is printed.
#
# Default = a short run (about 5 minutes on 2 cores); FULL=1 = every forwarder and every test,
# 3 repetitions, 10 s TCP (about 27 minutes). Any knob set explicitly wins over both.
#
# Environment knobs (defaults in brackets; FULL=1 values after "full:"):
#   FERRY_BIN ferry binary                                   [<repo>/build/ferry]
#   FWDS      forwarders to run, in order   [dnat haproxy-splice nginx ferry] full: all in forwarders.sh
#   TESTS     tests to run  [tcp1 tcp4 crr lat_tcp idle, + udp64x1 udp1400x16 lat_udp when ferry does
#             UDP]  full: [tcp1 tcp4 crr udp64x1 udp64x16 udp1400x1 udp1400x16 lat_udp lat_tcp idle
#             iperfu64x1 iperfu64x16]; iperfu* (iperf3 -u -b 0 -l 64, a generator reference) run for
#             route only, idle for process forwarders only
#   REPS [2] full: 3   TCP_SECS [5] full: 10   CRR_SECS [5]  CRR_CONC [50]  UDP_SECS [3]  LAT_SECS [3]
#   IDLE_CONNS [1000]
#   BASE      forwarder the ratios refer to                                     [dnat]
#   SUBJECT   forwarder compared with every other one in the last table         [ferry]
#   MODE      netns | loopback (everything in one namespace "fl" on 127.0.0.1)   [netns]
#   PIN       0 | 1: 1 = forwarder process on CPU 1, clients and servers on CPU 0, and RPS on the
#             veths so that fw's kernel packet processing (routing, NAT, socket rx) runs on CPU 1
#             and fc's/fs's on CPU 0: "the forwarder box owns CPU 1" for kernel and proxies alike [0]
#   UDP_RATE  packets/s cap for udpblast (0 = unlimited)                      [0]
#   OUT       output directory                                                [bench/results/<timestamp>]
#   KEEP_NETNS=1  leave namespaces up at the end (otherwise removed if run.sh created them)
#   NO_DEPS=1     do not check/install Debian packages
#
# Every record carries foreign_cpu_pct: CPU used during the test by processes outside the
# benchmark (other work on a shared machine); "bench.py select" keeps only the quiet records.
set -uo pipefail

B=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$B/.." && pwd)
PY=/usr/bin/python3
BENCH="$PY $B/lib/bench.py"
BIN=$REPO/build/bench-tools

FULL=${FULL:-0}
# ferry: the repository's build by default; a relative path is taken from the current directory
FERRY_BIN=${FERRY_BIN-$REPO/build/ferry}
case $FERRY_BIN in ""|/*) ;; *) FERRY_BIN=$PWD/$FERRY_BIN ;; esac
export FERRY_BIN

if [ "$FULL" = 1 ]; then REPS=${REPS:-3} TCP_SECS=${TCP_SECS:-10}; else REPS=${REPS:-2} TCP_SECS=${TCP_SECS:-5}; fi
CRR_SECS=${CRR_SECS:-5}
CRR_CONC=${CRR_CONC:-50}
UDP_SECS=${UDP_SECS:-3}
LAT_SECS=${LAT_SECS:-3}
IDLE_CONNS=${IDLE_CONNS:-1000}
MODE=${MODE:-netns}
PIN=${PIN:-0}
UDP_RATE=${UDP_RATE:-0}
BASE=${BASE:-dnat}
SUBJECT=${SUBJECT:-ferry}
OUT=${OUT:-$B/results/$(date +%Y%m%d-%H%M%S)}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

# server ports (in fs); forwarders listen on server port + 10000 (in fw)
P_IPERF=5201 P_ECHO=7000 P_SINK=9000 P_SPU=11111 P_SPT=11112
PORT_SHIFT=10000

if [ "$MODE" = loopback ]; then
    NS_C=fl NS_W=fl NS_S=fl
    C_ADDR=127.0.0.1 W_CADDR=127.0.0.1 W_SADDR=127.0.0.1 S_ADDR=127.0.0.1
else
    NS_C=fc NS_W=fw NS_S=fs
    C_ADDR=10.201.1.1 W_CADDR=10.201.1.2 W_SADDR=10.201.2.1 S_ADDR=10.201.2.2
fi

if [ "$PIN" = 1 ]; then FW_TS="taskset -c 1"; GEN_TS="taskset -c 0"; else FW_TS=""; GEN_TS=""; fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }
nx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ------------------------------------------------------------------ forwarder registry
declare -A FWD_TPL FWD_KSETUP FWD_KDOWN FWD_STATSIG
FWD_ALL=()
_reg() { local n=$1; for x in "${FWD_ALL[@]}"; do [ "$x" = "$n" ] && return; done; FWD_ALL+=("$n"); }
fwd_proc()   { _reg "$1"; FWD_TPL["$1/$2"]=$3; }
fwd_kernel() { _reg "$1"; FWD_KSETUP[$1]=$2; FWD_KDOWN[$1]=$3; }
fwd_stats()  { FWD_STATSIG[$1]=$2; }   # NAME SIGNAL: ask for a stats line in its log before each stop

# kernel forwarders: SETUP PROTO LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT
# must set CLIENT_ADDR/CLIENT_PORT (where the client sends)
kf_route_up() {
    CLIENT_ADDR=$4 CLIENT_PORT=$5
    [ "$MODE" = loopback ] && return 0        # loopback: "route" = client talks to the server directly
    "$B/netns.sh" route on
}
kf_route_down() { [ "$MODE" = loopback ] || "$B/netns.sh" route off; }
kf_dnat_up() {
    local proto=$1 la=$2 lp=$3 ta=$4 tp=$5
    CLIENT_ADDR=$la CLIENT_PORT=$lp
    if [ "$MODE" = loopback ]; then
        nx "$NS_W" nft -f - <<EOF
table ip fwdbench {
  chain out {
    type nat hook output priority -100; policy accept;
    ip daddr $la $proto dport $lp dnat to $ta:$tp
  }
}
EOF
    else
        "$B/netns.sh" fwd on
        nx "$NS_W" nft -f - <<EOF
table ip fwdbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $la $proto dport $lp dnat to $ta:$tp
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr $ta $proto dport $tp masquerade
  }
}
EOF
    fi
}
kf_dnat_down() {
    nx "$NS_W" nft delete table ip fwdbench 2>/dev/null
    [ "$MODE" = loopback ] || "$B/netns.sh" fwd off
    return 0
}

# shellcheck source=forwarders.sh
source "$B/forwarders.sh"
if [ "$FULL" = 1 ]; then
    FWDS=${FWDS:-${FWD_ALL[*]}}
    TESTS=${TESTS:-"tcp1 tcp4 crr udp64x1 udp64x16 udp1400x1 udp1400x16 lat_udp lat_tcp idle iperfu64x1 iperfu64x16"}
else
    FWDS=${FWDS:-"dnat haproxy-splice nginx ferry"}
    # UDP tests only once ferry forwards UDP (forwarders.sh defines ferry/udp from its --help)
    if [ -n "${FWD_TPL[ferry/udp]:-}" ]; then
        TESTS=${TESTS:-"tcp1 tcp4 crr udp64x1 udp1400x16 lat_udp lat_tcp idle"}
    else
        TESTS=${TESTS:-"tcp1 tcp4 crr lat_tcp idle"}
    fi
fi

# ------------------------------------------------------------------ preflight
[ "$(id -u)" = 0 ] || { echo "bench/run.sh must run as root (network namespaces)" >&2; exit 1; }
if [ "${NO_DEPS:-0}" != 1 ]; then
    # shellcheck disable=SC2086
    "$B/deps.sh" $FWDS || exit 1
fi
# commands the harness itself calls (README "Requirements"); a missing forwarder binary is not
# fatal, its tests are recorded as start_failed. Unknown names in FWDS would silently run nothing.
missing=()
for c in ip ss nft ping pgrep setsid taskset timeout iperf3 sockperf make cc "$PY"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[ ${#missing[@]} = 0 ] || { echo "missing commands: ${missing[*]} (see README, Requirements)" >&2; exit 1; }
for f in $FWDS; do
    printf '%s\n' "${FWD_ALL[@]}" | grep -qx -- "$f" \
        || { if [[ $f == ferry* ]]; then echo "no ferry binary at '$FERRY_BIN': run make first, or set FERRY_BIN" >&2
             else echo "unknown forwarder '$f' (defined: ${FWD_ALL[*]})" >&2; fi; exit 1; }
done

# ------------------------------------------------------------------ process bookkeeping
STARTED=()   # pids (session leaders) we started, ended at exit
FPID=""      # current forwarder
KFWD=""      # current kernel forwarder (for teardown)

stop_pid() { # stop_pid PID: TERM the process group we created with setsid, then KILL
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
    for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; fi
    wait "$p" 2>/dev/null
    # children of the group that outlived the leader (e.g. forked socat children)
    if pgrep -g "$p" >/dev/null 2>&1; then kill -KILL -- "-$p" 2>/dev/null; sleep 0.2; fi
    return 0
}

cleanup() {
    trap - EXIT INT TERM
    [ -n "$FPID" ] && stop_pid "$FPID"
    [ -n "$KFWD" ] && ${FWD_KDOWN[$KFWD]}
    for p in "${STARTED[@]}"; do stop_pid "$p"; done
    [ -n "${TMP:-}" ] && rm -rf "$TMP"
    if [ "${CREATED_NETNS:-0}" = 1 ] && [ "${KEEP_NETNS:-0}" != 1 ]; then "$B/netns.sh" down; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bg_in() { # bg_in NS LOGFILE TASKSET cmd... ; sets BGPID (own session, so the group can be killed)
    local ns=$1 lf=$2 ts=$3; shift 3
    # shellcheck disable=SC2086
    setsid ip netns exec "$ns" $ts "$@" >"$lf" 2>&1 </dev/null &
    BGPID=$!
}

wait_listen() { # wait_listen NS tcp|udp PORT [PID]
    local ns=$1 proto=$2 port=$3 pid=${4:-} i flag=-Hltn
    [ "$proto" = udp ] && flag=-Hlun
    for i in $(seq 100); do
        if [ -n "$(nx "$ns" ss $flag "sport = :$port" 2>/dev/null)" ]; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.05
    done
    return 1
}

# ------------------------------------------------------------------ setup
mkdir -p "$OUT/logs"
TMP=$(mktemp -d -t fwdbench.XXXXXX)
ulimit -n "$(ulimit -Hn)" 2>/dev/null

make -s -C "$B/tools" BENCH_TOOLS_DIR="$BIN" || { echo "build of bench/tools failed" >&2; exit 1; }

CREATED_NETNS=0
if ! ip netns list | awk '{print $1}' | grep -qx "$NS_W"; then
    if [ "$MODE" = loopback ]; then "$B/netns.sh" up loopback; else "$B/netns.sh" up; fi
    CREATED_NETNS=1
fi
if [ "$MODE" != loopback ]; then
    "$B/netns.sh" route off
    if [ "$PIN" = 1 ]; then "$B/netns.sh" pin on; else "$B/netns.sh" pin off; fi
    "$B/netns.sh" check >"$OUT/logs/netns-check.txt" || { cat "$OUT/logs/netns-check.txt"; echo "topology check failed" >&2; exit 1; }
fi

# anchors: idle processes whose /proc/PID/net/snmp shows each namespace's UDP counters
bg_in "$NS_W" /dev/null "" sleep 1000000; ANCHOR_W=$BGPID; STARTED+=("$BGPID")
bg_in "$NS_S" /dev/null "" sleep 1000000; ANCHOR_S=$BGPID; STARTED+=("$BGPID")
bg_in "$NS_C" /dev/null "" sleep 1000000; ANCHOR_C=$BGPID; STARTED+=("$BGPID")

# long-running servers in fs (iperf3 is started per test, it is fragile after aborted tests)
bg_in "$NS_S" "$OUT/logs/echosrv.log" "$GEN_TS" "$BIN/echosrv" "$S_ADDR" $P_ECHO; STARTED+=("$BGPID")
bg_in "$NS_S" "$OUT/logs/sockperf-udp.log" "$GEN_TS" sockperf server -i "$S_ADDR" -p $P_SPU; STARTED+=("$BGPID")
bg_in "$NS_S" "$OUT/logs/sockperf-tcp.log" "$GEN_TS" sockperf server --tcp -i "$S_ADDR" -p $P_SPT; STARTED+=("$BGPID")
wait_listen "$NS_S" tcp $P_ECHO && wait_listen "$NS_S" udp $P_SPU && wait_listen "$NS_S" tcp $P_SPT \
    || { echo "servers did not start" >&2; exit 1; }

ver() { "$@" 2>&1 | head -1 | tr -d '"'; }
cat >"$OUT/meta.json" <<EOF
{"started": "$(date -Is)", "kernel": "$(uname -r)", "ncpu": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)",
 "mode": "$MODE", "reps": $REPS, "tcp_secs": $TCP_SECS, "crr_secs": $CRR_SECS, "crr_conc": $CRR_CONC,
 "udp_secs": $UDP_SECS, "lat_secs": $LAT_SECS, "idle_conns": $IDLE_CONNS, "udp_rate": $UDP_RATE,
 "pin": "$( [ "$PIN" = 1 ] && echo 'fw (process + RPS) on CPU1, fc+fs on CPU0' || echo none)",
 "baseline": "$BASE", "forwarders": "$FWDS", "tests": "$TESTS",
 "ferry": {"bin": "$FERRY_BIN", "version": "$( [ -x "$FERRY_BIN" ] && ver "$FERRY_BIN" --version)",
   "git": "$( if [ "$FERRY_BIN" -ef "$REPO/build/ferry" ]; then git -C "$REPO" describe --always --dirty 2>/dev/null; else echo "n/a: FERRY_BIN is not this repository's build/ferry"; fi)"},
 "versions": {"socat": "$(ver socat -V | sed -n 2p)", "haproxy": "$(ver haproxy -v)", "nginx": "$(nginx -v 2>&1 | tr -d '"')",
   "rinetd": "$(ver rinetd -v)", "redir": "$(ver redir -v)", "iperf3": "$(ver iperf3 --version)",
   "sockperf": "$(sockperf --version 2>&1 | grep -m1 version | xargs)", "nft": "$(ver nft --version)"}}
EOF
# socat -V prints the version on line 2
sed -i "s|\"socat\": \"[^\"]*\"|\"socat\": \"$(socat -V 2>&1 | sed -n 2p | tr -d '"')\"|" "$OUT/meta.json"

# ------------------------------------------------------------------ tests
test_proto() { case $1 in udp*|lat_udp|iperfu*) echo udp;; *) echo tcp;; esac; }
test_port() {
    case $1 in
        tcp1|tcp4|iperfu*) echo $P_IPERF;; crr|idle) echo $P_ECHO;; udp*) echo $P_SINK;;
        lat_udp) echo $P_SPU;; lat_tcp) echo $P_SPT;;
    esac
}

start_forwarder() { # NAME PROTO SPORT -> sets CLIENT_ADDR CLIENT_PORT, FPID or KFWD; returns 1 if unsupported, 2 if failed
    local name=$1 proto=$2 sport=$3 lport=$(($3 + PORT_SHIFT)) tpl cmd
    if [ -n "${FWD_KSETUP[$name]:-}" ]; then
        KFWD=$name   # set first: teardown runs even if setup fails half-way
        ${FWD_KSETUP[$name]} "$proto" "$W_CADDR" "$lport" "$S_ADDR" "$sport" >>"$FLOG" 2>&1 || return 2
        return 0
    fi
    tpl=${FWD_TPL["$name/$proto"]:-}
    [ -n "$tpl" ] || return 1
    cmd=${tpl//LISTEN_ADDR/$W_CADDR}; cmd=${cmd//LISTEN_PORT/$lport}
    cmd=${cmd//TARGET_ADDR/$S_ADDR}; cmd=${cmd//TARGET_PORT/$sport}
    export FWD_RUNDIR="$TMP/fwd-$name-$proto-$lport"
    rm -rf "$FWD_RUNDIR"
    echo "${cmd//"$B"/\$B}" >"$FLOG"   # the command, with the bench directory written as $B
    # shellcheck disable=SC2086
    setsid ip netns exec "$NS_W" $FW_TS bash -c "exec $cmd" >>"$FLOG" 2>&1 </dev/null &
    FPID=$!
    CLIENT_ADDR=$W_CADDR CLIENT_PORT=$lport
    wait_listen "$NS_W" "$proto" "$lport" "$FPID" || return 2
    sleep 0.2   # let multi-process forwarders finish spawning workers
    return 0
}

stop_forwarder() {
    if [ -n "$FPID" ]; then stop_pid "$FPID"; FPID=""; fi
    if [ -n "$KFWD" ]; then ${FWD_KDOWN[$KFWD]}; KFWD=""; fi
}

snap() { $BENCH snap "${FPID:-0}" "$ANCHOR_W" "$ANCHOR_S" "$ANCHOR_C" >"$1"; }

run_test() { # REP FWD TEST
    local rep=$1 f=$2 t=$3 proto port d=$TMP/cur rc
    proto=$(test_proto "$t"); port=$(test_port "$t")
    FLOG="$OUT/logs/r$rep-$f-$t.log"
    # iperfu* needs TCP (control) + UDP on one port: only meaningful through plain routing.
    # idle measures a process's memory: not for kernel forwarders.
    case $t in iperfu*) [ "$f" = route ] || return 0;; idle) [ -n "${FWD_KSETUP[$f]:-}" ] && return 0;; esac
    rm -rf "$d"; mkdir -p "$d"
    local tags=("rep=$rep" "fwd=$f" "test=$t" "proto=$proto")
    start_forwarder "$f" "$proto" "$port"; rc=$?
    if [ $rc = 1 ]; then rm -f "$FLOG"; return 0; fi     # no $proto support: skip
    log "rep $rep  $f  $t"
    if [ $rc = 2 ]; then
        log "   forwarder failed to start (see $FLOG)"
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" error=start_failed >/dev/null
        stop_forwarder; return 0
    fi
    local ca=$CLIENT_ADDR cp=$CLIENT_PORT
    case $t in
    tcp1|tcp4)
        local P=1; [ $t = tcp4 ] && P=4
        bg_in "$NS_S" "$d/iperf-srv.log" "$GEN_TS" iperf3 -s -1 -B "$S_ADDR" -p "$port"; local ip=$BGPID
        wait_listen "$NS_S" tcp "$port" "$ip"
        snap "$d/s0"
        nx "$NS_C" timeout $((TCP_SECS + 30)) $GEN_TS iperf3 -c "$ca" -p "$cp" -t "$TCP_SECS" -P $P -J >"$d/iperf.json" 2>"$d/iperf.err"
        snap "$d/s1"
        stop_pid "$ip"
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" streams=$P --snap0 "$d/s0" --snap1 "$d/s1" --iperf "$d/iperf.json"
        ;;
    iperfu*)
        local P=1; [ $t = iperfu64x16 ] && P=16
        bg_in "$NS_S" "$d/iperf-srv.log" "$GEN_TS" iperf3 -s -1 -B "$S_ADDR" -p "$port"; local ip=$BGPID
        wait_listen "$NS_S" tcp "$port" "$ip"
        snap "$d/s0"
        nx "$NS_C" timeout $((UDP_SECS + 30)) $GEN_TS iperf3 -c "$ca" -p "$cp" -u -b 0 -l 64 -t "$UDP_SECS" -P $P -J >"$d/iperf.json" 2>"$d/iperf.err"
        snap "$d/s1"
        stop_pid "$ip"
        $PY - "$d/iperf.json" "$d/tx" "$d/rx" "$UDP_SECS" <<'EOF'
import json, sys
try:
    e = json.load(open(sys.argv[1]))["end"]["sum"]
except Exception:
    sys.exit(0)   # no result: recorded as an error
pk, lost = e.get("packets", 0), e.get("lost_packets", 0)
secs = float(sys.argv[4])
open(sys.argv[2], "w").write(json.dumps({"sent": pk, "secs": secs, "errors": 0}) + "\n")
open(sys.argv[3], "w").write(json.dumps({"rx_packets": pk - lost, "rx_bytes": (pk - lost) * 64, "srcs": 0}) + "\n")
EOF
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" --snap0 "$d/s0" --snap1 "$d/s1" --udp-tx "$d/tx" --udp-rx "$d/rx"
        ;;
    crr)
        snap "$d/s0"
        nx "$NS_C" $GEN_TS "$BIN/tcpcrr" -a "$ca" -p "$cp" -c "$CRR_CONC" -t "$CRR_SECS" -w 0.5 >"$d/crr.json" 2>&1
        snap "$d/s1"
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" --snap0 "$d/s0" --snap1 "$d/s1" --crr "$d/crr.json"
        ;;
    udp*)
        local size flows; size=${t#udp}; size=${size%x*}; flows=${t#*x}
        bg_in "$NS_S" "$d/sink.log" "$GEN_TS" "$BIN/udpsink" -a "$S_ADDR" -p "$port" -o "$d/rx.json"; local sp=$BGPID
        wait_listen "$NS_S" udp "$port" "$sp"
        snap "$d/s0"
        nx "$NS_C" $GEN_TS "$BIN/udpblast" -a "$ca" -p "$cp" -s "$size" -f "$flows" -t "$UDP_SECS" -r "$UDP_RATE" >"$d/tx.json" 2>&1
        snap "$d/s1"
        sleep 0.3    # let queued datagrams drain into the sink
        kill -TERM "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" size=$size flows=$flows --snap0 "$d/s0" --snap1 "$d/s1" --udp-tx "$d/tx.json" --udp-rx "$d/rx.json"
        ;;
    lat_udp|lat_tcp)
        local tflag=""; [ $t = lat_tcp ] && tflag=--tcp
        snap "$d/s0"
        # shellcheck disable=SC2086
        nx "$NS_C" timeout $((LAT_SECS + 20)) $GEN_TS sockperf ping-pong $tflag -i "$ca" -p "$cp" -t "$LAT_SECS" -m 64 --full-rtt >"$d/sp.log" 2>&1
        snap "$d/s1"
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" --snap0 "$d/s0" --snap1 "$d/s1" --sockperf "$d/sp.log"
        ;;
    idle)
        $BENCH mem "$FPID" >"$d/m0"
        bg_in "$NS_C" "$d/idle.json" "$GEN_TS" "$BIN/tcpidle" -a "$ca" -p "$cp" -n "$IDLE_CONNS" -H 120 -r "$d/ready"; local ipid=$BGPID
        local i; for i in $(seq 1400); do [ -f "$d/ready" ] && break; kill -0 "$ipid" 2>/dev/null || break; sleep 0.05; done
        sleep 0.5
        if kill -0 "$FPID" 2>/dev/null; then $BENCH mem "$FPID" >"$d/m1"; else echo '{}' >"$d/m1"; echo "   forwarder died during idle test" >>"$FLOG"; fi
        stop_pid "$ipid"
        $BENCH record "$OUT/raw.jsonl" "${tags[@]}" --idle "$d/ready" --mem0 "$d/m0" --mem1 "$d/m1"
        ;;
    esac
    # forwarder must still be alive after the test (a crash is a result)
    if [ -n "$FPID" ] && ! kill -0 "$FPID" 2>/dev/null; then
        log "   NOTE: forwarder exited during $t (see $FLOG)"; echo "   forwarder exited during $t" >>"$FLOG"
    elif [ -n "$FPID" ] && [ -n "${FWD_STATSIG[$f]:-}" ]; then
        sleep 0.2; kill -s "${FWD_STATSIG[$f]}" "$FPID" 2>/dev/null; sleep 0.2
    fi
    stop_forwarder
    if [ -f "$FLOG" ] && [ "$(wc -l <"$FLOG")" -le 1 ]; then rm -f "$FLOG"; fi
    return 0
}

T0=$(date +%s)
read -r -a FW_LIST <<<"$FWDS"
log "out: $OUT   forwarders: ${FW_LIST[*]}   reps: $REPS   mode: $MODE   pin: $PIN"
for rep in $(seq "$REPS"); do
    order=("${FW_LIST[@]}")
    if [ $((rep % 2)) = 0 ]; then # alternate the order between repetitions (drift / position bias)
        order=(); for ((i = ${#FW_LIST[@]} - 1; i >= 0; i--)); do order+=("${FW_LIST[$i]}"); done
    fi
    for f in "${order[@]}"; do
        for t in $TESTS; do run_test "$rep" "$f" "$t"; done
    done
done
log "measurements done in $(( $(date +%s) - T0 )) s"
$BENCH report "$OUT/raw.jsonl" "$OUT" >/dev/null && log "report: $OUT/results.md"
# results/latest -> this run, only when OUT is directly under results/ (else the link would dangle)
if [ "$(dirname "$OUT")" -ef "$B/results" ]; then ln -sfn "$(basename "$OUT")" "$B/results/latest"; fi
rm -rf "$TMP"
echo
$PY "$B/lib/compact.py" "$OUT" "$BASE" "$SUBJECT" | tee "$OUT/compact.md"
# the forwarder's own complaints: warnings/errors it logged, failed connections and drops in its stats
$BENCH logscan "$OUT/logs" "$SUBJECT"
exit 0
