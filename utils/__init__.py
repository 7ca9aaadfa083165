"""Shared plumbing for the workbook: profiles and model loading, runtime set-up, graders, notebook tooling.

Lessons live in the notebooks; this package holds only what would distract from them.
"""

from utils.profiles import PROFILES, Profile, get_profile
from utils.runtime import seed_everything, set_threads, start

__all__ = ["PROFILES", "Profile", "get_profile", "seed_everything", "set_threads", "start"]
