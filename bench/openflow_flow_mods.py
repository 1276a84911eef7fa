#!/usr/bin/python3
"""Flow_mods per second through an OpenFlow connection: `ovs-ofctl -O
OpenFlow13 add-flows tcp:...` of a generated rule file (100,000 rules by
default), into flowpath's agent and into Open vSwitch 3.1, timed from the
command's start to its end (ovs-ofctl waits for the closing barrier, so
every flow_mod has been applied; it sends each flow_mod with a barrier and
waits for the reply, so the time is mostly round trips). Then dump-flows is
timed the same way. Beside the wall-clock time, the CPU time the switch
process spent (ovs-vswitchd; flowpath without its busy-polling worker): on
a loaded machine the wall clock mostly measures the neighbours, the CPU
time the switch. Rounds alternate between the systems.

A third system gives the floor: bench/null_openflow_switch answers what
ovs-ofctl waits for and drops the flow_mods undecoded, on the CPUs of
flowpath's agent thread. Its time is what any switch pays here (ovs-ofctl's
own work, and per flow_mod a loopback TCP round trip with two context
switches on a shared core); a switch's own share is its time above it.

flowpath is the real binary (--openflow-listen; four net_null ports without
traffic, as Open vSwitch's bridge has four ports without traffic): the
flow_mods go through the agent into the slow path's live rule set.

Usage: openflow_flow_mods.py BUILD_DIR [--rules N] [--rounds R] [--json FILE]
(bench.py runs it as the `flowmods` item of the benchmark report.)
Prints one line per system and measurement, and the ratio.
"""

import argparse
import json
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
FLOOR = "null switch"  # the system that keeps no rules


def rule_lines(n, seed=1):
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
    """User + system CPU time of process `pid`'s threads but its forwarding
    workers (flowpath's rte-worker-N poll whether there is work or not;
    Open vSwitch here has none)."""
    ticks = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if open(f"/proc/{pid}/task/{tid}/comm").read().startswith("rte-worker"):
                continue
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(systems, path, rules, rounds):
    """Rounds alternate between the systems (the machine's drift hits both
    alike). {name: medians and rounds}."""
    raw = {name: {"add": [], "dump": [], "cpu": []} for name, _, _ in systems}
    for _ in range(rounds):
        for name, target, pid in systems:
            keeps_rules = name != FLOOR
            ofctl(target, "del-flows")
            cpu = cpu_seconds(pid)
            seconds, _ = ofctl(target, "add-flows", path)
            raw[name]["cpu"].append(cpu_seconds(pid) - cpu)
            raw[name]["add"].append(seconds)
            seconds, out = ofctl(target, "dump-flows")
            raw[name]["dump"].append(seconds)
            listed = sum(1 for line in out.splitlines() if "cookie=" in line)
            if keeps_rules and listed != rules:
                raise SystemExit(f"{name}: dump-flows lists {listed} rules, {rules} added")
    results = {}
    for name, r in raw.items():
        add = statistics.median(r["add"])
        results[name] = {"add_seconds": add, "flow_mods_per_second": rules / add, "add_rounds": r["add"],
                         "cpu_seconds": statistics.median(r["cpu"]), "dump_seconds": statistics.median(r["dump"])}
    return results


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"flowpath exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("flowpath does not listen on its OpenFlow port")


def agent_cpus(pid):
    """The CPUs flowpath's OpenFlow agent thread may run on."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if open(f"/proc/{pid}/task/{tid}/comm").read().strip() == "fp-openflow":
                return os.sched_getaffinity(int(tid))
        except FileNotFoundError:
            continue
    raise SystemExit("flowpath has no fp-openflow thread")


def start_floor(build_dir, cpus):
    """bench/null_openflow_switch on `cpus`: (process, its port)."""
    binary = os.path.join(build_dir, "bench", "null_openflow_switch")
    proc = subprocess.Popen([binary, "0", *PORTS], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        proc.kill()
        raise SystemExit(f"{binary} did not start: {line}")
    return proc, int(line[1])


def run(build_dir, rules=100000, rounds=3):
    """The three systems started, `rounds` alternating rounds: {system:
    results} (keys "Open vSwitch", "flowpath" and FLOOR)."""
    binary = os.path.join(build_dir, "flowpath")
    with OvsOracle() as ovs, tempfile.TemporaryDirectory() as tmp:
        ovs.set_ports(PORTS)
        port = free_port()
        subprocess.run(["ovs-vsctl", f"--db=unix:{ovs.dir}/db.sock", "set-controller", "br0",
                        f"ptcp:{port}:127.0.0.1"], check=True)
        time.sleep(1)
        fp_port = free_port()
        argv = [binary, "--ctl-socket", os.path.join(tmp, "fp.ctl"), "--openflow-listen", f"ptcp:{fp_port}"]
        for i, name in enumerate(PORTS):
            argv += ["--port", f"{name}=net_null{i},no-rx=1"]
        flowpath = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        floor = None
        try:
            wait_listening(fp_port, flowpath)
            floor, floor_port = start_floor(build_dir, agent_cpus(flowpath.pid))
            path = os.path.join(tmp, "rules.txt")
            with open(path, "w") as f:
                f.write("\n".join(rule_lines(rules)) + "\n")
            systems = (("Open vSwitch", f"tcp:127.0.0.1:{port}", ovs.vswitchd.pid),
                       ("flowpath", f"tcp:127.0.0.1:{fp_port}", flowpath.pid),
                       (FLOOR, f"tcp:127.0.0.1:{floor_port}", floor.pid))
            return measure(systems, path, rules, rounds)
        finally:
            if floor:
                floor.kill()
                floor.wait()
            flowpath.terminate()
            flowpath.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--rules", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    results = run(args.build_dir, args.rules, args.rounds)
    for name, r in results.items():
        print(f"{name:13s} add-flows {args.rules} rules: {r['add_seconds']:6.2f} s = {r['flow_mods_per_second']:7.0f} "
              f"flow_mods/s, switch CPU {r['cpu_seconds']:5.2f} s; dump-flows {r['dump_seconds']:5.2f} s "
              f"(medians of {args.rounds}; each round {', '.join('%.2f' % x for x in r['add_rounds'])} s)")
    ovs, fp, floor = results["Open vSwitch"], results["flowpath"], results[FLOOR]
    print(f"flowpath/Open vSwitch: flow_mods per second {fp['flow_mods_per_second'] / ovs['flow_mods_per_second']:.2f}x, "
          f"per switch CPU second {ovs['cpu_seconds'] / max(fp['cpu_seconds'], 1e-3):.2f}x")
    print(f"above the null switch's {floor['add_seconds']:.2f} s: Open vSwitch {ovs['add_seconds'] - floor['add_seconds']:.2f} s, "
          f"flowpath {fp['add_seconds'] - floor['add_seconds']:.2f} s; the best ratio any switch could reach here: "
          f"{ovs['add_seconds'] / floor['add_seconds']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rules": args.rules, "rounds": args.rounds, "systems": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
