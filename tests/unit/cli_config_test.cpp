// The config file and the MAILTAP_… environment: reading the file, where it is, precedence
// flag > environment > file > default, named upstreams, secrets and --print-config.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>

#include "proxy/cli/config_file.hpp"
#include "proxy/cli/config_option.hpp"
#include "proxy/cli/option_layers.hpp"
#include "proxy/cli/option_values.hpp"
#include "proxy/cli/unknown_variables.hpp"
#include "proxy/command/print_config.hpp"
#include "proxy/command/proxy_settings.hpp"
#include "proxy/common/private_file.hpp"
#include "proxy/common/stop_signal_deferral.hpp"
#include "proxy/common/text.hpp"
#include "proxy/options/database_path_option.hpp"
#include "proxy/options/size_option.hpp"
#include "temp_dir.hpp"

namespace mailtap::cli {
namespace {

using Kind = ValueSource::Kind;

ConfigText parse_text_ok(std::string_view text) {
  std::string error;
  auto parsed = parse_config_text(text, error);
  EXPECT_TRUE(parsed) << error;
  return parsed ? std::move(*parsed) : ConfigText{};
}

std::vector<ConfigEntry> parse_ok(std::string_view text) {
  return parse_text_ok(text).entries;
}

std::string parse_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_config_text(text, error)) << text;
  return error;
}

ConfigFile file_of(std::string_view text, bool private_to_owner = true) {
  ConfigFile f;
  f.path = "/home/u/.config/mailtap/config.toml";
  f.private_to_owner = private_to_owner;
  f.mode = private_to_owner ? 0600 : 0644;
  f.directory = "/home/u/.config/mailtap";
  ConfigText parsed = parse_text_ok(text);
  f.entries = std::move(parsed.entries);
  f.tables = std::move(parsed.tables);
  return f;
}

TEST(ConfigText, TablesKeysAndEveryKindOfValue) {
  const auto e = parse_ok(
      "# mailtap\n"
      "db = \"/data/mailtap.db\"\n"
      "\n"
      "[proxy]\n"
      "  listen = '127.0.0.1:2526'   # a comment\n"
      "insecure = true\n"
      "max_sessions = 16\n"
      "[upstream.gmail]   # Google\n"
      "password = \"a#b,c d\\\"e\\\\f\\u00e9\"\n"
      "password-cmd = 'pass show \"mail/gmail\" # not a comment'\n"
      "ehlo-name = bare value # comment\r\n");
  ASSERT_EQ(e.size(), 7u);
  EXPECT_EQ(e[0].section, "");
  EXPECT_EQ(e[0].key, "db");
  EXPECT_EQ(e[0].value, "/data/mailtap.db");
  EXPECT_EQ(e[1].section, "proxy");
  EXPECT_EQ(e[1].value, "127.0.0.1:2526");
  EXPECT_EQ(e[1].line, 5);
  EXPECT_EQ(e[2].value, "true");
  EXPECT_EQ(e[3].key, "max-sessions") << "underscores are dashes, as in the option names";
  EXPECT_EQ(e[3].value, "16");
  EXPECT_EQ(e[4].section, "upstream.gmail");
  EXPECT_EQ(e[4].value, "a#b,c d\"e\\f\xc3\xa9") << "a quoted value is kept whole";
  EXPECT_EQ(e[5].value, "pass show \"mail/gmail\" # not a comment");
  EXPECT_EQ(e[6].value, "bare value");
}

