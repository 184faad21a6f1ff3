#include "proxy/net/client_certificate.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <string_view>
#include <utility>

#include "proxy/common/file_descriptor.hpp"
#include "proxy/net/certificate_facts.hpp"
#include "proxy/net/private_key_file.hpp"
#include "proxy/net/ssl_error.hpp"

namespace mailtap::net {

namespace {

// A certificate with its intermediates is a few KiB; a key file a few hundred octets.
constexpr std::size_t kMaxFile = std::size_t{1} << 20;

std::string cert_option(const std::string& path) {
  return "--client-cert " + path;
}
std::string key_option(const std::string& path) {
  return "--client-key " + path;
}

// Why `path` is no file to read, from stat(2), for --print-config, which opens nothing.
std::string kind_refusal(const std::string& path, const std::string& what, struct stat& st) {
  if (::stat(path.c_str(), &st) != 0) return what + ": " + std::strerror(errno);
  return file_kind_refusal(st, what);
}

// A PEM private key's BEGIN line, whatever its kind (PKCS#8, RSA, EC, encrypted).
bool holds_private_key(std::string_view pem) {
  return pem.find("PRIVATE KEY-----") != std::string_view::npos;
}

// A passphrase protects the key: PKCS#8's own label, or the legacy OpenSSL header.
bool is_encrypted(std::string_view pem) {
  return pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
         pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
}

// No prompt: mailtap runs unattended (the systemd unit), and a key it could only use after
// asking is refused with how to write one that needs no passphrase.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

bssl::UniquePtr<BIO> over(const smtp::Secret& bytes) {
  return bssl::UniquePtr<BIO>(BIO_new_mem_buf(bytes.data(), bytes.size()));
}

// The regular file at `path`, whole, in a wiped buffer; `st` what fstat says of it.
std::optional<smtp::Secret> read_file(const std::string& path, const std::string& what,
                                      struct stat& st, std::string& error) {
  const FileDescriptor file{open_regular_file(path, what, st, error)};
  if (file.fd < 0) return std::nullopt;
  return read_private_file(file.fd, kMaxFile, what, error);
}

// The key file at `path`, once the descriptor shows it private (private_key_file.hpp).
std::optional<smtp::Secret> read_key_file(const std::string& path, std::string& error) {
  const std::string what = key_option(path);
  const FileDescriptor file{open_private_key(path, what, "", /*missing_ok=*/false, error)};
  if (file.fd < 0) return std::nullopt;
  return read_private_file(file.fd, kMaxFile, what, error);
}

// The certificates of the PEM text `pem`, leaf first, into `out`; other blocks (a key) skipped.
bool read_certificates(const smtp::Secret& pem, const std::string& what, ClientCertificate& out,
                       std::string& error) {
  if (pem.view().find("-----BEGIN ") == std::string_view::npos) {
    error = what +
            ": not a PEM file (no -----BEGIN line); convert a DER certificate with openssl x509 "
            "-inform der -in FILE -out FILE.pem, a PKCS#12 bundle (.p12, .pfx) with openssl "
            "pkcs12 -in FILE -nodes -out FILE.pem";
    return false;
  }
  const bssl::UniquePtr<BIO> bio = over(pem);
  while (bssl::UniquePtr<X509> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (!out.leaf)
      out.leaf = std::move(cert);
    else
      out.chain.push_back(std::move(cert));
  }
  // The end of the text reads as "no start line"; anything else is a block that is broken.
  const std::uint32_t last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    error = what + ": a PEM block in it cannot be read (" + ssl_error() + ")";
    return false;
  }
  ERR_clear_error();
  if (!out.leaf) {
    error = what +
            ": no certificate in it (a PEM file with the certificate, -----BEGIN CERTIFICATE-----, "
            "then its intermediates)";
    return false;
  }
  return true;
}

// The private key in the PEM text `pem` (the file `path`, named as `what`) into `out`.
bool read_key(const smtp::Secret& pem, const std::string& path, const std::string& what,
              ClientCertificate& out, std::string& error) {
  if (is_encrypted(pem.view())) {
    error = what +
            ": the private key is encrypted (protected by a passphrase), and mailtap asks for "
            "none: write a copy without the passphrase, private to you, and give that one as "
            "--client-key: (umask 077; openssl pkey -in " +
            path + " -out KEY.pem)";
    return false;
  }
  if (!holds_private_key(pem.view())) {
    error = what +
            ": no private key in it (a PEM key: -----BEGIN PRIVATE KEY-----, or RSA or EC "
            "PRIVATE KEY)";
    return false;
  }
  const bssl::UniquePtr<BIO> bio = over(pem);
  out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!out.key) {
    error = what + ": the private key in it cannot be read (" + ssl_error() + ")";
    return false;
  }
  return true;
}

