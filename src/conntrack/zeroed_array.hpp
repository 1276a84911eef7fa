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
#include <utility>

#include "flowpath/error.hpp"

namespace flowpath {

template <typename T>
class ZeroedArray {
    static_assert(std::is_trivially_copyable_v<T>, "zero pages are T's value only for plain data");

public:
    /// How the pages are asked for.
    enum class Pages {
        small,  ///< the system's base pages
        /// Transparent huge pages where the system allows them (madvise):
        /// for arrays read at random per packet, where a TLB miss per access
        /// cost more than the lookup. Resident in 2 MB steps.
        huge,
    };

    /// Throws Error when the address space cannot be had.
    explicit ZeroedArray(size_t count, Pages pages = Pages::small) : bytes_(count * sizeof(T)) {
        items_ = reserve(bytes_, pages);
        if (!items_) throw Error("cannot reserve " + std::to_string(bytes_) + " bytes: " + std::strerror(errno));
    }
    /// For the packet path, which must not throw: an array that holds
    /// nothing (empty()) when the address space cannot be had.
    static ZeroedArray try_reserve(size_t count, Pages pages) noexcept {
        ZeroedArray array;
        array.items_ = reserve(count * sizeof(T), pages);
        if (array.items_) array.bytes_ = count * sizeof(T);
        return array;
    }
    ~ZeroedArray() {
        if (items_) munmap(items_, bytes_);
    }
    ZeroedArray(const ZeroedArray&) = delete;
    ZeroedArray& operator=(const ZeroedArray&) = delete;
    ZeroedArray(ZeroedArray&& other) noexcept : bytes_(other.bytes_), items_(other.items_) {
        other.bytes_ = 0;
        other.items_ = nullptr;
    }
    ZeroedArray& operator=(ZeroedArray&& other) noexcept {
        std::swap(bytes_, other.bytes_);
        std::swap(items_, other.items_);
        return *this;
    }

    /// An array that holds nothing (empty()).
    ZeroedArray() = default;

    bool empty() const { return items_ == nullptr; }

    T& operator[](size_t i) { return items_[i]; }
    const T& operator[](size_t i) const { return items_[i]; }
    /// Bytes reserved (an upper bound of what it uses).
    size_t bytes() const { return bytes_; }

private:
    static T* reserve(size_t bytes, Pages pages) noexcept {
        void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) return nullptr;
        // Only advice: without transparent huge pages the array works the same.
        if (pages == Pages::huge) madvise(memory, bytes, MADV_HUGEPAGE);
        return static_cast<T*>(memory);
    }

    size_t bytes_ = 0;
    T* items_ = nullptr;
};

}  // namespace flowpath
