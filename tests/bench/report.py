#!/usr/bin/env python3
"""Formats run.sh's results (JSON lines) as Markdown tables.

Input: one JSON object per (scenario, round, proxy) run -- the load generator's output plus
what run.sh measured around it (disk writes, database contents, idle RSS) -- and one "meta"
object (machine, versions, load average before and after).

Each figure is the median over the rounds. Each scenario gets a table with ratio columns
"x stunnel" (row / stunnel, measured side by side in the same run); the run ends with one
summary table holding every ratio and the targets of issue 10, and, with more than one round,
a table of the same ratios taken within each round first (and, with several mailtap binaries,
each one against the first): the machine's drift between rounds cancels out of those.
Rates: higher is better; latencies, CPU, memory and disk: lower is better. Only formatting happens here; nothing in
this file is on the measured path.
"""
import json
import statistics
import sys

MIB = 1024.0
DIRECT = "direct-tls"
BASE = "stunnel"


def is_direct(r):
    return r["label"] == DIRECT


def cpu_s(r):
    """The proxy's CPU seconds; for the direct row, the TLS client's own (no proxy exists)."""
    if is_direct(r):
        return r["client_cpu_s"]
    return r.get("proxy_cpu_settled_s", r["proxy_cpu_s"])


def relayed_mib(r):
    return r["messages_done"] * r["size"] / (1 << 20)


def per_mib(value):
    return lambda r: value(r) / relayed_mib(r) if relayed_mib(r) else None


def cpu_ms_per_mib(r):
    mib = relayed_mib(r)
    return 1000.0 * cpu_s(r) / mib if mib else None


def cpu_ms_per_message(r):
    return 1000.0 * cpu_s(r) / r["messages_done"] if r["messages_done"] else None


def cpu_ms_per_session(r):
    return 1000.0 * cpu_s(r) / r["sessions_done"] if r["sessions_done"] else None


def storage_cpu_s(r):
    """CPU seconds of the recorder's storage thread (part of cpu_s), for recording rows."""
    if kind(r["label"]) != "record" or "storage_cpu_settled_s" not in r:
        return None
    return r["storage_cpu_settled_s"]


def storage_ms_per_mib(r):
    mib = relayed_mib(r)
    return 1000.0 * storage_cpu_s(r) / mib if mib and storage_cpu_s(r) is not None else None


def storage_ms_per_message(r):
    n = r["messages_done"]
    return 1000.0 * storage_cpu_s(r) / n if n and storage_cpu_s(r) is not None else None


def peak_rss_mib(r):
    return None if is_direct(r) else r["proxy_peak_rss_kib"] / MIB


def disk_mib_per_mib(r):
    if "disk_write_bytes" not in r or not relayed_mib(r):
        return None
    return r["disk_write_bytes"] / (1 << 20) / relayed_mib(r)


def db_mib_per_mib(r):
    if "db_bytes" not in r or not relayed_mib(r):
        return None
    return r["db_bytes"] / (1 << 20) / relayed_mib(r)


def disk_kib_per_message(r):
    if "disk_write_bytes" not in r or not r["messages_done"]:
        return None
    return r["disk_write_bytes"] / 1024.0 / r["messages_done"]


def idle_kib_per_session(r):
    if "idle_rss_kib" not in r:
        return None
    return (r["idle_rss_kib"] - r["idle_rss_before_kib"]) / max(1, r["connections"])


def recorded_per_sent(r):
    """Messages in the database after the proxy stopped / messages acknowledged to the client."""
    if "db_messages" not in r or not r["messages_done"]:
        return None
    return r["db_messages"] / r["messages_done"]


def hold_kib_per_session(r):
    held = r["proxy_rss_at_hold_kib"] - r["proxy_rss_before_kib"]
    return held / max(1, r["connections"])


def timeline(r):
    """(seconds, MiB) per interval of the run; the last interval ends with the run."""
    step = (r.get("timeline_ms") or 0) / 1000.0
    if not step:
        return []
    return [(max(1e-3, min(step, r["wall_s"] - i * step)), b / (1 << 20))
            for i, b in enumerate(r["timeline_bytes"])]


def first_second_mib_per_s(r):
    """Body MiB/s the client could write in the first second (is the relay at full speed?)."""
    t = timeline(r)
    n = max(1, round(1.0 / t[0][0])) if t else 0
    window = t[:n]
    return sum(m for _, m in window) / sum(s for s, _ in window) if window else None


