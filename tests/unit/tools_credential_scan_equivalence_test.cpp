// The scans behind `mailtap audit` read every octet of the record in one pass, decode base64
// with a table and judge smuggling shapes as the pieces of a session's DATA come. These tests
// hold them to what the simple scans they replace found (kept here as the reference: a second
// search for the line before each base64 run, BoringSSL's decoder, the whole DATA of a session
// joined), on many random inputs and random splits.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "tests/unit/plain_shaped_octets_for_tests.hpp"
#include "tools/credential_scan.hpp"
#include "tools/stream_credential_scan.hpp"

namespace mailtap::tools {
namespace {

using namespace std::string_literals;
using mailtap::testing::string_table;
using mailtap::testing::wrapped_base64;

// ---- The reference: scan_for_credentials and find_smuggling_shapes as they were. ----

bool reference_plain_message(std::string_view d, bool message_body, std::string& user) {
  if (message_body) return smtp::is_plain_message(d, user);
  if (!smtp::has_plain_message_shape(d)) return false;
  const std::size_t first = d.find('\0');
  user = std::string(d.substr(first + 1, d.find('\0', first + 1) - first - 1));
  return true;
}

// The finding's text is the scan's own; the reference only says which kind it found, where.
using Found = std::tuple<std::size_t, std::string>;

// The reference's look at one run of base64 characters at `i`.
void reference_token(std::string_view token, std::size_t i, bool slice, bool message_body,
                     const std::string& pw, std::vector<Found>& found,
                     std::vector<std::string>& users) {
  const auto decoded = smtp::base64_decode_secret(token);
  if (!decoded) return;
  const std::string_view d = decoded->view();
  std::string user;
  if (!slice && reference_plain_message(d, message_body, user)) {
    found.emplace_back(i, "plain");
    users.push_back(user);
  }
  std::size_t b = 0;
  if (smtp::find_bearer_token(d, b)) found.emplace_back(i, "bearer in base64");
  if (!pw.empty() && d.find(pw) != std::string_view::npos && d != pw)
    found.emplace_back(i, "pw in base64");
}

// What the reference finds, its finding texts reduced to their kind (the user named in a
// PLAIN finding is compared separately, in `users`).
std::vector<Found> reference_scan(std::string_view bytes, const std::string& pw,
                                  std::size_t width_before, bool message_body,
                                  std::vector<std::string>& users) {
  std::vector<Found> found;
  std::size_t at = 0;
  if (smtp::find_bearer_token(bytes, at)) found.emplace_back(at, "bearer in clear");
  if (!pw.empty()) {
    if (auto p = bytes.find(pw); p != std::string_view::npos) found.emplace_back(p, "pw in clear");
    if (auto p = bytes.find(smtp::base64_encode(pw)); p != std::string_view::npos)
      found.emplace_back(p, "pw base64");
  }
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (!smtp::is_base64_char(bytes[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < bytes.size() && smtp::is_base64_char(bytes[j])) ++j;
    const std::string_view token = bytes.substr(i, j - i);
    if (token.size() >= 8) {
      bool slice = (i == 0 || bytes[i - 1] == '\n') &&
                   (j == bytes.size() || bytes[j] == '\r' || bytes[j] == '\n');
      if (slice) {
        const std::size_t width = wrapped_width_before(bytes, i, width_before);
        slice = width > 0 && width >= j - i;
      }
      // Outside a body, a PLAIN blob counts only as an argument of its own (the dialogue's rule).
      const bool no_plain = slice || (!message_body && !smtp::stands_alone(bytes, i, j - i));
      reference_token(token, i, no_plain, message_body, pw, found, users);
    }
    i = j;
  }
  // Outside a body, the words the runs above cannot read whole, as the dialogue reads a pasted
  // word (smtp::find_credential_words): not a whole run of the standard alphabet, a multiple of
  // 4 long, which the runs judged.
  if (!message_body) {
    for (const smtp::CredentialWord& w : smtp::find_credential_words(bytes)) {
      const std::string_view word = bytes.substr(w.at, w.size);
      const bool before = w.at > 0 && smtp::is_base64_char(bytes[w.at - 1]);
      const bool after = w.at + w.size < bytes.size() && smtp::is_base64_char(bytes[w.at + w.size]);
      const bool url = word.find_first_of("-_") != std::string_view::npos;
      if (!before && !after && !url && w.size % 4 == 0) continue;
      if (w.plain) {
        found.emplace_back(w.at, "plain");
        users.push_back(w.user);
      }
      if (w.bearer) found.emplace_back(w.at, "bearer in base64");
    }
  }
  return found;
}

std::string kind_of(const std::string& what) {
  if (what.rfind("base64 SASL PLAIN blob", 0) == 0) return "plain";
  if (what == "OAuth bearer token (auth=Bearer) in clear") return "bearer in clear";
  if (what == "base64 XOAUTH2/OAUTHBEARER blob with a bearer token") return "bearer in base64";
  if (what == "the --password-env password, in clear") return "pw in clear";
  if (what == "the --password-env password, base64-encoded") return "pw base64";
  if (what == "the --password-env password, inside a base64 blob") return "pw in base64";
  return "unknown: " + what;
}

std::vector<Found> kinds(const std::vector<CredentialFinding>& found) {
  std::vector<Found> out;
  for (const CredentialFinding& f : found) out.emplace_back(f.offset, kind_of(f.what));
  return out;
}

std::vector<SmugglingShape> reference_shapes(std::string_view d) {
  std::vector<SmugglingShape> out;
  for (std::size_t i = 1; i + 1 < d.size(); ++i) {
    if (d[i] != '.') continue;
    const char before = d[i - 1], after = d[i + 1];
    if ((before != '\r' && before != '\n') || (after != '\r' && after != '\n')) continue;
    const bool crlf_before = before == '\n' && i >= 2 && d[i - 2] == '\r';
    const bool crlf_after = after == '\r' && i + 2 < d.size() && d[i + 2] == '\n';
    if (crlf_before && crlf_after) continue;
    const std::size_t from = crlf_before ? i - 2 : i - 1;
    const std::size_t to = crlf_after ? i + 3 : i + 2;
    std::string e;
    for (char c : d.substr(from, to - from)) e += c == '\r' ? "\\r" : c == '\n' ? "\\n" : ""s + c;
    out.push_back({i, e});
  }
  return out;
}

// ---- Random inputs. ----

// Octets drawn mostly from what matters to the scans: base64 characters, '=', line ends, dots,
// NULs and spaces, in runs.
std::string random_octets(std::mt19937& rng, std::size_t n) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  // Encoded credentials (and a password, "AAAA", the tests set), whole or cut short.
  static const std::string planted[] = {smtp::base64_encode("\0u\0p"s),
                                        smtp::base64_encode("\0bob\0s3cret"s),
                                        smtp::base64_encode("a\0b\0\xe9t\xe9"s),
                                        smtp::base64_encode("xAAAAy"),
                                        smtp::base64_encode("auth=Bearer t\x01"),
                                        "AAAA",
                                        "auth=Bearer x",
                                        smtp::base64_encode("\0bob\0s3cret"s).substr(0, 8)};
  std::string out;
  while (out.size() < n) {
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:  // a run of base64, of a length around the ones that matter (8, quanta)
        for (std::size_t k = rng() % 24; k > 0; --k) out += kAlphabet[rng() % kAlphabet.size()];
        break;
      case 3:
        out += "=";
        break;
      case 4:
        out += rng() % 2 ? "\r\n" : "\n";
        break;
      case 5:
        out += "\r";
        break;
      case 6:
        out += ".";
        break;
      case 7:
        out += rng() % 2 ? " "s : "\0"s;
        break;
      case 8:
        out += planted[rng() % std::size(planted)];
        break;
      default:
        out += static_cast<char>(rng());
        break;
    }
  }
  return out;
}

// Lines a body may hold: text, wrapped base64 (whose lines decode to PLAIN shapes, found only
// when no wrapped line comes before them), and every kind of credential.
std::string random_body(std::mt19937& rng, const std::string& pw, int parts) {
  const std::string plain = smtp::base64_encode("\0bob\0s3cret"s);
  const std::string pieces[] = {
      "AUTH PLAIN " + plain + "\r\n",
      plain + "\r\n",
      "some text with a dot\r\n.\r\n",
      "\r\n",
      wrapped_base64(string_table(600)),
      wrapped_base64(string_table(57)),
      wrapped_base64(string_table(40)),
      smtp::base64_encode("user=a\x01"
                          "auth=Bearer ya29.x\x01\x01") +
          "\r\n",
      smtp::base64_encode("xx" + pw + "yy") + "\r\n",
      smtp::base64_encode(std::string(rng() % 200, 'q')) + "\r\n",
  };
  std::string body;
  for (int n = 0; n < parts; ++n) body += pieces[rng() % std::size(pieces)];
  // The kinds a scan reports at their first place only, planted up to twice: a later copy is
  // no finding, whichever piece it falls in.
  for (unsigned n = rng() % 3; n > 0; --n)
    body.insert(rng() % (body.size() + 1), "pw: " + pw + "\r\n");
  for (unsigned n = rng() % 3; n > 0; --n)
    body.insert(rng() % (body.size() + 1), "\r\n" + smtp::base64_encode(pw) + "\r\n");
  for (unsigned n = rng() % 3; n > 0; --n)
    body.insert(rng() % (body.size() + 1), "auth=Bearer ya29.tok\r\n");
  return body;
}

TEST(CredentialScanEquivalence, TheTableDecoderAgreesWithBoringSsl) {
  std::mt19937 rng(11);
  static const std::string kChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
  std::vector<std::string> texts = {"",         "=",        "==",       "===",      "====",
                                    "Zg==",     "Zh==",     "Zm8=",     "Zm9=",     "Zm9v",
                                    "Z===",     "Zg=a",     "=Zg=",     "Zm9vYg==", "Zm9vYh==",
                                    "Zm9vYmE=", "Zm==Zm9v", "Zm9v\r\n", "Zm9v Zm9v"};
  for (int n = 0; n < 200000; ++n) {
    std::string t;
    const std::size_t len = rng() % 4 == 0 ? rng() % 13 : 4 * (1 + rng() % 5);
    for (std::size_t k = 0; k < len; ++k) {
      // Mostly the alphabet, '=' where padding goes (and elsewhere), now and then other octets.
      const unsigned r = rng() % 100;
      t += r < 3 ? static_cast<char>(rng()) : r < 10 ? '=' : kChars[rng() % 64];
    }
    if (rng() % 3 == 0 && t.size() >= 4) t.replace(t.size() - (1 + rng() % 2), 1, "=");
    texts.push_back(t);
  }
  smtp::Secret buffer(64);
  std::size_t decoded = 0;
  for (const std::string& t : texts) {
    SCOPED_TRACE(t);
    const std::optional<smtp::Secret> expected = smtp::base64_decode_secret(t);
    ASSERT_EQ(decode_base64_for_scan(t, buffer), expected.has_value());
    if (expected) {
      ++decoded;
      ASSERT_EQ(buffer.view(), expected->view());
    } else {
      ASSERT_TRUE(buffer.empty());
    }
  }
  EXPECT_GT(decoded, 10000u);  // both ways are well represented
  // A buffer too small for the decoding: refused, not grown.
  smtp::Secret small(2);
  EXPECT_FALSE(decode_base64_for_scan("Zm9v", small));
}

TEST(CredentialScanEquivalence, OnePassFindsWhatTheSearchForEachLineBeforeFound) {
  std::mt19937 rng(12);
  std::size_t findings = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::string bytes = random_octets(rng, rng() % 300);
    const std::string pw = rng() % 2 ? "" : "AAAA";
    const std::size_t width_before = rng() % 3 == 0 ? 0 : 4 * (rng() % 8);
    const bool message_body = rng() % 2;
    const CredentialScanOptions options(smtp::Secret::copy_of(pw));
    std::vector<std::string> users;
    const auto expected = reference_scan(bytes, pw, width_before, message_body, users);
    const auto found = scan_for_credentials(bytes, options, width_before, message_body);
    ASSERT_EQ(kinds(found), expected) << "width " << width_before << " body " << message_body;
    findings += found.size();
  }
  EXPECT_GT(findings, 1000u);
}

