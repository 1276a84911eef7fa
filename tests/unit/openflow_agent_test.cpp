// The OpenFlow agent: one session's protocol over a MemoryBackend (no
// sockets), then the agent's thread with real TCP connections (listener,
// controllers that go away and come back, idle probes, packet-ins).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "../../src/openflow/session.hpp"
#include "flowpath/log.hpp"
#include "flowpath/openflow.hpp"

using namespace flowpath;
using namespace flowpath::of;
using namespace std::chrono_literals;

namespace {

// The agent logs connections at info; the tests' own output is enough.
const bool kQuiet = (set_log_level(LogLevel::warn), true);

const PortNames kPorts = {"p1", "p2", "p3", "p4"};

Rule parse_ok(const std::string& text) {
    Parsed<Rule> rule = parse_rule(text, kPorts);
    EXPECT_TRUE(rule.ok()) << text;
    return rule.ok() ? rule.value() : Rule{};
}

template <typename M>
Bytes encoded(const M& message, uint32_t xid) {
    Bytes out;
    encode(message, xid, out);
    return out;
}

FlowMod add(const std::string& rule_text, uint16_t flags = 0) {
    const Rule r = parse_ok(rule_text);
    FlowMod m;
    m.table_id = r.table;
    m.priority = r.priority;
    m.cookie = r.cookie;
    m.idle_timeout = r.idle_timeout;
    m.hard_timeout = r.hard_timeout;
    m.match.match = r.match;
    m.instructions.actions = r.actions;
    m.flags = flags;
    return m;
}

FlowMod del(const std::string& match_text, uint8_t command = kFlowDelete) {
    Parsed<MatchFilter> f = parse_match(match_text, kPorts);
    EXPECT_TRUE(f.ok()) << match_text;
    FlowMod m;
    m.command = command;
    m.table_id = f.value().table.value_or(kTableAll);
    m.priority = f.value().priority.value_or(kDefaultPriority);
    m.cookie = f.value().cookie;
    m.cookie_mask = f.value().cookie_mask;
    m.match.match = f.value().match;
    return m;
}

MultipartRequest dump_request(const FlowStatsRequest& body = {}, MultipartType type = MultipartType::kFlow) {
    MultipartRequest m;
    m.type = static_cast<uint16_t>(type);
    encode_body(body, m.body);
    return m;
}

// An untagged IPv4/TCP frame from 10.0.0.1 to 10.0.0.2, port 80.
Bytes tcp_frame() {
    Bytes f = {0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0,
               10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0x00, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0};
    f.resize(60, 0);
    return f;
}

// One session over a MemoryBackend, with the agent's role bookkeeping for
// the sessions of the test.
class SessionTest : public ::testing::Test {
protected:
    SessionTest() : host{backend, options, counters, std::nullopt, [this](Session& master) {
                             for (Session* s : sessions) {
                                 if (s != &master && s->role() == kRoleMaster) s->demote();
                             }
                         }} {}

    Session& open(bool passive = false) {
        owned.push_back(std::make_unique<Session>(host, passive, "test", now));
        Session& s = *owned.back();
        sessions.push_back(&s);
        EXPECT_EQ(next(s).type, static_cast<uint8_t>(MsgType::kHello));
        s.receive(encoded(Hello{}, 1), now);
        EXPECT_TRUE(s.established());
        return s;
    }

    // The next message the session sent (type 0xff with nothing queued).
    struct Sent {
        uint8_t type = 0xff;
        uint32_t xid = 0;
        Bytes bytes;
    };
    Sent next(Session& s) {
        const ByteView out = s.pending();
        if (out.size() < kHeaderLen) return {};
        const Header h = *peek_header(out);
        Sent sent{h.type, h.xid, Bytes(out.begin(), out.begin() + h.length)};
        s.sent(h.length);
        return sent;
    }
    OfError next_error(Session& s) {
        const Sent m = next(s);
        EXPECT_EQ(m.type, static_cast<uint8_t>(MsgType::kError));
        Decoded<ErrorMsg> e = decode<ErrorMsg>(m.bytes);
        return e.ok() ? e.value().error : OfError{0xffff, 0xffff};
    }
    template <typename M>
    M next_as(Session& s) {
        const Sent m = next(s);
        EXPECT_EQ(m.type, static_cast<uint8_t>(M::kType)) << "got " << msg_type_name(m.type);
        Decoded<M> d = decode<M>(m.bytes);
        EXPECT_TRUE(d.ok());
        return d.ok() ? d.value() : M{};
    }
    std::vector<FlowStats> dump(Session& s, const FlowStatsRequest& body = {}) {
        s.receive(encoded(dump_request(body), 50), now);
        std::vector<FlowStats> all;
        for (;;) {
            MultipartReply r = next_as<MultipartReply>(s);
            Decoded<std::vector<FlowStats>> part = decode_body<std::vector<FlowStats>>(r.body);
            EXPECT_TRUE(part.ok());
            if (part.ok()) all.insert(all.end(), part.value().begin(), part.value().end());
            if (!(r.flags & kMultipartMore)) return all;
        }
    }

