// Dialogue: mailtap's one reading of an SMTP session. Every scenario is a script of client
// bytes, upstream bytes and EOFs, run three ways — each step whole, one byte at a time, and
// split into two reads at every position — and every way must produce the same bytes on both
// wires, the same events, the same messages and the same state after each step.
#include "tests/unit/dialogue_harness.hpp"

#include "proxy/smtp/command.hpp"
#include "proxy/smtp/transaction_tracker.hpp"

#include <set>

namespace mailtap::smtp {
namespace {

using namespace testing;
using namespace std::string_literals;
using namespace std::string_view_literals;

// ---- EHLO ----------------------------------------------------------------------------------

TEST(Dialogue, EhloReplyReachesTheClientWithoutStarttls) {
  const Result r = run_all_splits({client(ehlo), upstream(ehlo_reply)});
  EXPECT_EQ(r.upstream_per_step[0], ehlo);
  EXPECT_EQ(r.client_per_step[0], "");  // EHLO is a sync point: nothing until its reply
  EXPECT_EQ(r.client_per_step[1], ehlo_reply_filtered);
  auto rewrites = find_events(r, Direction::mailtap_to_client, EventKind::rewrite);
  ASSERT_EQ(rewrites.size(), 1u);
  EXPECT_EQ(rewrites[0]->bytes, ehlo_reply_filtered);
  // The relayed event keeps what the server said; bytes_from_upstream counts it.
  auto replies = find_events(r, Direction::upstream_to_client, EventKind::reply);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]->bytes, ehlo_reply);
  EXPECT_EQ(replies[0]->verb, "EHLO");
}

// The rewrite's note says why STARTTLS went: mailtap's TLS link upstream, or, with --tls none,
// that there is none (the session is plain text on purpose; mailtap answers STARTTLS itself).
TEST(Dialogue, EhloRewriteNoteSaysWhyStarttlsWasRemoved) {
  const auto note = [](Phase phase) {
    DialogueOptions options = test_options();
    options.phase = phase;
    const Result r = run_all_splits({client(ehlo), upstream(ehlo_reply)}, options);
    auto rewrites = find_events(r, Direction::mailtap_to_client, EventKind::rewrite);
    return rewrites.size() == 1 ? rewrites[0]->note : std::string("no rewrite");
  };
  EXPECT_EQ(note(Phase::tls),
            "STARTTLS removed from the EHLO reply: mailtap holds the TLS link upstream");
  EXPECT_EQ(note(Phase::plain),
            "STARTTLS removed from the EHLO reply (--tls none): the server offers STARTTLS: drop "
            "--tls none so that nothing travels in plain text");
}

TEST(Dialogue, EhloIsASyncPoint) {
  const Result r =
      run_all_splits({client(ehlo + "NOOP\r\n"), upstream(ehlo_reply), upstream("250 ok\r\n")});
  EXPECT_EQ(r.upstream_per_step[0], ehlo);
  EXPECT_EQ(r.upstream_per_step[1], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[2], "250 ok\r\n");
}

TEST(Dialogue, RefusedEhloIsRelayedUnfiltered) {
  // Only a 250 reply lists extensions: a refusal's text lines stay, whatever they say.
  const std::string refusal = "554-mx.example refuses you\r\n554 STARTTLS required first\r\n";
  const Result r = run_all_splits({client(ehlo), upstream(refusal)});
  EXPECT_EQ(r.client_per_step[1], refusal);
}

// ---- mail transactions ---------------------------------------------------------------------

// A message keeps a bounded share of its RCPTs (TransactionTracker): those left out after the
// last one kept leave no gap in the positions, so a note recorded with the message, naming its
// transaction, says how many there were; the record must not look complete when it is not.
TEST(Dialogue, RecipientsLeftOutOfTheMessageAreNotedWithIt) {
  const std::string rcpt = "RCPT TO:<" + std::string(1900, 'r') + "@y.example>\r\n";
  Script script = {client(ehlo), upstream(ehlo_reply), client("MAIL FROM:<a@x.example>\r\n"),
                   upstream("250 2.1.0 Ok\r\n")};
  for (int i = 0; i < 600; ++i) {
    script.push_back(client(rcpt));
    script.push_back(upstream("250 2.1.5 Ok\r\n"));
  }
  for (const Step& s : {client("DATA\r\n"), upstream("354 go\r\n"), client("hi\r\n.\r\n"),
                        upstream("250 2.0.0 Ok: queued\r\n")})
    script.push_back(s);
  const Result r = run(script, whole, test_options());
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  ASSERT_FALSE(m.recipients.empty());
  EXPECT_EQ(m.recipients.back().position + 1, m.recipients.size());  // no gap: all at the end
  ASSERT_TRUE(m.recipients_left_out);
  const RecipientsLeftOut left_out = *m.recipients_left_out;
  EXPECT_EQ(m.recipients.size() + left_out.rcpts, 600u);
  EXPECT_EQ(left_out.accepted, left_out.rcpts);
  std::vector<const Event*> notes;
  for (const Event& e : r.events)
    if (e.note.starts_with(recipients_left_out_note_prefix)) notes.push_back(&e);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]->direction, Direction::mailtap_note);
  EXPECT_EQ(notes[0]->transaction, m.transaction);
  EXPECT_TRUE(notes[0]->note.starts_with("recipients left out: " + std::to_string(left_out.rcpts) +
                                         " RCPTs (" + std::to_string(left_out.rcpts) +
                                         " accepted)"))
      << notes[0]->note;
}

TEST(Dialogue, PipelinedTransactionWithRepliesInOneRead) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply),
      client(
          "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n"),
      upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 End data with "
               "<CR><LF>.<CR><LF>\r\n"),
      client("Subject: hi\r\n\r\nline\r\n..dot\r\n...two\r\n.\r\n"),
      upstream("250 2.0.0 Ok: queued as 4Xyz\r\n"),
  });
  EXPECT_EQ(
      r.upstream_per_step[2],
      "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n");
  EXPECT_TRUE(r.awaiting_reply_per_step[2]);
  EXPECT_FALSE(r.in_data_per_step[2]);
  EXPECT_TRUE(r.in_data_per_step[3]);
  EXPECT_EQ(r.client_per_step[3],
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 End data with "
            "<CR><LF>.<CR><LF>\r\n");
  // On the wire the body stays dot-stuffed.
  EXPECT_EQ(r.upstream_per_step[4], "Subject: hi\r\n\r\nline\r\n..dot\r\n...two\r\n.\r\n");
  EXPECT_FALSE(r.in_data_per_step[4]);
  EXPECT_TRUE(r.awaiting_reply_per_step[4]);
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.mail_from, "MAIL FROM:<a@x.example>");
  ASSERT_EQ(m.recipients.size(), 2u);
  EXPECT_EQ(m.recipients[0].command, "RCPT TO:<b@y.example>");
  EXPECT_EQ(m.recipients[0].reply_code, 250);
  EXPECT_EQ(m.recipients[1].reply_code, 550);
  EXPECT_EQ(m.recipients[1].reply, "550 5.1.1 no such user");
  // The captured body is what the server stores: un-stuffed, without the terminator.
  EXPECT_EQ(m.body, "Subject: hi\r\n\r\nline\r\n.dot\r\n..two\r\n");
  EXPECT_EQ(m.size, m.body.size());
  EXPECT_EQ(m.final_code, 250);
  EXPECT_EQ(m.final_reply, "250 2.0.0 Ok: queued as 4Xyz");
  EXPECT_TRUE(m.sha256_hex.empty());  // the recorder computes it as it stores the body
  EXPECT_FALSE(m.via_bdat);
  expect_bodies_end_at_first_terminator(r);
  EXPECT_FALSE(has_bare_cr_or_lf(r.to_upstream));
}

TEST(Dialogue, DotLinesThatAreNotTerminators) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client(".x\r\n. \r\n..\r\n\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "x\r\n \r\n.\r\n\r\n");
  expect_bodies_end_at_first_terminator(r);
}

TEST(Dialogue, EmptyBody) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client(".\r\nNOOP\r\n"),
      upstream("250 queued\r\n250 noop\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], ".\r\nNOOP\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "");
  expect_bodies_end_at_first_terminator(r);
}

// How many messages a strict RFC 5321 server ends in `wire` (what mailtap sent upstream): lines
// end in CRLF only, every DATA is taken as accepted, and a line "." ends the message.
std::size_t strict_server_message_ends(std::string_view wire) {
  std::size_t ends = 0;
  bool in_data = false;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    const std::size_t eol = wire.find("\r\n", pos);
    if (eol == std::string_view::npos) break;
    std::string_view line = wire.substr(pos, eol - pos);
    pos = eol + 2;
    if (in_data) {
      if (line == ".") {
        in_data = false;
        ++ends;
      }
    } else if (parse_command(line).verb == "DATA") {
      in_data = true;
    }
  }
  return ends;
}

// Every smuggling shape from the CVE-2023-51764 family, between "first line" and a smuggled
// transaction, as an attacker would put them in a body a client relays.
const std::vector<std::string> smuggling_shapes = {
    "\n.\n", "\r.\r", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r\n.\r", "\r\n.\r\r\n", "\r.\n", "\n.\r",
};

const std::string smuggled_commands =
    "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled "
    "body\r\n";

// The issue's attack, in one write behind a pipelined MAIL/RCPT/DATA: the client's message
// ends only at its own CRLF.CRLF, after which it sends QUIT.
Script smuggling_script(std::string_view eol, std::string_view shape) {
  const std::string e(eol);
  // A line ending in a bare CR is complete only when the next byte shows it is not a CRLF, so
  // each reply comes after the client bytes that complete the lines it answers.
  return {
      client("EHLO me" + e + "MAIL FROM:<a@x>" + e + "RCPT TO:<b@y>" + e + "DATA" + e),
      upstream(ehlo_reply),
      upstream("250 ok\r\n250 ok\r\n"),
      client("Subject: outer\r\n\r\nfirst line" + std::string(shape) + smuggled_commands +
             ".\r\nQUIT\r\n"),
      upstream("354 go\r\n"),
      upstream("250 queued 1\r\n"),
      upstream("221 bye\r\n"),
  };
}

bool shape_ends_message(std::string_view shape, std::string_view client_eol) {
  // The shape's own line endings: before the dot and after it.
  auto end_at = [](std::string_view s, std::size_t i) -> std::string_view {
    if (s.substr(i, 2) == "\r\n") return "\r\n";
    return s.substr(i, 1);
  };
  const std::size_t dot = shape.find('.');
  const std::string_view before = shape.substr(0, dot);
  const std::string_view after = end_at(shape, dot + 1);
  auto own = [&](std::string_view e) { return e == "\r\n" || e == client_eol; };
  return own(before) && own(after);
}

TEST(Dialogue, SmugglingShapesCannotEndACrlfClientsMessage) {
  for (const std::string& shape : smuggling_shapes) {
    SCOPED_TRACE(printable(shape));
    const Result r = run_all_splits(smuggling_script("\r\n", shape));
    // Nothing mailtap sends upstream can be read two ways...
    EXPECT_FALSE(has_bare_cr_or_lf(r.to_upstream)) << printable(r.to_upstream);
    // ...and a strict server ends exactly one message, where mailtap and the client do.
    EXPECT_EQ(strict_server_message_ends(r.to_upstream), 1u) << printable(r.to_upstream);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].final_reply, "250 queued 1");
    // The smuggled commands are text of the one message, as the client meant them.
    EXPECT_NE(r.messages[0].body.find("MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>"),
              std::string::npos)
        << printable(r.messages[0].body);
    EXPECT_EQ(find_events(r, Direction::client_to_upstream, EventKind::command).size(), 5u)
        << "EHLO MAIL RCPT DATA QUIT, nothing smuggled";
    ASSERT_TRUE(r.ending);
    EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
    // The shape is recorded with what the client sent and where.
    const std::size_t dot = shape.find('.');
    std::string escaped_shape;
    for (char c : shape) escaped_shape += c == '\r' ? "\\r" : c == '\n' ? "\\n" : ".";
    bool noted = false;
    for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
      if (e->note.rfind(smuggling_shape_note_prefix, 0) == 0) {
        noted = true;
        EXPECT_EQ(e->verb, "DATA");
        EXPECT_NE(e->note.find(" at offset "), std::string::npos) << e->note;
        // The note names the line endings around the lone dot as the client sent them.
        EXPECT_NE(escaped_shape.find(
                      e->note.substr(smuggling_shape_note_prefix.size(),
                                     e->note.find(" at ") - smuggling_shape_note_prefix.size())),
                  std::string::npos)
            << e->note;
      }
    EXPECT_TRUE(noted) << "dot at " << dot;
  }
}

TEST(Dialogue, BareLfAndBareCrClientsEndMessagesWithTheirOwnLineEnds) {
  for (std::string_view eol : {"\n", "\r"}) {
    for (const std::string& shape : smuggling_shapes) {
      SCOPED_TRACE(printable(eol) + " client, shape " + printable(shape));
      const bool ends = shape_ends_message(shape, eol);
      Script script = smuggling_script(eol, shape);
      if (ends) {
        // The client ended its message at the shape: the rest is a second transaction.
        // "\r\n.\r\r\n" from a bare-CR client: "." ends at the bare CR, then an empty line.
        const bool empty_line = shape == "\r\n.\r\r\n";
        script.back() = upstream(std::string(empty_line ? "500 5.5.2 empty\r\n" : "") +
                                 "250 ok\r\n250 ok\r\n354 go\r\n");
        script.push_back(upstream("250 queued 2\r\n"));
        script.push_back(upstream("221 bye\r\n"));
      }
      const Result r = run_all_splits(script);
      EXPECT_FALSE(has_bare_cr_or_lf(r.to_upstream)) << printable(r.to_upstream);
      const std::size_t messages = ends ? 2 : 1;
      EXPECT_EQ(strict_server_message_ends(r.to_upstream), messages) << printable(r.to_upstream);
      ASSERT_EQ(r.messages.size(), messages);
      ASSERT_TRUE(r.ending);
      EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
    }
  }
}

// A CRLF written through a text-mode stream arrives as "\r\r\n": one line ending to the client
// and to a strict server (which keeps the CR in the line), not a line and an empty one (which
// would end the header there and move the rest of it into the body). A "." line ended so is
// still text, and a "." line after one still ends the message (its CRLF is real).
TEST(Dialogue, CrBeforeCrlfInACrlfClientsBodyIsOneLineEnding) {
  const std::string head = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n";
  const Result r = run_all_splits({
      client(ehlo + head),
      upstream(ehlo_reply),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("Subject: s\r\r\nX-Second: h\r\r\n\r\nbody\r\n.\r\r\nlast\r\r\n.\r\nQUIT\r\n"),
      upstream("250 queued 1\r\n"),
      upstream("221 bye\r\n"),
  });
  EXPECT_FALSE(has_bare_cr_or_lf(r.to_upstream)) << printable(r.to_upstream);
  EXPECT_EQ(strict_server_message_ends(r.to_upstream), 1u) << printable(r.to_upstream);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "Subject: s\r\nX-Second: h\r\n\r\nbody\r\n.\r\nlast\r\n");
  EXPECT_EQ(r.messages[0].final_reply, "250 queued 1");
  std::vector<std::string> notes;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
    notes.push_back(e->note);
  ASSERT_EQ(notes.size(), 2u) << ::testing::PrintToString(notes);
  EXPECT_TRUE(
      notes[0].starts_with(std::string(smuggling_shape_note_prefix) + "\\r\\n.\\r\\r\\n at"))
      << notes[0];
  EXPECT_EQ(notes[1], "CR before CRLF removed (4x)");
}

// A client that writes every CRLF through a text-mode stream sends "\r\r\n" for each: its
// commands are one line each (one reply each, as from Postfix, which strips the CRs), its
// header stays whole, and its own "\r\r\n.\r\r\n" ends its message.
TEST(Dialogue, ATextModeClientsCrCrLfLinesAreItsLines) {
  const Result r = run_all_splits({
      client("EHLO me\r\r\nMAIL FROM:<a@x>\r\r\nRCPT TO:<b@y>\r\r\nDATA\r\r\n"),
      upstream(ehlo_reply),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("Subject: s\r\r\nX-Second: h\r\r\n\r\r\nbody\r\r\n.\r\r\nQUIT\r\r\n"),
      upstream("250 queued 1\r\n"),
      upstream("221 bye\r\n"),
  });
  EXPECT_EQ(r.to_upstream,
            "EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: s\r\nX-Second: "
            "h\r\n\r\nbody\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(r.to_client.find("500"), std::string::npos) << printable(r.to_client);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "Subject: s\r\nX-Second: h\r\n\r\nbody\r\n");
  EXPECT_EQ(r.messages[0].final_reply, "250 queued 1");
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
  std::vector<std::string> notes;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
    if (e->note.starts_with("CR before CRLF")) notes.push_back(e->verb + ": " + e->note);
  EXPECT_EQ(notes, (std::vector<std::string>{
                       "EHLO: CR before CRLF removed (1x)", "MAIL: CR before CRLF removed (1x)",
                       "RCPT: CR before CRLF removed (1x)", "DATA: CR before CRLF removed (1x)",
                       "DATA: CR before CRLF removed (5x)", "QUIT: CR before CRLF removed (1x)"}));
}

// A bare-CR client's line ends at its CR whatever comes next, so its end of data "\r.\r" is
// acted on at once: a client that waits for the 250, or closes, gets its message delivered. An
// LF that comes after the CR is the rest of that line ending, not an empty command line.
TEST(Dialogue, ABareCrClientsEndOfDataIsNotHeldForTheNextOctet) {
  for (const bool lf_after : {false, true}) {
    SCOPED_TRACE(lf_after ? "an LF follows" : "the client closes");
    Script script = {
        client("EHLO me\rMAIL FROM:<a@x>\rRCPT TO:<b@y>\rDATA\r"),
        upstream(ehlo_reply),
        upstream("250 ok\r\n250 ok\r\n"),
        client("Subject: s\r\rbody\r\nmore\r.\r"),
        upstream("354 go\r\n"),
        upstream("250 queued 1\r\n"),
    };
    if (lf_after) {
      script.push_back(client("\nQUIT\r\n"));
      script.push_back(upstream("221 bye\r\n"));
    } else {
      script.push_back(client_eof());
    }
    const Result r = run_all_splits(script);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].final_reply, "250 queued 1");
    EXPECT_EQ(r.messages[0].body, "Subject: s\r\n\r\nbody\r\nmore\r\n");
    // However the reads fell (run_all_splits compares them), four bare CRs: the DATA line's and
    // the body's three; the end of data's is not counted, as it cannot be when it is acted on
    // before the next octet comes.
    std::uint64_t counted = 0;
    for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
      if (e->verb == "DATA") counted += std::stoull(e->note.substr(e->note.find('(') + 1));
    EXPECT_EQ(counted, 4u);
    EXPECT_TRUE(r.upstream_per_step[4].ends_with("more\r\n.\r\n"))
        << printable(r.upstream_per_step[4]);
    EXPECT_NE(r.to_client.find("250 queued 1\r\n"), std::string::npos);
    if (lf_after) {
      EXPECT_TRUE(r.to_upstream.ends_with(".\r\nQUIT\r\n")) << printable(r.to_upstream);
      EXPECT_EQ(r.to_client.find("500"), std::string::npos) << printable(r.to_client);
      ASSERT_TRUE(r.ending);
      EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
    }
  }
}

// Telnet's CR NUL is not a bare-CR client's line ending: for a client whose DATA line ended in
// a bare CR, "\r\0.\r" is a bare CR, then the text line "\0.", so the smuggled commands stay
// text of its one message (the NUL is data, kept).
TEST(Dialogue, CrNulDotIsTextForABareCrClient) {
  const Result r = run_all_splits(smuggling_script("\r", "\r\0.\r"s));
  EXPECT_FALSE(has_bare_cr_or_lf(r.to_upstream)) << printable(r.to_upstream);
  EXPECT_EQ(strict_server_message_ends(r.to_upstream), 1u) << printable(r.to_upstream);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_NE(r.messages[0].body.find("first line\r\n\0.\r\nMAIL FROM:<evil@x>"s), std::string::npos)
      << printable(r.messages[0].body);
}

// A telnet NVT (its DATA line ended in CR NUL) ends its message with its own "\r\0.\r\0"; a
// bare CR is not its line ending (telnet sends CR as CR NUL or CR LF), so "\r.\r" is text.
TEST(Dialogue, ACrNulClientsOwnLineEndIsCrNulNotABareCr) {
  const Result text = run_all_splits(smuggling_script("\r\0"s, "\r.\r"));
  EXPECT_EQ(strict_server_message_ends(text.to_upstream), 1u) << printable(text.to_upstream);
  ASSERT_EQ(text.messages.size(), 1u);
  EXPECT_NE(text.messages[0].body.find("first line\r\n.\r\nMAIL FROM:<evil@x>"), std::string::npos)
      << printable(text.messages[0].body);

  Script script = smuggling_script("\r\0"s, "\r\0.\r\0"s);
  script.back() = upstream("250 ok\r\n250 ok\r\n354 go\r\n");
  script.push_back(upstream("250 queued 2\r\n"));
  script.push_back(upstream("221 bye\r\n"));
  const Result ends = run_all_splits(script);
  EXPECT_EQ(strict_server_message_ends(ends.to_upstream), 2u) << printable(ends.to_upstream);
  ASSERT_EQ(ends.messages.size(), 2u);
  EXPECT_EQ(ends.messages[0].body, "Subject: outer\r\n\r\nfirst line\r\n");
}

// How many lines of `wire` a server that reads lines as C strings (OpenSMTPD: strcmp(line,
// ".")) takes as ".", the end of data, where a strict server reads on: those that begin ".\0".
std::size_t c_string_only_message_ends(std::string_view wire) {
  std::size_t ends = 0;
  for (std::size_t pos = 0; pos < wire.size();) {
    if (wire.substr(pos, 2) == ".\0"sv) ++ends;
    const std::size_t eol = wire.find("\r\n", pos);
    if (eol == std::string_view::npos) break;
    pos = eol + 2;
  }
  return ends;
}

// A body line "." then NUL after one of the client's own line endings ends the message for a
// C-string server and not for an RFC one: refused, never forwarded, for every kind of client,
// whole, byte by byte and split anywhere (a lone "." is held until the NUL shows what it is).
TEST(Dialogue, ADotNulBodyLineEndsTheSessionWithoutForwardingIt) {
  for (std::string_view eol : {"\r\n"sv, "\n"sv, "\r"sv, "\r\0"sv}) {
    for (const std::string& before : {"\r\n"s, std::string(eol)}) {
      SCOPED_TRACE(printable(eol) + " client, line ending before the dot " + printable(before));
      const Result r = run_all_splits(smuggling_script(eol, before + ".\0"s));
      EXPECT_EQ(c_string_only_message_ends(r.to_upstream), 0u) << printable(r.to_upstream);
      EXPECT_EQ(strict_server_message_ends(r.to_upstream), 0u) << printable(r.to_upstream);
      EXPECT_EQ(r.to_upstream.find("evil"), std::string::npos) << printable(r.to_upstream);
      EXPECT_TRUE(r.abandon);  // closed without an end of data: the server discards the message
      EXPECT_TRUE(r.messages.empty());
      ASSERT_TRUE(r.ending);
      EXPECT_EQ(r.ending->kind, Ending::Kind::error);
      EXPECT_NE(r.ending->reason.find("NUL"), std::string::npos) << r.ending->reason;
      const std::size_t reply = r.to_client.find("421 4.6.0 mailtap: ");
      ASSERT_NE(reply, std::string::npos) << printable(r.to_client);
      EXPECT_NE(r.to_client.find("SMTP smuggling", reply), std::string::npos);
      EXPECT_NE(r.to_client.find("Remove the NUL", reply), std::string::npos);
      const auto refused = find_events(r, Direction::client_to_mailtap, EventKind::error);
      ASSERT_EQ(refused.size(), 1u);
      EXPECT_EQ(refused[0]->bytes, ".\0"s);
      EXPECT_EQ(refused[0]->verb, "DATA");
      EXPECT_NE(refused[0]->note.find("at offset 30 of the message"), std::string::npos)
          << refused[0]->note;
      for (const Event& e : r.events) EXPECT_EQ(e.bytes.find("evil"), std::string::npos);
      // Every octet after the recorded ".\0" is counted as discarded, the rest of the refused
      // line included.
      EXPECT_EQ(r.client_octets_discarded, smuggled_commands.size() + ".\r\nQUIT\r\n"sv.size());
    }
  }
}

// After a line ending that is not the client's own the dot is doubled: "..\0" is no end for a
// C-string server either, and the line stays text.
TEST(Dialogue, ADotNulAfterAForeignLineEndIsText) {
  const Result r = run_all_splits(smuggling_script("\r\n", "\n.\0"s));
  EXPECT_EQ(c_string_only_message_ends(r.to_upstream), 0u) << printable(r.to_upstream);
  EXPECT_NE(r.to_upstream.find("first line\r\n..\0MAIL FROM:<evil@x>"s), std::string::npos)
      << printable(r.to_upstream);
  ASSERT_EQ(r.messages.size(), 1u);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
}

TEST(Dialogue, LeadingDotAfterAForeignLineEndIsText) {
  // A CRLF client's line "a<LF>.foo": after mailtap sends the LF as CRLF, ".foo" starts a line,
  // and a server would drop its dot; doubled, the message keeps it.
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("a\n.foo\r\n..bar\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "a\r\n..foo\r\n..bar\r\n.\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "a\r\n.foo\r\n.bar\r\n");
  EXPECT_EQ(r.body_notes(),
            "bare LF normalised to CRLF=1;leading dot doubled after a line ending that cannot "
            "end the message=1;");
}

// Each body note (rewrite counts, a smuggling shape) comes after the data event holding the
// text it describes, however the body was split into reads (recording.md), never between the
// 354 and the text; and, like that text, it names its message.
void expect_body_notes_follow_their_text(const Result& r) {
  std::uint64_t body_of = 0;  // the transaction of the last data event
  for (std::size_t i = 0; i < r.events.size(); ++i) {
    const Event& e = r.events[i];
    if (e.kind == EventKind::data) body_of = e.transaction;
    if (e.direction != Direction::mailtap_note || e.verb != "DATA") continue;
    SCOPED_TRACE(printable(e.note));
    ASSERT_GT(i, 0u);
    const Event& before = r.events[i - 1];
    EXPECT_TRUE(before.kind == EventKind::data ||
                (before.direction == Direction::mailtap_note && before.verb == "DATA"))
        << "after " << to_string(before.kind) << " " << printable(before.bytes);
    EXPECT_NE(e.transaction, 0u);
    EXPECT_EQ(e.transaction, body_of);
  }
}

