"""The ``ganlab`` command (also ``python -m ganlab``); every chapter extends it.

ganlab train CHAPTER [--profile P] [--steps N] [--batch-size B] [--out DIR] [--resume | --overwrite]
                    [--checkpoint-minutes M] [chapter options]
ganlab sample CHAPTER [--weights W] [--out PNG|JPG] [--n N] [--seed S] [chapter options]
ganlab evaluate CHAPTER [--weights W] [--n N] --json [chapter options]
ganlab grade NOTEBOOK|FOLDER [--json] [--csv FILE] [--timeout S] [--profile P]
ganlab exercises build|check
ganlab bench CHAPTER [--profile P] --json [chapter options]
ganlab world birds [--split S] [--n N] [--size PX] [--out PNG] [--retrieve CAPTION]
ganlab world faces [--split S] [--domain D] [--n N] [--size PX] [--out PNG] [--masks|--sweep]
ganlab world landscapes [--split S] [--n N] [--size PX] [--out PNG] [--styles]
ganlab world WORLD --bench [--n N] [--size PX]   (JSON: CPU ms to draw one image, one core)
ganlab info

The five chapter commands (train, sample, evaluate, bench, ship) are written once, in
``ganlab.chapters.commands``; a chapter adds its own options (``--variant``, ``--stage``,
``--digit``, ``--caption``...) through its contract's ``add_options``, and an option that the
chapter does not have is refused, naming the ones it has.
"""

from __future__ import annotations

import argparse
import json
import sys

from ganlab import __version__
from ganlab.chapters import CHAPTERS
from ganlab.errors import GanLabError
from ganlab.profiles import PROFILES

CHAPTER_COMMANDS = ("train", "sample", "evaluate", "bench", "ship")


class UsageError(GanLabError, ValueError):
    """A command-line option the chosen chapter does not have."""