    MemoryBackend backend{kPorts};
    OpenFlowOptions options;
    SessionCounters counters;
    SessionHost host;
    Clock::time_point now{};
    std::vector<std::unique_ptr<Session>> owned;
    std::vector<Session*> sessions;
};

}  // namespace

TEST_F(SessionTest, HelloNegotiatesOneThreeOrRefuses) {
    Session s(host, false, "old", now);
    EXPECT_EQ(next(s).type, static_cast<uint8_t>(MsgType::kHello));
    Hello old;
    old.versions = 1u << 1;  // OpenFlow 1.0 only
    s.receive(encoded(old, 3), now);
    EXPECT_EQ(next_error(s), err::kHelloIncompatible);
    EXPECT_TRUE(s.closing());
    EXPECT_FALSE(s.established());
    Session& good = open();
    EXPECT_FALSE(good.closing());
}

TEST_F(SessionTest, EveryOtherMessageGetsItsErrorAndTheConnectionStays) {
    Session& s = open();
    Bytes m = encoded(EchoRequest{}, 4);
    m[0] = 0x01;  // OpenFlow 1.0 after 1.3 was agreed
    s.receive(m, now);
    EXPECT_EQ(next_error(s), err::kBadVersion);
    for (uint8_t type : {uint8_t(15), uint8_t(16), uint8_t(29), uint8_t(10), uint8_t(6), uint8_t(99)}) {
        Bytes msg = encoded(BarrierRequest{}, 5);
        msg[1] = type;  // group_mod, port_mod, meter_mod, what switches send, unknown
        s.receive(msg, now);
        EXPECT_EQ(next_error(s), err::kBadType) << int(type);
    }
    Bytes exp = encoded(EchoRequest{{0, 0, 0x23, 0x20, 0, 0, 0, 1}}, 6);
    exp[1] = static_cast<uint8_t>(MsgType::kExperimenter);
    s.receive(exp, now);
    EXPECT_EQ(next_error(s), err::kBadExperimenter);
    for (MultipartType t : {MultipartType::kGroup, MultipartType::kMeter, MultipartType::kQueue}) {
        MultipartRequest req;
        req.type = static_cast<uint16_t>(t);
        s.receive(encoded(req, 7), now);
        EXPECT_EQ(next_error(s), err::kBadMultipart);
    }
    // The error carries the request (all of it, as Open vSwitch sends it).
    Bytes long_echo = encoded(EchoRequest{Bytes(200, 7)}, 8);
    long_echo[1] = 99;
    s.receive(long_echo, now);
    Decoded<ErrorMsg> e = decode<ErrorMsg>(next(s).bytes);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e.value().data, long_echo);
    // One as long as a message can be gets what fits.
    Bytes longest = encoded(EchoRequest{Bytes(kMaxMessageLen - kHeaderLen, 7)}, 9);
    longest[1] = 99;
    s.receive(longest, now);
    const Bytes error = next(s).bytes;
    EXPECT_EQ(error.size(), kMaxMessageLen);
    EXPECT_EQ(decode<ErrorMsg>(error).value().data.size(), kMaxMessageLen - 12);
    EXPECT_FALSE(s.closing());
    // A length below the header's cannot be skipped: the session hangs up.
    Bytes broken = encoded(BarrierRequest{}, 9);
    broken[3] = 4;
    s.receive(broken, now);
    EXPECT_EQ(next_error(s), err::kBadLen);
    EXPECT_TRUE(s.closing());
}

