// The lenient JSON readers of OAuth: the error a server puts in a 334 challenge, and what a
// token command prints. Beyond not crashing: values that reach replies are printable and
// bounded, unescaping never grows, and a token accepted from a command is a bearer token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/secrets/token_output.hpp"
#include "proxy/smtp/json_object.hpp"
#include "proxy/smtp/oauth_error.hpp"
#include "proxy/smtp/sasl_responses.hpp"

namespace {

void check_printable(std::string_view s, std::size_t max) {
  if (s.size() > max) std::abort();
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (const auto e = mailtap::smtp::parse_oauth_error(in)) {
    for (const std::string* v : {&e->status, &e->schemes, &e->scope, &e->openid_configuration})
      check_printable(*v, 200);
    check_printable(e->summary(), 1000);
    (void)e->meaning();
  }

  if (const auto members = mailtap::smtp::parse_json_object(in)) {
    if (members->size() > 64) std::abort();
    for (const auto& m : *members) {
      if (m.key.data() < in.data() || m.value.data() + m.value.size() > in.data() + in.size())
        std::abort();  // views stay inside the input
      std::string out;
      if (mailtap::smtp::json_unescape(m.value, out) && out.size() > m.value.size()) std::abort();
      mailtap::smtp::Secret s(m.value.size());
      if (mailtap::smtp::json_unescape_into(m.value, s) && s.size() > m.value.size()) std::abort();
    }
  }

  const auto token = mailtap::secrets::parse_token_output(in);
  if (token.value && !mailtap::smtp::is_bearer_token(token.value->token.view())) std::abort();
  if (!token.value) check_printable(token.error, 2000);
  return 0;
}
