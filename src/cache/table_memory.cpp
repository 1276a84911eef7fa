// Memory for the caches' large tables: anonymous, huge pages where allowed.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "flowpath/cache.hpp"
#include "flowpath/error.hpp"

namespace flowpath {

void* map_zeroed_pages(size_t bytes) {
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw Error("cannot map " + std::to_string(bytes) + " bytes: " + std::strerror(errno));
    // Only advice: without transparent huge pages the table works the same.
    madvise(memory, bytes, MADV_HUGEPAGE);
    // Touched now, in the constructor, not by the first packets (a huge
    // page's fault zeroes 2 MiB).
    std::memset(memory, 0, bytes);
    return memory;
}

void TableUnmapper::operator()(void* memory) const {
    if (memory) munmap(memory, bytes);
}

}  // namespace flowpath
