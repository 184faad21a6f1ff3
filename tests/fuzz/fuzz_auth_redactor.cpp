// Drives AuthRedactor with arbitrary exchanges. Beyond not crashing, it checks the rendering
// invariant the transcript relies on: text and decoded are printable ASCII (no CR/LF/NUL or
// terminal escapes can reach a log; text keeps the AUTH line's separators), and the bookkeeping
// stays consistent.
//
// Input: byte 0 selects the policy (bits 0-1: users, fingerprint; bits 2-3: the display modes
// of mailtap decode, which must keep the same invariant); the rest is '\n'-separated lines. The
// first line is the AUTH line. Later lines starting with "S:" are server challenges, "F:" finishes
// with the following number, "B:" begins a new exchange, anything else is a client response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/smtp/auth_redactor.hpp"

namespace {

using mailtap::smtp::AuthRedactor;
using mailtap::smtp::RedactedLine;
using mailtap::smtp::RedactionPolicy;

bool printable(char c) {
  return c >= 0x20 && c <= 0x7e;
}

// The AUTH line's own separators (HTAB, VT, FF between or before its words, as the dialogue
// reads them) are kept in `text` as the client sent them: before the rendering's first '[', or
// anywhere when the text is the input line unchanged. Nothing else outside printable ASCII.
void check(const RedactedLine& line, std::string_view input) {
  const bool as_sent = line.text == input;
  const std::size_t rendering = line.text.find('[');
  for (std::size_t i = 0; i < line.text.size(); ++i) {
    const char c = line.text[i];
    const bool separator = c == '\t' || c == '\v' || c == '\f';
    if (!printable(c) && !(separator && (as_sent || i < rendering))) std::abort();
  }
  for (char c : line.decoded) {
    if (!printable(c)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  RedactionPolicy policy;
  policy.redact_users = (data[0] & 1) != 0;
  if ((data[0] & 2) != 0) {
    policy.fingerprint_key.emplace();
    policy.fingerprint_key->fill(data[0]);
  }
  if ((data[0] & 4) != 0) policy.display = RedactionPolicy::Display::describe;
  if ((data[0] & 8) != 0) policy.display = RedactionPolicy::Display::reveal;
  AuthRedactor redactor(policy);
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  bool first = true;
  while (!in.empty() || first) {
    const std::size_t nl = in.find('\n');
    const std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    if (first) {
      check(redactor.begin(line), line);
      first = false;
    } else if (line.substr(0, 2) == "S:") {
      check(redactor.server_challenge(line.substr(2)), line.substr(2));
    } else if (line.substr(0, 2) == "B:") {
      check(redactor.begin(line.substr(2)), line.substr(2));
    } else if (line.substr(0, 2) == "F:") {
      int code = 0;
      for (char c : line.substr(2, 3)) code = code * 10 + (c >= '0' && c <= '9' ? c - '0' : 0);
      const bool was_authenticated = redactor.authenticated();
      const bool was_in_progress = redactor.in_progress();
      redactor.finish(code);
      if (redactor.in_progress()) std::abort();
      if (was_authenticated && !redactor.authenticated()) std::abort();
      if (!was_in_progress && redactor.authenticated() != was_authenticated) std::abort();
    } else {
      check(redactor.client_response(line), line);
    }
    if (policy.redact_users && !redactor.user().empty()) std::abort();
  }
  return 0;
}
