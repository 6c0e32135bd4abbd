"""Write the seed corpora: fuzz/corpus/convert/* and fuzz/corpus/options/* (idempotent)."""

from __future__ import annotations

import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import option_seeds, seed_inputs  # noqa: E402


def write(directory: str, seeds: dict[str, bytes]) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, f"seed-{name}"), "wb") as f:
            f.write(data)


def main() -> None:
    write(os.path.join(HERE, "corpus", "convert"), seed_inputs(os.path.dirname(HERE)))
    write(os.path.join(HERE, "corpus", "options"), option_seeds())
    print(
        hashlib.sha1(b"".join(sorted(seed_inputs(os.path.dirname(HERE)).values()))).hexdigest()[:12]
    )


if __name__ == "__main__":
    main()
