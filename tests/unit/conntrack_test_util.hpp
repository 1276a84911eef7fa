// Frames for the connection-tracking tests: IPv4/IPv6 TCP, UDP, ICMP queries
// and errors with correct checksums, parsed by the real parser into the
// FlowKey and PacketLayout a worker would hand the tracker; and a harness
// that runs ct actions on one shard with a hand-driven clock.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "flowpath/conntrack.hpp"
#include "flowpath/packet.hpp"
#include "packet_builders.hpp"

namespace flowpath::ct_test {

using test_frames::Bytes;

// ---- Checksums ----

inline uint32_t sum_words(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
    if (n & 1) sum += uint32_t{p[n - 1]} << 8;
    return sum;
}
inline uint16_t finish(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

/// One parsed frame and the tracker's view of it.
struct Frame {
    std::vector<uint8_t> bytes;
    FlowKey key{};
    PacketLayout layout;
    uint8_t checksum_flags = 0;

    CtPacket packet() const {
        return CtPacket::from(key, bytes.data(), static_cast<uint32_t>(bytes.size()), layout, checksum_flags);
    }
};

/// Ethernet + `l3` (an IPv4 or IPv6 packet built by test_frames), with every
/// checksum filled in, parsed.
inline Frame frame(uint16_t ethertype, Bytes l3, bool fix_checksums = true) {
    const bool v6 = ethertype == 0x86dd;
    if (fix_checksums) {
        std::vector<uint8_t>& b = l3.vec();
        size_t l4 = 0;
        uint8_t proto = 0;
        if (!v6) {
            const size_t ihl = (b[0] & 0x0f) * 4u;
            b[10] = b[11] = 0;
            const uint16_t c = finish(sum_words(b.data(), ihl));
            b[10] = static_cast<uint8_t>(c >> 8);
            b[11] = static_cast<uint8_t>(c);
            l4 = ihl;
            proto = b[9];
            const bool fragment = (uint32_t{b[6]} << 8 | b[7]) & 0x3fff;
            if (fragment) proto = 0;  // no transport checksum over a fragment
        } else {
            l4 = 40;
            proto = b[6];
        }
        const size_t len = b.size() - l4;
        size_t field = 0;
        if (proto == 6) field = 16;
        else if (proto == 17) field = 6;
        else if (proto == 1 || proto == 58) field = 2;
        if (field && len >= field + 2) {
            b[l4 + field] = b[l4 + field + 1] = 0;
            uint32_t sum = 0;
            if (proto != 1) {  // a pseudo header for all but ICMPv4
                if (v6) {
                    sum = sum_words(&b[8], 32);
                    sum += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff) + proto;
                } else {
                    sum = sum_words(&b[12], 8) + proto + static_cast<uint32_t>(len);
                }
            }
            uint16_t c = finish(sum_words(&b[l4], len, sum));
            if (proto == 17 && c == 0) c = 0xffff;
            b[l4 + field] = static_cast<uint8_t>(c >> 8);
            b[l4 + field + 1] = static_cast<uint8_t>(c);
        }
    }
    Frame f;
    f.bytes = test_frames::eth(ethertype).add(l3).vec();
    parse_flow_key(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), 1, f.key, f.layout);
    return f;
}

inline uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}

/// A TCP segment's fields.
struct Seg {
    Seg(uint16_t flags_, uint32_t seq_, uint32_t ack_, uint16_t window_ = 65535, uint32_t payload_ = 0,
        Bytes options_ = {})
        : flags(flags_), seq(seq_), ack(ack_), window(window_), payload(payload_), options(std::move(options_)) {}
    uint16_t flags;
    uint32_t seq;
    uint32_t ack;
    uint16_t window;
    uint32_t payload;
    Bytes options;  // padded to 4 bytes with no-ops by the builder
};

