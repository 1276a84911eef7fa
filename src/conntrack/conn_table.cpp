// The connection table: slots, free clusters, expiration lists and the
// rte_hash index. Design and invariants: docs/conntrack.md.
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include "flowpath/conntrack.hpp"
#include "flowpath/error.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {

// DPDK names every hash table (and its rings) process-wide; a table needs a
// name no other table has. The counter is the only state shared by tables.
std::atomic<unsigned> next_table_id{0};

// Bytes DPDK's heaps hold now, summed over the sockets.
uint64_t dpdk_heap_bytes() {
    uint64_t total = 0;
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        rte_malloc_socket_stats stats{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) total += stats.heap_allocsz_bytes;
    }
    return total;
}

void* ref_as_data(ConnRef ref) { return reinterpret_cast<void*>(static_cast<uintptr_t>(ref.value)); }
ConnRef data_as_ref(void* data) {
    return ConnRef::from_raw(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data)));
}

}  // namespace

// ---- Keys, names, timeouts ----

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
    key.family = family;
    return key;
}
}  // namespace

ConnKey ConnKey::ipv4(uint16_t zone, uint8_t nw_proto, uint32_t src, uint32_t dst, uint16_t src_port,
                      uint16_t dst_port) {
    return make_key(AddressFamily::ipv4, &src, &dst, sizeof(src), zone, nw_proto, src_port, dst_port);
}

ConnKey ConnKey::ipv6(uint16_t zone, uint8_t nw_proto, const uint8_t (&src)[16], const uint8_t (&dst)[16],
                      uint16_t src_port, uint16_t dst_port) {
    return make_key(AddressFamily::ipv6, src, dst, sizeof(src), zone, nw_proto, src_port, dst_port);
}

const char* timeout_class_name(TimeoutClass timeout_class) {
    switch (timeout_class) {
        case TimeoutClass::tcp_syn_sent: return "tcp_syn_sent";
        case TimeoutClass::tcp_opening: return "tcp_opening";
        case TimeoutClass::tcp_established: return "tcp_established";
        case TimeoutClass::tcp_closing: return "tcp_closing";
        case TimeoutClass::tcp_fin_wait: return "tcp_fin_wait";
        case TimeoutClass::tcp_closed: return "tcp_closed";
        case TimeoutClass::other_first: return "other_first";
        case TimeoutClass::other_multiple: return "other_multiple";
        case TimeoutClass::other_bidir: return "other_bidir";
        case TimeoutClass::icmp_first: return "icmp_first";
        case TimeoutClass::icmp_reply: return "icmp_reply";
        case TimeoutClass::count_: break;
    }
    return "?";
}

const char* conn_state_name(ConnState state) {
    switch (state) {
        case ConnState::other: return "OTHER";
        case ConnState::tcp_syn_sent: return "SYN_SENT";
        case ConnState::tcp_syn_recv: return "SYN_RECV";
        case ConnState::tcp_established: return "ESTABLISHED";
        case ConnState::tcp_close_wait: return "CLOSE_WAIT";
        case ConnState::tcp_fin_wait_1: return "FIN_WAIT_1";
        case ConnState::tcp_closing: return "CLOSING";
        case ConnState::tcp_last_ack: return "LAST_ACK";
        case ConnState::tcp_fin_wait_2: return "FIN_WAIT_2";
        case ConnState::tcp_time_wait: return "TIME_WAIT";
        case ConnState::tcp_closed: return "CLOSED";
    }
    return "?";
}

ConnTimeouts ConnTimeouts::open_vswitch(uint64_t units_per_second) {
    ConnTimeouts t;
    const uint64_t s = units_per_second;
    t[TimeoutClass::tcp_syn_sent] = 30 * s;
    t[TimeoutClass::tcp_opening] = 30 * s;
    t[TimeoutClass::tcp_established] = 24 * 3600 * s;
    t[TimeoutClass::tcp_closing] = 15 * 60 * s;
    t[TimeoutClass::tcp_fin_wait] = 45 * s;
    t[TimeoutClass::tcp_closed] = 30 * s;
    t[TimeoutClass::other_first] = 60 * s;
    t[TimeoutClass::other_multiple] = 60 * s;
    t[TimeoutClass::other_bidir] = 30 * s;
    t[TimeoutClass::icmp_first] = 60 * s;
    t[TimeoutClass::icmp_reply] = 30 * s;
    return t;
}

