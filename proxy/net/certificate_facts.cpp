#include "proxy/net/certificate_facts.hpp"

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>

#include "proxy/common/hex.hpp"
#include "proxy/common/terminal_escape.hpp"

namespace mailtap::net {

namespace {
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ExtendedKeyUsageFree {
  void operator()(EXTENDED_KEY_USAGE* e) const { EXTENDED_KEY_USAGE_free(e); }
};
struct Asn1TimeFree {
  void operator()(ASN1_TIME* t) const { ASN1_TIME_free(t); }
};
struct GeneralizedTimeFree {
  void operator()(ASN1_GENERALIZEDTIME* t) const { ASN1_GENERALIZEDTIME_free(t); }
};

// The smallest RSA or DSA key OpenSSL's security level 2 accepts (112 bits of security).
constexpr int min_key_bits = 2048;

struct AltNames {
  bool present = false;          // the certificate has a subjectAltName extension
  std::vector<std::string> all;  // its DNS and IP address entries, as text, in order
  std::vector<std::string> dns;  // the DNS entries alone
  std::vector<std::string> ip;   // the IP address entries alone
};

// An iPAddress entry as people write it: 127.0.0.1, ::1 (RFC 5952, what inet_ntop gives);
// one of neither length, which no valid certificate holds, in hex.
std::string address_to_string(const unsigned char* p, std::size_t len) {
  char text[INET6_ADDRSTRLEN] = {};
  const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
  if (family != AF_UNSPEC && inet_ntop(family, p, text, sizeof text) != nullptr) return text;
  return "IP address " + to_hex(p, len);
}

AltNames alt_names(X509* cert) {
  AltNames out;
  if (!cert) return out;
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  out.present = true;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      // Escaped: the name is quoted in a 421, the log and probe's report, and a certificate
      // (even one nobody trusts, under probe --insecure) may hold any bytes.
      out.dns.push_back(
          escape_line(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       static_cast<std::size_t>(ASN1_STRING_length(s)))));
      out.all.push_back(out.dns.back());
    } else if (gn->type == GEN_IPADD) {
      const ASN1_STRING* s = gn->d.iPAddress;
      const unsigned char* p = ASN1_STRING_get0_data(s);
      out.ip.push_back(address_to_string(p, static_cast<std::size_t>(ASN1_STRING_length(s))));
      out.all.push_back(out.ip.back());
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// `s` in lower case (DNS names compare without case).
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A wildcard entry that would cover `name` but for having a single label after it ("*.test"
// for foo.test), which no client honours (RFC 6125 6.4.3; CA/Browser Forum baseline); "" if
// none. Read as a plain mismatch, "issued for *.test, not for foo.test" makes no sense.
std::string too_broad_wildcard(const std::vector<std::string>& dns_names, const std::string& name) {
  const std::string host = lower(name);
  const std::size_t dot = host.find('.');
  if (dot == std::string::npos || dot == 0) return {};
  const std::string parent = host.substr(dot + 1);
  if (parent.empty() || parent.find('.') != std::string::npos) return {};
  for (const std::string& n : dns_names)
    if (lower(n) == "*." + parent) return n;
  return {};
}

// A wildcard entry in part of its first label ("m*.example.test", "*x.example.test") in the
// domain of `name`, which mailtap does not match (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, as
// browsers); "" if none. Read as a plain mismatch, "issued for m*.example.test, not for
// mx.example.test" reads as if it should have matched.
std::string partial_wildcard(const std::vector<std::string>& dns_names, const std::string& name) {
  const std::string host = lower(name);
  const std::size_t dot = host.find('.');
  if (dot == std::string::npos || dot == 0) return {};
  for (const std::string& n : dns_names) {
    const std::string entry = lower(n);
    const std::size_t entry_dot = entry.find('.');
    if (entry_dot == std::string::npos) continue;
    const std::string label = entry.substr(0, entry_dot);
    if (label == "*" || label.find('*') == std::string::npos) continue;
    if (entry.substr(entry_dot) == host.substr(dot)) return n;
  }
  return {};
}

// The names a certificate is issued for, against the one expected. Only its subjectAltName
// counts: a subject CN is never taken for a host name (RFC 6125 6.4.4), so a certificate
// without one is issued for no name at all.
std::string explain_name_mismatch(const VerifyFailure& f, const std::string& name) {
  if (!f.has_alt_names)
    return "certificate is issued for no name, not for " + name +
           ": it has no subjectAltName, and its subject (" + f.subject +
           ") does not count as one (RFC 6125); its issuer must name " + name +
           " in a subjectAltName, or use --insecure";
  if (f.names.empty())
    return "certificate is issued for no name, not for " + name +
           ": its subjectAltName holds no DNS name or IP address; use --insecure";
  std::vector<std::string> names = f.names;
  // An address is matched against IP address entries only; "127.0.0.1" written as a DNS
  // entry would otherwise read as the very name that failed. (An entry spelling the address
  // that failed can only be a DNS one.)
  const bool address_as_dns =
      f.error == X509_V_ERR_IP_ADDRESS_MISMATCH &&
      std::find(f.dns_names.begin(), f.dns_names.end(), name) != f.dns_names.end();
  for (std::string& n : names)
    if (address_as_dns && n == name) n += " (as a DNS name, not an IP address entry)";
  const std::string issued = "certificate is issued for " + join(names) + ", not for " + name;
  if (const std::string wildcard = too_broad_wildcard(f.dns_names, name); !wildcard.empty())
    return issued + ": the wildcard " + wildcard +
           " is too broad to be accepted (a wildcard needs at least two labels after it, RFC "
           "6125 6.4.3); its issuer must name " +
           name + ", or use --insecure";
  if (const std::string wildcard = partial_wildcard(f.dns_names, name); !wildcard.empty())
    return issued + ": " + wildcard +
           " is a partial-label wildcard, which mailtap does not accept (only a whole first "
           "label, as in *" +
           name.substr(name.find('.')) +
           "; RFC 6125 6.4.3 lets clients refuse them, and browsers do); its issuer must name " +
           name + ", or use --insecure";
  return issued + "; use --tls-name to expect another name, or --insecure";
}
}  // namespace

std::string name_to_string(const X509_NAME* name) {
  if (!name) return {};
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string time_to_iso8601(const ASN1_TIME* t) {
  if (!t) return {};
  std::unique_ptr<ASN1_GENERALIZEDTIME, GeneralizedTimeFree> g(
      ASN1_TIME_to_generalizedtime(t, nullptr));
  if (!g) return {};
  std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g.get())),
                static_cast<std::size_t>(ASN1_STRING_length(g.get())));
  if (s.size() < 15) return s;  // YYYYMMDDHHMMSSZ
  return s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2) + "T" + s.substr(8, 2) + ":" +
         s.substr(10, 2) + ":" + s.substr(12, 2) + "Z";
}

