// A packet's way through the worker's pipeline passes, the DPDK-free parts:
// what it carries from one pass to the next and through the slow path
// (PacketMeta), the metadata words of a pass's key, and the ordering state
// that decides which packets wait for which upcalls (UpcallOrder, HeldQueue).
//
// A pass is one extract -> classify -> execute of a packet. The first pass
// starts from the frame as received (recirc_id 0, no ct state); a datapath
// kRecirc (after a kCt) sends the packet, or a copy, through another pass
// whose key carries the recirculation id and the ct state, zone and mark the
// kCt left (docs/architecture.md, the packet's path).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flowpath/conntrack.hpp"
#include "flowpath/flow_key.hpp"
#include "flowpath/miniflow.hpp"

namespace flowpath {

/// Recirculations one packet may go through; the next one drops it (as
/// Open vSwitch's userspace datapath, MAX_RECIRC_DEPTH).
inline constexpr uint8_t kMaxRecircDepth = 6;

/// What a packet carries besides its bytes, from one pass to the next and
/// through the slow path and back (an Upcall holds one, the slow path's
/// answer returns it). Trivially copyable, 36 bytes.
struct PacketMeta {
    CtMeta ct;               ///< state, zone, mark and connection its last ct left
    uint32_t in_port = 0;    ///< OpenFlow port it came in on
    uint32_t recirc_id = 0;  ///< of the pass it is in: 0 for the first
    uint32_t stamp = 0;      ///< its place in its worker's arrival order (wraps)
    uint16_t dl_type = 0;    ///< its key's dl_type, nw_proto and nw_frag, which
    uint8_t nw_proto = 0;    ///< the ct action reads and no action changes
    uint8_t nw_frag = 0;
    uint8_t depth = 0;       ///< recirculations so far
    /// A PACKET_OUT's packet run through the tables: its PACKET_INs have
    /// reason ACTION, even from a table-miss rule (Open vSwitch's
    /// OFPR_PACKET_OUT, which OpenFlow 1.3 sends as ACTION).
    uint8_t packet_out = 0;
};
static_assert(sizeof(PacketMeta) <= 36);

/// Whether arrival stamp `a` comes before `b` (stamps wrap; the packets a
/// worker compares are never 2^31 arrivals apart).
constexpr bool stamp_before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

/// Sets word `index` of `flow` to `value`, inserting it (or removing it when
/// zero) so that the words stay in increasing order.
inline void miniflow_set_word(Miniflow& flow, unsigned index, uint64_t value) {
    const uint64_t bit = uint64_t{1} << index;
    const unsigned at = static_cast<unsigned>(std::popcount(flow.map & (bit - 1)));
    const unsigned size = flow.size();
    if (flow.map & bit) {
        if (value) {
            flow.words[at] = value;
            return;
        }
        for (unsigned i = at; i + 1 < size; ++i) flow.words[i] = flow.words[i + 1];
        flow.map &= ~bit;
        return;
    }
    if (!value) return;
    for (unsigned i = size; i > at; --i) flow.words[i] = flow.words[i - 1];
    flow.words[at] = value;
    flow.map |= bit;
}

/// Makes a miniflow extracted from a packet's bytes (in_port set, metadata
/// zero) the key of the pass `meta` describes: ct_mark, ct_zone, ct_state
/// and recirc_id. A first pass's key (all zero) stays exactly as extracted.
inline void set_pass_metadata(Miniflow& flow, const PacketMeta& meta) {
    static_assert(offsetof(FlowKey, in_port) == 0 && offsetof(FlowKey, ct_mark) == 4);
    static_assert(offsetof(FlowKey, ct_zone) == 8 && offsetof(FlowKey, ct_state) == 10 &&
                  offsetof(FlowKey, recirc_id) == 12);
    miniflow_set_word(flow, 0, meta.in_port | uint64_t{meta.ct.mark} << 32);
    miniflow_set_word(flow, 1, meta.ct.zone | uint64_t{meta.ct.state} << 16 | uint64_t{meta.recirc_id} << 32);
}

/// Whether a recirculated pass may take megaflow mask `next` from the
/// megaflow (mask `previous`) its packet left: `next` examines no bit that
/// `previous` leaves out, except the pass metadata (ct_mark, ct_zone,
/// ct_state, recirc_id: the same for the packets a RecircShortcuts entry
/// serves). Then, a packet that matched the previous megaflow and comes back
/// with its bytes untouched matches any megaflow of mask `next` that another
/// such packet, with the same metadata, matched: they agree on every bit
/// `next` examines.
inline bool recirc_mask_covered(const FlowMask& next, const FlowMask& previous) {
    static_assert(offsetof(FlowKey, in_port) == 0 && offsetof(FlowKey, ct_mark) == 4 &&
                  offsetof(FlowKey, recirc_id) == 12);
    const uint64_t* n = flow_words(next);
    const uint64_t* p = flow_words(previous);
    if ((uint64_t{next.in_port} & ~uint64_t{previous.in_port}) != 0) return false;  // word 0's low half
    for (unsigned w = 2; w < kFlowWords; ++w) {  // word 1: ct_zone, ct_state, recirc_id
        if (n[w] & ~p[w]) return false;
    }
    return true;
}

/// The recirculation shortcut (docs/architecture.md, the packet's path):
/// which megaflow a recirculated pass finds, keyed by the megaflow the
/// packet left (slot and generation) and the metadata it comes back with
/// (ct_state, ct_zone, ct_mark, recirc_id). Valid only for packets whose
/// bytes no action of the previous megaflow touched, and only when the
/// found megaflow's mask is covered (recirc_mask_covered): such a packet
/// then needs neither its key extracted nor the cache hierarchy searched.
/// An entry of an uncovered pair is kept too (`usable` false), so that the
/// masks are compared once per pair, not per packet. Direct-mapped: a
/// pair learned where another was replaces it. Owned by one worker; the
/// caller checks that the answer is still live (MegaflowCache::valid).
class RecircShortcuts {
public:
    static constexpr uint32_t kEntries = 512;
    static constexpr uint32_t kNone = UINT32_MAX;

