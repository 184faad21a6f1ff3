#include "storage/database.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>

#include "proxy/common/hex.hpp"
#include "storage/private_files.hpp"
#include "storage/wal_write_batching.hpp"

namespace mailtap::storage {

namespace {

std::string in_quotes(const std::string& path) {
  return "'" + path + "'";
}

std::string os_error(int err) {
  return std::strerror(err);
}

// SQLite's message for `rc` on `db`. A write the file system refused for want of space outside
// the database file itself (extending a new -shm at open) is a plain "disk I/O error", which
// suggests failing hardware; the errno SQLite kept says what it was.
std::string sqlite_message(sqlite3* db, int rc, std::string msg) {
  if (db == nullptr || primary_code(rc) != SQLITE_IOERR) return msg;
  const int err = sqlite3_system_errno(db);
  if (err == ENOSPC || err == EDQUOT) {
    return "the file system is full (" + os_error(err) + ")";
  }
  return msg;
}

// Whether a stat(2) of the database path that failed with `err` says that the path no longer
// leads to any file, for anyone: the lookup was made, and its answer is that nothing is there
// (no such name; a directory on the path replaced by a file, by a symlink loop or by a symlink
// to a name longer than a file system takes: the path itself was fine when it was opened).
// Nobody finds the record by that path any more, as when the file was deleted. Otherwise the
// lookup did not finish and the file may well be there: EACCES (this user may not search a
// directory on the path; the readers of the record may), EIO, ENOMEM, ESTALE (an NFS server
// that may answer next time), EOVERFLOW (a file is there, stat cannot describe it), and any
// error not known here.
bool path_leads_nowhere(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
      return true;
    default:
      return false;
  }
}

// `path` as an SQLite URI filename ("file:/a/b%3Fc.db"), for query parameters to follow.
std::string file_uri(const std::string& path) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) != 0 || c == '/' || c == '.' || c == '-' || c == '_' || c == '~') {
      uri.push_back(static_cast<char>(c));
    } else {
      uri += '%';
      append_hex(uri, c);
    }
  }
  return uri;
}

// Creates the missing directories above `path` with mode 0700. Existing directories are left
// alone: $HOME/.local/share is the user's, not ours to tighten.
Status create_parent_directories(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return {};
  std::filesystem::path prefix;
  for (const auto& part : parent) {
    prefix /= part;
    struct stat st {};
    if (::stat(prefix.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return Status::error(kSqliteCantOpen,
                             "cannot create database directory: " + in_quotes(prefix.string()) +
                                 " exists and is not a directory");
      }
      continue;
    }
    if (errno != ENOENT) {
      return Status::error(kSqliteCantOpen,
                           "cannot access " + in_quotes(prefix.string()) + ": " + os_error(errno));
    }
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::error(
          kSqliteCantOpen,
          "cannot create directory " + in_quotes(prefix.string()) + ": " + os_error(errno));
    }
    // mkdir's mode is filtered through the umask; the record holds mail, so be exact.
    ::chmod(prefix.c_str(), 0700);
  }
  return {};
}

// Creates the database file with mode 0600 before SQLite sees it, because SQLite would create it
// with 0644 & ~umask and then copy that mode to the -wal and -shm files.
Status create_database_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600));
  if (fd.valid()) {
    if (::fchmod(fd.get(), 0600) != 0) {  // umask-independent
      return Status::error(kSqliteCantOpen,
                           "cannot set mode 0600 on " + in_quotes(path) + ": " + os_error(errno));
    }
    return {};
  }
  if (errno != EEXIST) {
    return Status::error(kSqliteCantOpen,
                         "cannot create database file " + in_quotes(path) + ": " + os_error(errno));
  }
  return {};
}

