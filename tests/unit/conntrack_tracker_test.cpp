// The ct action beyond TCP, as Open vSwitch 3.1's userspace datapath does it:
// UDP and other protocols (first, multiple, both directions), ICMP queries and
// errors (+rel), zones, ct twice in one pipeline, ct_mark, the connection
// limit, fragments and packets conntrack refuses (+inv), bursts; then expiry
// (cleanup rounds with a hand-driven clock, and the cleanup thread), flush,
// dump, statistics, and a worker racing the cleanup thread and ct-flush.
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <thread>

#include "../../src/conntrack/tcp.hpp"
#include "conntrack_test_util.hpp"
#include "flowpath/config.hpp"
#include "flowpath/error.hpp"

using namespace flowpath;
using namespace flowpath::ct_test;

namespace {

const uint32_t kA = ip(10, 0, 0, 1);
const uint32_t kB = ip(10, 0, 0, 2);
const uint32_t kRouter = ip(10, 0, 0, 254);

// ---- UDP and other protocols ----

TEST(ConntrackUdp, FirstMultipleThenBothDirections) {
    Harness h;
    EXPECT_CT(h.commit(udp4(kA, kB, 5000, 53)), kNewTrk);
    EXPECT_CT(h.track(udp4(kA, kB, 5000, 53)), kNewTrk);  // second packet, one direction: still new
    // One direction only stays new however many (Open vSwitch 3.1, as the
    // kernel: established once a reply was seen).
    EXPECT_CT(h.track(udp4(kA, kB, 5000, 53)), kNewTrk);
    EXPECT_CT(h.track(udp4(kA, kB, 5000, 53)), kNewTrk);
    EXPECT_CT(h.track(udp4(kB, kA, 53, 5000)), kEstRplTrk);
    EXPECT_CT(h.track(udp4(kA, kB, 5000, 53)), kEstTrk);
    EXPECT_EQ(h.tracker->dump(),
              "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=5000,dport=53),"
              "reply=(src=10.0.0.2,dst=10.0.0.1,sport=53,dport=5000)\n");
}

TEST(ConntrackUdp, ReplyFirstMakesItBidirectionalAtOnce) {
    Harness h;
    EXPECT_CT(h.commit(udp4(kA, kB, 5000, 53)), kNewTrk);
    EXPECT_CT(h.track(udp4(kB, kA, 53, 5000)), kEstRplTrk);
    EXPECT_CT(h.track(udp4(kA, kB, 5000, 53)), kEstTrk);
}

TEST(ConntrackUdp, PortZeroAndShortHeadersAreInvalid) {
    Harness h;
    EXPECT_CT(h.commit(udp4(kA, kB, 0, 53)), kInvTrk);
    EXPECT_CT(h.commit(udp4(kA, kB, 5000, 0)), kInvTrk);
    Frame f = udp4(kA, kB, 5000, 53);
    f.bytes[14 + 20 + 4] = 0x10;  // UDP length beyond the datagram
    f.bytes[14 + 20 + 5] = 0x00;
    f.checksum_flags = kCtL4Good;
    EXPECT_CT(h.commit(f), kInvTrk);
    EXPECT_EQ(h.tracker->stats().connections, 0u);
    EXPECT_EQ(h.tracker->stats().invalid, 3u);
}

TEST(ConntrackOther, OtherProtocolsHaveNoPortsAndTheUdpMachine) {
    Harness h;
    EXPECT_CT(h.commit(other4(kA, kB, 47)), kNewTrk);  // GRE
    EXPECT_CT(h.track(other4(kA, kB, 47)), kNewTrk);
    EXPECT_CT(h.track(other4(kA, kB, 47)), kNewTrk);
    EXPECT_CT(h.track(other4(kB, kA, 47)), kEstRplTrk);
    EXPECT_CT(h.track(other4(kA, kB, 47)), kEstTrk);
    EXPECT_CT(h.commit(other4(kA, kB, 132, 28)), kNewTrk);  // SCTP: no ports in OVS 3.1 either
    const std::string dump = h.tracker->dump();
    EXPECT_NE(dump.find("47,orig=(src=10.0.0.1,dst=10.0.0.2,sport=0,dport=0),"
                        "reply=(src=10.0.0.2,dst=10.0.0.1,sport=0,dport=0)\n"),
              std::string::npos)
        << dump;
    EXPECT_NE(dump.find("sctp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=0,dport=0)"), std::string::npos) << dump;
}

// ---- ICMP ----

TEST(ConntrackIcmp, EchoRequestThenReply) {
    Harness h;
    EXPECT_CT(h.commit(icmp4(kA, kB, 8, 0, 77)), kNewTrk);
    EXPECT_CT(h.track(icmp4(kA, kB, 8, 0, 77, 2)), kNewTrk);  // no reply yet: still new
    EXPECT_CT(h.track(icmp4(kB, kA, 0, 0, 77)), kEstRplTrk);
    EXPECT_CT(h.track(icmp4(kA, kB, 8, 0, 77, 3)), kEstTrk);
    EXPECT_EQ(h.tracker->dump(),
              "icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=77,type=8,code=0),"
              "reply=(src=10.0.0.2,dst=10.0.0.1,id=77,type=0,code=0)\n");
}

// The original tuple a PACKET_IN shows (Open vSwitch's ct_orig_tuple): the
// connection's forward key in either direction, the packet's own when not
// committed, none when invalid; ICMPv4 as type and code.
TEST(ConntrackTuple, OriginalDirectionOfTheConnection) {
    Harness h;
    const auto tuple_of = [&](const Frame& f, const CtMeta& meta) {
        CtTuple t;
        return h.tracker->shard(0).original_tuple(meta, f.packet(), t) ? std::optional<CtTuple>(t) : std::nullopt;
    };
    const auto v4 = [](uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto) {
        CtTuple t;
        const uint32_t s = htonl(src), d = htonl(dst);
        std::memcpy(t.src, &s, 4);
        std::memcpy(t.dst, &d, 4);
        t.src_port = htons(sport);
        t.dst_port = htons(dport);
        t.nw_proto = proto;
        return t;
    };
    const Frame request = udp4(kA, kB, 5000, 53);
    EXPECT_EQ(tuple_of(request, h.track(request)), v4(kA, kB, 5000, 53, 17));  // not committed: the packet's
    h.commit(request);
    const Frame reply = udp4(kB, kA, 53, 5000);
    const CtMeta reply_meta = h.track(reply);
    EXPECT_CT(reply_meta, kEstRplTrk);
    EXPECT_EQ(tuple_of(reply, reply_meta), v4(kA, kB, 5000, 53, 17));  // the original direction
    EXPECT_EQ(tuple_of(reply, CtMeta{}), std::nullopt);  // not tracked

    const Frame echo = icmp4(kA, kB, 8, 0, 77);
    h.commit(echo);
    const Frame echo_reply = icmp4(kB, kA, 0, 0, 77);
    EXPECT_EQ(tuple_of(echo_reply, h.track(echo_reply)), v4(kA, kB, 8, 0, 1));
    const Frame stray = icmp4(kB, kA, 0, 0, 78);  // a reply opens nothing: invalid
    EXPECT_EQ(tuple_of(stray, h.track(stray)), std::nullopt);
}

TEST(ConntrackIcmp, RepliesAndStrayTypesCannotOpen) {
    Harness h;
    EXPECT_CT(h.commit(icmp4(kB, kA, 0, 0, 77)), kInvTrk);    // a reply with no request
    EXPECT_CT(h.commit(icmp4(kA, kB, 8, 1, 77)), kInvTrk);    // a query with a code
    EXPECT_CT(h.commit(icmp4(kA, kB, 9, 0, 77)), kInvTrk);    // router advertisement: neither
    EXPECT_CT(h.commit(icmp4(kA, kB, 13, 0, 5)), kNewTrk);    // timestamp request
    EXPECT_CT(h.track(icmp4(kB, kA, 14, 0, 5)), kEstRplTrk);  // its reply
    EXPECT_EQ(h.tracker->stats().connections, 1u);
}

TEST(ConntrackIcmp, TypesAreKeyedPerSide) {
    // A's request and B's request with the same id are two connections, as
    // Open vSwitch keys each side's ICMP type.
    Harness h;
    EXPECT_CT(h.commit(icmp4(kA, kB, 8, 0, 9)), kNewTrk);
    EXPECT_CT(h.commit(icmp4(kB, kA, 8, 0, 9)), kNewTrk);
    EXPECT_EQ(h.tracker->stats().connections, 2u);
    EXPECT_CT(h.track(icmp4(kA, kB, 0, 0, 9)), kEstRplTrk);  // reply to B's request
}

TEST(ConntrackIcmp, ErrorsQuotingATrackedConnectionAreRelated) {
    Harness h;
    const Frame syn = tcp4(kA, kB, 40000, 80, {kTcpSyn, 1000, 0});
    EXPECT_CT(h.commit(syn), kNewTrk);
    // The router tells A its SYN could not get through: related, and in the
    // reply direction (it travels toward the initiator).
    EXPECT_CT(h.commit(icmp4_error(kRouter, kA, 3, 1, syn)), kRelRplTrk);
    // A tells B about B's packet (in the reply direction): related, original.
    const Frame back = tcp4(kB, kA, 80, 40000, {kTcpSyn | kTcpAck, 5000, 1001});
    EXPECT_CT(h.track(icmp4_error(kA, kB, 3, 3, back)), kRelTrk);
    // Time exceeded and a quoted header of the full 20 bytes work the same.
    EXPECT_CT(h.track(icmp4_error(kRouter, kA, 11, 0, syn, 20)), kRelRplTrk);
    // The error does not change the connection.
    EXPECT_CT(h.track(tcp4(kB, kA, 80, 40000, {kTcpSyn | kTcpAck, 5000, 1001})), kEstRplTrk);
    EXPECT_EQ(h.tracker->stats().connections, 1u);

    // About a connection nobody committed: invalid, and never committed.
    const Frame other = tcp4(kA, kB, 40001, 80, {kTcpSyn, 1, 0});
    EXPECT_CT(h.commit(icmp4_error(kRouter, kA, 3, 1, other)), kInvTrk);
    // Quoting a packet that did not come from the error's destination.
    EXPECT_CT(h.track(icmp4_error(kRouter, kB, 3, 1, syn)), kInvTrk);
    // Too little of the quoted transport header.
    EXPECT_CT(h.track(icmp4_error(kRouter, kA, 3, 1, syn, 4)), kInvTrk);
    EXPECT_EQ(h.tracker->stats().connections, 1u);
}

TEST(ConntrackIcmp, ErrorsAboutUdpAndEcho) {
    Harness h;
    const Frame query = udp4(kA, kB, 5353, 53);
    EXPECT_CT(h.commit(query), kNewTrk);
    EXPECT_CT(h.track(icmp4_error(kB, kA, 3, 3, query)), kRelRplTrk);  // port unreachable
    const Frame ping = icmp4(kA, kB, 8, 0, 4);
    EXPECT_CT(h.commit(ping), kNewTrk);
    EXPECT_CT(h.track(icmp4_error(kRouter, kA, 11, 0, ping)), kRelRplTrk);
}

TEST(ConntrackIcmp, Icmpv6EchoAndErrors) {
    Harness h;
    const auto a = ip6(1), b = ip6(2), router = ip6(9);
    EXPECT_CT(h.commit(icmp6(a, b, 128, 3)), kNewTrk);
    EXPECT_CT(h.track(icmp6(b, a, 129, 3)), kEstRplTrk);
    EXPECT_CT(h.commit(icmp6(b, a, 129, 4)), kInvTrk);  // a reply cannot open
    const Frame syn = tcp6(a, b, 1000, 22, {kTcpSyn, 7, 0});
    EXPECT_CT(h.commit(syn), kNewTrk);
    EXPECT_CT(h.track(icmp6_error(router, a, 1, syn)), kRelRplTrk);   // destination unreachable
    EXPECT_CT(h.track(icmp6_error(router, a, 2, syn)), kRelRplTrk);   // packet too big
    EXPECT_CT(h.track(icmp6_error(router, b, 3, syn)), kInvTrk);      // quoted source is not b
    // Neighbor discovery is neither a query nor an error: invalid.
    test_frames::Ipv6Opts o;
    o.src = a;
    o.dst = b;
    EXPECT_CT(h.track(frame(0x86dd, test_frames::ipv6(58, test_frames::nd(135, {}), o))), kInvTrk);
    EXPECT_NE(h.tracker->dump().find("icmpv6,orig=(src=2001:db8::1,dst=2001:db8::2,id=3,type=128,code=0),"
                                     "reply=(src=2001:db8::2,dst=2001:db8::1,id=3,type=129,code=0)"),
              std::string::npos)
        << h.tracker->dump();
}

// ---- Zones, ct twice, marks ----

TEST(ConntrackZones, IdenticalTuplesInTwoZonesAreTwoConnections) {
    Harness h;
    const Frame syn = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    const Frame synack = tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101});
    EXPECT_CT(h.commit(syn, 1), kNewTrk);
    EXPECT_CT(h.track(synack, 2), kInvTrk);  // zone 2 knows nothing of it
    EXPECT_CT(h.commit(syn, 2), kNewTrk);
    EXPECT_CT(h.track(synack, 1), kEstRplTrk);
    EXPECT_CT(h.track(synack, 2), kEstRplTrk);
    EXPECT_EQ(h.tracker->stats().connections, 2u);
    const std::string z1 = h.tracker->dump(1), z2 = h.tracker->dump(2);
    EXPECT_NE(z1.find(",zone=1,"), std::string::npos) << z1;
    EXPECT_EQ(z1.find(",zone=2"), std::string::npos) << z1;
    EXPECT_NE(z2.find(",zone=2,"), std::string::npos) << z2;
    EXPECT_EQ(h.tracker->dump(3), "");
    EXPECT_EQ(h.tracker->dump(0), "");
}

