// Where this process sits in a multi-process job, read from the variables launchers set:
//  - torchrun (or by hand): RANK, WORLD_SIZE, LOCAL_RANK (default: RANK), MASTER_ADDR, MASTER_PORT;
//  - srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; MASTER_ADDR defaults to the first host of
//    SLURM_JOB_NODELIST (or SLURM_NODELIST), MASTER_PORT to 20000 + SLURM_JOB_ID mod 20000 (so that two jobs
//    sharing a node do not collide; array tasks have their own job ids);
//  - neither: one process (world size 1), no process group.
// torchrun's variables win when both are present (torchrun inside a SLURM allocation). Nothing here connects to
// anything: see process_group.h.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace abmll::dist {

enum class Launcher { single, torchrun, slurm };
const char* to_string(Launcher launcher);

struct LaunchEnv {
  Launcher launcher = Launcher::single;
  int rank = 0;        // this process, in [0, world_size)
  int world_size = 1;  // processes in the job
  int local_rank = 0;  // this process's index on its node (its GPU under one GPU per process)
  std::string master_addr;  // host of rank 0, which serves the rendezvous store
  int master_port = 0;

  bool distributed() const { return world_size > 1; }
  // e.g. "rank 1 of 2 (local rank 1) via torchrun, store at 127.0.0.1:29500"
  std::string describe() const;
};

// Looks a variable up: its value, or nullopt when it is not set. Tests pass a map; the command line, getenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_environment();

// Reads the launch variables. A malformed or inconsistent value (not an integer, RANK outside [0, WORLD_SIZE),
// a port outside 1..65535, a missing companion variable) is an InputError naming the variable and its value.
LaunchEnv read_launch_env(const EnvLookup& env);

}  // namespace abmll::dist
