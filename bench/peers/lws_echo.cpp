// lws_echo: a libwebsockets 4.1 echo server (Debian libwebsockets-dev), a peer for
// bench/compare.py.
//
//   lws_echo PORT     listens on 127.0.0.1:PORT; prints nothing but errors (LLL_ERR).
//
// Written the way lws's minimal-ws-server-echo example is: one protocol (the default one,
// so clients that name no subprotocol get it), a per-session queue, and one lws_write() per
// LWS_CALLBACK_SERVER_WRITEABLE, asking for another callback while messages are queued. Unlike
// the example it reassembles a message that lws delivers in several RECEIVE callbacks (large
// frames) and writes it back as one frame, like every other peer. Settings:
//   - the default lws event loop (poll), one service thread;
//   - no extensions, hence no permessage-deflate;
//   - rx_buffer_size 64 KiB (the example's 128 bytes would cut 1 MiB messages into 8,192 pieces);
//   - lws sets TCP_NODELAY on accepted sockets itself.
#include <libwebsockets.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

namespace {

struct Message {
  std::vector<unsigned char> bytes;  // LWS_PRE bytes of headroom, then the payload
  bool binary = true;
};

struct Session {
  std::deque<Message> queue;  // received, not yet written back
  Message partial;
  bool in_message = false;
};

struct PerSession {
  Session* s;  // lws allocates (and zeroes) this struct; the C++ object lives behind it
};

int callback_echo(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  auto* pss = static_cast<PerSession*>(user);
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      pss->s = new Session;
      break;
    case LWS_CALLBACK_CLOSED:
      delete pss->s;
      pss->s = nullptr;
      break;
    case LWS_CALLBACK_RECEIVE: {
      Session& s = *pss->s;
      if (!s.in_message) {
        s.partial.bytes.assign(LWS_PRE, 0);
        s.partial.binary = lws_frame_is_binary(wsi) != 0;
        s.in_message = true;
      }
      const auto* p = static_cast<const unsigned char*>(in);
      s.partial.bytes.insert(s.partial.bytes.end(), p, p + len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        s.queue.push_back(std::move(s.partial));
        s.partial = Message{};
        s.in_message = false;
        lws_callback_on_writable(wsi);
      }
      break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      Session& s = *pss->s;
      if (s.queue.empty()) break;
      Message& m = s.queue.front();
      const std::size_t n = m.bytes.size() - LWS_PRE;
      const int wrote = lws_write(wsi, m.bytes.data() + LWS_PRE, n,
                                  m.binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
      // Fails only when the connection is going away (the load generator closes its sockets at
      // the end of a run with echoes in flight): close it quietly.
      if (wrote < static_cast<int>(n)) return -1;
      s.queue.pop_front();
      if (!s.queue.empty()) lws_callback_on_writable(wsi);
      break;
    }
    default:
      break;
  }
  return 0;
}

const lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(PerSession), 64 * 1024, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

volatile std::sig_atomic_t interrupted = 0;
void on_signal(int) { interrupted = 1; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  lws_set_log_level(LLL_ERR, nullptr);

  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = std::atoi(argv[1]);
  info.iface = "127.0.0.1";
  info.protocols = protocols;
  info.gid = -1;
  info.uid = -1;
  lws_context* context = lws_create_context(&info);
  if (context == nullptr) {
    std::fprintf(stderr, "lws_echo: lws_create_context failed\n");
    return 1;
  }
  int n = 0;
  while (n >= 0 && !interrupted) n = lws_service(context, 0);
  lws_context_destroy(context);
  return 0;
}
