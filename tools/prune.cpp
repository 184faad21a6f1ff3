// `mailtap prune --before DATE|--keep N`: retention (storage/pruner.hpp does the work).
// Deletes whole sessions, then VACUUMs so the space and the deleted bytes leave the file.
// Sessions still in progress are kept, except with --before when they started and last
// recorded anything before that time (their writer died).
// Exit status: 0; 1 cannot open or write (or --dry-run's list cannot be written); 2 bad option;
// 3 deleted, but VACUUM or the WAL checkpoint could not finish, so the deleted bytes may still be
// in the file; 4 deleted (and vacuumed), but the list of them could not be written to stdout;
// 5 stopped by a database error after deleting some: those are listed, the others are left
// (or all were deleted, but not yet the certificate copies and body files they left).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/net/endpoint.hpp"
#include "storage/pruner.hpp"
#include "storage/timestamp.hpp"
#include "tools/commands.hpp"
#include "tools/json_writer.hpp"
#include "tools/number_options.hpp"
#include "tools/terminal_text.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct PruneArgs {
  ToolOptions common;
  std::string before;
  std::optional<std::size_t> keep;
  bool dry_run = false;
  bool no_vacuum = false;
};

std::string started(const storage::PrunedSession& v) {
  return storage::format_timestamp(v.started);
}

std::string upstream(const storage::PrunedSession& v) {
  return net::host_port_label(v.upstream_host, v.upstream_port);
}

std::string outcome(const storage::PrunedSession& v) {
  return v.outcome ? std::string(storage::to_string(*v.outcome)) : std::string("in_progress");
}

