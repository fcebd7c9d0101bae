#!/usr/bin/env bash
# Builds and runs the MPI tests (ctest label mpi: tests/mpi, docs/mpi.md) against MPICH instead of the default
# MPI, in their own build folder; nothing else is built.
#   tools/test-mpich.sh                  with g++, in build-mpich-g++/
#   CXX=clang++ tools/test-mpich.sh      with clang++, in build-mpich-clang++/
# Environment: CXX (default g++), DIFFUSE_BUILD_DIR (default build-mpich-<compiler>), BUILD_TYPE (default
# Release), DIFFUSE_WARNINGS_AS_ERRORS (default OFF), JOBS (default nproc), MPICH_CXX (MPICH's compiler wrapper,
# default Debian's mpicxx.mpich), MPICH_EXEC (its launcher, default mpiexec.mpich beside the wrapper).
# Extra arguments go to ctest. On Debian the packages libmpich-dev and mpich are installed next to OpenMPI
# (tools/ensure-packages.sh mpich), which stays the default mpicxx / mpirun; CMake is pointed at MPICH with
# MPI_CXX_COMPILER and MPIEXEC_EXECUTABLE.
# Time from an empty build folder with g++ (2026-12-02, 2-core development machine): 191 s of CPU, nearly all
# compiling test_mpi, mpi_sharding_check and the diffuse program; 2 min 37 s wall when the machine was nearly
# idle, 8 min 37 s while other builds loaded it (load 11); the tests themselves take 8 s.
set -euo pipefail

start=$(date +%s)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cxx=${CXX:-g++}
build=${DIFFUSE_BUILD_DIR:-$root/build-mpich-$(basename "$cxx")}
jobs=${JOBS:-$(nproc)}
build_type=${BUILD_TYPE:-Release}
werror=${DIFFUSE_WARNINGS_AS_ERRORS:-OFF}

# (the MPI tests need neither libtorch nor, with g++, clang)
case "$(basename "$cxx")" in
  clang*) "$root/tools/ensure-packages.sh" mpich --without libtorch-dev ;;
  *) "$root/tools/ensure-packages.sh" mpich --without clang --without libtorch-dev ;;
esac

wrapper=${MPICH_CXX:-$(command -v mpicxx.mpich || true)}
if [[ -z "$wrapper" ]]; then
  echo "diffuse: MPICH's compiler wrapper mpicxx.mpich is not on the path; set MPICH_CXX" >&2
  exit 1
fi
launcher=${MPICH_EXEC:-$(dirname "$wrapper")/mpiexec.mpich}
if [[ ! -x "$launcher" ]]; then
  echo "diffuse: MPICH's launcher $launcher is missing; set MPICH_EXEC" >&2
  exit 1
fi

elapsed() {
  local s=$(( $(date +%s) - start ))
  printf '%d min %02d s' $(( s / 60 )) $(( s % 60 ))
}
trap 'status=$?; echo "diffuse: tools/test-mpich.sh $( (( status == 0 )) && echo passed || echo "failed (status $status)") after $(elapsed)" >&2' EXIT

echo "diffuse: the MPI tests with $cxx against $("$launcher" --version | sed -n 's/^ *Version: *//p' | sed 's/^/MPICH /;q') ($wrapper, $launcher) in $build" >&2

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DDIFFUSE_WARNINGS_AS_ERRORS="$werror" \
  -DDIFFUSE_BUILD_EXAMPLES=OFF -DDIFFUSE_BUILD_BENCHMARKS=OFF -DDIFFUSE_CHECK_HEADERS=OFF \
  -DMPI_CXX_COMPILER="$wrapper" \
  -DMPIEXEC_EXECUTABLE="$launcher"
cmake --build "$build" -j "$jobs" --target mpi_tests
# -L takes a regular expression: plain "mpi" would also select the compile_fail tests
ctest --test-dir "$build" -L '^mpi$' --no-tests=error --output-on-failure "$@"