    /// One pair's answer.
    struct alignas(32) Entry {
        uint32_t previous = kNone;  ///< slot of the megaflow left (kNone: empty)
        uint32_t previous_generation = 0;
        uint32_t mark = 0;
        uint32_t recirc_id = 0;
        uint16_t zone = 0;
        uint8_t state = 0;
        bool usable = false;  ///< the answer's mask is covered: use it
        uint32_t slot = kNone;  ///< the megaflow the pass found
        uint32_t generation = 0;
    };
    static_assert(sizeof(Entry) == 32);

    /// The entry for (previous, generation, meta), or null.
    const Entry* find(uint32_t previous, uint32_t generation, const PacketMeta& meta) const {
        const Entry& e = entries_[index(previous, meta)];
        return same_key(e, previous, generation, meta) ? &e : nullptr;
    }

    /// Records that the pass after megaflow (previous, previous_generation)
    /// found megaflow (slot, generation) for a packet with `meta`.
    void learn(uint32_t previous, uint32_t previous_generation, const PacketMeta& meta, uint32_t slot,
               uint32_t generation, bool usable) {
        Entry& e = entries_[index(previous, meta)];
        e.previous = previous;
        e.previous_generation = previous_generation;
        e.mark = meta.ct.mark;
        e.recirc_id = meta.recirc_id;
        e.zone = meta.ct.zone;
        e.state = meta.ct.state;
        e.usable = usable;
        e.slot = slot;
        e.generation = generation;
    }

    void clear() {
        for (Entry& e : entries_) e = Entry{};
    }

private:
    static uint32_t index(uint32_t previous, const PacketMeta& meta) {
        uint64_t h = (uint64_t{previous} << 32 | meta.recirc_id) * 0x9e3779b97f4a7c15ull;
        h ^= (uint64_t{meta.ct.mark} << 32 | uint64_t{meta.ct.zone} << 8 | meta.ct.state) * 0xc2b2ae3d27d4eb4full;
        return static_cast<uint32_t>(h >> 32) & (kEntries - 1);
    }
    static bool same_key(const Entry& e, uint32_t previous, uint32_t generation, const PacketMeta& meta) {
        return e.previous == previous && e.previous_generation == generation && e.state == meta.ct.state &&
               e.zone == meta.ct.zone && e.mark == meta.ct.mark && e.recirc_id == meta.recirc_id;
    }

