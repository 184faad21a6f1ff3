#include "storage/wal_write_batching.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <string>

namespace mailtap::storage {

namespace {

// The most a batch holds before it is written anyway (a large transaction): the default VFS
// writes less than 128 KiB per call (its seekAndWrite() keeps 17 bits of the length).
constexpr std::size_t kMostBatched = std::size_t{124} * 1024;
// WAL format (sqlite.org/fileformat2.html#walformat): a frame header is 24 octets; octets 4..7
// hold the database size in pages after a commit, and zero in every other frame.
constexpr int kFrameHeaderOctets = 24;

sqlite3_vfs* g_default = nullptr;

struct WalFile {
  sqlite3_file base;   // first: SQLite sees a WalFile as an sqlite3_file
  sqlite3_file* real;  // the default VFS's file, in the same allocation after this struct
  std::string batch;   // octets not yet written, from batch_offset on
  sqlite3_int64 batch_offset = 0;
  sqlite3_int64 next_offset = -1;  // where the last write ended
  bool commit_page_next = false;   // the last write was a commit frame's header
  // The file at its path when it was opened, for SQLITE_FCNTL_HAS_MOVED: the default VFS
  // answers it for a database file only, and a -wal file deleted under the connection takes
  // every later commit into an inode nobody else can read (Database::check_wal_path).
  std::string path;
  bool identity_known = false;
  dev_t dev = 0;
  ino_t ino = 0;

  // One stat. Not moved when its identity is unknown: nothing to compare.
  bool has_moved() const {
    struct stat st {};
    return identity_known &&
           (::stat(path.c_str(), &st) != 0 || st.st_dev != dev || st.st_ino != ino);
  }

  int flush() {
    if (batch.empty()) return SQLITE_OK;
    const int rc =
        real->pMethods->xWrite(real, batch.data(), static_cast<int>(batch.size()), batch_offset);
    batch.clear();
    return rc;
  }

  // Only the frames SQLite appends one after the other are batched. Anything else (the WAL
  // header after a reset, a frame overwritten in place, checksums rewritten) is written at
  // once, after the batch: then no write that ends a commit can be left behind in memory.
  int write(const void* data, int amount, sqlite3_int64 offset) {
    const auto n = static_cast<std::size_t>(amount);
    const bool appends = offset == next_offset;
    const bool ends_commit = appends && commit_page_next;
    commit_page_next = amount == kFrameHeaderOctets &&
                       std::memcmp(static_cast<const char*>(data) + 4, "\0\0\0\0", 4) != 0;
    next_offset = offset + amount;
    if (!appends || batch.size() + n > kMostBatched) {
      if (int rc = flush(); rc != SQLITE_OK) return rc;
    }
    if (!appends || n >= kMostBatched) return real->pMethods->xWrite(real, data, amount, offset);
    if (batch.empty()) batch_offset = offset;
    batch.append(static_cast<const char*>(data), n);
    return ends_commit ? flush() : SQLITE_OK;
  }
};
static_assert(sizeof(WalFile) % 8 == 0, "the default VFS's file follows, 8-aligned");

WalFile* wal(sqlite3_file* f) {
  return reinterpret_cast<WalFile*>(f);
}

// Every method but xWrite writes the batch first, so that nothing (a read, the size, a sync,
// a truncation) ever sees the file without it.
int wal_close(sqlite3_file* f) {
  WalFile* w = wal(f);
  const int flushed = w->flush();
  const int rc = w->real->pMethods->xClose(w->real);
  w->~WalFile();
  return flushed != SQLITE_OK ? flushed : rc;
}

int wal_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  if (int rc = wal(f)->flush(); rc != SQLITE_OK) return rc;
  return wal(f)->real->pMethods->xRead(wal(f)->real, out, amount, offset);
}

int wal_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  try {
    return wal(f)->write(data, amount, offset);
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
}

int wal_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = wal(f)->flush(); rc != SQLITE_OK) return rc;
  return wal(f)->real->pMethods->xTruncate(wal(f)->real, size);
}

