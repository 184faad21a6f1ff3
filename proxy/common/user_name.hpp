// A local user's name from the system's user database, for messages that name a uid.
#pragma once

#include <cstdint>
#include <string>

namespace mailtap {

// The name the system's user database gives `uid` (getpwuid_r), made printable for a terminal
// or a reply; "" when it has none.
std::string system_user_name(std::uint32_t uid);

// "root (uid 0)", or "uid 1234" for a uid the user database has no name for: how a message
// names the owner of a file or the user mailtap runs as.
std::string user_label(std::uint32_t uid);

}  // namespace mailtap