std::string validity_problem(X509* cert) {
  std::time_t now = std::time(nullptr);
  if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0)
    return "it expired on " + time_to_iso8601(X509_get0_notAfter(cert));
  if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0)
    return "it is not valid before " + time_to_iso8601(X509_get0_notBefore(cert));
  return {};
}

// The certificate file: its certificates, and the key when it holds one. A file that holds a
// key is held to the key's rule, whether or not --client-key names another.
bool load_certificate_file(const std::string& path, bool key_here, ClientCertificate& out,
                           std::string& error) {
  const std::string what = cert_option(path);
  struct stat st {};
  const std::optional<smtp::Secret> pem = read_file(path, what, st, error);
  if (!pem || !read_certificates(*pem, what, out, error)) return false;
  if (holds_private_key(pem->view())) {
    error = private_key_refusal(st, path, what + " (it holds a private key)");
    if (!error.empty()) return false;
  } else if (key_here) {
    error = what +
            " holds no private key: give its key with --client-key FILE, or append the key "
            "to " +
            path;
    return false;
  }
  return !key_here || read_key(*pem, path, what, out, error);
}

}  // namespace

std::string ClientCertificate::describe() const {
  return cert_path + " (" + leaf_facts.subject + ")";
}

std::shared_ptr<const ClientCertificate> load_client_certificate(const std::string& cert_path,
                                                                 const std::string& key_path,
                                                                 std::string& error) {
  auto c = std::make_shared<ClientCertificate>();
  c->cert_path = cert_path;
  c->key_path = key_path.empty() ? cert_path : key_path;
  if (!load_certificate_file(cert_path, key_path.empty(), *c, error)) return nullptr;
  if (!key_path.empty()) {
    const std::optional<smtp::Secret> pem = read_key_file(key_path, error);
    if (!pem || !read_key(*pem, key_path, key_option(key_path), *c, error)) return nullptr;
  }
  if (X509_check_private_key(c->leaf.get(), c->key.get()) != 1) {
    ERR_clear_error();
    error = key_path.empty()
                ? cert_option(cert_path) + ": the private key in it is not the certificate's"
                : key_option(key_path) + " is not the key of " + cert_option(cert_path) +
                      " (the certificate names another public key)";
    return nullptr;
  }
  // What the TLS context will be given, tried now: a key type BoringSSL cannot sign with is a
  // configuration error at start, not a failure of the first session.
  const bssl::UniquePtr<SSL_CTX> trial(SSL_CTX_new(TLS_method()));
  if (!trial || !use_client_certificate(trial.get(), *c, error)) return nullptr;
  c->leaf_facts = describe_certificate(c->leaf.get());
  c->intermediates = c->chain.size();
  c->validity_problem = validity_problem(c->leaf.get());
  return c;
}

std::string client_certificate_refusal(const std::string& cert_path, const std::string& key_path) {
  struct stat st {};
  const std::string cert_what = cert_option(cert_path);
  if (std::string why = kind_refusal(cert_path, cert_what, st); !why.empty()) return why;
  if (::faccessat(AT_FDCWD, cert_path.c_str(), R_OK, AT_EACCESS) != 0)
    return cert_what + ": " + std::strerror(errno);
  if (key_path.empty()) return {};
  const std::string key_what = key_option(key_path);
  if (std::string why = kind_refusal(key_path, key_what, st); !why.empty()) return why;
  if (std::string why = private_key_refusal(st, key_path, key_what); !why.empty()) return why;
  if (::faccessat(AT_FDCWD, key_path.c_str(), R_OK, AT_EACCESS) != 0)
    return key_what + ": " + std::strerror(errno);
  return {};
}

bool use_client_certificate(SSL_CTX* ctx, const ClientCertificate& certificate,
                            std::string& error) {
  bool ok = SSL_CTX_use_certificate(ctx, certificate.leaf.get()) == 1 &&
            SSL_CTX_use_PrivateKey(ctx, certificate.key.get()) == 1;
  for (const auto& intermediate : certificate.chain)
    ok = ok && SSL_CTX_add1_chain_cert(ctx, intermediate.get()) == 1;
  if (!ok)
    error = cert_option(certificate.cert_path) + ": TLS cannot present it (" + ssl_error() + ")";
  return ok;
}

}  // namespace mailtap::net
