#!/usr/bin/env bash
# Single-client forwarding and the UDP-over-ICMP tunnel, side by side (`make bench-pkthere`).
#
# One UDP client (one source port: pkthere's mode locks to one client) sends from fc through fw
# to fs (bench/netns.sh topology). Compared in the same run:
#   dnat        the kernel: nftables DNAT in fw
#   ferry-udp   ferry's general UDP relay in fw       (ferry udp://... udp://...)
#   pk-udp      ferry's single-client mode in fw      (ferry --here UDP:... --there UDP:...)
#   pk-icmp     the tunnel: ferry A in fw (--here UDP --there ICMP:fs), ferry B in fs
#               (--here ICMP --there UDP:fs) — every datagram crosses fw->fs as an ICMP echo
#   udp-chain   same-topology reference for pk-icmp (not in the default list): two general UDP
#               relays, one in fw (udp://fw -> udp://fs:P_MID) and one in fs (udp://fs:P_MID ->
#               the sink) — two ferry processes and the same fw->fs hop, carried as plain UDP
# For each, packets/s delivered to a sink in fs (udpblast, UDP_SECS seconds, unlimited rate) at
# 64 and 1200 bytes, and the round-trip latency (sockperf ping-pong, p50/p99) at the same sizes.
# Prints one markdown table; ratios are against ferry-udp (the issue's goal: pk-icmp >= 0.7), and
# against udp-chain when that ran. With REPS > 1 every variant runs REPS times (the order of the
# variants reversed every other repetition) and the table shows medians.
# PIN=1 puts the client (udpblast, sockperf) on CPU 0 and every forwarder process, the sink and
# the sockperf server on CPU 1: the forwarding side's capacity on one core, with much less
# run-to-run spread than the default (where the unlimited client competes with the forwarders
# for both cores). Under PIN=1 dnat is not comparable: the kernel forwards in the client's
# softirq, on CPU 0.
#
# Knobs: UDP_SECS [3]  LAT_SECS [3]  SIZES ["64 1200"]  VARIANTS ["dnat ferry-udp pk-udp pk-icmp"]
#        REPS [1]  PIN [0]  FERRY_BIN [<repo>/build/ferry]  OUT [bench/results/pkthere-<timestamp>]
set -uo pipefail

B=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$B/.." && pwd)
BIN=$REPO/build/bench-tools
FERRY_BIN=${FERRY_BIN:-$REPO/build/ferry}
UDP_SECS=${UDP_SECS:-3}
LAT_SECS=${LAT_SECS:-3}
SIZES=${SIZES:-"64 1200"}
VARIANTS=${VARIANTS:-"dnat ferry-udp pk-udp pk-icmp"}
REPS=${REPS:-1}
PIN=${PIN:-0}
OUT=${OUT:-$B/results/pkthere-$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3

W_CADDR=10.201.1.2 S_ADDR=10.201.2.2
# P_MID: udp-chain's second relay listens there in fs (a reserved port: bench/netns.sh)
P_LISTEN=7000 P_SINK=9000 P_SPU=11111 P_MID=7000
nx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

PIDS=()
CREATED=0
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    nx fw nft delete table ip pkbench 2>/dev/null
    [ "$CREATED" = 1 ] && "$B/netns.sh" down >/dev/null 2>&1
    true
}
trap cleanup EXIT INT TERM

mkdir -p "$OUT"
make -s -C "$B/tools" BENCH_TOOLS_DIR="$BIN" || { echo "build of bench/tools failed" >&2; exit 1; }
[ -x "$FERRY_BIN" ] || { echo "no ferry at $FERRY_BIN (run make)" >&2; exit 1; }
command -v sockperf >/dev/null || apt-get install -y -q sockperf >/dev/null
if ! ip netns list | awk '{print $1}' | grep -qx fw; then "$B/netns.sh" up; CREATED=1; fi
"$B/netns.sh" route off
for ns in fw fs; do nx $ns sysctl -qw net.ipv4.icmp_echo_ignore_all=1; done

