// RFC 7692 permessage-deflate over zlib (raw DEFLATE streams, negative windowBits).
#include "extensions/permessage_deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <new>

namespace tether::extensions {
namespace {

using protocol::ExtensionOffer;

// §7.2.1/§7.2.2: the 4 octets a sync flush ends with, stripped by the sender, appended back by
// the receiver.
constexpr uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};
// Output is produced into a stack chunk and appended, so the destination vector is never
// zero-filled ahead of zlib (a resize would write every byte twice).
constexpr std::size_t kChunk = 16 * 1024;
// Inflating with the largest window accepts data compressed with any smaller one (RFC 1951
// distances never exceed the sender's window), so the peer's window never needs to be known.
constexpr int kInflateWindow = 15;
// zlib's default. A compressor costs (1 << (window + 2)) + (1 << (memLevel + 9)) bytes: 256 KiB
// at 15 bits, which is why shared ones are worth having.
constexpr int kMemLevel = 8;
// Free inflaters a thread keeps (more only after that many messages were in progress at once).
constexpr std::size_t kPoolKeep = 16;

std::atomic<long> g_deflaters{0};
std::atomic<long> g_inflaters{0};

int clamp_window(int bits) { return std::clamp(bits, 9, 15); }
int clamp_level(int level) { return std::clamp(level, 1, 9); }

z_stream* new_deflater(int window, int level) {
  auto* s = new (std::nothrow) z_stream{};
  if (s == nullptr) return nullptr;
  // Negative windowBits: raw DEFLATE, no zlib header or checksum (§7.2.1).
  if (deflateInit2(s, level, Z_DEFLATED, -window, kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
    delete s;
    return nullptr;
  }
  ++g_deflaters;
  return s;
}

void free_deflater(z_stream* s) {
  if (s == nullptr) return;
  deflateEnd(s);
  delete s;
  --g_deflaters;
}

z_stream* new_inflater() {
  auto* s = new (std::nothrow) z_stream{};
  if (s == nullptr) return nullptr;
  if (inflateInit2(s, -kInflateWindow) != Z_OK) {
    delete s;
    return nullptr;
  }
  ++g_inflaters;
  return s;
}

void free_inflater(z_stream* s) {
  if (s == nullptr) return;
  inflateEnd(s);
  delete s;
  --g_inflaters;
}

// Per-thread zlib state for directions without context takeover. Trivially destructible flag:
// still readable while thread_local objects are being destroyed at thread exit.
thread_local bool t_zlib_gone = false;

struct ThreadZlib {
  // Compressors are used for one whole message inside one call, so one per (window, level) is
  // enough for every connection of the thread.
  std::array<z_stream*, 7 * 9> deflaters{};
  // Inflaters are held from a message's first payload chunk to its last frame, which may span
  // reads, so two connections can each be in the middle of a message: a free list, one entry in
  // steady state, as many as messages were ever in progress at once.
  std::vector<z_stream*> inflaters;

  ~ThreadZlib() {
    for (z_stream* s : deflaters) free_deflater(s);
    for (z_stream* s : inflaters) free_inflater(s);
    t_zlib_gone = true;
  }
};

ThreadZlib* thread_zlib() {
  if (t_zlib_gone) return nullptr;
  thread_local ThreadZlib t;
  return &t;
}

z_stream* shared_deflater(int window, int level) {
  ThreadZlib* t = thread_zlib();
  if (t == nullptr) return nullptr;
  z_stream*& slot = t->deflaters[static_cast<std::size_t>((window - 9) * 9 + (level - 1))];
  if (slot == nullptr) slot = new_deflater(window, level);
  return slot;
}

z_stream* pooled_inflater() {
  ThreadZlib* t = thread_zlib();
  if (t == nullptr || t->inflaters.empty()) return new_inflater();
  z_stream* s = t->inflaters.back();
  t->inflaters.pop_back();
  return s;
}

void return_inflater(z_stream* s) {
  ThreadZlib* t = thread_zlib();
  if (t == nullptr || t->inflaters.size() >= kPoolKeep || inflateReset(s) != Z_OK) {
    free_inflater(s);
    return;
  }
  t->inflaters.push_back(s);
}

// Appends without letting the vector's growth overshoot `cap` bytes of capacity (a doubling
// vector at 9 MiB would otherwise reserve 18 MiB for a 16 MiB limit).
void append_capped(std::vector<uint8_t>& out, const uint8_t* p, std::size_t n, std::size_t cap) {
  if (out.size() + n > out.capacity()) {
    std::size_t want = std::max<std::size_t>(out.capacity() * 2, 4096);
    want = std::min(want, cap);
    want = std::max(want, out.size() + n);
    out.reserve(want);
  }
  out.insert(out.end(), p, p + n);
}

// ---- negotiation

// §7.1.2.1/§7.1.2.2: "a decimal integer value without leading zeroes between 8 to 15".
std::optional<int> parse_window_bits(std::string_view v) {
  if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
  return std::nullopt;
}

struct ParsedParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;  // value given
  bool client_max_window_bits = false;        // present (with or without a value)
  std::optional<int> client_max_window_bits_value;
};

// Parses the four §7.1 parameters. `is_response`: a response must give client_max_window_bits a
// value, an offer may leave it bare (§7.1.2.2).
bool parse_params(const ExtensionOffer& e, bool is_response, ParsedParams& p, std::string& why) {
  bool seen[4] = {};
  for (const auto& [name, value] : e.params) {
    int idx = name == "server_no_context_takeover"   ? 0
              : name == "client_no_context_takeover" ? 1
              : name == "server_max_window_bits"     ? 2
              : name == "client_max_window_bits"     ? 3
                                                     : -1;
    if (idx < 0) {
      why = "unknown parameter " + name;
      return false;
    }
    if (seen[idx]) {
      why = "duplicate parameter " + name;
      return false;
    }
    seen[idx] = true;
    switch (idx) {
      case 0:
      case 1:
        // §7.1.1.1/§7.1.1.2: "This extension parameter has no value."
        if (!value.empty()) {
          why = name + " must not have a value";
          return false;
        }
        (idx == 0 ? p.server_no_context_takeover : p.client_no_context_takeover) = true;
        break;
      case 2: {
        auto bits = parse_window_bits(value);
        if (!bits) {
          why = "invalid server_max_window_bits value \"" + value + "\"";
          return false;
        }
        p.server_max_window_bits = bits;
        break;
      }
      case 3:
        p.client_max_window_bits = true;
        if (value.empty() && !is_response) break;
        if (auto bits = parse_window_bits(value)) {
          p.client_max_window_bits_value = bits;
        } else {
          why = "invalid client_max_window_bits value \"" + value + "\"";
          return false;
        }
        break;
    }
  }
  return true;
}

// Appends "; name" or "; name=value" (value 0: none) to an extension element.
void add_param(std::string& out, std::string_view name, int value = 0) {
  out += "; ";
  out += name;
  if (value > 0) {
    out += '=';
    out += std::to_string(value);
  }
}

}  // namespace

