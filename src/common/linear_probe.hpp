// An open-addressing array with linear probing, shared by the classifier's
// stage sets and the megaflow cache's subtable indexes.
//
// Slots are small trivially copyable records with a `uint32_t hash` member
// and a constexpr `empty()` test that holds for an all-zero Slot (so a new
// array needs no initialising pass). The array's size is a power of two and
// stays at most LoadPercent full; deletion shifts later slots back into the
// hole (no tombstones), so probe chains stay as short under churn as after a
// rebuild. Internal to src/: no public header.
//
// Growing never stalls the caller for long (the megaflow cache grows on the
// worker, where one rehash of 131,072 entries took ~3 ms). A full array is
// replaced by one twice its size, and the old one's entries move over a few
// at a time: every insert migrates kMigrateStep old positions (plus the rest
// of the run it is in), which finishes long before the new array can fill
// up. Meanwhile lookups probe both arrays. Invariants while migrating:
//  - every entry is in exactly one array; inserts go to the new one;
//  - the old array's positions below `cursor_` are empty, and the cursor
//    only stops at an empty position or at a run's start, so each run is
//    moved whole and the old array's remaining probe chains stay unbroken
//    (a run wrapping past the end is cut at position 0, which is migrated
//    first: its entries all have their home in the part before the end).
// Arrays of kMapBytes and more come from mmap (zero pages on first touch,
// no huge pages: a huge-page fault zeroes 2 MiB at once) and go back to the
// system kUnmapBytes per insert after the migration (munmap of a whole array
// costs time in proportion to its size); smaller ones from calloc. A mapped
// array is allocated early, at kPrefaultPercent of the current one's size,
// and its pages are touched one per insert until the growth: migrating into
// untouched pages cost a page fault per entry moved (~20-30 us per insert).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace flowpath {

template <typename Slot, unsigned LoadPercent>
class LinearProbeTable {
    static_assert(LoadPercent > 0 && LoadPercent < 100);
    static_assert(std::is_trivially_copyable_v<Slot>);

public:
    static constexpr size_t npos = static_cast<size_t>(-1);
    /// Old positions migrated per insert (at least): the old array holds at
    /// most LoadPercent% of its size in entries, and at least that many
    /// inserts come before the new array is full, so any step >= 100 /
    /// LoadPercent finishes in time.
    static constexpr size_t kMigrateStep = 8;
    static_assert(kMigrateStep * LoadPercent >= 100);
    static constexpr size_t kMapBytes = 64 * 1024;
    /// Load at which the next array is allocated and its pages touched. One
    /// page per insert: (LoadPercent - kPrefaultPercent)% of the size in
    /// inserts touch 2 * size * sizeof(Slot) / 4096 pages, enough for slots
    /// of up to 64 bytes.
    static constexpr unsigned kPrefaultPercent = LoadPercent * 4 / 5;
    static constexpr size_t kTouchBytes = 4096;
    static constexpr size_t kUnmapBytes = 16 * 1024;

    LinearProbeTable() = default;
    ~LinearProbeTable() {
        release(cur_);
        release(old_);
        release(next_);
        for (Retired& r : retired_) unmap(r.at, r.bytes);
    }
    LinearProbeTable(LinearProbeTable&& other) noexcept { swap(other); }
    LinearProbeTable& operator=(LinearProbeTable&& other) noexcept {
        if (this != &other) {
            LinearProbeTable gone(std::move(*this));
            swap(other);
        }
        return *this;
    }
    LinearProbeTable(const LinearProbeTable&) = delete;
    LinearProbeTable& operator=(const LinearProbeTable&) = delete;

    size_t size() const { return used_; }
    /// Slots held: the current array, the one being migrated out of and
    /// the next one being prepared.
    size_t capacity() const { return cur_.size + old_.size + next_.size; }
    bool migrating() const { return old_.slots != nullptr; }

    /// The first slot in `hash`'s probe chain for which match(slot) holds,
    /// or npos. Allocation-free. While migrating, indexes past the new
    /// array's size name old-array slots.
    template <typename Match>
    size_t find(uint32_t hash, Match&& match) const {
        if (cur_.size == 0) return npos;
        for (size_t i = hash & cur_.mask; !cur_.slots[i].empty(); i = (i + 1) & cur_.mask) {
            if (match(cur_.slots[i])) return i;
        }
        if (!migrating()) return npos;
        // An entry still in the old array has its home at or past the cursor.
        for (size_t i = hash & old_.mask; i >= cursor_ && i < old_.size && !old_.slots[i].empty(); ++i) {
            if (match(old_.slots[i])) return cur_.size + i;
        }
        return npos;
    }

    Slot& at(size_t index) { return index < cur_.size ? cur_.slots[index] : old_.slots[index - cur_.size]; }
    const Slot& at(size_t index) const {
        return index < cur_.size ? cur_.slots[index] : old_.slots[index - cur_.size];
    }

    /// Brings the first slot of `hash`'s chain into the cache (non-empty table).
    void prefetch(uint32_t hash) const {
        __builtin_prefetch(&cur_.slots[hash & cur_.mask]);
        if (migrating()) __builtin_prefetch(&old_.slots[hash & old_.mask]);
    }

    /// Adds `slot` at the end of its hash's chain in the current array.
    /// Growing starts a new array; no call moves more than a few runs.
    void insert(const Slot& slot) {
        if (migrating()) migrate_step();
        if (!retired_.empty()) unmap_some();
        if (next_.slots) {
            touch_some();
        } else if (cur_.size != 0 && (used_ + 1) * 100 > cur_.size * kPrefaultPercent) {
            next_ = make_array(cur_.size * 2);
            touched_ = next_.bytes() >= kMapBytes ? 0 : next_.bytes();  // calloc memory is written
        }
        if ((used_ + 1) * 100 > cur_.size * LoadPercent) grow();
        place(cur_, slot);
        ++used_;
    }

