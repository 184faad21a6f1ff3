#include "proxy/net/ca_file.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "proxy/common/file_descriptor.hpp"
#include "proxy/net/ssl_error.hpp"

namespace mailtap::net {

namespace {

// Why the open file holds no usable certificate, or "".
std::string certificate_refusal(int fd) {
  bssl::UniquePtr<BIO> bio(BIO_new_fd(fd, BIO_NOCLOSE));
  if (!bio) return ssl_error();
  // What X509_load_cert_crl_file (behind SSL_CTX_load_verify_locations) reads: every PEM block,
  // failing on a broken one, skipping those of other kinds.
  bssl::UniquePtr<STACK_OF(X509_INFO)> blocks(
      PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr));
  if (!blocks) return "not a PEM file of certificates (" + ssl_error() + ")";
  ERR_clear_error();
  for (std::size_t i = 0; i < sk_X509_INFO_num(blocks.get()); ++i)
    if (sk_X509_INFO_value(blocks.get(), i)->x509 != nullptr) return {};
  return "no certificate in it (a PEM file of CA certificates, each from -----BEGIN "
         "CERTIFICATE-----)";
}

}  // namespace

std::string ca_file_refusal(const std::string& path) {
  const std::string who = "--ca-file " + path + ": ";
  // stat before open: opening a FIFO would wait for a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return who + std::strerror(errno);
  if (S_ISDIR(st.st_mode))
    return who +
           "a directory, not a file: --ca-file takes one PEM file of CA certificates (a "
           "directory of them is given as SSL_CERT_DIR)";
  if (!S_ISREG(st.st_mode)) return who + "not a regular file: --ca-file takes a PEM file";
  const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return who + std::strerror(errno);
  const std::string why = certificate_refusal(file.fd);
  return why.empty() ? why : who + why;
}

}  // namespace mailtap::net