TEST_F(SessionTest, MessagesSplitAcrossReadsAndManyInOneRead) {
    Session& s = open();
    Bytes both = encoded(EchoRequest{{1, 2, 3}}, 10);
    const Bytes barrier = encoded(BarrierRequest{}, 11);
    both.insert(both.end(), barrier.begin(), barrier.end());
    for (size_t i = 0; i < both.size(); ++i) s.receive(ByteView(both).subspan(i, 1), now);
    EXPECT_EQ(next_as<EchoReply>(s).data, (Bytes{1, 2, 3}));
    EXPECT_EQ(next(s).xid, 11u);
    EXPECT_EQ(next(s).type, 0xff);
}

TEST_F(SessionTest, FeaturesConfigAndDescriptions) {
    options.datapath_id = 0xabcdef;
    Session& s = open();
    s.receive(encoded(FeaturesRequest{}, 1), now);
    const FeaturesReply f = next_as<FeaturesReply>(s);
    EXPECT_EQ(f.datapath_id, 0xabcdefu);
    EXPECT_EQ(f.n_tables, 254);
    s.receive(encoded(GetConfigRequest{}, 2), now);
    EXPECT_EQ(next_as<GetConfigReply>(s).miss_send_len, 128);
    SetConfig c;
    c.miss_send_len = 200;
    s.receive(encoded(c, 3), now);
    s.receive(encoded(GetConfigRequest{}, 4), now);
    EXPECT_EQ(next_as<GetConfigReply>(s).miss_send_len, 200);
    c.flags = 1;  // OFPC_FRAG_DROP
    s.receive(encoded(c, 5), now);
    EXPECT_EQ(next_error(s), err::kConfigBadFlags);
    MultipartRequest ports;
    ports.type = static_cast<uint16_t>(MultipartType::kPortDesc);
    s.receive(encoded(ports, 6), now);
    Decoded<std::vector<PortDesc>> descs = decode_body<std::vector<PortDesc>>(next_as<MultipartReply>(s).body);
    ASSERT_TRUE(descs.ok());
    ASSERT_EQ(descs.value().size(), 4u);
    EXPECT_EQ(descs.value()[2].name, "p3");
    MultipartRequest features;
    features.type = static_cast<uint16_t>(MultipartType::kTableFeatures);
    s.receive(encoded(features, 7), now);
    size_t tables = 0;
    for (;;) {
        const MultipartReply r = next_as<MultipartReply>(s);
        tables += decode_body<std::vector<TableFeatures>>(r.body).value().size();
        if (!(r.flags & kMultipartMore)) break;
    }
    EXPECT_EQ(tables, 254u);
    features.body = Bytes(64, 0);  // setting table features is refused
    s.receive(encoded(features, 8), now);
    EXPECT_EQ(next_error(s), err::kTableFeaturesEperm);
}

TEST_F(SessionTest, FlowModsAddModifyDeleteWithOpenFlowSemantics) {
    Session& s = open();
    s.receive(encoded(add("priority=10,tcp,tp_dst=80,actions=output:1"), 1), now);
    s.receive(encoded(add("cookie=0x10,priority=10,udp,actions=output:2"), 2), now);
    s.receive(encoded(add("cookie=0x11,table=1,priority=5,ip,actions=output:3"), 3), now);
    EXPECT_EQ(next(s).type, 0xff);  // success is silent
    std::vector<FlowStats> flows = dump(s);
    ASSERT_EQ(flows.size(), 3u);
    EXPECT_EQ(flows[2].table_id, 1);
    // Modify (loose): every ip rule of table 0 gets new actions, cookies stay.
    FlowMod modify = del("ip");
    modify.command = kFlowModify;
    modify.table_id = 0;
    modify.instructions.actions = {Action::output(4)};
    s.receive(encoded(modify, 4), now);
    flows = dump(s);
    EXPECT_EQ(flows[0].instructions.actions, ActionList{Action::output(4)});
    EXPECT_EQ(flows[1].instructions.actions, ActionList{Action::output(4)});
    EXPECT_EQ(flows[1].cookie, 0x10u);
    EXPECT_EQ(flows[2].instructions.actions, ActionList{Action::output(3)});
    // Delete by cookie under a mask.
    s.receive(encoded(del("cookie=0x10/0xfe"), 5), now);
    flows = dump(s);
    ASSERT_EQ(flows.size(), 1u);
    EXPECT_EQ(flows[0].priority, 10);
    // Strict delete needs the exact match and priority.
    s.receive(encoded(del("priority=11,tcp,tp_dst=80", kFlowDeleteStrict), 6), now);
    EXPECT_EQ(dump(s).size(), 1u);
    s.receive(encoded(del("priority=10,tcp,tp_dst=80", kFlowDeleteStrict), 7), now);
    EXPECT_TRUE(dump(s).empty());
}

