#include "dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "dist/backends.h"
#include "util/error.h"
#include "util/log.h"
#include "util/torch_errors.h"

namespace abmll::dist {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(std::chrono::milliseconds ms) { return ms.count() / 1000.0; }

std::string as_string(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

}  // namespace

BackendKind parse_backend(std::string_view name, std::string_view source) {
  if (name == "gloo") return BackendKind::gloo;
  if (name == "nccl") return BackendKind::nccl;
  throw InputError(fmt::format("{} '{}': expected gloo or nccl", source, name));
}

const char* to_string(BackendKind kind) { return kind == BackendKind::gloo ? "gloo" : "nccl"; }

struct ProcessGroup::State {
  LaunchEnv env;
  GroupOptions options;
  c10::intrusive_ptr<c10d::Store> store;      // TCPStore (served by rank 0), shared by everything below
  c10::intrusive_ptr<c10d::Store> progress;   // "abmll/" keys: which collective each rank has reached
  c10::intrusive_ptr<c10d::Backend> backend;
  std::int64_t sequence = 0;                  // collectives entered so far (the same count on every rank)
};

ProcessGroup::ProcessGroup(std::unique_ptr<State> state) : s_(std::move(state)) {}
ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return s_->env.rank; }
int ProcessGroup::size() const { return s_->env.world_size; }
BackendKind ProcessGroup::backend() const { return s_->options.backend; }
at::Device ProcessGroup::device() const {
  return s_->options.backend == BackendKind::nccl
             ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(s_->options.cuda_device))
             : at::Device(at::kCPU);
}

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const LaunchEnv& env, const GroupOptions& options) {
  auto state = std::make_unique<State>();
  state->env = env;
  state->options = options;
  const std::string where = fmt::format("{}:{}", env.master_addr, env.master_port);
  const auto start = Clock::now();

  // Rendezvous: rank 0 serves the store; the others retry connecting until the timeout. Rank 0 then waits for
  // every rank to sign in (below) rather than inside TCPStore, so that it can name the missing ones.
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(env.master_port);
  store_options.isServer = env.rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(env.world_size);
  store_options.waitWorkers = false;
  store_options.timeout = options.timeout;
  try {
    state->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
  } catch (const std::exception& e) {
    throw Error(fmt::format("rendezvous ({}): {} ({})", env.describe(), message_of(e),
                            env.rank == 0 ? fmt::format("rank 0 serves the store: is port {} free on this host?",
                                                        env.master_port)
                                          : fmt::format("rank 0 serves the store: is it running, and is {} reachable "
                                                        "from here?",
                                                        where)));
  }
  state->progress = c10::make_intrusive<c10d::PrefixStore>("abmll", state->store);

  // Consistency of the launch (one process per rank, one world size), then rank 0 waits for every rank to sign in.
  c10d::Store& progress = *state->progress;
  try {
    if (env.rank == 0) progress.set("world_size", std::to_string(env.world_size));
    const std::string world0 = as_string(progress.get("world_size"));
    if (world0 != std::to_string(env.world_size))
      throw InputError(fmt::format("WORLD_SIZE mismatch: this process (rank {}) was started with a world size of {}, "
                                   "rank 0 with {}",
                                   env.rank, env.world_size, world0));
    if (progress.add(fmt::format("rank/{}", env.rank), 1) != 1)
      throw InputError(fmt::format("two processes were started as rank {} of the job at {} (check RANK / "
                                   "SLURM_PROCID)",
                                   env.rank, where));
    progress.add("joined", 1);
    if (env.rank == 0) {
      const auto deadline = start + options.timeout;
      std::int64_t joined = 0;
      while ((joined = progress.add("joined", 0)) < env.world_size && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (joined < env.world_size) {
        std::string missing;
        for (int r = 1; r < env.world_size; ++r)
          if (!progress.check({fmt::format("rank/{}", r)}))
            missing += fmt::format("{}{}", missing.empty() ? "" : ", ", r);
        throw Error(fmt::format("rendezvous ({}): {} of {} ranks joined within {:.0f} s; missing: rank{} {}{}",
                                env.describe(), joined, env.world_size, seconds(options.timeout),
                                missing.find(',') == std::string::npos ? "" : "s", missing,
                                env.launcher == Launcher::slurm ? " (under SLURM, start the ranks with srun)" : ""));
      }
    }
  } catch (const abmll::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("rendezvous at {} ({}): {}", where, env.describe(), message_of(e)));
  }

  try {
    auto backend_store = c10::make_intrusive<c10d::PrefixStore>(to_string(options.backend), state->store);
    state->backend = options.backend == BackendKind::gloo
                         ? make_gloo_backend(backend_store, env.rank, env.world_size, options.timeout)
                         : make_nccl_backend(backend_store, env.rank, env.world_size, options.timeout,
                                             options.cuda_device);
  } catch (const abmll::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("setting up the {} backend ({}): {}", to_string(options.backend), env.describe(),
                            message_of(e)));
  }
  log::info("distributed: {} with {} ({:.1f} s to meet), timeout {:.0f} s", env.describe(),
            to_string(options.backend), std::chrono::duration<double>(Clock::now() - start).count(),
            seconds(options.timeout));
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(state)));
}

