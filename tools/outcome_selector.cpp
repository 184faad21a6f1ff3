#include "tools/outcome_selector.hpp"

#include "proxy/smtp/record_vocabulary.hpp"

namespace mailtap::tools {

bool select_outcome(std::string_view value, storage::SessionFilter& filter) {
  if (value == "in_progress") {
    filter.writer = storage::SessionFilter::Writer::not_gone;
  } else if (value == "cut") {
    filter.writer = storage::SessionFilter::Writer::gone;
  } else if (value == "open") {
    filter.only_in_progress = true;
  } else {
    const auto outcome = smtp::parse_name<smtp::Outcome>(value);
    if (!outcome) return false;
    filter.outcome = outcome;
  }
  return true;
}

const std::string& outcome_selector_names() {
  static const std::string names = smtp::names_list<smtp::Outcome>() + ", in_progress, cut, open";
  return names;
}

}  // namespace mailtap::tools
