// One accepted socket: glues a sans-I/O protocol::Connection to a loop and a file descriptor.
#pragma once
#include <cstdint>
#include <string>

#include "loop/event_loop.hpp"
#include "protocol/connection.hpp"
#include "tether/server.hpp"

namespace tether::detail {

struct LoopContext;

class ServerConn final : public Connection, public loop::IoHandler, public protocol::Handler {
 public:
  ServerConn(LoopContext& ctx, int fd, uint64_t id, std::string peer);

  // tether::Connection
  uint64_t id() const override { return id_; }
  const std::string& peer() const override { return peer_; }
  const std::string& path() const override { return proto_.path(); }
  const std::string& subprotocol() const override { return proto_.subprotocol(); }
  SendStatus send(std::string_view data, MessageType type) override;
  void close(uint16_t code, std::string_view reason) override;
  std::size_t buffered_amount() const override;

  // loop::IoHandler
  void on_io(uint32_t events) override;

  // protocol::Handler
  void on_open() override;
  void on_message(codec::Opcode type, std::span<const uint8_t> data) override;
  void on_close(const CloseInfo& info) override;
  void on_http_request(const protocol::HttpHead& request, std::string& response) override;

  // Writes what the protocol queued; closes the socket when the protocol is done.
  void flush();
  // Ends the connection now (shutdown timeout): reports `cause` and drops the socket.
  void abort(Cause cause, std::string_view why);
  bool dead() const { return dead_; }
  bool open() const { return proto_.state() == protocol::State::open; }
  bool in_flush_list = false;

 private:
  void read_some();
  void schedule_flush();
  void destroy();

  LoopContext& ctx_;
  int fd_;
  uint64_t id_;
  std::string peer_;
  protocol::Connection proto_;
  bool opened_ = false;
  bool dead_ = false;
  bool in_io_ = false;
  bool want_write_ = false;
};

}  // namespace tether::detail
