// allocator.h: striate's CPU buffer cache (allocator.cpp), the memory behind
// numpy arrays once striate is imported (bind_cpu.cpp installs it as numpy's
// data allocator). Large blocks are kept on size-class free lists when freed
// and handed out again, so a training loop that allocates the same shapes
// every step touches no fresh pages after its first step.
#pragma once
#include <cstddef>
#include <new>

namespace striate {

struct CacheStats {
  size_t cached_bytes;   // held on the free lists
  size_t cached_blocks;
  size_t limit_bytes;    // the free lists never hold more than this
  size_t hits;           // allocations served from the free lists
  size_t misses;         // cacheable allocations that asked the system
  size_t allocated_bytes;  // live blocks of cacheable size handed out
};

// At least `bytes` usable bytes, 64-byte aligned; nullptr when the system refuses.
void* cache_alloc(size_t bytes);
// Returns a block of cache_alloc to the cache (or the system); nullptr is ignored.
void cache_free(void* p);
// The usable size of a block of cache_alloc.
size_t cache_block_size(const void* p);
// Gives every cached block back to the system.
void cache_empty();
void cache_set_limit(size_t bytes);
CacheStats cache_stats();

// A buffer of n values from the cache, returned to it when it goes out of scope
// (kernels' temporaries: packed weights). Throws std::bad_alloc when refused.
template <typename T>
class CachedBuffer {
 public:
  explicit CachedBuffer(size_t n) : p_(static_cast<T*>(cache_alloc(n * sizeof(T)))) {
    if (!p_ && n) throw std::bad_alloc();
  }
  ~CachedBuffer() { cache_free(p_); }
  CachedBuffer(const CachedBuffer&) = delete;
  CachedBuffer& operator=(const CachedBuffer&) = delete;
  T* get() const { return p_; }

 private:
  T* p_;
};

}  // namespace striate
