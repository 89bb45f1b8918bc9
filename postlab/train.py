"""Thin wrappers over TRL trainers with settings that train a small model on a CPU in minutes.

Each function takes rows in TRL's own dataset formats and returns the trainer, so the notebook can read
`trainer.state.log_history` for its curves. The TRL config objects are built here in plain sight: what
they set is what TRL documents.
"""
import torch
from datasets import Dataset


def common_args(out_dir, max_steps, batch_size, lr, seed, **extra) -> dict:
    cuda = torch.cuda.is_available()
    return dict(output_dir=str(out_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
                learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=max(1, max_steps // 20),
                logging_steps=1, save_strategy="no", report_to="none", seed=seed, use_cpu=not cuda,
                bf16=cuda and torch.cuda.is_bf16_supported(), **extra)


def sft(model, tokenizer, rows, out_dir, max_steps=150, batch_size=8, lr=3e-4, seed=0, max_length=256, **extra):
    """Supervised fine-tuning on prompt-completion chat rows; the loss falls on the completion only."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**common_args(out_dir, max_steps, batch_size, lr, seed, **extra), max_length=max_length,
                     completion_only_loss=True)
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    return trainer
