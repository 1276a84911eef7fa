// The slow-path threads: upcall batches in, replies out, revalidation after
// rule changes, statistics and idle expiry, rule timeouts.
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <thread>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"
#include "flowpath/slowpath.hpp"

namespace flowpath {

namespace {
// Reply ops one revalidation or sweep slice adds before the reply is sent:
// a worker applies a reply between two bursts, so this bounds the pause.
constexpr unsigned kSliceOps = 256;
// Statistics push and idle expiry run this often, as Open vSwitch's
// revalidators (max-revalidator 500 ms): each sweep reads every megaflow's
// counters from the worker's replica, lines the worker writes on every hit,
// so a shorter period costs both cores. (dump-flows asks for a push first.)
constexpr uint64_t kSweepIntervalMs = 500;
constexpr uint64_t kRuleTimeoutIntervalMs = 200;
// How many packets ahead of its extraction a packet's bytes are prefetched.
constexpr unsigned kExtractPrefetch = 4;
// Idle: spin this many rounds, then sleep in short steps (an upcall waits at
// most ~50 us more) until idle this long, then park on the doorbell, waking
// at least this often for the timers and for rule changes published
// without waiting (a controller's flow_mods).
constexpr unsigned kSpinRounds = 64;
constexpr auto kIdleSleep = std::chrono::microseconds(50);
constexpr uint64_t kParkAfterUs = 1000;
constexpr int kParkMs = 1;

rte_ring* make_ring(const std::string& name, unsigned count, unsigned element_size) {
    rte_ring* ring = rte_ring_create_elem(name.c_str(), element_size, count, SOCKET_ID_ANY,
                                          RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    if (!ring) throw Error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
    return ring;
}
}  // namespace

Doorbell::Doorbell() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw Error(std::string("cannot create the slow path's eventfd: ") + std::strerror(errno));
}

Doorbell::~Doorbell() { ::close(fd_); }

void Doorbell::wake() noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
}

void Doorbell::park(int timeout_ms) noexcept {
    pollfd fd{fd_, POLLIN, 0};
    if (::poll(&fd, 1, timeout_ms) > 0) {
        uint64_t count;
        [[maybe_unused]] const ssize_t n = ::read(fd_, &count, sizeof count);
    }
    parked_.store(false, std::memory_order_relaxed);
}

UpcallChannel::UpcallChannel(unsigned worker_index, unsigned upcall_capacity) {
    const std::string suffix = std::to_string(worker_index);
    upcalls_ = make_ring("fp_upcalls_" + suffix, upcall_capacity, sizeof(Upcall));
    // Every reply answers at least one upcall or carries a fence or a slice
    // of changes; the reply rings are sized so the slow path never waits.
    replies_ = make_ring("fp_replies_" + suffix, upcall_capacity * 2, sizeof(Reply*));
    recycled_ = make_ring("fp_recycled_" + suffix, upcall_capacity * 2, sizeof(Reply*));
    packet_ins_ = make_ring("fp_packet_ins_" + suffix, kPacketInRingSize, sizeof(PacketInUpcall));
}

UpcallChannel::~UpcallChannel() {
    rte_ring_free(upcalls_);
    rte_ring_free(replies_);
    rte_ring_free(recycled_);
    rte_ring_free(packet_ins_);
}

/// One slow-path thread and what it owns.
struct SlowPath::Thread {
    unsigned index = 0;
    unsigned cpu = 0;
    std::thread thread;
    std::vector<unsigned> workers;                      // worker indices it serves
    std::vector<std::unique_ptr<MissHandler>> handlers;  // parallel to workers
    std::vector<std::vector<Reply*>> spare;             // reusable replies per worker
    std::vector<std::unique_ptr<Reply>> replies;        // every reply it made
    std::atomic<uint64_t> revalidated{0};               // rule generation all its megaflows are at

    std::mutex task_lock;
    std::vector<std::function<void()>> tasks;  // run on this thread between batches
    Doorbell doorbell;                         // rung by its workers, tasks, waiting rule changes, stop

