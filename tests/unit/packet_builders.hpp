// Byte builders for test frames: Ethernet, VLAN, IPv4/IPv6 (with options
// and extension headers), TCP/UDP/SCTP/ICMP, neighbor discovery and ARP,
// written field by field in network byte order. Header-only, for tests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace flowpath::test_frames {

using Mac = std::array<uint8_t, 6>;
using Ip6 = std::array<uint8_t, 16>;

constexpr Mac kDst = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
constexpr Mac kSrc = {0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
constexpr Mac kMacA = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
constexpr Mac kMacB = {0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
constexpr Ip6 kIp6A = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr Ip6 kIp6B = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
constexpr Ip6 kTarget = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x33};

/// A growing byte string with big-endian writers.
class Bytes {
public:
    Bytes() = default;
    Bytes(std::initializer_list<uint8_t> bytes) : bytes_(bytes) {}

    Bytes& u8(uint8_t v) { bytes_.push_back(v); return *this; }
    Bytes& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
    Bytes& u32(uint32_t v) { return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v)); }
    template <size_t N>
    Bytes& arr(const std::array<uint8_t, N>& a) { bytes_.insert(bytes_.end(), a.begin(), a.end()); return *this; }
    Bytes& zeros(size_t n) { bytes_.resize(bytes_.size() + n); return *this; }
    Bytes& add(const Bytes& other) { bytes_.insert(bytes_.end(), other.bytes_.begin(), other.bytes_.end()); return *this; }
    Bytes& set16(size_t offset, uint16_t v) {
        bytes_.at(offset) = static_cast<uint8_t>(v >> 8);
        bytes_.at(offset + 1) = static_cast<uint8_t>(v);
        return *this;
    }
    Bytes prefix(size_t n) const { Bytes out; out.bytes_.assign(bytes_.begin(), bytes_.begin() + n); return out; }

    size_t size() const { return bytes_.size(); }
    uint8_t& operator[](size_t i) { return bytes_.at(i); }
    const std::vector<uint8_t>& vec() const { return bytes_; }
    std::vector<uint8_t>& vec() { return bytes_; }

private:
    std::vector<uint8_t> bytes_;
};

inline Bytes operator+(Bytes a, const Bytes& b) { return a.add(b); }

inline Bytes eth(uint16_t type) { return Bytes().arr(kDst).arr(kSrc).u16(type); }

inline Bytes vlan_tag(uint16_t tpid, uint16_t tci) { return Bytes().u16(tpid).u16(tci); }

inline Bytes eth_tagged(std::initializer_list<std::pair<uint16_t, uint16_t>> tags, uint16_t type) {
    Bytes b = Bytes().arr(kDst).arr(kSrc);
    for (const auto& [tpid, tci] : tags) b.add(vlan_tag(tpid, tci));
    return b.u16(type);
}

struct Ipv4Opts {
    uint8_t tos = 0;
    uint8_t ttl = 64;
    uint16_t frag_off = 0;
    uint32_t src = 0x0a000001;
    uint32_t dst = 0x0a000002;
    Bytes options;                 // multiple of 4 bytes
    int tot_len = -1;              // override
    int ihl = -1;                  // override (words)
};

inline Bytes ipv4(uint8_t proto, const Bytes& payload, const Ipv4Opts& o = {}) {
    const size_t header_len = 20 + o.options.size();
    const int ihl = o.ihl >= 0 ? o.ihl : static_cast<int>(header_len / 4);
    const int tot = o.tot_len >= 0 ? o.tot_len : static_cast<int>(header_len + payload.size());
    Bytes b;
    b.u8(static_cast<uint8_t>(0x40 | ihl)).u8(o.tos).u16(static_cast<uint16_t>(tot)).u16(0x1234).u16(o.frag_off);
    b.u8(o.ttl).u8(proto).u16(0).u32(o.src).u32(o.dst).add(o.options).add(payload);
    return b;
}

struct Ipv6Opts {
    uint8_t traffic_class = 0;
    uint32_t label = 0;
    uint8_t hop_limit = 64;
    Ip6 src = kIp6A;
    Ip6 dst = kIp6B;
    int payload_len = -1;          // override
};

inline Bytes ipv6(uint8_t next, const Bytes& payload, const Ipv6Opts& o = {}) {
    const int plen = o.payload_len >= 0 ? o.payload_len : static_cast<int>(payload.size());
    Bytes b;
    b.u32(0x60000000u | uint32_t{o.traffic_class} << 20 | (o.label & 0xfffff));
    b.u16(static_cast<uint16_t>(plen)).u8(next).u8(o.hop_limit).arr(o.src).arr(o.dst).add(payload);
    return b;
}

/// Hop-by-hop / routing / destination options header of (len_units+1)*8 bytes.
inline Bytes ext6(uint8_t next, uint8_t len_units) { return Bytes().u8(next).u8(len_units).zeros((len_units + 1u) * 8 - 2); }
inline Bytes ah6(uint8_t next, uint8_t len_units) { return Bytes().u8(next).u8(len_units).zeros((len_units + 2u) * 4 - 2); }
inline Bytes frag6(uint8_t next, uint16_t offset_flags) { return Bytes().u8(next).u8(0).u16(offset_flags).u32(0xabcd); }

inline Bytes tcp(uint16_t sport, uint16_t dport, uint16_t flags, uint8_t data_offset = 5) {
    Bytes b = Bytes().u16(sport).u16(dport).u32(1).u32(0);
    b.u16(static_cast<uint16_t>(data_offset << 12 | (flags & 0x0fff))).u16(1024).u16(0).u16(0);
    if (data_offset > 5) b.zeros((data_offset - 5u) * 4);
    return b;
}
inline Bytes udp(uint16_t sport, uint16_t dport) { return Bytes().u16(sport).u16(dport).u16(8).u16(0); }
inline Bytes sctp(uint16_t sport, uint16_t dport) { return Bytes().u16(sport).u16(dport).u32(7).u32(0); }
inline Bytes icmp(uint8_t type, uint8_t code) { return Bytes().u8(type).u8(code).u16(0).u32(0); }

inline Bytes lla_opt(uint8_t type, const Mac& mac) { return Bytes().u8(type).u8(1).arr(mac); }
inline Bytes nd(uint8_t type, const Bytes& options, uint8_t code = 0) {
    return Bytes().u8(type).u8(code).u16(0).u32(0).arr(kTarget).add(options);
}

inline Bytes arp(uint16_t op, uint16_t hrd = 1, uint16_t pro = 0x0800, uint8_t hln = 6, uint8_t pln = 4) {
    return Bytes().u16(hrd).u16(pro).u8(hln).u8(pln).u16(op).arr(kMacA).u32(0xc0a80001).arr(kMacB).u32(0xc0a80002);
}

}  // namespace flowpath::test_frames