    Entry entries_[kEntries];
};
static_assert((RecircShortcuts::kEntries & (RecircShortcuts::kEntries - 1)) == 0);

/// The most packets one pass groups (the worker's burst).
inline constexpr unsigned kMaxPassGroups = 32;

/// One pass's megaflow groups, as dispatch forms them in arrival order: in a
/// first pass, one group per megaflow, in the order of their first packets
/// (Open vSwitch's per-megaflow batches); after a recirculation, runs of
/// consecutive packets of one megaflow (there packets of one connection part
/// into megaflows by their ct fields, and none may overtake an earlier one).
///
/// A first pass finds a megaflow's group from the megaflow's `hint`
/// (Megaflow::dispatch_group, on the line the caches' hit already read),
/// checked against the group's megaflow before use, so a hint left by any
/// earlier pass is harmless: no search over the groups, though every packet
/// may be its own megaflow's (the tss workload). `reference_join` is the
/// plain search the tests hold it to.
class PassGroups {
public:
    /// The group a packet of the megaflow at `slot` joins (a new one when its
    /// megaflow has none it may join); `hint` is the megaflow's, updated.
    /// `runs`: after a recirculation (only the newest group may be joined).
    unsigned join(uint32_t slot, uint8_t& hint, bool runs) {
        unsigned g = runs ? count_ - 1 : hint;  // (wraps when there is no group)
        if (g >= count_ || slot_[g] != slot) {
            g = count_++;
            slot_[g] = slot;
            size_[g] = 0;
            hint = static_cast<uint8_t>(g);
        } else if (g + 1 != count_) {
            in_order_ = false;
        }
        ++size_[g];
        return g;
    }

    /// The same answer by searching the groups (tests).
    unsigned reference_join(uint32_t slot, bool runs) {
        unsigned g = runs && count_ ? count_ - 1 : 0;
        while (g < count_ && slot_[g] != slot) ++g;
        if (g == count_) {
            slot_[count_] = slot;
            size_[count_++] = 0;
        } else if (g + 1 != count_) {
            in_order_ = false;
        }
        ++size_[g];
        return g;
    }

    unsigned count() const { return count_; }
    uint32_t slot(unsigned group) const { return slot_[group]; }
    unsigned size(unsigned group) const { return size_[group]; }
    const uint32_t* slots() const { return slot_; }
    const uint8_t* sizes() const { return size_; }
    /// Whether every packet joined the newest group (or started one): the
    /// groups are then runs of the packets in arrival order.
    bool in_order() const { return in_order_; }

private:
    uint32_t slot_[kMaxPassGroups];
    uint8_t size_[kMaxPassGroups];
    unsigned count_ = 0;
    bool in_order_ = true;
};

/// The upcalls a worker has outstanding, in the order sent (the slow path
/// answers them in that order), and the earliest arrival stamp among them:
/// what tells a packet that must not overtake earlier ones whether it may go.
///
/// The stamps of upcalls are not increasing in send order (a packet that
/// comes back from the slow path and misses again in a later pass upcalls
/// with its old stamp), so the earliest is kept as a sliding-window minimum:
/// a ring of the upcalls whose stamps increase from front to back (an upcall
/// with a later stamp than one sent after it can never be the earliest).
class UpcallOrder {
public:
    /// `capacity` (a power of two) entries of the window: at least the
    /// upcalls that may be outstanding at once.
    explicit UpcallOrder(unsigned capacity) : window_(capacity), mask_(capacity - 1) {}

    /// An upcall of a packet stamped `stamp` was sent.
    void sent(uint32_t stamp) {
        const uint64_t seq = ++sent_;
        while (count_ && !stamp_before(at(count_ - 1).stamp, stamp)) --count_;
        // Full only with more upcalls outstanding than sized for: this one
        // is then forgotten; the earlier ones (the minimum) are kept.
        if (count_ <= mask_) window_[(head_ + count_++) & mask_] = Entry{seq, stamp};
    }