std::vector<std::string> subject_alt_names(X509* cert) {
  return alt_names(cert).all;
}

std::vector<std::string> subject_alt_dns_names(X509* cert) {
  return alt_names(cert).dns;
}

std::vector<std::string> subject_alt_addresses(X509* cert) {
  return alt_names(cert).ip;
}

std::vector<std::string> subject_alt_names(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  return subject_alt_names(cert.get());
}

namespace {
std::string now_iso8601() {
  std::unique_ptr<ASN1_TIME, Asn1TimeFree> now(ASN1_TIME_set(nullptr, std::time(nullptr)));
  return time_to_iso8601(now.get());
}

// Its extendedKeyUsage entries by their short names ("clientAuth"), dotted OIDs for others.
std::vector<std::string> extended_key_usages(X509* cert) {
  std::vector<std::string> out;
  std::unique_ptr<EXTENDED_KEY_USAGE, ExtendedKeyUsageFree> ekus(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  if (!ekus) return out;
  for (size_t i = 0; i < sk_ASN1_OBJECT_num(ekus.get()); ++i) {
    const ASN1_OBJECT* oid = sk_ASN1_OBJECT_value(ekus.get(), i);
    const int nid = OBJ_obj2nid(oid);
    char dotted[80] = {};
    OBJ_obj2txt(dotted, sizeof dotted, oid, 1);
    out.emplace_back(nid != NID_undef ? OBJ_nid2sn(nid) : dotted);
  }
  return out;
}

// A certificate not issued for TLS servers (X509_V_ERR_INVALID_PURPOSE).
std::string explain_purpose(const VerifyFailure& f, const std::string& which) {
  const std::string eku =
      f.purposes.empty() ? std::string("its key usage does not allow it")
                         : "its extendedKeyUsage is " + join(f.purposes) + ", without serverAuth";
  return which + " is not issued for TLS servers (" + eku +
         "): its issuer must replace it, or use --insecure";
}

// Whether the trust store `ctx` verifies against holds `cert` itself.
bool held_by_trust_store(X509_STORE_CTX* ctx, X509* cert) {
  STACK_OF(X509)* held = X509_STORE_get1_certs(ctx, X509_get_subject_name(cert));
  if (held == nullptr) return false;
  bool found = false;
  for (size_t i = 0; i < sk_X509_num(held); ++i)
    found = found || X509_cmp(sk_X509_value(held, i), cert) == 0;
  sk_X509_pop_free(held, X509_free);
  return found;
}

// Why `cert`, named as another's issuer, cannot have issued it: "CA:FALSE", "its keyUsage lacks
// keyCertSign", or "" when it could (a CA by that name, but another key).
std::string flaw_as_issuer(X509* cert) {
  if (X509_check_ca(cert) == 0) return "CA:FALSE";
  if ((X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) == 0) return "its keyUsage lacks keyCertSign";
  return {};
}

// Whether the server sent (in the chain `ctx` verifies) a certificate by `cert`'s issuer's name
// other than `cert` itself: the first such one, or null.
X509* sent_by_issuer_name(X509_STORE_CTX* ctx, X509* cert) {
  STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(ctx);
  if (sent == nullptr) return nullptr;
  for (size_t i = 0; i < sk_X509_num(sent); ++i) {
    X509* candidate = sk_X509_value(sent, i);
    if (X509_cmp(candidate, cert) != 0 &&
        X509_NAME_cmp(X509_get_subject_name(candidate), X509_get_issuer_name(cert)) == 0)
      return candidate;
  }
  return nullptr;
}

// The OID of its first critical extension BoringSSL does not handle, dotted; "" if none.
std::string unhandled_critical_extension(X509* cert) {
  for (int i = 0; i < X509_get_ext_count(cert); ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert, i);
    if (X509_EXTENSION_get_critical(ext) == 0 || X509_supported_extension(ext) != 0) continue;
    char dotted[80] = {};
    OBJ_obj2txt(dotted, sizeof dotted, X509_EXTENSION_get_object(ext), 1);
    return dotted;
  }
  return {};
}

// An issuer the server sent, but one that cannot have issued the certificate: not a CA at all
// (`flaw`), or a CA by that name with another key, most often a stale intermediate left after its
// CA re-keyed. Either way the server's chain is at fault, and no --ca-file mends it.
std::string explain_unfit_issuer(const VerifyFailure& f, const std::string& which,
                                 const std::string& name) {
  if (!f.issuer_sent_flaw.empty())
    return which + " is issued by " + f.issuer + ", which " + name +
           " sent, but that certificate is not a CA (" + f.issuer_sent_flaw +
           ") and cannot issue certificates: the server's certificate or chain is wrong, and its "
           "administrator must install one issued by a CA (with that CA's intermediates), or use "
           "--insecure";
  return which + " is issued by " + f.issuer + "; " + name +
         " sent a CA certificate by that name, but not the one that issued it (another key: a "
         "stale intermediate, after its CA re-keyed?): the server's administrator must send the "
         "intermediate its certificate was issued from, or use --insecure";
}

// An issuer neither sent nor trusted. Where the chain stops says whose fault it is: at a CA the
// trust store holds, that CA is an intermediate (mailtap, like OpenSSL without -partial_chain,
// trusts a chain only up to a root), put in --ca-file instead of its root; at the server's own
// certificate, most often the server did not send the intermediate it was issued from (the
// commonest chain fault: the server's, which a --ca-file can only work around here), else it is
// a private root not given with --ca-file.
std::string explain_missing_issuer(const VerifyFailure& f, const std::string& name,
                                   const std::string& trust_source) {
  // The server's own certificate: BoringSSL, without partial chains, takes a certificate in the
  // trust store as the end of a chain only if it is self-signed; this one is neither a root nor
  // a CA, so it pins nothing.
  if (f.trusted && !f.self_signed && !f.is_ca)
    return "the chain for " + name + " reaches " + f.subject + ", which " + trust_source +
           " holds, but that is the server's own certificate, not a CA (CA:FALSE): mailtap "
           "trusts a chain only up to a root CA, and takes a server's certificate as one only "
           "when it is self-signed (and then only the very one the server sends); put the root "
           "CA it comes from (its issuer is " +
           f.issuer + ") in --ca-file instead, or use --insecure";
  if (f.trusted && !f.self_signed)
    return "the chain for " + name + " reaches " + f.subject + ", which " + trust_source +
           " holds, but that is an intermediate CA, not a root: mailtap trusts a chain only up "
           "to a root CA; put its issuer (" +
           f.issuer + ") in --ca-file too";
  if (f.issuer_sent)
    return explain_unfit_issuer(
        f,
        f.depth == 0 ? "certificate for " + name
                     : "a CA certificate in the chain for " + name + " (" + f.subject + ")",
        name);
  if (f.depth == 0)
    return "certificate for " + name + " is issued by " + f.issuer + ", which " + name +
           " did not send and " + trust_source +
           " does not hold: if that is an intermediate CA (as public CAs issue from), the "
           "server's chain is at fault and must be fixed there (it must send the intermediate "
           "after its certificate), which a --ca-file holding that intermediate and its root "
           "only works around here; if it is your own root CA, use --ca-file with it";
  return "the chain " + name + " sent ends at " + f.subject + ", issued by an untrusted CA (" +
         f.issuer + "), not in " + trust_source +
         "; use --ca-file with that CA if you trust it, "
         "or --insecure";
}

// A certificate out of its dates: the time it was judged by, and who can put it right.
std::string explain_dates(const VerifyFailure& f, const std::string& which) {
  const std::string here = f.checked_at.empty() ? "" : " (it is " + f.checked_at + " here)";
  if (f.error == X509_V_ERR_CERT_HAS_EXPIRED)
    return which + " expired on " + f.not_after + here +
           ": the server's administrator must renew it (unless this machine's clock is ahead), "
           "or use --insecure";
  return which + " is not valid before " + f.not_before + here +
         ": if this machine's clock is behind, set it; else the server's administrator must "
         "replace it, or use --insecure";
}
}  // namespace

