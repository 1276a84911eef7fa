"""Random packets for the differential test: specs, frames and the tag.

A *spec* is a plain dict describing one packet's headers (kind, VLAN tags,
addresses, ports, ...). gen_case.py makes specs at random, aims some of them
at rules (so they hit), and turns each into a scapy packet here. Every frame
ends with an 8-byte *tag* naming its input port, its flow (template) and its
sequence number within that flow, so compare.py can tell which input a frame
came from and check per-flow order. The tag is laid out as an ICMPv6 ND
option (type 0xfe, length 1) so that it stays a valid option behind
neighbor discovery messages; elsewhere it is just payload.

A share of templates are malformed (truncated, bad lengths, bad IHL, ...);
truncated frames lose their tag.
"""

import ipaddress
import logging
import struct

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (ARP, ICMP, IP, LLC, SCTP, SNAP, TCP, UDP, Dot1Q, Dot3,  # noqa: E402
                       Ether, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA,
                       ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr,
                       ICMPv6Unknown, IPOption_NOP, IPOption_Router_Alert,
                       IPOption_RR, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, conf)

conf.verb = 0

TAG_MAGIC = b"\xfe\x01FP"
TAG_LEN = 8
MIN_FRAME = 14

KINDS = ("eth", "llc", "arp", "ip4", "ip6")
ETH_TYPES = (0x88B5, 0x88B6, 0x9000, 0x1234, 0x0842)
IP4_OTHER_PROTOS = (47, 89, 2, 50, 255)
IP6_OTHER_PROTOS = (59, 47, 50, 103)


def make_tag(port, flow, seq):
    """The 8 trailing bytes identifying (input port index, flow, seq)."""
    return TAG_MAGIC + struct.pack("!BBH", port, flow, seq)


def parse_tag(frame):
    """(port, flow, seq) from a frame's trailing tag, or None if it has none."""
    if len(frame) >= MIN_FRAME + TAG_LEN and frame[-TAG_LEN:-4] == TAG_MAGIC:
        return struct.unpack("!BBH", frame[-4:])
    return None


# ---- value pools ------------------------------------------------------------

class Pools:
    """Per-case values shared by rules and packets, so packets hit rules."""

    def __init__(self, rng):
        self.macs = [0x020000000000 | rng.getrandbits(40) for _ in range(5)]
        self.macs += [0xFFFFFFFFFFFF, 0x01005E000000 | rng.getrandbits(23),
                      0x333300000000 | rng.getrandbits(32)]
        net_a = (10 << 24) | (rng.randrange(256) << 16) | (rng.randrange(256) << 8)
        net_b = (192 << 24) | (168 << 16) | (rng.randrange(256) << 8)
        self.ip4 = [net_a | h for h in (1, 2, rng.randrange(3, 255), 255)]
        self.ip4 += [net_b | h for h in (1, rng.randrange(2, 255))]
        self.ip4 += [rng.getrandbits(32), 0]
        pfx_a = (0x20010DB8 << 96) | (rng.getrandbits(16) << 80)
        pfx_b = 0xFE80 << 112
        self.ip6 = [pfx_a | rng.getrandbits(64) for _ in range(3)]
        self.ip6 += [pfx_a | 1, pfx_b | rng.getrandbits(64), pfx_b | 1,
                     rng.getrandbits(128), 0xFF02 << 112 | 1]
        self.l4ports = [80, 443, 53, 22, 8080, 0, 65535, rng.randrange(1024, 65535),
                        rng.randrange(1, 1024)]
        self.vids = [rng.randrange(1, 4095) for _ in range(3)] + [0, 4095]
        self.labels = [0, rng.getrandbits(20), rng.getrandbits(20), 0xFFFFF]
        self.ttls = [0, 1, 2, 64, 255, rng.randrange(3, 255)]
        self.dscps = [0, 10, 46, rng.randrange(64)]
        self.tcp_flags = [0x002, 0x012, 0x010, 0x018, 0x011, 0x004, 0x0FF, 0x100,
                          0xE00, 0x029]


