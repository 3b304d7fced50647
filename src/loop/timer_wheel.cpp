#include "loop/timer_wheel.hpp"

#include <algorithm>
#include <limits>

namespace tether::loop {

namespace {

// Time points as unsigned offsets: differences of two in-range time points always fit, even
// when the origin is negative or the deadline is TimePoint::max().
uint64_t rep_of(TimePoint t) { return static_cast<uint64_t>(t.time_since_epoch().count()); }

}  // namespace

Timer::~Timer() {
  if (wheel_ != nullptr && armed()) wheel_->cancel(*this);
}

TimerBase::~TimerBase() {
  prev->next = next;
  next->prev = prev;
}

TimerWheel::TimerWheel(TimePoint start, Duration tick, std::size_t slots)
    : slots_(std::make_unique<Node[]>(std::max<std::size_t>(slots, 1))),
      slot_count_(std::max<std::size_t>(slots, 1)),
      tick_(std::max(tick, Duration(1))),
      origin_(start),
      next_tick_(
          1),  // tick 0 is `start` itself, which is already "now": deadlines there are overdue
      last_now_(start) {}

TimerWheel::~TimerWheel() {
  // Detach survivors so their destructors do not touch a dead wheel.
  auto detach_all = [](Node* list) {
    while (list->next != list) {
      Node* n = list->next;
      unlink(n);
    }
  };
  for (std::size_t i = 0; i < slot_count_; ++i) detach_all(&slots_[i]);
  detach_all(&overdue_);
  detach_all(&due_);
}

void TimerWheel::unlink(Node* n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n;
  n->next = n;
}

void TimerWheel::link_back(Node* list, Node* n) {
  n->prev = list->prev;
  n->next = list;
  list->prev->next = n;
  list->prev = n;
}

uint64_t TimerWheel::tick_ceil(TimePoint t) const {
  if (t <= origin_) return 0;
  const uint64_t diff = rep_of(t) - rep_of(origin_);
  const auto tk = static_cast<uint64_t>(tick_.count());
  return diff / tk + (diff % tk != 0 ? 1 : 0);
}

TimePoint TimerWheel::tick_time(uint64_t tick) const {
  const auto tk = static_cast<uint64_t>(tick_.count());
  const uint64_t room = rep_of(TimePoint::max()) - rep_of(origin_);
  if (tick > room / tk) return TimePoint::max();
  const auto rep = static_cast<Duration::rep>(rep_of(origin_) + tick * tk);
  return TimePoint(Duration(rep));
}

void TimerWheel::schedule(TimerBase& t, TimePoint deadline) {
  Node* n = &t;
  if (t.armed())
    unlink(n);  // from wherever it is armed
  else
    ++count_;
  t.expiry_tick_ = tick_ceil(deadline);
  if (deadline <= last_now_) {
    // Also covers re-arming from a callback for a time already processed: parked until the
    // next advance() instead of being fired again by this one.
    link_back(&overdue_, n);
    return;
  }
  // deadline > last_now_ implies expiry_tick_ >= next_tick_, so the bucket walk will reach it.
  link_back(&slots_[t.expiry_tick_ % slot_count_], n);
  if (cache_valid_) cached_wakeup_ = std::min(cached_wakeup_, tick_time(t.expiry_tick_));
}

void TimerWheel::cancel(TimerBase& t) {
  if (!t.armed()) return;
  unlink(&t);
  if (--count_ == 0) {
    cached_wakeup_ = TimePoint::max();
    cache_valid_ = true;
  }
}

std::size_t TimerWheel::size() const {
  std::size_t n = 0;
  auto count = [&n](const Node* list) {
    for (const Node* p = list->next; p != list; p = p->next) ++n;
  };
  for (std::size_t i = 0; i < slot_count_; ++i) count(&slots_[i]);
  count(&overdue_);
  count(&due_);
  return n;
}

void TimerWheel::collect_tick(uint64_t tick) {
  Node* list = &slots_[tick % slot_count_];
  for (Node* p = list->next; p != list;) {
    Node* next = p->next;
    if (timer_of(p)->expiry_tick_ <= tick) {
      unlink(p);
      link_back(&due_, p);
    }
    p = next;
  }
}

void TimerWheel::collect_all(uint64_t upto_tick) {
  for (std::size_t i = 0; i < slot_count_; ++i) {
    Node* list = &slots_[i];
    for (Node* p = list->next; p != list;) {
      Node* next = p->next;
      if (timer_of(p)->expiry_tick_ <= upto_tick) {
        unlink(p);
        link_back(&due_, p);
      }
      p = next;
    }
  }
}

// Stable merge sort over a null-terminated chain linked through `next`. Recursion depth is
// log2(len), so even millions of timers stay shallow.
TimerWheel::Node* TimerWheel::merge_sort(Node* head, std::size_t len) {
  if (len <= 1) return head;
  const std::size_t left_len = len / 2;
  Node* left_last = head;
  for (std::size_t i = 1; i < left_len; ++i) left_last = left_last->next;
  Node* right = left_last->next;
  left_last->next = nullptr;
  Node* left = merge_sort(head, left_len);
  right = merge_sort(right, len - left_len);
  Node out;
  Node* tail = &out;
  while (left != nullptr && right != nullptr) {
    // `<` on the right side keeps equal keys in their original (arming) order.
    if (timer_of(right)->expiry_tick_ < timer_of(left)->expiry_tick_) {
      tail->next = right;
      right = right->next;
    } else {
      tail->next = left;
      left = left->next;
    }
    tail = tail->next;
  }
  tail->next = left != nullptr ? left : right;
  return out.next;
}

void TimerWheel::sort_due() {
  std::size_t len = 0;
  for (Node* p = due_.next; p != &due_; p = p->next) ++len;
  if (len < 2) return;
  due_.prev->next = nullptr;
  Node* head = merge_sort(due_.next, len);
  // Rebuild the circular doubly linked list around the sentinel.
  Node* prev = &due_;
  for (Node* p = head; p != nullptr; p = p->next) {
    prev->next = p;
    p->prev = prev;
    prev = p;
  }
  prev->next = &due_;
  due_.prev = prev;
}

std::size_t TimerWheel::advance(TimePoint now) {
  if (advancing_) return 0;
  advancing_ = true;
  now = std::max(now, last_now_);  // a clock set backwards must not un-process ticks

  // Overdue timers go first: their deadlines precede everything still in the buckets.
  while (overdue_.next != &overdue_) {
    Node* n = overdue_.next;
    unlink(n);
    link_back(&due_, n);
  }
  const uint64_t target = (rep_of(now) - rep_of(origin_)) / static_cast<uint64_t>(tick_.count());
  if (target >= next_tick_) {
    if (target - next_tick_ >= slot_count_) {
      // More than a revolution: one pass over every bucket, then restore deadline order.
      collect_all(target);
      sort_due();
    } else {
      for (uint64_t k = next_tick_; k <= target; ++k) collect_tick(k);
    }
    next_tick_ = target + 1;
  }
  // From here on, schedule() treats deadlines <= now as overdue (next advance), so callbacks
  // cannot add work to this call.
  last_now_ = now;
  if (cached_wakeup_ <= now) cache_valid_ = false;

  std::size_t fired = 0;
  while (due_.next != &due_) {
    Node* n = due_.next;
    unlink(n);
    --count_;
    ++fired;
    TimerBase* t = timer_of(n);
    t->fire_(*t);  // may destroy or re-arm *t: not touched after
  }
  if (count_ == 0) {
    cached_wakeup_ = TimePoint::max();
    cache_valid_ = true;
  }
  advancing_ = false;
  return fired;
}

TimePoint TimerWheel::next_wakeup() const {
  if (count_ == 0) return TimePoint::max();
  if (overdue_.next != &overdue_ || due_.next != &due_) return last_now_;
  if (cache_valid_) return cached_wakeup_;
  // Bucket at scan position i holds ticks k, k + slots, k + 2*slots, ... (k = next_tick_ + i).
  // The first timer found due exactly at its bucket's first tick is therefore the earliest of
  // all; otherwise (everything beyond one revolution) the minimum seen is exact.
  uint64_t best = std::numeric_limits<uint64_t>::max();
  for (std::size_t i = 0; i < slot_count_ && best > next_tick_ + i; ++i) {
    const uint64_t k = next_tick_ + i;
    const Node* list = &slots_[k % slot_count_];
    for (const Node* p = list->next; p != list; p = p->next) {
      const uint64_t e = static_cast<const TimerBase*>(p)->expiry_tick_;
      best = std::min(best, e);
      if (e == k) break;
    }
  }
  cached_wakeup_ =
      best == std::numeric_limits<uint64_t>::max() ? TimePoint::max() : tick_time(best);
  cache_valid_ = true;
  return cached_wakeup_;
}

}  // namespace tether::loop
