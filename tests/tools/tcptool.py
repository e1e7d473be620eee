#!/usr/bin/python3
"""tcptool: TCP servers and clients for ferry's integration tests (python3 stdlib only).

Every client proves one thing and exits 0 when it holds, 1 when it does not (with one line
on stderr saying why), 3 on its own deadline (--timeout, default 30 s). Servers run until
killed and log one JSON line per finished connection to stdout.

Servers:   serve MODE HOST PORT [PORT...]       (HOST "::" listens dual-stack)
  echo             echo everything back; at EOF shut down the write side; log bytes+sha256
                   and how the connection ended ("eof" or "reset")
  reply-after-eof  read to EOF, then send "RECV <n> <sha256>\\nSEND <m> <sha256>\\n" and
                   --reply-bytes of random data, then close
  reset            wait for the first data, then close with SO_LINGER 0 (RST)
  port-reply       send "<local port>\\n" and close
  addr-reply       send "<local address>\\n" (the address the client reached) and close
  peer-reply       send "<peer address>:<peer port>\\n" (who the server saw connecting;
                   IPv6 in brackets, v4-mapped shown as IPv4) and close

Clients:
  connect HOST PORT              exit 0 if a connection is established
  send-hash HOST PORT            send --bytes random bytes (optionally at --rate B/s) to an
                                 echo server, read the echo concurrently; check it matches
  concurrent HOST PORT           --conns connections at once, each with its own random payload
                                 of --min..--max bytes, all echoed back and compared
  halfclose HOST PORT            send --send bytes, shutdown(SHUT_WR), read the whole reply of
                                 a reply-after-eof server and check --expect bytes + hashes
  expect-reset HOST PORT         send a little, the read must fail with ECONNRESET
  expect-close HOST PORT         the peer must close (EOF or RST) between --min and --max s
                                 after connect (after one echo round trip with --ping, which
                                 prints "pinged")
  send-reset HOST PORT           one echo round trip, then close with RST; print the sha256 of
                                 what was sent (the echo server logs it with end "reset")
  hold HOST PORT                 open --conns connections (one echo round trip each), print
                                 "held N", keep them --secs, then check each still echoes
  read HOST PORT                 print what the server sends until EOF (from local port
                                 --sport, 0 = any)
  stats FILE KEY...              print values from the last stats JSON line in FILE
                                 (KEY like rules.0.drops.max_conns)
"""

import argparse
import errno
import hashlib
import json
import os
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20


class Deadline(Exception):
    pass