# forwarders and servers on CPU 1, the client on CPU 0 (PIN=1); nothing pinned otherwise
SIDE=() CLIENT=()
[ "$PIN" = 1 ] && SIDE=(taskset -c 1) CLIENT=(taskset -c 0)
bg() { # bg NS LOG CMD...: start in the background, remember the pid
    local ns=$1 log=$2; shift 2
    setsid ip netns exec "$ns" "${SIDE[@]}" "$@" >"$log" 2>&1 </dev/null &
    PIDS+=($!)
    BGPID=$!
}
stop() { # kill and wait until gone (bounded: 5 s)
    local p i
    kill "$@" 2>/dev/null
    for p in "$@"; do
        for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    done
    wait "$@" 2>/dev/null
}

# start_variant V PORT: brings up the forwarding path; FPIDS = the processes to stop afterwards
start_variant() {
    local v=$1 sink_port=$2 pids=()
    case $v in
    dnat)
        "$B/netns.sh" fwd on
        nx fw nft -f - <<EOF
table ip pkbench {
  chain pre { type nat hook prerouting priority dstnat; policy accept; ip daddr $W_CADDR udp dport $P_LISTEN dnat to $S_ADDR:$sink_port; }
  chain post { type nat hook postrouting priority srcnat; policy accept; ip daddr $S_ADDR udp dport $sink_port masquerade; }
}
EOF
        ;;
    ferry-udp)
        bg fw "$OUT/$v.log" "$FERRY_BIN" udp://$W_CADDR:$P_LISTEN udp://$S_ADDR:$sink_port; pids+=($BGPID) ;;
    pk-udp)
        bg fw "$OUT/$v.log" "$FERRY_BIN" --here UDP:$W_CADDR:$P_LISTEN --there UDP:$S_ADDR:$sink_port \
            --user nobody --stats-interval-mins 0 --max-payload 1500; pids+=($BGPID) ;;
    pk-icmp)
        bg fs "$OUT/$v-b.log" "$FERRY_BIN" --here ICMP:$S_ADDR:0 --there UDP:$S_ADDR:$sink_port \
            --user nobody --stats-interval-mins 0 --timeout-secs 60; pids+=($BGPID)
        bg fw "$OUT/$v-a.log" "$FERRY_BIN" --here UDP:$W_CADDR:$P_LISTEN --there ICMP:$S_ADDR:0 \
            --user nobody --stats-interval-mins 0 --timeout-secs 60; pids+=($BGPID) ;;
    udp-chain)
        bg fs "$OUT/$v-b.log" "$FERRY_BIN" udp://$S_ADDR:$P_MID udp://$S_ADDR:$sink_port; pids+=($BGPID)
        bg fw "$OUT/$v-a.log" "$FERRY_BIN" udp://$W_CADDR:$P_LISTEN udp://$S_ADDR:$P_MID; pids+=($BGPID) ;;
    esac
    sleep 0.3
    FPIDS="${pids[*]}"
}

