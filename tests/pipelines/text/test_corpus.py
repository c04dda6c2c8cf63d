"""pipelines.text.corpus: embedded / file / TFDS documents and document-level splits."""

import hashlib

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from pydoc_data.topics import topics

from pipelines import sources
from pipelines.sources import DataSourceError
from pipelines.text import corpus


def strings(ds: tf.data.Dataset) -> list[str]:
    return [x.decode() for x in ds.as_numpy_iterator()]


def test_embedded_documents_are_pydoc_topics_in_sorted_order_and_deterministic():
    docs = strings(corpus.documents("embedded"))
    assert len(docs) == len(topics) > 50 and docs == strings(corpus.documents())
    assert docs[0].startswith("The \"assert\" statement")  # "assert" is the first topic name
    assert all(doc.strip() == doc and doc for doc in docs)
    lines = [line.strip() for doc in docs for line in doc.splitlines()]
    assert not [line for line in lines if len(line) > 2 and len(set(line)) == 1 and line[0] in "*=-~^#"]
    assert sum(len(doc) for doc in docs) > 300_000


def test_split_documents_is_seeded_disjoint_complete_and_in_order():
    docs = tf.data.Dataset.from_tensor_slices([f"doc {i}" for i in range(50)])
    splits = corpus.split_documents(docs, (0.2, 0.1), seed=3, source="hand-made")
    parts = [strings(p) for p in (splits.train, splits.validation, splits.test)]
    assert [len(p) for p in parts] == [35, 10, 5]
    assert splits.info == {"source": "hand-made", "sizes": {"train": 35, "validation": 10, "test": 5}}
    assert sorted(sum(parts, [])) == sorted(f"doc {i}" for i in range(50))
    for part in parts:
        assert part == sorted(part, key=lambda d: int(d.split()[1]))
    assert [int(p.cardinality()) for p in (splits.train, splits.validation, splits.test)] == [35, 10, 5]
    again = corpus.split_documents(docs, (0.2, 0.1), seed=3)
    other = corpus.split_documents(docs, (0.2, 0.1), seed=4)
    assert strings(again.test) == parts[2] != strings(other.test)


def test_split_documents_counts_a_dataset_of_unknown_size():
    docs = tf.data.Dataset.range(20).filter(lambda i: i % 2 == 0).map(lambda i: tf.strings.as_string(i))
    splits = corpus.split_documents(docs, (0.2, 0.2))
    assert splits.info["sizes"] == {"train": 6, "validation": 2, "test": 2}


def test_load_embedded_splits_all_topics():
    splits = corpus.load("embedded", seed=0)
    sizes = splits.info["sizes"]
    assert sum(sizes.values()) == len(topics) and min(sizes.values()) >= 5
    assert "pydoc_data" in splits.info["source"]


def test_file_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("First doc, line one.\nLine two.\n\n  \t\nSecond — doc.\r\n\r\n\r\n\nThird\n".encode())
    docs = strings(corpus.documents(f"file:{path}"))
    assert docs == ["First doc, line one.\nLine two.", "Second — doc.", "Third"]


def test_missing_empty_and_non_utf8_files_are_clear_errors(tmp_path):
    with pytest.raises(DataSourceError, match="not found"):
        corpus.documents(f"file:{tmp_path / 'nope.txt'}")
    (tmp_path / "empty.txt").write_text("\n \n\n")
    with pytest.raises(DataSourceError, match="holds no text"):
        corpus.documents(f"file:{tmp_path / 'empty.txt'}")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataSourceError, match="not UTF-8"):
        corpus.documents(f"file:{tmp_path / 'latin1.txt'}")


def test_tfds_text_feature_is_detected_or_given():
    with tfds.testing.mock_data(num_examples=12):
        docs = corpus.documents("tfds:imdb_reviews")
        explicit = corpus.documents("tfds:imdb_reviews:test", text_feature="text")
        texts = strings(docs)
        splits = corpus.load("tfds:imdb_reviews", fractions=(0.25, 0.25))
        with pytest.raises(DataSourceError, match="no scalar string feature 'label'"):
            corpus.documents("tfds:imdb_reviews", text_feature="label")
    assert docs.element_spec == tf.TensorSpec([], tf.string) and len(texts) == 12
    assert len(strings(explicit)) == 12
    assert splits.info["sizes"] == {"train": 6, "validation": 3, "test": 3}
    assert splits.info["source"] == "tfds:imdb_reviews"


def test_tfds_without_an_obvious_text_feature_asks_for_one():
    with tfds.testing.mock_data(num_examples=3):
        with pytest.raises(DataSourceError, match="text_feature"):
            corpus.documents("tfds:mnist")


def test_unknown_sources_name_what_is_accepted():
    with pytest.raises(DataSourceError, match="accepts: embedded, timemachine, file:<name>, tfds:<name>"):
        corpus.documents("sklearn:digits")


def test_cached_download_checks_the_sha1_and_reads_the_cache_afterwards(tmp_path):
    source = tmp_path / "book.txt"
    source.write_text("The Time Traveller\n\nwas expounding")
    sha1 = hashlib.sha1(source.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    path = sources.cached_download(source.as_uri(), sha1, cache_dir=str(cache))
    assert path.read_bytes() == source.read_bytes() and cache in path.parents
    source.unlink()  # the second call must not need the origin any more
    assert sources.cached_download(source.as_uri(), sha1, cache_dir=str(cache)) == path


def test_cached_download_deletes_a_file_with_the_wrong_checksum_and_says_so(tmp_path):
    source = tmp_path / "book.txt"
    source.write_text("tampered")
    with pytest.raises(DataSourceError, match="SHA-1"):
        sources.cached_download(source.as_uri(), "0" * 40, cache_dir=str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").rglob("book.txt"))


def test_cached_download_of_an_unreachable_url_is_a_clear_error(tmp_path):
    with pytest.raises(DataSourceError, match="could not download"):
        sources.cached_download((tmp_path / "missing.txt").as_uri(), "0" * 40, cache_dir=str(tmp_path))


def test_timemachine_is_the_verified_d2l_download_one_document_per_paragraph(tmp_path, monkeypatch):
    book = tmp_path / "timemachine.txt"
    book.write_text("The Time Machine, by H. G. Wells\n\n\nI\n\nThe Time Traveller (for so it will be convenient\nto speak of him)")
    calls = []
    monkeypatch.setattr(sources, "cached_download", lambda url, sha1: calls.append((url, sha1)) or book)
    docs = [d.decode() for d in corpus.documents("timemachine").as_numpy_iterator()]
    assert calls == [(corpus.TIME_MACHINE_URL, corpus.TIME_MACHINE_SHA1)]
    assert docs == ["The Time Machine, by H. G. Wells", "I", "The Time Traveller (for so it will be convenient\nto speak of him)"]
