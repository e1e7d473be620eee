#!/usr/bin/python3
"""Helpers for run.sh: process/CPU snapshots, parsing tool output into JSON records, the final report.

  bench.py snap SID [NSPID_FW] [NSPID_FS] [NSPID_FC] -> JSON snapshot on stdout
  bench.py mem SID                                -> JSON memory figures of the session SID
  bench.py record OUT.jsonl KEY=VAL... [--snap0 F --snap1 F] [--iperf F] [--crr F]
                 [--udp-tx F --udp-rx F] [--sockperf F] [--idle F --mem0 F --mem1 F]
  bench.py report RAW.jsonl OUTDIR                -> results.md, results.json, results.csv
  bench.py select OUTDIR MAX_PCT RUNDIR...        -> OUTDIR/{raw.jsonl,selection.txt,results.*}: the
                                                     records of the RUNDIRs whose foreign_cpu_pct
                                                     <= MAX_PCT (records without it are kept)
  bench.py logscan LOGDIR FWD                     -> what FWD logged besides routine info lines,
                                                     and failures/drops from its stats lines
"""
import csv
import glob
import json
import os
import re
import statistics
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def session_procs(sid):
    """pids whose session id is sid (the forwarder is started with setsid, so its whole tree)."""
    out = []
    for d in glob.glob("/proc/[0-9]*/stat"):
        s = read(d)
        if not s:
            continue
        rp = s.rfind(")")
        f = s[rp + 2:].split()
        # fields after comm: state(0) ppid(1) pgrp(2) session(3) ... utime(11) stime(12) cutime(13) cstime(14)
        if int(f[3]) == sid:
            out.append((int(d.split("/")[2]), f))
    return out


def udp_snmp(pid):
    txt = read(f"/proc/{pid}/net/snmp")
    lines = [l.split() for l in txt.splitlines() if l.startswith("Udp:")]
    if len(lines) < 2:
        return {}
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:])}


def softnet_drops():
    tot = 0
    for l in read("/proc/net/softnet_stat").splitlines():
        p = l.split()
        if len(p) > 1:
            tot += int(p[1], 16)
    return tot


def foreign_procs(own_ns):
    """CPU ticks (utime+stime) of every user process outside the benchmark: not in one of the
    bench's network namespaces, not a kernel thread (softirq work done by ksoftirqd is ours), not
    run.sh itself and not this process. Reaped children's time (cutime) is left out: a parent
    reaping a long-lived child would book all of that child's past CPU into one test. So this is
    a lower bound: processes that start and exit within one test are not seen."""
    me, parent = os.getpid(), os.getppid()
    out = {}
    for d in glob.glob("/proc/[0-9]*"):
        try:
            pid = int(d[6:])
            if pid in (me, parent, 2):
                continue
            ns = os.readlink(d + "/ns/net")
        except (OSError, ValueError):
            continue
        if ns in own_ns:
            continue
        st = read(d + "/stat")
        if not st:
            continue
        f = st[st.rfind(")") + 2:].split()
        if int(f[1]) == 2:  # kernel thread
            continue
        out[str(pid)] = int(f[11]) + int(f[12])
    return out


def cmd_snap(args):
    sid = int(args[0]) if args and args[0] != "0" else 0
    snap = {"t": time.monotonic()}
    if sid:
        ticks = 0
        procs = session_procs(sid)
        for _, f in procs:
            ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        snap["ticks"] = ticks
        snap["nprocs"] = len(procs)
    cpu = read("/proc/stat").splitlines()[0].split()[1:]
    snap["cpu"] = [int(x) for x in cpu]
    if len(args) > 1:
        snap["udp_fw"] = udp_snmp(args[1])
    if len(args) > 2:
        snap["udp_fs"] = udp_snmp(args[2])
    snap["softnet_drop"] = softnet_drops()
    own_ns = set()
    for a in args[1:4]:
        try:
            own_ns.add(os.readlink(f"/proc/{a}/ns/net"))
        except OSError:
            pass
    if own_ns:
        snap["foreign"] = foreign_procs(own_ns)
    print(json.dumps(snap))


