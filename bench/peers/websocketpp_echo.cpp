// websocketpp_echo: a websocketpp 0.8 echo server (Debian libwebsocketpp-dev, header-only, on
// Boost.Asio), a peer for bench/compare.py.
//
//   websocketpp_echo PORT     listens on 127.0.0.1:PORT; prints nothing but errors.
//
// The library's own echo_server example, with the settings every peer shares:
//   - config::asio (no TLS), one thread calling run();
//   - TCP_NODELAY on every accepted socket (socket_init handler);
//   - no permessage-deflate (the asio config has none enabled);
//   - max message size 16 MiB (websocketpp's default is 32 MB; tether serve's is 16 MiB);
//   - access logging off, error logging kept for real errors (rerror, fatal).
// Each message is echoed with its own opcode, as one frame.
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>

using Server = websocketpp::server<websocketpp::config::asio>;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<uint16_t>(std::atoi(argv[1]));
  try {
    Server server;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.clear_error_channels(websocketpp::log::elevel::all);
    server.set_error_channels(websocketpp::log::elevel::rerror | websocketpp::log::elevel::fatal);
    server.init_asio();
    server.set_reuse_addr(true);
    server.set_max_message_size(16 * 1024 * 1024);
    server.set_socket_init_handler([](websocketpp::connection_hdl, boost::asio::ip::tcp::socket& s) {
      boost::system::error_code ec;
      s.set_option(boost::asio::ip::tcp::no_delay(true), ec);
    });
    server.set_message_handler([&server](websocketpp::connection_hdl hdl, Server::message_ptr msg) {
      websocketpp::lib::error_code ec;
      server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
    });
    server.listen(boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), port));
    server.start_accept();
    server.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "websocketpp_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