TEST(Dialogue, BodyNotesFollowTheTextTheyDescribeAndNameTheirMessage) {
  const std::string transaction = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n";
  const Script script = {
      client(transaction),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("a\nb\n"),
      client("c\n.\nd\r\n.\r\n"),
      upstream("250 queued 1\r\n"),
      client(transaction),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("e\r\n.\nf\r\n.\r\n"),
      upstream("250 queued 2\r\n"),
  };
  const Result whole_run = run_all_splits(script);
  ASSERT_EQ(whole_run.messages.size(), 2u);
  EXPECT_EQ(whole_run.body_notes(),
            "bare LF normalised to CRLF=5;smuggling shape \\n.\\n at offset 9 of the message: sent "
            "as \"..\", so it does not end the message (the DATA line ended in CRLF; only that or "
            "CRLF, around a lone \".\", ends it)=1;smuggling shape \\r\\n.\\n at offset 3 of the "
            "message: sent as \"..\", so it does not end the message (the DATA line ended in CRLF; "
            "only that or CRLF, around a lone \".\", ends it)=1;");
  // Each message's notes name it.
  std::set<std::uint64_t> named;
  for (const Event& e : whole_run.events)
    if (e.direction == Direction::mailtap_note && e.verb == "DATA") named.insert(e.transaction);
  EXPECT_EQ(named, (std::set<std::uint64_t>{whole_run.messages[0].transaction,
                                            whole_run.messages[1].transaction}));
  std::size_t longest = 0;
  for (const Step& step : script) longest = std::max(longest, step.bytes.size());
  for (std::size_t p = 0; p <= longest; ++p) {
    SCOPED_TRACE(p == 0 ? "whole and one byte at a time" : "split at " + std::to_string(p));
    auto at = [p](std::string_view s) {
      if (p == 0 || p >= s.size()) return std::vector<std::string_view>{s};
      return std::vector<std::string_view>{s.substr(0, p), s.substr(p)};
    };
    expect_body_notes_follow_their_text(run(script, at, test_options()));
    if (p == 0)
      expect_body_notes_follow_their_text(run(
          script,
          [](std::string_view s) {
            std::vector<std::string_view> out;
            for (std::size_t i = 0; i < s.size(); ++i) out.push_back(s.substr(i, 1));
            return out;
          },
          test_options()));
  }
}

TEST(Dialogue, BodyBytesAre8BitDataNotTelnet) {
  // 0xFF 0xF0 is Latin-1 "ÿð" in a body, not telnet's IAC SE.
  const std::string body = "caf\xff\xf0 \xff\xff\r\n";
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client(body + ".\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], body + ".\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, body);
}

// Telnet's "CR NUL" is a line ending only for a client whose own line ending it is (the DATA
// line ended so): for a CRLF or bare-LF client a NUL after a bare CR is body data, like any
// other NUL, and only the bare CR is rewritten.
TEST(Dialogue, ANulAfterABareCrInABodyIsDataUnlessCrNulIsTheClientsLineEnd) {
  struct Case {
    std::string eol;       // the client's own line ending
    std::string upstream;  // what the body "A\r\0B" becomes
  };
  for (const Case& c :
       {Case{"\r\n", "A\r\n\0B\r\n"s}, Case{"\n", "A\r\n\0B\r\n"s}, Case{"\r\0"s, "A\r\nB\r\n"}}) {
    SCOPED_TRACE(printable(c.eol) + " client");
    const Result r = run_all_splits({
        client("EHLO a" + c.eol),
        upstream("250 a\r\n"),
        client("MAIL FROM:<a@x>" + c.eol + "RCPT TO:<b@y>" + c.eol + "DATA" + c.eol),
        upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
        client("A\r\0B"s + c.eol + "." + c.eol),
        upstream("250 queued\r\n"),
    });
    EXPECT_EQ(r.upstream_per_step[4], c.upstream + ".\r\n");
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].body, c.upstream);
    // One bare CR in the body (the client's own line ends are counted too when they are bare).
    EXPECT_NE(r.body_notes().find("bare CR normalised to CRLF="), std::string::npos);
  }
}

// BDAT chunks are counted octets: a CR NUL in one is relayed and recorded as it is.
TEST(Dialogue, ACrNulInABdatChunkIsRelayedAsItIs) {
  const std::string chunk = "A\r\0B\r\n"s;
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 6 LAST\r\n" + chunk),
      upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 6 LAST\r\n" + chunk);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, chunk);
}

TEST(Dialogue, BareLfClientGetsTheSameTransaction) {
  // nc without -C: every line ends in a bare LF.
  const Result r = run_all_splits({
      client("EHLO me\n"),
      upstream(ehlo_reply),
      client("MAIL FROM:<a@x>\nRCPT TO:<b@y>\nDATA\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("Subject: t\n\nbody\n.\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(
      r.to_upstream,
      "EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "Subject: t\r\n\r\nbody\r\n");
  auto rewrites = find_events(r, Direction::mailtap_note, EventKind::rewrite);
  ASSERT_GE(rewrites.size(), 4u);
  EXPECT_EQ(rewrites[0]->verb, "EHLO");
  EXPECT_EQ(rewrites[0]->note, "bare LF normalised to CRLF (1x)");
  // Four in the body and one on the DATA command line itself.
  EXPECT_EQ(r.body_notes(), "bare LF normalised to CRLF=5;");
}

TEST(Dialogue, DataRejectedMeansFollowingBytesAreCommands) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nRSET\r\n"),
      upstream("250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n"),
      upstream("250 reset\r\n"),
  });
  // DATA is a sync point: RSET waits until the server has said what the next bytes are.
  EXPECT_EQ(r.upstream_per_step[0], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  EXPECT_EQ(r.upstream_per_step[1], "RSET\r\n");
  EXPECT_FALSE(r.in_data_per_step[1]);
  EXPECT_EQ(r.client_per_step[2], "250 reset\r\n");
  EXPECT_TRUE(r.messages.empty());
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[3]->verb, "RSET");
}

TEST(Dialogue, LongBodyLineIsForwardedAndNotedOnce) {
  const std::string long_line(1500, 'x');
  const Result r = run_all_splits(
      {
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
          upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
          client(long_line + "\r\n" + long_line + "\r\n.\r\n"),
          upstream("250 queued\r\n"),
      },
      test_options(), 97);
  EXPECT_EQ(r.upstream_per_step[2], long_line + "\r\n" + long_line + "\r\n.\r\n");
  EXPECT_EQ(r.body_notes(),
            "message line longer than 1000 octets with CRLF (RFC 5321 §4.5.3.1.6); forwarded "
            "unchanged=1;");
}

TEST(Dialogue, RsetAndEhloDropTheTransaction) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRSET\r\nDATA\r\n"),
      upstream("250 ok\r\n250 reset\r\n354 go\r\n"),
      client("x\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_TRUE(r.messages.empty());  // no transaction mailtap could attribute the body to
}

// A pipelining client (or a person pasting lines into nc) sends commands before the replies
// that decide which transaction they belong to. Every message the server accepts is recorded,
// with the recipients and body the server gave it.
TEST(Dialogue, PipelinedRsetAndMailRecordTheNewTransaction) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<bob@y>\r\nRSET\r\nMAIL FROM:<a2@x>\r\nRCPT "
             "TO:<carol@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
      client("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"),
      upstream("250 queued as X\r\n221 bye\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.transaction, 2u);
  EXPECT_EQ(m.mail_from, "MAIL FROM:<a2@x>");
  ASSERT_EQ(m.recipients.size(), 1u);
  EXPECT_EQ(m.recipients[0].command, "RCPT TO:<carol@y>");
  EXPECT_EQ(m.body, "Subject: x\r\n\r\nhi\r\n");
  EXPECT_EQ(m.size, m.body.size());
  EXPECT_EQ(m.final_reply, "250 queued as X");
}

TEST(Dialogue, ARefusedMailThenAPipelinedMailRecordsTheSecond) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x> FOO=bar\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("555 5.5.4 Unsupported option: FOO=bar\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
      client("hi\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].transaction, 2u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<a@x>");
  ASSERT_EQ(r.messages[0].recipients.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "hi\r\n");
}

// RFC 5321 §4.1.4: the server refuses a MAIL inside a transaction (503) and goes on with the
// open one, which keeps the RCPT that follows.
TEST(Dialogue, ANestedMailTheServerRefusesLeavesTheOpenTransactionItsOwn) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n503 5.5.1 Error: nested MAIL command\r\n250 ok\r\n354 go\r\n"),
      client("hi\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].transaction, 1u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<a@x>");
  ASSERT_EQ(r.messages[0].recipients.size(), 2u);
  EXPECT_EQ(r.messages[0].recipients[1].command, "RCPT TO:<d@y>");
  EXPECT_EQ(r.messages[0].body, "hi\r\n");
}

// "RSET x" is refused (501): the transaction goes on, and the MAIL behind it is nested.
TEST(Dialogue, ARefusedRsetLeavesTheTransactionOpen) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET x\r\nMAIL FROM:<c@x>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n501 5.5.4 Syntax: RSET\r\n503 nested\r\n354 go\r\n"),
      client("hi\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<a@x>");
  EXPECT_EQ(r.messages[0].body, "hi\r\n");
}

// A refused DATA leaves the transaction open (RFC 5321 §3.3); an RSET pipelined with the next
// transaction closes it.
TEST(Dialogue, ARefusedDataThenRsetAndANewTransaction) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n550 no such user\r\n554 5.5.1 no valid recipients\r\n"),
      client("RSET\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"),
      upstream("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
      client("hi\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].transaction, 2u);
  ASSERT_EQ(r.messages[0].recipients.size(), 1u);
  EXPECT_EQ(r.messages[0].recipients[0].command, "RCPT TO:<d@y>");
}

// The next transaction pipelined right behind an end of data: the final reply ends the first,
// the replies after it belong to the second.
TEST(Dialogue, TransactionsPipelinedBehindAnEndOfData) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("one\r\n.\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"),
      upstream("250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
      client("two\r\n.\r\n"),
      upstream("550 rejected\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].body, "one\r\n");
  EXPECT_EQ(r.messages[0].recipients.size(), 1u);
  EXPECT_EQ(r.messages[0].final_reply, "250 queued 1");
  EXPECT_EQ(r.messages[1].mail_from, "MAIL FROM:<c@x>");
  ASSERT_EQ(r.messages[1].recipients.size(), 1u);
  EXPECT_EQ(r.messages[1].recipients[0].command, "RCPT TO:<d@y>");
  EXPECT_EQ(r.messages[1].body, "two\r\n");
  EXPECT_EQ(r.messages[1].final_code, 550);
}

TEST(Dialogue, EhloAfterAMailDropsItsTransaction) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n" + ehlo),
      upstream("250 ok\r\n250 ok\r\n" + ehlo_reply),
      client("MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("hi\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<c@x>");
  EXPECT_EQ(r.messages[0].recipients.size(), 1u);
}

// ---- AUTH ----------------------------------------------------------------------------------

const std::string password = "s3cret-pw";
const std::string plain_response = base64_encode("\0alice\0s3cret-pw"s);

TEST(Dialogue, AuthPlainWithInitialResponseIsRedacted) {
  const Result r = run_all_splits({
      client("AUTH PLAIN " + plain_response + "\r\nNOOP\r\n"),
      upstream("235 2.7.0 Authentication successful\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[0], "AUTH PLAIN " + plain_response + "\r\n");  // AUTH is sync
  EXPECT_EQ(r.upstream_per_step[1], "NOOP\r\n");
  expect_secret_absent(r, plain_response);
  expect_secret_absent(r, password);
  EXPECT_EQ(r.auth_user, "alice");
  auto auth = find_events(r, Direction::client_to_upstream, EventKind::auth);
  ASSERT_EQ(auth.size(), 1u);
  EXPECT_TRUE(auth[0]->redacted);
  EXPECT_EQ(auth[0]->wire_size, 11 + plain_response.size() + 2);
}

TEST(Dialogue, AuthLoginTwoStep) {
  const std::string user = base64_encode("alice");
  const std::string pass = base64_encode(password);
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client(user + "\r\n"),
      upstream("334 UGFzc3dvcmQ6\r\n"),
      client(pass + "\r\n"),
      upstream("235 2.7.0 ok\r\n"),
      client("NOOP\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "AUTH LOGIN\r\n" + user + "\r\n" + pass + "\r\nNOOP\r\n");
  EXPECT_EQ(r.client_per_step[1], "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(r.client_per_step[3], "334 UGFzc3dvcmQ6\r\n");
  expect_secret_absent(r, pass);
  expect_secret_absent(r, password);
  EXPECT_EQ(r.auth_user, "alice");
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0]->verb, "NOOP");
}

TEST(Dialogue, AuthCancelledWithStar) {
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client("*\r\nNOOP\r\n"),
      upstream("501 5.7.0 Authentication aborted\r\n"),
      upstream("250 ok\r\n"),
  });
  // The SASL response is a sync point too: NOOP waits for the verdict on "*".
  EXPECT_EQ(r.upstream_per_step[2], "*\r\n");
  EXPECT_EQ(r.upstream_per_step[3], "NOOP\r\n");
  EXPECT_EQ(r.auth_user, "");
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0]->verb, "NOOP");
}

TEST(Dialogue, AuthRejectedNextLineIsACommand) {
  const Result r = run_all_splits({
      client("AUTH PLAIN " + plain_response + "\r\n"),
      upstream("535 5.7.8 Authentication failed\r\n"),
      client("NOOP\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "NOOP\r\n");
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0]->verb, "NOOP");
  EXPECT_EQ(r.auth_user, "");
  expect_secret_absent(r, plain_response);
  expect_secret_absent(r, password);
}

// The 500 mailtap answers a line it takes for a SASL response of a refused AUTH with.
constexpr std::string_view kSaslResponseRefused =
    "500 5.5.2 mailtap: line taken for a SASL response after a refused AUTH; not forwarded "
    "(send a command, or AUTH again)\r\n";

TEST(Dialogue, ResponsesPipelinedBehindARejectedAuthAreNeitherRecordedNorForwarded) {
  // nc users paste the whole exchange; if the server refuses the AUTH, it would read the user
  // and password lines as commands (and might log them): mailtap answers them itself.
  const std::string user = base64_encode("alice");
  const std::string pass = base64_encode(password);
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n" + user + "\r\n" + pass + "\r\nNOOP\r\n"),
      upstream("504 5.5.4 mechanism not available\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[0], "AUTH LOGIN\r\n");
  EXPECT_EQ(r.upstream_per_step[1], "NOOP\r\n");
  EXPECT_EQ(r.to_client, "504 5.5.4 mechanism not available\r\n" +
                             std::string(kSaslResponseRefused) + std::string(kSaslResponseRefused) +
                             "250 ok\r\n");
  expect_secret_absent(r, password);
  expect_secret_absent(r, pass);
  std::string upper_pass = pass;  // a verb is recorded upper-cased
  for (char& c : upper_pass) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  expect_secret_absent(r, upper_pass);
  auto kept = find_events(r, Direction::client_to_mailtap, EventKind::command);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_TRUE(kept[0]->redacted);
  EXPECT_TRUE(kept[1]->redacted);
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0]->verb, "NOOP");
  EXPECT_FALSE(commands[0]->redacted);
}

// Only the lines up to the first verb are answered by mailtap: which ones those are does not
// depend on the reads, as what reaches the server must not (fuzz_dialogue's check).
TEST(Dialogue, ALineBehindTheFirstVerbAfterARejectedAuthIsRelayed) {
  const std::string pass = base64_encode(password);
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n" + pass + "\r\nNOOP\r\n" + pass + "\r\n"),
      upstream("504 5.5.4 mechanism not available\r\n"),
      upstream("250 ok\r\n500 5.5.2 unknown\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "AUTH LOGIN\r\nNOOP\r\n" + pass + "\r\n");
  EXPECT_EQ(r.to_client, "504 5.5.4 mechanism not available\r\n" +
                             std::string(kSaslResponseRefused) + "250 ok\r\n500 5.5.2 unknown\r\n");
}

TEST(Dialogue, ResponsesTypedAfterARejectedAuthAreNotRecordedEither) {
  // The same keystrokes as above, but the person waited for the refusal before pasting: the
  // record must not depend on when the bytes arrived. The first line with a verb ends it.
  const std::string user = base64_encode("alice");
  const std::string pass = base64_encode(password);
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("504 5.5.4 mechanism not available\r\n"),
      client(user + "\r\n"),
      client(pass + "\r\n"),
      client("NOOP\r\nHELLO\r\n"),
      upstream("250 ok\r\n500 5.5.2 unknown\r\n"),
  });
  expect_secret_absent(r, password);
  expect_secret_absent(r, pass);
  EXPECT_EQ(r.to_upstream, "AUTH LOGIN\r\nNOOP\r\nHELLO\r\n");
  auto kept = find_events(r, Direction::client_to_mailtap, EventKind::command);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_TRUE(kept[0]->redacted);
  EXPECT_TRUE(kept[1]->redacted);
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0]->verb, "NOOP");
  EXPECT_FALSE(commands[1]->redacted);  // after a verb, lines are commands again
  EXPECT_EQ(commands[1]->verb, "HELLO");
}

TEST(Dialogue, ResponsesBehindAnAuthLineRefusedByMailtapAreNotRecorded) {
  // mailtap refuses the AUTH line itself (500: over the limit, or a NUL byte in it): the lines
  // pasted behind it are its SASL responses all the same.
  DialogueOptions o = test_options();
  o.max_auth_line = 64;
  const std::string pass = base64_encode(password);
  for (const auto& [auth, refusal] :
       {std::pair{"AUTH LOGIN " + std::string(70, 'A'), "500 5.5.2 mailtap: line too long"},
        std::pair{"AUTH LOGIN \0"s, "500 5.5.2 mailtap: NUL byte in command line"}}) {
    SCOPED_TRACE(refusal);
    const Result r = run_all_splits(
        {
            client(auth + "\r\n" + pass + "\r\nNOOP\r\n"),
            upstream("250 ok\r\n"),
        },
        o);
    EXPECT_EQ(r.client_per_step[0].rfind(refusal, 0), 0u) << r.client_per_step[0];
    EXPECT_NE(r.client_per_step[0].find(kSaslResponseRefused), std::string::npos)
        << r.client_per_step[0];
    EXPECT_EQ(r.to_upstream, "NOOP\r\n");
    expect_secret_absent(r, pass);
  }
}

TEST(Dialogue, ACredentialPastedAsACommandIsNotRecorded) {
  // "AUTH PLAIN " forgotten, or a PLAIN blob pasted behind a mistyped mechanism: the server
  // reads a command, and the line is the password all the same.
  const std::string xoauth2 = base64_encode(
      "user=carol@gmail.com\x01"
      "auth=Bearer ya29.s3cret-pw\x01\x01");
  const Result r = run_all_splits({
      client(plain_response + "\r\n"),
      upstream("500 5.5.2 Error: command not recognized\r\n"),
      client(xoauth2 + "\r\nNOOP\r\n"),
      upstream("500 5.5.2 Error: command not recognized\r\n250 ok\r\n"),
  });
  EXPECT_EQ(r.to_upstream, plain_response + "\r\n" + xoauth2 + "\r\nNOOP\r\n");
  expect_secret_absent(r, plain_response);
  expect_secret_absent(r, xoauth2);
  expect_secret_absent(r, password);
  for (std::string upper : {plain_response, xoauth2}) {  // a verb is recorded upper-cased
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    expect_secret_absent(r, upper);
  }
  auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_TRUE(commands[0]->redacted);
  EXPECT_TRUE(commands[1]->redacted);
  EXPECT_FALSE(commands[2]->redacted);
}

TEST(Dialogue, AuthWithOddSeparatorsIsStillTreatedAsAuth) {
  // A tokenizing server (Postfix) reads these as AUTH; mailtap must too, or it would record the
  // secret as an ordinary command and miss the 334 exchange.
  const std::string pass = base64_encode(password);
  for (std::string_view verb : {" AUTH PLAIN ", "AUTH\tPLAIN ", "auth  PLAIN "}) {
    SCOPED_TRACE(printable(verb));
    const Result r = run_all_splits({
        client(std::string(verb) + plain_response + "\r\n"),
        upstream("235 ok\r\n"),
    });
    expect_secret_absent(r, plain_response);
    expect_secret_absent(r, password);
  }
  const Result r = run_all_splits({
      client("\tAUTH\tLOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client(base64_encode("alice") + "\r\n"),
      upstream("334 UGFzc3dvcmQ6\r\n"),
      client(pass + "\r\n"),
      upstream("235 ok\r\n"),
  });
  expect_secret_absent(r, pass);
  expect_secret_absent(r, password);
}

TEST(Dialogue, OverLongSaslResponseIsCancelled) {
  const std::string huge(13000, 'A');
  const Result r = run_all_splits(
      {
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
          client(huge + "\r\n"),
          upstream("501 5.7.0 aborted\r\n"),
      },
      test_options(), 509);
  EXPECT_EQ(r.upstream_per_step[2], "*\r\n");
  EXPECT_EQ(r.client_per_step[3], "501 5.7.0 aborted\r\n");
  expect_secret_absent(r, std::string(100, 'A'));
}

// ---- BDAT ----------------------------------------------------------------------------------

TEST(Dialogue, BdatChunkIsRelayedVerbatimWhenChunkingWasAdvertised) {
  const std::string chunk = "bin\r\n.\r\n\0\n\rend\xff\xfb\x01."s;
  const std::string commands =
      "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(chunk.size()) + " LAST\r\n";
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client(commands + chunk + "NOOP\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n250 noop\r\n"),
  });
  EXPECT_EQ(r.client_per_step[1], "250-up.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
  // Binary-safe: no normalisation, no telnet handling, no end-of-data search inside a chunk.
  EXPECT_EQ(r.upstream_per_step[2], commands + chunk + "NOOP\r\n");
  EXPECT_FALSE(r.in_data_per_step[2]);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, chunk);
  EXPECT_TRUE(r.messages[0].via_bdat);
  EXPECT_EQ(r.messages[0].final_reply, "250 2.0.0 queued");
  auto chunks = r.merged_events();
  auto it = std::find_if(chunks.begin(), chunks.end(),
                         [](const Event& e) { return e.kind == EventKind::bdat_chunk; });
  ASSERT_NE(it, chunks.end());
  EXPECT_EQ(it->bytes, chunk);
  EXPECT_EQ(it->verb, "BDAT");
}

TEST(Dialogue, BdatChunksThenLastCompleteAMessage) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 4\r\nabcdBDAT 3 LAST\r\nefg"),
      upstream("250 ok\r\n250 ok\r\n250 4 octets\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_TRUE(r.messages.empty() == false);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "abcdefg");
  EXPECT_EQ(r.messages[0].final_reply, "250 queued");
}

TEST(Dialogue, BdatZeroLast) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nabBDAT 0 LAST\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 2 octets\r\n"),
      upstream("250 queued\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "ab");
}

// A BDAT chunk goes upstream before the replies to the commands ahead of it, so it is recorded
// for the transaction the server will have open. When those replies decide that, BDAT waits.
TEST(Dialogue, BdatPipelinedBehindRsetAndMailBelongsToTheNewTransaction) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\nMAIL FROM:<c@x>\r\nRCPT "
             "TO:<d@y>\r\nBDAT 3 LAST\r\nabc"),
      upstream("250 ok\r\n250 ok\r\n250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n"),
  });
  // Not held: whatever the replies, the chunk is the second MAIL's or nobody's.
  EXPECT_EQ(r.upstream_per_step[2],
            "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\nMAIL "
            "FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 3 LAST\r\nabc");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].transaction, 2u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<c@x>");
  ASSERT_EQ(r.messages[0].recipients.size(), 1u);
  EXPECT_EQ(r.messages[0].recipients[0].command, "RCPT TO:<d@y>");
  EXPECT_EQ(r.messages[0].body, "abc");
  EXPECT_TRUE(r.messages[0].via_bdat);
}

TEST(Dialogue, BdatBehindARefusedMailAndAnotherMailWaitsForTheirReplies) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x> FOO=bar\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 3 "
             "LAST\r\nabcNOOP\r\n"),
      upstream("555 5.5.4 Unsupported option: FOO=bar\r\n250 ok\r\n250 ok\r\n"),
      upstream("250 queued\r\n250 noop\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2],
            "MAIL FROM:<a@x> FOO=bar\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\n");
  EXPECT_TRUE(r.awaiting_reply_per_step[2]);
  EXPECT_EQ(r.upstream_per_step[3], "BDAT 3 LAST\r\nabcNOOP\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].transaction, 2u);
  EXPECT_EQ(r.messages[0].body, "abc");
  EXPECT_EQ(r.messages[0].recipients.size(), 1u);
}

TEST(Dialogue, BdatBehindANestedMailWaitsAndStaysWithTheOpenTransaction) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
      upstream("250 ok\r\n250 ok\r\n"),
      client("MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 2 LAST\r\nxy"),
      upstream("503 5.5.1 Error: nested MAIL command\r\n250 ok\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4], "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\n");
  EXPECT_EQ(r.upstream_per_step[5], "BDAT 2 LAST\r\nxy");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].transaction, 1u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<a@x>");
  EXPECT_EQ(r.messages[0].recipients.size(), 2u);
  EXPECT_EQ(r.messages[0].body, "xy");
}

TEST(Dialogue, BdatTransactionsPipelinedBackToBack) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2 LAST\r\nabMAIL FROM:<c@x>\r\nRCPT "
             "TO:<d@y>\r\nBDAT 1\r\ncBDAT 1 LAST\r\nd"),
      upstream("250 ok\r\n250 ok\r\n250 queued 1\r\n250 ok\r\n250 ok\r\n250 1\r\n"),
      upstream("250 queued 2\r\n"),
  });
  // No MAIL is held (each follows a BDAT LAST); the last BDAT waits for its chunk's reply.
  EXPECT_EQ(r.upstream_per_step[3], "BDAT 1 LAST\r\nd");
  EXPECT_FALSE(r.awaiting_reply_per_step.back());
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].body, "ab");
  EXPECT_EQ(r.messages[0].final_reply, "250 queued 1");
  EXPECT_EQ(r.messages[1].body, "cd");
  EXPECT_EQ(r.messages[1].mail_from, "MAIL FROM:<c@x>");
  EXPECT_EQ(r.messages[1].recipients.size(), 1u);
  EXPECT_EQ(r.messages[1].final_reply, "250 queued 2");
}

TEST(Dialogue, ClientEofBehindAHeldBdatStillSendsIt) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x> FOO=bar\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 1 LAST\r\nz"),
      client_eof(),
      upstream("555 no\r\n250 ok\r\n250 ok\r\n"),
      upstream("250 queued\r\n"),
      upstream("221 bye\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4], "BDAT 1 LAST\r\nzQUIT\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "z");
  EXPECT_TRUE(r.finished);
}

TEST(Dialogue, BdatWithoutChunkingIsRefusedAndItsChunkSwallowed) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply),
      client("MAIL FROM:<a@x>\r\n"),
      upstream("250 ok\r\n"),
      client("BDAT 10\r\n0123\r\n6789NOOP\r\n"),
      upstream("250 noop\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[4],
            "502 5.5.1 mailtap: the upstream did not advertise CHUNKING; BDAT chunk discarded: "
            "send the message with DATA\r\n");
  EXPECT_EQ(r.client_per_step[5], "250 noop\r\n");
  auto refused = find_events(r, Direction::client_to_mailtap, EventKind::command);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]->bytes, "BDAT 10\r\n");
  EXPECT_TRUE(r.messages.empty());
}

