#include "tools/cli_docs.hpp"

#include <gtest/gtest.h>

namespace mailtap::tools {
namespace {

struct Tree {
  CLI::App root{"root description", "mailtap"};
  std::string tls, db, hidden_value;
  bool flag = false;
  std::vector<std::string> words;
  Tree() {
    root.set_version_flag("--version", "mailtap 1.2.3");
    CLI::App* a = root.add_subcommand("alpha", "Does alpha things");
    a->add_option("--tls", tls, "mode")->check(CLI::IsMember({"starttls", "implicit"}));
    a->add_option("--db", db, "a file");
    a->add_flag("-q,--quiet", flag, "say less");
    a->add_option("WORDS", words, "what to say")->required();
    a->footer(".starts with a dot\nExample: mailtap alpha x\n  mailtap alpha y");
    CLI::App* hidden = root.add_subcommand("hidden-step", "not for users");
    hidden->group("");
    hidden->add_option("--x", hidden_value, "x");
  }
};

TEST(CliDocs, OneManPageForTheToolAndEachVisibleCommand) {
  Tree t;
  const auto pages = man_pages(t.root, "1.2.3");
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].file_name, "mailtap.1");
  EXPECT_EQ(pages[1].file_name, "mailtap-alpha.1");
  const std::string& root = pages[0].roff;
  EXPECT_NE(root.find(".TH MAILTAP 1 \"\" \"mailtap 1.2.3\""), std::string::npos);
  EXPECT_NE(root.find("\\fBmailtap alpha\\fR"), std::string::npos);
  EXPECT_EQ(root.find("hidden-step"), std::string::npos);
  const std::string& alpha = pages[1].roff;
  EXPECT_NE(alpha.find("\\fB\\-\\-tls\\fR \\fIstarttls\\fR|\\fIimplicit\\fR"), std::string::npos)
      << alpha;
  EXPECT_NE(alpha.find("\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR\nsay less"), std::string::npos) << alpha;
  EXPECT_NE(alpha.find("\\fIWORDS\\fR..."), std::string::npos) << alpha;
  // A footer line starting with a dot must not become a roff request.
  EXPECT_NE(alpha.find(".PP\n\\&.starts with a dot"), std::string::npos) << alpha;
  EXPECT_NE(alpha.find(".br\nmailtap alpha y"), std::string::npos) << alpha;
}

TEST(CliDocs, CompletionKnowsCommandsOptionsChoicesAndPaths) {
  Tree t;
  const std::string s = bash_completion(t.root);
  EXPECT_NE(s.find("alpha)\n                cmd="), std::string::npos) << s;
  EXPECT_NE(s.find("compgen -W 'alpha -h --help --version'"), std::string::npos) << s;
  EXPECT_NE(s.find("--tls)\n                    COMPREPLY=($(compgen -W 'starttls implicit'"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("--db)\n                    compopt -o filenames"), std::string::npos) << s;
  EXPECT_NE(s.find("'-h --help --tls --db -q --quiet'"), std::string::npos) << s;
  EXPECT_EQ(s.find("hidden-step"), std::string::npos);
  EXPECT_NE(s.find("complete -F _mailtap mailtap"), std::string::npos);
}

TEST(CliDocs, EveryPageSaysWhatItsExitStatusMeans) {
  Tree t;
  CLI::App* proxy = t.root.add_subcommand("proxy", "Relays");
  proxy->group("Commands");
  for (const ManPage& page : man_pages(t.root, "1.2.3"))
    EXPECT_NE(page.roff.find("\n.SH EXIT STATUS\n"), std::string::npos) << page.file_name;
  const auto pages = man_pages(t.root, "1.2.3");
  // The proxy's 2 is what the systemd unit's RestartPreventExitStatus=2 relies on.
  const std::string& proxy_page = pages[2].roff;
  ASSERT_EQ(pages[2].file_name, "mailtap-proxy.1");
  EXPECT_NE(proxy_page.find(".TP\n.B 2\na configuration error"), std::string::npos) << proxy_page;
  EXPECT_NE(pages[1].roff.find(".TP\n.B 2\nbad usage"), std::string::npos) << pages[1].roff;
}

TEST(CliDocs, ManPagesNameTheInstalledDocs) {
  Tree t;
  t.root.get_subcommand("alpha")->footer("see docs/config.md (and docs/auth.md)\nnot mydocs/x");
  const auto plain = man_pages(t.root, "1.2.3");
  EXPECT_NE(plain[0].roff.find(" docs/config.md"), std::string::npos) << plain[0].roff;
  const auto pages = man_pages(t.root, "1.2.3", "/usr/share/doc/mailtap");
  EXPECT_NE(pages[0].roff.find(" /usr/share/doc/mailtap/docs/config.md"), std::string::npos)
      << pages[0].roff;
  const std::string& alpha = pages[1].roff;
  EXPECT_NE(alpha.find("see /usr/share/doc/mailtap/docs/config.md "
                       "(and /usr/share/doc/mailtap/docs/auth.md)"),
            std::string::npos)
      << alpha;
  EXPECT_NE(alpha.find("not mydocs/x"), std::string::npos) << alpha;
}

}  // namespace
}  // namespace mailtap::tools
