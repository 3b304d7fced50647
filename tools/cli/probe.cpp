// `tether probe`: how long does the path to URL tolerate a silent WebSocket?
//
// Connections are opened with heartbeats off and held silent. Each has a silent period T: after T
// it sends one ping; a pong means the path survived T. A path that cuts idle connections shows up
// either as an explicit close during the silence (a proxy's FIN/RST: the time since the silence
// started is the limit) or as a ping that is never answered (a NAT that dropped state silently:
// the limit lies between the longest period that survived and the shortest that did not, and
// further rounds narrow that bracket). All connections of a round run in parallel.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "tether/client.hpp"

namespace tether::cli {

namespace {
using SteadyClock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// How long a ping may wait for its pong before the connection counts as silently cut.
constexpr Seconds kPongWait{3.0};

struct Probe {
  enum class St { opening, silent, pinged, survived, cut_explicit, cut_silent, failed };
  double period = 0;  // seconds of silence before the ping
  std::unique_ptr<Client> client;
  St st = St::opening;
  SteadyClock::time_point opened_at, pinged_at;
  double cut_after = 0;  // St::cut_explicit: seconds of silence before the close
  std::string reason;
  bool resolved() const { return st != St::opening && st != St::silent && st != St::pinged; }
};

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 1 ? "%.2fs" : "%.1fs", s);
  return buf;
}

std::string fmt_max(std::chrono::milliseconds ms) {
  auto v = ms.count();
  if (v % 60000 == 0) return std::to_string(v / 60000) + "m";
  if (v % 1000 == 0) return std::to_string(v / 1000) + "s";
  return fmt_seconds(static_cast<double>(v) / 1000.0);
}

class Prober {
 public:
  Prober(std::string url, bool tty) : url_(std::move(url)), tty_(tty) {
    loop_thread_ = std::thread([this] { loop_.run(); });
  }
  ~Prober() {
    loop_.stop();
    loop_thread_.join();
  }

  struct Result {
    double lo = 0;         // longest silence that survived
    double hi = INFINITY;  // shortest silence known to be cut
    std::vector<double> explicit_cuts;
    int failed = 0;
    std::string fail_reason;
  };

  // Runs one round with the given silent periods; returns what it learned.
  Result round(const std::vector<double>& periods, int number) {
    std::vector<Probe*> probes;
    {
      std::lock_guard lock(mu_);
      for (double p : periods) {
        auto pr = std::make_unique<Probe>();
        pr->period = p;
        ClientOptions o;
        o.url = url_;
        o.ping_interval = std::chrono::milliseconds(0);  // silence is the point
        o.reconnect = false;                             // a cut is the measurement
        pr->client = std::make_unique<Client>(loop_, o);
        wire(*pr);
        probes.push_back(pr.get());
        all_.push_back(std::move(pr));
      }
    }
    status("round " + std::to_string(number) + ": holding " + std::to_string(periods.size()) +
           " connections silent for " + fmt_seconds(periods.front()) + " .. " +
           fmt_seconds(periods.back()));
    for (auto* p : probes) loop_.post([p] { p->client->connect(); });

    const auto round_start = SteadyClock::now();
    const double longest = *std::max_element(periods.begin(), periods.end());
    Result r;
    std::string last_line;
    // Bounded: the longest period, the pong wait, and time to connect.
    const auto deadline = round_start + Seconds(longest) + kPongWait + Seconds(15);
    while (SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::lock_guard lock(mu_);
      const auto now = SteadyClock::now();
      bool all_done = true;
      double first_cut = INFINITY;
      for (auto* p : probes) {
        if (p->st == Probe::St::silent && Seconds(now - p->opened_at).count() >= p->period) {
          p->st = Probe::St::pinged;
          p->pinged_at = now;
          Client* c = p->client.get();
          loop_.post([c] { c->ping(); });
        } else if (p->st == Probe::St::pinged && now - p->pinged_at > kPongWait) {
          p->st = Probe::St::cut_silent;
          Client* c = p->client.get();
          loop_.post([c] { c->close(); });
        }
        if (p->st == Probe::St::cut_explicit) first_cut = std::min(first_cut, p->cut_after);
        all_done = all_done && p->resolved();
      }
      // A proxy that cut one silent connection cuts the longer ones at the same age: once every
      // probe is resolved or has been silent past that age (with margin), the round is over.
      bool settled = std::isfinite(first_cut);
      for (auto* p : probes) {
        if (p->resolved()) continue;
        const bool past =
            p->st != Probe::St::opening && Seconds(now - p->opened_at).count() > first_cut + 1.0;
        settled = settled && past;
      }
      std::string line = progress(probes);
      if (line != last_line) {
        status(line);
        last_line = line;
      }
      if (all_done || settled) break;
    }
    std::lock_guard lock(mu_);
    for (auto* p : probes) {
      switch (p->st) {
        case Probe::St::survived:
          r.lo = std::max(r.lo, p->period);
          break;
        case Probe::St::cut_explicit:
          r.explicit_cuts.push_back(p->cut_after);
          r.hi = std::min(r.hi, p->cut_after);
          break;
        case Probe::St::cut_silent:
          r.hi = std::min(r.hi, p->period);
          break;
        case Probe::St::failed:
          ++r.failed;
          r.fail_reason = p->reason;
          break;
        default:
          break;  // still silent when the round settled: past the cut age, uninformative
      }
      if (!p->resolved() || p->st == Probe::St::survived) {
        Client* c = p->client.get();
        loop_.post([c] { c->close(); });
      }
    }
    if (tty_) std::fputc('\n', stderr);
    return r;
  }