// Sets `path`'s permission bits to `mode` unless they are already. Never through a real
// descriptor: closing any descriptor of a file drops every POSIX lock this process holds on it,
// SQLite's included; without its lock on the -shm file, the next connection of another process
// (a reader) takes that file for stale and truncates it under the writer's mapping (SIGBUS).
// An O_PATH descriptor is not one (Linux drops no lock when it is closed), and pins the file
// `st` describes: lstat(2) of `path` (then no link is followed), or with `follow` stat(2) of a
// link of the user's there. A file or link put at `path` since is refused, not changed (chmod
// by the path would follow the link). fchmod does not take an O_PATH descriptor; its
// /proc/self/fd entry does. Without /proc, by the path.
Status set_mode(const std::string& path, const struct stat& st, mode_t mode, bool follow) {
  if ((st.st_mode & 07777) == mode) return {};
  const UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
  struct stat now {};
  if (!fd.valid() || ::fstat(fd.get(), &now) != 0) {
    return Status::error(kSqliteCantOpen, "cannot restrict permissions of " + in_quotes(path) +
                                              ": " + os_error(errno));
  }
  if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
    return Status::error(kSqliteCantOpen, in_quotes(path) +
                                              " was replaced while it was being checked: whoever "
                                              "may write beside it would choose where the "
                                              "record goes");
  }
  const std::string by_fd = "/proc/self/fd/" + std::to_string(fd.get());
  if (::chmod(by_fd.c_str(), mode) == 0) return {};
  if (errno == ENOENT && ::access("/proc/self/fd", F_OK) != 0 && ::chmod(path.c_str(), mode) == 0)
    return {};
  return Status::error(kSqliteCantOpen, "cannot restrict permissions of " + in_quotes(path) + ": " +
                                            os_error(errno));
}

// The database file, made now or found there, is the user's and private to them
// (private_files.hpp): one somebody else made, even empty, would hand them the record. `st`
// is its identity, for open() to compare with the file SQLite opens.
Status claim_database_file(const std::string& path, struct stat& st) {
  if (Status s = refuse_foreign_link(path, "the database path"); !s.ok()) return s;
  if (Status s = create_database_file(path); !s.ok()) return s;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::error(kSqliteCantOpen,
                         "cannot open database file " + in_quotes(path) + ": " + os_error(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::error(kSqliteCantOpen, in_quotes(path) + " is a directory, not a database file");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::error(kSqliteCantOpen, in_quotes(path) + " is not a regular file");
  }
  if (Status s = refuse_foreign_owner(st, path, "the database file"); !s.ok()) return s;
  // The owner's bits stay: a database its owner made read-only stays so (and is refused).
  return set_mode(path, st, st.st_mode & 07700, /*follow=*/true);
}

// SQLite's -wal or -shm file `side`, if there: the user's, a regular file (SQLite follows a
// link there, so one made by anybody would send the WAL where they chose), with `mode`.
Status secure_sidecar_file(const std::string& side, std::string_view what, mode_t mode) {
  struct stat st {};
  if (::lstat(side.c_str(), &st) != 0) return {};  // not created yet, or already gone
  if (S_ISLNK(st.st_mode)) {
    return Status::error(kSqliteCantOpen, in_quotes(side) +
                                              " is a symbolic link: SQLite's own files beside "
                                              "the database never are; remove it");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::error(kSqliteCantOpen, in_quotes(side) + " is not a regular file");
  }
  if (Status s = refuse_foreign_owner(st, side, what); !s.ok()) return s;
  return set_mode(side, st, mode, /*follow=*/false);
}

// The -wal and -shm files of the database at `resolved` (its path with every link followed,
// where SQLite puts them), with the database's `mode`.
Status secure_sidecar_files_of(const std::string& resolved, mode_t mode) {
  if (Status st = secure_sidecar_file(resolved + "-wal", "the WAL file", mode); !st.ok()) return st;
  return secure_sidecar_file(resolved + "-shm", "the shared-memory file", mode);
}

// Before SQLite reads them: a -wal file is replayed into the database when it is opened.
Status secure_existing_sidecar_files(const std::string& path, mode_t mode) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return Status::error(kSqliteCantOpen,
                         "cannot resolve " + in_quotes(path) + ": " + os_error(errno));
  }
  return secure_sidecar_files_of(resolved, mode);
}

