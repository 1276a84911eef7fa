#!/usr/bin/python3
"""End-to-end tests of the foundation: the real flowpath binary on net_pcap
ports forwards every packet by the fixed port map, in order, and stops cleanly
whichever way it is told to.

Usage: foundation_test.py BUILD_DIR
"""

import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import (Flowpath, TestRun, per_flow_order, read_pcap, run_flowpath, udp_frames,  # noqa: E402
                    workdir, write_pcap)

BUILD = os.path.abspath(sys.argv[1])
WORK = workdir("flowpath_e2e_")
FRAMES = udp_frames(10_000)
IN_PCAP = os.path.join(WORK, "in.pcap")
write_pcap(IN_PCAP, FRAMES)
# Rules that forward every packet once: p0 to p1, or back where it came from.
TO_P1 = os.path.join(WORK, "to_p1.rules")
BACK = os.path.join(WORK, "back.rules")
with open(TO_P1, "w") as f:
    f.write("# everything from p0 goes to p1\nin_port=p0 actions=output:p1\n")
with open(BACK, "w") as f:
    f.write("actions=in_port\n")


def path(name):
    return os.path.join(WORK, name)


def assert_adds_up(stats):
    """rx = tx + drops, over all ports and drop reasons."""
    rx = sum(p["rx_packets"] for p in stats["ports"])
    tx = sum(p["tx_packets"] for p in stats["ports"])
    drops = sum(stats["drops"].values())
    lost = sum(w["lost"] for w in stats["workers"])
    assert rx == tx + drops, f"rx {rx} != tx {tx} + drops {drops}"
    assert drops == lost, f"drops by reason {drops} != workers' lost {lost}"
    assert sum(p["tx_dropped"] for p in stats["ports"]) <= drops


def test_ten_thousand_in_order():
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},tx_pcap={path('o0.pcap')}",
                                "--port", f"p1=net_pcap1,tx_pcap={path('o1.pcap')}",
                                "--rules", TO_P1, "--exit-when-idle", "300"], name="order")
    assert fp.run() == 0, fp.stderr
    out = read_pcap(path("o1.pcap"))
    assert len(out) == len(FRAMES), f"{len(out)} frames out of {len(FRAMES)}"
    for i, (sent, got) in enumerate(zip(FRAMES, out)):
        assert sent == got, f"frame {i} differs"
    assert read_pcap(path("o0.pcap")) == [], "nothing may go back out of p0"
    stats = fp.stats()
    assert stats["ports"][0]["rx_packets"] == 10_000
    assert stats["ports"][1]["tx_packets"] == 10_000
    assert stats["ports"][1]["tx_bytes"] == sum(len(f) for f in FRAMES)
    assert_adds_up(stats)
    # Each packet is counted by the one tier that answered it. How many
    # waited for the first upcall depends on the slow path's speed (2,336 on
    # a cold CI machine), so the simple tier's share is checked under
    # infinite_rx below, where the first install is a small part of the run.
    worker = stats["workers"][0]
    answered = worker["simple_hits"] + worker["exact_hits"] + worker["cache_hits"] + worker["misses"]
    assert answered == 10_000, worker


def test_simple_match_bursts_that_start_with_a_new_flow():
    """With the simple-match tier on (docs/cache.md), bursts whose first
    packet, or any packet, is of a megaflow not yet installed take the
    pipeline; mixed bursts of known megaflows go run by run. Every frame
    leaves by its rule, in order per flow."""
    from scapy.all import Ether, IP, UDP, Raw  # noqa: imported late: slow

    def frame(src_last, seq):
        pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=f"10.0.0.{src_last}", dst="10.1.0.1") /
               UDP(sport=1000, dport=53, chksum=0) / Raw(struct.pack("!I", seq)))  # no checksum: the warm-up patches seq
        return bytes(pkt) + b"\0" * 16

    # 8 megaflows at most: 10.0.0.1 exact, and one prefix per other source
    # (each leaves .1 at another bit), all L4-blind.
    newcomers = [2, 4, 8, 16, 32, 64, 128]
    # A long warm-up of one flow (bursts of 32 from the pcap: aligned), so
    # that its megaflow is in before the newcomers however slow the first
    # upcall is (2,336 packets' time on a cold CI machine).
    template = frame(1, 0)
    frames = [template[:-20] + struct.pack("!I", i) + template[-16:] for i in range(20_000)]
    for round_ in range(3):
        for src in newcomers:
            frames.append(frame(src, len(frames)))  # first of its burst
            frames += [frame(1, len(frames) + k) for k in range(31)]
        for src in newcomers:  # mixed bursts of known megaflows
            frames += [frame(src if k % 3 else 1, len(frames) + k) for k in range(32)]
    pcap = path("simple_in.pcap")
    write_pcap(pcap, frames)
    rules = path("simple.rules")
    with open(rules, "w") as f:
        f.write("priority=10,in_port=p0,ip,nw_src=10.0.0.1 actions=output:p1\n"
                "priority=1,in_port=p0,ip actions=output:p2\n")
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={pcap}", "--port", f"p1=net_pcap1,tx_pcap={path('s1.pcap')}",
                                "--port", f"p2=net_pcap2,tx_pcap={path('s2.pcap')}", "--rules", rules,
                                "--exit-when-idle", "300"], name="simple")
    assert fp.run() == 0, fp.stderr
    want_p1 = [f for f in frames if f[26:30] == bytes([10, 0, 0, 1])]
    want_p2 = [f for f in frames if f[26:30] != bytes([10, 0, 0, 1])]
    assert read_pcap(path("s1.pcap")) == want_p1
    assert per_flow_order(read_pcap(path("s2.pcap"))) == per_flow_order(want_p2)
    stats = fp.stats()
    assert_adds_up(stats)
    assert stats["workers"][0]["simple_hits"] > 0, stats["workers"]
    assert stats["cache"]["entries"] <= 8, stats["cache"]


