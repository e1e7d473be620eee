#!/bin/bash
# pkthere-compatible mode with coalesced datagrams: a client and a server that send with UDP GSO
# (one sendmsg carrying many datagrams, as QUIC stacks do). ferry's UDP sockets in this mode ask
# for UDP GRO, so such a batch reaches ferry as one read; ferry must still forward it datagram
# by datagram, each whole and in order, in both directions, and send its own UDP batches with
# GSO without merging or splitting anything.
#
#   client C ---- F ---- S          (topology: see lib.sh; forwarding off in F)
#
#   UDP->UDP      ferry in F:  --here UDP:F:7000 --there UDP:S:9000
#   tunnel        ferry A in F: --here UDP:F:7000 --there ICMP:S:0 (ping socket)
#                 ferry B in S: --here ICMP:S:0 --there UDP:127.0.0.1:9000
#
# The client (C) sends one GSO batch of numbered datagrams; the server (S) checks every
# datagram it gets and answers the whole batch with one GSO send of its own; the client checks
# the answers. The batch: SEGS datagrams of SEG bytes and a shorter last one (GSO's rule).
#
#   tests/net/pkthere-gso.sh [SUBSTRING...]     only the cases whose name contains one of them
. "$(dirname "$0")/lib.sh"

GSO=$T/gso.py
SEG=1000 SEGS=40 LAST=300

cat >"$GSO" <<'PYEOF'
"""gso.py: client and server sending numbered datagrams as one UDP GSO batch.
Each datagram: u32 index, u32 length, then bytes (index + i) & 0xff. Exit 0 when every
datagram came whole and in order (one JSON line), 1 with a reason on stderr. The client
first sends "ping" until the server echoes one (the tunnel holds only one datagram while
its handshake runs); the server echoes pings and counts everything else."""
import json, socket, struct, sys, time

SOL_UDP, UDP_SEGMENT = 17, 103


def batch(seg, segs, last):
    out = []
    for k in range(segs + 1):
        n = seg if k < segs else last
        body = bytes((k + i) & 0xff for i in range(n - 8))
        out.append(struct.pack("!II", k, n) + body)
    return out


def check(dgrams, seg, segs, last):
    want = batch(seg, segs, last)
    if len(dgrams) != len(want):
        return "got %d datagrams (sizes %s), expected %d" % (
            len(dgrams), [len(d) for d in dgrams][:8], len(want))
    for k, (got, exp) in enumerate(zip(dgrams, want)):
        if got != exp:
            return "datagram %d: %d bytes, index %s; expected %d bytes, index %d" % (
                k, len(got), struct.unpack("!I", got[:4])[0] if len(got) >= 4 else "?", len(exp), k)
    return None


def send_gso(s, dgrams, seg, to=None):
    data = b"".join(dgrams)
    cmsg = [(SOL_UDP, UDP_SEGMENT, struct.pack("H", seg))]
    if to:
        s.sendmsg([data], cmsg, 0, to)
    else:
        s.sendmsg([data], cmsg)


def collect(s, count, secs, echo_pings=False):
    got, end = [], time.monotonic() + secs
    while len(got) < count:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            d, a = s.recvfrom(70000)
        except socket.timeout:
            break
        if d == b"ping":
            if echo_pings:
                s.sendto(d, a)
            continue
        got.append((d, a))
    return got


def wait_path(s, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.send(b"ping")
        s.settimeout(0.2)
        try:
            if s.recv(100) == b"ping":
                return True
        except (socket.timeout, ConnectionRefusedError):
            pass
    return False


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seg, segs, last = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if mode == "serve":
        s.bind((host, port))
        got = collect(s, segs + 1, 20, echo_pings=True)
        err = check([d for d, _ in got], seg, segs, last)
        if err:
            print("server: " + err, file=sys.stderr)
            sys.exit(1)
        send_gso(s, [d for d, _ in got], seg, got[0][1])
        print(json.dumps({"server_received": len(got)}))
        return
    s.connect((host, port))
    if not wait_path(s, 10):
        print("client: no ping came back through ferry", file=sys.stderr)
        sys.exit(1)
    send_gso(s, batch(seg, segs, last), seg)
    got = collect(s, segs + 1, 10)
    err = check([d for d, _ in got], seg, segs, last)
    if err:
        print("client: " + err, file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"client_received": len(got)}))


main()
PYEOF

# gso_roundtrip: the server in S on SERVER_HOST:9000, then the client in C through F:7000
gso_roundtrip() {
	local server_host=$1 out spid
	nsx "$NS_S" timeout 30 "$PY" "$GSO" serve "$server_host" 9000 $SEG $SEGS $LAST >"$T/$CASE.server" 2>&1 &
	spid=$!
	track "$spid"
	wait_udp_listen "$NS_S" 9000 "$spid" || fail "GSO server did not start: $(cat "$T/$CASE.server")"
	out=$(nsx "$NS_C" timeout 30 "$PY" "$GSO" send "$F4C" 7000 $SEG $SEGS $LAST 2>&1) ||
		fail "$out; server: $(cat "$T/$CASE.server")"
	wait "$spid" || fail "server: $(cat "$T/$CASE.server")"
	ferry_alive
}

case_udp_gso_batches_forwarded_datagram_by_datagram() {
	ferry_up -u "$NS_F" 7000 --here UDP:$F4C:7000 --there UDP:$S4:9000 --user nobody
	gso_roundtrip "$S4"
}

case_tunnel_gso_batches_forwarded_datagram_by_datagram() {
	local a
	ferry_start "$NS_S" --here ICMP:$S4:0 --there UDP:127.0.0.1:9000 --user nobody
	track "$FERRY_PID"
	ferry_up -u "$NS_F" 7000 --here UDP:$F4C:7000 --there ICMP:$S4:0 --user nobody
	a=$FERRY_PID
	gso_roundtrip 127.0.0.1
	FERRY_PID=$a
	ferry_alive
}

need_root_and_tools
topology_up || setup_fail "cannot build namespaces"
for ns in "$NS_F" "$NS_S"; do
	nsx "$ns" sysctl -qw net.ipv4.icmp_echo_ignore_all=1
	nsx "$ns" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
done

run_case case_udp_gso_batches_forwarded_datagram_by_datagram
run_case case_tunnel_gso_batches_forwarded_datagram_by_datagram
finish