// SQLite running as root gives each -wal and -shm file it opens to the database's owner
// (os_unix.c, robustFchown), one that was already there included: a -wal file another user put
// there after open() looked would then be the user's to every check after the open
// (secure_sidecar_files), its commits trusted and checkpointed into the database. SQLite's
// fchown goes through this instead, which gives away only a file of this process's own user
// (one SQLite has just made): another user's file stays theirs, and is refused.
int fchown_own_files_only(int fd, uid_t owner, gid_t group) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -1;
  if (st.st_uid != ::geteuid()) return 0;
  return ::fchown(fd, owner, group);
}

// Puts fchown_own_files_only() in the default VFS's place for fchown, once for the process and
// before any connection is opened (xSetSystemCall is not safe beside one at work); false if
// SQLite has no such system call to replace.
bool keep_foreign_owners() {
  static std::once_flag once;
  static bool installed = false;
  std::call_once(once, [] {
    sqlite3_vfs* unix_vfs = sqlite3_vfs_find("unix");
    installed =
        unix_vfs != nullptr && unix_vfs->iVersion >= 3 && unix_vfs->xSetSystemCall != nullptr &&
        unix_vfs->xSetSystemCall(unix_vfs, "fchown",
                                 reinterpret_cast<sqlite3_syscall_ptr>(&fchown_own_files_only)) ==
            SQLITE_OK;
  });
  return installed;
}

// Settings of the whole library, which SQLite takes only before its first use in the process.
// Memory statistics off: with them on, every allocation and free SQLite makes takes a global
// mutex to count it, and this SQLite (Debian's, built without lookaside memory) allocates for
// every cursor and record: about 50 times per recorded message. Nothing in mailtap reads the
// statistics (sqlite3_memory_used, a soft heap limit).
void configure_sqlite_once() {
  static std::once_flag once;
  // SQLITE_MISUSE when SQLite is already in use (a test that called it first): it runs as
  // before, only slower.
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

// ---- Statement ----------------------------------------------------------------------------

void Statement::Finalizer::operator()(sqlite3_stmt* s) const noexcept {
  sqlite3_finalize(s);
}

void Statement::note_bind(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

Statement& Statement::bind_null(int index) {
  note_bind(sqlite3_bind_null(stmt_.get(), index));
  return *this;
}

Statement& Statement::bind_int(int index, std::int64_t value) {
  note_bind(sqlite3_bind_int64(stmt_.get(), index, value));
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view value) {
  // A null data pointer would bind NULL; an empty view may have one.
  const char* data = value.data() != nullptr ? value.data() : "";
  note_bind(
      sqlite3_bind_text64(stmt_.get(), index, data, value.size(), SQLITE_STATIC, SQLITE_UTF8));
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view value) {
  if (value.empty()) {
    note_bind(sqlite3_bind_zeroblob(stmt_.get(), index, 0));
  } else {
    note_bind(sqlite3_bind_blob64(stmt_.get(), index, value.data(), value.size(), SQLITE_STATIC));
  }
  return *this;
}

Statement& Statement::bind_text_or_null(int index, std::string_view value) {
  return value.empty() ? bind_null(index) : bind_text(index, value);
}

Statement& Statement::bind_optional(int index, const std::optional<std::int64_t>& value) {
  return value ? bind_int(index, *value) : bind_null(index);
}

Statement::Step Statement::step() {
  if (bind_rc_ != SQLITE_OK) return Step::error;
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return Step::row;
  if (rc == SQLITE_DONE) return Step::done;
  bind_rc_ = rc;  // remembered for last_error(); cleared by reset()
  return Step::error;
}

Status Statement::run() {
  Step s;
  do {
    s = step();
  } while (s == Step::row);
  Status st = s == Step::error ? last_error() : Status{};
  reset();
  return st;
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_rc_ = SQLITE_OK;
}

Status Statement::last_error() const {
  if (bind_rc_ == SQLITE_OK) return {};
  sqlite3* db = sqlite3_db_handle(stmt_.get());
  std::string msg =
      sqlite3_extended_errcode(db) == bind_rc_ ? sqlite3_errmsg(db) : sqlite3_errstr(bind_rc_);
  return Status::error(bind_rc_, sqlite_message(db, bind_rc_, std::move(msg)));
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

std::int64_t Statement::column_int(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::string Statement::column_text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), column));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

std::string Statement::column_blob(int column) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_.get(), column));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

