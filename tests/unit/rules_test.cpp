// Tests of the rule language: every field (value, mask, byte order), every
// action, every error path, prerequisites, files, printing and round trips.
#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "flowpath/rule.hpp"
#include "rule_gen.hpp"

namespace flowpath {
namespace {

const PortNames kPorts = {"p0", "p1", "p2", "p3"};

Rule parse_ok(const std::string& text) {
    Parsed<Rule> rule = parse_rule(text, kPorts);
    EXPECT_TRUE(rule.ok()) << text << "\n  " << (rule.ok() ? "" : rule.error().to_string());
    return rule.ok() ? rule.value() : Rule{};
}

Match match_of(const std::string& match) { return parse_ok(match + " actions=drop").match; }

ParseError parse_error(const std::string& text) {
    Parsed<Rule> rule = parse_rule(text, kPorts);
    EXPECT_FALSE(rule.ok()) << text << " parsed as " << (rule.ok() ? format_rule(rule.value(), kPorts) : "");
    return rule.ok() ? ParseError{} : rule.error();
}

template <size_t N>
std::array<uint8_t, N> bytes_of(const void* p) {
    std::array<uint8_t, N> out;
    std::memcpy(out.data(), p, N);
    return out;
}

// ---------------------------------------------------------------- fields

TEST(RuleFields, InPortByNameOrNumber) {
    EXPECT_EQ(match_of("in_port=p2").value.in_port, 3u);
    EXPECT_EQ(match_of("in_port=3").value.in_port, 3u);
    EXPECT_EQ(match_of("in_port=1").mask.in_port, 0xffffffffu);
    // Port and table numbers are decimal even with leading zeros, as ovs-ofctl reads them.
    EXPECT_EQ(match_of("in_port=03").value.in_port, 3u);
    EXPECT_EQ(parse_ok("table=010 actions=drop").table, 10);
}

TEST(RuleFields, EthernetAddressesAndMasks) {
    const Match m = match_of("dl_src=00:11:22:33:44:55,eth_dst=1:2:3:4:5:6/ff:ff:ff:00:00:ff");
    EXPECT_EQ((bytes_of<6>(m.value.dl_src)), (std::array<uint8_t, 6>{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}));
    EXPECT_EQ((bytes_of<6>(m.mask.dl_src)), (std::array<uint8_t, 6>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
    EXPECT_EQ((bytes_of<6>(m.value.dl_dst)), (std::array<uint8_t, 6>{1, 2, 3, 0, 0, 6}));  // pre-masked
    EXPECT_EQ((bytes_of<6>(m.mask.dl_dst)), (std::array<uint8_t, 6>{0xff, 0xff, 0xff, 0, 0, 0xff}));
}

TEST(RuleFields, EthertypeInNetworkOrder) {
    const Match m = match_of("dl_type=0x88cc");
    EXPECT_EQ(m.value.dl_type, htons(0x88cc));
    EXPECT_EQ(m.mask.dl_type, 0xffff);
    EXPECT_EQ(match_of("eth_type=0x88cc"), m);
}

TEST(RuleFields, VlanForms) {
    struct Case {
        const char* text;
        uint16_t value, mask;
    } cases[] = {
        {"dl_vlan=5", 0x1005, 0x1fff},
        {"dl_vlan=0xffff", 0x0000, 0x1fff},  // no VLAN, as Open vSwitch keeps it
        {"dl_vlan_pcp=3", 0x7000, 0xf000},
        {"dl_vlan=5,dl_vlan_pcp=3", 0x7005, 0xffff},
        {"dl_vlan_pcp=3,dl_vlan=0xffff", 0x0000, 0x1fff},
        {"vlan_tci=0x1005/0x1fff", 0x1005, 0x1fff},
        {"vlan_tci=0x1000/0x1000", 0x1000, 0x1000},
        {"vlan_tci=0", 0x0000, 0x1fff},
        {"vlan_tci=0x0005/0x0fff", 0x0005, 0x0fff},
        {"vlan_vid=0x1005", 0x1005, 0x1fff},
        {"vlan_vid=0x1000/0x1000", 0x1000, 0x1000},
        {"vlan_pcp=2", 0x5000, 0xf000},
        {"dl_vlan=0xffff,vlan_vid=0x1005", 0x1005, 0xffff},
        {"dl_vlan=4095", 0x1fff, 0x1fff},
        // Open vSwitch stores what OpenFlow 1.3 carries (checked against
        // ovs-ofctl dump-flows): VLAN_VID = the 0x1fff bits; the priority
        // only when that VID value is nonzero, and then all of it.
        {"vlan_tci=0x3000/0x3000", 0x3000, 0xf000},                  // dl_vlan_pcp=1
        {"vlan_tci=0x5000/0x7000", 0x5000, 0xf000},                  // dl_vlan_pcp=2
        {"vlan_tci=0x2000/0x2000", 0x0000, 0x0000},                  // matches everything
        {"vlan_tci=0xe000/0xe000", 0x0000, 0x0000},
        {"vlan_tci=0x6000/0x7000", 0x0000, 0x1000},                  // no VLAN
        {"vlan_tci=0x2000/0xf000", 0x0000, 0x1000},
        {"vlan_tci=0x2000", 0x0000, 0x1fff},
        {"vlan_tci=0x3005/0x300f", 0x3005, 0xf00f},
        {"vlan_tci=0x1005/0xd00f", 0x1005, 0xf00f},
        {"vlan_tci=0xf123/0x3fff", 0x3123, 0xffff},                  // dl_vlan=291,dl_vlan_pcp=1
        {"vlan_tci=0x1005/0x1005", 0x1005, 0x1005},
        {"vlan_tci=0x0005/0x1fff", 0x0005, 0x1fff},                  // never matches, as in OVS
        {"vlan_pcp=2,vlan_vid=0", 0x0000, 0x1fff},
        {"vlan_tci=0x8000/0x8000,vlan_vid=0x1000/0x1000", 0x9000, 0xf000},
        {"dl_vlan_pcp=3,vlan_tci=0x0000/0x1000", 0x0000, 0x1000},    // vlan_tci replaces all
        {"vlan_tci=0x0000/0x1000,dl_vlan_pcp=3", 0x7000, 0xf000},
        {"vlan_tci=0x0fff/0x0fff,dl_vlan_pcp=3", 0x7fff, 0xffff},
        {"vlan_tci=0x1000/0x1000,vlan_tci=0x2000/0x2000", 0x0000, 0x0000},
    };
    for (const Case& c : cases) {
        const Match m = match_of(c.text);
        EXPECT_EQ(m.value.vlans[0].tci, htons(c.value)) << c.text;
        EXPECT_EQ(m.mask.vlans[0].tci, htons(c.mask)) << c.text;
        EXPECT_EQ(m.mask.vlans[0].tpid, 0) << c.text;
        EXPECT_EQ(m.mask.vlans[1].tci, 0) << c.text;
    }
}

TEST(RuleFields, Ipv4AddressesPrefixesAndMasks) {
    const Match m = match_of("ip,nw_src=10.1.2.3/24,nw_dst=192.168.7.9/255.0.255.0");
    EXPECT_EQ((bytes_of<4>(&m.value.nw_src)), (std::array<uint8_t, 4>{10, 1, 2, 0}));
    EXPECT_EQ((bytes_of<4>(&m.mask.nw_src)), (std::array<uint8_t, 4>{255, 255, 255, 0}));
    EXPECT_EQ((bytes_of<4>(&m.value.nw_dst)), (std::array<uint8_t, 4>{192, 0, 7, 0}));
    EXPECT_EQ((bytes_of<4>(&m.mask.nw_dst)), (std::array<uint8_t, 4>{255, 0, 255, 0}));
    EXPECT_EQ(match_of("ip,ip_src=1.2.3.4").value.nw_src, htonl(0x01020304));
    EXPECT_EQ(match_of("ip,nw_src=1.2.3.4/32"), match_of("ip,nw_src=1.2.3.4"));
    EXPECT_EQ(match_of("ip,nw_src=1.2.3.4/0"), match_of("ip"));
    EXPECT_EQ(match_of("ip,ipv4_dst=1.2.3.4"), match_of("ip,nw_dst=1.2.3.4"));
}

TEST(RuleFields, IpScalars) {
    Match m = match_of("ip,nw_proto=47,nw_ttl=64");
    EXPECT_EQ(m.value.nw_proto, 47);
    EXPECT_EQ(m.mask.nw_proto, 0xff);
    EXPECT_EQ(m.value.nw_ttl, 64);
    EXPECT_EQ(m.mask.nw_ttl, 0xff);
    m = match_of("ip,nw_tos=184");
    EXPECT_EQ(m.value.nw_tos, 184);
    EXPECT_EQ(m.mask.nw_tos, 0xfc);
    EXPECT_EQ(match_of("ip,ip_dscp=46"), m);
    EXPECT_EQ(match_of("ip,nw_tos=186"), m);  // ECN bits dropped, as Open vSwitch does
    m = match_of("ip,nw_ecn=3");
    EXPECT_EQ(m.value.nw_tos, 3);
    EXPECT_EQ(m.mask.nw_tos, 0x03);
    m = match_of("ipv6,nw_tos=8,ip_ecn=1");
    EXPECT_EQ(m.value.nw_tos, 9);
    EXPECT_EQ(m.mask.nw_tos, 0xff);
}

TEST(RuleFields, Fragments) {
    struct Case {
        const char* name;
        uint8_t value, mask;
    } cases[] = {{"no", 0, 1}, {"yes", 1, 1}, {"first", 1, 3}, {"later", 3, 3}, {"not_later", 0, 2}};
    for (const Case& c : cases) {
        const Match m = match_of(std::string("ip,nw_frag=") + c.name);
        EXPECT_EQ(m.value.nw_frag, c.value) << c.name;
        EXPECT_EQ(m.mask.nw_frag, c.mask) << c.name;
    }
    EXPECT_EQ(match_of("ip,ip_frag=later"), match_of("ip,nw_frag=later"));
}

TEST(RuleFields, TransportPortsInNetworkOrder) {
    Match m = match_of("tcp,tp_src=1024,tp_dst=0x50/0xfff0");
    EXPECT_EQ(m.value.tp_src, htons(1024));
    EXPECT_EQ(m.mask.tp_src, 0xffff);
    EXPECT_EQ(m.value.tp_dst, htons(0x50));
    EXPECT_EQ(m.mask.tp_dst, htons(0xfff0));
    EXPECT_EQ(match_of("tcp,tcp_src=1024,tcp_dst=0x50/0xfff0"), m);
    EXPECT_EQ(match_of("udp,udp_dst=53"), match_of("udp,tp_dst=53"));
    EXPECT_EQ(match_of("sctp6,sctp_src=9"), match_of("sctp6,tp_src=9"));
    EXPECT_EQ(match_of("tcp,tp_dst=010").value.tp_dst, htons(8));  // octal, as ovs-ofctl
    EXPECT_EQ(match_of("tcp,tp_dst=0X1f").value.tp_dst, htons(31));
    EXPECT_EQ(match_of("tcp,tp_dst=80,tp_dst=81").value.tp_dst, htons(81));  // the last one wins
}

TEST(RuleFields, TcpFlags) {
    Match m = match_of("tcp,tcp_flags=+syn-ack");
    EXPECT_EQ(m.value.tcp_flags, htons(0x002));
    EXPECT_EQ(m.mask.tcp_flags, htons(0x012));
    EXPECT_EQ(match_of("tcp,tcp_flags=0x2/0x12"), m);
    m = match_of("tcp,tcp_flags=syn|ack");
    EXPECT_EQ(m.value.tcp_flags, htons(0x012));
    EXPECT_EQ(m.mask.tcp_flags, htons(0xfff));
    EXPECT_EQ(match_of("tcp,tcp_flags=0x12"), m);
    EXPECT_EQ(match_of("tcp6,tcp_flags=+ns+[200]").value.tcp_flags, htons(0x300));
}

TEST(RuleFields, IcmpTypeAndCodeAsOpenVswitchStoresThem) {
    Match m = match_of("icmp,icmp_type=8,icmp_code=3");
    EXPECT_EQ(m.value.tp_src, htons(8));
    EXPECT_EQ(m.mask.tp_src, 0xffff);
    EXPECT_EQ(m.value.tp_dst, htons(3));
    m = match_of("icmp6,icmpv6_type=135,icmpv6_code=0");
    EXPECT_EQ(m.value.tp_src, htons(135));
    EXPECT_EQ(m.mask.tp_dst, 0xffff);
    EXPECT_EQ(match_of("icmp6,icmp_type=135,icmp_code=0"), m);  // as dump-flows prints it
}

TEST(RuleFields, Arp) {
    const Match m = match_of("arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_op=2,arp_sha=1:2:3:4:5:6,arp_tha=0:0:0:0:0:1");
    EXPECT_EQ(m.value.dl_type, htons(0x0806));
    EXPECT_EQ(m.value.nw_src, htonl(0x0a000001));
    EXPECT_EQ(m.mask.nw_dst, htonl(0xff000000));
    EXPECT_EQ(m.value.nw_proto, 2);
    EXPECT_EQ(m.value.arp_sha[5], 6);
    EXPECT_EQ(m.value.arp_tha[5], 1);
    EXPECT_EQ(match_of("arp,nw_src=10.0.0.1,nw_proto=2"), match_of("arp,arp_spa=10.0.0.1,arp_op=2"));
    EXPECT_EQ(match_of("rarp,arp_spa=1.2.3.4").value.dl_type, htons(0x8035));
}

TEST(RuleFields, Ipv6) {
    const Match m = match_of("ipv6,ipv6_src=2001:db8::1/64,ipv6_dst=::1/ffff::,ipv6_label=0x12345/0xf000f");
    EXPECT_EQ(m.value.ipv6_src[0], 0x20);
    EXPECT_EQ(m.value.ipv6_src[15], 0);  // pre-masked
    EXPECT_EQ(m.mask.ipv6_src[7], 0xff);
    EXPECT_EQ(m.mask.ipv6_src[8], 0);
    EXPECT_EQ(m.mask.ipv6_dst[1], 0xff);
    EXPECT_EQ(m.mask.ipv6_dst[2], 0);
    EXPECT_EQ(m.value.ipv6_label, htonl(0x10005));
    EXPECT_EQ(m.mask.ipv6_label, htonl(0xf000f));
}

TEST(RuleFields, NeighborDiscovery) {
    Match m = match_of("icmp6,icmpv6_type=135,nd_target=fe80::1,nd_sll=1:2:3:4:5:6");
    EXPECT_EQ(m.value.nd_target[0], 0xfe);
    EXPECT_EQ(m.value.nd_target[15], 1);
    EXPECT_EQ(m.value.arp_sha[0], 1);
    m = match_of("icmp6,icmpv6_type=136,nd_tll=1:2:3:4:5:6/ff:ff:ff:ff:ff:00");
    EXPECT_EQ(m.value.arp_tha[5], 0);
    EXPECT_EQ(m.mask.arp_tha[4], 0xff);
}

TEST(RuleFields, ConnectionTrackingInHostOrder) {
    Match m = match_of("ct_state=+trk-new,ct_zone=0x102,ct_mark=0x5/0xf");
    EXPECT_EQ(m.value.ct_state, kCtTracked);
    EXPECT_EQ(m.mask.ct_state, kCtTracked | kCtNew);
    EXPECT_EQ(m.value.ct_zone, 0x102);
    EXPECT_EQ(m.mask.ct_zone, 0xffff);
    EXPECT_EQ(m.value.ct_mark, 5u);
    EXPECT_EQ(m.mask.ct_mark, 0xfu);
    m = match_of("ct_state=est|trk");
    EXPECT_EQ(m.value.ct_state, kCtEstablished | kCtTracked);
    EXPECT_EQ(m.mask.ct_state, 0xff);
    EXPECT_EQ(match_of("ct_state=0x22/0x23"), match_of("ct_state=+est+trk-new"));
}

TEST(RuleFields, Shorthands) {
    struct Case {
        const char* name;
        uint16_t dl_type;
        int proto;
    } cases[] = {{"ip", 0x0800, -1},  {"ipv6", 0x86dd, -1}, {"arp", 0x0806, -1},  {"rarp", 0x8035, -1},
                 {"icmp", 0x0800, 1}, {"tcp", 0x0800, 6},   {"udp", 0x0800, 17},  {"sctp", 0x0800, 132},
                 {"icmp6", 0x86dd, 58}, {"tcp6", 0x86dd, 6}, {"udp6", 0x86dd, 17}, {"sctp6", 0x86dd, 132}};
    for (const Case& c : cases) {
        const Match m = match_of(c.name);
        EXPECT_EQ(m.value.dl_type, htons(c.dl_type)) << c.name;
        EXPECT_EQ(m.mask.nw_proto, c.proto < 0 ? 0 : 0xff) << c.name;
        if (c.proto >= 0) {
            EXPECT_EQ(m.value.nw_proto, c.proto) << c.name;
        }
    }
    EXPECT_EQ(match_of("dl_type=0x0800,nw_proto=6"), match_of("tcp"));
    EXPECT_EQ(match_of("tcp,ipv6"), match_of("tcp6"));  // later words win, as in ovs-ofctl
    EXPECT_EQ(match_of("ipv6,tcp"), match_of("tcp"));
}

// ---------------------------------------------------------------- rules

TEST(RuleSettings, DefaultsAndValues) {
    Rule r = parse_ok("actions=drop");
    EXPECT_EQ(r.table, 0);
    EXPECT_EQ(r.priority, kDefaultPriority);
    EXPECT_TRUE(r.match.is_catchall());
    EXPECT_TRUE(r.actions.empty());
    r = parse_ok("ip, table=3, priority=7, cookie=0xabc, idle_timeout=10, hard_timeout=20 actions=drop");
    EXPECT_EQ(r.table, 3);
    EXPECT_EQ(r.priority, 7);
    EXPECT_EQ(r.cookie, 0xabcu);
    EXPECT_EQ(r.idle_timeout, 10);
    EXPECT_EQ(r.hard_timeout, 20);
}

TEST(RuleSettings, SeparatorsAndActionsKeyword) {
    const Rule r = parse_ok("tcp,tp_dst=80,actions=output:p1");
    for (const char* text : {"tcp tp_dst=80 actions=output:p1", "tcp,tp_dst=80 actions=output:p1",
                             " ,tcp,, tp_dst=80,\tactions=output:p1", "tp_dst=80,tcp,action=output:p1",
                             "tcp,tp_dst=80 actions =output:p1", "tcp,tp_dst=80,actions=output:p1,",
                             "duration=1.5s,n_packets=3,n_bytes=9,tcp,tp_dst=80 actions=output:p1"}) {
        EXPECT_EQ(parse_ok(text), r) << text;
    }
    EXPECT_EQ(parse_ok("actions=").actions, ActionList{});
    EXPECT_EQ(parse_ok("ip,priority=5 actions=drop").priority, 5);
}

TEST(RuleSettings, SourceIsKeptButNotCompared) {
    Parsed<Rule> a = parse_rule("actions=drop", kPorts, {"f.txt", 9});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a.value().source.file, "f.txt");
    EXPECT_EQ(a.value().source.line, 9u);
    EXPECT_EQ(a.value(), parse_ok("actions=drop"));
}

// ---------------------------------------------------------------- actions

Action set_action(SetField field, std::initializer_list<uint8_t> value) {
    Action a = Action::of(ActionType::kSetField);
    a.field = field;
    std::copy(value.begin(), value.end(), a.value);
    return a;
}

ActionList actions_of(const std::string& rule) { return parse_ok(rule).actions; }

TEST(RuleActions, Outputs) {
    EXPECT_EQ(actions_of("actions=output:p1,output:3,p3,1,in_port,flood,all,IN_PORT,Flood,output:ALL"),
              (ActionList{Action::output(2), Action::output(3), Action::output(4), Action::output(1),
                          Action::of(ActionType::kInPort), Action::of(ActionType::kFlood),
                          Action::of(ActionType::kAll), Action::of(ActionType::kInPort),
                          Action::of(ActionType::kFlood), Action::of(ActionType::kAll)}));
    EXPECT_EQ(actions_of("actions=drop"), ActionList{});
    EXPECT_EQ(actions_of("actions=DROP"), ActionList{});
    EXPECT_EQ(actions_of("actions=output:p0 output:p1"), (ActionList{Action::output(1), Action::output(2)}));
}

TEST(RuleActions, ControllerAsOvsofctlWritesIt) {
    EXPECT_EQ(actions_of("actions=controller"), ActionList{Action::controller(kControllerAll)});
    EXPECT_EQ(actions_of("actions=output:CONTROLLER"), ActionList{Action::controller(kControllerAll)});
    EXPECT_EQ(actions_of("actions=CONTROLLER:128"), ActionList{Action::controller(128)});
    EXPECT_EQ(actions_of("actions=controller(max_len=64),output:1"),
              (ActionList{Action::controller(64), Action::output(1)}));
    EXPECT_EQ(format_actions(actions_of("actions=controller"), kPorts), "CONTROLLER:65535");
    EXPECT_FALSE(parse_rule("actions=controller(userdata=01)", kPorts).ok());
    EXPECT_FALSE(parse_rule("actions=controller:65536", kPorts).ok());
}

TEST(RuleActions, ModifyHeaders) {
    EXPECT_EQ(actions_of("actions=mod_dl_src:1:2:3:4:5:6,mod_dl_dst:a:b:c:d:e:f"),
              (ActionList{set_action(SetField::kEthSrc, {1, 2, 3, 4, 5, 6}),
                          set_action(SetField::kEthDst, {10, 11, 12, 13, 14, 15})}));
    EXPECT_EQ(actions_of("ip actions=mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:184,mod_nw_ecn:2,mod_nw_ttl:9"),
              (ActionList{set_action(SetField::kIpv4Src, {1, 2, 3, 4}), set_action(SetField::kIpv4Dst, {5, 6, 7, 8}),
                          set_action(SetField::kNwTos, {184}), set_action(SetField::kNwEcn, {2}),
                          set_action(SetField::kNwTtl, {9})}));
    EXPECT_EQ(actions_of("ipv6 actions=dec_ttl"), ActionList{Action::of(ActionType::kDecTtl)});
    EXPECT_EQ(actions_of("tcp actions=mod_tp_src:80,mod_tp_dst:0x1234"),
              (ActionList{set_action(SetField::kTcpSrc, {0, 80}), set_action(SetField::kTcpDst, {0x12, 0x34})}));
    EXPECT_EQ(actions_of("udp6 actions=mod_tp_src:80"), ActionList{set_action(SetField::kUdpSrc, {0, 80})});
    EXPECT_EQ(actions_of("sctp actions=mod_tp_dst:80"), ActionList{set_action(SetField::kSctpDst, {0, 80})});
}

TEST(RuleActions, VlanActionsPushWhenTheMatchHasNoTag) {
    const Action vid5 = set_action(SetField::kVlanVid, {0x10, 0x05});
    EXPECT_EQ(actions_of("actions=mod_vlan_vid:5"), (ActionList{Action::push_vlan(0x8100), vid5}));
    EXPECT_EQ(actions_of("dl_vlan=3 actions=mod_vlan_vid:5"), ActionList{vid5});
    EXPECT_EQ(actions_of("actions=mod_vlan_pcp:6"),
              (ActionList{Action::push_vlan(0x8100), set_action(SetField::kVlanPcp, {6})}));
    EXPECT_EQ(actions_of("dl_vlan=3 actions=strip_vlan,mod_vlan_vid:5"),
              (ActionList{Action::of(ActionType::kPopVlan), Action::push_vlan(0x8100), vid5}));
    EXPECT_EQ(actions_of("actions=push_vlan:0x88a8,set_field:4101->vlan_vid,set_field:3->vlan_pcp,pop_vlan"),
              (ActionList{Action::push_vlan(0x88a8), vid5, set_action(SetField::kVlanPcp, {3}),
                          Action::of(ActionType::kPopVlan)}));
    EXPECT_EQ(actions_of("actions=push_vlan:33024"), ActionList{Action::push_vlan(0x8100)});
}

TEST(RuleActions, SetFieldTargets) {
    struct Case {
        const char* rule;
        Action action;
    } cases[] = {
        {"actions=set_field:1:2:3:4:5:6->eth_src", set_action(SetField::kEthSrc, {1, 2, 3, 4, 5, 6})},
        {"actions=set_field:1:2:3:4:5:6->dl_dst", set_action(SetField::kEthDst, {1, 2, 3, 4, 5, 6})},
        {"ip actions=set_field:1.2.3.4->ipv4_src", set_action(SetField::kIpv4Src, {1, 2, 3, 4})},
        {"ip actions=set_field:1.2.3.4->ipv4_dst", set_action(SetField::kIpv4Dst, {1, 2, 3, 4})},
        {"ip actions=set_field:1.2.3.4->ip_src", set_action(SetField::kIpv4Src, {1, 2, 3, 4})},
        {"ip actions=set_field:1.2.3.4->nw_dst", set_action(SetField::kIpv4Dst, {1, 2, 3, 4})},
        {"ip actions=set_field:46->ip_dscp", set_action(SetField::kNwTos, {184})},
        {"ip actions=set_field:184->nw_tos", set_action(SetField::kNwTos, {184})},
        {"ip actions=set_field:1->nw_ecn", set_action(SetField::kNwEcn, {1})},
        {"ipv6 actions=set_field:7->nw_ttl", set_action(SetField::kNwTtl, {7})},
        {"tcp actions=set_field:80->tcp_src", set_action(SetField::kTcpSrc, {0, 80})},
        {"tcp actions=set_field:80->tp_dst", set_action(SetField::kTcpDst, {0, 80})},
        {"udp actions=set_field:80->udp_src", set_action(SetField::kUdpSrc, {0, 80})},
        {"udp actions=set_field:80->udp_dst", set_action(SetField::kUdpDst, {0, 80})},
        {"sctp actions=set_field:80->sctp_src", set_action(SetField::kSctpSrc, {0, 80})},
        {"sctp actions=set_field:80->sctp_dst", set_action(SetField::kSctpDst, {0, 80})},
        {"dl_vlan=1 actions=set_field:4101->vlan_vid", set_action(SetField::kVlanVid, {0x10, 0x05})},
        {"dl_vlan=1 actions=set_field:7->vlan_pcp", set_action(SetField::kVlanPcp, {7})},
        {"actions=set_field:0x7005->vlan_tci", set_action(SetField::kVlanTci, {0x70, 0x05})},
        {"actions=set_field:5->vlan_tci", set_action(SetField::kVlanTci, {0x00, 0x05})},
        {"icmp actions=set_field:3->icmp_type", set_action(SetField::kIcmpType, {3})},
        {"icmp actions=set_field:4->icmp_code", set_action(SetField::kIcmpCode, {4})},
        {"icmp6 actions=set_field:5->icmpv6_type", set_action(SetField::kIcmpv6Type, {5})},
        {"icmp6 actions=set_field:6->icmpv6_code", set_action(SetField::kIcmpv6Code, {6})},
        {"arp actions=set_field:2->arp_op", set_action(SetField::kArpOp, {0, 2})},
        {"arp actions=set_field:1.2.3.4->arp_spa", set_action(SetField::kArpSpa, {1, 2, 3, 4})},
        {"arp actions=set_field:1.2.3.4->arp_tpa", set_action(SetField::kArpTpa, {1, 2, 3, 4})},
        {"arp actions=set_field:1:2:3:4:5:6->arp_sha", set_action(SetField::kArpSha, {1, 2, 3, 4, 5, 6})},
        {"arp actions=set_field:1:2:3:4:5:6->arp_tha", set_action(SetField::kArpTha, {1, 2, 3, 4, 5, 6})},
        {"ipv6 actions=set_field:::1->ipv6_src",
         set_action(SetField::kIpv6Src, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})},
        {"ipv6 actions=set_field:::2->ipv6_dst",
         set_action(SetField::kIpv6Dst, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})},
        {"ipv6 actions=set_field:0x12345->ipv6_label", set_action(SetField::kIpv6Label, {0, 1, 0x23, 0x45})},
        {"icmp6,icmp_type=136 actions=set_field:::3->nd_target",
         set_action(SetField::kNdTarget, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3})},
        {"icmp6,icmp_type=135 actions=set_field:1:2:3:4:5:6->nd_sll", set_action(SetField::kNdSll, {1, 2, 3, 4, 5, 6})},
        {"icmp6,icmp_type=136 actions=set_field:1:2:3:4:5:6->nd_tll", set_action(SetField::kNdTll, {1, 2, 3, 4, 5, 6})},
    };
    for (const Case& c : cases) EXPECT_EQ(actions_of(c.rule), ActionList{c.action}) << c.rule;
    Action in_port = Action::of(ActionType::kSetField);
    in_port.port = 3;
    EXPECT_EQ(actions_of("actions=set_field:3->in_port"), ActionList{in_port});
}

