#include "redis/link.hpp"

#include <hiredis/hiredis.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "loop/socket.hpp"

namespace tether::redis {

namespace {
const redisReply* rep(const void* r) { return static_cast<const redisReply*>(r); }
constexpr uint32_t kRead = EPOLLIN | EPOLLRDHUP;
}  // namespace

bool Reply::is_error() const { return rep(r_)->type == REDIS_REPLY_ERROR; }
bool Reply::is_nil() const { return rep(r_)->type == REDIS_REPLY_NIL; }
bool Reply::is_array() const { return rep(r_)->type == REDIS_REPLY_ARRAY; }
bool Reply::is_integer() const { return rep(r_)->type == REDIS_REPLY_INTEGER; }
long long Reply::integer() const { return rep(r_)->integer; }
std::string_view Reply::str() const {
  const auto* r = rep(r_);
  return r->str ? std::string_view(r->str, r->len) : std::string_view{};
}
std::size_t Reply::size() const { return is_array() ? rep(r_)->elements : 0; }
Reply Reply::at(std::size_t i) const { return Reply(rep(r_)->element[i]); }

bool parse_redis_url(std::string_view url, LinkConfig& out, std::string& error) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) {
    error = "expected redis://host[:port][/db], got '" + std::string(url) + "'";
    return false;
  }
  url.remove_prefix(scheme.size());
  std::string_view db;
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    db = url.substr(slash + 1);
    url = url.substr(0, slash);
  }
  std::string_view port;
  if (auto colon = url.rfind(':'); colon != std::string_view::npos && url.find(']') == url.npos) {
    port = url.substr(colon + 1);
    url = url.substr(0, colon);
  }
  if (url.size() >= 2 && url.front() == '[' && url.back() == ']')
    url = url.substr(1, url.size() - 2);
  if (url.empty()) {
    error = "redis URL has no host";
    return false;
  }
  out.host = std::string(url);
  auto number = [&](std::string_view s, int lo, int hi, int& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size() && v >= lo && v <= hi;
  };
  int v = 0;
  if (!port.empty()) {
    if (!number(port, 1, 65535, v)) {
      error = "bad port in redis URL: '" + std::string(port) + "'";
      return false;
    }
    out.port = static_cast<uint16_t>(v);
  }
  if (!db.empty()) {
    if (!number(db, 0, 1000000, v)) {
      error = "bad database number in redis URL: '" + std::string(db) + "'";
      return false;
    }
    out.db = v;
  }
  return true;
}

Link::Link(loop::EventLoop& loop, LinkConfig config, protocol::Random& rng)
    : loop_(loop), config_(std::move(config)), rng_(rng), backoff_(config_.backoff) {
  timer_.set_callback(
      [](loop::Timer&, void* self) {
        auto* l = static_cast<Link*>(self);
        if (l->state_ == State::connecting)
          l->drop("connect timed out");
        else if (l->state_ == State::down)
          l->connect_now();
      },
      this);
}

Link::~Link() {
  loop_.timers().cancel(timer_);
  if (fd_ >= 0) {
    loop_.remove(fd_);
    loop::close_fd(fd_);
  }
  if (reader_) redisReaderFree(reader_);
  // Waiting callbacks are dropped silently: their owner is going away with us.
}

uint64_t Link::random_bits() {
  uint64_t bits = 0;
  rng_.fill({reinterpret_cast<uint8_t*>(&bits), sizeof bits});
  return bits;
}

void Link::start() {
  if (started_) return;
  started_ = true;
  connect_now();
}

void Link::connect_now() {
  std::error_code ec;
  fd_ = loop::connect_tcp(config_.host, config_.port, ec);
  if (fd_ < 0) {
    drop("connect to redis " + config_.host + ":" + std::to_string(config_.port) + ": " +
         ec.message());
    return;
  }
  state_ = State::connecting;
  want_write_ = true;
  if (auto err = loop_.add(fd_, kRead | EPOLLOUT, this)) {
    loop::close_fd(fd_);
    fd_ = -1;
    state_ = State::down;
    last_error_ = "epoll: " + err.message();
    schedule_retry();
    return;
  }
  loop_.timers().schedule(timer_, loop_.now() + config_.connect_timeout);
}

void Link::connected() {
  loop_.timers().cancel(timer_);
  state_ = State::up;
  ever_up_ = true;
  backoff_.opened(loop_.now());
  reader_ = redisReaderCreate();
  out_.clear();
  out_pos_ = 0;
  internal_replies_ = 0;
  if (config_.db != 0) {
    const std::string db = std::to_string(config_.db);
    const std::string_view argv[] = {"SELECT", db};
    append_command(argv);
    ++internal_replies_;
  }
  if (!patterns_.empty()) {
    std::vector<std::string_view> argv{"PSUBSCRIBE"};
    for (auto& p : patterns_) argv.push_back(p);
    append_command(argv);
  }
  if (on_state) on_state(true);
  flush();
}

