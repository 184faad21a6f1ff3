#include "tools/cli_docs.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

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

// --help's first line is "mailtap: talk SMTP ..."; the NAME line (what whatis/apropos show) is
// "name \- description" (man-pages(7)), so the name must not come twice.
TEST(CliDocs, RootNameLineDoesNotRepeatTheName) {
  CLI::App root{"mailtap: talk SMTP by hand", "mailtap"};
  root.add_subcommand("alpha", "Does alpha things");
  const auto pages = man_pages(root, "1.2.3");
  ASSERT_FALSE(pages.empty());
  EXPECT_NE(pages[0].roff.find(".SH NAME\nmailtap \\- talk SMTP by hand\n"), std::string::npos)
      << pages[0].roff;
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

// `mailtap proxy NAME`: the names come from the hidden `mailtap upstream-names`, which only
// reads the config file; a command without a NAME positional offers none.
TEST(CliDocs, CompletionOffersUpstreamNamesWhereNameIsOne) {
  Tree t;
  std::string name;
  CLI::App* beta = t.root.add_subcommand("beta", "Relays to NAME");
  beta->add_option("NAME", name, "the upstream");
  EXPECT_EQ(bash_completion(t.root).find("upstream-names"), std::string::npos)
      << "no command lists the names";
  t.root.add_subcommand("upstream-names", "lists them")->group("");
  const std::string s = bash_completion(t.root);
  const auto beta_case = s.find("        beta)\n");
  ASSERT_NE(beta_case, std::string::npos) << s;
  const auto listed = s.find("upstream-names ${config:+--config \"$config\"} 2>/dev/null");
  EXPECT_GT(listed, beta_case) << s;
  EXPECT_EQ(s.find("upstream-names", s.find("        alpha)\n")), listed) << "alpha has no NAME";
  EXPECT_EQ(s.find("upstream-names)"), std::string::npos) << "hidden: not a command to complete";
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

// The man pages' EXIT STATUS sections are written from tools/cli_docs.cpp's table, not from
// docs/ (which say the same with more detail): each command's doc must give the same codes, and
// where it has a table, the same meanings once the details in parentheses are left out.
std::string read_doc(const std::string& relative) {
  std::ifstream in(std::string(MAILTAP_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `text` without "(...)" asides, `backticks` and the roff escapes of '-' and '\'.
std::string plain_meaning(std::string text) {
  text = std::regex_replace(text, std::regex(R"(\\-)"), "-");
  text = std::regex_replace(text, std::regex(R"(\\e)"), "\\");
  for (std::string before; before != text;) {
    before = text;
    text = std::regex_replace(text, std::regex(R"(\s*\([^()]*\))"), "");
  }
  text = std::regex_replace(text, std::regex("`"), "");
  while (!text.empty() && (text.back() == '.' || text.back() == ' ')) text.pop_back();
  return text;
}

// The doc's exit status: the "## Exit status" section, else the paragraph that starts with
// "Exit status:". Codes with their meaning when the doc has a table, else with "".
std::map<int, std::string> documented_exit_statuses(const std::string& doc) {
  std::string section;
  if (const auto at = doc.find("\n## Exit status\n"); at != std::string::npos) {
    section = doc.substr(at + 1, doc.find("\n## ", at + 1) - at - 1);
  } else if (const auto para = doc.find("\nExit status: "); para != std::string::npos) {
    section = doc.substr(para + 1, doc.find("\n\n", para + 1) - para - 1);
  }
  std::map<int, std::string> out;
  const std::regex row(R"(\n\| (\d) \| (.*) \|)");
  for (std::sregex_iterator m(section.begin(), section.end(), row), end; m != end; ++m)
    out[std::stoi((*m)[1])] = plain_meaning((*m)[2]);
  if (!out.empty()) return out;
  const std::regex bullet(R"(\n- \*\*(\d)\*\*)");
  for (std::sregex_iterator m(section.begin(), section.end(), bullet), end; m != end; ++m)
    out[std::stoi((*m)[1])] = "";
  if (!out.empty()) return out;
  // Prose: "Exit status: 0; 1 if ...; 2 for ...", codes after the colon or a ';', ',' or '.'.
  const std::string prose = std::regex_replace(plain_meaning(section), std::regex("\\*\\*"), "");
  const std::regex code(R"((?:Exit status:|[;,.])\s+(\d)(?=[\s;,.]))");
  for (std::sregex_iterator m(prose.begin(), prose.end(), code), end; m != end; ++m)
    out[std::stoi((*m)[1])] = "";
  return out;
}

std::map<int, std::string> man_exit_statuses(const std::string& roff) {
  const auto at = roff.find("\n.SH EXIT STATUS\n");
  const std::string section = roff.substr(at, roff.find("\n.SH ", at + 1) - at);
  std::map<int, std::string> out;
  const std::regex entry(R"(\n\.TP\n\.B (\d)\n([^\n]*))");
  for (std::sregex_iterator m(section.begin(), section.end(), entry), end; m != end; ++m)
    out[std::stoi((*m)[1])] = plain_meaning((*m)[2]);
  return out;
}

TEST(CliDocs, ManPagesAndDocsGiveTheSameExitStatuses) {
  std::map<std::string, std::string> docs{{"proxy", "docs/proxy.md"}, {"web", "docs/web.md"}};
  for (const auto& file :
       std::filesystem::directory_iterator(std::string(MAILTAP_SOURCE_DIR) + "/docs/tools"))
    if (file.path().stem() != "README")
      docs[file.path().stem().string()] = "docs/tools/" + file.path().filename().string();
  ASSERT_GE(docs.size(), 13u);
  CLI::App root{"mailtap", "mailtap"};
  for (const auto& [command, doc] : docs) root.add_subcommand(command, command)->group("Commands");
  for (const ManPage& page : man_pages(root, "1.2.3")) {
    if (page.file_name == "mailtap.1") continue;
    const std::string command = page.file_name.substr(8, page.file_name.size() - 10);
    const std::map<int, std::string> man = man_exit_statuses(page.roff);
    const std::map<int, std::string> doc = documented_exit_statuses(read_doc(docs[command]));
    std::set<int> man_codes, doc_codes;
    for (const auto& [code, meaning] : man) man_codes.insert(code);
    for (const auto& [code, meaning] : doc) doc_codes.insert(code);
    EXPECT_EQ(man_codes, doc_codes) << command << ": " << docs[command];
    for (const auto& [code, meaning] : doc)
      if (!meaning.empty() && man.count(code) != 0)
        EXPECT_EQ(man.at(code), meaning) << command << " exit status " << code;
  }
}

// export.md names each bad usage that exits 2 ("2 for a bad option (an unknown `--format`,
// ...)"): export's man page names the same, not fewer (it lacked --accepted-only with JSON,
// several messages as eml without -o DIR, and neither IDs nor --all).
TEST(CliDocs, ExportsManPageNamesEachBadUsageItsDocNames) {
  std::string doc = read_doc("docs/tools/export.md");
  doc = std::regex_replace(doc, std::regex("`"), "");
  doc = std::regex_replace(doc, std::regex("\n"), " ");
  std::smatch aside;
  ASSERT_TRUE(std::regex_search(doc, aside, std::regex(R"(2 for a bad option \(([^()]*)\))")));
  CLI::App root{"mailtap", "mailtap"};
  root.add_subcommand("export", "export")->group("Commands");
  std::string section;
  for (const ManPage& page : man_pages(root, "1.2.3"))
    if (page.file_name == "mailtap-export.1") {
      const auto at = page.roff.find("\n.SH EXIT STATUS\n");
      section = page.roff.substr(at, page.roff.find("\n.SH ", at + 1) - at);
    }
  section = std::regex_replace(section, std::regex(R"(\\-)"), "-");
  const std::string two = section.substr(section.find("\n.B 2\n"));
  const std::string items = aside[1].str();
  std::size_t count = 0;
  for (std::size_t start = 0; start <= items.size(); ++count) {
    const std::size_t end = std::min(items.find(", ", start), items.size());
    const std::string item = items.substr(start, end - start);
    EXPECT_NE(two.find(item), std::string::npos) << "\"" << item << "\" not in " << two;
    start = end + 2;
  }
  EXPECT_GE(count, 4u) << items;
}

// Each command's page says what its own exit statuses mean: no two pages share the section, and
// none has the one a command missing from tools/cli_docs.cpp's table gets (which told of a
// database and a server to `encode`, and nothing of a missing session to `show`).
TEST(CliDocs, EachCommandsExitStatusesAreItsOwn) {
  CLI::App root{"mailtap", "mailtap"};
  for (const auto& file :
       std::filesystem::directory_iterator(std::string(MAILTAP_SOURCE_DIR) + "/docs/tools"))
    if (file.path().stem() != "README")
      root.add_subcommand(file.path().stem().string(), "a command")->group("Commands");
  for (const char* command : {"proxy", "web", "help", "no-such-command"})
    root.add_subcommand(command, "a command")->group("Commands");
  std::map<std::string, std::string> page_of_section;
  std::string fallback;
  for (const ManPage& page : man_pages(root, "1.2.3")) {
    if (page.file_name == "mailtap.1") continue;
    const auto at = page.roff.find("\n.SH EXIT STATUS\n");
    const std::string section = page.roff.substr(at, page.roff.find("\n.SH ", at + 1) - at);
    if (page.file_name == "mailtap-no-such-command.1") {
      fallback = section;
      continue;
    }
    const auto [same, inserted] = page_of_section.emplace(section, page.file_name);
    EXPECT_TRUE(inserted) << page.file_name << " says what " << same->second << " says";
  }
  ASSERT_GE(page_of_section.size(), 14u);
  EXPECT_EQ(page_of_section.count(fallback), 0u)
      << page_of_section[fallback] << " has no exit statuses of its own";
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