    // Work queued for the thread (checked once more before it parks).
    bool has_work(const std::vector<UpcallChannel*>& channels) {
        for (unsigned w : workers) {
            if (rte_ring_count(channels[w]->upcalls()) || rte_ring_count(channels[w]->packet_ins())) return true;
        }
        std::lock_guard guard(task_lock);
        return !tasks.empty();
    }

    Reply* take_reply(unsigned w, UpcallChannel& channel) {
        Reply* recycled[64];
        const unsigned n = rte_ring_sc_dequeue_burst(channel.recycled(), reinterpret_cast<void**>(recycled), 64, nullptr);
        spare[w].insert(spare[w].end(), recycled, recycled + n);
        if (spare[w].empty()) {
            replies.push_back(std::make_unique<Reply>());
            return replies.back().get();
        }
        Reply* reply = spare[w].back();
        spare[w].pop_back();
        reply->clear();
        return reply;
    }
};

SlowPath::SlowPath(std::unique_ptr<RuleSet> rules, SlowPathPlan plan, std::vector<UpcallChannel*> channels,
                   std::vector<const MegaflowCache*> replicas)
    : rules_(std::move(rules)), plan_(std::move(plan)), channels_(std::move(channels)), replicas_(std::move(replicas)) {
    if (plan_.cpus.empty()) throw Error("the slow path needs at least one CPU");
    for (unsigned t = 0; t < plan_.cpus.size(); ++t) {
        auto thread = std::make_unique<Thread>();
        thread->index = t;
        thread->cpu = plan_.cpus[t];
        threads_.push_back(std::move(thread));
    }
    for (unsigned w = 0; w < channels_.size(); ++w) {
        Thread& thread = *threads_[w % threads_.size()];
        thread.workers.push_back(w);
        thread.handlers.push_back(std::make_unique<MissHandler>(plan_.flow_limit, replicas_[w]));
        thread.spare.emplace_back();
        channels_[w]->set_doorbell(&thread.doorbell);
    }
}

SlowPath::~SlowPath() { stop(); }

void SlowPath::start() {
    stop_.store(false);
    for (auto& owned : threads_) {
        Thread& thread = *owned;
        thread.thread = std::thread([this, &thread] { run(thread); });
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(thread.cpu, &cpus);
        if (pthread_setaffinity_np(thread.thread.native_handle(), sizeof cpus, &cpus) != 0) {
            log(LogLevel::warn, "slow path thread ", thread.index, ": cannot pin to CPU ", thread.cpu);
        }
        pthread_setname_np(thread.thread.native_handle(), ("fp-slowpath" + std::to_string(thread.index)).c_str());
    }
    running_ = true;
}

void SlowPath::stop() {
    if (!running_) return;
    stop_.store(true);
    for (auto& thread : threads_) {
        thread->doorbell.ring();
        if (thread->thread.joinable()) thread->thread.join();
    }
    running_ = false;
    // Workers are gone: whatever the rings still hold is freed here.
    for (UpcallChannel* channel : channels_) {
        Upcall upcall;
        while (rte_ring_sc_dequeue_elem(channel->upcalls(), &upcall, sizeof upcall) == 0) {
            rte_pktmbuf_free(static_cast<rte_mbuf*>(upcall.packet));
        }
        Reply* reply;
        while (rte_ring_sc_dequeue(channel->replies(), reinterpret_cast<void**>(&reply)) == 0) {
            for (const ReplyOp& op : reply->ops) {
                if (op.kind == ReplyOp::Kind::packet || op.kind == ReplyOp::Kind::transmit ||
                    op.kind == ReplyOp::Kind::inject) {
                    rte_pktmbuf_free(static_cast<rte_mbuf*>(op.packet));
                }
            }
        }
        PacketInUpcall packet_in;
        while (rte_ring_sc_dequeue_elem(channel->packet_ins(), &packet_in, sizeof packet_in) == 0) {
            rte_pktmbuf_free(static_cast<rte_mbuf*>(packet_in.packet));
        }
    }
}

