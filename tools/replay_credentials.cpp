#include "tools/replay_credentials.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "proxy/common/text.hpp"
#include "proxy/smtp/auth_redactor.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/sasl_mechanism.hpp"

namespace mailtap::tools {

namespace {

// Read as the proxy's dialogue read the line: " AUTH PLAIN" and "AUTH\tPLAIN" are AUTH too.
bool starts_with_auth(std::string_view bytes) {
  return smtp::parse_command(bytes).id == smtp::Verb::auth;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "AUTH PLAIN xyz" -> mechanism "PLAIN", initial response "xyz" (or the rendering "[...]").
struct AuthLine {
  std::string prefix;  // "AUTH PLAIN" as the client wrote it
  std::string mechanism;
  std::optional<std::string> initial;
};
AuthLine split_auth_line(std::string_view bytes) {
  const std::string_view line = strip_crlf(bytes);
  AuthLine a;
  const smtp::Word verb = smtp::first_word(line);
  const smtp::Word mech = smtp::first_word(verb.rest);
  // "AUTH [<redacted N bytes>]": a word the record took for a secret, no mechanism.
  if (mech.word.empty() || mech.word.front() == '[') {
    a.prefix = std::string(line);
    return a;
  }
  a.mechanism = upper(mech.word);
  a.prefix = std::string(
      line.substr(0, static_cast<std::size_t>(mech.word.data() - line.data()) + mech.word.size()));
  const std::string_view initial = smtp::trim_trailing_separators(mech.rest);
  if (!initial.empty()) a.initial = std::string(initial);
  return a;
}

// The bracketed rendering's inside: "[a=b c=d]" -> "a=b c=d"; nullopt if not bracketed.
std::optional<std::string_view> bracketed(std::string_view s) {
  s = strip_crlf(s);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  return s.substr(1, s.size() - 2);
}

// The text a 334 line carries: its base64 decoded, else as it stands.
std::string challenge_text(std::string_view line) {
  line = strip_crlf(line);
  line.remove_prefix(std::min<std::size_t>(line.size(), 3));  // "334"
  if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  std::optional<std::string> decoded = smtp::base64_decode(line);
  return decoded ? std::move(*decoded) : std::string(line);
}

const RenderedField* find_field(const std::vector<RenderedField>& f, std::string_view key) {
  for (const auto& x : f)
    if (x.key == key) return &x;
  return nullptr;
}

constexpr std::string_view kRedactedUsers = "the recorded user name was redacted (--redact-users)";

// Where a client step stands in its SASL exchange.
struct AuthStep {
  std::string mechanism;   // of the exchange, upper-cased ("PLAIN"); "" outside one
  bool auth_line = false;  // the "AUTH <mech> ..." line itself
  std::size_t answer = 0;  // responses before this one in the exchange, an initial one included
  // The decoded 334 this step answered: the last one recorded since the step before it. None
  // for an AUTH line, or for a line the client sent before its prompt came.
  std::optional<std::string> prompt;

  // A LOGIN answer to a prompt that asked for the user name.
  bool at_user_prompt() const {
    return mechanism == "LOGIN" && prompt && smtp::login_prompt_asks_for_user(*prompt);
  }
  // Why the user name for this step is not in the record.
  std::string hidden_user_reason() const {
    if (mechanism == "LOGIN" && answer > 0)
      return "the server asked for the user name after the password, and the record keeps "
             "that answer hidden (a client answering by position sends its password there)";
    return std::string(kRedactedUsers);
  }
};

// Walks the SASL exchanges with the server: calls fn(step, where it stands) for every auth step,
// until fn returns false.
template <typename Dialogue, typename Fn>
void for_each_auth_step(Dialogue& d, Fn fn) {
  AuthStep at;
  std::size_t next_answer = 0;
  std::size_t next_reply = 0;
  for (auto& s : d.client) {
    at.prompt.reset();
    for (; next_reply < d.replies.size() && d.replies[next_reply].seq < s.seq; ++next_reply)
      if (d.replies[next_reply].code == 334) at.prompt = challenge_text(d.replies[next_reply].raw);
    // A line mailtap answered itself (an AUTH it refused, say between BDAT chunks) never went
    // upstream: the replay's own mailtap answers it again, as recorded. Nothing is filled in,
    // so no secret goes where the client's did not, and none is asked for.
    if (s.direction == smtp::Direction::client_to_mailtap) {
      at.mechanism.clear();
      continue;
    }
    if (s.kind != smtp::EventKind::auth) {
      at.mechanism.clear();
      continue;
    }
    at.auth_line = starts_with_auth(s.bytes);
    bool responds = true;
    if (at.auth_line) {
      const AuthLine a = split_auth_line(s.bytes);
      at.mechanism = a.mechanism;
      at.prompt.reset();  // one from an earlier exchange
      responds = a.initial.has_value();
      next_answer = 0;
    }
    at.answer = next_answer;
    if (responds) ++next_answer;
    if (!fn(s, std::as_const(at))) return;
  }
}

struct Filler {
  std::string_view user;
  std::string_view password;
  std::string& error;

  // The user name for a field: --auth-user, else the recorded one. `hidden`: why the record
  // may not hold it.
  std::optional<std::string> user_for(const RenderedField* f, std::string_view hidden) {
    if (!user.empty()) return std::string(user);
    if (f && !f->redacted) return f->value;
    error = std::string(hidden) + ": give --auth-user";
    return std::nullopt;
  }

  // The base64 of `bytes`, in a Secret sized once.
  static smtp::Secret encoded(std::string_view bytes) {
    smtp::Secret out(smtp::base64_encoded_size(bytes.size()));
    smtp::base64_encode_append(bytes, out);
    return out;
  }

  std::optional<smtp::Secret> plain(std::string_view rendering) {
    std::vector<RenderedField> fields;
    auto inside = bracketed(rendering);
    if (!inside || !parse_rendered_fields(*inside, fields) || !find_field(fields, "password")) {
      error = "cannot read the recorded AUTH PLAIN rendering";
      return std::nullopt;
    }
    std::string authzid;
    if (const RenderedField* az = find_field(fields, "authzid")) {
      if (az->redacted && az->redacted_size > 0) {
        error = "the recorded AUTH PLAIN authorisation identity was redacted; it cannot be rebuilt";
        return std::nullopt;
      }
      authzid = az->redacted ? std::string() : az->value;
    }
    auto u = user_for(find_field(fields, "authcid"), kRedactedUsers);
    if (!u) return std::nullopt;
    smtp::Secret clear(authzid.size() + u->size() + password.size() + 2);
    clear.append(authzid);
    clear.push_back('\0');
    clear.append(*u);
    clear.push_back('\0');
    clear.append(password);
    return encoded(clear.view());
  }

  // Each answer gets what the prompt it answered in the recording asked for: replay only goes
  // on where the live prompt asks the same (challenge_mismatch).
  std::optional<smtp::Secret> login(std::string_view rendering, bool redacted, const AuthStep& at) {
    if (!redacted) {
      // A kept LOGIN response is the user name (base64 on the wire); --auth-user replaces it.
      if (user.empty() || strip_crlf(rendering) == "*")
        return smtp::Secret::copy_of(strip_crlf(rendering));
      return encoded(user);
    }
    std::vector<RenderedField> fields;
    auto inside = bracketed(rendering);
    if (!inside || !parse_rendered_fields(*inside, fields)) {
      error = "cannot read the recorded AUTH LOGIN rendering";
      return std::nullopt;
    }
    const RenderedField* u = find_field(fields, "user");
    if (!u && !find_field(fields, "password")) {
      error = "cannot read the recorded AUTH LOGIN rendering";
      return std::nullopt;
    }
    // Recordings made before each answer was labelled by its own prompt call the answer to a
    // "Username:" asked after "Password:" a password too: the user name goes there, never the
    // password (the server would take it for a user name, and may log it).
    if (!u && !at.at_user_prompt()) return encoded(password);
    auto name = user_for(u, at.hidden_user_reason());
    if (!name) return std::nullopt;
    return encoded(*name);
  }
};

}  // namespace

namespace {

// A "..." value with \" \\ and \xNN escapes; `i` is just past the opening quote and ends just
// past the closing one. False when the value is cut short.
bool parse_quoted_value(std::string_view text, std::size_t& i, std::string& value) {
  while (i < text.size()) {
    char c = text[i++];
    if (c == '"') return true;
    if (c != '\\') {
      value += c;
      continue;
    }
    if (i >= text.size()) return false;
    char e = text[i++];
    if (e == 'x') {
      if (i + 2 > text.size()) return false;
      value += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
      i += 2;
    } else {
      value += e;
    }
  }
  return false;
}

// A "<redacted 12 bytes[ fp=..]>" value; `i` is at the '<' and ends just past the '>'.
bool parse_redacted_value(std::string_view text, std::size_t& i, RenderedField& f) {
  const std::size_t end = text.find('>', i);
  if (end == std::string_view::npos) return false;
  std::string_view token = text.substr(i + 1, end - i - 1);  // "redacted 12 bytes[ fp=..]"
  if (token.substr(0, 9) != "redacted ") return false;
  f.redacted = true;
  f.redacted_size = std::strtoull(std::string(token.substr(9)).c_str(), nullptr, 10);
  i = end + 1;
  return true;
}

}  // namespace

bool parse_rendered_fields(std::string_view text, std::vector<RenderedField>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    const std::size_t eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size()) return false;
    RenderedField f;
    f.key = std::string(text.substr(i, eq - i));
    i = eq + 1;
    if (text[i] == '"') {
      ++i;
      if (!parse_quoted_value(text, i, f.value)) return false;
    } else if (text[i] == '<') {
      if (!parse_redacted_value(text, i, f)) return false;
    } else {
      const std::size_t end = text.find(' ', i);
      f.value = std::string(text.substr(i, end == std::string_view::npos ? end : end - i));
      i = end == std::string_view::npos ? text.size() : end;
    }
    out.push_back(std::move(f));
  }
  return true;
}

