// MAILTAP_… variables that name nothing mailtap reads (MAILTAP_UPSTREM): a typo in the file is
// refused, one in the environment would silently leave the default (smtp.gmail.com) in place.
// The environment carries unrelated variables too, so these are warnings, never refusals; and
// they name the variable only, never its value, which may be a secret.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mailtap::cli {

// One line for each non-empty MAILTAP_ variable of `environment` (a NULL-terminated
// "NAME=value" list, as `environ`) that is neither the variable of an option of `mailtap proxy`
// under `root` (OptionLayers::env_name), nor MAILTAP_CONFIG, MAILTAP_DB or MAILTAP_COLOR, nor
// one of `also_read` (the variable --password-env names). Each says the closest known variable when
// one is close.
std::vector<std::string> unknown_variable_warnings(const CLI::App& root,
                                                   const std::vector<std::string>& also_read,
                                                   const char* const* environment);

// Logs those warnings for the environment of this process; `app` is any command of the tree.
void warn_about_unknown_variables(const CLI::App& app, const std::vector<std::string>& also_read);

}  // namespace mailtap::cli
