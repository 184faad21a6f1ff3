// `mailtap export ID|--all --format json|jsonl|eml|mbox`: whole sessions as JSON, or the
// message bodies as .eml files or one mboxrd mailbox.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include "proxy/common/log.hpp"
#include "storage/reader.hpp"
#include "tools/commands.hpp"
#include "tools/json_writer.hpp"
#include "tools/number_options.hpp"
#include "tools/session_json.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

using storage::Clock;

struct ExportArgs {
  ToolOptions common;
  std::vector<std::int64_t> ids;
  bool all = false;
  std::string format = "json";
  std::string output;  // "" = stdout
};

// The reverse-path of "MAIL FROM:<a@b> SIZE=1", or "MAILER-DAEMON" for the null path.
std::string envelope_sender(std::string_view mail_from) {
  const auto open = mail_from.find('<');
  const auto close = mail_from.find('>', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos || close == open + 1)
    return "MAILER-DAEMON";
  std::string s(mail_from.substr(open + 1, close - open - 1));
  for (char& c : s)
    if (c == ' ' || static_cast<unsigned char>(c) < 0x20) c = '_';
  return s;
}

std::string asctime_utc(Clock::time_point t) {
  const std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
  return buf;
}

// mboxrd: LF line ends, and every line matching ^>*From  gets one more '>', so readers can
// undo the quoting exactly.
std::string mboxrd_entry(const storage::SessionRow& s, const storage::MessageRow& m) {
  const auto when = m.message.started != Clock::time_point{} ? m.message.started : s.started;
  std::string out = "From " + envelope_sender(m.message.mail_from) + " " + asctime_utc(when) + "\n";
  std::string_view body = m.message.body;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto eol = body.find('\n', pos);
    std::string_view line =
        body.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? body.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t k = 0;
    while (k < line.size() && line[k] == '>') ++k;
    if (line.substr(k).rfind("From ", 0) == 0) out.push_back('>');
    out += line;
    out.push_back('\n');
  }
  out.push_back('\n');  // the blank line that separates messages
  return out;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int emit(const ExportArgs& a, std::string_view bytes) {
  std::string error;
  if (a.output.empty() || a.output == "-") return write_stdout(bytes) ? 0 : 1;
  if (!write_file(a.output, bytes, error)) {
    log::error("export: " + error);
    return 1;
  }
  return 0;
}