namespace {
// Sends `reply` to the worker; waits while its ring is full (the worker
// empties it every poll round).
void send(UpcallChannel& channel, Reply* reply, const std::atomic<bool>& stop) {
    while (rte_ring_sp_enqueue(channel.replies(), reply) != 0) {
        if (stop.load(std::memory_order_relaxed)) return;  // stop() frees what is left
        rte_pause();
    }
}
}  // namespace

void SlowPath::run(Thread& thread) {
    const uint64_t ticks_per_ms = std::max<uint64_t>(rte_get_tsc_hz() / 1000, 1);
    const uint64_t max_idle_ticks = ticks_per_ms * plan_.max_idle_ms;
    uint64_t next_sweep_ms = rule_clock_ms() + kSweepIntervalMs;
    uint64_t next_timeouts_ms = rule_clock_ms() + kRuleTimeoutIntervalMs;
    bool sweeping = false;
    Upcall upcalls[kUpcallBatch];
    Miniflow flows[kUpcallBatch];
    PacketLayout layouts[kUpcallBatch];
    unsigned idle_rounds = 0;
    uint64_t idle_since = 0;  // TSC when the thread last had work
    const uint64_t park_after_ticks = std::max<uint64_t>(rte_get_tsc_hz() / 1000000, 1) * kParkAfterUs;
    std::vector<uint8_t> packet_in_bytes;  // a chained packet-in's frame, gathered

    while (!stop_.load(std::memory_order_relaxed)) {
        bool busy = false;

        // A rule change: every megaflow re-translated, then a fence each.
        // Not a sign that upcalls follow: spinning after it would take the
        // CPU from whoever changes the rules (the OpenFlow agent, answering
        // ovs-ofctl's flow_mods one round trip at a time on this core).
        if (rules_.generation() != thread.revalidated.load(std::memory_order_relaxed)) {
            revalidate(thread, ticks_per_ms);
        }

        // Upcalls, one batch per worker in turn.
        for (unsigned i = 0; i < thread.workers.size(); ++i) {
            UpcallChannel& channel = *channels_[thread.workers[i]];
            const unsigned count =
                rte_ring_sc_dequeue_burst_elem(channel.upcalls(), upcalls, sizeof(Upcall), kUpcallBatch, nullptr);
            if (count == 0) continue;
            busy = true;
            // The packets were last written on the worker's core: start every
            // header's transfer at once, and each packet's bytes a few ahead.
            for (unsigned n = 0; n < count; ++n) rte_prefetch0(upcalls[n].packet);
            for (unsigned n = 0; n < count; ++n) {
                if (n + kExtractPrefetch < count)
                    rte_prefetch0(rte_pktmbuf_mtod(static_cast<const rte_mbuf*>(upcalls[n + kExtractPrefetch].packet),
                                                   const void*));
                const rte_mbuf* mbuf = static_cast<const rte_mbuf*>(upcalls[n].packet);
                extract_upcall(rte_pktmbuf_mtod(mbuf, const uint8_t*), rte_pktmbuf_data_len(mbuf),
                               rte_pktmbuf_pkt_len(mbuf), upcalls[n].meta, flows[n], layouts[n]);
            }
            Reply* reply = thread.take_reply(i, channel);
            rules_.read([&](const RuleSet& rules, uint64_t generation) {
                thread.handlers[i]->handle(rules, generation, flows, layouts, upcalls, count, rte_rdtsc(), *reply);
                return 0;
            });
            send(channel, reply, stop_);
        }

        // Packet-ins, a burst per worker: to the agent's queue, then freed.
        for (unsigned i = 0; i < thread.workers.size(); ++i) {
            PacketInUpcall packet_ins[kUpcallBatch];
            const unsigned count = rte_ring_sc_dequeue_burst_elem(channels_[thread.workers[i]]->packet_ins(), packet_ins,
                                                                  sizeof(PacketInUpcall), kUpcallBatch, nullptr);
            if (count) busy = true;
            SlowPathEvents* events = events_.load(std::memory_order_acquire);
            for (unsigned n = 0; n < count; ++n) {
                rte_mbuf* mbuf = static_cast<rte_mbuf*>(packet_ins[n].packet);
                if (events) {
                    // A chained frame is gathered whole.
                    const uint32_t len = rte_pktmbuf_pkt_len(mbuf);
                    if (mbuf->nb_segs > 1) packet_in_bytes.resize(len);
                    const void* data = rte_pktmbuf_read(mbuf, 0, len, packet_in_bytes.data());
                    events->packet_in(packet_ins[n], static_cast<const uint8_t*>(data), len);
                }
                rte_pktmbuf_free(mbuf);
            }
        }

        // Statistics to the rules and idle expiry, a slice at a time.
        const uint64_t now_ms = rule_clock_ms();
        if (!sweeping && now_ms >= next_sweep_ms) sweeping = true;
        if (sweeping) {
            const uint64_t now = rte_rdtsc();
            const uint64_t idle_before = now > max_idle_ticks ? now - max_idle_ticks : 0;
            bool all_done = true;
            rules_.read([&](const RuleSet&, uint64_t) {  // rules named by megaflows stay alive meanwhile
                for (unsigned i = 0; i < thread.workers.size(); ++i) {
                    UpcallChannel& channel = *channels_[thread.workers[i]];
                    Reply* reply = thread.take_reply(i, channel);
                    all_done &= thread.handlers[i]->sweep(idle_before, now_ms, *reply, kSliceOps);
                    if (reply->ops.empty()) {
                        thread.spare[i].push_back(reply);
                    } else {
                        send(channel, reply, stop_);
                    }
                }
                return 0;
            });
            if (all_done) {
                sweeping = false;
                next_sweep_ms = now_ms + kSweepIntervalMs;
            }
        }

        // Rules whose idle or hard timeout passed (thread 0 alone).
        if (thread.index == 0 && now_ms >= next_timeouts_ms) {
            next_timeouts_ms = now_ms + kRuleTimeoutIntervalMs;
            expire_rules(now_ms);
        }

        std::vector<std::function<void()>> tasks;
        {
            std::lock_guard guard(thread.task_lock);
            tasks.swap(thread.tasks);
        }
        for (auto& task : tasks) task();

        // Idle: spin, then short sleeps, then park until rung. (A rule
        // change alone does not count as work: see revalidate above.)
        if (busy || !tasks.empty()) {
            idle_rounds = 0;
        } else if (++idle_rounds <= kSpinRounds) {
            if (idle_rounds == 1) idle_since = rte_rdtsc();
            rte_pause();
        } else if (rte_rdtsc() - idle_since < park_after_ticks) {
            std::this_thread::sleep_for(kIdleSleep);
        } else {
            thread.doorbell.prepare_to_park();
            if (stop_.load(std::memory_order_relaxed) || thread.has_work(channels_)) {
                thread.doorbell.cancel_park();
            } else {
                thread.doorbell.park(kParkMs);
            }
        }
    }
}