def die(msg, code=1):
    print(f"tcptool: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def dial(host, port, timeout, sport=0):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    if sport:
        s.bind(("::" if family_of(host) == socket.AF_INET6 else "0.0.0.0", sport))
    s.connect((host, port))
    return s


def linger_reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def recv_all(s, limit, deadline):
    """Read until EOF; returns (data, how) where how is 'eof' or 'reset'."""
    parts, n = [], 0
    while True:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            b = s.recv(CHUNK)
        except ConnectionResetError:
            return b"".join(parts), "reset"
        except socket.timeout:
            raise Deadline(f"no EOF after {n} bytes")
        if not b:
            return b"".join(parts), "eof"
        n += len(b)
        if n > limit:
            raise ValueError(f"more than {limit} bytes received")
        parts.append(b)


# ---------------------------------------------------------------- servers

LOG_LOCK = threading.Lock()


def log(**kw):
    with LOG_LOCK:
        print(json.dumps(kw), flush=True)


def serve_echo(c, port, peer, a):
    h, n, end = hashlib.sha256(), 0, "eof"
    try:
        while True:
            b = c.recv(CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
    except ConnectionResetError:
        end = "reset"
    except OSError as e:
        end = f"error {e.errno}"
    log(mode="echo", port=port, peer=peer, bytes=n, sha256=h.hexdigest(), end=end)


def serve_reply_after_eof(c, port, peer, a):
    h, n = hashlib.sha256(), 0
    try:
        while True:
            b = c.recv(CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
        data = os.urandom(a.reply_bytes)
        head = f"RECV {n} {h.hexdigest()}\nSEND {len(data)} {hashlib.sha256(data).hexdigest()}\n"
        c.sendall(head.encode() + data)
        end = "sent"
    except OSError as e:
        end = f"error {e.errno}"
    log(mode="reply-after-eof", port=port, peer=peer, bytes=n, sha256=h.hexdigest(), end=end)


def serve_reset(c, port, peer, a):
    c.settimeout(5)
    try:
        n = len(c.recv(CHUNK))
    except OSError:
        n = -1
    linger_reset(c)
    log(mode="reset", port=port, peer=peer, bytes=n, end="reset-sent")


def serve_port_reply(c, port, peer, a, what=None):
    try:
        if what is None:
            what = port
        c.sendall(f"{what}\n".encode())
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        while c.recv(CHUNK):
            pass
    except OSError:
        pass
    log(mode="port-reply", port=port, peer=peer)


def serve_addr_reply(c, port, peer, a):
    addr = c.getsockname()[0]
    if addr.startswith("::ffff:"):
        addr = addr[len("::ffff:"):]
    serve_port_reply(c, port, peer, a, what=addr)


def serve_peer_reply(c, port, peer, a):
    host, pport = c.getpeername()[:2]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    serve_port_reply(c, port, peer, a, what=f"[{host}]:{pport}" if ":" in host else f"{host}:{pport}")


SERVERS = {
    "addr-reply": serve_addr_reply,
    "peer-reply": serve_peer_reply,
    "echo": serve_echo,
    "reply-after-eof": serve_reply_after_eof,
    "reset": serve_reset,
    "port-reply": serve_port_reply,
}


def listener(host, port):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if host == "::":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((host, port))
    s.listen(1024)
    return s


def accept_loop(ls, port, handler, a):
    while True:
        c, addr = ls.accept()
        threading.Thread(target=conn_thread, args=(c, port, addr[0], handler, a),
                         daemon=True).start()


def conn_thread(c, port, peer, handler, a):
    try:
        handler(c, port, peer, a)
    finally:
        c.close()


def cmd_serve(a):
    handler = SERVERS[a.mode]
    socks = [(listener(a.host, p), p) for p in a.ports]
    for ls, p in socks:
        threading.Thread(target=accept_loop, args=(ls, p, handler, a), daemon=True).start()
    while True:
        time.sleep(3600)


# ---------------------------------------------------------------- clients

def cmd_connect(a):
    try:
        dial(a.host, a.port, a.timeout).close()
    except OSError as e:
        die(f"connect {a.host}:{a.port}: {e.strerror or e}")
    print("connected")


def cmd_send_hash(a):
    deadline = time.monotonic() + a.timeout
    s = dial(a.host, a.port, a.timeout)
    sent_h, state = hashlib.sha256(), {"err": None}

    def sender():
        try:
            left, t0 = a.bytes, time.monotonic()
            # paced: small chunks, so the connection is never idle for long between them
            chunk = min(CHUNK, max(4096, int(a.rate / 50))) if a.rate else CHUNK
            while left > 0:
                b = os.urandom(min(chunk, left))
                sent_h.update(b)
                s.sendall(b)
                left -= len(b)
                if a.rate:
                    ahead = (a.bytes - left) / a.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            if not a.no_half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            state["err"] = f"send: {e}"

    t0 = time.monotonic()
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    recv_h, n, how = hashlib.sha256(), 0, "eof"
    try:
        while True:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = s.recv(CHUNK)
            except ConnectionResetError:
                how = "reset"
                break
            if not b:
                break
            recv_h.update(b)
            n += len(b)
            if a.no_half_close and n >= a.bytes:
                break
    except socket.timeout:
        die(f"deadline: received {n} of {a.bytes} bytes", 3)
    th.join(max(0.1, deadline - time.monotonic()))
    secs = time.monotonic() - t0
    res = {"sent": a.bytes, "sent_sha256": sent_h.hexdigest(), "recv": n,
           "recv_sha256": recv_h.hexdigest(), "end": how, "secs": round(secs, 3)}
    print(json.dumps(res), flush=True)
    if state["err"]:
        die(state["err"])
    if th.is_alive():
        die("sender still running at deadline", 3)
    if how != "eof":
        die(f"connection ended with {how} after {n} bytes")
    if n != a.bytes or res["recv_sha256"] != res["sent_sha256"]:
        die(f"echo differs: sent {a.bytes} bytes sha256 {res['sent_sha256']}, "
            f"received {n} bytes sha256 {res['recv_sha256']}")


class Conn:
    def __init__(self, i, payload):
        self.i, self.payload = i, payload
        self.sock = None
        self.sent = self.recvd = 0
        self.connected = self.done = False
        self.err = None


def cmd_concurrent(a):
    deadline = time.monotonic() + a.timeout
    sizes = [a.min + (int.from_bytes(os.urandom(4), "big") % (a.max - a.min + 1))
             for _ in range(a.conns)]
    conns = [Conn(i, os.urandom(sizes[i])) for i in range(a.conns)]
    sel = selectors.DefaultSelector()
    addr = (a.host, a.port)
    for c in conns:
        c.sock = socket.socket(family_of(a.host), socket.SOCK_STREAM)
        c.sock.setblocking(False)
        rc = c.sock.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS):
            c.err = f"connect: {os.strerror(rc)}"
            continue
        sel.register(c.sock, selectors.EVENT_WRITE, c)

    # phase 1: every connection established before any data moves
    pending = sum(1 for c in conns if not c.err)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            c = key.data
            if c.connected:
                continue
            rc = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            pending -= 1
            if rc:
                c.err = f"connect: {os.strerror(rc)}"
                sel.unregister(c.sock)
                c.sock.close()
            else:
                c.connected = True
                sel.unregister(c.sock)
    t_conn = time.monotonic()
    for c in conns:
        if not c.err and not c.connected:
            c.err = "connect did not complete"
            sel.unregister(c.sock)
            c.sock.close()

    # phase 2: all send and receive at once
    active = [c for c in conns if c.connected]
    for c in active:
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = len(active)

    def finish(c, err=None):
        nonlocal left
        c.err, c.done = err, True
        left -= 1
        sel.unregister(c.sock)
        c.sock.close()

    while left and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            c = key.data
            if c.done:
                continue
            try:
                if ev & selectors.EVENT_WRITE and c.sent < len(c.payload):
                    c.sent += c.sock.send(c.payload[c.sent:c.sent + 256 * 1024])
                    if c.sent == len(c.payload):
                        if not a.no_half_close:
                            c.sock.shutdown(socket.SHUT_WR)
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if ev & selectors.EVENT_READ:
                    b = c.sock.recv(CHUNK)
                    if not b:
                        if c.recvd != len(c.payload):
                            finish(c, f"EOF after {c.recvd} of {len(c.payload)} bytes")
                        else:
                            finish(c)
                        continue
                    if c.payload[c.recvd:c.recvd + len(b)] != b:
                        finish(c, f"echo differs at offset {c.recvd}")
                        continue
                    c.recvd += len(b)
                    if a.no_half_close and c.recvd == len(c.payload):
                        finish(c)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                finish(c, f"{e.strerror or e} after sending {c.sent}, receiving {c.recvd}"
                          f" of {len(c.payload)} bytes")
    for c in conns:
        if c.connected and not c.done:
            c.err = f"unfinished at deadline: sent {c.sent}, received {c.recvd} of {len(c.payload)}"
    bad = [c for c in conns if c.err]
    total = sum(sizes)
    print(json.dumps({"conns": a.conns, "ok": a.conns - len(bad), "bytes": total,
                      "connect_secs": round(t_conn - (deadline - a.timeout), 3)}), flush=True)
    if bad:
        for c in bad[:5]:
            print(f"tcptool: conn {c.i}: {c.err}", file=sys.stderr)
        die(f"{len(bad)} of {a.conns} connections failed")


def cmd_halfclose(a):
    deadline = time.monotonic() + a.timeout
    s = dial(a.host, a.port, a.timeout)
    data = os.urandom(a.send)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got, how = recv_all(s, a.expect + 4096, deadline)
    lines = got.split(b"\n", 2)
    if len(lines) < 3:
        die(f"reply too short ({len(got)} bytes, end {how}): {got[:200]!r}")
    recv_line, send_line, body = lines[0].decode(), lines[1].decode(), lines[2]
    want = f"RECV {len(data)} {hashlib.sha256(data).hexdigest()}"
    if recv_line != want:
        die(f"server received something else: server says '{recv_line}', we sent '{want}'")
    _, m, sha = send_line.split()
    print(json.dumps({"sent": len(data), "reply": len(body), "reply_announced": int(m),
                      "end": how}), flush=True)
    if int(m) != a.expect:
        die(f"server announced {m} bytes, expected {a.expect}")
    if len(body) != int(m) or hashlib.sha256(body).hexdigest() != sha:
        die(f"reply truncated or corrupt: got {len(body)} of {m} bytes (end {how})")
    if how != "eof":
        die(f"reply complete but connection ended with {how}")


def cmd_expect_reset(a):
    s = dial(a.host, a.port, a.timeout)
    t0 = time.monotonic()
    s.sendall(b"hello")
    s.settimeout(a.timeout)
    try:
        b = s.recv(CHUNK)
    except ConnectionResetError:
        print(f"reset after {time.monotonic() - t0:.3f}s")
        return
    except socket.timeout:
        die(f"no reset within {a.timeout}s", 3)
    if b:
        die(f"unexpected data {b[:100]!r}")
    die(f"clean EOF after {time.monotonic() - t0:.3f}s, expected ECONNRESET")


def ping(s):
    s.sendall(b"ping")
    got = b""
    while len(got) < 4:
        b = s.recv(4 - len(got))
        if not b:
            raise ConnectionError("EOF before echo")
        got += b
    if got != b"ping":
        raise ValueError(f"echo {got!r}")


def cmd_expect_close(a):
    t0 = time.monotonic()
    try:
        s = dial(a.host, a.port, a.timeout)
    except ConnectionResetError:
        # established, then reset before connect() looked at the socket (SO_ERROR)
        t = time.monotonic() - t0
        print(json.dumps({"end": "reset", "secs": round(t, 3), "during": "connect"}), flush=True)
        if not a.min <= t <= a.max or a.ping:
            die(f"reset during connect after {t:.3f}s, expected a close within {a.min}..{a.max}s"
                + (" after an echo round trip" if a.ping else ""))
        return
    if a.ping:
        s.settimeout(a.timeout)
        ping(s)
        print("pinged", flush=True)
    t0 = time.monotonic()
    s.settimeout(a.max + 1)
    try:
        b = s.recv(CHUNK)
        how = "eof" if not b else f"data {b[:60]!r}"
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = "still open"
    t = time.monotonic() - t0
    print(json.dumps({"end": how, "secs": round(t, 3)}), flush=True)
    if how not in ("eof", "reset"):
        die(f"{how} after {t:.3f}s, expected close within {a.min}..{a.max}s")
    if not a.min <= t <= a.max:
        die(f"closed ({how}) after {t:.3f}s, expected within {a.min}..{a.max}s")


def cmd_send_reset(a):
    s = dial(a.host, a.port, a.timeout)
    token = os.urandom(16).hex().encode()
    s.sendall(token)
    got = b""
    s.settimeout(a.timeout)
    while len(got) < len(token):
        b = s.recv(CHUNK)
        if not b:
            die("EOF before echo")
        got += b
    if got != token:
        die("echo differs")
    print(hashlib.sha256(token).hexdigest(), flush=True)
    linger_reset(s)


def cmd_hold(a):
    socks = []
    for _ in range(a.conns):
        s = dial(a.host, a.port, a.timeout)
        s.settimeout(a.timeout)
        ping(s)
        socks.append(s)
    print(f"held {len(socks)}", flush=True)
    time.sleep(a.secs)
    for i, s in enumerate(socks):
        try:
            ping(s)
        except (OSError, ValueError) as e:
            die(f"held connection {i} no longer echoes: {e}")
    print(f"still ok {len(socks)}", flush=True)


def cmd_read(a):
    s = dial(a.host, a.port, a.timeout, a.sport)
    got, how = recv_all(s, 1 << 20, time.monotonic() + a.timeout)
    sys.stdout.write(got.decode(errors="replace"))
    if how != "eof":
        die(f"ended with {how}")


def cmd_stats(a):
    last = None
    with open(a.file, errors="replace") as f:
        for line in f:
            if '"stats"' in line:
                last = line
    if last is None:
        die(f"no stats line in {a.file}")
    try:
        obj = json.loads(last)
    except ValueError as e:
        die(f"stats line is not JSON ({e}): {last.strip()}")
    for key in a.keys:
        v = obj
        try:
            for part in key.split("."):
                v = v[int(part)] if isinstance(v, list) else v[part]
        except (KeyError, IndexError, ValueError, TypeError):
            die(f"no {key} in stats line: {last.strip()}")
        print(json.dumps(v))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("serve")
    sp.add_argument("mode", choices=sorted(SERVERS))
    sp.add_argument("host")
    sp.add_argument("ports", type=int, nargs="+")
    sp.add_argument("--reply-bytes", type=int, default=1 << 20)
    sp.set_defaults(fn=cmd_serve)

    def client(name, fn):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--timeout", type=float, default=30)
        c.set_defaults(fn=fn)
        return c

    client("connect", cmd_connect)
    c = client("send-hash", cmd_send_hash)
    c.add_argument("--bytes", type=int, default=1 << 20)
    c.add_argument("--rate", type=float, default=0, help="bytes per second, 0 = unlimited")
    c.add_argument("--no-half-close", action="store_true",
                   help="do not shut down the write side; close once the whole echo is back "
                        "(for tunnels without half-close, e.g. kcptun's smux)")
    c = client("concurrent", cmd_concurrent)
    c.add_argument("--conns", type=int, default=200)
    c.add_argument("--min", type=int, default=64 << 10)
    c.add_argument("--max", type=int, default=1 << 20)
    c.add_argument("--no-half-close", action="store_true",
                   help="keep the write side open; close once the whole echo is back")
    c = client("halfclose", cmd_halfclose)
    c.add_argument("--send", type=int, default=64 << 10)
    c.add_argument("--expect", type=int, default=1 << 20)
    client("expect-reset", cmd_expect_reset)
    c = client("expect-close", cmd_expect_close)
    c.add_argument("--min", type=float, default=0)
    c.add_argument("--max", type=float, default=2)
    c.add_argument("--ping", action="store_true")
    client("send-reset", cmd_send_reset)
    c = client("hold", cmd_hold)
    c.add_argument("--conns", type=int, default=1)
    c.add_argument("--secs", type=float, default=2)
    c = client("read", cmd_read)
    c.add_argument("--sport", type=int, default=0)
    sp = sub.add_parser("stats")
    sp.add_argument("file")
    sp.add_argument("keys", nargs="+")
    sp.set_defaults(fn=cmd_stats)

    a = p.parse_args()
    try:
        a.fn(a)
    except Deadline as e:
        die(f"deadline: {e}", 3)
    except socket.timeout as e:
        die(f"timeout: {e}", 3)
    except (OSError, ValueError) as e:
        die(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