TEST(ConntrackTwice, SecondCtInTheSameZoneKeepsTheFirstVerdict) {
    Harness h;
    const Frame syn = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    CtAction commit;
    commit.commit = true;
    CtAction plain;
    // ct(commit) then ct: the packet keeps +new, the connection is not
    // updated twice.
    CtMeta m = h.ct(syn, commit);
    EXPECT_CT(m, kNewTrk);
    m = h.ct(syn, plain, m);
    EXPECT_CT(m, kNewTrk);
    // ct without commit, then ct(commit): the second commits.
    const Frame other = tcp4(kA, kB, 3, 4, {kTcpSyn, 100, 0});
    m = h.ct(other, plain);
    EXPECT_CT(m, kNewTrk);
    EXPECT_EQ(h.tracker->stats().connections, 1u);
    m = h.ct(other, commit, m);
    EXPECT_CT(m, kNewTrk);
    EXPECT_EQ(h.tracker->stats().connections, 2u);
    // The second ct keeps the first's verdict on the remembered connection:
    // a UDP reply is +est+rpl in both, the next forward packet +est.
    h.commit(udp4(kA, kB, 7, 53));
    m = h.ct(udp4(kA, kB, 7, 53), plain);
    EXPECT_CT(m, kNewTrk);
    m = h.ct(udp4(kA, kB, 7, 53), plain, m);
    EXPECT_CT(m, kNewTrk);
    m = h.ct(udp4(kB, kA, 53, 7), plain);
    EXPECT_CT(m, kEstRplTrk);
    m = h.ct(udp4(kB, kA, 53, 7), plain, m);
    EXPECT_CT(m, kEstRplTrk);
    EXPECT_CT(h.track(udp4(kA, kB, 7, 53)), kEstTrk);
    // A segment that is invalid in the first ct stays invalid in the second.
    const Frame bad = tcp4(kB, kA, 2, 1, {kTcpFin, 900, 0});  // FIN without ACK
    m = h.ct(bad, plain);
    EXPECT_CT(m, kInvTrk);
    m = h.ct(bad, plain, m);
    EXPECT_CT(m, kInvTrk);
}

