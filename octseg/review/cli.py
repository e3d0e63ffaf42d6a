"""``octseg review OUT [--data DATASET] [--reviewer NAME] [--open]``: serve the review app on
127.0.0.1 (a random free port, a random token in the printed URL) until Ctrl-C."""

from __future__ import annotations

import argparse
import getpass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="an inference output folder (manifest.json) or a dataset folder")
    p.add_argument(
        "--data",
        help="the dataset the inference ran on (images: DATASET/<id>/image.*); default: the "
        "source recorded in each pullback's done.json",
    )
    p.add_argument("--reviewer", help="name recorded in the provenance (default: the user name)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--threads", type=int, default=1, help="torch threads for measuring (default 1)")
    p.add_argument(
        "--geometry-config",
        help="geometry settings YAML (as octseg measure --config) for measuring the labels; "
        "default: those the inference run recorded in its manifest.json, else the defaults",
    )


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from octseg.review.server import Review, Served, make_app

    torch.set_num_threads(max(1, args.threads))
    review = Review(
        args.folder, args.data, reviewer=args.reviewer or _user(), geometry=args.geometry_config
    )
    served = Served(make_app(review)).start()
    print(f"octseg review: {len(review.entries)} pullbacks ({review.layout}) in {review.root}")
    print(f"measuring with the geometry settings of {review.geometry_source}")
    print(f"open {served.url}   (Ctrl-C to stop; only this URL's token is answered)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(served.url)
    try:
        while served.thread.is_alive():
            time.sleep(0.5)
    finally:
        served.stop()
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
