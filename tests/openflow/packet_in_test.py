#!/usr/bin/python3
"""PACKET_IN through the flowpath binary and through Open vSwitch 3.1, byte
for byte: the same rules in both (a rule file for flowpath, ovs-ofctl
add-flows for Open vSwitch), the same frame sent by this script, acting as
each switch's controller, as a PACKET_OUT to OUTPUT:TABLE from port 1 (or
with other actions: set_field to metadata, then resubmit, OUTPUT:TABLE or
CONTROLLER); the PACKET_IN each sends back must be the same message (xid aside): reason,
table, cookie, the match (in_port and, as Open vSwitch fills it, metadata,
ct_state with eth_type, ct_zone, ct_mark and the connection's original
tuple) and the packet.

Usage: packet_in_test.py BUILD_DIR
"""

import os
import shutil
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "diff"))
from fptest import Flowpath  # noqa: E402
from ovs_oracle import OvsOracle  # noqa: E402

OFP13 = 4
HELLO, ECHO_REQUEST, ECHO_REPLY, PACKET_IN, PACKET_OUT = 0, 2, 3, 10, 13
OFPP_TABLE, OFPP_CONTROLLER = 0xfffffff9, 0xfffffffd
NO_BUFFER = 0xffffffff


def checksum(data):
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))
    if len(data) % 2:
        total += data[-1] << 8
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return 0xffff - total


def udp_frame(src="0a000001", dst="0a000002", sport=1000, dport=2000, good_checksum=True):
    payload = b"abcd"
    ip = bytearray.fromhex("45000020000000004011" "0000") + bytes.fromhex(src + dst)
    if good_checksum:
        ip[10:12] = checksum(ip).to_bytes(2, "big")
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return bytes.fromhex("020000000002" "020000000001" "0800") + bytes(ip) + udp


def icmp_echo(reply=False):
    icmp = bytearray(struct.pack("!BBHHH", 0 if reply else 8, 0, 0, 0x77, 1) + b"ping")
    icmp[2:4] = checksum(icmp).to_bytes(2, "big")
    src, dst = ("0a000002", "0a000001") if reply else ("0a000001", "0a000002")
    ip = bytearray.fromhex("45000020000000004001" "0000") + bytes.fromhex(src + dst)
    ip[2:4] = (20 + len(icmp)).to_bytes(2, "big")
    ip[10:12] = checksum(ip).to_bytes(2, "big")
    return bytes.fromhex("020000000002" "020000000001" "0800") + bytes(ip) + bytes(icmp)


def udp6_frame(reply=False):
    a, b = bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02")
    src, dst, sport, dport = (b, a, 2000, 1000) if reply else (a, b, 1000, 2000)
    payload = b"abcd"
    udp = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    pseudo = src + dst + struct.pack("!IxxxB", len(udp), 17)
    udp[6:8] = checksum(pseudo + bytes(udp)).to_bytes(2, "big")
    ip = struct.pack("!IHBB", 0x60000000, len(udp), 17, 64) + src + dst
    return bytes.fromhex("020000000002" "020000000001" "86dd") + ip + bytes(udp)


def output_table():
    return struct.pack("!HHIH6x", 0, 16, OFPP_TABLE, 0xffff)


def set_metadata(value):
    """OFPAT_SET_FIELD of OXM METADATA (set_field:V->metadata)."""
    return struct.pack("!HHIQ", 25, 16, 0x80000408, value)


def load_metadata(value, ofs, bits):
    """NXAST_REG_LOAD to OXM_OF_METADATA[ofs..ofs+bits-1] (what ovs-ofctl
    writes for a masked set_field:V/M->metadata)."""
    return struct.pack("!HHIHHIQ", 0xffff, 24, 0x2320, 7, ofs << 6 | (bits - 1), 0x80000408, value)


def resubmit(table):
    """NXAST_RESUBMIT_TABLE from the packet's own port (resubmit(,T))."""
    return struct.pack("!HHIHHB3x", 0xffff, 16, 0x2320, 14, 0xfff8, table)


def to_controller():
    return struct.pack("!HHIH6x", 0, 16, OFPP_CONTROLLER, 0xffff)


CT_CHAIN = ("ip,actions=write_metadata:0x5,goto_table:1\n"
            "table=1,ip,actions=ct(commit,zone=7,exec(set_field:0x3->ct_mark),table=2)\n"
            "table=2,cookie=0x99,actions=controller\n")

