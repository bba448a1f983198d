"""Build a tiny M-CLIP-style text tower (immich's multilingual export format) and its goldens.

    /work/venv-torch/bin/python scripts/make_tiny_mclip.py     # after make_tiny_clip.py

immich exports M-CLIP text towers (XLM-R, LaBSE) with inputs `input_ids` + `attention_mask`
(int32 [1, 77]), masked-mean pooling, a linear projection, and a case-sensitive Hugging Face
tokenizer padded with its own pad token. This builds the same interface at toy size: a BPE
tokenizer trained on a few sentences (fixed corpus: deterministic) and a seeded random tower.
Writes tests/fixtures/tiny-mclip-textual/ (drop-in `textual/` folder for a copy of tiny-clip)
and tests/fixtures/goldens/mclip_{texts.json,ids.npy,embeddings.npy}; the reference ids come
from transformers' tokenizer (padding="max_length", truncation), as immich and M-CLIP use it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from _torch_shim import torch  # noqa: E402
from make_goldens import TEXTS  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "tiny-mclip-textual"
GOLDENS = ROOT / "tests" / "fixtures" / "goldens"
CORPUS = [
    "a photo of a dog", "Ein Foto von einem Hund", "une photo d'un chien", "una foto de un perro",
    "Red mushroom in green moss", "東京の夜景", "Москва зимой", "café crème brûlée naïve façade",
    "the quick brown fox jumps over the lazy dog", "emoji 🐶🐱😀 and numbers 0123456789",
]  # fmt: skip
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(CORPUS * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))]
    )
    return tok


class TinyMClip(torch.nn.Module):
    def __init__(self, vocab: int, width: int = 16, embed_dim: int = 32) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, width)
        self.mix = torch.nn.Linear(width, width)
        self.proj = torch.nn.Linear(width, embed_dim)

    def forward(self, input_ids, attention_mask):
        x = torch.tanh(self.mix(self.emb(input_ids)))
        m = attention_mask.unsqueeze(2).to(x.dtype)
        x = (x * m).sum(dim=1) / m.sum(dim=1)
        return torch.nn.functional.normalize(self.proj(x), dim=-1)


def main() -> None:
    from transformers import PreTrainedTokenizerFast

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    tok = build_tokenizer()
    tok.save(str(OUT / "tokenizer.json"), pretty=False)
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (OUT / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    cfg = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 77, **special}
    (OUT / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    torch.manual_seed(7)
    model = TinyMClip(tok.get_vocab_size()).eval()
    args = (torch.ones(1, 77, dtype=torch.int32), torch.ones(1, 77, dtype=torch.int32))
    torch.onnx.export(
        model, args, str(OUT / "model.onnx"), input_names=["input_ids", "attention_mask"],
        output_names=["embedding"], opset_version=17, dynamo=False,
    )  # fmt: skip

    hf = PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer.json"), **special)
    texts = [t for t in TEXTS if "\x00" not in t]
    cleaned = [" ".join(t.split()) for t in texts]  # immich's clean_text for M-CLIP
    enc = hf(cleaned, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        emb = model(enc["input_ids"].int(), enc["attention_mask"].int()).numpy()
    import numpy as np

    (GOLDENS / "mclip_texts.json").write_text(json.dumps(texts, indent=1, ensure_ascii=False) + "\n")
    np.save(GOLDENS / "mclip_ids.npy", enc["input_ids"].numpy().astype(np.int32))
    np.save(GOLDENS / "mclip_embeddings.npy", emb.astype(np.float32))
    print(f"{OUT}: vocab {tok.get_vocab_size()}, {len(texts)} golden strings")


if __name__ == "__main__":
    main()