TEST(ConfigText, DottedKeysNameTablesRelativeToTheirs) {
  const auto e =
      parse_ok("upstream.m365.host = \"smtp.office365.com\"\n[upstream]\ngmail.port = 465\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].section, "upstream.m365");
  EXPECT_EQ(e[0].key, "host");
  EXPECT_EQ(e[1].section, "upstream.gmail");
  EXPECT_EQ(e[1].key, "port");
}

// A table is where its header is, or its first dotted key: an empty one is a table too, and a
// misspelt one ([shwo]) is refused at the line that names it.
TEST(ConfigText, EveryTableIsListedWhereTheFileFirstNamesIt) {
  const ConfigText t = parse_text_ok(
      "upstream.m365.host = \"h\"\n# comment\n[shwo]\n\n[proxy]\nlisten = 'x'\n[upstream]\n"
      "gmail.port = 465\n[upstream.m365]\n");
  std::vector<std::pair<std::string, int>> tables;
  for (const ConfigTable& table : t.tables) tables.emplace_back(table.name, table.line);
  EXPECT_EQ(tables, (std::vector<std::pair<std::string, int>>{{"upstream.m365", 1},
                                                              {"shwo", 3},
                                                              {"proxy", 5},
                                                              {"upstream", 7},
                                                              {"upstream.gmail", 8}}));
}

// TOML reads [upstream.a.b] as a table b inside [upstream.a]: mailtap does not read it as the
// name "a.b" (which --print-config writes quoted, [upstream."a.b"], as TOML has it).
TEST(ConfigText, AnUpstreamNameWithADotIsQuotedAsTomlHasIt) {
  const auto e = parse_ok(
      "upstream.\"e.f\".port = 3\n[upstream.\"a.b\"]\nport = 1\n[upstream]\n\"c.d\".port = 2\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].section, "upstream.e.f");
  EXPECT_EQ(e[1].section, "upstream.a.b");
  EXPECT_EQ(e[2].section, "upstream.c.d");
  EXPECT_NE(
      parse_error("[upstream]\nupstream.\"e.f\".port = 3\n").find("line 2: [upstream.upstream"),
      std::string::npos)
      << "a dotted key in [upstream] is relative to it, as TOML has it";
  EXPECT_EQ(parse_error("[upstream.a.b]\nport = 1\n"),
            "line 1: [upstream.a.b] is a table inside [upstream.a], which mailtap has no use "
            "for; a name with a dot is quoted: [upstream.\"a.b\"]");
  EXPECT_EQ(parse_error("[upstream.a]\nb.port = 1\n"),
            "line 2: [upstream.a.b] is a table inside [upstream.a], which mailtap has no use "
            "for; a name with a dot is quoted: [upstream.\"a.b\"]");
  EXPECT_NE(parse_error("upstream.a.b.port = 1\n").find("line 1: [upstream.a.b] is a table"),
            std::string::npos);
}

TEST(ConfigText, ErrorsSayTheLineAndNeverTheValue) {
  EXPECT_EQ(parse_error("[proxy]\nlisten = \"127.0.0.1\n"),
            "line 2: a \"string\" is not closed on its line");
  EXPECT_EQ(parse_error("password =\n"), "line 1: no value after '='");
  EXPECT_EQ(parse_error("a = 1\na = 2\n"), "line 2: the key a is given twice");
  EXPECT_EQ(parse_error("[proxy]\nlisten\n"), "line 2: expected '=' after the key listen");
  EXPECT_NE(parse_error("[[upstream]]\n").find("not supported"), std::string::npos);
  const std::string e = parse_error("password = \"s3cret\" trailing\n");
  EXPECT_EQ(e.find("s3cret"), std::string::npos) << e;
  EXPECT_NE(parse_error("x = \"\\q\"\n").find("unknown escape"), std::string::npos);
}

// A NUL cuts a path or a name short wherever it goes; a Latin-1 byte is not TOML, and would
// reach --print-config and the record as it is. Refused with the line, the value never quoted.
TEST(ConfigText, NulControlCharactersAndInvalidUtf8AreRefused) {
  EXPECT_EQ(parse_error("[proxy]\ndb = \"/x/nul\\u0000tail.db\"\n"),
            "line 2: \\u gives a NUL (U+0000), which no value can mean");
  EXPECT_EQ(parse_error("ehlo-name = \"x\\U00000001y\"\n"),
            "line 1: \\U gives a control character (U+0001), which no value can mean");
  EXPECT_EQ(parse_error("ehlo-name = \"x\\by\"\n"),
            "line 1: \\b gives a control character (U+0008), which no value can mean");
  EXPECT_NE(parse_error("ehlo-name = \"x\\u007fy\"\n").find("U+007F"), std::string::npos);
  EXPECT_EQ(parse_error("a = 1\nauth-user = \"caf\xe9\"\n"),
            "line 2: not valid UTF-8 (the file must be UTF-8, as TOML requires)");
  EXPECT_NE(parse_error("db = \"a\x01"
                        "b\"\n")
                .find("line 1: a control character (U+0001)"),
            std::string::npos);
  EXPECT_NE(parse_error("db = 'a\rb'\n").find("line 1: a control character (U+000D)"),
            std::string::npos)
      << "a lone CR is no line end";
  // TOML 1.1's \e and \xHH are escapes, not "unknown" ones that single quotes would keep as a
  // backslash and a letter: an ESC is refused for what it is, a printable \xHH is its character.
  EXPECT_EQ(parse_error("ehlo-name = \"x\\ey\"\n"),
            "line 1: \\e gives a control character (U+001B), which no value can mean");
  EXPECT_EQ(parse_error("ehlo-name = \"x\\x1by\"\n"),
            "line 1: \\x gives a control character (U+001B), which no value can mean");
  EXPECT_EQ(parse_error("ehlo-name = \"x\\x1\"\n"), "line 1: \\x needs hex digits");
  // The C1 controls (U+0080..U+009F) are control characters too: U+009B is a CSI on some
  // terminals, as ESC [ is.
  EXPECT_EQ(parse_error("ehlo-name = \"x\\x9by\"\n"),
            "line 1: \\x gives a control character (U+009B), which no value can mean");
  EXPECT_EQ(parse_error("ehlo-name = \"x\\u0085y\"\n"),
            "line 1: \\u gives a control character (U+0085), which no value can mean");
  EXPECT_EQ(parse_error("ehlo-name = \"x\\x80y\"\n"),
            "line 1: \\x gives a control character (U+0080), which no value can mean");
  // The same characters typed raw: TOML allows a C1 control in a string, where an editor shows
  // nothing; refused as its escape is, in every kind of value, naming the key.
  EXPECT_EQ(parse_error("ehlo-name = \"x\xc2\x9by\"\n"),
            "line 1: the value of ehlo-name holds a control character (U+009B), which no value "
            "can mean");
  EXPECT_EQ(parse_error("[proxy]\ndb = 'a\xc2\x85.db'\n"),
            "line 2: the value of db in [proxy] holds a control character (U+0085), which no "
            "value can mean");
  EXPECT_EQ(parse_error("[upstream.\"g\xc2\x9b\"]\nport = 1\n"),
            "line 1: a key or table name holds a control character (U+009B), which no name "
            "can mean");
  // An escape in a quoted name is refused in a name's words too, not a value's.
  EXPECT_EQ(parse_error("[upstream.\"g\\x9b\"]\nport = 1\n"),
            "line 1: \\x gives a control character (U+009B), which no name can mean");
  EXPECT_EQ(parse_error("\"a\\u0001\" = 1\n"),
            "line 1: \\u gives a control character (U+0001), which no name can mean");
  EXPECT_EQ(parse_error("[upstream.gmail]\nauth_user = me\xc2\x80\n"),
            "line 2: the value of auth-user in [upstream.gmail] holds a control character "
            "(U+0080), which no value can mean");
  EXPECT_EQ(parse_ok("auth-user = \"\\xa0\\u0105\"\n").at(0).value, "\xc2\xa0\xc4\x85")
      << "U+00A0 and U+0105, whose UTF-8 holds 0x85, are no controls";
  EXPECT_EQ(parse_ok("auth-user = \"caf\\xe9 \\x41\"\n").at(0).value, "caf\xc3\xa9 A");
  // What can be meant stays: tab and newline (a command may be a short script), and UTF-8.
  const auto e =
      parse_ok("password-cmd = \"a\\tb\\nc\"\nauth-user = \"caf\xc3\xa9\"\nx = 'a\tb'\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].value, "a\tb\nc");
  EXPECT_EQ(e[1].value, "caf\xc3\xa9");
  EXPECT_EQ(e[2].value, "a\tb");
}

// Notepad's "UTF-8 with BOM" starts the file with EF BB BF: not part of the first key.
TEST(ConfigText, AByteOrderMarkAtTheStartIsSkipped) {
  const auto entries = parse_ok("\xEF\xBB\xBFlisten = \"127.0.0.1:2600\"\n[proxy]\ntls = none\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, "listen");
  EXPECT_EQ(entries[0].value, "127.0.0.1:2600");
  EXPECT_EQ(entries[0].line, 1);
  EXPECT_EQ(parse_ok("\xEF\xBB\xBF[proxy]\nlisten = \"x\"\n")[0].section, "proxy");
  // Elsewhere it is no name.
  EXPECT_EQ(parse_error("a = 1\n\xEF\xBB\xBF"
                        "b = 2\n"),
            "line 2: expected a name (letters, digits, '-' and '_', or a \"quoted\" name)");
}

TEST(ConfigPath, XdgThenHome) {
  auto path = [](std::map<std::string, std::string> env) {
    return default_config_path([&env](const char* name) -> const char* {
      auto it = env.find(name);
      return it == env.end() ? nullptr : it->second.c_str();
    });
  };
  EXPECT_EQ(path({{"XDG_CONFIG_HOME", "/x/"}, {"HOME", "/home/u"}}), "/x/mailtap/config.toml");
  EXPECT_EQ(path({{"XDG_CONFIG_HOME", "rel"}, {"HOME", "/home/u"}}),
            "/home/u/.config/mailtap/config.toml")
      << "a relative XDG_CONFIG_HOME is ignored, as the XDG spec says";
  EXPECT_EQ(path({{"HOME", "/home/u"}}), "/home/u/.config/mailtap/config.toml");
  EXPECT_EQ(path({}), "");
  EXPECT_EQ(path({{"HOME", "~"}}), "") << "a relative HOME is no home, as a relative XDG_…";
  EXPECT_EQ(path({{"HOME", "home/u"}}), "");
  EXPECT_EQ(path({{"HOME", "/"}}), "/.config/mailtap/config.toml");
}

TEST(ConfigFileLoad, MissingDefaultIsEmptyMissingExplicitIsAnError) {
  test_support::TempDir dir;
  std::string error;
  auto none = load_config_file(dir.file("config.toml"), false, error);
  ASSERT_TRUE(none) << error;
  EXPECT_TRUE(none->path.empty());
  EXPECT_FALSE(load_config_file(dir.file("config.toml"), true, error));
  EXPECT_NE(error.find("config.toml"), std::string::npos) << error;

  std::ofstream(dir.file("c.toml")) << "[proxy]\nlisten = \"127.0.0.1:1\"\n";
  ::chmod(dir.file("c.toml").c_str(), 0644);
  auto open = load_config_file(dir.file("c.toml"), true, error);
  ASSERT_TRUE(open) << error;
  EXPECT_FALSE(open->private_to_owner);
  EXPECT_EQ(open->mode, 0644u);
  ::chmod(dir.file("c.toml").c_str(), 0600);
  auto mine = load_config_file(dir.file("c.toml"), true, error);
  ASSERT_TRUE(mine) << error;
  EXPECT_TRUE(mine->private_to_owner);
  ASSERT_EQ(mine->entries.size(), 1u);
  EXPECT_EQ(mine->where(mine->entries[0]), dir.file("c.toml") + ":2");
  EXPECT_EQ(mine->directory + "/c.toml", dir.file("c.toml"));

  auto null = load_config_file("/dev/null", true, error);
  ASSERT_TRUE(null) << "--config /dev/null: no configuration at all; " << error;
  EXPECT_TRUE(null->entries.empty());
  EXPECT_FALSE(load_config_file(dir.file(""), true, error));
  EXPECT_NE(error.find("a directory"), std::string::npos) << error;

  std::ofstream(dir.file("bad.toml")) << "[proxy\n";
  EXPECT_FALSE(load_config_file(dir.file("bad.toml"), true, error));
  EXPECT_NE(error.find("bad.toml, line 1"), std::string::npos) << error;
}

// MAILTAP_CONFIG='~/cfg.toml' is under HOME, as MAILTAP_DB's ~ is (systemd's Environment=
// expands nothing); without an absolute HOME it gets --config's explanation of the ~.
TEST(ConfigFileLoad, TildeInMailtapConfigIsHome) {
  test_support::TempDir home;
  std::ofstream(home.file("cfg.toml")) << "[proxy]\nlisten = \"127.0.0.1:1\"\n";
  ::chmod(home.file("cfg.toml").c_str(), 0600);
  const std::string home_dir = home.file("");
  std::map<std::string, std::string> env{{"MAILTAP_CONFIG", "~/cfg.toml"},
                                         {"HOME", home_dir.substr(0, home_dir.size() - 1)}};
  const OptionLayers::Getenv getenv = [&env](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  std::string error;
  auto file = load_chosen_config("", getenv, error);
  ASSERT_TRUE(file) << error;
  EXPECT_EQ(file->path, home.file("cfg.toml"));
  ASSERT_EQ(file->entries.size(), 1u);

  env.erase("HOME");
  EXPECT_FALSE(load_chosen_config("", getenv, error));
  EXPECT_EQ(error.rfind("env MAILTAP_CONFIG: ~/cfg.toml starts with ~, which nothing expanded", 0),
            0u)
      << error;
}

// The file chooses the commands mailtap runs (password-cmd) and where the credentials go: one
// that others may change is refused, as ssh refuses its config, whatever it holds.
TEST(ConfigFileLoad, AFileOthersCanChangeIsRefused) {
  test_support::TempDir dir;
  const std::string path = dir.file("c.toml");
  std::ofstream(path) << "[proxy]\npassword-cmd = \"pass show x\"\n";
  std::string error;
  for (const mode_t mode : {0666, 0646, 0620}) {
    ::chmod(path.c_str(), mode);
    EXPECT_FALSE(load_config_file(path, true, error)) << std::oct << mode;
    EXPECT_NE(error.find("config file " + path + ": permissions " + octal_mode(mode)),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("(chmod go-w " + path + ")"), std::string::npos) << error;
  }
  ::chmod(path.c_str(), 0644);
  EXPECT_TRUE(load_config_file(path, true, error)) << "readable is not writable: " << error;
  if (::geteuid() != 0) GTEST_SKIP() << "giving the file to another user needs root";
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  ::chmod(path.c_str(), 0600);
  EXPECT_FALSE(load_config_file(path, true, error));
  EXPECT_NE(error.find("config file " + path + ": owned by uid 65534"), std::string::npos) << error;
  EXPECT_NE(error.find("not by you or root"), std::string::npos) << error;
  EXPECT_NE(error.find("chown $(id -un) " + path), std::string::npos) << error;
  EXPECT_EQ(error.find("chmod"), std::string::npos) << "the mode is not the problem: " << error;
}

// A command like `mailtap proxy`, small.
struct Proxy {
  CLI::App root{"mailtap"};
  CLI::App* app = root.add_subcommand("proxy");
  std::string name, listen = "127.0.0.1:2525", upstream = "smtp.gmail.com:587", tls, db;
  std::string password_env, password_cmd, user;
  bool insecure = false, no_record = false, transcript = false, explain = false;
  int verbose = 0;
  unsigned max_sessions = 512;
  std::uint64_t max_body = 0;
  std::map<std::string, std::string> env;

  Proxy() {
    app->add_option("NAME", name);
    app->add_option("--listen", listen)->capture_default_str();
    app->add_option("--upstream", upstream)->capture_default_str();
    app->add_option("--tls", tls)->check(CLI::IsMember({"starttls", "implicit", "none"}));
    app->add_flag("--insecure", insecure);
    app->add_flag("-v,--verbose", verbose);
    app->add_option("--db", db);
    app->add_flag("--no-record", no_record);
    app->add_option("--auth-user", user);
    auto* e = app->add_option("--password-env", password_env);
    app->add_option("--password-cmd", password_cmd)->excludes(e);
    auto* t = app->add_flag("--transcript", transcript);
    app->add_flag("--explain", explain)->needs(t);
    app->add_option("--max-sessions", max_sessions)->capture_default_str();
    options::add_size_option(*app, "--max-body", max_body, "64MiB", "");
    root.add_subcommand("show");
    check_option_values(root);  // as main does
  }
  OptionLayers::Getenv getenv() const {
    return [this](const char* n) -> const char* {
      auto it = env.find(n);
      return it == env.end() ? nullptr : it->second.c_str();
    };
  }
  // Parses `args`, then applies the environment and `file`; returns the error.
  std::string run(std::vector<std::string> args, const ConfigFile& file, OptionLayers*& out) {
    args.insert(args.begin(), "proxy");
    std::reverse(args.begin(), args.end());
    root.parse(args);
    layers = std::make_unique<OptionLayers>(*app);
    out = layers.get();
    return apply_proxy_settings(*layers, file, name, {"show"}, getenv());
  }
  std::unique_ptr<OptionLayers> layers;
};

const char* kFile =
    "listen = \"127.0.0.1:1111\"\n"
    "[proxy]\n"
    "listen = \"127.0.0.1:2222\"\n"
    "tls = \"implicit\"\n"
    "password-cmd = \"pass show proxy\"\n"
    "[upstream.gmail]\n"
    "upstream = \"smtp.gmail.com:465\"\n"
    "auth-user = \"alice@gmail.com\"\n"
    "password = \"hunter2-secret\"\n"
    "[upstream.m365]\n"
    "host = \"smtp.office365.com\"\n"
    "port = 587\n"
    "tls = \"starttls\"\n";

TEST(OptionLayers, DefaultThenFileThenEnvironmentThenFlag) {
  const ConfigFile empty;
  {
    Proxy p;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, empty, l), "");
    EXPECT_EQ(p.listen, "127.0.0.1:2525");
    EXPECT_EQ(l->find("listen")->source.describe(), "default");
  }
  const ConfigFile file = file_of(kFile);
  {
    Proxy p;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file, l), "");
    EXPECT_EQ(p.listen, "127.0.0.1:2222") << "[proxy] beats the top level";
    EXPECT_EQ(l->find("listen")->source.describe(), "file " + file.path + ":3 [proxy]");
    EXPECT_EQ(p.tls, "implicit");
  }
  {
    Proxy p;
    p.env["MAILTAP_LISTEN"] = "127.0.0.1:3333";
    p.env["MAILTAP_INSECURE"] = "1";
    p.env["MAILTAP_VERBOSE"] = "2";
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file, l), "");
    EXPECT_EQ(p.listen, "127.0.0.1:3333") << "the environment beats the file";
    EXPECT_EQ(l->find("listen")->source.describe(), "env MAILTAP_LISTEN");
    EXPECT_TRUE(p.insecure);
    EXPECT_EQ(p.verbose, 2);
  }
  {
    Proxy p;
    p.env["MAILTAP_LISTEN"] = "127.0.0.1:3333";
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({"--listen", "127.0.0.1:4444", "-vv"}, file, l), "");
    EXPECT_EQ(p.listen, "127.0.0.1:4444") << "a flag beats the environment";
    EXPECT_EQ(l->find("listen")->source.describe(), "flag --listen");
    EXPECT_EQ(l->find("verbose")->value, "2");
  }
}

