"""Time the intervals the tables and the claims compute for every row (the name is
historical: they were a 2,000-replicate bootstrap, 0.20 s per paired difference on
3 x 5,000; they are now closed-form t-intervals over seeds and test images,
``sslsteal.stats``, a few ms each): a paired difference, a four-cell drop contrast and
the Fieller interval of gain recovered, on 3 and 6 seeds x 5,000 test images. Prints
milliseconds per call; asserts nothing.

    python benchmarks/bootstrap_speed.py
"""

import time

import numpy as np

from sslsteal.stats import contrast_interval, difference_interval, gain_recovered_interval

rng = np.random.default_rng(0)
for n_seeds in (3, 6):
    a, b, c, d = (rng.random((n_seeds, 5000)) < p for p in (0.8, 0.7, 0.75, 0.4))
    calls = {
        "paired difference": lambda: difference_interval(a, b),
        "drop contrast (a - b) - (c - d)": lambda: contrast_interval([a, b, c, d], [1, -1, -1, 1]),
        "gain recovered (Fieller)": lambda: gain_recovered_interval(b, a, d),
    }
    for name, call in calls.items():
        call()  # warm up (imports)
        start = time.perf_counter()
        for _ in range(20):
            call()
        print(f"{name}, {n_seeds} seeds x 5,000 images: {(time.perf_counter() - start) / 20 * 1000:.1f} ms")
