// The 421 for want of descriptors: mailtap's own limit, and what mends it in the options of the
// command that met it.
#include "proxy/net/descriptor_reserve.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <asio/error.hpp>
#include <cerrno>
#include <cstdlib>
#include <vector>

namespace mailtap::net {
namespace {

const std::error_code kEmfile(EMFILE, asio::error::get_system_category());

TEST(OutOfDescriptorsRefusal, TheProxySaysToLowerItsSessionLimit) {
  const std::string text = out_of_descriptors_refusal(kEmfile, "--max-sessions");
  EXPECT_EQ(text.rfind("4.3.2 mailtap: Too many open files (mailtap's open-file limit is ", 0), 0u)
      << text;
  EXPECT_NE(text.find("; try again later (whoever runs mailtap: raise the limit, ulimit -n or "
                      "LimitNOFILE=, or lower --max-sessions)"),
            std::string::npos)
      << text;
}

TEST(OutOfDescriptorsRefusal, ACommandWithOneConnectionNamesNoOptionItLacks) {
  // probe and replay: no --max-sessions to lower.
  const std::string text = out_of_descriptors_refusal(kEmfile, "");
  EXPECT_EQ(text.find("--max-sessions"), std::string::npos) << text;
  EXPECT_NE(text.find("; try again later (whoever runs mailtap: raise the limit, ulimit -n or "
                      "LimitNOFILE=)"),
            std::string::npos)
      << text;
}

TEST(OutOfDescriptorsRefusal, TheSystemTableFullHasNoProcessLimitToQuote) {
  const std::string text =
      out_of_descriptors_refusal(std::error_code(ENFILE, asio::error::get_system_category()), "");
  EXPECT_EQ(text.find("open-file limit is"), std::string::npos) << text;
}

TEST(OutOfDescriptorsRefusal, TheSystemTableFullNamesTheSystemLimitNotTheProcessOne) {
  // ENFILE: every process's files together fill the kernel's table; mailtap's own limit
  // (ulimit -n, LimitNOFILE=) is not what was reached, raising it mends nothing.
  const std::string text = out_of_descriptors_refusal(
      std::error_code(ENFILE, asio::error::get_system_category()), "--max-sessions");
  EXPECT_EQ(text.find("ulimit -n"), std::string::npos) << text;
  EXPECT_EQ(text.find("LimitNOFILE="), std::string::npos) << text;
  EXPECT_NE(text.find("; try again later (whoever runs mailtap: raise the system's file limit, "
                      "sysctl fs.file-max, or lower --max-sessions)"),
            std::string::npos)
      << text;
}

// A named upstream's sessions resolve without their kept descriptor, and the acceptor asks for
// room beside them before each accept: with descriptors plenty, it must not open resolving+2
// of them to find out (in a large burst, that many opens per accept).
TEST(RoomBesideResolves, PlentyOfDescriptorsAreNotProbed) {
  const ResolvingWithoutReserve resolving[3];
  const unsigned long before = room_probes_made();
  EXPECT_TRUE(room_beside_resolves());
  EXPECT_EQ(room_probes_made(), before);
}

// The descriptors this process has open, listed (not as the code under test counts them).
std::vector<int> open_descriptors() {
  std::vector<int> open;
  DIR* fds = ::opendir("/proc/self/fd");
  if (fds == nullptr) return open;
  while (const dirent* entry = ::readdir(fds)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != ::dirfd(fds)) open.push_back(fd);
  }
  ::closedir(fds);
  return open;
}

// The lowest limit under which `free` descriptors can still be opened.
rlim_t limit_leaving(long free) {
  const std::vector<int> open = open_descriptors();
  rlim_t limit = 0;
  auto free_below = [&](rlim_t l) {
    return static_cast<long>(l) - std::count_if(open.begin(), open.end(), [&](int fd) {
             return static_cast<rlim_t>(fd) < l;
           });
  };
  while (free_below(limit) < free) ++limit;
  return limit;
}

// Near the limit it still looks, and says whether the client's pair fits beside the resolver.
TEST(RoomBesideResolves, NearTheLimitItLooksAndSaysWhetherThereIsRoom) {
  rlimit was{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &was), 0);
  const ResolvingWithoutReserve resolving;
  auto limit_to = [&](long free) {
    rlimit few = was;
    few.rlim_cur = limit_leaving(free);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &few), 0);
  };
  // One resolving: its slot, the client's and the one kept for its socket.
  limit_to(3);
  EXPECT_TRUE(room_beside_resolves());
  limit_to(2);
  EXPECT_FALSE(room_beside_resolves());
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &was), 0);
}

}  // namespace
}  // namespace mailtap::net
