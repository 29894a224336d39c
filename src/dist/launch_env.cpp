#include "dist/launch_env.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "dist/slurm_nodelist.h"
#include "util/error.h"

namespace abmll::dist {
namespace {

// A non-negative integer variable, strictly parsed ("2", not "2x", " 2" or "-1").
std::optional<long long> integer(const EnvLookup& env, const std::string& name) {
  const std::optional<std::string> text = env(name);
  if (!text) return std::nullopt;
  const bool digits = !text->empty() && text->find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  const long long v = digits ? std::strtoll(text->c_str(), nullptr, 10) : -1;
  if (!digits || errno == ERANGE || v > std::numeric_limits<int>::max())
    throw InputError(fmt::format("environment variable {}='{}': expected a non-negative integer", name, *text));
  return v;
}

long long required_integer(const EnvLookup& env, const std::string& name, const std::string& because) {
  const auto v = integer(env, name);
  if (!v) throw InputError(fmt::format("environment variable {} is not set ({})", name, because));
  return *v;
}

int port_from(const std::string& name, long long value) {
  if (value < 1 || value > 65535)
    throw InputError(fmt::format("environment variable {}='{}': a port must be in 1..65535", name, value));
  return static_cast<int>(value);
}

std::string address_from(const EnvLookup& env, const std::string& because) {
  if (const auto addr = env("MASTER_ADDR")) {
    if (addr->empty() || addr->find_first_of(" \t\n") != std::string::npos)
      throw InputError(fmt::format("environment variable MASTER_ADDR='{}': expected a host name or address", *addr));
    return *addr;
  }
  for (const char* name : {"SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
    if (const auto list = env(name)) {
      try {
        return first_slurm_host(*list);
      } catch (const InputError& e) {
        throw InputError(fmt::format("environment variable {}: {}", name, e.what()));
      }
    }
  }
  throw InputError(fmt::format("environment variable MASTER_ADDR is not set ({})", because));
}

}  // namespace

const char* to_string(Launcher launcher) {
  switch (launcher) {
    case Launcher::single: return "a single process";
    case Launcher::torchrun: return "torchrun variables";
    case Launcher::slurm: return "SLURM variables";
  }
  return "?";
}

std::string LaunchEnv::describe() const {
  if (!distributed()) return fmt::format("one process ({})", to_string(launcher));
  return fmt::format("rank {} of {} (local rank {}) via {}, rendezvous store at {}:{}", rank, world_size, local_rank,
                     to_string(launcher), master_addr, master_port);
}

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
}

LaunchEnv read_launch_env(const EnvLookup& env) {
  LaunchEnv out;
  long long rank = 0, world = 1, local = 0;
  std::string rank_name, world_name;
  if (env("WORLD_SIZE") || env("RANK")) {
    out.launcher = Launcher::torchrun;
    rank_name = "RANK", world_name = "WORLD_SIZE";
    world = required_integer(env, "WORLD_SIZE", "RANK is set: torchrun sets both");
    rank = required_integer(env, "RANK", "WORLD_SIZE is set: torchrun sets both");
    local = integer(env, "LOCAL_RANK").value_or(rank);
  } else if (env("SLURM_PROCID")) {
    out.launcher = Launcher::slurm;
    rank_name = "SLURM_PROCID", world_name = "SLURM_NTASKS";
    rank = required_integer(env, "SLURM_PROCID", "srun sets it with SLURM_PROCID");
    world = required_integer(env, "SLURM_NTASKS", "srun sets it with SLURM_PROCID");
    local = required_integer(env, "SLURM_LOCALID", "srun sets it with SLURM_PROCID");
  } else {
    return out;
  }
  if (world < 1) throw InputError(fmt::format("environment variable {}='{}': must be at least 1", world_name, world));
  if (rank >= world)
    throw InputError(fmt::format("environment variable {}='{}' is not below {}='{}' (ranks are 0..{})", rank_name,
                                 rank, world_name, world, world - 1));
  out.rank = static_cast<int>(rank);
  out.world_size = static_cast<int>(world);
  out.local_rank = static_cast<int>(local);
  if (!out.distributed()) return out;

  const std::string because = fmt::format("{} is {}: rank 0's address is needed to meet", world_name, world);
  out.master_addr = address_from(env, because);
  if (const auto port = integer(env, "MASTER_PORT")) {
    out.master_port = port_from("MASTER_PORT", *port);
  } else if (out.launcher == Launcher::slurm && env("SLURM_JOB_ID")) {
    out.master_port = 20000 + static_cast<int>(required_integer(env, "SLURM_JOB_ID", "") % 20000);
  } else {
    throw InputError(fmt::format("environment variable MASTER_PORT is not set ({})", because));
  }
  return out;
}

}  // namespace abmll::dist
