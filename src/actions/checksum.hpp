// Checksum arithmetic for the action executor (internal to src/actions):
// incremental Internet checksum updates (RFC 1624) and the CRC32c of SCTP.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flowpath::actions_detail {

/// The big-endian 16-bit value at `p`, in host order.
inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

inline void store_be16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

/// An RFC 1624 (eqn. 3) update of one Internet checksum: HC' = ~(~HC + ~m +
/// m') summed over every changed 16-bit word, with end-around carry. The
/// result depends only on the words, not on their grouping or order, and is
/// the one Open vSwitch computes (checked against it: docs/actions.md). A
/// wrong checksum stays wrong by the same amount.
class ChecksumUpdate {
public:
    explicit ChecksumUpdate(uint16_t old_checksum) : sum_(static_cast<uint16_t>(~old_checksum)) {}

    /// One 16-bit word (host order values) changed from `old_word` to `new_word`.
    void word(uint16_t old_word, uint16_t new_word) {
        sum_ += static_cast<uint16_t>(~old_word);
        sum_ += new_word;
    }

    /// `count` bytes (even) at word-aligned positions of the checksummed
    /// data changed from `old_bytes` to `new_bytes`.
    void bytes(const uint8_t* old_bytes, const uint8_t* new_bytes, size_t count) {
        for (size_t i = 0; i + 1 < count; i += 2) word(load_be16(old_bytes + i), load_be16(new_bytes + i));
    }

    /// The new checksum (host order).
    uint16_t result() const {
        uint32_t sum = sum_;
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
        return static_cast<uint16_t>(~sum);
    }

private:
    uint32_t sum_;  // at most 17 words of 2 * 0xffff: no overflow
};

/// The CRC32c register after feeding `len` bytes at `data` to a register
/// holding `crc` (reflected polynomial 0x82f63b78, no initial or final
/// inversion: callers add those). Linear in (crc, data).
uint32_t crc32c_update(uint32_t crc, const uint8_t* data, size_t len);

/// The register after feeding `len` zero bytes to `crc`.
uint32_t crc32c_zeros(uint32_t crc, size_t len);

}  // namespace flowpath::actions_detail
