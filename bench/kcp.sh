#!/usr/bin/env bash
# TCP over KCP side by side (`make bench-kcp`; also the last part of `make bench`).
#
# Four namespaces made here; every subject, plain TCP included, takes the same path:
#
#   K_C  c0 10.202.1.1 -- r0 .1.2  K_R  r1 .2.1 -- l0 .2.2  K_L  l1 .3.1 -- s0 10.202.3.2  K_S
#   client: iperf3 -c, echo       impair: delay, loss        tbf: rate       server: iperf3 -s,
#   client, the tunnel client                                limit           echosrv, the tunnel
#                                                                            server
# K_R drops the kernel's forwarded copy of every packet (nft forward, policy drop); two
# `build/tools/impair ip` processes (one per direction) capture the packets instead and re-send
# them after RTT_MS/2 ms, dropping LOSS % (seeded: the n-th packet of a direction meets the same
# fate for every subject). K_L is a plain router whose two ways out are limited by tbf to RATE with
# a QUEUE_MS-deep queue (tail drop). The rate limit is not in K_R: impair re-sends with a blocking
# raw socket, so a full tbf there would stall impair instead of dropping. All veths have
# gso_max_segs 1 (impair cannot re-send GSO super-packets).
#
# Subjects (SUBJECTS):
#   tcp          plain TCP from K_C to K_S, no tunnel; TCP_CC per socket (iperf3 -C): a namespace
#                cannot default to an algorithm outside the host's tcp_allowed_congestion_control
#                (the echo test's connection keeps the namespace default, the host's)
#   tcp-bbr      the same with BBR
#   ferry        ferry secure mode (--psk-file; defaults: fast3, windows 1024/1024, mtu 1350)
#   ferry-plain  ferry plain KCP (--insecure), otherwise the same
#   kcptun       Debian kcptun, minimal profile: --key test --crypt none --nocomp --datashard 0
#                --parityshard 0 --mode fast3 --sndwnd 1024 --rcvwnd 1024 (smux v1)
#   ferry-ktmin  ferry --kcp-profile kcptun with those flags (kcptun's wire format)
#   fsrv-kcli    ferry server (sends the download) + kcptun-client, those flags
#   ksrv-fcli    kcptun-server (sends the download) + ferry client, those flags
#   kcptun-aes   kcptun's default profile (--key test: aes, FEC 10/3, snappy, mode fast, windows
#                128/512 client, 1024/1024 server)
#   ferry-ktaes  ferry --kcp-profile kcptun --key test (the same defaults)
# Tunnels: server in K_S (kcp://10.202.3.2:4000 -> tcp://10.202.3.2:PORT), client in K_C
# (tcp://127.0.0.1:2000 -> kcp://10.202.3.2:4000), ferry with --workers 1.
#
# Per subject and loss, in this order: a SECS-second bulk download (iperf3 -R: the server end
# sends, so the tunnel server is the KCP data sender) -> goodput as received, CPU seconds of the
# two tunnel processes (utime+stime of /proc/PID/stat, all threads) per MB received, and the
# sender's own count of resent segments (ferry's stats line and kcptun's SNMP line, both printed
# on SIGUSR1; iperf3's retransmits for TCP); then a fresh tunnel and 64-byte TCP echoes every
# 10 ms for LAT_SECS s through it (bench/tools/echosrv) -> p50/p99 round trip. Prints one
# markdown table with ratios taken within the run: goodput / tcp and / kcptun, CPU per MB /
# kcptun (ferry-ktaes is compared with kcptun-aes).
#
# Knobs: LOSSES ["0 1 5 20"] (% each way)  RTT_MS [50]  RATE [50mbit; 0 = no rate limit]
#        QUEUE_MS [20]  SECS [10]  LAT_SECS [5]  SEED [6]  TCP_CC [cubic]
#        SUBJECTS ["tcp ferry ferry-plain kcptun ferry-ktaes kcptun-aes"]
#        FERRY_ARGS, KCPTUN_ARGS [""]: more options for both ends (e.g. FERRY_ARGS="--streambuf 4194304")
#        FERRY_BIN [<repo>/build/ferry; copied to OUT first]  IMPAIR [<repo>/build/tools/impair]
#        OUT [bench/results/kcp-<timestamp>]
# The default run (4 losses x 6 subjects) takes about 7 minutes. Run as root.
set -uo pipefail