std::optional<std::int64_t> Statement::column_optional_int(int column) const {
  if (is_null(column)) return std::nullopt;
  return column_int(column);
}

std::optional<std::string> Statement::column_optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return column_text(column);
}

// ---- Database -----------------------------------------------------------------------------

void Database::Closer::operator()(sqlite3* db) const noexcept {
  // close_v2 tolerates statements that are finalized after the connection (a zombie
  // connection), so member destruction order never leaks the handle.
  sqlite3_close_v2(db);
}

Status Database::error_from(int rc, std::string_view what) const {
  std::string msg(what);
  msg += ": ";
  const bool own = db_ && sqlite3_extended_errcode(db_.get()) == rc;
  msg += sqlite_message(db_.get(), rc, own ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc));
  if (primary_code(rc) == SQLITE_BUSY) msg += " (another process holds a lock on it)";
  if (primary_code(rc) == SQLITE_NOTADB) msg = "not an SQLite database";
  return Status::error(rc, in_quotes(path_) + ": " + msg);
}

Status Database::open(const std::string& path, const OpenOptions& options, Database& out) {
  configure_sqlite_once();
  out = Database{};
  if (path.empty()) return Status::error(kSqliteCantOpen, "no database path given");

  int flags = SQLITE_OPEN_EXRESCODE;
  struct stat claimed {};
  // Without it, root's checks of the owners after the open could not see another user's file.
  if (!keep_foreign_owners() && ::geteuid() == 0 && options.mode == OpenMode::read_write) {
    return Status::error(kSqliteCantOpen,
                         "cannot keep SQLite from giving the files beside the database to its "
                         "owner: run mailtap as the database's owner, not as root");
  }
  if (options.mode == OpenMode::read_write) {
    if (Status st = create_parent_directories(path); !st.ok()) return st;
    if (Status st = claim_database_file(path, claimed); !st.ok()) return st;
    if (Status st = secure_existing_sidecar_files(path, claimed.st_mode & 07700); !st.ok())
      return st;
    // The writer's connection is used by one thread at a time (the recorder's): SQLite's own
    // per-call mutex would only cost (hundreds of lock calls per message in the profile).
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  } else {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      if (err == ENOENT) return Status::error(kSqliteCantOpen, "no database at " + in_quotes(path));
      return Status::error(kSqliteCantOpen,
                           "cannot access " + in_quotes(path) + ": " + os_error(err));
    }
    if (S_ISDIR(st.st_mode)) {
      return Status::error(kSqliteCantOpen,
                           in_quotes(path) + " is a directory, not a database file");
    }
    flags |= SQLITE_OPEN_READONLY;
  }

  const char* vfs = options.batch_wal_writes ? wal_write_batching_vfs() : nullptr;
  if (Status st = connect(path, path, flags, vfs, options, out); !st.ok()) return st;
  if (struct stat st{}; ::stat(path.c_str(), &st) == 0) {
    out.identity_known_ = true;
    out.dev_ = st.st_dev;
    out.ino_ = st.st_ino;
  }
  if (options.mode == OpenMode::read_write &&
      (!out.identity_known_ || out.dev_ != claimed.st_dev || out.ino_ != claimed.st_ino)) {
    out.close();
    return Status::error(kSqliteCantOpen, in_quotes(path) +
                                              " was replaced while it was being opened; is "
                                              "another user writing in its directory?");
  }
  if (options.mode == OpenMode::read_only) return out.readable_or_immutable(options);
  return {};
}

