// libFuzzer target: the parts of flow entries on their own. The first byte
// picks what the rest is: an ofp_match, an action list (flow or packet-out
// context) or an instruction list. Whatever decodes must encode back to
// bytes that decode to the same value.
#include "openflow_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath::of;
    if (size == 0) return 0;
    const ByteView bytes(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0: {
        size_t consumed = 0;
        Decoded<OxmMatch> m = decode_match(bytes, consumed);
        if (!m.ok()) break;
        if (consumed > bytes.size() || consumed % 8) fuzz::die("match consumed past its bytes", bytes);
        Bytes once;
        encode_match(m.value(), once);
        size_t again_consumed = 0;
        Decoded<OxmMatch> again = decode_match(once, again_consumed);
        if (!again.ok() || again_consumed != once.size()) fuzz::die("re-encoded match does not decode", bytes);
        if (!(again.value() == m.value())) fuzz::die("match changed in a round trip", bytes);
        break;
    }
    case 1:
    case 2: {
        const ActionContext context = data[0] % 4 == 1 ? ActionContext::kFlow : ActionContext::kPacketOut;
        Decoded<flowpath::ActionList> a = decode_actions(bytes, context);
        if (!a.ok()) break;
        Bytes once;
        encode_actions(a.value(), once);
        Decoded<flowpath::ActionList> again = decode_actions(once, context);
        if (!again.ok() || again.value() != a.value()) fuzz::die("actions changed in a round trip", bytes);
        (void)check_rule(flowpath::Match{}, 0, a.value(), 4, context);
        break;
    }
    default: {
        Decoded<Instructions> i = decode_instructions(bytes);
        if (!i.ok()) break;
        Bytes once;
        encode_instructions(i.value(), once);
        Decoded<Instructions> again = decode_instructions(once);
        if (!again.ok() || !(again.value() == i.value())) fuzz::die("instructions changed in a round trip", bytes);
        break;
    }
    }
    return 0;
}