def cmd_mem(args):
    sid = int(args[0])
    rss = pss = hwm = 0
    n = 0
    for pid, _ in session_procs(sid):
        st = read(f"/proc/{pid}/status")
        m = re.search(r"VmRSS:\s+(\d+)", st)
        h = re.search(r"VmHWM:\s+(\d+)", st)
        if not m:
            continue
        n += 1
        rss += int(m.group(1))
        hwm += int(h.group(1)) if h else 0
        sm = read(f"/proc/{pid}/smaps_rollup")
        p = re.search(r"^Pss:\s+(\d+)", sm, re.M)
        pss += int(p.group(1)) if p else int(m.group(1))
    print(json.dumps({"nprocs": n, "rss_kb": rss, "pss_kb": pss, "hwm_kb": hwm}))


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_jsonline(path):
    for l in read(path).splitlines()[::-1]:
        l = l.strip()
        if l.startswith("{"):
            try:
                return json.loads(l)
            except ValueError:
                pass
    return None


def cpu_fields(s0, s1, rec):
    if not s0 or not s1:
        return
    wall = s1["t"] - s0["t"]
    rec["wall_s"] = round(wall, 3)
    if "ticks" in s0 and "ticks" in s1 and wall > 0:
        rec["fwd_cpu_pct"] = round(100.0 * (s1["ticks"] - s0["ticks"]) / HZ / wall, 1)
        rec["fwd_nprocs_end"] = s1.get("nprocs")
    d = [b - a for a, b in zip(s0["cpu"], s1["cpu"])]
    tot = sum(d[:8]) or 1
    ncpu = os.cpu_count() or 1
    idle = d[3] + d[4]
    rec["host_cpu_pct"] = round(100.0 * ncpu * (tot - idle) / tot, 1)  # % of one core; max = 100*ncpu
    rec["host_softirq_pct"] = round(100.0 * ncpu * d[6] / tot, 1)
    rec["softnet_drops"] = s1.get("softnet_drop", 0) - s0.get("softnet_drop", 0)
    if "foreign" in s0 and "foreign" in s1 and wall > 0:
        # processes alive at both snapshots: their growth; started in between: all of their time
        f0, f1 = s0["foreign"], s1["foreign"]
        ticks = sum(max(0, t - f0.get(p, 0)) for p, t in f1.items())
        rec["foreign_cpu_pct"] = round(100.0 * ticks / HZ / wall, 1)
    for side in ("udp_fw", "udp_fs"):
        a, b = s0.get(side) or {}, s1.get(side) or {}
        if a and b:
            rec[side + "_rcvbuf_errs"] = b.get("RcvbufErrors", 0) - a.get("RcvbufErrors", 0)
            rec[side + "_in_dgrams"] = b.get("InDatagrams", 0) - a.get("InDatagrams", 0)


def parse_sockperf(txt, rec):
    m50 = re.search(r"percentile 50\.000 =\s*([\d.]+)", txt)
    m99 = re.search(r"percentile 99\.000 =\s*([\d.]+)", txt)
    mv = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)", txt)
    if m50 and m99:
        rec["rtt_p50_us"] = float(m50.group(1))
        rec["rtt_p99_us"] = float(m99.group(1))
    if mv:
        rt, sent, recv = float(mv.group(1)), int(mv.group(2)), int(mv.group(3))
        rec["rtt_msgs"] = recv
        rec["rtt_tps"] = round(recv / rt, 1) if rt else 0
    if "rtt_p50_us" not in rec:
        rec["error"] = "sockperf: no result"


