#include "storage/schema.hpp"

#include <openssl/rand.h>

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "proxy/common/log.hpp"
#include "proxy/common/text.hpp"
#include "proxy/smtp/record_vocabulary.hpp"

#include "storage/other_connections.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {

namespace {

using smtp::AuthBy;
using smtp::Direction;
using smtp::EventKind;
using smtp::Outcome;
using smtp::Phase;
using smtp::TlsMode;
using smtp::VerifyStatus;

// "'a', 'b', 'c'": an enum's names as an SQL list, from its one name table.
template <typename Enum>
std::string sql_names() {
  std::string out;
  for (std::string_view n : smtp::Vocabulary<Enum>::names) {
    if (!out.empty()) out += ", ";
    out += "'";
    out += n;
    out += "'";
  }
  return out;
}

// "(x <> 'a' AND x <> 'b' ...)": true when `column` holds none of an enum's names. Spelled as
// comparisons, not `NOT IN (...)`: SQLite builds a temporary b-tree for an IN list of more than
// two constants on every run of the statement, which made each recorded event cost a page cache
// allocated and freed (and returned to the kernel) several times over.
template <typename Enum>
std::string sql_none_of(std::string_view column) {
  std::string out = "(";
  for (std::string_view n : smtp::Vocabulary<Enum>::names) {
    if (out.size() > 1) out += " AND ";
    out += column;
    out += " <> '";
    out += n;
    out += "'";
  }
  return out + ")";
}

template <typename Enum>
std::string sql_name(Enum e) {
  return "'" + std::string(smtp::to_string(e)) + "'";
}

// v1, first half: the sessions and their certificates.
std::string v1_sessions() {
  return R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value
);

CREATE TABLE sessions (
  id                       INTEGER PRIMARY KEY,
  started_at               TEXT NOT NULL,
  ended_at                 TEXT,
  client_address           TEXT NOT NULL,
  listen_address           TEXT NOT NULL,
  upstream_host            TEXT NOT NULL,
  upstream_port            INTEGER NOT NULL,
  resolved_address         TEXT,
  tls_mode                 TEXT NOT NULL,
  ehlo_name                TEXT NOT NULL,
  tls_version              TEXT,
  cipher                   TEXT,
  sni                      TEXT,
  verified_name            TEXT,
  verify_result            TEXT,
  insecure                 INTEGER NOT NULL DEFAULT 0 CHECK (insecure IN (0, 1)),
  outcome                  TEXT,
  outcome_reason           TEXT,
  bytes_client_to_upstream INTEGER,
  bytes_upstream_to_client INTEGER,
  auth_user                TEXT,
  replay_of                INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
  CHECK ((ended_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX sessions_by_started_at ON sessions(started_at);
CREATE INDEX sessions_by_upstream ON sessions(upstream_host, started_at);
CREATE INDEX sessions_by_outcome ON sessions(outcome, started_at);
CREATE INDEX sessions_by_auth_user ON sessions(auth_user, started_at) WHERE auth_user IS NOT NULL;
CREATE INDEX sessions_by_replay_of ON sessions(replay_of) WHERE replay_of IS NOT NULL;

CREATE TABLE certificates (
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  position   INTEGER NOT NULL CHECK (position >= 0),
  der        BLOB NOT NULL,
  sha256     TEXT NOT NULL,
  subject    TEXT NOT NULL,
  issuer     TEXT NOT NULL,
  not_before TEXT NOT NULL,
  not_after  TEXT NOT NULL,
  PRIMARY KEY (session_id, position)
);
)sql";
}

// v1, second half: what happened in a session (events) and the mail it carried.
std::string v1_records() {
  return R"sql(
CREATE TABLE events (
  id              INTEGER PRIMARY KEY,
  session_id      INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  seq             INTEGER NOT NULL,
  at              TEXT,
  direction       TEXT NOT NULL,
  phase           TEXT NOT NULL,
  kind            TEXT NOT NULL,
  verb            TEXT,
  reply_code      INTEGER,
  enhanced_status TEXT,
  bytes           BLOB NOT NULL,
  wire_size       INTEGER NOT NULL,
  redacted        INTEGER NOT NULL CHECK (redacted IN (0, 1)),
  note            TEXT,
  UNIQUE (session_id, seq)
);

CREATE TABLE messages (
  id             INTEGER PRIMARY KEY,
  session_id     INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  seq            INTEGER NOT NULL,
  mail_from      TEXT NOT NULL,
  size           INTEGER NOT NULL,
  sha256         TEXT,
  body           BLOB NOT NULL,
  body_truncated INTEGER NOT NULL CHECK (body_truncated IN (0, 1)),
  via_bdat       INTEGER NOT NULL CHECK (via_bdat IN (0, 1)),
  final_code     INTEGER,
  final_reply    TEXT,
  started_at     TEXT,
  finished_at    TEXT,
  UNIQUE (session_id, seq)
);

CREATE TABLE recipients (
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  position   INTEGER NOT NULL CHECK (position >= 0),
  command    TEXT NOT NULL,
  reply_code INTEGER,
  reply      TEXT,
  PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
)sql";
}

// v10: messages.recipients_left_out and accepted_recipients_left_out, filled for the rows
// written before, in this order:
// - from the note recorded with a message that left some out ("recipients left out: N RCPTs
//   (M accepted) of message transaction T ..."; transaction_tracker.hpp), the one place its
//   text is still read;
// - 0 for rows written before schema v4 (no mail_transaction), when every RCPT had its row;
// - 0 where the events show as many RCPTs relayed in the message's transaction (those between
//   its MAIL and the next, mail_transaction counting MAILs relayed) as the message has rows;
// - NULL (unknown) for the rest: rows recorded after messages began to leave RCPTs out and
//   before the note said how many, or a transaction the events do not delimit plainly.
// Spelled out here, not from the current vocabulary or note: a shipped migration never
// changes.
std::string v10_recipients_left_out() {
  return R"sql(
ALTER TABLE messages ADD COLUMN recipients_left_out INTEGER
  CHECK (recipients_left_out >= 0);
ALTER TABLE messages ADD COLUMN accepted_recipients_left_out INTEGER
  CHECK (accepted_recipients_left_out >= 0);
UPDATE messages SET recipients_left_out = n.rcpts, accepted_recipients_left_out = n.accepted
FROM (SELECT session_id, mail_transaction,
             CAST(substr(note, 22) AS INTEGER) AS rcpts,
             CAST(substr(note, instr(note, ' RCPTs (') + 8) AS INTEGER) AS accepted
      FROM events
      WHERE kind = 'note' AND mail_transaction IS NOT NULL
        AND note GLOB 'recipients left out: [0-9]* RCPTs ([0-9]* accepted) *') AS n
WHERE messages.session_id = n.session_id AND messages.mail_transaction = n.mail_transaction;
UPDATE messages SET recipients_left_out = 0, accepted_recipients_left_out = 0
WHERE mail_transaction IS NULL;
UPDATE messages SET recipients_left_out = 0, accepted_recipients_left_out = 0
FROM (SELECT session_id, tx, sum(verb = 'RCPT') AS rcpts
      FROM (SELECT session_id, verb,
                   sum(verb = 'MAIL') OVER (PARTITION BY session_id ORDER BY seq) AS tx
            FROM events
            WHERE direction = 'client_to_upstream' AND kind = 'command'
              AND verb IN ('MAIL', 'RCPT')
              AND session_id IN (SELECT session_id FROM messages
                                 WHERE recipients_left_out IS NULL))
      GROUP BY session_id, tx) AS relayed
WHERE messages.recipients_left_out IS NULL AND messages.session_id = relayed.session_id
  AND messages.mail_transaction = relayed.tx
  AND relayed.rcpts = (SELECT count(*) FROM recipients r WHERE r.message_id = messages.id);
)sql";
}

// Forward migrations; entry i takes the schema from version i to i + 1. Each runs inside the
// same transaction as the user_version bump, so a crash leaves either the old or the new schema.
// Vocabulary columns spell their CHECK lists from the name tables (record_vocabulary.hpp). A
// CHECK cannot change once created: a name added later to such a column's enum needs a
// migration that rebuilds the constraint. Columns without a CHECK are guarded by the
// vocabulary triggers below, which follow the name tables by themselves.
std::vector<std::string> migrations() {
  return {
      // v1: initial schema.
      v1_sessions() + v1_records(),
      // v2: who authenticated the session (mailtap itself with --auth-user, or the client),
      // and how; whether its TLS session was resumed.
      "ALTER TABLE sessions ADD COLUMN auth_mechanism TEXT;\n"
      "ALTER TABLE sessions ADD COLUMN auth_by TEXT CHECK (auth_by IN (" +
          sql_names<AuthBy>() +
          "));\n"
          "ALTER TABLE sessions ADD COLUMN tls_resumed INTEGER CHECK (tls_resumed IN (0, 1));\n",
      // v3: the certificate verification as a status and a reason instead of one free text
      // (which two spellings of "--insecure" made ambiguous). Old rows are carried over: both
      // spellings of an --insecure session, "ok", and any other text as a failure's reason.
      "ALTER TABLE sessions ADD COLUMN verify_status TEXT CHECK (verify_status IN (" +
          sql_names<VerifyStatus>() +
          "));\n"
          "ALTER TABLE sessions ADD COLUMN verify_reason TEXT;\n"
          "UPDATE sessions SET verify_status = CASE"
          " WHEN verify_result = 'ok' THEN " +
          sql_name(VerifyStatus::ok) +
          " WHEN verify_result IN ('skipped (--insecure)', 'not verified (--insecure)') THEN " +
          sql_name(VerifyStatus::not_verified_insecure) + " ELSE " +
          sql_name(VerifyStatus::failed) +
          " END,"
          " verify_reason = CASE WHEN verify_result IN ('ok', 'skipped (--insecure)',"
          " 'not verified (--insecure)') THEN NULL ELSE verify_result END"
          " WHERE verify_result IS NOT NULL;\n"
          "ALTER TABLE sessions DROP COLUMN verify_result;\n",
      // v4: a message body is stored once, as the data / bdat_chunk events that relayed it,
      // which carry the ordinal of its mail transaction; such messages keep an empty `body`.
      // Rows written before keep their body in `messages.body` (mail_transaction NULL).
      "ALTER TABLE events ADD COLUMN mail_transaction INTEGER;\n"
      "ALTER TABLE messages ADD COLUMN mail_transaction INTEGER;\n",
      // v5: the client's side of the session was TLS (--local-tls), and which version.
      "ALTER TABLE sessions ADD COLUMN client_tls_version TEXT;\n",
      // v6: a body event past its message's first 64 KiB keeps its bytes in the session's body
      // file ("<database>-bodies/<session id>"), at file_offset, file_length octets long; its
      // `bytes` is then empty. NULL for bytes stored in the row, as every event before v6.
      "ALTER TABLE events ADD COLUMN file_offset INTEGER CHECK (file_offset >= 0);\n"
      "ALTER TABLE events ADD COLUMN file_length INTEGER CHECK (file_length >= 0);\n",
      // v7: a certificate's DER is stored once, by its SHA-256, however many sessions saw it
      // (every session to one server sees the same chain). Rows of `certificates` written
      // since keep an empty `der`; rows written before keep theirs.
      "CREATE TABLE certificate_ders (\n"
      "  sha256 TEXT PRIMARY KEY NOT NULL,\n"
      "  der    BLOB NOT NULL\n"
      ");\n",
      // v8: the process recording the session ("BOOT_ID PID START_TIME PID_NAMESPACE",
      // session_writer.hpp), so a reader tells a session cut by a killed proxy from a running
      // one. NULL in rows written before.
      "ALTER TABLE sessions ADD COLUMN writer TEXT;\n",
      // v9: the client certificate mailtap presented to the upstream (--client-cert): its
      // SHA-256 and subject, as the certificates table spells a server's. NULL when it presented
      // none, and in rows written before.
      "ALTER TABLE sessions ADD COLUMN client_cert_sha256 TEXT;\n"
      "ALTER TABLE sessions ADD COLUMN client_cert_subject TEXT;\n",
      // v10: how many RCPTs a message's recipients leave out (and how many of those the server
      // accepted), a column written with the row instead of a count read from a note's text.
      v10_recipients_left_out(),
      // v11: how long the session lasted by the proxy's steady clock, accept to end, in
      // microseconds: ended_at - started_at is wall clock, which a clock step (NTP, date -s)
      // during the session makes wrong or negative. NULL while a session runs, and in rows
      // written before: their length was never measured, and is not made up here.
      "ALTER TABLE sessions ADD COLUMN duration_us INTEGER CHECK (duration_us >= 0);\n",
  };
}

// Triggers that refuse a value outside the vocabulary in the columns the old migrations left
// without a CHECK. They are generated from the name tables and rewritten whenever a writer
// opens the file with a different vocabulary, so they never lag behind the enums. They guard
// against every other writer: the recorder's own connection runs no triggers (its names come
// from those tables), so a trigger that must see mailtap's writes cannot live in the schema.
struct VocabularyTrigger {
  std::string name;
  std::string sql;
};

std::vector<VocabularyTrigger> vocabulary_triggers() {
  const auto refuse = [](std::string_view what) {
    return " BEGIN SELECT RAISE(ABORT, '" + std::string(what) +
           " outside mailtap''s vocabulary'); END";
  };
  return {
      {"events_vocabulary", "CREATE TRIGGER events_vocabulary BEFORE INSERT ON events WHEN " +
                                sql_none_of<Direction>("NEW.direction") + " OR " +
                                sql_none_of<Phase>("NEW.phase") + " OR " +
                                sql_none_of<EventKind>("NEW.kind") +
                                refuse("events: a direction, phase or kind")},
      {"sessions_vocabulary_insert",
       "CREATE TRIGGER sessions_vocabulary_insert BEFORE INSERT ON sessions WHEN " +
           sql_none_of<TlsMode>("NEW.tls_mode") + refuse("sessions: a tls_mode")},
      {"sessions_vocabulary_outcome",
       "CREATE TRIGGER sessions_vocabulary_outcome BEFORE UPDATE OF outcome ON sessions WHEN "
       "NEW.outcome IS NOT NULL AND " +
           sql_none_of<Outcome>("NEW.outcome") + refuse("sessions: an outcome")},
  };
}

Status refresh_vocabulary_triggers(Database& db) {
  Statement current;
  if (Status st =
          db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1", current);
      !st.ok()) {
    return st;
  }
  for (const VocabularyTrigger& t : vocabulary_triggers()) {
    current.bind_text(1, t.name);
    const bool same = current.step() == Statement::Step::row && current.column_text(0) == t.sql;
    current.reset();
    if (same) continue;
    if (Status st = db.exec("DROP TRIGGER IF EXISTS " + t.name); !st.ok()) return st;
    if (Status st = db.exec(t.sql); !st.ok()) return st;
  }
  return {};
}

std::string hex32(std::int64_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08llx", static_cast<unsigned long long>(v) & 0xffffffffULL);
  return buf;
}

// Reads the header fields and decides whether the file is a mailtap database (or an empty file
// that may become one). `version` is 0 for an empty file. Reads only.
Status check_identity(Database& db, std::int64_t& version) {
  std::int64_t app_id = 0;
  std::int64_t objects = 0;
  if (Status st = db.query_int("PRAGMA application_id", app_id); !st.ok()) return st;
  if (Status st = db.query_int("PRAGMA user_version", version); !st.ok()) return st;
  if (Status st = db.query_int("SELECT count(*) FROM sqlite_schema", objects); !st.ok()) return st;
  const std::string where = "'" + db.path() + "'";
  if (app_id == 0) {
    if (version == 0 && objects == 0) return {};  // empty: ours to initialise
    return Status::error(kSqliteNotADb,
                         where +
                             " is an SQLite database but not a mailtap database (no mailtap "
                             "application id)");
  }
  if (app_id != kApplicationId) {
    return Status::error(
        kSqliteNotADb, where + " is not a mailtap database (application_id " + hex32(app_id) + ")");
  }
  if (version > kSchemaVersion) {
    return Status::error(kSqliteError, where + " has schema version " + std::to_string(version) +
                                           ", newer than this mailtap understands (" +
                                           std::to_string(kSchemaVersion) +
                                           "); use a newer mailtap");
  }
  if (version < 1) {
    return Status::error(kSqliteError, where +
                                           " has the mailtap application id but no schema "
                                           "version; the file is damaged");
  }
  return {};
}

Status migrate_and_fill_meta(Database& db, std::string_view created_by, FingerprintKey& key,
                             std::int64_t& version) {
  // Re-check under the write lock: another writer may have created or migrated the schema
  // between our first look and now.
  if (Status st = check_identity(db, version); !st.ok()) return st;

  const std::vector<std::string> steps = migrations();
  if (steps.size() != static_cast<std::size_t>(kSchemaVersion)) {
    return Status::error(kSqliteError, "internal error: one migration per schema version");
  }
  for (std::int64_t v = version; v < kSchemaVersion; ++v) {
    if (Status st = db.exec(steps[static_cast<std::size_t>(v)]); !st.ok()) return st;
    if (Status st = db.exec("PRAGMA user_version=" + std::to_string(v + 1)); !st.ok()) return st;
  }
  if (version == 0) {
    if (Status st = db.exec("PRAGMA application_id=" + std::to_string(kApplicationId)); !st.ok()) {
      return st;
    }
  }

  if (Status st = refresh_vocabulary_triggers(db); !st.ok()) return st;

  // INSERT OR IGNORE: the first writer's values stay; later opens change nothing.
  FingerprintKey fresh{};
  RAND_bytes(fresh.data(), fresh.size());
  const std::string now = format_timestamp(Clock::now());
  Statement ins;
  if (Status st = db.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)", ins);
      !st.ok()) {
    return st;
  }
  const std::string_view fresh_view(reinterpret_cast<const char*>(fresh.data()), fresh.size());
  if (Status st = ins.bind_text(1, "fingerprint_key").bind_blob(2, fresh_view).run(); !st.ok()) {
    return st;
  }
  if (Status st = ins.bind_text(1, "created_by").bind_text(2, created_by).run(); !st.ok())
    return st;
  if (Status st = ins.bind_text(1, "created_at").bind_text(2, now).run(); !st.ok()) return st;
  return read_fingerprint_key(db, key);
}

