#!/usr/bin/python3
"""Deterministic random cases for the flowpath / Open vSwitch differential test.

A case is a rule file (interface.md syntax, which is also ovs-ofctl's) plus
frames injected on 3-4 ports. The same seed always gives the same case.

Rules cover every match field and action of interface.md except conntrack
(`--with-ct` adds ct_state/ct_zone/ct_mark matches and ct()/ct_clear
actions; gen_ct.py makes stateful firewall cases). Every rule satisfies
interface.md's prerequisites (flowpath rejects a field or action without
them), priorities are distinct within a table (Open vSwitch leaves the order
of overlapping equal-priority rules undefined), and resubmit/goto_table only
go to higher tables, so there are no loops. Each rule's cookie is its line number, so an
ofproto/trace names rule-file lines.

Packets are built from the same value pools as the rules and most are aimed
at a rule, so that they hit; see gen_packets.py for the kinds and the tag.

    gen_case.py --seed 7 --out /tmp/case7      # rules.txt, case.json, in_<port>.pcap
"""

import argparse
import copy
import json
import os
import random
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_metadata  # noqa: E402
import gen_packets as gp  # noqa: E402
import pcapfile  # noqa: E402

# class name -> (packet kind, l4, spellings of the protocol prerequisite)
CLASSES = {
    "any": (None, None, [""]),
    "eth": ("eth", None, None),
    "arp": ("arp", None, ["arp", "dl_type=0x0806"]),
    "ip": ("ip4", None, ["ip", "dl_type=0x0800"]),
    "ipproto": ("ip4", "other", ["ip,nw_proto={p}", "dl_type=0x0800,nw_proto={p}"]),
    "tcp": ("ip4", "tcp", ["tcp", "ip,nw_proto=6", "dl_type=0x0800,nw_proto=6"]),
    "udp": ("ip4", "udp", ["udp", "ip,nw_proto=17", "dl_type=0x0800,nw_proto=17"]),
    "sctp": ("ip4", "sctp", ["sctp", "ip,nw_proto=132"]),
    "icmp": ("ip4", "icmp", ["icmp", "ip,nw_proto=1"]),
    "ipv6": ("ip6", None, ["ipv6", "dl_type=0x86dd"]),
    "ip6proto": ("ip6", "other", ["ipv6,nw_proto={p}"]),
    "tcp6": ("ip6", "tcp", ["tcp6", "ipv6,nw_proto=6"]),
    "udp6": ("ip6", "udp", ["udp6", "ipv6,nw_proto=17"]),
    "sctp6": ("ip6", "sctp", ["ipv6,nw_proto=132"]),
    "icmp6": ("ip6", "icmp6", ["icmp6", "ipv6,nw_proto=58"]),
    "nd": ("ip6", "icmp6", ["icmp6", "ipv6,nw_proto=58"]),
}
CLASS_WEIGHTS = {"any": 10, "eth": 3, "arp": 8, "ip": 10, "ipproto": 2, "tcp": 12,
                 "udp": 10, "sctp": 4, "icmp": 6, "ipv6": 7, "ip6proto": 2, "tcp6": 7,
                 "udp6": 6, "sctp6": 2, "icmp6": 5, "nd": 5}
TCP_FLAG_NAMES = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"]
# Names Open vSwitch prints for a match field (to audit its dump-flows).
DUMP_NAMES = {
    "in_port": {"in_port"}, "dl_src": {"dl_src"}, "dl_dst": {"dl_dst"},
    "vlan": {"dl_vlan", "dl_vlan_pcp", "vlan_tci"}, "dl_type": {"dl_type"},
    "nw_src": {"nw_src", "arp_spa"}, "nw_dst": {"nw_dst", "arp_tpa"},
    "nw_tos": {"nw_tos"}, "ip_dscp": {"nw_tos"}, "nw_ecn": {"nw_ecn"},
    "nw_ttl": {"nw_ttl"}, "nw_frag": {"nw_frag"}, "tp_src": {"tp_src"},
    "tp_dst": {"tp_dst"}, "tcp_flags": {"tcp_flags"}, "icmp_type": {"icmp_type"},
    "icmp_code": {"icmp_code"}, "icmpv6_type": {"icmp_type"},
    "icmpv6_code": {"icmp_code"}, "arp_spa": {"arp_spa"}, "arp_tpa": {"arp_tpa"},
    "arp_sha": {"arp_sha"}, "arp_tha": {"arp_tha"}, "arp_op": {"arp_op"},
    "nw_proto": {"arp_op", "nw_proto"}, "ipv6_src": {"ipv6_src"},
    "ipv6_dst": {"ipv6_dst"}, "ipv6_label": {"ipv6_label"},
    "nd_target": {"nd_target"}, "ct_state": {"ct_state"}, "ct_zone": {"ct_zone"},
    "ct_mark": {"ct_mark"}, "metadata": {"metadata"},
}


