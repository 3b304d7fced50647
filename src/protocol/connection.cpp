#include "protocol/connection.hpp"

#include <algorithm>
#include <cstring>

#include "codec/close_payload.hpp"
#include "codec/mask.hpp"

namespace tether::protocol {

using codec::is_control;
using codec::Opcode;

void Handler::on_http_request(const HttpHead&, std::string& response) {
  // A plain GET on a WebSocket endpoint: RFC 9110 §15.5.22, this resource needs an upgrade.
  response = http_response(426, "Upgrade: websocket\r\n", "this endpoint speaks WebSocket\n");
}

Connection::Connection(const ConnectionConfig& config, Handler& handler)
    : config_(config), handler_(handler) {
  hs_ = std::make_unique<Handshake>(
      config_.role == Role::server ? HttpHeadParser::Kind::request : HttpHeadParser::Kind::response,
      config_.http);
}

Connection::~Connection() {
  drop_names();
  out_.consume(config_.pools, out_.size());  // hands a queue still held back to the pool
}

void Connection::drop_names() {
  if (config_.names)
    config_.names->release(names_);
  else
    NameTable::drop_own(names_);
  names_ = nullptr;
}

void Connection::set_names(std::string_view path, std::string_view subprotocol) {
  // The new entry first: `path` may point into the old one.
  const Names* fresh =
      config_.names ? config_.names->acquire(path, subprotocol) : NameTable::own(path, subprotocol);
  drop_names();
  names_ = fresh;
}

const DeflateOptions* Connection::deflate_options() const {
  return config_.deflate != nullptr && config_.deflate->enabled ? config_.deflate : nullptr;
}

void Connection::start_client(ClientHandshakeRequest request) {
  if (const DeflateOptions* d = deflate_options()) {
    // RFC 7692 §5: one offer, appended to whatever the caller offers already.
    std::string offer = extensions::client_offer(*d);
    request.extensions =
        request.extensions.empty() ? std::move(offer) : request.extensions + ", " + offer;
  }
  if (!hs_) return;  // the handshake is over: nothing to start
  hs_->request = std::make_unique<ClientHandshakeRequest>(std::move(request));
  set_names(hs_->request->target, {});
  std::string req = make_client_request(*hs_->request);
  out_.append(config_.pools, req.data(), req.size());
  out_.mark_boundary(config_.pools);
}

void Connection::receive(std::span<uint8_t> data) {
  receive_frames(data);
  release_rx();
}

void Connection::release_rx() {
  if (!rx_ || !config_.pools) return;  // without a pool the state simply stays
  if (rstate_ != ReadState::done && (rstate_ == ReadState::payload || !rx_->idle())) return;
  if (rx_->msg.capacity() != 0) config_.pools->message.give(rx_->msg);
  rx_->reset();
  config_.pools->frames.give(rx_);
}

void Connection::receive_frames(std::span<uint8_t> data) {
  std::size_t pos = 0;
  const std::size_t n = data.size();
  while (pos < n) {
    switch (rstate_) {
      case ReadState::done:
        return;  // §5.5.1: nothing is processed after the closing handshake or a failure
      case ReadState::http:
        pos += receive_http(data.subspan(pos));
        break;
      case ReadState::header: {
        // Between messages a connection holds no read state (rx_): the fast path needs none.
        if ((!rx_ || (rx_->hdr_len == 0 && !rx_->in_message)) && whole_frame_fast(data, pos)) {
          if (rstate_ == ReadState::done) return;
          break;
        }
        if (!rx_)
          rx_ = config_.pools ? config_.pools->frames.take()
                              : std::make_unique<codec::FrameReadState>();
        std::size_t consumed = 0;
        codec::HeaderStatus st;
        if (rx_->hdr_len == 0) {
          st = codec::parse_header(data.subspan(pos), rx_->header, consumed);
          if (st == codec::HeaderStatus::need_more) {
            rx_->hdr_len = static_cast<uint8_t>(n - pos);  // < 14 bytes, else it would have parsed
            std::memcpy(rx_->hdr_buf, data.data() + pos, rx_->hdr_len);
            return;
          }
          pos += consumed;
        } else {
          std::size_t take = std::min<std::size_t>(codec::max_header_size - rx_->hdr_len, n - pos);
          std::memcpy(rx_->hdr_buf + rx_->hdr_len, data.data() + pos, take);
          st = codec::parse_header({rx_->hdr_buf, rx_->hdr_len + take}, rx_->header, consumed);
          if (st == codec::HeaderStatus::need_more) {
            rx_->hdr_len = static_cast<uint8_t>(rx_->hdr_len + take);
            pos += take;
            break;
          }
          pos += consumed - rx_->hdr_len;
          rx_->hdr_len = 0;
        }
        if (st != codec::HeaderStatus::ok) {
          fail(1002,
               st == codec::HeaderStatus::non_minimal_length
                   ? "frame length not minimally encoded"
                   : "64-bit frame length with the high bit set",
               Cause::protocol_error);
          return;
        }
        if (!begin_frame()) return;
        if (rx_->remaining == 0) end_frame();
        break;
      }
      case ReadState::payload: {
        std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(rx_->remaining, n - pos));
        bool whole = rx_->remaining == rx_->header.payload_len && take == rx_->remaining;
        uint8_t* p = data.data() + pos;
        if (rx_->header.masked)
          rx_->mask_offset = static_cast<uint8_t>(
              codec::apply_mask(p, take, rx_->header.mask_key, rx_->mask_offset));
        pos += take;
        rx_->remaining -= take;
        payload_chunk(p, take, whole);
        if (rstate_ == ReadState::done) return;
        if (rx_->remaining == 0) end_frame();
        break;
      }
    }
  }
}

