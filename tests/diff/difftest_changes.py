#!/usr/bin/python3
"""The differential test with rule changes while traffic flows (issue 8).

For each case (gen_changes.py): phase-1 rules and frames, then rule changes
(add-flow, add-flows, del-flows, mod-flows, replace-flows; some bad), then
phase-2 frames. Open vSwitch gets the changes through ovs-ofctl, flowpath
through flowpath-ctl while it runs; every port must carry the same frames,
each flow in order, across both phases (compare.py).

    difftest_changes.py --flowpath BUILD/flowpath --cases 40 --seed 1
    difftest_changes.py --flowpath BUILD/flowpath --case-seed N --keep DIR   # one case again
    difftest_changes.py --ovs-only --cases 20         # the harness: OVS against itself
    difftest_changes.py --flowpath tests/diff/fake_flowpath.py \\
        --flowpath-ctl BUILD/flowpath-ctl --cases 3   # the plumbing: must pass
    ... --flowpath-arg=--mutate=reorder               # must fail

How flowpath is fed. net_pcap reads its rx_pcap once, so each port's
rx_pcap is a FIFO that this driver writes while flowpath runs: phase 1, the
changes, phase 2, then end of file. A net_pcap rx burst blocks until it has
its 32 frames, so between the frames the driver keeps every FIFO supplied
with filler frames (dl_type 0x88b7, which no generated frame or rule uses)
that flowpath drops by an extra rule, `priority=65535,dl_type=0x88b7
actions=drop` (the generated rules stay below 65535). flowpath gets that
rule in its phase-1 file and in every replace-flows file, and again after a
del-flows whose MATCH is empty or `table=0` alone (those delete it). A
filler that leaves flowpath shows as a frame Open vSwitch did not send.

Before the changes the driver waits until flowpath has read every phase-1
frame (port rx counters against what was written) and its tx, miss and
slow-path counters have been still for 0.25 s; flowpath-ctl returns once
every worker forwards by the new rules, so phase 2 follows at once.

A good change must succeed on both sides; a bad one (an unknown field) must
be refused by both, flowpath with exit status 1 and FILE:LINE: of the bad
line (for add-flow RULE, exit 1 only). The last line printed is
"N passed, N failed".
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import difftest  # noqa: E402
import gen_case  # noqa: E402
import gen_changes  # noqa: E402
import gen_packets as gp  # noqa: E402
import ovs_oracle  # noqa: E402
import pcapfile  # noqa: E402

FILLER_RULE = "priority=65535,dl_type=0x88b7 actions=drop"
FILLER_FRAME = bytes.fromhex("0200000000ff02fffffffffe88b7") + bytes(46)
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def record(frame):
    return struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame


class FifoPort:
    """One port's rx FIFO and the thread that writes it: queued frames
    first, filler frames whenever nothing is queued."""

    BURST = 32

    def __init__(self, path):
        self.path = path
        os.mkfifo(path)
        # O_RDWR: opening does not wait for a reader, and the reader sees
        # end of file only when this descriptor closes.
        self.fd = os.open(path, os.O_RDWR)
        os.write(self.fd, PCAP_HEADER)
        self.lock = threading.Condition()
        self.pending = []
        self.written = 0   # frames written so far, fillers included
        self.stop = False
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fillers = record(FILLER_FRAME) * self.BURST
        try:
            while True:
                with self.lock:
                    batch, self.pending = self.pending[:self.BURST], self.pending[self.BURST:]
                    if not batch and self.stop:
                        return
                if batch:
                    os.write(self.fd, b"".join(record(f) for f in batch))
                    count = len(batch)
                else:
                    os.write(self.fd, fillers)
                    count = self.BURST
                with self.lock:
                    self.written += count
                    self.lock.notify_all()
                if not batch:
                    time.sleep(0.002)
        except OSError as e:
            with self.lock:
                self.error = e
                self.lock.notify_all()

    def put(self, frames):
        with self.lock:
            self.pending += frames

    def drained(self, timeout):
        """Waits until every queued frame is written; returns the count of
        frames written by then."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.pending and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.path}: {len(self.pending)} frames not written after {timeout} s")
                self.lock.wait(left)
            if self.error is not None:
                raise self.error
            return self.written

    def close(self):
        with self.lock:
            self.stop = True
        self.thread.join(timeout=30)
        os.close(self.fd)

    def abandon(self):
        """Stops the writer when nobody reads any more (flowpath gone): a
        write blocked on the full FIFO returns once this reads it empty, and
        the next one fails (non-blocking) and ends the thread."""
        with self.lock:
            self.stop = True
        os.set_blocking(self.fd, False)
        while self.thread.is_alive():
            try:
                os.read(self.fd, 1 << 16)
            except BlockingIOError:
                pass
            self.thread.join(0.01)
        os.close(self.fd)


