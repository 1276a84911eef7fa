#!/usr/bin/python3
"""Conntrack soak: many short TCP connections through the real binary, then
expiry down to zero connections.

A generated pcap holds N connections, each SYN, SYN-ACK, ACK, FIN (client),
ACK, FIN (server), ACK, interleaved 32 connections at a time (all SYNs of a
batch, then all SYN-ACKs, ...), both directions arriving on p0. flowpath
replays it once through a stateful firewall (ct(table=1); ct(commit) for
+new, +est forwarded, the rest dropped) to net_null, with short
--ct-timeout-* values, and is then left alone until its cleanup has expired
every connection. Checked:

- at every stats-json sample (every 0.1 s, during the replay and the
  expiry), conntrack created = expired + flushed + connections;
- every packet was forwarded (each connection's first packet is +new, the
  rest +est), none invalid, no commit refused, created = N;
- the table empties: connections 0, expired = created, ct-dump empty;
- flowpath exits 0; from build-asan that is an ASan/UBSan build, whose
  LeakSanitizer fails the exit on a leak (scripts/test sets
  ASAN_OPTIONS=detect_leaks=1), and its stderr must name no sanitizer error.

N is 20,000 connections (140,000 packets) by default;
FLOWPATH_SOAK_CONNECTIONS=1000000 runs the full million (a 530 MB pcap in
the work directory, generated in about a minute and removed afterwards; the
replay takes about 2.5 min under ASan). meson test sets the million for the
ASan+UBSan build, 20,000 for the release build (tests/e2e/meson.build).
Directly:

    FLOWPATH_SOAK_CONNECTIONS=1000000 ASAN_OPTIONS=detect_leaks=1 \
        tests/e2e/conntrack_soak_test.py build-asan
The test prints how long generation, the replay and the expiry took, the
peak connection count and flowpath's RSS.

Usage: conntrack_soak_test.py BUILD_DIR
"""

import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from fptest import Flowpath, TestRun, workdir  # noqa: E402
import workloads  # noqa: E402  (bench/workloads.py: fast hand-built frames)

BUILD = os.path.abspath(sys.argv[1])
WORK = workdir("flowpath_ct_soak_")
CONNECTIONS = int(os.environ.get("FLOWPATH_SOAK_CONNECTIONS", "20000"))
PACKETS_PER_CONNECTION = 7
BATCH = 32
TIMEOUTS = {"tcp-syn-sent": 2, "tcp-established": 2, "tcp-fin-wait": 1, "tcp-time-wait": 1, "tcp-close": 1}
RULES = """\
table=0,priority=100,tcp,ct_state=-trk actions=ct(table=1)
table=0,priority=0 actions=drop
table=1,priority=100,tcp,ct_state=+trk+new actions=ct(commit),output:p1
table=1,priority=90,tcp,ct_state=+trk+est actions=output:p1
table=1,priority=1 actions=drop
"""
SYN, ACK, FIN = workloads.TCP_SYN, workloads.TCP_ACK, workloads.TCP_FIN
SERVER = 0xC0A80001  # 192.168.0.1:80


def connection(i):
    """(client address, client port, client ISN, server ISN) of connection i."""
    return 0x0A000000 + i + 1, 1024 + i % 60000, (i * 2654435761) & 0xFFFFFFFF, (i * 40503 + 7) & 0xFFFFFFFF