def cmd_record(args):
    out = args[0]
    rec = {}
    files = {}
    i = 1
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            files[a[2:]] = args[i + 1]
            i += 2
            continue
        k, _, v = a.partition("=")
        try:
            v = int(v)
        except ValueError:
            try:
                v = float(v)
            except ValueError:
                pass
        rec[k] = v
        i += 1
    cpu_fields(load(files.get("snap0", "")), load(files.get("snap1", "")), rec)
    if "iperf" in files:
        j = load(files["iperf"])
        if not j or "error" in j or "end" not in j:
            rec["error"] = (j or {}).get("error", "iperf3: no result")
        else:
            e = j["end"]
            rec["gbps"] = round(e["sum_received"]["bits_per_second"] / 1e9, 3)
            rec["gbps_sent"] = round(e["sum_sent"]["bits_per_second"] / 1e9, 3)
            rec["retrans"] = e["sum_sent"].get("retransmits", 0)
    if "crr" in files:
        j = load_jsonline(files["crr"])
        if not j:
            rec["error"] = "tcpcrr: no result"
        else:
            rec["cps"] = j["cps"]
            rec["crr_p50_us"] = j["lat_p50_us"]
            rec["crr_p99_us"] = j["lat_p99_us"]
            rec["crr_errors"] = sum(v for k, v in j.items() if k.startswith("err_"))
            rec["crr_raw"] = j
    if "udp-tx" in files:
        tx = load_jsonline(files["udp-tx"])
        rx = load_jsonline(files.get("udp-rx", ""))
        if not tx or not rx:
            rec["error"] = "udp: no result"
        else:
            secs = tx["secs"]
            rec["tx_pps"] = round(tx["sent"] / secs)
            rec["rx_pps"] = round(rx["rx_packets"] / secs)
            rec["rx_gbps"] = round(rx["rx_bytes"] * 8 / secs / 1e9, 3)  # UDP payload bits
            rec["loss_pct"] = round(100.0 * (1 - rx["rx_packets"] / tx["sent"]), 2) if tx["sent"] else None
            rec["tx_errors"] = tx["errors"]
            rec["srcs_at_server"] = rx["srcs"]
    if "sockperf" in files:
        parse_sockperf(read(files["sockperf"]), rec)
    if "idle" in files:
        j = load_jsonline(files["idle"])
        m0, m1 = load(files.get("mem0", "")), load(files.get("mem1", ""))
        if not j:
            rec["error"] = "tcpidle: no result"
        else:
            rec["idle_ok"] = j["ok"]
            rec["idle_failed"] = j["failed"]
            if m0 and m1:
                rec.update({"rss0_kb": m0["rss_kb"], "rss1_kb": m1["rss_kb"], "pss0_kb": m0["pss_kb"],
                            "pss1_kb": m1["pss_kb"], "hwm1_kb": m1["hwm_kb"], "nprocs0": m0["nprocs"],
                            "nprocs1": m1["nprocs"]})
                if j["ok"]:
                    rec["bytes_per_conn"] = round((m1["pss_kb"] - m0["pss_kb"]) * 1024 / j["ok"])
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    short = {k: v for k, v in rec.items() if k not in ("crr_raw",)}
    print("   ", json.dumps(short))


# ---------------------------------------------------------------- report

