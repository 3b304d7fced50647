// One accepted socket: a WsStream (protocol + liveness + fd) plus the server's view of it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loop/slab_pool.hpp"
#include "loop/socket.hpp"
#include "resume/session_store.hpp"
#include "server/session_mirror.hpp"
#include "stream/ws_stream.hpp"
#include "tether/server.hpp"

namespace tether::detail {

struct LoopContext;

// The configuration every connection of a loop shares (LoopContext keeps the three kinds):
// `busy` answers 503, `metrics_only` serves only /metrics and /healthz.
StreamConfig make_stream_config(LoopContext& ctx, bool busy, bool metrics_only);

class ServerConn final : public Connection, public WsStream {
 public:
  // `busy`: over a connection limit; the handshake will be answered 503.
  // `metrics_only`: accepted on ServerOptions::metrics_port: serves /metrics and /healthz,
  // refuses upgrades (404), is not counted against the limits nor in the loop's metrics.
  ServerConn(LoopContext& ctx, uint64_t id, const loop::PeerAddress& peer, bool busy,
             bool metrics_only = false);
  // Made in and given back to the loop's ConnPool (no malloc header, exact size).
  static ServerConn* create(LoopContext& ctx, uint64_t id, const loop::PeerAddress& peer, bool busy,
                            bool metrics_only = false);
  static void destroy(ServerConn* c);

  // tether::Connection's (which forwards here; not virtual)
  uint64_t id() const { return id_; }
  std::string peer() const { return peer_.str(); }
  std::string_view path() const { return protocol().path(); }
  std::string_view subprotocol() const { return protocol().subprotocol(); }
  SendStatus send(std::string_view data, MessageType type);
  void close(uint16_t code, std::string_view reason) { close_stream(code, reason); }
  std::size_t buffered_amount() const { return buffered(); }
  std::optional<std::chrono::nanoseconds> rtt() const { return last_rtt(); }
  ConnectionStats stats() const { return WsStream::stats(); }

  std::string ip() const { return peer_.ip(); }  // the peer's address without the port
  // Counted against the limits (released on retire).
  bool admitted() const { return !busy_ && !metrics_only_; }
  LoopContext& context() { return ctx(); }
  // Subscriptions (none: no vector), removed from the loop's table on retire.
  std::vector<std::string>* topics() const { return ext_ ? ext_->topics.get() : nullptr; }
  std::vector<std::string>& make_topics();
  void drop_topics();
  // Fan-out: queue a frame encoded once for many (plain connections), or send the message
  // through the resume session (numbered per session).
  void send_prepared(std::span<const uint8_t> frame, std::string_view data, MessageType type);
  // The resume session this connection carries (tether.resume.v1 after its hello), else null.
  resume::Session* resume_session() const { return resume_ && ext_ ? ext_->session : nullptr; }
  // Numbers and writes one message of the session now (session_glue.cpp decides when).
  void session_emit(MessageType type, std::string_view data);
  // Another node owns the session now (its Redis writes were refused): end it here.
  void session_moved();

 private:
  // The loop's context, through the config every connection of the loop shares (not a member,
  // to keep connections small).
  LoopContext& ctx() const { return *static_cast<LoopContext*>(config().owner); }
  void stream_open() override;
  void stream_message(codec::Opcode type, std::span<const uint8_t> data) override;
  void stream_close(const CloseInfo& info) override;
  void stream_detached() override;
  void stream_schedule_flush() override;
  void on_http_request(const protocol::HttpHead& request, std::string& response) override;
  loop::TimePoint stream_deadline() const override;
  void stream_timer(loop::TimePoint now) override;
  // Session resume (tether.resume.v1): frames to the wire, the hello, ordinary messages.
  void resume_frame(MessageType type, std::span<const uint8_t> bytes);
  void resume_message(MessageType type, std::span<const uint8_t> data);
  void deliver(MessageType type, std::span<const uint8_t> data);
  // After a hello: counters, the previous owner, the application's on_open.
  void hello_done(resume::HelloResult& h);
  // The claim of a session from Redis came back (a hello for a session not on this loop).
  void claimed(const resume::SessionId& sid, uint64_t last, ClaimResult& r);
  // What most connections never need (pub/sub, session resume), in one block made on first
  // use: 8 bytes on each connection instead of 24.
  struct Ext {
    std::unique_ptr<std::vector<std::string>> topics;
    // Received while claiming (exists only then).
    std::unique_ptr<std::vector<std::pair<MessageType, std::string>>> held;
    resume::Session* session = nullptr;
    bool empty() const { return !topics && !held && session == nullptr; }
  };
  Ext& ext() {
    if (!ext_) ext_ = std::make_unique<Ext>();
    return *ext_;
  }
  void trim_ext() {
    if (ext_ && ext_->empty()) ext_.reset();
  }
  resume::Session* session() const { return ext_ ? ext_->session : nullptr; }
  void set_session(resume::Session* s) {
    if (s != nullptr) {
      ext().session = s;
    } else if (ext_) {
      ext_->session = nullptr;
      trim_ext();
    }
  }

  // Small fields first: they fill the stream's tail padding.
  loop::PeerAddress peer_;
  bool busy_ : 1 = false;
  bool metrics_only_ : 1 = false;
  bool opened_ : 1 = false;  // the application has seen on_open
  bool resume_ : 1 = false;  // tether.resume.v1 negotiated
  bool claiming_ : 1 = false;

 public:
  bool in_flush_list : 1 = false;
  bool retired : 1 = false;  // socket gone, deleted at the end of the loop iteration

 private:
  std::unique_ptr<Ext> ext_;
  uint64_t id_;
};

// The loop's blocks for its connections.
struct ConnPool : loop::SlabPool<sizeof(ServerConn), alignof(ServerConn)> {};

}  // namespace tether::detail
