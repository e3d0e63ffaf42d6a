"""``octseg models``: the models that ship with octseg, each checked as a run would check it
(present, SHA-256), with what it is for, its size and recipe, and how to use it; exit status 1
when any fails its check (docs/model_card.md holds their cards)."""

from __future__ import annotations

import argparse

from octseg.core.errors import InputError
from octseg.model import shipped

# what each shipped model is for, in one line (docs/model_card.md)
PURPOSE = {
    shipped.NAME: "the default: lumen (robust to display and signal changes), calcium, struts, "
    "guidewire",
    "octseg-calcium-v1": "calcium and struts on realistic frames (hybrid calcium Dice 0.50 vs "
    "0.19); less robust lumen under display changes; TTA, 8x slower on a CPU",
}


USE = "use one: octseg infer IN --out OUT --checkpoint NAME (default without); docs/model_card.md"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = USE


def describe_model(name: str) -> tuple[bool, list[str]]:
    """Whether the shipped model ``name`` passes its check, and the lines that describe it."""
    from octseg.model.checkpoint import read_checkpoint

    title = f"{name}{' (default)' if name == shipped.NAME else ''}"
    try:
        path = shipped.checkpoint_of(name)
    except InputError as exc:
        return False, [f"{title}: FAILED: {exc}"]
    meta = read_checkpoint(path).get("meta", {})  # the record only: no network built
    facts = "; ".join(shipped.recipe_facts(meta))
    lines = [f"{title}: ok, {path.stat().st_size / 1e6:.2f} MB, SHA-256 checked"]
    lines.append(f"  for: {PURPOSE.get(name, 'see docs/model_card.md')}")
    lines += [f"  {facts}"] if facts else []
    lines.append(f"  file: {path}")
    return True, lines


def run(args: argparse.Namespace) -> int:
    ok = True
    for name in shipped.names():
        good, lines = describe_model(name)
        ok &= good
        print("\n".join(lines))
    print(USE)
    return 0 if ok else 1
