// The worker's side of a shard: the ct action over a burst (Open vSwitch
// 3.1's conntrack_execute, process_one, conn_update_state, conn_not_found,
// and the UDP/other and ICMP state machines), and maintain().
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "shard.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {

// Packets handled per lookup burst.
constexpr unsigned kChunk = 32;
// Expire messages maintain() takes per call: bounded work per poll round.
constexpr unsigned kMaintainBudget = 256;

enum class Path : uint8_t { fast, invalid, lookup };

// Which state machine a connection follows (Open vSwitch picks it by the IP
// protocol alone).
enum class Machine : uint8_t { tcp, icmp4, icmp6, udp, other };
Machine machine_of(uint8_t nw_proto) {
    switch (nw_proto) {
        case kProtoTcp: return Machine::tcp;
        case kProtoIcmp: return Machine::icmp4;
        case kProtoIcmpv6: return Machine::icmp6;
        case kProtoUdp: return Machine::udp;
        default: return Machine::other;
    }
}

TimeoutClass other_class(Machine machine, uint8_t state) {
    static constexpr TimeoutClass kUdp[] = {TimeoutClass::udp_first, TimeoutClass::udp_multiple,
                                            TimeoutClass::udp_bidir};
    static constexpr TimeoutClass kOther[] = {TimeoutClass::other_first, TimeoutClass::other_multiple,
                                              TimeoutClass::other_bidir};
    return machine == Machine::udp ? kUdp[state] : kOther[state];
}

}  // namespace

// ---- Counters ----

void ShardCounters::created_one() {
    store_shared(seq, seq + 1);
    std::atomic_thread_fence(std::memory_order_release);
    store_shared(connections, connections + 1);
    store_shared(created, created + 1);
    store_shared(seq, seq + 1, std::memory_order_release);
}

void ShardCounters::removed_one(bool by_flush) {
    store_shared(seq, seq + 1);
    std::atomic_thread_fence(std::memory_order_release);
    store_shared(connections, connections - 1);
    if (by_flush) store_shared(flushed, flushed + 1);
    else store_shared(expired, expired + 1);
    store_shared(seq, seq + 1, std::memory_order_release);
}

