#!/usr/bin/python3
"""Real traffic through flowpath's stateful firewall: kernel TCP (iperf3)
and ping between two network namespaces.

Namespace A (10.77.0.1/24 on a0) and namespace B (10.77.0.2/24 on b0) are
joined through a third, the switch's, where flowpath runs with the near
ends of the veth pairs as `net_af_packet` ports (a = vethA, b = vethB).
Checksum and segmentation offloads are off on every end (ethtool -K), so
the kernel sends finished, MTU-sized frames. The rule set lets through
only connections opened from A (ct(commit) for +new from a, +est both ways,
+rel back to a, ARP flooded, the rest dropped):

- ping A -> B answers; ping B -> A does not;
- iperf3 from A to B (both directions of data: -R too) moves data; iperf3
  from B to A cannot connect;
- ct-dump then lists the connections A opened and none opened by B, and
  the conntrack counters add up.

Everything is time-bounded (ping -W, iperf3 -t and --connect-timeout,
process timeouts). Addresses exist only inside the namespaces this test
creates, and they are deleted on the way out, failures included. Needs root
(CI runs as root): without it the test fails rather than skip.

Usage: netns_conntrack_test.py BUILD_DIR
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "diff"))
from fptest import Flowpath, TestRun, workdir  # noqa: E402
from netns import Netns, require_root  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
WORK = workdir("flowpath_netns_ct_")
A_IP, B_IP = "10.77.0.1", "10.77.0.2"
IPERF_PORT = 5201
RULES = """\
# Only connections opened from port a (namespace A) pass.
table=0,priority=100,ip,ct_state=-trk actions=ct(table=1)
table=0,priority=50,arp actions=flood
table=0,priority=0 actions=drop
table=1,priority=100,ip,in_port=a,ct_state=+trk+new actions=ct(commit),output:b
table=1,priority=100,ip,in_port=a,ct_state=+trk+est actions=output:b
table=1,priority=100,ip,in_port=b,ct_state=+trk+est actions=output:a
table=1,priority=90,ip,in_port=b,ct_state=+trk+rel actions=output:a
table=1,priority=1 actions=drop
"""


class Topology:
    """Namespaces A, B and the switch's, the veths, and flowpath between."""

    def __init__(self):
        self.sw = self.a = self.b = None
        self.fp = None

    def build(self):
        require_root("netns_conntrack_test")
        self.sw = Netns("ctsw").create()
        self.a = Netns("cta").create()
        self.b = Netns("ctb").create()
        self.sw.add_veth("vethA", "a0", peer_ns=self.a)
        self.sw.add_veth("vethB", "b0", peer_ns=self.b)
        self.a.run(["ip", "addr", "add", f"{A_IP}/24", "dev", "a0"])
        self.b.run(["ip", "addr", "add", f"{B_IP}/24", "dev", "b0"])
        rules = os.path.join(WORK, "firewall.rules")
        with open(rules, "w") as f:
            f.write(RULES)
        self.fp = Flowpath(BUILD, WORK, ["--rules", rules,
                                         "--port", "a=net_af_packet0,iface=vethA",
                                         "--port", "b=net_af_packet1,iface=vethB"], name="fw")
        self.fp.args = self.sw.exec_prefix() + self.fp.args
        self.fp.start()
        self.fp.wait_ready()
        return self

    def close(self):
        if self.fp and self.fp.proc and self.fp.proc.poll() is None:
            self.fp.ctl("exit")
            try:
                self.fp.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.fp.proc.kill()
                self.fp.wait(timeout=10)
        for ns in (self.a, self.b, self.sw):
            if ns:
                ns.close()


TOPO = Topology()


def ping(ns, address, count, wait_s):
    """ping's exit status (0: replies came) and output, bounded in time."""
    res = ns.run(["ping", "-n", "-c", str(count), "-W", str(wait_s), "-i", "0.2", address],
                 timeout=count * (wait_s + 1) + 10, check=False)
    return res.returncode, res.stdout + res.stderr


