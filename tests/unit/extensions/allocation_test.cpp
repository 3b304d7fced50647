// DESIGN habit 7 with permessage-deflate: once buffers have grown and the per-thread (or
// per-connection) zlib streams exist, compressing and inflating a message allocates nothing.
// Counts every operator new in this binary (zlib's own state is allocated only when a stream is
// created, which the warm-up does).
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <span>
#include <vector>

#include "extensions/permessage_deflate.hpp"
#include "protocol/connection.hpp"
#include "protocol/random.hpp"
#include "tether/options.hpp"
#include "unit/protocol/connection_harness.hpp"

namespace {
std::size_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++allocations;
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using tether::DeflateOptions;
using tether::codec::Opcode;
using tether::extensions::DeflateParams;
using tether::extensions::InflateStatus;
using tether::extensions::PerMessageDeflate;
using tether::extensions::Side;
using tether::protocol::Connection;
using tether::protocol::ConnectionConfig;
using tether::protocol::CountingRandom;
using tether::protocol::Role;
using Bytes = std::vector<uint8_t>;

Bytes json(std::size_t n, unsigned salt) {
  Bytes b;
  while (b.size() < n) {
    for (char c : std::string_view("{\"seq\":12345,\"user\":\"alice\",\"text\":\"hi there\"}\n"))
      b.push_back(static_cast<uint8_t>(c + (b.size() % 7 == 0 ? salt % 3 : 0)));
  }
  b.resize(n);
  return b;
}

TEST(Allocation, PerMessageDeflateAllocatesNothingPerMessage) {
  for (bool reset : {true, false}) {
    SCOPED_TRACE(reset ? "no context takeover (shared streams)" : "context takeover");
    const DeflateParams p{reset, reset, 15, 15};
    PerMessageDeflate sender(p, Side::server), receiver(p, Side::client);
    const Bytes m1 = json(3000, 1), m2 = json(500, 2);
    Bytes wire, out;
    bool ok = true;
    auto round = [&](const Bytes& m) {
      wire.clear();
      out.clear();
      ok = ok && sender.compress(m, wire);
      ok = ok && receiver.inflate(wire, out, 1u << 20) == InflateStatus::ok;
      ok = ok && receiver.finish_message(out, 1u << 20) == InflateStatus::ok;
      ok = ok && out == m;
    };
    for (int i = 0; i < 10; ++i) round(i % 2 ? m1 : m2);  // warm-up: streams and buffers
    const std::size_t before = allocations;
    for (int i = 0; i < 1000; ++i) round(i % 2 ? m1 : m2);
    const std::size_t used = allocations - before;
    EXPECT_TRUE(ok);
    EXPECT_EQ(used, 0u) << "allocations in 1000 messages";
  }
}

// Counts messages; echoes them when `echo` (a re-entrant send from the callback).
class Counter final : public tether::protocol::Handler {
 public:
  Connection* conn = nullptr;
  bool echo = false;
  std::size_t messages = 0;
  std::size_t bytes = 0;
  void on_message(Opcode type, std::span<const uint8_t> data) override {
    ++messages;
    bytes += data.size();
    if (echo) conn->send(type, data);
  }
  void on_close(const tether::CloseInfo&) override {}
};

// Moves what `from` wrote into `to` through a reused buffer.
void transfer(Connection& from, Connection& to, Bytes& buf) {
  buf.assign(from.out().data(), from.out().data() + from.out().size());
  from.consume_out(from.out().size());
  to.receive(buf);
}

TEST(Allocation, DeflateConnectionsAllocateNothingPerMessage) {
  for (bool reset : {true, false}) {
    SCOPED_TRACE(reset ? "no context takeover (shared streams)" : "context takeover");
    DeflateOptions o;
    o.enabled = true;
    o.server_no_context_takeover = reset;
    o.client_no_context_takeover = reset;
    ConnectionConfig scfg, ccfg;
    scfg.role = Role::server;
    scfg.deflate = &o;
    ccfg.role = Role::client;
    ccfg.deflate = &o;
    Counter sh, ch;
    sh.echo = true;
    CountingRandom srng(1), crng(2);
    scfg.rng = &srng;
    ccfg.rng = &crng;
    Connection server(scfg, sh), client(ccfg, ch);
    sh.conn = &server;
    ch.conn = &client;
    client.start_client(tether_conn_test::rfc_client_request());
    Bytes buf;
    buf.reserve(1u << 16);
    transfer(client, server, buf);
    transfer(server, client, buf);
    ASSERT_TRUE(server.deflate_active());
    ASSERT_TRUE(client.deflate_active());
    const Bytes m1 = json(4000, 1), m2 = json(200, 2);
    auto round = [&](const Bytes& m) {
      client.send(Opcode::text, m);
      transfer(client, server, buf);  // the server echoes from on_message
      transfer(server, client, buf);
    };
    for (int i = 0; i < 10; ++i) round(i % 2 ? m1 : m2);
    const std::size_t before = allocations;
    for (int i = 0; i < 1000; ++i) round(i % 2 ? m1 : m2);
    const std::size_t used = allocations - before;
    EXPECT_EQ(ch.messages, 1010u);
    EXPECT_EQ(ch.bytes, 505u * (4000 + 200));
    EXPECT_EQ(used, 0u) << "allocations in 1000 echoed messages";
  }
}

}  // namespace