# (name, rules, frames sent one after the other from port 1; a PACKET_IN is
# expected for each[, the PACKET_OUT's actions: OUTPUT:TABLE when absent])
CASES = [
    ("metadata", "actions=write_metadata:0x5,goto_table:1\ntable=1,cookie=0x7,actions=controller\n",
     [udp_frame()]),
    ("metadata masked, set in_port",
     "actions=set_field:2->in_port,write_metadata:0x1234/0xff00,goto_table:1\ntable=1,actions=controller\n",
     [udp_frame()]),
    ("table miss", "priority=0,actions=controller\n", [udp_frame()]),
    ("resubmit port is the lookup's only", "actions=resubmit(2,1)\ntable=1,in_port=2,actions=controller\n",
     [udp_frame()]),
    ("ct without table: untracked", "ip,actions=ct(commit,zone=3),controller\n", [udp_frame()]),
    ("ct then ct_clear", "ip,actions=ct(table=1)\ntable=1,actions=ct_clear,controller\n", [udp_frame()]),
    ("ct, zone, mark, metadata", CT_CHAIN, [udp_frame(), udp_frame("0a000002", "0a000001", 2000, 1000)]),
    ("ct invalid", "ip,actions=ct(table=1)\ntable=1,actions=controller\n", [udp_frame(good_checksum=False)]),
    ("ct ipv6", "ipv6,actions=ct(commit,table=1)\ntable=1,actions=controller\n", [udp6_frame(), udp6_frame(True)]),
    ("ct uncommitted", "ip,actions=ct(zone=2,table=1)\ntable=1,actions=controller\n", [udp_frame()]),
    ("ct icmp", "ip,actions=ct(commit,table=1)\ntable=1,actions=controller\n", [icmp_echo(), icmp_echo(True)]),
    # PACKET_OUTs that set metadata before the packet enters the tables, or
    # before their own CONTROLLER action.
    ("packet-out metadata to TABLE", "metadata=0x5,cookie=0x3,actions=controller\npriority=0,actions=drop\n",
     [udp_frame()], set_metadata(0x5) + output_table()),
    ("packet-out masked metadata, resubmit",
     "table=1,metadata=0x30/0xf0,cookie=0x4,actions=write_metadata:0x100/0x100,goto_table:2\n"
     "table=2,actions=controller\n", [udp_frame()], set_metadata(0x1) + load_metadata(0x3, 4, 4) + resubmit(1)),
    ("packet-out metadata, its own controller", "priority=0,actions=drop\n", [udp_frame()],
     set_metadata(0x9) + to_controller()),
    ("packet-out metadata, ct", CT_CHAIN.replace("ip,actions=write_metadata:0x5,goto_table:1\n", ""),
     [udp_frame()], set_metadata(0x7) + resubmit(1)),
]


class RawController:
    """A listening socket that one switch connects to; speaks just enough
    OpenFlow 1.3 (HELLO, ECHO) to send PACKET_OUTs and read PACKET_INs."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.xid = 100

    def accept(self, timeout=30):
        self.listener.settimeout(timeout)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(timeout)
        self.conn.sendall(struct.pack("!BBHI", OFP13, HELLO, 8, 1))

    def recv(self):
        head = self._read(8)
        length = struct.unpack("!H", head[2:4])[0]
        return head + self._read(length - 8)

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise AssertionError("the switch closed the connection")
            data += chunk
        return data

    def packet_out(self, frame, in_port=1, actions=None):
        self.xid += 1
        action = output_table() if actions is None else actions
        body = struct.pack("!IIH6x", NO_BUFFER, in_port, len(action)) + action + frame
        self.conn.sendall(struct.pack("!BBHI", OFP13, PACKET_OUT, 8 + len(body), self.xid) + body)

    def packet_in(self, timeout=10):
        """The next PACKET_IN (header xid zeroed), answering echoes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv()
            if m[1] == ECHO_REQUEST:
                self.conn.sendall(bytes([OFP13, ECHO_REPLY]) + m[2:])
            elif m[1] == PACKET_IN:
                return m[:4] + b"\0\0\0\0" + m[8:]
        raise AssertionError("no PACKET_IN")

    def close(self):
        if self.conn:
            self.conn.close()
        self.listener.close()


def describe(message):
    """The PACKET_IN's fixed part and match, readable."""
    buffer_id, total_len, reason, table, cookie = struct.unpack("!IHBBQ", message[8:24])
    match_len = struct.unpack("!H", message[26:28])[0]
    match = message[28:24 + match_len]
    return (f"reason={reason} table={table} cookie={cookie:#x} total_len={total_len} "
            f"match={match.hex()} data={message[24 + ((match_len + 7) // 8) * 8 + 2:].hex()}")


def main():
    build = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="fp-packet-in-")
    failures = []
    with OvsOracle(workdir=work) as ovs:
        ovs.set_ports(["p1", "p2"])
        ovs_controller = RawController()
        ovs._vsctl("set-controller", "br0", f"tcp:127.0.0.1:{ovs_controller.port}")
        ovs_controller.accept()
        try:
            for name, rules, frames, *actions in CASES:
                actions = actions[0] if actions else None
                path = os.path.join(work, "rules.txt")
                with open(path, "w") as f:
                    f.write(rules)
                ovs.load_rules(path)
                fp_controller = RawController()
                fp = Flowpath(build, work, ["--port", "p1=net_null0,no-rx=1", "--port", "p2=net_null1,no-rx=1",
                                            "--rules", path, "--controller", f"tcp:127.0.0.1:{fp_controller.port}"],
                              name="packet-in").start()
                try:
                    fp.wait_ready()
                    fp_controller.accept()
                    for i, frame in enumerate(frames):
                        ovs_controller.packet_out(frame, actions=actions)
                        want = ovs_controller.packet_in()
                        fp_controller.packet_out(frame, actions=actions)
                        got = fp_controller.packet_in()
                        if got != want:
                            failures.append(f"{name} (frame {i}):\n  Open vSwitch {describe(want)}\n"
                                            f"  flowpath     {describe(got)}")
                        else:
                            print(f"ok {name} (frame {i}): {describe(got)[:160]}")
                finally:
                    fp_controller.close()
                    fp.signal()
                    if fp.wait(60) != 0:
                        failures.append(f"{name}: flowpath exited {fp.proc.returncode}: {fp.stderr[-1000:]}")
        finally:
            ovs_controller.close()
    shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print(f"{len(CASES) - len(failures)}/{len(CASES)} cases without difference" if not failures else
          f"{len(failures)} difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