// Whether this process could migrate the file where it is: write the file, and create its
// -wal, -shm and -bodies beside it. A read-only mount, an archive or another user's directory
// cannot be, and `mailtap proxy --db PATH` would only fail there.
bool can_migrate_in_place(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return ::access(path.c_str(), W_OK) == 0 &&
         ::access(dir.empty() ? "." : dir.c_str(), W_OK | X_OK) == 0;
}

// Where to copy it: a new directory named by when the advice was given (its `~` left for the
// shell to expand), so that following the advice again, or another database's, cannot
// overwrite a copy made before, perhaps upgraded and recorded to since.
std::string copy_directory() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char name[64];
  std::strftime(name, sizeof name, "~/mailtap-copy-%Y%m%d-%H%M%S", &local);
  return name;
}

// The copy to migrate instead: the file with its -wal (commits not yet in the file) and its
// -bodies directory (message bodies), those of them that exist. `mkdir` without -p: should the
// directory exist (the same advice followed twice), nothing is copied.
std::string copy_command(const std::string& path, const std::string& directory) {
  std::string sources = shell_quoted(path);
  for (const char* part : {"-wal", "-bodies"}) {
    std::error_code ec;
    if (std::filesystem::exists(path + part, ec)) sources += " " + shell_quoted(path + part);
  }
  return "mkdir " + directory + " && cp -a " + sources + " " + directory + "/";
}

