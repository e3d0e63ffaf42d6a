"""``octseg models``: the models that ship with octseg, each checked as a run would check it
(present, SHA-256), with what it is for, its size and recipe, and how to use it; then the shipped
ensembles, each ok when all its members are; exit status 1 when any fails its check
(docs/model_card.md holds their cards)."""

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
    "octseg-calcium-fdv-s42": "a member of octseg-calcium-v2 (v1 fine-tuned on deep and faint "
    "lesions with vasa vasorum); alone it over-calls calcium on lesion-free frames",
    "octseg-calcium-fdv-s7": "a member of octseg-calcium-v2 (the same fine-tune, seed 7)",
    "octseg-calcium-v2": "calcium and struts on realistic frames, the recommended calcium model "
    "of sessions 44-59 (eight hybrid draws of the real test block: calcium Dice 0.76 vs v1's "
    "0.74, arc bias -3.8 vs -6.6 deg); lumen less robust than the default's under display "
    "changes; three networks, 2.5x v1's time on a CPU",
    "octseg-calcium-v1-384": "a member of octseg-calcium-v3 (v1 fine-tuned at 384 A-lines)",
    "octseg-calcium-fdv384-s42": "a member of octseg-calcium-v3 (octseg-calcium-fdv-s42's "
    "recipe trained at 384 A-lines)",
    "octseg-calcium-fdv384-s7": "a member of octseg-calcium-v3 (the same, seed 7)",
    "octseg-calcium-v3": "calcium and struts on realistic frames, the recommended calcium model "
    "(v2's three members trained at 384 A-lines; two sets of sixteen fresh hybrid draws: "
    "calcium Dice 0.78 / 0.77 vs v2's 0.74 / 0.73; eight draws 0.78 vs 0.76); lumen less "
    "robust than the default's under display changes; 1.6x v2's time on a CPU",
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


def describe_ensemble(name: str, good: dict[str, bool]) -> tuple[bool, list[str]]:
    """Whether every member of the shipped ensemble ``name`` passed its check (``good``: name ->
    passed), and the lines that describe it."""
    members = shipped.ENSEMBLES[name]
    failed = [m for m in members if not good.get(m, False)]
    state = "ok" if not failed else f"FAILED: member(s) {', '.join(failed)} failed their check"
    lines = [f"{name} (ensemble): {state}", f"  for: {PURPOSE.get(name, 'see docs/model_card.md')}"]
    lines.append(f"  the mean of the class probabilities of {', '.join(members)}")
    return not failed, lines


def run(args: argparse.Namespace) -> int:
    good: dict[str, bool] = {}
    for name in shipped.names():
        good[name], lines = describe_model(name)
        print("\n".join(lines))
    ok = all(good.values())
    for name in shipped.ENSEMBLES:
        passed, lines = describe_ensemble(name, good)
        ok &= passed
        print("\n".join(lines))
    print(USE)
    return 0 if ok else 1
