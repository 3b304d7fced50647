// Static files: the path resolver on a real temporary tree (traversal, encodings, symlinks), the
// response builder without sockets, then end to end through a Server on a loopback port.
#include "server/static_files.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "tether/server.hpp"

namespace {

namespace fs = std::filesystem;
using tether::detail::content_type_for;
using tether::detail::http_date;
using tether::detail::parse_http_date;
using tether::detail::resolve_static_path;
using tether::detail::serve_static;

void write_file(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// base/root is served; base/outside is what an escape would reach. Removed afterwards.
class StaticTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tether_static_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base = tmpl;
    root = base / "root";
    write_file(root / "index.html", "<h1>home</h1>");
    write_file(root / "a.txt", "alpha");
    write_file(root / "space name.txt", "spaced");
    write_file(root / "sub/index.html", "<h1>sub</h1>");
    write_file(root / "sub/style.css", "body{}");
    write_file(root / "sub/deeper/app.js", "let x;");
    write_file(root / "double/slash", "ds");
    fs::create_directories(root / "empty");
    write_file(base / "outside/secret.txt", "secret");
    write_file(base / "outside/index.html", "<h1>outside</h1>");
    fs::create_symlink("a.txt", root / "link_in");
    fs::create_directory_symlink("sub", root / "link_sub");
    fs::create_symlink("../outside/secret.txt", root / "link_out");
    fs::create_directory_symlink("../outside", root / "dir_out");
    fs::create_symlink("../outside/nope", root / "dangling");
  }
  void TearDown() override {
    std::error_code ec;
    if (!base.empty()) fs::remove_all(base, ec);
  }
  fs::path real(const char* rel) { return fs::canonical(root / rel); }

  fs::path base, root;
};

struct Case {
  const char* target;
  int status;        // 200: resolved
  const char* file;  // expected file under root when 200
};

