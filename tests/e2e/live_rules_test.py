#!/usr/bin/python3
"""End-to-end tests of the slow path's live side: rules changed through
flowpath-ctl while traffic flows (each command returns once the workers
forward by the new rules), bad rules refused with their place and nothing
changed, rule timeouts, megaflow idle expiry, dump-cache, pmd-stats, and the
tx-flush-interval bound.

Usage: live_rules_test.py BUILD_DIR
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import Flowpath, TestRun, WorkDir, udp_frames, write_pcap  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
WORK_DIR = WorkDir("flowpath_live_")
WORK = WORK_DIR.root
path = WORK_DIR.path
write = WORK_DIR.write
FRAMES = udp_frames(2_000, flows=100)
IN_PCAP = os.path.join(WORK, "in.pcap")
write_pcap(IN_PCAP, FRAMES)


def stats_of(fp):
    reply = fp.ctl("stats-json")
    assert reply.returncode == 0, reply.stderr
    return json.loads(reply.stdout)


def tx(fp, port):
    return stats_of(fp)["ports"][port]["tx_packets"]


def moving(fp, port, seconds=0.3):
    """Whether port's tx counter moves over `seconds`."""
    before = tx(fp, port)
    time.sleep(seconds)
    return tx(fp, port) > before


def looping(name, rules, extra=()):
    """flowpath with traffic looping from p0 (infinite_rx) to p1/p2 (net_null)."""
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP},infinite_rx=1",
                                "--port", "p1=net_null1,no-rx=1", "--port", "p2=net_null2,no-rx=1",
                                "--rules", rules, *extra], name=name).start()
    fp.wait_ready()
    return fp


def stop(fp):
    assert fp.ctl("exit").returncode == 0
    assert fp.wait() == 0, fp.stderr
    stats = fp.stats()
    rx = sum(p["rx_packets"] for p in stats["ports"])
    sent = sum(p["tx_packets"] for p in stats["ports"])
    assert rx == sent + sum(stats["drops"].values()), stats
    return stats


def test_changes_take_effect_when_the_command_returns():
    fp = looping("changes", write("to_p1.rules", "priority=10,udp,actions=output:p1\n"))
    try:
        assert moving(fp, 1) and not moving(fp, 2)
        # add-flow: a higher-priority rule to p2. Once the command returns,
        # every new packet goes to p2: p1 stops at once.
        assert fp.ctl("add-flow", "priority=20,udp,actions=output:p2").returncode == 0
        p1 = tx(fp, 1)
        time.sleep(0.3)
        assert tx(fp, 1) == p1, "a packet went by the old rule after add-flow returned"
        assert moving(fp, 2)
        # del-flows (non-strict) of that rule: back to p1.
        reply = fp.ctl("del-flows", "udp,priority=20")
        assert reply.returncode == 0, reply.stderr
        dump = fp.ctl("dump-flows").stdout
        assert "output:p2" not in dump, dump  # non-strict ignores priority: both udp rules went
        assert "actions" not in dump, dump
        # Nothing matches now: every packet is a counted no_match drop.
        drops = stats_of(fp)["drops"]["no_match"]
        time.sleep(0.3)
        assert stats_of(fp)["drops"]["no_match"] > drops
        # add-flows of a file, then mod-flows moves them all to p2.
        reply = fp.ctl("add-flows", write("two.rules", "priority=5,udp,actions=output:p1\n"
                                                       "priority=6,udp,udp_src=1024,actions=output:p1\n"))
        assert reply.returncode == 0, reply.stderr
        assert moving(fp, 1)
        assert fp.ctl("mod-flows", "udp,actions=output:p2").returncode == 0
        p1 = tx(fp, 1)
        time.sleep(0.3)
        assert tx(fp, 1) == p1 and moving(fp, 2)
        # replace-flows: exactly the file's rules, atomically.
        reply = fp.ctl("replace-flows", write("replaced.rules", "priority=1,actions=output:p1\n"))
        assert reply.returncode == 0, reply.stderr
        lines = fp.ctl("dump-flows").stdout.splitlines()
        assert len(lines) == 1 and lines[0].endswith("priority=1 actions=output:p1"), lines
        p2 = tx(fp, 2)
        time.sleep(0.3)
        assert tx(fp, 2) == p2 and moving(fp, 1)
        stats = stats_of(fp)
        assert stats["slow_path"]["revalidations"] >= 5, stats["slow_path"]
    finally:
        stats = stop(fp)
    assert stats["slow_path"]["installed"] > 0


