// What an EHLO reply advertises, and the one change mailtap makes to it: STARTTLS is removed,
// because mailtap owns TLS towards the upstream and the client's side stays plain text.
#pragma once

#include <string>
#include <string_view>

#include "proxy/smtp/reply_parser.hpp"

namespace mailtap::smtp {

struct Capabilities {
  bool starttls = false;
  bool pipelining = false;
  bool chunking = false;
  std::string auth;  // mechanisms after "AUTH", as advertised
};

// Reads extension keywords from the lines after the first (the first is the greeting line).
Capabilities parse_capabilities(const Reply& ehlo_reply);

// Returns `raw` without any STARTTLS line, keeping the reply well formed: if the removed line
// was the last one, the new last line gets "NNN " instead of "NNN-". Line endings of the kept
// lines are preserved byte for byte. `removed` tells whether anything changed.
std::string remove_starttls(const Reply& ehlo_reply, bool& removed);

}  // namespace mailtap::smtp