class _ChapterOptions(argparse.ArgumentParser):
    """The chapter's own options of one command; errors become :class:`UsageError`."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def _chapter_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("chapter", choices=CHAPTERS, metavar="CHAPTER", help=", ".join(CHAPTERS))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganlab", description="GAN Lab: the course's command.")
    parser.add_argument("--version", action="version", version=f"ganlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a chapter's model")
    _chapter_arg(p)
    p.add_argument("--profile", choices=PROFILES, help="default: $GANLAB_PROFILE or by hardware")
    p.add_argument("--steps", type=int, help="override the profile's number of steps")
    p.add_argument("--batch-size", type=int, metavar="B", help="override the profile's batch")
    p.add_argument("--out", help="folder for checkpoint.safetensors (default runs/CHAPTER)")
    p.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        metavar="M",
        help="also checkpoint every M minutes (default 10; 0: only every steps/4)",
    )
    p.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="also export the generator every N steps into OUT/snapshots/ "
        "(for ganlab ship --pick-snapshot)",
    )
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    p.add_argument("--data-root", help="the paper's real dataset on disk (default: the world)")
    p.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="bf16 autocast on the CPU too (about 1.6x faster on the course's machine; needs a "
        "CPU with native bf16, AVX512-BF16 or AMX, and is refused elsewhere)",
    )

    p = sub.add_parser("sample", help="draw samples into a PNG (or JPEG) grid")
    _chapter_arg(p)
    p.add_argument("--weights", help="exported weights or checkpoint (default: shipped)")
    p.add_argument("--out", help="PNG or JPEG file to write")
    p.add_argument("--n", type=int, default=8, help="samples per condition (default 8)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate", help="the chapter's metrics as JSON")
    _chapter_arg(p)
    p.add_argument("--weights", help="exported weights or checkpoint (default: shipped)")
    p.add_argument("--n", type=int, default=5000, help="generated samples (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON only")

    def cell_timeout(value: str) -> int:
        from ganlab.runner import positive_timeout

        try:
            return positive_timeout(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    p = sub.add_parser("grade", help="grade submitted notebooks")
    p.add_argument("path", help="a notebook or a folder of notebooks")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--csv", help="write a CSV, one row per notebook")
    p.add_argument(
        "--timeout",
        type=cell_timeout,
        help="seconds per cell (default by profile: smoke 120, cpu 1200, gpu 1800); a cell "
        "past it is interrupted, and its kernel killed if it has not stopped 10 s later",
    )
    p.add_argument("--profile", choices=PROFILES, default="smoke", help="default smoke")

    p = sub.add_parser("exercises", help="build exercises/ from solutions/, or check them")
    p.add_argument("action", choices=("build", "check"))
    p.add_argument("--solutions", default="solutions")
    p.add_argument("--exercises", default="exercises")

    p = sub.add_parser("bench", help="training images/s on this device")
    _chapter_arg(p)
    p.add_argument("--profile", choices=PROFILES)
    p.add_argument("--steps", type=int, help="timed steps (after warm-up)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--cpu-bf16", action="store_true", help="as train's --cpu-bf16")

    p = sub.add_parser("ship", help="(maintainers) measure a run and ship its weights")
    _chapter_arg(p)
    p.add_argument("run", help="a finished run's --out folder")
    p.add_argument(
        "--pick-snapshot",
        action="store_true",
        help="ship the run's snapshot (--snapshot-every) that scores best on the training "
        "split (text-to-image chapters: judge FD), not its last step",
    )
    p.add_argument(
        "--select-n", type=int, default=500, help="birds the choice is scored on (default 500)"
    )
    p.add_argument(
        "--reuse-scores",
        action="store_true",
        help="with --pick-snapshot: reuse the scores already in RUN/snapshots/scores.json for "
        "files whose SHA-256 and --select-n match (every score is written there)",
    )
    p.add_argument("--n", type=int, default=5000, help="generated samples to measure")

    p = sub.add_parser("world", help="show a world: birds (captions), faces or landscapes")
    p.add_argument("world", choices=("birds", "faces", "landscapes"))
    p.add_argument("--split", default="train", help="birds: train, test or zeroshot; "
                   "faces: train, test or reference (default train)")  # fmt: skip
    p.add_argument("--n", type=int, help="images to show (default 8; --bench: 40)")
    p.add_argument("--size", type=int, help="pixels (16-256; default 128, --bench: 64)")
    p.add_argument("--bench", action="store_true",
                   help="print as JSON the CPU ms of drawing one image, one core")  # fmt: skip
    p.add_argument("--out", help="PNG file to write (default WORLD.png)")
    p.add_argument("--retrieve", metavar="CAPTION", help="show the birds nearest to a caption")
    p.add_argument("--encoder", choices=("joint", "damsm"), default="damsm")
    p.add_argument("--framing", choices=("full", "cub", "tight"), default="full",
                   help="birds: the whole scene, the CUB crop, or a tight crop")  # fmt: skip
    p.add_argument("--scene", choices=("full", "plain"), default="full",
                   help="birds: every background detail, or the gradient alone")  # fmt: skip
    # -- faces (ganlab.viz.faces) --
    p.add_argument("--domain", choices=("cat", "dog", "wild"), help="faces: one domain only")
    p.add_argument("--masks", action="store_true", help="faces: show each face's part masks")
    p.add_argument("--sweep", metavar="FACTOR", nargs="+",
                   help="faces: factor sweeps (vary one factor, hold the rest)")  # fmt: skip
    # -- end faces --
    # -- landscapes (ganlab.viz.landscapes) --
    p.add_argument("--styles", action="store_true",
                   help="landscapes: each map in four styles (times of day, seasons)")  # fmt: skip
    # -- end landscapes --

    sub.add_parser("info", help="profile, device and versions")
    return parser


def show_faces(args: argparse.Namespace) -> str:
    """``ganlab world faces``: a grid of faces (with their masks), or factor sweeps."""
    from ganlab.data.faces import KINDS, FacesWorld, load_faces
    from ganlab.viz.faces import faces_grid, sweep_figure

    if args.sweep:
        face = FacesWorld(args.split, domain=args.domain or "cat").face(0)
        fig = sweep_figure(args.sweep, face=face, size=args.size)
    else:
        data = load_faces(args.n, args.split, args.size, domain=args.domain, progress=False)
        kinds = [KINDS[k] for k in data.factor("kind").tolist()]
        fig = faces_grid(data.images, data.masks if args.masks else None, kinds,
                         ncol=min(8, args.n))  # fmt: skip
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return args.out


def show_landscapes(args: argparse.Namespace) -> str:
    """``ganlab world landscapes``: map | image pairs with a legend, or maps in four styles."""
    from ganlab.data.landscapes import LandscapesWorld, Style, load_landscapes
    from ganlab.viz.landscapes import map_image_grid, styles_figure

    if args.styles:
        scene = LandscapesWorld(args.split).scene(0, args.size)
        looks = [Style("morning", "spring"), Style("noon", "summer"),
                 Style("evening", "autumn"), Style("overcast", "winter")]  # fmt: skip
        fig = styles_figure(scene.labels, looks, scene.instances)
    else:
        data = load_landscapes(args.n, args.split, args.size, progress=False)
        fig = map_image_grid(data.labels, data.images, ncol=min(4, args.n))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return args.out


def show_world(args: argparse.Namespace) -> str:
    """``ganlab world birds``: a captioned grid, or the birds nearest to a caption;
    ``--bench`` (any world): what one image costs to draw."""
    import matplotlib

    if args.bench:
        from ganlab.data.drawing_cost import drawing_cost

        size, n = 64 if args.size is None else args.size, 40 if args.n is None else args.n
        report = drawing_cost(args.world, size, n)
        print(json.dumps(report))
        return ""
    matplotlib.use("Agg")
    args.out = args.out or f"{args.world}.png"
    args.n = 8 if args.n is None else args.n
    args.size = 128 if args.size is None else args.size
    if args.world == "faces":
        return show_faces(args)
    if args.world == "landscapes":
        return show_landscapes(args)
    from ganlab.data.birds import load_birds
    from ganlab.viz.birds import caption_grid, retrieval_figure

    if args.retrieve is not None:
        from ganlab.text.train import load_encoders

        text_enc, image_enc = load_encoders(args.encoder)
        data = load_birds(1000, args.split, 64, progress=False)
        fig = retrieval_figure(args.retrieve, text_enc, image_enc, data.float_images(), k=args.n,
                               captions=[c[0] for c in data.captions])  # fmt: skip
    else:
        data = load_birds(
            args.n, args.split, args.size, progress=False, framing=args.framing, scene=args.scene
        )
        fig = caption_grid(data.images, [c[0] for c in data.captions], ncol=min(4, args.n))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return args.out


def chapter_options(command: str, chapter) -> _ChapterOptions:
    """The parser of ``chapter``'s own options of ``command``."""
    parser = _ChapterOptions(prog=f"ganlab {command} {chapter.name}", add_help=False)
    chapter.add_options(command, parser)
    return parser


