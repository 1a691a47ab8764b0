#!/usr/bin/env python
"""Train MMagic's StyleGAN2 on any HF image dataset (LSUN church/car/horse/cat, FFHQ, a folder) with Accelerate.

    accelerate launch --num_processes 8 examples/train_stylegan2.py --dataset_name tglcourse/lsun_church_train \\
        --resolution 256 --train_batch_size 4 --max_train_steps 800000 --use_ema \\
        --evaluation_images 50000 --evaluation_steps 10000 --inception inception-2015-12-05.pt \\
        --output_dir stylegan2-lsun-church-256 --push_to_hub

With a dataset the model and optimisation defaults are MMagic's StyleGAN2 recipe (``configs/styleganv2``,
``stylegan2_c2_8xb4-800kiters_lsun-church-256x256.py``): config-f at 256x256 (style 512, 8 mapping
layers, channel multiplier 2), batch 4 per process (MMagic: 4 x 8 GPUs), the non-saturating logistic
loss, lazy R1 (weight 10/2 x 16, every 16 iterations, norm "HWC"), lazy path-length regularisation
(weight 2 x 4, every 4 generator steps, decay 0.01, batch / 2), Adam with the lazy-regularisation
correction (G: lr 0.002 x 4/5, betas (0, 0.99^(4/5)); D: lr 0.002 x 16/17, betas (0, 0.99^(16/17))),
style mixing with the config's ``mix_prob`` (0.9), and with ``--use_ema`` an EMA generator of
half-life 10 kimg (momentum 1 - 0.5^(global batch / 10000): MMagic's 1 - 0.5^(32/10000) at batch 32).
The run's length is not: ``--max_train_steps`` defaults to 1000 iterations, a first run, where MMagic
trains 800k. The loop is ``hfmagic.training.train_gan`` with ``hfmagic.training.LazyRegularizedGAN``
(see their docstrings). Without ``--dataset_name``/``--train_data_dir`` it is an offline smoke run
(``SMOKE_RUN``): a small 32x32 StyleGAN2 (style and widths 32, 2 mapping layers) for 300 iterations at
batch 8 on crops of the photographs embedded in hfmagic (about a minute on one CPU thread), which leaves ``final/`` but not a useful model;
flags given explicitly still win.

Outputs in ``--output_dir``: ``checkpoint-<step>/`` (resumable, exactly: the noise generator and each
process's path-length mean are in it), ``samples/step-<step>.png`` (a fixed z and the generator's
stored noise maps), ``logs/`` and ``final/`` (generator, EMA weights with ``--use_ema``, at the root;
``discriminator/``; card; ``samples.png``). With ``--evaluation_images N --evaluation_steps K`` the
generator is evaluated every K iterations (SWD, MS-SSIM, and FID with ``--inception``) and ``best/``
holds the one with the lowest FID (MMagic's ``save_best="FID-Full-50k/fid"``), or the lowest SWD
average without an Inception file.

The discriminator's minibatch-stddev layer groups 4 images: the batch per process must be at most 4
or a multiple of 4.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path

logger = logging.getLogger("train_stylegan2")

# Defaults of the flags that depend on the data (None in argparse, so that a flag given explicitly wins).
# With a dataset: MMagic's StyleGAN2 recipe for the model and batch (REFERENCE.md "StyleGAN2"); the length
# and intervals are a first run's, not MMagic's 800k iterations.
RECIPE = {
    "resolution": 256,
    "train_batch_size": 4,
    "max_train_steps": 1000,
    "model_config_overrides": None,  # config-f: style 512, 8 mapping layers, channel multiplier 2
    "checkpointing_steps": 500,
    "save_images_steps": 500,
}
# Without a dataset: the embedded photos cannot train a useful GAN, so the run only checks the whole
# pipeline: config-f at 256 takes many seconds per iteration on a CPU; this takes ~0.15 s (about a minute
# in all) with one thread: for convolutions this small a second thread costs more than it saves (on a
# loaded 2-core machine, 10x more).
SMOKE_RUN = {
    "resolution": 32,
    "train_batch_size": 8,
    "max_train_steps": 300,
    "model_config_overrides": {"style_channels": 32, "max_channels": 32, "num_mlps": 2},
    "checkpointing_steps": 300,
    "save_images_steps": 100,
    "num_threads": 1,
}
RECIPE_COMMAND = (
    "accelerate launch --num_processes 8 examples/train_stylegan2.py --dataset_name tglcourse/lsun_church_train "
    "--resolution 256 --train_batch_size 4 --max_train_steps 800000 --use_ema"
)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` appends "(default: X)" unless the help states its default or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is None or action.default is False or action.default == argparse.SUPPRESS or re.search(r"\bdefault\b", text, re.I):
            return text
        return f"{text[:-1]} (default: %(default)s)." if text.endswith(".") else f"{text} (default: %(default)s)"


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a StyleGAN2 (MMagic's recipe: lazy R1 and path-length regularisation) with Accelerate.",
        formatter_class=DefaultsHelpFormatter,
    )
    # data
    parser.add_argument("--dataset_name", default=None, help="HF dataset with an image column: Hub id (tglcourse/lsun_church_train), parquet file, or save_to_disk folder.")
    parser.add_argument("--train_data_dir", default=None, help="Folder of training images (loaded as an imagefolder, sub-folder labels dropped).")
    parser.add_argument("--image_column", default="image", help="Column holding the images.")
    parser.add_argument("--dataset_split", default="train", help="Split of the dataset to train on.")
    parser.add_argument("--streaming", action="store_true", help="Stream the dataset instead of downloading it all (LSUN's categories are tens of GB).")
    parser.add_argument("--shuffle_buffer_size", type=int, default=1000, help="With --streaming: rows in the shuffle buffer.")
    parser.add_argument("--skip_corrupt_images", action="store_true", help="Skip unreadable images with a warning (and a count) instead of stopping with an error naming the row.")
    parser.add_argument("--resolution", type=int, default=None, help="Side of the square training images (a power of two): shorter side resized, then center-cropped (default: 256 with a dataset, 32 in the smoke run).")
    parser.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes (results do not depend on it).")
    parser.add_argument("--num_threads", type=int, default=None, help="Torch threads per process on CPU (default: the cores available to the process divided by the processes on this machine, unless OMP_NUM_THREADS is set by you; 1 in the smoke run).")
    # model
    parser.add_argument("--model_config_overrides", default=None, help='JSON of StyleGAN2Config fields, e.g. \'{"style_channels": 32, "max_channels": 32, "num_mlps": 2}\' (default: config-f with a dataset, that small one in the smoke run).')
    # regularisation (MMagic's base_styleganv2.py)
    parser.add_argument("--r1_weight", type=float, default=5.0, help="R1 weight per iteration, gamma / 2 (MMagic 10 / 2); applied as r1_weight x r1_interval (MMagic's r1_loss_weight 80) every --r1_interval iterations; 0: no R1.")
    parser.add_argument("--r1_interval", type=int, default=16, help="Lazy R1: every this many iterations (MMagic's d_reg_interval).")
    parser.add_argument("--pl_weight", type=float, default=2.0, help="Path-length weight per generator step (MMagic 2); applied as pl_weight x pl_interval (MMagic's g_reg_weight 8) every --pl_interval generator steps; 0: none.")
    parser.add_argument("--pl_interval", type=int, default=4, help="Lazy path-length regularisation: every this many generator steps (MMagic's g_reg_interval).")
    parser.add_argument("--pl_decay", type=float, default=0.01, help="Decay of the path-length running mean.")
    parser.add_argument("--pl_batch_shrink", type=int, default=2, help="The path-length batch is the batch divided by this.")
    parser.add_argument("--no_style_mixing", action="store_true", help="Draw one z per fake in the adversarial losses, as MMagic's train_step (mixing then only in the path-length batch); by default the generator mixes two styles with its mix_prob, as the official StyleGAN2.")
    # optimisation
    parser.add_argument("--train_batch_size", type=int, default=None, help="Real images per process per iteration, <= 4 or a multiple of 4 (default: MMagic's 4 with a dataset, 8 in the smoke run).")
    parser.add_argument("--max_train_steps", type=int, default=None, help="Training iterations (MMagic's max_iters) (default: 1000 with a dataset, a first run, not MMagic's 800000; 300 in the smoke run).")
    parser.add_argument("--learning_rate", type=float, default=0.002, help="Adam learning rate before the lazy-regularisation correction: G uses lr x pl_interval/(pl_interval+1), D lr x r1_interval/(r1_interval+1).")
    parser.add_argument("--adam_beta1", type=float, default=0.0, help="Adam beta1 before the correction (beta ** (interval/(interval+1))).")
    parser.add_argument("--adam_beta2", type=float, default=0.99, help="Adam beta2 before the correction (beta ** (interval/(interval+1))).")
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None, help="Mixed precision (default: accelerate's config); bf16 rather than fp16 (the regularisers' gradients are not loss-scaled).")
    # EMA
    parser.add_argument("--use_ema", action="store_true", help="Keep an EMA generator (MMagic's recipe has one), used for samples, evaluation and saved as the model.")
    parser.add_argument("--ema_half_life_kimg", type=float, default=10.0, help="EMA half-life in thousands of images: momentum = 1 - 0.5^(global batch / (1000 x half-life)) (MMagic: 10 kimg).")
    parser.add_argument("--ema_momentum", type=float, default=None, help="MMagic's EMA momentum (weight of the new weights) instead of --ema_half_life_kimg.")
    parser.add_argument("--ema_start", type=int, default=0, help="The EMA starts at this iteration (before: a copy of the generator).")
    # checkpoints, samples, evaluation, logging
    parser.add_argument("--output_dir", default="stylegan2-output", help="Run folder: checkpoints, samples, logs and final/.")
    parser.add_argument("--checkpointing_steps", type=int, default=None, help="Save a resumable checkpoint every this many iterations; 0 = never (default: 500 with a dataset, 300 in the smoke run).")
    parser.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    parser.add_argument("--resume_from_checkpoint", default=None, help='Resume from "latest" (a fresh start if none) or a checkpoint folder/name.')
    parser.add_argument("--save_images_steps", type=int, default=None, help="Save and log a grid of fixed-noise samples every this many iterations; 0 = only at the end (default: 500 with a dataset, 100 in the smoke run).")
    parser.add_argument("--num_sample_images", type=int, default=64, help="Images in each sample grid.")
    parser.add_argument("--evaluation_images", type=int, default=0, help="At the end, evaluate on this many real and generated images: SWD, MS-SSIM on at most 10000, and FID with --inception (MMagic: FID on 50000); 0 = skip.")
    parser.add_argument("--evaluation_steps", type=int, default=0, help="With --evaluation_images: also evaluate every this many iterations and keep the generator with the lowest FID (with --inception; else SWD average) in best/; 0 = only at the end.")
    parser.add_argument("--inception", default=None, help="Local TorchScript Inception (StyleGAN2-ADA's inception-2015-12-05.pt, as `hfmagic evaluate-gan --inception`) or 'repo_id/filename' on the Hub: the evaluations compute FID and best/ is chosen by it.")
    parser.add_argument("--logging_dir", default="logs", help="Tracker folder inside --output_dir.")
    parser.add_argument("--report_to", default="auto", help='Tracker writing --logging_dir: "auto" = tensorboard when installed, else none; "tensorboard", "wandb", "trackio", ... or "none".')
    parser.add_argument("--license", default="apache-2.0", help='License the model card declares for the trained weights (a Hub license id; "none": none). Check the training data\'s terms.')
    parser.add_argument("--seed", type=int, default=0, help="Seed of the initialisation, the data order and the noise.")
    # hub
    parser.add_argument("--push_to_hub", action="store_true", help="Upload final/ (generator, discriminator/, card, samples) at the end.")
    parser.add_argument("--hub_model_id", default=None, help="Repo to push to (default: the name of --output_dir).")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one).")
    parser.add_argument("--hub_private", action="store_true", help="Create the Hub repo private.")
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an error (also HFMAGIC_DEBUG=1).")
    from hfmagic.errors import short_usage_errors

    short_usage_errors(parser)
    args = parser.parse_args(input_args)

    if args.dataset_name and args.train_data_dir:
        parser.error("Give --dataset_name or --train_data_dir, not both.")
    if args.train_data_dir and not os.path.isdir(args.train_data_dir):
        parser.error(f"--train_data_dir {args.train_data_dir} is not a folder (a Hub dataset id goes to --dataset_name).")
    if args.output_dir and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        parser.error(f"--output_dir {args.output_dir} is a file, not a folder: pick another path.")
    if args.ema_momentum is not None and not 0.0 < args.ema_momentum <= 1.0:
        parser.error(f"--ema_momentum must be in (0, 1], got {args.ema_momentum} (MMagic: 1 - 0.5^(32/10000) = 0.00222).")
    if args.ema_half_life_kimg <= 0:
        parser.error(f"--ema_half_life_kimg must be > 0, got {args.ema_half_life_kimg}.")
    if (args.ema_momentum is not None or args.ema_start) and not args.use_ema:
        parser.error("--ema_momentum/--ema_start need --use_ema.")
    resolve_defaults(args)
    for name in ("train_batch_size", "max_train_steps", "num_sample_images", "r1_interval", "pl_interval", "pl_batch_shrink"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    for name in ("r1_weight", "pl_weight"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0 (0: off), got {getattr(args, name)}.")
    if not 0.0 < args.pl_decay <= 1.0:
        parser.error(f"--pl_decay must be in (0, 1], got {args.pl_decay}.")
    if args.learning_rate <= 0:
        parser.error(f"--learning_rate must be > 0, got {args.learning_rate}.")
    if not (0.0 <= args.adam_beta1 < 1.0 and 0.0 <= args.adam_beta2 < 1.0):
        parser.error(f"--adam_beta1/--adam_beta2 must be in [0, 1), got {args.adam_beta1}, {args.adam_beta2}.")
    if args.evaluation_images and (args.evaluation_images < 2 or args.evaluation_images % 2 or args.resolution % 16):
        parser.error("--evaluation_images must be an even number >= 2 (MS-SSIM compares pairs), with --resolution a multiple of 16.")
    if args.evaluation_steps and not args.evaluation_images:
        parser.error("--evaluation_steps needs --evaluation_images (how many images each evaluation compares, e.g. 10000).")
    if args.inception and not args.evaluation_images:
        parser.error("--inception needs --evaluation_images (how many images FID compares; MMagic: 50000).")
    if isinstance(args.model_config_overrides, str):  # given on the command line (not the smoke run's dict)
        from hfmagic import StyleGAN2Config
        from hfmagic.models import check_config_overrides

        try:
            args.model_config_overrides = json.loads(args.model_config_overrides)
        except json.JSONDecodeError as error:
            parser.error(f"--model_config_overrides is not valid JSON: {error}")
        try:
            check_config_overrides(StyleGAN2Config, args.model_config_overrides, {"out_size": "--resolution", "in_size": "--resolution"})
        except ValueError as error:
            parser.error(f"--model_config_overrides: {error}")
    config = model_config(args, parser)
    group = config.mbstd_group_size
    if args.train_batch_size > group and args.train_batch_size % group:
        parser.error(
            f"--train_batch_size {args.train_batch_size}: the discriminator's minibatch-stddev layer groups {group} images, "
            f"so the batch per process must be <= {group} or a multiple of {group}."
        )
    for name in ("checkpointing_steps", "save_images_steps", "dataloader_num_workers", "evaluation_steps"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0 (0: off), got {getattr(args, name)}.")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        parser.error(f"--checkpoints_total_limit must be >= 1 (leave it out to keep every checkpoint), got {args.checkpoints_total_limit}.")
    if args.num_threads is not None and args.num_threads < 1:
        parser.error(f"--num_threads must be >= 1, got {args.num_threads}.")
    if args.push_to_hub and args.hub_model_id is None:
        args.hub_model_id = Path(args.output_dir).resolve().name
    return args


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the flags left at None with ``RECIPE`` (a dataset is given) or ``SMOKE_RUN`` (none is), in
    place; sets ``args.smoke_run``."""
    args.smoke_run = not (args.dataset_name or args.train_data_dir)
    for name, value in (SMOKE_RUN if args.smoke_run else RECIPE).items():
        if getattr(args, name) is None:
            setattr(args, name, dict(value) if isinstance(value, dict) else value)
    return args


