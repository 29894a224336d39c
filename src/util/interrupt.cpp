#include "util/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace abmll {
namespace {

std::atomic<int> received{0};

extern "C" void on_signal(int sig) {
  if (received.load() == sig) _exit(128 + sig);  // asked twice: stop now
  received.store(sig);
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int interrupt_signal() { return received.load(); }

int interrupt_exit_code(int signal) { return 128 + signal; }

void clear_interrupt() { received.store(0); }

}  // namespace abmll
