"""The CRDs kubellm ships, and `python -m kubellm_operator.crds write|check` to regenerate them."""

from __future__ import annotations

import sys
from pathlib import Path

from kubellm_operator import names
from kubellm_operator.crds import finetunejob, llmdeployment, peering
from kubellm_operator.crds.schema import render

RESOURCES = (llmdeployment.LLMDEPLOYMENT, finetunejob.FINETUNEJOB)
REPO_ROOT = Path(__file__).resolve().parents[3]
TARGETS = (REPO_ROOT / "crds", REPO_ROOT / "charts" / "kubellm" / "crds")


def rendered() -> dict[str, str]:
    """File name -> content of every generated CRD (kubellm's kinds and Kopf's peering)."""
    own = {f"{names.GROUP}_{r.plural}.yaml": render(r) for r in RESOURCES}
    return own | peering.rendered()


def stale() -> list[Path]:
    """Checked-in CRD files that differ from what the models generate."""
    files = rendered()
    return [
        target / name
        for target in TARGETS
        for name, text in files.items()
        if not (target / name).is_file() or (target / name).read_text() != text
    ]


def write() -> None:
    for target in TARGETS:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in rendered().items():
            (target / name).write_text(text)


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        write()
        return 0
    if argv[1:] == ["check"]:
        out_of_date = stale()
        for path in out_of_date:
            print(f"stale: {path} (run: python -m kubellm_operator.crds write)")
        return 1 if out_of_date else 0
    print("usage: python -m kubellm_operator.crds write|check")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
