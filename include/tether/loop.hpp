// An event loop that clients can share (one thread drives many connections).
//
//   tether::Loop loop;
//   tether::Client a(loop, {.url = "ws://127.0.0.1:8080/"}), b(loop, {.url = ...});
//   a.connect(); b.connect();
//   loop.run();  // until loop.stop()
#pragma once
#include <functional>
#include <memory>

namespace tether {
namespace loop {
class EventLoop;
}

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void run();   // runs until stop()
  void stop();  // thread-safe
  // Thread-safe: run `fn` on the loop's thread.
  void post(std::function<void()> fn);

  loop::EventLoop& native();  // internal use by Client

 private:
  std::unique_ptr<loop::EventLoop> loop_;
};

}  // namespace tether
