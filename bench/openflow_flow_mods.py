#!/usr/bin/python3
"""Flow_mods per second through an OpenFlow connection: `ovs-ofctl -O
OpenFlow13 add-flows tcp:...` of a generated rule file (100,000 rules by
default), into flowpath's agent and into Open vSwitch 3.1, timed from the
command's start to its end (ovs-ofctl waits for the closing barrier, so
every flow_mod has been applied; it sends each flow_mod with a barrier and
waits for the reply, so the time is mostly round trips). Then dump-flows is
timed the same way. Beside the wall-clock time, the CPU time the switch
process spent (ovs-vswitchd, flowpath-of-testd): on a loaded machine the
wall clock mostly measures the neighbours, the CPU time the switch.

flowpath here is flowpath-of-testd: the agent over a MemoryBackend (the
rule store the tests use), not the datapath; the datapath's own rule-change
path replaces the backend's part of the time.

Usage: openflow_flow_mods.py BUILD_DIR [--rules N] [--rounds R]
Prints one line per system and measurement, and the ratio.
"""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "diff"))
from ovs_oracle import OvsOracle  # noqa: E402

PORTS = ["p1", "p2", "p3", "p4"]


def rules(n, seed=1):
    """n distinct rules over a few match shapes (exact and prefix IPv4,
    TCP ports, MACs) in 4 tables, as a controller's would look."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c = (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff
        port = PORTS[rng.randrange(len(PORTS))]
        shape = i % 4
        if shape == 0:
            match = f"ip,nw_dst=10.{a}.{b}.{c}"
        elif shape == 1:
            match = f"tcp,nw_src=172.{a}.{b}.{c},tp_dst={rng.randrange(1, 65535)}"
        elif shape == 2:
            match = f"dl_dst=02:00:00:{a:02x}:{b:02x}:{c:02x}"
        else:
            match = f"ip,nw_src=192.{a}.{b}.0/24,nw_dst=10.{b}.{c}.{rng.randrange(256)}/{rng.choice((24, 32))}"
        out.append(f"table={shape},priority={rng.randrange(1, 65535)},cookie={i},{match},actions=output:{port}")
    return out


def ofctl(target, *args):
    start = time.monotonic()
    res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args[:1], target, *args[1:]],
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise SystemExit(f"ovs-ofctl {args[0]} {target} failed: {res.stderr[:500]}")
    return time.monotonic() - start, res.stdout


def cpu_seconds(pid):
    """User + system CPU time of process `pid` and all its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--rules", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    testd_path = os.path.join(args.build_dir, "tests", "openflow", "flowpath-of-testd")
    with OvsOracle() as ovs, tempfile.TemporaryDirectory() as tmp:
        ovs.set_ports(PORTS)
        port = free_port()
        subprocess.run(["ovs-vsctl", f"--db=unix:{ovs.dir}/db.sock", "set-controller", "br0",
                        f"ptcp:{port}:127.0.0.1"], check=True)
        time.sleep(1)
        testd = subprocess.Popen([testd_path, "--ports", ",".join(PORTS), "--listen", "ptcp:0"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        fp_target = "tcp:127.0.0.1:" + testd.stdout.readline().split()[1]
        path = os.path.join(tmp, "rules.txt")
        with open(path, "w") as f:
            f.write("\n".join(rules(args.rules)) + "\n")
        results = {}
        try:
            systems = (("Open vSwitch", f"tcp:127.0.0.1:{port}", ovs.vswitchd.pid), ("flowpath", fp_target, testd.pid))
            for name, target, pid in systems:
                adds, dumps, cpus = [], [], []
                for _ in range(args.rounds):
                    ofctl(target, "del-flows")
                    cpu = cpu_seconds(pid)
                    seconds, _ = ofctl(target, "add-flows", path)
                    cpus.append(cpu_seconds(pid) - cpu)
                    adds.append(seconds)
                    seconds, out = ofctl(target, "dump-flows")
                    dumps.append(seconds)
                    listed = sum(1 for line in out.splitlines() if "cookie=" in line)
                    if listed != args.rules:
                        raise SystemExit(f"{name}: dump-flows lists {listed} rules, {args.rules} added")
                results[name] = (statistics.median(adds), statistics.median(cpus))
                print(f"{name:13s} add-flows {args.rules} rules: {statistics.median(adds):6.2f} s "
                      f"= {args.rules / statistics.median(adds):7.0f} flow_mods/s, switch CPU "
                      f"{statistics.median(cpus):5.2f} s = {args.rules / max(statistics.median(cpus), 1e-3):7.0f} "
                      f"flow_mods per CPU second; dump-flows {statistics.median(dumps):5.2f} s "
                      f"(medians of {args.rounds})")
        finally:
            testd.stdin.close()
            testd.wait(timeout=30)
    (ovs_wall, ovs_cpu), (fp_wall, fp_cpu) = results["Open vSwitch"], results["flowpath"]
    print(f"flowpath/Open vSwitch: flow_mods per second {ovs_wall / fp_wall:.2f}x, "
          f"per switch CPU second {ovs_cpu / max(fp_cpu, 1e-3):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
