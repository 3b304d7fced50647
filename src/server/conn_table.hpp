// A loop's connections by id: an intrusive hash table (each element carries its own chain
// link), so an entry costs one link in the element and one bucket pointer, 16 bytes, where an
// std::unordered_map node costs ~40 with its allocation. Buckets double when the table holds as
// many elements as buckets; they never shrink (a loop that once held N connections keeps 8N
// bytes of buckets). One loop thread only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tether::detail {

// T has `uint64_t id() const` and a `T* table_next` member the table owns.
template <class T>
class ConnTable {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void insert(T* t) {
    if (size_ >= buckets_.size()) grow();
    T*& head = buckets_[slot(t->id())];
    t->table_next = head;
    head = t;
    ++size_;
  }
  // false when `t` is not in the table.
  bool erase(T* t) {
    if (buckets_.empty()) return false;
    for (T** p = &buckets_[slot(t->id())]; *p; p = &(*p)->table_next) {
      if (*p == t) {
        *p = t->table_next;
        t->table_next = nullptr;
        --size_;
        return true;
      }
    }
    return false;
  }
  T* find(uint64_t id) const {
    if (buckets_.empty()) return nullptr;
    for (T* t = buckets_[slot(id)]; t; t = t->table_next)
      if (t->id() == id) return t;
    return nullptr;
  }
  // fn(T*) for every element; fn must not insert or erase.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (T* head : buckets_)
      for (T* t = head; t; t = t->table_next) fn(t);
  }

 private:
  std::size_t slot(uint64_t id) const {
    // Ids are mostly sequential: mix them so that a stride of loops does not pile up.
    id ^= id >> 29;
    id *= 0xbf58476d1ce4e5b9ull;
    id ^= id >> 32;
    return static_cast<std::size_t>(id) & (buckets_.size() - 1);
  }
  void grow() {
    std::vector<T*> old(buckets_.empty() ? 64 : buckets_.size() * 2, nullptr);
    old.swap(buckets_);
    for (T* head : old) {
      while (head) {
        T* next = head->table_next;
        T*& b = buckets_[slot(head->id())];
        head->table_next = b;
        b = head;
        head = next;
      }
    }
  }

  std::vector<T*> buckets_;
  std::size_t size_ = 0;
};

}  // namespace tether::detail
