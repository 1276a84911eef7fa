"""Private network namespaces with veth pairs, for tests that run flowpath
on real (virtual) interfaces (`net_af_packet` or `net_pcap` ports with `iface=`).

A `Netns` is created under a unique name (`fp<tag>-<pid>`), holds veth
pairs whose both ends live inside it, and is deleted by `close()` (also at
exit, and through `with`). Nothing is configured outside it: no address,
route or interface of the host changes.

    with Netns("diff") as ns:
        ns.add_veth("fp1", "tx1")             # flowpath takes fp1, the test tx1
        sock = ns.packet_socket("tx1")         # AF_PACKET socket inside the namespace
        ns.run(["ip", "link", "show"])         # a command inside it

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for setns); `require_root()`
raises otherwise, so a test fails instead of skipping.
"""

import atexit
import ctypes
import os
import re
import socket
import struct
import subprocess

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
PACKET_OUTGOING = 4

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    """A namespace command failed; the message names it and its output."""


def require_root(what):
    """Raises unless this process may create namespaces (tests run as root in CI)."""
    if os.geteuid() != 0:
        raise NetnsError(f"{what} needs root (network namespaces, veth pairs, AF_PACKET); "
                         "CI runs as root")


def _run(argv, timeout=30, check=True):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {res.returncode}: "
                         f"{(res.stderr or res.stdout).strip()}")
    return res


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns: {os.strerror(err)}")


class Netns:
    """One private network namespace (see the module comment)."""

    def __init__(self, tag):
        self.tag = tag
        self.name = f"fp{tag}-{os.getpid()}"
        self.created = False
        self.ifaces = []

    def __enter__(self):
        self.create()
        return self

    def __exit__(self, *exc):
        self.close()

    def create(self):
        require_root(f"namespace {self.name}")
        self.remove_stale()
        _run(["ip", "netns", "add", self.name])
        self.created = True
        atexit.register(self.close)
        # No IPv6 on any interface created here: no router solicitations,
        # DAD or MLD frames appear on the wires the tests count.
        for key in ("all", "default"):
            self.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"])
        self.run(["ip", "link", "set", "lo", "up"])
        return self

    def remove_stale(self):
        """Deletes namespaces of this tag left by a test process that no
        longer exists (killed with SIGKILL: no exit handler ran)."""
        listing = _run(["ip", "netns", "list"], check=False).stdout
        for name in re.findall(rf"^(fp{re.escape(self.tag)}-(\d+))\b", listing, re.M):
            if not os.path.exists(f"/proc/{name[1]}"):
                _run(["ip", "netns", "del", name[0]], check=False)

    def close(self):
        """Deletes the namespace (its veths go with it). Idempotent."""
        if self.created:
            self.created = False
            _run(["ip", "netns", "del", self.name], check=False)

    def run(self, argv, timeout=30, check=True):
        """Runs a command inside the namespace; returns the CompletedProcess."""
        return _run(["ip", "netns", "exec", self.name] + list(argv), timeout=timeout, check=check)

    def exec_prefix(self):
        """argv prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def add_veth(self, a, b, peer_ns=None, offloads_off=True):
        """A veth pair: `a` in this namespace, `b` in `peer_ns` (default this
        one too); both ends up, offloads off (checksums computed in software,
        no segmentation or VLAN acceleration: frames cross unchanged)."""
        peer_ns = peer_ns or self
        self.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer_ns.name])
        self.ifaces.append(a)
        peer_ns.ifaces.append(b)
        for ns, name in ((self, a), (peer_ns, b)):
            if offloads_off:
                ns.ethtool_off(name)
            ns.run(["ip", "link", "set", name, "up"])

    def ethtool_off(self, name):
        """Turns off checksum offloads, segmentation, GRO and VLAN acceleration."""
        res = self.run(["ethtool", "-K", name, "rx", "off", "tx", "off", "sg", "off", "tso", "off",
                        "gso", "off", "gro", "off", "rxvlan", "off", "txvlan", "off"], check=False)
        if res.returncode not in (0, 80):  # 80: some feature is fixed (not changeable)
            raise NetnsError(f"ethtool -K {name}: exit {res.returncode}: {res.stderr.strip()}")

    def socket(self, family, kind, proto=0):
        """A socket created inside the namespace (it stays there)."""
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.socket(family, kind, proto)
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)

    def packet_socket(self, iface):
        """A raw AF_PACKET socket bound to `iface`, receiving every frame with
        its VLAN metadata (see PacketPort)."""
        return PacketPort(self, iface)


class PacketPort:
    """Sends and receives whole Ethernet frames on one interface of a
    namespace. Frames received are returned as they were on the wire: a VLAN
    tag the kernel moved into metadata is put back (with its TPID). Frames
    this socket sent are not returned."""

    def __init__(self, ns, iface):
        self.iface = iface
        self.sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((iface, ETH_P_ALL))
        self.sock.setblocking(False)

    def send(self, frame):
        sent = self.sock.send(bytes(frame))
        if sent != len(frame):
            raise NetnsError(f"{self.iface}: sent {sent} of {len(frame)} bytes")

    def receive_all(self):
        """Every frame waiting now (non-blocking), in arrival order."""
        frames = []
        while True:
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(65536, socket.CMSG_SPACE(20))
            except BlockingIOError:
                return frames
            if address[2] == PACKET_OUTGOING:
                continue
            for level, kind, value in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= 20:
                    status, _len, _snap, _mac, _net, tci, tpid = struct.unpack("IIIHHHH", value[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        if not status & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
            frames.append(data)

    def close(self):
        self.sock.close()