std::string client_offer(const DeflateOptions& options) {
  std::string out(kPermessageDeflate);
  // §7.1.2.2: offering client_max_window_bits lets the server ask for a smaller window; a value
  // is a hint that we will not use more.
  const int client_bits = clamp_window(options.client_max_window_bits);
  add_param(out, "client_max_window_bits", client_bits < 15 ? client_bits : 0);
  if (const int server_bits = clamp_window(options.server_max_window_bits); server_bits < 15)
    add_param(out, "server_max_window_bits", server_bits);
  if (options.server_no_context_takeover) add_param(out, "server_no_context_takeover");
  if (options.client_no_context_takeover) add_param(out, "client_no_context_takeover");
  return out;
}

bool server_accept_offer(const ExtensionOffer& offer, const DeflateOptions& options,
                         ServerAgreement& out, std::string* why) {
  ParsedParams p;
  std::string reason;
  // §7.1: decline an offer with an unknown, invalid or repeated parameter.
  if (!parse_params(offer, false, p, reason)) {
    if (why) *why = std::move(reason);
    return false;
  }
  // §7.1: decline "if the server doesn't support the offered configuration": zlib cannot
  // compress with a 256-byte window (deflateInit2 turns 8 into 9, which the client may not be
  // able to inflate), so an offer demanding server_max_window_bits=8 is declined.
  if (p.server_max_window_bits && *p.server_max_window_bits < 9) {
    if (why) *why = "server_max_window_bits=8 is not supported by zlib";
    return false;
  }
  DeflateParams params;
  // §7.1.1.1: an offered server_no_context_takeover must be accepted by repeating it; the server
  // may also add it unasked (our default, for the shared per-thread compressor).
  params.server_no_context_takeover =
      options.server_no_context_takeover || p.server_no_context_takeover;
  // §7.1.1.2: the server may always include client_no_context_takeover; an offer that carries it
  // promised to reset anyway, so repeating it costs the client nothing and lets our inflater be
  // the shared one.
  params.client_no_context_takeover =
      options.client_no_context_takeover || p.client_no_context_takeover;
  // §7.1.2.1: answer an offered server_max_window_bits with the same or a smaller value; one
  // not offered may still be sent to announce a smaller window.
  params.server_max_window_bits = clamp_window(options.server_max_window_bits);
  if (p.server_max_window_bits)
    params.server_max_window_bits =
        std::min(params.server_max_window_bits, *p.server_max_window_bits);
  const bool send_server_bits = p.server_max_window_bits || params.server_max_window_bits < 15;
  // §7.1.2.2: client_max_window_bits only when the offer has it; a value there is the client's
  // own limit, which ours may lower further.
  bool send_client_bits = false;
  params.client_max_window_bits = p.client_max_window_bits_value.value_or(15);
  if (p.client_max_window_bits) {
    const int asked = std::min(clamp_window(options.client_max_window_bits),
                               p.client_max_window_bits_value.value_or(15));
    params.client_max_window_bits = asked;
    send_client_bits = asked < 15;
  }

  out.params = params;
  out.response.assign(kPermessageDeflate);
  if (params.server_no_context_takeover) add_param(out.response, "server_no_context_takeover");
  if (params.client_no_context_takeover) add_param(out.response, "client_no_context_takeover");
  if (send_server_bits)
    add_param(out.response, "server_max_window_bits", params.server_max_window_bits);
  if (send_client_bits)
    add_param(out.response, "client_max_window_bits", params.client_max_window_bits);
  return true;
}

