// beast_echo: a Boost.Beast WebSocket echo server, the reference peer for
// bench/run.sh.
//
//   beast_echo [PORT] [HOST]      PORT 0 (the default) picks a free port;
//                                 HOST defaults to 127.0.0.1.
//
// First stdout line (flushed): `listening ws://HOST:PORT`, like `tether serve`.
// SIGINT/SIGTERM stop the server; exit status 0.
//
// It is the plain, idiomatic Beast echo: one single-threaded io_context,
// async_accept, then per connection a loop of async_read into a flat_buffer,
// echo with the same opcode (binary(got_binary())), async_write. Settings are
// chosen to make it a fair and reasonably efficient peer, not a crippled one:
//   - TCP_NODELAY on every accepted socket (tether sets it too);
//   - permessage-deflate off (Beast's default; set explicitly here);
//   - auto_fragment(false): a message is written as one frame;
//   - read_message_max 16 MiB (the same as `tether serve --max-message 16m`);
//   - io_context concurrency hint 1, which lets Asio skip internal locking;
//   - websocket::stream over a bare tcp::socket: no per-operation timers (the
//     benchmark never idles, and tether's idle timeout defaults to off too).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr std::size_t kReadMessageMax = 16u * 1024u * 1024u;

// One WebSocket connection: handshake, then read -> write -> read ...
// Owned by the shared_ptr copies held in its pending completion handlers; it
// goes away when the last operation completes with an error (peer closed).
class EchoSession : public std::enable_shared_from_this<EchoSession> {
 public:
  explicit EchoSession(tcp::socket socket) : ws_(std::move(socket)) {}

  void start() {
    websocket::permessage_deflate no_deflate;  // both offers default to off
    no_deflate.server_enable = false;
    no_deflate.client_enable = false;
    ws_.set_option(no_deflate);
    ws_.auto_fragment(false);
    ws_.read_message_max(kReadMessageMax);

    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->read_next();
    });
  }

 private:
  void read_next() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    // websocket::error::closed is the normal end (the close handshake is done);
    // anything else is a reset or a protocol error. Either way: drop the session.
    if (ec) return;
    ws_.binary(ws_.got_binary());
    ws_.async_write(buffer_.data(), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    read_next();
  }

  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
};

void accept_next(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;  // acceptor closed: stopping
    if (!ec) {
      beast::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);  // best effort
      std::make_shared<EchoSession>(std::move(socket))->start();
    } else {
      std::fprintf(stderr, "beast_echo: accept: %s\n", ec.message().c_str());
    }
    accept_next(acceptor);
  });
}

int parse_port(const char* text) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 0 || value > 65535) return -1;
  return static_cast<int>(value);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3) {
    std::fprintf(stderr, "usage: %s [PORT] [HOST]\n", argv[0]);
    return 2;
  }
  const int port = argc > 1 ? parse_port(argv[1]) : 0;
  if (port < 0) {
    std::fprintf(stderr, "beast_echo: bad port '%s' (want 0..65535)\n", argv[1]);
    return 2;
  }
  const std::string host = argc > 2 ? argv[2] : "127.0.0.1";

  try {
    asio::io_context ioc{1};  // run() from this thread only

    beast::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
      std::fprintf(stderr, "beast_echo: bad host '%s': %s\n", host.c_str(), ec.message().c_str());
      return 2;
    }
    const tcp::endpoint endpoint{address, static_cast<unsigned short>(port)};

    tcp::acceptor acceptor{ioc};
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](beast::error_code, int) {
      beast::error_code ignored;
      acceptor.close(ignored);
      ioc.stop();
    });

    accept_next(acceptor);

    const auto bound = acceptor.local_endpoint();
    std::printf("listening ws://%s:%u\n", bound.address().to_string().c_str(),
                static_cast<unsigned>(bound.port()));
    std::fflush(stdout);

    ioc.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beast_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
