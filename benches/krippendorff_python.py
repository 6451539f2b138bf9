"""Time the Python `krippendorff` package on the matrix that benches/agreement.rs benchmarks.

The script regenerates the same 100,000 items x 5 raters (5 categories, 10% missing) with
the same 64-bit LCG. It prints alpha, to compare with the value the Rust benchmark prints,
and then times krippendorff.alpha at the ordinal and nominal levels.

Run:
    python3 -m venv .venv && .venv/bin/pip install krippendorff==0.9.0 numpy
    .venv/bin/python benches/krippendorff_python.py
"""

import importlib.metadata
import statistics
import time

import krippendorff
import numpy as np

N_ITEMS = 100_000
N_CATEGORIES = 5
P_MISSING = 0.1
ACCURACY = [0.9, 0.8, 0.7, 0.6, 0.5]
SEED = 12345
REPEATS = 10

MASK = (1 << 64) - 1


def generate():
    """Return the raters x items matrix of category values 1..5, NaN where missing."""
    state = SEED

    def uniform():
        nonlocal state
        state = (6364136223846793005 * state + 1442695040888963407) & MASK
        return (state >> 11) / float(1 << 53)

    data = np.full((len(ACCURACY), N_ITEMS), np.nan)
    for item in range(N_ITEMS):
        truth = int(uniform() * N_CATEGORIES)
        for rater, accuracy in enumerate(ACCURACY):
            if uniform() < P_MISSING:
                continue
            if uniform() < accuracy:
                data[rater, item] = truth + 1
            else:
                data[rater, item] = int(uniform() * N_CATEGORIES) + 1
    return data


def main():
    data = generate()
    print(f"krippendorff {importlib.metadata.version('krippendorff')}, numpy {np.__version__}, "
          f"{N_ITEMS} items x {len(ACCURACY)} raters, {int(np.isnan(data).sum())} missing")
    for level in ("ordinal", "nominal"):
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            alpha = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
            seconds.append(time.perf_counter() - start)
        print(f"{level}: alpha = {alpha!r}, min {min(seconds) * 1e3:.1f} ms, "
              f"median {statistics.median(seconds) * 1e3:.1f} ms over {REPEATS} runs")


if __name__ == "__main__":
    main()