// ---- Construction ----

void ConnTable::HashDeleter::operator()(rte_hash* index) const { rte_hash_free(index); }

ConnTable::ConnTable(const ConnTableConfig& config)
    : capacity_(config.capacity), timeouts_(config.timeouts), reclaim_(config.reclaim) {
    if (capacity_ == 0 || capacity_ > kMaxCapacity) {
        throw Error("connection table capacity " + std::to_string(capacity_) + " is outside 1.." +
                    std::to_string(kMaxCapacity));
    }
    limit_ = config.limit == 0 ? capacity_ : std::min(config.limit, capacity_);

    // Two keys per slot; a retired slot keeps its keys' storage until it is
    // released, so 2 * capacity entries always suffice. The extendable bucket
    // table makes every one of them usable (no cuckoo insert failure).
    const std::string name = "ct" + std::to_string(next_table_id.fetch_add(1));
    rte_hash_parameters params{};
    params.name = name.c_str();
    params.entries = std::max<uint32_t>(2 * capacity_, 16);
    params.key_len = sizeof(ConnKey);
    params.hash_func = rte_hash_crc;
    // A random seed per table: keys an outsider chooses cannot be aimed at
    // one bucket.
    params.hash_func_init_val = std::random_device{}();
    params.socket_id = config.socket;
    params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    const uint64_t heap_before = dpdk_heap_bytes();
    index_.reset(rte_hash_create(&params));
    if (!index_) {
        throw Error("cannot create the connection index (" + std::to_string(params.entries) +
                    " entries): " + rte_strerror(rte_errno));
    }
    const uint64_t heap_after = dpdk_heap_bytes();
    index_bytes_ = heap_after > heap_before ? heap_after - heap_before : 0;

    slots_ = std::make_unique<Connection[]>(capacity_);
    free_bits_.assign((capacity_ + 63) / 64, 0);
    free_words_.assign((free_bits_.size() + 63) / 64, 0);
    retired_ring_.resize(capacity_);
    list_head_.fill(kNil);
    list_tail_.fill(kNil);

    // One free cluster: every slot.
    for (uint32_t i = 0; i < capacity_; ++i) set_free_bit(i, true);
    Connection& first = slots_[0];
    first.cluster_length_ = capacity_;
    first.cluster_next_ = kNil;
    first.cluster_prev_ = kNil;
    slots_[capacity_ - 1].cluster_first_ = 0;
    free_head_ = 0;
}

ConnTable::~ConnTable() = default;

// ---- Lookups (any thread) ----

uint32_t ConnTable::hash(const ConnKey& key) const { return rte_hash_hash(index_.get(), &key); }

ConnRef ConnTable::lookup(const ConnKey& key) const { return lookup(key, hash(key)); }

ConnRef ConnTable::lookup(const ConnKey& key, uint32_t hash) const {
    void* data = nullptr;
    if (rte_hash_lookup_with_hash_data(index_.get(), &key, hash, &data) < 0) return {};
    return data_as_ref(data);
}

unsigned ConnTable::lookup_burst(const ConnKey* const* keys, const uint32_t* hashes, unsigned count,
                                 ConnRef* refs) const {
    if (count == 0) return 0;
    count = std::min(count, kMaxConnBurst);
    void* data[kMaxConnBurst];
    uint64_t hits = 0;
    // rte_hash takes untyped, non-const arrays that it only reads.
    const void** raw_keys = reinterpret_cast<const void**>(const_cast<const ConnKey**>(keys));
    const int found =
        hashes ? rte_hash_lookup_with_hash_bulk_data(index_.get(), raw_keys, const_cast<hash_sig_t*>(hashes), count,
                                                     &hits, data)
               : rte_hash_lookup_bulk_data(index_.get(), raw_keys, count, &hits, data);
    for (unsigned i = 0; i < count; ++i) refs[i] = (hits >> i & 1) ? data_as_ref(data[i]) : ConnRef{};
    return found < 0 ? 0 : static_cast<unsigned>(found);
}

