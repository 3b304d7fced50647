// A client that reconnects by itself and resumes its session: what it sends while the server is
// away is delivered once, in order, when it comes back; so is what the server sent meanwhile.
//   ./resume_client ws://127.0.0.1:8080/     (then restart or cut the server and watch)
#include <chrono>
#include <cstdio>
#include <string>
#include <tether/tether.hpp>
#include <thread>

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one line at a time, also into a pipe
  tether::ClientOptions options;
  options.url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/";
  options.resume = true;  // negotiate tether.resume.v1
  options.ping_interval = std::chrono::seconds(5);
  options.ping_timeout = std::chrono::seconds(5);
  tether::Client client(options);

  client.on_open([&] { std::printf("open (attempt %u)\n", client.attempt()); });
  client.on_message([](std::string_view m, tether::MessageType) {
    std::printf("got: %.*s\n", static_cast<int>(m.size()), m.data());
  });
  client.on_close([](const tether::CloseInfo& i) {
    std::printf("closed: %u %s (%s)\n", i.code, i.reason.c_str(),
                std::string(tether::to_string(i.cause)).c_str());
  });
  client.on_reconnecting([](unsigned attempt, std::chrono::milliseconds delay) {
    std::printf("reconnecting: attempt %u in %lld ms\n", attempt,
                static_cast<long long>(delay.count()));
  });
  client.on_resumed(
      [](uint64_t n) { std::printf("resumed (%llu sent again)\n", (unsigned long long)n); });
  client.on_resume_failed([](std::string_view why) {
    std::printf("resume failed: %.*s\n", static_cast<int>(why.size()), why.data());
  });

  std::thread sender([&] {  // send() is thread-safe and queues while disconnected
    for (int i = 1; i <= 30; ++i) {
      client.send("message " + std::to_string(i));
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    client.close();  // once everything has been acknowledged
  });
  client.connect();
  client.run();
  sender.join();
}
