// Incremental HTTP/1.1 head parser (RFC 9112 §2-§5). Each line is parsed the moment its LF
// arrives, so every byte is examined once no matter how the input is split, and only the
// current partial line is buffered.
#include "protocol/http.hpp"

#include <cstring>

namespace tether::protocol {
namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 9110 §5.6.2: tchar.
bool is_tchar(char c) {
  if (is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// RFC 9110 §5.5: field values (and reason phrases) are VCHAR, obs-text, SP and HTAB.
// Every other control character, including DEL and NUL, is refused.
bool is_text(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u == 0x7f)) return false;
  }
  return true;
}

// RFC 9112 §3.2: request-target has no whitespace or controls.
bool is_target(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

std::optional<std::string_view> HttpHead::get(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return std::string_view(v);
  return std::nullopt;
}

std::vector<std::string_view> HttpHead::list(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : headers) {
    if (!iequals(n, name)) continue;
    std::string_view value = v;
    // A comma inside a quoted-string (RFC 9110 §5.6.4) is data, not a list separator; this
    // matters for Sec-WebSocket-Extensions parameters such as a="x,y".
    bool quoted = false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= value.size(); ++i) {
      if (i == value.size() || (!quoted && value[i] == ',')) {
        // RFC 9110 §5.6.1: recipients accept and skip empty list elements.
        auto element = trim_ows(value.substr(start, i - start));
        if (!element.empty()) out.push_back(element);
        start = i + 1;
      } else if (value[i] == '"') {
        quoted = !quoted;
      } else if (quoted && value[i] == '\\' && i + 1 < value.size()) {
        ++i;  // quoted-pair: the escaped octet cannot end the string or split the list
      }
    }
  }
  return out;
}

bool HttpHead::has_token(std::string_view name, std::string_view token) const {
  for (auto element : list(name))
    if (iequals(element, token)) return true;
  return false;
}

HttpHeadParser::HttpHeadParser(Kind kind, HttpLimits limits) : kind_(kind), limits_(limits) {}

void HttpHeadParser::reset() {
  buf_.clear();
  head_bytes_ = 0;
  start_line_done_ = false;
  head_ = HttpHead{};
  error_status_ = 0;
  error_text_.clear();
  done_ = false;
}

bool HttpHeadParser::fail(int status, std::string text) {
  error_status_ = status;
  error_text_ = std::move(text);
  buf_.clear();
  buf_.shrink_to_fit();  // a rejected peer should not keep its bytes alive
  return false;
}

HttpHeadParser::Status HttpHeadParser::feed(std::span<const uint8_t> in, std::size_t& consumed) {
  consumed = 0;
  if (done_) return Status::done;
  if (error_status_ != 0) return Status::error;

  const char* data = reinterpret_cast<const char*>(in.data());
  std::size_t pos = 0;
  while (pos < in.size()) {
    // Only the new bytes are searched: earlier bytes already belong to complete, parsed lines
    // or to buf_, which is known to hold no LF.
    const void* lf = std::memchr(data + pos, '\n', in.size() - pos);
    std::size_t end =
        lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - data) + 1 : in.size();
    std::size_t take = end - pos;

    // Check before buffering so an endless head (slowloris, oversized line) is refused as
    // soon as it crosses the limit and memory never exceeds max_head_bytes.
    if (head_bytes_ + take > limits_.max_head_bytes) {
      consumed = pos;
      fail(431, "message head exceeds " + std::to_string(limits_.max_head_bytes) + " bytes");
      return Status::error;
    }
    buf_.append(data + pos, take);
    head_bytes_ += take;
    pos = end;

    if (!start_line_done_) {
      // Length without the terminator; a trailing CR may still turn out to be part of CRLF.
      std::size_t len = buf_.size();
      if (lf) --len;
      if (len > 0 && buf_[len - 1] == '\r') --len;
      if (len > limits_.max_start_line) {
        consumed = pos;
        fail(431, "start line exceeds " + std::to_string(limits_.max_start_line) + " bytes");
        return Status::error;
      }
    }
    if (!lf) break;

    std::string_view line(buf_);
    line.remove_suffix(1);  // LF
    // RFC 9112 §2.2: CRLF is the terminator, but a bare LF is tolerated.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool ok = process_line(line);
    buf_.clear();
    if (!ok) {
      consumed = pos;
      return Status::error;
    }
    if (done_) {
      // Stop right after the blank line: what follows is already WebSocket data.
      consumed = pos;
      buf_.shrink_to_fit();
      return Status::done;
    }
  }
  consumed = pos;
  return Status::need_more;
}

bool HttpHeadParser::process_line(std::string_view line) {
  // RFC 9112 §2.2: a bare CR anywhere else is invalid (and a classic smuggling vector).
  if (line.find('\r') != std::string_view::npos) return fail(400, "bare CR in message head");

  if (!start_line_done_) {
    // RFC 9112 §2.2: ignore empty lines before the start line (robustness); they still count
    // towards max_head_bytes.
    if (line.empty()) return true;
    start_line_done_ = true;

    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return fail(400, "malformed start line");
    std::string_view first = line.substr(0, sp1);
    std::string_view rest = line.substr(sp1 + 1);

    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
    auto parse_version = [this](std::string_view v) {
      if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
          !is_digit(v[7]))
        return fail(400, "malformed HTTP version");
      head_.version_major = v[5] - '0';
      head_.version_minor = v[7] - '0';
      if (head_.version_major != 1) return fail(505, "HTTP version not supported");
      return true;
    };

    if (kind_ == Kind::request) {
      // request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
      auto sp2 = rest.find(' ');
      if (sp2 == std::string_view::npos) return fail(400, "malformed request line");
      std::string_view target = rest.substr(0, sp2);
      std::string_view version = rest.substr(sp2 + 1);
      if (!is_token(first)) return fail(400, "malformed request method");
      if (!is_target(target)) return fail(400, "malformed request target");
      if (!parse_version(version)) return false;
      head_.method.assign(first);
      head_.target.assign(target);
      return true;
    }

    // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4); the SP
    // before an empty reason is often omitted in practice, so accept that too.
    if (!parse_version(first)) return false;
    if (rest.size() < 3 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2]) ||
        rest[0] == '0' || (rest.size() > 3 && rest[3] != ' '))
      return fail(400, "malformed status code");
    std::string_view reason = rest.size() > 3 ? rest.substr(4) : std::string_view{};
    if (!is_text(reason)) return fail(400, "malformed reason phrase");
    head_.status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
    head_.reason.assign(reason);
    return true;
  }

  if (line.empty()) {
    done_ = true;
    return true;
  }
  // RFC 9112 §5.2: obsolete line folding; a server must reject it (or unfold), we reject.
  if (is_ows(line.front())) return fail(400, "obsolete line folding");

  auto colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "header line without colon");
  std::string_view name = line.substr(0, colon);
  if (name.empty()) return fail(400, "empty header name");
  // RFC 9112 §5.1: no whitespace between name and colon (must be answered with 400).
  if (is_ows(name.back())) return fail(400, "whitespace before colon in header line");
  if (!is_token(name)) return fail(400, "invalid character in header name");
  std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_text(value)) return fail(400, "control character in header value");
  if (head_.headers.size() >= limits_.max_headers)
    return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields");
  head_.headers.emplace_back(std::string(name), std::string(value));
  return true;
}

}  // namespace tether::protocol
