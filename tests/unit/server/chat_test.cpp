// The chat example's server side (examples/chat/chat_server.cpp) on a real Server over loopback:
// raw WebSocket clients join rooms, see presence and messages, get history, send bad input.
// Every wait is bounded by a socket receive timeout.
#include "chat_server.hpp"

#include "raw_peer.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace {

using nlohmann::json;

// A chat client: the shared raw WebSocket peer, speaking JSON text messages.
class Peer {
 public:
  explicit Peer(uint16_t port) : raw_(port) { ok_ = raw_.upgrade(); }
  bool ok() const { return ok_; }
  void send_raw(std::string_view payload, uint8_t opcode = 0x1) {
    raw_.write(tether_test::frame(static_cast<uint8_t>(0x80 | opcode), payload));
  }
  void send(const json& j) { send_raw(j.dump()); }

  // The next text message as JSON (control frames skipped); a discarded value on timeout/close.
  json next() {
    for (;;) {
      uint8_t opcode = 0;
      std::string payload;
      if (!raw_.read_frame(opcode, payload) || opcode == 0x8) return json(json::value_t::discarded);
      if (opcode == 0x1) return json::parse(payload, nullptr, false);
    }
  }
  // The next message of this type, skipping others (e.g. presence while waiting for a message).
  json next(std::string_view type) {
    for (int i = 0; i < 1000; ++i) {
      json j = next();
      if (j.is_discarded() || j.value("type", "") == type) return j;
    }
    return json(json::value_t::discarded);
  }

 private:
  tether_test::RawPeer raw_;
  bool ok_ = false;
};

std::string label(int i) {
  std::string s = "m";
  s += std::to_string(i);
  return s;
}

class Chat : public ::testing::Test {
 protected:
  void SetUp() override {
    tether::ServerOptions o;
    o.port = 0;
    o.threads = 1;
    o.shutdown_timeout = std::chrono::milliseconds(500);
    server = std::make_unique<tether::Server>(o);
    chat = std::make_unique<chat::ChatServer>(*server);
    ASSERT_FALSE(server->listen());
    thread = std::thread([this] { server->run(); });
  }
  void TearDown() override {
    server->stop();
    if (thread.joinable()) thread.join();
  }
  // Connects and joins; consumes the history and our own presence notice.
  std::unique_ptr<Peer> join(std::string room, std::string nick, json* history = nullptr) {
    auto p = std::make_unique<Peer>(server->port());
    EXPECT_TRUE(p->ok());
    p->send({{"type", "join"}, {"room", room}, {"nick", nick}});
    json h = p->next();
    EXPECT_EQ(h.value("type", ""), "history") << h;
    if (history) *history = h;
    json pr = p->next();
    EXPECT_EQ(pr.value("type", ""), "presence") << pr;
    EXPECT_EQ(pr.value("joined", ""), nick) << pr;
    return p;
  }
  std::unique_ptr<tether::Server> server;
  std::unique_ptr<chat::ChatServer> chat;
  std::thread thread;
};

TEST_F(Chat, PresenceAndMessagesFlowBetweenTwoClients) {
  json history;
  auto ann = join("lobby", "ann", &history);
  EXPECT_EQ(history["room"], "lobby");
  EXPECT_TRUE(history["messages"].empty());

  auto bob = join("lobby", "bob");
  json p = ann->next("presence");
  EXPECT_EQ(p["joined"], "bob");
  EXPECT_EQ(p["members"], json::array({"ann", "bob"}));

  ann->send({{"type", "say"}, {"text", "hello bob"}, {"id", "a-1"}});
  for (Peer* peer : {ann.get(), bob.get()}) {
    json m = peer->next("message");
    EXPECT_EQ(m["room"], "lobby");
    EXPECT_EQ(m["nick"], "ann");
    EXPECT_EQ(m["text"], "hello bob");
    EXPECT_EQ(m["id"], "a-1");
    EXPECT_TRUE(m["ts"].is_number_integer());
  }

  // A different room hears nothing of lobby.
  auto cat = join("kitchen", "cat");
  bob->send({{"type", "say"}, {"text", "only lobby"}, {"id", "b-1"}});
  EXPECT_EQ(ann->next("message")["text"], "only lobby");
  cat->send({{"type", "say"}, {"text", "kitchen talk"}, {"id", "c-1"}});
  EXPECT_EQ(cat->next("message")["text"], "kitchen talk");

  bob.reset();  // connection gone: a leave
  p = ann->next("presence");
  EXPECT_EQ(p["left"], "bob");
  EXPECT_EQ(p["members"], json::array({"ann"}));
  ann->send({{"type", "leave"}});
  cat->send({{"type", "say"}, {"text", "still here"}});
  EXPECT_EQ(cat->next("message")["text"], "still here");
}

