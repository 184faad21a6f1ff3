#!/usr/bin/env python3
"""Formats the load generator's JSON lines (one per scenario and proxy) as Markdown tables.

Each scenario gets its own columns, then ratio columns "x stunnel" = mailtap / stunnel for
the figures that matter for that scenario (higher is better for rates, lower for the rest).
Only formatting happens here; nothing in this file is on the measured path.
"""
import json
import sys

MIB = 1024.0


def cpu_ms_per_session(r):
    return 1000.0 * r["proxy_cpu_s"] / max(1, r["sessions_done"])


def cpu_ms_per_mib(r):
    mib = r["messages_done"] * r["size"] / (1 << 20)
    return 1000.0 * r["proxy_cpu_s"] / mib if mib else 0.0


def cpu_ms_per_message(r):
    return 1000.0 * r["proxy_cpu_s"] / max(1, r["messages_done"])


def kib_per_session(r):
    held = r["proxy_rss_at_hold_kib"] - r["proxy_rss_before_kib"]
    return held / max(1, r["connections"])


# (heading, function, format, ratio wanted)
SCENARIOS = {
    "setup": (
        "Session setup rate (connect, greeting, EHLO, QUIT; upstream STARTTLS handshake each time)",
        [("sessions/s", lambda r: r["sessions_per_s"], "{:.0f}", True),
         ("p50 session ms", lambda r: r["p50_ms"], "{:.2f}", True),
         ("p99 session ms", lambda r: r["p99_ms"], "{:.2f}", True),
         ("proxy CPU ms/session", cpu_ms_per_session, "{:.3f}", True),
         ("peak RSS MiB", lambda r: r["proxy_peak_rss_kib"] / MIB, "{:.1f}", True),
         ("max threads", lambda r: r["proxy_max_threads"], "{:d}", False),
         ("errors", lambda r: r["errors"], "{:d}", False)]),
    "throughput": (
        "Throughput (few sessions, large messages through DATA)",
        [("MiB/s", lambda r: r["mib_per_s"], "{:.1f}", True),
         ("msgs/s", lambda r: r["messages_per_s"], "{:.2f}", False),
         ("p50 txn ms", lambda r: r["p50_ms"], "{:.0f}", True),
         ("p99 txn ms", lambda r: r["p99_ms"], "{:.0f}", False),
         ("proxy CPU ms/MiB", cpu_ms_per_mib, "{:.2f}", True),
         ("peak RSS MiB", lambda r: r["proxy_peak_rss_kib"] / MIB, "{:.1f}", True),
         ("errors", lambda r: r["errors"], "{:d}", False)]),
    "sequential": (
        "Per-transaction cost (one session, many small messages one after another)",
        [("msgs/s", lambda r: r["messages_per_s"], "{:.0f}", True),
         ("p50 txn ms", lambda r: r["p50_ms"], "{:.2f}", True),
         ("p99 txn ms", lambda r: r["p99_ms"], "{:.2f}", True),
         ("proxy CPU ms/msg", cpu_ms_per_message, "{:.3f}", True),
         ("peak RSS MiB", lambda r: r["proxy_peak_rss_kib"] / MIB, "{:.1f}", False),
         ("errors", lambda r: r["errors"], "{:d}", False)]),
    "concurrency": (
        "Concurrency (all sessions open at once after EHLO + AUTH PLAIN, then small messages)",
        [("sessions", lambda r: r["sessions_done"], "{:d}", False),
         ("msgs/s", lambda r: r["messages_per_s"], "{:.0f}", True),
         ("p50 txn ms", lambda r: r["p50_ms"], "{:.1f}", True),
         ("p99 txn ms", lambda r: r["p99_ms"], "{:.1f}", True),
         ("RSS KiB/open session", kib_per_session, "{:.0f}", True),
         ("peak RSS MiB", lambda r: r["proxy_peak_rss_kib"] / MIB, "{:.1f}", True),
         ("threads with all open", lambda r: r["proxy_threads_at_hold"], "{:d}", True),
         ("proxy CPU ms/session", cpu_ms_per_session, "{:.2f}", True),
         ("errors", lambda r: r["errors"], "{:d}", False)]),
}


def shape(r):
    s = f"{r['connections']} concurrent, {r['sessions']} sessions"
    if r["messages_per_session"]:
        size = r["size"]
        size_text = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
        s += f", {r['messages_per_session']} x {size_text} message(s) each"
    return s


def table(scenario, rows):
    heading, columns = SCENARIOS[scenario]
    base = next((r for r in rows if r["label"] == "stunnel"), None)
    ratio_columns = [c for c in columns if c[3]]
    out = [f"### {heading}", "", f"Load: {shape(rows[0])}.", ""]
    names = ["proxy"] + [c[0] for c in columns] + [f"{c[0]} x stunnel" for c in ratio_columns]
    out.append("| " + " | ".join(names) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(names) - 1)) + "|")
    for r in rows:
        cells = [r["label"]]
        for _, f, fmt, _ in columns:
            v = f(r)
            cells.append(fmt.format(int(v) if fmt == "{:d}" else v))
        for _, f, _, _ in ratio_columns:
            b = f(base) if base else 0
            cells.append(f"{f(r) / b:.2f}" if b else "-")
        out.append("| " + " | ".join(cells) + " |")
    errors = [r for r in rows if r["errors"]]
    for r in errors:
        out.append(f"\n{r['label']}: {r['errors']} error(s), first: {r['first_error']}")
    return "\n".join(out) + "\n"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    for scenario in SCENARIOS:
        mine = [r for r in rows if r["scenario"] == scenario]
        if mine:
            print(table(scenario, mine))


if __name__ == "__main__":
    main()
