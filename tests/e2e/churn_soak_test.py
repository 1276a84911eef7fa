#!/usr/bin/python3
"""Churn soak (issue 8): rules added, modified and deleted many times through
flowpath-ctl while traffic flows; nothing crashes, leaks or goes unaccounted,
and the megaflows return to their baseline afterwards.

Traffic: p0 = net_pcap with infinite_rx=1 (512 UDP flows, replayed for the
whole run), p1 and p2 = net_null. The base rules (R0) are a never-matching
exact dl_src rule and "in_port=p0 actions=output:p1": every flow gets a
megaflow of its own, exact on dl_src. Churn rules are `udp` rules over
nw_src/nw_dst prefixes and masked ports with priorities above R0's, each with
a unique cookie, sending to p1, p2 or dropping. Every packet has at most one
output, so rx = tx + drops holds.

The churn is a random mix of add-flow, add-flows FILE, mod-flows (non-strict),
del-flows MATCH (non-strict), replace-flows FILE and, now and then, an
add-flows FILE whose last line is bad (must exit 1 naming FILE:LINE:COL and
change nothing). A model of the rule table follows every command (OpenFlow's
non-strict matching: a MATCH covers a rule whose every matched field is at
least as specific); every 50 commands `dump-flows` must show exactly the
model's cookies with their actions. Every 200 changes a probe rule
(`priority=65000,udp,in_port=p0 actions=output:p2`, the only rule with
in_port) is added: once add-flow returns, p1 must not send one more packet
(the command returns once every worker forwards by the new rules), and p2
must; then `del-flows udp,in_port=p0` removes the probe alone.

A change is one rule added, modified or deleted (as the model counts them).
The full soak is 10,000 changes; the default is CI-sized:

    churn_soak_test.py BUILD_DIR [--changes N]      (or FLOWPATH_CHURN_CHANGES=N)
    churn_soak_test.py BUILD_DIR --check-model-with-ovs 500   # the model against Open vSwitch

At the end `replace-flows` restores R0, and, with the traffic still flowing,
the megaflow count (stats JSON cache.entries) must come back to its baseline
(measured under R0 before the churn) once --max-idle (500 ms here) has
passed, and dump-cache must show one megaflow per flow, each forwarding by
R0 (output:p1): megaflows the churn rules made are either revalidated away
or expire idle, and every flow again has one exact-dl_src megaflow (perhaps
with a finer mask made under a churn rule, still right under R0). (net_pcap's
infinite_rx cannot be paused, so "traffic stops" is read as "the churn's
traffic patterns stop"; the count is exact because each flow has exactly one
megaflow under R0.) Then `flowpath-ctl exit`: exit status 0 and no
sanitizer report (run from build-asan, scripts/test sets
ASAN_OPTIONS=detect_leaks=1, so a leak fails the run), and the final stats
add up: rx = tx + drops, drops only as the rules' own (no_output, no_match)
or upcall_queue_full.
"""

import argparse
import os
import random
import re
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import Flowpath, TestRun, workdir, write_pcap  # noqa: E402

DEFAULT_CHANGES = 1500
FULL_CHANGES = 10_000
FLOWS = 512
MAX_IDLE_MS = 500
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
R0 = ("priority=100,dl_src=02:00:ff:ff:ff:ff actions=drop\n"
      "priority=1,in_port=p0 actions=output:p1\n")
PROBE = "priority=65000,udp,in_port=p0 actions=output:p2"
PROBE_MATCH = "udp,in_port=p0"
FIELDS = ("nw_src", "nw_dst", "tp_src", "tp_dst")
SRC_BASE, DST_BASE = 0x0A000000, 0x14000000


def ip_str(value):
    return "%d.%d.%d.%d" % tuple(struct.pack("!I", value))


