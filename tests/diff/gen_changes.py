#!/usr/bin/python3
"""Rule changes between two phases of a differential-test case (issue 8).

A changes case is a gen_case.py case (the phase-1 rules and frames) plus

- 2-5 rule changes, each one of `add-flow RULE`, `add-flows FILE`,
  `del-flows [MATCH]`, `mod-flows RULE` and `replace-flows FILE`, the
  commands of ovs-ofctl and of flowpath-ctl alike; now and then a change is
  bad (an unknown field on its last line) and must change nothing on either
  side;
- the phase-2 frames: every phase-1 flow again (new sequence numbers, so the
  megaflows phase 1 installed are used again under the new rules) and new
  flows aimed at the rules the changes added.

What the changes mean is left to Open vSwitch (the oracle): the generator
only keeps them valid for both switches:

- every rule and every MATCH carries its protocol prerequisites (flowpath
  refuses a field without them, Open vSwitch would silently drop it), and an
  nd_target keeps its icmpv6_type;
- an added rule takes a priority no other rule of its table has ever had,
  except an add that deliberately repeats an existing rule's match and
  priority with other actions (OpenFlow: that replaces the rule);
- mod-flows always names its table (its actions' resubmit/goto_table targets
  must lie after it) and has at least one field;
- no rule and no MATCH uses dl_type 0x88b7 or priority 65535 (the phase-1
  rules top out at 65534): the differential driver keeps that for its
  filler frames (difftest_changes.py).

Truncated frames are left out of changes cases (difftest.py filters the unsafe
ones against one rule set; here there are two).

    gen_changes.py --seed 7 --out /tmp/case7     # the case plus changes.json, in2_<port>.pcap
"""

import argparse
import json
import os
import random
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_case  # noqa: E402
import gen_packets as gp  # noqa: E402
import pcapfile  # noqa: E402

KINDS = ("add-flow", "add-flows", "del-flows", "mod-flows", "replace-flows")
KIND_WEIGHTS = (3, 2, 3, 3, 1.5)
BAD_FIELD = "nw_bogus=1"
FIRST_ADDED_COOKIE = 0x1000


@dataclass
class Change:
    """One rule change. `arg` is the rule or MATCH text (None: del-flows
    without a MATCH); file kinds carry their file's `lines` and `file` name
    (relative to the case directory). `bad_line` is the file line (1-based)
    or 1 for a bad add-flow that both switches must refuse."""
    kind: str
    arg: str = None
    lines: list = None
    file: str = None
    bad_line: int = None

    def describe(self):
        if self.lines is not None:
            return f"{self.kind} {self.file} ({len(self.lines)} lines)"
        return f"{self.kind} {self.arg or ''}".rstrip()

    def ctl_args(self, case_dir):
        """The command's arguments after the switch (ovs-ofctl: after the bridge)."""
        if self.lines is not None:
            return [self.kind, os.path.join(case_dir, self.file)]
        return [self.kind] + ([self.arg] if self.arg is not None else [])


@dataclass
class ChangesCase:
    """A gen_case.Case plus its changes and phase-2 frames."""
    case: object
    changes: list
    frames2: list                                    # [(port index, bytes)]
    added_rules: dict = field(default_factory=dict)  # cookie -> rule text

    def write(self, directory):
        self.case.write(directory)
        for change in self.changes:
            if change.lines is not None:
                with open(os.path.join(directory, change.file), "w") as f:
                    f.write("\n".join(change.lines) + "\n")
        for i, name in enumerate(self.case.ports):
            pcapfile.write_pcap(os.path.join(directory, f"in2_{name}.pcap"),
                                [f for p, f in self.frames2 if p == i])
        with open(os.path.join(directory, "changes.json"), "w") as f:
            json.dump({"changes": [c.__dict__ for c in self.changes],
                       "frames2": [[p, fr.hex()] for p, fr in self.frames2],
                       "added_rules": {hex(k): v for k, v in self.added_rules.items()}}, f, indent=1)

    def rule_by_cookie(self):
        """cookie -> rule text over the phase-1 file and every added rule."""
        lines = self.case.rules_text.splitlines()
        out = {n: lines[n - 1] for n in range(1, len(lines) + 1)}
        out.update(self.added_rules)
        return out


