// mailtap's own lines on stderr (start-up, one line per session start and end, errors) and the
// --transcript lines on stdout. Whole lines only, so concurrent sessions never interleave.
// Nothing passed here may contain a secret: callers pass redacted event text only. The stderr
// lines escape control characters (escape_text), so callers may quote a peer's text as it came.
#pragma once

#include <string_view>

namespace mailtap::log {

void set_verbosity(int v);  // 0 quiet (errors only), 1 normal, 2 verbose
int verbosity();
void error(std::string_view line);
void info(std::string_view line);
void debug(std::string_view line);
void transcript(std::string_view lines);  // stdout

}  // namespace mailtap::log
