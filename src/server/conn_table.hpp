// A loop's connections by id: an open-addressing table of pointers (linear probing, deletion by
// backward shift), so an entry costs one slot, 8-16 bytes depending on the fill (at most 3/4),
// and nothing in the element; a chained table costs a link in each element plus its bucket
// (~22 bytes at 10,000), an std::unordered_map node ~40 with its allocation. Slots double when
// the table is 3/4 full; they never shrink (a loop that once held N connections keeps up to
// 16N bytes of slots). Slot arrays of 64 KiB and more are mapped directly (zero pages for
// free, and unmapped when the table grows), so growth leaves no freed copies in the heap.
// One loop thread only.
#pragma once
#include <sys/mman.h>
#include <cstddef>
#include <cstdint>

#include <cstdlib>
#include <new>
#include <utility>

namespace tether::detail {

// T has `uint64_t id() const`; ids are unique among the elements.
template <class T>
class ConnTable {
 public:
  ConnTable() = default;
  ~ConnTable() { release(slots_, cap_); }
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void insert(T* t) {
    if ((size_ + 1) * 4 > cap_ * 3) grow();
    place(t);
    ++size_;
  }
  // false when `t` is not in the table.
  bool erase(T* t) {
    if (cap_ == 0) return false;
    const std::size_t mask = cap_ - 1;
    std::size_t hole = home(t->id());
    while (slots_[hole] != t) {
      if (slots_[hole] == nullptr) return false;
      hole = (hole + 1) & mask;
    }
    // Backward shift: pull later entries of the run into the hole when their home slot does not
    // lie cyclically in (hole, j], so every entry stays reachable from its home without
    // tombstones.
    for (std::size_t j = (hole + 1) & mask; slots_[j] != nullptr; j = (j + 1) & mask) {
      const std::size_t h = home(slots_[j]->id());
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = nullptr;
    --size_;
    return true;
  }
  T* find(uint64_t id) const {
    if (cap_ == 0) return nullptr;
    const std::size_t mask = cap_ - 1;
    for (std::size_t i = home(id); slots_[i] != nullptr; i = (i + 1) & mask)
      if (slots_[i]->id() == id) return slots_[i];
    return nullptr;
  }
  // fn(T*) for every element; fn must not insert or erase.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < cap_; ++i)
      if (slots_[i] != nullptr) fn(slots_[i]);
  }

 private:
  std::size_t home(uint64_t id) const {
    // Ids are mostly sequential: mix them so that a stride of loops does not pile up.
    id ^= id >> 29;
    id *= 0xbf58476d1ce4e5b9ull;
    id ^= id >> 32;
    return static_cast<std::size_t>(id) & (cap_ - 1);
  }
  void place(T* t) {
    const std::size_t mask = cap_ - 1;
    std::size_t i = home(t->id());
    while (slots_[i] != nullptr) i = (i + 1) & mask;
    slots_[i] = t;
  }
  void grow() {
    const std::size_t cap = cap_ == 0 ? 64 : cap_ * 2;
    T** fresh = allocate(cap);
    T** old = std::exchange(slots_, fresh);
    const std::size_t old_cap = std::exchange(cap_, cap);
    for (std::size_t i = 0; i < old_cap; ++i)
      if (old[i] != nullptr) place(old[i]);
    release(old, old_cap);
  }
  static constexpr std::size_t kMapBytes = 64 * 1024;
  // Zeroed (nullptr) slots.
  static T** allocate(std::size_t cap) {
    const std::size_t bytes = cap * sizeof(T*);
    void* p = nullptr;
    if (bytes >= kMapBytes) {
      p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
    } else {
      p = std::calloc(cap, sizeof(T*));
      if (p == nullptr) throw std::bad_alloc();
    }
    return static_cast<T**>(p);
  }
  static void release(T** slots, std::size_t cap) {
    if (slots == nullptr) return;
    if (cap * sizeof(T*) >= kMapBytes)
      munmap(slots, cap * sizeof(T*));
    else
      std::free(slots);
  }

  T** slots_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t size_ = 0;
};

}  // namespace tether::detail
