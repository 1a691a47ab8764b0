#!/usr/bin/env python
"""Train MMagic's DCGAN (or any size of it) on any HF image dataset with Accelerate.

    accelerate launch examples/train_dcgan.py --dataset_name pcuenq/lsun-bedrooms \\
        --max_train_steps 100000 --use_ema --output_dir dcgan-lsun-bedroom --push_to_hub

With a dataset the model and optimisation defaults are MMagic's DCGAN recipe: the full-size DCGAN,
64x64 images, batch 128, Adam 2e-4 with betas (0.5, 0.999) for both networks, BCE-with-logits
losses, one discriminator step per generator step. The run's length is not: ``--max_train_steps``
defaults to 1000 iterations, a first run that shows samples taking shape, where MMagic's DCGAN
configs train for hundreds of thousands (e.g. 300k on CelebA); give ``--max_train_steps`` (and
``--use_ema``, ``--evaluation_images``) for a full run, as in the command above. The loop is ``hfmagic.training.train_gan`` (MMagic's BaseGAN schedule; see its
docstring). Without ``--dataset_name``/``--train_data_dir`` it is an offline smoke run (``SMOKE_RUN``):
a small DCGAN for 300 iterations at batch 16 on crops of the photographs embedded in hfmagic, under a
minute on 2 CPU cores, which leaves ``final/`` (generator, card, samples) but not a useful model;
flags given explicitly still win.

Outputs in ``--output_dir``: ``checkpoint-<step>/`` (resumable), ``samples/step-<step>.png``
(grids of a fixed noise batch), ``logs/`` (trackers) and ``final/``: the generator (EMA weights
with ``--use_ema``) at its root, the discriminator under ``discriminator/``, the card
``README.md`` and ``samples.png``. ``--push_to_hub`` uploads exactly ``final/``. With
``--evaluation_images N --evaluation_steps K``, SWD and MS-SSIM are computed every K iterations
and ``best/`` holds the generator with the lowest SWD average (MMagic's ``save_best="swd/avg"``).

BatchNorm and several processes: each rank normalises with its own batch statistics and keeps
its own running statistics (DDP with ``broadcast_buffers=False``, MMagic's default wrapper);
the main process's are saved. ``--sync_batchnorm`` uses ``torch.nn.SyncBatchNorm`` instead
(batch statistics over all ranks, GPUs only).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
from pathlib import Path

logger = logging.getLogger("train_dcgan")

# Defaults of the flags that depend on the data (None in argparse, so that a flag given explicitly
# is told apart and always wins). With a dataset: MMagic's DCGAN recipe for the model and batch
# (REFERENCE.md, "Recipes"); the length (1000 iterations) and intervals are a short first run's, not MMagic's.
RECIPE = {
    "train_batch_size": 128,
    "max_train_steps": 1000,
    "model_config_overrides": None,  # the full-size DCGAN: base channels 1024 (G) / 128 (D)
    "checkpointing_steps": 500,
    "save_images_steps": 500,
}
# Without a dataset: the embedded photos (750 crops) cannot train a useful GAN, so the run only checks
# the whole pipeline, quickly: the full recipe would take ~17 s per iteration on 2 CPU cores (hours);
# this takes ~0.03-0.1 s per iteration (under a minute in all), and still leaves a resumable checkpoint,
# three sample grids, final/ and its card.
SMOKE_RUN = {
    "train_batch_size": 16,
    "max_train_steps": 300,
    "model_config_overrides": {"generator_base_channels": 64, "discriminator_base_channels": 16},
    "checkpointing_steps": 300,
    "save_images_steps": 100,
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` appends "(default: X)" to a flag's help, unless the help already states its default
    or there is none to state (None, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is None or action.default is False or action.default == argparse.SUPPRESS or re.search(r"\bdefault\b", text, re.I):
            return text
        return f"{text[:-1]} (default: %(default)s)." if text.endswith(".") else f"{text} (default: %(default)s)"


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a DCGAN (MMagic's BaseGAN schedule) with Accelerate.", formatter_class=DefaultsHelpFormatter
    )
    # data
    parser.add_argument("--dataset_name", default=None, help="HF dataset with an image column: Hub id (pcuenq/lsun-bedrooms), parquet file, or save_to_disk folder.")
    parser.add_argument("--train_data_dir", default=None, help="Folder of training images (loaded as an imagefolder, sub-folder labels dropped).")
    parser.add_argument("--image_column", default="image", help="Column holding the images.")
    parser.add_argument("--dataset_split", default="train", help="Split of the dataset to train on.")
    parser.add_argument("--streaming", action="store_true", help="Stream the dataset instead of downloading/caching it all (for datasets too big for the disk).")
    parser.add_argument("--shuffle_buffer_size", type=int, default=1000, help="With --streaming: rows in the shuffle buffer.")
    parser.add_argument("--skip_corrupt_images", action="store_true", help="Skip unreadable images with a warning (and a count) instead of stopping with an error naming the row.")
    parser.add_argument("--resolution", type=int, default=64, help="Side of the square training images: shorter side resized (bilinear, as MMagic), then center-cropped.")
    parser.add_argument("--num_channels", type=int, default=3, choices=[1, 3], help="3 for RGB, 1 for grayscale datasets (MNIST-like).")
    parser.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes (results do not depend on it).")
    parser.add_argument("--num_threads", type=int, default=None, help="Torch threads per process on CPU (default: the cores available to the process divided by the processes on this machine, unless OMP_NUM_THREADS is set by you; replaces accelerate launch's default of 1).")
    # model
    parser.add_argument("--model_config_overrides", default=None, help='JSON of DCGANConfig fields, e.g. \'{"generator_base_channels": 64, "discriminator_base_channels": 16}\' for a small DCGAN (default: MMagic\'s full-size DCGAN with a dataset, that small one in the no-dataset smoke run).')
    parser.add_argument("--sync_batchnorm", action="store_true", help="Use SyncBatchNorm (batch statistics over all processes; GPUs only) instead of per-process BatchNorm.")
    # schedule (MMagic BaseGAN)
    parser.add_argument("--train_batch_size", type=int, default=None, help="Real images per process per iteration (default: MMagic's 128 with a dataset, 16 in the no-dataset smoke run).")
    parser.add_argument("--max_train_steps", type=int, default=None, help="Training iterations (MMagic's max_iters); one batch and one discriminator backward each (default: 1000 with a dataset, a short first run, not MMagic's length of hundreds of thousands; 300 in the no-dataset smoke run).")
    parser.add_argument("--discriminator_steps", type=int, default=1, help="Discriminator updates per generator update.")
    parser.add_argument("--generator_steps", type=int, default=1, help="Generator updates per generator turn (on the same batch).")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=None, help="Accumulate this many micro-batches before each optimizer step of both networks (sets the two flags below; default 1).")
    parser.add_argument("--discriminator_accumulation_steps", type=int, default=None, help="Iterations whose discriminator gradients are accumulated before a step (default: --gradient_accumulation_steps).")
    parser.add_argument("--generator_accumulation_steps", type=int, default=None, help="Generator backward passes accumulated before a generator step (default: --gradient_accumulation_steps).")
    # optimisation
    parser.add_argument("--learning_rate", type=float, default=2e-4, help="Adam learning rate of both networks (MMagic: 2e-4).")
    parser.add_argument("--generator_learning_rate", type=float, default=None, help="Generator learning rate (default: --learning_rate).")
    parser.add_argument("--discriminator_learning_rate", type=float, default=None, help="Discriminator learning rate (default: --learning_rate).")
    parser.add_argument("--adam_beta1", type=float, default=0.5, help="Adam beta1 (MMagic DCGAN: 0.5).")
    parser.add_argument("--adam_beta2", type=float, default=0.999, help="Adam beta2.")
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None, help="Mixed precision (default: accelerate's config).")
    # EMA
    parser.add_argument("--use_ema", action="store_true", help="Keep an EMA generator (buffers copied), used for samples and saved as the model.")
    parser.add_argument("--ema_decay", type=float, default=None, help="EMA decay d: ema = d * ema + (1 - d) * generator, i.e. MMagic's momentum = 1 - d (default d = 0.9998, MMagic's momentum 0.0002); the first update copies, no warm-up.")
    parser.add_argument("--ema_momentum", type=float, default=None, help="The same as MMagic's momentum m = 1 - d (weight of the new weights); give this or --ema_decay.")
    parser.add_argument("--ema_start", type=int, default=0, help="The EMA starts at iteration ema_start * discriminator_steps * discriminator_accumulation_steps (before: a copy).")
    # checkpoints, samples, logging
    parser.add_argument("--output_dir", default="dcgan-output", help="Run folder: checkpoints, samples, logs and final/.")
    parser.add_argument("--checkpointing_steps", type=int, default=None, help="Save a resumable checkpoint every this many iterations; 0 = never (default: 500 with a dataset, 300 in the smoke run).")
    parser.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    parser.add_argument("--resume_from_checkpoint", default=None, help='Resume from "latest" (a fresh start if none) or a checkpoint folder/name.')
    parser.add_argument("--save_images_steps", type=int, default=None, help="Save and log a grid of fixed-noise samples every this many iterations; 0 = only at the end (default: 500 with a dataset, 100 in the smoke run).")
    parser.add_argument("--num_sample_images", type=int, default=64, help="Images in each sample grid.")
    parser.add_argument("--evaluation_images", type=int, default=0, help="At the end, compute SWD on this many real and generated images and MS-SSIM on at most 10000 of the generated ones (MMagic: --evaluation_images 16384), and put them in the card; 0 = skip.")
    parser.add_argument("--evaluation_steps", type=int, default=0, help="With --evaluation_images: also evaluate every this many iterations and keep the generator with the lowest SWD average in best/ (MMagic's save_best='swd/avg'); 0 = only at the end.")
    parser.add_argument("--logging_dir", default="logs", help="Tracker folder inside --output_dir.")
    parser.add_argument(
        "--report_to", default="auto",
        help='Tracker writing --logging_dir: "auto" = tensorboard when installed (pip install tensorboard; hfmagic does not '
        'depend on it), else none, said in one warning line; "tensorboard", "wandb", "trackio" (local; pip install trackio), ... (must be installed) or "none".',
    )
    parser.add_argument("--license", default="apache-2.0", help='License the model card declares for the trained weights (a Hub license id; "none": none). Your choice: check the training data\'s terms.')
    parser.add_argument("--seed", type=int, default=0, help="Seed of the initialisation, the data order and the noise.")
    # hub
    parser.add_argument("--push_to_hub", action="store_true", help="Upload final/ (generator, discriminator/, card, samples) at the end.")
    parser.add_argument("--hub_model_id", default=None, help="Repo to push to (default: the name of --output_dir).")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one).")
    parser.add_argument("--hub_private", action="store_true", help="Create the Hub repo private.")
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an error (also HFMAGIC_DEBUG=1); by default a mistake prints one line.")
    from hfmagic.errors import short_usage_errors

    short_usage_errors(parser)  # a bad flag: the message, not the whole usage above it
    args = parser.parse_args(input_args)

    # cross-flag checks
    if args.dataset_name and args.train_data_dir:
        parser.error("Give --dataset_name or --train_data_dir, not both.")
    if args.train_data_dir and not os.path.isdir(args.train_data_dir):
        parser.error(f"--train_data_dir {args.train_data_dir} is not a folder (a Hub dataset id goes to --dataset_name).")
    if args.output_dir and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        parser.error(f"--output_dir {args.output_dir} is a file, not a folder: pick another path.")
    if args.ema_decay is not None and args.ema_momentum is not None:
        parser.error("Give --ema_decay or --ema_momentum (= 1 - decay), not both.")
    if args.ema_decay is not None and not 0.5 <= args.ema_decay < 1.0:
        parser.error(f"--ema_decay {args.ema_decay} is the weight of the old average, in [0.5, 1) (e.g. 0.9998); for MMagic's momentum use --ema_momentum.")
    if args.ema_momentum is not None and not 0.0 < args.ema_momentum <= 1.0:
        parser.error(f"--ema_momentum must be in (0, 1], got {args.ema_momentum} (MMagic: 0.0002).")
    if (args.ema_decay is not None or args.ema_momentum is not None or args.ema_start) and not args.use_ema:
        parser.error("--ema_decay/--ema_momentum/--ema_start need --use_ema.")
    # diffusers' --gradient_accumulation_steps: the same accumulation for both networks unless set apiece
    if args.gradient_accumulation_steps is not None and args.gradient_accumulation_steps < 1:
        parser.error(f"--gradient_accumulation_steps must be >= 1, got {args.gradient_accumulation_steps}.")
    for name in ("discriminator_accumulation_steps", "generator_accumulation_steps"):
        if getattr(args, name) is None:
            setattr(args, name, 1 if args.gradient_accumulation_steps is None else args.gradient_accumulation_steps)
    resolve_defaults(args)
    for name in ("train_batch_size", "max_train_steps", "discriminator_steps", "generator_steps",
                 "discriminator_accumulation_steps", "generator_accumulation_steps", "num_sample_images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    if args.checkpointing_steps and args.checkpointing_steps % args.discriminator_accumulation_steps:
        parser.error("--checkpointing_steps must be a multiple of --discriminator_accumulation_steps (no pending gradients in a checkpoint).")
    if args.evaluation_images and (args.evaluation_images < 2 or args.evaluation_images % 2 or args.resolution % 16):
        parser.error("--evaluation_images must be an even number >= 2 (MS-SSIM compares pairs), with --resolution a multiple of 16.")
    if args.evaluation_steps and not args.evaluation_images:
        parser.error("--evaluation_steps needs --evaluation_images (how many images each evaluation compares, e.g. 2048).")
    if isinstance(args.model_config_overrides, str):  # given on the command line (not the smoke run's dict)
        from hfmagic import DCGANConfig
        from hfmagic.models import check_config_overrides

        try:
            args.model_config_overrides = json.loads(args.model_config_overrides)
        except json.JSONDecodeError as error:
            parser.error(f"--model_config_overrides is not valid JSON: {error}")
        try:
            check_config_overrides(DCGANConfig, args.model_config_overrides, {"image_size": "--resolution", "num_channels": "--num_channels"})
        except ValueError as error:
            parser.error(f"--model_config_overrides: {error}")
    from hfmagic import DCGANConfig

    try:  # --resolution, --num_channels and the overrides' values, before the run starts
        DCGANConfig(image_size=args.resolution, num_channels=args.num_channels, **(args.model_config_overrides or {}))
    except (ValueError, TypeError) as error:
        parser.error(f"--resolution {args.resolution}: {error}" if "image_size" in str(error) else str(error))
    for name in ("learning_rate", "generator_learning_rate", "discriminator_learning_rate"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0, got {getattr(args, name)}.")
    for name in ("checkpointing_steps", "save_images_steps", "dataloader_num_workers", "evaluation_steps"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0 (0: off), got {getattr(args, name)}.")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        parser.error(f"--checkpoints_total_limit must be >= 1 (leave it out to keep every checkpoint), got {args.checkpoints_total_limit}.")
    if args.num_threads is not None and args.num_threads < 1:
        parser.error(f"--num_threads must be >= 1 (leave it out for one share of the cores per process), got {args.num_threads}.")
    if args.push_to_hub and args.hub_model_id is None:
        args.hub_model_id = Path(args.output_dir).resolve().name
    return args


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the flags left at None with ``RECIPE`` (a dataset is given) or ``SMOKE_RUN`` (none is), in
    place; sets ``args.smoke_run``. A default checkpoint interval is rounded up to a multiple of the
    discriminator's accumulation (a checkpoint never holds pending gradients)."""
    args.smoke_run = not (args.dataset_name or args.train_data_dir)
    defaults = SMOKE_RUN if args.smoke_run else RECIPE
    for name, value in defaults.items():
        if getattr(args, name) is not None:
            continue
        if name == "checkpointing_steps":
            accumulation = max(1, args.discriminator_accumulation_steps)  # < 1 is rejected after this
            value = math.ceil(value / accumulation) * accumulation
        setattr(args, name, dict(value) if isinstance(value, dict) else value)
    return args


