#include "server/static_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "protocol/handshake.hpp"

namespace tether::detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Head and body. `length` is what a GET would carry (RFC 9110 §8.6: a HEAD answer states the
// GET's length); nullopt omits Content-Length (304 has no content, §15.4.5).
std::string respond(int status, std::string_view headers, std::optional<std::size_t> length,
                    std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(protocol::http_reason(status));
  if (length) out.append("\r\nContent-Length: " + std::to_string(*length));
  out.append("\r\nConnection: close\r\n").append(headers).append("\r\n").append(body);
  return out;
}

// RFC 9110 §13.1.2: If-None-Match compares weakly, "*" matches any existing file; when it is
// present, If-Modified-Since is ignored (§13.1.3), as is an invalid date.
bool not_modified(const protocol::HttpHead& request, std::string_view etag, std::time_t modified) {
  if (request.get("If-None-Match")) {
    for (std::string_view tag : request.list("If-None-Match")) {
      if (tag.starts_with("W/")) tag.remove_prefix(2);
      if (tag == "*" || tag == etag) return true;
    }
    return false;
  }
  if (auto since = request.get("If-Modified-Since"))
    if (auto t = parse_http_date(*since)) return modified <= *t;
  return false;
}

}  // namespace

std::optional<fs::path> resolve_static_path(const fs::path& root, std::string_view target,
                                            std::string& why, int& status) {
  auto refuse = [&](int code, std::string text) -> std::optional<fs::path> {
    status = code;
    why = std::move(text);
    return std::nullopt;
  };
  target = target.substr(0, target.find_first_of("?#"));
  if (!target.starts_with('/')) {
    // RFC 9112 §3.2.2: servers must accept the absolute form too; only its path matters here.
    const auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return refuse(400, "request target is not a path");
    const auto path_start = target.find('/', scheme_end + 3);
    target = path_start == std::string_view::npos ? "/" : target.substr(path_start);
  }
  // Decode and split in one pass, so that the ".." check sees decoded segments.
  fs::path relative;
  std::string segment;
  auto end_segment = [&] {
    if (segment == "..") return false;
    if (!segment.empty() && segment != ".") relative /= segment;
    segment.clear();
    return true;
  };
  for (std::size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c == '/') {
      if (!end_segment()) return refuse(403, "\"..\" segment in the path");
      continue;
    }
    if (c == '%') {
      const int hi = i + 2 < target.size() ? hex_value(target[i + 1]) : -1;
      const int lo = i + 2 < target.size() ? hex_value(target[i + 2]) : -1;
      if (hi < 0 || lo < 0) return refuse(400, "malformed percent-encoding");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
      if (c == '/') return refuse(403, "encoded '/' in the path");
    }
    if (c == '\0') return refuse(400, "NUL in the path");
    segment.push_back(c);
  }
  if (!end_segment()) return refuse(403, "\"..\" segment in the path");

  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return refuse(404, "static root " + root.string() + ": " + ec.message());
  fs::path candidate = base / relative;
  if (fs::is_directory(candidate, ec))
    candidate /= "index.html";
  else if (target.ends_with('/'))  // "file.txt/" names a directory (POSIX: ENOTDIR)
    return refuse(404, "not a directory: " + candidate.string());
  // canonical() resolves every symlink and requires the file to exist.
  const fs::path real = fs::canonical(candidate, ec);
  if (ec) return refuse(404, "not found: " + candidate.string());
  if (std::mismatch(base.begin(), base.end(), real.begin(), real.end()).first != base.end())
    return refuse(403, "outside the static root: " + real.string());
  if (!fs::is_regular_file(real, ec)) return refuse(404, "not a regular file: " + real.string());
  return real;
}

std::optional<fs::path> resolve_static_path(const fs::path& root, std::string_view target,
                                            std::string& why) {
  int status = 0;
  return resolve_static_path(root, target, why, status);
}

