#!/usr/bin/python3
"""Compact markdown tables from a finished run (run.sh prints them at the end; docs/PERFORMANCE.md).

  compact.py RESULTS_DIR [BASE [SUBJECT]]   BASE = forwarder the ratios refer to [dnat]
                                            SUBJECT = forwarder compared with each other one [ferry]

Reads RESULTS_DIR/results.json (written by bench.py report). One row per forwarder, medians over
the repetitions; "×r" = median(forwarder) / median(BASE) for rates and latencies (RTT/p99: > 1 is
slower). Columns and rows without any result in this run are left out. Then one line per metric
with the spread between repetitions ((max-min)/median), and, when SUBJECT ran, a second table:
SUBJECT's medians divided by every other forwarder's (throughput/conn/s: > 1 = SUBJECT faster;
RTT, idle bytes and CPU per Gbit/s: < 1 = SUBJECT better).
"""
import json
import os
import sys


def main():
    d = sys.argv[1]
    base = sys.argv[2] if len(sys.argv) > 2 else "dnat"
    res = json.load(open(os.path.join(d, "results.json")))["results"]
    fwds = json.load(open(os.path.join(d, "results.json")))["forwarders"]

    def med(f, t, k):
        e = res.get(f, {}).get(t, {}).get(k)
        return e["median"] if e else None

    def r(f, t, k):
        v, b = med(f, t, k), med(base, t, k)
        return f" ×{v / b:.2f}" if f != base and v is not None and b else ""

    def num(f, t, k, fmt, scale=1.0, ratio=True):
        v = med(f, t, k)
        if v is None:
            return "fail" if "errors" in res.get(f, {}).get(t, {}) else "–"
        return fmt.format(v * scale) + (r(f, t, k) if ratio else "")

    def udp(f, t):
        v, loss = med(f, t, "rx_pps"), med(f, t, "loss_pct")
        if v is None:
            return "fail" if "errors" in res.get(f, {}).get(t, {}) else "–"
        return f"{v / 1000:,.0f} ({loss:.0f}%)" + r(f, t, "rx_pps")

    def lat(f, t):
        p50, p99 = med(f, t, "rtt_p50_us"), med(f, t, "rtt_p99_us")
        if p50 is None:
            return "fail" if "errors" in res.get(f, {}).get(t, {}) else "–"
        return f"{p50:.0f}/{p99:.0f}" + r(f, t, "rtt_p50_us")

    def cpu(f):
        vals = [med(f, t, "fwd_cpu_pct") for t in ("tcp1", "crr", "udp64x1")]
        return "/".join("–" if v is None else f"{v:.0f}" for v in vals)

    def cpu_per_gbit(f, t):
        c, g = med(f, t, "fwd_cpu_pct"), med(f, t, "gbps")
        return c / g if c is not None and g else None

    def cpg(f):
        vals = [cpu_per_gbit(f, t) for t in ("tcp1", "tcp4")]
        return "/".join("–" if v is None else f"{v:.1f}" for v in vals)

    tests = {t for f in fwds for t in res.get(f, {})}
    cols = [  # (title, needed test, cell function)
        ("tcp1 Gbit/s", "tcp1", lambda f: num(f, "tcp1", "gbps", "{:.2f}")),
        ("tcp4 Gbit/s", "tcp4", lambda f: num(f, "tcp4", "gbps", "{:.2f}")),
        ("crr conn/s", "crr", lambda f: num(f, "crr", "cps", "{:,.0f}")),
        ("crr p99 ms", "crr", lambda f: num(f, "crr", "crr_p99_us", "{:.1f}", 1e-3)),
        ("udp64x1 kpps (loss)", "udp64x1", lambda f: udp(f, "udp64x1")),
        ("udp64x16", "udp64x16", lambda f: udp(f, "udp64x16")),
        ("udp1400x1", "udp1400x1", lambda f: udp(f, "udp1400x1")),
        ("udp1400x16", "udp1400x16", lambda f: udp(f, "udp1400x16")),
        ("lat_udp p50/p99 µs", "lat_udp", lambda f: lat(f, "lat_udp")),
        ("lat_tcp p50/p99 µs", "lat_tcp", lambda f: lat(f, "lat_tcp")),
        ("idle B/conn", "idle", lambda f: num(f, "idle", "bytes_per_conn", "{:,.0f}", ratio=False)),
        ("fwd CPU% tcp1/crr/udp64x1", None, cpu),
        ("fwd CPU% per Gbit/s tcp1/tcp4", None, cpg),
    ]
    cols = [c for c in cols if c[1] is None or c[1] in tests]
    rows = {f: [c[2](f) for c in cols] for f in fwds}
    # drop columns with nothing in them (e.g. CPU columns of a latency-only run)
    keep = [i for i in range(len(cols)) if any(rows[f][i].strip("–/") for f in fwds)]
    print("| forwarder | " + " | ".join(cols[i][0] for i in keep) + " |")
    print("|" + "---|" * (len(keep) + 1))
    for f in fwds:
        print(f"| {f} | " + " | ".join(rows[f][i] for i in keep) + " |")

    # repetition spread per metric: how far apart the repetitions are, relative to their median
    print()
    keys = [("tcp1", "gbps"), ("tcp4", "gbps"), ("crr", "cps"), ("crr", "crr_p99_us"),
            ("udp64x1", "rx_pps"), ("udp64x16", "rx_pps"), ("udp1400x1", "rx_pps"), ("udp1400x16", "rx_pps"),
            ("lat_udp", "rtt_p50_us"), ("lat_tcp", "rtt_p50_us"), ("idle", "bytes_per_conn")]
    for t, k in keys:
        sp = []
        for f in fwds:
            e = res.get(f, {}).get(t, {}).get(k)
            if e and len(e["values"]) > 1 and e["median"]:
                sp.append((abs(max(e["values"]) - min(e["values"])) / abs(e["median"]), f))
        if sp:
            sp.sort()
            print(f"- spread {t} {k}: median {100 * sp[len(sp) // 2][0]:.0f}%, "
                  f"max {100 * sp[-1][0]:.0f}% ({sp[-1][1]})")

    # other work on the machine during the tests (bench.py: foreign_cpu_pct, 100 = one core)
    fvals = [(v, f, t) for f in fwds for t, d in res.get(f, {}).items()
             for v in (d.get("foreign_cpu_pct") or {}).get("values", [])]
    if fvals:
        fvals.sort()
        v, f, t = fvals[-1]
        n10 = sum(1 for x in fvals if x[0] > 10)
        print(f"- foreign CPU (processes outside the benchmark) per test: median {fvals[len(fvals) // 2][0]:.0f}%, "
              f"max {v:.0f}% ({f} {t}); {n10} of {len(fvals)} tests above 10%"
              + (" -- other work disturbed this run" if n10 else ""))

    subject = sys.argv[3] if len(sys.argv) > 3 else "ferry"
    others = [f for f in fwds if f != subject]
    if subject not in fwds or not others:
        return
    metrics = [  # (title, value function)
        ("tcp1 Gbit/s", lambda f: med(f, "tcp1", "gbps")),
        ("tcp4 Gbit/s", lambda f: med(f, "tcp4", "gbps")),
        ("crr conn/s", lambda f: med(f, "crr", "cps")),
        ("crr p99", lambda f: med(f, "crr", "crr_p99_us")),
        ("udp64x1 kpps", lambda f: med(f, "udp64x1", "rx_pps")),
        ("udp1400x16 kpps", lambda f: med(f, "udp1400x16", "rx_pps")),
        ("lat_udp p50", lambda f: med(f, "lat_udp", "rtt_p50_us")),
        ("lat_tcp p50", lambda f: med(f, "lat_tcp", "rtt_p50_us")),
        ("lat_tcp p99", lambda f: med(f, "lat_tcp", "rtt_p99_us")),
        ("idle B/conn", lambda f: med(f, "idle", "bytes_per_conn")),
        ("CPU%/Gbit/s tcp1", lambda f: cpu_per_gbit(f, "tcp1")),
        ("CPU%/Gbit/s tcp4", lambda f: cpu_per_gbit(f, "tcp4")),
    ]
    metrics = [m for m in metrics if m[1](subject) is not None]
    print(f"\n{subject} ÷ each forwarder (medians; rates > 1 = {subject} faster; RTT, p99, B/conn, CPU/Gbit/s < 1 = {subject} better)\n")
    print("| vs | " + " | ".join(m[0] for m in metrics) + " |")
    print("|" + "---|" * (len(metrics) + 1))
    for f in others:
        cells = []
        for _, fn in metrics:
            a, b = fn(subject), fn(f)
            cells.append(f"×{a / b:.2f}" if a is not None and b else "–")
        print(f"| {f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
