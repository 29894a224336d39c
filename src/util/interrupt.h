// Graceful interruption: SIGINT and SIGTERM set a flag that long loops poll between steps, so a run finishes its
// current step, saves a checkpoint and exits (130 after SIGINT, 143 after SIGTERM, as shells report them) instead
// of dying mid-write. A second signal of the same kind while the first is being handled exits at once.
#pragma once

namespace abmll {

// Installs the handlers (idempotent). Call once at the start of a command that can be interrupted.
void install_interrupt_handlers();

// The signal received (SIGINT or SIGTERM), or 0.
int interrupt_signal();
inline bool interrupted() { return interrupt_signal() != 0; }

// The conventional exit code for an interruption by `signal` (128 + signal).
int interrupt_exit_code(int signal);

// For tests: forget a received signal.
void clear_interrupt();

}  // namespace abmll
