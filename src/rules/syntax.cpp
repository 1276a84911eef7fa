// Lexical layer of the rule language; see syntax.hpp.
#include "syntax.hpp"

#include "flowpath/rule.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>

namespace flowpath::rules {

void fail(size_t offset, std::string message) { throw RuleError{offset, std::move(message)}; }

std::string shown(std::string_view token) {
    if (token.empty()) return "nothing";
    std::string out = "'";
    out.append(token);
    out += '\'';
    return out;
}

namespace {

bool is_key_end(char c) { return c == ':' || c == '=' || c == '(' || is_separator(c); }

}  // namespace

bool KeyValueScanner::next(KeyValue& item) {
    while (pos_ < end_ && is_separator(line_[pos_])) ++pos_;
    if (pos_ >= end_) return false;

    item = KeyValue{};
    item.key_offset = pos_;
    size_t key_end = pos_;
    while (key_end < end_ && !is_key_end(line_[key_end])) ++key_end;
    item.key = line_.substr(pos_, key_end - pos_);
    pos_ = key_end;
    if (pos_ >= end_ || is_separator(line_[pos_])) {
        if (pos_ < end_) ++pos_;
        return true;
    }

    item.delimiter = line_[pos_++];
    item.value_offset = pos_;
    if (item.delimiter == '(') {
        // The value runs to the matching ')'.
        int depth = 1;
        size_t i = pos_;
        for (; i < end_; ++i) {
            if (line_[i] == '(') ++depth;
            if (line_[i] == ')' && --depth == 0) break;
        }
        if (i >= end_) fail(item.value_offset - 1, "expected ')' to close this '(', found end of text");
        item.value = line_.substr(pos_, i - pos_);
        pos_ = i + 1;
        return true;
    }
    // ':' or '=': to the next separator outside parentheses.
    size_t i = pos_;
    while (i < end_ && !is_separator(line_[i])) {
        if (line_[i] == '(') {
            int depth = 0;
            do {
                if (line_[i] == '(') ++depth;
                if (line_[i] == ')') --depth;
                ++i;
            } while (i < end_ && depth > 0);
        } else {
            ++i;
        }
    }
    item.value = line_.substr(pos_, i - pos_);
    pos_ = i < end_ ? i + 1 : i;
    return true;
}

std::optional<uint64_t> parse_uint(std::string_view text) {
    if (text.empty()) return std::nullopt;
    unsigned base = 10;
    size_t i = 0;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (text.size() > 1 && text[0] == '0') {
        base = 8;  // as strtoull(..., 0) reads it
        i = 1;
    }
    uint64_t value = 0;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = static_cast<unsigned>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<unsigned>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = static_cast<unsigned>(c - 'A' + 10);
        } else {
            return std::nullopt;
        }
        if (digit >= base) return std::nullopt;
        if (value > (UINT64_MAX - digit) / base) return std::nullopt;
        value = value * base + digit;
    }
    return value;
}

std::optional<uint64_t> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 19) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    return value;
}

uint8_t parse_table(std::string_view text, size_t offset, std::string_view what) {
    const std::optional<uint64_t> table = parse_decimal(text);
    if (!table || *table > kMaxTable) {
        fail(offset, std::string(what) + ": expected a table 0-" + std::to_string(kMaxTable) + ", found " + shown(text));
    }
    return static_cast<uint8_t>(*table);
}

std::string number_range(uint64_t max) {
    if (max <= 65535) return "a number 0-" + std::to_string(max);
    return "a number 0-" + hex(max);
}

uint64_t parse_number(std::string_view text, size_t offset, uint64_t max, std::string_view what,
                      std::string_view expected) {
    const std::optional<uint64_t> value = parse_uint(text);
    if (!value || *value > max) {
        const std::string want = expected.empty() ? number_range(max) : std::string(expected);
        fail(offset, std::string(what) + ": expected " + want + ", found " + shown(text));
    }
    return *value;
}

bool parse_mac(std::string_view text, uint8_t out[6]) {
    size_t pos = 0;
    for (int group = 0; group < 6; ++group) {
        if (group > 0) {
            if (pos >= text.size() || text[pos] != ':') return false;
            ++pos;
        }
        unsigned value = 0;
        int digits = 0;
        while (pos < text.size() && digits < 2 && std::isxdigit(static_cast<unsigned char>(text[pos]))) {
            const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[pos])));
            value = value * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10);
            ++digits;
            ++pos;
        }
        if (digits == 0) return false;
        out[group] = static_cast<uint8_t>(value);
    }
    return pos == text.size();
}

bool parse_ipv4(std::string_view text, uint8_t out[4]) {
    size_t pos = 0;
    for (int octet = 0; octet < 4; ++octet) {
        if (octet > 0) {
            if (pos >= text.size() || text[pos] != '.') return false;
            ++pos;
        }
        unsigned value = 0;
        int digits = 0;
        while (pos < text.size() && digits < 3 && text[pos] >= '0' && text[pos] <= '9') {
            value = value * 10 + static_cast<unsigned>(text[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0 || value > 255) return false;
        out[octet] = static_cast<uint8_t>(value);
    }
    return pos == text.size();
}

bool parse_ipv6(std::string_view text, uint8_t out[16]) {
    if (text.empty() || text.size() > 45) return false;
    const std::string copy(text);
    return inet_pton(AF_INET6, copy.c_str(), out) == 1;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string hex(uint64_t value, int digits) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(value));
    return buf;
}

}  // namespace flowpath::rules