def pick(rng, pool, bits, p_pool=0.85):
    """A pool value most of the time, otherwise any `bits`-wide value."""
    if rng.random() < p_pool:
        return rng.choice(pool)
    return rng.getrandbits(bits)


# ---- specs ------------------------------------------------------------------

def random_vlans(rng, pools):
    """0-2 tags, outermost first: [(tpid, pcp, dei, vid)]."""
    r = rng.random()
    def tag(tpid):
        return [tpid, rng.randrange(8), int(rng.random() < 0.1), pick(rng, pools.vids, 12)]
    if r < 0.55:
        return []
    if r < 0.80:
        return [tag(0x8100)]
    if r < 0.85:
        return [tag(0x88A8)]
    if r < 0.95:
        return [tag(0x88A8), tag(0x8100)]
    return [tag(0x8100), tag(0x8100)]


def random_spec(rng, pools, kind=None, l4=None):
    """A random packet spec; `kind`/`l4` pin the protocol when given."""
    if kind is None:
        kind = rng.choices(KINDS, weights=(6, 3, 12, 45, 34))[0]
    s = {"kind": kind, "vlans": random_vlans(rng, pools),
         "dl_src": pick(rng, pools.macs, 48), "dl_dst": pick(rng, pools.macs, 48),
         "filler": bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 0, 4, 18, 40, 120)))),
         "malform": None}
    if kind == "eth":
        s["dl_type"] = rng.choice(ETH_TYPES)
    elif kind == "llc":
        s["snap"] = rng.random() < 0.4
    elif kind == "arp":
        s.update(arp_op=rng.choice((1, 1, 2, 2, 3, 0x101)),
                 arp_spa=pick(rng, pools.ip4, 32), arp_tpa=pick(rng, pools.ip4, 32),
                 arp_sha=pick(rng, pools.macs, 48),
                 arp_tha=rng.choice((0, pick(rng, pools.macs, 48))))
    else:
        if l4 is None:
            if kind == "ip4":
                l4 = rng.choices(("tcp", "udp", "sctp", "icmp", "other"),
                                 weights=(35, 30, 8, 17, 10))[0]
            else:
                l4 = rng.choices(("tcp", "udp", "sctp", "icmp6", "other"),
                                 weights=(30, 25, 8, 30, 7))[0]
        s.update(l4=l4, dscp=pick(rng, pools.dscps, 6), ecn=rng.randrange(4),
                 ttl=pick(rng, pools.ttls, 8),
                 frag=rng.choices(("no", "first", "later"), weights=(85, 8, 7))[0])
        if kind == "ip4":
            s.update(nw_src=pick(rng, pools.ip4, 32), nw_dst=pick(rng, pools.ip4, 32),
                     ip_options=rng.random() < 0.15,
                     proto=rng.choice(IP4_OTHER_PROTOS))
        else:
            s.update(ipv6_src=pick(rng, pools.ip6, 128), ipv6_dst=pick(rng, pools.ip6, 128),
                     ipv6_label=pick(rng, pools.labels, 20),
                     ext=[h for h in ("hop", "dst", "rout") if rng.random() < 0.12],
                     proto=rng.choice(IP6_OTHER_PROTOS))
        if l4 in ("tcp", "udp", "sctp"):
            s.update(tp_src=pick(rng, pools.l4ports, 16), tp_dst=pick(rng, pools.l4ports, 16))
            if l4 == "tcp":
                s["tcp_flags"] = pick(rng, pools.tcp_flags, 12)
            if l4 == "udp":
                s["udp_csum0"] = kind == "ip4" and rng.random() < 0.2
        elif l4 == "icmp":
            s.update(icmp_type=rng.choice((0, 8, 3, 11, 5, rng.randrange(256))),
                     icmp_code=rng.choice((0, 0, 1, 3, rng.randrange(256))))
        elif l4 == "icmp6":
            s.update(icmp_type=rng.choice((135, 135, 136, 136, 128, 129, 1, 133, 134,
                                           rng.randrange(256))),
                     icmp_code=rng.choice((0, 0, 0, 0, 1, rng.randrange(256))),
                     nd_target=pick(rng, pools.ip6, 128),
                     nd_opts=rng.choice(((), ("sll",), ("tll",), ("sll", "tll"))),
                     nd_sll=pick(rng, pools.macs, 48), nd_tll=pick(rng, pools.macs, 48))
        if rng.random() < 0.05 and l4 in ("tcp", "udp", "icmp", "icmp6", "sctp"):
            s["bad_csum"] = rng.getrandbits(16) or 1
    return s


