"""The `gankit` command line. Thin on purpose: it parses arguments and calls library functions.

Nothing heavy is imported at module level, so `gankit --help` answers without loading torch.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from gankit.errors import Diverged, GankitError, Stopped


class SeedFlagGroup(click.Group):
    """Rewrites the seed repositories' dashed flags (`-sng`, `--model dcgan`, `-cd=hinge`) into
    override words before click parses `gankit train`, which would misread them (gankit.aliases)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["gankit.argv"] = list(args)  # as typed, for RUN_DIR/command.txt
        if args and args[0] == "train":
            from gankit.aliases import rewrite_train_args

            args = ["train", *rewrite_train_args(args[1:])]
        return super().parse_args(ctx, args)


@click.group(cls=SeedFlagGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gankit")
def cli() -> None:
    """Train, sample and compare GANs. Start with `gankit presets`."""


@cli.command(context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1)
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Parent directory of the run directory.")
@click.option("--name", default=None, help="Run directory name [default: PRESET-NNN, never reused].")
@click.option("--dry-run", is_flag=True,
              help="Check the config, registry names, dataset and shapes as training would; print the config.")
@click.option("--resume", "resume_dir", default=None, type=click.Path(path_type=Path),
              help="Continue this run directory from its latest checkpoint (no PRESET needed).")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes on this node (DDP through torch.distributed.run); the same as "
                   "`torchrun --nproc_per_node=N -m gankit train ...`.")
@click.pass_context
def train(ctx: click.Context, args: tuple[str, ...], out: Path, name: str | None, dry_run: bool,
          resume_dir: Path | None, nproc: int) -> None:
    """Train PRESET with optional key=value overrides, e.g. `gankit train dcgan-mnist train.steps=500`.

    The seed repositories' flags work as typed there: -sng -snd --ema -acml=2 -spd=2
    --rtype=tnormal --aug_policy=diff_aug -cg=hinge -cd=hinge --model dcgan --epochs 300
    --batch_size 64 --lr 5e-5 --log_steps 10 --steps=100000 (README, "Seed flags").
    """
    from gankit import config as config_lib
    from gankit.aliases import seed_model
    from gankit.ranks import ranks_from_env
    from gankit.rundir import write_command

    argv = ctx.meta.get("gankit.argv", [])
    ranks = ranks_from_env()  # under torchrun, rank 0 alone names, writes and speaks
    if nproc > 1 and not dry_run:
        if ranks.world_size > 1:
            raise GankitError("--nproc starts its own processes; drop it when launching with torchrun.")
        if resume_dir is None and args and "=" not in args[0]:
            config_lib.resolve(args[0], seed_model(args[0], list(args[1:])))  # a bad key fails once, not N times
        from gankit.training.launch import launch, without_nproc

        sys.exit(launch(nproc, without_nproc(argv)))
    if resume_dir is not None:
        if args and "=" not in args[0]:
            raise GankitError(f"--resume continues the run's own config, so drop the preset '{args[0]}'.")
        from gankit.training.loop import resume

        if dry_run:  # the checks on the config the resumed run would use; never a step
            from gankit.checkpoint import latest_checkpoint, load_checkpoint
            from gankit.dryrun import check

            saved = config_lib.from_dict(load_checkpoint(latest_checkpoint(resume_dir))["config"])
            click.echo(check(config_lib.with_overrides(saved, list(args))), nl=False)
            return
        # command.txt gains its block only once the resume has passed its checks: a refusal writes nothing.
        run_dir = resume(resume_dir, list(args), on_start=lambda path: write_command(path, argv))
        if ranks.is_main:
            click.echo(f"run directory: {run_dir}")
        return
    if not args:
        raise GankitError("name a preset to train, such as `gankit train gan-ring8`; `gankit presets` lists them.")
    if "=" in args[0]:
        raise GankitError(f"name a preset before the overrides, such as `gankit train dcgan-celeba {args[0]}`; "
                          "`gankit presets` lists them.")
    preset, overrides = args[0], seed_model(args[0], list(args[1:]))
    cfg = config_lib.resolve(preset, overrides)
    if dry_run:
        from gankit.dryrun import check

        click.echo(check(cfg), nl=False)
        return
    from gankit.rundir import create_run_dir
    from gankit.training.distributed import on_main, start
    from gankit.training.loop import train as train_run

    start(cfg.train.device)  # under torchrun: join the job, so that rank 0 alone names the run directory

    def make_run_dir() -> Path:
        run_dir = create_run_dir(out, name, preset)
        write_command(run_dir, argv)
        return run_dir

    run_dir = on_main(make_run_dir)
    try:
        train_run(cfg, run_dir)
    except GankitError as exc:
        # A run refused before its first step (say, its dataset is missing) leaves no empty
        # directory behind; one that trained, or diverged, keeps everything it wrote.
        trained = (run_dir / "samples").exists() or (run_dir / "checkpoints").exists()
        if ranks.is_main and not trained and not isinstance(exc, Diverged):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if ranks.is_main:
        click.echo(f"run directory: {run_dir}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--n", "n", default=64, show_default=True, type=int, help="Number of samples.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file: .png for a grid, .npy for raw float32 samples.")