TEST(OptionLayers, TildeInTheFileIsHome) {
  Proxy p;
  p.env["HOME"] = "/home/u/";
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({}, file_of("[proxy]\ndb = \"~/mail/m.db\"\nauth-user = \"~x\"\n"), l), "");
  EXPECT_EQ(p.db, "/home/u/mail/m.db");
  EXPECT_EQ(p.user, "~x") << "only a leading ~/ is the home directory";
}

// systemd's Environment= does not expand ~ either: MAILTAP_DB=~/x.db means what db = "~/x.db"
// means in the file. Without an absolute HOME nothing is expanded, and --db refuses the ~.
TEST(OptionLayers, TildeInTheEnvironmentIsHomeAndWithoutHomeIsRefused) {
  {
    Proxy p;
    p.env["HOME"] = "/home/u";
    p.env["MAILTAP_DB"] = "~/x.db";
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, ConfigFile{}, l), "");
    EXPECT_EQ(p.db, "/home/u/x.db");
  }
  for (const char* home : {"~", "rel"}) {
    Proxy p;
    p.env["HOME"] = home;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file_of("db = \"~/x.db\"\n"), l), "");
    EXPECT_EQ(p.db, "~/x.db") << "HOME=" << home << " is no home";
  }
  std::string path = "~/x.db";
  const std::string why = options::database_path_validator("")(path);
  EXPECT_NE(why.find("~/x.db starts with ~, which nothing expanded"), std::string::npos) << why;
  EXPECT_NE(why.find("write the full path, or ./~/x.db"), std::string::npos) << why;
  path = "./~/x.db";
  EXPECT_EQ(options::database_path_validator("")(path), "");
}