int wal_sync(sqlite3_file* f, int flags) {
  if (int rc = wal(f)->flush(); rc != SQLITE_OK) return rc;
  return wal(f)->real->pMethods->xSync(wal(f)->real, flags);
}

int wal_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = wal(f)->flush(); rc != SQLITE_OK) return rc;
  return wal(f)->real->pMethods->xFileSize(wal(f)->real, size);
}

int wal_lock(sqlite3_file* f, int level) {
  return wal(f)->real->pMethods->xLock(wal(f)->real, level);
}

int wal_unlock(sqlite3_file* f, int level) {
  return wal(f)->real->pMethods->xUnlock(wal(f)->real, level);
}

int wal_check_reserved_lock(sqlite3_file* f, int* out) {
  return wal(f)->real->pMethods->xCheckReservedLock(wal(f)->real, out);
}

int wal_file_control(sqlite3_file* f, int op, void* arg) {
  if (op == SQLITE_FCNTL_HAS_MOVED) {
    *static_cast<int*>(arg) = wal(f)->has_moved() ? 1 : 0;
    return SQLITE_OK;
  }
  if (int rc = wal(f)->flush(); rc != SQLITE_OK) return rc;
  return wal(f)->real->pMethods->xFileControl(wal(f)->real, op, arg);
}

int wal_sector_size(sqlite3_file* f) {
  return wal(f)->real->pMethods->xSectorSize(wal(f)->real);
}

int wal_device_characteristics(sqlite3_file* f) {
  return wal(f)->real->pMethods->xDeviceCharacteristics(wal(f)->real);
}

// Version 1 methods: a WAL file is never shared memory and never memory-mapped.
const sqlite3_io_methods kWalMethods = {
    1,
    wal_close,
    wal_read,
    wal_write,
    wal_truncate,
    wal_sync,
    wal_file_size,
    wal_lock,
    wal_unlock,
    wal_check_reserved_lock,
    wal_file_control,
    wal_sector_size,
    wal_device_characteristics,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

int open_file(sqlite3_vfs* /*vfs*/, sqlite3_filename name, sqlite3_file* file, int flags,
              int* out_flags) {
  if ((flags & SQLITE_OPEN_WAL) == 0) {
    // Not a WAL file: the default VFS's file, in place; SQLite calls its methods directly.
    return g_default->xOpen(g_default, name, file, flags, out_flags);
  }
  auto* w = new (file) WalFile{};
  w->base.pMethods = nullptr;  // until the real file is open: SQLite then skips xClose
  w->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(WalFile));
  const int rc = g_default->xOpen(g_default, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods != nullptr) w->real->pMethods->xClose(w->real);
    w->~WalFile();
    return rc;
  }
  w->base.pMethods = &kWalMethods;
  // Right after the open, which made the file or found it there: what SQLite holds open.
  try {
    w->path = name;
  } catch (const std::bad_alloc&) {
    return SQLITE_OK;  // its identity stays unknown: never taken for moved
  }
  struct stat st {};
  if (::stat(name, &st) == 0) {
    w->identity_known = true;
    w->dev = st.st_dev;
    w->ino = st.st_ino;
  }
  return SQLITE_OK;
}

sqlite3_vfs* make_vfs() {
  g_default = sqlite3_vfs_find(nullptr);
  if (g_default == nullptr) return nullptr;
  static sqlite3_vfs vfs = *g_default;
  vfs.zName = "mailtap-wal-batching";
  vfs.pNext = nullptr;
  vfs.szOsFile = static_cast<int>(sizeof(WalFile)) + g_default->szOsFile;
  vfs.xOpen = open_file;
  if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) return nullptr;
  return &vfs;
}

}  // namespace

const char* wal_write_batching_vfs() {
  static sqlite3_vfs* const vfs = make_vfs();
  return vfs != nullptr ? vfs->zName : nullptr;
}

}  // namespace mailtap::storage
