// Byte-level reading and writing of OpenFlow's big-endian structures.
// Internal to src/openflow.
//
// A Reader never reads past its view: a read beyond the end records the
// error it was given (or OFPBRC_BAD_LEN) and yields zeros, so a layout can
// be walked to its end and checked once. A Writer appends to a byte vector
// and patches length fields afterwards.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "flowpath/openflow_codec.hpp"

namespace flowpath::of::wire {

class Reader {
public:
    explicit Reader(ByteView bytes, OfError short_error = err::kBadLen)
        : bytes_(bytes), short_error_(short_error) {}

    size_t remaining() const { return bytes_.size() - pos_; }
    size_t position() const { return pos_; }
    bool ok() const { return !error_; }
    const std::optional<OfError>& error() const { return error_; }
    /// Records `error` unless an earlier one is already recorded.
    void fail(OfError error) {
        if (!error_) error_ = error;
    }

    uint8_t u8() { return static_cast<uint8_t>(big_endian(1)); }
    uint16_t u16() { return static_cast<uint16_t>(big_endian(2)); }
    uint32_t u32() { return static_cast<uint32_t>(big_endian(4)); }
    uint64_t u64() { return big_endian(8); }
    void skip(size_t n) { (void)take(n); }
    void copy(void* out, size_t n) {
        const ByteView part = take(n);
        if (part.size() == n) {
            std::memcpy(out, part.data(), n);
        } else {
            std::memset(out, 0, n);
        }
    }
    /// The next `n` bytes (empty after an overrun, which is recorded).
    ByteView take(size_t n) {
        if (error_ || n > remaining()) {
            fail(short_error_);
            pos_ = bytes_.size();
            return {};
        }
        const ByteView part = bytes_.subspan(pos_, n);
        pos_ += n;
        return part;
    }
    ByteView rest() { return take(remaining()); }
    /// A fixed-size NUL-padded string field.
    std::string text(size_t n) {
        const ByteView part = take(n);
        size_t length = 0;
        while (length < part.size() && part[length] != 0) ++length;
        return std::string(reinterpret_cast<const char*>(part.data()), length);
    }

private:
    uint64_t big_endian(size_t n) {
        const ByteView part = take(n);
        uint64_t value = 0;
        for (uint8_t byte : part) value = (value << 8) | byte;
        return value;
    }

    ByteView bytes_;
    size_t pos_ = 0;
    OfError short_error_;
    std::optional<OfError> error_;
};

class Writer {
public:
    explicit Writer(Bytes& out) : out_(out) {}

    size_t size() const { return out_.size(); }
    void u8(uint8_t v) { out_.push_back(v); }
    void u16(uint16_t v) { put(v, 2); }
    void u32(uint32_t v) { put(v, 4); }
    void u64(uint64_t v) { put(v, 8); }
    void zeros(size_t n) { out_.insert(out_.end(), n, 0); }
    void bytes(const void* data, size_t n) {
        const auto* p = static_cast<const uint8_t*>(data);
        out_.insert(out_.end(), p, p + n);
    }
    void bytes(ByteView data) { out_.insert(out_.end(), data.begin(), data.end()); }
    /// A fixed-size field: `text` cut to n - 1 bytes, NUL-padded.
    void text(const std::string& text, size_t n) {
        const size_t length = text.size() < n ? text.size() : n - 1;
        bytes(text.data(), length);
        zeros(n - length);
    }
    /// Zeros up to the next multiple of `alignment` counted from `from`.
    void pad_from(size_t from, size_t alignment = 8) {
        const size_t length = size() - from;
        zeros((alignment - length % alignment) % alignment);
    }
    void patch16(size_t at, uint16_t v) {
        out_[at] = static_cast<uint8_t>(v >> 8);
        out_[at + 1] = static_cast<uint8_t>(v);
    }

private:
    void put(uint64_t v, size_t n) {
        for (size_t i = n; i-- > 0;) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    Bytes& out_;
};

/// Big-endian load/store of n <= 8 bytes.
inline uint64_t load_be(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
    return v;
}
inline void store_be(uint8_t* p, uint64_t v, size_t n) {
    for (size_t i = n; i-- > 0;) {
        p[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}

}  // namespace flowpath::of::wire
