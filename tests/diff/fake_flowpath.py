#!/usr/bin/python3
"""A stand-in for flowpath, to check the differential test's own plumbing.

Takes flowpath's command line (--rules, --port NAME=net_pcapN,rx_pcap=..,
tx_pcap=.., the rest ignored), forwards the rx pcaps through a private Open
vSwitch (ovs_oracle.py) and writes the tx pcaps, so difftest.py must pass
with it. With --mutate it then damages its output the way a buggy datapath
would, so difftest.py must fail:

    drop     lose one frame            modify   change one byte of a frame
    reorder  swap two frames of a flow extra    send one frame twice
    reject   exit 2 like a refused rule file
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_packets as gp  # noqa: E402
import ovs_oracle  # noqa: E402
import pcapfile  # noqa: E402


def mutate(out, how):
    """Damage the first port's output that allows `how`; True if done."""
    for name, frames in out.items():
        if how == "drop" and frames:
            del frames[len(frames) // 2]
            return True
        if how == "extra" and frames:
            frames.append(frames[0])
            return True
        if how == "modify" and frames:
            f = bytearray(frames[0])
            f[min(20, len(f) - 1)] ^= 0x01
            frames[0] = bytes(f)
            return True
        if how == "reorder":
            seen = {}
            for i, f in enumerate(frames):
                tag = gp.parse_tag(f)
                if tag and tag[:2] in seen and frames[seen[tag[:2]]] != f:
                    j = seen[tag[:2]]
                    frames[i], frames[j] = frames[j], frames[i]
                    return True
                if tag:
                    seen[tag[:2]] = i
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", required=True)
    ap.add_argument("--port", action="append", required=True)
    ap.add_argument("--mutate", choices=("drop", "reorder", "modify", "extra", "reject"))
    args, _ = ap.parse_known_args()
    if args.mutate == "reject":
        print(f"{args.rules}:1: fake rejection", file=sys.stderr)
        return 2
    names, tx, frames = [], {}, []
    for i, spec in enumerate(args.port):
        name, _, devargs = spec.partition("=")
        kv = dict(x.split("=", 1) for x in devargs.split(",") if "=" in x)
        names.append(name)
        tx[name] = kv["tx_pcap"]
        frames += [(i, f) for f in pcapfile.read_pcap(kv["rx_pcap"])]
    with ovs_oracle.OvsOracle() as ovs:
        out = ovs.run(names, args.rules, frames)
    if args.mutate and not mutate(out, args.mutate):
        print(f"fake_flowpath: nothing to {args.mutate}", file=sys.stderr)
    for name in names:
        pcapfile.write_pcap(tx[name], out[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