TEST(RuleActions, TablesAndResubmit) {
    EXPECT_EQ(actions_of("actions=resubmit(,3),resubmit:p1,resubmit(2,4),resubmit(3),resubmit(3,)"),
              (ActionList{Action::resubmit(kResubmitSamePort, 3), Action::resubmit(2, kResubmitSameTable),
                          Action::resubmit(2, 4), Action::resubmit(3, kResubmitSameTable),
                          Action::resubmit(3, kResubmitSameTable)}));
    EXPECT_EQ(actions_of("table=2 actions=output:1,goto_table:3"),
              (ActionList{Action::output(1), Action::goto_table(3)}));
}

TEST(RuleActions, ConnectionTracking) {
    Action ct = Action::of(ActionType::kCt);
    EXPECT_EQ(actions_of("ip actions=ct"), ActionList{ct});
    EXPECT_EQ(actions_of("ip actions=ct()"), ActionList{ct});
    ct.ct_flags = kCtCommit | kCtRecirc | kCtSetMark;
    ct.ct_zone = 5;
    ct.table = 3;
    ct.ct_mark = 7;
    ct.ct_mark_mask = 0xffffffff;
    EXPECT_EQ(actions_of("ip actions=ct(commit,zone=5,table=3,exec(set_field:7->ct_mark))"), ActionList{ct});
    EXPECT_EQ(actions_of("ipv6 actions=ct(table=3,exec(set_field:7->ct_mark),zone=5,commit)"), ActionList{ct});
    ct.ct_mark = 0x17;
    ct.ct_mark_mask = 0x1f;
    EXPECT_EQ(actions_of("ip actions=ct(commit,zone=5,table=3,exec(set_field:0x7/0xf->ct_mark,"
                         "set_field:0x10/0x10->ct_mark))"),
              ActionList{ct});
    EXPECT_EQ(actions_of("ip actions=ct(commit,zone=5,table=3,exec(load:0x7->NXM_NX_CT_MARK[0..3],"
                         "load:1->NXM_NX_CT_MARK[4]))"),
              ActionList{ct});
    EXPECT_EQ(actions_of("actions=ct_clear"), ActionList{Action::of(ActionType::kCtClear)});
}

