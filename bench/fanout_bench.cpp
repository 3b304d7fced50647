// fanout_bench: one publisher, N subscribers, against a broadcast server (every message goes to
// every open connection, the sender included: `tether serve --mode broadcast`, or
// bench/peers/ws_broadcast.js). Measures delivered messages per second (bench/fanout.sh drives it).
//
//   fanout_bench URL [--subscribers 5000] [--size 64] [--burst 100] [--duration 10]
//                    [--batch 200] [--server-pid PID] [--burst-timeout 10]
//                    [--json] [--deflate] [--ca FILE | --insecure]
//
// wss:// URLs use TLS: the server's certificate is verified against --ca FILE (a PEM bundle,
// e.g. the self-signed certificate itself), or not at all with --insecure. --deflate offers
// permessage-deflate with tether's default offer (both sides reset their context after each
// message). --json publishes TEXT messages that are JSON objects,
//   {"seq":123,"user":"user-0123","room":"general","text":"words words ..."}
// padded with ASCII words to exactly --size bytes; the subscribers read the sequence number back
// from the "seq" field, which comes first.
//
// All N+1 tether::Client objects share one tether::Loop, run by the main thread. A driver thread
// connects the subscribers in batches (--batch at a time, each batch open before the next starts),
// then the publisher. Then, on the loop thread, bursts follow one another: the publisher sends
// --burst binary messages of --size bytes (the first 8 bytes carry a sequence number; with
// --json, text messages as above), and the next burst starts as soon as every subscriber has
// received every message of this one. After --duration seconds no new burst starts; the one in
// flight completes. A burst that is not complete within --burst-timeout seconds (10) ends the run
// as a failure.
//
// A delivery is one message received by one subscriber; the publisher's own copies (the server
// sends it every message too) are not counted. Every subscriber checks that it receives the
// sequence numbers in order without gaps or duplicates.
//
// With --server-pid, the server's utime+stime (/proc/PID/stat) is read at the start of the first
// burst and at the end of the last, so its CPU time per delivery excludes the handshakes. The
// subscribers' socket bytes received (Client::metrics(): frame headers, TLS records, compressed
// payloads) are summed over the same span: wire_bytes_per_delivery shows what TLS adds and
// whether the server compressed what it fanned out.
//
// stdout: one JSON line,
//   {"subscribers":N,"deliveries":D,"seconds":S,"deliveries_per_sec":R,"bursts":K,"missing":M,
//    ...,"wire_bytes_per_delivery":W,"message":"binary"|"json","deflate":B,"tls":B,...}
// stderr: progress. Exit 0 when every subscriber received every message sent (missing 0, no
// order errors, no connection lost); 1 otherwise; 2 usage error.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
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
constexpr rlim_t kExtraFds = 64;  // stdio, epoll, eventfd, slack
constexpr auto kBatchWait = 15s;  // a connect batch must open within this
constexpr auto kCloseWait = 10s;  // closing handshakes at the end

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr,
               "fanout_bench: %s\n"
               "usage: fanout_bench URL [--subscribers 5000] [--size 64] [--burst 100] "
               "[--duration 10] [--batch 200] [--server-pid PID] [--burst-timeout 10] [--json] "
               "[--deflate] [--ca FILE | --insecure]\n",
               why.c_str());
  std::exit(kUsage);
}

struct Args {
  std::string url;
  long subscribers = 5000;
  long size = 64;
  long burst = 100;
  double duration_s = 10;
  long batch = 200;
  long server_pid = 0;
  long burst_timeout_s = 10;
  bool json = false;      // text JSON messages instead of binary ones
  bool deflate = false;   // offer permessage-deflate
  std::string ca_file;    // wss://: trust these CAs (PEM)
  bool insecure = false;  // wss://: no certificate verification
};

