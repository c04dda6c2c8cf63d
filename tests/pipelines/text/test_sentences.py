"""pipelines.text.sentences: the documented sentence rule on hand-made documents."""

import tensorflow as tf

from pipelines.text import corpus
from pipelines.text.sentences import split_sentences


def test_sentence_rule_on_hand_made_documents():
    docs = [
        "One. Two?\n\nThree e.g. four",
        "",
        "  \n\n \t\n",
        'Dr. Smith said "Hi!" Then (he left.) Next...  Done!!! ok\nwrapped line.',
        "No end\nof sentence",
        "Heading\n\nBody 1.5 and v2.0 stay.",
    ]
    assert split_sentences(docs).to_list() == [
        [b"One.", b"Two?", b"Three e.g. four"],
        [],
        [],
        [b"Dr.", b'Smith said "Hi!"', b"Then (he left.)", b"Next...", b"Done!!! ok wrapped line."],
        [b"No end of sentence"],
        [b"Heading", b"Body 1.5 and v2.0 stay."],
    ]


def test_traced_over_the_embedded_corpus():
    fn = tf.function(split_sentences, input_signature=[tf.TensorSpec([None], tf.string)])
    sentences = fn(tf.constant(corpus.pydoc_topics()))
    counts = sentences.row_lengths().numpy()
    assert (counts > 0).all() and counts.sum() > 3000
    flat = sentences.flat_values.numpy()
    assert not any(b"\n" in s or b"  " in s or s != s.strip() for s in flat)