# (test, metric, column title, format, higher_is_better)
COLUMNS = [
    ("tcp1", "gbps", "TCP 1 stream Gbit/s", "{:.2f}", True),
    ("tcp1", "fwd_cpu_pct", "CPU% @1", "{:.0f}", None),
    ("tcp4", "gbps", "TCP 4 streams Gbit/s", "{:.2f}", True),
    ("tcp4", "fwd_cpu_pct", "CPU% @4", "{:.0f}", None),
    ("crr", "cps", "TCP conn/s", "{:,.0f}", True),
    ("crr", "fwd_cpu_pct", "CPU% conn", "{:.0f}", None),
    ("udp64x1", "rx_pps", "UDP 64B 1 flow kpps (loss%)", "kpps", True),
    ("udp64x16", "rx_pps", "UDP 64B 16 flows kpps (loss%)", "kpps", True),
    ("udp1400x1", "rx_pps", "UDP 1400B 1 flow kpps (loss%)", "kpps", True),
    ("udp1400x16", "rx_pps", "UDP 1400B 16 flows kpps (loss%)", "kpps", True),
    ("lat_udp", "rtt_p50_us", "UDP RTT p50/p99 us", "lat", False),
    ("lat_tcp", "rtt_p50_us", "TCP RTT p50/p99 us", "lat", False),
    ("idle", "bytes_per_conn", "RSS bytes/conn (1000 idle)", "idle", False),
]


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def cmd_report(args):
    raw, outdir = args[0], args[1]
    recs = [json.loads(l) for l in read(raw).splitlines() if l.strip().startswith("{")]
    meta = load(os.path.join(outdir, "meta.json")) or {}
    fwds = []
    for r in recs:
        if r.get("fwd") and r["fwd"] not in fwds:
            fwds.append(r["fwd"])
    tests = []
    for r in recs:
        if r.get("test") and r["test"] not in tests:
            tests.append(r["test"])
    base = meta.get("baseline", "route")

    # all numeric metrics: per (fwd, test, metric) list over reps
    groups = {}
    for r in recs:
        if "error" in r and not any(k in r for k in ("gbps", "cps", "rx_pps", "rtt_p50_us", "bytes_per_conn")):
            groups.setdefault((r["fwd"], r["test"], "error"), []).append(r["error"])
            continue
        for k, v in r.items():
            if isinstance(v, (int, float)) and k != "rep":
                groups.setdefault((r["fwd"], r["test"], k), []).append(v)
    # per-rep ratios vs baseline, same metric, same rep
    byrep = {}
    for r in recs:
        byrep[(r.get("fwd"), r.get("test"), r.get("rep"))] = r
    ratios = {}
    for (f, t, rep), r in byrep.items():
        b = byrep.get((base, t, rep))
        if not b:
            continue
        for k in ("gbps", "cps", "rx_pps", "rtt_p50_us", "rtt_p99_us"):
            if isinstance(r.get(k), (int, float)) and isinstance(b.get(k), (int, float)) and b[k]:
                ratios.setdefault((f, t, k), []).append(r[k] / b[k])

    summary = {"meta": meta, "baseline": base, "forwarders": fwds, "tests": tests, "results": {}}
    rows_csv = []
    for (f, t, k), vals in sorted(groups.items()):
        if k == "error":
            summary["results"].setdefault(f, {}).setdefault(t, {})["errors"] = vals
            continue
        med = median(vals)
        entry = {"median": med, "values": vals, "n": len(vals)}
        if (f, t, k) in ratios:
            entry["ratio_to_baseline_median"] = round(median(ratios[(f, t, k)]), 4)
        summary["results"].setdefault(f, {}).setdefault(t, {})[k] = entry
        rows_csv.append({"forwarder": f, "test": t, "metric": k, "median": med, "n": len(vals),
                         "ratio_to_baseline": entry.get("ratio_to_baseline_median", ""),
                         "values": " ".join(str(v) for v in vals)})
    with open(os.path.join(outdir, "results.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    with open(os.path.join(outdir, "results.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["forwarder", "test", "metric", "median", "n", "ratio_to_baseline", "values"])
        w.writeheader()
        w.writerows(rows_csv)

    def get(f, t, k):
        e = summary["results"].get(f, {}).get(t, {}).get(k)
        return e["median"] if e else None

    def ratio(f, t, k):
        e = summary["results"].get(f, {}).get(t, {}).get(k)
        return e.get("ratio_to_baseline_median") if e else None

    def cell(f, t, k, fmt, show_ratio=True):
        v = get(f, t, k)
        if v is None:
            errs = summary["results"].get(f, {}).get(t, {}).get("errors")
            return "fail" if errs else "–"
        if fmt == "kpps":
            loss = get(f, t, "loss_pct")
            s = f"{v / 1000:,.0f}" + (f" ({loss:.0f}%)" if loss is not None else "")
        elif fmt == "lat":
            p99 = get(f, t, "rtt_p99_us")
            s = f"{v:.0f}/{p99:.0f}" if p99 is not None else f"{v:.0f}"
        elif fmt == "idle":
            ok = get(f, t, "idle_ok")
            s = f"{v:,.0f}"
            if ok is not None and ok < int(meta.get("idle_conns", 1000)):
                s += f" (only {ok:.0f} ok)"
        else:
            s = fmt.format(v)
        r = ratio(f, t, k)
        if show_ratio and r is not None and f != base:
            s += f" ×{r:.2f}"
        return s

    L = []
    L.append("# Forwarder baseline results\n")
    if meta:
        L.append(f"Run: {meta.get('started', '')} – host `{meta.get('kernel', '')}`, {meta.get('ncpu', '')} CPUs; "
                 f"mode `{meta.get('mode', '')}`, {meta.get('reps', '')} repetitions (medians shown), "
                 f"TCP {meta.get('tcp_secs', '')} s, UDP {meta.get('udp_secs', '')} s, conn-rate {meta.get('crr_secs', '')} s "
                 f"(concurrency {meta.get('crr_conc', '')}), latency {meta.get('lat_secs', '')} s; pinning: {meta.get('pin', 'none')}.\n")
    L.append(f"`×r` = median over repetitions of (forwarder ÷ `{base}` in the same repetition); for RTT, ×r > 1 means slower. "
             "CPU% is the forwarder's own processes (utime+stime over its whole process tree, 100 = one core; kernel paths have no process). "
             "UDP kpps counts datagrams that **arrived at the server** divided by the send duration; loss% = 1 − received/sent.\n")
    # table 1: throughput & rates
    hdr = ["forwarder", "TCP 1 stream Gbit/s", "CPU%", "TCP 4 streams Gbit/s", "CPU%", "TCP conn/s", "CPU%"]
    L.append("\n## TCP\n")
    L.append("| " + " | ".join(hdr + ["TCP RTT p50/p99 µs", "idle conns: bytes/conn (PSS)"]) + " |")
    L.append("|" + "---|" * (len(hdr) + 2))
    for f in fwds:
        row = [f, cell(f, "tcp1", "gbps", "{:.2f}"), cell(f, "tcp1", "fwd_cpu_pct", "{:.0f}", False),
               cell(f, "tcp4", "gbps", "{:.2f}"), cell(f, "tcp4", "fwd_cpu_pct", "{:.0f}", False),
               cell(f, "crr", "cps", "{:,.0f}"), cell(f, "crr", "fwd_cpu_pct", "{:.0f}", False),
               cell(f, "lat_tcp", "rtt_p50_us", "lat"), cell(f, "idle", "bytes_per_conn", "idle", False)]
        L.append("| " + " | ".join(row) + " |")
    L.append("\n## UDP (kpps received at server, loss %)\n")
    uh = ["forwarder", "64 B × 1 flow", "CPU%", "64 B × 16 flows", "CPU%", "1400 B × 1 flow", "CPU%", "1400 B × 16 flows", "CPU%",
          "UDP RTT p50/p99 µs"]
    L.append("| " + " | ".join(uh) + " |")
    L.append("|" + "---|" * len(uh))
    for f in fwds:
        if not any(t.startswith("udp") or t == "lat_udp" for t in summary["results"].get(f, {})):
            continue
        row = [f]
        for t in ("udp64x1", "udp64x16", "udp1400x1", "udp1400x16"):
            row += [cell(f, t, "rx_pps", "kpps"), cell(f, t, "fwd_cpu_pct", "{:.0f}", False)]
        row.append(cell(f, "lat_udp", "rtt_p50_us", "lat"))
        L.append("| " + " | ".join(row) + " |")
    # generator-side figures
    L.append("\n## Generator side (medians): UDP packets the sender handed to the kernel, host CPU\n")
    L.append("| forwarder | test | sent kpps | received kpps | loss % | fwd-side rcvbuf drops | server rcvbuf drops | host CPU % (of 200) | softirq % |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for f in fwds:
        for t in ("udp64x1", "udp64x16", "udp1400x1", "udp1400x16"):
            if get(f, t, "tx_pps") is None:
                continue
            def g(k, fmt="{:,.0f}"):
                v = get(f, t, k)
                return fmt.format(v) if v is not None else "–"
            L.append(f"| {f} | {t} | {get(f, t, 'tx_pps') / 1000:,.0f} | {get(f, t, 'rx_pps') / 1000:,.0f} | {g('loss_pct', '{:.1f}')} | "
                     f"{g('udp_fw_rcvbuf_errs')} | {g('udp_fs_rcvbuf_errs')} | {g('host_cpu_pct', '{:.0f}')} | {g('host_softirq_pct', '{:.0f}')} |")
    L.append("\n## Host CPU during TCP tests (median % of one core, 200 = both cores busy)\n")
    L.append("| forwarder | tcp1 host | tcp4 host | crr host | tcp1 retrans | crr errors |")
    L.append("|---|---|---|---|---|---|")
    for f in fwds:
        def g(t, k, fmt="{:.0f}"):
            v = get(f, t, k)
            return fmt.format(v) if v is not None else "–"
        L.append(f"| {f} | {g('tcp1', 'host_cpu_pct')} | {g('tcp4', 'host_cpu_pct')} | {g('crr', 'host_cpu_pct')} | "
                 f"{g('tcp1', 'retrans')} | {g('crr', 'crr_errors')} |")
    errs = []
    for f in fwds:
        for t, d in summary["results"].get(f, {}).items():
            if "errors" in d:
                errs.append(f"- {f} / {t}: {len(d['errors'])}× {sorted(set(map(str, d['errors'])))}")
    if errs:
        L.append("\n## Failed measurements\n")
        L += errs
    with open(os.path.join(outdir, "results.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")
    print("\n".join(L))


def cmd_select(args):
    outdir, maxpct, runs = args[0], float(args[1]), args[2:]
    os.makedirs(outdir, exist_ok=True)
    kept, sel = [], []
    for run in runs:
        for l in read(os.path.join(run, "raw.jsonl")).splitlines():
            if not l.strip().startswith("{"):
                continue
            r = json.loads(l)
            fc = r.get("foreign_cpu_pct")
            ok = fc is None or fc <= maxpct
            sel.append(f"{'keep' if ok else 'drop'} {os.path.basename(run.rstrip('/'))} rep {r.get('rep')} "
                       f"{r.get('fwd')} {r.get('test')} foreign_cpu_pct={fc}")
            if ok:
                r["src"] = os.path.basename(run.rstrip("/"))
                kept.append(r)
    with open(os.path.join(outdir, "raw.jsonl"), "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in kept)
    with open(os.path.join(outdir, "selection.txt"), "w") as fh:
        fh.write(f"records with foreign_cpu_pct <= {maxpct:g} from: {' '.join(runs)}\n" + "\n".join(sel) + "\n")
    meta = load(os.path.join(runs[0], "meta.json")) or {}
    meta["selected_from"] = runs
    meta["max_foreign_cpu_pct"] = maxpct
    with open(os.path.join(outdir, "meta.json"), "w") as fh:
        json.dump(meta, fh)
    cmd_report([os.path.join(outdir, "raw.jsonl"), outdir])


def cmd_logscan(args):
    """Summarise r*-FWD-*.log: lines that are neither the command line, nor "info:" lines, nor
    stats JSON (warnings, errors, crashes, "forwarder exited"), and non-zero "failed"/"drops"
    counters from stats lines ({"type":"stats","rules":[{"failed":N,"drops":{...}}]})."""
    logdir, fwd = args[0], args[1]
    odd, counters = {}, []
    files = sorted(glob.glob(os.path.join(logdir, f"r*-{fwd}-*.log")))
    for path in files:
        name = os.path.basename(path)[:-4]
        lines = read(path).splitlines()[1:]  # line 1 = the command
        for l in lines:
            if l.startswith('{"type":"stats"'):
                try:
                    j = json.loads(l)
                except ValueError:
                    odd.setdefault(l[:200], []).append(name)
                    continue
                for r in j.get("rules", []):
                    bad = {k: v for k, v in (r.get("drops") or {}).items() if v}
                    if r.get("failed"):
                        bad["failed"] = r["failed"]
                    # TCP: connections still open after the test ended (UDP sessions legitimately
                    # stay until their idle timeout)
                    if r.get("active") and str(r.get("listen", "")).startswith("tcp"):
                        bad["still_active"] = r["active"]
                    if bad:
                        what = (f"accepted {r.get('accepted')}" if "accepted" in r
                                else f"sessions {r.get('sessions')}, datagrams up {r.get('dgrams_up')}")
                        counters.append(f"{name}: {what}, " +
                                        ", ".join(f"{k} {v}" for k, v in bad.items()))
                continue
            if " info: " in l or not l.strip():
                continue
            key = re.sub(r"^\S+Z ", "", l)[:200]  # without the timestamp, to group repeats
            odd.setdefault(key, []).append(name)
    if not files:
        return
    if not odd and not counters:
        print(f"\n{fwd} logs: nothing unusual ({len(files)} logs, no warnings/errors, no failed connections or drops)")
        return
    print(f"\n{fwd} logs ({logdir}):")
    for k, names in odd.items():
        print(f"  {len(names)}x {k}   [{', '.join(sorted(set(names))[:4])}{', ...' if len(set(names)) > 4 else ''}]")
    for c in counters:
        print(f"  stats {c}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"snap": cmd_snap, "mem": cmd_mem, "record": cmd_record, "report": cmd_report,
     "select": cmd_select, "logscan": cmd_logscan}[cmd](args)
