// Internal interface between the match parser (parse_rule.cpp) and the
// action parser (parse_actions.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "flowpath/rule.hpp"

namespace flowpath::rules {

/// Parses the actions in line[begin, end) of a rule in `table` whose
/// (finished) match is `match`; checks every action's prerequisites against
/// the match the way ovs-ofctl does (a VLAN pushed or popped by an earlier
/// action counts). Throws RuleError.
ActionList parse_actions(std::string_view line, size_t begin, size_t end, const Match& match,
                         uint8_t table, const PortNames& ports);

}  // namespace flowpath::rules