TEST_F(SessionTest, FlowModErrorsComeInOrderBeforeTheBarrier) {
    Session& s = open();
    Bytes batch = encoded(add("priority=5,ip,actions=output:1"), 1);
    const auto append = [&](const Bytes& b) { batch.insert(batch.end(), b.begin(), b.end()); };
    append(encoded(add("priority=5,ip,nw_src=1.2.3.4,actions=output:2", kFlagCheckOverlap), 2));
    FlowMod bad_port = add("actions=output:1");
    bad_port.instructions.actions = {Action::output(9)};
    append(encoded(bad_port, 3));
    FlowMod bad_table = add("actions=drop");
    bad_table.table_id = 254;
    append(encoded(bad_table, 4));
    FlowMod goto_back = add("table=3,actions=drop");
    goto_back.instructions.actions = {Action::goto_table(2)};
    append(encoded(goto_back, 5));
    FlowMod metadata = add("priority=3,metadata=0x1/0x1,actions=drop");  // accepted
    append(encoded(metadata, 6));
    FlowMod bad_command = add("actions=drop");
    bad_command.command = 9;
    append(encoded(bad_command, 7));
    FlowMod buffered = add("priority=9,actions=output:2");
    buffered.buffer_id = 5;
    append(encoded(buffered, 8));
    append(encoded(BarrierRequest{}, 9));
    s.receive(batch, now);
    const std::pair<uint32_t, OfError> expected[] = {
        {2, err::kOverlap}, {3, err::kBadOutPort}, {4, err::kFlowModBadTable}, {5, err::kBadGotoTable},
        {7, err::kBadCommand}, {8, err::kBufferUnknown}};
    for (const auto& [xid, error] : expected) {
        const Sent m = next(s);
        EXPECT_EQ(m.xid, xid);
        EXPECT_EQ(decode<ErrorMsg>(m.bytes).value().error, error) << xid;
    }
    EXPECT_EQ(next(s).type, static_cast<uint8_t>(MsgType::kBarrierReply));
    // The buffered one was still applied, as OpenFlow says; so was the
    // one matching metadata.
    EXPECT_EQ(backend.rule_count(), 3u);
}

TEST_F(SessionTest, ConnectionTrackingRulesAreAccepted) {
    // RuleSet::check decides what the datapath cannot run; connection
    // tracking runs now.
    Session& s = open();
    s.receive(encoded(add("ip,actions=ct(commit)"), 1), now);
    s.receive(encoded(add("ct_state=+trk,actions=drop"), 2), now);
    s.receive(encoded(BarrierRequest{}, 3), now);
    EXPECT_EQ(next(s).type, static_cast<uint8_t>(MsgType::kBarrierReply));
    EXPECT_EQ(backend.rule_count(), 2u);
}

TEST_F(SessionTest, RolesGenerationsAndSlaves) {
    Session& a = open();
    Session& b = open();
    RoleRequest r;
    r.role = kRoleMaster;
    r.generation_id = 10;
    a.receive(encoded(r, 1), now);
    RoleReply reply = next_as<RoleReply>(a);
    EXPECT_EQ(reply.role, kRoleMaster);
    EXPECT_EQ(reply.generation_id, 10u);
    // b takes over: a is a slave now and may not change the tables.
    r.generation_id = 11;
    b.receive(encoded(r, 2), now);
    EXPECT_EQ(next_as<RoleReply>(b).role, kRoleMaster);
    EXPECT_EQ(a.role(), kRoleSlave);
    a.receive(encoded(add("actions=drop"), 3), now);
    EXPECT_EQ(next_error(a), err::kIsSlave);
    PacketOut out;
    out.actions = {Action::output(1)};
    out.data = tcp_frame();
    a.receive(encoded(out, 4), now);
    EXPECT_EQ(next_error(a), err::kIsSlave);
    // A stale generation is refused; NOCHANGE reports.
    r.generation_id = 9;
    a.receive(encoded(r, 5), now);
    EXPECT_EQ(next_error(a), err::kRoleStale);
    r.role = kRoleNoChange;
    a.receive(encoded(r, 6), now);
    EXPECT_EQ(next_as<RoleReply>(a).role, kRoleSlave);
    r.role = 7;
    a.receive(encoded(r, 7), now);
    EXPECT_EQ(next_error(a), err::kBadRole);
    // Generations wrap: 2^64 - 1 is before 0.
    r.role = kRoleSlave;
    r.generation_id = ~uint64_t{0};
    host.generation_id = ~uint64_t{0};
    b.receive(encoded(r, 8), now);
    EXPECT_EQ(next_as<RoleReply>(b).role, kRoleSlave);
    r.role = kRoleMaster;
    r.generation_id = 0;
    b.receive(encoded(r, 9), now);
    EXPECT_EQ(next_as<RoleReply>(b).role, kRoleMaster);
}

