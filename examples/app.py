"""hfmagic's demo as a Hugging Face Space (or any machine): `python examples/app.py`.

Deploy on the Hub
-----------------
1. Create a Space with the Gradio SDK (huggingface.co/new-space), CPU basic is enough for small images.
2. Put this file in it as `app.py`, and a `requirements.txt` that installs hfmagic with its demo extra:
   a line `hfmagic[demo] @ git+https://github.com/<you>/hfmagic` (your fork), or copy the `hfmagic/`
   folder and `setup.cfg`/`pyproject.toml` next to app.py and write `.[demo]`.
3. Say which models to offer in the Space's settings (Variables), or edit the defaults below:
   - `HFMAGIC_DEMO_MODELS`: super-resolution repos, comma-separated (e.g. the folders `hfmagic convert`
     wrote, pushed with `model.push_to_hub("you/msrresnet-x4")`);
   - `HFMAGIC_DEMO_GAN_MODELS`: GAN repos (generator at the root), comma-separated;
   - `HFMAGIC_DEMO_MAX_PIXELS`: the largest upload in pixels (default 1024 x 1024: a free CPU Space
     upscales that x4 in tens of seconds; 0 for no limit).
   Visitors can also type any other repo id in the page.

Locally the same app is `hfmagic demo --model <dir or id> [--gan-model <dir or id>]`.
"""

import os

from hfmagic.demo import build_demo

# Used when the variables above are not set (edit them for your Space).
DEFAULT_MODELS: list[str] = []  # e.g. ["you/msrresnet-x4", "you/realesrgan-x4plus"]
DEFAULT_GAN_MODELS: list[str] = []  # e.g. ["you/dcgan-celeba"]
DEFAULT_MAX_PIXELS = 1024 * 1024


def _ids(variable: str, default: list[str]) -> list[str]:
    value = os.environ.get(variable)
    return [part.strip() for part in value.split(",") if part.strip()] if value else default


max_pixels = int(os.environ.get("HFMAGIC_DEMO_MAX_PIXELS", DEFAULT_MAX_PIXELS))
demo = build_demo(
    models=_ids("HFMAGIC_DEMO_MODELS", DEFAULT_MODELS),
    gan_models=_ids("HFMAGIC_DEMO_GAN_MODELS", DEFAULT_GAN_MODELS),
    max_input_pixels=max_pixels or None,
    title="hfmagic: super-resolution and GAN models",
)

if __name__ == "__main__":
    demo.queue(max_size=16).launch()  # a Space serves on 0.0.0.0:7860 by its own settings
