#include "proxy/net/local_certificate.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include "proxy/common/file_descriptor.hpp"
#include "proxy/common/hex.hpp"
#include "proxy/common/home_directory.hpp"
#include "proxy/common/private_file.hpp"
#include "proxy/net/certificate_facts.hpp"
#include "proxy/net/private_key_file.hpp"
#include "proxy/net/ssl_error.hpp"

namespace mailtap::net {

namespace {

constexpr const char* cert_name = "local-tls-cert.pem";
constexpr const char* key_name = "local-tls-key.pem";
constexpr const char* lock_name = "local-tls.lock";
constexpr int validity_days = 825;  // the longest validity clients accept for a server certificate
constexpr long renew_margin_seconds = 24 * 3600;

std::string errno_text() {
  return std::strerror(errno);
}

std::string fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  return to_hex_colons(md, len);
}

bssl::UniquePtr<X509> read_certificate(const std::string& path) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  return bssl::UniquePtr<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

bssl::UniquePtr<EVP_PKEY> read_key(int fd) {
  bssl::UniquePtr<BIO> bio(BIO_new_fd(fd, BIO_NOCLOSE));
  if (!bio) return nullptr;
  return bssl::UniquePtr<EVP_PKEY>(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

constexpr const char* made_by_mailtap_organization = "mailtap local TLS";

// `path` made absolute (and tidied): it is named to clients, which run in another directory.
std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

LocalCertificate describe(X509* cert, const std::string& cert_path, const std::string& key_path) {
  LocalCertificate c;
  c.cert_path = absolute_path(cert_path);
  c.key_path = absolute_path(key_path);
  c.sha256_fingerprint = fingerprint(cert);
  c.not_after = time_to_iso8601(X509_get0_notAfter(cert));
  c.dns_names = subject_alt_dns_names(cert);
  c.ip_addresses = subject_alt_addresses(cert);
  c.self_signed = X509_check_issued(cert, cert) == X509_V_OK;
  c.issuer = name_to_string(X509_get_issuer_name(cert));
  return c;
}

// Whether `cert` is one mailtap made (in its config directory): self-signed, with the
// organisation generate() gives it.
bool made_by_mailtap(X509* cert) {
  if (X509_check_issued(cert, cert) != X509_V_OK) return false;
  char organization[64] = {};
  const int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName,
                                            organization, sizeof organization);
  return len > 0 && std::string_view(organization) == made_by_mailtap_organization;
}

bool add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(
      X509V3_EXT_nconf_nid(nullptr, &ctx, nid, const_cast<char*>(value)));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// A P-256 key and a self-signed certificate for localhost, 127.0.0.1 and ::1 (a --listen of
// [::1], where clients connect by that address), valid from an hour
// ago (clock skew) for `validity_days`. Not a CA: it certifies itself only.
bool generate(bssl::UniquePtr<EVP_PKEY>& key, bssl::UniquePtr<X509>& cert, std::string& error) {
  bssl::UniquePtr<EVP_PKEY_CTX> pctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* raw_key = nullptr;
  if (!pctx || EVP_PKEY_keygen_init(pctx.get()) != 1 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(pctx.get(), NID_X9_62_prime256v1) != 1 ||
      EVP_PKEY_keygen(pctx.get(), &raw_key) != 1) {
    error = "cannot generate a P-256 key: " + ssl_error();
    return false;
  }
  key.reset(raw_key);
  cert.reset(X509_new());
  bssl::UniquePtr<BIGNUM> serial(BN_new());
  bool ok = cert && serial && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(cert.get()), validity_days, 0, nullptr) != nullptr;
  X509_NAME* name = ok ? X509_get_subject_name(cert.get()) : nullptr;
  ok = ok && name != nullptr &&
       X509_NAME_add_entry_by_txt(
           name, "O", MBSTRING_UTF8,
           reinterpret_cast<const unsigned char*>(made_by_mailtap_organization), -1, -1, 0) == 1 &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                  0) == 1 &&
       X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1;
  ok = ok && add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
       add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
       add_extension(cert.get(), NID_ext_key_usage, "serverAuth") &&
       add_extension(cert.get(), NID_subject_key_identifier, "hash") &&
       X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) error = "cannot make a self-signed certificate: " + ssl_error();
  return ok;
}

// Whether `err` (an errno value) says the system failed rather than refused, decided by
// inclusion: only a device or a resource running out is a failure of the run (exit status 1,
// which the systemd unit restarts): ENOSPC and EDQUOT (no space, quota), EIO (the device),
// EFBIG (a file size limit), ENOMEM and ENOBUFS (memory), EMFILE and ENFILE (descriptors),
// ENOLCK (locks) and ESTALE (a remote file system gone away). Everything else (EACCES, EPERM,
// EROFS, ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EEXIST, ...) is a refusal for the user to mend:
// a configuration error, which restarting would only repeat.
bool is_io_failure(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EFBIG:
    case ENOMEM:
    case ENOBUFS:
    case EMFILE:
    case ENFILE:
    case ENOLCK:
    case ESTALE:
      return true;
    default:
      return false;
  }
}

