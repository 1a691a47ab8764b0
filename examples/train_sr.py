"""Train a super-resolution model (SRCNN, MSRResNet, EDSR, or a fine-tuned checkpoint) with MMagic's recipe.

    accelerate launch examples/train_sr.py --model msrresnet --scale 4 --train_data_dir DIV2K_sub/ \\
        --validation_dataset Set5 Set14 --output_dir msrresnet-x4

The training defaults (batch 16, steps, learning rate and schedule, patch size, validation and
checkpoint intervals) are MMagic's recipe for the chosen ``--model`` (see ``RECIPES``); MMagic's
training data (DIV2K sub-images) and validation sets (Set5, Set14) are yours to give. With neither
``--dataset_name`` nor ``--train_data_dir`` the script trains on the photographs embedded in
hfmagic (``hfmagic/assets``) and validates on the embedded validation photo, so it runs with no
network. The loop itself is ``hfmagic.training.train_sr``.

``final/`` and ``best/`` hold the model and its card: validation PSNR/SSIM next to plain bicubic
upscaling's on the same images, and the gain; the license the card declares is ``--license``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
from pathlib import Path

from accelerate.utils import set_seed

import hfmagic.models  # noqa: F401  (registers the architectures with the Auto classes)
from hfmagic import EDSR, SRCNN, EDSRConfig, MSRResNet, MSRResNetConfig, SRCNNConfig
from hfmagic.logging_utils import format_metrics, setup_logging
from hfmagic.errors import USER_ERRORS, check_model_source, report_errors, set_debug, short_usage_errors
from hfmagic.models import check_config_overrides
from hfmagic.training import SRTrainingArguments, TrainingDivergedError, create_accelerator, release_accelerator, train_sr
from hfmagic.training.schedulers import SCHEDULER_NAMES

logger = logging.getLogger("train_sr")

# --model -> class, config and MMagic's recipe (REFERENCE.md, "Recipes"). gt_patch_size is per scale.
RECIPES = {
    "msrresnet": {
        "model_class": MSRResNet,
        "config_class": MSRResNetConfig,
        "gt_patch_size": {2: 128, 3: 129, 4: 128},
        "learning_rate": 2e-4,
        "lr_scheduler": "cosine_restart",  # 4 equal periods (4 x 250k at 1M steps), eta_min 1e-7
        "lr_period": 250_000,  # one cosine cycle of the recipe (see learning_rate_schedule)
        "lr_eta_min": 1e-7,
        "lr_milestones": None,
        "max_train_steps": 1_000_000,
    },
    "srcnn": {
        "model_class": SRCNN,
        "config_class": SRCNNConfig,
        "gt_patch_size": {2: 128, 3: 129, 4: 128},
        "learning_rate": 2e-4,
        "lr_scheduler": "cosine_restart",
        "lr_period": 250_000,
        "lr_eta_min": 1e-7,
        "lr_milestones": None,
        "max_train_steps": 1_000_000,
    },
    "edsr": {
        "model_class": EDSR,
        "config_class": EDSRConfig,
        "gt_patch_size": {2: 96, 3: 144, 4: 196},
        "learning_rate": 1e-4,
        "lr_scheduler": "multistep",  # x0.5 at 200k
        "lr_period": None,
        "lr_eta_min": 0.0,
        "lr_milestones": [200_000],
        "max_train_steps": 300_000,
    },
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` appends "(default: X)" to a flag's help, unless the help already states its default
    or there is none to state (None, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is None or action.default is False or action.default == argparse.SUPPRESS or re.search(r"\bdefault\b", text, re.I):
            return text
        return f"{text[:-1]} (default: %(default)s)." if text.endswith(".") else f"{text} (default: %(default)s)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a super-resolution model with MMagic's recipe on Accelerate.", formatter_class=DefaultsHelpFormatter
    )
    # model
    parser.add_argument("--model", choices=sorted(RECIPES), default="msrresnet", help="Architecture to train from scratch (its MMagic recipe sets the defaults below).")
    parser.add_argument("--model_name_or_path", default=None, help="Fine-tune this hfmagic SR model (Hub id or folder) instead of building --model.")
    parser.add_argument("--model_config_overrides", default=None, help='JSON of config fields for --model, e.g. \'{"mid_channels": 32, "num_blocks": 4}\' for a small MSRResNet.')
    parser.add_argument("--scale", type=int, default=None, help="Upscale factor (2, 3, 4); default 4, or the fine-tuned model's.")
    # data
    parser.add_argument("--dataset_name", default=None, help="HF dataset (Hub id, parquet file, save_to_disk folder) with an image column of HR images.")
    parser.add_argument("--train_data_dir", default=None, help="Folder of HR images (an imagefolder). Without it and --dataset_name, the embedded photos are used.")
    parser.add_argument("--image_column", default="image", help="Column holding the HR images.")
    parser.add_argument("--lr_column", default=None, help="Column holding ready-made LR images (default: made from HR with MATLAB bicubic).")
    parser.add_argument("--skip_small_images", action="store_true", help="Skip (with a warning) images smaller than --gt_patch_size instead of failing.")
    parser.add_argument("--validation_dataset", nargs="+", default=None, help="Validation sets: Set5, Set14, BSD100, Urban100, a DIV2K validation folder or any folder of HR images.")
    parser.add_argument("--gt_patch_size", type=int, default=None, help="HR training patch size (default: the recipe's, 128 for MSRResNet/SRCNN (129 at x3), 96/144/196 for EDSR x2/x3/x4).")
    parser.add_argument("--dataloader_num_workers", type=int, default=2, help="DataLoader worker processes (results do not depend on it; 0: load in the main process).")
    parser.add_argument("--num_threads", type=int, default=None, help="Torch threads per process on CPU (default: the cores available to the process divided by the processes on this machine, unless OMP_NUM_THREADS is set by you; replaces accelerate launch's default of 1).")
    parser.add_argument("--data_on_device", action="store_true", help="Hold the training images in accelerator memory (hfmagic.data.DeviceSRData) and cut, degrade and augment every batch there instead of in DataLoader workers: for GPUs that workers cannot keep fed. The images must fit in device memory (DIV2K sub-images: ~24 GB).")
    # optimisation
    parser.add_argument("--train_batch_size", type=int, default=16, help="Batch size per process (MMagic: 16).")
    parser.add_argument("--max_train_steps", type=int, default=None, help="Total optimisation steps (default: the recipe's, 1M for MSRResNet/SRCNN, 300k for EDSR).")
    parser.add_argument("--learning_rate", type=float, default=None, help="Peak learning rate of Adam (default: the recipe's, 2e-4, EDSR 1e-4).")
    parser.add_argument("--adam_beta1", type=float, default=0.9, help="Adam beta1.")
    parser.add_argument("--adam_beta2", type=float, default=0.999, help="Adam beta2.")
    parser.add_argument("--adam_weight_decay", type=float, default=0.0, help="Adam weight decay.")
    parser.add_argument("--adam_epsilon", type=float, default=1e-8, help="Adam epsilon.")
    parser.add_argument("--lr_scheduler", choices=SCHEDULER_NAMES, default=None, help="Schedule (default: the recipe's, cosine_restart, 4 equal cycles over --max_train_steps; a run shorter than one of the recipe's cycles (250k steps for MSRResNet/SRCNN) gets a single cosine cycle instead, no restarts; EDSR multistep); or any of transformers' schedules. Given explicitly, it is used as is.")
    parser.add_argument("--lr_warmup_steps", type=int, default=0, help="Warm-up steps (transformers' schedules).")
    parser.add_argument("--lr_periods", type=int, nargs="+", default=None, help="cosine_restart cycle lengths (default: 4 equal cycles over --max_train_steps, or one cycle for a run shorter than the recipe's cycle).")
    parser.add_argument("--lr_restart_weights", type=float, nargs="+", default=None, help="cosine_restart peak of each cycle (default: 1 each).")
    parser.add_argument("--lr_eta_min", type=float, default=None, help="Floor of cosine_restart (default: the recipe's, 1e-7; EDSR's multistep has none).")
    parser.add_argument("--lr_milestones", type=int, nargs="+", default=None, help="multistep: steps where the learning rate is multiplied by --lr_gamma (EDSR: 200000 of 300000, scaled to a shorter --max_train_steps).")
    parser.add_argument("--lr_gamma", type=float, default=0.5, help="multistep factor.")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per optimisation step.")
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None, help="Mixed precision (default: accelerate's config).")
    parser.add_argument("--max_grad_norm", type=float, default=None, help="Clip the gradient norm to this (default: no clipping, as MMagic).")
    parser.add_argument("--use_ema", action="store_true", help="Keep an EMA of the weights (buffers copied) and save it as the model.")
    parser.add_argument("--ema_momentum", type=float, default=0.001, help="EMA momentum: weight of the new weights (MMagic's SR configs: 0.001).")
    # validation, checkpoints, logging
    parser.add_argument("--validation_steps", type=int, default=5000, help="Validate every this many steps (MMagic: 5000); 0 = only at the end.")
    parser.add_argument("--crop_border", type=int, default=None, help="Pixels cropped from each side for PSNR/SSIM (default: the scale).")
    parser.add_argument("--y_channel", action="store_true", help="Validation PSNR/SSIM on the Y channel (default RGB, as MMagic's tables).")
    parser.add_argument("--checkpointing_steps", type=int, default=5000, help="Save a resumable checkpoint every this many steps; 0 = never.")
    parser.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    parser.add_argument("--resume_from_checkpoint", default=None, help='Resume from "latest" or a checkpoint folder/name.')
    parser.add_argument("--output_dir", default=None, help="Run folder (default sr-<model>-x<scale>): checkpoints, logs, best/ and final/ models.")
    parser.add_argument("--logging_dir", default="logs", help="Tracker folder inside --output_dir.")
    parser.add_argument(
        "--report_to", default="auto",
        help='Tracker writing --logging_dir: "auto" = tensorboard when installed (pip install tensorboard; hfmagic does not '
        'depend on it), else none, said in one warning line; "tensorboard", "wandb", "trackio" (local; pip install trackio), ... (must be installed) or "none".',
    )
    parser.add_argument("--license", default="apache-2.0", help='License the model card declares for the trained weights (a Hub license id; "none": none). Your choice: check the training data\'s terms (DIV2K is for academic research only).')
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data order, augmentation and initialisation.")
    # hub
    parser.add_argument("--push_to_hub", action="store_true", help="Upload final/ (model, config, card; not checkpoints or logs) at the end.")
    parser.add_argument("--hub_model_id", default=None, help="Repo to push to (default: the name of --output_dir).")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one).")
    parser.add_argument("--hub_private", action="store_true", help="Create the Hub repo private.")
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an error (also HFMAGIC_DEBUG=1); by default a mistake prints one line.")
    short_usage_errors(parser)  # a bad flag: the message, not 38 lines of usage above it
    args = parser.parse_args(argv)

    if args.dataset_name and args.train_data_dir:
        parser.error("give either --dataset_name or --train_data_dir, not both.")
    if args.train_data_dir and not os.path.isdir(args.train_data_dir):
        parser.error(f"--train_data_dir {args.train_data_dir} is not a folder (a Hub dataset id goes to --dataset_name).")
    if args.output_dir and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        parser.error(f"--output_dir {args.output_dir} is a file, not a folder: pick another path.")
    if args.data_on_device and args.lr_column:
        parser.error("--data_on_device makes the LR images itself (MATLAB bicubic on the device); drop --lr_column or --data_on_device.")
    if args.model_config_overrides and args.model_name_or_path:
        parser.error("--model_config_overrides applies to --model; a fine-tuned model keeps its config.")
    if args.model_config_overrides:
        try:
            args.model_config_overrides = json.loads(args.model_config_overrides)
        except json.JSONDecodeError as err:
            parser.error(f"--model_config_overrides is not valid JSON ({err}); e.g. '{{\"num_blocks\": 4}}'.")
        try:
            check_config_overrides(RECIPES[args.model]["config_class"], args.model_config_overrides, {"upscale_factor": "--scale"})
        except ValueError as err:
            parser.error(f"--model_config_overrides: {err}")
    if args.model_name_or_path:
        try:  # an MMagic checkpoint file or a folder without config.json: say so before anything starts
            check_model_source(args.model_name_or_path, "--model_name_or_path")
        except ValueError as err:
            parser.error(str(err))
    else:
        try:  # --scale (and the overrides' values) against what the architecture supports, before the run starts
            RECIPES[args.model]["config_class"](upscale_factor=args.scale or 4, **(args.model_config_overrides or {}))
        except (ValueError, TypeError) as err:
            parser.error(f"--model {args.model} --scale {args.scale or 4}: {err}")
    if args.num_threads is not None and args.num_threads < 1:
        parser.error(f"--num_threads must be >= 1 (leave it out for one share of the cores per process), got {args.num_threads}.")
    for name in ("max_train_steps", "learning_rate"):  # None means "the recipe's"; 0 is an error, not a default
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0, got {getattr(args, name)}.")
    if args.hub_token is None:
        args.hub_token = os.environ.get("HF_TOKEN")
    return args


def load_recipe(args: argparse.Namespace) -> tuple[dict, int]:
    """MMagic's recipe for the model to train, and its upscale factor."""
    if args.model_name_or_path:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(args.model_name_or_path)
        if args.scale is not None and args.scale != config.upscale_factor:
            raise ValueError(
                f"--scale {args.scale} differs from {args.model_name_or_path}'s upscale_factor "
                f"{config.upscale_factor}; drop --scale or fine-tune a x{args.scale} model."
            )
        return RECIPES.get(config.model_type, RECIPES["msrresnet"]), config.upscale_factor
    return RECIPES[args.model], args.scale or 4


