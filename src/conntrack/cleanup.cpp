// The cleanup thread's side of a shard: the expiration lists (Open vSwitch's
// design of 2016: one list per timeout class, refreshed connections moved to
// the tail, a sweep stops at the first entry due later), without a lock on
// the packet path. A packet only stores its connection's expiry; this side
// finds out, from each list's head:
//   - a slot reused or freed since it was placed: dropped from the list;
//   - expired or flushed: the worker is told to free it ("expire" ring);
//   - refreshed since it was placed, or its class changed: moved to the tail
//     of its class's list, with the expiry it has now;
//   - otherwise it is due later, and so is everything behind it: stop.
// Lists are in placement order, and a connection refreshed long before it
// reaches the head is placed with that older expiry behind newer ones, so an
// entry can be found up to one timeout late. Packets never see that: a lookup
// treats an expired connection as absent. Only the memory and the
// `connections` count lag.
#include <algorithm>
#include <set>

#include "flowpath/log.hpp"
#include "shard.hpp"

namespace flowpath {

// ---- Lists ----

ExpiryLists::ExpiryLists(uint32_t capacity) : nodes_(capacity) {
    head_.fill(kNil);
    tail_.fill(kNil);
}

void ExpiryLists::append(uint32_t index, uint8_t list, uint32_t seq, uint64_t expiry) {
    ExpiryNode& n = nodes_[index];
    n.placed_expiry = expiry;
    n.seq = seq;
    n.list = list;
    n.listed = 1;
    n.next = kNil;
    n.prev = tail_[list];
    if (n.prev != kNil) nodes_[n.prev].next = index;
    else head_[list] = index;
    tail_[list] = index;
    ++size_;
}

void ExpiryLists::unlink(uint32_t index) {
    ExpiryNode& n = nodes_[index];
    if (!n.listed) return;
    if (n.prev != kNil) nodes_[n.prev].next = n.next;
    else head_[n.list] = n.next;
    if (n.next != kNil) nodes_[n.next].prev = n.prev;
    else tail_[n.list] = n.prev;
    n.listed = 0;
    --size_;
}

// ---- A round ----

void ShardState::place(uint32_t index) {
    Connection& c = table.slot(index);
    // Clear the flag before reading the slot: a class change after this
    // point sends a new message (request_relist), one before it is seen here.
    std::atomic_ref<uint8_t>(c.relist_pending).exchange(0, std::memory_order_seq_cst);
    lists.unlink(index);
    const uint32_t seq = load_shared(c.seq, std::memory_order_acquire);
    if ((seq & 1) || load_shared(c.status) != kSlotLive) return;  // being rewritten: the new one relists itself
    const uint8_t cls = load_shared(c.timeout_class);
    const uint64_t expiry = load_shared(c.expiry);
    if (cls >= kTimeoutClasses) return;
    // Flushed while its message was on the way: straight to the worker.
    if (load_shared(c.killed) && expire.push({index, seq})) return;
    lists.append(index, cls, seq, expiry);
}

bool ShardState::scan_flushed(unsigned budget) {
    // After ct-flush marked connections killed: every listed one goes to the
    // worker now, wherever it is on its list.
    const uint32_t end = table.high_water();
    uint32_t i = flush_cursor;
    for (unsigned steps = 0; i < end && steps < budget; ++i, ++steps) {
        const ExpiryNode& node = lists.node(i);
        if (!node.listed) continue;
        const Connection& c = table.slot(i);
        if (load_shared(c.seq, std::memory_order_acquire) != node.seq || !load_shared(c.killed)) continue;
        if (!expire.push({i, node.seq})) break;
        lists.unlink(i);
    }
    flush_cursor = i < end ? i : UINT32_MAX;
    return flush_cursor == UINT32_MAX;
}

uint64_t ShardState::cleanup(uint64_t now, unsigned budget, bool& more) {
    // New connections and class changes first: a list must hold every
    // connection before its head can be trusted.
    uint32_t batch[256];
    for (uint32_t n; (n = relist.pop(batch, 256)) > 0;) {
        for (uint32_t k = 0; k < n; ++k) place(batch[k]);
    }

    if (flush_pending.exchange(false, std::memory_order_acq_rel)) flush_cursor = 0;
    if (flush_cursor != UINT32_MAX && !scan_flushed(budget * 16)) more = true;

    uint64_t next = kNever;
    unsigned work = 0;
    for (unsigned k = 0; k < kTimeoutClasses; ++k) {
        for (uint32_t i; (i = lists.head(k)) != ExpiryLists::kNil;) {
            if (work++ >= budget) {
                more = true;
                return now;
            }
            const ExpiryNode node = lists.node(i);
            const Connection& c = table.slot(i);
            const uint32_t seq = load_shared(c.seq, std::memory_order_acquire);
            if (seq != node.seq || load_shared(c.status) != kSlotLive) {
                lists.unlink(i);  // freed or reused since: the new occupant has its own node
                continue;
            }
            const uint64_t expiry = load_shared(c.expiry);
            const uint8_t cls = load_shared(c.timeout_class);
            if (expiry <= now || load_shared(c.killed)) {
                if (!expire.push({i, seq})) {
                    more = true;  // the worker is behind: try again next round
                    return now;
                }
                lists.unlink(i);
                continue;
            }
            if (cls != k || expiry > node.placed_expiry) {
                lists.unlink(i);
                if (cls < kTimeoutClasses) lists.append(i, cls, seq, expiry);
                continue;
            }
            next = std::min(next, expiry);
            break;
        }
    }
    return next;
}

// ---- Checks ----

std::string ShardState::check_lists() const {
    uint64_t listed = 0;
    for (unsigned k = 0; k < kTimeoutClasses; ++k) {
        uint32_t before = ExpiryLists::kNil;
        for (uint32_t i = lists.head(k); i != ExpiryLists::kNil; i = lists.node(i).next) {
            if (++listed > lists.size()) return cat("expiration list ", k, " loops or is too long");
            const ExpiryNode& n = lists.node(i);
            if (!n.listed || n.list != k) return cat("slot ", i, " on list ", k, " says otherwise");
            if (n.prev != before) return cat("slot ", i, " on list ", k, " has a wrong previous link");
            before = i;
        }
    }
    if (listed != lists.size()) return cat(listed, " nodes on the lists, ", lists.size(), " counted");

    std::set<uint32_t> relisting, expiring;
    relist.for_each([&](uint32_t i) { relisting.insert(i); });
    expire.for_each([&](const ExpireMessage& m) {
        if (table.slot(m.index).seq == m.seq) expiring.insert(m.index);
    });
    std::string problem;
    table.for_each([&](uint32_t i, const Connection& c) {
        if (!problem.empty()) return;
        const ExpiryNode& n = lists.node(i);
        const bool pending = c.relist_pending != 0;
        if (pending != (relisting.count(i) != 0)) {
            problem = cat("slot ", i, ": relist flag ", pending, " but ", relisting.count(i), " messages");
        } else if (!(n.listed && n.seq == c.seq) && !pending && !expiring.count(i)) {
            problem = cat("slot ", i, " is out of the cleanup thread's reach");
        }
    });
    return problem;
}

}  // namespace flowpath
