"""The three systems under test, each driven the same way.

Every system runs one forwarding worker on lcore 1 and its main thread on
lcore 0, receives from `net_pcap` (infinite_rx=1, the whole pcap held in
mbufs) on port p0 and sends to `net_null` (no-rx=1) on port p1.  A runner
starts its system, then the benchmark alternates between systems by
stopping the idle ones with SIGSTOP (a stopped process uses no CPU, so the
measured one has lcore 1 to itself) and resuming the measured one with
SIGCONT.  Counters are always read from the system itself:

- dpdk-testpmd: `show port stats all` on its interactive prompt,
- Open vSwitch: `ovs-ofctl dump-ports` (live port counters) and
  `ovs-appctl dpif-netdev/pmd-stats-show`, `dpctl/dump-flows`,
- flowpath: `flowpath-ctl stats-json`.

Processes are only ever stopped by the pids this module started.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

# Memory per mbuf under --no-huge: a default mbuf (2176-byte data room plus
# headers, ~2.4 KiB) may not straddle a 4 KiB page there, so each takes a page.
MBUF_BYTES = 4160


class StartFailure(Exception):
    """A system did not come up; `status` is "unsupported" or "failed"."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the benchmark dies, even by SIGKILL,
    so no busy-polling PMD is left behind on lcore 1."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _popen(cmd, **kwargs):
    return subprocess.Popen(cmd, preexec_fn=_die_with_parent, **kwargs)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _mem_mb_for(mbufs):
    return max(1024, (mbufs * MBUF_BYTES) // (1 << 20) + 512)


def mbufs_for(packets):
    """Pool size: the whole pcap plus descriptors and bursts in flight.

    One size (262144, OVS's own shared-pool size) for every pcap that fits,
    so RSS stays comparable across workloads; larger pcaps round up to 64k.
    """
    needed = packets + 16384
    return max(1 << 18, -(-needed // 65536) * 65536)


# OVS sizes its shared mempool itself and never above 262144 mbufs; net_pcap
# with infinite_rx needs the whole pcap in mbufs plus the rx/tx rings.
OVS_MAX_PCAP_PACKETS = 262144 - 3 * 2048 - 8192


def _run(cmd, env=None, timeout=60, check=True):
    result = subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), result.returncode,
                                                   (result.stderr or result.stdout).strip()[:500]))
    return result.stdout