// Re-translates every megaflow of the thread's workers older than the
// current rule generation and sends each worker a fence of it.
void SlowPath::revalidate(Thread& thread, uint64_t ticks_per_ms) {
    const uint64_t started = rte_rdtsc();
    const uint64_t generation = rules_.read([&](const RuleSet& rules, uint64_t current) {
        for (unsigned i = 0; i < thread.workers.size(); ++i) {
            UpcallChannel& channel = *channels_[thread.workers[i]];
            for (bool done = false; !done;) {
                Reply* reply = thread.take_reply(i, channel);
                done = thread.handlers[i]->revalidate(rules, current, *reply, kSliceOps);
                ReplyOp fence{ReplyOp::Kind::fence};
                fence.generation = current;
                if (done) reply->ops.push_back(fence);
                send(channel, reply, stop_);
            }
        }
        return current;
    });
    const uint64_t micros = (rte_rdtsc() - started) * 1000 / ticks_per_ms;
    for (auto& handler : thread.handlers) {
        handler->counters().revalidations.add(1);
        handler->counters().last_revalidation_us.set(micros);
    }
    thread.revalidated.store(generation, std::memory_order_release);
}

// Removes the rules whose hard or idle timeout passed at `now_ms`, telling
// the events those that asked for it.
void SlowPath::expire_rules(uint64_t now_ms) {
    std::vector<std::pair<uint32_t, bool>> expired = rules_.read([&](const RuleSet& rules, uint64_t) {
        std::vector<std::pair<uint32_t, bool>> ids;  // id, by the hard timeout
        rules.for_each_timed([&](const RuleEntry& entry) {
            const Rule& rule = entry.rule;
            if (rule.hard_timeout && now_ms >= entry.added_ms + rule.hard_timeout * 1000ull) {
                ids.emplace_back(entry.id, true);
            } else if (rule.idle_timeout &&
                       now_ms >= entry.used_ms.load(std::memory_order_relaxed) + rule.idle_timeout * 1000ull) {
                ids.emplace_back(entry.id, false);
            }
        });
        return ids;
    });
    if (expired.empty()) return;
    SlowPathEvents* events = events_.load(std::memory_order_acquire);
    std::vector<RuleExpiry> reported;
    rules_.change([&](RuleSet& rules) {
        for (const auto& [id, hard] : expired) {
            const RuleEntry* entry = rules.find_id(id);
            if (!entry) continue;
            if (events && (entry->flags & kRuleFlagSendFlowRemoved)) {
                reported.push_back(RuleExpiry{entry->rule, hard, now_ms - entry->added_ms,
                                              entry->packets.load(std::memory_order_relaxed),
                                              entry->bytes.load(std::memory_order_relaxed)});
            }
            rules.remove_id(id);
        }
    });
    for (RuleExpiry& expiry : reported) events->rule_expired(std::move(expiry));
    log(LogLevel::debug, "rules expired by their timeouts: ", expired.size());
}

