// The rule language: parsing and printing the rule file syntax.
//
// A rule is one line in the OpenFlow 1.3 syntax of `ovs-ofctl add-flows`
// (docs/rules.md lists what is supported). Parsing gives a Rule whose match
// is a value/mask pair over the shared FlowKey layout and whose actions are
// a flat ActionList; printing gives back the same syntax in a canonical
// order, so that parse(format(r)) == r for every rule the parser accepts.
//
// Unlike Open vSwitch, which silently turns a field whose prerequisites are
// missing into a wildcard, the parser rejects such rules with an error that
// names the field and what it needs. Errors are values (ParseError), never
// exceptions.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "flowpath/action.hpp"
#include "flowpath/flow_key.hpp"

namespace flowpath {

/// Tables are 0..kMaxTable.
inline constexpr uint8_t kMaxTable = 253;
/// The priority of a rule that gives none.
inline constexpr uint16_t kDefaultPriority = 32768;

/// The --port NAMEs in declaration order: port number N (1-based) is
/// names[N - 1].
using PortNames = std::vector<std::string>;

/// A match: the packet bits a rule examines (`mask`) and what they must be
/// (`value`, always pre-masked: value & ~mask == 0, padding zero).
///
/// OpenFlow's 64-bit `metadata` is not a packet field and has no place in
/// the FlowKey: it is 0 when a packet enters, only write_metadata changes
/// it, and the pipeline keeps it beside the key (docs/openflow.md). A rule
/// matches it with `metadata`/`metadata_mask` (pre-masked; mask 0: any).
struct Match {
    FlowKey value{};
    FlowMask mask{};
    uint64_t metadata = 0;
    uint64_t metadata_mask = 0;

    /// True when `key` agrees with `value` on every bit of `mask`.
    bool matches(const FlowKey& key) const {
        // Word by word through memcpy: FlowKey's members may not be read
        // through a uint64_t pointer (strict aliasing).
        const auto* k = reinterpret_cast<const unsigned char*>(&key);
        const auto* v = reinterpret_cast<const unsigned char*>(&value);
        const auto* m = reinterpret_cast<const unsigned char*>(&mask);
        for (size_t i = 0; i < sizeof(FlowKey); i += 8) {
            uint64_t kw, vw, mw;
            std::memcpy(&kw, k + i, 8);
            std::memcpy(&vw, v + i, 8);
            std::memcpy(&mw, m + i, 8);
            if ((kw & mw) != vw) return false;
        }
        return true;
    }
    /// True when every metadata bit `wide` examines, this match examines
    /// with the same value (OpenFlow's non-strict selection).
    bool metadata_within(const Match& wide) const {
        return (metadata_mask & wide.metadata_mask) == wide.metadata_mask &&
               (metadata & wide.metadata_mask) == wide.metadata;
    }
    /// True when the match examines nothing.
    bool is_catchall() const { return mask == FlowMask{} && metadata_mask == 0; }

    bool operator==(const Match& other) const {
        return value == other.value && mask == other.mask && metadata == other.metadata &&
               metadata_mask == other.metadata_mask;
    }
};

/// Where a rule was written (for error messages later on).
struct SourceLocation {
    std::string file;   ///< empty when the rule did not come from a file
    unsigned line = 0;  ///< 1-based; 0 when unknown
};

/// One rule of one table.
struct Rule {
    uint8_t table = 0;                     ///< 0..kMaxTable
    uint16_t priority = kDefaultPriority;  ///< higher wins
    uint64_t cookie = 0;
    uint16_t idle_timeout = 0;             ///< seconds, 0 = none
    uint16_t hard_timeout = 0;             ///< seconds, 0 = none
    Match match;
    ActionList actions;                    ///< empty = drop
    SourceLocation source;

    /// Rules are equal when they behave the same: `source` is not compared.
    bool operator==(const Rule& other) const {
        return table == other.table && priority == other.priority && cookie == other.cookie &&
               idle_timeout == other.idle_timeout && hard_timeout == other.hard_timeout &&
               match == other.match && actions == other.actions;
    }
};

/// A match as `del-flows [MATCH]` takes it: match fields plus optional
/// table, priority and cookie[/mask] (no actions).
struct MatchFilter {
    Match match;
    std::optional<uint8_t> table;
    std::optional<uint16_t> priority;
    uint64_t cookie = 0;
    uint64_t cookie_mask = 0;  ///< 0 = any cookie
};

/// Why a text did not parse.
struct ParseError {
    std::string file;     ///< may be empty
    unsigned line = 0;    ///< 1-based; 0 when the error is not about one line
    unsigned column = 0;  ///< 1-based byte column; 0 when not about one place
    std::string message;  ///< one line, e.g. "priority: expected a number 0-65535, found '70000'"

    /// "file:line:column: message", leaving out the parts that are empty/zero.
    std::string to_string() const;
};

/// Either a parsed value or the error that stopped the parse.
template <typename T>
class Parsed {
public:
    Parsed(T value) : result_(std::move(value)) {}
    Parsed(ParseError error) : result_(std::move(error)) {}

    bool ok() const { return result_.index() == 0; }
    explicit operator bool() const { return ok(); }
    /// The value; only when ok().
    T& value() { return std::get<0>(result_); }
    const T& value() const { return std::get<0>(result_); }
    /// The error; only when !ok().
    const ParseError& error() const { return std::get<1>(result_); }

private:
    std::variant<T, ParseError> result_;
};

/// Parses one rule (no comment stripping; newlines count as white space).
/// `where` is stored in the rule and names the file and line in errors.
Parsed<Rule> parse_rule(std::string_view text, const PortNames& ports,
                        const SourceLocation& where = {});

/// Parses a match-only string for `del-flows`: match fields, `table=`,
/// `priority=`, `cookie=V[/M]`. Empty text matches everything.
Parsed<MatchFilter> parse_match(std::string_view text, const PortNames& ports);

/// Parses the text of a rule file: one rule a line, `#` starts a comment,
/// blank lines are skipped. Reports the first error, naming `file`.
Parsed<std::vector<Rule>> parse_rules(std::string_view text, const PortNames& ports,
                                      const std::string& file);

/// Reads and parses a rule file (see parse_rules).
Parsed<std::vector<Rule>> parse_rule_file(const std::string& path, const PortNames& ports);

/// The rule in rule-file syntax, as dump-flows shows it without counters:
/// `[cookie=C, ][table=T, ][idle_timeout=S, ][hard_timeout=S, ]`
/// `[priority=P,]MATCH actions=ACTIONS` (defaults left out).
std::string format_rule(const Rule& rule, const PortNames& ports);
/// The match fields, comma-separated, canonical order ("" for catch-all).
std::string format_match(const Match& match, const PortNames& ports);
/// The actions, comma-separated ("drop" for none).
std::string format_actions(const ActionList& actions, const PortNames& ports);
/// A port as the rule syntax names it: its NAME when that parses back to
/// the same port, else its number.
std::string format_port(uint32_t port, const PortNames& ports);

}  // namespace flowpath
