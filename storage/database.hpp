// RAII wrappers over an SQLite connection and its prepared statements. The sqlite3 handles stay
// inside these classes; callers see Status values, never exceptions or raw pointers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

struct sqlite3;
struct sqlite3_stmt;

namespace mailtap::storage {

// Why a WAL checkpoint cannot finish and what to do about it, as prune and the recorder say it:
// a reader's open transaction keeps the snapshot it began with, and no checkpoint may copy a
// page committed after it into the database file meanwhile.
inline constexpr std::string_view kReaderHoldsTheCheckpoint =
    "another connection holds a read on the database";
inline constexpr std::string_view kReadersThatHoldCheckpoints =
    "mailtap web, a running export or audit, sqlite3 with a transaction open";

struct Status {
  int code = 0;         // 0 on success; otherwise an (extended) SQLite result code
  std::string message;  // human-readable, names the file where that helps; empty on success
  bool ok() const noexcept { return code == 0; }

  static Status error(int code, std::string message) { return Status{code, std::move(message)}; }
};

// SQLite primary result codes the callers branch on, so they need not include <sqlite3.h>.
inline constexpr int kSqliteError = 1;      // SQLITE_ERROR
inline constexpr int kSqliteBusy = 5;       // SQLITE_BUSY
inline constexpr int kSqliteCantOpen = 14;  // SQLITE_CANTOPEN
inline constexpr int kSqliteNotADb = 26;    // SQLITE_NOTADB

// Primary code of an extended result code.
inline int primary_code(int code) {
  return code & 0xff;
}

class Statement {
 public:
  enum class Step { row, done, error };

  Statement() = default;
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;

  bool valid() const noexcept { return stmt_ != nullptr; }

  // Parameters are 1-based. Text and blobs are bound without copying (bodies can be megabytes),
  // so the referenced bytes must stay alive until run() returns or reset() is called.
  // A failed bind is remembered and reported by the next step()/run().
  Statement& bind_null(int index);
  Statement& bind_int(int index, std::int64_t value);
  Statement& bind_text(int index, std::string_view value);          // "" binds '', not NULL
  Statement& bind_blob(int index, std::string_view value);          // "" binds a zero-length blob
  Statement& bind_text_or_null(int index, std::string_view value);  // "" binds NULL
  Statement& bind_optional(int index, const std::optional<std::int64_t>& value);

  Step step();
  // For statements that return no rows: steps to completion, then resets and clears bindings
  // so the statement can be reused.
  Status run();
  void reset();  // also clears bindings
  Status last_error() const;

  // Columns are 0-based and valid after step() returned Step::row.
  bool is_null(int column) const;
  std::int64_t column_int(int column) const;
  std::string column_text(int column) const;  // NULL reads as ""
  std::string column_blob(int column) const;  // NULL reads as ""
  std::optional<std::int64_t> column_optional_int(int column) const;
  std::optional<std::string> column_optional_text(int column) const;

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const noexcept;
  };
  explicit Statement(sqlite3_stmt* s) : stmt_(s) {}
  void note_bind(int rc);

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  int bind_rc_ = 0;
};

enum class OpenMode {
  // Creates the file (0600) and missing parent directories (0700) if needed. An existing file,
  // -wal or -shm must be the user's (private_files.hpp): group and others lose their access
  // to it, and one another user owns is refused.
  read_write,
  // SQLITE_OPEN_READONLY; works beside an active writer because the database is in WAL mode.
  // In a directory this user may not write, see OpenOptions::allow_immutable.
  read_only,
};

struct OpenOptions {
  OpenMode mode = OpenMode::read_write;
  std::chrono::milliseconds busy_timeout{5000};
  // Write each commit's WAL frames in one write (wal_write_batching.hpp): the recorder's.
  bool batch_wal_writes = false;
  // read_only in a directory this user may not write (SQLite cannot create the -shm file): a
  // database with no -wal file beside it (so no writer at work) may be opened as immutable, no
  // -shm file and no locks. Only for a one-shot read (the CLI tools): an immutable connection
  // never sees a later writer's commits, and a checkpoint may rewrite pages under it. On a
  // file system mounted read-only, where no writer can be at work, any read_only open may.
  bool allow_immutable = false;
};

class Database {
 public:
  Database() = default;
  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;

  // Opens the connection and applies the per-connection pragmas (see docs/schema.md). It does not
  // touch the schema or persistent settings: schema.hpp decides whether the file is ours first.
  static Status open(const std::string& path, const OpenOptions& options, Database& out);

  bool is_open() const noexcept { return db_ != nullptr; }
  const std::string& path() const noexcept { return path_; }

  // Runs one or more SQL statements that return no rows of interest.
  Status exec(std::string_view sql);
  Status prepare(std::string_view sql, Statement& out);
  // Runs a single-value query (a pragma, a count). nullopt-free: error if there is no row.
  Status query_int(std::string_view sql, std::int64_t& out);
  Status query_text(std::string_view sql, std::string& out);
  // `length` octets from `offset` of the blob in `column` of row `row` of `table` (SQLite's
  // incremental blob I/O, read-only): only those octets are loaded, never the whole value.
  Status read_blob(const std::string& table, const std::string& column, std::int64_t row,
                   std::int64_t offset, std::int64_t length, std::string& out);
  // The same, and as many octets past them as the value holds and `room` (at least `length`)
  // leaves, into `out`, which has `room`: `read` says how many. One read where a reader in
  // order would make several, each of which walks the value's chain of overflow pages from its
  // first page to where it starts.
  Status read_blob(const std::string& table, const std::string& column, std::int64_t row,
                   std::int64_t offset, std::int64_t length, char* out, std::int64_t room,
                   std::int64_t& read);