// ---------------------------------------------------------------- errors

struct ErrorCase {
    const char* text;
    unsigned column;
    const char* message;
};

void expect_errors(const std::vector<ErrorCase>& cases) {
    for (const ErrorCase& c : cases) {
        const ParseError error = parse_error(c.text);
        EXPECT_EQ(error.line, 1u) << c.text;
        EXPECT_EQ(error.column, c.column) << c.text << "\n  " << error.message;
        EXPECT_EQ(error.message, c.message) << c.text;
    }
}

TEST(RuleErrors, Syntax) {
    expect_errors({
        {"ip", 3, "expected actions= after the match, found end of rule"},
        {"", 1, "expected actions= after the match, found end of rule"},
        {"foo=1 actions=drop", 1,
         "expected a match field, priority, table, cookie, idle_timeout, hard_timeout or actions=, found 'foo'"},
        {"TCP actions=drop", 1,
         "expected a match field, priority, table, cookie, idle_timeout, hard_timeout or actions=, found 'TCP'"},
        {"=5 actions=drop", 1, "expected a match field or actions=, found '='"},
        {"ip,nw_src actions=drop", 10, "nw_src: expected '=' and a value, found nothing"},
        {"ip,nw_src(1) actions=drop", 10, "nw_src: expected '=' and a value, found '('"},
        {"ip,nw_src= actions=drop", 11, "nw_src: expected a value, found nothing"},
        {"tcp=1 actions=drop", 4, "tcp: expected no value after a protocol name, found '=1'"},
        // '(' opens a parenthesized part of the value that runs to its ')'.
        {"in_port=(1 actions=drop", 9,
         "in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found '(1 actions=drop'"},
        {"ip,nw_src=(1) actions=drop", 11, "nw_src: expected an IPv4 address a.b.c.d, found '(1)'"},
    });
}