def mib_at_full_speed(r):
    """Body MiB written before the first interval that ran at under half the first one's rate:
    how much the relay took at full speed before the recorder's queue pushed back."""
    t = timeline(r)
    if not t:
        return None
    full = t[0][1] / t[0][0]
    total = 0.0
    for seconds, mib in t:
        if mib / seconds < 0.5 * full:
            break
        total += mib
    return total


def after_first_second_mib_per_s(r):
    t = timeline(r)
    n = max(1, round(1.0 / t[0][0])) if t else 0
    rest = t[n:]
    return sum(m for _, m in rest) / sum(s for s, _ in rest) if rest else None


# name -> (function, format, higher is better, make a ratio column)
METRICS = {
    "MiB/s": (lambda r: r["mib_per_s"], "{:.1f}", True, True),
    "msgs/s": (lambda r: r["messages_per_s"], "{:.1f}", True, True),
    "sessions/s": (lambda r: r["sessions_per_s"], "{:.0f}", True, True),
    "p50 txn ms": (lambda r: r["p50_ms"], "{:.2f}", False, True),
    "p99 txn ms": (lambda r: r["p99_ms"], "{:.2f}", False, True),
    "p50 session ms": (lambda r: r["p50_ms"], "{:.2f}", False, True),
    "p99 session ms": (lambda r: r["p99_ms"], "{:.2f}", False, True),
    "CPU ms/MiB": (cpu_ms_per_mib, "{:.2f}", False, True),
    "CPU ms/msg": (cpu_ms_per_message, "{:.3f}", False, True),
    "CPU ms/session": (cpu_ms_per_session, "{:.3f}", False, True),
    "storage thread ms/MiB": (storage_ms_per_mib, "{:.2f}", False, False),
    "storage thread ms/msg": (storage_ms_per_message, "{:.3f}", False, False),
    "peak RSS MiB": (peak_rss_mib, "{:.1f}", False, True),
    "disk writes MiB/MiB": (disk_mib_per_mib, "{:.2f}", False, False),
    "db size MiB/MiB": (db_mib_per_mib, "{:.2f}", False, False),
    "disk writes KiB/msg": (disk_kib_per_message, "{:.1f}", False, False),
    "NOOP p50 us": (lambda r: r["noop_p50_us"], "{:.1f}", False, True),
    "NOOP p90 us": (lambda r: r["noop_p90_us"], "{:.1f}", False, True),
    "NOOP p99 us": (lambda r: r["noop_p99_us"], "{:.1f}", False, True),
    "RSS KiB/idle session": (idle_kib_per_session, "{:.1f}", False, True),
    "RSS KiB/open session": (hold_kib_per_session, "{:.0f}", False, True),
    "threads with all open": (lambda r: r["proxy_threads_at_hold"], "{:.0f}", False, False),
    "recorded/sent msgs": (recorded_per_sent, "{:.2f}", True, False),
    "MiB at full speed": (mib_at_full_speed, "{:.1f}", True, False),
    "MiB/s first 1 s": (first_second_mib_per_s, "{:.1f}", True, True),
    "MiB/s after 1 s": (after_first_second_mib_per_s, "{:.1f}", True, True),
}

THROUGHPUT = ["MiB/s", "p50 txn ms", "CPU ms/MiB", "storage thread ms/MiB", "peak RSS MiB",
              "disk writes MiB/MiB", "db size MiB/MiB"]
SETUP = ["sessions/s", "p50 session ms", "p99 session ms", "CPU ms/session", "peak RSS MiB"]

