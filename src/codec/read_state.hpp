// What a WebSocket reader must remember between reads while a frame or a fragmented message is
// only partly in: the header bytes so far, the payload still to come, a control frame's payload
// split across reads, the message being reassembled and its UTF-8 state. Between messages none
// of it is needed, so protocol::Connection borrows one from its loop's pool (loop::BufferPools)
// for the duration of a read and keeps it only while something is in progress: an idle
// connection holds none.
#pragma once
#include <cstdint>
#include <vector>

#include "codec/frame.hpp"
#include "codec/utf8.hpp"

namespace tether::codec {

struct FrameReadState {
  // frame being read
  FrameHeader header;
  uint64_t remaining = 0;  // payload bytes of this frame still to come
  // Control frame payload (5.5: <= 125 bytes): in place in the caller's buffer when the frame
  // arrived whole (the usual case), else gathered in ctrl_buf.
  const uint8_t* ctrl_data = nullptr;
  uint8_t hdr_buf[max_header_size];
  uint8_t hdr_len = 0;      // header bytes gathered in hdr_buf (a header split across reads)
  uint8_t mask_offset = 0;  // 0..3: where in the 4-byte key the next payload byte is
  uint8_t ctrl_len = 0;
  // message being reassembled
  bool in_message = false;
  Opcode msg_type = Opcode::text;
  bool msg_compressed = false;  // RFC 7692 6: RSV1 on the message's first frame
  bool zero_copy_done = false;  // the message was delivered in place from the read buffer
  Utf8Validator utf8;
  std::vector<uint8_t> msg;  // pieces so far (its memory comes from the message pool)
  uint8_t ctrl_buf[max_control_payload];

  // Nothing in progress: the state can go back to the pool.
  bool idle() const { return hdr_len == 0 && remaining == 0 && !in_message && msg.empty(); }
  // Back to the initial state, as cheaply as possible (it happens after most reads): the byte
  // arrays need no clearing, their lengths say what is valid.
  void reset() {
    header = FrameHeader();
    remaining = 0;
    ctrl_data = nullptr;
    hdr_len = mask_offset = ctrl_len = 0;
    in_message = msg_compressed = zero_copy_done = false;
    msg_type = Opcode::text;
    utf8.reset();
    msg.clear();
  }
};

}  // namespace tether::codec
