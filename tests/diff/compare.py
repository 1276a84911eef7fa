#!/usr/bin/python3
"""Compare what two switches sent, port by port.

Per port, the frames must be equal as a multiset. Order is checked per input
flow: generated frames end with a tag (gen_packets.py) naming their input
port, flow and sequence number, and for every (output port, input port,
flow) the frames must come out in the same order on both sides (that is all
interface.md promises: packets of one flow leave every port in arrival
order). Frames without a tag (truncated on purpose) are compared as a
multiset only.

The report shows the first differences decoded with scapy, pairs a missing
frame with the other side's frame of the same input when there is one
(showing the fields that differ), and lets the caller add an explanation per
input frame (difftest.py adds Open vSwitch's trace with the rule-file lines).

    compare.py CASE_DIR [--a ovs] [--b out]     # CASE_DIR/{a,b}_<port>.pcap
"""

import argparse
import difflib
import json
import os
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_packets as gp  # noqa: E402
import pcapfile  # noqa: E402
from scapy.all import Ether  # noqa: E402


def describe(frame):
    """One line: scapy's summary, the length and the tag."""
    try:
        summary = Ether(frame).summary()
    except Exception as e:  # scapy can choke on damaged frames
        summary = f"(undecodable: {e})"
    tag = gp.parse_tag(frame)
    tag_text = f" [in=port{tag[0] + 1} flow={tag[1]} seq={tag[2]}]" if tag else " [no tag]"
    return f"{len(frame):4d} B {summary}{tag_text}"


def field_lines(frame):
    try:
        return Ether(frame).show2(dump=True).splitlines()
    except Exception:
        return [frame.hex()]


def field_diff(a, b, label_a, label_b):
    """The decoded header lines that differ between frames a and b."""
    lines = list(difflib.unified_diff(field_lines(a), field_lines(b), label_a, label_b,
                                      n=0, lineterm=""))
    out = [l for l in lines if not l.startswith("@@")]
    if a != b and len(out) <= 2:
        out.append(f"  (bytes differ: {label_a} {a.hex()}")
        out.append(f"                 {label_b} {b.hex()})")
    return out


class Result:
    """Outcome of a comparison: `ok`, the `report` text, and `bad_inputs`,
    the tags (port, flow, seq) of inputs involved in a difference, first
    ones first."""

    def __init__(self):
        self.ok = True
        self.lines = []
        self.bad_inputs = []
        self.counts = {}

    @property
    def report(self):
        return "\n".join(self.lines)

    def note_input(self, tag):
        if tag and tag[:3] not in self.bad_inputs:
            self.bad_inputs.append(tag[:3])


def order_groups(frames):
    """{(input port, flow): [frame, ...]} in output order, tagged frames only."""
    groups = defaultdict(list)
    for f in frames:
        tag = gp.parse_tag(f)
        if tag:
            groups[tag[:2]].append(f)
    return groups


def compare(a, b, label_a="ovs", label_b="flowpath", port_names=None, max_shown=6):
    """Compare {port: [frames]} maps `a` (the reference) and `b`."""
    res = Result()
    ports = list(a) + [p for p in b if p not in a]
    shown = 0
    for port in ports:
        fa, fb = a.get(port, []), b.get(port, [])
        ca, cb = Counter(fa), Counter(fb)
        missing = list((ca - cb).elements())  # a sent it, b did not
        extra = list((cb - ca).elements())
        res.counts[port] = (len(fa), len(fb))
        if missing or extra:
            res.ok = False
            res.lines.append(f"port {port}: {label_a} sent {len(fa)} frames, {label_b} "
                             f"{len(fb)}; {len(missing)} only from {label_a}, "
                             f"{len(extra)} only from {label_b}")
            # Pair frames of the same input (same tag) to show field changes.
            extra_by_tag = defaultdict(list)
            for f in extra:
                extra_by_tag[gp.parse_tag(f)].append(f)
            for f in missing:
                tag = gp.parse_tag(f)
                res.note_input(tag)
                if shown >= max_shown:
                    continue
                shown += 1
                res.lines.append(f"  only {label_a}: {describe(f)}")
                if tag and extra_by_tag.get(tag):
                    other = extra_by_tag[tag].pop(0)
                    res.lines.append(f"  {label_b} sent instead: {describe(other)}")
                    res.lines += ["    " + l for l in field_diff(f, other, label_a, label_b)]
                    extra.remove(other)
            for f in extra:
                res.note_input(gp.parse_tag(f))
                if shown >= max_shown:
                    continue
                shown += 1
                res.lines.append(f"  only {label_b}: {describe(f)}")
            continue
        ga, gb = order_groups(fa), order_groups(fb)
        for key in ga:
            if ga[key] != gb.get(key):
                res.ok = False
                res.note_input(gp.parse_tag(ga[key][0]))
                if shown >= max_shown:
                    continue
                shown += 1
                in_port = port_names[key[0]] if port_names else f"port{key[0] + 1}"
                seq_a = [gp.parse_tag(f)[2] for f in ga[key]]
                seq_b = [gp.parse_tag(f)[2] for f in gb[key]]
                res.lines.append(f"port {port}: flow {key[1]} from {in_port} leaves in a "
                                 f"different order: {label_a} seq {seq_a}, "
                                 f"{label_b} seq {seq_b}")
                if seq_a == seq_b:
                    res.lines.append("  (same packets; one packet's several outputs "
                                     "differ in order)")
    if res.ok:
        total = sum(x for x, _ in res.counts.values())
        res.lines.append(f"identical: {total} frames on {len(ports)} ports")
    return res


def load_side(case_dir, prefix, ports):
    out = {}
    for p in ports:
        path = os.path.join(case_dir, f"{prefix}_{p}.pcap")
        out[p] = pcapfile.read_pcap(path) if os.path.exists(path) else []
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare two switches' outputs of a case.")
    ap.add_argument("case_dir", help="directory with case.json and the pcaps")
    ap.add_argument("--a", default="ovs", help="prefix of the reference pcaps (ovs)")
    ap.add_argument("--b", default="out", help="prefix of the pcaps to check (out)")
    ap.add_argument("--max-shown", type=int, default=10)
    args = ap.parse_args(argv)
    with open(os.path.join(args.case_dir, "case.json")) as f:
        case = json.load(f)
    ports = case["ports"]
    res = compare(load_side(args.case_dir, args.a, ports),
                  load_side(args.case_dir, args.b, ports), args.a, args.b,
                  port_names=ports, max_shown=args.max_shown)
    print(res.report)
    frames = {gp.parse_tag(bytes.fromhex(h)): (p, h) for p, h in case["frames"]}
    for tag in res.bad_inputs[:3]:
        if tag in frames:
            p, h = frames[tag]
            print(f"input on {ports[p]}: {describe(bytes.fromhex(h))}")
            print(f"  hex {h}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
