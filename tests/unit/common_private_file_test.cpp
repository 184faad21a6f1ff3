// The chmod advice for a file read through a descriptor (--config /dev/stdin < c.toml) names
// the file, not /dev/stdin, which typed in the user's shell is their terminal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "proxy/common/private_file.hpp"

namespace mailtap {
namespace {

TEST(PathToChmod, ADescriptorsNameIsTheFileBehindIt) {
  char name[] = "/tmp/mailtap-chmod-XXXXXX";
  const int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(path_to_chmod("/dev/fd/" + std::to_string(fd)), name);
  EXPECT_EQ(path_to_chmod("/proc/self/fd/" + std::to_string(fd)), name);
  EXPECT_EQ(path_to_chmod(name), name);
  ::close(fd);
  ::unlink(name);
}

TEST(PathToChmod, APipeHasNoFileToChmod) {
  int ends[2];
  ASSERT_EQ(::pipe(ends), 0);
  EXPECT_EQ(path_to_chmod("/dev/fd/" + std::to_string(ends[0])), "");
  ::close(ends[0]);
  ::close(ends[1]);
}

}  // namespace
}  // namespace mailtap
