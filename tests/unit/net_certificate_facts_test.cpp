// The reasons a 421 gives for a certificate issued for other names than the one expected.
#include "proxy/net/certificate_facts.hpp"

#include <gtest/gtest.h>

namespace mailtap::net {
namespace {

VerifyFailure mismatch(int error, std::vector<std::string> names,
                       std::vector<std::string> dns_names, bool has_alt_names = true) {
  VerifyFailure f;
  f.error = error;
  f.subject = "CN=localhost";
  f.names = std::move(names);
  f.dns_names = std::move(dns_names);
  f.has_alt_names = has_alt_names;
  return f;
}

TEST(CertificateFacts, NamesTheNamesTheCertificateIsIssuedFor) {
  EXPECT_EQ(explain_verify_failure(mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {"other.example.test"},
                                            {"other.example.test"}),
                                   "localhost", "ca.pem"),
            "certificate is issued for other.example.test, not for localhost; use --tls-name to "
            "expect another name, or --insecure");
}

TEST(CertificateFacts, ASubjectCnIsNoName) {
  EXPECT_EQ(explain_verify_failure(mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {}, {}, false),
                                   "localhost", "ca.pem"),
            "certificate is issued for no name, not for localhost: it has no subjectAltName, and "
            "its subject (CN=localhost) does not count as one (RFC 6125); its issuer must name "
            "localhost in a subjectAltName, or use --insecure");
  EXPECT_EQ(explain_verify_failure(mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {}, {}, true),
                                   "localhost", "ca.pem"),
            "certificate is issued for no name, not for localhost: its subjectAltName holds no DNS "
            "name or IP address; use --insecure");
}

TEST(CertificateFacts, AnAddressWrittenAsADnsNameIsToldApart) {
  EXPECT_EQ(explain_verify_failure(
                mismatch(X509_V_ERR_IP_ADDRESS_MISMATCH, {"127.0.0.1", "mx.example.test"},
                         {"127.0.0.1", "mx.example.test"}),
                "127.0.0.1", "ca.pem"),
            "certificate is issued for 127.0.0.1 (as a DNS name, not an IP address entry), "
            "mx.example.test, not for 127.0.0.1; use --tls-name to expect another name, or "
            "--insecure");
  // An IP address entry for another address needs no such note.
  EXPECT_EQ(explain_verify_failure(mismatch(X509_V_ERR_IP_ADDRESS_MISMATCH, {"192.0.2.1"}, {}),
                                   "127.0.0.1", "ca.pem"),
            "certificate is issued for 192.0.2.1, not for 127.0.0.1; use --tls-name to expect "
            "another name, or --insecure");
}

TEST(CertificateFacts, AWildcardOverOneLabelIsSaidToBeTooBroad) {
  EXPECT_EQ(explain_verify_failure(mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {"*.TEST"}, {"*.TEST"}),
                                   "foo.test", "ca.pem"),
            "certificate is issued for *.TEST, not for foo.test: the wildcard *.TEST is too broad "
            "to be accepted (a wildcard needs at least two labels after it, RFC 6125 6.4.3); its "
            "issuer must name foo.test, or use --insecure");
  // One that would not cover the name anyway is a plain mismatch.
  EXPECT_EQ(explain_verify_failure(mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {"*.test"}, {"*.test"}),
                                   "a.b.test", "ca.pem"),
            "certificate is issued for *.test, not for a.b.test; use --tls-name to expect another "
            "name, or --insecure");
}

TEST(CertificateFacts, DatesAreJudgedByThisMachinesClockAndSaySo) {
  VerifyFailure f;
  f.error = X509_V_ERR_CERT_NOT_YET_VALID;
  f.not_before = "2030-01-01T00:00:00Z";
  f.checked_at = "2026-12-06T10:20:00Z";
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "certificate for mx.example.test is not valid before 2030-01-01T00:00:00Z (it is "
            "2026-12-06T10:20:00Z here): if this machine's clock is behind, set it; else the "
            "server's administrator must replace it, or use --insecure");
}

TEST(CertificateFacts, AMissingIssuerSaysWhereTheChainStops) {
  VerifyFailure f;
  f.error = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
  f.depth = 1;
  f.subject = "CN=intermediate";
  f.issuer = "CN=root";
  f.trusted = true;  // --ca-file holds the intermediate
  f.is_ca = true;
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ica.pem"),
            "the chain for mx.example.test reaches CN=intermediate, which ica.pem holds, but that "
            "is an intermediate CA, not a root: mailtap trusts a chain only up to a root CA; put "
            "its issuer (CN=root) in --ca-file too");
  f.trusted = false;  // the server sent it, and its root is not trusted
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "the chain mx.example.test sent ends at CN=intermediate, issued by an untrusted CA "
            "(CN=root), not in ca.pem; use --ca-file with that CA if you trust it, or --insecure");
}

