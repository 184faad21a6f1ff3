// Where a message sends a person to read more: "docs/config.md" is a path in the source tree,
// which someone who installed mailtap (the .deb, `cmake --install`) does not have; they have
// the same files under PREFIX/share/doc/mailtap/docs (cmake/install.cmake installs them there).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace mailtap {

// "docs/NAME" as the person running this binary can open it: the installed copy, when the
// binary runs from an installed PREFIX/bin and PREFIX/share/doc/mailtap/docs/NAME exists; else
// "docs/NAME" (a binary run from its build tree, beside the source's docs/).
std::string documentation_path(std::string_view name);

// The same for a binary at `executable` (an absolute path), with `exists` telling whether a
// file exists; `bindir` and `docdir` are the install directories, relative to the prefix (or,
// for docdir, absolute), as GNUInstallDirs gives them.
std::string documentation_path(std::string_view name, const std::string& executable,
                               std::string_view bindir, std::string_view docdir,
                               const std::function<bool(const std::string&)>& exists);

}  // namespace mailtap