def prefix_mask(length):
    return 0 if length == 0 else (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


# ---- traffic ---------------------------------------------------------------------

def flow_tuple(i):
    return (SRC_BASE | (i % 64) << 8 | (i // 64 + 1), DST_BASE | (i % 16) << 8 | 1,
            1024 + (i * 37) % 4096, (53, 80, 443, 4789, 8080, 9000)[i % 6])


def traffic_frames():
    """FLOWS UDP frames, one per flow (distinct dl_src and 5-tuple), 64 bytes."""
    from scapy.all import Ether, IP, UDP  # noqa: imported late: slow
    frames = []
    for i in range(FLOWS):
        src, dst, sport, dport = flow_tuple(i)
        mac = "02:00:%02x:%02x:%02x:%02x" % tuple(struct.pack("!I", 0x10000000 + i))
        raw = bytes(Ether(src=mac, dst="02:00:00:00:00:02") / IP(src=ip_str(src), dst=ip_str(dst)) /
                    UDP(sport=sport, dport=dport))
        frames.append(raw + b"\0" * (64 - len(raw)))
    return frames


# ---- the rule model ------------------------------------------------------------------

class Match:
    """A `udp` match: {field: (value, mask)} over FIELDS."""

    def __init__(self, conditions):
        self.conditions = dict(conditions)

    def text(self):
        parts = ["udp"]
        for name in FIELDS:
            if name not in self.conditions:
                continue
            value, mask = self.conditions[name]
            if name.startswith("nw_"):
                parts.append(f"{name}={ip_str(value)}/{bin(mask).count('1')}")
            else:
                parts.append(f"{name}=0x{value:x}/0x{mask:x}")
        return ",".join(parts)

    def covers(self, other):
        """OpenFlow non-strict: `other` matches at least what this requires."""
        for name, (value, mask) in self.conditions.items():
            if name not in other.conditions:
                return False
            o_value, o_mask = other.conditions[name]
            if o_mask & mask != mask or o_value & mask != value:
                return False
        return True


class Churn:
    """Generates commands and keeps the model of the churn rules:
    {cookie: (priority, Match, action text)}."""

    def __init__(self, rng, workdir_path):
        self.rng = rng
        self.dir = workdir_path
        self.rules = {}
        self.next_cookie = 0x1000
        self.files = 0

    def random_match(self):
        rng = self.rng
        conditions = {}
        for name in rng.sample(FIELDS, rng.choice((1, 1, 2, 2, 3))):
            if name == "nw_src":
                mask = prefix_mask(rng.choice((18, 20, 24, 26, 32)))
                value = flow_tuple(rng.randrange(FLOWS))[0] & mask
            elif name == "nw_dst":
                mask = prefix_mask(rng.choice((20, 24, 28, 32)))
                value = flow_tuple(rng.randrange(FLOWS))[1] & mask
            elif name == "tp_src":
                mask = rng.choice((0xF000, 0xFF00, 0xFFF0, 0xFFFF))
                value = flow_tuple(rng.randrange(FLOWS))[2] & mask
            else:
                mask = rng.choice((0xFFFF, 0xFF00, 0xFFF0))
                value = flow_tuple(rng.randrange(FLOWS))[3] & mask
            conditions[name] = (value, mask)
        return Match(conditions)

    def random_action(self):
        return self.rng.choice(("output:p1", "output:p2", "output:p2", "drop"))

    def new_rule(self):
        """(cookie, priority, match, action) of a rule not yet in the model;
        its priority and match pair is unique (an equal pair would replace)."""
        used = {(p, m.text()) for p, m, _ in self.rules.values()}
        while True:
            priority = self.rng.randrange(200, 60000)
            match = self.random_match()
            if (priority, match.text()) not in used:
                break
        self.next_cookie += 1
        return self.next_cookie, priority, match, self.random_action()

    @staticmethod
    def rule_text(cookie, priority, match, action):
        return f"cookie=0x{cookie:x},priority={priority},{match.text()} actions={action}"

    def write_file(self, lines):
        self.files += 1
        name = os.path.join(self.dir, f"churn{self.files % 8}.rules")
        with open(name, "w") as f:
            f.write("# churn_soak_test.py\n" + "\n".join(lines) + "\n")
        return name

    def next_command(self):
        """(flowpath-ctl arguments, model update function, changes it makes,
        expected failure line or None)."""
        rng = self.rng
        r = rng.random()
        if r < 0.30 or len(self.rules) < 5:
            rule = self.new_rule()
            return ["add-flow", self.rule_text(*rule)], lambda: self.rules.__setitem__(
                rule[0], rule[1:]), 1, None
        if r < 0.45:
            rules = [self.new_rule() for _ in range(rng.randint(2, 12))]
            # New cookies and unique (priority, match) pairs within the file too.
            pairs = set()
            rules = [x for x in rules if (x[1], x[2].text()) not in pairs and not pairs.add((x[1], x[2].text()))]
            path = self.write_file([self.rule_text(*x) for x in rules])

            def apply():
                for x in rules:
                    self.rules[x[0]] = x[1:]
            return ["add-flows", path], apply, len(rules), None
        if r < 0.65:
            match = self.match_of_existing()
            action = self.random_action()
            covered = [c for c, (_, m, _) in self.rules.items() if match.covers(m)]

            def apply():
                for c in covered:
                    p, m, _ = self.rules[c]
                    self.rules[c] = (p, m, action)
            return ["mod-flows", f"{match.text()} actions={action}"], apply, len(covered), None
        if r < 0.85:
            match = self.match_of_existing()
            covered = [c for c, (_, m, _) in self.rules.items() if match.covers(m)]

            def apply():
                for c in covered:
                    del self.rules[c]
            return ["del-flows", match.text()], apply, len(covered), None
        if r < 0.95:
            keep = [c for c in self.rules if rng.random() < 0.6]
            fresh = [self.new_rule() for _ in range(rng.randint(1, 10))]
            lines = R0.strip().splitlines()
            lines += [self.rule_text(c, *self.rules[c]) for c in keep]
            pairs = {(self.rules[c][0], self.rules[c][1].text()) for c in keep}
            fresh = [x for x in fresh if (x[1], x[2].text()) not in pairs and not pairs.add((x[1], x[2].text()))]
            lines += [self.rule_text(*x) for x in fresh]
            rng.shuffle(lines)
            path = self.write_file(lines)
            changes = len(self.rules) - len(keep) + len(fresh)

            def apply():
                new = {c: self.rules[c] for c in keep}
                for x in fresh:
                    new[x[0]] = x[1:]
                self.rules = new
            return ["replace-flows", path], apply, changes, None
        # A bad file: good rules, then a field nobody knows on the last line.
        rules = [self.new_rule() for _ in range(rng.randint(1, 3))]
        lines = [self.rule_text(*x) for x in rules] + ["priority=300,udp,nw_bogus=1 actions=drop"]
        path = self.write_file(lines)
        return ["add-flows", path], lambda: None, 0, f"{path}:{len(lines) + 1}:"

    def match_of_existing(self):
        """A MATCH built from a subset of an existing rule's fields (so it
        covers that rule, and maybe more)."""
        if not self.rules or self.rng.random() < 0.1:
            return self.random_match()
        _, match, _ = self.rules[self.rng.choice(list(self.rules))]
        names = list(match.conditions)
        keep = self.rng.sample(names, self.rng.randint(1, len(names)))
        conditions = {}
        for name in keep:
            value, mask = match.conditions[name]
            if name.startswith("nw_") and self.rng.random() < 0.3:
                wider = prefix_mask(max(8, bin(mask).count("1") - 8))
                value, mask = value & wider, wider
            conditions[name] = (value, mask)
        return Match(conditions)


# ---- checks ----------------------------------------------------------------------------

def dumped_rules(fp):
    """{cookie: actions text} of the churn rules in dump-flows, and the other lines."""
    out = fp.ctl("dump-flows")
    assert out.returncode == 0, out.stderr
    churn, other = {}, []
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        m = re.search(r"cookie=(0x[0-9a-f]+)", line)
        actions = line.split("actions=", 1)[1].strip() if "actions=" in line else None
        if m and int(m.group(1), 16) >= 0x1000:
            churn[int(m.group(1), 16)] = actions
        else:
            other.append(line)
    return churn, other


def same_action(dumped, modelled):
    if modelled == "drop":
        return dumped in ("drop", "")
    return dumped == modelled


def check_model(fp, churn):
    dumped, other = dumped_rules(fp)
    assert set(dumped) == set(churn.rules), (
        f"dump-flows has {len(dumped)} churn rules, the model {len(churn.rules)}; "
        f"only in flowpath: {sorted(set(dumped) - set(churn.rules))[:5]}, "
        f"only in the model: {sorted(set(churn.rules) - set(dumped))[:5]}")
    for cookie, (_, _, action) in churn.rules.items():
        assert same_action(dumped[cookie], action), (
            f"cookie 0x{cookie:x}: flowpath has actions={dumped[cookie]}, the model {action}")
    assert len(other) == 2, f"the base rules must stay, exactly: {other}"


def stats(fp):
    out = fp.ctl("stats-json")
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout)


def tx(fp, port):
    return next(p["tx_packets"] for p in stats(fp)["ports"] if p["name"] == port)


def probe(fp):
    """The change is in force when add-flow returns: p1 stops, p2 moves."""
    done = fp.ctl("add-flow", PROBE)
    assert done.returncode == 0, f"add-flow {PROBE}: {done.stderr}"
    time.sleep(0.02)  # packets sent before the change may still sit in a tx buffer
    p1_before, p2_before = tx(fp, "p1"), tx(fp, "p2")
    deadline = time.time() + 5
    while tx(fp, "p2") == p2_before:
        assert time.time() < deadline, "p2 does not move under the probe rule: is traffic flowing?"
        time.sleep(0.01)
    time.sleep(0.1)
    p1_after = tx(fp, "p1")
    assert p1_after == p1_before, (f"p1 sent {p1_after - p1_before} packets after add-flow returned with a "
                                   "rule sending everything to p2")
    done = fp.ctl("del-flows", PROBE_MATCH)
    assert done.returncode == 0, f"del-flows {PROBE_MATCH}: {done.stderr}"


def wait_cache(fp, want, timeout, keys=("entries",)):
    """Polls the stats' cache object until its `keys` equal `want`'s;
    returns the last cache object."""
    deadline = time.time() + timeout
    cache = None
    while time.time() < deadline:
        cache = stats(fp)["cache"]
        if all(cache[k] == want[k] for k in keys):
            return cache
        time.sleep(0.1)
    return cache


def check_cache_is_r0(fp, entries):
    """Every megaflow left forwards by R0 (output:p1), one per flow (dl_src).

    A megaflow made under a churn rule with a finer mask than R0 needs (say
    exact dl_src plus nw_dst/24) is still right under R0 and, hit by the
    traffic, stays: so the number of masks (cache.subtables) need not
    return to its baseline while traffic flows, and is not checked."""
    out = fp.ctl("dump-cache")
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if "actions=" in l]
    assert len(lines) == entries, f"dump-cache shows {len(lines)} megaflows, stats {entries}"
    stale = [l for l in lines if l.split("actions=", 1)[1].strip() != "output:p1"]
    assert not stale, f"{len(stale)} megaflows do not forward by R0 after replace-flows R0: {stale[:3]}"
    macs = {re.search(r"dl_src=([0-9a-f:]+)", l).group(1) for l in lines if "dl_src=" in l}
    assert len(macs) == entries, f"{entries} megaflows for {len(macs)} flows: some flow has two, or none is exact"


