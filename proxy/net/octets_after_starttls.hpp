// What the server sent behind its 220 to STARTTLS, in the same read, before mailtap's handshake
// began: octets that would be read as if they came over TLS (the command injection of
// CVE-2011-0411), unless they are a TLS record of the server's own TLS stack (an alert its
// library sends when it cannot start a handshake at all), which injects nothing but says its
// TLS set-up is broken. Either way the session ends; the words differ, and the record keeps
// the octets themselves as evidence.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::net {

struct OctetsAfterStarttls {
  std::string reason;  // for the 421 after "4.7.0 mailtap: " (and probe), naming `label`
  std::string note;    // for the record: how many octets, and the first ones, escaped
};

// The most octets a note quotes: enough for an injected command or a TLS record's header.
constexpr std::size_t kQuotedOctetsAfterStarttls = 256;

// `octets`: what followed the 220 (at least one); `label`: the server's host:port.
OctetsAfterStarttls describe_octets_after_starttls(std::string_view octets,
                                                   const std::string& label);

}  // namespace mailtap::net