TEST_F(SessionTest, AsynchronousMessagesFollowRoleConfigAndMissSendLen) {
    Session& active = open(false);
    Session& service = open(true);
    PacketInEvent in;
    in.reason = kReasonAction;
    in.in_port = 2;
    in.cookie = 0x77;
    in.max_len = 20;
    in.packet = tcp_frame();
    active.send_packet_in(in);
    service.send_packet_in(in);
    PacketIn p = next_as<PacketIn>(active);
    EXPECT_EQ(p.data, Bytes(in.packet.begin(), in.packet.begin() + 20));
    EXPECT_EQ(p.total_len, 60);
    EXPECT_EQ(p.cookie, 0x77u);
    EXPECT_EQ(p.match.match.value.in_port, 2u);
    EXPECT_EQ(p.buffer_id, kNoBuffer);
    EXPECT_EQ(next(service).type, 0xff);  // a service connection did not ask
    SetConfig c;
    c.miss_send_len = 0xffff;
    service.receive(encoded(c, 1), now);
    in.max_len = kUseMissSendLen;
    service.send_packet_in(in);
    EXPECT_EQ(next_as<PacketIn>(service).data.size(), 60u);
    // SET_ASYNC: no more packet-ins for ACTION; a slave gets none.
    SetAsync a;
    a.port_status_mask[0] = 0x7;
    active.receive(encoded(a, 2), now);
    active.send_packet_in(in);
    EXPECT_EQ(next(active).type, 0xff);
    active.receive(encoded(GetAsyncRequest{}, 3), now);
    EXPECT_EQ(next_as<GetAsyncReply>(active).port_status_mask[0], 0x7u);
    active.send_port_status({kPortModified, PortDesc{.port_no = 3, .name = "p3"}});
    EXPECT_EQ(next_as<PortStatus>(active).port.port_no, 3u);
    RoleRequest slave;
    slave.role = kRoleSlave;
    service.receive(encoded(slave, 4), now);
    next(service);
    service.send_packet_in(in);
    EXPECT_EQ(next(service).type, 0xff);
    FlowRemovedEvent removed{parse_ok("cookie=3,tcp,actions=drop"), kRemovedDelete, 1, 2, 3, 4};
    service.send_flow_removed(removed);  // slave: no flow_removed by default
    EXPECT_EQ(next(service).type, 0xff);
}

// A PACKET_IN's match as Open vSwitch fills it: in_port, then what is not
// zero of metadata, ct_state (with eth_type), ct_zone and ct_mark (the
// encoding itself: OpenFlowMessages.PacketInMatchIsOpenVSwitchs).
TEST_F(SessionTest, PacketInMatchShowsWhatIsNotZero) {
    Session& active = open(false);
    PacketInEvent in;
    in.in_port = 2;
    in.packet = tcp_frame();
    active.send_packet_in(in);
    Match want;
    want.value.in_port = 2;
    want.mask.in_port = 0xffffffff;
    EXPECT_EQ(next_as<PacketIn>(active).match.match, want);

    in.metadata = 0x1200;
    in.ct_state = kCtTracked | kCtInvalid;
    in.ct_mark = 9;
    in.dl_type = htons(0x86dd);
    active.send_packet_in(in);
    want.metadata = 0x1200;
    want.metadata_mask = ~uint64_t{0};
    want.value.ct_state = kCtTracked | kCtInvalid;
    want.mask.ct_state = 0xff;
    want.value.ct_mark = 9;
    want.mask.ct_mark = 0xffffffff;
    want.value.dl_type = htons(0x86dd);
    want.mask.dl_type = 0xffff;
    EXPECT_EQ(next_as<PacketIn>(active).match.match, want);  // no ct_zone: it is 0
}