stop_variant() {
    local v=$1; shift
    # shellcheck disable=SC2068
    [ $# -gt 0 ] && stop $@
    if [ "$v" = dnat ]; then nx fw nft delete table ip pkbench 2>/dev/null; "$B/netns.sh" fwd off; fi
    true
}

RES=$OUT/results.tsv
: >"$RES"
bg fs "$OUT/sockperf-server.log" sockperf server -i $S_ADDR -p $P_SPU
SPS=$BGPID
sleep 0.3
REVERSED=$(echo "$VARIANTS" | tr ' ' '\n' | tac | tr '\n' ' ')
for rep in $(seq "$REPS"); do
for size in $SIZES; do
    order=$VARIANTS
    [ $((rep % 2)) = 0 ] && order=$REVERSED
    for v in $order; do
        # throughput: one client socket, unlimited rate, sink in fs
        bg fs "$OUT/sink-$v-$size-$rep.log" "$BIN/udpsink" -a $S_ADDR -p $P_SINK -o "$OUT/rx-$v-$size-$rep.json"
        sink=$BGPID
        sleep 0.2
        start_variant $v $P_SINK
        # one socket for the whole run: the single-client forwarders lock to its address
        nx fc "${CLIENT[@]}" "$BIN/udpblast" -a $W_CADDR -p $P_LISTEN -s "$size" -f 1 -t "$UDP_SECS" >"$OUT/tx-$v-$size-$rep.json" 2>&1
        sleep 0.5
        stop $sink
        # shellcheck disable=SC2086
        stop_variant $v $FPIDS
        # latency: sockperf ping-pong through the same path
        start_variant $v $P_SPU
        nx fc "${CLIENT[@]}" timeout $((LAT_SECS + 20)) sockperf ping-pong -i $W_CADDR -p $P_LISTEN -t "$LAT_SECS" -m "$size" --full-rtt \
            >"$OUT/lat-$v-$size-$rep.log" 2>&1
        # shellcheck disable=SC2086
        stop_variant $v $FPIDS
        $PY - "$v" "$size" "$OUT/tx-$v-$size-$rep.json" "$OUT/rx-$v-$size-$rep.json" "$OUT/lat-$v-$size-$rep.log" "$UDP_SECS" >>"$RES" <<'EOF'
import json, re, sys
v, size, txf, rxf, latf, secs = sys.argv[1:7]
def load(f):
    try:
        return json.load(open(f))
    except Exception:
        return {}
tx, rx = load(txf), load(rxf)
span = rx.get("rx_span_secs") or float(secs)
pps = rx.get("rx_packets", 0) / span if span else 0
lat = open(latf, errors="replace").read()
def pct(name):
    m = re.search(r"---> percentile %s =\s*([0-9.]+)" % name, lat)
    return float(m.group(1)) if m else float("nan")
sent = tx.get("sent", 0)
loss = 100.0 * (1 - rx.get("rx_packets", 0) / sent) if sent else float("nan")
print("%s\t%s\t%.0f\t%.1f\t%.1f\t%.1f" % (v, size, pps, loss, pct("50.000"), pct("99.000")))
EOF
        echo "  $(tail -1 "$RES")" >&2
    done
done
done
stop $SPS

$PY - "$RES" "$VARIANTS" <<'EOF' | tee "$OUT/results.md"
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
order = sys.argv[2].split()
runs = {}
for v, size, pps, loss, p50, p99 in rows:
    runs.setdefault((v, size), []).append([float(x) for x in (pps, loss, p50, p99)])
def med(v, size, col):
    return statistics.median(r[col] for r in runs[(v, size)])
sizes = sorted({size for _, size in runs}, key=int)
ref = {s: med("ferry-udp", s, 0) for s in sizes if ("ferry-udp", s) in runs}
chain = {s: med("udp-chain", s, 0) for s in sizes if ("udp-chain", s) in runs}
nrep = max(len(r) for r in runs.values())
if nrep > 1:
    print("medians of %d repetitions" % nrep)
head = "| path | size | delivered pkt/s | loss % | RTT p50 us | RTT p99 us | pkt/s vs ferry-udp |"
if chain:
    head += " pkt/s vs udp-chain |"
print(head)
print("|---" * (head.count("|") - 1) + "|")
for size in sizes:
    for v in order:
        if (v, size) not in runs:
            continue
        pps = med(v, size, 0)
        line = "| %s | %s | %.0f | %.1f | %.1f | %.1f | x%.2f |" % (
            v, size, pps, med(v, size, 1), med(v, size, 2), med(v, size, 3),
            pps / ref[size] if ref.get(size) else float("nan"))
        if chain:
            line += " x%.2f |" % (pps / chain[size] if chain.get(size) else float("nan"))
        print(line)
EOF
echo "results: $OUT" >&2
