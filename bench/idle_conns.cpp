// idle_conns: hold many idle WebSocket connections open on one event loop, for measuring what
// a server spends on connections that only exchange heartbeats (bench/idle.sh drives it).
//
//   idle_conns URL --connections N --hold SECONDS [--ping-interval 0] [--batch 200]
//              [--pause-at K [--pause SECONDS]]
//
// All N tether::Client objects share one tether::Loop, run by the main thread. A driver thread
// connects them in batches (--batch at a time, waiting for the batch to open before starting
// the next, so the server's accept queue is never flooded), holds them open for --hold seconds,
// then closes them all with 1000 and waits (bounded) for the closing handshakes.
//
// Client heartbeats are off by default (--ping-interval 0): the connections send nothing of
// their own and only answer the server's pings, which the protocol layer does by itself.
// A non-zero --ping-interval turns them on (with the default 20 s ping timeout).
// Automatic reconnects are off: a connection that drops must show up as "closed early", not be
// replaced behind the benchmark's back.
//
// stderr: progress, at most about one line per second, and these markers for scripts:
//   "idle_conns: paused at K connections"  with --pause-at: once K (rounded up to a whole
//                                          batch) are open, connecting stops for --pause seconds
//                                          (default 3), so a script can take a baseline that
//                                          already has the one-time costs of the first ones
//   "idle_conns: holding N connections"   once all are open (the hold starts)
//   "idle_conns: closing"                 when the hold ends
// stdout: one JSON line at the end,
//   {"connections":N,"opened":n,"closed_early":k,"hold_s":h,...}
// Exit 0 when all N opened and none closed before the hold ended; 1 otherwise; 2 usage error.
// SIGINT/SIGTERM end the hold early (the connections are still closed cleanly).
//
// The load generator's own memory is in the JSON line (client_rss_kib); the server's cost per
// connection is what idle.sh measures.
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "tether/client.hpp"
#include "tether/loop.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kUsage = 2;
// Descriptors beyond one per connection: stdio, epoll, eventfd, and some slack.
constexpr rlim_t kExtraFds = 64;
// A batch must open within this: the client's own handshake timeout (10 s) plus margin, so a
// batch that cannot open ends in failures rather than a hang.
constexpr auto kBatchWait = 15s;
// Closing handshakes: the client's close timeout is 5 s; past this we stop waiting.
constexpr auto kCloseWait = 10s;

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr,
               "idle_conns: %s\n"
               "usage: idle_conns URL --connections N --hold SECONDS [--ping-interval 0] "
               "[--batch 200] [--pause-at K [--pause 3]]\n",
               why.c_str());
  std::exit(kUsage);
}

// "10", "10s", "1.5s", "500ms", "2m" -> seconds. Negative or malformed: nullopt-like -1.
double parse_seconds(std::string_view s) {
  if (s.empty()) return -1;
  double scale = 1;
  if (s.ends_with("ms")) {
    scale = 1e-3;
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    s.remove_suffix(1);
  } else if (s.ends_with("m")) {
    scale = 60;
    s.remove_suffix(1);
  }
  std::string num(s);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size() || errno != 0 || !(v >= 0)) return -1;
  return v * scale;
}

