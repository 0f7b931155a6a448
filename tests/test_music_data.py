"""The music corpus pipeline on a few pieces (never whole corpora here)."""
import numpy as np
import pytest
import torch

from arvae.data import bach, folk, music
from arvae.data.base import AttributeDataset
from arvae.music import attributes
from arvae.music.tokens import FIRST_PITCH_TOKEN, VOCAB_SIZE, token_to_midi

SPLITS = ("train", "val", "test")
FOLK_RNN_TEXT = """M:4/4
K:Cmaj
|: c2 e2 g2 e2 | d2 f2 a2 f2 | e2 g2 c'2 g2 | c8 :|

M:4/4
K:Gmaj
G2 B2 d2 B2 | A2 c2 e2 c2 | B2 d2 g2 d2 | G8 |

M:6/8
K:Dmaj
d2 f a2 f | d3 d3 |

M:4/4
K:Amin
A2 c2 e2 c2 | B2 d2 e4 | A2 c2 e2 a2 | a8 |

M:4/4
K:Dmaj
d2 f2 a2 f2 | e2 g2 b2 g2 | d2 f2 a2 d'2 | d8 |
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ARVAE_CACHE", str(tmp_path_factory.getbasetemp() / "music-cache"))
    music._MEMORY.clear()
    yield
    music._MEMORY.clear()


def check_dataset(ds):
    assert isinstance(ds, AttributeDataset)
    assert ds.inputs.dtype == torch.int64 and ds.inputs.ndim == 2 and ds.inputs.shape[1] == 24
    assert ds.attributes.dtype == torch.float32 and ds.attributes.shape == (len(ds.inputs), 4)
    assert ds.attribute_names == attributes.ATTRIBUTE_NAMES
    if len(ds):
        assert int(ds.inputs.min()) >= 0 and int(ds.inputs.max()) < VOCAB_SIZE
        assert bool((ds.inputs >= FIRST_PITCH_TOKEN).any(dim=1).all()), "an empty measure slipped through"
        np.testing.assert_allclose(ds.attributes.numpy(), attributes.measure(ds.inputs.numpy()))


def check_splits(module, corpus, **load_kwargs):
    datasets = {s: module.load_split(s, **load_kwargs) for s in SPLITS}
    index = corpus.split_indices()
    pieces = {s: set(corpus.piece_ids[i].tolist()) for s, i in index.items()}
    assert not pieces["train"] & pieces["val"] and not pieces["train"] & pieces["test"]
    assert not pieces["val"] & pieces["test"]
    assert set.union(*pieces.values()) == set(range(corpus.num_pieces))
    for s in ("val", "test"):  # held-out splits: exactly the corpus measures of their pieces
        assert np.array_equal(datasets[s].inputs.numpy(), corpus.tokens[index[s]])
    for ds in datasets.values():
        check_dataset(ds)
    return datasets


def test_bach_small():
    ds = bach.load_split("train", max_items=2)
    check_dataset(ds)
    assert len(ds) > 0 and "Bach chorales" in ds.source and "split train" in ds.source
    assert (bach.ATTRIBUTE_NAMES, bach.VOCAB_SIZE) == (attributes.ATTRIBUTE_NAMES, 32)


def test_bach_splits_by_piece_and_transposition():
    corpus = bach.corpus(max_items=10)
    assert corpus.num_pieces >= 5 and corpus.stats["pieces_failed"] == 0
    datasets = check_splits(bach, corpus, max_items=10)
    low, high = corpus.pitch_bounds()
    train_index = corpus.split_indices()["train"]
    train = datasets["train"].inputs.numpy()
    # augmentation: more measures than the split itself, the originals among them, all in range
    assert len(train) > 2 * len(train_index)
    originals = {row.tobytes() for row in corpus.tokens[train_index]}
    assert originals <= {row.tobytes() for row in train}
    midi = token_to_midi(train[train >= FIRST_PITCH_TOKEN])
    assert midi.min() == low and midi.max() == high
    assert "transpositions" in datasets["train"].source and "transpositions" not in datasets["val"].source


def test_cache_is_reused(monkeypatch):
    first = bach.corpus(max_items=3)
    music._MEMORY.clear()
    monkeypatch.setattr(music, "parse_pieces", lambda *a, **k: pytest.fail("parsed again instead of the cache"))
    second = bach.corpus(max_items=3)
    assert np.array_equal(first.tokens, second.tokens) and np.array_equal(first.piece_ids, second.piece_ids)
    assert first.piece_names == second.piece_names and first.source == second.source


def test_folk_bundled_small():
    corpus = folk.corpus(max_items=10)
    assert corpus.num_pieces >= 5
    datasets = check_splits(folk, corpus, max_items=10)
    assert "folk ABC" in datasets["train"].source
    midi = token_to_midi(corpus.tokens[corpus.tokens >= FIRST_PITCH_TOKEN])
    assert midi.min() >= 55 and midi.max() <= 84


def test_folk_rnn_file(tmp_path):
    path = tmp_path / "data_v2.abc"
    path.write_text(FOLK_RNN_TEXT)
    corpus = folk.corpus(data_dir=path)
    assert corpus.num_pieces == 4  # the 6/8 tune is left out
    assert corpus.stats["tunes_in_source"] == 5
    assert len(corpus.tokens) == 16
    first = corpus.tokens[corpus.piece_ids == 0][0]
    assert token_to_midi(first[first >= FIRST_PITCH_TOKEN]).tolist() == [72, 76, 79, 76]
    ds = folk.load_split("val", data_dir=path)
    check_dataset(ds)
    assert str(path) in ds.source


def test_folk_reads_a_folder_of_abc_files_and_falls_back_to_music21_for_a_folder_without(tmp_path):
    (tmp_path / "tunes").mkdir()
    (tmp_path / "tunes" / "data_v2.abc").write_text(FOLK_RNN_TEXT)
    assert folk.corpus(data_dir=tmp_path / "tunes").num_pieces == 4
    (tmp_path / "mnist").mkdir()  # e.g. the one --data-dir of `evaluate --dataset all`
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    bundled = folk.corpus(data_dir=tmp_path / "mnist", max_items=10)
    assert "music21 bundled folk ABC" in bundled.source
    with pytest.raises(FileNotFoundError, match="no ABC file"):
        folk.corpus(data_dir=tmp_path / "missing.abc")


def test_broken_piece_is_counted_not_fatal():
    pieces = [music.Piece("good", lambda: _tiny_score()), music.Piece("bad", lambda: 1 / 0)]
    from arvae.music.extract import measures_from_stream

    corpus = music.parse_pieces("t", "test", pieces, measures_from_stream)
    assert corpus.stats["pieces_failed"] == 1 and corpus.piece_names == ["good"]
    assert "bad: ZeroDivisionError" in corpus.stats["failures"][0]


def _tiny_score():
    from arvae.music.export import tokens_to_stream

    m = np.zeros((2, 24), dtype=np.int64)
    m[:, 0] = [10, 12]
    return tokens_to_stream(m)
