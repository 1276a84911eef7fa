"""flowpath on live interfaces, fed frames in one global order.

With conntrack, a frame's fate depends on the frames before it on every
port (A's SYN on p1 before B's SYN-ACK on p2). Ports reading pcap files
read them independently, so the order across ports would be flowpath's
polling order, not the case's. Here flowpath runs in a private network
namespace on ports over veth pairs; the test writes frames into the other
ends, one run of consecutive same-port frames at a time, and sends the next
run only once every frame so far has met its fate: `stats-json` shows the
port's rx count reached and `workers[].in_flight` 0 (a worker counts a
frame in flight before it counts it received, so one snapshot showing both
has seen the fate). Frames flowpath sends are read from the test's ends.

    with netns.Netns("diff") as ns:
        live = LiveFlowpath(exe, ns, 4, workdir)           # 4 veth pairs, made once
        live.start(rules_path, ["p1", "p2"])
        out = live.feed([(0, frame), (1, reply), ...])     # {"p1": [...], "p2": [...]}
        live.ctl("ct-flush")
        live.stop()

The ports are `net_pcap` devices on the interfaces (`iface=fpd<i>`:
libpcap live capture and injection), not `net_af_packet`: DPDK 22.11's
af_packet driver joins a PACKET_FANOUT group with the DEFRAG flag, so the
kernel reassembles (or holds) IPv4 fragments before flowpath sees them, and
it puts a VLAN tag the kernel moved into metadata back as 0x8100 whatever
its TPID. libpcap does neither (`driver="af_packet"` is there to show it).
The kernel hands a tag to AF_PACKET readers as metadata; the test's reader
(netns.PacketPort) puts it back as it was.
"""

import json
import os
import socket
import subprocess
import time


def crosses_veth(frame):
    """Whether the kernel passes this frame across a veth pair: it drops a
    frame with a VLAN TPID (0x8100, 0x88a8) cut within 6 bytes after it (it
    cannot read the tag and the next type)."""
    return not (len(frame) < 20 and frame[12:14] in (b"\x81\x00", b"\x88\xa8"))


class FeedError(RuntimeError):
    """flowpath did not take the frames as expected (stuck, died, or
    received frames nobody sent); the message says which."""


