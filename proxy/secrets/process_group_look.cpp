#include "proxy/secrets/process_group_look.hpp"

#include <cerrno>
#include <cstdio>
#include <string>

namespace mailtap::secrets {
namespace {

// Whether a stat line ("pid (comm) state ppid pgrp ...") is of a member of `pgid` that is not a
// zombie. comm may hold anything, ')' and spaces too, so the fields are read after its last ')'.
bool live_member(std::string_view stat, pid_t pgid) {
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return false;
  const std::string after(stat.substr(close + 1));
  char state = 0;
  long ppid = 0;
  long pgrp = 0;
  if (std::sscanf(after.c_str(), " %c %ld %ld", &state, &ppid, &pgrp) != 3) return false;
  return pgrp == pgid && state != 'Z' && state != 'X';
}

}  // namespace

ProcessGroupLook::ProcessGroupLook(pid_t pgid, int kill_error) : pgid_(pgid) {
  // ESRCH: no member at all, not even a zombie. EPERM: members, none of which mailtap may
  // signal (each runs a set-user-ID program): taken for alive without a look, as it cannot
  // signal them anyway. 0: members, perhaps only zombies: /proc tells.
  if (kill_error == ESRCH)
    settle(false);
  else if (kill_error != 0)
    settle(true);
}

void ProcessGroupLook::no_listing() {
  if (!settled_) settle(true);
}

void ProcessGroupLook::seen(const ProcessSeen& process) {
  if (settled_) return;
  if (process.stat_error == 0) {
    if (live_member(process.stat, pgid_)) settle(true);
    return;
  }
  // Gone since the listing.
  if (process.stat_error == ENOENT || process.stat_error == ESRCH) return;
  // Its stat could not be read: not ours to look at (hidepid=1, an LSM: EACCES, EPERM), or no
  // descriptor was left to open it (EMFILE, ENFILE). getpgid() says whether it is in the group,
  // and only another group's process is passed over: a member (one running a set-user-ID
  // program is not ours to look at) may or may not be a zombie, and kill()'s answer stands.
  if (process.group >= 0) {
    if (process.group == pgid_) settle(true);
    return;
  }
  if (process.group_error == ESRCH) return;  // gone since
  settle(true);                              // getpgid refused too: cannot tell
}

}  // namespace mailtap::secrets