// The same file must record to the same database from a terminal in ~/src and from the systemd
// unit (whose working directory is ~): a relative path in it is relative to its directory.
TEST(OptionLayers, RelativePathsInTheFileAreRelativeToItsDirectory) {
  {
    Proxy p;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file_of("db = \"mail.db\"\n"), l), "");
    EXPECT_EQ(p.db, "/home/u/.config/mailtap/mail.db");
    EXPECT_EQ(l->find("db")->value, "/home/u/.config/mailtap/mail.db") << "as --print-config shows";
  }
  {
    Proxy p;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file_of("[proxy]\ndb = \"../data/./m.db\"\n"), l), "");
    EXPECT_EQ(p.db, "/home/u/.config/data/m.db");
  }
  {
    Proxy p;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file_of("db = \"/abs/m.db\"\nauth-user = \"rel\"\n"), l), "");
    EXPECT_EQ(p.db, "/abs/m.db");
    EXPECT_EQ(p.user, "rel") << "only paths";
  }
  {
    Proxy p;  // the environment and the command line are relative to the current directory
    p.env["MAILTAP_DB"] = "env.db";
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({}, file_of("db = \"mail.db\"\n"), l), "");
    EXPECT_EQ(p.db, "env.db");
  }
  {
    Proxy p;  // --config <(...): no directory to be relative to
    ConfigFile pipe = file_of("db = \"mail.db\"\n");
    pipe.path = "/dev/fd/63";
    pipe.directory.clear();
    OptionLayers* l = nullptr;
    EXPECT_EQ(p.run({}, pipe, l),
              "/dev/fd/63:1: db = mail.db: a relative path in a config that is no file on disk (a "
              "pipe) has no directory to be relative to: write an absolute path, or ~/...");
  }
}

TEST(OptionLayers, EnvironmentNames) {
  EXPECT_EQ(OptionLayers::env_name("auth-user"), "MAILTAP_AUTH_USER");
  EXPECT_EQ(OptionLayers::env_name("oauth2-token-cmd"), "MAILTAP_OAUTH2_TOKEN_CMD");
  EXPECT_EQ(OptionLayers::env_name("db"), "MAILTAP_DB");
}

TEST(OptionLayers, NamedUpstreamBeatsProxyTable) {
  const ConfigFile file = file_of(kFile);
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"gmail"}, file, l), "");
  EXPECT_EQ(p.upstream, "smtp.gmail.com:465");
  EXPECT_EQ(p.user, "alice@gmail.com");
  EXPECT_EQ(p.listen, "127.0.0.1:2222") << "what the named table leaves out comes from [proxy]";
  const Setting* pw = l->find("password");
  ASSERT_TRUE(pw && pw->is_set());
  EXPECT_EQ(pw->entry->value, "hunter2-secret");
  EXPECT_TRUE(pw->value.empty()) << "a secret's value is not copied into the setting";
  EXPECT_TRUE(p.password_cmd.empty())
      << "the named table's password decides the password source over [proxy]'s command";
}

TEST(OptionLayers, HostAndPortGiveTheUpstream) {
  const ConfigFile file = file_of(kFile);
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"m365"}, file, l), "");
  EXPECT_EQ(p.upstream, "smtp.office365.com:587");
  EXPECT_EQ(l->find("upstream")->source.describe(), "file " + file.path + ":11 [upstream.m365]");
  EXPECT_EQ(p.tls, "starttls");

  Proxy q;
  q.env["MAILTAP_UPSTREAM"] = "mx.example.test:25";
  ASSERT_EQ(q.run({"m365"}, file, l), "");
  EXPECT_EQ(q.upstream, "mx.example.test:25") << "the environment beats host and port";
}

TEST(OptionLayers, OneChoiceAcrossLayers) {
  const ConfigFile file = file_of(kFile);
  {
    Proxy p;
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({"--password-env", "PW"}, file, l), "");
    EXPECT_EQ(p.password_env, "PW");
    EXPECT_TRUE(p.password_cmd.empty()) << "the flag chose the source; the file's is ignored";
  }
  {
    Proxy p;
    p.env["MAILTAP_DB"] = "/env.db";
    OptionLayers* l = nullptr;
    ASSERT_EQ(p.run({"--no-record"}, file, l), "");
    EXPECT_TRUE(p.db.empty()) << "--no-record beats MAILTAP_DB without a contradiction";
  }
  {
    Proxy p;
    OptionLayers* l = nullptr;
    const std::string e = p.run({},
                                file_of("[proxy]\npassword-env = \"A\"\npassword-cmd = "
                                        "\"b\"\n"),
                                l);
    EXPECT_NE(e.find("exclude each other"), std::string::npos) << e;
  }
}

