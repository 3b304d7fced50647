// The request target and subprotocol an opening handshake settled, interned: every connection
// of a loop with the same pair points at one entry (refcounted), so a connection keeps 8 bytes
// for them instead of a string. Most servers see a handful of distinct pairs ("/chat" +
// "chat.v1"); a target unique to each connection (a token in the query) costs an entry each,
// about what a string of its own would. Not thread-safe: one table per loop.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tether::protocol {

// One interned pair: path + '\n' + subprotocol ('\n' appears in neither: HTTP forbids it in a
// request target and in a header value).
struct NameEntry {
  uint32_t path_len = 0;
  uint32_t refs = 0;
};
using Names = std::pair<const std::string, NameEntry>;

class NameTable {
 public:
  NameTable() = default;
  NameTable(const NameTable&) = delete;
  NameTable& operator=(const NameTable&) = delete;

  // A reference to the entry for the pair (made on first use). Release it with release().
  const Names* acquire(std::string_view path, std::string_view subprotocol) {
    std::string key = make_key(path, subprotocol);
    auto [it, fresh] = map_.try_emplace(std::move(key));
    if (fresh) it->second.path_len = static_cast<uint32_t>(path.size());
    ++it->second.refs;
    return &*it;
  }
  void release(const Names* n) {
    if (n == nullptr) return;
    auto it = map_.find(n->first);
    if (it != map_.end() && --it->second.refs == 0) map_.erase(it);
  }
  std::size_t size() const { return map_.size(); }

  // Without a table (a client, a test): an entry of one's own.
  static const Names* own(std::string_view path, std::string_view subprotocol) {
    return new Names(make_key(path, subprotocol), NameEntry{static_cast<uint32_t>(path.size()), 1});
  }
  static void drop_own(const Names* n) { delete n; }

  static std::string_view path(const Names* n) {
    return n ? std::string_view(n->first).substr(0, n->second.path_len) : std::string_view();
  }
  static std::string_view subprotocol(const Names* n) {
    return n ? std::string_view(n->first).substr(n->second.path_len + 1) : std::string_view();
  }

 private:
  static std::string make_key(std::string_view path, std::string_view subprotocol) {
    std::string key;
    key.reserve(path.size() + 1 + subprotocol.size());
    key.append(path).push_back('\n');
    key.append(subprotocol);
    return key;
  }
  std::unordered_map<std::string, NameEntry> map_;
};

}  // namespace tether::protocol