// Writes `pem` to `path` by way of a private temporary file in the same directory and a rename,
// so a reader sees the whole old file or the whole new one. `failed_io` tells a failure of the
// system from a refusal (is_io_failure).
bool write_atomically(const std::string& path, const std::string& pem, mode_t mode,
                      std::string& error, bool& failed_io) {
  std::string tmp = path + ".XXXXXX";
  FileDescriptor f{mkstemp(tmp.data())};  // 0600
  if (f.fd < 0) {
    const int err = errno;
    failed_io = is_io_failure(err);
    error = "cannot create a file next to " + path + ": " + std::strerror(err);
    return false;
  }
  std::size_t done = 0;
  while (done < pem.size()) {
    const ssize_t n = ::write(f.fd, pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;  // a regular file that takes nothing: the device's failure
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool ok = done == pem.size() && fchmod(f.fd, mode) == 0 && fsync(f.fd) == 0 &&
                  ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    const int err = errno;
    failed_io = is_io_failure(err);
    error = "cannot write " + path + ": " + std::strerror(err);
    ::unlink(tmp.c_str());
  }
  return ok;
}

std::string to_pem(bool (*write)(BIO*, void*), void* object) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !write(bio.get(), object)) return {};
  const std::uint8_t* data = nullptr;
  std::size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

// `dir` made 0700 if it is missing. An existing one that group or others may write to is
// tightened (chmod go-w): whoever can write it could plant a key and certificate of their own.
// `failed_io` tells a failure of the file system from a refusal.
bool prepare_directory(const std::string& dir, std::string& error, bool& failed_io) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  // Its parent first (~/.config may be missing): when that cannot be made, its error is the
  // one to report, not the ENOENT of the mkdir below.
  if (!parent.empty() && (std::filesystem::create_directories(parent, ec), ec)) {
    failed_io = is_io_failure(ec.value());
    error = "cannot create " + parent.string() + ": " + ec.message();
    return false;
  }
  if (::mkdir(dir.c_str(), 0700) == 0) return true;
  if (const int err = errno; err != EEXIST) {
    failed_io = is_io_failure(err);
    error = "cannot create " + dir + ": " + std::strerror(err);
    return false;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    error = dir + " is not a directory";
    return false;
  }
  constexpr mode_t others_write = S_IWGRP | S_IWOTH;
  if ((st.st_mode & others_write) != 0 &&
      ::chmod(dir.c_str(), (st.st_mode & 07777) & ~others_write) != 0) {
    error = dir + ": permissions " + octal_mode(st.st_mode) +
            " let group or others replace the key in it, and it cannot be tightened (" +
            errno_text() + "): chmod go-w " + dir;
    return false;
  }
  return true;
}

// The pair on disk, if it can be used as it is: the certificate is valid for at least another
// day and matches the key. Otherwise nullopt, with `error` empty when a new pair may be made,
// or set when the key is there but not private (readable by others, or someone else's): then
// mailtap neither uses it nor replaces it unasked.
std::optional<LocalCertificate> reusable_pair(const std::string& cert_path,
                                              const std::string& key_path, std::string& error) {
  // No key yet: a pair is made anew. One that is there but cannot be read (someone else's 0600
  // key) or is not private is not replaced unasked.
  FileDescriptor key_file{open_private_key(key_path, "the key " + key_path,
                                           "delete it and " + cert_path + " for a new pair",
                                           /*missing_ok=*/true, error)};
  if (key_file.fd < 0) return std::nullopt;
  bssl::UniquePtr<X509> cert = read_certificate(cert_path);
  bssl::UniquePtr<EVP_PKEY> key = cert ? read_key(key_file.fd) : nullptr;
  std::time_t renew_by = std::time(nullptr) + renew_margin_seconds;
  const bool usable = key && X509_check_private_key(cert.get(), key.get()) == 1 &&
                      X509_cmp_time(X509_get0_notAfter(cert.get()), &renew_by) > 0;
  ERR_clear_error();
  if (!usable) return std::nullopt;
  LocalCertificate reused = describe(cert.get(), cert_path, key_path);
  reused.made_by_mailtap = made_by_mailtap(cert.get());
  return reused;
}

// Whether a pair found in the config directory will do: one an older mailtap made without ::1
// does not when clients are to connect to ::1 (a certificate of the user's own put there is
// left alone).
bool will_do(const LocalCertificate& c, bool need_ipv6_loopback) {
  if (!need_ipv6_loopback || !c.made_by_mailtap) return true;
  return std::find(c.ip_addresses.begin(), c.ip_addresses.end(), "::1") != c.ip_addresses.end();
}

