// How `mailtap replay` shows its comparison: original and replayed replies side by side, or
// as JSON (--json).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tools/replay_driver.hpp"

namespace mailtap::tools {

struct ReplayHeader {
  std::int64_t original_id = 0;
  std::optional<std::int64_t> replay_id;  // nullopt with --no-record
  std::string target;                     // "smtp.example.com:587"
};

std::string format_replay_text(const ReplayHeader& header, const ReplayReport& report,
                               std::size_t width = 100);
std::string format_replay_json(const ReplayHeader& header, const ReplayReport& report);
// The JSON for a replay that could not run (the server could not be reached, or its
// certificate verified): the shape of format_replay_json's, no replies, and why in "failure".
std::string format_replay_failure_json(const ReplayHeader& header, const std::string& failure);

}  // namespace mailtap::tools
