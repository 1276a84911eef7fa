#!/usr/bin/python3
"""End-to-end tests of --metrics-listen: the real flowpath serves Prometheus
text metrics at /metrics that move under traffic and agree with
`flowpath-ctl stats-json` (bracketed by two stats-json calls under traffic,
equal once traffic stopped); a busy or malformed address is a configuration
error; without the option nothing listens.

Usage: metrics_test.py BUILD_DIR
"""

import json
import os
import re
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import Flowpath, TestRun, udp_frames, workdir, write_pcap  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
WORK = workdir("flowpath_metrics_")
IN_PCAP = os.path.join(WORK, "in.pcap")
# UDP frames (one flow of 32 dropped by its rule: no_output), ARP frames no
# rule takes (no_match), and frames too big for the MTU (too_big).
FRAMES = udp_frames(2000, flows=32) + [b"\x02" * 12 + b"\x08\x06" + bytes(46)] * 5
TOO_BIG = [b"\x02" * 12 + b"\x08\x00" + bytes(1600)] * 3
write_pcap(IN_PCAP, FRAMES + TOO_BIG)
RULES = os.path.join(WORK, "fwd.rules")
with open(RULES, "w") as f:
    f.write("in_port=p0,udp,tp_src=1024 actions=drop\nin_port=p0,udp actions=output:p1\n")

SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    """{(name, frozenset of label pairs): value} from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"]
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(tuple(p.split("=", 1)) for p in labels.split(",")) if labels else frozenset()
        samples[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return samples


def expected(stats):
    """The samples stats-json implies: {(name, labels): value}."""
    want = {}
    for p in stats["ports"]:
        for key in ("rx_packets", "rx_bytes", "rx_dropped", "tx_packets", "tx_bytes", "tx_dropped"):
            want[(f"flowpath_port_{key}_total", frozenset({("port", p["name"])}))] = p[key]
    for w in stats["workers"]:
        lcore = ("lcore", str(w["lcore"]))
        want[("flowpath_worker_packets_total", frozenset({lcore}))] = w["packets"]
        want[("flowpath_cache_hits_total", frozenset({lcore, ("level", "simple")}))] = w["simple_hits"]
        want[("flowpath_cache_hits_total", frozenset({lcore, ("level", "exact")}))] = w["exact_hits"]
        want[("flowpath_cache_hits_total", frozenset({lcore, ("level", "megaflow")}))] = w["cache_hits"]
        want[("flowpath_exact_cache_skipped_total", frozenset({lcore}))] = w["exact_skipped"]
        want[("flowpath_misses_total", frozenset({lcore}))] = w["misses"]
        want[("flowpath_worker_lost_total", frozenset({lcore}))] = w["lost"]
    for reason, count in stats["drops"].items():
        want[("flowpath_drops_total", frozenset({("reason", reason)}))] = count
    for key in ("upcalls", "installed", "evicted", "expired", "widened", "batches", "revalidations"):
        want[(f"flowpath_slow_path_{key}_total", frozenset())] = stats["slow_path"][key]
    assert stats["slow_path"]["queue_drops"] == stats["drops"]["upcall_queue_full"]
    for key in ("entries", "subtables", "bytes"):
        want[(f"flowpath_cache_{key}", frozenset())] = stats["cache"][key]
    want[("flowpath_conntrack_connections", frozenset())] = stats["conntrack"]["connections"]
    for key in ("created", "expired", "flushed", "refused", "invalid"):
        want[(f"flowpath_conntrack_{key}_total", frozenset())] = stats["conntrack"][key]
    return want


def stats_json(fp):
    reply = fp.ctl("stats-json")
    assert reply.returncode == 0, reply.stderr
    return json.loads(reply.stdout)


# Counters only grow; gauges (cache entries, masks, memory) may not.
GAUGES = {"flowpath_cache_entries", "flowpath_cache_subtables", "flowpath_cache_bytes",
          "flowpath_conntrack_connections"}


def test_metrics_agree_with_stats_json_under_traffic():
    port = free_port()
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},infinite_rx=1",
                                "--port", "p1=net_null0,no-rx=1", "--rules", RULES,
                                "--metrics-listen", f"127.0.0.1:{port}"], name="traffic")
    fp.start()
    try:
        fp.wait_ready()
        time.sleep(0.5)
        rounds = []
        for _ in range(3):
            before = expected(stats_json(fp))
            metrics = scrape(port)
            after = expected(stats_json(fp))
            rounds.append(metrics)
            for key, low in before.items():
                assert key in metrics, f"{key} missing from /metrics"
                if key[0] in GAUGES:
                    continue
                assert low <= metrics[key] <= after[key], f"{key}: {metrics[key]} not within [{low}, {after[key]}]"
            time.sleep(0.3)
        rx = ("flowpath_port_rx_packets_total", frozenset({("port", "p0")}))
        tx = ("flowpath_port_tx_packets_total", frozenset({("port", "p1")}))
        for key in (rx, tx, ("flowpath_drops_total", frozenset({("reason", "no_match")})),
                    ("flowpath_drops_total", frozenset({("reason", "too_big")})),
                    ("flowpath_drops_total", frozenset({("reason", "no_output")}))):
            assert rounds[0][key] < rounds[-1][key], f"{key} did not move: {rounds[0][key]} -> {rounds[-1][key]}"
        cycles = [v for (name, _), v in rounds[-1].items() if name == "flowpath_worker_cycles_per_packet"]
        assert len(cycles) == 1 and cycles[0] > 0, cycles
    finally:
        fp.ctl("exit")
    assert fp.wait() == 0, fp.stderr


def test_metrics_equal_stats_json_once_idle():
    port = free_port()
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP}", "--port", "p1=net_null0,no-rx=1",
                                "--rules", RULES, "--metrics-listen", f"127.0.0.1:{port}"], name="idle")
    fp.start()
    try:
        fp.wait_ready()
        # Idle: everything received, and nothing changes any more.
        deadline = time.time() + 30
        previous = None
        while time.time() < deadline:
            stats = stats_json(fp)
            if stats == previous and stats["ports"][0]["rx_packets"] == len(FRAMES) + len(TOO_BIG):
                break
            previous = stats
            time.sleep(0.2)
        metrics = scrape(port)
        assert stats["ports"][0]["rx_packets"] == len(FRAMES) + len(TOO_BIG), stats["ports"]
        for key, value in expected(stats).items():
            assert metrics.get(key) == value, f"{key}: /metrics {metrics.get(key)}, stats-json {value}"
        cycles = [v for (name, _), v in metrics.items() if name == "flowpath_worker_cycles_per_packet"]
        assert abs(cycles[0] - stats["workers"][0]["cycles_per_packet"]) < 0.01, (cycles, stats["workers"])
        assert metrics[("flowpath_drops_total", frozenset({("reason", "too_big")}))] == 3
        revalidation = metrics[("flowpath_slow_path_last_revalidation_seconds", frozenset())]
        assert abs(revalidation * 1000 - stats["slow_path"]["last_revalidation_ms"]) < 0.01, revalidation
    finally:
        fp.ctl("exit")
    assert fp.wait() == 0, fp.stderr


def test_busy_or_bad_address_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for address, message in ((f"127.0.0.1:{taken}", "cannot listen"), ("localhost:9100", "IPv4 address"),
                                 ("127.0.0.1:70000", "port 0-65535")):
            fp = Flowpath(BUILD, WORK, ["--port", "p0=net_null0,no-rx=1", "--metrics-listen", address,
                                        "--duration", "5"], name="bad")
            assert fp.run() == 2, (address, fp.stderr)
            last = fp.stderr.splitlines()[-1]
            assert "metrics-listen: " in last and message in last, fp.stderr


def test_off_by_default():
    fp = Flowpath(BUILD, WORK, ["--port", "p0=net_null0,no-rx=1", "--log-level", "info"], name="off")
    fp.start()
    fp.wait_ready()
    fp.ctl("exit")
    assert fp.wait() == 0, fp.stderr
    assert "Prometheus" not in fp.stderr, fp.stderr


def main():
    t = TestRun()
    t.case(test_metrics_agree_with_stats_json_under_traffic)
    t.case(test_metrics_equal_stats_json_once_idle)
    t.case(test_busy_or_bad_address_exits_2)
    t.case(test_off_by_default)
    t.finish()


if __name__ == "__main__":
    main()