def _stop_process(proc, grace=5.0):
    """Ends a child we started: SIGCONT (in case it is paused), SIGTERM, SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGCONT, 0), (signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return
        if wait:
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _remove_dpdk_runtime(prefix):
    shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)


def cleanup_stale():
    """Removes run directories left by a benchmark that was killed (SIGKILL)."""
    import glob
    for path in glob.glob("/var/run/dpdk/fpbench_*") + glob.glob(os.path.join(tempfile.gettempdir(),
                                                                               "fpbench-*.*.*")):
        match = re.search(r"fpbench(?:_[a-z]+|-[a-z]+\.)(\d+)", os.path.basename(path))
        if match and not os.path.exists("/proc/%s" % match.group(1)):
            shutil.rmtree(path, ignore_errors=True)


class System:
    """Base: one system under test (start, pause/resume, sample, stop)."""

    name = "?"
    label = "?"

    def __init__(self, config):
        self.config = config
        self.proc = None
        self.started_at = None

    def pid(self):
        return self.proc.pid if self.proc else None

    def pause(self):
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid(), signal.SIGCONT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def sample(self):
        """Cheap counters: {'t', 'rx', 'tx', ...} with t in seconds."""
        raise NotImplementedError

    def details(self):
        """Costlier state read once per round after the window (caches, memory)."""
        return {"rss_kib": rss_kib(self.pid())}

    def connections(self):
        """Tracked connections now (None when the system cannot say)."""
        return None

    def commits(self):
        """Packets the rules' ct(commit) actions have handled so far (the
        rule counters): new connections set up, in a conntrack workload."""
        return None

    def delete_rules(self, match):
        """del-flows MATCH (non-strict) in the running system."""
        raise NotImplementedError

    def setup_rx(self):
        """Packets received on the set-up port p2 so far."""
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError


# --------------------------------------------------------------------------
# dpdk-testpmd


class Testpmd(System):
    """dpdk-testpmd io forwarding: the I/O ceiling."""

    name = "testpmd"
    label = "testpmd io"

    def __init__(self, config):
        super().__init__(config)
        self._output = bytearray()
        self._lock = threading.Condition()
        self.prefix = "fpbench_tp%d" % os.getpid()

    def _reader(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            with self._lock:
                self._output += chunk
                self._lock.notify_all()

    def _wait_for(self, needle, start, timeout):
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                pos = self._output.find(needle, start)
                if pos >= 0:
                    return pos
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    raise StartFailure("failed", "testpmd: no %r in its output: %s" % (
                        needle.decode(), bytes(self._output[-400:]).decode(errors="replace")))
                self._lock.wait(min(left, 0.2))

    def _command(self, text, until, timeout=10):
        with self._lock:
            start = len(self._output)
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()
        end = self._wait_for(until, start, timeout)
        with self._lock:
            return bytes(self._output[start:end + len(until)]).decode(errors="replace")

    def start(self, workload):
        mbufs = mbufs_for(workload.packets)
        cmd = ["stdbuf", "-oL", "dpdk-testpmd", "--no-huge", "--no-shconf",
               "-m", str(_mem_mb_for(mbufs)), "--no-pci", "-l", "0,1",
               "--file-prefix", self.prefix, "--log-level", "lib.eal:error",
               "--vdev", "net_pcap0,rx_pcap=%s,infinite_rx=1" % workload.pcap,
               "--vdev", "net_null0,no-rx=1",
               "--", "-i", "--forward-mode=io", "--total-num-mbufs=%d" % mbufs]
        self.started_at = time.monotonic()
        self.proc = _popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._reader, daemon=True).start()
        self._wait_for(b"testpmd> ", 0, self.config.start_timeout)
        self._command("start", b"testpmd> ")

    def sample(self):
        t0 = time.monotonic()
        # The next prompt comes once both ports' blocks are printed.
        text = self._command("show port stats all", b"testpmd> ", 10)
        t1 = time.monotonic()
        counters = {}
        for port, block in re.findall(r"NIC statistics for port (\d+)\s+#+\n(.*?)#{20,}", text, re.S):
            rx = re.search(r"RX-packets:\s*(\d+)", block)
            tx = re.search(r"TX-packets:\s*(\d+)", block)
            counters[int(port)] = (int(rx.group(1)), int(tx.group(1)))
        if 0 not in counters or 1 not in counters:
            raise RuntimeError("testpmd: cannot parse port stats: %s" % text[-500:])
        return {"t": (t0 + t1) / 2, "rx": counters[0][0], "tx": counters[1][1]}

    def stop(self):
        if self.alive():
            try:
                self.resume()
                self.proc.stdin.write(b"stop\nquit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _stop_process(self.proc)
        _remove_dpdk_runtime(self.prefix)


# --------------------------------------------------------------------------
# Open vSwitch with DPDK


class Ovs(System):
    """ovs-vswitchd-dpdk in a private run directory with its own ovsdb-server."""

    name = "ovs"
    label = "OVS-DPDK"
    extra_settings = []  # other_config keys beyond the shipped defaults
    # Command prefix for ovs-vswitchd: a second instance next to a first
    # needs a network namespace of its own (the netdev datapath creates tap
    # devices `ovs-netdev` and `br0`, which would collide).
    launcher = []
    VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
    SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"

    def __init__(self, config):
        super().__init__(config)
        self.dir = None
        self.db = None
        self.prefix = "fpbench_ovs%d" % os.getpid()

    def _env(self):
        env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            env[var] = self.dir
        return env

    def _vsctl(self, *args, timeout=60):
        return _run(["ovs-vsctl", "--db=unix:%s/db.sock" % self.dir, "--timeout=%d" % timeout]
                    + list(args), env=self._env(), timeout=timeout + 5)

    def appctl(self, *args, timeout=60):
        return _run(["ovs-appctl", "-t", "%s/ovs-vswitchd.ctl" % self.dir] + list(args),
                    env=self._env(), timeout=timeout)

    def ofctl(self, *args, timeout=60):
        return _run(["ovs-ofctl", "-O", "OpenFlow13"] + list(args), env=self._env(), timeout=timeout)

    def start(self, workload, rules=None):
        """Starts OVS with the workload's rules (or the file `rules`) loaded
        before the pcap port is added."""
        if workload.packets > OVS_MAX_PCAP_PACKETS:
            raise StartFailure("unsupported", "a pcap of %d packets does not fit OVS's shared mempool "
                               "(at most 262144 mbufs; net_pcap infinite_rx holds the whole file)"
                               % workload.packets)
        self.dir = tempfile.mkdtemp(prefix="fpbench-ovs.%d." % os.getpid())
        env = self._env()
        _run(["ovsdb-tool", "create", "%s/conf.db" % self.dir, self.SCHEMA], env=env)
        self.db = _popen(
            ["ovsdb-server", "%s/conf.db" % self.dir, "--remote=punix:%s/db.sock" % self.dir,
             "--pidfile=%s/ovsdb-server.pid" % self.dir, "--unixctl=%s/ovsdb-server.ctl" % self.dir,
             "--log-file=%s/ovsdb-server.log" % self.dir],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_path("%s/db.sock" % self.dir, self.db)
        self._vsctl("--no-wait", "init")
        # dpdk-socket-mem stays unset: with it OVS adds --in-memory, which DPDK
        # refuses next to --legacy-mem.  OVS sizes its shared mempool itself
        # (at most 262144 mbufs), which caps the pcaps it can hold.
        settings = ["other_config:dpdk-init=true",
                    "other_config:dpdk-extra=--no-huge --legacy-mem -m 2048 --no-pci "
                    "--file-prefix=%s" % self.prefix,
                    "other_config:pmd-cpu-mask=0x2"]
        if workload.meta.get("flow_limit"):
            settings.append("other_config:flow-limit=%d" % workload.meta["flow_limit"])
        settings += self.extra_settings
        self._vsctl("--no-wait", "set", "Open_vSwitch", ".", *settings)
        self.started_at = time.monotonic()
        # taskset keeps the main, handler and revalidator threads on core 0;
        # the PMD thread pins itself to core 1 (pmd-cpu-mask).
        self.proc = _popen(
            ["taskset", "-c", "0"] + self.launcher + [self.VSWITCHD, "unix:%s/db.sock" % self.dir,
             "--pidfile=%s/ovs-vswitchd.pid" % self.dir, "--unixctl=%s/ovs-vswitchd.ctl" % self.dir,
             "--log-file=%s/ovs-vswitchd.log" % self.dir],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_path("%s/ovs-vswitchd.ctl" % self.dir, self.proc)
        self._vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        # ovs-ofctl finds the bridge by its management socket, which a loaded
        # host may create after add-br returns ("br0 is not a bridge").
        self._wait_path("%s/br0.mgmt" % self.dir, self.proc)
        self._vsctl("add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dpdk",
                    "options:dpdk-devargs=net_null0,no-rx=1", "ofport_request=2")
        if workload.meta.get("ports", 2) >= 3:
            self._vsctl("add-port", "br0", "p2", "--", "set", "Interface", "p2", "type=dpdk",
                        "options:dpdk-devargs=net_null1,no-rx=1", "ofport_request=3")
        # Rules go in before the pcap port exists (else the first packets miss
        # them), so its name cannot be resolved yet: use the OpenFlow numbers
        # the ports are given (p0 = 1, p1 = 2), as the rule syntax allows.
        numbered = os.path.join(self.dir, "rules.of")
        with open(rules or workload.rules) as src, open(numbered, "w") as dst:
            dst.write(self.numbered_ports(src.read()))
        self.ofctl("del-flows", "br0")
        t0 = time.monotonic()
        try:
            self.ofctl("add-flows", "br0", numbered, timeout=self.config.rules_timeout)
        except RuntimeError as error:
            raise StartFailure("unsupported", str(error).splitlines()[-1][:300])
        except subprocess.TimeoutExpired:
            raise StartFailure("failed", "ovs-ofctl add-flows took more than %d s" % self.config.rules_timeout)
        self.rules_load_seconds = time.monotonic() - t0
        self._vsctl("add-port", "br0", "p0", "--", "set", "Interface", "p0", "type=dpdk",
                    "options:dpdk-devargs=net_pcap0,rx_pcap=%s,infinite_rx=1" % workload.pcap,
                    "ofport_request=1")
        if self._port_error("p0"):
            raise StartFailure("failed", "OVS: p0: %s" % self._port_error("p0"))
        setup = workload.meta.get("pcaps", {}).get("setup")
        if setup:
            # Read once (no infinite_rx): the connections it opens stay.
            self._vsctl("add-port", "br0", "p2", "--", "set", "Interface", "p2", "type=dpdk",
                        "options:dpdk-devargs=net_pcap2,rx_pcap=%s" % setup, "ofport_request=3")
            if self._port_error("p2"):
                raise StartFailure("failed", "OVS: p2: %s" % self._port_error("p2"))

    @staticmethod
    def numbered_ports(text):
        """Rule text with p0, p1, p2 as their OpenFlow numbers 1, 2, 3."""
        for name, number in (("p0", "1"), ("p1", "2"), ("p2", "3")):
            text = re.sub(r"\b%s\b" % name, number, text)
        return text

    def _port_error(self, port):
        out = self._vsctl("--if-exists", "get", "Interface", port, "error").strip()
        return "" if out in ("", "[]") else out

    def _wait_path(self, path, proc, timeout=30):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StartFailure("failed", "OVS: %s did not appear (see %s)" % (path, self.dir))
            time.sleep(0.02)

    def _port_counters(self):
        """(p0 rx, p1 tx, p2 tx or None)."""
        text = self.ofctl("dump-ports", "br0")
        rx = re.search(r"port\s+1: rx pkts=(\d+)", text)
        tx = re.search(r"port\s+2: rx pkts=\d+.*?\n\s+tx pkts=(\d+)", text)
        tx2 = re.search(r"port\s+3: rx pkts=\d+.*?\n\s+tx pkts=(\d+)", text)
        if not rx or not tx:
            raise RuntimeError("OVS: cannot parse dump-ports: %s" % text[:400])
        return int(rx.group(1)), int(tx.group(1)), int(tx2.group(1)) if tx2 else None

    def pmd_stats(self):
        """Counters of the PMD thread on core 1 (cumulative since start)."""
        text = self.appctl("dpif-netdev/pmd-stats-show")
        block = text.split("main thread:")[0]
        fields = {
            "packets": r"packets received: (\d+)",
            "emc_hits": r"emc hits: (\d+)",
            "smc_hits": r"smc hits: (\d+)",
            "simple_match_hits": r"simple match hits: (\d+)",
            "megaflow_hits": r"megaflow hits: (\d+)",
            "upcalls_ok": r"miss with success upcall: (\d+)",
            "upcalls_failed": r"miss with failed upcall: (\d+)",
        }
        stats = {}
        for key, pattern in fields.items():
            match = re.search(pattern, block)
            stats[key] = int(match.group(1)) if match else 0
        return stats

    def sample(self):
        t0 = time.monotonic()
        rx, tx, tx_p2 = self._port_counters()
        t1 = time.monotonic()
        stats = self.pmd_stats()
        sample = {"t": (t0 + t1) / 2, "rx": rx, "tx": tx, "tx_p2": tx_p2}
        sample.update(stats)
        sample["exact_hits"] = stats["emc_hits"] + stats["smc_hits"] + stats["simple_match_hits"]
        sample["cache_hits"] = stats["megaflow_hits"]
        sample["misses"] = stats["upcalls_ok"] + stats["upcalls_failed"]
        sample["upcalls"] = sample["misses"]
        sample["installed"] = stats["upcalls_ok"]
        return sample

    def fast_sample(self):
        """One appctl round trip: enough for the flow-setup time series."""
        t0 = time.monotonic()
        stats = self.pmd_stats()
        t1 = time.monotonic()
        return {"t": (t0 + t1) / 2, "rx": stats["packets"], "upcalls":
                stats["upcalls_ok"] + stats["upcalls_failed"], "installed": stats["upcalls_ok"]}

    def connections(self):
        try:
            return int(self.appctl("dpctl/ct-get-nconns").strip() or 0)
        except (RuntimeError, ValueError):
            return None

    def commits(self):
        # The datapath flows' counters: live, unlike the OpenFlow rules'
        # (the revalidators push those about twice a second).
        return _commit_packets(self.appctl("dpctl/dump-flows"))

    def delete_rules(self, match):
        self.ofctl("del-flows", "br0", self.numbered_ports(match))

    def setup_rx(self):
        match = re.search(r"port\s+3: rx pkts=(\d+)", self.ofctl("dump-ports", "br0", "3"))
        return int(match.group(1)) if match else None

    def details(self):
        result = {"rss_kib": rss_kib(self.pid())}
        flows = self.appctl("dpctl/dump-flows", timeout=120).splitlines()
        masks = set()
        megaflows = 0
        for line in flows:
            if not line.startswith("recirc_id") and "in_port(" not in line:
                continue
            megaflows += 1
            match = line.split(", packets:")[0]
            # Mask signature: field names and masks, values dropped.
            signature = re.sub(r"=([^,()/]+)/", "=/", match)
            signature = re.sub(r"=([^,()/]+)(?=[,)])", "=exact", signature)
            masks.add(signature)
        result["megaflows"] = megaflows
        result["subtables"] = len(masks)
        result["connections"] = self.connections()
        return result

    def stop(self):
        if self.alive():
            try:
                self.resume()
                self.appctl("exit", "--cleanup", timeout=15)
                self.proc.wait(timeout=15)
            except (RuntimeError, subprocess.TimeoutExpired, OSError):
                pass
        _stop_process(self.proc)
        _stop_process(self.db)
        _remove_dpdk_runtime(self.prefix)
        if self.dir and not self.config.keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# flowpath


class Flowpath(System):
    """build/flowpath as documented in shared/interface.md."""

    name = "flowpath"
    label = "flowpath"

    def __init__(self, config):
        super().__init__(config)
        self.dir = None
        self.prefix = "fpbench_fp%d" % os.getpid()

    @property
    def socket(self):
        return os.path.join(self.dir, "ctl.sock")

    def ctl(self, *args, timeout=10):
        return _run([self.config.flowpath_ctl, "--socket", self.socket] + list(args), timeout=timeout)

    def stats(self):
        t0 = time.monotonic()
        data = json.loads(self.ctl("stats-json"))
        return (t0 + time.monotonic()) / 2, data

    def start(self, workload, rules=None):
        """Starts flowpath (stopped as soon as its socket appears); `rules`
        replaces the workload's rule file."""
        self.dir = tempfile.mkdtemp(prefix="fpbench-fp.%d." % os.getpid())
        mbufs = mbufs_for(workload.packets)
        eal = "--no-huge --no-shconf -m %d --no-pci -l 0,1 --file-prefix=%s" % (
            _mem_mb_for(mbufs), self.prefix)
        cmd = [self.config.flowpath, "--pmd-cores", "1", "--rules", rules or workload.rules,
               "--port", "p0=net_pcap0,rx_pcap=%s,infinite_rx=1" % workload.pcap,
               "--port", "p1=net_null0,no-rx=1", "--ctl-socket", self.socket,
               "--mbufs", str(mbufs), "--eal", eal, "--log-level", "warn"]
        if workload.meta.get("ports", 2) >= 3:
            cmd += ["--port", "p2=net_null1,no-rx=1"]
        if workload.meta.get("flow_limit"):
            cmd += ["--flow-limit", str(workload.meta["flow_limit"])]
        if workload.kind == "upcall":
            # The slow-path thread on the main lcore's core 0, the worker on
            # core 1: another core than the worker (issue 8).
            cmd += ["--slow-path-cores", "0"]
        setup = workload.meta.get("pcaps", {}).get("setup")
        if setup:
            cmd += ["--port", "p2=net_pcap2,rx_pcap=%s" % setup]
        self.log_path = os.path.join(self.dir, "flowpath.log")
        self.started_at = time.monotonic()
        with open(self.log_path, "w") as log:
            self.proc = _popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        # A large rule file is loaded before the socket appears.
        timeout = self.config.start_timeout + (self.config.rules_timeout if workload.kind == "ruleload" else 0)
        deadline = time.monotonic() + timeout
        while True:
            status = self.proc.poll()
            if status is not None:
                lines = [l.strip() for l in open(self.log_path, errors="replace") if l.strip()]
                message = lines[-1] if lines else "(no output)"
                # The contract's error line names the rule file; else any error line.
                errors = ([l for l in lines if os.path.basename(rules or workload.rules) in l]
                          or [l for l in lines if "error" in l.lower() or "unsupported" in l.lower()])
                if errors:
                    message = errors[0]
                raise StartFailure("unsupported" if status == 2 else "failed",
                                   "exit %d: %s" % (status, message[:300]))
            if os.path.exists(self.socket):
                self.ready_seconds = time.monotonic() - self.started_at
                # flowpath binds its socket after the configuration and the
                # ports are checked and before its workers start: stopping it
                # here keeps a flow-setup workload's first pass for the
                # measurement. (It answers once resumed; a failure to
                # answer then fails the round.)
                os.kill(self.proc.pid, signal.SIGSTOP)
                return
            if time.monotonic() > deadline:
                raise StartFailure("failed", "no socket %s after %ds" % (self.socket, timeout))
            time.sleep(0.002)

    @staticmethod
    def _flatten(t, data):
        ports = {p.get("name"): p for p in data.get("ports", [])}
        workers = data.get("workers", [])
        slow = data.get("slow_path", {})
        cache = data.get("cache", {})

        def total(key):
            return sum(w.get(key, 0) or 0 for w in workers)

        return {"t": t,
                "rx": ports.get("p0", {}).get("rx_packets", 0),
                "tx": ports.get("p1", {}).get("tx_packets", 0),
                "tx_p2": ports.get("p2", {}).get("tx_packets"),
                "queue_drops": data.get("drops", {}).get("upcall_queue_full"),
                # Simple-match hits count as exact hits, as OVS's simple_match_hits do above.
                "packets": total("packets"), "exact_hits": total("exact_hits") + total("simple_hits"),
                "cache_hits": total("cache_hits"), "misses": total("misses"),
                "lost": total("lost"),
                "upcalls": slow.get("upcalls", 0), "installed": slow.get("installed", 0),
                "cache_entries": cache.get("entries"), "cache_subtables": cache.get("subtables"),
                "cache_bytes": cache.get("bytes"), "widened": slow.get("widened"),
                "connections": data.get("conntrack", {}).get("connections")}

    def sample(self):
        return self._flatten(*self.stats())

    def fast_sample(self):
        return self.sample()

    def connections(self):
        return self.sample()["connections"]

    def commits(self):
        return _commit_packets(self.ctl("dump-flows"))

    def delete_rules(self, match):
        self.ctl("del-flows", match)

    def setup_rx(self):
        ports = {p.get("name"): p for p in self.stats()[1].get("ports", [])}
        return ports.get("p2", {}).get("rx_packets")

    def details(self):
        t, data = self.stats()
        sample = self._flatten(t, data)
        ct = data.get("conntrack", {})
        # The tracker's own account of its memory, if stats-json gives one.
        ct_bytes = next((ct[k] for k in ("bytes", "memory_bytes") if isinstance(ct.get(k), (int, float))), None)
        return {"rss_kib": rss_kib(self.pid()), "megaflows": sample["cache_entries"],
                "subtables": sample["cache_subtables"], "connections": sample["connections"],
                "cache_bytes": sample["cache_bytes"], "widened": sample["widened"], "ct_bytes": ct_bytes}

    def stop(self):
        if self.alive():
            try:
                self.resume()
                self.ctl("exit", timeout=5)
                self.proc.wait(timeout=10)
            except (RuntimeError, subprocess.TimeoutExpired, OSError):
                pass
        _stop_process(self.proc)
        _remove_dpdk_runtime(self.prefix)
        if self.dir and not self.config.keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)


class OvsSmc(Ovs):
    """Open vSwitch with its signature match cache on (`smc-enable`, off as
    shipped): its best configuration for many flows (issue 10)."""

    name = "ovs_smc"
    label = "OVS-DPDK +SMC"
    extra_settings = ["other_config:smc-enable=true"]
    launcher = ["unshare", "--net"]  # exec()s ovs-vswitchd: same pid

    def __init__(self, config):
        super().__init__(config)
        self.prefix = "fpbench_ovssmc%d" % os.getpid()


def _commit_packets(dump):
    """Packets of the flows whose actions commit (ct(commit...)): from
    `flowpath-ctl dump-flows` (rules, n_packets=N ... actions=...) or
    `ovs-appctl dpctl/dump-flows` (datapath flows, packets:N ... actions:...)."""
    total = 0
    for line in dump.splitlines():
        match = re.search(r"(?:n_packets=|packets:)(\d+)", line)
        actions = re.split(r"actions[=:]", line, maxsplit=1)[-1]
        if match and "ct(commit" in actions:
            total += int(match.group(1))
    return total


SYSTEMS = {"testpmd": Testpmd, "ovs": Ovs, "ovs_smc": OvsSmc, "flowpath": Flowpath}
