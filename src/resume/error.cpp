#include "resume/error.hpp"

#include <string>

namespace tether::resume {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tether.resume"; }
  std::string message(int value) const override {
    switch (static_cast<Error>(value)) {
      case Error::none:
        return "success";
      case Error::malformed_frame:
        return "malformed resume frame";
      case Error::unsupported_version:
        return "unsupported resume protocol version";
      case Error::unexpected_frame:
        return "unexpected resume frame";
      case Error::sequence_gap:
        return "sequence gap";
      case Error::invalid_ack:
        return "acknowledgement out of range";
      case Error::too_many_sessions:
        return "too many sessions";
    }
    return "unknown resume error";
  }
};
}  // namespace

const std::error_category& resume_category() {
  static const Category category;
  return category;
}

}  // namespace tether::resume