TEST(ConntrackTwice, ANewZoneStartsAfresh) {
    Harness h;
    const Frame syn = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    const Frame synack = tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101});
    h.commit(syn, 1);
    CtAction zone1, zone2;
    zone1.zone = 1;
    zone2.zone = 2;
    CtMeta m = h.ct(synack, zone1);
    EXPECT_CT(m, kEstRplTrk);
    EXPECT_EQ(m.zone, 1);
    m = h.ct(synack, zone2, m);  // zone 2 has no such connection
    EXPECT_CT(m, kInvTrk);
    EXPECT_EQ(m.zone, 2);
    m.clear();  // ct_clear
    EXPECT_EQ(m.state, 0);
    EXPECT_FALSE(m.conn.valid());
}

TEST(ConntrackTwice, TheFirstZonesBitsDoNotLeakIntoTheSecond) {
    // A->B is a connection of zone 1, B->A one of zone 2. B's packet is a
    // reply in zone 1 and the original direction in zone 2.
    Harness h;
    h.commit(udp4(kA, kB, 1000, 2000), 1);
    h.commit(udp4(kB, kA, 2000, 1000), 2);
    CtAction zone1, zone2;
    zone1.zone = 1;
    zone2.zone = 2;
    CtMeta m = h.ct(udp4(kB, kA, 2000, 1000), zone1);
    EXPECT_CT(m, kEstRplTrk);
    m = h.ct(udp4(kB, kA, 2000, 1000), zone2, m);
    EXPECT_CT(m, kNewTrk);  // its second packet in zone 2: +new, no +rpl, no +est
}

TEST(ConntrackMark, CommitSetsTheMarkLaterPacketsReadIt) {
    Harness h;
    CtAction a;
    a.commit = true;
    a.set_mark = true;
    a.mark_value = 0x05;
    a.mark_mask = 0xff;
    const Frame syn = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    CtMeta m = h.ct(syn, a);
    EXPECT_EQ(m.mark, 5u);
    EXPECT_CT(m, kNewTrk);
    CtMeta reply = h.track(tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101}));
    EXPECT_EQ(reply.mark, 5u);
    EXPECT_NE(h.tracker->dump().find(",mark=5,protoinfo"), std::string::npos) << h.tracker->dump();

    // A masked set keeps the other bits.
    CtAction masked;
    masked.commit = true;
    masked.set_mark = true;
    masked.mark_value = 0x100;
    masked.mark_mask = 0xf00;
    m = h.ct(tcp4(kA, kB, 1, 2, {kTcpAck, 101, 901}), masked);
    EXPECT_EQ(m.mark, 0x105u);
    // The second ct of a pipeline may set it too.
    CtAction again = masked;
    again.mark_value = 0x200;
    m = h.ct(tcp4(kA, kB, 1, 2, {kTcpAck, 101, 901}), again, m);
    EXPECT_EQ(m.mark, 0x205u);
    EXPECT_EQ(h.track(tcp4(kB, kA, 2, 1, {kTcpAck, 901, 101})).mark, 0x205u);
    // No connection, no mark.
    EXPECT_EQ(h.ct(tcp4(kA, kB, 7, 8, {kTcpSyn, 1, 0}), CtAction{}).mark, 0u);
}

