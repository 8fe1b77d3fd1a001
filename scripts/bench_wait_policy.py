"""300 SGD steps of a small CNN; prints wall and CPU seconds (docs/engine.md, "Threads on a shared CPU").

Run it alone and beside a busy process, with and without OMP_WAIT_POLICY=PASSIVE; import torch only
(not pftlab, which sets the policy):
    python scripts/bench_wait_policy.py 2
    OMP_WAIT_POLICY=ACTIVE python scripts/bench_wait_policy.py 2
    OMP_WAIT_POLICY=PASSIVE python scripts/bench_wait_policy.py 2
"""

import os
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 10)
)
x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(300):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
print(
    f"threads={torch.get_num_threads()} OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')} "
    f"wall={time.perf_counter() - wall:.2f}s cpu={time.process_time() - cpu:.2f}s"
)
