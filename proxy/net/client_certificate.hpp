// The certificate mailtap presents to an upstream server that asks for one (mutual TLS):
// --client-cert FILE (PEM: the certificate, then any intermediates, all of them sent) and
// --client-key FILE (its PEM key; left out when the key is in FILE), as `openssl s_client -cert
// -key`, swaks --tls-cert/--tls-key and msmtp's tls_cert_file/tls_key_file take them. Read and
// checked once, at start, so that every mistake is a configuration error in words (exit status
// 2) before anything listens or connects, never a TLS library's error at the first session.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "proxy/smtp/upstream_tls.hpp"

namespace mailtap::net {

struct ClientCertificate {
  std::string cert_path;
  std::string key_path;  // the same as cert_path when the key is in that file
  // The leaf's facts as the record keeps a server's (sha256_hex, subject, issuer, validity).
  smtp::Certificate leaf_facts;
  std::size_t intermediates = 0;  // certificates after the leaf in cert_path, all sent
  // "it expired on 2020-02-01T00:00:00Z", "it is not valid before ...", or "": a certificate out
  // of its validity is still presented (warned at start), since some servers accept it by its
  // pinned fingerprint (Postfix's relay_clientcerts); one that refuses it is explained with this.
  std::string validity_problem;

  bssl::UniquePtr<X509> leaf;
  std::vector<bssl::UniquePtr<X509>> chain;  // the intermediates, in the file's order
  bssl::UniquePtr<EVP_PKEY> key;

  // "/path/client.pem (CN=relay client,O=Example)": which certificate, for messages.
  std::string describe() const;
};

// Reads and checks the certificate file and the key (from `key_path`, or from `cert_path` when
// it is empty): a file that cannot be read, is not PEM or holds no certificate; no key, an
// encrypted one (mailtap asks for no passphrase: how to write a copy without one is said), or
// one that is not the certificate's; a file holding a key that group or others may access or
// another user owns (the rule of --local-key). Key bytes are read into a wiped buffer only.
// nullptr with the reason, naming the option and the file, in `error`.
std::shared_ptr<const ClientCertificate> load_client_certificate(const std::string& cert_path,
                                                                 const std::string& key_path,
                                                                 std::string& error);

// What load_client_certificate would refuse that can be told without reading a key
// (--print-config): a file that is missing, unreadable or no regular file, and a --client-key
// that group or others may access or another user owns. "" when none of that is wrong.
std::string client_certificate_refusal(const std::string& cert_path, const std::string& key_path);

// Has TLS clients made from `ctx` present `certificate` (with its intermediates) to servers
// that ask for a client certificate. False, with `error`, if BoringSSL refuses it.
bool use_client_certificate(SSL_CTX* ctx, const ClientCertificate& certificate, std::string& error);

}  // namespace mailtap::net
