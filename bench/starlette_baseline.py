"""The hand-written endpoint the local server is measured against: the same model behind one Starlette handler.

    python -m bench.starlette_baseline --model-dir PACKAGE --port 8081

It is what a person writes in an afternoon: load the weights, encode a tabular record with the saved means
and vocabularies, one forward pass, sigmoid, JSON out. No validation, no prediction log, no request ids.
Same uvicorn settings as rscale's server (one worker, log level warning, no access log, and the event loop and
HTTP parser given by --loop/--http, with rscale's defaults: asyncio, and httptools when it imports).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def create_app(model_dir: Path):  # type: ignore[no-untyped-def]
    import torch
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from rscale.models.package import build_module

    torch.set_num_threads(1)
    config = json.loads((model_dir / "model_config.json").read_text())
    state = json.loads((model_dir / "preprocess.json").read_text())
    model = build_module(config)
    model.load_state_dict(torch.load(model_dir / "weights.pt", map_location="cpu", weights_only=True))
    model.eval()
    numeric = [f["name"] for f in state["numeric"]]
    mean = torch.tensor([f["mean"] for f in state["numeric"]])
    std = torch.tensor([f["std"] for f in state["numeric"]])
    categorical = [c["name"] for c in state["categorical"]]
    vocab = {c["name"]: {v: i + 2 for i, v in enumerate(state["vocabularies"][c["vocab"]])} for c in state["categorical"]}

    async def ping(request: Request) -> Response:
        return Response(b"", media_type="application/json")

    async def invocations(request: Request) -> Response:
        body = json.loads(await request.body())
        records = body["instances"] if "instances" in body else [body]
        batch = {
            "numeric": (torch.tensor([[float(r[n]) for n in numeric] for r in records]) - mean) / std,
            "categorical": torch.tensor([[vocab[c].get(str(r[c]), 1) for c in categorical] for r in records]),
        }
        with torch.inference_mode():
            probabilities = torch.sigmoid(model(batch).reshape(-1)).tolist()
        predictions = [{"probability": p, "label": int(p >= 0.5)} for p in probabilities]
        return Response(json.dumps({"predictions": predictions}), media_type="application/json")

    return Starlette(routes=[Route("/ping", ping), Route("/invocations", invocations, methods=["POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="asyncio")
    parser.add_argument("--http", choices=["auto", "httptools", "h11"], default="auto")
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_dir), host=args.host, port=args.port, log_level="warning", access_log=False,
                loop=args.loop, http=args.http)


if __name__ == "__main__":
    main()