// The common case on a server, taken without the general state machine: a whole unfragmented
// binary or text frame from a client, masked, with a minimally encoded length of any form (§5.2),
// no RSV bit, no message in progress, all of it in `data`. Every check begin_frame() and
// payload_chunk() make for such a frame holds here by the tests on the header bytes (FIN,
// opcode, RSV, MASK, length) plus the size limits and, for text, UTF-8 (§5.6, §8.1), so the
// delivery is the one the general path makes. Anything else (and a frame split across reads)
// returns false: the general path.
bool Connection::whole_frame_fast(std::span<uint8_t> data, std::size_t& pos) {
  const std::size_t avail = data.size() - pos;
  if (config_.role != Role::server || avail < 6) return false;
  uint8_t* f = data.data() + pos;
  const uint8_t b0 = f[0];
  const uint8_t b1 = f[1];
  // 0x81 / 0x82: FIN, no RSV, text / binary. MASK set.
  if ((b0 != 0x82 && b0 != 0x81) || (b1 & 0x80u) == 0) return false;
  std::size_t len = b1 & 0x7fu;
  std::size_t hs = 6;
  if (len == 126) {
    if (avail < 8) return false;
    len = (std::size_t{f[2]} << 8) | f[3];
    if (len < 126) return false;  // not minimal: the general path fails it (§5.2)
    hs = 8;
  } else if (len == 127) {
    if (avail < 14) return false;
    uint64_t len64 = 0;
    for (int i = 2; i < 10; ++i) len64 = (len64 << 8) | f[i];
    // Not minimal, or the high bit set, or more than this read holds: the general path.
    if (len64 <= 0xFFFF || len64 > avail) return false;
    len = static_cast<std::size_t>(len64);
    hs = 14;
  }
  if (avail < hs + len || len > config_.max_frame || len > config_.max_message) return false;
  uint32_t key;
  std::memcpy(&key, f + hs - 4, 4);
  uint8_t* p = f + hs;
  codec::apply_mask(p, len, key, 0);
  pos += hs + len;
  const auto type = b0 == 0x81 ? Opcode::text : Opcode::binary;
  const std::span<const uint8_t> payload(p, len);
  if (type == Opcode::text) {
    codec::Utf8Validator utf8;
    if (!utf8.feed(payload)) {
      fail(1007, "invalid UTF-8 in text message", Cause::protocol_error);
      return true;
    }
    if (!utf8.complete()) {
      fail(1007, "truncated UTF-8 sequence at end of text message", Cause::protocol_error);
      return true;
    }
  }
  // The last frame of this read: its header bytes (6, 8 or 14) are free room in front of the
  // payload, where frame_in_place() can put a reply's header (2, 4 or 10: never longer than the
  // received one, as the reply is no longer) while the message callback runs.
  loop::BufferPools* pools = config_.pools;
  if (pools && pos == data.size()) pools->loan = {this, p, len};
  deliver_message(type, payload);
  if (pools) pools->loan.owner = nullptr;
  return true;
}