Status Database::connect(const std::string& path, const std::string& name, int flags,
                         const char* vfs, const OpenOptions& options, Database& out) {
  Database db;
  db.path_ = path;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(name.c_str(), &raw, flags, vfs);
  db.db_.reset(raw);  // sqlite3_open_v2 allocates a handle even when it fails
  if (rc != SQLITE_OK) return db.error_from(rc, "cannot open database");
  // Before anything reads the file: a -wal file another user made after open() looked for one
  // is replayed on the first read, and the last close would checkpoint their commits into the
  // database even when secure_sidecar_files() then refuses it. It turns this back off once
  // the -wal file is known to be the user's (a read-only connection never checkpoints).
  if (const int cfg = sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
      cfg != SQLITE_OK) {
    return db.error_from(cfg, "cannot keep the database from being checkpointed on close");
  }
  sqlite3_extended_result_codes(raw, 1);

  if (options.mode == OpenMode::read_write && sqlite3_db_readonly(raw, "main") == 1) {
    // SQLITE_OPEN_READWRITE silently degrades to read-only for a write-protected file.
    return Status::error(kSqliteCantOpen, "database file " + in_quotes(path) + " is not writable");
  }

  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));

  // Connection-level settings only: none of these writes the file (synchronous reads the
  // schema), so a file that turns out not to be ours is left untouched. docs/schema.md explains
  // each choice.
  const char* pragmas = options.mode == OpenMode::read_write ? "PRAGMA trusted_schema=OFF;"
                                                               "PRAGMA foreign_keys=ON;"
                                                               "PRAGMA secure_delete=ON;"
                                                               "PRAGMA synchronous=NORMAL;"
                                                               "PRAGMA journal_size_limit=33554432;"
                                                               "PRAGMA wal_autocheckpoint=4000;"
                                                             : "PRAGMA trusted_schema=OFF;"
                                                               "PRAGMA query_only=ON;";
  if (Status st = db.exec(pragmas); !st.ok()) return st;

  out = std::move(db);
  return {};
}

namespace {

// On a file system mounted read-only nothing commits to the database while it is read: an
// immutable connection misses nothing however long it stays open (mailtap web on an archive).
bool on_read_only_file_system(const std::string& path) {
  struct statvfs fs {};
  return ::statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0;
}

}  // namespace

Status Database::readable_or_immutable(const OpenOptions& options) {
  // A database in WAL mode is read through its -shm file, which SQLite creates beside it on the
  // first read: in a directory this user may not write (an archive, a read-only mount) that
  // read fails, "attempt to write a readonly database".
  std::int64_t ignored = 0;
  const Status probe = query_int("SELECT count(*) FROM sqlite_schema", ignored);
  const int code = primary_code(probe.code);
  if (probe.ok() || (code != SQLITE_READONLY && code != SQLITE_CANTOPEN)) return {};
  const std::string path = path_;
  const std::string wal = path + "-wal";
  // A -wal file of any size means a writer may be at work (a live writer's -wal is empty right
  // after a wal_checkpoint(TRUNCATE)); one that cannot be looked at may be there.
  struct stat st {};
  if (::stat(wal.c_str(), &st) == 0 || errno != ENOENT) {
    return Status::error(
        probe.code, in_quotes(path) + " cannot be read: SQLite must create " +
                        in_quotes(path + "-shm") + " beside it to read the commits in " +
                        in_quotes(wal) + ", and that directory is not writable (" + probe.message +
                        "); copy the database with its -wal file to a "
                        "directory you may write, or read it as a user who may write there");
  }
  if (!options.allow_immutable && !on_read_only_file_system(path)) {
    // An immutable connection would never see a writer's later commits, and takes no locks
    // against a checkpoint rewriting its pages: not for a reader that stays open.
    return Status::error(
        probe.code, in_quotes(path) + " cannot be read: SQLite must create " +
                        in_quotes(path + "-shm") +
                        " beside it to follow the database as it changes, and that directory is "
                        "not writable (" +
                        probe.message +
                        "); copy the database to a directory you may write, or read it as a user "
                        "who may write there");
  }
  // Without a -wal file all of it is in the file itself, and no writer is at work (a writer
  // keeps its -wal while it runs): read it once as immutable, without the -shm file or locks.
  close();
  return connect(path, file_uri(path) + "?immutable=1",
                 SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr, options,
                 *this);
}

