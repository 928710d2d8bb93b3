// Live and high-water bytes of a backend's allocations, for the peak memory in a run's metrics.
// Thread-safe: an outer sync's worker thread may allocate while training goes on.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace diloco {

class MemoryMeter {
public:
    void allocated(void* ptr, size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        sizes_[ptr] = bytes;
        live_ += bytes;
        peak_ = std::max(peak_, live_);
    }
    // A pointer it never saw (null) changes nothing.
    void released(void* ptr) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = sizes_.find(ptr);
        if (it == sizes_.end()) return;
        live_ -= it->second;
        sizes_.erase(it);
    }
    size_t peak() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return peak_;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<void*, size_t> sizes_;
    size_t live_ = 0, peak_ = 0;
};

}  // namespace diloco