def build_model(args: argparse.Namespace, recipe: dict, scale: int):
    """The model to train: ``--model_name_or_path`` loaded, or ``--model`` built from its config class."""
    if args.model_name_or_path:
        from transformers import AutoModelForImageToImage

        return AutoModelForImageToImage.from_pretrained(args.model_name_or_path)
    config = recipe["config_class"](upscale_factor=scale, **(args.model_config_overrides or {}))
    return recipe["model_class"](config)


def learning_rate_schedule(args: argparse.Namespace, recipe: dict, steps: int) -> tuple[str, list[int] | None, str | None]:
    """The schedule's name and ``cosine_restart`` periods for a run of ``steps`` steps, and a line to log
    when a short run departs from the recipe's shape (else None).

    MMagic restarts the cosine every 250k of 1M steps. Scaled down to a short run, the four cycles would
    be a few dozen (or thousand) steps each: restarts that stand for nothing in the recipe. So a run
    shorter than one of the recipe's cycles gets one cosine cycle over the whole run (the recipe's peak
    and eta_min, no restart), the shape of one of MMagic's cycles. Measured on the embedded photos
    (docs/training_sr.md, "Shorter runs"): one cycle and 4 scaled cycles end within ~0.05 dB of each other at
    150-1200 steps; a constant rate does better below ~600 steps and worse from there, so it stays one
    flag away. Runs of at least one recipe cycle keep the 4 scaled cycles; an explicit
    ``--lr_scheduler``, ``--lr_periods`` or ``--lr_restart_weights`` is used as given.
    """
    name = args.lr_scheduler or recipe["lr_scheduler"]
    period = recipe.get("lr_period")
    recipe_restarts = name == "cosine_restart" and args.lr_scheduler is None and not args.lr_periods and not args.lr_restart_weights
    if recipe_restarts and period and steps < period:
        note = (
            f"--max_train_steps {steps} is shorter than one cosine cycle of the recipe ({period} steps): one cosine "
            f"cycle over the run instead of 4 restarts (give --lr_scheduler cosine_restart for the recipe's 4 scaled cycles)."
        )
        return name, [steps], note
    return name, args.lr_periods, None