Status Database::exec(std::string_view sql) {
  const std::string text(sql);
  char* errmsg = nullptr;
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &errmsg);
  if (rc == SQLITE_OK) return {};
  std::string msg = sqlite_message(db_.get(), rc, errmsg != nullptr ? errmsg : sqlite3_errstr(rc));
  sqlite3_free(errmsg);
  if (primary_code(rc) == SQLITE_BUSY) msg += " (another process holds a lock on it)";
  if (primary_code(rc) == SQLITE_NOTADB) msg = "not an SQLite database";
  return Status::error(rc, in_quotes(path_) + ": " + msg);
}

Status Database::disable_triggers() {
  int enabled = 1;
  const int rc = sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &enabled);
  if (rc != SQLITE_OK) return error_from(rc, "cannot configure the connection");
  if (enabled != 0) return Status::error(kSqliteError, in_quotes(path_) + ": triggers stay on");
  return {};
}

Status Database::prepare(std::string_view sql, Statement& out) {
  sqlite3_stmt* raw = nullptr;
  // PERSISTENT: the recorder keeps its statements for the life of the connection.
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return error_from(rc, "cannot prepare statement");
  }
  out = Statement(raw);
  return {};
}

Status Database::define_blob_function(const std::string& name, int arity, BlobFunction fn) {
  struct Context {
    BlobFunction fn;
    std::string result;
  };
  auto context = std::make_unique<Context>(Context{std::move(fn), {}});
  const auto call = [](sqlite3_context* ctx, int argc, sqlite3_value** argv) {
    auto* c = static_cast<Context*>(sqlite3_user_data(ctx));
    std::int64_t args[8] = {};
    for (int i = 0; i < argc && i < 8; ++i) {
      if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return sqlite3_result_null(ctx);
      args[i] = sqlite3_value_int64(argv[i]);
    }
    c->result.clear();
    if (!c->fn(args, c->result)) return sqlite3_result_null(ctx);
    sqlite3_result_blob64(ctx, c->result.data(), c->result.size(), SQLITE_TRANSIENT);
  };
  if (arity < 0 || arity > 8) return Status::error(SQLITE_MISUSE, "too many arguments: " + name);
  const int rc = sqlite3_create_function_v2(
      db_.get(), name.c_str(), arity, SQLITE_UTF8 | SQLITE_DIRECTONLY, context.get(), call, nullptr,
      nullptr, [](void* p) { delete static_cast<Context*>(p); });
  // SQLite calls the destructor itself when the definition fails.
  context.release();
  if (rc != SQLITE_OK) return error_from(rc, "cannot define SQL function " + name);
  return {};
}

void Database::stop_when(std::function<bool()> stop) {
  // A text search takes about 20 steps for each event it reads (measured on the web test's
  // record): a stop is seen within some 500 events, each at most one read of a body (about
  // 256 KiB).
  constexpr int kStepsBetweenChecks = 10000;
  if (!stop) {
    sqlite3_progress_handler(db_.get(), 0, nullptr, nullptr);
    stop_check_.reset();
    return;
  }
  stop_check_ = std::make_unique<std::function<bool()>>(std::move(stop));
  sqlite3_progress_handler(
      db_.get(), kStepsBetweenChecks,
      [](void* check) { return (*static_cast<std::function<bool()>*>(check))() ? 1 : 0; },
      stop_check_.get());
}

template <typename Read>
Status Database::query_single(std::string_view sql, Read read) {
  Statement st;
  if (Status s = prepare(sql, st); !s.ok()) return s;
  switch (st.step()) {
    case Statement::Step::row:
      read(st);
      return {};
    case Statement::Step::done:
      return Status::error(kSqliteError, "query returned no row");
    case Statement::Step::error:
      break;
  }
  Status s = st.last_error();
  return error_from(s.code, "query failed");
}

