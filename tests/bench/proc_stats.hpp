// Resource figures of another process from /proc: CPU time, resident memory, threads.
#pragma once

#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace mailtap::bench {

struct ProcSample {
  double cpu_seconds = 0;  // utime + stime
  long rss_kib = 0;        // VmRSS now
  long peak_rss_kib = 0;   // VmHWM: the high-water mark over the process's life
  long threads = 0;
};

inline std::optional<ProcSample> sample_process(long pid) {
  ProcSample s;
  const std::string base = "/proc/" + std::to_string(pid);
  {
    std::ifstream stat(base + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return std::nullopt;
    // The command name is in parentheses and may hold spaces: fields resume after the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // Field 3 (state) is the first after ')'; utime and stime are fields 14 and 15.
    for (int n = 3; n <= 15 && fields >> field; ++n) {
      if (n == 14) utime = std::stoull(field);
      if (n == 15) stime = std::stoull(field);
    }
    s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status(base + "/status");
  std::string line;
  while (std::getline(status, line)) {
    auto value = [&] { return std::stol(line.substr(line.find(':') + 1)); };
    if (line.rfind("VmRSS:", 0) == 0)
      s.rss_kib = value();
    else if (line.rfind("VmHWM:", 0) == 0)
      s.peak_rss_kib = value();
    else if (line.rfind("Threads:", 0) == 0)
      s.threads = value();
  }
  return s;
}

}  // namespace mailtap::bench
