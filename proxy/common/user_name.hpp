// A local user's name from the system's user database, for messages that name a uid.
#pragma once

#include <cstdint>
#include <string>

namespace mailtap {

// The name the system's user database gives `uid` (getpwuid_r), made printable for a terminal
// or a reply; "" when it has none.
std::string system_user_name(std::uint32_t uid);

}  // namespace mailtap
