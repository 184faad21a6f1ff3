// This process's threads as `ps -L` and `top -H` list them.
#pragma once

#include <sys/types.h>

#include <algorithm>
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

// Those of them that are not in `before` (threads started since that listing).
inline std::vector<pid_t> threads_named_since(const std::string& name,
                                              const std::vector<pid_t>& before) {
  std::vector<pid_t> started = threads_named(name);
  std::erase_if(started, [&](pid_t tid) {
    return std::find(before.begin(), before.end(), tid) != before.end();
  });
  return started;
}

}  // namespace mailtap::test_support