B=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$B/.." && pwd)
FERRY_BIN=${FERRY_BIN:-$REPO/build/ferry}
IMPAIR=${IMPAIR:-$REPO/build/tools/impair}
TOOLS=$REPO/build/bench-tools
LOSSES=${LOSSES:-"0 1 5 20"}
RTT_MS=${RTT_MS:-50}
RATE=${RATE:-50mbit}
QUEUE_MS=${QUEUE_MS:-20}
SECS=${SECS:-10}
LAT_SECS=${LAT_SECS:-5}
SEED=${SEED:-6}
TCP_CC=${TCP_CC:-cubic}
FERRY_ARGS=${FERRY_ARGS:-}
KCPTUN_ARGS=${KCPTUN_ARGS:-}
SUBJECTS=${SUBJECTS:-"tcp ferry ferry-plain kcptun ferry-ktaes kcptun-aes"}
OUT=${OUT:-$B/results/kcp-$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3

K_C=kb$$c K_R=kb$$r K_L=kb$$l K_S=kb$$s
C_ADDR=10.202.1.1 S_ADDR=10.202.3.2
P_TUN=2000 P_KCP=4000 P_IPERF=5201 P_ECHO=7007
MINIMAL=(--key test --crypt none --nocomp --datashard 0 --parityshard 0 --mode fast3 --sndwnd 1024 --rcvwnd 1024)
nx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
PIDS=()
cleanup() {
    local ns
    [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
    for ns in "$K_C" "$K_R" "$K_L" "$K_S"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            nx "$ns" nft delete table inet kcpbench 2>/dev/null
            ip netns del "$ns"
        fi
    done
    true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in iperf3 nft tc ss; do
    command -v $t >/dev/null || { echo "missing: $t (make deps-bench; apt-get install iproute2 nftables)" >&2; exit 1; }
done
if ! command -v kcptun-client >/dev/null; then
    apt-get install -y -q kcptun >/dev/null 2>&1
    if ! command -v kcptun-client >/dev/null; then
        echo "kcptun not installed: its subjects are left out" >&2
        SUBJECTS=$(tr ' ' '\n' <<<"$SUBJECTS" | grep -Ev 'kcptun|kcli|ksrv' | tr '\n' ' ')
    fi
fi
[ -x "$FERRY_BIN" ] || { echo "no ferry at $FERRY_BIN (run make)" >&2; exit 1; }
[ -x "$IMPAIR" ] || { echo "no impair at $IMPAIR (run make build/tools/impair)" >&2; exit 1; }
mkdir -p "$OUT"
make -s -C "$B/tools" BENCH_TOOLS_DIR="$TOOLS" || { echo "build of bench/tools failed" >&2; exit 1; }
# measure one fixed binary even if build/ferry is rebuilt meanwhile
cp "$FERRY_BIN" "$OUT/ferry" || exit 1
FERRY=$OUT/ferry
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$OUT/psk" && echo >>"$OUT/psk") || exit 1

# 64-byte echo every 10 ms over one TCP connection; the reply's delay, as seen by the sender
cat >"$OUT/echolat.py" <<'EOF'
import json, socket, struct, sys, threading, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=20)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.settimeout(None)
def recv64():
    b = b""
    while len(b) < 64:
        c = s.recv(64 - len(b))
        if not c:
            raise EOFError
        b += c
    return b
# one message first: the tunnel's handshake and the connection set-up are not counted
s.sendall(struct.pack("!Id", 0, time.monotonic()).ljust(64, b"x"))
recv64()
rtt, sent = [], [0]
def reader():
    try:
        while True:
            seq, t = struct.unpack("!Id", recv64()[:12])
            rtt.append((time.monotonic() - t) * 1000)
    except Exception:
        pass
th = threading.Thread(target=reader, daemon=True)
th.start()
t0 = time.monotonic()
while time.monotonic() - t0 < secs:
    sent[0] += 1
    s.sendall(struct.pack("!Id", sent[0], time.monotonic()).ljust(64, b"x"))
    time.sleep(max(0.0, t0 + sent[0] * 0.01 - time.monotonic()))
end = time.monotonic() + 10
while len(rtt) < sent[0] and time.monotonic() < end:
    time.sleep(0.01)
r = sorted(rtt)
pct = lambda q: r[min(len(r) - 1, int(q * len(r)))] if r else float("nan")
print(json.dumps({"sent": sent[0], "received": len(r), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                  "max_ms": r[-1] if r else float("nan")}))
EOF

# ---------------------------------------------------------------- topology
net_up() {
    local ns
    for ns in "$K_C" "$K_R" "$K_L" "$K_S"; do
        ip netns add "$ns" || return 1
        nx "$ns" ip link set lo up
        nx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    done
    ip link add name c0 netns "$K_C" type veth peer name r0 netns "$K_R" || return 1
    ip link add name r1 netns "$K_R" type veth peer name l0 netns "$K_L" || return 1
    ip link add name l1 netns "$K_L" type veth peer name s0 netns "$K_S" || return 1
    nx "$K_C" ip addr add $C_ADDR/24 dev c0
    nx "$K_R" ip addr add 10.202.1.2/24 dev r0
    nx "$K_R" ip addr add 10.202.2.1/24 dev r1
    nx "$K_L" ip addr add 10.202.2.2/24 dev l0
    nx "$K_L" ip addr add 10.202.3.1/24 dev l1
    nx "$K_S" ip addr add $S_ADDR/24 dev s0
    # one MTU per packet (impair cannot re-send a GSO super-packet)
    local ns_dev dev i
    for ns_dev in "$K_C:c0" "$K_R:r0" "$K_R:r1" "$K_L:l0" "$K_L:l1" "$K_S:s0"; do
        ns=${ns_dev%:*} dev=${ns_dev#*:}
        nx "$ns" ip link set dev "$dev" gso_max_segs 1 || return 1
        nx "$ns" ip link set dev "$dev" up || return 1
    done
    nx "$K_C" ip route add default via 10.202.1.2
    nx "$K_R" ip route add 10.202.3.0/24 via 10.202.2.2
    nx "$K_L" ip route add 10.202.1.0/24 via 10.202.2.1
    nx "$K_S" ip route add default via 10.202.3.1
    # K_R: forwarding on (so the kernel does not answer with ICMP unreachable), but every
    # forwarded packet is dropped: only impair's re-sent copy crosses
    nx "$K_R" sysctl -qw net.ipv4.ip_forward=1
    nx "$K_R" nft -f - <<EOF || return 1
table inet kcpbench {
  chain forward { type filter hook forward priority 0; policy drop; }
}
EOF
    # K_L: a plain router with a rate limit on both ways out (drops when its queue is full)
    nx "$K_L" sysctl -qw net.ipv4.ip_forward=1
    if [ "$RATE" != 0 ]; then
        nx "$K_L" tc qdisc add dev l0 root tbf rate "$RATE" burst 64kb latency "${QUEUE_MS}ms" || return 1
        nx "$K_L" tc qdisc add dev l1 root tbf rate "$RATE" burst 64kb latency "${QUEUE_MS}ms" || return 1
    fi
    for ns_dev in "$K_C:c0" "$K_R:r0" "$K_R:r1" "$K_L:l0" "$K_L:l1" "$K_S:s0"; do
        ns=${ns_dev%:*} dev=${ns_dev#*:}
        for i in $(seq 50); do
            [ "$(nx "$ns" cat "/sys/class/net/$dev/operstate")" = up ] && break
            sleep 0.1
        done
    done
    true
}

bg() { # bg NS LOG CMD...: start in the background, remember the pid in BGPID
    local ns=$1 log=$2; shift 2
    setsid ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
    BGPID=$!
    PIDS+=("$BGPID")
}
forget() { # forget PID...: no longer ours to kill at exit (a finished pid may be reused)
    local p q keep=()
    for q in "${PIDS[@]}"; do
        for p in "$@"; do [ "$p" = "$q" ] && continue 2; done
        keep+=("$q")
    done
    PIDS=("${keep[@]}")
}
run_wait() { # run_wait NS CMD...: run in the background and wait, so that a signal ends the script at once
    local ns=$1 p rc
    shift
    ip netns exec "$ns" "$@" &
    p=$!
    PIDS+=("$p")
    wait "$p"
    rc=$?
    forget "$p"
    return $rc
}
stop() { # kill and wait until gone (bounded: 5 s each); the pids lead their process groups
    local p i
    for p in "$@"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null; done
    for p in "$@"; do
        for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 -- -"$p" 2>/dev/null || kill -9 "$p" 2>/dev/null
    done
    wait "$@" 2>/dev/null
    forget "$@"
}
wait_listen() { # wait_listen NS t|u PORT PID: until something listens there (bounded: 5 s)
    local i
    for i in $(seq 100); do
        nx "$1" ss -Hln"$2" "sport = :$3" | grep -q . && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
wait_ready() { # wait_ready LOG PID: until impair says ready (bounded: 5 s)
    local i
    for i in $(seq 100); do
        grep -q 'impair: ready' "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
tbf_drops() { # packets tbf dropped so far in the router, both directions
    [ "$RATE" = 0 ] && { echo 0; return; }
    nx "$K_L" tc -s qdisc show | awk '/dropped/ { for (i = 1; i < NF; i++) if ($i ~ /^\(?dropped$/) { sub(",", "", $(i + 1)); n += $(i + 1) } } END { print n + 0 }'
}
cpu_ticks() { # utime+stime of the given pids (the whole thread group), in clock ticks
    local p sum=0 t
    for p in "$@"; do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || t=0
        sum=$((sum + ${t:-0}))
    done
    echo $sum
}

# start_impair LOSS TAG: both directions, same seeds for every subject
start_impair() {
    local loss=$1 tag=$2 d
    d=$($PY -c "print($RTT_MS / 2)")
    IMP=()
    bg "$K_R" "$OUT/impair-$tag-r0.log" "$IMPAIR" ip --in r0 --out r1 --delay "$d" --loss "$loss" --seed "$SEED"
    IMP+=("$BGPID")
    wait_ready "$OUT/impair-$tag-r0.log" "$BGPID" || return 1
    bg "$K_R" "$OUT/impair-$tag-r1.log" "$IMPAIR" ip --in r1 --out r0 --delay "$d" --loss "$loss" --seed $((SEED + 1))
    IMP+=("$BGPID")
    wait_ready "$OUT/impair-$tag-r1.log" "$BGPID"
}

# start_tunnel SUBJECT TARGET_PORT TAG: TUN = the tunnel's pids (server, client), HOST:PORT to use
start_tunnel() {
    local s=$1 port=$2 tag=$3 sk=ferry ck=ferry sargs=() cargs=() srv cli
    TUN=()
    case $s in
    tcp|tcp-bbr) HOST=$S_ADDR PORT=$port; return 0 ;;
    ferry) sargs=(--psk-file "$OUT/psk"); cargs=("${sargs[@]}") ;;
    ferry-plain) sargs=(--insecure); cargs=(--insecure) ;;
    ferry-ktmin) sargs=(--kcp-profile kcptun "${MINIMAL[@]}"); cargs=("${sargs[@]}") ;;
    ferry-ktaes) sargs=(--kcp-profile kcptun --key test); cargs=("${sargs[@]}") ;;
    kcptun) sk=kcptun ck=kcptun sargs=("${MINIMAL[@]}") cargs=("${MINIMAL[@]}") ;;
    kcptun-aes) sk=kcptun ck=kcptun sargs=(--key test) cargs=(--key test) ;;
    fsrv-kcli) ck=kcptun sargs=(--kcp-profile kcptun "${MINIMAL[@]}") cargs=("${MINIMAL[@]}") ;;
    ksrv-fcli) sk=kcptun sargs=("${MINIMAL[@]}") cargs=(--kcp-profile kcptun "${MINIMAL[@]}") ;;
    *) echo "unknown subject $s" >&2; return 1 ;;
    esac
    if [ $sk = kcptun ]; then
        bg "$K_S" "$OUT/$tag-server.log" kcptun-server -l $S_ADDR:$P_KCP -t $S_ADDR:"$port" --quiet "${sargs[@]}" $KCPTUN_ARGS
    else
        bg "$K_S" "$OUT/$tag-server.log" "$FERRY" --workers 1 "${sargs[@]}" $FERRY_ARGS kcp://$S_ADDR:$P_KCP tcp://$S_ADDR:"$port"
    fi
    srv=$BGPID
    TUN=("$srv")
    wait_listen "$K_S" u $P_KCP "$srv" || { echo "$s: server did not start: $(tail -n 2 "$OUT/$tag-server.log")" >&2; return 1; }
    if [ $ck = kcptun ]; then
        bg "$K_C" "$OUT/$tag-client.log" kcptun-client -l 127.0.0.1:$P_TUN -r $S_ADDR:$P_KCP --quiet "${cargs[@]}" $KCPTUN_ARGS
    else
        bg "$K_C" "$OUT/$tag-client.log" "$FERRY" --workers 1 "${cargs[@]}" $FERRY_ARGS tcp://127.0.0.1:$P_TUN kcp://$S_ADDR:$P_KCP
    fi
    cli=$BGPID
    TUN=("$srv" "$cli")
    wait_listen "$K_C" t $P_TUN "$cli" || { echo "$s: client did not start: $(tail -n 2 "$OUT/$tag-client.log")" >&2; return 1; }
    HOST=127.0.0.1 PORT=$P_TUN
}

