// A mistyped command or option names the word given and the one meant (it used to be "A
// subcommand is required"), and `mailtap help` is the help, as `git help` is.
#include "proxy/cli/command_word.hpp"

#include <gtest/gtest.h>

namespace mailtap::cli {
namespace {

struct Tree {
  CLI::App root{"root", "mailtap"};
  Tree() {
    root.set_version_flag("--version", "mailtap 1.2.3");
    root.add_subcommand("proxy", "relays");
    root.add_subcommand("sessions", "lists");
    root.add_subcommand("show", "shows");
    root.add_subcommand("upstream-names", "for completion")->group("");
  }
};

TEST(CommandWord, AMisspeltCommandIsNamedWithTheOneMeant) {
  Tree t;
  EXPECT_EQ(unknown_first_word(t.root, {"sesions"}),
            "unknown command \"sesions\" (did you mean sessions?); mailtap --help lists the "
            "commands");
  EXPECT_EQ(unknown_first_word(t.root, {"shwo", "1"}),
            "unknown command \"shwo\" (did you mean show?); mailtap --help lists the commands");
  EXPECT_EQ(unknown_first_word(t.root, {"frobnicate"}),
            "unknown command \"frobnicate\"; mailtap --help lists the commands");
}

TEST(CommandWord, AMisspeltOptionIsNamedWithTheOneMeant) {
  Tree t;
  EXPECT_EQ(unknown_first_word(t.root, {"--verison"}),
            "unknown option --verison (did you mean --version?); mailtap --help lists the "
            "options and commands");
}

TEST(CommandWord, KnownWordsAndNoneAreLeftToTheParser) {
  Tree t;
  for (const char* known : {"proxy", "sessions", "upstream-names", "--help", "-h", "--version"})
    EXPECT_EQ(unknown_first_word(t.root, {known}), "") << known;
  EXPECT_EQ(unknown_first_word(t.root, {}), "");
}

// What is echoed to the terminal cannot carry an escape sequence.
TEST(CommandWord, ControlCharactersInTheWordAreEscaped) {
  Tree t;
  const std::string said = unknown_first_word(t.root, {"x\x1b]0;owned\x07"});
  EXPECT_EQ(said.find('\x1b'), std::string::npos) << said;
  EXPECT_NE(said.find("\\x1b"), std::string::npos) << said;
}

TEST(CommandWord, HelpIsTheHelpOfTheToolOrTheCommand) {
  using Args = std::vector<std::string>;
  EXPECT_EQ(help_command_arguments({"help"}), (Args{"--help"}));
  EXPECT_EQ(help_command_arguments({"help", "show"}), (Args{"show", "--help"}));
  EXPECT_EQ(help_command_arguments({"show", "help"}), (Args{"show", "help"}));
  // What follows the command is not checked as that command would check it.
  EXPECT_EQ(help_command_arguments({"help", "show", "extra"}), (Args{"show", "--help"}));
  EXPECT_EQ(help_command_arguments({"help", "sessions", "--bogus"}), (Args{"sessions", "--help"}));
}

}  // namespace
}  // namespace mailtap::cli
