// Errors thrown by the abmll library. Library code throws; only the command line (src/cli) turns an error into a
// message and an exit code: InputError -> 2 (bad usage or untrusted input: configs, data, checkpoints), anything
// else -> 1. Context is added on the way up ("loading checkpoint X: tensor 'w': ..."), keeping the error's kind.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace abmll {

// Base of every error abmll throws on purpose. what() is the full message, outermost context first.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  virtual int exit_code() const { return 1; }
};

// Bad input from the user: a config, a command-line value, a data file or a checkpoint. Exit code 2.
class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(message) {}
  int exit_code() const override { return 2; }
};

// Runs `body`; an abmll error escaping it is rethrown, of the same kind, with "context: " prepended.
// Use it where a stage knows something the thrower did not (which file, which tensor, which step).
template <class F>
decltype(auto) with_context(const std::string& context, F&& body) {
  try {
    return std::forward<F>(body)();
  } catch (const InputError& e) {
    throw InputError(context + ": " + e.what());
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

// Exit code for any exception reaching main: abmll errors carry theirs, anything else is an internal failure.
int exit_code_for(const std::exception& e);

}  // namespace abmll