TEST(CredentialScanEquivalence, OnePassFindsWhatTheOldScanFoundInBodies) {
  std::mt19937 rng(13);
  const std::string pw = "hunter2-pw";
  const CredentialScanOptions options(smtp::Secret::copy_of(pw));
  for (int round = 0; round < 300; ++round) {
    const std::string body = random_body(rng, pw, 12);
    for (bool message_body : {false, true}) {
      std::vector<std::string> users;
      const auto expected = reference_scan(body, pw, 0, message_body, users);
      const auto found = scan_for_credentials(body, options, 0, message_body);
      ASSERT_EQ(kinds(found), expected) << body;
      std::vector<std::string> named;
      for (const auto& f : found)
        if (kind_of(f.what) == "plain") named.push_back(f.what);
      ASSERT_EQ(named.size(), users.size());
      for (std::size_t k = 0; k < users.size(); ++k)
        EXPECT_NE(named[k].find("\"" + users[k] + "\""), std::string::npos) << named[k];
    }
  }
}

// The stream, cut anywhere, finds what the old scan found in the whole body: a password, a
// PLAIN blob, a bearer token or a wrapped line split by a piece's end included.
TEST(CredentialScanEquivalence, PiecesCutAnywhereFindWhatTheOldWholeBodyScanFound) {
  std::mt19937 rng(14);
  const std::string pw = "hunter2-pw";
  const CredentialScanOptions options(smtp::Secret::copy_of(pw));
  std::size_t findings = 0;
  for (int round = 0; round < 400; ++round) {
    const std::string body = random_body(rng, pw, 10);
    std::vector<std::string> users;
    std::vector<Found> expected = reference_scan(body, pw, 0, /*message_body=*/true, users);
    std::sort(expected.begin(), expected.end());
    for (int split = 0; split < 5; ++split) {
      // Random cuts, some a single octet apart, some far.
      std::vector<std::size_t> cuts;
      for (std::size_t at = 0; at < body.size();) {
        cuts.push_back(at);
        at += rng() % 3 == 0 ? 1 + rng() % 4 : 1 + rng() % 400;
      }
      cuts.push_back(body.size());
      StreamCredentialScan scan(options);
      std::vector<Found> found;
      for (std::size_t k = 0; k + 1 < cuts.size(); ++k)
        for (const StreamFinding& f :
             scan.add(k, std::string_view(body).substr(cuts[k], cuts[k + 1] - cuts[k])))
          found.emplace_back(cuts[f.piece] + f.offset, kind_of(f.what));
      for (const StreamFinding& f : scan.finish())
        found.emplace_back(cuts[f.piece] + f.offset, kind_of(f.what));
      std::sort(found.begin(), found.end());
      ASSERT_EQ(found, expected) << body;
      findings += found.size();
    }
  }
  EXPECT_GT(findings, 1000u);
}