namespace {

// The code that ended the AUTH exchange begun at event `from` (before event `to`), 0 if none.
int final_auth_code(const RecordedDialogue& d, std::uint64_t from, std::uint64_t to) {
  for (const RecordedReply& r : d.replies)
    if (r.seq > from && r.seq < to && r.verb == "AUTH" && r.code != 334) return r.code;
  return 0;
}

// One password goes into every AUTH: a session whose AUTH carrying a password was refused for
// good (5xx: a wrong password) and then authenticated again (the right one) cannot be acted out
// again. A temporary failure (4xx) retried may well have carried the same password twice, and
// the server decides again: that can be.
std::string retried_auth_refusal(const RecordedDialogue& dialogue) {
  struct Exchange {
    std::uint64_t seq = 0;
    bool password = false;
  };
  std::vector<Exchange> exchanges;
  for_each_auth_step(dialogue, [&](const ClientStep& s, const AuthStep& at) {
    if (at.auth_line) exchanges.push_back({s.seq, false});
    if (!exchanges.empty() && s.redacted && s.bytes.find("password=") != std::string::npos)
      exchanges.back().password = true;
    return true;
  });
  for (std::size_t i = 0; i + 1 < exchanges.size(); ++i) {
    if (!exchanges[i].password) continue;
    const int code = final_auth_code(dialogue, exchanges[i].seq, exchanges[i + 1].seq);
    if (code / 100 != 5) continue;
    return "event " + std::to_string(exchanges[i].seq) + ": an AUTH with a password failed (" +
           std::to_string(code) + ") and the client authenticated again; replay sends the one " +
           "password it is given in every AUTH, so it cannot reproduce that";
  }
  return {};
}

// What one redacted PLAIN or LOGIN step needs filled in, added to `needs`.
void add_step_needs(AuthNeeds& needs, const ClientStep& s, const AuthStep& at) {
  const std::string_view text =
      at.auth_line ? std::string_view(s.bytes).substr(split_auth_line(s.bytes).prefix.size())
                   : std::string_view(s.bytes);
  const bool password = text.find("password=") != std::string_view::npos;
  // As Filler::login reads it: a password at a user-name prompt is the user name.
  const bool user_prompt = at.at_user_prompt();
  if (password && !user_prompt) needs.password = true;
  const bool hidden_user = (password && user_prompt) ||
                           text.find("authcid=<") != std::string_view::npos ||
                           text.find("user=<") != std::string_view::npos;
  if (!hidden_user || needs.user) return;
  needs.user = true;
  needs.user_why = "event " + std::to_string(s.seq) + ": " + at.hidden_user_reason();
}

}  // namespace