TEST(RuleErrors, Values) {
    expect_errors({
        {"priority=65536 actions=drop", 10, "priority: expected a number 0-65535, found '65536'"},
        {"priority=-1 actions=drop", 10, "priority: expected a number 0-65535, found '-1'"},
        {"table=254 actions=drop", 7, "table: expected a table 0-253, found '254'"},
        {"table=0x3 actions=drop", 7, "table: expected a table 0-253, found '0x3'"},
        {"in_port=0x2 actions=drop", 9, "in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found '0x2'"},
        {"cookie=1/1 actions=drop", 9, "cookie: expected a cookie without a mask (masks are for del-flows), found '/1'"},
        {"cookie=0x1ffffffffffffffff actions=drop", 8,
         "cookie: expected a number 0-0xffffffffffffffff, found '0x1ffffffffffffffff'"},
        {"idle_timeout=70000 actions=drop", 14, "idle_timeout: expected a number 0-65535, found '70000'"},
        {"in_port=p9 actions=drop", 9, "in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found 'p9'"},
        {"in_port=0 actions=drop", 9, "in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found '0'"},
        {"in_port=5 actions=drop", 9, "in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found '5'"},
        {"in_port=1/1 actions=drop", 10, "in_port: expected a value without a mask, found '/1'"},
        {"dl_src=1:2:3:4:5 actions=drop", 8, "dl_src: expected a MAC address xx:xx:xx:xx:xx:xx, found '1:2:3:4:5'"},
        {"dl_src=1:2:3:4:5:6/ff actions=drop", 20, "dl_src: expected a MAC mask xx:xx:xx:xx:xx:xx, found 'ff'"},
        {"dl_type=0x800/0xff00 actions=drop", 14, "dl_type: expected a value without a mask, found '/0xff00'"},
        {"dl_type=0x10000 actions=drop", 9, "dl_type: expected a number 0-65535, found '0x10000'"},
        {"dl_vlan=4096 actions=drop", 9, "dl_vlan: expected a VLAN ID 0-4095 (or 0xffff for no VLAN), found '4096'"},
        {"dl_vlan_pcp=8 actions=drop", 13, "dl_vlan_pcp: expected a number 0-7, found '8'"},
        {"vlan_vid=0x2000 actions=drop", 10, "vlan_vid: expected a number 0-8191, found '0x2000'"},
        {"ip,nw_src=1.2.3 actions=drop", 11, "nw_src: expected an IPv4 address a.b.c.d, found '1.2.3'"},
        {"ip,nw_src=1.2.3.256 actions=drop", 11, "nw_src: expected an IPv4 address a.b.c.d, found '1.2.3.256'"},
        {"ip,nw_src=1.2.3.4/33 actions=drop", 19, "nw_src: expected a prefix length 0-32, found '33'"},
        {"ip,nw_src=1.2.3.4/255.0 actions=drop", 19, "nw_src: expected an IPv4 mask or prefix length, found '255.0'"},
        {"ipv6,ipv6_src=1::2::3 actions=drop", 15, "ipv6_src: expected an IPv6 address, found '1::2::3'"},
        {"ipv6,ipv6_src=::1/129 actions=drop", 19, "ipv6_src: expected a prefix length 0-128, found '129'"},
        {"ipv6,ipv6_label=0x100000 actions=drop", 17, "ipv6_label: expected a number 0-0xfffff, found '0x100000'"},
        {"ip,nw_ttl=256 actions=drop", 11, "nw_ttl: expected a number 0-255, found '256'"},
        {"ip,ip_dscp=64 actions=drop", 12, "ip_dscp: expected a number 0-63, found '64'"},
        {"ip,nw_ecn=4 actions=drop", 11, "nw_ecn: expected a number 0-3, found '4'"},
        {"ip,nw_frag=1 actions=drop", 12, "nw_frag: expected no, yes, first, later or not_later, found '1'"},
        {"tcp,tp_dst=70000 actions=drop", 12, "tp_dst: expected a number 0-65535, found '70000'"},
        {"tcp,tp_dst=5x actions=drop", 12, "tp_dst: expected a number 0-65535, found '5x'"},
        {"tcp,tp_dst=1/0x10000 actions=drop", 14, "tp_dst: expected a number 0-65535 as the mask, found '0x10000'"},
        {"tcp,tp_dst=08 actions=drop", 12, "tp_dst: expected a number 0-65535, found '08'"},
        {"tcp,tcp_flags=+syn+foo actions=drop", 20,
         "tcp_flags: expected a flag (fin syn rst psh ack urg ece cwr ns), found 'foo'"},
        {"tcp,tcp_flags=+syn-syn actions=drop", 20, "tcp_flags: flag 'syn' given twice"},
        {"tcp,tcp_flags=+syn/0x2 actions=drop", 16,
         "tcp_flags: expected a flag (fin syn rst psh ack urg ece cwr ns), found 'syn/0x2'"},
        {"tcp,tcp_flags=syn/2 actions=drop", 18, "tcp_flags: expected +flag/-flag without a mask, found '/'"},
        {"tcp,tcp_flags=0x1000 actions=drop", 15, "tcp_flags: expected a number 0-4095, found '0x1000'"},
        {"ct_state=+trk+bad actions=drop", 15,
         "ct_state: expected a flag (new est rel rpl inv trk snat dnat), found 'bad'"},
        {"ct_state=trk*est actions=drop", 10,
         "ct_state: expected a flag (new est rel rpl inv trk snat dnat), found 'trk*est'"},
        {"ct_zone=1/1 actions=drop", 10, "ct_zone: expected a value without a mask, found '/1'"},
        {"ct_mark=0x100000000 actions=drop", 9, "ct_mark: expected a number 0-0xffffffff, found '0x100000000'"},
        {"icmp,icmp_type=256 actions=drop", 16, "icmp_type: expected a number 0-255, found '256'"},
        {"arp,arp_op=256 actions=drop", 12, "arp_op: expected a number 0-255, found '256'"},
        // Refused by Open vSwitch too (OFPBMC_BAD_PREREQ): a priority with
        // VLAN ID bits but no present bit.
        {"vlan_tci=0x2005/0x200f actions=drop", 1,
         "vlan_tci: the VLAN fields give vlan_tci=0x2005/0x200f, priority bits with VLAN ID bits but without the "
         "present bit 0x1000 in the value (Open vSwitch refuses this, OFPBMC_BAD_PREREQ)"},
        {"vlan_tci=0x0005 actions=drop", 1,
         "vlan_tci: the VLAN fields give vlan_tci=0x0005/0xffff, priority bits with VLAN ID bits but without the "
         "present bit 0x1000 in the value (Open vSwitch refuses this, OFPBMC_BAD_PREREQ)"},
        {"vlan_pcp=2,vlan_vid=5 actions=drop", 12,
         "vlan_vid: the VLAN fields give vlan_tci=0x4005/0xffff, priority bits with VLAN ID bits but without the "
         "present bit 0x1000 in the value (Open vSwitch refuses this, OFPBMC_BAD_PREREQ)"},
    });
}

