// A WebSocket client in ~30 lines: sends one message, prints the echo, closes.
//   ./echo_client ws://127.0.0.1:8080/ "hello"
#include <cstdio>
#include <string>
#include <tether/tether.hpp>

int main(int argc, char** argv) {
  tether::ClientOptions options;
  options.url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/";
  std::string text = argc > 2 ? argv[2] : "hello, tether";
  tether::Client client(options);
  bool clean = false;

  client.on_open([&] { client.send(text); });
  client.on_message([&](std::string_view data, tether::MessageType) {
    std::printf("received: %.*s\n", static_cast<int>(data.size()), data.data());
    client.close(tether::close_code::normal, "bye");
  });
  client.on_close([&](const tether::CloseInfo& info) {
    std::printf("closed: code %u, %s, cause %s\n", info.code,
                info.was_clean ? "clean" : "not clean",
                std::string(tether::to_string(info.cause)).c_str());
    clean = info.was_clean;
  });

  client.connect();
  client.run();  // returns when the connection has ended
  return clean ? 0 : 1;
}