// ---- Insert, refresh, remove (owner) ----

InsertResult ConnTable::insert(const ConnKey& forward, const ConnKey& reply, ConnState state,
                               TimeoutClass timeout_class, uint64_t now) {
    rte_hash* index = index_.get();
    const uint32_t forward_hash = hash(forward);
    if (const ConnRef found = lookup(forward, forward_hash)) return {InsertStatus::exists, found};
    // A flow from an address and port to themselves has one key for both
    // directions: it gets one index entry, side 0.
    const bool one_key = forward == reply;
    const uint32_t reply_hash = one_key ? forward_hash : hash(reply);
    if (!one_key) {
        if (const ConnRef found = lookup(reply, reply_hash)) return {InsertStatus::exists, found};
    }
    if (size() >= limit_ || free_head_ == kNil) {
        counters_.refused.add(1);
        return {InsertStatus::full, {}};
    }

    // Fill the slot completely before publishing its keys: a reader that
    // finds a key may read the slot at once.
    const uint32_t i = take_lowest_free();
    Connection& c = slots_[i];
    c.key_[0] = forward;
    c.key_[1] = reply;
    c.hash_[0] = forward_hash;
    c.hash_[1] = reply_hash;
    c.one_key_ = one_key;
    c.mark_ = 0;
    c.state_ = state;
    c.status_ = Connection::Status::live;
    c.timeout_class_ = timeout_class;
    c.expiry_ = expiry_for(timeout_class, now);
    list_append(i);

    if (rte_hash_add_key_with_hash_data(index, &c.key_[0], forward_hash, ref_as_data(ConnRef(i, 0))) < 0) {
        // Cannot happen while the index has 2 * capacity entries; if it does,
        // nothing was published, so the slot is free again at once.
        log(LogLevel::warn, "conntrack: index refused a key; connection not created");
        list_unlink(i);
        free_slot(i);
        counters_.refused.add(1);
        return {InsertStatus::full, {}};
    }
    if (!one_key &&
        rte_hash_add_key_with_hash_data(index, &c.key_[1], reply_hash, ref_as_data(ConnRef(i, 1))) < 0) {
        log(LogLevel::warn, "conntrack: index refused a key; connection not created");
        // The forward key was visible: retire the slot like any removal.
        c.one_key_ = true;
        retire(i);
        counters_.refused.add(1);
        release_if_immediate();
        return {InsertStatus::full, {}};
    }

    counters_.connections.add(1);
    counters_.created.add(1);
    return {InsertStatus::inserted, ConnRef(i, 0)};
}

uint64_t ConnTable::expiry_for(TimeoutClass timeout_class, uint64_t now) const {
    uint64_t expiry;
    if (__builtin_add_overflow(now, timeouts_[timeout_class], &expiry)) expiry = kNever;
    // Never before the list's tail: the list stays sorted even when `now`
    // steps back (a caller's clock from another core, say).
    const uint32_t tail = list_tail_[static_cast<unsigned>(timeout_class)];
    if (tail != kNil) expiry = std::max(expiry, slots_[tail].expiry_);
    return expiry;
}

void ConnTable::refresh(uint32_t index, TimeoutClass timeout_class, uint64_t now) {
    Connection& c = slots_[index];
    list_unlink(index);
    c.timeout_class_ = timeout_class;
    c.expiry_ = expiry_for(timeout_class, now);
    list_append(index);
}

void ConnTable::remove(uint32_t index) {
    if (!slots_[index].live()) return;
    retire(index);
    counters_.connections.add(static_cast<uint64_t>(-1));
    release_if_immediate();
}