TEST_F(SessionTest, IdleProbeThenGiveUp) {
    options.probe_interval = 5s;
    Session& s = open();
    s.tick(now + 4s);
    EXPECT_EQ(next(s).type, 0xff);
    s.tick(now + 5s);
    EXPECT_EQ(next(s).type, static_cast<uint8_t>(MsgType::kEchoRequest));
    s.tick(now + 9s);
    EXPECT_FALSE(s.closing());
    s.tick(now + 10s);
    EXPECT_TRUE(s.closing());
    // Any message resets the clock.
    Session& t = open();
    t.tick(now + 5s);
    next(t);
    t.receive(encoded(EchoReply{}, 1), now + 6s);
    t.tick(now + 10s);
    EXPECT_FALSE(t.closing());
    EXPECT_EQ(t.next_deadline(), now + 11s);
}

TEST_F(SessionTest, AFloodOfRequestsStopsAtTheOutputBound) {
    options.max_queued_bytes = 4096;
    Session& s = open();
    Bytes flood;
    for (int i = 0; i < 1000; ++i) {
        const Bytes echo = encoded(EchoRequest{Bytes(100, 1)}, static_cast<uint32_t>(i));
        flood.insert(flood.end(), echo.begin(), echo.end());
    }
    s.receive(flood, now);
    EXPECT_TRUE(s.backpressured());
    EXPECT_LT(s.pending().size(), 4096u + 200);
    // Reading the replies lets the rest through, in order.
    uint32_t expected = 0;
    while (s.pending().size() > 0) {
        const Sent m = next(s);
        EXPECT_EQ(m.xid, expected++);
        if (s.pending().empty()) s.receive({}, now);
    }
    EXPECT_EQ(expected, 1000u);
}

TEST_F(SessionTest, PacketOutToPortsAndThroughTheTables) {
    Session& s = open();
    s.receive(encoded(add("tcp,tp_dst=80,actions=output:3"), 1), now);
    PacketOut out;
    out.in_port = 1;
    out.data = tcp_frame();
    out.actions = {Action::output(2), Action::output(kPortTable)};
    s.receive(encoded(out, 2), now);
    EXPECT_EQ(next(s).type, 0xff);
    EXPECT_EQ(backend.sent(2).size(), 1u);
    EXPECT_EQ(backend.sent(3).size(), 1u);
    EXPECT_EQ(dump(s)[0].packet_count, 1u);
    // Prerequisites are those of the packet: set_field to ipv4_src on TCP is fine, on ARP not.
    const uint8_t address[4] = {10, 9, 9, 9};
    out.actions = {Action::set(SetField::kIpv4Src, address), Action::output(4)};
    s.receive(encoded(out, 3), now);
    EXPECT_EQ(next(s).type, 0xff);
    ASSERT_EQ(backend.sent(4).size(), 1u);
    EXPECT_EQ(backend.sent(4)[0][26], 10);
    EXPECT_EQ(backend.sent(4)[0][29], 9);
    Bytes arp = tcp_frame();
    arp[12] = 0x08;
    arp[13] = 0x06;
    out.data = arp;
    s.receive(encoded(out, 4), now);
    EXPECT_EQ(next_error(s), err::kMatchInconsistent);
    out.in_port = 7;
    s.receive(encoded(out, 5), now);
    EXPECT_EQ(next_error(s), err::kBadPort);
    out.in_port = kPortController;
    out.data.clear();
    s.receive(encoded(out, 6), now);
    EXPECT_EQ(next_error(s), err::kBadPacket);
}

