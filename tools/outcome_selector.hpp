// What an outcome filter selects, one reading for `mailtap sessions --outcome` and the web page's
// outcome filter (docs/web.md: "as `mailtap sessions --outcome`").
#pragma once

#include <string>
#include <string_view>

#include "storage/reader.hpp"

namespace mailtap::tools {

// `value` into `filter`: an outcome (quit, timeout, ...) selects the sessions that ended so;
// in_progress those without an end whose writer runs, cut those whose writer is gone (as audit
// counts them, apart), open both. False, `filter` untouched, for any other value.
bool select_outcome(std::string_view value, storage::SessionFilter& filter);

// "quit, client_closed, ..., in_progress, cut, open": what select_outcome() takes.
const std::string& outcome_selector_names();

}  // namespace mailtap::tools
