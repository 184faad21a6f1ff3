// An upstream's EHLO reply, read by parse_capabilities and rewritten by remove_starttls,
// remove_extensions and append_extension (proxy/smtp/capabilities.hpp). Beyond not crashing:
// a rewritten reply is still one well-formed reply with the same code and the same lines but
// the removed ones, no line of it offers STARTTLS (principle 1: the client never sees the
// upstream's STARTTLS), and mechanisms are RFC 4422 names, upper-cased, each once.
//
// Input: the upstream's bytes; every reply the parser takes from them is treated as an EHLO
// reply.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/reply_parser.hpp"

namespace {

using mailtap::smtp::Reply;
using mailtap::smtp::ReplyParser;

std::string_view keyword(std::string_view line) {
  return line.substr(0, line.find_first_of(" ="));
}

// `raw` read again: exactly one reply, all of it.
Reply reparse(const std::string& raw) {
  ReplyParser p;
  p.feed(raw);
  auto r = p.next();
  if (!r || p.buffered() != 0 || r->raw != raw) std::abort();
  return *r;
}

void check_mechanisms(const mailtap::smtp::Capabilities& caps) {
  for (std::size_t i = 0; i < caps.auth_mechanisms.size(); ++i) {
    const std::string& m = caps.auth_mechanisms[i];
    if (m.empty() || m.size() > 20) std::abort();
    for (char c : m) {
      if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) std::abort();
    }
    if (std::count(caps.auth_mechanisms.begin(), caps.auth_mechanisms.end(), m) != 1) std::abort();
    if (!caps.offers_auth(m)) std::abort();
  }
}

// `rewritten` is `original` without the lines whose keyword is `name`.
void check_removed(const Reply& original, const std::string& rewritten, bool removed,
                   std::string_view name) {
  if (!removed) {
    if (rewritten != original.raw) std::abort();
    return;
  }
  const Reply r = reparse(rewritten);
  if (r.code != original.code) std::abort();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < original.lines.size(); ++i) {
    if (i > 0 && mailtap::smtp::iequals(keyword(original.lines[i]), name)) continue;
    if (kept >= r.lines.size() || r.lines[kept] != original.lines[i]) std::abort();
    ++kept;
  }
  if (kept != r.lines.size()) std::abort();
  for (std::size_t i = 1; i < r.lines.size(); ++i) {
    if (mailtap::smtp::iequals(keyword(r.lines[i]), name)) std::abort();
  }
}

void check_reply(const Reply& ehlo) {
  const mailtap::smtp::Capabilities caps = mailtap::smtp::parse_capabilities(ehlo);
  check_mechanisms(caps);

  bool removed = false;
  const std::string without = mailtap::smtp::remove_starttls(ehlo, removed);
  if (removed != caps.starttls) std::abort();
  check_removed(ehlo, without, removed, "STARTTLS");

  // What --local-tls starttls offers instead: one more line, the reply still one reply.
  const Reply offered = reparse(mailtap::smtp::append_extension(without, "STARTTLS"));
  if (offered.code != ehlo.code || offered.lines.back() != "STARTTLS") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ReplyParser p;
  p.feed(std::string_view(reinterpret_cast<const char*>(data), size));
  while (auto r = p.next()) check_reply(*r);
  return 0;
}
