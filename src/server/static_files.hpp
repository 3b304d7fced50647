// Static files for plain HTTP requests on the WebSocket port (`tether serve --static DIR`).
//
// Request target -> file is decided by resolve_static_path(), which touches the file system only
// to canonicalise; serve_static() builds the whole response in memory because a connection that
// is not a WebSocket writes one buffer and closes (Connection: close).
//
// Target decisions (RFC 3986 §2.1 percent-encoding, RFC 9112 §3.2 request-target forms):
//   400  not origin- or absolute-form, a malformed escape ("%zz", "%2"), a NUL (raw or "%00");
//   403  a ".." segment, raw or encoded ("%2e%2e"), anywhere in the path (even "/a/../b", which
//        stays inside: nothing legitimate needs it); an encoded '/' ("%2f"), which would turn
//        one segment into two behind the segment check; a canonical path (symlinks resolved)
//        outside the canonical root: a symlink inside DIR pointing out of it is refused, one
//        pointing to a file inside DIR is served;
//   404  no such file (a dangling symlink included), not a regular file (FIFOs, devices),
//        a directory without index.html (no listings), a file named with a trailing '/'.
// "/" and directories map to index.html; empty and "." segments are skipped ("//a//b" is a/b).
// The query and fragment are ignored.
//
// Limits: files over kStaticFileMax are answered 500 instead of being loaded (memory per
// connection stays bounded, like send_buffer_max). Files are read synchronously on the loop
// thread: meant for a page and its assets, not for bulk downloads.
#pragma once
#include <cstddef>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/http.hpp"

namespace tether::detail {

// 16 MiB, the same bound as ServerOptions::send_buffer_max: one response never costs more.
inline constexpr std::size_t kStaticFileMax = 16u << 20;

// The file to serve for `target` under `root`, canonical; nullopt with `why` (for logs and tests)
// and `status` (400, 403 or 404, see above) otherwise.
std::optional<std::filesystem::path> resolve_static_path(const std::filesystem::path& root,
                                                         std::string_view target, std::string& why,
                                                         int& status);
std::optional<std::filesystem::path> resolve_static_path(const std::filesystem::path& root,
                                                         std::string_view target, std::string& why);

// The complete response to a non-upgrade request: GET and HEAD (RFC 9110 §9.3.1-2; HEAD gets the
// same head, no body), others 405 with "Allow: GET, HEAD". A 200 carries Content-Type by
// extension, ETag (size and mtime in ns), Last-Modified, Cache-Control: no-cache (always
// revalidate) and X-Content-Type-Options: nosniff; If-None-Match, else If-Modified-Since,
// answers 304 (RFC 9110 §13.1.2, §13.1.3). `now` is the Date header's value.
std::string serve_static(const std::filesystem::path& root, const protocol::HttpHead& request,
                         std::time_t now);

// "text/html; charset=utf-8", ..., "application/octet-stream" for unknown extensions.
std::string_view content_type_for(const std::filesystem::path& file);
// RFC 9110 §5.6.7 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::time_t t);
// Any of the three HTTP-date formats (IMF-fixdate, RFC 850, asctime); nullopt when invalid.
std::optional<std::time_t> parse_http_date(std::string_view text);

}  // namespace tether::detail
