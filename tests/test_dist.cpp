// src/dist: SLURM host lists, launch variables, bucket plans, and a real two-rank Gloo process group in one
// process (two threads over loopback) summing tensors bucket by bucket and gathering bytes and JSON.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <map>
#include <thread>

#include "dist/all_gather.h"
#include "dist/bucketed_all_reduce.h"
#include "dist/launch_env.h"
#include "dist/process_group.h"
#include "dist/slurm_nodelist.h"
#include "test_support.h"
#include "util/error.h"

using namespace abmll;
using abmll::test::input_error_of;

namespace {

using Hosts = std::vector<std::string>;

dist::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

// A TCP port that was free a moment ago (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs `body(group)` as ranks 0 and 1 of a Gloo group over loopback (rank 1 on a thread of its own); returns each
// rank's error message, empty when it finished.
std::vector<std::string> run_two_ranks(const std::function<void(dist::ProcessGroup&)>& body) {
  const int port = free_port();
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    try {
      dist::LaunchEnv env;
      env.launcher = dist::Launcher::torchrun;
      env.rank = rank, env.world_size = 2, env.local_rank = rank;
      env.master_addr = "127.0.0.1", env.master_port = port;
      dist::GroupOptions options;
      options.timeout = std::chrono::seconds(30);
      auto group = dist::ProcessGroup::connect(env, options);
      body(*group);
      group->barrier("the end of the test");
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread other(rank_main, 1);
  rank_main(0);
  other.join();
  return errors;
}

}  // namespace

TEST_CASE("SLURM node lists expand as SLURM's hostlist does", "[dist]") {
  CHECK(dist::expand_slurm_nodelist("gpu[01-04,07],cpu3") ==
        Hosts{"gpu01", "gpu02", "gpu03", "gpu04", "gpu07", "cpu3"});
  CHECK(dist::expand_slurm_nodelist("node1") == Hosts{"node1"});
  CHECK(dist::expand_slurm_nodelist("a,b,c") == Hosts{"a", "b", "c"});
  CHECK(dist::expand_slurm_nodelist("n[8-11]") == Hosts{"n8", "n9", "n10", "n11"});
  CHECK(dist::expand_slurm_nodelist("n[08-11]") == Hosts{"n08", "n09", "n10", "n11"});  // padding of the lower bound
  CHECK(dist::expand_slurm_nodelist("n[098-101]") == Hosts{"n098", "n099", "n100", "n101"});
  CHECK(dist::expand_slurm_nodelist("rack[1-2]-n[1,3]") == Hosts{"rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"});
  CHECK(dist::expand_slurm_nodelist("x[5]y,z[0-1].ib") == Hosts{"x5y", "z0.ib", "z1.ib"});
  CHECK(dist::first_slurm_host("gpu[01-04,07],cpu3") == "gpu01");
  CHECK(dist::first_slurm_host("login,gpu[1-2]") == "login");
  for (const char* bad : {"", "gpu[01-04", "gpu01]", "gpu[4-1]", "gpu[a-b]", "gpu[1-]", "gpu[]", "a,,b", "a,",
                          "gpu[1[2]]", "a b", "n[0-99999999]"}) {
    INFO(bad);
    const std::string message = input_error_of([&] { dist::expand_slurm_nodelist(bad); });
    CHECK_THAT(message, Catch::Contains("SLURM node list"));
  }
}

TEST_CASE("launch variables: torchrun's, SLURM's, or none", "[dist]") {
  const dist::LaunchEnv none = dist::read_launch_env(env_of({}));
  CHECK(none.launcher == dist::Launcher::single);
  CHECK(!none.distributed());

  const auto torchrun = dist::read_launch_env(env_of(
      {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "n1"}, {"MASTER_PORT", "29500"}}));
  CHECK(torchrun.launcher == dist::Launcher::torchrun);
  CHECK((torchrun.rank == 3 && torchrun.world_size == 8 && torchrun.local_rank == 1));
  CHECK((torchrun.master_addr == "n1" && torchrun.master_port == 29500));

  // By hand on one machine: LOCAL_RANK defaults to RANK; a world of one needs no address.
  CHECK(dist::read_launch_env(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "9"}}))
            .local_rank == 1);
  CHECK(!dist::read_launch_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}})).distributed());

  const auto slurm = dist::read_launch_env(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"},
                                                   {"SLURM_LOCALID", "5"}, {"SLURM_JOB_ID", "123456"},
                                                   {"SLURM_JOB_NODELIST", "gpu[03-04]"}}));
  CHECK(slurm.launcher == dist::Launcher::slurm);
  CHECK((slurm.rank == 5 && slurm.world_size == 16 && slurm.local_rank == 5));
  CHECK(slurm.master_addr == "gpu03");
  CHECK(slurm.master_port == 20000 + 123456 % 20000);
  // MASTER_ADDR / MASTER_PORT override SLURM's defaults; torchrun's variables win over SLURM's.
  const auto both = dist::read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"},
                                                  {"SLURM_JOB_NODELIST", "a[1-2]"}, {"MASTER_ADDR", "b"},
                                                  {"MASTER_PORT", "1234"}, {"RANK", "2"}, {"WORLD_SIZE", "4"}}));
  CHECK((both.launcher == dist::Launcher::torchrun && both.rank == 2 && both.master_addr == "b"));
}

