#!/usr/bin/python3
"""Conntrack cases for the differential test: stateful firewall rule sets
and connection-shaped traffic, deterministic from the seed.

A case is one rule set (a *profile*, varied at random) and a sequence of
frames on ports p1..p4 in one global order, because connection state
carries from packet to packet across ports: the order is part of the case
(difftest.py feeds it to both sides frame run by frame run).

Profiles (`PROFILES`), chosen by `seed % len(PROFILES)` so consecutive seeds
cover them all:

- firewall  allow established, commit new from the inside (p1) only;
            outside (p2) attempts, invalid and related traffic routed to a
            log port (p4) or dropped
- zones     two tenants with identical addresses (p1/p2 zone Z1, p3/p4
            zone Z2), ct_zone matched
- marks     ct(commit,exec(set_field:M->ct_mark)) by protocol, replies
            steered by ct_mark (exact and masked), a mark rewritten mid-way
- twice     ct in two zones one after the other (or twice in one zone),
            ct(commit) followed by ct(table=T) in one action list
- clear     ct_clear then resubmit (must see -trk) or ct again in another zone
- nocommit  ct(table=T) for everything, commit only some connections: the
            rest stay +new, their replies +new or +inv
- notable   ct(commit) without table followed by resubmit (later tables see
            the ct fields as before the ct)

Traffic (`Conversations`): TCP connections (handshake with and without
window scaling, data both ways, FIN in either order, RST, SYN retransmitted,
a SYN reusing a closed connection's ports, out-of-window segments, bad flag
combinations, bad checksums), UDP exchanges, ICMP echo (and an echo with a
code, invalid), ICMP/ICMPv6 errors quoting a tracked connection (+rel) or an
unknown one, IP fragments (+inv: no reassembly), another IP protocol (GRE),
IPv4 and IPv6, some hosts behind an 802.1Q tag, ARP noise, and connections
opened from the wrong side. Conversations are interleaved at random, each
keeping its own order.

Every frame of a data-carrying segment ends with the 8-byte tag of
gen_packets.py (port, flow, seq), so compare.py can attribute it; control
segments are tagged half the time (a tag is 8 bytes of TCP payload, counted
in the sequence numbers like any data).

    gen_ct.py --seed 7 --out /tmp/ct7        # rules.txt, case.json, in_<port>.pcap
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_case  # noqa: E402
import gen_packets as gp  # noqa: E402
from scapy.all import (ARP, GRE, ICMP, IP, TCP, UDP, Dot1Q, Ether,  # noqa: E402
                       ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                       ICMPv6TimeExceeded, IPv6, IPv6ExtHdrFragment, Raw)

PORTS = ["p1", "p2", "p3", "p4"]
P1, P2, P3, P4 = range(4)
TCP_F, TCP_S, TCP_R, TCP_P, TCP_A, TCP_U = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


# ---- hosts ------------------------------------------------------------------

class Host:
    """An endpoint: its port, MAC, IPv4 and IPv6 address, optional VLAN."""

    def __init__(self, port, mac, ip4, ip6, vlan=None):
        self.port, self.mac, self.ip4, self.ip6, self.vlan = port, mac, ip4, ip6, vlan


def make_hosts(rng, port, net4, net6, count, vlan_share=0.15):
    hosts = []
    for i in range(count):
        h = rng.randrange(2, 250)
        vlan = rng.randrange(1, 4095) if rng.random() < vlan_share else None
        hosts.append(Host(port, f"02:{port + 1:02x}:{rng.getrandbits(8):02x}:00:00:{i + 1:02x}",
                          f"{net4}.{h}", f"{net6}::{h:x}", vlan))
    return hosts


def l2(src, dst):
    """Ethernet (and the sender's VLAN tag) from host src to host dst."""
    pkt = Ether(src=src.mac, dst=dst.mac)
    if src.vlan is not None:
        pkt = pkt / Dot1Q(vlan=src.vlan)
    return pkt


# ---- frames -----------------------------------------------------------------

def ip_layer(src, dst, v6, **kw):
    if v6:
        return IPv6(src=src.ip6, dst=dst.ip6, hlim=64)
    return IP(src=src.ip4, dst=dst.ip4, ttl=64, flags="DF", id=kw.get("ip_id", 1))


def finish(pkt, bad_l4_csum=False, bad_ip_csum=False):
    """Bytes of a scapy packet, optionally with a wrong checksum."""
    if bad_l4_csum:
        for layer in (TCP, UDP, ICMP):
            if layer in pkt:
                pkt[layer].chksum = 0xBAD0
                break
    if bad_ip_csum and IP in pkt:
        pkt[IP].chksum = 0x1234
    return bytes(pkt)


class Event:
    """One frame of a conversation: the port it enters, its template (one
    direction of one conversation: a flow of the tag), whether it is tagged,
    and how to build it given the tag bytes."""

    def __init__(self, port, template, build, tagged=True, kind="ip4", l4=None, note=""):
        self.port, self.template, self.build, self.tagged = port, template, build, tagged
        self.kind, self.l4, self.note = kind, l4, note


class TcpConn:
    """Sequence bookkeeping of one TCP connection between client c and server s."""

    def __init__(self, rng, c, s, v6, sport, dport):
        self.c, self.s, self.v6 = c, s, v6
        self.sport, self.dport = sport, dport
        self.isn = {True: rng.getrandbits(32), False: rng.getrandbits(32)}  # by from_client
        self.nxt = dict(self.isn)
        self.win = {True: rng.choice((512, 4096, 29200, 65535)),
                    False: rng.choice((1024, 8192, 28960, 65535))}
        self.wscale = None
        if rng.random() < 0.4:
            self.wscale = {True: rng.randrange(0, 9), False: rng.randrange(0, 9)}

    def segment(self, from_client, flags, tag, options=None, bad_csum=False, advance=True,
                seq_of=None, seq_delta=0, ack_delta=0, restart=None):
        """A segment's bytes. Its sequence number is the sender's next one
        (plus seq_delta; or its initial one with seq_of="isn"), its ack the
        peer's next (plus ack_delta); `restart` gives the sender a new
        initial sequence number first (a new connection on the same ports).
        Advances the sender's next sequence number by the data (the tag) and
        SYN/FIN when `advance` (not for a shifted or initial sequence number)."""
        if restart is not None:
            self.isn[from_client] = self.nxt[from_client] = restart
        src, dst = (self.c, self.s) if from_client else (self.s, self.c)
        sp, dp = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        own = self.isn[from_client] if seq_of == "isn" else self.nxt[from_client] + seq_delta
        peer = self.nxt[not from_client] + ack_delta
        pkt = (l2(src, dst) / ip_layer(src, dst, self.v6) /
               TCP(sport=sp, dport=dp, seq=own & 0xFFFFFFFF,
                   ack=(peer & 0xFFFFFFFF) if flags & TCP_A else 0,
                   flags=flags, window=self.win[from_client], options=options or []))
        if tag:
            pkt = pkt / Raw(tag)
        if advance and seq_of is None and not seq_delta:
            self.nxt[from_client] = (own + len(tag) + (1 if flags & (TCP_S | TCP_F) else 0)) & 0xFFFFFFFF
        return finish(pkt, bad_l4_csum=bad_csum)

    def syn_options(self, from_client):
        opts = [("MSS", 1460)]
        if self.wscale is not None:
            opts += [("NOP", None), ("WScale", self.wscale[from_client])]
        return opts


def icmp_error(rng, reporter, victim, v6):
    """A builder (quoted IP packet, tag) -> frame of an ICMP(v6) error from
    `reporter` to `victim`; the type and code are drawn now."""
    if v6:
        kind, code = rng.choice((("unreach", 1), ("unreach", 3), ("unreach", 4), ("time", 0)))
        head = ICMPv6DestUnreach(code=code) if kind == "unreach" else ICMPv6TimeExceeded(code=code)
        return lambda quoted, tag: bytes(l2(reporter, victim) / ip_layer(reporter, victim, True) /
                                         head.copy() / Raw(quoted + tag))
    t, code = rng.choice(((3, 3), (3, 1), (3, 13), (11, 0), (12, 0)))
    return lambda quoted, tag: bytes(l2(reporter, victim) / ip_layer(reporter, victim, False) /
                                     ICMP(type=t, code=code) / Raw(quoted + tag))


def strip_l2(frame):
    """The IP packet inside a frame built by l2() (Ethernet, maybe one tag)."""
    off = 18 if frame[12:14] == b"\x81\x00" else 14
    return frame[off:]


# ---- conversations ----------------------------------------------------------

class Conversations:
    """Builds conversations between an initiator c and a responder s, as
    event lists. Every random choice is made when a conversation is made
    (with `self.rng`, which the caller may set per conversation); building
    the frames later draws nothing, so a conversation made twice from equal
    generators gives equal frames."""

    def __init__(self, rng, routers):
        self.rng = rng
        self.next_template = 0
        self.routers = routers  # {port: Host} that report ICMP errors on that port

    def template(self):
        self.next_template += 1
        return self.next_template - 1

    def maybe_tag(self, p=0.5):
        return self.rng.random() < p

    def v6(self, p=0.3):
        return self.rng.random() < p

    def reporter(self, near):
        """Who reports an ICMP error about a packet to `near`: near itself,
        or the router on its port (a third address)."""
        router = self.routers.get(near.port)
        return router if router is not None and self.rng.random() < 0.4 else near

    def error_event(self, quoted_from_client, c, s, v6, quote_of, note):
        """An ICMP error about one packet c->s (or s->c): built from
        quote_of(from_client) -> IP packet bytes."""
        reporter = self.reporter(s if quoted_from_client else c)
        victim = c if quoted_from_client else s
        err = icmp_error(self.rng, reporter, victim, v6)
        return Event(reporter.port, self.template(),
                     lambda tag: err(quote_of(quoted_from_client), tag), True,
                     "ip6" if v6 else "ip4", "icmp6" if v6 else "icmp", note)

    def tcp(self, c, s):
        """A TCP connection from c to s with anomalies at random."""
        rng = self.rng
        v6 = self.v6()
        kind = "ip6" if v6 else "ip4"
        conn = TcpConn(rng, c, s, v6, rng.randrange(1024, 65535), rng.choice((80, 443, 22, 8080, 5201)))
        tc, ts = self.template(), self.template()
        events = []

        def ev(from_client, build, tagged, note):
            port = c.port if from_client else s.port
            events.append(Event(port, tc if from_client else ts, build, tagged, kind, "tcp", note))

        def seg(from_client, flags, note, tagged=None, **kw):
            tagged = self.maybe_tag() if tagged is None else tagged
            ev(from_client, lambda tag: conn.segment(from_client, flags, tag, **kw), tagged, note)

        # Frames are built in event order (each conversation keeps its own
        # order in the interleaving), so sequence numbers advance as sent.
        seg(True, TCP_S, "syn", options=conn.syn_options(True))
        if rng.random() < 0.1:
            seg(True, TCP_S, "syn retransmitted", tagged=False, seq_of="isn",
                options=conn.syn_options(True))
        if rng.random() < 0.08:
            seg(False, TCP_R | TCP_A, "refused", tagged=False)
            return events
        seg(False, TCP_S | TCP_A, "syn-ack", options=conn.syn_options(False))
        seg(True, TCP_A, "ack")
        for _ in range(rng.randint(1, 6)):
            from_client = rng.random() < 0.6
            r = rng.random()
            if r < 0.08:
                far = rng.choice((0x40000000, 0x7FFFFFF0, 200000, -200000))
                seg(from_client, TCP_P | TCP_A, "out of window", tagged=True, seq_delta=far)
            elif r < 0.13:
                far = rng.choice((0x40000000, 0x90000000))
                seg(from_client, TCP_A, "ack out of window", tagged=True, ack_delta=far, advance=False)
            elif r < 0.19:
                bad = rng.choice((TCP_S | TCP_F, TCP_S | TCP_R, 0, TCP_F | TCP_P | TCP_U,
                                  TCP_F, TCP_S | TCP_F | TCP_R | TCP_P | TCP_A | TCP_U))
                seg(from_client, bad, "bad flags", tagged=True, advance=False)
            elif r < 0.23:
                seg(from_client, TCP_P | TCP_A, "bad checksum", tagged=True, bad_csum=True, advance=False)
            elif r < 0.33:
                full = rng.random() < 0.7

                def quote(qc, full=full):
                    ip_pkt = strip_l2(conn.segment(qc, TCP_A, b"", advance=False))
                    return ip_pkt if full else ip_pkt[:(40 if v6 else 20) + 8]
                events.append(self.error_event(rng.random() < 0.7, c, s, v6, quote,
                                               "icmp error about tcp"))
            elif r < 0.38:
                seg(from_client, TCP_P | TCP_A, "retransmission", tagged=True, seq_delta=-8,
                    advance=False)
            else:
                seg(from_client, TCP_P | TCP_A, "data", tagged=True)
        r = rng.random()
        if r < 0.45:
            first = rng.random() < 0.6
            seg(first, TCP_F | TCP_A, "fin")
            seg(not first, TCP_A, "ack of fin")
            seg(not first, TCP_F | TCP_A, "fin")
            seg(first, TCP_A, "last ack")
            if rng.random() < 0.3:
                # The same ports again, new sequence numbers: a reuse.
                seg(True, TCP_S, "syn reusing the ports", options=conn.syn_options(True),
                    restart=rng.getrandbits(32))
                seg(False, TCP_S | TCP_A, "syn-ack", options=conn.syn_options(False),
                    restart=rng.getrandbits(32))
        elif r < 0.6:
            seg(rng.random() < 0.5, TCP_F | TCP_A, "fin, both at once")
            seg(True, TCP_F | TCP_A, "fin, both at once")
            seg(False, TCP_A, "ack")
        elif r < 0.75:
            from_client = rng.random() < 0.5
            if rng.random() < 0.3:
                seg(from_client, TCP_R, "rst out of window", tagged=True, seq_delta=0x20000000,
                    advance=False)
            seg(from_client, TCP_R | TCP_A, "rst")
            if rng.random() < 0.4:
                seg(not from_client, TCP_P | TCP_A, "data after rst", tagged=True)
        return events

    def udp(self, c, s):
        rng = self.rng
        v6 = self.v6()
        kind = "ip6" if v6 else "ip4"
        sport, dport = rng.randrange(1024, 65535), rng.choice((53, 123, 4789, 9999))
        tc, ts = self.template(), self.template()
        size = rng.choice((0, 4, 30))

        def dgram(from_client, tag, bad=False):
            src, dst = (c, s) if from_client else (s, c)
            sp, dp = (sport, dport) if from_client else (dport, sport)
            pkt = (l2(src, dst) / ip_layer(src, dst, v6) / UDP(sport=sp, dport=dp) /
                   Raw(bytes(size) + tag))
            return finish(pkt, bad_l4_csum=bad)

        events = []
        for _ in range(rng.randint(1, 6)):
            from_client = rng.random() < 0.55 or not events
            r = rng.random()
            port, t = (c.port, tc) if from_client else (s.port, ts)
            if r < 0.07:
                events.append(Event(port, t, lambda tag, f=from_client: dgram(f, tag, bad=True), True,
                                    kind, "udp", "bad checksum"))
            elif r < 0.2:
                events.append(self.error_event(rng.random() < 0.7, c, s, v6,
                                               lambda qc: strip_l2(dgram(qc, b"")), "icmp error about udp"))
            else:
                events.append(Event(port, t, lambda tag, f=from_client: dgram(f, tag), True, kind,
                                    "udp", "datagram"))
        return events

    def echo(self, c, s):
        rng = self.rng
        v6 = self.v6()
        kind = "ip6" if v6 else "ip4"
        ident = rng.getrandbits(16)
        tc, ts = self.template(), self.template()

        def msg(from_client, seq, tag, code=0):
            src, dst = (c, s) if from_client else (s, c)
            if v6:
                l4 = (ICMPv6EchoRequest if from_client else ICMPv6EchoReply)(id=ident, seq=seq, code=code)
            else:
                l4 = ICMP(type=8 if from_client else 0, code=code, id=ident, seq=seq)
            return bytes(l2(src, dst) / ip_layer(src, dst, v6) / l4 / Raw(tag))

        events = []
        for seq in range(1, rng.randint(2, 4)):
            r = rng.random()
            if r < 0.08:
                events.append(Event(c.port, tc, lambda tag, q=seq: msg(True, q, tag, code=1), True,
                                    kind, "icmp", "echo with a code"))
                continue
            events.append(Event(c.port, tc, lambda tag, q=seq: msg(True, q, tag), True, kind, "icmp",
                                "echo request"))
            if r < 0.85:
                events.append(Event(s.port, ts, lambda tag, q=seq: msg(False, q, tag), True, kind,
                                    "icmp", "echo reply"))
        return events

    def unsolicited(self, c, s):
        """From s to c: an echo reply nobody asked for, or an ICMP error
        quoting a connection nobody has."""
        rng = self.rng
        v6 = self.v6()
        kind = "ip6" if v6 else "ip4"
        ident = rng.getrandbits(16)
        if rng.random() < 0.5:
            def build(tag):
                l4 = ICMPv6EchoReply(id=ident, seq=1) if v6 else ICMP(type=0, id=ident, seq=1)
                return bytes(l2(s, c) / ip_layer(s, c, v6) / l4 / Raw(tag))
            return [Event(s.port, self.template(), build, True, kind, "icmp", "unsolicited echo reply")]
        sport = rng.randrange(1024, 65535)
        err = icmp_error(rng, s, c, v6)

        def quote(_qc):
            return bytes(ip_layer(c, s, v6) / UDP(sport=sport, dport=53) / Raw(b"q"))
        return [Event(s.port, self.template(), lambda tag: err(quote(True), tag), True, kind, "icmp",
                      "error about nothing")]

    def fragments(self, c, s):
        """A UDP datagram in two fragments (+inv: no reassembly)."""
        rng = self.rng
        v6 = self.v6(0.4)
        t = self.template()
        sport, dport = rng.randrange(1024, 65535), 4789
        if v6:
            def first(tag):
                return bytes(l2(c, s) / IPv6(src=c.ip6, dst=s.ip6) /
                             IPv6ExtHdrFragment(nh=17, id=0x77, m=1, offset=0) /
                             UDP(sport=sport, dport=dport, len=8 + 64) / Raw(bytes(16) + tag))

            def later(tag):
                return bytes(l2(c, s) / IPv6(src=c.ip6, dst=s.ip6) /
                             IPv6ExtHdrFragment(nh=17, id=0x77, m=0, offset=4) / Raw(bytes(32) + tag))
        else:
            def first(tag):
                return bytes(l2(c, s) / IP(src=c.ip4, dst=s.ip4, flags="MF", frag=0, id=0x77, proto=17) /
                             UDP(sport=sport, dport=dport, len=8 + 64) / Raw(bytes(16) + tag))

            def later(tag):
                return bytes(l2(c, s) / IP(src=c.ip4, dst=s.ip4, flags=0, frag=4, id=0x77, proto=17) /
                             Raw(bytes(32) + tag))
        kind = "ip6" if v6 else "ip4"
        return [Event(c.port, t, first, True, kind, "udp", "first fragment"),
                Event(c.port, t, later, True, kind, "udp", "later fragment")]

    def gre(self, c, s):
        """Another IP protocol (GRE), both ways."""
        rng = self.rng
        tc, ts = self.template(), self.template()

        def build(from_client, tag):
            src, dst = (c, s) if from_client else (s, c)
            return bytes(l2(src, dst) / IP(src=src.ip4, dst=dst.ip4) / GRE(proto=0x6558) / Raw(tag))
        events = []
        for _ in range(rng.randint(1, 4)):
            f = rng.random() < 0.6 or not events
            events.append(Event(c.port if f else s.port, tc if f else ts,
                                lambda tag, f=f: build(f, tag), True, "ip4", "other", "gre"))
        return events

    def bad_ip_checksum(self, c, s):
        def build(tag):
            pkt = l2(c, s) / IP(src=c.ip4, dst=s.ip4) / UDP(sport=5000, dport=53) / Raw(tag)
            return finish(pkt, bad_ip_csum=True)
        return [Event(c.port, self.template(), build, True, "ip4", "udp", "bad ip checksum")]

    def arp(self, c, s):
        return [Event(c.port, self.template(), lambda tag: bytes(
            Ether(src=c.mac, dst="ff:ff:ff:ff:ff:ff") /
            ARP(op=1, hwsrc=c.mac, psrc=c.ip4, pdst=s.ip4) / Raw(tag)), True, "arp", None, "arp")]

    KINDS = {"tcp": 40, "udp": 20, "echo": 14, "unsolicited": 6, "fragments": 5, "gre": 4,
             "bad_ip_checksum": 3, "arp": 4}

    def make(self, kind, c, s):
        return getattr(self, kind)(c, s)


def interleave(rng, conversations):
    """One global order: conversations advance at random, each in its own order."""
    queues = [list(c) for c in conversations if c]
    out = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


# ---- rule sets ----------------------------------------------------------------

class RuleBook:
    """Rules of a case in file order; cookie = line number (as gen_case)."""

    def __init__(self, rng):
        self.rng = rng
        self.rules = []  # (table, priority, [(field name, text)], actions)

    V6_TWINS = {"ip": "ipv6", "tcp": "tcp6", "udp": "udp6", "icmp": "icmp6"}

    def add(self, table, priority, matches, actions, twin=True):
        """A rule; with `twin`, one for IPv6 too: a rule with an IPv4
        shorthand (ip, tcp, udp, icmp) gets a copy with the IPv6 one, and a
        rule whose actions use ct but whose match names no protocol (ct
        needs ip or ipv6, in Open vSwitch and in flowpath) becomes two."""
        tokens = [t for n, t in matches if n is None]
        if twin and "ct" in actions and not tokens:
            self.rules.append((table, priority, [m(None, "ip")] + matches, actions))
            self.rules.append((table, priority, [m(None, "ipv6")] + matches, actions))
            return
        self.rules.append((table, priority, matches, actions))
        if twin and any(t in self.V6_TWINS for t in tokens):
            six = [(n, self.V6_TWINS.get(t, t) if n is None else t) for n, t in matches]
            self.rules.append((table, priority, six, actions))

    def port(self, index):
        """A port reference: by name or by number, as the contract allows."""
        return PORTS[index] if self.rng.random() < 0.7 else str(index + 1)

    def render(self, seed, profile):
        rng = self.rng
        order = list(self.rules)
        rng.shuffle(order)
        lines = [f"# flowpath differential test, conntrack case, seed {seed}, profile {profile}"]
        rules = []
        for table, priority, matches, actions in order:
            line = len(lines) + 1
            parts = ([f"table={table}"] if table or rng.random() < 0.3 else [])
            # Protocol shorthands (ip, tcp, ...) first, as usually written.
            ordered = [t for n, t in matches if n is None] + [t for n, t in matches if n is not None]
            parts += [f"priority={priority}", f"cookie={line:#x}"] + ordered
            lines.append(",".join(parts) + " actions=" + actions)
            rules.append(CtRule(line, [name for name, _ in matches]))
        return "\n".join(lines) + "\n", rules


class CtRule:
    """What difftest's audit needs of a rule: its line (= cookie) and the
    match fields Open vSwitch must keep."""

    def __init__(self, line, names):
        self.line = line
        self.names = [n for n in names if n in gen_case.DUMP_NAMES]

    def expected_dump_names(self):
        return [gen_case.DUMP_NAMES[n] for n in self.names]


def m(name, text):
    return (name, text)


def tables(rng, n):
    """n increasing table numbers after 0."""
    return sorted(rng.sample(range(1, 60), n))


def deny(rng, book, log_port=P4):
    return rng.choice(("drop", f"output:{book.port(log_port)}", f"output:{book.port(log_port)}"))


def track_all(rng, book, table, zone, families=("ip", "ipv6"), extra=()):
    """Table 0: every IP packet not yet tracked goes through ct(table=T)."""
    z = f"zone={zone}," if zone is not None else ""
    for fam in families:
        book.add(0, 100, [m(None, fam), m("ct_state", "ct_state=-trk")] + list(extra),
                 f"ct({z}table={table})", twin=False)
    book.add(0, 50, [m(None, "arp")], "flood")
    if rng.random() < 0.5:
        book.add(0, 0, [], "drop")


def profile_firewall(rng, book):
    t1, = tables(rng, 1)
    zone = rng.choice((None, 0, rng.randrange(1, 65536)))
    z = f",zone={zone}" if zone is not None else ""
    track_all(rng, book, t1, zone)
    new_filter = rng.choice(([], [m(None, "tcp")], [m(None, "ip")]))
    book.add(t1, 200, [m("in_port", f"in_port={book.port(P1)}"), m("ct_state", "ct_state=+trk+new")]
             + new_filter, f"ct(commit{z}),output:{book.port(P2)}")
    est_out = rng.choice(("ct_state=+trk+est", "ct_state=+est-rpl", "ct_state=+trk+est-rel"))
    book.add(t1, 190, [m("in_port", f"in_port={book.port(P1)}"), m("ct_state", est_out)],
             f"output:{book.port(P2)}")
    est_in = rng.choice(("ct_state=+trk+est", "ct_state=+est+rpl"))
    book.add(t1, 180, [m("in_port", f"in_port={book.port(P2)}"), m("ct_state", est_in)],
             f"output:{book.port(P1)}")
    book.add(t1, 170, [m("ct_state", "ct_state=+trk+rel"), m("in_port", f"in_port={book.port(P2)}")],
             f"output:{book.port(P1)}")
    book.add(t1, 160, [m("ct_state", "ct_state=+rel"), m("in_port", f"in_port={book.port(P1)}")],
             f"output:{book.port(P2)}")
    book.add(t1, 150, [m("ct_state", "ct_state=+trk+inv")], deny(rng, book))
    book.add(t1, 140, [m("ct_state", "ct_state=+new-est"), m("in_port", f"in_port={book.port(P2)}")],
             f"output:{book.port(P4)}")
    book.add(t1, 1, [], deny(rng, book, P3))
    return {"inside": [P1], "outside": [P2], "zones": None}


def profile_zones(rng, book):
    t1, = tables(rng, 1)
    z1 = rng.randrange(1, 65536)
    z2 = rng.choice((0, rng.randrange(1, 65536)))
    if z2 == z1:
        z2 = (z1 + 1) % 65536
    for port, zone in ((P1, z1), (P2, z1), (P3, z2), (P4, z2)):
        for fam in ("ip", "ipv6"):
            book.add(0, 100, [m("in_port", f"in_port={book.port(port)}"), m(None, fam)],
                     f"ct(zone={zone},table={t1})", twin=False)
    book.add(0, 50, [m(None, "arp")], "flood")
    by_zone = rng.random() < 0.6
    for zone, inside, outside in ((z1, P1, P2), (z2, P3, P4)):
        zm = [m("ct_zone", f"ct_zone={zone}")] if by_zone else []
        book.add(t1, 200, zm + [m("in_port", f"in_port={book.port(inside)}"),
                                m("ct_state", "ct_state=+trk+new")],
                 f"ct(commit,zone={zone}),output:{book.port(outside)}")
        book.add(t1, 190, zm + [m("in_port", f"in_port={book.port(inside)}"),
                                m("ct_state", "ct_state=+trk+est")], f"output:{book.port(outside)}")
        book.add(t1, 180, zm + [m("in_port", f"in_port={book.port(outside)}"),
                                m("ct_state", rng.choice(("ct_state=+trk+est", "ct_state=+rpl+trk")))],
                 f"output:{book.port(inside)}")
        book.add(t1, 170, zm + [m("in_port", f"in_port={book.port(outside)}"),
                                m("ct_state", "ct_state=+trk+rel")], f"output:{book.port(inside)}")
    # Seen in the wrong zone, or invalid: out on the other tenant's inside
    # port, so that a zone mix-up shows.
    book.add(t1, 150, [m("ct_state", "ct_state=+inv+trk"), m("ct_zone", f"ct_zone={z1}")],
             f"output:{book.port(P3)}")
    book.add(t1, 150, [m("ct_state", "ct_state=+inv+trk"), m("ct_zone", f"ct_zone={z2}")],
             f"output:{book.port(P1)}")
    book.add(t1, 1, [], "drop")
    return {"inside": [P1, P3], "outside": [P2, P4], "zones": (z1, z2)}


def profile_marks(rng, book):
    t1, = tables(rng, 1)
    zone = rng.choice((None, rng.randrange(1, 65536)))
    z = f",zone={zone}" if zone is not None else ""
    track_all(rng, book, t1, zone)
    m1, m2, m3 = rng.sample(range(1, 1 << 16), 3)
    m1 |= 1   # odd: matched by the masked rule below
    m2 &= ~1  # even
    m3 = m3 | 1 if rng.random() < 0.5 else m3 & ~1
    inside = f"in_port={book.port(P1)}"
    outside = f"in_port={book.port(P2)}"
    book.add(t1, 200, [m("in_port", inside), m("ct_state", "ct_state=+trk+new"), m(None, "tcp")],
             f"ct(commit{z},exec(set_field:{m1}->ct_mark)),output:{book.port(P2)}")
    book.add(t1, 199, [m("in_port", inside), m("ct_state", "ct_state=+trk+new"), m(None, "udp")],
             f"ct(commit{z},exec(set_field:{m2:#x}->ct_mark)),output:{book.port(P2)}")
    book.add(t1, 198, [m("in_port", inside), m("ct_state", "ct_state=+trk+new")],
             f"ct(commit{z}),output:{book.port(P2)}")
    # A mark changed mid-connection: later replies follow the new mark.
    book.add(t1, 195, [m("in_port", inside), m("ct_state", "ct_state=+trk+est"),
                       m("ct_mark", f"ct_mark={m2}"), m(None, "udp")],
             f"ct(commit{z},exec(set_field:{m3}->ct_mark)),output:{book.port(P2)}")
    book.add(t1, 190, [m("in_port", inside), m("ct_state", "ct_state=+trk+est")], f"output:{book.port(P2)}")
    book.add(t1, 185, [m("in_port", outside), m("ct_state", "ct_state=+trk+est"),
                       m("ct_mark", f"ct_mark={m1}")], f"output:{book.port(P1)}")
    book.add(t1, 184, [m("in_port", outside), m("ct_state", "ct_state=+trk+est"),
                       m("ct_mark", f"ct_mark={m2}")], f"output:{book.port(P3)}")
    book.add(t1, 183, [m("in_port", outside), m("ct_state", "ct_state=+trk"),
                       m("ct_mark", "ct_mark=0x1/0x1")], f"output:{book.port(P1)},output:{book.port(P4)}")
    book.add(t1, 182, [m("in_port", outside), m("ct_state", "ct_state=+trk+est")], f"output:{book.port(P3)}")
    book.add(t1, 170, [m("ct_state", "ct_state=+trk+rel"), m("in_port", outside)], f"output:{book.port(P1)}")
    book.add(t1, 150, [m("ct_state", "ct_state=+trk+inv")], deny(rng, book))
    book.add(t1, 1, [], f"output:{book.port(P4)}")
    return {"inside": [P1], "outside": [P2], "zones": None}


def profile_twice(rng, book):
    t1, t2 = tables(rng, 2)
    za = rng.randrange(1, 65536)
    zb = za if rng.random() < 0.35 else rng.randrange(0, 65536)
    track_all(rng, book, t1, za)
    inside = f"in_port={book.port(P1)}"
    outside = f"in_port={book.port(P2)}"
    if rng.random() < 0.5:
        # Commit in the first zone, then track again (in the second) and go on.
        book.add(t1, 200, [m("in_port", inside), m("ct_state", "ct_state=+trk+new")],
                 f"ct(commit,zone={za}),ct(zone={zb},table={t2})")
    else:
        book.add(t1, 200, [m("in_port", inside), m("ct_state", "ct_state=+trk+new")],
                 f"ct(zone={zb},table={t2})")
    book.add(t1, 190, [m("ct_state", "ct_state=+trk+est"), m("ct_zone", f"ct_zone={za}")],
             f"ct(zone={zb},table={t2})")
    book.add(t1, 180, [m("ct_state", "ct_state=+trk+rel")], f"ct(zone={zb},table={t2})")
    book.add(t1, 150, [m("ct_state", "ct_state=+trk+inv")], deny(rng, book))
    book.add(t1, 1, [], f"output:{book.port(P4)}")
    book.add(t2, 200, [m("in_port", inside), m("ct_state", "ct_state=+trk+new"),
                       m("ct_zone", f"ct_zone={zb}")], f"ct(commit,zone={zb}),output:{book.port(P2)}")
    book.add(t2, 190, [m("in_port", inside), m("ct_state", "ct_state=+est")], f"output:{book.port(P2)}")
    book.add(t2, 180, [m("in_port", outside), m("ct_state", "ct_state=+est+rpl")], f"output:{book.port(P1)}")
    book.add(t2, 175, [m("in_port", outside), m("ct_state", "ct_state=+rel")], f"output:{book.port(P1)}")
    book.add(t2, 170, [m("ct_state", "ct_state=+new"), m("in_port", outside)], f"output:{book.port(P3)}")
    book.add(t2, 150, [m("ct_state", "ct_state=+inv")], f"output:{book.port(P4)}")
    book.add(t2, 1, [], "drop")
    return {"inside": [P1], "outside": [P2], "zones": None}


def profile_clear(rng, book):
    t1, t2, t3 = tables(rng, 3)
    zone = rng.choice((None, rng.randrange(1, 65536)))
    z = f",zone={zone}" if zone is not None else ""
    track_all(rng, book, t1, zone)
    inside = f"in_port={book.port(P1)}"
    outside = f"in_port={book.port(P2)}"
    book.add(t1, 200, [m("in_port", inside), m("ct_state", "ct_state=+trk+new")],
             f"ct(commit{z}),ct_clear,resubmit(,{t2})")
    book.add(t1, 190, [m("ct_state", "ct_state=+trk+est")], f"ct_clear,resubmit(,{t2})")
    z2 = rng.randrange(1, 65536)
    book.add(t1, 185, [m("ct_state", "ct_state=+trk+rel")], f"ct_clear,ct(zone={z2},table={t3})")
    book.add(t1, 180, [m("ct_state", "ct_state=+trk+new"), m("in_port", outside)],
             f"ct_clear,ct(zone={z2},table={t3})")
    book.add(t1, 150, [m("ct_state", "ct_state=+trk+inv")], deny(rng, book))
    book.add(t2, 200, [m("ct_state", "ct_state=-trk"), m("in_port", inside)], f"output:{book.port(P2)}")
    book.add(t2, 190, [m("ct_state", "ct_state=-trk"), m("in_port", outside)], f"output:{book.port(P1)}")
    book.add(t2, 100, [m("ct_state", "ct_state=+trk")], f"output:{book.port(P3)}")
    book.add(t3, 200, [m("ct_state", "ct_state=+trk+new"), m("ct_zone", f"ct_zone={z2}")],
             f"output:{book.port(P3)}")
    book.add(t3, 190, [m("ct_state", "ct_state=+trk+inv")], f"output:{book.port(P4)}")
    book.add(t3, 1, [], f"output:{book.port(P4)},output:{book.port(P3)}")
    return {"inside": [P1], "outside": [P2], "zones": None}


def profile_nocommit(rng, book):
    t1, = tables(rng, 1)
    for fam in ("ip", "ipv6"):
        book.add(0, 100, [m(None, fam)], f"ct(table={t1})", twin=False)
    book.add(0, 50, [m(None, "arp")], "flood")
    inside = f"in_port={book.port(P1)}"
    outside = f"in_port={book.port(P2)}"
    committed = rng.choice(([m(None, "tcp"), m("tp_dst", "tp_dst=80")], [m(None, "udp")],
                            [m(None, "icmp")], [m(None, "tcp")]))
    book.add(t1, 200, [m("in_port", inside), m("ct_state", "ct_state=+trk+new")] + committed,
             f"ct(commit),output:{book.port(P2)}")
    book.add(t1, 190, [m("in_port", inside), m("ct_state", "ct_state=+new")], f"output:{book.port(P2)}")
    book.add(t1, 185, [m("in_port", inside), m("ct_state", "ct_state=+est")],
             f"ct(zone={rng.randrange(1, 9)}),output:{book.port(P2)}")
    book.add(t1, 180, [m("in_port", outside), m("ct_state", "ct_state=+est")], f"output:{book.port(P1)}")
    book.add(t1, 175, [m("in_port", outside), m("ct_state", "ct_state=+rel")], f"output:{book.port(P1)}")
    book.add(t1, 170, [m("in_port", outside), m("ct_state", "ct_state=+new")], f"output:{book.port(P3)}")
    book.add(t1, 150, [m("ct_state", "ct_state=+inv")], f"output:{book.port(P4)}")
    book.add(t1, 1, [], "drop")
    return {"inside": [P1], "outside": [P2], "zones": None}


def profile_notable(rng, book):
    t1, t2 = tables(rng, 2)
    zone = rng.choice((None, rng.randrange(1, 65536)))
    z = f",zone={zone}" if zone is not None else ""
    recirc = f"ct(zone={zone},table={t2})" if zone is not None else f"ct(table={t2})"
    inside = f"in_port={book.port(P1)}"
    outside = f"in_port={book.port(P2)}"
    for fam in ("ip", "ipv6"):
        book.add(0, 100, [m("in_port", inside), m(None, fam), m("ct_state", "ct_state=-trk")],
                 f"ct(commit{z}),resubmit(,{t1}),{recirc}", twin=False)
        book.add(0, 90, [m("in_port", outside), m(None, fam)], recirc, twin=False)
    book.add(0, 50, [m(None, "arp")], "flood")
    # After ct without a table the pipeline goes on with the ct fields it had.
    book.add(t1, 100, [m("ct_state", "ct_state=-trk")], f"output:{book.port(P3)}")
    book.add(t1, 90, [m("ct_state", "ct_state=+trk")], f"output:{book.port(P4)}")
    book.add(t2, 100, [m("ct_state", "ct_state=+trk+est"), m("in_port", inside)], f"output:{book.port(P2)}")
    book.add(t2, 90, [m("ct_state", "ct_state=+trk+est"), m("in_port", outside)], f"output:{book.port(P1)}")
    book.add(t2, 85, [m("ct_state", "ct_state=+trk+rel")], f"output:{book.port(P1)}")
    book.add(t2, 80, [m("ct_state", "ct_state=+trk+new")], f"output:{book.port(P4)}")
    book.add(t2, 70, [m("ct_state", "ct_state=+trk+inv")], deny(rng, book))
    return {"inside": [P1], "outside": [P2], "zones": None}


PROFILES = {
    "firewall": profile_firewall,
    "zones": profile_zones,
    "marks": profile_marks,
    "twice": profile_twice,
    "clear": profile_clear,
    "nocommit": profile_nocommit,
    "notable": profile_notable,
}


# ---- the case -----------------------------------------------------------------

def traffic(rng, seed, layout):
    """Conversation event lists for a profile's layout."""
    tenants = []
    for inside, outside in zip(layout["inside"], layout["outside"]):
        # With zones, both tenants get the same addresses (the same draws):
        # identical tuples, told apart only by the zone.
        hosts_rng = random.Random(seed * 31 + (0 if layout["zones"] else inside))
        tenants.append((make_hosts(hosts_rng, inside, "10.1.0", "fd00:a", 3),
                        make_hosts(hosts_rng, outside, "172.16.0", "fd00:b", 3)))
    routers = {}
    for inside, outside in tenants:
        for hosts, ip4, ip6 in ((inside, "10.255.0.1", "fd00:ff::1"), (outside, "172.31.0.1", "fd00:fe::1")):
            p = hosts[0].port
            routers[p] = Host(p, f"02:{p + 1:02x}:ee:00:00:fe", ip4, ip6)
    conv = Conversations(rng, routers)
    kinds, weights = list(Conversations.KINDS), list(Conversations.KINDS.values())
    # With two tenants, most conversations happen in both at once (same
    # tuples, same segments): a zone mix-up then shows.
    mirrored = len(tenants) > 1 and rng.random() < 0.7
    out = []
    for n in range(rng.randint(8, 14)):
        kind = rng.choices(kinds, weights)[0]
        i, j = rng.randrange(3), rng.randrange(3)
        wrong_side = rng.random() < 0.2  # opened from the outside
        which = [n % len(tenants)] if not mirrored else list(range(len(tenants)))
        conv_seed = rng.getrandbits(32)
        for t in which:
            inside, outside = tenants[t]
            c, s = (outside[j], inside[i]) if wrong_side else (inside[i], outside[j])
            conv.rng = random.Random(conv_seed)
            out.append(conv.make(kind, c, s))
    return out


def generate(seed, profile=None):
    """The conntrack case for `seed` (same seed: same case)."""
    rng = random.Random(seed)
    name = profile or list(PROFILES)[seed % len(PROFILES)]
    book = RuleBook(rng)
    layout = PROFILES[name](rng, book)
    rules_text, rules = book.render(seed, name)
    events = interleave(rng, traffic(rng, seed, layout))

    flow_of, templates, frames, frame_templates = {}, [], [], []
    per_port_flows = [0] * len(PORTS)
    seqs = {}
    for ev in events:
        if ev.template not in flow_of:
            flow_of[ev.template] = (len(templates), per_port_flows[ev.port])
            per_port_flows[ev.port] += 1
            templates.append({"port": ev.port, "kind": ev.kind, "l4": ev.l4, "malform": None,
                              "aimed_at_line": None, "count": 0, "flow": flow_of[ev.template][1],
                              "notes": []})
        t_id, flow = flow_of[ev.template]
        seq = seqs.get(t_id, 0)
        seqs[t_id] = seq + 1
        tag = gp.make_tag(ev.port, flow & 0xFF, seq) if ev.tagged else b""
        frame = ev.build(tag)
        if len(frame) < gp.MIN_FRAME:
            frame += bytes(gp.MIN_FRAME - len(frame))
        templates[t_id]["count"] += 1
        if ev.note not in templates[t_id]["notes"]:
            templates[t_id]["notes"].append(ev.note)
        frames.append((ev.port, frame))
        frame_templates.append(t_id)
    case = gen_case.Case(seed, list(PORTS), rules, rules_text, frames, templates, frame_templates)
    case.profile = name
    return case


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate one conntrack differential-test case.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="case directory to write")
    ap.add_argument("--profile", choices=sorted(PROFILES), help="default: seed % profiles")
    args = ap.parse_args(argv)
    case = generate(args.seed, args.profile)
    case.write(args.out)
    print(f"{args.out}: profile {case.profile}, {len(case.rules)} rules, {len(case.frames)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
