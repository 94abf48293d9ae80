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

# Threads: numba inside each task uses the cores SLURM gave this array task.
# (activate the environment where physsgd is installed before, e.g. source ~/venvs/physsgd/bin/activate)
physsgd run "$CONFIG" --out "$OUT" --shard "$I/$N" --threads "${SLURM_CPUS_PER_TASK:-1}" --workers 1

# Merge once the whole array is done, e.g. with a dependent job:
#   sbatch --dependency=afterok:<ARRAY_JOB_ID> --wrap "physsgd merge $OUT -o $OUT.h5"
