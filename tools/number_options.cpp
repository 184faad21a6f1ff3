#include "tools/number_options.hpp"

#include "proxy/common/decimal_number.hpp"

namespace mailtap::tools {

namespace {

const NumberKind& session_id_kind() {
  static const NumberKind kind{"a session id",
                               "a session id is a number such as 12, see `mailtap sessions`", 1};
  return kind;
}

}  // namespace

std::uint64_t number_argument(const std::string& option, const NumberKind& kind,
                              const std::string& text) {
  if (const auto n = parse_decimal(text, kind.minimum, kind.maximum)) return *n;
  const bool named = option.rfind('-', 0) == 0;
  // Thrown as CLI11's own errors are, so it is reported like them, with the usage status 2.
  throw CLI::ValidationError((named ? option + ": " : std::string()) + "not " + kind.what + ": " +
                                 text + " (" + kind.hint + ")",
                             CLI::ExitCodes::ValidationError);
}

CLI::Option* add_session_id(CLI::App& app, const std::string& name, std::int64_t& id,
                            const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [name, &id](const std::string& text) {
            id = static_cast<std::int64_t>(number_argument(name, session_id_kind(), text));
          },
          help)
      ->type_name("NUMBER");
}

CLI::Option* add_session_ids(CLI::App& app, const std::string& name, std::vector<std::int64_t>& ids,
                             const std::string& help) {
  return app
      .add_option_function<std::vector<std::string>>(
          name,
          [name, &ids](const std::vector<std::string>& texts) {
            ids.clear();
            for (const std::string& text : texts)
              ids.push_back(
                  static_cast<std::int64_t>(number_argument(name, session_id_kind(), text)));
          },
          help)
      ->type_name("NUMBER");
}

}  // namespace mailtap::tools
