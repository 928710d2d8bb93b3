// Strict option values for every subcommand: numbers parsed whole and checked against the
// option's range when they are read (flags and TOML alike), and no option left with an empty value.
#pragma once

#include <CLI/CLI.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "util/parse.h"

namespace diloco {

// The values a numeric option accepts: min..max, each end included unless marked open. The
// defaults are T's whole range (for a floating T: every finite value).
template <typename T>
struct Range {
    T min = std::numeric_limits<T>::lowest();
    T max = std::numeric_limits<T>::max();
    bool min_open = false;
    bool max_open = false;

    bool contains(T v) const {
        return (min_open ? v > min : v >= min) && (max_open ? v < max : v <= max);
    }
};

// "a whole number within 0..100", "a finite number within (0, 1]", "a finite number >= 0"; an
// end given as "" is open (a floating type's own limits).
std::string describe_range(bool whole, bool min_open, bool max_open, const std::string& min_text,
                           const std::string& max_text);

template <typename T>
std::string describe(const Range<T>& r) {
    using limits = std::numeric_limits<T>;
    if constexpr (std::is_floating_point_v<T>)
        return describe_range(false, r.min_open, r.max_open,
                              r.min == limits::lowest() ? "" : exact_decimal(double(r.min)),
                              r.max == limits::max() ? "" : exact_decimal(double(r.max)));
    else
        return describe_range(true, r.min_open, r.max_open, std::to_string(r.min),
                              std::to_string(r.max));
}

// Checks one value of a numeric option and rewrites it as a plain decimal, so that CLI11's own
// conversion (which reads "010" as octal, "" as 0 and "-1" as 2^64 - 1) sees only what we
// accepted. Errors read "--warmup: '' is not a whole number within 0..1000000000".
template <typename T>
CLI::Validator number_in(const Range<T>& range) {
    return CLI::Validator(
        [range](std::string& text) {
            T value{};
            if (!parse_number(text, value) || !range.contains(value))
                return "'" + text + "' is not " + describe(range);
            if constexpr (std::is_floating_point_v<T>) text = exact_decimal(double(value));
            else text = std::to_string(value);
            return std::string();
        },
        "");
}

// A numeric option bound to value: the one way options of a number are added.
template <typename T>
CLI::Option* add_number(CLI::App& cmd, const std::string& flag, T& value, const Range<T>& range,
                        const std::string& help) {
    return cmd.add_option(flag, value, help)->transform(number_in(range))->capture_default_str();
}

// A list option, "a,b" or a TOML array: every item checked by item_check (which may rewrite it,
// as number_in does), and an empty item ("1," or "1,,2") refused. CLI11's own delimiter would
// drop empty items silently.
template <typename T>
CLI::Option* add_list(CLI::App& cmd, const std::string& flag, std::vector<T>& values,
                      const CLI::Validator& item_check, const std::string& help) {
    const CLI::callback_t store = [&values, item_check, flag](const CLI::results_t& results) {
        values.clear();
        for (const std::string& result : results) {
            for (std::string item : split_list(result, ',')) {
                std::string problem = item.empty() ? "'" + result + "' has an empty item"
                                                   : item_check(item);
                if (!problem.empty()) throw CLI::ValidationError(flag, problem);
                T value{};
                if (!CLI::detail::lexical_cast(item, value))
                    throw CLI::ValidationError(flag, "'" + item + "' is not a value");
                values.push_back(value);
            }
        }
        return true;
    };
    return cmd.add_option(flag, store, help)
        ->type_name("LIST")
        ->expected(1, CLI::detail::expected_max_vector_size);
}

// Every option (of app and its subcommands, recursively) that takes a value refuses an empty
// one: `--save ''` would otherwise mean "no checkpoint" and `--warmup ''` zero. Positional
// arguments are left alone (an empty word is a valid argument of a supervised command).
void refuse_empty_values(CLI::App& app);

}  // namespace diloco
