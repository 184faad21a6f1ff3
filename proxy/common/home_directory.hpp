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

}  // namespace mailtap
