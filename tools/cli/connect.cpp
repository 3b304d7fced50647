// `tether connect`: a command-line WebSocket client (CONTRACT.md).
#include <unistd.h>

#include <openssl/evp.h>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.hpp"
#include "tether/client.hpp"

namespace tether::cli {

namespace {
struct ConnectArgs {
  std::vector<std::string> urls;
  std::string ping_interval = "25s", ping_timeout = "20s", backoff_min = "500ms",
              backoff_max = "30s", ca;
  unsigned max_attempts = 0;
  bool reconnect = false, no_reconnect = false, resume = false, echo = false, json_events = false;
  bool deflate = false, insecure = false;
  std::string deflate_options;
};

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::function<int()> add_connect(CLI::App& app) {
  auto args = std::make_shared<ConnectArgs>();
  auto* cmd = app.add_subcommand("connect", "Connect to a WebSocket server");
  cmd->add_option("URL", args->urls, "ws:// URL")->required();
  cmd->add_option("--ping-interval", args->ping_interval,
                  "Ping when nothing was sent for this long (0: no heartbeat)")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--ping-timeout", args->ping_timeout,
                  "Server is dead after interval + timeout without a received byte")
      ->check(duration_validator())
      ->capture_default_str();
  auto* rec = cmd->add_flag("--reconnect", args->reconnect);
  cmd->add_flag("--no-reconnect", args->no_reconnect)->excludes(rec);
  cmd->add_option("--backoff-min", args->backoff_min, "Shortest reconnect delay")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--backoff-max", args->backoff_max, "Longest reconnect delay (still jittered)")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--max-attempts", args->max_attempts, "Reconnect attempts in a row (0: forever)")
      ->capture_default_str();
  cmd->add_flag("--resume", args->resume,
                "Negotiate tether.resume.v1: exactly-once, in-order delivery across reconnects");
  cmd->add_flag("--echo", args->echo, "Send every received message back (stdin is not read)");
  cmd->add_flag("--json-events", args->json_events, "One JSON object per line on stdout");
  cmd->add_option("--ca", args->ca, "PEM file of CAs to trust for wss:// (default: the system's)");
  cmd->add_flag("--insecure", args->insecure,
                "wss:// without verifying the server's certificate (tests only)");
  cmd->add_flag("--deflate", args->deflate, "Offer permessage-deflate (RFC 7692)");
  cmd->add_option("--deflate-options", args->deflate_options,
                  "permessage-deflate parameters to offer, comma-separated (implies --deflate): "
                  "server_no_context_takeover, client_no_context_takeover, "
                  "server_max_window_bits=N, client_max_window_bits=N, threshold=BYTES, "
                  "level=N; 'none' for none (default: both no_context_takeover)");

  return [args]() -> int {
    const bool json = args->json_events;
    const bool echo = args->echo;
    ClientOptions opts;
    opts.url = args->urls.front();
    opts.fallback_urls.assign(args->urls.begin() + 1, args->urls.end());
    opts.reconnect = !args->no_reconnect;
    opts.backoff_min = to_duration(args->backoff_min);
    opts.backoff_max = to_duration(args->backoff_max);
    if (opts.backoff_max < opts.backoff_min)
      throw UsageError{"--backoff-max: must not be below --backoff-min"};
    opts.max_attempts = args->max_attempts;
    opts.resume = args->resume;
    opts.ping_interval = to_duration(args->ping_interval);
    opts.ping_timeout = to_duration(args->ping_timeout);
    opts.tls_ca_file = args->ca;
    opts.tls_verify = !args->insecure;
    opts.deflate.enabled = args->deflate || !args->deflate_options.empty();
    if (!args->deflate_options.empty()) apply_deflate_options(args->deflate_options, opts.deflate);
    Client client(opts);
    bool clean = false;
    bool ever_opened = false;

    client.on_open([&] {
      ever_opened = true;
      if (json)
        emit_line(
            json_line({{"event", "open"}, {"url", client.url()}, {"attempt", client.attempt()}}));
      else
        std::fprintf(stderr, "connected to %s (attempt %u)\n", client.url().c_str(),
                     client.attempt());
    });
    client.on_reconnecting([&](unsigned attempt, std::chrono::milliseconds delay) {
      if (json)
        emit_line(json_line(
            {{"event", "reconnecting"}, {"attempt", attempt}, {"delay_ms", delay.count()}}));
      else
        std::fprintf(stderr, "reconnecting in %lld ms (attempt %u)\n",
                     static_cast<long long>(delay.count()), attempt);
    });
    client.on_message([&](std::string_view data, MessageType type) {
      if (json) {
        if (type == MessageType::text)
          emit_line(json_line({{"event", "message"}, {"type", "text"}, {"data", data}}));
        else
          emit_line(
              json_line({{"event", "message"}, {"type", "binary"}, {"base64", base64(data)}}));
      } else if (type == MessageType::text) {
        emit_line(std::string(data));
      } else {
        std::fprintf(stderr, "received a binary message of %zu bytes\n", data.size());
      }
      if (echo) client.send(data, type);
    });
    client.on_close([&](const CloseInfo& info) {
      clean = info.was_clean;
      if (json) {
        emit_line(json_line({{"event", "close"},
                             {"code", info.code},
                             {"reason", info.reason},
                             {"clean", info.was_clean},
                             {"cause", std::string(to_string(info.cause))}}));
      } else {
        std::fprintf(stderr, "closed: code %u%s%s (%s, %s)\n", info.code,
                     info.reason.empty() ? "" : ", reason: ", info.reason.c_str(),
                     info.was_clean ? "clean" : "not clean",
                     std::string(to_string(info.cause)).c_str());
      }
    });
    client.on_resumed([&](uint64_t replayed) {
      if (json)
        emit_line(json_line({{"event", "resumed"}, {"replayed", replayed}}));
      else
        std::fprintf(stderr, "session resumed (%llu messages sent again)\n",
                     static_cast<unsigned long long>(replayed));
    });
    client.on_resume_failed([&](std::string_view reason) {
      if (json)
        emit_line(json_line({{"event", "resume_failed"}, {"reason", reason}}));
      else
        std::fprintf(stderr, "resume failed: %.*s\n", static_cast<int>(reason.size()),
                     reason.data());
    });
    client.on_rtt([&](std::chrono::nanoseconds rtt) {
      const double ms = std::chrono::duration<double, std::milli>(rtt).count();
      if (json) emit_line(json_line({{"event", "rtt"}, {"ms", std::round(ms * 1000) / 1000}}));
    });
    client.on_error([&](std::string_view what) {
      if (json)
        emit_line(json_line({{"event", "error"}, {"message", what}}));
      else
        std::fprintf(stderr, "error: %.*s\n", static_cast<int>(what.size()), what.data());
    });

    client.connect();
    std::atomic<bool> eof{false};
    if (!echo) {
      // stdin is read on its own thread; Client::send is thread-safe and queues while offline.
      std::thread([&client, &eof] {
        std::string line;
        while (std::getline(std::cin, line)) client.send(line);
        eof = true;
        client.close(close_code::normal);  // after everything queued (posts are ordered)
      }).detach();
    }
    client.run();
    std::fflush(stdout);
    // Success: a clean close, or stdin ended and everything it gave was delivered (the client
    // may have been between connections then, with nothing left to send). A client that never
    // got a connection open failed, whatever stdin held.
    const bool ok = clean || (eof && ever_opened && client.pending_messages() == 0);
    // The stdin thread may still be blocked in getline: leave without unwinding it.
    std::_Exit(ok ? 0 : 1);
  };
}

}  // namespace tether::cli