// ---- Limit, fragments, refused packets ----

TEST(ConntrackLimit, CommitsBeyondTheLimitAreRefusedAndCounted) {
    Harness h(/*limit=*/2);
    EXPECT_CT(h.commit(udp4(kA, kB, 1, 53)), kNewTrk);
    EXPECT_CT(h.commit(udp4(kA, kB, 2, 53)), kNewTrk);
    // Open vSwitch: the packet is +new+trk, the connection just not stored.
    const CtMeta m = h.commit(udp4(kA, kB, 3, 53));
    EXPECT_CT(m, kNewTrk);
    EXPECT_FALSE(m.conn.valid());
    CtStats s = h.tracker->stats();
    EXPECT_EQ(s.connections, 2u);
    EXPECT_EQ(s.refused, 1u);
    EXPECT_CT(h.track(udp4(kB, kA, 53, 3)), kNewTrk);  // no connection for it
    // Once one expires and is reclaimed, there is room again.
    h.advance_seconds(61);
    EXPECT_EQ(h.expire_round(), 2u);
    EXPECT_CT(h.commit(udp4(kA, kB, 3, 53)), kNewTrk);
    s = h.tracker->stats();
    EXPECT_EQ(s.connections, 1u);
    EXPECT_EQ(s.refused, 1u);
    // A raised limit applies at once.
    h.tracker->set_limit(3);
    EXPECT_CT(h.commit(udp4(kA, kB, 4, 53)), kNewTrk);
    EXPECT_CT(h.commit(udp4(kA, kB, 5, 53)), kNewTrk);
    EXPECT_CT(h.commit(udp4(kA, kB, 6, 53)), kNewTrk);
    EXPECT_EQ(h.tracker->stats().connections, 3u);
    EXPECT_EQ(h.tracker->stats().refused, 2u);
}

TEST(ConntrackLimit, AFullShardRefusesWithoutHarm) {
    ConnTrackerConfig c;
    c.shard_capacity = 4;
    c.cleanup_thread = false;
    ConnTracker tracker(c);
    uint32_t refused_before = 0;
    for (uint16_t port = 1; port <= 10; ++port) {
        const Frame f = udp4(kA, kB, port, 53);
        const CtPacket p = f.packet();
        CtMeta m;
        CtAction a;
        a.commit = true;
        tracker.shard(0).execute(a, &p, &m, 1, 0);
        EXPECT_CT(m, kNewTrk);
        refused_before += !m.conn.valid();
    }
    EXPECT_EQ(refused_before, 6u);
    EXPECT_EQ(tracker.stats().refused, 6u);
    EXPECT_EQ(tracker.stats().connections, 4u);
}

TEST(ConntrackInvalid, FragmentsAreInvalidWithoutReassembly) {
    Harness h;
    test_frames::Ipv4Opts first;
    first.src = kA;
    first.dst = kB;
    first.frag_off = 0x2000;  // MF
    EXPECT_CT(h.commit(frame(0x0800, test_frames::ipv4(17, test_frames::udp(1, 2), first))), kInvTrk);
    test_frames::Ipv4Opts later = first;
    later.frag_off = 0x0010;  // offset 128, last fragment
    EXPECT_CT(h.commit(frame(0x0800, test_frames::ipv4(17, Bytes().zeros(16), later))), kInvTrk);
    // IPv6 with a fragment header.
    test_frames::Ipv6Opts o6;
    EXPECT_CT(h.commit(frame(0x86dd, test_frames::ipv6(44, test_frames::frag6(17, 0x0001).add(test_frames::udp(1, 2)),
                                                       o6))),
              kInvTrk);
    EXPECT_EQ(h.tracker->stats().connections, 0u);
}

TEST(ConntrackInvalid, BadChecksumsNonIpAndTruncatedHeaders) {
    Harness h;
    Frame tcp = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    tcp.bytes[14 + 20 + 16] ^= 0xff;  // TCP checksum
    EXPECT_CT(h.commit(tcp), kInvTrk);
    tcp.checksum_flags = kCtL4Good;  // the NIC checked it: believed
    EXPECT_CT(h.commit(tcp), kNewTrk);
    Frame ipbad = udp4(kA, kB, 1, 2);
    ipbad.bytes[14 + 10] ^= 0xff;  // IPv4 header checksum
    EXPECT_CT(h.commit(ipbad), kInvTrk);
    Frame nic_bad = udp4(kA, kB, 3, 4);
    nic_bad.checksum_flags = kCtL4Bad;
    EXPECT_CT(h.commit(nic_bad), kInvTrk);
    // ARP is not IP.
    const Frame arp = frame(0x0806, test_frames::arp(1), false);
    EXPECT_CT(h.commit(arp), kInvTrk);
    // A TCP header cut short.
    test_frames::Ipv4Opts o;
    o.src = kA;
    o.dst = kB;
    EXPECT_CT(h.commit(frame(0x0800, test_frames::ipv4(6, Bytes().zeros(12), o))), kInvTrk);
    EXPECT_EQ(h.tracker->stats().connections, 1u);
}

// ---- Bursts ----

