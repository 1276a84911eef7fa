#!/usr/bin/python3
"""ovs-ofctl against flowpath's OpenFlow agent and against Open vSwitch 3.1.

Runs the real flowpath binary (--openflow-listen, four ports without
traffic) and a private Open vSwitch (tests/diff/ovs_oracle.py) listening on
ptcp, then drives both with the same `ovs-ofctl -O OpenFlow13` commands:
add-flow for every field and action, add-flows of generated rule files,
mod-flows, del-flows (strict, by cookie, by out_port), dump-flows with
filters, dump-aggregate, dump-tables, dump-ports-desc, packet-out, errors.
Then the same frames through Open vSwitch and through flowpath-of-testd (the
agent over a MemoryBackend, which forwards with flowpath's own translation
and action code and lets the test inject frames) with the rules loaded over
OpenFlow, comparing what every port sent and the rule counters. Outputs are
compared after removing what cannot agree (durations, xids, port addresses
and speeds).

Usage: ofctl_test.py BUILD_DIR [--seeds N]
"""

import argparse
import difflib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "diff"))
import gen_case  # noqa: E402
from ovs_oracle import OvsOracle, parse_table_stats  # noqa: E402

PORTS = ["p1", "p2", "p3", "p4"]

# Rules for add-flow one by one: every match field and action ovs-ofctl
# sends in OpenFlow 1.3 that flowpath supports (no conntrack yet).
ADD_FLOWS = [
    "priority=100,ip,nw_src=10.0.0.0/8,tcp,tp_dst=80,actions=output:p2",
    "table=1,cookie=0x1234,idle_timeout=100,hard_timeout=200,priority=7,tcp,tcp_flags=+syn-ack,"
    "nw_ttl=3,nw_frag=no,actions=resubmit(,2),CONTROLLER:65535,mod_nw_tos:8,mod_vlan_vid:5,goto_table:3",
    "dl_src=00:11:22:33:44:55,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_vlan=5,dl_vlan_pcp=3,"
    "actions=strip_vlan,output:p1",
    "in_port=p3,vlan_tci=0x1000/0x1000,actions=set_field:0x1005->vlan_tci,in_port,flood,all",
    "ip,nw_dst=192.168.0.0/255.255.0.255,nw_tos=32,nw_ecn=1,actions=mod_nw_ttl:9,dec_ttl,mod_nw_ecn:2,"
    "push_vlan:0x88a8,mod_nw_src:10.0.0.1,mod_nw_dst:10.0.0.2,output:p4",
    "udp,tp_src=0x1000/0xf000,udp_dst=53,actions=mod_tp_src:1,mod_tp_dst:2,mod_dl_src:00:00:00:00:00:01,"
    "mod_dl_dst:00:00:00:00:00:02",
    "sctp,sctp_src=5,actions=set_field:6->sctp_dst,output:p2",
    "icmp,icmp_type=8,icmp_code=0,actions=set_field:0->icmp_type,output:p3",
    "arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,arp_sha=00:00:00:00:00:01,arp_tha=00:00:00:00:00:00,"
    "actions=set_field:2->arp_op,set_field:10.0.0.9->arp_spa,output:p1",
    "ipv6,ipv6_src=2001:db8::/32,ipv6_dst=::1,ipv6_label=0x12345,"
    "actions=set_field:2001:db8::1->ipv6_dst,set_field:0x54321->ipv6_label,output:p2",
    "icmp6,icmpv6_type=135,icmpv6_code=0,nd_target=fe80::1,nd_sll=00:00:00:00:00:07,"
    "actions=set_field:fe80::2->nd_target,set_field:00:00:00:00:00:08->nd_sll,output:p2",
    "icmp6,icmpv6_type=136,nd_tll=00:00:00:00:00:09,actions=output:p1",
    "priority=0,actions=controller(max_len=128)",
    "priority=5,cookie=0x5,send_flow_rem,check_overlap,ip,actions=drop",
    "table=2,priority=6,cookie=0x6,ip,actions=output:p3",
    "table=2,priority=8,cookie=0x206,reset_counts,no_packet_counts,no_byte_counts,tcp,actions=output:p3",
    "table=2,priority=7,cookie=0x106,udp,actions=output:p4",
    # OpenFlow metadata and the instructions besides apply_actions and goto_table.
    "table=3,priority=9,ip,metadata=0x5/0xff,actions=output:p1,clear_actions,write_metadata:0xa0/0xf0,goto_table:4",
    "table=3,metadata=0x7,actions=write_metadata:0x1",
    # set_field to metadata: whole, masked (one load per run of the mask),
    # and as the load dump-flows prints back.
    "table=2,priority=17,actions=set_field:0x5->metadata,resubmit(,3),set_field:0->metadata,goto_table:4",
    "table=2,priority=16,ip,actions=set_field:0x1ff/0xff00f->metadata,load:0x3->OXM_OF_METADATA[62..63],output:p1",
    "table=2,priority=15,ip,actions=set_field:0x8/0x8->metadata,load:0->OXM_OF_METADATA[],set_field:0x1/0->metadata",
    "table=4,priority=3,actions=clear_actions",
]

