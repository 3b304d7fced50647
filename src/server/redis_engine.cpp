#include "server/redis_engine.hpp"

#include <cstdio>

#include "server/server_impl.hpp"

namespace tether::detail {

namespace {
// One round trip, atomic: keep the message in the topic's stream for the resume window (trimmed
// by time: stream ids are milliseconds) and publish it with its stream id to the other nodes.
// KEYS: stream, channel. ARGV: node id, t|b, payload, window in ms.
constexpr std::string_view kPublishScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[4])
local id
if window > 0 then
  id = redis.call('XADD', KEYS[1], 'MINID', '~', tostring(now - window), '*',
                  'n', ARGV[1], 'y', ARGV[2], 'd', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
else
  id = '0-0'
end
redis.call('PUBLISH', KEYS[2], ARGV[1] .. '\n' .. ARGV[2] .. '\n' .. id .. '\n' .. ARGV[3])
return id
)lua";

std::string random_node_id(protocol::Random& rng) {
  uint8_t b[8];
  rng.fill(b);
  char hex[17];
  for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", b[i]);
  return std::string(hex, 16);
}
}  // namespace

RedisEngine::RedisEngine(ServerImpl& server, loop::EventLoop& loop, redis::LinkConfig config,
                         protocol::Random& rng)
    : server_(server),
      cmd_(loop, config, rng),
      sub_(loop, config, rng),
      node_id_(random_node_id(rng)) {
  cmd_.on_state = [this](bool link_up) { state_changed(link_up); };
  sub_.on_state = [this](bool link_up) { state_changed(link_up); };
  sub_.psubscribe({"tether:p:*"}, [this](std::string_view channel, std::string_view payload) {
    on_message(channel, payload);
  });
}

void RedisEngine::start() {
  cmd_.start();
  sub_.start();
}

void RedisEngine::state_changed(bool link_up) {
  const bool now_up = up();
  if (now_up == reported_up_) {
    // Not reachable to begin with (a link's first attempts failed): say so once; the links
    // keep retrying.
    if (!link_up && !now_up && !told_unreachable_) {
      told_unreachable_ = true;
      server_.error("redis: unreachable (" + (cmd_.up() ? sub_.last_error() : cmd_.last_error()) +
                    "); serving local connections only, retrying");
    }
    return;
  }
  reported_up_ = now_up;
  server_.redis_up.store(now_up ? 1 : 0, std::memory_order_relaxed);
  if (now_up) {
    told_unreachable_ = true;
    std::string msg = "redis: link up (node " + node_id_ + ")";
    if (failures_in_outage_ > 0)
      msg += "; " + std::to_string(failures_in_outage_) +
             " publishes during the outage reached this node's subscribers only";
    failures_in_outage_ = 0;
    server_.error(msg);
  } else {
    server_.redis_reconnects.fetch_add(1, std::memory_order_relaxed);
    server_.error("redis: link down (" + (cmd_.up() ? sub_.last_error() : cmd_.last_error()) +
                  "); serving local connections only, reconnecting");
  }
}

void RedisEngine::publish(std::string_view topic, std::string_view data, MessageType type,
                          bool resume_waiting) {
  const std::string stream = "tether:t:" + std::string(topic);
  const std::string channel = "tether:p:" + std::string(topic);
  const std::string window = std::to_string(server_.opts.resume_window.count());
  const std::string_view argv[] = {
      "EVAL", kPublishScript, "2", stream, channel, node_id_, type == MessageType::text ? "t" : "b",
      data,   window};
  cmd_.command(argv, [this, t = std::string(topic), d = std::string(data), type,
                      resume_waiting](const redis::Reply* r) {
    if (r && !r->is_error()) return;
    // This node's resume sessions were waiting for the id: without one they get it now (it is
    // not in the topic stream, so no catch-up can send it twice).
    if (resume_waiting && deliver) deliver(t, d, type, {}, true);
    // Not shared with the other nodes: counted, and reported when the link is back.
    ++publish_failures_;
    ++failures_in_outage_;
    server_.redis_publish_failures.fetch_add(1, std::memory_order_relaxed);
    if (r) server_.error("redis: publish failed: " + std::string(r->str()));
  });
}

void RedisEngine::on_message(std::string_view channel, std::string_view payload) {
  constexpr std::string_view prefix = "tether:p:";
  if (!channel.starts_with(prefix)) return;
  const std::string_view topic = channel.substr(prefix.size());
  // "<node>\n<t|b>\n<id>\n<data>"
  const auto a = payload.find('\n');
  if (a == std::string_view::npos) return;
  const auto b = payload.find('\n', a + 1);
  if (b == std::string_view::npos) return;
  const auto c = payload.find('\n', b + 1);
  if (c == std::string_view::npos) return;
  const std::string_view node = payload.substr(0, a);
  const std::string_view kind = payload.substr(a + 1, b - a - 1);
  const std::string_view id = payload.substr(b + 1, c - b - 1);
  const std::string_view data = payload.substr(c + 1);
  // Ours: plain subscribers had it when it was published; resume sessions get it now, with the
  // stream id that makes it resumable on any node.
  if (deliver)
    deliver(topic, data, kind == "b" ? MessageType::binary : MessageType::text, id,
            node == node_id_);
}

}  // namespace tether::detail
