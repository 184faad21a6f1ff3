// The directories the environment names (HOME, XDG_CONFIG_HOME, XDG_DATA_HOME), read one way
// everywhere: only an absolute path counts. The XDG spec says so of its variables, and the same
// holds for HOME: a relative one (HOME='~', HOME=.) would put the record, the config and the
// key under the current directory, in a directory literally named `~`, while every message
// shows a path that looks like the real home.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace mailtap {

using Getenv = std::function<const char*(const char*)>;

// The directory `variable` names, as a prefix for "/sub/path": trailing slashes trimmed, and
// "/" as "" (so that prefix + "/.config" is "/.config"). nullopt when the variable is unset,
// empty or not an absolute path.
std::optional<std::string> directory_from_env(const Getenv& getenv, const char* variable);

// " (HOME is set but not an absolute path, so it is not used)" when that is so, else "": for the
// error that says no path could be made.
std::string relative_home_note(const Getenv& getenv);

// Run as root with another user's HOME (`sudo -E`, `su -m`, a root cron job or script that
// keeps HOME), what mailtap makes under a default path would be root's: a missing ~/.local made
// root-owned 0700 shuts that user out of ~/.local altogether. So, as ssh reads its files only
// from its own user's home, mailtap as root makes nothing in a home that is not root's: the
// refusal ("HOME is /home/u, which belongs to uid 1000 ...", to which the caller adds its own
// way out), or "" when `euid` is not 0 or the directory `variable` names (`dir`; a missing one:
// its nearest existing parent) is root's.
std::string other_users_home_refusal(const std::string& dir, const char* variable, unsigned euid);

}  // namespace mailtap
