#include "proxy/common/descriptor_reserve.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace mailtap {

std::unique_lock<std::recursive_mutex> descriptors_lock() {
  static std::recursive_mutex descriptors;
  return std::unique_lock(descriptors);
}

bool descriptors_ran_out(int err) {
  return err == EMFILE || err == ENFILE;
}

DescriptorReserve::DescriptorReserve() {
  take();
}

DescriptorReserve::~DescriptorReserve() {
  if (fd_ >= 0) ::close(fd_);
}

void DescriptorReserve::take() {
  const auto lock = descriptors_lock();
  if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void DescriptorReserve::exchange(const std::function<void()>& open) {
  const auto lock = descriptors_lock();
  release();
  open();
}

void DescriptorReserve::give_back(const std::function<void()>& close) {
  const auto lock = descriptors_lock();
  close();
  take();
}

void DescriptorReserve::release() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int DescriptorReserve::accept_one(int listen_fd) {
  const auto lock = descriptors_lock();
  take();  // descriptors may have freed up since it was spent
  if (fd_ < 0) return -1;
  ::close(fd_);
  fd_ = -1;
  const int client = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (client < 0) take();
  return client;
}

}  // namespace mailtap