@click.option("--checkpoint", default="latest", show_default=True,
              help="latest, best, a step number, or a checkpoint path.")
@click.option("--seed", default=0, show_default=True, type=int, help="Noise seed.")
@click.option("--truncation", default=None, type=float,
              help="Truncation trick: draw z from N(0, I) truncated to [-T, T] [default: the run's prior].")
@click.option("--class", "class_", default=None, type=int, help="Conditional runs: draw only this class.")
@click.option("--labels", default=None, help="Conditional runs: classes to draw, cycled, e.g. 0,1,2 (a row each).")
def sample(run_dir: Path, n: int, out: Path, checkpoint: str, seed: int, truncation: float | None,
           class_: int | None, labels: str | None) -> None:
    """Draw N samples from RUN_DIR's EMA generator into a PNG grid or a .npy array."""
    from gankit.sampling import sample_to_file

    if class_ is not None and labels is not None:
        raise GankitError("give --class K or --labels A,B,..., not both.")
    try:
        classes = [class_] if class_ is not None else None
        classes = [int(c) for c in labels.split(",") if c.strip()] if labels else classes
    except ValueError:
        raise GankitError(f"--labels takes class numbers separated by commas, such as 0,1,2, not '{labels}'.") from None
    path = sample_to_file(run_dir, n, out, checkpoint, seed, truncation, classes)
    click.echo(f"wrote {path}")


@cli.command()
def presets() -> None:
    """List every preset with its one-line description."""
    from gankit.config import list_presets

    items = list_presets()
    width = max(len(name) for name, _ in items)
    for name, description in items:
        click.echo(f"{name:<{width}}  {description}")


@cli.group()
def data() -> None:
    """Datasets: list them, or build a dataset's HDF5 cache ahead of training."""


@data.command("list")
def data_list() -> None:
    """List every dataset name."""
    from gankit.data import list_datasets

    click.echo("\n".join(list_datasets()))


@data.command("prepare")
@click.argument("name")
@click.argument("overrides", nargs=-1)
@click.option("--resolution", type=int, default=None, help="Image side in pixels [default: the config's].")
def data_prepare(name: str, overrides: tuple[str, ...], resolution: int | None) -> None:
    """Build the HDF5 cache of NAME (a dataset or a preset) now.

    Training builds the same file on first use; this does it ahead of time, with data keys as
    overrides, e.g. `gankit data prepare imagefolder path=faces channels=3 --resolution 64`.
    """
    from gankit.data.prepare import prepare

    paths = prepare(name, resolution, list(overrides))
    for path in paths:
        click.echo(f"cache ready: {path} ({path.stat().st_size / 2**20:.1f} MB)")
    if not paths:
        click.echo(f"{name} is read without a cache; nothing to prepare.")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"  # a user reads the sentence; the source line is for developers


@cli.command(name="eval")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--metrics", default=None,
              help="Comma-separated metric names: fid, is, kid, pr, dc, cfid, cis, modes, stacked, swd, "
                   "diversity, label_preservation "
                   "[default: the run's eval.metrics, else fid,is,kid,pr for images and modes for 2-D points].")
@click.option("--n", "n", default=None, type=int, help="Generated samples [default: the run's eval.num_samples].")
@click.option("--checkpoint", default="latest", show_default=True, help="latest, best, a step number, or a path.")
@click.option("--ref", "ref", default=None, type=click.Choice(["train", "test"]),
              help="Reference split [default: the run's eval.reference_split].")
