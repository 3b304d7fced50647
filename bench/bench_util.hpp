// Small helpers shared by the benchmark programs (never linked into the library).
#pragma once
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

// Set by SIGINT/SIGTERM: the program winds down and still reports.
inline std::atomic<bool> interrupted{false};
extern "C" inline void on_signal(int) { interrupted.store(true); }

using UsageError = void (*)(const std::string& why);

// An integer flag value in [lo, hi], or `usage` (which exits).
inline long parse_count(std::string_view flag, const std::string& s, long lo, long hi,
                        UsageError usage) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    usage(std::string(flag) + " must be an integer in [" + std::to_string(lo) + ", " +
          std::to_string(hi) + "] (got '" + s + "')");
  return v;
}

// Raises the soft descriptor limit to `need`, up to the hard limit; says why on stderr if not.
inline bool raise_fd_limit(const char* prog, rlim_t need) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    std::fprintf(stderr, "%s: getrlimit(RLIMIT_NOFILE): %s\n", prog, std::strerror(errno));
    return false;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    std::fprintf(stderr,
                 "%s: need %llu file descriptors but the hard limit is %llu; raise it first "
                 "(as root: ulimit -n %llu, or LimitNOFILE / limits.conf)\n",
                 prog, static_cast<unsigned long long>(need),
                 static_cast<unsigned long long>(rl.rlim_max),
                 static_cast<unsigned long long>(need));
    return false;
  }
  const rlim_t old = rl.rlim_cur;
  rl.rlim_cur = need;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    std::fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE, %llu): %s\n", prog,
                 static_cast<unsigned long long>(need), std::strerror(errno));
    return false;
  }
  std::fprintf(stderr, "%s: raised the descriptor limit from %llu to %llu\n", prog,
               static_cast<unsigned long long>(old), static_cast<unsigned long long>(need));
  return true;
}

}  // namespace bench
