// Resume sessions with Redis behind them (ServerOptions::redis_url): the write-ahead send path,
// topic messages for resume subscribers, and catching up on a topic after a session moved here.
// See session_mirror.hpp for what is stored and why.
#include "server/loop_context.hpp"
#include "server/server_conn.hpp"

namespace tether::detail {

namespace {
// Writes the message now on the connection carrying the session, or keeps it in the session's
// window while the client is away (it goes out with the replay after the resume).
void emit(LoopContext& ctx, resume::Session& s, MessageType type, std::string_view data) {
  ServerConn* c = s.owner ? ctx.find(s.owner) : nullptr;
  if (c && c->resume_session() == &s) {
    c->session_emit(type, data);
    return;
  }
  s.endpoint.send(type, protocol::Connection::as_bytes(data), ctx.loop.now(),
                  [](MessageType, std::span<const uint8_t>) {});
}

void set_position(resume::Session& s, std::string_view topic, std::string_view id) {
  for (auto& [t, pos] : s.stream_pos)
    if (t == topic) {
      pos = id;
      return;
    }
  s.stream_pos.emplace_back(topic, id);
}

const std::string* position(const resume::Session& s, std::string_view topic) {
  for (auto& [t, pos] : s.stream_pos)
    if (t == topic) return &pos;
  return nullptr;
}
}  // namespace

void LoopContext::session_send(resume::Session& s, MessageType type, std::string_view data,
                               std::string_view topic, std::string_view stream_id) {
  if (!stream_id.empty()) set_position(s, topic, stream_id);
  // Once a send went out unstored, later ones need not wait for Redis either; but never overtake
  // sends still waiting for it (their numbers are already promised).
  if (!mirror || (s.unshared && s.persisting == 0)) {
    emit(*this, s, type, data);
    return;
  }
  const uint64_t seq = s.endpoint.next_seq() + s.persisting;
  ++s.persisting;
  mirror->persist(
      s.id, seq, type, protocol::Connection::as_bytes(data), topic, stream_id,
      s.endpoint.peer_acked(),
      [this, sid = s.id, tag = s.tag, type, copy = std::string(data)](bool stored, bool fenced) {
        resume::Session* s = sessions->find(sid);
        if (!s || s->tag != tag) return;  // ended, expired, or replaced meanwhile
        --s->persisting;
        if (fenced) {
          // The client resumed on another node, which owns the session now.
          if (ServerConn* c = s->owner ? find(s->owner) : nullptr) {
            c->session_moved();
          } else {
            sessions->end(*s);
          }
          return;
        }
        if (!stored) s->unshared = true;  // resumes here only (elsewhere: resume_failed)
        emit(*this, *s, type, copy);
      });
}

void LoopContext::session_topic_message(ServerConn* c, std::string_view topic,
                                        std::string_view stream_id, std::string_view data,
                                        MessageType type) {
  resume::Session* s = c->resume_session();
  if (!s) return;
  if (!stream_id.empty()) {
    const std::string key = std::string(s->id.view()) + '\n' + std::string(topic);
    if (auto it = catching_up.find(key); it != catching_up.end()) {
      it->second.push_back({std::string(stream_id), type, std::string(data)});
      return;
    }
    // Already sent into the session (before it moved here, or by the catch-up).
    if (const std::string* pos = position(*s, topic); pos && !stream_id_after(stream_id, *pos))
      return;
  }
  session_send(*s, type, data, topic, stream_id);
}

void LoopContext::session_subscribed(ServerConn* c, std::string_view topic) {
  resume::Session* s = c->resume_session();
  if (!s) return;
  const std::string* pos = position(*s, topic);
  if (!pos) {
    mirror->subscribed(s->id, topic);  // first subscription: remember where the topic is
    return;
  }
  // The session moved here: what was published since its last message on this topic comes
  // from the topic's stream; live messages wait until then.
  const std::string key = std::string(s->id.view()) + '\n' + std::string(topic);
  catching_up[key];
  mirror->read_topic(topic, *pos,
                     [this, key, sid = s->id, tag = s->tag, t = std::string(topic)](
                         bool ok, std::vector<TopicEntry>& entries) {
                       auto held = std::move(catching_up[key]);
                       catching_up.erase(key);
                       resume::Session* s = sessions->find(sid);
                       if (!s || s->tag != tag) return;
                       if (!ok) {
                         // What was published meanwhile cannot be known: end the session rather
                         // than hide a gap. The client's next hello gets resume_failed (never a
                         // silent loss).
                         mirror->ended(s->id);
                         if (ServerConn* c = s->owner ? find(s->owner) : nullptr)
                           c->session_moved();
                         else
                           sessions->end(*s);
                         return;
                       }
                       for (auto* list : {&entries, &held})
                         for (auto& e : *list) {
                           const std::string* pos = position(*s, t);
                           if (pos && !stream_id_after(e.id, *pos)) continue;
                           session_send(*s, e.type, e.data, t, e.id);
                         }
                     });
}

}  // namespace tether::detail