// CHUNKING is learned from the reply to EHLO: after HELO (or before any greeting) the upstream
// may well offer it, and the refusal says what the client must do instead.
TEST(Dialogue, BdatAfterHeloOrBeforeAnyGreetingSaysToSendEhlo) {
  const Result helo = run_all_splits({
      client("HELO client.example\r\n"),
      upstream("250 up.example\r\n"),
      client("BDAT 4 LAST\r\nabcdNOOP\r\n"),
      upstream("250 noop\r\n"),
  });
  EXPECT_EQ(helo.client_per_step[2],
            "503 5.5.1 mailtap: BDAT needs CHUNKING, which only the reply to EHLO offers (this "
            "client greeted with HELO): send EHLO; BDAT chunk discarded\r\n");
  EXPECT_EQ(helo.to_upstream, "HELO client.example\r\nNOOP\r\n");
  const Result none = run_all_splits({client("BDAT 4 LAST\r\nabcd")});
  EXPECT_EQ(none.client_per_step[0],
            "503 5.5.1 mailtap: BDAT needs CHUNKING, which only the reply to EHLO offers: send "
            "EHLO first; BDAT chunk discarded\r\n");
  EXPECT_EQ(none.to_upstream, "");
}

// RFC 3030's chunk-size is 1*DIGIT: however many digits (Postfix takes them all), the chunk is
// framed where the server frames it.
TEST(Dialogue, BdatSizeWithManyLeadingZerosFramesItsChunk) {
  const std::string chunk =
      "hello\r\nRSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<carol@y>\r\nDATA\r\n.\r\n";
  const std::string bdat =
      "BDAT " + std::string(30, '0') + std::to_string(chunk.size()) + " LAST\r\n";
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n" + bdat + chunk + "NOOP\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 queued\r\n250 noop\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2],
            "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n" + bdat + chunk + "NOOP\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, chunk);
  ASSERT_EQ(r.messages[0].recipients.size(), 1u);
  EXPECT_EQ(r.messages[0].recipients[0].command, "RCPT TO:<b@y>");
}

// A BDAT line mailtap refuses without a size it can trust leaves the chunk behind it with no end
// mailtap knows. Reading on as commands would relay the chunk's text as commands where a server
// that took the line frames it as a chunk (SMTP smuggling), so nothing after the line is read
// and the session ends, whatever the server would have done.
const std::string smuggled_after_bdat =
    "RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<carol@y>\r\nDATA\r\nevil\r\n.\r\nQUIT\r\n";

Result refused_bdat(const std::string& bdat_line) {
  return run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_chunking),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
          upstream("250 ok\r\n250 ok\r\n"),
          client(bdat_line + smuggled_after_bdat),
      },
      test_options(), 7);
}

void expect_session_ended_unread(const Result& r, std::string_view bdat_line) {
  SCOPED_TRACE(printable(bdat_line.substr(0, 40)));
  EXPECT_EQ(r.upstream_per_step[4], "");
  EXPECT_EQ(r.to_upstream.find("carol"), std::string::npos);
  EXPECT_EQ(r.client_per_step[4].rfind("421 4.5.4 mailtap: ", 0), 0u) << r.client_per_step[4];
  EXPECT_NE(r.client_per_step[4].find("closing"), std::string::npos);
  EXPECT_TRUE(r.finished);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
  EXPECT_NE(r.ending->reason.find("BDAT"), std::string::npos);
  EXPECT_TRUE(r.messages.empty());
  for (const Event& e : r.events) EXPECT_EQ(e.bytes.find("carol"), std::string::npos);
}

TEST(Dialogue, AMalformedBdatEndsTheSessionWithoutReadingOn) {
  for (const std::string bdat :
       {"BDAT 10 LAST junk\r\n", "BDAT x\r\n", "BDAT +3\r\n", "BDAT\r\n", "bdat 3 FIRST\r\n",
        // Not RFC 3030's "BDAT" SP size [SP "LAST"]: Exim answers 500 and reads the chunk as
        // commands where Postfix frames it, so no reading of the line is safe to forward.
        "BDAT\t10 LAST\r\n", " BDAT 10 LAST\r\n", "BDAT\v10 LAST\r\n", "\tBDAT 10\r\n",
        "bdat\f10\r\n", "BDAT  10 LAST\r\n", "BDAT 10\tLAST\r\n", "BDAT 10 LAST \r\n"}) {
    const Result r = refused_bdat(bdat);
    expect_session_ended_unread(r, bdat);
    auto refused = find_events(r, Direction::client_to_mailtap, EventKind::command);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0]->bytes, bdat);
  }
  EXPECT_EQ(refused_bdat("BDAT\t10 LAST\r\n").client_per_step[4],
            "421 4.5.4 mailtap: BDAT refused (syntax is BDAT SP <size> [SP LAST]), so where its "
            "chunk ends is unknown: nothing after it is read; closing. Send BDAT <size> [LAST] "
            "with one space between words and none before BDAT, the size in decimal digits\r\n");
}

// 2^31 and more: Exim keeps the size in a 32-bit unsigned int (sscanf "%u"), so 2^32 + 22 is a
// 22-octet chunk there and what follows it a command; a signed 32-bit reader goes wrong at 2^31.
TEST(Dialogue, ABdatSizeOf2To31OrMoreEndsTheSessionWithoutReadingOn) {
  for (const std::string& big :
       {"BDAT 2147483648\r\n"s, "BDAT 4294967318 LAST\r\n"s, "BDAT 9223372036854775807\r\n"s,
        "BDAT 18446744073709551615 LAST\r\n"s}) {
    const Result r = refused_bdat(big);
    expect_session_ended_unread(r, big);
  }
  const std::string bdat = "BDAT 4294967318 LAST\r\n";
  const Result r = refused_bdat(bdat);
  expect_session_ended_unread(r, bdat);
  EXPECT_EQ(r.client_per_step[4],
            "421 4.5.4 mailtap: BDAT refused (size over 2147483647 octets, more than some servers "
            "can count), so where its chunk ends is unknown: nothing after it is read; closing. "
            "Send the message in smaller chunks (BDAT <size> with a size below 2147483648)\r\n");
}

// The largest size every server counts alike still frames a chunk.
TEST(Dialogue, ABdatSizeOf2To31Minus1IsFramed) {
  const std::string bdat = "BDAT 2147483647 LAST\r\n";
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_chunking),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
          upstream("250 ok\r\n250 ok\r\n"),
          client(bdat + smuggled_after_bdat),
      },
      test_options(), 7);
  EXPECT_EQ(r.upstream_per_step[4], bdat + smuggled_after_bdat);  // chunk octets, not commands
  EXPECT_FALSE(r.finished);
}

TEST(Dialogue, AnOverLongOrNulBdatLineEndsTheSessionWithoutReadingOn) {
  const std::string too_long = "BDAT " + std::string(2040, '0') + "66 LAST\r\n";
  Result r = refused_bdat(too_long);
  expect_session_ended_unread(r, too_long);
  auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->verb, "BDAT");
  EXPECT_EQ(errors[0]->wire_size, too_long.size());
  const std::string with_nul = "BDAT 6\0 LAST\r\n"s;
  r = refused_bdat(with_nul);
  expect_session_ended_unread(r, with_nul);
  EXPECT_EQ(find_events(r, Direction::client_to_mailtap, EventKind::error).size(), 1u);
}

// A telnet fault in a BDAT line (an IAC SB, an option negotiation cut short by the line ending)
// refuses it whole, as a NUL does: its size cannot be trusted either.
TEST(Dialogue, ABdatLineWithATelnetFaultEndsTheSessionWithoutReadingOn) {
  for (const std::string& bdat : {"BDAT 5 LAST\xff\xfa\r\n"s, "BDAT 5\xff\xfb\n"s}) {
    const Result r = refused_bdat(bdat);
    expect_session_ended_unread(r, bdat);
    auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0]->verb, "BDAT");
    EXPECT_NE(r.client_per_step[4].find("in its line"), std::string::npos) << r.client_per_step[4];
  }
}

// Replies the server owes for commands pipelined ahead of a refused BDAT line come first: the
// server may have queued a message, and a client that saw only the 421 would send it again.
// Nothing after the refused line is read meanwhile; the 421 follows the last owed reply.
TEST(Dialogue, ARefusedBdatLineWaitsForTheRepliesOwedAheadOfIt) {
  const std::string first = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3 LAST\r\nabc";
  const std::string second = "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\n";
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client(first + second + "BDAT x\r\n" + smuggled_after_bdat),
      upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
      upstream("250 ok\r\n250 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], first + second);
  EXPECT_EQ(r.to_upstream.find("carol"), std::string::npos);
  EXPECT_EQ(r.client_per_step[2], "");
  EXPECT_FALSE(r.wants_input_per_step[2]);
  EXPECT_EQ(r.client_per_step[3], "250 ok\r\n250 ok\r\n250 queued\r\n");
  EXPECT_EQ(r.client_per_step[4].rfind("250 ok\r\n250 ok\r\n421 4.5.4 mailtap: BDAT refused", 0),
            0u)
      << r.client_per_step[4];
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "abc");
  EXPECT_TRUE(r.finished);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
  for (const Event& e : r.events) EXPECT_EQ(e.bytes.find("carol"), std::string::npos);
}

TEST(Dialogue, ARefusedBdatLineAfterADataEndWaitsForItsReply) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("body\r\n.\r\nBDAT 5\0 LAST\r\n"s + smuggled_after_bdat),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4], "body\r\n.\r\n");
  EXPECT_EQ(r.to_upstream.find("carol"), std::string::npos);
  EXPECT_EQ(r.client_per_step[4], "");
  EXPECT_EQ(r.client_per_step[5].rfind("250 queued\r\n421 4.5.4 mailtap: BDAT refused", 0), 0u)
      << r.client_per_step[5];
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_TRUE(r.finished);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
}

// The server's last words end the wait as they end any session: its 421 is the client's to see.
TEST(Dialogue, ARefusedBdatLineWaitingForOwedRepliesEndsWhenTheServerCloses) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nBDAT x\r\n" + smuggled_after_bdat),
      upstream("421 4.3.2 going away\r\n"),
  });
  EXPECT_EQ(r.client_per_step[2], "");
  EXPECT_EQ(r.client_per_step[3], "421 4.3.2 going away\r\n");
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.to_upstream.find("carol"), std::string::npos);
}

// RFC 3030 §2: DATA after BDAT in one transaction is a 503. mailtap answers it so: a server that
// answered 354 would get a DATA body in a BDAT message, which no record can show as it stored it.
TEST(Dialogue, DataAfterBdatInOneTransactionIsRefusedLocally) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcDATA\r\nRSET\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
      upstream("250 reset\r\n"),
  });
  EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcRSET\r\n");
  EXPECT_EQ(r.client_per_step[3],
            "250 ok\r\n250 ok\r\n250 3 octets\r\n"
            "503 5.5.1 mailtap: DATA after BDAT in one transaction (RFC 3030); not forwarded: "
            "end the message with BDAT <size> LAST, or RSET\r\n");
  EXPECT_EQ(r.client_per_step[4], "250 reset\r\n");
  auto refused = find_events(r, Direction::client_to_mailtap, EventKind::command);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]->bytes, "DATA\r\n");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_FALSE(r.in_data_per_step[3]);
}

// Only in the BDAT's own transaction: after its LAST, or an RSET, DATA goes upstream.
TEST(Dialogue, DataInANewTransactionAfterBdatIsRelayed) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 1 LAST\r\naMAIL FROM:<c@x>\r\nRCPT "
             "TO:<d@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
      client("body\r\n.\r\n"),
      upstream("250 queued 2\r\n"),
  });
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].body, "body\r\n");
  EXPECT_FALSE(r.messages[1].via_bdat);
}

// Between the chunks of a message only BDAT, RSET, NOOP and QUIT go upstream. Exim answers any
// other command 503 and then answers the next BDAT line 503 without reading its chunk, which it
// takes as commands (smuggle3-F1): mailtap answers such a command itself, in reply order.
TEST(Dialogue, ACommandBetweenBdatChunksIsAnsweredByMailtapNotForwarded) {
  const std::string hidden = "RSET\r\nMAIL FROM:<ceo@x>\r\nRCPT TO:<carol@y>\r\n";
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc"),
      upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
      client("VRFY b@y\r\nBDAT " + std::to_string(hidden.size()) + " LAST\r\n" + hidden +
             "NOOP\r\n"),
      upstream("250 queued\r\n250 noop\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4],
            "BDAT " + std::to_string(hidden.size()) + " LAST\r\n" + hidden + "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[4],
            "503 5.5.1 mailtap: only BDAT, RSET, NOOP or QUIT, without arguments (NOOP's may be "
            "printable ASCII words, one SP before each), may come between the chunks of a "
            "message (RFC 3030); not forwarded: end the message with BDAT <size> LAST, or drop "
            "it with RSET\r\n");
  EXPECT_EQ(r.client_per_step[5], "250 queued\r\n250 noop\r\n");
  auto refused = find_events(r, Direction::client_to_mailtap, EventKind::command);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]->bytes, "VRFY b@y\r\n");
  auto local = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(local[0]->reply_code, 503);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "abc" + hidden);
  EXPECT_FALSE(r.finished);
}

// The same for every command but a bare BDAT, RSET, NOOP or QUIT, pipelined behind the chunk
// before its reply: each gets mailtap's 503 after the replies owed ahead of it.
TEST(Dialogue, EveryOtherCommandBetweenBdatChunksIsRefusedInReplyOrder) {
  for (const std::string cmd : {"MAIL FROM:<x@x>\r\n", "RCPT TO:<c@y>\r\n", "EHLO again\r\n",
                                "HELO again\r\n", "HELP\r\n", "RSET now\r\n", "QUIT now\r\n",
                                "XFOO\r\n", "\r\n", "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"}) {
    SCOPED_TRACE(cmd);
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply_chunking),
        client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + cmd + "NOOP\r\n"),
        upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
        upstream("250 noop\r\n"),
    });
    EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\n");
    const std::string replies = r.client_per_step[3] + r.client_per_step[4];
    EXPECT_EQ(replies.rfind("250 ok\r\n250 ok\r\n250 3 octets\r\n503 5.5.1 mailtap: only BDAT", 0),
              0u)
        << replies;
    EXPECT_TRUE(replies.ends_with("RSET\r\n250 noop\r\n")) << replies;
    expect_secret_absent(r, "AGFsaWNlAHNlY3JldA==");
  }
}

TEST(Dialogue, BareRsetNoopQuitBetweenBdatChunksAreRelayed) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\nRSET\r\nVRFY b@y\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),  // the NOOP waits for it
      upstream("250 noop\r\n"),
      upstream("250 reset\r\n252 maybe\r\n"),  // the RSET waited for the NOOP's reply
      client("QUIT\r\n"),
      upstream("221 bye\r\n"),
  });
  // After the RSET no message is open: the VRFY goes upstream.
  EXPECT_EQ(r.to_upstream, ehlo +
                               "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\nRSET\r\n"
                               "VRFY b@y\r\nQUIT\r\n");
  EXPECT_TRUE(r.messages.empty());
}

// Exim matches a verb only at the start of its line (it strips trailing white space, not
// leading): " NOOP" between chunks is a bad command to it, 503, and then it answers the next
// BDAT line without reading its chunk. Postfix tokenizes and reads NOOP. So a RSET, NOOP or QUIT
// goes upstream there only when its line starts with the verb.
TEST(Dialogue, RsetNoopQuitWithWhiteSpaceBeforeTheVerbBetweenBdatChunksAreRefused) {
  for (const std::string cmd : {" NOOP\r\n", "\tNOOP\r\n", " RSET\r\n", "\tQUIT\r\n"}) {
    SCOPED_TRACE(cmd);
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply_chunking),
        client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + cmd +
               "BDAT 6 LAST\r\nNOOP\r\n"),
        upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
        upstream("250 queued\r\n"),
    });
    EXPECT_EQ(r.to_upstream,
              ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcBDAT 6 LAST\r\nNOOP\r\n");
    EXPECT_EQ(r.client_per_step[3].find("503 5.5.1 mailtap: only BDAT"),
              std::string("250 ok\r\n250 ok\r\n250 3 octets\r\n").size())
        << r.client_per_step[3];
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].body, "abcNOOP\r\n");
  }
}

// Trailing white space is stripped by Exim too: "NOOP \t" is a NOOP for every server.
TEST(Dialogue, BareNoopWithTrailingWhiteSpaceBetweenBdatChunksIsRelayed) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcnoop \t\r\n"),
      upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
      upstream("250 noop\r\n"),
  });
  EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcnoop \t\r\n");
}

// RFC 5321 lets NOOP carry a string: Postfix and Exim both answer "NOOP <text>" between chunks
// as a NOOP, and read the next chunk as a chunk, when the text is printable ASCII after one SP.
TEST(Dialogue, NoopWithAPlainParameterBetweenBdatChunksIsRelayed) {
  for (const std::string cmd : {"NOOP x\r\n", "noop hello world\r\n", "NOOP !~:<>\"\r\n"}) {
    SCOPED_TRACE(cmd);
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply_chunking),
        client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + cmd),
        upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
        upstream("250 noop\r\n"),
    });
    EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + cmd);
    EXPECT_EQ(r.client_per_step[4], "250 noop\r\n");
  }
}

// Any other spelling is not one parse: Exim reads "NOOP\tx" as a bad command (and then takes
// the next chunk as commands); the rest are refused so that one rule says what goes.
TEST(Dialogue, NoopParameterSpellingsOutsideThePlainOneBetweenBdatChunksAreRefused) {
  for (const std::string cmd :
       {"NOOP\tx\r\n", "NOOP  x\r\n", "NOOP x \r\n", "NOOP x\t\r\n", "NOOP \xe9\r\n",
        "NOOP a\x01\r\n", "NOOP a\x7f\r\n", " NOOP x\r\n"}) {
    SCOPED_TRACE(cmd);
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply_chunking),
        client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + cmd + "BDAT 2 LAST\r\nde"),
        upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
        upstream("250 queued\r\n"),
    });
    EXPECT_EQ(r.to_upstream,
              ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde");
    EXPECT_NE(r.client_per_step[3].find("503 5.5.1 mailtap: only BDAT"), std::string::npos)
        << r.client_per_step[3];
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].body, "abcde");
  }
}

// Exim answers a NOOP between chunks that it reads with more input behind it "503 only BDAT
// permissible after non-LAST BDAT", and from then on reads the next chunk as commands. So
// there nothing goes behind a NOOP before its reply.
TEST(Dialogue, ANoopBetweenBdatChunksIsASyncPoint) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client(
          "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\nNOOP x\r\nBDAT 2 LAST\r\nde"),
      upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
      upstream("250 noop\r\n"),
      upstream("250 noop\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc");
  EXPECT_EQ(r.upstream_per_step[3], "NOOP\r\n");  // behind the chunk's reply
  EXPECT_EQ(r.upstream_per_step[4], "NOOP x\r\n");
  EXPECT_EQ(r.upstream_per_step[5], "BDAT 2 LAST\r\nde");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "abcde");
}

// A server may stop reading a chunk below its advertised SIZE (Exim computes its limit per
// message) and run the rest as commands: a hidden tail ending "BDAT 24 LAST" would take four
// pipelined "RSET\r\n" lines as its chunk, and the replies would still match the commands in
// number. So nothing goes upstream behind a chunk without LAST before its reply: the replies to
// a tail read as commands then come to no command mailtap sent, and end the session.
TEST(Dialogue, NothingGoesUpstreamBehindAChunkBeforeItsReply) {
  for (const std::string behind : {"RSET\r\nRSET\r\n", "QUIT\r\n", "NOOP\r\n"}) {
    SCOPED_TRACE(behind);
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply_chunking),
        client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + behind),
        upstream("250 ok\r\n250 ok\r\n"),
        upstream("250 3 octets\r\n"),
    });
    EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc");
    EXPECT_EQ(r.upstream_per_step[3], "");
    EXPECT_EQ(r.upstream_per_step[4], behind);
  }
}

// The server writes the 552 and the replies to the tail it ran behind it together: read whole
// (a refusal read on its own lets the client's lines go before the rest; see docs/dialogue.md).
TEST(Dialogue, ATailReadAsCommandsCannotSwallowRsetsPipelinedBehindItsChunk) {
  const std::string tail = "RSET\r\nMAIL FROM:<ceo@x>\r\nRCPT TO:<c@y>\r\nBDAT 24 LAST\r\n";
  const std::string chunk = "x" + tail;
  const Result r = run(
      {
          client(ehlo),
          upstream(ehlo_reply_chunking),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(chunk.size()) +
                 "\r\n" + chunk + "RSET\r\nRSET\r\nRSET\r\nRSET\r\n"),
          // The server stopped reading the chunk after "x" and ran the tail.
          upstream("250 ok\r\n250 ok\r\n552 5.3.4 too big\r\n250 reset\r\n250 ok\r\n250 ok\r\n"),
          upstream("250 queued\r\n"),
      },
      whole, test_options());
  EXPECT_EQ(r.to_upstream.find("RSET\r\nRSET\r\n"), std::string::npos) << r.to_upstream;
  EXPECT_NE(r.client_per_step[3].find("421 "), std::string::npos) << r.client_per_step[3];
  EXPECT_TRUE(r.finished);
}

// A client that closes behind a chunk: mailtap's own QUIT waits for the chunk's reply too.
TEST(Dialogue, MailtapsQuitWaitsForTheReplyToTheChunkBeforeIt) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc"),
      client_eof(),
      upstream("250 ok\r\n250 ok\r\n"),
      upstream("250 3 octets\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc");
  EXPECT_EQ(r.upstream_per_step[3], "");
  EXPECT_EQ(r.upstream_per_step[4], "");
  EXPECT_EQ(r.upstream_per_step[5], "QUIT\r\n");
}

// A NOOP refused between chunks leaves the server as a refused chunk does (Exim: "only RSET
// accepted now"): the next BDAT ends the session unread.
TEST(Dialogue, ABdatAfterARefusedNoopBetweenChunksEndsTheSessionUnread) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\nBDAT 4 LAST\r\nRSET"),
      upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
      upstream("503 only BDAT permissible after non-LAST BDAT\r\n"),
  });
  EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\n");
  EXPECT_NE(r.client_per_step[4].find("421 4.5.4 mailtap: BDAT refused (the server refused an "
                                      "earlier NOOP between the chunks of this message"),
            std::string::npos)
      << r.client_per_step[4];
  EXPECT_TRUE(r.finished);
}

// A BDAT behind a chunk waits for that chunk's reply: whether the server reads the next chunk
// as a chunk depends on it.
TEST(Dialogue, ABdatWaitsForTheReplyToTheChunkBeforeIt) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nabBDAT 2 LAST\r\ncd"),
      upstream("250 ok\r\n250 ok\r\n"),
      upstream("250 2 octets\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nab");
  EXPECT_EQ(r.upstream_per_step[3], "");
  EXPECT_EQ(r.upstream_per_step[4], "BDAT 2 LAST\r\ncd");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "abcd");
}

// The server refused a chunk: Exim may then answer the next BDAT line without reading its
// chunk (504 to a BDAT 0, its 554 synchronization error), Postfix reads it. mailtap cannot know
// which, so the next BDAT is refused unread and the session ends, as for an unframable BDAT.
TEST(Dialogue, ABdatAfterARefusedChunkEndsTheSessionUnread) {
  const std::string hidden = "MAIL FROM:<ceo@x>\r\n";
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nabBDAT " +
             std::to_string(hidden.size()) + " LAST\r\n" + hidden),
      upstream("250 ok\r\n250 ok\r\n554 5.5.0 SMTP synchronization error\r\n"),
  });
  EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nab");
  EXPECT_TRUE(r.client_per_step[3].ends_with(
      "554 5.5.0 SMTP synchronization error\r\n"
      "421 4.5.4 mailtap: BDAT refused (the server refused an earlier chunk of this message, and "
      "servers differ on whether they then read the next chunk or take it as commands), so where "
      "its chunk ends is unknown: nothing after it is read; closing. Start a new session and "
      "send the message again; after a refused chunk or NOOP, send RSET before another BDAT\r\n"))
      << r.client_per_step[3];
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.to_upstream.find("ceo"), std::string::npos);
  EXPECT_TRUE(r.messages.empty());
}

// After an accepted RSET the server is in step again: BDAT is framed as usual.
TEST(Dialogue, ARefusedChunkThenRsetFramesTheNextBdat) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nab"),
      upstream("250 ok\r\n250 ok\r\n552 5.3.4 too big\r\n"),
      client("RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2 LAST\r\ncd"),
      upstream("250 reset\r\n250 ok\r\n250 ok\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_FALSE(r.finished);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "cd");
}

// Exim answers a BDAT 0 without LAST between chunks 504 and then takes the next chunk as
// commands: mailtap answers it itself.
TEST(Dialogue, BdatZeroWithoutLastBetweenChunksIsRefusedLocally) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2\r\nab"),
      upstream("250 ok\r\n250 ok\r\n250 2 octets\r\n"),
      client("BDAT 0\r\nBDAT 2 LAST\r\ncd"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4], "BDAT 2 LAST\r\ncd");
  EXPECT_EQ(r.client_per_step[4].rfind("504 5.5.4 mailtap: BDAT 0 without LAST", 0), 0u);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "abcd");
}

// ---- BDAT and the server's SIZE ------------------------------------------------------------

// SIZE 10000 leaves 10000 - 8192 = 1808 octets of BDAT a transaction (bdat_size_margin).
const std::string ehlo_reply_size_10000 =
    "250-up.example\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 CHUNKING\r\n";

std::string body_of(std::size_t octets, const std::string& tail = "") {
  std::string text = "Subject: b\r\n\r\n";
  text.append(octets - text.size() - tail.size(), 'b');
  return text + tail;
}