TEST(CredentialScanEquivalence, SmugglingShapesInPiecesAreThoseOfTheWholeStream) {
  std::mt19937 rng(15);
  static const char kOctets[] = {'.', '.', '\r', '\n', 'x'};
  std::size_t shapes = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string data;
    for (std::size_t n = rng() % 40; n > 0; --n) data += kOctets[rng() % std::size(kOctets)];
    const auto whole = find_smuggling_shapes(data);
    const auto reference = reference_shapes(data);
    ASSERT_EQ(whole.size(), reference.size()) << data;
    for (std::size_t k = 0; k < whole.size(); ++k) {
      ASSERT_EQ(whole[k].offset, reference[k].offset);
      ASSERT_EQ(whole[k].shape, reference[k].shape);
    }
    SmugglingShapeStream stream;
    std::vector<SmugglingShape> found;
    for (std::size_t at = 0; at < data.size();) {
      const std::size_t n = rng() % 4 == 0 ? 0 : 1 + rng() % 8;  // empty pieces too
      stream.add(std::string_view(data).substr(at, n), found);
      at += n;
    }
    stream.finish(found);
    ASSERT_EQ(found.size(), whole.size()) << data;
    for (std::size_t k = 0; k < whole.size(); ++k) {
      ASSERT_EQ(found[k].offset, whole[k].offset) << data;
      ASSERT_EQ(found[k].shape, whole[k].shape) << data;
    }
    shapes += found.size();
    // After finish, the next piece begins another stream.
    std::vector<SmugglingShape> again;
    stream.add(data, again);
    stream.finish(again);
    ASSERT_EQ(again.size(), whole.size());
  }
  EXPECT_GT(shapes, 5000u);
}

