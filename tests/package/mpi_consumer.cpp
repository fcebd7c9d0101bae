// A consumer of diffuse::mpi (built by tests/package/ when diffuse has its MPI component): samples 5 noise
// vectors in chunks of 2 over the ranks of MPI_COMM_WORLD (one, run without mpirun) and checks the
// gathered result against fill_normal of all 5 at once. Returns 0 only when the numbers are right.
#include <cstdio>
#include <vector>

#include <diffuse/core/fill_normal.hpp>
#include <diffuse/mpi/communicator.hpp>
#include <diffuse/mpi/sharded_sampling.hpp>

int main(int argc, char** argv) {
    diffuse::mpi::environment env(argc, argv);
    const diffuse::mpi::communicator comm;
    const diffuse::mpi::shard_plan plan(5, 2, comm.size());
    const auto local = diffuse::mpi::sample_shard<double>(comm, plan, 3, [](const diffuse::mpi::shard_chunk& c,
                                                                            diffuse::tensor_view<double> x) {
        diffuse::fill_normal(x, 7, 0, c.first_sample);
    });
    const auto all = diffuse::mpi::gather_samples(comm, plan, local);
    if (comm.rank() != 0) return 0;
    std::vector<double> expected(15);
    diffuse::fill_normal(diffuse::tensor_view<double>{expected.data(), 5, 3}, 7, 0);
    if (all != expected) {
        std::puts("mpi_consumer: the gathered samples differ");
        return 1;
    }
    std::puts("mpi_consumer: ok");
    return 0;
}
