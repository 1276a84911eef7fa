#!/usr/bin/python3
"""The real flowpath binary under controllers: os-ken (Debian's
python3-os-ken) runs l2_learning_app.py, flowpath connects to it with
--controller and listens with --openflow-listen for ovs-ofctl. Two hosts in
network namespaces (A, B) reach flowpath through veth pairs whose near ends
are flowpath's net_af_packet ports p1 and p2 (tx checksum offload off in the
namespaces: flowpath forwards frames as they are).

Checks: the table-miss rule the controller installs and a rule from the rule
file share one table (ovs-ofctl and flowpath-ctl see both); ping crosses
once the controller learned both hosts (PACKET_IN through the slow path,
PACKET_OUT through worker 0) and the learned flows show in dump-flows with
their idle timeout; iperf3 moves TCP across; `flowpath-ctl add-flow` and
`ovs-ofctl add-flow` rules show in both dumps; with the controller gone,
installed flows keep forwarding; idle flows time out, and one added with
send_flow_rem is reported to `ovs-ofctl monitor` as FLOW_REMOVED; link
changes of a port (the far veth end down and up, flowpath's end down and
up) are reported as PORT_STATUS with Open vSwitch's config and state bits;
the controller back, flowpath reconnects and
learning starts over; an OpenFlow delete-all removes the rule file's rules
too.

Usage: flowpath_controller_test.py BUILD_DIR
Skips (exit 77) without root, os-ken, iperf3 or network namespaces.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from controller_test import Controller, free_port  # noqa: E402
from fptest import Flowpath, TestRun, wait_until  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
TAG = str(os.getpid() % 100000)
HOSTS = {"A": ("10.77.0.1", f"ofA{TAG}", f"ofa{TAG}", f"ofA{TAG}h"),  # address, netns, near end, far end
         "B": ("10.77.0.2", f"ofB{TAG}", f"ofb{TAG}", f"ofB{TAG}h")}
IDLE = 4  # the learned flows' idle timeout, seconds


def sh(*args, check=True, timeout=60):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


def in_ns(host, *args, **kw):
    return sh("ip", "netns", "exec", HOSTS[host][1], *args, **kw)


def make_hosts():
    for addr, ns, near, far in HOSTS.values():
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        sh("ip", "link", "set", far, "netns", ns)
        # The near end is flowpath's: no addresses, no IPv6 chatter of its own.
        sh("sysctl", "-q", "-w", f"net.ipv6.conf.{near}.disable_ipv6=1", check=False)
        sh("ip", "link", "set", near, "up")
        in_ns_name = ["ip", "netns", "exec", ns]
        sh(*in_ns_name, "sysctl", "-q", "-w", f"net.ipv6.conf.{far}.disable_ipv6=1", check=False)
        sh(*in_ns_name, "ip", "addr", "add", f"{addr}/24", "dev", far)
        sh(*in_ns_name, "ip", "link", "set", far, "up")
        sh(*in_ns_name, "ip", "link", "set", "lo", "up")
        sh(*in_ns_name, "ethtool", "-K", far, "tx", "off")


def remove_hosts():
    for _, ns, near, _ in HOSTS.values():
        sh("ip", "link", "del", near, check=False)
        sh("ip", "netns", "del", ns, check=False)


def ping(count=5, interval="0.2"):
    res = in_ns("A", "ping", "-c", str(count), "-i", interval, "-W", "1", HOSTS["B"][0], check=False)
    m = re.search(r"(\d+) received", res.stdout)
    return int(m.group(1)) if m else 0


def ping_until_answered(timeout):
    """Pings until one answer (the controller learns as the hosts ARP)."""
    return wait_until("a ping answered", lambda: ping(1) == 1, timeout)


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if subprocess.run(["/usr/bin/python3", "-c", "import os_ken"], capture_output=True).returncode != 0:
        return "python3-os-ken is not installed"
    for tool in ("iperf3", "ethtool", "ovs-ofctl"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if sh("ip", "netns", "add", f"ofprobe{TAG}", check=False).returncode != 0:
        return "cannot make network namespaces"
    sh("ip", "netns", "del", f"ofprobe{TAG}", check=False)
    return None


class Setup:
    def __init__(self, work):
        self.work = work
        self.controller_port = free_port()
        self.listen_port = free_port()
        self.target = f"tcp:127.0.0.1:{self.listen_port}"
        rules = os.path.join(work, "rules.txt")
        with open(rules, "w") as f:
            f.write("table=0,priority=10,cookie=0x99,udp,tp_dst=7,actions=drop\n")
        self.controller = Controller(self.controller_port, IDLE)
        self.fp = Flowpath(BUILD, work, [
            "--port", f"p1=net_af_packet0,iface={HOSTS['A'][2]}",
            "--port", f"p2=net_af_packet1,iface={HOSTS['B'][2]}",
            "--rules", rules,
            "--controller", f"tcp:127.0.0.1:{self.controller_port}",
            "--openflow-listen", f"ptcp:{self.listen_port}",
            "--datapath-id", "0x42"]).start()
        self.fp.wait_ready()

    def ofctl(self, command, *args):
        res = sh("ovs-ofctl", "-O", "OpenFlow13", command, self.target, *args, check=False)
        assert res.returncode == 0, f"ovs-ofctl {command}: {res.stderr}"
        return res.stdout

    def flows(self):
        return [l for l in self.ofctl("dump-flows").splitlines() if "cookie=" in l]

    def ctl_flows(self):
        res = self.fp.ctl("dump-flows")
        assert res.returncode == 0, res.stderr
        return res.stdout.splitlines()

    def learned(self):
        return [f for f in self.flows() if "priority=1," in f]


def one_table(s):
    wait_until("the controller's table-miss rule",
             lambda: any("priority=0 actions=CONTROLLER:65535" in f for f in s.flows()), 30)
    assert any("cookie=0x99," in f and "priority=10,udp,tp_dst=7" in f for f in s.flows()), s.flows()
    assert any("priority=0 actions=CONTROLLER:65535" in l for l in s.ctl_flows()), s.ctl_flows()
    features = s.ofctl("show")
    assert "dpid:0000000000000042" in features and "1(p1)" in features and "2(p2)" in features, features


def ping_through_controller(s):
    ping_until_answered(30)
    assert ping(10) == 10, "pings lost with both hosts learned"
    learned = s.learned()
    assert len(learned) == 2, learned
    assert all(f"idle_timeout={IDLE}" in f for f in learned), learned
    a_mac = in_ns("A", "cat", f"/sys/class/net/{HOSTS['A'][3]}/address").stdout.strip()
    assert any(f"in_port=2,dl_dst={a_mac} actions=output:1" in f for f in learned), learned
    assert all(int(re.search(r"n_packets=(\d+)", f).group(1)) > 0 for f in learned), learned


def iperf3_tcp(s):
    server = subprocess.Popen(["ip", "netns", "exec", HOSTS["B"][1], "iperf3", "-s", "-1", "-p", "5201"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        res = in_ns("A", "iperf3", "-c", HOSTS["B"][0], "-p", "5201", "-t", "3", "-J", check=False, timeout=60)
        report = json.loads(res.stdout)
        assert "error" not in report, report["error"]
        received = report["end"]["sum_received"]["bytes"]
        print(f"     iperf3: {received} bytes, {report['end']['sum_received']['bits_per_second'] / 1e6:.0f} Mbit/s",
              flush=True)
        assert received > 1_000_000, received
    finally:
        server.wait(timeout=10)


def ctl_and_controller_rules(s):
    # Each change is awaited up to 2 s on the other side: both commands
    # return after it, but one run in four under load did not see it at the
    # first look (noted on issue 12, cause not found).
    res = s.fp.ctl("add-flow", "priority=200,udp,tp_dst=9999,actions=drop")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: f"flowpath-ctl's rule over OpenFlow: {s.flows()}",
               lambda: any("priority=200,udp,tp_dst=9999 actions=drop" in f for f in s.flows()), 2.0)
    s.ofctl("add-flow", "cookie=0x42,priority=201,udp,tp_dst=9998,actions=drop")
    wait_until(lambda: f"the OpenFlow rule in flowpath-ctl: {s.ctl_flows()}",
               lambda: any("cookie=0x42" in l and "priority=201,udp,tp_dst=9998" in l for l in s.ctl_flows()), 2.0)
    s.ofctl("del-flows", "udp,tp_dst=9999")
    wait_until(lambda: f"the delete over OpenFlow in flowpath-ctl: {s.ctl_flows()}",
               lambda: not any("9999" in l for l in s.ctl_flows()), 2.0)


class Monitor:
    """`ovs-ofctl monitor` on flowpath with a miss_send_len (so that it gets
    asynchronous messages), its output collected as it comes: the checks
    wait for each message instead of sleeping a fixed time (CI machines are
    slow and loaded)."""

    def __init__(self, s, name):
        self.ctl = f"{s.work}/{name}.ctl"
        self.proc = subprocess.Popen(["ovs-ofctl", "-O", "OpenFlow13", f"--unixctl={self.ctl}", "monitor",
                                      s.target, "65535"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        # ovs-ofctl makes its control socket once its SET_CONFIG (the
        # miss_send_len) has been answered: from then on it is subscribed.
        wait_until("ovs-ofctl monitor to connect", lambda: os.path.exists(self.ctl), 30)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def wait_for(self, what, predicate, timeout=15):
        return wait_until(lambda: f"{what}; monitor output:\n{self.text()[-3000:]}", lambda: predicate(self.text()),
                          timeout)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        return self.text()


def flow_removed(s):
    """A rule with send_flow_rem and an idle timeout: the slow path expires
    it and a connection that asked for asynchronous messages (ovs-ofctl
    monitor sets miss_send_len) gets FLOW_REMOVED, reason idle."""
    monitor = Monitor(s, "ofctl-monitor")
    try:
        s.ofctl("add-flow", "cookie=0x77,idle_timeout=1,send_flow_rem,priority=300,udp,tp_dst=9997,actions=drop")
        monitor.wait_for("FLOW_REMOVED of cookie 0x77", lambda out: "OFPT_FLOW_REMOVED" in out)
    finally:
        out = monitor.stop()
    removed = [l for l in out.splitlines() if "OFPT_FLOW_REMOVED" in l]
    assert removed and "cookie:0x77" in out and "reason=idle" in removed[0], out[-2000:]
    assert not any("9997" in f for f in s.flows()), s.flows()


PORT_STATUS = re.compile(r"OFPT_PORT_STATUS.*?MOD: (\d+)\((\w+)\).*?config:\s+(\S+)\s*\n\s*state:\s+(\S+)", re.S)


def port_status(s):
    """Link changes of a net_af_packet port reach a controller (ovs-ofctl
    monitor with a miss_send_len) as PORT_STATUS, with Open vSwitch's bits
    for a system port: the far end down is state LINK_DOWN (config 0),
    flowpath's own end set down is config PORT_DOWN too, back up is LIVE.
    Each change is made once the one before has been reported (flowpath
    reads the links twice a second: a change undone before it looks is
    never seen, by design)."""
    _, ns, near, far = HOSTS["B"]
    monitor = Monitor(s, "ofctl-ports")
    steps = [(["ip", "netns", "exec", ns, "ip", "link", "set", far, "down"], "0", "LINK_DOWN"),
             (["ip", "netns", "exec", ns, "ip", "link", "set", far, "up"], "0", "LIVE"),
             (["ip", "link", "set", near, "down"], "PORT_DOWN", "LINK_DOWN"),
             (["ip", "link", "set", near, "up"], "0", "LIVE")]
    try:
        for i, (command, _, _) in enumerate(steps):
            sh(*command)
            monitor.wait_for(f"PORT_STATUS {i + 1} after {' '.join(command)}",
                             lambda out: len(PORT_STATUS.findall(out)) > i)
        time.sleep(1.2)  # nothing more comes (flowpath reads the links twice a second)
    finally:
        out = monitor.stop()
    # One message per change, as "OFPT_PORT_STATUS ... MOD: 2(p2): ..." then
    # its config and state lines.
    events = PORT_STATUS.findall(out)
    want = [("2", "p2", config, state) for _, config, state in steps]
    assert events == want, f"PORT_STATUS messages {events}, want {want}:\n{out[-3000:]}"
    ports = s.ofctl("dump-ports-desc")
    assert re.search(r"2\(p2\).*?config:\s+0\s*\n\s*state:\s+LIVE", ports, re.S), ports


def controller_gone(s):
    ping_until_answered(30)  # the learned flows may have timed out meanwhile: learned again
    assert len(s.learned()) == 2, s.learned()
    s.controller.stop()
    assert ping(10) == 10, "installed flows stopped forwarding without the controller"


def idle_flows_expire(s):
    wait_until("the learned flows to time out", lambda: not s.learned(), IDLE + 6)
    assert any("priority=0 actions=CONTROLLER:65535" in f for f in s.flows())


def controller_back(s):
    s.controller = Controller(s.controller_port, IDLE)
    ping_until_answered(30)  # reconnect (backoff up to 8 s), then learning again
    assert ping(5) == 5
    assert len(s.learned()) == 2, s.learned()


def delete_all(s):
    s.ofctl("del-flows")
    assert s.ctl_flows() == [], s.ctl_flows()
    assert ping(2) == 0, "a ping crossed with no rule at all"


def clean_exit(s):
    s.fp.signal()
    code = s.fp.wait(30)
    assert code == 0, f"exit {code}: {s.fp.stderr[-2000:]}"


def main():
    why = skip_reason()
    if why:
        print(f"skipped: {why}")
        return 77
    work = tempfile.mkdtemp(prefix="flowpath_of_")
    run = TestRun()
    remove_hosts()
    make_hosts()
    s = None
    try:
        s = Setup(work)
        for case in (one_table, ping_through_controller, iperf3_tcp, ctl_and_controller_rules, flow_removed,
                     port_status, controller_gone,
                     idle_flows_expire, controller_back, delete_all, clean_exit):
            run.case(case, s)
    finally:
        if s:
            s.controller.stop()
            if s.fp.proc.poll() is None:
                s.fp.proc.kill()
        remove_hosts()
    run.finish()


if __name__ == "__main__":
    sys.exit(main())