void ShardCounters::sample(CtStats& into) const {
    for (;;) {
        const uint32_t before = load_shared(seq, std::memory_order_acquire);
        const uint64_t live = load_shared(connections), made = load_shared(created), gone = load_shared(expired),
                       flushed_now = load_shared(flushed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (!(before & 1) && load_shared(seq) == before) {
            into.connections += live;
            into.created += made;
            into.expired += gone;
            into.flushed += flushed_now;
            break;
        }
    }
    into.refused += refused.get();
    into.invalid += invalid.get();
}

uint64_t TrackerShared::live_total() const {
    uint64_t total = 0;
    for (const ShardState* s : shards) total += load_shared(s->counters.connections);
    return total;
}

ShardState::ShardState(TrackerShared& shared_state, uint32_t capacity, int socket)
    : shared(shared_state),
      table(capacity, socket),
      // At most one relist message per slot is in flight (relist_pending):
      // the ring can never be full.
      relist(capacity),
      expire(std::min<uint32_t>(capacity, 1u << 16)),
      lists(capacity) {}

// ---- The ct action ----

unsigned ShardState::execute(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count,
                             uint64_t now, bool stop_at_dependency) {
    unsigned done = 0;
    while (done < count) {
        const unsigned n = std::min(count - done, kChunk);
        const unsigned ran = execute_chunk(action, packets + done, metas + done, n, now, stop_at_dependency);
        done += ran;
        if (ran < n) break;
        // A later chunk's packets may depend on this chunk's too.
        if (stop_at_dependency && done < count) break;
    }
    return done;
}

namespace {

// The packets of one call that an earlier packet's later actions may change
// the verdict of (ShardState::execute, stop_at_dependency): keys of packets
// that found no connection and may commit one after this ct, connections
// whose mark a later ct may rewrite. A 64-bit filter keeps the common case
// (no such packet) to a bit test.
struct Dependencies {
    const ConnKey* open_keys[kChunk];
    uint32_t open_hashes[kChunk];
    uint32_t reply_hashes[kChunk];  // of open_keys[k]->reversed(): a commit indexes both
    unsigned open = 0;
    uint64_t open_filter = 0;
    uint32_t conns[kChunk];
    unsigned conn_count = 0;
    uint64_t conn_filter = 0;

    static uint64_t bit(uint32_t h) { return uint64_t{1} << (h & 63); }

    void add_open(const ConnKey& key, uint32_t hash, uint32_t reply_hash) {
        open_keys[open] = &key;
        open_hashes[open] = hash;
        reply_hashes[open++] = reply_hash;
        open_filter |= bit(hash) | bit(reply_hash);
    }
    void add_conn(uint32_t index) {
        conns[conn_count++] = index;
        conn_filter |= bit(index);
    }
    // The key an earlier packet may commit, in either direction (a SYN-ACK
    // behind its SYN).
    bool opened(const ConnKey& key, uint32_t hash) const {
        if (!(open_filter & bit(hash))) return false;
        for (unsigned k = 0; k < open; ++k) {
            if (open_hashes[k] == hash && *open_keys[k] == key) return true;
            if (reply_hashes[k] == hash && open_keys[k]->reversed() == key) return true;
        }
        return false;
    }
    // An ICMP error: about a connection an earlier packet may open, in
    // either direction (rare: a scan).
    bool opened_either_way(const ConnKey& key) const {
        if (open == 0) return false;
        const ConnKey reply = key.reversed();
        for (unsigned k = 0; k < open; ++k) {
            if (*open_keys[k] == key || *open_keys[k] == reply) return true;
        }
        return false;
    }
    bool shares(uint32_t index) const {
        if (!(conn_filter & bit(index))) return false;
        for (unsigned k = 0; k < conn_count; ++k) {
            if (conns[k] == index) return true;
        }
        return false;
    }
};

// The index buckets the burst will insert into or delete from are mostly
// cold (the index of a large table is far bigger than the cache): a packet a
// committing ct found no connection for inserts both keys (the forward
// key's bucket is warm from the lookup); a SYN that found one may reopen it,
// deleting both. Prefetching those other keys' buckets now overlaps their
// misses, where each insert or delete alone would wait for one after another.
void warm_index(const ConnTable& table, const CtAction& action, const CtParsed* parsed, const Path* path,
                unsigned count, const ConnRef* refs, unsigned lookups) {
    for (unsigned i = 0, k = 0; i < count && k < lookups; ++i) {
        if (path[i] != Path::lookup) continue;
        if (!refs[k]) {
            if (action.commit && !parsed[i].related) table.prefetch(table.hash(parsed[i].key.reversed()));
        } else if (parsed[i].key.nw_proto == kProtoTcp && (parsed[i].tcp.flags & (kTcpSyn | kTcpAck)) == kTcpSyn) {
            // (Only a connection closed on both sides is reopened: a SYN
            // retransmitted on a live one changes no key.)
            const Connection& c = table.slot(refs[k].index());
            if (tcp_may_reopen(c.tcp)) table.prefetch(table.hash(c.key[refs[k].side() ^ 1]));
        }
        ++k;
    }
}

}  // namespace

unsigned ShardState::execute_chunk(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count,
                                   uint64_t now, bool stop_at_dependency) {
    CtParsed parsed[kChunk];
    Path path[kChunk];
    const ConnKey* keys[kChunk];
    uint32_t hashes[kChunk];
    ConnRef refs[kChunk];
    unsigned lookups = 0;

    // Which packets need a lookup: not those that remember a connection of
    // this zone from an earlier ct (Open vSwitch's process_one_fast), nor
    // those whose key cannot be had (+inv at once).
    for (unsigned i = 0; i < count; ++i) {
        if (remembered(metas[i].conn, action.zone)) {
            path[i] = Path::fast;
            continue;
        }
        if (!extract_conn_key(packets[i], action.zone, parsed[i])) {
            path[i] = Path::invalid;
            continue;
        }
        path[i] = Path::lookup;
        keys[lookups++] = &parsed[i].key;
    }
    // Hashed once all are extracted: a key just written field by field and
    // read at once as words stalls on store forwarding.
    for (unsigned k = 0; k < lookups; ++k) hashes[k] = table.hash(*keys[k]);
    // (The lookup brings in the slots it finds, both lines: the keys and
    // expiry, the TCP sides.)
    if (lookups > 0) table.lookup_burst(keys, hashes, lookups, refs);
    if (lookups > 1) warm_index(table, action, parsed, path, count, refs, lookups);

    Dependencies deps;
    const bool track_conns = stop_at_dependency && marks_rewritten;
    const uint64_t changes_at_lookup = structural_changes;
    unsigned j = 0;
    for (unsigned i = 0; i < count; ++i) {
        CtMeta& meta = metas[i];
        switch (path[i]) {
            case Path::fast:
                if (remembered(meta.conn, action.zone)) {
                    if (track_conns && i > 0 && deps.shares(meta.conn.index)) return i;
                    process_fast(action, meta);
                } else if (!extract_conn_key(packets[i], action.zone, parsed[i])) {
                    // An earlier packet of the burst removed the connection.
                    invalid_packet(action, meta);
                } else {
                    const uint32_t hash = table.hash(parsed[i].key);
                    if (stop_at_dependency && i > 0 && deps.opened(parsed[i].key, hash)) return i;
                    process_one(action, parsed[i], hash, table.lookup(parsed[i].key, hash), meta, now);
                    if (stop_at_dependency && !meta.conn.valid() && !(meta.state & kCtInvalid)) {
                        deps.add_open(parsed[i].key, hash, table.hash(parsed[i].key.reversed()));
                    }
                }
                break;
            case Path::invalid:
                invalid_packet(action, meta);
                break;
            case Path::lookup: {
                if (stop_at_dependency && i > 0 &&
                    (parsed[i].related ? deps.opened_either_way(parsed[i].key)
                                       : deps.opened(parsed[i].key, hashes[j]))) {
                    return i;
                }
                // An earlier packet of the burst created or removed a
                // connection: the burst lookup may be stale.
                const ConnRef ref =
                    structural_changes == changes_at_lookup ? refs[j] : table.lookup(parsed[i].key, hashes[j]);
                if (track_conns && i > 0 && ref && deps.shares(ref.index())) return i;
                process_one(action, parsed[i], hashes[j], ref, meta, now);
                if (stop_at_dependency && !meta.conn.valid() && !(meta.state & kCtInvalid)) {
                    deps.add_open(parsed[i].key, hashes[j], table.hash(parsed[i].key.reversed()));
                }
                ++j;
                break;
            }
        }
        if (track_conns && meta.conn.valid()) deps.add_conn(meta.conn.index);
    }
    return count;
}

bool ShardState::remembered(const ConnHandle& handle, uint16_t zone) const {
    if (!handle.valid() || handle.index >= table.capacity()) return false;
    const Connection& c = table.slot(handle.index);
    return c.seq == handle.seq && c.status == kSlotLive && c.key[0].zone == zone;
}

bool ShardState::original_tuple(const CtMeta& meta, const CtPacket& packet, CtTuple& out) const {
    if (!(meta.state & kCtTracked) || (meta.state & kCtInvalid)) return false;
    ConnKey key;
    if (remembered(meta.conn, meta.zone)) {
        key = table.slot(meta.conn.index).key[0];
    } else {
        // Not committed: Open vSwitch writes the key it looked up.
        CtParsed parsed;
        if (!(meta.state & kCtNew) || !extract_conn_key(packet, meta.zone, parsed) || parsed.related) return false;
        key = parsed.key;
    }
    out = CtTuple{};
    const bool v6 = key.family() == AddressFamily::ipv6;
    std::memcpy(out.src, key.src, v6 ? 16 : 4);
    std::memcpy(out.dst, key.dst, v6 ? 16 : 4);
    out.ipv6 = v6;
    out.nw_proto = key.nw_proto;
    if (key.nw_proto == kProtoIcmp) {
        // Open vSwitch's ICMPv4 tuple is the query's type and code (queries
        // have code 0); ICMPv6 keeps the id in both ports, as here.
        out.src_port = htons(icmp_query_type(key.icmp_query()));
        out.dst_port = 0;
    } else {
        out.src_port = key.src_port;
        out.dst_port = key.dst_port;
    }
    return true;
}

void ShardState::invalid_packet(const CtAction& action, CtMeta& meta) {
    // The remembered connection stays, as in Open vSwitch.
    meta.state = kCtInvalid | kCtTracked;
    meta.zone = action.zone;
    meta.mark = 0;
    counters.invalid.add(1);
}

void ShardState::process_fast(const CtAction& action, CtMeta& meta) {
    // The state bits stay those of the earlier ct; mark and zone are read
    // again, and the mark set.
    Connection& c = table.slot(meta.conn.index);
    meta.zone = action.zone;
    meta.mark = c.mark;
    if (action.set_mark) {
        meta.mark = action.mark_value | (meta.mark & ~action.mark_mask);
        store_shared(c.mark, meta.mark);
        marks_rewritten = true;
    }
}

bool ShardState::dead(const Connection& c, uint64_t now) const {
    return c.expiry <= now || load_shared(c.killed) != 0;
}

void ShardState::process_one(const CtAction& action, const CtParsed& parsed, uint32_t hash, ConnRef ref,
                             CtMeta& meta, uint64_t now) {
    // Entering a new zone forgets the state of the last one.
    uint8_t state = meta.state;
    if (state && meta.zone != action.zone) state = 0;

    // An expired or flushed connection is no connection.
    uint32_t conn = UINT32_MAX;
    bool reply = false;
    if (ref && !dead(table.slot(ref.index()), now)) {
        conn = ref.index();
        reply = ref.side() == kReplySide;
    }

    bool create = false;
    bool conn_removed = false;
    const bool existed = conn != UINT32_MAX;
    if (conn != UINT32_MAX) {
        if (parsed.related) {
            state |= kCtRelated;
            if (reply) state |= kCtReply;
        } else {
            switch (update(conn, reply, parsed, now)) {
                case CtUpdate::valid:
                    state = static_cast<uint8_t>((state | kCtEstablished) & ~kCtNew);
                    if (reply) state |= kCtReply;
                    break;
                case CtUpdate::invalid:
                    state = kCtInvalid;
                    break;
                case CtUpdate::reopen:
                    remove(conn);
                    conn_removed = true;
                    conn = UINT32_MAX;
                    create = true;
                    break;
                case CtUpdate::valid_new:
                    state |= kCtNew;
                    break;
            }
        }
    } else if (parsed.related) {
        state = kCtInvalid;  // an ICMP error about no connection we know
    } else {
        create = true;
    }

    if (create) {
        bool valid_new;
        switch (machine_of(parsed.key.nw_proto)) {
            case Machine::tcp: valid_new = tcp_valid_new(parsed.tcp); break;
            case Machine::icmp4: valid_new = parsed.l4_type == 8 || parsed.l4_type == 13 || parsed.l4_type == 15; break;
            case Machine::icmp6: valid_new = parsed.l4_type == 128; break;
            default: valid_new = true; break;
        }
        if (!valid_new) {
            state = kCtInvalid;
        } else {
            state = kCtNew;
            // The lookup just now (or the removal of a reopened one) found
            // the forward key absent: the insert need not look again.
            if (action.commit) conn = commit(parsed, hash, now, !ref || conn_removed);
        }
    }

    meta.state = state | kCtTracked;
    meta.zone = action.zone;
    if (conn != UINT32_MAX) {
        Connection& c = table.slot(conn);
        meta.mark = c.mark;
        if (action.set_mark) {
            meta.mark = action.mark_value | (meta.mark & ~action.mark_mask);
            store_shared(c.mark, meta.mark);
            if (existed && !create) marks_rewritten = true;
        }
        meta.conn = ConnHandle{conn, c.seq};
    } else {
        meta.mark = 0;
        meta.conn = ConnHandle{};
    }
    if (state & kCtInvalid) counters.invalid.add(1);
}

CtUpdate ShardState::update(uint32_t index, bool reply, const CtParsed& parsed, uint64_t now) {
    Connection& c = table.slot(index);
    const Machine machine = machine_of(c.key[0].nw_proto);
    if (machine == Machine::tcp) {
        const TcpUpdate u = tcp_update(c.tcp, reply, parsed.tcp);
        const uint8_t shown = std::max(c.tcp[0].state, c.tcp[1].state);
        if (shown != c.proto_state) store_shared(c.proto_state, shown);
        if (u.refresh) refresh(index, u.timeout_class, now);
        return u.result;
    }

    uint8_t state = c.proto_state;
    CtUpdate result = CtUpdate::valid;
    TimeoutClass cls;
    if (machine == Machine::icmp4 || machine == Machine::icmp6) {
        if (reply && state == kIcmpFirst) state = kIcmpReply;
        else if (state == kIcmpFirst) result = CtUpdate::valid_new;
        cls = state == kIcmpFirst ? TimeoutClass::icmp_first : TimeoutClass::icmp_reply;
    } else {
        // Open vSwitch 3.1 keeps a connection +new until it saw a reply (as
        // the kernel's): every packet of one direction only is new.
        if (reply && state != kOtherBidir) {
            state = kOtherBidir;
        } else if (state != kOtherBidir) {
            state = kOtherMultiple;
            result = CtUpdate::valid_new;
        }
        cls = other_class(machine, state);
    }
    if (state != c.proto_state) store_shared(c.proto_state, state);
    refresh(index, cls, now);
    return result;
}

uint32_t ShardState::commit(const CtParsed& parsed, uint32_t hash, uint64_t now, bool forward_absent) {
    ConnInit init;
    const Machine machine = machine_of(parsed.key.nw_proto);
    TimeoutClass cls;
    switch (machine) {
        case Machine::tcp:
            tcp_new(init.tcp, parsed.tcp);
            init.proto_state = kTcpSynSent;
            cls = TimeoutClass::tcp_syn_sent;
            break;
        case Machine::icmp4:
        case Machine::icmp6:
            cls = TimeoutClass::icmp_first;
            break;
        default:
            cls = other_class(machine, kOtherFirst);
            break;
    }
    init.timeout_class = static_cast<uint8_t>(cls);
    uint64_t expiry;
    if (__builtin_add_overflow(now, shared.timeouts[cls], &expiry)) expiry = kNever;
    init.expiry = expiry;

    const ConnKey reply = parsed.key.reversed();
    for (int attempt = 0; attempt < 3; ++attempt) {
        // The limit counts connections not yet reclaimed, as Open vSwitch's.
        if (shared.live_total() >= shared.limit.load(std::memory_order_relaxed)) break;
        const InsertResult r = table.insert(parsed.key, hash, reply, init, forward_absent && attempt == 0);
        if (r) {
            counters.created_one();
            ++structural_changes;
            request_relist(r.ref.index());
            return r.ref.index();
        }
        // A key still held by a connection that expired or was flushed and
        // is not reclaimed yet: it goes now.
        if (r.status != InsertStatus::exists || !dead(table.slot(r.ref.index()), now)) break;
        remove(r.ref.index());
    }
    counters.refused.add(1);
    return UINT32_MAX;
}

void ShardState::refresh(uint32_t index, TimeoutClass timeout_class, uint64_t now) {
    // A packet only stores the new expiry: the cleanup thread finds it when
    // the connection reaches its list's head. A new class must reach the
    // cleanup thread, which moves the connection to that class's list.
    Connection& c = table.slot(index);
    uint64_t expiry;
    if (__builtin_add_overflow(now, shared.timeouts[timeout_class], &expiry)) expiry = kNever;
    store_shared(c.expiry, expiry);
    const auto cls = static_cast<uint8_t>(timeout_class);
    if (c.timeout_class != cls) {
        store_shared(c.timeout_class, cls);
        request_relist(index);
    }
}

void ShardState::request_relist(uint32_t index) {
    Connection& c = table.slot(index);
    // The flag keeps one message per slot in flight; the cleanup thread
    // clears it before reading the slot, so a change after that sends
    // another. The exchange (a full barrier) orders this store against the
    // cleanup thread's.
    if (std::atomic_ref<uint8_t>(c.relist_pending).exchange(1, std::memory_order_seq_cst) == 0) {
        if (!relist.push(index)) {
            // Cannot happen (the ring holds one message per slot); if it
            // did, the next class change tries again.
            store_shared(c.relist_pending, uint8_t{0});
            log(LogLevel::warn, "conntrack: relist ring full");
        }
    }
}

void ShardState::remove(uint32_t index) {
    const bool flushed = load_shared(table.slot(index).killed) != 0;
    table.remove(index);
    counters.removed_one(flushed);
    ++structural_changes;
}

// ---- Expiry, the worker's part ----

unsigned ShardState::maintain(uint64_t now) {
    ExpireMessage messages[64];
    unsigned freed = 0, seen = 0;
    while (seen < kMaintainBudget) {
        const uint32_t n = expire.pop(messages, 64);
        if (n == 0) break;
        seen += n;
        for (uint32_t k = 0; k < n; ++k) {
            const ExpireMessage& m = messages[k];
            const Connection& c = table.slot(m.index);
            if (c.seq != m.seq || c.status != kSlotLive) continue;  // already gone
            if (dead(c, now)) {
                remove(m.index);
                ++freed;
            } else {
                request_relist(m.index);  // refreshed since the cleanup thread looked
            }
        }
    }
    return freed;
}

}  // namespace flowpath