// The smallest --json message: the fields around the text take at most 74 bytes (a sequence
// number of 20 digits).
constexpr long kMinJsonSize = 80;

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--subscribers") {
      a.subscribers = bench::parse_count(arg, value(), 1, 1'000'000, usage_error);
    } else if (arg == "--size") {
      a.size = bench::parse_count(arg, value(), 8, 16 << 20, usage_error);
    } else if (arg == "--burst") {
      a.burst = bench::parse_count(arg, value(), 1, 1'000'000, usage_error);
    } else if (arg == "--duration") {
      std::string v = value();
      if (!v.empty() && v.back() == 's') v.pop_back();
      char* end = nullptr;
      a.duration_s = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.duration_s > 0))
        usage_error("--duration must be a positive number of seconds");
    } else if (arg == "--batch") {
      a.batch = bench::parse_count(arg, value(), 1, 100'000, usage_error);
    } else if (arg == "--server-pid") {
      a.server_pid = bench::parse_count(arg, value(), 1, 1L << 30, usage_error);
    } else if (arg == "--burst-timeout") {
      std::string v = value();
      if (!v.empty() && v.back() == 's') v.pop_back();
      a.burst_timeout_s = bench::parse_count(arg, v, 1, 3600, usage_error);
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "--deflate") {
      a.deflate = true;
    } else if (arg == "--ca") {
      a.ca_file = value();
    } else if (arg == "--insecure") {
      a.insecure = true;
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: fanout_bench URL [--subscribers 5000] [--size 64] [--burst 100] "
          "[--duration 10] [--batch 200] [--server-pid PID] [--burst-timeout 10] [--json] "
          "[--deflate] [--ca FILE | --insecure]\n");
      std::exit(0);
    } else if (!arg.starts_with("-") && a.url.empty()) {
      a.url = arg;
    } else {
      usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (a.url.empty()) usage_error("URL is required");
  if (a.json && a.size < kMinJsonSize)
    usage_error("--json needs --size " + std::to_string(kMinJsonSize) + " or more");
  if (a.insecure && !a.ca_file.empty()) usage_error("--ca and --insecure exclude each other");
  return a;
}

// Filler for the JSON messages' "text": ASCII words from a fixed list in a fixed pseudo-random
// order (no quote or backslash, so any slice is a valid JSON string body). English-like text
// compresses roughly the way chat text does; a run of one repeated letter would flatter deflate.
std::string make_filler(std::size_t len) {
  static constexpr std::string_view kWords[] = {
      "the",    "message", "server", "client", "hello",   "world", "update", "status",
      "room",   "online",  "typing", "done",   "thanks",  "see",   "you",    "later",
      "price",  "changed", "order",  "filled", "alert",   "cpu",   "memory", "deploy",
      "a",      "of",      "and",    "to",     "is",      "in",    "for",    "on",
      "with",   "this",    "that",   "from",   "new",     "value", "event",  "user",
      "joined", "left",    "reply",  "ok",     "waiting", "ready", "build",  "green"};
  constexpr std::size_t kCount = sizeof kWords / sizeof kWords[0];
  std::string out;
  out.reserve(len + 16);
  uint32_t x = 2463534242u;  // xorshift32
  while (out.size() < len) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    if (!out.empty()) out += ' ';
    out += kWords[x % kCount];
  }
  out.resize(len);
  return out;
}

// Writes message `seq` as a JSON object of exactly `size` bytes (size >= kMinJsonSize) into
// `out`: {"seq":N,"user":"user-NNNN","room":"general","text":"..."}.
void fill_json(std::string& out, uint64_t seq, std::size_t size, const std::string& filler) {
  char head[96];
  const int n = std::snprintf(
      head, sizeof head, "{\"seq\":%llu,\"user\":\"user-%04llu\",\"room\":\"general\",\"text\":\"",
      static_cast<unsigned long long>(seq), static_cast<unsigned long long>(seq % 10000));
  const std::size_t head_len = static_cast<std::size_t>(n);
  const std::size_t text_len = size > head_len + 2 ? size - head_len - 2 : 0;
  // Each message starts at a different place in the filler, so no two are the same.
  const std::size_t start = static_cast<std::size_t>((seq * 7919) % 4096);
  out.assign(head, head_len);
  out.append(filler, start, text_len);
  out += "\"}";
}

// The "seq" of a --json message, or UINT64_MAX when it does not start with {"seq":DIGITS.
uint64_t json_seq(std::string_view m) {
  constexpr std::string_view kPrefix = "{\"seq\":";
  if (!m.starts_with(kPrefix)) return UINT64_MAX;
  uint64_t seq = 0;
  const char* b = m.data() + kPrefix.size();
  const auto [p, ec] = std::from_chars(b, m.data() + m.size(), seq);
  if (ec != std::errc{} || p == b || p == m.data() + m.size() || *p != ',') return UINT64_MAX;
  return seq;
}

