// `mailtap sessions`: one line a recorded session, newest first, with filters.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/net/endpoint.hpp"
#include "storage/reader.hpp"
#include "tools/commands.hpp"
#include "tools/json_writer.hpp"
#include "tools/number_options.hpp"
#include "tools/outcome_selector.hpp"
#include "tools/session_json.hpp"
#include "tools/terminal_text.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct SessionsArgs {
  ToolOptions common;
  std::string since, until, upstream, outcome, user;
  std::size_t limit = 0;
};

// A session without an end whose writer is gone is "cut": it will never end.
std::string outcome_text(const storage::SessionRow& s) {
  if (s.outcome) return std::string(storage::to_string(*s.outcome));
  return s.writer_gone() ? "cut" : "in_progress";
}

std::string duration_text(const storage::SessionRow& s) {
  if (s.ended) {
    const auto length = s.duration();
    if (length) return format_duration(*length);
    return s.duration_unreadable ? "unreadable" : "?";
  }
  return s.writer_gone() ? "-" : "running";
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// The filter from --since, --until, --outcome, --upstream, --user and --limit; false (after
// saying why) when one of them does not parse.
bool parse_filter(const SessionsArgs& a, storage::SessionFilter& filter) {
  const auto now = Clock::now();
  if (!a.since.empty()) {
    filter.since = parse_time_spec(a.since, now);
    if (!filter.since) {
      log::error("sessions: --since: not a date or age: \"" + a.since + "\" (use " +
                 std::string(kTimeSpecForms) + ")");
      return false;
    }
  }
  if (!a.until.empty()) {
    filter.until = parse_time_spec(a.until, now);
    if (!filter.until) {
      log::error("sessions: --until: not a date or age: \"" + a.until + "\" (use " +
                 std::string(kTimeSpecForms) + ")");
      return false;
    }
  }
  // Each value selects the sessions whose OUTCOME column says it; open is in_progress and cut.
  if (!a.outcome.empty() && !select_outcome(a.outcome, filter)) {
    log::error("sessions: --outcome: unknown outcome \"" + a.outcome + "\" (" +
               outcome_selector_names() + ")");
    return false;
  }
  storage::set_upstream_filter(filter, a.upstream);
  filter.user = a.user;
  filter.limit = a.limit;
  return true;
}

// --json: an array of the rows, written as they are read.
int write_json(storage::Reader& reader, const storage::SessionFilter& filter) {
  JsonWriter w;
  bool written = true;
  w.stream_to([&written](std::string_view piece) { return written = write_stdout(piece); });
  w.begin_array();
  std::string error;
  const bool read = reader.for_each_session_summary(
      filter, 1,
      [&](int, const storage::SessionSummary& row) {
        write_session_summary(w, row);
        return written;
      },
      error);
  if (!read) {
    log::error("sessions: " + error);
    return 1;
  }
  if (!written) return 1;
  w.end_array();
  w.string_piece("\n");
  return w.flush() && written ? 0 : 1;
}

// Said under a table that has a `!` in its TLS column, and in --help.
constexpr const char* kInsecureLegend =
    "! after the TLS version: run with --insecure, the server's certificate NOT verified";

const std::vector<std::string>& header_cells() {
  static const std::vector<std::string> header{"ID",       "START (UTC)", "DURATION", "CLIENT",
                                               "UPSTREAM", "TLS",         "OUTCOME",  "USER",
                                               "MSGS",     "LAST REPLY"};
  return header;
}

// A time shown as unreadable (or "?") says why on stderr, the table left as it is.
void warn_if_unreadable(const storage::SessionRow& s) {
  if (s.unreadable.empty()) return;
  log::warning("sessions: session " + std::to_string(s.id) + ": " + escape_line(s.unreadable) +
               " (a damaged record: mailtap audit lists every damaged row)");
}

// A session's plain cells. Column values come from the network: escaped as the transcript
// escapes wire text, which leaves printable ASCII only, so a cell's width is its size.
std::vector<std::string> row_cells(const storage::SessionSummary& row) {
  const auto& s = row.session;
  return {
      std::to_string(s.id),
      s.started_unreadable ? "unreadable" : format_utc(s.started),
      duration_text(s),
      escape_line(s.client_address),
      escape_line(net::host_port_label(s.upstream_host, s.upstream_port)),
      s.tls_version.empty() ? "-" : escape_line(s.tls_version) + (s.insecure ? "!" : ""),
      outcome_text(s),
      s.auth_user.empty() ? "-" : escape_line(s.auth_user),
      std::to_string(row.messages),
      row.last_reply.empty() ? "-" : escape_line(row.last_reply),
  };
}

// A cell coloured by what it says: the header bold, the outcome by how it went, failing replies
// red. `row` is null for the header.
std::string styled_cell(std::string cell, std::size_t column, const storage::SessionSummary* row,
                        const Style& style) {
  if (row == nullptr) return style.bold(cell);
  if (column == 6) {
    const auto& o = row->session.outcome;
    const bool good = o && *o == storage::Outcome::quit;
    const bool bad = o || row->session.writer_gone();
    return good ? style.green(cell) : bad ? style.red(cell) : style.yellow(cell);
  }
  if (column == 9 && row->last_reply_code >= 400) return style.red(cell);
  return cell;
}

// One line of the table, each cell but the last padded to its column's width.
void render_line(const std::vector<std::string>& cells, const std::vector<std::size_t>& widths,
                 const storage::SessionSummary* row, const Style& style, std::string& out) {
  std::string line;
  for (std::size_t c = 0; c < cells.size(); ++c) {
    const bool last = c + 1 == cells.size();
    line += styled_cell(last ? cells[c] : pad(cells[c], widths[c]), c, row, style);
    if (!last) line += "  ";
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out += line;
  out += '\n';
}

// The table, its columns as wide as their widest cell: the rows are read twice, once to size
// the columns, once to write them a few tens of KiB at a time, so memory stays flat however
// many there are. Each read is a batch at a time (Reader::for_each_session_summary), so a
// session in progress may have moved on by the second: a cell grown wider since widens its
// column from that row on.
int write_table(storage::Reader& reader, const storage::SessionFilter& filter, const Style& style,
                const std::string& none) {
  constexpr std::size_t kFlushOctets = std::size_t{64} * 1024;
  std::vector<std::size_t> widths(header_cells().size(), 0);
  const auto widen = [&widths](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) widths[c] = std::max(widths[c], cells[c].size());
  };
  widen(header_cells());
  bool header = false;
  bool insecure = false;  // a row has the `!`: the legend follows the table
  std::string out;
  bool written = true;
  std::string error;
  const bool read = reader.for_each_session_summary(
      filter, 2,
      [&](int pass, const storage::SessionSummary& row) {
        if (pass == 0) {
          widen(row_cells(row));
          warn_if_unreadable(row.session);
          return true;
        }
        if (!header) render_line(header_cells(), widths, nullptr, style, out);
        header = true;
        insecure = insecure || (row.session.insecure && !row.session.tls_version.empty());
        const std::vector<std::string> cells = row_cells(row);
        widen(cells);
        render_line(cells, widths, &row, style, out);
        if (out.size() >= kFlushOctets) {
          written = write_stdout(out);
          out.clear();
        }
        return written;
      },
      error);
  if (!read) {
    log::error("sessions: " + error);
    return 1;
  }
  if (!header) out = none;  // none in the second pass, whatever the first saw
  if (insecure) out += std::string("\n") + kInsecureLegend + "\n";
  return written && write_stdout(out) ? 0 : 1;
}

int run_sessions(const SessionsArgs& a) {
  storage::SessionFilter filter;
  if (!parse_filter(a, filter)) return 2;

  int failure_status = 1;
  auto reader = a.common.open_reader("sessions", failure_status);
  if (!reader) return failure_status;
  if (a.common.json) return write_json(*reader, filter);
  const bool filtered =
      filter.since || filter.until || !a.upstream.empty() || !a.outcome.empty() || !a.user.empty();
  return write_table(
      *reader, filter, a.common.stdout_style(),
      filtered ? "no sessions recorded match these filters\n" : "no sessions recorded\n");
}

}  // namespace