std::optional<ServerAgreement> server_negotiate(std::span<const ExtensionOffer> offers,
                                                const DeflateOptions& options) {
  for (const auto& offer : offers) {
    if (!protocol::iequals(offer.name, kPermessageDeflate)) continue;
    ServerAgreement a;
    if (server_accept_offer(offer, options, a)) return a;
  }
  return std::nullopt;
}

ClientAgreement client_accept_response(const ExtensionOffer& response,
                                       const ExtensionOffer& offered) {
  ClientAgreement r;
  auto fail = [&r](std::string why) {
    r = ClientAgreement{};
    r.error = "permessage-deflate: " + std::move(why);
    return r;
  };
  ParsedParams o;
  ParsedParams p;
  std::string why;
  if (!parse_params(offered, false, o, why)) return fail("our own offer is invalid: " + why);
  // §7.1: unknown, invalid and repeated parameters fail the connection.
  if (!parse_params(response, true, p, why)) return fail(why);
  DeflateParams params;
  // §7.1.1.1: the server may announce server_no_context_takeover even if we did not offer it.
  // Offered but missing, the response does not strictly accept our offer, yet we can honour
  // it (a per-connection inflater), so it is tolerated rather than failed; the same goes for
  // an offered server_max_window_bits left out (we inflate with 15 bits anyway).
  params.server_no_context_takeover = p.server_no_context_takeover;
  // §7.1.1.2: in the response it binds us; in our offer we promised it anyway.
  params.client_no_context_takeover = p.client_no_context_takeover || o.client_no_context_takeover;
  if (p.server_max_window_bits) {
    // §7.1.2.1: "the same or smaller value as the offer". Unoffered, any 8..15 is fine: we
    // inflate with a 15-bit window.
    if (o.server_max_window_bits && *p.server_max_window_bits > *o.server_max_window_bits) {
      why = "server_max_window_bits=";
      why += std::to_string(*p.server_max_window_bits);
      why += " is larger than the offered ";
      why += std::to_string(*o.server_max_window_bits);
      return fail(std::move(why));
    }
    params.server_max_window_bits = *p.server_max_window_bits;
  }
  // A value in our offer is a promise not to use a larger window (§7.1.2.2).
  params.client_max_window_bits = o.client_max_window_bits_value.value_or(15);
  if (p.client_max_window_bits) {
    // §7.1.2.2: only allowed in answer to an offer that has it, and then with a value.
    if (!o.client_max_window_bits) return fail("client_max_window_bits was not offered");
    if (*p.client_max_window_bits_value < 9)
      return fail(
          "server asked for client_max_window_bits=8, which zlib cannot compress with (its "
          "smallest window is 9 bits)");
    params.client_max_window_bits =
        std::min(params.client_max_window_bits, *p.client_max_window_bits_value);
  }
  r.ok = true;
  r.params = params;
  return r;
}

