"""The TinyWorld generator: invented countries, cities, organisations and people, and the facts that link them.

Names are invented from syllables, so that no real-world knowledge helps or hurts, and many span several tokens.
Everything is a deterministic function of the seed; `python -m utils.tinyworld.train` rewrites the world file.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from utils.paths import DATA

WORLD_FILE = DATA / "tinyworld" / "world.json"

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "tr", "sh"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
CODAS = ["", "", "", "n", "r", "l", "s", "m", "th"]
LANGUAGES = ["Oskan", "Trevic", "Mundari", "Pellish", "Zarvic", "Lunese", "Kettic", "Ambric"]
PROFESSIONS = ["baker", "doctor", "painter", "farmer", "teacher", "lawyer", "sailor", "tailor", "pilot", "singer",
               "potter", "builder"]  # fmt: skip

# relation (also the key of a JSON answer) -> (subject kind, object kind)
RELATIONS = {
    "capital": ("country", "city"),
    "language": ("country", "language"),
    "country": ("city", "country"),
    "headquarters": ("organisation", "city"),
    "birthplace": ("person", "city"),
    "profession": ("person", "profession"),
    "employer": ("person", "organisation"),
}


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    object: str


@dataclass
class World:
    seed: int
    countries: dict[str, dict]  # name -> {"capital": city, "language": language}
    cities: dict[str, dict]  # name -> {"country": country}
    organisations: dict[str, dict]  # name -> {"headquarters": city}
    people: dict[str, dict]  # name -> {"birthplace": city, "profession": ..., "employer": organisation}

    @cached_property
    def facts(self) -> list[Fact]:
        """Every single-hop fact, in a stable order."""
        tables = [self.countries, self.cities, self.organisations, self.people]
        return [Fact(s, r, o) for table in tables for s, attrs in table.items() for r, o in attrs.items()]

    def objects(self, relation: str) -> list[str]:
        """Every value the relation can take (the answer space of a question about it)."""
        kind = RELATIONS[relation][1]
        return {"city": list(self.cities), "country": list(self.countries), "language": LANGUAGES,
                "organisation": list(self.organisations), "profession": PROFESSIONS}[kind]  # fmt: skip

    def names(self) -> set[str]:
        return set(self.countries) | set(self.cities) | set(self.organisations) | set(self.people)

    def lookup(self, subject: str, relation: str) -> str:
        for table in (self.countries, self.cities, self.organisations, self.people):
            if subject in table:
                return table[subject][relation]
        raise KeyError(subject)

    def save(self, path: Path = WORLD_FILE) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


class NameMaker:
    """Invents pronounceable names that are never repeated (nor equal to any name in `taken`)."""

    def __init__(self, rng: random.Random, taken: set[str] = frozenset()):
        self.rng, self.taken = rng, set(taken)

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        while True:
            n = self.rng.randint(*syllables)
            parts = [self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(n)]
            name = ("".join(parts) + self.rng.choice(CODAS)).capitalize()
            if name not in self.taken and not any(name in t or t in name for t in self.taken if len(t) > 3):
                self.taken.add(name)
                return name

    def person(self) -> str:
        while True:
            name = f"{self.word((1, 2))} {self.word((2, 2))}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def generate(seed: int = 0, n_countries: int = 20, cities_per_country: int = 3, n_organisations: int = 20,
             n_people: int = 120) -> World:  # fmt: skip
    rng = random.Random(seed)
    names = NameMaker(rng, taken=set(LANGUAGES))
    countries, cities = {}, {}
    for _ in range(n_countries):
        country = names.word()
        own = [names.word() for _ in range(cities_per_country)]
        countries[country] = {"capital": own[0], "language": rng.choice(LANGUAGES)}
        cities.update({city: {"country": country} for city in own})
    city_list = list(cities)
    organisations = {names.word((2, 2)) + " " + rng.choice(["Works", "Group", "Trading", "Mills"]):
                     {"headquarters": rng.choice(city_list)} for _ in range(n_organisations)}  # fmt: skip
    org_list = list(organisations)
    people = {
        names.person(): {"birthplace": rng.choice(city_list), "profession": rng.choice(PROFESSIONS),
                         "employer": rng.choice(org_list)}
        for _ in range(n_people)
    }  # fmt: skip
    return World(seed, countries, cities, organisations, people)


def load_world(path: Path = WORLD_FILE) -> World:
    """The shipped world: the ground truth notebooks and tests query."""
    fields = json.loads(path.read_text(encoding="utf-8"))
    return World(**fields)