cli::Subcommand add_sessions_command(CLI::App& parent) {
  auto args = std::make_shared<SessionsArgs>();
  CLI::App* app = parent.add_subcommand("sessions", "List recorded sessions, newest first");
  args->common.add_to(*app);
  args->common.add_color_to(*app);
  app->add_option(
      "--since", args->since,
      "only sessions started at or after: ISO date/time (UTC unless it ends in an offset "
      "such as -05:00) or an age (2h, 3d)");
  app->add_option("--until", args->until,
                  "only sessions started before: ISO date/time (as --since) or an age");
  app->add_option("--upstream", args->upstream,
                  "only sessions to this upstream host, or HOST:PORT");
  app->add_option("--outcome", args->outcome,
                  "only sessions that ended so (" + smtp::names_list<smtp::Outcome>() +
                      "), in_progress (no end, running), cut (no end: the process recording "
                      "it died) or open (both)");
  app->add_option("--user", args->user, "only sessions authenticated as this user");
  const NumberKind limit{"a number of sessions", "a whole number such as 20, or 0 for all"};
  add_number_option(*app, "--limit", limit, args->limit, "at most this many sessions (0: all)");
  app->footer(std::string(kInsecureLegend) + " (said under the table when a row has one).");
  return {app, [args] { return run_sessions(*args); }};
}

}  // namespace mailtap::tools