// servers-F1: Exim 4.96 answers a chunk that crosses its message_size_limit 552 and reads the
// rest of the chunk as commands. mailtap does not send a chunk that would take the transaction
// past the server's SIZE less the margin: it answers 552 itself and consumes the chunk.
TEST(Dialogue, AChunkPastTheServersSizeIsRefusedByMailtapNotForwarded) {
  const std::string hidden =
      "\r\nRSET\r\nMAIL FROM:<ceo@x>\r\nRCPT TO:<carol@y>\r\nBDAT 8 LAST\r\nhidden\r\nNOOP\r\n";
  const std::string chunk = body_of(2000, hidden);
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_size_10000),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2000 LAST\r\n" + chunk + "NOOP\r\n"),
          upstream("250 ok\r\n250 ok\r\n250 noop\r\n"),
          client("RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 5 LAST\r\nsmall"),
          upstream("250 reset\r\n250 ok\r\n250 ok\r\n"),
          upstream("250 queued\r\n"),
      },
      test_options(), 97);
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nNOOP\r\n");
  EXPECT_EQ(r.to_upstream.find("ceo"), std::string::npos);
  EXPECT_EQ(r.client_per_step[3],
            "250 ok\r\n250 ok\r\n552 5.3.4 mailtap: this chunk would take the message to "
            "2000 octets, past the server's SIZE 10000 less 8192 for the header fields it "
            "adds; not forwarded, as a server may stop reading a chunk at its limit and take "
            "the rest as commands; BDAT chunk discarded: send RSET, then a smaller message\r\n"
            "250 noop\r\n");
  const auto refused = find_events(r, Direction::client_to_mailtap, EventKind::command);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]->bytes, "BDAT 2000 LAST\r\n");
  const auto local = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(local[0]->reply_code, 552);
  EXPECT_TRUE(find_events(r, Direction::client_to_upstream, EventKind::bdat_chunk).size() == 1u)
      << "only the second message's chunk went upstream";
  // The BDAT waits for the RSET's reply: the replies to the MAIL and RCPT before the refused
  // chunk did not end the refusal, an RSET sent after it does.
  EXPECT_EQ(r.upstream_per_step[4], "RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  EXPECT_EQ(r.upstream_per_step[5], "BDAT 5 LAST\r\nsmall");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "small");
  EXPECT_FALSE(r.finished);
}

// A SIZE no larger than the margin leaves no octet for BDAT: the 552 says so, and that DATA is
// the way, not "a smaller message", which no message could be.
TEST(Dialogue, ASizeWithinTheMarginSendsTheClientToData) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream("250-up.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n"),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 10 LAST\r\n0123456789"),
      upstream("250 ok\r\n250 ok\r\n"),
  });
  EXPECT_EQ(r.client_per_step[3],
            "250 ok\r\n250 ok\r\n552 5.3.4 mailtap: the server's SIZE 1000 leaves no room for "
            "BDAT through mailtap, which keeps 8192 octets below it for the header fields the "
            "server adds; not forwarded, as a server may stop reading a chunk at its limit and "
            "take the rest as commands; BDAT chunk discarded: send RSET, then the message with "
            "DATA\r\n");
  EXPECT_EQ(r.to_upstream.find("0123456789"), std::string::npos);
}

// A chunk up to the limit goes; many small chunks are counted together: the one that would
// cross it is refused, and the server, whose transaction is still open, is left as after a
// chunk it refused: the next BDAT ends the session unread.
TEST(Dialogue, ManySmallChunksCrossingTheServersSizeAreStoppedAtTheOneThatCrosses) {
  const std::string c600(600, 'x');
  const std::string c8(8, 'y');
  const Result r = run_all_splits(
      {
          client(ehlo), upstream(ehlo_reply_size_10000),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 600\r\n" + c600),
          upstream("250 ok\r\n250 ok\r\n250 600\r\n"), client("BDAT 600\r\n" + c600),
          upstream("250 1200\r\n"), client("BDAT 600\r\n" + c600), upstream("250 1800\r\n"),
          client("BDAT 8 LAST\r\n" + c8),  // 1808: exactly the limit
      },
      test_options(), 53);
  EXPECT_EQ(r.upstream_per_step[8], "BDAT 8 LAST\r\n" + c8);

  const Result over = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_size_10000),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 600\r\n" + c600),
          upstream("250 ok\r\n250 ok\r\n250 600\r\n"),
          client("BDAT 600\r\n" + c600),
          upstream("250 1200\r\n"),
          client("BDAT 600\r\n" + c600),
          upstream("250 1800\r\n"),
          client("BDAT 9\r\n" + c8 + "y"),  // 1809: one past it
          client("BDAT 1 LAST\r\nz"),
      },
      test_options(), 53);
  EXPECT_EQ(over.upstream_per_step[8], "");
  EXPECT_EQ(over.client_per_step[8].rfind(
                "552 5.3.4 mailtap: this chunk would take the message to 1809 octets", 0),
            0u)
      << over.client_per_step[8];
  EXPECT_EQ(over.upstream_per_step[9], "");
  EXPECT_EQ(over.client_per_step[9].rfind("421 4.5.4 mailtap: BDAT refused (mailtap refused an "
                                          "earlier chunk of this message, past the server's SIZE",
                                          0),
            0u)
      << over.client_per_step[9];
  EXPECT_TRUE(over.finished);
  EXPECT_TRUE(over.messages.empty());
}

// No SIZE, SIZE without a number and SIZE 0 (RFC 1870: no fixed maximum) set no limit.
TEST(Dialogue, AChunkIsNotLimitedWithoutAServerSize) {
  const std::string chunk = body_of(20000);
  for (const std::string& size_line :
       {std::string(), std::string("250-SIZE\r\n"), std::string("250-SIZE 0\r\n")}) {
    SCOPED_TRACE(size_line);
    const Result r = run_all_splits(
        {
            client(ehlo),
            upstream("250-up.example\r\n250-PIPELINING\r\n" + size_line + "250 CHUNKING\r\n"),
            client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 20000 LAST\r\n" + chunk),
            upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
        },
        test_options(), 4999);
    EXPECT_EQ(r.upstream_per_step[2],
              "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 20000 LAST\r\n" + chunk);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].size, 20000u);
  }
}

// Old servers write "SIZE=10000": the same limit as "SIZE 10000" (read as none, a chunk could
// cross it and the server take its tail as commands).
TEST(Dialogue, ASizeAfterAnEqualsSignLimitsChunksAsSizeDoes) {
  const std::string chunk = body_of(2000);
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream("250-up.example\r\n250-PIPELINING\r\n250-SIZE=10000\r\n250 CHUNKING\r\n"),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2000 LAST\r\n" + chunk),
          upstream("250 ok\r\n250 ok\r\n"),
      },
      test_options(), 97);
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  EXPECT_EQ(r.client_per_step[3].rfind("250 ok\r\n250 ok\r\n552 5.3.4 mailtap: this chunk would "
                                       "take the message to 2000 octets, past the server's SIZE "
                                       "10000 less 8192",
                                       0),
            0u)
      << r.client_per_step[3];
  EXPECT_TRUE(find_events(r, Direction::client_to_upstream, EventKind::bdat_chunk).empty());
}

// A SIZE whose parameter is no number ("SIZE none") is a limit mailtap cannot read: no chunk
// with octets goes upstream (any might cross it), the BDAT is answered as one past SIZE, and
// the server, whose transaction is still open, is left as after a refused chunk.
TEST(Dialogue, UnderASizeMailtapCannotReadNoChunkIsForwarded) {
  const std::string chunk = body_of(100);
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream("250-up.example\r\n250-PIPELINING\r\n250-SIZE none\r\n250 CHUNKING\r\n"),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
          upstream("250 ok\r\n250 ok\r\n"),
          client("BDAT 100\r\n" + chunk + "NOOP\r\n"),
          upstream("250 noop\r\n"),
          client("BDAT 0 LAST\r\n"),
      },
      test_options(), 41);
  EXPECT_EQ(r.upstream_per_step[4], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[4] + r.client_per_step[5],
            "552 5.3.4 mailtap: the server's EHLO reply gives a SIZE that mailtap cannot read as a "
            "number, so no chunk is forwarded, as a server may stop reading a chunk at its limit "
            "and take the rest as commands; BDAT chunk discarded: send RSET, then the message "
            "with DATA\r\n250 noop\r\n");
  EXPECT_TRUE(find_events(r, Direction::client_to_upstream, EventKind::bdat_chunk).empty());
  EXPECT_EQ(r.upstream_per_step[6], "");
  EXPECT_EQ(r.client_per_step[6].rfind("421 4.5.4 mailtap: BDAT refused (mailtap refused an "
                                       "earlier chunk of this message, under a SIZE it cannot "
                                       "read, so the server holds the message without it)",
                                       0),
            0u)
      << r.client_per_step[6];
  EXPECT_TRUE(r.finished);
  EXPECT_TRUE(r.messages.empty());
}

// mailtap refuses a chunk when it reads it, so the replies to a MAIL (and an RSET before it)
// the client pipelined ahead of that BDAT come after the refusal. They say nothing of it: the
// server still holds the transaction without the refused chunk, and a BDAT ... LAST let through
// on their acceptance would end a message the client never meant (its first chunk missing).
// The next BDAT ends the session as after any refused chunk, however the bytes were split.
TEST(Dialogue, RepliesToCommandsPipelinedBeforeMailtapsChunkRefusalDoNotEndIt) {
  struct Case {
    std::string ehlo_reply;
    std::size_t chunk;
    std::string why;
  };
  const std::vector<Case> cases = {
      {ehlo_reply_size_10000, 2000, "past the server's SIZE"},
      {"250-up.example\r\n250-PIPELINING\r\n250-SIZE none\r\n250 CHUNKING\r\n", 100,
       "under a SIZE it cannot read"},
  };
  for (const Case& c : cases) {
    for (const std::string& rset : {std::string(), std::string("RSET\r\n")}) {
      SCOPED_TRACE(c.why + (rset.empty() ? "" : ", RSET first"));
      const std::string replies = (rset.empty() ? "" : "250 reset\r\n") + "250 ok\r\n250 ok\r\n"s;
      const Result r = run_all_splits(
          {
              client(ehlo),
              upstream(c.ehlo_reply),
              client(rset + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(c.chunk) +
                     "\r\n" + body_of(c.chunk) + "BDAT 0 LAST\r\n"),
              upstream(replies),
          },
          test_options(), 37);
      EXPECT_EQ(r.upstream_per_step[2], rset + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
      EXPECT_EQ(r.upstream_per_step[3], "");
      EXPECT_EQ(r.to_upstream.find("BDAT"), std::string::npos) << r.to_upstream;
      const std::string& to_client = r.client_per_step[3];
      EXPECT_EQ(to_client.rfind(replies + "552 5.3.4 mailtap: ", 0), 0u) << to_client;
      EXPECT_NE(to_client.find("421 4.5.4 mailtap: BDAT refused (mailtap refused an earlier "
                               "chunk of this message, " +
                               c.why),
                std::string::npos)
          << to_client;
      EXPECT_TRUE(r.finished);
      EXPECT_TRUE(r.messages.empty());
    }
  }
}

// When mailtap refuses the FIRST chunk of a transaction, the server never saw a BDAT and still
// holds that transaction open. A MAIL, RCPT or DATA the client pipelined behind the refusal
// (its next message, or the same one by DATA) must not reach it: Postfix answers the MAIL 503
// (nested), takes the RCPT into the old transaction and ends it at the DATA, delivering the next
// message to the first one's recipients too, under its sender; a DATA alone ends the first
// message without the refused chunk. They get mailtap's 503 as between chunks, telling the
// client to RSET, as when an earlier chunk had reached the server; its RSET ends that.
TEST(Dialogue, CommandsAfterMailtapRefusedTheFirstChunkAreRefusedUntilRset) {
  struct Case {
    std::string ehlo_reply;
    std::size_t chunk;
  };
  const std::vector<Case> cases = {
      {ehlo_reply_size_10000, 2000},
      {"250-up.example\r\n250-PIPELINING\r\n250-SIZE none\r\n250 CHUNKING\r\n", 100},
  };
  const std::vector<std::string> behind = {
      "MAIL FROM:<c@x>\r\nRCPT TO:<bob@y>\r\nDATA\r\nSubject: two\r\nhi\r\n.\r\n",
      "DATA\r\nSubject: tail\r\nbody\r\n.\r\n",
  };
  for (const Case& c : cases) {
    for (const std::string& last : {""s, " LAST"s}) {
      for (const std::string& next : behind) {
        for (const bool replies_first : {false, true}) {
          SCOPED_TRACE(c.ehlo_reply + "BDAT " + std::to_string(c.chunk) + last + "; " + next +
                       (replies_first ? "; MAIL and RCPT answered first" : "; all pipelined"));
          const std::string mail = "MAIL FROM:<a@x>\r\nRCPT TO:<alice@y>\r\n";
          const std::string bdat =
              "BDAT " + std::to_string(c.chunk) + last + "\r\n" + body_of(c.chunk) + next;
          Script script = {client(ehlo), upstream(c.ehlo_reply)};
          if (replies_first) {
            script.push_back(client(mail));
            script.push_back(upstream("250 ok\r\n250 ok\r\n"));
            script.push_back(client(bdat));
          } else {
            script.push_back(client(mail + bdat));
            script.push_back(upstream("250 ok\r\n250 ok\r\n"));
          }
          // Then by DATA, which a SIZE mailtap cannot read leaves the client.
          script.push_back(client("RSET\r\nMAIL FROM:<c@x>\r\nRCPT TO:<bob@y>\r\nDATA\r\n"));
          script.push_back(upstream("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"));
          script.push_back(client("small\r\n.\r\n"));
          script.push_back(upstream("250 queued\r\n"));
          const Result r = run_all_splits(script, test_options(), 41);
          const std::size_t rset_step = script.size() - 4;
          std::string before_rset;
          for (std::size_t i = 0; i < rset_step; ++i) before_rset += r.upstream_per_step[i];
          // Only the first MAIL and RCPT went: no BDAT, MAIL, RCPT, DATA or body line.
          EXPECT_EQ(before_rset, ehlo + mail) << before_rset;
          std::string to_client;
          for (std::size_t i = 2; i < rset_step; ++i) to_client += r.client_per_step[i];
          EXPECT_NE(to_client.find("552 5.3.4 mailtap: "), std::string::npos) << to_client;
          EXPECT_EQ(to_client.find("354"), std::string::npos) << to_client;
          EXPECT_EQ(to_client.find("421"), std::string::npos) << to_client;
          // Each command behind the refusal (MAIL, RCPT, DATA and the body's lines) is told RSET.
          std::size_t told = 0;
          for (std::size_t at = to_client.find("503 5.5.1 mailtap: "); at != std::string::npos;
               at = to_client.find("503 5.5.1 mailtap: ", at + 1)) {
            const std::size_t end = to_client.find("\r\n", at);
            EXPECT_NE(to_client.substr(at, end - at)
                          .find("so drop it with RSET (a BDAT now would end the session)"),
                      std::string::npos)
                << to_client.substr(at, end - at);
            ++told;
          }
          EXPECT_EQ(told, static_cast<std::size_t>(std::count(next.begin(), next.end(), '\n')))
              << to_client;
          // The client's RSET ends it: the next message goes, alone, to its own recipient.
          EXPECT_EQ(r.upstream_per_step[rset_step] + r.upstream_per_step[rset_step + 2],
                    "RSET\r\nMAIL FROM:<c@x>\r\nRCPT TO:<bob@y>\r\nDATA\r\nsmall\r\n.\r\n");
          EXPECT_FALSE(r.finished);
          ASSERT_EQ(r.messages.size(), 1u);
          EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<c@x>");
          ASSERT_EQ(r.messages[0].recipients.size(), 1u);
          EXPECT_EQ(r.messages[0].recipients[0].command, "RCPT TO:<bob@y>");
          EXPECT_EQ(r.messages[0].body, "small\r\n");
        }
      }
    }
  }
}

// After a chunk is refused, mailtap's own 503 to a command between chunks (an earlier chunk
// reached the server) advises only RSET: the BDAT ... LAST it used to advise gets the 421.
TEST(Dialogue, ACommandBetweenChunksAfterARefusedChunkIsToldRsetNotBdatLast) {
  for (const std::string& command : {"MAIL FROM:<a@x>\r\n"s, "DATA\r\n"s}) {
    SCOPED_TRACE(command);
    const Result r = run_all_splits(
        {
            client(ehlo),
            upstream(ehlo_reply_size_10000),
            client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
            upstream("250 ok\r\n250 ok\r\n"),
            client("BDAT 100\r\n" + body_of(100)),
            upstream("250 got\r\n"),
            client("BDAT 2000\r\n" + body_of(2000) + command),
        },
        test_options(), 37);
    const std::string& to_client = r.client_per_step[6];
    EXPECT_EQ(to_client.rfind("552 5.3.4 mailtap: ", 0), 0u) << to_client;
    EXPECT_NE(to_client.find("\r\n503 5.5.1 mailtap: "), std::string::npos) << to_client;
    EXPECT_EQ(to_client.find("BDAT <size> LAST"), std::string::npos) << to_client;
    EXPECT_NE(to_client.find("so drop it with RSET (a BDAT now would end the session)\r\n"),
              std::string::npos)
        << to_client;
    EXPECT_FALSE(r.finished);
  }
}

// What the client sends after the refusal does start anew: its RSET, accepted, ends it, and
// the message it then sends goes, pipelined behind the refused chunk or not.
TEST(Dialogue, AnRsetPipelinedAfterMailtapsChunkRefusalEndsIt) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_size_10000),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2000\r\n" + body_of(2000) +
                 "RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\nBDAT 5 LAST\r\nsmall"),
          upstream("250 ok\r\n250 ok\r\n250 reset\r\n250 ok\r\n250 ok\r\n"),
          upstream("250 queued\r\n"),
      },
      test_options(), 37);
  EXPECT_EQ(r.upstream_per_step[2],
            "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\n");
  EXPECT_EQ(r.upstream_per_step[3], "BDAT 5 LAST\r\nsmall");
  EXPECT_EQ(r.client_per_step[3].rfind("250 ok\r\n250 ok\r\n552 5.3.4 mailtap: ", 0), 0u)
      << r.client_per_step[3];
  EXPECT_EQ(r.client_per_step[4], "250 queued\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "small");
  EXPECT_FALSE(r.finished);
}

// After RSET, the message goes with DATA, which the guard does not concern (a server reads
// DATA to its end before it refuses a message too large), and BDAT 0 LAST has no octets.
TEST(Dialogue, UnderASizeMailtapCannotReadDataAndAnEmptyLastChunkGo) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream("250-up.example\r\n250-SIZE -1\r\n250 CHUNKING\r\n"),
          client("MAIL FROM:<a@x>\r\n"),
          upstream("250 ok\r\n"),
          client("RCPT TO:<b@y>\r\n"),
          upstream("250 ok\r\n"),
          client("DATA\r\n"),
          upstream("354 go\r\n"),
          client("Subject: s\r\n\r\nbody\r\n.\r\n"),
          upstream("250 queued\r\n"),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 0 LAST\r\n"),
          upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
      },
      test_options(), 23);
  EXPECT_EQ(r.upstream_per_step[8], "Subject: s\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(r.upstream_per_step[10], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 0 LAST\r\n");
  EXPECT_EQ(r.client_per_step[11], "250 ok\r\n250 ok\r\n250 queued\r\n");
  EXPECT_EQ(r.messages.size(), 2u);
}

// A server that refused a chunk and then replies to no command has read the chunk's rest as
// commands (Exim at its size limit, recordings before mailtap knew SIZE): the 421 must not say
// that no message was ended, as those commands may have sent one.
TEST(Dialogue, RepliesToNoCommandAfterARefusedChunkSayTheChunkMayHaveBeenReadAsCommands) {
  const std::string chunk = "Subject: b\r\n\r\nbbbb\r\nRSET\r\n";
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(chunk.size()) +
             " LAST\r\n" + chunk),
      upstream(
          "250 ok\r\n250 ok\r\n552 Message size exceeds maximum permitted\r\n250 Reset OK\r\n"),
  });
  const std::string& to_client = r.client_per_step[3];
  EXPECT_NE(to_client.find("552 Message size exceeds maximum permitted\r\n421 4.5.0 mailtap: "
                           "up.example:587 replied 250 when no command awaited a reply right "
                           "after refusing a BDAT chunk"),
            std::string::npos)
      << to_client;
  EXPECT_EQ(to_client.find("without ending any open message"), std::string::npos) << to_client;
  ASSERT_TRUE(r.ending);
  EXPECT_NE(r.ending->reason.find("after refusing a BDAT chunk"), std::string::npos);
}

// ---- local replies -------------------------------------------------------------------------

TEST(Dialogue, ClientStarttlsGetsALocal502InOrder) {
  const Result r = run_all_splits({
      client("NOOP\r\nSTARTTLS\r\nNOOP\r\n"),
      upstream("250 first\r\n"),
      upstream("250 second\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[0], "NOOP\r\nNOOP\r\n");
  EXPECT_EQ(r.client_per_step[0], "");  // the 502 waits behind the first NOOP's reply
  EXPECT_EQ(r.client_per_step[1], "250 first\r\n502 5.5.1 mailtap: STARTTLS is not needed\r\n");
  EXPECT_EQ(r.client_per_step[2], "250 second\r\n");
  auto local = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(local[0]->reply_code, 502);
  EXPECT_EQ(local[0]->enhanced_status, "5.5.1");
}

std::string command_of_size(std::string_view verb, std::size_t total) {
  std::string line(verb);
  line += ' ';
  line.append(total - line.size() - 2, 'x');
  return line + "\r\n";
}

TEST(Dialogue, CommandLineLimitIs2048OctetsWithCrlf) {
  const std::string fits = command_of_size("NOOP", 2048);
  const std::string too_long = command_of_size("NOOP", 2049);
  const Result r = run_all_splits(
      {
          client(fits),
          upstream("250 a\r\n"),
          client(too_long + "NOOP\r\n"),
          upstream("250 b\r\n"),
      },
      test_options(), 101);
  EXPECT_EQ(r.upstream_per_step[0], fits);
  EXPECT_EQ(r.upstream_per_step[2], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[2],
            "500 5.5.2 mailtap: line too long (limit 2048 octets); not forwarded\r\n");
  auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->wire_size, 2049u);
  EXPECT_EQ(errors[0]->bytes, "");
  EXPECT_EQ(errors[0]->note, "command line of 2049 octets refused");
}

// A refused line was not sent, so nothing of it was rewritten: nc's bare LF on a line refused
// for its length or a NUL gets no rewrite note (only the lines sent do).
TEST(Dialogue, ARefusedLineGetsNoRewriteNote) {
  const Result r = run_all_splits({
      client("NOOP\n"),
      upstream("250 a\r\n"),
      client(std::string(3000, 'x') + "\nNO\0OP\n"s + "NOOP\n"),
      upstream("250 b\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "NOOP\r\n");
  EXPECT_EQ(find_events(r, Direction::client_to_mailtap, EventKind::error).size(), 2u);
  std::vector<std::string> noted;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
    noted.push_back(e->verb + ": " + e->note);
  EXPECT_EQ(noted, (std::vector<std::string>{"NOOP: bare LF normalised to CRLF (1x)",
                                             "NOOP: bare LF normalised to CRLF (1x)"}));
}

TEST(Dialogue, HugeCommandLineIsRefusedWithoutKeepingIt) {
  const std::string huge = command_of_size("MAIL", 50000);
  const Result r = run_all_splits(
      {
          client(huge + "NOOP\r\n"),
          upstream("250 b\r\n"),
      },
      test_options(), 4999);
  EXPECT_EQ(r.upstream_per_step[0], "NOOP\r\n");
  auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->verb, "MAIL");
  EXPECT_EQ(errors[0]->wire_size, 50000u);
}

TEST(Dialogue, AuthLineLimitIs12288Octets) {
  const std::string fits = command_of_size("AUTH PLAIN", 12288);
  const std::string too_long = command_of_size("AUTH PLAIN", 12289);
  const Result r = run_all_splits(
      {
          client(fits),
          upstream("535 no\r\n"),
          client(too_long + "NOOP\r\n"),
          upstream("250 b\r\n"),
      },
      test_options(), 503);
  EXPECT_EQ(r.upstream_per_step[0], fits);
  EXPECT_EQ(r.upstream_per_step[2], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[2],
            "500 5.5.2 mailtap: line too long (limit 12288 octets); not forwarded\r\n");
  expect_secret_absent(r, std::string(64, 'x'));
}

TEST(Dialogue, HugeAuthLineKeepsItsVerbButNotItsTail) {
  const std::string huge = "AUTH PLAIN " + std::string(30000, 'Q') + "TAILSECRET\r\n";
  const Result r =
      run_all_splits({client(huge + "NOOP\r\n"), upstream("250 b\r\n")}, test_options(), 7001);
  auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->verb, "AUTH");
  expect_secret_absent(r, "TAILSECRET");
  EXPECT_EQ(r.client_per_step[0],
            "500 5.5.2 mailtap: line too long (limit 12288 octets); not forwarded\r\n");
}

TEST(Dialogue, NulInCommandIsRefused) {
  const Result r = run_all_splits({
      client("NO\0OP\r\nNOOP\r\n"s),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[0], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[0],
            "500 5.5.2 mailtap: NUL byte in command line; not forwarded: send the command again "
            "without it\r\n");
  auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->note, "command line with a NUL byte refused");
}

TEST(Dialogue, TelnetNegotiationInACommandIsRemovedAndNoted) {
  const Result r = run_all_splits({
      client("\xff\xfd\x03NO\xff\xfb\x01OP\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[0], "NOOP\r\n");
  auto rewrites = find_events(r, Direction::mailtap_note, EventKind::rewrite);
  ASSERT_EQ(rewrites.size(), 1u);
  EXPECT_EQ(rewrites[0]->verb, "NOOP");
  // What was removed is named, so the record shows every octet the client sent.
  EXPECT_EQ(rewrites[0]->note, "telnet IAC sequence removed (2x: IAC DO 3, IAC WILL 1)");
}

// telnet waits for the answer to what it asks (character mode echoes nothing until then; after
// Ctrl-C's IAC IP IAC DO TM it shows no output): mailtap refuses each option at once, and the
// record keeps the refusals with the line they came in, however the reads fell.
TEST(Dialogue, TelnetOptionsAskedForAreRefusedAtOnce) {
  const Result r = run_all_splits({
      client("\xff\xfd\x01\xff\xfd\x03"),              // mode character: DO ECHO, DO SGA
      client("\xff\xf4\xff\xfd\x06NOOP\r\n"),          // Ctrl-C: IAC IP, IAC DO TM
      client("\xff\xfb\x18\xff\xfc\x01\xff\xfe\x03"),  // WILL 24 refused; WONT, DONT not answered
      client("NOOP\r\n"),
  });
  EXPECT_EQ(r.client_per_step[0], "\xff\xfc\x01\xff\xfc\x03");
  EXPECT_EQ(r.client_per_step[1], "\xff\xfc\x06");
  EXPECT_EQ(r.client_per_step[2], "\xff\xfe\x18");
  EXPECT_EQ(r.upstream_per_step[1], "NOOP\r\n");
  const auto answers = find_events(r, Direction::mailtap_to_client, EventKind::note);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0]->bytes, "\xff\xfc\x01\xff\xfc\x03\xff\xfc\x06");
  EXPECT_EQ(answers[0]->wire_size, 9u);
  EXPECT_EQ(answers[1]->bytes, "\xff\xfe\x18");
  EXPECT_TRUE(answers[0]->note.starts_with("telnet options refused (3x): "));
}

// Ctrl-C typed into a message (line-mode telnet sends IAC IP IAC DO TM, glued to the next line):
// the body is data and goes on unchanged, but telnet shows nothing more until its DO TM is
// answered, not the 250 nor the 221. Each DO TM is answered IAC WONT TM at once, exactly once
// however the reads fell, and recorded with what the person needs to know.
TEST(Dialogue, TimingMarksInADataBodyAreRefusedOnceAndTheBodyGoesOnUnchanged) {
  const std::string body =
      "Subject: s\r\n\r\nI changed my mind, abo\xff\xf4\xff\xfd\x06.\r\n"
      "\xff\xf4\xff\xfd\x06\xff\xfd\x06 twice\r\n";
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client(body + ".\r\n"),
      upstream("250 queued\r\n"),
      client("QUIT\r\n"),
      upstream("221 bye\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], body + ".\r\n");
  EXPECT_EQ(r.client_per_step[2], "\xff\xfc\x06\xff\xfc\x06\xff\xfc\x06");
  EXPECT_EQ(r.client_per_step[3], "250 queued\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, body);
  const auto answers = find_events(r, Direction::mailtap_to_client, EventKind::note);
  ASSERT_EQ(answers.size(), 3u);
  for (const Event* e : answers) {
    EXPECT_EQ(e->bytes, "\xff\xfc\x06");
    EXPECT_EQ(e->wire_size, 3u);
    EXPECT_EQ(e->verb, "DATA");
    EXPECT_NE(e->note.find("did not abort the message"), std::string::npos) << e->note;
    EXPECT_NE(e->note.find("close the connection"), std::string::npos) << e->note;
  }
}

// Only a DO TM is answered, and only where telnet would mean one: IAC IAC is an escaped data
// 0xFF, other option requests in a body are data (an NVT negotiates only at negotiation time),
// and a BDAT chunk is binary, sent by programs.
TEST(Dialogue, OnlyATelnetTimingMarkInADataBodyIsAnswered) {
  const std::string body = "a\xff\xff\xfd\x06 \xff\xfd\x01 \xff\xfb\x06 \xff\xfd\r\n\x06\r\n";
  const Result data = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client(body + ".\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(data.client_per_step[2], "");
  EXPECT_EQ(data.upstream_per_step[2], body + ".\r\n");
  EXPECT_TRUE(find_events(data, Direction::mailtap_to_client, EventKind::note).empty());

  const std::string chunk = "x\xff\xf4\xff\xfd\x06y";
  const Result bdat = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(chunk.size()) +
             " LAST\r\n" + chunk),
      upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
  });
  EXPECT_EQ(bdat.client_per_step[2], "");
  EXPECT_TRUE(find_events(bdat, Direction::mailtap_to_client, EventKind::note).empty());
}

// An option octet on an AUTH line may be one of the secret's: only the refusals' size is kept.
TEST(Dialogue, TelnetRefusalsOnAnAuthLineAreCountedNotKept) {
  const Result r = run_all_splits({
      client("AUTH PLAIN AHVz\xff\xfdZXIAc2VjcmV0\r\n"),
      upstream("235 ok\r\n"),
  });
  EXPECT_EQ(r.client_per_step[0], "\xff\xfcZ");
  const auto answers = find_events(r, Direction::mailtap_to_client, EventKind::note);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0]->bytes, "");
  EXPECT_TRUE(answers[0]->redacted);
  EXPECT_EQ(answers[0]->wire_size, 3u);
}

// On an AUTH line an option byte may be an octet of the secret: only the count is noted.
TEST(Dialogue, TelnetRemovedFromAnAuthLineIsCountedNotNamed) {
  const Result r = run_all_splits({
      client("AUTH PLAIN AHVz\xff\xfbZXIAc2VjcmV0\r\n"),
      upstream("235 ok\r\n"),
  });
  auto rewrites = find_events(r, Direction::mailtap_note, EventKind::rewrite);
  ASSERT_EQ(rewrites.size(), 1u);
  EXPECT_EQ(rewrites[0]->note, "telnet IAC sequence removed (1x)");
}

// SMTP smuggling through telnet: 0xFF 0xFA in a command is IAC SB, and a subnegotiation runs to
// IAC SE. Had mailtap removed it, it would have removed the RCPT and BDAT lines and the start of
// the chunk, and relayed the chunk's text as commands (a message to carol). mailtap agrees to no
// telnet option, so the line with it is refused whole, and the line ending still ends it.
TEST(Dialogue, ATelnetSubnegotiationInACommandIsRefusedAndNeverSwallowsALineEnd) {
  const std::string chunk =
      "Subject: hi\r\n\r\nhello \xff\xf0"
      "alice@x>\r\nRCPT TO:<carol@y>\r\nDATA\r\nsmuggled\r\n.\r\n";
  const std::string after_mail =
      "RCPT TO:<bob@y>\r\nBDAT " + std::to_string(chunk.size()) + " LAST\r\n" + chunk;
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<j\xff\xfa@x>\r\n" + after_mail + "QUIT\r\n"),
      upstream("503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n221 bye\r\n"),
  });
  // The server gets the RCPT and BDAT lines and the chunk as the client sent them (and, with
  // no MAIL, refuses both: no message at all).
  EXPECT_EQ(r.upstream_per_step[2], after_mail + "QUIT\r\n");
  EXPECT_EQ(r.client_per_step[2].substr(0, 10), "500 5.5.2 ");
  EXPECT_NE(r.client_per_step[2].find("telnet subnegotiation (IAC SB"), std::string::npos)
      << r.client_per_step[2];
  auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->verb, "MAIL");
  EXPECT_TRUE(errors[0]->redacted);
  EXPECT_NE(errors[0]->note.find("telnet subnegotiation"), std::string::npos) << errors[0]->note;
  EXPECT_EQ(find_events(r, Direction::client_to_upstream, EventKind::command).size(), 4u)
      << "EHLO RCPT BDAT QUIT: nothing of the chunk is a command";
}

