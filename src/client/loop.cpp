#include "tether/loop.hpp"

#include "loop/event_loop.hpp"

namespace tether {

Loop::Loop() : loop_(std::make_unique<loop::EventLoop>()) {}
Loop::~Loop() = default;
void Loop::run() { loop_->run(); }
void Loop::stop() { loop_->stop(); }
void Loop::post(std::function<void()> fn) { loop_->post(std::move(fn)); }
loop::EventLoop& Loop::native() { return *loop_; }

}  // namespace tether
