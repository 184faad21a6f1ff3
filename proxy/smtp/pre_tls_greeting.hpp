// The greeting of a STARTTLS server as the client is given it. It comes before TLS, where
// nothing authenticates it: anyone on the path may have written it, so it may not act on the
// terminal of the person who reads it (escape sequences, a cleared screen, a new window title).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailtap::smtp {

struct ShownGreeting {
  std::string bytes;        // each line's text escaped (escape_line), its line ending as sent
  std::size_t escaped = 0;  // octets of the text shown as \xHH, \r or \n
};

ShownGreeting pre_tls_greeting_for_client(std::string_view raw);

}  // namespace mailtap::smtp
