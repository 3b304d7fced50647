// CONTRACT.md units: durations `500ms`, `25s`, `2m`, bare seconds `1.5`; sizes `1024`, `64k`,
// `16m`.
#pragma once
#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

namespace tether::cli {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::optional<std::size_t> parse_size(std::string_view text);

}  // namespace tether::cli
