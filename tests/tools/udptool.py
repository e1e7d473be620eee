#!/usr/bin/python3
"""udptool: UDP servers and clients for ferry's integration tests (python3 stdlib only).

Every client proves one thing and exits 0 when it holds, 1 when it does not (with one line
on stderr saying why), 3 on its own deadline (--timeout). Clients print one JSON line on
success. Servers run until killed and log one JSON line to stdout per new sender address,
so a test can count the upstream sockets (one per ferry session) the server has seen.

Servers:   serve MODE HOST PORT         (HOST "::" listens dual-stack; a datagram starting
                                        with "noreply" gets no answer)
  echo             send every datagram back unchanged to its sender
  peer             reply with JSON {"peer": "ADDR:PORT", "port": PORT, "len": N, "tag": "..."}:
                   the sender address the server saw (ferry's upstream socket) and the first
                   64 bytes of the datagram as text; --pad N pads the reply with spaces to
                   N bytes (still JSON), for a reply larger than the request
  --gso            answer all datagrams queued at once, equal-sized answers to one sender
                   as UDP GSO sends (one send, the kernel cuts the datagrams apart)

Clients (ADDR:PORT of a reply is checked against HOST:PORT: the client must see the address
it sent to):
  stream HOST PORT    one socket sends --count datagrams of seeded random sizes --min..--max
                      (or picked from --sizes A,B,...) to an echo server (with --gso, each
                      window's runs of equal sizes go out as UDP GSO sends) with up to --window in flight (and at most
                      --window-bytes); every reply must be the next datagram sent (same length
                      and sha256): nothing lost, altered, duplicated or reordered
  clients HOST PORT   --clients sockets at once (distinct source ports), each sends --count
                      datagrams of its own (--min..--max bytes) to an echo server, one in
                      flight each; each must get back exactly its own datagrams, in order
                      (with --any-reply: one reply per datagram, whatever it says)
  ask HOST PORT       send one datagram (text --tag, padded to --size) from local port
                      --sport (0 = any); print the reply (from a peer server: its JSON
                      merged in) or, with --expect-none, succeed only if nothing comes back
                      within --timeout
  blast HOST PORT     send --rate datagrams/s of --size bytes for --secs from --sport,
                      reading nothing
"""

import argparse
import hashlib
import json
import random
import selectors
import socket
import struct
import sys
import time

MAX_DGRAM = 65535
# Client and server socket buffers: room for many 64 KiB datagrams (their fragments make the
# kernel charge about 1.6x the payload), so that a lost datagram is ferry's, not ours.
BUF_BYTES = 8 << 20


# UDP GSO (UDP_SEGMENT): one send carries equal-sized datagrams the kernel cuts apart
UDP_SEGMENT = 103
GSO_SEG_MAX = 1452
GSO_SEGS_MAX = 64


class Deadline(Exception):
    pass


