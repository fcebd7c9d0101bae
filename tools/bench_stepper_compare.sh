#!/usr/bin/env bash
# Compares two builds of benchmarks/bench_stepper.cpp (issue 9: the stepper refactor must not add more
# than 5 % per step) and prints, per benchmark, the old and the new build's cost per step and new/old.
#
#   tools/bench_stepper_compare.sh OLD_BINARY NEW_BINARY                 CPU time per step
#   tools/bench_stepper_compare.sh --instructions OLD_BINARY NEW_BINARY  instructions per step (valgrind)
#
# Time: the two binaries run alternately, ROUNDS rounds (default 5; the order flips every round so that a
# slow phase of a shared machine hits both), each run with REPS repetitions (default 5) of every benchmark,
# pinned to one core with taskset when it is there (CPU, default 1). The median is over all ROUNDS·REPS
# repetitions of the per_step counter (CPU time / steps); "rounds" gives the smallest and largest of the
# per-round new/old ratios, a measure of the noise.
#
# --instructions: callgrind counts the instructions of one whole run of every benchmark (collection on only
# inside the benchmark's one_run, so neither the set-up nor the benchmark library is counted), per step.
# The count does not depend on the machine's load, so it shows the 1 % differences that the timings' noise
# hides; it does not see cache misses or mispredicted branches. The callgrind files stay for
# callgrind_annotate.
#
# Benchmarks only the new build has (the euler_stepper pull/push drivers) are compared with the old
# bm_sample_euler. Environment: ROUNDS, REPS, CPU, MIN_TIME (seconds per repetition, default 0.5),
# KEEP (a folder for the JSON and callgrind outputs; default a new temporary folder).
set -euo pipefail

mode=time
if [[ "${1:-}" == "--instructions" ]]; then
  mode=instructions
  shift
fi
if [[ $# -ne 2 ]]; then
  echo "usage: $0 [--instructions] OLD_BINARY NEW_BINARY" >&2
  exit 2
fi
old=$1
new=$2
rounds=${ROUNDS:-5}
reps=${REPS:-5}
cpu=${CPU:-1}
min_time=${MIN_TIME:-0.5}
out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"

pin=()
if command -v taskset >/dev/null 2>&1; then pin=(taskset -c "$cpu"); fi

if [[ $mode == instructions ]]; then
  command -v valgrind >/dev/null 2>&1 || { echo "$0: --instructions needs valgrind" >&2; exit 1; }
  for build in old new; do
    bin=$old
    [[ $build == new ]] && bin=$new
    for name in $("$bin" --benchmark_list_tests); do
      echo "$build $name" >&2
      # --benchmark_min_time=0: one iteration, i.e. one run (the JSON says how many)
      valgrind --tool=callgrind --toggle-collect='*one_run*' --callgrind-out-file="$out/$build-$name.cg" \
        "$bin" --benchmark_filter="^$name\$" --benchmark_min_time=0 --benchmark_format=json \
        >"$out/$build-$name.json" 2>/dev/null
    done
  done
else
  run_one() {  # build round binary
    "${pin[@]}" "$3" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
      --benchmark_format=json --benchmark_out_format=json --benchmark_out="$out/$1-$2.json" >/dev/null
  }
  for ((r = 1; r <= rounds; ++r)); do
    echo "round $r of $rounds" >&2
    if ((r % 2)); then
      run_one old "$r" "$old"
      run_one new "$r" "$new"
    else
      run_one new "$r" "$new"
      run_one old "$r" "$old"
    fi
  done
fi

python3 - "$mode" "$out" "$rounds" <<'EOF'
import glob, json, os, statistics, sys

mode, folder, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
baseline = {"bm_euler_stepper_pull": "bm_sample_euler", "bm_euler_stepper_push": "bm_sample_euler"}

def iterations(path):
    with open(path) as f:
        return [b for b in json.load(f)["benchmarks"] if b.get("run_type") == "iteration"]

def label(name, ref):
    return name if ref == name else f"{name} (vs {ref})"

if mode == "instructions":
    def counts(build):
        """benchmark name -> instructions per step, in the binary's order"""
        out = {}
        paths = glob.glob(f"{folder}/{build}-*.json")
        for path in sorted(paths, key=os.path.getmtime):
            name = os.path.basename(path)[len(build) + 1:-len(".json")]
            b = iterations(path)[0]
            with open(f"{folder}/{build}-{name}.cg") as f:
                ir = next(int(l.split()[1]) for l in f if l.startswith(("summary:", "totals:")))
            out[name] = ir / (b["iterations"] * b["steps"])
        return out
    old, new = counts("old"), counts("new")
    print(f"{'benchmark':44} {'old instr/step':>15} {'new instr/step':>15} {'new/old':>8}")
    for name in new:
        ref = name if name in old else baseline.get(name)
        if ref is None:
            print(f"{name:44} {'–':>15} {new[name]:15.0f}")
        else:
            print(f"{label(name, ref):44} {old[ref]:15.0f} {new[name]:15.0f} {new[name] / old[ref]:8.3f}")
    print(f"\ncallgrind files in {folder}")
    sys.exit(0)

def per_step(build, r):
    """benchmark name -> per_step values (µs) of the repetitions in round r"""
    out = {}
    for b in iterations(f"{folder}/{build}-{r}.json"):
        out.setdefault(b["run_name"], []).append(b["per_step"] * 1e6)
    return out

runs = {build: [per_step(build, r) for r in range(1, rounds + 1)] for build in ("old", "new")}
names = list(runs["new"][0].keys())
print(f"{'benchmark':44} {'old µs/step':>12} {'new µs/step':>12} {'new/old':>8} {'rounds (min–max)':>18}")
for name in names:
    ref = name if name in runs["old"][0] else baseline.get(name)
    new_all = [v for rd in runs["new"] for v in rd[name]]
    if ref is None:
        print(f"{name:44} {'–':>12} {statistics.median(new_all):12.3f}")
        continue
    old_all = [v for rd in runs["old"] for v in rd[ref]]
    ratio = statistics.median(new_all) / statistics.median(old_all)
    per_round = [statistics.median(n[name]) / statistics.median(o[ref]) for n, o in zip(runs["new"], runs["old"])]
    print(f"{label(name, ref):44} {statistics.median(old_all):12.3f} {statistics.median(new_all):12.3f} {ratio:8.3f} "
          f"{min(per_round):8.3f}–{max(per_round):.3f}")
print(f"\n{rounds} rounds × {len(runs['new'][0][names[0]])} repetitions per build; JSON in {folder}")
EOF