// set_field to metadata in a PACKET_OUT: the next OUTPUT:TABLE or
// resubmit runs the rules with it (a rule matching metadata takes the
// packet), a CONTROLLER action shows it; later changes do not reach an
// earlier entry. Each packet-out is checked by what each port got.
TEST_F(SessionTest, PacketOutMetadataReachesTheTablesItEnters) {
    struct Recorder final : OpenFlowEvents {
        std::vector<PacketInEvent> ins;
        void packet_in(PacketInEvent event) override { ins.push_back(std::move(event)); }
        void flow_removed(FlowRemovedEvent) override {}
        void port_status(PortStatusEvent) override {}
    } events;
    backend.set_events(&events);
    Session& s = open();
    for (const char* rule : {"metadata=0x5,actions=output:2", "priority=0,actions=output:4",
                             "metadata=0x1ff/0xff,actions=output:3", "table=1,metadata=0x5,actions=output:3",
                             "table=1,priority=0,actions=output:4", "table=1,priority=9,in_port=3,actions=output:3,in_port",
                             "table=2,actions=controller"}) {
        s.receive(encoded(add(rule), 1), now);
    }
    PacketOut out;
    out.in_port = 1;
    out.data = tcp_frame();
    const auto sent = [&] {
        std::vector<size_t> n;
        for (uint32_t port = 1; port <= 4; ++port) n.push_back(backend.sent(port).size());
        return n;
    };
    const auto run = [&](ActionList actions) {
        const std::vector<size_t> before = sent();
        out.actions = std::move(actions);
        s.receive(encoded(out, 2), now);
        EXPECT_EQ(next(s).type, 0xff);  // no error
        std::vector<size_t> got = sent();
        for (size_t i = 0; i < got.size(); ++i) got[i] -= before[i];
        return got;
    };
    using V = std::vector<size_t>;
    EXPECT_EQ(run({Action::output(kPortTable)}), (V{0, 0, 0, 1}));  // metadata 0: the table miss
    EXPECT_EQ(run({Action::set_metadata(5, ~uint64_t{0}, false), Action::output(kPortTable)}), (V{0, 1, 0, 0}));
    // Masked (an NXAST_REG_LOAD on the wire): 0xff of 0x1ff.
    EXPECT_EQ(run({Action::set_metadata(0x1ff, 0xff, true), Action::output(kPortTable)}), (V{0, 0, 1, 0}));
    // resubmit(,1) and resubmit(1,1) (the packet's own port): table 1 with it.
    EXPECT_EQ(run({Action::set_metadata(5, ~uint64_t{0}, false), Action::resubmit(kResubmitSamePort, 1)}),
              (V{0, 0, 1, 0}));
    EXPECT_EQ(run({Action::resubmit(1, 1), Action::set_metadata(5, ~uint64_t{0}, false), Action::resubmit(1, 1),
                   Action::output(kPortTable)}),
              (V{0, 1, 1, 1}));
    // resubmit(2) (same table: a packet-out's is 0), metadata set after it.
    EXPECT_EQ(run({Action::resubmit(kResubmitSamePort, kResubmitSameTable),
                   Action::set_metadata(5, ~uint64_t{0}, false)}),
              (V{0, 0, 0, 1}));
    // The PACKET_INs: a rule's CONTROLLER in a table resubmitted to, and
    // the packet-out's own, each with the metadata there.
    events.ins.clear();
    run({Action::set_metadata(0x77, ~uint64_t{0}, false), Action::resubmit(kResubmitSamePort, 2),
         Action::set_metadata(0x88, 0xf0, true), Action::controller(0xffff)});
    ASSERT_EQ(events.ins.size(), 2u);
    EXPECT_EQ(events.ins[0].metadata, 0x77u);
    EXPECT_EQ(events.ins[0].table_id, 2);
    EXPECT_EQ(events.ins[0].in_port, 1u);
    EXPECT_EQ(events.ins[0].reason, kReasonAction);
    EXPECT_EQ(events.ins[1].metadata, 0x87u);
    EXPECT_EQ(events.ins[1].table_id, 0);
    // resubmit(3,1): port 3 is the lookup's only, the rule's actions see
    // the packet's in_port 1 (output:3 leaves, in_port is p1), as in Open
    // vSwitch; after set_field to in_port 3 both are 3 (output:3 is to the
    // in_port: only the in_port action sends).
    EXPECT_EQ(run({Action::resubmit(3, 1)}), (V{1, 0, 1, 0}));
    Action to3 = Action::of(ActionType::kSetField);
    to3.field = SetField::kInPort;
    to3.port = 3;
    EXPECT_EQ(run({to3, Action::resubmit(kResubmitSamePort, 1)}), (V{0, 0, 1, 0}));
    backend.set_events(nullptr);
}