def test_two_workers_two_rx_queues():
    # One rx_pcap per queue: net_pcap's way of having two rx queues.
    half_a = [f for f in FRAMES if f[35] % 2 == 0]   # split by flow (UDP source port)
    half_b = [f for f in FRAMES if f[35] % 2 == 1]
    write_pcap(path("qa.pcap"), half_a)
    write_pcap(path("qb.pcap"), half_b)
    devargs = (f"net_pcap0,rx_pcap={path('qa.pcap')},rx_pcap={path('qb.pcap')},"
               f"tx_pcap={path('ta.pcap')},tx_pcap={path('tb.pcap')}")
    fp = Flowpath(BUILD, WORK, ["--port", f"p0={devargs}", "--pmd-cores", "1-2", "--rxq", "2", "--rules", BACK,
                                "--exit-when-idle", "300"], name="rxq2")
    assert fp.run() == 0, fp.stderr
    out = read_pcap(path("ta.pcap")) + read_pcap(path("tb.pcap"))
    assert sorted(out) == sorted(FRAMES), f"{len(out)} frames out, multiset differs"
    # A flow arrives on one queue and leaves by one worker's tx queue, so
    # its frames sit in one output file, in their input order.
    assert per_flow_order(out) == per_flow_order(FRAMES), "flow order changed"
    stats = fp.stats()
    assert len(stats["workers"]) == 2
    assert all(w["packets"] > 0 for w in stats["workers"]), stats["workers"]
    assert_adds_up(stats)


def test_sigterm_during_infinite_rx():
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},infinite_rx=1",
                                "--port", f"p1=net_pcap1,tx_pcap={path('inf.pcap')}", "--rules", TO_P1],
                  name="sigterm")
    fp.start()
    fp.wait_ready()
    time.sleep(1.5)
    fp.signal(signal.SIGTERM)
    assert fp.wait() == 0, fp.stderr
    out = read_pcap(path("inf.pcap"))   # raises if truncated
    stats = fp.stats()
    assert stats["ports"][0]["rx_packets"] > len(FRAMES), "infinite_rx should loop over the file"
    assert stats["ports"][1]["tx_packets"] == len(out), (stats["ports"][1], len(out))
    assert_adds_up(stats)
    # Once the one megaflow is in, whole bursts take the simple-match tier
    # (docs/cache.md).
    worker = stats["workers"][0]
    assert worker["simple_hits"] > worker["packets"] // 2, worker
    # The file replays in order: the output is the input stream (the file
    # over and over) with the counted drops taken out, order kept.
    if sum(stats["drops"].values()) == 0:
        assert all(f == FRAMES[i % len(FRAMES)] for i, f in enumerate(out[:20_000]))
    j = 0
    for i, f in enumerate(out[:20_000]):
        while FRAMES[j % len(FRAMES)] != f:
            j += 1
            assert j <= stats["ports"][0]["rx_packets"], f"output {i} is not in the input stream in order"
        j += 1


def test_sigint_and_duration():
    fp = Flowpath(BUILD, WORK, ["--port", "p0=net_null0,no-rx=1", "--duration", "0.5"], name="duration")
    start = time.time()
    assert fp.run() == 0, fp.stderr
    assert time.time() - start < 30
    fp = Flowpath(BUILD, WORK, ["--port", "p0=net_null0,no-rx=1"], name="sigint").start()
    fp.wait_ready()
    fp.signal(signal.SIGINT)
    assert fp.wait() == 0, fp.stderr
    assert fp.stats()["ports"][0]["name"] == "p0"


