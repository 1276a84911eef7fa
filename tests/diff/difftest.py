#!/usr/bin/python3
"""The flowpath / Open vSwitch 3.1 differential test.

For each case: generate a random rule file and frames (gen_case.py), forward
them through Open vSwitch (ovs_oracle.py) and through flowpath, and require
the same frames on every port (compare.py).

    difftest.py --flowpath BUILD/flowpath --cases 200 --seed 1 [--keep DIR]
    difftest.py --flowpath BUILD/flowpath --case-seed N        # one case again
    difftest.py --ovs-only --cases 50                           # check the harness
    difftest.py --flowpath BUILD/flowpath --ct --cases 40       # conntrack cases (root)

--ovs-only runs every case through Open vSwitch twice, the second time with
the ports injected in another order and in other chunk sizes, and requires
identical results; it also audits that Open vSwitch kept every match field of
every generated rule (it silently drops a field that lacks its prerequisite).

Conntrack (--ct: stateful firewall cases from gen_ct.py; --with-ct: random
rules with ct actions): connection state carries across packets and ports,
so each case is one global order of frames, fed to both sides in that order.
Open vSwitch gets each run of one port's frames once the previous run was
received (its main thread forwards dummy ports' frames to the end before
reading more); flowpath runs on net_pcap ports (libpcap on veth interfaces) in a
private network namespace (live_flowpath.py: needs root) and gets each run
once every earlier frame met its fate. Besides the frames, the connection
tables must agree (`dpctl/dump-conntrack` against `flowpath-ctl ct-dump`,
sorted); then flowpath's table is flushed (`ct-flush`), must dump empty, and
the same frames again must give the same frames out (its caches now warm).

The last line printed is "N passed, N failed".
"""

import argparse
import difflib
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
import compare  # noqa: E402
import gen_case  # noqa: E402
import gen_ct  # noqa: E402
import gen_packets as gp  # noqa: E402
import live_flowpath  # noqa: E402
import netns  # noqa: E402
import ovs_oracle  # noqa: E402
import pcapfile  # noqa: E402


def case_seed(seed, index):
    """The seed of case `index` of a run with `seed` (printed for re-runs)."""
    return seed * 1000003 + index


def audit_rules(case, dump):
    """Problems where Open vSwitch's installed rules lack a field the
    generated rule matched on (a generator bug: a missing prerequisite)."""
    installed = {}
    for line in dump.splitlines():
        m = re.search(r"cookie=(0x[0-9a-f]+)", line)
        if not m:
            continue
        match_part = line.split(" actions=")[0]
        names = {tok.split("=")[0] for tok in re.split(r"[,\s]+", match_part) if tok}
        installed[int(m.group(1), 16)] = names
    problems = []
    for rule in case.rules:
        names = installed.get(rule.line)
        if names is None:
            problems.append(f"line {rule.line}: not installed")
            continue
        for wanted in rule.expected_dump_names():
            if not wanted & names:
                problems.append(f"line {rule.line}: Open vSwitch dropped "
                                f"{'/'.join(sorted(wanted))}: {sorted(names)}")
    return problems


# Datapath actions that write L3/L4 headers. Open vSwitch 3.1 applies them to
# a frame cut short inside that header without checking its length (writing
# past the end; a truncated ARP frame with set_field:...->arp_* crashes
# ovs-vswitchd with a corrupted heap), so such frames have no reference.
_HEADER_SETS = re.compile(r"set\((arp|ipv4|ipv6|tcp|udp|sctp|icmp|icmpv6|nd)\(")


def drop_unsafe_truncations(case, oracle):
    """Drop truncated templates whose frames Open vSwitch would rewrite past
    their end; returns how many templates were dropped."""
    rules = os.path.join(tempfile.gettempdir(), f"fpdiff-{os.getpid()}-rules.txt")
    with open(rules, "w") as f:
        f.write(case.rules_text)
    oracle.set_ports(case.ports)
    oracle.load_rules(rules)
    os.unlink(rules)
    first = {}
    for (port, frame), t_id in zip(case.frames, case.frame_templates):
        if case.templates[t_id]["malform"] == "trunc":
            first.setdefault(t_id, (port, frame))
    ids = sorted(first)
    # Trace the flows, not the frames: tracing such a frame crashes OVS too.
    flows = oracle.flows_of([first[t_id][1] for t_id in ids]) if ids else []
    unsafe = [t_id for t_id, flow in zip(ids, flows)
              if _HEADER_SETS.search(oracle.trace_flow(first[t_id][0], flow))]
    case.drop_templates(unsafe)
    return len(unsafe)


