// A WebSocket echo server in ~30 lines: ./echo_server [port]
#include <cstdio>
#include <cstdlib>
#include <tether/tether.hpp>

int main(int argc, char** argv) {
  tether::ServerOptions options;
  options.port = static_cast<uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  tether::Server server(options);

  server.on_open([](tether::Connection& c) {
    std::printf("open #%llu from %s\n", (unsigned long long)c.id(), c.peer().c_str());
  });
  server.on_message([](tether::Connection& c, std::string_view data, tether::MessageType type) {
    c.send(data, type);  // echo with the same opcode
  });
  server.on_close([](tether::Connection& c, const tether::CloseInfo& info) {
    std::printf("close #%llu: code %u (%s)\n", (unsigned long long)c.id(), info.code,
                std::string(tether::to_string(info.cause)).c_str());
  });

  if (auto ec = server.listen()) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    return 1;
  }
  std::printf("listening ws://127.0.0.1:%u\n", server.port());
  std::fflush(stdout);
  server.run();  // until server.stop()
}
