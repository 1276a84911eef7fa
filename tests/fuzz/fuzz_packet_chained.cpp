// libFuzzer target for the chained-frame extraction: a frame whose first
// `avail` bytes alone are readable (the first segment of an mbuf chain)
// must give the key and layout of the whole frame when the extraction says
// its headers lie there, and must never read past those bytes.
// Input: byte 0 is the in_port (low 7 bits) and the VLAN limit (top bit: 1
// instead of 2), bytes 1-2 the first segment's length (big-endian, taken
// modulo the frame's length + 1); the rest is the frame. The first segment
// is copied into a block of exactly its size, so ASan sees any over-read.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "flowpath/packet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath;
    if (size < 3) return 0;
    const uint32_t in_port = data[0] & 0x7f;
    set_vlan_limit((data[0] & 0x80) ? 1 : 2);
    const uint8_t* frame = data + 3;
    const auto len = static_cast<uint32_t>(size - 3);
    const uint32_t avail = (uint32_t{data[1]} << 8 | data[2]) % (len + 1);

    Miniflow whole;
    PacketLayout whole_layout;
    extract_miniflow(frame, len, in_port, whole, whole_layout);

    const auto first = std::make_unique<uint8_t[]>(avail ? avail : 1);
    if (avail) std::memcpy(first.get(), frame, avail);
    Miniflow chained;
    PacketLayout layout;
    const bool complete = extract_miniflow_chained(first.get(), avail, len, in_port, chained, layout);
    if (!complete) {
        // Refused: in_port alone, nothing parsed, and only for a real chain.
        if (avail >= len || chained.map != 1 || chained.words[0] != in_port || layout.l3_offset != kNoOffset) {
            std::fprintf(stderr, "fuzz_packet_chained: a refusal that is not one\n");
            std::abort();
        }
        return 0;
    }
    const bool same_map = chained.map == whole.map;
    const bool same_words =
        same_map && std::memcmp(chained.words, whole.words, sizeof(uint64_t) * __builtin_popcountll(whole.map)) == 0;
    const bool same_layout = std::memcmp(&layout, &whole_layout, sizeof layout) == 0;
    if (!same_words || !same_layout) {
        std::fprintf(stderr, "fuzz_packet_chained: first segment (%u of %u bytes) and whole frame disagree\n", avail,
                     len);
        std::abort();
    }
    return 0;
}
