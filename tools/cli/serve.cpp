// `tether serve`: echo / broadcast / chat server (CONTRACT.md).
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "chat_server.hpp"
#include "commands.hpp"
#include "tether/server.hpp"

namespace tether::cli {

namespace {
struct ServeArgs {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string mode = "echo";
  std::string static_dir;
  unsigned threads = 1;
  std::string ping_interval = "25s", ping_timeout = "20s", idle_timeout = "0",
              handshake_timeout = "10s";
  std::string max_message = "16m";
  std::string resume_window = "2m", tls_cert, tls_key, redis;
  bool json_events = false;
  // permessage-deflate
  bool deflate = false;
  std::string deflate_options;
  // limits (docs/security.md)
  std::size_t max_connections = 50000, max_connections_per_ip = 256;
  std::string max_handshake = "16k", send_buffer_max = "16m", send_overflow = "close";
  std::vector<std::string> origins;
  unsigned max_control_rate = 50, accept_rate = 2000;
};

// Flags in CONTRACT.md whose features land with later issues: refuse them rather than
// silently ignoring them.
void refuse_unimplemented(const ServeArgs& a) {
  auto later = [](const char* flag, const char* what) {
    throw UsageError{std::string(flag) + ": " + what + " is not implemented yet"};
  };
  if (a.tls_cert.empty() != a.tls_key.empty())
    throw UsageError{"--tls-cert/--tls-key: give both (PEM certificate chain and private key)"};
  if (!a.redis.empty()) later("--redis", "Redis fan-out");
}

// --static DIR must name an existing directory now, not at the first request.
void check_static_dir(const std::string& dir) {
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
    throw UsageError{"--static: " + dir + " is not a directory"};
}

}  // namespace

std::function<int()> add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Run a WebSocket server");
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port (0 picks a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--mode", args->mode, "echo | broadcast | chat")
      ->check(CLI::IsMember({"echo", "broadcast", "chat"}))
      ->capture_default_str();
  cmd->add_option("--static", args->static_dir, "Serve files from DIR");
  cmd->add_option("--threads", args->threads, "Event loops sharing the port (SO_REUSEPORT)")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  cmd->add_option("--ping-interval", args->ping_interval,
                  "Ping when nothing was sent for this long (0: no heartbeat)")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--ping-timeout", args->ping_timeout,
                  "Peer is dead after interval + timeout without a received byte")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--idle-timeout", args->idle_timeout,
                  "Close (1001) after this long without a message (0: off)")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--handshake-timeout", args->handshake_timeout,
                  "Drop connections that have not finished the upgrade in time")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--max-message", args->max_message, "Largest message accepted (1009 past it)")
      ->check(size_validator())
      ->capture_default_str();
  cmd->add_option(
         "--resume-window", args->resume_window,
         "Keep sessions and unacknowledged messages this long for tether.resume.v1 (0: off)")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_flag("--json-events", args->json_events,
                "One JSON object per line per connection event");
  cmd->add_option("--tls-cert", args->tls_cert,
                  "PEM certificate chain (leaf first): serve wss:// (needs --tls-key)");
  cmd->add_option("--tls-key", args->tls_key, "PEM private key for --tls-cert");
  cmd->add_flag("--deflate", args->deflate, "Accept permessage-deflate (RFC 7692) offers");
  cmd->add_option("--deflate-options", args->deflate_options,
                  "permessage-deflate parameters to ask for, comma-separated (implies --deflate): "
                  "server_no_context_takeover, client_no_context_takeover, "
                  "server_max_window_bits=N, client_max_window_bits=N, threshold=BYTES, "
                  "level=N; 'none' for none (default: both no_context_takeover)");
  cmd->add_option("--max-connections", args->max_connections,
                  "Connections in all (503 past it; 0: no limit)")
      ->capture_default_str();
  cmd->add_option("--max-connections-per-ip", args->max_connections_per_ip,
                  "Connections per client address, loopback exempt (503 past it; 0: no limit)")
      ->capture_default_str();
  cmd->add_option("--max-handshake", args->max_handshake, "Largest upgrade request head (431)")
      ->check(size_validator())
      ->capture_default_str();
  cmd->add_option("--origin", args->origins,
                  "Allowed Origin (repeatable; others get 403; default: any)");
  cmd->add_option("--send-buffer-max", args->send_buffer_max,
                  "Bytes queued for a client that does not read before --send-overflow applies")
      ->check(size_validator())
      ->capture_default_str();
  cmd->add_option("--send-overflow", args->send_overflow,
                  "close (1008) or drop when the send buffer is full")
      ->check(CLI::IsMember({"close", "drop"}))
      ->capture_default_str();
  cmd->add_option("--max-control-rate", args->max_control_rate,
                  "Pings+pongs a client may send per second (1008 past it; 0: no limit)")
      ->capture_default_str();
  cmd->add_option("--accept-rate", args->accept_rate,
                  "New connections accepted per second per loop (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--redis", args->redis);

  return [args]() -> int {
    refuse_unimplemented(*args);
    check_static_dir(args->static_dir);
    // Signals are taken by a dedicated thread with sigwait, so the stop runs in normal
    // context (no async-signal-safety traps). Block them before any loop thread starts.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    ServerOptions opts;
    opts.host = args->host;
    opts.port = static_cast<uint16_t>(args->port);
    opts.threads = args->threads;
    opts.max_message = opts.max_frame = to_size(args->max_message);
    opts.ping_interval = to_duration(args->ping_interval);
    opts.ping_timeout = to_duration(args->ping_timeout);
    opts.idle_timeout = to_duration(args->idle_timeout);
    opts.handshake_timeout = to_duration(args->handshake_timeout);
    opts.resume_window = to_duration(args->resume_window);
    opts.static_dir = args->static_dir;
    opts.tls.cert_file = args->tls_cert;
    opts.tls.key_file = args->tls_key;
    opts.deflate.enabled = args->deflate || !args->deflate_options.empty();
    if (!args->deflate_options.empty()) apply_deflate_options(args->deflate_options, opts.deflate);
    opts.max_connections = args->max_connections;
    opts.max_connections_per_ip = args->max_connections_per_ip;
    opts.max_handshake_size = to_size(args->max_handshake);
    opts.allowed_origins = args->origins;
    opts.send_buffer_max = to_size(args->send_buffer_max);
    opts.send_overflow = args->send_overflow == "drop" ? ServerOptions::SendOverflow::drop
                                                       : ServerOptions::SendOverflow::close;
    opts.max_control_frames_per_second = args->max_control_rate;
    opts.accept_rate = args->accept_rate;
    const bool chat_mode = args->mode == "chat";
    // The chat's room state has no lock: one loop (docs/cli.md).
    if (chat_mode && opts.threads > 1) {
      std::fprintf(stderr, "tether serve: --mode chat runs one event loop; --threads ignored\n");
      opts.threads = 1;
    }
    Server server(opts);
    const bool json = args->json_events;
    const bool broadcast = args->mode == "broadcast";

    // Chat mode: ChatServer handles the messages; the open/close events are chained to it.
    std::unique_ptr<chat::ChatServer> chat;
    if (chat_mode) {
      chat = std::make_unique<chat::ChatServer>(server);
      if (auto page = web_asset("/chat/index.html"))
        server.add_page("/", "text/html; charset=utf-8", std::string(*page));
    } else {
      server.on_message([&server, broadcast](Connection& c, std::string_view data, MessageType t) {
        if (broadcast)
          server.broadcast(data, t);
        else
          c.send(data, t);
      });
    }
    server.on_open([json, c = chat.get()](Connection& conn) {
      if (c) c->opened(conn);
      if (json) emit_line(json_line({{"event", "open"}, {"id", conn.id()}, {"peer", conn.peer()}}));
    });
    server.on_close([json, c = chat.get()](Connection& conn, const CloseInfo& info) {
      if (c) c->closed(conn);
      if (json)
        emit_line(json_line({{"event", "close"},
                             {"id", conn.id()},
                             {"code", info.code},
                             {"reason", info.reason},
                             {"clean", info.was_clean},
                             {"cause", std::string(to_string(info.cause))}}));
    });
    server.on_error([](std::string_view what) {
      std::fprintf(stderr, "tether serve: %.*s\n", static_cast<int>(what.size()), what.data());
    });
    if (auto ec = server.listen()) {
      std::fprintf(stderr, "tether serve: cannot listen on %s:%d: %s\n", args->host.c_str(),
                   args->port, ec.message().c_str());
      return 1;
    }
    std::string host =
        args->host.find(':') != std::string::npos ? "[" + args->host + "]" : args->host;
    emit_line(std::string(args->tls_cert.empty() ? "listening ws://" : "listening wss://") + host +
              ":" + std::to_string(server.port()));

    std::thread([&server, sigs] {
      int sig = 0;
      sigwait(&sigs, &sig);
      // SIGTERM is what service managers send to restart: 1012 with paced reconnects.
      // SIGINT (Ctrl-C) is someone stopping it: 1001 going away.
      if (sig == SIGTERM)
        server.stop_for_restart();
      else
        server.stop(close_code::going_away, "server shutting down");
    }).detach();
    server.run();
    return 0;
  };
}

}  // namespace tether::cli
