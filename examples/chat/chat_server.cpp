// ChatServer: see chat_server.hpp for the protocol.
#include "chat_server.hpp"

#include <chrono>
#include <vector>

namespace chat {

using nlohmann::json;

namespace {

// Length in characters (UTF-8 code points; text frames are valid UTF-8 by the time we see them).
std::size_t chars(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

bool has_control(std::string_view s) {
  for (unsigned char ch : s)
    if (ch < 0x20 || ch == 0x7F) return true;
  return false;
}

// A string field of `msg`, or nullptr when missing or not a string.
const std::string* field(const json& msg, const char* name) {
  auto it = msg.find(name);
  return it != msg.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ChatServer::ChatServer(tether::Server& server) : server_(server) {
  server.on_open([this](tether::Connection& c) { opened(c); });
  server.on_message([this](tether::Connection& c, std::string_view d, tether::MessageType t) {
    message(c, d, t);
  });
  server.on_close([this](tether::Connection& c, const tether::CloseInfo&) { closed(c); });
}

void ChatServer::opened(tether::Connection&) {}  // nothing until the client joins

void ChatServer::closed(tether::Connection& c) { leave(c); }

void ChatServer::message(tether::Connection& c, std::string_view data, tether::MessageType type) {
  if (type != tether::MessageType::text) return error(c, "expected a JSON text message");
  json msg = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object()) return error(c, "expected a JSON object");
  const std::string* kind = field(msg, "type");
  if (!kind) return error(c, "missing \"type\"");
  if (*kind == "join") {
    const std::string* room = field(msg, "room");
    const std::string* nick = field(msg, "nick");
    if (!room || chars(*room) < 1 || chars(*room) > max_room || has_control(*room))
      return error(c, "room: 1 to 64 characters, no control characters");
    if (!nick || chars(*nick) < 1 || chars(*nick) > max_nick || has_control(*nick))
      return error(c, "nick: 1 to 32 characters, no control characters");
    return join(c, *room, *nick);
  }
  if (*kind == "say") return say(c, msg);
  if (*kind == "leave") return leave(c);
  error(c, "unknown type: " + kind->substr(0, 32));
}

void ChatServer::join(tether::Connection& c, const std::string& room, const std::string& nick) {
  if (auto it = members_.find(c.id()); it != members_.end()) {
    if (it->second.room == room && it->second.nick == nick) {  // already there: state again
      c.send(dump({{"type", "history"}, {"room", room}, {"messages", rooms_[room].history}}));
      return presence(room, "joined", nick);
    }
    leave(c);
  }
  if (!rooms_.count(room) && rooms_.size() >= max_rooms) {
    auto empty = rooms_.begin();
    while (empty != rooms_.end() && !empty->second.nicks.empty()) ++empty;
    if (empty == rooms_.end()) return error(c, "too many rooms");
    rooms_.erase(empty);
  }
  Room& r = rooms_[room];
  r.nicks.insert(nick);
  members_[c.id()] = Member{room, nick};
  server_.subscribe(c, topic(room));
  c.send(dump({{"type", "history"}, {"room", room}, {"messages", r.history}}));
  presence(room, "joined", nick);
}

void ChatServer::say(tether::Connection& c, const json& msg) {
  auto me = members_.find(c.id());
  if (me == members_.end()) return error(c, "join a room first");
  const std::string* text = field(msg, "text");
  if (!text || text->empty() || chars(*text) > max_text)
    return error(c, "text: 1 to 4096 characters");
  std::string id;
  if (auto it = msg.find("id"); it != msg.end()) {
    if (it->is_string())
      id = it->get<std::string>();
    else if (it->is_number_integer())
      id = std::to_string(it->get<int64_t>());
    if (id.empty() || id.size() > max_id || has_control(id))
      return error(c, "id: a string of 1 to 64 characters");
  }
  const Member& m = me->second;
  Room& r = rooms_[m.room];
  if (!id.empty()) {
    const std::string key = m.nick + '\n' + id;
    if (auto seen = r.seen.find(key); seen != r.seen.end()) {
      c.send(dump(seen->second));  // a re-send of a message the room already has
      return;
    }
  }
  json out = {{"type", "message"}, {"room", m.room}, {"nick", m.nick},
              {"text", *text},     {"ts", now_ms()}, {"id", id}};
  r.history.push_back(out);
  if (r.history.size() > history_limit) r.history.pop_front();
  if (!id.empty()) {
    const std::string key = m.nick + '\n' + id;
    r.seen.emplace(key, out);
    r.seen_order.push_back(key);
    if (r.seen_order.size() > 10 * history_limit) {
      r.seen.erase(r.seen_order.front());
      r.seen_order.pop_front();
    }
  }
  server_.publish(topic(m.room), dump(out));
}

void ChatServer::leave(tether::Connection& c) {
  auto me = members_.find(c.id());
  if (me == members_.end()) return;
  const Member m = std::move(me->second);
  members_.erase(me);
  server_.unsubscribe(c, topic(m.room));
  auto room = rooms_.find(m.room);
  if (room == rooms_.end()) return;
  if (auto n = room->second.nicks.find(m.nick); n != room->second.nicks.end())
    room->second.nicks.erase(n);
  presence(m.room, "left", m.nick);
}

void ChatServer::presence(const std::string& room, const char* what, const std::string& nick) {
  const Room& r = rooms_[room];
  std::vector<std::string> members;  // unique, sorted (two tabs may share a nick)
  for (const auto& n : r.nicks)
    if (members.empty() || members.back() != n) members.push_back(n);
  server_.publish(topic(room),
                  dump({{"type", "presence"}, {"room", room}, {"members", members}, {what, nick}}));
}

void ChatServer::error(tether::Connection& c, std::string_view what) {
  c.send(dump({{"type", "error"}, {"message", what}}));
}

}  // namespace chat
