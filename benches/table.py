"""Markdown tables from the load generator's JSON lines (benches/run.sh writes them).

    python3 benches/table.py results.jsonl

Every cell is the median over the runs, with min–max where the spread matters (p99 among
them: "reliably" is about the worst run, not the median); a run that failed to set up is
counted and named instead of being averaged in. "server CPU share" is the server's CPU time
over the run's wall time: near 1.00 the one core it is pinned to is full, and its latency is
mostly queueing.
"""
import json
import statistics
import sys

SERVERS = ["realtime", "socketioxide", "node-socketio", "raw", "realtime-presence", "realtime-pusher", "sockudo", "soketi"]


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
        return f"| {label} | {len(rs)} | failed: {e.get('error')} ({e.get('connected')} connected) | – | – | – | – | – |"
    d = med([r["deliveries_per_second"] for r in good])
    c = med([r["server_cpu_us_per_delivery"] for r in good])
    p50 = med([r["latency_us"]["p50"] for r in good])[0] / 1000
    p99 = med([r["latency_us"]["p99"] / 1000 for r in good])
    # Results from before the generator reported it have no server CPU share.
    share = med([r.get("server_cpu_share") for r in good])[0]
    share = "–" if share is None else f"{share:.2f}"
    g = med([r["generator_cpu_share"] for r in good])[0]
    lost = sum(r["losses"] for r in good)
    note = f" ({len(bad)} failed)" if bad else ""
    return (
        f"| {label} | {len(good)}{note} | {fmt_range(d)} | {fmt_range(c, 2)} | {share} | "
        f"{p50:.1f} / {fmt_range(p99, 1)} | {lost:,} | {g:.2f} |"
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
        "server CPU share | p50 / p99 (min–max) latency ms | losses (all runs) | "
        "generator CPU share |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    # Every cell the results hold, in order (benches/run.sh: W1 with 1,000 and 10,000
    # clients, 2 and 16 in flight and a fixed rate; W2 in rooms of 10 at 1, 10, 20 and 40
    # msg/s each).
    w1 = rows(results, workload="w1")
    for clients in sorted({r["clients"] for r in w1}):
        mine = rows(w1, clients=clients)
        for k in sorted({r["inflight"] for r in mine if not r.get("rate") and r.get("inflight")}):
            title = f"**W1 fan-out, one room of {clients:,}, closed loop, {k} in flight**"
            delivery_table(title, head, [r for r in mine if not r.get("rate") and r.get("inflight") == k])
        for rate in sorted({r["rate"] for r in mine if r.get("rate")}):
            title = f"**W1 fan-out, one room of {clients:,}, fixed rate** ({rate:g} msg/s)"
            delivery_table(title, head, rows(mine, rate=rate))
    w2 = rows(results, workload="w2")
    for r in w2:
        # Failed set-ups logged before the generator named their room size: run.sh's 10.
        r.setdefault("room_size", 10)
    for clients, size, rate in sorted({(r["clients"], r["room_size"], r["rate_per_client"]) for r in w2}):
        rs_all = rows(w2, clients=clients, room_size=size, rate_per_client=rate)
        title = f"**W2 many rooms: {clients:,} clients in rooms of {size}, {rate:g} msg/s each**"
        delivery_table(title, head, rs_all)
    w3 = sorted({r["clients"] for r in rows(results, workload="w3")})
    if not w3:
        return
    print(f"**W3 idle: {' / '.join(f'{c:,}' for c in w3)} authenticated connections**")
    print()
    print("| server | runs | RSS with 0, MiB | RSS with N, MiB | KiB per connection median (min–max) |")
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
