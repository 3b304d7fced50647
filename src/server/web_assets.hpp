// The files under web/ (tether.js, pages), compiled in by cmake/embed.cmake.
#pragma once
#include <cstddef>
#include <string_view>

namespace tether::web {

struct Asset {
  std::string_view path;  // "/tether.js": the file's path under web/
  std::string_view content_type;
  std::string_view body;
};
extern const Asset assets[];
extern const std::size_t asset_count;

}  // namespace tether::web