std::string older_schema_advice(const std::string& path, std::int64_t version) {
  // Says how: the tools never migrate (read-only), and an old proxy still recording to the
  // file should stop before a new one migrates it (docs/install.md, "Upgrading").
  const std::string head = "'" + path + "' has schema version " + std::to_string(version) +
                           ", from an older mailtap; this mailtap's proxy upgrades it to version " +
                           std::to_string(kSchemaVersion) + " when it opens it";
  if (!can_migrate_in_place(path)) {
    const std::string directory = copy_directory();
    const std::string copy =
        directory + "/" + shell_quoted(std::filesystem::path(path).filename().string());
    return head +
           ", but it cannot be upgraded where it is (mailtap may not write the file or its "
           "directory): copy it with its -wal file and -bodies directory to a writable place and "
           "upgrade the copy (`" +
           copy_command(path, directory) + "`, then `mailtap proxy --db " + copy +
           "` and Ctrl-C once it listens), and read the copy (--db " + copy + ")";
  }
  return head +
         ": stop any older proxy recording to it, then start this one (`systemctl --user restart "
         "mailtap@NAME` for the user unit, or `mailtap proxy --db " +
         shell_quoted(path) + "` and Ctrl-C once it listens)";
}

// A migration cannot be undone and older mailtaps refuse the file from now on: said once, as a
// warning that --quiet keeps (the file changed under the user's feet), and loudly when another
// process has the file open, which may be an older mailtap recording to it (docs/install.md
// asks to stop those first; refusing to migrate was tried and reverted).
void say_migrated(const std::string& path, std::int64_t from) {
  log::warning("upgraded '" + path + "' from schema version " + std::to_string(from) + " to " +
               std::to_string(kSchemaVersion) + "; older mailtaps cannot use it any more");
  if (opened_by_another_process(path).value_or(false)) {
    log::warning("another process has '" + path +
                 "' open: any older mailtap using it (proxy, web) must be stopped and started "
                 "again with this version");
  }
}

}  // namespace