TEST(RuleErrors, MatchPrerequisites) {
    expect_errors({
        {"nw_src=1.2.3.4 actions=drop", 1, "nw_src needs ip or arp in the match (e.g. 'ip,nw_src=10.0.0.0/8')"},
        {"ipv6,ip_dst=1.2.3.4 actions=drop", 6, "ip_dst needs ip or arp in the match (e.g. 'ip,nw_src=10.0.0.0/8')"},
        {"nw_proto=6 actions=drop", 1, "nw_proto needs ip, ipv6 or arp in the match"},
        {"tcp,dl_type=0x88cc actions=drop", 1,
         "tcp sets nw_proto=6, which needs ip or ipv6, but a later field set another dl_type"},
        {"udp6,arp actions=drop", 1, "udp6 sets nw_proto=17, which needs ip or ipv6, but a later field set another dl_type"},
        {"arp,nw_tos=8 actions=drop", 5, "nw_tos needs ip or ipv6 in the match"},
        {"ip_dscp=8 actions=drop", 1, "ip_dscp needs ip or ipv6 in the match"},
        {"nw_ecn=1 actions=drop", 1, "nw_ecn needs ip or ipv6 in the match"},
        {"nw_ttl=1 actions=drop", 1, "nw_ttl needs ip or ipv6 in the match"},
        {"nw_frag=no actions=drop", 1, "nw_frag needs ip or ipv6 in the match"},
        {"tp_dst=80 actions=drop", 1, "tp_dst needs tcp, udp or sctp in the match (tcp6, udp6, sctp6 for IPv6)"},
        {"ip,tp_src=80 actions=drop", 4, "tp_src needs tcp, udp or sctp in the match (tcp6, udp6, sctp6 for IPv6)"},
        {"icmp,tp_src=8 actions=drop", 6, "tp_src needs tcp, udp or sctp in the match (tcp6, udp6, sctp6 for IPv6)"},
        {"udp,tcp_dst=80 actions=drop", 5, "tcp_dst needs tcp or tcp6 in the match"},
        {"tcp,udp_src=80 actions=drop", 5, "udp_src needs udp or udp6 in the match"},
        {"udp,sctp_src=80 actions=drop", 5, "sctp_src needs sctp or sctp6 in the match"},
        {"udp,tcp_flags=+syn actions=drop", 5, "tcp_flags needs tcp or tcp6 in the match"},
        {"tcp,nw_frag=later,tp_dst=80 actions=drop", 19,
         "tp_dst cannot match later fragments (nw_frag=later): they have no transport header"},
        {"tcp,tp_dst=80,nw_frag=later actions=drop", 5,
         "tp_dst cannot match later fragments (nw_frag=later): they have no transport header"},
        {"tcp,icmp_type=8 actions=drop", 5, "icmp_type needs icmp (or icmp6) in the match"},
        {"ip,icmp_code=8 actions=drop", 4, "icmp_code needs icmp (or icmp6) in the match"},
        {"icmp,icmpv6_type=135 actions=drop", 6, "icmpv6_type needs icmp6 in the match"},
        {"ipv6,icmpv6_code=0 actions=drop", 6, "icmpv6_code needs icmp6 in the match"},
        {"arp_op=1 actions=drop", 1, "arp_op needs arp (or rarp) in the match"},
        {"ip,arp_spa=1.2.3.4 actions=drop", 4, "arp_spa needs arp (or rarp) in the match"},
        {"arp_tpa=1.2.3.4 actions=drop", 1, "arp_tpa needs arp (or rarp) in the match"},
        {"arp_sha=1:2:3:4:5:6 actions=drop", 1, "arp_sha needs arp (or rarp) in the match"},
        {"arp_tha=1:2:3:4:5:6 actions=drop", 1, "arp_tha needs arp (or rarp) in the match"},
        {"ipv6_src=::1 actions=drop", 1, "ipv6_src needs ipv6 in the match"},
        {"ip,ipv6_dst=::1 actions=drop", 4, "ipv6_dst needs ipv6 in the match"},
        {"ipv6_label=1 actions=drop", 1, "ipv6_label needs ipv6 in the match"},
        {"icmp6,nd_target=::1 actions=drop", 7,
         "nd_target needs icmp6 with icmpv6_type=135 or 136 (and icmpv6_code=0) in the match"},
        {"icmp6,icmp_type=128,nd_target=::1 actions=drop", 21,
         "nd_target needs icmp6 with icmpv6_type=135 or 136 (and icmpv6_code=0) in the match"},
        {"icmp6,icmp_type=135,icmp_code=1,nd_target=::1 actions=drop", 33,
         "nd_target needs icmp6 with icmpv6_type=135 or 136 (and icmpv6_code=0) in the match"},
        {"icmp6,icmp_type=136,nd_sll=1:2:3:4:5:6 actions=drop", 21,
         "nd_sll needs icmp6 with icmpv6_type=135 (and icmpv6_code=0) in the match"},
        {"icmp6,icmp_type=135,nd_tll=1:2:3:4:5:6 actions=drop", 21,
         "nd_tll needs icmp6 with icmpv6_type=136 (and icmpv6_code=0) in the match"},
    });
    // Field order is free: the protocol may come last.
    EXPECT_EQ(match_of("tp_dst=80,nw_src=1.2.3.4,tcp"), match_of("tcp,nw_src=1.2.3.4,tp_dst=80"));
    EXPECT_EQ(match_of("icmp6,icmp_type=135,icmp_code=0,nd_target=::1").value.nd_target[15], 1);
}