# ---- building ---------------------------------------------------------------

def mac(v):
    return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))


def ip4(v):
    return str(ipaddress.IPv4Address(v))


def ip6(v):
    return str(ipaddress.IPv6Address(v))


def _l2(s):
    """Ethernet and VLAN layers of a spec, ending with the inner ethertype."""
    inner = {"arp": 0x0806, "ip4": 0x0800, "ip6": 0x86DD}.get(s["kind"], s.get("dl_type"))
    vlans = s["vlans"]
    types = [v[0] for v in vlans] + [inner]
    pkt = Ether(dst=mac(s["dl_dst"]), src=mac(s["dl_src"]), type=types[0])
    for i, (_, pcp, dei, vid) in enumerate(vlans):
        pkt = pkt / Dot1Q(prio=pcp, id=dei, vlan=vid, type=types[i + 1])
    return pkt


def _l4(s, later):
    """The transport layer (or fragment data) of an IP spec."""
    l4 = s["l4"]
    if later:
        return Raw(bytes(range(16)))
    if l4 == "tcp":
        f = s["tcp_flags"]
        return TCP(sport=s["tp_src"], dport=s["tp_dst"], flags=f & 0x1FF,
                   reserved=(f >> 9) & 7, seq=0x1000, window=512)
    if l4 == "udp":
        return UDP(sport=s["tp_src"], dport=s["tp_dst"])
    if l4 == "sctp":
        return SCTP(sport=s["tp_src"], dport=s["tp_dst"], tag=0x1234)
    if l4 == "icmp":
        return ICMP(type=s["icmp_type"], code=s["icmp_code"])
    if l4 == "icmp6":
        t, c = s["icmp_type"], s["icmp_code"]
        opts = None
        if t == 135:
            pkt = ICMPv6ND_NS(code=c, tgt=ip6(s["nd_target"]))
        elif t == 136:
            pkt = ICMPv6ND_NA(code=c, tgt=ip6(s["nd_target"]), R=0, S=1, O=1)
        elif t == 128:
            return ICMPv6EchoRequest(code=c, id=7, seq=1)
        elif t == 129:
            return ICMPv6EchoReply(code=c, id=7, seq=1)
        else:
            return ICMPv6Unknown(type=t, code=c)
        for o in s["nd_opts"]:
            opt = (ICMPv6NDOptSrcLLAddr(lladdr=mac(s["nd_sll"])) if o == "sll"
                   else ICMPv6NDOptDstLLAddr(lladdr=mac(s["nd_tll"])))
            opts = opt if opts is None else opts / opt
        return pkt if opts is None else pkt / opts
    return Raw(b"\x00" * 8)  # some other protocol: opaque bytes