# scenario -> (heading, metrics)
SCENARIOS = {
    "setup": ("Session setup, 16 concurrent (connect, greeting, EHLO, QUIT; upstream STARTTLS "
              "handshake each time)", SETUP),
    "setup200": ("Session setup, 200 concurrent", SETUP),
    "throughput": ("Throughput, 10 MiB messages (the earlier shape: 2 sessions side by side)",
                   THROUGHPUT),
    "throughput32": ("Throughput, 32 MiB messages (one session)", THROUGHPUT),
    "throughput256": ("Throughput and memory, 256 MiB messages (one session; peak RSS = VmHWM "
                      "with the message in flight)", THROUGHPUT),
    "sequential": ("Sequential 4 KiB messages (one session, one after another)",
                   ["msgs/s", "p50 txn ms", "p99 txn ms", "CPU ms/msg",
                    "storage thread ms/msg", "disk writes KiB/msg", "peak RSS MiB"]),
    "noop": ("NOOP round trip inside one session",
             ["NOOP p50 us", "NOOP p90 us", "NOOP p99 us"]),
    "idle": ("Idle established sessions (EHLO done, all held open; RSS read after they idled)",
             ["RSS KiB/idle session", "peak RSS MiB", "threads with all open", "CPU ms/session"]),
    "concurrency": ("Concurrency (all sessions open at once after EHLO + AUTH PLAIN, then "
                    "small messages)",
                    ["msgs/s", "p50 txn ms", "p99 txn ms", "RSS KiB/open session",
                     "peak RSS MiB", "threads with all open", "CPU ms/session"]),
    "slowdisk": ("Slow disk (the recording database on a throttled device; other rows need no "
                 "disk and show full speed)",
                 ["MiB at full speed", "MiB/s first 1 s", "MiB/s after 1 s", "MiB/s", "p99 txn ms",
                  "peak RSS MiB", "recorded/sent msgs"]),
}

# Issue 10's targets: (scenario, metric) -> (text, check(kind, value, stunnel value) -> bool)
TARGETS = {
    ("throughput32", "MiB/s"): ("record >= 0.8x, no-record >= 1.0x",
                                lambda k, v, b: v >= (0.8 if k == "record" else 1.0) * b),
    ("throughput256", "MiB/s"): ("record >= 0.8x, no-record >= 1.0x",
                                 lambda k, v, b: v >= (0.8 if k == "record" else 1.0) * b),
    ("throughput32", "CPU ms/MiB"): ("record <= 1.5x, no-record <= 1.0x",
                                     lambda k, v, b: v <= (1.5 if k == "record" else 1.0) * b),
    ("throughput256", "CPU ms/MiB"): ("record <= 1.5x, no-record <= 1.0x",
                                      lambda k, v, b: v <= (1.5 if k == "record" else 1.0) * b),
    ("throughput256", "peak RSS MiB"): ("<= stunnel + 16 MiB", lambda k, v, b: v <= b + 16),
    ("throughput32", "disk writes MiB/MiB"): ("record <= 1.1 (WAL included)",
                                              lambda k, v, b: k != "record" or v <= 1.1),
    ("throughput256", "disk writes MiB/MiB"): ("record <= 1.1 (WAL included)",
                                               lambda k, v, b: k != "record" or v <= 1.1),
    ("sequential", "CPU ms/msg"): ("record <= 1.5x",
                                   lambda k, v, b: k != "record" or v <= 1.5 * b),
    ("setup", "sessions/s"): (">= 1.3x", lambda k, v, b: v >= 1.3 * b),
    ("setup", "CPU ms/session"): ("<= 0.7x", lambda k, v, b: v <= 0.7 * b),
    ("setup200", "sessions/s"): (">= 1.3x", lambda k, v, b: v >= 1.3 * b),
    ("setup200", "CPU ms/session"): ("<= 0.7x", lambda k, v, b: v <= 0.7 * b),
    ("noop", "NOOP p50 us"): ("<= stunnel + 10 us", lambda k, v, b: v <= b + 10),
    ("noop", "NOOP p99 us"): ("<= 1.2x", lambda k, v, b: v <= 1.2 * b),
    ("idle", "RSS KiB/idle session"): ("<= 0.5x and < 48 KiB",
                                       lambda k, v, b: v <= 0.5 * b and v < 48),
    ("slowdisk", "recorded/sent msgs"): ("record: 1.00 (never drops)",
                                         lambda k, v, b: k != "record" or v >= 1.0),
    ("slowdisk", "MiB at full speed"): ("record: full speed until the queue is full, then slower, "
                                        "nothing dropped (see the recorded counts)", None),
}

SUMMARY = [
    ("setup", ["sessions/s", "CPU ms/session"]),
    ("setup200", ["sessions/s", "CPU ms/session"]),
    ("throughput", ["MiB/s", "CPU ms/MiB", "peak RSS MiB"]),
    ("throughput32", ["MiB/s", "CPU ms/MiB", "disk writes MiB/MiB", "db size MiB/MiB"]),
    ("throughput256", ["MiB/s", "CPU ms/MiB", "peak RSS MiB", "disk writes MiB/MiB"]),
    ("sequential", ["CPU ms/msg", "msgs/s", "disk writes KiB/msg"]),
    ("noop", ["NOOP p50 us", "NOOP p99 us"]),
    ("idle", ["RSS KiB/idle session"]),
    ("concurrency", ["RSS KiB/open session", "CPU ms/session"]),
    ("slowdisk", ["MiB at full speed", "MiB/s first 1 s", "MiB/s after 1 s", "MiB/s",
                  "recorded/sent msgs"]),
]


