#include "proxy/common/installed_docs.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace mailtap {
namespace {

TEST(InstalledDocs, AnInstalledBinaryNamesTheInstalledDocs) {
  const std::set<std::string> files{"/usr/share/doc/mailtap/docs/config.md",
                                    "/opt/m/doc/docs/config.md"};
  const auto exists = [&](const std::string& p) { return files.count(p) != 0; };
  EXPECT_EQ(documentation_path("config.md", "/usr/bin/mailtap", "bin", "share/doc/mailtap", exists),
            "/usr/share/doc/mailtap/docs/config.md");
  EXPECT_EQ(
      documentation_path("config.md", "/opt/m/sbin/x/mailtap", "sbin/x", "/opt/m/doc", exists),
      "/opt/m/doc/docs/config.md")
      << "an absolute docdir, a bindir of two parts";
}

TEST(InstalledDocs, ABuildTreeBinaryNamesTheSourceDocs) {
  const auto all = [](const std::string&) { return true; };
  const auto none = [](const std::string&) { return false; };
  EXPECT_EQ(documentation_path("config.md", "/src/mailtap/build/mailtap", "bin",
                               "share/doc/mailtap", all),
            "docs/config.md")
      << "not in a bin directory";
  EXPECT_EQ(
      documentation_path("proxy.md", "/usr/local/bin/mailtap", "bin", "share/doc/mailtap", none),
      "docs/proxy.md")
      << "installed without its docs";
}

}  // namespace
}  // namespace mailtap