 private:
  void wire(Probe& p) {
    Probe* pp = &p;
    p.client->on_open([this, pp] {
      std::lock_guard lock(mu_);
      pp->st = Probe::St::silent;
      pp->opened_at = SteadyClock::now();
    });
    p.client->on_rtt([this, pp](std::chrono::nanoseconds) {
      std::lock_guard lock(mu_);
      if (pp->st == Probe::St::pinged) pp->st = Probe::St::survived;
    });
    p.client->on_close([this, pp](const CloseInfo& info) {
      std::lock_guard lock(mu_);
      const auto now = SteadyClock::now();
      if (pp->st == Probe::St::opening) {
        pp->st = Probe::St::failed;
        pp->reason = info.reason;
      } else if (pp->st == Probe::St::silent) {
        pp->st = Probe::St::cut_explicit;
        pp->cut_after = Seconds(now - pp->opened_at).count();
        pp->reason = info.reason;
      } else if (pp->st == Probe::St::pinged) {
        pp->st = Probe::St::cut_silent;
      }
    });
  }

  std::string progress(const std::vector<Probe*>& probes) const {
    int survived = 0, cut = 0, waiting = 0;
    double lo = 0, hi = INFINITY;
    for (auto* p : probes) {
      if (p->st == Probe::St::survived) {
        ++survived;
        lo = std::max(lo, p->period);
      } else if (p->st == Probe::St::cut_explicit) {
        ++cut;
        hi = std::min(hi, p->cut_after);
      } else if (p->st == Probe::St::cut_silent) {
        ++cut;
        hi = std::min(hi, p->period);
      } else if (!p->resolved()) {
        ++waiting;
      }
    }
    std::string line = std::to_string(survived) + " survived, " + std::to_string(cut) + " cut, " +
                       std::to_string(waiting) + " waiting; limit in (" + fmt_seconds(lo) + ", " +
                       (std::isfinite(hi) ? fmt_seconds(hi) : std::string("?")) + "]";
    return line;
  }

  void status(const std::string& line) {
    if (tty_)
      std::fprintf(stderr, "\r\033[Kprobe: %s", line.c_str());
    else
      std::fprintf(stderr, "probe: %s\n", line.c_str());
    std::fflush(stderr);
  }

  std::string url_;
  bool tty_;
  Loop loop_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Probe>> all_;  // kept until the loop stops (callbacks hold them)
  std::thread loop_thread_;
};
}  // namespace

std::function<int()> add_probe(CLI::App& app) {
  struct Args {
    std::string url;
    std::string max = "5m";
    int parallel = 8;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("probe", "Measure how long the path to URL tolerates silence");
  cmd->add_option("URL", args->url)->required();
  cmd->add_option("--max", args->max, "Longest silence to try")
      ->check(duration_validator())
      ->capture_default_str();
  cmd->add_option("--parallel", args->parallel, "Connections per round")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");

  return [args]() -> int {
    const auto max = to_duration(args->max);
    const double max_s = static_cast<double>(max.count()) / 1000.0;
    if (max_s < 0.5) throw UsageError{"--max: must be at least 500ms"};
    Prober prober(args->url, isatty(STDERR_FILENO) != 0);

    // Round 1: a geometric ladder from --max down, so a limit anywhere is bracketed in one round.
    std::vector<double> periods;
    for (int i = args->parallel - 1; i >= 0; --i) periods.push_back(max_s / std::pow(2.0, i));
    double lo = 0, hi = INFINITY, limit = NAN;
    for (int number = 1; number <= 6; ++number) {
      auto r = prober.round(periods, number);
      if (r.failed == static_cast<int>(periods.size())) {
        std::fprintf(stderr, "tether probe: cannot connect to %s: %s\n", args->url.c_str(),
                     r.fail_reason.c_str());
        return 1;
      }
      lo = std::max(lo, r.lo);
      hi = std::min(hi, r.hi);
      if (!r.explicit_cuts.empty()) {
        // The path closed silent connections itself: the age at which it did is the limit.
        std::sort(r.explicit_cuts.begin(), r.explicit_cuts.end());
        limit = r.explicit_cuts[r.explicit_cuts.size() / 2];
        break;
      }
      if (!std::isfinite(hi)) break;  // everything survived up to --max
      // Silent drops only: narrow (lo, hi) with evenly spaced periods.
      if (hi - lo <= std::max(0.5, 0.05 * lo)) {
        limit = (lo + hi) / 2;
        break;
      }
      periods.clear();
      for (int i = 1; i <= args->parallel; ++i)
        periods.push_back(lo + (hi - lo) * i / (args->parallel + 1));
      limit = (lo + hi) / 2;
    }

    if (std::isnan(limit)) {
      if (args->json)
        emit_line(nlohmann::ordered_json{{"idle_limit_ms", nullptr},
                                         {"recommended_ping_interval_ms", nullptr},
                                         {"max_ms", max.count()}}
                      .dump());
      else
        emit_line("idle-limit: none up to " + fmt_max(max));
      return 0;
    }
    const double rounded = std::round(limit * 10) / 10;
    const double ping = std::floor(rounded / 2 * 10 + 1e-9) / 10;
    if (args->json)
      emit_line(nlohmann::ordered_json{
          {"idle_limit_ms", static_cast<long long>(std::llround(rounded * 1000))},
          {"recommended_ping_interval_ms", static_cast<long long>(std::llround(ping * 1000))}}
                    .dump());
    else
      emit_line("idle-limit: " + fmt_seconds(rounded) +
                "; recommended ping interval: " + fmt_seconds(ping));
    return 0;
  };
}

}  // namespace tether::cli
