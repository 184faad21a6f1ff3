// What the kernel says about who owns the client's end of a connection: the sock_diag request
// and answer, and the /proc/net/tcp{,6} tables read in pieces cut anywhere.
#include "proxy/net/socket_owner_answers.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace mailtap::net {
namespace {

// 127.0.0.1:54321 connected to 127.0.0.1:2525.
TcpConnection loopback_v4() {
  TcpConnection c;
  c.client_address = {127, 0, 0, 1};
  c.server_address = {127, 0, 0, 1};
  c.client_port = 54321;
  c.server_port = 2525;
  return c;
}

// [::1]:40000 connected to [::1]:2525.
TcpConnection loopback_v6() {
  TcpConnection c;
  c.v6 = true;
  c.client_address[15] = 1;
  c.server_address[15] = 1;
  c.client_port = 40000;
  c.server_port = 2525;
  return c;
}

std::vector<std::uint8_t> message(std::uint16_t type, std::uint32_t sequence, const void* payload,
                                  std::size_t size) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(sizeof h + size);
  h.nlmsg_type = type;
  h.nlmsg_seq = sequence;
  std::vector<std::uint8_t> out(NLMSG_ALIGN(h.nlmsg_len));
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, payload, size);
  return out;
}

std::vector<std::uint8_t> diag_answer(const TcpConnection& c, std::uint32_t sequence,
                                      std::uint32_t uid) {
  inet_diag_msg m{};
  m.idiag_family = c.v6 ? AF_INET6 : AF_INET;
  m.id.idiag_sport = htons(c.client_port);
  m.id.idiag_dport = htons(c.server_port);
  std::memcpy(m.id.idiag_src, c.client_address.data(), c.v6 ? 16 : 4);
  std::memcpy(m.id.idiag_dst, c.server_address.data(), c.v6 ? 16 : 4);
  m.idiag_uid = uid;
  m.idiag_state = 1;      // TCP_ESTABLISHED: a live socket, owned by its process
  m.idiag_inode = 48151;  // (a closed one has inode 0)
  return message(SOCK_DIAG_BY_FAMILY, sequence, &m, sizeof m);
}

std::vector<std::uint8_t> error_answer(std::uint32_t sequence, int error) {
  nlmsgerr e{};
  e.error = -error;
  return message(NLMSG_ERROR, sequence, &e, sizeof e);
}

TEST(SockDiagRequestTest, AsksForTheClientsSocketByItsOwnEnd) {
  const std::string bytes = sock_diag_request(loopback_v4(), 7);
  ASSERT_EQ(bytes.size(), sizeof(nlmsghdr) + sizeof(inet_diag_req_v2));
  nlmsghdr h{};
  std::memcpy(&h, bytes.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST);  // one socket, no dump
  EXPECT_EQ(h.nlmsg_seq, 7u);
  inet_diag_req_v2 r{};
  std::memcpy(&r, bytes.data() + sizeof h, sizeof r);
  EXPECT_EQ(r.sdiag_family, AF_INET);
  EXPECT_EQ(r.sdiag_protocol, IPPROTO_TCP);
  EXPECT_EQ(ntohs(r.id.idiag_sport), 54321);  // the client's port is the source
  EXPECT_EQ(ntohs(r.id.idiag_dport), 2525);
  EXPECT_EQ(r.id.idiag_src[0], htonl(0x7f000001));
  EXPECT_EQ(r.id.idiag_cookie[0], INET_DIAG_NOCOOKIE);
}

TEST(SockDiagAnswerTest, TheOwnersUid) {
  const auto c = loopback_v6();
  const auto bytes = diag_answer(c, 3, 65534);
  const SockDiagAnswer a = read_sock_diag_answer(bytes, 3, c);
  EXPECT_EQ(a.kind, SockDiagAnswer::Kind::owner);
  EXPECT_EQ(a.uid, 65534u);
}

