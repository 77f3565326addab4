import torch

# Tests run in parallel worker processes (pytest -n 2 on 2 cores): one torch
# thread each avoids oversubscription, which slows small-network training ~10x.
torch.set_num_threads(1)