std::span<const uint8_t> Connection::frame_lent(Opcode type, std::span<const uint8_t> payload) {
  // The payload must be the one being delivered from the fast path, untouched by a reply yet.
  loop::BufferPools* pools = config_.pools;
  if (payload.data() != pools->loan.payload || payload.size() > pools->loan.size) return {};
  if (state_ != State::open || out_in_message_ || !out_.empty() || is_control(type) ||
      type == Opcode::continuation || (deflate_ && payload.size() >= deflate_options()->threshold))
    return {};
  pools->loan.owner = nullptr;  // a second reply from the same bytes takes the usual path
  codec::FrameHeader h;
  h.opcode = type;
  h.payload_len = payload.size();
  const std::size_t hs = codec::header_size(payload.size(), false);
  uint8_t* start = const_cast<uint8_t*>(payload.data()) - hs;  // our read buffer (see above)
  codec::encode_header(h, start);
  return {start, hs + payload.size()};
}

std::size_t Connection::receive_http(std::span<uint8_t> data) {
  std::size_t consumed = 0;
  auto st = hs_->parser.feed(data, consumed);
  if (st == HttpHeadParser::Status::need_more) return consumed;
  if (st == HttpHeadParser::Status::error) {
    std::string why = "bad HTTP " +
                      std::string(config_.role == Role::server ? "request" : "response") + ": " +
                      hs_->parser.error_text();
    if (config_.role == Role::server) {
      std::string resp =
          http_response(hs_->parser.error_status(), "", hs_->parser.error_text() + "\n");
      out_.append(config_.pools, resp.data(), resp.size());
      rejected_status_ = static_cast<uint16_t>(hs_->parser.error_status());
    }
    state_ = State::closed;
    rstate_ = ReadState::done;
    close_transport_ = true;
    finish({1006, why, false, Cause::handshake_failed});
    return data.size();
  }
  const HttpHead& head = hs_->parser.head();
  if (config_.role == Role::server) {
    static const ServerHandshakeConfig default_config;
    // RFC 7692 §5: the negotiator picks the first acceptable permessage-deflate offer.
    const DeflateOptions* deflate = deflate_options();
    std::optional<extensions::DeflateNegotiator> negotiator;
    ExtensionNegotiator* mine[1] = {nullptr};
    if (deflate) mine[0] = &negotiator.emplace(*deflate);
    auto res = server_handshake(head, config_.server ? *config_.server : default_config,
                                std::span<ExtensionNegotiator* const>(mine, deflate ? 1 : 0));
    if (res.kind == ServerHandshakeResult::Kind::not_websocket) {
      std::string resp;
      handler_.on_http_request(head, resp);
      out_.append(config_.pools, resp.data(), resp.size());
      state_ = State::closed;
      rstate_ = ReadState::done;
      close_transport_ = true;
      finished_ = true;  // never was a WebSocket: no close event
      return data.size();
    }
    out_.append(config_.pools, res.response.data(), res.response.size());
    out_.mark_boundary(config_.pools);
    if (res.kind == ServerHandshakeResult::Kind::reject) {
      rejected_status_ = static_cast<uint16_t>(res.status);
      state_ = State::closed;
      rstate_ = ReadState::done;
      close_transport_ = true;
      finish({1006, "handshake rejected (" + std::to_string(res.status) + "): " + res.error, false,
              Cause::handshake_failed});
      return data.size();
    }
    set_names(head.target, res.subprotocol);
    if (negotiator && negotiator->agreed()) {
      deflate_ = std::make_unique<extensions::PerMessageDeflate>(
          *negotiator->agreed(), extensions::Side::server, deflate->level);
    }
  } else {
    if (!hs_->request) {  // receive() before start_client(): bytes nobody asked for
      state_ = State::closed;
      rstate_ = ReadState::done;
      close_transport_ = true;
      finish(
          {1006, "response received before the request was sent", false, Cause::handshake_failed});
      return data.size();
    }
    auto res = check_server_response(head, *hs_->request);
    if (!res.ok) {
      state_ = State::closed;
      rstate_ = ReadState::done;
      close_transport_ = true;
      finish({1006, res.error, false, Cause::handshake_failed});
      return data.size();
    }
    const DeflateOptions* deflate = deflate_options();
    for (const auto& e : res.extensions) {
      if (deflate == nullptr || !iequals(e.name, extensions::kPermessageDeflate)) continue;
      // RFC 7692 §7.1: a response we cannot honour fails the connection (before it opened).
      auto agreed = extensions::client_accept_response(e, *deflate);
      if (!agreed.ok) {
        state_ = State::closed;
        rstate_ = ReadState::done;
        close_transport_ = true;
        finish({1006, agreed.error, false, Cause::handshake_failed});
        return data.size();
      }
      deflate_ = std::make_unique<extensions::PerMessageDeflate>(
          agreed.params, extensions::Side::client, deflate->level);
    }
    set_names(path(), res.subprotocol);
  }
  hs_.reset();  // the parser's buffers are not needed for the rest of the connection
  state_ = State::open;
  rstate_ = ReadState::header;
  handler_.on_open();
  return consumed;
}