TEST(RuleErrors, Actions) {
    expect_errors({
        {"actions=foo:1", 9,
         "expected an action (output, in_port, flood, all, controller, drop, mod_*, set_field, dec_ttl, push_vlan, "
         "strip_vlan, resubmit, ct, ct_clear, load, clear_actions, write_metadata, goto_table), found 'foo'"},
        {"actions=p9", 9, "action: expected a port name (p0, p1, p2, p3) or number 1-4, found 'p9'"},
        {"actions=output:5", 16, "output: expected a port name (p0, p1, p2, p3) or number 1-4, found '5'"},
        {"actions=output", 15, "output: expected ':' and a port, found nothing"},
        {"actions=output:local", 16,
         "output: expected a port, in_port, flood, all or controller, found 'local' (not supported by flowpath)"},
        {"actions=normal", 9,
         "action: expected a port, in_port, flood, all or controller, found 'normal' (not supported by flowpath)"},
        {"actions=drop,output:1", 9, "drop: expected to be the only action, found other actions with it"},
        {"actions=output:1,drop", 18, "drop: expected to be the only action, found other actions with it"},
        {"actions=flood:1", 14, "flood: expected no argument, found ':1'"},
        {"ip actions=dec_ttl(1)", 19, "dec_ttl: expected no argument, found '(1)'"},
        {"actions=mod_dl_src:1:2", 20, "mod_dl_src: expected a MAC address xx:xx:xx:xx:xx:xx, found '1:2'"},
        {"ip actions=mod_nw_src:1.2.3.4/24", 23, "mod_nw_src: expected an IPv4 address a.b.c.d, found '1.2.3.4/24'"},
        {"ip actions=mod_nw_tos:5", 23,
         "mod_nw_tos: expected a TOS value with the ECN bits clear (a multiple of 4), found '5'"},
        {"ip actions=mod_nw_tos:256", 23,
         "mod_nw_tos: expected a TOS value 0-255 with the ECN bits clear (a multiple of 4), found '256'"},
        {"ip actions=mod_nw_ecn:4", 23, "mod_nw_ecn: expected a number 0-3, found '4'"},
        {"ip actions=mod_nw_ttl:256", 23, "mod_nw_ttl: expected a number 0-255, found '256'"},
        {"tcp actions=mod_tp_src:65536", 24, "mod_tp_src: expected a number 0-65535, found '65536'"},
        {"actions=mod_vlan_vid:4096", 22, "mod_vlan_vid: expected a VLAN ID 0-4095, found '4096'"},
        {"actions=mod_vlan_pcp:8", 22, "mod_vlan_pcp: expected a number 0-7, found '8'"},
        {"actions=push_vlan:0x0800", 19, "push_vlan: expected ethertype 0x8100 or 0x88a8, found '0x0800'"},
        {"actions=set_field:1", 19, "set_field: expected VALUE->FIELD, found '1'"},
        {"actions=set_field:1->foo", 22, "set_field: expected a field name, found 'foo'"},
        {"actions=set_field:->eth_src", 19, "set_field: expected a value before '->', found nothing"},
        {"tcp actions=set_field:0x800->dl_type", 30, "set_field: dl_type is read-only"},
        {"tcp actions=set_field:6->nw_proto", 26, "set_field: nw_proto is read-only"},
        {"tcp actions=set_field:2->tcp_flags", 26, "set_field: tcp_flags is read-only"},
        {"ip actions=set_field:1->nw_frag", 25, "set_field: nw_frag is read-only"},
        {"actions=set_field:1->ct_zone", 22, "set_field: ct_zone is read-only"},
        {"actions=set_field:+trk->ct_state", 25, "set_field: ct_state is read-only"},
        {"actions=set_field:1->ct_mark", 22, "set_field: ct_mark can only be set inside ct(commit,exec(...))"},
        {"dl_vlan=1 actions=set_field:5->dl_vlan", 32,
         "set_field: dl_vlan cannot be set (set vlan_vid, vlan_pcp or vlan_tci instead)"},
        {"actions=set_field:0x1005/0x1fff->vlan_tci", 25,
         "set_field: expected a value without a mask, found '/0x1fff'"},
        {"actions=set_field:0x10005->vlan_tci", 19, "set_field: vlan_tci: expected a number 0-65535, found '0x10005'"},
        {"ip actions=set_field:1.2.3.4/24->ip_src", 29, "set_field: expected a value without a mask, found '/24'"},
        {"ip actions=set_field:1.2.3->ip_src", 22, "set_field: ip_src: expected an IPv4 address a.b.c.d, found '1.2.3'"},
        {"dl_vlan=1 actions=set_field:5->vlan_vid", 29,
         "set_field: vlan_vid: expected 0x1000-0x1fff (0x1000 | VID: OpenFlow 1.3 sets the present bit), found '5'"},
        {"dl_vlan=1 actions=set_field:0x2005->vlan_vid", 29,
         "set_field: vlan_vid: expected a number 0-8191, found '0x2005'"},
        {"ip actions=set_field:3->nw_tos", 22, "set_field: nw_tos: expected a multiple of 4 (the ECN bits clear), found '3'"},
        {"actions=set_field:9->in_port", 19, "set_field: in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found '9'"},
        {"actions=resubmit", 17, "resubmit: expected '(,TABLE)', found nothing"},
        {"actions=resubmit(,)", 18, "resubmit: expected a port or a table, e.g. resubmit(,1), found ','"},
        {"actions=resubmit(,254)", 19, "resubmit: expected a table 0-253, found '254'"},
        {"actions=resubmit(1,2,ct)", 21, "resubmit: expected (PORT,TABLE), found '1,2,ct'"},
        {"actions=resubmit(,1", 17, "expected ')' to close this '(', found end of text"},
        {"actions=goto_table:254", 20, "goto_table: expected a table 0-253, found '254'"},
        {"table=3 actions=goto_table:3", 28, "goto_table: expected a table after this rule's table 3, found '3'"},
        {"actions=goto_table:1,output:1,output:2", 22, "expected goto_table to be the last action, found 'output:1'"},
        {"actions=goto_table:1,resubmit(,2) output:2", 22,
         "expected goto_table to be the last action, found 'resubmit(,2)'"},
        {"actions=output(port=1,max_len=9)", 15, "output: expected ':' and a port, found '(port=1,max_len=9)'"},
        {"actions=goto_table:1,goto_table:2", 22, "expected goto_table to be the last action, found 'goto_table:2'"},
        {"ip actions=ct(nat)", 15, "ct: expected commit, zone=N, table=N or exec(...), found 'nat' (not supported by flowpath)"},
        {"ip actions=ct(COMMIT)", 15, "ct: expected commit, zone=N, table=N or exec(...), found 'COMMIT'"},
        {"ip actions=ct(zone=65536)", 20, "ct: zone: expected a number 0-65535, found '65536'"},
        {"ip actions=ct(zone=NXM_NX_REG0[0..15])", 20,
         "ct: zone: expected a number 0-65535, found 'NXM_NX_REG0[0..15]'"},
        {"ip actions=ct(table=254)", 21, "ct: table: expected a table 0-253, found '254'"},
        {"ip actions=ct:1", 14, "ct: expected '(' and arguments, found '1'"},
        {"ip actions=ct(commit,exec(output:1))", 27, "ct: exec: expected set_field:VALUE[/MASK]->ct_mark, found 'output:1'"},
        {"ip actions=ct(commit,exec(set_field:1->ct_label))", 40,
         "ct: exec: expected ct_mark (the only field flowpath sets there), found 'ct_label'"},
        {"ip actions=ct(commit,exec(load:1->NXM_NX_REG0[]))", 35,
         "ct: exec: load: expected NXM_NX_CT_MARK[], [BIT] or [FIRST..LAST], found 'NXM_NX_REG0[]'"},
    });
}

TEST(RuleErrors, ActionPrerequisites) {
    expect_errors({
        {"actions=dec_ttl", 9, "dec_ttl needs ip or ipv6 in the match"},
        {"arp actions=mod_nw_src:1.2.3.4", 13, "mod_nw_src needs ip in the match"},
        {"ipv6 actions=mod_nw_dst:1.2.3.4", 14, "mod_nw_dst needs ip in the match"},
        {"actions=mod_nw_tos:8", 9, "mod_nw_tos needs ip or ipv6 in the match"},
        {"actions=mod_nw_ecn:1", 9, "mod_nw_ecn needs ip or ipv6 in the match"},
        {"actions=mod_nw_ttl:1", 9, "mod_nw_ttl needs ip or ipv6 in the match"},
        {"ip actions=mod_tp_src:1", 12, "mod_tp_src needs tcp, udp or sctp in the match (tcp6, udp6, sctp6 for IPv6)"},
        {"tcp,nw_frag=later actions=mod_tp_dst:1", 27,
         "mod_tp_dst cannot match later fragments (nw_frag=later): they have no transport header"},
        {"udp actions=set_field:1->tcp_src", 13, "set_field to tcp_src needs tcp or tcp6 in the match"},
        {"udp actions=set_field:1->tp_src", 13, "set_field to tp_src needs tcp or tcp6 in the match"},
        {"sctp actions=set_field:1->udp_dst", 14, "set_field to udp_dst needs udp or udp6 in the match"},
        {"udp actions=set_field:1->sctp_dst", 13, "set_field to sctp_dst needs sctp or sctp6 in the match"},
        {"arp actions=set_field:1.2.3.4->nw_src", 13, "set_field to nw_src needs ip in the match"},
        {"actions=set_field:1.2.3.4->ipv4_dst", 9, "set_field to ipv4_dst needs ip in the match"},
        {"ip actions=set_field:::1->ipv6_src", 12, "set_field to ipv6_src needs ipv6 in the match"},
        {"icmp6 actions=set_field:1->icmp_type", 15, "set_field to icmp_type needs icmp in the match"},
        {"icmp actions=set_field:1->icmpv6_code", 14, "set_field to icmpv6_code needs icmp6 in the match"},
        {"ip actions=set_field:1->arp_op", 12, "set_field to arp_op needs arp (or rarp) in the match"},
        {"icmp6 actions=set_field:::1->nd_target", 15,
         "set_field to nd_target needs icmp6 with icmpv6_type=135 or 136 (and icmpv6_code=0) in the match"},
        {"actions=set_field:4097->vlan_vid", 9,
         "set_field to vlan_vid needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or "
         "push_vlan first)"},
        {"dl_vlan=0xffff actions=set_field:1->vlan_pcp", 24,
         "set_field to vlan_pcp needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or "
         "push_vlan first)"},
        {"actions=strip_vlan", 9,
         "strip_vlan needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or push_vlan first)"},
        {"dl_vlan=4 actions=strip_vlan,pop_vlan", 30,
         "pop_vlan needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or push_vlan first)"},
        {"actions=ct(commit)", 9, "ct needs ip or ipv6 in the match"},
        {"ip actions=ct(zone=1,exec(set_field:1->ct_mark))", 12, "ct: exec(...) needs commit"},
        {"ip,ct_state=+inv+trk actions=ct(commit)", 30,
         "ct: commit cannot apply to packets matched as invalid (ct_state=+inv)"},
    });
    // A pushed tag satisfies the later VLAN actions; a flow holds two tags at most.
    EXPECT_EQ(actions_of("actions=push_vlan:0x8100,set_field:4097->vlan_vid,strip_vlan").size(), 3u);
    EXPECT_EQ(actions_of("actions=push_vlan:0x8100,push_vlan:0x88a8,pop_vlan,set_field:4097->vlan_vid").size(), 4u);
    expect_errors({
        {"dl_vlan=1 actions=push_vlan:0x8100,push_vlan:0x8100", 36,
         "push_vlan: expected at most two VLAN tags, found a third (the match and earlier actions already give two)"},
        {"actions=mod_vlan_vid:1,push_vlan:0x8100,push_vlan:0x8100", 41,
         "push_vlan: expected at most two VLAN tags, found a third (the match and earlier actions already give two)"},
        {"actions=push_vlan:0x8100,pop_vlan,pop_vlan", 35,
         "pop_vlan needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or push_vlan first)"},
    });
}