ClientAgreement client_accept_response(const ExtensionOffer& response,
                                       const DeflateOptions& options) {
  std::vector<ExtensionOffer> offered;
  if (!protocol::parse_extensions({client_offer(options)}, offered) || offered.size() != 1)
    return {false, {}, "permessage-deflate: cannot parse our own offer"};
  return client_accept_response(response, offered[0]);
}

bool DeflateNegotiator::accept_offer(const protocol::ExtensionOffer& offer,
                                     std::string& response_element) {
  ServerAgreement a;
  if (!server_accept_offer(offer, options_, a)) return false;
  agreed_ = a.params;
  response_element = std::move(a.response);
  return true;
}

// ---- transformation

PerMessageDeflate::PerMessageDeflate(const DeflateParams& params, Side side, int level)
    : params_(params), level_(clamp_level(level)) {
  const bool server = side == Side::server;
  own_window_ =
      clamp_window(server ? params.server_max_window_bits : params.client_max_window_bits);
  own_reset_ = server ? params.server_no_context_takeover : params.client_no_context_takeover;
  peer_reset_ = server ? params.client_no_context_takeover : params.server_no_context_takeover;
}

PerMessageDeflate::~PerMessageDeflate() {
  release_inflater();
  free_deflater(deflater_);
}

bool PerMessageDeflate::compress(std::span<const uint8_t> message, std::vector<uint8_t>& out) {
  if (message.empty()) {
    // §7.2.3.6: an empty message is the single octet 0x00 (the header bits of an empty stored
    // block; the peer's appended tail completes it). Asking zlib for a sync flush right after
    // the previous one would produce nothing at all, which the peer cannot inflate.
    out.push_back(0x00);
    return true;
  }
  z_stream* s;
  if (own_reset_) {
    s = shared_deflater(own_window_, level_);
    // Reset before use rather than after: a previous failure cannot leak into this message.
    if (s == nullptr || deflateReset(s) != Z_OK) return false;
  } else {
    if (deflate_broken_) return false;
    if (deflater_ == nullptr) deflater_ = new_deflater(own_window_, level_);
    if (deflater_ == nullptr) return false;
    s = deflater_;
  }
  const std::size_t old = out.size();
  // One reservation for the usual case (deflateBound plus the sync flush's 5-byte empty block).
  const std::size_t bound = deflateBound(s, static_cast<uLong>(message.size())) + 16;
  if (out.capacity() < old + bound) out.reserve(old + bound);
  uint8_t chunk[kChunk];
  std::size_t pos = 0;  // bytes handed to zlib so far (avail_in is 32-bit: huge input in pieces)
  s->avail_in = 0;
  for (;;) {
    if (s->avail_in == 0 && pos < message.size()) {
      const std::size_t piece =
          std::min<std::size_t>(message.size() - pos, std::numeric_limits<uInt>::max());
      s->next_in = const_cast<Bytef*>(message.data() + pos);
      s->avail_in = static_cast<uInt>(piece);
      pos += piece;
    }
    const bool last = pos == message.size();
    s->next_out = chunk;
    s->avail_out = sizeof chunk;
    // §7.2.1: Z_SYNC_FLUSH ends the data on a byte boundary with an empty stored block, whose
    // last 4 octets (00 00 ff ff) are then removed; never BFINAL.
    const int rc = deflate(s, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      out.resize(old);
      if (!own_reset_) deflate_broken_ = true;  // the kept window no longer matches the peer's
      return false;
    }
    out.insert(out.end(), chunk, chunk + (sizeof chunk - s->avail_out));
    // The flush is complete when deflate returns with output room left (zlib's contract).
    if (last && s->avail_in == 0 && s->avail_out != 0) break;
  }
  if (out.size() - old >= 4 && std::memcmp(out.data() + out.size() - 4, kTail, 4) == 0)
    out.resize(out.size() - 4);
  return true;
}

z_stream_s* PerMessageDeflate::inflater() {
  if (inflater_ == nullptr) inflater_ = peer_reset_ ? pooled_inflater() : new_inflater();
  return inflater_;
}

void PerMessageDeflate::release_inflater() {
  if (inflater_ == nullptr) return;
  if (peer_reset_)
    return_inflater(inflater_);
  else
    free_inflater(inflater_);
  inflater_ = nullptr;
}

