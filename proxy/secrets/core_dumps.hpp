// Keeps a process's secrets out of core files and out of reach of the user's other processes.
// A crash, abort() or failed assertion in a process that holds a password or an OAuth token
// would write it in clear into a core file (in the working directory, or systemd-coredump's
// store, which hands it out again), and any process of the same user could read it from
// /proc/PID/mem or through ptrace (docs/auth.md).
#pragma once

#include <sys/resource.h>

#include <optional>
#include <string>

namespace mailtap::secrets {

// What the process allowed before forbid_core_dumps().
struct CoreDumpSettings {
  int dumpable = 1;
  rlimit core{};
};

// Makes the process not dumpable, which leaves no core file and closes /proc/PID/mem, environ,
// fd and ptrace to the user's other processes (not to root), and lowers its core size limit to
// one byte, which also stops the core a kernel with fs.suid_dumpable=2 would still pipe to
// systemd-coredump or apport. Commands the process runs start dumpable again, but inherit the
// limit. Returns the settings before, or nullopt with `error` set.
std::optional<CoreDumpSettings> forbid_core_dumps(std::string& error);

// Puts back what forbid_core_dumps() found, for a process that turned out to hold no secret.
void allow_core_dumps(const CoreDumpSettings& before);

}  // namespace mailtap::secrets