// nc without -C: an IAC WILL right before the LF must not take the LF as its option byte (that
// would merge two command lines). The cut-short sequence makes its line refused.
TEST(Dialogue, ALineEndEndsATelnetOptionNegotiationAndItsLineIsRefused) {
  for (std::string_view eol : {"\n", "\r\n", "\r"}) {
    SCOPED_TRACE(printable(eol));
    const std::string e(eol);
    const Result r = run_all_splits({
        client("NOOP a\xff\xfb" + e + "NOOP b" + e + "QUIT\r\n"),
        upstream("250 b\r\n221 bye\r\n"),
    });
    EXPECT_EQ(r.to_upstream, "NOOP b\r\nQUIT\r\n");
    EXPECT_EQ(r.to_client.substr(0, 10), "500 5.5.2 ");
    EXPECT_NE(r.to_client.find("cut short by the line ending"), std::string::npos) << r.to_client;
    EXPECT_NE(r.to_client.find("250 b\r\n221 bye\r\n"), std::string::npos) << r.to_client;
  }
}

// A SASL response with a subnegotiation is not forwarded either: the exchange is cancelled.
TEST(Dialogue, ATelnetSubnegotiationInASaslResponseCancelsTheExchange) {
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client("dXNl\xff\xfa"
             "cg==\r\n"),
      upstream("501 5.7.0 cancelled\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "*\r\n");
}

// A line ending that is not the client's own (its first line's, or CRLF) inside a command line
// is no command boundary. A program that puts unchecked text in a command (a recipient with a
// bare CR and a second RCPT after it) sends one line: a strict server refuses it whole, and so
// does mailtap, where splitting it added a recipient the server alone would never have taken.
TEST(Dialogue, ALineEndingNotTheClientsOwnIsNoCommandBoundary) {
  using namespace std::string_literals;
  for (const std::string& inside : {"\r"s, "\r\0"s}) {
    SCOPED_TRACE(printable(inside));
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply_chunking),
        client("MAIL FROM:<a@x>\r\n"),
        upstream("250 ok\r\n"),
        client("RCPT TO:<bob@y>" + inside + "RCPT TO:<carol@y>\r\nQUIT\r\n"),
        upstream("221 bye\r\n"),
    });
    EXPECT_EQ(r.upstream_per_step[4], "QUIT\r\n");
    EXPECT_EQ(r.client_per_step[4].substr(0, 31), "500 5.5.2 mailtap: the line has")
        << r.client_per_step[4];
    EXPECT_NE(r.client_per_step[4].find("inside it, where this client ends its lines with CRLF"),
              std::string::npos)
        << r.client_per_step[4];
    EXPECT_EQ(r.client_per_step[4].find("\r\n"), r.client_per_step[4].size() - 2)
        << "one reply for the one line";
    auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0]->verb, "RCPT");
    EXPECT_TRUE(errors[0]->redacted);
  }
}

// An LF ends a command line for every client, as at every server: a bare CR inside nc's line
// does not.
TEST(Dialogue, ABareLfClientsLinesEndAtItsLfAndCrlfButNotAtABareCr) {
  const Result r = run_all_splits({
      client("EHLO a\n"),
      upstream("250 a\r\n"),
      client("NOOP x\rNOOP y\nNOOP z\r\n"),
      upstream("250 z\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "EHLO a\r\nNOOP z\r\n");
  EXPECT_NE(r.to_client.find("a bare CR inside it, where this client ends its lines with CRLF or "
                             "LF"),
            std::string::npos)
      << r.to_client;
}

// A first line with a bare CR in it makes the bare CR the client's line ending only when the
// line is one a person types first: a program's first MAIL with a CR in its address is text, so
// neither it nor a later RCPT with a CR inside is split into two commands.
TEST(Dialogue, AFirstLineThatIsNoGreetingDoesNotMakeABareCrALineEnding) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x\rRCPT TO:<evil@y>>\r\nRCPT TO:<b@y>\rRCPT TO:<c@y>\r\nQUIT\r\n"),
      upstream("221 bye\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "QUIT\r\n");
  EXPECT_EQ(find_events(r, Direction::client_to_mailtap, EventKind::error).size(), 2u);
  EXPECT_EQ(find_events(r, Direction::mailtap_note, EventKind::rewrite).size(), 0u)
      << "nothing of a refused line was rewritten and sent";
}

// A SASL response with such an ending is not forwarded: the exchange is cancelled.
TEST(Dialogue, ALineEndingNotTheClientsOwnInASaslResponseCancelsTheExchange) {
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client("dXNl\rcg==\r\n"),
      upstream("501 5.7.0 cancelled\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "*\r\n");
}

// A BDAT line whose CR NUL (or bare CR) is not the client's own: where its chunk begins is not
// known, so nothing after it is read. (Taken as the line's end, the chunk began after the NUL;
// a client that meant otherwise had its chunk text read as commands.)
TEST(Dialogue, ABdatLineWithALineEndingNotTheClientsOwnEndsTheSession) {
  using namespace std::string_literals;
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
      upstream("250 ok\r\n250 ok\r\n"),
      client("BDAT 9 LAST\r\0hi\r\nRSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\n"s),
  });
  EXPECT_EQ(r.upstream_per_step[4], "");
  EXPECT_EQ(r.client_per_step[4].substr(0, 31), "421 4.5.4 mailtap: BDAT refused")
      << r.client_per_step[4];
  EXPECT_NE(r.client_per_step[4].find("(a CR NUL inside it, where this client ends its lines with "
                                      "CRLF or LF)"),
            std::string::npos)
      << r.client_per_step[4];
  EXPECT_NE(r.client_per_step[4].find("End each line with CRLF"), std::string::npos)
      << r.client_per_step[4];
}

// In a SASL response a line that begins "BDAT" is text: a bare CR in it does not end it early
// (which relayed what came after the CR as a command of its own).
TEST(Dialogue, ASaslResponseBeginningWithBdatIsCancelledWhole) {
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client("BDAT\rRCPT TO:<evil@y>\r\n"),
      upstream("501 5.7.0 cancelled\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[2], "*\r\n");
  EXPECT_EQ(r.to_upstream.find("evil"), std::string::npos) << r.to_upstream;
}

// From a bare-CR client (a terminal in raw mode), `BDAT 30\r` then an LF is a CRLF to a strict
// server, but may be the client's line and a chunk that begins with the LF: the chunk's place is
// not known, and nothing after the line is read. (Taken as CRLF, the chunk was shifted by an
// octet and its text read as commands: a second transaction to carol.)
TEST(Dialogue, ABdatLineEndingInCrlfFromABareCrClientEndsTheSession) {
  const Result r = run_all_splits({
      client("EHLO a\rMAIL FROM:<a@x>\r"),  // each line completes with the next octet
      upstream(ehlo_reply_chunking),
      client("RCPT TO:<b@y>\r"),
      upstream("250 ok\r\n"),
      client("BDAT 5 LAST\r"),
      upstream("250 ok\r\n"),
      client("\nabcdRSET\r"),
  });
  EXPECT_EQ(r.upstream_per_step[6], "");
  EXPECT_NE(r.client_per_step[6].find("421 4.5.4 mailtap: BDAT refused (its line ends in CR LF"),
            std::string::npos)
      << r.client_per_step[6];
}

// ---- endings -------------------------------------------------------------------------------

TEST(Dialogue, QuitReplyFinishesAndLaterBytesAreIgnored) {
  const Result r = run_all_splits({
      client("QUIT\r\nNOOP\r\n"),
      upstream("221 2.0.0 Bye\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "QUIT\r\n");
  EXPECT_EQ(r.client_per_step[1], "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(r.finished);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
  EXPECT_EQ(r.ending->reason, "221 2.0.0 Bye");
  EXPECT_FALSE(r.abandon);
}

// A 221 ends the session whatever it answers: Postfix says it to a lone "." read as a command,
// and closes. The dialogue ends there, so the session holds the 221 back until the record of
// that end is committed, and nothing pipelined behind it is answered by mailtap's own 421.
TEST(Dialogue, A221ToAnotherCommandEndsTheSessionAsTheServerClose) {
  const std::string goodbye = "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n";
  const Result r = run_all_splits({
      client("NOOP\r\n.\r\nNOOP\r\n"),
      upstream("250 2.0.0 Ok\r\n" + goodbye),
  });
  EXPECT_EQ(r.client_per_step[1], "250 2.0.0 Ok\r\n" + goodbye);
  EXPECT_TRUE(r.finished);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::upstream_closed);
  EXPECT_EQ(r.ending->reason, "upstream: 221 2.7.0 Error: I can break rules, too. Goodbye.");
}

// What came behind the QUIT is thrown away unread, and only counted (the session's note after
// its end says how much): an AUTH line typed ahead holds a secret.
TEST(Dialogue, WhatFollowsAQuitIsCountedNeverRecorded) {
  const std::string auth = "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n";
  const Result r = run_all_splits({
      client("QUIT\r\n" + auth),
      upstream("221 2.0.0 Bye\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "QUIT\r\n");
  EXPECT_EQ(r.client_octets_discarded, auth.size());
  for (const Event& e : r.events) {
    EXPECT_EQ(e.bytes.find("AGFsaWNl"), std::string::npos);
    EXPECT_EQ(e.note.find("AGFsaWNl"), std::string::npos);
  }
}

TEST(Dialogue, ClientEofAtCommandStateSendsMailtapsOwnQuit) {
  const Result r = run_all_splits({
      client("NOOP\r\n"),
      client_eof(),
      upstream("250 ok\r\n"),
      upstream("221 bye\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[1], "");  // NOOP ends a pipelined group: QUIT waits for its 250
  EXPECT_EQ(r.upstream_per_step[2], "QUIT\r\n");
  EXPECT_EQ(r.client_per_step[2], "250 ok\r\n");  // the client may still read; 221 is mailtap's
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
  EXPECT_FALSE(r.abandon);
  auto own = find_events(r, Direction::mailtap_to_upstream, EventKind::command);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0]->bytes, "QUIT\r\n");
  auto answer = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]->reply_code, 221);
}

// RFC 2920 3.1: NOOP, VRFY, EXPN (like EHLO, DATA, QUIT) must be the last command of a
// pipelined group. A client that sends one and closes (nc -N) did nothing wrong; mailtap's own
// QUIT pipelined behind it is an improper pipelining Postfix answers with "554 5.5.0 Error: SMTP
// protocol synchronization" (smtpd_forbid_unauth_pipelining, on by default from 3.9), which
// the client got as the answer to its command. So the QUIT waits for the replies owed.
TEST(Dialogue, ClientEofAfterACommandEndingAPipelinedGroupQuitsOnlyAfterItsReply) {
  for (const std::string& last : {"NOOP\r\n"s, "VRFY bob\r\n"s, "EXPN staff\r\n"s, "HELP\r\n"s,
                                  "XFOO\r\n"s, "RSET\r\nNOOP\r\n"s}) {
    SCOPED_TRACE(printable(last));
    const std::string replies = last.rfind("RSET", 0) == 0 ? "250 ok\r\n250 ok\r\n" : "252 ok\r\n";
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply),
        client(last),
        client_eof(),
        upstream(replies),
        upstream("221 bye\r\n"),
    });
    EXPECT_EQ(r.upstream_per_step[3], "");
    EXPECT_EQ(r.upstream_per_step[4], "QUIT\r\n");
    EXPECT_EQ(r.client_per_step[4], replies);
    EXPECT_TRUE(r.finished);
    ASSERT_TRUE(r.ending);
    EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
  }
}

// MAIL, RCPT and RSET may be followed by more commands in a group (RFC 2920): the QUIT goes at
// once, as a pipelining client would send it.
TEST(Dialogue, ClientEofAfterPipelinableCommandsQuitsAtOnce) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
      client_eof(),
      upstream("250 ok\r\n250 ok\r\n221 bye\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[3], "QUIT\r\n");
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
}

// An MTA pipelines QUIT behind its end of data and closes before the replies (it gave up
// waiting): a FIN does not say whether it still reads, so the replies go, the record notes
// where it closed, and the 221 to its QUIT does not make the session a clean quit.
TEST(Dialogue, ClientEofBeforeTheReplyToItsQuitEndsAsItsClose) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("hi\r\n.\r\nQUIT\r\n"),
      client_eof(),
      upstream("250 queued\r\n221 bye\r\n"),
  });
  EXPECT_EQ(r.client_per_step[4], "250 queued\r\n221 bye\r\n");  // it may still read them
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
  EXPECT_EQ(r.ending->reason,
            "client closed the connection before the reply to its QUIT (221 bye)");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].final_code, 250);
  const auto notes = find_events(r, Direction::mailtap_note, EventKind::note);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]->note.rfind("client closed the connection while replies were still due", 0),
            0u);
}

// Closed with nothing due (after the 221 came, or idle): no note, the ending as before.
TEST(Dialogue, ClientEofWithNoReplyDueAddsNoNote) {
  const Result r = run_all_splits({
      client("NOOP\r\n"),
      upstream("250 ok\r\n"),
      client_eof(),
      upstream("221 bye\r\n"),
  });
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
  EXPECT_TRUE(find_events(r, Direction::mailtap_note, EventKind::note).empty());
}

TEST(Dialogue, ClientEofAfterUnterminatedLineDropsItAndQuits) {
  const Result r = run_all_splits(
      {client("NOOP\r\nRSET"), client_eof(), upstream("250 ok\r\n"), upstream("221 bye\r\n")});
  EXPECT_EQ(r.to_upstream, "NOOP\r\nQUIT\r\n");
  EXPECT_TRUE(r.finished);
}

TEST(Dialogue, ClientEofRightAfterA0xFFStillEndsTheSession) {
  const Result r = run_all_splits(
      {client("NOOP\r\n\xff"), client_eof(), upstream("250 ok\r\n"), upstream("221 bye\r\n")});
  EXPECT_EQ(r.to_upstream, "NOOP\r\nQUIT\r\n");
  EXPECT_TRUE(r.finished);
}

TEST(Dialogue, ClientEofWhileWaitingForASyncReplyQuitsAfterIt) {
  const Result r =
      run_all_splits({client(ehlo), client_eof(), upstream(ehlo_reply), upstream("221 bye\r\n")});
  EXPECT_EQ(r.upstream_per_step[1], "");
  EXPECT_EQ(r.upstream_per_step[2], "QUIT\r\n");
  EXPECT_TRUE(r.finished);
}

TEST(Dialogue, ClientEofDuringAuthCancelsTheExchangeBeforeQuitting) {
  const Result r = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client_eof(),
      upstream("501 5.7.0 Authentication aborted\r\n221 2.0.0 Bye\r\n"),
  });
  // "QUIT" alone would be read by the server as the SASL response.
  EXPECT_EQ(r.upstream_per_step[2], "*\r\nQUIT\r\n");
  EXPECT_EQ(r.client_per_step[3], "");
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
  auto answers = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0]->reply_code, 501);
  EXPECT_EQ(answers[1]->reply_code, 221);
}

TEST(Dialogue, ClientEofMidDataAbandonsTheMessage) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("Subject: half\r\n\r\nhalf a mess"),
      client_eof(),
  });
  EXPECT_EQ(r.upstream_per_step[2], "Subject: half\r\n\r\nhalf a mess");
  EXPECT_EQ(r.upstream_per_step[3], "");  // no terminator, no QUIT: the upstream must discard it
  EXPECT_TRUE(r.finished);
  EXPECT_TRUE(r.abandon);
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
  EXPECT_EQ(r.ending->reason, "client closed inside a message body");
  EXPECT_TRUE(r.messages.empty());
  // A client that closed only its sending side (nc -N, a message file without its final ".")
  // still reads: it is told why nothing was sent, in mailtap's own 421, recorded as such.
  const std::string told =
      "421 4.4.2 mailtap: the client closed its sending side inside the message body (no end of "
      "data: a line with a single \".\" was missing); the message was not sent: send it again, "
      "ending it with a line holding only \".\"\r\n";
  EXPECT_EQ(r.client_per_step[3], told);
  auto own = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0]->bytes, told);
  EXPECT_EQ(own[0]->reply_code, 421);
  EXPECT_EQ(own[0]->enhanced_status, "4.4.2");
}

TEST(Dialogue, ClientEofMidBdatChunkAbandonsTheMessage) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 100 LAST\r\nonly part"),
      client_eof(),
  });
  EXPECT_TRUE(r.abandon);
  EXPECT_EQ(r.upstream_per_step[3], "");
  EXPECT_EQ(r.client_per_step[3],
            "421 4.4.2 mailtap: the client closed its sending side inside a BDAT chunk (91 of its "
            "octets were still to come); the message was not sent: send it again, with as many "
            "octets after each BDAT line as its size says\r\n");
  EXPECT_EQ(r.ending->kind, Ending::Kind::client_closed);
}

TEST(Dialogue, UnsolicitedUpstream421Finishes) {
  const Result r = run_all_splits({upstream("421 4.3.2 Service shutting down\r\n")});
  EXPECT_EQ(r.client_per_step[0], "421 4.3.2 Service shutting down\r\n");
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ending->kind, Ending::Kind::upstream_closed);
  auto replies = find_events(r, Direction::upstream_to_client, EventKind::reply);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]->note, "unsolicited reply");
}

TEST(Dialogue, UpstreamClosingWithoutAReasonSaysItClosed) {
  const Result r = run_all_splits({client(ehlo), upstream_eof()});
  EXPECT_EQ(r.client_per_step[1], "421 4.4.2 mailtap: up.example:587 closed the connection\r\n");
  EXPECT_EQ(r.ending->reason, "upstream closed the connection");
}

// Closed inside a body: the server got no end of data, so it discards the message, and the
// client is told it may send it again (unlike a close after the end of data).
TEST(Dialogue, UpstreamClosingInsideABodySaysTheMessageWasNotDelivered) {
  const Result r = run_all_splits({
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      client("Subject: x\r\n\r\nhalf a bo"),
      upstream_eof(),
  });
  EXPECT_EQ(r.client_per_step[3],
            "421 4.4.2 mailtap: up.example:587 closed the connection; the message was not "
            "delivered (no end of data reached the server): send it again\r\n");
  EXPECT_EQ(r.ending->reason, "upstream closed the connection");
}

// Over TLS 1.3 a server that requires a client certificate refuses mailtap's missing one with
// an alert after mailtap's handshake is done: the session says why, not just "closed".
TEST(Dialogue, UpstreamEndingTlsWithAnAlertSaysWhyInThe421AndTheRecord) {
  const std::string why = "requires a client certificate (TLS alert \"certificate required\")";
  const Result r = run_all_splits({client(ehlo), upstream_eof(why)});
  EXPECT_EQ(r.client_per_step[1], "421 4.7.0 mailtap: up.example:587 " + why + "\r\n");
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ending->kind, Ending::Kind::upstream_closed);
  EXPECT_EQ(r.ending->reason, "up.example:587 " + why);
}

// A server that asked for a client certificate and ends the session with its first reply
// refuses what mailtap presented (or its absence), as Postfix's smtpd_tls_req_ccert does in SMTP
// rather than with an alert: the client gets the server's lines and mailtap's reason as the last
// one; the record keeps the server's reply as sent and what the client got as a rewrite.
DialogueOptions after_certificate_request() {
  DialogueOptions o = test_options();
  o.certificate_request_note =
      "asked for a client certificate in the TLS handshake, and mailtap presented none: give it "
      "one with --client-cert FILE";
  return o;
}

TEST(Dialogue, A421AfterACertificateRequestSaysWhatMailtapPresented) {
  const std::string refusal = "421 4.7.1 mx.example Error: No client certificate presented\r\n";
  const std::string told =
      "421-4.7.1 mx.example Error: No client certificate presented\r\n"
      "421 4.7.1 mailtap: up.example:587 asked for a client certificate in the TLS handshake, and "
      "mailtap presented none: give it one with --client-cert FILE\r\n";
  // As the reply to the client's EHLO, and as one that came before it (unsolicited).
  for (const Script& script :
       {Script{client(ehlo), upstream(refusal)}, Script{upstream(refusal)}}) {
    const Result r = run_all_splits(script, after_certificate_request());
    EXPECT_EQ(r.client_per_step.back(), told);
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.ending->kind, Ending::Kind::upstream_closed);
    EXPECT_EQ(r.ending->reason,
              "upstream: 421 4.7.1 mx.example Error: No client certificate presented; "
              "up.example:587 asked for a client certificate in the TLS handshake, and mailtap "
              "presented none: give it one with --client-cert FILE");
    auto replies = find_events(r, Direction::upstream_to_client, EventKind::reply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0]->bytes, refusal);
    auto rewrites = find_events(r, Direction::mailtap_to_client, EventKind::rewrite);
    ASSERT_EQ(rewrites.size(), 1u);
    EXPECT_EQ(rewrites[0]->bytes, told);
  }
  // A multi-line refusal keeps its lines; a bare "421" line gets its continuation mark.
  const Result multi =
      run_all_splits({upstream("421-4.7.1 a\r\n421\r\n")}, after_certificate_request());
  EXPECT_EQ(multi.client_per_step.back().rfind("421-4.7.1 a\r\n421-\r\n421 4.7.1 mailtap: ", 0), 0u)
      << multi.client_per_step.back();
}

TEST(Dialogue, Only421sThatAreTheFirstReplyAfterACertificateRequestAreExplained) {
  // A later 421 (a shutdown) is about something else; so is a 421 where no certificate was
  // asked for.
  const Result later = run_all_splits(
      {client(ehlo), upstream(ehlo_reply), client("NOOP\r\n"), upstream("421 4.3.2 bye\r\n")},
      after_certificate_request());
  EXPECT_EQ(later.client_per_step.back(), "421 4.3.2 bye\r\n");
  EXPECT_EQ(later.ending->reason, "upstream: 421 4.3.2 bye");
  const Result not_asked = run_all_splits({client(ehlo), upstream("421 4.7.1 no\r\n")});
  EXPECT_EQ(not_asked.client_per_step.back(), "421 4.7.1 no\r\n");
  const Result refused =
      run_all_splits({client(ehlo), upstream("554 5.7.1 no\r\n")}, after_certificate_request());
  EXPECT_EQ(refused.client_per_step.back(), "554 5.7.1 no\r\n");
}

