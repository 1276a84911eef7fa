// The connection table of connection tracking: connections in slots that
// never move, an rte_hash index from each direction's key to its slot, and
// one expiration list per timeout class.
//
// A connection lives in slot `index` for its whole life (the index is its
// identity); free slots form passt-style *free clusters* (the first slot of a
// run of free slots records the run's length and the next run, in increasing
// order), and a new connection takes the lowest free slot. Both directions of
// a connection are in the index: side 0 under the initiator's (forward) key,
// side 1 under the reply key, each mapping to a ConnRef (index << 1 | side).
// A connection is on the expiration list of its timeout class; a refresh moves
// it to the tail, so every list is sorted by expiry and a sweep stops at the
// first unexpired head (the Open vSwitch design).
//
// The table never reads a clock: every call that needs the time takes `now`
// in the caller's unit (TSC cycles, milliseconds...), the unit the timeouts
// were given in.
//
// Threading contract:
//  - One *owner* thread mutates the table: insert, refresh, set_state,
//    set_mark, remove, sweep, clear, release_retired, set_limit. for_each and
//    check_invariants also run on the owner (or while no one mutates).
//  - Any thread may call hash, lookup and lookup_burst concurrently with the
//    owner: the index is an rte_hash created lock-free for readers
//    (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF) with one writer. A slot is fully
//    written before its keys are published; readers see a key either whole or
//    not at all.
//  - A removed connection is *retired*, not freed: its keys leave the index
//    at once (new lookups miss), but a reader that found it just before may
//    still read its slot. The slot and the index's key storage are reused only
//    after release_retired(mark), which the owner must call only once every
//    reader that could have seen the connection is done: in the threaded
//    design, after an RCU QSBR grace period begun after retire_mark() was
//    taken (rte_rcu_qsbr_start, then rte_rcu_qsbr_check). A table configured
//    with Reclaim::immediate releases at the end of every mutating call, which
//    is right only when no other thread reads it (tests, one-thread use).
//  - Reading a Connection's fields from another thread while the owner
//    changes them (mark, state, expiry) is a data race today; the ct action
//    work decides which fields readers need and makes those atomic.
//
// Hot path: lookups take no lock, allocate nothing and throw nothing; with
// the hash computed once (hash(), then lookup(key, hash)). Mutations also
// allocate nothing after construction. Design and invariants:
// docs/conntrack.md.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flowpath/stats.hpp"

struct rte_hash;

namespace flowpath {

/// Address family of a connection key.
enum class AddressFamily : uint8_t { none = 0, ipv4 = 4, ipv6 = 6 };

/// One direction of a connection, as the index hashes and compares it: raw
/// bytes, so every byte (there is no padding) is set, zero when unused.
/// Addresses and ports are in network byte order as on the wire; an IPv4
/// address takes the first 4 bytes of its 16. Ports: TCP, UDP and SCTP ports;
/// for ICMP/ICMPv6 echo, the echo id in both (so the reply direction, with
/// the addresses swapped, is the same id); zero for other protocols. The zone
/// is in host byte order.
struct ConnKey {
    uint8_t src[16]{};
    uint8_t dst[16]{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint16_t zone = 0;
    uint8_t nw_proto = 0;
    AddressFamily family = AddressFamily::none;

    /// The key of the other direction: addresses and ports swapped.
    ConnKey reversed() const {
        ConnKey r = *this;
        std::swap(r.src, r.dst);
        std::swap(r.src_port, r.dst_port);
        return r;
    }

    /// An IPv4 key; addresses and ports in network byte order.
    static ConnKey ipv4(uint16_t zone, uint8_t nw_proto, uint32_t src, uint32_t dst, uint16_t src_port,
                        uint16_t dst_port);
    /// An IPv6 key; ports in network byte order.
    static ConnKey ipv6(uint16_t zone, uint8_t nw_proto, const uint8_t (&src)[16], const uint8_t (&dst)[16],
                        uint16_t src_port, uint16_t dst_port);

    bool operator==(const ConnKey&) const = default;
};
static_assert(sizeof(ConnKey) == 40, "ConnKey is the index's raw key: keep it packed");
static_assert(std::has_unique_object_representations_v<ConnKey>, "ConnKey must have no padding bytes");
static_assert(std::is_trivially_copyable_v<ConnKey> && std::is_standard_layout_v<ConnKey>);

/// Which direction of a connection a key is.
enum ConnSide : unsigned { kInitiatorSide = 0, kReplySide = 1 };

/// A reference to one side of a connection: index << 1 | side. What the index
/// stores for each key; kNone means "no connection".
struct ConnRef {
    static constexpr uint32_t kNone = UINT32_MAX;
    uint32_t value = kNone;

