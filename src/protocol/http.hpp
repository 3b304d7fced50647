// Incremental HTTP/1.1 message-head parser (RFC 9112), used by the opening handshake (RFC 6455 §4)
// in both roles and by plain HTTP GETs on the server port. Bytes in, a parsed head out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::protocol {

struct HttpLimits {
  // 8 KiB request line: generous for real URLs (nginx's default large buffer is 8 KiB).
  std::size_t max_start_line = 8192;
  // 16 KiB for the whole head: browsers send ~1-2 KiB; bounds memory per half-open handshake.
  std::size_t max_head_bytes = 16384;
  // 100 header fields: far beyond any real client, small enough to bound parsing work.
  std::size_t max_headers = 100;
};

struct HttpHead {
  // request
  std::string method;
  std::string target;
  // response
  int status = 0;
  std::string reason;
  // both
  int version_major = 1, version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names as received, values trimmed

  // First header with this name (ASCII case-insensitive), if any.
  std::optional<std::string_view> get(std::string_view name) const;
  // All values of this header joined the way RFC 9110 §5.3 allows (comma lists), split into
  // trimmed, non-empty comma-separated elements, across repeated header lines.
  std::vector<std::string_view> list(std::string_view name) const;
  // Does the comma list of `name` contain `token` (ASCII case-insensitive)?
  bool has_token(std::string_view name, std::string_view token) const;
};

class HttpHeadParser {
 public:
  enum class Kind { request, response };
  enum class Status {
    need_more,  // everything fed was consumed, head not complete yet
    done,       // head complete; bytes after it were NOT consumed
    error,      // malformed or too large; see error_status()
  };

  HttpHeadParser(Kind kind, HttpLimits limits = {});

  // Feeds bytes. `consumed` is set to how many bytes of `in` were used. On `done`, bytes past
  // the blank line are left for the caller (they are WebSocket frames).
  Status feed(std::span<const uint8_t> in, std::size_t& consumed);

  // After `error`: 400 (malformed), 431 (start line or head over the limits),
  // 505 (HTTP version other than 1.x), 501 (unknown transfer-encoding etc. if relevant).
  int error_status() const { return error_status_; }
  const std::string& error_text() const { return error_text_; }
  const HttpHead& head() const { return head_; }
  HttpHead& head() { return head_; }
  void reset();

 private:
  // Parses one complete line (terminator stripped); false after recording an error.
  bool process_line(std::string_view line);
  bool fail(int status, std::string text);

  Kind kind_;
  HttpLimits limits_;
  // Bytes of the current, still incomplete line. Complete lines are parsed as soon as their LF
  // arrives, so nothing is ever rescanned; bounded by max_head_bytes.
  std::string buf_;
  std::size_t head_bytes_ = 0;  // bytes of the head consumed so far, for the 431 limit
  bool start_line_done_ = false;
  HttpHead head_;
  int error_status_ = 0;
  std::string error_text_;
  bool done_ = false;
};

// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace tether::protocol