bool Connection::begin_frame() {
  const auto& h = rx_->header;
  const auto op = static_cast<uint8_t>(h.opcode);
  if (h.rsv2 || h.rsv3 || (h.rsv1 && !deflate_)) {
    fail(1002, "RSV bit set without a negotiated extension", Cause::protocol_error);  // §5.2
    return false;
  }
  // RFC 7692 §6: RSV1 ("Per-Message Compressed") belongs on a data message's first frame only.
  if (h.rsv1 && codec::is_control(h.opcode)) {
    fail(1002, "RSV1 set on a control frame", Cause::protocol_error);
    return false;
  }
  if (h.rsv1 && h.opcode == Opcode::continuation) {
    fail(1002, "RSV1 set on a continuation frame", Cause::protocol_error);
    return false;
  }
  if (!codec::is_known_opcode(op)) {
    fail(1002, "reserved opcode " + std::to_string(op), Cause::protocol_error);  // §5.2
    return false;
  }
  if (config_.role == Role::server && !h.masked) {
    fail(1002, "client frame not masked", Cause::protocol_error);  // §5.1
    return false;
  }
  if (config_.role == Role::client && h.masked) {
    fail(1002, "server frame masked", Cause::protocol_error);  // §5.1
    return false;
  }
  if (codec::is_control(h.opcode)) {
    if (!h.fin) {
      fail(1002, "fragmented control frame", Cause::protocol_error);  // §5.5
      return false;
    }
    if (h.payload_len > codec::max_control_payload) {
      fail(1002, "control frame payload over 125 bytes", Cause::protocol_error);  // §5.5
      return false;
    }
    rx_->ctrl_len = 0;
    rx_->ctrl_data = nullptr;
  } else {
    if (h.opcode == Opcode::continuation && !rx_->in_message) {
      fail(1002, "continuation frame without a message in progress", Cause::protocol_error);
      return false;
    }
    if (h.opcode != Opcode::continuation && rx_->in_message) {
      fail(1002, "new data frame while a fragmented message is in progress",
           Cause::protocol_error);  // §5.4
      return false;
    }
    // A compressed message is bounded by its inflated size, checked as it inflates; only the
    // frame size applies to its wire bytes (they are never buffered).
    const bool compressed = h.opcode == Opcode::continuation ? rx_->msg_compressed : h.rsv1;
    if (h.payload_len > config_.max_frame ||
        (!compressed && rx_->msg.size() + h.payload_len > config_.max_message)) {
      fail(1009, "message too big", Cause::protocol_error);  // §7.4.1
      return false;
    }
    if (h.opcode != Opcode::continuation) {
      rx_->in_message = true;
      rx_->msg_type = h.opcode;
      rx_->msg_compressed = h.rsv1;
      rx_->utf8.reset();
    }
    rx_->zero_copy_done = false;
  }
  rx_->remaining = h.payload_len;
  rx_->mask_offset = 0;
  rstate_ = ReadState::payload;
  return true;
}

