// Why a writer cannot write beside the database. SQLite keeps its -wal and -shm files, and
// mailtap its -bodies directory, next to the database file, so a file its user may write in a
// directory they may not still fails, with SQLite's bare "attempt to write a readonly
// database" that sends the reader to the file's mode, which is fine.
#pragma once

#include <string>

namespace mailtap::storage {

// "" when the effective user may create files in the directory of `db_path` (or it cannot be
// told); else why not, without parentheses: "mailtap must create the database's -wal and -shm
// files and its -bodies directory beside it, and '/srv' (owned by root (uid 0), mode 0755) is
// not writable by nobody (uid 65534): ...", or that it is on a read-only file system.
std::string unwritable_directory_reason(const std::string& db_path);

// Whether what keeps a writer from the database at `db_path` is a lasting matter of rights,
// which no retry mends (the proxy's exit status 2, which its systemd unit does not restart):
// its directory is not writable (above), the database, its -wal, -shm or -bodies is another
// user's (a link they made there too), or the file is not writable by the effective user (its
// mode, a read-only file system). False otherwise.
bool write_access_lacking(const std::string& db_path);

}  // namespace mailtap::storage
