"""Character-level tokenizers for puzzle tasks (Sudoku, Countdown, SAT, ...).

Every character of the text is one token. The ids follow MGDM's `custom_tokenizer.py` order:
`[PAD]`=0, `[SEP]`=1, `[MASK]`=2, `[EOS]`=3, `[UNK]`=4, then the characters of the task's
alphabet in the order given. A character outside the alphabet (a space, unless the alphabet
has one) becomes `[UNK]`, which disappears when decoding with `skip_special_tokens=True`,
like MGDM's space separators.

The result is an ordinary `transformers.PreTrainedTokenizerFast`: it adds no BOS/EOS when
encoding, decodes without inserting spaces between characters, and survives
`save_pretrained` / `from_pretrained` (also through `AutoTokenizer`).
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from dlm.errors import DlmUserError

PAD_TOKEN = "[PAD]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
EOS_TOKEN = "[EOS]"
UNK_TOKEN = "[UNK]"

#: The special tokens in id order (MGDM's order): their ids are 0..4.
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, SEP_TOKEN, MASK_TOKEN, EOS_TOKEN, UNK_TOKEN)

PAD_ID, SEP_ID, MASK_ID, EOS_ID, UNK_ID = range(len(SPECIAL_TOKENS))


def char_vocab(alphabet: str) -> dict[str, int]:
    """The token-to-id map: the five special tokens, then each character of `alphabet`."""
    seen: set[str] = set()
    duplicates = sorted({ch for ch in alphabet if ch in seen or seen.add(ch)})
    if duplicates:
        raise DlmUserError(f"the alphabet repeats the characters {duplicates!r}: {alphabet!r}")
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    return vocab


def build_char_tokenizer(alphabet: str) -> PreTrainedTokenizerFast:
    """A character-level fast tokenizer over `alphabet` with MGDM's special-token ids.

    `alphabet` lists the ordinary characters, each once; they take ids 5, 6, ... in order.
    Encoding splits the text into single characters (special-token strings such as `[SEP]`
    written in the text are recognised as one token each); unknown characters map to `[UNK]`.
    """
    vocab = char_vocab(alphabet)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # An empty-pattern split isolates every character (verified in the tests); a regex `.`
    # with `isolated` would miss newlines, so the empty pattern is used.
    backend.pre_tokenizer = pre_tokenizers.Split(pattern=Regex(""), behavior="isolated")
    # Fuse joins the token strings as they are: no spaces between characters.
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        sep_token=SEP_TOKEN,
        mask_token=MASK_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    # The special tokens must keep the vocabulary's ids (registering them must not append).
    for expected, token in enumerate(SPECIAL_TOKENS):
        got = tokenizer.convert_tokens_to_ids(token)
        if got != expected:  # pragma: no cover - a library behaviour change
            raise RuntimeError(f"special token {token} got id {got}, expected {expected}")
    return tokenizer
