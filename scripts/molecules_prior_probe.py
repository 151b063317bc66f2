"""Would a prior fitted to the codes after training fix the molecule model's prior samples?

    python scripts/molecules_prior_probe.py [--samples 5000] [--fit 40000] [--components 10,50]

The evaluation draws prior samples from N(0, I) and their FCD against the test molecules is
far above the MOSES models'. One common cure is ex-post density estimation: fit a density
to the posterior means of the training molecules and sample from it instead. This measures,
on the same test reference and with RDKit and ChemNet as in `molecules_evaluate`:

* ``posterior means``: the decoded posterior means of test molecules, the best any density
  on the codes could do with this decoder;
* ``N(0, I)``: the evaluation's own prior;
* ``Gaussian``: one full-covariance Gaussian fitted to the training codes;
* ``mixture K``: a K-component full-covariance Gaussian mixture (scikit-learn's, already
  installed as an MLflow dependency) fitted to the same codes.

Prints a Markdown table. Results are in docs/molecules.md.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from latentsteer.domains.molecules.evaluation import decode_smiles
from latentsteer.domains.molecules.generation import MosesFilters, generation_metrics
from latentsteer.domains.molecules.labelled import load_molecules, read_molecule_labels
from latentsteer.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/molecules/vae")
    parser.add_argument("--labels", default="data/molecules/labels")
    parser.add_argument("--filters", default="data/molecules/filters.csv")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--fit", type=int, default=40_000, help="training codes fitted")
    parser.add_argument("--components", default="10,50")
    args = parser.parse_args()

    from fcd_torch import FCD
    from sklearn.mixture import GaussianMixture

    began = time.perf_counter()
    model = load_model(args.model, "cpu").eval()
    vocab = model.domain.vocabulary  # type: ignore[attr-defined]
    test = load_molecules(args.labels, "test", model.config.heads, vocab).data
    train = load_molecules(args.labels, "train", model.config.heads, vocab).data
    test_smiles = model.domain.to_smiles(test.images)  # type: ignore[attr-defined]
    training = set(read_molecule_labels(args.labels, "train").canonical.dropna())
    filters = MosesFilters(pd.read_csv(args.filters))
    fcd = FCD(device="cpu", n_jobs=1, batch_size=512)
    reference = fcd.precalc(test_smiles)
    with torch.no_grad():
        codes = torch.cat([model.encode(x) for x in train.images[: args.fit].split(2000)])

    n, g = args.samples, torch.Generator().manual_seed(0)
    draws: dict[str, torch.Tensor] = {"posterior means (test)": model.encode(test.images[:n])}
    draws["N(0, I)"] = model.sample_prior(n, seed=0)
    mean, cov = codes.mean(0), torch.cov(codes.T)
    chol = torch.linalg.cholesky(cov + 1e-5 * torch.eye(len(mean)))
    draws["Gaussian"] = mean + torch.randn(n, len(mean), generator=g) @ chol.T
    for k in (int(c) for c in args.components.split(",") if c):
        mixture = GaussianMixture(k, covariance_type="full", random_state=0).fit(codes.numpy())
        draws[f"mixture {k}"] = torch.as_tensor(mixture.sample(n)[0], dtype=torch.float32)

    print(f"{n} codes each; FCD against {len(test_smiles)} test molecules; "
          f"densities fitted to {len(codes)} training codes\n")  # fmt: skip
    print("| codes | unique | MOSES filters | internal diversity | FCD |")
    print("|---|---|---|---|---|")
    for name, z in draws.items():
        m = generation_metrics(decode_smiles(model, z), training, filters, reference, fcd)
        print(f"| {name} | {m.unique:.1%} | {m.filters:.1%} | {m.int_div:.3f} | {m.fcd:.1f} |",
              flush=True)  # fmt: skip
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
