// A file descriptor closed when it goes (and with it any flock it holds): the one RAII owner of
// a descriptor from open(2) or mkstemp(3) in the files that read keys and certificates.
#pragma once

#include <unistd.h>

namespace mailtap {

struct FileDescriptor {
  int fd = -1;

  FileDescriptor() = default;
  explicit FileDescriptor(int descriptor) : fd(descriptor) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace mailtap
