// File permissions that hold for root too, so a test can make a directory unsearchable
// (EACCES) whoever runs it: root passes every permission check through CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH, which this takes out of the effective set of the calling thread while
// it lives (they stay permitted, and are put back at the end). Capabilities are per thread in
// Linux: a thread started meanwhile (a recorder's storage thread) is held to the permissions
// too, for its whole life.
#pragma once

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mailtap::test_support {

class PermissionChecksForRoot {
 public:
  PermissionChecksForRoot() {
    if (::syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct reduced[2] = {saved_[0], saved_[1]};
    for (const unsigned cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH})
      reduced[cap / 32].effective &= ~(1u << (cap % 32));
    active_ = ::syscall(SYS_capset, &header_, reduced) == 0;
  }
  ~PermissionChecksForRoot() {
    if (active_) ::syscall(SYS_capset, &header_, saved_);
  }
  PermissionChecksForRoot(const PermissionChecksForRoot&) = delete;
  PermissionChecksForRoot& operator=(const PermissionChecksForRoot&) = delete;

  // False if the capabilities could not be read or set: a test relying on it should skip.
  bool active() const { return active_; }

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved_[2]{};
  bool active_ = false;
};

}  // namespace mailtap::test_support
