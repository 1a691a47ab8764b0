"""Adversarial super-resolution training (ESRGAN, SRGAN, Real-ESRGAN's losses) with MMagic's recipes.

    accelerate launch examples/train_esrgan.py --model rrdbnet --pretrained_generator me/rrdbnet-psnr-x4 \\
        --train_data_dir DIV2K_sub/ --validation_dataset Set5 Set14 --output_dir esrgan-x4

``--recipe`` picks MMagic's losses and schedule (see ``RECIPES``): ``esrgan`` (the default for
``--model rrdbnet``: L1 x1e-2, VGG19 conv5_4 perceptual x1, relativistic vanilla GAN x5e-3,
``ModifiedVGGDiscriminator``), ``srgan`` (the default for ``--model msrresnet``: the same with the
plain GAN terms) and ``real-esrgan`` (L1 x1, five VGG layers, GAN x0.1, the U-Net discriminator with
spectral norm, EMA 0.999). The generator starts from ``--pretrained_generator`` (a PSNR-trained model,
as MMagic's recipes do), else from scratch. The degradation is bicubic (MMagic's ESRGAN recipe):
Real-ESRGAN's second-order degradation pipeline is not part of hfmagic yet.

The perceptual loss needs ImageNet VGG19 weights: ``timm/vgg19.tv_in1k`` from the Hub (cached after
the first run), or ``--vgg_model_name_or_path`` a local folder or ``.safetensors``/``.pth`` file for
offline machines. With neither ``--dataset_name`` nor ``--train_data_dir`` the script makes a short
smoke run on hfmagic's embedded photos with a small generator. The loop is
``hfmagic.training.train_srgan`` (``train_sr``'s loop with MMagic's ``SRGAN.train_step``).
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
from hfmagic import (
    MSRResNet,
    MSRResNetConfig,
    ModifiedVGGConfig,
    ModifiedVGGDiscriminator,
    RRDBNet,
    RRDBNetConfig,
    SRVGGNetCompact,
    SRVGGNetCompactConfig,
    UNetDiscriminatorSN,
    UNetDiscriminatorSNConfig,
)
from hfmagic.errors import USER_ERRORS, check_model_source, report_errors, set_debug, short_usage_errors
from hfmagic.logging_utils import format_metrics, setup_logging
from hfmagic.losses import DEFAULT_VGG_WEIGHTS
from hfmagic.models import check_config_overrides
from hfmagic.training import SRGAN, SRGANTrainingArguments, TrainingDivergedError, create_srgan_accelerator, release_accelerator, train_srgan

logger = logging.getLogger("train_esrgan")

# --model -> generator class and config; --discriminator -> discriminator class and config
GENERATORS = {
    "rrdbnet": (RRDBNet, RRDBNetConfig),
    "msrresnet": (MSRResNet, MSRResNetConfig),
    "srvggnet_compact": (SRVGGNetCompact, SRVGGNetCompactConfig),
}
DISCRIMINATORS = {
    "modified_vgg": (ModifiedVGGDiscriminator, ModifiedVGGConfig),
    "unet_sn": (UNetDiscriminatorSN, UNetDiscriminatorSNConfig),
}
DEFAULT_RECIPE = {"rrdbnet": "esrgan", "msrresnet": "srgan", "srvggnet_compact": "real-esrgan"}

# MMagic 1.2's configs (REFERENCE.md, "ESRGAN family"): esrgan_x4c64b23g32_1xb16-400k_div2k,
# srgan_c64b16_1xb16-1000k_div2k (its losses; the schedule as ESRGAN's), realesrgan_c64b23g32_4xb12-lr1e-4-400k_df2k-ost.
RECIPES = {
    "esrgan": {
        "discriminator": "modified_vgg",
        "pixel_weight": 1e-2,
        "perceptual_layers": {"34": 1.0},
        "perceptual_weight": 1.0,
        "gan_type": "vanilla",
        "gan_weight": 5e-3,
        "relativistic": True,
        "learning_rate": 1e-4,
        "adam_beta2": 0.999,
        "lr_milestones": [50_000, 100_000, 200_000, 300_000],
        "max_train_steps": 400_000,
        "gt_patch_size": 128,
        "ema": False,
    },
    "srgan": {
        "discriminator": "modified_vgg",
        "pixel_weight": 1e-2,
        "perceptual_layers": {"34": 1.0},
        "perceptual_weight": 1.0,
        "gan_type": "vanilla",
        "gan_weight": 5e-3,
        "relativistic": False,
        "learning_rate": 1e-4,
        "adam_beta2": 0.999,
        "lr_milestones": [50_000, 100_000, 200_000, 300_000],
        "max_train_steps": 400_000,
        "gt_patch_size": 128,
        "ema": False,
    },
    "real-esrgan": {
        "discriminator": "unet_sn",
        "pixel_weight": 1.0,
        "perceptual_layers": {"2": 0.1, "7": 0.1, "16": 1.0, "25": 1.0, "34": 1.0},
        "perceptual_weight": 1.0,
        "gan_type": "vanilla",
        "gan_weight": 1e-1,
        "relativistic": False,
        "learning_rate": 1e-4,
        "adam_beta2": 0.99,
        "lr_milestones": [400_000],  # MultiStepLR at the last step: constant
        "max_train_steps": 400_000,
        "gt_patch_size": 256,
        "ema": True,
    },
}
# A run on the embedded photos (no dataset flag) is a smoke run: these unless given.
SMOKE = {"max_train_steps": 60, "train_batch_size": 4, "checkpointing_steps": 30, "validation_steps": 30}
SMOKE_GENERATOR = {
    "rrdbnet": {"mid_channels": 16, "num_blocks": 2, "growth_channels": 8},
    "msrresnet": {"mid_channels": 16, "num_blocks": 2},
    "srvggnet_compact": {"mid_channels": 16, "num_convs": 4},
}
SMOKE_DISCRIMINATOR = {"mid_channels": 16}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` appends "(default: X)" to a flag's help, unless the help already states its default
    or there is none to state (None, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is None or action.default is False or action.default == argparse.SUPPRESS or re.search(r"\bdefault\b", text, re.I):
            return text
        return f"{text[:-1]} (default: %(default)s)." if text.endswith(".") else f"{text} (default: %(default)s)"


def _json_flag(parser: argparse.ArgumentParser, flag: str, value: str | None, config_class) -> dict | None:
    if value is None:
        return None
    try:
        overrides = json.loads(value)
    except json.JSONDecodeError as err:
        parser.error(f"{flag} is not valid JSON ({err}); e.g. '{{\"mid_channels\": 32}}'.")
    try:
        return check_config_overrides(config_class, overrides, {"upscale_factor": "--scale"})
    except ValueError as err:
        parser.error(f"{flag}: {err}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a super-resolution GAN (ESRGAN / SRGAN / Real-ESRGAN losses) with MMagic's recipes on Accelerate.",
        formatter_class=DefaultsHelpFormatter,
    )
    group = parser.add_argument_group("model")
    group.add_argument("--model", choices=sorted(GENERATORS), default=None, help="Generator architecture (default: rrdbnet, or --pretrained_generator's).")
    group.add_argument("--pretrained_generator", default=None, help="Start the generator from this hfmagic SR model (Hub id or folder), e.g. a PSNR-trained RRDBNet, as MMagic's recipes do (default: from scratch).")
    group.add_argument("--model_config_overrides", default=None, help='JSON of generator config fields, e.g. \'{"num_blocks": 6}\'.')
    group.add_argument("--scale", type=int, default=None, help="Upscale factor (default 4, or the pretrained generator's).")
    group.add_argument("--recipe", choices=sorted(RECIPES), default=None, help="MMagic's losses and schedule (default: esrgan for rrdbnet, srgan for msrresnet, real-esrgan for srvggnet_compact).")
    group.add_argument("--discriminator", choices=sorted(DISCRIMINATORS), default=None, help="Discriminator (default: the recipe's: modified_vgg for esrgan/srgan (128x128 patches), unet_sn for real-esrgan).")
    group.add_argument("--discriminator_config_overrides", default=None, help='JSON of discriminator config fields, e.g. \'{"mid_channels": 32}\'.')
    group.add_argument("--vgg_model_name_or_path", default=DEFAULT_VGG_WEIGHTS, help="ImageNet VGG19 for the perceptual loss: a Hub id, a local folder or a .safetensors/.pth file (torchvision or timm names).")
    group.add_argument("--pixel_weight", type=float, default=None, help="Weight of the L1 pixel loss (default: the recipe's, 1e-2 esrgan/srgan, 1.0 real-esrgan).")
    group.add_argument("--perceptual_weight", type=float, default=None, help="Weight of the VGG perceptual loss (default: the recipe's, 1.0); 0 turns it off (no VGG needed).")
    group.add_argument("--gan_weight", type=float, default=None, help="Weight of the generator's GAN loss (default: the recipe's, 5e-3 esrgan/srgan, 0.1 real-esrgan).")
    group.add_argument("--relativistic", action=argparse.BooleanOptionalAction, default=None, help="ESRGAN's relativistic-average GAN terms (default: on for esrgan, off otherwise).")
    group.add_argument("--disc_init_steps", type=int, default=0, help="Steps that train only the discriminator before the generator's first update (MMagic: 0).")

    group = parser.add_argument_group("data")
    group.add_argument("--dataset_name", default=None, help="HF dataset (Hub id, parquet file, save_to_disk folder) with an image column of HR images.")
    group.add_argument("--train_data_dir", default=None, help="Folder of HR images. Without it and --dataset_name: a smoke run on the embedded photos.")
    group.add_argument("--image_column", default="image", help="Column holding the HR images.")
    group.add_argument("--skip_small_images", action="store_true", help="Skip (with a warning) images smaller than --gt_patch_size instead of failing.")
    group.add_argument("--validation_dataset", nargs="+", default=None, help="Validation sets: Set5, Set14, BSD100, Urban100 or folders of HR images.")
    group.add_argument("--gt_patch_size", type=int, default=None, help="HR training patch size (default: the recipe's, 128; 256 for real-esrgan). modified_vgg needs 128.")
    group.add_argument("--dataloader_num_workers", type=int, default=2, help="DataLoader worker processes (results do not depend on it).")
    group.add_argument("--num_threads", type=int, default=None, help="Torch threads per process on CPU (default: the cores divided by the local processes, unless you set OMP_NUM_THREADS).")

    group = parser.add_argument_group("training")
    group.add_argument("--train_batch_size", type=int, default=None, help="Batch size per process (MMagic: 16).")
    group.add_argument("--max_train_steps", type=int, default=None, help="Total steps (default: the recipe's, 400k). The MultiStep milestones scale with it.")
    group.add_argument("--learning_rate", type=float, default=None, help="Adam learning rate of the generator (default: the recipe's, 1e-4).")
    group.add_argument("--discriminator_learning_rate", type=float, default=None, help="Adam learning rate of the discriminator (default: --learning_rate).")
    group.add_argument("--adam_beta1", type=float, default=0.9, help="Adam beta1.")
    group.add_argument("--adam_beta2", type=float, default=None, help="Adam beta2 (default: the recipe's, 0.999; 0.99 real-esrgan).")
    group.add_argument("--lr_milestones", type=int, nargs="+", default=None, help="Steps where both learning rates are halved (default: the recipe's 50k/100k/200k/300k of 400k, scaled to --max_train_steps).")
    group.add_argument("--lr_gamma", type=float, default=0.5, help="MultiStep factor.")
    group.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Must be 1 (MMagic's SRGAN updates both networks every batch); raise --train_batch_size instead.")
    group.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None, help="Mixed precision (default: accelerate's config).")
    group.add_argument("--use_ema", action=argparse.BooleanOptionalAction, default=None, help="Keep an EMA of the generator and save it (default: the recipe's, on for real-esrgan).")
    group.add_argument("--ema_momentum", type=float, default=0.001, help="EMA momentum: weight of the new weights (Real-ESRGAN: decay 0.999).")
    group.add_argument("--validation_steps", type=int, default=None, help="Validate every this many steps (default 5000); 0 = only at the end.")
    group.add_argument("--crop_border", type=int, default=None, help="Pixels cropped from each side for PSNR/SSIM (default: the scale).")
    group.add_argument("--checkpointing_steps", type=int, default=None, help="Save a resumable checkpoint every this many steps (default 5000); 0 = never.")
    group.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    group.add_argument("--resume_from_checkpoint", default=None, help='Resume from "latest" or a checkpoint folder/name.')
    group.add_argument("--output_dir", default=None, help="Run folder (default <recipe>-<model>-x<scale>).")
    group.add_argument("--logging_dir", default="logs", help="Tracker folder inside --output_dir.")
    group.add_argument("--report_to", default="auto", help='Tracker: "auto" = tensorboard when installed, else none; "tensorboard", "wandb", "trackio" (local; pip install trackio), ... or "none".')
    group.add_argument("--license", default="apache-2.0", help='License the model card declares ("none": none). Check the training data\'s terms.')
    group.add_argument("--seed", type=int, default=0, help="Seed of the data order, augmentation and initialisation.")
    group.add_argument("--push_to_hub", action="store_true", help="Upload final/ (generator, discriminator/, card) at the end.")
    group.add_argument("--hub_model_id", default=None, help="Repo to push to (default: the name of --output_dir).")
    group.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one).")
    group.add_argument("--hub_private", action="store_true", help="Create the Hub repo private.")
    group.add_argument("--debug", action="store_true", help="Show the full traceback of an error (also HFMAGIC_DEBUG=1).")
    short_usage_errors(parser)
    args = parser.parse_args(argv)

    if args.dataset_name and args.train_data_dir:
        parser.error("give either --dataset_name or --train_data_dir, not both.")
    if args.train_data_dir and not os.path.isdir(args.train_data_dir):
        parser.error(f"--train_data_dir {args.train_data_dir} is not a folder (a Hub dataset id goes to --dataset_name).")
    if args.output_dir and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        parser.error(f"--output_dir {args.output_dir} is a file, not a folder: pick another path.")
    if args.gradient_accumulation_steps != 1:
        parser.error("--gradient_accumulation_steps must be 1: both networks update on every batch (MMagic's SRGAN); raise --train_batch_size instead.")
    if args.pretrained_generator:
        if args.model_config_overrides:
            parser.error("--model_config_overrides applies to a generator built from --model; a --pretrained_generator keeps its config.")
        try:
            check_model_source(args.pretrained_generator, "--pretrained_generator")
        except ValueError as err:
            parser.error(str(err))
    model = args.model or "rrdbnet"
    args.model_config_overrides = _json_flag(parser, "--model_config_overrides", args.model_config_overrides, GENERATORS[model][1])
    recipe = RECIPES[args.recipe or DEFAULT_RECIPE[model]]
    discriminator = args.discriminator or recipe["discriminator"]
    args.discriminator_config_overrides = _json_flag(
        parser, "--discriminator_config_overrides", args.discriminator_config_overrides, DISCRIMINATORS[discriminator][1]
    )
    for name in ("max_train_steps", "learning_rate", "discriminator_learning_rate", "train_batch_size", "gt_patch_size"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0, got {getattr(args, name)}.")
    for name in ("pixel_weight", "perceptual_weight", "gan_weight"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}.")
    if args.gan_weight == 0:
        parser.error("--gan_weight 0 trains no adversarial term: use examples/train_sr.py for PSNR training.")
    if args.num_threads is not None and args.num_threads < 1:
        parser.error(f"--num_threads must be >= 1, got {args.num_threads}.")
    if args.hub_token is None:
        args.hub_token = os.environ.get("HF_TOKEN")
    return args


def resolve(args: argparse.Namespace) -> dict:
    """The run's choices: the flags, else the recipe's (and the smoke run's on the embedded photos)."""
    generator = None
    model = args.model
    if args.pretrained_generator:
        from transformers import AutoModelForImageToImage

        generator = AutoModelForImageToImage.from_pretrained(args.pretrained_generator)
        found = next((name for name, (cls, _) in GENERATORS.items() if isinstance(generator, cls)), None)
        if model is not None and found != model:
            raise ValueError(
                f"--pretrained_generator {args.pretrained_generator} is a {type(generator).__name__}, not --model {model}: "
                "drop --model or pick the matching one."
            )
        model = found or "rrdbnet"
        if args.scale is not None and args.scale != generator.config.upscale_factor:
            raise ValueError(
                f"--scale {args.scale} differs from --pretrained_generator's upscale_factor {generator.config.upscale_factor}; drop --scale."
            )
    model = model or "rrdbnet"
    recipe_name = args.recipe or DEFAULT_RECIPE[model]
    recipe = RECIPES[recipe_name]
    smoke = not (args.dataset_name or args.train_data_dir)
    scale = generator.config.upscale_factor if generator is not None else (args.scale or 4)
    return {"generator": generator, "model": model, "recipe_name": recipe_name, "recipe": recipe, "smoke": smoke, "scale": scale,
            "discriminator": args.discriminator or recipe["discriminator"]}


def training_arguments(args: argparse.Namespace, run: dict) -> SRGANTrainingArguments:
    recipe, smoke = run["recipe"], run["smoke"]

    def pick(name: str, default):
        value = getattr(args, name)
        return value if value is not None else (SMOKE.get(name, default) if smoke else default)

    steps = pick("max_train_steps", recipe["max_train_steps"])
    milestones = args.lr_milestones or [max(1, math.floor(m * steps / recipe["max_train_steps"])) for m in recipe["lr_milestones"]]
    return SRGANTrainingArguments(
        output_dir=args.output_dir or f"{run['recipe_name']}-{run['model']}-x{run['scale']}",
        train_batch_size=pick("train_batch_size", 16),
        max_train_steps=steps,
        learning_rate=pick("learning_rate", recipe["learning_rate"]),
        discriminator_learning_rate=args.discriminator_learning_rate,
        adam_beta1=args.adam_beta1,
        adam_beta2=pick("adam_beta2", recipe["adam_beta2"]),
        lr_scheduler="multistep",
        lr_milestones=milestones,
        lr_gamma=args.lr_gamma,
        mixed_precision=args.mixed_precision,
        use_ema=recipe["ema"] if args.use_ema is None else args.use_ema,
        ema_momentum=args.ema_momentum,
        validation_steps=pick("validation_steps", 5000),
        checkpointing_steps=pick("checkpointing_steps", 5000),
        checkpoints_total_limit=args.checkpoints_total_limit,
        resume_from_checkpoint=args.resume_from_checkpoint,
        report_to=args.report_to,
        logging_dir=args.logging_dir,
        license=None if args.license in ("", "none") else args.license,
        seed=args.seed,
        dataloader_num_workers=args.dataloader_num_workers,
        num_threads=args.num_threads,
        crop_border=args.crop_border,
        push_to_hub=args.push_to_hub,
        hub_model_id=args.hub_model_id,
        hub_token=args.hub_token,
        hub_private=args.hub_private or None,
    )


def build_srgan(args: argparse.Namespace, run: dict) -> SRGAN:
    """Generator, discriminator and MMagic's losses for the recipe (flags win)."""
    from hfmagic.losses import GANLoss, PerceptualLoss

    recipe, smoke = run["recipe"], run["smoke"]
    generator = run["generator"]
    if generator is None:
        model_class, config_class = GENERATORS[run["model"]]
        overrides = args.model_config_overrides or (SMOKE_GENERATOR[run["model"]] if smoke else {})
        generator = model_class(config_class(upscale_factor=run["scale"], **overrides))
    d_class, d_config_class = DISCRIMINATORS[run["discriminator"]]
    d_overrides = args.discriminator_config_overrides or (SMOKE_DISCRIMINATOR if smoke else {})
    discriminator = d_class(d_config_class(in_channels=generator.config.out_channels, **d_overrides))
    perceptual_weight = recipe["perceptual_weight"] if args.perceptual_weight is None else args.perceptual_weight
    perceptual = None
    if perceptual_weight > 0:
        # MMagic: VGG19 on [0, 1] images with ImageNet normalisation, no style term
        try:
            perceptual = PerceptualLoss(
                recipe["perceptual_layers"], vgg_type="vgg19", use_input_norm=True, perceptual_weight=perceptual_weight,
                style_weight=0.0, norm_img=False, criterion="l1", pretrained=args.vgg_model_name_or_path,
            )
        except (ValueError, OSError) as err:
            if "--vgg_model_name_or_path" in str(err):
                raise
            raise ValueError(
                f"--vgg_model_name_or_path {args.vgg_model_name_or_path}: {err} Give a local VGG19 folder or "
                ".safetensors/.pth file, or --perceptual_weight 0 to train without the perceptual loss."
            ) from err
    gan_weight = recipe["gan_weight"] if args.gan_weight is None else args.gan_weight
    return SRGAN(
        generator,
        discriminator,
        pixel_loss="l1",
        pixel_weight=recipe["pixel_weight"] if args.pixel_weight is None else args.pixel_weight,
        perceptual_loss=perceptual,
        gan_loss=GANLoss(recipe["gan_type"], real_label_val=1.0, fake_label_val=0.0, loss_weight=gan_weight),
        relativistic=recipe["relativistic"] if args.relativistic is None else args.relativistic,
        disc_init_steps=args.disc_init_steps,
    )


def main(args: argparse.Namespace):
    run = resolve(args)
    training_args = training_arguments(args, run)
    gt_patch_size = args.gt_patch_size or run["recipe"]["gt_patch_size"]
    if run["discriminator"] == "modified_vgg" and gt_patch_size != 128:
        raise ValueError(
            f"--discriminator modified_vgg scores 128x128 patches (MMagic's ModifiedVGG), but --gt_patch_size is {gt_patch_size}: "
            "use --gt_patch_size 128 or --discriminator unet_sn."
        )

    # Accelerator (DDP leaves each rank its discriminator's BatchNorm statistics, as MMagic)
    accelerator = create_srgan_accelerator(training_args)

    # Logging
    setup_logging(main_process=accelerator.is_local_main_process)
    logger.info("; ".join(line for line in str(accelerator.state).splitlines() if line.strip()))
    if run["smoke"]:
        logger.info(
            "No --dataset_name/--train_data_dir: a %d-step smoke run of a small %s on hfmagic's embedded photos (it checks "
            "the pipeline offline; not a useful model). MMagic's recipe: --train_data_dir DIV2K_sub/ --validation_dataset "
            "Set5 Set14 --pretrained_generator <PSNR-trained model>.",
            training_args.max_train_steps, run["model"],
        )

    # Networks and losses (seeded: the same initial weights on every rank and every run)
    set_seed(args.seed)
    srgan = build_srgan(args, run)
    logger.info("Recipe %s: %s.", run["recipe_name"], srgan.describe(training_args))

    # Dataset
    from hfmagic.data.embedded import embedded_sr_train_dir, embedded_sr_validation_dir
    from hfmagic.data.sr_dataset import build_sr_dataset

    source = args.dataset_name or args.train_data_dir
    validation = {item: Path(item).name if os.path.exists(item) else item for item in args.validation_dataset or []}
    if source and os.path.exists(source):
        training_args.training_data = f"local images `{Path(source).name}`"
    elif source:
        training_args.dataset_names = [source]
    if source is None:
        source = str(embedded_sr_train_dir())
        validation = validation or {str(embedded_sr_validation_dir()): "hfmagic-embedded-validation"}
        training_args.training_data = "hfmagic's embedded photos (a smoke run)"
    elif not validation:
        logger.warning("No --validation_dataset: the run is not validated and keeps no best/ model (MMagic validates on Set5 and Set14).")
    with accelerator.main_process_first():
        train_dataset = build_sr_dataset(
            source, scale=run["scale"], gt_patch_size=gt_patch_size, image_column=args.image_column,
            skip_small=args.skip_small_images, check_sizes=True,
        )
    eval_sets = {}
    if validation and accelerator.is_main_process:
        from hfmagic.data import load_eval_set

        for item, set_name in validation.items():
            eval_sets[set_name] = load_eval_set(item, run["scale"])

    # Training
    try:
        result = train_srgan(srgan, train_dataset, training_args, eval_sets or None, accelerator=accelerator)
    finally:
        release_accelerator(accelerator)
    if accelerator.is_main_process:
        logger.info("Saved the final model to %s%s", result.final_dir, f" and the best to {result.best_dir}" if result.best_dir else "")
        if result.final_metrics:
            logger.info("Final validation: %s", format_metrics(result.final_metrics))
    return result


def cli(argv: list[str] | None = None):
    """The command line: a user mistake prints one line and exits with 1 (``--debug`` shows the traceback)."""
    arguments = parse_args(argv)
    set_debug(arguments.debug)
    with report_errors("train_esrgan.py", USER_ERRORS + (TrainingDivergedError,)):
        return main(arguments)


if __name__ == "__main__":
    cli()
