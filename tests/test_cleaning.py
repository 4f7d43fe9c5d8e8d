from numtrans.data.cleaning import MinHasher, clean, jaccard, near_duplicates, script, shingles

BASE = "the quick brown fox jumps over the lazy dog near the quiet river bank today"


def test_minhash_estimates_jaccard():
    near = BASE.replace("today", "tonight")
    a, b = shingles(BASE), shingles(near)
    mh = MinHasher(256)
    est = float((mh.signature(a) == mh.signature(b)).mean())
    assert abs(est - jaccard(a, b)) < 0.1


def test_near_duplicates_and_report():
    near = BASE.replace("today", "tonight")
    other = "a completely different sentence about cooking rice and tea"
    assert jaccard(shingles(BASE), shingles(near)) > 0.8
    assert near_duplicates([BASE, near, other], 0.8) == {1}
    assert near_duplicates([BASE, near, other], 0.99) == set()
    docs = [BASE, BASE, near, other, "!!!", "我们今天去学校。"]
    kept, rep = clean(docs, min_chars=4, language="latin")
    assert kept == [BASE, other]
    assert rep == {"input": 6, "exact_duplicates": 1, "near_duplicates": 1, "length": 1,
                   "char_class": 0, "language": 1, "kept": 2}  # fmt: skip


def test_script():
    assert (
        script("我们今天去学校") == "han"
        and script("hello") == "latin"
        and script("123") == "other"
    )
