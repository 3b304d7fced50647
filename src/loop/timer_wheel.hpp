// Hashed timing wheel (Varghese & Lauck): O(1) schedule/cancel, intrusive nodes, no allocation.
// One Timer is embedded per connection and re-armed only when it fires (the liveness logic
// computes the next deadline from timestamps), so steady traffic costs no timer operations.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "loop/clock.hpp"

namespace tether::loop {

class TimerWheel;

namespace detail {
// Intrusive list hook. Every list (wheel bucket, due list, overdue list) is circular around a
// sentinel node, so unlinking never needs to know which list a timer is on.
struct TimerNode {
  TimerNode* prev = this;
  TimerNode* next = this;
};
}  // namespace detail

class Timer : private detail::TimerNode {
 public:
  using Callback = void (*)(Timer&, void* ctx);
  Timer() = default;
  Timer(Callback cb, void* ctx) : cb_(cb), ctx_(ctx) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();  // cancels itself if armed

  void set_callback(Callback cb, void* ctx) {
    cb_ = cb;
    ctx_ = ctx;
  }
  bool armed() const { return wheel_ != nullptr; }
  TimePoint deadline() const { return deadline_; }

 private:
  friend class TimerWheel;
  Callback cb_ = nullptr;
  void* ctx_ = nullptr;
  TimerWheel* wheel_ = nullptr;
  TimePoint deadline_{};
  // Absolute tick (since the wheel's origin) at which the timer is due. Plays the role of the
  // classic "rounds" counter: a bucket holds timers of several revolutions, and only those with
  // expiry_tick_ <= the tick being processed fire. Absolute ticks make large jumps trivial.
  uint64_t expiry_tick_ = 0;
};

class TimerWheel {
 public:
  // `tick`: granularity. A timer fires no earlier than its deadline and no later than
  // deadline + tick after advance() is called with a time past it.
  TimerWheel(TimePoint start, Duration tick, std::size_t slots = 1024);
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms (or re-arms) `t` for `deadline`; no allocation. The deadline is rounded up to a tick
  // boundary, except that a deadline <= the latest advance() time is "overdue" and fires on the
  // next advance() call whatever time it passes. This includes a timer re-armed from inside a
  // callback for a deadline <= the `now` being processed: it fires on the NEXT advance() call,
  // never again within the current one, so a callback re-arming itself cannot loop forever.
  void schedule(Timer& t, TimePoint deadline);
  void cancel(Timer& t);

  // Fires every overdue timer and every timer whose deadline, rounded up to a tick, is <= now;
  // callbacks may schedule/cancel any timer, including the one firing. Timers fire in deadline
  // tick order (overdue ones first), same-tick timers in the order they were armed. A jump of
  // more than one revolution visits each bucket once instead of every tick. A re-entrant call
  // from inside a callback does nothing. Returns the number fired.
  std::size_t advance(TimePoint now);

  // When advance() next needs to be called: the tick boundary of the earliest armed timer (may
  // be earlier after a cancel, never later), the latest advance() time when a timer is overdue,
  // or TimePoint::max() when nothing is armed. Used as the epoll timeout; cached, and
  // recomputed (one pass over the buckets, stopping at the first due one) only after advance()
  // has passed the cached value.
  TimePoint next_wakeup() const;
  std::size_t size() const { return count_; }
  Duration tick() const { return tick_; }

 private:
  using Node = detail::TimerNode;
  static Timer* timer_of(Node* n) { return static_cast<Timer*>(n); }
  static void unlink(Node* n);
  static void link_back(Node* list, Node* n);
  uint64_t tick_ceil(TimePoint t) const;
  TimePoint tick_time(uint64_t tick) const;
  void collect_tick(uint64_t tick);
  void collect_all(uint64_t upto_tick);
  void sort_due();
  static Node* merge_sort(Node* head, std::size_t len);

  std::unique_ptr<Node[]> slots_;  // sentinels; never reallocated (timers point into them)
  std::size_t slot_count_;
  Duration tick_;
  TimePoint origin_;
  uint64_t next_tick_ = 0;  // first tick not yet processed
  TimePoint last_now_;      // latest `now` given to advance(); deadlines <= it are overdue
  Node overdue_;            // armed with a deadline <= last_now_: fire on the next advance()
  Node due_;                // collected by advance(), being fired
  std::size_t count_ = 0;
  bool advancing_ = false;
  // Cached next_wakeup(): exact or earlier than the truth. Schedules lower it, cancels leave it
  // (conservative), and it is recomputed only once advance() has passed it.
  mutable TimePoint cached_wakeup_ = TimePoint::max();
  mutable bool cache_valid_ = true;
};

}  // namespace tether::loop
