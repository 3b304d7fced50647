// Message types and send results shared by Server and Client.
#pragma once
#include <cstdint>

namespace tether {

enum class MessageType : uint8_t { text, binary };

// send() never buffers without bound (uWebSockets' cost model): it says what happened.
enum class SendStatus : uint8_t {
  success,       // written to the socket, or queued with the buffer under the limit
  backpressure,  // queued, but the send buffer is past the limit; slow down
  dropped,       // not queued: the connection is not open, or the buffer is full
};

}  // namespace tether