TEST(SockDiagAnswerTest, NotFoundIsTheKernelsError) {
  const auto bytes = error_answer(4, ENOENT);
  const SockDiagAnswer a = read_sock_diag_answer(bytes, 4, loopback_v4());
  EXPECT_EQ(a.kind, SockDiagAnswer::Kind::error);
  EXPECT_EQ(a.error, ENOENT);
}

TEST(SockDiagAnswerTest, AnAnswerToAnEarlierRequestIsPassedOver) {
  const auto c = loopback_v4();
  auto bytes = diag_answer(c, 1, 0);  // a request that timed out, answered late
  const auto ours = diag_answer(c, 2, 1000);
  bytes.insert(bytes.end(), ours.begin(), ours.end());
  EXPECT_EQ(read_sock_diag_answer(diag_answer(c, 1, 0), 2, c).kind, SockDiagAnswer::Kind::none);
  const SockDiagAnswer a = read_sock_diag_answer(bytes, 2, c);
  EXPECT_EQ(a.kind, SockDiagAnswer::Kind::owner);
  EXPECT_EQ(a.uid, 1000u);
}

TEST(SockDiagAnswerTest, ASocketOtherThanTheOneAskedForIsUnreadableNotAReasonToReadOn) {
  auto other = loopback_v4();
  other.client_port = 1;
  // Our sequence number, another socket: no later datagram will be the answer, so no other
  // (blocking) read is made for it.
  EXPECT_EQ(read_sock_diag_answer(diag_answer(other, 5, 0), 5, loopback_v4()).kind,
            SockDiagAnswer::Kind::unreadable);
  EXPECT_EQ(read_sock_diag_answer(diag_answer(other, 4, 0), 5, loopback_v4()).kind,
            SockDiagAnswer::Kind::none);
}

// The IPv4 connection as the kernel describes a dual-stack client's socket: an IPv6 one, its
// addresses v4-mapped.
TcpConnection mapped(const TcpConnection& v4) {
  TcpConnection c = v4;
  c.v6 = true;
  c.client_address = {};
  c.server_address = {};
  for (auto* a : {&c.client_address, &c.server_address}) {
    (*a)[10] = 0xff;
    (*a)[11] = 0xff;
  }
  std::memcpy(c.client_address.data() + 12, v4.client_address.data(), 4);
  std::memcpy(c.server_address.data() + 12, v4.server_address.data(), 4);
  return c;
}

TEST(SockDiagAnswerTest, ADualStackClientsSocketAnswersForItsIpv4Connection) {
  const auto c = loopback_v4();
  const SockDiagAnswer a = read_sock_diag_answer(diag_answer(mapped(c), 8, 1000), 8, c);
  EXPECT_EQ(a.kind, SockDiagAnswer::Kind::owner);
  EXPECT_EQ(a.uid, 1000u);
  // And the other way round: a v4-mapped connection answered by an IPv4 socket.
  const SockDiagAnswer b = read_sock_diag_answer(diag_answer(c, 9, 1000), 9, mapped(c));
  EXPECT_EQ(b.kind, SockDiagAnswer::Kind::owner);
  EXPECT_EQ(b.uid, 1000u);
  // A mapped address of another host is no match.
  auto elsewhere = mapped(c);
  elsewhere.client_address[15] = 2;
  EXPECT_EQ(read_sock_diag_answer(diag_answer(elsewhere, 8, 1000), 8, c).kind,
            SockDiagAnswer::Kind::unreadable);
}

