// --deflate-options for `tether serve` and `tether connect` (docs/cli.md).
#include <charconv>
#include <string_view>

#include "commands.hpp"

namespace tether::cli {

namespace {
int parse_int(std::string_view v, int lo, int hi, std::string_view what) {
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi)
    throw UsageError{"--deflate-options: " + std::string(what) + " must be " + std::to_string(lo) +
                     ".." + std::to_string(hi) + ", got '" + std::string(v) + "'"};
  return n;
}
}  // namespace

void apply_deflate_options(const std::string& list, DeflateOptions& d) {
  d.enabled = true;
  d.server_no_context_takeover = false;
  d.client_no_context_takeover = false;
  if (list == "none") return;
  std::string_view rest = list;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    if (name == "server_no_context_takeover" && value.empty()) {
      d.server_no_context_takeover = true;
    } else if (name == "client_no_context_takeover" && value.empty()) {
      d.client_no_context_takeover = true;
    } else if (name == "server_max_window_bits" && !value.empty()) {
      d.server_max_window_bits = parse_int(value, 9, 15, name);
    } else if (name == "client_max_window_bits" && !value.empty()) {
      d.client_max_window_bits = parse_int(value, 9, 15, name);
    } else if (name == "threshold" && !value.empty()) {
      d.threshold = static_cast<std::size_t>(parse_int(value, 0, 1 << 30, name));
    } else if (name == "level" && !value.empty()) {
      d.level = parse_int(value, 1, 9, name);
    } else {
      throw UsageError{"--deflate-options: unknown item '" + std::string(item) + "'"};
    }
  }
}

}  // namespace tether::cli
