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

const std::string& outcome_names() {
  static const std::string names = smtp::names_list<smtp::Outcome>() + ", in_progress, cut, open";
  return names;
}

// A session without an end whose writer is gone is "cut": it will never end.
std::string outcome_text(const storage::SessionRow& s) {
  if (s.outcome) return std::string(storage::to_string(*s.outcome));
  return s.writer_gone() ? "cut" : "in_progress";
}

std::string duration_text(const storage::SessionRow& s) {
  if (s.ended) return format_duration(*s.ended - s.started);
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
      log::error("sessions: --since: not a date or age: \"" + a.since +
                 "\" (use 2026-11-24, 2026-11-24T20:00, or 90s/30m/2h/3d/1w)");
      return false;
    }
  }
  if (!a.until.empty()) {
    filter.until = parse_time_spec(a.until, now);
    if (!filter.until) {
      log::error("sessions: --until: not a date or age: \"" + a.until + "\"");
      return false;
    }
  }
  // Each value selects the sessions whose OUTCOME column says it: in_progress and cut (no end,
  // the writer gone) apart, as audit counts them; open is both.
  if (!a.outcome.empty()) {
    if (a.outcome == "in_progress") {
      filter.writer = storage::SessionFilter::Writer::not_gone;
    } else if (a.outcome == "cut") {
      filter.writer = storage::SessionFilter::Writer::gone;
    } else if (a.outcome == "open") {
      filter.only_in_progress = true;
    } else {
      filter.outcome = smtp::parse_name<smtp::Outcome>(a.outcome);
      if (!filter.outcome) {
        log::error("sessions: --outcome: unknown outcome \"" + a.outcome + "\" (" +
                   outcome_names() + ")");
        return false;
      }
    }
  }
  storage::set_upstream_filter(filter, a.upstream);
  filter.user = a.user;
  filter.limit = a.limit;
  return true;
}

std::string render_json(const std::vector<storage::SessionSummary>& rows) {
  JsonWriter w;
  w.begin_array();
  for (const auto& row : rows) write_session_summary(w, row);
  w.end_array();
  std::string out = w.take();
  out.push_back('\n');
  return out;
}

// The header row and one row of plain cells a session. Column values come from the network:
// escaped as the transcript escapes wire text, which leaves printable ASCII only, so a cell's
// width is its size.
std::vector<std::vector<std::string>> table_cells(
    const std::vector<storage::SessionSummary>& rows) {
  std::vector<std::vector<std::string>> table;
  table.push_back({"ID", "START (UTC)", "DURATION", "CLIENT", "UPSTREAM", "TLS", "OUTCOME", "USER",
                   "MSGS", "LAST REPLY"});
  for (const auto& row : rows) {
    const auto& s = row.session;
    table.push_back({
        std::to_string(s.id),
        format_utc(s.started),
        duration_text(s),
        escape_line(s.client_address),
        escape_line(net::host_port_label(s.upstream_host, s.upstream_port)),
        s.tls_version.empty() ? "-" : escape_line(s.tls_version) + (s.insecure ? "!" : ""),
        outcome_text(s),
        s.auth_user.empty() ? "-" : escape_line(s.auth_user),
        std::to_string(row.messages),
        row.last_reply.empty() ? "-" : escape_line(row.last_reply),
    });
  }
  return table;
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

std::string render_table(const std::vector<storage::SessionSummary>& rows, const Style& style) {
  const auto table = table_cells(rows);
  std::vector<std::size_t> widths(table[0].size(), 0);
  for (const auto& r : table)
    for (std::size_t c = 0; c < r.size(); ++c) widths[c] = std::max(widths[c], r[c].size());
  std::string out;
  for (std::size_t ri = 0; ri < table.size(); ++ri) {
    std::string line;
    for (std::size_t c = 0; c < table[ri].size(); ++c) {
      const bool last = c + 1 == table[ri].size();
      line += styled_cell(last ? table[ri][c] : pad(table[ri][c], widths[c]), c,
                          ri == 0 ? nullptr : &rows[ri - 1], style);
      if (!last) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

int run_sessions(const SessionsArgs& a) {
  storage::SessionFilter filter;
  if (!parse_filter(a, filter)) return 2;

  int failure_status = 1;
  auto reader = a.common.open_reader("sessions", failure_status);
  if (!reader) return failure_status;
  std::vector<storage::SessionSummary> rows;
  std::string error;
  if (!reader->session_summaries(filter, rows, error)) {
    log::error("sessions: " + error);
    return 1;
  }
  if (a.common.json) return write_stdout(render_json(rows)) ? 0 : 1;

  std::string out = render_table(rows, a.common.stdout_style());
  if (rows.empty())
    out =
        "no sessions recorded" + std::string(filter.since || filter.until || !a.upstream.empty() ||
                                                     !a.outcome.empty() || !a.user.empty()
                                                 ? " match these filters\n"
                                                 : "\n");
  return write_stdout(out) ? 0 : 1;
}

}  // namespace

cli::Subcommand add_sessions_command(CLI::App& parent) {
  auto args = std::make_shared<SessionsArgs>();
  CLI::App* app = parent.add_subcommand("sessions", "List recorded sessions, newest first");
  args->common.add_to(*app);
  args->common.add_color_to(*app);
  app->add_option("--since", args->since,
                  "only sessions started at or after: ISO date/time (UTC) or an age (2h, 3d)");
  app->add_option("--until", args->until, "only sessions started before: ISO date/time or age");
  app->add_option("--upstream", args->upstream,
                  "only sessions to this upstream host, or HOST:PORT");
  app->add_option("--outcome", args->outcome,
                  "only sessions that ended so (" + smtp::names_list<smtp::Outcome>() +
                      "), in_progress (no end, running), cut (no end: the process recording "
                      "it died) or open (both)");
  app->add_option("--user", args->user, "only sessions authenticated as this user");
  const NumberKind limit{"a number of sessions", "a whole number such as 20, or 0 for all"};
  add_number_option(*app, "--limit", limit, args->limit, "at most this many sessions (0: all)");
  return {app, [args] { return run_sessions(*args); }};
}

}  // namespace mailtap::tools