def drop_kernel_dropped(case):
    """Ordered cases go through veth pairs, and some frames cannot cross one
    (live_flowpath.crosses_veth): such templates are dropped from the case;
    returns how many."""
    short = {t for (_, frame), t in zip(case.frames, case.frame_templates)
             if not live_flowpath.crosses_veth(frame)}
    case.drop_templates(short)
    return len(short)


def split_unseen(ovs_out):
    """Open vSwitch's output without the frames that cannot cross a veth
    (flowpath's copies of them never reach the test), and how many such
    frames each port had: ({port: frames}, {port: n})."""
    seen = {p: [f for f in frames if live_flowpath.crosses_veth(f)] for p, frames in ovs_out.items()}
    return seen, {p: len(ovs_out[p]) - len(seen[p]) for p in ovs_out}


def rules_hit(trace, rule_lines):
    """Rule-file lines named (by cookie) in an ofproto/trace."""
    out = []
    for m in re.finditer(r"cookie (0x[0-9a-f]+)", trace):
        n = int(m.group(1), 16)
        if 0 < n <= len(rule_lines):
            out.append(f"    line {n}: {rule_lines[n - 1]}")
    actions = re.search(r"^Datapath actions: (.*)$", trace, re.M)
    flow = re.search(r"^Flow: (.*)$", trace, re.M)
    if flow:
        out.insert(0, f"    parsed as: {flow.group(1)}")
    if not out[1 if flow else 0:]:
        out.append("    (no rule matched in table 0)")
    if actions:
        out.append(f"    Open vSwitch datapath actions: {actions.group(1)}")
    return out


def explain(case, oracle, result, limit=3):
    """Input frames behind the first differences, with the rules they hit."""
    lines = []
    by_tag = {gp.parse_tag(f): (p, f, t) for (p, f), t in zip(case.frames, case.frame_templates)}
    rule_lines = case.rules_text.splitlines()
    for tag in result.bad_inputs[:limit]:
        if tag not in by_tag:
            continue
        port, frame, t_id = by_tag[tag]
        notes = case.templates[t_id].get("notes")
        lines.append(f"  input on {case.ports[port]}: {compare.describe(frame)}"
                     + (f" ({', '.join(notes)})" if notes else ""))
        lines.append(f"    hex {frame.hex()}")
        try:
            lines += rules_hit(oracle.trace(port, frame), rule_lines)
        except ovs_oracle.OvsError as e:
            lines.append(f"    (trace failed: {e})")
    return lines


