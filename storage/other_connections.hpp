// Whether another process has a database open, for a writer that would otherwise pause for
// one that may wait for the write lock (the pruner). Not SQL: SQLite says nothing of other
// connections, but Linux lists the locks they hold in /proc/locks.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace mailtap::storage {

// Whether a process other than this one has the database at `path` open. Every connection to
// a database in WAL mode holds a read lock on a byte of its -shm file (SQLite's "DMS" lock) for
// as long as it is open, readers as well as writers; so does this process's own connection,
// which must be open. nullopt when it cannot tell: no /proc/locks, no -shm file (not in WAL
// mode), or this process's own lock is not among those listed for the file (it looked at
// another file than SQLite's, a file system that lists its locks under other numbers).
std::optional<bool> opened_by_another_process(const std::string& path);

// opened_by_another_process() of the text of /proc/locks: whether a process other than `self`
// holds a lock on inode `inode` (of any device: the listing may number devices otherwise than
// stat(2)), nullopt if `self` holds none there.
std::optional<bool> other_lock_holders(std::string_view proc_locks, ino_t inode, pid_t self);

}  // namespace mailtap::storage