def kind(label):
    if label.endswith("-no-record"):
        return "no-record"
    if label.endswith("-record"):
        return "record"
    return label


def binary(label):
    """The mailtap binary a row ran ("new" of "new-no-record"), or None for stunnel and
    direct-tls."""
    k = kind(label)
    return label[: -len(k) - 1] if k != label else None


def mailtap_labels(rows):
    """The rows' mailtap labels, in the order they ran."""
    labels = []
    for r in rows:
        if r["label"] not in labels and binary(r["label"]) is not None:
            labels.append(r["label"])
    return labels


def median(rows, metric):
    values = [v for v in (METRICS[metric][0](r) for r in rows) if v is not None]
    return statistics.median(values) if values else None


def fmt(metric, v):
    return "-" if v is None else METRICS[metric][1].format(v)


def ratio(v, b):
    return f"{v / b:.2f}" if v is not None and b else "-"


def by_label(rows):
    labels = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
    return {label: [r for r in rows if r["label"] == label] for label in labels}


def shape(r, rounds):
    s = f"{r['connections']} concurrent, {r['sessions']} sessions"
    if r["messages_per_session"]:
        size = r["size"]
        size_text = f"{size / (1 << 20):g} MiB" if size >= 1 << 20 else f"{size / 1024:g} KiB"
        s += f", {r['messages_per_session']} x {size_text} message(s) each"
    if r.get("noops_per_session"):
        s += f", {r['noops_per_session']} NOOPs each"
    return s + f"; median of {rounds} round(s)"


def recorded_text(rows):
    """Messages and sessions found in the database after the proxy stopped, against sent."""
    if not any("db_messages" in r for r in rows):
        return None
    written = sum(r.get("db_messages", 0) for r in rows)
    sent = sum(r["messages_done"] for r in rows)
    sessions = sum(r.get("db_sessions_closed", 0) for r in rows)
    text = f"{sessions}/{sum(r['sessions_done'] for r in rows)} sessions"
    return f"{written}/{sent} messages, " + text if sent else text


def table(scenario, rows):
    heading, metrics = SCENARIOS[scenario]
    groups = by_label(rows)
    rounds = max(len(g) for g in groups.values())
    base = groups.get(BASE)
    ratio_metrics = [m for m in metrics if METRICS[m][3]]
    out = [f"### {heading}", "", f"Load: {shape(rows[0], rounds)}.", ""]
    names = ["proxy"] + metrics + ["errors"] + [f"{m} x stunnel" for m in ratio_metrics]
    out.append("| " + " | ".join(names) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(names) - 1)) + "|")
    notes = []
    for label, group in groups.items():
        cells = [label] + [fmt(m, median(group, m)) for m in metrics]
        cells.append(str(sum(r["errors"] for r in group)))
        for m in ratio_metrics:
            cells.append(ratio(median(group, m), median(base, m) if base else None))
        out.append("| " + " | ".join(cells) + " |")
        errors = [r for r in group if r["errors"]]
        if errors:
            notes.append(f"{label}: {sum(r['errors'] for r in errors)} error(s) in "
                         f"{len(errors)} round(s), first: {errors[0]['first_error']}")
        recorded = recorded_text(group)
        if recorded:
            notes.append(f"{label}: recorded in the database / acknowledged to the client: "
                         f"{recorded}")
        if scenario == "slowdisk" and group[0].get("timeline_ms"):
            r = group[len(group) // 2]
            step = r["timeline_ms"]
            series = " ".join(f"{m / s:.0f}" for s, m in timeline(r))
            notes.append(f"{label}: body MiB/s per {step} ms (round {r['round']}): {series}")
    if groups.get(DIRECT) and any(m.startswith("CPU") for m in metrics):
        notes.append(f"{DIRECT}: the load generator speaking TLS to the sink itself, no proxy; "
                     "its CPU column is the TLS client's own CPU (what the encryption alone "
                     "costs), its memory columns do not apply.")
    out += [""] + notes if notes else []
    return "\n".join(out) + "\n"


def summary(rows):
    scenarios = {s: [r for r in rows if r["scenario"] == s] for s, _ in SUMMARY}
    labels = mailtap_labels(rows)
    out = ["### Every ratio against stunnel (medians; x = row / stunnel)", ""]
    names = (["scenario", "metric", BASE, DIRECT] + labels + [f"{label} x stunnel" for label in labels]
             + ["target (issue 10)", "met"])
    out.append("| " + " | ".join(names) + " |")
    out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(names) - 4) + ["---", "---"]) + "|")
    for scenario, metrics in SUMMARY:
        groups = by_label(scenarios[scenario])
        if not groups:
            continue
        for m in metrics:
            b = median(groups[BASE], m) if BASE in groups else None
            d = median(groups[DIRECT], m) if DIRECT in groups else None
            values = {label: median(groups[label], m) if label in groups else None
                      for label in labels}
            target, check = TARGETS.get((scenario, m), ("", None))
            met = []
            for label in labels:
                if check and values[label] is not None:
                    try:
                        ok = check(kind(label), values[label], b)
                    except TypeError:  # the target needs stunnel's figure and there is none
                        continue
                    met.append(f"{label}: {'yes' if ok else 'NO'}")
            cells = ([scenario, m, fmt(m, b), fmt(m, d)] + [fmt(m, values[label]) for label in labels]
                     + [ratio(values[label], b) if METRICS[m][3] else "-" for label in labels]
                     + [target, ", ".join(met)])
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def by_round(group, metric):
    values = {}
    for r in group:
        v = METRICS[metric][0](r)
        if v is not None:
            values[r["round"]] = v
    return values