def die(msg, code=1):
    print(f"udptool: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def norm_addr(a):
    """(host, port[, flow, scope]) -> "host:port" with v4-mapped IPv6 shown as IPv4."""
    host, port = a[0], a[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def target_text(host, port):
    h = socket.inet_ntop(family_of(host), socket.inet_pton(family_of(host), host))
    return norm_addr((h, port))


def big_buffers(s):
    for force, plain in ((getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
                         (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, BUF_BYTES)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, BUF_BYTES)


def client_socket(host, sport=0):
    fam = family_of(host)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    big_buffers(s)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
    return s


def recv_until(s, deadline):
    """One datagram (data, "addr:port") or Deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise Deadline("no reply")
    s.settimeout(left)
    try:
        data, a = s.recvfrom(MAX_DGRAM + 1)
    except socket.timeout:
        raise Deadline("no reply") from None
    return data, norm_addr(a)


def gso_groups(payloads):
    """Splits payloads into runs one GSO send can carry: equal sizes (the last one may be
    shorter and ends the run), at most 64 segments and 65,000 bytes."""
    groups, i = [], 0
    while i < len(payloads):
        seg, j = len(payloads[i]), i + 1
        total = seg
        if 0 < seg <= GSO_SEG_MAX:
            while (j < len(payloads) and j - i < GSO_SEGS_MAX and 0 < len(payloads[j]) <= seg
                   and total + len(payloads[j]) <= 65000):
                total += len(payloads[j])
                j += 1
                if len(payloads[j - 1]) < seg:
                    break
        groups.append(payloads[i:j])
        i = j
    return groups


def send_all(s, payloads, dst, gso):
    """Sends payloads in order: one sendto each, or with gso as few GSO sends as possible."""
    if not gso:
        for p in payloads:
            s.sendto(p, dst)
        return
    for g in gso_groups(payloads):
        if len(g) == 1:
            s.sendto(g[0], dst)
        else:
            s.sendmsg([b"".join(g)], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", len(g[0])))], 0, dst)


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


# ------------------------------------------------------------------ servers

def cmd_serve(a):
    fam = family_of(a.host)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if a.host == "::" else 1)
    big_buffers(s)
    s.bind((a.host, a.port))
    seen = set()
    while True:
        got = [s.recvfrom(MAX_DGRAM + 1)]
        # with --gso, answer everything queued at once: equal-sized answers to one peer go
        # out as GSO sends
        while a.gso and len(got) < GSO_SEGS_MAX:
            try:
                got.append(s.recvfrom(MAX_DGRAM + 1, socket.MSG_DONTWAIT))
            except BlockingIOError:
                break
        replies = []		# [addr, [payload...]] runs per peer, in arrival order
        for data, addr in got:
            peer = norm_addr(addr)
            if peer not in seen:
                seen.add(peer)
                tag = data[:64].decode(errors="replace")
                print(json.dumps({"event": "peer", "port": a.port, "peer": peer, "tag": tag}), flush=True)
            if data.startswith(b"noreply"):
                continue
            if a.mode == "echo":
                out = data
            else:
                out = json.dumps({"peer": peer, "port": addr[1], "len": len(data),
                                  "tag": data[:64].decode(errors="replace")}).encode()
                out += b" " * max(0, a.pad - len(out))
            if replies and replies[-1][0] == addr:
                replies[-1][1].append(out)
            else:
                replies.append([addr, [out]])
        for addr, outs in replies:
            try:
                send_all(s, outs, addr, a.gso)
            except OSError as e:
                print(json.dumps({"event": "send_error", "peer": norm_addr(addr), "error": str(e)}), flush=True)


# ------------------------------------------------------------------ clients

def payload_source(seed):
    rng = random.Random(seed)
    pool = rng.randbytes(1 << 18)
    return rng, pool


def make_payload(pool, tag, seq, size):
    """size bytes: a header naming (tag, seq) as far as it fits, then pool bytes from an
    offset depending on seq, so no two datagrams are alike."""
    head = struct.pack("!IQ", tag, seq)[:size]
    off = (seq * 7919 + tag * 104729) % (len(pool) - MAX_DGRAM)
    return head + pool[off:off + size - len(head)]


def late_arrivals(s, inflight, seq):
    """After a datagram overtook seq: read for a second more and say whether seq was
    reordered (arrives late) or lost (never arrives)."""
    want = {x[2]: x[0] for x in inflight}
    seen = []
    deadline = time.monotonic() + 1
    try:
        while True:
            data, _ = recv_until(s, deadline)
            seen.append(want.get(hashlib.sha256(data).digest(), "?"))
    except Deadline:
        pass
    sizes = ", ".join(f"{x[0]}: {x[1]} B" for x in inflight)
    how = "reordered (arrived later)" if seq in seen else "lost (never arrived)"
    return f"datagram {seq} {how}; in flight were {sizes}; then arrived {seen[:8]}"


def cmd_stream(a):
    rng, pool = payload_source(a.seed)
    sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else []
    biggest = max(sizes) if sizes else a.max
    dst = (a.host, a.port)
    want_from = target_text(a.host, a.port)
    s = client_socket(a.host)
    deadline = time.monotonic() + a.timeout
    inflight = []		# (seq, len, sha) in send order
    inflight_bytes = 0
    sent = got = nbytes = 0
    t0 = time.monotonic()
    while got < a.count:
        batch = []
        # with --gso, whole windows at once (after the last one is back): long equal runs
        while sent < a.count and len(inflight) < a.window and not (a.gso and inflight and not batch) and (
                not inflight or inflight_bytes + biggest <= a.window_bytes):
            size = rng.choice(sizes) if sizes else rng.randint(a.min, a.max)
            p = make_payload(pool, 1, sent, size)
            batch.append(p)
            inflight.append((sent, size, hashlib.sha256(p).digest()))
            inflight_bytes += size
            sent += 1
        send_all(s, batch, dst, a.gso)
        seq, size, digest = inflight[0]
        try:
            data, frm = recv_until(s, min(deadline, time.monotonic() + a.reply_timeout))
        except Deadline:
            die(f"datagram {seq} ({size} bytes) lost: no reply within {a.reply_timeout} s "
                f"({got} of {a.count} replies arrived, {len(inflight)} in flight)")
        if frm != want_from:
            die(f"reply {got} came from {frm}, expected {want_from}")
        d = hashlib.sha256(data).digest()
        if len(data) != size or d != digest:
            later = [x[0] for x in inflight[1:] if x[1] == len(data) and x[2] == d]
            if later:
                die(f"expected datagram {seq}, got datagram {later[0]} first: "
                    f"{late_arrivals(s, inflight, seq)}")
            die(f"datagram {seq}: sent {size} bytes sha256 {digest.hex()[:16]}, "
                f"got {len(data)} bytes sha256 {d.hex()[:16]}")
        inflight.pop(0)
        inflight_bytes -= size
        got += 1
        nbytes += size
    secs = time.monotonic() - t0
    # nothing more may come: a duplicate would show up here
    try:
        data, frm = recv_until(s, time.monotonic() + 0.2)
        die(f"extra datagram after all replies: {len(data)} bytes from {frm}")
    except Deadline:
        pass
    print(json.dumps({"count": got, "bytes": nbytes, "secs": round(secs, 3)}))


class Client:
    def __init__(self, i, host, count):
        self.i = i
        self.s = client_socket(host)
        self.s.setblocking(False)
        self.count = count
        self.sent = 0
        self.got = 0
        self.expect = None	# (payload sha, len)


def cmd_clients(a):
    rng, pool = payload_source(a.seed)
    dst = (a.host, a.port)
    want_from = target_text(a.host, a.port)
    sel = selectors.DefaultSelector()
    clients = [Client(i, a.host, a.count) for i in range(a.clients)]
    owner = {}		# payload sha -> (client, seq), to name a misdelivery
    ports = set()

    def send_next(c):
        size = rng.randint(a.min, a.max)
        p = make_payload(pool, c.i + 1, c.sent, max(size, 12))
        owner[hashlib.sha256(p).digest()] = (c.i, c.sent)
        c.expect = (hashlib.sha256(p).digest(), len(p))
        c.s.sendto(p, dst)
        c.sent += 1

    for c in clients:
        ports.add(c.s.getsockname()[1])
        sel.register(c.s, selectors.EVENT_READ, c)
        send_next(c)
    if len(ports) != len(clients):
        die(f"only {len(ports)} distinct source ports for {len(clients)} clients")
    deadline = time.monotonic() + a.timeout
    done = 0
    last_progress = time.monotonic()
    while done < len(clients):
        now = time.monotonic()
        if now > deadline or now - last_progress > a.reply_timeout:
            waiting = [c.i for c in clients if c.got < c.count]
            die(f"no reply for {now - last_progress:.1f} s; clients still waiting: {waiting[:10]} "
                f"(client {waiting[0]} has {clients[waiting[0]].got} of {a.count})")
        for key, _ in sel.select(0.2):
            c = key.data
            while True:
                try:
                    data, addr = c.s.recvfrom(MAX_DGRAM + 1)
                except BlockingIOError:
                    break
                frm = norm_addr(addr)
                if frm != want_from:
                    die(f"client {c.i}: reply from {frm}, expected {want_from}")
                d = hashlib.sha256(data).digest()
                if a.any_reply and c.expect is not None:
                    d = c.expect[0]	# a peer server answers with its own text
                if c.expect is None or d != c.expect[0]:
                    o = owner.get(d)
                    if o and o[0] != c.i:
                        die(f"client {c.i} received client {o[0]}'s datagram {o[1]}")
                    if o:
                        die(f"client {c.i} received its own datagram {o[1]} again or out of order "
                            f"(expected {c.sent - 1})")
                    die(f"client {c.i}: reply of {len(data)} bytes matches nothing sent")
                c.got += 1
                c.expect = None
                last_progress = time.monotonic()
                if c.got == c.count:
                    done += 1
                else:
                    send_next(c)
    # late extras (duplicates) would arrive now
    time.sleep(0.2)
    for c in clients:
        try:
            data, addr = c.s.recvfrom(MAX_DGRAM + 1)
            die(f"client {c.i}: extra datagram of {len(data)} bytes from {norm_addr(addr)}")
        except BlockingIOError:
            pass
    print(json.dumps({"clients": len(clients), "replies": sum(c.got for c in clients)}))


def cmd_ask(a):
    s = client_socket(a.host, a.sport)
    p = a.tag.encode()
    if a.size > len(p):
        p += b"." * (a.size - len(p))
    try:
        s.sendto(p, (a.host, a.port))
    except OSError as e:
        if a.expect_none:	# e.g. no route: nothing can come back either
            print(json.dumps({"reply": None, "send_error": str(e)}))
            return
        raise
    try:
        data, frm = recv_until(s, time.monotonic() + a.timeout)
    except Deadline:
        if a.expect_none:
            print(json.dumps({"reply": None}))
            return
        die(f"no reply within {a.timeout} s to {len(p)} bytes from port {s.getsockname()[1]}", 3)
    if a.expect_none:
        die(f"got a reply of {len(data)} bytes from {frm}, expected none")
    want = target_text(a.host, a.port)
    if frm != want:
        die(f"reply from {frm}, expected {want}")
    out = {"from": frm, "sport": s.getsockname()[1], "len": len(data)}
    try:
        out.update(json.loads(data))
    except ValueError:
        out["echo"] = data == p
        if data != p:
            die(f"reply differs from what was sent: {len(data)} bytes sha {sha(data)}, "
                f"sent {len(p)} bytes sha {sha(p)}")
    print(json.dumps(out))


def cmd_blast(a):
    s = client_socket(a.host, a.sport)
    p = b"x" * a.size
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.secs:
        s.sendto(p, (a.host, a.port))
        n += 1
        time.sleep(1 / a.rate)
    print(json.dumps({"sent": n}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("serve")
    sp.add_argument("mode", choices=["echo", "peer"])
    sp.add_argument("host")
    sp.add_argument("port", type=int)
    sp.add_argument("--pad", type=int, default=0)
    sp.add_argument("--gso", action="store_true")
    sp.set_defaults(fn=cmd_serve)

    def client(name, fn):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--timeout", type=float, default=30)
        c.set_defaults(fn=fn)
        return c

    c = client("stream", cmd_stream)
    c.add_argument("--count", type=int, default=10000)
    c.add_argument("--min", type=int, default=1)
    c.add_argument("--max", type=int, default=65507)
    c.add_argument("--sizes", default="", help="sizes to pick from, e.g. 1000,1000,400 (instead of --min..--max)")
    c.add_argument("--window", type=int, default=4)
    c.add_argument("--gso", action="store_true", help="send runs of equal sizes as UDP GSO sends")
    c.add_argument("--window-bytes", type=int, default=256 << 10)
    c.add_argument("--reply-timeout", type=float, default=2)
    c.add_argument("--seed", type=int, default=1)
    c = client("clients", cmd_clients)
    c.add_argument("--clients", type=int, default=64)
    c.add_argument("--count", type=int, default=16)
    c.add_argument("--min", type=int, default=1)
    c.add_argument("--max", type=int, default=16384)
    c.add_argument("--reply-timeout", type=float, default=3)
    c.add_argument("--seed", type=int, default=2)
    c.add_argument("--any-reply", action="store_true", help="any reply answers a datagram (peer server)")
    c = client("ask", cmd_ask)
    c.add_argument("--sport", type=int, default=0)
    c.add_argument("--tag", default="ask")
    c.add_argument("--size", type=int, default=0)
    c.add_argument("--expect-none", action="store_true")
    c = client("blast", cmd_blast)
    c.add_argument("--sport", type=int, default=0)
    c.add_argument("--size", type=int, default=100)
    c.add_argument("--rate", type=float, default=100)
    c.add_argument("--secs", type=float, default=2)

    a = p.parse_args()
    try:
        a.fn(a)
    except Deadline as e:
        die(f"deadline: {e}", 3)
    except OSError as e:
        die(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
