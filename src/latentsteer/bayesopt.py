"""Latent Bayesian optimisation with BoTorch: a GP per start and q-log-EI in a box.

This is the method of BoTorch's VAE-MNIST tutorial, applied to the steering objective: a
Gaussian process models the objective over a box of codes, and each round proposes ``q``
codes that maximise q-log expected improvement. Here every start is its own problem in its
own box, ``z0 ± box`` per dimension, mapped to the unit cube.

The ``n`` problems are solved together: one batched ``SingleTaskGP`` (batch shape ``(n,)``)
is fitted by maximising the summed marginal likelihood, which is the same as fitting each
GP alone, and the acquisition is maximised from restarts of shape ``(r, n, q, d)`` whose
summed value has independent gradients per problem; each problem then takes its best
restart. That keeps the cost of ``n`` problems near that of one.
"""

from __future__ import annotations

import warnings

import torch


class BayesOpt:
    """Batched per-start Bayesian optimisation (a :class:`~latentsteer.blackbox.Strategy`).

    Args:
        start: ``(n, d)`` starting codes, each the centre of its box.
        box: half-width of each box, in prior standard deviations.
        init: codes evaluated before the first GP (the start and a scrambled Sobol design).
        q: codes proposed per start and round.
        seed: seeds the design and the acquisition's restarts.
        raw_samples: random candidates scored to choose the restarts.
        restarts: restarts of the acquisition optimiser per start.
        mc_samples: quasi-Monte-Carlo samples of the q-log-EI estimate.
        fit_iterations: L-BFGS iterations of each round's fit of the GP's hyperparameters.
        warm_start: start each round's fit from the previous round's hyperparameters
            instead of the defaults (with fewer ``fit_iterations``: most of the cost of a
            round is that fit, and one more point moves the optimum little).

    Raises:
        ImportError: BoTorch is not installed (``pip install 'latentsteer[baselines]'``).
    """

    def __init__(
        self,
        start: torch.Tensor,
        box: float,
        init: int,
        q: int,
        seed: int,
        raw_samples: int = 128,
        restarts: int = 2,
        mc_samples: int = 128,
        fit_iterations: int = 100,
        warm_start: bool = False,
    ) -> None:
        import botorch  # noqa: F401  (fail here, with the install hint, not mid-run)

        if not box > 0 or init < 2 or q < 1:
            raise ValueError("Bayesian optimisation needs box > 0, init >= 2 and q >= 1")
        self.z0 = start.detach().cpu().double()  # (n, d)
        self.box, self.init, self.q = box, init, q
        self.raw_samples, self.restarts, self.mc_samples = raw_samples, restarts, mc_samples
        self.fit_iterations, self.warm_start = fit_iterations, warm_start
        self._hyper: dict[str, torch.Tensor] | None = None  # the last fit, for a warm start
        self.generator = torch.Generator().manual_seed(seed)
        self.seed = seed
        n, d = self.z0.shape
        self.X = torch.empty(n, 0, d, dtype=torch.float64)  # unit-cube inputs seen
        self.Y = torch.empty(n, 0, 1, dtype=torch.float64)  # their objective values

    def _code(self, u: torch.Tensor) -> torch.Tensor:
        """Unit-cube points ``(m, n, d)`` → codes."""
        return (self.z0 + (2 * u - 1) * self.box).float()

    def ask(self) -> torch.Tensor:
        from torch.quasirandom import SobolEngine

        n, d = self.z0.shape
        if self.X.shape[1] < self.init:
            sobol = SobolEngine(d, scramble=True, seed=self.seed)
            u = sobol.draw(self.init - self.X.shape[1], dtype=torch.float64)  # (m, d)
            return self._code(u[:, None, :].expand(-1, n, -1))
        # A GP of a few dozen points is a string of tiny linear-algebra calls, for which
        # thread hand-offs cost more than they save (measured: 15x slower on two threads).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._code(self._propose())
        finally:
            torch.set_num_threads(threads)

    def tell(self, candidates: torch.Tensor, values: torch.Tensor) -> None:
        u = ((candidates.double() - self.z0) / self.box + 1) / 2  # (m, n, d)
        self.X = torch.cat([self.X, u.transpose(0, 1)], dim=1)
        self.Y = torch.cat([self.Y, values.double().T[..., None]], dim=1)

    def _propose(self) -> torch.Tensor:
        """``(q, n, d)`` unit-cube points maximising each problem's q-log-EI."""
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.generation.gen import gen_candidates_scipy
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim.fit import fit_gpytorch_mll_scipy
        from botorch.sampling import SobolQMCNormalSampler
        from gpytorch.mlls import ExactMarginalLogLikelihood

        n, d = self.z0.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numerical notes from the fit and the optimiser
            gp = SingleTaskGP(
                self.X, self.Y, outcome_transform=Standardize(m=1, batch_shape=torch.Size([n]))
            )
            if self.warm_start and self._hyper is not None:
                gp.load_state_dict(self._hyper, strict=False)
            fit_gpytorch_mll(
                ExactMarginalLogLikelihood(gp.likelihood, gp),
                optimizer=fit_gpytorch_mll_scipy,
                optimizer_kwargs={"options": {"maxiter": self.fit_iterations}},
            )  # fmt: skip
            if self.warm_start:  # the hyperparameters only: the transform fits the new data
                self._hyper = {k: v.detach().clone() for k, v in gp.state_dict().items()
                               if not k.startswith("outcome_transform")}  # fmt: skip
            sampler = SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=self.seed)
            acq = qLogExpectedImprovement(gp, best_f=self.Y.amax(dim=(1, 2)), sampler=sampler)
            raw = torch.rand(
                self.raw_samples, n, self.q, d, generator=self.generator, dtype=torch.float64
            )
            with torch.no_grad():
                scores = acq(raw)  # (raw_samples, n)
            top = scores.topk(self.restarts, dim=0).indices  # (r, n)
            starts = raw[top, torch.arange(n)]  # (r, n, q, d)
            r = self.restarts

            def summed(x: torch.Tensor) -> torch.Tensor:
                # (r, n·q, d) → (r,): the problems' values add up, their gradients stay apart.
                return acq(x.reshape(len(x), n, self.q, d)).sum(dim=-1)

            found, _ = gen_candidates_scipy(
                starts.reshape(r, n * self.q, d), summed, lower_bounds=0.0, upper_bounds=1.0,
                options={"maxiter": 50},
            )  # fmt: skip
            found = found.reshape(r, n, self.q, d)
            with torch.no_grad():
                values = acq(found)  # (r, n)
        best = values.argmax(dim=0)  # (n,)
        return found[best, torch.arange(n)].detach().transpose(0, 1)  # (q, n, d)