VerifyFailure capture_verify_failure(X509_STORE_CTX* ctx) {
  VerifyFailure f;
  f.checked_at = now_iso8601();
  f.error = X509_STORE_CTX_get_error(ctx);
  const bool purpose = f.error == X509_V_ERR_INVALID_PURPOSE;
  f.depth = X509_STORE_CTX_get_error_depth(ctx);
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  if (!cert) cert = X509_STORE_CTX_get0_cert(ctx);
  if (cert) {
    f.subject = name_to_string(X509_get_subject_name(cert));
    f.issuer = name_to_string(X509_get_issuer_name(cert));
    f.not_before = time_to_iso8601(X509_get0_notBefore(cert));
    f.not_after = time_to_iso8601(X509_get0_notAfter(cert));
    AltNames names = alt_names(cert);
    f.names = std::move(names.all);
    f.dns_names = std::move(names.dns);
    f.has_alt_names = names.present;
    if (purpose) f.purposes = extended_key_usages(cert);
    f.self_signed = X509_check_issued(cert, cert) == X509_V_OK;
    f.trusted = held_by_trust_store(ctx, cert);
    f.is_ca = X509_check_ca(cert) != 0;
    if (f.error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
        f.error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
        f.error == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
      if (X509* issuer = sent_by_issuer_name(ctx, cert)) {
        f.issuer_sent = true;
        f.issuer_sent_flaw = flaw_as_issuer(issuer);
      }
    if (f.error == X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION)
      f.critical_extension = unhandled_critical_extension(cert);
  }
  return f;
}

std::string weakness_of(X509_STORE_CTX* ctx) {
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  if (cert == nullptr) return {};
  std::unique_ptr<EVP_PKEY, EvpPkeyFree> key(X509_get_pubkey(cert));
  if (key) {
    const int type = EVP_PKEY_id(key.get());
    const int bits = EVP_PKEY_bits(key.get());
    if ((type == EVP_PKEY_RSA || type == EVP_PKEY_DSA) && bits < min_key_bits)
      return "has a " + std::to_string(bits) + "-bit " + (type == EVP_PKEY_RSA ? "RSA" : "DSA") +
             " key, under the " + std::to_string(min_key_bits) +
             " bits that current clients require";
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  const int depth = X509_STORE_CTX_get_error_depth(ctx);
  const bool anchor = chain != nullptr && depth + 1 == static_cast<int>(sk_X509_num(chain));
  if (anchor && X509_check_issued(cert, cert) == X509_V_OK) return {};
  int digest = NID_undef;
  int algorithm = NID_undef;
  if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &digest, &algorithm) == 0) return {};
  switch (digest) {
    case NID_sha1:
      return "is signed with SHA-1, which current clients refuse (collisions are practical)";
    case NID_md5:
    case NID_md4:
      return std::string("is signed with ") + OBJ_nid2sn(digest) + ", which current clients refuse";
    default:
      return {};
  }
}

