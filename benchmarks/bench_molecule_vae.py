"""Which sequence VAE buys the most reconstruction per CPU minute?

Trains each candidate encoder/decoder pair of ``latentsteer.domains.molecules.networks`` for
the same wall time on the pipeline's training molecules (``data/molecules/labels``), with the
same loss (token cross-entropy + beta-weighted KL, beta ramped over the first third), then
reports the exact reconstruction of 1 000 validation molecules (greedy decoding of the
posterior mean equals the input token for token) and the steps it managed. The ratio column
is each candidate's reconstruction against the first one's, measured in the same run.

    python benchmarks/bench_molecule_vae.py --minutes 4 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
import torch
import torch.nn.functional as F

from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.networks import (
    ConvDecoder,
    ConvEncoder,
    GRUDecoder,
    GRUEncoder,
    MLPDecoder,
)
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.model import gaussian_kl

LABELS = "data/molecules/labels"


def train_df_canonical(n: int) -> list[str]:
    return pd.read_parquet(f"{LABELS}/train.parquet", columns=["canonical"]).canonical[:n].tolist()


def candidates(vocab: int, length: int, latent: int, hidden: int) -> dict:
    return {
        "conv → GRU (autoregressive)": lambda: (
            ConvEncoder(vocab, length, 64, hidden, latent),
            GRUDecoder(vocab, length, hidden, latent),
        ),
        "biGRU → GRU (autoregressive)": lambda: (
            GRUEncoder(vocab, hidden, latent),
            GRUDecoder(vocab, length, hidden, latent),
        ),
        "conv → MLP (all positions at once)": lambda: (
            ConvEncoder(vocab, length, 64, hidden, latent),
            MLPDecoder(vocab, length, 2 * hidden, latent),
        ),
        "conv → transposed conv (all positions at once)": lambda: (
            ConvEncoder(vocab, length, 64, hidden, latent),
            ConvDecoder(vocab, length, 64, 2 * hidden, latent),
        ),
    }


@torch.no_grad()
def exact(encoder, decoder, x: torch.Tensor) -> float:
    mu = encoder(x).chunk(2, dim=1)[0]
    return (decoder(mu).argmax(2) == x.long()).all(1).double().mean().item()


def train(encoder, decoder, x, seconds, beta, lr, batch):
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(0)
    start, step = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        xb = x[torch.randint(0, len(x), (batch,), generator=g)]
        mu, logvar = encoder(xb).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = decoder(z, xb)
        recon = F.cross_entropy(logits.transpose(1, 2), xb.long(), reduction="none").sum(1)
        ramp = min(1.0, 3 * elapsed / seconds)
        loss = (recon + beta * ramp * gaussian_kl(mu, logvar)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training time per candidate")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--only", help="substring of the candidates to run")
    ap.add_argument(
        "--fcd",
        type=int,
        default=0,
        help="also decode N prior samples and report their FCD against N "
        "validation molecules (and N training molecules' own FCD)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train_df = pd.read_parquet(f"{LABELS}/train.parquet", columns=["selfies"])
    val_df = pd.read_parquet(f"{LABELS}/val.parquet", columns=["selfies", "canonical"])
    vocab = Vocabulary.fit(train_df.selfies)
    x = torch.as_tensor(vocab.encode(list(train_df.selfies)), dtype=torch.float32)
    xv = torch.as_tensor(vocab.encode(list(val_df.selfies[:1000])), dtype=torch.float32)
    print(f"{platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"{args.minutes} min each, latent {args.latent}, hidden {args.hidden}, "
          f"beta {args.beta}, lr {args.lr}, batch {args.batch}")  # fmt: skip
    fcd = reference = None
    if args.fcd:
        from fcd_torch import FCD

        fcd = FCD(device="cpu", n_jobs=1)
        reference = fcd.precalc(val_df.canonical[: args.fcd].tolist())
        floor = fcd.metric(reference, fcd.precalc(train_df_canonical(args.fcd)))
        print(f"FCD of {args.fcd} training molecules against as many validation ones: {floor:.2f}")
    domain = MOLECULES.with_vocabulary(vocab)
    first = None
    for name, build in candidates(vocab.size, vocab.length, args.latent, args.hidden).items():
        if args.only and args.only not in name:
            continue
        torch.manual_seed(0)
        encoder, decoder = build()
        steps = train(encoder, decoder, x, args.minutes * 60, args.beta, args.lr, args.batch)
        encoder.eval(), decoder.eval()
        score = exact(encoder, decoder, xv)
        first = first if first is not None else max(score, 1e-9)
        line = f"{name:46s} steps {steps:6d}  exact reconstruction {score:6.1%}  "
        line += f"ratio {score / first:5.2f}"
        if fcd is not None:
            with torch.no_grad():
                z = torch.randn(args.fcd, args.latent, generator=torch.Generator().manual_seed(0))
                smiles = [s for s in domain.to_smiles(decoder(z).argmax(2).float()) if s]
            line += f"  prior FCD {fcd.metric(reference, fcd.precalc(smiles)):.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