def _proto_number(s):
    return {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmp6": 58}.get(s["l4"], s["proto"])


def build(s, tag):
    """The scapy packet of spec `s`, with `tag` (bytes, may be empty) last."""
    kind = s["kind"]
    nd = kind == "ip6" and s["l4"] == "icmp6" and s["icmp_type"] in (135, 136)
    tail = Raw((b"" if nd else s["filler"]) + tag) if (tag or s["filler"]) else None
    if kind == "llc":
        inner = (LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
                 / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)
                 if s["snap"] else LLC(dsap=0x42, ssap=0x42, ctrl=3))
        pkt = Dot3(dst=mac(s["dl_dst"]), src=mac(s["dl_src"])) / inner
        return pkt / tail if tail else pkt
    pkt = _l2(s)
    if kind == "eth":
        return pkt / tail if tail else pkt
    if kind == "arp":
        pkt = pkt / ARP(op=s["arp_op"], hwsrc=mac(s["arp_sha"]), psrc=ip4(s["arp_spa"]),
                        hwdst=mac(s["arp_tha"]), pdst=ip4(s["arp_tpa"]))
        return pkt / tail if tail else pkt
    frag = s["frag"]
    later = frag == "later"
    tos = (s["dscp"] << 2) | s["ecn"]
    if kind == "ip4":
        opts = []
        if s["ip_options"]:
            opts = [IPOption_Router_Alert(), IPOption_NOP(), IPOption_NOP(),
                    IPOption_NOP(), IPOption_NOP(), IPOption_RR(routers=["1.2.3.4"])]
        flags, offset = ("DF", 0)
        if frag == "first":
            flags, offset = ("MF", 0)
        elif later:
            flags, offset = ("MF" if s["ttl"] & 1 else 0), 1 + s["ttl"] % 180
        l3 = IP(src=ip4(s["nw_src"]), dst=ip4(s["nw_dst"]), tos=tos, ttl=s["ttl"],
                id=0x4242, flags=flags, frag=offset, proto=_proto_number(s), options=opts)
    else:
        l3 = IPv6(src=ip6(s["ipv6_src"]), dst=ip6(s["ipv6_dst"]), tc=tos,
                  fl=s["ipv6_label"], hlim=s["ttl"])
        for h in s["ext"]:
            l3 = l3 / {"hop": IPv6ExtHdrHopByHop, "dst": IPv6ExtHdrDestOpt,
                       "rout": IPv6ExtHdrRouting}[h]()
        if frag != "no":
            l3 = l3 / IPv6ExtHdrFragment(nh=_proto_number(s), id=0x4242, m=int(frag == "first"),
                                         offset=(37 if later else 0))
        elif s["l4"] == "other":
            # scapy only fills nh for layers it knows; state the protocol.
            last = l3.lastlayer()
            last.nh = s["proto"]
    pkt = pkt / l3 / _l4(s, later)
    if tail:
        pkt = pkt / tail
    if s.get("udp_csum0") and UDP in pkt:
        pkt[UDP].chksum = 0
    if s.get("bad_csum") and not later:
        for layer in (TCP, UDP, ICMP, SCTP):
            if layer in pkt and (layer is not UDP or not s.get("udp_csum0")):
                pkt[layer].chksum = s["bad_csum"]
        if s["l4"] == "icmp6" and pkt.lastlayer() is not None:
            for layer in pkt.layers():
                if layer.__name__.startswith("ICMPv6") and hasattr(pkt[layer], "cksum"):
                    pkt[layer].cksum = s["bad_csum"]
                    break
    return pkt


def choose_malformation(rng, s):
    """Pick a damage that applies to spec `s` (adjusting `s` so it does)."""
    options = ["trunc", "trunc"]
    kind, l4 = s["kind"], s.get("l4")
    if kind == "ip4":
        options += ["ip4_totlen", "ip4_ihl"]
    elif kind == "ip6":
        options += ["ip6_plen", "ip6_ext_len"]
        if l4 == "icmp6" and s["icmp_type"] in (135, 136):
            options += ["nd_opt0", "nd_opt0"]
    elif kind == "arp":
        options += ["arp_len", "arp_len"]
    if l4 == "tcp" and s.get("frag") != "later":
        options.append("tcp_doff")
    how = rng.choice(options)
    if how == "ip6_ext_len" and not s["ext"]:
        s["ext"] = ["dst"]
    if how == "nd_opt0" and not s["nd_opts"]:
        s["nd_opts"] = ("sll",)
    s["malform"] = how
    return how