def training_arguments(args: argparse.Namespace, recipe: dict, scale: int) -> SRTrainingArguments:
    """The library's settings: the flags, with the recipe's values where a flag was not given."""
    name = args.model_name_or_path and Path(args.model_name_or_path).name or args.model
    steps = recipe["max_train_steps"] if args.max_train_steps is None else args.max_train_steps
    lr_scheduler, lr_periods, _ = learning_rate_schedule(args, recipe, steps)
    return SRTrainingArguments(
        output_dir=args.output_dir or f"sr-{name}-x{scale}",
        train_batch_size=args.train_batch_size,
        max_train_steps=steps,
        learning_rate=recipe["learning_rate"] if args.learning_rate is None else args.learning_rate,
        adam_beta1=args.adam_beta1,
        adam_beta2=args.adam_beta2,
        adam_epsilon=args.adam_epsilon,
        adam_weight_decay=args.adam_weight_decay,
        lr_scheduler=lr_scheduler,
        lr_warmup_steps=args.lr_warmup_steps,
        lr_periods=lr_periods,
        lr_restart_weights=args.lr_restart_weights,
        lr_eta_min=recipe["lr_eta_min"] if args.lr_eta_min is None else args.lr_eta_min,
        # EDSR's milestone 200k of 300k steps, scaled when --max_train_steps is shorter
        lr_milestones=args.lr_milestones
        or (
            [max(1, math.floor(m * steps / recipe["max_train_steps"])) for m in recipe["lr_milestones"]]
            if recipe["lr_milestones"] and lr_scheduler == "multistep"
            else None
        ),
        lr_gamma=args.lr_gamma,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        max_grad_norm=args.max_grad_norm,
        use_ema=args.use_ema,
        ema_momentum=args.ema_momentum,
        validation_steps=args.validation_steps,
        checkpointing_steps=args.checkpointing_steps,
        checkpoints_total_limit=args.checkpoints_total_limit,
        resume_from_checkpoint=args.resume_from_checkpoint,
        report_to=args.report_to,
        license=None if args.license in ("", "none") else args.license,
        logging_dir=args.logging_dir,
        seed=args.seed,
        dataloader_num_workers=args.dataloader_num_workers,
        num_threads=args.num_threads,
        crop_border=args.crop_border,
        y_channel=args.y_channel,
        push_to_hub=args.push_to_hub,
        hub_model_id=args.hub_model_id,
        hub_token=args.hub_token,
        hub_private=args.hub_private or None,
    )


