#!/usr/bin/python3
"""A controller the project did not write drives the agent: os-ken (Debian's
python3-os-ken, the Ryu framework) runs l2_learning_app.py and
flowpath-of-testd (the agent over a MemoryBackend) connects to it with
--controller. Frames between two hosts (A on p1, B on p2) go up as
PACKET_INs, come back as PACKET_OUTs, the controller learns and installs
flows with an idle timeout; then the frames are forwarded by those flows
alone, also while the controller is gone; the flows time out; the agent
reconnects when the controller returns and learning starts over.

Usage: controller_test.py BUILD_DIR
Skips (exit 77) when os-ken is not installed.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from fptest import wait_until  # noqa: E402
A = "02000000000a"
B = "02000000000b"


def frame(src, dst, tag):
    # Ethernet + an IPv4 header with nothing behind it: enough for L2 learning.
    ip = "4500001400010000400600000a0000010a000002"
    return dst + src + "0800" + ip + f"{tag:04x}" + "00" * 24


class TestD:
    def __init__(self, binary, controller_port):
        self.proc = subprocess.Popen(
            [binary, "--ports", "p1,p2,p3", "--listen", "ptcp:0", "--controller",
             f"tcp:127.0.0.1:{controller_port}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.target = "tcp:127.0.0.1:" + self.proc.stdout.readline().split()[1]

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def sent(self, port):
        return self.cmd(f"sent {port}")[2:]

    def flows(self):
        res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", self.target],
                             capture_output=True, text=True, timeout=30)
        return [l for l in res.stdout.splitlines() if "cookie=" in l]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Controller:
    def __init__(self, port, idle_timeout):
        env = dict(os.environ, L2_IDLE_TIMEOUT=str(idle_timeout))
        self.proc = subprocess.Popen(
            ["osken-manager", "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(port),
             os.path.join(HERE, "l2_learning_app.py")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise SystemExit("osken-manager did not listen")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def learn_and_forward(fd, tag):
    """A->B (flooded via the controller), B->A (learned, installed), A->B
    (installed): afterwards both directions are forwarded by flows."""
    ab, ba = frame(A, B, tag), frame(B, A, tag + 1)
    before2, before3 = len(fd.sent(2)), len(fd.sent(3))
    # os-ken ignores PACKET_INs until its handshake (FEATURES, then its own
    # table-miss flow_mod) is over: like a host, send again until answered.
    for attempt in range(10):
        assert fd.cmd(f"receive 1 {ab}") == ["outputs"], "A->B went out before the controller saw it"
        try:
            wait_until("A->B flooded to p2 and p3 by PACKET_OUT",
                     lambda: len(fd.sent(2)) > before2 and len(fd.sent(3)) > before3, 1.0)
            break
        except AssertionError:
            if attempt == 9:
                raise
    assert fd.sent(2)[-1] == ab and fd.sent(3)[-1] == ab
    before1 = len(fd.sent(1))
    fd.cmd(f"receive 2 {ba}")
    wait_until("B->A sent to p1 (A learned)", lambda: len(fd.sent(1)) > before1, 15.0)
    assert fd.sent(1)[-1] == ba
    before2 = len(fd.sent(2))
    fd.cmd(f"receive 1 {ab}")
    wait_until("A->B sent to p2 only (B learned)", lambda: len(fd.sent(2)) > before2, 15.0)
    wait_until("two learned flows", lambda: len([f for f in fd.flows() if "priority=1," in f]) == 2, 15.0)
    # From now on the flows forward, no controller involved.
    assert fd.cmd(f"receive 1 {ab}") == ["outputs", "2"]
    assert fd.cmd(f"receive 2 {ba}") == ["outputs", "1"]


def main():
    if subprocess.run(["/usr/bin/python3", "-c", "import os_ken"], capture_output=True).returncode != 0:
        print("python3-os-ken is not installed (scripts/deps test): skipped")
        return 77
    testd = os.path.join(sys.argv[1], "tests", "openflow", "flowpath-of-testd")
    port = free_port()
    controller = Controller(port, idle_timeout=2)
    fd = TestD(testd, port)
    try:
        wait_until("the table-miss rule", lambda: any("priority=0 actions=CONTROLLER:65535" in f for f in fd.flows()), 15.0)
        learn_and_forward(fd, 1)
        learned = [f for f in fd.flows() if "priority=1," in f]
        assert all("idle_timeout=2" in f for f in learned), learned
        assert any("in_port=1,dl_dst=02:00:00:00:00:0b actions=output:2" in f for f in learned), learned
        # The controller goes away: installed flows keep forwarding.
        controller.stop()
        for i in range(10):
            assert fd.cmd(f"receive 1 {frame(A, B, 100 + i)}") == ["outputs", "2"]
            time.sleep(0.1)
        # Idle: the learned flows time out, the table-miss rule stays.
        wait_until("learned flows to expire", lambda: not [f for f in fd.flows() if "priority=1," in f], 10)
        assert len(fd.flows()) == 1
        # The controller comes back: the agent reconnects, learning starts over.
        controller = Controller(port, idle_timeout=30)
        wait_until("the agent to reconnect", lambda: fd.cmd("stats")[3] == "1", 20)
        learn_and_forward(fd, 200)
        counts = [int(re.search(r"n_packets=(\d+)", f).group(1)) for f in fd.flows() if "priority=1," in f]
        assert all(c >= 1 for c in counts), counts
    finally:
        controller.stop()
        fd.close()
    print("os-ken L2 learning through the agent: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
