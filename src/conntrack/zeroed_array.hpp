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
        void* memory = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            throw Error("cannot reserve " + std::to_string(bytes_) + " bytes: " + std::strerror(errno));
        }
        // Only advice: without transparent huge pages the array works the same.
        if (pages == Pages::huge) madvise(memory, bytes_, MADV_HUGEPAGE);
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