void Connection::payload_chunk(uint8_t* p, std::size_t n, bool whole_frame_here) {
  if (codec::is_control(rx_->header.opcode)) {
    if (whole_frame_here) {
      rx_->ctrl_data = p;  // end_frame() follows within this receive(): the bytes are still there
    } else {
      std::memcpy(rx_->ctrl_buf + rx_->ctrl_len, p, n);
      rx_->ctrl_data = rx_->ctrl_buf;
    }
    rx_->ctrl_len = static_cast<uint8_t>(rx_->ctrl_len + n);
    return;
  }
  std::span<const uint8_t> chunk(p, n);
  if (rx_->msg_compressed) {
    // RFC 7692 §7.2.2: inflate each piece as it arrives, into the message buffer (a compressed
    // message never takes the zero-copy path); the size limit and UTF-8 apply to its output.
    take_message_buffer();
    const std::size_t before = rx_->msg.size();
    inflated(deflate_->inflate(chunk, rx_->msg, config_.max_message), before);
    return;
  }
  // §8.1: fail fast on the first invalid byte, even in the middle of a fragment.
  if (rx_->msg_type == Opcode::text && !rx_->utf8.feed(chunk)) {
    fail(1007, "invalid UTF-8 in text message", Cause::protocol_error);
    return;
  }
  if (whole_frame_here && rx_->header.fin && rx_->msg.empty() &&
      rx_->header.opcode != Opcode::continuation) {
    // The common case: a whole unfragmented message in one read. Deliver it in place.
    if (rx_->msg_type == Opcode::text && !rx_->utf8.complete()) {
      fail(1007, "truncated UTF-8 sequence at end of text message", Cause::protocol_error);
      return;
    }
    rx_->zero_copy_done = true;
    rx_->in_message = false;
    deliver_message(rx_->msg_type, chunk);
    return;
  }
  take_message_buffer();
  rx_->msg.insert(rx_->msg.end(), p, p + n);
}

void Connection::end_frame() {
  rstate_ = ReadState::header;
  if (codec::is_control(rx_->header.opcode)) {
    handle_control();
    return;
  }
  if (!rx_->header.fin || rx_->zero_copy_done) return;
  if (rx_->msg_compressed) {
    take_message_buffer();
    const std::size_t before = rx_->msg.size();
    if (!inflated(deflate_->finish_message(rx_->msg, config_.max_message), before)) return;
  }
  if (rx_->msg_type == Opcode::text && !rx_->utf8.complete()) {
    fail(1007, "truncated UTF-8 sequence at end of text message", Cause::protocol_error);
    return;
  }
  rx_->in_message = false;
  deliver_message(rx_->msg_type, rx_->msg);
  rx_->msg.clear();
  if (config_.pools)
    config_.pools->message.give(rx_->msg);  // the next message in pieces takes one again
  else if (rx_->msg.capacity() > 64 * 1024)
    rx_->msg.shrink_to_fit();  // keep small buffers for reuse; release what a big message left
}

bool Connection::inflated(extensions::InflateStatus st, std::size_t before) {
  switch (st) {
    case extensions::InflateStatus::ok:
      break;
    case extensions::InflateStatus::too_big:
      // Found while inflating, before the whole message exists (RFC 7692 §8: bombs).
      fail(1009, "message too big", Cause::protocol_error);  // §7.4.1
      return false;
    case extensions::InflateStatus::corrupt:
      // RFC 7692 names no code. 1007 ("data not consistent with the type of the message",
      // §7.4.1) as ws does: the framing was valid, the payload was not (python websockets
      // sends 1002).
      fail(1007, "invalid compressed data", Cause::protocol_error);
      return false;
    case extensions::InflateStatus::no_memory:
      fail(1011, "out of memory inflating a message", Cause::protocol_error);
      return false;
  }
  // §8.1: UTF-8 is a property of the message, i.e. of the inflated bytes.
  if (rx_->msg_type == Opcode::text && !rx_->utf8.feed(std::span<const uint8_t>(
                                           rx_->msg.data() + before, rx_->msg.size() - before))) {
    fail(1007, "invalid UTF-8 in text message", Cause::protocol_error);
    return false;
  }
  return true;
}

void Connection::deliver_message(Opcode type, std::span<const uint8_t> data) {
  if (state_ != State::open && state_ != State::closing) return;
  handler_.on_message(type, data);
}

