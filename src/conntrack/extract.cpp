// Connection keys from packets: Open vSwitch 3.1's conn_key_extract and the
// extract_l3_* / extract_l4_* / check_l4_* checks behind it, written anew.
#include "extract.hpp"

#include <rte_ip.h>

#include <cstring>

namespace flowpath {

namespace {

constexpr uint16_t kEthTypeIpv4 = 0x0800;
constexpr uint16_t kEthTypeIpv6 = 0x86dd;
constexpr uint32_t kIpv4HeaderLen = 20;
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint32_t kTcpHeaderLen = 20;
constexpr uint32_t kUdpHeaderLen = 8;
constexpr uint32_t kIcmpHeaderLen = 8;
// Of the transport header an ICMPv4 error quotes, only 8 bytes are required.
constexpr uint32_t kIcmpErrorQuotedL4 = 8;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
uint16_t raw16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

// The Internet checksum of `pseudo` then `data` is right when their
// one's-complement sum is all ones.
bool checksum_ok(const uint8_t* pseudo, size_t pseudo_len, const uint8_t* data, size_t len) {
    uint32_t sum = pseudo_len ? __rte_raw_cksum(pseudo, pseudo_len, 0) : 0;
    sum = __rte_raw_cksum(data, len, sum);
    return __rte_raw_cksum_reduce(sum) == 0xffff;
}

// TCP, UDP and ICMPv6 checksums cover a pseudo header of the addresses, the
// protocol and the transport length (Open vSwitch takes the length from the
// IP header, as here: the data ends where the datagram does).
bool transport_checksum_ok(bool v6, const uint8_t* l3, uint8_t proto, const uint8_t* l4, uint32_t size) {
    uint8_t pseudo[40];
    size_t n;
    if (v6) {
        std::memcpy(pseudo, l3 + 8, 32);
        const uint8_t tail[8] = {static_cast<uint8_t>(size >> 24), static_cast<uint8_t>(size >> 16),
                                 static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size), 0, 0, 0, proto};
        std::memcpy(pseudo + 32, tail, sizeof(tail));
        n = 40;
    } else {
        std::memcpy(pseudo, l3 + 12, 8);
        const uint8_t tail[4] = {0, proto, static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size)};
        std::memcpy(pseudo + 8, tail, sizeof(tail));
        n = 12;
    }
    return checksum_ok(pseudo, n, l4, size);
}

// An IPv4 header (OVS extract_l3_ipv4): long enough, not a fragment, its
// checksum right when asked. `l4` gets the first byte after it.
bool ipv4_header(const uint8_t* l3, uint32_t size, bool validate_checksum, ConnKey& key, const uint8_t** l4) {
    if (size < kIpv4HeaderLen) return false;
    const uint32_t header_len = (l3[0] & 0x0f) * 4u;
    if (header_len < kIpv4HeaderLen || header_len > size) return false;
    if (be16(l3 + 6) & 0x3fff) return false;  // MF or an offset: a fragment
    if (validate_checksum && !checksum_ok(nullptr, 0, l3, header_len)) return false;
    std::memcpy(key.src, l3 + 12, 4);
    std::memcpy(key.dst, l3 + 16, 4);
    key.nw_proto = l3[9];
    key.family_query = static_cast<uint8_t>(AddressFamily::ipv4);
    *l4 = l3 + header_len;
    return true;
}

// An IPv6 header and its extension headers, walked as Open vSwitch's
// parse_ipv6_ext_hdrs does (each must be fully present); any fragment header
// that makes this a fragment fails, as conntrack refuses fragments.
bool ipv6_header(const uint8_t* l3, uint32_t size, ConnKey& key, const uint8_t** l4) {
    if (size < kIpv6HeaderLen) return false;
    const uint8_t* p = l3 + kIpv6HeaderLen;
    uint32_t left = size - kIpv6HeaderLen;
    uint8_t proto = l3[6];
    for (;;) {
        uint32_t length;
        if (proto == 0 || proto == 43 || proto == 60) {  // hop-by-hop, routing, destination options
            length = (p[1] + 1u) * 8;
        } else if (proto == 51) {  // authentication header
            length = (p[1] + 2u) * 4;
        } else if (proto == 44) {  // fragment
            length = 8;
        } else {
            break;
        }
        if (left < 8 || left < length) return false;
        if (proto == 44 && be16(p + 2) != 0) return false;
        proto = p[0];
        p += length;
        left -= length;
    }
    std::memcpy(key.src, l3 + 8, 16);
    std::memcpy(key.dst, l3 + 24, 16);
    key.nw_proto = proto;
    key.family_query = static_cast<uint8_t>(AddressFamily::ipv6);
    *l4 = p;
    return true;
}

bool ports(ConnKey& key, const uint8_t* l4) {
    key.src_port = raw16(l4);
    key.dst_port = raw16(l4 + 2);
    return key.src_port != 0 && key.dst_port != 0;  // port 0 is invalid
}

// An ICMP(v6) query: code 0, keyed by its id and type.
bool icmp_query(ConnKey& key, const uint8_t* l4, bool v6) {
    const uint8_t query = icmp_query_of(v6, l4[0]);
    if (query == kIcmpNone || l4[1] != 0) return false;
    key.src_port = key.dst_port = raw16(l4 + 4);
    key.set_icmp_query(query);
    return true;
}