TEST_CASE("bad launch variables are input errors naming the variable", "[dist]") {
  using Vars = std::map<std::string, std::string>;
  const std::vector<std::pair<Vars, std::string>> cases = {
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK='x'"},
      {{{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK='-1'"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}, "is not below WORLD_SIZE"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE='0'"},
      {{{"RANK", "0"}}, "WORLD_SIZE is not set"},
      {{{"WORLD_SIZE", "2"}}, "RANK is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}, "MASTER_ADDR is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}, "MASTER_PORT is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT='70000'"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "0"}}, "MASTER_PORT='0'"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "99999999999"}}, "WORLD_SIZE='99999999999'"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}, "SLURM_LOCALID is not set"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}, {"SLURM_JOB_NODELIST", "n[1-"}},
       "SLURM_JOB_NODELIST"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}, {"SLURM_JOB_NODELIST", "n1"}},
       "MASTER_PORT is not set"},
  };
  for (const auto& [vars, expected] : cases) {
    INFO(expected);
    CHECK_THAT(input_error_of([&] { dist::read_launch_env(env_of(vars)); }), Catch::Contains(expected));
  }
  CHECK_THAT(input_error_of([] { dist::parse_backend("mpi", "--dist-backend"); }),
             Catch::Contains("--dist-backend 'mpi'"));
}

TEST_CASE("buckets: runs of one dtype, at most the byte budget", "[dist]") {
  const std::vector<at::Tensor> t = {at::zeros({10}), at::zeros({10}), at::zeros({30}), at::zeros({5}, at::kDouble),
                                     at::zeros({2})};
  // float32: 40 + 40 bytes fit in 100; the 120-byte tensor gets its own; a dtype change starts a bucket.
  CHECK(dist::plan_buckets(t, 100) == std::vector<std::vector<std::size_t>>{{0, 1}, {2}, {3}, {4}});
  CHECK(dist::plan_buckets(t, 1 << 20) == std::vector<std::vector<std::size_t>>{{0, 1, 2}, {3}, {4}});
}

TEST_CASE("two Gloo ranks over loopback sum weighted tensors across buckets", "[dist]") {
  // Rank r holds tensors filled with r + 1 (+ their index), shapes that span several 64-byte buckets.
  auto tensors_of = [](int rank) {
    std::vector<at::Tensor> t;
    for (int64_t n : {3, 17, 1, 40, 5}) t.push_back(at::arange(n, at::kFloat).reshape({n, 1}) + float(rank + 1));
    return t;
  };
  std::vector<std::vector<at::Tensor>> results(2);
  const std::vector<std::string> errors = run_two_ranks([&](dist::ProcessGroup& group) {
    std::vector<at::Tensor> t = tensors_of(group.rank());
    dist::all_reduce_weighted_sum(group, t, group.rank() == 0 ? 0.25 : 0.75, 64, "test tensors");
    results[group.rank()] = t;
  });
  REQUIRE(errors[0].empty());
  REQUIRE(errors[1].empty());
  const auto a = tensors_of(0), b = tensors_of(1);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const at::Tensor expected = 0.25 * a[i] + 0.75 * b[i];
    CHECK(results[0][i].sizes() == a[i].sizes());
    CHECK(at::allclose(results[0][i], expected));
    CHECK(at::equal(results[0][i], results[1][i]));  // the same bits on every rank
  }
}

TEST_CASE("two Gloo ranks gather each other's bytes and JSON exactly", "[dist]") {
  // Every byte value (zeros and 0xff included), an empty message, and an exchange in which both are empty.
  std::vector<std::uint8_t> all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<std::uint8_t>(b));
  using Bytes = std::vector<std::uint8_t>;
  const std::vector<std::vector<Bytes>> rounds = {{all_bytes, {1, 2, 3}}, {{}, {7}}, {{}, {}}};
  // JSON with the numbers text would lose: NaN and infinities become null in JSON text; CBOR keeps their bits.
  const nlohmann::json odd = {{"nan", std::nan("")}, {"inf", -INFINITY}, {"third", 1.0 / 3.0}, {"tiny", 4.9e-324}};
  std::vector<std::vector<std::vector<Bytes>>> gathered(2);
  std::vector<std::vector<nlohmann::json>> documents(2);
  const std::vector<std::string> errors = run_two_ranks([&](dist::ProcessGroup& group) {
    for (const auto& messages : rounds)
      gathered[group.rank()].push_back(dist::all_gather_bytes(group, messages[group.rank()], "test bytes"));
    documents[group.rank()] =
        dist::all_gather_json(group, group.rank() == 0 ? odd : nlohmann::json{{"rank", 1}}, "test JSON");
  });
  REQUIRE(errors[0].empty());
  REQUIRE(errors[1].empty());
  CHECK(gathered[0] == rounds);
  CHECK(gathered[1] == rounds);
  for (const auto& docs : documents) {
    REQUIRE(docs.size() == 2);
    CHECK(std::isnan(docs[0]["nan"].get<double>()));
    CHECK(docs[0]["inf"].get<double>() == -INFINITY);
    CHECK(docs[0]["third"].get<double>() == 1.0 / 3.0);
    CHECK(docs[0]["tiny"].get<double>() == 4.9e-324);
    CHECK(docs[1] == nlohmann::json{{"rank", 1}});
  }
}