Status Database::query_int(std::string_view sql, std::int64_t& out) {
  return query_single(sql, [&](Statement& st) { out = st.column_int(0); });
}

Status Database::query_text(std::string_view sql, std::string& out) {
  return query_single(sql, [&](Statement& st) { out = st.column_text(0); });
}

Status Database::read_blob(const std::string& table, const std::string& column, std::int64_t row,
                           std::int64_t offset, std::int64_t length, std::string& out) {
  out.clear();
  sqlite3_blob* raw = nullptr;
  const int rc = sqlite3_blob_open(db_.get(), "main", table.c_str(), column.c_str(), row, 0, &raw);
  const std::unique_ptr<sqlite3_blob, int (*)(sqlite3_blob*)> blob(raw, sqlite3_blob_close);
  if (rc != SQLITE_OK) return error_from(rc, "cannot open " + table + "." + column);
  if (offset < 0 || length < 0 || offset + length > sqlite3_blob_bytes(raw) ||
      offset + length > std::numeric_limits<int>::max()) {
    return Status::error(kSqliteError, in_quotes(path_) + ": " + table + "." + column + " of row " +
                                           std::to_string(row) + " holds fewer octets than " +
                                           std::to_string(offset + length));
  }
  out.resize(static_cast<std::size_t>(length));
  const int read =
      sqlite3_blob_read(raw, out.data(), static_cast<int>(length), static_cast<int>(offset));
  if (read != SQLITE_OK) {
    out.clear();
    return error_from(read, "cannot read " + table + "." + column);
  }
  return {};
}

Status Database::read_blob(const std::string& table, const std::string& column, std::int64_t row,
                           std::int64_t offset, std::int64_t length, char* out, std::int64_t room,
                           std::int64_t& read) {
  read = 0;
  sqlite3_blob* raw = nullptr;
  const int rc = sqlite3_blob_open(db_.get(), "main", table.c_str(), column.c_str(), row, 0, &raw);
  const std::unique_ptr<sqlite3_blob, int (*)(sqlite3_blob*)> blob(raw, sqlite3_blob_close);
  if (rc != SQLITE_OK) return error_from(rc, "cannot open " + table + "." + column);
  const std::int64_t size = sqlite3_blob_bytes(raw);
  if (offset < 0 || length < 0 || room < length || offset + length > size) {
    return Status::error(kSqliteError, in_quotes(path_) + ": " + table + "." + column + " of row " +
                                           std::to_string(row) + " holds fewer octets than " +
                                           std::to_string(offset + length));
  }
  // The value is an int's octets at most: so is what is read of it.
  const std::int64_t n = std::min(room, size - offset);
  const int got = sqlite3_blob_read(raw, out, static_cast<int>(n), static_cast<int>(offset));
  if (got != SQLITE_OK) return error_from(got, "cannot read " + table + "." + column);
  read = n;
  return {};
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_.get());
}

std::int64_t Database::changes() const {
  return sqlite3_changes64(db_.get());
}

bool Database::in_transaction() const {
  return sqlite3_get_autocommit(db_.get()) == 0;
}

bool Database::file_has_moved() const {
  int moved = 0;
  if (sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK)
    return false;  // a VFS that cannot tell
  return moved != 0;
}

Database::PathCheck Database::check_path() const {
  if (!file_has_moved()) return {};
  return check_path_names(path_, identity_known_, dev_, ino_);
}

Database::PathCheck Database::check_path_names(const std::string& path, bool identity_known,
                                               dev_t dev, ino_t ino) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (path_leads_nowhere(err)) return {PathState::moved, 0};
    return {PathState::unknown, err};
  }
  if (!identity_known || st.st_dev != dev || st.st_ino != ino) return {PathState::moved, 0};
  return {};  // the first look failed, this one finds the same file
}