void Connection::handle_control() {
  std::span<const uint8_t> payload(rx_->ctrl_data, rx_->ctrl_len);
  switch (rx_->header.opcode) {
    case Opcode::ping:
      // §5.5.2: answer with a pong carrying the same application data (unless we closed).
      // §5.5.2: answer unless we already *received* a Close (which moves us to closed); having
      // only sent one (closing) still requires the pong.
      if (state_ == State::open || state_ == State::closing)
        write_frame(Opcode::pong, true, payload);
      handler_.on_ping(payload);
      return;
    case Opcode::pong:
      handler_.on_pong(payload);  // §5.5.3: unsolicited pongs are allowed and need no answer
      return;
    case Opcode::close: {
      codec::ClosePayload cp;
      switch (codec::parse_close_payload(payload, cp)) {
        case codec::ClosePayloadStatus::ok:
          break;
        case codec::ClosePayloadStatus::one_byte:
          fail(1002, "close frame with a 1-byte body", Cause::protocol_error);
          return;
        case codec::ClosePayloadStatus::invalid_code:
          fail(1002, "invalid close code " + std::to_string(cp.code), Cause::protocol_error);
          return;
        case codec::ClosePayloadStatus::invalid_utf8:
          fail(1007, "close reason is not UTF-8", Cause::protocol_error);
          return;
      }
      Cause cause = close_sent_ ? close_cause_ : Cause::remote_close;
      std::string reason(cp.reason);
      if (!close_sent_) {
        // §5.5.1: echo the status code we received (an empty body when it had none).
        uint8_t body[2];
        std::size_t len = codec::encode_close_payload(cp.code, {}, body);
        write_frame(Opcode::close, true, {body, len});
        close_sent_ = true;
      }
      state_ = State::closed;
      rstate_ = ReadState::done;
      close_transport_ = true;  // §7.1.1: the server closes TCP first; the client may too
      finish({cp.code, std::move(reason), true, cause});
      return;
    }
    default:
      return;
  }
}

bool Connection::send_any(Opcode type, std::span<const uint8_t> payload, bool fin) {
  if (state_ != State::open) return false;
  // Local misuse, not a peer fault: only data frames here (ping/pong/close have their own calls,
  // §5.5), and fragments must follow §5.4: first text/binary, then continuations.
  if (is_control(type)) return false;
  if ((type == Opcode::continuation) != out_in_message_) return false;
  if (deflate_ && fin && type != Opcode::continuation &&
      payload.size() >= deflate_options()->threshold && send_compressed(type, payload))
    return true;
  write_frame(type, fin, payload);
  out_in_message_ = !fin;
  return true;
}

int Connection::shared_deflate_key(std::size_t size) const {
  if (!deflate_ || size == 0 || size < deflate_options()->threshold) return -1;
  return deflate_->shared_key();
}

bool Connection::encode_shared_deflated(Opcode type, std::span<const uint8_t> payload,
                                        std::vector<uint8_t>& out) {
  if (shared_deflate_key(payload.size()) < 0) return false;
  thread_local std::vector<uint8_t> scratch;
  scratch.clear();
  bool ok = deflate_->compress(payload, scratch) && scratch.size() < payload.size();
  if (ok) {
    codec::FrameHeader h;
    h.rsv1 = true;  // RFC 7692 6: set on the (only) frame of a compressed message
    h.opcode = type;
    h.payload_len = scratch.size();
    const std::size_t hs = codec::header_size(scratch.size(), false);
    out.resize(hs + scratch.size());
    codec::encode_header(h, out.data());
    std::memcpy(out.data() + hs, scratch.data(), scratch.size());
  }
  if (scratch.capacity() > (1u << 20)) std::vector<uint8_t>().swap(scratch);
  return ok;
}

bool Connection::send_compressed(Opcode type, std::span<const uint8_t> payload) {
  // One scratch buffer per thread: the compressed size must be known before the header is
  // written, and the buffer is reused by every connection of the loop.
  thread_local std::vector<uint8_t> scratch;
  scratch.clear();
  bool sent = false;
  if (deflate_->compress(payload, scratch)) {
    // Incompressible data is cheaper plain, which is only safe when our compressor starts
    // fresh each message (a kept window would then hold bytes the peer never saw).
    if (!deflate_->compressor_resets() || scratch.size() < payload.size()) {
      write_frame(type, true, scratch, true);  // RFC 7692 §6: RSV1 on the (only) frame
      sent = true;
    }
  }
  if (scratch.capacity() > (1u << 20)) std::vector<uint8_t>().swap(scratch);
  return sent;
}

void Connection::encode_server_frame(Opcode type, std::span<const uint8_t> payload,
                                     std::vector<uint8_t>& out) {
  codec::FrameHeader h;
  h.opcode = type;
  h.payload_len = payload.size();
  const std::size_t hs = codec::header_size(payload.size(), false);
  out.resize(hs + payload.size());
  codec::encode_header(h, out.data());
  if (!payload.empty()) std::memcpy(out.data() + hs, payload.data(), payload.size());
}