def ctl_request(path, command, body="", timeout=10.0):
    """One flowpath-ctl request over the control socket: (ok, text)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall((command + "\n" + body).encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        s.close()
    status, _, text = b"".join(chunks).decode(errors="replace").partition("\n")
    if status not in ("OK", "ERROR"):
        raise FeedError(f"flowpath-ctl {command}: unexpected answer {status!r}")
    return status == "OK", text


class LiveFlowpath:
    """One flowpath at a time on veth pairs `fpd<i>` (flowpath's end) and
    `fpt<i>` (the test's end), i = 1..max_ports, inside namespace `ns`, made
    on construction; a run uses as many as it has ports."""

    DRIVERS = {"pcap": "net_pcap{i},iface={iface}", "af_packet": "net_af_packet{i},iface={iface}"}

    def __init__(self, exe, ns, max_ports, workdir, extra_args=(), run_timeout=10.0, driver="pcap"):
        self.exe = exe
        self.devargs = self.DRIVERS[driver]
        self.ns = ns
        self.names = []
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.run_timeout = run_timeout
        self.proc = None
        self.log_path = None
        self.ctl_path = None
        self.runs = 0
        self.test_ends = []
        for i in range(max_ports):
            ns.add_veth(f"fpd{i + 1}", f"fpt{i + 1}")
            self.test_ends.append(ns.packet_socket(f"fpt{i + 1}"))

    # ---- life cycle ---------------------------------------------------------

    def command(self, rules_path):
        cmd = [self.exe, "--rules", rules_path]
        for i, name in enumerate(self.names):
            cmd += ["--port", f"{name}=" + self.devargs.format(i=i, iface=f"fpd{i + 1}")]
        cmd += ["--ctl-socket", self.ctl_path]
        return cmd + self.extra_args

    def start(self, rules_path, ports, log_path=None, timeout=30.0):
        """Starts flowpath on the rules with ports named `ports` (on the first
        veths); returns once its control socket answers. Raises FeedError
        (with the log's tail) if it exits instead."""
        self.stop()
        if len(ports) > len(self.test_ends):
            raise ValueError(f"{len(ports)} ports, only {len(self.test_ends)} veth pairs")
        self.names = list(ports)
        self.runs += 1
        self.ctl_path = os.path.join(self.workdir, f"live-{os.getpid()}-{self.runs}.ctl")
        self.log_path = log_path or os.path.join(self.workdir, "flowpath.log")
        self.cmd = self.command(rules_path)
        for end in self.test_ends:
            end.receive_all()  # anything left from an earlier run
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.ns.exec_prefix() + self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise FeedError(f"flowpath exited with status {self.proc.returncode} at start\n    "
                                + "\n    ".join(self.log_tail()))
            if os.path.exists(self.ctl_path):
                try:
                    ok, _ = ctl_request(self.ctl_path, "stats-json")
                    if ok:
                        break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise FeedError(f"flowpath: no answer on {self.ctl_path} after {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout=20.0):
        """Stops flowpath (flowpath-ctl exit, then SIGTERM, then SIGKILL, by
        its pid); returns its exit status or None if none ran."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            try:
                ctl_request(self.ctl_path, "exit", timeout=5)
            except (OSError, FeedError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        try:
            os.unlink(self.ctl_path)
        except OSError:
            pass
        return proc.returncode

    def close(self):
        self.stop()
        for end in self.test_ends:
            end.close()
        self.test_ends = []

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read().splitlines()[-lines:]
        except OSError:
            return []

    # ---- control ------------------------------------------------------------

    def ctl(self, command, body=""):
        """flowpath-ctl COMMAND: (ok, text)."""
        return ctl_request(self.ctl_path, command, body)

    def stats(self):
        ok, text = self.ctl("stats-json")
        if not ok:
            raise FeedError(f"stats-json failed: {text.strip()}")
        return json.loads(text)

    def ct_dump(self):
        """`ct-dump`: one line per connection, sorted (Open vSwitch's
        dump-conntrack order is its hash order)."""
        ok, text = self.ctl("ct-dump")
        if not ok:
            raise FeedError(f"ct-dump failed: {text.strip()}")
        return sorted(l.strip() for l in text.splitlines() if l.strip())

    # ---- feeding ------------------------------------------------------------

    def _wait_fates(self, want_rx, deadline):
        """Until every port's rx count reaches want_rx and no worker holds a
        frame. Raises FeedError when flowpath receives more than was sent,
        dies, or is not done by `deadline`."""
        while True:
            stats = self.stats()
            rx = [p["rx_packets"] for p in stats["ports"]]
            if any(rx[i] > want_rx[i] for i in range(len(rx))):
                raise FeedError(f"flowpath received {rx} frames per port, {want_rx} were sent "
                                "(frames from elsewhere on the veths?)")
            if rx == want_rx:
                try:
                    in_flight = sum(w["in_flight"] for w in stats["workers"])
                except KeyError:
                    raise FeedError("stats-json has no workers[].in_flight: this flowpath cannot "
                                    "say when a frame has met its fate")
                if in_flight == 0:
                    return stats
            if self.proc.poll() is not None:
                raise FeedError(f"flowpath exited with status {self.proc.returncode}\n    "
                                + "\n    ".join(self.log_tail()))
            if time.monotonic() > deadline:
                raise FeedError(f"flowpath did not finish in time: rx {rx} of {want_rx}, workers "
                                f"{[w.get('in_flight') for w in stats['workers']]} in flight")
            time.sleep(0.0002)

    def feed(self, frames, unseen=None):
        """Sends `frames` [(port index, bytes)] in exactly this order (each
        run of one port's consecutive frames once the previous run's fates
        are known) and returns {port name: [frames flowpath sent]}, each
        port's in the order sent. `unseen` {port name: n}: frames expected
        out on that port that cannot cross a veth (crosses_veth), so never
        read, though flowpath counts them sent."""
        for _, frame in frames:
            if not crosses_veth(frame):
                raise ValueError(f"a frame the kernel drops on a veth: {bytes(frame).hex()}")
        unseen = [(unseen or {}).get(name, 0) for name in self.names]
        stats = self.stats()
        want = [p["rx_packets"] for p in stats["ports"]]
        tx_before = [p["tx_packets"] for p in stats["ports"]]
        out = [[] for _ in self.names]
        ends = self.test_ends[:len(self.names)]
        i = 0
        while i < len(frames):
            port = frames[i][0]
            j = i
            while j < len(frames) and frames[j][0] == port:
                self.test_ends[port].send(frames[j][1])
                j += 1
            want[port] += j - i
            self._wait_fates(want, time.monotonic() + self.run_timeout)
            for k, end in enumerate(ends):
                out[k] += end.receive_all()
            i = j
        # Frames sent just now may still be crossing the veths.
        stats = self.stats()
        sent = [p["tx_packets"] - b for p, b in zip(stats["ports"], tx_before)]
        deadline = time.monotonic() + 5
        while any(len(out[k]) + unseen[k] < sent[k] for k in range(len(out))) and time.monotonic() < deadline:
            time.sleep(0.001)
            for k, end in enumerate(ends):
                out[k] += end.receive_all()
        if any(len(out[k]) + unseen[k] != sent[k] for k in range(len(out))):
            raise FeedError(f"read {[len(o) for o in out]} frames per port from the veths, "
                            f"flowpath counted {sent} sent (expected {unseen} not to cross a veth)")
        return {name: out[k] for k, name in enumerate(self.names)}
