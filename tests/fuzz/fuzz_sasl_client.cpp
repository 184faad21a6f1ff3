// mailtap's own AUTH exchange fed whatever a server may send. Beyond not crashing: every line
// mailtap sends is one CRLF-terminated line within RFC 4954's limit, the exchange ends after a
// handful of lines however the server behaves, nothing is sent once it is over, and the
// explanation of a failure is one printable, bounded reply line.
//
// Input: byte 0 picks the mechanism (low 3 bits) and a small line limit (bit 3); the rest is the
// server's byte stream, framed by the real ReplyParser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/smtp/auth_explanation.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/sasl_client.hpp"

namespace {

using mailtap::smtp::Mechanism;
using mailtap::smtp::SaslStep;

constexpr Mechanism kMechanisms[] = {Mechanism::xoauth2, Mechanism::oauthbearer, Mechanism::plain,
                                     Mechanism::login, Mechanism::cram_md5};

void check_line(const SaslStep& step, std::size_t max_line) {
  const std::string_view line = step.line.view();
  if (line.size() < 2 || line.size() > max_line || line.substr(line.size() - 2) != "\r\n")
    std::abort();
  for (char c : line.substr(0, line.size() - 2)) {
    if (c == '\r' || c == '\n' || c == '\0') std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  mailtap::smtp::SaslClientOptions o;
  o.mechanism = kMechanisms[(data[0] & 7) % 5];
  o.user = "alice@example.com";
  o.secret = mailtap::smtp::Secret::copy_of("ya29.token-or-password");
  o.host = "smtp.example.com";
  o.port = 587;
  o.max_line = (data[0] & 8) != 0 ? 90 : 12288;  // 90: XOAUTH2 waits for the go-ahead
  const std::size_t max_line = o.max_line;
  mailtap::smtp::SaslClient client(std::move(o));

  int sends = 0;
  SaslStep step = client.start();
  if (step.kind == SaslStep::Kind::send) {
    check_line(step, max_line);
    ++sends;
  }
  mailtap::smtp::ReplyParser parser;
  parser.feed(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  while (auto reply = parser.next()) {
    const bool was_done = client.done();
    step = client.on_reply(*reply);
    if (step.kind == SaslStep::Kind::send) {
      if (was_done) std::abort();
      check_line(step, max_line);
      if (++sends > 4) std::abort();  // AUTH, two LOGIN answers, a cancel at the most
    }
    if ((step.kind == SaslStep::Kind::succeeded) != client.succeeded()) std::abort();
  }
  if (const auto& failure = client.failure()) {
    if (client.succeeded()) std::abort();
    const std::string line = mailtap::smtp::explain_auth_failure(
        {client.mechanism(), client.user(), "smtp.example.com"}, *failure);
    if (line.size() > mailtap::smtp::kMaxExplanation || line.size() < 4) std::abort();
    for (char c : line) {
      if (c < 0x20 || c > 0x7e) std::abort();
    }
  }
  return 0;
}
