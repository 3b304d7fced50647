#include "server/session_mirror.hpp"

#include <charconv>

#include "server/loop_context.hpp"

namespace tether::detail {

namespace {
// KEYS: hash, stream. ARGV: node, seq, t|b, payload, window ms, "tp:<topic>" or "", stream id,
// acked. Refuses (FENCED) when another node owns the session now.
constexpr std::string_view kPersist = R"lua(
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return redis.error_reply('FENCED owned by ' .. owner) end
redis.call('XADD', KEYS[2], '0-' .. ARGV[2], 'y', ARGV[3], 'd', ARGV[4])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'out', ARGV[2], ARGV[6], ARGV[7])
else
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'out', ARGV[2])
end
if tonumber(ARGV[8]) > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. tostring(tonumber(ARGV[8]) + 1))
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
)lua";

// KEYS: hash, stream. ARGV: node, last, window ms. {0} unknown, {1, hash, entries} claimed.
constexpr std::string_view kClaim = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local h = redis.call('HGETALL', KEYS[1])
local e = redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[2], '+')
return {1, h, e}
)lua";

// KEYS: session hash, topic stream. ARGV: "tp:<topic>". Records the topic's current end as the
// session's position unless it has one.
constexpr std::string_view kSubscribed = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local id = '0-0'
  if #last > 0 then id = last[1][1] end
  redis.call('HSET', KEYS[1], ARGV[1], id)
end
return 1
)lua";

// a + b without `"literal" + std::string`, which trips GCC 12's -Wrestrict false positive.
std::string cat(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size() + b.size());
  out.append(a).append(b);
  return out;
}

std::string hash_key(const resume::SessionId& sid) {
  return cat(cat("tether:s:", sid.view()), ":h");
}
std::string stream_key(const resume::SessionId& sid) {
  return cat(cat("tether:s:", sid.view()), ":o");
}

uint64_t to_u64(std::string_view s) {
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Fields of one stream entry ([id, [f1, v1, f2, v2, ...]]).
std::string_view field(const redis::Reply& fields, std::string_view name) {
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
    if (fields.at(i).str() == name) return fields.at(i + 1).str();
  return {};
}
}  // namespace

std::pair<uint64_t, uint64_t> parse_stream_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos) return {to_u64(id), 0};
  return {to_u64(id.substr(0, dash)), to_u64(id.substr(dash + 1))};
}

bool stream_id_after(std::string_view a, std::string_view b) {
  return parse_stream_id(a) > parse_stream_id(b);
}

SessionMirror::SessionMirror(LoopContext& ctx, redis::LinkConfig config, std::string node_id)
    : ctx_(ctx),
      link_(ctx.loop, std::move(config), ctx.rng),
      node_id_(std::move(node_id)),
      window_ms_(std::to_string(ctx.server.opts.resume_window.count())) {}

void SessionMirror::claim(const resume::SessionId& sid, uint64_t last,
                          std::function<void(ClaimResult&)> done) {
  const std::string h = hash_key(sid), o = stream_key(sid), l = std::to_string(last);
  const std::string_view argv[] = {"EVAL", kClaim, "2", h, o, node_id_, l, window_ms_};
  link_.command(argv, [done = std::move(done)](const redis::Reply* r) {
    ClaimResult res;
    if (!r || r->is_error() || !r->is_array() || r->size() == 0) {
      res.kind = ClaimResult::Kind::unavailable;
      res.error = r ? std::string(r->str()) : "redis unreachable";
      done(res);
      return;
    }
    if (r->at(0).integer() == 0 || r->size() < 3) {
      res.kind = ClaimResult::Kind::unknown;
      done(res);
      return;
    }
    res.kind = ClaimResult::Kind::found;
    const redis::Reply hash = r->at(1);
    for (std::size_t i = 0; i + 1 < hash.size(); i += 2) {
      const auto k = hash.at(i).str();
      const auto v = hash.at(i + 1).str();
      if (k == "out")
        res.out = to_u64(v);
      else if (k == "in")
        res.in = to_u64(v);
      else if (k.starts_with("tp:"))
        res.positions.emplace_back(std::string(k.substr(3)), std::string(v));
    }
    const redis::Reply entries = r->at(2);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const redis::Reply e = entries.at(i);
      if (e.size() < 2) continue;
      const redis::Reply fields = e.at(1);
      res.entries.push_back({parse_stream_id(e.at(0).str()).second,
                             field(fields, "y") == "b" ? MessageType::binary : MessageType::text,
                             std::string(field(fields, "d"))});
    }
    done(res);
  });
}

void SessionMirror::created(const resume::SessionId& sid) {
  const std::string h = hash_key(sid);
  link_.command({"HSET", h, "owner", node_id_, "out", "0", "in", "0"}, nullptr);
  link_.command({"PEXPIRE", h, window_ms_}, nullptr);
}

void SessionMirror::persist(const resume::SessionId& sid, uint64_t seq, MessageType type,
                            std::span<const uint8_t> data, std::string_view topic,
                            std::string_view stream_id, uint64_t acked,
                            std::function<void(bool, bool)> go) {
  const std::string h = hash_key(sid), o = stream_key(sid), q = std::to_string(seq),
                    a = std::to_string(acked);
  const std::string tp = stream_id.empty() ? std::string() : cat("tp:", topic);
  const std::string_view payload(reinterpret_cast<const char*>(data.data()), data.size());
  const std::string_view argv[] = {
      "EVAL",  kPersist,   "2", h,         o, node_id_, q, type == MessageType::text ? "t" : "b",
      payload, window_ms_, tp,  stream_id, a};
  link_.command(argv, [go = std::move(go)](const redis::Reply* r) {
    const bool fenced = r && r->is_error() && r->str().starts_with("FENCED");
    go(r && !r->is_error(), fenced);
  });
}

void SessionMirror::received(const resume::SessionId& sid, uint64_t in) {
  const std::string h = hash_key(sid), v = std::to_string(in);
  link_.command({"HSET", h, "in", v}, nullptr);
}

void SessionMirror::ended(const resume::SessionId& sid) {
  const std::string h = hash_key(sid), o = stream_key(sid);
  link_.command({"DEL", h, o}, nullptr);
}

void SessionMirror::subscribed(const resume::SessionId& sid, std::string_view topic) {
  const std::string h = hash_key(sid), t = cat("tether:t:", topic), f = cat("tp:", topic);
  const std::string_view argv[] = {"EVAL", kSubscribed, "2", h, t, f};
  link_.command(argv, nullptr);
}

void SessionMirror::read_topic(std::string_view topic, std::string_view after,
                               std::function<void(bool, std::vector<TopicEntry>&)> done) {
  const std::string t = cat("tether:t:", topic), from = cat("(", after);
  link_.command({"XRANGE", t, from, "+"}, [done = std::move(done)](const redis::Reply* r) {
    std::vector<TopicEntry> out;
    if (!r || !r->is_array()) {
      done(false, out);
      return;
    }
    for (std::size_t i = 0; i < r->size(); ++i) {
      const redis::Reply e = r->at(i);
      if (e.size() < 2) continue;
      const redis::Reply fields = e.at(1);
      out.push_back({std::string(e.at(0).str()),
                     field(fields, "y") == "b" ? MessageType::binary : MessageType::text,
                     std::string(field(fields, "d"))});
    }
    done(true, out);
  });
}

}  // namespace tether::detail