class ChangeGen:
    """Builds the changes of one case on top of its rule generator."""

    def __init__(self, case, rng):
        self.case, self.rng = case, rng
        self.g = gen_case.RuleGen(rng, case.pools, case.ports, case.tables, case.opts)
        self.g.no_commit = False  # set per rule by RuleGen.rule(); actions() may come first
        # The rules that may exist, in file order: phase 1's, then every
        # added one (a deleted rule stays a candidate: deleting or
        # modifying it again is a valid no-op).
        self.known = list(case.rules)
        self.used = {}
        for r in case.rules:
            self.used.setdefault(r.table, set()).add(32768 if r.priority is None else r.priority)
        self.next_cookie = FIRST_ADDED_COOKIE
        self.added = {}
        self.files = 0

    # ---- rules -------------------------------------------------------------

    def free_priority(self, table):
        used = self.used.setdefault(table, set())
        while True:
            p = self.rng.randrange(1, 65535)
            if p not in used:
                used.add(p)
                return p

    def new_rule(self):
        """A new rule (unique priority in its table, a fresh cookie) and its text."""
        rng = self.rng
        if rng.random() < 0.2 and self.known:
            # Same match and priority as a known rule, other actions: an add
            # that replaces it.
            old = rng.choice(self.known)
            rule = gen_case.Rule(old.table, old.priority, old.cls, old.token, old.matches,
                                 self.g.actions(old.cls, old.table, self.vlan_required(old.all_matches)),
                                 old.extra, port_ref=old.port_ref)
            rule.all_matches = old.all_matches
        else:
            table = rng.choice(self.case.tables)
            rule = self.g.rule(table, self.free_priority(table))
        self.next_cookie += 1
        rule.line = self.next_cookie
        self.known.append(rule)
        text = rule.text(rng)
        self.added[rule.line] = text
        return rule, text

    @staticmethod
    def key(rule):
        return rule.table, 32768 if rule.priority is None else rule.priority

    @staticmethod
    def vlan_required(matches):
        return any(m.key == "tci" and m.mask & 0x1000 and m.value & 0x1000 for m in matches)

    def match_of(self, rule, with_table):
        """A non-strict MATCH that covers `rule` (a subset of its fields,
        prerequisites kept) and its class, table and matches."""
        rng = self.rng
        shown = [m for m in rule.matches]
        keep = [m for m in shown if rng.random() < 0.5]
        if rule.cls == "nd":  # nd_target needs its icmpv6_type
            keep += [m for m in shown if m.name == "icmpv6_type" and m not in keep]
        # OpenFlow orders nothing here; keep the rule's order for readability.
        keep = [m for m in shown if m in keep]
        parts = []
        if with_table:
            parts.append(f"table={rule.table}")
        if rule.token:
            parts.append(rule.token)
        parts += [m.text for m in keep]
        hidden = [m for m in rule.all_matches if not m.text]
        return ",".join(parts), keep + hidden

    def next_file(self, kind):
        self.files += 1
        return f"change{self.files}_{kind}.rules"

    # ---- changes -------------------------------------------------------------

    def change(self, kind, bad):
        rng = self.rng
        if kind == "add-flow":
            _, text = self.new_rule()
            if bad:
                text = text.replace("actions=", BAD_FIELD + ",actions=", 1)
                return Change(kind, text, bad_line=1)
            return Change(kind, text)
        if kind == "add-flows":
            lines = [f"# {kind}: rules added while traffic flows"]
            keys = set()
            for _ in range(rng.randint(2, 8)):
                rule, text = self.new_rule()
                # One rule per (table, priority) in a file: a repeat within
                # one file would leave the outcome to the order of adds.
                if self.key(rule) not in keys:
                    keys.add(self.key(rule))
                    lines.append(text)
            if bad:
                lines.append(f"priority=7,ip,{BAD_FIELD} actions=drop")
                return Change(kind, lines=lines, file=self.next_file(kind), bad_line=len(lines))
            return Change(kind, lines=lines, file=self.next_file(kind))
        if kind == "del-flows":
            if rng.random() < 0.08:
                return Change(kind, None)  # every rule of every table
            target = rng.choice(self.known)
            match, _ = self.match_of(target, rng.random() < 0.5)
            if not match:
                match = f"table={target.table}"
            return Change(kind, match)
        if kind == "mod-flows":
            target = rng.choice(self.known)
            match, kept = self.match_of(target, True)
            # The MATCH carries the target's protocol token, so actions of its
            # class have their prerequisites.
            actions = self.g.actions(target.cls, target.table, self.vlan_required(kept))
            if match == f"table={target.table}":
                # A MATCH of the table alone would also modify the driver's
                # filler rule: name a field. in_port always exists.
                i = rng.randrange(len(self.case.ports))
                match += f",in_port={self.case.ports[i]}"
            return Change(kind, f"{match} actions={','.join(actions)}")
        # replace-flows: a mutation of what may exist: keep most rules, give
        # some new actions, add some. One rule per (table, priority).
        lines = [f"# {kind}: the new table"]
        seen = set()
        for rule in self.known:
            key = self.key(rule)
            if key in seen or rng.random() < 0.3:
                continue
            seen.add(key)
            if rng.random() < 0.2:
                rule = gen_case.Rule(rule.table, rule.priority, rule.cls, rule.token, rule.matches,
                                     self.g.actions(rule.cls, rule.table,
                                                    self.vlan_required(rule.all_matches)),
                                     rule.extra, line=rule.line, port_ref=rule.port_ref)
            lines.append(rule.text(rng))
        for _ in range(rng.randint(1, 5)):
            rule, text = self.new_rule()
            if self.key(rule) not in seen:
                seen.add(self.key(rule))
                lines.append(text)
        body = lines[1:]
        rng.shuffle(body)
        lines[1:] = body
        return Change(kind, lines=lines, file=self.next_file(kind))