def check_final_stats(final):
    rx = sum(p["rx_packets"] for p in final["ports"])
    sent = sum(p["tx_packets"] for p in final["ports"])
    drops = final["drops"]
    assert rx > 0, "no traffic"
    assert rx == sent + sum(drops.values()), f"rx {rx} != tx {sent} + drops {sum(drops.values())} ({drops})"
    unexpected = {k: v for k, v in drops.items() if v and k not in ("no_output", "no_match", "upcall_queue_full")}
    assert not unexpected, f"drops for unexpected reasons: {unexpected}"
    return rx, sent, drops


# ---- the soak -------------------------------------------------------------------------

def soak(build, changes, seed=8):
    work = workdir("flowpath_churn_")
    pcap = os.path.join(work, "traffic.pcap")
    write_pcap(pcap, traffic_frames())
    base = os.path.join(work, "r0.rules")
    with open(base, "w") as f:
        f.write(R0)
    fp = Flowpath(build, work, ["--port", f"p0=net_pcap0,rx_pcap={pcap},infinite_rx=1",
                                "--port", "p1=net_null0,no-rx=1", "--port", "p2=net_null1,no-rx=1",
                                "--rules", base, "--max-idle", str(MAX_IDLE_MS)], name="churn")
    fp.start()
    try:
        fp.wait_ready(timeout=60)
        # Baseline under R0 with the traffic flowing: wait for the count to settle.
        time.sleep(1.0 + 2 * MAX_IDLE_MS / 1000)
        baseline = stats(fp)["cache"]
        assert wait_cache(fp, baseline, 3 * MAX_IDLE_MS / 1000)["entries"] == baseline["entries"], \
            "the megaflow count does not settle under R0"
        print(f"     baseline under R0: {baseline}", flush=True)

        churn = Churn(random.Random(seed), work)
        done_changes = commands = bad = 0
        next_probe = 200
        latencies = {}
        started = time.time()
        while done_changes < changes:
            args, apply, count, failure = churn.next_command()
            t0 = time.monotonic()
            result = fp.ctl(*args)
            latencies.setdefault(args[0], []).append(time.monotonic() - t0)
            shown = " ".join(a if len(a) < 120 else a[:120] + "..." for a in args)
            if failure:
                bad += 1
                assert result.returncode == 1, f"{shown}: a bad rule must exit 1, got {result.returncode}"
                assert failure in result.stderr, f"{shown}: the error must name {failure}: {result.stderr!r}"
            else:
                assert result.returncode == 0, f"{shown}: exit {result.returncode}: {result.stderr.strip()}"
                apply()
            done_changes += count
            commands += 1
            if commands % 50 == 0:
                check_model(fp, churn)
            if done_changes >= next_probe:
                probe(fp)
                next_probe += 200
            assert fp.proc.poll() is None, f"flowpath died: {fp.proc.returncode}"
        check_model(fp, churn)
        elapsed = time.time() - started
        summary = ", ".join(f"{k} {len(v)}x median {statistics.median(v) * 1e3:.1f} ms max {max(v) * 1e3:.0f} ms"
                            for k, v in sorted(latencies.items()))
        print(f"     {done_changes} changes in {commands} commands ({bad} refused bad files) in {elapsed:.1f} s; "
              f"{summary}", flush=True)

        # Back to R0; the churn's megaflows must go.
        restore = fp.ctl("replace-flows", base)
        assert restore.returncode == 0, restore.stderr
        churn.rules = {}
        check_model(fp, churn)
        after = wait_cache(fp, baseline, 10 + 10 * MAX_IDLE_MS / 1000)
        print(f"     after replace-flows R0 and max-idle: {after}", flush=True)
        assert after["entries"] == baseline["entries"], (
            f"megaflows did not come back to the baseline: {after['entries']}, baseline {baseline['entries']}")
        check_cache_is_r0(fp, after["entries"])

        assert fp.ctl("exit").returncode == 0
        code = fp.wait(timeout=120)
    finally:
        if fp.proc.poll() is None:
            fp.proc.kill()
            fp.wait()
    reports = [line for line in fp.stderr.splitlines() if any(m in line for m in SANITIZER_MARKS)]
    assert not reports, "sanitizer report:\n" + "\n".join(fp.stderr.splitlines()[-40:])
    assert code == 0, f"exit status {code}: {fp.stderr[-2000:]}"
    rx, sent, drops = check_final_stats(fp.stats())
    print(f"     at exit: rx {rx}, tx {sent}, drops {({k: v for k, v in drops.items() if v})}", flush=True)


