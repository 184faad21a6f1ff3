#include "proxy/net/delivery_wait.hpp"

#include <algorithm>

#include "proxy/net/link.hpp"

namespace mailtap::net {

void DeliveryWait::begin(std::uint64_t through, const OutputProgress& output,
                         Clock::time_point now) {
  active_ = true;
  since_ = now;
  delivered_by_ = Clock::time_point::max();
  if (through <= delivered_through_) {
    delivered_ = true;
    return;
  }
  delivered_ = false;
  // The same octets as before (a reply line came, the next reply is owed for them too): where
  // they had got to stands.
  if (through != through_) {
    through_ = through;
    in_kernel_ = false;
    left_mark_ = output.left;
    acknowledged_mark_.reset();
  }
  note_left(output, now);
  // All of it has left the owner and the kernel holds little the server has not acknowledged:
  // the kernel sends that at once and the server's TCP stack acknowledges it one round trip
  // later, within look_interval unless the server is far (then the clock starts early by the
  // rest of the round trip, against limits of minutes). So a first look, however late, that
  // finds the server has it all needs no earlier look to say when: by look_interval from now.
  const std::uint64_t unacknowledged =
      output.on_socket - std::min(acknowledged_through_, output.on_socket);
  if (in_kernel_ && unacknowledged <= one_round_trip_octets) delivered_by_ = now + look_interval;
}

// The owner's part: octets leaving it are the server taking them (the socket had room), until
// the last of them has left; from then on only the kernel can say whether the server has them.
void DeliveryWait::note_left(const OutputProgress& output, Clock::time_point now) {
  if (in_kernel_) return;
  if (output.left >= through_) {
    in_kernel_ = true;
    socket_through_ = output.on_socket;
    if (output.left > left_mark_) since_ = now;
    return;
  }
  if (output.left >= left_mark_ + progress_octets) {
    left_mark_ = output.left;
    since_ = now;
  }
}

void DeliveryWait::observe(const OutputProgress& output,
                           std::optional<std::uint64_t> unacknowledged, Clock::time_point now) {
  if (!waiting()) return;
  note_left(output, now);
  if (!unacknowledged) {
    if (in_kernel_) deliver(std::min(now, delivered_by_));
    return;
  }
  const std::uint64_t acknowledged = output.on_socket - std::min(*unacknowledged, output.on_socket);
  acknowledged_through_ = std::max(acknowledged_through_, acknowledged);
  if (in_kernel_ && acknowledged >= socket_through_) {
    deliver(std::min(now, delivered_by_));
    return;
  }
  // Not all there yet: the round trip is longer. The owner looks again within look_interval
  // while it waits, so the look that finds it there is that late at most.
  delivered_by_ = Clock::time_point::max();
  if (!acknowledged_mark_) {
    acknowledged_mark_ = acknowledged;
  } else if (acknowledged >= *acknowledged_mark_ + progress_octets) {
    acknowledged_mark_ = acknowledged;
    since_ = now;
  }
}

void DeliveryWait::answered(std::uint64_t through, const OutputProgress& output,
                            Clock::time_point now) {
  if (through >= output.left)
    acknowledged_through_ = std::max(acknowledged_through_, output.on_socket);
  if (through <= delivered_through_) return;
  delivered_through_ = through;
  if (waiting() && through >= through_) deliver(now);
}

void DeliveryWait::deliver(Clock::time_point at) {
  delivered_ = true;
  delivered_through_ = std::max(delivered_through_, through_);
  since_ = at;
}

void observe_delivery(std::initializer_list<DeliveryWait*> waits, Link& link, std::uint64_t left,
                      DeliveryWait::Clock::time_point now) {
  if (std::none_of(waits.begin(), waits.end(), [](DeliveryWait* w) { return w->waiting(); }))
    return;
  const OutputProgress output{left, link.socket_octets()};
  const std::optional<std::uint64_t> unacknowledged = link.unacknowledged_octets();
  for (DeliveryWait* wait : waits) wait->observe(output, unacknowledged, now);
}

}  // namespace mailtap::net
