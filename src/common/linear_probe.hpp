// An open-addressing array with linear probing, shared by the classifier's
// stage sets and the megaflow cache's subtable indexes.
//
// Slots are small trivially copyable records with a `uint32_t hash` member
// and an `empty()` test (a value-initialised Slot is empty). The array's size
// is a power of two and stays at most LoadPercent full; deletion shifts later
// slots back into the hole (no tombstones), so probe chains stay as short
// under churn as after a rebuild. Internal to src/: no public header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace flowpath {

template <typename Slot, unsigned LoadPercent>
class LinearProbeTable {
    static_assert(LoadPercent > 0 && LoadPercent < 100);

public:
    static constexpr size_t npos = static_cast<size_t>(-1);

    size_t size() const { return used_; }
    size_t capacity() const { return slots_.size(); }

    /// The first slot in `hash`'s probe chain for which match(slot) holds,
    /// or npos. Allocation-free.
    template <typename Match>
    size_t find(uint32_t hash, Match&& match) const {
        if (slots_.empty()) return npos;
        for (size_t i = hash & mask_; !slots_[i].empty(); i = (i + 1) & mask_) {
            if (match(slots_[i])) return i;
        }
        return npos;
    }

    Slot& at(size_t index) { return slots_[index]; }
    const Slot& at(size_t index) const { return slots_[index]; }

    /// Brings the first slot of `hash`'s chain into the cache (non-empty table).
    void prefetch(uint32_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

    /// Adds `slot` at the end of its hash's chain, growing first when full.
    void insert(const Slot& slot) {
        if ((used_ + 1) * 100 > slots_.size() * LoadPercent) grow();
        place(slot);
        ++used_;
    }

    /// Empties slot `hole` (an index find() returned) and pulls later slots
    /// of the run back, so that every chain stays unbroken.
    void erase_at(size_t hole) {
        slots_[hole] = Slot{};
        --used_;
        for (size_t j = (hole + 1) & mask_; !slots_[j].empty(); j = (j + 1) & mask_) {
            const size_t home = slots_[j].hash & mask_;
            // A slot stays when its home lies cyclically in (hole, j].
            const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
            if (stays) continue;
            slots_[hole] = slots_[j];
            slots_[j] = Slot{};
            hole = j;
        }
    }

private:
    void place(const Slot& slot) {
        size_t i = slot.hash & mask_;
        while (!slots_[i].empty()) i = (i + 1) & mask_;
        slots_[i] = slot;
    }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(old.empty() ? 8 : old.size() * 2, Slot{});
        mask_ = slots_.size() - 1;
        for (const Slot& slot : old) {
            if (!slot.empty()) place(slot);
        }
    }

    std::vector<Slot> slots_;
    size_t mask_ = 0;
    size_t used_ = 0;
};

}  // namespace flowpath
