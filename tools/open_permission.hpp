// Why the user running mailtap cannot read a database, when file permissions are the cause.
// SQLite says only "unable to open database file"; the tools add this (ToolOptions::
// explain_open_error), so a reader is told what to change and whom to ask.
#pragma once

#include <string>

namespace mailtap::tools {

// "permission denied: '/srv/m.db' is owned by root (uid 0) with mode 0600, and mailtap runs as
// nobody (uid 65534)", or for a directory on the way that cannot be entered "permission
// denied: cannot enter '/srv' (owned by ..., mode 0700) ...", or the same of the database's
// -wal or -shm file beside it; "" when permissions are not what keeps it closed (or the
// path does not exist). Judged as the open is, with the effective user and groups.
std::string permission_denied_reason(const std::string& path);

}  // namespace mailtap::tools