# (command, arguments) run against both after ADD_FLOWS, each followed by
# a dump-flows comparison.
CHANGES = [
    ("mod-flows", ["ip,actions=output:p2"]),
    ("mod-flows", ["--strict", "priority=100,ip,nw_src=10.0.0.0/8,tcp,tp_dst=80,actions=output:p3"]),
    ("mod-flows", ["table=2,cookie=0x6/0xff,actions=output:p1"]),
    ("del-flows", ["cookie=0x1234/-1,table=1,tcp"]),
    ("del-flows", ["--strict", "priority=100,ip,nw_src=10.0.0.0/8,tcp,tp_dst=80"]),
    ("del-flows", ["out_port=p1"]),
    ("del-flows", ["table=2,cookie=0x6/0xff"]),
    ("add-flow", ["priority=5,ip,nw_src=1.2.3.4,check_overlap,actions=drop"]),  # refused: overlap
    ("add-flow", ["priority=5,ip,actions=output:p4"]),                          # replaces, counters kept
    ("mod-flows", ["--strict", "table=2,priority=8,tcp,reset_counts,actions=output:p1"]),
    # OpenFlow 1.3: a modify that selects nothing adds nothing; out_port
    # does not restrict a modify; no rule outputs to a group.
    ("mod-flows", ["priority=77,udp,tp_dst=77,actions=output:p2"]),
    ("mod-flows", ["--strict", "priority=78,udp,tp_dst=78,actions=output:p2"]),
    ("mod-flows", ["cookie=0x99/0xff,priority=79,udp,tp_dst=79,actions=output:p2"]),
    ("del-flows", ["out_group=1"]),
    ("mod-flows", ["metadata=0x7,actions=write_metadata:0x2/0x3"]),
    ("del-flows", ["--strict", "table=3,priority=9,ip,metadata=0x5/0xff"]),
    ("del-flows", ["metadata=0x1/0x1"]),
    ("mod-flows", ["out_port=p4,actions=output:p1"]),
    ("del-flows", []),
]

QUERIES = [
    ("dump-flows", []),
    ("dump-flows", ["table=1"]),
    ("dump-flows", ["cookie=0x5/0xff"]),
    ("dump-flows", ["ip"]),
    ("dump-flows", ["out_port=p2"]),
    ("dump-flows", ["metadata=0x5/0xf"]),
    ("dump-aggregate", []),
    ("dump-aggregate", ["tcp"]),
]


class RealFlowpath:
    """The flowpath binary with --openflow-listen, its ports net_null
    devices that receive nothing (so that counters stay as in Open vSwitch,
    which sees no traffic either)."""

    def __init__(self, build, ports, workdir):
        sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
        from fptest import Flowpath  # noqa: E402
        port = free_port()
        args = []
        for i, name in enumerate(ports):
            args += ["--port", f"{name}=net_null{i},no-rx=1"]
        self.fp = Flowpath(build, workdir, args + ["--openflow-listen", f"ptcp:{port}"]).start()
        self.fp.wait_ready()
        self.target = f"tcp:127.0.0.1:{port}"

    def tx_packets(self, port):
        rc, out, _ = ofctl(self.target, "dump-ports", [str(port)])
        m = re.search(r"tx pkts=(\d+)", out)
        return int(m.group(1)) if rc == 0 and m else -1

    def close(self):
        self.fp.signal()
        code = self.fp.wait(60)
        if code != 0:
            raise SystemExit(f"flowpath exited {code}: {self.fp.stderr[-2000:]}")