    constexpr ConnRef() = default;
    constexpr ConnRef(uint32_t index, unsigned side) : value(index << 1 | (side & 1)) {}
    static constexpr ConnRef from_raw(uint32_t raw) {
        ConnRef r;
        r.value = raw;
        return r;
    }

    constexpr uint32_t index() const { return value >> 1; }
    constexpr unsigned side() const { return value & 1; }
    constexpr bool valid() const { return value != kNone; }
    constexpr explicit operator bool() const { return valid(); }
    constexpr bool operator==(const ConnRef&) const = default;
};

/// A connection's protocol state. TCP states follow the TCP state machine as
/// Open vSwitch reports them; every other protocol (UDP, ICMP, ...) is
/// `other`, its progress told by the timeout class. The table stores it; the
/// conntrack state machine (later work) sets it.
enum class ConnState : uint8_t {
    other,
    tcp_syn_sent,
    tcp_syn_recv,
    tcp_established,
    tcp_close_wait,
    tcp_fin_wait_1,
    tcp_closing,
    tcp_last_ack,
    tcp_fin_wait_2,
    tcp_time_wait,
    tcp_closed,
};

/// The timeout classes: one expiration list and one timeout each (the
/// classes, and their default values, of Open vSwitch's userspace conntrack;
/// other_* serve UDP and every protocol without a state machine).
enum class TimeoutClass : uint8_t {
    tcp_syn_sent,     ///< first packet of a TCP connection seen
    tcp_opening,      ///< handshake under way
    tcp_established,
    tcp_closing,      ///< a FIN seen
    tcp_fin_wait,     ///< both FINs seen
    tcp_closed,       ///< RST seen, or TIME_WAIT
    other_first,      ///< one packet, one direction (UDP...)
    other_multiple,   ///< several packets, one direction
    other_bidir,      ///< both directions seen
    icmp_first,
    icmp_reply,
    count_
};
inline constexpr unsigned kTimeoutClasses = static_cast<unsigned>(TimeoutClass::count_);

/// The name of a timeout class ("tcp_established").
const char* timeout_class_name(TimeoutClass timeout_class);
/// The name of a state ("ESTABLISHED", "OTHER").
const char* conn_state_name(ConnState state);

/// A timeout for each class, in the caller's time unit.
struct ConnTimeouts {
    std::array<uint64_t, kTimeoutClasses> value{};

    uint64_t operator[](TimeoutClass c) const { return value[static_cast<unsigned>(c)]; }
    uint64_t& operator[](TimeoutClass c) { return value[static_cast<unsigned>(c)]; }

    /// Open vSwitch's defaults (SYN_SENT 30 s, ESTABLISHED 24 h, CLOSING
    /// 15 min, FIN_WAIT 45 s, CLOSED 30 s, other 60/60/30 s, ICMP 60/30 s)
    /// in a unit of `units_per_second` (1000 for ms, rte_get_tsc_hz() for TSC).
    static ConnTimeouts open_vswitch(uint64_t units_per_second);
};

/// When a removed connection's slot becomes reusable (see the threading
/// contract above).
enum class Reclaim : uint8_t {
    immediate,  ///< at the end of the call that removed it: single-thread use only
    deferred,   ///< at release_retired(), after the owner's grace period
};

/// How a table is built.
struct ConnTableConfig {
    uint32_t capacity = 65536;  ///< slots (at most 2^29)
    uint32_t limit = 0;         ///< global connection limit; 0 = capacity
    ConnTimeouts timeouts = ConnTimeouts::open_vswitch(1000);
    Reclaim reclaim = Reclaim::immediate;
    int socket = -1;            ///< NUMA socket of the index (SOCKET_ID_ANY)
};

/// One connection in its slot. The owner changes it only through ConnTable;
/// the table's bookkeeping (links, free-cluster records) is private.
/// Two cache lines; data later work adds per connection (TCP windows, NAT,
/// labels) belongs in arrays parallel to the slots, indexed alike.
class alignas(64) Connection {
public:
    /// The key of side 0 (initiator, forward) or side 1 (reply).
    const ConnKey& key(unsigned side) const { return key_[side & 1]; }
    uint16_t zone() const { return key_[0].zone; }
    /// When it expires (caller's unit): expired once expiry() <= now.
    uint64_t expiry() const { return expiry_; }
    uint32_t mark() const { return mark_; }
    ConnState state() const { return state_; }
    TimeoutClass timeout_class() const { return timeout_class_; }
    bool live() const { return status_ == Status::live; }

private:
    friend class ConnTable;
    enum class Status : uint8_t { free, live, retired };