std::string serve_static(const fs::path& root, const protocol::HttpHead& request, std::time_t now) {
  const bool head = request.method == "HEAD";
  const std::string common = "Date: " + http_date(now) + "\r\nX-Content-Type-Options: nosniff\r\n";
  auto error = [&](int status, std::string_view extra, std::string_view text) {
    const std::string headers =
        common + "Content-Type: text/plain; charset=utf-8\r\n" + std::string(extra);
    return respond(status, headers, text.size(), head ? "" : text);
  };
  if (request.method != "GET" && !head)
    return error(405, "Allow: GET, HEAD\r\n", "only GET and HEAD are served here\n");

  std::string why;
  int status = 0;
  const auto file = resolve_static_path(root, request.target, why, status);
  if (!file)
    return error(status, "",
                 status == 403   ? "forbidden\n"
                 : status == 404 ? "not found\n"
                                 : "bad request target\n");
  // O_NOFOLLOW: the canonical path has no symlinks; one swapped in since is not followed.
  const Fd fd{::open(file->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  struct stat st {};
  if (fd.fd < 0 || ::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return error(404, "", "not found\n");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > kStaticFileMax) return error(500, "", "file too large to serve\n");

  const uint64_t mtime_ns = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000u +
                            static_cast<uint64_t>(st.st_mtim.tv_nsec);
  char etag[48];
  std::snprintf(etag, sizeof etag, "\"%zx-%llx\"", size, static_cast<unsigned long long>(mtime_ns));
  // RFC 9110 §8.8.2.1: Last-Modified is never later than Date.
  const std::time_t modified = std::min<std::time_t>(st.st_mtim.tv_sec, now);
  std::string headers = common + "ETag: " + etag + "\r\nLast-Modified: " + http_date(modified) +
                        "\r\nCache-Control: no-cache\r\n";
  if (not_modified(request, etag, modified)) return respond(304, headers, std::nullopt, "");
  headers.append("Content-Type: ").append(content_type_for(*file)).append("\r\n");
  if (head) return respond(200, headers, size, "");

  std::string body(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd.fd, body.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(500, "", "read error\n");
    if (n == 0) break;  // the file shrank while being read
    got += static_cast<std::size_t>(n);
  }
  body.resize(got);
  return respond(200, headers, body.size(), body);
}

std::string_view content_type_for(const fs::path& file) {
  // text/javascript: RFC 9239. application/wasm is required by WebAssembly.instantiateStreaming.
  // clang-format off
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"}, {".txt", "text/plain; charset=utf-8"},
      {".json", "application/json"}, {".map", "application/json"}, {".svg", "image/svg+xml"},
      {".png", "image/png"}, {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
      {".gif", "image/gif"}, {".webp", "image/webp"}, {".ico", "image/x-icon"},
      {".wasm", "application/wasm"}, {".woff2", "font/woff2"}};
  // clang-format on
  const std::string ext = file.extension().string();
  for (const auto& [e, type] : kTypes)
    if (protocol::iequals(e, ext)) return type;
  return "application/octet-stream";
}

std::string http_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
  const std::string s(text);  // sscanf needs a terminated string
  char day[16] = {}, mon[4] = {};
  int mday = 0, year = 0, hour = 0, min = 0, sec = 0, used = -1;
  // All fields converted and the whole text consumed (%n, appended to every format).
  auto scan = [&](const char* format, auto... fields) {
    used = -1;
    return std::sscanf(s.c_str(), format, fields..., &used) == int{sizeof...(fields)} &&
           used == static_cast<int>(s.size());
  };
  // RFC 9110 §5.6.7: recipients accept IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
  // "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
  const bool imf =
      scan("%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", day, &mday, mon, &year, &hour, &min, &sec);
  const bool rfc850 = !imf && scan("%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", day, &mday, mon,
                                   &year, &hour, &min, &sec);
  if (rfc850) year += year < 70 ? 2000 : 1900;
  if (!imf && !rfc850 &&
      !scan("%3s %3s %2d %2d:%2d:%2d %4d%n", day, mon, &mday, &hour, &min, &sec, &year))
    return std::nullopt;
  const auto* month = std::find_if(std::begin(kMonths), std::end(kMonths),
                                   [&](const char* m) { return std::strcmp(m, mon) == 0; });
  if (month == std::end(kMonths) || mday < 1 || mday > 31 || hour < 0 || hour > 23 || min < 0 ||
      min > 59 || sec < 0 || sec > 60 || year < 1900)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = static_cast<int>(month - std::begin(kMonths));
  tm.tm_mday = mday;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return timegm(&tm);
}

}  // namespace tether::detail