std::string explain_verify_failure(const VerifyFailure& f, const std::string& name,
                                   const std::string& trust_source) {
  const std::string which =
      f.depth == 0 ? "certificate for " + name
                   : "a CA certificate in the chain for " + name + " (" + f.subject + ")";
  if (!f.weakness.empty())
    return which + " " + f.weakness + "; its issuer must replace it, or use --insecure";
  // The certificate by subject and depth, for the faults in one certificate's own content.
  const std::string named = f.depth == 0
                                ? "the certificate for " + name + " (" + f.subject + ")"
                                : "the CA certificate in the chain for " + name + " (" + f.subject +
                                      ", depth " + std::to_string(f.depth) + ")";
  switch (f.error) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      // Where it would have to be to be trusted, named: whether or not --ca-file was given.
      return "certificate for " + name + " is self-signed, and " + trust_source +
             " does not hold it: if you trust it, use --ca-file with that very certificate, or "
             "--insecure";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "the signature on " + named + " does not verify with the key of its issuer (" +
             f.issuer + ", as " + name + " sent it or " + trust_source +
             " holds it): most often a stale intermediate, after its CA re-keyed; the server's "
             "administrator must send the intermediate its certificate was issued from, or use "
             "--insecure";
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
      return named + " has an extension marked critical that mailtap's TLS library does not know" +
             (f.critical_extension.empty() ? std::string() : " (" + f.critical_extension + ")") +
             ", so it may not be trusted (RFC 5280 4.2): its issuer must replace it, or use "
             "--insecure";
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
      return named + " holds a name that a CA above it may not issue for (" +
             X509_verify_cert_error_string(f.error) +
             " of its name constraints, RFC 5280 4.2.1.10): its issuer must replace it, or the "
             "server use a certificate from a CA that may issue for " +
             name + "; or use --insecure";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return explain_missing_issuer(f, name, trust_source);
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "certificate for " + name + " is issued by an untrusted CA (" + f.issuer +
             "), not in " + trust_source + "; use --ca-file or --insecure";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return explain_dates(f, which);
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return explain_name_mismatch(f, name);
    case X509_V_ERR_INVALID_PURPOSE:
      return explain_purpose(f, which);
    default:
      return named + " failed verification: " + X509_verify_cert_error_string(f.error) +
             "; its issuer or the server's administrator must put it right, or use --insecure";
  }
}

