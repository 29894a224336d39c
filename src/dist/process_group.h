// A process group over LibTorch's c10d: rendezvous through a c10d::TCPStore served by rank 0 (MASTER_ADDR /
// MASTER_PORT), then a Gloo or NCCL backend on top of it. What abmll needs of it: all-reduce (sum or max) and
// barriers, each bounded by a timeout, with failures turned into errors that name the rank at fault.
//
// Fault diagnosis: before each collective, every rank records in the store which collective (a sequence number,
// the same on every rank, and a description) it has reached. When a collective fails (a peer's connection closed:
// it died; or the backend's timeout passed: it hangs or is slow), the surviving rank reads those records and names
// the ranks that never arrived; when the store itself is unreachable, rank 0 (its host) is the one gone.
//
// Threading: one thread uses a ProcessGroup at a time. The c10d headers stay in process_group.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dist/launch_env.h"

namespace abmll::dist {

enum class BackendKind { gloo, nccl };
// "gloo" or "nccl"; anything else is an InputError naming `source` (e.g. "--dist-backend").
BackendKind parse_backend(std::string_view name, std::string_view source);
const char* to_string(BackendKind kind);

struct GroupOptions {
  BackendKind backend = BackendKind::gloo;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // rendezvous and every collective
  int cuda_device = -1;  // NCCL: this rank's GPU
};

enum class ReduceOp { sum, max };

class ProcessGroup {
 public:
  // Meets the other env.world_size - 1 ranks and sets up the backend. Throws InputError for inconsistent launches
  // (ranks that disagree on WORLD_SIZE, two processes with the same rank) and Error when a rank does not arrive
  // within the timeout or the store cannot be served or reached.
  static std::unique_ptr<ProcessGroup> connect(const LaunchEnv& env, const GroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  BackendKind backend() const;
  // Where the tensors of this group's collectives live: this rank's GPU for NCCL, the CPU for Gloo.
  at::Device device() const;

  // Reduces each tensor in place across ranks (every rank passes tensors of the same shapes, dtypes and order).
  // The tensors are launched together and waited for together. `what` names the collective in errors ("theta's
  // gradients of step 7"). Throws Error naming the ranks that did not reach it.
  void all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op, const std::string& what);
  void barrier(const std::string& what);

 private:
  struct State;
  explicit ProcessGroup(std::unique_ptr<State> state);
  [[noreturn]] void fail(const std::string& what, const std::string& cause);
  void enter(const std::string& what);
  std::unique_ptr<State> s_;
};

}  // namespace abmll::dist
