// Random test frames over small value pools (so that rules written over the
// same pools hit them): Ethernet with zero, one or two VLAN tags, ARP, IPv4
// (options, first and later fragments, protocols 0/1/6/17/47/132), IPv6
// (extension headers, fragments, ICMPv6 with ND), and a share of truncated
// and malformed ones. Header-only, for the megaflow property tests.
#pragma once

#include <cstdint>
#include <random>

#include "packet_builders.hpp"

namespace flowpath::test_frames {

/// Rules (without table and priority) whose matches and rewrites the
/// frames of FrameGen meet often: rewrites that depend on the packet's own
/// values (ICMP type and code, TOS, TTL, ports, ARP, ND, VLAN).
inline constexpr const char* kRulesOverFramePools[] = {
    "icmp,actions=set_field:3->icmp_type,output:p1",
    "icmp,icmp_type=8,actions=set_field:1->icmp_code,output:p2",
    "icmp6,actions=set_field:1->icmpv6_code,output:p2",
    "icmp6,icmp_type=128,actions=set_field:129->icmpv6_type,output:p3",
    "ip,nw_dst=10.0.1.0/24,actions=mod_nw_tos:8,output:p2",
    "ip,actions=dec_ttl,output:p3",
    "ip,nw_src=10.0.0.1,actions=mod_nw_dst:10.0.2.2,output:p1",
    "ipv6,actions=set_field:2001:db8::9->ipv6_src,output:p3",
    "ipv6,actions=mod_nw_ecn:1,output:p1",
    "arp,actions=set_field:10.0.0.9->arp_tpa,output:p1",
    "arp,arp_op=1,actions=set_field:2->arp_op,output:p2",
    "udp,tp_dst=53,actions=mod_tp_dst:99,output:p2",
    "tcp,actions=mod_tp_src:7,output:p3",
    "icmp6,icmp_type=135,actions=set_field:fe80::1->nd_target,output:p2",
    "dl_vlan=10,actions=strip_vlan,output:p3",
};

/// The pools the frames draw from: IPv4 sources 10.0.0.0-3, destinations
/// 10.0.{0-7}.{0-3}; source ports 1000-1002; destination ports 53 and 80-82;
/// ICMP types 0/8/135/136 (ND for ICMPv6), codes 0/1; VLAN IDs 10 and 11.
class FrameGen {
public:
    explicit FrameGen(uint32_t seed) : rng_(seed) {}

    /// One frame; about one in `damaged_one_in` is truncated or malformed
    /// (0: never).
    Bytes frame(uint32_t damaged_one_in = 8) {
        Bytes out = l2(inner());
        if (damaged_one_in != 0 && pick(damaged_one_in) == 0) damage(out);
        return out;
    }

    uint32_t pick(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
    std::mt19937& rng() { return rng_; }

private:
    /// The ethertype and what follows it.
    struct Inner {
        uint16_t type;
        Bytes payload;
    };

    Inner inner() {
        switch (pick(10)) {
            case 0: return {0x0806, arp(kArpOps[pick(4)])};
            case 1: return {0x88cc, Bytes().zeros(46)};
            case 2: case 3: return {0x86dd, ipv6_packet()};
            default: return {0x0800, ipv4_packet()};
        }
    }

    Bytes l2(const Inner& in) {
        switch (pick(6)) {
            case 0: return eth_tagged({{0x8100, vlan_tci()}}, in.type) + in.payload;
            case 1: return eth_tagged({{0x88a8, vlan_tci()}, {0x8100, vlan_tci()}}, in.type) + in.payload;
            default: return eth(in.type) + in.payload;
        }
    }

    uint16_t vlan_tci() { return static_cast<uint16_t>((10 + pick(2)) | pick(2) << 13); }

    Bytes transport(uint8_t proto, bool v6) {
        const uint16_t sport = static_cast<uint16_t>(1000 + pick(3));
        const uint16_t dport = static_cast<uint16_t>(pick(2) ? 53 : 80 + pick(3));
        switch (proto) {
            case 6: return tcp(sport, dport, static_cast<uint16_t>(pick(2) ? 0x02 : 0x12));
            case 17: return udp(sport, dport);
            case 132: return sctp(sport, dport);
            case 1: return icmp(pick(2) ? 8 : 0, static_cast<uint8_t>(pick(2)));
            case 58:
                if (v6 && pick(2)) {
                    const uint8_t type = pick(2) ? 135 : 136;
                    return nd(type, pick(2) ? lla_opt(type == 135 ? 1 : 2, kMacA) : Bytes(),
                              static_cast<uint8_t>(pick(4) == 0));
                }
                return icmp(pick(2) ? 128 : 129, static_cast<uint8_t>(pick(2)));
            default: return Bytes().zeros(12);
        }
    }

    Bytes ipv4_packet() {
        static constexpr uint8_t kProtos[] = {17, 17, 6, 6, 1, 1, 132, 0, 47};
        const uint8_t proto = kProtos[pick(9)];
        Ipv4Opts o;
        o.src = 0x0a000000 | pick(4);
        o.dst = 0x0a000000 | pick(8) << 8 | pick(4);
        o.ttl = static_cast<uint8_t>(pick(3));
        o.tos = static_cast<uint8_t>(pick(2) << 2 | pick(4) / 3);
        static constexpr uint16_t kFragOffs[] = {0, 0, 0, 0, 0, 0x4000, 0x2000, 0x2000, 0x0010};
        o.frag_off = kFragOffs[pick(9)];
        if (pick(8) == 0) o.options = Bytes().u8(1).u8(1).u8(1).u8(0);
        return ipv4(proto, transport(proto, false), o);
    }

    Bytes ipv6_packet() {
        static constexpr uint8_t kProtos[] = {17, 6, 58, 58, 132, 0};
        const uint8_t proto = kProtos[pick(6)];
        Ipv6Opts o;
        o.src = kIp6A;
        o.dst = pick(2) ? kIp6A : kIp6B;
        o.dst[15] = static_cast<uint8_t>(pick(3));
        o.hop_limit = static_cast<uint8_t>(pick(3));
        o.traffic_class = static_cast<uint8_t>(pick(2) << 2);
        o.label = pick(2);
        Bytes l4 = transport(proto, true);
        switch (pick(6)) {
            case 0: return ipv6(0, ext6(proto, 0) + l4, o);  // hop-by-hop
            case 1: return ipv6(44, frag6(proto, 0x0001) + l4, o);  // first fragment
            case 2: return ipv6(44, frag6(proto, 0x0010) + l4, o);  // later fragment
            default: return ipv6(proto, l4, o);
        }
    }

    /// Truncates the frame or breaks one of its length fields.
    void damage(Bytes& frame) {
        switch (pick(3)) {
            case 0: frame = frame.prefix(pick(static_cast<uint32_t>(frame.size()))); break;
            case 1:  // a length or header-length byte of the L3 header (no VLAN: offset 14)
                if (frame.size() > 18) frame[14 + pick(4)] = static_cast<uint8_t>(rng_());
                break;
            default:  // a byte of the transport header
                if (frame.size() > 40) frame[34 + pick(6)] ^= static_cast<uint8_t>(1u << pick(8));
                break;
        }
    }

    static constexpr uint16_t kArpOps[] = {0, 1, 2, 0x101};
    std::mt19937 rng_;
};

}  // namespace flowpath::test_frames
