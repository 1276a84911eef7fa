"""Helpers for end-to-end tests: run the real flowpath binary on pcap ports
and read what it sent (pcaps through tests/diff/pcapfile.py). Standard
library only, so the tests start fast; scapy only builds packets."""

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
from pcapfile import read_pcap, write_pcap  # noqa: E402,F401  (re-exported for the tests)

def udp_frames(count, flows=64, size=64, seed=1):
    """`count` distinct UDP frames spread over `flows` flows; each frame
    carries its sequence number so that reordering is visible."""
    from scapy.all import Ether, IP, UDP, Raw  # noqa: imported late: slow
    frames = []
    for i in range(count):
        flow = (i * 7 + seed) % flows
        pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
               IP(src=f"10.0.{flow // 250}.{flow % 250 + 1}", dst="10.1.0.1") /
               UDP(sport=1024 + flow, dport=4789) / Raw(struct.pack("!I", i)))
        raw = bytes(pkt)
        frames.append(raw + b"\0" * max(0, size - len(raw)))
    return frames


def flow_of(frame):
    """A frame's flow identity for order checks: the L2-L4 header bytes
    before the payload (every generated frame has the same layout)."""
    return frame[:14 + 20 + 8]


def per_flow_order(frames):
    flows = {}
    for frame in frames:
        flows.setdefault(flow_of(frame), []).append(frame)
    return flows


class Flowpath:
    """One flowpath process with its own control socket and stats file."""

    def __init__(self, build, workdir, args, name="fp"):
        self.build = build
        self.socket = os.path.join(workdir, f"{name}.ctl")
        self.stats_path = os.path.join(workdir, f"{name}.stats.json")
        self.args = [os.path.join(build, "flowpath"), "--ctl-socket", self.socket,
                     "--stats-json", self.stats_path] + list(args)
        self.proc = None
        self.stdout = self.stderr = ""

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def wait_ready(self, timeout=30):
        """Waits until the control socket answers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"flowpath exited early ({self.proc.returncode}): {self.proc.stderr.read()}")
            if os.path.exists(self.socket) and self.ctl("show").returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("flowpath did not become ready")

    def ctl(self, *command):
        return subprocess.run([os.path.join(self.build, "flowpath-ctl"), "--socket", self.socket, *command],
                              capture_output=True, text=True, timeout=30)

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=120):
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def run(self, timeout=120):
        self.start()
        return self.wait(timeout)

    def stats(self):
        """The statistics it wrote at exit (--stats-json)."""
        with open(self.stats_path) as f:
            return json.load(f)

    def live_stats(self):
        """The statistics now, from the running process (flowpath-ctl stats-json)."""
        reply = self.ctl("stats-json")
        assert reply.returncode == 0, reply.stderr
        return json.loads(reply.stdout)


def run_flowpath(build, args, timeout=120):
    """Runs flowpath to completion; returns (returncode, stdout, stderr)."""
    proc = subprocess.run([os.path.join(build, "flowpath")] + list(args), capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


class TestRun:
    """Collects named checks and prints the closing count line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def case(self, function, *args):
        name = function.__name__
        try:
            function(*args)
        except Exception as error:  # a failed check, or anything unexpected
            self.failed += 1
            print(f"FAIL {name}: {error}", flush=True)
        else:
            self.passed += 1
            print(f"ok   {name}", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def wait_until(what, predicate, timeout=20.0):
    """Polls `predicate` every 50 ms until it returns something true (which
    is returned); after `timeout` seconds fails naming `what` (a string, or
    a callable giving one, so that the message shows the state at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


class WorkDir:
    """A test module's scratch directory: paths in it and small files written there."""

    def __init__(self, prefix):
        self.root = workdir(prefix)

    def path(self, name):
        return os.path.join(self.root, name)

    def write(self, name, text):
        """Writes `text` to the file `name`; returns its path."""
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)
