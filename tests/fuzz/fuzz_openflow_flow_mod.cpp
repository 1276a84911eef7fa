// libFuzzer target: FLOW_MOD messages (header, fixed part, OXM match,
// instructions, actions), with the round-trip property and the rule check
// the agent runs on every decoded flow_mod.
#include "openflow_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath::of;
    const ByteView bytes(data, size);
    fuzz::message_round_trip<FlowMod>(bytes);
    if (Decoded<FlowMod> m = decode<FlowMod>(bytes); m.ok()) {
        const uint8_t table = m.value().table_id <= flowpath::kMaxTable ? m.value().table_id : 0;
        (void)check_rule(m.value().match.match, table, m.value().instructions.actions, 4, ActionContext::kFlow);
    }
    return 0;
}
