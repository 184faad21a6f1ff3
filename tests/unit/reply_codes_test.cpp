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

// RFC 3463 X.7.1 is "delivery not authorized, message refused": relaying denied at RCPT, the
// message itself at the end of data (its recipients had been accepted).
TEST(ReplyCodes, A571FollowsTheCommandItAnswers) {
  EXPECT_EQ(explain_reply(550, "5.7.1", "RCPT"),
            "refused by policy (relaying denied or not authorized)");
  for (const char* verb : {"DATA", "BDAT", kBdatLastVerb}) {
    const std::string m = explain_reply(550, "5.7.1", verb);
    EXPECT_EQ(m.find("relaying"), std::string::npos) << verb << ": " << m;
    EXPECT_NE(m.find("message refused by policy"), std::string::npos) << verb << ": " << m;
    const ReplyAdvice a = advise_reply(554, "5.7.1", "554 5.7.1 spam", ReplyFrom::server, verb);
    EXPECT_EQ(a.fix.find("relay"), std::string::npos) << verb << ": " << a.fix;
  }
  // Not known: neither reading alone.
  EXPECT_NE(explain_reply(550, "5.7.1").find("at the end of data the message"), std::string::npos);
}

// A BDAT chunk's 250 accepts the chunk; only the LAST chunk's accepts the message (RFC 3030).
TEST(ReplyCodes, A250ToBdatFollowsTheChunkItAnswers) {
  EXPECT_EQ(explain_reply(250, "2.0.0", kBdatLastVerb), "message accepted");
  EXPECT_EQ(explain_reply(250, "2.0.0", "DATA"), "message accepted");
  for (const char* status : {"2.0.0", ""}) {
    const std::string m = explain_reply(250, status, kBdatChunkVerb);
    EXPECT_EQ(m.find("message accepted"), std::string::npos) << m;
    EXPECT_NE(m.find("chunk accepted; the message is not yet"), std::string::npos) << m;
  }
  EXPECT_NE(explain_reply(250, "2.0.0", "BDAT").find("if it was the LAST chunk"),
            std::string::npos);
  EXPECT_EQ(explain_reply(250, "2.0.0"), "accepted");  // mailtap explain: no command
}

// mailtap's own idle 421 is the client's silence, not X.4.2's "bad connection".
TEST(ReplyCodes, MailtapsIdleTimeoutIsExplainedAsTheClientsSilence) {
  const ReplyAdvice a = advise_reply(
      421, "4.4.2", "421 4.4.2 mailtap: idle for 15s waiting for the client; closing\r\n",
      ReplyFrom::mailtap);
  EXPECT_EQ(a.server, "mailtap");
  EXPECT_EQ(a.meaning.find("bad connection"), std::string::npos) << a.meaning;
  EXPECT_NE(a.meaning.find("the client sent nothing"), std::string::npos) << a.meaning;
  const ReplyAdvice slow = advise_reply(
      421, "4.4.2",
      "421 4.4.2 mailtap: the client's command line was not complete within 5m; closing\r\n",
      ReplyFrom::mailtap);
  EXPECT_EQ(slow.meaning.find("bad connection"), std::string::npos) << slow.meaning;
  // A server's 421 4.4.2 keeps its registered meaning.
  EXPECT_NE(advise_reply(421, "4.4.2", "421 4.4.2 waiting for the client", ReplyFrom::server)
                .meaning.find("bad connection"),
            std::string::npos);
}

TEST(ReplyCodes, ExplainsOtherPairsByBothHalves) {
  EXPECT_EQ(explain_reply(452, "4.5.3"),
            "requested action not taken: insufficient system storage; too many recipients");
  EXPECT_EQ(explain_reply(250, ""), "requested mail action okay, completed");
  EXPECT_EQ(explain_reply(250, "garbage"), "requested mail action okay, completed");
}

}  // namespace
}  // namespace mailtap::tools
