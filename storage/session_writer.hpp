// Which process records a session (sessions.writer, schema v8), and whether it still runs: a
// session without an end whose writer is gone was cut (kill -9, a crash, power lost) and will
// never end. Not SQL: the recorder writes the text, the reader judges it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mailtap::storage {

// A process, named so that the name is never another process's: a pid is reused, a pid with
// its start time (in clock ticks since boot) is not until the next boot, and a pid means
// something only in its pid namespace.
struct WriterIdentity {
  std::string boot_id;           // /proc/sys/kernel/random/boot_id
  std::int64_t pid = 0;          // in pid_namespace
  std::uint64_t start_time = 0;  // field 22 of /proc/PID/stat
  std::string pid_namespace;     // readlink /proc/self/ns/pid, e.g. "pid:[4026531836]"
  bool operator==(const WriterIdentity&) const = default;
};

// As stored in sessions.writer: "BOOT_ID PID START_TIME PID_NAMESPACE".
std::string format_writer(const WriterIdentity& w);
// nullopt for text that is not a writer identity (then nothing is known about the writer).
std::optional<WriterIdentity> parse_writer(std::string_view text);

// This process, read from /proc once; nullopt where /proc does not tell (then sessions are
// recorded without a writer, and read as before schema v8).
const std::optional<WriterIdentity>& this_process();

// The start time (field 22) of process `pid` as this process's /proc shows it; nullopt if it
// has none (no such process, a zombie: a process that has exited and not been reaped yet).
std::optional<std::uint64_t> process_start_time(std::int64_t pid);

// Field 22 of a /proc/PID/stat line; nullopt if the line is malformed or its process a zombie.
std::optional<std::uint64_t> start_time_of_stat(std::string_view stat_line);

// What a reader can say about a session's record.
enum class RecordState {
  ended,      // the session ended: its record is complete
  recording,  // no end yet, and the process recording it runs
  cut,        // no end, and the process recording it is gone: it will never end
  unknown,    // no end, and nothing tells whether its writer runs (recorded before schema v8,
              // or by a process in another pid namespace)
};

// The decision, from the session's sessions.writer (nullopt: NULL) as seen by process `here`,
// which looks processes up with `start_time_of` (process_start_time in real use).
RecordState judge_record(
    bool ended, const std::optional<std::string>& writer, const std::optional<WriterIdentity>& here,
    const std::function<std::optional<std::uint64_t>(std::int64_t)>& start_time_of);

// judge_record() as this process sees it.
RecordState record_state(bool ended, const std::optional<std::string>& writer);

}  // namespace mailtap::storage