@dataclass
class Options:
    """Knobs of the generator (defaults are what the differential test uses)."""
    ports: int = 0               # 0: 3 or 4 at random
    with_ct: bool = False        # conntrack matches/actions (fed in one global order)
    alt_forms: bool = True       # spell prerequisites as dl_type=/nw_proto= too
    vlan_tci_set: bool = True    # set_field:...->vlan_tci (pushes/pops a tag)
    odd_vlan_masks: bool = True  # vlan_tci masks covering some PCP bits only
    llc: bool = True             # 802.3/LLC/SNAP frames
    malformed: float = 0.12      # share of damaged templates
    templates: tuple = (25, 50)  # flow templates per case
    top_priority: int = 65535    # the highest priority a rule may get (changes mode keeps 65535 free)
    frag_twins: bool = True      # fragment twins of IP templates (add_fragment_twins)
    metadata: bool = True        # metadata matches, write_metadata, clear_actions (gen_metadata.py)


@dataclass
class Match:
    """One match field: its rule text and, for aiming packets, the spec key
    with value and mask (or a set of allowed values)."""
    name: str
    text: str
    key: str = None
    value: object = None
    mask: int = None


@dataclass
class Rule:
    table: int
    priority: object  # int, or None for the default (32768)
    cls: str
    token: str
    matches: list
    actions: list
    extra: str = ""
    line: int = 0
    port_ref: int = None  # in_port constraint (port index)
    metadata: str = None  # "metadata=V[/M]" (gen_metadata.py), written last

    def text(self, rng):
        parts = []
        if self.table or rng.random() < 0.3:
            parts.append(f"table={self.table}")
        if self.priority is not None:
            parts.append(f"priority={self.priority}")
        parts.append(f"cookie={self.line:#x}")
        if self.extra:
            parts.append(self.extra)
        if self.token:
            parts.append(self.token)
        parts += [m.text for m in self.matches]
        seps = [","] * len(parts)
        for i in range(len(seps)):
            r = rng.random()
            seps[i] = "," if r < 0.8 else " " if r < 0.93 else ", "
        head = "".join(p + s for p, s in zip(parts, seps))
        if self.metadata:  # no draw from rng: the other rules' text stays
            head += self.metadata + ","
        return head + "actions=" + ",".join(self.actions)

    def expected_dump_names(self):
        """Match fields Open vSwitch must keep (one name of each set)."""
        names = [DUMP_NAMES[m.name] for m in self.matches]
        return names + [DUMP_NAMES["metadata"]] if self.metadata else names