def phase2_frames(case, gen, rng):
    """Every phase-1 template again (new sequence numbers) plus new
    templates aimed at the added rules, ports interleaved."""
    n_ports = len(case.ports)
    flows_on = [0] * n_ports
    seqs = {}
    for t in case.templates:
        if not t.get("dropped"):
            flows_on[t["port"]] = max(flows_on[t["port"]], t["flow"] + 1)
    for t_id in case.frame_templates:
        seqs[t_id] = seqs.get(t_id, 0) + 1
    work = []  # (port, template id, spec, flow)
    for t_id, t in enumerate(case.templates):
        if t.get("dropped") or "flow" not in t:
            continue
        work += [(t["port"], t_id, case.specs[t_id], t["flow"])] * rng.choice((1, 2, 3, 4))
    added = [r for r in gen.known if r.line >= FIRST_ADDED_COOKIE]
    for rule in rng.sample(added, min(len(added), 20)):
        spec = gen_case.aimed_spec(rng, case.pools, rule, n_ports)
        if spec.get("frag", "no") != "no" and case.opts.with_ct:
            spec["frag"] = "no"
        port = spec["port"]
        if flows_on[port] >= 255:
            continue
        t_id = len(case.specs)
        case.specs.append(spec)
        case.templates.append({"port": port, "kind": spec["kind"], "l4": spec.get("l4"),
                               "malform": None, "aimed_at_cookie": rule.line, "flow": flows_on[port],
                               "phase": 2})
        flows_on[port] += 1
        work += [(port, t_id, spec, flows_on[port] - 1)] * rng.choice((1, 2, 3, 4))
    rng.shuffle(work)
    frames = []
    for port, t_id, spec, flow in work:
        seq = seqs.get(t_id, 0)
        seqs[t_id] = seq + 1
        frames.append((port, gp.frame_of(spec, gp.make_tag(port, flow, seq))))
    # Each port keeps its own order; ports interleave as the list says.
    return frames


def generate(seed, opts=None):
    """The changes case for `seed` (deterministic)."""
    opts = opts or gen_case.Options()
    opts.top_priority = 65534
    case = gen_case.generate(seed, opts)
    case.drop_templates([i for i, t in enumerate(case.templates) if t["malform"] == "trunc"])
    rng = random.Random(seed * 7919 + 8)
    gen = ChangeGen(case, rng)
    changes = []
    for _ in range(rng.randint(2, 5)):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        bad = kind in ("add-flow", "add-flows") and rng.random() < 0.15
        changes.append(gen.change(kind, bad))
    frames2 = phase2_frames(case, gen, rng)
    return ChangesCase(case, changes, frames2, dict(gen.added))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate one differential-test case with rule changes.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="case directory to write")
    args = ap.parse_args(argv)
    cc = generate(args.seed)
    cc.write(args.out)
    print(f"{args.out}: {len(cc.case.rules)} rules, {len(cc.case.frames)} + {len(cc.frames2)} frames on "
          f"{len(cc.case.ports)} ports; changes:")
    for c in cc.changes:
        print(f"  {c.describe()}{' (bad)' if c.bad_line else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