def run_flowpath(args, case, case_dir, index):
    """Run flowpath on the case; returns ({port: frames}, error text or None)."""
    ctl = os.path.join(tempfile.gettempdir(), f"fpdiff-{os.getpid()}-{index}.ctl")
    cmd = [args.flowpath, "--rules", os.path.join(case_dir, "rules.txt")]
    for i, name in enumerate(case.ports):
        cmd += ["--port", f"{name}=net_pcap{i},rx_pcap={case_dir}/in_{name}.pcap,"
                          f"tx_pcap={case_dir}/out_{name}.pcap"]
    cmd += ["--exit-when-idle", str(args.idle_ms), "--ctl-socket", ctl]
    cmd += args.flowpath_arg
    with open(os.path.join(case_dir, "flowpath.cmd"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    log_path = os.path.join(case_dir, "flowpath.log")
    with open(log_path, "wb") as log:
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        except OSError as e:
            rc = f"cannot start: {e}"
    try:
        os.unlink(ctl)
    except OSError:
        pass
    if rc != 0:
        with open(log_path, errors="replace") as f:
            tail = f.read().splitlines()[-15:]
        return None, f"flowpath exit status {rc}\n    " + "\n    ".join(tail)
    out = {}
    for name in case.ports:
        path = os.path.join(case_dir, f"out_{name}.pcap")
        try:
            out[name] = pcapfile.read_pcap(path)
        except (OSError, pcapfile.PcapError) as e:
            return None, f"flowpath output: {e}"
    return out, None


def run_flowpath_live(args, live, case, case_dir, ovs_conns, unseen):
    """Conntrack cases: flowpath on live ports (live_flowpath.py) fed the
    case's frames in their global order (`unseen`: split_unseen's counts).
    Returns (first pass {port: frames}, problems, second pass {port:
    frames} or None): problems when flowpath failed, its connection table
    differs from Open vSwitch's, or it is not empty after ct-flush."""
    rules = os.path.join(case_dir, "rules.txt")
    log = os.path.join(case_dir, "flowpath.log")
    problems, first, second = [], None, None
    try:
        live.start(rules, case.ports, log_path=log)
        with open(os.path.join(case_dir, "flowpath.cmd"), "w") as f:
            f.write(" ".join(live.ns.exec_prefix() + live.cmd) + "\n")
        first = live.feed(case.frames, unseen)
        conns = live.ct_dump() if args.ct or args.with_ct else []
        if conns != ovs_conns:
            problems.append("connection tables differ (ovs dpctl/dump-conntrack vs flowpath ct-dump, "
                            "sorted):\n    " + "\n    ".join(
                                difflib.unified_diff(ovs_conns, conns, "ovs", "flowpath", n=0,
                                                     lineterm="")))
        if args.flush_repeat:
            if args.ct or args.with_ct:
                ok, text = live.ctl("ct-flush")
                if not ok:
                    problems.append(f"ct-flush failed: {text.strip()}")
                left = live.ct_dump()
                if left:
                    problems.append(f"ct-dump after ct-flush lists {len(left)} connections: {left[:3]}")
            second = live.feed(case.frames, unseen)
        status = live.stop()
        if status != 0:
            problems.append(f"flowpath exit status {status}\n    " + "\n    ".join(live.log_tail()))
    except (live_flowpath.FeedError, OSError) as e:
        live.stop()
        problems.append(f"flowpath: {e}")
    for passed, out in (("", first), ("2", second)):
        for name, frames in (out or {}).items():
            pcapfile.write_pcap(os.path.join(case_dir, f"out{passed}_{name}.pcap"), frames)
    return first, problems, second


def free_tcp_port():
    """A TCP port on 127.0.0.1 nobody listens on now (for ptcp:PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compare_counters(ovs_counts, fp_tables, fp_rules):
    """Problems where flowpath's table statistics or rule counters differ
    from Open vSwitch's for the case's frames. ovs_counts: (this case's
    {table: (lookup, matched)}, {cookie: (n_packets, n_bytes)}). flowpath's
    table 0 also looked up and matched the filler frames (with the filler
    rule, cookie 0): there the lookups that found no rule must agree and
    the lookups beyond Open vSwitch's must all have matched."""
    ovs_tables, ovs_rules = ovs_counts
    problems = []
    fp_rules = {c: v for c, v in fp_rules.items() if c != 0}
    for cookie in sorted(set(ovs_rules) | set(fp_rules)):
        if ovs_rules.get(cookie) != fp_rules.get(cookie):
            problems.append(f"rule cookie={cookie:#x}: (n_packets, n_bytes) Open vSwitch "
                            f"{ovs_rules.get(cookie)}, flowpath {fp_rules.get(cookie)}")
    for table in range(254):
        o, f = ovs_tables.get(table, (0, 0)), fp_tables.get(table, (0, 0))
        fillers = f[1] - o[1]
        if o != f and not (table == 0 and fillers >= 0 and f[0] - o[0] == fillers):
            problems.append(f"table {table}: (lookup, matched) Open vSwitch {o}, flowpath {f}"
                            + (" (with the fillers)" if table == 0 else ""))
    return problems


def run_flowpath_openflow(args, case, case_dir, index, ovs_counts):
    """--via-openflow: flowpath runs live on FIFO ports (difftest_changes.py's
    LiveFlowpath) with `--openflow-listen` and none of the case's rules; the
    rules go in with `ovs-ofctl -O OpenFlow13 add-flows tcp:127.0.0.1:PORT`
    (the command the oracle loads Open vSwitch with), then the frames. Only
    the harness's filler rule (dl_type 0x88b7, see difftest_changes.py) is in
    flowpath's rule file: the FIFOs carry fillers from the start. Once the
    frames are through, dump-tables and dump-flows over OpenFlow must show
    Open vSwitch's counts (compare_counters). Returns ({port: frames},
    error text or None)."""
    import difftest_changes  # here: it imports this module
    fp = difftest_changes.LiveFlowpath(args, case, case_dir, index)
    port = free_tcp_port()
    target = f"tcp:127.0.0.1:{port}"

    def ofctl(*command):
        res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", command[0], target, *command[1:]],
                             capture_output=True, text=True, timeout=args.timeout)
        if res.returncode != 0 or res.stderr.strip():
            raise RuntimeError(f"ovs-ofctl {command[0]} (flowpath): exit {res.returncode}: "
                               f"{res.stderr.strip()[:600]}")
        return res.stdout

    try:
        fp.start(rules_text="", extra_args=["--openflow-listen", f"ptcp:{port}"])
        ofctl("add-flows", os.path.join(case_dir, "rules.txt"))
        fp.feed(case.frames)
        problems = compare_counters(ovs_counts, ovs_oracle.parse_table_stats(ofctl("dump-tables")),
                                    ovs_oracle.parse_flow_counters(ofctl("dump-flows")))
        out, err = fp.finish()
        if problems and err is None:
            err = "counters differ after the frames:\n    " + "\n    ".join(problems[:10])
        return out, err
    except (RuntimeError, OSError, TimeoutError, subprocess.TimeoutExpired, ValueError) as e:
        return None, f"{e}\n    " + "\n    ".join(fp.log_tail()) if fp.log else str(e)
    finally:
        fp.kill()


def forwarded_stats(case, ovs_out):
    """(tagged inputs, tagged inputs that left on some port, frames out)."""
    tags_in = {gp.parse_tag(f) for _, f in case.frames} - {None}
    tags_out = {gp.parse_tag(f) for frames in ovs_out.values() for f in frames} - {None}
    return len(tags_in), len(tags_in & tags_out), sum(len(v) for v in ovs_out.values())


def common_arguments(ap, cases):
    """The options difftest.py and difftest_changes.py share."""
    ap.add_argument("--flowpath", help="the flowpath binary")
    ap.add_argument("--cases", type=int, default=cases)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--case-seed", type=int, action="append", default=[],
                    help="run only this case (repeatable)")
    ap.add_argument("--keep", metavar="DIR",
                    help="keep every case here (default: failed cases only, in a temp dir)")
    ap.add_argument("--ovs-only", action="store_true",
                    help="validate the Open vSwitch side alone (OVS vs OVS)")
    ap.add_argument("--no-frag-twins", action="store_true",
                    help="generate no fragment twins (README: How it works)")
    ap.add_argument("--vlan-limit", type=int, default=None,
                    help="Open vSwitch other_config:vlan-limit (default: its own, 1)")
    ap.add_argument("--idle-ms", type=int, default=300, help="flowpath --exit-when-idle")
    ap.add_argument("--timeout", type=float, default=60, help="seconds for each wait on flowpath")
    ap.add_argument("--flowpath-arg", action="append", default=[],
                    help="extra flowpath argument (repeatable)")
    ap.add_argument("--max-shown", type=int, default=6, help="differences shown per case")
    ap.add_argument("-v", "--verbose", action="store_true")