// A client that closed at once: its socket is an orphan (FIN_WAIT2) or in TIME_WAIT by the time
// it is looked up, held by no process, and the kernel says uid 0 and inode 0 for it.
TEST(SockDiagAnswerTest, ASocketNoProcessHoldsAnyMoreIsGoneNotRoots) {
  const auto c = loopback_v4();
  auto orphan = diag_answer(c, 10, 0);
  inet_diag_msg m{};
  std::memcpy(&m, orphan.data() + sizeof(nlmsghdr), sizeof m);
  m.idiag_state = 5;  // TCP_FIN_WAIT2
  m.idiag_inode = 0;
  std::memcpy(orphan.data() + sizeof(nlmsghdr), &m, sizeof m);
  EXPECT_EQ(read_sock_diag_answer(orphan, 10, c).kind, SockDiagAnswer::Kind::gone);
  m.idiag_state = 6;  // TCP_TIME_WAIT
  m.idiag_inode = 1234;
  std::memcpy(orphan.data() + sizeof(nlmsghdr), &m, sizeof m);
  EXPECT_EQ(read_sock_diag_answer(orphan, 10, c).kind, SockDiagAnswer::Kind::gone);
  m.idiag_state = 1;  // established, held: root's indeed
  std::memcpy(orphan.data() + sizeof(nlmsghdr), &m, sizeof m);
  EXPECT_EQ(read_sock_diag_answer(orphan, 10, c).kind, SockDiagAnswer::Kind::owner);
}

TEST(SockDiagRequestTest, ALinkLocalClientIsLookedUpOnItsInterface) {
  TcpConnection c = loopback_v6();
  c.client_address = {0xfe, 0x80};
  c.client_address[15] = 2;
  c.server_address = {0xfe, 0x80};
  c.server_address[15] = 1;
  c.interface = 7;
  const std::string bytes = sock_diag_request(c, 1);
  inet_diag_req_v2 r{};
  std::memcpy(&r, bytes.data() + sizeof(nlmsghdr), sizeof r);
  EXPECT_EQ(r.sdiag_family, AF_INET6);
  EXPECT_EQ(r.id.idiag_if, 7u);
  EXPECT_EQ(std::memcmp(r.id.idiag_src, c.client_address.data(), 16), 0);
}

TEST(SockDiagAnswerTest, CutShortOrLyingLengthsAreUnreadable) {
  const auto c = loopback_v4();
  const auto whole = diag_answer(c, 6, 0);
  for (std::size_t cut = sizeof(nlmsghdr); cut < whole.size(); ++cut) {
    const std::vector<std::uint8_t> part(whole.begin(), whole.begin() + static_cast<long>(cut));
    EXPECT_EQ(read_sock_diag_answer(part, 6, c).kind, SockDiagAnswer::Kind::unreadable) << cut;
  }
  for (std::size_t cut = 0; cut < sizeof(nlmsghdr); ++cut) {
    const std::vector<std::uint8_t> part(whole.begin(), whole.begin() + static_cast<long>(cut));
    EXPECT_EQ(read_sock_diag_answer(part, 6, c).kind, SockDiagAnswer::Kind::none) << cut;
  }
  auto lying = whole;
  const std::uint32_t too_short = 4;  // shorter than its own header
  std::memcpy(lying.data(), &too_short, 4);
  EXPECT_EQ(read_sock_diag_answer(lying, 6, c).kind, SockDiagAnswer::Kind::unreadable);
  // A diag message too short for its type, though its length is true.
  std::uint8_t little[8] = {};
  EXPECT_EQ(
      read_sock_diag_answer(message(SOCK_DIAG_BY_FAMILY, 6, little, sizeof little), 6, c).kind,
      SockDiagAnswer::Kind::unreadable);
}

// Two lines of /proc/net/tcp as a little-endian machine prints them: a listener and the
// client's socket (uid 65534).
std::string proc_tcp_v4() {
  return "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
         "timeout inode\n"
         "   0: 0100007F:09DD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  "
         "      0 1234 1 0000000000000000 100 0 0 10 0\n"
         "   1: 0100007F:D431 0100007F:09DD 01 00000000:00000000 00:00000000 00000000 65534  "
         "      0 5678 1 0000000000000000 20 4 30 10 -1\n";
}

TEST(ProcTcpTableScanTest, TheClientSocketsUidWhereverThePiecesAreCut) {
  if (htonl(1) == 1) GTEST_SKIP() << "the table above is a little-endian machine's";
  const std::string text = proc_tcp_v4();
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    ProcTcpTableScan scan(loopback_v4(), false);
    scan.feed(std::string_view(text).substr(0, cut));
    scan.feed(std::string_view(text).substr(cut));
    scan.finish();
    ASSERT_TRUE(scan.uid().has_value()) << cut;
    EXPECT_EQ(*scan.uid(), 65534u);
  }
  ProcTcpTableScan by_octet(loopback_v4(), false);
  for (char c : text) by_octet.feed(std::string_view(&c, 1));
  EXPECT_EQ(by_octet.uid(), 65534u);
}

