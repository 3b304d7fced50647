#include "log.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace tether::cli {

std::optional<LogLevel> parse_log_level(std::string_view s) {
  if (s == "debug") return LogLevel::debug;
  if (s == "info") return LogLevel::info;
  if (s == "warn") return LogLevel::warn;
  if (s == "error") return LogLevel::error;
  return std::nullopt;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs =
      static_cast<std::time_t>(std::chrono::floor<std::chrono::seconds>(ms).count());
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the compiler can imagine (-Wformat-truncation)
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return buf;
}

double to_ms(std::chrono::nanoseconds d) {
  return std::round(static_cast<double>(d.count()) / 1e3) / 1e3;
}

namespace {
bool bare(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return false;
  return true;
}

void append_text_value(std::string& out, const nlohmann::ordered_json& v) {
  if (!v.is_string()) {
    out += v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    return;
  }
  const auto& s = v.get_ref<const std::string&>();
  if (bare(s)) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  out += '"';
}
}  // namespace

std::string format_log_line(LogFormat format, std::string_view ts, LogLevel level,
                            std::string_view event, const nlohmann::ordered_json& fields) {
  if (format == LogFormat::json) {
    nlohmann::ordered_json j = {{"ts", ts}, {"level", to_string(level)}, {"event", event}};
    if (fields.is_object())
      for (const auto& [k, v] : fields.items()) j[k] = v;
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  std::string out;
  out += ts;
  out += ' ';
  out += to_string(level);
  out += ' ';
  out += event;
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      out += ' ';
      out += k;
      out += '=';
      append_text_value(out, v);
    }
  }
  return out;
}

void Logger::log(LogLevel level, std::string_view event,
                 const nlohmann::ordered_json& fields) const {
  if (!enabled(level)) return;
  std::string line = format_log_line(format_, utc_timestamp(std::chrono::system_clock::now()),
                                     level, event, fields);
  line += '\n';
  // stderr is unbuffered: one fwrite is one write(2), whole lines even with several loop threads.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace tether::cli