def _with_chapter_help(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """``ganlab COMMAND CHAPTER --help`` lists the chapter's own options too (``--stage``,
    ``--refine-sketch``...), below the command's."""
    if not ({"-h", "--help"} & set(argv)) or len(argv) < 2:
        return
    command, name = argv[0], argv[1]
    if command not in CHAPTER_COMMANDS or name not in CHAPTERS:
        return
    from ganlab.chapters import get_chapter

    try:
        own = chapter_options(command, get_chapter(name))
    except GanLabError:  # a chapter not written yet: only the command's options
        return
    own.usage = argparse.SUPPRESS  # the listing alone
    listing = own.format_help().strip("\n").removeprefix("options:").strip("\n")
    if not listing.strip():
        return
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices[command]
    sub.formatter_class = argparse.RawDescriptionHelpFormatter
    sub.epilog = f"{name}'s own {command} options:\n{listing}"


def _parse(argv: list[str]) -> argparse.Namespace:
    """The command line as one namespace: the command's options, then the chapter's own
    (a chapter not written yet, or an option it does not have, is a :class:`GanLabError`)."""
    parser = build_parser()
    _with_chapter_help(parser, argv)
    args, rest = parser.parse_known_args(argv)
    if args.command in CHAPTER_COMMANDS:
        from ganlab.chapters import get_chapter

        own = chapter_options(args.command, get_chapter(args.chapter))
        usage = own.format_usage().strip().removeprefix(f"usage: {own.prog}").strip()
        have = f"its own {args.command} options: {usage or 'none'}"
        try:
            extra, unknown = own.parse_known_args(rest)
        except UsageError as exc:
            raise UsageError(f"{exc}; {have}") from None
        if unknown:
            raise UsageError(f"{own.prog} does not take {' '.join(unknown)}; {have}")
        args = argparse.Namespace(**vars(args), **vars(extra))
    elif rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    args.argv = list(argv)
    return args


def run(args: argparse.Namespace) -> int:
    if args.command == "info":
        from ganlab.profiles import get_profile

        print(get_profile().describe())
        return 0
    if args.command == "world":
        show_world(args)
        return 0
    if args.command == "exercises":
        from ganlab.grading.build import build_exercises, check_exercises

        if args.action == "build":
            for path in build_exercises(args.solutions, args.exercises):
                print(f"wrote {path}")
            return 0
        problems = check_exercises(args.solutions, args.exercises)
        for problem in problems:
            print(problem)
        print("exercises are up to date" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    if args.command == "grade":
        from ganlab.grading import grade

        if args.csv:
            grade.check_csv_path(args.csv)  # before an hour of grading, not after
        _, skipped = grade.find_submissions(args.path)
        try:
            results = grade.grade_path(args.path, timeout=args.timeout, profile=args.profile)
        except grade.GradingError as error:
            if getattr(error, "results", None):
                print(grade.format_table(error.results))
            raise
        print(json.dumps(results, indent=2) if args.json else grade.format_table(results, skipped))
        if args.csv:
            try:
                grade.write_csv(results, args.csv)
            except OSError as error:
                print(
                    f"ganlab: error: could not write {args.csv} ({error}); every grade is "
                    "in the table above",
                    file=sys.stderr,
                )
                return 1
            print(f"wrote {args.csv}", file=sys.stderr)
        return 0

    from ganlab.chapters import commands, get_chapter

    chapter = get_chapter(args.chapter)
    if args.command == "train":
        from ganlab.train.run_dir import command_line_options

        with command_line_options(args.overwrite, args.checkpoint_minutes):  # TrainConfig defaults
            result = commands.run(args.command, chapter, args)
    else:
        result = commands.run(args.command, chapter, args)
    if args.command in ("evaluate", "bench"):
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
        return run(args)
    except GanLabError as exc:
        print(f"ganlab: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"ganlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: training saved a checkpoint; no traceback
        from ganlab.train.interrupt import cli_message

        print(cli_message(exc, args.argv), file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