// Long certificate names and a long path: the explanation is split into continuation lines,
// each within RFC 5321's 512 octets with its CRLF, the server's line kept as it came.
TEST(Dialogue, ALongCertificateExplanationIsSplitIntoLinesOfAtMost510Octets) {
  DialogueOptions o = test_options();
  const std::string dn = "CN=" + std::string(180, 'c') + ",O=" + std::string(120, 'o');
  o.certificate_request_note =
      "ended the session after mailtap presented its client certificate /" + std::string(250, 'p') +
      "/client.pem (" + dn + "): check that the server trusts its issuer (" + dn + ")";
  const std::string refusal = "421 4.7.1 Client certificate not trusted\r\n";
  const Result r = run_all_splits({upstream(refusal)}, o);
  const std::string told = r.client_per_step.back();
  EXPECT_EQ(told.rfind("421-4.7.1 Client certificate not trusted\r\n421-4.7.1 mailtap: ", 0), 0u)
      << told;
  std::size_t lines = 0;
  for (std::size_t start = 0; start < told.size(); ++lines) {
    const std::size_t end = told.find("\r\n", start);
    ASSERT_NE(end, std::string::npos) << told;
    EXPECT_LE(end - start, 510u) << told.substr(start, end - start);
    start = end + 2;
  }
  EXPECT_GE(lines, 3u) << told;
  EXPECT_NE(told.find("\r\n421 4.7.1 "), std::string::npos) << told;  // the last line
}

// A 421 answering the client's EHLO is blamed on the certificate only if it says so: "too many
// connections" is not about it. One that came unasked right after the handshake, before any
// command, is, whatever it says; "Certificate" in any case counts.
TEST(Dialogue, A421AnsweringACommandIsBlamedOnTheCertificateOnlyIfItSaysCertificate) {
  const Result busy = run_all_splits({client(ehlo), upstream("421 4.7.0 too many connections\r\n")},
                                     after_certificate_request());
  EXPECT_EQ(busy.client_per_step.back(), "421 4.7.0 too many connections\r\n");
  EXPECT_EQ(busy.ending->reason, "upstream: 421 4.7.0 too many connections");
  EXPECT_TRUE(find_events(busy, Direction::mailtap_to_client, EventKind::rewrite).empty());

  const Result says = run_all_splits({client(ehlo), upstream("421 4.7.1 Bad CERTIFICATE\r\n")},
                                     after_certificate_request());
  EXPECT_EQ(
      says.client_per_step.back().rfind("421-4.7.1 Bad CERTIFICATE\r\n421 4.7.1 mailtap: ", 0), 0u)
      << says.client_per_step.back();

  const Result unasked =
      run_all_splits({upstream("421 4.3.2 go away\r\n")}, after_certificate_request());
  EXPECT_EQ(unasked.client_per_step.back().rfind("421-4.3.2 go away\r\n421 4.3.2 mailtap: ", 0), 0u)
      << unasked.client_per_step.back();
}

// ---- replies a server cannot give -----------------------------------------------------------

// Scripts that end with a command (or end of data) awaiting the upstream's reply.
Script after_ehlo(std::string line, std::string ehlo_answer = ehlo_reply) {
  return {client(ehlo), upstream(std::move(ehlo_answer)), client(std::move(line))};
}
Script awaiting_data_reply() {
  return after_ehlo("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
}
Script awaiting_end_of_data_reply() {
  Script s = awaiting_data_reply();
  s.push_back(upstream("250 ok\r\n250 ok\r\n354 go\r\n"));
  s.push_back(client("hello\r\n.\r\n"));
  return s;
}
Script awaiting_sasl_reply() {
  Script s = after_ehlo("AUTH LOGIN\r\n");
  s.push_back(upstream("334 VXNlcm5hbWU6\r\n"));
  s.push_back(client("YWxpY2U=\r\n"));
  return s;
}
Script awaiting_bdat_reply() {
  return after_ehlo("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3 LAST\r\nhi\n", ehlo_reply_chunking);
}

struct ReplyCase {
  std::string what;
  Script script;  // ends awaiting the reply
  std::string reply;
  std::string prior;  // replies to the commands before the one tested, in the same read
};

ReplyCase reply_case(std::string what, Script script, std::string reply, std::string prior = {}) {
  return {std::move(what), std::move(script), std::move(reply), std::move(prior)};
}

// The (command, reply class) pairs impossible_reply refuses, one or more codes each.
std::vector<ReplyCase> impossible_replies() {
  const std::string mail_rcpt = "250 ok\r\n250 ok\r\n";
  return {
      reply_case("220 to EHLO (a second greeting)", {client(ehlo)}, "220 up.example again\r\n"),
      reply_case("251 to EHLO", {client(ehlo)}, "251 hello\r\n"),
      reply_case("354 to EHLO", {client(ehlo)}, "354 go\r\n"),
      reply_case("334 to EHLO", {client(ehlo)}, "334 VXNlcm5hbWU6\r\n"),
      reply_case("150 to EHLO", {client(ehlo)}, "150 wait\r\n"),
      reply_case("220 to HELO", {client("HELO c\r\n")}, "220 up.example again\r\n"),
      reply_case("250 to DATA", awaiting_data_reply(), "250 ok\r\n", mail_rcpt),
      reply_case("221 to DATA", awaiting_data_reply(), "221 bye\r\n", mail_rcpt),
      reply_case("334 to DATA", awaiting_data_reply(), "334 go\r\n", mail_rcpt),
      reply_case("150 to DATA", awaiting_data_reply(), "150 go\r\n", mail_rcpt),
      reply_case("354 to MAIL", after_ehlo("MAIL FROM:<a@x>\r\n"), "354 go\r\n"),
      reply_case("334 to MAIL", after_ehlo("MAIL FROM:<a@x>\r\n"), "334 go\r\n"),
      reply_case("354 to RCPT", after_ehlo("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"), "354 go\r\n",
                 "250 ok\r\n"),
      reply_case("354 to RSET", after_ehlo("RSET\r\n"), "354 go\r\n"),
      reply_case("334 to NOOP", after_ehlo("NOOP\r\n"), "334 go\r\n"),
      reply_case("354 to QUIT", after_ehlo("QUIT\r\n"), "354 go\r\n"),
      reply_case("354 to VRFY", after_ehlo("VRFY b\r\n"), "354 go\r\n"),
      reply_case("334 to EXPN", after_ehlo("EXPN list\r\n"), "334 go\r\n"),
      reply_case("354 to HELP", after_ehlo("HELP\r\n"), "354 go\r\n"),
      reply_case("150 to NOOP", after_ehlo("NOOP\r\n"), "150 go\r\n"),
      reply_case("354 to the end of data", awaiting_end_of_data_reply(), "354 go\r\n"),
      reply_case("334 to the end of data", awaiting_end_of_data_reply(), "334 go\r\n"),
      reply_case("354 to BDAT LAST", awaiting_bdat_reply(), "354 go\r\n", mail_rcpt),
      reply_case("354 to AUTH", after_ehlo("AUTH LOGIN\r\n"), "354 go\r\n"),
      reply_case("354 to a SASL response", awaiting_sasl_reply(), "354 go\r\n"),
  };
}

TEST(Dialogue, AReplyNoServerMayGiveToItsCommandEndsTheSession) {
  for (const ReplyCase& c : impossible_replies()) {
    SCOPED_TRACE(c.what);
    Script script = c.script;
    script.push_back(upstream(c.prior + c.reply));
    script.push_back(client("NOOP\r\n"));
    const Result r = run_all_splits(script);
    const std::size_t at = script.size() - 2;
    const std::string& to_client = r.client_per_step[at];
    // The replies before it are relayed; then the client gets mailtap's 421.
    EXPECT_EQ(to_client.substr(0, c.prior.size()), c.prior);
    EXPECT_EQ(to_client.find("421 4.5.0 mailtap: up.example:587 "), c.prior.size()) << to_client;
    EXPECT_NE(to_client.find("which SMTP does not allow"), std::string::npos) << to_client;
    // The impossible reply itself never reaches the client.
    const std::string& impossible = c.reply;
    EXPECT_EQ(to_client.find(impossible, c.prior.size()), std::string::npos) << to_client;
    EXPECT_TRUE(r.finished);
    EXPECT_TRUE(r.abandon);  // no QUIT: the server may read it as anything by now
    ASSERT_TRUE(r.ending);
    EXPECT_EQ(r.ending->kind, Ending::Kind::error);
    EXPECT_NE(r.ending->reason.find(impossible.substr(0, 3)), std::string::npos)
        << r.ending->reason;
    EXPECT_EQ(r.upstream_per_step.back(), "");
    EXPECT_TRUE(r.messages.empty());
    auto refused = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0]->bytes, impossible);
    EXPECT_EQ(refused[0]->note.rfind("impossible reply: ", 0), 0u) << refused[0]->note;
  }
}

// The report's case: one reply too many shifts the rest, and DATA gets the RCPT's 250. Without
// the check mailtap took DATA as refused and relayed the body as commands, while the server,
// in DATA mode, queued it.
TEST(Dialogue, ShiftedRepliesDoNotTurnABodyIntoCommands) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream("220 up.example again\r\n"),
      client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
      upstream(ehlo_reply + "250 ok\r\n250 ok\r\n"),
      client("hello\r\n.\r\n"),
  });
  EXPECT_EQ(
      r.client_per_step[1].rfind("421 4.5.0 mailtap: up.example:587 answered EHLO with 220", 0), 0u)
      << r.client_per_step[1];
  EXPECT_EQ(r.to_upstream, ehlo);
  EXPECT_EQ(find_events(r, Direction::client_to_upstream, EventKind::command).size(), 1u);
  ASSERT_TRUE(r.ending);
  EXPECT_NE(r.ending->reason.find("answered EHLO with 220"), std::string::npos);
}

// A server that sends 354 and "250 queued" in one write: the 250 answers no end of data the
// client sent, and must not reach it as if it did.
TEST(Dialogue, AReplyInsideAMessageBodyIsNotTakenForTheEndOfDatasReply) {
  Script script = awaiting_data_reply();
  script.push_back(upstream("250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 queued early\r\n"));
  script.push_back(client("hello\r\n.\r\n"));
  const Result r = run_all_splits(script);
  const std::string& to_client = r.client_per_step[3];
  EXPECT_EQ(to_client.rfind("250 ok\r\n250 ok\r\n354 go\r\n421 4.5.0 mailtap: up.example:587 "
                            "replied 250 while the message body was still being sent",
                            0),
            0u)
      << to_client;
  EXPECT_EQ(to_client.find("queued early"), std::string::npos);
  EXPECT_TRUE(r.abandon);
  EXPECT_EQ(r.upstream_per_step[4], "");
  EXPECT_TRUE(r.messages.empty());
}

// A server refusing the message before its end (a size limit, a filter) or closing (421): the
// client gets the server's own reply, so it does not retry a permanently refused message, and
// no more of the body goes upstream, not even what the session still has queued for it
// (abandon_upstream).
TEST(Dialogue, AnErrorReplyInsideAMessageBodyIsRelayedAndStopsTheBody) {
  for (const std::string& refusal :
       {std::string("552 5.3.4 Message size exceeds fixed limit\r\n"),
        std::string("552-5.3.4 Message size exceeds\r\n552 5.3.4 fixed limit\r\n"),
        std::string("451 4.7.1 try again later\r\n"), std::string("421 4.3.2 shutting down\r\n")}) {
    SCOPED_TRACE(refusal);
    Script script = awaiting_end_of_data_reply();
    script.pop_back();
    script.push_back(client("hello\r\n"));
    script.push_back(upstream(refusal));
    script.push_back(client("more body\r\n.\r\nQUIT\r\n"));
    const Result r = run_all_splits(script);
    const std::size_t at = script.size() - 2;
    EXPECT_EQ(r.client_per_step[at], refusal);
    EXPECT_EQ(r.client_per_step.back(), "");
    EXPECT_EQ(r.upstream_per_step.back(), "");
    EXPECT_EQ(r.to_upstream.find("more body"), std::string::npos) << r.to_upstream;
    EXPECT_TRUE(r.to_upstream.ends_with("DATA\r\nhello\r\n")) << r.to_upstream;
    EXPECT_TRUE(r.finished);
    EXPECT_TRUE(r.abandon);  // no QUIT, no end of data: the server discards the message
    ASSERT_TRUE(r.ending);
    EXPECT_EQ(r.ending->kind, Ending::Kind::upstream_closed);
    EXPECT_NE(r.ending->reason.find(refusal.substr(0, 3)), std::string::npos) << r.ending->reason;
    EXPECT_TRUE(r.messages.empty());
    EXPECT_TRUE(find_events(r, Direction::upstream_to_mailtap, EventKind::reply).empty());
    EXPECT_TRUE(find_events(r, Direction::mailtap_to_client, EventKind::local_reply).empty());
    auto replies = find_events(r, Direction::upstream_to_client, EventKind::reply);
    ASSERT_FALSE(replies.empty());
    EXPECT_EQ(replies.back()->bytes, refusal);
    EXPECT_NE(replies.back()->note.find("message body was still being sent"), std::string::npos)
        << replies.back()->note;
    // The body relayed before the reply came is recorded before it.
    const auto at_event = [&r](const Event* e) { return e - r.events.data(); };
    auto body = find_events(r, Direction::client_to_upstream, EventKind::data);
    ASSERT_FALSE(body.empty());
    EXPECT_LT(at_event(body.back()), at_event(replies.back()));
  }
}

// A 2yz in the middle of the body, read after some of it was relayed, is still refused.
TEST(Dialogue, ASuccessReplyInsideAMessageBodyIsStillRefused) {
  Script script = awaiting_end_of_data_reply();
  script.pop_back();
  script.push_back(client("hello\r\n"));
  script.push_back(upstream("250 2.0.0 queued\r\n"));
  script.push_back(client("more body\r\n.\r\n"));
  const Result r = run_all_splits(script);
  const std::string& to_client = r.client_per_step[script.size() - 2];
  EXPECT_EQ(to_client.rfind("421 4.5.0 mailtap: up.example:587 replied 250 while the message "
                            "body was still being sent",
                            0),
            0u)
      << to_client;
  EXPECT_EQ(to_client.find("queued"), std::string::npos);
  EXPECT_EQ(r.upstream_per_step.back(), "");
  EXPECT_TRUE(r.abandon);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
}

// Replies while no command awaits one and no body is being sent. Relayed, each would be read
// as the answer to the client's next command, and every later reply would be one off.
std::vector<ReplyCase> unsolicited_replies() {
  const std::string ehlo_250 = "250 up.example\r\n";
  return {
      reply_case("250 before any command", {}, "250 hello\r\n"),
      reply_case("250 behind the EHLO reply", {client(ehlo)}, "250 extra\r\n", ehlo_250),
      reply_case("550 after MAIL's reply", after_ehlo("MAIL FROM:<a@x>\r\n", ehlo_250),
                 "550 5.0.0 late\r\n", "250 ok\r\n"),
      reply_case("535 while the client owes a SASL response",
                 after_ehlo("AUTH LOGIN\r\n", ehlo_250), "535 5.7.8 no\r\n",
                 "334 VXNlcm5hbWU6\r\n"),
      reply_case("354 behind DATA's refusal", awaiting_data_reply(), "354 go\r\n",
                 "250 ok\r\n250 ok\r\n554 5.5.1 no valid recipients\r\n"),
  };
}

TEST(Dialogue, AReplyNoCommandAwaitsEndsTheSession) {
  for (const ReplyCase& c : unsolicited_replies()) {
    SCOPED_TRACE(c.what);
    Script script = c.script;
    script.push_back(upstream(c.prior + c.reply));
    script.push_back(client("NOOP\r\n"));
    const Result r = run_all_splits(script);
    const std::string& to_client = r.client_per_step[script.size() - 2];
    EXPECT_EQ(to_client.substr(0, c.prior.size()), c.prior);
    EXPECT_EQ(to_client.substr(c.prior.size()),
              "421 4.5.0 mailtap: up.example:587 replied " + c.reply.substr(0, 3) +
                  " when no command awaited a reply, which SMTP does not allow, so its replies no "
                  "longer match the commands sent; closing without ending any open message. Start "
                  "a new session; if this recurs, tell the server's operator\r\n");
    EXPECT_EQ(r.client_per_step.back(), "");
    EXPECT_EQ(r.upstream_per_step.back(), "");
    EXPECT_EQ(r.to_upstream.find("NOOP"), std::string::npos) << r.to_upstream;
    EXPECT_TRUE(r.abandon);
    ASSERT_TRUE(r.ending);
    EXPECT_EQ(r.ending->kind, Ending::Kind::error);
    EXPECT_EQ(r.ending->reason, "upstream replied " + c.reply.substr(0, 3) +
                                    " when no command awaited a reply: every reply answers one "
                                    "command (RFC 5321 §4.2); only a 421 may come unasked");
    auto refused = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0]->bytes, c.reply);
    EXPECT_EQ(refused[0]->note.rfind("impossible reply: ", 0), 0u) << refused[0]->note;
    auto local = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
    ASSERT_EQ(local.size(), 1u);
    EXPECT_EQ(local[0]->reply_code, 421);
  }
}

// The server's view decides: a command the client sent that mailtap has not forwarded yet is
// none the server could be answering. Here NOOP waits behind EHLO's reply, and the reply after
// that one came in the same read, before NOOP went upstream. (Had the read ended between the
// two, NOOP would have gone first, and the second reply would be NOOP's by order.)
TEST(Dialogue, AReplyBeforeAHeldCommandWentUpstreamIsUnsolicited) {
  const Result r = run({client(ehlo + "NOOP\r\n"), upstream("250 up.example\r\n250 extra\r\n")},
                       whole, test_options());
  EXPECT_EQ(r.client_per_step[1].rfind("250 up.example\r\n421 4.5.0 mailtap: up.example:587 "
                                       "replied 250 when no command awaited a reply",
                                       0),
            0u)
      << r.client_per_step[1];
  EXPECT_EQ(r.to_upstream, ehlo);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
}

// What RFC 5321 allows stays allowed: each (command, reply) here is relayed as usual.
std::vector<ReplyCase> possible_replies() {
  const std::string mail_rcpt = "250 ok\r\n250 ok\r\n";
  return {
      reply_case("250 to EHLO", {client(ehlo)}, "250 up.example\r\n"),
      reply_case("502 to EHLO", {client(ehlo)}, "502 no EHLO\r\n"),
      reply_case("421 to EHLO", {client(ehlo)}, "421 4.3.2 bye\r\n"),
      reply_case("250 to HELO", {client("HELO c\r\n")}, "250 up.example\r\n"),
      reply_case("354 to DATA", awaiting_data_reply(), "354 go\r\n", mail_rcpt),
      reply_case("554 to DATA", awaiting_data_reply(), "554 5.5.1 no valid recipients\r\n",
                 mail_rcpt),
      reply_case("451 to DATA", awaiting_data_reply(), "451 4.3.0 try later\r\n", mail_rcpt),
      reply_case("250 to MAIL", after_ehlo("MAIL FROM:<a@x>\r\n"), "250 ok\r\n"),
      reply_case("553 to MAIL", after_ehlo("MAIL FROM:<a@x>\r\n"), "553 no\r\n"),
      reply_case("251 to RCPT", after_ehlo("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
                 "251 will forward\r\n", "250 ok\r\n"),
      reply_case("250 to RSET", after_ehlo("RSET\r\n"), "250 ok\r\n"),
      reply_case("250 to NOOP", after_ehlo("NOOP\r\n"), "250 ok\r\n"),
      reply_case("221 to QUIT", after_ehlo("QUIT\r\n"), "221 bye\r\n"),
      reply_case("252 to VRFY", after_ehlo("VRFY b\r\n"), "252 cannot verify\r\n"),
      reply_case("214 to HELP", after_ehlo("HELP\r\n"), "214 see RFC 5321\r\n"),
      reply_case("250 to the end of data", awaiting_end_of_data_reply(), "250 queued\r\n"),
      reply_case("554 to the end of data", awaiting_end_of_data_reply(), "554 spam\r\n"),
      reply_case("250 to BDAT LAST", awaiting_bdat_reply(), "250 queued\r\n", mail_rcpt),
      reply_case("334 to AUTH", after_ehlo("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n"),
      reply_case("535 to AUTH", after_ehlo("AUTH LOGIN\r\n"), "535 5.7.8 no\r\n"),
      reply_case("334 to a SASL response", awaiting_sasl_reply(), "334 UGFzc3dvcmQ6\r\n"),
      reply_case("235 to a SASL response", awaiting_sasl_reply(), "235 2.7.0 ok\r\n"),
      reply_case("354 to a verb mailtap does not know", after_ehlo("XFOO\r\n"), "354 go\r\n"),
  };
}

TEST(Dialogue, RepliesRfc5321AllowsAreRelayed) {
  for (const ReplyCase& c : possible_replies()) {
    SCOPED_TRACE(c.what);
    Script script = c.script;
    script.push_back(upstream(c.prior + c.reply));
    const Result r = run_all_splits(script);
    const std::string& to_client = r.client_per_step.back();
    EXPECT_EQ(to_client, c.prior + c.reply);
    EXPECT_TRUE(find_events(r, Direction::upstream_to_mailtap, EventKind::reply).empty());
    EXPECT_FALSE(r.ending && r.ending->kind == Ending::Kind::error);
  }
}

TEST(Dialogue, Upstream421InReplyFinishesAndDropsQueuedLocals) {
  const Result r =
      run_all_splits({client("NOOP\r\nSTARTTLS\r\n"), upstream("421 4.4.2 timeout\r\n")});
  EXPECT_EQ(r.client_per_step[1], "421 4.4.2 timeout\r\n");
  EXPECT_TRUE(r.finished);
}

TEST(Dialogue, UpstreamCloseTellsTheClientIn421) {
  const Result r = run_all_splits({client("NOOP\r\n"), upstream_eof(), client("NOOP\r\n")});
  EXPECT_EQ(r.client_per_step[1], "421 4.4.2 mailtap: up.example:587 closed the connection\r\n");
  EXPECT_EQ(r.upstream_per_step[2], "");
  EXPECT_EQ(r.ending->kind, Ending::Kind::upstream_closed);
}

// A STARTTLS server's greeting comes before TLS, where anyone on the path may write it: the
// client gets its text escaped (no escape sequence reaches a telnet user's terminal), the record
// keeps the server's bytes and the rewrite with the bytes the client got. Inside TLS (implicit
// TLS), and when nothing needed escaping, the greeting is relayed as it came.
TEST(Dialogue, APreTlsGreetingCannotActOnTheClientsTerminal) {
  const std::string hostile =
      "220-mx.example ESMTP\r\n220-\x1b]0;owned\x07\x1b[2J re-enter your password\r\n220 ready\r\n";
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(hostile), Phase::pre_tls);
  const std::string shown =
      "220-mx.example ESMTP\r\n220-\\x1b]0;owned\\x07\\x1b[2J re-enter your password\r\n"
      "220 ready\r\n";
  EXPECT_EQ(d.take_to_client(), shown);
  EXPECT_EQ(d.upstream_octets_taken(), hostile.size());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event().kind, EventKind::greeting);
  EXPECT_EQ(events[0].event().bytes, hostile);
  EXPECT_EQ(events[1].event().kind, EventKind::rewrite);
  EXPECT_EQ(events[1].event().direction, Direction::mailtap_to_client);
  EXPECT_EQ(events[1].event().bytes, shown);
  EXPECT_NE(events[1].event().note.find("before TLS, where nothing authenticates it: 3 "),
            std::string::npos);

  for (const auto& [raw, phase] :
       {std::pair{hostile, Phase::tls}, std::pair{std::string(greeting), Phase::pre_tls}}) {
    std::vector<RecordedEvent> events2;
    Dialogue d2(test_options(), events2, messages);
    d2.relay_greeting(reply_of(raw), phase);
    EXPECT_EQ(d2.take_to_client(), raw);
    EXPECT_EQ(events2.size(), 1u);
  }
}

// What the server had sent of a reply it never finished is kept (never relayed): a "250 ...
// queu" cut off after an end of data is the evidence that it took the message, which is what
// the 421 tells the client to check. So is the start of a multi-line reply cut off at a close.
TEST(Dialogue, AReplyTheServerNeverFinishedIsRecordedNotRelayed) {
  const std::string partial = "250 2.0.0 Ok queu";
  const Result r =
      run_all_splits({client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
                      upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
                      client("Subject: x\r\n\r\nhi\r\n.\r\n"), upstream(partial), upstream_eof()});
  EXPECT_EQ(r.client_per_step.back(),
            "421 4.4.2 mailtap: up.example:587 closed the connection after the end of data; "
            "it may have the message: check before sending it again\r\n");
  const auto kept = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]->bytes, partial);
  EXPECT_EQ(kept[0]->wire_size, partial.size());
  EXPECT_EQ(kept[0]->reply_code, 250);
  EXPECT_EQ(kept[0]->note,
            "not a whole reply when the session ended (upstream closed the connection after the "
            "end of data; it may have the message): not relayed");

  const std::string first_line = "250-first line\r\n250-sec";
  const Result r2 = run_all_splits({client("NOOP\r\n"), upstream(first_line), upstream_eof()});
  const auto kept2 = find_events(r2, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(kept2.size(), 1u);
  EXPECT_EQ(kept2[0]->bytes, first_line);
  EXPECT_EQ(r2.client_per_step.back(),
            "421 4.4.2 mailtap: up.example:587 closed the connection\r\n");
}

// A line too long is kept by its start, the same whatever the reads.
TEST(Dialogue, AnOverLongReplyLineIsKeptByItsStart) {
  const Result r =
      run_all_splits({client("NOOP\r\n"), upstream("250 " + std::string(9000, 'x') + "\r\n")},
                     test_options(), 997);
  const auto kept = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]->bytes, "250 " + std::string(1020, 'x'));
  EXPECT_EQ(kept[0]->note,
            "upstream sent a reply line longer than 8192 octets: its first 1024 octets, not "
            "relayed");
}

TEST(Dialogue, UpstreamResetIsToldAsAReset) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  (void)d.take_to_client();
  d.client_bytes("NOOP\r\n");
  d.upstream_closed({}, /*reset=*/true);
  EXPECT_EQ(d.take_to_client(), "421 4.4.2 mailtap: up.example:587 reset the connection\r\n");
  ASSERT_TRUE(d.ending());
  EXPECT_EQ(d.ending()->kind, Ending::Kind::upstream_closed);
  EXPECT_EQ(d.ending()->reason, "upstream reset the connection");
}

