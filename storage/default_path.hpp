// Where the database lives when --db is not given.
#pragma once

#include <functional>
#include <string>

namespace mailtap::storage {

// $MAILTAP_DB if set and non-empty; else $XDG_DATA_HOME/mailtap/mailtap.db if XDG_DATA_HOME is
// an absolute path (the XDG spec says to ignore relative ones); else
// $HOME/.local/share/mailtap/mailtap.db. Returns "" and sets `error` if none applies.
std::string default_database_path(std::string& error);

// Same, reading the environment through `getenv` (for tests).
std::string default_database_path(const std::function<const char*(const char*)>& getenv,
                                  std::string& error);

// The same path for the proxy, which creates the file and the directories above it: run as
// root (`euid` 0) it refuses a default in a home that is not root's (other_users_home_refusal),
// returning "" with `error` saying why. MAILTAP_DB, like --db, is taken as asked.
std::string default_database_path_to_write(std::string& error);
std::string default_database_path_to_write(const std::function<const char*(const char*)>& getenv,
                                           unsigned euid, std::string& error);

// Where the systemd user unit of older mailtaps recorded (StateDirectory=, MAILTAP_DB=%S/...):
// $XDG_STATE_HOME/mailtap/mailtap.db if XDG_STATE_HOME is an absolute path, else
// $HOME/.local/state/mailtap/mailtap.db; "" if neither applies. The unit now records to the
// default above, as everything else; this is only to find a record left there.
std::string older_unit_database_path(const std::function<const char*(const char*)>& getenv);

// older_unit_database_path() when `default_path` does not exist and that file does: a record
// left by an older unit, which the default does not show; else "".
std::string older_unit_database_left(const std::string& default_path);
std::string older_unit_database_left(const std::string& default_path,
                                     const std::function<const char*(const char*)>& getenv);

}  // namespace mailtap::storage