Database::PathCheck Database::check_wal_path() const {
  sqlite3_file* wal = nullptr;
  if (sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
      wal == nullptr || wal->pMethods == nullptr) {
    return {};  // no WAL open: no commit went to one
  }
  // The VFS compares the file it opened with what a stat of the WAL's path finds now.
  const auto has_moved = [wal] {
    int moved = 0;
    return wal->pMethods->xFileControl(wal, SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
           moved != 0;
  };
  if (!has_moved()) return {};
  const std::string path = wal_path();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (path_leads_nowhere(err)) return {PathState::moved, 0};
    return {PathState::unknown, err};
  }
  // A file is there: another one (a reader that opened the database since made a new, empty
  // -wal), or the same one after SQLite's own stat failed for a moment. It is asked again.
  if (has_moved()) return {PathState::moved, 0};
  return {};
}

std::string Database::wal_path() const {
  const char* main = sqlite3_db_filename(db_.get(), "main");
  if (main == nullptr || *main == '\0') return path_ + "-wal";
  const char* wal = sqlite3_filename_wal(main);
  return wal != nullptr ? wal : path_ + "-wal";
}

Status Database::checkpoint_after_commits(CheckpointObserver progress) {
  std::int64_t frames = 0;
  if (Status st = query_int("PRAGMA wal_autocheckpoint", frames); !st.ok()) return st;
  auto watch = std::make_unique<CheckpointWatch>();
  watch->wal_autocheckpoint = static_cast<int>(frames);
  watch->progress = std::move(progress);
  // Called by SQLite after each commit, with the frames now in the WAL; it replaces the hook
  // through which SQLite checkpoints by itself (sqlite3WalDefaultHook), so it does what that
  // does: a PASSIVE checkpoint, whose failure is no failure of the commit.
  const auto after_commit = [](void* arg, sqlite3* db, const char* name, int wal_frames) {
    const auto& w = *static_cast<const CheckpointWatch*>(arg);
    if (w.wal_autocheckpoint <= 0 || wal_frames < w.wal_autocheckpoint) return SQLITE_OK;
    int log = 0;
    int copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) ==
            SQLITE_OK &&
        log >= 0 && copied >= 0) {
      try {
        w.progress({log, copied, w.wal_autocheckpoint});
      } catch (const std::exception&) {
        // Not through SQLite's C frames; a word about the WAL is not worth the commit's error.
      }
    }
    return SQLITE_OK;
  };
  sqlite3_wal_hook(db_.get(), after_commit, watch.get());
  checkpoint_watch_ = std::move(watch);
  return {};
}

std::int64_t Database::wal_frame_octets() {
  constexpr std::int64_t kFrameHeaderOctets = 24;  // sqlite.org/fileformat2.html#walformat
  std::int64_t page = 0;
  if (!query_int("PRAGMA page_size", page).ok()) page = 4096;
  return page + kFrameHeaderOctets;
}

Status Database::enable_wal() {
  std::string mode;
  if (Status st = query_text("PRAGMA journal_mode=WAL", mode); !st.ok()) return st;
  if (mode != "wal") {
    return Status::error(kSqliteError, in_quotes(path_) +
                                           ": cannot switch to WAL mode (journal_mode "
                                           "stays '" +
                                           mode + "'; is it on a network filesystem?)");
  }
  return secure_sidecar_files();
}

Status Database::secure_sidecar_files() {
  // SQLite names them after the database's path with every link followed.
  const char* resolved = sqlite3_db_filename(db_.get(), "main");
  if (resolved == nullptr || *resolved == '\0') return {};  // a temporary or in-memory database
  struct stat db_st {};
  if (::stat(resolved, &db_st) != 0) {
    return Status::error(kSqliteCantOpen,
                         "cannot stat " + in_quotes(resolved) + ": " + os_error(errno));
  }
  if (Status st = secure_sidecar_files_of(resolved, db_st.st_mode & 07777); !st.ok()) {
    sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    return st;
  }
  // The -wal file is the user's: its commits may go into the database when it closes.
  sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  return {};
}

}  // namespace mailtap::storage
