// Loads a recorded session for the tools that act it out again (replay, mock): opens the
// database read-only, reads the session and builds its RecordedDialogue. Body octets in the
// session's body file stay there, and those recorded before schema v6 past a message's first
// 64 KiB in their rows (ClientStep::file_offset; RecordedDialogue::read_stored reads them from
// the file the rows were read with, or the rows): memory is bounded whatever the body's size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tools/recorded_dialogue.hpp"

namespace mailtap::tools {

// False with `error` set to a message for the user: the database cannot be read, has no
// session `id`, or the session "cannot be <acted>: why" (`acted`: "replayed", "served").
bool load_recorded_dialogue(const std::string& db_path, std::int64_t id, std::string_view acted,
                            RecordedDialogue& out, std::string& error,
                            RefusedLines refused = RefusedLines::cannot_be_sent,
                            PartialBodies partial = PartialBodies::cannot_be_sent);

}  // namespace mailtap::tools