def _offsets(pkt, frame):
    """(l3 offset, l4 offset) of a built packet; None where absent."""
    def off(layer):
        if layer in pkt:
            return len(frame) - len(bytes(pkt[layer]))
        return None
    l3 = off(IP) if IP in pkt else off(IPv6) if IPv6 in pkt else off(ARP)
    l4 = None
    for layer in (TCP, UDP, SCTP, ICMP):
        if layer in pkt:
            l4 = off(layer)
            break
    if l4 is None and IPv6 in pkt:
        for layer in pkt.layers():
            if layer.__name__.startswith("ICMPv6"):
                l4 = off(layer)
                break
    return l3, l4


def malform(s, pkt, frame, rng_state):
    """Damage `frame` as spec `s` asks; `rng_state` (an int) picks details so
    every instance of one template is damaged the same way."""
    how = s["malform"]
    b = bytearray(frame)
    l3, l4 = _offsets(pkt, frame)
    pick_ = rng_state
    if how == "ip4_totlen" and IP in pkt:
        real = len(b) - l3
        new = (real + 40, (b[l3] & 0xF) * 4 - 2, 0, max(real - 10, 0), 0xFFFF)[pick_ % 5]
        b[l3 + 2:l3 + 4] = struct.pack("!H", new & 0xFFFF)
        return bytes(b)
    if how == "ip4_ihl" and IP in pkt:
        b[l3] = (b[l3] & 0xF0) | (0, 4, 15, 3)[pick_ % 4]
        return bytes(b)
    if how == "ip6_plen" and IPv6 in pkt:
        real = len(b) - l3 - 40
        new = (real + 60, 2, 0, max(real - 12, 0))[pick_ % 4]
        b[l3 + 4:l3 + 6] = struct.pack("!H", new)
        return bytes(b)
    if how == "ip6_ext_len" and IPv6 in pkt and s.get("ext"):
        b[l3 + 41] = 0xF0  # first extension header claims ~2 KB
        return bytes(b)
    if how == "tcp_doff" and TCP in pkt and l4 is not None:
        b[l4 + 12] = ((0, 3, 4, 15)[pick_ % 4] << 4) | (b[l4 + 12] & 0x0F)
        return bytes(b)
    if how == "arp_len" and ARP in pkt:
        field = (0, 2, 4, 5)[pick_ % 4]  # hrd, pro, hln, pln
        if field == 0:
            b[l3:l3 + 2] = b"\x00\x06"
        elif field == 2:
            b[l3 + 2:l3 + 4] = b"\x86\xdd"
        else:
            b[l3 + field] = 8
        return bytes(b)
    if how == "nd_opt0" and l4 is not None and s.get("l4") == "icmp6" \
            and s["icmp_type"] in (135, 136) and len(b) >= l4 + 24 + 8:
        b[l4 + 24 + 1] = 0  # first option's length
        return bytes(b)
    # Anything else (or a damage that does not apply): truncate.
    lo = MIN_FRAME
    hi = len(b) - TAG_LEN  # drop at least the tag
    if hi <= lo:
        return bytes(b[:max(lo, len(b) - 1)]) if len(b) > lo else bytes(b)
    points = [x for x in (l3, l4) if x is not None and lo <= x < hi]
    cut = lo + pick_ % (hi - lo)
    if points and pick_ % 3:
        base = points[pick_ % len(points)]
        cut = min(hi - 1, base + pick_ % 12)
    return bytes(b[:max(lo, cut)])


def frame_of(s, tag, damage_seed=0):
    """Bytes of one instance of spec `s` carrying `tag`."""
    pkt = build(s, tag)
    frame = bytes(pkt)
    if s.get("malform"):
        frame = malform(s, pkt, frame, damage_seed)
    if len(frame) < MIN_FRAME:
        frame = frame + b"\x00" * (MIN_FRAME - len(frame))
    return frame
