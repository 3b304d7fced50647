// ChatServer: rooms, nicknames, presence and history on a tether::Server, public API only.
// It is the server side of `tether serve --mode chat` and of examples/chat/main.cpp; the page is
// web/chat/ (served at `/`).
//
// Protocol: one JSON object per text message.
//
//   client -> server
//     {"type":"join","room":"lobby","nick":"ann"}   enter a room (leaves the previous one);
//                                                   nick 1-32, room 1-64 characters, no controls
//     {"type":"say","text":"hi","id":"c1-7"}        text 1-4096 characters; `id` (optional, <= 64)
//                                                   is the client's message id, echoed back. A say
//                                                   whose (nick, id) the room has already seen is
//                                                   not broadcast again: the original goes back to
//                                                   the sender only (re-sends after a reconnect).
//     {"type":"leave"}
//
//   server -> client
//     {"type":"history","room":"lobby","messages":[<message>...]}   to a joiner: the last 100
//     {"type":"message","room":"lobby","nick":"ann","text":"hi","ts":1732600000000,"id":"c1-7"}
//                                                   to the whole room, the sender included; ts is
//                                                   the server's time in ms since the epoch
//     {"type":"presence","room":"lobby","members":["ann","bob"],"joined":"ann"}   (or "left")
//     {"type":"error","message":"..."}              bad input; the connection stays open
//
// Threading: callbacks run on the connection's loop thread and the room state has no lock, so
// the server must run one loop (ServerOptions::threads == 1; `tether serve --mode chat` forces it).
// A reconnected client (resume or not) is a new connection: it sends join again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <tether/tether.hpp>
#include <unordered_map>

namespace chat {

class ChatServer {
 public:
  static constexpr std::size_t history_limit = 100;
  static constexpr std::size_t max_nick = 32, max_room = 64, max_text = 4096, max_id = 64;
  // Rooms keep their history while empty; past this many rooms an empty one is forgotten to make
  // room for a new one (and a join is refused when none is empty): bounded memory.
  static constexpr std::size_t max_rooms = 256;

  // Installs on_open/on_message/on_close on `server`. To add handlers of your own, install them
  // afterwards and call opened()/message()/closed() from them.
  explicit ChatServer(tether::Server& server);

  void opened(tether::Connection& c);
  void message(tether::Connection& c, std::string_view data, tether::MessageType type);
  void closed(tether::Connection& c);

  std::size_t room_count() const { return rooms_.size(); }

 private:
  struct Room {
    std::multiset<std::string> nicks;    // one entry per connection in the room
    std::deque<nlohmann::json> history;  // the last history_limit messages
    std::deque<std::string> seen_order;  // (nick, id) keys of recent messages, oldest first
    std::map<std::string, nlohmann::json> seen;
  };
  struct Member {
    std::string room, nick;
  };

  void join(tether::Connection& c, const std::string& room, const std::string& nick);
  void say(tether::Connection& c, const nlohmann::json& msg);
  void leave(tether::Connection& c);
  void presence(const std::string& room, const char* what, const std::string& nick);
  void error(tether::Connection& c, std::string_view what);
  static std::string topic(const std::string& room) { return "chat:" + room; }

  tether::Server& server_;
  std::unordered_map<uint64_t, Member> members_;  // by connection id, only while in a room
  std::map<std::string, Room> rooms_;
};

}  // namespace chat
