#include "storage/body_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "storage/private_files.hpp"

namespace mailtap::storage {

namespace {

constexpr int kSqliteIoErr = 10;  // SQLITE_IOERR: the recorder treats it as a failed disk

// Octets a file written directly collects before a write: large enough that the device sees
// few, long writes. A writer gives two buffers (one filling, one being written) to this many
// files at most (sessions sending large bodies at the same time, 16 MiB together); files beyond
// go through the page cache.
constexpr std::size_t kDirectBufferOctets = std::size_t{1024} * 1024;
constexpr std::size_t kMaxDirectFiles = 8;

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

Status os_failure(int code, const std::string& what, const std::string& path, int err) {
  return Status::error(code, what + " " + quoted(path) + ": " + std::strerror(err));
}

// A reader that lives long (the web page's) may hold a file that prune has since removed and
// a new session with the same id has since replaced.
bool same_file_at_path(int fd, const std::string& path) {
  struct stat held {};
  struct stat named {};
  return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
         held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

// How long a writer out of descriptors waits for one before its open fails: its reserve's
// descriptor, given up for the open, can be taken in that moment by an open that does not take
// descriptors_lock() (docs/dialogue.md says which), and those give theirs back in moments.
constexpr auto kShortageWait = std::chrono::seconds(10);
constexpr auto kShortagePause = std::chrono::milliseconds(10);

// Runs `open` (0, or the errno its open failed with) and, while it fails for want of
// descriptors, again in the place of `reserve`'s descriptor (taken back first if spent), for
// kShortageWait at most. `spent`: the open that succeeded took the reserve's place, which its
// caller takes back with give_back, closing what it opened. The last errno, or 0.
template <class Open>
int open_in_reserve(DescriptorReserve& reserve, const Open& open, bool& spent) {
  spent = false;
  int err = open();
  const auto until = std::chrono::steady_clock::now() + kShortageWait;
  while (descriptors_ran_out(err)) {
    reserve.take();
    if (reserve.held()) {
      // A failed open frees the slot again: taken back under the same lock, before another can.
      reserve.exchange([&] {
        err = open();
        if (err != 0) reserve.take();
      });
      spent = err == 0;
      if (!descriptors_ran_out(err)) break;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(kShortagePause);
  }
  return err;
}

// The body directory at `path` open as `out`, made now (0700, whatever the umask) unless
// `create` is false and there is none (then `out` stays closed). It must be the user's (see
// private_files.hpp): the files in it are named by session id, so whoever else may write in
// it could put links there for mailtap to write mail through, or swap the files under
// committed events. Group and others lose their access to one of the user's own.
// `open_error`: the errno of a failed open of the directory, else 0.
Status open_private_directory(const std::string& path, bool create, UniqueFd& out, bool& created,
                              int& open_error) {
  created = create && ::mkdir(path.c_str(), 0700) == 0;
  if (create && !created && errno != EEXIST) {
    return os_failure(kSqliteCantOpen, "cannot create the body directory", path, errno);
  }
  // Every check and change from here on is on the directory open, the one that was checked.
  UniqueFd dir;
  struct stat st {};
  open_error = 0;
  if (Status s =
          open_checked(path, O_RDONLY | O_DIRECTORY, "the body directory", dir, st, open_error);
      !s.ok()) {
    return s;
  }
  if (!dir.valid()) {
    if (!create && open_error == ENOENT) return {};
    return os_failure(kSqliteCantOpen, "cannot open the body directory", path, open_error);
  }
  if (Status s = refuse_foreign_owner(st, path, "the body directory"); !s.ok()) return s;
  if (created && ::fchmod(dir.get(), 0700) != 0) {  // exact, whatever the umask
    return os_failure(kSqliteCantOpen, "cannot set mode 0700 on", path, errno);
  }
  if (Status s = restrict_to_owner(dir.get(), st, path); !s.ok()) return s;
  out = std::move(dir);
  return {};
}

// The session id `name` says, as body_file() writes it (decimal, no sign, no leading zero), or 0.
std::int64_t session_id_named(std::string_view name) {
  std::int64_t id = 0;
  const char* end = name.data() + name.size();
  const auto [at, ec] = std::from_chars(name.data(), end, id);
  if (ec != std::errc{} || at != end || id <= 0 || name.front() == '0') return 0;
  return id;
}

std::string parent_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::string body_directory(const std::string& database_path) {
  return database_path + "-bodies";
}

std::string body_file(const std::string& database_path, std::int64_t session_id) {
  return body_directory(database_path) + "/" + std::to_string(session_id);
}

// ---- writer --------------------------------------------------------------------------------

BodyFileWriter::BodyFileWriter(std::string database_path, bool direct_io)
    : database_path_(std::move(database_path)),
      directory_(body_directory(database_path_)),
      direct_io_(direct_io) {}

BodyFileWriter::~BodyFileWriter() {
  close_all();
}

Status BodyFileWriter::open_directory(bool create) {
  bool created = false;
  Status opened;
  bool spent = false;
  open_in_reserve(
      directory_reserve_,
      [&] {
        bool made_now = false;
        int err = 0;
        opened = open_private_directory(directory_, create, directory_fd_, made_now, err);
        created = created || made_now;  // made by a try that then found no descriptor
        return err;
      },
      spent);
  if (!opened.ok()) return opened;
  // Open without its reserve (or in its place): the directory needs it no more.
  if (directory_fd_.valid()) directory_reserve_.release();
  if (directory_fd_.valid() && ::fstat(directory_fd_.get(), &directory_st_) != 0) {
    return os_failure(kSqliteCantOpen, "cannot stat the body directory", directory_, errno);
  }
  if (created) {
    directory_dirty_ = true;
    parent_dirty_ = true;
  }
  return {};
}

Status BodyFileWriter::open_file(std::int64_t session_id, File& file) {
  if (!directory_fd_.valid()) {
    if (Status st = open_directory(/*create=*/true); !st.ok()) return st;
  }
  // A file already there was never referred to by a committed event (see append()): it goes,
  // and the file is made afresh in the directory that was checked, never opened through a
  // link or as another name of an existing file (a hard link made while others could write
  // in the directory).
  // One this writer made and closed after a write in the reserve's place is opened again as it
  // is (the directory is the user's alone, so it is still the one made).
  const std::string name = std::to_string(session_id);
  if (!file.made && ::unlinkat(directory_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return os_failure(kSqliteCantOpen, "cannot replace body file",
                      body_file(database_path_, session_id), errno);
  }
  constexpr int again = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
  const int flags = file.made ? again : again | O_CREAT | O_EXCL;
  UniqueFd fd;
  const int err = open_in_reserve(
      file_reserve_,
      [&] {
        fd.reset(::openat(directory_fd_.get(), name.c_str(), flags, 0600));
        return fd.valid() ? 0 : errno;
      },
      file.in_reserve);
  if (err != 0 || (!file.made && ::fchmod(fd.get(), 0600) != 0)) {  // exact, whatever the umask
    const int failed = err != 0 ? err : errno;
    if (file.in_reserve) {
      file_reserve_.give_back([&] { fd.reset(); });
      file.in_reserve = false;
    }
    return os_failure(kSqliteCantOpen, "cannot create body file",
                      body_file(database_path_, session_id), failed);
  }
  file.fd = std::move(fd);
  if (!file.made) directory_dirty_ = true;
  const bool made_now = !file.made;
  file.made = true;
  // Direct writes start at a file's beginning; one in the reserve's place is closed at once.
  if (made_now && !file.in_reserve && direct_io_ && direct_files_ < kMaxDirectFiles &&
      start_direct_writes(file.fd.get())) {
    file.direct = std::make_unique<DirectAppender>(kDirectBufferOctets, &write_behind_);
    ++direct_files_;
  }
  return {};
}

// O_DIRECT is set after the file was made rather than asked of open(): a file system that does
// not take it refuses the open only after it has created the file, which O_EXCL would then
// find there.
bool BodyFileWriter::start_direct_writes(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) {
    if (errno == EINVAL) direct_io_ = false;  // not on this file system
    return false;
  }
  return direct_writes_work(fd);
}

// Some file systems open with O_DIRECT and then refuse the writes (EINVAL): the first file
// tries one block, and if refused, this file and all later ones go through the page cache.
bool BodyFileWriter::direct_writes_work(int fd) {
  if (direct_probed_) return direct_io_;
  direct_probed_ = true;
  DirectAppender probe(DirectAppender::kBlock);
  if (probe.append(fd, "x") == 0 && probe.flush(fd) == 0 && ::ftruncate(fd, 0) == 0) return true;
  direct_io_ = false;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_DIRECT);
  ::ftruncate(fd, 0);
  return false;
}

// Cut to `length`: a file written directly may end in the zeros of its last block, and octets
// past the last sync are referred to by nothing.
void BodyFileWriter::close_file(File& file, std::int64_t length) noexcept {
  if (file.direct) file.direct->settle();
  if (file.direct || file.size != length) ::ftruncate(file.fd.get(), static_cast<off_t>(length));
  if (file.direct) --direct_files_;
  file.fd.reset();
}

Status BodyFileWriter::append(std::int64_t session_id, std::string_view bytes,
                              std::int64_t& offset) {
  File& file = files_[session_id];
  if (!file.fd.valid()) {
    if (Status st = open_file(session_id, file); !st.ok()) {
      files_.erase(session_id);
      return st;
    }
  }
  offset = file.size;
  const int err = file.direct
                      ? file.direct->append(file.fd.get(), bytes)
                      : write_fully_at(file.fd.get(), bytes.data(), bytes.size(), file.size);
  if (err != 0) {
    return os_failure(kSqliteIoErr, "cannot write body file", body_file(database_path_, session_id),
                      err);
  }
  file.size += static_cast<std::int64_t>(bytes.size());
  if (file.in_reserve) return close_in_reserve(session_id, file);
  return {};
}

// A file open in the reserve's place gives it back after each write: synced now, as sync() would
// have before the commit, since it is not open then.
Status BodyFileWriter::close_in_reserve(std::int64_t session_id, File& file) {
  const int err = sync_file(file);
  file_reserve_.give_back([&] { file.fd.reset(); });
  file.in_reserve = false;
  if (err != 0) {
    return os_failure(kSqliteIoErr, "cannot sync body file", body_file(database_path_, session_id),
                      err);
  }
  return {};
}

// 0 or an errno.
int BodyFileWriter::sync_file(File& file) {
  if (file.size == file.synced) {
    if (file.direct) file.direct->park();  // idle for a whole commit interval: keep little
    return 0;
  }
  if (file.direct) {
    if (int err = file.direct->flush(file.fd.get())) return err;
    // Cut before the sync that makes the length durable with the octets.
    if (file.finished && ::ftruncate(file.fd.get(), static_cast<off_t>(file.size)) != 0)
      return errno;
  }
  if (::fdatasync(file.fd.get()) != 0) return errno;
  file.synced = file.size;
  return 0;
}

Status BodyFileWriter::sync() {
  for (auto it = files_.begin(); it != files_.end();) {
    File& file = it->second;
    if (int err = sync_file(file)) {
      return os_failure(kSqliteIoErr, "cannot sync body file", body_file(database_path_, it->first),
                        err);
    }
    if (file.finished) {
      close_file(file, file.synced);
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  // A new file's name must be durable too, or a power cut could keep the row and lose it; and
  // so must the directory's own, the first time.
  if (directory_dirty_) {
    if (::fsync(directory_fd_.get()) != 0) {
      return os_failure(kSqliteIoErr, "cannot sync the directory", directory_, errno);
    }
    directory_dirty_ = false;
  }
  if (parent_dirty_) {
    if (Status st = sync_parent_directory(); !st.ok()) return st;
    parent_dirty_ = false;
  }
  return {};
}

Status BodyFileWriter::sync_parent_directory() {
  const std::string path = parent_of(directory_);
  UniqueFd dir;
  bool spent = false;
  int err = open_in_reserve(
      file_reserve_,
      [&] {
        dir.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        return dir.valid() ? 0 : errno;
      },
      spent);
  if (err == 0 && ::fsync(dir.get()) != 0) err = errno;
  if (spent)
    file_reserve_.give_back([&] { dir.reset(); });
  else
    dir.reset();
  if (err != 0) return os_failure(kSqliteIoErr, "cannot sync the directory", path, err);
  return {};
}

Database::PathCheck BodyFileWriter::check_directory_path() const {
  if (!directory_fd_.valid()) return {};
  return Database::check_path_names(directory_, true, directory_st_.st_dev, directory_st_.st_ino);
}

void BodyFileWriter::finish(std::int64_t session_id) {
  auto it = files_.find(session_id);
  if (it != files_.end()) it->second.finished = true;
}

void BodyFileWriter::close_all() noexcept {
  for (auto& [id, file] : files_) {
    if (file.fd.valid()) close_file(file, file.synced);
  }
  files_.clear();
}

// ---- reader --------------------------------------------------------------------------------

BodyFileReader::BodyFileReader(std::string database_path, bool pinned)
    : database_path_(std::move(database_path)), pinned_(pinned) {}

BodyFileReader::~BodyFileReader() = default;

void BodyFileReader::open_now(std::int64_t session_id) {
  opened_once_ = true;
  open_session_ = session_id;
  // Never through a link: the writer makes none, and one put there by whoever could write in
  // the directory would have `mailtap show` or the web page hand out a file of the reader's.
  fd_.reset(::open(body_file(database_path_, session_id).c_str(),
                   O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW));
  open_error_ = fd_.valid() ? 0 : errno;
}

bool BodyFileReader::still_at_path() const {
  const std::string path = body_file(database_path_, open_session_);
  if (fd_.valid()) return same_file_at_path(fd_.get(), path);
  struct stat st {};
  return ::lstat(path.c_str(), &st) != 0 && errno == ENOENT;
}

std::string BodyFileReader::open_failure() const {
  if (open_error_ == 0 || open_error_ == ENOENT) return "";
  return os_failure(kSqliteCantOpen, "cannot open body file",
                    body_file(database_path_, open_session_), open_error_)
      .message;
}

Status BodyFileReader::read(std::int64_t session_id, std::int64_t offset, std::int64_t length,
                            std::string& out) {
  const std::string path = body_file(database_path_, session_id);
  if (offset < 0 || length < 0) {
    return Status::error(kSqliteError, "a body event of session " + std::to_string(session_id) +
                                           " has a negative offset or length");
  }
  if (pinned_ && opened_once_) {
    if (open_session_ != session_id) {
      return Status::error(kSqliteCantOpen, "body file " + quoted(path) +
                                                " is not the file this reader was pinned to");
    }
    if (!fd_.valid())
      return os_failure(kSqliteCantOpen, "cannot open body file", path, open_error_);
  } else if (!fd_.valid() || open_session_ != session_id || !same_file_at_path(fd_.get(), path)) {
    open_now(session_id);
    if (!fd_.valid())
      return os_failure(kSqliteCantOpen, "cannot open body file", path, open_error_);
  }
  const auto ends_early = [&] {
    out.clear();
    return Status::error(kSqliteIoErr, quoted(path) + " ends before octet " +
                                           std::to_string(offset) + " + " + std::to_string(length) +
                                           " that the database refers to (truncated, or "
                                           "not the body file of this database)");
  };
  // Checked before anything is allocated: a damaged row must not ask for terabytes.
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0)
    return os_failure(kSqliteIoErr, "cannot read body file", path, errno);
  if (offset > st.st_size || length > st.st_size - offset) return ends_early();
  out.resize(static_cast<std::size_t>(length));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                              static_cast<off_t>(offset) + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_failure(kSqliteIoErr, "cannot read body file", path, errno);
    if (n == 0) return ends_early();  // shrunk while being read
    done += static_cast<std::size_t>(n);
  }
  return {};
}

namespace {

constexpr std::string_view kSetAsidePrefix = ".pruned-";

std::string set_aside_file(const std::string& database_path, std::int64_t session_id) {
  return body_directory(database_path) + "/" + std::string(kSetAsidePrefix) +
         std::to_string(session_id);
}

}  // namespace

std::size_t set_aside_body_files(const std::string& database_path,
                                 const std::vector<std::int64_t>& session_ids,
                                 std::vector<std::int64_t>& moved) {
  std::size_t failed = 0;
  for (const std::int64_t id : session_ids) {
    // A file already under the new name is one set aside before and not yet removed: replaced.
    const std::string from = body_file(database_path, id);
    if (::rename(from.c_str(), set_aside_file(database_path, id).c_str()) == 0)
      moved.push_back(id);
    else if (errno != ENOENT)
      ++failed;
  }
  return failed;
}

std::size_t remove_set_aside_body_files(const std::string& database_path,
                                        const std::vector<std::int64_t>& session_ids) {
  std::size_t failed = 0;
  for (const std::int64_t id : session_ids) {
    const std::string path = set_aside_file(database_path, id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) ++failed;
  }
  return failed;
}

bool is_regular_file_entry(int directory_fd, const char* name, unsigned char d_type) {
  if (d_type != DT_UNKNOWN) return d_type == DT_REG;
  struct stat st {};
  return ::fstatat(directory_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

Status list_body_files(const std::string& database_path, BodyDirectoryListing& out) {
  out = {};
  const std::string path = body_directory(database_path);
  const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) {
    if (errno == ENOENT) return {};
    return os_failure(kSqliteCantOpen, "cannot read the body directory", path, errno);
  }
  for (;;) {
    errno = 0;  // readdir tells its end from an error by errno alone (fstatat may have set it)
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) break;
    if (!is_regular_file_entry(::dirfd(dir.get()), entry->d_name, entry->d_type)) continue;
    const std::string_view name = entry->d_name;
    if (const std::int64_t id = session_id_named(name); id != 0) {
      out.files.push_back(id);
    } else if (name.starts_with(kSetAsidePrefix)) {
      if (const std::int64_t aside = session_id_named(name.substr(kSetAsidePrefix.size()));
          aside != 0)
        out.set_aside.push_back(aside);
    }
  }
  if (errno != 0) return os_failure(kSqliteIoErr, "cannot read the body directory", path, errno);
  return {};
}

}  // namespace mailtap::storage
