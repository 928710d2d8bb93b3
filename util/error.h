// The one error type of diloco: a message meant for the user, naming the file and the problem.
// Commands catch it at the top, print it on one line and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace diloco {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) unless ok; for checks on user input, files and configs.
inline void require(bool ok, const std::string& message) {
    if (!ok) throw Error(message);
}

}  // namespace diloco
