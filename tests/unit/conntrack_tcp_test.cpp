// The TCP tracker through the ct action: handshakes (and what ct without
// commit does to them), simultaneous open, the sequence-window checks in both
// directions, RST, FIN in both orders, retransmissions, window scaling, bad
// flag combinations, reuse of a closed 4-tuple, and the timeout class each
// state chooses. Expected verdicts are Open vSwitch 3.1's (conntrack-tcp.c).
#include <gtest/gtest.h>

#include "../../src/conntrack/tcp.hpp"
#include "conntrack_test_util.hpp"

using namespace flowpath;
using namespace flowpath::ct_test;

namespace {

constexpr uint32_t kClient = 0x0a000001;  // 10.0.0.1
constexpr uint32_t kServer = 0x0a000002;  // 10.0.0.2
constexpr uint16_t kClientPort = 40000;
constexpr uint16_t kServerPort = 80;

/// One TCP conversation: segments each way, and the tracker they go through.
struct Tcp : Harness {
    using Harness::Harness;

    Frame c2s(uint16_t flags, uint32_t seq, uint32_t ack, uint32_t payload = 0, uint16_t window = 65535,
              Bytes options = {}) {
        return tcp4(kClient, kServer, kClientPort, kServerPort, {flags, seq, ack, window, payload, options});
    }
    Frame s2c(uint16_t flags, uint32_t seq, uint32_t ack, uint32_t payload = 0, uint16_t window = 65535,
              Bytes options = {}) {
        return tcp4(kServer, kClient, kServerPort, kClientPort, {flags, seq, ack, window, payload, options});
    }
    /// The dump's protoinfo state of the only connection ("" if none).
    std::string shown_state() {
        const std::string d = tracker->dump();
        const size_t at = d.find("state=");
        return at == std::string::npos ? "" : d.substr(at + 6, d.find(')', at) - at - 6);
    }
    /// The three-way handshake, committed: client ISN 1000, server 5000.
    void handshake() {
        EXPECT_CT(commit(c2s(kTcpSyn, 1000, 0)), kNewTrk);
        EXPECT_CT(commit(s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
        EXPECT_CT(commit(c2s(kTcpAck, 1001, 5001)), kEstTrk);
    }
};

TEST(ConntrackTcp, HandshakeEstablishesBothDirections) {
    Tcp t;
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_EQ(t.shown_state(), "SYN_SENT");
    EXPECT_EQ(t.tracker->stats().connections, 1u);
    EXPECT_CT(t.commit(t.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
    EXPECT_EQ(t.shown_state(), "ESTABLISHED");
    EXPECT_CT(t.commit(t.c2s(kTcpAck, 1001, 5001)), kEstTrk);
    // Data both ways.
    EXPECT_CT(t.track(t.c2s(kTcpAck | kTcpPsh, 1001, 5001, 100)), kEstTrk);
    EXPECT_CT(t.track(t.s2c(kTcpAck | kTcpPsh, 5001, 1101, 1400)), kEstRplTrk);
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1101, 6401)), kEstTrk);
    EXPECT_EQ(t.tracker->dump(),
              "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),"
              "reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),protoinfo=(state=ESTABLISHED)\n");
    const CtStats s = t.tracker->stats();
    EXPECT_EQ(s.created, 1u);
    EXPECT_EQ(s.invalid, 0u);
}

TEST(ConntrackTcp, WithoutCommitNothingIsStored) {
    Tcp t;
    // ct without commit: +new, but no connection...
    EXPECT_CT(t.track(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_EQ(t.tracker->stats().connections, 0u);
    EXPECT_EQ(t.tracker->dump(), "");
    // ... so the SYN+ACK finds none, and may not open one: +inv.
    EXPECT_CT(t.commit(t.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kInvTrk);
    // A later SYN with commit opens it.
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_CT(t.track(t.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
    EXPECT_EQ(t.tracker->stats().invalid, 1u);
}

TEST(ConntrackTcp, RetransmittedSynIsStillNew) {
    Tcp t;
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_CT(t.track(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_EQ(t.tracker->stats().created, 1u);
    EXPECT_CT(t.track(t.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
}

TEST(ConntrackTcp, MidStreamPickupIsNewThenEstablished) {
    Tcp t;
    // An ACK without a handshake may open a connection (window scale unknown).
    EXPECT_CT(t.commit(t.c2s(kTcpAck, 777777, 888888, 10)), kNewTrk);
    EXPECT_CT(t.track(t.s2c(kTcpAck, 888888, 777787, 20)), kEstRplTrk);
    EXPECT_CT(t.track(t.c2s(kTcpAck, 777787, 888908, 10)), kEstTrk);
}

TEST(ConntrackTcp, SimultaneousOpen) {
    Tcp t;
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    // The other side's own SYN (no ACK): still opening, +new without +rpl.
    EXPECT_CT(t.track(t.s2c(kTcpSyn, 5000, 0)), kNewTrk);
    // Each side answers with SYN+ACK.
    EXPECT_CT(t.track(t.c2s(kTcpSyn | kTcpAck, 1000, 5001)), kEstTrk);
    EXPECT_CT(t.track(t.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1001, 5001, 50)), kEstTrk);
    EXPECT_EQ(t.shown_state(), "ESTABLISHED");
}

TEST(ConntrackTcp, OutOfWindowBothWays) {
    Tcp t;
    t.handshake();
    // Windows are 65535 unscaled each way.
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1001 + 60000, 5001, 100)), kEstTrk);     // inside the server's window
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1001 + 200000, 5001, 100)), kInvTrk);    // beyond it
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001 + 300000, 1001, 100)), kInvTrk);    // the server, beyond
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001 - 200000, 1001, 100)), kInvTrk);    // more than a window back
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001, 1001 + 500000)), kInvTrk);         // acks data never sent
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001, 1001)), kEstRplTrk);               // and in window again
    EXPECT_EQ(t.tracker->stats().invalid, 4u);
    EXPECT_EQ(t.shown_state(), "ESTABLISHED");  // invalid segments change nothing
}

