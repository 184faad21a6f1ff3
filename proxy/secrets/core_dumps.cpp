#include "proxy/secrets/core_dumps.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mailtap::secrets {

std::optional<CoreDumpSettings> forbid_core_dumps(std::string& error) {
  CoreDumpSettings before;
  before.dumpable = ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (before.dumpable < 0 || ::getrlimit(RLIMIT_CORE, &before.core) != 0) {
    error = std::string("cannot read the core dump settings: ") + std::strerror(errno);
    return std::nullopt;
  }
  // 1 rather than 0: the kernel writes no core file smaller than a page, and takes a limit of
  // 1 as "no core" for a core_pattern pipe too, which otherwise gets the core whatever the limit
  // (Debian's systemd-coredump is told the limit is infinite). The soft limit only: the hard
  // one stays, so allow_core_dumps() can raise it again.
  rlimit none = before.core;
  none.rlim_cur = std::min<rlim_t>(1, before.core.rlim_max);
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || ::setrlimit(RLIMIT_CORE, &none) != 0) {
    error = std::string("cannot turn core dumps off: ") + std::strerror(errno);
    return std::nullopt;
  }
  return before;
}

void allow_core_dumps(const CoreDumpSettings& before) {
  ::setrlimit(RLIMIT_CORE, &before.core);
  ::prctl(PR_SET_DUMPABLE, before.dumpable, 0, 0, 0);
}

}  // namespace mailtap::secrets