// --db X --no-record=false is accepted: a false no-record chooses nothing. The environment and
// the file, each checked as the flag is, accept it too, in one layer or across two.
TEST(OptionLayers, AFalseFlagChoosesNothingInEveryLayer) {
  OptionLayers* l = nullptr;
  {
    Proxy p;
    ASSERT_EQ(p.run({"--db", "/flag.db", "--no-record=false"}, ConfigFile{}, l), "");
    EXPECT_EQ(p.db, "/flag.db");
  }
  {
    Proxy p;
    p.env["MAILTAP_DB"] = "/env.db";
    p.env["MAILTAP_NO_RECORD"] = "0";
    ASSERT_EQ(p.run({}, ConfigFile{}, l), "");
    EXPECT_EQ(p.db, "/env.db");
    EXPECT_FALSE(p.no_record);
  }
  {
    Proxy p;
    ASSERT_EQ(p.run({}, file_of("[proxy]\ndb = \"/file.db\"\nno-record = false\n"), l), "");
    EXPECT_EQ(p.db, "/file.db");
  }
  {
    Proxy p;
    p.env["MAILTAP_NO_RECORD"] = "off";
    ASSERT_EQ(p.run({}, file_of("[proxy]\ndb = \"/file.db\"\n"), l), "");
    EXPECT_EQ(p.db, "/file.db") << "a false no-record above does not override the file's db";
  }
  {
    Proxy p;  // a true one still is the other answer to the choice
    p.env["MAILTAP_DB"] = "/env.db";
    p.env["MAILTAP_NO_RECORD"] = "1";
    EXPECT_NE(p.run({}, ConfigFile{}, l).find("exclude each other"), std::string::npos);
  }
}

TEST(OptionLayers, BadValuesAndNeedsNameTheirSource) {
  Proxy p;
  OptionLayers* l = nullptr;
  std::string e = p.run({}, file_of("[proxy]\ntls = \"sometimes\"\n"), l);
  EXPECT_NE(e.find("config.toml:2 [proxy]: tls = sometimes"), std::string::npos) << e;
  Proxy q;
  q.env["MAILTAP_EXPLAIN"] = "true";
  e = q.run({}, ConfigFile{}, l);
  EXPECT_EQ(e, "env MAILTAP_EXPLAIN: explain needs --transcript");
}

// What the file refuses in a value, a MAILTAP_ variable may not give either: the same words,
// and never the value (an ESC would reach the terminal).
TEST(OptionLayers, TheEnvironmentIsRefusedWhatTheFileIs) {
  OptionLayers* l = nullptr;
  {
    Proxy p;
    p.env["MAILTAP_AUTH_USER"] = "x\x1b]0;owned\x07y";
    EXPECT_EQ(p.run({}, ConfigFile{}, l),
              "env MAILTAP_AUTH_USER: a control character (U+001B), which no value can mean");
  }
  {
    Proxy p;
    p.env["MAILTAP_DB"] = "/data/m\x7f.db";
    EXPECT_EQ(p.run({}, ConfigFile{}, l),
              "env MAILTAP_DB: a control character (U+007F), which no value can mean");
  }
  {
    Proxy p;
    p.env["MAILTAP_AUTH_USER"] =
        "x\xc2\x9b"
        "31my";  // U+009B, a CSI
    EXPECT_EQ(p.run({}, ConfigFile{}, l),
              "env MAILTAP_AUTH_USER: a control character (U+009B), which no value can mean");
  }
  {
    Proxy p;
    p.env["MAILTAP_AUTH_USER"] = "caf\xe9";
    const std::string e = p.run({}, ConfigFile{}, l);
    EXPECT_EQ(e.rfind("env MAILTAP_AUTH_USER: not valid UTF-8 (", 0), 0u) << e;
    EXPECT_EQ(e.find("caf"), std::string::npos) << e;
  }
  {
    Proxy p;  // what the file may hold, the environment may too: tab, newline, UTF-8
    p.env["MAILTAP_PASSWORD_CMD"] = "pass show\tmail\necho";
    p.env["MAILTAP_AUTH_USER"] = "caf\xc3\xa9 \xc4\x85\xc4\x9b";  // ą and ě: 0x85 and 0x9B bytes
    ASSERT_EQ(p.run({}, ConfigFile{}, l), "");
    EXPECT_EQ(p.password_cmd, "pass show\tmail\necho");
    EXPECT_EQ(p.user, "caf\xc3\xa9 \xc4\x85\xc4\x9b");
  }
}

TEST(OptionLayers, ChecksOfTheCommandSayWhereTheValueCameFrom) {
  Proxy p;
  p.env["MAILTAP_UPSTREAM"] = "[::1";
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"--listen", "x"}, file_of("[proxy]\ntls = \"none\"\n"), l), "");
  EXPECT_EQ(l->with_source("--upstream [::1: expected HOST[:PORT]"),
            "--upstream [::1: expected HOST[:PORT] (env MAILTAP_UPSTREAM)");
  EXPECT_EQ(l->with_source("--listen x: expected ADDR:PORT"), "--listen x: expected ADDR:PORT")
      << "a flag is where the user typed it";
  EXPECT_EQ(l->with_source("--tls none: no"),
            "--tls none: no (file /home/u/.config/mailtap/config.toml:2 [proxy])");
  EXPECT_EQ(l->with_source("--db: whatever"), "--db: whatever") << "not set";
  EXPECT_EQ(l->with_source("no option here"), "no option here");
  // Every option the statement names (up to its first "; ") whose value the user did not type.
  EXPECT_EQ(l->with_source("--listen x with --tls none: no; use --upstream instead"),
            "--listen x with --tls none: no; use --upstream instead (--tls from file "
            "/home/u/.config/mailtap/config.toml:2 [proxy])");
  EXPECT_EQ(l->with_source("--upstream [::1 with --tls none"),
            "--upstream [::1 with --tls none (--upstream from env MAILTAP_UPSTREAM, --tls from "
            "file /home/u/.config/mailtap/config.toml:2 [proxy])");
}