    ConnKey key_[2];
    uint64_t expiry_ = 0;
    uint32_t mark_ = 0;
    ConnState state_ = ConnState::other;
    TimeoutClass timeout_class_ = TimeoutClass::other_first;
    Status status_ = Status::free;
    bool one_key_ = false;          // key_[0] == key_[1]: a single index entry (side 0)
    uint32_t hash_[2]{};            // index hashes of key_[0], key_[1]
    uint32_t expiry_prev_ = 0;      // expiration list of timeout_class_ (live)
    uint32_t expiry_next_ = 0;
    uint32_t cluster_length_ = 0;   // first slot of a free cluster: its run length,
    uint32_t cluster_next_ = 0;     //   the next cluster and the previous one
    uint32_t cluster_prev_ = 0;
    uint32_t cluster_first_ = 0;    // last slot of a free cluster: its first slot
};
static_assert(sizeof(Connection) == 128, "a connection slot is two cache lines");

/// Why an insert did not insert.
enum class InsertStatus : uint8_t {
    inserted,
    exists,  ///< the forward or the reply key is already in the index
    full,    ///< the connection limit is reached, or no slot is free (counted as refused)
};

/// What insert did: for `inserted`, the new connection's side 0; for
/// `exists`, the side of the connection that already holds the key.
struct InsertResult {
    InsertStatus status = InsertStatus::full;
    ConnRef ref;
    explicit operator bool() const { return status == InsertStatus::inserted; }
};

/// What a sweep did: connections removed, and the earliest expiry left
/// (ConnTable::kNever when none; <= now when the budget ran out first).
struct SweepResult {
    unsigned removed = 0;
    uint64_t next_expiry = 0;
};

/// The table's counters: one writer (the owner), any reader.
struct ConnCounters {
    Counter connections;  ///< live now
    Counter created;      ///< ever inserted
    Counter expired;      ///< removed by sweep
    Counter refused;      ///< inserts refused because the table was full
};

/// The most keys one lookup_burst takes (a hit mask fits a word).
inline constexpr unsigned kMaxConnBurst = 64;

/// The connection table. See the file comment for the threading contract.
class ConnTable {
public:
    static constexpr uint64_t kNever = UINT64_MAX;
    static constexpr uint32_t kMaxCapacity = 1u << 29;

    /// Throws Error when the configuration is impossible or the index cannot
    /// be created (the reason from DPDK).
    explicit ConnTable(const ConnTableConfig& config);
    ~ConnTable();
    ConnTable(const ConnTable&) = delete;
    ConnTable& operator=(const ConnTable&) = delete;

    // ---- Any thread ----

    /// The index hash of `key`: compute it once per packet, pass it on.
    uint32_t hash(const ConnKey& key) const;
    /// The side of a live connection that `key` names, or an invalid ConnRef.
    ConnRef lookup(const ConnKey& key) const;
    ConnRef lookup(const ConnKey& key, uint32_t hash) const;
    /// Looks up `count` (<= kMaxConnBurst) keys at once, hashes precomputed
    /// or (null) not; refs[i] gets keys[i]'s answer. Returns the hits.
    unsigned lookup_burst(const ConnKey* const* keys, const uint32_t* hashes, unsigned count, ConnRef* refs) const;

    /// The slot `index` (< capacity()); meaningful while live() (or until the
    /// caller's grace period ends, for a reader that found it by lookup).
    const Connection& connection(uint32_t index) const { return slots_[index]; }

    // ---- Owner thread ----

    /// A new connection: `forward` on side 0, `reply` on side 1, on the
    /// expiration list of `timeout_class` from `now`, mark 0. Takes the lowest
    /// free slot. Refuses (no change) when either key is already indexed, or
    /// when the table is at its limit or has no free slot (counted).
    InsertResult insert(const ConnKey& forward, const ConnKey& reply, ConnState state,
                        TimeoutClass timeout_class, uint64_t now);
    /// The same with reply = forward.reversed().
    InsertResult insert(const ConnKey& forward, ConnState state, TimeoutClass timeout_class, uint64_t now) {
        return insert(forward, forward.reversed(), state, timeout_class, now);
    }

