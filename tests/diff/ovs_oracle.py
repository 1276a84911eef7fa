#!/usr/bin/python3
"""Open vSwitch 3.1 as a forwarding oracle.

Runs a private ovsdb-server + ovs-vswitchd (dummy netdevs, userspace
datapath) in a temporary directory, loads a rule file with
`ovs-ofctl -O OpenFlow13 add-flows`, injects frames on numbered ports and
returns what Open vSwitch sent on every port.

One instance serves many cases: between cases the rules are replaced, the
datapath flow cache is purged and every port gets a fresh tx_pcap file (a
changed `options:tx_pcap` makes netdev-dummy close the old file and open the
new one, header first; it flushes after every frame).

Module use:

    with OvsOracle() as ovs:
        out = ovs.run(["p1", "p2", "p3"], "rules.txt",
                      [(0, frame_bytes), (2, other_frame)])
        # out == {"p1": [bytes, ...], "p2": [...], "p3": [...]}

CLI:

    ovs_oracle.py --rules R --port p1=in_p1.pcap --port p2 --out-dir D

writes D/ovs_p1.pcap, D/ovs_p2.pcap (frames OVS sent on each port).

The daemons are this process's children, stopped by their own pids (never by
name: other Open vSwitch instances may run on the machine), and they die with
this process (PR_SET_PDEATHSIG) if it is killed.
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcapfile  # noqa: E402

OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
BRIDGE = "br0"
# netdev-dummy keeps at most 100 frames queued per rx queue and silently
# drops the rest, so never have more than this outstanding on a port.
MAX_CHUNK = 100
MIN_FRAME = 14


class OvsError(RuntimeError):
    """Open vSwitch failed or misbehaved; the message carries the log tail."""


class RuleLoadError(OvsError):
    """ovs-ofctl refused the rule file; `stderr` holds its complaint."""

    def __init__(self, message, stderr):
        super().__init__(message)
        self.stderr = stderr


def parse_table_stats(text):
    """`ovs-ofctl -O OpenFlow13 dump-tables` output: {table: (lookup,
    matched)} for tables 0..253 ("tables A...B: ditto" repeats the table
    printed before)."""
    tables, last = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*tables? (\d+)(?:\.\.\.(\d+))?", line)
        if m and "ditto" in line and last is not None:
            for t in range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1):
                tables[t] = last
            continue
        if m:
            current = int(m.group(1))
            continue
        m = re.search(r"lookup=(\d+), matched=(\d+)", line)
        if m:
            last = tables[current] = (int(m.group(1)), int(m.group(2)))
    return tables


def parse_flow_counters(text):
    """`ovs-ofctl dump-flows` output: {cookie: (n_packets, n_bytes)}."""
    out = {}
    for m in re.finditer(r"cookie=(0x[0-9a-f]+),.*?n_packets=(\d+), n_bytes=(\d+)", text):
        out[int(m.group(1), 16)] = (int(m.group(2)), int(m.group(3)))
    return out


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    os.setpgid(0, 0)  # keep terminal signals (^C) for the parent to handle


class Unixctl:
    """A JSON-RPC client for an Open vSwitch unixctl socket (what ovs-appctl
    speaks), kept open across calls to avoid a process per command."""

    def __init__(self, path, timeout=30.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.next_id = 0
        self.decoder = json.JSONDecoder()
        self.buffer = ""

    def call(self, method, *params):
        """Run one command; returns its text result, raises OvsError on error."""
        self.next_id += 1
        request = {"method": method, "params": [str(p) for p in params],
                   "id": self.next_id}
        self.sock.sendall(json.dumps(request).encode())
        while True:
            text = self.buffer.lstrip()
            if text:
                try:
                    reply, end = self.decoder.raw_decode(text)
                except ValueError:
                    reply = None
                if reply is not None:
                    self.buffer = text[end:]
                    if reply.get("id") != self.next_id:
                        raise OvsError(f"{self.path}: reply id {reply.get('id')}, "
                                       f"expected {self.next_id}")
                    if reply.get("error") is not None:
                        raise OvsError(f"{method}: {reply['error']}".rstrip())
                    return reply.get("result") or ""
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise OvsError(f"{self.path}: connection closed during {method}")
            self.buffer += chunk.decode("utf-8", "replace")

    def close(self):
        self.sock.close()


class OvsOracle:
    """A private Open vSwitch instance that forwards test cases.

    Ports are named by the caller and get OpenFlow numbers 1..N in order; a
    rule file may name them either way.
    """

    def __init__(self, workdir=None, keep_workdir=False, vlan_limit=None,
                 verbose=False):
        self.requested_dir = workdir
        self.keep_workdir = keep_workdir
        self.vlan_limit = vlan_limit
        self.verbose = verbose
        self.dir = None
        self.env = None
        self.ovsdb = None
        self.vswitchd = None
        self.ctl = None
        self.ports = []
        self.case_no = 0
        self.old_pcaps = []
        self.last_timing = {}
        self.last_warnings = []

    # ---- life cycle -------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Create the database, start both daemons and an empty bridge."""
        if self.requested_dir:
            os.makedirs(self.requested_dir, exist_ok=True)
            self.dir = tempfile.mkdtemp(prefix="ovs-", dir=self.requested_dir)
        else:
            self.dir = tempfile.mkdtemp(prefix="ovs-oracle-")
        d = self.dir
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_DBDIR=d, OVS_LOGDIR=d,
                        OVS_SYSCONFDIR=d, OVS_PKGDATADIR="/usr/share/openvswitch")
        try:
            self._run(["ovsdb-tool", "create", f"{d}/conf.db", OVS_SCHEMA])
            self.ovsdb = self._spawn(
                ["ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                 f"--unixctl={d}/ovsdb-server.ctl", f"--log-file={d}/ovsdb-server.log",
                 "-vconsole:off", "--no-chdir"], "ovsdb-server")
            self._wait_socket(f"{d}/db.sock", self.ovsdb, "ovsdb-server")
            init = ["--no-wait", "init"]
            if self.vlan_limit is not None:
                init += ["--", "set", "Open_vSwitch", ".",
                         f"other_config:vlan-limit={int(self.vlan_limit)}"]
            self._vsctl(*init)
            self.vswitchd = self._spawn(
                ["ovs-vswitchd", "--enable-dummy=override", "--disable-system",
                 f"--unixctl={d}/vswitchd.ctl", f"--log-file={d}/ovs-vswitchd.log",
                 "-vconsole:off", "--no-chdir", f"unix:{d}/db.sock"], "ovs-vswitchd")
            self._wait_socket(f"{d}/vswitchd.ctl", self.vswitchd, "ovs-vswitchd")
            self.ctl = Unixctl(f"{d}/vswitchd.ctl")
            self._ctl("version")
            self._vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE,
                        "datapath_type=netdev", "fail_mode=secure",
                        "protocols=OpenFlow10,OpenFlow13")
            self._ofctl("del-flows", BRIDGE)
            # Exact-match datapath flows only: the oracle is Open vSwitch's
            # translation of each packet, not its megaflow wildcarding (which
            # lets a packet reuse an entry installed for another packet whose
            # translation depended on bits the entry does not match on).
            self._ctl("upcall/disable-megaflows")  # registered once the bridge's datapath exists
            # No IP reassembly in conntrack (flowpath has none): fragments
            # are +inv+trk, and none is held back across cases.
            self._ctl("dpctl/ipf-set-disabled", "v4")
            self._ctl("dpctl/ipf-set-disabled", "v6")
            status = self._ctl("dpctl/ipf-get-status")
            if not re.search(r"v4 enabled: 0", status) or not re.search(r"v6 enabled: 0", status):
                self._fail(f"IP reassembly still enabled:\n{status}")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stop both daemons by pid and remove the work directory."""
        if self.ctl:
            try:
                self.ctl.close()
            except OSError:
                pass
            self.ctl = None
        for proc in (self.vswitchd, self.ovsdb):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.vswitchd = self.ovsdb = None
        self.ports = []
        if self.dir and not self.keep_workdir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------

    def log_tail(self, lines=25):
        """The end of ovs-vswitchd.log (and ovsdb-server.log if it complains)."""
        text = []
        for name in ("ovs-vswitchd.log", "ovs-vswitchd.stderr", "ovsdb-server.stderr"):
            path = os.path.join(self.dir or "", name)
            try:
                with open(path, errors="replace") as f:
                    content = f.read().splitlines()[-lines:]
            except OSError:
                continue
            if content:
                text.append(f"--- {path} (last {len(content)} lines)")
                text.extend(content)
        return "\n".join(text)

    def _fail(self, message):
        raise OvsError(f"{message}\n{self.log_tail()}")

    def _ctl(self, method, *params):
        """A unixctl command to ovs-vswitchd; failures carry the log tail."""
        try:
            return self.ctl.call(method, *params)
        except (OSError, OvsError) as e:
            state = ""
            if self.vswitchd is not None and self.vswitchd.poll() is not None:
                state = f" (ovs-vswitchd exited with status {self.vswitchd.returncode})"
            self._fail(f"{method}: {e}{state}")

    def _spawn(self, argv, name):
        err = open(os.path.join(self.dir, f"{name}.stderr"), "wb")
        try:
            return subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, cwd=self.dir,
                                    preexec_fn=_die_with_parent)
        finally:
            err.close()

    def _wait_socket(self, path, proc, name, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._fail(f"{name} exited with status {proc.returncode} at start")
            if os.path.exists(path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(path)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.01)
        self._fail(f"{name}: {path} not ready after {timeout} s")

    def _run(self, argv, check=True, timeout=60):
        try:
            res = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                                 timeout=timeout, cwd=self.dir)
        except subprocess.TimeoutExpired:
            self._fail(f"{' '.join(argv)}: timed out after {timeout} s")
        if check and res.returncode != 0:
            self._fail(f"{' '.join(argv)}: exit {res.returncode}: "
                       f"{res.stderr.strip()}")
        return res

    def _vsctl(self, *args):
        return self._run(["ovs-vsctl", f"--db=unix:{self.dir}/db.sock",
                          "--timeout=30", *args]).stdout

    def _ofctl(self, *args, check=True):
        return self._run(["ovs-ofctl", "-O", "OpenFlow13", *args], check=check)

    # ---- configuration ----------------------------------------------------

    def set_ports(self, names):
        """Make the bridge hold exactly dummy ports `names`, numbered 1..N."""
        names = list(names)
        if names == self.ports:
            return
        for name in names:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,14}", name):
                raise ValueError(f"port name {name!r}: use a short identifier")
        args = ["--if-exists", "del-br", BRIDGE, "--", "add-br", BRIDGE,
                "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
                "fail_mode=secure", "protocols=OpenFlow10,OpenFlow13"]
        for i, name in enumerate(names, 1):
            idle = os.path.join(self.dir, f"idle_{name}.pcap")
            args += ["--", "add-port", BRIDGE, name, "--", "set", "interface", name,
                     "type=dummy", f"ofport_request={i}", f"options:tx_pcap={idle}"]
        self._vsctl(*args)
        got = {}
        for line in self._vsctl("--columns=name,ofport", "--format=csv",
                                "--data=bare", "--no-headings",
                                "list", "interface").splitlines():
            name, _, ofport = line.partition(",")
            got[name] = ofport.strip()
        for i, name in enumerate(names, 1):
            if got.get(name) != str(i):
                self._fail(f"port {name} got OpenFlow number {got.get(name)}, wanted {i}")
        self.ports = names
        self.old_pcaps = []

    def load_rules(self, rules_path):
        """Replace all rules with the file's; returns ovs-ofctl's warnings
        (e.g. "normalization changed ofp_match": a field lacking its
        prerequisite that Open vSwitch silently dropped)."""
        self._ofctl("del-flows", BRIDGE)
        res = self._ofctl("add-flows", BRIDGE, os.path.abspath(rules_path), check=False)
        if res.returncode != 0:
            raise RuleLoadError(f"ovs-ofctl add-flows {rules_path} failed: "
                                f"{res.stderr.strip()}", res.stderr)
        # Datapath flows cached for the previous rules must not serve this
        # case, nor connections tracked during it.
        self._ctl("revalidator/purge")
        self._ctl("dpctl/flush-conntrack")
        self.last_warnings = [l for l in res.stderr.splitlines() if l.strip()]
        return self.last_warnings

    def dump_conntrack(self):
        """`dpctl/dump-conntrack`: one line per connection, sorted."""
        return sorted(l.strip() for l in self._ctl("dpctl/dump-conntrack").splitlines() if l.strip())

    def dump_flows(self):
        """The installed rules as ovs-ofctl prints them (OpenFlow 1.3)."""
        return self._ofctl("dump-flows", BRIDGE, "--no-stats").stdout

    def counters(self):
        """(table stats {table: (lookup, matched)}, rule counters {cookie:
        (n_packets, n_bytes)}), exact: the datapath flows are purged first,
        which credits their last statistics to the rules and tables. Table
        statistics never reset: compare two readings."""
        self._ctl("revalidator/purge")
        return (parse_table_stats(self._ofctl("dump-tables", BRIDGE).stdout),
                parse_flow_counters(self._ofctl("dump-flows", BRIDGE).stdout))

    def trace(self, in_port, frame):
        """ofproto/trace of `frame` arriving on port index `in_port` (0-based)
        under the loaded rules: the rules it hits (with their cookies) and the
        datapath actions."""
        return self._ctl("ofproto/trace", BRIDGE, f"in_port={in_port + 1}",
                             bytes(frame).hex())

    def flows_of(self, frames):
        """The flow Open vSwitch extracts from each frame (ovs-ofctl
        parse-pcap, offline), as ofproto/trace flow strings sans in_port."""
        path = os.path.join(self.dir, "parse.pcap")
        pcapfile.write_pcap(path, frames)
        lines = self._run(["ovs-ofctl", "parse-pcap", path]).stdout.splitlines()
        if len(lines) != len(frames):
            self._fail(f"parse-pcap gave {len(lines)} flows for {len(frames)} frames")
        # ofproto/trace cannot parse the inner tag's fields back (and with
        # the default vlan-limit of 1 rules do not see it anyway).
        return [re.sub(r"(^|,)(in_port|vlan_tci1|dl_vlan1|dl_vlan_pcp1)=[^,]*", "", l)
                .lstrip(",") for l in lines]

    def trace_flow(self, in_port, flow):
        """ofproto/trace of a flow string (see flows_of) arriving on port
        index `in_port`. Unlike trace(), no packet is involved, which matters
        for frames that Open vSwitch cannot safely rewrite."""
        return self._ctl("ofproto/trace", BRIDGE, f"in_port={in_port + 1},{flow}")

    # ---- forwarding -------------------------------------------------------

    def port_stats(self):
        """{port name: (rx_packets, tx_packets)} straight from the netdevs."""
        text = self._ctl("dpctl/show", "-s")
        stats = {}
        for m in re.finditer(r"port \d+: (\S+) \([^)]*\)\s*\n\s*RX packets:(\d+)"
                             r"[^\n]*\n\s*TX packets:(\d+)", text):
            stats[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        return stats

    def _new_pcaps(self):
        """Point every port's tx_pcap at a fresh file; return {name: path}."""
        self.case_no += 1
        paths = {n: os.path.join(self.dir, f"c{self.case_no}_{n}.pcap") for n in self.ports}
        args = []
        for name, path in paths.items():
            args += ["--", "set", "interface", name, f"options:tx_pcap={path}"]
        self._vsctl(*args[1:])
        deadline = time.monotonic() + 10
        while not all(os.path.exists(p) and os.path.getsize(p) >= 24 for p in paths.values()):
            if time.monotonic() > deadline:
                self._fail("tx_pcap files were not created after reconfiguration")
            time.sleep(0.005)
        for old in self.old_pcaps:
            try:
                os.unlink(old)
            except OSError:
                pass
        self.old_pcaps = list(paths.values())
        return paths

    def _wait_counters(self, want_rx, timeout=20.0):
        """Wait until every port's rx counter reaches want_rx[name]."""
        deadline = time.monotonic() + timeout
        last, stall_since = None, time.monotonic()
        while True:
            stats = self.port_stats()
            rx = {n: stats[n][0] for n in want_rx}
            if all(rx[n] >= want_rx[n] for n in want_rx):
                if any(rx[n] > want_rx[n] for n in want_rx):
                    self._fail(f"rx counters overshot: {rx}, wanted {want_rx}")
                return stats
            now = time.monotonic()
            if rx != last:
                last, stall_since = rx, now
            elif now - stall_since > 2.0 or now > deadline:
                self._fail(f"rx counters stuck at {rx}, wanted {want_rx} "
                           "(frames dropped by a full dummy rx queue?)")
            time.sleep(0.001)

    def _wait_tx_settled(self, timeout=20.0):
        """Wait until tx counters stop moving (all forwarding done)."""
        deadline = time.monotonic() + timeout
        prev = self.port_stats()
        while True:
            time.sleep(0.005)
            cur = self.port_stats()
            if cur == prev:
                return cur
            if time.monotonic() > deadline:
                self._fail(f"tx counters still moving after {timeout} s")
            prev = cur

    def inject_in_order(self, frames):
        """Send `frames` [(port index, bytes)] in exactly this global order:
        each run of consecutive frames of one port (at most MAX_CHUNK) goes
        in, and the next only once it has been received. ovs-vswitchd's main
        thread receives and forwards dummy ports' frames (upcalls, conntrack
        and recirculation included) one batch at a time, so a frame received
        has been forwarded before the next run is read."""
        stats = self.port_stats()
        want = {n: stats[n][0] for n in self.ports}
        i = 0
        while i < len(frames):
            port = frames[i][0]
            j = i
            while j < len(frames) and frames[j][0] == port and j - i < MAX_CHUNK:
                j += 1
            batch = []
            for p, frame in frames[i:j]:
                if len(frame) < MIN_FRAME:
                    raise ValueError(f"frame of {len(frame)} bytes: netdev-dummy needs {MIN_FRAME}")
                batch.append(bytes(frame).hex())
            name = self.ports[port]
            self._ctl("netdev-dummy/receive", name, *batch)
            want[name] += len(batch)
            self._wait_counters(want)
            i = j

    def inject(self, frames, chunk=MAX_CHUNK, port_order=None):
        """Send `frames` [(port index, bytes)] into the bridge and wait until
        every one has been received. Frames of one port keep their order;
        ports are served round-robin in `port_order` (default 0..N-1),
        `chunk` frames at a time."""
        chunk = max(1, min(chunk, MAX_CHUNK))
        queues = [[] for _ in self.ports]
        for port, frame in frames:
            if not 0 <= port < len(self.ports):
                raise ValueError(f"frame on port index {port}: only {len(self.ports)} ports")
            if len(frame) < MIN_FRAME:
                raise ValueError(f"frame of {len(frame)} bytes: netdev-dummy needs {MIN_FRAME}")
            queues[port].append(bytes(frame).hex())
        order = list(port_order) if port_order is not None else list(range(len(self.ports)))
        stats = self.port_stats()
        want = {n: stats[n][0] for n in self.ports}
        while any(queues):
            for port in order:
                if not queues[port]:
                    continue
                batch, queues[port] = queues[port][:chunk], queues[port][chunk:]
                name = self.ports[port]
                self._ctl("netdev-dummy/receive", name, *batch)
                want[name] += len(batch)
            self._wait_counters(want)

    def change(self, kind, *args):
        """One rule change with ovs-ofctl (add-flow, add-flows, del-flows,
        mod-flows, replace-flows; args after the bridge). Returns the
        CompletedProcess: the caller decides whether a refusal is expected."""
        return self._ofctl(kind, BRIDGE, *args, check=False)

    def run(self, ports, rules_path, frames, out_dir=None, chunk=MAX_CHUNK,
            port_order=None, then=(), in_order=False):
        """Forward one case: returns {port name: [frames sent, in order]}.
        With `out_dir`, also writes out_dir/ovs_<name>.pcap per port. With
        `in_order`, the frames go in in exactly their global order
        (inject_in_order: what conntrack cases need), else port by port in
        chunks (inject).

        `then` adds phases: (apply, frames) pairs; once the frames before
        are forwarded, apply() runs (e.g. rule changes through change()),
        the datapath flows are purged (so the next frames get Open vSwitch's
        translation under the new rules, not a flow cached before) and the
        frames are injected."""
        t0 = time.monotonic()
        self.set_ports(ports)
        t1 = time.monotonic()
        self.load_rules(rules_path)
        paths = self._new_pcaps()
        t2 = time.monotonic()
        before = self.port_stats()
        if in_order:
            self.inject_in_order(frames)
        else:
            self.inject(frames, chunk=chunk, port_order=port_order)
        after = self._wait_tx_settled()
        for apply, more in then:
            apply()
            self._ctl("revalidator/purge")
            self.inject(more, chunk=chunk, port_order=port_order)
            after = self._wait_tx_settled()
        t3 = time.monotonic()
        result = self.collect(paths, before, after, out_dir)
        self.last_timing = {"ports": t1 - t0, "rules": t2 - t1, "forward": t3 - t2,
                            "total": time.monotonic() - t0}
        return result

    def start_capture(self):
        """Fresh tx_pcap files on every port; returns (paths, counters) for
        collect() once the forwarding is done."""
        return self._new_pcaps(), self.port_stats()

    def settle(self):
        """Waits until the tx counters stop moving; returns the counters."""
        return self._wait_tx_settled()

    def collect(self, paths, before, after, out_dir=None):
        """{port name: [frames sent]} from the tx_pcap files, checked against
        the tx counters between `before` and `after`."""
        result = {}
        for name in self.ports:
            sent = after[name][1] - before[name][1]
            deadline = time.monotonic() + 5
            while True:
                try:
                    got = pcapfile.read_pcap(paths[name])
                except pcapfile.PcapError:
                    got = None  # a record still being written
                if got is not None and len(got) >= sent:
                    break
                if time.monotonic() > deadline:
                    self._fail(f"{paths[name]}: {0 if got is None else len(got)} "
                               f"frames, tx counter says {sent}")
                time.sleep(0.005)
            if len(got) != sent:
                self._fail(f"{paths[name]}: {len(got)} frames, tx counter says {sent}")
            result[name] = got
            if out_dir:
                pcapfile.write_pcap(os.path.join(out_dir, f"ovs_{name}.pcap"), got)
        return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", required=True, help="rule file (ovs-ofctl syntax)")
    ap.add_argument("--port", action="append", required=True, metavar="NAME[=RX_PCAP]",
                    help="a port, in OpenFlow number order; RX_PCAP holds the "
                         "frames to inject on it, in order")
    ap.add_argument("--out-dir", required=True, help="writes ovs_<NAME>.pcap here")
    ap.add_argument("--vlan-limit", type=int, default=None,
                    help="other_config:vlan-limit (default: Open vSwitch's, 1)")
    ap.add_argument("--keep-workdir", action="store_true",
                    help="keep the daemons' directory (logs, database)")
    ap.add_argument("--trace", action="store_true",
                    help="print ofproto/trace of every injected frame")
    args = ap.parse_args(argv)

    names, frames = [], []
    for i, spec in enumerate(args.port):
        name, _, pcap = spec.partition("=")
        names.append(name)
        if pcap:
            frames += [(i, f) for f in pcapfile.read_pcap(pcap)]
    os.makedirs(args.out_dir, exist_ok=True)
    try:
        with OvsOracle(vlan_limit=args.vlan_limit,
                       keep_workdir=args.keep_workdir) as ovs:
            out = ovs.run(names, args.rules, frames, out_dir=args.out_dir)
            for w in ovs.last_warnings:
                print(f"ovs-ofctl: {w}", file=sys.stderr)
            if args.trace:
                for port, frame in frames:
                    print(f"=== frame on {names[port]}: {frame.hex()}")
                    print(ovs.trace(port, frame))
            if args.keep_workdir:
                print(f"work directory: {ovs.dir}")
    except (OvsError, ValueError, pcapfile.PcapError) as e:
        print(f"ovs_oracle: {e}", file=sys.stderr)
        return 1
    for name in names:
        print(f"{name}: {len(out[name])} frames -> {args.out_dir}/ovs_{name}.pcap")
    print(f"time: {ovs.last_timing['total']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
