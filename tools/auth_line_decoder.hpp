// What `mailtap decode` makes of copied lines: an AUTH line, a 334 prompt, a SASL response, a
// reply or bare base64, one output line per input line, understood from the lines before it as
// a session shows them. The decoding is the recorder's own (AuthRedactor), so decode shows
// exactly what mailtap understood. Sans-IO: the command (decode.cpp) reads and prints.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/auth_redactor.hpp"

namespace mailtap::tools {

class AuthLineDecoder {
 public:
  // Secrets are shown as <secret, N bytes> unless `show_secret`.
  explicit AuthLineDecoder(bool show_secret);

  // One output line for one input line, or nullopt for lines that carry nothing (blank, #).
  std::optional<std::string> line(std::string_view raw);

 private:
  std::string auth(std::string_view s);
  std::string challenge(std::string_view s);
  // Base64 with no exchange around it: tried as each initial response the redactor knows.
  std::string bare(std::string_view s);

  smtp::RedactionPolicy policy_;
  smtp::AuthRedactor redactor_;
  bool after_error_ = false;  // the last challenge was an OAuth error
};

}  // namespace mailtap::tools
