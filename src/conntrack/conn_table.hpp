// The connection table of one tracker shard (internal to src/conntrack):
// connections in slots that never move, an index (conn_index.hpp) from each
// direction's key to its slot, and the single-writer protocol that lets other
// threads read a slot while its owner rewrites it.
//
// A connection lives in slot `index` for its whole life; free slots form
// passt-style *free clusters* (the first slot of a run of free slots records
// the run's length and the next run, in increasing order), and a new
// connection takes the lowest free slot, so live slots stay packed below
// high_water(). Both directions of a connection are in the index: side 0
// under the initiator's (forward) key, side 1 under the reply key, each
// mapping to a ConnRef (index << 1 | side).
//
// Threading (docs/conntrack.md, "Ownership"):
//  - The *owner* (the shard's worker) is the only thread that touches the
//    index, allocates or frees slots, and writes a slot's keys, status and
//    protocol state. The index is therefore single-threaded: no other
//    thread ever looks it up.
//  - Other threads (the cleanup thread, ct-dump, ct-flush) read slots through
//    the slot's sequence number (`seq`, a seqlock): the owner makes it odd
//    while it (re)writes a slot's identity (insert, remove) and even again
//    after. A reader that sees the same even `seq` before and after its reads
//    read one connection, whole; a different `seq` means the slot was reused.
//  - Fields read across threads are read and written through std::atomic_ref
//    (relaxed: each is meaningful alone): keys, expiry, mark, seq, status,
//    timeout_class, proto_state, killed, relist_pending. `killed` is also
//    written by ct-flush, `relist_pending` by the cleanup thread; everything
//    else has one writer, the owner.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conn_index.hpp"
#include "zeroed_array.hpp"
#include "flowpath/conntrack.hpp"