inline Bytes tcp_header(uint16_t sport, uint16_t dport, const Seg& s) {
    Bytes opts = s.options;
    while (opts.size() % 4) opts.u8(1);
    const uint8_t offset = static_cast<uint8_t>(5 + opts.size() / 4);
    Bytes b;
    b.u16(sport).u16(dport).u32(s.seq).u32(s.ack);
    b.u16(static_cast<uint16_t>(offset << 12 | (s.flags & 0x0fff))).u16(s.window).u16(0).u16(0);
    b.add(opts).zeros(s.payload);
    return b;
}

/// The window scale option (kind 3).
inline Bytes wscale_option(uint8_t shift) { return Bytes().u8(1).u8(3).u8(3).u8(shift); }

inline Frame tcp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const Seg& s) {
    test_frames::Ipv4Opts o;
    o.src = src;
    o.dst = dst;
    return frame(0x0800, test_frames::ipv4(6, tcp_header(sport, dport, s), o));
}

inline Frame udp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, size_t payload = 4) {
    test_frames::Ipv4Opts o;
    o.src = src;
    o.dst = dst;
    Bytes u = Bytes().u16(sport).u16(dport).u16(static_cast<uint16_t>(8 + payload)).u16(0).zeros(payload);
    return frame(0x0800, test_frames::ipv4(17, u, o));
}

inline Frame icmp4(uint32_t src, uint32_t dst, uint8_t type, uint8_t code, uint16_t id, uint16_t seq = 1) {
    test_frames::Ipv4Opts o;
    o.src = src;
    o.dst = dst;
    return frame(0x0800, test_frames::ipv4(1, Bytes().u8(type).u8(code).u16(0).u16(id).u16(seq).zeros(8), o));
}

/// An ICMPv4 error from `src` to `dst` quoting `quoted`'s IP header and the
/// first `l4_bytes` of its transport header.
inline Frame icmp4_error(uint32_t src, uint32_t dst, uint8_t type, uint8_t code, const Frame& quoted,
                         size_t l4_bytes = 8) {
    const size_t l3 = quoted.layout.l3_offset, l4 = quoted.layout.l4_offset;
    Bytes body = Bytes().u8(type).u8(code).u16(0).u32(0);
    for (size_t i = l3; i < l4 + l4_bytes && i < quoted.bytes.size(); ++i) body.u8(quoted.bytes[i]);
    test_frames::Ipv4Opts o;
    o.src = src;
    o.dst = dst;
    return frame(0x0800, test_frames::ipv4(1, body, o));
}

inline test_frames::Ip6 ip6(uint8_t last) {
    test_frames::Ip6 a = test_frames::kIp6A;
    a[15] = last;
    return a;
}

inline Frame tcp6(const test_frames::Ip6& src, const test_frames::Ip6& dst, uint16_t sport, uint16_t dport,
                  const Seg& s) {
    test_frames::Ipv6Opts o;
    o.src = src;
    o.dst = dst;
    return frame(0x86dd, test_frames::ipv6(6, tcp_header(sport, dport, s), o));
}

inline Frame icmp6(const test_frames::Ip6& src, const test_frames::Ip6& dst, uint8_t type, uint16_t id) {
    test_frames::Ipv6Opts o;
    o.src = src;
    o.dst = dst;
    return frame(0x86dd, test_frames::ipv6(58, Bytes().u8(type).u8(0).u16(0).u16(id).u16(1).zeros(8), o));
}

/// An ICMPv6 error quoting all of `quoted`'s IPv6 packet.
inline Frame icmp6_error(const test_frames::Ip6& src, const test_frames::Ip6& dst, uint8_t type,
                         const Frame& quoted) {
    Bytes body = Bytes().u8(type).u8(0).u16(0).u32(0);
    for (size_t i = quoted.layout.l3_offset; i < quoted.bytes.size(); ++i) body.u8(quoted.bytes[i]);
    test_frames::Ipv6Opts o;
    o.src = src;
    o.dst = dst;
    return frame(0x86dd, test_frames::ipv6(58, body, o));
}

