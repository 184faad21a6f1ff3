#include "tools/replay_report.hpp"

#include "proxy/common/hex.hpp"
#include "tools/json_writer.hpp"

namespace mailtap::tools {

namespace {

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      append_hex_escape(out, c);
    }
  }
  return out;
}

std::string fit(std::string s, std::size_t width) {
  if (s.size() > width) s = s.substr(0, width - 3) + "...";
  s.resize(width, ' ');
  return s;
}

// A reply that changed, whole, below its row when the row cannot show it (a first line cut to
// the column, more lines): what a CI log needs to show of what the server says now.
std::string whole_reply_rows(const ReplyComparison& r, std::size_t col) {
  if (!r.replay_code) return "";
  if (r.replay_lines.size() <= 1 && printable(r.replay_line).size() <= col) return "";
  std::string out;
  for (const std::string& line : r.replay_lines) out += "   replay: " + printable(line) + "\n";
  return out;
}

// mailtap's own AUTH (proxy --auth-user), where it happened: before the client read the reply
// held back for it.
std::string login_rows(const LoginComparison& l, std::size_t col) {
  std::string out = "M: mailtap's own AUTH" +
                    (l.user.empty() ? std::string() : " as " + printable(l.user)) +
                    " (--auth-user)\n";
  out += "M: " + fit(printable(l.original), col) + " | " +
         fit(l.replay.empty() ? std::string("(not replayed)") : printable(l.replay), col) +
         (l.matches() ? "  same" : "  DIFFERENT") + "\n";
  return out;
}

void write_login(JsonWriter& w, const std::optional<LoginComparison>& login) {
  w.key("mailtap_auth");
  if (!login) {
    w.null();
    return;
  }
  w.begin_object();
  write_bytes_member(w, "user", login->user);
  w.key("original").value(login->original);
  w.key("replay");
  if (login->replay.empty())
    w.null();
  else
    w.value(login->replay);
  w.key("match").value(login->matches());
  w.end_object();
}

// A reply: its code, its first line (`text`) and every line (`lines`); null if there is none.
void write_reply(JsonWriter& w, std::string_view name, std::optional<int> code,
                 const std::string& first, const std::vector<std::string>& lines) {
  w.key(name);
  if (!code) {
    w.null();
    return;
  }
  w.begin_object().key("code").value(*code);
  write_bytes_member(w, "text", first);
  write_bytes_array_member(w, "lines", lines);
  w.end_object();
}

void write_header(JsonWriter& w, const ReplayHeader& h, bool match, std::size_t differences,
                  const std::string& stopped, const std::string& failure) {
  w.key("original_session").value(static_cast<std::int64_t>(h.original_id));
  w.key("replay_session");
  if (h.replay_id)
    w.value(static_cast<std::int64_t>(*h.replay_id));
  else
    w.null();
  w.key("target").value(h.target);
  w.key("match").value(match);
  w.key("differences").value(static_cast<std::uint64_t>(differences));
  for (const auto& [name, text] : {std::pair{"stopped", &stopped}, {"failure", &failure}}) {
    w.key(name);
    if (text->empty())
      w.null();
    else
      w.value(*text);
  }
}

// One compared reply: its row, and below it the whole of a changed one.
std::string reply_rows(const ReplyComparison& r, std::size_t col) {
  std::string left = r.original_code ? printable(r.original_line) : "(no reply in the original)";
  std::string right = r.not_expected ? "(" + std::string(kOlderCloseNotice) + ")"
                      : r.replay_code || !r.replay_line.empty() ? printable(r.replay_line)
                                                                : "(not replayed)";
  std::string out = "S: " + fit(left, col) + " | " + fit(right, col) +
                    (r.matches() ? "  same" : "  DIFFERENT") + "\n";
  if (!r.matches()) out += whole_reply_rows(r, col);
  return out;
}

}  // namespace

std::string format_replay_text(const ReplayHeader& h, const ReplayReport& report,
                               std::size_t width) {
  const std::size_t col = width > 20 ? (width - 12) / 2 : 40;
  std::string out = "replay of session " + std::to_string(h.original_id) + " against " + h.target;
  out += h.replay_id ? " (recorded as session " + std::to_string(*h.replay_id) + ")\n"
                     : " (not recorded)\n";
  out += "   " + fit("original", col) + " | " + fit("replay", col) + "\n";
  for (std::size_t i = 0; i < report.replies.size(); ++i) {
    const ReplyComparison& r = report.replies[i];
    for (const std::string& line : r.sent) out += "C: " + printable(line) + "\n";
    if (report.login && report.login->row == i) out += login_rows(*report.login, col);
    if (r.original_code || r.replay_code) out += reply_rows(r, col);
  }
  const std::size_t diff = report.differences();
  if (!report.stopped.empty()) out += "stopped: " + report.stopped + "\n";
  out += diff == 0 && report.stopped.empty()
             ? "result: every reply class matches (" + std::to_string(report.compared()) +
                   " replies)\n"
             : "result: " + std::to_string(diff) + " of " + std::to_string(report.compared()) +
                   " replies differ in class\n";
  return out;
}

std::string format_replay_failure_json(const ReplayHeader& h, const std::string& failure) {
  JsonWriter w;
  w.begin_object();
  write_header(w, h, false, 0, "", failure);
  write_login(w, std::nullopt);
  w.key("replies").begin_array().end_array();
  w.end_object();
  return w.take() + "\n";
}

std::string format_replay_json(const ReplayHeader& h, const ReplayReport& report) {
  JsonWriter w;
  w.begin_object();
  write_header(w, h, report.all_match(), report.differences(), report.stopped, "");
  write_login(w, report.login);
  w.key("replies").begin_array();
  for (const ReplyComparison& r : report.replies) {
    w.begin_object();
    write_bytes_array_member(w, "sent", r.sent);
    w.key("command");
    if (r.command.empty())
      w.null();
    else
      w.value(r.command);
    write_reply(w, "original", r.original_code, r.original_line, r.original_lines);
    write_reply(w, "replay", r.replay_code, r.replay_line, r.replay_lines);
    if (r.not_expected) w.key("note").value(kOlderCloseNotice);
    w.key("match").value(r.matches());
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.take() + "\n";
}

}  // namespace mailtap::tools