# one subject at one loss: appends a line to $RES
run_one() {
    local s=$1 loss=$2 tag="$1-loss$2" t0 t1 q0 q1 cc alive=yes
    start_impair "$loss" "$tag" || { echo "impair did not start" >&2; return 1; }
    # a namespace may only default to an allowed algorithm (tcp_allowed_congestion_control of
    # the host), so plain TCP's algorithm is set per socket (iperf3 -C, on both ends)
    cc=$TCP_CC; [ "$s" = tcp-bbr ] && cc=bbr
    # bulk download
    if start_tunnel "$s" $P_IPERF "$tag-bulk"; then
        q0=$(tbf_drops)
        t0=$(cpu_ticks "${TUN[@]}")
        run_wait "$K_C" timeout $((SECS + 40)) iperf3 -c "$HOST" -p "$PORT" -R -t "$SECS" -J --connect-timeout 10000 -C $cc \
            >"$OUT/$tag-iperf.json" 2>"$OUT/$tag-iperf.err"
        t1=$(cpu_ticks "${TUN[@]}")
        q1=$(tbf_drops)
        for p in "${TUN[@]}"; do kill -0 "$p" 2>/dev/null || alive=no; done
        # ferry (a JSON stats line) and kcptun ("KCP SNMP:") print their counters on SIGUSR1
        [ ${#TUN[@]} -gt 0 ] && { kill -USR1 "${TUN[@]}" 2>/dev/null; sleep 0.3; }
        [ ${#TUN[@]} -gt 0 ] && stop "${TUN[@]}"
    else
        t0=0 t1=0 q0=0 q1=0 alive=no
        [ ${#TUN[@]} -gt 0 ] && stop "${TUN[@]}"
    fi
    # echo latency, a fresh tunnel to the echo server
    if start_tunnel "$s" $P_ECHO "$tag-lat"; then
        run_wait "$K_C" timeout $((LAT_SECS + 40)) $PY "$OUT/echolat.py" "$HOST" "$PORT" "$LAT_SECS" >"$OUT/$tag-lat.json" \
            2>"$OUT/$tag-lat.err"
        for p in "${TUN[@]}"; do kill -0 "$p" 2>/dev/null || alive=no; done
    else
        alive=no
    fi
    [ ${#TUN[@]} -gt 0 ] && stop "${TUN[@]}"
    stop "${IMP[@]}"
    $PY - "$s" "$loss" "$OUT/$tag" $((t1 - t0)) "$(getconf CLK_TCK)" "$alive" $((q1 - q0)) >>"$RES" <<'EOF'
import json, re, sys
s, loss, base, ticks, hz, alive, qdrop = sys.argv[1:8]
def load(f):
    try:
        return json.load(open(f))
    except Exception:
        return {}
def text(f):
    try:
        return open(f, errors="replace").read()
    except OSError:
        return ""
j, lat = load(base + "-iperf.json"), load(base + "-lat.json")
rx = j.get("end", {}).get("sum_received", {})
tx = j.get("end", {}).get("sum_sent", {})
mb = rx.get("bytes", 0) / 1e6
tunnel = not s.startswith("tcp")
rec = {"subject": s, "loss": float(loss), "mbit": rx.get("bits_per_second", 0) / 1e6, "mb": mb,
       "cpu_s": int(ticks) / int(hz), "alive": alive == "yes", "rate_drops": int(qdrop),
       "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"), "echo_lost": None,
       "error": j.get("error", "") or text(base + "-iperf.err").strip()[:200]}
if lat:
    rec["echo_lost"] = lat["sent"] - lat["received"]
rec["cpu_s_per_mb"] = rec["cpu_s"] / mb if mb and tunnel else None
# the data sender's own count of resent segments: iperf3's TCP retransmits (approximate: per
# 1448-byte segment), ferry's stats line, kcptun's "KCP SNMP" line (both printed on SIGUSR1)
srv = text(base + "-bulk-server.log")
if not tunnel and tx.get("bytes"):
    rec["resent_pct"] = 100.0 * tx.get("retransmits", 0) / (tx["bytes"] / 1448)
else:
    m = re.search(r'"retrans":(\d+),.*?"out_segs":(\d+)', srv)
    k = re.search(r"OutSegs:(\d+).*?RetransSegs:(\d+)", srv)
    if m and int(m.group(2)):
        rec["resent_pct"] = 100.0 * int(m.group(1)) / int(m.group(2))
    elif k and int(k.group(1)):
        rec["resent_pct"] = 100.0 * int(k.group(2)) / int(k.group(1))
for d in ("r0", "r1"):
    m = re.search(r"in=(\d+) out=\d+ dropped=(\d+).*overflow=(\d+)", text("%s/impair-%s-%s.log" %
                  (base.rsplit("/", 1)[0], base.rsplit("/", 1)[1], d)))
    if m:
        rec["impair_in"] = rec.get("impair_in", 0) + int(m.group(1))
        rec["impair_dropped"] = rec.get("impair_dropped", 0) + int(m.group(2))
        rec["impair_overflow"] = rec.get("impair_overflow", 0) + int(m.group(3))
print(json.dumps(rec))
EOF
    $PY -c 'import json, sys; r = json.loads(sys.stdin.readlines()[-1]); print("  %-12s loss %4g %%: %7.2f Mbit/s, echo p99 %s ms, cpu/MB %s" % (r["subject"], r["loss"], r["mbit"], r["p99_ms"] and round(r["p99_ms"], 1), r["cpu_s_per_mb"] and round(r["cpu_s_per_mb"], 4)))' <"$RES" >&2
}

echo "bench/kcp.sh: losses [$LOSSES] %, RTT $RTT_MS ms, rate $RATE (queue $QUEUE_MS ms), ${SECS}s bulk, ${LAT_SECS}s echo; subjects: $SUBJECTS" >&2
echo "  output in $OUT" >&2
net_up || { echo "could not build the namespaces" >&2; exit 1; }
bg "$K_S" "$OUT/iperf3-server.log" iperf3 -s -B $S_ADDR -p $P_IPERF
wait_listen "$K_S" t $P_IPERF "$BGPID" || { echo "iperf3 server did not start" >&2; exit 1; }
bg "$K_S" "$OUT/echosrv.log" "$TOOLS/echosrv" $S_ADDR $P_ECHO
wait_listen "$K_S" t $P_ECHO "$BGPID" || { echo "echo server did not start" >&2; exit 1; }

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "ferry: $FERRY_BIN, sha256 $(sha256sum "$FERRY" | cut -c1-12), $("$FERRY" --version 2>&1 | head -n1); repository HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
    echo "kcptun: $(dpkg-query -W -f '${Version}' kcptun 2>/dev/null)"
    echo "kernel: $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings: LOSSES='$LOSSES' RTT_MS=$RTT_MS RATE=$RATE QUEUE_MS=$QUEUE_MS SECS=$SECS LAT_SECS=$LAT_SECS SEED=$SEED TCP_CC=$TCP_CC"
    echo "          SUBJECTS='$SUBJECTS' FERRY_ARGS='$FERRY_ARGS' KCPTUN_ARGS='$KCPTUN_ARGS'"
} >"$OUT/meta.txt"

RES=$OUT/results.jsonl
: >"$RES"
for loss in $LOSSES; do
    for s in $SUBJECTS; do
        run_one "$s" "$loss"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.txt"

$PY - "$RES" <<'EOF' | tee "$OUT/results.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["subject"], r["loss"]): r for r in rows}
def ratio(a, b):
    return "×%.2f" % (a / b) if a is not None and b else ""
def num(x, fmt):
    return fmt % x if x is not None else ""
print("| loss each way | subject | goodput Mbit/s | ÷ tcp | ÷ kcptun | tunnel CPU s/MB | CPU ÷ kcptun "
      "| echo p50 ms | echo p99 ms | sender resent % | rate-limit drops | notes |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    s, loss = r["subject"], r["loss"]
    tcp = by.get(("tcp", loss))
    peer = "kcptun-aes" if s in ("ferry-ktaes", "kcptun-aes") else "kcptun"
    kt = by.get((peer, loss)) if s != peer else None
    notes = []
    if not r["alive"] and not s.startswith("tcp"):
        notes.append("**a tunnel process died**")
    if r.get("error"):
        notes.append("iperf3: " + r["error"])
    if r.get("echo_lost"):
        notes.append("%d echoes not back" % r["echo_lost"])
    if r.get("impair_overflow"):
        notes.append("impair overflow %d" % r["impair_overflow"])
    if kt and s != "tcp" and peer == "kcptun-aes":
        notes.append("vs kcptun-aes")
    print("| %g %% | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %d | %s |" % (
        loss, s, r["mbit"],
        ratio(r["mbit"], tcp["mbit"]) if tcp and s != "tcp" else "",
        ratio(r["mbit"], kt["mbit"]) if kt else "",
        num(r["cpu_s_per_mb"], "%.4f"),
        ratio(r["cpu_s_per_mb"], kt["cpu_s_per_mb"]) if kt else "",
        num(r["p50_ms"], "%.1f"), num(r["p99_ms"], "%.1f"), num(r.get("resent_pct"), "%.1f"),
        r["rate_drops"], "; ".join(notes)))
EOF
echo "results: $OUT" >&2
