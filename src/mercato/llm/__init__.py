"""LLM substrate shared by mercato's LLM systems (RecZero/RecOne now, FinZero later).

Loading (packaged SmolLM2, local folder, tiny random), batched chat generation, tagged-format reward helpers,
group-relative advantages as pure functions, and thin glue over TRL's GRPO and SFT trainers. TRL,
transformers and datasets are imported lazily where possible (``pip install mercato[llm]``).
"""

from mercato.llm.advantages import clipped_surrogate_loss, group_relative_advantages, group_reward_std
from mercato.llm.generation import GenerationResult, generate_chat, render_chat
from mercato.llm.loading import (
    Policy,
    TinyModelConfig,
    cache_dir,
    load_local,
    load_policy,
    load_smollm2,
    resolve_device,
    smollm2_gguf_path,
    tiny_random_model,
    tiny_tokenizer,
)
from mercato.llm.rewards import (
    as_trl_reward,
    check_tagged_format,
    completion_text,
    extract_final_tag,
    extract_tag,
    first_number,
    parse_number,
    tag_partial_credit,
)

__all__ = [
    "GenerationResult",
    "Policy",
    "TinyModelConfig",
    "as_trl_reward",
    "cache_dir",
    "check_tagged_format",
    "clipped_surrogate_loss",
    "completion_text",
    "extract_final_tag",
    "extract_tag",
    "first_number",
    "generate_chat",
    "group_relative_advantages",
    "group_reward_std",
    "load_local",
    "load_policy",
    "load_smollm2",
    "parse_number",
    "render_chat",
    "resolve_device",
    "smollm2_gguf_path",
    "tag_partial_credit",
    "tiny_random_model",
    "tiny_tokenizer",
]