def frames(count):
    """The soak's frames, generated as they are written (a million
    connections are seven million frames)."""
    tcp = workloads.tcp_frame
    for base in range(0, count, BATCH):
        batch = [connection(i) for i in range(base, min(base + BATCH, count))]
        steps = (
            lambda c, p, x, y: tcp(c, SERVER, p, 80, x, 0, SYN),
            lambda c, p, x, y: tcp(SERVER, c, 80, p, y, x + 1, SYN | ACK),
            lambda c, p, x, y: tcp(c, SERVER, p, 80, x + 1, y + 1, ACK),
            lambda c, p, x, y: tcp(c, SERVER, p, 80, x + 1, y + 1, FIN | ACK),
            lambda c, p, x, y: tcp(SERVER, c, 80, p, y + 1, x + 2, ACK),
            lambda c, p, x, y: tcp(SERVER, c, 80, p, y + 1, x + 2, FIN | ACK),
            lambda c, p, x, y: tcp(c, SERVER, p, 80, x + 2, y + 2, ACK),
        )
        for step in steps:
            for conn in batch:
                yield step(*conn)


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Soak:
    """One run: generate, replay, expire. Each phase leaves what it saw
    (samples, timings, the statistics after the replay and at the end), so
    that every check runs on what there is even when a phase failed."""

    def __init__(self):
        self.samples = []
        self.times = {}
        self.total = CONNECTIONS * PACKETS_PER_CONNECTION
        self.fp = None
        self.after_replay = None
        self.final = None
        self.dump_after = None
        self.bad_samples = []
        self.peak = self.peak_rss = 0
        self.rss_end = None
        self.status = None

    def sample(self):
        reply = self.fp.ctl("stats-json")
        assert reply.returncode == 0, f"stats-json failed: {reply.stderr}"
        stats = json.loads(reply.stdout)
        ct = stats["conntrack"]
        missing = {"connections", "created", "expired", "refused", "invalid"} - set(ct)
        assert not missing, f"stats-json conntrack lacks {sorted(missing)}: {ct}"
        if ct["created"] != ct["expired"] + ct.get("flushed", 0) + ct["connections"]:
            self.bad_samples.append(dict(ct))
        self.samples.append((time.monotonic(), stats))
        self.peak = max(self.peak, ct["connections"])
        self.peak_rss = max(self.peak_rss, rss_mib(self.fp.proc.pid) or 0)
        return stats

    def start(self):
        self.pcap = os.path.join(WORK, "soak.pcap")
        t0 = time.monotonic()
        workloads.write_pcap(self.pcap, frames(CONNECTIONS))
        self.times["generate"] = time.monotonic() - t0
        rules = os.path.join(WORK, "soak.rules")
        with open(rules, "w") as f:
            f.write(RULES)
        args = ["--rules", rules, "--port", f"p0=net_pcap0,rx_pcap={self.pcap}", "--port", "p1=net_null0,no-rx=1"]
        for name, seconds in TIMEOUTS.items():
            args += [f"--ct-timeout-{name}", str(seconds)]
        self.fp = Flowpath(BUILD, WORK, args, name="soak").start()
        self.fp.wait_ready(timeout=120)

    def replay(self):
        """Until every packet was received and taken to its fate."""
        t1 = time.monotonic()
        deadline = t1 + max(600, CONNECTIONS / 500)
        while True:
            stats = self.sample()
            rx = stats["ports"][0]["rx_packets"]
            done = stats["ports"][1]["tx_packets"] + sum(stats["drops"].values())
            if rx >= self.total and done >= self.total:
                break
            assert time.monotonic() < deadline, f"replay not done: {rx} of {self.total} received"
            assert self.fp.proc.poll() is None, "flowpath died during the replay"
            time.sleep(0.1)
        self.times["replay"] = time.monotonic() - t1
        self.after_replay = stats

    def expire(self):
        """Until no connection is left. Every timeout is at most 2 s and the
        cleanup sleeps at most 5 s between rounds; a million reclaimed in
        rounds of bounded work take a while longer."""
        t2 = time.monotonic()
        deadline = t2 + 30 + CONNECTIONS / 20000
        try:
            while True:
                self.final = self.sample()
                if self.final["conntrack"]["connections"] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.times["expiry"] = time.monotonic() - t2
            self.rss_end = rss_mib(self.fp.proc.pid)
        finally:
            dump = self.fp.ctl("ct-dump")
            self.dump_after = dump.stdout if dump.returncode == 0 else f"ct-dump failed: {dump.stderr}"

    def stop(self):
        if self.fp is not None:
            if self.fp.proc.poll() is None:
                self.fp.ctl("exit")
            self.status = self.fp.wait(timeout=300)
        try:
            os.unlink(self.pcap)
        except (OSError, AttributeError):
            pass


SOAK = Soak()


def test_replay():
    SOAK.start()
    SOAK.replay()
    print(f"     {CONNECTIONS:,} connections ({SOAK.total:,} packets): generated in "
          f"{SOAK.times['generate']:.1f} s, replayed in {SOAK.times['replay']:.1f} s "
          f"({SOAK.total / SOAK.times['replay'] / 1e3:.0f} kpps, "
          f"{CONNECTIONS / SOAK.times['replay'] / 1e3:.1f}k connections/s); peak {SOAK.peak:,} "
          f"live connections, RSS peak {SOAK.peak_rss:.0f} MiB", flush=True)


def test_every_connection_tracked_and_forwarded():
    stats = SOAK.after_replay
    ct = stats["conntrack"]
    assert stats["ports"][0]["rx_packets"] == SOAK.total, stats["ports"]
    assert stats["ports"][1]["tx_packets"] == SOAK.total, (stats["ports"], stats["drops"])
    assert ct["created"] == CONNECTIONS, ct
    assert ct["refused"] == 0 and ct["invalid"] == 0, ct


def test_expired_to_zero():
    SOAK.expire()
    ct = SOAK.final["conntrack"]
    dump = SOAK.dump_after.splitlines()
    assert ct["connections"] == 0, (f"{ct['connections']} connections left after {SOAK.times['expiry']:.0f} s: "
                                    f"{ct}; ct-dump lists {len(dump)}: " + "; ".join(dump[:3]))
    assert ct["expired"] == ct["created"] == CONNECTIONS, ct
    assert ct.get("flushed", 0) == 0, ct
    assert not dump, f"ct-dump after expiry: {dump[:3]}"
    print(f"     expired to zero {SOAK.times['expiry']:.1f} s after the replay; RSS then "
          f"{SOAK.rss_end or 0:.0f} MiB; {len(SOAK.samples)} samples", flush=True)


def test_counters_add_up_at_every_sample():
    assert SOAK.samples, "no samples"
    assert not SOAK.bad_samples, (f"{len(SOAK.bad_samples)} of {len(SOAK.samples)} samples with "
                                  f"created != expired + flushed + connections, first: {SOAK.bad_samples[0]}")


def test_clean_exit_no_sanitizer_report():
    SOAK.stop()
    assert SOAK.status == 0, f"flowpath exit status {SOAK.status}: {SOAK.fp.stderr[-3000:]}"
    for marker in ("LeakSanitizer", "AddressSanitizer", "runtime error:"):
        assert marker not in SOAK.fp.stderr, SOAK.fp.stderr[-3000:]


if __name__ == "__main__":
    run = TestRun()
    try:
        run.case(test_replay)
        if SOAK.after_replay is not None:
            run.case(test_every_connection_tracked_and_forwarded)
            run.case(test_expired_to_zero)
        if SOAK.samples:
            run.case(test_counters_add_up_at_every_sample)
    finally:
        if SOAK.fp is not None:
            run.case(test_clean_exit_no_sanitizer_report)
        else:
            SOAK.stop()
        shutil.rmtree(WORK, ignore_errors=True)
    run.finish()
