// What a negotiated TLS 1.2 cipher suite lacks that current ones have, for the record's tls
// note, the session's start line and mailtap probe. mailtap takes such suites (servers old
// enough to offer nothing else are still met) and says so rather than calling them fine.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::smtp {

// By the suite's standard name: "no forward secrecy: RSA key exchange; CBC" for
// TLS_RSA_WITH_AES_128_CBC_SHA, "CBC" for TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA; "" for an ECDHE
// AEAD suite and every TLS 1.3 one.
inline std::string cipher_caveat(std::string_view cipher) {
  std::string caveat;
  if (cipher.starts_with("TLS_RSA_")) caveat = "no forward secrecy: RSA key exchange";
  if (cipher.find("_CBC_") != std::string_view::npos) caveat += caveat.empty() ? "CBC" : "; CBC";
  return caveat;
}

}  // namespace mailtap::smtp