class TestD:
    """flowpath-of-testd with its stdin command channel."""

    def __init__(self, binary, ports):
        self.proc = subprocess.Popen([binary, "--ports", ",".join(ports), "--listen", "ptcp:0"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise SystemExit(f"flowpath-of-testd did not start: {line}")
        self.target = f"tcp:127.0.0.1:{line[1]}"

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def ofctl(target, command, args):
    res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", command, target] + list(args),
                         capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr


def normalize(text):
    """What must agree: durations, ages, xids and ephemeral ports removed,
    flow lines sorted (both switches list equal-priority rules in their own
    order)."""
    text = re.sub(r" duration=[0-9.]+s,", "", text)
    text = re.sub(r"\(xid=0x[0-9a-f]+\)", "", text)
    text = re.sub(r"tcp:127\.0\.0\.1:\d+", "TARGET", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\|\d+\|", "", text)
    # One action, two encodings: flowpath writes a TOS change as ip_dscp and
    # a TTL change as OFPAT_SET_NW_TTL whichever form ovs-ofctl sent.
    text = re.sub(r"set_field:(\d+)->nw_tos", lambda m: f"set_field:{int(m.group(1)) >> 2}->ip_dscp", text)
    text = re.sub(r"set_field:(\d+)->nw_ttl", r"mod_nw_ttl:\1", text)
    lines = text.splitlines()
    head = [l for l in lines if not l.startswith(" cookie=")]
    flows = sorted(l for l in lines if l.startswith(" cookie="))
    return "\n".join(head + flows)


class Comparison:
    def __init__(self, ovs_target, fp_target):
        self.targets = {"ovs": ovs_target, "flowpath": fp_target}
        self.failures = []
        self.checked = 0

    def same(self, command, args, what=None):
        results = {name: ofctl(t, command, args) for name, t in self.targets.items()}
        (o_rc, o_out, o_err), (f_rc, f_out, f_err) = results["ovs"], results["flowpath"]
        o, f = normalize(o_out + o_err), normalize(f_out + f_err)
        self.checked += 1
        if o_rc != f_rc or o != f:
            diff = difflib.unified_diff(o.splitlines(), f.splitlines(), "Open vSwitch", "flowpath", lineterm="", n=0)
            self.failures.append(f"{what or command} {' '.join(args)} (exit {o_rc} / {f_rc}):\n" + "\n".join(diff))
        return f_rc, f_out

    def check(self, ok, message):
        self.checked += 1
        if not ok:
            self.failures.append(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listen_ovs(ovs, port):
    subprocess.run(["ovs-vsctl", f"--db=unix:{ovs.dir}/db.sock", "--timeout=30", "set-controller", "br0",
                    f"ptcp:{port}:127.0.0.1"], check=True, capture_output=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"tcp:127.0.0.1:{port}"
        time.sleep(0.05)
    raise SystemExit("Open vSwitch does not listen on its ptcp controller port")


def flowpath_forward(fp, rules_path, frames):
    """The frames through flowpath's agent and MemoryBackend, rules loaded
    with ovs-ofctl: {port name: [frames sent]}."""
    for args in (["del-flows"], ["add-flows"]):
        rc, _, err = ofctl(fp.target, args[0], [rules_path] if args[0] == "add-flows" else [])
        if rc != 0:
            raise SystemExit(f"ovs-ofctl {args[0]} into flowpath failed: {err}")
    before = {name: int(fp.cmd(f"sent {i + 1}").split()[1]) for i, name in enumerate(PORTS)}
    for port, frame in frames:
        fp.cmd(f"receive {port + 1} {bytes(frame).hex()}")
    out = {}
    for i, name in enumerate(PORTS):
        sent = fp.cmd(f"sent {i + 1}").split()[2:]
        out[name] = [bytes.fromhex(h) for h in sent[before[name]:]]
    return out


def jumbo_frame(size):
    """A UDP frame of `size` bytes (IPv4 10.0.0.1 -> 10.0.0.2)."""
    ip_len, udp_len = size - 14, size - 34
    return (bytes.fromhex("020000000002020000000001" "0800" "4500") + ip_len.to_bytes(2, "big")
            + bytes.fromhex("000000004011" "0000" "0a000001" "0a000002" "03e8" "07d0") + udp_len.to_bytes(2, "big")
            + b"\0\0" + bytes(i % 251 for i in range(size - 42)))


def jumbo_packet_outs(build, workdir, c):
    """PACKET_OUTs longer than one mbuf (--mbuf-size 1024): sent as chains,
    out of a port as given and through the pipeline (OUTPUT:TABLE, a VLAN
    push), byte for byte in the port's tx pcap."""
    sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
    from fptest import Flowpath  # noqa: E402
    from pcapfile import read_pcap  # noqa: E402
    port = free_port()
    args = ["--mtu", "9000", "--mbuf-size", "1024", "--openflow-listen", f"ptcp:{port}"]
    for i, name in enumerate(PORTS[:2]):
        args += ["--port", f"{name}=net_pcap{i},tx_pcap={workdir}/jumbo_{name}.pcap"]
    fp = Flowpath(build, workdir, args, name="jumbo").start()
    fp.wait_ready()
    target = f"tcp:127.0.0.1:{port}"
    frames = [jumbo_frame(size) for size in (1500, 3000, 8000)]
    rc, _, err = ofctl(target, "add-flow", ["in_port=1,actions=mod_vlan_vid:10,output:p2"])
    c.check(rc == 0, f"jumbo: add-flow: {err}")
    for frame in frames:
        for actions in ("output:p2", "output:TABLE"):
            rc, _, err = ofctl(target, "packet-out", [f"in_port=1,packet={frame.hex()},actions={actions}"])
            c.check(rc == 0, f"jumbo: packet-out of {len(frame)} bytes, {actions}: {err}")
    deadline = time.monotonic() + 10
    while fp.live_stats()["ports"][1]["tx_packets"] < 2 * len(frames) and time.monotonic() < deadline:
        time.sleep(0.05)
    fp.signal()
    code = fp.wait(60)
    c.check(code == 0, f"jumbo: flowpath exited {code}: {fp.stderr[-2000:]}")
    sent = read_pcap(f"{workdir}/jumbo_p2.pcap")
    want = [f for frame in frames for f in (frame, frame[:12] + bytes.fromhex("8100000a") + frame[12:])]
    c.check(sent == want, f"jumbo packet-outs: p2 sent {[len(f) for f in sent]} bytes, want {[len(f) for f in want]}"
                          + ("" if [len(f) for f in sent] != [len(f) for f in want] else " (contents differ)"))


def expand_fields(text):
    """ovs-ofctl's field list ("eth_{src,dst} in_{port,port_oxm}") as a set
    of names."""
    def expand(word):
        m = re.search(r"\{([^{}]*)\}", word)
        if not m:
            return [word]
        return [x for alt in m.group(1).split(",") for x in expand(word[:m.start()] + alt + word[m.end():])]
    words, depth, cur = [], 0, ""
    for ch in text.strip() + " ":
        if ch == " " and depth == 0:
            if cur:
                words.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    return {name for word in words for name in expand(word)}


def table_features(text):
    """Table 0 of `dump-table-features`: {"metadata": line, "set_field":
    fields, "arbitrary mask" / "exact match or wildcard" / "must exact
    match": fields}."""
    table0 = re.split(r"\n\s*tables? [1-9]", text.split("table 0:", 1)[1])[0]
    out = {"metadata": re.search(r"metadata: (.*)", table0).group(1).strip()}
    out["set_field"] = expand_fields(re.search(r"supported on Set-Field: (.*)", table0).group(1))
    for kind in ("arbitrary mask", "exact match or wildcard", "must exact match"):
        m = re.search(rf"\n\s*{kind}: (.*)", table0)
        out[kind] = expand_fields(m.group(1)) if m else set()
    return out


def compare_table_features(c):
    """dump-table-features: what flowpath says of each field it lists is
    what Open vSwitch says of it (metadata included: matched with any mask,
    set by set_field), and the metadata bits match and write_metadata take."""
    got = {}
    for name, target in c.targets.items():
        rc, out, err = ofctl(target, "dump-table-features", [])
        c.check(rc == 0, f"dump-table-features of {name}: {err}")
        got[name] = table_features(out)
    ovs, fp = got["ovs"], got["flowpath"]
    c.check(fp["metadata"] == ovs["metadata"], f"table features metadata: {fp['metadata']} / {ovs['metadata']}")
    c.check("metadata" in fp["set_field"] and fp["set_field"] <= ovs["set_field"],
            f"table features set fields not Open vSwitch's: {sorted(fp['set_field'] - ovs['set_field'])}")
    for kind in ("arbitrary mask", "exact match or wildcard", "must exact match"):
        c.check(fp[kind] <= ovs[kind], f"table features {kind}: flowpath lists {sorted(fp[kind] - ovs[kind])} "
                                       "that Open vSwitch does not")
    c.check("metadata" in fp["arbitrary mask"], "table features: metadata is not listed as maskable")


# Rules and PACKET_OUTs (from p1) whose actions set metadata before the
# packet enters the tables (OUTPUT:TABLE, resubmit): each lands where the
# rules matching that metadata send it. The rules in a table resubmitted
# to change no header (flowpath's later actions would not see the change,
# Open vSwitch's do: docs/openflow.md).
METADATA_RULES = [
    "table=0,metadata=0x5,actions=output:p2",
    "table=0,metadata=0x15/0xff,actions=output:p3",
    "table=0,priority=0,actions=output:p4",
    "table=1,metadata=0x5,actions=output:p3",
    "table=1,priority=0,actions=output:p4",
    "table=1,priority=40000,in_port=p2,actions=output:p3,in_port",
    "table=2,metadata=0x1234/0xffff,actions=output:p2",
]
METADATA_PACKET_OUTS = [
    "set_field:0x5->metadata,resubmit(,1)",
    "set_field:0x5/0xff->metadata,output:table",
    "set_field:0x15->metadata,output:table",
    "load:0x5->OXM_OF_METADATA[],output:table",
    "set_field:0x5->metadata,resubmit(,1),set_field:0xff1234/0xffffff->metadata,resubmit(,2),output:table",
    "resubmit(,1),set_field:0x5->metadata,output:TABLE",
    "set_field:0x5->metadata,resubmit(1,1)",
    "set_field:0x5->metadata,resubmit(2,1)",
    "set_field:0x5->metadata,output:p2",
    "output:table",
]


def metadata_packet_outs(build, workdir, ovs_target, c, ovs):
    """PACKET_OUTs that set metadata before OUTPUT:TABLE or a resubmit (one
    with a port: the first lookup's only), into Open vSwitch and into the
    flowpath binary (net_pcap ports): every port sends the same frames, and
    the rule counters and table statistics agree."""
    sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
    from fptest import Flowpath  # noqa: E402
    from pcapfile import read_pcap  # noqa: E402
    port = free_port()
    args = ["--openflow-listen", f"ptcp:{port}"]
    for i, name in enumerate(PORTS):
        args += ["--port", f"{name}=net_pcap{i},tx_pcap={workdir}/metadata_{name}.pcap"]
    fp = Flowpath(build, workdir, args, name="metadata").start()
    fp.wait_ready()
    c.targets["flowpath"] = f"tcp:127.0.0.1:{port}"
    c.same("del-flows", [])
    for rule in METADATA_RULES:
        c.same("add-flow", [rule])
    # Open vSwitch's table statistics count the earlier steps' frames too.
    tables_before = {name: parse_table_stats(ofctl(t, "dump-tables", [])[1]) for name, t in c.targets.items()}
    paths, before = ovs.start_capture()
    for i, actions in enumerate(METADATA_PACKET_OUTS):
        frame = jumbo_frame(60 + i)  # one length per packet-out: each tells which it was
        c.same("packet-out", [f"in_port=1,packet={frame.hex()},actions={actions}"], "packet-out")
    ovs_sent = ovs.collect(paths, before, ovs.settle())
    want = sum(len(v) for v in ovs_sent.values())
    deadline = time.monotonic() + 10
    while (sum(p["tx_packets"] for p in fp.live_stats()["ports"]) < want and time.monotonic() < deadline):
        time.sleep(0.05)
    # Counters as Open vSwitch's revalidators leave them.
    subprocess.run(["ovs-appctl", "-t", os.path.join(ovs.dir, "vswitchd.ctl"), "revalidator/wait"],
                   check=True, capture_output=True)
    c.same("dump-flows", [], "dump-flows after the metadata packet-outs")
    tables = {}
    for name, t in c.targets.items():
        after = parse_table_stats(ofctl(t, "dump-tables", [])[1])
        tables[name] = {table: (lookups - tables_before[name][table][0], matched - tables_before[name][table][1])
                        for table, (lookups, matched) in after.items()}
    c.check(tables["ovs"] == tables["flowpath"] and tables["ovs"][1] == (5, 5),
            "table lookups and matches of the metadata packet-outs: Open vSwitch "
            f"{ {t: v for t, v in tables['ovs'].items() if v != (0, 0)} }, flowpath "
            f"{ {t: v for t, v in tables['flowpath'].items() if v != (0, 0)} }")
    fp.signal()
    code = fp.wait(60)
    c.check(code == 0, f"metadata packet-outs: flowpath exited {code}: {fp.stderr[-2000:]}")
    for name in PORTS:
        o = sorted(ovs_sent.get(name, []), key=len)
        f = sorted(read_pcap(f"{workdir}/metadata_{name}.pcap"), key=len)
        c.check(o == f, f"metadata packet-outs: {name} sent frames of {[len(x) for x in f]} bytes through "
                        f"flowpath, {[len(x) for x in o]} through Open vSwitch" + (" (contents differ)" if
                        [len(x) for x in o] == [len(x) for x in f] else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args()
    testd = os.path.join(args.build_dir, "tests", "openflow", "flowpath-of-testd")
    with OvsOracle(vlan_limit=2) as ovs, tempfile.TemporaryDirectory() as tmp:
        ovs.set_ports(PORTS)
        fp = TestD(testd, PORTS)
        real = RealFlowpath(args.build_dir, PORTS, tmp)
        c = Comparison(listen_ovs(ovs, free_port()), real.target)
        try:
            for rule in ADD_FLOWS:
                c.same("add-flow", [rule])
            for command, cargs in QUERIES:
                c.same(command, cargs)
            c.same("dump-tables", [], "dump-tables (rules per table)")
            compare_table_features(c)
            for command, cargs in CHANGES:
                c.same(command, cargs)
                c.same("dump-flows", [], f"dump-flows after {command} {' '.join(cargs)}")
            # Errors Open vSwitch and flowpath give alike.
            for bad in ["actions=group:1", "ip,actions=set_field:1->tcp_src"]:
                c.same("add-flow", [bad], "error for")
            # Port descriptions: numbers and names (addresses and speeds differ).
            _, out = c.same("dump-flows", [])
            rc, descs, _ = ofctl(fp.target, "dump-ports-desc", [])
            c.check(rc == 0 and [m for m in re.findall(r" (\d+)\((\w+)\):", descs)] ==
                    [(str(i + 1), n) for i, n in enumerate(PORTS)], f"dump-ports-desc: {descs}")
            # Generated rule files through add-flows, then the same frames through both.
            for seed in range(1, args.seeds + 1):
                case = gen_case.generate(seed, gen_case.Options(ports=4))
                rules_path = os.path.join(tmp, f"rules{seed}.txt")
                with open(rules_path, "w") as f:
                    f.write(case.rules_text)
                c.same("del-flows", [])
                c.same("add-flows", [rules_path], f"add-flows seed {seed}")
                c.same("dump-flows", [], f"dump-flows seed {seed}")
                # The frames: Open vSwitch and the agent over a MemoryBackend,
                # whose counters the comparison after them reads.
                c.targets["flowpath"] = fp.target
                frames = [(p, f) for p, f in case.frames]
                ovs_out = ovs.run(PORTS, rules_path, frames)
                fp_out = flowpath_forward(fp, rules_path, frames)
                # Frames from different input ports have no order between
                # them: compare what each port sent as a multiset (the
                # frames carry tags, so equal frames are the same frame).
                for name in PORTS:
                    o, f = sorted(ovs_out.get(name, [])), sorted(fp_out[name])
                    first = next((i for i in range(min(len(o), len(f))) if o[i] != f[i]), min(len(o), len(f)))
                    c.check(o == f, f"seed {seed}: port {name} sent {len(f)} frames through flowpath, {len(o)} "
                                    f"through Open vSwitch; first difference at frame {first}:\n"
                                    f"  ovs      {o[first].hex() if first < len(o) else '-'}\n"
                                    f"  flowpath {f[first].hex() if first < len(f) else '-'}")
                # Open vSwitch's revalidators push the datapath's counters to the rules.
                subprocess.run(["ovs-appctl", "-t", os.path.join(ovs.dir, "vswitchd.ctl"), "revalidator/wait"],
                               check=True, capture_output=True)
                c.same("dump-flows", [], f"counters after the frames of seed {seed}")
                # Table statistics (lookups, matches), summed over the seeds so far.
                c.same("dump-tables", [], f"table statistics after the frames of seed {seed}")
                c.targets["flowpath"] = real.target
            # packet-out through the agent: out of p2 as given.
            frame = "ffffffffffff000000000001080600010800060400010000000000010a0000010000000000000a000002"
            rc, _, err = ofctl(fp.target, "packet-out", [f"in_port=1,packet={frame},actions=output:p2"])
            sent = fp.cmd("sent 2").split()
            c.check(rc == 0 and sent[-1] == frame, f"packet-out: rc {rc} {err}, last sent on p2 {sent[-1:]}")
            # ... and through the real datapath: p2 sent one more, p3 one more
            # after a packet-out to TABLE that a rule sends there.
            before = [real.tx_packets(p) for p in (2, 3)]
            rc, _, err = ofctl(real.target, "packet-out", [f"in_port=1,packet={frame},actions=output:p2"])
            c.check(rc == 0, f"packet-out into flowpath: {err}")
            ofctl(real.target, "del-flows", [])
            ofctl(real.target, "add-flow", ["in_port=1,arp,actions=output:p3"])
            rc, _, err = ofctl(real.target, "packet-out", [f"in_port=1,packet={frame},actions=output:TABLE"])
            c.check(rc == 0, f"packet-out to TABLE into flowpath: {err}")
            try:
                deadline = time.monotonic() + 5
                while [real.tx_packets(p) for p in (2, 3)] != [before[0] + 1, before[1] + 1]:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            except AssertionError:
                c.check(False, f"packet-outs: tx of p2, p3 {[real.tx_packets(p) for p in (2, 3)]}, before {before}")
            # The packet-out to TABLE was the datapath's one lookup (a match),
            # as it is Open vSwitch's (its translation credits table stats).
            rc, tables, _ = ofctl(real.target, "dump-tables", [])
            c.check(rc == 0 and re.search(r"table 0:\s*\n\s*active=1, lookup=1, matched=1\n", tables),
                    f"dump-tables after one packet-out to TABLE: {tables[:300]}")
            # A port number flowpath does not have: refused (Open vSwitch accepts it).
            rc, _, err = ofctl(real.target, "add-flow", ["actions=output:9"])
            c.check(rc != 0 and "OFPBAC_BAD_OUT_PORT" in err, f"output:9 was not refused: {err}")
            stats = fp.cmd("stats")
            c.check(stats.startswith("connected"), f"stats: {stats}")
            jumbo_packet_outs(args.build_dir, tmp, c)
            metadata_packet_outs(args.build_dir, tmp, c.targets["ovs"], c, ovs)
        finally:
            fp.close()
            real.close()
    for failure in c.failures:
        print(f"FAIL {failure}\n")
    print(f"{c.checked - len(c.failures)}/{c.checked} comparisons agree")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