// Open vSwitch runs each packet's pipeline alone: a packet must not take
// its verdict before an earlier one of its group, which found no connection,
// had the chance to commit it later in its pipeline (the worker finishes the
// earlier ones first and calls again with the rest).
TEST(ConntrackBurst, StopsBeforeAPacketAnEarlierOneMayStillCommit) {
    Harness h;
    const Frame a = udp4(kA, kB, 1, 2), other = udp4(kA, kB, 3, 4);
    const Frame third = udp4(kA, kB, 5, 6);
    const Frame error = icmp4_error(kRouter, kA, 3, 1, third);
    const std::vector<CtPacket> burst = {a.packet(), other.packet(), a.packet()};
    std::vector<CtMeta> metas(burst.size());
    CtAction plain;
    auto& shard = h.tracker->shard(0);
    EXPECT_EQ(shard.execute(plain, burst.data(), metas.data(), 3, h.clock, true), 2u);
    EXPECT_CT(metas[0], kNewTrk);
    EXPECT_CT(metas[1], kNewTrk);
    EXPECT_FALSE(metas[2].conn.valid());  // not run
    metas[0] = h.ct(a, CtAction{.commit = true}, metas[0]);  // its pipeline commits it
    EXPECT_EQ(shard.execute(plain, &burst[2], &metas[2], 1, h.clock, true), 1u);
    EXPECT_CT(metas[2], kNewTrk);
    EXPECT_TRUE(metas[2].conn.valid());  // it found the connection

    // An ICMP error about a connection an earlier packet may open, either way.
    const std::vector<CtPacket> quoted = {third.packet(), error.packet()};
    std::vector<CtMeta> m2(quoted.size());
    EXPECT_EQ(shard.execute(plain, quoted.data(), m2.data(), 2, h.clock, true), 1u);
    // Without stop_at_dependency, the whole group, as before.
    std::vector<CtMeta> m3(burst.size());
    EXPECT_EQ(shard.execute(plain, quoted.data(), m3.data(), 2, h.clock), 2u);
    EXPECT_CT(m3[1], kInvTrk);  // related to nothing yet
}

// The reply direction too: a SYN-ACK behind its SYN in one group (the
// bench's conntrack workload had its last, smaller batch of handshakes so,
// and counted those SYN-ACKs invalid).
TEST(ConntrackBurst, StopsBeforeTheReplyOfAConnectionAnEarlierPacketMayCommit) {
    Harness h;
    const Frame syn = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    const Frame synack = tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101});
    const Frame other = tcp4(kA, kB, 3, 2, {kTcpSyn, 500, 0});
    const std::vector<CtPacket> burst = {syn.packet(), other.packet(), synack.packet()};
    std::vector<CtMeta> metas(burst.size());
    CtAction plain;
    auto& shard = h.tracker->shard(0);
    EXPECT_EQ(shard.execute(plain, burst.data(), metas.data(), 3, h.clock, true), 2u);
    metas[0] = h.ct(syn, CtAction{.commit = true}, metas[0]);
    EXPECT_EQ(shard.execute(plain, &burst[2], &metas[2], 1, h.clock, true), 1u);
    EXPECT_CT(metas[2], kEstRplTrk);
    EXPECT_EQ(h.tracker->stats().invalid, 0u);
}

TEST(ConntrackBurst, APacketSeesWhatAnEarlierPacketOfItsBurstCommitted) {
    Harness h;
    const Frame syn = tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0});
    const Frame synack = tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101});
    const Frame ack = tcp4(kA, kB, 1, 2, {kTcpAck, 101, 901});
    std::vector<CtPacket> packets;
    for (int k = 0; k < 12; ++k) {  // 36 packets: more than one lookup chunk
        packets.push_back(syn.packet());
        packets.push_back(synack.packet());
        packets.push_back(ack.packet());
    }
    std::vector<CtMeta> metas(packets.size());
    CtAction a;
    a.commit = true;
    h.tracker->shard(0).execute(a, packets.data(), metas.data(), static_cast<unsigned>(packets.size()), h.clock);
    EXPECT_CT(metas[0], kNewTrk);
    EXPECT_CT(metas[1], kEstRplTrk);
    EXPECT_CT(metas[2], kEstTrk);
    EXPECT_CT(metas[3], kEstTrk);      // a SYN on an established connection, in window
    EXPECT_CT(metas[34], kEstRplTrk);
    EXPECT_EQ(h.tracker->stats().created, 1u);
    EXPECT_EQ(h.tracker->check_invariants(), "");
}

// ---- Expiry ----

TEST(ConntrackExpiry, ConnectionsExpireAfterTheirClassTimeout) {
    Harness h;
    h.commit(udp4(kA, kB, 1, 53));                        // udp first: 60 s
    h.commit(icmp4(kA, kB, 8, 0, 1));                     // icmp first: 60 s
    h.commit(tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0}));      // syn sent: 30 s
    h.commit(udp4(kA, kB, 2, 53));
    h.track(udp4(kB, kA, 53, 2));                         // both directions: 30 s
    EXPECT_EQ(h.expire_round(), 0u);
    h.advance_seconds(29.9);
    EXPECT_EQ(h.expire_round(), 0u);
    h.advance_seconds(0.1);  // expired once expiry <= now
    EXPECT_EQ(h.expire_round(), 2u);  // the SYN and the bidirectional UDP
    EXPECT_EQ(h.tracker->stats().connections, 2u);
    h.advance_seconds(30);
    EXPECT_EQ(h.expire_round(), 2u);
    const CtStats s = h.tracker->stats();
    EXPECT_EQ(s.connections, 0u);
    EXPECT_EQ(s.expired, 4u);
    EXPECT_EQ(s.created, 4u);
    EXPECT_EQ(h.tracker->check_invariants(), "");
}

TEST(ConntrackExpiry, RefreshedConnectionsLiveOn) {
    Harness h;
    h.commit(udp4(kA, kB, 1, 53));  // expires at +60 s
    h.commit(udp4(kA, kB, 2, 53));
    h.advance_seconds(50);
    h.track(udp4(kA, kB, 1, 53));  // refreshed: +110 s (udp multiple: 60 s)
    h.advance_seconds(15);         // +65 s
    EXPECT_EQ(h.expire_round(), 1u);
    EXPECT_CT(h.track(udp4(kA, kB, 1, 53)), kNewTrk);  // refreshed again: +125 s (one way: still new)
    EXPECT_NE(h.tracker->dump().find("sport=1,"), std::string::npos);
    EXPECT_EQ(h.tracker->dump().find("sport=2,"), std::string::npos);  // gone
    h.advance_seconds(59);
    EXPECT_EQ(h.expire_round(), 0u);
    h.advance_seconds(1);
    EXPECT_EQ(h.expire_round(), 1u);
    EXPECT_EQ(h.tracker->stats().connections, 0u);
}