Status prepare_for_writing(Database& db, std::string_view created_by, FingerprintKey& key) {
  std::int64_t version = 0;
  if (Status st = check_identity(db, version); !st.ok()) return st;
  if (version == 0) {
    // Only effective before the first table exists; 4096 is the common filesystem block size.
    if (Status st = db.exec("PRAGMA page_size=4096"); !st.ok()) return st;
  }
  if (Status st = db.enable_wal(); !st.ok()) return st;

  // IMMEDIATE takes the write lock up front, so two proxies starting together serialise here
  // instead of one failing with SQLITE_BUSY when upgrading a read lock.
  if (Status st = db.exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  Status st = migrate_and_fill_meta(db, created_by, key, version);
  if (st.ok()) st = db.exec("COMMIT");
  if (!st.ok()) {
    if (db.in_transaction()) db.exec("ROLLBACK");
    return st;
  }
  if (version > 0 && version < kSchemaVersion) say_migrated(db.path(), version);
  // The WAL and shared-memory files exist now that a transaction ran.
  return db.secure_sidecar_files();
}

Status check_for_reading(Database& db) {
  std::int64_t version = 0;
  if (Status st = check_identity(db, version); !st.ok()) return st;
  if (version == 0) {
    return Status::error(kSqliteNotADb,
                         "'" + db.path() + "' is empty: no mailtap session was recorded in it yet");
  }
  if (version < kSchemaVersion)
    return Status::error(kSqliteError, older_schema_advice(db.path(), version));
  return {};
}

Status read_fingerprint_key(Database& db, FingerprintKey& key) {
  Statement sel;
  if (Status st = db.prepare("SELECT value FROM meta WHERE key = 'fingerprint_key'", sel);
      !st.ok()) {
    return st;
  }
  if (sel.step() != Statement::Step::row) {
    Status st = sel.last_error();
    return st.ok() ? Status::error(kSqliteError, "'" + db.path() + "' has no fingerprint key") : st;
  }
  const std::string value = sel.column_blob(0);
  if (value.size() != key.size()) {
    return Status::error(kSqliteError, "'" + db.path() + "' has a malformed fingerprint key");
  }
  std::copy(value.begin(), value.end(), key.begin());
  return {};
}

}  // namespace mailtap::storage