/// An IPv4 packet of another protocol (GRE, SCTP...) with `payload` bytes.
inline Frame other4(uint32_t src, uint32_t dst, uint8_t proto, size_t payload = 16) {
    test_frames::Ipv4Opts o;
    o.src = src;
    o.dst = dst;
    Bytes p;
    for (size_t i = 0; i < payload; ++i) p.u8(static_cast<uint8_t>(i + 1));
    return frame(0x0800, test_frames::ipv4(proto, p, o));
}

/// The EAL pins the process's main thread to one CPU and new threads
/// inherit it: a test thread that must run beside it calls this first.
inline void run_on_any_cpu() {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    for (unsigned cpu = 0; cpu < std::thread::hardware_concurrency(); ++cpu) CPU_SET(cpu, &cpus);
    pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
}

// ---- Harness ----

/// A tracker of one shard with timeouts in milliseconds, a clock the test
/// moves, and no cleanup thread unless asked.
struct Harness {
    explicit Harness(uint32_t limit = 0, bool thread = false, unsigned shards = 1) {
        ConnTrackerConfig c;
        c.shards = shards;
        c.limit = limit;
        c.shard_capacity = 1024;
        c.units_per_second = 1000;
        c.timeouts = ConnTimeouts::open_vswitch(1000);
        c.clock = [this] { return clock.load(); };
        c.cleanup_thread = thread;
        tracker = std::make_unique<ConnTracker>(std::move(c));
    }

    /// One ct action on one packet; `meta` carries the state of earlier ones.
    CtMeta ct(const Frame& f, CtAction action, CtMeta meta = {}, unsigned shard = 0) {
        const CtPacket p = f.packet();
        tracker->shard(shard).execute(action, &p, &meta, 1, clock.load());
        return meta;
    }
    CtMeta commit(const Frame& f, uint16_t zone = 0) {
        CtAction a;
        a.zone = zone;
        a.commit = true;
        return ct(f, a);
    }
    CtMeta track(const Frame& f, uint16_t zone = 0) {
        CtAction a;
        a.zone = zone;
        return ct(f, a);
    }
    /// The cleanup thread's round and the worker's maintain, in turn.
    unsigned expire_round(unsigned shard = 0) {
        tracker->cleanup_round(clock.load());
        return tracker->shard(shard).maintain(clock.load());
    }
    void advance_seconds(double s) { clock += static_cast<uint64_t>(s * 1000); }

    std::atomic<uint64_t> clock{1'000'000};
    std::unique_ptr<ConnTracker> tracker;
};

/// "+new+trk" etc., in Open vSwitch's order, for readable failures.
inline std::string state_text(uint8_t s) {
    std::string out;
    const std::pair<uint8_t, const char*> bits[] = {{kCtNew, "new"},     {kCtEstablished, "est"},
                                                    {kCtRelated, "rel"}, {kCtReply, "rpl"},
                                                    {kCtInvalid, "inv"}, {kCtTracked, "trk"}};
    for (const auto& [bit, name] : bits) {
        if (s & bit) out += std::string("+") + name;
    }
    return out.empty() ? "0" : out;
}

constexpr uint8_t kNewTrk = kCtNew | kCtTracked;
constexpr uint8_t kEstTrk = kCtEstablished | kCtTracked;
constexpr uint8_t kEstRplTrk = kCtEstablished | kCtReply | kCtTracked;
constexpr uint8_t kInvTrk = kCtInvalid | kCtTracked;
constexpr uint8_t kRelTrk = kCtRelated | kCtTracked;
constexpr uint8_t kRelRplTrk = kCtRelated | kCtReply | kCtTracked;

#define EXPECT_CT(meta, bits) EXPECT_EQ(::flowpath::ct_test::state_text((meta).state), ::flowpath::ct_test::state_text(bits))

}  // namespace flowpath::ct_test
