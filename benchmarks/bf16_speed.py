"""Forward+backward throughput of the default small CNN in fp32 and under bf16 autocast,
one thread, the extraction's batch of 64 Fashion-MNIST-sized images. Prints images/s
and the ratio (the basis of the default config's `precision: bf16`).

    python benchmarks/bf16_speed.py [THREADS]
"""

import sys
import time

import torch

from sslsteal.backbones import build_encoder
from sslsteal.runtime import configure_torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
x = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last)
target = torch.randn(64, 256)
speed = {}
for precision in ("fp32", "bf16", "fp32", "bf16"):  # twice each, interleaved: the second counts
    configure_torch(threads, precision)
    encoder = build_encoder({"name": "small_cnn", "widths": [16, 64, 128, 256]}, 1, 28)
    optimiser = torch.optim.Adam(encoder.parameters(), 1e-3)
    for step in range(40):
        if step == 10:
            started = time.perf_counter()
        loss = torch.nn.functional.mse_loss(encoder(x), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    speed[precision] = 30 * 64 / (time.perf_counter() - started)
for precision, images_per_second in speed.items():
    print(f"{precision}: {images_per_second:.0f} images/s (forward+backward, {threads} thread(s))")
print(f"bf16 / fp32: {speed['bf16'] / speed['fp32']:.2f}x")
