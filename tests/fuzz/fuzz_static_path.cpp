// libFuzzer target: the HTTP static file resolver (src/server/static_files.cpp,
// `tether serve --static DIR`) on arbitrary request targets, against a small real tree made once
// in LLVMFuzzerInitialize (files, a directory without index.html, a FIFO, a name with a space,
// symlinks pointing inside and outside the root, a dangling one, and secret files next to it).
//
// Input layout:
//   byte 0  options: bits 0-1 the method (GET, HEAD, POST, "get"); bit 2: the input holds a
//           header value after the first '\n', sent as If-None-Match (bit 3 clear) or
//           If-Modified-Since (bit 3 set)
//   rest    the request target (origin or absolute form, percent-encoded or not)
//
// Invariants (a violation traps, which libFuzzer reports as a crash):
//  - a resolved path is canonical (absolute, no "." or ".." component, no NUL, no "//"), lies
//    component-wise under the canonical root and is one of the regular files under it;
//  - a refusal is 400, 403 or 404 with a reason; a decoded ".." segment is never resolved;
//  - the root given through a symlink to it resolves every target the same way;
//  - serve_static answers with a well-formed status line, the resolver's status for GET/HEAD,
//    and never with a byte of a file outside the root;
//  - a date parse_http_date accepts prints (http_date) to a date that parses to the same time.
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include "fuzz_check.hpp"
#include "protocol/http.hpp"
#include "server/static_files.hpp"

