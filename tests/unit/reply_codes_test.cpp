#include "tools/reply_codes.hpp"

#include <gtest/gtest.h>

namespace mailtap::tools {
namespace {

TEST(ReplyCodes, EveryRfc5321BasicCodeHasItsOwnMeaning) {
  for (int code : {211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452,
                   455, 500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555}) {
    const std::string m = basic_code_meaning(code);
    EXPECT_FALSE(m.empty()) << code;
    EXPECT_EQ(m.find("(syntax)"), std::string::npos) << code << " fell back to the generic text";
  }
  EXPECT_EQ(basic_code_meaning(235), "authentication succeeded");
  EXPECT_EQ(basic_code_meaning(530), "authentication required");
  EXPECT_EQ(basic_code_meaning(535), "authentication credentials invalid");
}

TEST(ReplyCodes, UnregisteredCodesGetTheirClass) {
  EXPECT_EQ(basic_code_meaning(259), "success (mail system)");
  EXPECT_EQ(basic_code_meaning(479), "temporary failure: try again later (unspecified)");
  EXPECT_EQ(basic_code_meaning(0), "");
  EXPECT_EQ(basic_code_meaning(199), "");
  EXPECT_EQ(basic_code_meaning(600), "");
}

TEST(ReplyCodes, EnhancedStatusClassesSubjectsAndDetails) {
  auto m = enhanced_status_meaning("5.7.1");
  ASSERT_TRUE(m.valid);
  EXPECT_EQ(m.klass, "permanent failure");
  EXPECT_EQ(m.subject, "security or policy status");
  EXPECT_EQ(m.detail, "delivery not authorized, message refused");
  m = enhanced_status_meaning("4.2.2");
  EXPECT_EQ(m.klass, "persistent transient failure");
  EXPECT_EQ(m.detail, "mailbox full");
  EXPECT_EQ(enhanced_status_meaning("2.1.5").detail, "destination address valid");
  EXPECT_EQ(enhanced_status_meaning("5.7.8").detail, "authentication credentials invalid");
  EXPECT_EQ(enhanced_status_meaning("5.7.30").detail, "REQUIRETLS support required");
  EXPECT_EQ(enhanced_status_meaning("5.5.6").detail, "authentication exchange line is too long");
  EXPECT_EQ(enhanced_status_meaning("5.3.99").detail, "mail system status, unregistered detail");
  EXPECT_EQ(enhanced_status_meaning("5.9.0").subject, "unregistered subject");
}

TEST(ReplyCodes, MalformedEnhancedStatusIsInvalid) {
  for (const char* bad :
       {"", "5", "5.7", "3.0.0", "5.7.", ".7.1", "5.7.1x", "5.1000.1", "a.b.c", "5..1", "-5.7.1"})
    EXPECT_FALSE(enhanced_status_meaning(bad).valid) << bad;
}

TEST(ReplyCodes, ExplainsWellKnownPairs) {
  EXPECT_EQ(explain_reply(530, "5.7.0"),
            "authentication or encryption required before this command");
  EXPECT_EQ(explain_reply(550, "5.1.1"), "recipient mailbox does not exist");
  EXPECT_EQ(explain_reply(235, "2.7.0"), "authentication succeeded");
  // A meaning that speaks of a command follows the one answered, where it is known.
  EXPECT_EQ(explain_reply(250, "2.1.0"), "sender accepted");
  EXPECT_EQ(explain_reply(250, "2.1.5"), "recipient accepted");
  EXPECT_EQ(explain_reply(250, "2.1.0", "MAIL"), "sender accepted");
  EXPECT_EQ(explain_reply(250, "2.1.0", "RCPT"), "recipient accepted");
  EXPECT_EQ(explain_reply(250, "2.1.5", "MAIL"), "sender accepted");
  EXPECT_EQ(explain_reply(250, "2.1.5", "RCPT"), "recipient accepted");
  EXPECT_EQ(explain_reply(250, "2.1.0", "NOOP").find("accepted"), std::string::npos);
}

TEST(ReplyCodes, ExplainsOtherPairsByBothHalves) {
  EXPECT_EQ(explain_reply(452, "4.5.3"),
            "requested action not taken: insufficient system storage; too many recipients");
  EXPECT_EQ(explain_reply(250, ""), "requested mail action okay, completed");
  EXPECT_EQ(explain_reply(250, "garbage"), "requested mail action okay, completed");
}

}  // namespace
}  // namespace mailtap::tools
