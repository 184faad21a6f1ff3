#include "tools/web/download_name.hpp"

#include <gtest/gtest.h>

namespace mailtap::tools::web {
namespace {

TEST(WebDownloadName, APlainNameIsSentAsItIs) {
  EXPECT_EQ(attachment_disposition("report.pdf", "part-1"), "attachment; filename=\"report.pdf\"");
  EXPECT_EQ(attachment_disposition("", "part-1"), "attachment; filename=\"part-1\"");
  EXPECT_EQ(attachment_disposition("...", "part-2.html"), "attachment; filename=\"part-2.html\"");
}

TEST(WebDownloadName, ANonAsciiNameHasAnAsciiFormAndItsUtf8) {
  EXPECT_EQ(attachment_disposition("Rechnung März 2026.pdf", "part-1"),
            "attachment; filename=\"Rechnung M_rz 2026.pdf\"; "
            "filename*=UTF-8''Rechnung%20M%C3%A4rz%202026.pdf");
  EXPECT_EQ(attachment_disposition("50%.txt", "part-1"),
            "attachment; filename=\"50_.txt\"; filename*=UTF-8''50%25.txt");
}

// The name is the sender's: nothing in it may end the header, add a parameter, name a
// directory, hide its real extension or run past what a file system takes.
TEST(WebDownloadName, AHostileNameStaysOneFileNameInOneHeader) {
  for (const char* hostile :
       {"a\"; filename=\"evil.exe", "a\r\nSet-Cookie: x=y", "../../etc/passwd", "C:\\win\\x.bat",
        "\x01\x7f\xc2\x85", "x\xff\xfe.txt", "cod\xe2\x80\xaegpj.exe", "a%0d%0ab"}) {
    const std::string value = attachment_disposition(hostile, "part-1");
    EXPECT_EQ(value.find_first_of("\r\n\\/"), std::string::npos) << value;
    EXPECT_EQ(value.find("Set-Cookie: "), std::string::npos) << value;
    // one quoted string: the opening and closing quote and no other
    const auto open = value.find('"');
    EXPECT_EQ(value.find('"', value.find('"', open + 1) + 1), std::string::npos) << value;
    for (unsigned char c : value) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << value;
  }
  EXPECT_EQ(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
  EXPECT_EQ(safe_file_name("a\r\nb"), "a__b");
  EXPECT_EQ(safe_file_name("cod\xe2\x80\xaegpj.exe"), "codgpj.exe");  // no right-to-left override
  EXPECT_EQ(safe_file_name(" .hidden. "), "hidden");
  EXPECT_EQ(safe_file_name("x\xff.txt"), "x_.txt");
}

TEST(WebDownloadName, ALongNameKeepsItsExtension) {
  const std::string stem(500, 'a');
  const std::string name = safe_file_name(stem + ".pdf");
  EXPECT_EQ(name.size(), kMaxFileNameOctets);
  EXPECT_TRUE(name.ends_with("a.pdf"));
  // cut at a character's start, never inside one
  std::string umlauts;
  for (int i = 0; i < 200; ++i) umlauts += "\xc3\xa4";
  const std::string cut = safe_file_name(umlauts + ".txt");
  EXPECT_LE(cut.size(), kMaxFileNameOctets);
  EXPECT_EQ(cut, umlauts.substr(0, 146) + ".txt");
}

}  // namespace
}  // namespace mailtap::tools::web
