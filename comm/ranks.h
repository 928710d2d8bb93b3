// Error handling across ranks: setup errors are agreed on (every rank exits cleanly, rank 0 or
// the failing ranks say why), errors during training abort the world so no rank hangs.
#pragma once

#include <functional>
#include <stdexcept>

#include "comm/comm.h"

namespace diloco {

// Thrown on every rank after an agreed failure, once the message has been printed.
class AgreedExit : public std::runtime_error {
public:
    AgreedExit() : std::runtime_error("agreed exit") {}
};

// Runs work on every rank, then agrees: if any rank threw an Error, the message is printed
// once (by rank 0 when all ranks failed alike, else by each failing rank) and every rank
// throws AgreedExit. Work must not start collectives after anything that may fail on one rank.
void run_agreed(Comm& world, const std::function<void()>& work);

// Runs work; an Error on any rank is printed with the rank and aborts the whole world.
void run_or_abort(Comm& world, const std::function<void()>& work);

}  // namespace diloco
