import time

import pytest
import torch

import postlab
from postlab import models


def test_default_model_is_converted_trainable_and_cached(base):
    net, tok = base
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert not getattr(net, "is_quantized", False) and getattr(net, "hf_quantizer", None) is None
    assert not hasattr(net.config, "quantization_config")
    assert (models.cache_dir() / models.DEFAULT_MODEL / "postlab-converted.txt").exists()
    t = time.time()
    postlab.load_model(verbose=False)
    assert time.time() - t < 20, "a second load should reuse the converted cache"


def test_tokenizer_ends_turns_with_im_end(base):
    _, tok = base
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    assert tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


SMOLLM2_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + "
                    "message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                    "{{ '<|im_start|>assistant\n' }}{% endif %}")


def test_the_default_system_turn_is_dropped_and_a_given_one_kept(base):
    """SmolLM2's template writes a 20-token system turn into every sequence unless the conversation has one; postlab's
    tokenizer drops that default (every forward pass a third shorter on short problems) and keeps a given system turn."""
    assert "SmolLM" not in models.without_default_system(SMOLLM2_TEMPLATE)
    assert models.without_default_system(models.PLAIN_CHAT_TEMPLATE) == models.PLAIN_CHAT_TEMPLATE  # another shape: as it is
    tok = base[1]
    assert models.chat_text(tok, "What is 4 x 3?") == "<|im_start|>user\nWhat is 4 x 3?<|im_end|>\n<|im_start|>assistant\n"
    given = tok.apply_chat_template([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], tokenize=False)
    assert given == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"


def test_generation_stops_at_end_of_assistant_turn(base):
    """The reply's tokens end at the first <|im_end|>: everything after it is padding, and no new turn
    (<|im_start|>user ...) was written before it, which is what a wrong end-of-sequence token gave."""
    net, tok = base
    # "Say hello." alone loops until the limit without the template's default system turn (models.load_tokenizer)
    enc = tok([models.chat_text(tok, "Say hello in one short sentence.")], return_tensors="pt", add_special_tokens=False)
    answer = models.decode(net, enc["input_ids"], enc["attention_mask"], 60, tok.eos_token_id)[0].tolist()
    assert tok.eos_token_id in answer, "generation ran to the token limit instead of ending the turn"
    end = answer.index(tok.eos_token_id)
    assert 0 < end and all(t == tok.eos_token_id for t in answer[end:])
    assert tok.convert_tokens_to_ids("<|im_start|>") not in answer[:end]
    reply = postlab.generate(net, tok, ["Say hello in one short sentence."], max_new_tokens=60, progress=False)[0]
    assert reply == tok.decode(answer[:end]).strip()


def test_batched_greedy_generation_matches_one_by_one(base):
    net, tok = base
    prompts = ["What is 2 + 2?", "Name a colour. Be brief, please, in one word."]
    together = postlab.generate(net, tok, prompts, max_new_tokens=12, progress=False)
    alone = [postlab.generate(net, tok, [p], max_new_tokens=12, progress=False)[0] for p in prompts]
    assert together == alone  # left padding must not change greedy replies


