import pytest

from postlab import bench, models


def test_rows_are_about_seq_len_tokens_and_dpo_rows_differ_in_the_last_answer():
    tok = models.load_model(verbose=False)[1]
    sft, dpo = bench.rows("sft", 4, 200), bench.rows("dpo", 4, 200)
    n = [len(tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True)["input_ids"]) for r in sft]
    assert all(120 <= x <= 320 for x in n), n
    r = dpo[0]
    assert r["chosen"][0]["content"] != r["rejected"][0]["content"] and r["rejected"][0]["content"].endswith("Answer: 0")


def test_measure_counts_the_tokens_of_the_timed_steps(tmp_path):
    r = bench.throughput("sft", steps=2, warmup=1, batch_size=2, seq_len=64, out_dir=tmp_path)
    assert r["backend"] == "transformers" and r["device"] == "cpu" and r["s_per_step"] > 0
    assert 2 * 30 <= r["tokens_per_step"] <= 2 * (64 + 64 + 40)  # two rows of about 64-100 tokens per step
    assert r["tokens_per_s"] == pytest.approx(r["tokens_per_step"] / r["s_per_step"], rel=0.02)
    assert "| sft | transformers |" in bench.markdown([r])