    /// Empties slot `hole` (an index find() returned) and pulls later slots
    /// of the run back, so that every chain stays unbroken.
    void erase_at(size_t hole) {
        --used_;
        if (hole < cur_.size) {
            erase_in(cur_, hole, 0);
        } else {
            erase_in(old_, hole - cur_.size, cursor_);
        }
    }

private:
    struct Array {
        Slot* slots = nullptr;
        size_t size = 0;
        size_t mask = 0;
        size_t bytes() const { return size * sizeof(Slot); }
    };
    struct Retired {
        unsigned char* at;
        size_t bytes;
    };

    static void place(Array& a, const Slot& slot) {
        size_t i = slot.hash & a.mask;
        while (!a.slots[i].empty()) i = (i + 1) & a.mask;
        a.slots[i] = slot;
    }

    /// Backward-shift deletion in `a`. In the old array, positions below
    /// `floor` count as empty: a run there was migrated, and the position
    /// past the end is position 0, the first one migrated.
    static void erase_in(Array& a, size_t hole, size_t floor) {
        a.slots[hole] = Slot{};
        for (size_t j = (hole + 1) & a.mask; j >= floor && !a.slots[j].empty(); j = (j + 1) & a.mask) {
            const size_t home = a.slots[j].hash & a.mask;
            // A slot stays when its home lies cyclically in (hole, j].
            const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
            if (stays) continue;
            a.slots[hole] = a.slots[j];
            a.slots[j] = Slot{};
            hole = j;
        }
    }

    void grow() {
        // Here rather than at class scope: a Slot nested in the class that
        // uses the table is complete only after that class.
        static_assert(std::bit_cast<Slot>(std::array<unsigned char, sizeof(Slot)>{}).empty(),
                      "an all-zero Slot must be empty");
        if (migrating()) finish_migration();  // not reached: see kMigrateStep
        Array bigger = next_.slots ? next_ : make_array(cur_.size == 0 ? 8 : cur_.size * 2);
        next_ = Array{};
        if (cur_.size != 0) {
            old_ = cur_;
            cursor_ = 0;
        }
        cur_ = bigger;
        if (migrating()) migrate_step();
    }

    /// Moves kMigrateStep old positions (and the rest of a run begun) over.
    void migrate_step() {
        const size_t stop = std::min(old_.size, cursor_ + kMigrateStep);
        while (cursor_ < stop) {
            if (old_.slots[cursor_].empty()) {
                ++cursor_;
                continue;
            }
            // The whole run: its later entries may have their home in it.
            while (cursor_ < old_.size && !old_.slots[cursor_].empty()) {
                place(cur_, old_.slots[cursor_]);
                old_.slots[cursor_] = Slot{};
                ++cursor_;
            }
        }
        if (cursor_ == old_.size) {
            retire(old_);
            old_ = Array{};
            cursor_ = 0;
        }
    }

    void finish_migration() {
        while (migrating()) migrate_step();
    }

    static Array make_array(size_t size) {
        Array a;
        a.size = size;
        a.mask = size - 1;
        a.slots = allocate(a.bytes());
        return a;
    }

    /// Writes one byte of the next array's next page (a zero over a zero:
    /// only the page fault matters).
    void touch_some() {
        if (touched_ >= next_.bytes()) return;
        reinterpret_cast<volatile unsigned char*>(next_.slots)[touched_] = 0;
        touched_ += kTouchBytes;
    }

    static Slot* allocate(size_t bytes) {
        void* p;
        if (bytes >= kMapBytes) {
            p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw std::bad_alloc();
            madvise(p, bytes, MADV_NOHUGEPAGE);
        } else {
            p = std::calloc(1, bytes);
            if (!p) throw std::bad_alloc();
        }
        return static_cast<Slot*>(p);
    }

    static void unmap(unsigned char* at, size_t bytes) { munmap(at, bytes); }

    static void release(Array& a) {
        if (!a.slots) return;
        if (a.bytes() >= kMapBytes) {
            unmap(reinterpret_cast<unsigned char*>(a.slots), a.bytes());
        } else {
            std::free(a.slots);
        }
        a = Array{};
    }

    /// A migrated-out array: small ones are freed now, mapped ones a piece
    /// per insert.
    void retire(Array& a) {
        if (a.bytes() >= kMapBytes) {
            retired_.push_back({reinterpret_cast<unsigned char*>(a.slots), a.bytes()});
            a = Array{};
        } else {
            release(a);
        }
    }

    void unmap_some() {
        Retired& r = retired_.back();
        const size_t piece = std::min(r.bytes, kUnmapBytes);
        unmap(r.at + r.bytes - piece, piece);
        r.bytes -= piece;
        if (r.bytes == 0) retired_.pop_back();
    }

    void swap(LinearProbeTable& other) noexcept {
        std::swap(cur_, other.cur_);
        std::swap(old_, other.old_);
        std::swap(next_, other.next_);
        std::swap(touched_, other.touched_);
        std::swap(cursor_, other.cursor_);
        std::swap(used_, other.used_);
        std::swap(retired_, other.retired_);
    }

    Array cur_;
    Array old_;            // the array being migrated out of, or none
    Array next_;           // the array the next growth will use, or none
    size_t touched_ = 0;   // bytes of next_ whose pages were touched
    size_t cursor_ = 0;    // old positions below it are migrated (empty)
    size_t used_ = 0;      // entries in both arrays
    std::vector<Retired> retired_;  // mapped arrays still being returned
};

}  // namespace flowpath