def test_bad_rules_change_nothing_and_name_their_place():
    fp = looping("bad", write("one.rules", "priority=10,udp,actions=output:p1\n"))
    try:
        before = fp.ctl("dump-flows").stdout
        reply = fp.ctl("add-flow", "priority=20,udp,actions=output:nowhere")
        assert reply.returncode == 1 and reply.stderr.startswith("add-flow:1:"), reply.stderr
        bad = write("bad.rules", "priority=30,udp,actions=output:p2\npriority=31,tcp,tp_dst=99999,actions=drop\n")
        reply = fp.ctl("add-flows", bad)
        assert reply.returncode == 1 and reply.stderr.startswith(f"{bad}:2:"), reply.stderr
        reply = fp.ctl("replace-flows", bad)
        assert reply.returncode == 1 and reply.stderr.startswith(f"{bad}:2:"), reply.stderr
        reply = fp.ctl("del-flows", "nw_dst=10.0.0.1")  # needs ip
        assert reply.returncode == 1 and "del-flows" in reply.stderr, reply.stderr
        after = fp.ctl("dump-flows").stdout
        strip = lambda text: [line.split(", ", 2)[2] for line in text.splitlines()]  # noqa: E731
        assert strip(after) == strip(before), (before, after)
        assert moving(fp, 1) and not moving(fp, 2)
    finally:
        stop(fp)


def test_rule_timeouts_remove_rules():
    rules = write("timeouts.rules", "priority=5,udp,actions=output:p1\n"
                                    "priority=50,hard_timeout=1,udp,actions=output:p2\n"
                                    "priority=40,idle_timeout=1,tcp,actions=drop\n")
    fp = looping("timeouts", rules)
    try:
        assert moving(fp, 2)
        deadline = time.time() + 5
        while "hard_timeout" in fp.ctl("dump-flows").stdout and time.time() < deadline:
            time.sleep(0.1)
        dump = fp.ctl("dump-flows").stdout
        assert "hard_timeout" not in dump and "idle_timeout" not in dump, dump  # the tcp rule saw no packet
        assert moving(fp, 1) and not moving(fp, 2)
    finally:
        stop(fp)


def test_idle_megaflows_expire_and_dump_cache_shows_them():
    rules = write("acl.rules", "priority=5,udp,udp_src=1024,actions=output:p1\npriority=1,actions=output:p2\n")
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={IN_PCAP}", "--port", "p1=net_null1,no-rx=1",
                                "--port", "p2=net_null2,no-rx=1", "--rules", rules, "--max-idle", "300"],
                  name="idle").start()
    fp.wait_ready()
    try:
        deadline = time.time() + 10
        while stats_of(fp)["workers"][0]["packets"] < len(FRAMES) and time.time() < deadline:
            time.sleep(0.05)
        cache = fp.ctl("dump-cache")
        assert cache.returncode == 0, cache.stderr
        lines = [line for line in cache.stdout.splitlines() if line.startswith("slot=")]
        assert lines, cache.stdout
        assert all("packets=" in line and "age=" in line and "actions=" in line for line in lines), lines
        assert any("output:p1" in line for line in lines) and any("output:p2" in line for line in lines), lines
        assert fp.ctl("dump-cache", "7").returncode == 1  # no such worker
        pmd = fp.ctl("pmd-stats").stdout
        assert "exact-cache hits" in pmd and "cycles per packet" in pmd, pmd
        # The traffic is over: after max-idle every megaflow is gone.
        deadline = time.time() + 10
        while stats_of(fp)["cache"]["entries"] and time.time() < deadline:
            time.sleep(0.1)
        stats = stats_of(fp)
        assert stats["cache"]["entries"] == 0 and stats["slow_path"]["expired"] > 0, stats
    finally:
        stop(fp)


def test_tx_flush_interval_bounds_the_wait():
    # One frame: it waits in the tx buffer for the interval (0.8 s), not
    # longer, and with the default it leaves in the same poll round.
    write_pcap(path("one.pcap"), FRAMES[:1])
    rules = write("p1.rules", "actions=output:p1\n")
    for interval_us, low, high in ((800_000, 0.5, 3.0), (0, 0.0, 0.5)):
        fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={path('one.pcap')}",
                                    "--port", f"p1=net_pcap1,tx_pcap={path('one_out.pcap')}", "--rules", rules,
                                    "--tx-flush-interval", str(interval_us)], name=f"flush{interval_us}").start()
        fp.wait_ready()
        try:
            start = time.time()
            while stats_of(fp)["workers"][0]["packets"] == 0 and time.time() - start < 5:
                time.sleep(0.01)
            received = time.time()
            while tx(fp, 1) == 0 and time.time() - received < 5:
                time.sleep(0.01)
            waited = time.time() - received
            assert low <= waited <= high, f"interval {interval_us} us: the frame waited {waited:.3f} s"
        finally:
            stop(fp)


if __name__ == "__main__":
    run = TestRun()
    run.case(test_changes_take_effect_when_the_command_returns)
    run.case(test_bad_rules_change_nothing_and_name_their_place)
    run.case(test_rule_timeouts_remove_rules)
    run.case(test_idle_megaflows_expire_and_dump_cache_shows_them)
    run.case(test_tx_flush_interval_bounds_the_wait)
    run.finish()