bool SlowPath::inject(const std::vector<Injected>& packets, unsigned timeout_ms) {
    const auto free_all = [&] {
        for (const Injected& p : packets) rte_pktmbuf_free(static_cast<rte_mbuf*>(p.packet));
    };
    if (!running_ || channels_.empty()) {
        free_all();
        return false;
    }
    // Worker 0's replies come from thread 0 alone (its ring has one producer).
    Thread& thread = *threads_[0];
    try {
        run_on(thread, [&thread, this, packets] {
            // After the rule changes made before it (a packet-out after a
            // flow_mod runs by the flow_mod): their fence goes first.
            if (rules_.generation() != thread.revalidated.load(std::memory_order_relaxed)) {
                revalidate(thread, std::max<uint64_t>(rte_get_tsc_hz() / 1000, 1));
            }
            UpcallChannel& channel = *channels_[0];
            Reply* reply = thread.take_reply(0, channel);
            for (const Injected& p : packets) {
                ReplyOp op{p.pipeline ? ReplyOp::Kind::inject : ReplyOp::Kind::transmit};
                op.packet = p.packet;
                op.slot = p.port;
                op.payload = p.recirc_id;
                reply->ops.push_back(op);
            }
            send(channel, reply, stop_);
        }, timeout_ms);
    } catch (const Error& e) {
        log(LogLevel::warn, "packet-out: ", e.what());
        // The task still runs when the thread gets to it: the mbufs are its.
        return false;
    }
    return true;
}

void SlowPath::run_on(Thread& thread, const std::function<void()>& task, unsigned timeout_ms) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    {
        std::lock_guard guard(thread.task_lock);
        thread.tasks.push_back([task, done] {
            try {
                task();
                done->set_value();
            } catch (...) {
                done->set_exception(std::current_exception());
            }
        });
    }
    thread.doorbell.ring();
    if (finished.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
        throw Error("slow path thread " + std::to_string(thread.index) + " did not answer within " +
                    std::to_string(timeout_ms) + " ms");
    }
    finished.get();
}

uint64_t SlowPath::publish(const std::function<void(RuleSet&)>& fn) {
    const uint64_t generation = rules_.change(fn);
    if (!running_) {
        rules_.reclaim(generation);  // no megaflow yet
        return generation;
    }
    reclaim_revalidated();
    return generation;
}