def test_ctl_commands_and_exit():
    fp = Flowpath(BUILD, WORK, ["--port", "p0=net_null0,no-rx=1", "--port", "p1=net_null1,no-rx=1"],
                  name="ctl").start()
    fp.wait_ready()
    mode = stat.S_IMODE(os.stat(fp.socket).st_mode)
    assert mode == 0o600, oct(mode)
    show = fp.ctl("show")
    assert show.returncode == 0 and "p0" in show.stdout and "p1" in show.stdout and "lcore 1" in show.stdout, show
    stats = fp.ctl("stats-json")
    assert stats.returncode == 0, stats
    parsed = json.loads(stats.stdout)
    assert [p["name"] for p in parsed["ports"]] == ["p0", "p1"]
    for key in ("workers", "slow_path", "cache", "conntrack"):
        assert key in parsed
    bad = fp.ctl("no-such-command")
    assert bad.returncode == 1 and "unknown command" in bad.stderr, bad
    assert fp.ctl("exit").returncode == 0
    assert fp.wait() == 0, fp.stderr
    assert not os.path.exists(fp.socket), "socket must be removed at exit"


def test_ctl_without_server():
    proc = subprocess.run([os.path.join(BUILD, "flowpath-ctl"), "--socket", path("nobody.ctl"), "show"],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc
    assert proc.stderr.count("\n") == 1 and "nobody.ctl" in proc.stderr, proc.stderr


def test_two_processes_side_by_side():
    runs = []
    for n in range(2):
        write_pcap(path(f"side{n}.pcap"), FRAMES[:3000])
        runs.append(Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={path(f'side{n}.pcap')},"
                                                   f"tx_pcap={path(f'sideout{n}.pcap')}",
                                           "--rules", BACK, "--exit-when-idle", "500"], name=f"side{n}").start())
    for fp in runs:
        assert fp.wait() == 0, fp.stderr
    for n in range(2):
        assert read_pcap(path(f"sideout{n}.pcap")) == FRAMES[:3000]


def test_same_ctl_socket_refused():
    first = Flowpath(BUILD, WORK, ["--port", "p0=net_null0,no-rx=1"], name="busy").start()
    first.wait_ready()
    code, _, err = run_flowpath(BUILD, ["--ctl-socket", first.socket, "--port", "p0=net_null0,no-rx=1"])
    assert code == 2 and "already listens" in err, (code, err)
    assert first.ctl("exit").returncode == 0
    assert first.wait() == 0


def test_bad_device_exits_2_naming_the_line():
    conf = path("bad.conf")
    with open(conf, "w") as f:
        f.write("# a port whose device does not exist\nport = p0=net_null0,no-rx=1\nport = p1=net_bogus0\n")
    code, _, err = run_flowpath(BUILD, ["--config", conf, "--ctl-socket", path("bad.ctl")])
    assert code == 2, (code, err)
    lines = [l for l in err.splitlines() if l.startswith("flowpath:") and f"{conf}:3:" in l]
    assert lines and "p1" in lines[0] and "failed to probe" in lines[0], err
    code, _, err = run_flowpath(BUILD, ["--port", "p0=net_null0", "--rxq", "zero"])
    assert code == 2 and "command line: rxq" in err, err
    code, _, err = run_flowpath(BUILD, ["--port", "p0=net_null0", "--rules", path("missing.rules")])
    assert code == 2 and "missing.rules" in err, err
    bad_rules = path("bad.rules")
    with open(bad_rules, "w") as f:
        f.write("# fine, then not\nin_port=p0 actions=output:p0\nin_port=p9 actions=drop\n")
    code, _, err = run_flowpath(BUILD, ["--port", "p0=net_null0", "--rules", bad_rules])
    assert code == 2 and f"{bad_rules}:3:" in err and err.count("\n") == 1, err


def test_done_when_single_port():
    """`flowpath --port p0=net_pcap0,rx_pcap=X,tx_pcap=Y --exit-when-idle 200` returns with Y complete."""
    code, _, err = run_flowpath(BUILD, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},tx_pcap={path('y.pcap')}",
                                        "--exit-when-idle", "200", "--ctl-socket", path("y.ctl"), "--rules", BACK])
    assert code == 0, err
    assert read_pcap(path("y.pcap")) == FRAMES


def test_no_rules_drops_everything_counted():
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},tx_pcap={path('none.pcap')}",
                                "--exit-when-idle", "200"], name="norules")
    assert fp.run() == 0, fp.stderr
    assert read_pcap(path("none.pcap")) == []
    stats = fp.stats()
    assert stats["drops"]["no_match"] == len(FRAMES), stats["drops"]
    assert_adds_up(stats)


