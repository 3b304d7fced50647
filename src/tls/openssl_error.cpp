// OpenSSL error queue -> text.
#include "tls/openssl_error.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <system_error>

namespace tether::tls::detail {

std::string drain_openssl_errors() {
  std::string text;
  const char* data = nullptr;
  int flags = 0;
  bool system = false;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    // After an errno error, "system lib" and "no such file" only restate it.
    if (system && (ERR_GET_REASON(e) == ERR_R_SYS_LIB ||
                   (ERR_GET_LIB(e) == ERR_LIB_BIO && ERR_GET_REASON(e) == BIO_R_NO_SUCH_FILE))) {
      continue;
    }
    std::string item;
    if (ERR_SYSTEM_ERROR(e)) {
      system = true;
      // errno from fopen and friends; its data repeats the path the caller already names.
      item = std::generic_category().message(ERR_GET_REASON(e));
      data = nullptr;
    } else if (const char* reason = ERR_reason_error_string(e)) {
      item = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      item = buf;
    }
    if ((flags & ERR_TXT_STRING) && data != nullptr && *data != '\0') {
      item += " (";
      item += data;
      item += ')';
    }
    // A wrapper may repeat its callee's reason word for word: keep one.
    if (text.find(item) != std::string::npos) continue;
    if (!text.empty()) text += ": ";
    text += item;
  }
  return text;
}

}  // namespace tether::tls::detail
