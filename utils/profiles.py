"""The one registry of models per profile.

`tiny`: TinyWorld, the workbook's own model organisms shipped in `data/models/`: offline, CPU, seconds to load.
`hf`:   real Hugging Face models for Colab or a GPU, same roles, same notebook code.

Choice order: explicit argument > environment variable WORKBOOK_PROFILE > "tiny".
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

ENV_VAR = "WORKBOOK_PROFILE"
HEADLESS = "WORKBOOK_HEADLESS"  # set where notebooks run with nobody to move a slider (tests, `make lectures`)
DEFAULT = "tiny"
ROLES = ("chat", "reasoning", "thinking", "interp", "editing", "embedding")
# reasoning: an instruct model to sample, verify and train with RL; thinking: one that thinks between <think> tags


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    models: dict[str, str]  # role -> hub id, or a folder name under data/models/
    sae: dict[str, str] = field(default_factory=dict)  # pretrained SAE for the interp model (sae-lens release / id)
    prefers_gpu: bool = False
    chosen_by: str = "registry"  # how a notebook came to use this profile (set by get_profile)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="Workbook model organisms from data/models/: offline, CPU, every notebook in minutes.",
        models={**dict.fromkeys(ROLES, "tinyworld-chat"), "reasoning": "tinyworld-reasoning", "thinking": "tinyworld-reasoning"},
    ),
    "hf": Profile(
        name="hf",
        description="Real Hugging Face models, for Colab or a GPU (downloads a few GB on first use).",
        models={
            "chat": "Qwen/Qwen2.5-0.5B-Instruct",
            "reasoning": "Qwen/Qwen2.5-1.5B-Instruct",
            "thinking": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
            "interp": "gpt2",
            "editing": "gpt2-xl",
            "embedding": "sentence-transformers/all-MiniLM-L6-v2",
        },
        sae={"release": "gpt2-small-res-jb", "sae_id": "blocks.8.hook_resid_pre"},
        prefers_gpu=True,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile to use: `name` if given, else $WORKBOOK_PROFILE, else "tiny"."""
    if name is not None:
        chosen_by = "argument"
    elif os.environ.get(ENV_VAR):
        name, chosen_by = os.environ[ENV_VAR], f"${ENV_VAR}"
    else:
        name, chosen_by = DEFAULT, "default"
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(f"Unknown profile {name!r} (from {chosen_by}). Choose one of: {', '.join(PROFILES)}.")
    return dataclasses.replace(PROFILES[key], chosen_by=chosen_by)