// Plain text inside TLS (Exim's "554 SMTP synchronization error") is quoted in mailtap's own
// 421, never relayed as the server's reply; after an end of data the server may have the
// message, and the 421 says so as for a close.
TEST(Dialogue, PlainTextInsideTlsIsQuotedInMailtapsOwn421) {
  for (const bool after_end : {false, true}) {
    SCOPED_TRACE(after_end ? "after the end of data" : "between commands");
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(test_options(), events, messages);
    d.relay_greeting(reply_of(greeting), Phase::tls);
    if (after_end) {
      d.client_bytes(ehlo);
      d.upstream_bytes(ehlo_reply_chunking);
      d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
      d.upstream_bytes("250 ok\r\n250 rcpt ok\r\n354 go\r\n");
      d.client_bytes("Subject: s\r\n\r\nbody\r\n.\r\n");
    } else {
      d.client_bytes("NOOP\r\n");
    }
    (void)d.take_to_client();
    d.upstream_sent_plain_text("554 SMTP synchronization error");
    const std::string what =
        "up.example:587 sent octets that are not TLS, perhaps a reply in plain text inside TLS "
        "(unencrypted, so not relayed): \"554 SMTP synchronization error\"" +
        std::string(after_end ? ", after the end of data" : "");
    const std::string said = d.take_to_client();
    EXPECT_TRUE(said.starts_with("421")) << said;
    EXPECT_EQ(said.find("\r\n554"), std::string::npos) << said;
    ASSERT_TRUE(d.ending());
    EXPECT_EQ(d.ending()->kind, Ending::Kind::upstream_closed);
    EXPECT_EQ(d.ending()->reason, what + std::string(after_end ? may_have_the_message_reason : ""));
  }
}

TEST(Dialogue, MalformedUpstreamReplyIsAnError) {
  const Result r = run_all_splits({client("NOOP\r\n"), upstream("hello there\r\n")});
  // The server named, the fault said, and what to do, as for a reply out of step.
  EXPECT_EQ(r.client_per_step[1],
            "421 4.5.0 mailtap: up.example:587 sent a malformed reply (a line that does not "
            "begin with a reply code (every line of a reply begins with its three-digit code, "
            "then a space or a hyphen)); closing. Start a new session; if this recurs, tell the "
            "server's operator\r\n");
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
}

// The octets of a malformed reply are in the record as they came, up to the line that made it
// malformed (what the same read held after it is not part of it).
TEST(Dialogue, AMalformedReplysOctetsAreRecorded) {
  const Result r = run_all_splits({
      client(ehlo),
      upstream(ehlo_reply_chunking),
      client("DATA\r\n"),
      upstream("354-go\r\n250 ok\r\nmore\r\n"),
  });
  EXPECT_TRUE(r.client_per_step[3].starts_with(
      "421 4.5.0 mailtap: up.example:587 sent a malformed reply (a continuation line with "))
      << r.client_per_step[3];
  auto kept = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]->bytes, "354-go\r\n250 ok\r\n");
  EXPECT_EQ(kept[0]->reply_code, 354);
  EXPECT_NE(kept[0]->note.find("malformed reply"), std::string::npos);
}

// A reply code out of range is recorded as that, not as a line without a code.
TEST(Dialogue, AnOutOfRangeReplyCodesNoteSaysSo) {
  const Result r = run_all_splits({client("NOOP\r\n"), upstream("650 weird\r\n")});
  auto kept = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0]->note,
            "malformed reply (reply code 650 is outside 100..599 (RFC 5321 §4.2)): not relayed, "
            "and the session was closed");
}

TEST(Dialogue, OverLongUpstreamReplyIsAnError) {
  const Result r =
      run_all_splits({client("NOOP\r\n"), upstream("250 " + std::string(9000, 'x') + "\r\n")},
                     test_options(), 997);
  EXPECT_EQ(r.client_per_step[1],
            "421 4.5.0 mailtap: up.example:587 sent a reply line longer than 8192 octets; "
            "closing. Start a new session; if this recurs, tell the server's operator\r\n");
  EXPECT_TRUE(r.finished);
}

TEST(Dialogue, AbortWritesA421AndFinishes) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.client_bytes("NOOP\r\n");
  d.abort("4.4.2 mailtap: no reply within 5m; closing", {Ending::Kind::timeout, "upstream slow"});
  EXPECT_EQ(d.take_to_client(), "421 4.4.2 mailtap: no reply within 5m; closing\r\n");
  EXPECT_TRUE(d.finished());
  EXPECT_EQ(d.ending()->kind, Ending::Kind::timeout);
  d.client_bytes("NOOP\r\n");
  d.upstream_bytes("250 ok\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "NOOP\r\n");
  EXPECT_EQ(d.take_to_client(), "");
}

TEST(Dialogue, AClientTimeoutSaysIdleOrWhichLineWasTooSlow) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue idle(test_options(), events, messages);
  idle.time_out_client("5m", /*line_begun=*/false);
  EXPECT_EQ(idle.take_to_client(),
            "421 4.4.2 mailtap: idle for 5m waiting for the client; closing\r\n");
  EXPECT_EQ(idle.ending()->kind, Ending::Kind::timeout);
  EXPECT_EQ(idle.ending()->reason, "client idle timeout");

  Dialogue slow(test_options(), events, messages);
  slow.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  slow.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  slow.take_to_client();
  slow.client_bytes("Subject: half a li");
  slow.time_out_client("10m", /*line_begun=*/true, "the mock's --timeout gives more");
  EXPECT_EQ(slow.take_to_client(),
            "421 4.4.2 mailtap: the client's message line was not complete within 10m; the "
            "mock's --timeout gives more; closing\r\n");
  EXPECT_EQ(slow.ending()->reason, "client line not complete in time");
}

// The client's turn ran out between commands: its 421, then mailtap's QUIT to the server, as
// when the client closes, so the record (and the server) show a clean end. Inside a body the
// message is abandoned by the close alone, as before.
TEST(Dialogue, AClientTimeoutBetweenCommandsEndsTheUpstreamWithAQuit) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue idle(test_options(), events, messages);
  idle.client_bytes("EHLO c\r\n");
  idle.upstream_bytes("250 mx\r\n");
  idle.take_to_upstream();
  idle.take_to_client();
  idle.take_events();
  idle.time_out_client("2s", /*line_begun=*/false);
  EXPECT_EQ(idle.take_to_client(),
            "421 4.4.2 mailtap: idle for 2s waiting for the client; closing\r\n");
  EXPECT_EQ(upstream_text(idle.take_to_upstream()), "QUIT\r\n");
  ASSERT_TRUE(idle.finished());
  EXPECT_EQ(idle.ending()->reason, "client idle timeout");
  std::vector<RecordedEvent> recorded = idle.take_events();
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded[0]->direction, Direction::mailtap_to_client);
  EXPECT_EQ(recorded[0]->reply_code, 421);
  EXPECT_EQ(recorded[1]->direction, Direction::mailtap_to_upstream);
  EXPECT_EQ(recorded[1]->bytes, "QUIT\r\n");
  EXPECT_EQ(recorded[1]->note,
            "the client was idle for 2s; mailtap ends the upstream session politely");

  // Inside an AUTH exchange: "*" first, or the server would read QUIT as the response.
  Dialogue in_auth(test_options(), events, messages);
  in_auth.client_bytes("AUTH LOGIN\r\n");
  in_auth.upstream_bytes("334 VXNlcm5hbWU6\r\n");
  in_auth.take_to_upstream();
  in_auth.time_out_client("2s", /*line_begun=*/false);
  EXPECT_EQ(upstream_text(in_auth.take_to_upstream()), "*\r\nQUIT\r\n");

  // Inside a body: no QUIT (it would be read as body), no end of data.
  Dialogue in_body(test_options(), events, messages);
  in_body.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  in_body.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  in_body.client_bytes("Subject: half\r\n\r\nhalf a mess");
  in_body.take_to_upstream();
  in_body.time_out_client("2s", /*line_begun=*/true);
  EXPECT_EQ(upstream_text(in_body.take_to_upstream()), "");
  EXPECT_TRUE(in_body.finished());

  // DATA's reply still awaited: the server may read what follows as the body.
  Dialogue after_data(test_options(), events, messages);
  after_data.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  after_data.upstream_bytes("250 ok\r\n250 ok\r\n");
  after_data.take_to_upstream();
  after_data.time_out_client("2s", /*line_begun=*/false);
  EXPECT_EQ(upstream_text(after_data.take_to_upstream()), "");
}

// A reply the owner held for a commit that did not come, and so never wrote to the client, is
// not counted as relayed to it: bytes_from_upstream (sessions.bytes_upstream_to_client) is what
// the client got of the server's replies, and the note says how many octets it did not get.
TEST(Dialogue, RepliesNeverWrittenToTheClientAreNotCountedAsRelayed) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  const std::string written = d.take_to_client();
  EXPECT_EQ(d.upstream_octets_taken(), written.size());
  d.client_bytes("hi\r\n.\r\n");
  d.upstream_bytes("250 2.0.0 Ok: queued as 4F2A\r\n");
  const std::string held = d.take_to_client();
  EXPECT_EQ(d.upstream_octets_taken(), held.size());
  d.replies_not_relayed("250 2.0.0 Ok: queued as 4F2A", d.upstream_octets_taken());
  EXPECT_EQ(d.bytes_from_upstream(), written.size());
  // A note is no octet on a wire: wire_size 0, the octets withheld in its text, so a sum of
  // wire_size over the record never counts them as sent.
  const auto notes = std::ranges::count_if(events, [&](const RecordedEvent& r) {
    return r->note == std::string(unrelayed_note_prefix) + std::to_string(held.size()) +
                          " octets (250 2.0.0 Ok: queued as 4F2A)" &&
           r->wire_size == 0;
  });
  EXPECT_EQ(notes, 1);
}

// The client did not read its replies: it is dropped with no 421 (it would not be read), and
// the server gets mailtap's QUIT only where it reads one as a command.
TEST(Dialogue, AClientNotReadingIsDroppedAndTheServerToldQuitWhereItCanReadIt) {
  const std::string limit = "2s (--timeout-command)";
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue pipelined(test_options(), events, messages);
  pipelined.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  pipelined.upstream_bytes("250 ok\r\n");
  EXPECT_EQ(upstream_text(pipelined.take_to_upstream()), "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  pipelined.take_to_client();
  pipelined.client_not_reading(limit);
  EXPECT_EQ(pipelined.take_to_client(), "");
  EXPECT_EQ(upstream_text(pipelined.take_to_upstream()), "QUIT\r\n");  // behind the RCPT
  ASSERT_TRUE(pipelined.finished());
  EXPECT_EQ(pipelined.ending()->kind, Ending::Kind::timeout);
  EXPECT_EQ(pipelined.ending()->reason, "client did not read its replies in time");
  std::vector<RecordedEvent> recorded = pipelined.take_events();
  ASSERT_GE(recorded.size(), 2u);
  EXPECT_EQ(recorded[recorded.size() - 2]->direction, Direction::mailtap_note);
  EXPECT_EQ(recorded[recorded.size() - 2]->note,
            "the client did not read its replies for 2s (--timeout-command): mailtap dropped "
            "the connection, as a 421 would have waited unread behind them");
  EXPECT_EQ(recorded.back()->direction, Direction::mailtap_to_upstream);
  EXPECT_EQ(recorded.back()->bytes, "QUIT\r\n");

  // The server waits for a SASL response: "*" first, or it would read QUIT as one.
  Dialogue in_auth(test_options(), events, messages);
  in_auth.client_bytes("AUTH LOGIN\r\n");
  in_auth.upstream_bytes("334 VXNlcm5hbWU6\r\n");
  in_auth.take_to_upstream();
  in_auth.client_not_reading(limit);
  EXPECT_EQ(upstream_text(in_auth.take_to_upstream()), "*\r\nQUIT\r\n");

  // DATA's reply is awaited: the server may read what comes next as the body. Lines the
  // client sent behind it are not read, ever.
  Dialogue after_data(test_options(), events, messages);
  after_data.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: x\r\n");
  after_data.upstream_bytes("250 ok\r\n250 ok\r\n");
  after_data.take_to_upstream();
  after_data.client_not_reading(limit);
  after_data.upstream_bytes("354 go\r\n");
  EXPECT_EQ(upstream_text(after_data.take_to_upstream()), "");
  EXPECT_TRUE(after_data.finished());
  EXPECT_FALSE(after_data.abandon_upstream());

  // Inside a body: no end of data, no QUIT, the message abandoned (the server discards it).
  Dialogue in_body(test_options(), events, messages);
  in_body.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  in_body.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  in_body.client_bytes("Subject: half\r\n\r\nhalf a mess");
  in_body.take_to_upstream();
  in_body.client_not_reading(limit);
  EXPECT_EQ(upstream_text(in_body.take_to_upstream()), "");
  EXPECT_TRUE(in_body.abandon_upstream());
  EXPECT_EQ(in_body.ending()->kind, Ending::Kind::timeout);
}

// RFC 2920 §3.1: VRFY (as NOOP, EXPN) ends a pipelined group. mailtap's QUIT behind one is
// improper pipelining, which Postfix 3.9 answers with 554 and a dropped session: with its reply
// still awaited, a client dropped for not reading leaves the server no QUIT at all.
TEST(Dialogue, AClientNotReadingBehindAVrfyGetsNoQuitPipelinedBehindIt) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.client_bytes("VRFY alice\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "VRFY alice\r\n");
  d.client_not_reading("2s (--timeout-command)");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "");
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.ending()->kind, Ending::Kind::timeout);
}

// ---- bounds and timers ---------------------------------------------------------------------

TEST(Dialogue, BacklogIsBoundedWhilePaused) {
  const std::string body(300 * 1024, 'b');
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  EXPECT_TRUE(d.wants_client_input());
  d.client_bytes(body);
  EXPECT_FALSE(d.wants_client_input());  // paused on DATA with more than 256 KiB waiting
  EXPECT_TRUE(d.awaiting_reply());
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  EXPECT_TRUE(d.wants_client_input());
  EXPECT_TRUE(d.in_data());
  EXPECT_EQ(d.take_to_upstream().size(), body.size());
}

TEST(Dialogue, PendingRepliesAreBounded) {
  DialogueOptions o = test_options();
  o.max_pending_replies = 3;
  const Result r = run_all_splits(
      {
          client("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"),
          upstream("250 1\r\n250 2\r\n"),
          upstream("250 3\r\n250 4\r\n250 5\r\n"),
      },
      o, 1, /*order_across_wires=*/false);
  EXPECT_EQ(r.upstream_per_step[0], "NOOP\r\nNOOP\r\nNOOP\r\n");
  EXPECT_EQ(r.upstream_per_step[1], "NOOP\r\nNOOP\r\n");
  EXPECT_FALSE(r.awaiting_reply_per_step[2]);
}

// Lines mailtap answers itself (here STARTTLS, refused) from a client that never reads: the
// replies it has not taken in stay under max_client_output, the lines wait unread, and once
// the owner has written the replies every line gets its own, in order.
TEST(Dialogue, OwnRepliesToAClientThatDoesNotReadAreBounded) {
  DialogueOptions o = test_options();
  o.max_client_output = 4096;
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(o, events, messages);
  const std::size_t lines = 1000;
  std::string flood;
  for (std::size_t i = 0; i < lines; ++i) flood += "STARTTLS\r\n";
  d.client_bytes(flood);
  std::string written;
  std::string taken = d.take_to_client();
  const std::string one_reply = taken.substr(0, taken.find("\r\n") + 2);
  ASSERT_EQ(one_reply.substr(0, 4), "502 ");
  for (int rounds = 0; !taken.empty(); ++rounds) {
    ASSERT_LT(rounds, 1000);
    EXPECT_LT(taken.size(), o.max_client_output + one_reply.size());
    // The owner could not write it yet: no more lines are read, nor bytes wanted.
    d.set_client_output_unwritten(taken.size());
    if (written.size() + taken.size() < lines * one_reply.size()) {
      EXPECT_FALSE(d.wants_client_input());
      EXPECT_FALSE(d.client_input_resumable());
      d.client_bytes("");
      EXPECT_EQ(d.take_to_client(), "");
    }
    // Written: the lines held back are read.
    written += taken;
    d.set_client_output_unwritten(0);
    if (d.client_input_resumable()) d.resume_client_input();
    taken = d.take_to_client();
  }
  std::string expected;
  for (std::size_t i = 0; i < lines; ++i) expected += one_reply;
  EXPECT_EQ(written, expected);
  EXPECT_TRUE(d.wants_client_input());
  EXPECT_FALSE(d.client_input_resumable());
}

TEST(Dialogue, BodyCaptureIsCappedButHashedInFull) {
  DialogueOptions o = test_options();
  o.max_body_capture = 8;
  const Result r = run_all_splits(
      {
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
          upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
          client("0123456789abcdef\r\n.\r\n"),
          upstream("250 queued\r\n"),
      },
      o);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].body, "01234567");
  EXPECT_TRUE(r.messages[0].body_truncated);
  EXPECT_EQ(r.messages[0].size, 18u);
  // The recorder hashes what it stores and then what the cap cut, in order: all of the text.
  std::string hashed;
  for (const Event& e : r.events)
    if (is_body_of(e, r.messages[0])) hashed += e.bytes;
  for (const UnrecordedBody& b : r.unrecorded_bodies) {
    EXPECT_EQ(b.transaction, 1u);
    EXPECT_EQ(b.kind, EventKind::data);
    hashed += b.wire;
  }
  EXPECT_EQ(hashed, "0123456789abcdef\r\n.\r\n");
}

// The body is recorded once, as its events: each carries its transaction's ordinal, and what
// --max-body cut is accounted for by one event with no bytes at the body's end.
TEST(Dialogue, BodyEventsCarryTheirTransactionAndAccountForWhatTheCapCut) {
  DialogueOptions o = test_options();
  o.max_body_capture = 12;
  const Result r = run_all_splits(
      {
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
          upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
          client("0123456789abcdef\r\n.\r\n"),
          upstream("250 queued\r\n"),
          client("MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"),
          upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
          client("short\r\n.\r\n"),
          upstream("250 queued\r\n"),
      },
      o);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].transaction, 1u);
  EXPECT_EQ(r.messages[1].transaction, 2u);
  EXPECT_EQ(r.messages[1].body, "short\r\n");
  EXPECT_FALSE(r.messages[1].body_truncated);
  std::uint64_t recorded = 0, unrecorded = 0;
  for (const Event& e : r.events) {
    if (e.kind != EventKind::data) continue;
    if (e.transaction == 1) (e.bytes.empty() ? unrecorded : recorded) += e.wire_size;
    if (e.bytes.empty()) {
      EXPECT_NE(e.note.find("not recorded: --max-body 12"), std::string::npos) << e.note;
    }
  }
  EXPECT_EQ(recorded, 12u);
  EXPECT_EQ(unrecorded, 18u + 3u - 12u);  // the terminator was relayed too
}

// --max-body counts the body as the server stores it, as `size` does: never the terminator,
// nor transparency dots. A body of at most the cap is recorded whole, terminator included, and
// not flagged; a longer one is recorded up to exactly the cap, and what was relayed past it
// (the terminator with it) goes unrecorded. Terminators split across reads, included.
TEST(Dialogue, MaxBodyCountsTheBodyNotTheTerminator) {
  constexpr std::size_t cap = 10;
  DialogueOptions o = test_options();
  o.max_body_capture = cap;
  for (std::size_t size = cap - 2; size <= cap + 2; ++size) {
    SCOPED_TRACE("body of " + std::to_string(size) + " octets");
    const std::string body = std::string(size - 2, 'b') + "\r\n";
    const Result r = run_all_splits(
        {
            client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
            upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
            client(body + "."),
            client("\r"),
            client("\n"),
            upstream("250 queued\r\n"),
        },
        o);
    ASSERT_EQ(r.messages.size(), 1u);
    const Message& m = r.messages[0];
    EXPECT_EQ(m.size, size);
    EXPECT_EQ(m.body_truncated, size > cap);
    EXPECT_EQ(m.body, body.substr(0, cap));
    std::string recorded, cut;  // the body's bytes in the record, the note of what was not
    for (const Event& e : r.merged_events())
      if (e.kind == EventKind::data && !e.bytes.empty()) recorded = e.bytes;
    for (const Event& e : r.events)
      if (e.kind == EventKind::data && e.bytes.empty()) cut = e.note;
    std::string unrecorded;
    for (const UnrecordedBody& b : r.unrecorded_bodies) unrecorded += b.wire;
    if (size <= cap) {
      EXPECT_EQ(recorded, body + ".\r\n");
      EXPECT_EQ(cut, "");
      EXPECT_EQ(unrecorded, "");
    } else {
      EXPECT_EQ(recorded, body.substr(0, cap));
      EXPECT_EQ(unrecorded, body.substr(cap) + ".\r\n");
      EXPECT_EQ(cut, std::to_string(size - cap + 3) +
                         " more octets relayed but not recorded: --max-body 10 octets");
    }
  }
}

TEST(Dialogue, MaxBodyDoesNotCountTransparencyDots) {
  DialogueOptions o = test_options();
  o.max_body_capture = 10;
  // Stored "a\r\n.\r\n.b\r\n" (10 octets) is "a\r\n..\r\n..b\r\n" on the wire (12).
  const Result whole = run_all_splits(
      {
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
          upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
          client("a\r\n..\r\n..b\r\n.\r\n"),
          upstream("250 queued\r\n"),
      },
      o);
  ASSERT_EQ(whole.messages.size(), 1u);
  EXPECT_FALSE(whole.messages[0].body_truncated);
  EXPECT_EQ(whole.messages[0].body, "a\r\n.\r\n.b\r\n");
  EXPECT_TRUE(whole.unrecorded_bodies.empty());

  // Cut right before a transparency dot: the dot is not kept (it stores nothing), and the body
  // read back is exactly the first octets of the body.
  for (std::size_t cap = 1; cap < 10; ++cap) {
    SCOPED_TRACE("cap " + std::to_string(cap));
    o.max_body_capture = cap;
    const Result r = run_all_splits(
        {
            client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
            upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
            client("a\r\n..\r\n..b\r\n.\r\n"),
            upstream("250 queued\r\n"),
        },
        o);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_TRUE(r.messages[0].body_truncated);
    EXPECT_EQ(r.messages[0].body, std::string("a\r\n.\r\n.b\r\n").substr(0, cap));
  }
}

TEST(Dialogue, MaxBodyAtTheCapForBdatToo) {
  DialogueOptions o = test_options();
  o.max_body_capture = 4;
  for (const std::string chunk : {"abc", "abcd", "abcde"}) {
    const Result r = run_all_splits(
        {
            client(ehlo),
            upstream(ehlo_reply_chunking),
            client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT " + std::to_string(chunk.size()) +
                   " LAST\r\n" + chunk),
            upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
        },
        o);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].body_truncated, chunk.size() > 4) << chunk;
    EXPECT_EQ(r.messages[0].body, chunk.substr(0, 4));
  }
}

// A session that stops inside a body (a connection error, the relay ending) ends the dialogue
// with end(): the octets --max-body cut are still accounted for, as at the body's end.
TEST(Dialogue, EndingInsideACappedBodyStillAccountsForEveryOctetRelayed) {
  DialogueOptions o = test_options();
  o.max_body_capture = 4;
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(o, events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  d.client_bytes("half a body\r\n");
  d.client_bytes("more");
  d.end(Ending{Ending::Kind::error, "relay ended unexpectedly"});
  EXPECT_TRUE(d.finished());
  std::uint64_t relayed = 0;
  for (const RecordedEvent& e : events)
    if (e->direction == Direction::client_to_upstream) relayed += e->wire_size;
  EXPECT_EQ(relayed, d.bytes_to_upstream());
  EXPECT_EQ(d.take_to_client(), greeting + "250 ok\r\n250 ok\r\n354 go\r\n");  // end() says nothing
}

// An upstream that answers BDAT before mailtap has relayed its chunk did not read the chunk,
// so it would take the rest as commands: the reply is not relayed, nothing more goes upstream.
TEST(Dialogue, AReplyToBdatBeforeItsChunkWasRelayedEndsTheSession) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 10 LAST\r\nhalf");
  d.upstream_bytes("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
  d.client_bytes("RSET\r\n");
  EXPECT_TRUE(d.finished());
  EXPECT_TRUE(d.abandon_upstream());
  EXPECT_EQ(upstream_text(d.take_to_upstream()).find("RSET"), std::string::npos);
  const std::string to_client = d.take_to_client();
  EXPECT_EQ(to_client.find("queued"), std::string::npos) << to_client;
  EXPECT_NE(to_client.find("421 4.5.0 mailtap: up.example:587 answered BDAT before its chunk"),
            std::string::npos)
      << to_client;
  EXPECT_TRUE(messages.empty());
}

// The client's octets the record counts as relayed, less those it says were never sent: what
// sessions.bytes_client_to_upstream must equal (docs/recording.md, "Byte counts").
std::uint64_t recorded_as_sent(const std::vector<RecordedEvent>& events) {
  std::uint64_t sent = 0;
  for (const RecordedEvent& e : events) {
    if (e->direction == Direction::client_to_upstream) sent += e->wire_size;
    if (is_unsent_note(*e)) sent -= e->wire_size;
  }
  return sent;
}

// A server refusing the message mid-body: what the dialogue had relayed but not yet handed to
// its owner never goes upstream, so it is not counted as sent, and the record says so.
TEST(Dialogue, ABodyStoppedByTheServerCountsOnlyWhatWentUpstream) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  d.client_bytes("hello\r\n");
  std::string written = upstream_text(d.take_to_upstream());
  EXPECT_EQ(written, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhello\r\n");
  const std::string queued = "queued, never written\r\n";
  d.client_bytes(queued);
  d.upstream_bytes("552 5.3.4 Message size exceeds fixed limit\r\n");
  ASSERT_TRUE(d.abandon_upstream());
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "");
  EXPECT_EQ(d.bytes_to_upstream(), written.size());
  EXPECT_EQ(recorded_as_sent(events), d.bytes_to_upstream());
  const auto unsent = std::find_if(events.begin(), events.end(), [](const RecordedEvent& e) {
    return e->direction == Direction::client_to_mailtap;
  });
  ASSERT_NE(unsent, events.end());
  EXPECT_EQ((*unsent)->kind, EventKind::data);
  EXPECT_EQ((*unsent)->transaction, 1u);
  EXPECT_EQ((*unsent)->wire_size, queued.size());
  EXPECT_TRUE((*unsent)->bytes.empty());
}

// What the owner had taken and then dropped unwritten (the upstream abandoned, or a write to
// it failed) comes off the count too, and only the client's octets: mailtap's own lines (here
// the QUIT for a client gone) were never counted.
TEST(Dialogue, OutputTheOwnerDroppedIsTakenOffTheCount) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  const std::uint64_t commands = upstream_text(d.take_to_upstream()).size();
  d.client_bytes("hello\r\nworld\r\n");
  const UpstreamOutput held = d.take_to_upstream();  // the owner has not written it yet
  ASSERT_EQ(held.relayed_size(), 14u);
  d.client_closed();  // inside the body: abandoned
  ASSERT_TRUE(d.abandon_upstream());
  d.upstream_output_dropped(held.relayed_size());
  EXPECT_EQ(d.bytes_to_upstream(), commands);
  EXPECT_EQ(recorded_as_sent(events), commands);
}

