#pragma once
#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tether/options.hpp"

namespace tether::cli {

// Each command registers its subcommand and returns the function that runs it (exit status).
std::function<int()> add_serve(CLI::App& app);
std::function<int()> add_connect(CLI::App& app);
std::function<int()> add_bench(CLI::App& app);
std::function<int()> add_probe(CLI::App& app);

// Thrown by option validation; main prints it and exits with 2 (CONTRACT: usage error).
struct UsageError {
  std::string message;
};

// A CLI11 validator for CONTRACT durations / sizes.
CLI::Validator duration_validator();
CLI::Validator size_validator();
std::chrono::milliseconds to_duration(const std::string& s);
std::size_t to_size(const std::string& s);

// --deflate-options LIST: RFC 7692 parameter names, comma-separated, with =N where they take a
// value, plus threshold=BYTES and level=N; "none" for no parameters. The listed flags are set and
// the others cleared, so the list says exactly what is asked for. Throws UsageError.
void apply_deflate_options(const std::string& list, DeflateOptions& d);

// Writes one line to stdout and flushes (JSON events are consumed line by line).
void emit_line(const std::string& line);
// One JSON event line (keys in insertion order, invalid UTF-8 replaced rather than thrown).
inline std::string json_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace tether::cli
