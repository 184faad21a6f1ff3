// A reply of mailtap's own whose text may be longer than one reply line allows: RFC 5321
// §4.5.3.1.5 caps a reply line at 512 octets with its CRLF, and a client (or a strict MTA
// relaying through mailtap) may cut or refuse a longer one. Explanations that quote file paths,
// certificate names and a server's words can pass that.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::smtp {

// `code` (three digits) and `text` as one or more reply lines, CRLF each, none longer than
// kMaxExplanation octets without its CRLF: `text` is split at spaces (inside a word longer than a
// line only when it must), every line but the last marked as a continuation ("421-"), and an
// enhanced status code that begins `text` ("4.7.0 ...") repeated on each line, as RFC 3463
// asks of a multi-line reply.
std::string reply_lines(std::string_view code, std::string_view text);

}  // namespace mailtap::smtp