AuthNeeds auth_needs(const RecordedDialogue& dialogue) {
  AuthNeeds needs;
  needs.refusal = retried_auth_refusal(dialogue);
  if (!needs.refusal.empty()) return needs;
  // A line outside AUTH that the record redacted (a credential typed out of place, a line
  // behind a refused AUTH) has only its placeholder: that is not what the client sent.
  for (const ClientStep& s : dialogue.client) {
    if (!s.redacted || s.kind == smtp::EventKind::auth) continue;
    needs.refusal = "event " + std::to_string(s.seq) +
                    ": the client sent a line the record holds only redacted (" +
                    (s.note.empty() ? std::string("kept out of the record") : s.note) +
                    "); it cannot be sent again";
    return needs;
  }
  for_each_auth_step(dialogue, [&](const ClientStep& s, const AuthStep& at) {
    if (!s.redacted) return true;
    const std::string& mech = at.mechanism;
    if (mech != "PLAIN" && mech != "LOGIN") {
      needs.refusal = "the session authenticated with AUTH " +
                      (mech.empty() ? std::string("(unknown mechanism)") : mech) +
                      "; replay can rebuild only PLAIN and LOGIN exchanges";
      return false;
    }
    needs.mechanism = mech;
    add_step_needs(needs, s, at);
    return true;
  });
  return needs;
}

