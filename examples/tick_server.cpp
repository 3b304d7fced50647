// Server push: every connected client gets a tick each second. ./tick_server [port]
// Clients that subscribe (send "sub clock") also get the topic's "clock" messages.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tether/tether.hpp>
#include <thread>

int main(int argc, char** argv) {
  tether::ServerOptions options;
  options.port = static_cast<uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  tether::Server server(options);
  server.on_message([&](tether::Connection& c, std::string_view data, tether::MessageType) {
    if (data.starts_with("sub ")) server.subscribe(c, data.substr(4));
  });
  if (auto ec = server.listen()) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    return 1;
  }
  std::printf("listening ws://127.0.0.1:%u\n", server.port());
  std::fflush(stdout);

  std::atomic<bool> running{true};
  std::thread ticker([&] {  // broadcast() and publish() are thread-safe
    for (long n = 1; running; ++n) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      server.broadcast("tick " + std::to_string(n));
      server.publish("clock", std::to_string(std::time(nullptr)));
    }
  });
  server.run();  // until server.stop()
  running = false;
  ticker.join();
}
