#include "proxy/command/proxy_settings.hpp"

#include <algorithm>

#include "proxy/common/installed_docs.hpp"
#include "proxy/common/private_file.hpp"
#include "proxy/net/endpoint.hpp"

namespace mailtap::cli {

namespace {

constexpr std::string_view upstream_prefix = "upstream.";

// A table that is no one's, with keys or without ([shwo] alone), is refused at its own line;
// `known` are the tables of the other commands.
std::string check_tables(const ConfigFile& file, std::vector<std::string> known) {
  known.insert(known.end(), {"", "proxy"});
  const ConfigTable* t = file.first_unknown_table(known);
  if (t == nullptr) return {};
  return file.where(*t) + ": unknown table " + written_table(t->name) +
         " in the config file; mailtap proxy reads [proxy] and [upstream.NAME] (and the keys "
         "before any table)";
}

// `default_path` is the file mailtap reads when none is named (XDG_CONFIG_HOME, else HOME): the
// hint names it, not ~/.config, which is not read when XDG_CONFIG_HOME says otherwise.
std::string check_upstream_name(const ConfigFile& file, std::string_view name,
                                const std::string& default_path) {
  if (name.empty()) return {};
  const std::vector<std::string> names = file.upstream_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return {};
  const std::string wanted = "no upstream named \"" + std::string(name) + "\"";
  if (file.path.empty())
    return wanted + ": there is no config file (write " +
           written_table("upstream." + std::string(name)) + " in " +
           (default_path.empty() ? "a file named by --config (no HOME to find the default one)"
                                 : default_path) +
           ", see " + documentation_path("config.md") + ", or give --upstream HOST:PORT)";
  if (names.empty()) return wanted + " in " + file.path + ": it defines no [upstream.NAME] table";
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return wanted + " in " + file.path + "; it defines: " + list;
}

// An [upstream.NAME] with no key names no server: `mailtap proxy NAME` would go wherever
// [proxy] or the default says, and a name the file plainly has would be "no upstream named". It
// can only be unfinished, so the file is refused at its line, whichever upstream is asked for.
std::string check_empty_upstreams(const ConfigFile& file) {
  for (const ConfigTable& t : file.tables) {
    if (!t.name.starts_with(upstream_prefix) || !file.section(t.name).empty()) continue;
    return file.where(t) + ": " + written_table(t.name) +
           " is empty, so it names no server: give it upstream = \"HOST[:PORT]\" (or host = "
           "\"HOST\"), or remove the table";
  }
  return {};
}

// A password may sit in the file only if nobody else can read the file (as ssh and msmtp
// insist for private keys and passwords). The fix said is the one for the cause: chmod cannot
// give a file back to its user.
std::string check_password_privacy(const ConfigFile& file) {
  if (file.private_to_owner) return {};
  for (const ConfigEntry& e : file.entries) {
    if (e.key != "password") continue;
    const std::string better =
        ", or better, replace it with password-cmd (e.g. password-cmd = \"pass show "
        "mail/account\")";
    if ((file.mode & 077) != 0) {
      const std::string path = path_to_chmod(file.path);
      return file.where(e) + ": a password in a config file that others can read (mode " +
             octal_mode(file.mode) + ") is refused: " +
             (path.empty() ? "make the file given on " + file.path + " private (chmod 600)"
                           : "chmod 600 " + path) +
             better;
    }
    return file.where(e) + ": a password in a config file owned by " + describe_uid(file.owner) +
           ", not by you, is refused: copy it to a file of your own (mode 0600)" + better;
  }
  return {};
}

// `port` only beside `host`: alone it could only guess which host it is for.
std::string check_port_has_host(const ConfigFile& file) {
  for (const ConfigEntry& e : file.entries) {
    if (e.key != "port" || file.find(e.section, "host") != nullptr) continue;
    return file.where(e) +
           ": port needs host in the same table (or write upstream = "
           "\"HOST:PORT\")";
  }
  return {};
}

// host and port from the file give --upstream, with host's source.
std::string combine_host_port(OptionLayers& layers) {
  const Setting* host = layers.find("host");
  const Setting* port = layers.find("port");
  if (host == nullptr || !host->is_set()) return {};
  std::string value = host->entry->value;
  if (!net::is_host(value))
    return host->source.describe() + ": host must be a host name or an IP address";
  if (value.find(':') != std::string::npos) value = "[" + value + "]";
  if (port != nullptr && port->is_set()) {
    if (!net::parse_host_port("x:" + port->entry->value))
      return port->source.describe() + ": port must be a number from 1 to 65535";
    value += ":" + port->entry->value;
  }
  return layers.set_derived("upstream", value, host->source, {"host", "port"});
}

}  // namespace

std::vector<std::string> proxy_tables(std::string_view upstream_name) {
  std::vector<std::string> out;
  if (!upstream_name.empty())
    out.push_back(std::string(upstream_prefix) + std::string(upstream_name));
  out.push_back("proxy");
  out.push_back("");
  return out;
}

std::string apply_proxy_settings(OptionLayers& layers, const ConfigFile& file,
                                 std::string_view upstream_name,
                                 const std::vector<std::string>& other_commands,
                                 const OptionLayers::Getenv& getenv) {
  using FileValue = OptionLayers::FileValue;
  layers.add_file_only_key("host", FileValue::text, {"upstream"});
  layers.add_file_only_key("port", FileValue::number, {"upstream"});
  layers.add_file_only_key("password", FileValue::secret,
                           {"password-env", "password-file", "password-cmd"});
  // --no-record against MAILTAP_DB (the systemd unit sets it) is a choice, not a conflict.
  layers.add_exclusive("db", "no-record");
  layers.add_path_keys(
      {"db", "ca-file", "password-file", "local-cert", "local-key", "client-cert", "client-key"});

  std::vector<std::string> checked = {"", "proxy"};
  for (const std::string& name : file.upstream_names())
    checked.push_back(std::string(upstream_prefix) + name);
  for (const std::string& error :
       {check_tables(file, other_commands), layers.check_keys(file, checked),
        check_empty_upstreams(file),
        check_upstream_name(file, upstream_name, default_config_path(getenv)),
        check_password_privacy(file), check_port_has_host(file)})
    if (!error.empty()) return error;

  if (std::string error = layers.apply(file, proxy_tables(upstream_name), getenv); !error.empty())
    return error;
  return combine_host_port(layers);
}

}  // namespace mailtap::cli