@pytest.mark.parametrize("adapter", [False, True], ids=["plain", "trained-looking LoRA, folded"])
def test_decode_equals_model_generate_greedy(base, adapter):
    """Our token loop (finished rows leave the batch; on a CPU the LoRA adapter folded into the weights) gives what
    transformers' generate gives with the adapter as three separate products, row for row."""
    net, tok = base
    if adapter:
        net, _ = postlab.load_model(lora=True, verbose=False)
        torch.manual_seed(0)
        for n, p in net.named_parameters():  # B away from zero: the adapter changes the replies
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.01)
    prompts = ["What is 2 + 2?", "Write a long story about a cat who learns to count to twenty.", "Say hi."]
    tok.padding_side = "left"
    enc = tok([models.chat_text(tok, p) for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        ref = net.generate(**enc, max_new_tokens=30, do_sample=False, pad_token_id=tok.pad_token_id)
    ref = ref[:, enc["input_ids"].shape[1]:]
    ours = models.decode(net, enc["input_ids"], enc["attention_mask"], 30, tok.eos_token_id)
    assert ours.shape == ref.shape and torch.equal(ours, ref)
    ended = (ours == tok.eos_token_id).any(1)
    assert ended.any() and not ended.all(), "the test needs one row that ends early and one that runs on"
    if adapter:  # the adapter acted: the replies differ from the base model's
        with torch.no_grad():
            plain = base[0].generate(**enc, max_new_tokens=30, do_sample=False, pad_token_id=tok.pad_token_id)
        assert not torch.equal(plain[:, enc["input_ids"].shape[1]:], ref)


def test_sampled_replies_come_back_in_prompt_order(base):
    net, tok = base
    prompts = ["Say the word 'apple' and nothing else.", "What is 2 + 2? Answer with just the number.",
               "Say the word 'banana' and nothing else."]
    out = postlab.generate(net, tok, prompts, max_new_tokens=10, temperature=0.3, num_return_sequences=2, seed=0,
                           batch_size=2, progress=False)
    assert len(out) == 6
    assert "apple" in (out[0] + out[1]).lower() and "banana" in (out[4] + out[5]).lower()


def test_lora_folded_restores_the_exact_weights(base):
    net, tok = postlab.load_model(lora=True, verbose=False)
    for n, p in net.named_parameters():  # a trained-looking adapter: B away from zero
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.02)
    x = tok("The sky is", return_tensors="pt")
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        plain = net(**x).logits
        with models.lora_folded(net):
            folded = net(**x).logits
            assert any(m.merged for m in net.modules() if hasattr(m, "merged_adapters"))
        after = net(**x).logits
    torch.testing.assert_close(folded, plain, atol=1e-4, rtol=1e-4)
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items()), "a weight changed"
    assert torch.equal(after, plain)
    assert not torch.equal(plain, base[0](**x).logits)  # the adapter still acts after folding


def test_lora_adapter_starts_as_the_base_model(base):
    net, tok = postlab.load_model(lora=True, verbose=False)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert 0 < trainable < 0.1 * sum(p.numel() for p in net.parameters())
    x = tok("The sky is", return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(net(**x).logits, base[0](**x).logits)


def test_unknown_model_gets_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelNotFoundError, match="no-such-org/no-such-model.*Fix:"):
        postlab.load_model("no-such-org/no-such-model", verbose=False)
    with pytest.raises(models.ModelNotFoundError, match="Fix:"):
        postlab.load_model("/no/such/dir", verbose=False)


def test_backend_choice_on_a_cpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.choose_backend("auto") == ("transformers", "cpu", "no CUDA GPU is visible")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        models.choose_backend("unsloth")
    with pytest.raises(ValueError, match="backend="):
        models.choose_backend("tensorflow")


def test_backend_falls_back_when_unsloth_does_not_import(monkeypatch):
    import builtins
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_import = builtins.__import__

    def no_unsloth(name, *a, **k):
        if name == "unsloth":
            raise ImportError("No module named 'unsloth'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_unsloth)
    backend, device, why = models.choose_backend("auto")
    assert (backend, device) == ("transformers", "cuda") and "unsloth does not import" in why


def test_checkpointing_only_for_big_models_on_a_gpu():
    class Fake(torch.nn.Module):  # a model's device and size, without allocating it
        def __init__(self, device, size):
            super().__init__()
            self.device_type, self.size = device, size

        def parameters(self):
            yield type("P", (), {"device": torch.device(self.device_type)})()

        def num_parameters(self):
            return self.size

    assert not models.needs_checkpointing(Fake("cpu", 8e9))  # a CPU has memory to spare: never
    assert not models.needs_checkpointing(Fake("cuda", 1.07e9))  # measured 1.3x-2.8x faster off at 135M and 1.07B
    assert models.needs_checkpointing(Fake("cuda", 3e9))


def test_4bit_needs_a_gpu_and_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="load_in_4bit=True needs a CUDA GPU.*Fix"):
        postlab.load_model(load_in_4bit=True, verbose=False)