def check_model_with_ovs(commands, seed):
    """The harness itself: the same command stream through ovs-ofctl on a
    private Open vSwitch; after every command its table must be the model's."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
    import ovs_oracle  # noqa: E402 (tests/diff)
    work = workdir("flowpath_churn_model_")
    base = os.path.join(work, "r0.rules")
    with open(base, "w") as f:
        f.write(R0)
    churn = Churn(random.Random(seed), work)
    changes = 0
    with ovs_oracle.OvsOracle() as ovs:
        ovs.set_ports(["p0", "p1", "p2"])
        ovs.load_rules(base)
        for _ in range(commands):
            args, apply, count, failure = churn.next_command()
            res = ovs.change(*args)
            assert (res.returncode != 0) == bool(failure), f"{args}: exit {res.returncode}: {res.stderr}"
            apply()
            changes += count
            got = {}
            for line in ovs.dump_flows().splitlines():
                m = re.search(r"cookie=(0x[0-9a-f]+)", line)
                if m and int(m.group(1), 16) >= 0x1000:
                    actions = line.split("actions=", 1)[1].strip()
                    # Open vSwitch names ports by number: p0 = 1, p1 = 2, p2 = 3.
                    got[int(m.group(1), 16)] = re.sub(r"output:(\d)", lambda x: f"output:p{int(x.group(1)) - 1}",
                                                      actions)
            want = {c: a for c, (_, _, a) in churn.rules.items()}
            assert set(got) == set(want) and all(same_action(got[c], want[c]) for c in want), (
                f"after {args}: Open vSwitch and the model differ")
    print(f"     the model agrees with Open vSwitch over {commands} commands ({changes} changes)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--changes", type=int,
                    default=int(os.environ.get("FLOWPATH_CHURN_CHANGES", DEFAULT_CHANGES)),
                    help=f"rule changes in total (default {DEFAULT_CHANGES}, or FLOWPATH_CHURN_CHANGES; "
                         f"the full soak is {FULL_CHANGES})")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--check-model-with-ovs", type=int, metavar="COMMANDS",
                    help="check the harness instead: the churn's model against Open vSwitch")
    args = ap.parse_args()
    if args.check_model_with_ovs:
        t = TestRun()
        t.case(check_model_with_ovs, args.check_model_with_ovs, args.seed)
        t.finish()
    build = os.path.abspath(args.build)
    t = TestRun()

    def test_churn_soak():
        soak(build, args.changes, args.seed)
    test_churn_soak.__name__ = f"test_churn_soak_{args.changes}_changes"
    t.case(test_churn_soak)
    t.finish()


if __name__ == "__main__":
    main()
