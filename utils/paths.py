"""Where the repository's folders are, whatever the working directory."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
MODELS = DATA / "models"
LECTURES = ROOT / "lectures"
HOMEWORK = ROOT / "homework"
SOLUTIONS = HOMEWORK / "solutions"
BUILD = ROOT / "build"
