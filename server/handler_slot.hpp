// Reusable memory for the one handler of a kind that is in flight at a time, so that
// posting it to an io_context allocates nothing. Asio allocates each posted operation
// through the handler's associated allocator; by default that is a per-thread cache,
// which misses when the operation is posted on one thread and freed on another (an
// interpreter thread kicking an I/O thread): every post would then be a full malloc.
#pragma once

#include <atomic>
#include <cstddef>
#include <new>

namespace narwhal::server {

class HandlerSlot {
public:
    HandlerSlot() = default;
    HandlerSlot(const HandlerSlot&) = delete;
    HandlerSlot& operator=(const HandlerSlot&) = delete;

    // Any thread. The slot when it is free and large enough, else the heap: a second
    // operation in flight, or one larger than the slot, is still correct, only slower.
    void* allocate(std::size_t size) {
        if (size <= sizeof bytes_ && !in_use_.exchange(true, std::memory_order_acquire))
            return bytes_;
        return ::operator new(size);
    }

    // Any thread: Asio frees an operation's memory on the thread that runs it, just
    // before calling the handler, so the slot is free again for the next post from there.
    void deallocate(void* p) {
        if (p == bytes_)
            in_use_.store(false, std::memory_order_release);
        else
            ::operator delete(p);
    }

    // True while an operation occupies the slot.
    bool in_use() const { return in_use_.load(std::memory_order_acquire); }

    // Allocator for Asio's associated_allocator: rebinds to whatever operation type
    // Asio wraps the handler in.
    template <typename T> class Allocator {
    public:
        using value_type = T;
        explicit Allocator(HandlerSlot& slot) noexcept : slot_(&slot) {}
        template <typename U> Allocator(const Allocator<U>& other) noexcept : slot_(other.slot_) {}

        T* allocate(std::size_t n) { return static_cast<T*>(slot_->allocate(n * sizeof(T))); }
        void deallocate(T* p, std::size_t) noexcept { slot_->deallocate(p); }

        template <typename U> bool operator==(const Allocator<U>& other) const noexcept {
            return slot_ == other.slot_;
        }

    private:
        template <typename U> friend class Allocator;
        HandlerSlot* slot_;
    };

private:
    // Room for Asio's operation around a handler of a pointer or two (40 bytes for
    // IoThread's kick with GCC 12 and Boost 1.74), with ample margin for other versions;
    // a larger operation still works, from the heap.
    alignas(std::max_align_t) unsigned char bytes_[256];
    std::atomic<bool> in_use_{false};
};

}  // namespace narwhal::server
