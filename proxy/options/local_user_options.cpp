#include "proxy/options/local_user_options.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <optional>

#include "proxy/common/decimal_number.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/terminal_escape.hpp"

namespace mailtap::options {

namespace {

// The uid of user `name` in the system's database (getpwnam_r); nullopt if it has none.
std::optional<std::uint32_t> uid_of_name(const std::string& name) {
  const long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr)
    return std::nullopt;
  return found->pw_uid;
}

// The uid the kernel shows for users this process's user namespace does not map, when it maps
// only some (the systemd unit's PrivateUsers=yes); nullopt in the initial namespace, whose map
// is the whole range ("0 0 4294967295").
std::optional<std::uint32_t> unmapped_uid() {
  std::ifstream map("/proc/self/uid_map");
  std::uint64_t inside = 0, outside = 0, count = 0;
  if (!(map >> inside >> outside >> count)) return std::nullopt;
  std::string more;
  if (inside == 0 && outside == 0 && count == 4294967295u && !(map >> more)) return std::nullopt;
  std::ifstream overflow("/proc/sys/kernel/overflowuid");
  std::uint32_t uid = 65534;
  overflow >> uid;
  return uid;
}

}  // namespace

void LocalUserOptions::add_to(CLI::App& app, std::string_view what) {
  app.add_option("--allow-local-user", users,
                 "USER (a name, a uid, or any) who may " + std::string(what) +
                     " besides mailtap's own user; repeatable or comma-separated. Loopback is "
                     "open to every user of this machine: others are refused unless named here")
      ->delimiter(',')
      ->type_name("USER");
}

std::string LocalUserOptions::policy(net::LocalUserPolicy& out) const {
  out = {};
  out.own = ::geteuid();
  out.unmapped = unmapped_uid();
  for (const std::string& user : users) {
    if (user == "any") {
      out.any = true;
      continue;
    }
    if (auto uid = parse_decimal(user, 0, 0xfffffffeu)) {
      out.others.push_back(static_cast<std::uint32_t>(*uid));
    } else if (auto named = uid_of_name(user)) {
      out.others.push_back(*named);
    } else {
      return "--allow-local-user " + escaped_value(user) +
             ": no such user on this system (getent passwd lists them); give a user name, a "
             "numeric uid, or any";
    }
  }
  return {};
}

void announce_local_users(const net::LocalUserPolicy& policy, std::string_view what) {
  const std::string line = net::describe_local_users(policy, what, system_user_name);
  if (policy.any)
    log::warning(line);
  else if (!line.empty())
    log::info(line);
}

}  // namespace mailtap::options
