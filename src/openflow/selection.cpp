// OpenFlow's rule selection (strict and loose matching, cookies, out_port),
// overlap, and the connection targets.
#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "flowpath/error.hpp"
#include "flowpath/openflow.hpp"

namespace flowpath {

namespace {

const uint8_t* bytes_of(const FlowKey& key) { return reinterpret_cast<const uint8_t*>(&key); }

// Every bit `wide` examines, `narrow` examines with the same value.
bool at_least_as_specific(const Match& narrow, const Match& wide) {
    const uint8_t* nv = bytes_of(narrow.value);
    const uint8_t* nm = bytes_of(narrow.mask);
    const uint8_t* wv = bytes_of(wide.value);
    const uint8_t* wm = bytes_of(wide.mask);
    for (size_t i = 0; i < sizeof(FlowKey); ++i) {
        if ((nm[i] & wm[i]) != wm[i] || (nv[i] & wm[i]) != wv[i]) return false;
    }
    return narrow.metadata_within(wide);
}

std::optional<uint16_t> port_number(std::string_view text, bool allow_zero) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535 || (!allow_zero && value == 0)) {
        return std::nullopt;
    }
    return static_cast<uint16_t>(value);
}

std::optional<std::string> address(std::string_view text) {
    if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    const std::string s(text);
    in6_addr v6;
    in_addr v4;
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1 || inet_pton(AF_INET6, s.c_str(), &v6) == 1) return s;
    return std::nullopt;
}

}  // namespace

bool FlowSelector::selects(const Rule& rule) const {
    if (filter.table && *filter.table != rule.table) return false;
    if ((rule.cookie & filter.cookie_mask) != (filter.cookie & filter.cookie_mask)) return false;
    if (strict) {
        if (filter.priority && *filter.priority != rule.priority) return false;
        if (!(rule.match == filter.match)) return false;
    } else if (!at_least_as_specific(rule.match, filter.match)) {
        return false;
    }
    return out_port == of::kPortAny || actions_output_to(rule.actions, out_port);
}

bool matches_overlap(const Match& a, const Match& b) {
    const uint8_t* av = bytes_of(a.value);
    const uint8_t* am = bytes_of(a.mask);
    const uint8_t* bv = bytes_of(b.value);
    const uint8_t* bm = bytes_of(b.mask);
    for (size_t i = 0; i < sizeof(FlowKey); ++i) {
        if ((av[i] ^ bv[i]) & am[i] & bm[i]) return false;
    }
    return ((a.metadata ^ b.metadata) & a.metadata_mask & b.metadata_mask) == 0;
}

bool actions_output_to(const ActionList& actions, uint32_t port) {
    for (const Action& a : actions) {
        switch (a.type) {
        case ActionType::kOutput: if (a.port == port) return true; break;
        case ActionType::kInPort: if (port == of::kPortInPort) return true; break;
        case ActionType::kFlood: if (port == of::kPortFlood) return true; break;
        case ActionType::kAll: if (port == of::kPortAll) return true; break;
        case ActionType::kController: if (port == of::kPortController) return true; break;
        default: break;
        }
    }
    return false;
}

OpenFlowTarget parse_openflow_target(const std::string& text, bool passive, const std::string& option) {
    const std::string_view prefix = passive ? "ptcp:" : "tcp:";
    auto bad = [&]() -> OpenFlowTarget {
        throw ConfigError(option + ": expected " + (passive ? "ptcp:PORT[:IP]" : "tcp:IP:PORT") + ", found '" +
                          text + "'");
    };
    std::string_view rest(text);
    if (!rest.starts_with(prefix)) return bad();
    rest.remove_prefix(prefix.size());
    OpenFlowTarget target;
    if (passive) {
        const size_t colon = rest.find(':');
        const std::optional<uint16_t> port = port_number(rest.substr(0, colon), true);
        if (!port) return bad();
        target.port = *port;
        target.address = "127.0.0.1";
        if (colon != std::string_view::npos) {
            const std::optional<std::string> ip = address(rest.substr(colon + 1));
            if (!ip) return bad();
            target.address = *ip;
        }
        return target;
    }
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad();
    const std::optional<std::string> ip = address(rest.substr(0, colon));
    const std::optional<uint16_t> port = port_number(rest.substr(colon + 1), false);
    if (!ip || !port) return bad();
    target.address = *ip;
    target.port = *port;
    return target;
}

}  // namespace flowpath
