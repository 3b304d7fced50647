// `tether serve`: echo / broadcast / pubsub / chat server (CONTRACT.md, docs/cli.md).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "chat_server.hpp"
#include "commands.hpp"
#include "log.hpp"
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
  // stderr logs and metrics (docs/cli.md#logs, #metrics)
  std::string log_format = "text", log_level = "info";
  int metrics_port = 0;
  // permessage-deflate
  bool deflate = false;
  std::string deflate_options;
  // limits (docs/security.md)
  std::size_t max_connections = 50000, max_connections_per_ip = 256;
  std::string max_handshake = "16k", send_buffer_max = "16m", send_overflow = "close";
  std::vector<std::string> origins;
  unsigned max_control_rate = 50, accept_rate = 2000;
};

// Flags that only make sense together.
void check_flags(const ServeArgs& a) {
  if (a.tls_cert.empty() != a.tls_key.empty())
    throw UsageError{"--tls-cert/--tls-key: give both (PEM certificate chain and private key)"};
}

// --mode pubsub: the topic is the request path without its leading '/' and query
// (ws://host/news -> "news"; "/" -> "").
std::string topic_of(const Connection& c) {
  std::string_view p = c.path();
  p = p.substr(0, p.find('?'));
  if (p.starts_with('/')) p.remove_prefix(1);
  return std::string(p);
}

// --static DIR must name an existing directory now, not at the first request.
void check_static_dir(const std::string& dir) {
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
    throw UsageError{"--static: " + dir + " is not a directory"};
}

// --log-level info: one line per connection event (docs/cli.md#logs).
void log_open(const Logger& log, const Connection& c) {
  if (!log.enabled(LogLevel::info)) return;
  log.log(LogLevel::info, "open",
          {{"id", c.id()},
           {"peer", c.peer()},
           {"path", c.path()},
           {"subprotocol", c.subprotocol()},
           {"handshake_ms", to_ms(c.stats().handshake_duration)}});
}

void log_close(const Logger& log, const Connection& c, const CloseInfo& info) {
  if (!log.enabled(LogLevel::info)) return;
  const ConnectionStats s = c.stats();
  log.log(LogLevel::info, "close",
          {{"id", c.id()},
           {"peer", c.peer()},
           {"code", info.code},
           {"reason", info.reason},
           {"clean", info.was_clean},
           {"cause", to_string(info.cause)},
           {"duration_ms", to_ms(s.age)},
           {"bytes_in", s.bytes_received},
           {"bytes_out", s.bytes_sent},
           {"messages_in", s.messages_received},
           {"messages_out", s.messages_sent}});
}

void log_listening(const Logger& log, const ServeArgs& a, uint16_t port, const ServerOptions& o) {
  log.log(LogLevel::info, "listen",
          {{"host", a.host},
           {"port", port},
           {"tls", !a.tls_cert.empty()},
           {"mode", a.mode},
           {"metrics",
            o.metrics_port != 0 ? "port " + std::to_string(o.metrics_port) : o.metrics_path}});
  log.log(LogLevel::debug, "config",
          {{"threads", o.threads},
           {"ping_interval_ms", o.ping_interval.count()},
           {"ping_timeout_ms", o.ping_timeout.count()},
           {"idle_timeout_ms", o.idle_timeout.count()},
           {"handshake_timeout_ms", o.handshake_timeout.count()},
           {"resume_window_ms", o.resume_window.count()},
           {"max_message", o.max_message},
           {"max_connections", o.max_connections},
           {"max_connections_per_ip", o.max_connections_per_ip},
           {"deflate", o.deflate.enabled},
           {"redis", !o.redis_url.empty()}});
}

}  // namespace