namespace {

namespace fs = std::filesystem;
using tether::detail::http_date;
using tether::detail::parse_http_date;
using tether::detail::resolve_static_path;
using tether::detail::serve_static;

constexpr uint8_t kOptMethodMask = 0x03;
constexpr uint8_t kOptHeader = 0x04;
constexpr uint8_t kOptModifiedSince = 0x08;

// Only files outside the root hold this; no response may carry it.
constexpr std::string_view kSecret = "TOP-SECRET-a81f3c";
constexpr std::time_t kNow = 1'700'000'000;  // the Date header's value

struct Tree {
  fs::path scratch;  // the temporary directory holding everything
  fs::path root;     // canonical root
  fs::path root_link;
  std::set<std::string> served;  // canonical regular files under root
};
Tree* tree = nullptr;

void write_file(const fs::path& p, std::string_view content) {
  std::ofstream(p, std::ios::binary) << content;
}

void remove_tree() {
  if (tree == nullptr) return;
  std::error_code ec;
  fs::remove_all(tree->scratch, ec);
}

void make_tree() {
  std::string tmpl = (fs::temp_directory_path() / "tether-fuzz-static.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("fuzz_static_path: mkdtemp");
    std::abort();
  }
  tree = new Tree;
  tree->scratch = fs::canonical(tmpl);
  const fs::path& s = tree->scratch;
  fs::create_directories(s / "root" / "sub" / "deeper");
  fs::create_directories(s / "outside");
  fs::create_directories(s / "rootx");  // shares a prefix with "root": string prefix checks fail
  write_file(s / "outside" / "secret.txt", kSecret);
  write_file(s / "outside" / "index.html", kSecret);
  write_file(s / "rootx" / "index.html", kSecret);
  write_file(s / "secret.txt", kSecret);

  const fs::path r = s / "root";
  write_file(r / "index.html", "<h1>index</h1>\n");
  write_file(r / "a.txt", "a\n");
  write_file(r / "space name.txt", "space\n");
  write_file(r / "100%.txt", "percent\n");
  write_file(r / "sub" / "index.html", "<h1>sub</h1>\n");
  write_file(r / "sub" / "b.js", "export {};\n");
  write_file(r / "sub" / "deeper" / "c.css", "body {}\n");  // deeper/ has no index.html
  fs::create_symlink("a.txt", r / "link_in");
  fs::create_directory_symlink("sub", r / "dirlink_in");
  fs::create_symlink("../outside/secret.txt", r / "link_out");
  fs::create_symlink(s / "secret.txt", r / "link_out_abs");
  fs::create_directory_symlink("../outside", r / "dirlink_out");
  fs::create_directory_symlink("../rootx", r / "dirlink_rootx");
  fs::create_symlink("no-such-file", r / "dangling");
  if (::mkfifo((r / "fifo").c_str(), 0600) != 0) std::perror("fuzz_static_path: mkfifo");
  fs::create_directory_symlink(r, s / "root_link");

  tree->root = fs::canonical(r);
  tree->root_link = s / "root_link";
  for (const auto& e : fs::recursive_directory_iterator(tree->root))
    if (e.is_regular_file() && !e.is_symlink()) tree->served.insert(e.path().string());
  std::atexit(remove_tree);
}

bool under_root(const fs::path& p) {
  auto it = p.begin();
  for (const auto& part : tree->root) {
    if (it == p.end() || *it != part) return false;
    ++it;
  }
  return true;
}

// The decoded path has a ".." segment (the resolver must refuse it, whatever else it holds).
// Mirrors only what RFC 9112 §3.2 fixes: the path of an absolute-form target starts at the first
// '/' after "://"; the query and fragment are not part of it.
bool has_dotdot_segment(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (!target.starts_with('/')) {
    const auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return false;
    const auto path_start = target.find('/', scheme_end + 3);
    if (path_start == std::string_view::npos) return false;
    target = target.substr(path_start);
  }
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  std::string segment;
  for (std::size_t i = 0; i <= target.size(); ++i) {
    if (i == target.size() || target[i] == '/') {
      if (segment == "..") return true;
      segment.clear();
      continue;
    }
    char c = target[i];
    if (c == '%' && i + 2 < target.size() && hex(target[i + 1]) && hex(target[i + 2])) {
      c = static_cast<char>(std::stoi(std::string(target.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    }
    segment.push_back(c);
  }
  return false;
}

void check_resolved(const fs::path& p) {
  const std::string s = p.string();
  FUZZ_CHECK(p.is_absolute());
  FUZZ_CHECK(s.find('\0') == std::string::npos);
  FUZZ_CHECK(s.find("//") == std::string::npos);
  for (const auto& part : p) FUZZ_CHECK(part != ".." && part != ".");
  FUZZ_CHECK(under_root(p));
  FUZZ_CHECK(tree->served.count(s) == 1);
}

void check_date(std::string_view value) {
  const auto t = parse_http_date(value);
  if (!t) return;
  // 0001..9999: http_date prints a four-digit year, which is all the parser reads.
  if (*t < -62'135'596'800 || *t > 253'402'300'799) return;
  const auto again = parse_http_date(http_date(*t));
  FUZZ_CHECK(again && *again == *t);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  make_tree();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (tree == nullptr) make_tree();
  const uint8_t options = data[0];
  std::string_view target(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view header;
  if (options & kOptHeader) {
    const auto nl = target.find('\n');
    if (nl != std::string_view::npos) {
      header = target.substr(nl + 1);
      target = target.substr(0, nl);
    }
  }

  std::string why;
  int status = 0;
  const auto resolved = resolve_static_path(tree->root, target, why, status);
  if (resolved) {
    check_resolved(*resolved);
    FUZZ_CHECK(!has_dotdot_segment(target));
  } else {
    FUZZ_CHECK(status == 400 || status == 403 || status == 404);
    FUZZ_CHECK(!why.empty());
  }
  if (has_dotdot_segment(target)) FUZZ_CHECK(!resolved && (status == 400 || status == 403));

  // The same root named through a symlink (and with a trailing "/."): the same answer.
  std::string why2;
  int status2 = 0;
  const auto via_link = resolve_static_path(tree->root_link / ".", target, why2, status2);
  FUZZ_CHECK(via_link.has_value() == resolved.has_value());
  if (resolved)
    FUZZ_CHECK(*via_link == *resolved);
  else
    FUZZ_CHECK(status2 == status);

  tether::protocol::HttpHead request;
  static constexpr const char* kMethods[] = {"GET", "HEAD", "POST", "get"};
  request.method = kMethods[options & kOptMethodMask];
  request.target = std::string(target);
  if (!header.empty()) {
    request.headers.emplace_back(
        options & kOptModifiedSince ? "If-Modified-Since" : "If-None-Match", std::string(header));
    check_date(header);
  }
  const std::string response = serve_static(tree->root, request, kNow);
  FUZZ_CHECK(response.starts_with("HTTP/1.1 ") && response.size() >= 12);
  const int code = std::atoi(response.substr(9, 3).c_str());
  FUZZ_CHECK(code == 200 || code == 304 || code == 400 || code == 403 || code == 404 ||
             code == 405 || code == 500);
  FUZZ_CHECK(response.find("\r\n\r\n") != std::string::npos);
  FUZZ_CHECK(response.find(kSecret) == std::string::npos);
  const bool get_or_head = request.method == "GET" || request.method == "HEAD";
  if (!get_or_head) FUZZ_CHECK(code == 405);
  if (get_or_head && !resolved) FUZZ_CHECK(code == status);
  if (get_or_head && resolved) FUZZ_CHECK(code == 200 || code == 304);
  return 0;
}