// The sessions named on the command line (each once, in the order first named), or every
// session for --all, oldest first.
bool load_sessions(const ExportArgs& a, storage::Reader& reader,
                   std::vector<storage::SessionDetail>& sessions) {
  std::string error;
  std::vector<std::int64_t> ids;
  for (const std::int64_t id : a.ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  if (a.all) {
    storage::SessionFilter filter;
    filter.newest_first = false;
    std::vector<storage::SessionRow> rows;
    if (!reader.list_sessions(filter, rows, error)) {
      log::error("export: " + error);
      return false;
    }
    for (const auto& r : rows) ids.push_back(r.id);
  }
  for (auto id : ids) {
    std::optional<storage::SessionDetail> d;
    if (!reader.load_session(id, d, error)) {
      log::error("export: " + error);
      return false;
    }
    if (!d) {
      log::error("export: no session " + std::to_string(id) + " in " + reader.path());
      return false;
    }
    sessions.push_back(std::move(*d));
  }
  return true;
}

// json: one object for a single session asked by number, else an array; jsonl: one a line.
std::string render_json(const ExportArgs& a, const std::vector<storage::SessionDetail>& sessions) {
  std::string out;
  if (a.format == "json" && !a.all && sessions.size() == 1) {
    JsonWriter w;
    write_session_detail(w, sessions.front());
    out = w.take() + "\n";
  } else if (a.format == "json") {
    JsonWriter w;
    w.begin_array();
    for (const auto& d : sessions) write_session_detail(w, d);
    w.end_array();
    out = w.take() + "\n";
  } else {
    for (const auto& d : sessions) {
      JsonWriter w;
      write_session_detail(w, d);
      out += w.take() + "\n";
    }
  }
  return out;
}

int export_mbox(const ExportArgs& a, const std::vector<storage::SessionDetail>& sessions) {
  std::string out;
  std::size_t count = 0;
  for (const auto& d : sessions)
    for (const auto& m : d.messages) {
      out += mboxrd_entry(d.session, m);
      ++count;
      if (m.message.body_truncated)
        log::error("export: warning: session " + std::to_string(d.session.id) + " message " +
                   std::to_string(m.seq) + " is truncated in the record");
    }
  if (count == 0) log::info("export: no messages in the selected sessions");
  return emit(a, out);
}

// Every message as DIR/session-<id>-message-<n>.eml, each path listed on stdout.
int write_eml_directory(const ExportArgs& a, const std::vector<storage::SessionDetail>& sessions) {
  if (!is_directory(a.output) && ::mkdir(a.output.c_str(), 0700) != 0) {
    log::error("export: " + a.output + ": " + std::strerror(errno));
    return 1;
  }
  std::string dir = a.output;
  if (dir.back() != '/') dir.push_back('/');
  std::string error;
  for (const auto& d : sessions) {
    for (const auto& m : d.messages) {
      const std::string path = dir + "session-" + std::to_string(d.session.id) + "-message-" +
                               std::to_string(m.seq) + ".eml";
      if (!write_file(path, m.message.body, error)) {
        log::error("export: " + error);
        return 1;
      }
      std::string line = path;
      if (m.message.body_truncated) line += "  (truncated in the record)";
      write_stdout(line + "\n");
    }
  }
  return 0;
}

// eml: one file per message. A single message may go to stdout or a file; several need a
// directory, where they are named session-<id>-message-<n>.eml.
int export_eml(const ExportArgs& a, const std::vector<storage::SessionDetail>& sessions) {
  std::size_t total = 0;
  for (const auto& d : sessions) total += d.messages.size();
  if (total == 0) {
    log::error("export: no messages in the selected sessions");
    return 1;
  }
  const bool to_dir = !a.output.empty() && a.output != "-" &&
                      (is_directory(a.output) || a.output.back() == '/' || total > 1);
  if (!to_dir) {
    if (total > 1) {
      log::error("export: " + std::to_string(total) +
                 " messages: give -o DIR to write one .eml file each");
      return 2;
    }
    for (const auto& d : sessions)
      for (const auto& m : d.messages) return emit(a, m.message.body);
  }
  return write_eml_directory(a, sessions);
}

int run_export(const ExportArgs& a) {
  const std::string& f = a.format;
  if (f != "json" && f != "jsonl" && f != "eml" && f != "mbox") {
    log::error("export: unknown --format \"" + f + "\" (json, jsonl, eml or mbox)");
    return 2;
  }
  if (a.all == !a.ids.empty()) {
    log::error("export: give session numbers or --all (not both)");
    return 2;
  }
  auto reader = a.common.open_reader("export");
  if (!reader) return 1;
  std::vector<storage::SessionDetail> sessions;
  if (!load_sessions(a, *reader, sessions)) return 1;
  if (f == "json" || f == "jsonl") return emit(a, render_json(a, sessions));
  if (f == "mbox") return export_mbox(a, sessions);
  return export_eml(a, sessions);
}

}  // namespace

cli::Subcommand add_export_command(CLI::App& parent) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* app = parent.add_subcommand(
      "export", "Export sessions as JSON/JSON Lines, or their messages as .eml files or mbox");
  auto* ids = add_session_ids(*app, "id", args->ids, "session numbers to export");
  auto* all = app->add_flag("--all", args->all, "export every session");
  ids->excludes(all);
  app->add_option("--format", args->format, "json (default), jsonl, eml or mbox")
      ->check(CLI::IsMember({"json", "jsonl", "eml", "mbox"}));
  app->add_option("-o,--output", args->output,
                  "output file (default stdout); for eml with several messages, a directory");
  args->common.add_to(*app, false);
  return {app, [args] { return run_export(*args); }};
}

}  // namespace mailtap::tools