@click.option("--network", default=None, type=click.Choice(["G_ema", "G"]), help="Generator [default: G_ema].")
@click.option("--seed", default=None, type=int, help="Noise seed of the samples [default: the run's eval.seed].")
@click.option("--inception-weights", default=None, type=click.Path(path_type=Path),
              help="weights-inception-2015-12-05-6726825d.pth [default: the torch hub cache].")
@click.option("--classifier", default=None, type=click.Path(path_type=Path),
              help="A `gankit classifier train` file for cfid/cis/stacked [default: the cached one].")
def evaluate(run_dir: Path, metrics: str | None, n: int | None, checkpoint: str, ref: str | None, network: str | None,
             seed: int | None, inception_weights: Path | None, classifier: Path | None) -> None:
    """Score RUN_DIR's checkpoint; print a table and append each score to RUN_DIR/metrics.jsonl."""
    from gankit.metrics.evaluate import evaluate_checkpoint, format_table

    if n is not None and n <= 0:
        raise GankitError(f"--n must be positive, not {n}.")
    names = None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()]
    if names == []:
        raise GankitError("--metrics is empty; name at least one metric, such as --metrics fid.")
    overrides = {key: value for key, value in (("network", network), ("seed", seed),
                                               ("inception_weights", inception_weights and str(inception_weights)),
                                               ("classifier", classifier and str(classifier))) if value is not None}
    records = evaluate_checkpoint(run_dir, names, n, checkpoint, ref, overrides)
    click.echo(format_table(records))
    click.echo(f"appended {len(records)} records to {Path(run_dir) / 'metrics.jsonl'}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--input", "source", required=True, type=click.Path(path_type=Path),
              help="A folder of images (searched recursively) or one image file.")
@click.option("--direction", required=True, type=click.Choice(["AtoB", "BtoA"]), help="Which generator to apply.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output folder; each translation keeps its input's file name.")
@click.option("--checkpoint", default="latest", show_default=True, help="latest, best, a step number, or a path.")
def translate(run_dir: Path, source: Path, direction: str, out: Path, checkpoint: str) -> None:
    """Translate images with RUN_DIR's CycleGAN generators (G_ema), at the run's resolution."""
    from gankit.translate import translate_files

    written = translate_files(run_dir, source, direction, out, checkpoint)
    click.echo(f"wrote {len(written)} translated images ({direction}) to {out}")


@cli.group()
def classifier() -> None:
    """The dataset classifier behind classifier-FID/IS and Stacked-MNIST modes."""


@classifier.command(name="train")
@click.option("--data", "data_name", required=True, help="A labelled dataset: mnist5k, mnist, fashion-mnist, ...")
@click.option("--root", default="data", show_default=True, help="Directory holding on-disk datasets.")
@click.option("--resolution", default=28, show_default=True, type=int, help="Image side in pixels.")
@click.option("--channels", default=1, show_default=True, type=int, help="1 grey or 3 RGB.")
@click.option("--epochs", default=5, show_default=True, type=int, help="Passes over the train split.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds weights and batch order.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--out", default=None, type=click.Path(path_type=Path),
              help="Output file [default: CACHE/classifiers/DATA-Rpx-Cch.pt, where evaluation looks].")
@click.option("--cache-dir", default=None, help="Cache directory [default: $GANKIT_CACHE or ~/.cache/gankit].")
@click.option("--domain", default="", type=click.Choice(["", "A", "B"]),
              help="One domain of an unpaired dataset such as digits2mnist (judges translations into it).")
def classifier_train(data_name: str, root: str, resolution: int, channels: int, epochs: int, seed: int,
                     device: str, out: Path | None, cache_dir: str | None, domain: str) -> None:
    """Train the small CNN on a dataset's train split; report and store its test accuracy."""
    from gankit.checkpoint import pick_device
    from gankit.config import DataConfig, EvalConfig
    from gankit.metrics.classifier import default_classifier_path, train_classifier
    from gankit.metrics.evaluate import cache_root

    if epochs <= 0:
        raise GankitError(f"--epochs must be positive, not {epochs}.")
    data = DataConfig(name=data_name, root=root, resolution=resolution, channels=channels, domain=domain)
    out = out or default_classifier_path(cache_root(EvalConfig(cache_dir=cache_dir or "")), data)
    meta = train_classifier(data, out, epochs=epochs, seed=seed, device=str(pick_device(device)), log=click.echo)
    click.echo(f"test accuracy {meta['test_accuracy']:.4f} on {meta['n_test']} {data_name} test images; "
               f"saved {meta['path']} (sha256 {meta['sha256']})")


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--jobs", default=None, type=int,
              help="Trials at once [default: one per GPU, else one per CPU core; each gets cores/jobs threads].")