TEST(ProcTcpTableScanTest, ALastLineWithoutItsNewlineCounts) {
  if (htonl(1) == 1) GTEST_SKIP() << "the table above is a little-endian machine's";
  std::string text = proc_tcp_v4();
  text.pop_back();
  ProcTcpTableScan scan(loopback_v4(), false);
  scan.feed(text);
  EXPECT_FALSE(scan.uid());
  scan.finish();
  EXPECT_EQ(scan.uid(), 65534u);
}

TEST(ProcTcpTableScanTest, AnIpv4ConnectionInTheIpv6TableIsV4Mapped) {
  if (htonl(1) == 1) GTEST_SKIP() << "the table below is a little-endian machine's";
  const std::string text =
      "  sl  local_address                         remote_address                        st\n"
      "   0: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:09DD 01 "
      "00000000:00000000 00:00000000 00000000  1000        0 99 1\n";
  ProcTcpTableScan scan(loopback_v4(), true);
  scan.feed(text);
  EXPECT_EQ(scan.uid(), 1000u);
  ProcTcpTableScan v6(loopback_v6(), false);  // an IPv6 connection is in no IPv4 table
  v6.feed(proc_tcp_v4());
  EXPECT_FALSE(v6.uid());
}

TEST(ProcTcpTableScanTest, ASocketNoProcessHoldsAnyMoreIsGoneNotRoots) {
  if (htonl(1) == 1) GTEST_SKIP() << "the tables below are a little-endian machine's";
  const std::string orphan =  // FIN_WAIT2, closed by its process: uid 0, inode 0
      "   1: 0100007F:D431 0100007F:09DD 05 00000000:00000000 00:00000000 00000000     0  "
      "      0 0 1 0000000000000000 20 4 30 10 -1\n";
  const std::string time_wait =
      "   1: 0100007F:D431 0100007F:09DD 06 00000000:00000000 03:00000F9D 00000000     0  "
      "      0 0 3 0000000000000000\n";
  for (const std::string& text : {orphan, time_wait}) {
    ProcTcpTableScan scan(loopback_v4(), false);
    scan.feed(text);
    EXPECT_TRUE(scan.gone()) << text;
    EXPECT_FALSE(scan.uid()) << text;
  }
  ProcTcpTableScan held(loopback_v4(), false);
  held.feed(proc_tcp_v4());
  EXPECT_FALSE(held.gone());
  EXPECT_EQ(held.uid(), 65534u);
}

TEST(ProcTcpTableScanTest, OddLinesFindNothing) {
  for (const std::string& text :
       {std::string("garbage\n\n\n"), std::string(100000, 'x') + "\n",
        std::string("   1: 0100007F:D431 0100007F:09DD 01 00000000:00000000 00:00000000 00000000 "
                    "-1\n"),
        std::string("   1: 0100007F:D431 0100007F:09DD 01 00000000:00000000 00:00000000 00000000 "
                    "99999999999\n"),
        std::string("   1: 0100007F:D431 0100007F:09DD\n")}) {
    ProcTcpTableScan scan(loopback_v4(), false);
    scan.feed(text);
    scan.finish();
    EXPECT_FALSE(scan.uid()) << text.substr(0, 80);
  }
}

TEST(ProcTcpTableScanTest, AnOverlongLineIsSkippedNotGlued) {
  if (htonl(1) == 1) GTEST_SKIP();
  ProcTcpTableScan scan(loopback_v4(), false);
  scan.feed(std::string(10000, ' '));  // no newline yet: dropped, not held
  scan.feed("\n");
  scan.feed(proc_tcp_v4());
  EXPECT_EQ(scan.uid(), 65534u);
}

}  // namespace
}  // namespace mailtap::net
