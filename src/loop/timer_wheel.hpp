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

// The wheel's node: what a timer must hold, 32 bytes. A class that owns a deadline embeds (or
// derives from) one and finds itself again in `fire` (e.g. static_cast from a base), so a
// connection's timer needs no callback context, no exact deadline and no wheel pointer.
class TimerBase : private detail::TimerNode {
 public:
  using Fire = void (*)(TimerBase&);
  explicit TimerBase(Fire fire) : fire_(fire) {}
  TimerBase(const TimerBase&) = delete;
  TimerBase& operator=(const TimerBase&) = delete;
  // Unlinks itself if armed. Owners cancel() through the wheel first: a node destroyed armed
  // leaves the wheel's count high (harmless, but next_wakeup() then scans instead of knowing
  // nothing is armed).
  ~TimerBase();

  bool armed() const { return next != this; }

 private:
  friend class TimerWheel;
  Fire fire_;
  // Absolute tick (since the wheel's origin) at which the timer is due. Plays the role of the
  // classic "rounds" counter: a bucket holds timers of several revolutions, and only those with
  // expiry_tick_ <= the tick being processed fire. Absolute ticks make large jumps trivial.
  uint64_t expiry_tick_ = 0;
};

// A general-purpose timer: a callback with a context, and the exact deadline it was armed for.
class Timer : public TimerBase {
 public:
  using Callback = void (*)(Timer&, void* ctx);
  Timer() : TimerBase(&Timer::fire) {}
  Timer(Callback cb, void* ctx) : TimerBase(&Timer::fire), cb_(cb), ctx_(ctx) {}
  ~Timer();  // cancels itself if armed

  void set_callback(Callback cb, void* ctx) {
    cb_ = cb;
    ctx_ = ctx;
  }
  TimePoint deadline() const { return deadline_; }

 private:
  friend class TimerWheel;
  static void fire(TimerBase& b) {
    auto& t = static_cast<Timer&>(b);
    if (t.cb_ != nullptr) t.cb_(t, t.ctx_);
  }
  Callback cb_ = nullptr;
  void* ctx_ = nullptr;
  TimerWheel* wheel_ = nullptr;  // the wheel it was last armed on
  TimePoint deadline_{};
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
  void schedule(TimerBase& t, TimePoint deadline);
  void schedule(Timer& t, TimePoint deadline) {
    if (t.wheel_ != nullptr && t.wheel_ != this) t.wheel_->cancel(t);  // moving between wheels
    t.deadline_ = deadline;
    t.wheel_ = this;
    schedule(static_cast<TimerBase&>(t), deadline);
  }
  void cancel(TimerBase& t);
  // Whether `t` would fire later than a deadline of `d` (or not at all): schedule(t, d) would
  // make it earlier. Compares ticks, as the wheel fires them.
  bool fires_after(const TimerBase& t, TimePoint d) const {
    return !t.armed() || d <= last_now_ || tick_ceil(d) < t.expiry_tick_;
  }

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
  // Armed timers (walks every list: for tests and diagnostics).
  std::size_t size() const;
  bool empty() const { return count_ == 0; }
  Duration tick() const { return tick_; }

 private:
  using Node = detail::TimerNode;
  static TimerBase* timer_of(Node* n) { return static_cast<TimerBase*>(n); }
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
  std::size_t count_ = 0;   // armed timers
  bool advancing_ = false;
  // Cached next_wakeup(): exact or earlier than the truth. Schedules lower it, cancels leave it
  // (conservative), and it is recomputed only once advance() has passed it.
  mutable TimePoint cached_wakeup_ = TimePoint::max();
  mutable bool cache_valid_ = true;
};

}  // namespace tether::loop