@click.option("--out", default="sweeps", show_default=True, type=click.Path(path_type=Path),
              help="Parent of the sweep folder OUT/NAME.")
@click.option("--launcher", default="local", show_default=True, type=click.Choice(["local", "slurm"]),
              help="local: subprocesses here; slurm: one SLURM job per trial through submitit.")
@click.option("--dry-run", is_flag=True, help="Print the trials and their resolved overrides, and exit.")
def sweep(spec: Path, jobs: int | None, out: Path, launcher: str, dry_run: bool) -> None:
    """Run every setting x seed of SPEC (a YAML file, see studies/); run it again to resume."""
    from gankit.study.sweep import sweep as run_sweep

    try:
        counts = run_sweep(spec, out, jobs, launcher, dry_run, log=click.echo)
    except KeyboardInterrupt:
        click.echo("interrupted; run the same `gankit sweep` command again to resume.", err=True)
        sys.exit(130)
    if counts.get("failed"):
        sys.exit(1)  # not a user error: the sweep ran, and the manifest says which trials failed


@cli.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", default=None, type=click.Path(path_type=Path),
              help="HTML file [default: SWEEP_DIR/report.html for one sweep, else report.html]; "
                   "table.csv and table.md go beside it.")
@click.option("--metric", default=None,
              help="Score that picks each run's best evaluation and sorts the table "
                   "[default: the runs' eval.best_metric].")
def report(dirs: tuple[Path, ...], out: Path | None, metric: str | None) -> None:
    """Compare runs and sweeps: one self-contained HTML page, plus the table here and as CSV/Markdown."""
    from gankit.study.report import build_report

    build_report(list(dirs), out, metric, echo=click.echo)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. A user sees one line on stderr for anything they can fix, never a traceback:
    exit 2 for bad input (and a full disk), 3 for a diverged run, 128 + N after signal N."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _main(argv)
    # One rank of a torchrun job. Its files are written and its process group is gone, but gloo's
    # worker threads may still be releasing the last collectives' tensors, and a thread that needs
    # the GIL while the interpreter finalizes aborts the process (exit -6, "terminate called without
    # an active exception"; a core showed ~AsyncBarrierWork in ProcessGroupGloo::runLoop). So a
    # rank leaves without finalization, once its output is flushed: 2-rank runs here aborted 2
    # times in 31 before, 0 in 50 after.
    code: int | str | None = 0
    try:
        _main(argv)
    except SystemExit as exc:
        code = exc.code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _main(argv: list[str] | None) -> None:
    import warnings

    warnings.formatwarning = _one_line_warning
    try:
        cli.main(args=argv, prog_name="gankit", standalone_mode=False)
    except GankitError as exc:
        if "WORLD_SIZE" in os.environ:  # one of several processes: rank 0 alone speaks for the job
            from gankit.training.distributed import report_failure

            report_failure(str(exc), exc.exit_code)
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Stopped as exc:
        from gankit.ranks import ranks_from_env

        if ranks_from_env().is_main:  # every rank stopped at the same step: one line says so
            click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # click prints usage, a hint and the error over several lines; a user needs the error and where to look.
        command = exc.ctx.command_path if exc.ctx else "gankit"
        message = exc.format_message().replace("\n", " ").rstrip(".")
        joiner = " See" if message.endswith("?") else "; see"
        click.echo(f"error: {message}{joiner} `{command} --help`.", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; resume with `gankit train --resume RUN_DIR`.", err=True)
        sys.exit(130)
    except (OSError, RuntimeError) as exc:
        # A full disk outside atomic_write (a log append, a library's own writer): still one sentence.
        from gankit.utils import disk_full_cause

        cause = disk_full_cause(exc)
        if cause is None:
            raise
        where = f" writing {cause.filename}" if cause.filename else ""
        click.echo(f"error: {cause.strerror}{where}; free some space (earlier checkpoints are intact) and "
                   "resume with `gankit train --resume RUN_DIR`.", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