bool Connection::send_encoded(std::span<const uint8_t> frame) {
  if (state_ != State::open || out_in_message_ || config_.role != Role::server) return false;
  out_.append(config_.pools, frame.data(), frame.size());
  return true;
}

bool Connection::ping(std::span<const uint8_t> payload) {
  if (state_ != State::open || payload.size() > codec::max_control_payload) return false;
  write_frame(Opcode::ping, true, payload);
  return true;
}

bool Connection::pong(std::span<const uint8_t> payload) {
  if (state_ != State::open || payload.size() > codec::max_control_payload) return false;
  write_frame(Opcode::pong, true, payload);
  return true;
}

bool Connection::close(uint16_t code, std::string_view reason, Cause cause) {
  if (state_ != State::open) return false;
  if (code != 1005 && !codec::is_valid_wire_close_code(code)) return false;  // §7.4.1
  if (reason.size() > codec::max_control_payload - 2) return false;
  if (!codec::is_valid_utf8(as_bytes(reason))) return false;
  if (code == 1005 && !reason.empty()) return false;
  uint8_t body[codec::max_control_payload];
  std::size_t len = codec::encode_close_payload(code, reason, body);
  write_frame(Opcode::close, true, {body, len});
  close_sent_ = true;
  close_cause_ = cause;
  state_ = State::closing;
  return true;
}

void Connection::fail(uint16_t code, std::string_view reason, Cause cause) {
  if (finished_) return;
  if (!close_sent_ && (state_ == State::open || state_ == State::closing)) {
    // The reason is informational; cut it at 123 bytes on a UTF-8 boundary.
    std::size_t len = std::min<std::size_t>(reason.size(), codec::max_control_payload - 2);
    while (len > 0 && len < reason.size() && (static_cast<uint8_t>(reason[len]) & 0xC0) == 0x80)
      --len;
    uint8_t body[codec::max_control_payload];
    std::size_t n = codec::encode_close_payload(code, reason.substr(0, len), body);
    write_frame(Opcode::close, true, {body, n});
    close_sent_ = true;
  }
  state_ = State::closed;
  rstate_ = ReadState::done;
  close_transport_ = true;  // §7.1.7: after failing, do not wait for the peer
  finish({code, std::string(reason), false, cause});
}

void Connection::receive_eof(Cause cause, std::string_view why) {
  if (finished_) return;
  if (state_ == State::connecting && config_.role == Role::client && cause == Cause::network_error)
    cause = Cause::handshake_failed;
  state_ = State::closed;
  rstate_ = ReadState::done;
  close_transport_ = true;
  finish({1006, std::string(why.empty() ? "connection closed without a close frame" : why), false,
          cause});
}

void Connection::write_frame(Opcode op, bool fin, std::span<const uint8_t> payload, bool rsv1) {
  codec::FrameHeader h;
  h.fin = fin;
  h.rsv1 = rsv1;
  h.opcode = op;
  h.masked = config_.role == Role::client;  // §5.1: clients mask, servers never do
  h.payload_len = payload.size();
  if (h.masked) h.mask_key = (config_.rng ? *config_.rng : thread_random()).next_u32();
  const std::size_t hs = codec::header_size(payload.size(), h.masked);
  // Under backpressure pings and pongs jump the queue (at a frame boundary, §5.4) so that
  // liveness holds however much data waits; otherwise frames keep their order. Never ahead of
  // our close frame, which must stay last (§5.5.1).
  const bool priority = transport_blocked_ && (op == Opcode::ping || op == Opcode::pong) &&
                        !out_.empty() && !close_sent_;
  uint8_t control[codec::max_header_size + codec::max_control_payload];
  uint8_t* p = priority ? control : out_.extend(config_.pools, hs + payload.size());
  codec::encode_header(h, p);
  if (!payload.empty()) {
    std::memcpy(p + hs, payload.data(), payload.size());
    if (h.masked) codec::apply_mask(p + hs, payload.size(), h.mask_key, 0);
  }
  if (priority) out_.insert_priority(config_.pools, control, hs + payload.size());
}

void Connection::finish(const CloseInfo& info) {
  if (finished_) return;
  finished_ = true;
  // Nothing more will be inflated: a shared inflater held mid-message goes back to the pool.
  if (deflate_) deflate_->abort_message();
  handler_.on_close(info);
}

}  // namespace tether::protocol
