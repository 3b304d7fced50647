// `tether`: the command-line tool (CONTRACT.md), built on the public API only.
#include <csignal>
#include <cstdio>
#include <mutex>

#include "commands.hpp"
#include "units.hpp"

namespace tether::cli {

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return parse_duration(s) ? "" : "'" + s + "' is not a duration (e.g. 500ms, 25s, 2m, 1.5)";
      },
      "DURATION");
}
CLI::Validator size_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return parse_size(s) ? "" : "'" + s + "' is not a size (e.g. 1024, 64k, 16m)";
      },
      "SIZE");
}
std::chrono::milliseconds to_duration(const std::string& s) { return *parse_duration(s); }
std::size_t to_size(const std::string& s) { return *parse_size(s); }

void emit_line(const std::string& line) {
  static std::mutex m;
  std::lock_guard lock(m);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace tether::cli

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"tether: WebSocket server, client, probe and benchmark"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tether 0.1.0");
  auto serve = tether::cli::add_serve(app);
  auto connect = tether::cli::add_connect(app);
  auto bench = tether::cli::add_bench(app);
  auto probe = tether::cli::add_probe(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // CONTRACT: usage errors exit 2, with a message naming the flag
  }
  try {
    if (app.got_subcommand("serve")) return serve();
    if (app.got_subcommand("connect")) return connect();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("probe")) return probe();
  } catch (const tether::cli::UsageError& e) {
    std::fprintf(stderr, "tether: %s\n", e.message.c_str());
    return 2;
  }
  return 2;
}
