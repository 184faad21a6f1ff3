// `mailtap prune --before DATE|--keep N`: retention. Deletes whole sessions (their events,
// certificates, messages and recipients go with them through ON DELETE CASCADE), then VACUUMs
// so the space and the deleted bytes leave the file. Sessions still in progress are kept,
// except with --before when they started and last recorded anything before that time (their
// writer died).
#include <memory>

#include "proxy/session/log.hpp"
#include "storage/timestamp.hpp"
#include "tools/commands.hpp"
#include "tools/json_writer.hpp"
#include "tools/record_db.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

using storage::Statement;

struct PruneArgs {
  ToolOptions common;
  std::string before;
  std::int64_t keep = -1;  // -1: not given
  bool dry_run = false;
};

struct Victim {
  std::int64_t id = 0;
  std::string started, ended, client, upstream, outcome;
  std::int64_t events = 0, messages = 0;
};

std::string counted(std::int64_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

int run_prune(const PruneArgs& a) {
  if (a.before.empty() && a.keep < 0) {
    log::error("prune: give --before DATE, --keep N, or both");
    return 2;
  }
  std::optional<std::string> before;
  if (!a.before.empty()) {
    const auto t = parse_time_spec(a.before, Clock::now());
    if (!t) {
      log::error("prune: --before: not a date or age: \"" + a.before +
                 "\" (use 2026-11-24, 2026-11-24T20:00, or 90s/30m/2h/3d/1w)");
      return 2;
    }
    before = storage::format_timestamp(*t);
  }
  std::string error;
  const std::string path = a.common.database_path(error);
  if (path.empty()) {
    log::error("prune: no database path: " + error + " (give --db PATH)");
    return 1;
  }
  storage::Database db;
  const auto mode = a.dry_run ? storage::OpenMode::read_only : storage::OpenMode::read_write;
  if (!open_record_db(path, mode, db, error)) {
    log::error("prune: " + error);
    return 1;
  }

  // Completed sessions match --before by start time; an open one only if nothing was recorded
  // for it since --before either (a live session keeps adding events). --keep protects the N
  // newest completed sessions.
  std::string where = "1";
  if (before)
    where +=
        " AND s.started_at < ?1 AND (s.ended_at IS NOT NULL OR "
        "coalesce((SELECT max(at) FROM events e WHERE e.session_id = s.id), s.started_at) < ?1)";
  else
    where += " AND s.ended_at IS NOT NULL";
  if (a.keep >= 0)
    where +=
        " AND s.id NOT IN (SELECT id FROM sessions WHERE ended_at IS NOT NULL "
        "ORDER BY started_at DESC, id DESC LIMIT ?2)";
  const std::string select =
      "SELECT s.id, s.started_at, coalesce(s.ended_at, ''), s.client_address, "
      "s.upstream_host || ':' || s.upstream_port, coalesce(s.outcome, 'in_progress'), "
      "(SELECT count(*) FROM events e WHERE e.session_id = s.id), "
      "(SELECT count(*) FROM messages m WHERE m.session_id = s.id) "
      "FROM sessions s WHERE " +
      where + " ORDER BY s.started_at, s.id";

  // Select and delete in one write transaction so a session cannot end or start in between.
  if (!a.dry_run) {
    if (auto s = db.exec("BEGIN IMMEDIATE"); !s.ok()) {
      log::error("prune: " + s.message);
      return 1;
    }
  }
  auto fail = [&](const std::string& message) {
    if (!a.dry_run) db.exec("ROLLBACK");
    log::error("prune: " + message);
    return 1;
  };
  Statement st;
  if (auto s = db.prepare(select, st); !s.ok()) return fail(s.message);
  if (before) st.bind_text(1, *before);
  if (a.keep >= 0) st.bind_int(2, a.keep);
  std::vector<Victim> victims;
  Statement::Step step;
  while ((step = st.step()) == Statement::Step::row) {
    victims.push_back({st.column_int(0), st.column_text(1), st.column_text(2), st.column_text(3),
                       st.column_text(4), st.column_text(5), st.column_int(6), st.column_int(7)});
  }
  if (step == Statement::Step::error) return fail(st.last_error().message);
  st.reset();

  if (!a.dry_run && !victims.empty()) {
    Statement del;
    if (auto s = db.prepare("DELETE FROM sessions WHERE id = ?1", del); !s.ok())
      return fail(s.message);
    for (const auto& v : victims) {
      del.bind_int(1, v.id);
      if (auto s = del.run(); !s.ok()) return fail(s.message);
    }
  }
  if (!a.dry_run) {
    if (auto s = db.exec("COMMIT"); !s.ok()) return fail(s.message);
  }
  std::string vacuum_warning;
  if (!a.dry_run && !victims.empty()) {
    if (auto s = db.exec("VACUUM"); !s.ok())
      vacuum_warning =
          "VACUUM failed (" + s.message + "); the sessions are deleted but the file did not shrink";
    else
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  std::int64_t events = 0, messages = 0;
  for (const auto& v : victims) {
    events += v.events;
    messages += v.messages;
  }
  std::string out;
  if (a.common.json) {
    JsonWriter w;
    w.begin_object().key("dry_run").value(a.dry_run).key("removed").begin_array();
    for (const auto& v : victims) {
      w.begin_object().key("id").value(v.id).key("started_at").value(v.started);
      w.key("ended_at");
      if (v.ended.empty())
        w.null();
      else
        w.value(v.ended);
      w.key("client_address").value(v.client).key("upstream").value(v.upstream);
      w.key("outcome").value(v.outcome).key("events").value(v.events);
      w.key("messages").value(v.messages).end_object();
    }
    w.end_array().key("events").value(events).key("messages").value(messages);
    w.key("vacuumed").value(!a.dry_run && !victims.empty() && vacuum_warning.empty());
    w.end_object();
    out = w.take() + "\n";
  } else {
    const char* verb = a.dry_run ? "would remove" : "removed";
    for (const auto& v : victims)
      out += std::string(verb) + " session " + std::to_string(v.id) + "  " + v.started + "  " +
             v.client + " -> " + v.upstream + "  " + v.outcome + "  (" +
             counted(v.events, "event") + ", " + counted(v.messages, "message") + ")\n";
    out += std::string(a.dry_run ? "would remove " : "removed ") +
           counted(static_cast<std::int64_t>(victims.size()), "session") + ", " +
           counted(events, "event") + ", " + counted(messages, "message");
    if (!a.dry_run && !victims.empty() && vacuum_warning.empty()) out += "; vacuumed";
    out += "\n";
  }
  if (!vacuum_warning.empty()) log::error("prune: warning: " + vacuum_warning);
  return write_stdout(out) ? 0 : 1;
}

}  // namespace

cli::Subcommand add_prune_command(CLI::App& parent) {
  auto args = std::make_shared<PruneArgs>();
  CLI::App* app = parent.add_subcommand(
      "prune", "Delete old sessions (and everything recorded with them), then VACUUM");
  args->common.add_to(*app);
  app->add_option("--before", args->before,
                  "delete sessions started before: ISO date/time (UTC) or an age (30d)");
  app->add_option("--keep", args->keep, "keep only the N newest completed sessions")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--dry-run", args->dry_run, "print what would be removed, change nothing");
  return {app, [args] { return run_prune(*args); }};
}

}  // namespace mailtap::tools