def paired(a, b, higher_is_better):
    """Median over the rounds both ran of a / b, and in how many of them a did better."""
    ratios = [a[n] / b[n] for n in sorted(set(a) & set(b)) if b[n]]
    if not ratios:
        return None
    better = sum(1 for x in ratios if (x > 1 if higher_is_better else x < 1))
    return statistics.median(ratios), better, len(ratios)


def round_by_round(rows):
    labels = mailtap_labels(rows)
    binaries = []
    for label in labels:
        if binary(label) not in binaries:
            binaries.append(binary(label))
    # Each later binary's row against the first binary's row of the same kind.
    pairs = [(label, f"{binaries[0]}-{kind(label)}") for label in labels
             if binary(label) != binaries[0] and f"{binaries[0]}-{kind(label)}" in labels]
    out = ["### Round by round (each round's ratio first, then their median; \"better\": rounds "
           "in which the row did better)", ""]
    names = (["scenario", "metric"] + [f"{label} x stunnel" for label in labels]
             + [f"{a} / {b}" for a, b in pairs] + [f"{a} better than {b}" for a, b in pairs])
    out.append("| " + " | ".join(names) + " |")
    out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(names) - 2)) + "|")
    for scenario, metrics in SUMMARY:
        groups = by_label([r for r in rows if r["scenario"] == scenario])
        if not groups:
            continue
        for m in metrics:
            if not METRICS[m][3]:
                continue
            higher = METRICS[m][2]
            values = {label: by_round(groups.get(label, []), m) for label in labels}
            base = by_round(groups.get(BASE, []), m)
            cells = [scenario, m]
            for label in labels:
                p = paired(values[label], base, higher)
                cells.append(f"{p[0]:.2f}" if p else "-")
            compared = [paired(values[a], values[b], higher) for a, b in pairs]
            cells += [f"{p[0]:.2f}" if p else "-" for p in compared]
            cells += [f"{p[1]} of {p[2]}" if p else "-" for p in compared]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main():
    rows, meta = [], {}
    for line in open(sys.argv[1]):
        if line.strip():
            obj = json.loads(line)
            if "meta" in obj:
                meta.update(obj["meta"])
            else:
                rows.append(obj)
    keys = ("machine", "versions", "mode", "load_before", "load_after", "slow_disk", "database_disk")
    for key in keys:
        if key in meta:
            print(f"- {key.replace('_', ' ')}: {meta[key]}")
    print()
    for scenario in SCENARIOS:
        mine = [r for r in rows if r["scenario"] == scenario]
        if mine:
            print(table(scenario, mine))
    print(summary(rows))
    if max((r["round"] for r in rows), default=1) > 1:
        print(round_by_round(rows))


if __name__ == "__main__":
    main()
