// Shared by the OpenFlow fuzz targets: the round-trip property every
// decoder must have. A message that decodes encodes to bytes that decode
// again, and that second encoding is the first one (the codec's form is a
// fixed point). Anything else aborts with the bytes involved.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "flowpath/openflow_codec.hpp"

namespace flowpath::of::fuzz {

[[noreturn]] inline void die(const char* what, ByteView input) {
    std::fprintf(stderr, "%s\ninput:", what);
    for (uint8_t b : input) std::fprintf(stderr, "%02x", b);
    std::fprintf(stderr, "\n");
    std::abort();
}

/// decode<M>(bytes); if it decodes, checks the round trip.
template <typename M>
void message_round_trip(ByteView bytes) {
    Decoded<M> m = decode<M>(bytes);
    if (!m.ok()) return;
    Bytes once;
    encode(m.value(), 1, once);
    Decoded<M> again = decode<M>(once);
    if (!again.ok()) die(("re-encoded message does not decode: " + error_name(again.error())).c_str(), bytes);
    Bytes twice;
    encode(again.value(), 1, twice);
    if (once != twice) die("encoding is not stable", bytes);
}

/// decode_body<B>(bytes) and the same property for a body (B a struct or a
/// vector of entries, encoded entry by entry).
template <typename B>
void body_round_trip(ByteView bytes) {
    Decoded<B> b = decode_body<B>(bytes);
    if (!b.ok()) return;
    auto encode_all = [](const B& value) {
        Bytes out;
        if constexpr (requires { value.begin(); }) {
            for (const auto& entry : value) encode_body(entry, out);
        } else {
            encode_body(value, out);
        }
        return out;
    };
    const Bytes once = encode_all(b.value());
    Decoded<B> again = decode_body<B>(once);
    if (!again.ok()) die(("re-encoded body does not decode: " + error_name(again.error())).c_str(), bytes);
    if (encode_all(again.value()) != once) die("body encoding is not stable", bytes);
}

}  // namespace flowpath::of::fuzz
