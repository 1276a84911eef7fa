#!/usr/bin/python3
"""Checks that Open vSwitch 3.1 accepts rule files, in a throwaway switch.

    ovs_accepts.py [--ports N] [--dump OUT] RULEFILE...
        Loads each file with `ovs-ofctl -O OpenFlow13 add-flows` into a fresh
        bridge (netdev datapath, dummy ports p0..p{N-1} as OpenFlow ports
        1..N) and exits 1 at the first file Open vSwitch rejects, printing its
        error. --dump writes what the switch holds afterwards (dump-flows
        --no-stats --names, OpenFlow 1.3) for the last file.

    ovs_accepts.py BUILD_DIR
        The e2e test: tests/diff/example_rules.txt, config/default.rules and a batch of rules from
        the test generator (rules_test) must load, and every rule must read
        back from the switch as flowpath parsed it (the comparison runs in
        rules_test, OvsDiff.DumpMatchesRules).

Exit status 77 (a skipped test for meson) when Open vSwitch is not
installed. The daemons run under a temporary directory (OVS_RUNDIR, OVS_DBDIR,
OVS_LOGDIR, OVS_SYSCONFDIR) and are stopped by their own pids.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


class OvsSandbox:
    """ovsdb-server + ovs-vswitchd with one bridge br0, all under a temp dir."""

    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix="flowpath-ovs-")
        self.env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            self.env[var] = self.dir
        self.pidfiles = []
        try:
            self._start(ports)
        except Exception:
            self.stop()
            raise

    def _run(self, *args, check=True):
        result = subprocess.run(args, env=self.env, cwd=self.dir, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def _start(self, ports):
        d = self.dir
        db = os.path.join(d, "conf.db")
        sock = "unix:" + os.path.join(d, "db.sock")
        self._run("ovsdb-tool", "create", db, SCHEMA)
        self.pidfiles.append(os.path.join(d, "ovsdb-server.pid"))
        self._run("ovsdb-server", "--remote=p" + sock, "--pidfile=" + self.pidfiles[-1], "--detach",
                  "--no-chdir", "--log-file=" + os.path.join(d, "ovsdb-server.log"),
                  "--unixctl=" + os.path.join(d, "ovsdb-server.ctl"), db)
        self.vsctl = ("ovs-vsctl", "--db=" + sock, "--timeout=30")
        self._run(*self.vsctl, "--no-wait", "init")
        self.pidfiles.append(os.path.join(d, "ovs-vswitchd.pid"))
        self._run("ovs-vswitchd", "--enable-dummy=override", "--disable-system", sock,
                  "--pidfile=" + self.pidfiles[-1], "--detach", "--no-chdir",
                  "--log-file=" + os.path.join(d, "ovs-vswitchd.log"),
                  "--unixctl=" + os.path.join(d, "ovs-vswitchd.ctl"))
        cmd = list(self.vsctl) + ["add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"]
        for i in range(ports):
            cmd += ["--", "add-port", "br0", f"p{i}", "--", "set", "interface", f"p{i}", "type=dummy",
                    f"ofport_request={i + 1}"]
        self._run(*cmd)

    def load(self, path):
        """Replaces the bridge's flows by the file's; returns (ok, error text)."""
        self._run("ovs-ofctl", "del-flows", "br0")
        result = self._run("ovs-ofctl", "-O", "OpenFlow13", "add-flows", "br0", os.path.abspath(path),
                           check=False)
        return result.returncode == 0, result.stderr.strip()

    def dump(self):
        result = self._run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "--no-stats", "--names", "br0")
        return [line.strip() for line in result.stdout.splitlines()
                if line.strip() and not line.startswith("OFPST_FLOW")]

    def stop(self):
        for pidfile in reversed(self.pidfiles):
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


def have_ovs():
    return all(shutil.which(tool) for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl")) and \
        (shutil.which("ovs-vswitchd") or os.path.exists("/usr/sbin/ovs-vswitchd")) and os.path.exists(SCHEMA)


def check_files(files, ports, dump_path):
    sandbox = OvsSandbox(ports)
    try:
        for path in files:
            ok, error = sandbox.load(path)
            if not ok:
                print(f"Open vSwitch rejects {path}: {error}", file=sys.stderr)
                return 1
            print(f"Open vSwitch accepts {path}")
        if dump_path:
            with open(dump_path, "w") as out:
                out.write("\n".join(sandbox.dump()) + "\n")
        return 0
    finally:
        sandbox.stop()


def find_rules_test(build_dir):
    path = os.path.join(build_dir, "tests", "unit", "rules_test")
    return path if os.access(path, os.X_OK) else None


def run_rules_test(binary, test_filter, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    result = subprocess.run([binary, "--gtest_filter=" + test_filter], env=env, capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:], file=sys.stderr)
    return result.returncode == 0


def e2e(build_dir):
    ports = 4
    binary = find_rules_test(build_dir)
    if not binary:
        print(f"no rules_test under {build_dir}", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="flowpath-rules-")
    try:
        generated = os.path.join(work, "generated_rules.txt")
        if not run_rules_test(binary, "RuleGen.Export", {"FLOWPATH_RULEGEN_OUT": generated,
                                                         "FLOWPATH_RULEGEN_COUNT": "400"}):
            return 1
        example = os.path.join(HERE, "example_rules.txt")
        default_job = os.path.join(HERE, "..", "..", "config", "default.rules")
        sandbox = OvsSandbox(ports)
        try:
            for path in (example, generated, default_job):
                ok, error = sandbox.load(path)
                if not ok:
                    print(f"Open vSwitch rejects {path}: {error}", file=sys.stderr)
                    return 1
                dump = os.path.join(work, os.path.basename(path) + ".dump")
                with open(dump, "w") as out:
                    out.write("\n".join(sandbox.dump()) + "\n")
                if not run_rules_test(binary, "OvsDiff.DumpMatchesRules",
                                      {"FLOWPATH_OVS_RULES": path, "FLOWPATH_OVS_DUMP": dump}):
                    print(f"Open vSwitch holds {path} differently from flowpath's parse", file=sys.stderr)
                    return 1
                print(f"ok: {path} loads into Open vSwitch and reads back the same")
        finally:
            sandbox.stop()
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=4, help="dummy ports p0..p{N-1} (default 4)")
    parser.add_argument("--dump", help="write the switch's flows here after loading")
    parser.add_argument("paths", nargs="+", help="rule files, or one build directory (e2e mode)")
    args = parser.parse_args()
    if not have_ovs():
        print("Open vSwitch is not installed: skipped", file=sys.stderr)
        return SKIP
    if len(args.paths) == 1 and os.path.isdir(args.paths[0]):
        return e2e(args.paths[0])
    return check_files(args.paths, args.ports, args.dump)


if __name__ == "__main__":
    sys.exit(main())
