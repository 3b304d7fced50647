// Resume sessions kept in Redis so that any node can carry them on (docs/deploy.md,
// docs/resume.md "Several nodes"). One per event loop, on that loop's own redis::Link.
//
// Keys, per session id S (both expire resume_window after the last write):
//   tether:s:S:h  hash   owner (node id), out (highest seq stored), in (highest client seq
//                        delivered), tp:<topic> (last topic stream id sent into the session)
//   tether:s:S:o  stream entries with id 0-<seq>: y (t|b), d (payload); trimmed to the
//                        client's acknowledgements
//
// Write-ahead: a message to a session is stored (with its seq) before it is written to the
// socket, so a client can never hold a message the store does not have: after a node dies,
// whichever node the client reaches next replays exactly what it missed. A store that cannot be
// written (Redis down) lets the message go anyway and marks the session `unshared`: it still
// resumes on this node, and a resume elsewhere is answered resume_failed (never a silent gap).
// The owner field fences a node that has not noticed its client moved: its writes are refused.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "redis/link.hpp"
#include "resume/session_id.hpp"
#include "tether/message.hpp"

namespace tether::detail {

struct LoopContext;

// "1700000000000-3" -> (1700000000000, 3); (0, 0) when malformed.
std::pair<uint64_t, uint64_t> parse_stream_id(std::string_view id);
bool stream_id_after(std::string_view a, std::string_view b);  // a > b

struct ClaimResult {
  enum class Kind : uint8_t { found, unknown, unavailable } kind = Kind::unavailable;
  uint64_t out = 0;  // highest seq stored
  uint64_t in = 0;   // highest client seq delivered
  struct Entry {
    uint64_t seq;
    MessageType type;
    std::string data;
  };
  std::vector<Entry> entries;                                  // seq > the hello's last, in order
  std::vector<std::pair<std::string, std::string>> positions;  // topic -> stream id
  std::string error;
};

struct TopicEntry {
  std::string id;
  MessageType type;
  std::string data;
};

class SessionMirror {
 public:
  SessionMirror(LoopContext& ctx, redis::LinkConfig config, std::string node_id);
  void start() { link_.start(); }
  bool up() const { return link_.up(); }

  // A hello for a session this loop does not hold: make this node its owner and load it.
  void claim(const resume::SessionId& sid, uint64_t last, std::function<void(ClaimResult&)> done);
  // A new session on this node.
  void created(const resume::SessionId& sid);
  // Stores message `seq` (and, for a topic message, the topic's stream position) and then calls
  // `go(stored)` on this loop, in call order. stored=false: Redis was down or refused (fenced).
  void persist(const resume::SessionId& sid, uint64_t seq, MessageType type,
               std::span<const uint8_t> data, std::string_view topic, std::string_view stream_id,
               uint64_t acked, std::function<void(bool stored, bool fenced)> go);
  // The client's messages through `in` were delivered (fire and forget).
  void received(const resume::SessionId& sid, uint64_t in);
  // The session ended for good (clean close): its keys go.
  void ended(const resume::SessionId& sid);
  // A subscription of a session: remember the topic's current end if nothing is known yet.
  void subscribed(const resume::SessionId& sid, std::string_view topic);
  // Topic messages after `after`, in order (catching up after a move).
  void read_topic(std::string_view topic, std::string_view after,
                  std::function<void(bool ok, std::vector<TopicEntry>&)> done);

 private:
  LoopContext& ctx_;
  redis::Link link_;
  std::string node_id_;
  std::string window_ms_;
};

}  // namespace tether::detail
