#include "resume/frame.hpp"

#include <charconv>
#include <cstring>
#include <vector>

#include "resume/json.hpp"

namespace tether::resume {

namespace {

std::size_t put_decimal(uint64_t v, uint8_t* out) {
  char* p = reinterpret_cast<char*>(out);
  return static_cast<std::size_t>(std::to_chars(p, p + 20, v).ptr - p);
}

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

// Why `digits` is not a canonical u64 decimal.
std::string number_problem(std::string_view digits) {
  if (digits.empty()) return "missing";
  if (digits.size() > 1 && digits[0] == '0') return "has a leading zero";
  return "is out of range";
}

std::string_view as_view(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

Error malformed(std::string& why, std::string message) {
  why = std::move(message);
  return Error::malformed_frame;
}

// Reads a run of digits at `pos`; returns the digits and advances `pos` past them.
std::string_view digits_at(std::string_view s, std::size_t& pos) {
  std::size_t start = pos;
  while (pos < s.size() && is_digit(static_cast<uint8_t>(s[pos]))) ++pos;
  return s.substr(start, pos - start);
}

Error parse_data(std::string_view s, std::span<const uint8_t> bytes, Frame& out, std::string& why) {
  std::size_t pos = 1;
  std::string_view seq = digits_at(s, pos);
  if (!detail::parse_decimal(seq, out.seq))
    return malformed(why, "data frame: sequence number " + number_problem(seq));
  if (pos >= s.size() || s[pos] != ',')
    return malformed(why, "data frame: expected ',' after the sequence number");
  ++pos;
  std::string_view ack = digits_at(s, pos);
  if (!detail::parse_decimal(ack, out.ack))
    return malformed(why, "data frame: ack " + number_problem(ack));
  if (pos >= s.size() || s[pos] != ';')
    return malformed(why, "data frame: expected ';' after the ack");
  if (out.seq == 0) return malformed(why, "data frame: sequence number 0 (numbering starts at 1)");
  out.kind = FrameKind::data;
  out.payload = bytes.subspan(pos + 1);
  return Error::none;
}

Error parse_ack(std::string_view s, Frame& out, std::string& why) {
  std::size_t pos = 1;
  std::string_view ack = digits_at(s, pos);
  if (!detail::parse_decimal(ack, out.ack))
    return malformed(why, "ack frame: ack " + number_problem(ack));
  if (pos != s.size()) return malformed(why, "ack frame: trailing bytes after the ack");
  out.kind = FrameKind::ack;
  return Error::none;
}

Error parse_token(std::string_view s, std::span<const uint8_t> bytes, Frame& out,
                  std::string& why) {
  const char* name = s[0] == 'P' ? "ping frame" : "pong frame";
  std::string_view token = s.substr(1);
  if (token.empty()) return malformed(why, std::string(name) + ": empty token");
  if (token.size() > max_ping_token)
    return malformed(why, std::string(name) + ": token longer than " +
                              std::to_string(max_ping_token) + " bytes");
  for (char c : token) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E)
      return malformed(why, std::string(name) + ": token byte " + std::to_string(u) +
                                " is not printable ASCII without spaces");
  }
  out.kind = s[0] == 'P' ? FrameKind::ping : FrameKind::pong;
  out.payload = bytes.subspan(1);
  return Error::none;
}

// Shared by hello and welcome: type, size, leading letter, the object, "v".
Error parse_object(MessageType type, std::span<const uint8_t> bytes, char letter,
                   std::string_view name, std::vector<detail::JsonMember>& members,
                   std::string& why) {
  std::string_view s = as_view(bytes);
  if (s.empty() || s[0] != letter)
    return malformed(why, std::string(name) + ": does not start with '" + letter + "'");
  if (type != MessageType::text)
    return malformed(why, std::string(name) + ": must be a text message");
  if (s.size() > max_handshake_frame)
    return malformed(
        why, std::string(name) + ": longer than " + std::to_string(max_handshake_frame) + " bytes");
  std::string json_why;
  if (!detail::parse_flat_object(s.substr(1), 1, members, json_why))
    return malformed(why, std::string(name) + ": " + json_why);
  const detail::JsonMember* v = nullptr;
  for (const auto& m : members)
    if (m.key == "v") v = &m;
  if (!v) return malformed(why, std::string(name) + ": missing \"v\"");
  if (v->value.kind != detail::JsonValue::Kind::number)
    return malformed(why, std::string(name) + ": \"v\" is not a number");
  if (v->value.number != 1) {
    why = std::string(name) + ": version " + std::to_string(v->value.number) +
          " (only 1 is supported)";
    return Error::unsupported_version;
  }
  return Error::none;
}

const detail::JsonValue* member(const std::vector<detail::JsonMember>& members,
                                std::string_view key) {
  for (const auto& m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

// Finds `key` with the given kind, or says what is wrong with it.
const detail::JsonValue* field(const std::vector<detail::JsonMember>& members,
                               std::string_view name, std::string_view key,
                               detail::JsonValue::Kind kind, std::string& problem) {
  const detail::JsonValue* v = member(members, key);
  static constexpr const char* kinds[] = {"a string", "a number", "a boolean"};
  if (!v)
    problem = std::string(name) + ": missing \"" + std::string(key) + "\"";
  else if (v->kind != kind)
    problem = std::string(name) + ": \"" + std::string(key) + "\" is not " +
              kinds[static_cast<int>(kind)];
  else
    return v;
  return nullptr;
}

}  // namespace

std::size_t encode_data_header(uint64_t seq, uint64_t ack, uint8_t* out) {
  std::size_t n = 0;
  out[n++] = 'M';
  n += put_decimal(seq, out + n);
  out[n++] = ',';
  n += put_decimal(ack, out + n);
  out[n++] = ';';
  return n;
}

std::size_t encode_ack(uint64_t ack, uint8_t* out) {
  out[0] = 'A';
  return 1 + put_decimal(ack, out + 1);
}

std::string encode_ping(std::string_view token) {
  std::string s = "P";
  s += token;
  return s;
}

std::string encode_pong(std::string_view token) {
  std::string s = "Q";
  s += token;
  return s;
}

std::string encode_hello(const Hello& hello) {
  std::string s = "H{\"v\":1,\"session\":\"";
  s += hello.session.view();
  s += "\",\"last\":";
  s += std::to_string(hello.last);
  s += '}';
  return s;
}

std::string encode_welcome(const Welcome& welcome) {
  std::string s = "W{\"v\":1,\"session\":\"";
  s += welcome.session.view();
  s += "\",\"resumed\":";
  s += welcome.resumed ? "true" : "false";
  s += ",\"last\":";
  s += std::to_string(welcome.last);
  s += ",\"reason\":";
  detail::append_json_string(s, welcome.reason);
  s += '}';
  return s;
}

Error parse_frame(MessageType type, std::span<const uint8_t> bytes, Frame& out, std::string& why) {
  std::string_view s = as_view(bytes);
  if (s.empty()) return malformed(why, "empty message");
  char letter = s[0];
  if (letter == 'M') return parse_data(s, bytes, out, why);
  const char* name = letter == 'A'   ? "ack frame"
                     : letter == 'H' ? "hello"
                     : letter == 'W' ? "welcome"
                     : letter == 'P' ? "ping frame"
                                     : "pong frame";
  if (letter != 'A' && letter != 'H' && letter != 'W' && letter != 'P' && letter != 'Q') {
    auto u = static_cast<unsigned char>(letter);
    return malformed(why, u >= 0x21 && u < 0x7F ? std::string("unknown frame type '") + letter + "'"
                                                : "unknown frame type byte " + std::to_string(u));
  }
  if (type != MessageType::text)
    return malformed(why, std::string(name) + ": must be a text message");
  if (letter == 'A') return parse_ack(s, out, why);
  if (letter == 'P' || letter == 'Q') return parse_token(s, bytes, out, why);
  out.kind = letter == 'H' ? FrameKind::hello : FrameKind::welcome;
  return Error::none;
}

Error parse_hello(MessageType type, std::span<const uint8_t> bytes, Hello& out, std::string& why) {
  std::vector<detail::JsonMember> members;
  if (Error e = parse_object(type, bytes, 'H', "hello", members, why); e != Error::none) return e;
  using Kind = detail::JsonValue::Kind;
  std::string problem;
  const auto* session = field(members, "hello", "session", Kind::string, problem);
  const auto* last = session ? field(members, "hello", "last", Kind::number, problem) : nullptr;
  if (!last) return malformed(why, problem);
  out = Hello{};
  if (!session->string.empty()) {
    auto id = SessionId::parse(session->string);
    if (!id)
      return malformed(why, "hello: \"session\" is neither \"\" nor 32 lowercase hex digits");
    out.session = *id;
  } else if (last->number != 0) {
    return malformed(why, "hello: \"last\" must be 0 without a session");
  }
  out.last = last->number;
  return Error::none;
}

Error parse_welcome(MessageType type, std::span<const uint8_t> bytes, Welcome& out,
                    std::string& why) {
  std::vector<detail::JsonMember> members;
  if (Error e = parse_object(type, bytes, 'W', "welcome", members, why); e != Error::none) return e;
  using Kind = detail::JsonValue::Kind;
  std::string problem;
  const auto* session = field(members, "welcome", "session", Kind::string, problem);
  const auto* resumed =
      session ? field(members, "welcome", "resumed", Kind::boolean, problem) : nullptr;
  const auto* last = resumed ? field(members, "welcome", "last", Kind::number, problem) : nullptr;
  if (!last) return malformed(why, problem);
  const auto* reason = member(members, "reason");  // optional
  if (reason && reason->kind != Kind::string)
    return malformed(why, "welcome: \"reason\" is not a string");
  auto id = SessionId::parse(session->string);
  if (!id) return malformed(why, "welcome: \"session\" is not 32 lowercase hex digits");
  if (!resumed->boolean && last->number != 0)
    return malformed(why, "welcome: \"last\" must be 0 when not resumed");
  out.session = *id;
  out.resumed = resumed->boolean;
  out.last = last->number;
  out.reason = reason ? reason->string : std::string();
  return Error::none;
}

}  // namespace tether::resume