    /// Expires `index` `timeouts[timeout_class]` after `now` (never before the
    /// current tail of that list, so the list stays sorted even if `now`
    /// steps back) and moves it to the tail of that class's list.
    void refresh(uint32_t index, TimeoutClass timeout_class, uint64_t now);
    void set_state(uint32_t index, ConnState state) { slots_[index].state_ = state; }
    void set_mark(uint32_t index, uint32_t mark) { slots_[index].mark_ = mark; }

    /// Removes a live connection now (not counted as expired).
    void remove(uint32_t index);

    /// Removes expired connections (expiry <= now), earliest expiry first, at
    /// most `budget` of them.
    SweepResult sweep(uint64_t now, unsigned budget);

    /// Removes every connection (ct-flush).
    void clear();

    /// A mark covering every connection retired so far; take it, start a
    /// grace period, and pass it to release_retired once the period is over.
    uint64_t retire_mark() const { return retired_total_; }
    /// Frees the slots and index storage of the connections retired before
    /// `mark`. Returns how many slots it freed.
    unsigned release_retired(uint64_t mark = UINT64_MAX);
    /// Connections retired and not yet released.
    uint32_t retired() const { return static_cast<uint32_t>(retired_total_ - released_total_); }

    /// Calls fn(uint32_t index, const Connection&) for each live connection,
    /// in index order; skips a free cluster in one step, so the cost is
    /// (live + retired connections + free clusters). fn must not mutate the
    /// table.
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (uint32_t i = 0; i < capacity_;) {
            const Connection& c = slots_[i];
            if (c.status_ == Connection::Status::free) {
                i += c.cluster_length_;  // i is always a cluster's first slot here
                continue;
            }
            if (c.status_ == Connection::Status::live) fn(i, c);
            ++i;
        }
    }

    /// Changes the connection limit (clamped to the capacity; 0 = capacity).
    /// Lowering it below the live count refuses inserts until enough expire.
    void set_limit(uint32_t limit);

    // ---- Reading (the counters from any thread) ----

    uint32_t size() const { return static_cast<uint32_t>(counters_.connections.get()); }
    uint32_t capacity() const { return capacity_; }
    uint32_t limit() const { return limit_; }
    const ConnCounters& counters() const { return counters_; }
    const ConnTimeouts& timeouts() const { return timeouts_; }
    /// The earliest expiry of any live connection, or kNever.
    uint64_t next_expiry() const;

    /// Bytes held: slots, bookkeeping, and the index as DPDK's heap measured
    /// it when the index was created.
    uint64_t memory_bytes() const;
    uint64_t index_bytes() const { return index_bytes_; }

    /// The free clusters as (first slot, length), in list order (tests,
    /// diagnostics; walks the list).
    std::vector<std::pair<uint32_t, uint32_t>> free_clusters() const;

    /// Checks every invariant (docs/conntrack.md) against the whole table;
    /// returns the first violation found, or "" (tests; O(capacity)).
    std::string check_invariants() const;

private:
    struct HashDeleter {
        void operator()(rte_hash* index) const;
    };
    struct Retired {
        uint32_t index;
        int32_t position[2];  // index key storage to free on release (-1: none)
    };
    static constexpr uint32_t kNil = UINT32_MAX;

    uint64_t expiry_for(TimeoutClass timeout_class, uint64_t now) const;
    uint32_t take_lowest_free();
    void free_slot(uint32_t index);
    uint32_t last_free_before(uint32_t index) const;
    void set_free_bit(uint32_t index, bool free);
    void list_append(uint32_t index);
    void list_unlink(uint32_t index);
    void retire(uint32_t index);
    void release_if_immediate();

    uint32_t capacity_;
    uint32_t limit_;
    ConnTimeouts timeouts_;
    Reclaim reclaim_;
    std::unique_ptr<rte_hash, HashDeleter> index_;
    uint64_t index_bytes_ = 0;
    std::unique_ptr<Connection[]> slots_;
    uint32_t free_head_ = kNil;                       // first free cluster
    std::vector<uint64_t> free_bits_;                 // bit per slot: free
    std::vector<uint64_t> free_words_;                // bit per free_bits_ word: nonzero
    std::array<uint32_t, kTimeoutClasses> list_head_;
    std::array<uint32_t, kTimeoutClasses> list_tail_;
    std::vector<Retired> retired_ring_;               // capacity entries, FIFO
    uint64_t retired_total_ = 0;
    uint64_t released_total_ = 0;
    ConnCounters counters_;
};

}  // namespace flowpath
