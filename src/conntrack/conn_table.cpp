// The connection table: keys, slots, free clusters, the seqlock protocol and
// the index. Design and invariants: docs/conntrack.md.
#include "conn_table.hpp"

#include <nmmintrin.h>
#include <rte_pause.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include "flowpath/error.hpp"

namespace flowpath {

namespace {

// Both constructors: addresses of `length` bytes (4 or 16) into the key's
// 16-byte fields, the rest left zero.
ConnKey make_key(AddressFamily family, const void* src, const void* dst, size_t length, uint16_t zone,
                 uint8_t nw_proto, uint16_t src_port, uint16_t dst_port) {
    ConnKey key;
    std::memcpy(key.src, src, length);
    std::memcpy(key.dst, dst, length);
    key.src_port = src_port;
    key.dst_port = dst_port;
    key.zone = zone;
    key.nw_proto = nw_proto;
    key.family_query = static_cast<uint8_t>(family);
    return key;
}

// A key written or read as 64-bit words, so that a slot's keys can be read
// by another thread while the owner rewrites them (the seqlock discards such
// a read; the words keep it free of data races).
constexpr unsigned kKeyWords = sizeof(ConnKey) / sizeof(uint64_t);
static_assert(sizeof(ConnKey) % sizeof(uint64_t) == 0 && offsetof(Connection, key) == 0);

void store_key(ConnKey& to, const ConnKey& from) {
    uint64_t words[kKeyWords];
    std::memcpy(words, &from, sizeof(words));
    auto* out = reinterpret_cast<uint64_t*>(&to);
    for (unsigned w = 0; w < kKeyWords; ++w) store_shared(out[w], words[w]);
}

void load_key(ConnKey& to, const ConnKey& from) {
    uint64_t words[kKeyWords];
    const auto* in = reinterpret_cast<const uint64_t*>(&from);
    for (unsigned w = 0; w < kKeyWords; ++w) words[w] = load_shared(in[w]);
    std::memcpy(&to, words, sizeof(words));
}

}  // namespace

// ---- Keys ----

ConnKey ConnKey::ipv4(uint16_t zone, uint8_t nw_proto, uint32_t src, uint32_t dst, uint16_t src_port,
                      uint16_t dst_port) {
    return make_key(AddressFamily::ipv4, &src, &dst, sizeof(src), zone, nw_proto, src_port, dst_port);
}

ConnKey ConnKey::ipv6(uint16_t zone, uint8_t nw_proto, const uint8_t (&src)[16], const uint8_t (&dst)[16],
                      uint16_t src_port, uint16_t dst_port) {
    return make_key(AddressFamily::ipv6, src, dst, sizeof(src), zone, nw_proto, src_port, dst_port);
}

namespace {
// Wire type of each IcmpQuery (index 0 unused).
constexpr uint8_t kQueryTypes[] = {0, 8, 0, 13, 14, 15, 16, 128, 129};
}  // namespace

uint8_t icmp_query_type(uint8_t query) { return query < std::size(kQueryTypes) ? kQueryTypes[query] : 0; }

uint8_t icmp_query_of(bool v6, uint8_t type) {
    const uint8_t first = v6 ? kIcmp6EchoRequest : kIcmpEchoRequest;
    const uint8_t last = v6 ? kIcmp6EchoReply : kIcmpInfoReply;
    for (uint8_t q = first; q <= last; ++q) {
        if (kQueryTypes[q] == type) return q;
    }
    return kIcmpNone;
}

// ---- Construction ----

uint32_t ConnTable::check_capacity(uint32_t capacity) {
    if (capacity == 0 || capacity > kMaxCapacity) {
        throw Error("connection table capacity " + std::to_string(capacity) + " is outside 1.." +
                    std::to_string(kMaxCapacity));
    }
    return capacity;
}

ConnTable::ConnTable(uint32_t capacity, int /*socket*/)
    : capacity_(check_capacity(capacity)),
      // A random seed per table: keys an outsider chooses cannot be aimed at
      // one bucket.
      seed_(std::random_device{}()),
      // Two keys per slot. The index's pages, as the slots', are touched
      // first by the owner (its NUMA node) and only as used.
      index_(2 * capacity_),
      slots_(capacity_) {
    // The slots start as zero pages (free slots), touched in order as the
    // lowest-free-slot policy takes them.
    free_bits_.assign((capacity_ + 63) / 64, 0);
    free_words_.assign((free_bits_.size() + 63) / 64, 0);

    // One free cluster: every slot (its last slot names slot 0 already).
    for (uint32_t i = 0; i < capacity_; ++i) set_free_bit(i, true);
    slots_[0].cluster.length = capacity_;
    slots_[0].cluster.next = kNil;
    slots_[0].cluster.prev = kNil;
    free_head_ = 0;
}

ConnTable::~ConnTable() = default;

// ---- Lookups (owner) ----

uint32_t ConnTable::hash(const ConnKey& key) const {
    // CRC32-C over the key's five words: a few cycles (SSE 4.2, the
    // project's baseline). 0 marks an empty index entry: never a hash.
    uint64_t words[kKeyWords];
    std::memcpy(words, &key, sizeof(words));
    uint64_t h = seed_;
    for (unsigned w = 0; w < kKeyWords; ++w) h = _mm_crc32_u64(h, words[w]);
    const auto hash = static_cast<uint32_t>(h);
    return hash ? hash : 1;
}

bool ConnTable::key_is(ConnRef ref, const ConnKey& key) const {
    // Five words compared at once, no early exit: a hash match is almost
    // always the key.
    uint64_t a[kKeyWords], b[kKeyWords];
    std::memcpy(a, &slots_[ref.index()].key[ref.side()], sizeof(a));
    std::memcpy(b, &key, sizeof(b));
    uint64_t diff = 0;
    for (unsigned w = 0; w < kKeyWords; ++w) diff |= a[w] ^ b[w];
    return diff == 0;
}

ConnRef ConnTable::lookup(const ConnKey& key, uint32_t hash) const {
    const uint32_t ref = index_.find(hash, [&](uint32_t r) { return key_is(ConnRef::from_raw(r), key); });
    return ConnRef::from_raw(ref);
}

void ConnTable::lookup_burst(const ConnKey* const* keys, const uint32_t* hashes, unsigned count,
                             ConnRef* refs) const {
    while (count > 0) {
        const unsigned n = std::min(count, kMaxConnBurst);
        // The buckets, then the slots their first hash match names, then
        // the keys: each step's misses overlap instead of following one
        // another.
        for (unsigned i = 0; i < n; ++i) index_.prefetch(hashes[i]);
        uint32_t candidates[kMaxConnBurst];
        for (unsigned i = 0; i < n; ++i) {
            candidates[i] = index_.candidate(hashes[i]);
            if (candidates[i] == ConnIndex::kNoRef) continue;
            const auto* line = reinterpret_cast<const char*>(&slots_[ConnRef::from_raw(candidates[i]).index()]);
            __builtin_prefetch(line);
            __builtin_prefetch(line + 64);
        }
        for (unsigned i = 0; i < n; ++i) {
            const ConnRef candidate = ConnRef::from_raw(candidates[i]);
            refs[i] = candidate && key_is(candidate, *keys[i]) ? candidate : lookup(*keys[i], hashes[i]);
        }
        keys += n;
        hashes += n;
        refs += n;
        count -= n;
    }
}

// ---- Insert and remove (owner) ----

// The seqlock: odd while the slot's identity is rewritten. Readers load seq
// with acquire before and after their reads (snapshot).
void ConnTable::begin_write(Connection& c) {
    store_shared(c.seq, c.seq + 1);
    std::atomic_thread_fence(std::memory_order_release);
}

void ConnTable::end_write(Connection& c) { store_shared(c.seq, c.seq + 1, std::memory_order_release); }

InsertResult ConnTable::insert(const ConnKey& forward, uint32_t forward_hash, const ConnKey& reply,
                               const ConnInit& init, bool forward_absent) {
    if (!forward_absent) {
        if (const ConnRef found = lookup(forward, forward_hash)) return {InsertStatus::exists, found};
    }
    // A flow from an address and port to themselves has one key for both
    // directions: it gets one index entry, side 0.
    const bool one_key = forward == reply;
    const uint32_t reply_hash = one_key ? forward_hash : hash(reply);
    if (!one_key) {
        if (const ConnRef found = lookup(reply, reply_hash)) return {InsertStatus::exists, found};
    }
    if (free_head_ == kNil) return {InsertStatus::full, {}};

    const uint32_t i = take_lowest_free();
    Connection& c = slots_[i];
    begin_write(c);
    store_key(c.key[0], forward);
    store_key(c.key[1], reply);
    store_shared(c.expiry, init.expiry);
    store_shared(c.mark, uint32_t{0});
    store_shared(c.timeout_class, init.timeout_class);
    store_shared(c.proto_state, init.proto_state);
    store_shared(c.killed, uint8_t{0});
    store_shared(c.status, uint8_t{kSlotLive});
    c.one_key = one_key;
    c.tcp[0] = init.tcp[0];
    c.tcp[1] = init.tcp[1];
    end_write(c);
    if (i >= high_water_) store_shared(high_water_, i + 1, std::memory_order_release);

    const bool added = index_.insert(forward_hash, ConnRef(i, 0).value);
    if (added && (one_key || index_.insert(reply_hash, ConnRef(i, 1).value))) {
        ++size_;
        return {InsertStatus::inserted, ConnRef(i, 0)};
    }
    // Cannot happen while the index has room for 2 * capacity keys; if it
    // does, undo: the slot is free again.
    if (added) index_.erase(forward_hash, ConnRef(i, 0).value);
    begin_write(c);
    store_shared(c.status, uint8_t{kSlotFree});
    end_write(c);
    free_slot(i);
    return {InsertStatus::full, {}};
}

void ConnTable::remove(uint32_t index) {
    Connection& c = slots_[index];
    if (c.status != kSlotLive) return;
    index_.erase(hash(c.key[0]), ConnRef(index, 0).value);
    if (!c.one_key) index_.erase(hash(c.key[1]), ConnRef(index, 1).value);
    begin_write(c);
    store_shared(c.status, uint8_t{kSlotFree});
    end_write(c);
    free_slot(index);
    --size_;
}

// ---- Readers (any thread) ----

bool ConnTable::snapshot(uint32_t index, ConnSnapshot& out) const {
    const Connection& c = slots_[index];
    for (int attempt = 0; attempt < 64; ++attempt) {
        const uint32_t before = load_shared(c.seq, std::memory_order_acquire);
        if (before & 1) {
            rte_pause();
            continue;
        }
        if (load_shared(c.status) != kSlotLive) return false;
        load_key(out.key[0], c.key[0]);
        load_key(out.key[1], c.key[1]);
        out.expiry = load_shared(c.expiry);
        out.mark = load_shared(c.mark);
        out.timeout_class = load_shared(c.timeout_class);
        out.proto_state = load_shared(c.proto_state);
        out.killed = load_shared(c.killed) != 0;
        out.seq = before;
        std::atomic_thread_fence(std::memory_order_acquire);
        if (load_shared(c.seq) == before) return true;
    }
    return false;  // rewritten under us every time: as good as gone
}

// ---- Free clusters ----

void ConnTable::set_free_bit(uint32_t index, bool free) {
    const uint32_t word = index >> 6;
    const uint64_t bit = uint64_t{1} << (index & 63);
    if (free) {
        free_bits_[word] |= bit;
        free_words_[word >> 6] |= uint64_t{1} << (word & 63);
    } else {
        free_bits_[word] &= ~bit;
        if (free_bits_[word] == 0) free_words_[word >> 6] &= ~(uint64_t{1} << (word & 63));
    }
}

// The highest free slot below `index`, or kNil: the last slot of the cluster
// that precedes `index`.
uint32_t ConnTable::last_free_before(uint32_t index) const {
    if (index == 0) return kNil;
    const uint32_t below = index - 1;
    size_t word = below >> 6;
    const uint64_t in_word = free_bits_[word] & (~uint64_t{0} >> (63 - (below & 63)));
    if (in_word) return static_cast<uint32_t>(word * 64 + 63 - __builtin_clzll(in_word));
    if (word == 0) return kNil;
    // A summary bit per word of free_bits_ finds the nearest nonzero word.
    --word;
    size_t summary = word >> 6;
    uint64_t words = free_words_[summary] & (~uint64_t{0} >> (63 - (word & 63)));
    for (;;) {
        if (words) {
            const size_t w = summary * 64 + 63 - __builtin_clzll(words);
            return static_cast<uint32_t>(w * 64 + 63 - __builtin_clzll(free_bits_[w]));
        }
        if (summary == 0) return kNil;
        words = free_words_[--summary];
    }
}

uint32_t ConnTable::take_lowest_free() {
    const uint32_t i = free_head_;
    FreeCluster& head = slots_[i].cluster;
    const uint32_t length = head.length;
    if (length > 1) {
        // The cluster now starts one slot later.
        const uint32_t next_first = i + 1;
        FreeCluster& rest = slots_[next_first].cluster;
        rest.length = length - 1;
        rest.next = head.next;
        rest.prev = kNil;
        if (rest.next != kNil) slots_[rest.next].cluster.prev = next_first;
        slots_[i + length - 1].cluster.first = next_first;
        free_head_ = next_first;
    } else {
        free_head_ = head.next;
        if (free_head_ != kNil) slots_[free_head_].cluster.prev = kNil;
    }
    set_free_bit(i, false);
    return i;
}

void ConnTable::free_slot(uint32_t index) {
    FreeCluster& c = slots_[index].cluster;
    const bool left_free = index > 0 && slots_[index - 1].status == kSlotFree;
    const bool right_free = index + 1 < capacity_ && slots_[index + 1].status == kSlotFree;

    if (left_free && right_free) {
        // Joins the cluster on its left and the one on its right (adjacent in
        // the list: nothing free lies between them).
        const uint32_t left_first = slots_[index - 1].cluster.first;
        FreeCluster& left = slots_[left_first].cluster;
        const FreeCluster& right = slots_[index + 1].cluster;
        const uint32_t right_last = index + right.length;
        left.length += 1 + right.length;
        left.next = right.next;
        if (left.next != kNil) slots_[left.next].cluster.prev = left_first;
        slots_[right_last].cluster.first = left_first;
    } else if (left_free) {
        // Extends the cluster on its left.
        const uint32_t left_first = slots_[index - 1].cluster.first;
        slots_[left_first].cluster.length += 1;
        c.first = left_first;
    } else if (right_free) {
        // Becomes the first slot of the cluster on its right.
        const FreeCluster right = slots_[index + 1].cluster;
        c.length = right.length + 1;
        c.next = right.next;
        c.prev = right.prev;
        if (c.prev != kNil) slots_[c.prev].cluster.next = index;
        else free_head_ = index;
        if (c.next != kNil) slots_[c.next].cluster.prev = index;
        slots_[index + c.length - 1].cluster.first = index;
    } else {
        // A cluster of its own, linked after the cluster that precedes it.
        c.length = 1;
        c.first = index;
        const uint32_t before = last_free_before(index);
        if (before == kNil) {
            c.prev = kNil;
            c.next = free_head_;
            free_head_ = index;
        } else {
            const uint32_t prev_first = slots_[before].cluster.first;
            c.prev = prev_first;
            c.next = slots_[prev_first].cluster.next;
            slots_[prev_first].cluster.next = index;
        }
        if (c.next != kNil) slots_[c.next].cluster.prev = index;
    }
    set_free_bit(index, true);
}

std::vector<std::pair<uint32_t, uint32_t>> ConnTable::free_clusters() const {
    std::vector<std::pair<uint32_t, uint32_t>> clusters;
    for (uint32_t i = free_head_; i != kNil && clusters.size() <= capacity_; i = slots_[i].cluster.next) {
        clusters.emplace_back(i, slots_[i].cluster.length);
    }
    return clusters;
}

// ---- Memory ----

uint64_t ConnTable::memory_bytes() const {
    return uint64_t{capacity_} * sizeof(Connection) + free_bits_.size() * sizeof(uint64_t) +
           free_words_.size() * sizeof(uint64_t) + index_.bytes() + sizeof(*this);
}

}  // namespace flowpath
