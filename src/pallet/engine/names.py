"""Container names: docker's allowed characters, and the random ADJECTIVE_NOUN for a container without one."""

from __future__ import annotations

import os
import re

from pallet.errors import PalletError


def validate_name(name: str) -> str:
    """The name without a leading '/'; one line naming the allowed characters if it has others."""
    n = name.removeprefix("/")
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", n):
        raise PalletError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return n


_ADJ = ("admiring adoring agitated amazing angry awesome blissful bold brave busy clever cool dazzling "
        "eager ecstatic elegant epic festive focused friendly funny gallant gifted happy hopeful jolly "
        "keen kind laughing loving lucid modest nice nifty optimistic peaceful pensive quirky relaxed "
        "serene sharp silly stoic sweet tender trusting upbeat vibrant wizardly youthful zealous").split()
_NOUN = ("albattani archimedes babbage bohr curie darwin dijkstra einstein euler fermat feynman galileo "
         "gauss hopper hypatia johnson kepler knuth lamport lovelace mccarthy meitner newton noether "
         "pascal pike ritchie shannon thompson torvalds turing wozniak yalow").split()


def _rnd(n: int) -> int:
    return int.from_bytes(os.urandom(4), "little") % n


def random_name(attempt: int = 0) -> str:
    """docker's ADJECTIVE_NOUN for a container without --name (a digit added after a few collisions)."""
    return f"{_ADJ[_rnd(len(_ADJ))]}_{_NOUN[_rnd(len(_NOUN))]}" + (str(attempt) if attempt > 3 else "")