TEST(ConntrackExpiry, ARefreshedHeadMovesAsideForWhatExpiredBehindIt) {
    // A and B on one list (udp multiple, 60 s), A first. A is refreshed:
    // when the cleanup thread finds it at the head it must move it to the
    // tail and go on to B, which expired.
    Harness h;
    h.commit(udp4(kA, kB, 1, 53));
    h.track(udp4(kA, kB, 1, 53));  // A: multiple, expires +60 s
    h.advance_seconds(10);
    h.commit(udp4(kA, kB, 2, 53));
    h.track(udp4(kA, kB, 2, 53));  // B: multiple, expires +70 s
    EXPECT_EQ(h.expire_round(), 0u);
    h.advance_seconds(40);
    h.track(udp4(kA, kB, 1, 53));  // A refreshed: +110 s
    h.advance_seconds(20);         // +70 s
    EXPECT_EQ(h.expire_round(), 1u);
    EXPECT_NE(h.tracker->dump().find("sport=1,"), std::string::npos);
    EXPECT_EQ(h.tracker->dump().find("sport=2,"), std::string::npos);  // B expired
    EXPECT_EQ(h.tracker->check_invariants(), "");
}

TEST(ConntrackExpiry, AnExpiredConnectionNoLongerMatchesBeforeItIsReclaimed) {
    Harness h;
    h.commit(tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0}));
    h.advance_seconds(31);
    // No cleanup round yet: the lookup itself treats it as gone.
    EXPECT_CT(h.track(tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101})), kInvTrk);
    EXPECT_EQ(h.tracker->dump(), "");
    // A new commit of the same tuple replaces it.
    EXPECT_CT(h.commit(tcp4(kA, kB, 1, 2, {kTcpSyn, 5000, 0})), kNewTrk);
    const CtStats s = h.tracker->stats();
    EXPECT_EQ(s.connections, 1u);
    EXPECT_EQ(s.expired, 1u);
    EXPECT_EQ(h.expire_round(), 0u);  // the cleanup thread's stale entry is dropped
    EXPECT_EQ(h.tracker->stats().connections, 1u);
}

TEST(ConntrackExpiry, ClosingMovesAConnectionToAShorterClass) {
    // An established connection (24 h) reset: it must go after 30 s, not
    // after a day, although it sits on the established list.
    Harness h;
    h.commit(tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0}));
    h.track(tcp4(kB, kA, 2, 1, {kTcpSyn | kTcpAck, 900, 101}));
    h.track(tcp4(kA, kB, 1, 2, {kTcpAck, 101, 901}));
    EXPECT_EQ(h.expire_round(), 0u);
    h.advance_seconds(3600);
    EXPECT_EQ(h.expire_round(), 0u);
    h.track(tcp4(kA, kB, 1, 2, {kTcpRst | kTcpAck, 101, 901}));
    h.advance_seconds(29);
    EXPECT_EQ(h.expire_round(), 0u);
    h.advance_seconds(1);
    EXPECT_EQ(h.expire_round(), 1u);
}

TEST(ConntrackExpiry, TimeoutsFromTheConfiguration) {
    const ConnTimeouts t = ConnTimeouts::from_seconds(
        {{"tcp-established", 100}, {"udp-single", 7}, {"tcp-fin-wait", 11}, {"tcp-time-wait", 12}}, 1000);
    EXPECT_EQ(t[TimeoutClass::tcp_established], 100000u);
    EXPECT_EQ(t[TimeoutClass::udp_multiple], 7000u);
    EXPECT_EQ(t[TimeoutClass::other_multiple], 7000u);  // other protocols follow UDP
    EXPECT_EQ(t[TimeoutClass::tcp_closing], 11000u);    // OVS's FIN_WAIT attribute
    EXPECT_EQ(t[TimeoutClass::tcp_fin_wait], 12000u);   // OVS's TIME_WAIT attribute
    EXPECT_EQ(t[TimeoutClass::tcp_syn_sent], 30000u);
    const ConnTimeouts o = ConnTimeouts::from_seconds({{"other-first", 3}, {"other-multiple", 4}}, 1);
    EXPECT_EQ(o[TimeoutClass::other_first], 3u);
    EXPECT_EQ(o[TimeoutClass::other_multiple], 4u);
    EXPECT_EQ(o[TimeoutClass::other_bidir], 4u);
    EXPECT_EQ(o[TimeoutClass::udp_first], 60u);
    EXPECT_THROW(ConnTimeouts::from_seconds({{"tcp-bogus", 1}}, 1), Error);
}

TEST(ConntrackExpiry, ConfigFromTheProcessConfiguration) {
    Config config;
    ConnTrackerConfig c = ConnTrackerConfig::from(config, 2);
    EXPECT_EQ(c.shards, 2u);
    EXPECT_EQ(c.limit, 3'000'000u);  // Open vSwitch's default
    const uint64_t hz = c.units_per_second;
    EXPECT_GT(hz, 0u);
    EXPECT_EQ(c.timeouts[TimeoutClass::tcp_established], 24 * 3600 * hz);
    EXPECT_EQ(c.cleanup_min_interval, hz / 5);
    EXPECT_EQ(c.cleanup_max_interval, 5 * hz);
    const uint64_t t0 = c.clock();
    EXPECT_GE(c.clock(), t0);  // the TSC

    config.ct_max_connections = 1000;
    config.ct_timeouts = {{"icmp-reply", 3}};
    c = ConnTrackerConfig::from(config, 1);
    EXPECT_EQ(c.limit, 1000u);
    EXPECT_EQ(c.timeouts[TimeoutClass::icmp_reply], 3 * hz);
    c.shard_capacity = 64;
    c.cleanup_thread = false;
    ConnTracker tracker(c);
    EXPECT_EQ(tracker.config().limit, 1000u);
}