std::string counted(std::int64_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// What to delete, from the arguments; nullopt (after saying why) when they name nothing or
// --before is not a date or age.
std::optional<storage::PruneCriteria> prune_criteria(const PruneArgs& a) {
  if (a.before.empty() && !a.keep) {
    log::error("prune: give --before DATE, --keep N, or both");
    return std::nullopt;
  }
  storage::PruneCriteria criteria;
  criteria.dry_run = a.dry_run;
  criteria.vacuum = !a.no_vacuum;
  criteria.keep = a.keep;
  if (!a.before.empty()) {
    criteria.before = parse_time_spec(a.before, Clock::now());
    if (!criteria.before) {
      log::error("prune: --before: not a date or age: \"" + a.before + "\" (use " +
                 std::string(kTimeSpecForms) + ")");
      return std::nullopt;
    }
  }
  return criteria;
}

struct PrunedTotals {
  std::int64_t events = 0;
  std::int64_t messages = 0;
};

PrunedTotals totals(const std::vector<storage::PrunedSession>& victims) {
  PrunedTotals t;
  for (const auto& v : victims) {
    t.events += v.events;
    t.messages += v.messages;
  }
  return t;
}

std::string render_json(const storage::PruneResult& result, bool dry_run) {
  const PrunedTotals t = totals(result.sessions);
  JsonWriter w;
  w.begin_object().key("dry_run").value(dry_run).key("removed").begin_array();
  for (const auto& v : result.sessions) {
    w.begin_object().key("id").value(v.id).key("started_at").value(started(v));
    w.key("ended_at");
    if (!v.ended)
      w.null();
    else
      w.value(storage::format_timestamp(*v.ended));
    w.key("client_address").value(v.client_address).key("upstream").value(upstream(v));
    w.key("outcome").value(outcome(v)).key("events").value(v.events);
    w.key("messages").value(v.messages).end_object();
  }
  w.end_array().key("events").value(t.events).key("messages").value(t.messages);
  w.key("vacuumed").value(result.vacuumed);
  w.key("not_deleted").value(static_cast<std::int64_t>(result.not_deleted));
  w.key("stray_body_files").value(static_cast<std::int64_t>(result.stray_body_files));
  w.key("unreadable_kept").begin_array();
  for (const std::int64_t id : result.unreadable_kept) w.value(id);
  w.end_array();
  w.key("unended_kept").begin_array();
  for (const auto& k : result.unended_kept) w.value(k.id);
  w.end_array();
  w.end_object();
  return w.take() + "\n";
}

// The addresses come from the record (a client's, a configured host name): escaped as the
// transcript escapes wire text, so they cannot drive the terminal.
std::string render_text(const storage::PruneResult& result, const PruneArgs& a) {
  const bool dry_run = a.dry_run;
  const PrunedTotals t = totals(result.sessions);
  const auto& victims = result.sessions;
  const char* verb = dry_run ? "would remove" : "removed";
  std::string out;
  for (const auto& v : victims)
    out += std::string(verb) + " session " + std::to_string(v.id) + "  " + started(v) + "  " +
           escape_line(v.client_address) + " -> " + escape_line(upstream(v)) + "  " + outcome(v) +
           "  (" + counted(v.events, "event") + ", " + counted(v.messages, "message") + ")\n";
  for (const std::int64_t id : result.unreadable_kept)
    out += "kept session " + std::to_string(id) +
           ": its started_at, ended_at or last record's time is not a timestamp or is out of "
           "range, so its age is unknown (a damaged record: run mailtap audit)\n";
  for (const auto& k : result.unended_kept) {
    out += "kept session " + std::to_string(k.id) +
           ": it has no end (still recorded, or its proxy stopped without ending it: cut), and "
           "one is pruned only once nothing was recorded for it for a week";
    if (k.last_record)
      out += ": after " + storage::format_timestamp(*k.last_record + kLongestDuration);
    out += "\n";
  }
  // In place of the list, why it is empty: a mistyped year (--before 1026-12-01) shows as what
  // it asked for.
  if (victims.empty() && !a.before.empty() && !a.keep)
    out += "no finished session started before " + escape_line(a.before) + "\n";
  out += std::string(dry_run ? "would remove " : "removed ") +
         counted(static_cast<std::int64_t>(victims.size()), "session") + ", " +
         counted(t.events, "event") + ", " + counted(t.messages, "message");
  if (result.stray_body_files != 0)
    out += "; removed " +
           counted(static_cast<std::int64_t>(result.stray_body_files), "stray body file");
  if (result.vacuumed) out += "; vacuumed";
  if (!result.stopped.empty())
    out += "; stopped, " + counted(static_cast<std::int64_t>(result.not_deleted), "session") +
           " not deleted";
  out += "\n";
  return out;
}

int run_prune(const PruneArgs& a) {
  const auto criteria = prune_criteria(a);
  if (!criteria) return 2;
  std::string error;
  const std::string path = a.common.database_path(error);
  if (path.empty()) {
    log::error("prune: " + error);
    return 2;  // usage, as the proxy has it (docs/config.md)
  }
  storage::PruneResult result;
  if (!storage::prune_sessions(path, *criteria, result, error)) {
    log::error("prune: " + a.common.explain_open_error(path, error));
    return 1;
  }
  const std::string out = a.common.json ? render_json(result, a.dry_run) : render_text(result, a);
  if (!result.stopped.empty()) log::error("prune: " + result.stopped);
  if (!result.vacuum_warning.empty()) log::error("prune: warning: " + result.vacuum_warning);
  if (!result.body_files_warning.empty())
    log::error("prune: warning: " + result.body_files_warning);
  // Deleted, but the bytes may still be in the file (3), or not all of it (5, which asks for
  // another run, and that finishes the checkpoint too): a retention job must be able to tell.
  const int pruned = !result.stopped.empty() ? 5 : result.vacuum_warning.empty() ? 0 : 3;
  if (write_stdout(out)) return pruned;
  if (a.dry_run) return 1;  // the list was all it had to give
  // The deletion is committed: only its report is lost, which a script must not take for a
  // prune that failed (1). write_stdout said why.
  log::error("prune: removed " +
             counted(static_cast<std::int64_t>(result.sessions.size()), "session") +
             " all the same; only this list of them is lost");
  return pruned == 0 ? 4 : pruned;
}

}  // namespace

cli::Subcommand add_prune_command(CLI::App& parent) {
  auto args = std::make_shared<PruneArgs>();
  CLI::App* app = parent.add_subcommand(
      "prune", "Delete old sessions (and everything recorded with them), then VACUUM");
  args->common.add_to(*app);
  app->add_option("--before", args->before,
                  "delete sessions started before: ISO date/time (UTC unless it ends in an "
                  "offset such as -05:00) or an age (30d)");
  const NumberKind keep{"a number of sessions", "a whole number such as 10; 0 keeps none"};
  add_number_option(*app, "--keep", keep, args->keep, "keep only the N newest completed sessions");
  app->add_flag("--dry-run", args->dry_run, "print what would be removed, change nothing");
  app->add_flag("--no-vacuum", args->no_vacuum,
                "do not VACUUM: the file keeps its size, and a recording proxy waits less");
  return {app, [args] { return run_prune(*args); }};
}

}  // namespace mailtap::tools
