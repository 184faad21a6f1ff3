// This process's threads as `ps -L` and `top -H` list them.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mailtap::test_support {

// The ids of this process's threads named `name` (/proc/self/task/*/comm).
inline std::vector<pid_t> threads_named(const std::string& name) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (std::getline(comm, line) && line == name) {
      found.push_back(static_cast<pid_t>(std::stol(task.path().filename().string())));
    }
  }
  return found;
}

}  // namespace mailtap::test_support