TEST(ConntrackExpiry, TheCleanupThreadExpiresOnTheClockItReads) {
    Harness h(0, /*thread=*/true);
    for (uint16_t port = 1; port <= 50; ++port) h.commit(udp4(kA, kB, port, 53));
    h.commit(tcp4(kA, kB, 1, 2, {kTcpSyn, 100, 0}));
    // Rounds that find nothing due.
    // Wakes the thread and waits (a condition, not a time) for a round that
    // began after the wake; then the worker's part.
    auto round = [&] {
        const uint64_t ticket = h.tracker->wake_cleanup();
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (h.tracker->cleanup_rounds() < ticket && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::yield();
        }
        ASSERT_GE(h.tracker->cleanup_rounds(), ticket) << "the cleanup thread did not run";
        h.tracker->shard(0).maintain(h.clock);
    };
    round();
    EXPECT_EQ(h.tracker->stats().connections, 51u);
    h.advance_seconds(30);
    round();
    EXPECT_EQ(h.tracker->stats().connections, 50u);
    h.advance_seconds(30);
    round();
    CtStats s = h.tracker->stats();
    EXPECT_EQ(s.connections, 0u);
    EXPECT_EQ(s.expired, 51u);
}

TEST(ConntrackExpiry, RoundsAreBoundedAndScheduled) {
    ConnTrackerConfig c;
    c.shard_capacity = 64;
    c.cleanup_thread = false;
    c.cleanup_budget = 10;
    c.cleanup_min_interval = 200;
    c.cleanup_max_interval = 5000;
    ConnTracker tracker(c);
    std::vector<Frame> frames;
    for (uint16_t port = 1; port <= 25; ++port) frames.push_back(udp4(kA, kB, port, 53));
    CtAction a;
    a.commit = true;
    for (const Frame& f : frames) {
        const CtPacket p = f.packet();
        CtMeta m;
        tracker.shard(0).execute(a, &p, &m, 1, 0);
    }
    // Nothing due: the next round at the earliest expiry (60 s), within the
    // bounds: 5 s.
    EXPECT_EQ(tracker.cleanup_round(1000), 6000u);
    EXPECT_EQ(tracker.cleanup_round(59000), 60000u);  // 1 s before the first expiry
    // 25 expired, 10 per round: the next round after the minimum interval.
    EXPECT_EQ(tracker.cleanup_round(60000), 60200u);
    EXPECT_EQ(tracker.shard(0).maintain(60000), 10u);
    EXPECT_EQ(tracker.cleanup_round(60200), 60400u);
    EXPECT_EQ(tracker.shard(0).maintain(60200), 10u);
    EXPECT_EQ(tracker.cleanup_round(60400), 65400u);  // the rest fit: empty afterwards
    EXPECT_EQ(tracker.shard(0).maintain(60400), 5u);
    EXPECT_EQ(tracker.stats().connections, 0u);
}

// ---- Flush, dump, statistics ----

TEST(ConntrackFlush, FlushAllOrOneZone) {
    Harness h;
    for (uint16_t port = 1; port <= 3; ++port) {
        h.commit(udp4(kA, kB, port, 53), 0);
        h.commit(udp4(kA, kB, port, 53), 7);
    }
    EXPECT_EQ(h.tracker->flush(7), 3u);
    // Gone at once for packets and dumps, before any reclaim.
    EXPECT_CT(h.track(udp4(kB, kA, 53, 1), 7), kNewTrk);
    EXPECT_CT(h.track(udp4(kB, kA, 53, 1), 0), kEstRplTrk);
    EXPECT_EQ(h.tracker->dump(7), "");
    EXPECT_NE(h.tracker->dump(0), "");
    EXPECT_EQ(h.expire_round(), 3u);
    CtStats s = h.tracker->stats();
    EXPECT_EQ(s.flushed, 3u);
    EXPECT_EQ(s.connections, 3u);
    // A flushed tuple can be committed again.
    EXPECT_CT(h.commit(udp4(kA, kB, 2, 53), 7), kNewTrk);
    EXPECT_EQ(h.tracker->flush(), 4u);
    EXPECT_EQ(h.tracker->dump(), "");
    EXPECT_EQ(h.expire_round(), 4u);
    s = h.tracker->stats();
    EXPECT_EQ(s.connections, 0u);
    EXPECT_EQ(s.created, s.expired + s.flushed);
    EXPECT_EQ(h.tracker->check_invariants(), "");
}

TEST(ConntrackFlush, CommandsParseTheirArguments) {
    Harness h;
    h.commit(udp4(kA, kB, 1, 53), 5);
    EXPECT_NE(ct_dump_command(*h.tracker, {"zone=5"}).find(",zone=5"), std::string::npos);
    EXPECT_EQ(ct_dump_command(*h.tracker, {"zone=6"}), "");
    EXPECT_THROW(ct_dump_command(*h.tracker, {"zone=70000"}), Error);
    EXPECT_THROW(ct_dump_command(*h.tracker, {"zone="}), Error);
    EXPECT_THROW(ct_flush_command(*h.tracker, {"zone=1", "x"}), Error);
    EXPECT_EQ(ct_flush_command(*h.tracker, {"zone=5"}), "");
    EXPECT_EQ(ct_dump_command(*h.tracker, {}), "");
}

TEST(ConntrackStats, ShardsAddUpAndShareTheLimit) {
    Harness h(/*limit=*/3, false, /*shards=*/2);
    EXPECT_CT(h.ct(udp4(kA, kB, 1, 53), CtAction{0, true}, {}, 0), kNewTrk);
    EXPECT_CT(h.ct(udp4(kA, kB, 2, 53), CtAction{0, true}, {}, 1), kNewTrk);
    EXPECT_CT(h.ct(udp4(kA, kB, 3, 53), CtAction{0, true}, {}, 1), kNewTrk);
    EXPECT_FALSE(h.ct(udp4(kA, kB, 4, 53), CtAction{0, true}, {}, 0).conn.valid());  // the limit is global
    const CtStats s = h.tracker->stats();
    EXPECT_EQ(s.connections, 3u);
    EXPECT_EQ(s.created, 3u);
    EXPECT_EQ(s.refused, 1u);
    EXPECT_EQ(h.tracker->shard(1).size(), 2u);
    // Each shard is its own table: shard 1 does not know shard 0's.
    EXPECT_CT(h.ct(udp4(kB, kA, 53, 1), CtAction{}, {}, 1), kNewTrk);
    // The dump shows both shards.
    const std::string d = h.tracker->dump();
    EXPECT_EQ(std::count(d.begin(), d.end(), '\n'), 3);
}

