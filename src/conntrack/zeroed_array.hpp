// A fixed array of trivially copyable T whose all-zero bytes are a valid
// value, in anonymous pages (internal to src/conntrack): the system hands out
// zero pages and charges memory only for the pages touched, so a table sized
// for a million connections costs what its live connections use.
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>

#include "flowpath/error.hpp"

namespace flowpath {

template <typename T>
class ZeroedArray {
    static_assert(std::is_trivially_copyable_v<T>, "zero pages are T's value only for plain data");

public:
    /// Throws Error when the address space cannot be had.
    explicit ZeroedArray(size_t count) : bytes_(count * sizeof(T)) {
        void* memory = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            throw Error("cannot reserve " + std::to_string(bytes_) + " bytes: " + std::strerror(errno));
        }
        items_ = static_cast<T*>(memory);
    }
    ~ZeroedArray() { munmap(items_, bytes_); }
    ZeroedArray(const ZeroedArray&) = delete;
    ZeroedArray& operator=(const ZeroedArray&) = delete;

    T& operator[](size_t i) { return items_[i]; }
    const T& operator[](size_t i) const { return items_[i]; }
    /// Bytes reserved (an upper bound of what it uses).
    size_t bytes() const { return bytes_; }

private:
    size_t bytes_;
    T* items_ = nullptr;
};

}  // namespace flowpath