// Where a packet-out's packet starts: table 0 without metadata is a first
// pass (recirc_id 0); otherwise an id the translator thaws into that
// table, in_port and metadata.
TEST(PacketOut, RecircIdStartsThePassWhereTheEntrySays) {
    RuleSet rules(kPorts);
    rules.add(parse_ok("table=3,metadata=0x42,actions=output:p4"));
    rules.add(parse_ok("table=3,priority=0,actions=output:p2"));
    rules.add(parse_ok("table=3,priority=5,in_port=p3,actions=in_port"));
    EXPECT_EQ(packet_out_recirc_id(rules, PacketOutEntry{1, 0, 0, 1}), 0u);
    for (const PacketOutEntry& entry : {PacketOutEntry{1, 3, 0x42, 1}, PacketOutEntry{1, 3, 0, 1},
                                        PacketOutEntry{2, 0, 7, 2}, PacketOutEntry{kPortController, 3, 0x42, 1},
                                        PacketOutEntry{1, 0, 0, 2}, PacketOutEntry{1, 3, 0x42, 2}}) {
        const std::optional<uint32_t> id = packet_out_recirc_id(rules, entry);
        ASSERT_TRUE(id && *id != 0);
        const RecircState state = rules.thaw(*id, entry.in_port);
        EXPECT_EQ(state.table, entry.table);
        EXPECT_EQ(state.in_port, entry.in_port);
        EXPECT_EQ(state.metadata, entry.metadata);
        EXPECT_EQ(state.lookup_in_port, entry.lookup_in_port);
    }
    // Two lookup ports, two states (the same metadata and in_port).
    EXPECT_NE(packet_out_recirc_id(rules, PacketOutEntry{1, 3, 0x42, 1}),
              packet_out_recirc_id(rules, PacketOutEntry{1, 3, 0x42, 2}));
    FlowKey key;
    PacketLayout layout;
    const Bytes frame = tcp_frame();
    parse_flow_key(frame.data(), static_cast<uint32_t>(frame.size()), 1, key, layout);
    key.recirc_id = *packet_out_recirc_id(rules, PacketOutEntry{1, 3, 0x42, 1});
    Translation t;
    translate(rules, key, t);
    ASSERT_EQ(t.outputs(), 1u);
    EXPECT_EQ(t.actions.back().port, 4u);
    key.recirc_id = *packet_out_recirc_id(rules, PacketOutEntry{1, 3, 0x43, 1});
    translate(rules, key, t);
    ASSERT_EQ(t.outputs(), 1u);
    EXPECT_EQ(t.actions.back().port, 2u);
    // resubmit(3,3) of a packet-out from port 1: the lookup on port 3, the
    // rule's in_port action to port 1.
    key.recirc_id = *packet_out_recirc_id(rules, PacketOutEntry{1, 3, 0, 3});
    translate(rules, key, t);
    ASSERT_EQ(t.outputs(), 1u);
    EXPECT_EQ(t.actions.back().port, 1u);
}

TEST_F(SessionTest, StatsRepliesAddUp) {
    Session& s = open();
    s.receive(encoded(add("priority=1,actions=output:2"), 1), now);
    s.receive(encoded(add("table=2,priority=1,actions=output:3"), 2), now);
    backend.receive(1, tcp_frame());
    backend.receive(1, tcp_frame());
    s.receive(encoded(dump_request({}, MultipartType::kAggregate), 3), now);
    const AggregateStats sum = decode_body<AggregateStats>(next_as<MultipartReply>(s).body).value();
    EXPECT_EQ(sum.flow_count, 2u);
    EXPECT_EQ(sum.packet_count, 2u);
    EXPECT_EQ(sum.byte_count, 120u);
    MultipartRequest tables;
    tables.type = static_cast<uint16_t>(MultipartType::kTable);
    s.receive(encoded(tables, 4), now);
    const std::vector<TableStats> t = decode_body<std::vector<TableStats>>(next_as<MultipartReply>(s).body).value();
    ASSERT_EQ(t.size(), 254u);
    EXPECT_EQ(t[0].active_count, 1u);
    EXPECT_EQ(t[0].matched_count, 2u);
    EXPECT_EQ(t[2].active_count, 1u);
    MultipartRequest ports;
    ports.type = static_cast<uint16_t>(MultipartType::kPortStats);
    encode_body(PortStatsRequest{2}, ports.body);
    s.receive(encoded(ports, 5), now);
    const std::vector<PortStats> p = decode_body<std::vector<PortStats>>(next_as<MultipartReply>(s).body).value();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].tx_packets, 2u);
    ports.body.clear();
    encode_body(PortStatsRequest{9}, ports.body);
    s.receive(encoded(ports, 6), now);
    EXPECT_EQ(next_error(s), err::kBadPort);
    FlowStatsRequest by_table;
    by_table.table_id = 2;
    EXPECT_EQ(dump(s, by_table).size(), 1u);
    FlowStatsRequest by_port;
    by_port.out_port = 3;
    EXPECT_EQ(dump(s, by_port).size(), 1u);
}
