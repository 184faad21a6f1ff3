#include "proxy/smtp/reply_lines.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/smtp/auth_explanation.hpp"

namespace mailtap::smtp {
namespace {

std::vector<std::string> lines_of(const std::string& reply) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < reply.size()) {
    const std::size_t end = reply.find("\r\n", start);
    if (end == std::string::npos) break;
    lines.push_back(reply.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

TEST(ReplyLines, AShortTextIsOneLine) {
  EXPECT_EQ(reply_lines("421", "4.4.2 mailtap: closing"), "421 4.4.2 mailtap: closing\r\n");
  EXPECT_EQ(reply_lines("421", "mailtap: closing"), "421 mailtap: closing\r\n");
}

// Long certificate names and paths: every line within RFC 5321's 512 octets with its CRLF, each
// with the status code, marked as a continuation but the last, and no word lost.
TEST(ReplyLines, ALongTextIsSplitAtSpacesIntoLinesOfAtMost510Octets) {
  const std::string dn = "CN=" + std::string(200, 'c') + ",O=" + std::string(150, 'o');
  const std::string path = "/home/me/" + std::string(300, 'p') + "/client.pem";
  const std::string words = "mailtap: mx.example:465 presented " + path + " (" + dn +
                            "): check that the server trusts its issuer (" + dn + ") " +
                            std::string(600, 'x') + " and that";
  const std::string reply = reply_lines("421", "4.7.1 " + words);
  const std::vector<std::string> lines = lines_of(reply);
  ASSERT_GE(lines.size(), 4u) << reply;
  std::string joined;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), kMaxExplanation) << lines[i];
    const std::string start = i + 1 < lines.size() ? "421-4.7.1 " : "421 4.7.1 ";
    ASSERT_EQ(lines[i].rfind(start, 0), 0u) << lines[i];
    const std::string text = lines[i].substr(start.size());
    // A split inside a word only where the word is longer than a line (the 600 x's).
    if (!joined.empty()) joined += text.front() == 'x' && joined.back() == 'x' ? "" : " ";
    joined += text;
  }
  EXPECT_EQ(joined, words);
}

}  // namespace
}  // namespace mailtap::smtp
