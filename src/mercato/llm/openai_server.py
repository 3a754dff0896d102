"""An OpenAI-compatible chat endpoint on 127.0.0.1 for a local causal LM (default: the packaged SmolLM2).

``POST /v1/chat/completions`` takes the OpenAI request body (``model``, ``messages``, ``temperature``,
``max_tokens``, ``top_p``, ``seed``) and answers in the OpenAI format (``choices[0].message.content``,
``finish_reason``, ``usage``); ``GET /v1/models`` lists the one model. Generation goes through
:func:`mercato.llm.generation.generate_chat` one request at a time (a lock), so any client of the OpenAI API,
such as EvolveSignal's ``OpenAICompatibleLLM``, can use a model that runs fully offline::

    python -m mercato.llm.openai_server --source smollm2 --port 8000 --threads 1
    MERCATO_LLM_BASE_URL=http://127.0.0.1:8000/v1 mercato evolvesignal evolve --mutator llm

From Python, :class:`LocalOpenAIServer` starts that command as a child process on a free port, waits until it
answers, and stops it (by its PID) on exit. The server binds 127.0.0.1 only; nothing is downloaded.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

__all__ = ["LocalOpenAIServer", "create_app", "free_port", "main"]

# no ``from __future__ import annotations`` here: FastAPI must see the request model of ``chat`` as a class, not
# as a string naming a class local to ``create_app``


def create_app(policy: Any, model_name: str = "smollm2", max_tokens_cap: int = 2048) -> Any:
    """The FastAPI app serving ``policy`` (a :class:`mercato.llm.loading.Policy`) as ``model_name``."""
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel, Field

    from mercato.llm.generation import generate_chat

    class Message(BaseModel):
        role: str
        content: str

    class ChatRequest(BaseModel):
        model: str = model_name
        messages: list[Message] = Field(min_length=1)
        temperature: float = Field(default=1.0, ge=0.0, le=2.0)
        top_p: float = Field(default=1.0, gt=0.0, le=1.0)
        max_tokens: int = Field(default=256, ge=1)
        seed: int | None = None

    app = FastAPI(title="mercato local OpenAI-compatible server")
    lock = threading.Lock()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict[str, Any]:
        if req.max_tokens > max_tokens_cap:
            raise HTTPException(422, f"max_tokens: at most {max_tokens_cap}, got {req.max_tokens}")
        messages = [{"role": m.role, "content": m.content} for m in req.messages]
        with lock:
            out = generate_chat(
                policy.model,
                policy.tokenizer,
                [messages],
                max_new_tokens=req.max_tokens,
                batch_size=1,
                temperature=req.temperature,
                top_p=req.top_p,
                seed=req.seed,
                desc="chat",
            )
        n_out, n_in = out.num_tokens[0], out.prompt_tokens[0]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": out.texts[0]},
                    "finish_reason": "length" if n_out >= req.max_tokens else "stop",
                }
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        }

    return app


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalOpenAIServer:
    """``python -m mercato.llm.openai_server`` as a child process on 127.0.0.1; a context manager.

    ``base_url`` (``http://127.0.0.1:PORT/v1``) is what ``MERCATO_LLM_BASE_URL`` should be set to.
    """

    def __init__(
        self,
        source: str = "smollm2",
        model_name: str = "smollm2",
        threads: int = 1,
        seed: int = 0,
        port: int | None = None,
        startup_timeout_s: float = 300.0,
        log_path: str | None = None,
    ) -> None:
        self.source, self.model_name, self.threads, self.seed = source, model_name, threads, seed
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LocalOpenAIServer":
        cmd = [
            sys.executable, "-m", "mercato.llm.openai_server", "--source", self.source, "--model-name",
            self.model_name, "--port", str(self.port), "--threads", str(self.threads), "--seed", str(self.seed),
        ]  # fmt: skip
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": str(self.threads),
        }
        t0 = time.perf_counter()
        if self.log_path:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, start_new_session=True)
        else:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"openai_server exited with {self.proc.returncode} during start-up"
                    + (f" (log: {self.log_path})" if self.log_path else "")
                )
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:  # noqa: S310 (127.0.0.1)
                    json.loads(r.read())
                self.startup_s = time.perf_counter() - t0
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"openai_server did not answer on {self.base_url} within {self.startup_timeout_s} s"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and nothing else
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    def __enter__(self) -> "LocalOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", default="smollm2", help="'smollm2', 'tiny' or a local Hugging Face folder"
    )
    parser.add_argument("--model-name", default="smollm2", help="model id reported by the endpoint")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="torch seed at start (sampled answers repeat)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-tokens-cap", type=int, default=2048)
    args = parser.parse_args(argv)
    import torch
    import uvicorn

    from mercato.llm.loading import load_policy

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    policy = load_policy(args.source, device=args.device)
    app = create_app(policy, args.model_name, args.max_tokens_cap)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
