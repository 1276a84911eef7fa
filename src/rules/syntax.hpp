// Lexical layer of the rule language: the key/value scanner of ovs-ofctl,
// numbers and addresses. Internal to src/rules.
//
// Inside the parser, errors are thrown as RuleError (an offset into the line
// and a message) and turned into a ParseError value at the API boundary:
// parsing is not on the packet path, and this keeps every check one line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowpath::rules {

/// A parse error at byte `offset` of the line being parsed.
struct RuleError {
    size_t offset;
    std::string message;
};

[[noreturn]] void fail(size_t offset, std::string message);

/// How a token is shown in "found ..." messages: 'text', or "nothing".
std::string shown(std::string_view token);

/// One `key`, `key=value`, `key:value` or `key(value)` item. Offsets are
/// into the whole line.
struct KeyValue {
    std::string_view key;
    size_t key_offset = 0;
    char delimiter = 0;  ///< ':', '=', '(' or 0 (no value)
    std::string_view value;
    size_t value_offset = 0;

    /// Offset just past the item (after the ')' of a `key(value)`).
    size_t end_offset() const {
        if (!delimiter) return key_offset + key.size();
        return value_offset + value.size() + (delimiter == '(' ? 1 : 0);
    }
    /// The item as written, from `line`.
    std::string_view text(std::string_view line) const {
        return line.substr(key_offset, end_offset() - key_offset);
    }
};

/// Splits text into KeyValue items the way ovs-ofctl does: items are
/// separated by commas and white space; a key ends at one of `:=(, \t\r\n`;
/// after `:` or `=` the value runs to the next comma or white space outside
/// parentheses; after `(` it runs to the matching `)`.
class KeyValueScanner {
public:
    /// Scans line[begin, end).
    KeyValueScanner(std::string_view line, size_t begin, size_t end)
        : line_(line), pos_(begin), end_(end) {}
    /// The next item, or false at the end. Throws on an unclosed '('.
    bool next(KeyValue& item);
    /// Offset just past the last item returned (or the start).
    size_t position() const { return pos_; }

private:
    std::string_view line_;
    size_t pos_;
    size_t end_;
};

/// True for the separators between items.
inline bool is_separator(char c) {
    return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/// An unsigned number as ovs-ofctl reads one (strtoull base 0): `0x` hex,
/// a leading `0` octal, else decimal. Nothing else may follow. nullopt on
/// bad syntax or overflow of 64 bits.
std::optional<uint64_t> parse_uint(std::string_view text);

/// A decimal number (leading zeros allowed, still decimal): how ovs-ofctl
/// reads table and port numbers. nullopt on anything else or overflow.
std::optional<uint64_t> parse_decimal(std::string_view text);

/// A table number 0..kMaxTable in decimal; throws
/// "<what>: expected a table 0-253, found ..." at `offset`.
uint8_t parse_table(std::string_view text, size_t offset, std::string_view what);

/// parse_uint limited to [0, max]; on failure throws
/// "<what>: expected <expected>, found '<text>'" at `offset`.
uint64_t parse_number(std::string_view text, size_t offset, uint64_t max, std::string_view what,
                      std::string_view expected = {});

/// "a number 0-<max>" (max in decimal up to 65535, else hex).
std::string number_range(uint64_t max);

/// xx:xx:xx:xx:xx:xx, 1-2 hex digits a group.
bool parse_mac(std::string_view text, uint8_t out[6]);
/// a.b.c.d, each 0-255; result in network order.
bool parse_ipv4(std::string_view text, uint8_t out[4]);
/// Any form inet_pton(AF_INET6) accepts.
bool parse_ipv6(std::string_view text, uint8_t out[16]);

/// ASCII case-insensitive equality.
bool equals_ignoring_case(std::string_view a, std::string_view b);

/// Hex formatting helper: "0x" + lower-case hex of `value`, at least
/// `digits` digits.
std::string hex(uint64_t value, int digits = 1);

}  // namespace flowpath::rules
