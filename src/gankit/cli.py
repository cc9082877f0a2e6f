"""The `gankit` command line. Thin on purpose: it parses arguments and calls library functions.

Nothing heavy is imported at module level, so `gankit --help` answers without loading torch.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from gankit.errors import GankitError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gankit")
def cli() -> None:
    """Train, sample and compare GANs. Start with `gankit presets`."""


@cli.command(context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1)
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Parent directory of the run directory.")
@click.option("--name", default=None, help="Run directory name [default: PRESET-NNN, never reused].")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@click.option("--resume", "resume_dir", default=None, type=click.Path(path_type=Path),
              help="Continue this run directory from its latest checkpoint (no PRESET needed).")
def train(args: tuple[str, ...], out: Path, name: str | None, dry_run: bool, resume_dir: Path | None) -> None:
    """Train PRESET with optional key=value overrides, e.g. `gankit train dcgan-mnist train.steps=500`."""
    import yaml

    from gankit import config as config_lib

    if resume_dir is not None:
        if args and "=" not in args[0]:
            raise GankitError(f"--resume continues the run's own config, so drop the preset '{args[0]}'.")
        from gankit.training.loop import resume

        run_dir = resume(resume_dir, list(args))
        click.echo(f"run directory: {run_dir}")
        return
    if not args:
        raise GankitError("name a preset to train, such as `gankit train gan-ring8`; `gankit presets` lists them.")
    preset, overrides = args[0], list(args[1:])
    cfg = config_lib.resolve(preset, overrides)
    if dry_run:
        click.echo(yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False), nl=False)
        return
    from gankit.rundir import create_run_dir
    from gankit.training.loop import train as train_run

    run_dir = create_run_dir(out, name, preset)
    try:
        train_run(cfg, run_dir)
    except BaseException:
        # A run that failed before its first checkpoint leaves nothing worth keeping behind.
        if not (run_dir / "checkpoints").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    click.echo(f"run directory: {run_dir}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--n", "n", default=64, show_default=True, type=int, help="Number of samples.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file: .png for a grid, .npy for raw float32 samples.")
@click.option("--checkpoint", default="latest", show_default=True, help="latest, or a checkpoint path.")
@click.option("--seed", default=0, show_default=True, type=int, help="Noise seed.")
@click.option("--truncation", default=None, type=float,
              help="Truncation trick: draw z from N(0, I) truncated to [-T, T] [default: the run's prior].")
def sample(run_dir: Path, n: int, out: Path, checkpoint: str, seed: int, truncation: float | None) -> None:
    """Draw N samples from RUN_DIR's EMA generator into a PNG grid or a .npy array."""
    from gankit.sampling import sample_to_file

    click.echo(f"wrote {sample_to_file(run_dir, n, out, checkpoint, seed, truncation)}")


@cli.command()
def presets() -> None:
    """List every preset with its one-line description."""
    from gankit.config import list_presets

    items = list_presets()
    width = max(len(name) for name, _ in items)
    for name, description in items:
        click.echo(f"{name:<{width}}  {description}")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="gankit", standalone_mode=False)
    except GankitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; resume with `gankit train --resume RUN_DIR`.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