void ProcessGroup::enter(const std::string& what) {
  ++s_->sequence;
  try {
    s_->progress->set(fmt::format("at/{}", s_->env.rank), fmt::format("{} {}", s_->sequence, what));
  } catch (const std::exception& e) {
    fail(what, message_of(e));
  }
}

void ProcessGroup::fail(const std::string& what, const std::string& cause) {
  const State& s = *s_;
  // Which ranks never reached this collective? Ask the store, briefly: it may be gone too.
  std::vector<std::string> behind;
  std::vector<int> arrived;  // other ranks that had reached this collective too
  std::string store_problem;
  try {
    s.progress->setTimeout(std::min<std::chrono::milliseconds>(s.options.timeout, std::chrono::seconds(10)));
    for (int r = 0; r < s.env.world_size; ++r) {
      if (r == s.env.rank) continue;
      const std::string key = fmt::format("at/{}", r);
      if (!s.progress->check({key})) {
        behind.push_back(fmt::format("rank {} (never reached a collective)", r));
        continue;
      }
      const std::string record = as_string(s.progress->get(key));
      const std::size_t space = record.find(' ');
      const std::int64_t seq = std::stoll(record.substr(0, space));
      if (seq < s.sequence) {
        behind.push_back(fmt::format("rank {} (last reached collective #{}: {})", r, seq,
                                     space == std::string::npos ? "" : record.substr(space + 1)));
      } else {
        arrived.push_back(r);
      }
    }
  } catch (const std::exception& e) {
    store_problem = message_of(e);
  }
  std::string verdict;
  if (!store_problem.empty() && s.env.rank != 0) {
    verdict = fmt::format("rank 0 is gone or hangs (its rendezvous store at {}:{} does not answer: {})",
                          s.env.master_addr, s.env.master_port, store_problem);
  } else if (!behind.empty()) {
    std::string list;
    for (const auto& b : behind) list += (list.empty() ? "" : ", ") + b;
    verdict = fmt::format("{} did not arrive: died, hangs, or is slower than the {:.0f} s timeout", list,
                          seconds(s.options.timeout));
  } else {
    std::string list;
    for (int r : arrived) list += fmt::format("{}{}", list.empty() ? "" : ", ", r);
    verdict = fmt::format("rank{} {} had reached it too, so {} failed (died or hung) during the exchange",
                          arrived.size() == 1 ? "" : "s", list, arrived.size() == 1 ? "it" : "one of them");
  }
  throw Error(fmt::format("rank {} of {}: collective #{} ({}) failed: {}. The {} backend said: {}", s.env.rank,
                          s.env.world_size, s.sequence, what, verdict, to_string(s.options.backend), cause));
}

void ProcessGroup::all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op, const std::string& what) {
  enter(what);
  try {
    c10d::AllreduceOptions opts;
    opts.reduceOp = op == ReduceOp::sum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
    opts.timeout = s_->options.timeout;
    // One work per tensor, all in flight before the first wait (the backend pipelines them).
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    works.reserve(tensors.size());
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      works.push_back(s_->backend->allreduce(one, opts));
    }
    for (auto& w : works) w->wait(s_->options.timeout);
  } catch (const abmll::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, message_of(e));
  }
}

void ProcessGroup::barrier(const std::string& what) {
  enter(what);
  try {
    c10d::BarrierOptions opts;
    opts.timeout = s_->options.timeout;
    s_->backend->barrier(opts)->wait(s_->options.timeout);
  } catch (const std::exception& e) {
    fail(what, message_of(e));
  }
}

}  // namespace abmll::dist
