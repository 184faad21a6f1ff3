// Facts about the upstream's certificates and TLS parameters, for the record and for the
// human reasons in mailtap's 421 replies.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "proxy/smtp/upstream_tls.hpp"

namespace mailtap::net {

// The first verification failure seen during a handshake, captured by the verify callback
// because the handshake error itself only says "certificate verify failed".
struct VerifyFailure {
  int error = 0;  // X509_V_ERR_*, 0 if none
  int depth = 0;
  std::string subject;
  std::string issuer;
  std::string not_before;
  std::string not_after;
  std::vector<std::string> names;      // subjectAltName DNS/IP entries of the failing certificate
  std::vector<std::string> dns_names;  // the DNS entries alone ("127.0.0.1" may be one)
  bool has_alt_names = false;          // it has a subjectAltName extension at all
  // Set when the chain verified but this certificate is too weak to trust (weakness_of).
  std::string weakness;
  // The time its dates were judged by (this machine's clock), ISO 8601; named in a refusal
  // for its dates, since a clock behind is the likeliest cause of "not valid before".
  std::string checked_at;
  // Its extendedKeyUsage entries ("clientAuth"), for a refusal of its purpose.
  std::vector<std::string> purposes;
  // For an issuer not found: whether the trust store (--ca-file) holds this certificate, which
  // then is a CA that is not a root, and whether it is self-signed.
  bool trusted = false;
  bool self_signed = false;
  // Whether it is a CA at all (basicConstraints CA:TRUE): a server's own certificate in
  // --ca-file is no intermediate CA.
  bool is_ca = false;
  // For an issuer not found: whether the server sent a certificate by the issuer's name after
  // all, and why that one could not be the issuer: "CA:FALSE" or "its keyUsage lacks
  // keyCertSign" (not a CA), or "" (a CA, but not the one that signed it: another key).
  bool issuer_sent = false;
  std::string issuer_sent_flaw;
  // For an unhandled critical extension: the first such extension's OID, dotted.
  std::string critical_extension;
};

VerifyFailure capture_verify_failure(X509_STORE_CTX* ctx);

// Why the certificate the verify callback is at (`ctx`'s current one) is too weak to trust
// though its chain verified, as OpenSSL at its default security level 2 (curl, swaks, Python)
// refuses it: an RSA or DSA key under 2048 bits ("has a 1024-bit RSA key"), or a signature
// with SHA-1 or MD5 ("is signed with SHA-1"), but for the self-signature of the trust anchor
// at the top of the chain, which nothing relies on. Empty when it is strong enough.
std::string weakness_of(X509_STORE_CTX* ctx);

// "certificate for mx.example.com is self-signed, and ca.pem does not hold it: if you trust
// it, use --ca-file with that very certificate, or --insecure"
std::string explain_verify_failure(const VerifyFailure& f, const std::string& expected_name,
                                   const std::string& trust_source);

// The handshake error `packed_error` (ERR_peek_error's form) in words when BoringSSL ended
// the handshake because the server's certificate may not sign (keyUsage without
// digitalSignature, for a key that must: KEY_USAGE_BIT_INCORRECT), which it checks apart
// from verification and under --insecure too; "" for any other error.
std::string explain_key_usage_refusal(uint32_t packed_error, const std::string& name);

std::string name_to_string(const X509_NAME* name);
std::string time_to_iso8601(const ASN1_TIME* t);
// Its subjectAltName DNS entries (control bytes escaped) and IP addresses, in order.
std::vector<std::string> subject_alt_names(X509* cert);
// Its subjectAltName DNS entries alone, and its IP address entries alone ("127.0.0.1", "::1").
std::vector<std::string> subject_alt_dns_names(X509* cert);
std::vector<std::string> subject_alt_addresses(X509* cert);
// The same for a certificate as recorded (smtp::Certificate::der); empty if unparsable.
std::vector<std::string> subject_alt_names(std::string_view der);
smtp::Certificate describe_certificate(X509* cert);
std::vector<smtp::Certificate> peer_chain(SSL* ssl);

}  // namespace mailtap::net