// ---- Random operations, one thread ----

// Traffic of many small connections (TCP segments of every kind, UDP, ICMP,
// zones), commits and plain cts, flushes, the clock jumping, cleanup rounds
// and maintain() in random order; after every step the tables, the lists and
// the counters must be whole, and no connection may fall out of the cleanup
// thread's reach.
TEST(ConntrackRandom, OperationsKeepEveryInvariant) {
    Harness h(/*limit=*/150);
    std::mt19937 rng(99);
    std::vector<Frame> frames;
    for (uint16_t n = 0; n < 60; ++n) {
        const uint32_t a = ip(10, 0, 0, static_cast<uint8_t>(1 + n % 5)), b = ip(10, 0, 1, static_cast<uint8_t>(1 + n % 3));
        const uint16_t pa = static_cast<uint16_t>(1000 + n), pb = 80;
        const uint16_t flags[] = {kTcpSyn, kTcpSyn | kTcpAck, kTcpAck, kTcpFin | kTcpAck, kTcpRst, kTcpAck | kTcpPsh};
        const uint16_t f = flags[n % 6];
        frames.push_back(tcp4(a, b, pa, pb, {f, 1000u + n, 5001, 65535, n % 3 ? 0u : 100u}));
        frames.push_back(tcp4(b, a, pb, pa, {f, 5000u + n, 1001, 65535, 0}));
        frames.push_back(udp4(a, b, pa, 53));
        frames.push_back(udp4(b, a, 53, pa));
        frames.push_back(icmp4(a, b, 8, 0, n));
        frames.push_back(icmp4(b, a, 0, 0, n));
    }
    for (int step = 0; step < 6000; ++step) {
        const unsigned op = rng() % 100;
        if (op < 70) {
            CtAction a;
            a.zone = static_cast<uint16_t>(rng() % 2);
            a.commit = rng() % 2;
            a.set_mark = rng() % 4 == 0;
            a.mark_value = step;
            a.mark_mask = 0xffffffff;
            std::vector<CtPacket> burst;
            const unsigned n = 1 + rng() % 40;
            for (unsigned k = 0; k < n; ++k) burst.push_back(frames[rng() % frames.size()].packet());
            std::vector<CtMeta> metas(n);
            h.tracker->shard(0).execute(a, burst.data(), metas.data(), n, h.clock);
            for (const CtMeta& m : metas) ASSERT_TRUE(m.state & kCtTracked);
        } else if (op < 80) {
            h.advance_seconds(rng() % 40);
        } else if (op < 90) {
            h.tracker->cleanup_round(h.clock);
        } else if (op < 98) {
            h.tracker->shard(0).maintain(h.clock);
        } else if (op < 99) {
            h.tracker->flush(static_cast<uint16_t>(rng() % 2));
        } else {
            h.tracker->flush();
        }
        const CtStats s = h.tracker->stats();
        ASSERT_EQ(s.created, s.expired + s.flushed + s.connections) << step;
        ASSERT_LE(s.connections, 150u) << step;
        ASSERT_EQ(h.tracker->check_invariants(), "") << step;
    }
    // Everything goes in the end.
    h.advance_seconds(86400 + 60);
    for (int k = 0; k < 10 && h.tracker->stats().connections > 0; ++k) h.expire_round();
    const CtStats s = h.tracker->stats();
    EXPECT_EQ(s.connections, 0u);
    EXPECT_GT(s.created, 200u);
    EXPECT_GT(s.refused, 0u);
    EXPECT_GT(s.flushed, 0u);
    EXPECT_GT(s.expired, 100u);
    EXPECT_EQ(h.tracker->check_invariants(), "");
}

// ---- Threads ----

// A worker (this thread) runs traffic and maintain() while the cleanup
// thread runs on a fast clock and another thread flushes and dumps. Every
// stats sample must add up, and the table must stay whole.
TEST(ConntrackThreads, WorkerCleanupAndControlRace) {
    ConnTrackerConfig c;
    c.shard_capacity = 512;
    c.units_per_second = 1000;
    c.timeouts = ConnTimeouts::open_vswitch(1);  // one "second" is one tick
    std::atomic<uint64_t> clock{0};
    c.clock = [&] { return clock.load(); };
    c.cleanup_min_interval = 1;
    c.cleanup_max_interval = 2;
    ConnTracker tracker(c);

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> samples{0}, bad{0};
    std::thread control([&] {
        run_on_any_cpu();
        uint64_t k = 0;
        while (!stop.load()) {
            const CtStats s = tracker.stats();
            if (s.created != s.expired + s.flushed + s.connections) bad.fetch_add(1);
            samples.fetch_add(1);
            if (++k % 64 == 0) tracker.flush(static_cast<uint16_t>(k % 3));
            if (k % 16 == 0) (void)tracker.dump();
            tracker.wake_cleanup();
        }
    });

    std::vector<Frame> frames;
    for (uint16_t port = 1; port <= 600; ++port) frames.push_back(udp4(kA, kB, port, 53));
    std::vector<CtPacket> packets;
    for (const Frame& f : frames) packets.push_back(f.packet());
    std::mt19937 rng(11);
    CtPacket burst[32];
    CtMeta metas[32];
    for (int round = 0; round < 20000 || samples.load() < 2000; ++round) {
        CtAction a;
        a.zone = static_cast<uint16_t>(round % 3);
        a.commit = true;
        for (unsigned i = 0; i < 32; ++i) {
            burst[i] = packets[rng() % packets.size()];
            metas[i] = CtMeta{};
        }
        clock.fetch_add(rng() % 3);
        tracker.shard(0).execute(a, burst, metas, 32, clock.load());
        tracker.shard(0).maintain(clock.load());
        if (round > 2000000) break;
    }
    stop = true;
    control.join();
    EXPECT_EQ(bad.load(), 0u);
    const CtStats s = tracker.stats();
    EXPECT_GT(s.created, 1000u);
    EXPECT_GT(s.expired, 100u);
    EXPECT_GT(s.flushed, 0u);
    EXPECT_EQ(s.created, s.expired + s.flushed + s.connections);
}

}  // namespace
