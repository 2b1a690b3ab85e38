"""GPU check (device machine): rscale's Fabric training loop on CUDA equals a plain loop; samples/s against it.

    python3 tests/models/gpu_check_training_steps.py   (writes $OUT/gpu_training_steps.json)
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import REPO, conversion_table  # noqa: E402

from bench.training import conversion_rows  # noqa: E402
from rscale.models.package import ModelPackage, build_module, model_config_for  # noqa: E402
from rscale.models.preprocess import Preprocessor  # noqa: E402
from rscale.models.training import TensorBatches, train  # noqa: E402

out = Path(os.environ.get("OUT", tempfile.mkdtemp()))


def plan_for(spec, overrides):  # type: ignore[no-untyped-def]
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / f"{spec}.yaml", overrides, stack="gpu", offline=True).plans[0]


report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}


def plain_loop(plan, data, device):  # type: ignore[no-untyped-def]
    torch.manual_seed(plan.train.seed)
    pre = Preprocessor.fit(plan, data)
    model = build_module(model_config_for(plan, pre)).to(device)
    batches = TensorBatches({k: v.to(device) for k, v in pre.transform(data).items()})
    opt = torch.optim.AdamW(model.parameters(), lr=plan.train.lr, weight_decay=plan.train.weight_decay)
    rates, steps = [], 0
    for epoch in range(plan.train.max_epochs):
        order = torch.randperm(data.num_rows, generator=torch.Generator().manual_seed(plan.train.seed + epoch))
        torch.cuda.synchronize()
        started = time.perf_counter()
        for index in order.split(plan.train.batch_size):
            batch = batches[index.to(device)]
            loss = F.binary_cross_entropy_with_logits(model(batch), batch["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        torch.cuda.synchronize()
        rates.append(data.num_rows / (time.perf_counter() - started))
    return model, rates, steps


for precision in ("32-true", "bf16-mixed"):
    plan = plan_for("conversion", ["model.dropout=0", "train.max_epochs=3", "train.batch_size=64", "train.gpus=1",
                                   f"train.precision={precision}", "train.early_stopping=null"])
    data = conversion_table(1000, 1)
    work = Path(tempfile.mkdtemp())
    result = train(plan, data, data.slice(0, 0), work, progress=False)
    entry = {"train_loss": [h["train_loss"] for h in result.history],
             "global_step": torch.load(result.checkpoint, weights_only=False, map_location="cpu")["global_step"]}
    if precision == "32-true":
        model, _, steps = plain_loop(plan, data, "cuda")
        trained = ModelPackage.load(result.package_dir).module.state_dict()
        entry["max_weight_diff"] = max(float((trained[k] - v.cpu()).abs().max()) for k, v in model.state_dict().items())
        entry["plain_loop_steps"] = steps
    report[precision] = entry
    print(precision, entry, flush=True)

# speed: the bench's MLP case on the GPU, rscale against the plain loop (both 32-true, batch 256)
plan = plan_for("conversion", ["train.max_epochs=3", "train.early_stopping=null", "train.gpus=1"])
data, held = conversion_rows(150_000, 1), conversion_rows(15_000, 2)
speed = {"rscale": [], "hand": []}
for _repeat in range(2):
    result = train(plan, data, held, Path(tempfile.mkdtemp()), progress=False)
    speed["rscale"] += [data.num_rows / h["train_seconds"] for h in result.history]
    speed["hand"] += plain_loop(plan, data, "cuda")[1]
report["speed_samples_per_s"] = speed
med = {k: sorted(v)[len(v) // 2] for k, v in speed.items()}
report["speed_ratio_median"] = med["rscale"] / med["hand"]
print("speed", {k: [round(x) for x in v] for k, v in speed.items()}, "ratio", round(report["speed_ratio_median"], 3))
(out / "gpu_training_steps.json").write_text(json.dumps(report, indent=1))
