// The two tiny JSON objects of the opening exchange (hello, welcome) are parsed by hand: a flat
// RFC 8259 object whose values are strings, non-negative integers or booleans. Anything else
// (null, arrays, nested objects, negative or fractional numbers, duplicate keys) is rejected
// with a message that says what and where. Also the strict decimal reader shared with the
// data-frame header.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tether::resume::detail {

// Canonical unsigned decimal: 1-20 digits, no sign, no leading zero (except "0" itself), at
// most 18446744073709551615. false on anything else.
bool parse_decimal(std::string_view digits, uint64_t& out);

struct JsonValue {
  enum class Kind : uint8_t { string, number, boolean };
  Kind kind = Kind::number;
  std::string string;  // decoded (escapes resolved, \u escapes written as UTF-8)
  uint64_t number = 0;
  bool boolean = false;
};

struct JsonMember {
  std::string key;
  JsonValue value;
};

// Parses `in` as one flat object (whitespace allowed between tokens, nothing after the '}').
// Returns false and sets `why` (e.g. "expected ':' after key \"v\" at byte 6") on error;
// byte positions are counted from `base` (the object's offset in the whole message).
bool parse_flat_object(std::string_view in, std::size_t base, std::vector<JsonMember>& members,
                       std::string& why);

// Appends `s` as a JSON string literal: '"', '\\' and control characters escaped, other bytes
// (UTF-8 included) copied.
void append_json_string(std::string& out, std::string_view s);

}  // namespace tether::resume::detail