SweepResult ConnTable::sweep(uint64_t now, unsigned budget) {
    SweepResult result;
    while (result.removed < budget) {
        // The earliest head of all lists (ties: the lower class), so a sweep
        // cut short by its budget has removed the oldest first.
        uint32_t oldest = kNil;
        for (unsigned k = 0; k < kTimeoutClasses; ++k) {
            const uint32_t head = list_head_[k];
            if (head != kNil && (oldest == kNil || slots_[head].expiry_ < slots_[oldest].expiry_)) oldest = head;
        }
        if (oldest == kNil || slots_[oldest].expiry_ > now) break;
        retire(oldest);
        counters_.connections.add(static_cast<uint64_t>(-1));
        counters_.expired.add(1);
        ++result.removed;
    }
    result.next_expiry = next_expiry();
    release_if_immediate();
    return result;
}

void ConnTable::clear() {
    for (uint32_t i = 0; i < capacity_;) {
        Connection& c = slots_[i];
        if (c.status_ == Connection::Status::free) {
            i += c.cluster_length_;
            continue;
        }
        if (c.status_ == Connection::Status::live) {
            retire(i);
            counters_.connections.add(static_cast<uint64_t>(-1));
        }
        ++i;
    }
    release_if_immediate();
}

void ConnTable::set_limit(uint32_t limit) { limit_ = limit == 0 ? capacity_ : std::min(limit, capacity_); }

uint64_t ConnTable::next_expiry() const {
    uint64_t next = kNever;
    for (unsigned k = 0; k < kTimeoutClasses; ++k) {
        if (list_head_[k] != kNil) next = std::min(next, slots_[list_head_[k]].expiry_);
    }
    return next;
}

// ---- Retiring and releasing ----

void ConnTable::retire(uint32_t index) {
    Connection& c = slots_[index];
    if (c.status_ == Connection::Status::live) list_unlink(index);
    Retired r{index, {-1, -1}};
    // -ENOENT would mean the index lost a key (check_invariants reports it);
    // nothing is held for it then.
    r.position[0] = std::max(rte_hash_del_key_with_hash(index_.get(), &c.key_[0], c.hash_[0]), -1);
    if (!c.one_key_) r.position[1] = std::max(rte_hash_del_key_with_hash(index_.get(), &c.key_[1], c.hash_[1]), -1);
    c.status_ = Connection::Status::retired;
    retired_ring_[retired_total_ % capacity_] = r;
    ++retired_total_;
}

unsigned ConnTable::release_retired(uint64_t mark) {
    mark = std::min(mark, retired_total_);
    unsigned released = 0;
    while (released_total_ < mark) {
        const Retired& r = retired_ring_[released_total_ % capacity_];
        for (int32_t position : r.position) {
            if (position >= 0) rte_hash_free_key_with_position(index_.get(), position);
        }
        free_slot(r.index);
        ++released_total_;
        ++released;
    }
    return released;
}

void ConnTable::release_if_immediate() {
    if (reclaim_ == Reclaim::immediate) release_retired();
}

// ---- Expiration lists ----

void ConnTable::list_append(uint32_t index) {
    Connection& c = slots_[index];
    const unsigned k = static_cast<unsigned>(c.timeout_class_);
    c.expiry_prev_ = list_tail_[k];
    c.expiry_next_ = kNil;
    if (list_tail_[k] != kNil) slots_[list_tail_[k]].expiry_next_ = index;
    else list_head_[k] = index;
    list_tail_[k] = index;
}

