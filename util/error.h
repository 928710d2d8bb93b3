// The error type of diloco: a message meant for the user, naming the file and the problem.
// Commands catch it at the top, print it on one line and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

namespace diloco {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Training cut short from outside the island: a stop signal, or another island that did not
// answer within --sync-timeout. What the island trained is sound and may be kept; after any
// other Error (a non-finite loss, a bad file) it may not be.
class Interrupted : public Error {
public:
    using Error::Error;
};

// Throws Error(message) unless ok; for checks on user input, files and configs.
inline void require(bool ok, const std::string& message) {
    if (!ok) throw Error(message);
}
inline void require(bool ok, const char* message) {
    if (!ok) throw Error(message);
}
// The same with the message built only when the check fails, for checks on hot paths (every
// micro-batch, every write), where building it would cost more than the check:
// require(ok, [&] { return path + ": write failed (" + errno_text() + ")"; }).
template <class Message>
    requires std::is_invocable_r_v<std::string, Message&>
inline void require(bool ok, Message&& message) {
    if (!ok) throw Error(message());
}

}  // namespace diloco