class LiveFlowpath:
    """flowpath on FIFO ports, driven phase by phase."""

    def __init__(self, args, case, case_dir, index):
        self.args, self.case, self.dir = args, case, case_dir
        self.ctl_path = os.path.join(tempfile.gettempdir(), f"fpdiffc-{os.getpid()}-{index}.ctl")
        self.fifos = []
        self.proc = None
        self.log = None

    def start(self, rules_text=None, extra_args=()):
        """Starts flowpath on `rules_text` (default: the case's phase-1
        rules) and the filler rule, with `extra_args`."""
        rules = os.path.join(self.dir, "flowpath_rules.txt")
        with open(rules, "w") as f:
            f.write((self.case.rules_text if rules_text is None else rules_text) + FILLER_RULE + "\n")
        cmd = [self.args.flowpath, "--rules", rules]
        for i, name in enumerate(self.case.ports):
            fifo = os.path.join(self.dir, f"fifo_{name}")
            self.fifos.append(FifoPort(fifo))
            cmd += ["--port", f"{name}=net_pcap{i},rx_pcap={fifo},tx_pcap={self.dir}/out_{name}.pcap"]
        cmd += ["--exit-when-idle", str(self.args.idle_ms), "--ctl-socket", self.ctl_path]
        cmd += list(extra_args) + self.args.flowpath_arg
        with open(os.path.join(self.dir, "flowpath.cmd"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        self.log = open(os.path.join(self.dir, "flowpath.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + self.args.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flowpath exited with status {self.proc.returncode} at start")
            if os.path.exists(self.ctl_path) and self.ctl(["show"]).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("flowpath did not answer on its control socket")
            time.sleep(0.02)

    def ctl(self, args):
        return subprocess.run([self.args.flowpath_ctl, "--socket", self.ctl_path] + list(args),
                              capture_output=True, text=True, timeout=self.args.timeout)

    def stats(self):
        res = self.ctl(["stats-json"])
        if res.returncode != 0:
            raise RuntimeError(f"flowpath-ctl stats-json: {res.stderr.strip()}")
        return json.loads(res.stdout)

    @staticmethod
    def _activity(stats):
        """Counters that move while data frames are in the datapath (the
        fillers, after their first, only hit caches and drop)."""
        drops = {k: v for k, v in stats.get("drops", {}).items() if k != "no_output"}
        return ([p["tx_packets"] for p in stats["ports"]], [w.get("misses") for w in stats["workers"]],
                stats.get("slow_path"), drops)

    def feed(self, frames):
        """Writes one phase's frames and waits until flowpath has handled them."""
        for i, fifo in enumerate(self.fifos):
            fifo.put([f for p, f in frames if p == i])
        marks = [fifo.drained(self.args.timeout) for fifo in self.fifos]
        deadline = time.monotonic() + self.args.timeout
        while True:
            stats = self.stats()
            rx = [p["rx_packets"] for p in stats["ports"]]
            if all(r >= m for r, m in zip(rx, marks)):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"flowpath read {rx} frames, {marks} were written")
            time.sleep(0.01)
        last, still_since = self._activity(stats), time.monotonic()
        while time.monotonic() - still_since < 0.25:
            time.sleep(0.03)
            now = self._activity(self.stats())
            if now != last:
                last, still_since = now, time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError("flowpath's counters keep moving")

    def finish(self):
        """End of file on every port; flowpath exits when idle. Returns
        ({port: frames}, error or None)."""
        for fifo in self.fifos:
            fifo.close()
        try:
            rc = self.proc.wait(timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "timeout"
        self.log.close()
        if rc != 0:
            return None, f"flowpath exit status {rc}\n    " + "\n    ".join(self.log_tail())
        out = {}
        for name in self.case.ports:
            try:
                out[name] = pcapfile.read_pcap(os.path.join(self.dir, f"out_{name}.pcap"))
            except (OSError, pcapfile.PcapError) as e:
                return None, f"flowpath output: {e}"
        return out, None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fifo in self.fifos:
            if fifo.thread.is_alive() or not fifo.stop:
                try:
                    fifo.abandon()
                except OSError:
                    pass
        if self.log and not self.log.closed:
            self.log.close()
        for path in [f.path for f in self.fifos] + [self.ctl_path]:
            try:
                os.unlink(path)
            except OSError:
                pass

    def log_tail(self, n=15):
        with open(os.path.join(self.dir, "flowpath.log"), errors="replace") as f:
            return f.read().splitlines()[-n:]


def expected_refusal(change, path):
    """What flowpath's stderr must name for a bad change."""
    return f"{path}:{change.bad_line}:" if change.lines is not None else None


def apply_flowpath(fp, cc, case_dir):
    """The changes through flowpath-ctl; returns problems."""
    problems = []
    for change in cc.changes:
        args = change.ctl_args(case_dir)
        if change.kind == "replace-flows":
            # flowpath's copy keeps the filler rule.
            args[1] += ".flowpath"
            with open(args[1], "w") as f:
                f.write("\n".join(change.lines + [FILLER_RULE]) + "\n")
        res = fp.ctl(args)
        if change.bad_line:
            place = expected_refusal(change, args[-1])
            if res.returncode != 1 or (place and place not in res.stderr):
                problems.append(f"flowpath-ctl {change.describe()}: a bad change must exit 1"
                                f"{' naming ' + place if place else ''}; got {res.returncode}: "
                                f"{(res.stderr or res.stdout).strip()[:300]}")
        elif res.returncode != 0:
            problems.append(f"flowpath-ctl {change.describe()}: exit {res.returncode}: "
                            f"{(res.stderr or res.stdout).strip()[:300]}")
        if change.kind == "del-flows" and change.arg in (None, "table=0") and not change.bad_line:
            res = fp.ctl(["add-flow", FILLER_RULE])
            if res.returncode != 0:
                problems.append(f"flowpath-ctl add-flow {FILLER_RULE}: {res.stderr.strip()[:300]}")
    return problems


def apply_ovs(oracle, cc, case_dir, problems):
    """The changes through ovs-ofctl; a good change refused, or a bad one
    accepted, is a generator problem."""
    for change in cc.changes:
        res = oracle.change(*change.ctl_args(case_dir))
        if change.bad_line and res.returncode == 0:
            problems.append(f"Open vSwitch accepted the bad change {change.describe()}")
        elif not change.bad_line and res.returncode != 0:
            problems.append(f"Open vSwitch refused {change.describe()}: {res.stderr.strip()[:300]}")
        elif not change.bad_line and res.stderr.strip():
            # e.g. "normalization changed ofp_match": a field without its
            # prerequisite, which Open vSwitch drops and flowpath refuses.
            problems.append(f"ovs-ofctl warned on {change.describe()}: {res.stderr.strip()[:300]}")


def explain(cc, oracle, result, limit=3):
    """Input frames behind the first differences, traced under the final rules."""
    lines = []
    frames = cc.case.frames + cc.frames2
    by_tag = {gp.parse_tag(f): (p, f) for p, f in frames}
    rules = cc.rule_by_cookie()
    for tag in result.bad_inputs[:limit]:
        if tag not in by_tag:
            continue
        port, frame = by_tag[tag]
        phase = 1 if (port, frame) in cc.case.frames else 2
        lines.append(f"  input on {cc.case.ports[port]} (phase {phase}): {compare.describe(frame)}")
        lines.append(f"    hex {frame.hex()}")
        try:
            trace = oracle.trace(port, frame)
        except ovs_oracle.OvsError as e:
            lines.append(f"    (trace failed: {e})")
            continue
        lines.append("    under the final rules:")
        for m in re.finditer(r"cookie (0x[0-9a-f]+)", trace):
            n = int(m.group(1), 16)
            if n in rules:
                lines.append(f"    rule {m.group(1)}: {rules[n]}")
        actions = re.search(r"^Datapath actions: (.*)$", trace, re.M)
        if actions:
            lines.append(f"    Open vSwitch datapath actions: {actions.group(1)}")
    return lines


def run_case(args, oracle, cs, case_dir, index):
    """(ok, report lines, cc)."""
    cc = gen_changes.generate(cs, gen_case.Options(frag_twins=not args.no_frag_twins))
    cc.write(case_dir)
    case = cc.case
    problems = []
    rules = os.path.join(case_dir, "rules.txt")
    try:
        ovs_out = oracle.run(case.ports, rules, case.frames, out_dir=case_dir,
                             then=[(lambda: apply_ovs(oracle, cc, case_dir, problems), cc.frames2)])
        problems += [f"ovs-ofctl: {w}" for w in oracle.last_warnings]
    except ovs_oracle.RuleLoadError as e:
        return False, [f"Open vSwitch refused the rules: {e}"], cc
    label_b = "flowpath"
    other, other_err = None, None
    if args.ovs_only:
        # The same case again, other port order and chunking: same result.
        other = oracle.run(case.ports, rules, case.frames, chunk=37,
                           port_order=list(reversed(range(len(case.ports)))),
                           then=[(lambda: apply_ovs(oracle, cc, case_dir, []), cc.frames2)])
        label_b = "ovs-again"
    else:
        fp = LiveFlowpath(args, case, case_dir, index)
        try:
            fp.start()
            fp.feed(case.frames)
            problems += apply_flowpath(fp, cc, case_dir)
            fp.feed(cc.frames2)
            other, other_err = fp.finish()
        except (RuntimeError, OSError, TimeoutError, subprocess.TimeoutExpired, ValueError) as e:
            other_err = f"{e}\n    " + "\n    ".join(fp.log_tail()) if fp.log else str(e)
        finally:
            fp.kill()
    lines = list(problems)
    if other_err:
        lines.append(other_err)
    result = None
    if other is not None:
        result = compare.compare(ovs_out, other, "ovs", label_b, port_names=case.ports,
                                 max_shown=args.max_shown)
        if not result.ok:
            lines.append(result.report)
            lines += explain(cc, oracle, result)
    ok = not problems and other_err is None and result is not None and result.ok
    return ok, lines, cc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    difftest.common_arguments(ap, 40)
    ap.add_argument("--flowpath-ctl", help="default: flowpath-ctl beside --flowpath")
    args = difftest.checked_arguments(ap, argv)
    if args.flowpath:
        args.flowpath_ctl = os.path.abspath(args.flowpath_ctl or os.path.join(os.path.dirname(args.flowpath),
                                                                               "flowpath-ctl"))
        if not args.ovs_only and not os.access(args.flowpath_ctl, os.X_OK):
            ap.error(f"{args.flowpath_ctl} is not executable (--flowpath-ctl)")

    seeds = args.case_seed or [difftest.case_seed(args.seed, i) + 500_000 for i in range(args.cases)]
    keep_root = difftest.keep_dir(args, "flowpath-difftest-changes")
    rerun = [sys.argv[0]] + (["--ovs-only"] if args.ovs_only else
                             ["--flowpath", args.flowpath, "--flowpath-ctl", args.flowpath_ctl])
    rerun += [f"--flowpath-arg={a}" for a in args.flowpath_arg]
    if args.vlan_limit is not None:
        rerun += ["--vlan-limit", str(args.vlan_limit)]
    if args.no_frag_twins:
        rerun.append("--no-frag-twins")

    passed = failed = 0
    kinds = {}
    started = time.monotonic()
    oracle = None
    try:
        for index, cs in enumerate(seeds):
            if oracle is None:
                oracle = ovs_oracle.OvsOracle(vlan_limit=args.vlan_limit)
                oracle.start()
            case_dir = os.path.join(keep_root, f"case-{cs}")
            if os.path.isdir(case_dir):
                shutil.rmtree(case_dir)
            try:
                ok, lines, cc = run_case(args, oracle, cs, case_dir, index)
            except ovs_oracle.OvsError as e:
                ok, lines, cc = False, [f"Open vSwitch failed: {e}"], gen_changes.generate(
                    cs, gen_case.Options(frag_twins=not args.no_frag_twins))
                oracle.stop()
                oracle = None
            for c in cc.changes:
                kinds[c.kind + (" (bad)" if c.bad_line else "")] = kinds.get(c.kind + (" (bad)" if c.bad_line
                                                                                     else ""), 0) + 1
            header = (f"case {index + 1}/{len(seeds)} seed {cs}: {len(cc.case.rules)} rules, "
                      f"{len(cc.case.frames)} + {len(cc.frames2)} frames, changes: "
                      + "; ".join(c.describe() + (" (bad)" if c.bad_line else "") for c in cc.changes))
            if ok:
                passed += 1
                if args.verbose:
                    print(f"{header}: ok")
                if not args.keep:
                    shutil.rmtree(case_dir, ignore_errors=True)
                continue
            failed += 1
            print(f"{header}: FAILED")
            for line in lines:
                print("  " + line.replace("\n", "\n  "))
            print(f"  case kept in {case_dir}")
            print(f"  re-run alone: {' '.join(rerun)} --case-seed {cs} --keep {keep_root}")
    finally:
        if oracle is not None:
            oracle.stop()
    n = passed + failed
    if n:
        print(f"time per case {(time.monotonic() - started) / n:.2f} s; changes made: "
              + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    return difftest.end_of_run(args, passed, failed, keep_root)


if __name__ == "__main__":
    sys.exit(main())
