// What the event loop calls when a registered descriptor is ready.
#pragma once
#include <cstdint>

namespace tether::loop {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events`: EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP / EPOLLRDHUP bits.
  virtual void on_io(uint32_t events) = 0;
};

}  // namespace tether::loop