namespace flowpath {

// ---- Relaxed atomic access to plain fields shared between threads ----

template <typename T>
inline T load_shared(const T& field, std::memory_order order = std::memory_order_relaxed) {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(order);
}
template <typename T>
inline void store_shared(T& field, T value, std::memory_order order = std::memory_order_relaxed) {
    std::atomic_ref<T>(field).store(value, order);
}

/// The IP protocols the tracker tells apart.
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

/// Address family of a connection key.
enum class AddressFamily : uint8_t { none = 0, ipv4 = 4, ipv6 = 6 };

/// The ICMP query types a connection can be keyed by, numbered so that a
/// request and its reply are an odd number and the next even one; 0 is "not
/// an ICMP query". Open vSwitch keys an ICMP connection by the echo id and by
/// each side's message type (a request from one side and a request from the
/// other are two connections).
enum IcmpQuery : uint8_t {
    kIcmpNone = 0,
    kIcmpEchoRequest = 1,       ///< ICMP type 8
    kIcmpEchoReply = 2,         ///< 0
    kIcmpTimestamp = 3,         ///< 13
    kIcmpTimestampReply = 4,    ///< 14
    kIcmpInfoRequest = 5,       ///< 15
    kIcmpInfoReply = 6,         ///< 16
    kIcmp6EchoRequest = 7,      ///< ICMPv6 type 128
    kIcmp6EchoReply = 8,        ///< 129
};
/// The wire type of an IcmpQuery; the query of an ICMP(v6) type (kIcmpNone
/// for every other type).
uint8_t icmp_query_type(uint8_t query);
uint8_t icmp_query_of(bool v6, uint8_t type);

/// One direction of a connection, as the index hashes and compares it: raw
/// bytes, every one set (there is no padding), zero when unused. Addresses
/// and ports in network byte order as on the wire; an IPv4 address takes the
/// first 4 bytes of its 16. Ports: TCP and UDP ports; for an ICMP(v6) query
/// the id in both (as Open vSwitch keys it); zero for every other protocol
/// (SCTP included, as Open vSwitch 3.1). The zone is in host byte order.
/// The last byte holds the AddressFamily (low nibble) and, for an ICMP query,
/// the IcmpQuery the source side sends (high nibble).
struct ConnKey {
    uint8_t src[16]{};
    uint8_t dst[16]{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint16_t zone = 0;
    uint8_t nw_proto = 0;
    uint8_t family_query = 0;

    AddressFamily family() const { return static_cast<AddressFamily>(family_query & 0x0f); }
    uint8_t icmp_query() const { return family_query >> 4; }
    void set_icmp_query(uint8_t query) {
        family_query = static_cast<uint8_t>((family_query & 0x0f) | query << 4);
    }

    /// The key of the other direction: addresses and ports swapped, and an
    /// ICMP query's type turned into its partner's (request <-> reply).
    ConnKey reversed() const {
        ConnKey r;
        if constexpr (std::endian::native == std::endian::little) {
            // In 64-bit words: a key built of byte and half-word stores and
            // then hashed as words stalls on store forwarding (~5 ns).
            uint64_t w[5];
            std::memcpy(w, this, sizeof(w));
            const uint64_t ports = w[4] & 0xffffffffu;  // src_port, dst_port
            const uint64_t out[5] = {w[2], w[3], w[0], w[1],
                                     (w[4] & ~uint64_t{0xffffffffu}) | ports >> 16 | (ports & 0xffffu) << 16};
            std::memcpy(&r, out, sizeof(out));
        } else {
            r = *this;
            std::swap(r.src, r.dst);
            std::swap(r.src_port, r.dst_port);
        }
        if (const uint8_t q = icmp_query()) r.set_icmp_query(static_cast<uint8_t>(q & 1 ? q + 1 : q - 1));
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

/// One TCP peer as the pf-derived tracker follows it (src/conntrack/tcp.hpp).
struct TcpPeer {
    uint32_t seqlo;    ///< highest sequence number sent (end of data)
    uint32_t seqhi;    ///< highest the other end acknowledged + its window
    uint16_t max_win;  ///< largest window seen (before scaling)
    uint8_t wscale;    ///< window scale: kWscaleKnown | shift, or kWscaleUnknown
    uint8_t state;     ///< TcpState
};

/// The first slot of a free cluster records its run; the last names the first.
struct FreeCluster {
    uint32_t length;
    uint32_t next;
    uint32_t prev;
    uint32_t first;
};

enum SlotStatus : uint8_t { kSlotFree = 0, kSlotLive = 1 };

/// One connection in its slot: two cache lines. All-zero bytes are a free
/// slot, so the slot array can start as untouched zero pages. Who writes what
/// is in the file comment; `tcp` and `cluster` are the owner's alone.
struct alignas(64) Connection {
    ConnKey key[2];          ///< side 0 (forward), side 1 (reply)
    uint64_t expiry;         ///< expired once expiry <= now (tracker clock)
    uint32_t mark;           ///< ct_mark
    uint32_t seq;            ///< seqlock / generation: odd while rewritten
    uint8_t status;          ///< SlotStatus
    uint8_t timeout_class;   ///< TimeoutClass
    uint8_t proto_state;     ///< UDP/other/ICMP state; TCP: the higher peer state (dumps)
    uint8_t killed;          ///< ct-flush removed it: it no longer matches
    uint8_t relist_pending;  ///< a relist message for this slot is on its way to the cleanup thread
    uint8_t one_key;         ///< key[0] == key[1]: a single index entry (side 0)
    uint8_t reserved[2];
    union {
        TcpPeer tcp[2];       ///< live TCP connection: side 0 and side 1
        FreeCluster cluster;  ///< free slot
    };
};
static_assert(sizeof(Connection) == 128, "a connection slot is two cache lines");
static_assert(std::is_trivially_copyable_v<Connection>);

/// A consistent copy of a live connection, read from another thread.
struct ConnSnapshot {
    ConnKey key[2];
    uint64_t expiry = 0;
    uint32_t mark = 0;
    uint32_t seq = 0;
    uint8_t timeout_class = 0;
    uint8_t proto_state = 0;
    bool killed = false;
};

/// What a new connection starts with (written before it is published).
struct ConnInit {
    uint64_t expiry = 0;
    uint8_t timeout_class = 0;
    uint8_t proto_state = 0;
    TcpPeer tcp[2]{};
};

/// Why an insert did not insert.
enum class InsertStatus : uint8_t {
    inserted,
    exists,  ///< the forward or the reply key is already in the index
    full,    ///< no slot is free
};

/// What insert did: for `inserted`, the new connection's side 0; for
/// `exists`, the side of the connection that already holds the key.
struct InsertResult {
    InsertStatus status = InsertStatus::full;
    ConnRef ref;
    explicit operator bool() const { return status == InsertStatus::inserted; }
};

/// The most keys one lookup_burst takes (a hit mask fits a word).
inline constexpr unsigned kMaxConnBurst = 64;

/// The connection table. See the file comment for the threading contract.
class ConnTable {
public:
    static constexpr uint32_t kMaxCapacity = 1u << 29;

    /// Throws Error when the capacity is impossible or the index or the slot
    /// memory cannot be had (the reason from DPDK or the system).
    explicit ConnTable(uint32_t capacity, int socket = -1);
    ~ConnTable();
    ConnTable(const ConnTable&) = delete;
    ConnTable& operator=(const ConnTable&) = delete;

    // ---- Owner ----

    /// The index hash of `key` (never 0): compute it once per packet, pass it on.
    uint32_t hash(const ConnKey& key) const;
    /// The side of the connection that `key` names, or an invalid ConnRef.
    ConnRef lookup(const ConnKey& key) const { return lookup(key, hash(key)); }
    ConnRef lookup(const ConnKey& key, uint32_t hash) const;
    /// Looks up `count` keys at once with their hashes; refs[i] gets
    /// keys[i]'s answer. Every bucket is prefetched first, then every found
    /// connection's slot (both lines), before any key is compared.
    void lookup_burst(const ConnKey* const* keys, const uint32_t* hashes, unsigned count, ConnRef* refs) const;
    /// Brings the index bucket of `hash` into the cache (an insert or a
    /// delete of that key follows).
    void prefetch(uint32_t hash) const { index_.prefetch(hash); }

    /// A new connection: `forward` on side 0 (its hash given), `reply` on side
    /// 1, its fields from `init`, mark 0, in the lowest free slot. Refuses (no
    /// change) when either key is already indexed or no slot is free.
    /// `forward_absent`: the caller knows the forward key is not indexed (it
    /// looked it up since the last change), so it is not looked up again.
    InsertResult insert(const ConnKey& forward, uint32_t forward_hash, const ConnKey& reply, const ConnInit& init,
                        bool forward_absent = false);
    /// Removes a live connection: its keys leave the index, its slot is free.
    void remove(uint32_t index);

    Connection& slot(uint32_t index) { return slots_[index]; }
    const Connection& slot(uint32_t index) const { return slots_[index]; }

    /// Calls fn(uint32_t index, const Connection&) for each live connection,
    /// in index order; skips a free cluster in one step.
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (uint32_t i = 0; i < capacity_;) {
            const Connection& c = slots_[i];
            if (c.status == kSlotFree) {
                i += c.cluster.length;
                continue;
            }
            fn(i, c);
            ++i;
        }
    }

    /// Live connections.
    uint32_t size() const { return size_; }
    /// The free clusters as (first slot, length), in order (tests).
    std::vector<std::pair<uint32_t, uint32_t>> free_clusters() const;
    /// Checks every invariant of docs/conntrack.md; "" when all hold, else
    /// the first violation (O(capacity): tests and debugging).
    std::string check_invariants() const;

    // ---- Any thread ----

    uint32_t capacity() const { return capacity_; }
    /// One past the highest slot ever used: readers scan [0, high_water()).
    uint32_t high_water() const { return load_shared(high_water_, std::memory_order_acquire); }
    /// A consistent copy of slot `index` if it holds a live connection.
    bool snapshot(uint32_t index, ConnSnapshot& out) const;
    /// Bytes the table holds: slots and index (as reserved), bitmaps.
    uint64_t memory_bytes() const;
    /// Bytes of the index (as reserved: touched as used).
    uint64_t index_bytes() const { return index_.bytes(); }

private:
    static constexpr uint32_t kNil = UINT32_MAX;

    static uint32_t check_capacity(uint32_t capacity);
    /// Whether the slot side `ref` holds `key`.
    bool key_is(ConnRef ref, const ConnKey& key) const;
    void begin_write(Connection& c);
    void end_write(Connection& c);
    uint32_t take_lowest_free();
    void free_slot(uint32_t index);
    uint32_t last_free_before(uint32_t index) const;
    void set_free_bit(uint32_t index, bool free);

    uint32_t capacity_;
    uint32_t seed_;
    ConnIndex index_;
    ZeroedArray<Connection> slots_;
    uint32_t size_ = 0;
    uint32_t high_water_ = 0;
    uint32_t free_head_ = kNil;                       // first free cluster
    std::vector<uint64_t> free_bits_;                 // bit per slot: free
    std::vector<uint64_t> free_words_;                // bit per free_bits_ word: nonzero
};

}  // namespace flowpath
