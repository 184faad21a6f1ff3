// The 421 for want of descriptors: mailtap's own limit, and what mends it in the options of the
// command that met it.
#include "proxy/net/descriptor_reserve.hpp"

#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <cerrno>

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

}  // namespace
}  // namespace mailtap::net