# Flags that are GANTrainingArguments fields of the same name and meaning.
_RUN_FLAGS = (
    "output_dir", "max_train_steps", "train_batch_size", "learning_rate", "adam_beta1", "adam_beta2", "seed",
    "mixed_precision", "dataloader_num_workers", "checkpoints_total_limit", "resume_from_checkpoint",
    "num_sample_images", "evaluation_images", "logging_dir", "push_to_hub", "hub_model_id", "hub_token", "num_threads",
)
SMOKE_RUN_CARD = (
    "This is the output of the script's offline smoke run (no dataset given): it checks the training "
    "pipeline end to end and is not a useful model."
)


def ema_momentum(args: argparse.Namespace) -> float | None:
    """MMagic's EMA momentum from the flags (None without --use_ema)."""
    if not args.use_ema:
        return None
    if args.ema_momentum is not None:
        return args.ema_momentum
    return 1.0 - args.ema_decay if args.ema_decay is not None else 0.0002


def build_dataset(args: argparse.Namespace):
    from hfmagic.data.gan_dataset import build_gan_dataset, embedded_gan_dataset

    source = args.dataset_name or args.train_data_dir
    if source is None:  # the smoke run (announced by _train)
        return embedded_gan_dataset(args.resolution, args.num_channels)
    dataset = build_gan_dataset(
        source,
        resolution=args.resolution,
        num_channels=args.num_channels,
        image_column=args.image_column,
        split=args.dataset_split,
        streaming=args.streaming,
        skip_corrupt=args.skip_corrupt_images,
    )
    if args.streaming:
        dataset.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
    return dataset


