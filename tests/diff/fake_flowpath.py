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
    stale    (live mode) answer rule changes OK without making them

Live mode (difftest_changes.py): when an rx_pcap is a FIFO, the fake reads
the FIFOs while they are written, forwards what arrives through Open
vSwitch, and answers flowpath-ctl on --ctl-socket (flowpath's protocol:
"COMMAND\nBODY" in, "OK\n" or "ERROR\n" and text out) for show, stats-json
(ports' rx/tx counters; a worker's "misses" = data frames forwarded),
exit and the rule changes, which it passes to ovs-ofctl after forwarding
what it has read and then purges Open vSwitch's datapath flows. It drops
the driver's filler frames (dl_type 0x88b7) itself, as flowpath's filler
rule would, and exits once every FIFO reached its end and all is forwarded
(--exit-when-idle).
"""

import argparse
import json
import os
import select
import socket
import stat
import struct
import sys
import threading
import time

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


FILLER_TYPE = b"\x88\xb7"
CHANGES = ("add-flow", "add-flows", "del-flows", "mod-flows", "replace-flows")


class FifoReader(threading.Thread):
    """Reads one rx FIFO (pcap records) into a shared list until its end."""

    def __init__(self, index, path, inbox):
        super().__init__(daemon=True)
        self.index, self.path, self.inbox = index, path, inbox
        self.count = 0
        self.done = False

    def run(self):
        with open(self.path, "rb") as f:
            f.read(24)
            while True:
                head = f.read(16)
                if len(head) < 16:
                    break
                frame = f.read(struct.unpack("<IIII", head)[2])
                with self.inbox["lock"]:
                    self.inbox["frames"].append((self.index, frame))
                    self.count += 1
        self.done = True


def live(args, names, rx, tx):
    """Serves the control socket and forwards the FIFOs' frames; returns
    {port: frames sent}."""
    inbox = {"lock": threading.Lock(), "frames": []}
    readers = [FifoReader(i, path, inbox) for i, path in enumerate(rx)]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(args.ctl_socket):
        os.unlink(args.ctl_socket)
    server.bind(args.ctl_socket)
    server.listen(16)
    forwarded = 0
    with ovs_oracle.OvsOracle() as ovs:
        ovs.set_ports(names)
        ovs.load_rules(args.rules)
        paths, before = ovs.start_capture()
        for r in readers:
            r.start()

        def forward():
            nonlocal forwarded
            with inbox["lock"]:
                frames, inbox["frames"] = inbox["frames"], []
            data = [(p, f) for p, f in frames if f[12:14] != FILLER_TYPE]
            if data:
                ovs.inject(data)
                forwarded += len(data)

        def answer(command, body):
            forward()
            verb, _, rest = command.partition(" ")
            if verb == "show":
                return True, " ".join(names) + "\n"
            if verb == "stats-json":
                now = ovs.port_stats()
                ports = [{"name": n, "rx_packets": readers[i].count,
                          "tx_packets": now[n][1] - before[n][1]} for i, n in enumerate(names)]
                return True, json.dumps({"ports": ports, "workers": [{"misses": forwarded}],
                                         "slow_path": {}, "drops": {}})
            if verb in CHANGES and args.mutate == "stale":
                return True, ""
            if verb in CHANGES:
                args_ = [rest] if rest and verb in ("add-flow", "mod-flows", "del-flows") else []
                if verb in ("add-flows", "replace-flows"):
                    args_ = [rest]
                res = ovs.change(verb, *args_)
                ovs._ctl("revalidator/purge")
                return res.returncode == 0, res.stderr.replace("ovs-ofctl: ", "")
            return False, f"unknown command '{command}'\n"

        idle_since = None
        while True:
            ready, _, _ = select.select([server], [], [], 0.01)
            if ready:
                conn, _ = server.accept()
                with conn:
                    request = b""
                    while True:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        request += chunk
                    command, _, body = request.decode().partition("\n")
                    if command == "exit":
                        conn.sendall(b"OK\nstopping\n")
                        break
                    ok, text = answer(command, body)
                    conn.sendall((("OK\n" if ok else "ERROR\n") + text).encode())
            forward()
            if all(r.done for r in readers) and not inbox["frames"]:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > args.exit_when_idle / 1000:
                    break
        server.close()
        os.unlink(args.ctl_socket)
        return ovs.collect(paths, before, ovs.settle())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", required=True)
    ap.add_argument("--port", action="append", required=True)
    ap.add_argument("--mutate", choices=("drop", "reorder", "modify", "extra", "reject", "stale"))
    ap.add_argument("--ctl-socket", default="/tmp/flowpath.ctl")
    ap.add_argument("--exit-when-idle", type=int, default=300)
    args, _ = ap.parse_known_args()
    if args.mutate == "reject":
        print(f"{args.rules}:1: fake rejection", file=sys.stderr)
        return 2
    names, tx, rx = [], {}, []
    for i, spec in enumerate(args.port):
        name, _, devargs = spec.partition("=")
        kv = dict(x.split("=", 1) for x in devargs.split(",") if "=" in x)
        names.append(name)
        tx[name] = kv["tx_pcap"]
        rx.append(kv["rx_pcap"])
    if any(stat.S_ISFIFO(os.stat(p).st_mode) for p in rx):
        out = live(args, names, rx, tx)
    else:
        frames = [(i, f) for i, path in enumerate(rx) for f in pcapfile.read_pcap(path)]
        with ovs_oracle.OvsOracle() as ovs:
            out = ovs.run(names, args.rules, frames)
    if args.mutate not in (None, "stale") and not mutate(out, args.mutate):
        print(f"fake_flowpath: nothing to {args.mutate}", file=sys.stderr)
    for name in names:
        pcapfile.write_pcap(tx[name], out[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