TEST_F(StaticTree, ResolverTable) {
  const Case cases[] = {
      {"/a.txt", 200, "a.txt"},
      {"/", 200, "index.html"},
      {"/sub", 200, "sub/index.html"},
      {"/sub/", 200, "sub/index.html"},
      {"/sub/style.css", 200, "sub/style.css"},
      {"/sub/deeper/app.js", 200, "sub/deeper/app.js"},
      {"/a.txt?x=1&y=/../../etc/passwd", 200, "a.txt"},
      {"/a.txt#frag", 200, "a.txt"},
      {"/?q", 200, "index.html"},
      {"/space%20name.txt", 200, "space name.txt"},
      {"/%61.txt", 200, "a.txt"},
      {"//double//slash", 200, "double/slash"},
      {"/./a.txt", 200, "a.txt"},
      {"http://example.com/a.txt", 200, "a.txt"},
      {"http://example.com", 200, "index.html"},
      {"/link_in", 200, "a.txt"},
      {"/link_sub/style.css", 200, "sub/style.css"},
      // not a path
      {"", 400, nullptr},
      {"*", 400, nullptr},
      {"a.txt", 400, nullptr},
      // missing
      {"/missing.txt", 404, nullptr},
      {"/empty/", 404, nullptr},
      {"/sub/deeper", 404, nullptr},
      {"/dangling", 404, nullptr},
      {"/a.txt/", 404, nullptr},
      // traversal, plain and encoded
      {"/..", 403, nullptr},
      {"/../etc/passwd", 403, nullptr},
      {"/../outside/secret.txt", 403, nullptr},
      {"/a/../../x", 403, nullptr},
      {"/sub/../a.txt", 403, nullptr},
      {"/%2e%2e/%2e%2e/etc/passwd", 403, nullptr},
      {"/%2E%2E", 403, nullptr},
      {"/.%2e/outside/secret.txt", 403, nullptr},
      {"/..%2f..%2fetc/passwd", 403, nullptr},
      {"/..%2F", 403, nullptr},
      {"/sub%2fstyle.css", 403, nullptr},
      // malformed
      {"/%00", 400, nullptr},
      {"/a.txt%00.html", 400, nullptr},
      {"/%zz", 400, nullptr},
      {"/%2", 400, nullptr},
      {"/abc%", 400, nullptr},
      {"/%g0", 400, nullptr},
      // symlinks leading out of the root
      {"/link_out", 403, nullptr},
      {"/dir_out/secret.txt", 403, nullptr},
      {"/dir_out/", 403, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    std::string why;
    int status = 0;
    auto got = resolve_static_path(root, c.target, why, status);
    if (c.status == 200) {
      ASSERT_TRUE(got.has_value()) << why;
      EXPECT_EQ(*got, real(c.file));
    } else {
      EXPECT_FALSE(got.has_value()) << *got;
      EXPECT_EQ(status, c.status) << why;
      EXPECT_FALSE(why.empty());
    }
  }
}

TEST_F(StaticTree, RootMayBeGivenThroughSymlinksOrDots) {
  fs::create_directory_symlink("root", base / "root_link");
  std::string why;
  for (const fs::path& r : {base / "root_link", root / ".", base / "outside/../root/"}) {
    SCOPED_TRACE(r.string());
    auto got = resolve_static_path(r, "/sub/style.css", why);
    ASSERT_TRUE(got.has_value()) << why;
    EXPECT_EQ(*got, real("sub/style.css"));
    EXPECT_FALSE(resolve_static_path(r, "/dir_out/secret.txt", why).has_value());
  }
  int status = 0;
  EXPECT_FALSE(resolve_static_path(base / "nope", "/a.txt", why, status).has_value());
  EXPECT_EQ(status, 404);
}

tether::protocol::HttpHead request(std::string method, std::string target,
                                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  tether::protocol::HttpHead h;
  h.method = std::move(method);
  h.target = std::move(target);
  h.headers = std::move(headers);
  return h;
}

std::string header(const std::string& response, const std::string& name) {
  auto at = response.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  at += name.size() + 4;
  return response.substr(at, response.find("\r\n", at) - at);
}

std::string body_of(const std::string& response) {
  auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

constexpr std::time_t kNow = 2'000'000'000;  // 2033: after every file's mtime

TEST_F(StaticTree, ServeGetCarriesTypeValidatorsAndBody) {
  const std::string r = serve_static(root, request("GET", "/a.txt"), kNow);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_EQ(header(r, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(header(r, "Content-Length"), "5");
  EXPECT_EQ(header(r, "Connection"), "close");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(r, "Date"), http_date(kNow));
  const std::string etag = header(r, "ETag");
  EXPECT_TRUE(etag.starts_with("\"5-") && etag.ends_with("\"")) << etag;
  const auto mtime = fs::last_write_time(root / "a.txt");
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::file_clock::to_sys(mtime).time_since_epoch());
  EXPECT_EQ(header(r, "Last-Modified"), http_date(static_cast<std::time_t>(secs.count())));
  EXPECT_EQ(body_of(r), "alpha");
}

TEST_F(StaticTree, ServeConditionalRequests) {
  const std::string first = serve_static(root, request("GET", "/a.txt"), kNow);
  const std::string etag = header(first, "ETag");
  const std::string modified = header(first, "Last-Modified");
  auto status_for = [&](std::vector<std::pair<std::string, std::string>> h) {
    return serve_static(root, request("GET", "/a.txt", std::move(h)), kNow).substr(0, 12);
  };
  EXPECT_EQ(status_for({{"If-None-Match", etag}}), "HTTP/1.1 304");
  EXPECT_EQ(status_for({{"If-None-Match", "\"x\", W/" + etag}}), "HTTP/1.1 304");
  EXPECT_EQ(status_for({{"If-None-Match", "*"}}), "HTTP/1.1 304");
  EXPECT_EQ(status_for({{"If-None-Match", "\"other\""}}), "HTTP/1.1 200");
  EXPECT_EQ(status_for({{"If-Modified-Since", modified}}), "HTTP/1.1 304");
  EXPECT_EQ(status_for({{"If-Modified-Since", http_date(kNow)}}), "HTTP/1.1 304");
  EXPECT_EQ(status_for({{"If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"}}), "HTTP/1.1 200");
  EXPECT_EQ(status_for({{"If-Modified-Since", "yesterday"}}), "HTTP/1.1 200");
  // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
  EXPECT_EQ(status_for({{"If-None-Match", "\"other\""}, {"If-Modified-Since", modified}}),
            "HTTP/1.1 200");
  const std::string r =
      serve_static(root, request("GET", "/a.txt", {{"If-None-Match", etag}}), kNow);
  EXPECT_EQ(header(r, "ETag"), etag);
  EXPECT_EQ(header(r, "Content-Length"), "");  // 304: no content (RFC 9110 §15.4.5)
  EXPECT_EQ(body_of(r), "");
}

TEST_F(StaticTree, ServeHeadMethodsAndErrors) {
  std::string r = serve_static(root, request("HEAD", "/sub/style.css"), kNow);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
  EXPECT_EQ(header(r, "Content-Length"), "6");
  EXPECT_EQ(header(r, "Content-Type"), "text/css; charset=utf-8");
  EXPECT_TRUE(r.ends_with("\r\n\r\n"));
  r = serve_static(root, request("POST", "/a.txt"), kNow);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 405")) << r;
  EXPECT_EQ(header(r, "Allow"), "GET, HEAD");
  EXPECT_TRUE(serve_static(root, request("GET", "/nope"), kNow).starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(serve_static(root, request("GET", "/link_out"), kNow).starts_with("HTTP/1.1 403"));
  EXPECT_TRUE(serve_static(root, request("GET", "/%zz"), kNow).starts_with("HTTP/1.1 400"));
  r = serve_static(root, request("HEAD", "/nope"), kNow);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 404") && r.ends_with("\r\n\r\n")) << r;
}

TEST_F(StaticTree, LastModifiedIsNeverAfterDateAndBigFilesAreRefused) {
  // RFC 9110 §8.8.2.1: a clock behind the file's mtime sends Date as Last-Modified.
  std::string r = serve_static(root, request("GET", "/a.txt"), 1000);
  EXPECT_EQ(header(r, "Last-Modified"), "Thu, 01 Jan 1970 00:16:40 GMT");
  write_file(root / "big.bin", "");
  fs::resize_file(root / "big.bin", tether::detail::kStaticFileMax + 1);  // sparse
  r = serve_static(root, request("GET", "/big.bin"), kNow);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 500")) << r.substr(0, 200);
  EXPECT_LT(r.size(), 1000u);
}

TEST(StaticFiles, ContentTypes) {
  EXPECT_EQ(content_type_for("x/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("INDEX.HTM"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("a.json"), "application/json");
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("a.jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.wasm"), "application/wasm");
  EXPECT_EQ(content_type_for("a.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("Makefile"), "application/octet-stream");
  EXPECT_EQ(content_type_for("a.tar.gz"), "application/octet-stream");
}

// RFC 9110 §5.6.7, whose example instant is 784111777.
TEST(StaticFiles, HttpDates) {
  EXPECT_EQ(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(parse_http_date(http_date(2'000'000'000)), 2'000'000'000);
  for (const char* bad : {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC",
                          "Sun, 06 Nov 1994 08:49:37 GMT trailing", "Sun, 32 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_http_date(bad).has_value());
  }
}

// End to end: a Server with static_dir on a free port, plain blocking sockets as clients.
class StaticServer {
 public:
  explicit StaticServer(const fs::path& dir) {
    tether::ServerOptions o;
    o.port = 0;
    o.static_dir = dir.string();
    o.shutdown_timeout = std::chrono::milliseconds(500);
    server_ = std::make_unique<tether::Server>(o);
    server_->on_message(
        [](tether::Connection& c, std::string_view d, tether::MessageType t) { c.send(d, t); });
    EXPECT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  ~StaticServer() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }

 private:
  std::unique_ptr<tether::Server> server_;
  std::thread thread_;
};

// Connects, writes `bytes`, reads until `enough(received)` or EOF (5 s receive timeout).
std::string round_trip(uint16_t port, std::string_view bytes,
                       bool (*enough)(const std::string&) = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buf[4096];
    while (!(enough && enough(got))) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

std::string http(uint16_t port, std::string method, std::string target, std::string extra = "") {
  return round_trip(port, method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
}

TEST_F(StaticTree, StaticServeGetHeadAndConditional) {
  StaticServer s(root);
  std::string r = http(s.port(), "GET", "/sub/style.css");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_EQ(header(r, "Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(body_of(r), "body{}");
  r = http(s.port(), "GET", "/");
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(body_of(r), "<h1>home</h1>");

  const std::string etag = header(r, "ETag");
  ASSERT_FALSE(etag.empty());
  r = http(s.port(), "GET", "/", "If-None-Match: " + etag + "\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 304 Not Modified\r\n")) << r;
  EXPECT_EQ(body_of(r), "");

  r = http(s.port(), "HEAD", "/a.txt");  // read to EOF: nothing after the head
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
  EXPECT_EQ(header(r, "Content-Length"), "5");
  EXPECT_TRUE(r.ends_with("\r\n\r\n")) << r;
}

TEST_F(StaticTree, StaticServeRefusals) {
  StaticServer s(root);
  EXPECT_TRUE(http(s.port(), "GET", "/missing").starts_with("HTTP/1.1 404")) << "missing";
  for (const char* t : {"/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/link_out",
                        "/dir_out/secret.txt", "/..%2foutside/secret.txt"}) {
    SCOPED_TRACE(t);
    const std::string r = http(s.port(), "GET", t);
    EXPECT_TRUE(r.starts_with("HTTP/1.1 403")) << r;
    EXPECT_EQ(r.find("secret"), std::string::npos);
  }
  std::string r = http(s.port(), "POST", "/a.txt", "Content-Length: 0\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 405")) << r;
  EXPECT_EQ(header(r, "Allow"), "GET, HEAD");
}

TEST_F(StaticTree, StaticServeKeepsHealthzAndWebSocket) {
  StaticServer s(root);
  std::string r = http(s.port(), "GET", "/healthz");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
  EXPECT_EQ(body_of(r), "ok\n");
  // Upgrade, then a masked "hi" (zero mask key) comes back as an unmasked text frame.
  const std::string upgrade =
      "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
      std::string("\x81\x82\0\0\0\0hi", 8);
  r = round_trip(s.port(), upgrade, [](const std::string& got) {
    return got.ends_with(std::string("\x81\x02hi", 4));
  });
  EXPECT_TRUE(r.starts_with("HTTP/1.1 101")) << r;
  EXPECT_TRUE(r.ends_with(std::string("\x81\x02hi", 4))) << r;
}

TEST_F(StaticTree, StaticServeOffStillAnswers426) {
  StaticServer s(fs::path{});  // empty static_dir: the port only speaks WebSocket
  EXPECT_TRUE(http(s.port(), "GET", "/a.txt").starts_with("HTTP/1.1 426"));
  EXPECT_TRUE(http(s.port(), "GET", "/healthz").starts_with("HTTP/1.1 200"));
}

}  // namespace