// Entries retired by changes every thread has revalidated past are named by
// no megaflow any more.
void SlowPath::reclaim_revalidated() {
    uint64_t oldest = rules_.generation();
    for (const auto& thread : threads_) oldest = std::min(oldest, thread->revalidated.load(std::memory_order_acquire));
    rules_.reclaim(oldest);
}

void SlowPath::change(const std::function<void(RuleSet&)>& fn, unsigned timeout_ms) {
    const uint64_t generation = publish(fn);
    if (!running_) return;
    for (auto& thread : threads_) thread->doorbell.ring();  // a caller waits: revalidate now
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (UpcallChannel* channel : channels_) {
        while (channel->applied_generation.load(std::memory_order_acquire) < generation) {
            if (std::chrono::steady_clock::now() >= deadline) {
                throw Error("the rule change was applied, but not every worker confirmed it within " +
                            std::to_string(timeout_ms) + " ms");
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }
    // Every worker applied the fence, so every thread revalidated past it.
    reclaim_revalidated();
}

bool SlowPath::push_stats(unsigned timeout_ms) {
    if (!running_) return true;
    try {
        for (auto& thread : threads_) {
            run_on(*thread, [&] {
                const uint64_t now_ms = rule_clock_ms();
                rules_.read([&](const RuleSet&, uint64_t) {
                    for (unsigned i = 0; i < thread->workers.size(); ++i) {
                        UpcallChannel& channel = *channels_[thread->workers[i]];
                        for (bool done = false; !done;) {
                            Reply* reply = thread->take_reply(i, channel);
                            done = thread->handlers[i]->sweep(0, now_ms, *reply, kSliceOps);  // nothing is idle before 0
                            thread->spare[i].push_back(reply);
                        }
                    }
                    return 0;
                });
            }, timeout_ms);
        }
    } catch (const Error& e) {
        log(LogLevel::warn, e.what());
        return false;
    }
    return true;
}

std::string SlowPath::dump_cache(int worker) {
    std::string text;
    const uint64_t ticks_per_ms = std::max<uint64_t>(rte_get_tsc_hz() / 1000, 1);
    for (auto& thread : threads_) {
        for (unsigned i = 0; i < thread->workers.size(); ++i) {
            const unsigned w = thread->workers[i];
            if (worker >= 0 && static_cast<unsigned>(worker) != w) continue;
            std::string part;
            const auto dump = [&] {
                const MissHandler& handler = *thread->handlers[i];
                part = "worker " + std::to_string(w) + ": " + std::to_string(handler.registry().size()) +
                       " megaflows\n";
                part += rules_.read([&](const RuleSet& rules, uint64_t) {
                    return handler.dump(rules.ports(), rte_rdtsc(), ticks_per_ms);
                });
            };
            if (running_) {
                run_on(*thread, dump, 5000);
            } else {
                dump();
            }
            text += part;
        }
    }
    return text;
}

SlowPathTotals SlowPath::totals() const {
    SlowPathTotals totals;
    for (const auto& thread : threads_) {
        for (const auto& handler : thread->handlers) {
            const SlowPathCounters& c = handler->counters();
            totals.upcalls += c.upcalls.get();
            totals.translations += c.translations.get();
            totals.installed += c.installed.get();
            totals.evicted += c.evicted.get();
            totals.widened += c.widened.get();
            totals.expired += c.expired.get();
            totals.batches += c.batches.get();
            totals.revalidated += c.revalidated.get();
            totals.updated += c.updated.get();
            totals.invalidated += c.invalidated.get();
            totals.revalidations = std::max(totals.revalidations, c.revalidations.get());
            totals.last_revalidation_us = std::max(totals.last_revalidation_us, c.last_revalidation_us.get());
        }
    }
    return totals;
}

std::vector<TableCount> SlowPath::table_counts() const {
    std::vector<TableCount> tables(kMaxTable + 1);
    for (const auto& thread : threads_) {
        for (const auto& handler : thread->handlers) {
            const auto& counters = handler->table_counters();
            for (size_t t = 0; t < tables.size(); ++t) {
                tables[t].lookups += counters[t].lookups.get();
                tables[t].matched += counters[t].matched.get();
            }
        }
    }
    return tables;
}

}  // namespace flowpath
