from review.diffing import has_changes, word_diff


def test_word_diff_marks_changed_words_and_keeps_the_rest():
    runs = word_diff("Start metformin 500 mg twice daily.", "Start metformin 1000 mg once daily.")
    assert [(r.op, r.text.strip()) for r in runs if r.op != "equal"] == [
        ("delete", "500"),
        ("insert", "1000"),
        ("delete", "twice"),
        ("insert", "once"),
    ]
    assert "".join(r.text for r in runs if r.op != "delete") == "Start metformin 1000 mg once daily."


def test_identical_texts_have_no_changes_even_when_rewrapped():
    assert not has_changes(word_diff("a b\nc", "a b c"))


def test_empty_before_is_all_inserted():
    runs = word_diff("", "new text")
    assert [r.op for r in runs] == ["insert"]
