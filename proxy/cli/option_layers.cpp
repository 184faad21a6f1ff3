#include "proxy/cli/option_layers.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "proxy/cli/option_values.hpp"
#include "proxy/common/home_directory.hpp"

namespace mailtap::cli {

namespace {

std::string long_name(const CLI::Option& o) {
  const auto& names = o.get_lnames();
  return names.empty() ? std::string() : names.front();
}

bool contains(const std::vector<std::string>& list, std::string_view word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

// What a set option holds, for --print-config: "-vv" is 2, not "true true"; the count the
// command runs with.
std::string shown_value(const CLI::Option& o) {
  const auto& results = o.results();
  if (o.get_items_expected_max() == 0 &&
      o.get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll)
    return std::to_string(flag_count(o));
  // A list (--allow-local-user a --allow-local-user b) as its option splits it: "a,b".
  const std::string separator = o.get_delimiter() != '\0' ? std::string(1, o.get_delimiter()) : " ";
  std::string out;
  for (const auto& r : results) out += (out.empty() ? "" : separator) + r;
  return out;
}

// "db = : ..." reads as if the value were missing; an empty value is shown as the file wrote it.
std::string refused_setting(const std::string& where, const std::string& key,
                            const std::string& value, const std::string& why) {
  return where + ": " + key + " = " + (value.empty() ? "\"\"" : value) + ": " + why;
}

// A yes/no flag given as false (no-record = false) chooses nothing: it neither contradicts
// another option of its choice in the same layer nor overrides one a lower layer gives, as on
// the command line (--db X --no-record=false).
bool chooses(const Setting& s, const std::string& value) {
  return s.option == nullptr || !says_no(*s.option, value);
}

// What made a choice: "flag --password-env", "env MAILTAP_NO_RECORD", "password in file
// PATH:8 [upstream.gmail]" (a file's source names no key).
std::string chosen_by(const Setting& s) {
  if (s.source.kind == ValueSource::Kind::file) return s.key + " in " + s.source.describe();
  return s.source.describe();
}

}  // namespace

std::string home_expanded(const std::string& value, const OptionLayers::Getenv& getenv) {
  if (value.rfind("~/", 0) != 0) return value;
  const std::optional<std::string> home = directory_from_env(getenv, "HOME");
  return home ? *home + value.substr(1) : value;
}

std::string ValueSource::describe() const {
  switch (kind) {
    case Kind::flag:
      return "flag " + detail;
    case Kind::env:
      return "env " + detail;
    case Kind::file:
      return "file " + detail;
    case Kind::default_value:
      break;
  }
  return "default";
}

OptionLayers::OptionLayers(CLI::App& app, std::vector<std::string> only,
                           std::vector<std::string> skip) {
  skip.insert(skip.end(), {"help", "config"});
  for (CLI::Option* o : app.get_options()) {
    const std::string name = long_name(*o);
    if (!o->nonpositional() || name.empty() || contains(skip, name)) continue;
    if (!only.empty() && !contains(only, name)) continue;
    Setting s;
    s.key = name;
    s.option = o;
    settings_.push_back(std::move(s));
  }
}

void OptionLayers::add_file_only_key(std::string key, FileValue value,
                                     std::vector<std::string> excludes) {
  Setting s;
  s.key = key;
  s.secret = value == FileValue::secret;
  s.number = value == FileValue::number;
  settings_.push_back(std::move(s));
  for (std::string& other : excludes) extra_excludes_.emplace_back(key, std::move(other));
}

void OptionLayers::add_exclusive(std::string a, std::string b) {
  extra_excludes_.emplace_back(std::move(a), std::move(b));
}

void OptionLayers::add_path_keys(const std::vector<std::string>& keys) {
  path_keys_.insert(path_keys_.end(), keys.begin(), keys.end());
}

std::string OptionLayers::file_path_value(const ConfigFile& file, const ConfigEntry& e,
                                          std::string value, std::string& error) const {
  // Empty and ~ are the path option's own to refuse, with its reason.
  if (!contains(path_keys_, e.key) || value.empty() || value.front() == '/' || value.front() == '~')
    return value;
  if (file.directory.empty()) {
    error = file.where(e) + ": " + e.key + " = " + value +
            ": a relative path in a config that is no file on disk (a pipe) has no directory "
            "to be relative to: write an absolute path, or ~/...";
    return value;
  }
  return (std::filesystem::path(file.directory) / value).lexically_normal().string();
}

std::string OptionLayers::set_derived(std::string_view key, const std::string& value,
                                      ValueSource source, const std::vector<std::string>& from) {
  Setting* s = find_mutable(key);
  if (s == nullptr || s->option == nullptr) return "no option " + std::string(key);
  try {
    s->option->clear();
    s->option->add_result(value);
    s->option->run_callback();
  } catch (const CLI::Error& e) {
    return refused_setting(source.describe(), s->key, value, e.what());
  }
  s->value = shown_value(*s->option);
  s->source = std::move(source);
  for (const std::string& input : from)
    if (Setting* f = find_mutable(input); f != nullptr && f != s) f->folded_into = s->key;
  return {};
}

Setting* OptionLayers::find_mutable(std::string_view key) {
  for (Setting& s : settings_)
    if (s.key == key) return &s;
  return nullptr;
}

const Setting* OptionLayers::find(std::string_view key) const {
  for (const Setting& s : settings_)
    if (s.key == key) return &s;
  return nullptr;
}

std::string OptionLayers::with_source(std::string message) const {
  if (message.rfind("--", 0) != 0) return message;
  constexpr std::string_view kKeyChars = "abcdefghijklmnopqrstuvwxyz0123456789-";
  // The options the statement names (up to its first "; ", after which comes advice), each
  // once: those a flag did not give are the ones whose source the user may not see.
  const std::string_view statement = std::string_view(message).substr(0, message.find("; "));
  std::vector<const Setting*> named;
  for (std::size_t at = statement.find("--"); at != std::string_view::npos;
       at = statement.find("--", at + 2)) {
    if (at > 0 && statement[at - 1] != ' ' && statement[at - 1] != '(') continue;
    const std::size_t end =
        std::min(statement.find_first_not_of(kKeyChars, at + 2), statement.size());
    const Setting* s = find(statement.substr(at + 2, end - at - 2));
    if (s != nullptr && std::find(named.begin(), named.end(), s) == named.end()) named.push_back(s);
  }
  std::vector<const Setting*> unseen;
  for (const Setting* s : named)
    if (s->is_set() && s->source.kind != ValueSource::Kind::flag) unseen.push_back(s);
  if (unseen.empty()) return message;
  // The first option alone: "(file PATH:3 [proxy])", as ever.
  if (unseen.size() == 1 && unseen.front() == named.front())
    return message + " (" + unseen.front()->source.describe() + ")";
  std::string sources;
  for (const Setting* s : unseen)
    sources += (sources.empty() ? "" : ", ") + ("--" + s->key) + " from " + s->source.describe();
  return message + " (" + sources + ")";
}

std::string OptionLayers::env_name(std::string_view key) {
  std::string out = "MAILTAP_";
  for (char c : key) {
    if (c == '-')
      out.push_back('_');
    else if (c >= 'a' && c <= 'z')
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    else
      out.push_back(c);
  }
  return out;
}

bool OptionLayers::excludes(const Setting& a, const Setting& b) const {
  if (a.option != nullptr && b.option != nullptr &&
      (a.option->get_excludes().count(b.option) != 0 ||
       b.option->get_excludes().count(a.option) != 0))
    return true;
  for (const auto& [x, y] : extra_excludes_)
    if ((x == a.key && y == b.key) || (x == b.key && y == a.key)) return true;
  return false;
}

std::string OptionLayers::check_keys(const ConfigFile& file,
                                     const std::vector<std::string>& sections) const {
  for (const ConfigEntry& e : file.entries) {
    if (!contains(sections, e.section) || find(e.key) != nullptr) continue;
    std::string known;
    for (const Setting& s : settings_) known += (known.empty() ? "" : ", ") + s.key;
    return file.where(e) + ": unknown key " + e.key +
           (e.section.empty() ? " at the top level" : " in " + written_table(e.section)) +
           "; known keys: " + known;
  }
  return {};
}

std::string OptionLayers::take(Candidate& c) {
  Setting& s = *c.setting;
  if (s.option != nullptr) {
    if (std::string why = option_value_problem(*s.option, c.value); !why.empty())
      return refused_setting(c.source.describe(), s.key, c.value, why);
    try {
      s.option->add_result(c.value);
      s.option->run_callback();
    } catch (const CLI::ConversionError&) {
      return refused_setting(c.source.describe(), s.key, c.value, expected_value(*s.option));
    } catch (const CLI::Error& e) {
      return refused_setting(c.source.describe(), s.key, c.value, e.what());
    }
    // A value as it was given (max-body = "64MiB"), not as the option turned it
    // (67108864): --print-config shows it so, and pasted back it means the same.
    s.value = s.option->get_items_expected_max() == 0 ? shown_value(*s.option) : c.value;
  } else if (!s.secret) {
    s.value = c.value;
  }
  s.entry = c.entry;
  s.source = std::move(c.source);
  return {};
}

std::string OptionLayers::apply_layer(std::vector<Candidate> layer) {
  for (std::size_t i = 0; i < layer.size(); ++i)
    for (std::size_t j = i + 1; j < layer.size(); ++j)
      if (excludes(*layer[i].setting, *layer[j].setting) &&
          chooses(*layer[i].setting, layer[i].value) && chooses(*layer[j].setting, layer[j].value))
        return layer[j].source.describe() + ": " + layer[i].setting->key + " and " +
               layer[j].setting->key + " exclude each other: give one of them";
  for (Candidate& c : layer) {
    Setting& s = *c.setting;
    if (s.is_set()) continue;
    const auto decided = std::find_if(settings_.begin(), settings_.end(), [&](const Setting& o) {
      return o.is_set() && chooses(o, o.value) && excludes(s, o);
    });
    if (decided != settings_.end()) {  // a higher layer chose another option of the same group
      if (!s.overridden) s.overridden = {s.secret ? "" : c.value, c.source, chosen_by(*decided)};
      continue;
    }
    if (std::string error = take(c); !error.empty()) return error;
  }
  return {};
}

void OptionLayers::take_flags() {
  for (Setting& s : settings_) {
    if (s.option == nullptr || s.option->count() == 0) continue;
    s.value = shown_value(*s.option);
    s.source = {ValueSource::Kind::flag, "--" + s.key};
  }
}

std::vector<OptionLayers::Candidate> OptionLayers::env_candidates(const Getenv& getenv,
                                                                  std::string& error) {
  std::vector<Candidate> env_layer;
  for (Setting& s : settings_) {
    if (s.option == nullptr || s.is_set()) continue;
    const std::string name = env_name(s.key);
    const char* v = getenv(name.c_str());
    if (v == nullptr || *v == '\0') continue;
    // The value is not quoted: the message must not put its bytes on the terminal.
    if (std::string why = unmeant_value_problem(v); !why.empty()) {
      error = "env " + name + ": " + why;
      return {};
    }
    env_layer.push_back({&s, home_expanded(v, getenv), nullptr, {ValueSource::Kind::env, name}});
  }
  return env_layer;
}

std::vector<OptionLayers::Candidate> OptionLayers::file_candidates(const ConfigFile& file,
                                                                   const std::string& section,
                                                                   const Getenv& getenv) {
  std::vector<Candidate> layer;
  for (const ConfigEntry* e : file.section(section)) {
    Setting* s = find_mutable(e->key);
    if (s == nullptr) continue;
    std::string detail = file.where(*e) + (section.empty() ? "" : " " + written_table(section));
    std::string value =
        s->secret ? std::string()
                  : file_path_value(file, *e, home_expanded(e->value, getenv), file_error_);
    layer.push_back({s, std::move(value), e, {ValueSource::Kind::file, std::move(detail)}});
  }
  return layer;
}

std::string OptionLayers::check_needs() const {
  for (const Setting& s : settings_) {
    if (s.option == nullptr || !s.is_set() || s.source.kind == ValueSource::Kind::flag) continue;
    for (const CLI::Option* needed : s.option->get_needs())
      if (needed->count() == 0)
        return s.source.describe() + ": " + s.key + " needs " + needed->get_name();
  }
  return {};
}

std::string OptionLayers::apply(const ConfigFile& file, const std::vector<std::string>& sections,
                                const Getenv& getenv) {
  take_flags();
  std::string env_error;
  std::vector<Candidate> env_layer = env_candidates(getenv, env_error);
  if (!env_error.empty()) return env_error;
  if (std::string error = apply_layer(std::move(env_layer)); !error.empty()) return error;
  for (const std::string& section : sections) {
    std::vector<Candidate> layer = file_candidates(file, section, getenv);
    if (!file_error_.empty()) return file_error_;
    if (std::string error = apply_layer(std::move(layer)); !error.empty()) return error;
  }
  return check_needs();
}

}  // namespace mailtap::cli
