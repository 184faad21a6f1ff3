// Core dumps off while a secret is held, and back as they were for a process that holds none.
#include "proxy/secrets/core_dumps.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <algorithm>

namespace mailtap::secrets {
namespace {

rlimit core_limit() {
  rlimit r{};
  ::getrlimit(RLIMIT_CORE, &r);
  return r;
}

TEST(CoreDumps, ForbiddenThenAllowedAsBefore) {
  const rlimit given = core_limit();
  std::string error;
  const std::optional<CoreDumpSettings> before = forbid_core_dumps(error);
  ASSERT_TRUE(before) << error;
  const int dumpable = ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  const rlimit lowered = core_limit();
  allow_core_dumps(*before);
  EXPECT_EQ(dumpable, 0);
  // One byte, not 0: a core_pattern pipe ignores every other limit.
  EXPECT_EQ(lowered.rlim_cur, std::min<rlim_t>(1, given.rlim_max));
  EXPECT_EQ(lowered.rlim_max, given.rlim_max) << "the hard limit stays, to be raised again";
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), before->dumpable);
  EXPECT_EQ(core_limit().rlim_cur, given.rlim_cur);
  EXPECT_EQ(core_limit().rlim_max, given.rlim_max);
}

}  // namespace
}  // namespace mailtap::secrets