void ConnTable::list_unlink(uint32_t index) {
    Connection& c = slots_[index];
    const unsigned k = static_cast<unsigned>(c.timeout_class_);
    if (c.expiry_prev_ != kNil) slots_[c.expiry_prev_].expiry_next_ = c.expiry_next_;
    else list_head_[k] = c.expiry_next_;
    if (c.expiry_next_ != kNil) slots_[c.expiry_next_].expiry_prev_ = c.expiry_prev_;
    else list_tail_[k] = c.expiry_prev_;
    c.expiry_prev_ = c.expiry_next_ = kNil;
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
    Connection& head = slots_[i];
    const uint32_t length = head.cluster_length_;
    if (length > 1) {
        // The cluster now starts one slot later.
        const uint32_t next_first = i + 1;
        Connection& rest = slots_[next_first];
        rest.cluster_length_ = length - 1;
        rest.cluster_next_ = head.cluster_next_;
        rest.cluster_prev_ = kNil;
        if (rest.cluster_next_ != kNil) slots_[rest.cluster_next_].cluster_prev_ = next_first;
        slots_[i + length - 1].cluster_first_ = next_first;
        free_head_ = next_first;
    } else {
        free_head_ = head.cluster_next_;
        if (free_head_ != kNil) slots_[free_head_].cluster_prev_ = kNil;
    }
    set_free_bit(i, false);
    return i;
}

void ConnTable::free_slot(uint32_t index) {
    Connection& c = slots_[index];
    c.status_ = Connection::Status::free;
    const bool left_free = index > 0 && slots_[index - 1].status_ == Connection::Status::free;
    const bool right_free = index + 1 < capacity_ && slots_[index + 1].status_ == Connection::Status::free;

    if (left_free && right_free) {
        // Joins the cluster on its left and the one on its right (adjacent in
        // the list: nothing free lies between them).
        const uint32_t left_first = slots_[index - 1].cluster_first_;
        Connection& left = slots_[left_first];
        Connection& right = slots_[index + 1];
        const uint32_t right_last = index + right.cluster_length_;
        left.cluster_length_ += 1 + right.cluster_length_;
        left.cluster_next_ = right.cluster_next_;
        if (left.cluster_next_ != kNil) slots_[left.cluster_next_].cluster_prev_ = left_first;
        slots_[right_last].cluster_first_ = left_first;
    } else if (left_free) {
        // Extends the cluster on its left.
        const uint32_t left_first = slots_[index - 1].cluster_first_;
        slots_[left_first].cluster_length_ += 1;
        c.cluster_first_ = left_first;
    } else if (right_free) {
        // Becomes the first slot of the cluster on its right.
        const Connection& right = slots_[index + 1];
        c.cluster_length_ = right.cluster_length_ + 1;
        c.cluster_next_ = right.cluster_next_;
        c.cluster_prev_ = right.cluster_prev_;
        if (c.cluster_prev_ != kNil) slots_[c.cluster_prev_].cluster_next_ = index;
        else free_head_ = index;
        if (c.cluster_next_ != kNil) slots_[c.cluster_next_].cluster_prev_ = index;
        slots_[index + c.cluster_length_ - 1].cluster_first_ = index;
    } else {
        // A cluster of its own, linked after the cluster that precedes it.
        c.cluster_length_ = 1;
        c.cluster_first_ = index;
        const uint32_t before = last_free_before(index);
        if (before == kNil) {
            c.cluster_prev_ = kNil;
            c.cluster_next_ = free_head_;
            free_head_ = index;
        } else {
            const uint32_t prev_first = slots_[before].cluster_first_;
            c.cluster_prev_ = prev_first;
            c.cluster_next_ = slots_[prev_first].cluster_next_;
            slots_[prev_first].cluster_next_ = index;
        }
        if (c.cluster_next_ != kNil) slots_[c.cluster_next_].cluster_prev_ = index;
    }
    set_free_bit(index, true);
}

std::vector<std::pair<uint32_t, uint32_t>> ConnTable::free_clusters() const {
    std::vector<std::pair<uint32_t, uint32_t>> clusters;
    for (uint32_t i = free_head_; i != kNil && clusters.size() <= capacity_; i = slots_[i].cluster_next_) {
        clusters.emplace_back(i, slots_[i].cluster_length_);
    }
    return clusters;
}

// ---- Memory ----

uint64_t ConnTable::memory_bytes() const {
    return uint64_t{capacity_} * sizeof(Connection) + free_bits_.size() * sizeof(uint64_t) +
           free_words_.size() * sizeof(uint64_t) + retired_ring_.size() * sizeof(Retired) + index_bytes_ +
           sizeof(*this);
}

}  // namespace flowpath