TEST(ConntrackTcp, RetransmissionsAreAccepted) {
    Tcp t;
    t.handshake();
    for (int k = 0; k < 3; ++k) EXPECT_CT(t.track(t.c2s(kTcpAck | kTcpPsh, 1001, 5001, 500)), kEstTrk);
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001, 1501)), kEstRplTrk);
    // The old segment again after it was acknowledged: a retransmission.
    EXPECT_CT(t.track(t.c2s(kTcpAck | kTcpPsh, 1001, 5001, 500)), kEstTrk);
    // The SYN+ACK retransmitted by the server.
    EXPECT_CT(t.track(t.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
}

TEST(ConntrackTcp, RstInSequenceClosesOutOfSequenceIsInvalid) {
    Tcp t;
    t.handshake();
    EXPECT_CT(t.track(t.s2c(kTcpRst, 5001 + 1000, 0)), kInvTrk);  // not at seqlo
    EXPECT_EQ(t.shown_state(), "ESTABLISHED");
    EXPECT_CT(t.track(t.s2c(kTcpRst | kTcpAck, 5001, 1001)), kEstRplTrk);
    EXPECT_EQ(t.shown_state(), "TIME_WAIT");
    // After a RST, a new SYN reuses the 4-tuple: the old connection goes.
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 90000, 0)), kNewTrk);
    EXPECT_EQ(t.shown_state(), "SYN_SENT");
    const CtStats s = t.tracker->stats();
    EXPECT_EQ(s.created, 2u);
    EXPECT_EQ(s.expired, 1u);
    EXPECT_EQ(s.connections, 1u);
}

TEST(ConntrackTcp, RstMustBeAtOrOneOffTheHighestSequence) {
    // The client's highest sequence is still its SYN's (1000): pure ACKs do
    // not move it. A RST at 1002 is too far, at 1001 one ahead: accepted.
    Tcp t;
    t.handshake();
    EXPECT_CT(t.track(t.c2s(kTcpRst, 1002, 0)), kInvTrk);
    EXPECT_CT(t.track(t.c2s(kTcpRst, 1001, 0)), kEstTrk);
    EXPECT_EQ(t.shown_state(), "TIME_WAIT");
}

TEST(ConntrackTcp, ClientClosesFirst) {
    Tcp t;
    t.handshake();
    EXPECT_CT(t.track(t.c2s(kTcpFin | kTcpAck, 1001, 5001)), kEstTrk);
    EXPECT_EQ(t.shown_state(), "CLOSING");
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001, 1002)), kEstRplTrk);         // client side FIN_WAIT_2
    EXPECT_CT(t.track(t.s2c(kTcpAck | kTcpPsh, 5001, 1002, 100)), kEstRplTrk);  // half-closed: data still flows
    EXPECT_CT(t.track(t.s2c(kTcpFin | kTcpAck, 5101, 1002)), kEstRplTrk);
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1002, 5102)), kEstTrk);
    EXPECT_EQ(t.shown_state(), "TIME_WAIT");  // both FIN_WAIT_2 (shown as TIME_WAIT, as OVS)
    // A new SYN on the closed 4-tuple without commit: the old one goes, +new.
    EXPECT_CT(t.track(t.c2s(kTcpSyn, 1000000, 0)), kNewTrk);
    EXPECT_EQ(t.tracker->stats().connections, 0u);
}

