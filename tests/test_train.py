import torch

import postlab
from postlab import data, train


def test_sft_trains_only_the_adapter_and_only_on_completions(tmp_path):
    net, tok = postlab.load_model(lora=True, verbose=False)
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad and "layers.0." in n}
    lora_b = {n: p.detach().clone() for n, p in net.named_parameters() if "lora_B" in n}
    rows = data.sft_rows(data.train_tasks(8))
    trainer = train.sft(net, tok, rows, tmp_path, max_steps=2, batch_size=4, disable_tqdm=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(0 < l < 10 for l in losses)
    assert any(not torch.equal(p, lora_b[n]) for n, p in net.named_parameters() if n in lora_b)
    assert all(torch.equal(p, frozen[n]) for n, p in net.named_parameters() if n in frozen)
    # The loss mask covers the assistant reply (and its end-of-turn token), never the prompt.
    ex = trainer.train_dataset[0]
    ids, mask = ex["input_ids"], [label != -100 for label in ex["labels"]]
    completion = tok.decode([i for i, m in zip(ids, mask) if m])
    prompt = tok.decode([i for i, m in zip(ids, mask) if not m])
    assert completion.startswith(rows[0]["completion"][0]["content"]) and "<|im_end|>" in completion
    assert rows[0]["prompt"][0]["content"] in prompt and "Answer:" not in prompt
