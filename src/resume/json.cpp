#include "resume/json.hpp"

namespace tether::resume::detail {

bool parse_decimal(std::string_view digits, uint64_t& out) {
  if (digits.empty() || digits.size() > 20) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

namespace {

constexpr std::size_t max_members = 16;  // hello has 3, welcome 5: room for additions, no more

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Reader {
 public:
  Reader(std::string_view in, std::size_t base, std::string& why)
      : in_(in), why_(why), base_(base) {}

  bool object(std::vector<JsonMember>& members) {
    members.clear();
    skip_ws();
    if (!expect('{', "expected '{'")) return false;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return end();
    }
    for (;;) {
      skip_ws();
      JsonMember m;
      const std::size_t key_at = pos_;
      if (peek() != '"') return fail("expected a string key");
      if (!string(m.key)) return false;
      for (const auto& other : members)
        if (other.key == m.key) return fail_at(key_at, "duplicate key \"" + m.key + "\"");
      skip_ws();
      if (!expect(':', "expected ':' after key \"" + m.key + "\"")) return false;
      skip_ws();
      if (!value(m.value, m.key)) return false;
      if (members.size() == max_members) return fail("too many members");
      members.push_back(std::move(m));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (!expect('}', "expected ',' or '}'")) return false;
      return end();
    }
  }

 private:
  bool end() {
    skip_ws();
    return pos_ == in_.size() || fail("trailing bytes after the object");
  }

  bool value(JsonValue& v, const std::string& key) {
    const std::size_t at = pos_;
    char c = peek();
    if (c == '"') {
      v.kind = JsonValue::Kind::string;
      return string(v.string);
    }
    if (c >= '0' && c <= '9') return number(v, key);
    if (literal("true")) {
      v.kind = JsonValue::Kind::boolean;
      v.boolean = true;
      return true;
    }
    if (literal("false")) {
      v.kind = JsonValue::Kind::boolean;
      v.boolean = false;
      return true;
    }
    if (c == '-') return fail_at(at, "negative number for \"" + key + "\"");
    if (c == '{' || c == '[') return fail_at(at, "nested value for \"" + key + "\"");
    if (literal("null")) return fail_at(at, "null value for \"" + key + "\"");
    return fail_at(at, "expected a value for \"" + key + "\"");
  }

  bool number(JsonValue& v, const std::string& key) {
    std::size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
    std::string_view digits = in_.substr(start, pos_ - start);
    char next = peek();
    if (next == '.' || next == 'e' || next == 'E')
      return fail_at(start, "non-integer number for \"" + key + "\"");
    if (digits.size() > 1 && digits[0] == '0')
      return fail_at(start, "leading zero in \"" + key + "\"");
    v.kind = JsonValue::Kind::number;
    if (!parse_decimal(digits, v.number))
      return fail_at(start, "number out of range for \"" + key + "\"");
    return true;
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote, checked by the caller
    out.clear();
    for (;;) {
      if (pos_ >= in_.size()) return fail("unterminated string");
      char c = in_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20)
        return fail_at(pos_ - 1, "control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= in_.size()) return fail("unterminated escape");
      char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (in_.substr(pos_, 2) != "\\u") return fail("high surrogate without a low one");
            pos_ += 2;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return fail("high surrogate without a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          return fail("invalid escape");
      }
    }
  }

  bool hex4(uint32_t& cp) {
    if (in_.size() - pos_ < 4) return fail("truncated \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_];
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("bad hex digit in \\u escape");
      cp = cp * 16 + d;
      ++pos_;
    }
    return true;
  }

  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool expect(char c, const std::string& message) {
    if (peek() != c) return fail(message);
    ++pos_;
    return true;
  }

  char peek() const { return pos_ < in_.size() ? in_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r'))
      ++pos_;
  }
  bool fail(const std::string& message) { return fail_at(pos_, message); }
  bool fail_at(std::size_t at, const std::string& message) {
    why_ = message + " at byte " + std::to_string(base_ + at);
    return false;
  }

  std::string_view in_;
  std::string& why_;
  std::size_t base_;
  std::size_t pos_ = 0;
};

}  // namespace

bool parse_flat_object(std::string_view in, std::size_t base, std::vector<JsonMember>& members,
                       std::string& why) {
  return Reader(in, base, why).object(members);
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace tether::resume::detail
