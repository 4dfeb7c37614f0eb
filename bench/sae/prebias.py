"""What sparsify's learned pre-encoder bias is worth: its SparseCoder trained as compare.py does,
but encoding x instead of x - b_dec, with the encoder's bias started at -W mean (centred once,
as hourglass's --tied-init does). Prints the test FVU. Run after bench/sae/run (it reads its
activations): bench/.venv/bin/python bench/sae/prebias.py
"""
import sys

import numpy as np
import torch

sys.argv = ['x']
sys.path.insert(0,'bench/sae')
import compare
import sparsify.sparse_coder as sc
from sparsify.fused_encoder import fused_encoder
def encode_nopre(self, x):
    return fused_encoder(x, self.encoder.weight, self.encoder.bias, self.cfg.k, self.cfg.activation)
sc.SparseCoder.encode = encode_nopre
class A: pass
a=A(); a.width=4096; a.k=32; a.batch=1024; a.epochs=5; a.lr=4e-4; a.auxk=256; a.alpha=1/32; a.window=60000; a.threads=2
from sparsify import SparseCoder, SparseCoderConfig
from sparsify.utils import eager_decode
sc.decoder_impl = eager_decode
torch.manual_seed(0); torch.set_num_threads(2)
x = torch.from_numpy(np.load('bench/sae/.work/train.npy')); xt = torch.from_numpy(np.load('bench/sae/.work/test.npy'))
n,d = x.shape
sae = SparseCoder(d, SparseCoderConfig(num_latents=4096, k=32, normalize_decoder=True), device='cpu')
opt = torch.optim.Adam(sae.parameters(), lr=4e-4)
since = torch.zeros(4096, dtype=torch.long); gen = torch.Generator().manual_seed(0); first=True
for _ in range(5):
    for idx in torch.randperm(n, generator=gen).split(1024):
        xb = x[idx]
        if first:
            m = xb.mean(0); sae.b_dec.data = m.clone(); sae.encoder.bias.data = -(sae.encoder.weight.data @ m); first=False
        sae.set_decoder_norm_to_unit_norm()
        out = sae(xb, dead_mask=since >= 60000)
        loss = out.fvu + a.alpha*out.auxk_loss
        loss.backward(); sae.remove_gradient_parallel_to_decoder_directions(); opt.step(); opt.zero_grad()
        fired = torch.zeros(4096, dtype=torch.bool); fired[out.latent_indices.flatten()] = True
        since += len(idx); since[fired] = 0
with torch.no_grad():
    r = torch.cat([sae(c).sae_out for c in xt.split(4096)])
    print('no pre-bias: test fvu', compare.fvu(xt.numpy(), r.numpy()))