TEST(RuleActions, SetVlanTciTracksTheTagAsOvsofctlDoes) {
    const Action tci_1005 = set_action(SetField::kVlanTci, {0x10, 0x05});
    const Action tci_0 = set_action(SetField::kVlanTci, {0x00, 0x00});
    EXPECT_EQ(actions_of("actions=set_field:0x1005->vlan_tci"), ActionList{tci_1005});
    EXPECT_EQ(actions_of("dl_vlan=3 actions=set_field:4101->vlan_tci"), ActionList{tci_1005});
    EXPECT_EQ(actions_of("actions=set_field:0xefff->vlan_tci"),
              ActionList{set_action(SetField::kVlanTci, {0xef, 0xff})});
    // With the present bit the tag is there for the later VLAN actions ...
    EXPECT_EQ(actions_of("actions=set_field:0x1005->vlan_tci,set_field:3->vlan_pcp,strip_vlan"),
              (ActionList{tci_1005, set_action(SetField::kVlanPcp, {3}), Action::of(ActionType::kPopVlan)}));
    EXPECT_EQ(actions_of("actions=set_field:0x1005->vlan_tci,mod_vlan_vid:7"),
              (ActionList{tci_1005, set_action(SetField::kVlanVid, {0x10, 0x07})}));
    // ... and without it, it is not: mod_vlan_vid pushes one.
    EXPECT_EQ(actions_of("dl_vlan=5 actions=set_field:0->vlan_tci,mod_vlan_vid:7"),
              (ActionList{tci_0, Action::push_vlan(0x8100), set_action(SetField::kVlanVid, {0x10, 0x07})}));
    EXPECT_EQ(actions_of("actions=set_field:0x1009->vlan_tci,push_vlan:0x88a8").size(), 2u);
    const std::string tag_needed =
        " needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or push_vlan first)";
    const std::string third_tag =
        ": expected at most two VLAN tags, found a third (the match and earlier actions already give two)";
    struct Case {
        const char* text;
        unsigned column;
        std::string message;
    } cases[] = {
        {"dl_vlan=5 actions=set_field:0->vlan_tci,strip_vlan", 41, "strip_vlan" + tag_needed},
        {"actions=set_field:5->vlan_tci,set_field:3->vlan_pcp", 31, "set_field to vlan_pcp" + tag_needed},
        {"actions=set_field:5->vlan_tci,set_field:0x1003->vlan_vid", 31, "set_field to vlan_vid" + tag_needed},
        // Open vSwitch's flow keeps the second tag behind an absent first one:
        // still two slots, no room for a push.
        {"dl_vlan=5 actions=push_vlan:0x8100,set_field:0->vlan_tci,push_vlan:0x8100", 58, "push_vlan" + third_tag},
        {"dl_vlan=5 actions=push_vlan:0x8100,set_field:0->vlan_tci,mod_vlan_vid:3", 58,
         "mod_vlan_vid (pushing a tag)" + third_tag},
        {"dl_vlan=5 actions=push_vlan:0x8100,set_field:0->vlan_tci,strip_vlan", 58, "strip_vlan" + tag_needed},
        {"actions=set_field:0x1009->vlan_tci,push_vlan:0x88a8,push_vlan:0x8100", 53, "push_vlan" + third_tag},
    };
    for (const Case& c : cases) {
        const ParseError error = parse_error(c.text);
        EXPECT_EQ(error.column, c.column) << c.text << "\n  " << error.message;
        EXPECT_EQ(error.message, c.message) << c.text;
    }
}

// ---------------------------------------------------------------- files and filters

TEST(RuleFiles, CommentsBlankLinesAndLineNumbers) {
    const std::string text = "# header\n\n  ip actions=drop  # trailing\r\n\t\ntcp,tp_dst=80 actions=output:p1\n";
    Parsed<std::vector<Rule>> rules = parse_rules(text, kPorts, "r.txt");
    ASSERT_TRUE(rules.ok()) << rules.error().to_string();
    ASSERT_EQ(rules.value().size(), 2u);
    EXPECT_EQ(rules.value()[0].source.line, 3u);
    EXPECT_EQ(rules.value()[1].source.line, 5u);
    EXPECT_EQ(rules.value()[1].source.file, "r.txt");

    Parsed<std::vector<Rule>> bad = parse_rules("ip actions=drop\n\n  tp_dst=80 actions=drop\n", kPorts, "r.txt");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().to_string(),
              "r.txt:3:3: tp_dst needs tcp, udp or sctp in the match (tcp6, udp6, sctp6 for IPv6)");
}

TEST(RuleFiles, ReadsAFileAndNamesItInErrors) {
    const std::string path = ::testing::TempDir() + "flowpath_rules_test.txt";
    {
        std::ofstream out(path);
        out << "in_port=p0 actions=output:p1\nin_port=p7 actions=drop\n";
    }
    Parsed<std::vector<Rule>> rules = parse_rule_file(path, kPorts);
    ASSERT_FALSE(rules.ok());
    EXPECT_EQ(rules.error().file, path);
    EXPECT_EQ(rules.error().line, 2u);
    EXPECT_EQ(rules.error().column, 9u);
    EXPECT_EQ(rules.error().to_string(),
              path + ":2:9: in_port: expected a port name (p0, p1, p2, p3) or number 1-4, found 'p7'");
    std::remove(path.c_str());
    Parsed<std::vector<Rule>> missing = parse_rule_file(path, kPorts);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().to_string(), path + ": cannot open the rule file");
}

TEST(RuleFilters, MatchOnlyStrings) {
    Parsed<MatchFilter> all = parse_match("", kPorts);
    ASSERT_TRUE(all.ok());
    EXPECT_TRUE(all.value().match.is_catchall());
    EXPECT_FALSE(all.value().table.has_value());
    Parsed<MatchFilter> f = parse_match("table=2,priority=9,cookie=0x10/0xf0,tcp,tp_dst=80", kPorts);
    ASSERT_TRUE(f.ok()) << f.error().to_string();
    EXPECT_EQ(f.value().table, 2);
    EXPECT_EQ(f.value().priority, 9);
    EXPECT_EQ(f.value().cookie, 0x10u);
    EXPECT_EQ(f.value().cookie_mask, 0xf0u);
    EXPECT_EQ(f.value().match, match_of("tcp,tp_dst=80"));
    Parsed<MatchFilter> bad = parse_match("ip actions=drop", kPorts);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().to_string(), "1:4: expected a match without actions, found 'actions='");
    bad = parse_match("tp_dst=80", kPorts);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().column, 1u);
    bad = parse_match("idle_timeout=5", kPorts);
    ASSERT_FALSE(bad.ok());
}

// ---------------------------------------------------------------- printing

