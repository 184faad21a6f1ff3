#include "proxy/common/user_name.hpp"

#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap {

std::string system_user_name(std::uint32_t uid) {
  const long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr ||
      found->pw_name == nullptr)
    return {};
  // A name from the system's database ends up on a terminal and in a reply: made printable.
  return escape_text(found->pw_name);
}

std::string user_label(std::uint32_t uid) {
  const std::string name = system_user_name(uid);
  const std::string number = "uid " + std::to_string(uid);
  return name.empty() ? number : name + " (" + number + ")";
}

}  // namespace mailtap