TEST(ProxySettings, FileChecks) {
  OptionLayers* l = nullptr;
  {
    Proxy p;
    const std::string e = p.run({"gmial"}, file_of(kFile), l);
    EXPECT_EQ(e,
              "no upstream named \"gmial\" in /home/u/.config/mailtap/config.toml; it defines: "
              "gmail, m365");
  }
  {
    Proxy p;
    const std::string e = p.run({"gmail"}, ConfigFile{}, l);
    EXPECT_NE(e.find("no upstream named \"gmail\": there is no config file"), std::string::npos)
        << e;
  }
  {
    Proxy p;  // the file mailtap would read, not ~/.config when XDG_CONFIG_HOME says otherwise
    p.env["HOME"] = "/home/u";
    p.env["XDG_CONFIG_HOME"] = "/xdg";
    const std::string e = p.run({"gmail"}, ConfigFile{}, l);
    EXPECT_NE(e.find("write [upstream.gmail] in /xdg/mailtap/config.toml,"), std::string::npos)
        << e;
  }
  {
    Proxy p;
    const std::string e = p.run({}, file_of("[proxy]\nupsteam = \"x\"\n"), l);
    EXPECT_NE(e.find("config.toml:2: unknown key upsteam in [proxy]; known keys: listen, upstream"),
              std::string::npos)
        << e;
  }
  {
    Proxy p;
    const std::string e = p.run({}, file_of("[upstrem.gmail]\nhost = \"x\"\n"), l);
    EXPECT_NE(e.find("unknown table [upstrem.gmail]"), std::string::npos) << e;
  }
  {
    Proxy p;  // a table with no key is still a misspelt one, refused at its header's line
    EXPECT_NE(p.run({}, file_of("[proxy]\nlisten = \"127.0.0.1:2999\"\n[shwo]\n"), l)
                  .find("config.toml:3: unknown table [shwo]"),
              std::string::npos);
  }
  {
    Proxy p;
    const std::string e = p.run({}, file_of("# comment\n[shwo]\n\n\ncolor = \"never\"\n"), l);
    EXPECT_NE(e.find("config.toml:2: unknown table [shwo]"), std::string::npos) << e;
  }
  {
    Proxy p;  // [upstream] holds the named upstreams, not keys of its own
    EXPECT_EQ(p.run({}, file_of("[upstream]\ngmail.host = \"h\"\n"), l), "");
    Proxy q;
    const std::string e = q.run({}, file_of("[upstream]\nhost = \"h\"\n"), l);
    EXPECT_NE(e.find("config.toml:1: unknown table [upstream]"), std::string::npos) << e;
  }
  {
    Proxy p;  // another command's table is not the proxy's business
    EXPECT_EQ(p.run({}, file_of("[show]\ncolor = \"always\"\n"), l), "");
  }
  {
    Proxy p;
    const std::string e = p.run({}, file_of("[upstream.x]\nport = 465\n"), l);
    EXPECT_NE(e.find("port needs host"), std::string::npos) << e;
  }
}

TEST(ProxySettings, PasswordOnlyInAPrivateFile) {
  OptionLayers* l = nullptr;
  Proxy p;
  const std::string e = p.run({"m365"}, file_of(kFile, /*private_to_owner=*/false), l);
  EXPECT_NE(e.find("config.toml:9: a password in a config file that others can read (mode "
                   "0644"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("chmod 600"), std::string::npos) << e;
  EXPECT_NE(e.find("password-cmd"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  Proxy q;
  EXPECT_EQ(q.run({"m365"}, file_of("[upstream.m365]\nhost = \"h\"\n", false), l), "")
      << "a readable file without a password is fine";
}

// A 0600 file of someone else's: chmod 600 would change nothing.
TEST(ProxySettings, PasswordRefusalGivesTheFixForItsCause) {
  OptionLayers* l = nullptr;
  ConfigFile file = file_of(kFile, /*private_to_owner=*/false);
  file.mode = 0600;
  file.owner = 65534;
  Proxy p;
  const std::string e = p.run({"m365"}, file, l);
  EXPECT_NE(e.find("config.toml:9: a password in a config file owned by uid 65534"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("not by you, is refused: copy it to a file of your own"), std::string::npos)
      << e;
  EXPECT_EQ(e.find("chmod"), std::string::npos) << e;
  EXPECT_EQ(e.find("others can read"), std::string::npos) << e;
}

TEST(PrintConfig, SourcesAndMaskedSecrets) {
  const ConfigFile file = file_of(kFile);
  Proxy p;
  p.env["MAILTAP_AUTH_USER"] = "bob@gmail.com";
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"gmail", "--listen", "127.0.0.1:9"}, file, l), "");
  const std::string out = format_effective_config(
      "proxy", file, file.path, "gmail", *l,
      {{"db", {"/data/m.db", "the XDG data directory"}}, {"tls", {"starttls", "port 587"}}});
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_NE(out.find("# config file: " + file.path + " (private to you)\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("# upstream name: gmail, the [upstream.gmail] table\n"), std::string::npos);
  auto line_of = [&out](const std::string& start) {
    const auto at = out.find("\n" + start);
    return at == std::string::npos ? std::string()
                                   : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
  };
  EXPECT_NE(line_of("listen = \"127.0.0.1:9\"").find("# flag --listen"), std::string::npos) << out;
  EXPECT_NE(line_of("upstream = \"smtp.gmail.com:465\"")
                .find("# file " + file.path + ":7 [upstream.gmail]"),
            std::string::npos)
      << out;
  EXPECT_NE(line_of("auth-user = \"bob@gmail.com\"").find("# env MAILTAP_AUTH_USER"),
            std::string::npos)
      << out;
  // A comment: pasted back, the mask would become the password.
  EXPECT_NE(line_of("# password = \"********\"").find("[upstream.gmail]"), std::string::npos)
      << out;
  EXPECT_NE(line_of("tls = \"implicit\"").find("# file "), std::string::npos)
      << "a derived default does not hide a value given: " << out;
  EXPECT_NE(line_of("db = \"/data/m.db\"").find("# default (the XDG data directory)"),
            std::string::npos)
      << out;
  EXPECT_NE(line_of("insecure = false").find("# default"), std::string::npos) << out;
  EXPECT_NE(line_of("verbose = 0").find("# default"), std::string::npos) << out;
  EXPECT_NE(out.find("\n# password-env (not set)\n"), std::string::npos) << out;
}

// The key lines of --print-config's output, their comments cut off, as a person pastes them.
std::string pasted(const std::string& out) {
  std::string text;
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t eol = out.find('\n', pos);
    const std::string line = out.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line.front() == '#') continue;
    text += line.substr(0, line.find("  # ")) + "\n";
  }
  return text;
}

TEST(PrintConfig, TheLinesPastedIntoTheFileAreAccepted) {
  const ConfigFile file = file_of(kFile);
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"m365", "--db", "/data/m.db"}, file, l), "");
  const std::string out = format_effective_config("proxy", file, file.path, "m365", *l, {});
  // host and port are in upstream's line: as lines of their own they would exclude it.
  EXPECT_NE(out.find("\n# host = \"smtp.office365.com\""), std::string::npos) << out;
  EXPECT_NE(out.find("\n# no-record = false"), std::string::npos) << out;

  const ConfigFile again = file_of(pasted(out));
  Proxy q;
  ASSERT_EQ(q.run({}, again, l), "") << pasted(out);
  EXPECT_EQ(q.upstream, "smtp.office365.com:587");
  EXPECT_EQ(q.tls, "starttls");
  EXPECT_EQ(q.db, "/data/m.db");
  EXPECT_EQ(q.listen, "127.0.0.1:2222");
}

TEST(PrintConfig, TheDefaultDatabaseIsOneChoiceWithNoRecord) {
  const ConfigFile file = file_of("");
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({}, file, l), "");
  const std::string out = format_effective_config(
      "proxy", file, file.path, "", *l, {{"db", {"/data/m.db", "the XDG data directory"}}});
  Proxy q;
  ASSERT_EQ(q.run({}, file_of(pasted(out)), l), "") << out;
  EXPECT_EQ(q.db, "/data/m.db");
  EXPECT_FALSE(q.no_record);
}

TEST(PrintConfig, AQuotedUpstreamNameIsShownAsTomlWritesIt) {
  const ConfigFile file = file_of("[upstream.\"my name\"]\nupstream = \"a.example:587\"\n");
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"my name"}, file, l), "");
  const std::string out = format_effective_config("proxy", file, file.path, "my name", *l, {});
  EXPECT_NE(out.find("# upstream name: my name, the [upstream.\"my name\"] table\n"),
            std::string::npos)
      << out;
  Proxy q;
  ASSERT_EQ(q.run({"my name"}, file_of("[upstream.\"my name\"]\n" + pasted(out)), l), "");
  EXPECT_EQ(q.upstream, "a.example:587");
}

