// The shared rule set: one writer at a time, readers under a read lock, and
// retired entries freed once every reader has revalidated past them.
#include <algorithm>
#include <chrono>
#include <exception>

#include "flowpath/error.hpp"
#include "flowpath/slowpath.hpp"

namespace flowpath {

uint64_t rule_clock_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

LiveRules::LiveRules(std::unique_ptr<RuleSet> rules) : rules_(std::move(rules)) {
    // Writers first: a stream of miss batches must not starve a rule change.
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&lock_, &attr) != 0) throw Error("cannot create the rule set's lock");
    pthread_rwlockattr_destroy(&attr);
}

LiveRules::~LiveRules() { pthread_rwlock_destroy(&lock_); }

uint64_t LiveRules::change(const std::function<void(RuleSet&)>& fn) {
    pthread_rwlock_wrlock(&lock_);
    // fn checks before it changes anything; should it throw half-way all
    // the same, the generation still moves so that megaflows are revalidated.
    std::exception_ptr failure;
    try {
        fn(*rules_);
    } catch (...) {
        failure = std::current_exception();
    }
    const uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
    {
        std::lock_guard guard(retired_lock_);
        for (auto& entry : rules_->take_retired()) retired_.emplace_back(generation, std::move(entry));
    }
    generation_.store(generation, std::memory_order_release);
    pthread_rwlock_unlock(&lock_);
    if (failure) std::rethrow_exception(failure);
    return generation;
}

void LiveRules::reclaim(uint64_t generation) {
    std::lock_guard guard(retired_lock_);
    std::erase_if(retired_, [generation](const auto& retired) { return retired.first <= generation; });
}

}  // namespace flowpath
