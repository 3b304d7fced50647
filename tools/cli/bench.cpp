// `tether bench`: closed-loop echo load (CONTRACT.md). All connections share one event loop on
// one thread, so the load generator costs one core however many connections it drives.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "metrics/latency_histogram.hpp"
#include "tether/client.hpp"

namespace tether::cli {

namespace {
using SteadyClock = std::chrono::steady_clock;

using Histogram = tether::metrics::LatencyHistogram;

struct BenchConn {
  std::unique_ptr<Client> client;
  std::vector<SteadyClock::time_point> sent;  // ring of send times, FIFO (echo keeps order)
  std::size_t head = 0, count = 0;
};
}  // namespace

std::function<int()> add_bench(CLI::App& app) {
  struct Args {
    std::string url;
    int connections = 100;
    std::string size = "16";
    int pipeline = 16;
    std::string duration = "10s";
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("bench", "Closed-loop echo load against a server");
  cmd->add_option("URL", args->url)->required();
  cmd->add_option("--connections", args->connections)
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--size", args->size, "Message size")
      ->check(size_validator())
      ->capture_default_str();
  cmd->add_option("--pipeline", args->pipeline, "Messages in flight per connection")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--duration", args->duration)->check(duration_validator())->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object with the figures");

  return [args]() -> int {
    const std::size_t size = to_size(args->size);
    const auto duration = to_duration(args->duration);
    const int pipeline = args->pipeline;
    Loop loop;
    std::string payload(size, 'x');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
    Histogram hist;
    std::atomic<uint64_t> done{0};
    std::atomic<int> opened{0}, failed{0};
    std::atomic<bool> measuring{false};
    std::string first_error;
    std::vector<BenchConn> conns(static_cast<std::size_t>(args->connections));

    for (auto& bc : conns) {
      bc.sent.resize(static_cast<std::size_t>(pipeline));
      ClientOptions o;
      o.url = args->url;
      o.reconnect = false;  // a lost connection is a failed run, not something to paper over
      bc.client = std::make_unique<Client>(loop, o);
      BenchConn* b = &bc;
      bc.client->on_open([&, b] {
        opened.fetch_add(1);
        for (int i = 0; i < pipeline; ++i) {
          b->sent[(b->head + b->count++) % b->sent.size()] = SteadyClock::now();
          b->client->send(payload, MessageType::binary);
        }
      });
      bc.client->on_message([&, b](std::string_view, MessageType) {
        auto now = SteadyClock::now();
        auto t0 = b->sent[b->head];
        b->head = (b->head + 1) % b->sent.size();
        --b->count;
        if (measuring.load(std::memory_order_relaxed)) {
          hist.add(static_cast<uint64_t>((now - t0).count()));
          done.fetch_add(1, std::memory_order_relaxed);
        }
        b->sent[(b->head + b->count++) % b->sent.size()] = now;
        b->client->send(payload, MessageType::binary);
      });
      bc.client->on_close([&](const CloseInfo& info) {
        if (failed.fetch_add(1) == 0 && !measuring) first_error = info.reason;
      });
    }
    for (auto& bc : conns) bc.client->connect();

    double elapsed_s = 0;
    std::thread driver([&] {
      // Wait (bounded) for every connection to open, then measure for `duration`.
      auto deadline = SteadyClock::now() + std::chrono::seconds(10);
      while (opened + failed < args->connections && SteadyClock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      auto start = SteadyClock::now();
      measuring = true;
      uint64_t last = 0;
      auto end = start + duration;
      while (SteadyClock::now() < end && failed == 0) {
        std::this_thread::sleep_for(
            std::min<SteadyClock::duration>(std::chrono::seconds(1), end - SteadyClock::now()));
        uint64_t now_done = done.load();
        std::fprintf(stderr, "\rbench: %d connections, %.0f msgs/s   ", opened.load(),
                     static_cast<double>(now_done - last));
        last = now_done;
      }
      measuring = false;
      elapsed_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
      std::fprintf(stderr, "\n");
      loop.stop();
    });
    loop.run();
    driver.join();

    if (opened < args->connections) {
      std::fprintf(stderr, "tether bench: only %d of %d connections opened%s%s\n", opened.load(),
                   args->connections, first_error.empty() ? "" : ": ", first_error.c_str());
      return 1;
    }
    const double rate = static_cast<double>(done.load()) / elapsed_s;
    if (args->json) {
      nlohmann::ordered_json j = {{"msgs_per_sec", rate},
                                  {"messages", done.load()},
                                  {"duration_s", elapsed_s},
                                  {"p50_us", hist.percentile_us(50)},
                                  {"p99_us", hist.percentile_us(99)},
                                  {"p999_us", hist.percentile_us(99.9)},
                                  {"connections", args->connections},
                                  {"size", size},
                                  {"pipeline", pipeline}};
      emit_line(j.dump());
    } else {
      std::printf("%d connections, %zu-byte messages, %d in flight: %.0f msgs/s\n",
                  args->connections, size, pipeline, rate);
      std::printf("round trip: p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n", hist.percentile_us(50),
                  hist.percentile_us(99), hist.percentile_us(99.9));
    }
    return 0;
  };
}

}  // namespace tether::cli