void Link::drop(std::string why) {
  if (fd_ >= 0) {
    loop_.remove(fd_);
    loop::close_fd(fd_);
    fd_ = -1;
  }
  const bool was_up = state_ == State::up;
  state_ = State::down;
  last_error_ = std::move(why);
  if (reader_) {
    redisReaderFree(reader_);
    reader_ = nullptr;
  }
  out_.clear();
  out_pos_ = 0;
  // Every command in flight failed: tell each caller, in order.
  std::deque<Callback> waiting;
  waiting.swap(pending_);
  for (auto& cb : waiting)
    if (cb) cb(nullptr);
  if (was_up) {
    backoff_.closed(loop_.now());
    ++reconnects_;
    if (on_state) on_state(false);
  } else if (!told_unreachable_ && !ever_up_) {
    told_unreachable_ = true;  // once: Redis was not there to begin with
    if (on_state) on_state(false);
  }
  schedule_retry();
}

void Link::schedule_retry() {
  state_ = State::down;
  auto delay = backoff_.next_delay(random_bits());
  loop_.timers().schedule(timer_, loop_.now() + delay.value_or(config_.backoff.max));
}

void Link::append_command(std::span<const std::string_view> argv) {
  // RESP: an array of bulk strings.
  out_ += '*';
  out_ += std::to_string(argv.size());
  out_ += "\r\n";
  for (auto a : argv) {
    out_ += '$';
    out_ += std::to_string(a.size());
    out_ += "\r\n";
    out_.append(a.data(), a.size());
    out_ += "\r\n";
  }
}

bool Link::command(std::span<const std::string_view> argv, Callback cb) {
  if (state_ != State::up || !patterns_.empty() || pending_.size() >= config_.max_pending) {
    if (cb) cb(nullptr);
    return false;
  }
  append_command(argv);
  pending_.push_back(std::move(cb));
  // Corked like the WebSocket writes: everything queued in this loop iteration goes together.
  if (!want_write_) {
    want_write_ = true;
    loop_.modify(fd_, kRead | EPOLLOUT, this);
  }
  return true;
}

void Link::psubscribe(std::vector<std::string> patterns, Message on_message) {
  patterns_ = std::move(patterns);
  on_message_ = std::move(on_message);
  if (state_ == State::up) {
    std::vector<std::string_view> argv{"PSUBSCRIBE"};
    for (auto& p : patterns_) argv.push_back(p);
    append_command(argv);
    flush();
  }
}

void Link::on_io(uint32_t events) {
  if (fd_ < 0) return;
  if (state_ == State::connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (auto ec = loop::connect_result(fd_)) {
      drop("connect to redis " + config_.host + ":" + std::to_string(config_.port) + ": " +
           ec.message());
      return;
    }
    connected();
    if (fd_ < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_some();
  if (fd_ >= 0) flush();
}

void Link::flush() {
  if (fd_ < 0 || state_ != State::up) return;
  while (out_pos_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n > 0) {
      out_pos_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!want_write_) {
        want_write_ = true;
        loop_.modify(fd_, kRead | EPOLLOUT, this);
      }
      return;
    }
    drop(std::string("redis write: ") + std::strerror(errno));
    return;
  }
  out_.clear();
  out_pos_ = 0;
  if (out_.capacity() > (1u << 20)) out_.shrink_to_fit();
  if (want_write_) {
    want_write_ = false;
    loop_.modify(fd_, kRead, this);
  }
}

void Link::read_some() {
  char buf[64 * 1024];
  for (int i = 0; i < 8 && fd_ >= 0; ++i) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      if (redisReaderFeed(reader_, buf, static_cast<std::size_t>(n)) != REDIS_OK) {
        drop("redis protocol error");
        return;
      }
      for (;;) {
        void* reply = nullptr;
        if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
          drop("redis protocol error");
          return;
        }
        if (!reply) break;
        dispatch(reply);
        freeReplyObject(reply);
        if (fd_ < 0) return;
      }
      if (static_cast<std::size_t>(n) < sizeof buf) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    drop(n == 0 ? "redis closed the connection"
                : std::string("redis read: ") + std::strerror(errno));
    return;
  }
}

void Link::dispatch(void* reply) {
  Reply r(reply);
  if (!patterns_.empty()) {
    // Subscriber: ["pmessage", pattern, channel, payload]; confirmations are ignored.
    if (r.is_array() && r.size() == 4 && r.at(0).str() == "pmessage" && on_message_)
      on_message_(r.at(2).str(), r.at(3).str());
    return;
  }
  if (internal_replies_ > 0) {
    --internal_replies_;
    if (r.is_error()) drop("redis: " + std::string(r.str()));
    return;
  }
  if (pending_.empty()) return;  // a reply nobody asked for: ignore
  Callback cb = std::move(pending_.front());
  pending_.pop_front();
  if (cb) cb(&r);
}

}  // namespace tether::redis
