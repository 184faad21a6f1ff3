// `mailtap proxy --print-config`: the effective configuration, each value with where it came
// from, secrets masked, as `msmtp --pretend` shows an account (docs/config.md).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "proxy/cli/config_file.hpp"
#include "proxy/cli/option_layers.hpp"

namespace mailtap::cli {

// What an option left unset amounts to when its default is computed (the TLS mode from the
// port, the SNI name from the host ...): `value` ("" when it stays unset) and why; and what a
// 0 given for it stands for, if it stands for something else (threads = 0: one per core).
struct DerivedDefault {
  std::string value;
  std::string why;
  std::string zero_means = {};
};

// TOML-like lines, `key = value  # source`, in the order the command defines its options.
// A secret is shown as "********" and never read.
std::string format_effective_config(std::string_view command, const ConfigFile& file,
                                    const std::string& default_file_path,
                                    std::string_view upstream_name, const OptionLayers& layers,
                                    const std::map<std::string, DerivedDefault>& derived);

}  // namespace mailtap::cli