TEST(Dialogue, TimerQueriesFollowTheDialogue) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  const auto t0 = Dialogue::Clock::time_point{} + std::chrono::seconds(100);
  d.set_time(t0);
  EXPECT_FALSE(d.awaiting_reply());
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  EXPECT_TRUE(d.awaiting_reply());
  EXPECT_EQ(d.oldest_pending_since(), t0);
  EXPECT_FALSE(d.awaiting_end_of_data());
  d.set_time(t0 + std::chrono::seconds(1));
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  EXPECT_TRUE(d.in_data());
  EXPECT_FALSE(d.awaiting_reply());
  d.client_bytes("x\r\n.\r\n");
  EXPECT_FALSE(d.in_data());
  EXPECT_TRUE(d.awaiting_end_of_data());
  d.upstream_bytes("250 queued\r\n");
  EXPECT_FALSE(d.awaiting_reply());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].started, t0);  // when MAIL was sent
  EXPECT_EQ(messages[0].finished, t0 + std::chrono::seconds(1));
}

TEST(Dialogue, ClientProgressCountsCompleteLinesNotBytes) {
  // The session restarts the client's clock only when this moves (slowloris defence).
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  const std::uint64_t start = d.client_progress();
  d.client_bytes("NO");
  d.client_bytes("OP");
  EXPECT_EQ(d.client_progress(), start);
  d.client_bytes("\r\n");
  EXPECT_EQ(d.client_progress(), start + 1);
  d.upstream_bytes("250 ok\r\n");
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  const std::uint64_t in_body = d.client_progress();
  EXPECT_EQ(in_body, start + 4);
  for (char c : std::string("a slow body line")) d.client_bytes(std::string(1, c));
  EXPECT_EQ(d.client_progress(), in_body);
  d.client_bytes("\r\n");
  EXPECT_EQ(d.client_progress(), in_body + 1);
  // A long line counts every 64 KiB.
  d.client_bytes(std::string(std::size_t{64} * 1024, 'x'));
  EXPECT_EQ(d.client_progress(), in_body + 2);
}

TEST(Dialogue, UpstreamProgressCountsCompleteReplyLinesNotBytes) {
  // The session restarts the upstream's clock only when this moves (a tarpit trickling its
  // reply is cut off), once per line of a multi-line reply.
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  const std::uint64_t start = d.upstream_progress();
  d.client_bytes("MAIL FROM:<a@x>\r\n");
  EXPECT_FALSE(d.reply_partly_received());
  for (char c : std::string("250-2.1.0 a slow")) d.upstream_bytes(std::string(1, c));
  EXPECT_EQ(d.upstream_progress(), start);
  EXPECT_TRUE(d.reply_partly_received());
  d.upstream_bytes("\r\n250 ok");
  EXPECT_EQ(d.upstream_progress(), start + 1);
  EXPECT_TRUE(d.awaiting_reply());
  d.upstream_bytes("\r\n");
  EXPECT_EQ(d.upstream_progress(), start + 2);
  EXPECT_FALSE(d.reply_partly_received());
  EXPECT_FALSE(d.awaiting_reply());
}

TEST(Dialogue, AReplyLineSaysTheServerHadTheCommandItAnswersNotThoseBehindIt) {
  // The session starts a reply's clock once the server has its command: a reply line to a
  // command says so (the server answered it), for that command only, not for those pipelined
  // behind it, nor before a whole line came.
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  std::uint64_t queued = d.take_to_upstream().size();
  const std::string mail = "MAIL FROM:<a@x>\r\n";
  const std::string rcpt = "RCPT TO:<b@y>\r\n";
  d.client_bytes(mail + rcpt);
  queued += d.take_to_upstream().size();
  EXPECT_LT(d.upstream_answered_through(), queued - rcpt.size());
  d.upstream_bytes("250-2.1.0 a");
  EXPECT_LT(d.upstream_answered_through(), queued - rcpt.size());
  d.upstream_bytes(" first line\r\n250");
  EXPECT_EQ(d.upstream_answered_through(), queued - rcpt.size());
  d.upstream_bytes(" ok\r\n");
  EXPECT_EQ(d.upstream_answered_through(), queued - rcpt.size());
  d.upstream_bytes("250 2.1.5 ok\r\n");
  EXPECT_EQ(d.upstream_answered_through(), queued);
}

TEST(Dialogue, UpstreamRepliesCountsWholeRepliesOnly) {
  // mailtap replay's clock restarts with each whole reply: neither bytes nor the lines of a
  // multi-line reply move it, and pipelined replies that come together each count.
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  const std::uint64_t start = d.upstream_replies();
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  d.upstream_bytes("250-2.1.0 one\r\n250");
  EXPECT_EQ(d.upstream_replies(), start);
  d.upstream_bytes(" two\r\n");
  EXPECT_EQ(d.upstream_replies(), start + 1);
  d.client_bytes("RCPT TO:<c@y>\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n");
  EXPECT_EQ(d.upstream_replies(), start + 3);
}

TEST(Dialogue, NoReplyIsOwedForABdatWhoseChunkIsStillComing) {
  // The client is on the clock for its chunk; the server, for the replies it has all it needs
  // to give (here the first chunk's, with the second pipelined behind it).
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n");
  EXPECT_FALSE(d.upstream_owes_reply());
  d.client_bytes("BDAT 4\r\nab");
  EXPECT_TRUE(d.awaiting_reply());
  EXPECT_FALSE(d.upstream_owes_reply());
  EXPECT_TRUE(d.in_data());
  d.client_bytes("cdBDAT 3 LAST\r\ne");
  EXPECT_TRUE(d.upstream_owes_reply());  // the first chunk's reply
  EXPECT_FALSE(d.awaiting_end_of_data());
  d.upstream_bytes("250 chunk\r\n");
  EXPECT_FALSE(d.upstream_owes_reply());  // the last chunk is still coming
  d.client_bytes("fg");
  EXPECT_TRUE(d.upstream_owes_reply());
  EXPECT_TRUE(d.awaiting_end_of_data());
}

// A session that offered CHUNKING, with MAIL and RCPT accepted.
void start_chunking_transaction(Dialogue& d) {
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n");
}

// The server cannot have the message while its BDAT LAST chunk is still coming.
TEST(Dialogue, ABdatLastWhoseChunkIsStillComingIsNoEndOfDataTheServerHas) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  start_chunking_transaction(d);
  d.client_bytes("BDAT 100000 LAST\r\nabc");
  EXPECT_TRUE(d.in_data());
  EXPECT_FALSE(d.upstream_owes_reply());
  EXPECT_FALSE(d.end_of_data_unanswered()) << "shutdown would wait for the whole chunk";
}

// Recording failed inside the LAST chunk: the rest is withheld; the server never gets the end.
TEST(Dialogue, AWithheldBdatLastIsNoEndOfDataTheServerHas) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  start_chunking_transaction(d);
  d.client_bytes("BDAT 100000 LAST\r\nabc");
  d.recording_failed("disk full");
  d.client_bytes("def");
  EXPECT_FALSE(d.finished());
  EXPECT_FALSE(d.end_of_data_unanswered());
}

// An upstream timeout for the RCPT reply while a BDAT LAST chunk is still coming must not say
// "it may have the message": the server cannot have it yet.
TEST(Dialogue, ARcptReplyOwedBeforeABdatLastChunkIsNoEndOfDataUnanswered) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 100000 LAST\r\nabc");
  EXPECT_TRUE(d.upstream_owes_reply());
  EXPECT_FALSE(d.end_of_data_unanswered()) << "a timeout now would say 'it may have the message'";
}

// --record-failure stop: once recording has failed, the end of data of a message being relayed
// is not sent (the server discards the message, as when the client closes inside the body), and
// the client is told why instead of getting a 250 for a message nobody recorded.
TEST(Dialogue, RecordingFailedInsideABodyWithholdsTheEndOfData) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  d.client_bytes("hello\r\n");
  (void)d.take_to_upstream();
  (void)d.take_to_client();
  d.recording_failed("cannot commit: database or disk is full");
  d.client_bytes(".\r\nQUIT\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "");
  EXPECT_TRUE(d.abandon_upstream());
  EXPECT_EQ(d.data_ends_sent(), 0u);
  EXPECT_FALSE(d.end_of_data_unanswered());
  const std::string to_client = d.take_to_client();
  EXPECT_EQ(to_client.rfind(
                "421 4.3.0 mailtap: recording failed (cannot commit: database or disk is full), "
                "so the message was not sent",
                0),
            0u)
      << to_client;
  EXPECT_EQ(to_client.find("try again"), std::string::npos);
  // The failure stays until a restart (recording.md): no waiting for mailtap to record again.
  EXPECT_NE(to_client.find("until it is restarted once that is fixed: send the message again "
                           "then\r\n"),
            std::string::npos)
      << to_client;
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.ending()->kind, Ending::Kind::error);
  EXPECT_TRUE(messages.empty());
  const auto note = std::find_if(events.begin(), events.end(), [](const RecordedEvent& e) {
    return e->note.find("end of data was not sent upstream") != std::string::npos;
  });
  ASSERT_NE(note, events.end());
  EXPECT_NE((*note)->note.find("the upstream discards it"), std::string::npos);
  EXPECT_EQ(events.back()->reply_code, 421);
}

// A message whose end of data went before the failure is the server's already: its reply is
// relayed as ever (recording.md: "the server did queue the message").
TEST(Dialogue, RecordingFailedAfterTheEndOfDataRelaysItsReply) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  d.client_bytes("hello\r\n.\r\n");
  EXPECT_TRUE(d.end_of_data_unanswered());
  (void)d.take_to_client();
  (void)d.take_to_upstream();
  d.recording_failed("disk full");
  EXPECT_FALSE(d.finished()) << "a reply is due: no 421 before it";
  d.upstream_bytes("250 2.0.0 queued as X\r\n");
  // Then, between commands, mailtap's own 421: the person learns at once that the message the
  // server accepted is not in the record, and that the session ends; the server gets a QUIT.
  EXPECT_EQ(d.take_to_client(),
            "250 2.0.0 queued as X\r\n"
            "421 4.3.0 mailtap: recording failed (disk full): the message above was accepted by "
            "the server (250 2.0.0 queued as X) but is not in the record: do not send it again; "
            "closing: fix that, then restart mailtap\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  EXPECT_FALSE(d.end_of_data_unanswered());
  EXPECT_EQ(messages.size(), 1u);
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.ending()->kind, Ending::Kind::error);
  EXPECT_FALSE(d.abandon_upstream());
  EXPECT_EQ(d.unrecorded_end_reply().rfind("4.3.0 mailtap: recording failed (disk full): ", 0), 0u);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2]->reply_code, 421);
  EXPECT_EQ(events.back()->direction, Direction::mailtap_to_upstream);
  EXPECT_EQ(events.back()->note, "recording failed; mailtap ends the upstream session politely");
}

// Recording failed while the session waits between commands (another session's commit failed):
// the 421 goes at once, and says what the server has that the record lacks: nothing, or the
// messages it accepted whose records were not committed (the owner says how many were).
TEST(Dialogue, RecordingFailedBetweenCommandsEndsTheSessionWithA421) {
  const auto accept_message = [](Dialogue& d, std::string_view queued) {
    d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
    d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
    d.client_bytes("hello\r\n.\r\n");
    d.upstream_bytes(std::string(queued) + "\r\n");
  };
  const std::string tail = "; closing: fix that, then restart mailtap\r\n";
  {
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(test_options(), events, messages);
    d.relay_greeting(reply_of(greeting), Phase::tls);
    d.client_bytes(ehlo);
    d.upstream_bytes(ehlo_reply);
    (void)d.take_to_client();
    (void)d.take_to_upstream();
    d.recording_failed("lock held");
    EXPECT_EQ(d.take_to_client(),
              "421 4.3.0 mailtap: recording failed (lock held): the server has no message of "
              "this session that the record lacks, but the rest of the session is not recorded" +
                  tail);
    EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
    ASSERT_TRUE(d.finished());
    d.client_bytes("QUIT\r\n");  // read no more
    EXPECT_EQ(upstream_text(d.take_to_upstream()), "");
  }
  {
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(test_options(), events, messages);
    d.relay_greeting(reply_of(greeting), Phase::tls);
    accept_message(d, "250 queued as A");
    accept_message(d, "250 queued as B");
    (void)d.take_to_client();
    d.recording_failed("disk full", /*accepted_recorded=*/1);
    EXPECT_EQ(d.take_to_client(),
              "421 4.3.0 mailtap: recording failed (disk full): the message above was accepted "
              "by the server (250 queued as B) but is not in the record: do not send it again" +
                  tail);
  }
  {
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(test_options(), events, messages);
    d.relay_greeting(reply_of(greeting), Phase::tls);
    accept_message(d, "250 queued as A");
    accept_message(d, "550 no");
    accept_message(d, "250 queued as C");
    (void)d.take_to_client();
    d.recording_failed("disk full");
    EXPECT_EQ(d.take_to_client(),
              "421 4.3.0 mailtap: recording failed (disk full): 2 messages of this session were "
              "accepted by the server (the last (250 queued as C)) but are not in the record: do "
              "not send them again" +
                  tail);
  }
  {
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(test_options(), events, messages);
    d.relay_greeting(reply_of(greeting), Phase::tls);
    accept_message(d, "250 queued as A");
    (void)d.take_to_client();
    d.recording_failed("disk full", /*accepted_recorded=*/1);
    EXPECT_NE(d.take_to_client().find("the server has no message of this session that the "
                                      "record lacks"),
              std::string::npos);
  }
}

// The session's closing record failed as it ended on the server's 221: the owner writes the
// 221, then this 421, so the person learns the session is not in the record.
TEST(Dialogue, RecordingFailedAtTheQuitGivesA421ToFollowThe221) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  d.client_bytes("hello\r\n.\r\nQUIT\r\n");
  (void)d.take_to_client();
  d.upstream_bytes("250 queued as Q\r\n221 bye\r\n");
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.take_to_client(), "250 queued as Q\r\n221 bye\r\n");
  EXPECT_EQ(d.recording_failed_at_quit("disk full", /*accepted_recorded=*/0),
            "421 4.3.0 mailtap: recording failed (disk full): the message above was accepted by "
            "the server (250 queued as Q) but is not in the record: do not send it again; fix "
            "that, then restart mailtap\r\n");
  EXPECT_FALSE(d.unrecorded_end_reply().empty());
  EXPECT_EQ(d.recording_failed_at_quit("disk full", 0), "") << "said once";

  // Not after the dialogue's own 421, nor for an ending other than the 221 to a QUIT.
  Dialogue told(test_options(), events, messages);
  told.relay_greeting(reply_of(greeting), Phase::tls);
  told.recording_failed("disk full");
  ASSERT_TRUE(told.finished());
  EXPECT_EQ(told.recording_failed_at_quit("disk full", 0), "");
  Dialogue closed(test_options(), events, messages);
  closed.relay_greeting(reply_of(greeting), Phase::tls);
  closed.upstream_closed();
  EXPECT_EQ(closed.recording_failed_at_quit("disk full", 0), "");
}

// Not while a reply is due (it would come after mailtap's 421, answering nothing the client
// knows of), nor inside an AUTH exchange or a body: the 421 waits for the boundary.
TEST(Dialogue, TheRecordingFailure421WaitsForTheCommandBoundary) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply);
  d.client_bytes("AUTH LOGIN\r\n");
  d.upstream_bytes("334 VXNlcm5hbWU6\r\n");
  (void)d.take_to_client();
  (void)d.take_to_upstream();
  d.recording_failed("disk full");
  EXPECT_FALSE(d.finished());
  EXPECT_EQ(d.take_to_client(), "");
  d.client_bytes("dXNlcg==\r\n");
  d.upstream_bytes("334 UGFzc3dvcmQ6\r\n");
  EXPECT_FALSE(d.finished());
  d.client_bytes("cGFzcw==\r\n");
  EXPECT_FALSE(d.finished());
  d.upstream_bytes("535 5.7.8 no\r\n");
  ASSERT_TRUE(d.finished());
  const std::string to_client = d.take_to_client();
  EXPECT_EQ(to_client.rfind("334 UGFzc3dvcmQ6\r\n535 5.7.8 no\r\n421 4.3.0 mailtap: recording "
                            "failed (disk full)",
                            0),
            0u)
      << to_client;
}

// Every line of a reply mailtap makes itself fits RFC 5321's 512 octets (CRLF included), also
// when it quotes the longest cause: a recording failure naming a body file deep in a long path.
// The 451 to MAIL, DATA and BDAT went out as one line of over 600 octets.
TEST(Dialogue, RepliesQuotingALongRecordingFailureKeepEachLineWithin512Octets) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  (void)d.take_to_upstream();
  (void)d.take_to_client();
  const std::string path = "/" + std::string(200, 'd') + "/" + std::string(200, 'e') + "/m.db";
  // Behind an RSET not yet answered: the 451s go once its reply has; then the 421 that ends
  // the session, which quotes the cause too.
  d.client_bytes("RSET\r\n");
  d.recording_failed("cannot sync body file '" + path + "-bodies/7': No space left on device");
  d.client_bytes("MAIL FROM:<a@x>\r\nDATA\r\nBDAT 5 LAST\r\nhello");
  d.upstream_bytes("250 ok\r\n");
  std::string to_client = d.take_to_client();
  ASSERT_EQ(to_client.rfind("250 ok\r\n", 0), 0u) << to_client;
  to_client.erase(0, 8);
  const std::size_t closing = to_client.find("421-4.3.0 ");
  ASSERT_NE(closing, std::string::npos) << to_client;
  const std::string closing_reply = to_client.substr(closing);
  to_client.erase(closing);
  for (std::size_t at = 0; at < closing_reply.size();) {
    const std::size_t end = closing_reply.find("\r\n", at);
    ASSERT_NE(end, std::string::npos) << closing_reply;
    EXPECT_LE(end + 2 - at, 512u);
    EXPECT_EQ(closing_reply.substr(at + 3, 7),
              end + 2 == closing_reply.size() ? " 4.3.0 " : "-4.3.0 ");
    at = end + 2;
  }
  std::size_t replies = 0;
  std::size_t at = 0;
  while (at < to_client.size()) {
    const std::size_t end = to_client.find("\r\n", at);
    ASSERT_NE(end, std::string::npos) << to_client;
    const std::string line = to_client.substr(at, end + 2 - at);
    EXPECT_LE(line.size(), 512u) << line;
    EXPECT_EQ(line.substr(4, 6), "4.3.0 ") << line;
    if (line[3] == ' ')
      ++replies;
    else
      EXPECT_EQ(line.substr(0, 4), "451-") << line;
    at = end + 2;
  }
  EXPECT_EQ(replies, 3u) << to_client;
  EXPECT_NE(to_client.find(std::string(200, 'e')), std::string::npos) << "the path is quoted whole";
  for (const RecordedEvent& e : events)
    if (e->direction == Direction::mailtap_to_client && e->kind == EventKind::local_reply &&
        e->reply_code != 421) {
      EXPECT_EQ(e->reply_code, 451);
      EXPECT_EQ(e->enhanced_status, "4.3.0");
      EXPECT_NE(to_client.find(e->bytes), std::string::npos) << "recorded as sent";
    }
}

// Nothing the record could not hold starts after the failure: MAIL, DATA and BDAT (its chunk
// consumed, not relayed) read while a reply is still due get a 451 from mailtap; the rest is
// relayed, and once no reply is due the session ends with mailtap's 421 and QUIT.
TEST(Dialogue, RecordingFailedRefusesNewMessagesThenEndsTheSessionBetweenCommands) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\n");
  (void)d.take_to_upstream();
  (void)d.take_to_client();
  d.recording_failed("disk full");
  d.client_bytes("DATA\r\nBDAT 5 LAST\r\nhelloMAIL FROM:<c@x>\r\nRSET\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "RSET\r\n");
  d.upstream_bytes("250 ok\r\n");
  const std::string refusal =
      "451 4.3.0 mailtap: recording failed (disk full); mailtap sends no more messages";
  const std::string to_client = d.take_to_client();
  std::size_t refusals = 0;
  for (std::size_t at = to_client.find(refusal); at != std::string::npos;
       at = to_client.find(refusal, at + 1))
    ++refusals;
  EXPECT_EQ(refusals, 3u) << to_client;
  EXPECT_NE(to_client.find("(--record-failure stop), until it is restarted once that is fixed: "
                           "send the message again then\r\n"),
            std::string::npos)
      << to_client;
  EXPECT_FALSE(d.finished());
  d.upstream_bytes("250 ok\r\n");
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.take_to_client(),
            "250 ok\r\n421 4.3.0 mailtap: recording failed (disk full): the server has no "
            "message of this session that the record lacks, but the rest of the session is not "
            "recorded; closing: fix that, then restart mailtap\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  EXPECT_EQ(d.ending()->kind, Ending::Kind::error);
  EXPECT_FALSE(d.abandon_upstream());
  EXPECT_TRUE(messages.empty());
}

// A shutdown waits for the reply to any end of data sent, pipelined BDAT LAST included.
TEST(Dialogue, EndOfDataUnansweredSeesABdatLastBehindAnotherReply) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\n");
  d.upstream_bytes("250 ok\r\n");
  // Not between chunks (a NOOP there is a sync point): the BDAT LAST goes behind the NOOP.
  d.client_bytes("NOOP\r\nBDAT 2 LAST\r\nde");
  EXPECT_FALSE(d.awaiting_end_of_data());  // the oldest reply awaited is the NOOP's
  EXPECT_TRUE(d.end_of_data_unanswered());
  d.upstream_bytes("250 ok\r\n250 queued\r\n");
  EXPECT_FALSE(d.end_of_data_unanswered());
  EXPECT_EQ(messages.size(), 1u);
}

// The session ends before the server answers an end of data it got: the server may have the
// message, so the record keeps it, with no final reply (docs/schema.md, messages.final_code).
TEST(Dialogue, AnEndOfDataLeftUnansweredIsAMessageWithoutAFinalReply) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 rcpt ok\r\n354 go\r\n");
  d.client_bytes("Subject: s\r\n\r\nbody\r\n.\r\n");
  d.upstream_closed();
  ASSERT_TRUE(d.finished());
  EXPECT_TRUE(messages.empty()) << "no final reply came";
  const std::vector<Message> unanswered = d.unanswered_messages();
  ASSERT_EQ(unanswered.size(), 1u);
  EXPECT_EQ(unanswered[0].mail_from, "MAIL FROM:<a@x>");
  ASSERT_EQ(unanswered[0].recipients.size(), 1u);
  EXPECT_EQ(unanswered[0].recipients[0].reply_code, 250);
  EXPECT_EQ(unanswered[0].size, 20u);  // "Subject: s\r\n\r\nbody\r\n"
  EXPECT_EQ(unanswered[0].final_code, 0);
  EXPECT_TRUE(unanswered[0].final_reply.empty());
  EXPECT_EQ(unanswered[0].finished, Dialogue::Clock::time_point{});
  // The end of data dropped unwritten never reached the server: no message.
  d.upstream_output_dropped(3);
  EXPECT_TRUE(d.unanswered_messages().empty());
}

// A BDAT LAST whose chunk is still coming has not ended its message; once the chunk is all
// relayed, it has.
TEST(Dialogue, ABdatLastIsUnansweredOnlyOnceItsChunkIsRelayed) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\n");
  d.upstream_bytes("250 ok\r\n");
  d.client_bytes("BDAT 3\r\nabc");
  d.upstream_bytes("250 ok\r\n");
  d.client_bytes("BDAT 2 LAST\r\nd");
  EXPECT_TRUE(d.unanswered_messages().empty());
  d.client_bytes("e");
  const std::vector<Message> unanswered = d.unanswered_messages();
  ASSERT_EQ(unanswered.size(), 1u);
  EXPECT_TRUE(unanswered[0].via_bdat);
  EXPECT_EQ(unanswered[0].size, 5u);
  d.upstream_bytes("250 queued\r\n");
  EXPECT_TRUE(d.unanswered_messages().empty()) << "answered: a message with its reply";
  EXPECT_EQ(messages.size(), 1u);
}

// The same for BDAT: recording fails while the LAST chunk is relayed, so its rest is read and
// dropped (the server never has the whole message) and its end gets mailtap's 421.
TEST(Dialogue, RecordingFailedInsideALastChunkWithholdsItsRest) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(test_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_chunking);
  d.client_bytes("MAIL FROM:<a@x>\r\n");
  d.upstream_bytes("250 ok\r\n");
  d.client_bytes("BDAT 10 LAST\r\nhello");
  EXPECT_EQ(upstream_text(d.take_to_upstream()),
            "EHLO client.example\r\nMAIL FROM:<a@x>\r\nBDAT 10 LAST\r\nhello");
  (void)d.take_to_client();
  d.recording_failed("disk full");
  d.client_bytes("wor");
  EXPECT_FALSE(d.finished());
  d.client_bytes("ldQUIT\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "");
  EXPECT_TRUE(d.abandon_upstream());
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.take_to_client().rfind("421 4.3.0 mailtap: recording failed (disk full)", 0), 0u);
  EXPECT_TRUE(messages.empty());
}

// A Backspace typed in raw mode or telnet's mode character goes through as an octet: the
// screen showed the line corrected, the server refused what it got. The reply reaches the
// client unchanged; a note after it says why the line differed from the screen.
TEST(Dialogue, ARefusedLineHoldingABackspaceOctetIsNoted) {
  for (const char octet : {'\x7f', '\x08'}) {
    const std::string mail = "MAIL FROM:<alice@example.tset" + std::string(2, octet) + "st>\r\n";
    const Result r = run_all_splits({
        client(ehlo),
        upstream(ehlo_reply),
        client(mail),
        upstream("501 5.1.7 Bad sender address syntax\r\n"),
        client("NOOP\x7f\r\n"),
        upstream("250 2.0.0 Ok\r\n"),
    });
    EXPECT_EQ(r.upstream_per_step[2], mail);
    EXPECT_EQ(r.client_per_step[3], "501 5.1.7 Bad sender address syntax\r\n");
    std::vector<std::string> notes;
    for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::note))
      if (e->note.find("Backspace") != std::string::npos) notes.push_back(e->verb + ": " + e->note);
    ASSERT_EQ(notes.size(), 1u) << "only the refused line's";
    const std::string name =
        octet == '\x08' ? "a Backspace octet (0x08, BS)" : "a Backspace octet (0x7f, DEL)";
    EXPECT_EQ(notes[0], "MAIL: the line refused held " + name +
                            " at octet 30: a terminal in raw mode or telnet's mode character "
                            "sends Backspace as an octet, not as an edit, so the server read "
                            "the octet and what it was meant to erase. Type the line again "
                            "without correcting it, or in telnet's line mode (^] then mode "
                            "line), where the terminal edits the line before it is sent");
  }
}

}  // namespace
}  // namespace mailtap::smtp
