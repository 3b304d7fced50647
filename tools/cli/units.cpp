#include "units.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

namespace tether::cli {

namespace {
// Splits "1.5s" into 1.5 and "s"; nullopt when the number part is not a plain decimal.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view text) {
  std::size_t i = 0;
  bool digits = false, dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return std::nullopt;
  double v = std::strtod(std::string(text.substr(0, i)).c_str(), nullptr);
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  return std::make_pair(v, text.substr(i));
}
}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [v, unit] = *parts;
  double ms;
  if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "ms") {
    ms = v;
  } else if (unit == "m") {
    ms = v * 60'000;
  } else if (unit == "h") {
    ms = v * 3'600'000;
  } else {
    return std::nullopt;
  }
  if (ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

std::optional<std::size_t> parse_size(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [v, unit] = *parts;
  double mult;
  if (unit.empty()) {
    mult = 1;
  } else if (unit == "k" || unit == "K") {
    mult = 1024;
  } else if (unit == "m" || unit == "M") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "G") {
    mult = 1024.0 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  double bytes = v * mult;
  if (bytes > 1e15) return std::nullopt;
  return static_cast<std::size_t>(std::llround(bytes));
}

}  // namespace tether::cli