std::string mailtap_login_refusal(const RecordedDialogue& dialogue, std::string_view auth_user,
                                  bool tls) {
  if (!dialogue.mailtap_login) return {};
  const MailtapLogin& login = *dialogue.mailtap_login;
  const std::string what =
      "it was authenticated by mailtap (proxy --auth-user, AUTH " + login.mechanism + ")";
  const std::optional<smtp::Mechanism> mechanism = smtp::parse_mechanism(login.mechanism);
  if (mechanism && smtp::takes_token(*mechanism))
    return what + " with an OAuth access token, and replay cannot fetch one";
  if (!tls) return what + ", and mailtap sends credentials only inside TLS: drop --tls none";
  if (auth_user.empty() && login.user.empty())
    return what + " and the record does not hold the user name: give --auth-user";
  return {};
}

std::string auth_mechanism_at(const RecordedDialogue& dialogue, std::uint64_t seq) {
  std::string mechanism;
  for (const ClientStep& s : dialogue.client) {
    if (s.seq > seq) break;
    if (s.kind != smtp::EventKind::auth)
      mechanism.clear();  // an exchange ends before any other command
    else if (starts_with_auth(s.bytes))
      mechanism = split_auth_line(s.bytes).mechanism;
  }
  return mechanism;
}

namespace {

// What a LOGIN prompt asks for, decided as the record's redactor decides it.
std::string login_prompt_request(std::string_view line) {
  return smtp::login_prompt_asks_for_password(challenge_text(line)) ? "a password" : "a user name";
}

}  // namespace

std::string challenge_mismatch(std::string_view mechanism, std::string_view recorded_line,
                               std::string_view replay_line) {
  if (mechanism == "LOGIN") {
    const std::string recorded = login_prompt_request(recorded_line);
    const std::string replay = login_prompt_request(replay_line);
    if (recorded == replay) return {};
    return "the server asked for " + replay + " where the recording asked for " + recorded;
  }
  if (challenge_text(recorded_line) == challenge_text(replay_line)) return {};
  return "the server's AUTH " +
         (mechanism.empty() ? std::string("(unknown mechanism)") : std::string(mechanism)) +
         " challenge differs from the recorded one";
}