TEST(RuleFormat, CanonicalForms) {
    struct Case {
        const char* in;
        const char* out;
    } cases[] = {
        {"actions=", "actions=drop"},
        {"priority=5,tcp,in_port=2,tp_dst=80,table=1,cookie=10 actions=output:p2",
         "cookie=0xa, table=1, priority=5,tcp,in_port=p1,tp_dst=80 actions=output:p2"},
        {"idle_timeout=1,hard_timeout=2,ip actions=drop", "idle_timeout=1, hard_timeout=2, ip actions=drop"},
        {"dl_type=0x0800,nw_proto=17,nw_src=10.0.0.0/8,tp_src=0x10/0xf0 actions=flood",
         "udp,nw_src=10.0.0.0/8,tp_src=0x10/0xf0 actions=flood"},
        {"ipv6,nw_proto=6 actions=in_port", "tcp6 actions=in_port"},
        {"ipv6,nw_proto=47,ipv6_label=5 actions=all", "ipv6,ipv6_label=0x00005,nw_proto=47 actions=all"},
        {"dl_vlan=5,dl_vlan_pcp=3,dl_src=1:2:3:4:5:6 actions=drop",
         "dl_vlan=5,dl_vlan_pcp=3,dl_src=01:02:03:04:05:06 actions=drop"},
        {"vlan_tci=0x1000/0x1000 actions=drop", "vlan_tci=0x1000/0x1000 actions=drop"},
        {"dl_vlan=0xffff actions=drop", "vlan_tci=0x0000/0x1fff actions=drop"},
        {"vlan_tci=0x3000/0x3000 actions=drop", "dl_vlan_pcp=1 actions=drop"},
        {"vlan_tci=0x2000/0x2000 actions=drop", "actions=drop"},
        {"vlan_tci=0x6000/0x7000 actions=drop", "vlan_tci=0x0000/0x1000 actions=drop"},
        {"vlan_tci=0x3005/0x300f actions=drop", "vlan_tci=0x3005/0xf00f actions=drop"},
        {"vlan_tci=0xf123/0x3fff actions=drop", "dl_vlan=291,dl_vlan_pcp=1 actions=drop"},
        {"actions=set_field:5->vlan_tci,set_field:0x7005->vlan_tci,set_field:0->vlan_tci",
         "actions=set_field:0x0005->vlan_tci,set_field:0x7005->vlan_tci,set_field:0x0000->vlan_tci"},
        {"arp,nw_src=1.2.3.4,nw_proto=1 actions=drop", "arp,arp_spa=1.2.3.4,arp_op=1 actions=drop"},
        {"icmp6,icmp_type=135,nd_target=::1 actions=drop", "icmp6,icmpv6_type=135,nd_target=::1 actions=drop"},
        {"ct_state=trk,ip actions=ct(table=1)", "ct_state=-new-est-rel-rpl-inv+trk-snat-dnat,ip actions=ct(table=1)"},
        {"ip,nw_tos=9 actions=mod_nw_tos:8", "ip,nw_tos=8 actions=set_field:8->nw_tos"},
        {"ip,ip_dscp=1,nw_ecn=2 actions=drop", "ip,nw_tos=4,nw_ecn=2 actions=drop"},
        {"tcp,tcp_flags=0x12 actions=drop", "tcp,tcp_flags=-fin+syn-rst-psh+ack-urg-ece-cwr-ns-[200]-[400]-[800] actions=drop"},
        {"actions=mod_vlan_vid:5", "actions=push_vlan:0x8100,set_field:4101->vlan_vid"},
        {"ip actions=ct(commit,exec(set_field:0x7/0xf->ct_mark))", "ip actions=ct(commit,exec(set_field:0x7/0xf->ct_mark))"},
        {"actions=resubmit:p1,resubmit(p1,2)", "actions=resubmit:2,resubmit(2,2)"},
        {"ip actions=set_field:1.2.3.4->ipv4_src", "ip actions=set_field:1.2.3.4->ip_src"},
    };
    for (const Case& c : cases) EXPECT_EQ(format_rule(parse_ok(c.in), kPorts), c.out) << c.in;
}

TEST(RuleFormat, PortsPrintAsNamesWhenTheyReadBack) {
    EXPECT_EQ(format_port(1, kPorts), "p0");
    EXPECT_EQ(format_port(9, kPorts), "9");
    const PortNames odd = {"flood", "a b", "x", "x"};
    EXPECT_EQ(format_port(1, odd), "1");
    EXPECT_EQ(format_port(2, odd), "2");
    EXPECT_EQ(format_port(3, odd), "x");
    EXPECT_EQ(format_port(4, odd), "4");
}

void expect_round_trip(const Rule& rule, const std::string& origin) {
    const std::string text = format_rule(rule, kPorts);
    Parsed<Rule> again = parse_rule(text, kPorts);
    ASSERT_TRUE(again.ok()) << origin << "\n  printed " << text << "\n  " << again.error().to_string();
    EXPECT_EQ(again.value(), rule) << origin << "\n  printed " << text;
    EXPECT_EQ(format_rule(again.value(), kPorts), text) << origin;
}

std::filesystem::path example_rules_path() {
    const std::filesystem::path here = std::filesystem::path(__FILE__).parent_path();
    for (const std::filesystem::path& candidate :
         {here / "../diff/example_rules.txt", std::filesystem::path("../tests/diff/example_rules.txt"),
          std::filesystem::path("tests/diff/example_rules.txt")}) {
        if (std::filesystem::exists(candidate)) return candidate;
    }
    return here / "../diff/example_rules.txt";
}

TEST(RuleFormat, ExampleRulesParseAndRoundTrip) {
    Parsed<std::vector<Rule>> rules = parse_rule_file(example_rules_path().string(), kPorts);
    ASSERT_TRUE(rules.ok()) << rules.error().to_string();
    EXPECT_GT(rules.value().size(), 60u);
    for (const Rule& rule : rules.value()) expect_round_trip(rule, "example line " + std::to_string(rule.source.line));
}

TEST(RuleFormat, GeneratedRulesRoundTrip) {
    rulegen::RuleGen gen(20240601, rulegen::RuleGenOptions{.ovs_compatible = false});
    ASSERT_EQ(gen.ports(), kPorts);
    for (int i = 0; i < 20000; ++i) {
        const std::string text = gen.rule();
        Parsed<Rule> rule = parse_rule(text, kPorts);
        ASSERT_TRUE(rule.ok()) << text << "\n  " << rule.error().to_string();
        expect_round_trip(rule.value(), text);
        if (HasFailure()) return;
    }
}

TEST(RuleFormat, GeneratedMatchesRoundTrip) {
    rulegen::RuleGen gen(7);
    for (int i = 0; i < 5000; ++i) {
        const std::string text = gen.match();
        Parsed<MatchFilter> filter = parse_match(text, kPorts);
        ASSERT_TRUE(filter.ok()) << text << "\n  " << filter.error().to_string();
        const std::string printed = format_match(filter.value().match, kPorts);
        Parsed<MatchFilter> again = parse_match(printed, kPorts);
        ASSERT_TRUE(again.ok()) << text << "\n  printed " << printed;
        EXPECT_EQ(again.value().match, filter.value().match) << text << "\n  printed " << printed;
        if (HasFailure()) return;
    }
}

TEST(RuleMatch, MatchesAppliesTheMask) {
    const Match m = match_of("tcp,nw_src=10.0.0.0/8,tp_dst=80");
    FlowKey key{};
    key.dl_type = htons(0x0800);
    key.nw_proto = 6;
    key.nw_src = htonl(0x0a010203);
    key.tp_dst = htons(80);
    key.tp_src = htons(1234);
    EXPECT_TRUE(m.matches(key));
    key.tp_dst = htons(81);
    EXPECT_FALSE(m.matches(key));
}

// ---------------------------------------------------------------- hooks for tests/diff/ovs_accepts.py

// Writes FLOWPATH_RULEGEN_COUNT (default 200) generated rules, Open vSwitch
// compatible, from seed FLOWPATH_RULEGEN_SEED (default 99) to
// FLOWPATH_RULEGEN_OUT.
TEST(RuleGen, Export) {
    const char* out_path = std::getenv("FLOWPATH_RULEGEN_OUT");
    if (!out_path) GTEST_SKIP() << "set FLOWPATH_RULEGEN_OUT to write generated rules";
    const char* count = std::getenv("FLOWPATH_RULEGEN_COUNT");
    const char* seed = std::getenv("FLOWPATH_RULEGEN_SEED");
    rulegen::RuleGen gen(seed ? std::strtoull(seed, nullptr, 0) : 99);
    std::ofstream out(out_path);
    for (int i = 0, n = count ? std::atoi(count) : 200; i < n; ++i) out << gen.rule() << "\n";
    ASSERT_TRUE(out.good());
}

// Compares the rules of FLOWPATH_OVS_RULES with what Open vSwitch holds after
// loading them (FLOWPATH_OVS_DUMP, dump-flows --no-stats --names): the same
// set of rules once a later rule with the same table, priority and match has
// replaced an earlier one.
TEST(OvsDiff, DumpMatchesRules) {
    const char* rules_path = std::getenv("FLOWPATH_OVS_RULES");
    const char* dump_path = std::getenv("FLOWPATH_OVS_DUMP");
    if (!rules_path || !dump_path) GTEST_SKIP() << "run by tests/diff/ovs_accepts.py";
    Parsed<std::vector<Rule>> rules = parse_rule_file(rules_path, kPorts);
    ASSERT_TRUE(rules.ok()) << rules.error().to_string();
    Parsed<std::vector<Rule>> dumped = parse_rule_file(dump_path, kPorts);
    ASSERT_TRUE(dumped.ok()) << "Open vSwitch's dump does not parse: " << dumped.error().to_string();
    std::map<std::string, std::string> expected;  // table/priority/match -> rule
    for (const Rule& rule : rules.value()) {
        Rule key = rule;
        key.actions.clear();
        key.cookie = key.idle_timeout = key.hard_timeout = 0;
        expected[format_rule(key, kPorts)] = format_rule(rule, kPorts);
    }
    std::multiset<std::string> want, got;
    for (const auto& entry : expected) want.insert(entry.second);
    for (const Rule& rule : dumped.value()) got.insert(format_rule(rule, kPorts));
    std::ostringstream diff;
    for (const std::string& rule : want) {
        if (!got.count(rule)) diff << "  flowpath only: " << rule << "\n";
    }
    for (const std::string& rule : got) {
        if (!want.count(rule)) diff << "  Open vSwitch only: " << rule << "\n";
    }
    EXPECT_EQ(diff.str(), "") << "rules that differ:\n" << diff.str();
}

}  // namespace
}  // namespace flowpath
