#!/bin/bash
# Run a sweep as a SLURM job array: each array task runs one deterministic shard of the grid,
# all shards write task files into the same directory (on a shared file system), and a final
# dependent job merges them. Re-submitting resumes: finished task files are skipped.
#
#   sbatch --array=0-15 runs/slurm_array.sh runs/quickstart.toml /scratch/$USER/qs
#   # after all shards finished (or as a dependent job, see the bottom):
#   physsgd merge /scratch/$USER/qs -o /scratch/$USER/qs.h5
#
#SBATCH --job-name=physsgd
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=physsgd-%A_%a.log
set -euo pipefail

CONFIG=${1:?usage: sbatch --array=0-(n-1) slurm_array.sh CONFIG OUTDIR}
OUT=${2:?usage: sbatch --array=0-(n-1) slurm_array.sh CONFIG OUTDIR}
I=${SLURM_ARRAY_TASK_ID:?run me with sbatch --array}
N=${SLURM_ARRAY_TASK_COUNT:?run me with sbatch --array}

# Compiled kernels: cache them on the shared file system, so that nodes with the same CPU model
# compile once (the first run compiles for a few minutes and says so in the log).
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$HOME/.cache/numba}

# Threads: numba inside each task uses the cores SLURM gave this array task.
# (activate the environment where physsgd is installed before, e.g. source ~/venvs/physsgd/bin/activate)
# At the time limit SLURM sends SIGTERM: physsgd stops the running task, keeps every finished
# task file and exits with 143; re-submitting the array resumes. (exec: the signal reaches it.)
exec physsgd run "$CONFIG" --out "$OUT" --shard "$I/$N" --threads "${SLURM_CPUS_PER_TASK:-1}" --workers 1

# Merge once the whole array is done, e.g. with a dependent job (merge exits with 1 if it had to
# skip a damaged task file, 3 if it found none):
#   sbatch --dependency=afterok:<ARRAY_JOB_ID> --wrap "physsgd merge $OUT -o $OUT.h5"
