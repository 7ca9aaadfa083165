"""Runtime set-up every notebook shares: threads, seeds, plot style, and the one-line start banner."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from utils.profiles import HEADLESS, Profile, get_profile

THREADS = "WORKBOOK_THREADS"  # torch threads per process; the test suite fixes it, so that numbers never depend on
# how many notebooks run side by side


def available_cores() -> int:
    """CPU cores this process may use (respects affinity masks and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_threads(n: int | None = None) -> int:
    """Give torch n threads: by default $WORKBOOK_THREADS, else one per usable core (more threads than cores slows
    everything down). Sums split across threads add in another order, so the thread count can move the last digits."""
    n = n or int(os.environ.get(THREADS) or 0) or available_cores()
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that a re-run prints the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def use_style() -> None:
    """The workbook's one matplotlib style: readable in notebooks and in exported HTML."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titleweight": "bold",
            "legend.frameon": False,
            "image.cmap": "viridis",
        }
    )


@dataclass(frozen=True)
class Session:
    """What a notebook learns from `start()`: the profile in use and where tensors go."""

    profile: Profile
    device: str
    seed: int
    threads: int

    def load(self, role: str):
        """Load the (model, tokenizer) this profile names for `role`, e.g. "chat" or "interp"."""
        from utils.models import load_model

        kind = "encoder" if role == "embedding" else "causal-lm"
        return load_model(self.profile.models[role], device=self.device, kind=kind)


def interact(fn, **sliders):
    """ipywidgets.interact(fn, **sliders) in a live notebook. Headless, fn runs once at the sliders' starting values
    instead: nobody can move a slider there, and an output widget's capture can stall a headless notebook client."""
    if os.environ.get(HEADLESS):
        fn(**{name: slider.value for name, slider in sliders.items()})
        return None
    import ipywidgets

    return ipywidgets.interact(fn, **sliders)


def start(profile: str | None = None, seed: int = 0, quiet: bool = False) -> Session:
    """Set up a notebook: choose the profile, set threads and seeds, apply the plot style, print one banner."""
    chosen = get_profile(profile)
    threads = set_threads()
    seed_everything(seed)
    use_style()
    device = "cuda" if chosen.prefers_gpu and torch.cuda.is_available() else "cpu"
    session = Session(profile=chosen, device=device, seed=seed, threads=threads)
    if not quiet:
        print(
            f"profile: {chosen.name} ({chosen.chosen_by}) · device: {device} · "
            f"torch {torch.__version__} · {threads} threads · seed {seed}"
        )
    return session