InflateStatus PerMessageDeflate::run_inflate(z_stream_s* s, std::span<const uint8_t> in,
                                             std::vector<uint8_t>& out, std::size_t limit) {
  // Produce at most limit + 1 bytes: one past the limit proves the message is too big, and
  // nothing beyond it is ever inflated (a 1000:1 bomb costs the limit, not its full size).
  const std::size_t cap = limit == std::numeric_limits<std::size_t>::max() ? limit : limit + 1;
  if (!in.empty()) restarted_ = false;
  s->next_in = const_cast<Bytef*>(in.data());
  std::size_t left = in.size();
  s->avail_in = 0;
  uint8_t chunk[kChunk];
  for (;;) {
    if (s->avail_in == 0 && left > 0) {
      const std::size_t piece = std::min<std::size_t>(left, std::numeric_limits<uInt>::max());
      s->next_in = const_cast<Bytef*>(in.data() + (in.size() - left));
      s->avail_in = static_cast<uInt>(piece);
      left -= piece;
    }
    if (out.size() >= cap) return InflateStatus::too_big;
    const std::size_t room = std::min(kChunk, cap - out.size());
    s->next_out = chunk;
    s->avail_out = static_cast<uInt>(room);
    const int rc = ::inflate(s, Z_SYNC_FLUSH);
    const std::size_t produced = room - s->avail_out;
    if (produced > 0) append_capped(out, chunk, produced, cap);
    if (out.size() > limit) return InflateStatus::too_big;
    switch (rc) {
      case Z_OK:
        break;
      case Z_STREAM_END:
        // §7.2.3.4: a sender may end with a BFINAL block (then one 0x00 octet so the appended
        // tail still parses). What follows starts a new DEFLATE stream; the window is lost,
        // which such a sender (a fresh compressor per message) does not rely on.
        if (inflateReset(s) != Z_OK) return InflateStatus::corrupt;
        // Nothing after the final block: the sender left out that 0x00 octet (zlib's Z_FINISH
        // output), so the appended tail must not be inflated either (finish_message).
        restarted_ = s->avail_in == 0 && left == 0;
        if (restarted_) return InflateStatus::ok;
        break;
      case Z_BUF_ERROR:
        // No progress was possible although we gave it room: it needs input we do not have.
        return s->avail_in == 0 && left == 0 ? InflateStatus::ok : InflateStatus::corrupt;
      case Z_MEM_ERROR:
        return InflateStatus::no_memory;
      default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
        return InflateStatus::corrupt;
    }
    // Done when the input is used up and zlib stopped for lack of it, not for lack of room.
    if (s->avail_in == 0 && left == 0 && s->avail_out != 0) return InflateStatus::ok;
  }
}

InflateStatus PerMessageDeflate::inflate(std::span<const uint8_t> payload,
                                         std::vector<uint8_t>& out, std::size_t limit) {
  in_message_ = true;
  if (payload.empty()) return InflateStatus::ok;
  z_stream* s = inflater();
  if (s == nullptr) return InflateStatus::no_memory;
  fed_ = true;
  const InflateStatus st = run_inflate(s, payload, out, limit);
  // A failed message is over: the stream is in an error state (or mid-bomb) and is dropped.
  if (st != InflateStatus::ok) abort_message();
  return st;
}

InflateStatus PerMessageDeflate::finish_message(std::vector<uint8_t>& out, std::size_t limit) {
  InflateStatus st = InflateStatus::ok;
  // An empty compressed payload is an empty message: the tail alone is not DEFLATE data (it is
  // the second half of an empty stored block), so it is only appended after real payload.
  if (fed_ && !restarted_) {
    z_stream* s = inflater();
    if (s == nullptr) {
      st = InflateStatus::no_memory;
    } else {
      st = run_inflate(s, kTail, out, limit);
      // §7.2.2: with the tail appended, a conforming payload ends exactly after an empty stored
      // block, i.e. between blocks (zlib reports that as bit 128 of data_type). Anything else is
      // truncated data that would desynchronise a kept context.
      if (st == InflateStatus::ok && (s->data_type & 128) == 0) st = InflateStatus::corrupt;
    }
  }
  in_message_ = false;
  fed_ = false;
  restarted_ = false;
  // §7.1.1: the peer resets its compressor, so the next message needs no history: give the
  // stream back to the thread's pool. After a failure a kept context is worthless too.
  if (peer_reset_ || st != InflateStatus::ok) release_inflater();
  return st;
}

void PerMessageDeflate::abort_message() {
  if (!in_message_) return;
  in_message_ = false;
  fed_ = false;
  restarted_ = false;
  // A kept context is now out of step with the peer; the connection is failing anyway.
  release_inflater();
}

ZlibStreamCounts live_zlib_streams() { return {g_deflaters.load(), g_inflaters.load()}; }

}  // namespace tether::extensions
