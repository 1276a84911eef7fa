// Helpers shared by the translation tests (pipeline_test.cpp,
// pipeline_ct_test.cpp, pipeline_metadata_test.cpp): keys, rules, rule sets
// from text, outputs, and the key blend of the megaflow property.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "flowpath/pipeline.hpp"

namespace flowpath::pipeline_test {

inline const PortNames kPorts = {"p1", "p2", "p3", "p4"};

inline FlowKey udp_key(uint32_t in_port, uint32_t nw_dst = 0x0a000001, uint8_t ttl = 64) {
    FlowKey k{};
    k.in_port = in_port;
    k.dl_type = htons(0x0800);
    k.nw_src = htonl(0x0a000064);
    k.nw_dst = htonl(nw_dst);
    k.nw_proto = 17;
    k.nw_ttl = ttl;
    k.tp_src = htons(1000);
    k.tp_dst = htons(53);
    return k;
}

inline Rule rule(uint8_t table, uint16_t priority, ActionList actions) {
    Rule r;
    r.table = table;
    r.priority = priority;
    r.actions = std::move(actions);
    return r;
}

inline Rule ip_rule(uint8_t table, uint16_t priority, ActionList actions) {
    Rule r = rule(table, priority, std::move(actions));
    r.match.value.dl_type = htons(0x0800);
    r.match.mask.dl_type = 0xffff;
    return r;
}

/// A rule set from rule-file text (interface.md syntax).
inline RuleSet rules_from(const std::string& text) {
    Parsed<std::vector<Rule>> parsed = parse_rules(text, kPorts, "test.rules");
    if (!parsed) throw std::runtime_error(parsed.error().to_string());
    RuleSet rules(kPorts);
    for (Rule& r : parsed.value()) rules.add(std::move(r));
    return rules;
}

/// The ports a translation outputs to, in order.
inline std::vector<uint32_t> outputs(const Translation& t) {
    std::vector<uint32_t> ports;
    for (const Action& a : t.actions) {
        if (a.type == ActionType::kOutput) ports.push_back(a.port);
    }
    return ports;
}

/// `key` where `mask` is set, `other` elsewhere.
inline FlowKey blend(const FlowKey& key, const FlowMask& mask, const FlowKey& other) {
    FlowKey out = other;
    for (size_t w = 0; w < kFlowWords; ++w) {
        flow_words(out)[w] = (flow_words(key)[w] & flow_words(mask)[w]) | (flow_words(other)[w] & ~flow_words(mask)[w]);
    }
    return out;
}

}  // namespace flowpath::pipeline_test
