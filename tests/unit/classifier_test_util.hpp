// Small helpers shared by the classifier test files.
#pragma once

#include <arpa/inet.h>

#include <bit>
#include <cstdint>

#include "flowpath/flow_key.hpp"

namespace flowpath::classifier_test {

inline uint32_t ipv4(unsigned a, unsigned b, unsigned c, unsigned d) { return htonl(a << 24 | b << 16 | c << 8 | d); }
inline uint32_t prefix_mask(unsigned length) { return length == 0 ? 0 : htonl(~uint32_t{0} << (32 - length)); }

inline const void* tag(uintptr_t n) { return reinterpret_cast<const void*>(n); }

inline bool is_zero(const FlowMask& mask) { return mask == FlowMask{}; }

/// Whether every bit of `inner` is set in `outer`.
inline bool subset(const FlowMask& inner, const FlowMask& outer) {
    for (size_t i = 0; i < kFlowWords; ++i) {
        if (flow_words(inner)[i] & ~flow_words(outer)[i]) return false;
    }
    return true;
}

inline unsigned popcount(const FlowMask& mask) {
    unsigned n = 0;
    for (size_t i = 0; i < kFlowWords; ++i) n += static_cast<unsigned>(std::popcount(flow_words(mask)[i]));
    return n;
}

}  // namespace flowpath::classifier_test