def model_config(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None):
    """The ``StyleGAN2Config`` of the flags (``--resolution`` and the overrides)."""
    from hfmagic import StyleGAN2Config

    try:
        return StyleGAN2Config(out_size=args.resolution, **(args.model_config_overrides or {}))
    except (ValueError, TypeError) as error:
        if parser is None:
            raise
        parser.error(f"--resolution {args.resolution}: {error}" if "out_size" in str(error) else str(error))


def optimizer_settings(args: argparse.Namespace) -> dict:
    """Learning rates and betas of both networks after the lazy-regularisation correction."""
    from hfmagic.training import lazy_regularization_adam

    betas = (args.adam_beta1, args.adam_beta2)
    g_lr, g_betas = lazy_regularization_adam(args.learning_rate, betas, args.pl_interval if args.pl_weight else 1)
    d_lr, d_betas = lazy_regularization_adam(args.learning_rate, betas, args.r1_interval if args.r1_weight else 1)
    return {"generator_learning_rate": g_lr, "generator_adam_betas": g_betas,
            "discriminator_learning_rate": d_lr, "discriminator_adam_betas": d_betas}


def ema_momentum(args: argparse.Namespace, num_processes: int) -> float | None:
    """The EMA momentum of the flags (None without --use_ema): half-life at the global batch."""
    from hfmagic.training import ema_momentum_for_half_life

    if not args.use_ema:
        return None
    if args.ema_momentum is not None:
        return args.ema_momentum
    return ema_momentum_for_half_life(args.ema_half_life_kimg, args.train_batch_size * num_processes)