TEST_F(Chat, LateJoinerGetsTheLast100Messages) {
  auto ann = join("lobby", "ann");
  for (int i = 0; i < 150; ++i) ann->send({{"type", "say"}, {"text", label(i)}, {"id", i}});
  for (int i = 0; i < 150; ++i) ASSERT_EQ(ann->next("message")["text"], label(i));
  json history;
  auto late = join("lobby", "late", &history);
  const json& msgs = history["messages"];
  ASSERT_EQ(msgs.size(), 100u);
  EXPECT_EQ(msgs.front()["text"], "m50");
  EXPECT_EQ(msgs.back()["text"], "m149");
  EXPECT_EQ(msgs.back()["id"], "149");
  EXPECT_EQ(msgs.back()["nick"], "ann");
}

TEST_F(Chat, ResentIdGoesBackToTheSenderOnly) {
  auto ann = join("lobby", "ann");
  auto bob = join("lobby", "bob");
  ann->send({{"type", "say"}, {"text", "once"}, {"id", "x"}});
  EXPECT_EQ(bob->next("message")["id"], "x");
  EXPECT_EQ(ann->next("message")["id"], "x");
  ann->send({{"type", "say"}, {"text", "once"}, {"id", "x"}});  // as after a reconnect
  json again = ann->next("message");
  EXPECT_EQ(again["id"], "x");
  ann->send({{"type", "say"}, {"text", "next"}, {"id", "y"}});
  EXPECT_EQ(bob->next("message")["id"], "y");  // bob never saw "x" twice
}

TEST_F(Chat, BadInputGetsAnErrorAndTheConnectionStays) {
  auto p = std::make_unique<Peer>(server->port());
  ASSERT_TRUE(p->ok());
  const std::string bad[] = {
      "not json",
      "[1,2]",
      R"({"no":"type"})",
      R"({"type":"dance"})",
      R"({"type":"say","text":"before join"})",
      R"({"type":"join","room":"","nick":"ann"})",
      R"({"type":"join","room":"lobby","nick":""})",
      R"({"type":"join","room":"lobby","nick":")" + std::string(33, 'n') + "\"}",
      R"({"type":"join","room":")" + std::string(65, 'r') + R"(","nick":"ann"})",
      R"({"type":"join","room":"lobby","nick":42})",
      R"({"type":"join","room":"lo\nbby","nick":"ann"})",
  };
  for (const auto& b : bad) {
    p->send_raw(b);
    json e = p->next();
    EXPECT_EQ(e.value("type", ""), "error") << b;
    EXPECT_TRUE(e["message"].is_string()) << b;
  }
  p->send_raw("\x01\x02", 0x2);  // binary
  EXPECT_EQ(p->next().value("type", ""), "error");

  // 32 characters of 2-byte UTF-8 is a valid nick (characters, not bytes).
  std::string nick;
  for (int i = 0; i < 32; ++i) nick += "\xC3\xA9";
  p->send({{"type", "join"}, {"room", "lobby"}, {"nick", nick}});
  EXPECT_EQ(p->next().value("type", ""), "history");
  EXPECT_EQ(p->next().value("joined", ""), nick);
  const std::string too_long(4097, 't');
  p->send({{"type", "say"}, {"text", too_long}});
  EXPECT_EQ(p->next().value("type", ""), "error");
  p->send({{"type", "say"}, {"text", ""}});
  EXPECT_EQ(p->next().value("type", ""), "error");
  p->send({{"type", "say"}, {"text", "ok"}, {"id", json::object()}});
  EXPECT_EQ(p->next().value("type", ""), "error");
  p->send({{"type", "say"}, {"text", std::string(4096, 't')}});
  json m = p->next();
  EXPECT_EQ(m.value("type", ""), "message");
  EXPECT_EQ(m["text"].get<std::string>().size(), 4096u);
  EXPECT_EQ(chat->room_count(), 1u);
}

}  // namespace
