// allocator.cpp: size-class caching allocator for host buffers, after
// PyTorch's CUDA caching allocator. Blocks of at least kMinCached bytes are
// rounded up to a size class (four per power of two, so at most 25% slack),
// and on free go to that class's free list unless the lists would then hold
// more than the limit. Blocks of 4 MiB and more are 2 MiB aligned and
// advised MADV_HUGEPAGE (transparent huge pages, where the kernel allows).
// Blocks under 1 KiB (numpy's small arrays, made and dropped by the thousand
// per training step) are kept a few per 16-byte bucket on a per-thread stack,
// as numpy's own allocator keeps them; the sizes in between go straight to
// malloc. Every block carries a 64-byte header (its size and the pointer the
// system gave), so free needs no size.
#include "allocator.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace striate {

namespace {

constexpr size_t kHeader = 64;
constexpr size_t kMinCached = size_t(256) << 10;  // glibc maps blocks from 128 KiB on
constexpr size_t kHugeFrom = size_t(4) << 20;
constexpr size_t kHugeAlign = size_t(2) << 20;
constexpr uint64_t kMagic = 0x5374726961746521ull;  // "Striate!"

struct Header {
  uint64_t magic;
  size_t usable;  // bytes after the header
  void* base;     // what malloc/posix_memalign returned
  bool cached;    // of a cacheable size class
  bool small;     // of a small bucket (usable is a multiple of 16 below kSmallMax)
};

constexpr size_t kSmallMax = 1024, kSmallStep = 16;
constexpr int kSmallBuckets = (int)(kSmallMax / kSmallStep), kSmallKeep = 8;

// The calling thread's small blocks. The state outlives the stacks (it has no destructor): once
// the thread's exit has destroyed them, small blocks come from and go to the system.
struct SmallStacks {
  Header* blocks[kSmallBuckets][kSmallKeep];
  int count[kSmallBuckets] = {};
  ~SmallStacks();
};
enum SmallState : int { kNever = 0, kAlive = 1, kDestroyed = 2 };
thread_local int small_state = kNever;
thread_local SmallStacks small_stacks;
SmallStacks::~SmallStacks() {
  small_state = kDestroyed;
  for (int b = 0; b < kSmallBuckets; ++b)
    for (int i = 0; i < count[b]; ++i) std::free(blocks[b][i]->base);
}
static_assert(sizeof(Header) <= kHeader, "header must fit its slot");

// The smallest class >= bytes: m * 2^k with m in {4, 5, 6, 7}; 0 when it overflows.
size_t size_class(size_t bytes) {
  size_t top = 1;  // the highest power of two <= bytes
  while (top <= bytes / 2) top <<= 1;
  const size_t step = top / 4;
  const size_t rounded = (bytes + step - 1) / step * step;
  return rounded < bytes ? 0 : rounded;
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<Header*>> free_lists;
  size_t cached_bytes = 0, cached_blocks = 0, hits = 0, misses = 0, allocated_bytes = 0;
  size_t limit = size_t(2) << 30;
};

// Never destroyed: numpy may free arrays during interpreter shutdown, after static destructors.
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

Header* system_block(size_t usable, bool cached) {
  if (usable > SIZE_MAX - kHeader) return nullptr;
  const size_t total = usable + kHeader;
  void* base = nullptr;
  if (cached && total >= kHugeFrom) {
    if (posix_memalign(&base, kHugeAlign, total) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
    madvise(base, (total + kHugeAlign - 1) / kHugeAlign * kHugeAlign, MADV_HUGEPAGE);
#endif
  } else {
    if (posix_memalign(&base, 64, total) != 0) return nullptr;
  }
  Header* h = static_cast<Header*>(base);
  h->magic = kMagic;
  h->usable = usable;
  h->base = base;
  h->cached = cached;
  h->small = false;
  return h;
}

inline void* user(Header* h) { return reinterpret_cast<char*>(h) + kHeader; }
inline Header* header(const void* p) {
  return reinterpret_cast<Header*>(const_cast<char*>(static_cast<const char*>(p)) - kHeader);
}

// Frees every cached block; the caller holds the mutex.
void release_all(Cache& c) {
  for (auto& entry : c.free_lists)
    for (Header* h : entry.second) std::free(h->base);
  c.free_lists.clear();
  c.cached_bytes = c.cached_blocks = 0;
}

}  // namespace

void* cache_alloc(size_t bytes) {
  if (bytes < kSmallMax) {
    const size_t usable = (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
    const int b = (int)(usable / kSmallStep) - 1 < 0 ? 0 : (int)(usable / kSmallStep) - 1;
    if (small_state != kDestroyed) {
      SmallStacks& st = small_stacks;  // constructed on first use
      small_state = kAlive;
      if (st.count[b] > 0) return user(st.blocks[b][--st.count[b]]);
    }
    void* base = std::malloc(kHeader + (usable ? usable : kSmallStep));
    if (!base) return nullptr;
    Header* h = static_cast<Header*>(base);
    h->magic = kMagic;
    h->usable = usable ? usable : kSmallStep;
    h->base = base;
    h->cached = false;
    h->small = true;
    return user(h);
  }
  if (bytes < kMinCached) {
    Header* h = system_block(bytes, false);
    return h ? user(h) : nullptr;
  }
  const size_t cls = size_class(bytes);
  if (cls == 0) return nullptr;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_lists.find(cls);
    if (it != c.free_lists.end() && !it->second.empty()) {
      Header* h = it->second.back();
      it->second.pop_back();
      c.cached_bytes -= cls;
      c.cached_blocks -= 1;
      c.hits += 1;
      c.allocated_bytes += cls;
      return user(h);
    }
    c.misses += 1;
  }
  Header* h = system_block(cls, true);
  if (!h) {  // give the cache back to the system and try once more
    std::lock_guard<std::mutex> lock(c.mutex);
    release_all(c);
  }
  if (!h) h = system_block(cls, true);
  if (!h) return nullptr;
  std::lock_guard<std::mutex> lock(c.mutex);
  c.allocated_bytes += cls;
  return user(h);
}

void cache_free(void* p) {
  if (!p) return;
  Header* h = header(p);
  if (h->magic != kMagic) std::abort();  // not ours: a corrupt heap, stop before it spreads
  if (h->small) {
    const int b = (int)(h->usable / kSmallStep) - 1;
    if (small_state == kAlive) {
      SmallStacks& st = small_stacks;
      if (st.count[b] < kSmallKeep) {
        st.blocks[b][st.count[b]++] = h;
        return;
      }
    }
    std::free(h->base);
    return;
  }
  if (!h->cached) {
    std::free(h->base);
    return;
  }
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.allocated_bytes -= h->usable;
  if (c.cached_bytes + h->usable <= c.limit) {
    c.free_lists[h->usable].push_back(h);
    c.cached_bytes += h->usable;
    c.cached_blocks += 1;
  } else {
    std::free(h->base);
  }
}

size_t cache_block_size(const void* p) { return header(p)->usable; }

void cache_empty() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  release_all(c);
}

void cache_set_limit(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.limit = bytes;
  if (c.cached_bytes > bytes) release_all(c);
}

CacheStats cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return CacheStats{c.cached_bytes, c.cached_blocks, c.limit, c.hits, c.misses, c.allocated_bytes};
}

}  // namespace striate