def resolve_inception(path: str | None) -> str | None:
    """A local file as is; else ``repo_id/filename`` (or ``repo_id/sub/dir/file``) downloaded from the Hub (cached)."""
    if path is None or os.path.isfile(path):
        return path
    parts = path.split("/")
    if len(parts) < 3:
        raise FileNotFoundError(
            f"--inception {path} is neither a file nor 'repo_id/filename' on the Hub; download StyleGAN2-ADA's "
            "inception-2015-12-05.pt and pass its path."
        )
    from huggingface_hub import hf_hub_download

    return hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]))


def build_dataset(args: argparse.Namespace):
    from hfmagic.data.gan_dataset import build_gan_dataset, embedded_gan_dataset

    source = args.dataset_name or args.train_data_dir
    if source is None:  # the smoke run (announced by main)
        return embedded_gan_dataset(args.resolution, 3)
    dataset = build_gan_dataset(
        source, resolution=args.resolution, num_channels=3, image_column=args.image_column, split=args.dataset_split,
        streaming=args.streaming, skip_corrupt=args.skip_corrupt_images,
    )
    if args.streaming:
        dataset.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
    return dataset


_RUN_FLAGS = (
    "output_dir", "max_train_steps", "train_batch_size", "learning_rate", "adam_beta1", "adam_beta2", "seed",
    "mixed_precision", "dataloader_num_workers", "checkpoints_total_limit", "resume_from_checkpoint",
    "num_sample_images", "evaluation_images", "logging_dir", "push_to_hub", "hub_model_id", "hub_token", "num_threads",
)
SMOKE_RUN_CARD = (
    "This is the output of the script's offline smoke run (no dataset given): it checks the training "
    "pipeline end to end and is not a useful model."
)