  // Defines an SQL function of `arity` integer arguments for this connection's queries (not
  // for its schema: SQLITE_DIRECTONLY). `fn` fills the blob it returns, or returns false for
  // NULL; a NULL argument makes the result NULL without calling `fn`.
  using BlobFunction = std::function<bool(const std::int64_t* args, std::string& out)>;
  Status define_blob_function(const std::string& name, int arity, BlobFunction fn);

  // While set, a statement of this connection stops (SQLITE_INTERRUPT) as soon as `stop`
  // returns true; it is asked every few thousand steps of SQLite's machine, so it must be cheap.
  // An empty function clears it.
  void stop_when(std::function<bool()> stop);

  // Statements prepared from now on run no triggers (those prepared before keep theirs). For
  // the recorder, whose writes the schema's triggers would only check against the name tables
  // it writes from (schema.cpp, vocabulary_triggers); every other connection keeps them.
  Status disable_triggers();

  std::int64_t last_insert_rowid() const;
  std::int64_t changes() const;  // rows the last INSERT, UPDATE or DELETE changed
  bool in_transaction() const;   // false in autocommit mode
  // True once the path no longer names the file this connection has open: deleted, renamed or
  // replaced since it was opened (SQLite's SQLITE_FCNTL_HAS_MOVED: one stat of the path). What
  // is written from then on goes to a file nobody can open by that name.
  bool file_has_moved() const;
  // file_has_moved() confirmed: SQLite answers true also when the stat of the path fails for
  // any reason (EACCES on a directory, a transient error). This stats the path again: moved
  // when it leads to no file (ENOENT, or ENOTDIR, ELOOP, ENAMETOOLONG: a directory on it
  // replaced) or names another file than the one stat'ed at open; unknown, with the errno, when
  // the stat fails otherwise (EACCES, EIO: the file may well be there).
  enum class PathState { same, moved, unknown };
  struct PathCheck {
    PathState state = PathState::same;
    int error = 0;  // errno, for unknown
  };
  PathCheck check_path() const;
  // check_path()'s answer for the file at `path` that was `dev`/`ino` when it was opened: one
  // stat of the path.
  static PathCheck check_path_names(const std::string& path, bool identity_known, dev_t dev,
                                    ino_t ino);
  // The WAL file SQLite writes this connection's commits to, if it has one open, is still the
  // file at its path (wal_path()): a -wal file deleted under a writer takes every commit since
  // into an inode nobody can read, and that a crash loses. One stat, through
  // SQLITE_FCNTL_HAS_MOVED on the WAL file, which only the VFS of batch_wal_writes answers:
  // always `same` on other connections, and when no WAL is open.
  PathCheck check_wal_path() const;
  // "<database>-wal", as SQLite names it (after the database's path with every link followed).
  std::string wal_path() const;

  // What a checkpoint after a commit managed (see checkpoint_after_commits).
  struct CheckpointProgress {
    std::int64_t wal_frames = 0;          // frames in the WAL
    std::int64_t copied_frames = 0;       // of those, in the database file now
    std::int64_t wal_autocheckpoint = 0;  // frames in the WAL from which a checkpoint runs
  };
  // Takes over SQLite's automatic checkpoint: after a commit that leaves at least
  // `wal_autocheckpoint` frames in the WAL (the pragma's value when this is called) it runs
  // the same PASSIVE checkpoint SQLite's own would, then tells `progress` what it achieved. A
  // reader's open transaction keeps the checkpoint from copying the frames committed after it
  // began, and SQLite's own says nothing. A commit under that size costs one comparison more.
  using CheckpointObserver = std::function<void(const CheckpointProgress&)>;
  Status checkpoint_after_commits(CheckpointObserver progress);
  // Octets a WAL frame takes: a page and its header.
  std::int64_t wal_frame_octets();

  // Switches the file to WAL (persistent), then aligns the -wal/-shm permissions with the
  // database file's, whatever the umask.
  Status enable_wal();
  // Gives the -wal and -shm files the database file's permission bits, if they exist; refuses
  // them if another user owns them or they are symbolic links (planted before SQLite made them).
  // A read-write connection checkpoints on close only once this has passed: until then the
  // -wal file may hold another user's commits.
  Status secure_sidecar_files();

  void close() noexcept { db_.reset(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const noexcept;
  };
  Status error_from(int rc, std::string_view what) const;
  // Opens `name` (the path, or a URI for it) with `flags` and applies the pragmas.
  static Status connect(const std::string& path, const std::string& name, int flags,
                        const char* vfs, const OpenOptions& options, Database& out);
  // Read-only: a WAL database in a directory this user may not write cannot be read through
  // its -shm file; with allow_immutable and no -wal file it is reopened as immutable, else an
  // error says why.
  Status readable_or_immutable(const OpenOptions& options);
  // Runs a query expected to yield one row and hands the row to `read` (defined in the .cpp).
  template <typename Read>
  Status query_single(std::string_view sql, Read read);

  struct CheckpointWatch {
    int wal_autocheckpoint = 0;  // frames
    CheckpointObserver progress;
  };
  // Declared before db_, so it outlives the connection whose WAL hook it is.
  std::unique_ptr<CheckpointWatch> checkpoint_watch_;
  std::unique_ptr<std::function<bool()>> stop_check_;  // stop_when's, likewise before db_
  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  // The file's identity when it was opened, for check_path().
  bool identity_known_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace mailtap::storage
