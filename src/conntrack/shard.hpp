// A tracker shard and what the shards share (internal to src/conntrack).
//
// Who owns what (the ownership scheme of include/flowpath/conntrack.hpp):
//  - the worker: `table` (index, slots, protocol state), the producer side of
//    `relist`, the consumer side of `expire`, the counters;
//  - the cleanup thread: `lists`, the consumer side of `relist`, the producer
//    side of `expire`, the flush scan;
//  - any thread: snapshots of slots, `killed` (ct-flush), counter reads.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conn_table.hpp"
#include "extract.hpp"
#include "spsc_ring.hpp"
#include "flowpath/conntrack.hpp"
#include "flowpath/stats.hpp"

namespace flowpath {

/// The protocol state machines other than TCP (Open vSwitch's
/// conntrack-other.c and conntrack-icmp.c), in Connection::proto_state.
enum OtherState : uint8_t { kOtherFirst = 0, kOtherMultiple = 1, kOtherBidir = 2 };
enum IcmpState : uint8_t { kIcmpFirst = 0, kIcmpReply = 1 };

/// A shard's counters, written by its worker. connections, created, expired
/// and flushed change together under `seq` (a seqlock), so that a reader's
/// sample always has created = expired + flushed + connections.
struct ShardCounters {
    uint32_t seq = 0;
    uint64_t connections = 0;
    uint64_t created = 0;
    uint64_t expired = 0;
    uint64_t flushed = 0;
    Counter refused;
    Counter invalid;

    /// Worker: one new connection; one gone (flushed or expired).
    void created_one();
    void removed_one(bool flushed);
    /// Any thread: a consistent copy of the four.
    void sample(CtStats& into) const;
};

/// "Expire slot i" from the cleanup thread, for the slot's generation `seq`.
struct ExpireMessage {
    uint32_t index;
    uint32_t seq;
};

/// One node per slot on its timeout class's expiration list (the cleanup
/// thread's alone). `placed_expiry` is the expiry the connection had when put
/// at the tail: an expiry beyond it at the head means "refreshed since".
struct ExpiryNode {
    uint64_t placed_expiry;
    uint32_t prev;
    uint32_t next;
    uint32_t seq;   ///< the slot's generation when placed
    uint8_t list;   ///< TimeoutClass of the list it is on
    uint8_t listed;
    uint8_t reserved[2];
};

/// The expiration lists of one shard: doubly linked through ExpiryNodes, one
/// per timeout class, each in the order the cleanup thread placed them.
class ExpiryLists {
public:
    static constexpr uint32_t kNil = UINT32_MAX;

    explicit ExpiryLists(uint32_t capacity);
    void append(uint32_t index, uint8_t list, uint32_t seq, uint64_t expiry);
    void unlink(uint32_t index);
    ExpiryNode& node(uint32_t index) { return nodes_[index]; }
    const ExpiryNode& node(uint32_t index) const { return nodes_[index]; }
    uint32_t head(unsigned list) const { return head_[list]; }
    /// Nodes on all lists (tests).
    uint64_t size() const { return size_; }
    size_t bytes() const { return nodes_.bytes(); }

private:
    ZeroedArray<ExpiryNode> nodes_;
    std::array<uint32_t, kTimeoutClasses> head_;
    std::array<uint32_t, kTimeoutClasses> tail_;
    uint64_t size_ = 0;
};

struct ShardState;

/// What every shard and the cleanup thread share.
struct TrackerShared {
    ConnTimeouts timeouts;
    uint64_t units_per_second = 1000;
    std::atomic<uint32_t> limit{ConnTrackerConfig::kDefaultLimit};
    std::vector<ShardState*> shards;

    /// Connections in all shards (relaxed reads: a commit racing on another
    /// worker may pass the limit by one).
    uint64_t live_total() const;

    // The cleanup thread.
    std::mutex mutex;
    std::condition_variable wake;
    bool stop = false;
    bool wake_requested = false;
    uint64_t started = 0;              // rounds the thread began (under mutex)
    std::atomic<uint64_t> rounds{0};   // rounds finished
    std::thread thread;
};

/// One shard: a worker's connections and its side of the two rings.
struct ShardState {
    ShardState(TrackerShared& shared, uint32_t capacity, int socket);

    TrackerShared& shared;
    ConnTable table;
    SpscRing<uint32_t> relist;       // worker -> cleanup: (re)list slot i
    SpscRing<ExpireMessage> expire;  // cleanup -> worker: slot i looks expired
    ShardCounters counters;
    // Changes to the table's keys during the current burst: a lookup done
    // before one may be stale.
    uint64_t structural_changes = 0;
    // A ct set the mark of a connection that existed before the packet
    // (not one it committed): from then on, packets of one connection in
    // one call may depend on each other's later actions (sticky).
    bool marks_rewritten = false;

    // The cleanup thread's.
    ExpiryLists lists;
    std::atomic<bool> flush_pending{false};
    uint32_t flush_cursor = UINT32_MAX;  // next slot the flush scan visits; UINT32_MAX: none

    // ---- Worker ----
    unsigned execute(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count, uint64_t now,
                     bool stop_at_dependency);
    unsigned maintain(uint64_t now);
    /// ConnShard::original_tuple.
    bool original_tuple(const CtMeta& meta, const CtPacket& packet, CtTuple& out) const;

    // ---- Cleanup thread ----
    /// One round: place relisted connections, continue a flush scan, walk
    /// every list from its head. Returns the earliest expiry left (kNever:
    /// none); `more` is set when the budget or the expire ring ran out.
    uint64_t cleanup(uint64_t now, unsigned budget, bool& more);

    static constexpr uint64_t kNever = UINT64_MAX;

    /// The lists are well linked, and every live connection is within the
    /// cleanup thread's reach: listed with its generation, or a relist or an
    /// expire message for it in flight (no connection is ever forgotten).
    /// "" when that holds. Only while neither the worker nor a round runs.
    std::string check_lists() const;

private:
    unsigned execute_chunk(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count,
                           uint64_t now, bool stop_at_dependency);
    bool remembered(const ConnHandle& handle, uint16_t zone) const;
    void invalid_packet(const CtAction& action, CtMeta& meta);
    void process_fast(const CtAction& action, CtMeta& meta);
    void process_one(const CtAction& action, const CtParsed& parsed, uint32_t hash, ConnRef ref, CtMeta& meta,
                     uint64_t now);
    CtUpdate update(uint32_t index, bool reply, const CtParsed& parsed, uint64_t now);
    uint32_t commit(const CtParsed& parsed, uint32_t hash, uint64_t now, bool forward_absent);
    void refresh(uint32_t index, TimeoutClass timeout_class, uint64_t now);
    void request_relist(uint32_t index);
    void remove(uint32_t index);
    bool dead(const Connection& c, uint64_t now) const;

    void place(uint32_t index);
    bool scan_flushed(unsigned budget);
};

}  // namespace flowpath