def test_dump_flows_counts():
    rules = path("count.rules")
    with open(rules, "w") as f:
        f.write("priority=10,udp,tp_src=1024 actions=drop\npriority=5 actions=in_port\n")
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},tx_pcap={path('count.pcap')}",
                                "--rules", rules], name="count").start()
    fp.wait_ready()
    deadline = time.time() + 30
    # Every frame received and taken to its fate (a miss waits for the slow
    # path: received is not yet forwarded).
    while fp.ctl("stats-json").returncode == 0 and time.time() < deadline:
        stats = json.loads(fp.ctl("stats-json").stdout)
        done = stats["ports"][0]["tx_packets"] + sum(stats["drops"].values())
        if stats["workers"][0]["packets"] == len(FRAMES) and done == len(FRAMES):
            break
        time.sleep(0.1)
    dump = fp.ctl("dump-flows")
    assert fp.ctl("exit").returncode == 0 and fp.wait() == 0, fp.stderr
    lines = dump.stdout.splitlines()
    assert len(lines) == 2, dump.stdout
    dropped = sum(1 for f in FRAMES if f[34:36] == b"\x04\x00")
    assert lines[0].startswith(f"n_packets={dropped}, n_bytes={dropped * 64}, ") and "tp_src=1024" in lines[0], lines
    rest = len(FRAMES) - dropped
    assert lines[1].startswith(f"n_packets={rest}, ") and "actions=in_port" in lines[1], lines
    assert len(read_pcap(path("count.pcap"))) == rest
    assert fp.ctl("dump-flows").returncode == 1  # gone after exit


def test_cache_sizes():
    """--exact-cache-entries and --signature-cache-entries size each
    worker's caches: cache.bytes moves with them (the signature cache's
    default is 8 MiB: 2^17 buckets of 64 bytes), and every frame still
    leaves by its rule."""
    def cache_bytes(name, extra):
        fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP}",
                                    "--port", f"p1=net_pcap1,tx_pcap={path(name + '.pcap')}",
                                    "--rules", TO_P1, "--exit-when-idle", "300"] + extra, name=name)
        assert fp.run() == 0, fp.stderr
        assert read_pcap(path(name + ".pcap")) == FRAMES
        return fp.stats()["cache"]["bytes"]

    default = cache_bytes("sizes_default", [])
    small = cache_bytes("sizes_small", ["--exact-cache-entries", "1024", "--signature-cache-entries", "0"])
    big = cache_bytes("sizes_big", ["--exact-cache-entries", "16384", "--signature-cache-entries", str(1 << 21)])
    assert default - small >= (1 << 17) * 64, (default, small)
    assert big - default >= (1 << 17) * 64, (default, big)


def test_exact_cache_skipped_under_many_flows():
    """5,000 flows seen twice each, with a rule that reads the transport
    header (no simple-match tier): the exact cache hits too rarely, is
    bypassed after its first window of 8,192 probes (docs/cache.md), and
    the packets that pass it unprobed are counted as exact_skipped; every
    frame still leaves, in order per flow."""
    frames = udp_frames(10_000, flows=5_000, seed=3)
    pcap = path("many_in.pcap")
    write_pcap(pcap, frames)
    rules = path("many.rules")
    with open(rules, "w") as f:
        f.write("priority=10,in_port=p0,udp,tp_dst=4789 actions=output:p1\npriority=1 actions=drop\n")
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={pcap}", "--port", f"p1=net_pcap1,tx_pcap={path('many.pcap')}",
                                "--rules", rules, "--exit-when-idle", "300"], name="many")
    assert fp.run() == 0, fp.stderr
    assert per_flow_order(read_pcap(path("many.pcap"))) == per_flow_order(frames)
    stats = fp.stats()
    assert_adds_up(stats)
    worker = stats["workers"][0]
    assert worker["simple_hits"] == 0, worker
    assert 0 < worker["exact_skipped"] <= 10_000 - 8_192, worker


if __name__ == "__main__":
    run = TestRun()
    only = sys.argv[2:]  # test names, to run some alone
    for test in (test_ten_thousand_in_order, test_simple_match_bursts_that_start_with_a_new_flow,
                 test_two_workers_two_rx_queues, test_sigterm_during_infinite_rx,
                 test_sigint_and_duration, test_ctl_commands_and_exit, test_ctl_without_server,
                 test_two_processes_side_by_side, test_same_ctl_socket_refused,
                 test_bad_device_exits_2_naming_the_line, test_done_when_single_port,
                 test_no_rules_drops_everything_counted, test_dump_flows_counts, test_cache_sizes,
                 test_exact_cache_skipped_under_many_flows):
        if not only or test.__name__ in only:
            run.case(test)
    if run.failed == 0:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print(f"work files kept in {WORK}")
    run.finish()
