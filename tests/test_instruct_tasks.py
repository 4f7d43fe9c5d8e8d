from numtrans.data.corpus import load_corpus
from numtrans.finetune.data import read_labeled
from numtrans.instruct.tasks import SENTIMENT, TRANSLATE, instruction_set
from numtrans.translation.data import split_pairs


def test_instruction_set_excludes_held_out_splits():
    conv = instruction_set()
    prompts = {c[0]["content"] for c in conv}
    train, valid, test = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=0)
    held = {en for en, _ in valid + test} - {en for en, _ in train}
    assert held
    assert not any(t.format(x=en) in prompts for en in held for t in TRANSLATE)
    strain, sval = read_labeled("uci_sentiment").split(0.1, 0)
    only_val = set(sval.texts) - set(strain.texts)
    assert not any(t.format(x=s) in prompts for s in only_val for t in SENTIMENT)
    assert len(conv) == len(train) + len(strain)
    assert {c[1]["content"] for c in conv} >= {"positive", "negative"}
    assert len({c[0]["content"][:12] for c in conv}) > 4  # varied phrasings
