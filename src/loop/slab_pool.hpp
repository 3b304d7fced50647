// Fixed-size blocks for one kind of object, carved from chunks and recycled through a free
// list: no malloc header per object (8 bytes) and no rounding up to malloc's 16-byte size
// classes, which matter when a server keeps tens of thousands of small connection objects.
// Memory goes back to the system only when the pool is destroyed (after every block was
// released): a loop keeps room for its peak number of connections, as it keeps their
// descriptors' slots. One thread only. Under AddressSanitizer the blocks come from operator new
// one by one, so use-after-free and leaks stay visible.
#pragma once
#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace tether::loop {

template <std::size_t Size, std::size_t Align>
class SlabPool {
 public:
  SlabPool() = default;
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  void* allocate() {
#if defined(__SANITIZE_ADDRESS__)
    return ::operator new (Size, std::align_val_t{Align});
#else
    if (free_ != nullptr) {
      Slot* s = free_;
      free_ = s->next;
      return s;
    }
    if (bump_ == bump_end_) new_chunk();
    return bump_++;
#endif
  }
  void release(void* p) {
#if defined(__SANITIZE_ADDRESS__)
    ::operator delete (p, std::align_val_t{Align});
#else
    auto* s = static_cast<Slot*>(p);
    s->next = free_;
    free_ = s;
#endif
  }

 private:
  union Slot {
    Slot* next;
    alignas(Align) unsigned char bytes[Size];
  };
  void new_chunk() {
    // 64 blocks first, doubling up to 1024 per chunk: a small server stays small. Blocks are
    // handed out in order and never written before, so a chunk's untouched pages cost no RSS.
    const std::size_t n = chunks_.empty() ? 64 : std::min<std::size_t>(last_chunk_ * 2, 1024);
    last_chunk_ = n;
    chunks_.push_back(std::make_unique_for_overwrite<Slot[]>(n));
    bump_ = chunks_.back().get();
    bump_end_ = bump_ + n;
  }
  std::vector<std::unique_ptr<Slot[]>> chunks_;
  Slot* free_ = nullptr;  // released blocks
  Slot* bump_ = nullptr;  // the newest chunk's first block never handed out
  Slot* bump_end_ = nullptr;
  std::size_t last_chunk_ = 0;
};

}  // namespace tether::loop