def main(args: argparse.Namespace):
    recipe, scale = load_recipe(args)
    training_args = training_arguments(args, recipe, scale)

    # Accelerator
    accelerator = create_accelerator(training_args)

    # Logging: INFO on the main process, errors only elsewhere; progress a line every 30 s off a terminal
    setup_logging(main_process=accelerator.is_local_main_process)
    logger.info("; ".join(line for line in str(accelerator.state).splitlines() if line.strip()))  # one line
    schedule_note = learning_rate_schedule(args, recipe, training_args.max_train_steps)[2]
    if schedule_note:
        logger.info(schedule_note)

    # Model (seeded: the same initial weights on every rank and every run)
    set_seed(args.seed)
    model = build_model(args, recipe, scale)

    # Dataset (built on the main process first, so that the datasets cache is written once)
    from hfmagic.data.embedded import embedded_sr_train_dir, embedded_sr_validation_dir
    from hfmagic.data.sr_dataset import build_sr_dataset

    source = args.dataset_name or args.train_data_dir
    validation = {item: Path(item).name if os.path.exists(item) else item for item in args.validation_dataset or []}
    # the card's YAML/links name Hub datasets only; local data is named in its text
    if source and os.path.exists(source):
        training_args.training_data = f"local images `{Path(source).name}`"
    elif source:
        training_args.dataset_names = [source]
    if source is None:
        source = str(embedded_sr_train_dir())
        validation = validation or {str(embedded_sr_validation_dir()): "hfmagic-embedded-validation"}
        training_args.training_data = "hfmagic's embedded photos (a smoke run)"
        logger.info("No --dataset_name/--train_data_dir: training on hfmagic's embedded photos (%s).", source)
    elif not validation:
        logger.warning(
            "No --validation_dataset: the run is not validated and keeps no best/ model (MMagic's recipe validates "
            "on Set5 and Set14: --validation_dataset Set5 Set14)."
        )
    gt_patch_size = args.gt_patch_size or recipe["gt_patch_size"].get(scale, 32 * scale)
    common = dict(scale=scale, gt_patch_size=gt_patch_size, image_column=args.image_column, skip_small=args.skip_small_images)
    with accelerator.main_process_first():
        if args.data_on_device:
            from hfmagic.data import DeviceSRData

            # every process decodes all images into its own device's memory
            train_dataset = DeviceSRData.from_source(source, device=accelerator.device, **common)
            logger.info("Training images on %s: %.1f MB.", accelerator.device, train_dataset.memory_bytes() / 2**20)
        else:
            # no `seed` here: train_sr seeds every sample's crop and flips from (seed, position)
            # check_sizes: an image smaller than the patch is named now, not at the first batch in a run folder
            train_dataset = build_sr_dataset(source, lr_column=args.lr_column, check_sizes=True, **common)
    eval_sets = {}
    if validation and accelerator.is_main_process:  # validation runs on the main process only
        from hfmagic.data import load_eval_set

        for item, set_name in validation.items():
            eval_sets[set_name] = load_eval_set(item, scale)

    # Training
    try:
        result = train_sr(model, train_dataset, training_args, eval_sets or None, accelerator=accelerator)
    finally:
        release_accelerator(accelerator)
    if accelerator.is_main_process:
        logger.info("Saved the final model to %s%s", result.final_dir, f" and the best to {result.best_dir}" if result.best_dir else "")
        if result.final_metrics:
            logger.info("Final validation: %s", format_metrics(result.final_metrics))
        if result.samples_per_second:
            logger.info("Throughput: %.2f samples/s", result.samples_per_second)
    return result


def cli(argv: list[str] | None = None):
    """The command line: a user mistake (flags, paths, data, models, an offline Hub id) or a diverged
    run prints one line and exits with 1, not a traceback (``--debug`` / ``HFMAGIC_DEBUG=1`` show it)."""
    arguments = parse_args(argv)
    set_debug(arguments.debug)
    with report_errors("train_sr.py", USER_ERRORS + (TrainingDivergedError,)):
        return main(arguments)


if __name__ == "__main__":
    cli()
