"""Time the paired bootstrap the tables run for every difference: 3 seeds x 5,000 test
images, 2,000 resamples (a table calls it once per row). Prints seconds; asserts nothing.

    python benchmarks/bootstrap_speed.py
"""

import time

import numpy as np

from sslsteal.stats import difference_interval

rng = np.random.default_rng(0)
a, b = rng.random((3, 5000)) < 0.8, rng.random((3, 5000)) < 0.7
for n_boot in (2000, 10000):
    start = time.perf_counter()
    difference_interval(a, b, n_boot=n_boot)
    print(f"paired bootstrap, 3 x 5,000 images, {n_boot:,} resamples: {time.perf_counter() - start:.3f} s")