    /// The oldest outstanding upcall was answered.
    void answered() {
        ++answered_;
        while (count_ && at(0).seq <= answered_) {
            head_ = (head_ + 1) & mask_;
            --count_;
        }
    }

    uint64_t sent_count() const { return sent_; }
    uint64_t answered_count() const { return answered_; }
    bool idle() const { return sent_ == answered_; }

    /// Whether a packet that arrived before the one stamped `stamp` is still
    /// at the slow path.
    bool earlier_outstanding(uint32_t stamp) const { return count_ && stamp_before(at(0).stamp, stamp); }
    /// Whether that packet, or one that arrived before it, is still at the
    /// slow path (a copy of it, say).
    bool outstanding_up_to(uint32_t stamp) const { return count_ && !stamp_before(stamp, at(0).stamp); }

private:
    struct Entry {
        uint64_t seq;
        uint32_t stamp;
    };
    const Entry& at(unsigned i) const { return window_[(head_ + i) & mask_]; }

    std::vector<Entry> window_;
    unsigned mask_;
    unsigned head_ = 0, count_ = 0;
    uint64_t sent_ = 0, answered_ = 0;
};

/// A first-in first-out ring of fixed capacity, reserved up front (the hot
/// loop never allocates).
template <class Entry>
class FixedRing {
public:
    explicit FixedRing(unsigned capacity) : ring_(capacity) {}

    unsigned size() const { return count_; }
    bool empty() const { return count_ == 0; }
    bool full() const { return count_ == ring_.size(); }

    /// False when full.
    bool push_back(const Entry& entry) {
        if (full()) return false;
        (*this)[count_++] = entry;
        return true;
    }
    Entry& front() { return (*this)[0]; }
    const Entry& front() const { return (*this)[0]; }
    void pop_front() {
        head_ = (head_ + 1) % capacity();
        --count_;
    }

    Entry& operator[](unsigned i) { return ring_[(head_ + i) % capacity()]; }
    const Entry& operator[](unsigned i) const { return ring_[(head_ + i) % capacity()]; }

protected:
    unsigned capacity() const { return static_cast<unsigned>(ring_.size()); }

    std::vector<Entry> ring_;
    unsigned head_ = 0, count_ = 0;
};

/// Packets held back, kept in arrival order (by `entry.meta.stamp`): a ring
/// of fixed capacity. Most packets arrive last and go to the back; a packet
/// the slow path answered, or one held again in a later pass, is older than
/// some held ones and goes in before them.
template <class Entry>
class HeldQueue : public FixedRing<Entry> {
    using Ring = FixedRing<Entry>;

public:
    using Ring::Ring;

    /// Inserts `entry` behind every entry that arrived no later than it;
    /// false when full. The place is found by binary search and the shorter
    /// side moves: a new arrival goes to the back, an old packet (most
    /// often older than all) near the front, each in a few moves.
    bool insert(const Entry& entry) {
        if (this->full()) return false;
        unsigned& count = this->count_;
        unsigned low = 0, high = count;
        while (low < high) {
            const unsigned mid = (low + high) / 2;
            if (stamp_before(entry.meta.stamp, (*this)[mid].meta.stamp)) {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        const unsigned at = low;
        if (at >= count - at) {
            for (unsigned i = count; i > at; --i) (*this)[i] = (*this)[i - 1];
        } else {
            this->head_ = (this->head_ + this->capacity() - 1) % this->capacity();
            for (unsigned i = 0; i < at; ++i) (*this)[i] = (*this)[i + 1];
        }
        (*this)[at] = entry;
        ++count;
        return true;
    }

    /// Calls `take(entry)` on every entry, front to back; those it returns
    /// true for leave the queue, the others keep their order.
    template <class Take>
    void remove_if(Take&& take) {
        unsigned kept = 0;
        for (unsigned i = 0; i < this->count_; ++i) {
            Entry& entry = (*this)[i];
            if (!take(entry)) (*this)[kept++] = entry;
        }
        this->count_ = kept;
    }
};

}  // namespace flowpath