// Makes a pair and writes it to `cert_path` and `key_path` (the caller holds the lock).
std::optional<LocalCertificate> make_pair(const std::string& cert_path, const std::string& key_path,
                                          std::string& error, bool& failed_io) {
  bssl::UniquePtr<EVP_PKEY> key;
  bssl::UniquePtr<X509> cert;
  // Making and encoding the pair fail only for want of memory: the system's failure. Writing it
  // tells (write_atomically).
  failed_io = true;
  if (!generate(key, cert, error)) return std::nullopt;
  const std::string key_pem = to_pem(
      [](BIO* b, void* k) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr,
                                        nullptr) == 1;
      },
      key.get());
  const std::string cert_pem =
      to_pem([](BIO* b, void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(c)) == 1; },
             cert.get());
  if (key_pem.empty() || cert_pem.empty()) {
    error = "cannot encode the certificate: " + ssl_error();
    return std::nullopt;
  }
  // The key first: a certificate is never on disk without its key.
  if (!write_atomically(key_path, key_pem, 0600, error, failed_io) ||
      !write_atomically(cert_path, cert_pem, 0644, error, failed_io))
    return std::nullopt;
  failed_io = false;
  LocalCertificate made = describe(cert.get(), cert_path, key_path);
  made.created = true;
  made.made_by_mailtap = true;
  return made;
}

}  // namespace

std::string default_config_dir(const std::function<const char*(const char*)>& getenv,
                               std::string& error) {
  const char* variable = directory_from_env(getenv, "XDG_CONFIG_HOME") ? "XDG_CONFIG_HOME" : "HOME";
  if (const auto base = directory_from_env(getenv, variable)) {
    error = other_users_home_refusal(*base, variable, ::geteuid());
    if (!error.empty()) {
      error += ", or give --local-cert and --local-key";
      return {};
    }
    return *base + (variable == std::string_view("HOME") ? "/.config/mailtap" : "/mailtap");
  }
  error = "no config directory: set XDG_CONFIG_HOME or HOME, or give --local-cert and --local-key" +
          relative_home_note(getenv);
  return {};
}

std::optional<LocalCertificate> ensure_local_certificate(const std::string& dir, std::string& error,
                                                         bool* io_failure,
                                                         bool need_ipv6_loopback) {
  bool ignored = false;
  bool& failed_io = io_failure != nullptr ? *io_failure : ignored;
  failed_io = false;
  if (!prepare_directory(dir, error, failed_io)) return std::nullopt;
  const std::string cert_path = dir + "/" + cert_name;
  const std::string key_path = dir + "/" + key_name;

  // Reuse writes nothing, so it takes no lock and works in a directory mailtap may only read
  // (the systemd unit's home is read-only). A pair a concurrent start is replacing half-way
  // does not match: it is looked at again under the lock.
  std::optional<LocalCertificate> old = reusable_pair(cert_path, key_path, error);
  if (!error.empty()) return std::nullopt;
  if (old && will_do(*old, need_ipv6_loopback)) return old;

  const std::string lock_path = dir + "/" + lock_name;
  FileDescriptor lock{::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)};
  // An old pair that lacks ::1 is still a valid one: used where no new one can be made.
  if (lock.fd < 0 && old) return old;
  if (lock.fd < 0 && !is_io_failure(errno)) {
    error = "no certificate to reuse in " + dir + ", and a new one cannot be made there (" +
            lock_path + ": " + errno_text() +
            "): start mailtap with --local-tls once where that directory is writable (not "
            "under the systemd unit, whose home is read-only), or give --local-cert and "
            "--local-key";
    return std::nullopt;
  }
  if (lock.fd < 0 || ::flock(lock.fd, LOCK_EX) != 0) {
    const int err = errno;
    failed_io = is_io_failure(err);
    error = "cannot lock " + lock_path + ": " + std::strerror(err);
    return std::nullopt;
  }
  // Another start may have made the pair while this one waited for the lock.
  if (auto reused = reusable_pair(cert_path, key_path, error);
      reused && will_do(*reused, need_ipv6_loopback))
    return reused;
  if (!error.empty()) return std::nullopt;
  return make_pair(cert_path, key_path, error, failed_io);
}

std::optional<LocalCertificate> load_local_certificate(const std::string& cert_path,
                                                       const std::string& key_path,
                                                       std::string& error) {
  bssl::UniquePtr<X509> cert = read_certificate(cert_path);
  if (!cert) {
    error =
        "--local-cert " + cert_path + ": no PEM certificate could be read (" + ssl_error() + ")";
    return std::nullopt;
  }
  // The user's own key is held to what mailtap asks of the key it makes.
  FileDescriptor key_file{
      open_private_key(key_path, "--local-key " + key_path, "", /*missing_ok=*/false, error)};
  if (key_file.fd < 0) return std::nullopt;
  bssl::UniquePtr<EVP_PKEY> key = read_key(key_file.fd);
  if (!key) {
    error = "--local-key " + key_path + ": no PEM private key could be read (" + ssl_error() + ")";
    return std::nullopt;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    error = "--local-key " + key_path + " is not the key of --local-cert " + cert_path;
    return std::nullopt;
  }
  return describe(cert.get(), cert_path, key_path);
}

}  // namespace mailtap::net
