// The secret-source options: at most one, and each maps to its source.
#include "proxy/cli/secret_options.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace mailtap::cli {
namespace {

using Kind = secrets::SecretSource::Kind;

void parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  app.parse(args);
}

// `--password-file "$PWFILE"` with PWFILE unset: refused naming the option, never taken as no
// source (which prompts on a terminal, or asks for the option that was given).
TEST(SecretOptions, AnEmptySourceIsRefusedNotTakenAsNone) {
  for (const std::string option :
       {"--password-env", "--password-file", "--password-cmd", "--oauth2-token-cmd"}) {
    CLI::App app;
    SecretOptions o;
    o.add_password_options(app);
    o.add_token_option(app);
    try {
      parse(app, {option, ""});
      ADD_FAILURE() << option << " \"\" was accepted";
    } catch (const CLI::ValidationError& e) {
      EXPECT_NE(std::string(e.what()).find(option + ": an empty value names no "),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(SecretOptions, EachOptionNamesItsSource) {
  const struct {
    std::vector<std::string> args;
    Kind kind;
    std::string value;
  } cases[] = {{{"--password-env", "PW"}, Kind::env, "PW"},
               {{"--password-file", "/run/pw"}, Kind::file, "/run/pw"},
               {{"--password-cmd", "pass show x"}, Kind::command, "pass show x"},
               {{}, Kind::prompt, "Password: "}};
  for (const auto& c : cases) {
    CLI::App app;
    SecretOptions o;
    o.add_password_options(app);
    o.add_token_option(app);
    parse(app, c.args);
    const secrets::SecretSource s = o.password_source("Password: ");
    EXPECT_EQ(s.kind, c.kind);
    EXPECT_EQ(s.value, c.value);
    EXPECT_EQ(o.has_password_source(), c.kind != Kind::prompt);
  }
}

TEST(SecretOptions, AtMostOneSource) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--password-env", "A", "--password-cmd", "b"},
        std::vector<std::string>{"--password-file", "f", "--password-env", "A"},
        std::vector<std::string>{"--password-cmd", "b", "--oauth2-token-cmd", "t"}}) {
    CLI::App app;
    SecretOptions o;
    o.add_password_options(app);
    o.add_token_option(app);
    EXPECT_THROW(parse(app, args), CLI::ExcludesError) << args[0] << " " << args[2];
  }
}

TEST(SecretOptions, HelpSaysWhereTheSecretComesFrom) {
  CLI::App app;
  SecretOptions o;
  o.add_password_options(app);
  o.add_token_option(app);
  const std::string help = app.help();
  EXPECT_NE(help.find("environment variable VAR"), std::string::npos);
  EXPECT_NE(help.find("chmod 600"), std::string::npos);
  EXPECT_NE(help.find("/bin/sh -c"), std::string::npos);
  EXPECT_NE(help.find("OAuth 2.0 access token"), std::string::npos);
}

}  // namespace
}  // namespace mailtap::cli