// A typo in the environment would leave the default upstream in place without a word. Warned,
// never refused (the environment carries other programs' variables), and never with the value.
TEST(UnknownVariables, WarnedByNameWithTheClosestKnownOne) {
  Proxy p;  // proxy: --listen, --upstream, ...; show
  const char* const environment[] = {"MAILTAP_UPSTREM=s3cret-upstream",
                                     "MAILTAP_UPSTREAM=mx.example:587",
                                     "MAILTAP_DB=/x.db",
                                     "MAILTAP_COLOR=never",
                                     "MAILTAP_CONFIG=/c.toml",
                                     "MAILTAP_LISTN=127.0.0.1:1",
                                     "MAILTAP_EMPTY=",
                                     "MAILTAP_PASSWORD=s3cret-pw",
                                     "MAILTAP_SOMETHING_ELSE_ENTIRELY=s3cret",
                                     "MAILTAP_MY_PW=s3cret",
                                     "PATH=/bin",
                                     nullptr};
  const std::vector<std::string> lines =
      unknown_variable_warnings(p.root, {"MAILTAP_MY_PW"}, environment);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "warning: MAILTAP_UPSTREM is set, but mailtap reads no such variable (did you mean "
            "MAILTAP_UPSTREAM?); ignored");
  EXPECT_EQ(lines[1],
            "warning: MAILTAP_LISTN is set, but mailtap reads no such variable (did you mean "
            "MAILTAP_LISTEN?); ignored");
  EXPECT_EQ(lines[2],
            "warning: MAILTAP_PASSWORD is set, but mailtap reads no such variable (no password "
            "is read from the environment unasked: --password-env MAILTAP_PASSWORD reads it); "
            "ignored");
  EXPECT_EQ(lines[3],
            "warning: MAILTAP_SOMETHING_ELSE_ENTIRELY is set, but mailtap reads no such "
            "variable; ignored");
  for (const std::string& line : lines)
    EXPECT_EQ(line.find("s3cret"), std::string::npos) << "a value may be a secret: " << line;
}

// Pasted back, each line must mean what it showed, written as TOML writes it: the size as given
// (not its octets), a yes/no flag as true/false (a bare `yes` is no TOML), a number bare.
TEST(PrintConfig, ValuesAreShownAsGivenAndAsToml) {
  const ConfigFile file =
      file_of("[proxy]\ninsecure = \"yes\"\nmax-body = \"16MiB\"\nmax-sessions = \"16\"\n");
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({}, file, l), "");
  EXPECT_EQ(p.max_body, 16u << 20);
  const std::string out = format_effective_config("proxy", file, file.path, "", *l, {});
  EXPECT_NE(out.find("\ninsecure = true "), std::string::npos) << out;
  EXPECT_NE(out.find("\nmax-body = \"16MiB\" "), std::string::npos) << out;
  EXPECT_NE(out.find("\nmax-sessions = 16 "), std::string::npos) << out;
  EXPECT_NE(out.find("\nexplain = false "), std::string::npos) << out;
  Proxy q;
  ASSERT_EQ(q.run({}, file_of(pasted(out)), l), "") << pasted(out);
  EXPECT_TRUE(q.insecure);
  EXPECT_EQ(q.max_body, 16u << 20);
  EXPECT_EQ(q.max_sessions, 16u);
  const std::string again = format_effective_config("proxy", file, file.path, "", *l, {});
  EXPECT_EQ(pasted(again), pasted(out)) << "a second round changes nothing";
}

// A size given as a flag is shown as typed, as the same from the file or the environment is
// (not as the octet count the option turns it into); a port from the file is a number.
TEST(PrintConfig, AFlagsSizeAsTypedAndAPortAsANumber) {
  const ConfigFile file = file_of("[proxy]\nhost = \"smtp.office365.com\"\nport = 587\n");
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"--max-body", "10M"}, file, l), "");
  EXPECT_EQ(p.max_body, 10u << 20);
  const std::string out = format_effective_config("proxy", file, file.path, "", *l, {});
  EXPECT_NE(out.find("\nmax-body = \"10M\" "), std::string::npos) << out;
  EXPECT_NE(out.find("\n# port = 587 "), std::string::npos) << out;
}

TEST(PrintConfig, ANameWithADotReadsBackAsTheSameTable) {
  const ConfigFile file = file_of("[upstream.\"a.b\"]\nupstream = \"a.example:587\"\n");
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"a.b"}, file, l), "");
  const std::string out = format_effective_config("proxy", file, file.path, "a.b", *l, {});
  EXPECT_NE(out.find("the [upstream.\"a.b\"] table\n"), std::string::npos) << out;
  EXPECT_NE(out.find("config.toml:2 [upstream.\"a.b\"]\n"), std::string::npos)
      << "a source names the table as the file writes it: " << out;
  Proxy q;
  ASSERT_EQ(q.run({"a.b"}, file_of("[upstream.\"a.b\"]\n" + pasted(out)), l), "");
  EXPECT_EQ(q.upstream, "a.example:587");
}

// The output is TOML text: no raw control character but the line ends, no byte that is not
// UTF-8, wherever a value or a path given on the command line goes.
TEST(PrintConfig, RawOctetsOfAFlagOrAPathAreEscaped) {
  ConfigFile file = file_of("[upstream.\"x\\ny\"]\nupstream = \"a.example:587\"\n");
  file.path = "/tmp/odd\nname\xff.toml";
  Proxy p;
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"x\ny", "--auth-user", "caf\xe9\x1b", "--password-cmd", "pass\x01 x"}, file, l),
            "");
  const std::string out = format_effective_config("proxy", file, file.path, "x\ny", *l, {});
  EXPECT_TRUE(mailtap::is_valid_utf8(out)) << out;
  for (const char c : out)
    EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << static_cast<int>(c);
  EXPECT_NE(out.find("\n# config file: /tmp/odd\\nname\\xff.toml "), std::string::npos) << out;
  EXPECT_NE(out.find("\n# upstream name: x\\ny, the [upstream.\"x\\u000ay\"] table\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\n# auth-user = \"caf\\xe9\\x1b\""), std::string::npos) << out;
  EXPECT_NE(out.find("# flag --auth-user; not UTF-8, which TOML cannot hold\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("\npassword-cmd = \"pass\\u0001 x\""), std::string::npos) << out;
  EXPECT_NE(out.find("# file /tmp/odd\\nname\\xff.toml:2 [upstream.\"x\\u000ay\"]\n"),
            std::string::npos)
      << out;
}

