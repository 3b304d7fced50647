// OpenSSL's error queue as text, for Context and Session error(). Internal to src/tls.
#pragma once
#include <string>

namespace tether::tls::detail {

// Drains this thread's OpenSSL error queue into "reason[ (detail)]" items joined by ": ",
// oldest first (the root cause, e.g. the fopen failure, comes before the wrapper's reason).
// Empty when the queue is empty.
std::string drain_openssl_errors();

}  // namespace tether::tls::detail