std::string explain_key_usage_refusal(uint32_t packed_error, const std::string& name) {
  if (ERR_GET_LIB(packed_error) != ERR_LIB_SSL ||
      ERR_GET_REASON(packed_error) != SSL_R_KEY_USAGE_BIT_INCORRECT)
    return {};
  return "certificate for " + name +
         " may not be used for signing (its keyUsage lacks digitalSignature), which its key must "
         "do in this handshake: its issuer must replace it (--insecure does not help: mailtap's "
         "TLS library refuses such a certificate even then)";
}

smtp::Certificate describe_certificate(X509* cert) {
  smtp::Certificate c;
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len > 0) {
    c.der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<std::size_t>(len), digest);
    c.sha256_hex = to_hex(digest, sizeof digest);
    OPENSSL_free(der);
  }
  c.subject = name_to_string(X509_get_subject_name(cert));
  c.issuer = name_to_string(X509_get_issuer_name(cert));
  c.not_before = time_to_iso8601(X509_get0_notBefore(cert));
  c.not_after = time_to_iso8601(X509_get0_notAfter(cert));
  return c;
}

std::vector<smtp::Certificate> peer_chain(SSL* ssl) {
  std::vector<smtp::Certificate> out;
  STACK_OF(X509)* chain = SSL_get_peer_full_cert_chain(ssl);
  if (!chain) return out;
  for (size_t i = 0; i < sk_X509_num(chain); ++i)
    out.push_back(describe_certificate(sk_X509_value(chain, i)));
  return out;
}

}  // namespace mailtap::net