def main(args: argparse.Namespace) -> Path:
    """Build the DCGAN and its GAN schedule from the flags and train it with ``hfmagic.training.train_gan``."""
    import torch
    from accelerate.utils import set_seed

    from hfmagic import DCGANConfig, DCGANDiscriminator, DCGANGenerator
    from hfmagic.logging_utils import setup_logging
    from hfmagic.training import GAN, GANTrainingArguments, create_gan_accelerator, release_accelerator, train_gan

    # the run's settings (optimizers, data loading, checkpoints, evaluation, trackers, Hub)
    source = args.dataset_name or args.train_data_dir
    training_args = GANTrainingArguments(
        **{name: getattr(args, name) for name in _RUN_FLAGS},
        generator_learning_rate=args.generator_learning_rate,
        discriminator_learning_rate=args.discriminator_learning_rate,
        checkpointing_steps=args.checkpointing_steps or None,
        save_images_steps=args.save_images_steps or None,
        evaluation_steps=args.evaluation_steps or None,
        report_to=args.report_to,
        license=None if args.license in ("", "none") else args.license,
        tracker_project_name="train_dcgan",
        hub_private=args.hub_private,
        # the card names a local folder or file by its name, not by a path of this machine
        training_data=(Path(source).name if os.path.exists(source) else source) if source else "hfmagic embedded photos",
        dataset_names=[args.dataset_name] if args.dataset_name and not os.path.exists(args.dataset_name) else None,
        card_text=SMOKE_RUN_CARD if args.smoke_run else None,
    )
    accelerator = create_gan_accelerator(training_args)
    try:
        # the same log format as train_sr.py; progress a line every 30 s off a terminal
        setup_logging(main_process=accelerator.is_local_main_process)
        logger.info("; ".join(line for line in str(accelerator.state).splitlines() if line.strip()))  # one line

        # model: MMagic's DCGAN (sizes from the flags, seeded init), per-rank or synchronised BatchNorm
        set_seed(args.seed)
        config = DCGANConfig(image_size=args.resolution, num_channels=args.num_channels, **(args.model_config_overrides or {}))
        generator, discriminator = DCGANGenerator(config), DCGANDiscriminator(config)
        if args.smoke_run:
            logger.info(
                f"Smoke run: no --dataset_name/--train_data_dir, so this trains a DCGAN with base channels "
                f"{config.generator_base_channels} (G) / {config.discriminator_base_channels} (D) for {args.max_train_steps} "
                f"iterations at batch {args.train_batch_size} on crops of the photos embedded in hfmagic, to check the "
                f"pipeline offline: it saves {Path(args.output_dir) / 'final'} (generator, card, samples.png) but is not a "
                f"useful model. MMagic's recipe (full-size DCGAN, batch 128, Adam 2e-4 betas (0.5, 0.999)) is the default "
                f"with a dataset: accelerate launch examples/train_dcgan.py --dataset_name pcuenq/lsun-bedrooms "
                f"--max_train_steps 100000 --use_ema"
            )
        if args.sync_batchnorm:
            if accelerator.device.type == "cpu" and accelerator.num_processes > 1:
                raise ValueError("--sync_batchnorm needs GPUs (torch's SyncBatchNorm does not run on CPU); drop the flag.")
            generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(generator)
            discriminator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(discriminator)

        # MMagic's BaseGAN schedule, with the EMA generator
        gan = GAN(
            generator,
            discriminator,
            discriminator_steps=args.discriminator_steps,
            generator_steps=args.generator_steps,
            discriminator_accumulation_steps=args.discriminator_accumulation_steps,
            generator_accumulation_steps=args.generator_accumulation_steps,
            ema_momentum=ema_momentum(args),
            ema_start=args.ema_start,
        )
        with accelerator.main_process_first():
            dataset = build_dataset(args)
        return train_gan(gan, dataset, training_args, accelerator=accelerator).final_dir
    finally:
        # end the trackers and forget accelerate's process-wide state, also after an error, so that a later
        # run in the same process (a notebook, a test) may use another --mixed_precision
        release_accelerator(accelerator)


def cli(argv: list[str] | None = None) -> Path:
    """The command line: a user mistake (flags, paths, data, an offline Hub id) or a diverged run
    prints one line and exits with 1, not a traceback (``--debug`` / ``HFMAGIC_DEBUG=1`` show it)."""
    from hfmagic.errors import USER_ERRORS, report_errors, set_debug
    from hfmagic.training import TrainingDivergedError

    arguments = parse_args(argv)
    set_debug(arguments.debug)
    with report_errors("train_dcgan.py", USER_ERRORS + (TrainingDivergedError,)):
        return main(arguments)


if __name__ == "__main__":
    cli()
