"""Markdown tables from the load generator's JSON lines (benches/run.sh writes them).

    python3 benches/table.py results.jsonl

Every cell is the median over the runs, with min–max where the spread matters; a run that
failed to set up is counted and named instead of being averaged in.
"""
import json
import statistics
import sys

SERVERS = ["realtime", "socketioxide", "node-socketio", "raw", "realtime-presence"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else (None, None, None)


def fmt_range(m, digits=0):
    if m[0] is None:
        return "–"
    f = f"{{:,.{digits}f}}"
    return f"{f.format(m[0])} ({f.format(m[1])}–{f.format(m[2])})"


def rows(results, **match):
    return [r for r in results if all(r.get(k) == v for k, v in match.items())]


def delivery_row(label, rs):
    bad = [r for r in rs if "error" in r]
    good = [r for r in rs if "error" not in r]
    if not good:
        e = bad[0] if bad else {}
        return f"| {label} | {len(rs)} | failed: {e.get('error')} ({e.get('connected')} connected) | – | – | – | – |"
    d = med([r["deliveries_per_second"] for r in good])
    c = med([r["server_cpu_us_per_delivery"] for r in good])
    p50 = med([r["latency_us"]["p50"] for r in good])[0] / 1000
    p99 = med([r["latency_us"]["p99"] for r in good])[0] / 1000
    g = med([r["generator_cpu_share"] for r in good])[0]
    lost = sum(r["losses"] for r in good)
    note = f" ({len(bad)} failed)" if bad else ""
    return (
        f"| {label} | {len(good)}{note} | {fmt_range(d)} | {fmt_range(c, 2)} | "
        f"{p50:.1f} / {p99:.1f} | {lost:,} | {g:.2f} |"
    )


def delivery_table(title, head, rs_all):
    print(title)
    print()
    print(head)
    for s in SERVERS:
        rs = [r for r in rs_all if r["server"] == s]
        if rs:
            print(delivery_row(s, rs))
    print()


def main(path):
    results = [json.loads(line) for line in open(path) if line.strip()]
    head = (
        "| server | runs | deliveries/s median (min–max) | server CPU µs/delivery | "
        "p50 / p99 latency ms | losses (all runs) | generator CPU share |\n"
        "|---|---|---|---|---|---|---|"
    )
    for clients in [1000, 10000]:
        for mode in ["inflight 2", "inflight 16", "rate"]:
            rs_all = rows(results, workload="w1", clients=clients)
            if mode == "rate":
                rs_all = [r for r in rs_all if r.get("rate")]
                title = f"W1 fan-out, one room of {clients:,}, fixed rate"
            else:
                k = int(mode.split()[1])
                rs_all = [r for r in rs_all if r.get("inflight") == k]
                title = f"W1 fan-out, one room of {clients:,}, closed loop, {k} in flight"
            if not rs_all:
                continue
            rate = next((r.get("rate") for r in rs_all if r.get("rate")), None)
            delivery_table(f"**{title}**" + (f" ({rate:g} msg/s)" if rate else ""), head, rs_all)
    for rate in [1, 10, 20, 40]:
        rs_all = [r for r in rows(results, workload="w2") if r.get("rate_per_client") == rate]
        if rs_all:
            title = f"**W2 many rooms: 1,000 clients in rooms of 10, {rate} msg/s each**"
            delivery_table(title, head, rs_all)
    print("**W3 idle: 10,000 authenticated connections**")
    print()
    print("| server | runs | RSS with 0, MiB | RSS with 10,000, MiB | KiB per connection median (min–max) |")
    print("|---|---|---|---|---|")
    for s in SERVERS:
        rs = rows(results, workload="w3", server=s)
        if not rs:
            continue
        k = med([r["kib_per_connection"] for r in rs])
        r0 = med([r["server_rss_kib_idle_0"] for r in rs])[0] / 1024
        rn = med([r["server_rss_kib_idle_n"] for r in rs])[0] / 1024
        print(f"| {s} | {len(rs)} | {r0:.1f} | {rn:.1f} | {fmt_range(k, 1)} |")


if __name__ == "__main__":
    main(sys.argv[1])