std::function<int()> add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Run a WebSocket server");
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port (0 picks a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--mode", args->mode, "echo | broadcast | pubsub | chat")
      ->check(CLI::IsMember({"echo", "broadcast", "pubsub", "chat"}))
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
  cmd->add_option("--redis", args->redis,
                  "redis://host[:port][/db]: share topic publishes (and resume state) with every "
                  "node using the same Redis");
  cmd->add_option("--log-format", args->log_format, "stderr log lines: text (logfmt) or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--log-level", args->log_level,
                  "debug | info (a line per connection open/close) | warn | error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  cmd->add_option("--metrics-port", args->metrics_port,
                  "Serve /metrics and /healthz on this port instead of the main one (0: main)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();

  return [args]() -> int {
    check_flags(*args);
    check_static_dir(args->static_dir);
    const Logger log(args->log_format == "json" ? LogFormat::json : LogFormat::text,
                     parse_log_level(args->log_level).value_or(LogLevel::info));
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
    opts.redis_url = args->redis;
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
    opts.metrics_port = static_cast<uint16_t>(args->metrics_port);
    const bool chat_mode = args->mode == "chat";
    // The chat's room state has no lock: one loop (docs/cli.md).
    if (chat_mode && opts.threads > 1) {
      log.log(LogLevel::warn, "config",
              {{"message", "--mode chat runs one event loop; --threads ignored"}});
      opts.threads = 1;
    }
    Server server(opts);
    const bool json = args->json_events;
    const bool broadcast = args->mode == "broadcast";
    const bool pubsub = args->mode == "pubsub";

    // Chat mode: ChatServer handles the messages; the open/close events are chained to it.
    std::unique_ptr<chat::ChatServer> chat;
    if (chat_mode) {
      chat = std::make_unique<chat::ChatServer>(server);
      if (auto page = web_asset("/chat/index.html"))
        server.add_page("/", "text/html; charset=utf-8", std::string(*page));
    } else {
      server.on_message(
          [&server, broadcast, pubsub](Connection& c, std::string_view data, MessageType t) {
            if (pubsub)
              server.publish(topic_of(c), data, t);  // every node's subscribers (--redis)
            else if (broadcast)
              server.broadcast(data, t);
            else
              c.send(data, t);
          });
    }
    server.on_open([json, pubsub, &server, &log, c = chat.get()](Connection& conn) {
      if (c) c->opened(conn);
      if (pubsub) server.subscribe(conn, topic_of(conn));
      if (json) emit_line(json_line({{"event", "open"}, {"id", conn.id()}, {"peer", conn.peer()}}));
      log_open(log, conn);
    });
    server.on_close([json, &log, c = chat.get()](Connection& conn, const CloseInfo& info) {
      if (c) c->closed(conn);
      if (json)
        emit_line(json_line({{"event", "close"},
                             {"id", conn.id()},
                             {"code", info.code},
                             {"reason", info.reason},
                             {"clean", info.was_clean},
                             {"cause", std::string(to_string(info.cause))}}));
      log_close(log, conn, info);
    });
    // Before listen() returns, errors are configuration failures (TLS files, ports).
    std::atomic<bool> listening{false};
    server.on_error([&log, &listening](std::string_view what) {
      const bool handshake = what.starts_with("handshake from ");
      log.log(listening ? LogLevel::warn : LogLevel::error,
              handshake ? "handshake_failed" : "error", {{"message", what}});
    });
    if (auto ec = server.listen()) {
      log.log(LogLevel::error, "listen_failed",
              {{"host", args->host}, {"port", args->port}, {"message", ec.message()}});
      return 1;
    }
    listening = true;
    std::string host =
        args->host.find(':') != std::string::npos ? "[" + args->host + "]" : args->host;
    emit_line(std::string(args->tls_cert.empty() ? "listening ws://" : "listening wss://") + host +
              ":" + std::to_string(server.port()));
    log_listening(log, *args, server.port(), opts);

    std::thread([&server, &log, sigs] {
      int sig = 0;
      sigwait(&sigs, &sig);
      log.log(LogLevel::info, "stop", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
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
