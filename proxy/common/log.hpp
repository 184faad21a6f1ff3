// mailtap's own lines on stderr (start-up, one line per session start and end, errors) and the
// --transcript lines on stdout. Whole lines only, so concurrent sessions never interleave.
// Nothing passed here may contain a secret: callers pass redacted event text only. The stderr
// lines escape control characters (escape_text), so callers may quote a peer's text as it came.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <string>
#include <string_view>

namespace mailtap::log {

void set_verbosity(int v);  // 0 quiet (errors and warnings only), 1 normal, 2 verbose
int verbosity();
void error(std::string_view line);
void warning(std::string_view line);  // shown as errors are; a lower priority in the journal
void notice(std::string_view line);   // not a failure, but shown as errors are ("listening on")
void info(std::string_view line);
void debug(std::string_view line);
void transcript(std::string_view lines);  // stdout
// Lines written whole elsewhere in mailtap's form, "mailtap: ..." with what they quote escaped
// (CLI11's usage errors, main.cpp), each given the start error() gives its lines: the time in
// a file, the priority in the journal.
void error_lines(std::string_view lines);

// What reads stderr decides how a line starts.
enum class Destination {
  // A terminal, a pipe: "mailtap: ..." as it is.
  plain,
  // The journal (systemd names the stream it gave a unit as stdout/stderr in $JOURNAL_STREAM,
  // "DEVICE:INODE"): "<3>mailtap: ..." with the line's syslog priority (sd-daemon(3)), so that
  // `journalctl -p warning` finds the failures among the session lines.
  journal,
  // A regular file (2>>mailtap.log), where nothing else records when a line was written:
  // "2026-12-06T10:32:55.913Z mailtap: ...", UTC.
  file,
};
enum class Priority { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// The destination of a stderr that fstat(2) describes as `stderr_stat`, `journal_stream` being
// $JOURNAL_STREAM (nullptr when unset).
Destination destination_of(const char* journal_stream, const struct stat& stderr_stat);
// Looks at this process's stderr and environment once, at start (main): until then, and in
// tests, lines are plain.
void detect_destination();
// What goes before "mailtap: " for a line of `priority` written at `now`.
std::string line_start(Destination destination, Priority priority,
                       std::chrono::system_clock::time_point now);

}  // namespace mailtap::log
