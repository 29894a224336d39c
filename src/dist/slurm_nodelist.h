// SLURM's compressed host lists (SLURM_JOB_NODELIST, SLURM_NODELIST), e.g. "gpu[01-04,07],cpu3" or
// "rack[1-2]-n[1-2]": comma-separated items at bracket depth zero; each item is literal text with any number of
// bracketed range sets, "[lo-hi,n,...]", expanded left to right (the first bracket varies slowest). A range keeps
// the zero padding of its lower bound ("[08-11]" -> 08 09 10 11), as SLURM's hostlist does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace abmll::dist {

// Every host of `nodelist`, in SLURM's order. Throws InputError naming the list and the problem (unbalanced
// brackets, empty items, a range whose end is below its start, non-numeric bounds, more than 1M hosts).
std::vector<std::string> expand_slurm_nodelist(std::string_view nodelist);

// The first host of `nodelist`: where rank 0 runs under srun's default block distribution.
std::string first_slurm_host(std::string_view nodelist);

}  // namespace abmll::dist