class Iperf3Server:
    """iperf3 -s -1 in a namespace (one client, then it exits)."""

    def __init__(self, ns, bind):
        self.proc = subprocess.Popen(ns.exec_prefix() + ["iperf3", "-s", "-1", "-B", bind, "-p",
                                                         str(IPERF_PORT), "-J"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Listening once `ss` in its namespace shows the port.
        deadline = time.time() + 10
        while time.time() < deadline:
            if f":{IPERF_PORT}" in ns.run(["ss", "-ltn"], check=False).stdout:
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError("iperf3 server did not start listening")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def iperf3_client(ns, server, extra=()):
    res = ns.run(["iperf3", "-c", server, "-p", str(IPERF_PORT), "-t", "2", "-J",
                  "--connect-timeout", "2000"] + list(extra), timeout=30, check=False)
    try:
        report = json.loads(res.stdout)
    except ValueError:
        report = {"error": (res.stdout + res.stderr).strip()[:300]}
    return res.returncode, report


def ct_lines():
    reply = TOPO.fp.ctl("ct-dump")
    assert reply.returncode == 0, f"ct-dump failed: {reply.stdout}{reply.stderr}"
    return [l for l in reply.stdout.splitlines() if l.strip()]


def stats():
    reply = TOPO.fp.ctl("stats-json")
    assert reply.returncode == 0, reply.stderr
    return json.loads(reply.stdout)


def test_ping_a_to_b_answers():
    rc, out = ping(TOPO.a, B_IP, 3, 2)
    assert rc == 0 and " 0% packet loss" in out, f"ping A -> B failed:\n{out}"


def test_ping_b_to_a_is_blocked():
    rc, out = ping(TOPO.b, A_IP, 3, 1)
    assert rc != 0 and "100% packet loss" in out, f"ping B -> A got through:\n{out}"


def test_tcp_a_to_b_moves_data():
    for extra, label in (((), "A sends"), (("-R",), "B sends (-R)")):
        server = Iperf3Server(TOPO.b, B_IP)
        try:
            rc, report = iperf3_client(TOPO.a, B_IP, extra)
        finally:
            server.stop()
        assert rc == 0 and "error" not in report, f"iperf3 A -> B ({label}) failed: {report.get('error')}"
        received = report["end"]["sum_received"]["bytes"]
        assert received > 100_000, f"iperf3 A -> B ({label}): only {received} bytes arrived"
        print(f"     iperf3 {label}: {received / 1e6:.1f} MB, "
              f"{report['end']['sum_received']['bits_per_second'] / 1e6:.0f} Mbit/s", flush=True)


def test_tcp_b_to_a_cannot_connect():
    server = Iperf3Server(TOPO.a, A_IP)
    try:
        started = time.time()
        rc, report = iperf3_client(TOPO.b, A_IP)
    finally:
        server.stop()
    moved = report.get("end", {}).get("sum_received", {}).get("bytes", 0)
    assert "error" in report and not moved, f"iperf3 B -> A connected (exit {rc}): {json.dumps(report)[:400]}"
    assert time.time() - started < 25
    print(f"     iperf3 B -> A (exit {rc}): {report['error']}", flush=True)


def test_connections_are_those_a_opened():
    lines = ct_lines()
    tcp = [l for l in lines if l.startswith("tcp,")]
    assert any(f"orig=(src={A_IP},dst={B_IP}," in l and f"dport={IPERF_PORT})" in l for l in tcp), \
        "no A -> B iperf3 connection in ct-dump:\n" + "\n".join(lines)
    assert not [l for l in lines if f"orig=(src={B_IP}," in l], \
        "B opened connections:\n" + "\n".join(lines)
    assert any(l.startswith("icmp,") and f"src={A_IP},dst={B_IP}" in l and "type=8" in l for l in lines), \
        "no ICMP echo connection from A:\n" + "\n".join(lines)
    ct = stats()["conntrack"]
    flushed = ct.get("flushed", 0)
    assert ct["created"] == ct["expired"] + flushed + ct["connections"], ct
    assert ct["connections"] >= len(lines), (ct, len(lines))
    assert ct["created"] >= 5, ct  # 2 per iperf3 run (control, data), the pings
    for line in tcp:
        assert re.search(r"protoinfo=\(state=[A-Z_]+\)", line), line


def test_blocked_attempts_were_dropped():
    s = stats()
    dropped = sum(s["drops"].values())
    assert dropped >= 3, f"nothing dropped: {s['drops']}"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    run = TestRun()
    try:
        TOPO.build()
        for test in (test_ping_a_to_b_answers, test_ping_b_to_a_is_blocked, test_tcp_a_to_b_moves_data,
                     test_tcp_b_to_a_cannot_connect, test_connections_are_those_a_opened,
                     test_blocked_attempts_were_dropped):
            run.case(test)
    except Exception as error:  # the topology or flowpath could not be set up
        run.failed += 1
        print(f"FAIL setup: {error}", flush=True)
    finally:
        TOPO.close()
        shutil.rmtree(WORK, ignore_errors=True)
    if TOPO.fp and TOPO.fp.proc and TOPO.fp.proc.returncode not in (0, None):
        run.failed += 1
        print(f"FAIL flowpath exit status {TOPO.fp.proc.returncode}:\n{TOPO.fp.stderr[-2000:]}")
    run.finish()