TEST(CertificateFacts, AnIssuerSentThatCannotBeItIsNotSaidToBeMissing) {
  VerifyFailure f;
  f.error = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
  f.subject = "CN=mx.example.test";
  f.issuer = "CN=not a CA";
  f.issuer_sent = true;
  f.issuer_sent_flaw = "CA:FALSE";
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "certificate for mx.example.test is issued by CN=not a CA, which mx.example.test "
            "sent, but that certificate is not a CA (CA:FALSE) and cannot issue certificates: "
            "the server's certificate or chain is wrong, and its administrator must install one "
            "issued by a CA (with that CA's intermediates), or use --insecure");
  f.issuer = "CN=intermediate";
  f.issuer_sent_flaw = "";  // a CA by that name, with another key
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "certificate for mx.example.test is issued by CN=intermediate; mx.example.test sent "
            "a CA certificate by that name, but not the one that issued it (another key: a stale "
            "intermediate, after its CA re-keyed?): the server's administrator must send the "
            "intermediate its certificate was issued from, or use --insecure");
}

TEST(CertificateFacts, TheServersOwnCertificateInCaFileIsNoIntermediate) {
  VerifyFailure f;
  f.error = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
  f.subject = "CN=mx.example.test";
  f.issuer = "CN=root";
  f.trusted = true;  // --ca-file holds the server's certificate itself
  f.is_ca = false;
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "mx.pem"),
            "the chain for mx.example.test reaches CN=mx.example.test, which mx.pem holds, but "
            "that is the server's own certificate, not a CA (CA:FALSE): mailtap trusts a chain "
            "only up to a root CA, and takes a server's certificate as one only when it is "
            "self-signed (and then only the very one the server sends); put the root CA it comes "
            "from (its issuer is CN=root) in --ca-file instead, or use --insecure");
}

TEST(CertificateFacts, FaultsInACertificateNameItAndTheNextStep) {
  VerifyFailure f;
  f.error = X509_V_ERR_CERT_SIGNATURE_FAILURE;
  f.subject = "CN=mx.example.test";
  f.issuer = "CN=intermediate";
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "the signature on the certificate for mx.example.test (CN=mx.example.test) does not "
            "verify with the key of its issuer (CN=intermediate, as mx.example.test sent it or "
            "ca.pem holds it): most often a stale intermediate, after its CA re-keyed; the "
            "server's administrator must send the intermediate its certificate was issued from, "
            "or use --insecure");
  f.error = X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION;
  f.depth = 1;
  f.subject = "CN=intermediate";
  f.critical_extension = "1.2.3.4";
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "the CA certificate in the chain for mx.example.test (CN=intermediate, depth 1) has "
            "an extension marked critical that mailtap's TLS library does not know (1.2.3.4), so "
            "it may not be trusted (RFC 5280 4.2): its issuer must replace it, or use --insecure");
  f.error = X509_V_ERR_PERMITTED_VIOLATION;
  f.depth = 0;
  f.subject = "CN=mx.example.test";
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "the certificate for mx.example.test (CN=mx.example.test) holds a name that a CA "
            "above it may not issue for (permitted subtree violation of its name constraints, "
            "RFC 5280 4.2.1.10): its issuer must replace it, or the server use a certificate "
            "from a CA that may issue for mx.example.test; or use --insecure");
}

TEST(CertificateFacts, ASelfSignedCertificateIsNotInTheTrustSourceNamed) {
  VerifyFailure f;
  f.error = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
  EXPECT_EQ(explain_verify_failure(f, "mx.example.test", "ca.pem"),
            "certificate for mx.example.test is self-signed, and ca.pem does not hold it: if you "
            "trust it, use --ca-file with that very certificate, or --insecure");
}

TEST(CertificateFacts, APartialLabelWildcardIsSaidNotToBeAccepted) {
  EXPECT_EQ(explain_verify_failure(
                mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {"M*.example.test"}, {"M*.example.test"}),
                "mx.example.test", "ca.pem"),
            "certificate is issued for M*.example.test, not for mx.example.test: M*.example.test "
            "is a partial-label wildcard, which mailtap does not accept (only a whole first "
            "label, as in *.example.test; RFC 6125 6.4.3 lets clients refuse them, and browsers "
            "do); its issuer must name mx.example.test, or use --insecure");
  // One in another domain is a plain mismatch.
  EXPECT_EQ(explain_verify_failure(
                mismatch(X509_V_ERR_HOSTNAME_MISMATCH, {"m*.other.test"}, {"m*.other.test"}),
                "mx.example.test", "ca.pem"),
            "certificate is issued for m*.other.test, not for mx.example.test; use --tls-name to "
            "expect another name, or --insecure");
}

}  // namespace
}  // namespace mailtap::net
