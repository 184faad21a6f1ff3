// The name a part of a recorded message is saved under from the page: the file name the mail
// gives it, which the sender chose, made a plain file name before it reaches a response header.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::tools::web {

// `name` (UTF-8, as the page shows it) as one file name: no path separator, control or
// direction-override character, nothing Windows refuses in a name, no leading or trailing dot
// or space, at most kMaxFileNameOctets octets (cut before its extension). Empty when nothing of
// it is left.
std::string safe_file_name(std::string_view name);
inline constexpr std::size_t kMaxFileNameOctets = 150;

// A Content-Disposition value for saving the part as `name` (RFC 6266): `attachment;
// filename="ASCII form"`, and `filename*=UTF-8''...` (RFC 8187) when the name is not all ASCII,
// so a browser saves it under its own name rather than the URL's. `fallback` (mailtap's own,
// "part-2") stands in when safe_file_name leaves nothing of `name`.
std::string attachment_disposition(std::string_view name, std::string_view fallback);

}  // namespace mailtap::tools::web