namespace {

// Fills one PLAIN or LOGIN step (s.filled), unless it is kept as recorded. False with `error`.
bool fill_step(Filler& filler, ClientStep& s, const AuthStep& at) {
  const std::string& mech = at.mechanism;
  if (!s.redacted && (mech != "LOGIN" || filler.user.empty())) return true;  // kept as recorded
  std::string rendering;
  std::string prefix;
  if (at.auth_line) {
    AuthLine a = split_auth_line(s.bytes);
    if (!a.initial) return true;  // no initial response: nothing to fill
    prefix = a.prefix + " ";
    rendering = *a.initial;
  } else {
    rendering = std::string(strip_crlf(s.bytes));
  }
  std::optional<smtp::Secret> wire =
      mech == "PLAIN"
          ? (s.redacted ? filler.plain(rendering) : std::optional(smtp::Secret::copy_of(rendering)))
          : filler.login(rendering, s.redacted, at);
  if (!wire) {
    filler.error = "event " + std::to_string(s.seq) + ": " + filler.error;
    return false;
  }
  smtp::Secret line(prefix.size() + wire->size() + 2);
  line.append(prefix);
  line.append(wire->view());
  line.append("\r\n");
  s.filled = std::move(line);
  return true;
}

// Renders the filled lines as the proxy's record renders a session: one AuthRedactor that sees
// the recorded 334 challenges and the end of each exchange, in recorded order. The challenges
// matter: for LOGIN the redactor tells the password from the user name by the prompt, and
// without one it falls back to position, so a server asking "Password:" first would have the
// password shown as if it were the user name.
class FilledLineRenderer {
 public:
  explicit FilledLineRenderer(const RecordedDialogue& dialogue) : replies_(dialogue.replies) {}

  // The rendering of step `s` as sent, once every reply recorded before it has been seen.
  smtp::RedactedLine render(const ClientStep& s, bool auth_line) {
    for (; next_reply_ < replies_.size() && replies_[next_reply_].seq < s.seq; ++next_reply_)
      see_reply(replies_[next_reply_]);
    const std::string_view line = strip_crlf(s.wire());
    return auth_line ? redactor_.begin(line) : redactor_.client_response(line);
  }

 private:
  void see_reply(const RecordedReply& r) {
    if (!redactor_.in_progress()) return;
    if (r.code == 334)
      redactor_.server_challenge(strip_crlf(r.raw));
    else
      redactor_.finish(r.code);
  }

  const std::vector<RecordedReply>& replies_;
  std::size_t next_reply_ = 0;
  smtp::AuthRedactor redactor_;
};

}  // namespace

bool fill_secrets(RecordedDialogue& dialogue, std::string_view user, std::string_view password,
                  std::string& error) {
  Filler filler{user, password, error};
  // Renders what is sent as the record renders it (user and password length as sent, which
  // --auth-user and the password given may change), exchange by exchange.
  FilledLineRenderer renderer(dialogue);
  bool ok = true;
  for_each_auth_step(dialogue, [&](ClientStep& s, const AuthStep& at) {
    if (at.mechanism != "PLAIN" && at.mechanism != "LOGIN") {
      if (s.redacted) {
        error = "AUTH " + at.mechanism + " cannot be replayed";
        ok = false;
      }
      return ok;
    }
    if (!fill_step(filler, s, at)) return ok = false;
    smtp::RedactedLine shown = renderer.render(s, at.auth_line);
    if (!s.filled) return true;
    // Defence in depth: a step the record holds redacted carried a secret, so a rendering that
    // shows it in full must be wrong; the recorded rendering is shown instead.
    s.shown =
        s.redacted && !shown.redacted ? std::string(strip_crlf(s.bytes)) : std::move(shown.text);
    return true;
  });
  return ok;
}

}  // namespace mailtap::tools
