// libFuzzer target for the rule language: parses arbitrary text as a rule
// and as a match filter, and for anything that parses, prints it, parses the
// print again and aborts unless both parses agree (and the print is stable).
// A first byte below 0x20 selects the port table (so that names, numbers and
// odd names all get exercised); the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "flowpath/rule.hpp"

namespace {

using flowpath::PortNames;

const PortNames& ports_for(uint8_t selector) {
    static const PortNames kTables[] = {
        {"p0", "p1", "p2", "p3"},
        {},
        {"eth0", "2", "flood", "x", "x"},
    };
    return kTables[selector % 3];
}

[[noreturn]] void die(const char* what, std::string_view input, const std::string& printed) {
    std::fprintf(stderr, "%s\ninput:   %.*s\nprinted: %s\n", what, static_cast<int>(input.size()), input.data(),
                 printed.c_str());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    uint8_t selector = 0;
    if (!text.empty() && static_cast<uint8_t>(text[0]) < 0x20 && text[0] != '\n' && text[0] != '\t') {
        selector = static_cast<uint8_t>(text[0]);
        text.remove_prefix(1);
    }
    const PortNames& ports = ports_for(selector);

    Parsed<Rule> rule = parse_rule(text, ports);
    if (rule.ok()) {
        const std::string printed = format_rule(rule.value(), ports);
        Parsed<Rule> again = parse_rule(printed, ports);
        if (!again.ok()) die(("printed rule does not parse: " + again.error().to_string()).c_str(), text, printed);
        if (!(again.value() == rule.value())) die("printed rule parses differently", text, printed);
        if (format_rule(again.value(), ports) != printed) die("printing is not stable", text, printed);
    } else if (rule.error().message.empty() || rule.error().column == 0 || rule.error().column > text.size() + 1) {
        die("error without a message or with a column outside the text", text, rule.error().to_string());
    }

    Parsed<MatchFilter> filter = parse_match(text, ports);
    if (filter.ok()) {
        const std::string printed = format_match(filter.value().match, ports);
        Parsed<MatchFilter> again = parse_match(printed, ports);
        if (!again.ok()) die(("printed match does not parse: " + again.error().to_string()).c_str(), text, printed);
        if (!(again.value().match == filter.value().match)) die("printed match parses differently", text, printed);
    }
    return 0;
}
