// Strict option values: the words of a numeric option's range, and the empty-value check laid
// over every option of the command line.
#include "tools/options.h"

namespace diloco {

std::string describe_range(bool whole, bool min_open, bool max_open, const std::string& min_text,
                           const std::string& max_text) {
    if (whole) return "a whole number within " + min_text + ".." + max_text;
    const bool bounded_below = !min_text.empty(), bounded_above = !max_text.empty();
    if (bounded_below && bounded_above)
        return "a finite number within " + std::string(min_open ? "(" : "[") + min_text + ", " +
               max_text + (max_open ? ")" : "]");
    if (bounded_below) return "a finite number " + std::string(min_open ? "> " : ">= ") + min_text;
    if (bounded_above) return "a finite number " + std::string(max_open ? "< " : "<= ") + max_text;
    return "a finite number";
}

void refuse_empty_values(CLI::App& app) {
    const CLI::Validator not_empty(
        [](std::string& text) {
            return text.empty() ? std::string("an empty value: give one, or leave the option out")
                                : std::string();
        },
        "");
    for (CLI::Option* option : app.get_options())
        if (option->get_type_size() != 0 && option->nonpositional()) option->check(not_empty);
    for (CLI::App* sub : app.get_subcommands({})) refuse_empty_values(*sub);
}

}  // namespace diloco
