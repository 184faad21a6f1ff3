// Whether a process group still has a member that is not a zombie, decided from what kill() and
// /proc said: the sans-IO half of process_group_alive (run_command.hpp), which does the asking.
// kill(-pgid, 0) counts zombies, so each process /proc lists is looked at in turn, and the first
// one that settles the question stops the look.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

namespace mailtap::secrets {

// What was learnt of one process /proc listed.
struct ProcessSeen {
  // The errno of opening or reading its /proc/PID/stat; 0: `stat` holds what was read.
  int stat_error = 0;
  std::string_view stat;
  // Where the stat could not be read: getpgid(PID), or -1 and its errno in `group_error`.
  pid_t group = -1;
  int group_error = 0;
};

class ProcessGroupLook {
 public:
  // `kill_error`: the errno of kill(-pgid, 0), 0 when it succeeded.
  ProcessGroupLook(pid_t pgid, int kill_error);

  // Whether the answer is known, and no more process need be looked at.
  bool settled() const { return settled_; }
  // /proc cannot be listed (no descriptor left, not mounted): kill()'s answer stands.
  void no_listing();
  void seen(const ProcessSeen& process);
  // Once every listed process was seen (or the look settled): whether the group lives.
  bool alive() const { return alive_; }

 private:
  void settle(bool alive) {
    alive_ = alive;
    settled_ = true;
  }

  pid_t pgid_;
  bool alive_ = false;
  bool settled_ = false;
};

}  // namespace mailtap::secrets