def checked_arguments(ap, argv):
    """Parses; requires --flowpath unless --ovs-only; makes paths absolute."""
    args = ap.parse_args(argv)
    if not args.ovs_only and not args.flowpath:
        ap.error("--flowpath is required (or --ovs-only)")
    if args.flowpath:
        args.flowpath = os.path.abspath(args.flowpath)
    return args


def keep_dir(args, name):
    """Where cases are kept: --keep, or a new temporary directory."""
    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix=f"{name}-{args.seed}-")
    os.makedirs(root, exist_ok=True)
    return root


def end_of_run(args, passed, failed, keep_root):
    """The closing lines; returns the exit status."""
    if failed:
        print(f"failed cases kept under {keep_root}")
    elif not args.keep:
        shutil.rmtree(keep_root, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(ap, 200)
    ap.add_argument("--with-ct", action="store_true",
                    help="random cases with conntrack rules (frames fed in one global order)")
    ap.add_argument("--ct", action="store_true",
                    help="conntrack cases: stateful firewall rule sets and connections (gen_ct.py)")
    ap.add_argument("--no-flush-repeat", dest="flush_repeat", action="store_false",
                    help="conntrack cases: skip the ct-flush and second pass")
    ap.add_argument("--ordered", action="store_true",
                    help="feed any case in one global order through live ports, as conntrack "
                         "cases are (checks that plumbing without conntrack)")
    ap.add_argument("--no-vlan-tci-set", action="store_true",
                    help="generate no set_field:...->vlan_tci")
    ap.add_argument("--no-odd-vlan-masks", action="store_true",
                    help="generate vlan_tci masks with the PCP bits all or none only")
    ap.add_argument("--via-openflow", action="store_true",
                    help="install the rules in flowpath through its OpenFlow agent (ovs-ofctl "
                         "add-flows) instead of the rule file")
    ap.add_argument("--run-timeout", type=float, default=10,
                    help="conntrack cases: seconds flowpath may take over one run of frames")
    args = checked_arguments(ap, argv)
    ordered = args.ct or args.with_ct or args.ordered
    if args.via_openflow and ordered:
        ap.error("--via-openflow runs the pcap (FIFO) plumbing: not with --ct, --with-ct or --ordered")
    if args.via_openflow and not args.ovs_only:
        # difftest_changes.LiveFlowpath waits for flowpath-ctl show at start.
        args.flowpath_ctl = os.path.join(os.path.dirname(args.flowpath), "flowpath-ctl")
    # SIGTERM (meson's timeout) unwinds too: flowpath, Open vSwitch and the
    # network namespace are stopped by the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("difftest: terminated"))

    seeds = args.case_seed or [case_seed(args.seed, i) for i in range(args.cases)]
    keep_root = keep_dir(args, "flowpath-difftest")
    opts = gen_case.Options(with_ct=args.with_ct, vlan_tci_set=not args.no_vlan_tci_set,
                            odd_vlan_masks=not args.no_odd_vlan_masks, frag_twins=not args.no_frag_twins)
    rerun = [sys.argv[0]] + (["--ovs-only"] if args.ovs_only else
                             ["--flowpath", args.flowpath])
    rerun += [f"--flowpath-arg={a}" for a in args.flowpath_arg]
    for flag in ("with_ct", "ct", "ordered", "via_openflow", "no_vlan_tci_set", "no_odd_vlan_masks", "no_frag_twins"):
        if getattr(args, flag):
            rerun.append("--" + flag.replace("_", "-"))
    if args.vlan_limit is not None:
        rerun += ["--vlan-limit", str(args.vlan_limit)]
    if not args.flush_repeat:
        rerun.append("--no-flush-repeat")

    passed = failed = 0
    times = {"generate": 0.0, "ovs": 0.0, "other": 0.0, "compare": 0.0}
    n_in = n_fwd = n_out = 0
    oracle = None
    ns = live = None
    try:
        if ordered and not args.ovs_only:
            ns = netns.Netns("diff").create()
            live = live_flowpath.LiveFlowpath(args.flowpath, ns, 4, keep_root,
                                              extra_args=args.flowpath_arg, run_timeout=args.run_timeout)
        for index, cs in enumerate(seeds):
            if oracle is None:
                oracle = ovs_oracle.OvsOracle(vlan_limit=args.vlan_limit)
                oracle.start()
            case_dir = os.path.join(keep_root, f"case-{cs}")
            if os.path.isdir(case_dir):
                shutil.rmtree(case_dir)
            t0 = time.monotonic()
            case = gen_ct.generate(cs) if args.ct else gen_case.generate(cs, opts)
            t1 = time.monotonic()
            problems = []
            if ordered and not args.ovs_only:
                drop_kernel_dropped(case)
            case.write(case_dir)
            try:
                if drop_unsafe_truncations(case, oracle):
                    shutil.rmtree(case_dir)
                    case.write(case_dir)
                via_openflow = args.via_openflow and not args.ovs_only
                if via_openflow:
                    tables_before = oracle.counters()[0]
                ovs_out = oracle.run(case.ports, os.path.join(case_dir, "rules.txt"),
                                     case.frames, out_dir=case_dir, in_order=ordered)
                if via_openflow:
                    # This case's table statistics and rule counters.
                    tables_after, ovs_rules = oracle.counters()
                    ovs_counts = ({t: (a[0] - tables_before.get(t, (0, 0))[0],
                                       a[1] - tables_before.get(t, (0, 0))[1])
                                   for t, a in tables_after.items()}, ovs_rules)
                ovs_conns = oracle.dump_conntrack() if ordered else []
                problems += [f"ovs-ofctl: {w}" for w in oracle.last_warnings]
                problems += audit_rules(case, oracle.dump_flows())
            except ovs_oracle.RuleLoadError as e:
                ovs_out, problems = None, [f"Open vSwitch refused the rules: {e}"]
            except ovs_oracle.OvsError as e:
                ovs_out, problems = None, [f"Open vSwitch failed: {e}"]
                oracle.stop()
                oracle = None
            t2 = time.monotonic()
            result, other_err, second = None, None, None
            if ovs_out is not None:
                if args.ovs_only:
                    # Same case, other port order and chunking: same result.
                    # (Not with conntrack: there the order across ports
                    # legitimately changes connection states.)
                    order = None if ordered else list(reversed(range(len(case.ports))))
                    other = oracle.run(case.ports, os.path.join(case_dir, "rules.txt"),
                                       case.frames, chunk=100 if ordered else 37,
                                       port_order=order, in_order=ordered)
                    if ordered and oracle.dump_conntrack() != ovs_conns:
                        problems.append("Open vSwitch's connection table differs the second time")
                    for name, frames in other.items():
                        pcapfile.write_pcap(os.path.join(case_dir, f"ovs2_{name}.pcap"), frames)
                    label_b = "ovs-again"
                elif ordered:
                    ovs_out, unseen = split_unseen(ovs_out)
                    other, live_problems, second = run_flowpath_live(args, live, case, case_dir,
                                                                     ovs_conns, unseen)
                    problems += live_problems
                    label_b = "flowpath"
                elif args.via_openflow:
                    other, other_err = run_flowpath_openflow(args, case, case_dir, index, ovs_counts)
                    label_b = "flowpath"
                else:
                    other, other_err = run_flowpath(args, case, case_dir, index)
                    label_b = "flowpath"
                t3 = time.monotonic()
                if other is not None:
                    result = compare.compare(ovs_out, other, "ovs", label_b,
                                             port_names=case.ports, max_shown=args.max_shown)
                if second is not None and (result is None or result.ok):
                    # The same frames after ct-flush: as from a fresh start.
                    result = compare.compare(ovs_out, second, "ovs", "flowpath after ct-flush",
                                             port_names=case.ports, max_shown=args.max_shown)
                t4 = time.monotonic()
                times["other"] += t3 - t2
                times["compare"] += t4 - t3
                ti, tf, to = forwarded_stats(case, ovs_out)
                n_in, n_fwd, n_out = n_in + ti, n_fwd + tf, n_out + to
            times["generate"] += t1 - t0
            times["ovs"] += t2 - t1

            ok = not problems and other_err is None and result is not None and result.ok
            header = (f"case {index + 1}/{len(seeds)} seed {cs}: "
                      + (f"profile {case.profile}, " if args.ct else "")
                      + f"{len(case.rules)} rules, {len(case.frames)} frames")
            if ok:
                passed += 1
                if args.verbose:
                    ti, tf, to = forwarded_stats(case, ovs_out)
                    print(f"{header}: ok ({tf}/{ti} tagged inputs forwarded, {to} frames out)")
                if not args.keep:
                    shutil.rmtree(case_dir, ignore_errors=True)
                continue
            failed += 1
            print(f"{header}: FAILED")
            for p in problems[:10]:
                print(f"  {p}")
            if other_err:
                print(f"  {other_err}")
            if result is not None and not result.ok:
                print("  " + result.report.replace("\n", "\n  "))
                if oracle is not None:
                    print("\n".join(explain(case, oracle, result)))
            print(f"  case kept in {case_dir}")
            print(f"  re-run alone: {' '.join(rerun)} --case-seed {cs} --keep {keep_root}")
    finally:
        if oracle is not None:
            oracle.stop()
        if live is not None:
            live.close()
        if ns is not None:
            ns.close()

    n = passed + failed
    if n:
        print(f"time per case: generate {times['generate'] / n:.3f} s, "
              f"ovs {times['ovs'] / n:.3f} s, "
              f"{'ovs again' if args.ovs_only else 'flowpath'} {times['other'] / n:.3f} s, "
              f"compare {times['compare'] / n:.3f} s")
        if n_in:
            print(f"forwarding: {n_fwd}/{n_in} tagged input frames "
                  f"({100.0 * n_fwd / n_in:.0f}%) left on some port; "
                  f"{n_out / n:.0f} frames out per case")
    return end_of_run(args, passed, failed, keep_root)


if __name__ == "__main__":
    sys.exit(main())