TEST(CredentialScanEquivalence, BearerTokensAreFoundWhereTheWholeMarkerSearchFoundThem) {
  std::mt19937 rng(16);
  static const std::string kParts[] = {
      "auth=Bearer ", "auth=Bearer", "=", "a", "auth", "x", " ", "\x01", "<", "\r\n", "Bearer "};
  for (int round = 0; round < 50000; ++round) {
    std::string s;
    for (std::size_t n = rng() % 8; n > 0; --n) s += kParts[rng() % std::size(kParts)];
    // The search as it was: every place the marker stands, in turn, and past the spaces after
    // it (the redactor hides them with the token).
    std::size_t expected_at = std::string::npos;
    for (std::size_t pos = s.find("auth=Bearer "); pos != std::string::npos;
         pos = s.find("auth=Bearer ", pos + 12)) {
      const std::size_t v = s.find_first_not_of(' ', pos + 12);
      if (v != std::string::npos && s[v] != '<' && s[v] != '\x01' && s[v] != '\r' && s[v] != '\n') {
        expected_at = pos;
        break;
      }
    }
    std::size_t at = std::string::npos;
    ASSERT_EQ(smtp::find_bearer_token(s, at), expected_at != std::string::npos) << s;
    if (expected_at != std::string::npos) {
      ASSERT_EQ(at, expected_at) << s;
    }
  }
}

}  // namespace
}  // namespace mailtap::tools
