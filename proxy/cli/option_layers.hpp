// Where each option of a command gets its value: the command line, else a MAILTAP_…
// environment variable, else the config file (its most specific table first), else the
// default (docs/config.md). CLI11 2.1.2 would let the file beat the environment, and cannot say
// where a value came from, so the layers below the command line are applied here, after
// CLI11 has parsed it, through each option's own validators and callback.
//
// It works on whatever options the command defines: an option added later is configurable
// from the file and the environment without further code.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cli/config_file.hpp"

namespace mailtap::cli {

struct ValueSource {
  enum class Kind : std::uint8_t { default_value, file, env, flag };
  Kind kind = Kind::default_value;
  std::string detail;  // flag: "--listen"; env: "MAILTAP_LISTEN"; file: "PATH:LINE [table]"
  // "flag --listen", "env MAILTAP_LISTEN", "file PATH:LINE [table]", "default"
  std::string describe() const;
};

struct Setting {
  std::string key;                     // "listen", "auth-user", "password"
  CLI::Option* option = nullptr;       // nullptr for a key only the file has
  std::string value;                   // as given; "" when unset (for a secret: always "")
  bool secret = false;                 // a value never shown
  bool number = false;                 // a file-only key holding a number (shown bare)
  const ConfigEntry* entry = nullptr;  // the file's entry when the file gave the value
  ValueSource source;
  // The key whose value carries this one's (host and port in upstream); "" when none.
  std::string folded_into;
  // A value a lower layer gave but a higher one overrode by choosing another option of the same
  // choice (the file's password-cmd under a --password-env flag): not used, and still shown.
  struct Overridden {
    std::string value;  // as given ("" for a secret)
    ValueSource source;
    std::string by;  // "flag --password-env", "no-record in file PATH:3 [proxy]"
  };
  std::optional<Overridden> overridden;
  bool is_set() const { return source.kind != ValueSource::Kind::default_value; }
};

class OptionLayers {
 public:
  using Getenv = std::function<const char*(const char*)>;

  // Takes part: every non-positional option of `app` with a long name, except --help,
  // --config and those in `skip`; with `only` non-empty, just the options it names.
  explicit OptionLayers(CLI::App& app, std::vector<std::string> only = {},
                        std::vector<std::string> skip = {});

  // What a key only the file has holds: text, a number (which --print-config writes bare, as an
  // option's number is), or a secret (never shown).
  enum class FileValue : std::uint8_t { text, number, secret };

  // A key only the file may hold (never the command line or the environment), such as a
  // password; `excludes` names options that give the same thing another way.
  void add_file_only_key(std::string key, FileValue value, std::vector<std::string> excludes);

  // Keys whose value is a path: a relative one from the file is relative to the file's
  // directory, not to wherever mailtap was started (a flag's or a variable's stays relative to
  // the current directory, as the shell that gave it means).
  void add_path_keys(const std::vector<std::string>& keys);

  // `a` and `b` are one choice (as if they excluded each other) without CLI11 refusing both on
  // the command line, where the command has its own message for that.
  void add_exclusive(std::string a, std::string b);

  // Sets `key` from a value the command derived from the keys `from` (host and port giving
  // upstream), through the option, with the source of those keys. Each of `from` is then
  // folded into `key`.
  std::string set_derived(std::string_view key, const std::string& value, ValueSource source,
                          const std::vector<std::string>& from);

  // Every key of `sections` must be known; else an error naming the file, line and key.
  std::string check_keys(const ConfigFile& file, const std::vector<std::string>& sections) const;

  // Call once, after CLI11 parsed the command line. `sections` from the most specific
  // ("upstream.gmail", "proxy", "" for the keys before any table). Options that exclude each
  // other are one choice: the highest layer that gives any of them decides it. Returns an
  // error message (never quoting a secret), or "".
  std::string apply(const ConfigFile& file, const std::vector<std::string>& sections,
                    const Getenv& getenv);

  // A command's own check speaks of flags ("--listen x: expected ADDR:PORT"): when the value
  // of the option `message` starts with came from the environment or the file, says so
  // ("... (file PATH:3 [proxy])"); when other options its statement names (before its first
  // "; ") did, names each ("--insecure has no effect with --tls none: ... (--tls from file
  // PATH:3 [proxy])").
  std::string with_source(std::string message) const;

  const std::vector<Setting>& settings() const { return settings_; }
  // `a` and `b` are one choice (CLI11's excludes, or add_file_only_key's and add_exclusive's).
  bool excludes(const Setting& a, const Setting& b) const;
  const Setting* find(std::string_view key) const;

  // "auth-user" -> "MAILTAP_AUTH_USER"
  static std::string env_name(std::string_view key);

 private:
  struct Candidate {
    Setting* setting;
    std::string value;
    const ConfigEntry* entry;
    ValueSource source;
  };
  Setting* find_mutable(std::string_view key);
  std::string apply_layer(std::vector<Candidate> layer);
  // Gives the candidate's value to its setting, through its option; an error, or "".
  std::string take(Candidate& c);
  // The steps of apply: flags as given; the environment's and one file section's candidates;
  // the options a set one needs (an error, or empty).
  void take_flags();
  // A value no option can mean (not UTF-8, a control character) is an error, as in the file.
  std::vector<Candidate> env_candidates(const Getenv& getenv, std::string& error);
  std::vector<Candidate> file_candidates(const ConfigFile& file, const std::string& section,
                                         const Getenv& getenv);
  std::string check_needs() const;
  // `value` of the path key `key` from `file`, made absolute; "" with `error` set if the
  // file has no directory (a pipe).
  std::string file_path_value(const ConfigFile& file, const ConfigEntry& e, std::string value,
                              std::string& error) const;

  std::vector<Setting> settings_;
  std::vector<std::pair<std::string, std::string>> extra_excludes_;
  std::vector<std::string> path_keys_;
  std::string file_error_;  // from file_candidates, returned by apply
};

// "~/x" in the file or a MAILTAP_ variable is $HOME/x, as msmtp and ssh read their files: no
// shell expands it there (systemd's Environment= does not either), and a line --print-config
// shows means the same in the file and in the environment. A HOME that is not absolute is no
// home: the value stays as it is, and the path options refuse a leading ~ with a hint.
std::string home_expanded(const std::string& value, const OptionLayers::Getenv& getenv);

}  // namespace mailtap::cli
