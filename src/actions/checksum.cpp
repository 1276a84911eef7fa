// CRC32c (Castagnoli) for SCTP, table-driven, four bytes per step. SCTP is
// rare enough that a portable table beats the complexity of dispatching to
// the SSE4.2 crc32 instruction.
#include "checksum.hpp"

#include <array>

namespace flowpath::actions_detail {
namespace {

constexpr uint32_t kCrc32cPoly = 0x82f63b78;  // reflected Castagnoli polynomial

using CrcTables = std::array<std::array<uint32_t, 256>, 4>;

/// tables[0] advances the register by one byte; tables[k] by one byte
/// followed by k zero bytes, so four lookups advance it by four bytes.
constexpr CrcTables make_tables() {
    CrcTables tables{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kCrc32cPoly : 0);
        tables[0][i] = crc;
    }
    for (size_t k = 1; k < 4; ++k) {
        for (uint32_t i = 0; i < 256; ++i) {
            const uint32_t prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][prev & 0xff];
        }
    }
    return tables;
}

constexpr CrcTables kTables = make_tables();

inline uint32_t step_byte(uint32_t crc, uint8_t byte) {
    return (crc >> 8) ^ kTables[0][(crc ^ byte) & 0xff];
}

inline uint32_t step_word(uint32_t crc) {
    return kTables[3][crc & 0xff] ^ kTables[2][(crc >> 8) & 0xff] ^ kTables[1][(crc >> 16) & 0xff] ^
           kTables[0][crc >> 24];
}

}  // namespace

uint32_t crc32c_update(uint32_t crc, const uint8_t* data, size_t len) {
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        // Little-endian assembly: the reflected CRC consumes the low byte first.
        crc ^= uint32_t{data[i]} | uint32_t{data[i + 1]} << 8 | uint32_t{data[i + 2]} << 16 |
               uint32_t{data[i + 3]} << 24;
        crc = step_word(crc);
    }
    for (; i < len; ++i) crc = step_byte(crc, data[i]);
    return crc;
}

uint32_t crc32c_zeros(uint32_t crc, size_t len) {
    for (; len >= 4; len -= 4) crc = step_word(crc);
    for (; len > 0; --len) crc = step_byte(crc, 0);
    return crc;
}

}  // namespace flowpath::actions_detail
