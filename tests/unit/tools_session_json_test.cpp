#include "tools/session_json.hpp"

#include <gtest/gtest.h>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {
namespace {

TEST(SessionJson, BytesMemberFallsBackToBase64) {
  JsonWriter w;
  w.begin_object();
  write_bytes_member(w, "bytes", "EHLO x\r\n");
  write_bytes_member(w, "body", std::string("\xff\x00", 2));
  w.end_object();
  EXPECT_EQ(w.str(), R"({"bytes":"EHLO x\r\n","body":"/wA=","body_encoding":"base64"})");
}

TEST(SessionJson, RecordedTextThatIsNotUtf8ComesAsBase64) {
  // What a client typed reaches these columns as it was sent: a Latin-1 user name, a
  // surrogate in MAIL FROM. The JSON keeps every octet, marked, and stays valid UTF-8.
  storage::SessionDetail d;
  d.session.auth_user = "caf\xe9\xff";
  d.session.ehlo_name = "client.test";
  storage::EventRow e;
  e.event.note = "authcid=\"caf\xe9\xff\"";
  d.events.push_back(e);
  storage::MessageRow m;
  m.message.mail_from =
      "MAIL FROM:<ov\xe0\x80\xaf"
      "er@b.test>";
  d.messages.push_back(m);
  JsonWriter w;
  write_session_detail(w, d);
  const std::string json = w.take();
  EXPECT_TRUE(is_valid_utf8(json));
  EXPECT_NE(json.find(R"("auth_user":")" + smtp::base64_encode("caf\xe9\xff") +
                      R"(","auth_user_encoding":"base64")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("note_encoding":"base64")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("mail_from":")" +
                      smtp::base64_encode("MAIL FROM:<ov\xe0\x80\xaf"
                                          "er@b.test>") +
                      R"(","mail_from_encoding":"base64")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("ehlo_name":"client.test",)"), std::string::npos) << json;
  EXPECT_EQ(json.find("ehlo_name_encoding"), std::string::npos) << json;
}

// export.md: every column of the sessions table, an absent value null. A session nobody
// authenticated and one without TLS have auth_by and tls_resumed as null, not left out.
TEST(SessionJson, NullColumnsAreNullMembersNotLeftOut) {
  const auto members = [](const storage::SessionRow& s) {
    JsonWriter w;
    w.begin_object();
    write_session_members(w, s);
    w.end_object();
    return w.take();
  };
  storage::SessionRow s;
  std::string json = members(s);
  EXPECT_NE(json.find(R"("auth_user":null,"auth_mechanism":null,"auth_by":null,)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("tls_version":null,"tls_resumed":null,)"), std::string::npos) << json;

  s.auth_user = "alice";
  s.auth_mechanism = "PLAIN";
  s.auth_by = storage::AuthBy::mailtap;
  s.tls_version = "TLSv1.3";
  s.tls_resumed = false;
  json = members(s);
  EXPECT_NE(json.find(R"("auth_mechanism":"PLAIN","auth_by":"mailtap",)"), std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("tls_version":"TLSv1.3","tls_resumed":false,)"), std::string::npos)
      << json;
}

TEST(SessionJson, PemWrapsAt64Columns) {
  const std::string pem = der_to_pem(std::string(60, '\x30'));
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  EXPECT_NE(pem.find("\n-----END CERTIFICATE-----\n"), std::string::npos);
  const auto first = pem.find('\n') + 1;
  EXPECT_EQ(pem.find('\n', first) - first, 64u);
}

TEST(SessionJson, PemHoldsTheRecordedBytesExactly) {
  std::string der;
  for (int i = 0; i < 200; ++i) der.push_back(static_cast<char>(i * 7));
  const std::string pem = der_to_pem(der);
  const std::string begin = "-----BEGIN CERTIFICATE-----\n";
  const std::string end = "-----END CERTIFICATE-----\n";
  ASSERT_EQ(pem.rfind(begin, 0), 0u);
  ASSERT_EQ(pem.substr(pem.size() - end.size()), end);
  std::string body = pem.substr(begin.size(), pem.size() - begin.size() - end.size());
  std::erase(body, '\n');
  EXPECT_EQ(smtp::base64_decode(body), der);
}

}  // namespace
}  // namespace mailtap::tools