@dataclass
class Case:
    """One generated case."""
    seed: int
    ports: list
    rules: list
    rules_text: str
    frames: list          # [(port index, bytes)] in injection order per port
    templates: list = field(default_factory=list)
    frame_templates: list = field(default_factory=list)  # template id per frame
    # What gen_changes.py needs to add rules and frames to the case: the
    # packet spec of each template, the value pools, the tables, the options.
    specs: list = field(default_factory=list)
    pools: object = None
    tables: list = field(default_factory=list)
    opts: object = None

    def drop_templates(self, ids):
        """Remove every frame of the templates `ids` (marked "dropped")."""
        ids = set(ids)
        keep = [i for i, t in enumerate(self.frame_templates) if t not in ids]
        self.frames = [self.frames[i] for i in keep]
        self.frame_templates = [self.frame_templates[i] for i in keep]
        for i in ids:
            self.templates[i]["dropped"] = True

    def port_frames(self, port):
        return [f for p, f in self.frames if p == port]

    def write(self, directory):
        """rules.txt, case.json and in_<port>.pcap (the frames of each port)."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "rules.txt"), "w") as f:
            f.write(self.rules_text)
        for i, name in enumerate(self.ports):
            pcapfile.write_pcap(os.path.join(directory, f"in_{name}.pcap"),
                                self.port_frames(i))
        with open(os.path.join(directory, "case.json"), "w") as f:
            json.dump({"seed": self.seed, "ports": self.ports,
                       "frames": [[p, fr.hex()] for p, fr in self.frames],
                       "frame_templates": self.frame_templates,
                       "templates": self.templates}, f, indent=1)


def fmt_int(rng, v, hex_width=0):
    if rng.random() < 0.5:
        return str(v)
    return f"0x{v:0{hex_width}x}" if hex_width else f"{v:#x}"


def prefix_mask(bits, n):
    return ((1 << bits) - 1) ^ ((1 << (bits - n)) - 1)


class RuleGen:
    """Builds the rules of one case."""

    def __init__(self, rng, pools, ports, tables, opts):
        self.rng, self.pools, self.ports, self.tables, self.opts = rng, pools, ports, tables, opts
        self.metadata_rng = gen_metadata.rng_for(rng) if opts.metadata else None

    # ---- match fields --------------------------------------------------------

    def mac_match(self, name, key, pool_value):
        rng = self.rng
        v = pool_value
        r = rng.random()
        if r < 0.6:
            return Match(name, f"{name}={gp.mac(v)}", key, v, (1 << 48) - 1)
        if r < 0.75:
            m = prefix_mask(48, 24)
        elif r < 0.85:
            m = 0x010000000000
        else:
            m = rng.getrandbits(48) | 1 << rng.randrange(48)
        return Match(name, f"{name}={gp.mac(v & m)}/{gp.mac(m)}", key, v & m, m)

    def ip4_match(self, name, key, v):
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            return Match(name, f"{name}={gp.ip4(v)}", key, v, 0xFFFFFFFF)
        if r < 0.85:
            n = rng.choice((8, 16, 24, 24, 28, 30, 31, 32))
            m = prefix_mask(32, n)
            shown = v if rng.random() < 0.1 else v & m  # OVS masks it anyway
            suffix = f"{n}" if rng.random() < 0.75 else gp.ip4(m)
            return Match(name, f"{name}={gp.ip4(shown)}/{suffix}", key, v & m, m)
        m = rng.getrandbits(32) | 0x80000000
        return Match(name, f"{name}={gp.ip4(v & m)}/{gp.ip4(m)}", key, v & m, m)

    def ip6_match(self, name, key, v):
        rng = self.rng
        r = rng.random()
        full = (1 << 128) - 1
        if r < 0.45:
            return Match(name, f"{name}={gp.ip6(v)}", key, v, full)
        if r < 0.9:
            n = rng.choice((16, 32, 48, 64, 64, 96, 112, 127, 128))
            m = prefix_mask(128, n)
            return Match(name, f"{name}={gp.ip6(v & m)}/{n}", key, v & m, m)
        # Open vSwitch 3.1 reads a mask that starts with a decimal digit as a
        # prefix length ("8078:..." -> /8078), so start it with a-f.
        m = rng.getrandbits(124) | rng.randrange(0xA, 0x10) << 124
        return Match(name, f"{name}={gp.ip6(v & m)}/{gp.ip6(m)}", key, v & m, m)

    def int_match(self, name, key, v, bits, masks=(), p_mask=0.0):
        rng = self.rng
        full = (1 << bits) - 1
        if masks and rng.random() < p_mask:
            m = rng.choice(masks) or (rng.getrandbits(bits) | 1)
            return Match(name, f"{name}=0x{v & m:x}/0x{m:x}", key, v & m, m)
        return Match(name, f"{name}={fmt_int(rng, v)}", key, v, full)

    def vlan_match(self):
        """A VLAN condition; returns (matches, vlan present required)."""
        rng, pools = self.rng, self.pools
        vid, pcp = rng.choice(pools.vids), rng.randrange(8)
        r = rng.random()
        if r < 0.3:
            return [Match("vlan", f"dl_vlan={vid}", "tci", 0x1000 | vid, 0x1FFF)], True
        if r < 0.4:
            return [Match("vlan", f"dl_vlan_pcp={pcp}", "tci", 0x1000 | pcp << 13, 0xF000)], True
        if r < 0.5:
            return [Match("vlan", f"dl_vlan={vid}", "tci", 0x1000 | vid, 0x1FFF),
                    Match("vlan", f"dl_vlan_pcp={pcp}", "tci", 0x1000 | pcp << 13, 0xF000)], True
        if r < 0.65:
            return [Match("vlan", "vlan_tci=0x1000/0x1000", "tci", 0x1000, 0x1000)], True
        if r < 0.8:
            text = rng.choice(("vlan_tci=0x0000/0x1000", "vlan_tci=0", "vlan_tci=0x0000"))
            m = 0x1000 if "/" in text else 0xFFFF
            return [Match("vlan", text, "tci", 0, m)], False
        if r < 0.9:
            v = 0x1000 | vid
            return [Match("vlan", f"vlan_tci=0x{v:04x}/0x1fff", "tci", v, 0x1FFF)], True
        m = rng.getrandbits(16) | 0x1000
        if not self.opts.odd_vlan_masks:
            # What OpenFlow 1.3's VLAN_VID/VLAN_PCP can say: PCP all or none.
            m = (m & 0x1FFF) | rng.choice((0, 0xE000))
        v = (rng.getrandbits(16) | 0x1000) & m
        return [Match("vlan", f"vlan_tci=0x{v:04x}/0x{m:04x}", "tci", v, m)], True

    def tcp_flags_match(self):
        rng = self.rng
        if rng.random() < 0.5:
            names = rng.sample(TCP_FLAG_NAMES, rng.randint(1, 3))
            v = m = 0
            text = ""
            for n in names:
                bit = 1 << TCP_FLAG_NAMES.index(n)
                on = rng.random() < 0.6
                m |= bit
                v |= bit if on else 0
                text += ("+" if on else "-") + n
            return Match("tcp_flags", f"tcp_flags={text}", "tcp_flags", v, m)
        v = gp.pick(rng, self.pools.tcp_flags, 12)
        if rng.random() < 0.5:
            return Match("tcp_flags", f"tcp_flags=0x{v:03x}", "tcp_flags", v, 0xFFF)
        m = rng.choice((0x0FF, 0x012, 0x017, 0xFFF, 0x002))
        return Match("tcp_flags", f"tcp_flags=0x{v & m:03x}/0x{m:03x}", "tcp_flags", v & m, m)

    def field_match(self, name, cls):
        """A random condition on field `name` for a rule of class `cls`."""
        rng, pools = self.rng, self.pools
        arp = cls == "arp"
        if name == "in_port":
            i = rng.randrange(len(self.ports))
            ref = self.ports[i] if rng.random() < 0.6 else str(i + 1)
            return Match("in_port", f"in_port={ref}", "port", i, None)
        if name in ("dl_src", "dl_dst"):
            return self.mac_match(name, name, gp.pick(rng, pools.macs, 48))
        if name in ("nw_src", "nw_dst"):
            key = ("arp_spa" if name == "nw_src" else "arp_tpa") if arp else name
            return self.ip4_match(name, key, gp.pick(rng, pools.ip4, 32))
        if name in ("arp_spa", "arp_tpa"):
            return self.ip4_match(name, name, gp.pick(rng, pools.ip4, 32))
        if name in ("arp_sha", "arp_tha"):
            return self.mac_match(name, name, gp.pick(rng, pools.macs, 48))
        if name == "arp_op":
            return self.int_match(name, "arp_op", rng.choice((1, 2, 1, 2, 3)), 8)
        if name == "nw_proto":  # only for ARP: the opcode's low byte
            return self.int_match(name, "arp_op", rng.choice((1, 2)), 8)
        if name == "nw_tos":
            d = gp.pick(rng, pools.dscps, 6)
            return Match(name, f"nw_tos={fmt_int(rng, d << 2)}", "dscp", d, 0x3F)
        if name == "ip_dscp":
            d = gp.pick(rng, pools.dscps, 6)
            return Match(name, f"ip_dscp={d}", "dscp", d, 0x3F)
        if name == "nw_ecn":
            return self.int_match(name, "ecn", rng.randrange(4), 2)
        if name == "nw_ttl":
            return self.int_match(name, "ttl", gp.pick(rng, pools.ttls, 8), 8)
        if name == "nw_frag":
            kws = ["no", "no", "yes", "first", "not_later"]
            if CLASSES[cls][1] in (None, "other"):
                # Open vSwitch refuses L4 fields and L4 actions in a rule that
                # matches only later fragments (they have no L4 header).
                kws.append("later")
            kw = rng.choice(kws)
            allowed = {"no": {"no"}, "yes": {"first", "later"}, "first": {"first"},
                       "later": {"later"}, "not_later": {"no", "first"}}[kw]
            return Match(name, f"nw_frag={kw}", "frag", allowed, None)
        if name in ("tp_src", "tp_dst"):
            return self.int_match(name, name, gp.pick(rng, pools.l4ports, 16), 16,
                                  (0xFF00, 0xFFF0, 0xFC00, 0x8000, 0x00FF, 0x0001, 0), 0.35)
        if name == "tcp_flags":
            return self.tcp_flags_match()
        if name in ("icmp_type", "icmpv6_type"):
            pool = (0, 8, 3, 11) if name == "icmp_type" else (128, 129, 1, 133, 134)
            return self.int_match(name, "icmp_type", rng.choice(pool), 8)
        if name in ("icmp_code", "icmpv6_code"):
            return self.int_match(name, "icmp_code", rng.choice((0, 0, 1, 3)), 8)
        if name in ("ipv6_src", "ipv6_dst", "nd_target"):
            return self.ip6_match(name, name, gp.pick(rng, pools.ip6, 128))
        if name == "ipv6_label":
            return self.int_match(name, "ipv6_label", gp.pick(rng, pools.labels, 20), 20,
                                  (0xFF000, 0x0000F, 0xFFFFF, 0), 0.3)
        if name == "ct_state":
            flags = rng.sample(["trk", "new", "est", "rel", "rpl", "inv"], rng.randint(1, 3))
            return Match(name, "ct_state=" + "".join(
                ("+" if rng.random() < 0.7 else "-") + f for f in flags))
        if name == "ct_zone":
            return Match(name, f"ct_zone={rng.choice((0, 1, 7))}")
        if name == "ct_mark":
            return Match(name, f"ct_mark={rng.choice((0, 1, 0x42))}")
        raise ValueError(name)

    def fields_for(self, cls):
        kind, l4, _ = CLASSES[cls]
        common = ["in_port", "in_port", "dl_src", "dl_dst", "vlan"]
        own = []
        if kind == "arp":
            own = ["arp_spa", "arp_tpa", "arp_sha", "arp_tha", "arp_op", "arp_op"]
            if self.opts.alt_forms:
                own += ["nw_src", "nw_dst", "nw_proto"]
        elif kind in ("ip4", "ip6"):
            own = ["nw_src", "nw_dst"] if kind == "ip4" else ["ipv6_src", "ipv6_dst", "ipv6_label"]
            own += ["nw_tos", "ip_dscp", "nw_ecn", "nw_ttl", "nw_frag"]
            if l4 in ("tcp", "udp", "sctp"):
                own += ["tp_src", "tp_dst", "tp_src", "tp_dst"] + (["tcp_flags"] * 2 if l4 == "tcp" else [])
            elif l4 == "icmp":
                own += ["icmp_type", "icmp_type", "icmp_code"]
            elif l4 == "icmp6":
                own += ["icmpv6_type", "icmpv6_code"] if cls == "icmp6" else ["nd_target"] * 3
        if self.opts.with_ct and kind in ("ip4", "ip6"):
            own += ["ct_state", "ct_state", "ct_zone", "ct_mark"]
        return common, own

    def match(self, cls):
        """(token, shown matches, all matches, vlan required, in_port index)
        for a rule of class `cls`."""
        rng = self.rng
        kind, l4, spellings = CLASSES[cls]
        matches = []
        if cls == "eth":
            t = rng.choice(gp.ETH_TYPES)
            token = f"dl_type={fmt_int(rng, t, 4)}"
            matches.append(Match("dl_type", "", "dl_type", t, 0xFFFF))
        else:
            token = spellings[0]
            if self.opts.alt_forms and len(spellings) > 1 and rng.random() < 0.25:
                token = rng.choice(spellings[1:])
            if "{p}" in token:
                p = rng.choice(gp.IP4_OTHER_PROTOS if kind == "ip4" else gp.IP6_OTHER_PROTOS)
                token = token.format(p=p)
                matches.append(Match("nw_proto", "", "proto", p, 0xFF))
        if cls == "nd":
            t = rng.choice((135, 136))
            matches.append(Match("icmpv6_type", f"icmpv6_type={t}", "icmp_type", t, 0xFF))
            if rng.random() < 0.2:
                matches.append(Match("icmpv6_code", "icmpv6_code=0", "icmp_code", 0, 0xFF))
        common, own = self.fields_for(cls)
        n = rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4, 5))
        pool = own * 2 + common if own else common
        chosen = []
        while pool and len(chosen) < n:
            f = rng.choice(pool)
            pool = [x for x in pool if x != f]
            # nw_tos and ip_dscp are one field: never both in a rule.
            if f in ("nw_tos", "ip_dscp"):
                pool = [x for x in pool if x not in ("nw_tos", "ip_dscp")]
            if f in ("arp_op", "nw_proto"):
                pool = [x for x in pool if x not in ("arp_op", "nw_proto")]
            if f in ("nw_src", "arp_spa") and kind == "arp":
                pool = [x for x in pool if x not in ("nw_src", "arp_spa")]
            if f in ("nw_dst", "arp_tpa") and kind == "arp":
                pool = [x for x in pool if x not in ("nw_dst", "arp_tpa")]
            chosen.append(f)
        vlan_required = False
        port_ref = None
        for f in chosen:
            if f == "vlan":
                ms, vlan_required = self.vlan_match()
                matches += ms
            else:
                m = self.field_match(f, cls)
                if f == "in_port":
                    port_ref = m.value
                matches.append(m)
        rng.shuffle(matches)
        # Prerequisite-carrying fields stay behind the protocol token anyway.
        return token, [m for m in matches if m.text], matches, vlan_required, port_ref

    # ---- actions ---------------------------------------------------------------

    def port_ref(self):
        i = self.rng.randrange(len(self.ports))
        return self.ports[i] if self.rng.random() < 0.6 else str(i + 1)

    def actions(self, cls, table, vlan_required):
        rng = self.rng
        kind, l4, _ = CLASSES[cls]
        if rng.random() < 0.07:
            return [rng.choice(("drop", ""))] if rng.random() < 0.7 else ["drop"]
        later = [t for t in self.tables if t > table]
        vstack = [vlan_required, False]  # what Open vSwitch's check knows
        out = []
        cats = {"output": 6, "in_port": 0.6, "flood": 0.8, "all": 0.8, "dl": 1.5,
                "vlan": 1.8}
        if kind in ("ip4", "ip6"):
            cats.update({kind: 2.5, "ttl": 1.0})
            if l4 in ("tcp", "udp", "sctp"):
                cats["l4"] = 1.5
            if l4 in ("icmp", "icmp6"):
                cats["icmp"] = 1.0
            if cls == "nd":
                cats["nd"] = 1.0
            if self.opts.with_ct:
                cats["ct"] = 0.8
        if kind == "arp":
            cats["arp"] = 2.0
        if later:
            cats["resubmit"] = 1.2
        n = rng.choice((1, 2, 2, 3, 3, 4, 5, 6))
        names, weights = list(cats), list(cats.values())
        for _ in range(n):
            c = rng.choices(names, weights)[0]
            out += self.action(c, cls, table, later, vstack, vlan_required)
        if later and rng.random() < 0.22:
            out.append(f"goto_table:{self.target_table(later)}")
        forwarding = ("output:", "in_port", "flood", "all", "resubmit", "goto_table", "ct(")
        if not any(a.startswith(forwarding) for a in out) and rng.random() < 0.85:
            pos = rng.randrange(len(out) + 1)
            if out and out[-1].startswith("goto_table"):
                pos = min(pos, len(out) - 1)
            out.insert(pos, f"output:{self.port_ref()}")
        return out

    def target_table(self, later):
        if self.rng.random() < 0.08:
            return min(253, max(later) + 1 + self.rng.randrange(3))  # an empty table
        return self.rng.choice(later)

    def action(self, c, cls, table, later, vstack, vlan_required):
        rng, pools = self.rng, self.pools
        kind, l4, _ = CLASSES[cls]
        mac = lambda: gp.mac(gp.pick(rng, pools.macs, 48))  # noqa: E731
        ipv4 = lambda: gp.ip4(gp.pick(rng, pools.ip4, 32))  # noqa: E731
        ipv6 = lambda: gp.ip6(gp.pick(rng, pools.ip6, 128))  # noqa: E731
        if c == "output":
            return [f"output:{self.port_ref()}"]
        if c in ("in_port", "flood", "all"):
            return [c]
        if c == "dl":
            which = rng.choice(("src", "dst"))
            if rng.random() < 0.5:
                return [f"mod_dl_{which}:{mac()}"]
            name = rng.choice((f"eth_{which}", f"dl_{which}"))
            return [f"set_field:{mac()}->{name}"]
        if c == "vlan":
            return self.vlan_action(vstack, vlan_required)
        if c == "ttl":
            return ["dec_ttl"]
        if c in ("ip4", "ip6"):
            r = rng.random()
            if r < 0.25:
                return [f"mod_nw_tos:{rng.randrange(64) << 2}"]
            if r < 0.45:
                f = rng.choice(("nw_tos", "ip_dscp", "nw_ecn", "nw_ttl"))
                v = {"nw_tos": rng.randrange(64) << 2, "ip_dscp": rng.randrange(64),
                     "nw_ecn": rng.randrange(4), "nw_ttl": gp.pick(rng, pools.ttls, 8)}[f]
                return [f"set_field:{v}->{f}"]
            if c == "ip4":
                which = rng.choice(("src", "dst"))
                if r < 0.7:
                    return [f"mod_nw_{which}:{ipv4()}"]
                # interface.md also names ipv4_src/ipv4_dst, but Open vSwitch
                # 3.1 rejects them ("not a valid OXM field name").
                return [f"set_field:{ipv4()}->nw_{which}"]
            if r < 0.8:
                return [f"set_field:{ipv6()}->ipv6_{rng.choice(('src', 'dst'))}"]
            return [f"set_field:{fmt_int(rng, gp.pick(rng, pools.labels, 20))}->ipv6_label"]
        if c == "l4":
            which = rng.choice(("src", "dst"))
            v = gp.pick(rng, pools.l4ports, 16)
            if l4 in ("tcp", "udp") and rng.random() < 0.4:
                return [f"mod_tp_{which}:{v}"]
            names = {"tcp": ("tcp_", "tp_"), "udp": ("udp_",), "sctp": ("sctp_",)}[l4]
            return [f"set_field:{v}->{rng.choice(names)}{which}"]
        if c == "icmp":
            p = "icmp" if l4 == "icmp" else "icmpv6"
            if rng.random() < 0.5 and cls != "nd":
                return [f"set_field:{rng.randrange(256)}->{p}_type"]
            return [f"set_field:{rng.choice((0, 1, 3, 255))}->{p}_code"]
        if c == "nd":
            return [f"set_field:{ipv6()}->nd_target"]
        if c == "arp":
            f = rng.choice(("arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha"))
            v = {"arp_op": str(rng.choice((1, 2))), "arp_spa": ipv4(), "arp_tpa": ipv4(),
                 "arp_sha": mac(), "arp_tha": mac()}[f]
            return [f"set_field:{v}->{f}"]
        if c == "resubmit":
            return [f"resubmit(,{self.target_table(later)})"]
        if c == "ct":
            zone = rng.choice((0, 1, 7))
            r = rng.random()
            if r < 0.3 and later:
                return [f"ct(zone={zone},table={rng.choice(later)})"]
            if r < 0.85 and self.no_commit:
                return [f"ct(zone={zone})"]
            if r < 0.6:
                return [f"ct(commit,zone={zone})"]
            if r < 0.85:
                return [f"ct(commit,zone={zone},exec(set_field:{rng.randrange(1, 99)}->ct_mark))"]
            return ["ct_clear"]
        raise ValueError(c)

    def vlan_action(self, vstack, vlan_required):
        """A VLAN action valid for Open vSwitch's check (`vstack` = which of
        the two tag slots are known present) and interface.md."""
        rng, pools = self.rng, self.pools
        vid, pcp = rng.choice(pools.vids), rng.randrange(8)
        options = []
        if not (not vstack[0] and vstack[1]):
            options += ["mod_vlan_vid", "mod_vlan_pcp"]
        if not vstack[1]:
            options += ["push_vlan", "push_vlan"]
        if vstack[0]:
            options += ["set_vid", "set_pcp"]
            if vlan_required:
                options += ["strip_vlan", "strip_vlan"]
        if self.opts.vlan_tci_set and not vstack[1] and rng.random() < 0.15:
            options.append("set_tci")
        if not options:
            return []
        a = rng.choice(options)
        if a in ("mod_vlan_vid", "mod_vlan_pcp"):
            if not vstack[0]:  # encoded as push_vlan + set_field
                vstack[:] = [True, vstack[0]]
            return [f"mod_vlan_vid:{vid}" if a == "mod_vlan_vid" else f"mod_vlan_pcp:{pcp}"]
        if a == "push_vlan":
            vstack[:] = [True, vstack[0]]
            out = ["push_vlan:0x8100"]
            if rng.random() < 0.6:
                out.append(f"set_field:{fmt_int(rng, 0x1000 | vid)}->vlan_vid")
            return out
        if a == "set_vid":
            return [f"set_field:{fmt_int(rng, 0x1000 | vid)}->vlan_vid"]
        if a == "set_pcp":
            return [f"set_field:{pcp}->vlan_pcp"]
        if a == "strip_vlan":
            vstack[:] = [vstack[1], False]
            return ["strip_vlan"]
        v = 0x1000 | pcp << 13 | vid if rng.random() < 0.7 else 0
        vstack[0] = bool(v)
        return [f"set_field:0x{v:04x}->vlan_tci"]

    # ---- whole rules -------------------------------------------------------------

    def rule(self, table, priority, cls=None):
        rng = self.rng
        if cls is None:
            cls = rng.choices(list(CLASS_WEIGHTS), list(CLASS_WEIGHTS.values()))[0]
        token, shown, matches, vlan_required, port_ref = self.match(cls)
        # Open vSwitch refuses ct(commit) in a rule matching ct_state=+inv.
        self.no_commit = any("+inv" in m.text for m in matches)
        actions = self.actions(cls, table, vlan_required)
        extra = ""
        r = rng.random()
        if r < 0.05:
            extra = f"idle_timeout={rng.choice((3600, 7200))}"
        elif r < 0.08:
            extra = f"hard_timeout={rng.choice((3600, 9999))}"
        metadata = None
        if self.metadata_rng:
            metadata = gen_metadata.match(self.metadata_rng, table)
            actions = gen_metadata.instructions(self.metadata_rng, actions)
        rule = Rule(table, priority, cls, token, shown, actions, extra, port_ref=port_ref, metadata=metadata)
        rule.all_matches = matches
        return rule


def gen_rules(rng, pools, ports, opts):
    """All rules of a case, in file order (tables interleaved)."""
    k = rng.choices((0, 1, 2, 3), weights=(1, 3, 3, 2))[0]
    tables = [0] + sorted(rng.sample(range(1, 40), k))
    if k and rng.random() < 0.15:
        tables[-1] = rng.choice((100, 200, 253))
    g = RuleGen(rng, pools, ports, tables, opts)
    rules = []
    for t in tables:
        n = rng.randint(8, 24) if t == 0 else rng.randint(3, 10)
        prios = rng.sample(range(1, 65535), n)
        if rng.random() < 0.2:
            prios[0] = rng.choice((0, opts.top_priority))
        if 32768 not in prios and rng.random() < 0.3:
            prios[rng.randrange(n)] = None  # the default, 32768
        for p in prios:
            rules.append(g.rule(t, p))
        # A low catch-all keeps traffic flowing (not mostly drops).
        if rng.random() < (0.7 if t == 0 else 0.4):
            used = {32768 if p is None else p for p in prios}
            p = next(x for x in range(0, 65535) if x not in used)
            if 32768 not in used and rng.random() < 0.3:
                p = None
            rules.append(g.rule(t, p, "any"))
    rng.shuffle(rules)
    return rules, tables


def layout(rng, rules, seed):
    """Rule file text with comments and blank lines; sets each rule's line
    (= its cookie)."""
    lines = [f"# flowpath differential test case, seed {seed}"]
    for r in rules:
        if rng.random() < 0.05:
            lines.append("")
        if rng.random() < 0.03:
            lines.append(f"# table {r.table}")
        r.line = len(lines) + 1
        lines.append(r.text(rng))
    return "\n".join(lines) + "\n"


def aimed_spec(rng, pools, rule, n_ports):
    """A packet spec that satisfies `rule`'s match (where the packet's own
    structure allows it)."""
    kind, l4, _ = CLASSES[rule.cls]
    spec = gp.random_spec(rng, pools, kind, l4)
    spec["port"] = rule.port_ref if rule.port_ref is not None else rng.randrange(n_ports)
    if kind not in (None, "eth") and len(spec["vlans"]) > 1 and rng.random() < 0.8:
        # Open vSwitch (vlan-limit 1) sees no L3 behind two tags: keep most
        # aimed packets hittable.
        del spec["vlans"][1:]
    for m in rule.all_matches:
        if m.key is None or m.key == "port":
            continue
        if m.key == "frag":
            if spec["kind"] in ("ip4", "ip6"):
                spec["frag"] = rng.choice(sorted(m.value))
            continue
        if m.key == "tci":
            v, mask = m.value, m.mask
            if mask & 0x1000 and not v & 0x1000:
                spec["vlans"] = []
                continue
            if mask & 0x1000 and not spec["vlans"]:
                spec["vlans"] = [[0x8100, 0, 0, 0]]
            if spec["vlans"]:
                t = spec["vlans"][0]
                cur = 0x1000 | t[1] << 13 | t[3]
                new = (v & mask) | (cur & ~mask)
                t[1], t[3] = new >> 13 & 7, new & 0xFFF
            continue
        if m.key == "proto":
            spec["l4"], spec["proto"] = "other", m.value
            continue
        if m.key not in spec and m.key not in ("icmp_type", "icmp_code"):
            continue
        cur = spec.get(m.key, 0)
        spec[m.key] = (m.value & m.mask) | (cur & ~m.mask)
    if rule.cls == "nd":
        spec["icmp_code"] = 0 if rng.random() < 0.9 else spec["icmp_code"]
    return spec


def add_fragment_twins(seed, specs, templates, opts):
    """Pairs an unfragmented IP template with a first fragment of the same
    5-tuple (or the other way round): their translations differ (fragments
    are classified with ports 0), so a megaflow one of them installs must not
    answer the other. A separate generator keeps the other templates as the
    seed made them before twins existed."""
    rng = random.Random(seed ^ 0x6672_6167)
    for t_id in range(len(specs)):
        spec = specs[t_id]
        if spec["kind"] not in ("ip4", "ip6") or spec.get("frag") not in ("no", "first"):
            continue
        if spec["malform"] is not None or rng.random() >= 0.25:
            continue
        twin = copy.deepcopy(spec)
        twin["frag"] = "first" if spec["frag"] == "no" else "no"
        specs.append(twin)
        templates.append(dict(templates[t_id], count=rng.choice((1, 2, 3, 4)), twin_of=t_id))


def generate(seed, opts=None):
    """The case for `seed` (same seed, same options: same case)."""
    opts = opts or Options()
    rng = random.Random(seed)
    n_ports = opts.ports or rng.choice((3, 4))
    ports = [f"p{i + 1}" for i in range(n_ports)]
    pools = gp.Pools(rng)
    rules, tables = gen_rules(rng, pools, ports, opts)
    rules_text = layout(rng, rules, seed)

    templates, specs = [], []
    for _ in range(rng.randint(*opts.templates)):
        r = rng.random()
        target = None
        if r < 0.85:
            later = [x for x in rules if x.table != 0]
            pool = later if later and r < 0.25 else [x for x in rules if x.table == 0]
            target = rng.choice(pool)
            spec = aimed_spec(rng, pools, target, n_ports)
        else:
            kind = "llc" if opts.llc and rng.random() < 0.15 else None
            spec = gp.random_spec(rng, pools, kind)
            spec["port"] = rng.randrange(n_ports)
        if rng.random() < opts.malformed:
            gp.choose_malformation(rng, spec)
        specs.append(spec)
        templates.append({"port": spec["port"], "kind": spec["kind"], "l4": spec.get("l4"),
                          "malform": spec["malform"],
                          "aimed_at_line": target.line if target else None,
                          "count": rng.choice((1, 1, 2, 3, 4, 6, 8))})

    if opts.frag_twins:
        add_fragment_twins(seed, specs, templates, opts)

    frames = []
    per_port = [[] for _ in ports]
    flow_ids, seqs = {}, {}
    for t_id, t in enumerate(templates):
        per_port[t["port"]] += [t_id] * t["count"]
    for port, ids in enumerate(per_port):
        rng.shuffle(ids)
        for t_id in ids:
            flow = flow_ids.setdefault(t_id, sum(1 for k in flow_ids if templates[k]["port"] == port))
            seq = seqs.get(t_id, 0)
            seqs[t_id] = seq + 1
            templates[t_id]["flow"] = flow
            frame = gp.frame_of(specs[t_id], gp.make_tag(port, flow, seq),
                                damage_seed=seed ^ (t_id * 7919))
            frames.append((port, t_id, frame))
    # Interleave the ports (each keeps its own order).
    order = [p for p, _, _ in frames]
    rng.shuffle(order)
    queues = [[(t, f) for p, t, f in frames if p == i] for i in range(n_ports)]
    picked = [(p, queues[p].pop(0)) for p in order]
    return Case(seed, ports, rules, rules_text, [(p, f) for p, (_, f) in picked],
                templates, [t for _, (t, _) in picked], specs, pools, tables, opts)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate one differential-test case.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="case directory to write")
    ap.add_argument("--with-ct", action="store_true", help="include conntrack")
    ap.add_argument("--ports", type=int, default=0, help="number of ports (default 3-4)")
    args = ap.parse_args(argv)
    case = generate(args.seed, Options(ports=args.ports, with_ct=args.with_ct))
    case.write(args.out)
    print(f"{args.out}: {len(case.rules)} rules, {len(case.frames)} frames on "
          f"{len(case.ports)} ports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
