// allocator.h: striate's CPU buffer cache (allocator.cpp), the memory behind
// numpy arrays once striate is imported (bind_cpu.cpp installs it as numpy's
// data allocator). Large blocks are kept on size-class free lists when freed
// and handed out again, so a training loop that allocates the same shapes
// every step touches no fresh pages after its first step.
#pragma once
#include <cstddef>

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

}  // namespace striate