// config.md: a --password-env flag makes the file's password-cmd irrelevant; --print-config
// said "# password-cmd (not set)" then, as if the key were not in the file.
TEST(PrintConfig, AKeyAHigherLayersChoiceOverrodeIsShownWithWhatOverrodeIt) {
  const ConfigFile file = file_of(
      "db = \"/x/y.db\"\n[proxy]\npassword = \"hunter2\"\n[upstream.g]\nhost = \"h.example\"\n"
      "password-cmd = \"pass show x\"\n");
  Proxy p;
  p.env["MAILTAP_NO_RECORD"] = "1";
  OptionLayers* l = nullptr;
  ASSERT_EQ(p.run({"g", "--password-env", "PW", "--upstream", "a.example:587"}, file, l), "");
  const std::string out = format_effective_config("proxy", file, file.path, "g", *l, {});
  const std::string path = "/home/u/.config/mailtap/config.toml";
  // Each a comment line: its value, then (aligned) where it came from and what overrode it.
  for (const auto& [text, comment] : std::vector<std::pair<std::string, std::string>>{
           {"# password-cmd = \"pass show x\"",
            "# file " + path + ":6 [upstream.g]; overridden by flag --password-env"},
           {"# password = \"********\"",
            "# file " + path + ":3 [proxy]; overridden by flag --password-env"},
           {"# host = \"h.example\"",
            "# file " + path + ":5 [upstream.g]; overridden by flag --upstream"},
           {"# db = \"/x/y.db\"", "# file " + path + ":1; overridden by env MAILTAP_NO_RECORD"}}) {
    const std::size_t at = out.find("\n" + text + " ");
    ASSERT_NE(at, std::string::npos) << text << "\n" << out;
    const std::string line = out.substr(at + 1, out.find('\n', at + 1) - at - 1);
    EXPECT_EQ(line.substr(line.size() - std::min(line.size(), comment.size())), comment) << out;
  }
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_EQ(out.find("# password-cmd (not set)"), std::string::npos) << out;
  Proxy q;  // a file's key that made the choice is named, as a file's source names no key
  const ConfigFile both = file_of("[proxy]\nno-record = true\n[upstream.g]\ndb = \"/x/y.db\"\n");
  ASSERT_EQ(q.run({"g"}, both, l), "");
  EXPECT_NE(format_effective_config("proxy", both, both.path, "g", *l, {})
                .find(":2 [proxy]; overridden by db in file " + path + ":4 [upstream.g]\n"),
            std::string::npos);
}

// CLI11's "Could not convert: --insecure = maybe" said neither what was wrong nor what is right.
TEST(OptionLayers, AValueOfTheWrongKindIsRefusedSayingWhatTheOptionTakes) {
  OptionLayers* l = nullptr;
  const ConfigFile empty;
  for (const auto& [variable, value, why] : std::vector<std::array<std::string, 3>>{
           {"MAILTAP_INSECURE", "maybe", "expected true or false (also 1/0, yes/no, on/off)"},
           {"MAILTAP_VERBOSE", "maybe",
            "expected a count (2 is the flag given twice), or true "
            "or false"},
           {"MAILTAP_MAX_SESSIONS", "-1", "expected a whole number"}}) {
    Proxy p;
    p.env[variable] = value;
    std::string key = variable.substr(8);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](char c) { return c == '_' ? '-' : static_cast<char>(c - 'A' + 'a'); });
    EXPECT_EQ(p.run({}, empty, l), "env " + variable + ": " + key + " = " + value + ": " + why);
  }
  Proxy p;
  EXPECT_EQ(p.run({}, file_of("[proxy]\nmax-sessions = \"lots\"\n"), l),
            "file /home/u/.config/mailtap/config.toml:2 [proxy]: max-sessions = lots: expected a "
            "whole number");
}

// A flag is true or false and a number plain decimal, from each layer alike: CLI11 alone takes
// a flag's 2 for true and -1 for false, 010 for 8, and throws std::out_of_range for a count
// past 2^63.
TEST(OptionLayers, FlagsAndNumbersTakeOnlyWhatTheDocsSay) {
  OptionLayers* l = nullptr;
  const ConfigFile empty;
  for (const auto& [variable, value] :
       std::vector<std::array<std::string, 2>>{{"MAILTAP_INSECURE", "2"},
                                               {"MAILTAP_INSECURE", "-1"},
                                               {"MAILTAP_INSECURE", "0x1"},
                                               {"MAILTAP_INSECURE", "99999999999999999999"},
                                               {"MAILTAP_INSECURE", "TRUE"},
                                               {"MAILTAP_VERBOSE", "99999999999999999999"},
                                               {"MAILTAP_VERBOSE", "-5"},
                                               {"MAILTAP_MAX_SESSIONS", "010"},
                                               {"MAILTAP_MAX_SESSIONS", "0x10"},
                                               {"MAILTAP_MAX_SESSIONS", "+5"},
                                               {"MAILTAP_MAX_SESSIONS", " 5"}}) {
    Proxy p;
    p.env[variable] = value;
    const std::string e = p.run({}, empty, l);
    EXPECT_EQ(e.rfind("env " + variable + ": ", 0), 0u) << variable << "=" << value << ": " << e;
    EXPECT_NE(e.find(": expected "), std::string::npos) << e;
  }
  for (const std::string line :
       {"insecure = 2", "verbose = 99999999999999999999", "max-sessions = 010"}) {
    Proxy p;
    const std::string e = p.run({}, file_of("[proxy]\n" + line + "\n"), l);
    EXPECT_EQ(
        e.rfind("file /home/u/.config/mailtap/config.toml:2 [proxy]: " + line + ": expected", 0),
        0u)
        << e;
  }
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--insecure=2"},
                                             {"--insecure=-1"},
                                             {"--verbose=99999999999999999999"},
                                             {"--max-sessions", "010"},
                                             {"--max-sessions", "0x10"}}) {
    Proxy p;
    EXPECT_THROW(p.run(args, empty, l), CLI::ValidationError) << args.front();
  }
  for (const char* yes : {"true", "1", "yes", "on"}) {
    Proxy p;
    p.env["MAILTAP_INSECURE"] = yes;
    ASSERT_EQ(p.run({}, empty, l), "");
    EXPECT_TRUE(p.insecure) << yes;
  }
  for (const char* no : {"false", "0", "no", "off"}) {
    Proxy p;
    ASSERT_EQ(p.run({std::string("--insecure=") + no}, empty, l), "");
    EXPECT_FALSE(p.insecure) << no;
  }
  Proxy p;
  ASSERT_EQ(p.run({"--max-sessions", "10", "--verbose=3"}, empty, l), "");
  EXPECT_EQ(p.max_sessions, 10u);
  EXPECT_EQ(p.verbose, 3);
}

TEST(ConfigText, ATableIsWrittenAsTheFileReadsItBack) {
  EXPECT_EQ(written_table("proxy"), "[proxy]");
  EXPECT_EQ(written_table("upstream.gmail"), "[upstream.gmail]");
  EXPECT_EQ(written_table("upstream.a.b"), "[upstream.\"a.b\"]");
  EXPECT_EQ(written_table("upstream.my name"), "[upstream.\"my name\"]");
  EXPECT_EQ(written_table("shwo.x"), "[shwo.x]");
  EXPECT_EQ(parse_error("[upstream.\"a.b\"]\nport = 1\nport = 2\n"),
            "line 3: the key port is given twice in [upstream.\"a.b\"]");
}

// A command that handles the stop signals holds them from when it runs, whether or not it takes
// a config file's options (--db, --color): else one sent before its handler is in place kills
// it (command.hpp).
TEST(CommonOptions, ACommandHandlingStopSignalsDefersThemWithoutConfigOptions) {
  CLI::App app;
  Subcommand cmd;
  cmd.app = app.add_subcommand("quiet");
  cmd.handles_stop_signals = true;
  bool deferred = false;
  cmd.run = [&deferred] {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    deferred = sigismember(&mask, SIGTERM) == 1;
    return 0;
  };
  layer_common_options(cmd);
  EXPECT_EQ(cmd.run(), 0);
  stop_signals::end_deferral();
  EXPECT_TRUE(deferred);
}

TEST(PrintConfig, QuotesLikeToml) {
  EXPECT_EQ(toml_quoted("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
}

}  // namespace
}  // namespace mailtap::cli