def main(args: argparse.Namespace) -> Path:
    """Build the StyleGAN2 and its lazily regularised GAN from the flags and train it with ``train_gan``."""
    from accelerate.utils import set_seed

    from hfmagic import StyleGAN2Discriminator, StyleGAN2Generator
    from hfmagic.logging_utils import setup_logging
    from hfmagic.training import GANTrainingArguments, LazyRegularizedGAN, create_gan_accelerator, release_accelerator, train_gan

    source = args.dataset_name or args.train_data_dir
    inception = resolve_inception(args.inception)
    training_args = GANTrainingArguments(
        **{name: getattr(args, name) for name in _RUN_FLAGS},
        **optimizer_settings(args),
        checkpointing_steps=args.checkpointing_steps or None,
        save_images_steps=args.save_images_steps or None,
        evaluation_steps=args.evaluation_steps or None,
        inception_path=inception,
        best_metric="fid" if inception else "swd_avg",
        report_to=args.report_to,
        license=None if args.license in ("", "none") else args.license,
        tracker_project_name="train_stylegan2",
        hub_private=args.hub_private,
        training_data=(Path(source).name if os.path.exists(source) else source) if source else "hfmagic embedded photos",
        dataset_names=[args.dataset_name] if args.dataset_name and not os.path.exists(args.dataset_name) else None,
        card_text=SMOKE_RUN_CARD if args.smoke_run else None,
    )
    accelerator = create_gan_accelerator(training_args)
    try:
        setup_logging(main_process=accelerator.is_local_main_process)
        logger.info("; ".join(line for line in str(accelerator.state).splitlines() if line.strip()))
        set_seed(args.seed)
        config = model_config(args)
        generator, discriminator = StyleGAN2Generator(config), StyleGAN2Discriminator(config)
        momentum = ema_momentum(args, accelerator.num_processes)
        if args.smoke_run:
            logger.info(
                f"Smoke run: no --dataset_name/--train_data_dir, so this trains a {config.out_size}x{config.out_size} StyleGAN2 "
                f"(style {config.style_channels}, widths {config.max_channels}, {config.num_mlps} mapping layers) for "
                f"{args.max_train_steps} iterations at batch {args.train_batch_size} on crops of the photos embedded in hfmagic, "
                f"to check the pipeline offline: it saves {Path(args.output_dir) / 'final'} but is not a useful model. "
                f"MMagic's recipe (config-f 256, batch 4 x 8 GPUs, lazy R1 / path length, corrected Adam) is the default with a "
                f"dataset: {RECIPE_COMMAND}"
            )
        opt = optimizer_settings(args)
        logger.info(
            "Adam G lr %.6g betas (%g, %.6g), D lr %.6g betas (%g, %.6g); R1 %g x %d every %d iterations, path length %g x %d "
            "every %d generator steps; EMA momentum %s.",
            opt["generator_learning_rate"], *opt["generator_adam_betas"], opt["discriminator_learning_rate"],
            *opt["discriminator_adam_betas"], args.r1_weight, args.r1_interval, args.r1_interval, args.pl_weight,
            args.pl_interval, args.pl_interval, f"{momentum:.6g}" if momentum else "off",
        )
        gan = LazyRegularizedGAN(
            generator, discriminator,
            r1_weight=args.r1_weight, r1_interval=args.r1_interval, pl_weight=args.pl_weight, pl_interval=args.pl_interval,
            pl_decay=args.pl_decay, pl_batch_shrink=args.pl_batch_shrink, mix_styles=not args.no_style_mixing,
            ema_momentum=momentum, ema_start=args.ema_start,
        )
        with accelerator.main_process_first():
            dataset = build_dataset(args)
        return train_gan(gan, dataset, training_args, accelerator=accelerator).final_dir
    finally:
        release_accelerator(accelerator)


def cli(argv: list[str] | None = None) -> Path:
    """The command line: a user mistake or a diverged run prints one line and exits with 1."""
    from hfmagic.errors import USER_ERRORS, report_errors, set_debug
    from hfmagic.training import TrainingDivergedError

    arguments = parse_args(argv)
    set_debug(arguments.debug)
    with report_errors("train_stylegan2.py", USER_ERRORS + (TrainingDivergedError,)):
        return main(arguments)


if __name__ == "__main__":
    cli()