struct Args {
  std::string url;
  long connections = -1;
  double hold_s = -1;
  double ping_interval_s = 0;
  long batch = 200;
  long pause_at = 0;  // 0: no pause
  double pause_s = 3;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--connections") {
      a.connections = bench::parse_count(arg, value(), 1, 1'000'000, usage_error);
    } else if (arg == "--hold") {
      const std::string v = value();
      a.hold_s = parse_seconds(v);
      if (a.hold_s < 0) usage_error("--hold must be a duration in seconds (got '" + v + "')");
    } else if (arg == "--ping-interval") {
      const std::string v = value();
      a.ping_interval_s = parse_seconds(v);
      if (a.ping_interval_s < 0)
        usage_error("--ping-interval must be a duration, 0 for none (got '" + v + "')");
    } else if (arg == "--batch") {
      a.batch = bench::parse_count(arg, value(), 1, 100'000, usage_error);
    } else if (arg == "--pause-at") {
      a.pause_at = bench::parse_count(arg, value(), 1, 1'000'000, usage_error);
    } else if (arg == "--pause") {
      const std::string v = value();
      a.pause_s = parse_seconds(v);
      if (a.pause_s < 0) usage_error("--pause must be a duration in seconds (got '" + v + "')");
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: idle_conns URL --connections N --hold SECONDS [--ping-interval 0] "
          "[--batch 200] [--pause-at K [--pause 3]]\n");
      std::exit(0);
    } else if (!arg.starts_with("-") && a.url.empty()) {
      a.url = arg;
    } else {
      usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (a.url.empty()) usage_error("URL is required");
  if (a.connections < 0) usage_error("--connections is required");
  if (a.hold_s < 0) usage_error("--hold is required");
  return a;
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

constexpr std::array kCauses = {
    tether::Cause::remote_close,      tether::Cause::local_close,
    tether::Cause::heartbeat_timeout, tether::Cause::idle_timeout,
    tether::Cause::handshake_timeout, tether::Cause::network_error,
    tether::Cause::protocol_error,    tether::Cause::connect_failed,
    tether::Cause::handshake_failed,
};
constexpr std::size_t cause_index(tether::Cause c) {
  for (std::size_t i = 0; i < kCauses.size(); ++i)
    if (kCauses[i] == c) return i;
  return 0;
}

// Shared between the loop thread (callbacks) and the driver thread (which only reads counters
// and posts work to the loop).
struct Tally {
  std::atomic<long> opened{0};
  std::atomic<long> failed{0};        // ended without ever opening
  std::atomic<long> closed_early{0};  // opened, then ended before we started closing
  std::atomic<long> closed{0};        // every on_close, whatever the phase
  std::atomic<bool> closing{false};   // set (on the loop thread) when the hold is over
  std::array<std::atomic<long>, kCauses.size()> early_causes{};
  std::array<std::atomic<long>, kCauses.size()> fail_causes{};
  std::mutex mu;                   // guards the two strings
  std::string first_early_reason;  // cause and reason of the first early close
  std::string first_fail_reason;   // ... and of the first connection that never opened

  void note(std::string& first, std::string why) {
    std::lock_guard lock(mu);
    if (first.empty()) first = std::move(why);
  }
  std::string read(const std::string& s) {
    std::lock_guard lock(mu);
    return s;
  }
};

std::string json_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string cause_object(const std::array<std::atomic<long>, kCauses.size()>& counts) {
  std::string out = "{";
  for (std::size_t i = 0; i < kCauses.size(); ++i) {
    const long n = counts[i].load();
    if (n == 0) continue;
    if (out.size() > 1) out += ',';
    out += '"' + std::string(tether::to_string(kCauses[i])) + "\":" + std::to_string(n);
  }
  return out + "}";
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const auto n = static_cast<std::size_t>(args.connections);
  if (!bench::raise_fd_limit("idle_conns", static_cast<rlim_t>(n) + kExtraFds)) return 1;

  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = bench::on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  tether::ClientOptions opts;
  opts.url = args.url;
  opts.ping_interval =
      std::chrono::milliseconds(static_cast<long long>(args.ping_interval_s * 1000.0 + 0.5));
  opts.reconnect = false;

  Tally tally;
  tether::Loop loop;  // run by this (main) thread below; clients are created here, before it runs
  std::vector<std::unique_ptr<tether::Client>> clients;
  clients.reserve(n);
  // Whether each client ever opened; touched only on the loop thread (callbacks).
  std::vector<char> ever_opened(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<tether::Client>(loop, opts);
    c->on_open([&tally, &ever_opened, i] {
      ever_opened[i] = 1;
      tally.opened.fetch_add(1);
    });
    c->on_close([&tally, &ever_opened, i](const tether::CloseInfo& ci) {
      const std::size_t k = cause_index(ci.cause);
      const auto why = [&] { return std::string(tether::to_string(ci.cause)) + ": " + ci.reason; };
      if (!ever_opened[i]) {
        tally.note(tally.first_fail_reason, why());
        tally.fail_causes[k].fetch_add(1);
        tally.failed.fetch_add(1);
      } else if (!tally.closing.load()) {
        tally.note(tally.first_early_reason, why());
        tally.early_causes[k].fetch_add(1);
        tally.closed_early.fetch_add(1);
      }
      tally.closed.fetch_add(1);
    });
    clients.push_back(std::move(c));
  }
  char ping_desc[32] = "off";
  if (args.ping_interval_s > 0)
    std::snprintf(ping_desc, sizeof ping_desc, "%g s", args.ping_interval_s);
  std::fprintf(stderr, "idle_conns: %zu clients on one loop, client ping interval %s, to %s\n", n,
               ping_desc, args.url.c_str());

  double connect_s = 0, hold_s = 0;
  bool all_opened = false;
  std::thread driver([&] {
    const auto t0 = Clock::now();
    auto last_report = t0;
    // ---- connect, one batch at a time
    std::size_t started = 0;
    bool paused = args.pause_at <= 0;
    while (started < n && !bench::interrupted) {
      const std::size_t end = std::min(n, started + static_cast<std::size_t>(args.batch));
      loop.post([&clients, begin = started, end] {
        for (std::size_t i = begin; i < end; ++i) clients[i]->connect();
      });
      started = end;
      const auto deadline = Clock::now() + kBatchWait;
      while (static_cast<std::size_t>(tally.opened + tally.failed) < started &&
             Clock::now() < deadline && !bench::interrupted)
        std::this_thread::sleep_for(1ms);
      if (Clock::now() - last_report >= 1s || started == n) {
        last_report = Clock::now();
        std::fprintf(stderr, "idle_conns: %5.1f s  opened %ld/%zu  failed %ld  closed early %ld\n",
                     seconds_since(t0), tally.opened.load(), n, tally.failed.load(),
                     tally.closed_early.load());
      }
      if (static_cast<std::size_t>(tally.opened + tally.failed) < started) {
        std::fprintf(stderr, "idle_conns: a batch did not settle within %lld s; giving up\n",
                     static_cast<long long>(kBatchWait.count()));
        break;
      }
      if (tally.failed > 0) {
        std::fprintf(stderr, "idle_conns: %ld connection(s) failed (first: %s); stopping\n",
                     tally.failed.load(), tally.read(tally.first_fail_reason).c_str());
        break;
      }
      if (!paused && started >= static_cast<std::size_t>(args.pause_at) && started < n) {
        paused = true;
        std::fprintf(stderr, "idle_conns: paused at %zu connections for %g s\n", started,
                     args.pause_s);
        const auto until = Clock::now() + std::chrono::duration<double>(args.pause_s);
        while (Clock::now() < until && !bench::interrupted) std::this_thread::sleep_for(10ms);
      }
    }
    connect_s = seconds_since(t0);
    all_opened = static_cast<std::size_t>(tally.opened) == n && tally.failed == 0;

    // ---- hold
    if (all_opened && !bench::interrupted) {
      std::fprintf(stderr, "idle_conns: holding %zu connections (all open after %.2f s) for %g s\n",
                   n, connect_s, args.hold_s);
      const auto h0 = Clock::now();
      const auto h_end = h0 + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(args.hold_s));
      auto next_report = h0 + 5s;
      while (Clock::now() < h_end && !bench::interrupted) {
        std::this_thread::sleep_for(std::min<Clock::duration>(100ms, h_end - Clock::now()));
        if (Clock::now() >= next_report) {
          next_report += 5s;
          std::fprintf(stderr, "idle_conns: held %.0f s  open %ld  closed early %ld\n",
                       seconds_since(h0), tally.opened - tally.closed_early.load(),
                       tally.closed_early.load());
        }
      }
      hold_s = seconds_since(h0);
    } else if (!all_opened) {
      std::fprintf(stderr, "idle_conns: only %ld of %zu opened; not holding\n", tally.opened.load(),
                   n);
    }
    if (bench::interrupted) std::fprintf(stderr, "idle_conns: interrupted\n");

    // ---- close all (1000) and wait, bounded, for the handshakes to finish
    std::fprintf(stderr, "idle_conns: closing\n");
    loop.post([&] {
      tally.closing = true;
      for (auto& c : clients) {
        const auto st = c->state();
        if (st == tether::Client::State::open || st == tether::Client::State::connecting)
          c->close(tether::close_code::normal, "bench done");
      }
    });
    const auto close_deadline = Clock::now() + kCloseWait;
    const auto started_total = static_cast<long>(started);
    while (tally.closed < started_total && Clock::now() < close_deadline)
      std::this_thread::sleep_for(10ms);
    if (tally.closed < started_total)
      std::fprintf(stderr, "idle_conns: %ld connection(s) still open after %lld s of closing\n",
                   started_total - tally.closed, static_cast<long long>(kCloseWait.count()));
    loop.stop();
  });
  loop.run();
  driver.join();

  const long rss = rss_kib();
  std::printf(
      "{\"connections\":%zu,\"opened\":%ld,\"closed_early\":%ld,\"hold_s\":%.3f,"
      "\"failed\":%ld,\"connect_s\":%.3f,\"client_ping_interval_s\":%g,"
      "\"early_causes\":%s,\"fail_causes\":%s,\"first_error\":\"%s\",\"client_rss_kib\":%ld}\n",
      n, tally.opened.load(), tally.closed_early.load(), hold_s, tally.failed.load(), connect_s,
      args.ping_interval_s, cause_object(tally.early_causes).c_str(),
      cause_object(tally.fail_causes).c_str(),
      json_escape(!tally.first_early_reason.empty() ? tally.first_early_reason
                                                    : tally.first_fail_reason)
          .c_str(),
      rss);
  std::fflush(stdout);
  clients.clear();  // after the loop has stopped, on the thread that ran it
  return all_opened && tally.closed_early == 0 ? 0 : 1;
}