// The transport part of the header an ICMP error quotes (OVS extract_l4 with
// no `related`): no checksums, no nested errors, and for an IPv4 error only 8
// bytes of TCP required.
bool quoted_l4(ConnKey& key, const uint8_t* l4, uint32_t size, bool v6) {
    switch (key.nw_proto) {
        case kProtoTcp:
            return size >= (v6 ? kTcpHeaderLen : kIcmpErrorQuotedL4) && ports(key, l4);
        case kProtoUdp:
            return size >= kUdpHeaderLen && ports(key, l4);
        case kProtoIcmp:
            if (v6) return true;
            return size >= kIcmpHeaderLen && icmp_query(key, l4, false);
        case kProtoIcmpv6:
            if (!v6) return true;
            return size >= kIcmpHeaderLen && icmp_query(key, l4, true);
        default:
            return true;  // other protocols have no transport key
    }
}

// An ICMP error (type already known to be one): the key of the connection
// whose packet it quotes, reversed. The quoted packet must have come from the
// error's destination.
bool icmp_error(ConnKey& key, const uint8_t* l4, uint32_t size, bool v6) {
    ConnKey inner;
    inner.zone = key.zone;
    const uint8_t* inner_l3 = l4 + 8;
    const uint32_t inner_size = size - 8;
    const uint8_t* inner_l4 = nullptr;
    const bool ok = v6 ? ipv6_header(inner_l3, inner_size, inner, &inner_l4)
                       : ipv4_header(inner_l3, inner_size, false, inner, &inner_l4);
    if (!ok || std::memcmp(inner.src, key.dst, sizeof(key.dst)) != 0) return false;
    if (!quoted_l4(inner, inner_l4, static_cast<uint32_t>(l4 + size - inner_l4), v6)) return false;
    key = inner.reversed();
    return true;
}

}  // namespace

bool extract_conn_key(const CtPacket& packet, uint16_t zone, CtParsed& out) {
    const PacketLayout& layout = packet.layout;
    out.related = false;
    if (!(layout.flags & kLayoutL3) || layout.l3_offset == kNoOffset || layout.l4_offset == kNoOffset) return false;
    if (layout.l2_pad > packet.len) return false;
    const uint32_t end = packet.len - layout.l2_pad;
    if (layout.l4_offset > end || layout.l3_offset > layout.l4_offset) return false;
    const uint8_t* l3 = packet.data + layout.l3_offset;
    const uint32_t l3_size = end - layout.l3_offset;
    const uint8_t* l4 = packet.data + layout.l4_offset;
    const uint32_t size = end - layout.l4_offset;

    ConnKey& key = out.key;
    key = ConnKey{};
    key.zone = zone;
    const uint16_t dl_type = be16(reinterpret_cast<const uint8_t*>(&packet.dl_type));
    const uint8_t* unused_l4;
    bool v6 = false;
    if (dl_type == kEthTypeIpv4) {
        if (packet.checksum & kCtL3Bad) return false;
        if (!ipv4_header(l3, l3_size, !(packet.checksum & kCtL3Good), key, &unused_l4)) return false;
    } else if (dl_type == kEthTypeIpv6) {
        // The parser already walked the extension headers (nw_proto, nw_frag
        // and the L4 offset are its answer).
        if (l3_size < kIpv6HeaderLen || packet.nw_frag) return false;
        std::memcpy(key.src, l3 + 8, 16);
        std::memcpy(key.dst, l3 + 24, 16);
        key.nw_proto = packet.nw_proto;
        key.family_query = static_cast<uint8_t>(AddressFamily::ipv6);
        v6 = true;
    } else {
        return false;
    }
    if (packet.checksum & kCtL4Bad) return false;
    out.l4_type = size > 0 ? l4[0] : 0;
    const bool validate = !(packet.checksum & kCtL4Good);

    switch (key.nw_proto) {
        case kProtoTcp: {
            if (size < kTcpHeaderLen) return false;
            const uint32_t header_len = (l4[12] >> 4) * 4u;
            if (header_len < kTcpHeaderLen || header_len > size) return false;
            if (validate && !transport_checksum_ok(v6, l3, kProtoTcp, l4, size)) return false;
            if (!ports(key, l4)) return false;
            TcpSegment& s = out.tcp;
            s.seq = be32(l4 + 4);
            s.ack = be32(l4 + 8);
            s.flags = be16(l4 + 12) & 0x0fff;
            s.window = be16(l4 + 14);
            s.options = l4 + kTcpHeaderLen;
            s.options_len = header_len - kTcpHeaderLen;
            s.payload = size - header_len;
            return true;
        }
        case kProtoUdp: {
            if (size < kUdpHeaderLen) return false;
            const uint32_t udp_len = be16(l4 + 4);
            if (udp_len < kUdpHeaderLen || udp_len > size) return false;
            // An IPv4 UDP checksum of zero means "none".
            const bool no_checksum = !v6 && raw16(l4 + 6) == 0;
            if (validate && !no_checksum && !transport_checksum_ok(v6, l3, kProtoUdp, l4, size)) return false;
            return ports(key, l4);
        }
        case kProtoIcmp:
        case kProtoIcmpv6: {
            if ((key.nw_proto == kProtoIcmpv6) != v6) return true;  // ICMP over IPv6, ICMPv6 over IPv4: "other"
            if (validate && !(v6 ? transport_checksum_ok(true, l3, kProtoIcmpv6, l4, size)
                                 : checksum_ok(nullptr, 0, l4, size))) {
                return false;
            }
            if (size < kIcmpHeaderLen) return false;
            const uint8_t type = l4[0];
            const bool error = v6 ? (type >= 1 && type <= 4)  // unreachable, too big, time exceeded, parameter
                                  : (type == 3 || type == 4 || type == 5 || type == 11 || type == 12);
            if (error) {
                out.related = icmp_error(key, l4, size, v6);
                return out.related;
            }
            return icmp_query(key, l4, v6);
        }
        default:
            return true;  // other protocols: addresses only
    }
}

}  // namespace flowpath