// utime+stime of process `pid` in seconds, or -1.
double process_cpu_s(long pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream fields(s.substr(rp + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int k = 3; k <= 15 && (fields >> f); ++k) {
    if (k == 14) utime = std::strtoull(f.c_str(), nullptr, 10);
    if (k == 15) stime = std::strtoull(f.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Everything below is touched only on the loop thread, except the atomics, which the driver
// thread reads.
struct State {
  std::size_t n = 0;
  uint64_t burst = 0;
  std::string payload;  // reused: the sequence number is written into its first 8 bytes

  std::vector<uint64_t> next_seq;  // per subscriber: the sequence number expected next
  uint64_t sent = 0;               // messages published so far (sequence numbers 0..sent-1)
  uint64_t burst_end = 0;          // the current burst covers sequence numbers < burst_end
  uint64_t burst_deliveries = 0;   // deliveries of the current burst so far
  uint64_t deliveries = 0;         // all deliveries to subscribers
  uint64_t publisher_echoes = 0;   // the publisher's own copies
  uint64_t order_errors = 0;       // a subscriber saw a gap, a duplicate or a reordering
  uint64_t type_errors = 0;        // a message of the wrong type (text vs binary)
  bool json = false;
  std::size_t size = 0;
  std::string filler;             // --json: the text the messages are cut from
  uint64_t wire0 = 0, wire1 = 0;  // the subscribers' socket bytes received at start and end
  bool measuring = false;
  bool stop_after_burst = false;  // set by the driver (via post) when the duration is over
  Clock::time_point t_start, t_end, burst_started;
  double server_cpu0 = -1, server_cpu1 = -1;
  long server_pid = 0;

  std::atomic<long> opened{0}, failed{0}, lost{0};
  std::atomic<uint64_t> bursts_done{0};
  std::atomic<uint64_t> progress_deliveries{0};
  std::atomic<int64_t> burst_started_ns{0};  // steady-clock ns of the current burst's start
  std::atomic<bool> done{false};             // no burst in flight and none will start
  std::atomic<bool> closing{false};
  std::atomic<long> closed{0};
};

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const auto n = static_cast<std::size_t>(args.subscribers);
  if (!bench::raise_fd_limit("fanout_bench", static_cast<rlim_t>(n) + 1 + kExtraFds)) return 1;

  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = bench::on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // Load clients: no heartbeats, no reconnects (a lost connection must show, not be replaced).
  tether::ClientOptions opts;
  opts.url = args.url;
  opts.ping_interval = 0ms;
  opts.reconnect = false;
  opts.deflate.enabled = args.deflate;  // tether's default offer otherwise
  opts.tls_ca_file = args.ca_file;
  opts.tls_verify = !args.insecure;

  State st;
  st.n = n;
  st.burst = static_cast<uint64_t>(args.burst);
  st.payload.assign(static_cast<std::size_t>(args.size), 'x');
  st.json = args.json;
  st.size = static_cast<std::size_t>(args.size);
  if (st.json) st.filler = make_filler(st.size + 4096);
  st.next_seq.assign(n, 0);
  st.server_pid = args.server_pid;

  tether::Loop loop;
  std::vector<std::unique_ptr<tether::Client>> subs;
  subs.reserve(n);
  std::vector<char> ever_opened(n + 1, 0);

  auto on_close_for = [&st, &ever_opened](std::size_t i) {
    return [&st, &ever_opened, i](const tether::CloseInfo& ci) {
      if (!ever_opened[i]) {
        if (st.failed.fetch_add(1) == 0)
          std::fprintf(stderr, "fanout_bench: a connection failed: %s: %s\n",
                       std::string(tether::to_string(ci.cause)).c_str(), ci.reason.c_str());
      } else if (!st.closing) {
        if (st.lost.fetch_add(1) == 0)
          std::fprintf(stderr, "fanout_bench: a connection closed early: %s: %s\n",
                       std::string(tether::to_string(ci.cause)).c_str(), ci.reason.c_str());
      }
      st.closed.fetch_add(1);
    };
  };

  auto publisher = std::make_unique<tether::Client>(loop, opts);
  tether::Client* pub = publisher.get();
  // The subscribers' socket bytes received so far (loop thread).
  auto wire_bytes = [&subs] {
    uint64_t sum = 0;
    for (auto& c : subs) sum += c->metrics().bytes_received;
    return sum;
  };
  const tether::MessageType msg_type =
      args.json ? tether::MessageType::text : tether::MessageType::binary;

  // Publishes the next burst; loop thread only.
  auto start_burst = [&st, pub, msg_type] {
    st.burst_end = st.sent + st.burst;
    st.burst_deliveries = 0;
    st.burst_started = Clock::now();
    st.burst_started_ns.store(st.burst_started.time_since_epoch().count());
    for (; st.sent < st.burst_end; ++st.sent) {
      const uint64_t seq = st.sent;
      if (st.json)
        fill_json(st.payload, seq, st.size, st.filler);
      else
        std::memcpy(st.payload.data(), &seq, sizeof seq);
      if (pub->send(st.payload, msg_type) == tether::SendStatus::dropped) {
        std::fprintf(stderr, "fanout_bench: the publisher's send was dropped\n");
        st.lost.fetch_add(1);
      }
    }
  };
  // A burst has reached every subscriber: account for it and start the next (loop thread).
  auto burst_complete = [&st, &start_burst, &wire_bytes] {
    st.bursts_done.fetch_add(1);
    if (st.stop_after_burst || bench::interrupted) {
      st.t_end = Clock::now();
      st.server_cpu1 = process_cpu_s(st.server_pid);
      st.wire1 = wire_bytes();
      st.measuring = false;
      st.done = true;
      return;
    }
    start_burst();
  };

  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<tether::Client>(loop, opts);
    c->on_open([&st, &ever_opened, i] {
      ever_opened[i] = 1;
      st.opened.fetch_add(1);
    });
    c->on_message([&st, &burst_complete, msg_type, i](std::string_view m, tether::MessageType t) {
      if (!st.measuring) return;
      if (t != msg_type) ++st.type_errors;
      uint64_t seq = UINT64_MAX;
      if (st.json)
        seq = json_seq(m);
      else if (m.size() >= sizeof seq)
        std::memcpy(&seq, m.data(), sizeof seq);
      if (seq != st.next_seq[i]) ++st.order_errors;
      st.next_seq[i] = seq + 1;
      ++st.deliveries;
      if (++st.burst_deliveries == st.n * st.burst) {
        st.progress_deliveries.store(st.deliveries);
        burst_complete();
      }
    });
    c->on_close(on_close_for(i));
    subs.push_back(std::move(c));
  }
  pub->on_open([&st, &ever_opened, n] {
    ever_opened[n] = 1;
    st.opened.fetch_add(1);
  });
  pub->on_message([&st](std::string_view, tether::MessageType) { ++st.publisher_echoes; });
  pub->on_close(on_close_for(n));

  std::fprintf(stderr,
               "fanout_bench: %zu subscribers + 1 publisher on one loop, bursts of %ld x %ld-byte "
               "%s messages, %g s, to %s%s\n",
               n, args.burst, args.size, args.json ? "JSON text" : "binary", args.duration_s,
               args.url.c_str(), args.deflate ? ", offering permessage-deflate" : "");

  bool ok = true;
  std::string failure;
  std::thread driver([&] {
    const auto t0 = Clock::now();
    // ---- connect: subscribers in batches, then the publisher
    std::size_t started = 0;
    while (started <= n && !bench::interrupted) {
      const std::size_t end = std::min(n, started + static_cast<std::size_t>(args.batch));
      if (started == n) {
        loop.post([pub] { pub->connect(); });
        started = n + 1;
      } else {
        loop.post([&subs, begin = started, end] {
          for (std::size_t i = begin; i < end; ++i) subs[i]->connect();
        });
        started = end;
      }
      const auto deadline = Clock::now() + kBatchWait;
      while (static_cast<std::size_t>(st.opened + st.failed) < started && Clock::now() < deadline &&
             !bench::interrupted)
        std::this_thread::sleep_for(1ms);
      if (static_cast<std::size_t>(st.opened + st.failed) < started) {
        failure = "a connect batch did not settle within 15 s";
        break;
      }
      if (st.failed > 0) {
        failure = std::to_string(st.failed.load()) + " connection(s) failed to open";
        break;
      }
    }
    if (failure.empty() && static_cast<std::size_t>(st.opened) != n + 1)
      failure = "interrupted while connecting";
    std::fprintf(stderr, "fanout_bench: %ld/%zu connections open after %.2f s\n", st.opened.load(),
                 n + 1, seconds_between(t0, Clock::now()));

    if (failure.empty()) {
      // Let the server finish registering the last connections before publishing.
      std::this_thread::sleep_for(200ms);
      std::fprintf(stderr, "fanout_bench: measuring\n");
      loop.post([&] {
        st.measuring = true;
        st.server_cpu0 = process_cpu_s(st.server_pid);
        st.wire0 = wire_bytes();
        st.t_start = Clock::now();
        start_burst();
      });
      const auto m0 = Clock::now();
      const auto burst_timeout =
          std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(args.burst_timeout_s));
      auto next_report = m0 + 1s;
      bool stop_posted = false;
      while (!st.done && !bench::interrupted) {
        std::this_thread::sleep_for(5ms);
        const auto now = Clock::now();
        if (!stop_posted && seconds_between(m0, now) >= args.duration_s) {
          loop.post([&st] { st.stop_after_burst = true; });
          stop_posted = true;
        }
        const int64_t bs = st.burst_started_ns.load();
        if (bs != 0 && !st.done && now.time_since_epoch().count() - bs > burst_timeout.count()) {
          failure = "a burst did not reach every subscriber within " +
                    std::to_string(args.burst_timeout_s) + " s";
          break;
        }
        if (st.lost > 0) {
          failure = std::to_string(st.lost.load()) + " connection(s) lost during the run";
          break;
        }
        if (now >= next_report) {
          next_report += 1s;
          std::fprintf(stderr, "fanout_bench: %5.1f s  bursts %llu  deliveries %llu\n",
                       seconds_between(m0, now),
                       static_cast<unsigned long long>(st.bursts_done.load()),
                       static_cast<unsigned long long>(st.progress_deliveries.load()));
        }
      }
      if (bench::interrupted && failure.empty()) failure = "interrupted";
      // Freeze the counters on the loop thread (a failed run stops where it is).
      std::atomic<bool> frozen{false};
      loop.post([&] {
        if (st.measuring) {
          st.t_end = Clock::now();
          st.server_cpu1 = process_cpu_s(st.server_pid);
          st.wire1 = wire_bytes();
          st.measuring = false;
        }
        frozen = true;
      });
      while (!frozen) std::this_thread::sleep_for(1ms);
    }

    // ---- close everything (1000) and wait, bounded, for the closing handshakes
    loop.post([&] {
      st.closing = true;
      auto close_one = [](tether::Client& c) {
        const auto s = c.state();
        if (s == tether::Client::State::open || s == tether::Client::State::connecting)
          c.close(tether::close_code::normal, "bench done");
      };
      for (auto& c : subs) close_one(*c);
      close_one(*pub);
    });
    const long to_close = std::min<long>(static_cast<long>(started), static_cast<long>(n + 1));
    const auto close_deadline = Clock::now() + kCloseWait;
    while (st.closed < to_close && Clock::now() < close_deadline) std::this_thread::sleep_for(10ms);
    loop.stop();
  });
  loop.run();
  driver.join();

  // Every subscriber should have received every message published, each once (a duplicate
  // or a gap also shows as an order error).
  const uint64_t expected = st.sent * n;
  const uint64_t missing = expected - std::min<uint64_t>(st.deliveries, expected);
  const double secs = st.t_end > st.t_start ? seconds_between(st.t_start, st.t_end) : 0;
  const double rate = secs > 0 ? static_cast<double>(st.deliveries) / secs : 0;
  if (!failure.empty()) ok = false;
  if (missing != 0 || st.order_errors != 0 || st.type_errors != 0) ok = false;
  if (!failure.empty()) std::fprintf(stderr, "fanout_bench: FAILED: %s\n", failure.c_str());

  std::string server_cpu = "null";
  if (st.server_cpu0 >= 0 && st.server_cpu1 >= 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", st.server_cpu1 - st.server_cpu0);
    server_cpu = buf;
  }
  const uint64_t wire = st.wire1 > st.wire0 ? st.wire1 - st.wire0 : 0;
  const double wire_per =
      st.deliveries ? static_cast<double>(wire) / static_cast<double>(st.deliveries) : 0;
  const bool tls = args.url.size() >= 6 &&
                   (args.url.compare(0, 6, "wss://") == 0 || args.url.compare(0, 6, "WSS://") == 0);
  std::printf(
      "{\"subscribers\":%zu,\"deliveries\":%llu,\"seconds\":%.3f,\"deliveries_per_sec\":%.0f,"
      "\"bursts\":%llu,\"missing\":%llu,\"published\":%llu,\"burst\":%llu,\"size\":%ld,"
      "\"order_errors\":%llu,\"type_errors\":%llu,\"publisher_echoes\":%llu,"
      "\"server_cpu_s\":%s,\"wire_bytes\":%llu,\"wire_bytes_per_delivery\":%.1f,"
      "\"message\":\"%s\",\"deflate\":%s,\"tls\":%s,\"ok\":%s}\n",
      n, static_cast<unsigned long long>(st.deliveries), secs, rate,
      static_cast<unsigned long long>(st.bursts_done.load()),
      static_cast<unsigned long long>(missing), static_cast<unsigned long long>(st.sent),
      static_cast<unsigned long long>(st.burst), args.size,
      static_cast<unsigned long long>(st.order_errors),
      static_cast<unsigned long long>(st.type_errors),
      static_cast<unsigned long long>(st.publisher_echoes), server_cpu.c_str(),
      static_cast<unsigned long long>(wire), wire_per, args.json ? "json" : "binary",
      args.deflate ? "true" : "false", tls ? "true" : "false", ok ? "true" : "false");
  std::fflush(stdout);
  subs.clear();  // after the loop has stopped, on the thread that ran it
  publisher.reset();
  return ok ? 0 : 1;
}
