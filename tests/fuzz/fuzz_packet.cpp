// libFuzzer target for the flow-key parsers: runs the reference
// (parse_flow_key) and the fast path (extract_miniflow) on the same bytes
// and aborts if they disagree on the key or the layout, or if the fast
// path's map misses a nonzero word.
// The first input byte is metadata: its low 7 bits are the in_port, its top
// bit selects a VLAN limit of 1 instead of 2; the rest is the frame. The
// frame ends where the fuzzer's buffer ends, so ASan sees any over-read.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "flowpath/packet.hpp"

namespace {
constexpr uint64_t kNeverWritten = ~uint64_t{0xfffd};  // word 1 (ct_*, recirc_id) and beyond 15
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath;
    if (size == 0) return 0;
    const uint32_t in_port = data[0] & 0x7f;
    set_vlan_limit((data[0] & 0x80) ? 1 : 2);
    const uint8_t* frame = data + 1;
    const auto len = static_cast<uint32_t>(size - 1);

    FlowKey key;
    PacketLayout layout;
    parse_flow_key(frame, len, in_port, key, layout);

    Miniflow mf;
    PacketLayout fast_layout;
    extract_miniflow(frame, len, in_port, mf, fast_layout);

    const FlowKey expanded = miniflow_expand(mf);
    const bool same_key = expanded == key;
    // The fast map may hold zero words (packet.hpp) but never misses a
    // nonzero one, and a word it holds is always one a parse path writes.
    const uint64_t canonical = miniflow_from_key(key).map;
    const bool same_map = (mf.map & canonical) == canonical && !(mf.map & kNeverWritten);
    const bool same_layout = std::memcmp(&layout, &fast_layout, sizeof layout) == 0;
    if (!same_key || !same_map || !same_layout) {
        std::fprintf(stderr, "fuzz_packet: parsers disagree (key %d, map %d, layout %d)\n", same_key, same_map,
                     same_layout);
        std::abort();
    }
    // The reference key must keep its invariants: metadata untouched.
    if (key.in_port != in_port || key.ct_mark || key.ct_zone || key.ct_state || key.recirc_id) std::abort();
    return 0;
}
