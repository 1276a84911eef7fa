#include <algorithm>
#include <sstream>

#include "flowpath/error.hpp"
#include "flowpath/pipeline.hpp"

namespace flowpath {

namespace {
// Connection tracking arrives with its own issue; until then a rule that
// needs it is refused rather than silently run without it.
bool uses_conntrack(const Rule& rule) {
    const FlowMask& m = rule.match.mask;
    if (m.ct_state || m.ct_zone || m.ct_mark) return true;
    return std::any_of(rule.actions.begin(), rule.actions.end(), [](const Action& a) {
        return a.type == ActionType::kCt || a.type == ActionType::kCtClear;
    });
}
}  // namespace

RuleSet::RuleSet(PortNames ports) : ports_(std::move(ports)) {}

void RuleSet::add(Rule rule) {
    if (uses_conntrack(rule)) {
        throw ConfigError(config_place(rule.source.file, rule.source.line) +
                          "connection tracking (ct, ct_clear, ct_state, ct_zone, ct_mark) is not supported yet");
    }
    Classifier& table = tables_.table(rule.table);
    if (const ClassifierRule* same = table.find_exact(rule.match.value, rule.match.mask, rule.priority)) {
        table.remove(same->id);
    }
    const uint32_t id = next_id_++;
    entries_.push_back(std::make_unique<RuleEntry>(std::move(rule), id));
    RuleEntry& entry = *entries_.back();
    table.insert(entry.rule.match.value, entry.rule.match.mask, entry.rule.priority, id, &entry);
}

std::string RuleSet::dump(int only_table) const {
    std::ostringstream out;
    for (unsigned t = 0; t < kMaxTables; ++t) {
        if (only_table >= 0 && static_cast<unsigned>(only_table) != t) continue;
        const Classifier* table = tables_.find_table(t);
        if (!table) continue;
        for (const ClassifierRule* rule : table->rules()) {
            const RuleEntry& entry = entry_of(*rule);
            out << "n_packets=" << entry.packets.load(std::memory_order_relaxed)
                << ", n_bytes=" << entry.bytes.load(std::memory_order_relaxed) << ", "
                << format_rule(entry.rule, ports_) << "\n";
        }
    }
    return out.str();
}

}  // namespace flowpath
