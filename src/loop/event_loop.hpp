// One epoll loop per thread (libuv style). Iteration order, written down:
//   1. read the clock once (now());
//   2. fire due timers (TimerWheel::advance(now));
//   3. run posted tasks (from other threads), then deferred callbacks;
//   4. epoll_wait with a timeout up to the next timer wakeup, then read the clock again (the
//      wait may have been long; handlers timestamp activity with now());
//   5. dispatch I/O events to their handlers;
//   6. run deferred callbacks (used to flush corked writes once per iteration).
// Knows nothing about WebSocket.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <vector>

#include "loop/buffer_pool.hpp"
#include "loop/clock.hpp"
#include "loop/io_handler.hpp"
#include "loop/timer_wheel.hpp"

namespace tether::loop {

struct LoopOptions {
  // 10 ms wheel tick: timer error stays far below 1% of any heartbeat bound worth having (>= 1 s).
  Duration timer_tick = std::chrono::milliseconds(10);
  const ClockSource* clock = nullptr;  // nullptr: steady clock
};

class EventLoop {
 public:
  explicit EventLoop(LoopOptions opts = {});
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  std::error_code add(int fd, uint32_t events, IoHandler* h);
  std::error_code modify(int fd, uint32_t events, IoHandler* h);
  void remove(int fd);  // safe to call from inside a handler (events for fd are dropped after)

  // Thread-safe: queue `fn` to run on the loop thread and wake it.
  void post(std::function<void()> fn);
  // Loop thread only: run `fn` at the end of this iteration (after all I/O handlers).
  void defer(std::function<void()> fn);

  void run();  // until stop()
  // One iteration; -1 waits for the next event/timer. Step 4 does not block (timeout 0) when
  // steps 2-3 fired a timer or ran a task, so callers looping on run_once(-1) regain control
  // after every callback. A timer falling due during the wait fires at step 2 of the NEXT call.
  void run_once(int max_wait_ms);
  void stop();  // thread-safe; sticky: run() returns at once if called after stop()
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }
  bool in_loop_thread() const;

  TimePoint now() const { return now_; }  // cached at the start of the iteration
  void update_time();
  TimerWheel& timers() { return wheel_; }
  // A read buffer owned by the loop, shared by every socket it drives (they are read one at a
  // time, on this loop's thread): memory per connection stays independent of the read size.
  // Made on first use (256 KiB); inline: every read asks for it.
  std::span<uint8_t> read_buffer() {
    if (read_buf_.empty()) [[unlikely]]
      read_buf_.resize(256 * 1024);
    return read_buf_;
  }
  // Send-queue and message buffers lent to this loop's connections while bytes are in flight.
  BufferPools& buffer_pools() { return pools_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TimePoint now_;
  TimerWheel wheel_;
  BufferPools pools_;
  std::vector<uint8_t> read_buf_;  // see read_buffer()
  std::atomic<bool> stop_{false};
};

}  // namespace tether::loop
