// A standalone chat server: ./chat_server [port], then open http://127.0.0.1:PORT/ in two tabs.
// The page is the one compiled into the library (web/chat/index.html), found with web_asset().
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tether/tether.hpp>

#include "chat_server.hpp"

int main(int argc, char** argv) {
  tether::ServerOptions options;
  options.port = static_cast<uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  options.threads = 1;  // ChatServer keeps its rooms without a lock
  tether::Server server(options);
  chat::ChatServer chat(server);
  if (auto page = tether::web_asset("/chat/index.html"))
    server.add_page("/", "text/html; charset=utf-8", std::string(*page));
  if (auto ec = server.listen()) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    return 1;
  }
  std::printf("listening ws://127.0.0.1:%u\nopen http://127.0.0.1:%u/ in two browser tabs\n",
              server.port(), server.port());
  std::fflush(stdout);
  server.run();  // until killed
}
