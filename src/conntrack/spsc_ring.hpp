// A bounded single-producer single-consumer ring (internal to src/conntrack):
// the messages between a worker and the cleanup thread. One thread pushes,
// one other thread pops; no locks, no read-modify-write instructions.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

namespace flowpath {

template <typename T>
class SpscRing {
public:
    /// Room for at least `capacity` items.
    explicit SpscRing(uint32_t capacity)
        : mask_(std::bit_ceil(std::max<uint32_t>(capacity, 2)) - 1), items_(std::make_unique<T[]>(mask_ + 1)) {}

    uint32_t capacity() const { return mask_ + 1; }

    /// Producer: false when the ring is full.
    bool push(const T& item) {
        const uint32_t head = head_.load(std::memory_order_relaxed);
        if (head - tail_cache_ > mask_) {
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (head - tail_cache_ > mask_) return false;
        }
        items_[head & mask_] = item;
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

    /// Consumer: up to `max` items into `out`; returns how many.
    uint32_t pop(T* out, uint32_t max) {
        const uint32_t tail = tail_.load(std::memory_order_relaxed);
        if (head_cache_ == tail) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (head_cache_ == tail) return 0;
        }
        const uint32_t n = std::min(max, head_cache_ - tail);
        for (uint32_t i = 0; i < n; ++i) out[i] = items_[(tail + i) & mask_];
        tail_.store(tail + n, std::memory_order_release);
        return n;
    }

    /// Calls fn(item) for each item in the ring, oldest first. Only while
    /// neither side runs (invariant checks).
    template <typename Fn>
    void for_each(Fn&& fn) const {
        const uint32_t head = head_.load(std::memory_order_acquire);
        for (uint32_t i = tail_.load(std::memory_order_acquire); i != head; ++i) fn(items_[i & mask_]);
    }

    /// Items in the ring now (either side; a recent value).
    uint32_t size() const { return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire); }

private:
    const uint32_t mask_;
    const std::unique_ptr<T[]> items_;
    alignas(64) std::atomic<uint32_t> head_{0};  // producer's
    uint32_t tail_cache_ = 0;                     // producer's view of tail_
    alignas(64) std::atomic<uint32_t> tail_{0};  // consumer's
    uint32_t head_cache_ = 0;                     // consumer's view of head_
};

}  // namespace flowpath