TEST(ConntrackTcp, ServerClosesFirst) {
    Tcp t;
    t.handshake();
    EXPECT_CT(t.track(t.s2c(kTcpFin | kTcpAck, 5001, 1001)), kEstRplTrk);
    EXPECT_EQ(t.shown_state(), "CLOSING");
    EXPECT_CT(t.track(t.c2s(kTcpFin | kTcpAck, 1001, 5002)), kEstTrk);
    EXPECT_EQ(t.shown_state(), "TIME_WAIT");  // server FIN_WAIT_2, client CLOSING
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5002, 1002)), kEstRplTrk);
    EXPECT_EQ(t.shown_state(), "TIME_WAIT");
    // Stray segments after the close are tolerated (pf's loose branch).
    EXPECT_CT(t.track(t.s2c(kTcpFin | kTcpAck, 5001, 1002)), kEstRplTrk);
}

TEST(ConntrackTcp, WindowScalingWidensTheWindow) {
    // Both SYNs announce a shift of 7: a window field of 1000 means 128000.
    Tcp t;
    EXPECT_CT(t.commit(t.c2s(kTcpSyn, 1000, 0, 0, 65535, wscale_option(7))), kNewTrk);
    EXPECT_CT(t.track(t.s2c(kTcpSyn | kTcpAck, 5000, 1001, 0, 65535, wscale_option(7))), kEstRplTrk);
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1001, 5001, 0, 1000)), kEstTrk);
    EXPECT_CT(t.track(t.s2c(kTcpAck, 5001, 1001, 0, 1000)), kEstRplTrk);
    // 100000 bytes ahead: inside 1000 << 7, outside an unscaled window.
    EXPECT_CT(t.track(t.c2s(kTcpAck, 1001 + 100000, 5001, 100, 1000)), kEstTrk);

    // The same without the options: invalid.
    Tcp u;
    EXPECT_CT(u.commit(u.c2s(kTcpSyn, 1000, 0)), kNewTrk);
    EXPECT_CT(u.track(u.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
    EXPECT_CT(u.track(u.c2s(kTcpAck, 1001, 5001, 0, 1000)), kEstTrk);
    EXPECT_CT(u.track(u.s2c(kTcpAck, 5001, 1001, 0, 1000)), kEstRplTrk);
    EXPECT_CT(u.track(u.c2s(kTcpAck, 1001 + 100000, 5001, 100, 1000)), kInvTrk);

    // Only one side scales: neither does.
    Tcp v;
    EXPECT_CT(v.commit(v.c2s(kTcpSyn, 1000, 0, 0, 65535, wscale_option(7))), kNewTrk);
    EXPECT_CT(v.track(v.s2c(kTcpSyn | kTcpAck, 5000, 1001)), kEstRplTrk);
    EXPECT_CT(v.track(v.c2s(kTcpAck, 1001, 5001, 0, 1000)), kEstTrk);
    EXPECT_CT(v.track(v.s2c(kTcpAck, 5001, 1001, 0, 1000)), kEstRplTrk);
    EXPECT_CT(v.track(v.c2s(kTcpAck, 1001 + 100000, 5001, 100, 1000)), kInvTrk);
}

TEST(ConntrackTcp, BadFlagCombinationsAreInvalid) {
    Tcp t;
    const uint16_t bad[] = {kTcpSyn | kTcpFin, kTcpSyn | kTcpRst, 0, kTcpFin, kTcpPsh, kTcpUrg | kTcpRst};
    for (uint16_t flags : bad) {
        EXPECT_CT(t.commit(t.c2s(flags, 1000, 0)), kInvTrk) << flags;  // cannot open
    }
    EXPECT_EQ(t.tracker->stats().connections, 0u);
    t.handshake();
    for (uint16_t flags : bad) {
        EXPECT_CT(t.track(t.c2s(flags, 1001, 5001)), kInvTrk) << flags;  // nor update
    }
    EXPECT_EQ(t.shown_state(), "ESTABLISHED");
}

TEST(ConntrackTcp, Ipv6Handshake) {
    Harness h;
    const auto a = ip6(1), b = ip6(2);
    EXPECT_CT(h.commit(tcp6(a, b, 1234, 443, {kTcpSyn, 10, 0})), kNewTrk);
    EXPECT_CT(h.track(tcp6(b, a, 443, 1234, {kTcpSyn | kTcpAck, 90, 11})), kEstRplTrk);
    EXPECT_CT(h.track(tcp6(a, b, 1234, 443, {kTcpAck, 11, 91, 65535, 30})), kEstTrk);
    EXPECT_EQ(h.tracker->dump(),
              "tcp,orig=(src=2001:db8::1,dst=2001:db8::2,sport=1234,dport=443),"
              "reply=(src=2001:db8::2,dst=2001:db8::1,sport=443,dport=1234),protoinfo=(state=ESTABLISHED)\n");
}

// ---- The state machine alone, with the classes it picks ----

TEST(TcpTracker, TimeoutClassFollowsTheStates) {
    TcpPeer peers[2];
    TcpSegment syn;
    syn.flags = kTcpSyn;
    syn.seq = 100;
    syn.window = 1000;
    tcp_new(peers, syn);
    EXPECT_EQ(peers[0].state, kTcpSynSent);
    EXPECT_EQ(peers[1].state, kTcpClosed);

    auto seg = [](uint16_t flags, uint32_t seq, uint32_t ack, uint32_t payload = 0) {
        TcpSegment s;
        s.flags = flags;
        s.seq = seq;
        s.ack = ack;
        s.window = 1000;
        s.payload = payload;
        return s;
    };
    TcpUpdate u = tcp_update(peers, true, seg(kTcpSyn | kTcpAck, 500, 101));
    EXPECT_EQ(u.result, CtUpdate::valid);
    EXPECT_EQ(u.timeout_class, TimeoutClass::tcp_opening);  // the server is SYN_SENT, the client ESTABLISHED
    u = tcp_update(peers, false, seg(kTcpAck, 101, 501));
    EXPECT_EQ(u.timeout_class, TimeoutClass::tcp_established);
    u = tcp_update(peers, false, seg(kTcpFin | kTcpAck, 101, 501));
    EXPECT_EQ(u.timeout_class, TimeoutClass::tcp_closing);
    u = tcp_update(peers, true, seg(kTcpFin | kTcpAck, 501, 102));
    EXPECT_EQ(u.timeout_class, TimeoutClass::tcp_fin_wait);  // both CLOSING or beyond
    u = tcp_update(peers, false, seg(kTcpAck, 102, 502));
    EXPECT_EQ(u.timeout_class, TimeoutClass::tcp_closed);  // both FIN_WAIT_2
    EXPECT_EQ(peers[0].state, kTcpFinWait2);
    EXPECT_EQ(peers[1].state, kTcpFinWait2);
    u = tcp_update(peers, false, seg(kTcpSyn, 9999, 0));
    EXPECT_EQ(u.result, CtUpdate::reopen);

    // A RST: straight to TIME_WAIT, the closed class.
    tcp_new(peers, syn);
    tcp_update(peers, true, seg(kTcpSyn | kTcpAck, 500, 101));
    u = tcp_update(peers, true, seg(kTcpRst | kTcpAck, 501, 101));
    EXPECT_EQ(u.result, CtUpdate::valid);
    EXPECT_EQ(u.timeout_class, TimeoutClass::tcp_closed);
}

TEST(TcpTracker, WindowScaleOptionParsing) {
    const uint8_t options[] = {2, 4, 0x05, 0xb4,  // MSS
                               1,                  // NOP
                               3, 3, 9,            // window scale 9
                               4, 2,               // SACK permitted
                               0, 0};              // end
    TcpSegment s;
    s.options = options;
    s.options_len = sizeof(options);
    EXPECT_EQ(tcp_window_scale(s), kWscaleKnown | 9);
    const uint8_t big[] = {3, 3, 200, 0};  // capped at 14
    s.options = big;
    s.options_len = sizeof(big);
    EXPECT_EQ(tcp_window_scale(s), kWscaleKnown | kMaxWscale);
    const uint8_t none[] = {1, 1, 0, 3, 3, 7, 0, 0};  // after the end
    s.options = none;
    s.options_len = sizeof(none);
    EXPECT_EQ(tcp_window_scale(s), 0);
    const uint8_t zero_length[] = {8, 0, 3, 3, 5, 0};  // a length below 2 counts as 2
    s.options = zero_length;
    s.options_len = sizeof(zero_length);
    EXPECT_EQ(tcp_window_scale(s), kWscaleKnown | 5);
}

TEST(TcpTracker, ValidNewAndInvalidFlags) {
    TcpSegment s;
    s.flags = kTcpSyn;
    EXPECT_TRUE(tcp_valid_new(s));
    s.flags = kTcpAck;
    EXPECT_TRUE(tcp_valid_new(s));
    s.flags = kTcpSyn | kTcpAck;
    EXPECT_FALSE(tcp_valid_new(s));
    s.flags = kTcpRst;
    EXPECT_TRUE(tcp_valid_new(s));  // as Open vSwitch: a RST may open one
    EXPECT_TRUE(tcp_invalid_flags(kTcpFin | kTcpPsh));
    EXPECT_FALSE(tcp_invalid_flags(kTcpFin | kTcpAck));
    EXPECT_FALSE(tcp_invalid_flags(kTcpRst));
}

}  // namespace
